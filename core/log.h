/*
 * Error log and access log. The error log writes gunicorn's line format
 * (include/qilin/log.h is the plugin side); the access log formats
 * gunicorn's atoms. Both reopen on SIGUSR1. Master and workers.
 */
#ifndef QILIN_CORE_LOG_H
#define QILIN_CORE_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <qilin/log.h>

#include "syslog.h"

/* Parses "debug", "info", "warning", "error", "critical" (any case); -EINVAL otherwise. */
int log_level_parse(const char *name);

/* The settings the logs are opened from (config_log_options() reads them). */
struct log_options {
    const char *errorlog;          /* "-" or NULL: stderr */
    const char *loglevel;          /* NULL: info */
    const char *accesslog;         /* NULL: off; "-": stdout */
    const char *access_log_format; /* NULL: gunicorn's default */
    struct syslog_options syslog;  /* --log-syslog and its settings */
};

/*
 * Opens the logs from O, and compiles
 * the format once. Files open in append mode, O_CLOEXEC. Until the first
 * call, lines go to stderr at level INFO. May be called again (reload): a
 * file that was open keeps its fd number. On failure nothing changes and
 * ERR is one line naming the file and the option to fix; returns 0 or
 * -errno. Main thread only.
 */
int log_open(const struct log_options *o, char *err, size_t errlen);
/*
 * Reopens the log files by name (SIGUSR1, after logrotate renamed them) onto
 * the same fd numbers, so copies of qln_log_fd() stay valid. A file that
 * cannot be reopened stays as it was. Returns 0 or the first -errno (logged).
 * Each process reopens its own (the master tells its workers).
 */
int log_reopen(void);
/*
 * COUNT is told the level of each error log line written (StatsD counts
 * them, as gunicorn's statsd logger does); NULL: nothing is. Set before
 * the workers fork, which inherit it.
 */
void log_set_line_counter(void (*count)(int level));

/* Closes files: back to stderr at level INFO, access log off. */
void log_close(void);

/*
 * Sets the pid shown in each line (and in "%(p)s"). A fork resets it to the
 * child's real pid by itself (pthread_atfork), so this is only needed to
 * show another value.
 */
void log_set_pid(int pid);

/* Everything an access line can show; filled by the connection code. */
struct access_record {
    struct qln_request *req; /* for a plugin's logger (qln_access_info); may be NULL */
    const char *remote_addr; /* "%(h)s" */
    const char *remote_port; /* "%({REMOTE_PORT}e)s"; NULL or "" when none */
    const char *server_name; /* "%({SERVER_NAME}e)s" ... */
    const char *server_port;
    const char *url_scheme;  /* "%({wsgi.url_scheme}e)s" */
    struct qln_slice method; /* "%(m)s" */
    struct qln_slice target; /* raw URI, for "%(r)s" */
    struct qln_slice path;   /* still percent-encoded; "%(U)s" shows it decoded (PATH_INFO) */
    struct qln_slice query;  /* "%(q)s" */
    int version_minor;       /* "%(H)s": HTTP/1.x */
    int status;              /* "%(s)s" */
    int64_t body_bytes;      /* "%(b)s" / "%(B)s": body bytes sent */
    const struct qln_header *req_headers; /* "%(f)s", "%(a)s", "%(u)s", "%({x}i)s" */
    size_t nreq_headers;
    const struct qln_header *resp_headers; /* "%({x}o)s" */
    size_t nresp_headers;
    struct timespec time; /* CLOCK_REALTIME when the request ended: "%(t)s" */
    int64_t duration_us;  /* "%(T)s" "%(M)s" "%(D)s" "%(L)s" */
    /* The connection's own environ variables (TLS: HTTPS, SSL_PROTOCOL ...),
       the I-th as qln_req_tls_var() gives them, for "%({SSL_CIPHER}e)s";
       NULL: none. */
    bool (*env_var)(const void *ctx, size_t i, const char **name, const char **value);
    const void *env_ctx;
};

/* True when an access log is configured (check before building a record). */
bool log_access_enabled(void);
/*
 * Formats REC with the compiled access_log_format and writes one line with
 * one write(2); a line over 16 KiB is cut and ends with "...". Any thread.
 */
void log_access(const struct access_record *rec);

/*
 * Formats REC with FORMAT into BUF (always NUL-terminated, truncated to
 * LEN); the pure function behind log_access, for tests. PID is "%(p)s".
 * Returns the length written. FORMAT is gunicorn's: "%(x)s" atoms (Python
 * flags and width such as "%(h)-15s" honoured), "%%" for '%', unknown atoms
 * render "-", '"' in values becomes '\"'. "%({name}i)s" and "%({name}o)s"
 * are request and response headers (case-insensitive, the last duplicate
 * wins); "%({NAME}e)s" is this process's environment variable NAME (gunicorn
 * reads the WSGI environ), read when the format is compiled: at log_open,
 * or on each call of this function.
 */
size_t log_access_format(const char *format, const struct access_record *rec, int pid, char *buf,
                         size_t len);

#endif
