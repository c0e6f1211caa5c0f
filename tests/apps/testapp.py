"""The WSGI app most integration tests serve (`testapp:app`): one route per
behaviour a test needs. Plain PEP 3333, standard library only.

Query parameters are read with parse_qs; `mark=PATH` on the slow routes
creates PATH once the request reached the app, so a test knows the request
is in flight before it signals the server. `real=1` on /sleep and /hang
blocks the whole process, as code stuck outside a green worker's hub does,
where a plain sleep yields to the other green threads.
"""
import io
import json
import os
import sys
import time
from urllib.parse import parse_qs


def _query(environ):
    q = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {k: v[-1] for k, v in q.items()}


def _mark(q):
    """Creates the file mark=PATH holding this worker's pid. Written aside and
    renamed, so a test that sees the file also sees the pid in it."""
    path = q.get("mark")
    if path:
        with open(path + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(path + ".tmp", path)


def _sleep(q, seconds):
    """Sleeps SECONDS: with real=1 in Q, with the time.sleep of before any
    monkey-patching (gevent, eventlet), which blocks the whole process."""
    sleep = time.sleep
    if q.get("real") == "1" and "gevent.monkey" in sys.modules:
        sleep = sys.modules["gevent.monkey"].get_original("time", "sleep")
    elif q.get("real") == "1" and "eventlet.patcher" in sys.modules:
        sleep = sys.modules["eventlet.patcher"].original("time").sleep
    sleep(seconds)


def _plain(start_response, body, status="200 OK", extra=()):
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    start_response(status, headers + list(extra))
    return [body]


def _environ_json(environ):
    """The environ as JSON: plain values as they are, objects as a flag that they exist."""
    out = {}
    for key, value in environ.items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = "<%s>" % type(value).__name__
    out["_environ_type"] = type(environ).__name__
    out["_str_keys"] = all(isinstance(k, str) for k in environ)
    return json.dumps(out, sort_keys=True).encode("utf-8")


def _read_pieces(inp, how):
    """Reads wsgi.input in the way HOW names and returns the pieces read."""
    pieces = []
    if how == "readline":
        while True:
            line = inp.readline()
            if not line:
                break
            pieces.append(line)
    elif how == "readline2":
        while True:
            line = inp.readline(2)
            if not line:
                break
            pieces.append(line)
    elif how == "iter":
        pieces = list(inp)
    elif how == "readlines":
        pieces = inp.readlines()
    elif how == "read3":
        while True:
            data = inp.read(3)
            if not data:
                break
            pieces.append(data)
    else:
        raise ValueError("unknown read mode %r" % how)
    return pieces


def _stream_input(inp):
    while True:
        data = inp.read(65536)
        if not data:
            return
        yield data


def _late_failure():
    yield b"partial-"
    raise RuntimeError("late boom from testapp")


def _file(environ, start_response, q):
    if q.get("mode") == "bytesio":
        with open(q["path"], "rb") as f:
            fileobj = io.BytesIO(f.read())
    else:
        fileobj = open(q["path"], "rb")
    offset = int(q.get("offset", "0"))
    fileobj.seek(offset)
    size = os.path.getsize(q["path"]) - offset
    headers = [("Content-Type", "application/octet-stream")]
    if "length" in q:
        headers.append(("Content-Length", q["length"]))
    elif q.get("cl", "1") == "1":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](fileobj, 8192)


class _GatedClose:
    """A body whose close() waits until the file GATE exists (at most 20 s):
    app work that runs after the last byte was handed to the server."""

    def __init__(self, body, gate):
        self.body, self.gate = body, gate

    def __iter__(self):
        return iter([self.body])

    def close(self):
        deadline = time.monotonic() + 20
        while not os.path.exists(self.gate) and time.monotonic() < deadline:
            time.sleep(0.01)


_kept_sock = []


def _sock(environ, start_response, q):
    """environ["gunicorn.socket"], described; with old=1, the one kept from
    the previous /sock request, used after its request ended."""
    if q.get("old"):
        old = _kept_sock.pop()
        try:
            old.getpeername()
            err = None
        except OSError as e:
            err = type(e).__name__
        body = {"old": [old.fileno(), err]}
    else:
        s = environ["gunicorn.socket"]
        _kept_sock.append(s)
        body = {"peer": list(s.getpeername()), "local": list(s.getsockname()),
                "family": s.family, "type": s.type, "fileno": s.fileno(),
                "no_close": not hasattr(s, "close"), "REMOTE_PORT": environ["REMOTE_PORT"]}
    return _plain(start_response, json.dumps(body).encode())


def app(environ, start_response):
    path = environ["PATH_INFO"]
    q = _query(environ)
    inp = environ["wsgi.input"]

    if path in ("/", "/hello"):
        return _plain(start_response, b"hello")
    if path == "/say":
        return _plain(start_response, q.get("w", "").encode("utf-8"))
    if path == "/pid":
        return _plain(start_response, str(os.getpid()).encode("ascii"))
    if path == "/environ" or path.startswith("/environ/"):
        body = _environ_json(environ)
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/echo":
        return _plain(start_response, inp.read())
    if path == "/echo-stream":
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return _stream_input(inp)
    if path == "/lines":
        pieces = _read_pieces(inp, q.get("how", "readline"))
        body = json.dumps([p.decode("latin-1") for p in pieces]).encode("utf-8")
        return _plain(start_response, body)
    if path == "/chunked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one-", b"two-", b"", b"three"])
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written-")
        return [b"returned"]
    if path == "/sock":
        return _sock(environ, start_response, q)
    if path == "/exit":
        # What gunicorn lets end its worker: SystemExit(code), or KeyboardInterrupt.
        if q.get("code") == "interrupt":
            raise KeyboardInterrupt
        raise SystemExit(int(q["code"]) if q.get("code", "").isdigit() else q.get("code"))
    if path == "/raise":
        raise RuntimeError("boom from testapp")
    if path == "/raise-late":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _late_failure()
    if path == "/badheader":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-Bad", "a\r\nInjected: yes")])
        return [b"should not be sent"]
    if path == "/badheader-name":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Bad Name", "x")])
        return [b"should not be sent"]
    if path == "/sleep":
        _mark(q)
        _sleep(q, float(q.get("s", "1")))
        return _plain(start_response, b"slept")
    if path == "/hang":
        _mark(q)
        while True:
            _sleep(q, 3600)
    if path == "/slow-close":
        body = b"closing"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return _GatedClose(body, q["gate"])
    if path == "/file":
        return _file(environ, start_response, q)
    return _plain(start_response, b"not found", "404 Not Found")
