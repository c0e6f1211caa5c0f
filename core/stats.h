/*
 * The stats endpoint (--stats ADDRESS): the master answers each connection
 * with the scoreboard as JSON, or as Prometheus text for "GET /metrics".
 * Tiny HTTP/1.0 responses on an admin socket; never a client connection of
 * the application. Master only.
 */
#ifndef QILIN_CORE_STATS_H
#define QILIN_CORE_STATS_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "listener.h"

#define STATS_MAX_CONNS 8
#define STATS_REQ_MAX 1024

/* Writes the body into BUF (LEN bytes, NUL-terminated) and returns its length. */
typedef size_t stats_render_fn(void *opaque, bool prometheus, char *buf, size_t len);

struct stats_conn {
    ev_io io;
    ev_timer timer;
    int fd; /* -1: free */
    size_t len;
    char buf[STATS_REQ_MAX];
    struct stats *st;
};

struct stats {
    struct listener l;
    ev_io accept_io;
    struct ev_loop *loop;
    stats_render_fn *render;
    void *opaque;
    struct stats_conn conns[STATS_MAX_CONNS];
};

/*
 * Binds SPEC (any --bind form) and serves it on LOOP with RENDER. Returns 0
 * or -errno with ERR one line naming --stats.
 */
int stats_open(struct stats *st, struct ev_loop *loop, const char *spec, stats_render_fn *render,
               void *opaque, char *err, size_t errlen);

/* Stops serving and closes the socket and open connections (a Unix socket file
   is removed when UNLINK_PATH); safe when never opened. */
void stats_close(struct stats *st, bool unlink_path);

/*
 * Puts into FDS (room for STATS_MAX_CONNS + 1) the descriptors ST holds open:
 * the listening socket and each client connection. Returns how many. A
 * worker forked from the master closes them, since it inherits every one
 * (fork, no exec) and a connection kept open there would never end.
 */
size_t stats_fds(const struct stats *st, int *fds);

#endif
