"""An app wrapped in wsgiref.validate.validator (`validapp:app`): every call
checks the server's side of PEP 3333 (environ types and keys, wsgi.input and
wsgi.errors methods, start_response, close()). A violation raises
AssertionError inside the app, which the server logs."""
from wsgiref.validate import validator


def _inner(environ, start_response):
    method = environ["REQUEST_METHOD"]
    inp = environ["wsgi.input"]
    if environ["PATH_INFO"] == "/lines":
        # readline with and without a size, as the validator allows.
        first = inp.readline(3)
        rest = inp.readline()
        body = b"|".join([first, rest] + inp.readlines())
    elif method == "POST":
        body = inp.read(int(environ.get("CONTENT_LENGTH") or "0"))
    else:
        body = ("%s %s?%s" % (method, environ["PATH_INFO"],
                              environ.get("QUERY_STRING", ""))).encode("latin-1")
    environ["wsgi.errors"].write("validapp served %s\n" % method)
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


app = validator(_inner)
