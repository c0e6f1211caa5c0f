"""Server hooks in the Lua config file: gunicorn's names, called
at gunicorn's points with tables describing the server, the worker and the
request; a failing hook is logged with file:line and changes nothing else."""
import os
import shutil
import signal
import tempfile
import unittest

from qilintest import LUA_NOTE, HookNotes, Server, hang_timeout, per_worker_class, wait_for, worker_class

HOOKS = LUA_NOTE + r'''
workers = 2
function on_starting(server) note("on_starting", server.pid) end
function when_ready(server) note("when_ready", server.pid, server.workers) end
function pre_fork(server, worker) note("pre_fork", server.pid, worker.age) end
function post_fork(server, worker) note("post_fork", server.pid, worker.pid, worker.age) end
function post_worker_init(worker) note("post_worker_init", worker.pid) end
function pre_request(worker, req)
    if req.query == "w=boom" then error("boom in pre_request") end
    note("pre_request", worker.pid, req.method, req.path, req.query)
end
function post_request(worker, req) note("post_request", worker.pid, req.path, req.status) end
function child_exit(server, worker) note("child_exit", worker.pid, worker.exit_code) end
function worker_exit(server, worker) note("worker_exit", worker.pid) end
function nworkers_changed(server, new, old) note("nworkers_changed", new, old) end
function on_reload(server) note("on_reload", server.pid) end
function worker_int(worker) note("worker_int", worker.pid) end
function worker_abort(worker) note("worker_abort", worker.pid) end
function pre_exec(server) note("pre_exec", server.pid) end
function on_exit(server) note("on_exit", server.pid) end
'''


class HooksTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-hooks-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.out = os.path.join(self.tmp, "notes")
        self.conf = os.path.join(self.tmp, "qilin.conf.lua")
        with open(self.conf, "w") as f:
            f.write(HOOKS % self.out)

    def notes(self):
        return HookNotes(self.out).all()

    def wait_note(self, *want):
        return HookNotes(self.out).wait(*want)

    def test_lifecycle_hooks(self):
        with Server(["-c", self.conf], workers=None) as srv:
            workers = srv.wait_workers(2)
            master = str(srv.pid)
            self.wait_note("on_starting", master)
            self.wait_note("when_ready", master, 2)
            self.assertEqual(sorted(n[2] for n in self.notes() if n[0] == "pre_fork"), ["1", "2"])
            for pid in workers:
                self.wait_note("post_fork", master, pid)
                self.wait_note("post_worker_init", pid)
            # Order as gunicorn: on_starting, when_ready, then the forks.
            names = [n[0] for n in self.notes()]
            self.assertLess(names.index("when_ready"), names.index("pre_fork"))

            res = srv.get("/say?w=hi")
            self.assertEqual(res.body, b"hi")
            [pre] = self.wait_note("pre_request")
            self.assertEqual(pre[2:], ["GET", "/say", "w=hi"])
            self.wait_note("post_request", pre[1], "/say", 200)

            srv.send_signal(signal.SIGTTIN)
            self.wait_note("nworkers_changed", 3, 2)
            srv.send_signal(signal.SIGHUP)
            self.wait_note("on_reload", master)
            for pid in workers:
                self.wait_note("worker_exit", pid)
                self.wait_note("child_exit", pid, 0)
            self.wait_note("nworkers_changed", 2, 3)  # HUP re-read workers = 2
            srv.wait_workers(2, exclude=workers, timeout=20)
            self.assertEqual(srv.stop(signal.SIGQUIT), 0)
            self.wait_note("on_exit", master)
            self.assertTrue([n for n in self.notes() if n[0] == "worker_int"])
        self.assertNotIn("Hook", srv.log_text())

    def test_failing_hook_is_logged_and_ignored(self):
        with open(self.conf, "a") as f:
            f.write('function on_starting(server) error("not today") end\n')
        with open(self.conf) as f:
            line = sum(1 for _ in f)
        with Server(["-c", self.conf], workers=None) as srv:
            srv.wait_log(r"Hook on_starting failed: %s:%d: not today" % (self.conf, line))
            # Both workers have loaded the app (eventlet's imports take seconds
            # under ASan), so the request is answered within the client's timeout.
            for pid in srv.wait_workers(2):
                self.wait_note("post_worker_init", pid)
            res = srv.get("/say?w=boom")
            self.assertEqual((res.status, res.body), (200, b"boom"))
            srv.wait_log(r"Hook pre_request failed: %s:\d+: boom in pre_request" % self.conf)
            self.wait_note("post_request")
            self.assertTrue(srv.running())

    def test_worker_abort_and_pre_exec(self):
        args, line = ["-c", self.conf, "--timeout", hang_timeout(1)], r"WORKER TIMEOUT"
        if worker_class() == "gthread":
            # The main thread's heartbeat goes on while a pool thread hangs
            # (a long request is not a dead worker), so the abort comes from
            # --request-timeout there.
            args, line = args + ["--request-timeout", "1"], r"WORKER REQUEST TIMEOUT"
        with Server(args, workers=None) as srv:
            srv.wait_workers(2)
            with srv.connect(timeout=30) as c:
                c.send_request("GET", "/hang?real=1")
                srv.wait_log(line, timeout=20)
            self.wait_note("worker_abort")
            srv.send_signal(signal.SIGUSR2)
            self.wait_note("pre_exec", srv.pid)
            new = int(srv.wait_log(r"Starting a new master \(pid:(\d+)\)").group(1))
            wait_for(lambda: os.path.exists("/proc/%d" % new), 5, what="the new master")
            os.kill(new, signal.SIGTERM)
            srv.wait_log(r"New master \(pid:%d\) exited" % new, timeout=20)

    def test_quit_ends_a_busy_worker_at_once_and_runs_worker_int(self):
        # As gunicorn: QUIT raises SystemExit in the request a worker runs
        # (a long sleep too), so the worker exits at once, runs worker_int
        # and is not left to the master's SIGKILL.
        mark = os.path.join(self.tmp, "busy")
        with Server(["-c", self.conf, "--graceful-timeout", "60"], workers=None) as srv:
            srv.wait_workers(2)
            with srv.connect(timeout=20) as c:
                c.send_request("GET", "/sleep?s=60&mark=" + mark)
                wait_for(lambda: os.path.exists(mark) and open(mark).read(), 10,
                         what="the request to start")
                with open(mark) as f:
                    busy = int(f.read())
                srv.send_signal(signal.SIGQUIT)
                self.assertEqual(srv.wait(timeout=15), 0)
            self.wait_note("worker_int", busy)
            self.assertIn("Worker exiting (pid: %d)" % busy, srv.log_text())

    def test_a_function_that_is_not_a_hook_is_an_error(self):
        with open(self.conf, "a") as f:
            f.write("function pre_forks(server) end\n")
        from qilintest import run_qilin
        r = run_qilin(["-c", self.conf, "testapp:app"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("unknown setting 'pre_forks' (a function, but not a server hook", r.stderr)


# The hooks are called at the same points on every worker class.
per_worker_class(globals(), HooksTest)

if __name__ == "__main__":
    unittest.main()
