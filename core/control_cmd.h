/*
 * The control socket's protocol: the command words (gunicornc's), their
 * parser and the default socket path. Shared by the master (control.c,
 * admin.c) and the qilinctl client, so both accept exactly the same
 * commands; it depends on libc only.
 *
 * A request is one line of at most CONTROL_LINE_MAX - 1 bytes, "[json]
 * COMMAND [ARG]\n"; the answer starts with a status line, "ok\n" or
 * "error: MESSAGE\n", and after "ok" comes the body (human text, or with
 * "json" a JSON document) until the master closes the connection.
 */
#ifndef QILIN_CORE_CONTROL_CMD_H
#define QILIN_CORE_CONTROL_CMD_H

#include <stdbool.h>
#include <stddef.h>

#define CONTROL_LINE_MAX 1024
/* The default path's file name, and its directory under $HOME when
   $XDG_RUNTIME_DIR is not a directory (gunicorn's gunicorn.ctl, ~/.gunicorn). */
#define CONTROL_SOCKET_NAME "qilin.ctl"
#define CONTROL_HOME_DIR ".qilin"
/* worker add/remove: at most this many at once. */
#define CONTROL_MAX_COUNT 1000

enum control_cmd_id {
    CTL_HELP,
    CTL_SHOW_ALL,
    CTL_SHOW_WORKERS,
    CTL_SHOW_STATS,
    CTL_SHOW_CONFIG,
    CTL_SHOW_LISTENERS,
    CTL_WORKER_ADD,
    CTL_WORKER_REMOVE,
    CTL_WORKER_KILL,
    CTL_RELOAD,
    CTL_REOPEN,
    CTL_SHUTDOWN,
};

struct control_cmd {
    enum control_cmd_id id;
    long arg;   /* worker add/remove: the count (default 1); worker kill: the pid */
    bool quick; /* shutdown quick (INT) rather than graceful (TERM) */
    bool json;  /* the body as JSON */
};

/* One row per command form, for help texts: "worker add [N]", what it does. */
struct control_cmd_help {
    const char *usage;
    const char *what;
};
extern const struct control_cmd_help control_cmd_help[];
extern const size_t control_cmd_help_count;

/*
 * Parses LINE (one request line without its newline) into CMD. Words are
 * separated by blanks and compared without case. Returns 0, or -EINVAL with
 * ERR one line naming the word and what was expected.
 */
int control_cmd_parse(const char *line, struct control_cmd *cmd, char *err, size_t errlen);

/*
 * The default socket path into BUF (LEN bytes): $XDG_RUNTIME_DIR/qilin.ctl
 * when that variable names a directory, else $HOME/.qilin/qilin.ctl (the
 * passwd entry's home when $HOME is unset), as gunicorn chooses its own.
 * Returns 0, -ENOENT when there is no home either, -ENAMETOOLONG.
 */
int control_default_path(char *buf, size_t len);

#endif
