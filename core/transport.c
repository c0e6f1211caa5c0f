/*
 * The plain-socket transport: read(2), sendmsg(2), sendfile(2) and
 * shutdown(2) on a non-blocking stream socket. EINTR is retried here, so
 * callers see only progress, -EAGAIN or a real error.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <limits.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <qilin/worker.h>

#include "transport.h"

static ssize_t
plain_read(struct transport *t, void *buf, size_t len)
{
    ssize_t n;

    do
        n = read(t->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->want = QLN_EV_READ;
        return -EAGAIN;
    }
    return -errno;
}

static ssize_t
plain_writev(struct transport *t, const struct iovec *iov, int n, bool more)
{
    struct msghdr msg = {.msg_iov = (struct iovec *)iov,
                         .msg_iovlen = (size_t)(n < IOV_MAX ? n : IOV_MAX)};
    /* MSG_NOSIGNAL: a peer that went away is -EPIPE here, not a SIGPIPE. */
    int flags = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    ssize_t k;

    do
        k = sendmsg(t->fd, &msg, flags);
    while (k < 0 && errno == EINTR);
    if (k >= 0)
        return k;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
        t->want = QLN_EV_WRITE;
        return -EAGAIN;
    }
    return -errno;
}

static ssize_t
plain_sendfile(struct transport *t, int fd, off_t *off, size_t len)
{
    ssize_t n;

    do
        n = sendfile(t->fd, fd, off, len);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN) {
        t->want = QLN_EV_WRITE;
        return -EAGAIN;
    }
    /* The file's file system cannot feed sendfile(2) (some FUSE and /proc files). */
    if (errno == EINVAL || errno == ENOSYS)
        return -ENOTSUP;
    return -errno;
}

static void
plain_shutdown(struct transport *t)
{
    shutdown(t->fd, SHUT_WR);
}

static void
plain_close(struct transport *t)
{
    close(t->fd);
    t->fd = -1;
}

static const struct transport_ops plain_ops = {
    .name = "plain",
    .secure = false,
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .shutdown = plain_shutdown,
    .close = plain_close,
};

void
transport_plain_init(struct transport *t, int fd)
{
    t->ops = &plain_ops;
    t->fd = fd;
    t->want = 0;
    t->handshaking = false;
    t->state = NULL;
}
