"""testapp's ASGI 3 twin (`asgitestapp:app`): the routes the tests that run
on every worker class use, with the same status, headers and body, so a
test's -k asyncio copy serves this instead (qilintest.ASGI_TWINS). /environ
is the scope under the environ names (asgiechoapp.environ_of); /file sends
through http.response.pathsend, file_wrapper's twin. WSGI's own routes
(/lines, /write, /sock) and those only single-class tests use are left out.
Standard library only.

`mark=PATH` and `real=1` mean what they do in testapp: without real=1 the
slow routes await (a green worker's patched sleep yields the same way);
with it they call time.sleep, which blocks the event loop, as code stuck
outside the loop does, so the worker's heartbeat stops and --timeout sees
the hang. SystemExit and KeyboardInterrupt from /exit are raised in the
request's Task, as testapp raises them in the request.
"""
import asyncio
import json
import os
import time
from urllib.parse import parse_qs

from asgiechoapp import environ_of, read_body


def _query(scope):
    q = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    return {k: v[-1] for k, v in q.items()}


def _mark(q):
    path = q.get("mark")
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)


async def _sleep(q, seconds):
    if q.get("real") == "1":
        time.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


def _start(status=200, headers=(), ctype=b"text/plain"):
    return {"type": "http.response.start", "status": status,
            "headers": [(b"content-type", ctype)] + list(headers)}


def _body(data=b"", more=False):
    return {"type": "http.response.body", "body": data, "more_body": more}


async def _plain(send, body, status=200):
    await send(_start(status, [(b"content-length", str(len(body)).encode())]))
    await send(_body(body))


async def _chunked(send):
    """Body messages of a response without Content-Length, an empty one too."""
    await send(_start())
    for piece in (b"one-", b"two-", b"", b"three"):
        await send(_body(piece, more=True))
    await send(_body())


async def _echo_stream(receive, send):
    await send(_start(ctype=b"application/octet-stream"))
    more = True
    while more:
        m = await receive()
        if m["type"] == "http.disconnect":
            return
        more = m.get("more_body", False)
        await send(_body(m.get("body", b""), more=more))


async def _file(send, q):
    """The file ?path= through http.response.pathsend (file_wrapper's twin)."""
    path = q["path"]
    await send(_start(ctype=b"application/octet-stream",
                      headers=[(b"content-length", str(os.path.getsize(path)).encode())]))
    await send({"type": "http.response.pathsend", "path": os.path.abspath(path)})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    q = _query(scope)

    if path in ("/", "/hello"):
        return await _plain(send, b"hello")
    if path == "/say":
        return await _plain(send, q.get("w", "").encode("utf-8"))
    if path == "/pid":
        return await _plain(send, str(os.getpid()).encode("ascii"))
    if path == "/environ" or path.startswith("/environ/"):
        body = json.dumps(environ_of(scope), sort_keys=True).encode("utf-8")
        await send(_start(ctype=b"application/json",
                          headers=[(b"content-length", str(len(body)).encode())]))
        return await send(_body(body))
    if path == "/echo":
        body = await read_body(receive)
        if body is not None:  # else the client went away
            await _plain(send, body)
        return
    if path == "/echo-stream":
        return await _echo_stream(receive, send)
    if path == "/chunked":
        return await _chunked(send)
    if path == "/exit":
        if q.get("code") == "interrupt":
            raise KeyboardInterrupt
        raise SystemExit(int(q["code"]) if q.get("code", "").isdigit() else q.get("code"))
    if path == "/raise":
        raise RuntimeError("boom from testapp")
    if path == "/sleep":
        _mark(q)
        await _sleep(q, float(q.get("s", "1")))
        return await _plain(send, b"slept")
    if path == "/hang":
        _mark(q)
        while True:
            await _sleep(q, 3600)
    if path == "/file":
        return await _file(send, q)
    return await _plain(send, b"not found", 404)
