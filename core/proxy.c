/*
 * --forwarded-allow-ips and the secure scheme headers, and the PROXY
 * protocol header (see proxy.h). The rules are gunicorn's, so an app behind
 * the same proxy sees the same wsgi.url_scheme and REMOTE_ADDR under either
 * server; the header's format is HAProxy's proxy-protocol.txt.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    return proxy_allow_parse_for("--forwarded-allow-ips", spec, out, err, errlen);
}

int
proxy_allow_parse_for(const char *flag, const char *spec, struct proxy_allow *out, char *err,
                      size_t errlen)
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
                        "%s: more than %d networks; use wider ones (CIDR, e.g. 10.0.0.0/8)", flag,
                        PROXY_ALLOW_MAX);
            return -EINVAL;
        }
        if (parse_net(item, &out->nets[out->n]) != 0) {
            util_format(err, errlen,
                        "%s: '%s' is not an IP address or network (use e.g. 10.0.0.0/8, ::1 or *)",
                        flag, item);
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
    struct proxy_protocol p;
    int rc;

    rc = proxy_allow_parse(proxy_allow_spec(cfg), &a, err, errlen);
    return rc != 0 ? rc : proxy_protocol_load(&p, cfg, err, errlen);
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

/* The entries of one Forwarded or X-Forwarded-For line are read at most this deep. */
#define FORWARDED_MAX 32

/*
 * One list entry as an address: X-Forwarded-For's "1.2.3.4" or "::1", or
 * Forwarded's for= value, possibly quoted, "[v6]:port" or "v4:port".
 */
static bool
entry_addr(struct qln_slice e, struct sockaddr_storage *ss)
{
    char text[INET6_ADDRSTRLEN + 8];
    const char *p = e.p, *end = e.p + e.len;
    size_t len;

    while (p < end && (*p == ' ' || *p == '\t' || *p == '"'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '"'))
        end--;
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));

        if (close == NULL)
            return false;
        p++;
        end = close;
    } else if (memchr(p, ':', (size_t)(end - p)) == memrchr(p, ':', (size_t)(end - p)) &&
               memchr(p, ':', (size_t)(end - p)) != NULL) {
        end = memchr(p, ':', (size_t)(end - p)); /* "v4:port" */
    }
    len = (size_t)(end - p);
    if (len == 0 || len >= sizeof(text))
        return false;
    memcpy(text, p, len);
    text[len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ss->ss_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ss->ss_family = AF_INET6;
        return true;
    }
    return false;
}

/* Forwarded: "for=x;proto=https, for=y": the for= value of one element, if any. */
static bool
element_for(struct qln_slice el, struct qln_slice *value)
{
    const char *p = el.p, *end = el.p + el.len;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pair_end = semi != NULL ? semi : end;

        while (p < pair_end && (*p == ' ' || *p == '\t'))
            p++;
        if (pair_end - p > 4 && strncasecmp(p, "for=", 4) == 0) {
            value->p = p + 4;
            value->len = (size_t)(pair_end - p - 4);
            return true;
        }
        p = pair_end + (semi != NULL);
    }
    return false;
}

/* Splits every line of header NAME into its comma-separated entries, in order. */
static size_t
list_entries(const struct qln_header *headers, size_t n, const char *name, struct qln_slice *out,
             size_t max)
{
    size_t i, k = 0;

    for (i = 0; i < n; i++) {
        const char *p, *end;

        if (!slice_caseeq(headers[i].name, name))
            continue;
        p = headers[i].value.p;
        end = p + headers[i].value.len;
        while (p <= end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma != NULL ? comma : end;

            if (k == max)
                memmove(out, out + 1, --k * sizeof(*out)); /* keep the rightmost MAX */
            out[k].p = p;
            out[k].len = (size_t)(e - p);
            k++;
            if (comma == NULL)
                break;
            p = comma + 1;
        }
    }
    return k;
}

bool
proxy_forwarded_for(const struct proxy_allow *trusted, const struct qln_header *headers, size_t n,
                    char *out, size_t outlen)
{
    struct qln_slice entries[FORWARDED_MAX];
    struct sockaddr_storage ss, found;
    bool rfc7239 = true, have = false;
    size_t k = list_entries(headers, n, "forwarded", entries, FORWARDED_MAX);
    const void *addr;

    if (k == 0) {
        rfc7239 = false;
        k = list_entries(headers, n, "x-forwarded-for", entries, FORWARDED_MAX);
    }
    while (k-- > 0) {
        struct qln_slice e = entries[k];

        if (rfc7239 && !element_for(entries[k], &e))
            break;
        if (!entry_addr(e, &ss))
            break; /* "unknown", obfuscated or garbage: nothing left of it is ours */
        found = ss;
        have = true;
        if (!proxy_allow_match(trusted, &ss))
            break; /* the first untrusted hop is the client */
    }
    if (!have)
        return false;
    addr = found.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&found)->sin_addr
                                      : (const void *)&((struct sockaddr_in6 *)&found)->sin6_addr;
    return inet_ntop(found.ss_family, addr, out, (socklen_t)outlen) != NULL;
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

/* ------------------------------------------------------------ PROXY protocol */

#define PROXY_ALLOW_FROM_DEFAULT "127.0.0.1,::1"

/* --proxy-protocol's words. Read-only; any process. */
static const struct {
    const char *word;
    enum proxy_mode mode;
} proxy_modes[] = {
    {"off", PROXY_MODE_OFF},
    {"v1", PROXY_MODE_V1},
    {"v2", PROXY_MODE_V2},
    {"auto", PROXY_MODE_AUTO},
};

/* The v1 header's start, and v2's 12-byte signature (proxy-protocol.txt 2.1, 2.2). */
static const char v1_sig[] = "PROXY ";
static const char v2_sig[] = "\r\n\r\n\0\r\nQUIT\n";
#define V1_SIG_LEN (sizeof(v1_sig) - 1)
#define V2_SIG_LEN (sizeof(v2_sig) - 1)
#define V2_HEAD_LEN 16

int
proxy_protocol_load(struct proxy_protocol *p, const struct config *cfg, char *err, size_t errlen)
{
    const char *mode = config_str(cfg, "proxy_protocol");
    const char *from = config_str(cfg, "proxy_allow_from");
    size_t i;
    int rc;

    memset(p, 0, sizeof(*p));
    rc = proxy_allow_parse_for("--proxy-allow-from", from ? from : PROXY_ALLOW_FROM_DEFAULT,
                               &p->from, err, errlen);
    if (rc != 0)
        return rc;
    if (mode == NULL)
        return 0;
    for (i = 0; i < ARRAY_SIZE(proxy_modes); i++) {
        if (strcasecmp(mode, proxy_modes[i].word) == 0) {
            p->mode = proxy_modes[i].mode;
            return 0;
        }
    }
    return util_err(err, errlen, -EINVAL,
                    "--proxy-protocol: invalid mode '%s'; use off, v1, v2 or auto", mode);
}

/* 0: BUF does not start like SIG; 1: BUF is a strict prefix of it; 2: it starts with SIG. */
static int
sig_state(const char *buf, size_t len, const char *sig, size_t siglen)
{
    size_t n = len < siglen ? len : siglen;

    if (memcmp(buf, sig, n) != 0)
        return 0;
    return len < siglen ? 1 : 2;
}

/*
 * Cuts the next field of a v1 line off *P (fields are separated by exactly
 * one space) into OUT, NUL-terminated. Returns false when it is empty or
 * does not fit OUTLEN.
 */
static bool
v1_field(const char **p, const char *end, char *out, size_t outlen)
{
    const char *sp = memchr(*p, ' ', (size_t)(end - *p));
    size_t n = (size_t)((sp != NULL ? sp : end) - *p);

    if (n == 0 || n >= outlen)
        return false;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p += n + (sp != NULL);
    return true;
}

/* A v1 port: 1 to 5 decimal digits, at most 65535. */
static bool
v1_port(const char *text, char *out, size_t outlen)
{
    size_t n = strlen(text), i;
    unsigned long v = 0;

    if (n == 0 || n > 5)
        return false;
    for (i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v > 65535)
        return false;
    snprintf(out, outlen, "%lu", v);
    return true;
}

/* True when LINE[0, LEN) holds only printable ASCII and single-space separators. */
static bool
v1_printable(const char *line, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)line[i];

        if (ch < 0x20 || ch > 0x7e || (ch == ' ' && (i == 0 || line[i - 1] == ' ')))
            return false;
    }
    return len == 0 || line[len - 1] != ' ';
}

/* The v1 line BUF[0, LEN), CRLF included, known to start with "PROXY ". */
static enum proxy_rc
v1_line(const char *buf, size_t len, struct proxy_header *h)
{
    const char *p = buf + V1_SIG_LEN, *end = buf + len - 2;
    char proto[8], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], sport[8], dport[8];
    unsigned char src_bin[16], dst_bin[16];
    int family;

    h->len = len;
    if (!v1_printable(p, (size_t)(end - p)) || !v1_field(&p, end, proto, sizeof(proto)))
        goto bad;
    /* proxy-protocol.txt 2.1: UNKNOWN may carry anything; the receiver must
       ignore the rest and use the connection's real addresses. */
    if (strcmp(proto, "UNKNOWN") == 0) {
        h->local = true;
        return PROXY_DONE;
    }
    if (strcmp(proto, "TCP4") == 0)
        family = AF_INET;
    else if (strcmp(proto, "TCP6") == 0)
        family = AF_INET6;
    else
        goto bad;
    if (!v1_field(&p, end, src, sizeof(src)) || !v1_field(&p, end, dst, sizeof(dst)) ||
        !v1_field(&p, end, sport, sizeof(sport)) || !v1_field(&p, end, dport, sizeof(dport)) ||
        p != end)
        goto bad;
    if (inet_pton(family, src, src_bin) != 1 || inet_pton(family, dst, dst_bin) != 1)
        goto bad;
    if (!v1_port(sport, h->port, sizeof(h->port)) ||
        !v1_port(dport, h->dst_port, sizeof(h->dst_port)))
        goto bad;
    memcpy(h->proto, proto, sizeof(h->proto)); /* "TCP4" or "TCP6" and its NUL */
    inet_ntop(family, src_bin, h->addr, sizeof(h->addr));
    inet_ntop(family, dst_bin, h->dst_addr, sizeof(h->dst_addr));
    return PROXY_DONE;
bad:
    h->reason = "Invalid PROXY line (want PROXY TCP4|TCP6 SRC DST SPORT DPORT)";
    return PROXY_BAD;
}

static enum proxy_rc
v1_parse(const char *buf, size_t len, struct proxy_header *h)
{
    size_t n = len < PROXY_V1_MAX ? len : PROXY_V1_MAX, i;

    for (i = V1_SIG_LEN; i < n; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i - 1] != '\r')
            break;
        return v1_line(buf, i + 1, h);
    }
    if (i == n && len < PROXY_V1_MAX)
        return PROXY_NEED_MORE;
    h->reason = i < n ? "Invalid PROXY line (a bare LF; lines end with CRLF)"
                      : "Invalid PROXY line (longer than 107 bytes)";
    return PROXY_BAD;
}

static uint16_t
be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* A v2 header (proxy-protocol.txt 2.2), known to start with the signature. */
static enum proxy_rc
v2_parse(const unsigned char *b, size_t len, struct proxy_header *h)
{
    size_t block;

    if (len < V2_HEAD_LEN)
        return PROXY_NEED_MORE;
    block = be16(b + 14);
    if ((b[12] >> 4) != 2 || (b[12] & 0xf) > 1) {
        h->reason = "Invalid PROXY v2 header (unknown version or command)";
        return PROXY_BAD;
    }
    if (block > PROXY_V2_MAX_BLOCK) {
        h->reason = "Invalid PROXY v2 header (address block over 2048 bytes)";
        return PROXY_BAD;
    }
    if (len < V2_HEAD_LEN + block)
        return PROXY_NEED_MORE;
    h->len = V2_HEAD_LEN + block;
    /* LOCAL (the proxy's own health check) and UNSPEC carry no client: the
       socket's peer stands. TLVs after the addresses are skipped. */
    if ((b[12] & 0xf) == 0 || b[13] == 0x00) {
        h->local = true;
        return PROXY_DONE;
    }
    /* Source address, destination address, source port, destination port. */
    if (b[13] == 0x11 && block >= 12) {
        memcpy(h->proto, "TCP4", 5);
        inet_ntop(AF_INET, b + 16, h->addr, sizeof(h->addr));
        inet_ntop(AF_INET, b + 20, h->dst_addr, sizeof(h->dst_addr));
        snprintf(h->port, sizeof(h->port), "%u", be16(b + 24));
        snprintf(h->dst_port, sizeof(h->dst_port), "%u", be16(b + 26));
        return PROXY_DONE;
    }
    if (b[13] == 0x21 && block >= 36) {
        memcpy(h->proto, "TCP6", 5);
        inet_ntop(AF_INET6, b + 16, h->addr, sizeof(h->addr));
        inet_ntop(AF_INET6, b + 32, h->dst_addr, sizeof(h->dst_addr));
        snprintf(h->port, sizeof(h->port), "%u", be16(b + 48));
        snprintf(h->dst_port, sizeof(h->dst_port), "%u", be16(b + 50));
        return PROXY_DONE;
    }
    h->reason = (b[13] == 0x11 || b[13] == 0x21)
                    ? "Invalid PROXY v2 header (address block too short)"
                    : "Invalid PROXY v2 header (only TCP over IPv4 or IPv6 is supported)";
    return PROXY_BAD;
}

enum proxy_rc
proxy_header_parse(enum proxy_mode mode, const char *buf, size_t len, struct proxy_header *h)
{
    int v1, v2;

    memset(h, 0, sizeof(*h));
    if (len == 0)
        return PROXY_NEED_MORE; /* BUF may be NULL: nothing was read yet */
    v1 = mode == PROXY_MODE_V2 ? 0 : sig_state(buf, len, v1_sig, V1_SIG_LEN);
    v2 = mode == PROXY_MODE_V1 ? 0 : sig_state(buf, len, v2_sig, V2_SIG_LEN);
    if (v1 == 2) {
        h->version = 1;
        return v1_parse(buf, len, h);
    }
    if (v2 == 2) {
        h->version = 2;
        return v2_parse((const unsigned char *)buf, len, h);
    }
    if (v1 == 1 || v2 == 1)
        return PROXY_NEED_MORE;
    if (mode == PROXY_MODE_AUTO)
        return PROXY_NONE;
    h->reason = mode == PROXY_MODE_V1 ? "No PROXY protocol v1 header (--proxy-protocol v1)"
                                      : "No PROXY protocol v2 header (--proxy-protocol v2)";
    return PROXY_BAD;
}
