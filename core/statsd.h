/*
 * StatsD and DogStatsD metrics, as gunicorn's statsd logger sends them:
 * request counters and durations from the workers, the worker gauge and the
 * listen backlog from the master, a counter per warning, error and critical
 * log line from every process. One non-blocking datagram socket, made by the
 * master and inherited by the workers; a send that fails is dropped.
 */
#ifndef QILIN_CORE_STATSD_H
#define QILIN_CORE_STATSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;   /* config.h */
struct listener; /* listener.h */

/* --statsd-host parsed: a UDP destination or a unix datagram socket path. */
struct statsd_addr {
    bool is_unix;
    char host[256]; /* lowercased host name or address; the path for unix */
    char port[8];   /* "8125" when the spec names none; "" for unix */
};

/* Metric types, in gunicorn's spelling on the wire. */
enum statsd_type {
    STATSD_COUNTER,   /* "|c|@1.0": gunicorn always sends its sampling rate */
    STATSD_GAUGE,     /* "|g" */
    STATSD_TIMER,     /* "|ms" */
    STATSD_HISTOGRAM, /* "|h" */
};

/*
 * Parses SPEC with gunicorn's grammar: "HOST:PORT", "HOST" (port 8125),
 * "[V6]:PORT", "tcp://HOST:PORT", "unix:PATH" or "unix://PATH" (and, as
 * gunicorn keeps for old configs, "unix:NNNN" meaning host "unix", port
 * NNNN). Returns 0, or -EINVAL with ERR one line naming --statsd-host and
 * the forms it takes. Pure; any process.
 */
int statsd_parse_host(const char *spec, struct statsd_addr *a, char *err, size_t errlen);

/*
 * gunicorn's prefix rule: PREFIX without its trailing dots, plus one '.',
 * when what is left has two characters or more; otherwise PREFIX as given
 * (so "" adds nothing). Writes into BUF (LEN bytes, NUL-terminated) and
 * returns the length. Pure.
 */
size_t statsd_prefix_join(const char *prefix, char *buf, size_t len);

/*
 * One metric line: PREFIX NAME ":" VALUE and the type, then "|#" TAGS when
 * TAGS is not empty. PREFIX is already joined (statsd_prefix_join). Writes
 * into BUF (LEN bytes, NUL-terminated); returns the length, or 0 when the
 * line does not fit. Pure.
 */
size_t statsd_format(char *buf, size_t len, const char *prefix, const char *name, const char *value,
                     enum statsd_type type, const char *tags);

/*
 * A duration in microseconds as gunicorn writes milliseconds: a Python
 * float, e.g. "12.345", "3.4", "0.0". Writes into BUF (at least 32 bytes)
 * and returns the length. Pure.
 */
size_t statsd_format_ms(char *buf, size_t len, int64_t us);

/*
 * Checks statsd_host, statsd_prefix and dogstatsd_tags in CFG. Returns 0,
 * or -EINVAL with ERR one line naming the option and the fix. Master.
 */
int statsd_check_config(const struct config *cfg, char *err, size_t errlen);

/*
 * Opens the socket for CFG's statsd_host (resolving a host name once, now),
 * or turns metrics off when it is unset; the workers forked later inherit
 * it. Called at startup and on HUP. On failure metrics stay as they were
 * and ERR says why; returns 0 or -errno. Master, main thread.
 */
int statsd_open(const struct config *cfg, char *err, size_t errlen);
/* Closes the socket: metrics off. */
void statsd_close(void);
/* True while a StatsD destination is configured (check before measuring). */
bool statsd_enabled(void);

/*
 * One answered request: gunicorn.request.duration (timer, ms),
 * gunicorn.requests and gunicorn.request.status.STATUS (counters), in one
 * datagram. Worker, any thread; never blocks.
 */
void statsd_request(int status, int64_t duration_us);
/* A log line at LEVEL: gunicorn.log.warning, .error or .critical. Any process, any thread. */
void statsd_log_line(int level);
/* gunicorn.workers (gauge), sent when N differs from the last one sent. Master. */
void statsd_workers(int n);
/*
 * gunicorn.backlog (histogram): the connections waiting in the accept queues
 * of the N TCP listeners at L (Linux TCP_INFO), zero included. Nothing when
 * there is no TCP listener. Master.
 */
void statsd_backlog(const struct listener *l, size_t n);

#endif
