"""Out of file descriptors (EMFILE) in a worker, on every worker class: the
worker logs one line saying what to raise, stops accepting for a moment
instead of spinning on the listener, and serves again once descriptors are
free; the connections it could not take wait in the listen queue."""
import resource
import socket
import time
import unittest

from qilintest import Server, per_worker_class, wait_for

LIMIT = 96  # descriptors the server may have open: a booted worker needs far fewer
LINE = ("accept() failed: Too many open files; pausing accepts briefly (raise the open files"
        " limit, ulimit -n)")


class EmfileTest(unittest.TestCase):
    def start(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # The server inherits the lowered limit; this process gets its own back at once.
        resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))
        try:
            srv = Server(["--keep-alive", "30", "--worker-connections", "1000"], wait=False)
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        self.addCleanup(srv.close)
        srv.wait_ready()
        return srv

    def test_out_of_descriptors_then_serves_again(self):
        srv = self.start()
        held = []
        try:
            # Idle keep-alive connections the worker parks until it runs out.
            for _ in range(LIMIT + 20):
                held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
            wait_for(lambda: LINE in srv.log_text(), 20, what="the EMFILE line")
            time.sleep(1.5)  # three back-off periods: still one line, no spinning
        finally:
            for s in held:
                s.close()
        self.assertEqual(srv.log_text().count(LINE), 1, srv.log_text())
        # Descriptors are free again: a new client is served.
        self.assertEqual(srv.get("/hello", timeout=10).body, b"hello")


per_worker_class(globals(), EmfileTest)

if __name__ == "__main__":
    unittest.main()
