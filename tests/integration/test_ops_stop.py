"""Stopping and readiness: on TERM the connections the kernel
already accepted are served, not reset; systemd Type=notify gets READY=1
once a worker can serve, STOPPING=1 on stop, and MAINPID= from a master
started by USR2."""
import os
import shutil
import signal
import socket
import tempfile
import threading
import unittest

from opsload import get_once
from qilintest import Server, children_of, wait_for, worker_built


class StopTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-stop-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_term_serves_connections_already_queued(self):
        with Server(["--graceful-timeout", "20"], workers=1) as srv:
            slow = {}
            mark = os.path.join(self.tmp, "busy")

            def slow_request():
                slow["res"] = get_once(srv.port, "/sleep?s=1.5&mark=" + mark, timeout=20)

            t = threading.Thread(target=slow_request)
            t.start()
            wait_for(lambda: os.path.exists(mark), 10, what="the worker to be busy")
            # The only worker is busy: these wait in the kernel's accept queue.
            queued = []
            for i in range(5):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=20)
                s.sendall(b"GET /say?w=q%d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % i)
                queued.append(s)
            srv.send_signal(signal.SIGTERM)
            bodies = []
            for s in queued:
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                bodies.append(data.split(b"\r\n\r\n", 1)[-1])
            t.join(20)
            self.assertEqual(slow["res"], (200, b"slept"))
            self.assertEqual(bodies, [b"q%d" % i for i in range(5)])
            self.assertEqual(srv.wait(), 0)

    def test_request_timeout_kills_the_worker_and_says_why(self):
        with Server(["--request-timeout", "1", "--timeout", "60"], workers=1) as srv:
            [worker] = srv.wait_workers(1)
            with srv.connect(timeout=30) as c:
                c.send_request("GET", "/sleep?s=30")
                srv.wait_log(r"WORKER REQUEST TIMEOUT \(pid:%d\): a request ran longer than "
                             r"--request-timeout \(1s\)" % worker, timeout=20)
            srv.wait_log(r"Worker \(pid:%d\) was killed after request timeout" % worker,
                         timeout=20)
            srv.wait_workers(1, exclude=[worker], timeout=20)
            self.assertEqual(srv.get("/hello").body, b"hello")
            self.assertNotIn("WORKER TIMEOUT (pid", srv.log_text())

    @unittest.skipUnless(worker_built("gthread"), "the gthread worker plugin is not built")
    def test_request_timeout_with_threads(self):
        # gthread's heartbeat goes on while one thread is stuck: only the
        # per-request check can see it, and other threads keep serving.
        args = ["-k", "gthread", "--threads", "4", "--request-timeout", "1"]
        with Server(args, workers=1) as srv:
            [worker] = srv.wait_workers(1)
            with srv.connect(timeout=30) as c:
                c.send_request("GET", "/sleep?s=30")
                for _ in range(3):
                    self.assertEqual(srv.get("/sleep?s=0.2").body, b"slept")
                srv.wait_log(r"Worker \(pid:%d\) was killed after request timeout" % worker,
                             timeout=20)
            srv.wait_workers(1, exclude=[worker], timeout=20)
            self.assertEqual(srv.get("/hello").body, b"hello")

    def test_request_timeout_spares_short_requests(self):
        with Server(["--request-timeout", "2"], workers=1) as srv:
            [worker] = srv.wait_workers(1)
            for _ in range(3):
                self.assertEqual(srv.get("/sleep?s=0.8").body, b"slept")
            self.assertEqual(srv.worker_pids(), [worker])
            self.assertNotIn("TIMEOUT", srv.log_text())

    def notify_socket(self):
        path = os.path.join(self.tmp, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(20)
        self.addCleanup(s.close)
        return s, path

    def test_systemd_notify(self):
        sock, path = self.notify_socket()
        with Server(workers=2, env={"NOTIFY_SOCKET": path}, wait=False) as srv:
            msg = sock.recv(4096).decode()
            self.assertIn("READY=1", msg.split("\n"))
            # Sent only once a worker had loaded the app: one is there and serves.
            self.assertTrue(children_of(srv.pid))
            self.assertEqual(get_once(srv.port, "/hello"), (200, b"hello"))

            srv.send_signal(signal.SIGUSR2)
            new = int(srv.wait_log(r"Starting a new master \(pid:(\d+)\)").group(1))
            msg = sock.recv(4096).decode().split("\n")
            self.assertIn("MAINPID=%d" % new, msg)
            self.assertIn("READY=1", msg)
            os.kill(new, signal.SIGTERM)
            self.assertIn("STOPPING=1", sock.recv(4096).decode().split("\n"))
            srv.wait_log(r"New master \(pid:%d\) exited" % new, timeout=20)

            srv.send_signal(signal.SIGTERM)
            self.assertIn("STOPPING=1", sock.recv(4096).decode().split("\n"))
            self.assertEqual(srv.wait(), 0)


if __name__ == "__main__":
    unittest.main()
