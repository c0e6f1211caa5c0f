#!/usr/bin/python3
"""Where a qilin worker's time goes per request, two ways:

  --tool callgrind  instructions per request by shared object and by function
                    (valgrind; reproducible, user space only), over a bounded load
  --tool perf       CPU samples of the worker by shared object and symbol
                    (perf record -e cpu-clock, kernel included), worker pinned to CPU 0

    bench/profile.py --build BUILD_DIR [--tool callgrind|perf] [--app hello:app | --null hello]
    bench/profile.py --bjoern BJOERN_DIR --app flask_app:app     # the same for bjoern
    bench/profile.py --build BUILD_DIR --null hello --tls ec     # over TLS

Starts one qilin worker (or bjoern, built with bench/bjoern-build) on a free
127.0.0.1 port, warms it up, profiles only the measured wrk run, and stops
every process it started by pid.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the harness: server start/stop, wrk, /proc readers)


def worker_pid(master, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in run.group_pids(master):
            if pid != master:
                with open("/proc/%d/stat" % pid) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        return pid
        time.sleep(0.2)
    return None


def wrk(port, seconds, conns, close=False, scheme="http"):
    headers = ["-H", "Connection: close"] if close else []
    out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c%d" % conns, "-d%ds" % seconds]
                         + headers + ["%s://127.0.0.1:%d/" % (scheme, port)], capture_output=True,
                         text=True, timeout=seconds + 30).stdout
    m = re.search(r"(\d+) requests in", out)
    errs = re.search(r"Socket errors: .*", out)
    return int(m.group(1)) if m else 0, errs.group(0) if errs else ""


def report_callgrind(path, requests, top):
    """Inclusive-free (self) instructions per request, by object and by function."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                         capture_output=True, text=True).stdout
    total = None
    by_obj, by_fn = {}, []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(?[\d.]*%?\)?\s*PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
            continue
        m = re.match(r"\s*([\d,]+)\s+\([\s\d.]+%\)\s+(\S.*?):(\S+) \[(.+)\]\s*$", line)
        if m:
            ir = int(m.group(1).replace(",", ""))
            obj = os.path.basename(m.group(4))
            by_obj[obj] = by_obj.get(obj, 0) + ir
            by_fn.append((ir, m.group(3), obj))
    if not total or not requests:
        print(out[-3000:])
        return
    print("%d requests profiled; %.0f instructions per request in the worker (user space)\n"
          % (requests, total / requests))
    print("| shared object | instr/request | share |\n|---|---|---|")
    for obj, ir in sorted(by_obj.items(), key=lambda kv: -kv[1]):
        print("| %s | %.0f | %.1f%% |" % (obj, ir / requests, 100.0 * ir / total))
    print("\n| function | object | instr/request | share |\n|---|---|---|---|")
    for ir, fn, obj in sorted(by_fn, reverse=True)[:top]:
        print("| %s | %s | %.0f | %.1f%% |" % (fn, obj, ir / requests, 100.0 * ir / total))


def report_perf(path, top):
    for sort in ("dso", "dso,sym"):
        out = subprocess.run(["perf", "report", "-i", path, "--stdio", "--no-children",
                              "--sort", sort, "-g", "none"], capture_output=True,
                             text=True).stdout
        rows = [line for line in out.splitlines() if "%" in line and not line.startswith("#")]
        print("\n".join(rows[:top if sort != "dso" else 20]) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=".", help="the qilin build tree")
    ap.add_argument("--tool", choices=("callgrind", "perf"), default="callgrind")
    ap.add_argument("--app", default="hello:app", help="app spec from bench/apps [hello:app]")
    ap.add_argument("--null", metavar="MODE", help="serve with the C null plugin instead")
    ap.add_argument("--seconds", type=int, default=5, help="length of the profiled run [5]")
    ap.add_argument("--conns", type=int, default=50, help="wrk connections [50]")
    ap.add_argument("--top", type=int, default=30, help="functions to list [30]")
    ap.add_argument("--keep", metavar="FILE", help="copy the raw callgrind/perf data to FILE")
    ap.add_argument("--close", action="store_true",
                    help="the client sends Connection: close (a connection per request)")
    ap.add_argument("--qilin-args", default="", metavar="ARGS",
                    help="more qilin arguments, e.g. '-k gthread --threads 4'")
    ap.add_argument("--tls", choices=("ec", "rsa"),
                    help="serve over TLS with a self-signed ECDSA P-256 or RSA 2048 certificate")
    ap.add_argument("--bjoern", metavar="DIR",
                    help="profile bjoern built in DIR (bench/bjoern-build) instead of qilin")
    opts = ap.parse_args()
    build = os.path.abspath(opts.build)
    tmp = tempfile.mkdtemp(prefix="qilin-profile-")
    env = run.Env(build, tmp, opts.bjoern and os.path.abspath(opts.bjoern))
    if opts.bjoern:
        server = run.bjoern_server(env, opts.app)[0]
    else:
        server = run.qilin_server(env, "qilin-profile", opts.null or opts.app, 1,
                                  extra=["-t", "0"] + opts.qilin_args.split(),
                                  null=bool(opts.null), tls=opts.tls)
    if opts.tool == "callgrind":
        # Instrumentation off until the warm-up is over: startup and the app
        # import are not part of a request.
        server.argv = ["valgrind", "--tool=callgrind", "--trace-children=yes",
                       "--instr-atstart=no", "--callgrind-out-file=%s/cg.%%p" % tmp] + server.argv
    port = run.free_port()
    scheme = "https" if opts.tls else "http"
    try:
        server.start(port, True, tmp)
        if not run.wait_ready(server, port, timeout=120):
            sys.exit("%s did not answer: %s" % (server.name, server.log_tail(5)))
        worker = server.pid if server.single else worker_pid(server.pid)
        if opts.tool == "callgrind":
            subprocess.run(["callgrind_control", "-i", "on", str(worker)], capture_output=True)
            wrk(port, 2, opts.conns, opts.close, scheme)
            subprocess.run(["callgrind_control", "-z", str(worker)], capture_output=True)
            requests, errs = wrk(port, opts.seconds, opts.conns, opts.close, scheme)
            subprocess.run(["callgrind_control", "-d", "profiled", str(worker)],
                           capture_output=True)
            subprocess.run(["callgrind_control", "-i", "off", str(worker)], capture_output=True)
            dumps = sorted(f for f in os.listdir(tmp) if f.startswith("cg.%d." % worker))
            print("wrk: %s" % errs)
            if opts.keep:
                shutil.copy(os.path.join(tmp, dumps[-1]), opts.keep)
            report_callgrind(os.path.join(tmp, dumps[-1]), requests, opts.top)
        else:
            wrk(port, 2, opts.conns, opts.close, scheme)
            data = os.path.join(tmp, "perf.data")
            rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-o", data, "-p",
                                    str(worker)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            run.STARTED_WRK.append(rec)
            requests, errs = wrk(port, opts.seconds, opts.conns, opts.close, scheme)
            rec.send_signal(2)
            rec.wait(timeout=30)
            run.STARTED_WRK.remove(rec)
            print("%d requests in %d s under perf; wrk: %s\n" % (requests, opts.seconds, errs))
            if opts.keep:
                shutil.copy(data, opts.keep)
            report_perf(data, opts.top)
    finally:
        for p in list(run.STARTED_WRK):
            p.kill()
            p.wait()
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
