#!/bin/sh
# The gthread worker against gunicorn's, measured with the same wrk runs on
# 127.0.0.1 (issue 5). Not part of `make check`: it measures, never asserts.
#
#  1. hello: one worker pinned to CPU 0 (taskset), --threads 4, wrk -t1 -c50
#     on CPU 1; qilin -k gthread vs gunicorn -k gthread; the ratio.
#  2. blocking: time.sleep(0.05), 2 workers x 100 threads, wrk -c200. The
#     bound is 200 connections / 0.05 s = 4,000 req/s; each server's share.
#
#   bench/gthread.sh [BUILD_DIR]     (default: _build; BENCH_DURATION=5s)
# Each server runs in the background and is stopped by its pid.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/_build}
duration=${BENCH_DURATION:-5s}
py=/usr/bin/python3
apps=$(mktemp -d /tmp/qilin-bench-gthread.XXXXXX)
trap 'rm -rf "$apps"' EXIT

cat >"$apps/benchhello.py" <<'PY'
BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
PY
cat >"$apps/benchsleepy.py" <<'PY'
import time

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    time.sleep(0.05)
    start_response("200 OK", HEADERS)
    return [BODY]
PY

export QILIN_PLUGIN_PATH="$build/plugins/workers/gthread/.libs:$build/plugins/python-wsgi/.libs"

# $1 label, $2 port, $3 connections, $4 wrk cpu list; prints and returns req/s in $rps.
run_wrk() {
    sleep 1.5
    out=$(taskset -c "$4" wrk -t1 -c"$3" -d"$duration" "http://127.0.0.1:$2/" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { printf "%s ", $0 }')
    printf '%-28s %10s req/s  %s\n' "$1" "${rps:-?}" "$errs"
}

stop() {
    kill -TERM "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

echo "== hello, 1 worker pinned to CPU 0, --threads 4, wrk -t1 -c50 -d$duration on CPU 1"
taskset -c 0 "$build/qilin" -k gthread --threads 4 -w 1 -b 127.0.0.1:18511 --chdir "$apps" \
    --log-level warning benchhello:app &
pid=$!
run_wrk qilin-gthread-hello 18511 50 1
q_hello=$rps
stop $pid

taskset -c 0 $py -m gunicorn -k gthread --threads 4 -w 1 -b 127.0.0.1:18512 --chdir "$apps" \
    --log-level warning benchhello:app &
pid=$!
run_wrk gunicorn-gthread-hello 18512 50 1
g_hello=$rps
stop $pid

echo "== blocking app (sleep 50 ms), 2 workers x 100 threads, wrk -t1 -c200 -d$duration"
"$build/qilin" -k gthread --threads 100 -w 2 -b 127.0.0.1:18513 --chdir "$apps" \
    --log-level warning benchsleepy:app &
pid=$!
run_wrk qilin-gthread-blocking 18513 200 0-1
q_block=$rps
stop $pid

$py -m gunicorn -k gthread --threads 100 -w 2 -b 127.0.0.1:18514 --chdir "$apps" \
    --log-level warning benchsleepy:app &
pid=$!
run_wrk gunicorn-gthread-blocking 18514 200 0-1
g_block=$rps
stop $pid

awk -v q="$q_hello" -v g="$g_hello" -v qb="$q_block" -v gb="$g_block" 'BEGIN {
    if (g > 0) printf "hello ratio qilin/gunicorn: %.1fx\n", q / g
    printf "blocking, share of the 4000 req/s bound: qilin %.0f%%, gunicorn %.0f%%\n",
        qb / 40, gb / 40
}'
