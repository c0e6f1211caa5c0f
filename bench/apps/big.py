"""Bench app: a 1 MiB bytes body, built once at import."""

BODY = b"x" * (1024 * 1024)
HEADERS = [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
