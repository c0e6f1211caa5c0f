"""Shared helpers for the integration tests: start the built `qilin`, talk
HTTP to it over raw sockets or http.client, read its logs.

Everything is bounded in time (socket timeouts, polling deadlines) and local
to 127.0.0.1. A server runs in its own session (process group) so teardown
can kill the master and every worker it left behind by group, never by name.

Environment (exported by tests/integration/local.mk):
  QILIN_BIN          the built binary
  QILIN_PLUGIN_PATH  where the freshly built plugins are
  QILIN_TEST_APPS    tests/apps, the apps served (the default --chdir)
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.environ.get("QILIN_TEST_APPS") or os.path.join(HERE, "..", "apps")
EXAMPLES = os.path.normpath(os.path.join(APPS, "..", "..", "examples"))

# Generous bounds: they only stop a broken server from hanging the suite
# (sanitizer builds start slowly); no test asserts how fast anything is.
BOOT_TIMEOUT = 20.0
IO_TIMEOUT = 5.0
EXIT_TIMEOUT = 20.0


def qilin_bin():
    """The binary under test; skips the test when the harness did not say."""
    path = os.environ.get("QILIN_BIN")
    if not path:
        raise unittest.SkipTest("QILIN_BIN is not set (run through make check)")
    if not os.access(path, os.X_OK):
        raise AssertionError("QILIN_BIN=%s is not an executable file" % path)
    return path


def free_port():
    """An ephemeral port that was free a moment ago (bind to 0, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def json_lines(path):
    """The JSON objects of a file written one per line (a JSON log); [] while
    it does not exist."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls PREDICATE until it returns a true value (returned) or TIMEOUT."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


# Lua for a config file whose hooks record their calls: `note("pre_fork", ...)`
# appends one line of words to the file named by the %r it is formatted with
# (HookNotes reads them back).
LUA_NOTE = r'''
local out = %r
local function note(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[#parts + 1] = tostring(select(i, ...)) end
    local f = assert(io.open(out, "a"))
    f:write(table.concat(parts, " "), "\n")
    f:close()
end
'''


class HookNotes:
    """The lines hooks append to the file PATH, each split into words: the hook
    tests' config files write one line per call (`note("pre_fork", ...)`)."""

    def __init__(self, path):
        self.path = path

    def all(self):
        try:
            with open(self.path) as f:
                return [line.split() for line in f]
        except FileNotFoundError:
            return []

    def wait(self, *want):
        """Waits for lines starting with the words WANT; returns them."""
        want = [str(w) for w in want]

        def found():
            return [n for n in self.all() if n[:len(want)] == want]
        return wait_for(found, 20, what="hook note %r" % (want,))


def green_asan_env(worker, env=None):
    """ENV (a dict, or None) plus what an --enable-sanitizers build needs to
    run WORKER, when it is a green worker class; inert without sanitizers.
    greenlet switches green threads by copying slices of the C stack with
    memcpy; those slices hold our instrumented frames, whose redzones ASan
    has poisoned, so ASan's memcpy check reports the copy and then crashes
    unwinding the half-switched stack. replace_intrin=0 turns off the checks
    of memcpy/memmove/memset calls only; everything else stays checked.
    eventlet also imports dnspython, which loads OpenSSL and cryptography's
    Rust extension; they keep allocations past interpreter finalization,
    reached through frames LeakSanitizer cannot unwind, so leak checking is
    off for eventlet (the C bridge is gevent's, whose servers keep it)."""
    if worker not in ("gevent", "eventlet", "asyncio"):
        return env
    env = dict(env or {})
    opts = env.get("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", ""))
    extra = ["replace_intrin=0"] + (["detect_leaks=0"] if worker == "eventlet" else [])
    for o in extra:
        if o not in opts.split(":"):
            opts = (opts + ":" if opts else "") + o
    env["ASAN_OPTIONS"] = opts
    return env


def _worker_in(args):
    """The worker class ARGS name with -k/--worker-class, or None."""
    args = list(args)
    for i, a in enumerate(args):
        if a in ("-k", "--worker-class") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--worker-class="):
            return a.split("=", 1)[1]
    return None


def _clean_env(env):
    merged = dict(os.environ)
    # A developer's own settings must not leak into the server under test.
    merged.pop("QILIN_CMD_ARGS", None)
    merged.pop("GUNICORN_CMD_ARGS", None)
    merged.pop("WEB_CONCURRENCY", None)
    merged.pop("PORT", None)
    if env:
        merged.update(env)
    return merged


def _kill_group(pgid, sig=signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Result:
    """Exit code and output of a qilin run that is expected to exit."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self):
        return self.stdout + self.stderr

    def __repr__(self):
        return "Result(rc=%r, stdout=%r, stderr=%r)" % (self.returncode, self.stdout[-2000:],
                                                       self.stderr[-2000:])


def run_qilin(args, timeout=EXIT_TIMEOUT, env=None, cwd=None):
    """Runs `qilin ARGS` to completion (bounded) and returns a Result; fails
    on a sanitizer report in its output."""
    env = green_asan_env(_worker_in(args), env)
    proc = subprocess.Popen([qilin_bin()] + list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_clean_env(env), cwd=cwd or APPS, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        raise AssertionError("qilin %s did not exit within %.0f s; output: %r" %
                             (" ".join(args), timeout, (out + err)[-2000:]))
    finally:
        _kill_group(proc.pid)
    result = Result(proc.returncode, out.decode("utf-8", "replace"),
                    err.decode("utf-8", "replace"))
    reports = sanitizer_reports(result.output)
    if reports:
        raise AssertionError("sanitizer report from qilin %s:\n%s" %
                             (" ".join(args), "\n".join(reports)))
    return result


SANITIZER_RX = re.compile(r"ERROR: (Address|Leak|Memory|Thread)Sanitizer|: runtime error: ")


def sanitizer_reports(text):
    """The lines of TEXT that start an ASan/LSan/UBSan report, with a little context."""
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if SANITIZER_RX.search(line):
            out.append("\n".join(lines[i:i + 12]))
    return out


class ServerError(AssertionError):
    pass


# -- worker classes ------------------------------------------------------

WORKER_CLASS_ENV = "QILIN_TEST_WORKER_CLASS"


def worker_class():
    """The worker class a Server runs when its arguments name none:
    $QILIN_TEST_WORKER_CLASS (`make check-gthread`, or a per_worker_class
    copy of a test class while it runs), else qilin's default, sync. Tests
    whose expectation depends on the class ask this."""
    return os.environ.get(WORKER_CLASS_ENV) or "sync"


def worker_built(name):
    """True when worker plugin NAME is on $QILIN_PLUGIN_PATH."""
    dirs = [d for d in os.environ.get("QILIN_PLUGIN_PATH", "").split(":") if d]
    return any(os.path.exists(os.path.join(d, name + ".so")) for d in dirs)


WORKER_CLASSES = ("sync", "gthread", "gevent", "eventlet", "asyncio")
# The worker classes that serve WSGI apps: per_worker_class(classes=WSGI_CLASSES)
# for a test of what only WSGI has (environ keys, wsgi.input, start_response).
WSGI_CLASSES = ("sync", "gthread", "gevent", "eventlet")
# The ASGI worker class, and the ASGI twin of each test app (same routes and
# answers) that a Server on it serves instead of the WSGI app.
ASGI_CLASS = "asyncio"
ASGI_TWINS = {
    "testapp:app": "asgitestapp:app",
    "echoapp:app": "asgiechoapp:app",
    "opsapp:app": "asgiopsapp:app",
    "fairapp:app": "asgifairapp:app",
    "linkapp:app": "asgilinkapp:app",
}


def hang_timeout(seconds):
    """A --timeout of SECONDS for a test that makes a worker hang, or longer
    where booting alone may take about that long: a green worker imports its
    library and monkey-patches (eventlet's collects garbage once per lock it
    greens, about a second on a slow machine), and as in gunicorn a worker's
    boot counts against its timeout."""
    return str(max(seconds, 4) if worker_class() in ("gevent", "eventlet") else seconds)


def built_worker_classes():
    """The worker classes whose plugin is on $QILIN_PLUGIN_PATH, in WORKER_CLASSES' order."""
    return [w for w in WORKER_CLASSES if worker_built(w)]


def _set_env(name, value):
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def per_worker_class(namespace, *bases, classes=WORKER_CLASSES):
    """Runs the tests of each TestCase in BASES once more per worker class in
    CLASSES (every one, unless a test says otherwise: WSGI_CLASSES for what
    only WSGI has) whose plugin is built, other than worker_class(): as
    <Base>_<class> in NAMESPACE (a test module's globals()), whose servers
    run that class. The originals run on worker_class(). When
    $QILIN_TEST_WORKER_CLASS already names a class for the whole suite
    (`make check-gthread`), no copies are made."""
    if os.environ.get(WORKER_CLASS_ENV):
        return
    for base in bases:
        for name in classes:
            if name == worker_class() or not worker_built(name):
                continue
            copy_name = "%s_%s" % (base.__name__, name)
            namespace[copy_name] = type(copy_name, (base,), {
                "__doc__": "%s, on the %s worker." % (base.__name__, name),
                "__module__": base.__module__,
                "setUpClass": classmethod(_on_class_setup(name)),
            })


def _on_class_setup(name):
    def setup(cls):
        # Class cleanups run even when the base's setUpClass fails.
        cls.addClassCleanup(_set_env, WORKER_CLASS_ENV, os.environ.get(WORKER_CLASS_ENV))
        os.environ[WORKER_CLASS_ENV] = name
        super(cls, cls).setUpClass()
    return setup


class Server:
    """A running qilin master.

        with Server(["--keep-alive", "30"], app="testapp:app", workers=1) as srv:
            conn = srv.connect()

    On the asyncio worker (-k asyncio in ARGS or EXTRA, or a per_worker_class
    copy) APP is its ASGI twin where ASGI_TWINS has one.

    Starts `$QILIN_BIN -b 127.0.0.1:PORT --chdir $QILIN_TEST_APPS
    --error-logfile LOG -w WORKERS ARGS EXTRA APP` in a new session and, when
    WAIT, returns once the log shows `Booting worker` WORKERS times and the
    port accepts. BIND=False leaves -b out (a config file binds); PORT then
    says where the config file binds. BOOT_LOG=False (a log level above
    info) counts live workers instead of `Booting worker` lines.
    """

    def __init__(self, args=(), app="testapp:app", workers=1, extra=(), env=None, bind=True,
                 port=None, chdir=APPS, wait=True, boot_timeout=BOOT_TIMEOUT, boot_log=True):
        self.port = port or free_port()
        self.tmpdir = tempfile.mkdtemp(prefix="qilin-test-")
        self.log_path = os.path.join(self.tmpdir, "error.log")
        self.out_path = os.path.join(self.tmpdir, "output.txt")
        cmd = [qilin_bin()]
        if bind:
            cmd += ["-b", "127.0.0.1:%d" % self.port]
        if chdir:
            cmd += ["--chdir", chdir]
        cmd += ["--error-logfile", self.log_path]
        if workers is not None:
            cmd += ["-w", str(workers)]
        # `make check-gthread` or a per_worker_class copy runs another worker class.
        worker = _worker_in(list(args) + list(extra))
        if worker is None:
            worker = os.environ.get(WORKER_CLASS_ENV)
            if worker:
                cmd += ["-k", worker]
        env = green_asan_env(worker, env)
        cmd += list(args) + list(extra)
        if worker == ASGI_CLASS:
            app = ASGI_TWINS.get(app, app)
        if app:
            cmd.append(app)
        self.cmd = cmd
        self.workers = workers or 1
        self.boot_log = boot_log
        self.returncode = None
        self._closed = False
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=subprocess.STDOUT, env=_clean_env(env),
                                     cwd=self.tmpdir, start_new_session=True)
        self.pid = self.proc.pid
        if wait:
            try:
                self.wait_ready(boot_timeout)
            except BaseException:
                self.close(check=False)
                raise

    # -- lifecycle -------------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # A sanitizer report must not hide the failure already propagating.
        self.close(check=exc_type is None)
        return False

    def wait_ready(self, timeout=BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise ServerError("qilin exited with %r before it was ready\ncommand: %s\n%s" %
                                  (self.returncode, " ".join(self.cmd), self.diagnostics()))
            booted = self.booted_pids() if self.boot_log else self.worker_pids()
            if len(booted) >= self.workers and self._port_accepts():
                return
            if time.monotonic() >= deadline:
                raise ServerError("qilin not ready within %.0f s\ncommand: %s\n%s" %
                                  (timeout, " ".join(self.cmd), self.diagnostics()))
            time.sleep(0.05)

    def _port_accepts(self):
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=1.0)
        except OSError:
            return False
        s.close()
        return True

    def running(self):
        return self.proc.poll() is None

    def send_signal(self, sig):
        """Sends SIG to the master."""
        self.proc.send_signal(sig)

    def wait(self, timeout=EXIT_TIMEOUT):
        """Waits (bounded) for the master to exit; returns its exit code."""
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ServerError("qilin (pid %d) still running %.0f s later\n%s" %
                              (self.pid, timeout, self.diagnostics()))
        return self.returncode

    def stop(self, sig=signal.SIGTERM, timeout=EXIT_TIMEOUT):
        """Sends SIG to the master and returns its exit code once it exits."""
        if self.proc.poll() is None:
            self.send_signal(sig)
        return self.wait(timeout)

    def close(self, check=True):
        """Teardown: whatever is left of the process group is killed. With
        CHECK, fails if the server's output holds a sanitizer report (an
        --enable-sanitizers build), so memory errors in any process show."""
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            _kill_group(self.pid)
            try:
                self.proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        # Workers that outlived their master are still in the group.
        _kill_group(self.pid)
        if not self._out.closed:
            self._out.close()
        reports = sanitizer_reports(self.output_text() + self.log_text()) if check else []
        if not os.environ.get("QILIN_TEST_KEEP_LOGS"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if reports:
            raise AssertionError("sanitizer report from qilin:\n" + "\n".join(reports))

    # -- logs and processes ----------------------------------------------

    def log_text(self):
        """The error log (--error-logfile) as written so far."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def output_text(self):
        """What the server wrote to stdout and stderr so far."""
        if not self._out.closed:
            self._out.flush()
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def diagnostics(self):
        return "--- error log ---\n%s\n--- stdout/stderr ---\n%s" % (
            self.log_text()[-4000:], self.output_text()[-4000:])

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until regex PATTERN matches the error log COUNT times; returns the last match."""
        rx = re.compile(pattern)

        def found():
            matches = list(rx.finditer(self.log_text()))
            return matches[count - 1] if len(matches) >= count else None

        try:
            return wait_for(found, timeout, what="log line /%s/" % pattern)
        except AssertionError:
            raise ServerError("no log line /%s/ (x%d) within %.0f s\n%s" %
                              (pattern, count, timeout, self.diagnostics()))

    def booted_pids(self):
        """Pids from the `Booting worker with pid: N` lines, in log order."""
        return [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", self.log_text())]

    def worker_pids(self):
        """Live children of the master, from /proc/*/stat."""
        return children_of(self.pid)

    def wait_workers(self, n=None, exclude=(), timeout=10.0):
        """Waits until N live workers (default: WORKERS) not in EXCLUDE exist; returns them."""
        n = n or self.workers

        def ready():
            pids = [p for p in self.worker_pids() if p not in exclude]
            return pids if len(pids) == n else None

        return wait_for(ready, timeout, what="%d worker(s) not in %r" % (n, list(exclude)))

    # -- clients ---------------------------------------------------------

    def connect(self, timeout=IO_TIMEOUT):
        return Conn(self.port, timeout)

    def get(self, path, headers=(), timeout=IO_TIMEOUT):
        """One GET on a fresh connection; returns the Response."""
        with Conn(self.port, timeout) as c:
            return c.request("GET", path, headers=headers)

    def request(self, method, path, headers=(), body=None, timeout=IO_TIMEOUT):
        with Conn(self.port, timeout) as c:
            return c.request(method, path, headers=headers, body=body)

    def http_client(self, timeout=IO_TIMEOUT):
        """A standard library http.client connection to the server."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)


def children_of(ppid):
    """Pids whose parent is PPID (reads /proc/*/stat)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and fields[0] != "Z" and int(fields[1]) == ppid:
            pids.append(int(name))
    return sorted(pids)


# -- raw HTTP ------------------------------------------------------------


def assert_same_bytes(got, want, what="body"):
    """Compares two large byte strings with a short message: sizes and the
    first differing offset instead of a screenful of bytes."""
    if got == want:
        return
    n = min(len(got), len(want))
    first = next((i for i in range(n) if got[i] != want[i]), n)
    raise AssertionError("%s differs: got %d bytes, want %d; first difference at offset %d "
                         "(got %r, want %r)" % (what, len(got), len(want), first,
                                                got[first:first + 16], want[first:first + 16]))


class IncompleteResponse(AssertionError):
    """The peer closed (or went silent) in the middle of a response."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head, chunked=False,
                 trailers=()):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # [(name, value)], in order, as sent
        self.body = body
        self.raw_head = raw_head
        self.chunked = chunked
        self.trailers = list(trailers)

    def header(self, name, default=None):
        """The first value of header NAME (case-insensitive), or DEFAULT."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %s %d %s headers=%r body=%r>" % (
            self.version, self.status, self.reason, self.headers, self.body[:200])


def build_request(method, target, headers=(), body=None, version="HTTP/1.1", host="127.0.0.1"):
    """Request bytes. Adds Host (unless HOST is None or given) and Content-Length
    for a body unless a Content-Length or Transfer-Encoding header is given."""
    names = {k.lower() for k, _ in headers}
    lines = ["%s %s %s" % (method, target, version)]
    if host is not None and "host" not in names:
        lines.append("Host: %s" % host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body is not None and not names & {"content-length", "transfer-encoding"}:
        lines.append("Content-Length: %d" % len(body))
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return data + (body or b"")


def chunk_encode(pieces, trailers=()):
    """Chunked transfer coding of PIECES (bytes), ending with TRAILERS."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    out += b"0\r\n"
    out += b"".join(("%s: %s\r\n" % t).encode("latin-1") for t in trailers)
    return out + b"\r\n"


class Conn:
    """One client connection with a read buffer, so pipelined responses and
    bytes that arrive together are split correctly. TLS: an ssl.SSLContext
    to speak TLS with (server name "localhost"), after PRELUDE in the clear
    (a PROXY protocol header)."""

    def __init__(self, port, timeout=IO_TIMEOUT, tls=None, prelude=b""):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if prelude:
            self.sock.sendall(prelude)
        if tls is not None:
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
            except BaseException:
                self.sock.close()
                raise
        self.buf = bytearray()
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        self.sock.close()

    def settimeout(self, timeout):
        self.sock.settimeout(timeout)

    @property
    def local_port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendall(data)

    def send_request(self, method, target, headers=(), body=None, version="HTTP/1.1"):
        self.send(build_request(method, target, headers, body, version))

    def request(self, method, target, headers=(), body=None, version="HTTP/1.1"):
        """Sends one request and returns its final (non-1xx) response."""
        self.send_request(method, target, headers, body, version)
        return self.read_response(method)

    # -- reading -----------------------------------------------------------

    def _fill(self):
        """Reads more bytes into the buffer; False at EOF."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise IncompleteResponse("no data from the server within %.1f s (buffered: %r)" %
                                     (self.sock.gettimeout(), bytes(self.buf[:200])))
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_line(self):
        """One CRLF-terminated line, without the CRLF."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = self._take(i + 2)
                return line[:-2]
            if not self._fill():
                raise IncompleteResponse("connection closed in a line (buffered: %r)" %
                                         bytes(self.buf[:200]))

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteResponse("connection closed after %d of %d body bytes" %
                                         (len(self.buf), n))
        return self._take(n)

    def read_to_eof(self):
        while self._fill():
            pass
        return self._take(len(self.buf))

    def read_head(self):
        """Status line and headers: (version, status, reason, [(name, value)], raw)."""
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                raw = self._take(i + 4)
                break
            if not self._fill():
                if not self.buf:
                    raise IncompleteResponse("connection closed before a response")
                raise IncompleteResponse("connection closed in the response head: %r" %
                                         bytes(self.buf[:500]))
        lines = raw[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise AssertionError("malformed status line %r" % lines[0][:200])
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise AssertionError("malformed response header line %r" % line[:200])
            headers.append((name, value.strip(" \t")))
        return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else "", headers, raw

    def read_chunked(self):
        body = bytearray()
        while True:
            line = self.read_line()
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                break
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self.read_line()
            if not line:
                return bytes(body), trailers
            name, _, value = line.decode("latin-1").partition(":")
            trailers.append((name, value.strip()))

    def read_response(self, method="GET", interim=False):
        """Reads the next response. 1xx responses are skipped unless INTERIM
        (then the first response is returned, whatever its status)."""
        while True:
            version, status, reason, headers, raw = self.read_head()
            resp = Response(version, status, reason, headers, b"", raw)
            if 100 <= status < 200:
                if interim:
                    return resp
                continue
            if method == "HEAD" or status in (204, 304):
                return resp
            te = resp.header("Transfer-Encoding")
            cl = resp.header("Content-Length")
            if te is not None and te.lower().endswith("chunked"):
                resp.chunked = True
                resp.body, resp.trailers = self.read_chunked()
            elif cl is not None:
                resp.body = self.read_exact(int(cl))
            else:
                resp.body = self.read_to_eof()
            return resp

    def closed_by_peer(self):
        """True once the server has closed the connection (EOF or reset) with
        nothing more to read, False if it sends anything instead. Bounded by
        the socket timeout (an IncompleteResponse if the server stays silent)."""
        if self.buf:
            return False
        return not self._fill()
