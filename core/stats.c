/*
 * The stats endpoint: a listening socket on the master's loop. Each
 * connection gets one response and is closed; reading the request is
 * non-blocking and bounded (1 KiB, 2 seconds), so a silent or hostile
 * client can never stall the master. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "stats.h"
#include "util.h"

#define STATS_READ_TIMEOUT 2.0
#define STATS_BODY_MAX (256 * 1024)

static void
conn_close(struct stats_conn *sc)
{
    if (sc->fd < 0)
        return;
    ev_io_stop(sc->st->loop, &sc->io);
    ev_timer_stop(sc->st->loop, &sc->timer);
    close(sc->fd);
    sc->fd = -1;
}

/* Writes all of BUF; the socket is switched to blocking with a send timeout
   first, so a reader that stalls costs the master at most that long. */
static void
write_all(int fd, const char *buf, size_t len)
{
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};
    ssize_t n;

    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    while (len > 0) {
        n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

static void
respond(struct stats_conn *sc)
{
    bool prom = strncmp(sc->buf, "GET /metrics", 12) == 0;
    char *body = xmalloc(STATS_BODY_MAX);
    char head[256];
    size_t n = sc->st->render(sc->st->opaque, prom, body, STATS_BODY_MAX);
    int hn;

    hn = snprintf(head, sizeof(head),
                  "HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                  "Connection: close\r\n\r\n",
                  prom ? "text/plain; version=0.0.4" : "application/json", n);
    write_all(sc->fd, head, (size_t)hn);
    write_all(sc->fd, body, n);
    free(body);
    conn_close(sc);
}

static void
on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    struct stats_conn *sc = qln_container_of(io, struct stats_conn, io);
    ssize_t n;

    (void)loop;
    (void)revents;
    n = read(sc->fd, sc->buf + sc->len, sizeof(sc->buf) - 1 - sc->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        sc->len += (size_t)n;
        sc->buf[sc->len] = '\0';
    }
    /* A blank line ends the request head; EOF or a full buffer end it too. */
    if (n <= 0 || strstr(sc->buf, "\r\n\r\n") != NULL || strstr(sc->buf, "\n\n") != NULL ||
        sc->len == sizeof(sc->buf) - 1)
        respond(sc);
}

static void
on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    conn_close(qln_container_of(t, struct stats_conn, timer));
}

static void
on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    struct stats *st = qln_container_of(io, struct stats, accept_io);
    struct stats_conn *sc = NULL;
    size_t i;
    int fd;

    (void)revents;
    fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (i = 0; i < STATS_MAX_CONNS && sc == NULL; i++) {
        if (st->conns[i].fd < 0)
            sc = &st->conns[i];
    }
    if (sc == NULL) {
        close(fd); /* all slots busy: an admin endpoint need not queue */
        return;
    }
    sc->fd = fd;
    sc->len = 0;
    sc->buf[0] = '\0';
    ev_io_init(&sc->io, on_readable, fd, EV_READ);
    ev_io_start(loop, &sc->io);
    ev_timer_init(&sc->timer, on_timeout, STATS_READ_TIMEOUT, 0.0);
    ev_timer_start(loop, &sc->timer);
}

int
stats_open(struct stats *st, struct ev_loop *loop, const char *spec, stats_render_fn *render,
           void *opaque, char *err, size_t errlen)
{
    char inner[512];
    size_t i;
    int rc;

    memset(st, 0, sizeof(*st));
    st->l.fd = -1;
    for (i = 0; i < STATS_MAX_CONNS; i++) {
        st->conns[i].fd = -1;
        st->conns[i].st = st;
    }
    rc = listener_open(&st->l, spec, 16, false, inner, sizeof(inner));
    if (rc != 0) {
        util_format(err, errlen, "--stats: %s (check --stats '%s')", inner, spec);
        return rc;
    }
    st->loop = loop;
    st->render = render;
    st->opaque = opaque;
    ev_io_init(&st->accept_io, on_accept, st->l.fd, EV_READ);
    ev_io_start(loop, &st->accept_io);
    return 0;
}

size_t
stats_fds(const struct stats *st, int *fds)
{
    size_t i, n = 0;

    if (st->loop == NULL)
        return 0;
    fds[n++] = st->l.fd;
    for (i = 0; i < STATS_MAX_CONNS; i++) {
        if (st->conns[i].fd >= 0)
            fds[n++] = st->conns[i].fd;
    }
    return n;
}

void
stats_close(struct stats *st, bool unlink_path)
{
    size_t i;

    if (st->loop == NULL)
        return;
    for (i = 0; i < STATS_MAX_CONNS; i++)
        conn_close(&st->conns[i]);
    ev_io_stop(st->loop, &st->accept_io);
    listener_close(&st->l, unlink_path);
    st->loop = NULL;
}
