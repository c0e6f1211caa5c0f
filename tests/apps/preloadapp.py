"""Answers with the pid of the process that imported this module: the master
with --preload, the worker otherwise."""
import os

IMPORTED_BY = str(os.getpid()).encode("ascii")


def app(environ, start_response):
    body = IMPORTED_BY + b" " + str(os.getpid()).encode("ascii")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
