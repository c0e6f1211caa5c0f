"""The benchmark's pieces that must keep working between `make bench` runs:
the C `null` app plugin served by the real core, the framework apps of the
flask and django cases, which peers each case runs, and the wrk output
parser the harness reads its figures with. Asserts behaviour only, never
speed.
"""
import importlib.util
import os
import shutil
import sys
import tempfile
import unittest

from qilintest import Server, assert_same_bytes, per_worker_class, qilin_bin, run_qilin

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
    """The bench's Flask and Django apps, served by qilin as `make bench`
    does, on every worker class the flask and django cases run."""

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


per_worker_class(globals(), FrameworkAppsTest)


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
