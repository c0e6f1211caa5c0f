/*
 * What a worker plugin uses: the worker's listeners and libev loop, stop
 * state, heartbeat, and the wait hook; with <qilin/conn.h> (included here),
 * the connections it accepts and serves.
 * All functions run in a worker process. Unless stated otherwise they are
 * called from the worker's main thread.
 */
#ifndef QILIN_WORKER_H
#define QILIN_WORKER_H

#include <qilin/common.h>

struct ev_loop; /* libev's loop (ev.h); worker plugins that use it link -lev */

/* ------------------------------------------------------------------ waiter */

enum qln_ev {
    QLN_EV_READ = 1u << 0,
    QLN_EV_WRITE = 1u << 1,
};

enum qln_wait_rc {
    QLN_WAIT_READY = 0,   /**< the fd is ready (or may be: the caller retries its syscall) */
    QLN_WAIT_TIMEOUT = 1, /**< the deadline passed */
    QLN_WAIT_STOP = 2,    /**< the worker must stop now; abandon the connection */
    QLN_WAIT_ERROR = 3,   /**< the wait itself failed */
};

/**
 * The wait hook: one per serving context (a thread or a green thread), never
 * global. The core calls wait() whenever a non-blocking socket operation
 * would block. DEADLINE_MS is absolute on the qln_now_ms() clock (-1: none),
 * so repeated short waits cannot stretch a timeout.
 */
struct qln_waiter {
    uint32_t size; /**< sizeof(struct qln_waiter) as compiled */
    void *ctx;     /**< the worker's: thread state, greenlet, watcher cache ... */
    /** Required. Returns an enum qln_wait_rc. */
    int (*wait)(void *ctx, int fd, unsigned events, int64_t deadline_ms);
    /** Optional: called before the core closes FD, to cancel pending green waits. */
    void (*fd_closing)(void *ctx, int fd);
};

/**
 * A ready-made waiter for threaded workers (sync, gthread): poll(2) on the fd,
 * with the app plugin's blocking_enter()/blocking_leave() around the real
 * wait so the interpreter lock is released while blocked. Returns
 * QLN_WAIT_STOP when the worker was told to stop immediately.
 */
struct qln_poll_waiter {
    struct qln_waiter waiter; /**< pass &pw.waiter to qln_conn_serve() */
    struct qln_worker *worker;
    void *tstate; /**< from qln_worker_thread_init() */
};

/** Fills PW for WORKER and TSTATE. Thread-safe (each thread owns its PW). */
QLN_API void qln_poll_waiter_init(struct qln_poll_waiter *pw, struct qln_worker *worker,
                                  void *tstate);

/* ------------------------------------------------------------------ worker */

enum qln_stop {
    QLN_STOP_NONE = 0,
    QLN_STOP_GRACEFUL = 1, /**< SIGTERM: finish in-flight requests, accept no more */
    QLN_STOP_NOW = 2,      /**< SIGINT/SIGQUIT: leave at once */
};

/** Number of listening sockets this worker serves (all non-blocking). */
QLN_API size_t qln_worker_nlisteners(const struct qln_worker *w);
/** The fd of listener I (0 <= I < qln_worker_nlisteners). */
QLN_API int qln_worker_listener_fd(const struct qln_worker *w, size_t i);

/**
 * The worker's libev loop. The core has already put on it: the stop and
 * log-reopen signal handling (a stop signal breaks the loop with
 * ev_break(EVBREAK_ALL), so ev_run() returns), and a heartbeat timer.
 */
QLN_API struct ev_loop *qln_worker_loop(struct qln_worker *w);
QLN_API struct qln_ctx *qln_worker_ctx(struct qln_worker *w);

/** enum qln_stop; set from the signal handler, so it is current even inside a request. */
QLN_API int qln_worker_stopping(const struct qln_worker *w);

/**
 * From an app plugin, inside handle(): the application asked to end this
 * worker process (Python: a request raised SystemExit or KeyboardInterrupt,
 * which gunicorn lets end its worker). The worker stops at once when the
 * request is done, as on QUIT but without worker_int, and exits with
 * STATUS: 3 stops the whole server (gunicorn's "Worker failed to boot"),
 * another status makes the master start a new worker. The caller logs why.
 * Any thread of a worker process. Since ABI 1.3.
 */
QLN_API void qln_worker_exit(int status);

/**
 * For a worker plugin whose serving threads cannot be joined in time (a
 * thread still inside the application) on an immediate stop: ends the
 * process now, without waiting for them or finalising the application's
 * interpreter. Runs worker_int (for an INT or QUIT) and logs "Worker
 * exiting" first. The worker's main thread. Since ABI 1.3.
 */
QLN_API _Noreturn void qln_worker_exit_now(struct qln_worker *w);

/**
 * A descriptor that turns readable as soon as the worker has something to
 * do on qln_worker_loop(): a stop was asked (signal, max_requests), or the
 * logs are to be reopened. A worker that runs another loop (a green hub)
 * watches it and then runs one non-blocking pass of qln_worker_loop()
 * (ev_run with EVRUN_NOWAIT), which reads it and handles the request;
 * without it, such a worker notices a stop only at its next periodic pass.
 * The core owns and closes it. Since ABI 1.3.
 */
QLN_API int qln_worker_wake_fd(const struct qln_worker *w);

/**
 * Tells the master this worker is alive. The core's timer on the worker loop
 * does this while the loop runs; a worker that runs another loop (green
 * hubs) calls it at least once a second. Thread-safe.
 */
QLN_API void qln_worker_heartbeat(struct qln_worker *w);

/**
 * Prepares the calling thread to run app code (the app plugin's thread_init)
 * and returns its token for qln_conn_serve()/qln_poll_waiter_init(). Call once
 * per serving thread, the sync worker's main thread included; pair with
 * qln_worker_thread_exit() on the same thread. Thread-safe.
 */
QLN_API void *qln_worker_thread_init(struct qln_worker *w);
QLN_API void qln_worker_thread_exit(struct qln_worker *w, void *tstate);

/* The connections a worker accepts and serves: <qilin/conn.h>. */
#include <qilin/conn.h>

#endif
