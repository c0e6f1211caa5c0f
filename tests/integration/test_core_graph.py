"""The core is layered: tools/core-graph finds no cycle among its files.

A cycle means two files that can be neither read nor tested apart, so the
check runs on the real tree; the other tests feed the script small trees
to pin what makes an edge (an include, a call to another file's non-static
function) and what does not (a static function, a name in a comment or a
string).
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

SRCDIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(SRCDIR, "tools", "core-graph")


def core_graph(*args):
    res = subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True)
    return res.returncode, res.stdout + res.stderr


class RealTreeTest(unittest.TestCase):
    def test_no_file_cycle(self):
        rc, out = core_graph("--check")
        self.assertEqual(rc, 0, "the core's files form a cycle:\n" + out)


class SyntheticTreeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.core = os.path.join(self.tmp.name, "core")
        os.mkdir(self.core)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, files):
        for name, text in files.items():
            with open(os.path.join(self.core, name), "w") as f:
                f.write(textwrap.dedent(text))

    def check(self, *args):
        return core_graph(*args, self.core)

    def test_call_cycle(self):
        self.write({
            "a.c": """
                int
                a_fn(void)
                {
                    return b_fn();
                }
                """,
            "b.c": """
                int
                b_fn(void)
                {
                    return a_fn () + 1;
                }
                """,
        })
        rc, out = self.check("--check")
        self.assertEqual(rc, 1, out)
        self.assertIn("cycle: a.c b.c", out)
        self.assertIn("a.c -> b.c (b_fn())", out)
        self.assertIn("b.c -> a.c (a_fn())", out)

    def test_include_cycle(self):
        self.write({
            "a.h": '#include "b.h"\n',
            "b.h": '#include "a.h"\n',
            "c.c": '#include "a.h"\n',
        })
        rc, out = self.check("--check")
        self.assertEqual(rc, 1, out)
        self.assertIn("cycle: a.h b.h", out)
        self.assertNotIn("c.c", out)

    def test_static_functions_make_no_edge(self):
        # Each file calls its own static helper(); were either taken for the
        # other's, the two files would form a cycle.
        body = """
            static int
            helper(void)
            {
                return 1;
            }

            int
            %s(void)
            {
                return helper();
            }
            """
        self.write({"a.c": body % "a_fn", "b.c": body % "b_fn"})
        rc, out = self.check("--check")
        self.assertEqual((rc, out), (0, ""))
        rc, out = self.check()
        self.assertIn("core/a.c -> \n", out)
        self.assertIn("core/b.c -> \n", out)

    def test_names_in_comments_and_strings_make_no_edge(self):
        self.write({
            "a.c": """
                int
                a_fn(void)
                {
                    return b_fn();
                }
                """,
            "b.c": """
                /* Not a call: a_fn(). */
                int
                b_fn(void)
                {
                    // a_fn(1) would loop
                    puts("a_fn()");
                    return '"' + 0;
                }
                """,
        })
        rc, out = self.check("--check")
        self.assertEqual((rc, out), (0, ""))

    def test_layered_tree(self):
        self.write({
            "util.h": "int util_len(const char *s);\n",
            "util.c": """
                #include "util.h"

                int
                util_len(const char *s)
                {
                    return s[0] != 0;
                }
                """,
            "conn.h": '#include "util.h"\nint conn_run(void);\n',
            "conn.c": """
                #include "conn.h"
                #include "util.h"

                static int __attribute__((unused)) conn_local(void)
                {
                    return 0;
                }

                int
                conn_run(void)
                {
                    return util_len("x");
                }
                """,
            "main.c": """
                #include "conn.h"

                int
                main(void)
                {
                    return conn_run() + util_len("");
                }
                """,
        })
        self.assertEqual(self.check("--check"), (0, ""))
        self.assertEqual(self.check("--check-modules"), (0, ""))
        rc, out = self.check()
        self.assertEqual(rc, 0, out)
        self.assertIn("core/conn.c -> conn.h util.h | calls: util.c\n", out)
        self.assertIn("core/main.c -> conn.h | calls: conn.c util.c\n", out)
        self.assertIn("no cycles", out)
        rc, out = self.check("--modules")
        self.assertIn("main -> conn util\n", out)
        self.assertIn("conn -> util\n", out)

    def test_module_cycle(self):
        # a.c -> b.h and b.c -> a.c: no cycle among the files, but the
        # modules a and b depend on each other.
        self.write({
            "a.c": """
                #include "b.h"

                int
                a_fn(void)
                {
                    return B_ONE;
                }
                """,
            "b.h": "#define B_ONE 1\n",
            "b.c": """
                int
                b_fn(void)
                {
                    return a_fn();
                }
                """,
        })
        self.assertEqual(self.check("--check"), (0, ""))
        rc, out = self.check("--check-modules")
        self.assertEqual(rc, 1, out)
        self.assertIn("cycle: a b", out)


if __name__ == "__main__":
    unittest.main()
