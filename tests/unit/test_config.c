/*
 * Unit tests for core/config.c and core/options.c: registration, typed
 * values and bounds, precedence of the four sources, lists, unknown names,
 * pending settings, --print-config and the qln_cfg_*() readers.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <qilin/option.h>

#include "core/config.h"

static struct config *
core_config(void)
{
    struct config *cfg = config_new();
    char err[256] = "";

    unsetenv("PORT");
    unsetenv("WEB_CONCURRENCY");
    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), 0);
    return cfg;
}

/* A plugin's table, registered after the core's (as the loader does). */
/* The core registers threads and sendfile itself, hence a made-up "strands" and "spooling". */
static const struct qln_option plugin_options[] = {
    {.name = "strands",
     .cli = "--strands",
     .type = QLN_OPT_INT,
     .def = "1",
     .metavar = "INT",
     .section = "Threads",
     .help = "Threads per worker.",
     .min = 1},
    {.name = "spooling",
     .cli = "--no-spooling",
     .type = QLN_OPT_BOOL,
     .def = "true",
     .section = "Threads",
     .help = "Disable spooling.",
     .flags = QLN_OPT_NEGATE},
    {.name = "pythonpath",
     .cli = "--pythonpath",
     .type = QLN_OPT_LIST,
     .metavar = "DIR",
     .section = "Threads",
     .help = "Paths."},
    {.name = NULL},
};

START_TEST(defaults_follow_gunicorn)
{
    struct config *cfg = core_config();

    ck_assert_int_eq(config_int(cfg, "workers"), 1);
    ck_assert_int_eq(config_int(cfg, "backlog"), 2048);
    ck_assert_int_eq(config_int(cfg, "timeout"), 30);
    ck_assert_int_eq(config_int(cfg, "graceful_timeout"), 30);
    ck_assert_int_eq(config_int(cfg, "keepalive"), 2);
    ck_assert_int_eq(config_int(cfg, "limit_request_line"), 4094);
    ck_assert_int_eq(config_int(cfg, "limit_request_fields"), 100);
    ck_assert_int_eq(config_int(cfg, "limit_request_field_size"), 8190);
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 1);
    ck_assert_str_eq(config_list_get(cfg, "bind", 0), "127.0.0.1:8000");
    ck_assert_uint_eq(config_list_len(cfg, "plugin"), 0);
    ck_assert_str_eq(config_str(cfg, "worker_class"), "sync");
    ck_assert_str_eq(config_str(cfg, "loglevel"), "info");
    ck_assert_str_eq(config_str(cfg, "errorlog"), "-");
    ck_assert_str_eq(config_str(cfg, "server_header"), "qilin");
    ck_assert_str_eq(config_str(cfg, "access_log_format"),
                     "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"");
    ck_assert_ptr_null(config_str(cfg, "accesslog"));
    ck_assert_ptr_null(config_str(cfg, "wsgi_app"));
    ck_assert(!config_bool(cfg, "preload_app"));
    ck_assert(!config_bool(cfg, "reuse_port"));
    ck_assert_int_eq(config_source_of(cfg, "workers"), CONFIG_SRC_DEFAULT);
    config_free(cfg);
}
END_TEST

START_TEST(environment_defaults)
{
    struct config *cfg = config_new();
    char err[256] = "";

    setenv("PORT", "9123", 1);
    setenv("WEB_CONCURRENCY", "3", 1);
    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), 0);
    ck_assert_str_eq(config_list_get(cfg, "bind", 0), "0.0.0.0:9123");
    ck_assert_int_eq(config_int(cfg, "workers"), 3);
    ck_assert_int_eq(config_source_of(cfg, "workers"), CONFIG_SRC_DEFAULT);
    config_free(cfg);

    cfg = config_new();
    setenv("WEB_CONCURRENCY", "many", 1);
    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), CONFIG_EUSAGE);
    ck_assert_str_eq(err, "$WEB_CONCURRENCY: setting 'workers': invalid integer 'many' (expected"
                          " a number >= 1); fix or unset the environment variable");
    /* All or nothing: nothing of the failed table is registered. */
    ck_assert_ptr_null(config_find(cfg, "bind"));
    config_free(cfg);
}
END_TEST

/* Setting NAME to VALUE from the command line gives RC and either EXPECT (the value) or ERR. */
static const struct {
    const char *name, *value;
    int rc;
    const char *expect; /* value read back, as text */
    const char *err;    /* the whole error line */
} typed_cases[] = {
    {"workers", "4", 0, "4", NULL},
    {"workers", "0x10", 0, "16", NULL},
    {"workers", "0o17", 0, "15", NULL},
    /* gunicorn's umask is auto_int: a leading 0 means octal, as a shell writes it. */
    {"umask", "022", 0, "18", NULL},
    {"umask", "0o22", 0, "18", NULL},
    {"umask", "18", 0, "18", NULL},
    {"umask", "0", 0, "0", NULL},
    {"umask", "089", CONFIG_EUSAGE, NULL,
     "--umask: invalid integer '089' (expected a number between 0 and 511)"},
    {"workers", "abc", CONFIG_EUSAGE, NULL,
     "--workers: invalid integer 'abc' (expected a number >= 1)"},
    {"workers", "0", -EINVAL, NULL, "--workers: 0 is out of range (expected a number >= 1)"},
    {"workers", " 4", CONFIG_EUSAGE, NULL,
     "--workers: invalid integer ' 4' (expected a number >= 1)"},
    {"workers", "4x", CONFIG_EUSAGE, NULL,
     "--workers: invalid integer '4x' (expected a number >= 1)"},
    {"workers", "", CONFIG_EUSAGE, NULL, "--workers: invalid integer '' (expected a number >= 1)"},
    {"timeout", "0", 0, "0", NULL},
    {"timeout", "-1", -EINVAL, NULL, "--timeout: -1 is out of range (expected a number >= 0)"},
    {"timeout", "2147483648", -EINVAL, NULL,
     "--timeout: 2147483648 is out of range (expected a number >= 0)"},
    {"backlog", "99999999999999999999", CONFIG_EUSAGE, NULL,
     "--backlog: invalid integer '99999999999999999999' (expected a number >= 1)"},
    {"limit_request_line", "8190", 0, "8190", NULL},
    {"limit_request_line", "8191", -EINVAL, NULL,
     "--limit-request-line: 8191 is out of range (expected a number between 0 and 8190)"},
    {"limit_request_fields", "32768", 0, "32768", NULL},
    {"limit_request_fields", "32769", -EINVAL, NULL,
     "--limit-request-fields: 32769 is out of range (expected a number between 0 and 32768)"},
    {"preload_app", "yes", 0, "true", NULL},
    {"preload_app", "ON", 0, "true", NULL},
    {"preload_app", "0", 0, "false", NULL},
    {"preload_app", "maybe", CONFIG_EUSAGE, NULL,
     "--preload: invalid boolean 'maybe' (expected true or false)"},
    /* As gunicorn, any level name is taken (log.c warns about an odd one). */
    {"loglevel", "DEBUG", 0, "DEBUG", NULL},
    {"loglevel", "warning", 0, "warning", NULL},
    {"loglevel", "verbose", 0, "verbose", NULL},
    {"proxy_protocol", "V2", 0, "v2", NULL},
    {"proxy_protocol", "yes", 0, "auto", NULL}, /* gunicorn's switch, spelled as a word */
    {"proxy_protocol", "1", 0, "auto", NULL},
    {"proxy_protocol", "false", 0, "off", NULL},
    {"proxy_protocol", "v3", CONFIG_EUSAGE, NULL,
     "--proxy-protocol: invalid value 'v3' (expected one of: off, v1, v2, auto; or true, false)"},
    {"server_header", "", 0, "", NULL},
    {"proc_name", "my app", 0, "my app", NULL},
};

static void
value_text(struct config *cfg, const char *name, char *buf, size_t len)
{
    switch (config_find(cfg, name)->type) {
    case QLN_OPT_BOOL:
        snprintf(buf, len, "%s", config_bool(cfg, name) ? "true" : "false");
        break;
    case QLN_OPT_INT:
        snprintf(buf, len, "%lld", (long long)config_int(cfg, name));
        break;
    default:
        snprintf(buf, len, "%s", config_str(cfg, name));
        break;
    }
}

START_TEST(typed_values_and_bounds)
{
    struct config *cfg = core_config();
    const struct qln_option *o = config_find(cfg, typed_cases[_i].name);
    char err[256] = "", got[256], flag[64];
    int rc;

    /* The origin is the option's long flag, as cli_parse passes it. */
    snprintf(flag, sizeof(flag), "%s", strrchr(o->cli, ',') ? strrchr(o->cli, ',') + 1 : o->cli);
    rc = config_set(cfg, typed_cases[_i].name, typed_cases[_i].value, CONFIG_SRC_CLI, flag, err,
                    sizeof(err));
    ck_assert_msg(rc == typed_cases[_i].rc, "%s=%s: rc %d, want %d (%s)", typed_cases[_i].name,
                  typed_cases[_i].value, rc, typed_cases[_i].rc, err);
    if (rc == 0) {
        value_text(cfg, typed_cases[_i].name, got, sizeof(got));
        ck_assert_str_eq(got, typed_cases[_i].expect);
        ck_assert_int_eq(config_source_of(cfg, typed_cases[_i].name), CONFIG_SRC_CLI);
    } else {
        ck_assert_str_eq(err, typed_cases[_i].err);
        ck_assert_int_eq(config_source_of(cfg, typed_cases[_i].name), CONFIG_SRC_DEFAULT);
    }
    config_free(cfg);
}
END_TEST

START_TEST(typed_setters_check_type_and_range)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(
        config_set_int(cfg, "workers", 7, CONFIG_SRC_FILE, "a.lua:1", err, sizeof(err)), 0);
    ck_assert_int_eq(config_int(cfg, "workers"), 7);
    ck_assert_int_eq(
        config_set_int(cfg, "workers", 0, CONFIG_SRC_FILE, "a.lua:2", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "a.lua:2: setting 'workers': 0 is out of range (expected a number >= 1)");
    ck_assert_int_eq(
        config_set_bool(cfg, "workers", true, CONFIG_SRC_FILE, "a.lua:3", err, sizeof(err)),
        -EINVAL);
    ck_assert_str_eq(err, "a.lua:3: setting 'workers' must be an integer, got a boolean");
    ck_assert_int_eq(
        config_set_int(cfg, "loglevel", 3, CONFIG_SRC_FILE, "a.lua:4", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "a.lua:4: setting 'loglevel' must be a string, got an integer");
    ck_assert_int_eq(
        config_set_bool(cfg, "preload_app", true, CONFIG_SRC_FILE, "a.lua:5", err, sizeof(err)), 0);
    ck_assert(config_bool(cfg, "preload_app"));
    ck_assert_int_eq(config_int(cfg, "workers"), 7);
    /* A string setting that is a gunicorn switch takes a boolean as its word; others do not. */
    ck_assert_int_eq(
        config_set_bool(cfg, "proxy_protocol", true, CONFIG_SRC_FILE, "a.lua:6", err, sizeof(err)),
        0);
    ck_assert_str_eq(config_str(cfg, "proxy_protocol"), "auto");
    ck_assert_int_eq(
        config_set_bool(cfg, "proxy_protocol", false, CONFIG_SRC_FILE, "a.lua:7", err, sizeof(err)),
        0);
    ck_assert_str_eq(config_str(cfg, "proxy_protocol"), "off");
    ck_assert_int_eq(
        config_set_bool(cfg, "loglevel", true, CONFIG_SRC_FILE, "a.lua:8", err, sizeof(err)),
        -EINVAL);
    ck_assert_str_eq(err, "a.lua:8: setting 'loglevel' must be a string, got a boolean");
    config_free(cfg);
}
END_TEST

/* Precedence: each step sets workers from a source; the last column is what must win. */
static const struct {
    struct {
        enum config_source src;
        const char *value;
    } steps[4];
    size_t n;
    const char *want;
    enum config_source want_src;
} precedence_cases[] = {
    {{{CONFIG_SRC_FILE, "2"}}, 1, "2", CONFIG_SRC_FILE},
    {{{CONFIG_SRC_FILE, "2"}, {CONFIG_SRC_ENV, "3"}}, 2, "3", CONFIG_SRC_ENV},
    {{{CONFIG_SRC_FILE, "2"}, {CONFIG_SRC_ENV, "3"}, {CONFIG_SRC_CLI, "4"}},
     3,
     "4",
     CONFIG_SRC_CLI},
    {{{CONFIG_SRC_CLI, "4"}, {CONFIG_SRC_FILE, "2"}}, 2, "4", CONFIG_SRC_CLI},
    {{{CONFIG_SRC_CLI, "4"}, {CONFIG_SRC_ENV, "3"}, {CONFIG_SRC_FILE, "2"}},
     3,
     "4",
     CONFIG_SRC_CLI},
    {{{CONFIG_SRC_ENV, "3"}, {CONFIG_SRC_FILE, "2"}}, 2, "3", CONFIG_SRC_ENV},
    {{{CONFIG_SRC_FILE, "2"}, {CONFIG_SRC_FILE, "5"}}, 2, "5", CONFIG_SRC_FILE},
    {{{CONFIG_SRC_CLI, "4"}, {CONFIG_SRC_CLI, "6"}}, 2, "6", CONFIG_SRC_CLI},
    {{{CONFIG_SRC_DEFAULT, "9"}}, 1, "9", CONFIG_SRC_DEFAULT},
};

START_TEST(precedence_of_sources)
{
    struct config *cfg = core_config();
    char err[256] = "", got[32];

    for (size_t k = 0; k < precedence_cases[_i].n; k++)
        ck_assert_int_eq(config_set(cfg, "workers", precedence_cases[_i].steps[k].value,
                                    precedence_cases[_i].steps[k].src, "test", err, sizeof(err)),
                         0);
    value_text(cfg, "workers", got, sizeof(got));
    ck_assert_str_eq(got, precedence_cases[_i].want);
    ck_assert_int_eq(config_source_of(cfg, "workers"), precedence_cases[_i].want_src);
    config_free(cfg);
}
END_TEST

static void
assert_binds(struct config *cfg, const char *const *want, size_t n)
{
    ck_assert_uint_eq(config_list_len(cfg, "bind"), n);
    for (size_t k = 0; k < n; k++)
        ck_assert_str_eq(config_list_get(cfg, "bind", k), want[k]);
}

START_TEST(lists_replace_across_sources_and_append_within)
{
    struct config *cfg = core_config();
    const char *const two[] = {"x", "y"};
    char err[256] = "";

    ck_assert_int_eq(config_set(cfg, "bind", "a", CONFIG_SRC_FILE, "f", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "bind", "b", CONFIG_SRC_FILE, "f", err, sizeof(err)), 0);
    assert_binds(cfg, (const char *const[]){"a", "b"}, 2); /* the default went away */
    ck_assert_int_eq(config_set(cfg, "bind", "c", CONFIG_SRC_ENV, "e", err, sizeof(err)), 0);
    assert_binds(cfg, (const char *const[]){"c"}, 1);
    ck_assert_int_eq(config_set(cfg, "bind", "d", CONFIG_SRC_CLI, "c", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "bind", "e", CONFIG_SRC_CLI, "c", err, sizeof(err)), 0);
    assert_binds(cfg, (const char *const[]){"d", "e"}, 2);
    ck_assert_int_eq(config_set(cfg, "bind", "lower", CONFIG_SRC_FILE, "f", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set_list(cfg, "bind", two, 2, CONFIG_SRC_ENV, "e", err, sizeof(err)),
                     0);
    assert_binds(cfg, (const char *const[]){"d", "e"}, 2);
    /* A whole list replaces, even within one source. */
    ck_assert_int_eq(config_set_list(cfg, "bind", two, 2, CONFIG_SRC_CLI, "c", err, sizeof(err)),
                     0);
    assert_binds(cfg, two, 2);
    ck_assert_int_eq(config_set_list(cfg, "bind", NULL, 0, CONFIG_SRC_CLI, "c", err, sizeof(err)),
                     0);
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 0);
    config_free(cfg);
}
END_TEST

START_TEST(unknown_setting_suggests)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(config_set(cfg, "wokers", "2", CONFIG_SRC_FILE, "q.lua:3", err, sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "q.lua:3: unknown setting 'wokers'; did you mean 'workers'?");
    ck_assert_int_eq(
        config_set_int(cfg, "keep_alive", 2, CONFIG_SRC_FILE, "q.lua:4", err, sizeof(err)),
        -ENOENT);
    ck_assert_str_eq(err, "q.lua:4: unknown setting 'keep_alive'; did you mean 'keepalive'?");
    ck_assert_int_eq(config_set(cfg, "zzzzzzzz", "1", CONFIG_SRC_FILE, "q.lua:5", err, sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "q.lua:5: unknown setting 'zzzzzzzz'");
    config_free(cfg);
}
END_TEST

START_TEST(suggest_flags_and_names)
{
    struct config *cfg = core_config();
    char buf[64];

    ck_assert_uint_gt(config_suggest(cfg, "--wokers", true, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "--workers");
    ck_assert_uint_gt(config_suggest(cfg, "--keepalive", true, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "--keep-alive");
    ck_assert_uint_gt(config_suggest(cfg, "preload", false, buf, sizeof(buf)), 0);
    ck_assert_str_eq(buf, "preload_app");
    ck_assert_uint_eq(config_suggest(cfg, "--frobnicate", true, buf, sizeof(buf)), 0);
    config_free(cfg);
}
END_TEST

START_TEST(pending_resolved_after_plugin_registers)
{
    struct config *cfg = core_config();
    const char *const paths[] = {"/a", "/b"};
    char err[256] = "";

    config_set_lenient(cfg, true);
    ck_assert_int_eq(config_set(cfg, "strands", "4", CONFIG_SRC_FILE, "q.lua:1", err, sizeof(err)),
                     0);
    ck_assert_int_eq(
        config_set_bool(cfg, "spooling", false, CONFIG_SRC_FILE, "q.lua:2", err, sizeof(err)), 0);
    ck_assert_int_eq(
        config_set_list(cfg, "pythonpath", paths, 2, CONFIG_SRC_FILE, "q.lua:3", err, sizeof(err)),
        0);
    ck_assert_ptr_null(config_find(cfg, "strands"));
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    /* Registered, not yet resolved: defaults. */
    ck_assert_int_eq(config_int(cfg, "strands"), 1);
    ck_assert(config_bool(cfg, "spooling"));
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(config_int(cfg, "strands"), 4);
    ck_assert_int_eq(config_source_of(cfg, "strands"), CONFIG_SRC_FILE);
    ck_assert(!config_bool(cfg, "spooling"));
    ck_assert_uint_eq(config_list_len(cfg, "pythonpath"), 2);
    ck_assert_str_eq(config_list_get(cfg, "pythonpath", 1), "/b");
    /* Resolved items are gone: resolving again changes nothing. */
    ck_assert_int_eq(config_set(cfg, "strands", "2", CONFIG_SRC_FILE, "q.lua:9", err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(config_int(cfg, "strands"), 2);
    config_free(cfg);
}
END_TEST

START_TEST(pending_respects_precedence_and_reports_unknown)
{
    struct config *cfg = core_config();
    char err[256] = "";

    config_set_lenient(cfg, true);
    ck_assert_int_eq(config_set(cfg, "strands", "4", CONFIG_SRC_FILE, "q.lua:1", err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_set(cfg, "strand", "4", CONFIG_SRC_FILE, "q.lua:7", err, sizeof(err)),
                     0);
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    /* The command line, parsed before resolution, still wins over the file. */
    ck_assert_int_eq(config_set(cfg, "strands", "8", CONFIG_SRC_CLI, "--strands", err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), -ENOENT);
    ck_assert_str_eq(err, "q.lua:7: unknown setting 'strand'; did you mean 'strands'?");
    ck_assert_int_eq(config_int(cfg, "strands"), 8);
    config_free(cfg);
}
END_TEST

/* Runs config_set_value(NAME, V, FLAGS) with stderr (the log before log_open) captured in OUT. */
static int
set_value_logged(struct config *cfg, const char *name, const struct qln_cfg_value *v,
                 uint32_t flags, char *out, size_t outlen)
{
    char path[64], err[256] = "";
    int saved = dup(2), fd, rc;
    ssize_t n;

    snprintf(path, sizeof(path), "/tmp/qilin-ut-config-%d.err", (int)getpid());
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    dup2(fd, 2);
    rc = config_set_value(cfg, name, v, flags, CONFIG_SRC_FILE, "g.py:4", err, sizeof(err));
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    n = pread(fd, out, outlen - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

START_TEST(optional_settings_warn_instead_of_failing)
{
    struct config *cfg = core_config();
    const struct qln_cfg_value four = {.type = QLN_OPT_INT, .i = 4};
    const struct qln_cfg_value text = {.type = QLN_OPT_STRING, .s = "/tmp/uploads"};
    char out[512], err[256] = "";

    /* Known: set like any file value, no warning. */
    ck_assert_int_eq(set_value_logged(cfg, "workers", &four, QLN_CFG_OPTIONAL, out, sizeof(out)),
                     0);
    ck_assert_int_eq(config_int(cfg, "workers"), 4);
    ck_assert_str_eq(out, "");
    /* Unknown and not optional: the usual error. */
    ck_assert_int_eq(set_value_logged(cfg, "tmp_upload_dir", &text, 0, out, sizeof(out)), -ENOENT);
    /* Unknown and optional: one warning naming it, and no error. */
    ck_assert_int_eq(
        set_value_logged(cfg, "tmp_upload_dir", &text, QLN_CFG_OPTIONAL, out, sizeof(out)), 0);
    ck_assert_ptr_nonnull(
        strstr(out, "g.py:4: setting 'tmp_upload_dir' is not supported by qilin; ignored\n"));
    /* While plugins load, an optional item waits; a plugin may still add it. */
    config_set_lenient(cfg, true);
    ck_assert_int_eq(set_value_logged(cfg, "strands", &four, QLN_CFG_OPTIONAL, out, sizeof(out)),
                     0);
    ck_assert_int_eq(
        set_value_logged(cfg, "tmp_upload_dir", &text, QLN_CFG_OPTIONAL, out, sizeof(out)), 0);
    ck_assert_str_eq(out, "");
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(config_int(cfg, "strands"), 4);
    config_free(cfg);
}
END_TEST

START_TEST(pending_wrong_type_fails_on_resolve)
{
    struct config *cfg = core_config();
    char err[256] = "";

    config_set_lenient(cfg, true);
    ck_assert_int_eq(
        config_set_bool(cfg, "strands", true, CONFIG_SRC_FILE, "q.lua:2", err, sizeof(err)), 0);
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "q.lua:2: setting 'strands' must be an integer, got a boolean");
    config_free(cfg);
}
END_TEST

static const struct qln_option dup_name[] = {
    {.name = "workers", .cli = "--workers-again", .type = QLN_OPT_INT},
    {.name = NULL},
};
static const struct qln_option dup_flag[] = {
    {.name = "fresh", .cli = "-w,--fresh", .type = QLN_OPT_INT},
    {.name = NULL},
};
static const struct qln_option dup_in_table[] = {
    {.name = "one", .cli = "--same", .type = QLN_OPT_INT},
    {.name = "two", .cli = "--same", .type = QLN_OPT_INT},
    {.name = NULL},
};
static const struct qln_option reserved[] = {
    {.name = "helpful", .cli = "-h", .type = QLN_OPT_BOOL},
    {.name = NULL},
};
static const struct qln_option bad_name[] = {
    {.name = "Bad-Name", .type = QLN_OPT_INT},
    {.name = NULL},
};
static const struct qln_option bad_flag[] = {
    {.name = "fine", .cli = "fine", .type = QLN_OPT_INT},
    {.name = NULL},
};
static const struct qln_option bad_default[] = {
    {.name = "good_one", .cli = "--good-one", .type = QLN_OPT_INT, .def = "1"},
    {.name = "bad_one", .cli = "--bad-one", .type = QLN_OPT_INT, .def = "x"},
    {.name = NULL},
};

static const struct {
    const struct qln_option *table;
    int rc;
    const char *err;
} register_cases[] = {
    {dup_name, -EEXIST, "option 'workers' (plug) is already defined by 'core'"},
    {dup_flag, -EEXIST,
     "option 'fresh' (plug): flag '-w' is already used by option 'workers' (core)"},
    {dup_in_table, -EEXIST,
     "option 'two' (plug): flag '--same' is already used by option 'one' (plug)"},
    {reserved, -EEXIST, "option 'helpful' (plug): flag '-h' is reserved by qilin itself"},
    {bad_name, -EINVAL, "option 'Bad-Name' (plug): name must be snake_case"},
    {bad_flag, -EINVAL, "option 'fine' (plug): malformed flag 'fine' (expected -x or --name)"},
    {bad_default, -EINVAL,
     "option table of 'plug': bad default for setting 'bad_one': invalid integer 'x' (expected a"
     " number)"},
};

START_TEST(register_rejects_conflicts)
{
    struct config *cfg = core_config();
    char err[256] = "";
    size_t before = 0;

    while (config_option_at(cfg, before, NULL) != NULL)
        before++;
    ck_assert_int_eq(config_register(cfg, register_cases[_i].table, "plug", err, sizeof(err)),
                     register_cases[_i].rc);
    ck_assert_str_eq(err, register_cases[_i].err);
    /* Nothing of a refused table stays registered. */
    ck_assert_ptr_null(config_option_at(cfg, before, NULL));
    ck_assert_ptr_null(config_find(cfg, "good_one"));
    config_free(cfg);
}
END_TEST

START_TEST(lookup_and_iteration)
{
    struct config *cfg = core_config();
    const struct qln_option *o;
    const char *owner = NULL;
    char err[256] = "";
    size_t n = 0;

    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_str_eq(config_find_flag(cfg, "-b")->name, "bind");
    ck_assert_str_eq(config_find_flag(cfg, "--bind")->name, "bind");
    ck_assert_str_eq(config_find_flag(cfg, "--limit-request-field_size")->name,
                     "limit_request_field_size");
    ck_assert_str_eq(config_find_flag(cfg, "--limit-request-field-size")->name,
                     "limit_request_field_size");
    ck_assert_str_eq(config_find_flag(cfg, "--strands")->name, "strands");
    ck_assert_ptr_null(config_find_flag(cfg, "--bin"));
    ck_assert_ptr_null(config_find_flag(cfg, "bind"));
    ck_assert_ptr_null(config_find(cfg, "--bind"));
    ck_assert_str_eq(config_option_at(cfg, 0, &owner)->name, core_options[0].name);
    ck_assert_str_eq(owner, "core");
    while ((o = config_option_at(cfg, n, &owner)) != NULL)
        n++;
    ck_assert_str_eq(config_option_at(cfg, n - 1, &owner)->name, "pythonpath");
    ck_assert_str_eq(owner, "gthread");
    config_free(cfg);
}
END_TEST

/* The line of --print-config output OUT that shows NAME, or NULL. */
static const char *
printed_line(const char *out, const char *name)
{
    size_t len = strlen(name);

    for (const char *line = out; line != NULL && *line; line = strchr(line, '\n')) {
        line += *line == '\n';
        if (strncmp(line, name, len) == 0 && line[len] == ' ')
            return line;
    }
    return NULL;
}

/* The value printed on NAME's line, after the aligned "= ". */
static char *
printed_value(const char *out, const char *name)
{
    static char value[256];
    const char *line = printed_line(out, name), *p, *end;

    if (line == NULL)
        return NULL;
    p = line + strlen(name);
    p += strspn(p, " ");
    if (strncmp(p, "= ", 2) != 0)
        return NULL;
    end = strchr(p, '\n');
    snprintf(value, sizeof(value), "%.*s", (int)(end - p - 2), p + 2);
    return value;
}

START_TEST(print_config_like_gunicorn)
{
    struct config *cfg = core_config();
    char err[256] = "", *out = NULL;
    size_t len = 0;
    FILE *f;
    const char *order[] = {"access_log_format", "accesslog", "backlog", "bind", "workers"};
    const char *prev = NULL;

    ck_assert_int_eq(
        config_set(cfg, "bind", "unix:/tmp/it's.sock", CONFIG_SRC_CLI, "-b", err, sizeof(err)), 0);
    ck_assert_int_eq(
        config_set(cfg, "bind", "127.0.0.1:9000", CONFIG_SRC_CLI, "-b", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "workers", "3", CONFIG_SRC_CLI, "-w", err, sizeof(err)), 0);
    f = open_memstream(&out, &len);
    config_print(cfg, f);
    fclose(f);
    ck_assert_str_eq(printed_value(out, "workers"), "3");
    ck_assert_str_eq(printed_value(out, "bind"), "[\"unix:/tmp/it's.sock\", '127.0.0.1:9000']");
    ck_assert_str_eq(printed_value(out, "accesslog"), "None");
    ck_assert_str_eq(printed_value(out, "preload_app"), "False");
    ck_assert_str_eq(printed_value(out, "plugin"), "[]");
    ck_assert_str_eq(printed_value(out, "loglevel"), "info");
    ck_assert_str_eq(printed_value(out, "wsgi_app"), "None");
    /* Sorted by name, and the "=" aligned as gunicorn does. */
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        const char *at = printed_line(out, order[k]);

        ck_assert_msg(at != NULL && (prev == NULL || at > prev), "%s out of order", order[k]);
        prev = at;
    }
    /* The longest name takes one space before its "="; the others line up. */
    ck_assert_ptr_nonnull(strstr(out, "\npermit_unconventional_http_version = False\n"));
    ck_assert_ptr_nonnull(strstr(out, "\nworkers                            = 3\n"));
    free(out);
    config_free(cfg);
}
END_TEST

START_TEST(plugin_readers_go_through_ctx)
{
    struct config *cfg = core_config();
    char *argv[] = {"qilin", "app:app", NULL};
    struct qln_ctx ctx = {.cfg = cfg, .argc = 2, .argv = argv};
    char err[256] = "";

    ck_assert_int_eq(config_set(cfg, "accesslog", "-", CONFIG_SRC_CLI, "x", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "reuse_port", "true", CONFIG_SRC_CLI, "x", err, sizeof(err)),
                     0);
    ck_assert_int_eq(qln_cfg_int(&ctx, "backlog"), 2048);
    ck_assert(qln_cfg_bool(&ctx, "reuse_port"));
    ck_assert_str_eq(qln_cfg_str(&ctx, "accesslog"), "-");
    ck_assert_ptr_null(qln_cfg_str(&ctx, "pidfile"));
    ck_assert_uint_eq(qln_cfg_list_len(&ctx, "bind"), 1);
    ck_assert_str_eq(qln_cfg_list_get(&ctx, "bind", 0), "127.0.0.1:8000");
    ck_assert_int_eq(qln_ctx_argc(&ctx), 2);
    ck_assert_str_eq(qln_ctx_argv(&ctx)[1], "app:app");
    config_free(cfg);
}
END_TEST

START_TEST(reader_of_wrong_type_aborts)
{
    struct config *cfg = core_config();

    config_int(cfg, "bind");
}
END_TEST

START_TEST(reader_of_unknown_name_aborts)
{
    struct config *cfg = core_config();

    config_str(cfg, "no_such_option");
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("registry");

    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, defaults_follow_gunicorn);
    tcase_add_test(tc, environment_defaults);
    tcase_add_loop_test(tc, typed_values_and_bounds, 0,
                        (int)(sizeof(typed_cases) / sizeof(typed_cases[0])));
    tcase_add_test(tc, typed_setters_check_type_and_range);
    tcase_add_loop_test(tc, precedence_of_sources, 0,
                        (int)(sizeof(precedence_cases) / sizeof(precedence_cases[0])));
    tcase_add_test(tc, lists_replace_across_sources_and_append_within);
    tcase_add_test(tc, unknown_setting_suggests);
    tcase_add_test(tc, suggest_flags_and_names);
    tcase_add_test(tc, pending_resolved_after_plugin_registers);
    tcase_add_test(tc, pending_respects_precedence_and_reports_unknown);
    tcase_add_test(tc, pending_wrong_type_fails_on_resolve);
    tcase_add_loop_test(tc, register_rejects_conflicts, 0,
                        (int)(sizeof(register_cases) / sizeof(register_cases[0])));
    tcase_add_test(tc, lookup_and_iteration);
    tcase_add_test(tc, print_config_like_gunicorn);
    tcase_add_test(tc, plugin_readers_go_through_ctx);
    tcase_add_test(tc, optional_settings_warn_instead_of_failing);
    tcase_add_test_raise_signal(tc, reader_of_wrong_type_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, reader_of_unknown_name_aborts, SIGABRT);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
