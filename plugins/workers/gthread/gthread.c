/*
 * Worker plugin `gthread`: a pool of `threads` threads runs requests, the
 * worker's main thread runs the libev loop over the listeners and the idle
 * keep-alive connections. A connection goes to the pool when it becomes
 * readable and comes back to the loop when qln_conn_serve() says IDLE; only
 * the main thread touches libev watchers. Worker process only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <ev.h>

#include <qilin/plugin.h>

/* Connections accepted per readable event before the loop looks at others. */
#define ACCEPT_BATCH 16
/* On graceful stop, connections already queued by the kernel that we still
   serve, per listener, before closing (see drain_backlog). */
#define DRAIN_MAX 64
/* Pause after EMFILE/ENFILE before accepting again, in seconds. */
#define ACCEPT_BACKOFF 0.5
/* On graceful stop, how long idle connections may still send a request (see arm_deadline). */
#define STOP_LINGER_MS 1000
/* How long a new connection with no request yet counts as busy (see has_capacity). */
#define FRESH_GRACE_MS 50

struct gt_worker;

/*
 * One open connection. Ownership moves with the connection: while it sits
 * in the work queue or a pool thread serves it, only that thread touches it
 * (its watchers are stopped); otherwise only the main thread does. The
 * queue mutex orders the hand-overs.
 */
struct gt_conn {
    ev_io io;
    ev_timer deadline;
    struct qln_conn *conn;
    struct gt_worker *gw;
    struct gt_conn *prev, *next; /* the parked list (main thread), or the spare list */
    struct gt_conn *qnext;       /* the work or done queue */
    enum qln_conn_status status; /* what the pool thread's serve returned */
    /* Accepted before its first bytes arrived, and parked: when it stops
       counting as busy (see has_capacity); 0 once it is not fresh. */
    int64_t fresh_until;
    bool parked;
};

struct gt_queue {
    struct gt_conn *head, *tail;
};

struct gt_listener {
    ev_io io;
    struct gt_worker *gw;
};

struct gt_worker {
    struct qln_worker *w;
    struct ev_loop *loop;

    /* Main thread only. */
    struct gt_listener *listeners;
    size_t nlisteners;
    /* Parked connections, doubly linked in the order they were parked:
       the head has been silent longest (see make_room); all are closed on stop. */
    struct gt_conn *parked, *parked_tail;
    struct gt_conn *spare; /* free list, singly linked through next */
    size_t nconns;         /* open connections (worker_connections caps them) */
    size_t max_conns;
    size_t inflight;    /* handed to the pool and not yet back */
    size_t fresh;       /* parked connections that are fresh */
    bool balance;       /* other workers share the listeners: count fresh ones */
    int64_t linger_end; /* graceful stop: idle connections close by then; 0 until stopping */
    ev_timer backoff;
    ev_async done_async; /* pool threads poke the loop through this */
    bool listening;
    bool backing_off;
    bool emfile_logged;
    bool full_logged;

    /* Shared with the pool, under lock. */
    pthread_mutex_t lock;
    pthread_cond_t work_cv;
    struct gt_queue work;
    struct gt_queue done;
    bool quit;

    pthread_t *threads;
    size_t nthreads;
};

static void
queue_push(struct gt_queue *q, struct gt_conn *gc)
{
    gc->qnext = NULL;
    if (q->tail != NULL)
        q->tail->qnext = gc;
    else
        q->head = gc;
    q->tail = gc;
}

static struct gt_conn *
queue_pop(struct gt_queue *q)
{
    struct gt_conn *gc = q->head;

    if (gc != NULL) {
        q->head = gc->qnext;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return gc;
}

/* ------------------------------------------------------------ the pool */

/*
 * A pool thread: serves connections from the work queue until told to
 * quit. Its interpreter state is created once (thread_init) and released
 * (thread_exit) on this same thread before it ends, so run() can join all
 * threads before the app plugin finalises the interpreter. Signals are
 * blocked here (inherited from pool_start), so they reach the main thread.
 */
static void *
pool_main(void *arg)
{
    struct gt_worker *gw = arg;
    struct qln_poll_waiter pw;
    struct gt_conn *gc;
    void *tstate;

    tstate = qln_worker_thread_init(gw->w);
    qln_poll_waiter_init(&pw, gw->w, tstate);
    pthread_mutex_lock(&gw->lock);
    for (;;) {
        while (gw->work.head == NULL && !gw->quit)
            pthread_cond_wait(&gw->work_cv, &gw->lock);
        gc = queue_pop(&gw->work);
        if (gc == NULL)
            break; /* quit, and nothing left to serve */
        pthread_mutex_unlock(&gw->lock);

        gc->status = qln_conn_serve(gc->conn, &pw.waiter, tstate);

        pthread_mutex_lock(&gw->lock);
        queue_push(&gw->done, gc);
        pthread_mutex_unlock(&gw->lock);
        /* Outside the lock: it may write(2) to the loop's eventfd, and the
           main thread and the other threads want the lock meanwhile.
           ev_async_send is thread-safe; sends before the loop runs coalesce
           into one callback, which takes the whole done queue. */
        ev_async_send(gw->loop, &gw->done_async);
        pthread_mutex_lock(&gw->lock);
    }
    pthread_mutex_unlock(&gw->lock);
    qln_worker_thread_exit(gw->w, tstate);
    return NULL;
}

/* Hands GC to the pool. Main thread; GC's watchers are stopped. */
static void
dispatch(struct gt_worker *gw, struct gt_conn *gc)
{
    gw->inflight++;
    pthread_mutex_lock(&gw->lock);
    queue_push(&gw->work, gc);
    pthread_mutex_unlock(&gw->lock);
    /* After the unlock, so the woken thread does not block on the lock at once. */
    pthread_cond_signal(&gw->work_cv);
}

/*
 * Starts the pool with every signal blocked in the new threads: a stop
 * signal must run the core's handler on the main thread, whose loop it
 * wakes; delivered to a pool thread it would only interrupt that thread's
 * poll(2). Faults stay unblocked: they are delivered to the faulting
 * thread whatever its mask, and the crash handler should run there. The
 * main thread's mask is restored afterwards.
 */
static int
pool_start(struct gt_worker *gw, size_t n)
{
    sigset_t all, saved;
    int rc = 0;

    gw->threads = calloc(n, sizeof(*gw->threads));
    if (gw->threads == NULL)
        return -ENOMEM;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, &saved);
    for (gw->nthreads = 0; gw->nthreads < n; gw->nthreads++) {
        rc = -pthread_create(&gw->threads[gw->nthreads], NULL, pool_main, gw);
        if (rc != 0)
            break;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    return rc;
}

/* Tells the threads to finish what is queued, then joins them. Main thread. */
static void
pool_stop(struct gt_worker *gw)
{
    size_t i;

    pthread_mutex_lock(&gw->lock);
    gw->quit = true;
    pthread_cond_broadcast(&gw->work_cv);
    pthread_mutex_unlock(&gw->lock);
    for (i = 0; i < gw->nthreads; i++)
        pthread_join(gw->threads[i], NULL);
    free(gw->threads);
    gw->threads = NULL;
    gw->nthreads = 0;
}

/* ------------------------------------------------------------ accepting */

/*
 * True when this worker should take another connection: with a pool thread
 * free to serve it, and below worker_connections (gunicorn's meaning) or
 * holding an idle connection it may close to make room (make_room).
 *
 * The thread condition is what spreads load over the workers: every idle
 * worker is woken for a new connection and the first to call accept(2) gets
 * it, so a worker that kept accepting while its threads were all busy would
 * pile connections up behind them (measured: one of two workers took all
 * 200 of wrk's connections) while the other sat idle. A worker without a
 * free thread leaves them in the kernel's queue instead.
 *
 * A client's first bytes often arrive just after accept(2) returns: in a
 * burst of new connections a worker would find each one silent, park it,
 * free the thread at once and accept the next, and again end up with all of
 * them (measured: 200 of 200 in two of four runs). So a connection accepted
 * before its first bytes counts as busy until they come, for at most
 * FRESH_GRACE_MS; a client that stays silent longer holds no thread's worth.
 */
static bool
has_capacity(const struct gt_worker *gw)
{
    return gw->inflight + gw->fresh < gw->nthreads &&
           (gw->nconns < gw->max_conns || gw->parked != NULL);
}

/* GC no longer counts as busy. */
static void
fresh_end(struct gt_worker *gw, struct gt_conn *gc)
{
    if (gc->fresh_until != 0) {
        gc->fresh_until = 0;
        gw->fresh--;
    }
}

/* True when FD has no bytes to read yet (a peek, nothing consumed). */
static bool
silent_yet(int fd)
{
    char byte;

    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 &&
           (errno == EAGAIN || errno == EWOULDBLOCK);
}

/*
 * Watches the listeners exactly when this worker may take another
 * connection: not stopping, not backing off after EMFILE, and with capacity.
 */
static void
update_accepting(struct gt_worker *gw)
{
    bool want = qln_worker_stopping(gw->w) == QLN_STOP_NONE && !gw->backing_off && has_capacity(gw);
    size_t i;

    if (want == gw->listening)
        return;
    for (i = 0; i < gw->nlisteners; i++) {
        if (want)
            ev_io_start(gw->loop, &gw->listeners[i].io);
        else
            ev_io_stop(gw->loop, &gw->listeners[i].io);
    }
    gw->listening = want;
}

static void
on_backoff(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct gt_worker *gw = qln_container_of(t, struct gt_worker, backoff);

    (void)loop;
    (void)revents;
    gw->backing_off = false;
    update_accepting(gw);
}

/*
 * EMFILE/ENFILE: the pending connection stays in the queue, so the listener
 * stays readable and a loop that simply retried would spin at 100% CPU.
 * We stop watching the listeners for a moment instead; connections that
 * close meanwhile give descriptors back. Logged once per worker, since under
 * load it would flood the log.
 */
static void
accept_failed(struct gt_worker *gw, int rc)
{
    if (rc == -EMFILE || rc == -ENFILE || rc == -ENOBUFS || rc == -ENOMEM) {
        if (!gw->emfile_logged) {
            qln_log(QLN_LOG_ERROR,
                    "accept() failed: %s; pausing accepts briefly (raise the open files limit, "
                    "ulimit -n)",
                    qln_strerror(rc));
            gw->emfile_logged = true;
        }
        gw->backing_off = true;
        update_accepting(gw);
        ev_timer_set(&gw->backoff, ACCEPT_BACKOFF, 0.0);
        ev_timer_start(gw->loop, &gw->backoff);
        return;
    }
    qln_log(QLN_LOG_WARNING, "accept() failed: %s", qln_strerror(rc));
}

static void on_conn_readable(struct ev_loop *loop, ev_io *io, int revents);
static void on_conn_deadline(struct ev_loop *loop, ev_timer *t, int revents);
static void make_room(struct gt_worker *gw);
static void park(struct gt_worker *gw, struct gt_conn *gc);

/* Wraps a freshly accepted C; NULL when out of memory (C is then closed). */
static struct gt_conn *
conn_wrap(struct gt_worker *gw, struct qln_conn *c)
{
    struct gt_conn *gc = gw->spare;

    if (gc != NULL) {
        gw->spare = gc->next;
    } else {
        gc = malloc(sizeof(*gc));
        if (gc == NULL) {
            qln_log(QLN_LOG_ERROR, "out of memory accepting a connection");
            qln_conn_close(c, NULL);
            return NULL;
        }
    }
    memset(gc, 0, sizeof(*gc));
    gc->gw = gw;
    gc->conn = c;
    ev_io_init(&gc->io, on_conn_readable, qln_conn_fd(c), EV_READ);
    ev_timer_init(&gc->deadline, on_conn_deadline, 0.0, 0.0);
    qln_conn_set_data(c, gc);
    gw->nconns++;
    return gc;
}

static void
on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    struct gt_listener *l = qln_container_of(io, struct gt_listener, io);
    struct gt_worker *gw = l->gw;
    struct gt_conn *gc;
    struct qln_conn *c;
    int i, rc;

    (void)loop;
    (void)revents;
    for (i = 0; i < ACCEPT_BATCH && has_capacity(gw); i++) {
        if (qln_worker_stopping(gw->w) != QLN_STOP_NONE)
            break;
        rc = qln_conn_accept(gw->w, io->fd, &c);
        if (rc == -EAGAIN || rc == -EWOULDBLOCK)
            break;
        /* The client gave up before we accepted it: nothing to do, try the next. */
        if (rc == -ECONNABORTED || rc == -EINTR || rc == -EPROTO)
            continue;
        if (rc != 0) {
            accept_failed(gw, rc);
            break;
        }
        gc = conn_wrap(gw, c);
        if (gc == NULL)
            continue;
        /* Over the cap only when has_capacity counted on a parked connection. */
        if (gw->nconns > gw->max_conns)
            make_room(gw);
        /* Straight to the pool: the request is usually there already, and
           serve() reads without waiting, so a silent client costs one pass.
           With other workers on the listeners, a silent one waits here as
           fresh instead (see has_capacity). */
        if (gw->balance && silent_yet(qln_conn_fd(c))) {
            gc->fresh_until = qln_now_ms() + FRESH_GRACE_MS;
            gw->fresh++;
            park(gw, gc);
        } else {
            dispatch(gw, gc);
        }
    }
    update_accepting(gw);
}

/* ------------------------------------------------------------ parking */

/* Takes GC off the loop's watchers and the parked list, without closing it. */
static void
unpark(struct gt_worker *gw, struct gt_conn *gc)
{
    ev_io_stop(gw->loop, &gc->io);
    ev_timer_stop(gw->loop, &gc->deadline);
    fresh_end(gw, gc);
    if (gc->prev != NULL)
        gc->prev->next = gc->next;
    else
        gw->parked = gc->next;
    if (gc->next != NULL)
        gc->next->prev = gc->prev;
    else
        gw->parked_tail = gc->prev;
    gc->prev = gc->next = NULL;
    gc->parked = false;
}

/* Closes GC, parked or just back from the pool. Main thread. */
static void
conn_release(struct gt_worker *gw, struct gt_conn *gc)
{
    struct qln_conn *c = gc->conn;

    if (gc->parked)
        unpark(gw, gc);
    gc->conn = NULL;
    gc->next = gw->spare;
    gw->spare = gc;
    gw->nconns--;
    qln_conn_close(c, NULL);
}

/*
 * Keep-alive slots. gunicorn's gthread keeps at most worker_connections
 * minus threads connections alive and answers `Connection: close` beyond
 * that, so that a worker full of idle clients still has room for new ones;
 * but it closes them whether or not anyone is waiting. We keep every
 * connection alive while there is room, and only when a client arrives at
 * a worker holding worker_connections do we close the parked connection
 * that has been silent longest, as nginx reuses its idle connections:
 *  - the new client is served now, not after some keep-alive timeout;
 *  - an idle keep-alive connection has no request in progress, and HTTP
 *    clients expect a server to close one at any time (RFC 9112, 9.5) and
 *    retry on a new connection; the one silent longest is the least likely
 *    to be in use again soon;
 *  - a connection in the middle of a head is closed only if it has been the
 *    most silent of all, which makes it a stalled client rather than a slow one.
 * Called after the accept, so a worker that loses the race for the pending
 * connection to another worker closes nothing.
 */
static void
make_room(struct gt_worker *gw)
{
    if (!gw->full_logged) {
        qln_log(QLN_LOG_WARNING,
                "worker_connections (%zu) reached: closing the longest idle connection for each "
                "new one (raise --worker-connections to keep more connections open)",
                gw->max_conns);
        gw->full_logged = true;
    }
    conn_release(gw, gw->parked);
}

/*
 * GC's deadline: the connection's own, and during a graceful stop no later
 * than a short linger. Closing an idle connection the moment the stop
 * begins would drop a request already on its way: a client that has just
 * connected (accept(2) returns before its first bytes arrive) or a
 * keep-alive client that has just sent its next request. With the linger
 * those are served (and answered Connection: close); the rest close.
 */
static int64_t
conn_deadline(struct gt_worker *gw, const struct gt_conn *gc)
{
    int64_t deadline = qln_conn_deadline(gc->conn);

    if (qln_worker_stopping(gw->w) != QLN_STOP_NONE) {
        if (gw->linger_end == 0)
            gw->linger_end = qln_now_ms() + STOP_LINGER_MS;
        if (deadline < 0 || deadline > gw->linger_end)
            deadline = gw->linger_end;
    }
    return deadline;
}

/* (Re)arms GC's deadline timer. */
static void
arm_deadline(struct gt_worker *gw, struct gt_conn *gc)
{
    int64_t deadline = conn_deadline(gw, gc);
    double after;

    ev_timer_stop(gw->loop, &gc->deadline);
    if (gc->fresh_until != 0 && (deadline < 0 || deadline > gc->fresh_until))
        deadline = gc->fresh_until;
    if (deadline < 0)
        return;
    after = (double)(deadline - qln_now_ms()) / 1000.0;
    ev_timer_set(&gc->deadline, after > 0 ? after : 0.0, 0.0);
    ev_timer_start(gw->loop, &gc->deadline);
}

/*
 * Puts GC on the loop until it is readable again or its deadline passes.
 * A half-sent head waits here, not on a pool thread.
 */
static void
park(struct gt_worker *gw, struct gt_conn *gc)
{
    gc->parked = true;
    gc->next = NULL;
    gc->prev = gw->parked_tail;
    if (gw->parked_tail != NULL)
        gw->parked_tail->next = gc;
    else
        gw->parked = gc;
    gw->parked_tail = gc;
    ev_io_start(gw->loop, &gc->io);
    arm_deadline(gw, gc);
}

static void
on_conn_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    struct gt_conn *gc = qln_container_of(io, struct gt_conn, io);

    (void)loop;
    (void)revents;
    unpark(gc->gw, gc);
    dispatch(gc->gw, gc);
    update_accepting(gc->gw);
}

static void
on_conn_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct gt_conn *gc = qln_container_of(t, struct gt_conn, deadline);
    struct gt_worker *gw = gc->gw;
    int64_t now = qln_now_ms(), deadline;

    (void)loop;
    (void)revents;
    if (gc->fresh_until != 0 && now >= gc->fresh_until) {
        fresh_end(gw, gc);
        update_accepting(gw);
    }
    /* Early by our clock (libev counts from its loop's last clock reading):
       wait for the rest, so a stalled head still gets its 408. Or the fresh
       grace ended first. */
    deadline = conn_deadline(gw, gc);
    if (gc->fresh_until != 0 || deadline < 0 || deadline > now) {
        arm_deadline(gw, gc);
        return;
    }
    /* Bytes that came while the threads were busy are served, not reset:
       the loop may run this timer before their readable event. */
    if (qln_conn_readable(gc->conn)) {
        on_conn_readable(loop, &gc->io, EV_READ);
        return;
    }
    conn_release(gw, gc);
    update_accepting(gw);
}

/*
 * Connections the pool has finished with. IDLE means "wait for more bytes":
 * park it (during a graceful stop only for the linger, see arm_deadline).
 * Anything else, and everything once the stop is immediate, is closed.
 */
static void
on_done(struct ev_loop *loop, ev_async *a, int revents)
{
    struct gt_worker *gw = qln_container_of(a, struct gt_worker, done_async);
    struct gt_conn *gc, *next;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&gw->lock);
    gc = gw->done.head;
    gw->done.head = gw->done.tail = NULL;
    pthread_mutex_unlock(&gw->lock);
    for (; gc != NULL; gc = next) {
        next = gc->qnext;
        gw->inflight--;
        if (gc->status == QLN_CONN_IDLE && qln_worker_stopping(gw->w) != QLN_STOP_NOW)
            park(gw, gc);
        else
            conn_release(gw, gc);
    }
    update_accepting(gw);
}

/* ------------------------------------------------------------ stopping */

/*
 * Graceful stop: the master has closed its copies of the listeners, but the
 * kernel may already have completed handshakes that sit in the accept
 * queue. Serving what is there (bounded) spares those clients a reset; a
 * connection whose request has not arrived yet comes back IDLE and is closed.
 */
static void
drain_backlog(struct gt_worker *gw)
{
    struct gt_conn *gc;
    struct qln_conn *c;
    size_t i;
    int n, rc;

    for (i = 0; i < gw->nlisteners; i++) {
        for (n = 0; n < DRAIN_MAX; n++) {
            rc = qln_conn_accept(gw->w, gw->listeners[i].io.fd, &c);
            if (rc == -ECONNABORTED || rc == -EINTR)
                continue;
            if (rc != 0)
                break;
            gc = conn_wrap(gw, c);
            if (gc != NULL)
                dispatch(gw, gc);
        }
    }
}

/*
 * Stops the worker: no more accepts, requests in flight finished on every
 * thread, idle connections closed (after the linger on a graceful stop; at
 * once when the stop is immediate). The loop keeps running meanwhile, so
 * the core's heartbeat goes on while threads are busy; the master's
 * graceful_timeout bounds how long this may take.
 */
static void
stop_serving(struct gt_worker *gw)
{
    struct gt_conn *gc;

    update_accepting(gw);
    ev_timer_stop(gw->loop, &gw->backoff);
    if (qln_worker_stopping(gw->w) == QLN_STOP_GRACEFUL) {
        drain_backlog(gw);
        for (gc = gw->parked; gc != NULL; gc = gc->next)
            arm_deadline(gw, gc);
    }
    for (;;) {
        if (qln_worker_stopping(gw->w) == QLN_STOP_NOW) {
            while (gw->parked != NULL)
                conn_release(gw, gw->parked);
            /* A thread still in the application (a request that sleeps or
               computes) cannot be joined soon: gunicorn does not wait for it
               on INT or QUIT either. */
            if (gw->inflight > 0)
                qln_worker_exit_now(gw->w);
        }
        if (gw->inflight == 0 && gw->parked == NULL)
            break;
        ev_run(gw->loop, EVRUN_ONCE);
    }
    pool_stop(gw);
    while ((gc = gw->spare) != NULL) {
        gw->spare = gc->next;
        free(gc);
    }
}

static int
gthread_setup(struct gt_worker *gw, struct qln_worker *w)
{
    struct qln_ctx *ctx = qln_worker_ctx(w);
    size_t i;

    gw->w = w;
    gw->loop = qln_worker_loop(w);
    gw->max_conns = (size_t)qln_cfg_int(ctx, "worker_connections");
    gw->balance = qln_cfg_int(ctx, "workers") > 1;
    gw->nlisteners = qln_worker_nlisteners(w);
    gw->listeners = calloc(gw->nlisteners ? gw->nlisteners : 1, sizeof(*gw->listeners));
    if (gw->listeners == NULL)
        return -ENOMEM;
    for (i = 0; i < gw->nlisteners; i++) {
        gw->listeners[i].gw = gw;
        ev_io_init(&gw->listeners[i].io, on_accept, qln_worker_listener_fd(w, i), EV_READ);
    }
    ev_timer_init(&gw->backoff, on_backoff, ACCEPT_BACKOFF, 0.0);
    /* Unlike the core's watchers, this one keeps ev_run() going: with every
       connection on the pool and the listeners paused at capacity, nothing
       else is active, yet the worker must wait for its threads, not leave. */
    ev_async_init(&gw->done_async, on_done);
    ev_async_start(gw->loop, &gw->done_async);
    pthread_mutex_init(&gw->lock, NULL);
    pthread_cond_init(&gw->work_cv, NULL);
    return 0;
}

static int
gthread_run(struct qln_worker *w)
{
    struct gt_worker gw;
    int64_t nthreads = qln_cfg_int(qln_worker_ctx(w), "threads");
    int rc;

    memset(&gw, 0, sizeof(gw));
    rc = gthread_setup(&gw, w);
    if (rc == 0)
        rc = pool_start(&gw, (size_t)(nthreads > 0 ? nthreads : 1));
    if (rc != 0) {
        qln_log(QLN_LOG_CRITICAL,
                "cannot start the gthread worker's %d threads: %s (lower --threads, or raise "
                "the limits: ulimit -u, ulimit -s)",
                (int)nthreads, qln_strerror(rc));
        if (gw.threads != NULL)
            pool_stop(&gw);
        rc = 1;
        goto out;
    }
    update_accepting(&gw);

    /* Returns once a stop signal breaks the loop (the core's wake watcher). */
    ev_run(gw.loop, 0);

    stop_serving(&gw);
out:
    if (gw.listeners != NULL) {
        ev_async_stop(gw.loop, &gw.done_async);
        pthread_cond_destroy(&gw.work_cv);
        pthread_mutex_destroy(&gw.lock);
    }
    free(gw.listeners);
    return rc;
}

static const struct qln_worker_ops gthread_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_THREADED,
    .run = gthread_run,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "gthread", .version = QLN_VERSION,
                  .description = "a pool of --threads threads per worker; keep-alive on libev",
                  .worker = &gthread_ops);
