"""Trusting a front proxy.

--forwarded-allow-ips: gunicorn's secure scheme headers set wsgi.url_scheme
only when the peer is trusted (addresses, CIDR networks, `*`, or
$FORWARDED_ALLOW_IPS when the option is unset); from any other peer they are
ignored, contradictions included. A bad value is one error line at startup.
REMOTE_ADDR stays the socket's peer, as in gunicorn, unless --real-ip takes
it from a trusted peer's Forwarded or X-Forwarded-For.

--proxy-protocol / --proxy-allow-from: a PROXY v1 or v2 header before a
connection's first request names the client, which the app sees as
REMOTE_ADDR/REMOTE_PORT (and the access log as %(h)s) for every request on
that connection; `auto` also takes plain HTTP. A header from a peer not
allowed is answered 403, a malformed one 400, both with one log line, a
closed connection and the worker unharmed. Run for every built worker class.
The flag alone is gunicorn's switch, auto (ProxySettings).
"""
import json
import os
import re
import socket
import struct
import sys
import time
import unittest

from qilintest import (APPS, ASGI_CLASS, WSGI_CLASSES, Conn, Server, built_worker_classes,
                       per_worker_class, run_qilin, wait_for, worker_built)
from test_ruby import HAVE_RUBY, RUBY_CLASSES, WHY as RUBY_WHY, rack_server

sys.path.insert(0, os.path.normpath(os.path.join(APPS, "..", "conformance")))
import runner  # noqa: E402

HTTPS = [("X-Forwarded-Proto", "https")]
CONFLICT = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")]


def scheme(srv, headers):
    resp = srv.get("/environ", headers=headers)
    assert resp.status == 200, resp
    return json.loads(resp.body)["wsgi.url_scheme"]


class ForwardedAllowIps(unittest.TestCase):
    def setUp(self):
        import tempfile
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_untrusted_peer_headers_ignored(self):
        with Server(["--forwarded-allow-ips", "10.0.0.0/8, 192.168.1.1"]) as srv:
            self.assertEqual(scheme(srv, HTTPS), "http")
            # Not trusted, so not read at all: no 400 for the contradiction.
            self.assertEqual(scheme(srv, CONFLICT), "http")

    def test_trusted_network(self):
        with Server(["--forwarded-allow-ips", "127.0.0.0/8"]) as srv:
            self.assertEqual(scheme(srv, HTTPS), "https")
            self.assertEqual(scheme(srv, [("X-Forwarded-Ssl", "on")]), "https")
            self.assertEqual(scheme(srv, []), "http")
            self.assertEqual(srv.get("/environ", headers=CONFLICT).status, 400)
            srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Contains contradictory scheme")

    def test_client_address_is_the_peer_by_default(self):
        # As in gunicorn: behind a proxy that does not set X-Forwarded-For
        # itself, a client must not choose its REMOTE_ADDR by sending one.
        access = os.path.join(self.tmp, "access.log")
        with Server(["--access-logfile", access]) as srv:
            for h in [("X-Forwarded-For", "203.0.113.7"), ("Forwarded", "for=203.0.113.7")]:
                env = json.loads(srv.get("/environ", headers=[h]).body)
                self.assertEqual((env["REMOTE_ADDR"], env["HTTP_" + h[0].upper().replace("-", "_")]),
                                 ("127.0.0.1", h[1]))
                self.assertNotEqual(env["REMOTE_PORT"], "")
            wait_for(lambda: open(access).read().count("127.0.0.1 - -") == 2, 10,
                     what="two access log lines with the peer's address")
            self.assertNotIn("203.0.113.7 - -", open(access).read())

    def test_client_address_from_trusted_proxy_only(self):
        # --real-ip, trusted peer: REMOTE_ADDR is the first untrusted hop from
        # the right of X-Forwarded-For (or Forwarded's for=), so a client cannot
        # choose it by sending its own header through the proxy; the access log
        # agrees.
        access = os.path.join(self.tmp, "access.log")
        with Server(["--real-ip", "--forwarded-allow-ips", "127.0.0.1", "--access-logfile",
                     access]) as srv:
            env = json.loads(srv.get("/environ", headers=[
                ("X-Forwarded-For", "6.6.6.6, 203.0.113.7")]).body)
            self.assertEqual(env["REMOTE_ADDR"], "203.0.113.7")
            env = json.loads(srv.get("/environ", headers=[
                ("Forwarded", 'for="[2001:db8::17]:4711";proto=https')]).body)
            self.assertEqual(env["REMOTE_ADDR"], "2001:db8::17")
            env = json.loads(srv.get("/environ").body)
            self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")
            wait_for(lambda: "203.0.113.7 - -" in open(access).read(), 10,
                     what="the forwarded address in the access log")
        with Server(["--real-ip", "--forwarded-allow-ips", "10.0.0.0/8"]) as srv:
            env = json.loads(srv.get("/environ", headers=[
                ("X-Forwarded-For", "203.0.113.7")]).body)
            self.assertEqual(env["REMOTE_ADDR"], "127.0.0.1")

    def test_star_trusts_everyone(self):
        with Server(["--forwarded-allow-ips", "*"]) as srv:
            self.assertEqual(scheme(srv, HTTPS), "https")

    def test_environment_variable_when_option_unset(self):
        with Server([], env={"FORWARDED_ALLOW_IPS": "10.1.2.3"}) as srv:
            self.assertEqual(scheme(srv, HTTPS), "http")
        with Server(["--forwarded-allow-ips", "127.0.0.1"],
                    env={"FORWARDED_ALLOW_IPS": "10.1.2.3"}) as srv:
            self.assertEqual(scheme(srv, HTTPS), "https")

    def test_bad_value_is_one_error_line(self):
        res = run_qilin(["-b", "127.0.0.1:0", "--chdir", "/", "--forwarded-allow-ips",
                         "127.0.0.1,bogus", "testapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("--forwarded-allow-ips: 'bogus' is not an IP address or network",
                      res.output)


# -- PROXY protocol ----------------------------------------------------------

INVALID_RX = r"Invalid request from ip=127\.0\.0\.1: "
V1 = b"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n"
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src="2001:db8::7", dst="::1", sport=4242, dport=443, command=1, tlvs=b""):
    """A v2 PROXY (COMMAND 1) or LOCAL (0) header over TCP, with TLVS appended."""
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    block = (socket.inet_pton(family, src) + socket.inet_pton(family, dst) +
             struct.pack("!HH", sport, dport) + tlvs)
    fam = 0x21 if family == socket.AF_INET6 else 0x11
    return V2_SIG + bytes([0x20 | command, fam]) + struct.pack("!H", len(block)) + block


def get(conn, path="/"):
    """One keep-alive GET on CONN; returns the app's JSON."""
    resp = conn.request("GET", path)
    assert resp.status == 200, (resp.status, resp.body[:300])
    return json.loads(resp.body)


def refused(test, srv, data, status):
    """Sends DATA on a fresh connection: STATUS (one of them, when a tuple),
    Connection: close, closed."""
    with Conn(srv.port) as c:
        c.send(data)
        resp = c.read_response()
        test.assertIn(resp.status, status if isinstance(status, tuple) else (status,),
                      resp.body[:200])
        test.assertEqual((resp.header("Connection") or "").lower(), "close")
        test.assertTrue(c.closed_by_peer())


class _ProxyTests:
    """The tests, mixed into one TestCase per built worker class below."""

    worker = None

    def server(self, args, app="echoapp:app"):
        return Server(["-k", self.worker] + args, app=app, workers=1,
                      env=runner.server_env(self.worker))

    def invalid_lines(self, srv):
        return len(re.findall(INVALID_RX, srv.log_text()))

    def test_v1_keepalive(self):
        with self.server(["--proxy-protocol", "v1"]) as srv:
            with Conn(srv.port) as c:
                c.send(V1)
                env = get(c, "/one")
                self.assertEqual(env["REMOTE_ADDR"], "192.0.2.1")
                pid = env["pid"]
                # The same connection keeps the header's client.
                env = get(c, "/two")
                self.assertEqual(env["REMOTE_ADDR"], "192.0.2.1")
                self.assertEqual(env["PATH_INFO"], "/two")
            # A fresh connection without a header is refused in v1 mode.
            before = self.invalid_lines(srv)
            refused(self, srv, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400)
            srv.wait_log(INVALID_RX + r"No PROXY protocol v1 header", count=1)
            self.assertEqual(self.invalid_lines(srv), before + 1)
            with Conn(srv.port) as c:
                c.send(V1)
                self.assertEqual(get(c)["pid"], pid, "the worker was replaced")

    def test_remote_port_and_access_log(self):
        with self.server(["--proxy-protocol", "auto", "--access-logfile", "-"],
                         app="testapp:app") as srv:
            with Conn(srv.port) as c:
                c.send(V1)
                env = get(c, "/environ")
                self.assertEqual((env["REMOTE_ADDR"], env["REMOTE_PORT"]),
                                 ("192.0.2.1", "56324"))
            with Conn(srv.port) as c:
                c.send(v2_header("203.0.113.5", "10.0.0.1", 1234, 80))
                env = get(c, "/environ")
                self.assertEqual((env["REMOTE_ADDR"], env["REMOTE_PORT"]),
                                 ("203.0.113.5", "1234"))
            # %(h)s is the header's client, not the proxy.
            for client in ("192.0.2.1", "203.0.113.5"):
                wait_for(lambda: "\n%s - - [" % client in "\n" + srv.output_text(),
                         what="an access log line for %s" % client)
            self.assertNotIn("\n127.0.0.1 - - [", "\n" + srv.output_text())

    def test_v2(self):
        with self.server(["--proxy-protocol", "v2"]) as srv:
            with Conn(srv.port) as c:
                # TLVs (here PP2_TYPE_AUTHORITY) are skipped.
                c.send(v2_header(tlvs=b"\x02\x00\x07example"))
                self.assertEqual(get(c)["REMOTE_ADDR"], "2001:db8::7")
                self.assertEqual(get(c)["REMOTE_ADDR"], "2001:db8::7")
            with Conn(srv.port) as c:
                # LOCAL: the proxy's own check keeps the socket's peer.
                c.send(v2_header(command=0))
                self.assertEqual(get(c)["REMOTE_ADDR"], "127.0.0.1")
            refused(self, srv, V1 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400)

    def test_auto_with_and_without_header(self):
        with self.server(["--proxy-protocol", "auto"]) as srv:
            with Conn(srv.port) as c:
                self.assertEqual(get(c)["REMOTE_ADDR"], "127.0.0.1")
                # Only the first request may carry a header: later, "PROXY" is
                # a method whose request line is malformed (400), never a client.
                c.send(V1)
                resp = c.request("GET", "/")
                self.assertEqual(resp.status, 400)
                self.assertTrue(c.closed_by_peer())
            with Conn(srv.port) as c:
                c.send(V1)
                self.assertEqual(get(c)["REMOTE_ADDR"], "192.0.2.1")
            with Conn(srv.port) as c:
                c.send(v2_header())
                self.assertEqual(get(c)["REMOTE_ADDR"], "2001:db8::7")
            with Conn(srv.port) as c:
                c.send(b"PROXY UNKNOWN\r\n")
                self.assertEqual(get(c)["REMOTE_ADDR"], "127.0.0.1")

    def test_split_header_does_not_block_the_worker(self):
        with self.server(["--proxy-protocol", "auto"]) as srv:
            header = v2_header("198.51.100.9", "10.0.0.1", 999, 80)
            with Conn(srv.port) as slow:
                slow.send(V1[:9])
                # The one worker serves others while the header is incomplete.
                with Conn(srv.port) as other:
                    self.assertEqual(get(other)["REMOTE_ADDR"], "127.0.0.1")
                time.sleep(0.2)
                slow.send(V1[9:30])
                time.sleep(0.2)
                slow.send(V1[30:] + b"GET / HTT")
                slow.send(b"P/1.1\r\nHost: x\r\n\r\n")
                env = json.loads(slow.read_response().body)
                self.assertEqual(env["REMOTE_ADDR"], "192.0.2.1")
            with Conn(srv.port) as slow:
                for i in range(0, len(header), 5):
                    slow.send(header[i:i + 5])
                    time.sleep(0.02)
                self.assertEqual(get(slow)["REMOTE_ADDR"], "198.51.100.9")

    def test_untrusted_peer_is_403(self):
        with self.server(["--proxy-protocol", "auto", "--proxy-allow-from", "10.0.0.1"]) as srv:
            with Conn(srv.port) as c:
                pid = get(c)["pid"]  # plain HTTP is still fine in auto
            for data in (V1, v2_header(), b"PROXY garbage\r\n"):
                before = self.invalid_lines(srv)
                refused(self, srv, data + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 403)
                srv.wait_log(INVALID_RX + r"Proxy request from 127\.0\.0\.1 not allowed",
                             count=before + 1)
                self.assertEqual(self.invalid_lines(srv), before + 1)
            with Conn(srv.port) as c:
                self.assertEqual(get(c)["pid"], pid, "the worker was replaced")

    def test_malformed_is_400_and_worker_survives(self):
        bad = (b"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",
               b"PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n",
               b"PROXY TCP4 192.0.2.1 198.51.100.7 1 99999\r\n",
               b"PROXY " + b"x" * 120,
               V2_SIG + b"\x22\x11\x00\x0c" + b"\x00" * 12,
               V2_SIG + b"\x21\x12\x00\x0c" + b"\x00" * 12,
               V2_SIG + b"\x21\x11\x08\x01")
        with self.server(["--proxy-protocol", "auto"]) as srv:
            with Conn(srv.port) as c:
                pid = get(c)["pid"]
            for data in bad:
                before = self.invalid_lines(srv)
                refused(self, srv, data, 400)
                srv.wait_log(INVALID_RX + r"(Invalid PROXY|Invalid PROXY v2)", count=before + 1)
                self.assertEqual(self.invalid_lines(srv), before + 1, data)
            with Conn(srv.port) as c:
                c.send(V1)
                env = get(c)
                self.assertEqual((env["pid"], env["REMOTE_ADDR"]), (pid, "192.0.2.1"))

    def test_off_by_default(self):
        with self.server([]) as srv:
            # Without --proxy-protocol a header is a request line with the
            # method "PROXY" and no valid version (400), and nobody's address.
            refused(self, srv, V1 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400)


class _ProxyEnvironTests:
    """The WSGI side, mixed in for the WSGI worker classes: gunicorn's environ keys."""

    def test_proxy_environ_keys(self):
        # gunicorn's PROXY_PROTOCOL, PROXY_ADDR, PROXY_PORT: the protocol and
        # the address the client reached, for every request on the connection.
        keys = ("PROXY_PROTOCOL", "PROXY_ADDR", "PROXY_PORT")
        with self.server(["--proxy-protocol", "auto"], app="testapp:app") as srv:
            with Conn(srv.port) as c:
                c.send(V1)
                for path in ("/environ/1", "/environ/2"):
                    env = get(c, path)
                    self.assertEqual([env.get(k) for k in keys],
                                     ["TCP4", "198.51.100.7", "443"])
            with Conn(srv.port) as c:
                c.send(v2_header("203.0.113.5", "10.0.0.1", 1234, 8080))
                env = get(c, "/environ")
                self.assertEqual([env.get(k) for k in keys], ["TCP4", "10.0.0.1", "8080"])
            with Conn(srv.port) as c:
                c.send(v2_header())
                env = get(c, "/environ")
                self.assertEqual([env.get(k) for k in keys], ["TCP6", "::1", "443"])
            # No header, and headers that name no client: none of the keys.
            for data in (b"", b"PROXY UNKNOWN\r\n", v2_header(command=0)):
                with Conn(srv.port) as c:
                    c.send(data)
                    env = get(c, "/environ")
                    self.assertEqual([k for k in keys if k in env], [], data)


for _worker in built_worker_classes():
    _bases = (_ProxyTests,) + ((_ProxyEnvironTests,) if _worker in WSGI_CLASSES else ())
    globals()["Proxy_%s" % _worker] = type("Proxy_%s" % _worker, _bases + (unittest.TestCase,),
                                           {"worker": _worker})
del _worker, _bases


class ProxySettings(unittest.TestCase):
    def test_bare_flag_before_the_app_is_gunicorns_switch(self):
        # "qilin --proxy-protocol echoapp:app": the flag alone is auto, the
        # app spec stays the app; a v1 header and plain HTTP are both served.
        with Server(["--proxy-protocol"], app="echoapp:app", workers=1) as srv:
            with Conn(srv.port) as c:
                c.send(V1)
                self.assertEqual(get(c)["REMOTE_ADDR"], "192.0.2.1")
            with Conn(srv.port) as c:
                self.assertEqual(get(c)["REMOTE_ADDR"], "127.0.0.1")

    def test_print_config_shows_the_mode(self):
        for args, env, mode in (
                (["testapp:app", "--proxy-protocol"], None, "auto"),
                (["--proxy-protocol", "-w", "2", "testapp:app"], None, "auto"),
                (["--proxy-protocol", "v2", "testapp:app"], None, "v2"),
                (["--proxy-protocol=v1", "testapp:app"], None, "v1"),
                (["testapp:app"], {"GUNICORN_CMD_ARGS": "--proxy-protocol"}, "auto"),
                (["testapp:app"], {"QILIN_CMD_ARGS": "--proxy-protocol off"}, "off")):
            res = run_qilin(["--print-config"] + args, env=env)
            self.assertEqual(res.returncode, 0, res)
            self.assertRegex(res.stdout, r"(?m)^proxy_protocol +=  ?'?%s'?$" % mode, args)
            self.assertRegex(res.stdout, r"(?m)^wsgi_app +=  ?'?testapp:app'?$", args)

    def test_bad_mode_is_one_error_line(self):
        want = ("--proxy-protocol: invalid value 'v3' (expected one of: off, v1, v2, auto;"
                " or true, false)")
        for args in (["--proxy-protocol", "v3", "testapp:app"],
                     ["--proxy-protocol=v3", "testapp:app"]):
            res = run_qilin(["-b", "127.0.0.1:0", "--chdir", "/"] + args)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn(want, res.output)
            self.assertEqual(res.output.count("invalid value"), 1)

    def test_bad_allow_from_is_one_error_line(self):
        res = run_qilin(["-b", "127.0.0.1:0", "--chdir", "/", "--proxy-protocol", "v1",
                         "--proxy-allow-from", "10.0.0.1,bogus", "testapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("--proxy-allow-from: 'bogus' is not an IP address or network", res.output)


class _HeaderMapTests:
    """Header names with '_' (gunicorn's header_map and forwarder_headers),
    mixed into one TestCase per kind of app below: X_Forwarded_For would
    share HTTP_X_FORWARDED_FOR with X-Forwarded-For in a WSGI environ or a
    Rack env (and in ASGI apps that make such keys of the scope's names), so
    by default such headers are dropped; refuse answers 400 before the app
    runs; dangerous keeps them; a trusted proxy's forwarder_headers
    (SCRIPT_NAME, PATH_INFO) pass whatever the mode.

    A kind says how to start its server (server), what its app saw of a
    request's headers (seen: {key: value}, repeated keys joined with ','),
    which key header NAME has there (key), what its /raise, which raises as
    soon as the app runs, logs (RAISED), and what it sees of X-Foo: 2 and
    X_Foo: 1 under --header-map dangerous (DANGEROUS)."""

    RAISED = None
    DANGEROUS = None

    def server(self, args):
        raise NotImplementedError

    def seen(self, srv, headers):
        raise NotImplementedError

    def key(self, name):
        """NAME's CGI-style key, as in a WSGI environ or a Rack env."""
        return "HTTP_" + name.upper().replace("-", "_")

    def view(self, srv, headers, *names):
        """What the app saw of the headers NAMES in a request with HEADERS."""
        keys = {self.key(n) for n in names}
        return {k: v for k, v in self.seen(srv, headers).items() if k in keys}

    def test_drop_by_default(self):
        with self.server([]) as srv:
            self.assertEqual(self.view(srv, [("X_Foo", "1"), ("X-Foo", "2"),
                                             ("X_Forwarded_For", "6.6.6.6")],
                                       "X_Foo", "X-Foo", "X_Forwarded_For", "X-Forwarded-For"),
                             {self.key("X-Foo"): "2"})

    def test_forwarder_headers_from_a_trusted_peer(self):
        with self.server([]) as srv:   # 127.0.0.1 is trusted by default, as in gunicorn
            # Remote_User is not in forwarder_headers, so dropped all the same.
            self.assertEqual(self.view(srv, [("Path_Info", "/p"), ("Remote_User", "x")],
                                       "Path_Info", "Remote_User"),
                             {self.key("Path_Info"): "/p"})

    def test_forwarder_headers_from_an_untrusted_peer_are_dropped(self):
        with self.server(["--forwarded-allow-ips", "10.0.0.1"]) as srv:
            self.assertEqual(self.view(srv, [("Path_Info", "/p")], "Path_Info"), {})

    def test_forwarder_headers_list(self):
        with self.server(["--forwarder-headers", "REMOTE_USER"]) as srv:
            self.assertEqual(self.view(srv, [("Remote_User", "alice"), ("Path_Info", "/p")],
                                       "Remote_User", "Path_Info"),
                             {self.key("Remote_User"): "alice"})

    def test_refuse(self):
        with self.server(["--header-map", "refuse"]) as srv:
            # Had the app run, /raise would be a 500 and a traceback.
            self.assertEqual(srv.get("/raise", headers=[("X_Foo", "1")]).status, 400)
            srv.wait_log(r"Invalid request from ip=127\.0\.0\.1: Invalid header name 'X_Foo':"
                         r" '_' is refused \(--header-map refuse\)")
            self.assertEqual(self.view(srv, [("X-Foo", "2")], "X-Foo"), {self.key("X-Foo"): "2"})
            self.assertNotIn(self.RAISED, srv.log_text())
            self.assertEqual(srv.get("/raise", headers=[("X-Foo", "1")]).status, 500)
            srv.wait_log(re.escape(self.RAISED))

    def test_dangerous(self):
        with self.server(["--header-map", "dangerous"]) as srv:
            self.assertEqual(self.view(srv, [("X-Foo", "2"), ("X_Foo", "1")], "X-Foo", "X_Foo"),
                             self.DANGEROUS)


class HeaderMapTest(_HeaderMapTests, unittest.TestCase):
    """On a WSGI app (testapp), on each WSGI worker class; SCRIPT_NAME from a
    trusted proxy also sets the WSGI SCRIPT_NAME."""

    RAISED = "boom from testapp"
    DANGEROUS = {"HTTP_X_FOO": "2,1"}

    def server(self, args):
        return Server(args)

    def env(self, srv, target="/environ", headers=()):
        resp = srv.get(target, headers=list(headers))
        self.assertEqual(resp.status, 200, resp)
        return json.loads(resp.body)

    def seen(self, srv, headers):
        return self.env(srv, headers=headers)

    def test_script_name_sets_script_name_from_a_trusted_peer_only(self):
        with self.server([]) as srv:
            env = self.env(srv, "/mnt/environ", [("SCRIPT_NAME", "/mnt")])
            self.assertEqual((env["SCRIPT_NAME"], env["PATH_INFO"]), ("/mnt", "/environ"))
        for args in (["--forwarded-allow-ips", "10.0.0.1"], ["--forwarder-headers", "REMOTE_USER"]):
            with self.server(args) as srv:
                env = self.env(srv, headers=[("Script_Name", "/mnt")])
                self.assertEqual((env["SCRIPT_NAME"], env.get("HTTP_SCRIPT_NAME")), ("", None),
                                 args)


@unittest.skipUnless(worker_built(ASGI_CLASS), "the asyncio worker plugin is not built")
class HeaderMapAsgiTest(_HeaderMapTests, unittest.TestCase):
    """On an ASGI app (asgiapp's /scope): the scope's header names are the
    names sent, in lower case, '_' and all."""

    RAISED = "boom before the response"
    DANGEROUS = {"x-foo": "2", "x_foo": "1"}

    def server(self, args):
        return Server(["-k", ASGI_CLASS] + args, app="asgiapp:app")

    def key(self, name):
        return name.lower()

    def seen(self, srv, headers):
        resp = srv.get("/scope", headers=headers)
        self.assertEqual(resp.status, 200, resp)
        out = {}
        for name, value in json.loads(resp.body)["headers"]:
            out[name] = out[name] + "," + value if name in out else value
        return out


@unittest.skipUnless(HAVE_RUBY, RUBY_WHY)
class HeaderMapRackTest(_HeaderMapTests, unittest.TestCase):
    """On a Rack app (tests/apps/rack/config.ru's /env, under Rack::Lint)."""

    RAISED = "boom before the answer"
    DANGEROUS = {"HTTP_X_FOO": "2,1"}

    def server(self, args):
        return rack_server(args)

    def seen(self, srv, headers):
        resp = srv.get("/env", headers=headers)
        self.assertEqual(resp.status, 200, resp)
        self.assertNotIn("LintError", srv.log_text())
        return dict(line.split("=", 1) for line in resp.text.split("\n"))


class HeaderMapSettings(unittest.TestCase):
    def test_bad_value_is_one_error_line(self):
        res = run_qilin(["-b", "127.0.0.1:0", "--chdir", APPS, "--header-map", "keep",
                         "testapp:app"])
        self.assertNotEqual(res.returncode, 0)
        self.assertIn("invalid --header-map 'keep': use drop, refuse or dangerous", res.output)


per_worker_class(globals(), HeaderMapTest, classes=WSGI_CLASSES)
per_worker_class(globals(), HeaderMapRackTest, classes=RUBY_CLASSES)


if __name__ == "__main__":
    unittest.main()
