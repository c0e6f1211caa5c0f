"""The smallest WSGI application, served by the README's quick start:

    qilin --chdir examples hello:app
    curl http://127.0.0.1:8000/
"""


def app(environ, start_response):
    body = b"Hello, World!\n"
    start_response("200 OK", [
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", str(len(body))),
    ])
    return [body]
