/*
 * Unit tests for core/uwsgi.c: the uwsgi packet decoder (table of good and
 * malformed packets, every cut of a packet, random mutations under the
 * size bound) and the HTTP head it writes back.
 */
#include "qlnconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include "core/uwsgi.h"
#include "core/util.h"

/* A packet under construction; vars written with their u16 LE lengths. */
struct pkt {
    char buf[4096];
    size_t len;
};

static void
pkt_begin(struct pkt *p, unsigned modifier1)
{
    p->buf[0] = (char)modifier1;
    p->buf[1] = p->buf[2] = p->buf[3] = 0;
    p->len = UWSGI_HEADER_LEN;
}

static void
put16(struct pkt *p, size_t n)
{
    p->buf[p->len++] = (char)(n & 0xff);
    p->buf[p->len++] = (char)(n >> 8);
}

static void
pkt_var(struct pkt *p, const char *k, const char *v)
{
    put16(p, strlen(k));
    memcpy(p->buf + p->len, k, strlen(k));
    p->len += strlen(k);
    put16(p, strlen(v));
    memcpy(p->buf + p->len, v, strlen(v));
    p->len += strlen(v);
}

static void
pkt_raw(struct pkt *p, const char *bytes, size_t n)
{
    memcpy(p->buf + p->len, bytes, n);
    p->len += n;
}

/* Writes datasize from what was added. */
static void
pkt_end(struct pkt *p)
{
    size_t n = p->len - UWSGI_HEADER_LEN;

    p->buf[1] = (char)(n & 0xff);
    p->buf[2] = (char)(n >> 8);
}

static void
basic(struct pkt *p)
{
    pkt_begin(p, 0);
    pkt_var(p, "REQUEST_METHOD", "GET");
    pkt_var(p, "REQUEST_URI", "/a?b=1");
    pkt_var(p, "PATH_INFO", "/a");
    pkt_var(p, "QUERY_STRING", "b=1");
    pkt_var(p, "SERVER_PROTOCOL", "HTTP/1.1");
    pkt_var(p, "CONTENT_LENGTH", "");
    pkt_var(p, "CONTENT_TYPE", "");
    pkt_var(p, "HTTP_HOST", "example.com");
    pkt_var(p, "HTTP_X_FORWARDED_FOR", "1.2.3.4");
    pkt_var(p, "HTTP_CONNECTION", "keep-alive");
    pkt_var(p, "REMOTE_ADDR", "10.0.0.9");
    pkt_var(p, "REMOTE_PORT", "5000");
    pkt_end(p);
}

static char *
head_of(const struct uwsgi_packet *u)
{
    char *out = xmalloc(uwsgi_http_head_size(u) + 1);
    size_t n = uwsgi_http_head(u, out);

    ck_assert_uint_le(n, uwsgi_http_head_size(u));
    out[n] = '\0';
    return out;
}

START_TEST(test_basic)
{
    struct pkt p;
    struct uwsgi_packet u;
    char *head;

    basic(&p);
    ck_assert_int_eq(uwsgi_parse(p.buf, p.len, &u), UWSGI_DONE);
    ck_assert_uint_eq(u.len, p.len);
    ck_assert_uint_eq(u.nvars, 12);
    ck_assert(!u.https);
    ck_assert(!u.http10);
    ck_assert_uint_eq(u.remote_addr.len, 8);
    head = head_of(&u);
    ck_assert_str_eq(head, "GET /a?b=1 HTTP/1.1\r\n"
                           "Host: example.com\r\n"
                           "X-Forwarded-For: 1.2.3.4\r\n"
                           "\r\n");
    free(head);
}
END_TEST

START_TEST(test_path_info_and_body_headers)
{
    struct pkt p;
    struct uwsgi_packet u;
    char *head;

    pkt_begin(&p, 0);
    pkt_var(&p, "REQUEST_METHOD", "POST");
    pkt_var(&p, "PATH_INFO", "/x y%?#");
    pkt_var(&p, "QUERY_STRING", "q=%20");
    pkt_var(&p, "SERVER_PROTOCOL", "HTTP/1.0");
    pkt_var(&p, "CONTENT_LENGTH", "12");
    pkt_var(&p, "CONTENT_TYPE", "text/plain");
    pkt_var(&p, "SERVER_NAME", "srv");
    pkt_var(&p, "HTTPS", "on");
    pkt_var(&p, "HTTP_transfer_encoding", "x");
    pkt_var(&p, "HTTP_TRANSFER_ENCODING", "chunked");
    pkt_var(&p, "HTTP_ACCEPT_language", "fr");
    pkt_end(&p);
    ck_assert_int_eq(uwsgi_parse(p.buf, p.len, &u), UWSGI_DONE);
    ck_assert(u.https);
    ck_assert(u.http10);
    head = head_of(&u);
    /* Hop-by-hop fields are dropped whatever the case of their name. */
    ck_assert_str_eq(head, "POST /x%20y%25%3F%23?q=%20 HTTP/1.0\r\n"
                           "Host: srv\r\n"
                           "Content-Length: 12\r\n"
                           "Content-Type: text/plain\r\n"
                           "Accept-Language: fr\r\n"
                           "\r\n");
    free(head);
}
END_TEST

START_TEST(test_scheme_vars)
{
    static const char *const rows[][2] = {
        {"HTTPS", "1"},
        {"HTTPS", "ON"},
        {"HTTPS", "true"},
        {"UWSGI_SCHEME", "https"},
        {"wsgi.url_scheme", "https"},
    };
    struct pkt p;
    struct uwsgi_packet u;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        pkt_begin(&p, 0);
        pkt_var(&p, "REQUEST_METHOD", "GET");
        pkt_var(&p, rows[i][0], rows[i][1]);
        pkt_end(&p);
        ck_assert_int_eq(uwsgi_parse(p.buf, p.len, &u), UWSGI_DONE);
        ck_assert_msg(u.https, "%s=%s", rows[i][0], rows[i][1]);
    }
    pkt_begin(&p, 0);
    pkt_var(&p, "REQUEST_METHOD", "GET");
    pkt_var(&p, "HTTPS", "off");
    pkt_var(&p, "UWSGI_SCHEME", "http");
    pkt_end(&p);
    ck_assert_int_eq(uwsgi_parse(p.buf, p.len, &u), UWSGI_DONE);
    ck_assert(!u.https);
}
END_TEST

/* Malformed packets: each refused, with a reason containing WHY. */
enum bad_kind {
    BAD_MODIFIER,
    BAD_EMPTY,
    BAD_KEY_PAST,
    BAD_VALUE_PAST,
    BAD_DANGLING,
    BAD_NO_METHOD,
    BAD_METHOD,
    BAD_EMPTY_KEY,
    BAD_CRLF,
    BAD_NUL_KEY,
    BAD_URI_SPACE,
    BAD_QUERY_CTL,
    BAD_HEADER_NAME,
    BAD_TWO_LENGTHS,
    BAD_KINDS,
};

static const char *const bad_why[BAD_KINDS] = {
    [BAD_MODIFIER] = "modifier1",      [BAD_EMPTY] = "datasize 0",
    [BAD_KEY_PAST] = "truncated",      [BAD_VALUE_PAST] = "truncated",
    [BAD_DANGLING] = "truncated",      [BAD_NO_METHOD] = "without REQUEST_METHOD",
    [BAD_METHOD] = "REQUEST_METHOD",   [BAD_EMPTY_KEY] = "empty uwsgi variable name",
    [BAD_CRLF] = "CR, LF or NUL",      [BAD_NUL_KEY] = "CR, LF or NUL",
    [BAD_URI_SPACE] = "REQUEST_URI",   [BAD_QUERY_CTL] = "QUERY_STRING",
    [BAD_HEADER_NAME] = "header name", [BAD_TWO_LENGTHS] = "differing CONTENT_LENGTH",
};

static void
bad_packet(struct pkt *p, enum bad_kind k)
{
    pkt_begin(p, k == BAD_MODIFIER ? 5 : 0);
    if (k == BAD_EMPTY)
        return;
    if (k != BAD_NO_METHOD)
        pkt_var(p, "REQUEST_METHOD", k == BAD_METHOD ? "G(T" : "GET");
    switch (k) {
    case BAD_KEY_PAST:
        pkt_raw(p, "\x40\x00KEY", 5);
        break;
    case BAD_VALUE_PAST:
        pkt_raw(p, "\x01\x00K\x09\x00vv", 7);
        break;
    case BAD_DANGLING:
        pkt_raw(p, "\x01", 1);
        break;
    case BAD_EMPTY_KEY:
        pkt_var(p, "", "v");
        break;
    case BAD_CRLF:
        pkt_var(p, "HTTP_X_A", "a\r\nTransfer-Encoding: chunked");
        break;
    case BAD_NUL_KEY:
        pkt_raw(p, "\x03\x00K\x00Y\x00\x00", 7);
        break;
    case BAD_URI_SPACE:
        pkt_var(p, "REQUEST_URI", "/a b");
        break;
    case BAD_QUERY_CTL:
        pkt_var(p, "QUERY_STRING", "a=\x01");
        break;
    case BAD_HEADER_NAME:
        pkt_var(p, "HTTP_X:Y", "1");
        break;
    case BAD_TWO_LENGTHS:
        pkt_var(p, "CONTENT_LENGTH", "1");
        pkt_var(p, "CONTENT_LENGTH", "10");
        break;
    default:
        pkt_var(p, "PATH_INFO", "/");
        break;
    }
    pkt_end(p);
}

START_TEST(test_bad_rows)
{
    struct pkt p;
    struct uwsgi_packet u;

    bad_packet(&p, (enum bad_kind)_i);
    ck_assert_int_eq(uwsgi_parse(p.buf, p.len, &u), UWSGI_BAD);
    ck_assert_ptr_nonnull(u.reason);
    ck_assert_msg(strstr(u.reason, bad_why[_i]) != NULL, "row %d: %s", _i, u.reason);
}
END_TEST

START_TEST(test_too_many_vars)
{
    static char buf[UWSGI_PACKET_MAX];
    struct uwsgi_packet u;
    size_t n = UWSGI_HEADER_LEN, i;

    memset(buf, 0, sizeof(buf));
    memcpy(buf + n, "\x0e\x00REQUEST_METHOD\x03\x00GET", 21);
    n += 21;
    /* Each: key "K" (1 byte), empty value: 5 bytes. */
    for (i = 0; i < UWSGI_VARS_MAX; i++) {
        memcpy(buf + n, "\x01\x00K\x00\x00", 5);
        n += 5;
    }
    buf[1] = (char)((n - UWSGI_HEADER_LEN) & 0xff);
    buf[2] = (char)((n - UWSGI_HEADER_LEN) >> 8);
    ck_assert_int_eq(uwsgi_parse(buf, n, &u), UWSGI_BAD);
    ck_assert_ptr_nonnull(strstr(u.reason, "too many"));
}
END_TEST

/* Every prefix of a good packet asks for more; the whole one is done. */
START_TEST(test_every_cut)
{
    struct pkt p;
    struct uwsgi_packet u;
    size_t cut;

    basic(&p);
    for (cut = 0; cut < p.len; cut++)
        ck_assert_int_eq(uwsgi_parse(p.buf, cut, &u), UWSGI_NEED_MORE);
    ck_assert_int_eq(uwsgi_parse(p.buf, p.len, &u), UWSGI_DONE);
    /* The body after the packet is not the parser's. */
    memcpy(p.buf + p.len, "BODY", 4);
    ck_assert_int_eq(uwsgi_parse(p.buf, p.len + 4, &u), UWSGI_DONE);
    ck_assert_uint_eq(u.len, p.len);
}
END_TEST

/*
 * Random mutations of a good packet (bytes flipped, lengths changed): the
 * parser never reads past what it was given (ASan builds check that, as
 * the copy sits at the end of its allocation) and a head it accepts fits
 * its size bound and has no bare CR or LF inside a line.
 */
START_TEST(test_mutations)
{
    struct pkt p;
    struct uwsgi_packet u;
    unsigned seed = 12345;
    int round;

    basic(&p);
    for (round = 0; round < 20000; round++) {
        char *copy = xmalloc(p.len);
        size_t len = p.len, k, flips = 1 + rand_r(&seed) % 4;

        memcpy(copy, p.buf, p.len);
        for (k = 0; k < flips; k++)
            copy[rand_r(&seed) % len] = (char)rand_r(&seed);
        if (rand_r(&seed) % 4 == 0)
            len = (size_t)rand_r(&seed) % len;
        if (uwsgi_parse(copy, len, &u) == UWSGI_DONE) {
            char *head = head_of(&u);
            char *end = strstr(head, "\r\n\r\n");

            ck_assert_ptr_nonnull(end);
            ck_assert_uint_eq((size_t)(end - head) + 4, strlen(head));
            for (char *q = head; q < end; q++) {
                if (*q == '\n')
                    ck_assert_int_eq(q[-1], '\r');
                if (*q == '\r')
                    ck_assert_int_eq(q[1], '\n');
            }
            free(head);
        }
        free(copy);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("uwsgi");
    TCase *tc = tcase_create("uwsgi");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_basic);
    tcase_add_test(tc, test_path_info_and_body_headers);
    tcase_add_test(tc, test_scheme_vars);
    tcase_add_loop_test(tc, test_bad_rows, 0, BAD_KINDS);
    tcase_add_test(tc, test_too_many_vars);
    tcase_add_test(tc, test_every_cut);
    tcase_add_test(tc, test_mutations);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
