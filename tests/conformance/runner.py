"""Runs one corpus row (corpus.Case) against a server on 127.0.0.1:PORT and
says what was wrong. Shared by tests/integration/test_conformance.py (qilin,
in make check) and tests/conformance/run_gunicorn.py (gunicorn, by hand).
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from qilintest import Conn, IncompleteResponse, green_asan_env  # noqa: E402


def check(port, case, timeout=5.0):
    """Sends CASE.raw on a fresh connection. Returns a list of problems
    (empty when the server behaved as the row says)."""
    problems = []
    statuses = case.statuses or [case.status]
    method = case.raw.split(b" ", 1)[0].decode("latin-1")
    with Conn(port, timeout) as c:
        try:
            c.send(case.raw)
        except OSError as e:
            # A server may answer an invalid request and close before it is sent whole.
            if not case.invalid:
                problems.append("send failed: %s" % e)
        responses = []
        try:
            for _ in statuses:
                responses.append(c.read_response(method))
        except IncompleteResponse as e:
            problems.append("no complete response: %s" % e)
            return problems
        got = [r.status for r in responses]
        if got != statuses:
            problems.append("status %s, want %s" % (got, statuses))
            return problems
        resp = responses[0]
        if case.invalid:
            if resp.header("Date") is None:
                problems.append("no Date header on %d (RFC 9110 6.6.1)" % resp.status)
            conn = (resp.header("Connection") or "").lower()
            if conn != "close":
                problems.append("no 'Connection: close' on %d (got %r)" % (resp.status, conn))
            try:
                if not c.closed_by_peer():
                    problems.append("more data after the error response")
            except IncompleteResponse:
                problems.append("connection left open after %d" % resp.status)
            return problems
        if case.body is not None and resp.body != case.body:
            problems.append("body %r, want %r" % (resp.body[:80], case.body))
        if case.env and method != "HEAD":
            try:
                env = json.loads(resp.body)
            except ValueError:
                problems.append("body is not the echo app's JSON: %r" % resp.body[:200])
                return problems
            for key, want in case.env.items():
                if env.get(key, "<absent>") != want:
                    problems.append("%s = %r, want %r" % (key, env.get(key, "<absent>"), want))
    return problems


def server_env(worker):
    """Environment for a qilin running WORKER (qilintest.green_asan_env)."""
    return green_asan_env(worker)


def worker_pid(port, timeout=5.0):
    """The pid of the worker that serves a plain request (echoapp says it)."""
    with Conn(port, timeout) as c:
        resp = c.request("GET", "/pid")
    return json.loads(resp.body)["pid"]
