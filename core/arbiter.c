/*
 * The master (arbiter): startup (logs, pidfile, app plugin, scoreboard),
 * the workers (spawn, reap, respawn, scale, timeouts), the stop, and a libev
 * loop that only dispatches: signals, reaped children, a one-second tick.
 * Children are in children.c, listeners in binding.c, HUP in reload.c, USR2
 * in reexec.c. Master only.
 */
#include "qlnconfig.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
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
#include "arbiter_int.h"
#include "config.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "notify.h"
#include "proc.h"
#include "scoreboard.h"
#include "signals.h"
#include "stats.h"
#include "statsd.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

/* gunicorn's exit codes for a worker that could not boot / load the app. */
#define EXIT_BOOT_ERROR 3
#define EXIT_APP_LOAD_ERROR 4

#define TICK_SECONDS 1.0 /* timeout checks, as gunicorn's loop wakes every second */
#define KILL_AFTER_ABORT_MS 1000
#define QUICK_STOP_MS 2000 /* INT/QUIT: how long workers get before SIGKILL */

/* The one master of this process (STYLE: one struct per role). Master only. */
static struct arbiter the_arbiter;

/* HUP's configuration rebuild, installed by main before arbiter_run(). */
static arbiter_reload_fn *reload_fn;
static void *reload_opaque;

void
arbiter_set_reload(arbiter_reload_fn *fn, void *opaque)
{
    reload_fn = fn;
    reload_opaque = opaque;
}

/* ------------------------------------------------------------------ stop */

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
        listener_close(&a->listeners[i], binding_may_unlink(a));
    if (quick && wait_ms > QUICK_STOP_MS)
        wait_ms = QUICK_STOP_MS;
    arbiter_signal_all(a, quick_signal(a, quick));
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
    struct arbiter *a = qln_container_of(t, struct arbiter, stop_timer);

    (void)loop;
    (void)revents;
    a->kill_sent = true;
    arbiter_signal_all(a, SIGKILL);
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
    struct arbiter *a = qln_container_of(w, struct arbiter, childw);
    struct child *c = arbiter_child_find(a, w->rpid);
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
    arbiter_child_remove(a, c);
    handle_exit(a, &copy, w->rstatus);
    arbiter_worker_hook(a, HOOK_CHILD_EXIT, copy.pid, copy.age,
                        WIFEXITED(w->rstatus) ? WEXITSTATUS(w->rstatus) : -WTERMSIG(w->rstatus));
    if (a->state == ARB_RUNNING)
        arbiter_manage_workers(a);
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
                arbiter_child_signal(c, SIGKILL);
            continue;
        }
        if (c->retiring && now - c->sent_ms >= a->graceful_ms) {
            arbiter_child_signal(c, SIGKILL);
            continue;
        }
        if (a->timeout_ms > 0 && now - scoreboard_heartbeat_ms(c->slot) > a->timeout_ms) {
            qln_log(QLN_LOG_CRITICAL, "WORKER TIMEOUT (pid:%d)", (int)c->pid);
            c->timed_out = true;
            c->cause = "timeout";
            arbiter_child_signal(c, SIGABRT);
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
            arbiter_child_signal(c, SIGABRT);
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

static void
on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct arbiter *a = qln_container_of(t, struct arbiter, tick);

    (void)loop;
    (void)revents;
    if (a->state != ARB_RUNNING)
        return;
    if (a->old_master != 0 && getppid() != a->old_master)
        reexec_promote(a);
    if (!a->ready_sent)
        notify_ready(a);
    check_timeouts(a, util_now_ms());
    arbiter_manage_workers(a);
    if (a->backlog_metric)
        statsd_backlog(a->listeners, a->nlisteners);
}

/* --------------------------------------------------------------- signals */

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
        reload_hup(a);
        break;
    case SIGTTIN:
        arbiter_set_num_workers(a, a->num_workers + 1);
        arbiter_manage_workers(a);
        break;
    case SIGTTOU:
        if (a->num_workers > 1)
            arbiter_set_num_workers(a, a->num_workers - 1);
        arbiter_manage_workers(a);
        break;
    case SIGUSR2:
        reexec_start(a);
        break;
    case SIGWINCH:
        if (!a->daemonized) {
            qln_log(QLN_LOG_DEBUG, "SIGWINCH ignored. Not daemonized");
            break;
        }
        /* gunicorn: the master stays, its workers stop; TTIN or HUP brings them back. */
        qln_log(QLN_LOG_INFO, "graceful stop of workers");
        arbiter_set_num_workers(a, 0);
        arbiter_manage_workers(a);
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
        arbiter_capture_output(a->ctx->cfg);
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
        arbiter_signal_all(a, quick_signal(a, true));
        if (left > QUICK_STOP_MS / 1000.0) {
            ev_timer_stop(a->loop, &a->stop_timer);
            ev_timer_set(&a->stop_timer, QUICK_STOP_MS / 1000.0, 0.0);
            ev_timer_start(a->loop, &a->stop_timer);
        }
    }
}

/* ---------------------------------------------------------------- startup */

/*
 * init() in the master, before its first line: a plugin that takes over the
 * log (the python3 plugin's --log-config, --logger-class) then gets every
 * line, "Starting qilin" included, as gunicorn's logger does.
 */
static int
init_app(struct arbiter *a)
{
    char err[1024] = "";
    int rc = a->app_plugin->app->init(a->ctx, &a->app_state, err, sizeof(err));

    if (rc != 0) {
        arbiter_fatal("plugin '%s' failed to start: %s", a->app_plugin->name,
                      err[0] ? err : qln_strerror(rc));
        return EXIT_FAILURE;
    }
    a->app_started = true;
    return 0;
}

/* load_app() in the master under preload_app. */
static int
preload_app(struct arbiter *a)
{
    const struct qln_app_ops *app = a->app_plugin->app;
    char err[1024] = "";
    int rc;

    if (!opt_bool(a->ctx->cfg, "preload_app", false))
        return 0;
    /* A green worker monkey-patches before the preloaded import. */
    if (WORKER_HOOK(a->worker_plugin->worker, prepare) != NULL) {
        rc = a->worker_plugin->worker->prepare(NULL, err, sizeof(err));
        if (rc != 0) {
            arbiter_fatal("worker '%s' failed to start: %s", a->worker_plugin->name,
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
        return EXIT_FAILURE; /* gunicorn's master dies of the exception: status 1 */
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
    stats_close(&a->stats, binding_may_unlink(a));
    for (i = 0; i < signals_master_count && i < MAX_SIGNALS; i++)
        ev_signal_stop(a->loop, &a->sigw[i]);
    ev_child_stop(a->loop, &a->childw);
    ev_timer_stop(a->loop, &a->tick);
    ev_timer_stop(a->loop, &a->stop_timer);
    ev_loop_destroy(a->loop);
    a->loop = NULL;
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

    if (arbiter_apply_env(a, err, sizeof(err)) != 0 ||
        proc_owner_resolve(opt_str(cfg, "user"), opt_str(cfg, "group"),
                           opt_bool(cfg, "initgroups", false), &a->owner, err, sizeof(err)) != 0) {
        arbiter_fatal("%s", err);
        return EXIT_FAILURE;
    }
    /* A master started by USR2 is already detached (gunicorn checks its fd
       variable the same way): forking again would orphan it at once, and it
       would take the pidfile while the old master still runs. */
    if (opt_bool(cfg, "daemon", false) && getenv(ENV_FD) == NULL) {
        rc = proc_daemonize(opt_bool(cfg, "enable_stdio_inheritance", false));
        if (rc != 0) {
            arbiter_fatal("cannot daemonize: %s", strerror(-rc));
            return EXIT_FAILURE;
        }
        a->pid = getpid();
    }
    a->daemonized = opt_bool(cfg, "daemon", false);
    if (config_find(cfg, "umask") != NULL && config_source_of(cfg, "umask") != CONFIG_SRC_DEFAULT)
        umask((mode_t)config_int(cfg, "umask"));
    return 0;
}

/* --log-level debug: the settings in effect, as gunicorn lists them at startup. */
static void
log_configuration(const struct config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;

    if (qln_log_level() > QLN_LOG_DEBUG)
        return;
    f = open_memstream(&text, &len);
    if (f == NULL)
        return;
    config_list(cfg, f, true);
    fclose(f);
    qln_log_write(QLN_LOG_DEBUG, "Current configuration:");
    qln_log_raw(text, len);
    free(text);
}

static int
setup(struct arbiter *a, struct qln_ctx *ctx, const struct qln_plugin *app,
      const struct qln_plugin *worker)
{
    const struct config *cfg = ctx->cfg;
    struct log_options lo;
    char err[512];
    int rc;

    a->ctx = ctx;
    a->app_plugin = app;
    a->worker_plugin = worker;
    a->pid = getpid();
    a->next_age = 1;
    reload_settings(a);
    rc = prepare_process(a);
    if (rc != 0)
        return rc;
    binding_inherit(a);
    config_log_options(cfg, &lo);
    rc = log_open(&lo, err, sizeof(err));
    if (rc != 0) {
        arbiter_fatal("%s (check --error-logfile and --access-logfile)", err);
        return EXIT_FAILURE;
    }
    arbiter_capture_output(cfg);
    log_set_pid((int)a->pid);
    /* main.c checked the address; what can still fail is resolving it, and
       serving without metrics beats not serving. */
    if (statsd_open(cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_WARNING, "%s; no StatsD metrics are sent", err);
    rc = admin_control_open(a);
    if (rc != 0)
        return rc;
    proc_set_title("master", a->proc_name);
    rc = init_app(a);
    if (rc != 0)
        return rc;
    qln_log(QLN_LOG_INFO, "Starting qilin %s", QLN_VERSION);
    log_configuration(cfg);
    arbiter_server_hook(a, HOOK_ON_STARTING);
    if (a->pidfile != NULL) {
        /* A master started by USR2 writes PIDFILE.2 until the old one exits. */
        char *path = a->old_master != 0 ? xasprintf("%s.2", a->pidfile) : xstrdup(a->pidfile);

        rc = proc_pidfile_write(path, a->pid, err, sizeof(err));
        if (rc != 0) {
            arbiter_fatal("%s", err);
            free(path); /* not ours: never remove it */
            return EXIT_FAILURE;
        }
        a->pid_path = path;
    }
    qln_log(QLN_LOG_DEBUG, "Arbiter booted");
    if (binding_open(a) != 0)
        return EXIT_FAILURE;
    qln_log(QLN_LOG_INFO, "Using worker: %s", worker->name);
    if (tls_current() != NULL)
        qln_log(QLN_LOG_INFO, "TLS: %s", tls_server_summary(tls_current()));
    rc = preload_app(a);
    if (rc != 0)
        return rc;
    /* Room for HUP's overlap of old and new workers, and for TTIN. */
    if (scoreboard_init(&a->sb, (size_t)a->num_workers * 2 + 1024) != 0) {
        arbiter_fatal("cannot map the scoreboard: %s", strerror(errno));
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
    /* Not binding_may_unlink(): that also spares the listeners' files for
       systemd, while this file is always the master's own. */
    control_close(&a->control, a->reexec_pid == 0 && a->old_master == 0);
    stop_loop(a);
    binding_close(a);
    if (a->pid_path != NULL)
        proc_pidfile_remove(a->pid_path, a->pid);
    if (started)
        arbiter_server_hook(a, HOOK_ON_EXIT);
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
arbiter_run(struct qln_ctx *ctx, const struct qln_plugin *app, void *app_state,
            const struct qln_plugin *worker)
{
    struct arbiter *a = &the_arbiter;
    const char *spec;
    char err[512], inherited[32];
    int rc;

    memset(a, 0, sizeof(*a));
    control_init(&a->control);
    a->started_ms = util_now_ms();
    a->reload = reload_fn;
    a->reload_opaque = reload_opaque;
    a->app_state = app_state; /* from load_config_state(): init() adopts it */
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
        stats_open(&a->stats, a->loop, spec, admin_render_stats, a, err, sizeof(err)) != 0) {
        arbiter_fatal("%s", err);
        a->exit_status = EXIT_FAILURE;
        teardown(a);
        return EXIT_FAILURE;
    }
    if (a->old_master == 0)
        admin_control_start(a);
    arbiter_server_hook(a, HOOK_WHEN_READY);
    arbiter_manage_workers(a);
    ev_run(a->loop, 0);
    rc = a->exit_status;
    teardown(a);
    return rc;
}
