"""Operations under continuous load: HUP, TTIN/TTOU, USR2 plus
stopping the old master, and recycling by max-requests, memory
(--max-worker-memory) and age (--max-worker-lifetime) each happen while
client threads keep sending requests, and no request may fail; kill -9 of
a worker fails at most the requests that worker had in flight."""
import os
import shutil
import signal
import sys
import tempfile
import unittest

from opsload import Load
from qilintest import Server, children_of, per_worker_class, wait_for
from test_ruby import HAVE_RUBY, RUBY_CLASSES, WHY, rack_server

THREADS = 4


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS for pid %d" % pid)


def report(name, load):
    # The counts go to stderr for the record; make check keeps them in the .log.
    sys.stderr.write("LOAD %s: %s\n" % (name, load.summary()))


class OpsLoadTest(unittest.TestCase):
    def server(self, args=(), **kw):
        return Server(list(args), app="opsapp:app", **kw)

    def test_hup_under_load(self):
        with self.server(["--graceful-timeout", "10"], workers=2) as srv:
            old = srv.wait_workers(2)
            with Load(srv.port, THREADS) as load:
                load.wait_requests(50)
                srv.send_signal(signal.SIGHUP)
                srv.wait_workers(2, exclude=old, timeout=20)
                wait_for(lambda: not any(alive(p) for p in old), 20, what="old workers to exit")
                load.wait_requests(50)
            report("HUP", load)
            self.assertEqual(load.failed, 0, load.summary())
            served = {int(b) for b in load.bodies}
            self.assertTrue(served & set(old) and served - set(old), served)

    def test_ttin_ttou_under_load(self):
        with self.server(workers=2) as srv:
            srv.wait_workers(2)
            with Load(srv.port, THREADS) as load:
                load.wait_requests(50)
                srv.send_signal(signal.SIGTTIN)
                srv.wait_workers(3)
                load.wait_requests(50)
                # One at a time: two pending TTOUs would merge into one.
                srv.send_signal(signal.SIGTTOU)
                srv.wait_workers(2, timeout=20)
                srv.send_signal(signal.SIGTTOU)
                srv.wait_workers(1, timeout=20)
                load.wait_requests(50)
            report("TTIN/TTOU", load)
            self.assertEqual(load.failed, 0, load.summary())

    def test_max_requests_under_load(self):
        args = ["--max-requests", "40", "--max-requests-jitter", "10"]
        with self.server(args, workers=2) as srv:
            srv.wait_workers(2)
            with Load(srv.port, THREADS) as load:
                wait_for(lambda: len(srv.booted_pids()) >= 6, 30, what="workers to recycle")
                load.wait_requests(20)
            report("max-requests", load)
            self.assertEqual(load.failed, 0, load.summary())
            srv.wait_log(r"Autorestarting worker after current request.")
            self.assertGreaterEqual(len({int(b) for b in load.bodies}), 4)
            self.assertTrue(srv.running())

    def test_max_worker_memory_under_load(self):
        # The limit sits 60 MiB above what a fresh worker of this build uses
        # (a sanitizer build uses several times more); /leak keeps 10 MiB
        # more each time.
        with self.server(workers=1) as srv:
            base = rss_mib(srv.wait_workers(1)[0])
        with self.server(["--max-worker-memory", str(base + 60)], workers=2) as srv:
            srv.wait_workers(2)
            with Load(srv.port, THREADS, path="/leak") as load:
                wait_for(lambda: len(srv.booted_pids()) >= 5, 30, what="workers to be replaced")
                load.wait_requests(10)
            report("max-worker-memory", load)
            self.assertEqual(load.failed, 0, load.summary())
            m = srv.wait_log(r"Worker \(pid: \d+\) uses (\d+) MiB, over --max-worker-memory "
                             r"(\d+) MiB: restarting it after its current requests")
            self.assertGreater(int(m.group(1)), int(m.group(2)))
            self.assertEqual(int(m.group(2)), base + 60)
            self.assertTrue(srv.running())

    def test_max_worker_lifetime_under_load(self):
        args = ["--max-worker-lifetime", "2", "--max-worker-lifetime-jitter", "1"]
        with self.server(args, workers=2) as srv:
            first = srv.wait_workers(2)
            with Load(srv.port, THREADS) as load:
                wait_for(lambda: len(srv.booted_pids()) >= 4, 30, what="workers to be replaced")
                load.wait_requests(20)
            report("max-worker-lifetime", load)
            self.assertEqual(load.failed, 0, load.summary())
            srv.wait_log(r"Worker \(pid: \d+\) reached --max-worker-lifetime: restarting it")
            self.assertFalse(set(first) & set(srv.worker_pids()))

    def test_usr2_then_old_master_stops_under_load(self):
        for sig in (signal.SIGTERM, signal.SIGQUIT):
            with self.subTest(old_master_gets=sig.name):
                self.usr2_then_stop(sig)

    def usr2_then_stop(self, sig):
        tmp = tempfile.mkdtemp(prefix="qilin-usr2-")
        self.addCleanup(shutil.rmtree, tmp, True)
        pidfile = os.path.join(tmp, "qilin.pid")
        with self.server(["-p", pidfile, "--graceful-timeout", "10"], workers=2) as srv:
            old_workers = srv.wait_workers(2)
            with Load(srv.port, THREADS) as load:
                load.wait_requests(50)
                srv.send_signal(signal.SIGUSR2)
                srv.wait_log(r"Starting a new master \(pid:(\d+)\)")
                new_master = int(srv.wait_log(r"Starting a new master \(pid:(\d+)\)").group(1))
                wait_for(lambda: os.path.exists(pidfile + ".2"), 20, what="pidfile.2")
                with open(pidfile + ".2") as f:
                    self.assertEqual(int(f.read()), new_master)
                wait_for(lambda: len(children_of(new_master)) == 2, 20,
                         what="the new master's workers")
                load.wait_requests(50)
                srv.send_signal(sig)
                self.assertEqual(srv.wait(), 0)
                wait_for(lambda: not os.path.exists(pidfile + ".2"), 20,
                         what="the new master to take the pidfile")
                with open(pidfile) as f:
                    self.assertEqual(int(f.read()), new_master)
                load.wait_requests(100)
                new_workers = children_of(new_master)
            report("USR2 + %s old master" % sig.name, load)
            os.kill(new_master, signal.SIGTERM)
            wait_for(lambda: not alive(new_master), 20, what="the new master to exit")
            srv.wait_log(r"Master has been promoted.")
            self.assertEqual(load.failed, 0, load.summary())
            served = {int(b) for b in load.bodies}
            self.assertTrue(served & set(old_workers) and served & set(new_workers), served)
            self.assertFalse(os.path.exists(pidfile))

    def test_kill9_worker_under_load(self):
        with self.server(workers=2) as srv:
            victim, other = srv.wait_workers(2)
            with Load(srv.port, THREADS) as load:
                load.wait_requests(50)
                os.kill(victim, signal.SIGKILL)
                srv.wait_log(r"Worker \(pid:%d\) was sent SIGKILL!" % victim)
                srv.wait_workers(2, exclude=[victim])
                load.wait_requests(100)
            report("kill -9 of one worker", load)
            # Each client thread has at most one request in flight, so at most
            # THREADS requests can have been on the killed worker.
            self.assertLessEqual(load.failed, THREADS, load.summary())
            self.assertIn(other, srv.worker_pids())


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackOpsLoadTest(OpsLoadTest):
    """The same operations with a Rack app (tests/apps/rack/config.ru answers
    /pid as opsapp does) on the ruby plugin."""

    def server(self, args=(), **kw):
        return rack_server(args, **kw)


# No request fails on any worker class (on those the ruby plugin serves on, for Rack).
per_worker_class(globals(), OpsLoadTest)
per_worker_class(globals(), RackOpsLoadTest, classes=RUBY_CLASSES)

if __name__ == "__main__":
    unittest.main()
