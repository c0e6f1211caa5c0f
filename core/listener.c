/*
 * Listening sockets: gunicorn's bind grammar, bind/listen, unix sockets
 * with stale-socket removal, inherited fd://N. The master opens them before
 * forking; workers inherit the descriptors.
 */
#include "qlnconfig.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include "listener.h"
#include "util.h"

#define DEFAULT_PORT "8000"

static int
parse_port(const char *text, size_t len, char *port, size_t portlen, char *err, size_t errlen)
{
    unsigned long v = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (!isdigit((unsigned char)text[i]))
            break;
        v = v * 10 + (unsigned long)(text[i] - '0');
        if (v > 65535)
            break;
    }
    if (len == 0 || i != len || len >= portlen) {
        util_format(err, errlen, "'%.*s' is not a valid port number (expected 0-65535)", (int)len,
                    text);
        return -EINVAL;
    }
    util_format(port, portlen, "%lu", v);
    return 0;
}

static int
parse_unix(const char *path, struct listener_spec *out, char *err, size_t errlen)
{
    if (strncmp(path, "//", 2) == 0)
        path += 2;
    if (path[0] == '\0') {
        util_format(err, errlen,
                    "unix socket path missing in bind address (e.g. unix:/run/app.sock)");
        return -EINVAL;
    }
    /* sun_path is the real limit; struct listener's host is larger. */
    if (strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path)) {
        util_format(err, errlen, "unix socket path too long (max %zu bytes): %s",
                    sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1, path);
        return -EINVAL;
    }
    out->kind = LISTENER_UNIX;
    util_format(out->host, sizeof(out->host), "%s", path);
    return 0;
}

static int
parse_fd(const char *text, struct listener_spec *out, char *err, size_t errlen)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (text[0] == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 0x7fffffffL ||
        !isdigit((unsigned char)text[0])) {
        util_format(err, errlen, "'%s' is not a valid file descriptor (bind fd://N)", text);
        return -EINVAL;
    }
    out->kind = LISTENER_FD;
    out->fd = (int)v;
    return 0;
}

int
listener_parse(const char *spec, struct listener_spec *out, char *err, size_t errlen)
{
    const char *host, *port, *colon;
    size_t hostlen, portlen, i;
    int rc;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (strncmp(spec, "unix:", 5) == 0)
        return parse_unix(spec + 5, out, err, errlen);
    if (strncmp(spec, "fd://", 5) == 0)
        return parse_fd(spec + 5, out, err, errlen);
    if (strncmp(spec, "tcp://", 6) == 0)
        spec += 6;

    host = spec;
    port = DEFAULT_PORT;
    portlen = strlen(DEFAULT_PORT);
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');

        if (close == NULL) {
            util_format(err, errlen, "'%s': missing ']' after the IPv6 address", spec);
            return -EINVAL;
        }
        host = spec + 1;
        hostlen = (size_t)(close - host);
        if (close[1] == ':') {
            port = close + 2;
            portlen = strlen(port);
        } else if (close[1] != '\0') {
            util_format(err, errlen, "'%s': expected ':PORT' after ']'", spec);
            return -EINVAL;
        }
    } else if ((colon = strchr(spec, ':')) != NULL) {
        if (strchr(colon + 1, ':') != NULL) {
            util_format(err, errlen, "'%s': an IPv6 address needs brackets, e.g. [::1]:8000", spec);
            return -EINVAL;
        }
        hostlen = (size_t)(colon - spec);
        port = colon + 1;
        portlen = strlen(port);
    } else {
        hostlen = strlen(spec);
    }
    if (hostlen >= sizeof(out->host)) {
        util_format(err, errlen, "host name too long in bind address '%s'", spec);
        return -EINVAL;
    }
    rc = parse_port(port, portlen, out->port, sizeof(out->port), err, errlen);
    if (rc != 0)
        return rc;
    out->kind = LISTENER_TCP;
    /* gunicorn binds "" (and ":PORT") to every IPv4 address. */
    if (hostlen == 0) {
        util_format(out->host, sizeof(out->host), "0.0.0.0");
        return 0;
    }
    for (i = 0; i < hostlen; i++)
        out->host[i] = (char)tolower((unsigned char)host[i]);
    out->host[hostlen] = '\0';
    return 0;
}

/* gunicorn names addresses as Python tuples in its errors: ('127.0.0.1', 8000). */
static void
tuple_text(const struct listener_spec *ls, char *buf, size_t len)
{
    util_format(buf, len, "('%s', %s)", ls->host, ls->port);
}

/* Fills host, port and url from the bound socket (so port 0 shows the real port). */
static void
describe(struct listener *l)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[NI_MAXHOST], serv[NI_MAXSERV];

    if (l->is_unix) {
        util_format(l->url, sizeof(l->url), "unix:%s", l->host);
        return;
    }
    if (getsockname(l->fd, (struct sockaddr *)&ss, &sl) == 0 &&
        getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
                    NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
        util_format(l->host, sizeof(l->host), "%s", host);
        util_format(l->port, sizeof(l->port), "%s", serv);
    }
    if (ss.ss_family == AF_INET6)
        util_format(l->url, sizeof(l->url), "http://[%s]:%s", l->host, l->port);
    else
        util_format(l->url, sizeof(l->url), "http://%s:%s", l->host, l->port);
}

static int
bind_error(int e, const char *what, char *err, size_t errlen)
{
    if (e == EADDRINUSE)
        util_format(err, errlen, "Connection in use: %s", what);
    else
        util_format(err, errlen, "can't bind to %s: %s", what, strerror(e));
    return -e;
}

static int
open_tcp(struct listener *l, const struct listener_spec *ls, int backlog, bool reuse_port,
         char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char what[300];
    int one = 1, fd = -1, e = 0, gai;

    tuple_text(ls, what, sizeof(what));
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(ls->host, ls->port, &hints, &res);
    if (gai != 0) {
        util_format(err, errlen, "can't resolve bind address %s: %s (check --bind)", what,
                    gai_strerror(gai));
        return -EINVAL;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        /* SO_REUSEADDR lets a restarted server bind while old connections sit in TIME_WAIT. */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (reuse_port)
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        /* Accepted sockets inherit TCP_NODELAY on Linux, so connections
           need no setsockopt of their own (qln_conn_accept). */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return bind_error(e ? e : EADDRNOTAVAIL, what, err, errlen);
    l->fd = fd;
    describe(l);
    return 0;
}

/*
 * A socket file left by a server that died is "stale": connecting to it is
 * refused. gunicorn removes any socket file; we first check that nobody
 * answers, so a second server can never steal a live server's path.
 */
static int
remove_stale_socket(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, rc, e;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : bind_error(errno, path, err, errlen);
    if (!S_ISSOCK(st.st_mode)) {
        util_format(err, errlen,
                    "%s exists and is not a socket: remove it or choose another --bind", path);
        return -EEXIST;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bind_error(errno, path, err, errlen);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    util_format(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
    e = errno;
    close(fd);
    if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
        return bind_error(EADDRINUSE, path, err, errlen);
    if (unlink(path) != 0 && errno != ENOENT)
        return bind_error(errno, path, err, errlen);
    return 0;
}

static int
open_unix(struct listener *l, const struct listener_spec *ls, int backlog, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    int fd, rc;

    rc = remove_stale_socket(ls->host, err, errlen);
    if (rc != 0)
        return rc;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bind_error(errno, ls->host, err, errlen);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    util_format(sun.sun_path, sizeof(sun.sun_path), "%s", ls->host);
    if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, backlog) != 0) {
        rc = errno;
        close(fd);
        return bind_error(rc, ls->host, err, errlen);
    }
    l->fd = fd;
    l->is_unix = true;
    util_format(l->host, sizeof(l->host), "%s", ls->host);
    describe(l);
    return 0;
}

static int
adopt_fd(struct listener *l, const struct listener_spec *ls, int backlog, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int type = 0, flags;
    socklen_t tl = sizeof(type);

    errno = 0;
    if (getsockopt(ls->fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
        getsockname(ls->fd, (struct sockaddr *)&ss, &sl) != 0) {
        util_format(err, errlen, "fd://%d is not a stream socket: %s (check --bind)", ls->fd,
                    errno ? strerror(errno) : "wrong socket type");
        return -ENOTSOCK;
    }
    /* Re-listen: harmless on a listening socket, and it applies our backlog. */
    if (listen(ls->fd, backlog) != 0) {
        int e = errno;

        util_format(err, errlen, "listen(fd://%d) failed: %s", ls->fd, strerror(e));
        return -e;
    }
    flags = fcntl(ls->fd, F_GETFL);
    fcntl(ls->fd, F_SETFL, flags | O_NONBLOCK);
    fcntl(ls->fd, F_SETFD, FD_CLOEXEC);
    l->fd = ls->fd;
    l->inherited = true;
    /* As open_tcp: connections accepted from it inherit the option, so
       qln_conn_accept need not set it on each (a syscall per connection). */
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        int one = 1;

        setsockopt(ls->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *)&ss;

        l->is_unix = true;
        util_format(l->host, sizeof(l->host), "%s", sun->sun_path);
    }
    describe(l);
    return 0;
}

int
listener_open(struct listener *l, const char *spec, int backlog, bool reuse_port, char *err,
              size_t errlen)
{
    struct listener_spec ls;
    int rc;

    memset(l, 0, sizeof(*l));
    l->fd = -1;
    rc = listener_parse(spec, &ls, err, errlen);
    if (rc != 0)
        return rc;
    if (backlog <= 0)
        backlog = SOMAXCONN;
    switch (ls.kind) {
    case LISTENER_TCP:
        return open_tcp(l, &ls, backlog, reuse_port, err, errlen);
    case LISTENER_UNIX:
        return open_unix(l, &ls, backlog, err, errlen);
    case LISTENER_FD:
        return adopt_fd(l, &ls, backlog, err, errlen);
    }
    util_format(err, errlen, "unsupported bind address '%s'", spec);
    return -EINVAL;
}

void
listener_close(struct listener *l, bool unlink_path)
{
    if (l->fd >= 0)
        close(l->fd);
    if (l->fd >= 0 && l->is_unix && unlink_path && !l->inherited)
        unlink(l->host);
    l->fd = -1;
}
