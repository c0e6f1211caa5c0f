"""GET/HEAD basics, response headers, HTTP/1.0, and the WSGI environ."""
import email.utils
import json
import re
import socket
import unittest

from qilintest import WSGI_CLASSES, Server, per_worker_class, worker_class

DATE_RX = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
                     r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
                     r"\d\d:\d\d:\d\d GMT$")


class HelloTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--keep-alive", "10"])

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_get_returns_body(self):
        resp = self.srv.get("/")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.reason, "OK")
        self.assertEqual(resp.version, "HTTP/1.1")
        self.assertEqual(resp.body, b"hello")
        self.assertEqual(resp.header("Content-Length"), "5")
        self.assertEqual(resp.header("Content-Type"), "text/plain")

    def test_date_and_server_headers(self):
        resp = self.srv.get("/")
        self.assertEqual(resp.header_all("Server"), ["qilin"])
        dates = resp.header_all("Date")
        self.assertEqual(len(dates), 1, resp.headers)
        self.assertRegex(dates[0], DATE_RX)
        self.assertIsNotNone(email.utils.parsedate_to_datetime(dates[0]))

    def test_head_has_headers_but_no_body(self):
        with self.srv.connect() as c:
            get = c.request("GET", "/hello")
            head = c.request("HEAD", "/hello")
            # Had HEAD sent body bytes, they would now be read as this response's head.
            after = c.request("GET", "/say?w=after-head")
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b"")
        self.assertEqual(head.header("Content-Length"), get.header("Content-Length"))
        self.assertEqual(head.header("Content-Type"), get.header("Content-Type"))
        self.assertEqual(head.header("Server"), "qilin")
        self.assertIsNotNone(head.header("Date"))
        self.assertEqual(after.status, 200)
        self.assertEqual(after.body, b"after-head")

    def test_http10_request_closes(self):
        with self.srv.connect() as c:
            resp = c.request("GET", "/hello", version="HTTP/1.0")
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, b"hello")
            self.assertTrue(c.closed_by_peer(), "HTTP/1.0 connection left open")

    def test_http10_without_length_is_close_delimited(self):
        with self.srv.connect() as c:
            c.send_request("GET", "/chunked", version="HTTP/1.0")
            resp = c.read_response()
        self.assertEqual(resp.status, 200)
        self.assertIsNone(resp.header("Transfer-Encoding"))
        self.assertEqual(resp.body, b"one-two-three")

    def test_http11_without_length_is_chunked(self):
        resp = self.srv.get("/chunked")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.chunked, resp.headers)
        self.assertIsNone(resp.header("Content-Length"))
        self.assertEqual(resp.body, b"one-two-three")

    def test_unknown_path_is_the_apps_404(self):
        resp = self.srv.get("/no/such/page")
        self.assertEqual(resp.status, 404)
        self.assertEqual(resp.body, b"not found")

    def test_http_client(self):
        hc = self.srv.http_client()
        try:
            hc.request("GET", "/say?w=stdlib")
            resp = hc.getresponse()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.read(), b"stdlib")
        finally:
            hc.close()


class EnvironTest(unittest.TestCase):
    """The WSGI side: the environ, gunicorn.socket and the write callable."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_write_callable(self):
        resp = self.srv.get("/write")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"written-returned")

    def environ(self, target, headers=(), body=None, method="GET"):
        with self.srv.connect() as c:
            resp = c.request(method, target, headers=headers, body=body)
            port = c.local_port
        self.assertEqual(resp.status, 200, resp)
        return json.loads(resp.body), port

    def test_request_line_keys(self):
        env, client_port = self.environ("/environ/a%20b?x=1&y=%20")
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["PATH_INFO"], "/environ/a b")
        self.assertEqual(env["QUERY_STRING"], "x=1&y=%20")
        self.assertEqual(env["RAW_URI"], "/environ/a%20b?x=1&y=%20")
        self.assertEqual(env["SCRIPT_NAME"], "")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["SERVER_NAME"], "127.0.0.1")
        self.assertEqual(env["SERVER_PORT"], str(self.srv.port))
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertEqual(env["REMOTE_PORT"], str(client_port))

    def test_path_info_is_latin1_decoded(self):
        env, _ = self.environ("/environ/caf%C3%A9")
        # PEP 3333: the decoded bytes, each as one latin-1 character.
        self.assertEqual(env["PATH_INFO"], "/environ/caf\u00c3\u00a9")

    def test_no_query_string(self):
        env, _ = self.environ("/environ")
        self.assertEqual(env.get("QUERY_STRING"), "")
        self.assertEqual(env["RAW_URI"], "/environ")

    def test_wsgi_keys(self):
        env, _ = self.environ("/environ")
        self.assertEqual(env["wsgi.version"], [1, 0])
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertIs(env["wsgi.input_terminated"], True)
        self.assertIs(env["wsgi.run_once"], False)
        # True where one process serves requests concurrently: threads, or
        # green threads (gunicorn's gevent and eventlet workers say True too).
        self.assertIs(env["wsgi.multithread"], worker_class() != "sync")
        self.assertIn("wsgi.multiprocess", env)
        for key in ("wsgi.input", "wsgi.errors", "wsgi.file_wrapper"):
            self.assertIn(key, env)
        self.assertEqual(env["_environ_type"], "dict")
        self.assertTrue(env["_str_keys"])
        self.assertTrue(env["SERVER_SOFTWARE"].startswith("qilin"), env["SERVER_SOFTWARE"])

    def test_gunicorn_socket_is_a_read_only_view(self):
        # gunicorn hands apps the connection's socket; middlewares read it.
        resp = self.srv.get("/sock")
        got = json.loads(resp.body)
        self.assertEqual(got["peer"], ["127.0.0.1", int(got["REMOTE_PORT"])])
        self.assertEqual(got["local"], ["127.0.0.1", self.srv.port])
        self.assertEqual((got["family"], got["type"]), (socket.AF_INET, socket.SOCK_STREAM))
        self.assertGreater(got["fileno"], 2)
        self.assertEqual(got["no_close"], True)
        # Kept past its request, it is detached: it never shows another connection.
        self.assertEqual(json.loads(self.srv.get("/sock?old=1").body)["old"],
                         [-1, "OSError"])

    def test_http_headers(self):
        env, _ = self.environ("/environ", headers=[
            ("X-Dup", "a"), ("User-Agent", "qilin-test"), ("X-Dup", "b"),
            ("X-Empty", ""), ("Accept-Language", "fr")])
        self.assertEqual(env["HTTP_X_DUP"], "a,b")
        self.assertEqual(env["HTTP_USER_AGENT"], "qilin-test")
        self.assertEqual(env["HTTP_ACCEPT_LANGUAGE"], "fr")
        self.assertEqual(env["HTTP_X_EMPTY"], "")
        self.assertEqual(env["HTTP_HOST"], "127.0.0.1")

    def test_header_with_underscore_is_dropped(self):
        env, _ = self.environ("/environ", headers=[("X_Under", "1"), ("X-Keep", "2")])
        self.assertNotIn("HTTP_X_UNDER", env)
        self.assertEqual(env["HTTP_X_KEEP"], "2")

    def test_content_length_only_when_present(self):
        env, _ = self.environ("/environ")
        self.assertNotIn("CONTENT_LENGTH", env)
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)
        env, _ = self.environ("/environ", method="POST", body=b"abc",
                              headers=[("Content-Type", "text/x-test")])
        self.assertEqual(env["REQUEST_METHOD"], "POST")
        self.assertEqual(env["CONTENT_LENGTH"], "3")
        self.assertEqual(env["CONTENT_TYPE"], "text/x-test")
        self.assertNotIn("HTTP_CONTENT_LENGTH", env)
        self.assertNotIn("HTTP_CONTENT_TYPE", env)

    def test_cgi_values_are_str(self):
        env, _ = self.environ("/environ?a=b", headers=[("X-A", "1")])
        for key, value in env.items():
            if "." not in key and not key.startswith("_"):
                self.assertIsInstance(value, str, key)


# The basics on every worker class; the environ on every WSGI one.
per_worker_class(globals(), HelloTest)
per_worker_class(globals(), EnvironTest, classes=WSGI_CLASSES)

if __name__ == "__main__":
    unittest.main()
