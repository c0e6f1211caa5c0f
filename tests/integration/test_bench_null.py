"""The benchmark's pieces that must keep working between `make bench` runs:
the C `null` app plugin served by the real core, the framework apps of the
flask and django cases, which peers each case runs, and the wrk and
`openssl s_time` output parsers the harness reads its figures with (and
that s_time's new connections are full handshakes). Asserts behaviour
only, never speed.
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

from qilintest import (WSGI_CLASSES, Server, assert_same_bytes, per_worker_class, qilin_bin,
                       run_qilin)

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "bench"))
sys.path.insert(0, BENCH)
import run as bench_run  # noqa: E402  (bench/run.py, standard library only)

MIB = 1024 * 1024


def null_plugin():
    """bench/plugin-null/.libs/null.so next to the binary under test (libtool's place)."""
    path = os.path.join(os.path.dirname(qilin_bin()), "bench", "plugin-null", ".libs", "null.so")
    if not os.path.exists(path):
        raise AssertionError("%s was not built (bench/local.mk builds it with `make`)" % path)
    return path


class NullPluginTest(unittest.TestCase):
    def serve(self, mode):
        return Server(["--plugin", null_plugin(), "--keep-alive", "10"], app=mode, chdir=None)

    def test_hello_answers_from_c(self):
        with self.serve("hello") as srv:
            with srv.connect() as c:
                for _ in range(3):  # keep-alive: the same connection serves each
                    resp = c.request("GET", "/")
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(resp.body, b"Hello, World!")
                    self.assertEqual(resp.header("Content-Length"), "13")
                    self.assertEqual(resp.header("Content-Type"), "text/plain")

    def test_big_sends_one_mib(self):
        with self.serve("big") as srv:
            resp = srv.get("/")
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("Content-Length"), str(MIB))
            assert_same_bytes(resp.body, b"x" * MIB)

    def test_upload_reads_the_whole_body(self):
        body = bytes(range(256)) * (MIB // 256)
        with self.serve("upload") as srv:
            with srv.connect() as c:
                resp = c.request("POST", "/", headers=[("Content-Length", str(len(body)))],
                                 body=body)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, b"Hello, World!")
                # The body was consumed by the app, not left to confuse the next request.
                resp = c.request("GET", "/")
                self.assertEqual(resp.status, 200)

    def test_unknown_app_is_one_clear_error(self):
        result = run_qilin(["--plugin", null_plugin(), "-b", "127.0.0.1:0", "--check-config",
                            "nosuch"])
        self.assertNotEqual(result.returncode, 0, result)
        self.assertIn("unknown app 'nosuch' (use hello, big or upload)", result.output)


class FrameworkAppsTest(unittest.TestCase):
    """The bench's Flask and Django apps (WSGI), served by qilin as `make
    bench` does, on every WSGI worker class the flask and django cases run."""

    def check(self, app):
        with Server(app=app, chdir=os.path.join(BENCH, "apps")) as srv:
            resp = srv.get("/", timeout=20)
        self.assertEqual((resp.status, resp.body), (200, b"Hello, World!"))

    @unittest.skipUnless(importlib.util.find_spec("flask"), "python3-flask is not installed")
    def test_flask_app(self):
        self.check("flask_app:app")

    @unittest.skipUnless(importlib.util.find_spec("django"), "python3-django is not installed")
    def test_django_app(self):
        self.check("django_app:app")


per_worker_class(globals(), FrameworkAppsTest, classes=WSGI_CLASSES)


class PeersTest(unittest.TestCase):
    """bjoern runs only when a build of it is given; the cases name their peers."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-bench-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def names(self, case, bjoern=None):
        env = bench_run.Env(os.path.dirname(qilin_bin()), self.tmp, bjoern)
        case = {c.name: c for c in bench_run.CASES}[case]
        return [srv.name for srv in bench_run.servers_for(case, env)]

    def test_bjoern_only_when_built(self):
        for case in ("hello", "flask", "django"):
            self.assertNotIn("bjoern", self.names(case))
            self.assertIn("bjoern", self.names(case, "/opt/bjoern"))
        self.assertNotIn("bjoern", self.names("big", "/opt/bjoern"))

    def test_bjoern_command(self):
        env = bench_run.Env(os.path.dirname(qilin_bin()), self.tmp, "/opt/bjoern")
        srv = bench_run.bjoern_server(env, "django_app:app")[0]
        self.assertTrue(srv.single)
        self.assertEqual(srv.env["BJOERN_DIR"], "/opt/bjoern")
        self.assertEqual(srv.argv[1:], [os.path.join(BENCH, "bjoern_run.py"), "django_app:app",
                                        "127.0.0.1", "{port}"])

    def test_django_case_peers(self):
        names = self.names("django")
        for name in ("qilin-sync", "gunicorn-sync", "uwsgi", "waitress"):
            self.assertIn(name, names)

    def test_asgi_cases_peers(self):
        """The ASGI cases run qilin -k asyncio on both loops (when built) against uvicorn."""
        for case in ("asgi-hello", "fastapi-hello", "asgi-sleep", "ws-echo"):
            names = self.names(case)
            self.assertIn("qilin-asyncio-uvloop", names)
            self.assertIn("qilin-asyncio-asyncio", names)
            self.assertEqual(len([n for n in names if n.startswith("uvicorn-")]), 2, names)
        cases = {c.name: c for c in bench_run.CASES}
        self.assertEqual(cases["ws-echo"].load, "wsload")
        # The ceilings the ASGI targets are set against: qilin's core alone and nginx.
        names = self.names("asgi-hello")
        self.assertIn("qilin-null", names)
        self.assertIn("nginx", names)

    def test_rack_cases_peers(self):
        """The Rack cases run qilin's ruby plugin (when built) against Puma,
        and Unicorn where it can serve the load."""
        ruby = os.path.exists(os.path.join(os.path.dirname(qilin_bin()), "plugins", "ruby",
                                           ".libs", "ruby.so"))
        for case, want in (("rack-hello", ["qilin-ruby", "unicorn", "puma"]),
                           ("sinatra-hello", ["qilin-ruby", "unicorn", "puma"]),
                           ("rack-io", ["qilin-ruby-gthread", "puma"])):
            names = self.names(case)
            self.assertEqual(names, [n for n in want if ruby or not n.startswith("qilin")])

    def test_app_alone(self):
        """bench/appcost.py runs an ASGI app with no server and prints its cost."""
        if importlib.util.find_spec("uvloop") is None:
            self.skipTest("python3-uvloop is not installed")
        case = bench_run.Case("asgi-hello", "", 1, pin=False)
        r = bench_run.app_alone(case, 1)
        self.assertNotIn("why", r)
        self.assertGreater(r["us"], 0)
        self.assertRegex(r["raw"][0], r"^app=asgi_hello:app loop=uvloop calls=\d+ cpu_s=")

    def test_wsload_builds_and_parses(self):
        """bench/wsload.c compiles, and its one line becomes the figures."""
        env = bench_run.Env(os.path.dirname(qilin_bin()), self.tmp)
        if shutil.which("cc") is None and shutil.which("gcc") is None:
            self.skipTest("no C compiler")
        self.assertIsNone(bench_run.build_wsload(env, self.tmp))
        self.assertTrue(os.access(env.wsload, os.X_OK))
        self.assertEqual(bench_run.parse_wsload("messages=1200 seconds=2.000 errors=1\n"),
                         (1200, 2.0, 1))
        self.assertIsNone(bench_run.parse_wsload("wsload: handshake refused\n"))

    @unittest.skipUnless(shutil.which("openssl"), "the openssl command is not installed")
    def test_tls_cases(self):
        """Each TLS case serves its certificate (ECDSA P-256 or RSA 2048) from
        qilin, gunicorn and nginx alike, and is probed over https."""
        env = bench_run.Env(os.path.dirname(qilin_bin()), self.tmp)
        cases = {c.name: c for c in bench_run.CASES}
        for name, kind, key_text in (("tls", "ec", "prime256v1"), ("tls-new-rsa", "rsa", "2048"),
                                     ("tls-big", "ec", "prime256v1")):
            case = cases[name]
            self.assertEqual(case.tls, kind)
            servers = bench_run.servers_for(case, env)
            self.assertEqual([s.name for s in servers], ["qilin-sync", "gunicorn-sync", "nginx"])
            self.assertTrue(all(s.tls for s in servers))
            cert, key = env.tls_pair(kind)
            for srv in servers[:2]:
                i = srv.argv.index("--certfile")
                self.assertEqual(srv.argv[i:i + 4], ["--certfile", cert, "--keyfile", key])
            with open(servers[2].argv[-2]) as f:
                conf = f.read()
            self.assertIn("ssl_certificate %s;" % cert, conf)
            self.assertIn("@PORT@ ssl backlog", conf)
            with open(cert) as f:
                self.assertIn("BEGIN CERTIFICATE", f.read())
            out = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", cert],
                                 capture_output=True, text=True).stdout
            self.assertIn(key_text, out)
        self.assertEqual(servers[2].path, "/big.bin")
        self.assertIn("bigfile:app", servers[0].argv)

    def test_tls_new_cases_use_s_time(self):
        """The new-connection cases are loaded with `openssl s_time -new` (wrk
        resumes sessions on reconnect); the keep-alive ones with wrk."""
        cases = {c.name: c for c in bench_run.CASES}
        self.assertEqual(cases["tls-new-ec"].tls, "ec")
        for name in ("tls-new-ec", "tls-new-rsa"):
            case = cases[name]
            self.assertEqual(case.load, "s_time")
            self.assertIn("full handshakes", case.title)
            argv = bench_run.s_time_argv(case, 40000, 2, "/")
            self.assertEqual(argv[:3], ["taskset", "-c", "1"])
            self.assertEqual(argv[3:], ["openssl", "s_time", "-connect", "127.0.0.1:40000",
                                        "-new", "-time", "2", "-www", "/"])
            self.assertNotIn("-reuse", argv)
        for name in ("tls", "tls-big", "hello"):
            self.assertEqual(cases[name].load, "wrk")


WRK_OUTPUT = """Running 2s test @ http://127.0.0.1:40000/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   310.22us  120.01us   5.00ms   90.00%
    Req/Sec    80.00k     2.00k   85.00k    70.00%
  Latency Distribution
     50%  290.00us
     75%  340.00us
     90%  400.00us
     99%    1.25ms
  160000 requests in 2.00s, 20.00MB read
  Socket errors: connect 0, read 3, write 2, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  80000.50
Transfer/sec:     10.00MB
"""


S_TIME_OUTPUT = """Collecting connection statistics for 2 seconds
**********************************************************r*

60 connections in 0.05s; 1200.00 connections/user sec, bytes read 9360
60 connections in 3 real seconds, 156 bytes read per connection
"""


class STimeTest(unittest.TestCase):
    def test_figures(self):
        r = bench_run.parse_s_time(S_TIME_OUTPUT)
        self.assertEqual(r["conns"], 60)
        self.assertEqual(r["progress"], 60)
        self.assertEqual(r["resumed"], 1)
        self.assertEqual(r["bytes_conn"], 156)
        self.assertAlmostEqual(r["user_s"], 0.05)

    def test_cut_short(self):
        """s_time stops at the first failed connection without a summary: the
        progress characters still count the connections it made."""
        r = bench_run.parse_s_time("Collecting connection statistics for 2 seconds\n*****")
        self.assertIsNone(r["conns"])
        self.assertEqual(r["progress"], 5)
        self.assertEqual(r["resumed"], 0)

    @unittest.skipUnless(shutil.which("openssl"), "the openssl command is not installed")
    def test_new_connections_are_full_handshakes(self):
        """Against a server that issues session tickets, s_time -new connects
        over and over without resuming one, and the figures add up."""
        tmp = tempfile.mkdtemp(prefix="qilin-bench-test-")
        self.addCleanup(shutil.rmtree, tmp, True)
        env = bench_run.Env(tmp, tmp)  # only its certificates: no build tree needed
        cert, key = env.tls_pair("ec")
        case = bench_run.Case("t", "", 2, pin=False, load="s_time")
        with bench_run.LocalTLSServer(cert, key) as srv:
            r = bench_run.run_s_time(case, env, srv.port, 1, "/", probe=False)
        self.assertEqual(r["errors"], 0, r["raw"])
        self.assertGreater(r["requests"], 0, r["raw"])
        self.assertEqual(r["resumed"], 0, r["raw"])
        self.assertGreater(r["bytes_conn"], 0, r["raw"])
        self.assertIsNone(r["p50"])
        self.assertAlmostEqual(r["rps"], r["requests"] / r["wall"])
        self.assertGreaterEqual(r["wall"], 1.0)
        self.assertIn("openssl s_time", r["raw"])


class WrkParseTest(unittest.TestCase):
    def test_figures(self):
        r = bench_run.parse_wrk(WRK_OUTPUT)
        self.assertEqual(r["rps"], 80000.50)
        self.assertEqual(r["requests"], 160000)
        self.assertAlmostEqual(r["p50"], 0.29)
        self.assertAlmostEqual(r["p99"], 1.25)
        self.assertEqual(r["errors"], 6)
        self.assertEqual(r["non2xx"], 7)

    def test_missing_figures_are_none(self):
        r = bench_run.parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")
        self.assertIsNone(r["rps"])
        self.assertEqual(r["requests"], 0)

    def test_latency_units(self):
        self.assertAlmostEqual(bench_run.parse_ms("900.00us"), 0.9)
        self.assertAlmostEqual(bench_run.parse_ms("2.50s"), 2500.0)
        self.assertAlmostEqual(bench_run.parse_ms("1.00m"), 60000.0)


if __name__ == "__main__":
    unittest.main()
