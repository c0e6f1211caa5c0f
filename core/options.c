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
        .help = "The Lua configuration file to load.",
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
        .name = "loglevel",
        .cli = "--log-level",
        .type = QLN_OPT_STRING,
        .def = "info",
        .metavar = "LEVEL",
        .section = "Logging",
        .help = "The granularity of error log output: debug, info, warning, error or critical.",
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

    {.name = NULL},
};
