/*
 * Unit tests for core/conn.c and core/response.c: a tiny C app behind a
 * fake worker, served by qln_conn_serve() with the poll waiter on a real
 * 127.0.0.1 listener; a client checks the exact bytes on the wire (the Date
 * value masked).
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include <qilin/errno.h>
#include <qilin/plugin.h>

#include "core/config.h"
#include "core/serve.h"
#include "core/listener.h"
#include "core/util.h"
#include "core/worker.h"
#include "fakeworker.h"

/* One fake worker per test process (each test runs in its own fork). */
static struct qln_worker worker;
static struct listener lst;
static char sendfile_path[64];
/* Statuses qln_conn_serve() returned, in order, written by the server thread. */
static volatile int serve_log[64];
static volatile int nserve;

/* ------------------------------------------------------------ the test app */

static int
reply(struct qln_response *resp, const char *status, const char *body, size_t len)
{
    char cl[24];
    struct qln_header h[2] = {
        {{"Content-Type", 12}, {"text/plain", 10}},
        {{"Content-Length", 14}, {cl, 0}},
    };
    int rc;

    h[1].value.len = (size_t)snprintf(cl, sizeof(cl), "%zu", len);
    rc = qln_resp_start(resp, (struct qln_slice){status, strlen(status)}, h, 2);
    if (rc < 0)
        return rc;
    return qln_resp_write(resp, body, len);
}

static int
start(struct qln_response *resp, const char *status, const struct qln_header *h, size_t n)
{
    return qln_resp_start(resp, (struct qln_slice){status, strlen(status)}, h, n);
}

/* Reads the whole body in 7-byte pieces (to cross slice boundaries) and echoes it. */
static int
echo(struct qln_request *req, struct qln_response *resp)
{
    static char body[2 * 1024 * 1024];
    size_t len = 0;
    ssize_t n;

    while ((n = qln_req_read(req, body + len, len + 7 <= sizeof(body) ? 7 : 0)) > 0)
        len += (size_t)n;
    if (n < 0)
        return (int)n;
    return reply(resp, "200 OK", body, len);
}

static int
big(struct qln_response *resp)
{
    static char block[65536];
    int i, rc;

    memset(block, 'b', sizeof(block));
    rc = start(resp, "200 OK", NULL, 0);
    for (i = 0; rc == 0 && i < 16; i++)
        rc = qln_resp_write(resp, block, sizeof(block));
    return rc;
}

static int
with_file(struct qln_response *resp, bool length)
{
    struct qln_header h = {{"Content-Length", 14}, {"6", 1}};
    int fd = open(sendfile_path, O_RDONLY), rc;

    ck_assert_int_ge(fd, 0);
    rc = start(resp, "200 OK", &h, length ? 1 : 0);
    if (rc == 0)
        rc = qln_resp_sendfile(resp, fd, 2, length ? 6 : -1);
    close(fd);
    return rc;
}

static int
chunked(struct qln_response *resp)
{
    int rc = start(resp, "200 OK", NULL, 0);

    if (rc == 0)
        rc = qln_resp_write(resp, "abc", 3);
    if (rc == 0)
        rc = qln_resp_write(resp, "", 0);
    return rc == 0 ? qln_resp_write(resp, "defghijklmnopqrstuvwxyz", 23) : rc;
}

static int
peer(struct qln_request *req, struct qln_response *resp)
{
    char text[128];
    int n = snprintf(text, sizeof(text), "%s %s:%s %s", qln_req_remote_addr(req),
                     qln_req_server_name(req), qln_req_server_port(req), qln_req_url_scheme(req));

    return reply(resp, "200 OK", text, (size_t)n);
}

/* Misbehaving apps: bad headers, failures before and after the head, wrong lengths. */
static int
misbehave(struct qln_slice path, struct qln_response *resp)
{
    static const struct qln_header bad[] = {{{"X-Bad", 5}, {"a\r\nInjected: 1", 15}}};
    static const struct qln_header badname[] = {{{"X Bad", 5}, {"a", 1}}};
    static const struct qln_header len10[] = {{{"Content-Length", 14}, {"10", 2}}};
    static const struct qln_header len3[] = {{{"Content-Length", 14}, {"3", 1}}};
    int rc;

    if (slice_eq(path, "/bad"))
        return start(resp, "200 OK", bad, 1);
    if (slice_eq(path, "/badname"))
        return start(resp, "200 OK", badname, 1);
    if (slice_eq(path, "/nostatus"))
        return start(resp, "OK", NULL, 0);
    if (slice_eq(path, "/fail"))
        return -EIO;
    if (slice_eq(path, "/fail-late")) {
        rc = start(resp, "200 OK", NULL, 0);
        if (rc == 0)
            rc = qln_resp_write(resp, "partial", 7);
        return rc == 0 ? -EIO : rc;
    }
    if (slice_eq(path, "/noresp"))
        return 0;
    if (slice_eq(path, "/short"))
        return start(resp, "200 OK", len10, 1) ?: qln_resp_write(resp, "abc", 3);
    if (slice_eq(path, "/long")) {
        rc = start(resp, "200 OK", len3, 1);
        return rc ?: qln_resp_write(resp, "abcdef", 6) ?: qln_resp_write(resp, "gh", 2);
    }
    return 1; /* not one of these */
}

/* start_response twice before the head left (exc_info), and once too often after. */
static int
restart(struct qln_slice path, struct qln_response *resp)
{
    static const struct qln_header first[] = {{{"X-First", 7}, {"1", 1}}};
    int rc;

    if (slice_eq(path, "/restart")) {
        rc = start(resp, "200 OK", first, 1);
        ck_assert_int_eq(qln_resp_headers_sent(resp), false);
        return rc ?: reply(resp, "500 Oops", "e", 1);
    }
    rc = reply(resp, "200 OK", "x", 1);
    ck_assert(qln_resp_headers_sent(resp));
    ck_assert_int_eq(start(resp, "200 OK", NULL, 0), -EALREADY);
    return rc;
}

static int
app_handle(void *state, void *tstate, struct qln_request *req, struct qln_response *resp)
{
    static const struct qln_header hop[] = {
        {{"Connection", 10}, {"upgrade", 7}},
        {{"Transfer-Encoding", 17}, {"gzip", 4}},
        {{"Server", 6}, {"evil", 4}},
        {{"Date", 4}, {"yesterday", 9}},
        {{"Keep-Alive", 10}, {"timeout=9", 9}},
        {{"X-Ok", 4}, {"1", 1}},
        {{"TE", 2}, {"trailers", 8}},
        {{"Trailers", 8}, {"X", 1}},
        {{"UPGRADE", 7}, {"h2c", 3}},
        {{"Proxy-Authenticate", 18}, {"Basic", 5}},
        {{"proxy-authorization", 19}, {"x", 1}},
        {{"Content-Length", 14}, {"2", 1}},
    };
    struct qln_slice path = qln_req_path(req);
    int rc;

    if (slice_eq(path, "/q"))
        return reply(resp, "200 OK", qln_req_query(req).p, qln_req_query(req).len);
    if (slice_eq(path, "/echo"))
        return echo(req, resp);
    if (slice_eq(path, "/peer"))
        return peer(req, resp);
    if (slice_eq(path, "/chunked"))
        return chunked(resp);
    if (slice_eq(path, "/empty"))
        return start(resp, "204 No Content", NULL, 0) ?: qln_resp_write(resp, "zz", 2);
    if (slice_eq(path, "/hop"))
        return start(resp, "200 OK", hop, ARRAY_SIZE(hop)) ?: qln_resp_write(resp, "ok", 2);
    if (slice_eq(path, "/restart") || slice_eq(path, "/twice"))
        return restart(path, resp);
    if (slice_eq(path, "/big"))
        return big(resp);
    if (slice_eq(path, "/file"))
        return with_file(resp, false);
    if (slice_eq(path, "/file-len"))
        return with_file(resp, true);
    rc = misbehave(path, resp);
    return rc != 1 ? rc : reply(resp, "404 Not Found", "nf", 2);
}

static const struct qln_app_ops test_app = {
    .size = sizeof(struct qln_app_ops),
    .handle = app_handle,
};

/* ------------------------------------------------------------ the server side */

static void
setup(void)
{
    int fd;

    fake_worker_init(&worker, &lst, &test_app);
    nserve = 0;

    snprintf(sendfile_path, sizeof(sendfile_path), "/tmp/qilin-test-conn-XXXXXX");
    fd = mkstemp(sendfile_path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    close(fd);
}

static void
teardown(void)
{
    unlink(sendfile_path);
    close(lst.fd);
}

/* Serves connections one after another, as the sync worker would, until the process ends. */
static void *
server_main(void *arg)
{
    struct qln_poll_waiter pw;
    struct pollfd pfd = {.fd = lst.fd, .events = POLLIN};

    qln_poll_waiter_init(&pw, &worker, NULL);
    for (;;) {
        struct qln_conn *c;
        enum qln_conn_status st;

        poll(&pfd, 1, 1000);
        if (qln_conn_accept(&worker, lst.fd, &c) != 0)
            continue;
        for (;;) {
            st = qln_conn_serve(c, &pw.waiter, NULL);
            if (nserve < (int)ARRAY_SIZE(serve_log)) {
                /* The entry first: the test thread reads it once the count shows it. */
                serve_log[nserve] = st;
                nserve = nserve + 1;
            }
            if (st != QLN_CONN_IDLE)
                break;
            struct pollfd cp = {.fd = qln_conn_fd(c), .events = POLLIN};
            int64_t left = qln_conn_deadline(c) - qln_now_ms();

            if (poll(&cp, 1, left > 0 ? (int)left : 0) <= 0)
                break;
        }
        qln_conn_close(c, &pw.waiter);
    }
    return NULL;
}

static void
start_server(void)
{
    pthread_t t;

    ck_assert_int_eq(pthread_create(&t, NULL, server_main, NULL), 0);
    pthread_detach(t);
}

/* ------------------------------------------------------------ the client side */

static int
client(void)
{
    return fake_client(&lst);
}

static void
send_str(int fd, const char *s)
{
    size_t n = strlen(s);

    ck_assert_int_eq(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Reads exactly N bytes (or fewer at EOF); fails the test on a timeout. */
static size_t
read_n(int fd, char *buf, size_t n)
{
    size_t got = 0;
    ssize_t k;

    while (got < n) {
        k = read(fd, buf + got, n - got);
        ck_assert_msg(k >= 0, "read: %s", strerror(errno));
        if (k == 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* Reads until EOF into BUF (NUL-terminated); returns the length. */
static size_t
read_all(int fd, char *buf, size_t cap)
{
    size_t n = read_n(fd, buf, cap - 1);

    ck_assert_uint_lt(n, cap - 1);
    buf[n] = '\0';
    return n;
}

/* Replaces the Date value (29 bytes) by "X" so responses compare exactly. */
static size_t
mask_date(char *buf, size_t n)
{
    char *d;

    while ((d = memmem(buf, n, "\r\nDate: ", 8)) != NULL && d[8] != 'X') {
        memmove(d + 9, d + 8 + 29, n - (size_t)(d + 8 + 29 - buf));
        d[8] = 'X';
        n -= 28;
        buf[n] = '\0';
    }
    return n;
}

/* Reads one response of the expected length (Date unmasked is 28 bytes longer) and compares. */
static void
expect_response(int fd, const char *want)
{
    static char buf[1 << 16];
    size_t n = strlen(want) + (strstr(want, "\r\nDate: X\r\n") ? 28 : 0);

    ck_assert_uint_lt(n, sizeof(buf));
    ck_assert_uint_eq(read_n(fd, buf, n), n);
    buf[n] = '\0';
    n = mask_date(buf, n);
    ck_assert_msg(strcmp(buf, want) == 0, "got:\n%s\nwant:\n%s", buf, want);
}

static void
expect_eof(int fd)
{
    char c;

    ck_assert_int_eq(read(fd, &c, 1), 0);
}

#define OK_HEAD(cl, conn)                                                                          \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " cl                           \
    "\r\nDate: X\r\nServer: qilin\r\nConnection: " conn "\r\n\r\n"

/* ------------------------------------------------------------ tests */

START_TEST(test_simple_keepalive)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /q?hello HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("5", "keep-alive") "hello");
    send_str(fd, "GET /q?again HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("5", "keep-alive") "again");
    close(fd);
}
END_TEST

START_TEST(test_pipelined_in_order)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /q?one HTTP/1.1\r\nHost: x\r\n\r\n"
                 "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"
                 "GET /q?three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expect_response(fd, OK_HEAD("3", "keep-alive") "one");
    expect_response(fd, OK_HEAD("3", "keep-alive") "two");
    expect_response(fd, OK_HEAD("5", "close") "three");
    expect_eof(fd);
    close(fd);
}
END_TEST

START_TEST(test_chunked_request_echo)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n");
    usleep(20000); /* the rest arrives later: the reader waits for it */
    send_str(fd, "B;ext=1\r\n, world ok!\r\n0\r\nX-Trailer: 1\r\n\r\n"
                 "GET /q?next HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("16", "keep-alive") "hello, world ok!");
    expect_response(fd, OK_HEAD("4", "keep-alive") "next");
    close(fd);
}
END_TEST

START_TEST(test_large_body_echo)
{
    static char req[1024 * 1024 + 128], resp[1024 * 1024 + 256];
    int fd, n;
    size_t got;

    start_server();
    fd = client();
    n = snprintf(req, sizeof(req), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                 1 << 20);
    memset(req + n, 'z', 1 << 20);
    req[n + (1 << 20)] = '\0';
    send_str(fd, req);
    got = read_n(fd, resp, strlen(OK_HEAD("1048576", "keep-alive")) + 28 + (1 << 20));
    ck_assert_uint_eq(got, strlen(OK_HEAD("1048576", "keep-alive")) + 28 + (1 << 20));
    ck_assert_int_eq(memcmp(resp, "HTTP/1.1 200 OK\r\n", 17), 0);
    ck_assert_int_eq(resp[got - 1], 'z');
    ck_assert_ptr_null(memchr(resp + got - (1 << 20), 'b', 1 << 20));
    close(fd);
}
END_TEST

START_TEST(test_expect_continue)
{
    char buf[64];
    int fd;

    start_server();
    fd = client();
    send_str(fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    /* The body is sent only after the interim response, as a client would. */
    ck_assert_uint_eq(read_n(fd, buf, 25), 25);
    ck_assert_int_eq(memcmp(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25), 0);
    send_str(fd, "data");
    expect_response(fd, OK_HEAD("4", "keep-alive") "data");
    close(fd);
}
END_TEST

/* The app answers without reading: no 100 goes out, and the connection closes. */
START_TEST(test_expect_continue_unread)
{
    char buf[512];
    int fd;

    start_server();
    fd = client();
    send_str(fd,
             "POST /q?x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    mask_date(buf, strlen(buf));
    ck_assert_str_eq(buf, OK_HEAD("1", "close") "x");
    close(fd);
}
END_TEST

START_TEST(test_head_without_body)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "HEAD /q?body HTTP/1.1\r\nHost: x\r\n\r\nHEAD /chunked HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET /q?after HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("4", "keep-alive"));
    /* No Content-Length and no body allowed: neither chunked nor close-delimited. */
    expect_response(
        fd, "HTTP/1.1 200 OK\r\nDate: X\r\nServer: qilin\r\nConnection: keep-alive\r\n\r\n");
    expect_response(fd, OK_HEAD("5", "keep-alive") "after");
    close(fd);
}
END_TEST

START_TEST(test_http10_close)
{
    char buf[512];
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /chunked HTTP/1.0\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    mask_date(buf, strlen(buf));
    /* No length: the close delimits the body. */
    ck_assert_str_eq(buf, "HTTP/1.0 200 OK\r\nDate: X\r\nServer: qilin\r\nConnection: close\r\n\r\n"
                          "abcdefghijklmnopqrstuvwxyz");
    close(fd);
}
END_TEST

START_TEST(test_http10_keepalive)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /q?a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    expect_response(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n"
                        "Date: X\r\nServer: qilin\r\nConnection: keep-alive\r\n\r\na");
    send_str(fd, "GET /q?b HTTP/1.0\r\n\r\n");
    expect_response(fd, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n"
                        "Date: X\r\nServer: qilin\r\nConnection: close\r\n\r\nb");
    expect_eof(fd);
    close(fd);
}
END_TEST

START_TEST(test_chunked_response)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, "HTTP/1.1 200 OK\r\nDate: X\r\nServer: qilin\r\nConnection: keep-alive\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n17\r\n"
                        "defghijklmnopqrstuvwxyz\r\n0\r\n\r\n");
    close(fd);
}
END_TEST

START_TEST(test_app_error_500_then_new_connection)
{
    char buf[1024];
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    mask_date(buf, strlen(buf));
    ck_assert_msg(strncmp(buf,
                          "HTTP/1.1 500 Internal Server Error\r\nDate: X\r\nConnection: close\r\n"
                          "Content-Type: text/html\r\nContent-Length: ",
                          105) == 0,
                  "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "\r\n\r\n<html>"));
    close(fd);

    fd = client();
    send_str(fd, "GET /q?alive HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("5", "keep-alive") "alive");
    close(fd);
}
END_TEST

START_TEST(test_no_response_is_500)
{
    char buf[1024];
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /noresp HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 500 ", 13) == 0, "%s", buf);
    close(fd);
}
END_TEST

START_TEST(test_bad_app_header_is_500)
{
    static const char *const paths[] = {"/bad", "/badname", "/nostatus"};
    char buf[1024];
    size_t i;
    int fd;

    start_server();
    for (i = 0; i < ARRAY_SIZE(paths); i++) {
        fd = client();
        snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", paths[i]);
        send_str(fd, buf);
        read_all(fd, buf, sizeof(buf));
        ck_assert_msg(strncmp(buf, "HTTP/1.1 500 ", 13) == 0, "%s: %s", paths[i], buf);
        ck_assert_ptr_null(strstr(buf, "Injected"));
        close(fd);
    }
}
END_TEST

START_TEST(test_fail_after_head_closes)
{
    char buf[1024];
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /fail-late HTTP/1.1\r\nHost: x\r\n\r\nGET /q?x HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    mask_date(buf, strlen(buf));
    /* The chunked body is left unterminated and the second request is not answered. */
    ck_assert_str_eq(buf,
                     "HTTP/1.1 200 OK\r\nDate: X\r\nServer: qilin\r\nConnection: keep-alive\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n");
    close(fd);
}
END_TEST

START_TEST(test_short_content_length_closes)
{
    char buf[1024];
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /short HTTP/1.1\r\nHost: x\r\n\r\nGET /q?x HTTP/1.1\r\nHost: x\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    mask_date(buf, strlen(buf));
    /* The head promised 10 bytes: only the close can tell the client it got 3. */
    ck_assert_str_eq(buf, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nDate: X\r\nServer: qilin\r\n"
                          "Connection: keep-alive\r\n\r\nabc");
    close(fd);
}
END_TEST

START_TEST(test_long_body_cut)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /long HTTP/1.1\r\nHost: x\r\n\r\nGET /q?next HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: X\r\nServer: qilin\r\n"
                        "Connection: keep-alive\r\n\r\nabc");
    expect_response(fd, OK_HEAD("4", "keep-alive") "next");
    close(fd);
}
END_TEST

START_TEST(test_hop_by_hop_dropped)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /hop HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, "HTTP/1.1 200 OK\r\nX-Ok: 1\r\nContent-Length: 2\r\nDate: X\r\n"
                        "Server: qilin\r\nConnection: keep-alive\r\n\r\nok");
    close(fd);
}
END_TEST

START_TEST(test_204_has_no_body)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\nGET /q?z HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, "HTTP/1.1 204 No Content\r\nDate: X\r\nServer: qilin\r\n"
                        "Connection: keep-alive\r\n\r\n");
    expect_response(fd, OK_HEAD("1", "keep-alive") "z");
    close(fd);
}
END_TEST

START_TEST(test_restart_and_already_sent)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /restart HTTP/1.1\r\nHost: x\r\n\r\nGET /twice HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, "HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n"
                        "Date: X\r\nServer: qilin\r\nConnection: keep-alive\r\n\r\ne");
    expect_response(fd, OK_HEAD("1", "keep-alive") "x");
    close(fd);
}
END_TEST

START_TEST(test_big_response_waits_for_client)
{
    static char buf[(1 << 20) + 4096];
    size_t n, want = (1 << 20) + 16 * 9 + 5; /* "10000\r\n" data "\r\n", then "0\r\n\r\n" */
    char *body;
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n");
    usleep(50000); /* let the server fill the socket buffers and wait */
    n = read_n(fd, buf, 4096);
    body = memmem(buf, n, "\r\n\r\n", 4) + 4;
    want += (size_t)(body - buf);
    n += read_n(fd, buf + n, want - n);
    ck_assert_uint_eq(n, want);
    ck_assert_int_eq(memcmp(body, "10000\r\nbbbb", 11), 0);
    ck_assert_int_eq(memcmp(buf + n - 11, "bbbb\r\n0\r\n\r\n", 11), 0);
    close(fd);
}
END_TEST

START_TEST(test_sendfile)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /file HTTP/1.1\r\nHost: x\r\n\r\nGET /file-len HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, "HTTP/1.1 200 OK\r\nDate: X\r\nServer: qilin\r\nConnection: keep-alive\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n8\r\n23456789\r\n0\r\n\r\n");
    expect_response(fd, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nDate: X\r\nServer: qilin\r\n"
                        "Connection: keep-alive\r\n\r\n234567");
    close(fd);
}
END_TEST

START_TEST(test_peer_and_server_names)
{
    char want[128];
    int fd;

    start_server();
    fd = client();
    send_str(fd, "GET /peer HTTP/1.1\r\nHost: x\r\n\r\n");
    snprintf(want, sizeof(want), "127.0.0.1 127.0.0.1:%s http", lst.port);
    {
        char head[512];

        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                 "Date: X\r\nServer: qilin\r\nConnection: keep-alive\r\n\r\n%s",
                 strlen(want), want);
        expect_response(fd, head);
    }
    close(fd);
}
END_TEST

START_TEST(test_bad_requests_answered)
{
    static const struct {
        const char *raw;
        const char *status;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "400 Bad Request"},
        {"GET / HTTP/2.0\r\n\r\n", "505 HTTP Version Not Supported"},
        {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", "501 Not Implemented"},
        {"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
         "400 Bad Request"},
    };
    char buf[1024], want[128];
    size_t i;
    int fd;

    start_server();
    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        fd = client();
        send_str(fd, cases[i].raw);
        read_all(fd, buf, sizeof(buf));
        mask_date(buf, strlen(buf));
        snprintf(want, sizeof(want),
                 "HTTP/1.1 %s\r\nDate: X\r\nConnection: close\r\n"
                 "Content-Type: text/html\r\nContent-Length: ",
                 cases[i].status);
        ck_assert_msg(strncmp(buf, want, strlen(want)) == 0, "%s: %s", cases[i].raw, buf);
        close(fd);
    }
}
END_TEST

/* Heads that outgrow the limits: the buffer stops growing and the client gets 414/431. */
START_TEST(test_limits_on_the_wire)
{
    static char req[64 * 1024];
    char buf[1024];
    int fd, n, i;

    worker.conn.limit_request_line = 100;
    worker.conn.limit_request_fields = 5;
    start_server();

    fd = client();
    n = snprintf(req, sizeof(req), "GET /");
    memset(req + n, 'a', 200);
    snprintf(req + n + 200, sizeof(req) - (size_t)n - 200, " HTTP/1.1\r\nHost: x\r\n\r\n");
    send_str(fd, req);
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 414 URI Too Long\r\n", 27) == 0, "%s", buf);
    close(fd);

    fd = client();
    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 6; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "X-%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    send_str(fd, req);
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 431 ", 13) == 0, "%s", buf);
    close(fd);
}
END_TEST

START_TEST(test_stopping_closes_after_response)
{
    int fd, i;

    worker.stop = QLN_STOP_GRACEFUL;
    start_server();
    fd = client();
    send_str(fd, "GET /q?bye HTTP/1.1\r\nHost: x\r\n\r\nGET /q?never HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("3", "close") "bye");
    expect_eof(fd);
    close(fd);
    /* The FIN leaves with the response (conn_end_output), before
       qln_conn_serve returns: wait for the server thread to record it. An
       IDLE comes first when the server looked before the request arrived
       (a slow client, a sanitizer build): wait past it. */
    for (i = 0; i < 500 && (nserve == 0 || serve_log[nserve - 1] == QLN_CONN_IDLE); i++)
        usleep(10000);
    /* The connection was closed because of the stop, not parked. */
    ck_assert_int_gt(nserve, 0);
    ck_assert_int_eq(serve_log[nserve - 1], QLN_CONN_CLOSED);
}
END_TEST

START_TEST(test_keepalive_zero_closes)
{
    int fd;

    worker.conn.keepalive_ms = 0;
    start_server();
    fd = client();
    send_str(fd, "GET /q?one HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("3", "close") "one");
    expect_eof(fd);
    close(fd);
}
END_TEST

/* Body read timeout inside the app: the request is answered 408 and the connection closes. */
START_TEST(test_body_timeout)
{
    char buf[1024];
    int fd;

    worker.conn.body_timeout_ms = 300;
    start_server();
    fd = client();
    /* Chunked: a Content-Length body this small would be pre-read instead. */
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n");
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "%s", buf);
    close(fd);
}
END_TEST

/* A bad chunk inside the body the app reads: the answer is 400, not 500. */
START_TEST(test_bad_chunk_while_reading)
{
    char buf[1024];
    int fd;

    start_server();
    fd = client();
    send_str(
        fd,
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n");
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 400 Bad Request\r\n", 26) == 0, "%s", buf);
    close(fd);
}
END_TEST

/* The unread body of a keep-alive request is drained before the next head. */
START_TEST(test_unread_body_drained)
{
    int fd;

    start_server();
    fd = client();
    send_str(fd, "POST /q?a HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nGET /xPOST /q?b "
                 "HTTP/1.1\r\nHost: x\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n4\r\nGET \r\n0\r\n\r\nGET /q?c "
                 "HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_response(fd, OK_HEAD("1", "keep-alive") "a");
    expect_response(fd, OK_HEAD("1", "keep-alive") "b");
    expect_response(fd, OK_HEAD("1", "keep-alive") "c");
    close(fd);
}
END_TEST

static void
wait_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    ck_assert_int_eq(poll(&p, 1, 5000), 1);
}

/* Without a server thread: IDLE, the deadlines, and partial heads kept across calls. */
START_TEST(test_idle_and_deadlines)
{
    struct qln_poll_waiter pw;
    struct qln_conn *c;
    int64_t before;
    int fd;

    qln_poll_waiter_init(&pw, &worker, NULL);
    ck_assert_int_eq(qln_conn_accept(&worker, lst.fd, &c), -EAGAIN);
    fd = client();
    ck_assert_int_eq(qln_conn_accept(&worker, lst.fd, &c), 0);
    qln_conn_set_data(c, &worker);
    ck_assert_ptr_eq(qln_conn_data(c), &worker);
    ck_assert_int_ge(qln_conn_fd(c), 0);

    before = qln_now_ms();
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_IDLE);
    /* Nothing of a request yet: the keep-alive budget. */
    ck_assert_int_le(qln_conn_deadline(c), qln_now_ms() + 5000);
    ck_assert_int_ge(qln_conn_deadline(c), before - 1000 + 5000);

    worker.conn.keepalive_ms = 1000;
    send_str(fd, "GET /q?part");
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_IDLE);
    /* Part of a head: the head budget (timeout), not the keep-alive one. */
    ck_assert_int_gt(qln_conn_deadline(c), qln_now_ms() + 1000);

    send_str(fd, "ial HTTP/1.1\r\nHost: x\r\n\r\n");
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_IDLE);
    ck_assert_int_le(qln_conn_deadline(c), qln_now_ms() + 1000);
    expect_response(fd, OK_HEAD("7", "keep-alive") "partial");

    close(fd);
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_CLOSED);
    qln_conn_close(c, NULL);
    serve_pool_free(&worker);
    ck_assert_ptr_null(worker.pool);
}
END_TEST

/* A small Content-Length body arrives before the app runs: until then the conn is IDLE. */
START_TEST(test_small_body_preread)
{
    struct qln_poll_waiter pw;
    struct qln_conn *c;
    int fd;

    qln_poll_waiter_init(&pw, &worker, NULL);
    fd = client();
    ck_assert_int_eq(qln_conn_accept(&worker, lst.fd, &c), 0);
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_IDLE);
    /* Still the request's budget (header_timeout), not keep-alive. */
    ck_assert_int_le(qln_conn_deadline(c), qln_now_ms() + 5000);
    send_str(fd, "defg");
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_IDLE);
    send_str(fd, "hij");
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_IDLE);
    expect_response(fd, OK_HEAD("10", "keep-alive") "abcdefghij");
    close(fd);
    wait_readable(qln_conn_fd(c));
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_CLOSED);
    qln_conn_close(c, NULL);
    serve_pool_free(&worker);
}
END_TEST

START_TEST(test_stop_now)
{
    struct qln_poll_waiter pw;
    struct qln_conn *c;
    int fd;

    qln_poll_waiter_init(&pw, &worker, NULL);
    fd = client();
    ck_assert_int_eq(qln_conn_accept(&worker, lst.fd, &c), 0);
    worker.stop = QLN_STOP_NOW;
    send_str(fd, "GET /q?x HTTP/1.1\r\nHost: x\r\n\r\n");
    ck_assert_int_eq(qln_conn_serve(c, &pw.waiter, NULL), QLN_CONN_STOP);
    ck_assert_int_eq(pw.waiter.wait(pw.waiter.ctx, fd, QLN_EV_READ, -1), QLN_WAIT_STOP);
    qln_conn_close(c, &pw.waiter);
    close(fd);
    serve_pool_free(&worker);
}
END_TEST

START_TEST(test_error_page)
{
    static const char status[] = "HTTP/1.1 431 Request Header Fields Too Large\r\nDate: ";
    static const char rest[] = "\r\nConnection: close\r\nContent-Type: text/html\r\n";
    /* An IMF-fixdate (RFC 9110 §5.6.7), as every response carries (§6.6.1). */
    static const char shape[] = "AAA, 00 AAA 0000 00:00:00 GMT";
    char page[512];
    const char *date = page + sizeof(status) - 1;
    size_t body, i;
    size_t n = response_error_page(page, sizeof(page), 431, &body);

    ck_assert_uint_eq(n, strlen(page));
    ck_assert(strncmp(page, status, sizeof(status) - 1) == 0);
    for (i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'A')
            ck_assert_msg(isalpha((unsigned char)date[i]), "Date: %.29s", date);
        else if (shape[i] == '0')
            ck_assert_msg(isdigit((unsigned char)date[i]), "Date: %.29s", date);
        else
            ck_assert_msg(date[i] == shape[i], "Date: %.29s", date);
    }
    ck_assert(strncmp(date + sizeof(shape) - 1, rest, sizeof(rest) - 1) == 0);
    ck_assert_uint_eq(strlen(strstr(page, "\r\n\r\n") + 4), body);
    ck_assert_ptr_nonnull(strstr(page, "<title>Request Header Fields Too Large</title>"));
}
END_TEST

static void
set(struct config *cfg, const char *name, const char *value)
{
    char err[256];

    ck_assert_msg(config_set(cfg, name, value, CONFIG_SRC_CLI, "test", err, sizeof(err)) == 0, "%s",
                  err);
}

START_TEST(test_settings_load)
{
    struct config *cfg = config_new();
    struct conn_settings s;
    char err[256];

    ck_assert_msg(config_register(cfg, core_options, "core", err, sizeof(err)) == 0, "%s", err);
    conn_settings_load(&s, cfg);
    /* gunicorn's defaults, in milliseconds */
    ck_assert_int_eq(s.keepalive_ms, 2000);
    ck_assert_int_eq(s.timeout_ms, 30000);
    ck_assert_uint_eq(s.limit_request_line, 4094);
    ck_assert_uint_eq(s.limit_request_fields, 100);
    ck_assert_uint_eq(s.limit_request_field_size, 8190);
    ck_assert_str_eq(s.server_header, "qilin");

    set(cfg, "keepalive", "0");
    set(cfg, "timeout", "0");
    set(cfg, "limit_request_line", "0");
    set(cfg, "limit_request_field_size", "0");
    set(cfg, "server_header", "");
    conn_settings_load(&s, cfg);
    ck_assert_int_eq(s.keepalive_ms, 0);
    ck_assert_int_eq(s.timeout_ms, 0);
    ck_assert_uint_eq(s.limit_request_line, 8190);
    ck_assert_uint_eq(s.limit_request_field_size, 8190);
    ck_assert_str_eq(s.server_header, "");
    config_free(cfg);
}
END_TEST

/* Part of a head, then silence: 408 once header_timeout passes, then close. */
START_TEST(test_head_timeout_408)
{
    char buf[1024];
    int fd;

    worker.conn.header_timeout_ms = 300;
    start_server();
    fd = client();
    send_str(fd, "GET /q?slow HTTP/1.1\r\nHost: x\r\n");
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
    close(fd);
}
END_TEST

/* A connection that never sends a byte is closed without an answer. */
START_TEST(test_head_timeout_silent)
{
    char buf[1024];
    int fd;

    worker.conn.header_timeout_ms = 300;
    worker.conn.keepalive_ms = 300;
    start_server();
    fd = client();
    ck_assert_uint_eq(read_all(fd, buf, sizeof(buf)), 0);
    close(fd);
}
END_TEST

/* The timeout counts from the head's first byte: trickling bytes does not extend it. */
START_TEST(test_head_timeout_trickle)
{
    char buf[1024];
    int fd, i;

    worker.conn.header_timeout_ms = 400;
    start_server();
    fd = client();
    send_str(fd, "GET /q?trickle HTTP/1.1\r\nHost: x\r\n");
    for (i = 0; i < 8; i++) {
        if (send(fd, "X-A: b\r\n", 8, MSG_NOSIGNAL) < 0)
            break;
        usleep(100 * 1000);
    }
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 408 ", 13) == 0, "%s", buf);
    close(fd);
}
END_TEST

/* A declared Content-Length over the limit is refused before the app runs. */
START_TEST(test_limit_body_content_length)
{
    char buf[1024];
    int fd;

    worker.conn.limit_request_body = 5;
    start_server();
    fd = client();
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nabcdef");
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 413 ", 13) == 0, "%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "Connection: close\r\n"));
    close(fd);

    fd = client();
    send_str(
        fd,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde");
    expect_response(fd, OK_HEAD("5", "close") "abcde");
    close(fd);
}
END_TEST

/* A chunked body is cut off when its running total passes the limit. */
START_TEST(test_limit_body_chunked)
{
    char buf[1024];
    int fd;

    worker.conn.limit_request_body = 5;
    start_server();
    fd = client();
    send_str(fd, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n");
    read_all(fd, buf, sizeof(buf));
    ck_assert_msg(strncmp(buf, "HTTP/1.1 413 ", 13) == 0, "%s", buf);
    close(fd);

    fd = client();
    send_str(fd,
             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
             "\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    expect_response(fd, OK_HEAD("5", "close") "abcde");
    close(fd);
}
END_TEST

START_TEST(test_settings_timeouts)
{
    struct config *cfg = config_new();
    struct conn_settings s;
    char err[256];

    ck_assert_msg(config_register(cfg, core_options, "core", err, sizeof(err)) == 0, "%s", err);
    set(cfg, "timeout", "7");
    conn_settings_load(&s, cfg);
    /* Unset: both follow --timeout; the body is unlimited. */
    ck_assert_int_eq(s.header_timeout_ms, 7000);
    ck_assert_int_eq(s.body_timeout_ms, 7000);
    ck_assert_int_eq(s.limit_request_body, 0);

    set(cfg, "header_timeout", "3");
    set(cfg, "body_timeout", "0");
    set(cfg, "limit_request_body", "1048576");
    conn_settings_load(&s, cfg);
    ck_assert_int_eq(s.header_timeout_ms, 3000);
    ck_assert_int_eq(s.body_timeout_ms, 0);
    ck_assert_int_eq(s.limit_request_body, 1048576);
    config_free(cfg);
}
END_TEST

/* The per-connection formatters agree with inet_ntop(3) and printf. */
START_TEST(test_peer_formatting)
{
    static const char *addrs[] = {"0.0.0.0",         "127.0.0.1", "10.20.30.40",  "192.168.100.9",
                                  "255.255.255.255", "1.2.3.4",   "203.0.113.250"};
    static const uint64_t nums[] = {0, 7, 9, 10, 99, 100, 8000, 65535, 4294967296ULL, UINT64_MAX};
    char ours[UTIL_U64_LEN], want[32];
    struct in_addr in;
    size_t i;

    for (i = 0; i < ARRAY_SIZE(addrs); i++) {
        ck_assert_int_eq(inet_pton(AF_INET, addrs[i], &in), 1);
        ck_assert_uint_eq(util_format_ipv4(ours, &in), strlen(addrs[i]));
        ck_assert_str_eq(ours, addrs[i]);
    }
    for (i = 0; i < ARRAY_SIZE(nums); i++) {
        snprintf(want, sizeof(want), "%llu", (unsigned long long)nums[i]);
        ck_assert_uint_eq(util_format_u64(ours, nums[i]), strlen(want));
        ck_assert_str_eq(ours, want);
    }
}
END_TEST

static Suite *
conn_suite(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("serve");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_peer_formatting);
    tcase_add_test(tc, test_simple_keepalive);
    tcase_add_test(tc, test_pipelined_in_order);
    tcase_add_test(tc, test_chunked_request_echo);
    tcase_add_test(tc, test_large_body_echo);
    tcase_add_test(tc, test_expect_continue);
    tcase_add_test(tc, test_expect_continue_unread);
    tcase_add_test(tc, test_head_without_body);
    tcase_add_test(tc, test_http10_close);
    tcase_add_test(tc, test_http10_keepalive);
    tcase_add_test(tc, test_chunked_response);
    tcase_add_test(tc, test_app_error_500_then_new_connection);
    tcase_add_test(tc, test_no_response_is_500);
    tcase_add_test(tc, test_bad_app_header_is_500);
    tcase_add_test(tc, test_fail_after_head_closes);
    tcase_add_test(tc, test_short_content_length_closes);
    tcase_add_test(tc, test_long_body_cut);
    tcase_add_test(tc, test_hop_by_hop_dropped);
    tcase_add_test(tc, test_204_has_no_body);
    tcase_add_test(tc, test_restart_and_already_sent);
    tcase_add_test(tc, test_big_response_waits_for_client);
    tcase_add_test(tc, test_sendfile);
    tcase_add_test(tc, test_peer_and_server_names);
    tcase_add_test(tc, test_bad_requests_answered);
    tcase_add_test(tc, test_limits_on_the_wire);
    tcase_add_test(tc, test_stopping_closes_after_response);
    tcase_add_test(tc, test_keepalive_zero_closes);
    tcase_add_test(tc, test_body_timeout);
    tcase_add_test(tc, test_head_timeout_408);
    tcase_add_test(tc, test_small_body_preread);
    tcase_add_test(tc, test_head_timeout_silent);
    tcase_add_test(tc, test_head_timeout_trickle);
    tcase_add_test(tc, test_limit_body_content_length);
    tcase_add_test(tc, test_limit_body_chunked);
    tcase_add_test(tc, test_bad_chunk_while_reading);
    tcase_add_test(tc, test_unread_body_drained);
    tcase_add_test(tc, test_idle_and_deadlines);
    tcase_add_test(tc, test_stop_now);
    tcase_add_test(tc, test_error_page);
    tcase_add_test(tc, test_settings_load);
    tcase_add_test(tc, test_settings_timeouts);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(conn_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
