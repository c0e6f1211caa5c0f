"""A bounded load generator for the operations tests: client threads send
GET requests to 127.0.0.1 while a test signals the server, and count every
failure (connection error, timeout, non-2xx). Half the threads open a fresh
connection per request (Connection: close); the others keep theirs alive as
wrk and a proxy's upstream pool do, sending the next request as soon as the
last response arrived, and reconnect only after a response that said
Connection: close. A request that was sent on a connection the server had
announced as kept alive and got no response is a failure too: that is the
reset a recycling worker must never cause.

    with Load(port, threads=4) as load:
        ...            # HUP, TTIN, USR2 ...
    assert load.failed == 0, load.summary()

Every request is bounded by a socket timeout and the load by the `with`
block; nothing here measures or asserts timings.
"""
import socket
import threading
import time

from qilintest import Conn, IncompleteResponse

REQUEST_TIMEOUT = 10.0


def get_once(port, path, timeout=REQUEST_TIMEOUT):
    """One GET with Connection: close; returns (status, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" %
                  path.encode("ascii"))
        data = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        raise ConnectionError("incomplete response: %r" % bytes(data[:200]))
    status = int(head.split(b" ", 2)[1])
    return status, body


class _KeptAlive:
    """One client's kept-alive connection; get() sends GET PATH on it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def get(self, path):
        if self.conn is None:
            self.conn = Conn(self.port, REQUEST_TIMEOUT)
        try:
            self.conn.send_request("GET", path, headers=[("Host", "127.0.0.1")])
            resp = self.conn.read_response()
        except (OSError, IncompleteResponse):
            self.close()
            raise
        if (resp.header("Connection") or "").lower() == "close":
            self.close()
        return resp.status, resp.body

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """THREADS clients looping over GET PATH until the block ends, every
    other one on a kept-alive connection."""

    def __init__(self, port, threads=4, path="/pid"):
        self.port = port
        self.path = path
        self.nthreads = threads
        self.ok = 0
        self.failed = 0
        self.errors = []
        self.bodies = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def _run(self, kept):
        while not self._stop.is_set():
            try:
                if kept is not None:
                    status, body = kept.get(self.path)
                else:
                    status, body = get_once(self.port, self.path)
                good = 200 <= status < 300
                err = None if good else "status %d" % status
            except (OSError, ValueError, IndexError, IncompleteResponse) as e:
                good, body, err = False, b"", "%s%s: %s" % (
                    "kept-alive " if kept is not None else "", type(e).__name__, e)
            with self._lock:
                if good:
                    self.ok += 1
                    self.bodies.add(body)
                else:
                    self.failed += 1
                    if len(self.errors) < 20:
                        self.errors.append(err)
        if kept is not None:
            kept.close()

    def __enter__(self):
        for i in range(self.nthreads):
            kept = _KeptAlive(self.port) if i % 2 else None
            t = threading.Thread(target=self._run, args=(kept,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(REQUEST_TIMEOUT + 5)
        self._threads = []

    def wait_requests(self, n, timeout=20.0):
        """Waits until N more requests succeeded (so load really spans an event)."""
        with self._lock:
            target = self.ok + n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.ok >= target:
                    return
            time.sleep(0.02)
        raise AssertionError("load stalled: %s" % self.summary())

    def summary(self):
        return "%d ok, %d failed %r" % (self.ok, self.failed, self.errors)
