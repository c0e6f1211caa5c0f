"""slowhttptest against a 2-worker sync server: slow headers
(slowloris) and a slow Content-Length body, 200 connections each, while a
normal client keeps sending requests. Asserts service (every normal request
answered) and that the attack really held connections open; never timing.
Skips only when slowhttptest is not installed."""
import re
import shutil
import subprocess
import time
import unittest

from qilintest import Server, _kill_group

ATTACK_SECONDS = 8
ANSI_RX = re.compile(r"\x1b\[[0-9;]*m")


class SlowClients(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("slowhttptest") is None:
            raise unittest.SkipTest("slowhttptest is not installed (apt-get install slowhttptest)")
        cls.srv = Server(["-k", "sync"], workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def attack(self, mode):
        """Runs slowhttptest MODE while a normal client sends GET /hello on fresh
        connections; returns (answered, failures, most connections held)."""
        cmd = ["slowhttptest", mode, "-c", "200", "-r", "100", "-i", "2", "-s", "4096",
               "-l", str(ATTACK_SECONDS), "-p", "3",
               "-u", "http://127.0.0.1:%d/echo" % self.srv.port]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        answered, failures = 0, []
        deadline = time.monotonic() + ATTACK_SECONDS + 10
        try:
            time.sleep(1.0)  # let the attack connections open first
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    resp = self.srv.get("/hello", timeout=5)
                    if resp.status == 200 and resp.body == b"hello":
                        answered += 1
                    else:
                        failures.append(repr(resp))
                except (OSError, AssertionError) as e:
                    failures.append("%s: %s" % (type(e).__name__, e))
                time.sleep(0.1)
            out = proc.communicate(timeout=15)[0].decode("utf-8", "replace")
        finally:
            _kill_group(proc.pid)
            proc.wait()
        held = [int(n) for n in re.findall(r"connected:\s*(\d+)", ANSI_RX.sub("", out))]
        return answered, failures, max(held or [0])

    def check(self, mode):
        answered, failures, held = self.attack(mode)
        self.assertGreaterEqual(held, 100, "the attack never held its connections open")
        self.assertEqual(failures, [], "normal requests failed during %s" % mode)
        self.assertGreaterEqual(answered, 5)
        self.assertEqual(len(self.srv.worker_pids()), 2)

    def test_slow_headers(self):
        self.check("-H")

    def test_slow_body(self):
        self.check("-B")


if __name__ == "__main__":
    unittest.main()
