/*
 * Worker plugin `sync`: one request at a time per worker process. The
 * core's connection lifecycle holds the listeners and the idle keep-alive
 * connections on the worker's libev loop, so a slow or idle client never
 * blocks the worker before its request head is whole; the request itself
 * runs to completion inside qln_conn_serve(), on the main thread. Worker
 * process only.
 */
#include "qlnconfig.h"

#include <qilin/plugin.h>

struct sync_worker {
    struct qln_lifecycle *lc;
    void *tstate;
    struct qln_poll_waiter pw;
};

/* Serves C's ready requests; IDLE parks it again, behind the others. */
static void
sync_serve(void *ctx, struct qln_conn *c, bool fresh)
{
    struct sync_worker *sw = ctx;

    (void)fresh; /* the request is usually there already: serve() reads first */
    qln_lifecycle_done(sw->lc, c, qln_conn_serve(c, &sw->pw.waiter, sw->tstate));
}

static const struct qln_lifecycle_ops sync_lifecycle = {
    .size = sizeof(struct qln_lifecycle_ops),
    .serve = sync_serve,
};

static int
sync_run(struct qln_worker *w)
{
    struct sync_worker sw = {.tstate = qln_worker_thread_init(w)};

    qln_poll_waiter_init(&sw.pw, w, sw.tstate);
    sw.lc = qln_lifecycle_new(w, &sync_lifecycle, &sw, 0);
    if (sw.lc == NULL) {
        qln_log(QLN_LOG_CRITICAL, "out of memory starting the sync worker");
        qln_worker_thread_exit(w, sw.tstate);
        return 1;
    }
    qln_lifecycle_run(sw.lc);
    qln_lifecycle_free(sw.lc);
    qln_worker_thread_exit(w, sw.tstate);
    return 0;
}

static const struct qln_worker_ops sync_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = 0,
    .run = sync_run,
};

/* What a gunicorn configuration calls this worker class (-k, worker_class). */
static const char *const sync_aliases[] = {"gunicorn.workers.sync.SyncWorker", "egg:gunicorn#sync",
                                           NULL};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "sync", .version = QLN_VERSION,
                  .description = "one request at a time per worker; keep-alive on a libev loop",
                  .aliases = sync_aliases, .worker = &sync_ops);
