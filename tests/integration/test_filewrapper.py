"""wsgi.file_wrapper: exact bytes from a real file (sendfile path) and from a
file-like object without fileno, with and without Content-Length."""
import os
import shutil
import tempfile
import unittest
from urllib.parse import quote

from qilintest import Server, assert_same_bytes


class FileWrapperTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qilin-fw-")
        cls.path = os.path.join(cls.tmp, "data.bin")
        # Not a multiple of any block size; every byte value present.
        cls.data = os.urandom(1024 * 1024 + 17)
        with open(cls.path, "wb") as f:
            f.write(cls.data)
        cls.srv = Server(["--keep-alive", "10"])

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def url(self, **params):
        params["path"] = self.path
        return "/file?" + "&".join("%s=%s" % (k, quote(str(v), safe="")) for k, v in params.items())

    def test_file_with_content_length(self):
        with self.srv.connect(timeout=20) as c:
            resp = c.request("GET", self.url())
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("Content-Length"), str(len(self.data)))
            assert_same_bytes(resp.body, self.data)
            # Framing was exact: the connection serves the next request.
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")

    def test_file_without_content_length(self):
        with self.srv.connect(timeout=20) as c:
            resp = c.request("GET", self.url(cl=0))
            self.assertEqual(resp.status, 200)
            self.assertTrue(resp.chunked, resp.headers)
            assert_same_bytes(resp.body, self.data)
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")

    def test_file_from_current_offset(self):
        resp = self.srv.get(self.url(offset=1000), timeout=20)
        self.assertEqual(resp.status, 200)
        assert_same_bytes(resp.body, self.data[1000:])

    def test_content_length_shorter_than_file(self):
        with self.srv.connect(timeout=20) as c:
            resp = c.request("GET", self.url(offset=10, length=5000))
            assert_same_bytes(resp.body, self.data[10:5010])
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")

    def test_object_without_fileno(self):
        with self.srv.connect(timeout=20) as c:
            resp = c.request("GET", self.url(mode="bytesio"))
            self.assertEqual(resp.status, 200)
            assert_same_bytes(resp.body, self.data)
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")

    def test_head_sends_no_file_bytes(self):
        with self.srv.connect(timeout=20) as c:
            resp = c.request("HEAD", self.url())
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.header("Content-Length"), str(len(self.data)))
            self.assertEqual(c.request("GET", "/say?w=next").body, b"next")

    def test_http10_file(self):
        with self.srv.connect(timeout=20) as c:
            c.send_request("GET", self.url(cl=0), version="HTTP/1.0")
            resp = c.read_response()
        self.assertEqual(resp.status, 200)
        assert_same_bytes(resp.body, self.data)


if __name__ == "__main__":
    unittest.main()
