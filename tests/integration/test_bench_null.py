"""The benchmark's pieces that must keep working between `make bench` runs:
the C `null` app plugin served by the real core, and the wrk output parser
the harness reads its figures with. Asserts behaviour only, never speed.
"""
import os
import sys
import unittest

from qilintest import Server, assert_same_bytes, qilin_bin, run_qilin

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
