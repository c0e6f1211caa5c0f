/*
 * The master (arbiter): startup (logs, pidfile, listeners, app plugin,
 * scoreboard), then a libev loop that only dispatches: signals, reaped
 * children, a one-second tick for timeouts. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/plugin.h>

#include "arbiter.h"
#include "config.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "scoreboard.h"
#include "signals.h"
#include "stats.h"
#include "util.h"
#include "worker.h"

/* gunicorn's exit codes for a worker that could not boot / load the app. */
#define EXIT_BOOT_ERROR 3
#define EXIT_APP_LOAD_ERROR 4

#define BIND_ATTEMPTS 5  /* gunicorn tries five times, a second apart */
#define TICK_SECONDS 1.0 /* timeout checks, as gunicorn's loop wakes every second */
#define KILL_AFTER_ABORT_MS 1000
#define QUICK_STOP_MS 2000 /* INT/QUIT: how long workers get before SIGKILL */
#define MAX_SIGNALS 16

/* USR2 hands the listening fds and the old master's pid to the new master
   in these variables (gunicorn's GUNICORN_FD and GUNICORN_PID). */
#define ENV_FD "QILIN_FD"
#define ENV_PID "QILIN_PID"
#define ENV_STATS_FD "QILIN_STATS_FD" /* the --stats socket, handed over the same way */

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
};

struct arbiter {
    struct qln_ctx *ctx;
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
    int exit_status;
    const char *reason; /* printed as "Reason: ..." when halting */

    struct stats stats; /* --stats endpoint */
    struct ev_loop *loop;
    ev_signal sigw[MAX_SIGNALS];
    ev_child childw;
    ev_timer tick;
    ev_timer stop_timer;
};

/* The one master of this process (STYLE: one struct per role). Master only. */
static struct arbiter the_arbiter;

/* HUP's configuration rebuild, installed by main before arbiter_run(). Master only. */
static arbiter_reload_fn *reload_fn;
static void *reload_opaque;

void
arbiter_set_reload(arbiter_reload_fn *fn, void *opaque)
{
    reload_fn = fn;
    reload_opaque = opaque;
}

/* ---------------------------------------------------------------- options */

/* Options are read defensively: a setting another build leaves out keeps
   its gunicorn default instead of tripping the registry's assertion. */
static int64_t
opt_int(const struct config *cfg, const char *name, int64_t def)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_INT ? config_int(cfg, name) : def;
}

static bool
opt_bool(const struct config *cfg, const char *name, bool def)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_BOOL ? config_bool(cfg, name) : def;
}

static const char *
opt_str(const struct config *cfg, const char *name)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == QLN_OPT_STRING ? config_str(cfg, name) : NULL;
}

/*
 * A startup error: one "Error: ..." line on stderr, where the user looks,
 * and the same text in the error log when that is a file.
 */
static void __attribute__((format(printf, 1, 2))) fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (qln_log_fd() != STDERR_FILENO)
        qln_log_write(QLN_LOG_ERROR, "%s", msg);
    fprintf(stderr, "Error: %s\n", msg);
    fflush(stderr);
}

/* --env: every KEY=VALUE into the environment the workers inherit. */
static int
apply_env(struct arbiter *a, char *err, size_t errlen)
{
    const struct config *cfg = a->ctx->cfg;
    size_t i, n = config_find(cfg, "raw_env") != NULL ? config_list_len(cfg, "raw_env") : 0;
    int rc;

    for (i = 0; i < n; i++) {
        rc = proc_setenv_pair(config_list_get(cfg, "raw_env", i), err, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* --capture-output: stdout/stderr into the error log, when that is a file. */
static void
capture_output(const struct config *cfg)
{
    if (opt_bool(cfg, "capture_output", false) && qln_log_fd() != STDERR_FILENO)
        proc_capture_output(qln_log_fd());
}

/* Frees N specs, or up to a NULL entry, and the array. */
static void
free_specs(char **specs, size_t n)
{
    size_t i;

    for (i = 0; specs != NULL && i < n && specs[i] != NULL; i++)
        free(specs[i]);
    free(specs);
}

/* ----------------------------------------------------------------- hooks */

/* A hook with the server table: {pid, workers, name}. */
static void
server_hook(const struct arbiter *a, enum hook_id id)
{
    const struct qln_hook_field sf[] = {
        {.key = "pid", .i = a->pid},
        {.key = "workers", .i = a->num_workers},
        {.key = "name", .s = a->proc_name != NULL ? a->proc_name : ""},
    };
    const struct qln_hook_arg args[] = {{.f = sf, .n = ARRAY_SIZE(sf)}};

    hooks_call(id, args, ARRAY_SIZE(args));
}

/* A hook with the server and a worker table: {pid, age, exit_code}. */
static void
worker_hook(const struct arbiter *a, enum hook_id id, pid_t pid, int age, int exit_code)
{
    const struct qln_hook_field sf[] = {
        {.key = "pid", .i = a->pid},
        {.key = "workers", .i = a->num_workers},
        {.key = "name", .s = a->proc_name != NULL ? a->proc_name : ""},
    };
    const struct qln_hook_field wf[] = {
        {.key = "pid", .i = pid},
        {.key = "age", .i = age},
        {.key = "exit_code", .i = exit_code},
    };
    const struct qln_hook_arg args[] = {
        {.f = sf, .n = ARRAY_SIZE(sf)},
        {.f = wf, .n = id == HOOK_CHILD_EXIT ? ARRAY_SIZE(wf) : ARRAY_SIZE(wf) - 1},
    };

    hooks_call(id, args, ARRAY_SIZE(args));
}

/* nworkers_changed(server, new_value, old_value), as gunicorn calls it. */
static void
nworkers_hook(const struct arbiter *a, int old)
{
    const struct qln_hook_field sf[] = {
        {.key = "pid", .i = a->pid},
        {.key = "workers", .i = a->num_workers},
        {.key = "name", .s = a->proc_name != NULL ? a->proc_name : ""},
    };
    const struct qln_hook_field nf[] = {{.key = NULL, .i = a->num_workers}};
    const struct qln_hook_field of[] = {{.key = NULL, .i = old}};
    const struct qln_hook_arg args[] = {
        {.f = sf, .n = ARRAY_SIZE(sf)},
        {.f = nf, .n = 1},
        {.f = of, .n = 1},
    };

    if (old != a->num_workers)
        hooks_call(HOOK_NWORKERS_CHANGED, args, ARRAY_SIZE(args));
}

static void
set_num_workers(struct arbiter *a, int n)
{
    int old = a->num_workers;

    a->num_workers = n;
    nworkers_hook(a, old);
}

/* -------------------------------------------------------------- children */

static struct child *
child_find(struct arbiter *a, pid_t pid)
{
    size_t i;

    for (i = 0; i < a->nchildren; i++) {
        if (a->children[i].pid == pid)
            return &a->children[i];
    }
    return NULL;
}

static void
child_remove(struct arbiter *a, struct child *c)
{
    size_t i = (size_t)(c - a->children);

    scoreboard_release(c->slot);
    a->children[i] = a->children[a->nchildren - 1];
    a->nchildren--;
}

static void
child_signal(struct child *c, int signo)
{
    if (kill(c->pid, signo) == 0 || errno == ESRCH) {
        c->sent = signo;
        c->sent_ms = util_now_ms();
    }
}

static void
signal_all(struct arbiter *a, int signo)
{
    size_t i;

    for (i = 0; i < a->nchildren; i++)
        child_signal(&a->children[i], signo);
}

static int
count_active(const struct arbiter *a)
{
    size_t i;
    int n = 0;

    for (i = 0; i < a->nchildren; i++)
        n += !a->children[i].retiring;
    return n;
}

/*
 * Fork ordering: pre_fork (PyOS_BeforeFork) must be the last thing before
 * fork() and post_fork_parent the first after it, in the parent. Every
 * signal is blocked across fork() so that a signal aimed at the new child
 * waits until the child has replaced the master's libev handlers with its
 * own (worker.c explains the race). stdio is flushed first, or the child
 * would write the master's buffered output a second time.
 */
static void
spawn_worker(struct arbiter *a)
{
    const struct qln_app_ops *app = a->app_plugin->app;
    void (*pre_fork)(void *) = APP_HOOK(app, pre_fork);
    void (*post_fork_parent)(void *, pid_t) = APP_HOOK(app, post_fork_parent);
    struct scoreboard_slot *slot;
    struct worker_boot boot;
    sigset_t old;
    pid_t pid;
    int e;

    slot = scoreboard_claim(&a->sb, a->next_age, util_now_ms());
    if (slot == NULL) {
        qln_log(QLN_LOG_WARNING, "Not spawning a worker: all %zu scoreboard slots are in use",
                a->sb.nslots);
        return;
    }
    if (a->nchildren == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 8;
        a->children = xrealloc(a->children, a->cap * sizeof(*a->children));
    }
    boot = (struct worker_boot){
        .ctx = a->ctx,
        .app = app,
        .app_state = a->app_state,
        .ops = a->worker_plugin->worker,
        .listeners = a->listeners,
        .nlisteners = a->nlisteners,
        .slot = slot,
        .age = a->next_age,
        .app_loaded = a->preloaded,
        .app_spec = a->app_spec,
        .proc_name = a->proc_name,
        .owner = &a->owner,
        .stats_fd = a->stats.loop != NULL ? a->stats.l.fd : -1,
    };
    worker_hook(a, HOOK_PRE_FORK, 0, a->next_age, 0);
    if (pre_fork != NULL)
        pre_fork(a->app_state);
    fflush(NULL);
    signals_block_all(&old);
    pid = fork();
    if (pid == 0)
        worker_main(&boot);
    e = errno;
    if (post_fork_parent != NULL && pid > 0)
        post_fork_parent(a->app_state, pid);
    signals_restore(&old);
    if (pid < 0) {
        scoreboard_release(slot);
        qln_log_errno(QLN_LOG_ERROR, e, "fork() of a worker");
        return;
    }
    scoreboard_slot_set_pid(slot, pid);
    a->children[a->nchildren++] = (struct child){.pid = pid, .age = a->next_age, .slot = slot};
    a->next_age++;
}

/* Spawns or retires workers until num_workers are active (gunicorn's manage_workers). */
static void
manage_workers(struct arbiter *a)
{
    int n = count_active(a);

    while (a->state == ARB_RUNNING && n < a->num_workers) {
        size_t before = a->nchildren;

        spawn_worker(a);
        if (a->nchildren == before)
            break; /* fork failed or no slot: the next tick retries */
        n++;
    }
    while (n > a->num_workers) {
        struct child *oldest = NULL;
        size_t i;

        for (i = 0; i < a->nchildren; i++) {
            struct child *c = &a->children[i];

            if (!c->retiring && (oldest == NULL || c->age < oldest->age))
                oldest = c;
        }
        oldest->retiring = true;
        child_signal(oldest, SIGTERM);
        n--;
    }
}

/* ------------------------------------------------------------------ stop */

/* Socket files stay while another master (USR2) or systemd may use them. */
static bool
may_unlink(const struct arbiter *a)
{
    return !a->keep_unix_paths && a->reexec_pid == 0 && a->old_master == 0;
}

/*
 * What a stop sends the workers. After USR2 the new master serves the same
 * sockets, so a quick stop of the old one (QUIT) need not reset the clients
 * its workers already accepted: they get TERM, still under the quick stop's
 * short deadline. That is what makes an upgrade lossless.
 */
static int
quick_signal(const struct arbiter *a, bool quick)
{
    return quick && a->reexec_pid == 0 ? SIGQUIT : SIGTERM;
}

static void
begin_stop(struct arbiter *a, bool quick)
{
    int64_t wait_ms = a->graceful_ms;
    size_t i;

    a->state = ARB_STOPPING;
    a->quick = quick;
    notify_send("STOPPING=1");
    /* gunicorn closes the master's copies at once; workers still hold theirs
       until they exit, so what the kernel already queued can still be served. */
    for (i = 0; i < a->nlisteners; i++)
        listener_close(&a->listeners[i], may_unlink(a));
    if (quick && wait_ms > QUICK_STOP_MS)
        wait_ms = QUICK_STOP_MS;
    signal_all(a, quick_signal(a, quick));
    if (a->nchildren == 0) {
        ev_break(a->loop, EVBREAK_ALL);
        return;
    }
    ev_timer_stop(a->loop, &a->stop_timer);
    ev_timer_set(&a->stop_timer, (double)wait_ms / 1000.0, 0.0);
    ev_timer_start(a->loop, &a->stop_timer);
}

/* A worker failed in a way respawning cannot fix: stop everything (gunicorn's halt). */
static void
halt(struct arbiter *a, const char *reason, int status)
{
    a->reason = reason;
    a->exit_status = status;
    begin_stop(a, false);
}

/* The stop deadline passed: whoever is left gets SIGKILL. */
static void
on_stop_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct arbiter *a = container_of(t, struct arbiter, stop_timer);

    (void)loop;
    (void)revents;
    a->kill_sent = true;
    signal_all(a, SIGKILL);
}

/* --------------------------------------------------------------- reaping */

static void
log_signaled(const struct child *c, int sig)
{
    char name[32];

    signals_full_name(sig, name, sizeof(name));
    if (c->timed_out) {
        /* Our own timeout: never blame the OOM killer for it (gunicorn does). */
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) was killed after %s (%s)", (int)c->pid, c->cause,
                name);
    } else if (sig == SIGKILL && c->sent == SIGKILL) {
        qln_log(QLN_LOG_WARNING, "Worker (pid:%d) was killed after graceful_timeout (SIGKILL)",
                (int)c->pid);
    } else if (c->sent == sig) {
        qln_log(QLN_LOG_DEBUG, "Worker (pid:%d) ended by %s", (int)c->pid, name);
    } else if (sig == SIGKILL) {
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) was sent SIGKILL! Perhaps out of memory?",
                (int)c->pid);
    } else {
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) was sent %s!", (int)c->pid, name);
    }
}

static void
handle_exit(struct arbiter *a, const struct child *c, int status)
{
    int code;

    if (WIFSIGNALED(status)) {
        log_signaled(c, WTERMSIG(status));
        return;
    }
    if (!WIFEXITED(status))
        return;
    code = WEXITSTATUS(status);
    if (c->timed_out) {
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) was killed after %s (SIGABRT)", (int)c->pid,
                c->cause);
        return;
    }
    if (code != 0)
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) exited with code %d", (int)c->pid, code);
    if (a->state != ARB_RUNNING)
        return;
    /* Respawning would fail the same way forever: halt, as gunicorn does. */
    if (code == EXIT_BOOT_ERROR)
        halt(a, "Worker failed to boot.", EXIT_BOOT_ERROR);
    else if (code == EXIT_APP_LOAD_ERROR)
        halt(a, "App failed to load.", EXIT_APP_LOAD_ERROR);
}

static void
on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    struct arbiter *a = container_of(w, struct arbiter, childw);
    struct child *c = child_find(a, w->rpid);
    struct child copy;

    (void)revents;
    if (c == NULL && w->rpid == a->reexec_pid) {
        /* The USR2 master exited (rollback): a later USR2 may try again. */
        qln_log(QLN_LOG_INFO, "New master (pid:%d) exited", (int)w->rpid);
        a->reexec_pid = 0;
        return;
    }
    if (c == NULL) {
        /* Not ours (we may be PID 1 in a container): reaped, nothing to do. */
        qln_log(QLN_LOG_DEBUG, "Reaped unknown process %d", (int)w->rpid);
        return;
    }
    copy = *c;
    child_remove(a, c);
    handle_exit(a, &copy, w->rstatus);
    worker_hook(a, HOOK_CHILD_EXIT, copy.pid, copy.age,
                WIFEXITED(w->rstatus) ? WEXITSTATUS(w->rstatus) : -WTERMSIG(w->rstatus));
    if (a->state == ARB_RUNNING)
        manage_workers(a);
    else if (a->nchildren == 0)
        ev_break(loop, EVBREAK_ALL);
}

/* ------------------------------------------------------------- timeouts */

/*
 * gunicorn's murder_workers: a worker silent for longer than `timeout` gets
 * SIGABRT (its app may dump stacks) and, still there a second later,
 * SIGKILL. Retiring workers get SIGKILL once graceful_timeout has passed.
 */
static void
check_timeouts(struct arbiter *a, int64_t now)
{
    int64_t start;
    size_t i;

    for (i = 0; i < a->nchildren; i++) {
        struct child *c = &a->children[i];

        if (c->sent == SIGKILL)
            continue;
        if (c->timed_out) {
            if (now - c->sent_ms >= KILL_AFTER_ABORT_MS - 100)
                child_signal(c, SIGKILL);
            continue;
        }
        if (c->retiring && now - c->sent_ms >= a->graceful_ms) {
            child_signal(c, SIGKILL);
            continue;
        }
        if (a->timeout_ms > 0 && now - scoreboard_heartbeat_ms(c->slot) > a->timeout_ms) {
            qln_log(QLN_LOG_CRITICAL, "WORKER TIMEOUT (pid:%d)", (int)c->pid);
            c->timed_out = true;
            c->cause = "timeout";
            child_signal(c, SIGABRT);
            continue;
        }
        start = a->request_timeout_ms > 0 ? scoreboard_oldest_request_ms(c->slot) : 0;
        if (start > 0 && now - start > a->request_timeout_ms) {
            qln_log(QLN_LOG_CRITICAL,
                    "WORKER REQUEST TIMEOUT (pid:%d): a request ran longer than --request-timeout"
                    " (%llds)",
                    (int)c->pid, (long long)(a->request_timeout_ms / 1000));
            c->timed_out = true;
            c->cause = "request timeout";
            child_signal(c, SIGABRT);
        }
    }
}

/*
 * Type=notify: READY=1 once a worker has loaded the app and can serve
 * (gunicorn sends it before any worker exists). A master started by USR2
 * also names itself the main process (MAINPID=; the unit needs
 * NotifyAccess=all for systemd to accept it from a child of the old one).
 */
static void
notify_ready(struct arbiter *a)
{
    char msg[128];
    size_t i;
    int rc;

    for (i = 0; i < a->nchildren; i++) {
        if (scoreboard_ready(a->children[i].slot))
            break;
    }
    if (i == a->nchildren)
        return;
    a->ready_sent = true;
    if (!notify_enabled())
        return;
    if (a->old_master != 0)
        snprintf(msg, sizeof(msg), "MAINPID=%d\nREADY=1\nSTATUS=qilin master ready", (int)a->pid);
    else
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=qilin master ready");
    rc = notify_send(msg);
    if (rc != 0)
        qln_log(QLN_LOG_WARNING, "sd_notify($NOTIFY_SOCKET) failed: %s", strerror(-rc));
}

/*
 * A master started by USR2 becomes the master once the old one has exited
 * (our parent changed): the pidfile takes its configured name, and the
 * inherited sockets are ours to manage (HUP may rebind, exit may unlink).
 */
static void
promote(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;
    size_t i, n = config_find(cfg, "bind") != NULL ? config_list_len(cfg, "bind") : 0;

    qln_log(QLN_LOG_INFO, "Master has been promoted.");
    a->old_master = 0;
    if (a->stats.loop != NULL && !a->systemd)
        a->stats.l.inherited = false; /* from the old master: ours to unlink now */
    if (a->pid_path != NULL && a->pidfile != NULL) {
        if (rename(a->pid_path, a->pidfile) != 0)
            qln_log_errno(QLN_LOG_ERROR, errno, "rename(%s, %s)", a->pid_path, a->pidfile);
        free(a->pid_path);
        a->pid_path = xstrdup(a->pidfile);
    }
    if (a->systemd || n != a->nlisteners)
        return;
    /* The old master passed its listeners in --bind order. */
    for (i = 0; i < n; i++) {
        free(a->specs[i]);
        a->specs[i] = xstrdup(config_list_get(cfg, "bind", i));
        a->listeners[i].inherited = false;
    }
    free_specs(a->inherited_specs, SIZE_MAX);
    a->inherited_specs = NULL;
    a->keep_unix_paths = false;
}

static void
on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct arbiter *a = container_of(t, struct arbiter, tick);

    (void)loop;
    (void)revents;
    if (a->state != ARB_RUNNING)
        return;
    if (a->old_master != 0 && getppid() != a->old_master)
        promote(a);
    if (!a->ready_sent)
        notify_ready(a);
    check_timeouts(a, util_now_ms());
    manage_workers(a);
}

/* --------------------------------------------------------------- signals */

/* HUP: new workers replace the old ones, which finish gracefully (the app is
   imported afresh unless preloaded). */
static void
replace_workers(struct arbiter *a)
{
    size_t i, n = a->nchildren;

    for (i = 0; i < n; i++)
        a->children[i].retiring = true;
    manage_workers(a);
    for (i = 0; i < a->nchildren; i++) {
        if (a->children[i].retiring && a->children[i].sent == 0)
            child_signal(&a->children[i], SIGTERM);
    }
}

/* HUP: re-read the configuration (an invalid one is logged and the current
   one kept), apply it, then replace the workers, as gunicorn's reload(). */
static void apply_config(struct arbiter *a);

static void
reload(struct arbiter *a)
{
    char err[1024] = "";
    int rc;

    qln_log(QLN_LOG_INFO, "Hang up: Master");
    if (reload_fn != NULL) {
        rc = reload_fn(reload_opaque, a->ctx, err, sizeof(err));
        if (rc != 0)
            qln_log(QLN_LOG_ERROR, "Reload failed, keeping the current configuration: %s", err);
        else
            apply_config(a);
    }
    server_hook(a, HOOK_ON_RELOAD);
    replace_workers(a);
}

/* The environment of the new master: ours, with the hand-over variables. */
static char **
reexec_environ(const struct arbiter *a)
{
    extern char **environ;
    size_t i, n = 0, len;
    char **envp;
    char *fds;

    while (environ[n] != NULL)
        n++;
    envp = xcalloc(n + 4, sizeof(*envp));
    for (i = 0, n = 0; environ[i] != NULL; i++) {
        if (strncmp(environ[i], ENV_FD "=", sizeof(ENV_FD)) != 0 &&
            strncmp(environ[i], ENV_PID "=", sizeof(ENV_PID)) != 0 &&
            strncmp(environ[i], ENV_STATS_FD "=", sizeof(ENV_STATS_FD)) != 0)
            envp[n++] = xstrdup(environ[i]);
    }
    envp[n++] = xasprintf("%s=%d", ENV_PID, (int)a->pid);
    if (a->stats.loop != NULL)
        envp[n++] = xasprintf("%s=%d", ENV_STATS_FD, a->stats.l.fd);
    fds = xstrdup(ENV_FD "=");
    for (i = 0; i < a->nlisteners; i++) {
        len = strlen(fds);
        fds = xrealloc(fds, len + 16);
        snprintf(fds + len, 16, "%s%d", i ? "," : "", a->listeners[i].fd);
    }
    envp[n++] = fds;
    return envp;
}

/*
 * USR2: fork a child that execs our own command line (a new binary, when it
 * was replaced on disk) with the listening sockets inherited. Both masters
 * then serve on the same sockets until the operator stops the old one.
 * The environment and argv are built before the fork, so that between fork
 * and exec the child only clears FD_CLOEXEC on the listeners and resets
 * signals, besides the pre_exec hook (gunicorn runs it there too; the
 * master is single-threaded unless a preloaded app started threads).
 */
static void
reexec(struct arbiter *a)
{
    char **envp;
    sigset_t old;
    size_t i;
    pid_t pid;

    if (a->reexec_pid != 0) {
        qln_log(QLN_LOG_WARNING, "USR2 signal ignored. Child exists.");
        return;
    }
    if (a->old_master != 0) {
        qln_log(QLN_LOG_WARNING, "USR2 signal ignored. Parent exists.");
        return;
    }
    envp = reexec_environ(a);
    fflush(NULL);
    signals_block_all(&old);
    pid = fork();
    if (pid == 0) {
        server_hook(a, HOOK_PRE_EXEC);
        signals_reset_dispositions();
        for (i = 0; i < a->nlisteners; i++)
            fcntl(a->listeners[i].fd, F_SETFD, 0);
        if (a->stats.loop != NULL)
            fcntl(a->stats.l.fd, F_SETFD, 0);
        signals_unblock_all();
        execvpe(a->ctx->argv[0], a->ctx->argv, envp);
        _exit(127);
    }
    signals_restore(&old);
    for (i = 0; envp[i] != NULL; i++)
        free(envp[i]);
    free(envp);
    if (pid < 0) {
        qln_log_errno(QLN_LOG_ERROR, errno, "fork() of a new master");
        return;
    }
    a->reexec_pid = pid;
    qln_log(QLN_LOG_INFO, "Starting a new master (pid:%d) with the listening sockets", (int)pid);
}

static void
handle_running_signal(struct arbiter *a, int signo)
{
    switch (signo) {
    case SIGTERM:
        begin_stop(a, false);
        break;
    case SIGINT:
    case SIGQUIT:
        begin_stop(a, true);
        break;
    case SIGHUP:
        reload(a);
        break;
    case SIGTTIN:
        set_num_workers(a, a->num_workers + 1);
        manage_workers(a);
        break;
    case SIGTTOU:
        if (a->num_workers > 1)
            set_num_workers(a, a->num_workers - 1);
        manage_workers(a);
        break;
    case SIGUSR2:
        reexec(a);
        break;
    case SIGWINCH:
        if (!a->daemonized) {
            qln_log(QLN_LOG_DEBUG, "SIGWINCH ignored. Not daemonized");
            break;
        }
        /* gunicorn: the master stays, its workers stop; TTIN or HUP brings them back. */
        qln_log(QLN_LOG_INFO, "graceful stop of workers");
        set_num_workers(a, 0);
        manage_workers(a);
        break;
    default:
        break;
    }
}

static void
on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    struct arbiter *a = &the_arbiter;
    int signo = w->signum;

    (void)loop;
    (void)revents;
    qln_log(QLN_LOG_INFO, "Handling signal: %s", signals_name(signo));
    if (signo == SIGUSR1) {
        size_t i;

        log_reopen();
        capture_output(a->ctx->cfg);
        /* Forwarded as is: not a stop request, so not recorded in child.sent. */
        for (i = 0; i < a->nchildren; i++)
            kill(a->children[i].pid, SIGUSR1);
        return;
    }
    if (a->state == ARB_RUNNING) {
        handle_running_signal(a, signo);
        return;
    }
    /* Stopping: INT/QUIT turn a graceful stop into a quick one (gunicorn). */
    if ((signo == SIGINT || signo == SIGQUIT) && !a->quick) {
        double left = ev_timer_remaining(a->loop, &a->stop_timer);

        a->quick = true;
        signal_all(a, quick_signal(a, true));
        if (left > QUICK_STOP_MS / 1000.0) {
            ev_timer_stop(a->loop, &a->stop_timer);
            ev_timer_set(&a->stop_timer, QUICK_STOP_MS / 1000.0, 0.0);
            ev_timer_start(a->loop, &a->stop_timer);
        }
    }
}

/* ---------------------------------------------------------------- startup */

/* Binds SPEC into L, retrying "address in use" as gunicorn does. */
static int
open_one(struct arbiter *a, struct listener *l, const char *spec)
{
    const struct config *cfg = a->ctx->cfg;
    int backlog = (int)opt_int(cfg, "backlog", 2048);
    bool reuse_port = opt_bool(cfg, "reuse_port", false);
    char err[512];
    int attempt, rc = 0;

    for (attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
        rc = listener_open(l, spec, backlog, reuse_port, err, sizeof(err));
        if (rc != -EADDRINUSE)
            break;
        qln_log(QLN_LOG_ERROR, "%s", err);
        if (attempt < BIND_ATTEMPTS) {
            qln_log(QLN_LOG_ERROR, "Retrying in 1 second.");
            sleep(1);
        }
    }
    if (rc == -EADDRINUSE)
        fatal("%s: is another server running there? choose another --bind", err);
    else if (rc != 0)
        fatal("%s (check --bind '%s')", err, spec);
    if (rc != 0)
        return rc;
    /* Workers that run as --user must be able to use the socket file. */
    if (l->is_unix && !l->inherited && (a->owner.set_uid || a->owner.set_gid) &&
        chown(l->host, a->owner.set_uid ? a->owner.uid : (uid_t)-1,
              a->owner.set_gid ? a->owner.gid : (gid_t)-1) != 0)
        qln_log_errno(QLN_LOG_WARNING, errno, "chown(%s)", l->host);
    qln_log(QLN_LOG_INFO, "Listening at: %s (%d)", l->url, (int)a->pid);
    return 0;
}

/*
 * The bind specs in effect: fds handed over by systemd (LISTEN_FDS) or by
 * the master that re-executed us (QILIN_FD) replace --bind, as gunicorn
 * ignores its -b addresses when it inherits sockets. Returns owned strings.
 */
static char **
bind_specs(struct arbiter *a, size_t *count)
{
    const struct config *cfg = a->ctx->cfg;
    size_t i, n = config_find(cfg, "bind") != NULL ? config_list_len(cfg, "bind") : 0;
    char **specs;

    if (a->inherited_specs != NULL) {
        for (n = 0; a->inherited_specs[n] != NULL; n++)
            ;
        specs = xcalloc(n, sizeof(*specs));
        for (i = 0; i < n; i++)
            specs[i] = xstrdup(a->inherited_specs[i]);
        *count = n;
        return specs;
    }
    *count = n ? n : 1;
    specs = xcalloc(*count, sizeof(*specs));
    for (i = 0; i < *count; i++)
        specs[i] = xstrdup(n ? config_list_get(cfg, "bind", i) : "127.0.0.1:8000");
    return specs;
}

/* Adds "fd://FD" to the NULL-terminated list *SPECS of length *N. */
static void
push_fd_spec(char ***specs, size_t *n, int fd)
{
    *specs = xrealloc(*specs, (*n + 2) * sizeof(**specs));
    (*specs)[(*n)++] = xasprintf("fd://%d", fd);
    (*specs)[*n] = NULL;
}

/*
 * Sockets handed to us: systemd's LISTEN_FDS (fds 3.. when LISTEN_PID is
 * our pid), or QILIN_FD from the master whose USR2 started us. The
 * variables are removed so that workers and the app never act on them.
 */
static void
inherit_fds(struct arbiter *a)
{
    const char *lpid = getenv("LISTEN_PID"), *lfds = getenv("LISTEN_FDS");
    const char *qfd = getenv(ENV_FD), *qpid = getenv(ENV_PID);
    size_t n = 0;
    char *end;
    long v;
    int i;

    if (qpid != NULL)
        a->old_master = (pid_t)atoi(qpid);
    if (lpid != NULL && lfds != NULL && atol(lpid) == (long)getpid()) {
        for (i = 0; i < atoi(lfds); i++)
            push_fd_spec(&a->inherited_specs, &n, 3 + i);
        a->systemd = true;
    } else if (qfd != NULL) {
        while (*qfd != '\0') {
            errno = 0;
            v = strtol(qfd, &end, 10);
            if (end == qfd || errno != 0 || v < 0 || v > INT32_MAX)
                break;
            push_fd_spec(&a->inherited_specs, &n, (int)v);
            qfd = *end == ',' ? end + 1 : end;
        }
    }
    a->keep_unix_paths = n > 0;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    unsetenv(ENV_FD);
    unsetenv(ENV_PID);
}

static int
open_listeners(struct arbiter *a)
{
    size_t i;

    a->specs = bind_specs(a, &a->nlisteners);
    a->listeners = xcalloc(a->nlisteners, sizeof(*a->listeners));
    for (i = 0; i < a->nlisteners; i++)
        a->listeners[i].fd = -1;
    for (i = 0; i < a->nlisteners; i++) {
        if (open_one(a, &a->listeners[i], a->specs[i]) != 0)
            return -1;
    }
    return 0;
}

/*
 * HUP with changed --bind: addresses still configured keep their socket
 * (no connection is refused across a reload), new ones are bound, dropped
 * ones closed. Any failure leaves the current listeners untouched.
 */
static int
rebind_listeners(struct arbiter *a)
{
    size_t i, j, n;
    char **specs = bind_specs(a, &n);
    struct listener *nl = xcalloc(n, sizeof(*nl));
    bool *kept = xcalloc(a->nlisteners, sizeof(*kept));
    int rc = 0;

    for (i = 0; i < n; i++) {
        nl[i].fd = -1;
        for (j = 0; j < a->nlisteners; j++) {
            if (!kept[j] && strcmp(a->specs[j], specs[i]) == 0) {
                nl[i] = a->listeners[j];
                kept[j] = true;
                break;
            }
        }
        if (j == a->nlisteners && (rc = open_one(a, &nl[i], specs[i])) != 0)
            break;
    }
    if (rc != 0) {
        for (i = 0; i < n; i++) {
            for (j = 0; j < a->nlisteners && nl[i].fd != a->listeners[j].fd; j++)
                ;
            if (j == a->nlisteners)
                listener_close(&nl[i], true);
        }
        free(nl);
        free_specs(specs, n);
        free(kept);
        return rc;
    }
    for (j = 0; j < a->nlisteners; j++) {
        if (!kept[j])
            listener_close(&a->listeners[j], true);
    }
    free(a->listeners);
    free_specs(a->specs, a->nlisteners);
    free(kept);
    a->listeners = nl;
    a->specs = specs;
    a->nlisteners = n;
    return 0;
}

static void
close_listeners(struct arbiter *a)
{
    size_t i;

    for (i = 0; i < a->nlisteners; i++)
        listener_close(&a->listeners[i], may_unlink(a));
    free(a->listeners);
    free_specs(a->specs, a->nlisteners);
    a->listeners = NULL;
    a->specs = NULL;
    a->nlisteners = 0;
}

/* init() in the master, and load_app() too under preload_app. */
static int
start_app(struct arbiter *a)
{
    const struct qln_app_ops *app = a->app_plugin->app;
    char err[1024] = "";
    int rc;

    rc = app->init(a->ctx, &a->app_state, err, sizeof(err));
    if (rc != 0) {
        fatal("plugin '%s' failed to start: %s", a->app_plugin->name,
              err[0] ? err : qln_strerror(rc));
        return EXIT_FAILURE;
    }
    a->app_started = true;
    if (!opt_bool(a->ctx->cfg, "preload_app", false))
        return 0;
    /* Issue 6: a green worker monkey-patches before the preloaded import. */
    if (WORKER_HOOK(a->worker_plugin->worker, prepare) != NULL) {
        rc = a->worker_plugin->worker->prepare(NULL, err, sizeof(err));
        if (rc != 0) {
            fatal("worker '%s' failed to start: %s", a->worker_plugin->name,
                  err[0] ? err : qln_strerror(rc));
            return EXIT_FAILURE;
        }
    }
    err[0] = '\0';
    rc = app->load_app(a->app_state, a->app_spec, err, sizeof(err));
    if (rc != 0) {
        if (err[0] != '\0')
            qln_log(QLN_LOG_ERROR, "%s", err);
        a->reason = "App failed to load.";
        return EXIT_APP_LOAD_ERROR;
    }
    a->preloaded = true;
    return 0;
}

static void
start_loop(struct arbiter *a)
{
    size_t i;

    a->loop = ev_default_loop(EVFLAG_AUTO);
    /* Writes to a client that hung up must fail with EPIPE, never kill us. */
    signal(SIGPIPE, SIG_IGN);
    for (i = 0; i < signals_master_count && i < MAX_SIGNALS; i++) {
        ev_signal_init(&a->sigw[i], on_signal, signals_master[i]);
        ev_signal_start(a->loop, &a->sigw[i]);
    }
    ev_child_init(&a->childw, on_child, 0, 0);
    ev_child_start(a->loop, &a->childw);
    ev_timer_init(&a->tick, on_tick, TICK_SECONDS, TICK_SECONDS);
    ev_timer_start(a->loop, &a->tick);
    ev_timer_init(&a->stop_timer, on_stop_timer, 0.0, 0.0);
}

/* Appends to BUF (LEN bytes) at *POS like snprintf, never past the end. */
static void __attribute__((format(printf, 4, 5)))
append(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*pos >= len - 1)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
    va_end(ap);
    if (n > 0)
        *pos = *pos + (size_t)n < len - 1 ? *pos + (size_t)n : len - 1;
}

static const char *
child_state(const struct child *c)
{
    if (c->timed_out)
        return "timed_out";
    if (c->retiring)
        return "stopping";
    return scoreboard_ready(c->slot) ? "serving" : "booting";
}

/* --stats: the scoreboard as JSON, or as Prometheus text. */
static size_t
render_stats(void *opaque, bool prometheus, char *buf, size_t len)
{
    const struct arbiter *a = opaque;
    int64_t now = util_now_ms();
    size_t i, pos = 0;

    if (prometheus) {
        append(buf, len, &pos,
               "# TYPE qilin_workers gauge\nqilin_workers %d\n"
               "# TYPE qilin_worker_requests_total counter\n",
               a->num_workers);
        for (i = 0; i < a->nchildren; i++)
            append(buf, len, &pos, "qilin_worker_requests_total{pid=\"%d\",age=\"%d\"} %llu\n",
                   (int)a->children[i].pid, a->children[i].age,
                   (unsigned long long)scoreboard_requests(a->children[i].slot));
        append(buf, len, &pos, "# TYPE qilin_worker_active_requests gauge\n");
        for (i = 0; i < a->nchildren; i++)
            append(buf, len, &pos, "qilin_worker_active_requests{pid=\"%d\",age=\"%d\"} %u\n",
                   (int)a->children[i].pid, a->children[i].age,
                   scoreboard_active(a->children[i].slot));
        return pos;
    }
    append(buf, len, &pos, "{\"master\": {\"pid\": %d, \"workers\": %d}, \"workers\": [",
           (int)a->pid, a->num_workers);
    for (i = 0; i < a->nchildren; i++) {
        const struct child *c = &a->children[i];

        append(buf, len, &pos,
               "%s{\"pid\": %d, \"age\": %d, \"state\": \"%s\", \"requests\": %llu,"
               " \"active\": %u, \"heartbeat_ms_ago\": %lld}",
               i ? ", " : "", (int)c->pid, c->age, child_state(c),
               (unsigned long long)scoreboard_requests(c->slot), scoreboard_active(c->slot),
               (long long)(now - scoreboard_heartbeat_ms(c->slot)));
    }
    append(buf, len, &pos, "]}\n");
    return pos;
}

static void
stop_loop(struct arbiter *a)
{
    size_t i;

    if (a->loop == NULL)
        return;
    stats_close(&a->stats, may_unlink(a));
    for (i = 0; i < signals_master_count && i < MAX_SIGNALS; i++)
        ev_signal_stop(a->loop, &a->sigw[i]);
    ev_child_stop(a->loop, &a->childw);
    ev_timer_stop(a->loop, &a->tick);
    ev_timer_stop(a->loop, &a->stop_timer);
    ev_loop_destroy(a->loop);
    a->loop = NULL;
}

static bool
same_str(const char *x, const char *y)
{
    return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* The settings the master itself acts on; again after each HUP. */
static void
read_settings(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;

    a->num_workers = (int)opt_int(cfg, "workers", 1);
    if (a->num_workers < 1)
        a->num_workers = 1;
    a->timeout_ms = opt_int(cfg, "timeout", 30) * 1000;
    a->graceful_ms = opt_int(cfg, "graceful_timeout", 30) * 1000;
    a->request_timeout_ms = opt_int(cfg, "request_timeout", 0) * 1000;
    a->pidfile = opt_str(cfg, "pidfile");
    a->app_spec = opt_str(cfg, "wsgi_app");
    a->proc_name = opt_str(cfg, "proc_name");
    if (a->proc_name == NULL)
        a->proc_name = a->app_spec;
}

/*
 * HUP, after the new configuration replaced the old in a->ctx: the log
 * settings, the master's own settings, the pidfile and the listeners follow
 * it. What cannot be applied is logged and the old state kept.
 */
static void
apply_config(struct arbiter *a)
{
    const char *old_pidfile = a->pidfile;
    int old_workers = a->num_workers;
    char err[512];

    if (log_open(a->ctx->cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "Reload: %s; the logs stay as they were", err);
    capture_output(a->ctx->cfg);
    if (apply_env(a, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "Reload: %s", err);
    read_settings(a);
    nworkers_hook(a, old_workers);
    proc_set_title("master", a->proc_name);
    if (a->old_master == 0 && !same_str(old_pidfile, a->pidfile)) {
        if (a->pid_path != NULL)
            proc_pidfile_remove(a->pid_path, a->pid);
        free(a->pid_path);
        a->pid_path = NULL;
        if (a->pidfile != NULL && proc_pidfile_write(a->pidfile, a->pid, err, sizeof(err)) != 0)
            qln_log(QLN_LOG_ERROR, "Reload: %s", err);
        else if (a->pidfile != NULL)
            a->pid_path = xstrdup(a->pidfile);
    }
    if (a->inherited_specs == NULL)
        rebind_listeners(a);
}

/*
 * What must happen before the logs and sockets open: the environment, the
 * workers' owner (so a typo is an error on the terminal), daemonizing, and
 * the umask (only when set: gunicorn's default of 0 would make every file
 * the server creates world-writable).
 */
static int
prepare_process(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;
    char err[512];
    int rc;

    if (apply_env(a, err, sizeof(err)) != 0 ||
        proc_owner_resolve(opt_str(cfg, "user"), opt_str(cfg, "group"),
                           opt_bool(cfg, "initgroups", false), &a->owner, err, sizeof(err)) != 0) {
        fatal("%s", err);
        return EXIT_FAILURE;
    }
    /* A master started by USR2 is already detached (gunicorn checks its fd
       variable the same way): forking again would orphan it at once, and it
       would take the pidfile while the old master still runs. */
    if (opt_bool(cfg, "daemon", false) && getenv(ENV_FD) == NULL) {
        rc = proc_daemonize(opt_bool(cfg, "enable_stdio_inheritance", false));
        if (rc != 0) {
            fatal("cannot daemonize: %s", strerror(-rc));
            return EXIT_FAILURE;
        }
        a->pid = getpid();
    }
    a->daemonized = opt_bool(cfg, "daemon", false);
    if (config_find(cfg, "umask") != NULL && config_source_of(cfg, "umask") != CONFIG_SRC_DEFAULT)
        umask((mode_t)config_int(cfg, "umask"));
    return 0;
}

static int
setup(struct arbiter *a, struct qln_ctx *ctx, const struct qln_plugin *app,
      const struct qln_plugin *worker)
{
    const struct config *cfg = ctx->cfg;
    char err[512];
    int rc;

    a->ctx = ctx;
    a->app_plugin = app;
    a->worker_plugin = worker;
    a->pid = getpid();
    a->next_age = 1;
    read_settings(a);
    rc = prepare_process(a);
    if (rc != 0)
        return rc;
    inherit_fds(a);
    rc = log_open(cfg, err, sizeof(err));
    if (rc != 0) {
        fatal("%s (check --error-logfile and --access-logfile)", err);
        return EXIT_FAILURE;
    }
    capture_output(cfg);
    log_set_pid((int)a->pid);
    proc_set_title("master", a->proc_name);
    qln_log(QLN_LOG_INFO, "Starting qilin %s", QLN_VERSION);
    server_hook(a, HOOK_ON_STARTING);
    if (a->pidfile != NULL) {
        /* A master started by USR2 writes PIDFILE.2 until the old one exits. */
        char *path = a->old_master != 0 ? xasprintf("%s.2", a->pidfile) : xstrdup(a->pidfile);

        rc = proc_pidfile_write(path, a->pid, err, sizeof(err));
        if (rc != 0) {
            fatal("%s", err);
            free(path); /* not ours: never remove it */
            return EXIT_FAILURE;
        }
        a->pid_path = path;
    }
    if (open_listeners(a) != 0)
        return EXIT_FAILURE;
    qln_log(QLN_LOG_INFO, "Using worker: %s", worker->name);
    rc = start_app(a);
    if (rc != 0)
        return rc;
    /* Room for HUP's overlap of old and new workers, and for TTIN. */
    if (scoreboard_init(&a->sb, (size_t)a->num_workers * 2 + 1024) != 0) {
        fatal("cannot map the scoreboard: %s", strerror(errno));
        return EXIT_FAILURE;
    }
    return 0;
}

static void
teardown(struct arbiter *a)
{
    void (*app_shutdown)(void *) = a->app_started ? APP_HOOK(a->app_plugin->app, shutdown) : NULL;
    int level = a->exit_status == 0 ? QLN_LOG_INFO : QLN_LOG_ERROR;
    bool started = a->loop != NULL;

    if (a->reason != NULL || a->loop != NULL) {
        qln_log(level, "Shutting down: Master");
        if (a->reason != NULL)
            qln_log(level, "Reason: %s", a->reason);
    }
    stop_loop(a);
    close_listeners(a);
    if (a->pid_path != NULL)
        proc_pidfile_remove(a->pid_path, a->pid);
    if (started)
        server_hook(a, HOOK_ON_EXIT);
    free(a->pid_path);
    a->pid_path = NULL;
    free_specs(a->inherited_specs, SIZE_MAX);
    a->inherited_specs = NULL;
    if (app_shutdown != NULL)
        app_shutdown(a->app_state);
    scoreboard_fini(&a->sb);
    free(a->children);
    a->children = NULL;
    a->nchildren = a->cap = 0;
}

int
arbiter_run(struct qln_ctx *ctx, const struct qln_plugin *app, const struct qln_plugin *worker)
{
    struct arbiter *a = &the_arbiter;
    const char *spec;
    char err[512], inherited[32];
    int rc;

    memset(a, 0, sizeof(*a));
    rc = setup(a, ctx, app, worker);
    if (rc != 0) {
        a->exit_status = rc;
        teardown(a);
        return rc;
    }
    start_loop(a);
    spec = opt_str(ctx->cfg, "stats");
    if (spec != NULL && getenv(ENV_STATS_FD) != NULL) {
        /* USR2: the old master's --stats socket, still bound. */
        snprintf(inherited, sizeof(inherited), "fd://%s", getenv(ENV_STATS_FD));
        spec = inherited;
    }
    unsetenv(ENV_STATS_FD);
    if (spec != NULL &&
        stats_open(&a->stats, a->loop, spec, render_stats, a, err, sizeof(err)) != 0) {
        fatal("%s", err);
        a->exit_status = EXIT_FAILURE;
        teardown(a);
        return EXIT_FAILURE;
    }
    server_hook(a, HOOK_WHEN_READY);
    manage_workers(a);
    ev_run(a->loop, 0);
    rc = a->exit_status;
    teardown(a);
    return rc;
}
