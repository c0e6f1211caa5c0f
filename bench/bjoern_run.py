#!/usr/bin/python3
"""Runs a bench app under bjoern, the harness's fastest Python peer.

    BJOERN_DIR=DIR bjoern_run.py MODULE:CALLABLE HOST PORT

DIR holds bjoern.py and _bjoern*.so as `bench/bjoern-build` leaves them
(bjoern is not in Debian; it is built outside the repository). bjoern is one
process with no workers: it is pinned and measured like nginx.
"""
import importlib
import os
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: BJOERN_DIR=DIR bjoern_run.py MODULE:CALLABLE HOST PORT")
    sys.path.insert(0, os.environ["BJOERN_DIR"])
    sys.path.insert(0, os.getcwd())
    import bjoern
    module, _, name = sys.argv[1].partition(":")
    app = getattr(importlib.import_module(module), name or "app")
    bjoern.run(app, sys.argv[2], int(sys.argv[3]))


if __name__ == "__main__":
    main()
