"""Master signals as gunicorn handles them: TTIN/TTOU change the number of
workers, HUP replaces the workers (re-importing the app and re-reading the
config file), USR1 reopens the log files in the master and the workers."""
import os
import re
import shutil
import signal
import socket
import tempfile
import unittest

from qilintest import ASGI_CLASS, Conn, Server, free_port, per_worker_class, wait_for, worker_class

VERSIONED_APP = '''
import os
def app(environ, start_response):
    body = b"%s " + str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

VERSIONED_ASGI_APP = '''
import os
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b"%s " + str(os.getpid()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''

LAZY_APP = '''
def app(environ, start_response):
    import lazyviews
    body = lazyviews.TEXT.encode()
    start_response('200 OK', [('Content-Length', str(len(body)))])
    return [body]
'''

LAZY_ASGI_APP = '''
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    import lazyviews
    body = lazyviews.TEXT.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def app_text(wsgi, asgi, *args):
    """The text of an app module the test writes: WSGI's, or its ASGI twin's
    on the asyncio worker; formatted with ARGS."""
    return (asgi if worker_class() == ASGI_CLASS else wsgi) % args


def versioned_app(version):
    return app_text(VERSIONED_APP, VERSIONED_ASGI_APP, version)


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
            f.write(versioned_app("v1"))
        with Server(app="versioned:app", chdir=self.tmp, workers=1) as srv:
            [old] = srv.wait_workers(1)
            self.assertEqual(srv.get("/").body, b"v1 %d" % old)
            with open(mod, "w") as f:
                f.write(versioned_app("v2"))
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Handling signal: hup")
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: not alive(old), 20, what="the old worker to exit")
            self.assertEqual(srv.get("/").body, b"v2 %d" % new)
            self.assertTrue(srv.running())
    def test_hup_rereads_config_file(self):
        conf = os.path.join(self.tmp, "qilin.conf.lua")
        with open(conf, "w") as f:
            f.write("workers = 1\n")
        with Server(["-c", conf], workers=None) as srv:
            [old] = srv.wait_workers(1)
            with open(conf, "w") as f:
                f.write("workers = 2\n")
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Handling signal: hup")
            srv.wait_workers(2, exclude=[old], timeout=10)
            wait_for(lambda: not alive(old), 20, what="the old worker to exit")
            self.assertEqual(srv.get("/hello").body, b"hello")

    def test_hup_keeps_the_config_when_the_new_one_is_invalid(self):
        conf = os.path.join(self.tmp, "qilin.conf.lua")
        with open(conf, "w") as f:
            f.write("workers = 2\n")
        with Server(["-c", conf], workers=None) as srv:
            old = srv.wait_workers(2)
            with open(conf, "w") as f:
                f.write("workers = 3\nno_such_setting = 1\n")
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Reload failed, keeping the current configuration: .*qilin.conf.lua:2:"
                         r".*no_such_setting")
            # The workers are still replaced, with the old settings.
            srv.wait_workers(2, exclude=old, timeout=10)
            # The request may wait in the listen queue while the new workers
            # boot (a green worker's imports take seconds on a loaded machine).
            try:
                resp = srv.get("/hello", timeout=20)
            except Exception as e:
                self.fail("no answer after the HUP: %r\n%s" % (e, srv.log_text()))
            self.assertEqual(resp.body, b"hello")
            self.assertTrue(srv.running())

    def test_hup_rebinds_changed_addresses(self):
        first, second = free_port(), free_port()
        conf = os.path.join(self.tmp, "qilin.conf.lua")
        with open(conf, "w") as f:
            f.write('bind = "127.0.0.1:%d"\n' % first)
        with Server(["-c", conf], bind=False, port=first) as srv:
            [old] = srv.wait_workers(1)
            with open(conf, "w") as f:
                f.write('bind = {"127.0.0.1:%d", "127.0.0.1:%d"}\n' % (first, second))
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Listening at: http://127.0.0.1:%d" % second)
            srv.wait_workers(1, exclude=[old], timeout=10)
            for port in (first, second):
                with Conn(port, 5) as c:
                    self.assertEqual(c.request("GET", "/hello").body, b"hello")
            with open(conf, "w") as f:
                f.write('bind = "127.0.0.1:%d"\n' % second)
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Handling signal: hup", count=2)

            def first_closed():
                try:
                    socket.create_connection(("127.0.0.1", first), timeout=1).close()
                    return False
                except OSError:
                    return True
            wait_for(first_closed, 20, what="port %d to close" % first)
            with Conn(second, 5) as c:
                self.assertEqual(c.request("GET", "/hello").body, b"hello")

    def test_reload_restarts_workers_when_a_module_changes(self):
        mod = os.path.join(self.tmp, "versioned.py")
        extra = os.path.join(self.tmp, "template.txt")
        with open(mod, "w") as f:
            f.write(versioned_app("v1"))
        with open(extra, "w") as f:
            f.write("t1")
        with Server(["--reload", "--reload-extra-file", extra], app="versioned:app",
                    chdir=self.tmp, workers=1) as srv:
            [old] = srv.wait_workers(1)
            self.assertEqual(srv.get("/").body, b"v1 %d" % old)
            with open(mod, "w") as f:
                f.write(versioned_app("v2"))
            srv.wait_log(r"Worker reloading: %s modified" % re.escape(mod))
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: srv.get("/").body == b"v2 %d" % new, 20, what="the new code")
            # An extra file counts too.
            with open(extra, "w") as f:
                f.write("t2")
            srv.wait_log(r"Worker reloading: %s modified" % re.escape(extra))
            srv.wait_workers(1, exclude=[old, new], timeout=20)
            self.assertTrue(srv.running())

    def test_reload_engines_and_extra_file_patterns(self):
        for engine in ("poll", "inotify"):
            with self.subTest(engine=engine):
                self.reload_with(engine)

    def reload_with(self, engine):
        tmp = tempfile.mkdtemp(prefix="qilin-reload-%s-" % engine, dir=self.tmp)
        mod = os.path.join(tmp, "versioned.py")
        os.mkdir(os.path.join(tmp, "tmpl"))
        with open(mod, "w") as f:
            f.write(versioned_app("v1"))
        with open(os.path.join(tmp, "tmpl", "a.html"), "w") as f:
            f.write("a1")
        args = ["--reload", "--reload-engine", engine, "--log-level", "debug",
                "--reload-extra-file", os.path.join(tmp, "tmpl", "**", "*.html")]
        with Server(args, app="versioned:app", chdir=tmp, workers=1) as srv:
            [old] = srv.wait_workers(1)
            srv.wait_log(r"--reload: watching \d+ files \(%s\)" % engine)
            with open(mod, "w") as f:
                f.write(versioned_app("v2"))
            srv.wait_log(r"Worker reloading: %s modified" % re.escape(mod))
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: srv.get("/").body == b"v2 %d" % new, 20, what="the new code")
            # A file the pattern matches, made after the worker started, in
            # a directory below (** is any depth): watched from the next
            # rescan on.
            os.makedirs(os.path.join(tmp, "tmpl", "x", "y"))
            later = os.path.join(tmp, "tmpl", "x", "y", "b.html")
            self.edit_until_reloaded(srv, later)
            [third] = srv.wait_workers(1, exclude=[old, new], timeout=20)
            # ** matches no directory too: tmpl/a.html is watched (by the new
            # worker once it is up: hence edited until it reloads).
            self.edit_until_reloaded(srv, os.path.join(tmp, "tmpl", "a.html"))
            srv.wait_workers(1, exclude=[old, new, third], timeout=20)
            self.assertTrue(srv.running())

    def edit_until_reloaded(self, srv, path):
        n = [0]

        def edit():
            n[0] += 1
            with open(path, "w") as f:
                f.write("edit %d" % n[0])
            return "Worker reloading: %s modified" % path in srv.log_text()
        wait_for(edit, 20, what="%s to be watched" % path)

    def test_reload_follows_modules_imported_later(self):
        # A Django project imports its views at the first request: a module
        # imported after the app loaded is watched too (within a second).
        app = os.path.join(self.tmp, "lazyapp.py")
        views = os.path.join(self.tmp, "lazyviews.py")
        with open(app, "w") as f:
            f.write(app_text(LAZY_APP, LAZY_ASGI_APP))
        with open(views, "w") as f:
            f.write("TEXT = 'one'\n")
        with Server(["--reload"], app="lazyapp:app", chdir=self.tmp, workers=1) as srv:
            [old] = srv.wait_workers(1)
            self.assertEqual(srv.get("/").body, b"one")

            def edit_until_reloaded():
                # Rewritten until the worker has looked at sys.modules again.
                with open(views, "w") as f:
                    f.write("TEXT = 'two'\n")
                return "Worker reloading: %s modified" % views in srv.log_text()
            wait_for(edit_until_reloaded, 20, what="the lazily imported module to be watched")
            srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: srv.get("/").body == b"two", 20, what="the new code")

    def test_reload_serves_a_syntax_error_until_it_is_fixed(self):
        # As gunicorn: with --reload a SyntaxError does not stop the server;
        # every request gets 500 with the traceback, and fixing the file
        # (which is watched, although it never imported) reloads.
        mod = os.path.join(self.tmp, "versioned.py")
        with open(mod, "w") as f:
            f.write("def app(environ, start_response)\n    pass\n")
        with Server(["--reload"], app="versioned:app", chdir=self.tmp, workers=1) as srv:
            [old] = srv.wait_workers(1)
            resp = srv.get("/")
            self.assertEqual(resp.status, 500)
            self.assertIn(b"SyntaxError", resp.body)
            srv.wait_log(r"SyntaxError")
            with open(mod, "w") as f:
                f.write(versioned_app("fixed"))
            srv.wait_log(r"Worker reloading: %s modified" % re.escape(mod))
            [new] = srv.wait_workers(1, exclude=[old], timeout=20)
            wait_for(lambda: srv.get("/").body == b"fixed %d" % new, 20, what="the fixed code")
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
            line = ("Exception in ASGI application" if worker_class() == ASGI_CLASS
                    else "Error handling request")
            srv.wait_log(line)
            with open(srv.log_path + ".1") as f:
                self.assertNotIn(line, f.read())


# The signals work the same on every worker class.
per_worker_class(globals(), SignalTest)

if __name__ == "__main__":
    unittest.main()
