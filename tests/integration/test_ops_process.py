"""Process options as gunicorn has them: -e/--env, -D/--daemon with
a pidfile and WINCH, -u/-g/--initgroups (as root), -m/--umask,
--capture-output, fd://N binds, systemd socket activation (LISTEN_FDS), and
--worker-tmp-dir accepted for compatibility."""
import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import unittest

from opsload import get_once
from qilintest import (APPS, EXIT_TIMEOUT, Server, _clean_env, children_of, qilin_bin,
                       run_qilin, sanitizer_reports, wait_for)

HERE = os.path.dirname(os.path.abspath(__file__))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


class OpsProcessTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-ops-")
        os.chmod(self.tmp, 0o755)
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_env_is_set_in_master_and_workers(self):
        args = ["-e", "QILIN_T_ONE=first", "--env", "QILIN_T_TWO=a=b c"]
        with Server(args, app="opsapp:app") as srv:
            self.assertEqual(srv.get("/env?QILIN_T_ONE").body, b"first")
            self.assertEqual(srv.get("/env?QILIN_T_TWO").body, b"a=b c")
            # Set by the master: a worker of a later generation inherits it too.
            srv.send_signal(signal.SIGHUP)
            srv.wait_log(r"Handling signal: hup")
            self.assertEqual(srv.get("/env?QILIN_T_ONE").body, b"first")

    def test_env_without_equals_is_one_clear_error(self):
        r = run_qilin(["-e", "NOVALUE", "opsapp:app"])
        self.assertEqual(r.returncode, 1, r)
        self.assertEqual(r.stderr.strip(),
                         "Error: --env: invalid value 'NOVALUE' (expected KEY=VALUE)")

    def test_unknown_user_is_one_clear_error(self):
        r = run_qilin(["-u", "no_such_user_qilin", "opsapp:app"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("Error: --user: no such user 'no_such_user_qilin'", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r)

    @unittest.skipUnless(os.geteuid() == 0, "switching users needs root")
    def test_user_and_group_switch_workers(self):
        nobody = pwd.getpwnam("nobody")
        group = grp.getgrgid(nobody.pw_gid).gr_name
        sock = os.path.join(self.tmp, "app.sock")
        with Server(["-u", "nobody", "-g", group, "-b", "unix:" + sock], app="opsapp:app") as srv:
            uid, gid, groups = srv.get("/ids").body.decode().split(" ")
            self.assertEqual((int(uid), int(gid)), (nobody.pw_uid, nobody.pw_gid))
            self.assertEqual(groups, str(nobody.pw_gid))
            st = os.stat(sock)
            self.assertEqual((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid))
            # The master keeps its privileges (it must signal and reap).
            with open("/proc/%d/status" % srv.pid) as f:
                self.assertIn("\nUid:\t0\t", f.read())

    @unittest.skipUnless(os.geteuid() == 0, "switching users needs root")
    def test_user_alone_takes_the_users_primary_group(self):
        nobody = pwd.getpwnam("nobody")
        with Server(["-u", str(nobody.pw_uid)], app="opsapp:app") as srv:
            uid, gid, groups = srv.get("/ids").body.decode().split(" ")
            self.assertEqual((int(uid), int(gid)), (nobody.pw_uid, nobody.pw_gid))
            self.assertNotIn("0", groups.split(","))

    @unittest.skipUnless(os.geteuid() == 0, "switching users needs root")
    def test_initgroups_gives_the_users_groups(self):
        nobody = pwd.getpwnam("nobody")
        with Server(["-u", "nobody", "--initgroups"], app="opsapp:app") as srv:
            uid, gid, groups = srv.get("/ids").body.decode().split(" ")
            want = sorted(set(os.getgrouplist("nobody", nobody.pw_gid)))
            self.assertEqual(int(uid), nobody.pw_uid)
            self.assertEqual(sorted(int(g) for g in groups.split(",")), want)

    def test_umask_applies_to_the_unix_socket(self):
        sock = os.path.join(self.tmp, "app.sock")
        with Server(["-m", "0o077", "-b", "unix:" + sock], app="opsapp:app"):
            self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o700)

    def test_unix_socket_is_open_to_all_by_default(self):
        # gunicorn's default --umask 0 gives a socket file of mode 0777, so
        # nginx's www-data can connect, whatever umask the server runs under.
        sock = os.path.join(self.tmp, "app.sock")
        old = os.umask(0o022)  # the server inherits the usual umask
        try:
            srv = Server(["-b", "unix:" + sock], app="opsapp:app")
        finally:
            os.umask(old)
        with srv:
            self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o777)
            # Only the socket: files the server creates keep its umask.
            self.assertEqual(stat.S_IMODE(os.stat(srv.log_path).st_mode) & 0o022, 0)

    def test_capture_output_sends_stdout_and_stderr_to_the_error_log(self):
        with Server(["--capture-output"], app="opsapp:app") as srv:
            self.assertEqual(srv.get("/print?x1").body, b"printed")
            srv.wait_log(r"stdout-x1")
            srv.wait_log(r"stderr-x1")
            srv.wait_log(r"fd2-x1")
            self.assertNotIn("stdout-x1", srv.output_text())

    def test_worker_tmp_dir_is_accepted(self):
        with Server(["--worker-tmp-dir", self.tmp], app="opsapp:app") as srv:
            self.assertEqual(srv.get("/").body, b"hello")

    def test_fd_bind(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        fd = s.fileno()
        env = _clean_env(None)
        cmd = [qilin_bin(), "-b", "fd://%d" % fd, "--chdir", APPS, "opsapp:app"]
        proc = subprocess.Popen(cmd, pass_fds=[fd], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        try:
            s.close()  # only qilin holds it now
            wait_for(lambda: self._serves(port), 20, what="fd://%d to serve" % fd)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(EXIT_TIMEOUT), 0)
        finally:
            self._kill(proc)
        self.assertFalse(sanitizer_reports(proc.stdout.read().decode("utf-8", "replace")))

    def test_systemd_socket_activation(self):
        portfile = os.path.join(self.tmp, "port")
        log = os.path.join(self.tmp, "error.log")
        cmd = [sys.executable, os.path.join(HERE, "socket_activate.py"), portfile, qilin_bin(),
               "-b", "127.0.0.1:1", "--chdir", APPS, "--error-logfile", log, "opsapp:app"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=_clean_env(None),
                                start_new_session=True)
        try:
            wait_for(lambda: os.path.exists(portfile), 20, what="the activator's port")
            port = read_int(portfile)
            wait_for(lambda: self._serves(port), 20, what="the activated socket to serve")
            status, body = get_once(port, "/env?LISTEN_FDS")
            self.assertEqual(body, b"<unset>")  # consumed by the master, not passed on
            with open(log) as f:
                self.assertIn("Listening at: http://127.0.0.1:%d" % port, f.read())
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(EXIT_TIMEOUT), 0)
        finally:
            self._kill(proc)

    def test_daemon_with_pidfile_and_winch(self):
        pidfile = os.path.join(self.tmp, "qilin.pid")
        log = os.path.join(self.tmp, "error.log")
        port = socket.socket()
        port.bind(("127.0.0.1", 0))
        portno = port.getsockname()[1]
        port.close()
        r = run_qilin(["-D", "-p", pidfile, "-b", "127.0.0.1:%d" % portno, "--error-logfile",
                       log, "-w", "2", "opsapp:app"])
        self.assertEqual(r.returncode, 0, r)
        wait_for(lambda: read_int(pidfile), 20, what="the daemon's pidfile")
        master = read_int(pidfile)
        self.addCleanup(self._kill_pid_tree, master)
        self.assertNotEqual(os.getsid(master), os.getsid(0))
        wait_for(lambda: len(children_of(master)) == 2, 20, what="two workers")
        wait_for(lambda: self._serves(portno), 20, what="the daemon to serve")
        os.kill(master, signal.SIGWINCH)
        wait_for(lambda: not children_of(master), 20, what="WINCH to stop the workers")
        self.assertTrue(alive(master))
        os.kill(master, signal.SIGTTIN)
        wait_for(lambda: len(children_of(master)) == 1, 20, what="TTIN to start a worker")
        wait_for(lambda: self._serves(portno), 20, what="the daemon to serve again")
        # USR2 in daemon mode: the new master must not detach again (it would
        # be promoted at once); it is a child of the old one until that exits.
        os.kill(master, signal.SIGUSR2)
        wait_for(lambda: read_int(pidfile + ".2"), 20, what="the new master's pidfile.2")
        new = read_int(pidfile + ".2")
        self.addCleanup(self._kill_pid_tree, new)
        self.assertIn(new, children_of(master))
        wait_for(lambda: len(children_of(new)) == 2, 20, what="the new master's workers")
        os.kill(master, signal.SIGTERM)
        wait_for(lambda: not alive(master), 20, what="the old daemon to exit")
        wait_for(lambda: read_int(pidfile) == new, 20, what="the new master to take the pidfile")
        self.assertTrue(self._serves(portno))
        os.kill(new, signal.SIGTERM)
        wait_for(lambda: not alive(new), 20, what="the new daemon to exit")
        self.assertFalse(os.path.exists(pidfile))
        with open(log) as f:
            text = f.read()
        self.assertIn("Handling signal: winch", text)
        self.assertFalse(sanitizer_reports(text))

    def test_stats_endpoint(self):
        sock = os.path.join(self.tmp, "stats.sock")
        with Server(["--stats", "unix:" + sock], app="opsapp:app", workers=2) as srv:
            workers = srv.wait_workers(2)
            for _ in range(5):
                self.assertEqual(srv.get("/").body, b"hello")

            def ask(path):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect(sock)
                s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path)
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                s.close()
                head, _, body = data.partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.0 200 OK"), head)
                return body.decode()

            def served_by_stats():
                doc = json.loads(ask(b"/"))
                if sum(w["requests"] for w in doc["workers"]) < 5:
                    return None
                # "booting" until a worker has loaded the app.
                return doc if {w["state"] for w in doc["workers"]} == {"serving"} else None

            doc = wait_for(served_by_stats, 20, what="the stats to count 5 requests")
            self.assertEqual(doc["master"], {"pid": srv.pid, "workers": 2})
            self.assertEqual(sorted(w["pid"] for w in doc["workers"]), workers)
            text = ask(b"/metrics")
            self.assertIn("qilin_workers 2\n", text)
            counts = re.findall(r'qilin_worker_requests_total\{pid="(\d+)",age="\d+"\} (\d+)',
                                text)
            self.assertEqual(sorted(int(p) for p, _ in counts), workers)
            self.assertGreaterEqual(sum(int(n) for _, n in counts), 5)
            # Workers do not hold the admin socket.
            listening = self._unix_socket_inode(sock)
            self.assertIn(listening, self._socket_inodes(srv.pid))
            for pid in workers:
                self.assertNotIn(listening, self._socket_inodes(pid))

            # USR2 hands the stats socket over too; the old master's exit
            # leaves the socket file to the new one.
            srv.send_signal(signal.SIGUSR2)
            new = int(srv.wait_log(r"Starting a new master \(pid:(\d+)\)").group(1))
            self.addCleanup(self._kill_pid_tree, new)
            wait_for(lambda: len(children_of(new)) == 2, 20, what="the new master's workers")
            self.assertEqual(srv.stop(), 0)
            wait_for(lambda: json.loads(ask(b"/"))["master"]["pid"] == new, 20,
                     what="the new master to answer on the stats socket")
            srv.wait_log(r"Master has been promoted.", timeout=20)
            os.kill(new, signal.SIGTERM)
            wait_for(lambda: not alive(new), 20, what="the new master to exit")
        self.assertFalse(os.path.exists(sock))

    def test_stats_connections_stay_in_the_master(self):
        # A worker forked while a stats client is connected (here after a
        # HUP) must not inherit that connection: the client would never see
        # the end of it, and the worker would keep its descriptor for life.
        sock = os.path.join(self.tmp, "stats.sock")
        with Server(["--stats", "unix:" + sock], app="opsapp:app", workers=2) as srv:
            old = srv.wait_workers(2)
            before = self._socket_inodes(srv.pid)
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.addCleanup(client.close)
            client.connect(sock)
            accepted = wait_for(lambda: self._socket_inodes(srv.pid) - before, 10,
                                what="the master to accept the stats connection")
            srv.send_signal(signal.SIGHUP)
            new = srv.wait_workers(2, exclude=old, timeout=20)
            # A new worker closes the master's descriptors before it logs its
            # boot: until then it is a fresh fork that still holds them.
            wait_for(lambda: set(new) <= set(srv.booted_pids()), 20, what="the new workers to boot")
            for pid in new:
                self.assertFalse(accepted & self._socket_inodes(pid),
                                 "worker %d holds the master's stats connection" % pid)
            # The master gives up on the silent client after its 2 s read
            # timeout; the client then sees the connection end.
            client.settimeout(15)
            self.assertEqual(client.recv(100), b"")

    def test_stats_bad_address_is_one_clear_error(self):
        r = run_qilin(["--stats", "127.0.0.1:notaport", "opsapp:app"])
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("Error: --stats: ", r.stderr)

    # -- helpers -----------------------------------------------------------

    @staticmethod
    def _serves(port):
        try:
            return get_once(port, "/", timeout=2)[0] == 200
        except OSError:
            return False

    @staticmethod
    def _unix_socket_inode(path):
        with open("/proc/net/unix") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 8 and fields[7] == path:
                    return int(fields[6])
        raise AssertionError("no unix socket bound at %s" % path)

    @staticmethod
    def _socket_inodes(pid):
        inodes = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue  # closed meanwhile
            if link.startswith("socket:["):
                inodes.add(int(link[8:-1]))
        return inodes

    @staticmethod
    def _kill(proc):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait(EXIT_TIMEOUT)

    @staticmethod
    def _kill_pid_tree(pid):
        for p in children_of(pid) + [pid]:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass


if __name__ == "__main__":
    unittest.main()
