"""How the embedded interpreter is linked, seen from a running worker of
every class. Built with the static interpreter (configure's default when
libpythonX.Y.a is installed), the worker maps no libpythonX.Y.so: the
interpreter is the qilin binary's own, and ctypes and lib-dynload extension
modules find its C API there. With --disable-python-static the worker maps
the shared library instead. Either way the app behaves the same."""
import json
import os
import unittest

from qilintest import Server, per_worker_class

LINK = os.environ.get("QILIN_PYTHON_LINK", "")


@unittest.skipUnless(LINK in ("static", "shared"), "QILIN_PYTHON_LINK is not set (run by make check)")
class PythonLinkTest(unittest.TestCase):
    def test_interpreter_link(self):
        with Server(app="linkapp:app") as srv:
            resp = srv.get("/", timeout=20)
        self.assertEqual(resp.status, 200, resp.body)
        got = json.loads(resp.body)
        self.assertEqual(got["initialized"], 1)
        self.assertEqual(got["decimal"], "0.125")
        self.assertEqual(got["openssl"], "OpenSSL")
        if LINK == "static":
            self.assertEqual(got["libpython_so"], [],
                             "the static build's worker must not load libpython*.so")
        else:
            self.assertTrue(got["libpython_so"], "the shared build's worker maps libpython*.so")


per_worker_class(globals(), PythonLinkTest)

if __name__ == "__main__":
    unittest.main()
