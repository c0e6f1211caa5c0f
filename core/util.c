/*
 * Small helpers used everywhere in the core. Master and workers.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <qilin/errno.h>
#include <qilin/log.h>

#include "util.h"

/* Says that an allocation failed; the error log sets its own (util_set_oom_report). */
static void
oom_to_stderr(size_t n)
{
    char line[64];
    int len = snprintf(line, sizeof(line), "out of memory allocating %zu bytes\n", n);
    ssize_t w = write(2, line, len > 0 ? (size_t)len : 0);

    (void)w; /* about to abort: nothing better to do */
}

static void (*oom_report)(size_t n) = oom_to_stderr;

void
util_set_oom_report(void (*report)(size_t n))
{
    oom_report = report;
}

static _Noreturn void
out_of_memory(size_t n)
{
    oom_report(n);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        out_of_memory(n);
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        out_of_memory(n * size);
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        out_of_memory(n);
    return q;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    qln_assert(n >= 0);
    p = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int64_t
util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
qln_now_ms(void)
{
    return util_now_ms();
}

int
util_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

size_t
util_format_u64(char *out, uint64_t v)
{
    char tmp[UTIL_U64_LEN];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

size_t
util_format_ipv4(char *out, const void *addr)
{
    const uint8_t *b = addr;
    size_t n = 0;
    int i;

    for (i = 0; i < 4; i++) {
        if (i > 0)
            out[n++] = '.';
        n += util_format_u64(out + n, b[i]);
    }
    return n;
}

int
util_format(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (len == 0)
        return -ENOSPC;
    va_start(ap, fmt);
    n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        buf[0] = '\0';
        return -EINVAL;
    }
    return (size_t)n >= len ? -ENOSPC : 0;
}

const char *
qln_strerror(int err)
{
    switch (err) {
#define QLN_ERRNO_MSG(name, value, msg)                                                            \
    case value:                                                                                    \
        return msg;
        QLN_ERRNO_MAP(QLN_ERRNO_MSG)
#undef QLN_ERRNO_MSG
    case 0:
        return "success";
    default:
        return strerror(err < 0 ? -err : err);
    }
}

const char *
qln_err_name(int err)
{
    switch (err) {
#define QLN_ERRNO_NAME(name, value, msg)                                                           \
    case value:                                                                                    \
        return "QLN_" #name;
        QLN_ERRNO_MAP(QLN_ERRNO_NAME)
#undef QLN_ERRNO_NAME
    default: {
        const char *n = strerrorname_np(err < 0 ? -err : err);
        return n ? n : "UNKNOWN";
    }
    }
}
