"""A response whose close() takes a while, as Django's does (it sends the
request_finished signal): by the time it returns, a client that answers at
once has its next request on the connection. /other answers at once."""
import time


class SlowClose:
    def __iter__(self):
        yield b"hot"

    def close(self):
        time.sleep(0.02)


def app(environ, start_response):
    if environ["PATH_INFO"] == "/hot":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return SlowClose()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"other"]
