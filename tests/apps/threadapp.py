"""A WSGI app for the gthread worker's tests (`threadapp:app`): requests that
block, and what the app itself sees of the threads serving it. Standard
library only; every wait is bounded so a broken server cannot hang a test.

  /rendezvous?n=N&ms=M  waits until N requests are inside the app at once
                        (a barrier), sleeps M ms, and answers the highest
                        number of requests it saw in the app together; 409
                        when N never met (the server did not run them at once)
  /block?ms=M           sleeps M ms; answers the peak concurrency seen
  /gate?path=P&mark=Q   creates Q (the request is in flight), then waits
                        until file P exists and answers "released" (with
                        &pid=1: the worker's pid)
  /local?v=V&n=N        stores V in a threading.local, meets N-1 others, and
                        answers what the local holds afterwards
  /info                 JSON: wsgi.multithread, wsgi.multiprocess, thread id
  /hello                "hello"
"""
import json
import os
import threading
import time
from urllib.parse import parse_qs

WAIT_LIMIT = 10.0

_lock = threading.Lock()
_state = {"active": 0, "peak": 0}
_barriers = {}
_local = threading.local()


def _query(environ):
    q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[-1] for k, v in q.items()}


def _plain(start_response, body, status="200 OK"):
    if isinstance(body, str):
        body = body.encode("utf-8")
    start_response(status, [("Content-Type", "text/plain"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _enter():
    with _lock:
        _state["active"] += 1
        _state["peak"] = max(_state["peak"], _state["active"])


def _leave():
    with _lock:
        _state["active"] -= 1
        return _state["peak"]


def _barrier(n):
    with _lock:
        b = _barriers.get(n)
        if b is None or b.broken:
            b = _barriers[n] = threading.Barrier(n)
        return b


def _meet(n):
    """True once N requests are waiting here together; False on timeout."""
    try:
        _barrier(n).wait(WAIT_LIMIT)
        return True
    except threading.BrokenBarrierError:
        return False


def _gate(q):
    mark = q.get("mark")
    if mark:
        with open(mark, "w") as f:
            f.write(str(threading.get_ident()))
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(q["path"]):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    q = _query(environ)
    if path == "/hello":
        return _plain(start_response, "hello")
    if path == "/info":
        return _plain(start_response, json.dumps({
            "multithread": environ["wsgi.multithread"],
            "multiprocess": environ["wsgi.multiprocess"],
            "thread": threading.get_ident(),
        }))
    if path in ("/rendezvous", "/block"):
        _enter()
        try:
            met = _meet(int(q["n"])) if path == "/rendezvous" else True
            time.sleep(int(q.get("ms", "100")) / 1000.0)
        finally:
            peak = _leave()
        if not met:
            return _plain(start_response, "peak %d" % peak, "409 Conflict")
        return _plain(start_response, str(peak))
    if path == "/gate":
        if not _gate(q):
            return _plain(start_response, "gate never opened", "504 Gateway Timeout")
        return _plain(start_response, str(os.getpid()) if q.get("pid") else "released")
    if path == "/local":
        _local.value = q["v"]
        met = _meet(int(q["n"]))
        return _plain(start_response, "%s %s" % (getattr(_local, "value", None), met))
    return _plain(start_response, "not found", "404 Not Found")
