"""The app of the operations tests: who am I (pid, uid, groups), what is in
my environment, and output written to stdout/stderr."""
import os
import sys

# /leak keeps 10 MiB more on every request (--max-worker-memory's tests).
_LEAKED = []


def _plain(start_response, body):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def app(environ, start_response):
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/pid":
        return _plain(start_response, str(os.getpid()).encode())
    if path == "/leak":
        _LEAKED.append(b"x" * (10 << 20))
        return _plain(start_response, str(os.getpid()).encode())
    if path == "/env":
        return _plain(start_response, os.environ.get(query, "<unset>").encode())
    if path == "/ids":
        body = "%d %d %s" % (os.getuid(), os.getgid(), ",".join(map(str, sorted(os.getgroups()))))
        return _plain(start_response, body.encode())
    if path == "/print":
        print("stdout-" + query, flush=True)
        sys.stderr.write("stderr-" + query + "\n")
        sys.stderr.flush()
        os.write(2, ("fd2-" + query + "\n").encode())
        return _plain(start_response, b"printed")
    return _plain(start_response, b"hello")
