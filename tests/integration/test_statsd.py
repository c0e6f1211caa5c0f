"""StatsD and DogStatsD metrics (--statsd-host, --statsd-prefix,
--dogstatsd-tags, --enable-backlog-metric) with gunicorn's names, types and
wire format, received on a UDP and a unix datagram socket of the test; and a
server that serves on when nothing listens for its metrics."""
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import unittest

from qilintest import Server, per_worker_class, run_qilin, wait_for

# One metric per line: NAME:VALUE|TYPE, a sampling rate for counters, then tags.
LINE_RX = re.compile(r"^(?P<name>[^:|]+):(?P<value>-?[0-9.]+)\|(?P<type>c|g|ms|h)"
                     r"(?:\|@(?P<rate>[0-9.]+))?(?:\|#(?P<tags>.*))?$")
TAGS = "env:test,team:web"


class Collector:
    """A StatsD server of the test: a UDP socket on 127.0.0.1 (or a unix
    datagram socket) that a thread drains into a list of metric lines."""

    def __init__(self, unix=False):
        self.tmpdir = None
        if unix:
            self.tmpdir = tempfile.mkdtemp(prefix="qilin-statsd-")
            path = os.path.join(self.tmpdir, "statsd.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(path)
            self.address = "unix:" + path
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self.lines = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.lines.extend(data.decode("ascii").split("\n"))

    def mark(self):
        with self.lock:
            return len(self.lines)

    def since(self, mark=0):
        with self.lock:
            return list(self.lines[mark:])

    def wait(self, predicate, mark=0, what="metrics", timeout=10.0):
        """Waits until PREDICATE(lines since MARK) holds; returns those lines."""
        try:
            wait_for(lambda: predicate(self.since(mark)), timeout, what=what)
        except AssertionError:
            raise AssertionError("%s not received; got %r" % (what, self.since(mark)))
        return self.since(mark)

    def wait_line(self, line, mark=0, count=1):
        return self.wait(lambda got: got.count(line) >= count, mark, "%r x%d" % (line, count))

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class CollectedServer(unittest.TestCase):
    """A Collector and a server sending to it, for the test class's life."""

    UNIX = False
    WORKERS = 1

    @classmethod
    def server_args(cls, address):
        return ["--statsd-host", address]

    @classmethod
    def setUpClass(cls):
        cls.col = Collector(unix=cls.UNIX)
        try:
            cls.srv = Server(cls.server_args(cls.col.address), workers=cls.WORKERS)
        except BaseException:
            cls.col.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        cls.col.close()


class StatsdUdpTest(CollectedServer):
    """Requests, log lines and the worker gauge over UDP, with a prefix and
    DogStatsD tags; on every worker class."""

    WORKERS = 2

    @classmethod
    def server_args(cls, address):
        return ["--statsd-host", address, "--statsd-prefix", "qilin.test",
                "--dogstatsd-tags", TAGS]

    def line(self, name, value, suffix):
        # gunicorn joins the prefix with one '.', and appends the tags last.
        return "qilin.test.%s:%s|%s|#%s" % (name, value, suffix, TAGS)

    def test_requests_by_status(self):
        mark = self.col.mark()
        self.assertEqual(self.srv.get("/").status, 200)
        self.assertEqual(self.srv.get("/no/such/page").status, 404)
        self.assertEqual(self.srv.get("/raise").status, 500)
        status = self.line("gunicorn.request.status.%d", 1, "c|@1.0")
        got = self.col.wait(lambda got: all(status % s in got for s in (200, 404, 500)), mark,
                            "three status counters")
        self.assertEqual(got.count(self.line("gunicorn.requests", 1, "c|@1.0")), 3, got)
        for s in (200, 404, 500):
            self.assertEqual(got.count(status % s), 1, got)
        durations = [m for m in map(LINE_RX.match, got)
                     if m and m["name"] == "qilin.test.gunicorn.request.duration"]
        self.assertEqual(len(durations), 3, got)
        for m in durations:
            # A timer in milliseconds, written as a Python float.
            self.assertEqual(m["type"], "ms")
            self.assertRegex(m["value"], r"^\d+\.\d+$")
            self.assertEqual(m["tags"], TAGS)
        # The app's exception is logged at ERROR, which counts.
        self.col.wait_line(self.line("gunicorn.log.error", 1, "c|@1.0"), mark)

    def test_every_line_is_well_formed(self):
        mark = self.col.mark()
        self.assertEqual(self.srv.get("/hello").status, 200)
        got = self.col.wait_line(self.line("gunicorn.request.status.200", 1, "c|@1.0"), mark)
        for line in got:
            m = LINE_RX.match(line)
            self.assertIsNotNone(m, line)
            self.assertTrue(m["name"].startswith("qilin.test.gunicorn."), line)
            self.assertEqual(m["tags"], TAGS, line)
            self.assertEqual(m["rate"], "1.0" if m["type"] == "c" else None, line)

    def test_duration_is_in_milliseconds(self):
        mark = self.col.mark()
        self.assertEqual(self.srv.get("/sleep?s=0.2").status, 200)
        got = self.col.wait(lambda got: any("request.duration" in x for x in got), mark,
                            "a duration")
        ms = [float(LINE_RX.match(x)["value"]) for x in got if "request.duration" in x]
        self.assertGreaterEqual(ms[0], 200.0, got)

    def test_invalid_request_counts_a_warning(self):
        mark = self.col.mark()
        with self.srv.connect() as c:
            c.send(b"GARBAGE\r\n\r\n")
            self.assertTrue(c.read_to_eof().startswith(b"HTTP/1.1 400"))
        self.srv.wait_log(r"Invalid request from ip=127\.0\.0\.1")
        self.col.wait_line(self.line("gunicorn.log.warning", 1, "c|@1.0"), mark)

    def test_worker_gauge_follows_the_count(self):
        # Sent by the master when the count changes, from the start.
        self.col.wait_line(self.line("gunicorn.workers", 2, "g"))
        mark = self.col.mark()
        self.srv.send_signal(signal.SIGTTIN)
        self.col.wait_line(self.line("gunicorn.workers", 3, "g"), mark)
        self.srv.send_signal(signal.SIGTTOU)
        self.col.wait_line(self.line("gunicorn.workers", 2, "g"), mark)
        self.srv.wait_workers(2)


class StatsdUnixTest(CollectedServer):
    """A unix datagram socket, no prefix and no tags: gunicorn's exact lines;
    and the backlog histogram, zeros included."""

    UNIX = True

    @classmethod
    def server_args(cls, address):
        return ["--statsd-host", address, "--enable-backlog-metric"]

    def test_exact_lines(self):
        mark = self.col.mark()
        self.assertEqual(self.srv.get("/").status, 200)
        got = self.col.wait_line("gunicorn.request.status.200:1|c|@1.0", mark)
        self.assertIn("gunicorn.requests:1|c|@1.0", got)
        self.assertTrue(any(re.fullmatch(r"gunicorn\.request\.duration:\d+\.\d+\|ms", x)
                            for x in got), got)
        self.col.wait_line("gunicorn.workers:1|g")

    def test_backlog_is_sent_each_second_even_when_zero(self):
        self.col.wait_line("gunicorn.backlog:0|h", count=2)


class StatsdConfigTest(unittest.TestCase):
    """The same settings from a gunicorn.conf.py and a Lua config file; a bad
    --statsd-host is one line and exit status 2."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-statsd-conf-")
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)
        self.col = Collector()
        self.addCleanup(self.col.close)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_gunicorn_conf_py(self):
        conf = self.write("gunicorn.conf.py", "statsd_host = %r\nstatsd_prefix = 'py.'\n"
                          "dogstatsd_tags = 'src:py'\n" % self.col.address)
        with Server(["-c", conf]) as srv:
            self.assertEqual(srv.get("/").status, 200)
            self.col.wait_line("py.gunicorn.requests:1|c|@1.0|#src:py")
            self.assertNotIn("not supported", srv.log_text())

    def test_lua_config(self):
        conf = self.write("qilin.conf.lua", 'statsd_host = "%s"\nstatsd_prefix = "lua"\n'
                          'dogstatsd_tags = "src:lua,k:v"\n' % self.col.address)
        with Server(["-c", conf]) as srv:
            self.assertEqual(srv.get("/").status, 200)
            self.col.wait_line("lua.gunicorn.requests:1|c|@1.0|#src:lua,k:v")

    def test_bad_address_is_a_usage_error(self):
        for spec, what in (("localhost:notaport", "invalid port"),
                           ("::1:8125", "two ':'"),
                           ("unix:", "no socket path")):
            with self.subTest(spec=spec):
                r = run_qilin(["--statsd-host", spec, "testapp:app"])
                self.assertEqual(r.returncode, 2, r.output)
                self.assertEqual(r.stderr.strip().count("\n"), 0, r.stderr)
                self.assertIn("Error: --statsd-host: %s in '%s'" % (what, spec), r.stderr)
                self.assertIn("HOST:PORT", r.stderr)

    def test_bad_address_in_a_config_file(self):
        conf = self.write("bad.conf.lua", 'statsd_host = "host:99999"\n')
        r = run_qilin(["-c", conf, "testapp:app"])
        self.assertEqual(r.returncode, 2, r.output)
        self.assertIn("--statsd-host: invalid port in 'host:99999'", r.stderr)


class StatsdDeadServerTest(unittest.TestCase):
    """Nothing listens for the metrics: every request is still answered, and
    the log says so once at most."""

    def serve_many(self, srv):
        for i in range(40):
            self.assertEqual(srv.get("/say?w=%d" % i).body, str(i).encode())
        self.assertEqual(srv.get("/raise").status, 500)
        srv.wait_log(r"Error handling request")

    def test_nothing_on_the_udp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with Server(["--statsd-host", "127.0.0.1:%d" % port], workers=2) as srv:
            self.serve_many(srv)
            self.assertLessEqual(srv.log_text().count("StatsD"), 1, srv.log_text())

    def test_no_unix_socket(self):
        tmp = tempfile.mkdtemp(prefix="qilin-statsd-")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        path = os.path.join(tmp, "absent.sock")
        with Server(["--statsd-host", "unix:" + path], workers=2) as srv:
            self.serve_many(srv)
            # The master's gauge fails first; the workers' failures are silent.
            srv.wait_log(r"StatsD: cannot send to unix:%s" % re.escape(path))
            self.assertEqual(srv.log_text().count("StatsD"), 1, srv.log_text())


per_worker_class(globals(), StatsdUdpTest)

if __name__ == "__main__":
    unittest.main()
