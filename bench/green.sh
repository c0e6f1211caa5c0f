#!/bin/sh
# The gevent and eventlet workers against gunicorn's, measured with the same
# wrk runs on 127.0.0.1 (issue 6). Not part of `make check`: it measures,
# never asserts.
#
#  1. hello, keep-alive: one worker pinned to CPU 0 (taskset), wrk -t1 -c50
#     --latency on CPU 1: req/s, p50 and p99 for qilin and gunicorn, each
#     with -k gevent and -k eventlet; the qilin/gunicorn ratio.
#  2. blocking: time.sleep(0.05) (monkey-patched), 2 workers, wrk -c200. The
#     bound is 200 connections / 0.05 s = 4,000 req/s; each server's share.
#  3. close: hello with Connection: close, pinned as in 1: one connection,
#     and so one green thread start or reuse, per request.
#
#   bench/green.sh [BUILD_DIR]     (default: _build; BENCH_DURATION=5s)
# BENCH_CASES picks cases (default "hello blocking close"); BENCH_PEERS=no
# leaves gunicorn out (before/after runs of qilin alone).
# Each server runs in the background and is stopped by its pid.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/_build}
duration=${BENCH_DURATION:-5s}
cases=${BENCH_CASES:-hello blocking close}
peers=${BENCH_PEERS:-yes}
wrk_header=
bound=
py=/usr/bin/python3
apps=$(mktemp -d /tmp/qilin-bench-green.XXXXXX)
spid=
# Whatever ends the script (^C, a closed pipe), the server it started goes too.
cleanup() {
    [ -n "$spid" ] && kill -TERM "$spid" 2>/dev/null
    rm -rf "$apps"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP PIPE

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

p=$build/plugins
export QILIN_PLUGIN_PATH="$p/workers/gevent/.libs:$p/workers/eventlet/.libs:$p/python-wsgi/.libs"

# CPU time (clock ticks, user + system) used so far by process $1 and its children.
# Fields are counted after the ")" that ends the command name, which may hold
# spaces ("qilin: worker"): utime and stime are then the 12th and 13th.
cpu_ticks() {
    for pid in $1 $(pgrep -P "$1"); do
        sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null
    done | awk '{ t += $12 + $13 } END { print t + 0 }'
}

# $1 label, $2 port, $3 connections, $4 wrk cpu list, $5 server pid. Prints req/s, p50, p99,
# and the server's CPU time per request: on a shared machine, where other jobs take
# CPU time from the server, that figure still says what one core can do.
run_wrk() {
    t0=$(cpu_ticks "$5")
    out=$(taskset -c "$4" wrk -t1 -c"$3" -d"$duration" --latency ${wrk_header:+-H "$wrk_header"} \
        "http://127.0.0.1:$2/" 2>&1)
    t1=$(cpu_ticks "$5")
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p50=$(echo "$out" | awk '$1 == "50%" { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { print $2 }')
    n=$(echo "$out" | awk '/requests in/ { print $1 }')
    errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ { printf "%s ", $0 }')
    cpu=$(awk -v t="$((t1 - t0))" -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0 && t > 0) printf "%.1f us/req (%.0f req/s per core)", \
                 t * 1e6 / hz / n, n * hz / t; else print "?" }')
    share=
    [ -n "$bound" ] && share=$(awk -v r="${rps:-0}" -v b="$bound" \
        'BEGIN { printf "(%.1f%% of %d) ", r * 100 / b, b }')
    printf '%-22s %9s req/s %sp50 %-8s p99 %-8s cpu %s %s\n' "$1" "${rps:-?}" "$share" \
        "${p50:-?}" "${p99:-?}" "$cpu" "$errs"
}

# A port nobody listens on right now (the machine is shared: fixed ports collide).
free_port() {
    $py -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# $1 label, $2 connections, $3 wrk cpus, $4 server cpus, then the server command, in which
# the word PORT stands for the port to bind.
bench() {
    label=$1 conns=$2 wcpu=$3 scpu=$4
    shift 4
    bport=$(free_port)
    n=$#
    for a in "$@"; do
        case $a in *PORT) a=${a%PORT}$bport ;; esac
        set -- "$@" "$a"
    done
    shift $n
    # The servers' own output (gunicorn's shutdown tracebacks) stays out of the table.
    taskset -c "$scpu" "$@" >>"$apps/servers.log" 2>&1 &
    spid=$!
    # Until it answers (importing eventlet alone can take a second on a busy
    # machine), then a second more for its sibling workers and a warm-up run:
    # connections queued behind a booting worker are no measure of serving.
    tries=0
    until curl -sf -o /dev/null "http://127.0.0.1:$bport/"; do
        tries=$((tries + 1))
        if ! kill -0 $spid 2>/dev/null || [ $tries -ge 300 ]; then
            printf '%-22s did not start:\n' "$label"
            tail -3 "$apps/servers.log"
            return
        fi
        sleep 0.1
    done
    sleep 1
    taskset -c "$wcpu" wrk -t1 -c"$conns" -d1s ${wrk_header:+-H "$wrk_header"} \
        "http://127.0.0.1:$bport/" >/dev/null 2>&1
    run_wrk "$label" "$bport" "$conns" "$wcpu" $spid
    kill -TERM $spid
    wait $spid 2>/dev/null
    spid=
}

# $1 case, $2 app, $3 workers, $4 connections, $5 server cpus.
bench_case() {
    for k in gevent eventlet; do
        bench "qilin -k $k" "$4" 1 "$5" "$build/qilin" -k $k -w "$3" -b 127.0.0.1:PORT \
            --chdir "$apps" --log-level warning "$2"
        [ "$peers" = no ] && continue
        bench "gunicorn -k $k" "$4" 1 "$5" $py -m gunicorn -k $k -w "$3" -b 127.0.0.1:PORT \
            --chdir "$apps" --log-level warning "$2"
    done
}

for c in $cases; do
    case $c in
    hello)
        echo "== hello, keep-alive: 1 worker on CPU 0, wrk -t1 -c50 -d$duration on CPU 1"
        bench_case hello benchhello:app 1 50 0
        ;;
    blocking)
        echo "== blocking: sleep 50 ms, 2 workers, wrk -t1 -c200 -d$duration (bound 4,000 req/s)"
        bound=4000
        bench_case blocking benchsleepy:app 2 200 0
        bound=
        ;;
    close)
        echo "== hello, Connection: close: 1 worker on CPU 0, wrk -t1 -c50 -d$duration on CPU 1"
        wrk_header="Connection: close"
        bench_case close benchhello:app 1 50 0
        wrk_header=
        ;;
    *)
        echo "unknown case $c in BENCH_CASES (use hello, blocking or close)" >&2
        exit 2
        ;;
    esac
done
