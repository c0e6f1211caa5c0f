/*
 * The master's state and the functions its files call downward:
 * arbiter.c (the loop) on reload.c (HUP) and reexec.c (USR2), all three
 * on binding.c (listeners) and children.c (workers). Internal to the master:
 * nothing outside those files includes it. Master only.
 */
#ifndef QILIN_CORE_ARBITER_INT_H
#define QILIN_CORE_ARBITER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#include <ev.h>

#include <qilin/plugin.h>

#include "config.h"
#include "control.h"
#include "hooks.h"
#include "listener.h"
#include "proc.h"
#include "scoreboard.h"
#include "stats.h"

#define MAX_SIGNALS 16

/* USR2 hands the listening fds and the old master's pid to the new master
   in these variables (gunicorn's GUNICORN_FD and GUNICORN_PID). */
#define ENV_FD "QILIN_FD"
#define ENV_PID "QILIN_PID"
#define ENV_STATS_FD "QILIN_STATS_FD" /* the --stats socket, handed over the same way */
/* And the control socket. */
#define ENV_CONTROL_FD "QILIN_CONTROL_FD"

enum arbiter_state {
    ARB_RUNNING,
    ARB_STOPPING,
};

/* One forked worker as the master sees it. */
struct child {
    pid_t pid;
    int age;
    struct scoreboard_slot *slot;
    int sent;          /* the last signal the master sent it; 0: none */
    int64_t sent_ms;   /* when (TERM to a retiring worker, ABRT for a timeout) */
    bool timed_out;    /* WORKER TIMEOUT: SIGABRT sent, SIGKILL may follow */
    const char *cause; /* what timed out: "timeout" or "request timeout" (for the log) */
    bool retiring;     /* HUP or TTOU told it to stop; not counted in num_workers */
    /* When it was forked (util_now_ms). */
    int64_t started_ms;
};

struct arbiter {
    struct qln_ctx *ctx;
    /* HUP's configuration rebuild (arbiter_set_reload); NULL: HUP only replaces workers. */
    int (*reload)(void *opaque, struct qln_ctx *ctx, void **app_state, char *err, size_t errlen);
    void *reload_opaque;
    const struct qln_plugin *app_plugin;
    const struct qln_plugin *worker_plugin;
    void *app_state;
    bool app_started;
    bool preloaded;
    pid_t pid;
    const char *pidfile; /* --pid as configured */
    char *pid_path;      /* the file we wrote: pidfile, or pidfile.2 until promoted; owned */
    pid_t old_master;    /* USR2 child: the master that exec'd us, until it exits */
    pid_t reexec_pid;    /* USR2 parent: the new master we started; 0: none */
    bool systemd;        /* the listeners came from systemd socket activation */
    bool ready_sent;     /* READY=1 went to $NOTIFY_SOCKET */
    const char *proc_name;
    const char *app_spec;

    struct listener *listeners;
    char **specs;           /* the bind spec of each listener, to see what HUP changed */
    char **inherited_specs; /* "fd://N" from LISTEN_FDS or QILIN_FD, NULL-terminated; or NULL */
    bool keep_unix_paths;   /* a re-exec or systemd owns the socket files: never unlink */
    bool daemonized;
    struct proc_owner owner; /* --user/--group for the workers */
    size_t nlisteners;
    struct scoreboard sb;
    struct child *children;
    size_t nchildren, cap;
    int num_workers;
    int next_age;
    int64_t timeout_ms;
    int64_t graceful_ms;
    int64_t request_timeout_ms; /* --request-timeout; 0: off */

    enum arbiter_state state;
    bool quick;     /* INT/QUIT: SIGQUIT workers, short wait */
    bool kill_sent; /* the stop deadline passed and SIGKILL went out */
    bool backlog_metric;        /* --enable-backlog-metric: gunicorn.backlog each tick */
    int exit_status;
    const char *reason; /* printed as "Reason: ..." when halting */

    struct stats stats;     /* --stats endpoint */
    struct control control; /* --control-socket */
    int64_t started_ms;     /* the master's start, for uptime */
    uint64_t spawned;       /* workers forked so far */
    uint64_t reloads;       /* HUPs handled */
    struct ev_loop *loop;
    ev_signal sigw[MAX_SIGNALS];
    ev_child childw;
    ev_timer tick;
    ev_timer stop_timer;
};

/* Options are read defensively: a setting another build leaves out keeps
   its gunicorn default instead of tripping the registry's assertion. */
static inline int64_t
opt_int(const struct config *cfg, const char *name, int64_t def)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_INT ? config_int(cfg, name) : def;
}

static inline bool
opt_bool(const struct config *cfg, const char *name, bool def)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_BOOL ? config_bool(cfg, name) : def;
}

static inline const char *
opt_str(const struct config *cfg, const char *name)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_STRING ? config_str(cfg, name) : NULL;
}

/* Frees N specs, or up to a NULL entry, and the array. */
static inline void
free_specs(char **specs, size_t n)
{
    size_t i;

    for (i = 0; specs != NULL && i < n && specs[i] != NULL; i++)
        free(specs[i]);
    free(specs);
}

/* ------------------------------------------------------------ children.c */

/*
 * A startup error: one "Error: ..." line on stderr and, when the error log
 * is a file, the same text there.
 */
void __attribute__((format(printf, 1, 2))) arbiter_fatal(const char *fmt, ...);

/* --env into the environment the workers inherit. Returns 0, or -errno with
   ERR one line. */
int arbiter_apply_env(struct arbiter *a, char *err, size_t errlen);

/* --capture-output: stdout/stderr into the error log, when that is a file. */
void arbiter_capture_output(const struct config *cfg);

/* Calls hook ID with the server table {pid, workers, name}. */
void arbiter_server_hook(const struct arbiter *a, enum hook_id id);

/* Calls nworkers_changed when num_workers differs from OLD. */
void arbiter_nworkers_hook(const struct arbiter *a, int old);

/* Sends SIGNO to C and records it (child.sent, child.sent_ms) unless kill() failed. */
void arbiter_child_signal(struct child *c, int signo);

/* Spawns or retires workers until num_workers are active. */
void arbiter_manage_workers(struct arbiter *a);

/* Sets num_workers to N, calling nworkers_changed when it changes. */
void arbiter_set_num_workers(struct arbiter *a, int n);

/* Calls hook ID with the server table and a worker table {pid, age, exit_code}
   (exit_code only for child_exit). */
void arbiter_worker_hook(const struct arbiter *a, enum hook_id id, pid_t pid, int age,
                         int exit_code);

/* The child with PID, or NULL. */
struct child *arbiter_child_find(struct arbiter *a, pid_t pid);

/* Forgets C (reaped): releases its scoreboard slot. Moves the last child into its place. */
void arbiter_child_remove(struct arbiter *a, struct child *c);

/* arbiter_child_signal() to every child. */
void arbiter_signal_all(struct arbiter *a, int signo);

/* The children not retiring: those that count toward num_workers. */
int arbiter_count_active(const struct arbiter *a);

/* ------------------------------------------------------------- binding.c */

/* Whether closing may unlink the socket files: not while another master
   (USR2) or systemd may use them. */
bool binding_may_unlink(const struct arbiter *a);

/* Takes the sockets handed over in LISTEN_FDS or QILIN_FD (and the old
   master's pid from QILIN_PID) and removes those variables. Call once, at
   startup, before binding_open(). */
void binding_inherit(struct arbiter *a);

/* Binds (or adopts) every listener in effect. Returns 0, or -1 after one
   "Error: ..." line; what was opened stays in A for binding_close(). */
int binding_open(struct arbiter *a);

/* HUP: keeps the listeners still configured, binds new ones, closes dropped
   ones. Returns 0, or -errno with the current listeners untouched. */
int binding_rebind(struct arbiter *a);

/* Closes every listener (unlinking socket files when binding_may_unlink())
   and frees them with their specs. */
void binding_close(struct arbiter *a);

/* -------------------------------------------------------------- reload.c */

/* Reads the settings the master acts on from a->ctx->cfg: at startup and
   after each HUP. */
void reload_settings(struct arbiter *a);

/* HUP: re-read and apply the configuration, then replace the workers. */
void reload_hup(struct arbiter *a);

/* --------------------------------------------------------------- admin.c */

/* stats_render_fn for --stats: the scoreboard as JSON, or as Prometheus text. */
size_t admin_render_stats(void *opaque, bool prometheus, char *buf, size_t len);

/* control_handler_fn for the control socket (OPAQUE is the arbiter). */
int admin_control(void *opaque, const char *line, FILE *out);

/*
 * Opens the control socket unless --no-control-socket: the one a USR2 hands
 * over when it is bound to the configured path, else control_open(). A
 * path set by the user that fails is fatal (EXIT_FAILURE after one
 * "Error:" line); the default path only logs a warning. Returns 0 or
 * EXIT_FAILURE. At startup, before the listeners, so that a taken path
 * stops the server before it binds anything.
 */
int admin_control_open(struct arbiter *a);

/* Starts answering on the control socket on a->loop (no-op without one, or
   once started). A USR2 master calls it when promoted: until then the old
   master answers. */
void admin_control_start(struct arbiter *a);

/* -------------------------------------------------------------- reexec.c */

/* USR2: starts a new master with the listening sockets, unless one already
   runs or we are one not yet promoted (both logged). */
void reexec_start(struct arbiter *a);

/* A master started by USR2 whose old master has exited takes over the
   pidfile name and the sockets. */
void reexec_promote(struct arbiter *a);

#endif
