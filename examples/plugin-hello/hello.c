/*
 * Worker plugin `hello`, built outside the qilin tree from the installed SDK
 * alone (`pkg-config --cflags qilin`). The core's connection lifecycle
 * watches the listeners, parks idle keep-alive connections and handles
 * stops; hello serves each connection with bytes on the spot, one request
 * at a time. Serve an app with it: qilin --plugin-dir . -k hello myapp:app
 */
#include <unistd.h>

#include <qilin/plugin.h>

struct hello {
    struct qln_lifecycle *lc;
    struct qln_poll_waiter pw; /* the wait hook: poll(2) for body reads and writes */
};

/* C has bytes to read (FRESH: just accepted): serve them, then hand C back. */
static void
hello_serve(void *ctx, struct qln_conn *c, bool fresh)
{
    struct hello *h = ctx;

    (void)fresh;
    qln_lifecycle_done(h->lc, c, qln_conn_serve(c, &h->pw.waiter, h->pw.tstate));
}

static const struct qln_lifecycle_ops hello_lifecycle = {
    .size = sizeof(struct qln_lifecycle_ops),
    .serve = hello_serve,
};

static int
hello_run(struct qln_worker *w)
{
    struct hello h;
    void *tstate = qln_worker_thread_init(w); /* this thread runs app code */
    int status = 1;

    qln_poll_waiter_init(&h.pw, w, tstate);
    h.lc = qln_lifecycle_new(w, &hello_lifecycle, &h, 0);
    if (h.lc != NULL) {
        qln_log(QLN_LOG_INFO, "hello worker %d: one request at a time", (int)getpid());
        qln_lifecycle_run(h.lc); /* until told to stop */
        qln_lifecycle_free(h.lc);
        status = 0;
    }
    qln_worker_thread_exit(w, tstate);
    return status;
}

static const struct qln_worker_ops hello_ops = {
    .size = sizeof(struct qln_worker_ops),
    .run = hello_run,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "hello", .version = "1.0",
                  .description = "example out-of-tree worker: one request at a time",
                  .worker = &hello_ops);
