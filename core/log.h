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

#include "config.h"

/* Parses "debug", "info", "warning", "error", "critical" (any case); -EINVAL otherwise. */
int log_level_parse(const char *name);

/*
 * Opens the logs from the settings errorlog ("-" = stderr), loglevel,
 * accesslog (NULL = off, "-" = stdout) and access_log_format. Files open in
 * append mode, O_CLOEXEC. Returns 0 or -errno with ERR naming the file.
 */
int log_open(const struct config *cfg, char *err, size_t errlen);
/* Reopens files (SIGUSR1). Returns 0 or the first -errno (logged). */
int log_reopen(void);
/* Closes files (back to stderr). */
void log_close(void);

/* Sets the error log's pid shown in each line; call after fork. */
void log_set_pid(int pid);

/* Everything an access line can show; filled by the connection code. */
struct access_record {
    const char *remote_addr;  /* "%(h)s" */
    struct qln_slice method;  /* "%(m)s" */
    struct qln_slice target;  /* raw URI, for "%(r)s" */
    struct qln_slice path;    /* "%(U)s", raw (gunicorn shows PATH_INFO) */
    struct qln_slice query;   /* "%(q)s" */
    int version_minor;        /* "%(H)s": HTTP/1.x */
    int status;               /* "%(s)s" */
    int64_t body_bytes;       /* "%(b)s" / "%(B)s": body bytes sent */
    const struct qln_header *req_headers; /* "%(f)s", "%(a)s", "%(u)s", "%({x}i)s" */
    size_t nreq_headers;
    const struct qln_header *resp_headers; /* "%({x}o)s" */
    size_t nresp_headers;
    struct timespec start;    /* CLOCK_REALTIME when the request began: "%(t)s" */
    int64_t duration_us;      /* "%(T)s" "%(M)s" "%(D)s" "%(L)s" */
};

/* True when an access log is configured (check before building a record). */
bool log_access_enabled(void);
/* Formats REC with the compiled access_log_format and writes one line. */
void log_access(const struct access_record *rec);

/*
 * Formats REC with FORMAT into BUF (always NUL-terminated, truncated to
 * LEN); the pure function behind log_access, for tests. PID is "%(p)s".
 * Returns the length written.
 */
size_t log_access_format(const char *format, const struct access_record *rec, int pid, char *buf,
                         size_t len);

#endif
