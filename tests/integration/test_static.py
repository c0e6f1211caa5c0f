"""--static-map URL_PREFIX=DIR: the core answers GET/HEAD under
the prefix from DIR without calling the app, in every worker class: bytes
and headers, conditional requests, ranges, traversal and symlink refusals,
405/404, a large file, keep-alive across static and app requests, the Lua
config form, and the startup errors."""
import email.utils
import os
import shutil
import tempfile
import unittest

from qilintest import Server, assert_same_bytes, per_worker_class, run_qilin, wait_for
from test_gevent import asan_env


class StaticTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qilin-static-")
        cls.root = os.path.join(cls.tmp, "public")
        os.makedirs(os.path.join(cls.root, "css"))
        os.makedirs(os.path.join(cls.root, "empty-dir"))
        cls.files = {
            "css/site.css": b"body { color: red }\n",
            "app.js": b"console.log('hi');\n",
            "index.html": b"<!doctype html><p>hello</p>\n",
            "data.bin": bytes(range(256)) * 40,
            "a b.txt": b"with a space\n",
            "empty.txt": b"",
        }
        for name, data in cls.files.items():
            with open(os.path.join(cls.root, name), "wb") as f:
                f.write(data)
        cls.big = os.urandom(4 * 1024 * 1024 + 13)
        with open(os.path.join(cls.root, "big.bin"), "wb") as f:
            f.write(cls.big)
        # Outside DIR: must never be served, by any spelling.
        cls.secret = b"TOP-SECRET-" + os.urandom(8).hex().encode()
        with open(os.path.join(cls.tmp, "secret"), "wb") as f:
            f.write(cls.secret)
        os.symlink(os.path.join(cls.tmp, "secret"), os.path.join(cls.root, "escape"))
        os.symlink(cls.tmp, os.path.join(cls.root, "escape-dir"))
        # A link that stays inside DIR is followed.
        os.symlink(os.path.join(cls.root, "app.js"), os.path.join(cls.root, "alias.js"))
        os.mkfifo(os.path.join(cls.root, "fifo"))
        with open(os.path.join(cls.root, "locked.txt"), "wb") as f:
            f.write(b"no reading\n")
        os.chmod(os.path.join(cls.root, "locked.txt"), 0)
        # Files dated in the past, so If-Modified-Since has something to compare.
        cls.mtime = 1700000000
        for dirpath, _, names in os.walk(cls.root):
            for name in names:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    os.utime(path, (cls.mtime, cls.mtime))
        cls.log = os.path.join(cls.tmp, "access.log")
        cls.srv = Server(["--keep-alive", "10", "--static-map", "/static=" + cls.root,
                          "--static-map", "/media/=" + os.path.join(cls.root, "css"),
                          "--access-logfile", cls.log],
                         env=asan_env())

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def get(self, path, headers=(), method="GET"):
        with self.srv.connect(timeout=20) as c:
            return c.request(method, path, headers=headers)

    def etag_of(self, name):
        return '"%x-%x"' % (self.mtime, len(self.files[name]))

    # -- 200 and HEAD -----------------------------------------------------

    def test_file_bytes_and_headers(self):
        resp = self.get("/static/css/site.css")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, self.files["css/site.css"])
        self.assertEqual(resp.header("Content-Type"), "text/css; charset=utf-8")
        self.assertEqual(resp.header("Content-Length"), str(len(self.files["css/site.css"])))
        self.assertEqual(resp.header("ETag"), self.etag_of("css/site.css"))
        self.assertEqual(resp.header("Last-Modified"),
                         email.utils.formatdate(self.mtime, usegmt=True))
        self.assertEqual(resp.header("Accept-Ranges"), "bytes")
        self.assertIsNone(resp.header("Cache-Control"))

    def test_content_types(self):
        for name, ctype in (("app.js", "text/javascript; charset=utf-8"),
                            ("index.html", "text/html; charset=utf-8"),
                            ("data.bin", "application/octet-stream")):
            resp = self.get("/static/" + name)
            self.assertEqual(resp.status, 200, name)
            self.assertEqual(resp.body, self.files[name])
            self.assertEqual(resp.header("Content-Type"), ctype, name)

    def test_second_mapping_and_encoded_name(self):
        resp = self.get("/media/site.css")
        self.assertEqual(resp.body, self.files["css/site.css"])
        resp = self.get("/static/a%20b.txt")
        self.assertEqual(resp.body, self.files["a b.txt"])
        resp = self.get("/static//css/./site.css?v=3")
        self.assertEqual(resp.body, self.files["css/site.css"])

    def test_empty_file(self):
        resp = self.get("/static/empty.txt")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Content-Length"), "0")
        self.assertEqual(resp.body, b"")

    def test_head(self):
        resp = self.get("/static/index.html", method="HEAD")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Content-Length"), str(len(self.files["index.html"])))
        self.assertEqual(resp.header("ETag"), self.etag_of("index.html"))
        self.assertEqual(resp.body, b"")

    def test_symlink_inside_dir(self):
        self.assertEqual(self.get("/static/alias.js").body, self.files["app.js"])

    # -- conditional ------------------------------------------------------

    def test_if_none_match(self):
        etag = self.etag_of("app.js")
        for value in (etag, "W/" + etag, '"nope", ' + etag, "*"):
            resp = self.get("/static/app.js", [("If-None-Match", value)])
            self.assertEqual(resp.status, 304, value)
            self.assertEqual(resp.body, b"")
            self.assertIsNone(resp.header("Content-Length"))
            self.assertEqual(resp.header("ETag"), etag)
        resp = self.get("/static/app.js", [("If-None-Match", '"nope"')])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, self.files["app.js"])

    def test_if_modified_since(self):
        same = email.utils.formatdate(self.mtime, usegmt=True)
        later = email.utils.formatdate(self.mtime + 3600, usegmt=True)
        earlier = email.utils.formatdate(self.mtime - 1, usegmt=True)
        self.assertEqual(self.get("/static/app.js", [("If-Modified-Since", same)]).status, 304)
        self.assertEqual(self.get("/static/app.js", [("If-Modified-Since", later)]).status, 304)
        resp = self.get("/static/app.js", [("If-Modified-Since", earlier)])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, self.files["app.js"])
        # If-None-Match takes precedence (RFC 9110 §13.2.2).
        resp = self.get("/static/app.js", [("If-None-Match", '"nope"'),
                                           ("If-Modified-Since", later)])
        self.assertEqual(resp.status, 200)

    # -- ranges -----------------------------------------------------------

    def test_range(self):
        data = self.files["data.bin"]
        size = len(data)
        for spec, first, last in (("bytes=10-19", 10, 19), ("bytes=100-", 100, size - 1),
                                  ("bytes=-7", size - 7, size - 1),
                                  ("bytes=5-999999", 5, size - 1)):
            resp = self.get("/static/data.bin", [("Range", spec)])
            self.assertEqual(resp.status, 206, spec)
            self.assertEqual(resp.header("Content-Range"), "bytes %d-%d/%d" % (first, last, size))
            self.assertEqual(resp.header("Content-Length"), str(last - first + 1))
            self.assertEqual(resp.body, data[first:last + 1], spec)

    def test_range_unsatisfiable(self):
        size = len(self.files["data.bin"])
        for spec in ("bytes=%d-" % size, "bytes=-0"):
            resp = self.get("/static/data.bin", [("Range", spec)])
            self.assertEqual(resp.status, 416, spec)
            self.assertEqual(resp.header("Content-Range"), "bytes */%d" % size)
            self.assertEqual(resp.body, b"")

    def test_several_ranges_and_if_range(self):
        data = self.files["data.bin"]
        resp = self.get("/static/data.bin", [("Range", "bytes=0-1,5-6")])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, data)
        resp = self.get("/static/data.bin", [("Range", "bytes=0-1"),
                                             ("If-Range", self.etag_of("data.bin"))])
        self.assertEqual(resp.status, 206)
        self.assertEqual(resp.body, data[:2])
        resp = self.get("/static/data.bin", [("Range", "bytes=0-1"), ("If-Range", '"old"')])
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, data)

    # -- refusals ---------------------------------------------------------

    def assert_refused(self, path, status=404):
        resp = self.get(path)
        self.assertEqual(resp.status, status, path)
        self.assertNotIn(self.secret, resp.body, path)
        self.assertNotIn(b"TOP-SECRET", resp.body, path)
        return resp

    def test_traversal_refused(self):
        for path in ("/static/../secret", "/static/css/../../secret", "/static/%2e%2e/secret",
                     "/static/%2E%2E%2Fsecret", "/static/..%2fsecret", "/static/css%2f..%2f..%2fsecret",
                     "/static/..%5csecret", "/static/secret%00.txt", "/static/escape",
                     "/static/escape-dir/secret", "/static/%zz"):
            self.assert_refused(path)

    def test_directories_and_specials_refused(self):
        for path in ("/static", "/static/", "/static/css", "/static/css/", "/static/empty-dir",
                     "/static/fifo", "/static/missing.css"):
            self.assert_refused(path)

    @unittest.skipIf(os.geteuid() == 0, "root reads files whatever their mode")
    def test_unreadable_file(self):
        self.assert_refused("/static/locked.txt", 403)

    def test_missing_file_never_reaches_app(self):
        # /static/say would be the app's /say handler if it were passed on.
        resp = self.assert_refused("/static/say?w=x")
        self.assertNotEqual(resp.body, b"x")
        # A path that merely starts with the prefix's letters is the app's.
        self.assertEqual(self.get("/staticfoo").status, 404)

    def test_method_not_allowed(self):
        with self.srv.connect(timeout=20) as c:
            for method in ("POST", "PUT", "DELETE", "OPTIONS"):
                resp = c.request(method, "/static/app.js", body=b"x=1")
                self.assertEqual(resp.status, 405, method)
                self.assertEqual(resp.header("Allow"), "GET, HEAD")
            # The connection survives the refusals.
            self.assertEqual(c.request("GET", "/static/app.js").body, self.files["app.js"])

    # -- size and connections ---------------------------------------------

    def test_large_file(self):
        resp = self.get("/static/big.bin")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Content-Length"), str(len(self.big)))
        assert_same_bytes(resp.body, self.big)

    def test_keepalive_static_then_app(self):
        with self.srv.connect(timeout=20) as c:
            for name in ("app.js", "css/site.css", "big.bin", "data.bin"):
                resp = c.request("GET", "/static/" + name)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header("Connection"), "keep-alive")
                want = self.big if name == "big.bin" else self.files[name]
                assert_same_bytes(resp.body, want, name)
            self.assertEqual(c.request("GET", "/static/app.js", [("Range", "bytes=0-3")]).body,
                             self.files["app.js"][:4])
            self.assertEqual(c.request("GET", "/static/nope").status, 404)
            self.assertEqual(c.request("GET", "/say?w=app").body, b"app")

    def test_pipelined(self):
        with self.srv.connect(timeout=20) as c:
            c.send(b"GET /static/app.js HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"HEAD /static/index.html HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"GET /say?w=last HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(c.read_response().body, self.files["app.js"])
            self.assertEqual(c.read_response("HEAD").status, 200)
            self.assertEqual(c.read_response().body, b"last")

    def test_access_log(self):
        self.get("/static/css/site.css?log=1")
        self.get("/static/nothing-here?log=2")
        size = len(self.files["css/site.css"])

        def logged():
            with open(self.log) as f:
                text = f.read()
            return ('"GET /static/css/site.css?log=1 HTTP/1.1" 200 %d ' % size in text and
                    '"GET /static/nothing-here?log=2 HTTP/1.1" 404 ' in text)
        wait_for(logged, what="static requests in the access log")


per_worker_class(globals(), StaticTests)


class StaticConfigTests(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-static-cfg-")
        os.makedirs(os.path.join(self.tmp, "assets"))
        with open(os.path.join(self.tmp, "assets", "x.txt"), "wb") as f:
            f.write(b"from lua\n")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_lua_config_list(self):
        conf = os.path.join(self.tmp, "qilin.conf.lua")
        with open(conf, "w") as f:
            f.write('static_map = { "/assets=%s/assets", "/a2=%s/assets" }\n'
                    % (self.tmp, self.tmp))
        with Server(["-c", conf], env=asan_env()) as srv:
            self.assertEqual(srv.get("/assets/x.txt").body, b"from lua\n")
            self.assertEqual(srv.get("/a2/x.txt").body, b"from lua\n")
            self.assertEqual(srv.get("/say?w=app").body, b"app")

    def test_relative_dir_follows_chdir(self):
        with Server(["--static-map", "/assets=assets"], chdir=self.tmp, app="testapp:app",
                    extra=["--pythonpath", os.path.join(os.path.dirname(__file__), "..", "apps")],
                    env=asan_env()) as srv:
            self.assertEqual(srv.get("/assets/x.txt").body, b"from lua\n")

    def test_startup_errors(self):
        cases = (
            (["--static-map", "/static"], "--static-map '/static': expected URL_PREFIX=DIR"),
            (["--static-map", "static=" + self.tmp], "the URL prefix must start with '/'"),
            (["--static-map", "/s=" + self.tmp + "/missing"], "not found"),
            (["--static-map", "/s=" + self.tmp + "/assets/x.txt"], "is not a directory"),
        )
        for args, want in cases:
            res = run_qilin(args + ["-b", "127.0.0.1:0", "testapp:app"])
            self.assertNotEqual(res.returncode, 0, args)
            self.assertIn("Error: --static-map", res.stderr, args)
            self.assertIn(want, res.stderr, args)
            self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)

    def test_check_config(self):
        res = run_qilin(["--check-config", "--static-map", "/s=" + self.tmp + "/none",
                         "testapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("--static-map", res.stderr)


if __name__ == "__main__":
    unittest.main()
