"""Master signals as gunicorn handles them: TTIN/TTOU change the number of
workers, HUP replaces the workers (re-importing the app and re-reading the
config file), USR1 reopens the log files in the master and the workers."""
import os
import shutil
import signal
import tempfile
import unittest

from qilintest import Server, wait_for

VERSIONED_APP = '''
import os
def app(environ, start_response):
    body = b"%s " + str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class SignalTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-sig-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_ttin_adds_a_worker(self):
        with Server(workers=1) as srv:
            [first] = srv.wait_workers(1)
            srv.send_signal(signal.SIGTTIN)
            srv.wait_log(r"Handling signal: ttin")
            pids = srv.wait_workers(2)
            self.assertIn(first, pids)
            srv.wait_log(r"Booting worker with pid: %d" % [p for p in pids if p != first][0])

    def test_ttou_removes_a_worker(self):
        with Server(workers=3) as srv:
            before = srv.wait_workers(3)
            srv.send_signal(signal.SIGTTOU)
            srv.wait_log(r"Handling signal: ttou")
            after = srv.wait_workers(2)
            self.assertTrue(set(after) < set(before))
            self.assertEqual(srv.get("/hello").body, b"hello")

    def test_ttou_keeps_at_least_one_worker(self):
        with Server(workers=1) as srv:
            [only] = srv.wait_workers(1)
            srv.send_signal(signal.SIGTTOU)
            srv.wait_log(r"Handling signal: ttou")
            self.assertEqual(srv.get("/pid").body, str(only).encode())
            self.assertEqual(srv.worker_pids(), [only])

    def test_hup_replaces_workers_with_new_code(self):
        mod = os.path.join(self.tmp, "versioned.py")
        with open(mod, "w") as f:
            f.write(VERSIONED_APP % "v1")
        with Server(app="versioned:app", chdir=self.tmp, workers=1) as srv:
            [old] = srv.wait_workers(1)
            self.assertEqual(srv.get("/").body, b"v1 %d" % old)
            with open(mod, "w") as f:
                f.write(VERSIONED_APP % "v2")
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Handling signal: hup")
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: not alive(old), 20, what="the old worker to exit")
            self.assertEqual(srv.get("/").body, b"v2 %d" % new)
            self.assertTrue(srv.running())

    def test_usr1_reopens_logs(self):
        access = os.path.join(self.tmp, "access.log")
        with Server(["--access-logfile", access]) as srv:
            srv.get("/say?w=before")
            wait_for(lambda: os.path.exists(access) and "w=before" in open(access).read(), 10,
                     what="the first access line")
            os.rename(access, access + ".1")
            os.rename(srv.log_path, srv.log_path + ".1")
            srv.send_signal(signal.SIGUSR1)
            wait_for(lambda: os.path.exists(srv.log_path), 10, what="a new error log")

            # Workers reopen after the master; keep asking until a line lands.
            n = [0]

            def new_access_line():
                n[0] += 1
                srv.get("/say?w=after%d" % n[0])
                return os.path.exists(access) and "w=after" in open(access).read()

            wait_for(new_access_line, 10, interval=0.1, what="an access line in the new file")
            with open(access + ".1") as f:
                old_text = f.read()
            self.assertIn("w=before", old_text)
            # The worker's own error lines go to the new error log too.
            srv.get("/raise")
            srv.wait_log(r"Error handling request")
            with open(srv.log_path + ".1") as f:
                self.assertNotIn("Error handling request", f.read())


if __name__ == "__main__":
    unittest.main()
