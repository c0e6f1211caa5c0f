/*
 * What the master tells and does for its admin endpoints: the --stats
 * documents (JSON, Prometheus text) and the control socket's commands
 * (show, worker add/remove/kill, reload, reopen, shutdown), both drawn from
 * the same scoreboard and child list. Master only.
 */
#include "qlnconfig.h"

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <qilin/log.h>

#include "arbiter_int.h"
#include "config.h"
#include "control.h"
#include "control_cmd.h"
#include "scoreboard.h"
#include "util.h"

/* ---------------------------------------------------------------- pieces */

/* S as a JSON string, quotes included; NULL as null. */
static void
json_str(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (s == NULL) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
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

/* One worker as a JSON object: the --stats document's and the control socket's. */
static void
worker_json(FILE *f, const struct child *c, int64_t now)
{
    fprintf(f,
            "{\"pid\": %d, \"age\": %d, \"state\": \"%s\", \"requests\": %llu, \"active\": %u,"
            " \"heartbeat_ms_ago\": %lld, \"uptime\": %.1f}",
            (int)c->pid, c->age, child_state(c), (unsigned long long)scoreboard_requests(c->slot),
            scoreboard_active(c->slot), (long long)(now - scoreboard_heartbeat_ms(c->slot)),
            (double)(now - c->started_ms) / 1000.0);
}

/* {"master": {...}, "workers": [...]}: --stats' JSON and "show all". */
static void
all_json(FILE *f, const struct arbiter *a)
{
    int64_t now = util_now_ms();
    size_t i;

    fprintf(f, "{\"master\": {\"pid\": %d, \"workers\": %d}, \"workers\": [", (int)a->pid,
            a->num_workers);
    for (i = 0; i < a->nchildren; i++) {
        fputs(i ? ", " : "", f);
        worker_json(f, &a->children[i], now);
    }
    fputs("]}\n", f);
}

static void
prometheus(FILE *f, const struct arbiter *a)
{
    size_t i;

    fprintf(f,
            "# TYPE qilin_workers gauge\nqilin_workers %d\n"
            "# TYPE qilin_worker_requests_total counter\n",
            a->num_workers);
    for (i = 0; i < a->nchildren; i++)
        fprintf(f, "qilin_worker_requests_total{pid=\"%d\",age=\"%d\"} %llu\n",
                (int)a->children[i].pid, a->children[i].age,
                (unsigned long long)scoreboard_requests(a->children[i].slot));
    fputs("# TYPE qilin_worker_active_requests gauge\n", f);
    for (i = 0; i < a->nchildren; i++)
        fprintf(f, "qilin_worker_active_requests{pid=\"%d\",age=\"%d\"} %u\n",
                (int)a->children[i].pid, a->children[i].age,
                scoreboard_active(a->children[i].slot));
}

size_t
admin_render_stats(void *opaque, bool prom, char *buf, size_t len)
{
    const struct arbiter *a = opaque;
    char *text = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&text, &n);

    if (f == NULL || len == 0)
        return 0;
    if (prom)
        prometheus(f, a);
    else
        all_json(f, a);
    fclose(f);
    n = n < len - 1 ? n : len - 1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    free(text);
    return n;
}

/* MS as "1h2m3s", "2m3s" or "3.4s" in BUF. */
static const char *
duration(char *buf, size_t len, int64_t ms)
{
    long long s = (long long)(ms / 1000);

    if (s >= 3600)
        snprintf(buf, len, "%lldh%lldm%llds", s / 3600, s % 3600 / 60, s % 60);
    else if (s >= 60)
        snprintf(buf, len, "%lldm%llds", s / 60, s % 60);
    else
        snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
    return buf;
}

/* ----------------------------------------------------------------- show */

static void
show_workers(FILE *f, const struct arbiter *a, bool json)
{
    int64_t now = util_now_ms();
    char up[32];
    size_t i;

    if (json) {
        fputs("{\"workers\": [", f);
        for (i = 0; i < a->nchildren; i++) {
            fputs(i ? ", " : "", f);
            worker_json(f, &a->children[i], now);
        }
        fprintf(f, "], \"count\": %zu, \"target\": %d}\n", a->nchildren, a->num_workers);
        return;
    }
    fprintf(f, "%-8s %-5s %-10s %-10s %-7s %-10s %s\n", "PID", "AGE", "STATE", "REQUESTS", "ACTIVE",
            "UPTIME", "HEARTBEAT");
    for (i = 0; i < a->nchildren; i++) {
        const struct child *c = &a->children[i];

        fprintf(f, "%-8d %-5d %-10s %-10llu %-7u ", (int)c->pid, c->age, child_state(c),
                (unsigned long long)scoreboard_requests(c->slot), scoreboard_active(c->slot));
        fprintf(f, "%-10s %.1fs ago\n", duration(up, sizeof(up), now - c->started_ms),
                (double)(now - scoreboard_heartbeat_ms(c->slot)) / 1000.0);
    }
    fprintf(f, "%zu worker%s (target %d)\n", a->nchildren, a->nchildren == 1 ? "" : "s",
            a->num_workers);
}

static uint64_t
requests_served(const struct arbiter *a)
{
    uint64_t n = 0;
    size_t i;

    for (i = 0; i < a->nchildren; i++)
        n += scoreboard_requests(a->children[i].slot);
    return n;
}

static void
show_stats(FILE *f, const struct arbiter *a, bool json)
{
    int64_t up = util_now_ms() - a->started_ms;
    char text[32];

    if (json) {
        fprintf(f,
                "{\"pid\": %d, \"uptime\": %.1f, \"workers_current\": %d, \"workers_target\": %d,"
                " \"workers_spawned\": %llu, \"reloads\": %llu, \"requests\": %llu,"
                " \"stopping\": %s}\n",
                (int)a->pid, (double)up / 1000.0, arbiter_count_active(a), a->num_workers,
                (unsigned long long)a->spawned, (unsigned long long)a->reloads,
                (unsigned long long)requests_served(a), a->state == ARB_RUNNING ? "false" : "true");
        return;
    }
    fprintf(f,
            "PID:              %d\nUptime:           %s\nWorkers current:  %d\nWorkers target:   "
            "%d\nWorkers spawned:  %llu\n"
            "Reloads:          %llu\nRequests served:  %llu\n",
            (int)a->pid, duration(text, sizeof(text), up), arbiter_count_active(a), a->num_workers,
            (unsigned long long)a->spawned, (unsigned long long)a->reloads,
            (unsigned long long)requests_served(a));
    if (a->state != ARB_RUNNING)
        fputs("State:            stopping\n", f);
}

static void
config_value_json(FILE *f, const struct config *cfg, const struct qln_option *o)
{
    size_t i, n;

    switch (o->type) {
    case QLN_OPT_BOOL:
        fputs(config_bool(cfg, o->name) ? "true" : "false", f);
        break;
    case QLN_OPT_INT:
        fprintf(f, "%lld", (long long)config_int(cfg, o->name));
        break;
    case QLN_OPT_STRING:
        json_str(f, config_str(cfg, o->name));
        break;
    case QLN_OPT_LIST:
        n = config_list_len(cfg, o->name);
        fputc('[', f);
        for (i = 0; i < n; i++) {
            fputs(i ? ", " : "", f);
            json_str(f, config_list_get(cfg, o->name, i));
        }
        fputc(']', f);
        break;
    }
}

/* Every setting, plugins' too: --print-config's text, or a JSON object. */
static void
show_config(FILE *f, const struct arbiter *a, bool json)
{
    const struct config *cfg = a->ctx->cfg;
    const struct qln_option *o;
    const char *owner;
    size_t i;

    if (!json) {
        config_print(cfg, f);
        return;
    }
    fputc('{', f);
    for (i = 0; (o = config_option_at(cfg, i, &owner)) != NULL; i++) {
        fputs(i ? ", " : "", f);
        json_str(f, o->name);
        fputs(": ", f);
        config_value_json(f, cfg, o);
    }
    fputs("}\n", f);
}

static void
show_listeners(FILE *f, const struct arbiter *a, bool json)
{
    size_t i;

    if (!json)
        fprintf(f, "%-40s %-5s %s\n", "ADDRESS", "TYPE", "FD");
    else
        fputs("{\"listeners\": [", f);
    for (i = 0; i < a->nlisteners; i++) {
        const struct listener *l = &a->listeners[i];
        const char *type = l->is_unix ? "unix" : strchr(l->host, ':') != NULL ? "tcp6" : "tcp";

        if (!json) {
            fprintf(f, "%-40s %-5s %d\n", l->url, type, l->fd);
            continue;
        }
        fputs(i ? ", {\"address\": " : "{\"address\": ", f);
        json_str(f, l->url);
        fprintf(f, ", \"type\": \"%s\", \"fd\": %d}", type, l->fd);
    }
    if (json)
        fprintf(f, "], \"count\": %zu}\n", a->nlisteners);
    else
        fprintf(f, "%zu listener%s\n", a->nlisteners, a->nlisteners == 1 ? "" : "s");
}

static void
show_all(FILE *f, const struct arbiter *a, bool json)
{
    if (json) {
        all_json(f, a);
        return;
    }
    fprintf(f, "Master: pid %d, %d worker%s wanted\n\n", (int)a->pid, a->num_workers,
            a->num_workers == 1 ? "" : "s");
    show_workers(f, a, false);
}

static void
show_help(FILE *f, bool json)
{
    size_t i;

    fputs(json ? "{\"commands\": {" : "Commands:\n", f);
    for (i = 0; i < control_cmd_help_count; i++) {
        if (json) {
            fputs(i ? ", " : "", f);
            json_str(f, control_cmd_help[i].usage);
            fputs(": ", f);
            json_str(f, control_cmd_help[i].what);
        } else {
            fprintf(f, "  %-27s %s\n", control_cmd_help[i].usage, control_cmd_help[i].what);
        }
    }
    fputs(json ? "}}\n" : "", f);
}

/* ---------------------------------------------------------------- change */

static void
scale(FILE *f, struct arbiter *a, const struct control_cmd *cmd)
{
    int old = a->num_workers, n;

    if (cmd->id == CTL_WORKER_ADD)
        n = old + (int)cmd->arg;
    else
        n = old - (int)cmd->arg < 1 ? 1 : old - (int)cmd->arg;
    qln_log(QLN_LOG_INFO, "Control socket: %s %ld worker%s (%d -> %d)",
            cmd->id == CTL_WORKER_ADD ? "adding" : "removing", cmd->arg, cmd->arg == 1 ? "" : "s",
            old, n);
    arbiter_set_num_workers(a, n);
    arbiter_manage_workers(a);
    fputs("ok\n", f);
    if (!cmd->json)
        fprintf(f, "workers: %d -> %d\n", old, n);
    else if (cmd->id == CTL_WORKER_ADD)
        fprintf(f, "{\"added\": %d, \"previous\": %d, \"total\": %d}\n", n - old, old, n);
    else
        fprintf(f, "{\"removed\": %d, \"previous\": %d, \"total\": %d}\n", old - n, old, n);
}

static void
kill_worker(FILE *f, struct arbiter *a, const struct control_cmd *cmd)
{
    struct child *c = arbiter_child_find(a, (pid_t)cmd->arg);

    if (c == NULL || c->retiring) {
        fprintf(f, "error: no worker with pid %ld%s (see: show workers)\n", cmd->arg,
                c != NULL ? " that is not already stopping" : "");
        return;
    }
    qln_log(QLN_LOG_INFO, "Control socket: stopping worker (pid:%d)", (int)c->pid);
    arbiter_child_signal(c, SIGTERM);
    fputs("ok\n", f);
    if (cmd->json)
        fprintf(f, "{\"killed\": %ld}\n", cmd->arg);
    else
        fprintf(f, "worker %ld is stopping (TERM); a new one replaces it\n", cmd->arg);
}

/* Reload, reopen, shutdown: the answer, and the signal control.c sends once it is out. */
static int
by_signal(FILE *f, const struct control_cmd *cmd)
{
    const char *status, *mode = NULL;
    int signo;

    switch (cmd->id) {
    case CTL_RELOAD:
        status = "reloading";
        signo = SIGHUP;
        break;
    case CTL_REOPEN:
        status = "reopening";
        signo = SIGUSR1;
        break;
    default:
        status = "shutting_down";
        mode = cmd->quick ? "quick" : "graceful";
        signo = cmd->quick ? SIGINT : SIGTERM;
        break;
    }
    fputs("ok\n", f);
    if (cmd->json && mode != NULL)
        fprintf(f, "{\"status\": \"%s\", \"mode\": \"%s\"}\n", status, mode);
    else if (cmd->json)
        fprintf(f, "{\"status\": \"%s\"}\n", status);
    else if (mode != NULL)
        fprintf(f, "shutting down (%s)\n", mode);
    else
        fprintf(f, "%s\n", status);
    return signo;
}

int
admin_control(void *opaque, const char *line, FILE *f)
{
    struct arbiter *a = opaque;
    struct control_cmd cmd;
    char err[256];

    if (control_cmd_parse(line, &cmd, err, sizeof(err)) != 0) {
        fprintf(f, "error: %s\n", err);
        return 0;
    }
    qln_log(QLN_LOG_DEBUG, "Control socket: %s", line);
    switch (cmd.id) {
    case CTL_HELP:
    case CTL_SHOW_ALL:
    case CTL_SHOW_WORKERS:
    case CTL_SHOW_STATS:
    case CTL_SHOW_CONFIG:
    case CTL_SHOW_LISTENERS:
        fputs("ok\n", f);
        if (cmd.id == CTL_HELP)
            show_help(f, cmd.json);
        else if (cmd.id == CTL_SHOW_ALL)
            show_all(f, a, cmd.json);
        else if (cmd.id == CTL_SHOW_WORKERS)
            show_workers(f, a, cmd.json);
        else if (cmd.id == CTL_SHOW_STATS)
            show_stats(f, a, cmd.json);
        else if (cmd.id == CTL_SHOW_CONFIG)
            show_config(f, a, cmd.json);
        else
            show_listeners(f, a, cmd.json);
        return 0;
    case CTL_SHUTDOWN:
        /* While stopping, a quick shutdown still cuts the graceful one short. */
        if (a->state != ARB_RUNNING && !cmd.quick)
            break;
        return by_signal(f, &cmd);
    default:
        if (a->state != ARB_RUNNING)
            break;
        if (cmd.id == CTL_WORKER_ADD || cmd.id == CTL_WORKER_REMOVE)
            scale(f, a, &cmd);
        else if (cmd.id == CTL_WORKER_KILL)
            kill_worker(f, a, &cmd);
        else
            return by_signal(f, &cmd);
        return 0;
    }
    fputs("error: the server is shutting down\n", f);
    return 0;
}

/* ---------------------------------------------------------------- socket */

/* The inherited control socket (USR2) when it is bound to PATH; else closed, -1. */
static int
inherited_control(const char *path)
{
    const char *v = getenv(ENV_CONTROL_FD);
    struct sockaddr_un sun;
    socklen_t len = sizeof(sun);
    int fd = v != NULL ? atoi(v) : -1;

    unsetenv(ENV_CONTROL_FD);
    if (fd < 0)
        return -1;
    memset(&sun, 0, sizeof(sun));
    if (path != NULL && getsockname(fd, (struct sockaddr *)&sun, &len) == 0 &&
        sun.sun_family == AF_UNIX && strncmp(sun.sun_path, path, sizeof(sun.sun_path)) == 0) {
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
    }
    close(fd); /* the new configuration names another path, or none */
    return -1;
}

int
admin_control_open(struct arbiter *a)
{
    const struct config *cfg = a->ctx->cfg;
    const char *path = opt_str(cfg, "control_socket");
    bool chosen = config_source_of(cfg, "control_socket") != CONFIG_SRC_DEFAULT;
    mode_t mode = (mode_t)opt_int(cfg, "control_socket_mode", 0600);
    char err[512];
    int fd;

    control_init(&a->control);
    if (opt_bool(cfg, "control_socket_disable", false))
        path = NULL;
    fd = inherited_control(path);
    if (path == NULL || path[0] == '\0') {
        if (!opt_bool(cfg, "control_socket_disable", false))
            qln_log(QLN_LOG_WARNING, "No control socket: neither $XDG_RUNTIME_DIR nor $HOME"
                                     " names a directory (set --control-socket PATH)");
        return 0;
    }
    if (fd >= 0) {
        /* USR2: the old master answers on it until it exits (reexec_promote). */
        control_adopt(&a->control, fd, path);
        if (a->old_master == 0)
            control_adopt_file(&a->control);
    } else if (control_open(&a->control, path, mode, !chosen, err, sizeof(err)) != 0) {
        /* A path the user chose must work; the default one may be taken
           (another server of this user) without stopping this server. */
        if (chosen) {
            arbiter_fatal("%s", err);
            return EXIT_FAILURE;
        }
        qln_log(QLN_LOG_WARNING, "%s; running without a control socket", err);
        return 0;
    }
    return 0;
}

void
admin_control_start(struct arbiter *a)
{
    if (a->control.fd < 0 || a->control.loop != NULL)
        return;
    control_adopt_file(&a->control);
    control_start(&a->control, a->loop, admin_control, a);
    qln_log(QLN_LOG_INFO, "Control socket listening at %s", a->control.path);
}
