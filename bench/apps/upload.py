"""Bench app: reads the whole request body in 64 KiB pieces, answers its size."""


def app(environ, start_response):
    inp = environ["wsgi.input"]
    total = 0
    while True:
        chunk = inp.read(65536)
        if not chunk:
            break
        total += len(chunk)
    body = b"%d" % total
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
