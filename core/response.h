/*
 * The response writer behind include/qilin/response.h: status line and
 * headers, Date/Server/Connection, Content-Length or chunked framing,
 * HEAD/1xx/204/304 without body, writev and sendfile through the
 * connection layer. Worker processes only.
 */
#ifndef QILIN_CORE_RESPONSE_H
#define QILIN_CORE_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <qilin/common.h>

struct conn;
struct qln_request;

enum resp_framing {
    RESP_NO_BODY = 0, /* HEAD, 1xx, 204, 304: no body bytes on the wire */
    RESP_LENGTH = 1,  /* the app's Content-Length */
    RESP_CHUNKED = 2, /* HTTP/1.1 without Content-Length */
    RESP_CLOSE = 3,   /* HTTP/1.0 without Content-Length: the close ends the body */
};

/*
 * One per connection, reset for each request. The copies of the app's status
 * and headers live in STORE, the serialised head in HEAD; both buffers grow
 * to the largest response seen and are reused, so a keep-alive request
 * allocates nothing.
 */
struct qln_response {
    struct conn *conn;
    struct qln_request *req; /* the request it answers */
    bool started;            /* qln_resp_start() succeeded */
    bool head_sent;          /* the head was handed to the socket (it can no longer change) */
    bool keep_alive;         /* decided with the head: the connection may serve another request */
    bool cut_logged;         /* "body longer than Content-Length" was logged */
    int failed;              /* first write error (negative), then every write returns it */
    int status;              /* 200 */
    struct qln_slice status_line; /* "200 OK", in STORE */
    struct qln_header *headers;   /* the kept app headers, in STORE */
    size_t nheaders;
    int64_t content_length; /* the app's Content-Length, or -1 */
    enum resp_framing framing;
    int64_t body_bytes;  /* body bytes written (for the access log), framing excluded */
    const char *upgrade; /* qln_resp_upgrade's protocol ("websocket"), or NULL */
    bool hijacked;       /* qln_resp_hijack(): the app has the connection */
    char refusal[160];   /* why the last qln_resp_start() refused; "" when it did not */
    char *store;
    size_t store_cap;
    char *head;
    size_t head_cap;
    size_t head_len;
};

/* Prepares R to answer REQ on connection C (no allocation). */
void response_init(struct qln_response *r, struct conn *c, struct qln_request *req);
/* Frees R's buffers. */
void response_fini(struct qln_response *r);
/* Forgets the previous request's response; keeps the buffers. */
void response_reset(struct qln_response *r);

/*
 * Completes the response after handle() returned 0 having called
 * qln_resp_start(): sends the head if it has not left, the last chunk when
 * chunked, and marks the connection for closing when the body came out
 * shorter than its Content-Length. Returns 0 or a negative errno.
 */
int response_finish(struct qln_response *r);

/*
 * Formats a complete error response (status line, Date, Connection: close,
 * Content-Type: text/html, Content-Length, a small html page) for STATUS into
 * BUF (LEN bytes; 512 is plenty). Returns its length and stores the page's
 * length in *BODY_LEN. Thread-safe.
 */
size_t response_error_page(char *buf, size_t len, int status, size_t *body_len);

/*
 * Formats STATUS's small html error page (the one response_error_page()
 * sends) into BUF (LEN bytes; 256 is plenty). Returns its length.
 * Thread-safe.
 */
size_t response_error_body(char *buf, size_t len, int status);

/* Formats T as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") into OUT. Thread-safe. */
void response_format_date(time_t t, char out[30]);

/*
 * Writes the current Date value ("Sun, 06 Nov 1994 08:49:37 GMT", 29 bytes
 * and a NUL) into OUT; regenerated only when the second changes, from a
 * per-thread cache. Thread-safe.
 */
void response_date(char out[30]);

#endif
