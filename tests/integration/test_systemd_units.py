"""examples/systemd/qilin.service and qilin.socket, run the way systemd
would run them: a small launcher in this file binds the socket unit's
ListenStream (moved into a temporary directory), passes it as fd 3 with
LISTEN_FDS/LISTEN_PID, listens on $NOTIFY_SOCKET, runs the service's
ExecStart, reloads with its ExecReload signal and stops it the KillMode=mixed
way (SIGTERM to the main process only)."""
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import qilintest

UNITS = os.path.join(qilintest.EXAMPLES, "systemd")
# The unit serves myapp.wsgi:application from /srv/myapp; the tests serve
# testapp:app from tests/apps instead.
UNIT_APP = "myapp.wsgi:application"
TEST_APP = "testapp:app"
# Moves the listening socket to fd 3 and sets LISTEN_PID to the pid that
# exec keeps, as systemd does, then execs qilin.
ACTIVATE = ("import os, sys\n"
            "fd = int(sys.argv[1])\n"
            "if fd != 3:\n"
            "    os.dup2(fd, 3)\n"
            "    os.close(fd)\n"
            "os.set_inheritable(3, True)\n"
            "os.environ['LISTEN_FDS'] = '1'\n"
            "os.environ['LISTEN_PID'] = str(os.getpid())\n"
            "os.execv(sys.argv[2], sys.argv[2:])\n")


def parse_unit(path):
    """{section: {key: value}} of a unit file (comments, continuations)."""
    sections, current = {}, None
    with open(path) as f:
        lines = f.read().replace("\\\n", " ").splitlines()
    for line in lines:
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        m = re.match(r"^\[(.+)\]$", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sections


def seconds(value):
    m = re.match(r"^(\d+)(s|min)?$", value)
    if not m:
        raise AssertionError("unexpected time span %r" % value)
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


class Notifications:
    """The $NOTIFY_SOCKET end: collects the datagrams qilin sends."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []

    def wait_for(self, field, timeout=qilintest.BOOT_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not any(field in m.split("\n") for m in self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %s on $NOTIFY_SOCKET within %.0f s; got %r" %
                                     (field, timeout, self.messages))
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode("utf-8", "replace"))
            except socket.timeout:
                pass

    def close(self):
        self.sock.close()


def get_over_unix(path, target):
    """One GET over the Unix socket PATH; returns (status, body)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(qilintest.IO_TIMEOUT)
    try:
        s.connect(path)
        s.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" %
                   target).encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


class SystemdUnitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.service = parse_unit(os.path.join(UNITS, "qilin.service"))["Service"]
        cls.socket_unit = parse_unit(os.path.join(UNITS, "qilin.socket"))["Socket"]

    def test_service_settings(self):
        svc = self.service
        self.assertEqual(svc["Type"], "notify")
        # The USR2 upgrade's MAINPID= comes from a child of the main process.
        self.assertEqual(svc["NotifyAccess"], "all")
        self.assertEqual(svc["KillMode"], "mixed")
        # Longer than the default graceful_timeout (30 s), or systemd kills
        # workers that are still finishing requests.
        self.assertGreater(seconds(svc["TimeoutStopSec"]), 30)
        self.assertEqual(set(svc["RestartPreventExitStatus"].split()), {"3", "4"})

    def exec_start(self):
        argv = shlex.split(self.service["ExecStart"])
        self.assertEqual(argv[0], "/usr/bin/qilin")
        self.assertEqual(argv[-1], UNIT_APP)
        return [qilintest.qilin_bin()] + argv[1:-1] + [TEST_APP]

    def test_socket_activation_notify_reload_and_stop(self):
        tmp = tempfile.mkdtemp(prefix="qilin-systemd-")
        notify = Notifications(os.path.join(tmp, "notify"))
        listen_path = os.path.join(tmp, os.path.basename(self.socket_unit["ListenStream"]))
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lsock.bind(listen_path)
        os.chmod(listen_path, int(self.socket_unit["SocketMode"], 8))
        lsock.listen(128)
        log_path = os.path.join(tmp, "error.log")
        cmd = self.exec_start() + ["--error-logfile", log_path]
        env = qilintest._clean_env({"NOTIFY_SOCKET": notify.path})
        out = open(os.path.join(tmp, "output.txt"), "wb")
        proc = subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, str(lsock.fileno())] + cmd,
            pass_fds=(lsock.fileno(),), stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, env=env, cwd=qilintest.APPS, start_new_session=True)
        lsock.close()

        def log():
            try:
                with open(log_path, "rb") as f:
                    return f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                return ""

        try:
            notify.wait_for("READY=1")
            self.assertEqual(get_over_unix(listen_path, "/say?w=activated"), (200, b"activated"))
            # --bind unix:/run/qilin/qilin.sock was ignored for the passed socket.
            self.assertNotIn("/run/qilin/qilin.sock", log())
            booted = len(re.findall(r"Booting worker with pid", log()))

            # ExecReload: /bin/kill -s HUP $MAINPID
            reload_argv = shlex.split(self.service["ExecReload"])
            sig = getattr(signal, "SIG" + reload_argv[reload_argv.index("-s") + 1])
            self.assertEqual(reload_argv[-1], "$MAINPID")
            os.kill(proc.pid, sig)
            qilintest.wait_for(
                lambda: len(re.findall(r"Booting worker with pid", log())) >= 2 * booted,
                what="the reload to boot a new set of workers")
            self.assertEqual(get_over_unix(listen_path, "/say?w=reloaded"), (200, b"reloaded"))

            # KillMode=mixed: SIGTERM to the main process alone.
            os.kill(proc.pid, signal.SIGTERM)
            rc = proc.wait(timeout=seconds(self.service["TimeoutStopSec"]))
            self.assertEqual(rc, 0, log())
            notify.wait_for("STOPPING=1", timeout=1)
            self.assertIn("Shutting down: Master", log())
            # systemd owns the socket file: qilin must leave it in place.
            self.assertTrue(os.path.exists(listen_path))
            self.assertEqual(qilintest.children_of(proc.pid), [])
        finally:
            qilintest._kill_group(proc.pid)
            proc.wait(timeout=qilintest.EXIT_TIMEOUT)
            out.close()
            notify.close()
            with open(os.path.join(tmp, "output.txt"), "rb") as f:
                text = f.read().decode("utf-8", "replace")
            reports = qilintest.sanitizer_reports(text + log())
            shutil.rmtree(tmp, ignore_errors=True)
        self.assertEqual(reports, [])


if __name__ == "__main__":
    unittest.main()
