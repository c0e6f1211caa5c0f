"""The control socket and qilinctl, as gunicorn 25.1's control socket and
gunicornc: every command against a running server, in human and JSON form,
with the values checked against what the server really runs; the socket's
mode and who may use it; --no-control-socket, the default path, a path in
use, a stale socket, a bad mode; and a client that never finishes its
request costs the master nothing."""
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from qilintest import Server, per_worker_class, run_qilin, wait_for

CTL_TIMEOUT = 20.0


def ctl_bin():
    path = os.environ.get("QILIN_CTL_BIN")
    if not path:
        raise unittest.SkipTest("QILIN_CTL_BIN is not set (run through make check)")
    return path


def ctl(sock, *args, env=None, user=None):
    """Runs `qilinctl -s SOCK ARGS` (SOCK None: no -s); returns (rc, stdout, stderr)."""
    cmd = [ctl_bin()] + (["-s", sock] if sock else []) + list(args)
    if user:
        cmd = ["setpriv", "--reuid=" + user, "--regid=nogroup", "--clear-groups"] + cmd
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=CTL_TIMEOUT, env=env)
    return p.returncode, p.stdout, p.stderr


def ok(sock, *args):
    rc, out, err = ctl(sock, *args)
    if rc != 0:
        raise AssertionError("qilinctl %s: rc %d, stderr %r" % (" ".join(args), rc, err))
    return out


def ok_json(sock, *args):
    return json.loads(ok(sock, "--json", *args))


class ControlTest(unittest.TestCase):
    """Every command against a running server (on every worker class)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-ctl-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sock = os.path.join(self.tmp, "ctl.sock")

    def server(self, *args, workers=2, **kw):
        return Server(["--control-socket", self.sock] + list(args), workers=workers, **kw)

    def test_show_commands(self):
        with self.server() as srv:
            pids = sorted(srv.wait_workers(2))
            st = os.stat(self.sock)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
            for _ in range(3):
                self.assertEqual(srv.get("/").status, 200)


            def served():
                d = ok_json(self.sock, "show", "workers")
                done = sum(w["requests"] for w in d["workers"]) == 3
                return d if done and all(w["state"] == "serving" for w in d["workers"]) else None
            data = wait_for(served, what="3 requests on the scoreboard, both workers serving")
            self.assertEqual(sorted(w["pid"] for w in data["workers"]), pids)
            self.assertEqual(sorted(srv.worker_pids()), pids)
            self.assertEqual((data["count"], data["target"]), (2, 2))
            self.assertEqual([w["state"] for w in data["workers"]], ["serving", "serving"])
            self.assertEqual(sorted(w["age"] for w in data["workers"]), [1, 2])
            text = ok(self.sock, "show", "workers")
            self.assertRegex(text.splitlines()[0], r"^PID\s+AGE\s+STATE\s+REQUESTS")
            for w in data["workers"]:
                self.assertRegex(text, r"(?m)^%d\s+%d\s+serving\s+%d\s" %
                                 (w["pid"], w["age"], w["requests"]))
            self.assertIn("2 workers (target 2)", text)

            stats = ok_json(self.sock, "show", "stats")
            self.assertEqual(stats["pid"], srv.pid)
            self.assertEqual((stats["workers_current"], stats["workers_target"]), (2, 2))
            self.assertEqual((stats["workers_spawned"], stats["reloads"]), (2, 0))
            self.assertEqual(stats["requests"], 3)
            self.assertGreater(stats["uptime"], 0)
            text = ok(self.sock, "show", "stats")
            self.assertRegex(text, r"(?m)^PID:\s+%d$" % srv.pid)
            self.assertRegex(text, r"(?m)^Requests served:\s+3$")

            lst = ok_json(self.sock, "show", "listeners")
            self.assertEqual(lst["count"], 1)
            self.assertEqual(lst["listeners"][0]["address"], "http://127.0.0.1:%d" % srv.port)
            self.assertEqual(lst["listeners"][0]["type"], "tcp")
            self.assertIn("http://127.0.0.1:%d" % srv.port, ok(self.sock, "show", "listeners"))

            cfg = ok_json(self.sock, "show", "config")
            self.assertEqual(cfg["workers"], 2)
            self.assertEqual(cfg["bind"], ["127.0.0.1:%d" % srv.port])
            self.assertEqual(cfg["control_socket"], self.sock)
            self.assertEqual(cfg["control_socket_mode"], 0o600)
            self.assertIs(cfg["control_socket_disable"], False)
            self.assertEqual(cfg["worker_class"], os.environ.get("QILIN_TEST_WORKER_CLASS",
                                                                 "sync"))
            text = ok(self.sock, "show", "config")
            self.assertRegex(text, r"(?m)^control_socket\s+= %s$" % self.sock)
            self.assertRegex(text, r"(?m)^workers\s+= 2$")

            every = ok_json(self.sock, "show", "all")
            self.assertEqual(every["master"]["pid"], srv.pid)
            self.assertEqual(sorted(w["pid"] for w in every["workers"]), pids)
            self.assertIn("Master: pid %d" % srv.pid, ok(self.sock, "show", "all"))

            helped = ok_json(self.sock, "help")["commands"]
            self.assertIn("worker kill PID", helped)
            self.assertIn("shutdown [graceful|quick]", ok(self.sock, "help"))

    def test_worker_add_remove_kill(self):
        with self.server() as srv:
            first = srv.wait_workers(2)
            self.assertEqual(ok_json(self.sock, "worker", "add"),
                             {"added": 1, "previous": 2, "total": 3})
            three = srv.wait_workers(3)
            self.assertEqual(sorted(w["pid"] for w in ok_json(self.sock, "show",
                                                               "workers")["workers"]),
                             sorted(three))
            ages = {w["pid"]: w["age"] for w in ok_json(self.sock, "show", "workers")["workers"]}
            self.assertEqual(ok(self.sock, "worker", "remove", "1"), "workers: 3 -> 2\n")
            # TTOU's rule: the oldest worker leaves.
            oldest = min(ages, key=ages.get)
            self.assertIn(oldest, first)
            wait_for(lambda: oldest not in srv.worker_pids(), what="the oldest worker to exit")
            two = srv.wait_workers(2)

            victim = two[0]
            self.assertEqual(ok_json(self.sock, "worker", "kill", str(victim)),
                             {"killed": victim})
            wait_for(lambda: victim not in srv.worker_pids(), what="worker %d to exit" % victim)
            now = wait_for(lambda: (lambda p: p if len(p) == 2 and victim not in p else None)(
                srv.worker_pids()), what="a replacement worker")
            self.assertNotIn(victim, now)
            srv.wait_log(r"Control socket: stopping worker \(pid:%d\)" % victim)

            rc, out, err = ctl(self.sock, "worker", "kill", "1")
            self.assertEqual((rc, out), (1, ""))
            self.assertEqual(err, "qilinctl: no worker with pid 1 (see: show workers)\n")
            # Never below one worker, as TTOU.
            self.assertEqual(ok_json(self.sock, "worker", "remove", "5"),
                             {"removed": 1, "previous": 2, "total": 1})
            srv.wait_workers(1)

    def test_reload_and_reopen(self):
        with self.server() as srv:
            before = set(srv.wait_workers(2))
            self.assertEqual(ok(self.sock, "reload"), "reloading\n")
            srv.wait_log(r"Handling signal: hup")
            wait_for(lambda: (lambda p: p if len(p) == 2 and not p & before else None)(
                set(srv.worker_pids())), what="two new workers after reload")
            self.assertEqual(ok_json(self.sock, "show", "stats")["reloads"], 1)

            # logrotate's way: move the file, reopen, and the master writes a new one.
            os.rename(srv.log_path, srv.log_path + ".1")
            self.assertEqual(ok_json(self.sock, "reopen"), {"status": "reopening"})
            wait_for(lambda: os.path.exists(srv.log_path), what="the reopened error log")
            ok(self.sock, "worker", "add")
            wait_for(lambda: "Control socket: adding 1 worker" in open(srv.log_path).read(),
                     what="the master's next line in the new log")
            with open(srv.log_path + ".1") as f:
                self.assertIn("Handling signal: usr1", f.read())

    def test_shutdown_graceful(self):
        with self.server() as srv:
            srv.wait_workers(2)
            self.assertEqual(ok(self.sock, "shutdown"), "shutting down (graceful)\n")
            self.assertEqual(srv.wait(), 0)
            self.assertIn("Handling signal: term", srv.log_text())
            self.assertFalse(os.path.exists(self.sock), "the socket file is removed at exit")

    def test_shutdown_quick(self):
        with self.server() as srv:
            srv.wait_workers(2)
            self.assertEqual(ok_json(self.sock, "shutdown", "quick"),
                             {"status": "shutting_down", "mode": "quick"})
            self.assertEqual(srv.wait(), 0)
            self.assertIn("Handling signal: int", srv.log_text())
            self.assertFalse(os.path.exists(self.sock))


per_worker_class(globals(), ControlTest)


class ControlSocketTest(unittest.TestCase):
    """The socket itself: who may use it, where it is, and its errors."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-ctl-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.sock = os.path.join(self.tmp, "ctl.sock")

    def nobody_ctl(self, *args):
        """qilinctl as the user nobody, from a copy it can run."""
        if shutil.which("setpriv") is None:
            self.skipTest("setpriv is not installed")
        if os.geteuid() != 0:
            self.skipTest("changing user needs root")
        exe = os.path.join(self.tmp, "qilinctl")
        shutil.copy(ctl_bin(), exe)
        env = {k: v for k, v in os.environ.items() if k not in ("LSAN_OPTIONS", "ASAN_OPTIONS")}
        # Its sanitizer runtime could not read our suppressions file as nobody.
        env["ASAN_OPTIONS"] = "detect_leaks=0"
        cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", exe,
               "-s", self.sock] + list(args)
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=CTL_TIMEOUT, env=env)
        return p.returncode, p.stdout, p.stderr

    def test_another_user_is_refused(self):
        os.chmod(self.tmp, 0o755)  # only the socket's own mode stands in the way
        with Server(["--control-socket", self.sock]):
            rc, out, err = self.nobody_ctl("show", "workers")
            self.assertEqual((rc, out), (1, ""))
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn("qilinctl: cannot connect to %s: Permission denied" % self.sock, err)
        # With the mode widened, the same user gets in: the mode is what refused it.
        with Server(["--control-socket", self.sock, "--control-socket-mode", "0666"]) as srv:
            self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o666)
            rc, out, err = self.nobody_ctl("--json", "show", "stats")
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["pid"], srv.pid)

    def test_no_control_socket(self):
        env = {"XDG_RUNTIME_DIR": self.tmp}
        with Server(["--no-control-socket"], env=env) as srv:
            with Server(["--no-control-socket", "--control-socket", self.sock], env=env):
                pass
            self.assertEqual(os.listdir(self.tmp), [])
            self.assertNotIn("Control socket", srv.log_text())
        rc, out, err = ctl(self.sock, "show", "workers")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "qilinctl: cannot connect to %s: No such file or directory (is"
                              " qilin running with --control-socket?)\n" % self.sock)

    def test_default_path(self):
        env = dict(os.environ, XDG_RUNTIME_DIR=self.tmp)
        path = os.path.join(self.tmp, "qilin.ctl")
        with Server(env={"XDG_RUNTIME_DIR": self.tmp}) as srv:
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            srv.wait_log(r"Control socket listening at %s" % path)
            rc, out, err = ctl(None, "--json", "show", "stats", env=env)
            self.assertEqual(rc, 0, err)
            self.assertEqual(json.loads(out)["pid"], srv.pid)
            # The default path taken: the second server runs on, without one.
            with Server(env={"XDG_RUNTIME_DIR": self.tmp}) as other:
                other.wait_log(r"\[WARNING\] control socket %s is in use by a running server"
                               r" \(pid %d\).*; running without a control socket" %
                               (path, srv.pid))
            self.assertTrue(os.path.exists(path), "the second server left the socket alone")
            self.assertEqual(json.loads(ctl(None, "-j", "show", "stats", env=env)[1])["pid"],
                             srv.pid)
            self.assertEqual(srv.stop(), 0)
            self.assertFalse(os.path.exists(path), "the master removes its socket at exit")

    def test_path_in_use_and_stale(self):
        with Server(["--control-socket", self.sock]) as srv:
            r = run_qilin(["--control-socket", self.sock, "-b", "127.0.0.1:0", "testapp:app"])
            self.assertEqual(r.returncode, 1, r)
            self.assertEqual(r.stderr.count("\n"), 1, r)
            self.assertIn("Error: control socket %s is in use by a running server (pid %d):"
                          " stop it, or give this one another --control-socket PATH" %
                          (self.sock, srv.pid), r.stderr)
            self.assertEqual(ok_json(self.sock, "show", "stats")["pid"], srv.pid)
        # The master was killed (SIGKILL) and left its socket file: a stale
        # one, which nobody answers on, so the next server replaces it.
        self.assertTrue(stat.S_ISSOCK(os.stat(self.sock).st_mode))
        with Server(["--control-socket", self.sock]) as srv:
            self.assertEqual(ok_json(self.sock, "show", "stats")["pid"], srv.pid)

    def test_bad_mode(self):
        for mode in ("0999", "1777", "rw", ""):
            r = run_qilin(["--control-socket-mode", mode, "testapp:app"])
            self.assertEqual(r.returncode, 2, r)
            self.assertEqual(r.stderr.count("\n"), 1, r)
            self.assertIn("--control-socket-mode: invalid mode '%s' (expected octal permission"
                          " bits from 0 to 0777, e.g. 0600 or 0660)" % mode, r.stderr)
        r = run_qilin(["--control-socket-mode", "0o640", "--control-socket-mode", "660",
                       "--print-config"])
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"(?m)^control_socket_mode\s+= %d$" % 0o660)

    def test_a_stalled_client_costs_nothing(self):
        with Server(["--control-socket", self.sock]) as srv:
            srv.wait_workers(1)
            # Every connection slot held by clients that never finish a line.
            stalled = []
            for _ in range(4):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(self.sock)
                c.sendall(b"show wor")
                stalled.append(c)
            try:
                time.sleep(0.2)
                extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                extra.settimeout(5)
                extra.connect(self.sock)
                self.assertEqual(extra.recv(200), b"error: control socket busy, try again\n")
                extra.close()
                # The master still handles signals and workers meanwhile.
                srv.send_signal(signal.SIGTTIN)
                srv.wait_workers(2)
            finally:
                for c in stalled:
                    c.close()

            # The master frees the slots as it sees the closes: until then a
            # client is told the socket is busy (or reset), so ask again.
            def workers():
                try:
                    return ok_json(self.sock, "show", "workers")
                except AssertionError:
                    return None
            self.assertEqual(wait_for(workers, 10, what="a free control slot")["target"], 2)
            # A line past the limit gets one error, not a read without end.
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(5)
            c.connect(self.sock)
            c.sendall(b"x" * 2000)
            self.assertEqual(c.recv(200), b"error: request line too long\n")
            c.close()
            # A silent client is dropped after its read deadline.
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(10)
            c.connect(self.sock)
            self.assertEqual(c.recv(10), b"")
            c.close()
            # The raw protocol, as socat or nc -U would speak it.
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(5)
            c.connect(self.sock)
            c.sendall(b"json show stats\n")
            answer = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                answer += chunk
            c.close()
            status, body = answer.split(b"\n", 1)
            self.assertEqual(status, b"ok")
            self.assertEqual(json.loads(body)["pid"], srv.pid)

    def test_usage(self):
        rc, out, err = ctl(None, "--help")
        self.assertEqual(rc, 0, err)
        for word in ("--socket", "--json", "--command", "show workers", "worker add [N]",
                     "worker kill PID", "reload", "reopen", "shutdown [graceful|quick]"):
            self.assertIn(word, out)
        rc, out, err = ctl(None)
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err.count("\n"), 1, err)
        rc, out, err = ctl(self.sock, "frobnicate")
        self.assertEqual((rc, out, err),
                         (2, "", "qilinctl: unknown command 'frobnicate' (try: help)\n"))
        rc, out, err = ctl(self.sock, "worker", "add", "zero")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("invalid worker count 'zero'", err)
        rc, out, err = ctl(self.sock, "--bogus", "show", "workers")
        self.assertEqual(rc, 2, err)
        # gunicornc's -c "COMMAND" works too.
        rc, out, err = ctl(self.sock, "-c", "show workers")
        self.assertEqual(rc, 1)
        self.assertIn("is qilin running with --control-socket?", err)


if __name__ == "__main__":
    unittest.main()
