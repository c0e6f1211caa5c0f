"""A Flask app (`flasklogapp:app`) that logs through gunicorn's error logger,
as Flask's deployment guides recommend: its handlers and its level become
the app logger's. /log?m=TEXT logs TEXT at info, warning and (with a
traceback) error, and writes TEXT to gunicorn.access."""
import logging

from flask import Flask, request

app = Flask(__name__)
gunicorn_logger = logging.getLogger("gunicorn.error")
app.logger.handlers = gunicorn_logger.handlers
app.logger.setLevel(gunicorn_logger.level)


@app.route("/log")
def log():
    text = request.args.get("m", "")
    app.logger.info("info %s", text)
    app.logger.warning("warning %s", text)
    try:
        raise KeyError(text)
    except KeyError:
        app.logger.exception("error %s", text)
    logging.getLogger("gunicorn.access").info("access %s", text)
    return "logged"
