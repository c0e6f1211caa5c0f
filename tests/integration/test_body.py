"""Request bodies: Content-Length, chunked, Expect: 100-continue, the
wsgi.input reading methods, and a large upload streamed back; a body the
client cut short or broke is its fault, answered 400 with one warning."""
import hashlib
import json
import re
import socket
import threading
import unittest

from qilintest import Server, assert_same_bytes, chunk_encode, per_worker_class

BINARY = bytes(range(256)) * 3 + b"\r\n\r\n0\r\n\r\n"


class BodyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--keep-alive", "10"])

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_post_content_length_echo(self):
        resp = self.srv.request("POST", "/echo", body=BINARY)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, BINARY)

    def test_empty_post(self):
        resp = self.srv.request("POST", "/echo", body=b"")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"")

    def test_chunked_request_body(self):
        pieces = [b"first;", b"x" * 3000, b"\r\n", b"last"]
        with self.srv.connect() as c:
            c.send_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
            c.send(chunk_encode(pieces))
            resp = c.read_response()
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, b"".join(pieces))
            # The connection is still in step: the next request is answered.
            again = c.request("GET", "/say?w=next")
        self.assertEqual(again.body, b"next")

    def test_chunked_body_with_extension_and_trailer(self):
        body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
        with self.srv.connect() as c:
            c.send_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
            c.send(body)
            resp = c.read_response()
            self.assertEqual(resp.body, b"hello world")
            again = c.request("GET", "/say?w=after-trailer")
        self.assertEqual(again.body, b"after-trailer")

    def test_chunked_environ_has_no_content_length(self):
        with self.srv.connect() as c:
            c.send_request("POST", "/environ", headers=[("Transfer-Encoding", "chunked")])
            c.send(chunk_encode([b"abc"]))
            resp = c.read_response()
        env = json.loads(resp.body)
        self.assertNotIn("CONTENT_LENGTH", env)
        self.assertIs(env["wsgi.input_terminated"], True)

    def test_expect_100_continue(self):
        with self.srv.connect() as c:
            c.send_request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                     ("Content-Length", "11")])
            interim = c.read_response("POST", interim=True)
            self.assertEqual(interim.status, 100)
            self.assertTrue(interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"),
                            interim.raw_head)
            c.send(b"hello world")
            resp = c.read_response("POST")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, b"hello world")

    def lines(self, how, body, chunked=False):
        with self.srv.connect() as c:
            if chunked:
                c.send_request("POST", "/lines?how=" + how,
                               headers=[("Transfer-Encoding", "chunked")])
                # Lines deliberately straddle chunk boundaries.
                c.send(chunk_encode([body[i:i + 4] for i in range(0, len(body), 4)]))
                resp = c.read_response()
            else:
                resp = c.request("POST", "/lines?how=" + how, body=body)
        self.assertEqual(resp.status, 200, resp)
        return [s.encode("latin-1") for s in json.loads(resp.body)]

    def test_readline(self):
        body = b"a\nbb\n\nccc"
        expect = [b"a\n", b"bb\n", b"\n", b"ccc"]
        self.assertEqual(self.lines("readline", body), expect)
        self.assertEqual(self.lines("readline", body, chunked=True), expect)

    def test_readline_with_size(self):
        self.assertEqual(self.lines("readline2", b"abcde\nf\n"),
                         [b"ab", b"cd", b"e\n", b"f\n"])

    def test_iteration(self):
        body = b"one\ntwo\nthree\n"
        expect = [b"one\n", b"two\n", b"three\n"]
        self.assertEqual(self.lines("iter", body), expect)
        self.assertEqual(self.lines("iter", body, chunked=True), expect)

    def test_readlines(self):
        self.assertEqual(self.lines("readlines", b"x\ny\nz"), [b"x\n", b"y\n", b"z"])

    def test_read_sized(self):
        self.assertEqual(self.lines("read3", b"abcdefgh"), [b"abc", b"def", b"gh"])
        self.assertEqual(self.lines("read3", b"abcdefgh", chunked=True),
                         [b"abc", b"def", b"gh"])

    def test_unread_body_does_not_break_keepalive(self):
        with self.srv.connect() as c:
            # /hello never reads its body; the server must skip it.
            first = c.request("POST", "/hello", body=b"ignored body " * 100)
            second = c.request("GET", "/say?w=second")
        self.assertEqual(first.body, b"hello")
        self.assertEqual(second.status, 200)
        self.assertEqual(second.body, b"second")

    def test_large_upload_streamed_back(self):
        size = 8 * 1024 * 1024 + 123
        block = hashlib.sha256(b"qilin").digest() * 2048
        data = (block * (size // len(block) + 1))[:size]
        self._upload(data, chunked=False)

    def test_large_chunked_upload_streamed_back(self):
        block = bytes(range(251)) * 300
        data = block * 120
        self._upload(data, chunked=True)

    def _upload(self, data, chunked):
        """Sends from a thread while reading: the echo streams back while the
        upload is still arriving, so one-sided blocking would deadlock."""
        with self.srv.connect(timeout=20) as c:
            if chunked:
                c.send_request("POST", "/echo-stream", headers=[("Transfer-Encoding", "chunked")])
                payload = chunk_encode([data[i:i + 100000] for i in range(0, len(data), 100000)])
            else:
                c.send_request("POST", "/echo-stream",
                               headers=[("Content-Length", str(len(data)))])
                payload = data
            errors = []

            def sender():
                try:
                    c.send(payload)
                except OSError as e:
                    errors.append(e)

            t = threading.Thread(target=sender, daemon=True)
            t.start()
            resp = c.read_response("POST")
            t.join(20)
        self.assertFalse(errors, errors)
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(resp.body), len(data))
        self.assertEqual(hashlib.sha256(resp.body).hexdigest(), hashlib.sha256(data).hexdigest())

    def test_large_content_length_echo(self):
        data = bytes(range(256)) * 16384  # 4 MiB, read whole by the app
        with self.srv.connect(timeout=20) as c:
            resp = c.request("POST", "/echo", body=data)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("Content-Length"), str(len(data)))
        assert_same_bytes(resp.body, data)


class BadBodyTest(unittest.TestCase):
    """The client's fault, on every worker class: a 400 (while the client can
    still read it), one WARNING line, no 5xx, no ERROR, the worker unharmed."""

    CUT = {
        # More than the core reads ahead: the app's wsgi.input.read() fails.
        "large Content-Length": (b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 2000000000\r\n\r\n0123456789",
                                 r"Request body incomplete \(got 10 of 2000000000 bytes\)"),
        # Small enough to be read before the app runs.
        "small Content-Length": (b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Length: 2000\r\n\r\n0123456789",
                                 r"Request body incomplete \(got 10 of 2000 bytes\)"),
        "chunked, last chunk without its CRLF": (
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n0\r\n",
            r"Request body incomplete \(got 5 bytes of a chunked body\)"),
    }

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(workers=1)
        cls.worker = int(cls.srv.get("/pid").body)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def half_closed(self, data):
        """Sends DATA, shuts the sending side down, and returns all that comes back."""
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=10)
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out
                out += chunk
        finally:
            s.close()

    def assert_one_warning(self, pattern, before):
        self.srv.wait_log(r"\[WARNING\] Invalid request from ip=127\.0\.0\.1: " + pattern)
        self.assertEqual(int(self.srv.get("/pid").body), self.worker, "the worker was replaced")
        new = self.srv.log_text()[len(before):]
        lines = [ln for ln in new.splitlines() if re.search(r"\[(WARNING|ERROR|CRITICAL)\]", ln)]
        self.assertEqual(len(lines), 1, new)

    def test_body_cut_short_is_400_and_one_warning(self):
        for name, (data, pattern) in self.CUT.items():
            with self.subTest(name):
                before = self.srv.log_text()
                out = self.half_closed(data)
                self.assertTrue(out.startswith(b"HTTP/1.1 400 Bad Request\r\n"), out[:200])
                self.assert_one_warning(pattern, before)

    def test_broken_chunked_body_is_one_warning(self):
        before = self.srv.log_text()
        with self.srv.connect() as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhelloX\r\n0\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        self.assert_one_warning("Expected CRLF after chunk", before)


class UnreadBodyTest(unittest.TestCase):
    """The app answers without reading the request body (/hello). A small
    body is read away and the connection kept; a larger Content-Length one
    ends the connection with Connection: close, and a chunked one past 64 KiB
    ends it too; either way the server reads the rest of the upload away
    before closing (lingering close), so the client gets the whole answer
    and no reset."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--keep-alive", "10"], workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_small_unread_body_keeps_the_connection(self):
        with self.srv.connect() as c:
            resp = c.request("POST", "/hello", body=b"x" * 32768)
            self.assertEqual((resp.status, resp.body), (200, b"hello"))
            self.assertEqual((resp.header("Connection") or "").lower(), "keep-alive")
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")

    def test_large_unread_body_closes_without_a_reset(self):
        for size in (100 * 1024, 4 * 1024 * 1024):
            with self.subTest(size=size), self.srv.connect(timeout=20) as c:
                c.send_request("POST", "/hello", body=b"y" * size)
                resp = c.read_response()
                self.assertEqual((resp.status, resp.body), (200, b"hello"))
                self.assertEqual((resp.header("Connection") or "").lower(), "close")
                self.assertTrue(c.closed_by_peer())

    def test_unread_chunked_body_closes_without_a_reset(self):
        with self.srv.connect(timeout=20) as c:
            c.send_request("POST", "/hello", headers=[("Transfer-Encoding", "chunked")])
            c.send(chunk_encode([b"z" * 65536] * 16))
            resp = c.read_response()
            self.assertEqual((resp.status, resp.body), (200, b"hello"))
            self.assertTrue(c.closed_by_peer())

    def test_small_unread_chunked_body_keeps_the_connection(self):
        with self.srv.connect() as c:
            c.send_request("POST", "/hello", headers=[("Transfer-Encoding", "chunked")])
            c.send(chunk_encode([b"z" * 1000] * 4))
            resp = c.read_response()
            self.assertEqual((resp.status, resp.body), (200, b"hello"))
            self.assertEqual((resp.header("Connection") or "").lower(), "keep-alive")
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")


per_worker_class(globals(), BadBodyTest, UnreadBodyTest)

if __name__ == "__main__":
    unittest.main()
