/*
 * USR2: the master re-executes itself with the listening sockets (and the
 * --stats socket) handed over in the environment; the new master writes
 * PIDFILE.2 and takes over the pidfile and the sockets once the old one
 * has exited. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "arbiter_int.h"
#include "config.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "signals.h"
#include "util.h"

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
    envp = xcalloc(n + 5, sizeof(*envp));
    for (i = 0, n = 0; environ[i] != NULL; i++) {
        if (strncmp(environ[i], ENV_FD "=", sizeof(ENV_FD)) != 0 &&
            strncmp(environ[i], ENV_PID "=", sizeof(ENV_PID)) != 0 &&
            strncmp(environ[i], ENV_STATS_FD "=", sizeof(ENV_STATS_FD)) != 0 &&
            strncmp(environ[i], ENV_CONTROL_FD "=", sizeof(ENV_CONTROL_FD)) != 0)
            envp[n++] = xstrdup(environ[i]);
    }
    envp[n++] = xasprintf("%s=%d", ENV_PID, (int)a->pid);
    if (a->stats.loop != NULL)
        envp[n++] = xasprintf("%s=%d", ENV_STATS_FD, a->stats.l.fd);
    if (a->control.fd >= 0)
        envp[n++] = xasprintf("%s=%d", ENV_CONTROL_FD, a->control.fd);
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
void
reexec_start(struct arbiter *a)
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
        arbiter_server_hook(a, HOOK_PRE_EXEC);
        signals_reset_dispositions();
        for (i = 0; i < a->nlisteners; i++)
            fcntl(a->listeners[i].fd, F_SETFD, 0);
        if (a->stats.loop != NULL)
            fcntl(a->stats.l.fd, F_SETFD, 0);
        if (a->control.fd >= 0)
            fcntl(a->control.fd, F_SETFD, 0);
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

/*
 * A master started by USR2 becomes the master once the old one has exited
 * (our parent changed): the pidfile takes its configured name, and the
 * inherited sockets are ours to manage (HUP may rebind, exit may unlink).
 */
void
reexec_promote(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;
    size_t i, n = config_find(cfg, "bind") != NULL ? config_list_len(cfg, "bind") : 0;

    qln_log(QLN_LOG_INFO, "Master has been promoted.");
    a->old_master = 0;
    if (a->stats.loop != NULL && !a->systemd)
        a->stats.l.inherited = false; /* from the old master: ours to unlink now */
    /* The old master answered on the control socket until now. */
    admin_control_start(a);
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
