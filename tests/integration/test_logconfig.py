"""Python logging configuration (--log-config, --log-config-json,
logconfig_dict): qilin's error and access lines go through Python's logging
under "gunicorn.error" and "gunicorn.access", in the master and the
workers, so a Django LOGGING-style dict or a JSON formatter works as under
gunicorn. On every worker class."""
import json
import os
import shutil
import signal
import tempfile
import unittest

from qilintest import Server, json_lines, per_worker_class, run_qilin, wait_for

def json_dict(path):
    """A logconfig_dict whose file handler writes one JSON object per line
    (the message goes in as a field of its own, so any text is valid JSON)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "jsonfmt.JsonFormatter"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": path,
                              "formatter": "json"}},
        "root": {"level": "WARNING", "handlers": ["file"]},
        "loggers": {"gunicorn.error": {"level": "INFO", "handlers": ["file"], "propagate": False},
                    "gunicorn.access": {"level": "INFO", "handlers": ["file"],
                                        "propagate": False}},
    }


JSONFMT = '''\
import json
import logging


class JsonFormatter(logging.Formatter):
    def format(self, record):
        return json.dumps({"level": record.levelname, "logger": record.name,
                           "pid": record.process, "msg": record.getMessage()})
'''


class LogConfigTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-logconfig-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        with open(os.path.join(self.tmp, "jsonfmt.py"), "w") as f:
            f.write(JSONFMT)
        self.out = os.path.join(self.tmp, "log.jsonl")

    def records(self):
        return json_lines(self.out)

    def wait_record(self, logger, pred, what):
        def found():
            return [r for r in self.records() if r["logger"] == logger and pred(r["msg"])]
        return wait_for(found, 20, what=what)

    def serve(self, args):
        # jsonfmt.py sits in the temporary directory: PYTHONPATH lets the
        # master (where the configuration is applied first) import it.
        return Server(args, env={"PYTHONPATH": self.tmp}, boot_log=False)

    def check_lines(self, srv):
        [worker] = srv.wait_workers(1)
        self.assertEqual(srv.get("/hello").status, 200)
        self.assertEqual(srv.get("/raise").status, 500)
        self.wait_record("gunicorn.error", lambda m: m == "Booting worker with pid: %d" % worker,
                         "the worker's boot line")
        self.wait_record("gunicorn.error", lambda m: m.startswith("Starting qilin "),
                         "the master's first line")
        [acc] = self.wait_record("gunicorn.access", lambda m: '"GET /hello HTTP/1.1" 200' in m,
                                 "the access line")
        self.assertEqual((acc["level"], acc["pid"]), ("INFO", worker))
        self.wait_record("gunicorn.error", lambda m: "RuntimeError: boom from testapp" in m,
                         "the traceback")
        srv.send_signal(signal.SIGTERM)
        srv.wait()
        self.wait_record("gunicorn.error", lambda m: m == "Shutting down: Master",
                         "the master's last line")
        # Taken by Python's logging: not written to the error log as well.
        self.assertNotIn("Booting worker with pid: %d" % worker, srv.log_text())
        self.assertNotIn("Starting qilin", srv.log_text())

    def test_logconfig_dict_with_a_json_formatter(self):
        conf = os.path.join(self.tmp, "gunicorn.conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = %r\n" % json_dict(self.out))
        with self.serve(["-c", conf]) as srv:
            self.check_lines(srv)

    def test_log_config_json(self):
        path = os.path.join(self.tmp, "logging.json")
        with open(path, "w") as f:
            json.dump(json_dict(self.out), f)
        with self.serve(["--log-config-json", path]) as srv:
            self.check_lines(srv)

    def test_log_config_ini_and_a_django_style_dict(self):
        ini = os.path.join(self.tmp, "logging.ini")
        with open(ini, "w") as f:
            f.write("[loggers]\nkeys = root, error, access\n\n"
                    "[handlers]\nkeys = file\n\n[formatters]\nkeys = json\n\n"
                    "[logger_root]\nlevel = WARNING\nhandlers = file\n\n"
                    "[logger_error]\nlevel = INFO\nhandlers = file\npropagate = 0\n"
                    "qualname = gunicorn.error\n\n"
                    "[logger_access]\nlevel = INFO\nhandlers = file\npropagate = 0\n"
                    "qualname = gunicorn.access\n\n"
                    "[handler_file]\nclass = FileHandler\nargs = ('%s', 'a')\nformatter = json\n\n"
                    "[formatter_json]\nclass = jsonfmt.JsonFormatter\n" % self.out)
        with self.serve(["--log-config", ini]) as srv:
            self.check_lines(srv)

    def serve_json(self):
        """A server on a --log-config-json file; returns it, once its worker's
        boot line is a record, with the file's path and the worker's pid."""
        path = os.path.join(self.tmp, "logging.json")
        with open(path, "w") as f:
            json.dump(json_dict(self.out), f)
        srv = self.serve(["--log-config-json", path])
        self.addCleanup(srv.close)
        [worker] = srv.wait_workers(1)
        self.wait_record("gunicorn.error", lambda m: m == "Booting worker with pid: %d" % worker,
                         "the first worker's boot line")
        return srv, path, worker

    def test_hup_applies_a_changed_file_and_keeps_the_old_when_it_fails(self):
        srv, path, first = self.serve_json()
        # The file now names another log: the new workers write there.
        second_out = os.path.join(self.tmp, "second.jsonl")
        with open(path, "w") as f:
            json.dump(json_dict(second_out), f)
        srv.send_signal(signal.SIGHUP)
        [second] = srv.wait_workers(1, exclude=[first], timeout=20)
        self.out = second_out
        self.wait_record("gunicorn.error", lambda m: m == "Booting worker with pid: %d" % second,
                         "the boot line in the new log")
        # A broken file: refused, and the workers go on with the one in force.
        with open(path, "w") as f:
            f.write("{not json")
        srv.send_signal(signal.SIGHUP)
        [third] = srv.wait_workers(1, exclude=[first, second], timeout=20)
        self.wait_record("gunicorn.error", lambda m: m.startswith(
            "Reload: --log-config-json %s: JSONDecodeError" % path) and
            m.endswith("keeping the previous logging configuration"), "the refusal")
        self.wait_record("gunicorn.error", lambda m: m == "Booting worker with pid: %d" % third,
                         "the boot line, still in the second log")

    def test_usr1_reopens_the_file_handlers(self):
        srv, _, worker = self.serve_json()
        # As logrotate: the file is renamed, then USR1.
        os.rename(self.out, self.out + ".1")
        srv.send_signal(signal.SIGUSR1)

        def new_access_line():
            # The worker reopens once the master told it: ask until it has.
            srv.get("/hello")
            return [r for r in self.records() if r["logger"] == "gunicorn.access"]
        wait_for(new_access_line, 20, what="an access line in a file of the old name")
        with open(self.out + ".1") as f:
            self.assertIn("Booting worker with pid: %d" % worker, f.read())

    def test_bad_configuration_is_one_line(self):
        conf = os.path.join(self.tmp, "bad.conf.py")
        with open(conf, "w") as f:
            f.write("logconfig_dict = {'handlers': {'h': {'class': 'no.such.Handler'}}}\n")
        for args, words in ((["-c", conf], "logconfig_dict: ValueError: Unable to configure"
                                           " handler 'h'"),
                            (["--log-config", os.path.join(self.tmp, "none.ini")],
                             "--log-config %s: FileNotFoundError: not found"
                             % os.path.join(self.tmp, "none.ini"))):
            r = run_qilin(["-b", "127.0.0.1:0"] + args + ["testapp:app"])
            self.assertNotEqual(r.returncode, 0, r.output)
            self.assertIn(words, r.output)
            self.assertNotIn("Traceback", r.output)


per_worker_class(globals(), LogConfigTest)


if __name__ == "__main__":
    unittest.main()
