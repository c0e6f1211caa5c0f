"""The app behind nginx in test_nginx.py (`proxiedapp:app`). It dispatches on
the last segment of the path, so nginx locations with different proxy
settings (/stream/..., /nokeep/...) reach the same handlers:

  .../environ       what the server told the app, as JSON, with the
                    connection that carried the request ("conn")
  .../sha256        the body's length and SHA-256, read in pieces
  .../bytes?n=N     N bytes of a fixed pattern (the test recomputes it)
  .../ignore        "ignored", without reading the request body
  .../sleep?s=S     "slept" after S seconds

Plain PEP 3333, standard library only.
"""
import hashlib
import json
import os
import time

KEYS = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME",
        "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "CONTENT_LENGTH",
        "HTTP_TRANSFER_ENCODING", "wsgi.input_terminated")
PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern_bytes(n):
    """The body of .../bytes?n=N: PATTERN repeated, cut at N bytes."""
    return b"".join(_pattern(n))


def _listening_inodes():
    """The inodes of every listening TCP and unix socket (/proc/net)."""
    out = set()
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/net/" + name) as f:
                next(f)
                out.update(line.split()[9] for line in f if line.split()[3] == "0A")
        except FileNotFoundError:
            pass
    with open("/proc/net/unix") as f:
        next(f)  # Num RefCount Protocol Flags Type St Inode Path
        out.update(line.split()[6] for line in f if int(line.split()[3], 16) & 0x10000)
    return out


def connection_id(pid):
    """Which connection carries the request, for a worker that serves one at
    a time: the socket inodes open in the process, less the listeners (and
    so the same list for every request on one connection, a new one for a
    new connection, over TCP or a unix socket alike)."""
    listening = _listening_inodes()
    mine = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue  # closed meanwhile (the listdir's own fd)
        if target.startswith("socket:[") and target[8:-1] not in listening:
            mine.add(target[8:-1])
    return sorted(mine)


def _json(start_response, obj):
    data = json.dumps(obj, sort_keys=True).encode("utf-8")
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(data)))])
    return [data]


def _pattern(n):
    """pattern_bytes(N) in 64 KiB pieces, as the app sends it."""
    whole, rest = divmod(n, len(PATTERN))
    for _ in range(whole):
        yield PATTERN
    if rest:
        yield PATTERN[:rest]


def app(environ, start_response):
    what = environ["PATH_INFO"].rsplit("/", 1)[-1]
    if what == "environ":
        out = {k: environ[k] for k in KEYS if k in environ}
        out["pid"] = os.getpid()
        out["conn"] = [out["pid"]] + connection_id(out["pid"])
        return _json(start_response, out)
    if what == "sha256":
        h = hashlib.sha256()
        size = 0
        inp = environ["wsgi.input"]
        while True:
            piece = inp.read(65536)
            if not piece:
                break
            h.update(piece)
            size += len(piece)
        return _json(start_response, {
            "size": size, "sha256": h.hexdigest(),
            "CONTENT_LENGTH": environ.get("CONTENT_LENGTH", ""),
            "HTTP_TRANSFER_ENCODING": environ.get("HTTP_TRANSFER_ENCODING", "")})
    if what == "bytes":
        n = int(environ.get("QUERY_STRING", "n=0").partition("=")[2] or 0)
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(n))])
        return _pattern(n)
    if what in ("ignore", "sleep"):
        if what == "sleep":
            time.sleep(float(environ.get("QUERY_STRING", "s=0").partition("=")[2] or 0))
        body = b"ignored" if what == "ignore" else b"slept"
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
    return [b"not found"]
