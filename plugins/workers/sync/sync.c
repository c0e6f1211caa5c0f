/*
 * Worker plugin `sync`: one request at a time per worker process. A libev
 * loop holds the listeners and the idle keep-alive connections, so a slow
 * or idle client never blocks the worker before its request head is whole;
 * the request itself runs to completion inside qln_conn_serve(). Worker
 * process only; uses nothing but the plugin API and libev.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include <qilin/plugin.h>

/* Connections accepted per readable event before the loop looks at parked
   ones again: a busy listener must not starve keep-alive clients. */
#define ACCEPT_BATCH 16
/* On graceful stop, connections already queued by the kernel that we still
   serve, per listener, before closing (see drain_backlog). */
#define DRAIN_MAX 64
/* On graceful stop, how long an open connection may still take to send its
   request (milliseconds): long enough for a client that has just connected,
   short enough not to hold a recycling worker for a whole keep-alive. */
#define STOP_IDLE_WAIT_MS 1000
/* Pause after EMFILE/ENFILE before accepting again, in seconds. */
#define ACCEPT_BACKOFF 0.5

struct sync_worker;

/* An idle connection parked on the loop; recycled through a free list. */
struct sync_conn {
    ev_io io;
    ev_timer deadline;
    struct qln_conn *conn;
    struct sync_worker *sw;
    struct sync_conn *prev, *next;
};

struct sync_listener {
    ev_io io;
    struct sync_worker *sw;
};

struct sync_worker {
    struct qln_worker *w;
    struct ev_loop *loop;
    void *tstate;
    struct qln_poll_waiter pw;
    struct sync_listener *listeners;
    size_t nlisteners;
    struct sync_conn *parked; /* doubly linked: closed all at once on stop */
    struct sync_conn *spare;  /* free list, singly linked through next */
    ev_timer backoff;
    int64_t stop_deadline; /* graceful stop: parked connections wait until then; 0: running */
    bool accept_paused;
    bool emfile_logged;
};

static void sync_serve(struct sync_worker *sw, struct qln_conn *c, struct sync_conn *sc);

static void
unpark(struct sync_worker *sw, struct sync_conn *sc)
{
    ev_io_stop(sw->loop, &sc->io);
    ev_timer_stop(sw->loop, &sc->deadline);
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        sw->parked = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    sc->conn = NULL;
    sc->prev = NULL;
    sc->next = sw->spare;
    sw->spare = sc;
}

static void
on_conn_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    struct sync_conn *sc = qln_container_of(io, struct sync_conn, io);

    (void)loop;
    (void)revents;
    /* Stop waiting while the request runs: serve() may re-park it with a new deadline. */
    ev_io_stop(sc->sw->loop, &sc->io);
    ev_timer_stop(sc->sw->loop, &sc->deadline);
    sync_serve(sc->sw, sc->conn, sc);
}

static int64_t conn_deadline(const struct sync_worker *sw, const struct sync_conn *sc);
static void arm_deadline(struct sync_worker *sw, struct sync_conn *sc);

static void
on_conn_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct sync_conn *sc = qln_container_of(t, struct sync_conn, deadline);
    struct sync_worker *sw = sc->sw;
    struct qln_conn *c = sc->conn;

    (void)loop;
    (void)revents;
    /* libev counts from the time its loop last read the clock, which lags
       ours by however long the worker was busy or descheduled since: early
       by our clock, wait for the rest (a 408 needs the deadline passed). */
    if (conn_deadline(sw, sc) > qln_now_ms()) {
        arm_deadline(sw, sc);
        return;
    }
    /* Bytes that came while the worker was busy are served, not reset: the
       loop may run this timer before their readable event. */
    if (qln_conn_readable(c)) {
        on_conn_readable(loop, &sc->io, EV_READ);
        return;
    }
    unpark(sw, sc);
    qln_conn_close(c, &sw->pw.waiter);
}

/* When SC must be closed: its own deadline, or the graceful stop's if sooner. -1: never. */
static int64_t
conn_deadline(const struct sync_worker *sw, const struct sync_conn *sc)
{
    int64_t deadline = qln_conn_deadline(sc->conn);

    if (sw->stop_deadline != 0 && (deadline < 0 || deadline > sw->stop_deadline))
        deadline = sw->stop_deadline;
    return deadline;
}

static void
arm_deadline(struct sync_worker *sw, struct sync_conn *sc)
{
    int64_t deadline = conn_deadline(sw, sc);
    double after;

    if (deadline < 0)
        return;
    after = (double)(deadline - qln_now_ms()) / 1000.0;
    ev_timer_set(&sc->deadline, after > 0 ? after : 0.0, 0.0);
    ev_timer_start(sw->loop, &sc->deadline);
}

/* Puts C on the loop until it is readable again or its deadline passes. */
static void
park(struct sync_worker *sw, struct qln_conn *c, struct sync_conn *sc)
{
    if (sc == NULL) {
        sc = sw->spare;
        if (sc != NULL) {
            sw->spare = sc->next;
        } else {
            sc = malloc(sizeof(*sc));
            if (sc == NULL) {
                qln_log(QLN_LOG_ERROR, "out of memory parking a keep-alive connection");
                qln_conn_close(c, &sw->pw.waiter);
                return;
            }
        }
        memset(sc, 0, sizeof(*sc));
        sc->sw = sw;
        sc->conn = c;
        ev_io_init(&sc->io, on_conn_readable, qln_conn_fd(c), EV_READ);
        ev_timer_init(&sc->deadline, on_conn_deadline, 0.0, 0.0);
        sc->next = sw->parked;
        if (sw->parked != NULL)
            sw->parked->prev = sc;
        sw->parked = sc;
        qln_conn_set_data(c, sc);
    }
    ev_io_start(sw->loop, &sc->io);
    arm_deadline(sw, sc);
}

/*
 * Serves C (SC is its parked state, or NULL for a fresh connection). IDLE
 * means "wait for more bytes": park it. During a graceful stop too, with
 * a short deadline (arm_deadline): a client that connected a moment ago
 * has its request on the way, and closing now would fail it. Only an
 * immediate stop closes at once.
 */
static void
sync_serve(struct sync_worker *sw, struct qln_conn *c, struct sync_conn *sc)
{
    enum qln_conn_status st = qln_conn_serve(c, &sw->pw.waiter, sw->tstate);

    if (st == QLN_CONN_IDLE && qln_worker_stopping(sw->w) != QLN_STOP_NOW) {
        park(sw, c, sc);
        return;
    }
    if (sc != NULL)
        unpark(sw, sc);
    qln_conn_close(c, &sw->pw.waiter);
}

static void
pause_accepting(struct sync_worker *sw)
{
    size_t i;

    for (i = 0; i < sw->nlisteners; i++)
        ev_io_stop(sw->loop, &sw->listeners[i].io);
    sw->accept_paused = true;
}

static void
resume_accepting(struct sync_worker *sw)
{
    size_t i;

    for (i = 0; i < sw->nlisteners; i++)
        ev_io_start(sw->loop, &sw->listeners[i].io);
    sw->accept_paused = false;
}

static void
on_backoff(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct sync_worker *sw = qln_container_of(t, struct sync_worker, backoff);

    (void)loop;
    (void)revents;
    if (qln_worker_stopping(sw->w) == QLN_STOP_NONE)
        resume_accepting(sw);
}

/*
 * EMFILE/ENFILE: the pending connection stays in the queue, so the listener
 * stays readable and a loop that simply retried would spin at 100% CPU.
 * We stop watching the listeners for a moment instead; the parked
 * connections that time out meanwhile give descriptors back. The condition
 * is logged once per worker, since under load it would flood the log.
 */
static void
accept_failed(struct sync_worker *sw, int rc)
{
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
        if (!sw->emfile_logged) {
            qln_log(QLN_LOG_ERROR,
                    "accept() failed: %s; pausing accepts briefly (raise the open files limit, "
                    "ulimit -n)",
                    qln_strerror(rc));
            sw->emfile_logged = true;
        }
        pause_accepting(sw);
        ev_timer_set(&sw->backoff, ACCEPT_BACKOFF, 0.0);
        ev_timer_start(sw->loop, &sw->backoff);
        return;
    }
    qln_log(QLN_LOG_WARNING, "accept() failed: %s", qln_strerror(rc));
}

static void
on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    struct sync_listener *l = qln_container_of(io, struct sync_listener, io);
    struct sync_worker *sw = l->sw;
    struct qln_conn *c;
    int i, rc;

    (void)loop;
    (void)revents;
    for (i = 0; i < ACCEPT_BATCH; i++) {
        if (qln_worker_stopping(sw->w) != QLN_STOP_NONE)
            return;
        rc = qln_conn_accept(sw->w, io->fd, &c);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK)
            return;
        /* The client gave up before we accepted it: nothing to do, try the next. */
        if (rc == -ECONNABORTED || rc == -EINTR || rc == -EPROTO)
            continue;
        if (rc != 0) {
            accept_failed(sw, rc);
            return;
        }
        /* Optimistic first read inside serve(): the request is usually there already. */
        sync_serve(sw, c, NULL);
    }
}

/*
 * Graceful stop: the master has closed its copies of the listeners, but the
 * kernel may already have completed handshakes that sit in the accept
 * queue. Serving what is there (bounded) spares those clients a reset;
 * a connection whose request has not arrived yet is parked briefly.
 */
static void
drain_backlog(struct sync_worker *sw)
{
    struct qln_conn *c;
    size_t i;
    int n, rc;

    for (i = 0; i < sw->nlisteners; i++) {
        for (n = 0; n < DRAIN_MAX; n++) {
            rc = qln_conn_accept(sw->w, sw->listeners[i].io.fd, &c);
            if (rc == -ECONNABORTED || rc == -EINTR)
                continue;
            if (rc != 0)
                break;
            sync_serve(sw, c, NULL);
        }
    }
}

static void
close_parked(struct sync_worker *sw)
{
    while (sw->parked != NULL) {
        struct sync_conn *sc = sw->parked;
        struct qln_conn *c = sc->conn;

        unpark(sw, sc);
        qln_conn_close(c, &sw->pw.waiter);
    }
    while (sw->spare != NULL) {
        struct sync_conn *sc = sw->spare;

        sw->spare = sc->next;
        free(sc);
    }
}

/*
 * Graceful stop (TERM, HUP, TTOU, max_requests): no new accepts, but every
 * connection already open gets STOP_IDLE_WAIT_MS to deliver a request,
 * which is then served (and the connection closed after it). This keeps
 * a recycling worker from resetting a client the kernel handed it just
 * before the stop. An INT/QUIT meanwhile ends the wait at once.
 */
static void
finish_gracefully(struct sync_worker *sw)
{
    struct sync_conn *sc;

    sw->stop_deadline = qln_now_ms() + STOP_IDLE_WAIT_MS;
    for (sc = sw->parked; sc != NULL; sc = sc->next) {
        ev_timer_stop(sw->loop, &sc->deadline);
        arm_deadline(sw, sc);
    }
    drain_backlog(sw);
    while (sw->parked != NULL && qln_worker_stopping(sw->w) == QLN_STOP_GRACEFUL)
        ev_run(sw->loop, EVRUN_ONCE);
}

static int
sync_run(struct qln_worker *w)
{
    struct sync_worker sw;
    size_t i;

    memset(&sw, 0, sizeof(sw));
    sw.w = w;
    sw.loop = qln_worker_loop(w);
    sw.tstate = qln_worker_thread_init(w);
    qln_poll_waiter_init(&sw.pw, w, sw.tstate);
    sw.nlisteners = qln_worker_nlisteners(w);
    sw.listeners = calloc(sw.nlisteners ? sw.nlisteners : 1, sizeof(*sw.listeners));
    if (sw.listeners == NULL) {
        qln_log(QLN_LOG_CRITICAL, "out of memory starting the sync worker");
        qln_worker_thread_exit(w, sw.tstate);
        return 1;
    }
    for (i = 0; i < sw.nlisteners; i++) {
        sw.listeners[i].sw = &sw;
        ev_io_init(&sw.listeners[i].io, on_accept, qln_worker_listener_fd(w, i), EV_READ);
    }
    ev_timer_init(&sw.backoff, on_backoff, ACCEPT_BACKOFF, 0.0);
    resume_accepting(&sw);

    /* Returns once a stop signal breaks the loop (the core's wake watcher). */
    ev_run(sw.loop, 0);

    pause_accepting(&sw);
    ev_timer_stop(sw.loop, &sw.backoff);
    if (qln_worker_stopping(w) == QLN_STOP_GRACEFUL)
        finish_gracefully(&sw);
    close_parked(&sw);
    free(sw.listeners);
    qln_worker_thread_exit(w, sw.tstate);
    return 0;
}

static const struct qln_worker_ops sync_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = 0,
    .run = sync_run,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "sync", .version = QLN_VERSION,
                  .description = "one request at a time per worker; keep-alive on a libev loop",
                  .worker = &sync_ops);
