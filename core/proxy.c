/*
 * --forwarded-allow-ips and the secure scheme headers (see proxy.h). The
 * rules are gunicorn's, so an app behind the same proxy sees the same
 * wsgi.url_scheme under either server.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proxy.h"
#include "util.h"

#define PROXY_ALLOW_DEFAULT "127.0.0.1,::1"

/* gunicorn's default secure_scheme_headers. Read-only; any thread. */
static const struct {
    const char *name;
    const char *secure_value;
} scheme_headers[] = {
    {"X-Forwarded-Protocol", "ssl"},
    {"X-Forwarded-Proto", "https"},
    {"X-Forwarded-Ssl", "on"},
};

static int
parse_net(const char *text, struct proxy_net *net)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t len = slash ? (size_t)(slash - text) : strlen(text);
    unsigned max;
    char *end;
    long bits;

    if (len == 0 || len >= sizeof(addr))
        return -EINVAL;
    memcpy(addr, text, len);
    addr[len] = '\0';
    memset(net, 0, sizeof(*net));
    if (inet_pton(AF_INET, addr, net->addr) == 1) {
        net->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, net->addr) == 1) {
        net->family = AF_INET6;
        max = 128;
    } else {
        return -EINVAL;
    }
    net->bits = max;
    if (slash != NULL) {
        errno = 0;
        bits = strtol(slash + 1, &end, 10);
        if (errno != 0 || end == slash + 1 || *end != '\0' || bits < 0 || bits > (long)max)
            return -EINVAL;
        net->bits = (unsigned)bits;
    }
    return 0;
}

int
proxy_allow_parse(const char *spec, struct proxy_allow *out, char *err, size_t errlen)
{
    const char *p = spec;

    memset(out, 0, sizeof(*out));
    while (*p != '\0') {
        char item[128];
        size_t b = strspn(p, " \t"), len = strcspn(p + b, ",");
        size_t e = len;

        while (e > 0 && (p[b + e - 1] == ' ' || p[b + e - 1] == '\t'))
            e--;
        if (e >= sizeof(item))
            e = sizeof(item) - 1;
        memcpy(item, p + b, e);
        item[e] = '\0';
        p += b + len + (p[b + len] == ',');
        if (item[0] == '\0')
            continue;
        if (strcmp(item, "*") == 0) {
            out->any = true;
            continue;
        }
        if (out->n == PROXY_ALLOW_MAX) {
            util_format(err, errlen,
                        "--forwarded-allow-ips: more than %d networks; use wider"
                        " ones (CIDR, e.g. 10.0.0.0/8)",
                        PROXY_ALLOW_MAX);
            return -EINVAL;
        }
        if (parse_net(item, &out->nets[out->n]) != 0) {
            util_format(err, errlen,
                        "--forwarded-allow-ips: '%s' is not an IP address or network"
                        " (use e.g. 10.0.0.0/8, ::1 or *)",
                        item);
            return -EINVAL;
        }
        out->n++;
    }
    return 0;
}

const char *
proxy_allow_spec(const struct config *cfg)
{
    const char *env = getenv("FORWARDED_ALLOW_IPS");

    if (config_source_of(cfg, "forwarded_allow_ips") == CONFIG_SRC_DEFAULT && env != NULL)
        return env;
    return config_str(cfg, "forwarded_allow_ips") ?: PROXY_ALLOW_DEFAULT;
}

int
proxy_check_config(const struct config *cfg, char *err, size_t errlen)
{
    struct proxy_allow a;

    return proxy_allow_parse(proxy_allow_spec(cfg), &a, err, errlen);
}

static bool
prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;

    if (memcmp(a, b, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool
proxy_allow_match(const struct proxy_allow *a, const struct sockaddr_storage *peer)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const uint8_t *addr;
    int family = peer->ss_family;
    size_t i;

    if (family != AF_INET && family != AF_INET6)
        return true;
    if (a->any)
        return true;
    if (family == AF_INET) {
        addr = (const uint8_t *)&((const struct sockaddr_in *)peer)->sin_addr;
    } else {
        addr = ((const struct sockaddr_in6 *)peer)->sin6_addr.s6_addr;
        if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
            family = AF_INET;
            addr += sizeof(v4mapped);
        }
    }
    for (i = 0; i < a->n; i++) {
        if (a->nets[i].family == family && prefix_eq(addr, a->nets[i].addr, a->nets[i].bits))
            return true;
    }
    return false;
}

enum proxy_scheme
proxy_scheme(const struct qln_header *headers, size_t n)
{
    enum proxy_scheme scheme = PROXY_SCHEME_NONE, s;
    size_t i, k;

    for (i = 0; i < n; i++) {
        for (k = 0; k < ARRAY_SIZE(scheme_headers); k++) {
            if (!slice_caseeq(headers[i].name, scheme_headers[k].name))
                continue;
            s = slice_eq(headers[i].value, scheme_headers[k].secure_value) ? PROXY_SCHEME_HTTPS
                                                                           : PROXY_SCHEME_HTTP;
            if (scheme != PROXY_SCHEME_NONE && s != scheme)
                return PROXY_SCHEME_CONFLICT;
            scheme = s;
        }
    }
    return scheme;
}
