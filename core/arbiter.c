/*
 * The master (arbiter): startup (logs, pidfile, listeners, app plugin,
 * scoreboard), then a libev loop that only dispatches: signals, reaped
 * children, a one-second tick for timeouts. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/plugin.h>

#include "arbiter.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "proc.h"
#include "scoreboard.h"
#include "signals.h"
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

enum arbiter_state {
    ARB_RUNNING,
    ARB_STOPPING,
};

/* One forked worker as the master sees it. */
struct child {
    pid_t pid;
    int age;
    struct scoreboard_slot *slot;
    int sent;        /* the last signal the master sent it; 0: none */
    int64_t sent_ms; /* when (TERM to a retiring worker, ABRT for a timeout) */
    bool timed_out;  /* WORKER TIMEOUT: SIGABRT sent, SIGKILL may follow */
    bool retiring;   /* HUP or TTOU told it to stop; not counted in num_workers */
};

struct arbiter {
    struct qln_ctx *ctx;
    const struct qln_plugin *app_plugin;
    const struct qln_plugin *worker_plugin;
    void *app_state;
    bool app_started;
    bool preloaded;
    pid_t pid;
    const char *pidfile;
    const char *proc_name;
    const char *app_spec;

    struct listener *listeners;
    size_t nlisteners;
    struct scoreboard sb;
    struct child *children;
    size_t nchildren, cap;
    int num_workers;
    int next_age;
    int64_t timeout_ms;
    int64_t graceful_ms;

    enum arbiter_state state;
    bool quick;     /* INT/QUIT: SIGQUIT workers, short wait */
    bool kill_sent; /* the stop deadline passed and SIGKILL went out */
    int exit_status;
    const char *reason; /* printed as "Reason: ..." when halting */

    struct ev_loop *loop;
    ev_signal sigw[MAX_SIGNALS];
    ev_child childw;
    ev_timer tick;
    ev_timer stop_timer;
};

/* The one master of this process (STYLE: one struct per role). Master only. */
static struct arbiter the_arbiter;

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
    };
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

static void
begin_stop(struct arbiter *a, bool quick)
{
    int64_t wait_ms = a->graceful_ms;
    size_t i;

    a->state = ARB_STOPPING;
    a->quick = quick;
    /* gunicorn closes the master's copies at once; workers still hold theirs
       until they exit, so what the kernel already queued can still be served. */
    for (i = 0; i < a->nlisteners; i++)
        listener_close(&a->listeners[i], true);
    if (quick && wait_ms > QUICK_STOP_MS)
        wait_ms = QUICK_STOP_MS;
    signal_all(a, quick ? SIGQUIT : SIGTERM);
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
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) was killed after timeout (%s)", (int)c->pid, name);
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
        qln_log(QLN_LOG_ERROR, "Worker (pid:%d) was killed after timeout (SIGABRT)", (int)c->pid);
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
    if (c == NULL) {
        /* Not ours (we may be PID 1 in a container): reaped, nothing to do. */
        qln_log(QLN_LOG_DEBUG, "Reaped unknown process %d", (int)w->rpid);
        return;
    }
    copy = *c;
    child_remove(a, c);
    handle_exit(a, &copy, w->rstatus);
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
            child_signal(c, SIGABRT);
        }
    }
}

static void
on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct arbiter *a = container_of(t, struct arbiter, tick);

    (void)loop;
    (void)revents;
    if (a->state != ARB_RUNNING)
        return;
    check_timeouts(a, util_now_ms());
    manage_workers(a);
}

/* --------------------------------------------------------------- signals */

/* HUP: new workers replace the old ones, which finish gracefully (the app is
   imported afresh unless preloaded). The configuration is not re-read. */
static void
reload_workers(struct arbiter *a)
{
    size_t i, n = a->nchildren;

    qln_log(QLN_LOG_INFO, "Hang up: Master");
    for (i = 0; i < n; i++)
        a->children[i].retiring = true;
    manage_workers(a);
    for (i = 0; i < a->nchildren; i++) {
        if (a->children[i].retiring && a->children[i].sent == 0)
            child_signal(&a->children[i], SIGTERM);
    }
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
        reload_workers(a);
        break;
    case SIGTTIN:
        a->num_workers++;
        manage_workers(a);
        break;
    case SIGTTOU:
        if (a->num_workers > 1)
            a->num_workers--;
        manage_workers(a);
        break;
    case SIGUSR2:
        qln_log(QLN_LOG_WARNING, "USR2 (binary upgrade) is not supported yet; ignored");
        break;
    case SIGWINCH:
        qln_log(QLN_LOG_DEBUG, "SIGWINCH ignored. Not daemonized");
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
        signal_all(a, SIGQUIT);
        if (left > QUICK_STOP_MS / 1000.0) {
            ev_timer_stop(a->loop, &a->stop_timer);
            ev_timer_set(&a->stop_timer, QUICK_STOP_MS / 1000.0, 0.0);
            ev_timer_start(a->loop, &a->stop_timer);
        }
    }
}

/* ---------------------------------------------------------------- startup */

/* Binds every --bind, retrying "address in use" as gunicorn does. */
static int
open_listeners(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;
    size_t n = config_find(cfg, "bind") != NULL ? config_list_len(cfg, "bind") : 0;
    int backlog = (int)opt_int(cfg, "backlog", 2048);
    bool reuse_port = opt_bool(cfg, "reuse_port", false);
    char err[512];
    size_t i;
    int attempt, rc = 0;

    a->nlisteners = n ? n : 1;
    a->listeners = xcalloc(a->nlisteners, sizeof(*a->listeners));
    for (i = 0; i < a->nlisteners; i++)
        a->listeners[i].fd = -1;
    for (i = 0; i < a->nlisteners; i++) {
        const char *spec = n ? config_list_get(cfg, "bind", i) : "127.0.0.1:8000";

        for (attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
            rc = listener_open(&a->listeners[i], spec, backlog, reuse_port, err, sizeof(err));
            if (rc != -EADDRINUSE)
                break;
            qln_log(QLN_LOG_ERROR, "%s", err);
            if (attempt < BIND_ATTEMPTS) {
                qln_log(QLN_LOG_ERROR, "Retrying in 1 second.");
                sleep(1);
            }
        }
        if (rc == -EADDRINUSE) {
            fatal("%s: is another server running there? choose another --bind", err);
            return rc;
        }
        if (rc != 0) {
            fatal("%s (check --bind '%s')", err, spec);
            return rc;
        }
    }
    for (i = 0; i < a->nlisteners; i++)
        qln_log(QLN_LOG_INFO, "Listening at: %s (%d)", a->listeners[i].url, (int)a->pid);
    return 0;
}

static void
close_listeners(struct arbiter *a)
{
    size_t i;

    for (i = 0; i < a->nlisteners; i++)
        listener_close(&a->listeners[i], true);
    free(a->listeners);
    a->listeners = NULL;
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

static void
stop_loop(struct arbiter *a)
{
    size_t i;

    if (a->loop == NULL)
        return;
    for (i = 0; i < signals_master_count && i < MAX_SIGNALS; i++)
        ev_signal_stop(a->loop, &a->sigw[i]);
    ev_child_stop(a->loop, &a->childw);
    ev_timer_stop(a->loop, &a->tick);
    ev_timer_stop(a->loop, &a->stop_timer);
    ev_loop_destroy(a->loop);
    a->loop = NULL;
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
    a->num_workers = (int)opt_int(cfg, "workers", 1);
    if (a->num_workers < 1)
        a->num_workers = 1;
    a->timeout_ms = opt_int(cfg, "timeout", 30) * 1000;
    a->graceful_ms = opt_int(cfg, "graceful_timeout", 30) * 1000;
    a->pidfile = opt_str(cfg, "pidfile");
    a->app_spec = opt_str(cfg, "wsgi_app");
    a->proc_name = opt_str(cfg, "proc_name");
    if (a->proc_name == NULL)
        a->proc_name = a->app_spec;

    rc = log_open(cfg, err, sizeof(err));
    if (rc != 0) {
        fatal("%s (check --error-logfile and --access-logfile)", err);
        return EXIT_FAILURE;
    }
    log_set_pid((int)a->pid);
    proc_set_title("master", a->proc_name);
    qln_log(QLN_LOG_INFO, "Starting qilin %s", QLN_VERSION);
    if (a->pidfile != NULL) {
        rc = proc_pidfile_write(a->pidfile, a->pid, err, sizeof(err));
        if (rc != 0) {
            fatal("%s", err);
            a->pidfile = NULL; /* not ours: never remove it */
            return EXIT_FAILURE;
        }
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

    if (a->reason != NULL || a->loop != NULL) {
        qln_log(level, "Shutting down: Master");
        if (a->reason != NULL)
            qln_log(level, "Reason: %s", a->reason);
    }
    stop_loop(a);
    close_listeners(a);
    if (a->pidfile != NULL)
        proc_pidfile_remove(a->pidfile, a->pid);
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
    int rc;

    memset(a, 0, sizeof(*a));
    rc = setup(a, ctx, app, worker);
    if (rc != 0) {
        a->exit_status = rc;
        teardown(a);
        return rc;
    }
    start_loop(a);
    manage_workers(a);
    ev_run(a->loop, 0);
    rc = a->exit_status;
    teardown(a);
    return rc;
}
