/*
 * The request layer: one HTTP request as the app sees it
 * (include/qilin/request.h), and its body reader. A request is its own
 * object, apart from the connection it came on: it points at that
 * connection for the bytes and at the parser that decodes its body. Over
 * HTTP/1.1 a connection carries one request at a time (the session,
 * serve.c, embeds it); a multiplexing protocol gives each stream its own
 * request and its own body source, on one connection. Worker processes
 * only; one request is used by one thread at a time.
 */
#ifndef QILIN_CORE_REQUEST_H
#define QILIN_CORE_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <qilin/common.h>

struct conn;
struct http_parser;

struct qln_request {
    struct conn *conn;          /* the connection it came on */
    struct http_parser *parser; /* decodes its body from the connection's buffer */

    /* The head, filled by request_fill(). Slices point into the
       connection's read buffer and stay valid until handle() returns. */
    struct qln_slice method;
    struct qln_slice target;
    struct qln_slice path;
    struct qln_slice query;
    int version_minor;
    struct qln_header *headers; /* reused across requests */
    size_t nheaders;
    size_t headers_cap;
    int64_t content_length; /* -1 when chunked or absent */
    bool chunked;
    bool keep_alive;      /* the client allows another request on this connection */
    bool expect_continue; /* HTTP/1.1 "Expect: 100-continue" */
    bool is_head;
    bool is_connect;

    /* What a trusted proxy said (serve.c): wsgi.url_scheme https, and
       REMOTE_ADDR from Forwarded/X-Forwarded-For ("": the connection's peer). */
    bool https;
    char forwarded_addr[48];
    /* The front end cannot take a chunked response (--protocol uwsgi): a body
       of unknown length is ended by closing the connection. */
    bool close_delimited;

    /* The body reader. */
    struct qln_slice body; /* undelivered part of the current body slice */
    int body_error;        /* sticky error of the body reader */
    int64_t body_total;    /* body bytes decoded so far (limit_request_body) */
    bool body_done;        /* the whole body was parsed */
    bool continue_sent;    /* "100 Continue" went out (or must not any more) */
    bool final_sent;       /* the final response's head left: no interim response now */
};

/*
 * After HTTP_HEAD_DONE: fills R's head from P's offsets into BUF (the same
 * buffer, possibly moved since). R->headers is grown as needed and reused.
 */
void request_fill(struct qln_request *r, const struct http_parser *p, const char *buf);
/* Frees R's header array. */
void request_fini(struct qln_request *r);

/* Makes R a request of connection C whose head PARSER just parsed; no allocation. */
void request_start(struct qln_request *r, struct conn *c, struct http_parser *parser);

/*
 * True when the rest of R's body, if any, may be read and discarded after
 * the response so the connection stays usable: the body is done, a
 * Content-Length body has at most REQUEST_DRAIN_MAX bytes left, or a chunked
 * body (its size is unknown). Otherwise the response says Connection: close.
 */
bool request_body_drainable(const struct qln_request *r);

/*
 * Reads and discards the rest of R's body so the next request can be
 * parsed. Returns 0 when the body ended, else -1: the connection must close
 * (not request_body_drainable(), or an error).
 */
int request_drain_body(struct qln_request *r);

/* True when R's body was cut short by its client or the limits (not read to its end). */
bool request_body_left(const struct qln_request *r);

/*
 * The HTTP status that answers a request whose body read failed with the
 * body reader's error ERR: 400, 408, 413, or 500 (0: the app failed).
 */
int request_error_status(int err);

#endif
