"""Keep-alive and pipelining on the default (sync) worker, and that an idle
or slow connection never blocks a single worker from serving others."""
import os
import unittest

from qilintest import Server, build_request, per_worker_class, wait_for


class KeepAliveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # A long keep-alive: an idle connection that blocked the only worker
        # would stall the other client for the whole test, not just 2 s.
        cls.srv = Server(["--keep-alive", "30"], workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_pipelined_requests_in_one_send(self):
        data = (build_request("GET", "/say?w=one")
                + build_request("POST", "/echo", body=b"two")
                + build_request("GET", "/say?w=three"))
        with self.srv.connect() as c:
            c.send(data)
            bodies = [c.read_response("GET").body, c.read_response("POST").body,
                      c.read_response("GET").body]
            # Still open and in step after the burst.
            fourth = c.request("GET", "/say?w=four")
        self.assertEqual(bodies, [b"one", b"two", b"three"])
        self.assertEqual(fourth.body, b"four")

    def test_pipelined_chunked_responses(self):
        data = build_request("GET", "/chunked") * 3
        with self.srv.connect() as c:
            c.send(data)
            resps = [c.read_response() for _ in range(3)]
        self.assertEqual([r.body for r in resps], [b"one-two-three"] * 3)

    def test_sequential_requests_on_one_connection(self):
        with self.srv.connect() as c:
            for i in range(10):
                resp = c.request("GET", "/say?w=%d" % i)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, str(i).encode())
                self.assertNotEqual((resp.header("Connection") or "").lower(), "close")

    def test_connection_close_is_honoured(self):
        with self.srv.connect() as c:
            resp = c.request("GET", "/hello", headers=[("Connection", "close")])
            self.assertEqual(resp.body, b"hello")
            self.assertTrue(c.closed_by_peer())

    def test_closing_response_ends_before_the_apps_close(self):
        # The last bytes leave with the FIN (conn_end_output): the client has
        # the whole response and its end while the app's close() still runs.
        gate = os.path.join(self.srv.tmpdir, "close-gate")
        self.addCleanup(lambda: open(gate, "w").close())
        with self.srv.connect(timeout=10) as c:
            resp = c.request("GET", "/slow-close?gate=" + gate,
                             headers=[("Connection", "close")])
            self.assertEqual(resp.body, b"closing")
            self.assertTrue(c.closed_by_peer())

    def test_idle_keepalive_connection_does_not_block_others(self):
        with self.srv.connect() as idle:
            self.assertEqual(idle.request("GET", "/say?w=idle").body, b"idle")
            # IDLE is now waiting for its next request; another client is served.
            other = self.srv.get("/say?w=other")
            self.assertEqual(other.body, b"other")
            # And IDLE was kept, not dropped to make room.
            self.assertEqual(idle.request("GET", "/say?w=again").body, b"again")

    def test_silent_new_connection_does_not_block_others(self):
        with self.srv.connect() as silent:
            other = self.srv.get("/say?w=other")
            self.assertEqual(other.body, b"other")
            self.assertEqual(silent.request("GET", "/say?w=late").body, b"late")

    def test_partial_request_does_not_block_others(self):
        with self.srv.connect() as slow:
            slow.send(b"GET /say?w=slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
            other = self.srv.get("/say?w=other")
            self.assertEqual(other.body, b"other")
            slow.send(b"done\r\n\r\n")
            self.assertEqual(slow.read_response().body, b"slow")


    def test_http10_keepalive_when_asked(self):
        with self.srv.connect() as c:
            first = c.request("GET", "/hello", headers=[("Connection", "keep-alive")],
                              version="HTTP/1.0")
            self.assertEqual(first.body, b"hello")
            second = c.request("GET", "/say?w=again", headers=[("Connection", "keep-alive")],
                               version="HTTP/1.0")
            self.assertEqual(second.body, b"again")


class KeepAliveOptionTest(unittest.TestCase):
    def test_keepalive_zero_closes_every_connection(self):
        with Server(["--keep-alive", "0"]) as srv:
            with srv.connect() as c:
                resp = c.request("GET", "/hello")
                self.assertEqual(resp.body, b"hello")
                self.assertEqual((resp.header("Connection") or "").lower(), "close")
                self.assertTrue(c.closed_by_peer())

    def test_idle_connection_closed_after_keepalive(self):
        with Server(["--keep-alive", "1"]) as srv:
            with srv.connect(timeout=15) as c:
                self.assertEqual(c.request("GET", "/hello").body, b"hello")
                # Bounded by the socket timeout; only "closed at all" is asserted.
                self.assertTrue(c.closed_by_peer())
            self.assertEqual(srv.get("/hello").body, b"hello")


class LateKeepAliveTest(unittest.TestCase):
    """A kept-alive client whose next request arrived before its keep-alive
    ran out, while one worker was busy with another client's long request,
    is served once the worker is free: never closed as idle (a reset that
    nginx answers 502). On every worker class; the long request blocks the
    whole worker (a real sleep, one thread)."""

    def test_request_that_arrived_in_time_is_served(self):
        with Server(["--keep-alive", "1", "--threads", "1"], workers=1) as srv:
            with srv.connect(timeout=20) as s, srv.connect(timeout=20) as t:
                self.assertEqual(s.request("GET", "/hello").body, b"hello")
                marker = os.path.join(srv.tmpdir, "busy")
                t.send_request("GET", "/sleep?s=2&real=1&mark=" + marker)
                wait_for(lambda: os.path.exists(marker), 10, what="the long request to start")
                # Well inside S's one second of keep-alive, which runs out
                # while the worker is still busy.
                s.send_request("GET", "/say?w=late")
                self.assertEqual(t.read_response().body, b"slept")
                resp = s.read_response()
                self.assertEqual((resp.status, resp.body), (200, b"late"))


per_worker_class(globals(), LateKeepAliveTest)

if __name__ == "__main__":
    unittest.main()
