/*
 * Unit tests for core/proxy.c: parsing --forwarded-allow-ips, matching
 * peers against it (CIDR, IPv4-mapped IPv6, unix sockets), and the scheme
 * that gunicorn's secure scheme headers give.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <check.h>

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
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
