/*
 * The worker process: what the core keeps for one worker (struct
 * qln_worker, opaque to plugins), the child side of fork, and the hooks the
 * connection code calls to keep the scoreboard current. Worker only.
 */
#ifndef QILIN_CORE_WORKER_H
#define QILIN_CORE_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ev.h>

#include <qilin/plugin.h>

#include "config.h"
#include "listener.h"

/* Connection settings read once from the configuration (conn.c fills them). */
struct conn_settings {
    int64_t keepalive_ms;           /* keepalive; 0 disables keep-alive */
    int64_t timeout_ms;             /* budget for a head, a body read or a write to progress */
    size_t limit_request_line;      /* 0 = unlimited, capped at 8190 */
    size_t limit_request_fields;    /* max 32768 */
    size_t limit_request_field_size; /* 0 = 8190 */
    char server_header[128];        /* "Server:" value; "" = no header */
};

/* conn.c: fills S from CFG (keepalive, timeout, limit_request_*, server_header). */
void conn_settings_load(struct conn_settings *s, const struct config *cfg);

struct scoreboard_slot;
struct conn_pool;

struct qln_worker {
    struct ev_loop *loop;
    struct qln_ctx *ctx;
    const struct qln_app_ops *app; /* the app plugin's hooks */
    void *app_state;               /* from its init() */
    const struct qln_worker_ops *ops;
    struct listener *listeners; /* borrowed from the master's arbiter (inherited) */
    size_t nlisteners;
    volatile sig_atomic_t stop; /* enum qln_stop, written by the signal handler */
    int age;                    /* 1, 2, 3...: order of spawning, as gunicorn's worker.age */
    pid_t pid;
    struct scoreboard_slot *slot; /* this worker's slot in the shared scoreboard */
    struct conn_settings conn;
    struct conn_pool *pool; /* conn.c's free lists, created lazily */
    ev_async wake;          /* signal handlers poke the loop through this */
    ev_timer heartbeat;
};

/* Scoreboard bookkeeping around each request (conn.c calls these). Thread-safe. */
void worker_request_begin(struct qln_worker *w);
void worker_request_end(struct qln_worker *w);

#endif
