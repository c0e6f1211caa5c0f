/*
 * Small helpers used everywhere in the core: allocation that never returns
 * NULL, time, string helpers. Master and workers.
 */
#ifndef QILIN_CORE_UTIL_H
#define QILIN_CORE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <qilin/common.h>

/*
 * How an allocation failure is reported before the process aborts: N is
 * the size asked for. The default writes one line to stderr; the error log
 * installs its own (log.c), which must not allocate.
 */
void util_set_oom_report(void (*report)(size_t n));

/* The allocator never returns NULL: on exhaustion it logs and aborts (workers
   are disposable; the master allocates almost nothing after boot). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; free() it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Monotonic milliseconds (CLOCK_MONOTONIC); same clock as qln_now_ms(). */
int64_t util_now_ms(void);

/*
 * Comparisons of a slice with a C string, exact and ASCII case-insensitive.
 * Inline so that with a literal the compiler folds strlen() to a constant
 * and a length mismatch costs one comparison (they run per header field).
 */
static inline bool
slice_eq(struct qln_slice s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.p, lit, n) == 0;
}

static inline bool
slice_caseeq(struct qln_slice s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && strncasecmp(s.p, lit, n) == 0;
}

/* The value of hex digit C, or -1 (percent-decoding). */
static inline int
util_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Formats a reason for humans into ERR (ERRLEN bytes, always NUL-terminated;
 * ERR may be NULL) and returns RC, so error paths read
 * `return util_err(err, errlen, -EINVAL, "...", ...);`.
 */
int util_err(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* snprintf that always NUL-terminates and never overflows; returns 0 or -ENOSPC. */
int util_format(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Without printf, for the per-connection path (printf's machinery cost more
 * than the rest of accepting a connection): the decimal digits of V into
 * OUT (room for them and the NUL: UTIL_U64_LEN bytes for any V), and the dotted quad of the IPv4 address
 * at ADDR (4 bytes, network order, as in struct in_addr) into OUT
 * (UTIL_IPV4_LEN bytes or more). Both NUL-terminate and return the length.
 */
#define UTIL_U64_LEN 21
#define UTIL_IPV4_LEN 16
size_t util_format_u64(char *out, uint64_t v);
size_t util_format_ipv4(char *out, const void *addr);

#endif
