/*
 * Listening sockets: bind specs (host:port, [v6]:port, unix:PATH, fd://N),
 * bind/listen in the master, inherited by workers across fork.
 */
#ifndef QILIN_CORE_LISTENER_H
#define QILIN_CORE_LISTENER_H

#include <stdbool.h>
#include <stddef.h>

struct listener {
    int fd;
    bool is_unix;
    char host[256]; /* "127.0.0.1", "::1"; the path for unix sockets */
    char port[8];   /* "8000"; "" for unix sockets */
    char url[300];  /* for the log: "http://127.0.0.1:8000", "unix:/run/app.sock" */
    bool inherited; /* from fd://N: never unlinked, since someone else made it */
};

/*
 * Parses SPEC and binds+listens (SO_REUSEADDR, non-blocking, BACKLOG) into L.
 * gunicorn's grammar: "HOST:PORT", "[V6]:PORT", "HOST" (port 8000),
 * "unix:PATH" (a stale socket file is removed first), "fd://N". Returns 0 or
 * -errno with ERR one line, e.g. "Connection in use: ('127.0.0.1', 8000)".
 */
int listener_open(struct listener *l, const char *spec, int backlog, bool reuse_port, char *err,
                  size_t errlen);
/* Closes L's fd; unlinks a unix socket path when UNLINK. */
void listener_close(struct listener *l, bool unlink_path);

/* What a bind spec names, before anything is bound (listener_parse). */
enum listener_kind {
    LISTENER_TCP = 1,
    LISTENER_UNIX,
    LISTENER_FD,
};

struct listener_spec {
    enum listener_kind kind;
    char host[256]; /* TCP: lower-cased host, brackets removed ("::1"); UNIX: the path */
    char port[8];   /* TCP: decimal port ("8000" when the spec has none) */
    int fd;         /* FD: the inherited descriptor */
};

/*
 * Parses SPEC with gunicorn's grammar (see listener_open) without touching
 * the system: "" means 0.0.0.0:8000, "tcp://" is optional, "unix:PATH" and
 * "unix://PATH" are unix sockets. Returns 0 or -EINVAL with ERR one line
 * ("'x' is not a valid port number"). Pure; any process.
 */
int listener_parse(const char *spec, struct listener_spec *out, char *err, size_t errlen);

#endif
