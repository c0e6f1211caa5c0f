/*
 * Error log and access log, in gunicorn's formats. Master and workers, any
 * thread: every line is formatted into a stack buffer and leaves with one
 * write(2), so lines from different workers and threads never interleave.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <qilin/errno.h>
#include <qilin/log.h>

#include "log.h"
#include "syslog.h"
#include "util.h"

/* One error line; longer messages are cut and end with "..." (qln_log_raw takes big text). */
#define LOG_LINE_MAX 4096
/* One access line: a request line may reach 8190 bytes, plus headers shown by the format. */
#define ACCESS_LINE_MAX 16384

enum piece_kind {
    PIECE_LITERAL,  /* text copied as is */
    PIECE_ATOM,     /* one-letter atom: h l u t r ... */
    PIECE_REQ_HDR,  /* %({name}i)s */
    PIECE_RESP_HDR, /* %({name}o)s */
    PIECE_ENV,      /* %({name}e)s: a request's WSGI environ variable (env_value) */
    PIECE_UNKNOWN,  /* any other name renders "-", as gunicorn's SafeAtoms does */
};

struct access_piece {
    enum piece_kind kind;
    char atom;  /* PIECE_ATOM */
    bool left;  /* "%(h)-15s": pad on the right */
    int width;  /* minimum field width, 0 for none */
    char *text; /* literal text, header name, or environ key */
    size_t len;
};

struct access_format {
    struct access_piece *v;
    size_t n;
    bool json; /* --access-logformat json: values are escaped for JSON strings */
};

/*
 * --access-logformat json: one JSON object a line, for log shippers that
 * parse JSON (gunicorn #2457). Numbers stay numbers; every other value is
 * a JSON string.
 */
static const char json_access_format[] =
    "{\"remote_addr\": \"%(h)s\", \"time\": \"%(t)s\", \"request\": \"%(r)s\", "
    "\"method\": \"%(m)s\", \"path\": \"%(U)s\", \"query\": \"%(q)s\", "
    "\"protocol\": \"%(H)s\", \"status\": %(s)s, \"bytes\": %(B)s, "
    "\"referer\": \"%(f)s\", \"user_agent\": \"%(a)s\", \"duration_us\": %(D)s, "
    "\"pid\": \"%(p)s\"}";

/*
 * The log state of this process (master or worker). The fds and level are
 * written only by log_open/log_close, which run before threads exist or
 * from the main thread at reload; log_reopen keeps the fd numbers (dup3
 * over them), so readers on other threads never see a half-changed state.
 */
static struct {
    int level;
    int err_fd;     /* 2 or our own file */
    char *err_path; /* NULL when the error log is stderr */
    int acc_fd;     /* -1: access log off; 1: stdout */
    char *acc_path; /* NULL when off or stdout */
    struct access_format acc_fmt;
    struct syslog_target sys; /* --log-syslog; fd -1: off */
} logst = {.level = QLN_LOG_INFO, .err_fd = 2, .acc_fd = -1, .sys = {.fd = -1}};

/* log_set_line_counter's: told each error line's level (StatsD counts them). */
static void (*_Atomic line_counter)(int level);

void
log_set_line_counter(void (*count)(int level))
{
    line_counter = count;
}

/* qln_log_set_logger's (or the sink's adapter below); NULL: the core writes
   every line itself. */
static const struct qln_logger *_Atomic log_logger;
/* This thread is inside the logger: a line it logs meanwhile is the core's. */
static _Thread_local bool in_sink;

/* The installed logger has MEMBER set (and its SIZE covers it). */
#define LOGGER_HAS(l, member)                                                                      \
    ((l) != NULL && (l)->size >= offsetof(struct qln_logger, member) + sizeof((l)->member) &&      \
     (l)->member != NULL)

static const struct qln_logger *
current_logger(void)
{
    return atomic_load_explicit(&log_logger, memory_order_acquire);
}

/* True when the logger that took a line sends it to syslog itself. */
static bool
logger_owns_syslog(void)
{
    const struct qln_logger *l = current_logger();

    return l != NULL && (l->flags & QLN_LOGGER_OWNS_SYSLOG) != 0;
}

/* Hands an error line to the logger; true when it took it. */
static bool
sink_error(int level, const char *msg, size_t len)
{
    const struct qln_logger *l = current_logger();
    bool taken;

    if (in_sink || !LOGGER_HAS(l, error))
        return false;
    in_sink = true;
    taken = l->error(l->ctx, level, msg, len);
    in_sink = false;
    return taken;
}

static bool
sink_access(const struct qln_access_info *info)
{
    const struct qln_logger *l = current_logger();
    bool taken;

    if (in_sink || !LOGGER_HAS(l, access))
        return false;
    in_sink = true;
    taken = l->access(l->ctx, info);
    in_sink = false;
    return taken;
}

void
qln_log_set_logger(const struct qln_logger *logger)
{
    atomic_store_explicit(&log_logger, logger, memory_order_release);
}

/* qln_log_set_sink's sink, installed as a logger whose callbacks hand on
   what the sink takes (the access line only). */
static const struct qln_log_sink *_Atomic log_sink;

static bool
sink_adapter_error(void *ctx, int level, const char *msg, size_t len)
{
    const struct qln_log_sink *s = atomic_load_explicit(&log_sink, memory_order_acquire);

    return s != NULL && s->error != NULL && s->error(s->ctx, level, msg, len);
}

static bool
sink_adapter_access(void *ctx, const struct qln_access_info *info)
{
    const struct qln_log_sink *s = atomic_load_explicit(&log_sink, memory_order_acquire);

    return s != NULL && s->access != NULL && s->access(s->ctx, info->line, info->len);
}

static const struct qln_logger sink_adapter = {
    .size = sizeof(struct qln_logger),
    .error = sink_adapter_error,
    .access = sink_adapter_access,
};

void
qln_log_set_sink(const struct qln_log_sink *sink)
{
    atomic_store_explicit(&log_sink, sink, memory_order_release);
    qln_log_set_logger(sink != NULL ? &sink_adapter : NULL);
}

/*
 * The pid shown in each line. Set by log_set_pid after fork; the atfork
 * handler also clears it in every child so a fork that forgot to call
 * log_set_pid (or one made by Python's os.fork) still shows the right pid.
 */
static volatile int cached_pid;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static const char *const month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void
forget_pid(void)
{
    cached_pid = 0;
}

static void
register_atfork(void)
{
    pthread_atfork(NULL, NULL, forget_pid);
}

static int
current_pid(void)
{
    int pid = cached_pid;

    if (pid == 0) {
        pthread_once(&atfork_once, register_atfork);
        pid = (int)getpid();
        cached_pid = pid;
    }
    return pid;
}

/* Lines the logger takes and sends to syslog itself are not sent again. */
static void
syslog_line(int level, const char *kind, const char *msg, size_t len, bool taken)
{
    if (!(taken && logger_owns_syslog()))
        syslog_send(&logst.sys, level, kind, current_pid(), msg, len);
}

void
log_set_pid(int pid)
{
    pthread_once(&atfork_once, register_atfork);
    cached_pid = pid;
}

int
qln_log_level(void)
{
    return logst.level;
}

int
qln_log_fd(void)
{
    return logst.err_fd;
}

/* Writes all of BUF, retrying short writes and EINTR; a log line is best effort. */
static void
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static const char *
level_name(int level)
{
    if (level >= QLN_LOG_CRITICAL)
        return "CRITICAL";
    if (level >= QLN_LOG_ERROR)
        return "ERROR";
    if (level >= QLN_LOG_WARNING)
        return "WARNING";
    if (level >= QLN_LOG_INFO)
        return "INFO";
    return "DEBUG";
}

int
log_level_parse(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {
        {"debug", QLN_LOG_DEBUG}, {"info", QLN_LOG_INFO},         {"warning", QLN_LOG_WARNING},
        {"error", QLN_LOG_ERROR}, {"critical", QLN_LOG_CRITICAL},
    };

    for (size_t i = 0; name != NULL && i < ARRAY_SIZE(levels); i++)
        if (strcasecmp(name, levels[i].name) == 0)
            return levels[i].level;
    return -EINVAL;
}

/*
 * "[2026-01-02 10:22:28 +0000] " for the current second. Each thread keeps
 * the text of the last second it formatted: localtime_r and strftime then
 * run once a second per thread, not once a line.
 */
static size_t
format_stamp(char *buf, size_t len)
{
    static _Thread_local time_t last_sec = (time_t)-1;
    static _Thread_local char last_text[48];
    static _Thread_local size_t last_len;
    time_t now = time(NULL);
    struct tm tm;

    if (now != last_sec) {
        localtime_r(&now, &tm);
        last_len = strftime(last_text, sizeof(last_text), "[%Y-%m-%d %H:%M:%S %z] ", &tm);
        last_sec = now;
    }
    if (last_len >= len)
        return 0;
    memcpy(buf, last_text, last_len);
    return last_len;
}

/* Appends printf output at *N without passing CAP; sets *CUT when it did not fit. */
static void
append_vfmt(char *buf, size_t cap, size_t *n, bool *cut, const char *fmt, va_list ap)
{
    int m;

    if (*cut)
        return;
    m = vsnprintf(buf + *n, cap + 1 - *n, fmt, ap);
    if (m < 0)
        return;
    if ((size_t)m > cap - *n) {
        *cut = true;
        *n = cap;
    } else {
        *n += (size_t)m;
    }
}

static void append_fmt(char *buf, size_t cap, size_t *n, bool *cut, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
append_fmt(char *buf, size_t cap, size_t *n, bool *cut, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    append_vfmt(buf, cap, n, cut, fmt, ap);
    va_end(ap);
}

/*
 * Formats the head, the message and, with WITH_ERR, the errno suffix, then
 * writes the line. A cut line ends with "..." so the reader sees it was cut.
 */
static void
vlog_line(int level, bool with_err, int err, const char *fmt, va_list ap)
{
    char buf[LOG_LINE_MAX];
    const size_t cap = sizeof(buf) - 1; /* the newline always fits */
    size_t n = format_stamp(buf, cap), msg;
    bool cut = false, taken;

    append_fmt(buf, cap, &n, &cut, "[%d] [%s] ", current_pid(), level_name(level));
    msg = n;
    append_vfmt(buf, cap, &n, &cut, fmt, ap);
    /* The contract drops a trailing newline so callers may write either form. */
    if (!cut && n > 0 && buf[n - 1] == '\n')
        n--;
    if (with_err)
        append_fmt(buf, cap, &n, &cut, " failed: %s", qln_strerror(err > 0 ? -err : err));
    if (cut)
        memcpy(buf + cap - 3, "...", 3);
    buf[n++] = '\n';
    taken = sink_error(level, buf + msg, n - 1 - msg);
    if (!taken)
        write_all(logst.err_fd, buf, n);
    if (msg < n - 1)
        syslog_line(level, "error", buf + msg, n - 1 - msg, taken);
    /* gunicorn's statsd logger counts its warning, error and critical lines. */
    if (line_counter != NULL)
        line_counter(level);
}

void
qln_log_write(int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog_line(level, false, 0, fmt, ap);
    va_end(ap);
}

void
qln_log_errno_write(int level, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog_line(level, true, err, fmt, ap);
    va_end(ap);
}

void
qln_log_raw(const char *text, size_t len)
{
    size_t n = len;
    bool taken;

    /* A traceback goes on after its line: one more syslog message (and
       record, for a sink), as gunicorn's record carries it. */
    while (n > 0 && text[n - 1] == '\n')
        n--;
    taken = n > 0 && sink_error(QLN_LOG_ERROR, text, n);
    if (!taken)
        write_all(logst.err_fd, text, len);
    if (n > 0)
        syslog_line(QLN_LOG_ERROR, "error", text, n, taken);
}

void
qln_log_access_line(const char *text, size_t len)
{
    struct iovec iov[2] = {{(void *)text, len}, {(void *)"\n", 1}};
    ssize_t n;

    if (logst.sys.access)
        syslog_send(&logst.sys, QLN_LOG_INFO, "access", current_pid(), text, len);
    if (logst.acc_fd < 0)
        return;
    /* One writev, so that lines of several processes never interleave. */
    do
        n = writev(logst.acc_fd, iov, 2);
    while (n < 0 && errno == EINTR);
}

_Noreturn void
qln_assert_fail(const char *expr, const char *file, int line)
{
    qln_log_write(QLN_LOG_CRITICAL, "%s:%d: assertion failed: %s", file, line, expr);
    abort();
}

/* ---- access log: compiling gunicorn's %-format ------------------------- */

static void
format_push(struct access_format *f, struct access_piece piece)
{
    f->v = xrealloc(f->v, (f->n + 1) * sizeof(*f->v));
    f->v[f->n++] = piece;
}

static void
format_free(struct access_format *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].text);
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

static void
push_literal(struct access_format *f, const char *s, size_t len)
{
    if (len == 0)
        return;
    format_push(f,
                (struct access_piece){.kind = PIECE_LITERAL, .text = xstrndup(s, len), .len = len});
}

/*
 * Classifies the NAME of "%(NAME)s". gunicorn looks "{...}i" and "{...}o"
 * keys up lowercased, so header names are stored lowercased and compared
 * without case; a "{...}e" key is a WSGI environ key, kept as written.
 */
static struct access_piece
classify_atom(const char *name, size_t len)
{
    struct access_piece p = {.kind = PIECE_UNKNOWN};
    char *key;

    if (len == 1 && strchr("hlutrmUqHpsbBfaTMDL", name[0]) != NULL)
        return (struct access_piece){.kind = PIECE_ATOM, .atom = name[0]};
    if (len < 4 || name[0] != '{' || name[len - 2] != '}')
        return p;
    key = xstrndup(name + 1, len - 3);
    switch (name[len - 1]) {
    case 'i':
    case 'o':
        for (char *c = key; *c != '\0'; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        p.kind = name[len - 1] == 'i' ? PIECE_REQ_HDR : PIECE_RESP_HDR;
        p.text = key;
        p.len = len - 3;
        return p;
    case 'e':
        p.kind = PIECE_ENV;
        p.text = key;
        p.len = len - 3;
        return p;
    default:
        free(key);
        return p;
    }
}

/*
 * Parses one "%(name)[-][width]conv" at S (S[0] == '%', S[1] == '(').
 * Returns the bytes consumed, or 0 when this is no valid conversion (the
 * caller then copies the '%' literally).
 */
static size_t
parse_conversion(const char *s, struct access_format *f)
{
    const char *close = strchr(s + 2, ')');
    const char *q;
    struct access_piece p;
    bool left = false;
    int width = 0;

    if (close == NULL)
        return 0;
    q = close + 1;
    while (*q == '-' || *q == '+' || *q == ' ' || *q == '#' || *q == '0') {
        left = left || *q == '-';
        q++;
    }
    while (*q >= '0' && *q <= '9' && width < 1000)
        width = width * 10 + (*q++ - '0');
    if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')))
        return 0;
    p = classify_atom(s + 2, (size_t)(close - (s + 2)));
    p.left = left;
    p.width = width;
    format_push(f, p);
    return (size_t)(q + 1 - s);
}

static void
format_compile(const char *fmt, struct access_format *f)
{
    const char *lit, *s;

    f->json = strcmp(fmt, "json") == 0;
    if (f->json)
        fmt = json_access_format;
    lit = s = fmt;
    f->v = NULL;
    f->n = 0;
    while (*s != '\0') {
        size_t used = 0;

        if (s[0] != '%') {
            s++;
            continue;
        }
        if (s[1] == '%') {
            push_literal(f, lit, (size_t)(s + 1 - lit)); /* keeps one '%' */
            s += 2;
            lit = s;
            continue;
        }
        if (s[1] == '(') {
            push_literal(f, lit, (size_t)(s - lit));
            used = parse_conversion(s, f);
            if (used == 0) {
                lit = s;
                s++;
                continue;
            }
            s += used;
            lit = s;
            continue;
        }
        s++;
    }
    push_literal(f, lit, (size_t)(s - lit));
}

/* ---- access log: rendering ---------------------------------------------- */

struct outbuf {
    char *p;
    size_t len, cap; /* cap excludes room for the NUL */
    bool truncated;
    bool json; /* values go inside JSON strings */
};

static void
out_raw(struct outbuf *o, const char *s, size_t n)
{
    /* Absent values arrive as {NULL, 0}; memcpy must not see NULL even for 0 bytes. */
    if (n == 0)
        return;
    if (n > o->cap - o->len) {
        n = o->cap - o->len;
        o->truncated = true;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

/* Copies a value with '"' escaped as '\"', as gunicorn's SafeAtoms does. */
static void
out_value(struct outbuf *o, const char *s, size_t n)
{
    size_t start = 0;
    char esc[8];

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!o->json ? c != '"' : (c >= 0x20 && c < 0x80 && c != '"' && c != '\\'))
            continue;
        out_raw(o, s + start, i - start);
        if (!o->json || c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            out_raw(o, esc, 2);
        } else {
            /* Control bytes, and bytes past ASCII as their latin-1 character
               (the header bytes WSGI gives as latin-1): always valid JSON. */
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            out_raw(o, esc, 6);
        }
        start = i + 1;
    }
    out_raw(o, s + start, n - start);
}

static void
out_slice_or_dash(struct outbuf *o, struct qln_slice s)
{
    if (s.p == NULL)
        out_raw(o, "-", 1);
    else
        out_value(o, s.p, s.len);
}

static void out_fmt(struct outbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
out_fmt(struct outbuf *o, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        out_raw(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* The last header named NAME (lowercase), as gunicorn's dict keeps the last duplicate. */
static struct qln_slice
find_header(const struct qln_header *h, size_t n, const char *name, size_t len)
{
    struct qln_slice found = {NULL, 0};

    for (size_t i = 0; h != NULL && i < n; i++)
        if (h[i].name.len == len && strncasecmp(h[i].name.p, name, len) == 0)
            found = h[i].value;
    return found;
}

/*
 * PATH as PATH_INFO shows it: percent-decoded once (bytes as latin-1, as
 * PEP 3333). A decoded control character would let a client start a new
 * line in the log: those are written as \xNN, as nginx writes them.
 */
static void
out_decoded_path(struct outbuf *o, struct qln_slice path)
{
    char buf[256];
    size_t i, n = 0;
    int hi, lo;

    if (path.p == NULL) {
        out_raw(o, "-", 1);
        return;
    }
    for (i = 0; i < path.len; i++) {
        unsigned char c = (unsigned char)path.p[i];

        if (c == '%' && i + 2 < path.len && (hi = util_hex_digit(path.p[i + 1])) >= 0 &&
            (lo = util_hex_digit(path.p[i + 2])) >= 0) {
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (n + 4 > sizeof(buf)) {
            out_value(o, buf, n);
            n = 0;
        }
        if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(buf + n, 5, "\\x%02x", c);
        else
            buf[n++] = (char)c;
    }
    out_value(o, buf, n);
}

/* The connection's own variable K (TLS: SSL_PROTOCOL ...), or NULL. */
static const char *
conn_env(const struct access_record *rec, struct qln_slice k)
{
    const char *name, *value;
    size_t i;

    for (i = 0; rec->env_var(rec->env_ctx, i, &name, &value); i++) {
        if (slice_eq(k, name))
            return value;
    }
    return NULL;
}

/*
 * Renders the WSGI environ variable KEY of REC's request ("%({KEY}e)s", as
 * gunicorn reads the environ): the CGI variables and HTTP_* headers every
 * PEP 3333 server sets, from the request itself, and the connection's own
 * (TLS). Keys an application adds to its environ are not known to the
 * core: "-", as for an unset key.
 */
static void
out_env(struct outbuf *o, const char *key, size_t len, const struct access_record *rec)
{
    struct qln_slice k = {key, len};
    char name[128];
    const char *s = NULL;
    size_t i;

    if (slice_eq(k, "REQUEST_METHOD")) {
        out_slice_or_dash(o, rec->method);
    } else if (slice_eq(k, "RAW_URI")) {
        out_slice_or_dash(o, rec->target);
    } else if (slice_eq(k, "PATH_INFO")) {
        out_decoded_path(o, rec->path);
    } else if (slice_eq(k, "QUERY_STRING")) {
        out_value(o, rec->query.p, rec->query.len);
    } else if (slice_eq(k, "SERVER_PROTOCOL")) {
        out_fmt(o, "HTTP/1.%d", rec->version_minor);
    } else if (slice_eq(k, "CONTENT_TYPE") || slice_eq(k, "CONTENT_LENGTH")) {
        out_slice_or_dash(o, find_header(rec->req_headers, rec->nreq_headers,
                                         key[8] == 'T' ? "content-type" : "content-length",
                                         key[8] == 'T' ? 12 : 14));
    } else if (len > 5 && len - 5 < sizeof(name) && memcmp(key, "HTTP_", 5) == 0) {
        /* HTTP_X_Y is the header X-Y; one named X_Y never reaches the environ. */
        for (i = 5; i < len; i++)
            name[i - 5] = key[i] == '_' ? '-' : key[i];
        out_slice_or_dash(o, find_header(rec->req_headers, rec->nreq_headers, name, len - 5));
    } else {
        if (slice_eq(k, "REMOTE_ADDR"))
            s = rec->remote_addr;
        else if (slice_eq(k, "REMOTE_PORT"))
            s = rec->remote_port;
        else if (slice_eq(k, "SERVER_NAME"))
            s = rec->server_name;
        else if (slice_eq(k, "SERVER_PORT"))
            s = rec->server_port;
        else if (slice_eq(k, "wsgi.url_scheme"))
            s = rec->url_scheme;
        else if (rec->env_var != NULL)
            s = conn_env(rec, k);
        out_slice_or_dash(o, (struct qln_slice){s, s != NULL ? strlen(s) : 0});
    }
}

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * Decodes base64 S into OUT (at most OUTLEN bytes); returns the decoded
 * length or -1 when S is not valid padded base64 (gunicorn then shows "-").
 */
static ssize_t
b64_decode(const char *s, size_t n, char *out, size_t outlen)
{
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;

    if (n % 4 != 0)
        return -1;
    for (int pad = 0; pad < 2 && n > 0 && s[n - 1] == '='; pad++)
        n--;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= outlen)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (ssize_t)o;
}

/* "%(u)s": the user of "Authorization: Basic base64(user:password)", else "-". */
static void
out_basic_user(struct outbuf *o, const struct access_record *rec)
{
    struct qln_slice auth = find_header(rec->req_headers, rec->nreq_headers, "authorization", 13);
    char dec[512];
    const char *b64, *end, *colon;
    ssize_t n;

    if (auth.p == NULL || auth.len < 6 || strncasecmp(auth.p, "basic", 5) != 0 ||
        auth.p[5] != ' ') {
        out_raw(o, "-", 1);
        return;
    }
    b64 = auth.p + 6;
    end = auth.p + auth.len;
    while (b64 < end && (*b64 == ' ' || *b64 == '\t'))
        b64++;
    while (end > b64 && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    n = b64_decode(b64, (size_t)(end - b64), dec, sizeof(dec));
    if (n <= 0) {
        out_raw(o, "-", 1);
        return;
    }
    colon = memchr(dec, ':', (size_t)n);
    out_value(o, dec, colon != NULL ? (size_t)(colon - dec) : (size_t)n);
}

/* "%(t)s": "[22/Nov/2026:23:09:29 +0000]" in local time, month names never localised. */
static void
out_time(struct outbuf *o, const struct timespec *ts)
{
    struct tm tm;
    time_t sec = ts->tv_sec;
    long off;

    localtime_r(&sec, &tm);
    off = tm.tm_gmtoff / 60;
    out_fmt(o, "[%02d/%s/%04d:%02d:%02d:%02d %c%02ld%02ld]", tm.tm_mday, month_names[tm.tm_mon],
            tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
            labs(off) / 60, labs(off) % 60);
}

static void
out_atom(struct outbuf *o, char atom, const struct access_record *rec, int pid)
{
    int64_t us = rec->duration_us < 0 ? 0 : rec->duration_us;

    switch (atom) {
    case 'h':
        if (rec->remote_addr != NULL)
            out_value(o, rec->remote_addr, strlen(rec->remote_addr));
        else
            out_raw(o, "-", 1);
        break;
    case 'l':
        out_raw(o, "-", 1);
        break;
    case 'u':
        out_basic_user(o, rec);
        break;
    case 't':
        out_time(o, &rec->time);
        break;
    case 'r':
        out_value(o, rec->method.p, rec->method.len);
        out_raw(o, " ", 1);
        out_value(o, rec->target.p, rec->target.len);
        out_fmt(o, " HTTP/1.%d", rec->version_minor);
        break;
    case 'm':
        out_slice_or_dash(o, rec->method);
        break;
    case 'U':
        out_decoded_path(o, rec->path);
        break;
    case 'q':
        out_value(o, rec->query.p, rec->query.len);
        break;
    case 'H':
        out_fmt(o, "HTTP/1.%d", rec->version_minor);
        break;
    case 'p':
        out_fmt(o, "<%d>", pid);
        break;
    case 's':
        out_fmt(o, "%d", rec->status);
        break;
    case 'b':
        /* gunicorn: "-" only when no response was sent; an empty body is 0. */
        if (rec->status != 0)
            out_fmt(o, "%lld", (long long)rec->body_bytes);
        else
            out_raw(o, "-", 1);
        break;
    case 'B':
        out_fmt(o, "%lld", (long long)rec->body_bytes);
        break;
    case 'f':
        out_slice_or_dash(o, find_header(rec->req_headers, rec->nreq_headers, "referer", 7));
        break;
    case 'a':
        out_slice_or_dash(o, find_header(rec->req_headers, rec->nreq_headers, "user-agent", 10));
        break;
    case 'T':
        out_fmt(o, "%lld", (long long)(us / 1000000));
        break;
    case 'M':
        out_fmt(o, "%lld", (long long)(us / 1000));
        break;
    case 'D':
        out_fmt(o, "%lld", (long long)us);
        break;
    case 'L':
        out_fmt(o, "%lld.%06lld", (long long)(us / 1000000), (long long)(us % 1000000));
        break;
    default:
        out_raw(o, "-", 1);
        break;
    }
}

static void
out_piece(struct outbuf *o, const struct access_piece *p, const struct access_record *rec, int pid)
{
    switch (p->kind) {
    case PIECE_LITERAL:
        out_raw(o, p->text, p->len);
        break;
    case PIECE_ATOM:
        out_atom(o, p->atom, rec, pid);
        break;
    case PIECE_REQ_HDR:
        out_slice_or_dash(o, find_header(rec->req_headers, rec->nreq_headers, p->text, p->len));
        break;
    case PIECE_RESP_HDR:
        out_slice_or_dash(o, find_header(rec->resp_headers, rec->nresp_headers, p->text, p->len));
        break;
    case PIECE_ENV:
        out_env(o, p->text, p->len, rec);
        break;
    case PIECE_UNKNOWN:
        out_raw(o, "-", 1);
        break;
    }
}

/*
 * Renders one piece, then applies Python's width: the value is padded with
 * spaces on the left, or on the right for "-" ("%(h)-15s").
 */
static void
render_piece(struct outbuf *o, const struct access_piece *p, const struct access_record *rec,
             int pid)
{
    size_t start = o->len, n, pad;

    out_piece(o, p, rec, pid);
    n = o->len - start;
    if (p->width <= 0 || (size_t)p->width <= n)
        return;
    pad = (size_t)p->width - n;
    if (pad > o->cap - o->len) {
        pad = o->cap - o->len;
        o->truncated = true;
    }
    if (!p->left)
        memmove(o->p + start + pad, o->p + start, n);
    memset(p->left ? o->p + o->len : o->p + start, ' ', pad);
    o->len += pad;
}

static size_t
render(const struct access_format *f, const struct access_record *rec, int pid, char *buf,
       size_t len, bool *truncated)
{
    struct outbuf o = {.p = buf, .len = 0, .cap = len - 1, .truncated = false, .json = f->json};

    for (size_t i = 0; i < f->n; i++)
        render_piece(&o, &f->v[i], rec, pid);
    buf[o.len] = '\0';
    *truncated = o.truncated;
    return o.len;
}

size_t
log_access_format(const char *format, const struct access_record *rec, int pid, char *buf,
                  size_t len)
{
    struct access_format f;
    bool truncated;
    size_t n;

    if (len == 0)
        return 0;
    format_compile(format, &f);
    n = render(&f, rec, pid, buf, len, &truncated);
    format_free(&f);
    return n;
}

bool
log_access_enabled(void)
{
    const struct qln_logger *l = atomic_load_explicit(&log_logger, memory_order_relaxed);

    return logst.acc_fd >= 0 || (logst.sys.fd >= 0 && logst.sys.access) || LOGGER_HAS(l, access);
}

void
log_access(const struct access_record *rec)
{
    char buf[ACCESS_LINE_MAX];
    bool truncated, taken;
    size_t n;
    struct qln_access_info info;

    if (!log_access_enabled())
        return;
    /* Leave room for "...\n" so a cut line still ends where a reader expects. */
    n = render(&logst.acc_fmt, rec, current_pid(), buf, sizeof(buf) - 4, &truncated);
    if (truncated) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    info = (struct qln_access_info){
        .req = rec->req,
        .status = rec->status,
        .body_bytes = rec->body_bytes,
        .resp_headers = rec->resp_headers,
        .nresp_headers = rec->nresp_headers,
        .duration_us = rec->duration_us,
        .line = buf,
        .len = n,
    };
    taken = sink_access(&info);
    if (logst.sys.access)
        syslog_line(QLN_LOG_INFO, "access", buf, n, taken);
    if (taken)
        return;
    buf[n++] = '\n';
    if (logst.acc_fd >= 0)
        write_all(logst.acc_fd, buf, n);
}

/* ---- opening, reopening, closing ---------------------------------------- */

/* Opens a log file for appending; WHAT ("error log") and FLAG name it in ERR. */
static int
open_log_file(const char *path, const char *what, const char *flag, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);

    if (fd < 0) {
        int e = errno;

        util_format(err, errlen, "cannot open %s %s: %s; check %s and the directory's permissions",
                    what, path, strerror(e), flag);
        return -e;
    }
    return fd;
}

/*
 * Makes NEWFD (a file, a standard stream, or -1 for off) the log at *FD.
 * When a file was already open there and NEWFD is a file too, NEWFD moves
 * onto the old number so whoever copied qln_log_fd() (faulthandler) keeps
 * writing to the current log.
 */
static void
install_fd(int *fd, int newfd)
{
    if (newfd <= 2 || *fd <= 2 || dup3(newfd, *fd, O_CLOEXEC) < 0) {
        if (*fd > 2)
            close(*fd);
        *fd = newfd;
        return;
    }
    close(newfd);
}

static bool
is_stdstream(const char *path)
{
    return path == NULL || strcmp(path, "-") == 0;
}

/* util.c's report of a failed allocation: formats into a stack buffer. */
static void
log_oom(size_t n)
{
    qln_log_write(QLN_LOG_CRITICAL, "out of memory allocating %zu bytes", n);
}

int
log_open(const struct log_options *o, char *err, size_t errlen)
{
    const char *errorlog = o->errorlog;
    const char *levelname = o->loglevel;
    const char *accesslog = o->accesslog;
    const char *format = o->access_log_format;
    int level = levelname != NULL ? log_level_parse(levelname) : QLN_LOG_INFO;
    const char *odd = NULL;
    int efd = 2, afd = -1, rc;
    struct syslog_target sys = {.fd = -1};

    util_set_oom_report(log_oom);
    /* gunicorn takes any level name, and one it does not know as info;
       Python's "warn" is warning here. Either way, one warning says so. */
    if (level < 0) {
        odd = levelname;
        level = strcasecmp(levelname, "warn") == 0 ? QLN_LOG_WARNING : QLN_LOG_INFO;
    }
    if (!is_stdstream(errorlog)) {
        efd = open_log_file(errorlog, "error log", "--error-logfile", err, errlen);
        if (efd < 0)
            return efd;
    }
    if (accesslog != NULL) {
        afd = strcmp(accesslog, "-") == 0
                  ? 1
                  : open_log_file(accesslog, "access log", "--access-logfile", err, errlen);
        if (afd < 0) {
            if (efd > 2)
                close(efd);
            return afd;
        }
    }
    rc = syslog_open(&o->syslog, &sys, err, errlen);
    if (rc != 0) {
        if (efd > 2)
            close(efd);
        if (afd > 2)
            close(afd);
        return rc;
    }
    syslog_close(&logst.sys);
    logst.sys = sys;
    install_fd(&logst.err_fd, efd);
    free(logst.err_path);
    logst.err_path = efd > 2 ? xstrdup(errorlog) : NULL;

    install_fd(&logst.acc_fd, afd);
    free(logst.acc_path);
    logst.acc_path = afd > 2 ? xstrdup(accesslog) : NULL;
    format_free(&logst.acc_fmt);
    /* Always: syslog or a plugin's sink (qln_log_set_sink) may want the lines. */
    format_compile(format != NULL ? format
                                  : "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s "
                                    "%(b)s \"%(f)s\" \"%(a)s\"",
                   &logst.acc_fmt);
    logst.level = level;
    if (odd != NULL)
        qln_log(QLN_LOG_WARNING,
                "loglevel '%s' is none of debug, info, warning, error, critical; using %s", odd,
                level == QLN_LOG_WARNING ? "warning" : "info, as gunicorn does");
    return 0;
}

/*
 * Reopens PATH onto the fd number FD (see install_fd): after logrotate
 * renamed the file, new lines go to a fresh file of the old name. Logs and
 * returns -errno on failure, keeping the old file.
 */
static int
reopen_one(const char *path, int fd, const char *what, const char *flag)
{
    char err[512];
    int newfd;

    if (path == NULL || fd <= 2)
        return 0;
    newfd = open_log_file(path, what, flag, err, sizeof(err));
    if (newfd < 0) {
        qln_log_write(QLN_LOG_ERROR, "%s", err);
        return newfd;
    }
    if (dup3(newfd, fd, O_CLOEXEC) < 0) {
        int e = errno;

        close(newfd);
        qln_log_errno_write(QLN_LOG_ERROR, e, "reopening %s %s: dup3", what, path);
        return -e;
    }
    close(newfd);
    return 0;
}

int
log_reopen(void)
{
    int rc = reopen_one(logst.err_path, logst.err_fd, "error log", "--error-logfile");
    int rc2 = reopen_one(logst.acc_path, logst.acc_fd, "access log", "--access-logfile");
    const struct qln_logger *l = current_logger();

    /* Then a plugin's logger reopens the files its own handlers write. */
    if (LOGGER_HAS(l, reopen))
        l->reopen(l->ctx);
    return rc != 0 ? rc : rc2;
}

void
log_close(void)
{
    if (logst.err_fd > 2)
        close(logst.err_fd);
    if (logst.acc_fd > 2)
        close(logst.acc_fd);
    free(logst.err_path);
    free(logst.acc_path);
    format_free(&logst.acc_fmt);
    logst.err_fd = 2;
    logst.err_path = NULL;
    logst.acc_fd = -1;
    logst.acc_path = NULL;
    logst.level = QLN_LOG_INFO;
    syslog_close(&logst.sys);
}
