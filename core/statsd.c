/*
 * StatsD and DogStatsD metrics with gunicorn's names, types and wire format
 * (gunicorn/instrument/statsd.py). The master opens one non-blocking
 * datagram socket; workers inherit it and send what they know (requests,
 * log lines), the master what it knows (workers, backlog). Both processes.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <qilin/log.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "statsd.h"
#include "util.h"

/* gunicorn's default StatsD port. */
#define STATSD_DEFAULT_PORT "8125"
/* Bounds that keep every datagram (three lines at most) within DGRAM_MAX. */
#define PREFIX_MAX 200
#define TAGS_MAX 1000
#define DGRAM_MAX 4096

/*
 * The metrics state of this process. statsd_open/statsd_close write it in
 * the master's main thread, at startup before any worker exists and on
 * HUP; each worker reads the copy it inherited, from any of its threads.
 */
static struct {
    int fd; /* -1: metrics off */
    struct sockaddr_storage dest;
    socklen_t destlen;
    char dest_text[300]; /* the destination, for the one warning */
    char prefix[PREFIX_MAX + 2];
    char tags[TAGS_MAX + 1]; /* "" when none */
    pid_t owner;             /* the master: only it logs a failed send */
    atomic_bool warned;      /* that one warning was logged */
    int last_workers;        /* master: the last gunicorn.workers sent; -1: none */
} sd = {.fd = -1, .last_workers = -1};

static const char *const type_suffix[] = {
    [STATSD_COUNTER] = "|c|@1.0",
    [STATSD_GAUGE] = "|g",
    [STATSD_TIMER] = "|ms",
    [STATSD_HISTOGRAM] = "|h",
};

/* ------------------------------------------------------------ formatting */

size_t
statsd_prefix_join(const char *prefix, char *buf, size_t len)
{
    size_t n = strlen(prefix);
    size_t kept = n;
    int m;

    /* gunicorn: re.sub(r"^(.+[^.]+)\.*$", r"\g<1>.", prefix). The group needs
       two characters ending in a non-dot, so "a" and "a." stay as given. */
    while (kept > 0 && prefix[kept - 1] == '.')
        kept--;
    if (kept >= 2)
        m = snprintf(buf, len, "%.*s.", (int)kept, prefix);
    else
        m = snprintf(buf, len, "%s", prefix);
    if (m < 0 || (size_t)m >= len) {
        buf[0] = '\0';
        return 0;
    }
    return (size_t)m;
}

size_t
statsd_format(char *buf, size_t len, const char *prefix, const char *name, const char *value,
              enum statsd_type type, const char *tags)
{
    bool tagged = tags != NULL && tags[0] != '\0';
    int m = snprintf(buf, len, "%s%s:%s%s%s%s", prefix, name, value, type_suffix[type],
                     tagged ? "|#" : "", tagged ? tags : "");

    if (m < 0 || (size_t)m >= len) {
        if (len > 0)
            buf[0] = '\0';
        return 0;
    }
    return (size_t)m;
}

size_t
statsd_format_ms(char *buf, size_t len, int64_t us)
{
    long long ms, frac;
    int m;

    /* gunicorn sends seconds * 1000 + microseconds / 1000 as a Python float,
       whose repr is the shortest decimal: "12.3", "12.345", "12.0". */
    if (us < 0)
        us = 0;
    ms = (long long)(us / 1000);
    frac = (long long)(us % 1000);
    if (frac == 0) {
        m = snprintf(buf, len, "%lld.0", ms);
    } else {
        int digits = 3;

        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        m = snprintf(buf, len, "%lld.%0*lld", ms, digits, frac);
    }
    return m < 0 ? 0 : (size_t)m < len ? (size_t)m : len - 1;
}

/* ------------------------------------------------------------ configuration */

static int
host_error(const char *spec, const char *what, char *err, size_t errlen)
{
    util_format(err, errlen,
                "--statsd-host: %s in '%s' (expected HOST:PORT, [IPv6]:PORT, HOST for "
                "port " STATSD_DEFAULT_PORT " or unix:PATH)",
                what, spec);
    return -EINVAL;
}

static bool
all_digits(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* HOST (LEN bytes) lowercased into A; PORT checked (1..65535) or the default when NULL. */
static int
set_inet(struct statsd_addr *a, const char *spec, const char *host, size_t len, const char *port,
         char *err, size_t errlen)
{
    size_t i;

    if (len == 0)
        return host_error(spec, "no host", err, errlen);
    if (len >= sizeof(a->host))
        return host_error(spec, "host name too long", err, errlen);
    if (port == NULL)
        port = STATSD_DEFAULT_PORT;
    if (!all_digits(port) || strlen(port) > 5 || atoi(port) < 1 || atoi(port) > 65535)
        return host_error(spec, "invalid port", err, errlen);
    for (i = 0; i < len; i++)
        a->host[i] = (char)(host[i] >= 'A' && host[i] <= 'Z' ? host[i] - 'A' + 'a' : host[i]);
    a->host[len] = '\0';
    snprintf(a->port, sizeof(a->port), "%d", atoi(port));
    a->is_unix = false;
    return 0;
}

int
statsd_parse_host(const char *spec, struct statsd_addr *a, char *err, size_t errlen)
{
    const char *s = spec, *colon, *close;
    struct sockaddr_un un;

    memset(a, 0, sizeof(*a));
    if (strncmp(s, "unix:", 5) == 0) {
        s += 5;
        /* gunicorn reads "unix:8125" as the host "unix", port 8125, for
           configurations older than its unix:PATH form. */
        if (all_digits(s))
            return set_inet(a, spec, "unix", 4, s, err, errlen);
        if (strncmp(s, "//", 2) == 0)
            s += 2;
        if (*s == '\0')
            return host_error(spec, "no socket path", err, errlen);
        if (strlen(s) >= sizeof(un.sun_path))
            return host_error(spec, "socket path too long", err, errlen);
        a->is_unix = true;
        snprintf(a->host, sizeof(a->host), "%s", s);
        return 0;
    }
    if (strncmp(s, "fd://", 5) == 0)
        return host_error(spec, "a file descriptor is no StatsD address", err, errlen);
    if (strncmp(s, "tcp://", 6) == 0)
        s += 6;
    if (s[0] == '[') {
        close = strchr(s, ']');
        if (close == NULL)
            return host_error(spec, "no ']' after the IPv6 address", err, errlen);
        if (close[1] != '\0' && close[1] != ':')
            return host_error(spec, "text after ']'", err, errlen);
        return set_inet(a, spec, s + 1, (size_t)(close - s - 1), close[1] ? close + 2 : NULL, err,
                        errlen);
    }
    colon = strchr(s, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
        return host_error(spec, "two ':'", err, errlen); /* the hint shows [IPv6]:PORT */
    return set_inet(a, spec, s, colon != NULL ? (size_t)(colon - s) : strlen(s),
                    colon != NULL ? colon + 1 : NULL, err, errlen);
}

static const char *
cfg_str(const struct config *cfg, const char *name)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_STRING ? config_str(cfg, name) : NULL;
}

/* A datagram holds one metric per line, so a line break in a name or tag would forge one. */
static int
check_text(const char *flag, const char *v, size_t max, char *err, size_t errlen)
{
    const char *p;

    if (v == NULL)
        return 0;
    if (strlen(v) > max) {
        util_format(err, errlen, "%s: longer than %zu bytes", flag, max);
        return -EINVAL;
    }
    for (p = v; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            util_format(err, errlen, "%s: control characters are not allowed in '%s'", flag, v);
            return -EINVAL;
        }
    }
    return 0;
}

int
statsd_check_config(const struct config *cfg, char *err, size_t errlen)
{
    const char *host = cfg_str(cfg, "statsd_host");
    struct statsd_addr a;
    int rc;

    rc = check_text("--statsd-prefix", cfg_str(cfg, "statsd_prefix"), PREFIX_MAX, err, errlen);
    if (rc == 0)
        rc = check_text("--dogstatsd-tags", cfg_str(cfg, "dogstatsd_tags"), TAGS_MAX, err, errlen);
    if (rc == 0 && host != NULL && host[0] != '\0')
        rc = statsd_parse_host(host, &a, err, errlen);
    return rc;
}

/* A socket for A, its destination in DEST; returns the fd or -errno with ERR set. */
static int
open_dest(const struct statsd_addr *a, struct sockaddr_storage *dest, socklen_t *destlen, char *err,
          size_t errlen)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct sockaddr_un *un = (struct sockaddr_un *)dest;
    int family, fd, rc;

    memset(dest, 0, sizeof(*dest));
    if (a->is_unix) {
        family = un->sun_family = AF_UNIX;
        memcpy(un->sun_path, a->host, strlen(a->host) + 1);
        *destlen = (socklen_t)sizeof(*un);
    } else {
        rc = getaddrinfo(a->host, a->port, &hints, &res);
        if (rc != 0) {
            util_format(err, errlen, "--statsd-host: cannot resolve '%s': %s", a->host,
                        gai_strerror(rc));
            return -EHOSTUNREACH;
        }
        family = res->ai_family;
        memcpy(dest, res->ai_addr, res->ai_addrlen);
        *destlen = res->ai_addrlen;
        freeaddrinfo(res);
    }
    /* Unconnected: a collector that starts (or binds its path) later is
       reached without reopening, and a dead one leaves no error to read. */
    fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        util_format(err, errlen, "--statsd-host: socket: %s", strerror(errno));
        return rc;
    }
    return fd;
}

int
statsd_open(const struct config *cfg, char *err, size_t errlen)
{
    const char *host = cfg_str(cfg, "statsd_host");
    const char *prefix = cfg_str(cfg, "statsd_prefix");
    const char *tags = cfg_str(cfg, "dogstatsd_tags");
    struct sockaddr_storage dest;
    struct statsd_addr a;
    socklen_t destlen;
    int fd, rc;

    if (host == NULL || host[0] == '\0') {
        statsd_close();
        return 0;
    }
    rc = statsd_check_config(cfg, err, errlen);
    if (rc == 0)
        rc = statsd_parse_host(host, &a, err, errlen);
    if (rc != 0)
        return rc;
    fd = open_dest(&a, &dest, &destlen, err, errlen);
    if (fd < 0)
        return fd;
    statsd_close();
    sd.fd = fd;
    sd.dest = dest;
    sd.destlen = destlen;
    if (a.is_unix)
        snprintf(sd.dest_text, sizeof(sd.dest_text), "unix:%s", a.host);
    else
        snprintf(sd.dest_text, sizeof(sd.dest_text), "%s:%s", a.host, a.port);
    statsd_prefix_join(prefix != NULL ? prefix : "", sd.prefix, sizeof(sd.prefix));
    snprintf(sd.tags, sizeof(sd.tags), "%s", tags != NULL ? tags : "");
    sd.owner = getpid();
    atomic_store(&sd.warned, false);
    sd.last_workers = -1; /* the new destination gets the gauge too */
    log_set_line_counter(statsd_log_line);
    return 0;
}

void
statsd_close(void)
{
    if (sd.fd >= 0)
        close(sd.fd);
    sd.fd = -1;
}

bool
statsd_enabled(void)
{
    return sd.fd >= 0;
}

/* ------------------------------------------------------------ sending */

/*
 * A failed send is dropped: metrics must never cost a request more than one
 * non-blocking sendto. Only the master says so, once, since every worker
 * would otherwise repeat it; the warning's own counter fails silently.
 */
static void
send_failed(int e)
{
    if (getpid() != sd.owner || atomic_exchange(&sd.warned, true))
        return;
    qln_log(QLN_LOG_WARNING,
            "StatsD: cannot send to %s: %s; metrics are dropped while this lasts (said once)",
            sd.dest_text, strerror(e));
}

static void
send_datagram(const char *buf, size_t len)
{
    ssize_t n;

    if (len == 0)
        return;
    do
        n = sendto(sd.fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)&sd.dest,
                   sd.destlen);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        send_failed(errno);
}

/* Appends one metric line to BUF (CAP bytes) at *N, after a '\n' when not first. */
static void
add_line(char *buf, size_t cap, size_t *n, const char *name, const char *value,
         enum statsd_type type)
{
    size_t m;

    if (*n > 0) {
        if (*n + 1 >= cap)
            return;
        buf[(*n)++] = '\n';
    }
    m = statsd_format(buf + *n, cap - *n, sd.prefix, name, value, type, sd.tags);
    if (m == 0 && *n > 0)
        (*n)--; /* did not fit: drop the separator too */
    *n += m;
}

static void
send_one(const char *name, int64_t value, enum statsd_type type)
{
    char buf[DGRAM_MAX], text[24];
    size_t n = 0;

    snprintf(text, sizeof(text), "%lld", (long long)value);
    add_line(buf, sizeof(buf), &n, name, text, type);
    send_datagram(buf, n);
}

void
statsd_request(int status, int64_t duration_us)
{
    char buf[DGRAM_MAX], ms[32], name[48];
    size_t n = 0;

    if (sd.fd < 0)
        return;
    /* gunicorn's three metrics, one per line of one datagram (the StatsD
       line protocol): a single sendto per request instead of three. */
    statsd_format_ms(ms, sizeof(ms), duration_us);
    add_line(buf, sizeof(buf), &n, "gunicorn.request.duration", ms, STATSD_TIMER);
    add_line(buf, sizeof(buf), &n, "gunicorn.requests", "1", STATSD_COUNTER);
    snprintf(name, sizeof(name), "gunicorn.request.status.%d", status);
    add_line(buf, sizeof(buf), &n, name, "1", STATSD_COUNTER);
    send_datagram(buf, n);
}

void
statsd_log_line(int level)
{
    const char *name;

    if (sd.fd < 0 || level < QLN_LOG_WARNING)
        return;
    if (level >= QLN_LOG_CRITICAL)
        name = "gunicorn.log.critical";
    else if (level >= QLN_LOG_ERROR)
        name = "gunicorn.log.error";
    else
        name = "gunicorn.log.warning";
    send_one(name, 1, STATSD_COUNTER);
}

void
statsd_workers(int n)
{
    if (sd.fd < 0 || n == sd.last_workers)
        return;
    sd.last_workers = n;
    send_one("gunicorn.workers", n, STATSD_GAUGE);
}

void
statsd_backlog(const struct listener *l, size_t n)
{
    struct tcp_info ti;
    socklen_t len;
    int64_t sum = 0;
    bool any = false;
    size_t i;

    if (sd.fd < 0)
        return;
    /* On a listening socket Linux reports the accept queue's length in
       tcpi_unacked (gunicorn reads the same field). */
    for (i = 0; i < n; i++) {
        len = sizeof(ti);
        if (l[i].is_unix || l[i].fd < 0 ||
            getsockopt(l[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0)
            continue;
        sum += ti.tcpi_unacked;
        any = true;
    }
    if (any)
        send_one("gunicorn.backlog", sum, STATSD_HISTOGRAM);
}
