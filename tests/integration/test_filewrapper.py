"""wsgi.file_wrapper: exact bytes from a real file (sendfile path) and from a
file-like object without fileno, with and without Content-Length; and
--no-sendfile, which copies the same bytes without sendfile(2)."""
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from urllib.parse import quote

from qilintest import Server, assert_same_bytes, per_worker_class, wait_for


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


def strace_works():
    try:
        return subprocess.run(["strace", "-f", "-qq", "-e", "trace=none", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@unittest.skipUnless(strace_works(), "strace is not installed, or cannot trace here")
class NoSendfileTest(unittest.TestCase):
    """The syscalls a worker makes for a file response, seen with strace:
    sendfile(2) by default, none with --no-sendfile, and the same bytes."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qilin-nosf-")
        cls.path = os.path.join(cls.tmp, "data.bin")
        cls.data = os.urandom(300 * 1024 + 5)
        with open(cls.path, "wb") as f:
            f.write(cls.data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def sendfile_calls(self, args):
        trace = os.path.join(self.tmp, "trace.txt")
        with Server(args) as srv:
            worker = srv.wait_workers(1)[0]
            tracer = subprocess.Popen(["strace", "-f", "-qq", "-e", "trace=sendfile",
                                       "-o", trace, "-p", str(worker)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                # strace writes nothing until a traced call: wait for it to attach.
                wait_for(lambda: _traced_by(worker) != 0, 20, what="strace to attach")
                r = srv.get("/file?path=" + quote(self.path, safe=""), timeout=20)
            finally:
                time.sleep(0.2)
                tracer.terminate()
                tracer.wait(20)
        self.assertEqual(r.status, 200)
        assert_same_bytes(r.body, self.data)
        with open(trace) as f:
            return sum(1 for line in f if "sendfile(" in line)

    def test_sendfile_by_default_and_none_with_no_sendfile(self):
        self.assertGreater(self.sendfile_calls([]), 0)
        self.assertEqual(self.sendfile_calls(["--no-sendfile"]), 0)


def _traced_by(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


per_worker_class(globals(), NoSendfileTest)
