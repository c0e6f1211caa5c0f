"""Bench app: blocks 50 ms in time.sleep (the blocking-I/O case).

Named sleepy, not io: `io` is the stdlib module every server has already imported.
"""
import time

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", HEADERS)
    return [BODY]
