"""TLS on the listeners (--certfile), on every worker class: real clients
(curl, openssl s_client, Python's ssl) against certificates made at test
time with `openssl req`; client certificates for --cert-reqs 0, 1 and 2;
sessions resumed on another worker; keep-alive, pipelining, large bodies,
file_wrapper and static files; a stalled handshake that must not hold a
one-worker sync server; plain HTTP and garbage on the TLS port; the
certificate renewed by HUP under load; and the startup errors a user can
make."""
import atexit
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import unittest

from qilintest import (APPS, IO_TIMEOUT, WSGI_CLASSES, Conn, Server, per_worker_class, run_qilin,
                       wait_for, worker_class)

HAVE_TLS = os.environ.get("QILIN_TLS", "yes") == "yes"
CERTS = None  # the module's certificates (Certs), made once


def openssl(*args, stdin=None):
    r = subprocess.run(["openssl"] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), r.stderr.decode()))
    return r.stdout


class Certs:
    """A CA, two server certificates for localhost/127.0.0.1 (the second
    for renewal), a client certificate, and keys that must be refused."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="qilin-tls-")
        self.ca, self.ca_key = self.path("ca.pem"), self.path("ca.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj",
                "/CN=qilin test CA")
        self.cert, self.key = self.issue("server", "/CN=localhost", "rsa:2048", server=True)
        self.cert2, self.key2 = self.issue("server2", "/CN=localhost", "ec", server=True)
        self.client, self.client_key = self.issue("client", "/O=Example/CN=client", "ec")
        # A client certificate no trusted CA signed.
        self.stranger = self.path("stranger.pem")
        self.stranger_key = self.path("stranger.key")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.stranger_key, "-out", self.stranger, "-days", "2", "-subj",
                "/CN=stranger")
        self.encrypted = self.path("encrypted.key")
        openssl("pkey", "-in", self.key, "-aes256", "-passout", "pass:secret", "-out",
                self.encrypted)

    def path(self, name):
        return os.path.join(self.dir, name)

    def issue(self, name, subject, key_type, server=False):
        cert, key = self.path(name + ".pem"), self.path(name + ".key")
        csr = self.path(name + ".csr")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] \
            if key_type == "ec" else ["-newkey", key_type]
        openssl("req", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj", subject)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else
                    "extendedKeyUsage=clientAuth\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key

    def serial(self, pem_path):
        return openssl("x509", "-in", pem_path, "-noout", "-serial").decode().strip()

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def certs():
    """The module's certificates, made on first use (the harness runs no setUpModule)."""
    global CERTS
    if CERTS is None:
        CERTS = Certs()
        atexit.register(certs().close)
    return CERTS


class TlsCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not HAVE_TLS:
            raise unittest.SkipTest("qilin was built without TLS (no OpenSSL 3 at configure)")
        certs()


def client_context(cert=None, key=None):
    ctx = ssl.create_default_context(cafile=certs().ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def tls_args(cert=None, key=None):
    return ["--certfile", cert or certs().cert, "--keyfile", key or certs().key]


def tls_get(port, target, ctx=None):
    """One GET over a fresh TLS connection; returns the Response."""
    with Conn(port, tls=ctx or client_context()) as c:
        return c.request("GET", target)


def tls_environ(port, ctx=None):
    return json.loads(tls_get(port, "/environ", ctx).body.decode())


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", certs().ca] + list(args),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


class TlsTest(TlsCase):
    """What a client sees of a TLS listener, on each worker class."""

    def server(self, extra=(), workers=1, **kw):
        return Server(tls_args() + list(extra), workers=workers, **kw)

    def test_curl_keepalive_and_versions(self):
        access = os.path.join(certs().dir, "access-%s.log" % worker_class())
        fmt = "%(s)s %({wsgi.url_scheme}e)s %({HTTPS}e)s %({SSL_PROTOCOL}e)s %({SSL_CIPHER}e)s"
        with self.server(["--keep-alive", "10", "--access-logfile", access,
                          "--access-logformat", fmt]) as srv:
            self.assertIn("Listening at: https://127.0.0.1:%d" % srv.port, srv.log_text())
            url = "https://localhost:%d" % srv.port
            r = curl("-w", " %{http_code} %{num_connects} %{scheme}", url + "/", url + "/say?w=x")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.decode(), "hello 200 1 HTTPS" + "x 200 0 HTTPS")
            with Conn(srv.port, tls=client_context()) as c:
                self.assertEqual(c.request("GET", "/").body, b"hello")
                self.assertEqual(c.sock.version(), "TLSv1.3")
                cipher = c.sock.cipher()[0]
            self.assertTrue(cipher.startswith("TLS_"), cipher)
            # The access log's environ variables are the core's, whatever the app.
            with open(access) as f:
                self.assertEqual(f.readline().strip(), "200 https on TLSv1.3 %s" % cipher)
            # TLS 1.2 with the default ciphers: forward secret AEAD only.
            ctx = client_context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with Conn(srv.port, tls=ctx) as c:
                self.assertEqual(c.request("GET", "/").body, b"hello")
                self.assertEqual(c.sock.version(), "TLSv1.2")
                self.assertRegex(c.sock.cipher()[0], r"^ECDHE-RSA-(AES\d+-GCM|CHACHA20)")
                self.assertEqual(c.sock.selected_alpn_protocol(), None)
            ctx = client_context()
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with Conn(srv.port, tls=ctx) as c:
                self.assertEqual(c.sock.selected_alpn_protocol(), "http/1.1")
                self.assertEqual(c.request("GET", "/").body, b"hello")
            # Nothing below TLS 1.2.
            ctx = client_context()
            ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
            ctx.set_ciphers("ALL:@SECLEVEL=0")
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                Conn(srv.port, tls=ctx).close()

    def test_pipelining_and_large_bodies(self):
        big = os.urandom(8 << 20)
        path = os.path.join(certs().dir, "big-%s.bin" % worker_class())
        with open(path, "wb") as f:
            f.write(big)
        static = tempfile.mkdtemp(prefix="qilin-static-")
        shutil.copy(path, os.path.join(static, "big.bin"))
        self.addCleanup(shutil.rmtree, static, True)
        with self.server(["--keep-alive", "60", "--static-map", "/static=%s" % static]) as srv:
            with Conn(srv.port, tls=client_context(), timeout=30) as c:
                # 200 requests of 64 bytes in one record: the first read fills
                # the 8 KiB buffer with exactly 128 of them, and the rest stays
                # decrypted inside OpenSSL, which the socket no longer shows:
                # served at once, not when the idle connection's deadline comes.
                c.settimeout(IO_TIMEOUT)
                reqs = [b"GET /say?w=%03d HTTP/1.1\r\nHost: x\r\nX: " % i for i in range(200)]
                c.send(b"".join(r + b"y" * (60 - len(r)) + b"\r\n\r\n" for r in reqs))
                self.assertEqual([c.read_response().body for _ in range(200)],
                                 [b"%03d" % i for i in range(200)])
                c.settimeout(30)
                # Three requests in one write: three answers, in order.
                c.send(b"".join(b"GET /say?w=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                                for i in range(3)))
                self.assertEqual([c.read_response().body for _ in range(3)], [b"0", b"1", b"2"])
                upload = os.urandom(16 << 20)
                r = c.request("POST", "/echo", body=upload)
                self.assertEqual(r.status, 200)
                self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                                 hashlib.sha256(upload).hexdigest())
                for target in ("/file?path=%s" % path, "/static/big.bin"):
                    r = c.request("GET", target)
                    self.assertEqual(r.status, 200, target)
                    self.assertEqual(hashlib.sha256(r.body).hexdigest(),
                                     hashlib.sha256(big).hexdigest(), target)
                self.assertEqual(c.request("GET", "/").body, b"hello")

    def test_client_certificates(self):
        # cert_reqs 0, 1, 2 as gunicorn (Python's CERT_NONE, _OPTIONAL, _REQUIRED).
        with_cert = client_context(certs().client, certs().client_key)
        without = client_context()
        stranger = client_context(certs().stranger, certs().stranger_key)
        for reqs in ("0", "1", "2"):
            with self.subTest(cert_reqs=reqs):
                with self.server(["--ca-certs", certs().ca, "--cert-reqs", reqs]) as srv:
                    self.assertEqual(tls_get(srv.port, "/", with_cert).body, b"hello")
                    if reqs == "2":
                        # TLS 1.3 sends the refusal after the client's handshake: the
                        # first read fails.
                        with self.assertRaises((ssl.SSLError, ConnectionError,
                                                AssertionError)):
                            with Conn(srv.port, tls=without) as c:
                                c.request("GET", "/")
                    else:
                        self.assertEqual(tls_get(srv.port, "/", without).body, b"hello")
                    if reqs != "0":
                        with self.assertRaises((ssl.SSLError, ConnectionError,
                                                AssertionError)):
                            with Conn(srv.port, tls=stranger) as c:
                                c.request("GET", "/")
                    # The worker lived through the refusals.
                    self.assertEqual(tls_get(srv.port, "/", with_cert).body, b"hello")

    def test_session_resumed_on_another_worker(self):
        with self.server(workers=2) as srv:
            sess = os.path.join(certs().dir, "session-%s" % worker_class())
            first = self.s_client(srv.port, "-sess_out", sess)
            self.assertIn("New,", first)
            pid0 = self.pid_of(first)
            # Stopped, that worker accepts nothing: the next connection can
            # only go to the other one, whichever the kernel would have woken.
            os.kill(pid0, signal.SIGSTOP)
            try:
                out = self.s_client(srv.port, "-sess_in", sess)
            finally:
                os.kill(pid0, signal.SIGCONT)
            self.assertIn("Reused,", out)
            other = self.pid_of(out)
            self.assertNotEqual(other, pid0)

    @staticmethod
    def s_client(port, *args):
        r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", "localhost", "-CAfile", certs().ca, "-ign_eof"] +
                           list(args),
                           input=b"GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
        return r.stdout.decode("latin-1")

    @staticmethod
    def pid_of(out):
        m = re.search(r"\r\n\r\n(\d+)", out)
        if m is None:
            raise AssertionError("no /pid answer in s_client's output:\n" + out[-2000:])
        return int(m.group(1))

    def test_stalled_handshake_holds_no_worker(self):
        # One worker: a client that stops mid-ClientHello must not delay
        # another, and is closed (without an answer) at the header timeout.
        # A long keep-alive: only the handshake's own deadline can close it.
        with self.server(["--header-timeout", "2", "--keep-alive", "60"]) as srv:
            stalled = socket.create_connection(("127.0.0.1", srv.port), timeout=15)
            self.addCleanup(stalled.close)
            # A handshake record announcing 512 bytes, of which 9 arrive.
            stalled.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            time.sleep(0.2)
            with Conn(srv.port, tls=client_context()) as c:
                self.assertEqual(c.request("GET", "/").body, b"hello")
            self.assertEqual(stalled.recv(100), b"")
            self.assertEqual(tls_get(srv.port, "/").body, b"hello")

    def test_plain_http_garbage_and_resets(self):
        with self.server() as srv:
            pid = int(tls_get(srv.port, "/pid").body)
            # Plain HTTP: a plain answer that says why, then a clean close.
            with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                got = b""
                while True:
                    data = s.recv(4096)
                    if not data:
                        break
                    got += data
            self.assertTrue(got.startswith(b"HTTP/1.1 400 Bad Request\r\n"), got)
            self.assertIn(b"use https://", got)
            srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: TLS handshake failed: http"
                         r" request \(plain HTTP sent to the TLS port")
            # Garbage: closed, one line.
            with socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT) as s:
                s.sendall(b"\x16\x03\x01\x00\x05hello-this-is-not-tls" * 4)
                while s.recv(4096):
                    pass
            srv.wait_log(r"TLS handshake failed: (?!http)", count=1)
            # A complete request, then the TCP stream ends without close_notify
            # (a ragged EOF): answered all the same.
            c = Conn(srv.port, tls=client_context())
            c.send_request("GET", "/say?w=ragged")
            raw = socket.socket(fileno=os.dup(c.sock.fileno()))
            raw.shutdown(socket.SHUT_WR)
            raw.close()
            self.assertEqual(c.read_response().body, b"ragged")
            c.close()
            # A client that resets while a large answer is on its way.
            big = os.path.join(certs().dir, "reset-%s.bin" % worker_class())
            with open(big, "wb") as f:
                f.write(os.urandom(4 << 20))
            c = Conn(srv.port, tls=client_context())
            c.send_request("GET", "/file?path=%s" % big)
            c.sock.recv(1000)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            c.close()
            # The same worker serves on, and each bad client cost one line.
            self.assertEqual(int(tls_get(srv.port, "/pid").body), pid)
            self.assertEqual(len(re.findall("TLS handshake failed", srv.log_text())), 2,
                             srv.log_text())

    def test_proxy_protocol_header_before_the_handshake(self):
        # A proxy (HAProxy's send-proxy) sends the header in the clear, then
        # the client's TLS stream: alone, or in the same segment as the
        # ClientHello.
        v1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
        v2 = (b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + bytes([192, 0, 2, 7, 198, 51, 100, 2])
              + (56324).to_bytes(2, "big") + (443).to_bytes(2, "big"))
        with self.server(["--proxy-protocol", "auto"]) as srv:
            with Conn(srv.port, tls=client_context(), prelude=v1) as c:
                env = json.loads(c.request("GET", "/environ").body.decode())
            self.assertEqual((env["REMOTE_ADDR"], env["wsgi.url_scheme"]), ("192.0.2.1", "https"))
            env = json.loads(one_segment_request(srv.port, v2, b"GET /environ HTTP/1.1\r\n"
                                                 b"Host: x\r\nConnection: close\r\n\r\n"))
            self.assertEqual((env["REMOTE_ADDR"], env["wsgi.url_scheme"]), ("192.0.2.7", "https"))
            # auto: a client without a header is served too.
            self.assertEqual(tls_environ(srv.port)["REMOTE_ADDR"], "127.0.0.1")

    def test_hup_renews_the_certificate_under_load(self):
        live_cert = os.path.join(certs().dir, "live-%s.pem" % worker_class())
        live_key = os.path.join(certs().dir, "live-%s.key" % worker_class())
        shutil.copy(certs().cert, live_cert)
        shutil.copy(certs().key, live_key)
        with Server(tls_args(live_cert, live_key), workers=2) as srv:
            self.assertEqual(self.served_serial(srv.port), certs().serial(certs().cert))
            load = Load(srv.port)
            load.start()
            try:
                wait_for(lambda: load.ok >= 5, what="requests under load")
                old = set(srv.booted_pids())
                shutil.copy(certs().cert2, live_cert)
                shutil.copy(certs().key2, live_key)
                srv.send_signal(signal.SIGHUP)
                wait_for(lambda: len(set(srv.booted_pids()) - old) >= 2, timeout=30,
                         what="two new workers")
                srv.wait_workers(2, exclude=old, timeout=30)
                wait_for(lambda: set(srv.worker_pids()).isdisjoint(old), timeout=30,
                         what="the old workers to leave")
                n = load.ok
                wait_for(lambda: load.ok >= n + 5, what="requests after the reload")
            finally:
                load.stop()
            self.assertEqual(load.failures, [], "requests failed across HUP")
            self.assertEqual(self.served_serial(srv.port), certs().serial(certs().cert2))
            # A key that does not load keeps the certificate being served.
            with open(live_key, "w") as f:
                f.write("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
            old = set(srv.booted_pids())
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Reload: --keyfile '%s': no PEM private key could be read .*; serving"
                         r" with the current TLS certificate" % re.escape(live_key))
            wait_for(lambda: len(set(srv.booted_pids()) - old) >= 2, timeout=30,
                     what="two new workers")
            self.assertEqual(self.served_serial(srv.port), certs().serial(certs().cert2))

    @staticmethod
    def served_serial(port):
        with Conn(port, tls=client_context()) as c:
            der = c.sock.getpeercert(binary_form=True)
            pem = ssl.DER_cert_to_PEM_cert(der).encode()
        return openssl("x509", "-noout", "-serial", stdin=pem).decode().strip()


def one_segment_request(port, prelude, request):
    """PRELUDE and the ClientHello in one segment, then REQUEST (which asks
    for Connection: close) over the session; returns the response's body."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as s:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(prelude + outgoing.read())
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                s.sendall(outgoing.read())
                data = s.recv(65536)
                if not data:
                    raise AssertionError("the server closed during the handshake")
                incoming.write(data)
        tls.write(request)
        s.sendall(outgoing.read())
        response = b""
        while True:
            try:
                data = tls.read(65536)
                if not data:
                    break  # close_notify
                response += data
            except ssl.SSLWantReadError:
                data = s.recv(65536)
                if not data:
                    break
                incoming.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
    head, _, body = response.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200 "):
        raise AssertionError("unexpected response: %r" % response[:300])
    return body


class Load(threading.Thread):
    """Requests on fresh TLS connections, one after another, until stopped:
    how many succeeded, and what failed."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.ok = 0
        self.failures = []
        self.done = threading.Event()

    def run(self):
        ctx = client_context()
        while not self.done.is_set():
            try:
                with Conn(self.port, tls=ctx, timeout=10) as c:
                    r = c.request("GET", "/", headers=[("Connection", "close")])
                    if r.status != 200 or r.body != b"hello":
                        self.failures.append("%d %r" % (r.status, r.body[:100]))
                    else:
                        self.ok += 1
            except Exception as e:  # every failure is what the test counts
                self.failures.append(repr(e))

    def stop(self):
        self.done.set()
        self.join(30)


class TlsEnvironTest(TlsCase):
    """The connection's TLS variables in the WSGI environ (HTTPS, SSL_*,
    PROXY_ADDR), on each WSGI worker class: an ASGI scope has none."""

    def test_environ(self):
        # --cert-reqs 0: a client certificate is not asked for, so not seen.
        with Server(tls_args() + ["--ca-certs", certs().ca, "--cert-reqs", "0",
                                  "--proxy-protocol", "auto"]) as srv:
            env = tls_environ(srv.port)
            self.assertEqual(env["wsgi.url_scheme"], "https")
            self.assertEqual(env["HTTPS"], "on")
            self.assertEqual(env["SERVER_PORT"], str(srv.port))
            self.assertEqual(env["SSL_PROTOCOL"], "TLSv1.3")
            self.assertEqual(env["SSL_TLS_SNI"], "localhost")
            self.assertEqual(env["SSL_CLIENT_VERIFY"], "NONE")
            self.assertNotIn("SSL_CLIENT_S_DN", env)
            self.assertTrue(env["SSL_CIPHER"].startswith("TLS_"), env["SSL_CIPHER"])
            env = tls_environ(srv.port, client_context(certs().client, certs().client_key))
            self.assertEqual(env["SSL_CLIENT_VERIFY"], "NONE")
            ctx = client_context()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with Conn(srv.port, tls=ctx) as c:
                env = json.loads(c.request("GET", "/environ").body.decode())
                self.assertEqual(env["SSL_PROTOCOL"], "TLSv1.2")
                self.assertRegex(env["SSL_CIPHER"], r"^ECDHE-RSA-(AES\d+-GCM|CHACHA20)")
            v1 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"
            with Conn(srv.port, tls=client_context(), prelude=v1) as c:
                env = json.loads(c.request("GET", "/environ").body.decode())
            self.assertEqual((env["REMOTE_ADDR"], env["HTTPS"], env["PROXY_ADDR"]),
                             ("192.0.2.1", "on", "198.51.100.2"))

    def test_client_certificate_environ(self):
        # --cert-reqs 1; 2 sets the same variables (its refusals are TlsTest's).
        with Server(tls_args() + ["--ca-certs", certs().ca, "--cert-reqs", "1"]) as srv:
            env = tls_environ(srv.port, client_context(certs().client, certs().client_key))
            self.assertEqual(env["SSL_CLIENT_VERIFY"], "SUCCESS")
            self.assertEqual(env["SSL_CLIENT_S_DN"], "CN=client,O=Example")
            self.assertEqual(env["SSL_CLIENT_I_DN"], "CN=qilin test CA")
            self.assertIn("BEGIN CERTIFICATE", env["SSL_CLIENT_CERT"])
            self.assertEqual("serial=" + env["SSL_CLIENT_M_SERIAL"], certs().serial(certs().client))
            self.assertEqual(tls_environ(srv.port)["SSL_CLIENT_VERIFY"], "NONE")


per_worker_class(globals(), TlsTest)
per_worker_class(globals(), TlsEnvironTest, classes=WSGI_CLASSES)


class TlsConfigTest(TlsCase):
    """The settings from every source, and the errors a user can make: one
    line each, naming the setting and the fix."""

    def fails(self, args, env=None):
        r = run_qilin(args + ["--chdir", APPS, "testapp:app"], env=env)
        self.assertEqual(r.returncode, 1, r)
        lines = [l for l in r.output.splitlines() if l.strip()]
        self.assertEqual(len(lines), 1, r)
        return lines[0]

    def test_errors_name_the_setting_and_the_fix(self):
        missing = os.path.join(certs().dir, "none.pem")
        cases = [
            (["--certfile", missing], "Error: --certfile '%s': No such file or directory"
             % missing),
            (["--keyfile", certs().key], "needs --certfile"),
            (tls_args(key=certs().key2), "is not the key of the certificate in --certfile"),
            (tls_args(key=certs().encrypted), "is encrypted: qilin reads keys without a"
             " passphrase"),
            (tls_args(key=certs().ca), "no PEM private key could be read"),
            (tls_args() + ["--cert-reqs", "2"], "--cert-reqs 2 verifies client certificates:"
             " give the CAs that sign them with --ca-certs FILE"),
            (tls_args() + ["--ssl-min-version", "TLSv1"], "use TLSv1.2 or TLSv1.3"),
            (tls_args() + ["--ciphers", "NOPE"], "--ciphers 'NOPE' names no cipher"),
            (tls_args() + ["--ssl-ecdh-curve", "P-1"], "--ssl-ecdh-curve 'P-1'"),
        ]
        for args, text in cases:
            with self.subTest(args=args):
                self.assertIn(text, self.fails(args))
        # --check-config checks the same.
        r = run_qilin(tls_args(key=certs().key2) + ["--check-config", "--chdir", APPS,
                                                  "testapp:app"])
        self.assertEqual(r.returncode, 1, r)

    def write_conf(self, name, text):
        tmp = tempfile.mkdtemp(prefix="qilin-tlsconf-")
        self.addCleanup(shutil.rmtree, tmp, True)
        path = os.path.join(tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_every_source_turns_it_on(self):
        lua = self.write_conf("tls.lua", "certfile = %r\nkeyfile = %r\n"
                              "ssl_min_version = 'TLSv1.3'\n"
                              "ssl_ciphersuites = 'TLS_CHACHA20_POLY1305_SHA256'\n"
                              % (certs().cert, certs().key))
        py = self.write_conf("gunicorn.conf.py",
                             "certfile = %r\nkeyfile = %r\nssl_version = 2\n"
                             "ciphers = 'ECDHE-RSA-CHACHA20-POLY1305'\n"
                             "do_handshake_on_connect = True\n"
                             "suppress_ragged_eofs = False\n" % (certs().cert, certs().key))
        env = {"GUNICORN_CMD_ARGS": "--certfile %s --keyfile %s" % (certs().cert, certs().key)}
        for args, env_ in [(["-c", lua], None), (["-c", py], None), ([], env)]:
            with self.subTest(args=args, env=env_):
                with Server(args, env=env_) as srv:
                    with Conn(srv.port, tls=client_context()) as c:
                        self.assertEqual(c.request("GET", "/").body, b"hello")
                    if args and args[1] == py:
                        self.assertIn("ssl_version is ignored", srv.log_text() +
                                      srv.output_text())
                    # The protocol and cipher settings reach the context.
                    tls12 = client_context()
                    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
                    if args and args[1] == lua:
                        with Conn(srv.port, tls=client_context()) as c:
                            self.assertEqual(c.sock.cipher()[0], "TLS_CHACHA20_POLY1305_SHA256")
                        with self.assertRaises((ssl.SSLError, ConnectionError)):
                            Conn(srv.port, tls=tls12).close()
                    if args and args[1] == py:
                        with Conn(srv.port, tls=tls12) as c:
                            self.assertEqual(c.sock.cipher()[0], "ECDHE-RSA-CHACHA20-POLY1305")

    def test_ssl_context_hook_is_refused(self):
        py = self.write_conf("gunicorn.conf.py",
                             "def ssl_context(conf, default_ssl_context_factory):\n"
                             "    return default_ssl_context_factory()\n")
        line = self.fails(["-c", py])
        self.assertIn("setting 'ssl_context': qilin builds its TLS context in C", line)
        self.assertIn("--ciphers", line)


if __name__ == "__main__":
    unittest.main()
