"""Runs the conformance corpus against Debian's gunicorn (by hand, not in
make check) and prints the rows it fails, to compare with qilin.

Usage: /usr/bin/python3 tests/conformance/run_gunicorn.py [-v]
Starts `python3 -m gunicorn -w 1 echoapp:app` on a free 127.0.0.1 port from
tests/apps, runs every row with the same checks as the qilin test (status,
parsed fields, and for refusals `Connection: close` and a closed
connection), and stops it. Rows about options gunicorn lacks
(limit_request_body) are still run: they show what it does instead.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import runner  # noqa: E402

APPS = os.path.normpath(os.path.join(HERE, "..", "apps"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited with %r" % proc.returncode)
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not start within %.0f s" % timeout)


def main():
    verbose = "-v" in sys.argv
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="gunicorn-conformance-", suffix=".log", delete=False)
    proc = subprocess.Popen(["/usr/bin/python3", "-m", "gunicorn", "-w", "1", "-b",
                             "127.0.0.1:%d" % port, "--chdir", APPS, "echoapp:app"],
                            stdout=log, stderr=log, start_new_session=True)
    failed = []
    try:
        wait_port(port, proc)
        version = subprocess.run(["/usr/bin/python3", "-m", "gunicorn", "--version"],
                                 capture_output=True, text=True).stdout.strip()
        for case in corpus.CASES:
            try:
                problems = runner.check(port, case, timeout=3.0)
            except (OSError, ValueError, AssertionError) as e:
                problems = ["%s: %s" % (type(e).__name__, e)]
            if problems:
                failed.append((case, problems))
            elif verbose:
                print("ok   %s" % case.name)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for case, problems in failed:
        print("FAIL %-28s %s" % (case.name, "; ".join(p[:150] for p in problems)))
    print("%s: %d of %d rows fail (log: %s)" % (version or "gunicorn", len(failed),
                                                len(corpus.CASES), log.name))


if __name__ == "__main__":
    main()
