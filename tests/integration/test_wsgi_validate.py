"""An app wrapped in wsgiref.validate.validator: the server's side of PEP 3333
(environ is a dict of str values with the required keys, wsgi.input and
wsgi.errors behave, the iterable is closed) holds for GET, POST and HEAD."""
import gc
import unittest

from qilintest import Server, chunk_encode


class ValidatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(app="validapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def assert_clean_logs(self):
        gc.collect()
        text = self.srv.log_text() + self.srv.output_text()
        self.assertNotIn("AssertionError", text)
        self.assertNotIn("Error handling request", text)
        self.assertNotIn("Traceback", text)

    def test_get(self):
        resp = self.srv.get("/path?a=1")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"GET /path?a=1")
        self.assert_clean_logs()

    def test_post(self):
        resp = self.srv.request("POST", "/post", body=b"posted data")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"posted data")
        self.assert_clean_logs()

    def test_head(self):
        resp = self.srv.request("HEAD", "/head")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"")
        self.assertEqual(resp.header("Content-Length"), str(len(b"HEAD /head?")))
        self.assert_clean_logs()

    def test_readline_and_readlines(self):
        resp = self.srv.request("POST", "/lines", body=b"abcdef\nline2\nline3\n")
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"abc|def\n|line2\n|line3\n")
        self.assert_clean_logs()

    def test_chunked_post(self):
        with self.srv.connect() as c:
            c.send_request("POST", "/lines", headers=[("Transfer-Encoding", "chunked")])
            c.send(chunk_encode([b"ab", b"cdef\nli", b"ne2\n"]))
            resp = c.read_response()
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"abc|def\n|line2\n")
        self.assert_clean_logs()

    def test_wsgi_errors_reaches_the_log(self):
        self.srv.get("/errors-check")
        self.srv.wait_log(r"validapp served GET")


if __name__ == "__main__":
    unittest.main()
