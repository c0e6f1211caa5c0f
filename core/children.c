/*
 * The master's children: forking a worker (with the fork hooks in their
 * order), finding, signalling and forgetting children, keeping
 * num_workers of them active, and the server hooks around them. The
 * master's loop (arbiter.c), HUP (reload.c) and USR2 (reexec.c) build on
 * these; they call nothing above them. Master only.
 */
#include "qlnconfig.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "arbiter_int.h"
#include "config.h"
#include "hooks.h"
#include "log.h"
#include "proc.h"
#include "scoreboard.h"
#include "signals.h"
#include "stats.h"
#include "statsd.h"
#include "util.h"
#include "worker.h"

/*
 * A startup error: one "Error: ..." line on stderr, where the user looks,
 * and the same text in the error log when that is a file.
 */
void __attribute__((format(printf, 1, 2))) arbiter_fatal(const char *fmt, ...)
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
int
arbiter_apply_env(struct arbiter *a, char *err, size_t errlen)
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
void
arbiter_capture_output(const struct config *cfg)
{
    if (opt_bool(cfg, "capture_output", false) && qln_log_fd() != STDERR_FILENO)
        proc_capture_output(qln_log_fd());
}

/* ----------------------------------------------------------------- hooks */

/* A hook with the server table: {pid, workers, name}. */
void
arbiter_server_hook(const struct arbiter *a, enum hook_id id)
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
void
arbiter_worker_hook(const struct arbiter *a, enum hook_id id, pid_t pid, int age, int exit_code)
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
void
arbiter_nworkers_hook(const struct arbiter *a, int old)
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

void
arbiter_set_num_workers(struct arbiter *a, int n)
{
    int old = a->num_workers;

    a->num_workers = n;
    arbiter_nworkers_hook(a, old);
}

/* -------------------------------------------------------------- children */

struct child *
arbiter_child_find(struct arbiter *a, pid_t pid)
{
    size_t i;

    for (i = 0; i < a->nchildren; i++) {
        if (a->children[i].pid == pid)
            return &a->children[i];
    }
    return NULL;
}

void
arbiter_child_remove(struct arbiter *a, struct child *c)
{
    size_t i = (size_t)(c - a->children);

    scoreboard_release(c->slot);
    a->children[i] = a->children[a->nchildren - 1];
    a->nchildren--;
}

void
arbiter_child_signal(struct child *c, int signo)
{
    if (kill(c->pid, signo) == 0 || errno == ESRCH) {
        c->sent = signo;
        c->sent_ms = util_now_ms();
    }
}

void
arbiter_signal_all(struct arbiter *a, int signo)
{
    size_t i;

    for (i = 0; i < a->nchildren; i++)
        arbiter_child_signal(&a->children[i], signo);
}

int
arbiter_count_active(const struct arbiter *a)
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
    };
    static_assert(STATS_MAX_CONNS + 1 + CONTROL_MAX_CONNS + 1 <= MASTER_FDS_MAX,
                  "worker_boot.master_fds too small");
    boot.nmaster_fds = stats_fds(&a->stats, boot.master_fds);
    boot.nmaster_fds += control_fds(&a->control, boot.master_fds + boot.nmaster_fds);
    arbiter_worker_hook(a, HOOK_PRE_FORK, 0, a->next_age, 0);
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
    a->children[a->nchildren++] =
        (struct child){.pid = pid, .age = a->next_age, .slot = slot, .started_ms = util_now_ms()};
    a->next_age++;
    a->spawned++;
}

/* Spawns or retires workers until num_workers are active (gunicorn's manage_workers). */
void
arbiter_manage_workers(struct arbiter *a)
{
    int n = arbiter_count_active(a);

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
        arbiter_child_signal(oldest, SIGTERM);
        n--;
    }
    /* gunicorn sends the gauge from manage_workers, when the count changed. */
    statsd_workers(n);
}
