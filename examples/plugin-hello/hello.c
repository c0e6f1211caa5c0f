/*
 * Worker plugin `hello`: the smallest useful qilin worker, built outside the
 * qilin tree from the installed SDK alone (`pkg-config --cflags qilin`). It
 * serves one connection at a time with poll(2): no libev, no threads. Worker
 * process only. Serve an app with it:
 *
 *     qilin --plugin-dir . -k hello -w 2 myapp:app
 *
 * Being an out-of-tree plugin it has no qlnconfig.h; everything it needs
 * comes from <qilin/plugin.h>. It never runs the worker's libev loop, so
 * what the core hangs on that loop does not happen here: the heartbeat (we
 * send our own) and reopening log files on SIGUSR1 (a worker that needs it
 * runs the loop, as sync does).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <qilin/plugin.h>

/* Longest poll(2) sleep, in ms. The core's heartbeat timer lives on the
   worker's libev loop, which this worker never runs, so we heartbeat
   ourselves after every wake-up; the master wants one within `timeout`
   seconds. It also bounds how late a stop signal that lands just before
   poll() is seen (the flag is set, but poll() was not yet interrupted). */
#define HELLO_TICK_MS 1000

struct hello {
    struct qln_worker *w;
    struct qln_poll_waiter pw; /* the core's ready-made poll waiter */
    void *tstate;              /* the app plugin's token for this thread */
    struct pollfd *pfds;       /* one per listener */
    size_t nlisteners;
};

/*
 * Waits until FD is readable or DEADLINE_MS (qln_now_ms clock, -1: none)
 * passes. Returns 0 when readable, -ETIMEDOUT, or -ECANCELED when the worker
 * must stop. A signal interrupts poll() (the core installs its handlers
 * without SA_RESTART), so a stop is seen at once.
 */
static int
wait_readable(struct hello *h, int fd, int64_t deadline_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int64_t left;
    int timeout, n;

    for (;;) {
        if (qln_worker_stopping(h->w) != QLN_STOP_NONE)
            return -ECANCELED;
        qln_worker_heartbeat(h->w);
        timeout = HELLO_TICK_MS;
        if (deadline_ms >= 0) {
            left = deadline_ms - qln_now_ms();
            if (left <= 0)
                return -ETIMEDOUT;
            if (left < timeout)
                timeout = (int)left;
        }
        n = poll(&pfd, 1, timeout);
        if (n > 0)
            return 0; /* POLLIN, or POLLHUP/POLLERR: the next read says which */
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/*
 * Serves C until it closes, times out, or the worker stops. IDLE means the
 * core wants more bytes of the next request head (keep-alive, or a head that
 * has not fully arrived): wait for them here, up to the deadline the core
 * computes from --keep-alive and the head timeout. Meanwhile no other client
 * is served; that is what "one connection at a time" costs.
 */
static void
serve_conn(struct hello *h, struct qln_conn *c)
{
    enum qln_conn_status st;

    for (;;) {
        st = qln_conn_serve(c, &h->pw.waiter, h->tstate);
        if (st != QLN_CONN_IDLE)
            break;
        if (wait_readable(h, qln_conn_fd(c), qln_conn_deadline(c)) != 0)
            break;
    }
    qln_conn_close(c, &h->pw.waiter);
}

/* Accepts and serves every connection pending on listener LFD. */
static void
accept_all(struct hello *h, int lfd)
{
    struct qln_conn *c;
    int rc;

    while (qln_worker_stopping(h->w) == QLN_STOP_NONE) {
        rc = qln_conn_accept(h->w, lfd, &c);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK)
            return;
        /* The client gave up before we accepted it: try the next one. */
        if (rc == -ECONNABORTED || rc == -EINTR || rc == -EPROTO)
            continue;
        if (rc != 0) {
            /* EMFILE and friends: the connection stays queued, so back off
               until the next tick rather than spin on a readable listener. */
            qln_log(QLN_LOG_WARNING, "hello: accept() failed: %s", qln_strerror(rc));
            return;
        }
        serve_conn(h, c);
    }
}

static int
hello_run(struct qln_worker *w)
{
    struct hello h = {.w = w};
    size_t i;
    int n;

    h.nlisteners = qln_worker_nlisteners(w);
    h.pfds = calloc(h.nlisteners ? h.nlisteners : 1, sizeof(*h.pfds));
    if (h.pfds == NULL) {
        qln_log(QLN_LOG_CRITICAL, "hello: out of memory");
        return 1;
    }
    for (i = 0; i < h.nlisteners; i++) {
        h.pfds[i].fd = qln_worker_listener_fd(w, i);
        h.pfds[i].events = POLLIN;
    }
    h.tstate = qln_worker_thread_init(w);
    qln_poll_waiter_init(&h.pw, w, h.tstate);
    qln_log(QLN_LOG_INFO, "hello worker %d: one connection at a time", (int)getpid());

    while (qln_worker_stopping(w) == QLN_STOP_NONE) {
        qln_worker_heartbeat(w);
        n = poll(h.pfds, (nfds_t)h.nlisteners, HELLO_TICK_MS);
        if (n <= 0)
            continue; /* tick, or EINTR from a signal: look at the stop flag */
        for (i = 0; i < h.nlisteners; i++) {
            if (h.pfds[i].revents != 0)
                accept_all(&h, h.pfds[i].fd);
        }
    }

    qln_worker_thread_exit(w, h.tstate);
    free(h.pfds);
    return 0;
}

static const struct qln_worker_ops hello_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = 0,
    .run = hello_run,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "hello", .version = "1.0",
                  .description = "example out-of-tree worker: one connection at a time",
                  .worker = &hello_ops);
