"""Slow and idle clients, for every worker class that is built:
--header-timeout answers 408 to a client that sent part of a head and then
stalled, and closes silently on one that sent nothing; --body-timeout
answers 408 to a stalled body; --keep-alive closes an idle connection. The
worker survives each and serves the next request. No timing is asserted:
only what the client receives."""
import os
import sys
import unittest

from qilintest import APPS, Server, built_worker_classes, worker_built

sys.path.insert(0, os.path.normpath(os.path.join(APPS, "..", "conformance")))
import runner  # noqa: E402



class _TimeoutBase:
    """The tests; a class per worker mixes them into a TestCase below."""

    worker = None
    ruby = False  # the ruby plugin's Rack app (tests/apps/rack/config.ru), whose
    # rack.input reads the body in Ruby

    @classmethod
    def setUpClass(cls):
        args = ["-k", cls.worker, "--header-timeout", "1", "--body-timeout", "1",
                "--keep-alive", "1"]
        if cls.ruby:
            cls.srv = Server(args + ["--plugin", "ruby"], app="config.ru", workers=1,
                             chdir=os.path.join(APPS, "rack"))
        else:
            cls.srv = Server(args, workers=1, env=runner.server_env(cls.worker))
        cls.pid = int(cls.srv.get("/pid").body)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def assert_same_worker(self):
        self.assertEqual(int(self.srv.get("/pid").body), self.pid, "the worker was replaced")

    def test_partial_head_gets_408(self):
        with self.srv.connect(timeout=10) as c:
            c.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            resp = c.read_response()
            self.assertEqual(resp.status, 408, resp)
            self.assertEqual(resp.header("Connection"), "close")
            self.assertTrue(c.closed_by_peer())
        self.srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Request not complete")
        self.assert_same_worker()

    def test_silent_client_is_closed_without_answer(self):
        with self.srv.connect(timeout=10) as c:
            self.assertEqual(c.read_to_eof(), b"")
        self.assert_same_worker()

    def test_stalled_chunked_body_gets_408(self):
        # A chunked body is read by the app: --body-timeout ends the stalled read.
        with self.srv.connect(timeout=10) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n")
            resp = c.read_response()
            self.assertEqual(resp.status, 408, resp)
            self.assertTrue(c.closed_by_peer())
        self.assert_same_worker()
        # The client's doing, not the app's: no traceback.
        self.assertNotIn("Error handling request", self.srv.log_text())

    def test_stalled_small_body_gets_408(self):
        # A small Content-Length body is read before the app runs, within
        # --header-timeout, so a stalled one never holds the worker.
        with self.srv.connect(timeout=10) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            resp = c.read_response()
            self.assertEqual(resp.status, 408, resp)
            self.assertTrue(c.closed_by_peer())
        self.srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Request not complete")
        self.assert_same_worker()

    def test_keepalive_idle_connection_closes(self):
        with self.srv.connect(timeout=10) as c:
            resp = c.request("GET", "/hello")
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("Connection", "keep-alive").lower(), "keep-alive")
            # Idle now: the server must close it on its own (bounded by the timeout).
            self.assertTrue(c.closed_by_peer())
        self.assert_same_worker()

    def test_complete_requests_are_not_cut(self):
        with self.srv.connect(timeout=10) as c:
            for _ in range(3):
                self.assertEqual(c.request("GET", "/hello").body, b"hello")


for _worker in built_worker_classes():
    globals()["Timeouts_%s" % _worker] = type("Timeouts_%s" % _worker, (_TimeoutBase, unittest.TestCase),
                                             {"worker": _worker})
    if _worker in ("sync", "gthread") and worker_built("ruby"):
        globals()["Timeouts_ruby_%s" % _worker] = type(
            "Timeouts_ruby_%s" % _worker, (_TimeoutBase, unittest.TestCase),
            {"worker": _worker, "ruby": True})
del _worker

if __name__ == "__main__":
    unittest.main()
