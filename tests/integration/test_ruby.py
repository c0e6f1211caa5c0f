"""The ruby app plugin (--plugin ruby, alias rack): Rack apps on embedded
Ruby, served on -k sync. The test app (tests/apps/rack/config.ru) runs
under Rack::Lint, so every env and every answer here is also checked
against the Rack SPEC by Rack itself: a Lint failure is a 500 and a log
line, which these tests would see."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest
from concurrent.futures import ThreadPoolExecutor

from qilintest import (LUA_NOTE, APPS, Conn, HookNotes, Server, build_request, per_worker_class,
                       run_qilin, wait_for, worker_built, worker_class)

RACK = os.path.join(APPS, "rack")
CONFIG_RU = os.path.join(RACK, "config.ru")


def ruby_can_load_rack():
    ruby = shutil.which("ruby")
    return ruby is not None and subprocess.run(
        [ruby, "-e", "require 'rack'"], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0


HAVE_RUBY = worker_built("ruby") and ruby_can_load_rack()
WHY = "the ruby plugin is not built, or ruby-rack is not installed"


# The worker classes the ruby plugin serves on.
RUBY_CLASSES = ("sync", "gthread")


def rack_server(args=(), app="config.ru", **kw):
    """A server of APP (in tests/apps/rack) on the class under test, or on
    sync when that class is one the ruby plugin refuses."""
    kw.setdefault("chdir", RACK)
    args = ["--plugin", "ruby"] + list(args)
    if worker_class() not in RUBY_CLASSES and "-k" not in args:
        args += ["-k", "sync"]
    return Server(args, app=app, **kw)


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = rack_server(workers=2)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def tearDown(self):
        # Rack::Lint or the plugin complaining shows as an ERROR line.
        self.assertNotIn("LintError", self.srv.log_text())

    def test_hello(self):
        r = self.srv.get("/")
        self.assertEqual((r.status, r.body), (200, b"Hello, World!"))
        self.assertEqual(r.header("Content-Type"), "text/plain")

    def test_array_body_gets_content_length(self):
        """An Array of Strings is the whole body: it goes out with its length
        rather than chunked (Rack::Lint wraps bodies, so a rackup without it)."""
        with Server(["--plugin", "ruby"], app="bare.ru", chdir=RACK) as srv:
            r = srv.get("/")
            self.assertEqual((r.status, r.body), (200, b"Hello, World!"))
            self.assertEqual(r.header("Content-Length"), "13")
            self.assertIsNone(r.header("Transfer-Encoding"))
            # What the server refuses in an answer is a 500 and one line naming it.
            self.assertEqual(srv.get("/badheader").status, 500)
            srv.wait_log(r"invalid Rack response: invalid header name 'Bad Name'")
            self.assertEqual(srv.get("/badstatus").status, 500)
            srv.wait_log(r"invalid Rack response status 42")
            self.assertEqual(srv.get("/").status, 200)

    def test_env(self):
        r = self.srv.get("/env?x=1&y=%20", headers=[("X-Foo", "bar"), ("X-Foo", "baz"),
                                                    ("X_Spoofed", "1"), ("Host", "example.org")])
        env = dict(line.split("=", 1) for line in r.body.decode().split("\n"))
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["PATH_INFO"], "/env")
        self.assertEqual(env["QUERY_STRING"], "x=1&y=%20")
        self.assertEqual(env["REQUEST_URI"], "/env?x=1&y=%20")
        self.assertEqual(env["SCRIPT_NAME"], "")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["SERVER_NAME"], "example.org")
        self.assertEqual(env["SERVER_PORT"], "80")
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["HTTP_X_FOO"], "bar,baz")
        self.assertNotIn("HTTP_X_SPOOFED", env)
        self.assertEqual(env["rack.url_scheme"], "http")
        self.assertEqual(env["rack.version"], "1.3")
        self.assertEqual(env["rack.multiprocess"], "true")
        self.assertEqual(env["rack.multithread"],
                         "true" if worker_class() == "gthread" else "false")

    def test_host_with_port(self):
        r = self.srv.get("/env", headers=[("Host", "[::1]:8443")])
        env = dict(line.split("=", 1) for line in r.body.decode().split("\n"))
        self.assertEqual((env["SERVER_NAME"], env["SERVER_PORT"]), ("[::1]", "8443"))

    def test_post_echo(self):
        body = os.urandom(3 * 1024 * 1024)
        r = self.srv.request("POST", "/echo", body=body,
                             headers=[("Content-Type", "application/octet-stream")])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("X-Length"), str(len(body)))
        self.assertTrue(r.body == body, "echoed body differs")

    def test_chunked_upload_and_rewind(self):
        with self.srv.connect() as c:
            c.send(b"POST /lines HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\na\nb\n\r\n3\r\nc\nd\r\n0\r\n\r\n")
            r = c.read_response()
        # gets saw four lines ("a", "b", "c", "d"); after rewind, read gives all 7 bytes again.
        self.assertEqual((r.status, r.body), (200, b"4 7"))

    def test_streaming_body(self):
        r = self.srv.get("/stream?n=40")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(len(r.body), 40 * 1024)
        self.assertEqual(r.body[:3], b"000")

    def test_to_path_body_is_sent_whole(self):
        r = self.srv.get("/file")
        with open(CONFIG_RU, "rb") as f:
            self.assertEqual(r.body, f.read())

    def test_head_has_no_body(self):
        with self.srv.connect() as c:
            c.send(build_request("HEAD", "/"))
            r = c.read_response(method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")

    def test_two_set_cookie_headers(self):
        with self.srv.connect() as c:
            c.send(build_request("GET", "/cookies"))
            r = c.read_response()
        self.assertEqual(r.header_all("Set-Cookie"), ["a=1", "b=2"])

    def test_many_headers(self):
        with self.srv.connect() as c:
            c.send(build_request("GET", "/many-headers"))
            r = c.read_response()
        self.assertEqual(r.body, b"forty")
        self.assertEqual([r.header("X-H-%d" % i) for i in range(40)],
                         [str(i) for i in range(40)])

    def test_exception_is_500_with_backtrace_and_worker_survives(self):
        workers = self.srv.worker_pids()
        r = self.srv.get("/raise")
        self.assertEqual(r.status, 500)
        self.srv.wait_log(r"Error handling request /raise\nRuntimeError: boom before the answer"
                          r"\n  .*config\.ru:\d+:in `call'")
        self.assertEqual(self.srv.get("/").status, 200)
        self.assertEqual(self.srv.worker_pids(), workers)

    def test_exception_inside_each_closes(self):
        with self.srv.connect() as c:
            c.send(build_request("GET", "/raise-late"))
            data = c.read_to_eof()
        self.assertIn(b"partial", data)
        self.assertFalse(data.endswith(b"0\r\n\r\n"), "a broken body must not end cleanly")
        self.srv.wait_log(r"RuntimeError: boom inside each")

    def test_rack_errors_go_to_the_error_log(self):
        self.assertEqual(self.srv.get("/errors").body, b"logged")
        self.srv.wait_log(r"\[ERROR\] first line from the app")
        self.srv.wait_log(r"\[ERROR\] second line")

    def test_keepalive_many_requests(self):
        with self.srv.connect() as c:
            for _ in range(50):
                c.send(build_request("GET", "/"))
                self.assertEqual(c.read_response().body, b"Hello, World!")

    def test_malformed_request_is_400(self):
        with self.srv.connect() as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.status, 400)
        self.assertEqual(self.srv.get("/").status, 200)


def ruby_can_load(lib):
    return HAVE_RUBY and subprocess.run(
        [shutil.which("ruby"), "-e", "require '%s'" % lib], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL).returncode == 0


class _FrameworkTest:
    """Mixed into a TestCase: a framework's app (APP in tests/apps/rack) under
    Rack::Lint: routes, params, a form POST, a 20 MiB multipart upload, a
    streamed body, send_file, HEAD and a 304. HELLO is what / answers."""
    app = None
    hello = None

    @classmethod
    def setUpClass(cls):
        cls.srv = rack_server(app=cls.app)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def tearDown(self):
        self.assertNotIn("Error handling request", self.srv.log_text())

    def test_routes_and_params(self):
        self.assertEqual(self.srv.get("/").body, self.hello)
        self.assertEqual(self.srv.get("/hello/qilin").body, b"Hello, qilin!")
        self.assertEqual(self.srv.get("/nowhere").status, 404)

    def test_form_post(self):
        r = self.srv.request("POST", "/form", body=b"a=1&b=two%20words",
                             headers=[("Content-Type", "application/x-www-form-urlencoded")])
        self.assertEqual((r.status, r.body), (200, b"1+two words"))

    def test_20_mib_multipart_upload(self):
        data = os.urandom(20 * 1024 * 1024)
        boundary = "qilinboundary7d3"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\""
                "\r\nContent-Type: application/octet-stream\r\n\r\n" % boundary).encode()
        body += data + ("\r\n--%s--\r\n" % boundary).encode()
        r = self.srv.request("POST", "/upload", body=body, timeout=30, headers=[
            ("Content-Type", "multipart/form-data; boundary=%s" % boundary)])
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body.decode(), "big.bin %d %s" % (len(data),
                                                             hashlib.md5(data).hexdigest()))

    def test_streamed_body(self):
        self.assertEqual(self.srv.get("/stream").body, b"part0\npart1\npart2\n")

    def test_send_file(self):
        with open(os.path.join(RACK, self.app), "rb") as f:
            self.assertEqual(self.srv.get("/file").body, f.read())

    def test_head_and_304(self):
        with self.srv.connect() as c:
            c.send(build_request("HEAD", "/"))
            r = c.read_response(method="HEAD")
            self.assertEqual((r.status, r.body), (200, b""))
            c.send(build_request("GET", "/etag"))
            r = c.read_response()
            self.assertEqual(r.body, b"tagged")
            c.send(build_request("GET", "/etag", headers=[("If-None-Match", r.header("ETag"))]))
            r = c.read_response()
            self.assertEqual((r.status, r.body), (304, b""))


@unittest.skipUnless(ruby_can_load("sinatra/base"), WHY + "; or ruby-sinatra is not installed")
class SinatraTest(_FrameworkTest, unittest.TestCase):
    """A Sinatra app (tests/apps/rack/sinatra.ru)."""
    app = "sinatra.ru"
    hello = b"Hello from Sinatra"


@unittest.skipUnless(ruby_can_load("action_controller/railtie"),
                     WHY + "; or Rails (ruby-railties, ruby-actionpack) is not installed")
class RailsTest(_FrameworkTest, unittest.TestCase):
    """A minimal Rails 6.1 app (tests/apps/rack/rails.ru): one controller."""
    app = "rails.ru"
    hello = b"Hello from Rails"


LUA_HOOKS = LUA_NOTE + r'''
workers = 2
raw_env = {"GREETING=hello from lua"}
function post_fork(server, worker) note("post_fork", worker.pid) end
function pre_request(worker, req) note("pre_request", worker.pid, req.method, req.path) end
function post_request(worker, req) note("post_request", worker.pid, req.path, req.status) end
'''


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackLuaConfigTest(unittest.TestCase):
    """The Lua config file and its server hooks work for a Rack app as for Python."""

    def test_settings_environment_and_hooks(self):
        tmp = tempfile.mkdtemp(prefix="qilin-rack-lua-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out, conf = os.path.join(tmp, "notes"), os.path.join(tmp, "qilin.conf.lua")
        with open(conf, "w") as f:
            f.write(LUA_HOOKS % out)
        with rack_server(["-c", conf], workers=None) as srv:
            workers = srv.wait_workers(2)
            notes = HookNotes(out)
            for pid in workers:
                notes.wait("post_fork", pid)
            self.assertEqual(srv.get("/procenv?GREETING").body, b"hello from lua")
            pid = notes.wait("pre_request")[0][1]
            notes.wait("pre_request", pid, "GET", "/procenv")
            notes.wait("post_request", pid, "/procenv", 200)


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackWorkerTimeoutTest(unittest.TestCase):
    def test_stuck_worker_is_replaced(self):
        with rack_server(["-k", "sync", "--timeout", "2"]) as srv:
            old = srv.worker_pids()
            with srv.connect(timeout=15) as c:
                c.send(build_request("GET", "/sleep?s=30"))
                self.assertEqual(c.read_to_eof(), b"")
            srv.wait_log(r"WORKER TIMEOUT \(pid:%d\)" % old[0])
            # Where it was stuck, as gunicorn logs Python's stack.
            srv.wait_log(r"Ruby backtrace of the stuck request \(most recent call first\):"
                         r"\n  .*config\.ru:\d+:in `sleep'\n  .*config\.ru:\d+:in `call'")
            srv.wait_workers(1, exclude=old)
            self.assertEqual(srv.get("/").body, b"Hello, World!")


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackLimitsTest(unittest.TestCase):
    def test_body_over_limit_is_413(self):
        with rack_server(["--limit-request-body", "1000"]) as srv:
            r = srv.request("POST", "/echo", body=b"x" * 5000)
            self.assertEqual(r.status, 413)
            self.assertEqual(srv.get("/").status, 200)
            self.assertNotIn("Error handling request", srv.log_text())

    def test_hup_loads_config_ru_again(self):
        tmp = tempfile.mkdtemp(prefix="qilin-rack-")
        ru = os.path.join(tmp, "config.ru")
        try:
            with open(ru, "w") as f:
                f.write('run ->(env) { [200, {"Content-Type" => "text/plain"}, ["one"]] }\n')
            with Server(["--plugin", "ruby"], app="config.ru", chdir=tmp, workers=2) as srv:
                self.assertEqual(srv.get("/").body, b"one")
                with open(ru, "w") as f:
                    f.write('run ->(env) { [200, {"Content-Type" => "text/plain"}, ["two"]] }\n')
                old = set(srv.worker_pids())
                os.kill(srv.pid, signal.SIGHUP)
                srv.wait_workers(2, exclude=old)
                wait_for(lambda: all(srv.get("/").body == b"two" for _ in range(6)), 10,
                         what="the new config.ru served")
        finally:
            shutil.rmtree(tmp)

    def test_reload_watches_config_ru_and_what_it_requires(self):
        tmp = os.path.realpath(tempfile.mkdtemp(prefix="qilin-rack-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        ru, rb = os.path.join(tmp, "config.ru"), os.path.join(tmp, "greeting.rb")
        with open(rb, "w") as f:
            f.write('GREETING = "one"\n')
        with open(ru, "w") as f:
            f.write('require_relative "greeting"\n'
                    'run ->(env) { [200, {"Content-Type" => "text/plain"}, [GREETING]] }\n')
        with rack_server(["--reload", "-k", "sync"], chdir=tmp) as srv:
            [old] = srv.wait_workers(1)
            self.assertEqual(srv.get("/").body, b"one")
            with open(rb, "w") as f:
                f.write('GREETING = "two"\n')
            srv.wait_log(r"Worker reloading: %s modified" % re.escape(rb))
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: srv.get("/").body == b"two", 20, what="the new greeting.rb")
            with open(ru, "a") as f:
                f.write("# edited\n")
            srv.wait_log(r"Worker reloading: %s modified" % re.escape(ru))
            srv.wait_workers(1, exclude=[old, new], timeout=20)
            self.assertEqual(srv.get("/").body, b"two")

    def test_alias_rack_and_preload(self):
        with Server(["--plugin", "rack", "--preload", "-k", "sync"], app="config.ru", chdir=RACK,
                    workers=2) as srv:
            self.assertEqual(srv.get("/").body, b"Hello, World!")
            # The VM was started in the master: each worker serves after fork.
            self.assertEqual(int(srv.get("/loaded-in").body), srv.pid)
            pids = {int(srv.get("/pid").body) for _ in range(20)}
            self.assertTrue(pids <= set(srv.worker_pids()), (pids, srv.worker_pids()))


@unittest.skipUnless(HAVE_RUBY and worker_built("gthread"), WHY + "; or gthread is not built")
class RackThreadsTest(unittest.TestCase):
    def test_eight_blocking_requests_overlap_on_eight_threads(self):
        """Each request waits in the app until all eight are there: they can
        only all be answered "met" if eight Ruby threads serve side by side."""
        with rack_server(["-k", "gthread", "--threads", "8"]) as srv:
            with ThreadPoolExecutor(8) as pool:
                bodies = list(pool.map(lambda _: srv.get("/barrier?n=8", timeout=15).body,
                                       range(8)))
            self.assertEqual(bodies, [b"met"] * 8)
            # Serving goes on after it, on every thread.
            self.assertEqual(srv.get("/").body, b"Hello, World!")


def hijack_exchanges(port, tls=None):
    """The three hijacks of config.ru on one server: what came back raw."""
    out = {}
    for path in ("/hijack-partial", "/hijack-thread"):
        with Conn(port, tls=tls) as c:
            c.send_request("GET", path)
            out[path] = c.read_to_eof()
    with Conn(port, tls=tls) as c:
        # The lines ride in the same packets as the request: the core has
        # read them already and must hand them to the app first.
        c.send(build_request("POST", "/hijack-full", body=b"hello") + b"abc\nxyz\n")
        head = c.read_head()
        c.send(b"more\nbye\n")
        out["/hijack-full"] = (head, c.read_to_eof())
    return out


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackHijackTest(unittest.TestCase):
    """rack.hijack: the partial hijack (a rack.hijack response header: the
    server sends the head, the app writes the rest on the connection) and
    the full one (env['rack.hijack'].call: the app writes everything)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = rack_server(["--access-logfile", "-"])
        cls.got = hijack_exchanges(cls.srv.port)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_partial_hijack_head_then_the_apps_bytes_until_it_closes(self):
        head, _, body = self.got["/hijack-partial"].partition(b"\r\n\r\n")
        lines = head.decode().lower().split("\r\n")
        self.assertEqual(lines[0], "http/1.1 200 ok")
        self.assertIn("content-type: text/plain", lines)
        self.assertIn("connection: close", lines)
        # No framing: the app's bytes go as they are and the close ends them.
        self.assertFalse([h for h in lines if h.startswith(("transfer-encoding", "content-length",
                                                             "rack.hijack"))], lines)
        self.assertEqual(body, b"partial hijack\n")

    def test_partial_hijack_io_kept_by_a_thread_after_the_call_returned(self):
        _, _, body = self.got["/hijack-thread"].partition(b"\r\n\r\n")
        self.assertEqual(body, b"tick 0\ntick 1\ntick 2\n")

    def test_full_hijack_reads_and_writes_the_raw_connection(self):
        head, rest = self.got["/hijack-full"]
        self.assertEqual(head[1], 200)
        self.assertEqual(rest, b"body 5\nABC\nXYZ\nMORE\n")

    def test_access_log_and_serving_go_on(self):
        self.assertEqual(self.srv.get("/").body, b"Hello, World!")
        with open(self.srv.out_path, "rb") as f:
            log = f.read().decode()
        # The full hijack's status is read from the status line the app wrote.
        for line in ('"GET /hijack-partial HTTP/1.1" 200', '"GET /hijack-thread HTTP/1.1" 200',
                     '"POST /hijack-full HTTP/1.1" 200'):
            self.assertIn(line, log)
        self.assertNotIn("LintError", self.srv.log_text())
        self.assertNotIn("[ERROR]", self.srv.log_text())


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackThreeTest(unittest.TestCase):
    """Rack 3 where it does not conflict with Rack 2.2 (rack3.ru): streaming
    bodies, and rack.response_finished."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qilin-rack3-")
        cls.log = os.path.join(cls.tmp, "finished.log")
        cls.srv = rack_server(app="rack3.ru", env={"RACK3_LOG": cls.log})

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp)

    def test_streaming_body_is_called_with_a_stream(self):
        r = self.srv.request("POST", "/stream", body=b"posted")
        self.assertEqual((r.status, r.body), (200, b"streamed by call posted"))
        # No Content-Length: the core frames the stream's writes.
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")

    def test_response_finished_callables_get_env_status_headers_and_error(self):
        self.assertEqual(self.srv.get("/finished").body, b"finished")
        self.assertEqual(self.srv.get("/finished-raise").status, 500)
        notes = self.srv.get("/log").body.decode().splitlines()
        self.assertEqual(notes, ['["/finished", "200", "yes", nil]',
                                 '["/finished-raise", "nil", nil, "app failed"]'])


@unittest.skipUnless(HAVE_RUBY and os.environ.get("QILIN_TLS") == "yes",
                     WHY + "; or qilin was built without TLS")
class RackTlsTest(unittest.TestCase):
    def test_https_env(self):
        from test_tls import client_context, tls_args
        with rack_server(tls_args()) as srv:
            with Conn(srv.port, tls=client_context()) as c:
                r = c.request("GET", "/env")
        env = dict(line.split("=", 1) for line in r.body.decode().split("\n"))
        self.assertEqual(env["rack.url_scheme"], "https")
        self.assertEqual(env["HTTPS"], "on")
        self.assertRegex(env["SSL_PROTOCOL"], r"^TLSv1\.[23]$")

    def test_hijack_over_tls(self):
        from test_tls import client_context, tls_args
        with rack_server(tls_args()) as srv:
            got = hijack_exchanges(srv.port, tls=client_context())
        self.assertTrue(got["/hijack-partial"].endswith(b"\r\n\r\npartial hijack\n"))
        self.assertTrue(got["/hijack-thread"].endswith(b"\r\n\r\ntick 0\ntick 1\ntick 2\n"))
        self.assertEqual(got["/hijack-full"][1], b"body 5\nABC\nXYZ\nMORE\n")


@unittest.skipUnless(HAVE_RUBY, WHY)
class RackStartupErrorsTest(unittest.TestCase):
    def run_ruby(self, args, app, cwd=RACK):
        return run_qilin(["--plugin", "ruby", "-b", "127.0.0.1:0", "--chdir", cwd] + args
                         + [app])

    def test_missing_rackup_file(self):
        r = self.run_ruby([], "nosuch.ru")
        self.assertEqual(r.returncode, 4)
        self.assertIn("rackup file 'nosuch.ru' not found: give the path of your config.ru",
                      r.output)

    def test_rackup_that_raises(self):
        tmp = tempfile.mkdtemp(prefix="qilin-rack-")
        try:
            with open(os.path.join(tmp, "config.ru"), "w") as f:
                f.write('raise "oops from config.ru"\n')
            r = self.run_ruby([], "config.ru", cwd=tmp)
            self.assertEqual(r.returncode, 3)
            self.assertIn("RuntimeError: oops from config.ru", r.output)
            self.assertIn("rackup file 'config.ru' raised an exception", r.output)
        finally:
            shutil.rmtree(tmp)

    def test_green_workers_and_threaded_preload_are_one_clear_error(self):
        for args, words in ((["-k", "gthread", "--preload"], "cannot --preload on -k gthread"),
                            (["-k", "gevent"], "serves Rack apps on -k sync")):
            klass = args[1]
            if not worker_built(klass):
                continue
            r = self.run_ruby(args, "config.ru")
            self.assertEqual(r.returncode, 1, r.output)
            self.assertIn(words, r.output)

    def test_python_app_with_the_ruby_plugin(self):
        r = self.run_ruby([], "testapp:app", cwd=APPS)
        self.assertEqual(r.returncode, 4)
        self.assertIn("rackup file 'testapp:app' not found", r.output)


class PythonPluginGivenRackupTest(unittest.TestCase):
    def test_rackup_file_with_the_python3_plugin_is_one_clear_error(self):
        r = run_qilin(["-b", "127.0.0.1:0", "--chdir", RACK, "config.ru"])
        self.assertEqual(r.returncode, 4, r.output)
        self.assertIn("'config.ru' is a Rack rackup file, not a Python app: serve it with "
                      "--plugin ruby", r.output)


per_worker_class(globals(), RackTest, SinatraTest, RailsTest, RackLimitsTest, RackLuaConfigTest,
                 RackHijackTest, RackThreeTest, RackTlsTest, classes=RUBY_CLASSES)


if __name__ == "__main__":
    unittest.main()
