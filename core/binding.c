/*
 * The master's listening sockets: the bind specs in effect (--bind, or fds
 * inherited from systemd's LISTEN_FDS or a USR2 master's QILIN_FD), binding
 * them with gunicorn's retries, HUP's rebind, and closing. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "arbiter_int.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define BIND_ATTEMPTS 5 /* gunicorn tries five times, a second apart */

/* Socket files stay while another master (USR2) or systemd may use them. */
bool
binding_may_unlink(const struct arbiter *a)
{
    return !a->keep_unix_paths && a->reexec_pid == 0 && a->old_master == 0;
}

/* Binds SPEC into L, retrying "address in use" as gunicorn does. */
static int
open_one(struct arbiter *a, struct listener *l, const char *spec)
{
    const struct config *cfg = a->ctx->cfg;
    int backlog = (int)opt_int(cfg, "backlog", 2048);
    bool reuse_port = opt_bool(cfg, "reuse_port", false);
    /* As gunicorn, a unix socket file is made under --umask, 0 by default:
       mode 0777, so that a front end running as another user (nginx's
       www-data) can connect. The server's own umask is not changed. */
    mode_t sock_umask = (mode_t)opt_int(cfg, "umask", 0), old;
    char err[512];
    int attempt, rc = 0;

    for (attempt = 1; attempt <= BIND_ATTEMPTS; attempt++) {
        old = umask(sock_umask);
        rc = listener_open(l, spec, backlog, reuse_port, err, sizeof(err));
        umask(old);
        if (rc != -EADDRINUSE)
            break;
        qln_log(QLN_LOG_ERROR, "%s", err);
        if (attempt < BIND_ATTEMPTS) {
            qln_log(QLN_LOG_ERROR, "Retrying in 1 second.");
            sleep(1);
        }
    }
    if (rc == -EADDRINUSE)
        arbiter_fatal("%s: is another server running there? choose another --bind", err);
    else if (rc != 0)
        arbiter_fatal("%s (check --bind '%s')", err, spec);
    if (rc != 0)
        return rc;
    /* Workers that run as --user must be able to use the socket file. */
    if (l->is_unix && !l->inherited && (a->owner.set_uid || a->owner.set_gid) &&
        chown(l->host, a->owner.set_uid ? a->owner.uid : (uid_t)-1,
              a->owner.set_gid ? a->owner.gid : (gid_t)-1) != 0)
        qln_log_errno(QLN_LOG_WARNING, errno, "chown(%s)", l->host);
    /* As gunicorn: https:// for a TCP listener when TLS is on. */
    if (tls_current() != NULL && strncmp(l->url, "http://", 7) == 0)
        qln_log(QLN_LOG_INFO, "Listening at: https://%s (%d)", l->url + 7, (int)a->pid);
    else
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
void
binding_inherit(struct arbiter *a)
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

int
binding_open(struct arbiter *a)
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
int
binding_rebind(struct arbiter *a)
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

void
binding_close(struct arbiter *a)
{
    size_t i;

    for (i = 0; i < a->nlisteners; i++)
        listener_close(&a->listeners[i], binding_may_unlink(a));
    free(a->listeners);
    free_specs(a->specs, a->nlisteners);
    a->listeners = NULL;
    a->specs = NULL;
    a->nlisteners = 0;
}
