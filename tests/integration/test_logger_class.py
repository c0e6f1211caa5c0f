"""--logger-class: a Python class with gunicorn's Logger interface takes
qilin's error and access lines, called as gunicorn calls it (made with the
cfg, critical/error/warning/info/debug, access(resp, req, environ,
request_time), reopen_files() on USR1, setup(cfg) again on a HUP that
changed the logging settings), in the master and the workers. On every
worker class."""
import os
import shutil
import signal
import tempfile
import unittest

from qilintest import Server, json_lines, per_worker_class, run_qilin, wait_for

# A logger that writes what it is given as JSON lines to $RECORDS; it does
# not import gunicorn, as a class written for qilin need not.
RECORDER = '''\
import json
import os


class Recorder:
    def __init__(self, cfg):
        self.setup(cfg)

    def setup(self, cfg):
        if cfg.loglevel == "warning":
            raise ValueError("warning is refused here")
        self.cfg = cfg
        self._write({"setup": cfg.loglevel, "errorlog": cfg.errorlog})

    def _write(self, rec):
        rec["pid"] = os.getpid()
        with open(os.environ["RECORDS"], "a") as f:
            f.write(json.dumps(rec) + "\\n")

    def _line(self, level, msg):
        self._write({"level": level, "msg": msg})

    def critical(self, msg, *args, **kw): self._line("critical", msg)
    def error(self, msg, *args, **kw): self._line("error", msg)
    def warning(self, msg, *args, **kw): self._line("warning", msg)
    def info(self, msg, *args, **kw): self._line("info", msg)
    def debug(self, msg, *args, **kw): self._line("debug", msg)

    def reopen_files(self):
        self._write({"reopen": True})

    def access(self, resp, req, environ, request_time):
        if "fail" in req.query:
            raise RuntimeError("access refused")
        self._write({
            "status": resp.status, "code": resp.status_code, "sent": resp.sent,
            "resp_headers": [list(h) for h in resp.headers],
            "method": req.method, "path": req.path, "query": req.query, "uri": req.uri,
            "version": list(req.version), "req_headers": [list(h) for h in req.headers],
            "environ": {k: v for k, v in environ.items() if isinstance(v, str)},
            "seconds": request_time.total_seconds()})


class NoAccess:
    def __init__(self, cfg):
        pass

    def critical(self, msg): pass
    error = warning = info = debug = critical
'''

# gunicorn's own Logger, customised the common ways: its error line format,
# and an access() that leaves health checks out of the access log.
GUNICORN_SUBCLASS = '''\
from gunicorn import glogging


class QuietHealth(glogging.Logger):
    error_fmt = "CUSTOM [%(levelname)s] %(message)s"

    def access(self, resp, req, environ, request_time):
        if req.path != "/health":
            super().access(resp, req, environ, request_time)
'''


def have_gunicorn():
    try:
        import gunicorn.glogging
        return gunicorn.glogging.Logger is not None
    except ImportError:
        return False


class LoggerClassTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-loggerclass-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for name, text in (("recorder.py", RECORDER), ("quiet.py", GUNICORN_SUBCLASS)):
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(text)
        self.records_path = os.path.join(self.tmp, "records.jsonl")

    def records(self):
        return json_lines(self.records_path)

    def wait_record(self, pred, what):
        return wait_for(lambda: [r for r in self.records() if pred(r)], 20, what=what)

    def serve(self, args, **kw):
        # The classes sit in the temporary directory: PYTHONPATH lets the
        # master, where the logger is made, import them.
        return Server(args, env={"PYTHONPATH": self.tmp, "RECORDS": self.records_path},
                      boot_log=False, **kw)

    def test_every_line_and_request_reach_the_class(self):
        access = os.path.join(self.tmp, "access.log")
        with self.serve(["--logger-class", "recorder.Recorder",
                         "--access-logfile", access]) as srv:
            [worker] = srv.wait_workers(1)
            self.wait_record(lambda r: r.get("setup") == "info" and
                             r["errorlog"] == srv.log_path, "setup(cfg) with the settings")
            self.wait_record(lambda r: r.get("msg") == "Booting worker with pid: %d" % worker and
                             r["level"] == "info", "the worker's boot line")
            # The master's first lines too: the class is made before them.
            self.wait_record(lambda r: r.get("msg", "").startswith("Starting qilin ") and
                             r["pid"] == srv.pid, "the master's first line")
            self.wait_record(lambda r: r.get("msg", "").startswith("Listening at: http://"),
                             "the listener line")
            r = srv.get("/hello?x=1", headers=[("X-Test", "yes")])
            self.assertEqual(r.status, 200)
            [acc] = self.wait_record(lambda r: r.get("path") == "/hello", "the request")
            self.assertEqual((acc["code"], acc["status"], acc["pid"]), (200, "200 OK", worker))
            self.assertEqual((acc["method"], acc["query"], acc["uri"], acc["version"]),
                             ("GET", "x=1", "/hello?x=1", [1, 1]))
            self.assertEqual(acc["sent"], len(r.body))
            self.assertIn(["X-TEST", "yes"], acc["req_headers"])
            self.assertIn("content-type", [h[0].lower() for h in acc["resp_headers"]])
            env = acc["environ"]
            self.assertEqual((env["REQUEST_METHOD"], env["PATH_INFO"], env["QUERY_STRING"],
                              env["REMOTE_ADDR"], env["HTTP_X_TEST"], env["RAW_URI"]),
                             ("GET", "/hello", "x=1", "127.0.0.1", "yes", "/hello?x=1"))
            self.assertGreaterEqual(acc["seconds"], 0)
            # A traceback is an error line of its own, as the app's own error.
            self.assertEqual(srv.get("/raise").status, 500)
            self.wait_record(lambda r: r.get("level") == "error" and
                             "RuntimeError: boom from testapp" in r["msg"], "the traceback")
            self.wait_record(lambda r: r.get("code") == 500, "the failed request")
            # USR1: reopen_files() in the master and in the worker.
            srv.send_signal(signal.SIGUSR1)
            self.wait_record(lambda r: r.get("reopen") and r["pid"] == srv.pid, "master reopen")
            self.wait_record(lambda r: r.get("reopen") and r["pid"] == worker, "worker reopen")
            # A logger whose access() fails: the core writes its own line.
            self.assertEqual(srv.get("/hello?fail=1").status, 200)
            wait_for(lambda: os.path.exists(access) and "GET /hello?fail=1" in open(access).read(),
                     20, what="the core's access line")
            self.wait_record(lambda r: r.get("level") == "error" and
                             "access() failed" in r["msg"] and "access refused" in r["msg"],
                             "the failure")
            srv.send_signal(signal.SIGTERM)
            srv.wait()
        self.wait_record(lambda r: r.get("msg") == "Shutting down: Master", "the last line")
        # Taken by the class: written nowhere else, the access log included.
        self.assertNotIn("Booting worker with pid: %d" % worker, srv.log_text())
        with open(access) as f:
            self.assertNotIn("GET /hello?x=1", f.read())

    @unittest.skipUnless(have_gunicorn(), "gunicorn (python3-gunicorn) is not installed")
    def test_a_subclass_of_gunicorns_logger(self):
        access = os.path.join(self.tmp, "access.log")
        with self.serve(["--logger-class", "quiet.QuietHealth",
                         "--access-logfile", access]) as srv:
            [worker] = srv.wait_workers(1)
            self.assertEqual(srv.get("/health").status, 404)
            self.assertEqual(srv.get("/hello").status, 200)
            line = wait_for(lambda: [ln for ln in open(access) if "/hello" in ln] if
                            os.path.exists(access) else None, 20, what="the access line")[0]
            self.assertRegex(line, r'^127\.0\.0\.1 - - \[[^]]+\] "GET /hello HTTP/1\.1" 200 \d+ '
                             r'"-" "[^"]*"$')
            wait_for(lambda: "CUSTOM [INFO] Booting worker with pid: %d" % worker in
                     srv.log_text(), 20, what="the class's error format")
        with open(access) as f:
            self.assertNotIn("/health", f.read())

    def test_a_class_defined_in_the_config_file(self):
        conf = os.path.join(self.tmp, "gunicorn.conf.py")
        with open(conf, "w") as f:
            f.write("import recorder\n\n\nclass Mine(recorder.Recorder):\n"
                    "    def info(self, msg, *args, **kw):\n"
                    "        self._line('mine', msg)\n\n\nlogger_class = Mine\n")
        with self.serve(["-c", conf]) as srv:
            [worker] = srv.wait_workers(1)
            self.wait_record(lambda r: r.get("level") == "mine" and
                             r["msg"] == "Booting worker with pid: %d" % worker,
                             "the boot line through the file's class")

    def test_hup_calls_setup_again_and_keeps_the_old_settings_when_it_fails(self):
        conf = os.path.join(self.tmp, "gunicorn.conf.py")

        def write(level):
            with open(conf, "w") as f:
                f.write("logger_class = 'recorder.Recorder'\nloglevel = %r\n" % level)
        write("info")
        with self.serve(["-c", conf]) as srv:
            [first] = srv.wait_workers(1)
            write("debug")
            srv.send_signal(signal.SIGHUP)
            [second] = srv.wait_workers(1, exclude=[first], timeout=20)
            self.wait_record(lambda r: r.get("setup") == "debug" and r["pid"] == srv.pid,
                             "setup() with the new level")
            write("warning")
            srv.send_signal(signal.SIGHUP)
            srv.wait_workers(1, exclude=[first, second], timeout=20)
            self.wait_record(lambda r: r.get("level") == "error" and r["msg"].startswith(
                "Reload: --logger-class recorder.Recorder: setup() failed: ValueError: "
                "warning is refused here"), "the refusal")
            setups = [r["setup"] for r in self.records() if "setup" in r]
            self.assertEqual(setups[-1], "debug", setups)


class LoggerClassErrorsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-loggerclass-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        with open(os.path.join(self.tmp, "recorder.py"), "w") as f:
            f.write(RECORDER)

    def test_a_class_that_cannot_be_used_is_one_line(self):
        for spec, words in (("nosuch.Logger", "--logger-class nosuch.Logger: "
                             "ModuleNotFoundError: No module named 'nosuch'"),
                            ("recorder.Missing", "--logger-class recorder.Missing: "
                             "AttributeError"),
                            ("recorder.NoAccess", "--logger-class recorder.NoAccess: the object "
                             "has no access()")):
            r = run_qilin(["-b", "127.0.0.1:0", "--logger-class", spec, "testapp:app"],
                          env={"PYTHONPATH": self.tmp})
            self.assertNotEqual(r.returncode, 0, r.output)
            self.assertIn(words, r.output)
            self.assertNotIn("Traceback", r.output)

    def test_gunicorns_own_logger_names_mean_qilins_logging(self):
        for spec in ("gunicorn.glogging.Logger", "simple", "gunicorn.instrument.statsd.Statsd"):
            with Server(["--logger-class", spec]) as srv:
                [worker] = srv.wait_workers(1)
                self.assertIn("[INFO] Booting worker with pid: %d" % worker, srv.log_text())
                # qilin writes a traceback as it is; a logger class (gunicorn's
                # Logger made from the name) would prefix it as an [ERROR] line.
                self.assertEqual(srv.get("/raise").status, 500)
                wait_for(lambda: "\nTraceback (most recent call last):\n" in srv.log_text(), 20,
                         what="the traceback written by qilin itself")


per_worker_class(globals(), LoggerClassTest)


if __name__ == "__main__":
    unittest.main()
