/*
 * The core's option table: gunicorn's names, flags and defaults for what the
 * core implements. Plugins add their own tables. Master (read-only data).
 */
#include "qlnconfig.h"

#include <stdint.h>

#include <qilin/option.h>

#include "config.h"

/* The longest header line llhttp and our buffers accept, as gunicorn's cap. */
#define MAX_FIELD_SIZE 8190

const struct qln_option core_options[] = {
    /* Config File */
    {
        .name = "config",
        .cli = "-c,--config",
        .type = QLN_OPT_STRING,
        .metavar = "CONFIG",
        .section = "Config File",
        .help = "The configuration file: Lua, or gunicorn's Python (FILE.py, python:MODULE).",
        .flags = QLN_OPT_EARLY,
    },
    {
        .name = "wsgi_app",
        .type = QLN_OPT_STRING,
        .metavar = "APP_MODULE",
        .section = "Config File",
        .help = "The application to load, MODULE:CALLABLE (the positional argument).",
        .flags = QLN_OPT_INTERNAL,
    },
    /* Server Socket */
    {
        .name = "bind",
        .cli = "-b,--bind",
        .type = QLN_OPT_LIST,
        .def = "127.0.0.1:8000",
        .metavar = "ADDRESS",
        .section = "Server Socket",
        .help = "The socket to bind: HOST, HOST:PORT, [IPv6]:PORT, unix:PATH or fd://N; repeatable"
                " (default 0.0.0.0:$PORT when $PORT is set).",
    },
    {
        .name = "backlog",
        .cli = "--backlog",
        .type = QLN_OPT_INT,
        .def = "2048",
        .metavar = "INT",
        .section = "Server Socket",
        .help = "The maximum number of pending connections.",
        .min = 1,
        .max = INT32_MAX,
    },
    {
        .name = "reuse_port",
        .cli = "--reuse-port",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Server Socket",
        .help = "Set the SO_REUSEPORT flag on the listening socket.",
    },

    /* Worker Processes */
    {
        .name = "workers",
        .cli = "-w,--workers",
        .type = QLN_OPT_INT,
        .def = "1",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "The number of worker processes (default $WEB_CONCURRENCY when set).",
        .min = 1,
    },
    {
        .name = "worker_class",
        .cli = "-k,--worker-class",
        .type = QLN_OPT_STRING,
        .def = "sync",
        .metavar = "STRING",
        .section = "Worker Processes",
        .help = "The worker plugin to use: sync, gthread, gevent, eventlet (or a gunicorn class"
                " path).",
        .flags = QLN_OPT_EARLY,
    },
    {
        .name = "timeout",
        .cli = "-t,--timeout",
        .type = QLN_OPT_INT,
        .def = "30",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "Workers silent for more than this many seconds are killed and restarted"
                " (0 disables).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "graceful_timeout",
        .cli = "--graceful-timeout",
        .type = QLN_OPT_INT,
        .def = "30",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "Seconds workers get to finish their requests after a stop signal.",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "keepalive",
        .cli = "--keep-alive",
        .type = QLN_OPT_INT,
        .def = "2",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "Seconds to wait for the next request on a keep-alive connection (0 disables"
                " keep-alive).",
        .min = 0,
        .max = INT32_MAX,
    },

    /* Plugins (qilin's own) */
    {
        .name = "plugin",
        .cli = "--plugin",
        .type = QLN_OPT_LIST,
        .metavar = "NAME",
        .section = "Plugins",
        .help = "Load plugin NAME (NAME.so from the plugin path) or the file PATH; repeatable.",
        .flags = QLN_OPT_EARLY,
    },
    {
        .name = "plugin_dir",
        .cli = "--plugin-dir",
        .type = QLN_OPT_LIST,
        .metavar = "DIR",
        .section = "Plugins",
        .help = "Also search DIR for plugins (after $QILIN_PLUGIN_PATH); repeatable.",
        .flags = QLN_OPT_EARLY,
    },

    /* Security */
    {
        .name = "limit_request_line",
        .cli = "--limit-request-line",
        .type = QLN_OPT_INT,
        .def = "4094",
        .metavar = "INT",
        .section = "Security",
        .help = "The maximum size of the HTTP request line in bytes (0 = up to 8190).",
        .min = 0,
        .max = MAX_FIELD_SIZE,
    },
    {
        .name = "limit_request_fields",
        .cli = "--limit-request-fields",
        .type = QLN_OPT_INT,
        .def = "100",
        .metavar = "INT",
        .section = "Security",
        .help = "The maximum number of header fields in a request.",
        .min = 0,
        .max = 32768,
    },
    {
        .name = "limit_request_field_size",
        .cli = "--limit-request-field_size,--limit-request-field-size",
        .type = QLN_OPT_INT,
        .def = "8190",
        .metavar = "INT",
        .section = "Security",
        .help = "The maximum size of one request header field in bytes (0 = 8190).",
        .min = 0,
        .max = MAX_FIELD_SIZE,
    },

    /* Server Mechanics */
    {
        .name = "preload_app",
        .cli = "--preload",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Server Mechanics",
        .help = "Load the application in the master before forking the workers.",
    },
    {
        .name = "chdir",
        .cli = "--chdir",
        .type = QLN_OPT_STRING,
        .metavar = "CHDIR",
        .section = "Server Mechanics",
        .help = "Change to this directory before loading the application.",
    },
    {
        .name = "pidfile",
        .cli = "-p,--pid",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "Server Mechanics",
        .help = "A file to write the master's PID to.",
    },
    {
        .name = "server_header",
        .cli = "--server-header",
        .type = QLN_OPT_STRING,
        .def = "qilin",
        .metavar = "STRING",
        .section = "Server Mechanics",
        .help = "The Server response header; an empty string sends none.",
    },

    /* Logging */
    {
        .name = "accesslog",
        .cli = "--access-logfile",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "Logging",
        .help = "The access log file to write to; '-' means stdout (off when unset).",
    },
    {
        .name = "access_log_format",
        .cli = "--access-logformat",
        .type = QLN_OPT_STRING,
        .def = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"",
        .metavar = "STRING",
        .section = "Logging",
        .help = "The access log format, with gunicorn's atoms.",
    },
    {
        .name = "errorlog",
        .cli = "--error-logfile,--log-file",
        .type = QLN_OPT_STRING,
        .def = "-",
        .metavar = "FILE",
        .section = "Logging",
        .help = "The error log file to write to; '-' means stderr.",
    },
    {
        .name = "syslog",
        .cli = "--log-syslog",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Logging",
        .help = "Send the error log, and the access log unless"
                " --disable-redirect-access-to-syslog, to syslog too.",
    },
    {
        .name = "syslog_addr",
        .cli = "--log-syslog-to",
        .type = QLN_OPT_STRING,
        .def = "udp://localhost:514",
        .metavar = "SYSLOG_ADDR",
        .section = "Logging",
        .help = "Where syslog lines go: udp://HOST:PORT, tcp://HOST:PORT or unix://PATH"
                " (unix:///dev/log for the local daemon).",
    },
    {
        .name = "syslog_prefix",
        .cli = "--log-syslog-prefix",
        .type = QLN_OPT_STRING,
        .metavar = "SYSLOG_PREFIX",
        .section = "Logging",
        .help = "The program name in syslog lines, as gunicorn.PREFIX.error (default: the"
                " process name).",
    },
    {
        .name = "syslog_facility",
        .cli = "--log-syslog-facility",
        .type = QLN_OPT_STRING,
        .def = "user",
        .metavar = "SYSLOG_FACILITY",
        .section = "Logging",
        .help = "The syslog facility: user, daemon, local0 to local7 ...",
    },
    {
        .name = "disable_redirect_access_to_syslog",
        .cli = "--disable-redirect-access-to-syslog",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Logging",
        .help = "With --log-syslog, keep the access log out of syslog.",
    },
    {
        .name = "loglevel",
        .cli = "--log-level",
        .type = QLN_OPT_STRING,
        .def = "info",
        .metavar = "LEVEL",
        .section = "Logging",
        .help = "The granularity of error log output: debug, info, warning, error or critical.",
    },
    {
        .name = "statsd_host",
        .cli = "--statsd-host",
        .type = QLN_OPT_STRING,
        .metavar = "STATSD_ADDR",
        .section = "Logging",
        .help = "Send StatsD metrics to HOST:PORT over UDP (port 8125 when left out) or to"
                " unix:PATH, a unix datagram socket (off when unset).",
    },
    {
        .name = "dogstatsd_tags",
        .cli = "--dogstatsd-tags",
        .type = QLN_OPT_STRING,
        .def = "",
        .metavar = "DOGSTATSD_TAGS",
        .section = "Logging",
        .help = "Comma-separated DogStatsD tags (key:value) appended to every metric as |#tags.",
    },
    {
        .name = "statsd_prefix",
        .cli = "--statsd-prefix",
        .type = QLN_OPT_STRING,
        .def = "",
        .metavar = "STATSD_PREFIX",
        .section = "Logging",
        .help = "A prefix for the StatsD metric names, joined to them with a '.'.",
    },
    {
        .name = "enable_backlog_metric",
        .cli = "--enable-backlog-metric",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Logging",
        .help = "Send the TCP listeners' accept queue length each second as the StatsD"
                " histogram gunicorn.backlog.",
    },

    /* Process Naming */
    {
        .name = "proc_name",
        .cli = "-n,--name",
        .type = QLN_OPT_STRING,
        .metavar = "STRING",
        .section = "Process Naming",
        .help = "A base name for the process titles (default: the application's name).",
    },

    /* Debugging */
    {
        .name = "check_config",
        .cli = "--check-config",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Debugging",
        .help = "Check the configuration and exit (status 0 when valid, 1 otherwise).",
    },
    {
        .name = "print_config",
        .cli = "--print-config",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Debugging",
        .help = "Print the effective configuration settings and exit.",
    },

    /* Slow clients and request bodies (qilin's own, gunicorn has none). */
    {
        .name = "header_timeout",
        .cli = "--header-timeout",
        .type = QLN_OPT_INT,
        .metavar = "INT",
        .section = "Security",
        .help = "Seconds a client gets to send a whole request head, answered 408 when it"
                " expires (default: --timeout; 0 disables).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "body_timeout",
        .cli = "--body-timeout",
        .type = QLN_OPT_INT,
        .metavar = "INT",
        .section = "Security",
        .help = "Seconds a request body read may wait for the client's next bytes"
                " (default: --timeout; 0 disables).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "limit_request_body",
        .cli = "--limit-request-body",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "INT",
        .section = "Security",
        .help = "The maximum size of a request body in bytes, answered 413 beyond it"
                " (0 = unlimited).",
        .min = 0,
        .max = INT64_MAX,
    },
    {
        .name = "casefold_http_method",
        .cli = "--casefold-http-method",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Security",
        .help = "Uppercase the request method before the app sees it (methods are case-sensitive,"
                " RFC 9110, so by default they pass as sent).",
    },
    {
        .name = "permit_unconventional_http_method",
        .cli = "--permit-unconventional-http-method",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Security",
        .help = "Accepted for gunicorn compatibility: qilin always passes any RFC 9110 token"
                " method (lowercase, short or long ones too) to the app.",
    },
    {
        .name = "permit_unconventional_http_version",
        .cli = "--permit-unconventional-http-version",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Security",
        .help = "Serve requests of any HTTP/d.d version (HTTP/1.2, HTTP/0.9, HTTP/2.0 on an"
                " HTTP/1 connection), as HTTP/1.0 below 1.1 and as HTTP/1.1 above, instead of"
                " answering 505.",
    },
    {
        .name = "permit_obsolete_folding",
        .cli = "--permit-obsolete-folding",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Security",
        .help = "Accept header values continued on the next line (obs-fold, RFC 9112 5.2) from"
                " legacy clients, unfolded with one space, instead of answering 400.",
    },
    {
        .name = "header_map",
        .cli = "--header-map",
        .type = QLN_OPT_STRING,
        .def = "drop",
        .metavar = "STRING",
        .section = "Security",
        .help = "Headers whose name has '_' (X_Forwarded_For would share a WSGI key with"
                " X-Forwarded-For): drop them, refuse the request (400), or keep them"
                " (dangerous).",
    },
    {
        .name = "forwarder_headers",
        .cli = "--forwarder-headers",
        .type = QLN_OPT_STRING,
        .def = "SCRIPT_NAME,PATH_INFO",
        .metavar = "STRING",
        .section = "Security",
        .help = "Comma-separated header names with '_' that a peer in --forwarded-allow-ips may"
                " send whatever --header-map says (SCRIPT_NAME sets the WSGI SCRIPT_NAME).",
    },
    {
        .name = "forwarded_allow_ips",
        .cli = "--forwarded-allow-ips",
        .type = QLN_OPT_STRING,
        .def = "127.0.0.1,::1",
        .metavar = "STRING",
        .section = "Server Mechanics",
        .help = "Front-end addresses or networks (CIDR, or * for all) trusted to set the scheme"
                " with X-Forwarded-Proto/-Protocol/-Ssl, and with --real-ip the client address"
                " ($FORWARDED_ALLOW_IPS when unset).",
    },
    {
        .name = "real_ip",
        .cli = "--real-ip",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Server Mechanics",
        .help = "Set REMOTE_ADDR from the Forwarded or X-Forwarded-For header of a peer in"
                " --forwarded-allow-ips (the nearest address no trusted proxy added). Off, as"
                " in gunicorn: REMOTE_ADDR is the socket's peer.",
    },

    /* The gthread worker (gevent and eventlet use worker_connections too). */
    {
        .name = "threads",
        .cli = "--threads",
        .type = QLN_OPT_INT,
        .def = "1",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "The number of threads per worker for gthread; above 1, the sync worker class "
                "becomes gthread.",
        .min = 1,
        .max = 100000,
        /* Read before plugins load: it can choose the worker plugin (main.c). */
        .flags = QLN_OPT_EARLY,
    },
    {
        .name = "worker_connections",
        .cli = "--worker-connections",
        .type = QLN_OPT_INT,
        .def = "1000",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "The maximum number of simultaneous connections per worker "
                "(gthread, gevent, eventlet).",
        .min = 1,
        .max = 1000000,
    },

    /* Operations (worker recycling, environment, daemon, privileges, stdio) */
    {
        .name = "max_requests",
        .cli = "--max-requests",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "Restart a worker gracefully after it served this many requests (0 disables).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "max_requests_jitter",
        .cli = "--max-requests-jitter",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "Add a random 0..INT to --max-requests per worker, so workers do not all restart"
                " at once.",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "max_worker_memory",
        .cli = "--max-worker-memory",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "MIB",
        .section = "Worker Processes",
        .help = "Restart a worker gracefully once its resident memory passes this many MiB,"
                " checked every 64 requests or 20 ms, and every second (0 disables).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "max_worker_lifetime",
        .cli = "--max-worker-lifetime",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "SECONDS",
        .section = "Worker Processes",
        .help = "Restart a worker gracefully after it has run this many seconds (0 disables).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "max_worker_lifetime_jitter",
        .cli = "--max-worker-lifetime-jitter",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "SECONDS",
        .section = "Worker Processes",
        .help = "Add a random 0..SECONDS to --max-worker-lifetime per worker, so workers do not"
                " all restart at once.",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "request_timeout",
        .cli = "--request-timeout",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "INT",
        .section = "Worker Processes",
        .help = "Kill and replace a worker whose request runs longer than this many seconds, in"
                " any worker class (0 disables; --timeout is the liveness check).",
        .min = 0,
        .max = INT32_MAX,
    },
    {
        .name = "raw_env",
        .cli = "-e,--env",
        .type = QLN_OPT_LIST,
        .metavar = "ENV",
        .section = "Server Mechanics",
        .help = "Set environment variable KEY=VALUE in the master and the workers; repeatable.",
    },
    {
        .name = "daemon",
        .cli = "-D,--daemon",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Server Mechanics",
        .help = "Detach from the terminal and run in the background.",
    },
    {
        .name = "user",
        .cli = "-u,--user",
        .type = QLN_OPT_STRING,
        .metavar = "USER",
        .section = "Server Mechanics",
        .help = "Switch worker processes to this user (a name or a numeric uid).",
    },
    {
        .name = "group",
        .cli = "-g,--group",
        .type = QLN_OPT_STRING,
        .metavar = "GROUP",
        .section = "Server Mechanics",
        .help = "Switch worker processes to this group (a name or a numeric gid).",
    },
    {
        .name = "umask",
        .cli = "-m,--umask",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "INT",
        .section = "Server Mechanics",
        .help = "The file mode creation mask of the server: 022 and 0o22 are octal, 18 decimal.",
        .min = 0,
        .max = 0777,
    },
    {
        .name = "initgroups",
        .cli = "--initgroups",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Server Mechanics",
        .help = "Give workers the supplementary groups of --user.",
    },
    {
        .name = "worker_tmp_dir",
        .cli = "--worker-tmp-dir",
        .type = QLN_OPT_STRING,
        .metavar = "DIR",
        .section = "Server Mechanics",
        .help = "Accepted for gunicorn compatibility and ignored: qilin keeps worker heartbeats in"
                " shared memory, not in temporary files.",
    },
    {
        .name = "reload",
        .cli = "--reload",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Debugging",
        .help = "Restart a worker when a source file of the application changes (inotify).",
    },
    {
        .name = "reload_extra_files",
        .cli = "--reload-extra-file",
        .type = QLN_OPT_LIST,
        .metavar = "FILES",
        .section = "Debugging",
        .help = "With --reload, also watch this file (a template, a config) or the files a glob"
                " pattern matches ('templates/*.html'); repeatable.",
    },
    {
        .name = "reload_engine",
        .cli = "--reload-engine",
        .type = QLN_OPT_STRING,
        .def = "auto",
        .metavar = "STRING",
        .section = "Debugging",
        .help = "How --reload sees changes: inotify, poll (a stat of each file once a second, for"
                " file systems without inotify), or auto (inotify where it works).",
    },
    {
        .name = "stats",
        .cli = "--stats",
        .type = QLN_OPT_STRING,
        .metavar = "ADDRESS",
        .section = "Server Mechanics",
        .help = "Serve the workers' scoreboard on ADDRESS (a --bind form): JSON, or Prometheus"
                " text at /metrics. Off when unset.",
    },
    {
        .name = "capture_output",
        .cli = "--capture-output",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Logging",
        .help = "Redirect stdout and stderr to the error log file.",
    },
    {
        .name = "enable_stdio_inheritance",
        .cli = "-R,--enable-stdio-inheritance",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Logging",
        .help = "With --daemon, keep stdout and stderr instead of sending them to /dev/null.",
    },

    /* PROXY protocol */
    {
        .name = "proxy_protocol",
        .cli = "--proxy-protocol",
        .type = QLN_OPT_STRING,
        .def = "off",
        .metavar = "MODE",
        .section = "Server Mechanics",
        .help = "Read a PROXY protocol header before a connection's first request: off, v1, v2,"
                " or auto (v1, v2 or none). The flag alone, as gunicorn's, means auto.",
    },
    {
        .name = "proxy_allow_from",
        .cli = "--proxy-allow-from",
        .type = QLN_OPT_STRING,
        .def = "127.0.0.1,::1",
        .metavar = "STRING",
        .section = "Server Mechanics",
        .help = "Front-end addresses or networks (CIDR, or * for all) allowed to send a PROXY"
                " protocol header; unix socket peers always are.",
    },

    /* uwsgi protocol (nginx uwsgi_pass) */
    {
        .name = "protocol",
        .cli = "--protocol",
        .type = QLN_OPT_STRING,
        .def = "http",
        .metavar = "STRING",
        .section = "Server Mechanics",
        .help = "The protocol of incoming connections: http, or uwsgi (the uWSGI binary protocol"
                " nginx's uwsgi_pass speaks).",
    },
    {
        .name = "uwsgi_allow_ips",
        .cli = "--uwsgi-allow-from,--uwsgi-allow-ips",
        .type = QLN_OPT_STRING,
        .def = "127.0.0.1,::1",
        .metavar = "STRING",
        .section = "Server Mechanics",
        .help = "Front-end addresses or networks (CIDR, or * for all) allowed to send uwsgi"
                " requests; unix socket peers always are.",
    },

    /* TLS on the listeners (gunicorn's "SSL" section, plus what OpenSSL offers operators). */
    {
        .name = "certfile",
        .cli = "--certfile",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "SSL",
        .help = "The certificate chain (PEM): every --bind listener then speaks TLS.",
    },
    {
        .name = "keyfile",
        .cli = "--keyfile",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "SSL",
        .help =
            "The certificate's private key (PEM, without a passphrase); default: in --certfile.",
    },
    {
        .name = "ca_certs",
        .cli = "--ca-certs",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "SSL",
        .help = "The CA certificates (PEM) that client certificates must chain to.",
    },
    {
        .name = "cert_reqs",
        .cli = "--cert-reqs",
        .type = QLN_OPT_INT,
        .def = "0",
        .metavar = "INT",
        .section = "SSL",
        .help = "Client certificates: 0 not asked, 1 verified when sent, 2 required.",
        .min = 0,
        .max = 2,
    },
    {
        .name = "ciphers",
        .cli = "--ciphers",
        .type = QLN_OPT_STRING,
        .metavar = "CIPHERS",
        .section = "SSL",
        .help = "The TLS 1.2 ciphers, an OpenSSL cipher list (default: ECDHE with AES-GCM or"
                " ChaCha20-Poly1305).",
    },
    {
        .name = "ssl_ciphersuites",
        .cli = "--ssl-ciphersuites",
        .type = QLN_OPT_STRING,
        .metavar = "SUITES",
        .section = "SSL",
        .help = "The TLS 1.3 cipher suites, colon-separated (default: OpenSSL's).",
    },
    {
        .name = "ssl_min_version",
        .cli = "--ssl-min-version",
        .type = QLN_OPT_STRING,
        .def = "TLSv1.2",
        .metavar = "VERSION",
        .section = "SSL",
        .help = "The oldest protocol accepted: TLSv1.2 or TLSv1.3.",
    },
    {
        .name = "ssl_ecdh_curve",
        .cli = "--ssl-ecdh-curve",
        .type = QLN_OPT_STRING,
        .metavar = "GROUPS",
        .section = "SSL",
        .help = "The key exchange groups, colon-separated, preferred first (e.g."
                " X25519:P-256; default: OpenSSL's).",
    },
    {
        .name = "ssl_version",
        .cli = "--ssl-version",
        .type = QLN_OPT_STRING,
        .metavar = "VERSION",
        .section = "SSL",
        .help = "Ignored, as in gunicorn 21 and later: use --ssl-min-version.",
    },
    {
        .name = "do_handshake_on_connect",
        .cli = "--do-handshake-on-connect",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "SSL",
        .help = "Accepted for gunicorn: the handshake always starts when the connection does,"
                " without blocking the worker.",
    },
    {
        .name = "suppress_ragged_eofs",
        .cli = "--suppress-ragged-eofs",
        .type = QLN_OPT_BOOL,
        .def = "true",
        .section = "SSL",
        .help = "Treat a connection closed without TLS close_notify as a normal end (false: as a"
                " reset).",
    },

    /* Static files served by the core */
    {
        .name = "sendfile",
        .cli = "--no-sendfile",
        .type = QLN_OPT_BOOL,
        .flags = QLN_OPT_NEGATE,
        .def = "true",
        .section = "Server Mechanics",
        .help = "Do not use sendfile(2) for file responses (wsgi.file_wrapper, Rack to_path,"
                " --static-map): copy them with read and write instead.",
    },
    {
        .name = "static_map",
        .cli = "--static-map",
        .type = QLN_OPT_LIST,
        .metavar = "URL_PREFIX=DIR",
        .section = "Server Mechanics",
        .help = "Answer GET and HEAD requests under URL_PREFIX from the files in DIR, without"
                " calling the app (e.g. /static=./static); repeatable.",
    },

    /* Control: the master's admin socket for qilinctl (gunicorn 25.1's gunicornc) */
    {
        .name = "control_socket",
        .cli = "--control-socket",
        .type = QLN_OPT_STRING,
        .metavar = "PATH",
        .section = "Control",
        .help = "The Unix socket qilinctl talks to (default $XDG_RUNTIME_DIR/qilin.ctl, else"
                " $HOME/.qilin/qilin.ctl).",
    },
    {
        .name = "control_socket_mode",
        .cli = "--control-socket-mode",
        .type = QLN_OPT_INT,
        .def = "0600",
        .metavar = "MODE",
        .section = "Control",
        .help = "The control socket's permission bits, in octal (0660 lets the group in).",
        .min = 0,
        .max = 0777,
    },
    {
        .name = "control_socket_disable",
        .cli = "--no-control-socket",
        .type = QLN_OPT_BOOL,
        .def = "false",
        .section = "Control",
        .help = "Create no control socket.",
    },

    {.name = NULL},
};
