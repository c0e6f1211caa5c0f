"""--paste (--paster) and --paste-global: a Pyramid-style PasteDeploy .ini
app (tests/apps/paste.ini, pasteapp.py), as gunicorn's pasterapp loads it,
on every WSGI worker class."""
import json
import os
import shutil
import tempfile
import unittest

from qilintest import APPS, WSGI_CLASSES, Server, per_worker_class, run_qilin, wait_for


def have_pastedeploy():
    import subprocess
    return subprocess.run(["/usr/bin/python3", "-c", "import paste.deploy"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@unittest.skipUnless(have_pastedeploy(), "python3-pastedeploy is not installed")
class PasteTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-paste-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        for name in ("paste.ini", "pasteapp.py"):
            shutil.copy(os.path.join(APPS, name), self.tmp)

    def serve(self, args):
        return Server(args, app=None, chdir=self.tmp)

    def test_main_section_global_conf_and_logging(self):
        args = ["--paste", "paste.ini", "--paste-global", "FOO=1", "--paste-global", "a\\=b=c=d"]
        with self.serve(args) as srv:
            got = json.loads(srv.get("/hello").body)
            self.assertEqual(got["settings"], {"greeting": "hello from main"})
            self.assertEqual(got["global"], {"FOO": "1", "a=b": "c=d"})
            self.assertEqual(got["here"], self.tmp)
            # The file's [loggers] configure Python's logging in the worker.
            log = os.path.join(self.tmp, "paste.log")

            def logged():
                if not os.path.exists(log):
                    return False
                with open(log) as f:
                    return "PASTE pasteapp: served /hello" in f.read()
            wait_for(logged, 10, what="the app's log line in paste.log")

    def test_named_section_with_paster_spelling(self):
        with self.serve(["--paster", "paste.ini#admin"]) as srv:
            got = json.loads(srv.get("/").body)
            self.assertEqual(got["settings"], {"greeting": "hello from admin"})

    def test_missing_file_is_one_line(self):
        r = run_qilin(["-b", "127.0.0.1:0", "--chdir", self.tmp, "--paste", "nope.ini"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PasteDeploy file '%s' not found (check --paste)"
                      % os.path.join(self.tmp, "nope.ini"), r.output)
        self.assertNotIn("Traceback", r.output)

    def test_bad_global_conf_is_one_line(self):
        r = run_qilin(["-b", "127.0.0.1:0", "--chdir", self.tmp, "--paste", "paste.ini",
                       "--paste-global", "novalue"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--paste-global 'novalue': expected KEY=VALUE", r.output)


per_worker_class(globals(), PasteTest, classes=WSGI_CLASSES)


if __name__ == "__main__":
    unittest.main()
