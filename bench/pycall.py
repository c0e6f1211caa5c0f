#!/usr/bin/python3
"""Times one WSGI app call inside the interpreter that runs this script,
with no server at all: the app's own cost on that interpreter build.

    taskset -c 0 /usr/bin/python3 bench/pycall.py flask_app:app
    taskset -c 0 PROGRAM bench/pycall.py flask_app:app     # a program embedding libpython

Calls the app (from bench/apps) with a fixed GET / environ, iterates and
closes its response, 2,000 times to warm up and then 5 x 5,000 times, and
prints the best of the 5 in microseconds per call.
"""
import importlib
import io
import os
import sys
import time

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")

ENVIRON = {
    "REQUEST_METHOD": "GET", "PATH_INFO": "/", "SCRIPT_NAME": "", "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
    "HTTP_HOST": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.version": (1, 0),
    "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}


def start_response(status, headers, exc_info=None):
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: pycall.py MODULE:CALLABLE   (a module in bench/apps)")
    sys.path.insert(0, APPS)
    module, _, name = sys.argv[1].partition(":")
    app = getattr(importlib.import_module(module), name or "app")

    def once():
        env = dict(ENVIRON)
        env["wsgi.input"] = io.BytesIO()
        body = app(env, start_response)
        for _ in body:
            pass
        if hasattr(body, "close"):
            body.close()

    for _ in range(2000):
        once()
    best = None
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(5000):
            once()
        per = (time.perf_counter() - t0) / 5000
        best = per if best is None else min(best, per)
    print("%s: %.1f us per call (%s)" % (sys.argv[1], best * 1e6, sys.executable))


if __name__ == "__main__":
    main()
