/*
 * Unit tests for core/proxy.c: parsing --forwarded-allow-ips, matching
 * peers against it (CIDR, IPv4-mapped IPv6, unix sockets), the scheme
 * that gunicorn's secure scheme headers give, and the PROXY protocol
 * header parser (v1 and v2, valid, malformed, and cut anywhere) with its
 * settings (--proxy-protocol, --proxy-allow-from).
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>

#include "core/config.h"
#include "core/proxy.h"
#include "core/util.h"

static struct sockaddr_storage
peer(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

        in6->sin6_family = AF_INET6;
        ck_assert_int_eq(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;

        in->sin_family = AF_INET;
        ck_assert_int_eq(inet_pton(AF_INET, text, &in->sin_addr), 1);
    }
    return ss;
}

static bool
trusted(const char *spec, const char *addr)
{
    struct proxy_allow a;
    struct sockaddr_storage ss = peer(addr);
    char err[256];

    ck_assert_msg(proxy_allow_parse(spec, &a, err, sizeof(err)) == 0, "%s", err);
    return proxy_allow_match(&a, &ss);
}

START_TEST(test_match)
{
    ck_assert(trusted("127.0.0.1,::1", "127.0.0.1"));
    ck_assert(trusted("127.0.0.1,::1", "::1"));
    ck_assert(!trusted("127.0.0.1,::1", "127.0.0.2"));
    ck_assert(trusted("10.0.0.0/8", "10.200.3.4"));
    ck_assert(!trusted("10.0.0.0/8", "11.0.0.1"));
    ck_assert(trusted("192.168.1.128/25", "192.168.1.200"));
    ck_assert(!trusted("192.168.1.128/25", "192.168.1.100"));
    ck_assert(trusted("  10.0.0.1 , 10.0.0.2 ", "10.0.0.2"));
    ck_assert(trusted("*", "203.0.113.9"));
    ck_assert(trusted("0.0.0.0/0", "203.0.113.9"));
    ck_assert(trusted("fd00::/8", "fd12::1"));
    ck_assert(!trusted("fd00::/8", "fe80::1"));
    /* An IPv4 client of a [::] listener arrives IPv4-mapped. */
    ck_assert(trusted("127.0.0.1", "::ffff:127.0.0.1"));
    ck_assert(!trusted("", "127.0.0.1"));
}
END_TEST

START_TEST(test_unix_peer_trusted)
{
    struct proxy_allow a;
    struct sockaddr_storage ss;
    char err[256];

    memset(&ss, 0, sizeof(ss));
    ss.ss_family = AF_UNIX;
    ck_assert_int_eq(proxy_allow_parse("10.0.0.1", &a, err, sizeof(err)), 0);
    ck_assert(proxy_allow_match(&a, &ss));
}
END_TEST

START_TEST(test_parse_errors)
{
    static const char *const bad[] = {"bogus", "10.0.0.0/33", "10.0.0.0/",     "::1/129",
                                      "1.2.3", "10.0.0.0/8x", "127.0.0.1,nope"};
    struct proxy_allow a;
    char err[256];
    size_t i;

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        ck_assert_msg(proxy_allow_parse(bad[i], &a, err, sizeof(err)) == -EINVAL, "%s", bad[i]);
        ck_assert_msg(strstr(err, "--forwarded-allow-ips: '") == err, "%s", err);
    }
}
END_TEST

#define S(lit)                                                                                     \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

START_TEST(test_scheme)
{
    static const struct qln_header none[] = {{S("Host"), S("x")}};
    static const struct qln_header proto[] = {{S("x-forwarded-proto"), S("https")}};
    static const struct qln_header proto_http[] = {{S("X-Forwarded-Proto"), S("http")}};
    static const struct qln_header proto_upper[] = {{S("X-Forwarded-Proto"), S("HTTPS")}};
    static const struct qln_header ssl[] = {{S("X-Forwarded-Ssl"), S("on")}};
    static const struct qln_header protocol[] = {{S("X-Forwarded-Protocol"), S("ssl")}};
    static const struct qln_header agree[] = {{S("X-Forwarded-Proto"), S("https")},
                                              {S("X-Forwarded-Ssl"), S("on")}};
    static const struct qln_header conflict[] = {{S("X-Forwarded-Proto"), S("https")},
                                                 {S("X-Forwarded-Ssl"), S("off")}};

    ck_assert_int_eq(proxy_scheme(none, 1), PROXY_SCHEME_NONE);
    ck_assert_int_eq(proxy_scheme(proto, 1), PROXY_SCHEME_HTTPS);
    ck_assert_int_eq(proxy_scheme(proto_http, 1), PROXY_SCHEME_HTTP);
    /* Values are exact, as in gunicorn. */
    ck_assert_int_eq(proxy_scheme(proto_upper, 1), PROXY_SCHEME_HTTP);
    ck_assert_int_eq(proxy_scheme(ssl, 1), PROXY_SCHEME_HTTPS);
    ck_assert_int_eq(proxy_scheme(protocol, 1), PROXY_SCHEME_HTTPS);
    ck_assert_int_eq(proxy_scheme(agree, 2), PROXY_SCHEME_HTTPS);
    ck_assert_int_eq(proxy_scheme(conflict, 2), PROXY_SCHEME_CONFLICT);
}
END_TEST

/* ------------------------------------------------------------ PROXY protocol */

/* A v2 header: signature, VER_CMD, FAM, then BLOCK (LEN bytes) as the length says. */
static size_t
v2(char *out, unsigned ver_cmd, unsigned fam, const void *block, size_t len)
{
    memcpy(out, "\r\n\r\n\0\r\nQUIT\n", 12);
    out[12] = (char)ver_cmd;
    out[13] = (char)fam;
    out[14] = (char)(len >> 8);
    out[15] = (char)(len & 0xff);
    memcpy(out + 16, block, len);
    return 16 + len;
}

/* An IPv4 address block: 192.0.2.1:56324 -> 198.51.100.7:443, then EXTRA bytes (TLVs). */
static const unsigned char tcp4_block[] = {192, 0, 2, 1, 198, 51, 100, 7, 0xdc, 0x04, 0x01, 0xbb,
                                           /* a TLV: PP2_TYPE_AUTHORITY "ab" */
                                           0x02, 0x00, 0x02, 'a', 'b'};

static const struct v1_row {
    const char *line;
    enum proxy_rc rc;
    const char *addr; /* PROXY_DONE: the client, or NULL when local */
    const char *port;
    const char *dst; /* ... and "PROTO DST_ADDR DST_PORT" */
} v1_rows[] = {
    {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n", PROXY_DONE, "192.0.2.1", "56324",
     "TCP4 198.51.100.7 443"},
    {"PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n", PROXY_DONE, "2001:db8::1", "1",
     "TCP6 2001:db8::2 65535"},
    {"PROXY TCP6 2001:0db8:0:0:0:0:0:1 ::1 80 80\r\n", PROXY_DONE, "2001:db8::1", "80",
     "TCP6 ::1 80"},
    {"PROXY TCP4 0.0.0.0 0.0.0.0 0 0\r\n", PROXY_DONE, "0.0.0.0", "0", "TCP4 0.0.0.0 0"},
    /* Accepted and ignored (the spec's health checks; newer gunicorn). */
    {"PROXY UNKNOWN\r\n", PROXY_DONE, NULL, NULL, NULL},
    {"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", PROXY_DONE, NULL, NULL, NULL},
    /* Malformed. */
    {"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 9\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 \r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4  192.0.2.1 198.51.100.7 56324 443\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 2001:db8::1 198.51.100.7 1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.256 198.51.100.7 1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 65536 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 1 123456\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 -1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 1 0x2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY UDP4 192.0.2.1 198.51.100.7 1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY tcp4 192.0.2.1 198.51.100.7 1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY \r\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1 198.51.100.7 1 2\n", PROXY_BAD, NULL, NULL, NULL},
    {"PROXY TCP4 192.0.2.1\t198.51.100.7 1 2\r\n", PROXY_BAD, NULL, NULL, NULL},
};

START_TEST(test_v1_rows)
{
    const struct v1_row *row = &v1_rows[_i];
    size_t len = strlen(row->line);
    struct proxy_header h;
    enum proxy_rc rc;
    char buf[256];
    int n;

    /* What follows the header is never taken as part of it. */
    n = snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\n\r\n", row->line);
    rc = proxy_header_parse(PROXY_MODE_V1, buf, (size_t)n, &h);
    ck_assert_msg(rc == row->rc, "%s: rc %d, want %d", row->line, rc, row->rc);
    ck_assert_int_eq(h.version, 1);
    if (rc == PROXY_BAD) {
        ck_assert_ptr_nonnull(h.reason);
        ck_assert_msg(strstr(h.reason, "PROXY") != NULL, "%s", h.reason);
        return;
    }
    ck_assert_uint_eq(h.len, len);
    ck_assert(h.local == (row->addr == NULL));
    if (row->addr != NULL) {
        char dst[128];

        ck_assert_str_eq(h.addr, row->addr);
        ck_assert_str_eq(h.port, row->port);
        snprintf(dst, sizeof(dst), "%s %s %s", h.proto, h.dst_addr, h.dst_port);
        ck_assert_str_eq(dst, row->dst);
    }
    /* auto takes the same header the same way. */
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, buf, (size_t)n, &h), row->rc);
}
END_TEST

START_TEST(test_v1_too_long)
{
    char buf[256];
    struct proxy_header h;

    /* 107 bytes without a CRLF: no valid line can follow. */
    memset(buf, 'x', sizeof(buf));
    memcpy(buf, "PROXY UNKNOWN ", 14);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V1, buf, 106, &h), PROXY_NEED_MORE);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V1, buf, 107, &h), PROXY_BAD);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V1, buf, 200, &h), PROXY_BAD);
    ck_assert_ptr_nonnull(strstr(h.reason, "107"));
    /* Exactly 107 with its CRLF is fine. */
    memcpy(buf + 105, "\r\n", 2);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V1, buf, 107, &h), PROXY_DONE);
    ck_assert_uint_eq(h.len, 107);
    ck_assert(h.local);
}
END_TEST

START_TEST(test_v2_inet)
{
    char buf[128];
    size_t n = v2(buf, 0x21, 0x11, tcp4_block, sizeof(tcp4_block));
    struct proxy_header h;

    memcpy(buf + n, "GET", 3);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n + 3, &h), PROXY_DONE);
    ck_assert_int_eq(h.version, 2);
    ck_assert_uint_eq(h.len, n); /* the TLV is skipped with the block */
    ck_assert(!h.local);
    ck_assert_str_eq(h.addr, "192.0.2.1");
    ck_assert_str_eq(h.port, "56324");
    ck_assert_str_eq(h.proto, "TCP4");
    ck_assert_str_eq(h.dst_addr, "198.51.100.7");
    ck_assert_str_eq(h.dst_port, "443");
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, buf, n + 3, &h), PROXY_DONE);
}
END_TEST

START_TEST(test_v2_inet6)
{
    unsigned char block[36];
    char buf[128];
    struct proxy_header h;
    size_t n;

    ck_assert_int_eq(inet_pton(AF_INET6, "2001:db8::7", block), 1);
    ck_assert_int_eq(inet_pton(AF_INET6, "::1", block + 16), 1);
    block[32] = 0x10; /* source port 4242 */
    block[33] = 0x92;
    block[34] = 0;
    block[35] = 80;
    n = v2(buf, 0x21, 0x21, block, sizeof(block));
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_DONE);
    ck_assert_str_eq(h.addr, "2001:db8::7");
    ck_assert_str_eq(h.port, "4242");
    ck_assert_str_eq(h.proto, "TCP6");
    ck_assert_str_eq(h.dst_addr, "::1");
    ck_assert_str_eq(h.dst_port, "80");
    /* Too short for two IPv6 addresses and ports. */
    n = v2(buf, 0x21, 0x21, block, 35);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_BAD);
}
END_TEST

START_TEST(test_v2_local_and_unspec)
{
    char buf[128];
    struct proxy_header h;
    size_t n;

    /* LOCAL: the addresses (if any) are ignored, the socket's peer stands. */
    n = v2(buf, 0x20, 0x11, tcp4_block, sizeof(tcp4_block));
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_DONE);
    ck_assert(h.local);
    ck_assert_uint_eq(h.len, n);
    n = v2(buf, 0x20, 0x00, "", 0);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_DONE);
    ck_assert(h.local);
    ck_assert_uint_eq(h.len, 16);
    /* PROXY with AF_UNSPEC: likewise. */
    n = v2(buf, 0x21, 0x00, "", 0);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_DONE);
    ck_assert(h.local);
}
END_TEST

START_TEST(test_v2_malformed)
{
    static const struct {
        unsigned ver_cmd, fam;
        size_t len;
    } bad[] = {
        {0x11, 0x11, 12}, /* version 1 in a v2 signature */
        {0x31, 0x11, 12}, /* version 3 */
        {0x22, 0x11, 12}, /* command 2 */
        {0x21, 0x12, 12}, /* UDP over IPv4 */
        {0x21, 0x22, 36}, /* UDP over IPv6 */
        {0x21, 0x31, 12}, /* AF_UNIX */
        {0x21, 0x11, 11}, /* IPv4 block too short */
        {0x21, 0x41, 12}, /* unknown family */
    };
    char buf[128];
    unsigned char block[40] = {0};
    struct proxy_header h;
    size_t i, n;

    for (i = 0; i < ARRAY_SIZE(bad); i++) {
        n = v2(buf, bad[i].ver_cmd, bad[i].fam, block, bad[i].len);
        ck_assert_msg(proxy_header_parse(PROXY_MODE_V2, buf, n, &h) == PROXY_BAD, "row %zu", i);
        ck_assert_int_eq(h.version, 2);
        ck_assert_ptr_nonnull(h.reason);
    }
    /* A length beyond the bound is refused before its bytes are awaited. */
    n = v2(buf, 0x21, 0x11, block, 12);
    buf[14] = (char)0x08;
    buf[15] = 0x01; /* 2049 */
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_BAD);
    ck_assert_ptr_nonnull(strstr(h.reason, "2048"));
    /* At the bound it is awaited. */
    buf[15] = 0x00;
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, buf, n, &h), PROXY_NEED_MORE);
}
END_TEST

/* Every cut of a valid header asks for more; the whole of it is done. */
static void
check_prefixes(enum proxy_mode mode, const char *hdr, size_t len)
{
    struct proxy_header h;
    size_t k;

    for (k = 1; k < len; k++)
        ck_assert_msg(proxy_header_parse(mode, hdr, k, &h) == PROXY_NEED_MORE,
                      "mode %d, %zu of %zu bytes", mode, k, len);
    ck_assert_int_eq(proxy_header_parse(mode, hdr, len, &h), PROXY_DONE);
}

START_TEST(test_partial)
{
    static const char line[] = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
    char buf[128];
    size_t n = v2(buf, 0x21, 0x11, tcp4_block, sizeof(tcp4_block));

    check_prefixes(PROXY_MODE_V1, line, sizeof(line) - 1);
    check_prefixes(PROXY_MODE_AUTO, line, sizeof(line) - 1);
    check_prefixes(PROXY_MODE_V2, buf, n);
    check_prefixes(PROXY_MODE_AUTO, buf, n);
}
END_TEST

START_TEST(test_modes)
{
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    static const char line[] = "PROXY UNKNOWN\r\n";
    char buf[64];
    size_t n = v2(buf, 0x20, 0x00, "", 0);
    struct proxy_header h;

    /* auto: plain HTTP is no header, decided at the first byte that differs. */
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, http, sizeof(http) - 1, &h), PROXY_NONE);
    ck_assert_int_eq(h.version, 0);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, "G", 1, &h), PROXY_NONE);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, "PROXZ", 5, &h), PROXY_NONE);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, "\r\nGET", 5, &h), PROXY_NONE);
    /* v1 or v2 required: plain HTTP or the other version is malformed. */
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V1, http, sizeof(http) - 1, &h), PROXY_BAD);
    ck_assert_ptr_nonnull(strstr(h.reason, "v1"));
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, http, sizeof(http) - 1, &h), PROXY_BAD);
    ck_assert_ptr_nonnull(strstr(h.reason, "v2"));
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V1, buf, n, &h), PROXY_BAD);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_V2, line, sizeof(line) - 1, &h), PROXY_BAD);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, line, sizeof(line) - 1, &h), PROXY_DONE);
    ck_assert_int_eq(proxy_header_parse(PROXY_MODE_AUTO, buf, n, &h), PROXY_DONE);
}
END_TEST

static struct config *
core_config(void)
{
    struct config *cfg = config_new();
    char err[256] = "";

    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), 0);
    return cfg;
}

/* Forwarded / X-Forwarded-For: which address a trusted proxy chain reports. */
static const struct {
    const char *name1, *value1, *name2, *value2;
    const char *want; /* NULL: no usable address */
} forwarded_rows[] = {
    {"X-Forwarded-For", "203.0.113.7", NULL, NULL, "203.0.113.7"},
    {"x-forwarded-for", "1.1.1.1, 203.0.113.7", NULL, NULL, "203.0.113.7"},
    {"X-Forwarded-For", "203.0.113.7, 127.0.0.1", NULL, NULL, "203.0.113.7"},
    {"X-Forwarded-For", "127.0.0.1, ::1", NULL, NULL, "127.0.0.1"},
    {"X-Forwarded-For", "1.2.3.4", "X-Forwarded-For", "5.6.7.8", "5.6.7.8"},
    {"X-Forwarded-For", "unknown", NULL, NULL, NULL},
    {"X-Forwarded-For", "", NULL, NULL, NULL},
    {"X-Forwarded-For", "1.2.3.4, not-an-ip", NULL, NULL, NULL},
    {"Forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43", NULL, NULL, "192.0.2.60"},
    {"Forwarded", "for=\"[2001:db8:cafe::17]:4711\"", NULL, NULL, "2001:db8:cafe::17"},
    {"Forwarded", "for=192.0.2.43:8080, for=127.0.0.1", NULL, NULL, "192.0.2.43"},
    {"Forwarded", "proto=https;For=198.51.100.17", NULL, NULL, "198.51.100.17"},
    {"Forwarded", "for=unknown", NULL, NULL, NULL},
    {"Forwarded", "for=_hidden", NULL, NULL, NULL},
    {"Forwarded", "proto=https", NULL, NULL, NULL},
    {"Forwarded", "for=192.0.2.1", "X-Forwarded-For", "198.51.100.9", "192.0.2.1"},
    {"X-Other", "1.2.3.4", NULL, NULL, NULL},
};

static struct qln_slice
cslice(const char *s)
{
    struct qln_slice out = {s, s != NULL ? strlen(s) : 0};

    return out;
}

START_TEST(test_forwarded_for)
{
    struct proxy_allow trusted;
    struct qln_header h[2];
    char err[256], out[64];
    size_t n = 0;
    bool ok;

    ck_assert_int_eq(proxy_allow_parse("127.0.0.1,::1", &trusted, err, sizeof(err)), 0);
    h[n].name = cslice(forwarded_rows[_i].name1);
    h[n++].value = cslice(forwarded_rows[_i].value1);
    if (forwarded_rows[_i].name2 != NULL) {
        h[n].name = cslice(forwarded_rows[_i].name2);
        h[n++].value = cslice(forwarded_rows[_i].value2);
    }
    ok = proxy_forwarded_for(&trusted, h, n, out, sizeof(out));
    if (forwarded_rows[_i].want == NULL) {
        ck_assert_msg(!ok, "row %d: got %s", _i, out);
    } else {
        ck_assert_msg(ok, "row %d: no address", _i);
        ck_assert_str_eq(out, forwarded_rows[_i].want);
    }
}
END_TEST

START_TEST(test_settings)
{
    struct config *cfg = core_config();
    struct proxy_protocol p;
    struct sockaddr_storage ss = peer("10.0.0.1");
    char err[256];

    /* Defaults: off, and only the loopback addresses may send a header. */
    ck_assert_int_eq(proxy_protocol_load(&p, cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(p.mode, PROXY_MODE_OFF);
    ck_assert(!proxy_allow_match(&p.from, &ss));
    ss = peer("::1");
    ck_assert(proxy_allow_match(&p.from, &ss));

    ck_assert_int_eq(config_set(cfg, "proxy_protocol", "v2", CONFIG_SRC_CLI, "--proxy-protocol",
                                err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_set(cfg, "proxy_allow_from", "10.0.0.0/8", CONFIG_SRC_CLI,
                                "--proxy-allow-from", err, sizeof(err)),
                     0);
    ck_assert_int_eq(proxy_protocol_load(&p, cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(p.mode, PROXY_MODE_V2);
    ss = peer("10.0.0.1");
    ck_assert(proxy_allow_match(&p.from, &ss));
    ck_assert_int_eq(proxy_check_config(cfg, err, sizeof(err)), 0);

    /* One line naming the option and the fix. */
    ck_assert_int_eq(config_set(cfg, "proxy_protocol", "v3", CONFIG_SRC_CLI, "--proxy-protocol",
                                err, sizeof(err)),
                     CONFIG_EUSAGE);
    ck_assert_str_eq(err, "--proxy-protocol: invalid value 'v3' (expected one of: off, v1, v2,"
                          " auto; or true, false)");
    ck_assert_int_eq(proxy_check_config(cfg, err, sizeof(err)), 0);
    config_set(cfg, "proxy_protocol", "AUTO", CONFIG_SRC_CLI, "--proxy-protocol", err, sizeof(err));
    config_set(cfg, "proxy_allow_from", "10.0.0.1,nope", CONFIG_SRC_CLI, "--proxy-allow-from", err,
               sizeof(err));
    ck_assert_int_eq(proxy_check_config(cfg, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "--proxy-allow-from: 'nope' is not an IP address") == err, "%s", err);
    config_set(cfg, "proxy_allow_from", "*", CONFIG_SRC_CLI, "--proxy-allow-from", err,
               sizeof(err));
    ck_assert_int_eq(proxy_protocol_load(&p, cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(p.mode, PROXY_MODE_AUTO);
    ck_assert(p.from.any);
    config_free(cfg);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("proxy");
    TCase *tc = tcase_create("proxy");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, test_match);
    tcase_add_test(tc, test_unix_peer_trusted);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_scheme);
    tcase_add_loop_test(tc, test_v1_rows, 0, (int)ARRAY_SIZE(v1_rows));
    tcase_add_test(tc, test_v1_too_long);
    tcase_add_test(tc, test_v2_inet);
    tcase_add_test(tc, test_v2_inet6);
    tcase_add_test(tc, test_v2_local_and_unspec);
    tcase_add_test(tc, test_v2_malformed);
    tcase_add_test(tc, test_partial);
    tcase_add_test(tc, test_modes);
    tcase_add_test(tc, test_settings);
    tcase_add_loop_test(tc, test_forwarded_for, 0, (int)ARRAY_SIZE(forwarded_rows));
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
