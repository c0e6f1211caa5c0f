"""ASGI 3 test app for test_asgi.py (qilin -k asyncio).

/            hello, with the lifespan state and root_path
/scope...    the scope as JSON (bytes as latin-1 text)
/echo        the request body back, with its length and how many messages it came in
/stream      N (?n=) chunks of 1 KiB with more_body
/sleep       awaits asyncio.sleep(?s=, default 0.2) and counts requests in flight;
/overlap     the most requests seen in flight at once, since the last /overlap?reset
/wait-disconnect  answers after receive() says http.disconnect; records it for /events
/flood       streams ?mib= MiB in 64 KiB pieces, counting pieces sent for /events
/events      what /wait-disconnect and /flood recorded
/raise       raises before starting the response; /raise-late after it
/noresponse  returns without a response; /halfresponse starts one and returns
/badheader   a header value with a newline
/pathsend    this file through http.response.pathsend
/background  answers, then keeps running and records when it ended
/send-after-end  answers, then sends once more and records what send() raised

WebSocket:
/ws/echo     accepts (with the first subprotocol offered), echoes text and bytes; the text
             "close-me" makes the app close with 4001; counts open sockets for /overlap
/ws/deny     refuses with a 401 response (websocket.http.response)
/ws/reject   closes before accepting (403)
/ws/events   accepts, then records the disconnect code it gets for /events
"""
import asyncio
import json
import os
import time

STATE = {"inflight": 0, "max": 0, "events": []}


def query(scope):
    out = {}
    for part in scope["query_string"].decode("latin-1").split("&"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
        elif part:
            out[part] = ""
    return out


async def body_of(receive):
    chunks = []
    while True:
        m = await receive()
        if m["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunks.append(m.get("body", b""))
        if not m.get("more_body"):
            return b"".join(chunks), len(chunks)


async def send_plain(send, body, status=200, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


def jsonable(v):
    if isinstance(v, bytes):
        return v.decode("latin-1")
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


async def lifespan(scope, receive, send):
    while True:
        m = await receive()
        if m["type"] == "lifespan.startup":
            if os.environ.get("ASGIAPP_STARTUP_FAIL"):
                await send({"type": "lifespan.startup.failed",
                            "message": os.environ["ASGIAPP_STARTUP_FAIL"]})
                return
            scope["state"]["started"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif m["type"] == "lifespan.shutdown":
            note = os.environ.get("ASGIAPP_SHUTDOWN_NOTE")
            if note:
                with open(note, "a") as f:
                    f.write("shutdown %d\n" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope, receive, send):
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/ws/deny":
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"denied"})
        return
    if path == "/ws/reject":
        await send({"type": "websocket.close"})
        return
    protos = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": protos[0] if protos else None,
                "headers": [(b"x-ws", b"yes")]})
    STATE["inflight"] += 1
    STATE["max"] = max(STATE["max"], STATE["inflight"])
    try:
        while True:
            m = await receive()
            if m["type"] == "websocket.disconnect":
                STATE["events"].append("ws-disconnect:%d" % m["code"])
                return
            if m.get("text") == "close-me":
                await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
                return
            if path == "/ws/echo":
                if m.get("text") is not None:
                    await send({"type": "websocket.send", "text": m["text"]})
                else:
                    await send({"type": "websocket.send", "bytes": m["bytes"]})
    finally:
        STATE["inflight"] -= 1


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    if scope["type"] == "websocket":
        return await websocket(scope, receive, send)
    path = scope["path"]
    q = query(scope)
    if path == "/":
        state = scope.get("state", {})
        await send_plain(send, ("hello started=%s root=%s" % (
            state.get("started"), scope["root_path"])).encode())
    elif path.startswith("/scope"):
        s = {k: v for k, v in scope.items() if k not in ("state",)}
        await send_plain(send, json.dumps(jsonable(s)).encode(),
                         headers=[(b"x-kind", b"json")])
    elif path == "/echo":
        body, n = await body_of(receive)
        await send_plain(send, body, headers=[(b"x-length", str(len(body)).encode()),
                                              (b"x-messages", str(n).encode())])
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(int(q.get("n", "5"))):
            await send({"type": "http.response.body", "body": b"%04d" % i + b"x" * 1020,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/sleep":
        STATE["inflight"] += 1
        STATE["max"] = max(STATE["max"], STATE["inflight"])
        try:
            await asyncio.sleep(float(q.get("s", "0.2")))
        finally:
            STATE["inflight"] -= 1
        await send_plain(send, b"slept")
    elif path == "/overlap":
        n = STATE["max"]
        if "reset" in q:
            STATE["max"] = 0
        await send_plain(send, str(n).encode())
    elif path == "/wait-disconnect":
        await body_of(receive)
        m = await receive()
        STATE["events"].append("wait-disconnect:" + m["type"])
        await send_plain(send, b"never seen")
    elif path == "/flood":
        piece = b"z" * 65536
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-length", str(int(q.get("mib", "64")) * 1048576).encode())]})
        for i in range(int(q.get("mib", "64")) * 16):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            STATE["events"].append("flood:%d" % (i + 1))
        await send({"type": "http.response.body", "body": b""})
    elif path == "/events":
        await send_plain(send, "\n".join(STATE["events"][-1:] if "last" in q
                                         else STATE["events"]).encode())
        if "reset" in q:
            del STATE["events"][:]
    elif path == "/raise":
        raise RuntimeError("boom before the response")
    elif path == "/raise-late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after the response started")
    elif path == "/noresponse":
        return
    elif path == "/halfresponse":
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/badheader":
        await send_plain(send, b"bad", headers=[(b"x-bad", b"a\nb")])
    elif path == "/pathsend":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/x-python")]})
        await send({"type": "http.response.pathsend", "path": os.path.abspath(__file__)})
    elif path == "/send-after-end":
        await send_plain(send, b"answered once")
        try:
            await send({"type": "http.response.body", "body": b"again"})
            STATE["events"].append("send-after-end: no error")
        except RuntimeError as e:
            STATE["events"].append("send-after-end: %s" % e)
    elif path == "/background":
        await send_plain(send, b"answered")
        await asyncio.sleep(0.3)
        STATE["events"].append("background-done %.3f" % time.monotonic())
    else:
        await send_plain(send, b"not found", status=404)


class Legacy:
    """The same app as an ASGI 2 double callable (--interface asgi2)."""

    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await app(self.scope, receive, send)
