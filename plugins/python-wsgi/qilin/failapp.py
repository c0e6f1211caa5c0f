"""The app that a worker serves when --reload finds the app's file broken."""


def make(body):
    """A WSGI app answering every request 500 with BODY (bytes)."""
    headers = [('Content-Type', 'text/plain; charset=utf-8'),
               ('Content-Length', str(len(body)))]
    def app(environ, start_response):
        start_response('500 Internal Server Error', headers)
        return [body]
    return app


def make_asgi(body):
    """The same as an ASGI 3 app (for -k asyncio); lifespan is left unanswered."""
    headers = [(b'content-type', b'text/plain; charset=utf-8'),
               (b'content-length', str(len(body)).encode())]
    async def app(scope, receive, send):
        if scope['type'] != 'http':
            return
        await send({'type': 'http.response.start', 'status': 500, 'headers': headers})
        await send({'type': 'http.response.body', 'body': body})
    return app
