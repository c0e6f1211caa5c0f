/*
 * The control socket (--control-socket): a Unix socket on the master's
 * loop that takes one command line per connection (control_cmd.h) and
 * answers it through the master's handler. Reading and writing are
 * non-blocking and bounded in size and time, so a slow or hostile client
 * never stalls signal handling or worker supervision. Master only.
 */
#ifndef QILIN_CORE_CONTROL_H
#define QILIN_CORE_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <ev.h>

#include "control_cmd.h"

#define CONTROL_MAX_CONNS 4

/*
 * Answers LINE (the request without its newline) by writing the whole
 * response, status line first, to OUT. Returns a signal the master should
 * send itself once the answer is out (reload, reopen, shutdown: the same
 * path as the signal from kill(1)), or 0.
 */
typedef int control_handler_fn(void *opaque, const char *line, FILE *out);

struct control_conn {
    ev_io io;
    ev_timer timer;
    int fd; /* -1: free */
    size_t len;
    char line[CONTROL_LINE_MAX];
    char *out; /* the response, owned; NULL while reading */
    size_t outlen, outpos;
    int after; /* the handler's signal, raised when the connection ends */
    struct control *ctl;
};

struct control {
    int fd; /* the listening socket; -1: none */
    char path[108];
    dev_t dev; /* the socket file we made, so we never unlink another's */
    ino_t ino;
    bool inherited; /* USR2: the old master made the file */
    struct ev_loop *loop;
    ev_io accept_io;
    control_handler_fn *handler;
    void *opaque;
    struct control_conn conns[CONTROL_MAX_CONNS];
};

/* Marks C closed, so control_close() and control_fds() are safe before any open. */
void control_init(struct control *c);

/*
 * Binds PATH with permission bits MODE (never wider, even for a moment:
 * the umask is narrowed around bind) and listens. A socket file nobody
 * answers on is stale and replaced; one a live server answers on is
 * -EADDRINUSE, with ERR naming the pid that serves it when the kernel
 * says. With MAKE_DIR the parent directory is created (0700) when
 * missing. Returns 0 or -errno with ERR one line naming PATH. Serving
 * starts with control_start().
 */
int control_open(struct control *c, const char *path, mode_t mode, bool make_dir, char *err,
                 size_t errlen);

/* USR2: takes FD, the old master's listening socket for PATH. The file
   stays the old master's until control_adopt_file(). */
void control_adopt(struct control *c, int fd, const char *path);
void control_adopt_file(struct control *c);

/* Starts accepting on LOOP, answering with HANDLER(OPAQUE, ...). */
void control_start(struct control *c, struct ev_loop *loop, control_handler_fn *handler,
                   void *opaque);

/*
 * Closes the socket and every connection (their pending signals are
 * dropped). With UNLINK_PATH, removes the file when it is still the one
 * control_open() made. Safe on a closed C.
 */
void control_close(struct control *c, bool unlink_path);

/* Puts into FDS (room for CONTROL_MAX_CONNS + 1) the descriptors C holds,
   which a forked worker must close. Returns how many. */
size_t control_fds(const struct control *c, int *fds);

#endif
