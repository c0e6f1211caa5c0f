"""linkapp's ASGI 3 twin (`asgilinkapp:app`, for -k asyncio): the same JSON
about where the worker's interpreter lives and that its C API answers."""
import json

from linkapp import report


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = json.dumps(report()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
