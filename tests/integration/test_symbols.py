"""What the binary and the plugins export (`nm -D --defined-only`).

The binary exports the plugin API and nothing else of ours: exactly the
functions that include/qilin/ declares with QLN_API, besides what the
linker and libc put in every executable, and, when configure linked the
interpreter into the binary, CPython's C API: the names libpythonX.Y.so
exports, which the python3 plugin and extension modules bind to. Each plugin exports exactly
`qilin_plugin`, since plugins load RTLD_GLOBAL and any other name could be
bound by a later plugin or Python extension."""
import glob
import os
import re
import shutil
import subprocess
import sysconfig
import unittest

import qilintest

HEADERS = os.path.normpath(os.path.join(qilintest.APPS, "..", "..", "include", "qilin"))

# Defined in every dynamically linked PIE by crt1.o/crti.o and the linker
# script; none of them is ours.
LINKER_SYMBOLS = {"_IO_stdin_used", "__bss_start", "__data_start", "data_start", "_edata",
                  "_end", "_start", "_init", "_fini", "__dso_handle", "__libc_csu_init",
                  "__libc_csu_fini"}
# libc data objects an executable refers to get a copy relocation: the
# linker defines them in our .bss, with libc's version (stdout@GLIBC_2.2.5).
LIBC_COPY_RX = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*@@?GLIBC_[0-9.]+$")
# The same for the sanitizer runtimes' data in an --enable-sanitizers build
# (__asan_option_detect_stack_use_after_return, unversioned).
SANITIZER_COPY_RX = re.compile(r"^__(asan|lsan|ubsan|sanitizer)_[A-Za-z0-9_]+$")


def dynamic_symbols(path):
    """(type, name) of every defined dynamic symbol of PATH."""
    proc = subprocess.run(["nm", "-D", "--defined-only", path], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = proc.stdout.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise AssertionError("nm -D --defined-only %s failed: %s" % (path, out))
    syms = []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 2:
            syms.append((fields[-2], fields[-1]))
    return syms


def declared_api():
    """Names declared with QLN_API in the public headers (the qilin_plugin
    descriptor is the plugins' side, not the core's)."""
    names = set()
    for header in glob.glob(os.path.join(HEADERS, "*.h")):
        with open(header) as f:
            text = f.read()
        # A declaration may wrap: take everything from QLN_API to the '('.
        for m in re.finditer(r"\bQLN_API\b([^;{(]*?)\b(qln_[a-z0-9_]+)\s*\(", text):
            names.add(m.group(2))
    return names


def libpython_exports():
    """The names the shared libpython of this interpreter (the embedded one)
    exports: what a binary with the interpreter linked in exports besides ours."""
    path = os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME"))
    return {name for _, name in dynamic_symbols(path)}


def plugins():
    """The built plugins: every NAME.so in the harness's plugin path."""
    found = []
    for d in os.environ.get("QILIN_PLUGIN_PATH", "").split(":"):
        found += sorted(glob.glob(os.path.join(d, "*.so")))
    return found


@unittest.skipIf(shutil.which("nm") is None, "nm is not installed (binutils)")
class BinaryExportsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.syms = dynamic_symbols(qilintest.qilin_bin())
        cls.python = (libpython_exports() if os.environ.get("QILIN_PYTHON_LINK") == "static"
                      else set())

    def test_exports_only_the_plugin_api(self):
        stray = [name for kind, name in self.syms
                 if not name.startswith("qln_") and name not in LINKER_SYMBOLS
                 and name not in self.python and not LIBC_COPY_RX.match(name)
                 and not (kind in ("B", "D") and SANITIZER_COPY_RX.match(name))]
        self.assertEqual(stray, [], "the binary exports names that are not qln_*")

    @unittest.skipUnless(os.environ.get("QILIN_PYTHON_LINK") == "static",
                         "the interpreter is not linked into this build's binary")
    def test_exports_the_linked_interpreter(self):
        """Every name libpythonX.Y.so exports is there, or a plugin or an
        extension module could fail to load with an undefined symbol."""
        exported = {name for _, name in self.syms}
        self.assertGreater(len(self.python), 1000)
        self.assertEqual(sorted(self.python - exported), [])

    def test_exports_exactly_the_declared_api(self):
        exported = {name for _, name in self.syms if name.startswith("qln_")}
        declared = declared_api()
        self.assertGreater(len(declared), 20, "the header scan found too few declarations")
        self.assertEqual(sorted(declared - exported), [],
                         "declared QLN_API but not exported: a plugin using it fails to load")
        self.assertEqual(sorted(exported - declared), [],
                         "exported qln_* names that no public header declares")

    def test_api_functions_are_text(self):
        kinds = {name: kind for kind, name in self.syms if name.startswith("qln_")}
        self.assertEqual(sorted(n for n, k in kinds.items() if k not in ("T", "t")), [],
                         "a qln_* export that is not a function")


@unittest.skipIf(shutil.which("nm") is None, "nm is not installed (binutils)")
class PluginExportsTest(unittest.TestCase):
    def test_each_plugin_exports_only_its_descriptor(self):
        found = plugins()
        self.assertTrue(any(os.path.basename(p) == "sync.so" for p in found),
                        "no sync.so in QILIN_PLUGIN_PATH=%s" % os.environ.get("QILIN_PLUGIN_PATH"))
        for path in found:
            with self.subTest(plugin=os.path.basename(path)):
                self.assertEqual([name for _, name in dynamic_symbols(path)], ["qilin_plugin"])
                # A data symbol: the const descriptor, never a function.
                self.assertIn(dynamic_symbols(path)[0][0], ("D", "R"))


if __name__ == "__main__":
    unittest.main()
