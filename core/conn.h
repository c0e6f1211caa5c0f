/*
 * One client connection (struct qln_conn, opaque to plugins): the read
 * buffer, the parser, the request and response objects, and the I/O
 * primitives response.c uses (writes through the wait hook). Connections
 * come from a per-worker pool and are reused. Worker processes only.
 */
#ifndef QILIN_CORE_CONN_H
#define QILIN_CORE_CONN_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <qilin/worker.h>

#include "http.h"
#include "response.h"

struct listener;
struct qln_worker;

struct qln_conn {
    int fd;
    struct qln_worker *w;
    const struct listener *listener; /* the listener it came from; NULL if unknown */
    void *data;                      /* the worker plugin's (qln_conn_set_data) */
    struct qln_conn *next;           /* the pool's free list */

    /* Set by each qln_conn_serve() call. */
    const struct qln_waiter *waiter;
    void *tstate;

    /* The read buffer: [0, len) holds data, [0, pos) was parsed. The current
       request's head starts at 0 and stays in place until handle() returns. */
    char *buf;
    size_t cap;
    size_t len;
    size_t pos;
    size_t max_head; /* the head may not grow beyond this (limits) */

    struct http_parser parser;
    struct qln_request req;
    struct qln_response resp;

    int64_t accepted_ms;    /* qln_now_ms() clock */
    int64_t last_active_ms; /* last byte moved, or the end of the last response */
    int64_t head_start_ms;  /* first byte of the head being read; 0 before it */
    uint64_t requests;      /* requests answered on this connection */

    struct qln_slice body; /* undelivered part of the current body slice */
    int body_error;        /* sticky error of the body reader */
    int64_t body_total;    /* body bytes decoded so far (limit_request_body) */
    bool in_head;          /* a head is being read (the parser is past http_parser_next) */
    bool head_ready;       /* the head is parsed; its small body is being read first */
    bool body_done;        /* the whole request body was parsed */
    bool continue_sent;    /* "100 Continue" went out (or must not any more) */
    bool must_close;       /* close after the current response */
    bool stop_now;         /* the wait hook said QLN_WAIT_STOP: abandon */
    int64_t lingering_ms;  /* answered and shut for writing, the request body still
                              coming: discarding it since then (linger); 0: not */

    /* The client: the socket's peer ("" for unix sockets), or the source a
       PROXY protocol header named, for every request on the connection. */
    char peer_addr[INET6_ADDRSTRLEN];
    char peer_port[8];
    /* What that PROXY header said besides: "TCP4" or "TCP6" ("" without
       one), and the address and port the client connected to. */
    char proxy_proto[5];
    char proxy_addr[INET6_ADDRSTRLEN];
    char proxy_port[8];
    bool peer_trusted;  /* the peer is in --forwarded-allow-ips */
    bool proxy_pending; /* a PROXY protocol header may or must still come (first request) */
    bool proxy_allowed; /* the peer is in --proxy-allow-from */
    bool https;         /* wsgi.url_scheme of the current request is https */
};

/*
 * The deadline for a body read or a write that is about to wait: now plus the
 * timeout setting, or -1 when it is 0. Renewed whenever bytes move.
 */
int64_t conn_io_deadline(const struct qln_conn *c);

/*
 * Waits through C's wait hook until FD is ready for EVENTS (enum qln_ev) or
 * DEADLINE passes. Returns 0, -ETIMEDOUT, QLN_ESTOP (and marks C to be
 * abandoned) or -EIO.
 */
int conn_wait(struct qln_conn *c, unsigned events, int64_t deadline);

/*
 * Writes all of IOV[0, N) (modified in place) with sendmsg(MSG_NOSIGNAL, plus
 * MSG_MORE when MORE), waiting on EAGAIN. Returns 0 or a negative errno
 * (-EPIPE, -ECONNRESET, -ETIMEDOUT, QLN_ESTOP); after an error the
 * connection is marked to close.
 */
int conn_writev(struct qln_conn *c, struct iovec *iov, int n, bool more);
/*
 * Ends C's output after the last response bytes, which were written with
 * MORE: shutdown(SHUT_WR) sends them and the FIN in one segment, at once,
 * whatever work (the app's close(), hooks, logging) comes before close(2).
 * Reading stays possible (lingering).
 */
void conn_end_output(struct qln_conn *c);

/*
 * True when the rest of C's request body, if any, may be read and discarded
 * after the response so the connection stays usable: the body is done, a
 * Content-Length body has at most CONN_DRAIN_MAX bytes left, or a chunked
 * body (its size is unknown). Otherwise the response says Connection: close
 * (response.c).
 */
bool conn_body_drainable(const struct qln_conn *c);

/*
 * Frees the worker's connection pool and the idle connections in it (at
 * worker exit, so leak checkers stay quiet). Connections still open must have
 * been closed first.
 */
void conn_pool_free(struct qln_worker *w);

#endif
