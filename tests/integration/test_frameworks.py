"""Real frameworks from Debian packages: a Flask app and a minimal Django
project (no database), through http.client."""
import hashlib
import importlib.util
import json
import os
import tempfile
import unittest
import uuid

from qilintest import Server, wait_for


def call(srv, method, path, body=None, headers=None):
    hc = srv.http_client()
    try:
        hc.request(method, path, body=body, headers=headers or {})
        resp = hc.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        hc.close()


def installed(module):
    """The embedded interpreter is this one (/usr/bin/python3): same packages."""
    return importlib.util.find_spec(module) is not None


@unittest.skipUnless(installed("flask"), "Flask is not installed (Debian: python3-flask)")
class GunicornLoggerTest(unittest.TestCase):
    """The recipe of Flask's deployment guide: the app logger takes the
    handlers and the level of gunicorn's "gunicorn.error" logger. Its lines
    land in the error log in its format, honour --log-level, and never on
    stderr; gunicorn.access lines land in the access log."""

    def logged(self, level):
        with tempfile.TemporaryDirectory() as tmp:
            access = os.path.join(tmp, "access.log")
            with Server(["--log-level", level, "--access-logfile", access],
                        app="flasklogapp:app", boot_log=level == "info") as srv:
                status, _, body = call(srv, "GET", "/log?m=xyzzy")
                self.assertEqual((status, body), (200, b"logged"))
                srv.wait_log(r"\[ERROR\] error xyzzy")
                wait_for(lambda: "access xyzzy" in open(access).read(), 10,
                         what="the app's access line")
                return srv.log_text(), srv.output_text()

    def test_app_lines_in_the_error_log(self):
        log, output = self.logged("info")
        self.assertRegex(log, r"\] \[\d+\] \[INFO\] info xyzzy\n")
        self.assertRegex(log, r"\] \[\d+\] \[WARNING\] warning xyzzy\n")
        self.assertRegex(log, r"\[ERROR\] error xyzzy\nTraceback \(most recent call last\):\n")
        self.assertIn("KeyError: 'xyzzy'", log)
        self.assertNotIn("xyzzy", output)

    def test_log_level_applies(self):
        log, _ = self.logged("warning")
        self.assertNotIn("info xyzzy", log)
        self.assertIn("[WARNING] warning xyzzy", log)


@unittest.skipUnless(installed("flask"), "Flask is not installed (Debian: python3-flask)")
class FlaskTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(app="flaskapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_json_route(self):
        status, headers, body = call(self.srv, "GET", "/?x=1&y=two")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {"hello": "flask", "method": "GET",
                                            "args": {"x": "1", "y": "two"}})

    def test_form_post(self):
        status, _, body = call(self.srv, "POST", "/form", body="name=Ada+L%C3%B6&lang=c",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        self.assertEqual(body.decode("utf-8"), "name=Ada L\u00f6;lang=c")

    def test_json_post(self):
        payload = {"list": [1, 2, 3], "text": "caf\u00e9"}
        status, _, body = call(self.srv, "POST", "/json", body=json.dumps(payload),
                               headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"received": payload})

    def test_multipart_upload(self):
        data = bytes(range(256)) * 1000
        boundary = uuid.uuid4().hex
        body = (("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"d.bin\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n" % boundary).encode()
                + data + ("\r\n--%s--\r\n" % boundary).encode())
        status, _, resp = call(self.srv, "POST", "/upload", body=body, headers={
            "Content-Type": "multipart/form-data; boundary=%s" % boundary})
        self.assertEqual(status, 200, resp)
        self.assertEqual(json.loads(resp), {"filename": "d.bin", "size": len(data),
                                            "sha256": hashlib.sha256(data).hexdigest()})

    def test_streamed_response(self):
        status, _, body = call(self.srv, "GET", "/stream")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"part0;part1;part2;")

    def test_not_found(self):
        status, _, _ = call(self.srv, "GET", "/missing")
        self.assertEqual(status, 404)


@unittest.skipUnless(installed("django"), "Django is not installed (Debian: python3-django)")
class DjangoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(app="djangoproj.wsgi:application")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_index(self):
        status, _, body = call(self.srv, "GET", "/")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"django ok")

    def test_json_view(self):
        status, headers, body = call(self.srv, "GET", "/json/?q=search+term")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(json.loads(body), {"path": "/json/", "q": "search term",
                                            "method": "GET"})

    def test_form_post(self):
        status, _, body = call(self.srv, "POST", "/form/", body="name=django",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(status, 200)
        self.assertEqual(body, b"name=django")

    def test_absolute_uri_uses_host_header(self):
        status, _, body = call(self.srv, "GET", "/abs/")
        self.assertEqual(status, 200)
        self.assertEqual(body.decode(), "http://127.0.0.1:%d/abs/" % self.srv.port)

    def test_not_found(self):
        status, _, _ = call(self.srv, "GET", "/missing/")
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
