/*
 * The connection lifecycle a worker plugin runs on the worker's libev loop:
 * the listeners, accepted in batches while the plugin has room; EMFILE and
 * its kind met with a short pause and one log line; idle keep-alive
 * connections parked until they turn readable or their deadline passes;
 * the worker_connections limit; and the graceful stop (what the kernel
 * already queued is served, idle connections get a short linger to deliver
 * a request already on its way). A worker plugin supplies only how a
 * connection is served: inline (sync), on a thread pool (gthread).
 *
 * A worker that runs another event loop (a green hub) uses the two helpers
 * at the end, so that it accepts and lingers by the same rules.
 *
 * Worker processes, on the worker's main thread. Since ABI 1.4.
 */
#ifndef QILIN_LIFECYCLE_H
#define QILIN_LIFECYCLE_H

#include <qilin/worker.h>

/** Connections accepted per readable event before the loop looks at others. */
#define QLN_ACCEPT_BATCH 16
/** On a graceful stop, connections already in a listener's queue that are still served. */
#define QLN_DRAIN_MAX 64
/** On a graceful stop, how long (ms) an idle connection may still deliver its request. */
#define QLN_STOP_LINGER_MS 1000
/** How long (ms) accepting pauses after EMFILE, ENFILE, ENOBUFS or ENOMEM. */
#define QLN_ACCEPT_BACKOFF_MS 500

struct qln_lifecycle;

/** How the plugin serves connections. Start with .size = sizeof(struct qln_lifecycle_ops). */
struct qln_lifecycle_ops {
    uint32_t size;
    /** Required. C is the plugin's to serve: just accepted (FRESH), or parked
        and now readable. Serve it with qln_conn_serve() here, or hand it to
        another thread; either way give it back with qln_lifecycle_done(), on
        the main thread. */
    void (*serve)(void *ctx, struct qln_conn *c, bool fresh);
    /** Optional: whether the plugin can take one more connection now (a
        thread is free). Asked before every accept; call
        qln_lifecycle_update() when the answer may have changed. NULL: always. */
    bool (*can_accept)(void *ctx);
    /** Optional: connections handed out by serve() and not given back yet.
        A stop waits for them; an immediate stop (INT, QUIT) with some still
        out ends the process (qln_worker_exit_now). NULL: serve() gives every
        connection back before it returns. */
    size_t (*busy)(void *ctx);
};

/**
 * A lifecycle for worker W on qln_worker_loop(W), calling OPS with CTX.
 * LIMIT caps the connections open at once (worker_connections): at the
 * limit, a new client makes the lifecycle close the parked connection that
 * has been silent longest (logged once), as HTTP allows a server to close
 * an idle connection at any time; with none parked, accepting waits. 0: no
 * limit. Returns NULL when out of memory.
 */
QLN_API struct qln_lifecycle *qln_lifecycle_new(struct qln_worker *w,
                                                const struct qln_lifecycle_ops *ops, void *ctx,
                                                size_t limit);

/**
 * The worker's life: accepts and serves until a stop, then, on a graceful
 * stop, serves what is queued on the listeners (at most QLN_DRAIN_MAX each)
 * and lets idle connections linger (QLN_STOP_LINGER_MS); returns once no
 * connection is open or out. An INT or QUIT meanwhile closes the idle ones
 * at once.
 */
QLN_API void qln_lifecycle_run(struct qln_lifecycle *lc);

/**
 * C, from serve(), is back with ST, what qln_conn_serve() returned: an IDLE
 * connection is parked until it turns readable (then serve() again) or its
 * deadline passes (then closed); any other is closed.
 */
QLN_API void qln_lifecycle_done(struct qln_lifecycle *lc, struct qln_conn *c,
                                enum qln_conn_status st);

/**
 * From serve(), for a connection just accepted whose first bytes have not
 * arrived: parks C as done() does, but counts it as held until its first
 * bytes arrive or MS pass, so that a plugin's can_accept() can count it as
 * busy. Spreads a burst of new connections over the workers that share the
 * listeners: a worker that parked each silent one and went on accepting
 * would take them all.
 */
QLN_API void qln_lifecycle_hold(struct qln_lifecycle *lc, struct qln_conn *c, int64_t ms);

/** Connections held now (qln_lifecycle_hold). */
QLN_API size_t qln_lifecycle_held(const struct qln_lifecycle *lc);

/** The plugin's room changed: watch the listeners again, or stop. */
QLN_API void qln_lifecycle_update(struct qln_lifecycle *lc);

/** Frees LC after qln_lifecycle_run() returned. */
QLN_API void qln_lifecycle_free(struct qln_lifecycle *lc);

/* ------------------------------------------- for workers with their own loop */

/**
 * Accepts one connection from listener fd LFD, as qln_conn_accept() does,
 * past the ones whose client gave up before. Returns 0 with *OUT set;
 * -EAGAIN when none is pending (or after an unexpected error, logged);
 * -EMFILE, -ENFILE, -ENOBUFS or -ENOMEM when the process is out of
 * descriptors or memory: the caller stops accepting for
 * QLN_ACCEPT_BACKOFF_MS (the connection stays queued, so retrying at once
 * would spin), and the core logs that once per worker.
 */
QLN_API int qln_worker_accept(struct qln_worker *w, int lfd, struct qln_conn **out);

/**
 * When idle connection C must be closed: qln_conn_deadline(C), and during
 * a graceful stop no later than QLN_STOP_LINGER_MS after this worker first
 * asked. -1: never.
 */
QLN_API int64_t qln_conn_idle_deadline(const struct qln_conn *c);

#endif
