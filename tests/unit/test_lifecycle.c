/*
 * Unit tests for core/lifecycle.c: a fake worker whose lifecycle runs on its
 * own libev loop in a server thread, over a real 127.0.0.1 listener, with a
 * tiny C app; the test thread is the client. Covers accepting, parking,
 * deadlines, the connection limit, holds, and both kinds of stop.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <check.h>
#include <ev.h>

#include <qilin/plugin.h>

#include "core/serve.h"
#include "core/listener.h"
#include "core/util.h"
#include "core/worker.h"
#include "fakeworker.h"

/* One fake worker per test process (each test runs in its own fork). */
static struct qln_worker worker;
static struct listener lst;
static struct qln_lifecycle *lc;
static ev_async stop_async;
static pthread_t server;
static struct qln_poll_waiter pw;

/* What serve() saw, in order: 1 for a fresh connection, 0 for a parked one. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int fresh_log[64];
static int nfresh;
static int ndone; /* serve() calls that have given their connection back */
/* Test knobs, set before the server starts. */
static int64_t hold_ms; /* hold every fresh connection this long; 0: serve it */
static size_t max_held; /* can_accept: fewer than this many held; 0: no rule */
static size_t limit;    /* worker_connections */

/* libev's calls to epoll_ctl(2), counted: this definition in the test
   program, exported (http.mk), takes the place of libc's for libev. */
static atomic_int nepoll_ctl;

__attribute__((visibility("default"))) int
epoll_ctl(int epfd, int op, int fd, struct epoll_event *event)
{
    atomic_fetch_add(&nepoll_ctl, 1);
    return (int)syscall(SYS_epoll_ctl, epfd, op, fd, event);
}

static int
app_handle(void *state, void *tstate, struct qln_request *req, struct qln_response *resp)
{
    struct qln_header h = {{"Content-Length", 14}, {"2", 1}};
    int rc = qln_resp_start(resp, (struct qln_slice){"200 OK", 6}, &h, 1);

    return rc != 0 ? rc : qln_resp_write(resp, "ok", 2);
}

static const struct qln_app_ops test_app = {
    .size = sizeof(struct qln_app_ops),
    .handle = app_handle,
};

static void
test_serve(void *ctx, struct qln_conn *c, bool fresh)
{
    pthread_mutex_lock(&log_lock);
    if (nfresh < (int)ARRAY_SIZE(fresh_log))
        fresh_log[nfresh++] = fresh;
    pthread_mutex_unlock(&log_lock);
    if (fresh && hold_ms > 0) {
        qln_lifecycle_hold(lc, c, hold_ms);
        return;
    }
    qln_lifecycle_done(lc, c, qln_conn_serve(c, &pw.waiter, NULL));
    pthread_mutex_lock(&log_lock);
    ndone++;
    pthread_mutex_unlock(&log_lock);
}

static bool
test_can_accept(void *ctx)
{
    return max_held == 0 || qln_lifecycle_held(lc) < max_held;
}

static const struct qln_lifecycle_ops test_ops = {
    .size = sizeof(struct qln_lifecycle_ops),
    .serve = test_serve,
    .can_accept = test_can_accept,
};

/* The core's wake watcher does this for a real worker: a stop breaks the loop. */
static void
on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

static void
setup(void)
{
    fake_worker_init(&worker, &lst, &test_app);
    worker.loop = ev_loop_new(EVFLAG_AUTO);
    ev_async_init(&stop_async, on_stop);
    ev_async_start(worker.loop, &stop_async);
    qln_poll_waiter_init(&pw, &worker, NULL);
    nfresh = 0;
    ndone = 0;
    hold_ms = 0;
    max_held = 0;
    limit = 0;
}

static void
teardown(void)
{
    close(lst.fd);
}

static void *
server_main(void *arg)
{
    qln_lifecycle_run(lc);
    return NULL;
}

static void
start_server(void)
{
    lc = qln_lifecycle_new(&worker, &test_ops, NULL, limit);
    ck_assert_ptr_nonnull(lc);
    ck_assert_int_eq(pthread_create(&server, NULL, server_main, NULL), 0);
}

/* Asks for a stop of kind HOW, as a signal would, and waits for qln_lifecycle_run() to return. */
static void
stop_server(int how)
{
    worker.stop = how;
    ev_async_send(worker.loop, &stop_async);
    ck_assert_int_eq(pthread_join(server, NULL), 0);
    qln_lifecycle_free(lc);
    serve_pool_free(&worker);
}

static int
client(void)
{
    return fake_client(&lst);
}

static void
send_request(int fd)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    ck_assert_int_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL), (ssize_t)sizeof(req) - 1);
}

/* Reads one response (it ends with the body "ok") into BUF; returns it. */
static const char *
read_response(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    while (len < 2 || memcmp(buf + len - 2, "ok", 2) != 0) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);

        ck_assert_msg(n > 0, "no response (recv: %zd, %s)", n, n < 0 ? strerror(errno) : "EOF");
        len += (size_t)n;
        buf[len] = '\0';
    }
    return buf;
}

/* True once the server has closed FD (EOF or reset); blocks up to SO_RCVTIMEO. */
static bool
closed_by_server(int fd)
{
    char byte;
    ssize_t n = recv(fd, &byte, 1, 0);

    return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* True when FD has bytes (or EOF) within MS milliseconds. */
static bool
readable_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};

    return poll(&p, 1, ms) == 1;
}

static int
fresh_at(int i)
{
    int v;

    pthread_mutex_lock(&log_lock);
    v = i < nfresh ? fresh_log[i] : -1;
    pthread_mutex_unlock(&log_lock);
    return v;
}

/* Waits until N serve() calls have given their connection back (parked it, or closed it). */
static void
wait_done(int n)
{
    for (int i = 0; i < 5000; i++) {
        int done;

        pthread_mutex_lock(&log_lock);
        done = ndone;
        pthread_mutex_unlock(&log_lock);
        if (done >= n)
            return;
        usleep(1000);
    }
    ck_abort_msg("serve() did not give the connection back");
}

START_TEST(test_serves_then_parks_for_the_next_request)
{
    char buf[512];
    int fd;

    start_server();
    fd = client();
    send_request(fd);
    ck_assert_ptr_nonnull(strstr(read_response(fd, buf, sizeof(buf)), "200 OK"));
    wait_done(1); /* parked: the next request wakes it from the loop */
    send_request(fd);
    ck_assert_ptr_nonnull(strstr(read_response(fd, buf, sizeof(buf)), "keep-alive"));
    /* Accepted once (fresh), then served again from the parked state. */
    ck_assert_int_eq(fresh_at(0), 1);
    ck_assert_int_eq(fresh_at(1), 0);
    close(fd);
    stop_server(QLN_STOP_NOW);
}
END_TEST

/* A connection served from the loop and parked again by the same callback
   (the sync worker's way) costs the loop no epoll_ctl: its descriptor stays
   registered as it was. */
START_TEST(test_parking_again_makes_no_epoll_ctl)
{
    char buf[512];
    int fd, before, calls;

    start_server();
    fd = client();
    for (int i = 1; i <= 2; i++) {
        send_request(fd);
        ck_assert_ptr_nonnull(strstr(read_response(fd, buf, sizeof(buf)), "200 OK"));
        wait_done(i);
    }
    before = atomic_load(&nepoll_ctl);
    for (int i = 3; i <= 6; i++) {
        send_request(fd);
        ck_assert_ptr_nonnull(strstr(read_response(fd, buf, sizeof(buf)), "200 OK"));
        wait_done(i);
    }
    ck_assert_int_eq(fresh_at(5), 0); /* each was served from the parked state */
    calls = atomic_load(&nepoll_ctl) - before;
    ck_assert_msg(calls == 0, "%d epoll_ctl calls for 4 requests", calls);
    close(fd);
    stop_server(QLN_STOP_NOW);
}
END_TEST

START_TEST(test_idle_connection_closes_at_its_deadline)
{
    char buf[512];
    int fd;

    worker.conn.keepalive_ms = 100;
    start_server();
    fd = client();
    send_request(fd);
    read_response(fd, buf, sizeof(buf));
    ck_assert(closed_by_server(fd));
    close(fd);
    stop_server(QLN_STOP_NOW);
}
END_TEST

/* At worker_connections, a new client closes the connection parked longest. */
START_TEST(test_limit_closes_the_longest_idle)
{
    char buf[512];
    int a, b, c;

    limit = 2;
    start_server();
    a = client();
    send_request(a);
    read_response(a, buf, sizeof(buf));
    b = client();
    send_request(b);
    read_response(b, buf, sizeof(buf));
    c = client();
    send_request(c);
    ck_assert_ptr_nonnull(strstr(read_response(c, buf, sizeof(buf)), "200 OK"));
    ck_assert(closed_by_server(a));
    /* B, parked after A, is still open and served. */
    send_request(b);
    ck_assert_ptr_nonnull(strstr(read_response(b, buf, sizeof(buf)), "200 OK"));
    close(a);
    close(b);
    close(c);
    stop_server(QLN_STOP_NOW);
}
END_TEST

/* A held connection counts against can_accept until its first bytes arrive. */
START_TEST(test_hold_until_first_bytes)
{
    char buf[512];
    int a, b;

    hold_ms = 60000;
    max_held = 1;
    start_server();
    a = client();
    b = client();
    send_request(b);
    /* A is held, so B waits in the kernel's queue. */
    ck_assert(!readable_within(b, 300));
    send_request(a);
    read_response(a, buf, sizeof(buf));
    read_response(b, buf, sizeof(buf));
    ck_assert_int_eq(fresh_at(0), 1); /* A, held */
    ck_assert_int_eq(fresh_at(1), 0); /* A's bytes came */
    ck_assert_int_eq(fresh_at(2), 1); /* B accepted: held, and its bytes are there */
    close(a);
    close(b);
    stop_server(QLN_STOP_NOW);
}
END_TEST

/*
 * Graceful stop: connections the kernel queued before it are served, and an
 * idle one delivers its request within the linger; each answer says close.
 */
START_TEST(test_graceful_stop_drains_and_lingers)
{
    char buf[512];
    int queued, idle;

    idle = client();
    queued = client();
    send_request(queued);
    worker.stop = QLN_STOP_GRACEFUL;
    ev_async_send(worker.loop, &stop_async);
    start_server();
    ck_assert_ptr_nonnull(strstr(read_response(queued, buf, sizeof(buf)), "Connection: close"));
    send_request(idle);
    ck_assert_ptr_nonnull(strstr(read_response(idle, buf, sizeof(buf)), "Connection: close"));
    ck_assert(closed_by_server(idle));
    ck_assert_int_eq(pthread_join(server, NULL), 0);
    qln_lifecycle_free(lc);
    serve_pool_free(&worker);
    close(queued);
    close(idle);
}
END_TEST

/* A parked connection is closed by a stop of kind HOW: at once, or after a silent linger. */
static void
stop_closes_idle(int how)
{
    char buf[512];
    int fd;

    start_server();
    fd = client();
    send_request(fd);
    read_response(fd, buf, sizeof(buf));
    stop_server(how);
    ck_assert(closed_by_server(fd));
    close(fd);
}

START_TEST(test_graceful_stop_closes_silent_ones)
{
    stop_closes_idle(QLN_STOP_GRACEFUL);
}
END_TEST

START_TEST(test_stop_now_closes_idle_connections)
{
    stop_closes_idle(QLN_STOP_NOW);
}
END_TEST

START_TEST(test_idle_deadline_ends_with_the_linger)
{
    struct qln_conn *c;
    int fd = client();
    int64_t before = qln_now_ms();

    worker.conn.keepalive_ms = 60000;
    ck_assert_int_eq(qln_worker_accept(&worker, lst.fd, &c), 0);
    ck_assert_int_eq(qln_conn_idle_deadline(c), qln_conn_deadline(c));
    worker.stop = QLN_STOP_GRACEFUL;
    ck_assert_int_le(qln_conn_idle_deadline(c), qln_now_ms() + QLN_STOP_LINGER_MS);
    ck_assert_int_ge(qln_conn_idle_deadline(c), before + QLN_STOP_LINGER_MS);
    qln_conn_close(c, NULL);
    serve_pool_free(&worker);
    close(fd);
}
END_TEST

/* Out of descriptors: -EMFILE, and the connection stays queued for later. */
START_TEST(test_accept_out_of_descriptors)
{
    struct rlimit saved, low;
    struct qln_conn *c;
    int fd = client(), spare = dup(0);

    ck_assert_int_ge(spare, 0);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
    low = saved;
    low.rlim_cur = (rlim_t)spare; /* every descriptor number from SPARE on is refused */
    close(spare);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    ck_assert_int_eq(qln_worker_accept(&worker, lst.fd, &c), -EMFILE);
    ck_assert(worker.accept_failure_logged);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ck_assert_int_eq(qln_worker_accept(&worker, lst.fd, &c), 0);
    qln_conn_close(c, NULL);
    ck_assert_int_eq(qln_worker_accept(&worker, lst.fd, &c), -EAGAIN);
    serve_pool_free(&worker);
    close(fd);
}
END_TEST

static Suite *
lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("lifecycle");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_serves_then_parks_for_the_next_request);
    tcase_add_test(tc, test_parking_again_makes_no_epoll_ctl);
    tcase_add_test(tc, test_idle_connection_closes_at_its_deadline);
    tcase_add_test(tc, test_limit_closes_the_longest_idle);
    tcase_add_test(tc, test_hold_until_first_bytes);
    tcase_add_test(tc, test_graceful_stop_drains_and_lingers);
    tcase_add_test(tc, test_graceful_stop_closes_silent_ones);
    tcase_add_test(tc, test_stop_now_closes_idle_connections);
    tcase_add_test(tc, test_idle_deadline_ends_with_the_linger);
    tcase_add_test(tc, test_accept_out_of_descriptors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(lifecycle_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
