"""qilin behind Debian's nginx: the deployment docs/guide.md
describes, run for real. nginx (/usr/sbin/nginx, package nginx-light) runs in
the foreground from a temporary prefix with its own configuration, on a free
127.0.0.1 port, proxying to qilin over TCP or a unix socket.

Proven here: the client address and scheme that nginx forwards reach the app
when qilin trusts the proxy (--forwarded-allow-ips; unix socket peers always
are) and do not when it does not; nginx's upstream keep-alive reuses qilin
connections; a 16 MiB upload (buffered by nginx, or streamed chunked with
proxy_request_buffering off) and an 8 MiB response arrive intact.

The client connects from 127.0.0.2, so the address nginx forwards differs
from nginx's own (127.0.0.1, which qilin trusts by default).
"""
import hashlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from qilintest import APPS, IO_TIMEOUT, Server, free_port, wait_for

sys.path.insert(0, APPS)
from proxiedapp import pattern_bytes  # noqa: E402

NGINX = "/usr/sbin/nginx"
CLIENT_ADDR = "127.0.0.2"
APP = "proxiedapp:app"
needs_nginx = unittest.skipUnless(os.access(NGINX, os.X_OK), "%s is not installed "
                                  "(Debian: apt-get install nginx-light)" % NGINX)

# The server block docs/guide.md shows, less TLS: nginx here listens on plain
# HTTP, so X-Forwarded-Proto says https where a TLS listener's $scheme would.
# What every nginx of the tests starts with: one worker, and every file
# under the test's own directory (test_uwsgi.py shares it).
CONF_HEAD = """\
worker_processes 1;
{user}
error_log {tmp}/error.log info;
pid {tmp}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
"""

CONF = CONF_HEAD + """\

    upstream qilin {{
        server {upstream};
        keepalive 8;
    }}
    upstream qilin_nokeep {{
        server {upstream};
    }}

    server {{
        listen 127.0.0.1:{port};
        server_name _;
        client_max_body_size 64m;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto https;

        location / {{
            proxy_pass http://qilin;
        }}
        location /stream/ {{
            proxy_pass http://qilin;
            proxy_request_buffering off;
            proxy_buffering off;
        }}
        location /nokeep/ {{
            proxy_pass http://qilin_nokeep;
        }}
    }}
}}
"""


class Nginx:
    """nginx in the foreground, proxying to UPSTREAM (HOST:PORT or unix:PATH).
    Its own session, so teardown kills the master and its worker by group."""

    def __init__(self, upstream, conf=CONF, **fields):
        """CONF: the configuration template (test_uwsgi.py has its own); FIELDS
        fill its placeholders beyond tmp, port, upstream and user."""
        self.tmp = tempfile.mkdtemp(prefix="qilin-nginx-")
        self.port = free_port()
        self.conf = os.path.join(self.tmp, "nginx.conf")
        # As root the worker would otherwise become nobody, who cannot reach
        # the 0700 temporary directories; as anyone else nginx keeps its uid.
        user = "user root;" if os.geteuid() == 0 else ""
        with open(self.conf, "w") as f:
            f.write(conf.format(tmp=self.tmp, port=self.port, upstream=upstream, user=user,
                                **fields))
        self.out = open(os.path.join(self.tmp, "output.txt"), "wb")
        self.proc = subprocess.Popen([NGINX, "-p", self.tmp, "-c", self.conf,
                                      "-g", "daemon off;"],
                                     stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for(self._ready, 10, what="nginx on port %d" % self.port)
        except BaseException:
            self.close()
            raise

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("nginx exited with %r:\n%s" % (self.proc.returncode,
                                                                self.diagnostics()))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            conn.connect()
            conn.close()
            return True
        except OSError:
            return False

    def diagnostics(self):
        text = []
        for name in ("output.txt", "error.log"):
            try:
                with open(os.path.join(self.tmp, name), "rb") as f:
                    text.append("--- nginx %s ---\n%s" % (
                        name, f.read()[-3000:].decode("utf-8", "replace")))
            except FileNotFoundError:
                pass
        return "\n".join(text)

    def client(self, timeout=IO_TIMEOUT * 4):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout,
                                          source_address=(CLIENT_ADDR, 0))

    def request(self, method, path, body=None, headers=None, encode_chunked=False):
        """One request on a fresh client connection: (status, headers, body)."""
        conn = self.client()
        try:
            conn.request(method, path, body=body, headers=headers or {},
                         encode_chunked=encode_chunked)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, path, **kw):
        status, _, body = self.request("GET", path, **kw)
        if status != 200:
            raise AssertionError("GET %s through nginx: %d %r\n%s" % (
                path, status, body[:300], self.diagnostics()))
        return json.loads(body)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.out.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def with_nginx(test, qilin_args=(), unix=False):
    """Starts qilin (TCP, or a unix socket as well when UNIX) and nginx in
    front of it, both stopped at the test's end; returns (qilin, nginx)."""
    args = list(qilin_args)
    if unix:
        sock_dir = tempfile.mkdtemp(prefix="qilin-sock-")
        test.addCleanup(shutil.rmtree, sock_dir, True)
        path = os.path.join(sock_dir, "qilin.sock")
        # The TCP listener Server always adds only tells the harness qilin is up.
        args += ["-b", "unix:" + path]
    srv = Server(args, app=APP)
    test.addCleanup(srv.close)
    upstream = "unix:" + path if unix else "127.0.0.1:%d" % srv.port
    proxy = Nginx(upstream)
    test.addCleanup(proxy.close)
    return srv, proxy


SPOOFED = {"Host": "app.example", "X-Forwarded-For": "6.6.6.6"}


@needs_nginx
class ForwardedHeaders(unittest.TestCase):
    def test_trusted_proxy_over_tcp(self):
        # qilin's default --forwarded-allow-ips is 127.0.0.1,::1: nginx's address.
        _, proxy = with_nginx(self, ["--real-ip"])
        env = proxy.json("/environ", headers=SPOOFED)
        # nginx appended the client's address to the one the client sent;
        # qilin believes the hop nginx vouches for, not the client's claim.
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6, " + CLIENT_ADDR)
        self.assertEqual(env["REMOTE_ADDR"], CLIENT_ADDR)
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["HTTP_HOST"], "app.example")

    def test_remote_addr_is_nginx_without_real_ip(self):
        # gunicorn's default: the scheme comes from the trusted proxy, the
        # address stays the socket's peer, whatever X-Forwarded-For says.
        _, proxy = with_nginx(self)
        env = proxy.json("/environ", headers=SPOOFED)
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6, " + CLIENT_ADDR)
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertTrue(env["REMOTE_PORT"].isdigit(), env)
        self.assertEqual(env["wsgi.url_scheme"], "https")

    def test_untrusted_proxy_over_tcp(self):
        _, proxy = with_nginx(self, ["--real-ip", "--forwarded-allow-ips", "10.0.0.0/8"])
        env = proxy.json("/environ", headers=SPOOFED)
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6, " + CLIENT_ADDR)
        # nginx's own address and port, and the scheme of the socket.
        self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
        self.assertTrue(env["REMOTE_PORT"].isdigit(), env)
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertEqual(env["HTTP_HOST"], "app.example")

    def test_unix_socket_peer_is_trusted(self):
        # As in gunicorn: only local processes reach a unix socket, so its
        # peer is trusted whatever --forwarded-allow-ips says.
        _, proxy = with_nginx(self, ["--real-ip", "--forwarded-allow-ips", "10.0.0.0/8"],
                              unix=True)
        env = proxy.json("/environ", headers=SPOOFED)
        self.assertEqual(env["REMOTE_ADDR"], CLIENT_ADDR)
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["HTTP_HOST"], "app.example")


def connections(proxy, prefix, n):
    """Makes N requests through PROXY under PREFIX, each on a new client
    connection; returns the distinct upstream connections that carried them
    (the app's "conn": its worker's connection sockets)."""
    return {tuple(proxy.json(prefix + "environ")["conn"]) for _ in range(n)}


@needs_nginx
class UpstreamKeepAlive(unittest.TestCase):
    """nginx's `keepalive 8` with HTTP/1.1 and no Connection header upstream:
    requests from different clients share qilin connections."""

    def check(self, unix):
        # A long --keep-alive: nginx's idle upstream connection stays open
        # between the test's requests however slowly they come.
        _, proxy = with_nginx(self, ["--keep-alive", "30"], unix=unix)
        reused = connections(proxy, "/", 6)
        self.assertLess(len(reused), 6, reused)
        # Without nginx's keepalive every request opens a new connection, so
        # the count above measures reuse.
        self.assertEqual(len(connections(proxy, "/nokeep/", 4)), 4)

    def test_reuses_upstream_connections_over_tcp(self):
        self.check(unix=False)

    def test_reuses_upstream_connections_over_unix_socket(self):
        self.check(unix=True)

    def test_unread_bodies_do_not_break_kept_connections(self):
        # The app answers 100 KB POSTs without reading them: qilin ends each
        # such connection with Connection: close and reads the rest away
        # before closing, so nginx never sees a reset (a 502 to its client).
        _, proxy = with_nginx(self, ["--keep-alive", "30"])
        statuses = [proxy.request("POST", "/ignore", body=b"p" * 100000)[0] for _ in range(30)]
        self.assertEqual(statuses, [200] * 30, proxy.diagnostics())

    def test_request_on_a_kept_connection_outlives_a_long_request(self):
        # One sync worker and a one-second keep-alive. nginx holds two idle
        # upstream connections; a 2 s request takes one, and a POST sent on
        # the other 0.3 s later must be served when the worker is free,
        # although that connection's keep-alive ran out meanwhile.
        _, proxy = with_nginx(self, ["--keep-alive", "1", "-k", "sync"])
        warm = [threading.Thread(target=proxy.request, args=("GET", "/sleep?s=0.3"))
                for _ in range(2)]
        for t in warm:
            t.start()
        for t in warm:
            t.join(20)
        results = {}
        slow = threading.Thread(target=lambda: results.update(
            slow=proxy.request("GET", "/sleep?s=2")))
        slow.start()
        time.sleep(0.3)
        results["post"] = proxy.request("POST", "/ignore", body=b"q" * 1000)
        slow.join(20)
        self.assertEqual(results["slow"][0], 200)
        self.assertEqual(results["post"][0], 200, proxy.diagnostics())


UPLOAD = 16 << 20
DOWNLOAD = 8 << 20


def upload_body():
    # Not a repeating pattern: a lost or duplicated piece changes the digest.
    return hashlib.shake_256(b"qilin upload").digest(UPLOAD)


@needs_nginx
class LargeBodies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.body = upload_body()
        cls.digest = hashlib.sha256(cls.body).hexdigest()

    def upload(self, proxy, path, chunked):
        headers = {"Content-Type": "application/octet-stream"}
        if chunked:
            pieces = (self.body[i:i + (1 << 20)] for i in range(0, UPLOAD, 1 << 20))
            status, _, raw = proxy.request("POST", path, body=pieces, headers=headers,
                                           encode_chunked=True)
        else:
            status, _, raw = proxy.request("POST", path, body=self.body, headers=headers)
        self.assertEqual(status, 200, raw[:300])
        got = json.loads(raw)
        self.assertEqual((got["size"], got["sha256"]), (UPLOAD, self.digest))
        return got

    def test_upload_buffered_by_nginx(self):
        _, proxy = with_nginx(self)
        # nginx reads the whole body first and sends it with a length.
        got = self.upload(proxy, "/sha256", chunked=True)
        self.assertEqual(got["CONTENT_LENGTH"], str(UPLOAD))

    def test_upload_streamed_chunked(self):
        _, proxy = with_nginx(self)
        # proxy_request_buffering off: nginx passes the chunked body on as it comes.
        got = self.upload(proxy, "/stream/sha256", chunked=True)
        self.assertEqual(got["HTTP_TRANSFER_ENCODING"].lower(), "chunked")
        self.assertEqual(got["CONTENT_LENGTH"], "")
        # With a length from the client, streamed with that length.
        got = self.upload(proxy, "/stream/sha256", chunked=False)
        self.assertEqual(got["CONTENT_LENGTH"], str(UPLOAD))

    def test_upload_over_unix_socket(self):
        _, proxy = with_nginx(self, unix=True)
        self.upload(proxy, "/stream/sha256", chunked=True)

    def test_large_response(self):
        _, proxy = with_nginx(self)
        want = hashlib.sha256(pattern_bytes(DOWNLOAD)).hexdigest()
        for path in ("/bytes", "/stream/bytes"):  # buffered by nginx, and not
            status, headers, body = proxy.request("GET", "%s?n=%d" % (path, DOWNLOAD))
            self.assertEqual(status, 200)
            self.assertEqual(len(body), DOWNLOAD, path)
            self.assertEqual(hashlib.sha256(body).hexdigest(), want, path)


if __name__ == "__main__":
    unittest.main()
