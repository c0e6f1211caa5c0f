/*
 * The session: a client connection as worker plugins hold it (struct
 * qln_conn, opaque to them; <qilin/conn.h>). It joins the layers below:
 * the connection (conn.h: transport, buffer, peer), the HTTP/1.1 parser,
 * and the request and response it is serving, and runs the requests one
 * after the other: read the head, call the app, finish the response, log,
 * keep alive or close. Sessions come from a per-worker pool and are
 * reused. Worker processes only.
 */
#ifndef QILIN_CORE_SERVE_H
#define QILIN_CORE_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "http.h"
#include "request.h"
#include "response.h"

struct qln_worker;

struct qln_conn {
    struct conn conn; /* the connection layer */
    struct qln_worker *w;
    void *data;            /* the worker plugin's (qln_conn_set_data) */
    struct qln_conn *next; /* the pool's free list */

    /* HTTP/1.1: one parser, and one request in flight at a time. */
    struct http_parser parser;
    struct qln_request req;
    struct qln_response resp;

    size_t max_head;       /* the head may not grow beyond this (limits) */
    int64_t head_start_ms; /* first byte of the head being read; 0 before it */
    uint64_t requests;     /* requests answered on this connection */
    int64_t lingering_ms;  /* answered and shut for writing, the request body still
                              coming: discarding it since then (linger); 0: not */
    bool in_head;          /* a head is being read (the parser is past http_parser_next) */
    bool head_ready;       /* the head is parsed; its small body is being read first */
    bool peer_trusted;     /* the peer is in --forwarded-allow-ips */
    bool proxy_pending;    /* a PROXY protocol header may or must still come (first request) */
    bool proxy_allowed;    /* the peer is in --proxy-allow-from */
    bool tls_after_proxy;  /* TLS begins once the PROXY header (in the clear) was read */
    /* --protocol uwsgi: the connection carries one uwsgi packet, turned into
       an HTTP head in place (serve.c, read_uwsgi_packet), then its body. */
    bool uwsgi_pending; /* the packet is still to come */
    bool uwsgi_allowed; /* the peer is in --uwsgi-allow-from */
    bool uwsgi_https;   /* the packet said HTTPS */
    char *uwsgi_head;   /* scratch for the head, reused across connections */
    size_t uwsgi_head_cap;
};

/*
 * Frees the worker's session pool and the idle sessions in it (at worker
 * exit, so leak checkers stay quiet). Sessions still open must have been
 * closed first.
 */
void serve_pool_free(struct qln_worker *w);

#endif
