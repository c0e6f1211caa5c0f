/*
 * The worker process: the child side of fork (signals, loop, app load),
 * the worker's signal handling and heartbeat, and the qln_worker_* API the
 * worker plugins use. Worker only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/plugin.h>

#include "config.h"
#include "hooks.h"
#include "log.h"
#include "proc.h"
#include "reloader.h"
#include "scoreboard.h"
#include "serve.h"
#include "signals.h"
#include "util.h"
#include "worker.h"

/* Exit codes the master understands (gunicorn's WORKER_BOOT_ERROR, APP_LOAD_ERROR). */
#define EXIT_BOOT_ERROR 3
#define EXIT_APP_LOAD_ERROR 4

#define HEARTBEAT_INTERVAL 1.0 /* seconds; the master's timeout check runs as often */

/* The one worker of this process, set up by worker_main(); the signal
   handlers reach it here because a handler gets no user pointer. Worker only. */
static struct qln_worker the_worker;

/* A hook with the server {pid} (the master) and this worker {pid, age}. */
static void
worker_hook(const struct qln_worker *w, enum hook_id id, bool with_server)
{
    const struct qln_hook_field sf[] = {{.key = "pid", .i = w->ppid}};
    const struct qln_hook_field wf[] = {{.key = "pid", .i = w->pid}, {.key = "age", .i = w->age}};
    const struct qln_hook_arg both[] = {{.f = sf, .n = 1}, {.f = wf, .n = ARRAY_SIZE(wf)}};

    if (with_server)
        hooks_call(id, both, 2);
    else
        hooks_call(id, both + 1, 1);
}

/*
 * Stop signals. The handler only records the request and pokes the loop;
 * the wake callback breaks the loop from normal context. SA_RESTART is off, so
 * a poll(2) in the connection code returns EINTR and sees the flag at once.
 * A second TERM never downgrades an INT/QUIT already seen.
 */
static void
on_stop_signal(int signo)
{
    int saved = errno;
    void (*interrupt)(void *);

    if (signo == SIGTERM) {
        if (the_worker.stop == QLN_STOP_NONE)
            the_worker.stop = QLN_STOP_GRACEFUL;
    } else {
        the_worker.stop = QLN_STOP_NOW;
        /* gunicorn ends the application code that runs, so the worker does
           not wait for its request (the app plugin's hook is async-signal-safe). */
        interrupt = the_worker.app != NULL ? APP_HOOK(the_worker.app, interrupt) : NULL;
        if (interrupt != NULL)
            interrupt(the_worker.app_state);
    }
    worker_poke(&the_worker);
    errno = saved;
}

static void
on_usr1_signal(int signo)
{
    int saved = errno;

    (void)signo;
    the_worker.reopen_logs = 1;
    worker_poke(&the_worker);
    errno = saved;
}

/*
 * SIGABRT from the master means this worker missed its heartbeat for
 * `timeout` seconds: it is stuck, so its loop will not run again and a
 * deferred callback would never fire. We therefore call the app's on_abort
 * (which dumps stacks, e.g. Python's faulthandler, designed to run from a
 * signal handler) right here and _exit(1). Should on_abort itself deadlock
 * on a lock the stuck code holds, the master's SIGKILL a second later ends
 * it; nothing worse can happen to a process that is about to die anyway.
 *
 * A SIGABRT not sent by the master (abort() from a failed assertion, or a
 * user's kill) keeps its default meaning: we restore SIG_DFL and re-raise,
 * and the pending signal dumps core as soon as this handler returns.
 */
static void
on_abort_signal(int signo, siginfo_t *si, void *uctx)
{
    void (*on_abort)(void *state);

    (void)uctx;
    if (si == NULL || si->si_code != SI_USER || si->si_pid != the_worker.ppid) {
        signal(signo, SIG_DFL);
        raise(signo);
        return;
    }
    /* worker_abort(worker): like on_abort below, run from the handler, since
       the stuck loop will not run again; the master's SIGKILL bounds it. */
    worker_hook(&the_worker, HOOK_WORKER_ABORT, false);
    on_abort = the_worker.app != NULL ? APP_HOOK(the_worker.app, on_abort) : NULL;
    if (on_abort != NULL) {
        signal(signo, SIG_DFL); /* a crash inside on_abort must not recurse here */
        on_abort(the_worker.app_state);
    }
    _exit(1);
}

static void
install_handlers(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls must see the stop at once */
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    sa.sa_handler = on_usr1_signal;
    sigaction(SIGUSR1, &sa, NULL);
    /* TTIN/TTOU are the master's; their default action would stop a worker
       that touches the terminal from the background. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGTTIN, &sa, NULL);
    sigaction(SIGTTOU, &sa, NULL);
    sa.sa_handler = NULL;
    sa.sa_sigaction = on_abort_signal;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGABRT, &sa, NULL);
}

/* Runs in the loop after a worker_poke(): the non-signal-safe half of the handlers. */
static void
on_wake(struct ev_loop *loop, ev_io *io, int revents)
{
    struct qln_worker *w = qln_container_of(io, struct qln_worker, wake);
    uint64_t count;
    ssize_t n;

    (void)revents;
    do
        n = read(w->wake_fd, &count, sizeof(count)); /* resets the eventfd */
    while (n < 0 && errno == EINTR);
    if (w->reopen_logs) {
        w->reopen_logs = 0;
        log_reopen();
        /* --capture-output: stdout/stderr follow the reopened error log. */
        if (config_find(w->ctx->cfg, "capture_output") != NULL &&
            config_bool(w->ctx->cfg, "capture_output") && qln_log_fd() != STDERR_FILENO)
            proc_capture_output(qln_log_fd());
    }
    if (w->stop != QLN_STOP_NONE)
        ev_break(loop, EVBREAK_ALL);
}

/*
 * A worker that cannot boot leaves with gunicorn's code, which the master
 * turns into a halt. _exit, not exit: atexit handlers inherited from the
 * master have nothing to do here, and a leak checker (LSan) would replace
 * the status with its own, turning a clean halt into an endless respawn.
 */
static _Noreturn void
boot_failed(int code)
{
    fflush(NULL);
    _exit(code);
}

static void
on_heartbeat(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct qln_worker *w = qln_container_of(t, struct qln_worker, heartbeat);

    (void)revents;
    qln_worker_heartbeat(w);
    worker_check_recycle(w);
    /* Orphaned workers would serve forever with nobody to stop them. */
    if (getppid() != w->ppid && w->stop == QLN_STOP_NONE) {
        qln_log(QLN_LOG_INFO, "Parent changed, shutting down: worker (pid:%d)", (int)w->pid);
        w->stop = QLN_STOP_GRACEFUL;
        ev_break(loop, EVBREAK_ALL);
    }
}

/*
 * The setting NAME plus a random 0..JITTER (another setting), as gunicorn
 * spreads max_requests restarts so workers do not all restart at once; 0
 * when NAME is 0. SALT keeps two limits of one worker from drawing alike.
 */
static int64_t
jittered(const struct config *cfg, const char *name, const char *jitter_name, unsigned int salt)
{
    int64_t value = 0, jitter = 0;
    unsigned int seed;

    if (config_find(cfg, name) != NULL)
        value = config_int(cfg, name);
    if (config_find(cfg, jitter_name) != NULL)
        jitter = config_int(cfg, jitter_name);
    if (value <= 0)
        return 0;
    if (jitter > 0) {
        seed = (unsigned int)getpid() ^ (unsigned int)time(NULL) ^ salt;
        value += (int64_t)(rand_r(&seed) % (jitter + 1));
    }
    return value;
}

/*
 * Fork ordering. The master forks with every signal blocked, so a signal
 * sent to this pid before we are ready stays pending instead of running the
 * master's libev handler, which would record it in the master's (copied)
 * loop and be lost. We first restore default dispositions, drop the
 * master's loop (its epoll and pipe descriptors are the master's business),
 * build our own loop and handlers, and only then unblock: anything pending
 * is delivered to the worker's handlers.
 */
static void
setup_process(struct qln_worker *w, const struct worker_boot *b)
{
    char err[256];
    size_t i;

    signals_reset_dispositions();
    ev_loop_destroy(ev_default_loop(0));
    for (i = 0; i < b->nmaster_fds; i++)
        close(b->master_fds[i]);

    memset(w, 0, sizeof(*w));
    w->pid = getpid();
    w->ppid = getppid();
    log_set_pid((int)w->pid);
    proc_set_title("worker", b->proc_name);

    w->ctx = b->ctx;
    w->app = b->app;
    w->app_state = b->app_state;
    w->ops = b->ops;
    w->listeners = b->listeners;
    w->nlisteners = b->nlisteners;
    w->age = b->age;
    w->slot = b->slot;
    w->max_requests = (uint64_t)jittered(b->ctx->cfg, "max_requests", "max_requests_jitter", 0);
    w->lifetime_end_ms =
        jittered(b->ctx->cfg, "max_worker_lifetime", "max_worker_lifetime_jitter", 0x5bd1e995u) *
        1000;
    if (w->lifetime_end_ms > 0)
        w->lifetime_end_ms += util_now_ms();
    w->statm_fd = -1;
    if (config_find(b->ctx->cfg, "max_worker_memory") != NULL)
        w->max_rss_kib = config_int(b->ctx->cfg, "max_worker_memory") * 1024;
    if (w->max_rss_kib > 0) {
        w->statm_fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (w->statm_fd < 0)
            qln_log_errno(QLN_LOG_WARNING, errno,
                          "--max-worker-memory is not enforced: cannot open /proc/self/statm");
    }
    w->loop = ev_loop_new(EVFLAG_AUTO);
    if (w->loop == NULL) {
        qln_log(QLN_LOG_CRITICAL, "Worker failed to boot: cannot create an event loop");
        boot_failed(EXIT_BOOT_ERROR);
    }
    /* The core's watchers do not keep ev_run() alive by themselves: the
       plugin's (listeners, connections) decide when the loop has work. */
    w->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->wake_fd < 0) {
        qln_log_errno(QLN_LOG_CRITICAL, errno, "Worker failed to boot: eventfd()");
        boot_failed(EXIT_BOOT_ERROR);
    }
    ev_io_init(&w->wake, on_wake, w->wake_fd, EV_READ);
    ev_io_start(w->loop, &w->wake);
    ev_unref(w->loop);
    ev_timer_init(&w->heartbeat, on_heartbeat, HEARTBEAT_INTERVAL, HEARTBEAT_INTERVAL);
    ev_timer_start(w->loop, &w->heartbeat);
    ev_unref(w->loop);

    install_handlers();
    signals_unblock_all();
    conn_settings_load(&w->conn, b->ctx->cfg);
    /* Checked at startup; a directory gone since a reload serves nothing. */
    if (static_map_load(&w->statics, b->ctx->cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
}

/* --user/--group: drop privileges before any application code runs. */
static void
switch_owner(const struct worker_boot *b)
{
    char err[512];

    if (b->owner == NULL || (!b->owner->set_uid && !b->owner->set_gid))
        return;
    if (proc_owner_apply(b->owner, err, sizeof(err)) != 0) {
        qln_log(QLN_LOG_ERROR, "Worker failed to boot: %s", err);
        boot_failed(EXIT_BOOT_ERROR);
    }
}

/* post_fork_child and (unless preloaded) load_app; exits 3 or 4 on failure. */
static void
boot_app(struct qln_worker *w, const struct worker_boot *b)
{
    int (*post_fork_child)(void *, char *, size_t) = APP_HOOK(w->app, post_fork_child);
    char err[1024];
    int rc;

    err[0] = '\0';
    rc = post_fork_child != NULL ? post_fork_child(w->app_state, err, sizeof(err)) : 0;
    /* After the app plugin fixed up its interpreter for the child, so that a
       logger it runs (the python3 plugin's --log-config) takes the line. */
    qln_log(QLN_LOG_INFO, "Booting worker with pid: %d", (int)w->pid);
    if (rc != 0) {
        qln_log(QLN_LOG_ERROR, "Worker failed to boot: %s", err[0] ? err : qln_strerror(rc));
        boot_failed(EXIT_BOOT_ERROR);
    }
    /* gunicorn's post_fork runs before the worker initialises. It comes after the
       app plugin's post_fork_child so that a hook written in the app's language
       (gunicorn.conf.py) finds its interpreter already fixed up for the child. */
    worker_hook(w, HOOK_POST_FORK, true);
    /* The worker plugin readies the process before the app import
       (gevent monkey-patches here, or re-inits its hub after a preload). */
    if (WORKER_HOOK(w->ops, prepare) != NULL) {
        err[0] = '\0';
        rc = w->ops->prepare(w, err, sizeof(err));
        if (rc != 0) {
            qln_log(QLN_LOG_ERROR, "Worker failed to boot: %s", err[0] ? err : qln_strerror(rc));
            boot_failed(EXIT_BOOT_ERROR);
        }
    }
    if (b->app_loaded)
        return;
    err[0] = '\0';
    rc = w->app->load_app(w->app_state, b->app_spec, err, sizeof(err));
    if (rc != 0) {
        /* The plugin has logged the details (a traceback); add its summary.
           As gunicorn: an application that is not there is "App failed to
           load" (4); one whose code raised, a worker that failed to boot (3). */
        if (err[0] != '\0')
            qln_log(QLN_LOG_ERROR, "%s", err);
        boot_failed(rc == -ENOENT ? EXIT_APP_LOAD_ERROR : EXIT_BOOT_ERROR);
    }
}

_Noreturn void
worker_main(const struct worker_boot *b)
{
    struct qln_worker *w = &the_worker;
    void (*worker_exit)(void *);
    struct reloader reloader;
    int status;

    setup_process(w, b);
    qln_worker_heartbeat(w);
    switch_owner(b);
    boot_app(w, b);
    qln_worker_heartbeat(w);
    reloader_start(&reloader, w->loop, w->ctx->cfg, APP_HOOK(w->app, module_files), w->app_state,
                   &w->stop);
    worker_hook(w, HOOK_POST_WORKER_INIT, false);
    if (w->slot != NULL)
        scoreboard_set_ready(w->slot);

    status = w->ops->run(w);
    reloader_stop(&reloader);
    if (w->exit_asked)
        status = w->exit_status;
    else if (w->stop == QLN_STOP_NOW)
        worker_hook(w, HOOK_WORKER_INT, false);
    /* run() returns only after closing its connections (worker.h), so the
       pool holds nothing live; freeing it keeps leak checkers meaningful. */
    serve_pool_free(w);
    static_map_release(&w->statics);

    /* The hook first: one written in the app's language needs the interpreter
       that the app plugin's worker_exit finalises. */
    worker_hook(w, HOOK_WORKER_EXIT, true);
    /* Before the app plugin's worker_exit, which may take its logger away. */
    qln_log(QLN_LOG_INFO, "Worker exiting (pid: %d)", (int)w->pid);
    worker_exit = APP_HOOK(w->app, worker_exit);
    if (worker_exit != NULL)
        worker_exit(w->app_state);
    exit(status);
}

/* Longest single poll(2), so a thread that never sees EINTR still notices a stop. */
#define POLL_SLICE_MS 1000

/* ------------------------------------------------------------ the poll waiter */

static void
blocking(struct qln_poll_waiter *pw, bool enter)
{
    const struct qln_app_ops *app = pw->worker->app;
    void (*hook)(void *);

    if (app == NULL || pw->tstate == NULL)
        return;
    hook = enter ? APP_HOOK(app, blocking_enter) : APP_HOOK(app, blocking_leave);
    if (hook != NULL)
        hook(pw->tstate);
}

static int
poll_wait(void *ctx, int fd, unsigned events, int64_t deadline)
{
    struct qln_poll_waiter *pw = ctx;
    struct pollfd pfd = {.fd = fd};
    int rc, err;

    if (events & QLN_EV_READ)
        pfd.events |= POLLIN;
    if (events & QLN_EV_WRITE)
        pfd.events |= POLLOUT;
    for (;;) {
        int64_t left = deadline < 0 ? POLL_SLICE_MS : deadline - util_now_ms();

        if (pw->worker->stop == QLN_STOP_NOW)
            return QLN_WAIT_STOP;
        /* Past the deadline, one look without waiting: a worker that got
           no CPU until now must not call data that did arrive a timeout. */
        if (left <= 0)
            return poll(&pfd, 1, 0) > 0 ? QLN_WAIT_READY : QLN_WAIT_TIMEOUT;
        /* The interpreter lock is released only around a wait that really
           blocks; the fast path (data already there) never gets here. */
        blocking(pw, true);
        rc = poll(&pfd, 1, (int)(left < POLL_SLICE_MS ? left : POLL_SLICE_MS));
        err = errno;
        blocking(pw, false);
        if (rc > 0)
            return QLN_WAIT_READY; /* POLLERR/POLLHUP too: the retried call reports it */
        if (rc < 0 && err != EINTR)
            return QLN_WAIT_ERROR;
        /* Timeout of one slice, or a signal: recompute what is left and go on
           unless the signal asked for an immediate stop (checked above). */
    }
}

void
qln_poll_waiter_init(struct qln_poll_waiter *pw, struct qln_worker *worker, void *tstate)
{
    memset(pw, 0, sizeof(*pw));
    pw->waiter.size = sizeof(pw->waiter);
    pw->waiter.ctx = pw;
    pw->waiter.wait = poll_wait;
    pw->waiter.fd_closing = NULL;
    pw->worker = worker;
    pw->tstate = tstate;
}

/* ------------------------------------------------------------ plugin API */

size_t
qln_worker_nlisteners(const struct qln_worker *w)
{
    return w->nlisteners;
}

int
qln_worker_listener_fd(const struct qln_worker *w, size_t i)
{
    qln_assert(i < w->nlisteners);
    return w->listeners[i].fd;
}

struct ev_loop *
qln_worker_loop(struct qln_worker *w)
{
    return w->loop;
}

struct qln_ctx *
qln_worker_ctx(struct qln_worker *w)
{
    return w->ctx;
}

int
qln_worker_stopping(const struct qln_worker *w)
{
    return w->stop;
}

int
qln_worker_wake_fd(const struct qln_worker *w)
{
    return w->wake_fd;
}

void
qln_worker_exit(int status)
{
    the_worker.exit_status = status;
    the_worker.exit_asked = true;
    the_worker.stop = QLN_STOP_NOW;
    worker_poke(&the_worker);
}

_Noreturn void
qln_worker_exit_now(struct qln_worker *w)
{
    if (!w->exit_asked && w->stop == QLN_STOP_NOW)
        worker_hook(w, HOOK_WORKER_INT, false);
    qln_log(QLN_LOG_INFO, "Worker exiting (pid: %d)", (int)w->pid);
    /* _exit: the threads still in the application hold what exit(3)'s
       handlers and the interpreter's finalisation would need. */
    fflush(NULL);
    _exit(w->exit_asked ? w->exit_status : 0);
}

void
qln_worker_heartbeat(struct qln_worker *w)
{
    if (w->slot != NULL)
        scoreboard_heartbeat(w->slot, util_now_ms());
}

void *
qln_worker_thread_init(struct qln_worker *w)
{
    void *(*thread_init)(void *) = APP_HOOK(w->app, thread_init);

    return thread_init != NULL ? thread_init(w->app_state) : NULL;
}

void
qln_worker_thread_exit(struct qln_worker *w, void *tstate)
{
    void (*thread_exit)(void *, void *) = APP_HOOK(w->app, thread_exit);

    if (thread_exit != NULL)
        thread_exit(w->app_state, tstate);
}
