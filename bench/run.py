#!/usr/bin/python3
"""qilin's benchmark harness: qilin and its peers, side by side, in one run.

Starts each server on 127.0.0.1 (pinned to CPU 0 with taskset), loads it with
wrk (pinned to CPU 1), and prints per case a table of req/s, p50/p99 latency,
errors, server CPU seconds, req/s per server CPU-second, minor page faults per
request in the workers, accept-queue depth and RSS, then qilin's ratios to
each peer. Every run is bounded; every process started is stopped by pid at
the end, also on error or Ctrl-C. Standard library only; run with
/usr/bin/python3 (the interpreter gunicorn, uwsgi and waitress use).

    bench/run.py --build BUILD_DIR [--quick] [--cases hello,close] [--servers qilin,nginx]
                 [--pin case|always|never]

The tls* cases serve over TLS with self-signed certificates the run makes with
the openssl command (they are skipped, saying why, when wrk cannot load https).
The tls-new-* cases load with `openssl s_time -new` instead of wrk (several
processes in parallel, each a full handshake and one HTTP/1.0 request per
connection, never resuming a session): wrk would resume its sessions.
The ws-echo case loads with bench/wsload.c (wrk speaks no WebSocket), which a
run that includes it compiles with `cc -O2` into its log directory first (the
case is skipped, saying why, when that fails); its rates are echoed messages,
not requests.

`make bench` runs it against the build tree. It measures; it never asserts.
"""
import argparse
import http.client
import http.server
import os
import platform
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(BENCH, "apps")
PY = os.environ.get("BENCH_PY", "/usr/bin/python3")
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# Every server process group this run started (pid == pgid), for the final sweep.
STARTED = []


# ---------------------------------------------------------------- /proc readers

def proc_stat(pid):
    """(pgrp, minflt, cpu_seconds, kernel_cpu_seconds) of PID, or None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rindex(")") + 2:].split()
    # Fields after comm start at field 3 (state): field N is rest[N - 3].
    return (int(rest[2]), int(rest[7]), (int(rest[11]) + int(rest[12])) / CLK_TCK,
            int(rest[12]) / CLK_TCK)


def group_pids(pgid):
    """Every live pid in process group PGID (the server's tree: setsid at start)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st is not None and st[0] == pgid:
                pids.append(int(name))
    return pids


def rss_mib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class Sample:
    """CPU seconds of the whole tree (and the kernel's part of them) and minor
    faults of the workers, at one instant."""

    def __init__(self, server):
        self.cpu = 0.0
        self.sys = 0.0
        self.minflt = 0
        for pid in group_pids(server.pid):
            st = proc_stat(pid)
            if st is None:
                continue
            self.cpu += st[2]
            self.sys += st[3]
            if pid != server.pid or server.single:
                self.minflt += st[1]


# ---------------------------------------------------------------- servers

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One server under test: a command line, started in its own session."""

    def __init__(self, name, argv, cwd=APPS, env=None, single=False, path="/", qilin=False,
                 tls=False):
        self.name = name
        self.argv = argv
        self.cwd = cwd
        self.env = env or {}
        self.single = single  # one process serves (no master/worker split)
        self.path = path
        self.qilin = qilin
        self.tls = tls  # every listener speaks TLS: probed and loaded over https
        self.negotiated = None  # "TLSv1.3 TLS_AES_256_GCM_SHA384", as wait_ready saw it
        self.proc = None
        self.pid = None
        self.log = None

    def start(self, port, pin, logdir):
        env = dict(os.environ)
        env.update(self.env)
        argv = [a.replace("{port}", str(port)) for a in self.argv]
        if pin:
            argv = ["taskset", "-c", "0"] + argv
        self.log = os.path.join(logdir, "%s.log" % self.name)
        with open(self.log, "ab") as log:
            # A session of its own: the server's whole tree is one process group,
            # which is how its CPU time is summed and how it is stopped.
            self.proc = subprocess.Popen(argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, start_new_session=True)
        self.pid = self.proc.pid
        STARTED.append(self.pid)

    def stop(self):
        if self.proc is None:
            return
        stop_group(self.pid, self.proc)
        self.proc = None

    def log_tail(self, n=5):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:]).strip()
        except OSError:
            return ""


def stop_group(pgid, proc=None, grace=5.0):
    """TERM to the group, KILL what is left after GRACE seconds; reaps PROC."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is None:
            time.sleep(0.05)
            continue
        if not group_pids(pgid):
            break
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    if pgid in STARTED:
        STARTED.remove(pgid)


def sweep():
    for pgid in list(STARTED):
        stop_group(pgid, grace=2.0)


def unverified_context():
    """A client context that takes the bench's self-signed certificates (as wrk does)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def wait_ready(server, port, timeout=30.0):
    """Polls until the server answers 200 (over https when it speaks TLS); False
    when it died or never did. A TLS server's protocol and cipher, as this probe
    negotiated them, are kept in server.negotiated."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return False
        try:
            if server.tls:
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=2,
                                                context=unverified_context())
            else:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", server.path)
            if server.tls and c.sock is not None:
                # Read now: getresponse() drops the socket when the server closes.
                cipher = c.sock.cipher()
                server.negotiated = "%s %s" % (cipher[1], cipher[0]) if cipher else None
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    return False


class Env:
    """Paths the server command lines need: build tree, temp dir, data files."""

    def __init__(self, build, tmp, bjoern=None):
        self.build = build
        self.tmp = tmp
        self.bjoern = bjoern
        self.bigfile = os.path.join(tmp, "big.bin")
        with open(self.bigfile, "wb") as f:
            f.write(b"x" * MIB)
        self.upload_lua = os.path.join(tmp, "upload.lua")
        with open(self.upload_lua, "w") as f:
            f.write('wrk.method = "POST"\n'
                    'wrk.headers["Content-Type"] = "application/octet-stream"\n'
                    'wrk.body = string.rep("x", %d)\n' % MIB)
        self.tls_pairs = {}
        self.wsload = None  # bench/wsload, once build_wsload compiled it
        self.plugin_path = ":".join(
            os.path.join(build, d, ".libs") for d in (
                "plugins/workers/sync", "plugins/workers/gthread", "plugins/workers/gevent",
                "plugins/workers/eventlet", "plugins/workers/asyncio", "plugins/python-wsgi",
                "plugins/ruby", "bench/plugin-null"))

    def has_plugin(self, rel):
        return os.path.exists(os.path.join(self.build, rel))

    def tls_pair(self, kind):
        """(certificate, key) for CN=localhost, self-signed, made on first use:
        kind "ec" is ECDSA P-256, "rsa" RSA 2048."""
        if kind not in self.tls_pairs:
            cert = os.path.join(self.tmp, "tls-%s.crt" % kind)
            key = os.path.join(self.tmp, "tls-%s.key" % kind)
            newkey = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
                      "rsa": ["-newkey", "rsa:2048"]}[kind]
            p = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2",
                                "-subj", "/CN=localhost"] + newkey + ["-keyout", key, "-out", cert],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=60)
            if p.returncode != 0:
                raise RuntimeError("openssl req could not make the %s certificate: %s"
                                   % (kind, p.stderr.strip()))
            self.tls_pairs[kind] = (cert, key)
        return self.tls_pairs[kind]


def tls_args(env, tls):
    """--certfile/--keyfile for qilin and gunicorn (the same flags), none without TLS."""
    if not tls:
        return []
    cert, key = env.tls_pair(tls)
    return ["--certfile", cert, "--keyfile", key]


def qilin_server(env, name, app, workers, klass="sync", extra=(), null=False, tls=None):
    argv = [os.path.join(env.build, "qilin"), "-b", "127.0.0.1:{port}", "-w", str(workers),
            "-k", klass, "--backlog", "2048", "--log-level", "warning"]
    if null:
        argv += ["--plugin", "null"]
    else:
        argv += ["--chdir", APPS]
    argv += tls_args(env, tls) + list(extra) + [app]
    return Server(name, argv, env={"QILIN_PLUGIN_PATH": env.plugin_path,
                                   "QILIN_BENCH_FILE": env.bigfile}, qilin=True, tls=bool(tls))


def gunicorn_server(env, klass, app, workers, threads=None, extra=(), tls=None):
    argv = [PY, "-m", "gunicorn", "-b", "127.0.0.1:{port}", "-w", str(workers), "-k", klass,
            "--chdir", APPS, "--backlog", "2048", "--log-level", "warning"]
    if threads:
        argv += ["--threads", str(threads)]
    argv += tls_args(env, tls) + list(extra)
    name = "gunicorn-%s" % klass + ("-t%d" % threads if threads and threads != 4 else "")
    return Server(name, argv + [app], env={"QILIN_BENCH_FILE": env.bigfile}, tls=bool(tls))


def uwsgi_server(env, app, workers, gevent=False):
    module = app.split(":")[0]
    plugins = "python3,gevent_python3" if gevent else "python3"
    # --add-header: plain --http-socket answers HTTP/1.1 without a Connection
    # header and then closes, which wrk counts as one read error per request
    # (bench-anchors note 4); saying close makes clients reconnect cleanly.
    argv = ["uwsgi", "--plugin", plugins, "--master", "--processes", str(workers),
            "--listen", "1024", "--disable-logging", "--die-on-term", "--chdir", APPS,
            "--wsgi-file", os.path.join(APPS, module + ".py"), "--callable", "app",
            "--http-socket", "127.0.0.1:{port}", "--add-header", "Connection: close"]
    if gevent:
        argv += ["--gevent", "100", "--gevent-monkey-patch"]
    return Server("uwsgi-gevent" if gevent else "uwsgi", argv,
                  env={"QILIN_BENCH_FILE": env.bigfile})


def waitress_server(env, app):
    argv = [PY, "-m", "waitress", "--listen=127.0.0.1:{port}", "--threads=4", "--backlog=2048", app]
    return Server("waitress", argv, single=True, env={"QILIN_BENCH_FILE": env.bigfile})


def uvicorn_server(env, app, workers, loop, ws=None):
    """uvicorn 0.17 (Debian's) with LOOP ("uvloop" or "asyncio") and httptools, the
    faster of its two HTTP parsers with either loop (h11 is about a third of it
    here). WS ("websockets" or "wsproto"), when given, is its WebSocket
    implementation, and a suffix of the server's name. One worker runs in
    uvicorn's own process; more are children of a supervisor that holds the
    socket."""
    argv = [PY, "-m", "uvicorn", "--loop", loop, "--http", "httptools"]
    if ws:
        argv += ["--ws", ws]
    argv += ["--host", "127.0.0.1", "--port", "{port}", "--workers", str(workers),
             "--backlog", "2048", "--log-level", "warning", "--no-access-log",
             "--app-dir", APPS, app]
    return Server("uvicorn-" + loop + ("-" + ws if ws else ""), argv, single=workers == 1)


def rack_servers(env, case):
    """The Rack cases' servers. rack-hello and sinatra-hello: one process
    serving on one thread each: qilin's ruby plugin (when built) on -k sync,
    Unicorn 6 (a master and one worker; it closes every connection,
    keep-alive or not), and Puma 5.6 in single mode with one thread.
    rack-io: 2 workers x 100 threads, qilin -k gthread and Puma in cluster
    mode (Unicorn serves one request per worker). All load the case's
    rackup file with RACK_ENV=production: no middleware, no request log."""
    app, out, renv = RACK_APPS[case.name], [], {"RACK_ENV": "production"}
    w = case.workers
    threads = 100 if case.name == "rack-io" else 1
    if env.has_plugin("plugins/ruby/.libs/ruby.so"):
        extra = ["--plugin", "ruby"] + (["--threads", str(threads)] if threads > 1 else [])
        out.append(qilin_server(env, "qilin-ruby" + ("-gthread" if threads > 1 else ""), app,
                                w, "gthread" if threads > 1 else "sync", extra))
    if threads == 1:
        out.append(Server("unicorn", ["unicorn", "-l", "127.0.0.1:{port}", "-E", "production",
                                      app], env=renv))
    puma = ["puma", "-t", "%d:%d" % (threads, threads), "-b", "tcp://127.0.0.1:{port}", "-e",
            "production", "--quiet"] + (["-w", str(w)] if w > 1 else [])
    out.append(Server("puma", puma + [app], env=renv, single=w == 1))
    return out


def bjoern_server(env, app):
    """bjoern, when built (bench/bjoern-build): one process, pinned like nginx."""
    if not env.bjoern:
        return []
    argv = [PY, os.path.join(BENCH, "bjoern_run.py"), app, "127.0.0.1", "{port}"]
    return [Server("bjoern", argv, single=True,
                   env={"BJOERN_DIR": env.bjoern, "QILIN_BENCH_FILE": env.bigfile})]


def nginx_server(env, path="/", tls=None):
    """nginx as the no-Python ceiling: `return 200`, and the 1 MiB file with sendfile.
    With TLS ("ec" or "rsa"), the listener speaks TLS 1.2 and 1.3 with that
    certificate; everything else (ciphers, groups, session tickets) is nginx's
    default, as qilin's and gunicorn's are theirs."""
    root = tempfile.mkdtemp(prefix="nginx-", dir=env.tmp)
    ssl_conf = ""
    if tls:
        cert, key = env.tls_pair(tls)
        ssl_conf = ("\n        ssl_certificate %s;\n        ssl_certificate_key %s;"
                    "\n        ssl_protocols TLSv1.2 TLSv1.3;" % (cert, key))
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""daemon off;
master_process off;
worker_processes 1;
pid %(root)s/nginx.pid;
error_log %(root)s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_max_body_size 4m;
    client_body_temp_path %(root)s/body;
    proxy_temp_path %(root)s/proxy;
    fastcgi_temp_path %(root)s/fastcgi;
    uwsgi_temp_path %(root)s/uwsgi;
    scgi_temp_path %(root)s/scgi;
    server {
        listen 127.0.0.1:@PORT@%(ssl)s backlog=2048;%(ssl_conf)s
        location / { default_type text/plain; return 200 "Hello, World!"; }
        location = /big.bin { default_type application/octet-stream; alias %(big)s; }
    }
}
""" % {"root": root, "big": env.bigfile, "ssl": " ssl" if tls else "", "ssl_conf": ssl_conf})
    # The port is only known per start: the config is a template filled in then.
    argv = ["sh", "-c", 'sed "s/@PORT@/$1/" "$2" > "$2.run" && exec /usr/sbin/nginx -p "$3/" '
            '-e "$3/error.log" -c "$2.run"', "nginx", "{port}", conf, root]
    return Server("nginx", argv, single=True, path=path, tls=bool(tls))


# ---------------------------------------------------------------- cases

class Case:
    def __init__(self, name, title, conns, workers=1, pin=True, close=False, lua=None,
                 body=0, path="/", bound=None, tls=None, load="wrk", msg_size=0):
        self.name, self.title = name, title
        self.conns, self.workers, self.pin = conns, workers, pin
        self.close, self.lua, self.body, self.path = close, lua, body, path
        self.bound = bound  # the req/s no server can pass (io: connections / sleep)
        self.tls = tls  # None, or the certificate's key: "ec" (ECDSA P-256) or "rsa" (2048)
        # The load generator: "wrk" (CONNS connections), or "s_time" (CONNS
        # `openssl s_time -new` processes: a full TLS handshake per request), or
        # "wsload" (CONNS WebSocket connections, one MSG_SIZE-byte message in
        # flight on each: its rates are messages, not requests).
        self.load = load
        self.msg_size = msg_size


def qilin_green(env, app, workers, threads):
    """qilin's other worker classes, each only when its plugin was built."""
    out = []
    if env.has_plugin("plugins/workers/gthread/.libs/gthread.so"):
        out.append(qilin_server(env, "qilin-gthread", app, workers, "gthread",
                                ["--threads", str(threads)]))
    for k in ("gevent", "eventlet"):
        if env.has_plugin("plugins/workers/%s/.libs/%s.so" % (k, k)):
            out.append(qilin_server(env, "qilin-" + k, app, workers, k))
    return out


def qilin_asgi(env, app, workers):
    """qilin's ASGI worker (-k asyncio) on uvloop, what --asgi-loop auto picks
    when it is installed, and on asyncio's own loop; only when the plugin was built."""
    if not env.has_plugin("plugins/workers/asyncio/.libs/asyncio.so"):
        return []
    return [qilin_server(env, "qilin-asyncio-" + loop, app, workers, "asyncio",
                         ["--asgi-loop", loop]) for loop in ("uvloop", "asyncio")]


def asgi_servers(env, app, workers):
    """The ASGI cases' servers: qilin's two loops, then uvicorn's."""
    return qilin_asgi(env, app, workers) + [uvicorn_server(env, app, workers, loop)
                                            for loop in ("uvloop", "asyncio")]


def servers_for(case, env):
    w = case.workers
    if case.name in ("hello", "close"):
        return ([qilin_server(env, "qilin-sync", "hello:app", w),
                 qilin_server(env, "qilin-null", "hello", w, null=True)]
                + qilin_green(env, "hello:app", w, 4)
                + [gunicorn_server(env, k, "hello:app", w, 4 if k == "gthread" else None)
                   for k in ("sync", "gthread", "gevent", "eventlet")]
                + [uwsgi_server(env, "hello:app", w), uwsgi_server(env, "hello:app", w, True),
                   waitress_server(env, "hello:app")]
                + bjoern_server(env, "hello:app") + [nginx_server(env)])
    if case.name in ("flask", "django"):
        app = case.name + "_app:app"
        return ([qilin_server(env, "qilin-sync", app, w)]
                + qilin_green(env, app, w, 4)
                + [gunicorn_server(env, k, app, w, 4 if k == "gthread" else None)
                   for k in ("sync", "gthread", "gevent")]
                + [uwsgi_server(env, app, w), waitress_server(env, app)]
                + bjoern_server(env, app))
    if case.name == "big":
        return [qilin_server(env, "qilin-sync", "big:app", w),
                qilin_server(env, "qilin-null", "big", w, null=True),
                gunicorn_server(env, "sync", "big:app", w),
                gunicorn_server(env, "gthread", "big:app", w, 4),
                uwsgi_server(env, "big:app", w), waitress_server(env, "big:app"),
                nginx_server(env, "/big.bin")]
    if case.name == "bigfile":
        return [qilin_server(env, "qilin-sync", "bigfile:app", w),
                gunicorn_server(env, "sync", "bigfile:app", w),
                gunicorn_server(env, "gthread", "bigfile:app", w, 4),
                uwsgi_server(env, "bigfile:app", w), nginx_server(env, "/big.bin")]
    if case.name == "upload":
        return [qilin_server(env, "qilin-sync", "upload:app", w),
                qilin_server(env, "qilin-null", "upload", w, null=True),
                gunicorn_server(env, "sync", "upload:app", w),
                gunicorn_server(env, "gthread", "upload:app", w, 4),
                uwsgi_server(env, "upload:app", w), waitress_server(env, "upload:app"),
                nginx_server(env)]
    if case.tls and case.name == "tls-big":
        return [qilin_server(env, "qilin-sync", "bigfile:app", w, tls=case.tls),
                gunicorn_server(env, "sync", "bigfile:app", w, tls=case.tls),
                nginx_server(env, "/big.bin", tls=case.tls)]
    if case.tls:
        return [qilin_server(env, "qilin-sync", "hello:app", w, tls=case.tls),
                gunicorn_server(env, "sync", "hello:app", w, tls=case.tls),
                nginx_server(env, tls=case.tls)]
    if case.name == "io":
        return (qilin_green(env, "sleepy:app", w, 100)
                + [gunicorn_server(env, "gthread", "sleepy:app", w, 100),
                   gunicorn_server(env, "gevent", "sleepy:app", w),
                   gunicorn_server(env, "eventlet", "sleepy:app", w),
                   uwsgi_server(env, "sleepy:app", w, True)])
    if case.name == "asgi-hello":
        # The C null app and nginx `return 200`: what qilin's core and a
        # server with no Python at all reach on the same load.
        return (asgi_servers(env, ASGI_APPS[case.name], w)
                + [qilin_server(env, "qilin-null", "hello", w, null=True), nginx_server(env)])
    if case.name in ASGI_APPS:
        return asgi_servers(env, ASGI_APPS[case.name], w)
    if case.name in RACK_APPS:
        return rack_servers(env, case)
    if case.name == "ws-echo":
        return qilin_asgi(env, "asgi_ws_echo:app", w) + [
            uvicorn_server(env, "asgi_ws_echo:app", w, loop, UVICORN_WS[loop])
            for loop in ("uvloop", "asyncio")]
    raise ValueError(case.name)


# The io case's ceiling: 200 connections, each request sleeping 50 ms.
IO_BOUND = 200 / 0.05

# The ASGI cases' apps (bench/apps): every server in them speaks ASGI 3.
ASGI_APPS = {"asgi-hello": "asgi_hello:app", "fastapi-hello": "fastapi_hello:app",
             "asgi-sleep": "asgi_sleepy:app"}

# The Rack cases' rackup files (bench/apps).
RACK_APPS = {"rack-hello": "rack_hello.ru", "sinatra-hello": "sinatra_hello.ru",
             "rack-io": "rack_sleep.ru"}

# The cases whose app is also measured alone (bench/appcost.py, no server):
# the floor under every server's CPU per request there.
APP_ALONE = ("asgi-hello", "fastapi-hello")

# uvicorn's WebSocket implementation in the ws-echo case, per loop. Debian's
# uvicorn 0.17.6 takes both of its own, websockets (python3-websockets 10.4)
# and wsproto (python3-wsproto 1.2.0), on either loop, and echoes with both;
# per server CPU-second (8 interleaved rounds, pinned) wsproto was the faster
# on uvloop (about 1.3x) and websockets on asyncio's loop (about 1.2x)
# (docs/performance.md, "ASGI").
UVICORN_WS = {"uvloop": "wsproto", "asyncio": "websockets"}

# `openssl s_time` processes run side by side in the tls-new cases (each one
# connection at a time, so this is their concurrency).
S_TIME_PROCS = 4

CASES = [
    Case("hello", "hello app, keep-alive, wrk -c50, one worker on CPU 0, wrk on CPU 1", 50),
    Case("close", "hello app, client sends Connection: close, -c50, one worker on CPU 0", 50,
         close=True),
    Case("flask", "Flask hello, keep-alive, -c50, one worker on CPU 0", 50),
    Case("django", "Django hello (a view returning HttpResponse), keep-alive, -c50, "
         "one worker on CPU 0", 50),
    Case("big", "1 MiB response body (bytes; nginx: static file, sendfile), -c10, one worker",
         10, body=MIB),
    Case("bigfile", "1 MiB response through wsgi.file_wrapper (nginx: sendfile), -c10, one worker",
         10, body=MIB),
    Case("upload", "1 MiB request body (POST, wrk lua script), -c10, one worker", 10,
         lua="upload"),
    Case("io", "blocking app (50 ms time.sleep), -c200, 2 workers, nothing pinned; "
         "bound 200/0.05 = 4000 req/s", 200, workers=2, pin=False, bound=IO_BOUND),
    # TLS: the three servers keep their default ciphers, groups and session
    # tickets; with wrk and s_time (OpenSSL's defaults) all negotiate TLS 1.3
    # with TLS_AES_256_GCM_SHA384 (each table's "negotiated" line shows it)
    # over X25519. The tls-new cases measure FULL handshakes (ECDHE and the
    # certificate's signature), so they are not loaded with wrk: wrk keeps one
    # SSL object per connection and SSL_clear()s it on reconnect, which
    # resumes the previous session (a TLS 1.3 ticket) where the server issues
    # tickets, as qilin and nginx do. `openssl s_time -new` makes a new SSL
    # object per connection and never sets a session on it; it prints 'r' for
    # each connection that was resumed anyway, and the table counts those.
    # Its request is HTTP/1.0 (`GET / HTTP/1.0`), read to EOF: one request
    # per connection. gunicorn 20's sync worker wraps each connection in a new
    # context (no resumption) and closes after every response, so in all four
    # cases it makes a full handshake per request.
    Case("tls", "hello over TLS (ECDSA P-256 certificate; TLS 1.3 AES-256-GCM), keep-alive, "
         "-c50, one worker on CPU 0", 50, tls="ec"),
    Case("tls-new-ec", "hello, one HTTP/1.0 request per new TLS connection, full handshakes "
         "(%d x openssl s_time -new, no resumption), ECDSA P-256, one worker on CPU 0, s_time "
         "on CPU 1: handshakes per server CPU-second" % S_TIME_PROCS, S_TIME_PROCS,
         tls="ec", load="s_time"),
    Case("tls-new-rsa", "hello, one HTTP/1.0 request per new TLS connection, full handshakes "
         "(%d x openssl s_time -new, no resumption), RSA 2048, one worker on CPU 0, s_time "
         "on CPU 1: handshakes per server CPU-second" % S_TIME_PROCS, S_TIME_PROCS,
         tls="rsa", load="s_time"),
    Case("tls-big", "1 MiB response through wsgi.file_wrapper over TLS (ECDSA P-256; TLS 1.3 "
         "AES-256-GCM; nginx: the static file), -c10, one worker", 10, body=MIB, tls="ec"),
    # ASGI: qilin -k asyncio on uvloop and on asyncio's loop, uvicorn 0.17
    # (Debian's) with httptools on the same two loops.
    Case("asgi-hello", "raw ASGI 3 hello app (13 bytes, content-length), keep-alive, -c50, "
         "one worker on CPU 0, wrk on CPU 1; uvicorn with httptools", 50),
    Case("fastapi-hello", "FastAPI 0.92 hello (a JSON dict, 27 bytes), keep-alive, -c50, "
         "one worker on CPU 0; uvicorn with httptools", 50),
    Case("asgi-sleep", "ASGI app awaiting asyncio.sleep(0.05), -c200, 2 workers, nothing "
         "pinned; bound 200/0.05 = 4000 req/s; uvicorn with httptools", 200, workers=2,
         pin=False, bound=IO_BOUND),
    # Rack: qilin's ruby plugin against Unicorn and Puma (single mode, one thread).
    Case("rack-hello", "Rack hello (bench/apps/rack_hello.ru, 13 bytes with Content-Length), "
         "keep-alive, -c50, one worker (one thread) on CPU 0, wrk on CPU 1", 50),
    Case("sinatra-hello", "Sinatra hello (bench/apps/sinatra_hello.ru), keep-alive, -c50, one "
         "worker (one thread) on CPU 0, wrk on CPU 1", 50),
    Case("rack-io", "Rack app sleeping 50 ms (bench/apps/rack_sleep.ru), -c200, 2 workers x "
         "100 threads, nothing pinned; bound 200/0.05 = 4000 req/s", 200, workers=2, pin=False,
         bound=IO_BOUND),
    # WebSocket: bench/wsload (wrk speaks no WebSocket) keeps one 64-byte
    # binary message in flight on each of 50 connections; the app echoes it.
    Case("ws-echo", "ASGI WebSocket echo (bench/apps/asgi_ws_echo.py), 64-byte binary "
         "messages, one in flight on each of 50 connections (bench/wsload), one worker on "
         "CPU 0, wsload on CPU 1; uvicorn with httptools, --ws wsproto on uvloop and websockets "
         "on asyncio's loop: rates are messages, not requests", 50, path="/ws", load="wsload",
         msg_size=64),
]


# ---------------------------------------------------------------- wrk

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_ms(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(out):
    r = {"rps": None, "p50": None, "p99": None, "requests": 0, "errors": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, out, re.M)
        if m:
            r[key] = parse_ms(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    return r


def accept_queue(port):
    """Connections waiting in the listen socket's accept queue (Recv-Q of `ss -ltn`)."""
    try:
        out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                             text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    depth = 0
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            depth = max(depth, int(parts[1]))
    return depth


def app_alone(case, reps):
    """CASE's app with no server (bench/appcost.py on uvloop, pinned to CPU 0 as
    the servers were): a dict with the median microseconds per call, or 'why'."""
    argv = [PY, os.path.join(BENCH, "appcost.py"), ASGI_APPS[case.name]]
    if case.pin:
        argv = ["taskset", "-c", "0"] + argv
    values, raw = [], []
    for _ in range(reps):
        p = subprocess.run(argv, cwd=APPS, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120)
        raw.append(p.stdout.strip())
        m = re.search(r"us_per_call=([0-9.]+)", p.stdout)
        if p.returncode != 0 or not m:
            return {"why": "status %s: %s" % (p.returncode, " ".join(p.stdout.split())[-200:])}
        values.append(float(m.group(1)))
    return {"us": statistics.median(values), "raw": raw}


def run_wrk(case, env, port, seconds, path, probe=True):
    argv = ["wrk", "-t1", "-c%d" % case.conns, "-d%ds" % seconds, "--latency"]
    if case.close:
        argv += ["-H", "Connection: close"]
    if case.lua == "upload":
        argv += ["-s", env.upload_lua]
    argv.append("%s://127.0.0.1:%d%s" % ("https" if case.tls else "http", port, path))
    if case.pin:
        argv = ["taskset", "-c", "1"] + argv
    with tempfile.TemporaryFile(mode="w+") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        STARTED_WRK.append(p)
        depth = 0
        try:
            if probe:
                for _ in range(3):
                    time.sleep(seconds / 4.0)
                    depth = max(depth, accept_queue(port))
            p.wait(timeout=seconds + 15)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            STARTED_WRK.remove(p)
        out.seek(0)
        text = out.read()
    r = parse_wrk(text)
    r["unaccepted"] = depth
    r["raw"] = text
    return r


STARTED_WRK = []


class LocalTLSServer:
    """A small https server in a thread of this process (127.0.0.1, a free
    port): answers every GET with 200 "ok"; HTTP/1.1 keep-alive, and closes
    after an HTTP/1.0 request. Python's ssl defaults: it issues TLS 1.3
    session tickets, so a client that resumes can. For checking the load
    generators, never measured."""

    def __init__(self, cert, key):
        class Hello(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
        self.httpd.daemon_threads = True
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def tls_problem(env, load):
    """None when the TLS cases loaded by LOAD ("wrk" or "s_time") can run; else
    why not. Makes both certificates, then loads a LocalTLSServer for 1 s."""
    if shutil.which("openssl") is None:
        return "the openssl command is not installed (it makes the certificates)"
    try:
        env.tls_pair("rsa")
        cert, key = env.tls_pair("ec")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        return str(e)
    if load == "s_time":
        return s_time_tls_problem(cert, key)
    return wrk_tls_problem(cert, key)


def wrk_tls_problem(cert, key):
    """None when wrk loads an https:// URL; else why the wrk TLS cases cannot run."""
    try:
        with LocalTLSServer(cert, key) as srv:
            url = "https://127.0.0.1:%d/" % srv.port
            p = subprocess.run(["wrk", "-t1", "-c1", "-d1s", url], capture_output=True,
                               text=True, timeout=15)
        out = p.stdout + p.stderr
        r = parse_wrk(out)
        if r["requests"] > 0 and r["rps"]:
            return None
        return ("wrk cannot load an https:// URL (built without TLS?): its output: %s"
                % " ".join(out.split())[:300])
    except (OSError, subprocess.TimeoutExpired) as e:
        return "wrk over https: %s" % e


# ---------------------------------------------------------------- openssl s_time

def s_time_argv(case, port, seconds, path):
    """One `openssl s_time` client. -new: a new SSL object per connection and no
    session set on it, so every handshake is a full one (certificate signature
    and ECDHE), never a resumption; -www: `GET PATH HTTP/1.0`, read to EOF, so
    one request per connection. It runs for SECONDS to the next whole second
    (its clock is time(2)), so the wall time is measured around it."""
    argv = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
            "-time", str(max(1, int(seconds))), "-www", path]
    if case.pin:
        argv = ["taskset", "-c", "1"] + argv
    return argv


# s_time prints one character per connection as it closes it: 'r' when the
# session was resumed, else the protocol ('*' for TLS 1.2 and 1.3).
S_TIME_PROGRESS = re.compile(r"[*rt23]+")


def parse_s_time(out):
    """One `openssl s_time -new` run's stdout: connections (None without its
    summary: it stops at the first connection that fails and prints none),
    progress characters seen (one per connection, also without a summary), of
    them resumed sessions, bytes read per connection, and its user CPU seconds."""
    r = {"conns": None, "progress": 0, "resumed": 0, "bytes_conn": None, "user_s": None}
    for line in out.splitlines():
        if S_TIME_PROGRESS.fullmatch(line):
            r["progress"] += len(line)
            r["resumed"] += line.count("r")
    m = re.search(r"^(\d+) connections in ([\d.]+)s; [\d.]+ connections/user sec", out, re.M)
    if m:
        r["conns"], r["user_s"] = int(m.group(1)), float(m.group(2))
    m = re.search(r"^\d+ connections in \d+ real seconds, (\d+) bytes read per connection",
                  out, re.M)
    if m:
        r["bytes_conn"] = int(m.group(1))
    return r


def run_s_time(case, env, port, seconds, path, probe=True):
    """CASE.conns `openssl s_time -new` processes side by side for SECONDS (each
    killed 15 s past them): run_wrk's figures, with requests = the connections
    they made, req/s = those over the wall seconds from the first start to the
    last exit, and no latency percentiles. errors counts the processes that
    failed (no summary, or a nonzero status); their connections still count,
    from their progress characters. resumed counts resumed sessions (0 with -new)."""
    argv = s_time_argv(case, port, seconds, path)
    procs = []
    depth = 0
    try:
        t0 = time.monotonic()
        for _ in range(case.conns):
            out = tempfile.TemporaryFile(mode="w+")
            err = tempfile.TemporaryFile(mode="w+")
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            procs.append((p, out, err))
            STARTED_WRK.append(p)
        if probe:
            for _ in range(3):
                time.sleep(seconds / 4.0)
                depth = max(depth, accept_queue(port))
        deadline = t0 + seconds + 15
        for p, _, _ in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        wall = time.monotonic() - t0
    finally:
        for p, _, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            STARTED_WRK.remove(p)
    r = {"rps": None, "p50": None, "p99": None, "requests": 0, "errors": 0, "non2xx": 0,
         "resumed": 0, "bytes_conn": None, "client_user_s": 0.0, "unaccepted": depth}
    raw = []
    for p, out, err in procs:
        out.seek(0)
        err.seek(0)
        text, etext = out.read(), err.read()
        out.close()
        err.close()
        one = parse_s_time(text)
        conns = one["conns"] if one["conns"] is not None else one["progress"]
        r["requests"] += conns
        r["resumed"] += one["resumed"]
        if one["conns"] is None or p.returncode != 0:
            r["errors"] += 1
        if one["bytes_conn"] is not None:
            r["bytes_conn"] = min(one["bytes_conn"], r["bytes_conn"] or one["bytes_conn"])
        r["client_user_s"] += one["user_s"] or 0.0
        # The progress line is one character per connection: kept as a count.
        text = "\n".join("[%d progress characters, %d of them 'r']"
                         % (len(line), line.count("r"))
                         if S_TIME_PROGRESS.fullmatch(line) else line
                         for line in text.splitlines())
        raw.append("$ %s\n(status %s)\n%s\n%s" % (" ".join(argv), p.returncode, text,
                                                  etext.strip()))
    r["wall"] = wall  # s_time ends on a whole second: up to 1 s past SECONDS
    if r["requests"] > 0:
        r["rps"] = r["requests"] / wall
    raw.append("%d connections in %.2f wall seconds: %.1f/s, %d resumed\n"
               % (r["requests"], wall, r["rps"] or 0.0, r["resumed"]))
    r["raw"] = "\n".join(raw)
    return r


def s_time_tls_problem(cert, key):
    """None when `openssl s_time -new` makes new, unresumed connections to a
    LocalTLSServer (which offers tickets); else why the s_time cases cannot run."""
    case = Case("probe", "", 1, pin=False, load="s_time")
    try:
        with LocalTLSServer(cert, key) as srv:
            r = run_s_time(case, None, srv.port, 1, "/", probe=False)
    except OSError as e:
        return "openssl s_time: %s" % e
    if r["requests"] > 0 and not r["errors"] and not r["resumed"]:
        return None
    return ("openssl s_time -new gave %d connections (%d resumed, %d failed runs): %s"
            % (r["requests"], r["resumed"], r["errors"], " ".join(r["raw"].split())[:300]))


# ---------------------------------------------------------------- wsload

def build_wsload(env, outdir):
    """Compiles bench/wsload.c with `cc -O2` into OUTDIR/wsload and keeps its path
    in env.wsload: None when that worked, else why the wsload cases cannot run."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return "no C compiler (cc or gcc) to build bench/wsload.c"
    exe = os.path.join(outdir, "wsload")
    argv = [cc, "-O2", "-o", exe, os.path.join(BENCH, "wsload.c")]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return "%s: %s" % (" ".join(argv), e)
    if p.returncode != 0:
        return "%s failed: %s" % (" ".join(argv), " ".join((p.stdout + p.stderr).split())[:300])
    env.wsload = exe
    return None


def parse_wsload(out):
    """wsload's line: (messages, seconds of the window, errors), or None without it."""
    m = re.search(r"^messages=(\d+) seconds=([\d.]+) errors=(\d+)$", out, re.M)
    return (int(m.group(1)), float(m.group(2)), int(m.group(3))) if m else None


def run_wsload(case, env, port, seconds, path, probe=True):
    """bench/wsload for SECONDS: CASE.conns WebSocket connections, one
    CASE.msg_size-byte message in flight on each. run_wrk's figures with
    requests = echoes received within the SECONDS, req/s = those over the
    window wsload measured, no latency percentiles, errors = connections
    that failed (closed, reset, a wrong frame, a handshake not done), and
    wall = the seconds wsload ran, connecting and closing included (the span
    the server's CPU time is sampled over). No figures when it failed (a
    refused handshake, a nonzero status)."""
    argv = [env.wsload, "-c", str(case.conns), "-d", str(max(1, int(seconds))),
            "-s", str(case.msg_size), str(port), path]
    if case.pin:
        argv = ["taskset", "-c", "1"] + argv
    with tempfile.TemporaryFile(mode="w+") as out:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        STARTED_WRK.append(p)
        depth = 0
        try:
            if probe:
                for _ in range(3):
                    time.sleep(seconds / 4.0)
                    depth = max(depth, accept_queue(port))
            p.wait(timeout=seconds + 15)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            STARTED_WRK.remove(p)
        wall = time.monotonic() - t0
        out.seek(0)
        text = out.read()
    r = {"rps": None, "p50": None, "p99": None, "requests": 0, "errors": 0, "non2xx": 0,
         "unaccepted": depth, "wall": wall,
         "raw": "$ %s\n(status %s)\n%s" % (" ".join(argv), p.returncode, text.strip())}
    got = parse_wsload(text)
    if got is not None and p.returncode == 0:
        messages, window, errors = got
        r["requests"], r["errors"] = messages, errors
        r["rps"] = messages / window if window > 0 else None
    else:
        r["why"] = "status %s: %s" % (p.returncode, " ".join(text.split())[-200:] or "no output")
    return r


def run_load(case, env, port, seconds, path, probe=True):
    """The case's load generator, for SECONDS: wrk, openssl s_time or wsload."""
    run = {"s_time": run_s_time, "wsload": run_wsload}.get(case.load, run_wrk)
    return run(case, env, port, seconds, path, probe)


# ---------------------------------------------------------------- one measurement

def tree_rss(server):
    """(master MiB or None, [worker MiB...]) right now."""
    pids = group_pids(server.pid)
    if server.single:
        return None, [rss_mib(p) or 0.0 for p in pids if p == server.pid]
    # `sh -c exec` and `taskset` exec in place, so server.pid is the master itself.
    master = rss_mib(server.pid)
    return master, [rss_mib(p) or 0.0 for p in pids if p != server.pid]


def measure(server, case, env, opts, logdir):
    """Runs CASE against SERVER: a dict of medians, or one with 'failed' set."""
    port = free_port()
    path = case.path if server.path == "/" else server.path
    res = {"server": server.name, "qilin": server.qilin, "runs": []}
    server.start(port, case.pin, logdir)
    try:
        if not wait_ready(server, port):
            res["failed"] = "did not answer 200: " + (server.log_tail(2) or "no log")
            return res
        res["negotiated"] = server.negotiated
        time.sleep(0.3)
        res["rss_start"] = tree_rss(server)
        run_load(case, env, port, opts.warmup, path, probe=False)
        for _ in range(opts.reps):
            before = Sample(server)
            r = run_load(case, env, port, opts.duration, path)
            after = Sample(server)
            r["cpu"] = after.cpu - before.cpu
            r["sys"] = after.sys - before.sys
            r["minflt"] = after.minflt - before.minflt
            with open(os.path.join(logdir, "%s-%s-%s.txt" % (case.load, case.name, server.name)),
                      "a") as f:
                f.write(r.pop("raw") + "\n")
            res["runs"].append(r)
        time.sleep(1.0)
        res["rss_idle"] = tree_rss(server)
        if server.proc.poll() is not None:
            res["failed"] = "exited during the run: " + server.log_tail(2)
    finally:
        server.stop()
    return summarize(res, case, opts)


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(res, case, opts):
    runs = res["runs"]
    if not runs or any(r["rps"] is None for r in runs):
        why = "%s gave no figures" % case.load
        notes = [r["why"] for r in runs if r.get("why")]
        if notes:
            why += ": " + notes[0]
        res.setdefault("failed", why)
        return res
    res["rps"] = med([r["rps"] for r in runs])
    res["rps_min"] = min(r["rps"] for r in runs)
    res["rps_max"] = max(r["rps"] for r in runs)
    res["p50"] = med([r["p50"] for r in runs])
    res["p99"] = med([r["p99"] for r in runs])
    res["errors"] = sum(r["errors"] + r["non2xx"] for r in runs)
    res["cpu_pct"] = med([100.0 * r["cpu"] / r.get("wall", opts.duration) for r in runs])
    res["per_cpu"] = med([r["requests"] / r["cpu"] if r["cpu"] > 0 else None for r in runs])
    res["sys_us"] = med([1e6 * r["sys"] / r["requests"] if r["requests"] else None
                         for r in runs])
    res["flt_req"] = med([r["minflt"] / r["requests"] if r["requests"] else None for r in runs])
    res["unaccepted"] = max(r["unaccepted"] for r in runs)
    res["mibs"] = res["rps"] * case.body / MIB if case.body else None
    res["bound_pct"] = 100.0 * res["rps"] / case.bound if case.bound else None
    if case.load == "s_time":
        res["conns"] = sum(r["requests"] for r in runs)
        res["resumed"] = sum(r["resumed"] for r in runs)
        res["bytes_conn"] = min((r["bytes_conn"] for r in runs if r["bytes_conn"] is not None),
                                default=None)
        res["client_cpu_pct"] = med([100.0 * r["client_user_s"] / r["wall"] for r in runs])
    return res


# ---------------------------------------------------------------- report

def fmt(v, spec="%.0f"):
    return "-" if v is None else spec % v


def rss_text(res):
    idle = res.get("rss_idle")
    if not idle:
        return "-", "-"
    master, workers = idle
    wtxt = "/".join("%.1f" % w for w in workers) or "-"
    return fmt(master, "%.1f"), wtxt


def rate_unit(case):
    """What a case's rates count: requests, or, with wsload, echoed messages."""
    return "msg/s" if case.load == "wsload" else "req/s"


def case_table(case, results, alone=None):
    lines = ["### %s: %s" % (case.name, case.title), "",
             "Load average when the case ended: %.2f %.2f %.2f" % os.getloadavg(), ""]
    body = case.body > 0
    unit = rate_unit(case)
    per = "msg" if case.load == "wsload" else "req"
    head = ["server", "%s (min-max)" % unit] + (["MiB/s"] if body else []) + (
        ["% of bound"] if case.bound else []) + [
        "p50 ms", "p99 ms", "errors", "srv CPU %", "%s per srv CPU-s" % unit,
        "srv kernel us/%s" % per,
        "minflt/%s" % per, "max unaccepted", "RSS master MiB", "RSS worker MiB"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "---|" * len(head))
    for r in results:
        if "failed" in r:
            lines.append("| %s | FAILED: %s |" % (r["server"], r["failed"].replace("\n", " ")))
            continue
        master, workers = rss_text(r)
        row = [r["server"], "%s (%s-%s)" % (fmt(r["rps"]), fmt(r["rps_min"]), fmt(r["rps_max"]))]
        if body:
            row.append(fmt(r["mibs"]))
        if case.bound:
            row.append(fmt(r["bound_pct"], "%.1f%%"))
        row += [fmt(r["p50"], "%.2f"), fmt(r["p99"], "%.2f"), str(r["errors"]),
                fmt(r["cpu_pct"]), fmt(r["per_cpu"]), fmt(r.get("sys_us"), "%.1f"),
                fmt(r["flt_req"], "%.3f"),
                str(r["unaccepted"]), master, workers]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if case.tls:
        lines.append("TLS negotiated (readiness probe, Python's ssl with OpenSSL's defaults, as "
                     "wrk's and s_time's): " + "; ".join(
                         "%s %s" % (r["server"], r.get("negotiated") or "?")
                         for r in results if "failed" not in r))
        lines.append("")
    if alone is not None:
        lines.append("The app alone (bench/appcost.py: awaited in a loop on uvloop with a fresh "
                     "scope and a send() that does nothing; no server, no socket): " + (
                         "%.2f us per call (median of %d: %s)" % (
                             alone["us"], len(alone["raw"]),
                             ", ".join(x.split("us_per_call=")[-1] for x in alone["raw"]))
                         if "us" in alone else "not measured: " + alone["why"]))
        lines.append("")
    if case.load == "s_time":
        lines.append("Full handshakes (%d x openssl s_time -new; no latency figures; errors: "
                     "s_time runs that failed): " % case.conns + "; ".join(
                         "%s %d connections, %d resumed, %s bytes read each, s_time user CPU "
                         "%s %%" % (r["server"], r["conns"], r["resumed"],
                                    fmt(r["bytes_conn"]), fmt(r["client_cpu_pct"]))
                         for r in results if "failed" not in r))
        lines.append("")
    if case.load == "wsload":
        lines.append("WebSocket echo (bench/wsload -c%d -s%d, one message in flight per "
                     "connection): msg/s counts echoes received in full, no latency figures; "
                     "errors: connections that failed; srv CPU %% is over the seconds wsload "
                     "ran, connecting and closing included" % (case.conns, case.msg_size))
        lines.append("")
    ok = [r for r in results if "failed" not in r]
    for q in (r for r in ok if r["qilin"]):
        parts = []
        for p in (r for r in ok if not r["qilin"]):
            parts.append("%s %.2fx (per CPU-s %.2fx)" % (
                p["server"], q["rps"] / p["rps"] if p["rps"] else 0,
                q["per_cpu"] / p["per_cpu"] if p["per_cpu"] else 0))
        if parts:
            lines.append("%s vs: %s" % (q["server"], "; ".join(parts)))
    lines.append("")
    return "\n".join(lines)


def pick(all_results, case, server):
    for r in all_results.get(case, []):
        if r["server"] == server and "failed" not in r:
            return r
    return None


def best(all_results, case, prefix, key):
    """The result with the highest KEY among CASE's servers named PREFIX..., or None."""
    rs = [r for r in all_results.get(case, [])
          if r["server"].startswith(prefix) and "failed" not in r and r.get(key)]
    return max(rs, key=lambda r: r[key], default=None)


def ratio(all_results, case, a, b, key):
    ra, rb = pick(all_results, case, a), pick(all_results, case, b)
    if ra is None or rb is None or not ra.get(key) or not rb.get(key):
        return None
    return ra[key] / rb[key]


# The ratio targets: (what, case, qilin server, peer, figure, at least).
RATIO_TARGETS = [
    ("hello keep-alive, qilin-sync / nginx per srv CPU-s",
     "hello", "qilin-sync", "nginx", "per_cpu", 0.95),
    ("hello keep-alive, qilin-sync / bjoern per srv CPU-s",
     "hello", "qilin-sync", "bjoern", "per_cpu", 1.05),
    ("hello keep-alive, qilin-sync / gunicorn-sync per core (per srv CPU-s)",
     "hello", "qilin-sync", "gunicorn-sync", "per_cpu", 7),
    ("hello keep-alive, qilin-null (C plugin) / nginx per srv CPU-s",
     "hello", "qilin-null", "nginx", "per_cpu", 1.1),
    ("Connection: close, qilin-sync / nginx per srv CPU-s",
     "close", "qilin-sync", "nginx", "per_cpu", 0.9),
    ("Flask, qilin-sync / gunicorn-sync per core (per srv CPU-s)",
     "flask", "qilin-sync", "gunicorn-sync", "per_cpu", 3),
    ("Flask, qilin-sync / bjoern per srv CPU-s", "flask", "qilin-sync", "bjoern", "per_cpu", 1.1),
    ("Flask, qilin-gthread / gunicorn-gthread per core (per srv CPU-s)",
     "flask", "qilin-gthread", "gunicorn-gthread", "per_cpu", 3),
    ("Flask, qilin-gevent / gunicorn-gevent per core (per srv CPU-s)",
     "flask", "qilin-gevent", "gunicorn-gevent", "per_cpu", 3),
    ("Django, qilin-sync / bjoern per srv CPU-s", "django", "qilin-sync", "bjoern", "per_cpu", 1.1),
    ("1 MiB big, qilin-sync / nginx MiB/s", "big", "qilin-sync", "nginx", "rps", 0.9),
    ("Rack hello keep-alive, qilin-ruby / unicorn per srv CPU-s",
     "rack-hello", "qilin-ruby", "unicorn", "per_cpu", 3),
    ("Rack hello keep-alive, qilin-ruby / puma (single mode, 1 thread) per srv CPU-s",
     "rack-hello", "qilin-ruby", "puma", "per_cpu", 2),
    ("Sinatra hello keep-alive, qilin-ruby / puma (single mode, 1 thread) per srv CPU-s",
     "sinatra-hello", "qilin-ruby", "puma", "per_cpu", 1.5),
    ("1 MiB bigfile, qilin-sync / nginx MiB/s", "bigfile", "qilin-sync", "nginx", "rps", 0.9),
    ("hello keep-alive, qilin-gthread / gunicorn-gthread per core (per srv CPU-s)",
     "hello", "qilin-gthread", "gunicorn-gthread", "per_cpu", 5),
    ("hello keep-alive, qilin-gevent / gunicorn-gevent per core (per srv CPU-s)",
     "hello", "qilin-gevent", "gunicorn-gevent", "per_cpu", 3),
    ("hello keep-alive, qilin-eventlet / gunicorn-eventlet per core (per srv CPU-s)",
     "hello", "qilin-eventlet", "gunicorn-eventlet", "per_cpu", 3),
    ("TLS hello keep-alive, qilin-sync / nginx per srv CPU-s",
     "tls", "qilin-sync", "nginx", "per_cpu", 0.8),
    ("TLS hello keep-alive, qilin-sync / gunicorn-sync per srv CPU-s",
     "tls", "qilin-sync", "gunicorn-sync", "per_cpu", 5),
    ("new TLS connections ECDSA P-256, qilin-sync / nginx per srv CPU-s",
     "tls-new-ec", "qilin-sync", "nginx", "per_cpu", 0.9),
    ("new TLS connections RSA 2048, qilin-sync / nginx per srv CPU-s",
     "tls-new-rsa", "qilin-sync", "nginx", "per_cpu", 0.9),
    ("1 MiB file over TLS, qilin-sync / nginx MiB/s", "tls-big", "qilin-sync", "nginx", "rps", 0.9),
]


def targets_table(all_results, alone=None):
    """The targets, each as measured in this run (skipped when a case did not run).
    ALONE: case name -> app_alone()'s result, for the ASGI ceilings."""
    rows = []
    alone = alone or {}

    def add(what, value, goal, ok, spec="%.2fx"):
        if value is not None:
            rows.append("| %s | %s | %s | %s |" % (what, spec % value, goal,
                                                    "met" if ok(value) else "NOT met"))

    def reference(what, value, least):
        """A ceiling no server can pass, set against a target's goal (>= LEAST)."""
        if value is not None:
            rows.append("| %s | %.2fx | >= %gx | reference: %s |" % (
                what, value, least, "above the goal" if value >= least
                else "the goal is beyond it"))

    # "Per core" is req/s per server CPU-second: the server is pinned to one
    # core, and a loaded machine or a saturated wrk keeps it below 100 %.
    for what, case, a, b, key, least in RATIO_TARGETS:
        add(what, ratio(all_results, case, a, b, key), ">= %gx" % least,
            lambda v, least=least: v >= least)
    for case in ("big", "bigfile"):
        r = pick(all_results, case, "qilin-sync")
        if r is not None and r.get("flt_req") is not None:
            add("1 MiB %s, qilin-sync worker minor faults per request" % case, r["flt_req"],
                "< 1", lambda v: v < 1, "%.3f")
    r = pick(all_results, "hello", "qilin-sync")
    if r is not None and r.get("rss_idle"):
        master, workers = r["rss_idle"]
        if workers:
            add("idle RSS, qilin-sync worker with the hello app", max(workers), "<= 12 MiB",
                lambda v: v <= 12, "%.1f MiB")
        add("idle RSS, qilin master (no --preload)", master, "<= 6 MiB", lambda v: v <= 6,
            "%.1f MiB")
    r, peer = pick(all_results, "rack-hello", "qilin-ruby"), pick(all_results, "rack-hello", "puma")
    if r is not None and peer is not None and r.get("rss_idle") and peer.get("rss_idle"):
        # Puma in single mode is one process: tree_rss lists it as the worker.
        workers, puma = r["rss_idle"][1], max(peer["rss_idle"][1] or [0.0])
        if workers and puma:
            add("idle RSS with the Rack hello app, qilin-ruby worker / puma (%.1f MiB)" % puma,
                max(workers) / puma, "<= 1x", lambda v: v <= 1)
    for klass in ("gevent", "eventlet"):
        r = pick(all_results, "hello", "qilin-" + klass)
        if r is not None and r.get("p50") and r.get("p99") is not None:
            add("hello keep-alive, qilin-%s p99 / p50" % klass, r["p99"] / r["p50"], "<= 5x",
                lambda v: v <= 5)
    for klass, goal in (("gthread", 0.90), ("gevent", 0.97), ("eventlet", 0.97)):
        r = pick(all_results, "io", "qilin-" + klass)
        if r is not None:
            add("blocking app, qilin-%s share of the 4000 req/s bound" % klass,
                r["bound_pct"], ">= %.0f%%" % (100 * goal),
                lambda v, goal=goal: v >= 100 * goal, "%.1f%%")
    # ASGI: each qilin loop against whichever uvicorn did best per CPU-second.
    for case, what, least in (("asgi-hello", "raw ASGI hello keep-alive", 3),
                              ("fastapi-hello", "FastAPI hello keep-alive", 1.5)):
        peer = best(all_results, case, "uvicorn", "per_cpu")
        for loop in ("uvloop", "asyncio"):
            r = pick(all_results, case, "qilin-asyncio-" + loop)
            if r is not None and peer is not None and r.get("per_cpu"):
                add("%s, qilin-asyncio-%s / uvicorn's best (%s) per srv CPU-s"
                    % (what, loop, peer["server"]), r["per_cpu"] / peer["per_cpu"],
                    ">= %gx" % least, lambda v, least=least: v >= least)
        if peer is None:
            continue
        nginx = pick(all_results, case, "nginx")
        if nginx is not None and nginx.get("per_cpu"):
            reference("%s: nginx `return 200` (no Python at all) / uvicorn's best per srv CPU-s"
                      % case, nginx["per_cpu"] / peer["per_cpu"], least)
        # No server can spend less per request than the app alone plus the
        # kernel's share of one read and one write, which is at least the
        # least any server in this case spent in the kernel per request.
        kernel = [r["sys_us"] for r in all_results.get(case, [])
                  if "failed" not in r and r.get("sys_us")]
        a = alone.get(case, {})
        if a.get("us") and kernel:
            reference("%s: a server costing only the app alone (%.1f us) and the least kernel "
                      "time per request seen here (%.1f us) / uvicorn's best per srv CPU-s"
                      % (case, a["us"], min(kernel)),
                      (1e6 / peer["per_cpu"]) / (a["us"] + min(kernel)), least)
    for loop in ("uvloop", "asyncio"):
        r = pick(all_results, "asgi-sleep", "qilin-asyncio-" + loop)
        if r is None:
            continue
        add("ASGI asyncio.sleep app, qilin-asyncio-%s share of the 4000 req/s bound" % loop,
            r["bound_pct"], ">= 97%", lambda v: v >= 97, "%.1f%%")
        if r.get("p50") and r.get("p99") is not None:
            add("ASGI asyncio.sleep app, qilin-asyncio-%s p99 / p50" % loop,
                r["p99"] / r["p50"], "<= 5x", lambda v: v <= 5)
    r = pick(all_results, "rack-io", "qilin-ruby-gthread")
    if r is not None:
        add("Rack sleeping app, qilin-ruby-gthread share of the 4000 req/s bound",
            r["bound_pct"], ">= 90%", lambda v: v >= 90, "%.1f%%")
    # WebSocket echo: messages per server CPU-second, against uvicorn's best.
    peer = best(all_results, "ws-echo", "uvicorn", "per_cpu")
    for loop in ("uvloop", "asyncio"):
        r = pick(all_results, "ws-echo", "qilin-asyncio-" + loop)
        if r is not None and peer is not None and r.get("per_cpu"):
            add("ws-echo: qilin-asyncio-%s messages per server CPU-s / uvicorn's best (%s)"
                % (loop, peer["server"]), r["per_cpu"] / peer["per_cpu"], ">= 2x",
                lambda v: v >= 2)
    if not rows:
        return ""
    return "\n".join(["### Targets", "", "| target | measured | goal | status |",
                      "|---|---|---|---|"] + rows + [""])


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) // 1024 // 1024
    load = os.getloadavg()
    return ("%d x %s, %d GiB, kernel %s, Python %s; load average at start %.2f %.2f %.2f"
            % (os.cpu_count(), cpu, mem, platform.release(), platform.python_version(), *load))


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("QILIN_BUILD", "."),
                    help="the qilin build tree (holds ./qilin and the plugins' .libs)")
    ap.add_argument("--quick", action="store_true", help="1 repetition of 2 s per case")
    ap.add_argument("--cases", default=",".join(c.name for c in CASES),
                    help="comma-separated cases: " + ", ".join(c.name for c in CASES))
    ap.add_argument("--servers", default="",
                    help="comma-separated name prefixes to keep (e.g. qilin,nginx)")
    ap.add_argument("--pin", choices=("case", "always", "never"), default="case",
                    help="server on CPU 0 and wrk (or s_time) on CPU 1: as each case says "
                         "(io, asgi-sleep: nothing pinned), in every case, or in none [case]")
    ap.add_argument("--duration", type=int, default=5, help="seconds per wrk run [5]")
    ap.add_argument("--reps", type=int, default=3, help="wrk runs per server, median [3]")
    ap.add_argument("--bjoern", default=os.environ.get("BJOERN_DIR"),
                    help="a bjoern build (bench/bjoern-build DIR) to run as a peer "
                         "[$BJOERN_DIR; skipped when unset]")
    ap.add_argument("--out", default=None, help="results file [BUILD/bench/results/<time>.txt]")
    opts = ap.parse_args()
    if opts.quick:
        opts.duration, opts.reps = 2, 1
    opts.warmup = 1
    opts.build = os.path.abspath(opts.build)
    known = {c.name: c for c in CASES}
    opts.case_list = []
    for name in filter(None, opts.cases.split(",")):
        if name not in known:
            ap.error("unknown case '%s': choose from %s" % (name, ", ".join(known)))
        case = known[name]
        if opts.pin != "case":
            case.pin = opts.pin == "always"
            how = ("server on CPU 0, %s on CPU 1" % case.load) if case.pin else "nothing pinned"
            case.title += " (pinning overridden by --pin %s: %s)" % (opts.pin, how)
        opts.case_list.append(case)
    opts.server_prefixes = [s for s in opts.servers.split(",") if s]
    if not os.access(os.path.join(opts.build, "qilin"), os.X_OK):
        ap.error("no qilin binary in %s: pass --build BUILD_DIR (run make there first)"
                 % opts.build)
    if opts.bjoern:
        opts.bjoern = os.path.abspath(opts.bjoern)
        if not os.path.exists(os.path.join(opts.bjoern, "bjoern.py")):
            ap.error("no bjoern.py in %s: build it with bench/bjoern-build %s"
                     % (opts.bjoern, opts.bjoern))
    for tool in ("wrk", "taskset", "ss"):
        if shutil.which(tool) is None:
            ap.error("'%s' is not installed: run tools/install-deps" % tool)
    return opts


def on_signal(signo, frame):
    raise KeyboardInterrupt


def main():
    opts = parse_args()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = opts.out or os.path.join(opts.build, "bench", "results", stamp + ".txt")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="qilin-bench-")
    logdir = os.path.join(os.path.dirname(os.path.abspath(out)), stamp + "-logs")
    os.makedirs(logdir, exist_ok=True)
    signal.signal(signal.SIGTERM, on_signal)
    header = ["# qilin bench %s" % stamp, "", "Machine: " + machine(),
              "Method: median of %d wrk runs of %d s (wrk -t1, 1 s warm-up); errors summed; "
              "CPU (user + system; 'kernel' is the system part) and minflt from "
              "/proc/<pid>/stat before/after each run; minflt counts "
              "worker processes only; RSS is VmRSS 1 s after the load. The tls-new cases run "
              "%d openssl s_time -new processes side by side instead of wrk (a full handshake "
              "per connection): req/s is their connections over the wall seconds they ran."
              % (opts.reps, opts.duration, S_TIME_PROCS)
              + (" The ws-echo case runs bench/wsload (built with cc -O2 at the start) instead "
                 "of wrk: WebSocket connections each keeping one message in flight; its rates "
                 "are echoed messages over the seconds of load, not requests."
                 if any(c.load == "wsload" for c in opts.case_list) else ""), ""]
    print("\n".join(header), flush=True)
    report = list(header)
    env = Env(opts.build, tmp, opts.bjoern)
    if not opts.bjoern:
        print("bjoern: skipped (not in Debian; build it with bench/bjoern-build DIR, then "
              "pass --bjoern DIR)\n", flush=True)
    all_results = {}
    alone = {}  # case name -> app_alone()
    tls_problems = {}  # load generator -> why its TLS cases cannot run (None: they can)
    wsload_problem = None
    if any(case.load == "wsload" for case in opts.case_list):
        wsload_problem = build_wsload(env, logdir)
    try:
        for case in opts.case_list:
            if case.load == "wsload" and wsload_problem:
                text = "### %s: skipped: %s\n" % (case.name, wsload_problem)
                print(text, flush=True)
                report.append(text)
                continue
            if case.tls:
                if case.load not in tls_problems:
                    tls_problems[case.load] = tls_problem(env, case.load)
                if tls_problems[case.load]:
                    text = "### %s: skipped: %s\n" % (case.name, tls_problems[case.load])
                    print(text, flush=True)
                    report.append(text)
                    continue
            results = []
            for server in servers_for(case, env):
                if opts.server_prefixes and not any(
                        server.name.startswith(p) for p in opts.server_prefixes):
                    continue
                print("  %s / %s ..." % (case.name, server.name), end=" ", flush=True)
                r = measure(server, case, env, opts, logdir)
                print("FAILED: " + r["failed"] if "failed" in r else
                      "%.0f %s, %s per CPU-s" % (r["rps"], rate_unit(case), fmt(r["per_cpu"])),
                      flush=True)
                results.append(r)
            all_results[case.name] = results
            if case.name in APP_ALONE:
                print("  %s / the app alone (bench/appcost.py) ..." % case.name, end=" ",
                      flush=True)
                alone[case.name] = app_alone(case, opts.reps)
                print(alone[case.name].get("why") or "%.2f us per call" % alone[case.name]["us"],
                      flush=True)
            text = case_table(case, results, alone.get(case.name))
            print("\n" + text, flush=True)
            report.append(text)
        text = targets_table(all_results, alone)
        print(text, flush=True)
        report.append(text)
    except KeyboardInterrupt:
        print("\ninterrupted; stopping every server started", file=sys.stderr)
        return 130
    finally:
        for p in list(STARTED_WRK):
            p.kill()
        sweep()
        shutil.rmtree(tmp, ignore_errors=True)
        with open(out, "w") as f:
            f.write("\n".join(report) + "\n")
        print("results: %s (load generator output and server logs: %s)" % (out, logdir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
