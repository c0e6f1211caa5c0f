-- qilin.conf.lua: an example configuration file.
--
-- Use it with:   qilin -c examples/qilin.conf.lua --chdir examples hello:app
-- Check it with: qilin -c examples/qilin.conf.lua --check-config --chdir examples hello:app
--
-- Every global assigned here is a setting with the same name and meaning as
-- in gunicorn (`qilin --help` lists them with their command-line flags).
-- Precedence, later wins: defaults < this file < $QILIN_CMD_ARGS < command line,
-- so `qilin -c qilin.conf.lua -w 8` runs 8 workers whatever this file says.

-- Where to listen. A string or a list: "HOST:PORT", "[::1]:PORT",
-- "unix:/run/app.sock", "fd://3".
bind = { "127.0.0.1:8000" }

-- Worker processes. A common starting point is two per CPU core
-- (qilin.cpu_count() returns the number of CPUs).
workers = qilin.cpu_count() * 2

-- How a worker serves connections: "sync" (one request at a time per worker;
-- idle keep-alive connections still never block it), "gthread" (with
-- `threads`), "gevent", "eventlet".
worker_class = "sync"

-- A worker silent for this many seconds (stuck in the app) is killed and replaced.
timeout = 30

-- On SIGTERM or reload, how long in-flight requests may run before workers are killed.
graceful_timeout = 30

-- Seconds an idle keep-alive connection is kept open (0 turns keep-alive off).
keepalive = 5

-- Request limits (gunicorn's defaults): request line bytes, header count.
limit_request_line = 4094
limit_request_fields = 100

-- Logs. "-" is stdout for the access log and stderr for the error log.
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
errorlog = "-"
-- debug, info, warning, error or critical.
loglevel = "info"

-- The name ps shows in the master's and the workers' process titles.
proc_name = "hello"
