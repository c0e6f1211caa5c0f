"""ASGI on -k asyncio: the scope, receive() and send() through the core's request path,
concurrency, disconnects, backpressure, lifespan, interface errors, and real frameworks
(Starlette, FastAPI, Django's ASGI handler)."""
import asyncio
import importlib.util
import json
import os
import shutil
import socket
import tempfile
import time
import unittest

from qilintest import (IO_TIMEOUT, Conn, Server, build_request, green_asan_env, run_qilin,
                       wait_for, worker_built)
from test_gevent import concurrent_get, parse_status


def installed(module):
    return importlib.util.find_spec(module) is not None


def asyncio_server(args=(), app="asgiapp:app", env=None, **kw):
    return Server(["-k", "asyncio"] + list(args), app=app, env=green_asan_env("asyncio", env),
                  **kw)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@unittest.skipUnless(worker_built("asyncio"), "the asyncio worker plugin is not built")
class AsgiHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = asyncio_server(["--root-path", "/api", "--keep-alive", "5"])

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_hello_with_lifespan_state(self):
        r = self.srv.get("/")
        self.assertEqual(r.status, 200)
        pid = self.srv.worker_pids()[0]
        self.assertEqual(r.text, "hello started=%d root=/api" % pid)
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))

    def test_scope(self):
        r = self.srv.get("/scope?a=1&b=%20x", headers=[("X-Custom", "Value"), ("Host", "h:1")])
        s = json.loads(r.body)
        self.assertEqual(s["type"], "http")
        self.assertEqual(s["asgi"]["version"], "3.0")
        self.assertEqual(s["http_version"], "1.1")
        self.assertEqual(s["method"], "GET")
        self.assertEqual(s["scheme"], "http")
        self.assertEqual(s["path"], "/scope")
        self.assertEqual(s["raw_path"], "/scope")
        self.assertEqual(s["query_string"], "a=1&b=%20x")
        self.assertEqual(s["root_path"], "/api")
        self.assertEqual(s["server"], ["127.0.0.1", self.srv.port])
        self.assertEqual(s["client"][0], "127.0.0.1")
        self.assertIsInstance(s["client"][1], int)
        self.assertIn(["x-custom", "Value"], s["headers"])
        self.assertIn(["host", "h:1"], s["headers"])
        self.assertIn("http.response.pathsend", s["extensions"])

    def test_path_is_decoded_utf8_and_raw_path_is_not(self):
        s = json.loads(self.srv.get("/scope/%C3%B6/%2F").body)
        self.assertEqual(s["path"], "/scope/\u00f6//")
        self.assertEqual(s["raw_path"], "/scope/%C3%B6/%2F")

    def test_http10(self):
        with Conn(self.srv.port) as c:
            r = c.request("GET", "/", version="HTTP/1.0")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.text.startswith("hello"))

    def test_keepalive_many_requests_one_connection(self):
        with Conn(self.srv.port) as c:
            for i in range(50):
                r = c.request("POST", "/echo", body=b"n%d" % i)
                self.assertEqual(r.body, b"n%d" % i)

    def test_pipelined(self):
        with Conn(self.srv.port) as c:
            c.send(build_request("GET", "/") * 3 + build_request("POST", "/echo", body=b"last"))
            bodies = [c.read_response().body for _ in range(4)]
        self.assertEqual(bodies[3], b"last")
        self.assertTrue(all(b.startswith(b"hello") for b in bodies[:3]))

    def test_large_upload_streams_in_messages(self):
        body = os.urandom(5 * 1024 * 1024)
        r = self.srv.request("POST", "/echo", body=body, timeout=30)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, body)
        self.assertGreater(int(r.header("X-Messages")), 1)

    def test_chunked_upload(self):
        with Conn(self.srv.port) as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            r = c.read_response()
        self.assertEqual(r.body, b"hello world")

    def test_streaming_response_is_chunked(self):
        r = self.srv.get("/stream?n=20")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Transfer-Encoding"), "chunked")
        self.assertEqual(len(r.body), 20 * 1024)
        self.assertTrue(r.body.startswith(b"0000x") and b"0019x" in r.body)

    def test_head_has_no_body(self):
        with Conn(self.srv.port) as c:
            r = c.request("HEAD", "/")
            self.assertEqual(r.body, b"")
            self.assertEqual(c.request("GET", "/").status, 200)

    def test_pathsend(self):
        r = self.srv.get("/pathsend")
        with open(os.path.join(os.environ["QILIN_TEST_APPS"], "asgiapp.py"), "rb") as f:
            self.assertEqual(r.body, f.read())
        self.assertEqual(r.header("Content-Length"), str(len(r.body)))

    def test_exception_before_start_is_500_with_traceback(self):
        r = self.srv.get("/raise")
        self.assertEqual(r.status, 500)
        self.srv.wait_log(r"Exception in ASGI application(.|\n)*boom before the response")
        self.assertEqual(self.srv.get("/").status, 200)

    def test_exception_after_start_closes(self):
        with Conn(self.srv.port) as c:
            c.send(build_request("GET", "/raise-late"))
            self.assertEqual(c.read_head()[1], 200)
            self.assertIn(b"partial", c.read_to_eof())
        self.srv.wait_log(r"boom after the response started")

    def test_no_response_is_500(self):
        self.assertEqual(self.srv.get("/noresponse").status, 500)
        self.srv.wait_log(r"ASGI callable returned without starting response")

    def test_start_without_body_is_500(self):
        # The head waits for the first body message, so it can still be a 500.
        self.assertEqual(self.srv.get("/halfresponse").status, 500)
        self.srv.wait_log(r"ASGI callable returned without completing response")

    def test_bad_header_is_500(self):
        r = self.srv.get("/badheader")
        self.assertEqual(r.status, 500)
        self.srv.wait_log(r"Invalid ASGI response")

    def test_background_work_after_response(self):
        self.srv.get("/events?reset")
        t0 = time.monotonic()
        r = self.srv.get("/background")
        self.assertEqual(r.text, "answered")
        events = wait_for(lambda: [e for e in self.srv.get("/events").text.split("\n")
                                   if e.startswith("background-done")], 5)
        self.assertGreater(float(events[0].split()[1]), t0)

    def test_send_after_the_last_body_raises_in_the_app(self):
        """The last body is taken at once and written on the loop's next pass;
        a send() after it is the app's error, and the answer is intact."""
        self.srv.get("/events?reset")
        r = self.srv.get("/send-after-end")
        self.assertEqual((r.status, r.text), (200, "answered once"))
        self.assertEqual(self.srv.get("/").status, 200)
        events = wait_for(lambda: [e for e in self.srv.get("/events").text.split("\n")
                                   if e.startswith("send-after-end")], 5)
        self.assertEqual(events, ["send-after-end: Unexpected ASGI message "
                                  "'http.response.body' sent, after response already completed."])

    def test_malformed_request_is_400_and_worker_survives(self):
        with Conn(self.srv.port) as c:
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            self.assertEqual(c.read_response().status, 400)
        self.assertEqual(self.srv.get("/").status, 200)


@unittest.skipUnless(worker_built("asyncio"), "the asyncio worker plugin is not built")
class AsgiConcurrencyTest(unittest.TestCase):
    def test_500_sleeping_requests_overlap(self):
        with asyncio_server(["--worker-connections", "1000", "--backlog", "1024"]) as srv:
            srv.get("/overlap?reset")
            raw = concurrent_get(srv.port, "/sleep?s=0.2", 500, timeout=60)
            self.assertEqual([parse_status(r) for r in raw], [200] * 500)
            # The app counts requests in flight: all 500 slept at the same time.
            self.assertEqual(srv.get("/overlap").text, "500")

    def test_disconnect_while_waiting_reaches_the_app(self):
        with asyncio_server() as srv:
            srv.get("/events?reset")
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
            s.sendall(build_request("POST", "/wait-disconnect", body=b"abc"))
            time.sleep(0.3)
            s.close()
            wait_for(lambda: "wait-disconnect:http.disconnect" in srv.get("/events").text, 10)

    def test_disconnect_mid_body_reaches_the_app(self):
        with asyncio_server() as srv:
            srv.get("/events?reset")
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
            # Larger than the core reads ahead before calling the app (SERVE_PREREAD_MAX).
            s.sendall(b"POST /wait-disconnect HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 10000000\r\n\r\n" + b"p" * 100000)
            time.sleep(0.3)
            s.close()
            # body_of() raises when receive() says http.disconnect mid-body.
            srv.wait_log(r"client went away")
            self.assertEqual(srv.get("/").status, 200)

    def test_slow_reader_slows_send_and_memory_stays_flat(self):
        with asyncio_server() as srv:
            pid = srv.worker_pids()[0]
            srv.get("/events?reset")
            before = rss_kib(pid)
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=IO_TIMEOUT)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            s.sendall(build_request("GET", "/flood?mib=64"))
            time.sleep(1.0)
            sent = int(srv.get("/events?last").text.split(":")[1])
            # 64 MiB is 1024 pieces; unread, at most the socket buffers' worth left.
            self.assertLess(sent, 200)
            self.assertLess(rss_kib(pid) - before, 16 * 1024)
            got = 0
            while True:
                data = s.recv(1 << 20)
                if not data or got > 64 * 1048576:
                    break
                got += len(data)
                if b"\r\n\r\n" in data[:4096] and got == len(data):
                    got -= data.index(b"\r\n\r\n") + 4
                if got >= 64 * 1048576:
                    break
            s.close()
            self.assertEqual(got, 64 * 1048576)
            wait_for(lambda: srv.get("/events?last").text == "flood:1024", 10)


@unittest.skipUnless(worker_built("asyncio"), "the asyncio worker plugin is not built")
class AsgiLifecycleTest(unittest.TestCase):
    def test_failed_startup_stops_the_server_with_the_apps_message(self):
        r = run_qilin(["-k", "asyncio", "-b", "127.0.0.1:0", "asgiapp:app"],
                      env=green_asan_env("asyncio", {"ASGIAPP_STARTUP_FAIL": "no database"}))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Application startup failed: no database", r.output)
        self.assertIn("Worker failed to boot", r.output)

    def test_shutdown_runs_on_term_and_hup(self):
        note = tempfile.mktemp(prefix="qilin-asgi-")
        env = {"ASGIAPP_SHUTDOWN_NOTE": note}
        try:
            srv = asyncio_server(env=env)
            first = srv.worker_pids()[0]
            srv.send_signal(1)  # HUP: a new worker; the old one shuts down
            wait_for(lambda: os.path.exists(note) and
                     ("shutdown %d" % first) in open(note).read(), 15)
            srv.wait_workers(1, exclude=(first,))
            second = srv.worker_pids()[0]
            srv.stop()
            self.assertIn("shutdown %d" % second, open(note).read())
        finally:
            if os.path.exists(note):
                os.unlink(note)

    def test_lifespan_off(self):
        with asyncio_server(["--asgi-lifespan", "off"]) as srv:
            self.assertEqual(srv.get("/").text, "hello started=None root=")

    def test_asgi2_interface(self):
        with asyncio_server(["--interface", "asgi2", "--asgi-lifespan", "off"],
                            app="asgiapp:Legacy") as srv:
            self.assertEqual(srv.request("POST", "/echo", body=b"v2").body, b"v2")

    def test_uvicorn_and_gunicorn_names(self):
        for name in ("uvicorn.workers.UvicornWorker", "asgi"):
            with Server(["-k", name], app="asgiapp:app",
                        env=green_asan_env("asyncio")) as srv:
                self.assertEqual(srv.get("/").status, 200)

    def test_stdlib_loop(self):
        with asyncio_server(["--asgi-loop", "asyncio"]) as srv:
            self.assertEqual(srv.request("POST", "/echo", body=b"x" * 100000).body,
                             b"x" * 100000)
            srv.stop()
        self.assertNotIn("Traceback", srv.log_text())

    def test_stats_count_asgi_requests_and_sockets(self):
        tmp = tempfile.mkdtemp(prefix="qilin-asgi-stats-")
        sock = os.path.join(tmp, "stats.sock")

        def stats():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(sock)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            s.close()
            return json.loads(data.partition(b"\r\n\r\n")[2])

        try:
            with asyncio_server(["--stats", "unix:" + sock], workers=2) as srv:
                pids = srv.wait_workers(2)
                for _ in range(6):
                    self.assertEqual(srv.get("/").status, 200)

                def counted(n):
                    # "booting" until a worker has loaded the app.
                    doc = stats()
                    if {w["state"] for w in doc["workers"]} != {"serving"}:
                        return None
                    return doc if sum(w["requests"] for w in doc["workers"]) >= n else None

                doc = wait_for(lambda: counted(6), 20, what="the stats to count 6 requests")
                self.assertEqual(sorted(w["pid"] for w in doc["workers"]), pids)
                # A WebSocket counts as one request once it has ended.
                ws, head = ws_handshake(srv.port)
                self.assertTrue(head.startswith(b"HTTP/1.1 101"))
                ws.close()
                wait_for(lambda: counted(7), 20, what="the stats to count the WebSocket")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_wsgi_app_on_asyncio_is_one_clear_error(self):
        r = run_qilin(["-k", "asyncio", "-b", "127.0.0.1:0", "testapp:app"],
                      env=green_asan_env("asyncio"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'testapp:app' is a WSGI application, which -k asyncio cannot serve",
                      r.output)

    def test_asgi_app_on_sync_is_one_clear_error(self):
        r = run_qilin(["-b", "127.0.0.1:0", "asgiapp:app"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("'asgiapp:app' is an ASGI application, which this worker class cannot"
                      " serve: run it with -k asyncio", r.output)

    def test_bad_asgi_settings(self):
        for args, want in ((["--asgi-loop", "tokio"], "--asgi-loop 'tokio' is not one of"),
                           (["--interface", "rsgi"], "--interface 'rsgi' is not one of"),
                           (["--asgi-lifespan", "maybe"], "--asgi-lifespan 'maybe' is not one")):
            r = run_qilin(["-k", "asyncio", "-b", "127.0.0.1:0"] + args + ["asgiapp:app"],
                          env=green_asan_env("asyncio"))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(want, r.output)


@unittest.skipUnless(worker_built("asyncio") and installed("starlette"),
                     "needs the asyncio worker and python3-starlette")
class StarletteTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = asyncio_server(app="starletteapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_lifespan_state_and_routing(self):
        self.assertEqual(self.srv.get("/").text, "hi from lifespan")
        r = self.srv.get("/items/42?q=x")
        self.assertEqual(json.loads(r.body), {"id": 42, "q": "x"})
        self.assertEqual(self.srv.get("/items/nope").status, 404)

    def test_streaming(self):
        r = self.srv.get("/stream")
        self.assertEqual(r.body, b"part0;part1;part2;")

    @unittest.skipUnless(installed("multipart"), "needs python3-multipart")
    def test_form_upload(self):
        data = os.urandom(300000)
        boundary = "qilinboundary"
        body = ("--%s\r\nContent-Disposition: form-data; name=\"field\"\r\n\r\nvalue\r\n"
                "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (boundary, boundary)
                ).encode() + data + ("\r\n--%s--\r\n" % boundary).encode()
        r = self.srv.request("POST", "/upload", body=body, headers=[
            ("Content-Type", "multipart/form-data; boundary=" + boundary)])
        self.assertEqual(json.loads(r.body), {"name": "a.bin", "size": 300000, "field": "value"})

    def test_background_task(self):
        self.assertEqual(self.srv.get("/later").text, "queued")
        wait_for(lambda: "done" in self.srv.get("/done").text, 5)


@unittest.skipUnless(worker_built("asyncio") and installed("fastapi"),
                     "needs the asyncio worker and python3-fastapi")
class FastApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = asyncio_server(app="fastapiapp:app")

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def test_hello_after_startup(self):
        r = self.srv.get("/")
        self.assertEqual(json.loads(r.body), {"message": "Hello, world!", "started": True})
        self.assertEqual(r.header("Content-Type"), "application/json")

    def test_params_json_body_and_validation(self):
        self.assertEqual(json.loads(self.srv.get("/items/7?q=a").body), {"item_id": 7, "q": "a"})
        self.assertEqual(self.srv.get("/items/seven").status, 422)
        r = self.srv.request("POST", "/items", body=b'{"name": "pen", "price": 1.5}',
                             headers=[("Content-Type", "application/json")])
        self.assertEqual(json.loads(r.body), {"name": "pen", "double": 3.0})
        wait_for(lambda: "pen" in json.loads(self.srv.get("/tasks").body), 5)


@unittest.skipUnless(worker_built("asyncio") and installed("django"),
                     "needs the asyncio worker and python3-django")
class DjangoAsgiTest(unittest.TestCase):
    def test_async_and_sync_views(self):
        with asyncio_server(app="djangoproj.asgi:application") as srv:
            r = srv.get("/async/?q=z")
            self.assertEqual(json.loads(r.body), {"async": True, "path": "/async/", "q": "z"})
            self.assertEqual(srv.get("/").text, "django ok")
            r = srv.request("POST", "/form/", body=b"name=qilin",
                            headers=[("Content-Type", "application/x-www-form-urlencoded")])
            self.assertEqual(r.text, "name=qilin")


def ws_handshake(port, path="/ws/echo", extra=b""):
    """A raw client socket after the WebSocket handshake, and the 101 head."""
    s = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        data = s.recv(4096)
        if not data:
            break
        head += data
    return s, head


def client_frame(opcode, payload, fin=True, mask=True):
    """One client frame (masked unless MASK is false)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if mask else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if mask else 0) | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, (0x80 if mask else 0) | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


def read_close_code(s):
    """Reads server frames until a close frame; returns its code (None at EOF first)."""
    buf = b""
    while True:
        while len(buf) >= 2:
            n = buf[1] & 0x7f
            off = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            if n == 126 and len(buf) >= 4:
                n = int.from_bytes(buf[2:4], "big")
            elif n == 127 and len(buf) >= 10:
                n = int.from_bytes(buf[2:10], "big")
            if len(buf) < off + n:
                break
            if buf[0] & 0x0f == 8:
                return int.from_bytes(buf[off:off + 2], "big") if n >= 2 else 1005
            buf = buf[off + n:]
        data = s.recv(65536)
        if not data:
            return None
        buf += data


@unittest.skipUnless(worker_built("asyncio") and installed("websockets"),
                     "needs the asyncio worker and python3-websockets")
class WebSocketTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = asyncio_server(["--ws-max-size", "2000000", "--worker-connections", "1200",
                                  "--backlog", "2048"])

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def run_client(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 60))

    def test_echo_text_binary_big_fragmented_ping(self):
        import websockets

        async def client():
            url = "ws://127.0.0.1:%d/ws/echo" % self.srv.port
            async with websockets.connect(url, max_size=None, subprotocols=["chat", "x"]) as ws:
                self.assertEqual(ws.subprotocol, "chat")
                self.assertEqual(ws.response_headers["X-WS"], "yes")
                await ws.send("h\u00e9llo")
                self.assertEqual(await ws.recv(), "h\u00e9llo")
                await ws.send(b"\x00\xff")
                self.assertEqual(await ws.recv(), b"\x00\xff")
                big = os.urandom(1 << 20)
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                await ws.send(["frag", "men", "ted"])
                self.assertEqual(await ws.recv(), "fragmented")
                await asyncio.wait_for(await ws.ping(b"p"), 10)
            self.assertEqual(ws.close_code, 1000)

        self.run_client(client())

    def test_app_closes_with_code(self):
        import websockets

        async def client():
            async with websockets.connect("ws://127.0.0.1:%d/ws/echo" % self.srv.port) as ws:
                await ws.send("close-me")
                with self.assertRaises(websockets.ConnectionClosed):
                    await ws.recv()
            self.assertEqual((ws.close_code, ws.close_reason), (4001, "bye"))

        self.run_client(client())

    def test_client_close_reaches_app(self):
        import websockets

        async def client():
            async with websockets.connect("ws://127.0.0.1:%d/ws/events" % self.srv.port) as ws:
                await ws.close(code=4321)

        self.srv.get("/events?reset")
        self.run_client(client())
        wait_for(lambda: "ws-disconnect:4321" in self.srv.get("/events").text, 10)

    def test_denial_and_reject(self):
        s, head = ws_handshake(self.srv.port, "/ws/deny")
        self.assertTrue(head.startswith(b"HTTP/1.1 401"), head)
        s.close()
        s, head = ws_handshake(self.srv.port, "/ws/reject")
        self.assertTrue(head.startswith(b"HTTP/1.1 403"), head)
        s.close()

    def test_accept_key(self):
        s, head = ws_handshake(self.srv.port)
        s.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n"), head)
        # RFC 6455 §1.3's example key and answer.
        self.assertIn(b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n", head)
        self.assertIn(b"Upgrade: websocket\r\n", head)

    def test_unmasked_frame_is_1002(self):
        s, _ = ws_handshake(self.srv.port)
        s.sendall(client_frame(1, b"hi", mask=False))
        self.assertEqual(read_close_code(s), 1002)
        s.close()

    def test_invalid_utf8_is_1007(self):
        s, _ = ws_handshake(self.srv.port)
        s.sendall(client_frame(1, b"\xff\xfe bad"))
        self.assertEqual(read_close_code(s), 1007)
        s.close()

    def test_too_big_is_1009(self):
        # Only the head and a little of the payload: the server refuses on the
        # announced length, and a client still sending would be reset.
        s, _ = ws_handshake(self.srv.port)
        s.sendall(client_frame(2, b"z" * 2000001)[:1000])
        self.assertEqual(read_close_code(s), 1009)
        s.close()

    def test_too_big_in_fragments_is_1009(self):
        s, _ = ws_handshake(self.srv.port)
        s.sendall(client_frame(2, b"z" * 1500000, fin=False) +
                  client_frame(0, b"z" * 600000)[:1000])
        self.assertEqual(read_close_code(s), 1009)
        s.close()

    def test_frames_right_behind_the_handshake(self):
        s, head = ws_handshake(self.srv.port, extra=b"")
        s.sendall(client_frame(1, b"one") + client_frame(9, b"pingdata") + client_frame(1, b"two"))
        got = b""
        while got.count(b"one") + got.count(b"two") < 2 or b"pingdata" not in got:
            data = s.recv(4096)
            if not data:
                break
            got += data
        self.assertIn(b"\x8a\x08pingdata", got)  # the pong
        self.assertLess(got.index(b"one"), got.index(b"two"))
        s.close()

    def test_1000_sockets_on_one_worker(self):
        import websockets

        async def one(i):
            async with websockets.connect("ws://127.0.0.1:%d/ws/echo" % self.srv.port,
                                          open_timeout=30) as ws:
                await ws.send("n%d" % i)
                self.assertEqual(await ws.recv(), "n%d" % i)
                await gate.wait()

        async def client():
            await asyncio.gather(*(one(i) for i in range(1000)), opener())

        async def opener():
            wait_until = asyncio.get_running_loop().time() + 50
            while self.srv.get("/overlap").text != "1000":
                self.assertLess(asyncio.get_running_loop().time(), wait_until)
                await asyncio.sleep(0.2)
            gate.set()

        self.srv.get("/overlap?reset")
        gate = asyncio.Event()
        self.run_client(client())


@unittest.skipUnless(worker_built("asyncio") and installed("websockets"),
                     "needs the asyncio worker and python3-websockets")
class WebSocketTlsTest(unittest.TestCase):
    def test_wss_echo_and_https_scheme(self):
        import websockets
        from test_tls import HAVE_TLS, client_context, tls_args

        if not HAVE_TLS:
            self.skipTest("qilin was built without TLS")
        with asyncio_server(tls_args()) as srv:
            async def client():
                url = "wss://127.0.0.1:%d/ws/echo" % srv.port
                async with websockets.connect(url, ssl=client_context()) as ws:
                    await ws.send("over tls")
                    self.assertEqual(await ws.recv(), "over tls")
                    await ws.send(os.urandom(200000))
                    self.assertEqual(len(await ws.recv()), 200000)
                self.assertEqual(ws.close_code, 1000)

            asyncio.run(asyncio.wait_for(client(), 30))


@unittest.skipUnless(worker_built("asyncio") and installed("websockets"),
                     "needs the asyncio worker and python3-websockets")
class WebSocketStopTest(unittest.TestCase):
    def test_graceful_term_closes_with_1001(self):
        with asyncio_server() as srv:
            socks = [ws_handshake(srv.port)[0] for _ in range(5)]
            srv.send_signal(15)
            self.assertEqual([read_close_code(s) for s in socks], [1001] * 5)
            srv.wait(15)
            for s in socks:
                s.close()


if __name__ == "__main__":
    unittest.main()
