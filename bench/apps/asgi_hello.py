"""Bench app: hello.py's 13-byte body as a raw ASGI 3 app (no framework).

Lifespan and any other non-http scope: it returns at once, which tells the
server the app does not do lifespan (the ASGI spec's way to decline it).
"""

BODY = b"Hello, World!"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"),
                     (b"content-length", str(len(BODY)).encode())]}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send(START)
    await send(RESPONSE)
