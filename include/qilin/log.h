/*
 * Logging into the error log, in gunicorn's format:
 *   [2026-01-02 10:22:28 +0000] [30869] [INFO] message
 * Usable from any process and any thread; a line is written with one write(2).
 */
#ifndef QILIN_LOG_H
#define QILIN_LOG_H

#include <qilin/common.h>

/** Levels as gunicorn's (and Python logging's) numeric values. */
enum qln_log_level {
    QLN_LOG_DEBUG = 10,
    QLN_LOG_INFO = 20,
    QLN_LOG_WARNING = 30,
    QLN_LOG_ERROR = 40,
    QLN_LOG_CRITICAL = 50,
};

/** The current threshold; lines below it are not formatted at all. */
QLN_API int qln_log_level(void);
/** Writes one line at LEVEL (no level check; use qln_log()). A trailing newline in FMT is
    dropped. */
QLN_API void qln_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** As qln_log_write, then appends " failed: <strerror(err)>"; ERR is a positive or negative
    errno. */
QLN_API void qln_log_errno_write(int level, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Writes TEXT verbatim (e.g. a Python traceback) to the error log. */
QLN_API void qln_log_raw(const char *text, size_t len);
/** Writes TEXT and a newline to the access log, when one is configured (a
    language's own access logger, e.g. Python's "gunicorn.access"). Any thread.
    Since ABI 1.3. */
QLN_API void qln_log_access_line(const char *text, size_t len);
/** The error log's file descriptor (2 when logging to stderr), e.g. for faulthandler. */
QLN_API int qln_log_fd(void);

/**
 * Where a plugin takes over the error and access lines (the python3
 * plugin's --log-config: Python's logging). ERROR gets each error log
 * line's level and message (no time, pid or level name, no newline; a
 * traceback that follows its line comes as a message of its own at
 * ERROR), ACCESS each formatted access line; each returns true when it
 * took the line, false to let the core write it as usual. They are called
 * on any thread, at most once at a time per thread. Since ABI 1.8.
 */
struct qln_log_sink {
    void *ctx;
    bool (*error)(void *ctx, int level, const char *msg, size_t len);
    bool (*access)(void *ctx, const char *line, size_t len);
};
/** Installs SINK (kept, not copied) for this process and the ones it forks;
    NULL gives the lines back to the core. A logger (qln_log_set_logger)
    takes its place, and it a logger's. Since ABI 1.8. */
QLN_API void qln_log_set_sink(const struct qln_log_sink *sink);

struct qln_request;

/**
 * One finished request, as a plugin's logger gets it (struct qln_logger's
 * ACCESS). REQ's head is readable with the qln_req_* accessors during the
 * call (its body no longer is). LINE is the request formatted with
 * --access-logformat, not NUL-terminated. Since ABI 1.9.
 */
struct qln_access_info {
    struct qln_request *req;
    int status;
    int64_t body_bytes; /**< body bytes sent */
    const struct qln_header *resp_headers;
    size_t nresp_headers;
    int64_t duration_us; /**< from the request's first byte to its last answer byte */
    const char *line;
    size_t len;
};

/** struct qln_logger's FLAGS. */
enum qln_logger_flags {
    /** A line the logger took is sent to syslog by the logger alone, not by
        the core too (a logger that keeps its own syslog handlers). */
    QLN_LOGGER_OWNS_SYSLOG = 1u << 0,
};

/**
 * A plugin's logger that takes over the error and access lines, as struct
 * qln_log_sink does and more (the python3 plugin's --log-config and
 * --logger-class): ACCESS gets the whole request, and REOPEN is called
 * after the core reopened its own files (USR1, qilinctl reopen), in the
 * master and in each worker, so the logger reopens its own. ERROR and
 * ACCESS return true when they took the line, false to let the core write
 * it as usual; any callback may be NULL. Called on any thread, at most once
 * at a time per thread. Since ABI 1.9.
 */
struct qln_logger {
    uint32_t size;  /**< sizeof(struct qln_logger) as compiled */
    uint32_t flags; /**< enum qln_logger_flags */
    void *ctx;
    bool (*error)(void *ctx, int level, const char *msg, size_t len);
    bool (*access)(void *ctx, const struct qln_access_info *info);
    void (*reopen)(void *ctx);
};
/** Installs LOGGER (kept, not copied) for this process and the ones it
    forks, in place of any sink (one takes the other's place); NULL gives
    the lines back to the core. Since ABI 1.9. */
QLN_API void qln_log_set_logger(const struct qln_logger *logger);

#define qln_log(level, ...)                                                                        \
    do {                                                                                           \
        if ((level) >= qln_log_level())                                                            \
            qln_log_write((level), __VA_ARGS__);                                                   \
    } while (0)

#define qln_log_errno(level, err, ...)                                                             \
    do {                                                                                           \
        if ((level) >= qln_log_level())                                                            \
            qln_log_errno_write((level), (err), __VA_ARGS__);                                      \
    } while (0)

/** Prints "file:line: assertion failed: expr" to the error log and aborts. */
QLN_API _Noreturn void qln_assert_fail(const char *expr, const char *file, int line);

/** Always compiled in. */
#define qln_assert(expr) ((expr) ? (void)0 : qln_assert_fail(#expr, __FILE__, __LINE__))
#define qln_unreachable() qln_assert_fail("unreachable", __FILE__, __LINE__)

#endif
