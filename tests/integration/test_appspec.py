"""How the python3 plugin finds the app: module:callable, module:factory(),
a bare module (its `application`), --chdir, --pythonpath, --preload."""
import os
import shutil
import tempfile
import unittest

from qilintest import Server

PLAIN_APP = '''
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "%d")])
    return [%r]
'''


def write_module(directory, name, body):
    with open(os.path.join(directory, name + ".py"), "w") as f:
        f.write(PLAIN_APP % (len(body), body))


class AppSpecTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="qilin-spec-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def test_factory_call(self):
        with Server(app="factoryapp:create_app()") as srv:
            self.assertEqual(srv.get("/").body, b"from factory")

    def test_module_alone_means_application(self):
        with Server(app="factoryapp") as srv:
            self.assertEqual(srv.get("/").body, b"from application")

    def test_chdir_puts_the_directory_on_sys_path(self):
        write_module(self.tmp, "chdirmod", b"from chdir")
        with Server(app="chdirmod:app", chdir=self.tmp) as srv:
            self.assertEqual(srv.get("/").body, b"from chdir")

    def test_pythonpath(self):
        write_module(self.tmp, "ppmod", b"from pythonpath")
        other = tempfile.mkdtemp(prefix="qilin-spec-other-")
        self.addCleanup(shutil.rmtree, other, True)
        write_module(other, "ppmod2", b"second entry")
        with Server(["--pythonpath", "%s,%s" % (self.tmp, other)], app="ppmod:app") as srv:
            self.assertEqual(srv.get("/").body, b"from pythonpath")
        with Server(["--pythonpath", "%s,%s" % (self.tmp, other)], app="ppmod2:app") as srv:
            self.assertEqual(srv.get("/").body, b"second entry")

    def test_app_imported_in_worker_by_default(self):
        with Server(app="preloadapp:app") as srv:
            imported_by, serving = srv.get("/").body.split()
            [worker] = srv.wait_workers(1)
        self.assertEqual(int(imported_by), worker)
        self.assertEqual(int(serving), worker)

    def test_preload_imports_in_master(self):
        with Server(["--preload"], app="preloadapp:app", workers=2) as srv:
            workers = srv.wait_workers(2)
            imported_by, serving = srv.get("/").body.split()
        self.assertEqual(int(imported_by), srv.pid)
        self.assertIn(int(serving), workers)

    def test_preload_failure_exits_before_forking(self):
        with Server(["--preload"], app="no_such_module_xyz:app", wait=False) as srv:
            self.assertEqual(srv.wait(), 1)  # gunicorn's master dies of the exception
            self.assertIn("no_such_module_xyz", srv.log_text() + srv.output_text())
            self.assertEqual(srv.booted_pids(), [])

    def test_import_error_inside_app_is_reported(self):
        with open(os.path.join(self.tmp, "brokenmod.py"), "w") as f:
            f.write("import os\nraise ValueError('broken at import')\n")
        with Server(app="brokenmod:app", chdir=self.tmp, wait=False) as srv:
            # As gunicorn: the app's own code raised, so the worker failed to
            # boot (3); a module or callable that is not there is 4.
            self.assertEqual(srv.wait(), 3)
            text = srv.log_text() + srv.output_text()
            self.assertIn("ValueError: broken at import", text)
            self.assertIn("Reason: Worker failed to boot.", text)
            self.assertLessEqual(len(srv.booted_pids()), 1, text)


if __name__ == "__main__":
    unittest.main()
