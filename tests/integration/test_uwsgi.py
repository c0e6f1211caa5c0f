"""--protocol uwsgi: the uWSGI binary protocol nginx's uwsgi_pass speaks, as
gunicorn 26 serves it (--protocol, --uwsgi-allow-from).

A raw-socket client builds the packets (4-byte header, then the variables,
then the body): GET and POST, query strings, many headers, the client
address and scheme the front end reports; a table of malformed packets,
each answered 400 by a worker that lives on; the HTTP limits as they apply
to the request a packet stands for; a peer outside --uwsgi-allow-from
refused with 403. Then nginx (package nginx-light) with uwsgi_pass in front:
the environ the app sees, a 16 MiB upload checked by hash, and an upstream
keepalive block. Every worker class runs the raw tests; nginx's too.
"""
import hashlib
import json
import os
import socket
import struct
import tempfile
import unittest

from qilintest import IO_TIMEOUT, Conn, Server, per_worker_class
from test_nginx import CLIENT_ADDR, CONF_HEAD, NGINX, Nginx
from test_ruby import HAVE_RUBY, WHY, rack_server

UWSGI_PARAMS = "/etc/nginx/uwsgi_params"
needs_nginx = unittest.skipUnless(os.access(NGINX, os.X_OK) and os.path.exists(UWSGI_PARAMS),
                                  "%s is not installed (Debian: apt-get install nginx-light)"
                                  % NGINX)


def var_block(pairs):
    """The variable block: each key and value with its u16 little-endian length."""
    out = b""
    for k, v in pairs:
        k = k.encode("latin-1") if isinstance(k, str) else k
        v = v.encode("latin-1") if isinstance(v, str) else v
        out += struct.pack("<H", len(k)) + k + struct.pack("<H", len(v)) + v
    return out


def packet(pairs, modifier1=0, modifier2=0, block=None):
    """A uwsgi packet: modifier1, datasize (u16 LE), modifier2, then the block."""
    data = var_block(pairs) if block is None else block
    return struct.pack("<BHB", modifier1, len(data), modifier2) + data


def request_vars(method="GET", uri="/", protocol="HTTP/1.1", headers=(), body=b"", extra=()):
    """The variables nginx's uwsgi_params send for METHOD URI."""
    path, _, query = uri.partition("?")
    pairs = [("QUERY_STRING", query), ("REQUEST_METHOD", method),
             ("CONTENT_TYPE", "application/octet-stream" if body else ""),
             ("CONTENT_LENGTH", str(len(body)) if body else ""),
             ("REQUEST_URI", uri), ("PATH_INFO", path), ("SERVER_PROTOCOL", protocol),
             ("REQUEST_SCHEME", "http"), ("REMOTE_ADDR", "192.0.2.7"), ("REMOTE_PORT", "40123"),
             ("SERVER_PORT", "80"), ("SERVER_NAME", "app.example"),
             ("HTTP_HOST", "app.example")]
    pairs += [("HTTP_" + k.upper().replace("-", "_"), v) for k, v in headers]
    return pairs + list(extra)


def exchange(port, data, shut=False):
    """Sends DATA on a new connection; returns the response, after checking
    that the server closed the connection behind it (one request each)."""
    with Conn(port) as c:
        c.send(data)
        if shut:
            c.sock.shutdown(socket.SHUT_WR)
        resp = c.read_response()
        if resp.header("Content-Length") is not None:
            assert c.closed_by_peer(), "the uwsgi connection stayed open"
        return resp


def uwsgi(port, body=b"", **kw):
    return exchange(port, packet(request_vars(body=body, **kw)) + body)


class UwsgiRequests(unittest.TestCase):
    """Well-formed packets from a trusted peer (127.0.0.1, the default)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--protocol", "uwsgi", "--real-ip"], app="testapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def environ(self, **kw):
        resp = uwsgi(self.srv.port, **kw)
        self.assertEqual(resp.status, 200, resp)
        return json.loads(resp.body)

    def test_get_environ(self):
        env = self.environ(uri="/environ?a=1&b=%20x", headers=[("X-Forwarded-For", "6.6.6.6"),
                                                              ("User-Agent", "curl/8")])
        self.assertEqual(env["REQUEST_METHOD"], "GET")
        self.assertEqual(env["PATH_INFO"], "/environ")
        self.assertEqual(env["QUERY_STRING"], "a=1&b=%20x")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.1")
        self.assertEqual(env["HTTP_HOST"], "app.example")
        self.assertEqual(env["HTTP_X_FORWARDED_FOR"], "6.6.6.6")
        self.assertEqual(env["HTTP_USER_AGENT"], "curl/8")
        # The front end saw the client; the packet's REMOTE_ADDR is believed.
        self.assertEqual(env["REMOTE_ADDR"], "192.0.2.7")
        self.assertEqual(env["REMOTE_PORT"], "40123")
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertIn(env.get("CONTENT_LENGTH", ""), ("", "0"))

    def test_https_and_http10(self):
        env = self.environ(uri="/environ", protocol="HTTP/1.0", extra=[("HTTPS", "on")])
        self.assertEqual(env["wsgi.url_scheme"], "https")
        self.assertEqual(env["SERVER_PROTOCOL"], "HTTP/1.0")
        env = self.environ(uri="/environ", extra=[("UWSGI_SCHEME", "https")])
        self.assertEqual(env["wsgi.url_scheme"], "https")

    def test_client_scheme_headers_are_not_believed(self):
        # nginx passes the client's own X-Forwarded-* on as HTTP_*: the
        # packet's HTTPS and REMOTE_ADDR decide, even with --real-ip.
        env = self.environ(uri="/environ", headers=[("X-Forwarded-Proto", "https"),
                                                    ("X-Forwarded-For", "6.6.6.6")])
        self.assertEqual(env["wsgi.url_scheme"], "http")
        self.assertEqual(env["REMOTE_ADDR"], "192.0.2.7")
        self.assertEqual(env["HTTP_X_FORWARDED_PROTO"], "https")

    def test_path_info_without_request_uri(self):
        pairs = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/environ/a b%"),
                 ("QUERY_STRING", "x=1"), ("SERVER_PROTOCOL", "HTTP/1.1"),
                 ("HTTP_HOST", "h")]
        resp = exchange(self.srv.port, packet(pairs))
        self.assertEqual(resp.status, 200, resp)
        env = json.loads(resp.body)
        self.assertEqual(env["PATH_INFO"], "/environ/a b%")
        self.assertEqual(env["QUERY_STRING"], "x=1")

    def test_post_body(self):
        body = bytes(range(256)) * 300
        resp = uwsgi(self.srv.port, method="POST", uri="/echo", body=body)
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, body)

    def test_body_sent_in_pieces(self):
        body = b"x" * 200000
        data = packet(request_vars(method="PUT", uri="/echo", body=body)) + body
        with Conn(self.srv.port) as c:
            for i in range(0, len(data), 7000):
                c.send(data[i:i + 7000])
            resp = c.read_response()
        self.assertEqual(resp.body, body)

    def test_many_headers(self):
        headers = [("X-H%d" % i, "v%d" % i) for i in range(60)]
        env = self.environ(uri="/environ", headers=headers)
        for i in range(60):
            self.assertEqual(env["HTTP_X_H%d" % i], "v%d" % i)

    def test_streamed_response_is_not_chunked(self):
        # nginx's uwsgi module reads the body raw: a body of unknown length
        # ends with the connection, never in chunked framing.
        body = b"y" * 50000
        resp = uwsgi(self.srv.port, method="POST", uri="/echo-stream", body=body)
        self.assertEqual(resp.status, 200, resp)
        self.assertIsNone(resp.header("Transfer-Encoding"))
        self.assertEqual(resp.body, body)

    def test_hop_by_hop_headers_are_not_passed_on(self):
        env = self.environ(uri="/environ", headers=[("Transfer-Encoding", "chunked"),
                                                    ("Connection", "keep-alive"),
                                                    ("Expect", "100-continue")])
        for key in ("HTTP_TRANSFER_ENCODING", "HTTP_CONNECTION", "HTTP_EXPECT"):
            self.assertNotIn(key, env)


def bad(pairs=None, **kw):
    return packet(request_vars(uri="/pid") if pairs is None else pairs, **kw)


GOOD = request_vars(uri="/pid")
# Each packet is answered 400 and its connection closed; the worker lives on.
MALFORMED = [
    ("modifier1 is not a WSGI request", bad(modifier1=5)),
    ("datasize 0", b"\x00\x00\x00\x00"),
    ("key length past the block", bad(block=b"\x20\x00REQ")),
    ("value length past the block", bad(block=b"\x01\x00A\x09\x00b")),
    ("a dangling byte after the last variable", bad(block=var_block(GOOD) + b"\x01")),
    ("value size cut in two", bad(block=var_block(GOOD) + b"\x01\x00A\x05")),
    ("no REQUEST_METHOD", bad([kv for kv in GOOD if kv[0] != "REQUEST_METHOD"])),
    ("empty variable name", bad(GOOD + [("", "x")])),
    ("CRLF in a value", bad(GOOD + [("HTTP_X_A", "1\r\nTransfer-Encoding: chunked")])),
    ("NUL in a value", bad(GOOD + [("HTTP_X_A", "a\x00b")])),
    ("method not a token", bad([("REQUEST_METHOD", "G ET")] + GOOD[2:])),
    ("space in REQUEST_URI", bad(request_vars(uri="/a b"))),
    ("header name not a token", bad(GOOD + [("HTTP_X:Y", "1")])),
    ("CONTENT_LENGTH not a number", bad(GOOD + [("CONTENT_LENGTH", "abc")])),
    ("two CONTENT_LENGTHs that differ", bad(GOOD + [("CONTENT_LENGTH", "1"),
                                                     ("HTTP_CONTENT_LENGTH", "1"),
                                                     ("CONTENT_LENGTH", "2")])),
]


class UwsgiMalformed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--protocol", "uwsgi"], app="testapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def pid(self):
        resp = exchange(self.srv.port, packet(GOOD))
        self.assertEqual(resp.status, 200, resp)
        return resp.body

    def test_table(self):
        pid = self.pid()
        for name, data in MALFORMED:
            with self.subTest(name):
                resp = exchange(self.srv.port, data)
                self.assertEqual(resp.status, 400, resp)
        self.assertEqual(self.pid(), pid, "a malformed packet killed the worker")
        self.assertTrue(self.srv.running())

    def test_truncated_packet(self):
        pid = self.pid()
        full = packet(GOOD)
        for cut in (2, 3, 10, len(full) - 1):
            with self.subTest(cut=cut):
                resp = exchange(self.srv.port, full[:cut], shut=True)
                self.assertEqual(resp.status, 400, resp)
        self.assertEqual(self.pid(), pid)
        self.srv.wait_log("incomplete uwsgi packet")

    def test_body_shorter_than_content_length(self):
        data = packet(request_vars(method="POST", uri="/echo", body=b"z" * 100)) + b"z" * 10
        resp = exchange(self.srv.port, data, shut=True)
        self.assertEqual(resp.status, 400, resp)


class UwsgiLimits(unittest.TestCase):
    """The HTTP limits apply to the request a packet stands for: its request
    line (limit_request_line), its headers (limit_request_fields and
    limit_request_field_size), its body (limit_request_body), and the time
    to send the packet (header_timeout)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--protocol", "uwsgi", "--limit-request-line", "200",
                          "--limit-request-fields", "20", "--limit-request-field-size", "300",
                          "--limit-request-body", "1000", "--header-timeout", "1"],
                         app="testapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_request_line(self):
        self.assertEqual(uwsgi(self.srv.port, uri="/pid?" + "q" * 150).status, 200)
        self.assertEqual(uwsgi(self.srv.port, uri="/pid?" + "q" * 300).status, 414)

    def test_fields(self):
        many = [("X-H%d" % i, "v") for i in range(30)]
        self.assertEqual(uwsgi(self.srv.port, uri="/pid", headers=many).status, 431)
        self.assertEqual(uwsgi(self.srv.port, uri="/pid",
                               headers=[("X-Big", "b" * 400)]).status, 431)

    def test_body(self):
        self.assertEqual(uwsgi(self.srv.port, method="POST", uri="/echo",
                               body=b"b" * 1000).status, 200)
        self.assertEqual(uwsgi(self.srv.port, method="POST", uri="/echo",
                               body=b"b" * 1001).status, 413)

    def test_header_timeout(self):
        with Conn(self.srv.port, timeout=IO_TIMEOUT) as c:
            c.send(packet(GOOD)[:9])
            resp = c.read_response()
        self.assertEqual(resp.status, 408, resp)


class UwsgiAllowFrom(unittest.TestCase):
    def test_untrusted_peer_is_refused(self):
        with Server(["--protocol", "uwsgi", "--uwsgi-allow-from", "10.0.0.0/8"],
                    app="testapp:app") as srv:
            resp = exchange(srv.port, packet(GOOD))
            self.assertEqual(resp.status, 403, resp)
            srv.wait_log("uWSGI request from '127.0.0.1' not allowed")
            lines = [ln for ln in srv.log_text().splitlines() if "not allowed" in ln]
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("[WARNING] Invalid request from ip=127.0.0.1:", lines[0])

    def test_star_allows_all(self):
        with Server(["--protocol", "uwsgi", "--uwsgi-allow-ips", "*"], app="testapp:app") as srv:
            self.assertEqual(exchange(srv.port, packet(GOOD)).status, 200)

    def test_gunicorn_conf_py(self):
        # gunicorn's names, and its list form of uwsgi_allow_ips.
        with tempfile.TemporaryDirectory() as tmp:
            conf = os.path.join(tmp, "gunicorn.conf.py")
            with open(conf, "w") as f:
                f.write("protocol = 'uwsgi'\nuwsgi_allow_ips = ['10.0.0.0/8', '192.0.2.1']\n")
            with Server(["-c", conf], app="testapp:app") as srv:
                self.assertEqual(exchange(srv.port, packet(GOOD)).status, 403)
                warned = [ln for ln in srv.log_text().splitlines() if "[WARNING]" in ln and
                          ("protocol" in ln or "uwsgi_allow_ips" in ln)]
                self.assertEqual(warned, [])

    def test_bad_allow_list_is_refused_at_startup(self):
        with Server(["--protocol", "uwsgi", "--uwsgi-allow-from", "not-an-ip"],
                    app="testapp:app", wait=False) as srv:
            self.assertNotEqual(srv.wait(), 0)
            self.assertIn("--uwsgi-allow-from", srv.diagnostics())

    def test_bad_protocol_is_refused_at_startup(self):
        with Server(["--protocol", "spdy"], app="testapp:app", wait=False) as srv:
            self.assertNotEqual(srv.wait(), 0)
            self.assertIn("invalid --protocol 'spdy'", srv.diagnostics())


@unittest.skipUnless(HAVE_RUBY, WHY)
class UwsgiRack(unittest.TestCase):
    """The ruby plugin serves a packet's request like any other."""

    def test_env(self):
        with rack_server(["--protocol", "uwsgi"]) as srv:
            resp = uwsgi(srv.port, uri="/env?q=1", headers=[("X-Thing", "yes")],
                         extra=[("HTTPS", "on")])
            self.assertEqual(resp.status, 200, resp)
            lines = set(resp.body.decode("latin-1").splitlines())
            for want in ("PATH_INFO=/env", "QUERY_STRING=q=1", "HTTP_X_THING=yes",
                         "REMOTE_ADDR=192.0.2.7", "rack.url_scheme=https"):
                self.assertIn(want, lines)


CONF = CONF_HEAD + """\

    upstream qilin {{
        server {upstream};
        {keepalive}
    }}

    server {{
        listen 127.0.0.1:{port};
        server_name _;
        client_max_body_size 64m;

        location / {{
            include {params};
            uwsgi_pass qilin;
        }}
    }}
}}
"""


def uwsgi_nginx(upstream, keepalive=False):
    """nginx in the foreground with uwsgi_pass to qilin's port UPSTREAM."""
    return Nginx(upstream, conf=CONF, params=UWSGI_PARAMS,
                 keepalive="keepalive 8;" if keepalive else "")


UPLOAD = 16 << 20


@needs_nginx
class BehindNginx(unittest.TestCase):
    """nginx's uwsgi_pass and Debian's uwsgi_params, unchanged, in front of
    `qilin --protocol uwsgi`, as a uWSGI site has them."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["--protocol", "uwsgi"], app="testapp:app", workers=2)
        cls.addClassCleanup(cls.srv.close)
        cls.proxy = uwsgi_nginx("127.0.0.1:%d" % cls.srv.port)
        cls.addClassCleanup(cls.proxy.close)
        cls.kept = uwsgi_nginx("127.0.0.1:%d" % cls.srv.port, keepalive=True)
        cls.addClassCleanup(cls.kept.close)

    def check(self, got, want, proxy):
        self.assertEqual(got, want, proxy.diagnostics() + self.srv.diagnostics())

    def test_environ(self):
        for proxy in (self.proxy, self.kept):
            status, _, body = proxy.request("GET", "/environ?x=1&y=%C3%A9",
                                            headers={"X-Custom-Thing": "yes",
                                                     "Host": "app.example"})
            self.check(status, 200, proxy)
            env = json.loads(body)
            self.assertEqual(env["REMOTE_ADDR"], CLIENT_ADDR)
            self.assertTrue(env["REMOTE_PORT"].isdigit(), env)
            self.assertEqual(env["PATH_INFO"], "/environ")
            self.assertEqual(env["QUERY_STRING"], "x=1&y=%C3%A9")
            self.assertEqual(env["HTTP_X_CUSTOM_THING"], "yes")
            self.assertEqual(env["HTTP_HOST"], "app.example")
            self.assertEqual(env["REQUEST_METHOD"], "GET")
            self.assertEqual(env["wsgi.url_scheme"], "http")

    def test_upload_16mib(self):
        body = hashlib.shake_256(b"qilin uwsgi upload").digest(UPLOAD)
        status, _, got = self.proxy.request("POST", "/echo", body=body,
                                            headers={"Content-Type": "application/x-test"})
        self.check(status, 200, self.proxy)
        self.assertEqual(len(got), UPLOAD)
        self.assertEqual(hashlib.sha256(got).hexdigest(), hashlib.sha256(body).hexdigest())

    def test_streamed_response(self):
        # A response without Content-Length ends with the connection; nginx
        # passes it on to its own client in its own framing.
        body = b"s" * 300000
        for proxy in (self.proxy, self.kept):
            status, _, got = proxy.request("POST", "/echo-stream", body=body)
            self.check(status, 200, proxy)
            self.assertEqual(got, body)

    def test_keepalive_upstream_keeps_working(self):
        # nginx's uwsgi module does not keep upstream connections alive
        # (nothing in it marks one reusable): with a keepalive block it opens
        # one per request, as without; qilin closes each after its response.
        for i in range(10):
            status, _, got = self.kept.request("POST", "/echo", body=b"k%d" % i)
            self.check(status, 200, self.kept)
            self.assertEqual(got, b"k%d" % i)


per_worker_class(globals(), UwsgiRequests, UwsgiMalformed, BehindNginx)

if __name__ == "__main__":
    unittest.main()
