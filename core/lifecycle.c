/*
 * The connection lifecycle (include/qilin/lifecycle.h): listeners, accepts,
 * parked idle connections with their deadlines, worker_connections, and the
 * graceful stop, on the worker's libev loop. Worker process, main thread.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <qilin/errno.h>
#include <qilin/lifecycle.h>
#include <qilin/log.h>

#include "serve.h"
#include "worker.h"

/*
 * One parked connection: waiting on the loop for its next bytes or its
 * deadline. Records are reused through the lifecycle's spare list.
 */
struct lc_park {
    ev_io io;
    ev_timer timer;
    struct qln_conn *c;
    struct qln_lifecycle *lc;
    struct lc_park *prev, *next; /* the parked list, or the spare list (next) */
    int64_t hold_until;          /* held (qln_lifecycle_hold) until then; 0: not held */
};

struct lc_listener {
    ev_io io;
    struct qln_lifecycle *lc;
};

struct qln_lifecycle {
    struct qln_worker *w;
    struct ev_loop *loop;
    const struct qln_lifecycle_ops *ops;
    void *ctx;
    /* The plugin's optional hooks, NULL where its table ends before them. */
    bool (*can_accept)(void *ctx);
    size_t (*busy)(void *ctx);
    size_t limit;  /* worker_connections; 0: none */
    size_t nconns; /* open: accepted and not closed yet */
    size_t held;
    struct lc_listener *listeners;
    size_t nlisteners;
    /* Parked in the order they were parked: the head has been silent longest. */
    struct lc_park *parked, *parked_tail;
    struct lc_park *spare;
    ev_timer backoff;
    bool backing_off;
    bool listening;
    bool full_logged;
    /* Inside a loop callback that updates the listeners when it returns:
       done() and hold() leave it to that. */
    bool in_callback;
    /* While on_readable() serves RESUMED_CONN: the record it was parked in,
       first on the spare list, its watcher still set to that descriptor. */
    struct lc_park *resumed;
    struct qln_conn *resumed_conn;
};

/* OPS's optional hook NAME, or NULL when the plugin's table ends before it. */
#define LC_OP(ops, name)                                                                           \
    ((ops)->size >= offsetof(struct qln_lifecycle_ops, name) + sizeof((ops)->name) ? (ops)->name   \
                                                                                   : NULL)

static size_t
busy(const struct qln_lifecycle *lc)
{
    return lc->busy != NULL ? lc->busy(lc->ctx) : 0;
}

/* ------------------------------------------------------------ accepting */

static inline int
accept_one(struct qln_worker *w, int lfd, struct qln_conn **out)
{
    int rc;

    do
        rc = qln_conn_accept(w, lfd, out);
    /* The client gave up before we accepted it: try the next one. */
    while (rc == -ECONNABORTED || rc == -EINTR || rc == -EPROTO);
    if (rc == 0 || rc == -EAGAIN || rc == -EWOULDBLOCK)
        return rc == 0 ? 0 : -EAGAIN;
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
        /* Under load this would repeat for every connection: once per worker. */
        if (!w->accept_failure_logged)
            qln_log(QLN_LOG_ERROR,
                    "accept() failed: %s; pausing accepts briefly (raise the open files limit, "
                    "ulimit -n)",
                    qln_strerror(rc));
        w->accept_failure_logged = true;
        return rc;
    }
    qln_log(QLN_LOG_WARNING, "accept() failed: %s", qln_strerror(rc));
    return -EAGAIN;
}

int
qln_worker_accept(struct qln_worker *w, int lfd, struct qln_conn **out)
{
    return accept_one(w, lfd, out);
}

/*
 * True when this worker takes another connection now: not stopping, not
 * pausing after EMFILE, below the limit or holding a parked connection it
 * may close for the new one, and with room by the plugin's own rule.
 */
static bool
can_accept(struct qln_lifecycle *lc)
{
    return qln_worker_stopping(lc->w) == QLN_STOP_NONE && !lc->backing_off &&
           (lc->limit == 0 || lc->nconns < lc->limit || lc->parked != NULL) &&
           (lc->can_accept == NULL || lc->can_accept(lc->ctx));
}

void
qln_lifecycle_update(struct qln_lifecycle *lc)
{
    bool want = can_accept(lc);

    if (want == lc->listening)
        return;
    for (size_t i = 0; i < lc->nlisteners; i++) {
        if (want)
            ev_io_start(lc->loop, &lc->listeners[i].io);
        else
            ev_io_stop(lc->loop, &lc->listeners[i].io);
    }
    lc->listening = want;
}

static void
on_backoff(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct qln_lifecycle *lc = qln_container_of(t, struct qln_lifecycle, backoff);

    (void)loop;
    (void)revents;
    lc->backing_off = false;
    qln_lifecycle_update(lc);
}

static void close_conn(struct qln_lifecycle *lc, struct qln_conn *c);
static void unpark(struct qln_lifecycle *lc, struct lc_park *p);

/*
 * At the limit: the new client is served now, and the parked connection
 * silent longest makes room. It has no request in progress (or has been
 * the slowest with its head of all), and HTTP clients expect a server to
 * close an idle connection at any time (RFC 9112, 9.5) and retry. Done
 * after the accept, so a worker that loses the race for the pending
 * connection to another worker closes nothing.
 */
static void
make_room(struct qln_lifecycle *lc)
{
    struct qln_conn *c = lc->parked->c;

    if (!lc->full_logged) {
        qln_log(QLN_LOG_WARNING,
                "worker_connections (%zu) reached: closing the longest idle connection for each "
                "new one (raise --worker-connections to keep more connections open)",
                lc->limit);
        lc->full_logged = true;
    }
    unpark(lc, lc->parked);
    close_conn(lc, c);
}

static void
on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lc_listener *l = qln_container_of(io, struct lc_listener, io);
    struct qln_lifecycle *lc = l->lc;
    struct qln_conn *c;
    int rc;

    (void)loop;
    (void)revents;
    lc->in_callback = true;
    for (int i = 0; i < QLN_ACCEPT_BATCH && can_accept(lc); i++) {
        rc = accept_one(lc->w, io->fd, &c);
        if (rc == -EAGAIN)
            break;
        if (rc != 0) {
            lc->backing_off = true;
            ev_timer_set(&lc->backoff, QLN_ACCEPT_BACKOFF_MS / 1000.0, 0.0);
            ev_timer_start(lc->loop, &lc->backoff);
            break;
        }
        lc->nconns++;
        if (lc->limit != 0 && lc->nconns > lc->limit && lc->parked != NULL)
            make_room(lc);
        lc->ops->serve(lc->ctx, c, true);
    }
    lc->in_callback = false;
    qln_lifecycle_update(lc);
}

/* ------------------------------------------------------------ parking */

int64_t
qln_conn_idle_deadline(const struct qln_conn *c)
{
    struct qln_worker *w = c->w;
    int64_t deadline = qln_conn_deadline(c);

    if (qln_worker_stopping(w) == QLN_STOP_NONE)
        return deadline;
    /* Closing an idle connection the moment the stop begins would reset a
       client whose request is on the way: one that has just connected
       (accept(2) returns before its first bytes arrive), or a keep-alive
       client that has just sent its next request. */
    if (w->linger_until == 0)
        w->linger_until = qln_now_ms() + QLN_STOP_LINGER_MS;
    return deadline < 0 || deadline > w->linger_until ? w->linger_until : deadline;
}

/* When P's timer must fire: its deadline, or the end of its hold if sooner. -1: never. */
static int64_t
park_due(const struct lc_park *p)
{
    int64_t due = qln_conn_idle_deadline(p->c);

    if (p->hold_until != 0 && (due < 0 || due > p->hold_until))
        due = p->hold_until;
    return due;
}

static void
arm(struct qln_lifecycle *lc, struct lc_park *p)
{
    int64_t due = park_due(p);
    double after;

    ev_timer_stop(lc->loop, &p->timer);
    if (due < 0)
        return;
    after = (double)(due - qln_now_ms()) / 1000.0;
    ev_timer_set(&p->timer, after > 0 ? after : 0.0, 0.0);
    ev_timer_start(lc->loop, &p->timer);
}

static void
end_hold(struct qln_lifecycle *lc, struct lc_park *p)
{
    if (p->hold_until != 0) {
        p->hold_until = 0;
        lc->held--;
    }
}

/* Takes P off the loop and the parked list, without closing its connection. */
static void
unpark(struct qln_lifecycle *lc, struct lc_park *p)
{
    ev_io_stop(lc->loop, &p->io);
    ev_timer_stop(lc->loop, &p->timer);
    end_hold(lc, p);
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        lc->parked = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        lc->parked_tail = p->prev;
    p->c = NULL;
    p->prev = NULL;
    p->next = lc->spare;
    lc->spare = p;
}

static void
close_conn(struct qln_lifecycle *lc, struct qln_conn *c)
{
    if (lc->resumed_conn == c)
        lc->resumed = NULL; /* C's memory may come back from the pool as another connection */
    lc->nconns--;
    qln_conn_close(c, NULL);
}

static void
on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    struct lc_park *p = qln_container_of(io, struct lc_park, io);
    struct qln_lifecycle *lc = p->lc;
    struct qln_conn *c = p->c;

    (void)loop;
    (void)revents;
    unpark(lc, p);
    lc->in_callback = true;
    lc->resumed = p;
    lc->resumed_conn = c;
    lc->ops->serve(lc->ctx, c, false);
    lc->resumed = NULL;
    lc->resumed_conn = NULL;
    lc->in_callback = false;
    qln_lifecycle_update(lc);
}

static void
on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct lc_park *p = qln_container_of(t, struct lc_park, timer);
    struct qln_lifecycle *lc = p->lc;
    struct qln_conn *c = p->c;
    int64_t now = qln_now_ms(), deadline;

    (void)revents;
    if (p->hold_until != 0 && now >= p->hold_until) {
        end_hold(lc, p);
        qln_lifecycle_update(lc);
    }
    /* libev counts from the time its loop last read the clock, which lags
       ours by however long the worker was busy since: early by our clock,
       wait for the rest (a 408 needs its deadline passed). Or the hold
       ended first. */
    deadline = qln_conn_idle_deadline(c);
    if (p->hold_until != 0 || deadline < 0 || deadline > now) {
        arm(lc, p);
        return;
    }
    /* Bytes that came while the worker was busy are served, not reset: the
       loop may run this timer before their readable event. */
    if (qln_conn_readable(c)) {
        on_readable(loop, &p->io, EV_READ);
        return;
    }
    unpark(lc, p);
    close_conn(lc, c);
    qln_lifecycle_update(lc);
}

/* Puts C on the loop until it turns readable or its deadline passes. */
static void
park(struct qln_lifecycle *lc, struct qln_conn *c, int64_t hold_ms)
{
    struct lc_park *p = lc->spare;
    /* C parked again from inside the callback that took it off the loop
       (the sync worker): its record's watcher still names C's descriptor,
       so it is started as it is. Set again (ev_io_set), libev would have
       the kernel re-register the descriptor: one epoll_ctl per request. */
    bool same = p != NULL && p == lc->resumed && lc->resumed_conn == c;

    lc->resumed = NULL;
    if (p != NULL) {
        lc->spare = p->next;
    } else {
        p = malloc(sizeof(*p));
        if (p == NULL) {
            qln_log(QLN_LOG_ERROR, "out of memory parking a keep-alive connection");
            close_conn(lc, c);
            return;
        }
    }
    if (same) {
        p->prev = p->next = NULL;
        p->hold_until = 0;
    } else {
        memset(p, 0, sizeof(*p));
        ev_io_init(&p->io, on_readable, qln_conn_fd(c), EV_READ);
    }
    p->c = c;
    p->lc = lc;
    if (hold_ms > 0) {
        p->hold_until = qln_now_ms() + hold_ms;
        lc->held++;
    }
    ev_timer_init(&p->timer, on_timer, 0.0, 0.0);
    p->prev = lc->parked_tail;
    if (lc->parked_tail != NULL)
        lc->parked_tail->next = p;
    else
        lc->parked = p;
    lc->parked_tail = p;
    ev_io_start(lc->loop, &p->io);
    arm(lc, p);
}

void
qln_lifecycle_done(struct qln_lifecycle *lc, struct qln_conn *c, enum qln_conn_status st)
{
    if (st == QLN_CONN_IDLE && qln_worker_stopping(lc->w) != QLN_STOP_NOW)
        park(lc, c, 0);
    else
        close_conn(lc, c);
    if (!lc->in_callback)
        qln_lifecycle_update(lc);
}

void
qln_lifecycle_hold(struct qln_lifecycle *lc, struct qln_conn *c, int64_t ms)
{
    park(lc, c, ms);
    if (!lc->in_callback)
        qln_lifecycle_update(lc);
}

size_t
qln_lifecycle_held(const struct qln_lifecycle *lc)
{
    return lc->held;
}

/* ------------------------------------------------------------ the life */

struct qln_lifecycle *
qln_lifecycle_new(struct qln_worker *w, const struct qln_lifecycle_ops *ops, void *ctx,
                  size_t limit)
{
    struct qln_lifecycle *lc = calloc(1, sizeof(*lc));
    size_t n = qln_worker_nlisteners(w);

    if (lc == NULL)
        return NULL;
    lc->listeners = calloc(n ? n : 1, sizeof(*lc->listeners));
    if (lc->listeners == NULL) {
        free(lc);
        return NULL;
    }
    lc->w = w;
    lc->loop = qln_worker_loop(w);
    lc->ops = ops;
    lc->ctx = ctx;
    lc->can_accept = LC_OP(ops, can_accept);
    lc->busy = LC_OP(ops, busy);
    lc->limit = limit;
    lc->nlisteners = n;
    for (size_t i = 0; i < n; i++) {
        lc->listeners[i].lc = lc;
        ev_io_init(&lc->listeners[i].io, on_accept, qln_worker_listener_fd(w, i), EV_READ);
    }
    ev_timer_init(&lc->backoff, on_backoff, 0.0, 0.0);
    return lc;
}

/*
 * Graceful stop: the master has closed its copies of the listeners, but the
 * kernel may already have completed handshakes that sit in their queues.
 * Serving those (a bounded number) spares their clients a reset.
 */
static void
drain_backlog(struct qln_lifecycle *lc)
{
    struct qln_conn *c;

    for (size_t i = 0; i < lc->nlisteners; i++) {
        for (int n = 0; n < QLN_DRAIN_MAX; n++) {
            if (qln_worker_stopping(lc->w) != QLN_STOP_GRACEFUL ||
                accept_one(lc->w, lc->listeners[i].io.fd, &c) != 0)
                break;
            lc->nconns++;
            lc->ops->serve(lc->ctx, c, true);
        }
    }
}

void
qln_lifecycle_run(struct qln_lifecycle *lc)
{
    qln_lifecycle_update(lc);
    /* Returns once a stop breaks the loop (the core's wake watcher). */
    ev_run(lc->loop, 0);

    qln_lifecycle_update(lc); /* stopping: the listeners are no longer watched */
    ev_timer_stop(lc->loop, &lc->backoff);
    if (qln_worker_stopping(lc->w) == QLN_STOP_GRACEFUL) {
        drain_backlog(lc);
        /* The deadlines of parked connections now end with the linger. */
        for (struct lc_park *p = lc->parked; p != NULL; p = p->next)
            arm(lc, p);
    }
    /* The loop keeps running while connections finish, so the heartbeat goes
       on; the master's graceful_timeout bounds how long this may take. */
    for (;;) {
        if (qln_worker_stopping(lc->w) == QLN_STOP_NOW) {
            while (lc->parked != NULL) {
                struct qln_conn *c = lc->parked->c;

                unpark(lc, lc->parked);
                close_conn(lc, c);
            }
            /* A request still in the application (sleeping, computing) cannot
               be waited for: gunicorn does not wait on INT or QUIT either. */
            if (busy(lc) > 0)
                qln_worker_exit_now(lc->w);
        }
        if (lc->parked == NULL && busy(lc) == 0)
            break;
        ev_run(lc->loop, EVRUN_ONCE);
    }
}

void
qln_lifecycle_free(struct qln_lifecycle *lc)
{
    struct lc_park *p;

    if (lc == NULL)
        return;
    while (lc->parked != NULL) {
        struct qln_conn *c = lc->parked->c;

        unpark(lc, lc->parked);
        close_conn(lc, c);
    }
    while ((p = lc->spare) != NULL) {
        lc->spare = p->next;
        free(p);
    }
    for (size_t i = 0; i < lc->nlisteners; i++)
        ev_io_stop(lc->loop, &lc->listeners[i].io);
    ev_timer_stop(lc->loop, &lc->backoff);
    free(lc->listeners);
    free(lc);
}
