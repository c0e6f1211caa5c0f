/*
 * The client connections a worker plugin accepts and serves. The core runs
 * each connection's requests (HTTP/1.1 with keep-alive and pipelining) on
 * the calling thread, waiting through the caller's wait hook
 * (<qilin/worker.h>); the plugin decides only when and where to call.
 * Most workers drive these through <qilin/lifecycle.h>. All functions run
 * in a worker process. <qilin/worker.h> includes this header. Since ABI
 * 1.4.
 */
#ifndef QILIN_CONN_H
#define QILIN_CONN_H

#include <qilin/common.h>

struct qln_waiter; /* <qilin/worker.h> */

enum qln_conn_status {
    QLN_CONN_IDLE = 0,   /**< waiting for (the rest of) the next request head: wait for
                            readability until qln_conn_deadline(), then serve again */
    QLN_CONN_CLOSED = 1, /**< done (peer closed, error, timeout, Connection: close): close it */
    QLN_CONN_STOP = 2,   /**< the worker is stopping: close it */
};

/**
 * Accepts one connection from listener fd LFD (accept4, non-blocking,
 * TCP_NODELAY) and returns it in *OUT. Returns 0, -EAGAIN when none is
 * pending, or another negative errno (-EMFILE ...), which the caller logs or
 * backs off from. The connection's memory is reused from a per-worker pool.
 */
QLN_API int qln_conn_accept(struct qln_worker *w, int lfd, struct qln_conn **out);

QLN_API int qln_conn_fd(const struct qln_conn *c);

/**
 * Serves the requests ready on C: reads (optimistically), parses, calls the
 * app plugin's handle(), writes the response, logs access, and goes on with
 * requests already pipelined into its buffer; for a later one it returns
 * QLN_CONN_IDLE, so connections that were ready first take their turn
 * before C reads again. Waits through WAITER
 * only once a request head is complete (body reads, response writes), so an
 * idle or slow client never blocks the caller before its request is whole.
 * TSTATE is the caller's qln_worker_thread_init() token. Thread-safe for
 * distinct connections.
 */
QLN_API enum qln_conn_status qln_conn_serve(struct qln_conn *c, const struct qln_waiter *waiter,
                                            void *tstate);

/**
 * When an IDLE connection must be given up (absolute, qln_now_ms clock):
 * the keep-alive timeout when no byte of the next request arrived, else the
 * time allowed for the request head. -1: never.
 */
QLN_API int64_t qln_conn_deadline(const struct qln_conn *c);

/**
 * True when bytes (or the peer's EOF or a reset) wait to be read on an IDLE
 * connection C. A worker asks before it closes C because its deadline
 * passed: an event loop may run that timer before the readable event of
 * bytes that came while the worker was busy, and closing then would reset
 * a client whose request arrived in time. Serve C instead. Since ABI 1.3.
 */
QLN_API bool qln_conn_readable(const struct qln_conn *c);

/**
 * Closes C (calling WAITER->fd_closing first, if set) and returns its memory
 * to the pool. WAITER may be NULL. C is invalid afterwards.
 */
QLN_API void qln_conn_close(struct qln_conn *c, const struct qln_waiter *waiter);

/** A pointer slot for the worker plugin's own per-connection state. */
QLN_API void qln_conn_set_data(struct qln_conn *c, void *data);
QLN_API void *qln_conn_data(const struct qln_conn *c);

#endif
