/*
 * The connection layer: one client connection's transport, read buffer,
 * peer and clock, and the I/O everything above it uses. Every read and
 * write goes through the transport; when it would block, the connection
 * waits through the wait hook of the worker serving it, with the deadline
 * the settings give. It knows nothing of HTTP: the request, the response
 * and the session (serve.c) sit on top of it. Worker processes only.
 */
#ifndef QILIN_CORE_CONN_H
#define QILIN_CORE_CONN_H

#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <qilin/worker.h>

#include "settings.h"
#include "transport.h"

struct listener;

struct conn {
    struct transport t;
    const struct conn_settings *s;
    const volatile sig_atomic_t *stop; /* the worker's enum qln_stop, current at any time */
    const struct listener *listener;   /* the listener it came from; NULL if unknown */

    /* The serving thread's, for each qln_conn_serve() call. */
    const struct qln_waiter *waiter;
    void *tstate;

    /* The read buffer: [0, len) holds data, [0, pos) was parsed. */
    char *buf;
    size_t cap;
    size_t len;
    size_t pos;

    int64_t accepted_ms;    /* qln_now_ms() clock */
    int64_t last_active_ms; /* last byte moved, or the end of the last response */
    bool must_close;        /* close after the current response */
    bool stop_now;          /* the wait hook said QLN_WAIT_STOP: abandon */

    /* The client: the socket's peer ("" for unix sockets), or the source a
       PROXY protocol header named, for every request on the connection. */
    char peer_addr[INET6_ADDRSTRLEN];
    char peer_port[8];
    /* What that PROXY header said besides: "TCP4" or "TCP6" ("" without
       one), and the address and port the client connected to. */
    char proxy_proto[5];
    char proxy_addr[INET6_ADDRSTRLEN];
    char proxy_port[8];
};

/*
 * Starts C on the accepted socket FD (non-blocking) from PEER, with the
 * plain transport. Keeps C's buffer from an earlier use.
 */
void conn_open(struct conn *c, int fd, const struct sockaddr_storage *peer);
/* Closes C's transport (and socket) if open. */
void conn_close(struct conn *c);
/* Frees C's buffer; with KEEP, only when it grew beyond what is worth keeping. */
void conn_release(struct conn *c, bool keep);

/* Grows C's buffer to hold at least WANT bytes. */
void conn_buf_reserve(struct conn *c, size_t want);

/* The worker's enum qln_stop. */
static inline int
conn_stopping(const struct conn *c)
{
    return *c->stop;
}

/*
 * Waits through C's wait hook until its socket is ready for EVENTS (enum
 * qln_ev) or DEADLINE (absolute; -1: none) passes. Returns 0, -ETIMEDOUT,
 * QLN_ESTOP (and marks C to be abandoned) or -EIO.
 */
int conn_wait(struct conn *c, unsigned events, int64_t deadline);
/*
 * Reads what the transport has into the free end of the buffer without
 * waiting. Returns bytes (> 0), 0 at EOF, -EAGAIN, or another negative errno.
 */
ssize_t conn_read_some(struct conn *c);
/*
 * As conn_read_some(), but waits on -EAGAIN, each time until TIMEOUT_MS
 * (0: none) passes without a byte. Returns bytes, 0 at EOF, or a negative
 * errno (-ETIMEDOUT, QLN_ESTOP).
 */
ssize_t conn_read_wait(struct conn *c, int64_t timeout_ms);

/*
 * Writes all of IOV[0, N) (modified in place), MORE: more bytes follow at
 * once, waiting whenever the transport would block. Returns 0 or a negative
 * errno (-EPIPE, -ECONNRESET, -ETIMEDOUT, QLN_ESTOP); after an error the
 * connection is marked to close.
 */
int conn_writev(struct conn *c, struct iovec *iov, int n, bool more);
/* conn_writev() of one buffer. */
int conn_write_all(struct conn *c, const void *buf, size_t len);

/*
 * Sends *LEFT bytes of file FD from *OFF, waiting as conn_writev() does;
 * *OFF and *LEFT follow the progress. Returns 0, -ENOTSUP when nothing was
 * sent because the transport cannot send from this file (the caller copies
 * it), -EIO when the file ended early, or a negative errno.
 */
int conn_sendfile(struct conn *c, int fd, off_t *off, int64_t *left);

/*
 * Ends C's output after the last response bytes, which were written with
 * MORE: they leave with the end of the stream in one segment, at once,
 * whatever work (the app's close(), hooks, logging) comes before the
 * close. Reading stays possible (lingering).
 */
void conn_end_output(struct conn *c);

#endif
