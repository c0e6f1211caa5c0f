"""The HTTP/1.1 conformance corpus (tests/conformance/corpus.py) against the
real server, once per worker class whose plugin is built: every valid row
answered with the fields the app must see, every invalid one refused with
the right status, `Connection: close`, a closed connection, one `Invalid
request from ip=` log line, and the same worker serving the next request."""
import os
import re
import sys
import unittest

from qilintest import APPS, ASGI_CLASS, Server, built_worker_classes, worker_built

sys.path.insert(0, os.path.normpath(os.path.join(APPS, "..", "conformance")))
import corpus  # noqa: E402
import runner  # noqa: E402

INVALID_RX = re.compile(r"Invalid request from ip=127\.0\.0\.1: ")

# Rows the asyncio worker does not run. Its app (asgiechoapp, the echo app's
# twin) reports the scope under the environ names; these rows want what
# only WSGI has.
ASGI_EXCLUDED = {
    "pct-latin1",  # PEP 3333's latin-1 PATH_INFO: an ASGI path is UTF-8 text
    "absolute-form",  # RAW_URI is the target as sent: ASGI has the path's raw_path only
    "options-asterisk",  # PEP 3333's empty PATH_INFO for '*': an ASGI path is '*'
}


class CorpusShape(unittest.TestCase):
    def test_corpus_size_and_names(self):
        names = [c.name for c in corpus.CASES]
        self.assertGreaterEqual(len(names), 80)
        self.assertEqual(len(names), len(set(names)), "duplicate row names")
        self.assertTrue(any(c.invalid for c in corpus.CASES))
        self.assertTrue(any(not c.invalid for c in corpus.CASES))

    def test_some_worker_is_built(self):
        self.assertIn("sync", built_worker_classes())


class _CorpusBase(unittest.TestCase):
    worker = None
    ruby = False  # the ruby plugin and its echo app (tests/apps/rack/echo.ru)

    @classmethod
    def setUpClass(cls):
        if cls.ruby:
            cls.srv = Server(corpus.SERVER_ARGS + ["--plugin", "ruby", "-k", cls.worker],
                             app="echo.ru", chdir=os.path.join(APPS, "rack"), workers=1)
        else:
            cls.srv = Server(corpus.SERVER_ARGS + ["-k", cls.worker], app="echoapp:app",
                             workers=1, env=runner.server_env(cls.worker))
        cls.pid = runner.worker_pid(cls.srv.port)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def invalid_lines(self):
        return len(INVALID_RX.findall(self.srv.log_text()))

    def run_case(self, case):
        before = self.invalid_lines()
        problems = runner.check(self.srv.port, case)
        self.assertEqual(problems, [], "%s (%s): %r" % (case.name, case.ref, case.raw[:120]))
        self.assertEqual(runner.worker_pid(self.srv.port), self.pid, "the worker was replaced")
        if case.invalid:
            self.srv.wait_log(INVALID_RX.pattern, count=before + 1)
            self.assertEqual(self.invalid_lines(), before + 1,
                             "want exactly one log line for %s" % case.name)
        else:
            self.assertEqual(self.invalid_lines(), before, "a valid request was logged as invalid")


class ScriptName(unittest.TestCase):
    """SCRIPT_NAME from -e SCRIPT_NAME=/prefix: cut off PATH_INFO (after
    percent-decoding, absolute-form included); a path outside it is a
    configuration error answered 500, as gunicorn does."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(["-e", "SCRIPT_NAME=/prefix"], app="echoapp:app", workers=1)

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def check(self, raw, status, env=None):
        case = corpus.Case("script-name", raw, status, env=env)
        self.assertEqual(runner.check(self.srv.port, case), [])

    def test_prefix_stripped(self):
        self.check(corpus.req(b"GET /prefix/a%20b?x=1 HTTP/1.1"), 200,
                   {"SCRIPT_NAME": "/prefix", "PATH_INFO": "/a b", "QUERY_STRING": "x=1",
                    "RAW_URI": "/prefix/a%20b?x=1"})

    def test_prefix_encoded(self):
        self.check(corpus.req(b"GET /pre%66ix/y HTTP/1.1"), 200,
                   {"SCRIPT_NAME": "/prefix", "PATH_INFO": "/y"})

    def test_prefix_absolute_form(self):
        self.check(corpus.req(b"GET http://example.com/prefix/z HTTP/1.1"), 200,
                   {"SCRIPT_NAME": "/prefix", "PATH_INFO": "/z"})

    def test_prefix_alone(self):
        self.check(corpus.req(b"GET /prefix HTTP/1.1"), 200,
                   {"SCRIPT_NAME": "/prefix", "PATH_INFO": ""})

    def test_outside_prefix_is_500(self):
        resp = self.srv.get("/elsewhere")
        self.assertEqual(resp.status, 500)
        self.srv.wait_log(r"does not start with SCRIPT_NAME")


def _make_test(case):
    def test(self):
        self.run_case(case)
    test.__doc__ = None
    return test


for _worker in built_worker_classes():
    _attrs = {"worker": _worker}
    for _i, _case in enumerate(corpus.CASES):
        if _worker != ASGI_CLASS or _case.name not in ASGI_EXCLUDED:
            _attrs["test_%03d_%s" % (_i, _case.name.replace("-", "_"))] = _make_test(_case)
    globals()["Corpus_%s" % _worker] = type("Corpus_%s" % _worker, (_CorpusBase,), _attrs)
    # The same rows with a Rack app, on the classes the ruby plugin serves on.
    if _worker in ("sync", "gthread") and worker_built("ruby"):
        _attrs = dict(_attrs, ruby=True)
        globals()["Corpus_ruby_%s" % _worker] = type("Corpus_ruby_%s" % _worker, (_CorpusBase,),
                                                     _attrs)
del _worker

if __name__ == "__main__":
    unittest.main()
