#!/usr/bin/python3
"""What an ASGI app costs by itself, with no server: the floor under any
server's CPU per request for that app.

    bench/appcost.py [--loop uvloop|asyncio] [--calls N] module:app

Imports the app from bench/apps (or the current directory), then awaits
app(scope, receive, send) N times in a row in one coroutine on the loop,
with a fresh GET / scope each time (the keys a server gives), a receive()
that returns the empty body, and a send() that does nothing. No socket, no
parsing, no Task per request: what is left is the app's own Python. It
prints one line, `app=... loop=... calls=N cpu_s=... us_per_call=...`, CPU
being this process's (time.process_time) over the timed calls after a
warm-up. bench/run.py runs it, pinned as the server was, for the ASGI
cases' ceiling.
"""
import argparse
import asyncio
import importlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def scope():
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/",
            "raw_path": b"/", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"),
                        (b"accept", b"*/*")],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {}}


REQUEST = {"type": "http.request", "body": b"", "more_body": False}


async def receive():
    return REQUEST


async def send(message):
    if message["type"] not in ("http.response.start", "http.response.body"):
        raise RuntimeError("unexpected ASGI message %r" % message["type"])


async def run(app, warmup, calls):
    for _ in range(warmup):
        await app(scope(), receive, send)
    t = time.process_time()
    for _ in range(calls):
        await app(scope(), receive, send)
    return time.process_time() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("app", help="module:attribute, imported from bench/apps")
    ap.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    ap.add_argument("--calls", type=int, default=20000)
    opts = ap.parse_args()
    sys.path[:0] = [os.path.join(HERE, "apps"), os.getcwd()]
    module, _, attr = opts.app.partition(":")
    app = getattr(importlib.import_module(module), attr or "app")
    if opts.loop == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        cpu = loop.run_until_complete(run(app, max(1000, opts.calls // 10), opts.calls))
    finally:
        loop.close()
    print("app=%s loop=%s calls=%d cpu_s=%.4f us_per_call=%.2f"
          % (opts.app, opts.loop, opts.calls, cpu, 1e6 * cpu / opts.calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
