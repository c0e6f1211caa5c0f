"""gunicorn.conf.py and $GUNICORN_CMD_ARGS: a gunicorn deployment
switches by changing the command name. The Python config file's settings are
applied (with the Lua file's precedence), errors are one FILE:LINE line,
gunicorn settings qilin lacks are one warning, and its functions are server
hooks called with server/worker/req/resp objects."""
import json
import os
import shutil
import signal
import tempfile
import unittest

from qilintest import Conn, HookNotes, Server, free_port, run_qilin, wait_for

# The server hooks qilin runs from a gunicorn.conf.py.
HOOKS = ("on_starting", "on_reload", "when_ready", "pre_fork", "post_fork", "post_worker_init",
         "worker_int", "worker_abort", "pre_exec", "pre_request", "post_request", "child_exit",
         "worker_exit", "nworkers_changed", "on_exit")

# Like the example in gunicorn's documentation, made small for a shared machine.
DOCS_CONF = '''\
import multiprocessing

bind = "127.0.0.1:%(port)d"
workers = min(2, multiprocessing.cpu_count() * 2 + 1)
worker_class = "gthread"
threads = 2
accesslog = %(access)r
loglevel = "warning"
raw_env = ["QILIN_CONF_TEST=from-conf"]
'''

# The whole of gunicorn's documented example config, in its shape: every
# setting it lists (several left None, one qilin lacks) and its hooks, which
# log through server.log / worker.log with %-style arguments and dump the
# stacks of every thread on INT or QUIT. It must run unchanged.
EXAMPLE_CONF = '''\
import sys

bind = "127.0.0.1:%(port)d"
backlog = 2048
workers = 2
worker_class = "sync"
worker_connections = 1000
timeout = 30
keepalive = 2
spew = False
daemon = False
raw_env = ["DJANGO_SETTINGS_MODULE=mysite.settings"]
pidfile = None
umask = 0
user = None
group = None
tmp_upload_dir = None
errorlog = "-"
loglevel = "info"
accesslog = "-"
access_log_format = '%%(h)s %%(l)s %%(u)s %%(t)s "%%(r)s" %%(s)s %%(b)s "%%(f)s" "%%(a)s"'
proc_name = None


def post_fork(server, worker):
    server.log.info("Worker spawned (pid: %%s)", worker.pid)

def pre_fork(server, worker):
    pass

def pre_exec(server):
    server.log.info("Forked child, re-executing.")

def when_ready(server):
    server.log.info("Server is ready. Spawning workers")

def worker_int(worker):
    worker.log.info("worker received INT or QUIT signal")
    import threading, traceback
    id2name = {th.ident: th.name for th in threading.enumerate()}
    code = []
    for thread_id, stack in sys._current_frames().items():
        code.append("\\n# Thread: %%s(%%d)" %% (id2name.get(thread_id, ""), thread_id))
        for filename, lineno, name, line in traceback.extract_stack(stack):
            code.append('File: "%%s", line %%d, in %%s' %% (filename, lineno, name))
            if line:
                code.append("  %%s" %% (line.strip()))
    worker.log.info("stacks: %%d lines", len(code))

def worker_abort(worker):
    worker.log.info("worker received SIGABRT signal")
'''

HOOKS_CONF = '''\
import os

OUT = %(out)r
workers = 2


def note(*parts):
    with open(OUT, "a") as f:
        f.write(" ".join(str(p) for p in parts) + "\\n")


def on_starting(server):
    note("on_starting", server.pid, server.cfg.workers, server.cfg.bind[0])

def when_ready(server):
    note("when_ready", server.pid)
    raise ValueError("not ready today")

def pre_fork(server, worker):
    note("pre_fork", server.pid, worker.age)

def post_fork(server, worker):
    note("post_fork", server.pid, worker.pid, worker.ppid, worker.age, os.getpid())

def post_worker_init(worker):
    worker.log.info("post_worker_init says hello")
    note("post_worker_init", worker.pid)

def pre_request(worker, req):
    note("pre_request", worker.pid, req.method, req.path, req.query,
         dict(req.headers).get("X-MARK"))

def post_request(worker, req, environ, resp):
    note("post_request", worker.pid, req.uri, environ["PATH_INFO"], resp.status_code,
         resp.status.replace(" ", "_"))

def child_exit(server, worker):
    note("child_exit", worker.pid, worker.exitcode)

def worker_exit(server, worker):
    note("worker_exit", worker.pid)

def nworkers_changed(server, new_value, old_value):
    note("nworkers_changed", new_value, old_value)

def on_reload(server):
    note("on_reload", server.pid)

def worker_int(worker):
    note("worker_int", worker.pid)

def on_exit(server):
    note("on_exit", server.pid)
'''


class ConfTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-gconf-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def print_config(self, args, env=None, cwd=None):
        r = run_qilin(["--print-config"] + list(args), env=env, cwd=cwd)
        self.assertEqual(r.returncode, 0, r)
        values = {}
        for line in r.stdout.splitlines():
            name, sep, value = line.partition(" = ")
            if sep:
                values[name.strip()] = value.strip().strip("'")
        return values, r

    def fails(self, text, args=("testapp:app",)):
        path = self.write("bad.conf.py", text)
        r = run_qilin(["-c", path] + list(args))
        self.assertEqual(r.returncode, 1, r)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        self.assertEqual(len(lines), 1, r.stderr)
        return path, lines[0]


class SettingsTest(ConfTest):
    def test_docs_style_config_serves_with_its_settings(self):
        port = free_port()
        access = os.path.join(self.tmp, "access.log")
        conf = self.write("gunicorn.conf.py", DOCS_CONF % {"port": port, "access": access})
        with Server(["-c", conf], app="confapp:app", bind=False, port=port,
                    workers=None, boot_log=False) as srv:
            srv.workers = 2
            srv.wait_ready()
            self.assertEqual(len(srv.wait_workers(2)), 2)
            got = json.loads(srv.get("/conf").body)
            self.assertEqual(got["env"], "from-conf")        # raw_env
            self.assertTrue(got["multithread"])              # gthread, threads = 2
            self.assertTrue(got["multiprocess"])             # workers = 2
            self.assertEqual(len(srv.worker_pids()), 2)
            self.assertNotIn("[INFO]", srv.log_text())       # loglevel
            wait_for(lambda: os.path.exists(access) and '"GET /conf HTTP/1.1" 200' in
                     open(access).read(), 10, what="the access log line")

    def test_documented_example_runs_unchanged(self):
        port = free_port()
        conf = self.write("gunicorn.conf.py", EXAMPLE_CONF % {"port": port})
        with Server(["-c", conf], app="confapp:app", bind=False, port=port,
                    workers=None, boot_log=False) as srv:
            srv.workers = 2
            srv.wait_ready()
            pids = srv.wait_workers(2)
            got = json.loads(srv.get("/conf").body)
            self.assertFalse(got["multithread"])                # worker_class = "sync"
            for pid in pids:                                    # post_fork, %-style args
                srv.wait_log(r"\[%d\] \[INFO\] Worker spawned \(pid: %d\)" % (pid, pid))
            log = srv.log_text()
            self.assertIn("Server is ready. Spawning workers", log)          # when_ready
            self.assertNotIn("Traceback", log)
            # Before the error log opens, and accesslog = "-": standard output.
            wait_for(lambda: '"GET /conf HTTP/1.1" 200 ' in srv.output_text(), 10,
                     what="the access log line on stdout")
            self.assertIn("gunicorn.conf.py:10: setting 'spew' is not supported by qilin;"
                          " ignored", srv.output_text())
            srv.send_signal(signal.SIGQUIT)                     # worker_int in each worker
            for pid in pids:
                srv.wait_log(r"\[%d\] \[INFO\] worker received INT or QUIT signal" % pid)
                srv.wait_log(r"\[%d\] \[INFO\] stacks: [1-9]\d* lines" % pid)

    def test_print_config_and_module_form(self):
        conf = self.write("g.conf.py", "workers = 3\ntimeout = 44\nbind = ['127.0.0.1:9101',"
                          " '127.0.0.1:9102']\npreload_app = True\nproc_name = 'web'\n"
                          "proxy_allow_ips = ['10.0.0.1', '10.0.0.2']\n")
        values, _ = self.print_config(["-c", conf, "testapp:app"])
        self.assertEqual(values["workers"], "3")
        self.assertEqual(values["timeout"], "44")
        self.assertEqual(values["bind"], "['127.0.0.1:9101', '127.0.0.1:9102']")
        self.assertEqual(values["preload_app"], "True")
        self.assertEqual(values["proc_name"], "web")
        self.assertEqual(values["proxy_allow_from"], "10.0.0.1,10.0.0.2")
        self.write("confpkg/__init__.py", "")
        self.write("confpkg/prod.py", "workers = 4\nkeepalive = 9\n")
        values, _ = self.print_config(["-c", "python:confpkg.prod", "testapp:app"], cwd=self.tmp)
        self.assertEqual((values["workers"], values["keepalive"]), ("4", "9"))

    def test_proxy_protocol_true_is_gunicorns_switch(self):
        # gunicorn's boolean: True is auto (a v1 header when one comes, plain
        # HTTP otherwise), False is off.
        conf = self.write("gunicorn.conf.py", "proxy_protocol = True\n")
        values, _ = self.print_config(["-c", conf, "testapp:app"])
        self.assertEqual(values["proxy_protocol"], "auto")
        with Server(["-c", conf], app="echoapp:app", workers=1) as srv:
            with Conn(srv.port) as c:
                c.send(b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n")
                resp = c.request("GET", "/")
                self.assertEqual(resp.status, 200, resp.body[:300])
                self.assertEqual(json.loads(resp.body)["REMOTE_ADDR"], "192.0.2.1")
            with Conn(srv.port) as c:
                resp = c.request("GET", "/")
                self.assertEqual(json.loads(resp.body)["REMOTE_ADDR"], "127.0.0.1")
        conf = self.write("off.conf.py", "proxy_protocol = False\n")
        values, _ = self.print_config(["-c", conf, "testapp:app"])
        self.assertEqual(values["proxy_protocol"], "off")

    def test_default_gunicorn_conf_py_in_working_directory(self):
        self.write("gunicorn.conf.py", "workers = 5\n")
        values, _ = self.print_config(["testapp:app"], cwd=self.tmp)
        self.assertEqual(values["workers"], "5")
        values, _ = self.print_config(["-w", "2", "testapp:app"], cwd=self.tmp)
        self.assertEqual(values["workers"], "2")

    def test_unknown_settings_warn_once_and_other_globals_are_ignored(self):
        conf = self.write("w.conf.py", "import os\nhelper = 17\nworkers = 2\n"
                          "tmp_upload_dir = '/tmp'\n_private = 1\n")
        values, r = self.print_config(["-c", conf, "testapp:app"])
        self.assertEqual(values["workers"], "2")
        self.assertIn("%s:4: setting 'tmp_upload_dir' is not supported by qilin; ignored" % conf,
                      r.stderr)
        self.assertEqual(r.stderr.count("not supported"), 1, r.stderr)

    def test_every_gunicorn_setting_qilin_lacks_is_one_warning(self):
        # gunicorn_settings.txt lists gunicorn 26.1's settings (and hooks).
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "gunicorn_settings.txt")) as f:
            names = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        known, _ = self.print_config(["testapp:app"])
        # qilin's server hooks, gunicorn's spelling of proxy_allow_from, and
        # the two that are an error rather than a warning.
        not_lacking = set(HOOKS) | {"proxy_allow_ips", "ssl_context", "secure_scheme_headers"}
        lacking = [n for n in names if n not in known and n not in not_lacking]
        self.assertGreater(len(lacking), 10)
        conf = self.write("all.conf.py", "".join("%s = 'x'\n" % n for n in lacking))
        _, r = self.print_config(["-c", conf, "testapp:app"])
        silent = [n for n in lacking
                  if "setting '%s' is not supported by qilin; ignored" % n not in r.stderr]
        self.assertEqual(silent, [], "gunicorn settings a gunicorn.conf.py sets without a word")

    def test_post_request_of_two_or_three_parameters(self):
        # gunicorn adapts a post_request that takes fewer arguments.
        out = os.path.join(self.tmp, "post_request.txt")
        for params in ("worker, req", "worker, req, environ"):
            with self.subTest(params=params):
                n = params.count(",") + 1
                conf = self.write("pr%d.conf.py" % n,
                                  "def post_request(%s):\n"
                                  "    with open(%r, 'a') as f:\n"
                                  "        f.write('%d %%s\\n' %% req.path)\n" % (params, out, n))
                with Server(["-c", conf]) as srv:
                    self.assertEqual(srv.get("/say?w=x").body, b"x")

                    def noted():
                        if not os.path.exists(out):
                            return False
                        with open(out) as f:
                            return "%d /say\n" % n in f.read()
                    wait_for(noted, 10, what="post_request of %d parameters" % n)
                    self.assertNotIn("TypeError", srv.log_text())

    def test_syntax_error_is_one_line(self):
        path, line = self.fails("workers = 2\nif True\n    pass\n")
        self.assertEqual(line, "Error: %s:2: SyntaxError: expected ':'" % path)

    def test_exception_is_one_line(self):
        path, line = self.fails("import os\n\nworkers = int(os.environ['NO_SUCH_VAR_XYZ'])\n")
        self.assertEqual(line, "Error: %s:3: KeyError: 'NO_SUCH_VAR_XYZ'" % path)

    def test_bad_values_are_one_line(self):
        path, line = self.fails("workers = 'many'\n")
        self.assertEqual(line, "Error: %s:1: setting 'workers': invalid integer 'many' "
                         "(expected a number >= 1)" % path)
        path, line = self.fails("timeout = 3\n\nworkers = [2]\n")
        self.assertEqual(line, "Error: %s:3: setting 'workers' must be an int, got list" % path)
        path, line = self.fails("server_header = True\n")
        self.assertEqual(line, "Error: %s:1: setting 'server_header' must be a string, got a"
                         " boolean" % path)
        path, line = self.fails("proxy_protocol = 'v3'\n")
        self.assertEqual(line, "Error: %s:1: setting 'proxy_protocol': invalid value 'v3'"
                         " (expected one of: off, v1, v2, auto; or true, false)" % path)
        path, line = self.fails("preload_app = 'maybe'\n")
        self.assertIn("%s:1: setting 'preload_app'" % path, line)

    def test_ssl_context_and_scheme_settings_stop_the_start(self):
        # Ignoring them would run TLS without what the hook configures, or
        # trust other scheme headers than the file says: one error instead.
        path, line = self.fails("def ssl_context(conf, default):\n    return default()\n")
        self.assertTrue(line.startswith("Error: %s:" % path), line)
        self.assertIn(": setting 'ssl_context': qilin builds its TLS context in C", line)
        path, line = self.fails("secure_scheme_headers = {'X-FORWARDED-PROTO': 'https'}\n")
        self.assertIn("%s:1: setting 'secure_scheme_headers': qilin trusts gunicorn's default"
                      " set" % path, line)
        # None is gunicorn's "unset", and the default set is what qilin trusts.
        conf = self.write("ok.conf.py", "certfile = None\nworkers = 3\nsecure_scheme_headers = "
                          "{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https',"
                          " 'X-FORWARDED-SSL': 'on'}\n")
        values, r = self.print_config(["-c", conf, "testapp:app"])
        self.assertEqual(values["workers"], "3")
        self.assertNotIn("secure_scheme_headers", r.stderr)

    def test_missing_file(self):
        r = run_qilin(["-c", os.path.join(self.tmp, "none.py"), "testapp:app"])
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr.strip(),
                         "Error: config file '%s' not found" % os.path.join(self.tmp, "none.py"))


class CmdArgsTest(ConfTest):
    def test_gunicorn_cmd_args_between_file_and_command_line(self):
        conf = self.write("p.conf.py", "workers = 2\ntimeout = 11\nkeepalive = 9\n")
        env = {"GUNICORN_CMD_ARGS": "--timeout 12 --keep-alive 8"}
        values, _ = self.print_config(["-c", conf, "testapp:app"], env=env)
        self.assertEqual((values["workers"], values["timeout"], values["keepalive"]),
                         ("2", "12", "8"))
        values, _ = self.print_config(["-c", conf, "--keep-alive", "3", "testapp:app"], env=env)
        self.assertEqual((values["timeout"], values["keepalive"]), ("12", "3"))

    def test_qilin_cmd_args_after_gunicorn_cmd_args(self):
        env = {"GUNICORN_CMD_ARGS": "-w 3 --timeout 12", "QILIN_CMD_ARGS": "-w 4"}
        values, _ = self.print_config(["testapp:app"], env=env)
        self.assertEqual((values["workers"], values["timeout"]), ("4", "12"))

    def test_gunicorn_cmd_args_names_the_config_file(self):
        conf = self.write("e.conf.py", "workers = 3\n")
        values, _ = self.print_config(["testapp:app"], env={"GUNICORN_CMD_ARGS": "-c " + conf})
        self.assertEqual(values["workers"], "3")

    def test_gunicorn_cmd_args_errors_name_the_variable(self):
        r = run_qilin(["testapp:app"], env={"GUNICORN_CMD_ARGS": "--wokers 2"})
        self.assertEqual(r.returncode, 2, r)  # a malformed command line, as argparse
        self.assertTrue(r.stderr.startswith("Error: $GUNICORN_CMD_ARGS: "), r.stderr)


class HooksTest(ConfTest):
    def setUp(self):
        super().setUp()
        self.out = os.path.join(self.tmp, "notes")
        self.conf = self.write("hooks.conf.py", HOOKS_CONF % {"out": self.out})

    def notes(self):
        return HookNotes(self.out).all()

    def wait_note(self, *want):
        return HookNotes(self.out).wait(*want)

    def test_python_hooks(self):
        with Server(["-c", self.conf], workers=None) as srv:
            srv.workers = 2
            workers = srv.wait_workers(2)
            master = str(srv.pid)
            [start] = self.wait_note("on_starting", master)
            self.assertEqual(start[2:], ["2", "127.0.0.1:%d" % srv.port])
            self.wait_note("when_ready", master)
            srv.wait_log(r"Hook when_ready failed: %s:\d+: ValueError: not ready today"
                         % self.conf)
            # qilin's own frame names its Python file in the source tree,
            # and the line's text comes from the module's loader.
            srv.wait_log(r'File "plugins/python-wsgi/qilin/conf\.py", line \d+, in call\n'
                         r'\s+fn\(\*a\)\n')
            self.assertEqual(sorted(n[2] for n in self.notes() if n[0] == "pre_fork"), ["1", "2"])
            for pid in workers:
                [pf] = self.wait_note("post_fork", master, pid)
                self.assertEqual(pf[3], master)    # worker.ppid
                self.assertEqual(pf[5], str(pid))  # called in the worker
                self.wait_note("post_worker_init", pid)
            srv.wait_log(r"post_worker_init says hello")

            res = srv.get("/say?w=hi", headers=[("X-Mark", "m1")])
            self.assertEqual(res.body, b"hi")
            [pre] = self.wait_note("pre_request")
            self.assertEqual(pre[2:], ["GET", "/say", "w=hi", "m1"])
            self.wait_note("post_request", pre[1], "/say?w=hi", "/say", 200, "200_OK")

            srv.send_signal(signal.SIGTTIN)
            self.wait_note("nworkers_changed", 3, 2)
            with open(self.conf, "a") as f:
                f.write("workers = 1\n")
            srv.send_signal(signal.SIGHUP)
            self.wait_note("on_reload", master)
            for pid in workers:
                self.wait_note("worker_exit", pid)
                self.wait_note("child_exit", pid, 0)
            self.wait_note("nworkers_changed", 1, 3)  # HUP re-read the file
            self.assertTrue(srv.running())
            self.assertEqual(srv.stop(signal.SIGQUIT), 0)
            self.wait_note("on_exit", master)
            self.assertTrue([n for n in self.notes() if n[0] == "worker_int"])


if __name__ == "__main__":
    unittest.main()
