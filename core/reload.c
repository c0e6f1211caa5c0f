/*
 * HUP: re-read the configuration, apply what the master itself acts on
 * (logs, environment, worker count, pidfile, listeners), and replace the
 * workers. (--reload's source watcher in the workers is reloader.c.)
 * Master only.
 */
#include "qlnconfig.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <qilin/plugin.h>

#include "arbiter_int.h"
#include "config.h"
#include "hooks.h"
#include "log.h"
#include "proc.h"
#include "statsd.h"
#include "tls.h"
#include "util.h"

static bool
same_str(const char *x, const char *y)
{
    return x == y || (x != NULL && y != NULL && strcmp(x, y) == 0);
}

/* The settings the master itself acts on; again after each HUP. */
void
reload_settings(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;

    a->num_workers = (int)opt_int(cfg, "workers", 1);
    if (a->num_workers < 1)
        a->num_workers = 1;
    a->timeout_ms = opt_int(cfg, "timeout", 30) * 1000;
    a->graceful_ms = opt_int(cfg, "graceful_timeout", 30) * 1000;
    a->request_timeout_ms = opt_int(cfg, "request_timeout", 0) * 1000;
    a->backlog_metric = opt_bool(cfg, "enable_backlog_metric", false);
    a->pidfile = opt_str(cfg, "pidfile");
    a->app_spec = config_app_spec(cfg);
    a->proc_name = opt_str(cfg, "proc_name");
    if (a->proc_name == NULL)
        a->proc_name = a->app_spec;
}

/*
 * HUP: the certificate and key are read again (a renewed certificate), and
 * the new workers get them. Files that do not load keep the current ones.
 */
static void
reload_tls(const struct arbiter *a)
{
    struct tls_server *tls;
    char err[512];

    if (tls_server_new(a->ctx->cfg, &tls, err, sizeof(err)) != 0) {
        qln_log(QLN_LOG_ERROR, "Reload: %s; serving with the current TLS certificate", err);
        return;
    }
    if (tls == NULL) {
        if (tls_current() != NULL)
            qln_log(QLN_LOG_WARNING, "Reload: TLS stays on until a restart (--certfile is unset)");
        return;
    }
    tls_set_current(tls);
    qln_log(QLN_LOG_INFO, "TLS: %s", tls_server_summary(tls));
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
    struct log_options lo;
    char err[512];

    config_log_options(a->ctx->cfg, &lo);
    if (log_open(&lo, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "Reload: %s; the logs stay as they were", err);
    /* The new workers inherit the new socket; the old ones keep theirs. */
    if (statsd_open(a->ctx->cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "Reload: %s; StatsD metrics stay as they were", err);
    arbiter_capture_output(a->ctx->cfg);
    if (arbiter_apply_env(a, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "Reload: %s", err);
    reload_settings(a);
    arbiter_nworkers_hook(a, old_workers);
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
        binding_rebind(a);
    reload_tls(a);
}

/* HUP: new workers replace the old ones, which finish gracefully (the app is
   imported afresh unless preloaded). */
static void
replace_workers(struct arbiter *a)
{
    size_t i, n = a->nchildren;

    for (i = 0; i < n; i++)
        a->children[i].retiring = true;
    arbiter_manage_workers(a);
    for (i = 0; i < a->nchildren; i++) {
        if (a->children[i].retiring && a->children[i].sent == 0)
            arbiter_child_signal(&a->children[i], SIGTERM);
    }
}

/* HUP: re-read the configuration (an invalid one is logged and the current
   one kept), apply it, then replace the workers, as gunicorn's reload(). */
void
reload_hup(struct arbiter *a)
{
    char err[1024] = "";
    int rc;

    qln_log(QLN_LOG_INFO, "Hang up: Master");
    a->reloads++;
    if (a->reload != NULL) {
        rc = a->reload(a->reload_opaque, a->ctx, &a->app_state, err, sizeof(err));
        if (rc != 0)
            qln_log(QLN_LOG_ERROR, "Reload failed, keeping the current configuration: %s", err);
        else
            apply_config(a);
    }
    arbiter_server_hook(a, HOOK_ON_RELOAD);
    replace_workers(a);
}
