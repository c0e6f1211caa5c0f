#!/bin/sh
# First rough throughput figure: the hello app under qilin's sync worker and
# gunicorn's sync worker, one worker each, measured with the same wrk run
# (wrk -t1 -c50 -d5s) on 127.0.0.1. Bounded: each server is stopped by pid.
#
#   bench/hello.sh [BUILD_DIR]     (default: _build)
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/_build}
apps=$top/examples
duration=${BENCH_DURATION:-5s}

run_wrk() {
    # $1 label, $2 port
    sleep 1
    out=$(wrk -t1 -c50 -d"$duration" "http://127.0.0.1:$2/" 2>&1)
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { print }')
    printf '%-18s %10s req/s  %s\n' "$1" "${rps:-?}" "$errs"
    echo "$rps" >"/tmp/qilin-bench-$1.rps"
}

QILIN_PLUGIN_PATH="$build/plugins/workers/sync/.libs:$build/plugins/python-wsgi/.libs" \
    "$build/qilin" -w 1 -b 127.0.0.1:18501 --chdir "$apps" --log-level warning hello:app &
qpid=$!
run_wrk qilin-sync 18501
kill -TERM $qpid; wait $qpid 2>/dev/null

/usr/bin/python3 -m gunicorn -w 1 -b 127.0.0.1:18502 --chdir "$apps" --log-level warning hello:app &
gpid=$!
run_wrk gunicorn-sync 18502
kill -TERM $gpid; wait $gpid 2>/dev/null

q=$(cat /tmp/qilin-bench-qilin-sync.rps); g=$(cat /tmp/qilin-bench-gunicorn-sync.rps)
rm -f /tmp/qilin-bench-qilin-sync.rps /tmp/qilin-bench-gunicorn-sync.rps
awk -v q="$q" -v g="$g" 'BEGIN { if (g > 0) printf "ratio qilin/gunicorn: %.1fx\n", q / g }'
