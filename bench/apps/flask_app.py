"""Bench app: Flask's hello world (python3-flask from Debian)."""
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "Hello, World!"
