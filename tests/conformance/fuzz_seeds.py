"""Writes one libFuzzer seed file per conformance corpus row into DIR.

Usage: python3 fuzz_seeds.py DIR
The fuzz target reads the first byte as its settings (0: gunicorn's default
limits), so each seed is that byte followed by the row's raw request.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus  # noqa: E402


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for case in corpus.CASES:
        with open(os.path.join(out, case.name), "wb") as f:
            f.write(b"\x00" + case.raw)
    print("%d seeds in %s" % (len(corpus.CASES), out))


if __name__ == "__main__":
    main()
