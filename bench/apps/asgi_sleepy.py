"""Bench app: awaits asyncio.sleep(0.05) and answers hello (the asgi-sleep case).

The ASGI counterpart of sleepy.py: the 50 ms wait yields to the event loop,
so one worker serves every connection at once. Named asgi_sleepy to sit
next to sleepy.py; non-http scopes (lifespan) return at once, as in asgi_hello.
"""
import asyncio

BODY = b"Hello, World!"
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"),
                     (b"content-length", str(len(BODY)).encode())]}
RESPONSE = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await asyncio.sleep(0.05)
    await send(START)
    await send(RESPONSE)
