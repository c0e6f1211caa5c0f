/*
 * A request's accessors for app plugins (include/qilin/request.h) and its
 * body reader: slices decoded by the parser from the connection's buffer,
 * read on demand through the connection's wait hook, with 100 Continue,
 * limit_request_body and body_timeout.
 */
#include "qlnconfig.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <qilin/errno.h>
#include <qilin/log.h>
#include <qilin/request.h>

#include "conn.h"
#include "http.h"
#include "listener.h"
#include "request.h"
#include "util.h"

/* Room kept after a head for body bytes, so body reads never move the head.
   It holds an unfinished chunk-size line with room to spare. */
#define REQUEST_BODY_ROOM 4096
static_assert(HTTP_SIZE_LINE_MAX < REQUEST_BODY_ROOM, "room for a chunk-size line and more");
/* An unread body up to this size is drained to keep the connection; beyond, close. */
#define REQUEST_DRAIN_MAX (64 * 1024)

void
request_start(struct qln_request *r, struct conn *c, struct http_parser *parser)
{
    r->conn = c;
    r->parser = parser;
    /* Body reads reuse the room after the head, so make sure there is some
       before any slice points into the buffer. */
    if ((parser->chunked || parser->content_length > 0) &&
        c->cap - parser->head_end < REQUEST_BODY_ROOM)
        conn_buf_reserve(c, parser->head_end + REQUEST_BODY_ROOM);
    request_fill(r, parser, c->buf);
    r->https = c->t.ops->secure;
    r->forwarded_addr[0] = '\0';
    r->close_delimited = false;
    r->body.len = 0;
    r->body_error = 0;
    r->body_done = false;
    r->body_total = 0;
    r->continue_sent = false;
    r->final_sent = false;
}

/* ------------------------------------------------------------ the head */

/*
 * Splits an origin-form or absolute-form target into path and query (RFC
 * 9112 §3.2). The asterisk form ("OPTIONS *") has an empty path: it names
 * the server, not a resource, and PEP 3333 wants PATH_INFO empty or
 * starting with "/".
 */
static void
split_target(struct qln_request *r)
{
    const char *t = r->target.p;
    size_t n = r->target.len, b = 0, q, e;

    if (n == 1 && t[0] == '*') {
        r->path = r->query = (struct qln_slice){t + n, 0};
        return;
    }
    if (n > 0 && t[0] != '/') {
        const char *scheme = memmem(t, n, "://", 3);

        if (scheme != NULL) {
            const char *slash = memchr(scheme + 3, '/', (size_t)(t + n - scheme - 3));

            b = slash ? (size_t)(slash - t) : n;
        }
    }
    for (q = b; q < n && t[q] != '?' && t[q] != '#'; q++)
        ;
    r->path = (struct qln_slice){t + b, q - b};
    r->query = (struct qln_slice){t + n, 0};
    if (q < n && t[q] == '?') {
        for (e = q + 1; e < n && t[e] != '#'; e++)
            ;
        r->query = (struct qln_slice){t + q + 1, e - q - 1};
    }
}

void
request_fill(struct qln_request *r, const struct http_parser *p, const char *buf)
{
    size_t i;

    if (r->headers_cap < p->nfields) {
        r->headers_cap = p->fields_cap;
        r->headers = xrealloc(r->headers, r->headers_cap * sizeof(*r->headers));
    }
    for (i = 0; i < p->nfields; i++) {
        const struct http_field *f = &p->fields[i];

        r->headers[i].name = (struct qln_slice){buf + f->name_off, f->name_len};
        r->headers[i].value = (struct qln_slice){buf + f->value_off, f->value_len};
    }
    r->nheaders = p->nfields;
    r->method = (struct qln_slice){buf + p->method_off, p->method_len};
    r->target = (struct qln_slice){buf + p->target_off, p->target_len};
    split_target(r);
    r->version_minor = p->version_minor;
    r->content_length = p->chunked ? -1 : p->content_length;
    r->chunked = p->chunked;
    r->keep_alive = p->keep_alive;
    r->expect_continue = p->expect_continue;
    if (p->method_other) {
        /* Methods llhttp knows, but casefolded by http_casefold_method. */
        r->is_head = slice_eq(r->method, "HEAD");
        r->is_connect = slice_eq(r->method, "CONNECT");
    } else {
        r->is_head = p->method == HTTP_HEAD;
        r->is_connect = p->method == HTTP_CONNECT;
    }
}

void
request_fini(struct qln_request *r)
{
    free(r->headers);
    r->headers = NULL;
    r->headers_cap = 0;
}

/* ------------------------------------------------------------ the body reader */

/*
 * Adds the slice just decoded to the body's running total. A chunked body
 * declares no length, so limit_request_body can only be enforced here.
 */
static int
body_count(struct qln_request *r)
{
    int64_t limit = r->conn->s->limit_request_body;

    r->body_total += (int64_t)r->body.len;
    if (limit > 0 && r->body_total > limit) {
        qln_log(QLN_LOG_WARNING,
                "Invalid request from ip=%s: Request body too large (> %lld bytes):"
                " raise --limit-request-body if it is legitimate",
                r->conn->peer_addr, (long long)limit);
        r->body.len = 0;
        r->body_error = -EFBIG;
        r->conn->must_close = true;
        return r->body_error;
    }
    return 0;
}

/*
 * The client stopped sending before the end of the body: it closed or reset
 * the connection (N 0 or -ECONNRESET), its body_timeout passed (-ETIMEDOUT),
 * or another read error N. The request is incomplete, the client's fault:
 * one warning here, and 400 or 408 (request_error_status) if the app has
 * not answered yet. Returns the sticky error.
 */
static int
body_cut(struct qln_request *r, ssize_t n)
{
    struct conn *c = r->conn;
    char got[64];

    if (n == 0 || n == -ECONNRESET)
        r->body_error = QLN_EPEERCLOSED;
    else
        r->body_error = (int)n;
    c->must_close = true;
    if (r->body_error == QLN_ESTOP)
        return r->body_error;
    if (r->chunked)
        util_format(got, sizeof(got), "%lld bytes of a chunked body", (long long)r->body_total);
    else
        util_format(got, sizeof(got), "%lld of %lld bytes", (long long)r->body_total,
                    (long long)r->content_length);
    if (r->body_error == -ETIMEDOUT)
        qln_log(QLN_LOG_WARNING,
                "Invalid request from ip=%s: Request body not received within %lld s (got %s)",
                c->peer_addr, (long long)(c->s->body_timeout_ms / 1000), got);
    else
        qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: Request body incomplete (got %s): %s",
                c->peer_addr, got, qln_strerror(r->body_error));
    return r->body_error;
}

/*
 * Produces the next body slice into R->body. Returns 0 with a slice, 1 at
 * the end of the body, or a negative error (sticky in R->body_error); with
 * NOWAIT, -EAGAIN (not sticky) where it would wait for the client.
 */
static int
body_next(struct qln_request *r, bool nowait)
{
    struct conn *c = r->conn;
    struct http_parser *p = r->parser;
    ssize_t n;

    for (;;) {
        switch (http_parse(p, c->buf, c->len, &c->pos)) {
        case HTTP_BODY_DATA:
            r->body = p->body;
            return body_count(r);
        case HTTP_MSG_DONE:
            r->body_done = true;
            return 1;
        case HTTP_ERROR:
            qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: %s", c->peer_addr, p->reason);
            r->body_error = QLN_EBADBODY;
            c->must_close = true;
            return r->body_error;
        default:
            break;
        }
        /* What was parsed is done with: reuse the room after the head. The
           parser may have left the start of a chunk-size line unconsumed,
           which moves there with it (http_parse allows that). */
        if (c->pos > p->head_end) {
            memmove(c->buf + p->head_end, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos - p->head_end;
            c->pos = p->head_end;
        }
        if (nowait) {
            n = conn_read_some(c);
            /* The caller waits on its own loop, so the body_timeout is checked
               here: the client sent nothing for that long. */
            if (n == -EAGAIN && c->s->body_timeout_ms > 0 &&
                util_now_ms() - c->last_active_ms >= c->s->body_timeout_ms)
                n = -ETIMEDOUT;
            else if (n == -EAGAIN)
                return -EAGAIN;
        } else {
            n = conn_read_wait(c, c->s->body_timeout_ms);
        }
        if (n <= 0)
            return body_cut(r, n);
    }
}

static int
send_continue(struct qln_request *r)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

    r->continue_sent = true;
    /* Once the final response has started, an interim one would corrupt it. */
    if (r->final_sent)
        return 0;
    return conn_write_all(r->conn, msg, sizeof(msg) - 1);
}

static ssize_t
read_body(struct qln_request *r, void *buf, size_t len, bool nowait)
{
    size_t n;
    int rc;

    if (r->body_error != 0)
        return r->body_error;
    if (r->body.len == 0 && r->body_done)
        return 0;
    if (len == 0)
        return 0;
    if (r->expect_continue && !r->continue_sent) {
        rc = send_continue(r);
        if (rc < 0)
            return rc;
    }
    while (r->body.len == 0) {
        rc = body_next(r, nowait);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
    }
    n = len < r->body.len ? len : r->body.len;
    memcpy(buf, r->body.p, n);
    r->body.p += n;
    r->body.len -= n;
    return (ssize_t)n;
}

ssize_t
qln_req_read(struct qln_request *r, void *buf, size_t len)
{
    return read_body(r, buf, len, false);
}

ssize_t
qln_req_read_nowait(struct qln_request *r, void *buf, size_t len)
{
    return read_body(r, buf, len, true);
}

int64_t
qln_req_body_timeout_ms(const struct qln_request *r)
{
    return r->conn->s->body_timeout_ms;
}

bool
request_body_drainable(const struct qln_request *r)
{
    int64_t left;

    if (r->body_done)
        return true;
    /* The client waits for "100 Continue" before sending its body, or sends
       it anyway after a while: either way it may never come. */
    if (r->expect_continue && !r->continue_sent)
        return false;
    if (r->body_error != 0)
        return false;
    /* A chunked body's size is unknown until it ends: try. Past
       REQUEST_DRAIN_MAX request_drain_body gives up, and the connection
       ends with a lingering close, before the client sent anything more. */
    if (r->chunked)
        return true;
    left = r->content_length - (r->body_total - (int64_t)r->body.len);
    return left <= REQUEST_DRAIN_MAX;
}

int
request_drain_body(struct qln_request *r)
{
    size_t drained = 0;
    int rc;

    if (r->body_done)
        return 0;
    if (!request_body_drainable(r))
        return -1;
    while (drained <= REQUEST_DRAIN_MAX) {
        drained += r->body.len;
        r->body.len = 0;
        rc = body_next(r, false);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return -1;
    }
    return -1;
}

bool
request_body_left(const struct qln_request *r)
{
    return (r->chunked || r->content_length > 0) && !r->body_done &&
           r->body_error != QLN_EPEERCLOSED;
}

int
request_error_status(int err)
{
    switch (err) {
    case QLN_EBADBODY:
    case QLN_EPEERCLOSED:
        return 400;
    case -EFBIG:
        return 413;
    case -ETIMEDOUT:
        return 408;
    default:
        return 500;
    }
}

/* ------------------------------------------------------------ the accessors */

struct qln_slice
qln_req_method(const struct qln_request *r)
{
    return r->method;
}

struct qln_slice
qln_req_target(const struct qln_request *r)
{
    return r->target;
}

struct qln_slice
qln_req_path(const struct qln_request *r)
{
    return r->path;
}

struct qln_slice
qln_req_query(const struct qln_request *r)
{
    return r->query;
}

int
qln_req_version_minor(const struct qln_request *r)
{
    return r->version_minor;
}

size_t
qln_req_nheaders(const struct qln_request *r)
{
    return r->nheaders;
}

const struct qln_header *
qln_req_headers(const struct qln_request *r)
{
    return r->headers;
}

int64_t
qln_req_content_length(const struct qln_request *r)
{
    return r->content_length;
}

bool
qln_req_chunked(const struct qln_request *r)
{
    return r->chunked;
}

int
qln_req_fd(const struct qln_request *r)
{
    return r->conn->t.fd;
}

const char *
qln_req_remote_addr(const struct qln_request *r)
{
    return r->forwarded_addr[0] != '\0' ? r->forwarded_addr : r->conn->peer_addr;
}

const char *
qln_req_remote_port(const struct qln_request *r)
{
    /* A forwarded address comes without a port we could trust: say none
       rather than pair the client's address with the proxy's port. */
    return r->forwarded_addr[0] != '\0' ? "" : r->conn->peer_port;
}

const char *
qln_req_server_name(const struct qln_request *r)
{
    const struct listener *l = r->conn->listener;

    return l != NULL ? l->host : "";
}

const char *
qln_req_server_port(const struct qln_request *r)
{
    const struct listener *l = r->conn->listener;

    return l != NULL ? l->port : "";
}

const char *
qln_req_url_scheme(const struct qln_request *r)
{
    return r->https ? "https" : "http";
}

bool
qln_req_tls_var(const struct qln_request *r, size_t i, const char **name, const char **value)
{
    struct transport *t = &r->conn->t;

    return t->ops->var != NULL && t->ops->var(t, i, name, value);
}

const char *
qln_req_proxy_protocol(const struct qln_request *r)
{
    return r->conn->proxy_proto[0] != '\0' ? r->conn->proxy_proto : NULL;
}

const char *
qln_req_proxy_addr(const struct qln_request *r)
{
    return r->conn->proxy_proto[0] != '\0' ? r->conn->proxy_addr : NULL;
}

const char *
qln_req_proxy_port(const struct qln_request *r)
{
    return r->conn->proxy_proto[0] != '\0' ? r->conn->proxy_port : NULL;
}

ssize_t
qln_req_upgraded_read(struct qln_request *r, void *buf, size_t len, bool nowait)
{
    struct conn *c = r->conn;
    ssize_t n;
    int rc;

    if (len == 0)
        return 0;
    /* What the client sent right after its request head comes first. */
    if (c->pos < c->len) {
        n = (ssize_t)(c->len - c->pos < len ? c->len - c->pos : len);
        memcpy(buf, c->buf + c->pos, (size_t)n);
        c->pos += (size_t)n;
        return n;
    }
    for (;;) {
        n = transport_read(&c->t, buf, len);
        if (n > 0) {
            c->last_active_ms = util_now_ms();
            return n;
        }
        if (n != -EAGAIN || nowait)
            return n;
        rc = conn_wait(c, c->t.want, -1);
        if (rc < 0)
            return rc;
    }
}
