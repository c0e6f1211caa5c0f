"""A small Flask app (`flaskapp:app`) for the framework tests."""
import hashlib

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return jsonify(hello="flask", method=request.method, args=request.args.to_dict())


@app.route("/form", methods=["POST"])
def form():
    return "name=%s;lang=%s" % (request.form.get("name", ""), request.form.get("lang", ""))


@app.route("/json", methods=["POST"])
def json_echo():
    return jsonify(received=request.get_json())


@app.route("/upload", methods=["POST"])
def upload():
    data = request.files["file"].read()
    return jsonify(filename=request.files["file"].filename, size=len(data),
                   sha256=hashlib.sha256(data).hexdigest())


@app.route("/stream")
def stream():
    def generate():
        for i in range(3):
            yield "part%d;" % i
    return Response(generate(), mimetype="text/plain")
