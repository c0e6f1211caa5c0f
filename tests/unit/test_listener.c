/*
 * Unit tests for core/listener.c: gunicorn's bind grammar (table-driven),
 * binding TCP and unix sockets, "address in use", stale unix sockets and
 * inherited fd://N descriptors.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <check.h>

#include "core/listener.h"

struct parse_case {
    const char *spec;
    int rc;
    enum listener_kind kind;
    const char *host;
    const char *port;
    int fd;
};

static const struct parse_case parse_cases[] = {
    {"127.0.0.1:8000", 0, LISTENER_TCP, "127.0.0.1", "8000", -1},
    {"127.0.0.1", 0, LISTENER_TCP, "127.0.0.1", "8000", -1},
    {"", 0, LISTENER_TCP, "0.0.0.0", "8000", -1},
    {":9000", 0, LISTENER_TCP, "0.0.0.0", "9000", -1},
    {"LocalHost:80", 0, LISTENER_TCP, "localhost", "80", -1},
    {"tcp://10.0.0.1:81", 0, LISTENER_TCP, "10.0.0.1", "81", -1},
    {"[::1]:8080", 0, LISTENER_TCP, "::1", "8080", -1},
    {"[::]", 0, LISTENER_TCP, "::", "8000", -1},
    {"example.com:0", 0, LISTENER_TCP, "example.com", "0", -1},
    {"unix:/run/app.sock", 0, LISTENER_UNIX, "/run/app.sock", "", -1},
    {"unix:///run/app.sock", 0, LISTENER_UNIX, "/run/app.sock", "", -1},
    {"unix:relative.sock", 0, LISTENER_UNIX, "relative.sock", "", -1},
    {"fd://3", 0, LISTENER_FD, "", "", 3},
    {"127.0.0.1:http", -EINVAL, 0, NULL, NULL, -1},
    {"127.0.0.1:", -EINVAL, 0, NULL, NULL, -1},
    {"127.0.0.1:65536", -EINVAL, 0, NULL, NULL, -1},
    {"127.0.0.1:-1", -EINVAL, 0, NULL, NULL, -1},
    {"::1:8000", -EINVAL, 0, NULL, NULL, -1},
    {"[::1", -EINVAL, 0, NULL, NULL, -1},
    {"[::1]8000", -EINVAL, 0, NULL, NULL, -1},
    {"unix:", -EINVAL, 0, NULL, NULL, -1},
    {"fd://", -EINVAL, 0, NULL, NULL, -1},
    {"fd://x", -EINVAL, 0, NULL, NULL, -1},
    {"fd://-2", -EINVAL, 0, NULL, NULL, -1},
};

START_TEST(parse_table)
{
    const struct parse_case *c = &parse_cases[_i];
    struct listener_spec ls;
    char err[256] = "";
    int rc = listener_parse(c->spec, &ls, err, sizeof(err));

    ck_assert_msg(rc == c->rc, "'%s': rc %d, expected %d (%s)", c->spec, rc, c->rc, err);
    if (rc != 0) {
        ck_assert_msg(err[0] != '\0', "'%s': no error text", c->spec);
        return;
    }
    ck_assert_int_eq(ls.kind, c->kind);
    if (c->kind == LISTENER_FD) {
        ck_assert_int_eq(ls.fd, c->fd);
        return;
    }
    ck_assert_str_eq(ls.host, c->host);
    if (c->kind == LISTENER_TCP)
        ck_assert_str_eq(ls.port, c->port);
}
END_TEST

START_TEST(parse_errors_name_the_value)
{
    struct listener_spec ls;
    char err[256];

    ck_assert_int_eq(listener_parse("127.0.0.1:abc", &ls, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'abc' is not a valid port number"));
    ck_assert_int_eq(listener_parse("fd://x", &ls, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "'x' is not a valid file descriptor"));
    ck_assert_int_eq(listener_parse("::1:80", &ls, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "brackets"));
}
END_TEST

static int
bound_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    return ntohs(sin.sin_port);
}

START_TEST(tcp_ephemeral_port_is_reported)
{
    struct listener l;
    char err[256] = "", url[64];
    int port;

    ck_assert_int_eq(listener_open(&l, "127.0.0.1:0", 16, false, err, sizeof(err)), 0);
    ck_assert_int_ge(l.fd, 0);
    ck_assert(!l.is_unix);
    port = bound_port(l.fd);
    ck_assert_int_gt(port, 0);
    ck_assert_int_eq(atoi(l.port), port);
    ck_assert_str_eq(l.host, "127.0.0.1");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
    ck_assert_str_eq(l.url, url);
    ck_assert(fcntl(l.fd, F_GETFL) & O_NONBLOCK);
    ck_assert(fcntl(l.fd, F_GETFD) & FD_CLOEXEC);
    listener_close(&l, true);
    ck_assert_int_eq(l.fd, -1);
}
END_TEST

/* Connects to the TCP listener LFD and returns TCP_NODELAY of the accepted socket. */
static int
accepted_nodelay(int lfd)
{
    struct sockaddr_in sin;
    socklen_t ol;
    int c, s, on = -1;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)bound_port(lfd));
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
    s = accept(lfd, NULL, NULL);
    ck_assert_int_ge(s, 0);
    ol = sizeof(on);
    ck_assert_int_eq(getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, &ol), 0);
    close(s);
    close(c);
    return on;
}

/* Accepted connections inherit TCP_NODELAY from the listener, which is
   why qln_conn_accept sets nothing per connection. */
START_TEST(tcp_accepts_connections)
{
    struct listener l;
    char err[256] = "";

    ck_assert_int_eq(listener_open(&l, "127.0.0.1:0", 16, false, err, sizeof(err)), 0);
    ck_assert_int_eq(accepted_nodelay(l.fd), 1);
    listener_close(&l, true);
}
END_TEST

START_TEST(tcp_address_in_use)
{
    struct listener a, b;
    char err[256] = "", spec[64], want[80];

    ck_assert_int_eq(listener_open(&a, "127.0.0.1:0", 16, false, err, sizeof(err)), 0);
    snprintf(spec, sizeof(spec), "127.0.0.1:%s", a.port);
    ck_assert_int_eq(listener_open(&b, spec, 16, false, err, sizeof(err)), -EADDRINUSE);
    snprintf(want, sizeof(want), "Connection in use: ('127.0.0.1', %s)", a.port);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(b.fd, -1);
    listener_close(&a, true);
}
END_TEST

START_TEST(tcp_reuse_port_allows_two)
{
    struct listener a, b;
    char err[256] = "", spec[64];

    ck_assert_int_eq(listener_open(&a, "127.0.0.1:0", 16, true, err, sizeof(err)), 0);
    snprintf(spec, sizeof(spec), "127.0.0.1:%s", a.port);
    ck_assert_msg(listener_open(&b, spec, 16, true, err, sizeof(err)) == 0, "%s", err);
    listener_close(&b, true);
    listener_close(&a, true);
}
END_TEST

START_TEST(ipv6_url_has_brackets)
{
    struct listener l;
    char err[256] = "";

    if (listener_open(&l, "[::1]:0", 16, false, err, sizeof(err)) != 0)
        return; /* no IPv6 loopback in this sandbox */
    ck_assert_str_eq(l.host, "::1");
    ck_assert(strncmp(l.url, "http://[::1]:", 13) == 0);
    listener_close(&l, true);
}
END_TEST

static void
temp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "/tmp/qln-test-listener-%d-%s", (int)getpid(), name);
    unlink(buf);
}

START_TEST(unix_bind_and_unlink)
{
    struct listener l;
    struct stat st;
    char path[108], spec[128], err[256] = "", url[140];

    temp_path(path, sizeof(path), "a.sock");
    snprintf(spec, sizeof(spec), "unix:%s", path);
    ck_assert_int_eq(listener_open(&l, spec, 16, false, err, sizeof(err)), 0);
    ck_assert(l.is_unix);
    ck_assert_str_eq(l.host, path);
    snprintf(url, sizeof(url), "unix:%s", path);
    ck_assert_str_eq(l.url, url);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    listener_close(&l, true);
    ck_assert_int_eq(lstat(path, &st), -1);
}
END_TEST

START_TEST(unix_stale_socket_is_replaced)
{
    struct listener l;
    struct sockaddr_un sun;
    char path[108], spec[128], err[256] = "";
    int fd;

    temp_path(path, sizeof(path), "stale.sock");
    /* A socket file nobody listens on: what a crashed server leaves behind. */
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    snprintf(spec, sizeof(spec), "unix:%s", path);
    ck_assert_msg(listener_open(&l, spec, 16, false, err, sizeof(err)) == 0, "%s", err);
    listener_close(&l, true);
}
END_TEST

START_TEST(unix_live_socket_is_in_use)
{
    struct listener a, b;
    char path[108], spec[128], err[256] = "", want[160];
    struct stat st;

    temp_path(path, sizeof(path), "live.sock");
    snprintf(spec, sizeof(spec), "unix:%s", path);
    ck_assert_int_eq(listener_open(&a, spec, 16, false, err, sizeof(err)), 0);
    ck_assert_int_eq(listener_open(&b, spec, 16, false, err, sizeof(err)), -EADDRINUSE);
    snprintf(want, sizeof(want), "Connection in use: %s", path);
    ck_assert_str_eq(err, want);
    /* The live server's socket file must survive the failed attempt. */
    ck_assert_int_eq(lstat(path, &st), 0);
    listener_close(&a, true);
}
END_TEST

START_TEST(unix_regular_file_is_refused)
{
    struct listener l;
    char path[108], spec[128], err[256] = "";
    int fd;

    temp_path(path, sizeof(path), "file");
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    close(fd);
    snprintf(spec, sizeof(spec), "unix:%s", path);
    ck_assert_int_eq(listener_open(&l, spec, 16, false, err, sizeof(err)), -EEXIST);
    ck_assert_ptr_nonnull(strstr(err, "is not a socket"));
    ck_assert_int_eq(access(path, F_OK), 0);
    unlink(path);
}
END_TEST

START_TEST(fd_inherited_tcp)
{
    struct listener owner, l;
    char err[256] = "", spec[32];

    ck_assert_int_eq(listener_open(&owner, "127.0.0.1:0", 16, false, err, sizeof(err)), 0);
    snprintf(spec, sizeof(spec), "fd://%d", owner.fd);
    ck_assert_msg(listener_open(&l, spec, 16, false, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(l.fd, owner.fd);
    ck_assert(l.inherited);
    ck_assert_str_eq(l.url, owner.url);
    listener_close(&l, true);
}
END_TEST

/* A socket from systemd or a parent need not have TCP_NODELAY: adopting it sets it. */
START_TEST(fd_inherited_tcp_gets_nodelay)
{
    struct listener l;
    struct sockaddr_in sin;
    char err[256] = "", spec[32];
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    snprintf(spec, sizeof(spec), "fd://%d", fd);
    ck_assert_msg(listener_open(&l, spec, 16, false, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(accepted_nodelay(l.fd), 1);
    listener_close(&l, true);
}
END_TEST

START_TEST(fd_inherited_unix_is_not_unlinked)
{
    struct listener owner, l;
    char path[108], spec[128], err[256] = "";

    temp_path(path, sizeof(path), "fd.sock");
    snprintf(spec, sizeof(spec), "unix:%s", path);
    ck_assert_int_eq(listener_open(&owner, spec, 16, false, err, sizeof(err)), 0);
    snprintf(spec, sizeof(spec), "fd://%d", owner.fd);
    ck_assert_msg(listener_open(&l, spec, 16, false, err, sizeof(err)) == 0, "%s", err);
    ck_assert(l.is_unix);
    ck_assert_str_eq(l.host, path);
    listener_close(&l, true);
    ck_assert_int_eq(access(path, F_OK), 0);
    unlink(path);
}
END_TEST

START_TEST(fd_not_a_socket)
{
    struct listener l;
    char err[256] = "", spec[32];
    int fd = open("/dev/null", O_RDONLY);

    snprintf(spec, sizeof(spec), "fd://%d", fd);
    ck_assert_int_eq(listener_open(&l, spec, 16, false, err, sizeof(err)), -ENOTSOCK);
    ck_assert_ptr_nonnull(strstr(err, "is not a stream socket"));
    close(fd);
}
END_TEST

static Suite *
listener_suite(void)
{
    Suite *s = suite_create("listener");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, parse_table, 0, (int)(sizeof(parse_cases) / sizeof(parse_cases[0])));
    tcase_add_test(tc, parse_errors_name_the_value);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("open");
    tcase_add_test(tc, tcp_ephemeral_port_is_reported);
    tcase_add_test(tc, tcp_accepts_connections);
    tcase_add_test(tc, fd_inherited_tcp_gets_nodelay);
    tcase_add_test(tc, tcp_address_in_use);
    tcase_add_test(tc, tcp_reuse_port_allows_two);
    tcase_add_test(tc, ipv6_url_has_brackets);
    tcase_add_test(tc, unix_bind_and_unlink);
    tcase_add_test(tc, unix_stale_socket_is_replaced);
    tcase_add_test(tc, unix_live_socket_is_in_use);
    tcase_add_test(tc, unix_regular_file_is_refused);
    tcase_add_test(tc, fd_inherited_tcp);
    tcase_add_test(tc, fd_inherited_unix_is_not_unlinked);
    tcase_add_test(tc, fd_not_a_socket);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(listener_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
