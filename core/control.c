/*
 * The control socket: a Unix listening socket on the master's loop. Each
 * connection carries one request line and gets one answer, then is closed.
 * Every step is non-blocking and bounded: a line of CONTROL_LINE_MAX bytes
 * read within READ_TIMEOUT, the answer written within WRITE_TIMEOUT, and
 * at most CONTROL_MAX_CONNS clients at once (others are closed at accept),
 * so a silent, slow or hostile client costs the master nothing but a slot.
 * Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/log.h>

#include "control.h"
#include "util.h"

#define READ_TIMEOUT 2.0
#define WRITE_TIMEOUT 5.0
#define BACKLOG 16

void
control_init(struct control *c)
{
    size_t i;

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    for (i = 0; i < CONTROL_MAX_CONNS; i++) {
        c->conns[i].fd = -1;
        c->conns[i].ctl = c;
    }
}

/* ------------------------------------------------------------- opening */

static int
fill_addr(struct sockaddr_un *sun, const char *path, char *err, size_t errlen)
{
    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun->sun_path))
        return util_err(err, errlen, -ENAMETOOLONG,
                        "control socket path %s is too long (at most %zu bytes): choose a"
                        " shorter --control-socket PATH",
                        path, sizeof(sun->sun_path) - 1);
    memcpy(sun->sun_path, path, strlen(path) + 1);
    return 0;
}

/*
 * A socket file left by a master that died is stale: connecting is refused,
 * and it is removed. One that accepts belongs to a live server, which this
 * one must not take the path from.
 */
static int
replace_stale(const char *path, const struct sockaddr_un *sun, char *err, size_t errlen)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    struct stat st;
    int fd, rc, e;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return 0;
        return util_err(err, errlen, -errno, "cannot use control socket %s: %s", path,
                        strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return util_err(err, errlen, -EEXIST,
                        "control socket %s exists and is not a socket: remove it or choose"
                        " another --control-socket PATH",
                        path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return util_err(err, errlen, -errno, "socket(): %s", strerror(errno));
    rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
    e = errno;
    if (rc == 0 || e == EAGAIN) {
        rc = rc == 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 ? cred.pid : 0;
        close(fd);
        if (rc > 0)
            return util_err(err, errlen, -EADDRINUSE,
                            "control socket %s is in use by a running server (pid %d): stop it,"
                            " or give this one another --control-socket PATH",
                            path, rc);
        return util_err(err, errlen, -EADDRINUSE,
                        "control socket %s is in use by a running server: stop it, or give this"
                        " one another --control-socket PATH",
                        path);
    }
    close(fd);
    if (e != ECONNREFUSED)
        return util_err(err, errlen, -e, "cannot use control socket %s: %s", path, strerror(e));
    if (unlink(path) != 0 && errno != ENOENT)
        return util_err(err, errlen, -errno, "cannot remove stale control socket %s: %s", path,
                        strerror(errno));
    qln_log(QLN_LOG_DEBUG, "Removed stale control socket %s", path);
    return 0;
}

/* The parent directory of PATH, made 0700 when missing (gunicorn makes ~/.gunicorn). */
static int
make_parent(const char *path, char *err, size_t errlen)
{
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    int rc = 0;

    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            rc = util_err(err, errlen, -errno,
                          "cannot create directory %s for the control socket: %s", dir,
                          strerror(errno));
    }
    free(dir);
    return rc;
}

int
control_open(struct control *c, const char *path, mode_t mode, bool make_dir, char *err,
             size_t errlen)
{
    struct sockaddr_un sun;
    struct stat st;
    mode_t old;
    int fd = -1, rc, e;

    control_init(c);
    rc = fill_addr(&sun, path, err, errlen);
    if (rc == 0 && make_dir)
        rc = make_parent(path, err, errlen);
    if (rc == 0)
        rc = replace_stale(path, &sun, err, errlen);
    if (rc != 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return util_err(err, errlen, -errno, "socket(): %s", strerror(errno));
    /* bind() creates the file with the umask's bits: narrow them so no one
       else can connect before the chmod below sets MODE exactly. */
    old = umask(~mode & 0777);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    e = errno;
    umask(old);
    if (rc != 0) {
        close(fd);
        if (e == EADDRINUSE)
            return util_err(err, errlen, -e,
                            "control socket %s is in use: choose another --control-socket PATH",
                            path);
        return util_err(err, errlen, -e,
                        "cannot create control socket %s: %s (check"
                        " --control-socket)",
                        path, strerror(e));
    }
    if (chmod(path, mode) != 0 || lstat(path, &st) != 0 || listen(fd, BACKLOG) != 0) {
        e = errno;
        unlink(path);
        close(fd);
        return util_err(err, errlen, -e, "cannot set up control socket %s: %s", path, strerror(e));
    }
    c->fd = fd;
    memcpy(c->path, sun.sun_path, sizeof(c->path));
    c->dev = st.st_dev;
    c->ino = st.st_ino;
    return 0;
}

void
control_adopt(struct control *c, int fd, const char *path)
{
    control_init(c);
    c->fd = fd;
    c->inherited = true;
    util_format(c->path, sizeof(c->path), "%s", path);
}

void
control_adopt_file(struct control *c)
{
    struct stat st;

    if (c->fd < 0 || !c->inherited || lstat(c->path, &st) != 0)
        return;
    c->inherited = false;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
}

/* --------------------------------------------------------- connections */

static void
conn_close(struct control_conn *cc, bool raise_signal)
{
    struct control *c = cc->ctl;
    int after = cc->after;

    if (cc->fd < 0)
        return;
    ev_io_stop(c->loop, &cc->io);
    ev_timer_stop(c->loop, &cc->timer);
    close(cc->fd);
    cc->fd = -1;
    free(cc->out);
    cc->out = NULL;
    cc->after = 0;
    /* Reload, reopen and shutdown go through the signal watchers, exactly
       as kill(1) would; only now, so the answer left before the master
       acts (a shutdown may end the loop). */
    if (raise_signal && after != 0)
        kill(getpid(), after);
}

/* Writes what it can of the answer; closes once it is all out or the client is gone. */
static void
flush(struct control_conn *cc)
{
    ssize_t n;

    while (cc->outpos < cc->outlen) {
        n = send(cc->fd, cc->out + cc->outpos, cc->outlen - cc->outpos, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0)
            break;
        cc->outpos += (size_t)n;
    }
    conn_close(cc, true);
}

static void
on_writable(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    flush(qln_container_of(io, struct control_conn, io));
}

/* Runs the handler on the line, then sends its answer. */
static void
answer(struct control_conn *cc)
{
    struct control *c = cc->ctl;
    FILE *f = open_memstream(&cc->out, &cc->outlen);

    if (f == NULL) {
        conn_close(cc, false);
        return;
    }
    cc->after = c->handler(c->opaque, cc->line, f);
    fclose(f);
    cc->outpos = 0;
    ev_io_stop(c->loop, &cc->io);
    ev_io_init(&cc->io, on_writable, cc->fd, EV_WRITE);
    ev_io_start(c->loop, &cc->io);
    ev_timer_stop(c->loop, &cc->timer);
    ev_timer_set(&cc->timer, WRITE_TIMEOUT, 0.0);
    ev_timer_start(c->loop, &cc->timer);
    flush(cc);
}

static void
reject(struct control_conn *cc, const char *msg)
{
    FILE *f = open_memstream(&cc->out, &cc->outlen);

    if (f == NULL) {
        conn_close(cc, false);
        return;
    }
    fprintf(f, "error: %s\n", msg);
    fclose(f);
    cc->outpos = 0;
    ev_io_stop(cc->ctl->loop, &cc->io);
    ev_io_init(&cc->io, on_writable, cc->fd, EV_WRITE);
    ev_io_start(cc->ctl->loop, &cc->io);
    flush(cc);
}

static void
on_readable(struct ev_loop *loop, ev_io *io, int revents)
{
    struct control_conn *cc = qln_container_of(io, struct control_conn, io);
    char *nl;
    ssize_t n;

    (void)loop;
    (void)revents;
    n = recv(cc->fd, cc->line + cc->len, sizeof(cc->line) - 1 - cc->len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0 || (n == 0 && cc->len == 0)) {
        conn_close(cc, false);
        return;
    }
    cc->len += (size_t)n;
    cc->line[cc->len] = '\0';
    nl = memchr(cc->line, '\n', cc->len);
    if (nl != NULL) {
        *nl = '\0';
    } else if (n > 0 && cc->len == sizeof(cc->line) - 1) {
        reject(cc, "request line too long");
        return;
    } else if (n > 0) {
        return; /* more to come */
    }
    /* A NUL inside the line would hide the rest of it from the parser. */
    if (strlen(cc->line) != (size_t)(nl != NULL ? nl - cc->line : (ptrdiff_t)cc->len)) {
        reject(cc, "request line contains a NUL byte");
        return;
    }
    answer(cc);
}

static void
on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct control_conn *cc = qln_container_of(t, struct control_conn, timer);

    (void)loop;
    (void)revents;
    /* An answer the client would not read still stands: its signal is sent. */
    conn_close(cc, cc->out != NULL);
}

static void
on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    struct control *c = qln_container_of(io, struct control, accept_io);
    struct control_conn *cc = NULL;
    size_t i;
    int fd;

    (void)revents;
    fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (i = 0; i < CONTROL_MAX_CONNS && cc == NULL; i++) {
        if (c->conns[i].fd < 0)
            cc = &c->conns[i];
    }
    if (cc == NULL) {
        /* All slots busy: say so in one write, never wait for the client. */
        static const char busy[] = "error: control socket busy, try again\n";

        (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(fd);
        return;
    }
    cc->fd = fd;
    cc->len = 0;
    cc->line[0] = '\0';
    cc->out = NULL;
    cc->outlen = cc->outpos = 0;
    cc->after = 0;
    ev_io_init(&cc->io, on_readable, fd, EV_READ);
    ev_io_start(loop, &cc->io);
    ev_timer_init(&cc->timer, on_timeout, READ_TIMEOUT, 0.0);
    ev_timer_start(loop, &cc->timer);
}

void
control_start(struct control *c, struct ev_loop *loop, control_handler_fn *handler, void *opaque)
{
    if (c->fd < 0 || c->loop != NULL)
        return;
    c->loop = loop;
    c->handler = handler;
    c->opaque = opaque;
    ev_io_init(&c->accept_io, on_accept, c->fd, EV_READ);
    ev_io_start(loop, &c->accept_io);
}

void
control_close(struct control *c, bool unlink_path)
{
    struct stat st;
    size_t i;

    if (c->fd < 0)
        return;
    if (c->loop != NULL) {
        for (i = 0; i < CONTROL_MAX_CONNS; i++)
            conn_close(&c->conns[i], false);
        ev_io_stop(c->loop, &c->accept_io);
    }
    close(c->fd);
    c->fd = -1;
    c->loop = NULL;
    /* Only our own file: after a takeover the path may name another server's. */
    if (unlink_path && !c->inherited && lstat(c->path, &st) == 0 && st.st_dev == c->dev &&
        st.st_ino == c->ino)
        unlink(c->path);
}

size_t
control_fds(const struct control *c, int *fds)
{
    size_t i, n = 0;

    if (c->fd < 0)
        return 0;
    fds[n++] = c->fd;
    for (i = 0; i < CONTROL_MAX_CONNS; i++) {
        if (c->conns[i].fd >= 0)
            fds[n++] = c->conns[i].fd;
    }
    return n;
}
