"""The Python that qilin's plugins ship (plugins/*/qilin/*.py) is clean.

Those files are compiled into the plugins as text and run as the modules
qilin.conf, qilin.green, ...; pyflakes checks them here, since nothing
imports them from the source tree.
"""
import glob
import os
import subprocess
import sys
import unittest

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def shipped_python():
    return sorted(glob.glob(os.path.join(SRCDIR, "plugins", "**", "qilin", "*.py"),
                            recursive=True))


class ShippedPythonTest(unittest.TestCase):
    def test_every_plugin_module_is_found(self):
        names = {os.path.relpath(p, SRCDIR) for p in shipped_python()}
        for want in ("plugins/python-wsgi/qilin/conf.py", "plugins/workers/green/qilin/green.py",
                     "plugins/workers/gevent/qilin/gevent.py",
                     "plugins/workers/eventlet/qilin/eventlet.py"):
            self.assertIn(want, names)

    def test_pyflakes(self):
        probe = subprocess.run([sys.executable, "-c", "import pyflakes"], capture_output=True)
        if probe.returncode != 0:
            self.skipTest("pyflakes is not installed (apt-get install python3-pyflakes)")
        files = shipped_python()
        res = subprocess.run([sys.executable, "-m", "pyflakes"] + files, capture_output=True,
                             text=True)
        self.assertEqual((res.returncode, res.stdout + res.stderr), (0, ""))

    def test_each_compiles(self):
        for path in shipped_python():
            with open(path, "rb") as f:
                compile(f.read(), path, "exec")


if __name__ == "__main__":
    unittest.main()
