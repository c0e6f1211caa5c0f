"""Shows what a gunicorn.conf.py changed (tests/integration/test_gunicorn_conf.py):
the process environment (raw_env) and the WSGI concurrency flags."""
import json
import os


def app(environ, start_response):
    body = json.dumps({
        "pid": os.getpid(),
        "env": os.environ.get("QILIN_CONF_TEST"),
        "multithread": environ["wsgi.multithread"],
        "multiprocess": environ["wsgi.multiprocess"],
    }).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
