/*
 * The connection layer: buffered reads and complete writes over the
 * transport, each wait through the serving thread's wait hook.
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <qilin/errno.h>

#include "conn.h"
#include "util.h"

#define CONN_BUF_INITIAL 8192
/* A buffer grown past this by a large head is freed when the conn is put away. */
#define CONN_BUF_KEEP (64 * 1024)
/* One sendfile(2) call moves at most this much, so deadlines stay meaningful. */
#define CONN_SENDFILE_MAX (1 << 30)

static void
peer_text(struct conn *c, const struct sockaddr_storage *ss)
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

void
conn_open(struct conn *c, int fd, const struct sockaddr_storage *peer)
{
    transport_plain_init(&c->t, fd);
    c->waiter = NULL;
    c->tstate = NULL;
    c->len = c->pos = 0;
    c->accepted_ms = c->last_active_ms = util_now_ms();
    c->must_close = false;
    c->stop_now = false;
    c->proxy_proto[0] = '\0';
    peer_text(c, peer);
}

void
conn_close(struct conn *c)
{
    if (c->t.fd >= 0)
        transport_close(&c->t);
}

void
conn_release(struct conn *c, bool keep)
{
    if (keep && c->cap <= CONN_BUF_KEEP)
        return;
    free(c->buf);
    c->buf = NULL;
    c->cap = 0;
}

void
conn_buf_reserve(struct conn *c, size_t want)
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
 * The deadline for a write that is about to wait: now plus the timeout
 * setting, or -1 when it is 0. Renewed whenever bytes move.
 */
static int64_t
conn_io_deadline(const struct conn *c)
{
    int64_t t = c->s->timeout_ms;

    return t > 0 ? util_now_ms() + t : -1;
}

int
conn_wait(struct conn *c, unsigned events, int64_t deadline)
{
    switch (c->waiter->wait(c->waiter->ctx, c->t.fd, events, deadline)) {
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

ssize_t
conn_read_some(struct conn *c)
{
    ssize_t n = transport_read(&c->t, c->buf + c->len, c->cap - c->len);

    if (n > 0) {
        c->len += (size_t)n;
        c->last_active_ms = util_now_ms();
    }
    return n;
}

ssize_t
conn_read_wait(struct conn *c, int64_t timeout_ms)
{
    int64_t deadline = timeout_ms > 0 ? util_now_ms() + timeout_ms : -1;
    ssize_t n;
    int rc;

    for (;;) {
        n = conn_read_some(c);
        if (n != -EAGAIN)
            return n;
        rc = conn_wait(c, c->t.want, deadline);
        if (rc < 0)
            return rc;
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
conn_writev(struct conn *c, struct iovec *iov, int n, bool more)
{
    int64_t deadline = conn_io_deadline(c);
    ssize_t k;
    int rc;

    iov_advance(&iov, &n, 0);
    while (n > 0) {
        k = transport_writev(&c->t, iov, n, more);
        if (k >= 0) {
            iov_advance(&iov, &n, (size_t)k);
            deadline = conn_io_deadline(c);
            continue;
        }
        rc = (int)k;
        if (k == -EAGAIN) {
            rc = conn_wait(c, c->t.want, deadline);
            if (rc == 0)
                continue;
        }
        c->must_close = true;
        return rc;
    }
    c->last_active_ms = util_now_ms();
    return 0;
}

int
conn_write_all(struct conn *c, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};

    return conn_writev(c, &iov, 1, false);
}

int
conn_sendfile(struct conn *c, int fd, off_t *off, int64_t *left)
{
    int64_t deadline = conn_io_deadline(c);
    bool moved = false;
    ssize_t n;
    int rc;

    while (*left > 0) {
        n = transport_sendfile(&c->t, fd, off,
                               *left < CONN_SENDFILE_MAX ? (size_t)*left : CONN_SENDFILE_MAX);
        if (n > 0) {
            *left -= n;
            moved = true;
            deadline = conn_io_deadline(c);
            continue;
        }
        if (n == -EAGAIN) {
            rc = conn_wait(c, c->t.want, deadline);
            if (rc == 0)
                continue;
        } else if (n == -ENOTSUP && !moved) {
            return -ENOTSUP; /* nothing went out: the caller copies the file instead */
        } else if (n == 0 || n == -ENOTSUP) {
            rc = -EIO; /* the file ended early, or stopped feeding sendfile(2) */
        } else {
            rc = (int)n;
        }
        c->must_close = true;
        return rc;
    }
    c->last_active_ms = util_now_ms();
    return 0;
}

void
conn_end_output(struct conn *c)
{
    transport_shutdown(&c->t);
}
