/*
 * The transport: the one place a connection's bytes meet the socket. The
 * connection, request body reader, response writer and static files read
 * and write only through it. Every operation is non-blocking: when it
 * cannot go on it returns -EAGAIN and sets WANT to the readiness it needs
 * (enum qln_ev), and the connection waits for that through the worker's
 * wait hook, then calls again. A TLS transport may want READ in the middle
 * of a write (renegotiation, key update) and WRITE in the middle of a read,
 * which is why WANT is the transport's to say. Worker processes only.
 */
#ifndef QILIN_CORE_TRANSPORT_H
#define QILIN_CORE_TRANSPORT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct transport;

struct transport_ops {
    const char *name; /* "plain", "tls"; for logs */
    bool secure;      /* the bytes are encrypted: wsgi.url_scheme https */
    /*
     * Reads up to LEN bytes into BUF. Returns bytes (> 0), 0 at the peer's
     * end of stream, -EAGAIN, or another negative errno (-ECONNRESET).
     */
    ssize_t (*read)(struct transport *t, void *buf, size_t len);
    /*
     * Writes a prefix of IOV[0, N). MORE: more bytes follow at once, so a
     * short segment may wait for them (MSG_MORE). Returns the bytes taken
     * (> 0), -EAGAIN, or a negative errno (-EPIPE, -ECONNRESET).
     */
    ssize_t (*writev)(struct transport *t, const struct iovec *iov, int n, bool more);
    /*
     * Writes up to LEN bytes of file FD from *OFF, advancing *OFF. Returns
     * the bytes taken (> 0), 0 when the file ended early, -EAGAIN, -ENOTSUP
     * when this transport cannot send from a file (TLS without kernel TLS,
     * or a file system without sendfile(2)): the caller then reads the file
     * and writes through writev. NULL means always -ENOTSUP.
     */
    ssize_t (*sendfile)(struct transport *t, int fd, off_t *off, size_t len);
    /*
     * Ends the output after what was written, at once: the peer sees the
     * end of the stream (plain: FIN; TLS: close_notify, then FIN). Reading
     * stays possible. Best effort; errors show up in the next read.
     */
    void (*shutdown)(struct transport *t);
    /* Releases the transport's state and closes the socket. */
    void (*close)(struct transport *t);
    /*
     * True when the transport holds received bytes a read would return at
     * once, which the socket's readiness no longer shows (TLS: the rest of
     * a decrypted record). NULL: never.
     */
    bool (*pending)(const struct transport *t);
    /*
     * The I-th (from 0) variable describing the secure session, in the
     * names Apache's mod_ssl gives them (HTTPS, SSL_PROTOCOL, SSL_CLIENT_S_DN);
     * false past the last. NULL: none.
     */
    bool (*var)(struct transport *t, size_t i, const char **name, const char **value);
};

struct transport {
    const struct transport_ops *ops;
    int fd;           /* the socket: what the wait hook polls; -1 once closed */
    unsigned want;    /* after -EAGAIN: the enum qln_ev to wait for */
    bool handshaking; /* the session is being set up: no application byte yet */
    void *state;      /* the implementation's (a TLS session); NULL for plain */
};

/* Makes T the plain-socket transport over FD (non-blocking, stream). */
void transport_plain_init(struct transport *t, int fd);

static inline ssize_t
transport_read(struct transport *t, void *buf, size_t len)
{
    return t->ops->read(t, buf, len);
}

static inline ssize_t
transport_writev(struct transport *t, const struct iovec *iov, int n, bool more)
{
    return t->ops->writev(t, iov, n, more);
}

static inline ssize_t
transport_sendfile(struct transport *t, int fd, off_t *off, size_t len)
{
    return t->ops->sendfile != NULL ? t->ops->sendfile(t, fd, off, len) : -ENOTSUP;
}

static inline bool
transport_pending(const struct transport *t)
{
    return t->ops->pending != NULL && t->ops->pending(t);
}

static inline void
transport_shutdown(struct transport *t)
{
    t->ops->shutdown(t);
}

static inline void
transport_close(struct transport *t)
{
    t->ops->close(t);
}

#endif
