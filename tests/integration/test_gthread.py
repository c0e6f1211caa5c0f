"""The gthread worker: requests run on a pool of threads while the worker's
main thread keeps the listeners and idle connections. Every
concurrency claim is proved by what the app itself saw (a barrier that only
opens when N requests are inside the app together), never by timing."""
import json
import os
import re
import select
import signal
import threading
import unittest

import test_frameworks as frameworks
from qilintest import Server, build_request, run_qilin, wait_for


def fetch_all(srv, paths, headers=()):
    """GETs every path at once, one connection each; returns the responses in order."""
    out = [None] * len(paths)
    errors = []

    def one(i, path):
        try:
            out[i] = srv.get(path, headers=headers, timeout=20.0)
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30.0)
    if errors:
        raise errors[0]
    return out


class ThreadPoolTest(unittest.TestCase):
    """--threads 8 with the default worker class: gunicorn turns sync into gthread."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--threads", "8", "--keep-alive", "30"], app="threadapp:app",
                         workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_threads_option_selects_gthread(self):
        self.assertIn("Using worker: gthread", self.srv.log_text())

    def test_eight_blocking_requests_run_together(self):
        resps = fetch_all(self.srv, ["/rendezvous?n=8&ms=100"] * 8)
        # 409 would mean the barrier timed out: fewer than 8 ever ran at once.
        self.assertEqual([r.status for r in resps], [200] * 8, [r.body for r in resps])
        self.assertEqual({r.body for r in resps}, {b"8"})

    def test_wsgi_multithread_is_true(self):
        info = json.loads(self.srv.get("/info").body)
        self.assertIs(info["multithread"], True)
        self.assertIs(info["multiprocess"], False)

    def test_thread_local_state_is_per_request_thread(self):
        resps = fetch_all(self.srv, ["/local?n=4&v=v%d" % i for i in range(4)])
        self.assertEqual([r.body for r in resps],
                         [("v%d True" % i).encode() for i in range(4)])

    def test_pipelined_requests_answered_in_order(self):
        data = (build_request("GET", "/local?n=1&v=one")
                + build_request("GET", "/block?ms=50")
                + build_request("GET", "/local?n=1&v=three")
                + build_request("GET", "/hello"))
        with self.srv.connect(timeout=20.0) as c:
            c.send(data)
            resps = [c.read_response() for _ in range(4)]
            # The connection is still in step afterwards.
            again = c.request("GET", "/local?n=1&v=five")
        self.assertEqual([r.status for r in resps], [200] * 4)
        self.assertEqual(resps[0].body, b"one True")
        self.assertTrue(resps[1].body.isdigit(), resps[1].body)
        self.assertEqual(resps[2].body, b"three True")
        self.assertEqual(resps[3].body, b"hello")
        self.assertEqual(again.body, b"five True")

    def test_keepalive_connection_is_reused_across_threads(self):
        with self.srv.connect() as c:
            bodies = [c.request("GET", "/local?n=1&v=%d" % i).body for i in range(20)]
        self.assertEqual(bodies, [("%d True" % i).encode() for i in range(20)])


class StalledClientTest(unittest.TestCase):
    """One pool thread: a client that sends half a head must not take it."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["-k", "gthread", "--threads", "1", "--keep-alive", "30"],
                         app="threadapp:app", workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_half_head_does_not_delay_others(self):
        with self.srv.connect() as stalled:
            stalled.send(b"GET /local?n=1&v=late HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            # Several full requests get through the single thread meanwhile.
            for i in range(3):
                self.assertEqual(self.srv.get("/hello").body, b"hello")
            # And the stalled one is served once its head completes.
            stalled.send(b"X-Late: yes\r\n\r\n")
            self.assertEqual(stalled.read_response().body, b"late True")


class WorkerConnectionsTest(unittest.TestCase):
    """--worker-connections 2, one worker: a third connection waits in the
    kernel's queue until one of the first two closes."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["-k", "gthread", "--threads", "4", "--worker-connections", "2"],
                         app="threadapp:app", workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_third_connection_waits_for_a_free_slot(self):
        gate = os.path.join(self.srv.tmpdir, "gate")
        marks = [os.path.join(self.srv.tmpdir, "in%d" % i) for i in range(2)]
        held = []
        pids = self.srv.worker_pids()
        try:
            for m in marks:
                c = self.srv.connect(timeout=20.0)
                held.append(c)
                c.send_request("GET", "/gate?path=%s&mark=%s" % (gate, m),
                               headers=[("Connection", "close")])
            wait_for(lambda: all(os.path.exists(m) for m in marks), 20.0,
                     what="both gated requests inside the app")
            third = self.srv.connect(timeout=20.0)
            held.append(third)
            third.send_request("GET", "/hello")
            # A window in which a worker ignoring the cap would answer; the
            # assertion is about order (not answered before a slot frees).
            early, _, _ = select.select([third.sock], [], [], 1.0)
            with open(gate, "w"):
                pass
            first = [held[0].read_response(), held[1].read_response()]
            last = third.read_response()
        finally:
            for c in held:
                c.close()
        self.assertEqual(early, [], "the third connection was served while two were open")
        self.assertEqual([r.body for r in first], [b"released", b"released"])
        self.assertEqual(last.body, b"hello")
        # The same worker did it all: pausing accepts is not an exit.
        self.assertEqual(self.srv.worker_pids(), pids)
        self.assertEqual(len(self.srv.booted_pids()), 1)


class GatedRequests:
    """N connections opened at once, then on each a request that waits in the
    app (threadapp's /gate) until release(), each with its own mark file.
    A context manager: the connections close on exit."""

    def __init__(self, srv, n, query=""):
        self.gate = os.path.join(srv.tmpdir, "gate")
        self.marks = [os.path.join(srv.tmpdir, "in%d" % i) for i in range(n)]
        self.conns = [srv.connect(timeout=20.0) for _ in self.marks]
        for c, m in zip(self.conns, self.marks):
            c.send_request("GET", "/gate?path=%s&mark=%s%s" % (self.gate, m, query))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for c in self.conns:
            c.close()

    def wait_inside(self, timeout, what):
        """Waits until every request has reached the app."""
        wait_for(lambda: all(os.path.exists(m) for m in self.marks), timeout, what=what)

    def release(self):
        """Opens the gate; the responses, in connection order."""
        with open(self.gate, "w"):
            pass
        return [c.read_response() for c in self.conns]


class BurstBalanceTest(unittest.TestCase):
    """Two workers with two threads each: a burst of four new connections,
    whose requests arrive just after they are accepted, is split two and
    two, so all four requests run at once. A worker that took a silent new
    connection as free capacity could take all four and run only two."""

    def test_burst_of_new_connections_is_shared_by_the_workers(self):
        with Server(["-k", "gthread", "--threads", "2", "--keep-alive", "30"],
                    app="threadapp:app", workers=2) as srv:
            booted = set(srv.wait_workers(2))
            seen = set()

            def both_accepting():
                # A gate that is open already ("/" exists): just the pid.
                seen.add(int(srv.get("/gate?path=/&pid=1").body))
                return seen >= booted

            wait_for(both_accepting, 10.0, what="both workers answering")
            # All four connect before any sends, so the workers see them silent.
            with GatedRequests(srv, 4, "&pid=1") as gated:
                gated.wait_inside(10.0, "all four requests inside the app at once")
                answers = gated.release()
        self.assertEqual([r.status for r in answers], [200] * 4, [r.body for r in answers])
        pids = [int(r.body) for r in answers]
        self.assertEqual(sorted(pids.count(p) for p in set(pids)), [2, 2], pids)


class KeepAliveSlotsTest(unittest.TestCase):
    """--worker-connections 2, one worker, keep-alive 30 s: a new client at a
    worker full of idle keep-alive connections is served at once, and the
    connection that has been idle longest is closed to make room for it;
    a connection with a request in flight is never the one closed."""

    def server(self, threads):
        srv = Server(["-k", "gthread", "--threads", str(threads), "--worker-connections", "2",
                      "--keep-alive", "30"], app="threadapp:app", workers=1)
        self.addCleanup(srv.close)
        return srv

    def test_longest_idle_connection_makes_room(self):
        # One thread: the two connections go idle in the order they are used.
        srv = self.server(1)
        pids = srv.worker_pids()
        with srv.connect() as older, srv.connect() as newer:
            self.assertEqual(older.request("GET", "/hello").body, b"hello")
            self.assertEqual(newer.request("GET", "/hello").body, b"hello")
            # Without the slot rule this would wait for a keep-alive timeout
            # (30 s) longer than the client's (5 s).
            with srv.connect() as third:
                self.assertEqual(third.request("GET", "/local?n=1&v=3").body, b"3 True")
                self.assertTrue(older.closed_by_peer(), "the longest idle connection stayed")
                # The other two are still kept alive; newer is now idle longest.
                self.assertEqual(newer.request("GET", "/local?n=1&v=2").body, b"2 True")
                self.assertEqual(third.request("GET", "/hello").body, b"hello")
                with srv.connect() as fourth:
                    self.assertEqual(fourth.request("GET", "/hello").body, b"hello")
                    self.assertTrue(newer.closed_by_peer(), "the longest idle connection stayed")
                    self.assertEqual(third.request("GET", "/hello").body, b"hello")
        # One line per worker, not one per connection closed.
        srv.wait_log(r"worker_connections \(2\) reached: closing the longest idle connection")
        self.assertEqual(len(re.findall(r"worker_connections \(2\) reached", srv.log_text())), 1)
        self.assertEqual(srv.worker_pids(), pids)

    def test_connection_in_flight_is_not_closed(self):
        srv = self.server(2)
        gate = os.path.join(srv.tmpdir, "gate")
        mark = os.path.join(srv.tmpdir, "in")
        with srv.connect(timeout=20.0) as busy, srv.connect() as idle:
            self.assertEqual(idle.request("GET", "/hello").body, b"hello")
            busy.send_request("GET", "/gate?path=%s&mark=%s" % (gate, mark))
            wait_for(lambda: os.path.exists(mark), 20.0, what="the gated request")
            # Two open (one busy, one idle), a thread free: the idle one goes.
            with srv.connect() as third:
                self.assertEqual(third.request("GET", "/hello").body, b"hello")
                self.assertTrue(idle.closed_by_peer(), "the idle connection stayed")
                with open(gate, "w"):
                    pass
                self.assertEqual(busy.read_response().body, b"released")
                self.assertEqual(third.request("GET", "/hello").body, b"hello")


class GracefulStopTest(unittest.TestCase):
    def test_term_finishes_requests_in_flight_on_every_thread(self):
        with Server(["-k", "gthread", "--threads", "4"], app="threadapp:app",
                    workers=1) as srv:
            with GatedRequests(srv, 4) as gated:
                gated.wait_inside(20.0, "four requests inside the app")
                # Four distinct threads hold them.
                tids = set()
                for m in gated.marks:
                    with open(m) as f:
                        tids.add(f.read())
                self.assertEqual(len(tids), 4)
                srv.send_signal(signal.SIGTERM)
                srv.wait_log(r"Handling signal: term")
                resps = gated.release()
            self.assertEqual([(r.status, r.body) for r in resps], [(200, b"released")] * 4)
            self.assertEqual(srv.wait(), 0)
            self.assertIn("Worker exiting", srv.log_text())


class StopLingerTest(unittest.TestCase):
    def test_request_on_idle_connection_during_graceful_stop_is_answered(self):
        # A client that connected just before the stop (accept(2) returned
        # before its first bytes) sends its request just after it began: the
        # worker answers it instead of closing the idle connection under it.
        with Server(["-k", "gthread", "--threads", "2"], app="threadapp:app",
                    workers=1) as srv:
            gate = os.path.join(srv.tmpdir, "gate")
            mark = os.path.join(srv.tmpdir, "in")
            busy = srv.connect(timeout=20.0)
            idle = srv.connect(timeout=20.0)
            try:
                busy.send_request("GET", "/gate?path=%s&mark=%s" % (gate, mark))
                wait_for(lambda: os.path.exists(mark), 20.0, what="the gated request")
                srv.send_signal(signal.SIGTERM)
                srv.wait_log(r"Handling signal: term")
                idle.send_request("GET", "/hello")
                late = idle.read_response()
                with open(gate, "w"):
                    pass
                first = busy.read_response()
                self.assertTrue(idle.closed_by_peer())
            finally:
                busy.close()
                idle.close()
            self.assertEqual((late.status, late.body), (200, b"hello"))
            self.assertEqual(first.body, b"released")
            self.assertEqual(srv.wait(), 0)


class HeartbeatTest(unittest.TestCase):
    def test_long_request_is_not_a_dead_worker(self):
        # Every thread busy for longer than --timeout: the main thread's
        # heartbeat still tells the master the worker is alive.
        with Server(["-k", "gthread", "--threads", "2", "--timeout", "2"],
                    app="threadapp:app", workers=1) as srv:
            pid = srv.worker_pids()
            resps = fetch_all(srv, ["/block?ms=3000"] * 2)
            self.assertEqual([r.status for r in resps], [200, 200])
            self.assertEqual(srv.worker_pids(), pid)
            self.assertNotIn("WORKER TIMEOUT", srv.log_text())


class OptionTest(unittest.TestCase):
    def test_threads_must_be_positive(self):
        res = run_qilin(["--threads", "0", "--check-config", "threadapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("threads", res.output)

    def test_worker_connections_must_be_positive(self):
        res = run_qilin(["--worker-connections", "0", "--check-config", "threadapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("worker-connections", res.output.replace("_", "-"))


GTHREAD = ["-k", "gthread", "--threads", "4"]


class GthreadFlaskTest(frameworks.FlaskTest):
    @classmethod
    def setUpClass(cls):
        if not frameworks.installed("flask"):
            raise unittest.SkipTest("Flask is not installed (Debian: python3-flask)")
        cls.srv = Server(GTHREAD, app="flaskapp:app")

    def test_request_context_is_per_thread(self):
        srv = Server(GTHREAD, app="flaskthreads:app", workers=1)
        try:
            resps = fetch_all(srv, ["/meet?n=4&v=r%d" % i for i in range(4)])
        finally:
            srv.close()
        self.assertEqual([r.body for r in resps],
                         [("r%d r%d True" % (i, i)).encode() for i in range(4)])


class GthreadDjangoTest(frameworks.DjangoTest):
    @classmethod
    def setUpClass(cls):
        if not frameworks.installed("django"):
            raise unittest.SkipTest("Django is not installed (Debian: python3-django)")
        cls.srv = Server(GTHREAD, app="djangoproj.wsgi:application")


if __name__ == "__main__":
    unittest.main()
