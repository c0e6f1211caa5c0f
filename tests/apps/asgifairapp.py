"""fairapp's ASGI 3 twin (`asgifairapp:app`, for -k asyncio): /hot's work
goes on for a while after its response is sent, as fairapp's close() does
(a blocking sleep: the loop waits too), so a client that answers at once
has its next request on the connection by then. /other answers at once."""
import time


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b"hot" if scope["path"] == "/hot" else b"other"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
    if scope["path"] == "/hot":
        time.sleep(0.02)
