"""App spec forms: `factoryapp:create_app()` (a factory called once at load)
and plain `factoryapp` (the default attribute, `application`)."""


def _make(body):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return app


def create_app():
    return _make(b"from factory")


application = _make(b"from application")
