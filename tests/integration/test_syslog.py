"""--log-syslog and its settings, against Debian's rsyslogd started with a
private configuration (UDP, TCP and a unix socket, each written to a file
with the priority and the tag): the lines arrive in gunicorn's format,
"gunicorn.PREFIX.error: [PID] MESSAGE" and ".access" with the access line,
on every worker class."""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from qilintest import Server, free_port, per_worker_class, run_qilin, wait_for

RSYSLOGD = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd"
                                        if os.path.exists("/usr/sbin/rsyslogd") else None)

CONF = """\
global(workDirectory="{tmp}")
module(load="imudp")
input(type="imudp" address="127.0.0.1" port="{udp}")
module(load="imtcp" AddtlFrameDelimiter="0")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{tmp}/log.sock")
template(name="raw" type="string" string="%pri% %syslogtag%%msg%\\n")
*.* action(type="omfile" file="{tmp}/out.log" template="raw")
"""


@unittest.skipUnless(RSYSLOGD and os.geteuid() == 0, "rsyslogd is not installed, or not root")
class SyslogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qilin-syslog-")
        cls.udp, cls.tcp = free_port(), free_port()
        conf = os.path.join(cls.tmp, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(tmp=cls.tmp, udp=cls.udp, tcp=cls.tcp))
        cls.out = os.path.join(cls.tmp, "out.log")
        cls.daemon = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", conf, "-i", os.path.join(cls.tmp, "rsyslog.pid")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_for(lambda: os.path.exists(os.path.join(cls.tmp, "log.sock")), 20,
                 what="rsyslogd's socket")

    @classmethod
    def tearDownClass(cls):
        cls.daemon.send_signal(signal.SIGTERM)
        try:
            cls.daemon.wait(20)
        except subprocess.TimeoutExpired:
            cls.daemon.kill()
            cls.daemon.wait(20)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def received(self):
        if not os.path.exists(self.out):
            return ""
        with open(self.out, errors="replace") as f:
            return f.read()

    def wait_line(self, text):
        wait_for(lambda: text in self.received(), 20, what="%r from rsyslogd" % text)

    def serve_and_check(self, to, extra=(), prefix=None, access=True):
        mark = "/hello?via=%s" % os.urandom(4).hex()
        with Server(["--log-syslog", "--log-syslog-to", to] + list(extra)) as srv:
            # By default, the app ("testapp:app", or its ASGI twin) with '.' for ':'.
            prefix = prefix or srv.cmd[-1].replace(":", ".")
            worker = srv.wait_workers(1)[0]
            self.assertEqual(srv.get(mark).status, 200)
            # user.info is 14, local3.info 158; the tag is gunicorn's.
            pri = "158" if "local3" in extra else "14"
            self.wait_line("%s gunicorn.%s.error: [%d] Booting worker with pid: %d"
                           % (pri, prefix, worker, worker))
            if access:
                self.wait_line('%s gunicorn.%s.access: [%d] 127.0.0.1 - - [' % (pri, prefix, worker))
                self.wait_line('"GET %s HTTP/1.1" 200 ' % mark)
            # The error log file keeps its lines too.
            self.assertIn("Booting worker with pid: %d" % worker, srv.log_text())
        if not access:
            self.assertNotIn(mark, self.received())

    def test_udp(self):
        self.serve_and_check("udp://127.0.0.1:%d" % self.udp)

    def test_tcp_with_facility(self):
        self.serve_and_check("tcp://127.0.0.1:%d" % self.tcp, ["--log-syslog-facility", "local3"])

    def test_unix_with_prefix_and_no_access(self):
        self.serve_and_check("unix://%s/log.sock" % self.tmp,
                             ["--log-syslog-prefix", "shop", "--disable-redirect-access-to-syslog"],
                             prefix="shop", access=False)

    def test_error_with_traceback(self):
        with Server(["--log-syslog", "--log-syslog-to", "udp://127.0.0.1:%d" % self.udp]) as srv:
            worker = srv.wait_workers(1)[0]
            self.assertEqual(srv.get("/raise").status, 500)
            self.wait_line("11 gunicorn.%s.error: [%d] " % (srv.cmd[-1].replace(":", "."), worker))
            self.wait_line('RuntimeError: boom from testapp')

    def test_bad_settings_are_one_line(self):
        for args, words in (
                (["--log-syslog-to", "http://x"], "invalid --log-syslog-to 'http://x': use"
                                                  " udp://HOST:PORT, tcp://HOST:PORT or unix://PATH"),
                (["--log-syslog-facility", "nope"], "invalid --log-syslog-facility 'nope'")):
            r = run_qilin(["-b", "127.0.0.1:0", "--log-syslog"] + args + ["testapp:app"])
            self.assertNotEqual(r.returncode, 0, r.output)
            self.assertIn(words, r.output)
            self.assertNotIn("Traceback", r.output)


per_worker_class(globals(), SyslogTest)


if __name__ == "__main__":
    unittest.main()
