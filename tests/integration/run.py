"""Runs one integration test file under unittest for automake's harness.

Usage: python3 run.py tests/integration/test_x.py
Prints one line per test and a closing "N passed, M failed, K skipped" line;
exits 0 when nothing failed, 77 (automake's SKIP) when everything skipped,
1 otherwise.
"""
import importlib.util
import os
import sys
import unittest


class _Result(unittest.TextTestResult):
    pass


def main():
    path = os.path.abspath(sys.argv[1])
    sys.path.insert(0, os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(
        os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    suite = unittest.defaultTestLoader.loadTestsFromModule(module)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=_Result)
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    # A setUpClass that raises SkipTest records a skip without running a
    # test, so count only the skips of tests that ran.
    skipped = sum(1 for case, _ in result.skipped if isinstance(case, unittest.TestCase))
    skipped_classes = len(result.skipped) - skipped
    passed = max(result.testsRun - failed - skipped, 0)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.stdout.flush()
    if failed:
        return 1
    if passed == 0 and (skipped or skipped_classes):
        return 77
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
