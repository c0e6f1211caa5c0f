"""Bench app: a 1 MiB file through wsgi.file_wrapper (sendfile where the server can).

The harness makes the file and names it in $QILIN_BENCH_FILE.
"""
import os

PATH = os.environ["QILIN_BENCH_FILE"]
SIZE = os.path.getsize(PATH)
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(SIZE))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return environ["wsgi.file_wrapper"](open(PATH, "rb"), 65536)
