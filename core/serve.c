/*
 * The session every worker runs on each connection: accept, read
 * (optimistically), parse, call the app plugin's handle(), finish the
 * response, log access, keep-alive and pipelining, the lingering close;
 * and the per-worker session pool. The bytes go through the connection
 * layer (conn.c), the body through the request (request.c), the answer
 * through the response (response.c). Worker processes only.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <qilin/conn.h>
#include <qilin/errno.h>
#include <qilin/log.h>
#include <qilin/plugin.h>

#include "hooks.h" /* pre_request/post_request */
#include "listener.h"
#include "log.h"
#include "proxy.h"
#include "scoreboard.h"
#include "serve.h"
#include "static.h"
#include "statsd.h"
#include "tls.h"
#include "util.h"
#include "uwsgi.h"
#include "worker.h"

/* A Content-Length body up to this size is read before the app runs (wants_preread). */
#define SERVE_PREREAD_MAX (64 * 1024)
/* Lingering close (closing): how long the rest of an unwanted request
   body is read away at most, and how long the client may pause meanwhile. */
#define LINGER_TOTAL_MS 10000
#define LINGER_IDLE_MS 2000
/* Idle sessions kept for reuse per worker. */
#define SERVE_POOL_KEEP 256
/* How early a worker's deadline timer may fire on our clock (head_timed_out). */
#define HEAD_TIMER_SLACK_MS 20

struct serve_pool {
    pthread_mutex_t lock; /* gthread: pool threads close, the main thread accepts */
    struct qln_conn *free;
    size_t nfree;
};

enum serve_step {
    STEP_NEXT = 0, /* go on with the next request on this connection */
    STEP_IDLE,
    STEP_CLOSED,
    STEP_STOP,
};

static void
limits_of(const struct conn_settings *s, struct http_limits *lim)
{
    lim->line = s->limit_request_line ? s->limit_request_line : 8190;
    lim->fields = s->limit_request_fields ? s->limit_request_fields : 32768;
    lim->field_size = s->limit_request_field_size ? s->limit_request_field_size : 8190;
    lim->obs_fold = s->obs_fold;
    lim->any_version = s->any_version;
}

/* ------------------------------------------------------------ pool */

static struct serve_pool *
pool_of(struct qln_worker *w)
{
    struct serve_pool *pool = __atomic_load_n(&w->pool, __ATOMIC_ACQUIRE);
    struct serve_pool *expected = NULL;

    if (pool != NULL)
        return pool;
    /* Created on first use; two threads racing here both allocate and one frees. */
    pool = xcalloc(1, sizeof(*pool));
    pthread_mutex_init(&pool->lock, NULL);
    if (!__atomic_compare_exchange_n(&w->pool, &expected, pool, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        pthread_mutex_destroy(&pool->lock);
        free(pool);
        pool = expected;
    }
    return pool;
}

static void
session_free(struct qln_conn *c)
{
    http_parser_fini(&c->parser);
    request_fini(&c->req);
    response_fini(&c->resp);
    conn_release(&c->conn, false);
    free(c->uwsgi_head);
    free(c);
}

static struct qln_conn *
session_get(struct qln_worker *w)
{
    struct serve_pool *pool = pool_of(w);
    struct http_limits lim;
    struct qln_conn *c;

    pthread_mutex_lock(&pool->lock);
    c = pool->free;
    if (c != NULL) {
        pool->free = c->next;
        pool->nfree--;
    }
    pthread_mutex_unlock(&pool->lock);

    limits_of(&w->conn, &lim);
    if (c == NULL) {
        c = xcalloc(1, sizeof(*c));
        http_parser_init(&c->parser, &lim);
        response_init(&c->resp, &c->conn, &c->req);
        c->conn.s = &w->conn;
        c->conn.stop = &w->stop;
    } else {
        c->parser.limits = lim;
    }
    c->w = w;
    c->next = NULL;
    /* The head may hold the request line, every field at its maximum, and the CRLFs. */
    c->max_head = lim.line + 2 + lim.fields * lim.field_size + 2;
    return c;
}

static void
session_put(struct qln_conn *c)
{
    struct serve_pool *pool = pool_of(c->w);

    conn_release(&c->conn, true);
    pthread_mutex_lock(&pool->lock);
    if (pool->nfree < SERVE_POOL_KEEP) {
        c->next = pool->free;
        pool->free = c;
        pool->nfree++;
        c = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    if (c != NULL)
        session_free(c);
}

void
serve_pool_free(struct qln_worker *w)
{
    struct serve_pool *pool = w->pool;
    struct qln_conn *c;

    if (pool == NULL)
        return;
    while ((c = pool->free) != NULL) {
        pool->free = c->next;
        session_free(c);
    }
    pthread_mutex_destroy(&pool->lock);
    free(pool);
    w->pool = NULL;
}

/* ------------------------------------------------------------ accept / close */

static const struct listener *
listener_for(const struct qln_worker *w, int lfd)
{
    size_t i;

    for (i = 0; i < w->nlisteners; i++) {
        if (w->listeners[i].fd == lfd)
            return &w->listeners[i];
    }
    return NULL;
}

int
qln_conn_accept(struct qln_worker *w, int lfd, struct qln_conn **out)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    struct qln_conn *c;
    int fd;

    /* EMFILE/ENFILE go back to the worker plugin, which stops accepting for a
       moment: retrying at once would spin, since the pending connection stays
       in the backlog and the listener stays readable. */
    ss.ss_family = AF_UNSPEC; /* an unnamed unix peer may leave it untouched */
    fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    /* TCP_NODELAY comes from the listener (listener.c sets it on every TCP
       listener, ours or inherited): Linux copies it to accepted sockets. */
    c = session_get(w);
    conn_open(&c->conn, fd, &ss);
    c->proxy_pending = w->conn.proxy.mode != PROXY_MODE_OFF;
    /* A proxy sends its PROXY header before the handshake, in the clear. */
    c->tls_after_proxy = w->conn.tls != NULL && c->proxy_pending;
    if (w->conn.tls != NULL && !c->tls_after_proxy &&
        transport_tls_init(&c->conn.t, fd, w->conn.tls, c->conn.peer_addr, NULL, 0) != 0) {
        conn_close(&c->conn);
        session_put(c);
        return -ENOMEM;
    }
    c->conn.listener = listener_for(w, lfd);
    c->data = NULL;
    c->head_start_ms = 0;
    c->requests = 0;
    c->in_head = false;
    c->head_ready = false;
    c->lingering_ms = 0;
    c->peer_trusted = proxy_allow_match(&w->conn.forwarded_allow, &ss);
    c->proxy_allowed = c->proxy_pending && proxy_allow_match(&w->conn.proxy.from, &ss);
    c->uwsgi_pending = w->conn.uwsgi;
    c->uwsgi_allowed = w->conn.uwsgi && proxy_allow_match(&w->conn.uwsgi_allow, &ss);
    c->uwsgi_https = false;
    *out = c;
    return 0;
}

int
qln_conn_fd(const struct qln_conn *c)
{
    return c->conn.t.fd;
}

static void reject_now(struct qln_conn *c, int status, const char *reason);

/* When the head being read must be complete: its first byte plus header_timeout. */
static int64_t
head_deadline(const struct qln_conn *c)
{
    int64_t t = c->w->conn.header_timeout_ms;

    return t > 0 ? c->head_start_ms + t : -1;
}

/*
 * True when the worker closes C because its head deadline passed with part
 * of a head received: that client deserves a 408 rather than a bare close.
 * A client that sent nothing is just closed (it may be a preconnect).
 */
static bool
head_timed_out(const struct qln_conn *c)
{
    int64_t d = head_deadline(c);

    /* The worker's timer rounds its delay to its own clock, so it may fire a
       millisecond or two before D on ours: allow for that. */
    return c->in_head && c->conn.len > 0 && d >= 0 && util_now_ms() + HEAD_TIMER_SLACK_MS >= d &&
           conn_stopping(&c->conn) == QLN_STOP_NONE;
}

void
qln_conn_close(struct qln_conn *c, const struct qln_waiter *waiter)
{
    if (c->conn.t.fd >= 0 && head_timed_out(c)) {
        char reason[64];

        util_format(reason, sizeof(reason), "Request not complete within %lld s",
                    (long long)(c->w->conn.header_timeout_ms / 1000));
        reject_now(c, 408, reason);
    }
    if (c->conn.t.fd >= 0) {
        if (waiter != NULL && waiter->fd_closing != NULL)
            waiter->fd_closing(waiter->ctx, c->conn.t.fd);
        conn_close(&c->conn);
        qln_log(QLN_LOG_DEBUG, "Closing connection.");
    }
    session_put(c);
}

void
qln_conn_set_data(struct qln_conn *c, void *data)
{
    c->data = data;
}

void *
qln_conn_data(const struct qln_conn *c)
{
    return c->data;
}

bool
qln_conn_readable(const struct qln_conn *c)
{
    struct pollfd pfd = {.fd = c->conn.t.fd, .events = POLLIN};

    /* Only the transport: what the buffer holds was looked at when serve()
       returned IDLE, and only more bytes can change that. */
    return transport_pending(&c->conn.t) || poll(&pfd, 1, 0) > 0;
}

int64_t
qln_conn_deadline(const struct qln_conn *c)
{
    const struct conn_settings *s = &c->w->conn;
    int64_t idle;

    if (c->lingering_ms != 0) {
        idle = c->conn.last_active_ms + LINGER_IDLE_MS;
        return idle < c->lingering_ms + LINGER_TOTAL_MS ? idle : c->lingering_ms + LINGER_TOTAL_MS;
    }
    if (c->conn.len > 0 && c->in_head)
        return head_deadline(c);
    /* The TLS handshake is part of the first request's head. */
    if (c->conn.t.handshaking && s->header_timeout_ms > 0)
        return c->conn.accepted_ms + s->header_timeout_ms;
    if (s->keepalive_ms > 0)
        return c->conn.last_active_ms + s->keepalive_ms;
    /* keepalive 0 closes after each response, so only a fresh connection gets
       here; it has the head budget to send its one request. */
    return s->header_timeout_ms > 0 ? c->conn.accepted_ms + s->header_timeout_ms : -1;
}

/* ------------------------------------------------------------ errors */

/*
 * After a final answer on a connection about to close: shuts the write side
 * and reads away what the client already sent (without waiting), so the
 * close does not turn into a reset that destroys the answer before the
 * client reads it.
 */
static void
linger_away(struct qln_conn *c)
{
    int i;

    conn_end_output(&c->conn);
    for (i = 0; i < 16; i++) {
        c->conn.len = 0;
        if (conn_read_some(&c->conn) <= 0)
            break;
    }
}

/*
 * Answers STATUS to a request whose head is bad or late, logging REASON.
 * Serving must not wait before a head is complete, so this is one
 * non-blocking attempt, as gunicorn does it; the page is small enough to fit
 * any socket buffer. Then linger_away().
 */
static void
reject_now(struct qln_conn *c, int status, const char *reason)
{
    char page[512];
    size_t body_len;
    size_t n = response_error_page(page, sizeof(page), status, &body_len);
    struct iovec iov = {page, n};

    qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: %s", c->conn.peer_addr, reason);
    if (transport_writev(&c->conn.t, &iov, 1, false) < 0)
        return;
    linger_away(c);
}

static void
reject_head(struct qln_conn *c)
{
    reject_now(c, c->parser.status, c->parser.reason);
}

/* Answers STATUS inside a request (the head has not left): through the wait hook. */
static void
answer_error(struct qln_conn *c, int status)
{
    char page[512];
    size_t body_len;
    size_t n = response_error_page(page, sizeof(page), status, &body_len);
    struct qln_response *r = &c->resp;

    r->status = status;
    r->nheaders = 0;
    r->head_sent = true;
    r->keep_alive = false;
    c->req.final_sent = true;
    c->conn.must_close = true;
    if (conn_write_all(&c->conn, page, n) == 0)
        r->body_bytes = (int64_t)body_len;
}

/*
 * Refuses the request in hand before the app runs: logs REASON as gunicorn's
 * "Invalid request" line and answers STATUS; the connection then closes
 * (closing). Returns true, for the checks below.
 */
static bool
refuse_request(struct qln_conn *c, int status, const char *reason)
{
    qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: %s", c->conn.peer_addr, reason);
    answer_error(c, status);
    return true;
}

/*
 * The connection ends after its answer. When the client may still be
 * sending the request's body (the app did not read it, or it was refused
 * unread), closing now would make the kernel answer those bytes with a
 * reset, and a reset can destroy the answer before the client reads it
 * (RFC 9112 §9.6): nginx then reports 502. So the write side is shut
 * (the client sees the answer end) and the connection lingers, reading
 * and discarding, until the client closes or pauses for LINGER_IDLE_MS,
 * for LINGER_TOTAL_MS at most: the worker parks it like an idle one
 * (qln_conn_deadline), so no worker waits on it.
 */
static enum serve_step
closing(struct qln_conn *c)
{
    if (c->conn.stop_now)
        return STEP_STOP;
    if (!request_body_left(&c->req))
        return STEP_CLOSED;
    conn_end_output(&c->conn);
    c->lingering_ms = c->conn.last_active_ms = util_now_ms();
    return STEP_IDLE;
}

/* A lingering connection (closing) got bytes, or its deadline came. */
static enum qln_conn_status
linger_read(struct qln_conn *c)
{
    ssize_t n;

    for (;;) {
        if (util_now_ms() >= qln_conn_deadline(c))
            return QLN_CONN_CLOSED;
        c->conn.len = c->conn.pos = 0;
        n = conn_read_some(&c->conn);
        if (n == -EAGAIN)
            return QLN_CONN_IDLE;
        if (n <= 0)
            return QLN_CONN_CLOSED;
    }
}

/* ------------------------------------------------------------ reading the head */

/*
 * A small Content-Length body is read before the app runs, while the
 * connection can still go back to the worker's loop (IDLE) between reads:
 * a client that sends it slowly then costs a parked connection, not a
 * worker blocked in a body read (slowloris on the body). Not with
 * 100-continue (the client waits for our go), nor beyond the body limit
 * (answered 413 at once).
 */
static bool
wants_preread(const struct qln_conn *c)
{
    const struct http_parser *p = &c->parser;
    int64_t limit = c->w->conn.limit_request_body;

    return p->content_length > 0 && p->content_length <= SERVE_PREREAD_MAX && !p->expect_continue &&
           (limit <= 0 || p->content_length <= limit);
}

/* After a pre-read head: the whole body is in the buffer. */
static bool
body_buffered(const struct qln_conn *c)
{
    return c->conn.len - c->parser.head_end >= (size_t)c->parser.content_length;
}

/*
 * The PROXY protocol header that may (auto) or must (v1, v2) come before the
 * first request, read from the start of the buffer. Stateless: it is parsed
 * again as bytes arrive, which costs little at its 107 (v1) or 2064 (v2)
 * bytes at most, and no memory. Returns STEP_NEXT once it is
 * done (or absent), STEP_IDLE for more bytes, or STEP_CLOSED after an
 * answered refusal.
 */
static enum serve_step
read_proxy_header(struct qln_conn *c)
{
    struct conn *io = &c->conn;
    struct proxy_header h;
    enum proxy_rc rc = proxy_header_parse(c->w->conn.proxy.mode, io->buf, io->len, &h);
    char reason[128];

    /* gunicorn checks the peer as soon as it sees a header, before its content. */
    if (h.version != 0 && !c->proxy_allowed) {
        util_format(reason, sizeof(reason),
                    "Proxy request from %s not allowed (add it to --proxy-allow-from)",
                    io->peer_addr);
        reject_now(c, 403, reason);
        return STEP_CLOSED;
    }
    switch (rc) {
    case PROXY_NEED_MORE:
        return STEP_IDLE;
    case PROXY_BAD:
        reject_now(c, 400, h.reason);
        return STEP_CLOSED;
    case PROXY_DONE:
        if (!h.local) {
            memcpy(io->peer_addr, h.addr, sizeof(io->peer_addr));
            memcpy(io->peer_port, h.port, sizeof(io->peer_port));
            memcpy(io->proxy_proto, h.proto, sizeof(io->proxy_proto));
            memcpy(io->proxy_addr, h.dst_addr, sizeof(io->proxy_addr));
            memcpy(io->proxy_port, h.dst_port, sizeof(io->proxy_port));
        }
        /* The request's head must start at offset 0 (http_parser_next). */
        memmove(io->buf, io->buf + h.len, io->len - h.len);
        io->len -= h.len;
        break;
    default:
        break; /* auto, and no header: the bytes are HTTP (or TLS) */
    }
    c->proxy_pending = false;
    if (c->tls_after_proxy) {
        /* What came after the header is the start of the handshake. */
        c->tls_after_proxy = false;
        if (transport_tls_init(&io->t, io->t.fd, c->w->conn.tls, io->peer_addr, io->buf, io->len) !=
            0) {
            qln_log(QLN_LOG_ERROR, "out of memory starting TLS for ip=%s", io->peer_addr);
            return STEP_CLOSED;
        }
        io->len = 0;
    }
    return STEP_NEXT;
}

/* True when S is a decimal port number. */
static bool
port_ok(struct qln_slice s)
{
    size_t i;

    for (i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
    }
    return s.len > 0 && s.len < 6;
}

/*
 * --protocol uwsgi: the connection's packet, from the start of the buffer
 * (after any PROXY header). Once whole it is replaced in place by the HTTP
 * head it stands for (uwsgi.c), followed by the body bytes already read, so
 * the HTTP parser, its limits and the body reader take it from there. The
 * peer must be in --uwsgi-allow-from, checked before the packet is read, as
 * gunicorn does: it decides the client's address (REMOTE_ADDR) and scheme.
 * Returns STEP_NEXT once converted, STEP_IDLE for more bytes, or STEP_CLOSED
 * after an answered refusal.
 */
static enum serve_step
read_uwsgi_packet(struct qln_conn *c)
{
    struct conn *io = &c->conn;
    struct uwsgi_packet p;
    size_t need, n, body;
    char reason[128], addr[sizeof(io->peer_addr)];
    unsigned char bin[sizeof(struct in6_addr)];

    if (!c->uwsgi_allowed) {
        util_format(reason, sizeof(reason),
                    "uWSGI request from '%s' not allowed (add it to --uwsgi-allow-from)",
                    io->peer_addr);
        reject_now(c, 403, reason);
        return STEP_CLOSED;
    }
    switch (uwsgi_parse(io->buf, io->len, &p)) {
    case UWSGI_NEED_MORE:
        return STEP_IDLE;
    case UWSGI_BAD:
        reject_now(c, 400, p.reason);
        return STEP_CLOSED;
    default:
        break;
    }
    /* The front end saw the client: its REMOTE_ADDR is the request's, when it
       is an address (not a name, nor empty). The peer is trusted here. */
    if (p.remote_addr.len > 0 && p.remote_addr.len < sizeof(addr)) {
        memcpy(addr, p.remote_addr.p, p.remote_addr.len);
        addr[p.remote_addr.len] = '\0';
        if (inet_pton(AF_INET, addr, bin) == 1 || inet_pton(AF_INET6, addr, bin) == 1) {
            memcpy(io->peer_addr, addr, p.remote_addr.len + 1);
            io->peer_port[0] = '\0';
            if (port_ok(p.remote_port)) {
                memcpy(io->peer_port, p.remote_port.p, p.remote_port.len);
                io->peer_port[p.remote_port.len] = '\0';
            }
        }
    }
    c->uwsgi_https = p.https;
    need = uwsgi_http_head_size(&p);
    if (c->uwsgi_head_cap < need) {
        c->uwsgi_head = xrealloc(c->uwsgi_head, need);
        c->uwsgi_head_cap = need;
    }
    /* Written aside first: the packet it is made from is where it goes. */
    n = uwsgi_http_head(&p, c->uwsgi_head);
    body = io->len - p.len;
    conn_buf_reserve(io, n + body + 1);
    memmove(io->buf + n, io->buf + p.len, body);
    memcpy(io->buf, c->uwsgi_head, n);
    io->len = n + body;
    c->uwsgi_pending = false;
    return STEP_NEXT;
}

/*
 * Reads and parses until a head is complete. Returns STEP_NEXT with the
 * request filled in, STEP_IDLE when the socket has nothing more for now, or
 * STEP_CLOSED (EOF, reset, or a bad head that was answered).
 */
static enum serve_step
read_head(struct qln_conn *c)
{
    struct conn *io = &c->conn;
    enum http_rc rc;
    ssize_t n;

    if (!c->in_head) {
        /* Pipelined bytes of the next request move to the start of the buffer,
           so the head's offsets start at 0 and body reads can reuse the rest. */
        if (io->pos > 0) {
            memmove(io->buf, io->buf + io->pos, io->len - io->pos);
            io->len -= io->pos;
            io->pos = 0;
        }
        http_parser_next(&c->parser);
        c->in_head = true;
        c->head_start_ms = io->len > 0 ? util_now_ms() : 0;
    }
    for (;;) {
        if (c->proxy_pending && io->len > 0 && read_proxy_header(c) == STEP_CLOSED)
            return STEP_CLOSED;
        if (!c->proxy_pending && c->uwsgi_pending && io->len > 0 &&
            read_uwsgi_packet(c) == STEP_CLOSED)
            return STEP_CLOSED;
        if (c->head_ready) {
            if (body_buffered(c))
                return STEP_NEXT;
        } else if (!c->proxy_pending && !c->uwsgi_pending && io->pos < io->len) {
            rc = http_parse(&c->parser, io->buf, io->len, &io->pos);
            if (rc == HTTP_HEAD_DONE && !wants_preread(c))
                return STEP_NEXT;
            if (rc == HTTP_HEAD_DONE) {
                c->head_ready = true;
                conn_buf_reserve(io, c->parser.head_end + (size_t)c->parser.content_length + 1);
                continue;
            }
            if (rc == HTTP_NEED_MORE && io->len >= c->max_head)
                rc = http_parser_overflow(&c->parser);
            if (rc == HTTP_ERROR) {
                reject_head(c);
                return STEP_CLOSED;
            }
        }
        if (io->len == io->cap)
            conn_buf_reserve(io, io->len + 1); /* below max_head, checked above */
        n = conn_read_some(io);
        if (n == -EAGAIN)
            return STEP_IDLE;
        if (n <= 0 && c->head_ready) {
            /* The head was whole, its pre-read body is not: as the body reader. */
            char reason[96];

            util_format(reason, sizeof(reason),
                        "Request body incomplete (got %lld of %lld bytes): client closed the"
                        " connection",
                        (long long)(io->len - c->parser.head_end),
                        (long long)c->parser.content_length);
            reject_now(c, 400, reason);
            return STEP_CLOSED;
        }
        if (n == 0 && c->uwsgi_pending && io->len > 0) {
            /* A front end never half-sends a packet: answer it, as gunicorn does. */
            reject_now(c, 400, "incomplete uwsgi packet: the peer closed the connection");
            return STEP_CLOSED;
        }
        if (n <= 0)
            return STEP_CLOSED; /* EOF or reset between requests: nothing to answer */
        if (c->head_start_ms == 0)
            c->head_start_ms = io->last_active_ms;
    }
}

/* The head is complete: make the request visible to the app. */
static void
prepare_request(struct qln_conn *c)
{
    if (c->w->conn.casefold_method)
        http_casefold_method(&c->parser, c->conn.buf);
    request_start(&c->req, &c->conn, &c->parser);
    c->in_head = false;
    c->head_ready = false;
    c->conn.must_close = c->req.is_connect;
    if (c->w->conn.uwsgi) {
        /* One request per uwsgi connection, as uWSGI serves nginx: its uwsgi
           module does not decode a chunked response, so a body of unknown
           length is ended by the close. */
        c->conn.must_close = true;
        c->req.close_delimited = true;
        c->req.https = c->req.https || c->uwsgi_https;
    }
    response_reset(&c->resp);
}

/* ------------------------------------------------------------ serving */

static void
finish_response(struct qln_conn *c, int rc)
{
    struct qln_response *r = &c->resp;

    if (c->conn.stop_now)
        return;
    if (rc == 0 && r->started) {
        if (response_finish(r) < 0)
            c->conn.must_close = true;
        return;
    }
    if (rc == 0)
        qln_log(QLN_LOG_ERROR, "Application returned no response for %.*s %.*s",
                (int)c->req.method.len, c->req.method.p, (int)c->req.target.len, c->req.target.p);
    if (!r->head_sent) {
        /* A body that broke its framing, its size limit or its timeout is the
           client's fault, not the app's. */
        answer_error(c, request_error_status(c->req.body_error));
    } else {
        c->conn.must_close = true; /* the head left: only a close tells the client */
    }
}

static int64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static bool
tls_env_var(const void *req, size_t i, const char **name, const char **value)
{
    return qln_req_tls_var(req, i, name, value);
}

static void
log_request(struct qln_conn *c, int64_t t0_us)
{
    struct access_record rec = {
        .req = &c->req,
        .remote_addr = qln_req_remote_addr(&c->req),
        .remote_port = qln_req_remote_port(&c->req),
        .server_name = qln_req_server_name(&c->req),
        .server_port = qln_req_server_port(&c->req),
        .url_scheme = qln_req_url_scheme(&c->req),
        .method = c->req.method,
        .target = c->req.target,
        .path = c->req.path,
        .query = c->req.query,
        .version_minor = c->req.version_minor,
        .status = c->resp.status,
        .body_bytes = c->resp.body_bytes,
        .req_headers = c->req.headers,
        .nreq_headers = c->req.nheaders,
        .resp_headers = c->resp.headers,
        .nresp_headers = c->resp.nheaders,
        .duration_us = mono_us() - t0_us,
        .env_var = c->conn.t.ops->var != NULL ? tls_env_var : NULL,
        .env_ctx = &c->req,
    };

    /* gunicorn's %(t)s is when the line is written, the request's end. */
    clock_gettime(CLOCK_REALTIME, &rec.time);
    log_access(&rec);
}

/*
 * A declared Content-Length beyond limit_request_body is refused before the
 * app runs (and before any 100 Continue, so the client need not send it).
 */
static bool
body_over_limit(struct qln_conn *c)
{
    int64_t limit = c->w->conn.limit_request_body;
    char reason[160];

    if (limit <= 0 || c->req.content_length <= limit)
        return false;
    util_format(reason, sizeof(reason),
                "Request body too large (%lld > %lld bytes): raise --limit-request-body if it"
                " is legitimate",
                (long long)c->req.content_length, (long long)limit);
    return refuse_request(c, 413, reason);
}

/*
 * RFC 9112 §3.2: an HTTP/1.1 request without a Host field MUST be answered
 * 400 (nginx does; gunicorn serves it with SERVER_NAME for the host). The
 * parser already refuses a second Host field.
 */
static bool
host_missing(struct qln_conn *c)
{
    if (c->req.version_minor == 0 || c->parser.host_seen)
        return false;
    return refuse_request(c, 400, "Missing Host header (HTTP/1.1)");
}

/*
 * What a trusted proxy says about the request: wsgi.url_scheme from its
 * scheme headers (gunicorn's rules) and, with --real-ip, REMOTE_ADDR from
 * Forwarded or X-Forwarded-For (gunicorn ignores them: off by default, since
 * behind a proxy that does not set them a client could choose its address).
 * Scheme headers that contradict each other are refused with 400, as
 * gunicorn does, since the app could not know which one the proxy meant.
 */
static bool
scheme_refused(struct qln_conn *c)
{
    struct qln_request *req = &c->req;
    enum proxy_scheme s;

    /* Over uwsgi the packet's REMOTE_ADDR and HTTPS are the front end's word
       (read_uwsgi_packet); its HTTP_* variables are the client's headers,
       which nginx's uwsgi_params pass on unchanged, so they cannot be. */
    if (!c->peer_trusted || c->w->conn.uwsgi)
        return false;
    if (c->w->conn.real_ip &&
        !proxy_forwarded_for(&c->w->conn.forwarded_allow, req->headers, req->nheaders,
                             req->forwarded_addr, sizeof(req->forwarded_addr)))
        req->forwarded_addr[0] = '\0';
    s = proxy_scheme(req->headers, req->nheaders);
    if (s == PROXY_SCHEME_NONE)
        return false; /* the connection's own scheme stands */
    if (s != PROXY_SCHEME_CONFLICT) {
        req->https = s == PROXY_SCHEME_HTTPS;
        return false;
    }
    return refuse_request(c, 400, "Contains contradictory scheme headers");
}

/*
 * Header names with '_' (gunicorn's header_map): X_Forwarded_For and
 * X-Forwarded-For map to one WSGI and Rack key, so a client could pose as
 * what a proxy set. Dropped from the request the app sees (drop, the
 * default), or the request refused (refuse), or kept (dangerous); a name
 * in forwarder_headers from a trusted peer is kept whatever the mode.
 */
static bool
underscore_refused(struct qln_conn *c)
{
    const struct conn_settings *s = &c->w->conn;
    struct qln_request *req = &c->req;
    size_t i, kept = 0;
    char reason[160];

    if (s->header_map == HEADER_MAP_DANGEROUS)
        return false;
    for (i = 0; i < req->nheaders; i++) {
        const struct qln_header *h = &req->headers[i];

        if (memchr(h->name.p, '_', h->name.len) == NULL ||
            (c->peer_trusted && conn_settings_forwarder(s, h->name))) {
            req->headers[kept++] = *h;
            continue;
        }
        if (s->header_map == HEADER_MAP_REFUSE) {
            util_format(reason, sizeof(reason),
                        "Invalid header name '%.*s': '_' is refused (--header-map refuse)",
                        (int)(h->name.len < 64 ? h->name.len : 64), h->name.p);
            return refuse_request(c, 400, reason);
        }
    }
    req->nheaders = kept;
    return false;
}

/* ------------------------------------------------------------ accounting */

/* Each serving thread's lane in the scoreboard slot, given on first use. */
static _Thread_local unsigned thread_lane = UINT_MAX;
static atomic_uint next_lane;

static unsigned
my_lane(void)
{
    if (thread_lane == UINT_MAX)
        thread_lane = atomic_fetch_add(&next_lane, 1);
    return thread_lane;
}

static void
request_begin(struct qln_worker *w)
{
    int64_t now = util_now_ms();

    if (w->slot == NULL)
        return;
    scoreboard_request_begin(w->slot, now);
    scoreboard_lane_begin(w->slot, my_lane(), now);
}

/* After the request: counts it, and starts a graceful stop at max_requests. */
static void
request_end(struct qln_worker *w)
{
    uint64_t served;
    int64_t now;

    if (w->slot == NULL)
        return;
    scoreboard_lane_end(w->slot, my_lane());
    now = util_now_ms();
    served = scoreboard_request_end(w->slot, now);
    /* Each request gets a distinct count, so exactly one thread logs. */
    if (w->max_requests != 0 && served == w->max_requests) {
        qln_log(QLN_LOG_INFO, "Autorestarting worker after current request.");
        if (w->stop == QLN_STOP_NONE)
            w->stop = QLN_STOP_GRACEFUL;
        worker_poke(w); /* its loop begins the stop */
    }
    /* A leak is caught within RSS_CHECK_REQUESTS requests or RSS_CHECK_MS
       of the one that pushed it over: reading the RSS each time would cost
       several microseconds a request. Racy between threads, harmlessly. */
    if (w->max_rss_kib > 0 &&
        (served % RSS_CHECK_REQUESTS == 0 || now - w->rss_checked_ms >= RSS_CHECK_MS)) {
        w->rss_checked_ms = now;
        worker_check_recycle(w);
    }
}

static enum serve_step
serve_request(struct qln_conn *c)
{
    struct qln_worker *w = c->w;
    const struct static_mount *mount;
    bool logging = log_access_enabled();
    bool metrics = statsd_enabled();
    int64_t t0_us = 0;
    int stop, rc;

    prepare_request(c);
    if (host_missing(c) || body_over_limit(c) || scheme_refused(c) || underscore_refused(c)) {
        /* gunicorn counts a request it refuses once its head was read. */
        if (metrics)
            statsd_request(c->resp.status, 0);
        return closing(c);
    }
    if (logging || metrics)
        t0_us = mono_us();
    request_begin(w);
    /* gunicorn's default pre_request logs "METHOD PATH" at debug. */
    qln_log(QLN_LOG_DEBUG, "%.*s %.*s", (int)c->req.method.len, c->req.method.p,
            (int)c->req.path.len, c->req.path.p);
    hooks_request(w->pid, w->age, &c->req, HOOK_PRE_REQUEST, 0);
    /* A path under a --static-map prefix never reaches the app. */
    mount = static_find(&w->statics, c->req.path);
    if (mount != NULL)
        rc = static_serve(mount, &c->req, &c->resp);
    else
        rc = w->app->handle(w->app_state, c->conn.tstate, &c->req, &c->resp);
    if (rc == QLN_ESTOP)
        c->conn.stop_now = true; /* the app ends the worker: nothing more to answer */
    finish_response(c, rc);
    hooks_request(w->pid, w->age, &c->req, HOOK_POST_REQUEST, c->resp.status);
    if (logging && !c->conn.stop_now)
        log_request(c, t0_us);
    /* From here, the worker (and thread) that served it: gunicorn's statsd
       logger sends these where it writes the access line. */
    if (metrics && !c->conn.stop_now)
        statsd_request(c->resp.status, mono_us() - t0_us);
    request_end(w);

    c->requests++;
    c->conn.last_active_ms = util_now_ms();
    if (c->conn.stop_now)
        return STEP_STOP;
    stop = conn_stopping(&c->conn);
    if (stop == QLN_STOP_NOW)
        return STEP_STOP;
    /* A response that went out with keep-alive before a graceful stop began
       lets the client send its next request at once: closing now could
       reset it. The connection stays, and the worker gives it a short
       linger to deliver one (answered with Connection: close). */
    if (!c->resp.keep_alive || c->conn.must_close)
        return closing(c);
    if (request_drain_body(&c->req) < 0)
        return closing(c);
    return STEP_NEXT;
}

enum qln_conn_status
qln_conn_serve(struct qln_conn *c, const struct qln_waiter *waiter, void *tstate)
{
    enum serve_step step;

    c->conn.waiter = waiter;
    c->conn.tstate = tstate;
    if (c->lingering_ms != 0)
        return linger_read(c);
    for (;;) {
        if (conn_stopping(&c->conn) == QLN_STOP_NOW)
            return QLN_CONN_STOP;
        step = read_head(c);
        if (step == STEP_NEXT)
            step = serve_request(c);
        switch (step) {
        case STEP_NEXT:
            /* A pipelined request already in the buffer is served now. For
               the next one, the connection goes back to the loop instead of
               reading at once: the connections that were ready before it
               take their turn first, as in nginx. Reading at once would let
               a client that answers faster than the app's close() runs
               (Django's) keep the worker to itself. */
            if (c->conn.pos < c->conn.len || transport_pending(&c->conn.t))
                continue;
            return QLN_CONN_IDLE;
        case STEP_IDLE:
            return QLN_CONN_IDLE;
        case STEP_STOP:
            return QLN_CONN_STOP;
        default:
            return QLN_CONN_CLOSED;
        }
    }
}
