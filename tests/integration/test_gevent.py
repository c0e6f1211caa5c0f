"""The gevent worker (-k gevent): green concurrency over the core's C
request path. GreenWorkerTests is shared with test_eventlet.py."""
import importlib.util
import os
import selectors
import signal
import socket
import tempfile
import time
import unittest

from qilintest import (IO_TIMEOUT, Conn, IncompleteResponse, Server, build_request, free_port,
                       green_asan_env, run_qilin, wait_for, worker_built)


def installed(module):
    return importlib.util.find_spec(module) is not None


def asan_env():
    """The environment a gevent server needs in an --enable-sanitizers
    build (qilintest.green_asan_env), for servers started without -k."""
    return green_asan_env("gevent")


def parse_status(raw):
    """The status code of the first response in RAW bytes, or None."""
    line = raw.split(b"\r\n", 1)[0].split(b" ")
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def concurrent_get(port, path, n, timeout=30.0):
    """Sends GET PATH on N connections at once (one selector, no threads) and
    returns the raw responses; each request carries Connection: close so a
    response ends at EOF."""
    sel = selectors.DefaultSelector()
    req = build_request("GET", path, headers=[("Connection", "close")])
    bufs = {}
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
            s.sendall(req)
            s.setblocking(False)
            bufs[s] = bytearray()
            sel.register(s, selectors.EVENT_READ)
        open_socks = len(bufs)
        deadline = time.monotonic() + timeout
        while open_socks and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.5):
                s = key.fileobj
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionError:
                    data = b""
                if data:
                    bufs[s] += data
                else:
                    sel.unregister(s)
                    open_socks -= 1
        return [bytes(b) for b in bufs.values()]
    finally:
        for s in bufs:
            s.close()
        sel.close()


# Names each connection green thread by a serial number kept on the green
# thread object itself (an id() could be reused by a new greenlet at the
# address of a dead one), so the responses show which connections shared one.
SERIAL_APP = """
import itertools
import greenlet

_serials = itertools.count(1)


def app(environ, start_response):
    g = greenlet.getcurrent()
    serial = getattr(g, "qilin_test_serial", None)
    if serial is None:
        serial = g.qilin_test_serial = next(_serials)
    body = str(serial).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


class GreenWorkerTests:
    """Behaviour both green workers must show; WORKER names the -k class,
    PRECISE_CLOCK the class of its timerfd-driven hub (or loop), and
    USERS_CLOCK (variable, value, class) the user's own choice of one."""

    WORKER = None
    ARGS = ()
    PRECISE_CLOCK = None
    USERS_CLOCK = None

    @staticmethod
    def env():
        return asan_env()

    def server(self, args=(), app="greenapp:app", **kw):
        return Server(["-k", self.WORKER] + list(self.ARGS) + list(args), app=app,
                      env=self.env(), **kw)

    def flag_path(self, name):
        return os.path.join(self.tmp.name, name)

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="qilin-green-")

    def tearDown(self):
        self.tmp.cleanup()

    def start_hold(self, port, name):
        """A connection whose request is parked in the app until release(NAME)."""
        c = Conn(port, timeout=IO_TIMEOUT)
        c.send_request("GET", "/hold?f=" + self.flag_path(name))
        wait_for(lambda: os.path.exists(self.flag_path(name) + ".started"),
                 what="request %s to reach the app" % name)
        return c

    def release(self, name):
        with open(self.flag_path(name), "w"):
            pass

    def serial_server(self, args=()):
        """A server of SERIAL_APP: each response is its green thread's serial."""
        with open(os.path.join(self.tmp.name, "greenserial.py"), "w") as f:
            f.write(SERIAL_APP)
        return self.server(args, app="greenserial:app", chdir=self.tmp.name)

    def close_serials(self, srv, n):
        """Serials of N sequential Connection: close requests."""
        return [int(srv.get("/", headers=[("Connection", "close")]).body) for _ in range(n)]

    def test_missing_library_is_one_clear_error(self):
        # A package of that name that fails to import hides the real one.
        fake = os.path.join(self.tmp.name, self.WORKER)
        os.mkdir(fake)
        with open(os.path.join(fake, "__init__.py"), "w") as f:
            f.write("raise ImportError('not installed (test)')\n")
        env = self.env()
        env["PYTHONPATH"] = self.tmp.name
        res = run_qilin(["-k", self.WORKER, "-b", "127.0.0.1:%d" % free_port(), "greenapp:app"],
                        env=env)
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("worker %s needs the Python package %s (apt-get install python3-%s"
                      % (self.WORKER, self.WORKER, self.WORKER), res.output)
        self.assertIn("not installed (test)", res.output)

    def test_monkey_patched_before_app_import(self):
        with self.server() as srv:
            body = srv.get("/socket").body.decode()
        self.assertIn(self.WORKER, body)

    def test_monkey_patched_with_preload(self):
        with self.server(["--preload"], workers=2) as srv:
            body = srv.get("/socket").body.decode()
            self.assertEqual(srv.get("/hello").body, b"hello")
        self.assertIn(self.WORKER, body)

    def test_500_concurrent_sleeping_requests_overlap(self):
        with self.server(["--backlog", "1024"]) as srv:
            raw = concurrent_get(srv.port, "/sleep", 500)
            statuses = [parse_status(r) for r in raw]
            peak = int(srv.get("/peak").body)
        self.assertEqual(statuses.count(200), 500, statuses)
        self.assertTrue(all(r.endswith(b"slept") for r in raw))
        # One worker: a peak above 1 means the sleeps ran at the same time.
        self.assertGreater(peak, 1)

    def test_library_primitives_in_the_app(self):
        with self.server() as srv:
            body = srv.get("/prim?lib=" + self.WORKER).body.decode()
        self.assertEqual(body, "%s [0, 1, 2]" % self.WORKER)

    @unittest.skipUnless(installed("flask"), "Flask is not installed (Debian: python3-flask)")
    def test_flask(self):
        with self.server(app="flaskapp:app") as srv:
            resp = srv.get("/?x=1")
        self.assertEqual(resp.status, 200)
        self.assertIn(b'"hello":"flask"', resp.body.replace(b" ", b""))

    def test_keepalive_and_pipelining(self):
        with self.server(["--keep-alive", "30"]) as srv, srv.connect() as c:
            c.send(build_request("GET", "/hello") + build_request("GET", "/socket")
                   + build_request("GET", "/hello"))
            bodies = [c.read_response().body for _ in range(3)]
            # The connection stays open, and another client is served meanwhile.
            other = srv.get("/hello")
            again = c.request("GET", "/hello")
        self.assertEqual(bodies[0], b"hello")
        self.assertIn(self.WORKER.encode(), bodies[1])
        self.assertEqual(bodies[2], b"hello")
        self.assertEqual(other.body, b"hello")
        self.assertEqual(again.body, b"hello")

    def test_idle_keepalive_connection_is_closed_after_keepalive(self):
        with self.server(["--keep-alive", "1"]) as srv, srv.connect() as c:
            self.assertEqual(c.request("GET", "/hello").body, b"hello")
            c.settimeout(10)
            self.assertTrue(c.closed_by_peer())

    def test_keepalive_timeout_counts_from_the_last_request(self):
        # Requests 1.2 s apart on a connection with --keep-alive 2: the
        # timeout set while waiting after the first request must not end the
        # connection at 2 s, while the third request is still to come.
        with self.server(["--keep-alive", "2"]) as srv, srv.connect() as c:
            for _ in range(3):
                self.assertEqual(c.request("GET", "/hello").body, b"hello")
                time.sleep(1.2)
            self.assertEqual(c.request("GET", "/hello").body, b"hello")
            c.settimeout(10)
            self.assertTrue(c.closed_by_peer())

    def test_term_finishes_in_flight_requests(self):
        with self.server(["--graceful-timeout", "20"]) as srv:
            held = self.start_hold(srv.port, "a")
            idle = srv.connect()
            self.assertEqual(idle.request("GET", "/hello").body, b"hello")
            srv.send_signal(signal.SIGTERM)
            srv.wait_log(r"Handling signal: term")
            # The idle keep-alive connection is closed; the listener too.
            idle.settimeout(10)
            self.assertTrue(idle.closed_by_peer())
            self.release("a")
            resp = held.read_response()
            held.close()
            self.assertEqual(srv.wait(), 0)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"released")

    def test_connection_green_threads_are_reused(self):
        # Each connection ends before the next is opened: a finished green
        # thread waits for the next connection instead of a fresh one being
        # spawned per connection.
        with self.serial_server() as srv:
            serials = self.close_serials(srv, 8)
            # A burst needs more green threads; afterwards they serve again.
            burst = [int(r.rsplit(b"\r\n", 1)[-1]) for r in concurrent_get(srv.port, "/", 6)]
            after = self.close_serials(srv, 8)
        self.assertLess(len(set(serials)), len(serials), serials)
        self.assertLess(len(set(after)), len(after), after)
        self.assertTrue(set(after) <= set(serials) | set(burst), (serials, burst, after))

    def test_term_with_parked_green_threads_exits_at_once(self):
        # Green threads parked for the next connection are no connections in
        # service: TERM must not wait the graceful timeout for them (the
        # master would then SIGKILL the worker and say so).
        with self.serial_server(["--graceful-timeout", "60"]) as srv:
            concurrent_get(srv.port, "/", 6)
            serials = self.close_serials(srv, 4)
            idle = srv.connect()
            self.assertTrue(idle.request("GET", "/").body.isdigit())
            srv.send_signal(signal.SIGTERM)
            # Well under the 60 s graceful timeout.
            self.assertEqual(srv.wait(timeout=20), 0)
            log = srv.log_text()
            idle.close()
        self.assertLess(len(set(serials)), len(serials), serials)
        self.assertIn("Worker exiting", log)
        self.assertNotIn("killed after graceful_timeout", log)

    def test_long_request_keeps_the_heartbeat(self):
        # The hub's timer beats while a request waits: a request longer than
        # --timeout must not get its worker killed. (Twice the timeout, and a
        # timeout of 2 s, so a loaded test machine cannot fake a miss.)
        with self.server(["--timeout", "2"]) as srv:
            pid = srv.worker_pids()
            held = self.start_hold(srv.port, "long")
            time.sleep(4.5)
            self.release("long")
            resp = held.read_response()
            held.close()
            self.assertEqual(srv.worker_pids(), pid)
            self.assertNotIn("WORKER TIMEOUT", srv.log_text())
        self.assertEqual(resp.body, b"released")

    def test_usr1_reopens_the_access_log_in_the_worker(self):
        access = self.flag_path("access.log")
        with self.server(["--access-logfile", access]) as srv:
            srv.get("/hello?before")
            wait_for(lambda: os.path.exists(access) and "before" in open(access).read(),
                     what="the first access line")
            os.rename(access, access + ".1")
            srv.send_signal(signal.SIGUSR1)
            wait_for(lambda: srv.log_text().count("Handling signal: usr1") == 1,
                     what="USR1 to be handled")
            # The worker reopens from its hub timer (a moment later): requests
            # until then still go to the renamed file, later ones to the new one.
            wait_for(lambda: srv.get("/hello?after") and os.path.exists(access)
                     and "after" in open(access).read(), what="an access line in the new file")
        self.assertIn("before", open(access + ".1").read())

    def test_precise_clock_by_default(self):
        # The library's epoll waits count whole milliseconds, rounded up; the
        # worker's hub ends each wait on a timerfd instead: while it waits for
        # a timer, its timerfd is armed no later than that timer. Its timers
        # all fire, in order, and a far-off one is accepted.
        # Under --preload the master's timerfd is closed in the worker: the
        # worker holds as many timerfds either way.
        timerfds = []
        for extra in ([], ["--preload"]):
            with self.subTest(extra=extra), \
                    self.server(extra) as srv:
                body = srv.get("/hub?lib=" + self.WORKER).body.decode()
                timerfds.append(int(srv.get("/timerfds").body))
            self.assertEqual(body, self.PRECISE_CLOCK + " [0.0002, 0.0005, 0.0011] armed")
        self.assertEqual(timerfds[0], timerfds[1])
        self.assertGreaterEqual(timerfds[0], 1)

    def test_users_clock_choice_is_kept(self):
        var, value, clock = self.USERS_CLOCK
        env = self.env()
        env[var] = value
        with Server(["-k", self.WORKER], app="greenapp:app", env=env) as srv:
            body = srv.get("/hub?lib=" + self.WORKER).body.decode()
        self.assertEqual(body, clock + " [0.0002, 0.0005, 0.0011] -")

    def test_worker_connections_limit(self):
        with self.server(["--worker-connections", "10"]) as srv:
            held = [self.start_hold(srv.port, "h%d" % i) for i in range(10)]
            extra = Conn(srv.port, timeout=1.0)
            extra.send_request("GET", "/hello")
            # All 10 slots are busy: the 11th connection is not accepted.
            with self.assertRaises(IncompleteResponse):
                extra.read_response()
            self.release("h0")
            self.assertEqual(held[0].read_response().body, b"released")
            extra.settimeout(IO_TIMEOUT)
            self.assertEqual(extra.read_response().body, b"hello")
            for i in range(1, 10):
                self.release("h%d" % i)
            bodies = [c.read_response().body for c in held[1:]]
            for c in held + [extra]:
                c.close()
        self.assertEqual(bodies, [b"released"] * 9)


@unittest.skipUnless(worker_built("gevent"),
                     "the gevent plugin is not built (configure --disable-gevent)")
@unittest.skipUnless(installed("gevent"), "gevent is not installed (Debian: python3-gevent)")
class GeventWorkerTest(GreenWorkerTests, unittest.TestCase):
    WORKER = "gevent"
    PRECISE_CLOCK = "qilin.gevent.PreciseLoop"
    USERS_CLOCK = ("GEVENT_LOOP", "libev-cext", "gevent.libev.corecext.loop")

    def test_long_timeouts_stay_off_the_precise_loops_heap(self):
        # Timeouts of a second or more (the worker's own per-wait ones among
        # them) keep libev's millisecond; were they tracked, the cancelled
        # ones would pile up on the loop's heap behind its 0.25 s tick.
        with self.server() as srv:
            tracked = int(srv.get("/longtimers").body)
        self.assertLess(tracked, 10)

    def test_gunicorn_class_path_alias(self):
        with Server(["-k", "gunicorn.workers.ggevent.GeventWorker"], app="greenapp:app",
                    env=asan_env()) as srv:
            body = srv.get("/socket").body.decode()
            self.assertIn("Using worker: gevent", srv.log_text())
        self.assertIn("gevent", body)


if __name__ == "__main__":
    unittest.main()
