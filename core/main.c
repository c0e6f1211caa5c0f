/*
 * qilin's entry point: command line and config file -> plugins -> complete
 * configuration -> arbiter_run(). Nothing else happens here. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "arbiter.h"
#include "cli.h"
#include "config.h"
#include "hooks.h"
#include "listener.h"
#include "log.h"
#include "lua_config.h"
#include "plugin.h"
#include "proc.h"
#include "proxy.h"
#include "static.h"
#include "util.h"
#include "worker.h"

#define ENV_ARGS "QILIN_CMD_ARGS"
#define DEFAULT_APP_PLUGIN "python3"

/* Everything main builds, freed in one place. */
struct startup {
    struct config *cfg;
    struct plugin_set plugins;
    int argc;
    char **argv; /* a private copy: the original strings become the process title */
    int env_argc;
    char **env_argv; /* $QILIN_CMD_ARGS split like a shell; NULL when unset */
    struct cli_early early;
    const struct qln_plugin *app;
    const struct qln_plugin *worker;
    struct config **retired; /* configurations replaced by HUP, freed at exit */
    char *config_path;       /* the config file read, absolute (HUP runs after --chdir) */
    size_t nretired;
};

/* A user error: one line on stderr naming the thing and the fix; exit status 1. */
static _Noreturn void __attribute__((format(printf, 1, 2))) die(const char *fmt, ...)
{
    va_list ap;

    fputs("Error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_FAILURE);
}

static char **
copy_argv(int argc, char **argv)
{
    char **copy = xcalloc((size_t)argc + 1, sizeof(*copy));
    int i;

    for (i = 0; i < argc; i++)
        copy[i] = xstrdup(argv[i]);
    return copy;
}

static void
free_argv(int argc, char **argv)
{
    int i;

    for (i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
}

static bool
have_option(const struct config *cfg, const char *name, enum qln_opt_type type)
{
    const struct qln_option *o = config_find(cfg, name);

    return o != NULL && o->type == type;
}

static const char *
opt_str(const struct config *cfg, const char *name)
{
    return have_option(cfg, name, QLN_OPT_STRING) ? config_str(cfg, name) : NULL;
}

static bool
opt_bool(const struct config *cfg, const char *name)
{
    return have_option(cfg, name, QLN_OPT_BOOL) && config_bool(cfg, name);
}

/* Step 2: what must be known before plugins load ($QILIN_CMD_ARGS, then argv). */
static void
scan_early(struct startup *s)
{
    const char *env = getenv(ENV_ARGS);
    struct cli_early from_env = {0}, from_cli = {0};
    char err[512];

    if (env != NULL && cli_split(env, &s->env_argc, &s->env_argv, err, sizeof(err)) != 0)
        die("$%s: %s", ENV_ARGS, err);
    if (s->env_argv != NULL && cli_scan_early(s->cfg, s->env_argc, s->env_argv, CONFIG_SRC_ENV,
                                              &from_env, err, sizeof(err)) != 0)
        die("$%s: %s", ENV_ARGS, err);
    if (cli_scan_early(s->cfg, s->argc, s->argv, CONFIG_SRC_CLI, &from_cli, err, sizeof(err)) != 0)
        die("%s", err);
    s->early.help = from_env.help || from_cli.help;
    s->early.version = from_env.version || from_cli.version;
    s->early.config_file = from_cli.config_file ? from_cli.config_file : from_env.config_file;
}

/* Step 3: the Lua config file, read leniently: plugin options are not known yet. */
static void
read_config_file(struct startup *s)
{
    const char *path = s->early.config_file;
    bool by_default = false;
    char err[1024];
    int rc;

    if (path == NULL) {
        path = opt_str(s->cfg, "config");
        by_default = config_find(s->cfg, "config") != NULL &&
                     config_source_of(s->cfg, "config") == CONFIG_SRC_DEFAULT;
    }
    if (path == NULL)
        return;
    rc = lua_config_load(s->cfg, path, err, sizeof(err));
    /* A default config file is optional (gunicorn's ./gunicorn.conf.py); a named one is not. */
    if (rc == -ENOENT && by_default)
        return;
    if (rc != 0)
        die("%s", err);
    s->config_path = realpath(path, NULL);
}

/* Step 4, worker part: -k NAME (or a gunicorn class path) names a worker plugin. */
static void
load_worker(struct startup *s)
{
    const char *klass = opt_str(s->cfg, "worker_class");
    const struct loaded_plugin *lp;
    const char *name;
    char err[1024];

    if (klass == NULL || klass[0] == '\0')
        klass = "sync";
    name = plugin_worker_name(&s->plugins, klass);
    /* Issue 5: as gunicorn, --threads above 1 turns the sync worker class into gthread. */
    if (strcmp(name, "sync") == 0 && config_find(s->cfg, "threads") != NULL &&
        config_int(s->cfg, "threads") > 1)
        klass = name = "gthread";
    lp = plugin_find(&s->plugins, name);
    if (lp == NULL) {
        if (plugin_load(&s->plugins, s->cfg, name, err, sizeof(err)) != 0) {
            if (s->early.help)
                return; /* --help still works, without that worker's options */
            die("worker class '%s' not found: %s", klass, err);
        }
        lp = plugin_find(&s->plugins, name);
    }
    if (lp == NULL || !(lp->desc->kind & QLN_KIND_WORKER) || lp->desc->worker == NULL)
        die("plugin '%s' is not a worker plugin: -k takes a worker class such as sync or gthread",
            name);
    s->worker = lp->desc;
}

/* Step 4: every --plugin, the worker, and python3 when no app plugin was named. */
static void
load_plugins(struct startup *s)
{
    const struct loaded_plugin *lp;
    char err[1024];
    size_t i, n;

    n = config_find(s->cfg, "plugin") != NULL ? config_list_len(s->cfg, "plugin") : 0;
    for (i = 0; i < n; i++) {
        const char *name = config_list_get(s->cfg, "plugin", i);

        if (plugin_load(&s->plugins, s->cfg, name, err, sizeof(err)) != 0)
            die("%s", err);
    }
    load_worker(s);
    lp = plugin_first_of_kind(&s->plugins, QLN_KIND_APP);
    if (lp == NULL) {
        /* DESIGN: an app given with no --plugin means python3. --help still
           works without it, showing the core's options only. */
        if (plugin_load(&s->plugins, s->cfg, DEFAULT_APP_PLUGIN, err, sizeof(err)) != 0) {
            if (s->early.help)
                return;
            die("%s (an application needs an app plugin: --plugin NAME)", err);
        }
        lp = plugin_first_of_kind(&s->plugins, QLN_KIND_APP);
    }
    if (lp != NULL)
        s->app = lp->desc;
}

/* Step 5: the complete option table is known; everything is validated now. */
static void
parse_fully(struct startup *s)
{
    char err[1024];

    config_set_lenient(s->cfg, false);
    if (config_resolve_pending(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    if (s->env_argv != NULL &&
        cli_parse(s->cfg, s->env_argc, s->env_argv, CONFIG_SRC_ENV, err, sizeof(err)) != 0)
        die("$%s: %s", ENV_ARGS, err);
    if (cli_parse(s->cfg, s->argc, s->argv, CONFIG_SRC_CLI, err, sizeof(err)) != 0)
        die("%s", err);
}

/* --check-config: the settings and binds are valid by now; what is left is loading the app. */
static int
check_config(struct startup *s, struct qln_ctx *ctx)
{
    const struct qln_app_ops *app = s->app->app;
    void (*app_shutdown)(void *) = APP_HOOK(app, shutdown);
    void *state = NULL;
    char err[1024] = "";

    if (log_open(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    if (app->init(ctx, &state, err, sizeof(err)) != 0)
        die("plugin '%s' failed to start: %s", s->app->name, err);
    err[0] = '\0';
    if (app->load_app(state, opt_str(s->cfg, "wsgi_app"), err, sizeof(err)) != 0)
        die("App failed to load: %s", err[0] ? err : "see the error log");
    if (app_shutdown != NULL)
        app_shutdown(state);
    return EXIT_SUCCESS;
}

/* Bind specs are checked before anything starts, so a typo is one error line. */
static void
check_binds(const struct config *cfg)
{
    struct listener_spec ls;
    char err[512];
    size_t i, n;

    n = config_find(cfg, "bind") != NULL ? config_list_len(cfg, "bind") : 0;
    for (i = 0; i < n; i++) {
        const char *spec = config_list_get(cfg, "bind", i);

        if (listener_parse(spec, &ls, err, sizeof(err)) != 0)
            die("%s (check --bind '%s')", err, spec);
    }
}

/*
 * Steps 6-7: the modes that end here (--help, --print-config: returns 0)
 * and the checks before serving (returns -1 to go on).
 */
static int
handle_modes(struct startup *s)
{
    static struct static_map statics; /* master: too large for the stack to be polite */
    const char *dir;
    char err[512];

    if (s->early.help) {
        cli_help(s->cfg, stdout);
        return EXIT_SUCCESS;
    }
    if (opt_bool(s->cfg, "print_config")) {
        config_print(s->cfg, stdout);
        return EXIT_SUCCESS;
    }
    if (s->app == NULL)
        die("no app plugin loaded: pass --plugin NAME (e.g. --plugin python3)");
    if (opt_str(s->cfg, "wsgi_app") == NULL)
        die("No application module specified.");
    check_binds(s->cfg);
    /* Issue 3: a bad --forwarded-allow-ips is one error line at startup. */
    if (proxy_check_config(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    dir = opt_str(s->cfg, "chdir");
    if (dir != NULL && chdir(dir) != 0)
        die("can't chdir to '%s': %s (check --chdir)", dir, strerror(errno));
    /* Issue 8: after --chdir, which relative directories are taken from. */
    if (static_map_load(&statics, s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    static_map_release(&statics);
    return -1;
}

/*
 * HUP: the same sources as at startup, read into a fresh registry that knows
 * the options of the plugins already loaded (plugins are never unloaded, so
 * a changed --plugin or -k needs a restart). Errors return instead of
 * exiting: the master keeps its current configuration.
 */
static int
reload_config(void *opaque, struct qln_ctx *ctx, char *err, size_t errlen)
{
    struct startup *s = opaque;
    struct config *cfg = config_new();
    const char *path = s->config_path;
    char inner[1024];
    size_t i;
    int rc;

    rc = config_register(cfg, core_options, "core", inner, sizeof(inner));
    for (i = 0; rc == 0 && i < s->plugins.n; i++) {
        const struct qln_plugin *d = s->plugins.items[i].desc;

        if (d->options != NULL)
            rc = config_register(cfg, d->options, d->name, inner, sizeof(inner));
    }
    if (rc == 0 && path != NULL)
        rc = lua_config_load(cfg, path, inner, sizeof(inner));
    if (rc == 0 && s->env_argv != NULL) {
        rc = cli_parse(cfg, s->env_argc, s->env_argv, CONFIG_SRC_ENV, inner, sizeof(inner));
        if (rc != 0)
            util_format(err, errlen, "$%s: %s", ENV_ARGS, inner);
    } else if (rc != 0) {
        util_format(err, errlen, "%s", inner);
    }
    if (rc == 0) {
        rc = cli_parse(cfg, s->argc, s->argv, CONFIG_SRC_CLI, inner, sizeof(inner));
        if (rc != 0)
            util_format(err, errlen, "%s", inner);
    }
    if (rc != 0) {
        hooks_discard();
        config_free(cfg);
        return rc;
    }
    hooks_commit();
    s->retired = xrealloc(s->retired, (s->nretired + 1) * sizeof(*s->retired));
    s->retired[s->nretired++] = s->cfg;
    s->cfg = cfg;
    ctx->cfg = cfg;
    return 0;
}

/* Steps 1-7, then the server. Returns the exit status. */
static int
run(struct startup *s)
{
    struct qln_ctx ctx;
    char err[1024];
    int rc;

    s->cfg = config_new();
    if (config_register(s->cfg, core_options, "core", err, sizeof(err)) != 0)
        die("%s", err);
    scan_early(s);
    if (s->early.version) {
        printf("qilin (version %s)\n", QLN_VERSION);
        return EXIT_SUCCESS;
    }
    config_set_lenient(s->cfg, true);
    read_config_file(s);
    load_plugins(s);
    parse_fully(s);
    hooks_commit();
    rc = handle_modes(s);
    if (rc >= 0)
        return rc;

    ctx = (struct qln_ctx){.cfg = s->cfg, .argc = s->argc, .argv = s->argv};
    if (opt_bool(s->cfg, "check_config"))
        return check_config(s, &ctx);
    arbiter_set_reload(reload_config, s);
    return arbiter_run(&ctx, s->app, s->worker);
}

/*
 * USR2 re-executes argv[0]; --chdir will have changed the directory by
 * then, so a relative path ("./qilin") is made absolute now. A bare name is
 * searched in $PATH again, as a shell would.
 */
static void
absolute_argv0(struct startup *s)
{
    char cwd[4096];
    char *abs;

    if (s->argc < 1 || strchr(s->argv[0], '/') == NULL || s->argv[0][0] == '/')
        return;
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return;
    abs = xasprintf("%s/%s", cwd, s->argv[0]);
    free(s->argv[0]);
    s->argv[0] = abs;
}

int
main(int argc, char **argv)
{
    struct startup s = {0};
    int rc;

    s.argc = argc;
    s.argv = copy_argv(argc, argv);
    absolute_argv0(&s);
    proc_title_init(argc, argv);

    rc = run(&s);

    hooks_free();
    plugin_set_free(&s.plugins);
    config_free(s.cfg);
    while (s.nretired > 0)
        config_free(s.retired[--s.nretired]);
    free(s.retired);
    free(s.config_path);
    if (s.env_argv != NULL)
        cli_argv_free(s.env_argv);
    free_argv(s.argc, s.argv);
    return rc;
}
