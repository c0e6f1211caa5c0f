"""The installed plugin SDK: `make install DESTDIR=...` lays out the binary,
plugins, headers, qilin.pc, man page and examples; the out-of-tree example
plugin (examples/plugin-hello) builds from the installed copy with nothing
but `pkg-config --cflags qilin`, and the installed qilin serves requests
with it (`--plugin-dir DIR -k hello`)."""
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import qilintest
from qilintest import Server

HEADERS_SRC = os.path.normpath(os.path.join(qilintest.APPS, "..", "..", "include", "qilin"))
MAKE_TIMEOUT = 300.0


def _tool_env(extra=None):
    """The environment for make and pkg-config: without the outer make's
    jobserver (its descriptors do not reach our children) and without a
    developer's pkg-config settings."""
    env = dict(os.environ)
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "DESTDIR",
                 "PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR"):
        env.pop(name, None)
    env.update(extra or {})
    return env


def _run(cmd, env=None, cwd=None, timeout=MAKE_TIMEOUT):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, cwd=cwd, timeout=timeout)
    return proc.returncode, proc.stdout.decode("utf-8", "replace")


def _only(paths, what):
    if len(paths) != 1:
        raise AssertionError("expected one %s, found %r" % (what, paths))
    return paths[0]


def _defined_dynamic_symbols(path):
    rc, out = _run(["nm", "-D", "--defined-only", path], timeout=30)
    if rc != 0:
        raise AssertionError("nm -D %s failed: %s" % (path, out))
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


class InstalledSdkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        builddir = os.path.dirname(os.path.abspath(qilintest.qilin_bin()))
        if not os.path.exists(os.path.join(builddir, "Makefile")):
            raise unittest.SkipTest("%s is not a configured build tree" % builddir)
        for tool in ("make", "nm", os.environ.get("PKG_CONFIG", "pkg-config"),
                     os.environ.get("CC", "cc")):
            if shutil.which(tool) is None:
                raise unittest.SkipTest("%s is not installed" % tool)
        cls.tmp = tempfile.mkdtemp(prefix="qilin-sdk-")
        cls.destdir = os.path.join(cls.tmp, "root")
        rc, out = _run(["make", "-C", builddir, "install", "DESTDIR=" + cls.destdir],
                       env=_tool_env())
        if rc != 0:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise AssertionError("make install DESTDIR=%s failed:\n%s" % (cls.destdir, out[-4000:]))
        # The configured prefix is whatever distcheck or the developer chose:
        # find the layout from the installed files rather than assume /usr/local.
        cls.bin = _only(glob.glob(os.path.join(cls.destdir, "**", "bin", "qilin"),
                                  recursive=True), "bin/qilin")
        cls.prefix = os.path.dirname(os.path.dirname(cls.bin))
        cls.pc = _only(glob.glob(os.path.join(cls.destdir, "**", "pkgconfig", "qilin.pc"),
                                 recursive=True), "qilin.pc")
        cls.pcdir = os.path.dirname(cls.pc)
        cls.pkg_env = _tool_env({"PKG_CONFIG_LIBDIR": cls.pcdir,
                                 "PKG_CONFIG_SYSROOT_DIR": cls.destdir})
        cls.pkg_config = os.environ.get("PKG_CONFIG", "pkg-config")

    @classmethod
    def tearDownClass(cls):
        if not os.environ.get("QILIN_TEST_KEEP_LOGS"):
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def pkgconfig(self, *args):
        rc, out = _run([self.pkg_config] + list(args) + ["qilin"], env=self.pkg_env, timeout=30)
        self.assertEqual(rc, 0, out)
        return out.strip()

    def staged(self, path):
        """PATH (as the installed files name it) inside DESTDIR."""
        if path.startswith(self.destdir + os.sep):
            return path  # pkg-config already applied the sysroot
        return os.path.join(self.destdir, path.lstrip(os.sep))

    def plugindir(self):
        return self.staged(self.pkgconfig("--variable=plugindir"))

    def build_hello(self, workdir, env):
        example = os.path.join(self.prefix, "share", "doc", "qilin", "examples", "plugin-hello")
        shutil.copytree(example, workdir)
        return _run(["make", "CFLAGS=-O2 -g -Wall -Wextra -Werror"], env=env, cwd=workdir,
                    timeout=120)

    # -- the installed layout ----------------------------------------------

    def test_plugins_in_plugindir_without_la_files(self):
        plugindir = self.plugindir()
        names = sorted(os.listdir(plugindir))
        self.assertIn("sync.so", names)
        if os.path.exists(os.path.join(os.path.dirname(os.environ["QILIN_BIN"]), "plugins",
                                       "python-wsgi", "python3.la")):
            self.assertIn("python3.so", names)
        self.assertEqual([n for n in names if not n.endswith(".so")], [],
                         "only NAME.so belongs in the plugin directory")

    def test_headers_installed_and_self_contained(self):
        incdir = os.path.join(self.prefix, "include", "qilin")
        installed = sorted(os.listdir(incdir))
        want = sorted(set(os.path.basename(h) for h in
                          glob.glob(os.path.join(HEADERS_SRC, "*.h"))) | {"version.h"})
        self.assertEqual(installed, want, "every public header (and version.h) is installed")
        with open(os.path.join(incdir, "plugin.h")) as f:
            included = set(re.findall(r"#include <qilin/([a-z_]+\.h)>", f.read()))
        self.assertLessEqual(included, set(installed))
        with open(os.path.join(incdir, "version.h")) as f:
            self.assertRegex(f.read(), r'#define QLN_VERSION "\d+\.\d+\.\d+"')

    def test_pkgconfig_names_installed_headers(self):
        cflags = self.pkgconfig("--cflags")
        self.assertEqual(cflags, "-I" + os.path.join(self.prefix, "include"))
        self.assertRegex(self.pkgconfig("--modversion"), r"^\d+\.\d+\.\d+$")
        self.assertRegex(self.pkgconfig("--variable=abi_major"), r"^\d+$")
        self.assertTrue(os.path.isfile(os.path.join(self.plugindir(), "sync.so")),
                        "plugindir must be where make install put the plugins")

    def test_man_page_and_docs(self):
        self.assertTrue(os.path.isfile(os.path.join(self.prefix, "share", "man", "man1",
                                                    "qilin.1")))
        doc = os.path.join(self.prefix, "share", "doc", "qilin")
        for name in ("guide.md", "plugins.md", "packaging.md", "examples/hello.py",
                     "examples/systemd/qilin.service", "examples/plugin-hello/hello.c"):
            self.assertTrue(os.path.isfile(os.path.join(doc, name)), name)

    # -- the out-of-tree plugin --------------------------------------------

    def test_example_without_sdk_fails_with_one_clear_line(self):
        empty = os.path.join(self.tmp, "no-pc")
        os.makedirs(empty, exist_ok=True)
        rc, out = self.build_hello(os.path.join(self.tmp, "hello-nosdk"),
                                   _tool_env({"PKG_CONFIG_LIBDIR": empty}))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("qilin.pc not found: install qilin-dev", out)
        self.assertNotIn("No such file", out, "make must stop before the compiler runs")

    def test_hello_plugin_builds_and_serves(self):
        hello = os.path.join(self.tmp, "hello")
        rc, out = self.build_hello(hello, self.pkg_env)
        self.assertEqual(rc, 0, out)
        # The compiler saw the staged headers: no source tree, no /usr/include/qilin.
        self.assertIn("-I" + os.path.join(self.prefix, "include"), out)
        so = os.path.join(hello, "hello.so")
        self.assertEqual(_defined_dynamic_symbols(so), ["qilin_plugin"])

        # The installed binary, its installed plugins (python3 for the app)
        # and --plugin-dir for hello; nothing from the build tree.
        env = {"QILIN_PLUGIN_PATH": self.plugindir()}
        saved = os.environ["QILIN_BIN"]
        os.environ["QILIN_BIN"] = self.bin
        try:
            srv = Server(["--plugin-dir", hello, "-k", "hello", "--keep-alive", "5"],
                         workers=2, env=env)
        finally:
            os.environ["QILIN_BIN"] = saved
        with srv:
            srv.wait_log(r"hello worker \d+:", count=2)
            served = {int(p) for p in re.findall(r"hello worker (\d+): one request at a time",
                                                 srv.log_text())}
            self.assertEqual(served, set(srv.booted_pids()))
            resp = srv.get("/")
            self.assertEqual((resp.status, resp.body), (200, b"hello"))
            with srv.connect() as c:
                first = c.request("GET", "/pid")
                echo = c.request("POST", "/echo", body=b"x" * 100000)
            self.assertIn(int(first.body), served)
            self.assertEqual(echo.status, 200)
            self.assertEqual(echo.body, b"x" * 100000)
            self.assertEqual(srv.stop(signal.SIGTERM), 0, srv.diagnostics())
            self.assertIn("Shutting down: Master", srv.log_text())


class DocsExampleTest(unittest.TestCase):
    def test_plugins_md_shows_the_built_example(self):
        """docs/plugins.md's minimal worker is the example the tests above build and run."""
        top = os.path.dirname(os.path.dirname(HEADERS_SRC))
        with open(os.path.join(top, "docs", "plugins.md")) as f:
            doc = f.read()
        section = doc[doc.index("## 7. A minimal worker plugin"):doc.index("## 8.")]
        listing = re.search(r"```c\n(.*?)```", section, re.S).group(1)
        with open(os.path.join(top, "examples", "plugin-hello", "hello.c")) as f:
            self.assertEqual(listing, f.read())
        self.assertLess(listing.count("\n"), 60)


if __name__ == "__main__":
    unittest.main()
