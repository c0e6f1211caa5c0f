"""opsapp's ASGI 3 twin (`asgiopsapp:app`, for -k asyncio): the same routes
and answers: who am I (pid, uid, groups), what is in my environment, and
output written to stdout/stderr."""
import os
import sys

# /leak keeps 10 MiB more on every request (--max-worker-memory's tests).
_LEAKED = []


async def _plain(send, body):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    query = scope["query_string"].decode("latin-1")
    if path == "/pid":
        return await _plain(send, str(os.getpid()).encode())
    if path == "/leak":
        _LEAKED.append(b"x" * (10 << 20))
        return await _plain(send, str(os.getpid()).encode())
    if path == "/env":
        return await _plain(send, os.environ.get(query, "<unset>").encode())
    if path == "/ids":
        body = "%d %d %s" % (os.getuid(), os.getgid(), ",".join(map(str, sorted(os.getgroups()))))
        return await _plain(send, body.encode())
    if path == "/print":
        print("stdout-" + query, flush=True)
        sys.stderr.write("stderr-" + query + "\n")
        sys.stderr.flush()
        os.write(2, ("fd2-" + query + "\n").encode())
        return await _plain(send, b"printed")
    return await _plain(send, b"hello")
