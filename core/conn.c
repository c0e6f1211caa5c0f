/*
 * The connection loop every worker runs: accept, read (optimistically),
 * parse, call the app plugin's handle(), finish the response, log access,
 * keep-alive and pipelining; plus the request body reader, the poll(2)
 * waiter and the per-worker connection pool. Worker processes only.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <qilin/errno.h>
#include <qilin/log.h>
#include <qilin/plugin.h>
#include <qilin/request.h>
#include <qilin/worker.h>

#include "config.h"
#include "conn.h"
#include "hooks.h" /* pre_request/post_request */
#include "http.h"
#include "listener.h"
#include "log.h"
#include "proxy.h"
#include "response.h"
#include "static.h"
#include "util.h"
#include "worker.h"

#define CONN_BUF_INITIAL 8192
/* Room kept after a head for body bytes, so body reads never move the head.
   It holds an unfinished chunk-size line with room to spare. */
#define CONN_BODY_ROOM 4096
static_assert(HTTP_SIZE_LINE_MAX < CONN_BODY_ROOM, "room for a chunk-size line and more");
/* A buffer grown past this by a large head is freed when the conn goes back to the pool. */
#define CONN_BUF_KEEP (64 * 1024)
/* A Content-Length body up to this size is read before the app runs (wants_preread). */
#define CONN_PREREAD_MAX (64 * 1024)
/* An unread body up to this size is drained to keep the connection; beyond, close. */
#define CONN_DRAIN_MAX (64 * 1024)
/* Lingering close (conn_closing): how long the rest of an unwanted request
   body is read away at most, and how long the client may pause meanwhile. */
#define LINGER_TOTAL_MS 10000
#define LINGER_IDLE_MS 2000
/* Idle connections kept for reuse per worker. */
#define CONN_POOL_KEEP 256
/* How early a worker's deadline timer may fire on our clock (head_timed_out). */
#define HEAD_TIMER_SLACK_MS 20
/* Longest single poll(2), so a thread that never sees EINTR still notices a stop. */
#define POLL_SLICE_MS 1000

struct conn_pool {
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

/* ------------------------------------------------------------ settings */

/* Timeout option NAME in ms; when the user never set it, FALLBACK (from --timeout). */
static int64_t
timeout_or(const struct config *cfg, const char *name, int64_t fallback)
{
    int64_t v;

    if (config_source_of(cfg, name) == CONFIG_SRC_DEFAULT)
        return fallback;
    v = config_int(cfg, name);
    return v > 0 ? v * 1000 : 0;
}

void
conn_settings_load(struct conn_settings *s, const struct config *cfg)
{
    int64_t v;
    const char *server;
    char err[256];

    v = config_int(cfg, "keepalive");
    s->keepalive_ms = v > 0 ? v * 1000 : 0;
    v = config_int(cfg, "timeout");
    s->timeout_ms = v > 0 ? v * 1000 : 0;
    /* gunicorn: 0 means "unlimited", which is still capped at 8190. */
    v = config_int(cfg, "limit_request_line");
    s->limit_request_line = (v <= 0 || v > 8190) ? 8190 : (size_t)v;
    v = config_int(cfg, "limit_request_fields");
    s->limit_request_fields = (v <= 0 || v > 32768) ? 32768 : (size_t)v;
    /* gunicorn since 25.x treats 0 as the default 8190. */
    v = config_int(cfg, "limit_request_field_size");
    s->limit_request_field_size = v <= 0 ? 8190 : (size_t)v;
    server = config_str(cfg, "server_header");
    util_format(s->server_header, sizeof(s->server_header), "%s", server ? server : "");
    s->header_timeout_ms = timeout_or(cfg, "header_timeout", s->timeout_ms);
    s->body_timeout_ms = timeout_or(cfg, "body_timeout", s->timeout_ms);
    v = config_int(cfg, "limit_request_body");
    s->limit_request_body = v > 0 ? v : 0;
    s->casefold_method = config_bool(cfg, "casefold_http_method");
    s->real_ip = config_bool(cfg, "real_ip");
    /* Checked at startup (main.c); a bad value from a reload trusts no TCP peer. */
    if (proxy_allow_parse(proxy_allow_spec(cfg), &s->forwarded_allow, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    /* Likewise; a bad value leaves the PROXY protocol off. */
    if (proxy_protocol_load(&s->proxy, cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    /* Checked at startup too; a directory gone since serves nothing. */
    if (static_map_load(&s->statics, cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
}

static void
limits_of(const struct conn_settings *s, struct http_limits *lim)
{
    lim->line = s->limit_request_line ? s->limit_request_line : 8190;
    lim->fields = s->limit_request_fields ? s->limit_request_fields : 32768;
    lim->field_size = s->limit_request_field_size ? s->limit_request_field_size : 8190;
}

/* ------------------------------------------------------------ pool */

static struct conn_pool *
pool_of(struct qln_worker *w)
{
    struct conn_pool *pool = __atomic_load_n(&w->pool, __ATOMIC_ACQUIRE);
    struct conn_pool *expected = NULL;

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
conn_free(struct qln_conn *c)
{
    http_parser_fini(&c->parser);
    http_request_fini(&c->req);
    response_fini(&c->resp);
    free(c->buf);
    free(c);
}

static struct qln_conn *
conn_get(struct qln_worker *w)
{
    struct conn_pool *pool = pool_of(w);
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
        response_init(&c->resp, c);
        c->req.conn = c;
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
conn_put(struct qln_conn *c)
{
    struct conn_pool *pool = pool_of(c->w);

    if (c->cap > CONN_BUF_KEEP) {
        free(c->buf);
        c->buf = NULL;
        c->cap = 0;
    }
    pthread_mutex_lock(&pool->lock);
    if (pool->nfree < CONN_POOL_KEEP) {
        c->next = pool->free;
        pool->free = c;
        pool->nfree++;
        c = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    if (c != NULL)
        conn_free(c);
}

void
conn_pool_free(struct qln_worker *w)
{
    struct conn_pool *pool = w->pool;
    struct qln_conn *c;

    if (pool == NULL)
        return;
    while ((c = pool->free) != NULL) {
        pool->free = c->next;
        conn_free(c);
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

static void
peer_text(struct qln_conn *c, const struct sockaddr_storage *ss)
{
    c->peer_addr[0] = '\0';
    c->peer_port[0] = '\0';
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

        util_format_ipv4(c->peer_addr, &in->sin_addr);
        util_format_u64(c->peer_port, ntohs(in->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, c->peer_addr, sizeof(c->peer_addr));
        util_format_u64(c->peer_port, ntohs(in6->sin6_port));
    }
}

static void
conn_start(struct qln_conn *c, int fd)
{
    c->fd = fd;
    c->data = NULL;
    c->waiter = NULL;
    c->tstate = NULL;
    c->len = c->pos = 0;
    c->accepted_ms = c->last_active_ms = util_now_ms();
    c->head_start_ms = 0;
    c->requests = 0;
    c->in_head = false;
    c->head_ready = false;
    c->must_close = false;
    c->stop_now = false;
    c->lingering_ms = 0;
    c->proxy_pending = c->w->conn.proxy.mode != PROXY_MODE_OFF;
    c->proxy_proto[0] = '\0';
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
    c = conn_get(w);
    conn_start(c, fd);
    c->listener = listener_for(w, lfd);
    peer_text(c, &ss);
    c->peer_trusted = proxy_allow_match(&w->conn.forwarded_allow, &ss);
    c->proxy_allowed = c->proxy_pending && proxy_allow_match(&w->conn.proxy.from, &ss);
    *out = c;
    return 0;
}

int
qln_conn_fd(const struct qln_conn *c)
{
    return c->fd;
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
    return c->in_head && c->len > 0 && d >= 0 && util_now_ms() + HEAD_TIMER_SLACK_MS >= d &&
           qln_worker_stopping(c->w) == QLN_STOP_NONE;
}

void
qln_conn_close(struct qln_conn *c, const struct qln_waiter *waiter)
{
    if (c->fd >= 0 && head_timed_out(c)) {
        char reason[64];

        util_format(reason, sizeof(reason), "Request not complete within %lld s",
                    (long long)(c->w->conn.header_timeout_ms / 1000));
        reject_now(c, 408, reason);
    }
    if (c->fd >= 0) {
        if (waiter != NULL && waiter->fd_closing != NULL)
            waiter->fd_closing(waiter->ctx, c->fd);
        close(c->fd);
        c->fd = -1;
        qln_log(QLN_LOG_DEBUG, "Closing connection.");
    }
    conn_put(c);
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
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};

    /* Only the socket: what the buffer holds was looked at when serve()
       returned IDLE, and only more bytes can change that. */
    return poll(&pfd, 1, 0) > 0;
}

int64_t
qln_conn_deadline(const struct qln_conn *c)
{
    const struct conn_settings *s = &c->w->conn;
    int64_t idle;

    if (c->lingering_ms != 0) {
        idle = c->last_active_ms + LINGER_IDLE_MS;
        return idle < c->lingering_ms + LINGER_TOTAL_MS ? idle : c->lingering_ms + LINGER_TOTAL_MS;
    }
    if (c->len > 0 && c->in_head)
        return head_deadline(c);
    if (s->keepalive_ms > 0)
        return c->last_active_ms + s->keepalive_ms;
    /* keepalive 0 closes after each response, so only a fresh connection gets
       here; it has the head budget to send its one request. */
    return s->header_timeout_ms > 0 ? c->accepted_ms + s->header_timeout_ms : -1;
}

/* ------------------------------------------------------------ waiting and writing */

int64_t
conn_io_deadline(const struct qln_conn *c)
{
    int64_t t = c->w->conn.timeout_ms;

    return t > 0 ? util_now_ms() + t : -1;
}

int
conn_wait(struct qln_conn *c, unsigned events, int64_t deadline)
{
    switch (c->waiter->wait(c->waiter->ctx, c->fd, events, deadline)) {
    case QLN_WAIT_READY:
        return 0;
    case QLN_WAIT_TIMEOUT:
        return -ETIMEDOUT;
    case QLN_WAIT_STOP:
        c->stop_now = true;
        return QLN_ESTOP;
    default:
        return -EIO;
    }
}

static void
iov_advance(struct iovec **iov, int *n, size_t k)
{
    while (*n > 0 && k >= (*iov)->iov_len) {
        k -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + k;
        (*iov)->iov_len -= k;
    }
}

int
conn_writev(struct qln_conn *c, struct iovec *iov, int n, bool more)
{
    int64_t deadline = conn_io_deadline(c);
    int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    int rc;

    iov_advance(&iov, &n, 0);
    while (n > 0) {
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)(n < IOV_MAX ? n : IOV_MAX)};
        ssize_t k = sendmsg(c->fd, &msg, flags);

        if (k >= 0) {
            iov_advance(&iov, &n, (size_t)k);
            deadline = conn_io_deadline(c);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = conn_wait(c, QLN_EV_WRITE, deadline);
            if (rc == 0)
                continue;
        } else {
            rc = -errno;
        }
        c->must_close = true;
        return rc;
    }
    c->last_active_ms = util_now_ms();
    return 0;
}

void
conn_end_output(struct qln_conn *c)
{
    shutdown(c->fd, SHUT_WR);
}

static int
conn_write_all(struct qln_conn *c, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};

    return conn_writev(c, &iov, 1, false);
}

/* ------------------------------------------------------------ the poll waiter */

static void
blocking(struct qln_poll_waiter *pw, bool enter)
{
    const struct qln_app_ops *app = pw->worker->app;
    void (*hook)(void *);

    if (app == NULL || pw->tstate == NULL)
        return;
    hook = enter ? APP_HOOK(app, blocking_enter) : APP_HOOK(app, blocking_leave);
    if (hook != NULL)
        hook(pw->tstate);
}

static int
poll_wait(void *ctx, int fd, unsigned events, int64_t deadline)
{
    struct qln_poll_waiter *pw = ctx;
    struct pollfd pfd = {.fd = fd};
    int rc, err;

    if (events & QLN_EV_READ)
        pfd.events |= POLLIN;
    if (events & QLN_EV_WRITE)
        pfd.events |= POLLOUT;
    for (;;) {
        int64_t left = deadline < 0 ? POLL_SLICE_MS : deadline - util_now_ms();

        if (qln_worker_stopping(pw->worker) == QLN_STOP_NOW)
            return QLN_WAIT_STOP;
        /* Past the deadline, one look without waiting: a worker that got
           no CPU until now must not call data that did arrive a timeout. */
        if (left <= 0)
            return poll(&pfd, 1, 0) > 0 ? QLN_WAIT_READY : QLN_WAIT_TIMEOUT;
        /* The interpreter lock is released only around a wait that really
           blocks; the fast path (data already there) never gets here. */
        blocking(pw, true);
        rc = poll(&pfd, 1, (int)(left < POLL_SLICE_MS ? left : POLL_SLICE_MS));
        err = errno;
        blocking(pw, false);
        if (rc > 0)
            return QLN_WAIT_READY; /* POLLERR/POLLHUP too: the retried call reports it */
        if (rc < 0 && err != EINTR)
            return QLN_WAIT_ERROR;
        /* Timeout of one slice, or a signal: recompute what is left and go on
           unless the signal asked for an immediate stop (checked above). */
    }
}

void
qln_poll_waiter_init(struct qln_poll_waiter *pw, struct qln_worker *worker, void *tstate)
{
    memset(pw, 0, sizeof(*pw));
    pw->waiter.size = sizeof(pw->waiter);
    pw->waiter.ctx = pw;
    pw->waiter.wait = poll_wait;
    pw->waiter.fd_closing = NULL;
    pw->worker = worker;
    pw->tstate = tstate;
}

/* ------------------------------------------------------------ reading */

static void
buf_reserve(struct qln_conn *c, size_t want)
{
    size_t cap = c->cap ? c->cap : CONN_BUF_INITIAL;

    while (cap < want)
        cap *= 2;
    if (cap != c->cap || c->buf == NULL) {
        c->buf = xrealloc(c->buf, cap);
        c->cap = cap;
    }
}

/*
 * Reads what the socket has into the free end of the buffer without waiting.
 * Returns bytes (> 0), 0 at EOF, -EAGAIN, or another negative errno.
 */
static ssize_t
read_some(struct qln_conn *c)
{
    ssize_t n;

    do
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (n > 0) {
        c->len += (size_t)n;
        c->last_active_ms = util_now_ms();
    }
    return n;
}

/* As read_some, but waits through the hook (inside a request: body, drain). */
static ssize_t
read_wait(struct qln_conn *c)
{
    int64_t t = c->w->conn.body_timeout_ms;
    int64_t deadline = t > 0 ? util_now_ms() + t : -1;
    ssize_t n;
    int rc;

    for (;;) {
        n = read_some(c);
        if (n != -EAGAIN)
            return n;
        rc = conn_wait(c, QLN_EV_READ, deadline);
        if (rc < 0)
            return rc;
    }
}

/*
 * Adds the slice just decoded to the body's running total. A chunked body
 * declares no length, so limit_request_body can only be enforced here.
 */
static int
body_count(struct qln_conn *c)
{
    int64_t limit = c->w->conn.limit_request_body;

    c->body_total += (int64_t)c->body.len;
    if (limit > 0 && c->body_total > limit) {
        qln_log(QLN_LOG_WARNING,
                "Invalid request from ip=%s: Request body too large (> %lld bytes):"
                " raise --limit-request-body if it is legitimate",
                c->peer_addr, (long long)limit);
        c->body.len = 0;
        c->body_error = -EFBIG;
        c->must_close = true;
        return c->body_error;
    }
    return 0;
}

/*
 * The client stopped sending before the end of the body: it closed or reset
 * the connection (N 0 or -ECONNRESET), its body_timeout passed (-ETIMEDOUT),
 * or another read error N. The request is incomplete, the client's fault:
 * one warning here, and 400 or 408 (body_error_status) if the app has not
 * answered yet. Returns the sticky error.
 */
static int
body_cut(struct qln_conn *c, ssize_t n)
{
    char got[64];

    if (n == 0 || n == -ECONNRESET)
        c->body_error = QLN_EPEERCLOSED;
    else
        c->body_error = (int)n;
    c->must_close = true;
    if (c->body_error == QLN_ESTOP)
        return c->body_error;
    if (c->parser.chunked)
        util_format(got, sizeof(got), "%lld bytes of a chunked body", (long long)c->body_total);
    else
        util_format(got, sizeof(got), "%lld of %lld bytes", (long long)c->body_total,
                    (long long)c->parser.content_length);
    if (c->body_error == -ETIMEDOUT)
        qln_log(QLN_LOG_WARNING,
                "Invalid request from ip=%s: Request body not received within %lld s (got %s)",
                c->peer_addr, (long long)(c->w->conn.body_timeout_ms / 1000), got);
    else
        qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: Request body incomplete (got %s): %s",
                c->peer_addr, got, qln_strerror(c->body_error));
    return c->body_error;
}

/*
 * Produces the next body slice into C->body. Returns 0 with a slice, 1 at
 * the end of the body, or a negative error (sticky in C->body_error).
 */
static int
body_next(struct qln_conn *c)
{
    ssize_t n;

    for (;;) {
        switch (http_parse(&c->parser, c->buf, c->len, &c->pos)) {
        case HTTP_BODY_DATA:
            c->body = c->parser.body;
            return body_count(c);
        case HTTP_MSG_DONE:
            c->body_done = true;
            return 1;
        case HTTP_ERROR:
            qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: %s", c->peer_addr,
                    c->parser.reason);
            c->body_error = QLN_EBADBODY;
            c->must_close = true;
            return c->body_error;
        default:
            break;
        }
        /* What was parsed is done with: reuse the room after the head. The
           parser may have left the start of a chunk-size line unconsumed,
           which moves there with it (http_parse allows that). */
        if (c->pos > c->parser.head_end) {
            memmove(c->buf + c->parser.head_end, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos - c->parser.head_end;
            c->pos = c->parser.head_end;
        }
        n = read_wait(c);
        if (n <= 0)
            return body_cut(c, n);
    }
}

static int
send_continue(struct qln_conn *c)
{
    static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\n";

    c->continue_sent = true;
    /* Once the final response has started, an interim one would corrupt it. */
    if (c->resp.head_sent)
        return 0;
    return conn_write_all(c, msg, sizeof(msg) - 1);
}

ssize_t
qln_req_read(struct qln_request *r, void *buf, size_t len)
{
    struct qln_conn *c = r->conn;
    size_t n;
    int rc;

    if (c->body_error != 0)
        return c->body_error;
    if (c->body.len == 0 && c->body_done)
        return 0;
    if (len == 0)
        return 0;
    if (r->expect_continue && !c->continue_sent) {
        rc = send_continue(c);
        if (rc < 0)
            return rc;
    }
    while (c->body.len == 0) {
        rc = body_next(c);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return rc;
    }
    n = len < c->body.len ? len : c->body.len;
    memcpy(buf, c->body.p, n);
    c->body.p += n;
    c->body.len -= n;
    return (ssize_t)n;
}

bool
conn_body_drainable(const struct qln_conn *c)
{
    int64_t left;

    if (c->body_done)
        return true;
    /* The client waits for "100 Continue" before sending its body, or sends
       it anyway after a while: either way it may never come. */
    if (c->req.expect_continue && !c->continue_sent)
        return false;
    if (c->body_error != 0)
        return false;
    /* A chunked body's size is unknown until it ends: try. Past
       CONN_DRAIN_MAX drain_body gives up, and the connection ends with a
       lingering close (conn_closing), before the client sent anything more. */
    if (c->parser.chunked)
        return true;
    left = c->parser.content_length - (c->body_total - (int64_t)c->body.len);
    return left <= CONN_DRAIN_MAX;
}

/*
 * Reads and discards the rest of the body so the next request can be parsed.
 * Returns 0 when the body ended, else -1: the connection must close (not
 * conn_body_drainable, or an error).
 */
static int
drain_body(struct qln_conn *c)
{
    size_t drained = 0;
    int rc;

    if (c->body_done)
        return 0;
    if (!conn_body_drainable(c))
        return -1;
    while (drained <= CONN_DRAIN_MAX) {
        drained += c->body.len;
        c->body.len = 0;
        rc = body_next(c);
        if (rc == 1)
            return 0;
        if (rc < 0)
            return -1;
    }
    return -1;
}

/* ------------------------------------------------------------ qln_req_* (conn side) */

int
qln_req_fd(const struct qln_request *r)
{
    return r->conn->fd;
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
    return r->conn->https ? "https" : "http";
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

    shutdown(c->fd, SHUT_WR);
    for (i = 0; i < 16; i++) {
        c->len = 0;
        if (read_some(c) <= 0)
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

    qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: %s", c->peer_addr, reason);
    if (send(c->fd, page, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
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
    c->must_close = true;
    if (conn_write_all(c, page, n) == 0)
        r->body_bytes = (int64_t)body_len;
}

/*
 * Refuses the request in hand before the app runs: logs REASON as gunicorn's
 * "Invalid request" line and answers STATUS; the connection then closes
 * (conn_closing). Returns true, for the checks below.
 */
static bool
refuse_request(struct qln_conn *c, int status, const char *reason)
{
    qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: %s", c->peer_addr, reason);
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
conn_closing(struct qln_conn *c)
{
    bool body_left = (c->parser.chunked || c->parser.content_length > 0) && !c->body_done &&
                     c->body_error != QLN_EPEERCLOSED;

    if (c->stop_now)
        return STEP_STOP;
    if (!body_left)
        return STEP_CLOSED;
    shutdown(c->fd, SHUT_WR);
    c->lingering_ms = c->last_active_ms = util_now_ms();
    return STEP_IDLE;
}

/* A lingering connection (conn_closing) got bytes, or its deadline came. */
static enum qln_conn_status
linger_read(struct qln_conn *c)
{
    ssize_t n;

    for (;;) {
        if (util_now_ms() >= qln_conn_deadline(c))
            return QLN_CONN_CLOSED;
        c->len = c->pos = 0;
        n = read_some(c);
        if (n == -EAGAIN)
            return QLN_CONN_IDLE;
        if (n <= 0)
            return QLN_CONN_CLOSED;
    }
}

/* ------------------------------------------------------------ serving */

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

    return p->content_length > 0 && p->content_length <= CONN_PREREAD_MAX && !p->expect_continue &&
           (limit <= 0 || p->content_length <= limit);
}

/* After a pre-read head: the whole body is in the buffer. */
static bool
body_buffered(const struct qln_conn *c)
{
    return c->len - c->parser.head_end >= (size_t)c->parser.content_length;
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
    struct proxy_header h;
    enum proxy_rc rc = proxy_header_parse(c->w->conn.proxy.mode, c->buf, c->len, &h);
    char reason[128];

    /* gunicorn checks the peer as soon as it sees a header, before its content. */
    if (h.version != 0 && !c->proxy_allowed) {
        util_format(reason, sizeof(reason),
                    "Proxy request from %s not allowed (add it to --proxy-allow-from)",
                    c->peer_addr);
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
            memcpy(c->peer_addr, h.addr, sizeof(c->peer_addr));
            memcpy(c->peer_port, h.port, sizeof(c->peer_port));
            memcpy(c->proxy_proto, h.proto, sizeof(c->proxy_proto));
            memcpy(c->proxy_addr, h.dst_addr, sizeof(c->proxy_addr));
            memcpy(c->proxy_port, h.dst_port, sizeof(c->proxy_port));
        }
        /* The request's head must start at offset 0 (http_parser_next). */
        memmove(c->buf, c->buf + h.len, c->len - h.len);
        c->len -= h.len;
        break;
    default:
        break; /* auto, and no header: the bytes are HTTP */
    }
    c->proxy_pending = false;
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
    enum http_rc rc;
    ssize_t n;

    if (!c->in_head) {
        /* Pipelined bytes of the next request move to the start of the buffer,
           so the head's offsets start at 0 and body reads can reuse the rest. */
        if (c->pos > 0) {
            memmove(c->buf, c->buf + c->pos, c->len - c->pos);
            c->len -= c->pos;
            c->pos = 0;
        }
        http_parser_next(&c->parser);
        c->in_head = true;
        c->head_start_ms = c->len > 0 ? util_now_ms() : 0;
    }
    for (;;) {
        if (c->proxy_pending && c->len > 0 && read_proxy_header(c) == STEP_CLOSED)
            return STEP_CLOSED;
        if (c->head_ready) {
            if (body_buffered(c))
                return STEP_NEXT;
        } else if (!c->proxy_pending && c->pos < c->len) {
            rc = http_parse(&c->parser, c->buf, c->len, &c->pos);
            if (rc == HTTP_HEAD_DONE && !wants_preread(c))
                return STEP_NEXT;
            if (rc == HTTP_HEAD_DONE) {
                c->head_ready = true;
                buf_reserve(c, c->parser.head_end + (size_t)c->parser.content_length + 1);
                continue;
            }
            if (rc == HTTP_NEED_MORE && c->len >= c->max_head)
                rc = http_parser_overflow(&c->parser);
            if (rc == HTTP_ERROR) {
                reject_head(c);
                return STEP_CLOSED;
            }
        }
        if (c->len == c->cap)
            buf_reserve(c, c->len + 1); /* below max_head, checked above */
        n = read_some(c);
        if (n == -EAGAIN)
            return STEP_IDLE;
        if (n <= 0 && c->head_ready) {
            /* The head was whole, its pre-read body is not: as body_cut(). */
            char reason[96];

            util_format(reason, sizeof(reason),
                        "Request body incomplete (got %lld of %lld bytes): client closed the"
                        " connection",
                        (long long)(c->len - c->parser.head_end),
                        (long long)c->parser.content_length);
            reject_now(c, 400, reason);
            return STEP_CLOSED;
        }
        if (n <= 0)
            return STEP_CLOSED; /* EOF or reset between requests: nothing to answer */
        if (c->head_start_ms == 0)
            c->head_start_ms = c->last_active_ms;
    }
}

/* The head is complete: make the request visible to the app. */
static void
prepare_request(struct qln_conn *c)
{
    const struct http_parser *p = &c->parser;

    /* Body reads reuse the room after the head, so make sure there is some
       before any slice points into the buffer. */
    if ((p->chunked || p->content_length > 0) && c->cap - p->head_end < CONN_BODY_ROOM)
        buf_reserve(c, p->head_end + CONN_BODY_ROOM);
    if (c->w->conn.casefold_method)
        http_casefold_method(p, c->buf);
    http_parser_request(p, c->buf, &c->req);
    c->in_head = false;
    c->head_ready = false;
    c->body.len = 0;
    c->body_error = 0;
    c->body_done = false;
    c->body_total = 0;
    c->continue_sent = false;
    c->must_close = c->req.is_connect;
    c->req.forwarded_addr[0] = '\0'; /* set again by scheme_refused() if trusted */
    response_reset(&c->resp);
}

/* The status that answers a request whose body read failed with ERR (0: the app failed). */
static int
body_error_status(int err)
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

static void
finish_response(struct qln_conn *c, int rc)
{
    struct qln_response *r = &c->resp;

    if (c->stop_now)
        return;
    if (rc == 0 && r->started) {
        if (response_finish(r) < 0)
            c->must_close = true;
        return;
    }
    if (rc == 0)
        qln_log(QLN_LOG_ERROR, "Application returned no response for %.*s %.*s",
                (int)c->req.method.len, c->req.method.p, (int)c->req.target.len, c->req.target.p);
    if (!r->head_sent) {
        /* A body that broke its framing, its size limit or its timeout is the
           client's fault, not the app's. */
        answer_error(c, body_error_status(c->body_error));
    } else {
        c->must_close = true; /* the head left: only a close tells the client */
    }
}

static int64_t
mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void
log_request(struct qln_conn *c, int64_t t0_us)
{
    struct access_record rec = {
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
    enum proxy_scheme s;

    c->https = false;
    c->req.forwarded_addr[0] = '\0';
    if (!c->peer_trusted)
        return false;
    if (c->w->conn.real_ip &&
        !proxy_forwarded_for(&c->w->conn.forwarded_allow, c->req.headers, c->req.nheaders,
                             c->req.forwarded_addr, sizeof(c->req.forwarded_addr)))
        c->req.forwarded_addr[0] = '\0';
    s = proxy_scheme(c->req.headers, c->req.nheaders);
    if (s != PROXY_SCHEME_CONFLICT) {
        c->https = s == PROXY_SCHEME_HTTPS;
        return false;
    }
    return refuse_request(c, 400, "Contains contradictory scheme headers");
}

static enum serve_step
serve_request(struct qln_conn *c)
{
    struct qln_worker *w = c->w;
    const struct static_mount *mount;
    bool logging = log_access_enabled();
    int64_t t0_us = 0;
    int stop, rc;

    prepare_request(c);
    if (host_missing(c) || body_over_limit(c) || scheme_refused(c))
        return conn_closing(c);
    if (logging)
        t0_us = mono_us();
    worker_request_begin(w);
    /* gunicorn's default pre_request logs "METHOD PATH" at debug. */
    qln_log(QLN_LOG_DEBUG, "%.*s %.*s", (int)c->req.method.len, c->req.method.p,
            (int)c->req.path.len, c->req.path.p);
    hooks_request(w, &c->req, HOOK_PRE_REQUEST, 0);
    /* A path under a --static-map prefix never reaches the app. */
    mount = static_find(&w->conn.statics, c->req.path);
    if (mount != NULL)
        rc = static_serve(mount, &c->req, &c->resp);
    else
        rc = w->app->handle(w->app_state, c->tstate, &c->req, &c->resp);
    if (rc == QLN_ESTOP)
        c->stop_now = true; /* the app ends the worker: nothing more to answer */
    finish_response(c, rc);
    hooks_request(w, &c->req, HOOK_POST_REQUEST, c->resp.status);
    if (logging && !c->stop_now)
        log_request(c, t0_us);
    worker_request_end(w);

    c->requests++;
    c->last_active_ms = util_now_ms();
    if (c->stop_now)
        return STEP_STOP;
    stop = qln_worker_stopping(w);
    if (stop == QLN_STOP_NOW)
        return STEP_STOP;
    /* A response that went out with keep-alive before a graceful stop began
       lets the client send its next request at once: closing now could
       reset it. The connection stays, and the worker gives it a short
       linger to deliver one (answered with Connection: close). */
    if (!c->resp.keep_alive || c->must_close)
        return conn_closing(c);
    if (drain_body(c) < 0)
        return conn_closing(c);
    return STEP_NEXT;
}

enum qln_conn_status
qln_conn_serve(struct qln_conn *c, const struct qln_waiter *waiter, void *tstate)
{
    enum serve_step step;

    c->waiter = waiter;
    c->tstate = tstate;
    if (c->lingering_ms != 0)
        return linger_read(c);
    for (;;) {
        if (qln_worker_stopping(c->w) == QLN_STOP_NOW)
            return QLN_CONN_STOP;
        step = read_head(c);
        if (step == STEP_NEXT)
            step = serve_request(c);
        switch (step) {
        case STEP_NEXT:
            continue;
        case STEP_IDLE:
            return QLN_CONN_IDLE;
        case STEP_STOP:
            return QLN_CONN_STOP;
        default:
            return QLN_CONN_CLOSED;
        }
    }
}
