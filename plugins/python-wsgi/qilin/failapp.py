"""The WSGI app that a worker serves when --reload finds the app's file broken."""


def make(body):
    """An app answering every request 500 with BODY (bytes)."""
    headers = [('Content-Type', 'text/plain; charset=utf-8'),
               ('Content-Length', str(len(body)))]
    def app(environ, start_response):
        start_response('500 Internal Server Error', headers)
        return [body]
    return app
