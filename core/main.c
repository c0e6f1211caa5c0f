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
#include "reloader.h"
#include "static.h"
#include "statsd.h"
#include "tls.h"
#include "util.h"
#include "worker.h"

#define DEFAULT_APP_PLUGIN "python3"

/*
 * Extra arguments from the environment, applied after the config file and
 * before the command line, in this order: gunicorn's variable first, so that
 * when both are set qilin's own wins for a single-valued option (repeatable
 * ones such as --bind collect the items of both).
 */
static const char *const env_vars[] = {"GUNICORN_CMD_ARGS", "QILIN_CMD_ARGS"};
#define NENV (sizeof(env_vars) / sizeof(env_vars[0]))

/* One of env_vars split like a shell command line; ARGV NULL when unset. */
struct env_args {
    int argc;
    char **argv;
};

/* Everything main builds, freed in one place. */
struct startup {
    struct config *cfg;
    struct plugin_set plugins;
    int argc;
    char **argv;               /* a private copy: the original strings become the process title */
    struct env_args env[NENV]; /* env_vars[i], split */
    struct cli_early early;
    const struct qln_plugin *app;
    const struct qln_plugin *worker;
    struct config **retired; /* configurations replaced by HUP, freed at exit */
    char *config_path;       /* the config file read, absolute (HUP runs after --chdir) */
    size_t nretired;
};

/* gunicorn's exit status for a command line it cannot parse (argparse's). */
#define EXIT_USAGE 2

static _Noreturn void
vdie(int status, const char *fmt, va_list ap)
{
    fputs("Error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    exit(status);
}

/* A user error: one line on stderr naming the thing and the fix; exit status 1. */
static _Noreturn void __attribute__((format(printf, 1, 2))) die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vdie(EXIT_FAILURE, fmt, ap);
}

/*
 * The same for an error in the command line (argv, $GUNICORN_CMD_ARGS): exit
 * status 2 when RC says it is malformed (CONFIG_EUSAGE), as gunicorn's
 * argparse exits; 1 for a well-formed but wrong value.
 */
static _Noreturn void __attribute__((format(printf, 2, 3))) cli_error(int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vdie(rc == CONFIG_EUSAGE ? EXIT_USAGE : EXIT_FAILURE, fmt, ap);
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

/*
 * Parses the environment's arguments into CFG (every env_vars entry that is
 * set, in order). Returns 0 or -errno with ERR "$NAME: reason".
 */
static int
parse_env(const struct startup *s, struct config *cfg, char *err, size_t errlen)
{
    char inner[1024];
    int rc;

    for (size_t i = 0; i < NENV; i++) {
        if (s->env[i].argv == NULL)
            continue;
        rc = cli_parse(cfg, s->env[i].argc, s->env[i].argv, CONFIG_SRC_ENV, inner, sizeof(inner));
        if (rc != 0)
            return util_err(err, errlen, rc, "$%s: %s", env_vars[i], inner);
    }
    return 0;
}

/* Step 2: what must be known before plugins load (the environment's arguments, then argv). */
static void
scan_early(struct startup *s)
{
    struct cli_early from_env = {0}, from_cli = {0};
    char err[512];
    int rc;

    for (size_t i = 0; i < NENV; i++) {
        const char *text = getenv(env_vars[i]);
        struct cli_early e = {0};

        if (text == NULL)
            continue;
        rc = cli_split(text, &s->env[i].argc, &s->env[i].argv, err, sizeof(err));
        if (rc == 0)
            rc = cli_scan_early(s->cfg, s->env[i].argc, s->env[i].argv, CONFIG_SRC_ENV, &e, err,
                                sizeof(err));
        if (rc != 0)
            cli_error(rc, "$%s: %s", env_vars[i], err);
        from_env.help |= e.help;
        from_env.version |= e.version;
        if (e.config_file != NULL)
            from_env.config_file = e.config_file;
    }
    rc = cli_scan_early(s->cfg, s->argc, s->argv, CONFIG_SRC_CLI, &from_cli, err, sizeof(err));
    if (rc != 0)
        cli_error(rc, "%s", err);
    s->early.help = from_env.help || from_cli.help;
    s->early.version = from_env.version || from_cli.version;
    s->early.config_file = from_cli.config_file ? from_cli.config_file : from_env.config_file;
}

/*
 * gunicorn's spellings of its config file (gunicorn.conf.py, file:PATH,
 * python:MODULE): with no app plugin named, they mean the default one, whose
 * language they are written in.
 */
static bool
gunicorn_config(const char *path)
{
    size_t len = strlen(path);

    return (len > 3 && strcmp(path + len - 3, ".py") == 0) || strncmp(path, "python:", 7) == 0 ||
           strncmp(path, "file:", 5) == 0;
}

/*
 * Reads the config file PATH into CFG: the first loaded app plugin whose
 * load_config_state() or load_config() claims it reads it in its language
 * (gunicorn.conf.py for python3), else it is Lua. A plugin's state is its
 * own slot until init() (startup), and APP_STATE for the app plugin in use
 * once the arbiter holds it (HUP). Returns 0 or -errno with ERR one line
 * (-ENOENT only when PATH does not exist).
 */
static int
load_config_file(struct startup *s, struct config *cfg, const char *path, void **app_state,
                 char *err, size_t errlen)
{
    struct qln_ctx ctx = {.cfg = cfg, .argc = s->argc, .argv = s->argv};

    for (size_t i = 0; i < s->plugins.n; i++) {
        struct loaded_plugin *lp = &s->plugins.items[i];
        const struct qln_app_ops *app = lp->desc->app;
        int (*with_state)(struct qln_ctx *, void **, const char *, char *, size_t) =
            app != NULL ? APP_HOOK(app, load_config_state) : NULL;
        int (*load_config)(struct qln_ctx *, const char *, char *, size_t) =
            app != NULL ? APP_HOOK(app, load_config) : NULL;
        void **state = app_state != NULL && lp->desc == s->app ? app_state : &lp->state;
        int rc = with_state != NULL    ? with_state(&ctx, state, path, err, errlen)
                 : load_config != NULL ? load_config(&ctx, path, err, errlen)
                                       : -ENOTSUP;

        if (rc != -ENOTSUP)
            return rc;
    }
    return lua_config_load(cfg, path, err, errlen);
}

/*
 * Takes the state the app plugin in use left from load_config_state(), for
 * its init(), which adopts it; NULL if none.
 */
static void *
take_app_state(struct startup *s)
{
    void *state;

    for (size_t i = 0; i < s->plugins.n; i++) {
        if (s->plugins.items[i].desc != s->app)
            continue;
        state = s->plugins.items[i].state;
        s->plugins.items[i].state = NULL;
        return state;
    }
    return NULL;
}

/*
 * A state load_config_state() made that no init() adopted (the process
 * ends before, as with --print-config) goes to the plugin's shutdown(),
 * which frees it as it frees what init() made.
 */
static void
release_unadopted_states(struct startup *s)
{
    for (size_t i = 0; i < s->plugins.n; i++) {
        struct loaded_plugin *lp = &s->plugins.items[i];
        const struct qln_app_ops *app = lp->desc->app;
        void (*shutdown)(void *) = app != NULL ? APP_HOOK(app, shutdown) : NULL;

        if (lp->state != NULL && shutdown != NULL)
            shutdown(lp->state);
        lp->state = NULL;
    }
}

/* Loads every --plugin NAME (a plugin's name, one of its aliases, or a path). */
static void
load_named_plugins(struct startup *s)
{
    size_t n = config_find(s->cfg, "plugin") != NULL ? config_list_len(s->cfg, "plugin") : 0;
    char err[1024], real[128];

    for (size_t i = 0; i < n; i++) {
        const char *name = plugin_resolve(&s->plugins, s->cfg, config_list_get(s->cfg, "plugin", i),
                                          real, sizeof(real));

        if (plugin_load(&s->plugins, s->cfg, name, err, sizeof(err)) != 0)
            die("%s", err);
    }
}

/*
 * Before a config file that is not Lua: the app plugins named with --plugin,
 * or the default one for gunicorn's spellings, so that one of them can read it.
 */
static void
load_config_plugins(struct startup *s, const char *path)
{
    char err[1024];

    load_named_plugins(s);
    if (gunicorn_config(path) && plugin_first_of_kind(&s->plugins, QLN_KIND_APP) == NULL &&
        plugin_load(&s->plugins, s->cfg, DEFAULT_APP_PLUGIN, err, sizeof(err)) != 0)
        die("config file '%s' is Python and needs the %s plugin: %s", path, DEFAULT_APP_PLUGIN,
            err);
}

/*
 * Step 3: the config file, read leniently: plugin options are not known yet.
 * With no -c, ./gunicorn.conf.py is read when it exists, as gunicorn does.
 */
static void
read_config_file(struct startup *s)
{
    const char *path = s->early.config_file;
    size_t len;
    char err[1024];
    int rc;

    if (path == NULL)
        path = opt_str(s->cfg, "config");
    if (path == NULL && access("gunicorn.conf.py", F_OK) == 0)
        path = "gunicorn.conf.py";
    if (path == NULL)
        return;
    len = strlen(path);
    if (len < 4 || strcmp(path + len - 4, ".lua") != 0)
        load_config_plugins(s, path);
    rc = load_config_file(s, s->cfg, path, NULL, err, sizeof(err));
    if (rc != 0)
        die("%s", err);
    /* HUP reads it again after --chdir: a file by its absolute path. */
    s->config_path = strncmp(path, "python:", 7) == 0 ? NULL : realpath(path, NULL);
    if (s->config_path == NULL)
        s->config_path = xstrdup(path);
}

/* Step 4, worker part: -k NAME (or a gunicorn class path) names a worker plugin. */
static void
load_worker(struct startup *s)
{
    const char *klass = opt_str(s->cfg, "worker_class");
    const struct loaded_plugin *lp;
    const char *name;
    char err[1024], real[128];

    if (klass == NULL || klass[0] == '\0')
        klass = "sync";
    /* gunicorn's class paths ("gunicorn.workers.ggevent.GeventWorker") are
       aliases the worker plugins declare. */
    name = plugin_resolve(&s->plugins, s->cfg, klass, real, sizeof(real));
    /* As gunicorn, --threads above 1 turns the sync worker class into gthread. */
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

    load_named_plugins(s);
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
    int rc;

    config_set_lenient(s->cfg, false);
    if (config_resolve_pending(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    rc = parse_env(s, s->cfg, err, sizeof(err));
    if (rc == 0)
        rc = cli_parse(s->cfg, s->argc, s->argv, CONFIG_SRC_CLI, err, sizeof(err));
    if (rc != 0)
        cli_error(rc, "%s", err);
}

/* --check-config: the settings and binds are valid by now; what is left is loading the app. */
static int
check_config(struct startup *s, struct qln_ctx *ctx)
{
    const struct qln_app_ops *app = s->app->app;
    void (*app_shutdown)(void *) = APP_HOOK(app, shutdown);
    void *state = take_app_state(s);
    struct log_options lo;
    char err[1024] = "";

    config_log_options(s->cfg, &lo);
    if (log_open(&lo, err, sizeof(err)) != 0)
        die("%s", err);
    if (app->init(ctx, &state, err, sizeof(err)) != 0)
        die("plugin '%s' failed to start: %s", s->app->name, err);
    err[0] = '\0';
    if (app->load_app(state, config_app_spec(s->cfg), err, sizeof(err)) != 0)
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
    struct tls_server *tls;
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
    if (config_app_spec(s->cfg) == NULL)
        cli_error(CONFIG_EUSAGE, "No application module specified.");
    check_binds(s->cfg);
    /* A --statsd-host that cannot be an address is a malformed flag: exit 2. */
    if (statsd_check_config(s->cfg, err, sizeof(err)) != 0)
        cli_error(CONFIG_EUSAGE, "%s", err);
    /* A bad --forwarded-allow-ips is one error line at startup. */
    if (proxy_check_config(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    if (reloader_check_config(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    if (conn_settings_check(s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    dir = opt_str(s->cfg, "chdir");
    if (dir != NULL && chdir(dir) != 0)
        die("can't chdir to '%s': %s (check --chdir)", dir, strerror(errno));
    /* After --chdir, which relative directories are taken from. */
    if (static_map_load(&statics, s->cfg, err, sizeof(err)) != 0)
        die("%s", err);
    static_map_release(&statics);
    /* Before the workers fork, so they share its session-ticket keys. */
    if (tls_server_new(s->cfg, &tls, err, sizeof(err)) != 0)
        die("%s", err);
    tls_set_current(tls);
    if (config_str(s->cfg, "ssl_version") != NULL)
        qln_log(QLN_LOG_WARNING, "ssl_version is ignored, as in gunicorn 21 and later: the"
                                 " protocol is negotiated (set the oldest with --ssl-min-version)");
    return -1;
}

/*
 * HUP: the same sources as at startup, read into a fresh registry that knows
 * the options of the plugins already loaded (plugins are never unloaded, so
 * a changed --plugin or -k needs a restart). Errors return instead of
 * exiting: the master keeps its current configuration.
 */
static int
reload_config(void *opaque, struct qln_ctx *ctx, void **app_state, char *err, size_t errlen)
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
        rc = load_config_file(s, cfg, path, app_state, inner, sizeof(inner));
    if (rc == 0)
        rc = parse_env(s, cfg, err, errlen);
    else
        util_format(err, errlen, "%s", inner);
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

    ctx = (struct qln_ctx){.cfg = s->cfg,
                           .argc = s->argc,
                           .argv = s->argv,
                           .worker_flags = s->worker ? s->worker->worker->flags : 0};
    hooks_set_ctx(&ctx); /* lives until arbiter_run returns; HUP swaps ctx.cfg */
    if (opt_bool(s->cfg, "check_config"))
        return check_config(s, &ctx);
    arbiter_set_reload(reload_config, s);
    return arbiter_run(&ctx, s->app, take_app_state(s), s->worker);
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
    release_unadopted_states(&s);
    plugin_set_free(&s.plugins);
    config_free(s.cfg);
    while (s.nretired > 0)
        config_free(s.retired[--s.nretired]);
    free(s.retired);
    free(s.config_path);
    for (size_t i = 0; i < NENV; i++)
        if (s.env[i].argv != NULL)
            cli_argv_free(s.env[i].argv);
    free_argv(s.argc, s.argv);
    return rc;
}
