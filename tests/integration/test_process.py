"""The master and its workers: respawn after a kill, graceful TERM, fast
INT, the liveness timeout, and the worker count."""
import os
import shutil
import signal
import tempfile
import threading
import unittest

from qilintest import (IncompleteResponse, Server, hang_timeout, per_worker_class, wait_for,
                       worker_class)


class Marker:
    """A path the app creates once a request reached it (testapp's mark=)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="qilin-mark-")
        self.path = os.path.join(self.dir, "mark")

    def wait(self, timeout=10.0):
        wait_for(lambda: os.path.exists(self.path), timeout, what="the request to reach the app")

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class ProcessTest(unittest.TestCase):
    def setUp(self):
        self.marker = Marker()
        self.addCleanup(self.marker.close)

    def test_killed_worker_is_replaced(self):
        with Server() as srv:
            [old] = srv.wait_workers(1)
            os.kill(old, signal.SIGKILL)
            srv.wait_log(r"Worker \(pid:%d\) was sent SIGKILL! Perhaps out of memory\?" % old)
            [new] = srv.wait_workers(1, exclude=[old])
            self.assertNotEqual(new, old)
            resp = srv.get("/pid")
            self.assertEqual(resp.status, 200)
            self.assertEqual(int(resp.body), new)
            self.assertIn(new, srv.booted_pids())

    def test_sigterm_finishes_in_flight_request(self):
        with Server() as srv:
            conn = srv.connect(timeout=20)
            self.addCleanup(conn.close)
            conn.send_request("GET", "/sleep?s=1&mark=" + self.marker.path)
            self.marker.wait()
            srv.send_signal(signal.SIGTERM)
            resp = conn.read_response()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, b"slept")
            self.assertEqual(srv.wait(), 0)
            log = srv.log_text()
            self.assertIn("Handling signal: term", log)
            self.assertIn("Shutting down: Master", log)

    def test_sigterm_idle_server_exits_zero(self):
        with Server(workers=2) as srv:
            workers = srv.wait_workers(2)
            self.assertEqual(srv.stop(signal.SIGTERM), 0)
            self.assertIn("Shutting down: Master", srv.log_text())
            wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in workers),
                     10, what="the workers to exit")

    def test_sigint_stops_without_waiting_for_requests(self):
        # The in-flight request would take a minute and graceful_timeout is
        # 60 s: only a fast stop gets the master out within the bound below.
        with Server(["--graceful-timeout", "60"]) as srv:
            workers = srv.wait_workers(1)
            conn = srv.connect(timeout=20)
            self.addCleanup(conn.close)
            conn.send_request("GET", "/sleep?s=60&mark=" + self.marker.path)
            self.marker.wait()
            srv.send_signal(signal.SIGINT)
            self.assertEqual(srv.wait(timeout=15), 0)
            self.assertIn("Shutting down: Master", srv.log_text())
            wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in workers),
                     10, what="the worker to exit")

    def test_sys_exit_in_a_request_ends_the_worker_as_gunicorn(self):
        # SystemExit(3) from a request ends the worker with 3, which stops
        # the server ("Worker failed to boot."), as gunicorn does; the why
        # is logged. KeyboardInterrupt ends the worker, which is replaced.
        with Server(workers=1) as srv:
            [old] = srv.wait_workers(1)
            with srv.connect() as c:
                c.send_request("GET", "/exit?code=interrupt")
                self.assertTrue(c.closed_by_peer())
            srv.wait_log(r"\[WARNING\] Worker exiting: the application raised KeyboardInterrupt"
                         r" in /exit\?code=interrupt")
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            self.assertEqual(int(srv.get("/pid").body), new)
            with srv.connect() as c:
                c.send_request("GET", "/exit?code=3")
                self.assertTrue(c.closed_by_peer())
            self.assertEqual(srv.wait(timeout=20), 3)
            srv.wait_log(r"Worker exiting: the application raised SystemExit\(3\) in /exit\?code=3")
            self.assertIn("Reason: Worker failed to boot.", srv.log_text())

    def test_hung_worker_is_killed_after_timeout(self):
        args, line = ["-t", hang_timeout(2)], r"WORKER TIMEOUT \(pid:%d\)"
        if worker_class() == "gthread":
            # A hung pool thread does not stop the main thread's heartbeat
            # (a long request is not a dead worker), so -t alone
            # never fires there; --request-timeout is what sees the hang.
            args, line = args + ["--request-timeout", "2"], r"WORKER REQUEST TIMEOUT \(pid:%d\)"
        with Server(args) as srv:
            [old] = srv.wait_workers(1)
            hung = srv.connect(timeout=30)
            self.addCleanup(hung.close)
            hung.send_request("GET", "/hang?real=1&mark=" + self.marker.path)
            self.marker.wait()
            srv.wait_log(line % old, timeout=30)
            [new] = srv.wait_workers(1, exclude=[old], timeout=30)
            resp = srv.get("/pid")
            self.assertEqual(resp.status, 200)
            self.assertEqual(int(resp.body), new)
            # The hung client gets an answer or a closed connection, not silence.
            try:
                hung.read_response()
            except IncompleteResponse as e:
                self.assertNotIn("no data from the server", str(e))
            # A timeout kill is reported as a timeout, not as an OOM kill.
            self.assertNotIn("Worker (pid:%d) was sent SIGKILL! Perhaps out of memory?" % old,
                             srv.log_text())
            if worker_class() == "gthread":
                self.assertNotIn("WORKER TIMEOUT (pid:%d)" % old, srv.log_text())

    def test_two_workers_boot(self):
        with Server(workers=2) as srv:
            booted = srv.booted_pids()
            self.assertEqual(len(booted), 2, srv.log_text())
            self.assertEqual(len(set(booted)), 2)
            self.assertEqual(sorted(booted), srv.wait_workers(2))
            self.assertEqual(srv.get("/hello").body, b"hello")

    def test_both_workers_serve(self):
        with Server(workers=2) as srv:
            workers = set(srv.wait_workers(2))
            seen = set()
            # Hold one worker busy so the other must answer.
            busy = srv.connect(timeout=20)
            self.addCleanup(busy.close)
            busy.send_request("GET", "/sleep?s=3&real=1&mark=" + self.marker.path)
            self.marker.wait()
            with open(self.marker.path) as f:
                seen.add(int(f.read()))
            seen.add(int(srv.get("/pid").body))
            self.assertEqual(seen, workers)
            self.assertEqual(busy.read_response().body, b"slept")

    def test_startup_log_lines(self):
        with Server() as srv:
            log = srv.log_text()
            self.assertRegex(log, r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[%d\] \[INFO\] "
                                  r"Listening at: http://127\.0\.0\.1:%d \(%d\)"
                             % (srv.pid, srv.port, srv.pid))
            self.assertRegex(log, r"(?m)\[INFO\] Using worker: %s$" % worker_class())
            self.assertRegex(log, r"\[INFO\] Starting qilin \d+\.\d+")


class ConcurrentClientsTest(unittest.TestCase):
    def test_many_keepalive_clients_then_term(self):
        """Concurrent keep-alive clients all get their own answers; TERM then exits 0."""
        with Server(["--keep-alive", "5"], workers=2) as srv:
            results, errors = [], []

            def client(i):
                try:
                    with srv.connect(timeout=20) as c:
                        for j in range(5):
                            body = c.request("GET", "/say?w=%d-%d" % (i, j)).body
                            results.append(body == b"%d-%d" % (i, j))
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(repr(e))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            self.assertEqual(errors, [])
            self.assertEqual(results, [True] * 40)
            self.assertEqual(srv.stop(), 0)


# The process model holds on every worker class.
per_worker_class(globals(), ProcessTest, ConcurrentClientsTest)

if __name__ == "__main__":
    unittest.main()
