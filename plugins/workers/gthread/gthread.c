/*
 * Worker plugin `gthread`: a pool of `threads` threads runs requests; the
 * worker's main thread runs the core's connection lifecycle (the listeners
 * and the idle keep-alive connections on the libev loop). A connection goes
 * to the pool when it becomes readable and comes back to the lifecycle when
 * qln_conn_serve() returns; only the main thread touches the lifecycle.
 * Worker process only.
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

/* How long a new connection with no request yet counts as busy (see gt_can_accept). */
#define FRESH_GRACE_MS 50

/*
 * One connection handed to the pool: in the work queue, served by a pool
 * thread, then in the done queue. The queue mutex orders the hand-overs.
 */
struct gt_job {
    struct qln_conn *conn;
    enum qln_conn_status status; /* what the pool thread's serve returned */
    struct gt_job *qnext;        /* the work or done queue, or the spare list */
};

struct gt_queue {
    struct gt_job *head, *tail;
};

struct gt_worker {
    struct qln_worker *w;
    struct ev_loop *loop;

    /* Main thread only. */
    struct qln_lifecycle *lc;
    struct gt_job *spare; /* free list through qnext */
    size_t inflight;      /* handed to the pool and not yet back */
    bool balance;         /* other workers share the listeners: hold fresh ones */
    ev_async done_async;  /* pool threads poke the loop through this */

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
queue_push(struct gt_queue *q, struct gt_job *j)
{
    j->qnext = NULL;
    if (q->tail != NULL)
        q->tail->qnext = j;
    else
        q->head = j;
    q->tail = j;
}

static struct gt_job *
queue_pop(struct gt_queue *q)
{
    struct gt_job *j = q->head;

    if (j != NULL) {
        q->head = j->qnext;
        if (q->head == NULL)
            q->tail = NULL;
    }
    return j;
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
    struct gt_job *j;
    void *tstate;

    tstate = qln_worker_thread_init(gw->w);
    qln_poll_waiter_init(&pw, gw->w, tstate);
    pthread_mutex_lock(&gw->lock);
    for (;;) {
        while (gw->work.head == NULL && !gw->quit)
            pthread_cond_wait(&gw->work_cv, &gw->lock);
        j = queue_pop(&gw->work);
        if (j == NULL)
            break; /* quit, and nothing left to serve */
        pthread_mutex_unlock(&gw->lock);

        j->status = qln_conn_serve(j->conn, &pw.waiter, tstate);

        pthread_mutex_lock(&gw->lock);
        queue_push(&gw->done, j);
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

/* Hands C to the pool. Main thread. */
static void
dispatch(struct gt_worker *gw, struct qln_conn *c)
{
    struct gt_job *j = gw->spare;

    if (j != NULL) {
        gw->spare = j->qnext;
    } else {
        j = malloc(sizeof(*j));
        if (j == NULL) {
            qln_log(QLN_LOG_ERROR, "out of memory handing a connection to a thread");
            qln_lifecycle_done(gw->lc, c, QLN_CONN_CLOSED);
            return;
        }
    }
    j->conn = c;
    gw->inflight++;
    pthread_mutex_lock(&gw->lock);
    queue_push(&gw->work, j);
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

/* ------------------------------------------------------------ the lifecycle */

/*
 * True when this worker should take another connection: with a pool thread
 * free to serve it (the lifecycle checks worker_connections, gunicorn's
 * meaning, itself).
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
 * before its first bytes is held (counts as busy) until they come, for at
 * most FRESH_GRACE_MS; a client that stays silent longer holds no thread's
 * worth.
 */
static bool
gt_can_accept(void *ctx)
{
    struct gt_worker *gw = ctx;

    return gw->inflight + qln_lifecycle_held(gw->lc) < gw->nthreads;
}

static size_t
gt_busy(void *ctx)
{
    struct gt_worker *gw = ctx;

    return gw->inflight;
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
 * Straight to the pool: the request is usually there already, and serve()
 * reads without waiting, so a silent client costs one pass. With other
 * workers on the listeners, a silent new one is held instead (see
 * gt_can_accept).
 */
static void
gt_serve(void *ctx, struct qln_conn *c, bool fresh)
{
    struct gt_worker *gw = ctx;

    if (fresh && gw->balance && qln_worker_stopping(gw->w) == QLN_STOP_NONE &&
        silent_yet(qln_conn_fd(c)))
        qln_lifecycle_hold(gw->lc, c, FRESH_GRACE_MS);
    else
        dispatch(gw, c);
}

/* Connections the pool has finished with go back to the lifecycle. */
static void
on_done(struct ev_loop *loop, ev_async *a, int revents)
{
    struct gt_worker *gw = qln_container_of(a, struct gt_worker, done_async);
    struct gt_job *j, *next;

    (void)loop;
    (void)revents;
    pthread_mutex_lock(&gw->lock);
    j = gw->done.head;
    gw->done.head = gw->done.tail = NULL;
    pthread_mutex_unlock(&gw->lock);
    for (; j != NULL; j = next) {
        next = j->qnext;
        gw->inflight--;
        qln_lifecycle_done(gw->lc, j->conn, j->status);
        j->qnext = gw->spare;
        gw->spare = j;
    }
    qln_lifecycle_update(gw->lc);
}

static const struct qln_lifecycle_ops gt_lifecycle = {
    .size = sizeof(struct qln_lifecycle_ops),
    .serve = gt_serve,
    .can_accept = gt_can_accept,
    .busy = gt_busy,
};

static int
gthread_run(struct qln_worker *w)
{
    struct qln_ctx *ctx = qln_worker_ctx(w);
    struct gt_worker gw = {.w = w, .loop = qln_worker_loop(w)};
    int64_t nthreads = qln_cfg_int(ctx, "threads");
    struct gt_job *j;
    int rc = 0;

    gw.balance = qln_cfg_int(ctx, "workers") > 1;
    /* Unlike the core's watchers, this one keeps ev_run() going: with every
       connection on the pool and the listeners paused at capacity, nothing
       else is active, yet the worker must wait for its threads, not leave. */
    ev_async_init(&gw.done_async, on_done);
    ev_async_start(gw.loop, &gw.done_async);
    pthread_mutex_init(&gw.lock, NULL);
    pthread_cond_init(&gw.work_cv, NULL);
    gw.lc =
        qln_lifecycle_new(w, &gt_lifecycle, &gw, (size_t)qln_cfg_int(ctx, "worker_connections"));
    if (gw.lc == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = pool_start(&gw, (size_t)(nthreads > 0 ? nthreads : 1));
    if (rc == 0) {
        qln_lifecycle_run(gw.lc);
    } else {
        qln_log(QLN_LOG_CRITICAL,
                "cannot start the gthread worker's %d threads: %s (lower --threads, or raise "
                "the limits: ulimit -u, ulimit -s)",
                (int)nthreads, qln_strerror(rc));
    }
    if (gw.threads != NULL)
        pool_stop(&gw);
    qln_lifecycle_free(gw.lc);
    while ((j = gw.spare) != NULL) {
        gw.spare = j->qnext;
        free(j);
    }
    ev_async_stop(gw.loop, &gw.done_async);
    pthread_cond_destroy(&gw.work_cv);
    pthread_mutex_destroy(&gw.lock);
    return rc == 0 ? 0 : 1;
}

static const struct qln_worker_ops gthread_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_THREADED,
    .run = gthread_run,
};

/* What a gunicorn configuration calls this worker class (-k, worker_class). */
static const char *const gthread_aliases[] = {"gunicorn.workers.gthread.ThreadWorker",
                                              "egg:gunicorn#gthread", NULL};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "gthread", .version = QLN_VERSION,
                  .description = "a pool of --threads threads per worker; keep-alive on libev",
                  .aliases = gthread_aliases, .worker = &gthread_ops);
