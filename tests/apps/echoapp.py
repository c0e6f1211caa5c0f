"""The conformance corpus's app (`echoapp:app`): answers every request with
what it saw as JSON, so a test can compare the parsed fields with the raw
request it sent. Reads the whole body first, which makes body framing errors
and limits surface inside the request. Plain PEP 3333, standard library only.
"""
import json
import os

# The environ keys the corpus compares; every HTTP_* key is included as well.
KEYS = ("REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "RAW_URI",
        "SERVER_PROTOCOL", "CONTENT_TYPE", "CONTENT_LENGTH", "REMOTE_ADDR", "wsgi.url_scheme",
        "wsgi.input_terminated")


def app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = {k: environ[k] for k in KEYS if k in environ}
    out.update({k: v for k, v in environ.items() if k.startswith("HTTP_")})
    out["body"] = body.decode("latin-1")
    out["pid"] = os.getpid()
    data = json.dumps(out, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]
