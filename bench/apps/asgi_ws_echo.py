"""ASGI WebSocket echo for the ws-echo bench case: every message goes back as it came.

A plain HTTP request (bench/run.py's readiness probe, GET /) gets 200 "ok";
lifespan and any other scope: it returns at once (the app declines lifespan).
"""

HTTP_START = {"type": "http.response.start", "status": 200,
              "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]}
HTTP_BODY = {"type": "http.response.body", "body": b"ok"}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(HTTP_START)
        await send(HTTP_BODY)
        return
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        m = await receive()
        if m["type"] == "websocket.disconnect":
            return
        if m.get("bytes") is not None:
            await send({"type": "websocket.send", "bytes": m["bytes"]})
        else:
            await send({"type": "websocket.send", "text": m["text"]})
