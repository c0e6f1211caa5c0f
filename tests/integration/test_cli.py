"""The command line: --version, --help, errors a user makes (unknown flag,
missing app, port in use, broken config), the Lua config file and its
precedence, --check-config, --print-config, $QILIN_CMD_ARGS, the access log,
and the examples/ directory."""
import os
import re
import shutil
import socket
import tempfile
import unittest

from qilintest import APPS, EXAMPLES, Server, free_port, run_qilin, wait_for

ACCESS_TIME = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"


def cpu_counts():
    """What qilin.cpu_count() may fairly return: usable or online CPUs."""
    return {str(len(os.sched_getaffinity(0))), str(os.cpu_count())}


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-cli-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path


class InfoTest(unittest.TestCase):
    def test_version(self):
        r = run_qilin(["--version"])
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout.strip(), r"^qilin \(version \d+\.\d+\.\d+[^)]*\)$")

    def test_short_version(self):
        r = run_qilin(["-v"])
        self.assertEqual(r.returncode, 0, r)
        self.assertRegex(r.stdout, r"qilin \(version \d+\.\d+\.\d+")

    def test_help_lists_core_and_python_options(self):
        r = run_qilin(["--help"])
        self.assertEqual(r.returncode, 0, r)
        for flag in ("--bind", "--workers", "--worker-class", "--timeout", "--access-logfile",
                     "--pythonpath"):
            self.assertIn(flag, r.stdout)

    def test_help_with_explicit_python_plugin(self):
        r = run_qilin(["--plugin", "python3", "--help"])
        self.assertEqual(r.returncode, 0, r)
        self.assertIn("--pythonpath", r.stdout)


class ManPageTest(unittest.TestCase):
    """qilin.1 covers every option, signal and hook."""

    @classmethod
    def setUpClass(cls):
        path = os.path.normpath(os.path.join(APPS, "..", "..", "docs", "qilin.1"))
        with open(path) as f:
            # roff escapes a literal minus as \-.
            cls.man = f.read().replace("\\-", "-")

    def test_every_option_in_help_is_in_the_man_page(self):
        r = run_qilin(["--help"])
        self.assertEqual(r.returncode, 0, r)
        flags = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]+", r.stdout)) - {"--help"}
        self.assertGreater(len(flags), 40, r.stdout)
        missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![a-z0-9-])",
                                                              self.man))
        self.assertEqual(missing, [], "options missing from docs/qilin.1")

    def test_every_signal_and_hook_is_in_the_man_page(self):
        names = ["HUP", "TTIN", "TTOU", "USR1", "USR2", "WINCH", "QUIT", "INT", "TERM",
                 "on_starting", "on_reload", "when_ready", "pre_fork", "post_fork",
                 "post_worker_init", "worker_int", "worker_abort", "pre_exec", "pre_request",
                 "post_request", "child_exit", "worker_exit", "nworkers_changed", "on_exit"]
        missing = [n for n in names if not re.search(r"(?<![a-z_])%s(?![a-z_])" % n, self.man)]
        self.assertEqual(missing, [], "signals or hooks missing from docs/qilin.1")


class GunicornDocTest(unittest.TestCase):
    """docs/gunicorn.md has one row per gunicorn setting, each with a status,
    and the counts it states at the top are those of its rows. The names
    are in gunicorn_settings.txt, generated from gunicorn's config.py."""

    STATUS = re.compile(r"(same|differs|ignored|no|planned)\b")

    @classmethod
    def setUpClass(cls):
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "gunicorn_settings.txt")) as f:
            cls.names = [line.strip() for line in f
                         if line.strip() and not line.startswith("#")]
        with open(os.path.join(here, "..", "..", "docs", "gunicorn.md")) as f:
            cls.doc = f.read()
        # A row: | `name` (version) | flag | status | notes |
        cls.rows = []
        for line in cls.doc.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            m = re.match(r"`([a-z0-9_]+)`( \([^)]*\))?$", cells[0]) if line.startswith("|") else None
            if m:
                cls.rows.append((m.group(1), cells))

    def test_the_names_list_is_well_formed(self):
        self.assertGreater(len(self.names), 100)
        self.assertEqual([n for n in self.names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)], [])
        self.assertEqual(len(set(self.names)), len(self.names))

    def test_every_gunicorn_setting_has_a_row(self):
        have = {name for name, _ in self.rows}
        self.assertEqual([n for n in self.names if n not in have], [],
                         "gunicorn settings without a row in docs/gunicorn.md")

    def test_every_row_is_one_gunicorn_setting(self):
        seen = [name for name, _ in self.rows]
        self.assertEqual([n for n in seen if n not in self.names], [],
                         "rows in docs/gunicorn.md that are not gunicorn settings")
        self.assertEqual(sorted({n for n in seen if seen.count(n) > 1}), [],
                         "settings with two rows in docs/gunicorn.md")

    def test_every_row_has_a_status(self):
        bad = []
        for name, cells in self.rows:
            status = cells[2] if len(cells) == 4 else ""
            m = self.STATUS.match(status)
            if m is None:
                bad.append((name, "no status: %r" % status))
            elif m.group(1) == "planned" and not re.match(r"planned \(.+\)$", status):
                bad.append((name, "planned without the work that adds it: %r" % status))
            elif m.group(1) in ("differs", "ignored", "no") and not cells[3]:
                bad.append((name, "%s without a note saying why" % m.group(1)))
        self.assertEqual(bad, [])

    def test_the_counts_at_the_top_match_the_rows(self):
        m = re.search(r"^Of the (\d+): ([^.]*)\.", self.doc, re.M)
        self.assertIsNotNone(m, "no 'Of the N: ...' line in docs/gunicorn.md")
        self.assertEqual(int(m.group(1)), len(self.names))
        stated = {status: int(n) for n, status in
                  re.findall(r"(\d+) (same|differs|ignored|no|planned)\b", m.group(2))}
        counted = {}
        for _, cells in self.rows:
            status = self.STATUS.match(cells[2] if len(cells) == 4 else "")
            if status is not None:
                counted[status.group(1)] = counted.get(status.group(1), 0) + 1
        self.assertEqual(stated, counted)


class UserErrorTest(TempDirTest):
    def test_unknown_flag(self):
        r = run_qilin(["--no-such-flag", "testapp:app"])
        self.assertEqual(r.returncode, 2, r)
        out = lines(r.output)
        self.assertEqual(len(out), 1, r)
        self.assertIn("--no-such-flag", out[0])

    def test_tls_files_are_checked_before_the_start(self):
        # Plain HTTP where HTTPS was asked for would be unsafe: a certificate
        # that cannot be read stops the start, from the command line,
        # $GUNICORN_CMD_ARGS and a Lua file alike, in one line.
        conf = os.path.join(self.tmp, "tls.lua")
        with open(conf, "w") as f:
            f.write("workers = 2\ncertfile = '/nonexistent/site.pem'\n")
        for args, env, what in [
                (["--certfile", "/nonexistent/c.pem"], None,
                 "--certfile '/nonexistent/c.pem': No such file or directory"),
                ([], {"GUNICORN_CMD_ARGS": "--keyfile k.pem"},
                 "--keyfile 'k.pem' needs --certfile"),
                (["-c", conf], None,
                 "--certfile '/nonexistent/site.pem': No such file or directory")]:
            if os.environ.get("QILIN_TLS") == "no":
                what = "this qilin was built without TLS"
            with self.subTest(what):
                r = run_qilin(args + ["testapp:app"], env=env)
                self.assertEqual(r.returncode, 1, r)
                out = lines(r.output)
                self.assertEqual(len(out), 1, r)
                self.assertIn(what, out[0])

    def test_exit_codes_as_gunicorn(self):
        # 2: the command line is malformed (argparse's status); 1: a value
        # that is well-formed but wrong, or anything else that stops the start.
        for args, code in [(["--workers"], 2), (["--workers", "many", "testapp:app"], 2),
                           (["--preload=perhaps", "testapp:app"], 2), ([], 2),
                           (["--workers", "0", "testapp:app"], 1),
                           (["-b", "nowhere:port", "testapp:app"], 1)]:
            with self.subTest(args=args):
                r = run_qilin(args)
                self.assertEqual(r.returncode, code, r)
                self.assertEqual(len(lines(r.output)), 1, r)

    def test_bad_option_value(self):
        r = run_qilin(["--workers", "many", "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        out = lines(r.output)
        self.assertEqual(len(out), 1, r)
        self.assertIn("workers", out[0])
        self.assertIn("many", out[0])

    def assert_app_load_failure(self, app, name):
        with Server(app=app, wait=False) as srv:
            rc = srv.wait()
            log = srv.log_text()
            self.assertEqual(rc, 4, srv.diagnostics())
            self.assertIn("App failed to load", log)
            self.assertIn(name, log + srv.output_text())
            # One attempt, not a respawn loop.
            self.assertEqual(len(srv.booted_pids()), 1, log)

    def test_missing_app_module(self):
        self.assert_app_load_failure("no_such_module_xyz:app", "no_such_module_xyz")

    def test_missing_app_attribute(self):
        self.assert_app_load_failure("testapp:no_such_callable", "no_such_callable")

    def test_port_in_use(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with Server(port=port, wait=False) as srv:
            rc = srv.wait(timeout=30)
            self.assertNotEqual(rc, 0)
            text = srv.log_text() + srv.output_text()
            self.assertRegex(text, r"(?i)in use.*%d|%d.*in use" % (port, port))
            self.assertEqual(srv.booted_pids(), [])

    def test_missing_config_file(self):
        missing = os.path.join(self.tmp, "absent.lua")
        r = run_qilin(["-c", missing, "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(missing, r.output)

    def test_lua_syntax_error_names_file_and_line(self):
        path = self.write("broken.lua", "workers = 2\n\nbind = = 'x'\n")
        r = run_qilin(["-c", path, "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("broken.lua:3", r.output)
        self.assertEqual(len([x for x in lines(r.output) if "broken.lua" in x]), 1, r)

    def test_lua_runtime_error_names_file_and_line(self):
        path = self.write("runtime.lua", "workers = 2\nlocal t = nil\nworkers = t.x\n")
        r = run_qilin(["-c", path, "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("runtime.lua:3", r.output)

    def test_lua_unknown_setting(self):
        path = self.write("typo.lua", "workerz = 2\n")
        r = run_qilin(["-c", path, "--check-config", "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("workerz", r.output)

    def test_lua_wrong_type(self):
        path = self.write("type.lua", "workers = 'lots'\n")
        r = run_qilin(["-c", path, "--check-config", "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("type.lua:1", r.output)
        self.assertIn("workers", r.output)


def print_config(args, env=None):
    r = run_qilin(["--print-config"] + list(args), env=env)
    if r.returncode != 0:
        raise AssertionError("--print-config failed: %r" % r)
    values = {}
    for line in r.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[name.strip()] = value
    return values


class ConfigTest(TempDirTest):
    def test_print_config_shows_effective_values(self):
        values = print_config(["-w", "3", "-b", "127.0.0.1:9123", "--keep-alive", "7",
                               "testapp:app"])
        self.assertEqual(values["workers"], "3")
        self.assertEqual(values["keepalive"], "7")
        self.assertIn("127.0.0.1:9123", values["bind"])
        self.assertEqual(values["timeout"], "30")
        self.assertEqual(values["graceful_timeout"], "30")
        self.assertEqual(values["limit_request_line"], "4094")
        names = [n for n in values]
        self.assertEqual(names, sorted(names))

    def test_config_file_then_env_then_cli(self):
        path = self.write("prec.lua", "workers = 2\ntimeout = 11\nkeepalive = 9\n")
        values = print_config(["-c", path, "testapp:app"])
        self.assertEqual((values["workers"], values["timeout"], values["keepalive"]),
                         ("2", "11", "9"))
        env = {"QILIN_CMD_ARGS": "--timeout 12 --keep-alive 8"}
        values = print_config(["-c", path, "testapp:app"], env=env)
        self.assertEqual((values["workers"], values["timeout"], values["keepalive"]),
                         ("2", "12", "8"))
        values = print_config(["-c", path, "--keep-alive", "3", "testapp:app"], env=env)
        self.assertEqual((values["workers"], values["timeout"], values["keepalive"]),
                         ("2", "12", "3"))

    def test_cmd_args_quoting(self):
        env = {"QILIN_CMD_ARGS": "--access-logformat '%(h)s \"%(r)s\"' -w 2"}
        values = print_config(["testapp:app"], env=env)
        self.assertEqual(values["workers"], "2")
        self.assertIn('%(h)s "%(r)s"', values["access_log_format"])

    def test_config_file_starts_server(self):
        port = free_port()
        path = self.write("serve.lua", "bind = '127.0.0.1:%d'\nworkers = 2\n" % port)
        with Server(["-c", path], bind=False, port=port, workers=None) as srv:
            srv.workers = 2
            srv.wait_ready()
            self.assertEqual(len(srv.wait_workers(2)), 2)
            self.assertEqual(srv.get("/hello").body, b"hello")

    def test_cli_overrides_config_file(self):
        file_port, cli_port = free_port(), free_port()
        path = self.write("over.lua", "bind = { '127.0.0.1:%d' }\nworkers = 3\n" % file_port)
        with Server(["-c", path], port=cli_port, workers=1) as srv:
            self.assertEqual(len(srv.wait_workers(1)), 1)
            self.assertEqual(srv.get("/hello").body, b"hello")
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", file_port), timeout=2).close()

    def test_cmd_args_env_starts_server(self):
        # GUNICORN_CMD_ARGS, gunicorn's variable, works as QILIN_CMD_ARGS does.
        for var in ("QILIN_CMD_ARGS", "GUNICORN_CMD_ARGS"):
            port = free_port()
            env = {var: "-b 127.0.0.1:%d -w 2" % port}
            with Server(bind=False, port=port, workers=None, env=env, wait=False) as srv:
                srv.workers = 2
                srv.wait_ready()
                self.assertEqual(len(srv.wait_workers(2)), 2)
                self.assertEqual(srv.get("/say?w=env").body, b"env")

    def test_lua_helpers(self):
        path = self.write("cpu.lua", "workers = qilin.cpu_count()\n")
        values = print_config(["-c", path, "testapp:app"])
        self.assertIn(values["workers"], cpu_counts())

    def test_check_config_valid(self):
        path = self.write("ok.lua", "workers = 2\n")
        port = free_port()
        r = run_qilin(["-c", path, "--check-config", "-b", "127.0.0.1:%d" % port,
                       "--chdir", APPS, "testapp:app"])
        self.assertEqual(r.returncode, 0, r)
        self.assertNotIn("Booting worker", r.output)

    def test_check_config_invalid_value(self):
        r = run_qilin(["--check-config", "--timeout", "-5", "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("timeout", r.output)


class ProcessOptionTest(TempDirTest):
    def test_pidfile_written_and_removed(self):
        pidfile = os.path.join(self.tmp, "qilin.pid")
        with Server(["-p", pidfile]) as srv:
            with open(pidfile) as f:
                self.assertEqual(f.read().strip(), str(srv.pid))
            self.assertEqual(srv.stop(), 0)
        self.assertFalse(os.path.exists(pidfile))

    def test_log_level_warning_hides_info(self):
        with Server(["--log-level", "warning"], boot_log=False) as srv:
            with srv.connect() as c:
                c.send(b"GARBAGE\r\n\r\n")
                self.assertEqual(c.read_response().status, 400)
            srv.wait_log(r"\[WARNING\] Invalid request from ip=127\.0\.0\.1")
            self.assertNotIn("[INFO]", srv.log_text())

    def test_debug_log_level_says_what_gunicorn_says(self):
        # gunicorn's debug lines: the configuration at startup, "Arbiter
        # booted", each request's method and path, and the connection's end.
        with Server(["--log-level", "debug", "-w", "1"]) as srv:
            self.assertEqual(srv.get("/say?w=dbg").body, b"dbg")
            srv.wait_log(r"(?m)\[DEBUG\] GET /say$")
            srv.wait_log(r"(?m)\[DEBUG\] Closing connection\.$")
            log = srv.log_text()
        self.assertRegex(log, r"\[DEBUG\] Current configuration:\n(  \w+: .*\n)+")
        self.assertIn("\n  workers: 1\n", log)
        self.assertIn("\n  loglevel: debug\n", log)
        self.assertIn("[DEBUG] Arbiter booted", log)

    def test_odd_log_levels_are_accepted_as_gunicorn_does(self):
        # gunicorn takes any name, an unknown one as info; "warn" is warning.
        for level, shown, hidden in [("warn", "[WARNING] Invalid request", "[INFO] Booting"),
                                     ("chatty", "[INFO] Booting", None)]:
            with self.subTest(level), Server(["--log-level", level], boot_log=False) as srv:
                with srv.connect() as c:
                    c.send(b"GARBAGE\r\n\r\n")
                    self.assertEqual(c.read_response().status, 400)
                srv.wait_log(re.escape(shown))
                srv.wait_log(r"\[WARNING\] loglevel '%s' is none of debug, info, warning, error,"
                             r" critical; using " % level)
                if hidden:
                    self.assertNotIn(hidden, srv.log_text())

    def test_worker_class_names(self):
        # gunicorn's spellings are aliases the worker plugins declare.
        for name, args, want in (("sync", [], "sync"),
                                 ("gunicorn.workers.sync.SyncWorker", [], "sync"),
                                 ("egg:gunicorn#gthread", [], "gthread"),
                                 ("gunicorn.workers.gthread.ThreadWorker", [], "gthread"),
                                 # as gunicorn: --threads above 1 makes sync gthread
                                 ("gunicorn.workers.sync.SyncWorker", ["--threads", "2"],
                                  "gthread")):
            with Server(["-k", name] + args) as srv:
                self.assertEqual(srv.get("/hello").body, b"hello")
                self.assertIn("Using worker: " + want, srv.log_text())

    def test_unknown_worker_class(self):
        r = run_qilin(["-k", "nosuchworker", "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(lines(r.output)), 1, r)
        self.assertIn("nosuchworker", r.output)

    def test_unknown_plugin(self):
        r = run_qilin(["--plugin", "nosuchplugin", "testapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(lines(r.output)), 1, r)
        self.assertIn("nosuchplugin", r.output)

    def test_web_concurrency(self):
        values = print_config(["testapp:app"], env={"WEB_CONCURRENCY": "3"})
        self.assertEqual(values["workers"], "3")
        values = print_config(["-w", "2", "testapp:app"], env={"WEB_CONCURRENCY": "3"})
        self.assertEqual(values["workers"], "2")

    def test_two_apps_is_an_error(self):
        r = run_qilin(["testapp:app", "flaskapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertEqual(len(lines(r.output)), 1, r)


class AccessLogTest(TempDirTest):
    def test_default_format(self):
        log = os.path.join(self.tmp, "access.log")
        with Server(["--access-logfile", log]) as srv:
            resp = srv.get("/hello?q", headers=[("User-Agent", "agent")])
            self.assertEqual(resp.status, 200)
            text = wait_for(lambda: open(log).read() if os.path.exists(log) else "", 10,
                            what="an access log line")
        rx = (r'^127\.0\.0\.1 - - %s "GET /hello\?q HTTP/1\.1" 200 5 "-" "agent"$'
              % ACCESS_TIME)
        self.assertEqual(len(lines(text)), 1, text)
        self.assertRegex(lines(text)[0], rx)

    def test_status_and_referer(self):
        log = os.path.join(self.tmp, "access.log")
        with Server(["--access-logfile", log]) as srv:
            srv.get("/missing", headers=[("Referer", "http://ref/"), ("User-Agent", "a b")])
            text = wait_for(lambda: open(log).read() if os.path.exists(log) else "", 10,
                            what="an access log line")
        self.assertRegex(text, r'"GET /missing HTTP/1\.1" 404 9 "http://ref/" "a b"')

    def test_custom_format(self):
        log = os.path.join(self.tmp, "access.log")
        fmt = '%(m)s|%(U)s|%(q)s|%(s)s|%(H)s|%(B)s|%({x-test}i)s|%({content-type}o)s|%(p)s'
        with Server(["--access-logfile", log, "--access-logformat", fmt]) as srv:
            srv.request("POST", "/echo?a=1", body=b"xyz", headers=[("X-Test", "tv")])
            text = wait_for(lambda: open(log).read() if os.path.exists(log) else "", 10,
                            what="an access log line")
            worker = srv.wait_workers(1)[0]
        self.assertEqual(lines(text), ["POST|/echo|a=1|200|HTTP/1.1|3|tv|text/plain|<%d>" % worker])

    def test_environ_atoms_and_gunicorns_values(self):
        # As gunicorn: {NAME}e reads the request's WSGI environ (never the
        # server's environment: PATH is the server's, not a request's), %(b)s
        # is 0 for an empty body, %(U)s is PATH_INFO, decoded.
        log = os.path.join(self.tmp, "access.log")
        fmt = ('%({REQUEST_METHOD}e)s|%({PATH_INFO}e)s|%({HTTP_X_TEST}e)s|%({PATH}e)s|'
               '%({wsgi.url_scheme}e)s|%(b)s|%(U)s')
        with Server(["--access-logfile", log, "--access-logformat", fmt]) as srv:
            srv.get("/s%61y?w=", headers=[("X-Test", "tv")])
            text = wait_for(lambda: open(log).read() if os.path.exists(log) else "", 10,
                            what="an access log line")
        self.assertEqual(lines(text), ["GET|/say|tv|-|http|0|/say"])

    def test_access_log_to_stdout(self):
        with Server(["--access-logfile", "-"]) as srv:
            srv.get("/say?w=stdout")
            wait_for(lambda: "/say?w=stdout" in srv.output_text(), 10,
                     what="an access line on stdout")
            self.assertNotIn("/say?w=stdout", srv.log_text())

    def test_no_access_log_by_default(self):
        with Server() as srv:
            srv.get("/say?w=quiet")
            srv.get("/hello")
            self.assertNotIn("/say?w=quiet", srv.log_text() + srv.output_text())


class ExampleTest(unittest.TestCase):
    def test_example_config_is_valid(self):
        conf = os.path.join(EXAMPLES, "qilin.conf.lua")
        r = run_qilin(["-c", conf, "--check-config", "--chdir", EXAMPLES, "hello:app"])
        self.assertEqual(r.returncode, 0, r)

    def test_example_config_values(self):
        conf = os.path.join(EXAMPLES, "qilin.conf.lua")
        values = print_config(["-c", conf, "--chdir", EXAMPLES, "hello:app"])
        self.assertEqual(values["worker_class"], "sync")
        self.assertEqual(values["keepalive"], "5")
        self.assertIn(values["workers"], {str(2 * int(n)) for n in cpu_counts()})

    def test_hello_example_serves(self):
        with Server(app="hello:app", chdir=EXAMPLES) as srv:
            resp = srv.get("/")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"Hello, World!\n")
        self.assertTrue(re.match(r"text/plain", resp.header("Content-Type")))


if __name__ == "__main__":
    unittest.main()
