/*
 * --log-syslog: the error log (and the access log) as syslog messages, in
 * the bytes gunicorn's logging.handlers.SysLogHandler sends, so that the
 * rsyslog or journald rules written for gunicorn match qilin's lines.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <qilin/log.h>

#include "syslog.h"
#include "util.h"

/* The longest message sent; longer lines are cut (a UDP daemon would drop them). */
#define SYSLOG_MSG_MAX 8192

/* gunicorn's SYSLOG_FACILITIES. */
static const struct {
    const char *name;
    int code;
} facilities[] = {
    {"auth", 4},    {"authpriv", 10}, {"cron", 9},    {"daemon", 3},  {"ftp", 11},
    {"kern", 0},    {"lpr", 6},       {"mail", 2},    {"news", 7},    {"security", 4},
    {"syslog", 5},  {"user", 1},      {"uucp", 8},    {"local0", 16}, {"local1", 17},
    {"local2", 18}, {"local3", 19},   {"local4", 20}, {"local5", 21}, {"local6", 22},
    {"local7", 23},
};

/* A parsed --log-syslog-to. */
struct syslog_addr {
    enum { ADDR_UNIX, ADDR_UDP, ADDR_TCP } kind;
    bool dgram_only;         /* unix://PATH#dgram */
    char path[108];          /* unix */
    char host[256], port[8]; /* udp, tcp */
};

static int
facility_code(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(facilities) / sizeof(facilities[0]); i++)
        if (strcasecmp(name, facilities[i].name) == 0)
            return facilities[i].code;
    return -1;
}

/*
 * Parses ADDR as gunicorn's parse_syslog_address does: unix://PATH (a
 * datagram socket, else a stream one; "#dgram" insists on datagrams),
 * udp:// or tcp:// with HOST, HOST:PORT or [V6]:PORT (HOST localhost and
 * PORT 514 when left out). 0 or -EINVAL.
 */
static int
parse_addr(const char *addr, struct syslog_addr *a)
{
    const char *rest, *host, *colon;
    size_t hlen;

    memset(a, 0, sizeof(*a));
    if (strncmp(addr, "unix://", 7) == 0) {
        const char *hash = strchr(addr + 7, '#');
        size_t len = hash != NULL ? (size_t)(hash - addr - 7) : strlen(addr + 7);

        a->kind = ADDR_UNIX;
        if (hash != NULL && strcmp(hash, "#dgram") == 0)
            a->dgram_only = true;
        if (len == 0 || len >= sizeof(a->path))
            return -EINVAL;
        memcpy(a->path, addr + 7, len);
        return 0;
    }
    if (strncmp(addr, "udp://", 6) == 0)
        a->kind = ADDR_UDP;
    else if (strncmp(addr, "tcp://", 6) == 0)
        a->kind = ADDR_TCP;
    else
        return -EINVAL;
    rest = addr + 6;
    if (rest[0] == '[') {
        const char *end = strchr(rest, ']');

        if (end == NULL)
            return -EINVAL;
        host = rest + 1;
        hlen = (size_t)(end - host);
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL)
            return -EINVAL;
    } else {
        host = rest;
        colon = strchr(rest, ':');
        hlen = colon != NULL ? (size_t)(colon - rest) : strlen(rest);
    }
    if (hlen >= sizeof(a->host))
        return -EINVAL;
    if (hlen == 0)
        snprintf(a->host, sizeof(a->host), "localhost");
    else
        memcpy(a->host, host, hlen);
    snprintf(a->port, sizeof(a->port), "514");
    if (colon != NULL) {
        size_t i, plen = strlen(colon + 1);

        if (plen == 0 || plen >= sizeof(a->port))
            return -EINVAL;
        for (i = 0; i < plen; i++)
            if (colon[1 + i] < '0' || colon[1 + i] > '9')
                return -EINVAL;
        memcpy(a->port, colon + 1, plen + 1);
    }
    return 0;
}

int
syslog_check(const struct syslog_options *o, char *err, size_t errlen)
{
    struct syslog_addr a;

    if (!o->on)
        return 0;
    if (parse_addr(o->addr != NULL ? o->addr : "udp://localhost:514", &a) != 0) {
        util_format(err, errlen,
                    "invalid --log-syslog-to '%s': use udp://HOST:PORT, tcp://HOST:PORT or"
                    " unix://PATH",
                    o->addr);
        return -EINVAL;
    }
    if (facility_code(o->facility != NULL ? o->facility : "user") < 0) {
        util_format(err, errlen,
                    "invalid --log-syslog-facility '%s': use user, daemon, local0 to local7,"
                    " or another syslog facility name",
                    o->facility);
        return -EINVAL;
    }
    return 0;
}

/* A connected socket for A; its fd, or -errno. *STREAM says which kind. */
static int
connect_to(const struct syslog_addr *a, bool *stream)
{
    struct addrinfo hints = {0}, *res = NULL, *ai;
    int fd = -1, e = 0, type;

    if (a->kind == ADDR_UNIX) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};

        memcpy(sun.sun_path, a->path, strlen(a->path) + 1);
        /* Datagrams first, as SysLogHandler tries them (/dev/log is one). */
        for (type = SOCK_DGRAM;; type = SOCK_STREAM) {
            fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
            if (fd < 0)
                return -errno;
            if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
                *stream = type == SOCK_STREAM;
                return fd;
            }
            e = errno;
            close(fd);
            if (type == SOCK_STREAM || a->dgram_only || e != EPROTOTYPE)
                return -e;
        }
    }
    hints.ai_socktype = a->kind == ADDR_TCP ? SOCK_STREAM : SOCK_DGRAM;
    e = getaddrinfo(a->host, a->port, &hints, &res);
    if (e != 0)
        return e == EAI_SYSTEM ? -errno : -EHOSTUNREACH;
    e = -EHOSTUNREACH;
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            e = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        e = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    *stream = a->kind == ADDR_TCP;
    return fd >= 0 ? fd : e;
}

int
syslog_open(const struct syslog_options *o, struct syslog_target *t, char *err, size_t errlen)
{
    const char *addr = o->addr != NULL ? o->addr : "udp://localhost:514";
    struct syslog_addr a;
    bool stream = false;
    int fd, rc;

    if (!o->on) {
        syslog_close(t);
        return 0;
    }
    rc = syslog_check(o, err, errlen);
    if (rc != 0)
        return rc;
    parse_addr(addr, &a);
    fd = connect_to(&a, &stream);
    if (fd < 0) {
        util_format(err, errlen, "cannot reach the syslog daemon at %s: %s; check --log-syslog-to",
                    addr, strerror(-fd));
        return fd;
    }
    /* Sending must never hold up a request: a full buffer drops the line. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    syslog_close(t);
    t->fd = fd;
    t->stream = stream;
    t->access = o->access;
    t->facility = facility_code(o->facility != NULL ? o->facility : "user");
    util_format(t->ident, sizeof(t->ident), "gunicorn.%s", o->prefix != NULL ? o->prefix : "");
    return 0;
}

void
syslog_close(struct syslog_target *t)
{
    if (t->fd > 0)
        close(t->fd);
    t->fd = -1;
    t->access = false;
}

/* Python's SysLogHandler.priority_map, from qilin's (and Python's) level numbers. */
static int
severity(int level)
{
    if (level >= QLN_LOG_CRITICAL)
        return 2;
    if (level >= QLN_LOG_ERROR)
        return 3;
    if (level >= QLN_LOG_WARNING)
        return 4;
    if (level >= QLN_LOG_INFO)
        return 6;
    return 7;
}

void
syslog_send(const struct syslog_target *t, int level, const char *kind, int pid, const char *msg,
            size_t len)
{
    char buf[SYSLOG_MSG_MAX];
    int n;

    if (t->fd < 0)
        return;
    n = snprintf(buf, sizeof(buf), "<%d>%s.%s: [%d] ", t->facility * 8 + severity(level), t->ident,
                 kind, pid);
    if (n < 0 || (size_t)n >= sizeof(buf) - 1)
        return;
    if (len > sizeof(buf) - 1 - (size_t)n)
        len = sizeof(buf) - 1 - (size_t)n;
    memcpy(buf + n, msg, len);
    n += (int)len;
    buf[n++] = '\0'; /* SysLogHandler's append_nul, which ends a message on a stream too */
    /* One send: a datagram is one message, and a stream gets it whole or
       (buffer full, daemon gone) not at all as far as we wait. */
    (void)!send(t->fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}
