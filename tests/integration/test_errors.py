"""Errors: app exceptions and bad app headers (500), malformed requests
(400, 414, 431, 501, 505), each answered without losing the worker."""
import json
import unittest

from qilintest import WSGI_CLASSES, IncompleteResponse, Server, build_request, per_worker_class


class ErrorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--limit-request-fields", "5"], workers=1)
        cls.worker = int(cls.srv.get("/pid").body)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def assert_same_worker(self):
        resp = self.srv.get("/pid")
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.body), self.worker, "the worker was replaced")

    def raw(self, data):
        """Sends DATA on a fresh connection; returns the response and whether
        the server then closed the connection."""
        with self.srv.connect() as c:
            c.send(data)
            resp = c.read_response()
            return resp, c.closed_by_peer()

    def assert_rejected(self, data, status):
        resp, closed = self.raw(data)
        self.assertEqual(resp.status, status, resp)
        self.assertTrue(closed, "connection left open after %d" % status)
        self.assert_same_worker()
        return resp

    # -- the app fails -------------------------------------------------------

    def test_app_exception_is_500_and_logged(self):
        resp = self.srv.get("/raise")
        self.assertEqual(resp.status, 500)
        self.srv.wait_log(r"Error handling request")
        self.srv.wait_log(r"RuntimeError: boom from testapp")
        self.assertIn("Traceback (most recent call last)", self.srv.log_text())
        self.assertEqual(self.srv.get("/hello").body, b"hello")
        self.assert_same_worker()

    def test_exception_after_headers_closes_connection(self):
        with self.srv.connect() as c:
            c.send_request("GET", "/raise-late")
            with self.assertRaises(IncompleteResponse):
                c.read_response()
        self.srv.wait_log(r"RuntimeError: late boom from testapp")
        self.assert_same_worker()

    def test_header_value_with_newline_is_500(self):
        with self.srv.connect() as c:
            resp = c.request("GET", "/badheader")
        self.assertEqual(resp.status, 500)
        self.assertNotIn("Injected", resp.raw_head.decode("latin-1"))
        self.assertNotIn(b"should not be sent", resp.body)
        self.assert_same_worker()

    def test_invalid_header_name_is_500(self):
        resp = self.srv.get("/badheader-name")
        self.assertEqual(resp.status, 500)
        self.assertNotIn(b"should not be sent", resp.body)
        self.assert_same_worker()

    # -- the client sends garbage ----------------------------------------------

    def test_malformed_request_line_is_400(self):
        self.assert_rejected(b"GARBAGE\r\n\r\n", 400)

    def test_header_without_colon_is_400(self):
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400)

    def test_content_length_and_transfer_encoding_is_400(self):
        data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assert_rejected(data, 400)

    def test_differing_content_lengths_is_400(self):
        data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                b"Content-Length: 4\r\n\r\nabcd")
        self.assert_rejected(data, 400)

    def test_bad_chunk_size_is_400(self):
        data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"zz\r\nhello\r\n0\r\n\r\n")
        with self.srv.connect() as c:
            c.send(data)
            try:
                resp = c.read_response()
            except IncompleteResponse:
                resp = None  # closing without an answer is acceptable here
            if resp is not None:
                self.assertEqual(resp.status, 400, resp)
        self.assert_same_worker()

    def test_long_request_line_is_414(self):
        data = build_request("GET", "/" + "a" * 5000)
        self.assert_rejected(data, 414)

    def test_too_many_headers_is_431(self):
        headers = [("X-H%d" % i, "v") for i in range(10)]
        self.assert_rejected(build_request("GET", "/hello", headers=headers), 431)

    def test_header_limit_allows_exactly_the_limit(self):
        headers = [("X-H%d" % i, "v") for i in range(4)]  # plus Host: 5 fields
        resp, _ = self.raw(build_request("GET", "/hello", headers=headers))
        self.assertEqual(resp.status, 200)

    def test_unsupported_transfer_coding_is_501(self):
        data = (b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n")
        self.assert_rejected(data, 501)

    def test_unsupported_http_version_is_505(self):
        self.assert_rejected(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505)

    def test_obs_fold_is_400(self):
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n", 400)

    def test_nul_in_header_value_is_400(self):
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400)

    def test_bare_cr_in_header_value_is_400(self):
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400)

    def test_space_before_colon_is_400(self):
        self.assert_rejected(b"GET / HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400)

    def test_non_numeric_content_length_is_400(self):
        self.assert_rejected(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n", 400)

    def test_error_is_logged_with_peer(self):
        self.raw(b"GARBAGE\r\n\r\n")
        self.srv.wait_log(r"Invalid request from ip=127\.0\.0\.1")


class LimitOptionTest(unittest.TestCase):
    def test_long_header_line_is_431(self):
        with Server(["--limit-request-field_size", "100"]) as srv:
            with srv.connect() as c:
                c.send(build_request("GET", "/hello", headers=[("X-Long", "v" * 200)]))
                resp = c.read_response()
            self.assertEqual(resp.status, 431)
            self.assertEqual(srv.get("/hello").status, 200)

    def test_request_line_limit_zero_means_the_maximum(self):
        with Server(["--limit-request-line", "0"]) as srv:
            resp = srv.get("/say?w=" + "a" * 6000)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, b"a" * 6000)
            with srv.connect() as c:
                c.send(build_request("GET", "/say?w=" + "a" * 9000))
                self.assertEqual(c.read_response().status, 414)

    def test_request_line_limit_is_configurable(self):
        with Server(["--limit-request-line", "100"]) as srv:
            self.assertEqual(srv.get("/say?w=" + "a" * 50).status, 200)
            with srv.connect() as c:
                c.send(build_request("GET", "/say?w=" + "a" * 200))
                self.assertEqual(c.read_response().status, 414)


if __name__ == "__main__":
    unittest.main()


class ObsoleteFoldingTest(unittest.TestCase):
    """permit_obsolete_folding: a header value continued on the next line
    (obs-fold) is refused with 400 by default, as gunicorn 22+ does, and
    unfolded with one space when permitted, however the bytes arrive."""

    RAW = (b"GET /environ HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\t three\r\nX-B: b\r\n"
           b"Connection: close\r\n\r\n")

    def test_refused_by_default(self):
        with Server([]) as srv:
            with srv.connect() as c:
                c.send(self.RAW)
                self.assertEqual(c.read_response().status, 400)
            srv.wait_log(r"Obsolete line folding in a header field")

    def test_unfolded_when_permitted(self):
        with Server(["--permit-obsolete-folding"]) as srv:
            for step in (len(self.RAW), 1, 3, 7):
                with srv.connect() as c:
                    for i in range(0, len(self.RAW), step):
                        c.send(self.RAW[i:i + step])
                    resp = c.read_response()
                self.assertEqual(resp.status, 200, resp)
                env = json.loads(resp.body)
                self.assertEqual((env["HTTP_X_A"], env["HTTP_X_B"]), ("one two three", "b"))


per_worker_class(globals(), ObsoleteFoldingTest, classes=WSGI_CLASSES)


class UnconventionalVersionTest(unittest.TestCase):
    """permit_unconventional_http_version: HTTP/1.2, HTTP/0.9 or HTTP/2.0 on
    an HTTP/1 connection is 505 by default and served when permitted, as
    HTTP/1.1 from 1.1 up and HTTP/1.0 below."""

    def get(self, srv, version):
        with srv.connect() as c:
            c.send(b"GET /environ " + version + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            return c.read_response()

    def test_refused_by_default(self):
        with Server([]) as srv:
            for version in (b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9"):
                self.assertEqual(self.get(srv, version).status, 505, version)

    def test_served_when_permitted(self):
        with Server(["--permit-unconventional-http-version"]) as srv:
            for version, served in ((b"HTTP/1.2", "HTTP/1.1"), (b"HTTP/2.0", "HTTP/1.1"),
                                    (b"HTTP/0.9", "HTTP/1.0"), (b"HTTP/1.1", "HTTP/1.1")):
                resp = self.get(srv, version)
                self.assertEqual(resp.status, 200, version)
                self.assertEqual(json.loads(resp.body)["SERVER_PROTOCOL"], served)


per_worker_class(globals(), UnconventionalVersionTest, classes=WSGI_CLASSES)
