/*
 * Unit tests for core/transport.c, the plain-socket transport: reads,
 * writes, sendfile, shutdown and close on a non-blocking socket, each run
 * over a unix socketpair and over a TCP connection on 127.0.0.1 (where
 * MSG_MORE corks short segments). The peer is a plain socket the test
 * reads and writes itself.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <check.h>

#include <qilin/worker.h>

#include "core/transport.h"

enum pair_kind { PAIR_UNIX, PAIR_TCP, PAIR_KINDS };

/* A connected pair: FD for the transport, PEER for the test; both non-blocking. */
struct pair {
    int fd;
    int peer;
};

static struct pair
pair_open(enum pair_kind kind)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    struct pair p;
    int lfd, sv[2];

    if (kind == PAIR_UNIX) {
        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
        p.fd = sv[0];
        p.peer = sv[1];
        return p;
    }
    /* Port 0: the kernel picks a free ephemeral port. */
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(lfd, 0);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(lfd, 1), 0);
    ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
    p.peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(p.peer, 0);
    ck_assert_int_eq(connect(p.peer, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(fcntl(p.peer, F_SETFL, O_NONBLOCK), 0);
    p.fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ck_assert_int_ge(p.fd, 0);
    close(lfd);
    return p;
}

/* Waits for EVENTS on FD; 0 waits for POLLERR/POLLHUP only. Fails the test after 5 s. */
static short
wait_fd(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};

    ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
    return pfd.revents;
}

/* Reads exactly LEN bytes from the peer, failing on an early end of stream. */
static void
peer_read_exact(int peer, char *buf, size_t len)
{
    size_t got = 0;
    ssize_t n;

    while (got < len) {
        wait_fd(peer, POLLIN);
        n = read(peer, buf + got, len - got);
        ck_assert_msg(n > 0, "peer read %zd (%s) after %zu of %zu bytes", n,
                      n < 0 ? strerror(errno) : "EOF", got, len);
        got += (size_t)n;
    }
}

/* Asserts that nothing more is queued for the peer. */
static void
peer_read_nothing(int peer)
{
    char c;

    ck_assert_int_eq(read(peer, &c, 1), -1);
    ck_assert_int_eq(errno, EAGAIN);
}

/* The byte at position I of every stream the tests write. */
static char
pattern(size_t i)
{
    return (char)('a' + i % 23);
}

static void
fill_pattern(char *buf, size_t len, size_t from)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pattern(from + i);
}

/* Writes through T until its socket buffer is full (-EAGAIN). */
static void
fill_socket(struct transport *t, int peer)
{
    static char chunk[64 * 1024];
    int small = 64 * 1024;
    struct iovec iov = {chunk, sizeof(chunk)};
    size_t total = 0;
    ssize_t n;

    /* Small fixed buffers turn off TCP autotuning, so this ends in kilobytes. */
    setsockopt(t->fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    t->want = 0;
    while ((n = transport_writev(t, &iov, 1, false)) > 0) {
        total += (size_t)n;
        ck_assert_uint_lt(total, 64u * 1024 * 1024);
    }
    ck_assert_int_eq(n, -EAGAIN);
    ck_assert_uint_eq(t->want, QLN_EV_WRITE);
}

/* A temporary file of LEN pattern bytes, unlinked; returns the open fd. */
static int
temp_file(size_t len)
{
    static char buf[256 * 1024];
    char path[] = "/tmp/qilin-test-transport-XXXXXX";
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    unlink(path);
    ck_assert_uint_le(len, sizeof(buf));
    fill_pattern(buf, len, 0);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    return fd;
}

/* ------------------------------------------------------------------- read */

START_TEST(test_read_returns_bytes)
{
    struct pair p = pair_open(_i);
    struct transport t;
    char buf[16];

    transport_plain_init(&t, p.fd);
    ck_assert_str_eq(t.ops->name, "plain");
    ck_assert_int_eq(write(p.peer, "hello", 5), 5);
    wait_fd(t.fd, POLLIN);
    ck_assert_int_eq(transport_read(&t, buf, sizeof(buf)), 5);
    ck_assert_mem_eq(buf, "hello", 5);
}
END_TEST

START_TEST(test_read_empty_wants_read)
{
    struct pair p = pair_open(_i);
    struct transport t;
    char buf[16];

    transport_plain_init(&t, p.fd);
    t.want = QLN_EV_WRITE;
    ck_assert_int_eq(transport_read(&t, buf, sizeof(buf)), -EAGAIN);
    ck_assert_uint_eq(t.want, QLN_EV_READ);
}
END_TEST

START_TEST(test_read_after_peer_closed)
{
    struct pair p = pair_open(_i);
    struct transport t;
    char buf[16];

    transport_plain_init(&t, p.fd);
    ck_assert_int_eq(write(p.peer, "bye", 3), 3);
    close(p.peer);
    wait_fd(t.fd, POLLIN);
    ck_assert_int_eq(transport_read(&t, buf, sizeof(buf)), 3);
    ck_assert_int_eq(transport_read(&t, buf, sizeof(buf)), 0);
}
END_TEST

/* ----------------------------------------------------------------- writev */

START_TEST(test_writev_whole)
{
    struct pair p = pair_open(_i);
    struct transport t;
    struct iovec iov[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
    char buf[8];

    transport_plain_init(&t, p.fd);
    ck_assert_int_eq(transport_writev(&t, iov, 3, false), 8);
    peer_read_exact(p.peer, buf, 8);
    ck_assert_mem_eq(buf, "abcdefgh", 8);
    peer_read_nothing(p.peer);
}
END_TEST

/* More than the socket takes at once: a prefix goes, and the peer sees exactly it. */
START_TEST(test_writev_prefix)
{
    static char src[3][1024 * 1024], got[3 * 1024 * 1024];
    struct pair p = pair_open(_i);
    struct transport t;
    struct iovec iov[3];
    int small = 64 * 1024;
    ssize_t n;

    for (size_t k = 0; k < 3; k++) {
        fill_pattern(src[k], sizeof(src[k]), k * sizeof(src[k]));
        iov[k] = (struct iovec){src[k], sizeof(src[k])};
    }
    setsockopt(p.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    setsockopt(p.peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    transport_plain_init(&t, p.fd);
    n = transport_writev(&t, iov, 3, false);
    ck_assert_int_gt(n, 0);
    ck_assert_int_lt(n, (ssize_t)sizeof(src));
    peer_read_exact(p.peer, got, (size_t)n);
    for (size_t i = 0; i < (size_t)n; i++)
        ck_assert_msg(got[i] == pattern(i), "byte %zu of %zd", i, n);
    peer_read_nothing(p.peer);
}
END_TEST

/* An iovec longer than IOV_MAX: the transport sends the first IOV_MAX and says so. */
START_TEST(test_writev_many_elements)
{
    static char src[2 * IOV_MAX], got[2 * IOV_MAX];
    static struct iovec iov[2 * IOV_MAX];
    struct pair p = pair_open(_i);
    struct transport t;
    ssize_t n;

    fill_pattern(src, sizeof(src), 0);
    for (size_t k = 0; k < 2 * IOV_MAX; k++)
        iov[k] = (struct iovec){src + k, 1};
    transport_plain_init(&t, p.fd);
    n = transport_writev(&t, iov, 2 * IOV_MAX, false);
    ck_assert_int_eq(n, IOV_MAX);
    peer_read_exact(p.peer, got, (size_t)n);
    ck_assert_mem_eq(got, src, (size_t)n);
    peer_read_nothing(p.peer);
}
END_TEST

START_TEST(test_writev_full_wants_write)
{
    struct pair p = pair_open(_i);
    struct transport t;
    struct iovec iov = {"x", 1};

    transport_plain_init(&t, p.fd);
    fill_socket(&t, p.peer);
    t.want = QLN_EV_READ;
    ck_assert_int_eq(transport_writev(&t, &iov, 1, false), -EAGAIN);
    ck_assert_uint_eq(t.want, QLN_EV_WRITE);
}
END_TEST

START_TEST(test_writev_after_peer_closed)
{
    struct pair p = pair_open(_i);
    struct transport t;
    struct iovec iov = {"late", 4};
    char buf[4];
    ssize_t n;

    /* Default SIGPIPE: were the transport to raise it, this test would die of it. */
    signal(SIGPIPE, SIG_DFL);
    transport_plain_init(&t, p.fd);
    close(p.peer);
    wait_fd(t.fd, POLLIN);
    ck_assert_int_eq(transport_read(&t, buf, sizeof(buf)), 0);
    /*
     * A unix socket knows at once that the peer is gone. TCP knows only
     * the peer's FIN: the first write goes out and the peer's kernel
     * answers it with a RST, which ends the connection here (POLLHUP).
     */
    n = transport_writev(&t, &iov, 1, false);
    if (_i == PAIR_TCP && n > 0) {
        wait_fd(t.fd, 0);
        n = transport_writev(&t, &iov, 1, false);
    }
    ck_assert_int_eq(n, -EPIPE);
}
END_TEST

/* MSG_MORE may hold a short segment back; the bytes still arrive, in order. */
START_TEST(test_writev_more_then_last)
{
    struct pair p = pair_open(_i);
    struct transport t;
    struct iovec head[2] = {{"HTTP/1.1 200 OK\r\n", 17}, {"Content-Length: 2\r\n\r\n", 21}};
    struct iovec body = {"hi", 2};
    char buf[40];

    transport_plain_init(&t, p.fd);
    ck_assert_int_eq(transport_writev(&t, head, 2, true), 38);
    ck_assert_int_eq(transport_writev(&t, &body, 1, false), 2);
    peer_read_exact(p.peer, buf, 40);
    ck_assert_mem_eq(buf, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 40);
}
END_TEST

/* Corked bytes are not lost when the output ends right after them. */
START_TEST(test_writev_more_then_shutdown)
{
    struct pair p = pair_open(_i);
    struct transport t;
    struct iovec iov = {"tail", 4};
    char buf[4];

    transport_plain_init(&t, p.fd);
    ck_assert_int_eq(transport_writev(&t, &iov, 1, true), 4);
    transport_shutdown(&t);
    peer_read_exact(p.peer, buf, 4);
    ck_assert_mem_eq(buf, "tail", 4);
    wait_fd(p.peer, POLLIN);
    ck_assert_int_eq(read(p.peer, buf, sizeof(buf)), 0);
}
END_TEST

/* --------------------------------------------------------------- sendfile */

START_TEST(test_sendfile)
{
    static char want[100 * 1024], got[100 * 1024];
    struct pair p = pair_open(_i);
    struct transport t;
    int fd = temp_file(sizeof(want));
    off_t off = 10;
    ssize_t n;

    fill_pattern(want, sizeof(want), 0);
    transport_plain_init(&t, p.fd);
    n = transport_sendfile(&t, fd, &off, 1000);
    ck_assert_int_eq(n, 1000);
    ck_assert_int_eq(off, 1010);
    peer_read_exact(p.peer, got, 1000);
    ck_assert_mem_eq(got, want + 10, 1000);

    /* The rest: the kernel may take less than asked, and OFF says how far it got. */
    while (off < (off_t)sizeof(want)) {
        off_t before = off;

        n = transport_sendfile(&t, fd, &off, sizeof(want) - (size_t)off);
        if (n == -EAGAIN) {
            ck_assert_uint_eq(t.want, QLN_EV_WRITE);
            wait_fd(t.fd, POLLOUT);
            continue;
        }
        ck_assert_int_gt(n, 0);
        ck_assert_int_eq(off, before + n);
        peer_read_exact(p.peer, got, (size_t)n);
        ck_assert_mem_eq(got, want + before, (size_t)n);
    }
    peer_read_nothing(p.peer);

    /* At the end of the file: 0, the file ended early. */
    ck_assert_int_eq(transport_sendfile(&t, fd, &off, 100), 0);
    ck_assert_int_eq(off, (off_t)sizeof(want));
    close(fd);
}
END_TEST

START_TEST(test_sendfile_full_wants_write)
{
    struct pair p = pair_open(_i);
    struct transport t;
    int fd = temp_file(4096);
    off_t off = 0;

    transport_plain_init(&t, p.fd);
    fill_socket(&t, p.peer);
    t.want = QLN_EV_READ;
    ck_assert_int_eq(transport_sendfile(&t, fd, &off, 4096), -EAGAIN);
    ck_assert_uint_eq(t.want, QLN_EV_WRITE);
    ck_assert_int_eq(off, 0);
    close(fd);
}
END_TEST

/*
 * What sendfile(2) itself says for SRC at offset 0: 0 when it sent bytes,
 * else its errno. The transport maps EINVAL and ENOSYS, the kernel's "this
 * file cannot feed sendfile", to -ENOTSUP and passes any other error on.
 */
static int
kernel_sendfile_errno(int src)
{
    struct pair p = pair_open(PAIR_UNIX);
    off_t off = 0;
    int err;

    err = sendfile(p.fd, src, &off, 16) >= 0 ? 0 : errno;
    close(p.fd);
    close(p.peer);
    return err;
}

static void
assert_mapped(int src, const char *what)
{
    struct pair p = pair_open(PAIR_UNIX);
    struct transport t;
    off_t off = 0;
    int err = kernel_sendfile_errno(src);
    ssize_t want;

    if (err == 0)
        return; /* this kernel can send from it: nothing to map */
    want = err == EINVAL || err == ENOSYS ? -ENOTSUP : -err;
    transport_plain_init(&t, p.fd);
    ck_assert_msg(transport_sendfile(&t, src, &off, 16) == want,
                  "%s: the kernel says %s, the transport should return %zd", what, strerror(err),
                  want);
    ck_assert_int_eq(off, 0);
    peer_read_nothing(p.peer);
}

/*
 * A pipe as the source. Linux refuses an offset on a pipe before it looks
 * at the file (ESPIPE, passed on as is); kernels that check the file first
 * say EINVAL, which must come back as -ENOTSUP.
 */
START_TEST(test_sendfile_from_pipe)
{
    int fds[2];

    ck_assert_int_eq(pipe(fds), 0);
    ck_assert_int_eq(write(fds[1], "piped", 5), 5);
    assert_mapped(fds[0], "pipe");
}
END_TEST

/*
 * A /proc file, the kind transport.c names: sendfile(2) refuses it, and the
 * transport must say -ENOTSUP so that the caller falls back to read and
 * writev. A kernel that can send it leaves nothing to check.
 */
START_TEST(test_sendfile_from_proc_is_notsup)
{
    struct pair p = pair_open(PAIR_UNIX);
    struct transport t;
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    off_t off = 0;

    ck_assert_int_ge(fd, 0);
    if (kernel_sendfile_errno(fd) == 0)
        return;
    transport_plain_init(&t, p.fd);
    ck_assert_int_eq(transport_sendfile(&t, fd, &off, 16), -ENOTSUP);
    ck_assert_int_eq(off, 0);
    peer_read_nothing(p.peer);
    close(fd);
}
END_TEST

/* A transport without sendfile (TLS without kernel TLS) says -ENOTSUP. */
START_TEST(test_sendfile_null_op)
{
    struct pair p = pair_open(_i);
    struct transport t;
    struct transport_ops ops;
    int fd = temp_file(64);
    off_t off = 0;

    transport_plain_init(&t, p.fd);
    ops = *t.ops;
    ops.sendfile = NULL;
    t.ops = &ops;
    ck_assert_int_eq(transport_sendfile(&t, fd, &off, 64), -ENOTSUP);
    ck_assert_int_eq(off, 0);
    peer_read_nothing(p.peer);
    close(fd);
}
END_TEST

/* ------------------------------------------------------- shutdown, close */

START_TEST(test_shutdown_keeps_reading)
{
    struct pair p = pair_open(_i);
    struct transport t;
    char buf[16];

    transport_plain_init(&t, p.fd);
    transport_shutdown(&t);
    wait_fd(p.peer, POLLIN);
    ck_assert_int_eq(read(p.peer, buf, sizeof(buf)), 0);

    ck_assert_int_eq(write(p.peer, "after", 5), 5);
    wait_fd(t.fd, POLLIN);
    ck_assert_int_eq(transport_read(&t, buf, sizeof(buf)), 5);
    ck_assert_mem_eq(buf, "after", 5);
}
END_TEST

START_TEST(test_close)
{
    struct pair p = pair_open(_i);
    struct transport t;
    int fd = p.fd;
    char c;

    transport_plain_init(&t, p.fd);
    transport_close(&t);
    ck_assert_int_eq(t.fd, -1);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
    ck_assert_int_eq(errno, EBADF);
    wait_fd(p.peer, POLLIN);
    ck_assert_int_eq(read(p.peer, &c, 1), 0);
}
END_TEST

static Suite *
transport_suite(void)
{
    Suite *s = suite_create("transport");
    TCase *tc = tcase_create("plain");

    /* Each test runs over both kinds of pair: _i is the enum pair_kind. */
    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_read_returns_bytes, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_read_empty_wants_read, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_read_after_peer_closed, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_whole, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_prefix, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_many_elements, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_full_wants_write, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_after_peer_closed, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_more_then_last, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_writev_more_then_shutdown, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_sendfile, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_sendfile_full_wants_write, 0, PAIR_KINDS);
    tcase_add_test(tc, test_sendfile_from_pipe);
    tcase_add_test(tc, test_sendfile_from_proc_is_notsup);
    tcase_add_loop_test(tc, test_sendfile_null_op, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_shutdown_keeps_reading, 0, PAIR_KINDS);
    tcase_add_loop_test(tc, test_close, 0, PAIR_KINDS);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(transport_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
