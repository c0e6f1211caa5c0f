/*
 * Unit tests for core/lua_config.c: globals applied with their types, lists
 * from tables, PATH:LINE in every error (syntax, runtime, wrong type,
 * unknown setting), pending plugin settings and the qilin helpers.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <qilin/option.h>

#include "core/cli.h"
#include "core/config.h"
#include "core/lua_config.h"

/* The core registers threads itself, hence a made-up "strands". */
static const struct qln_option plugin_options[] = {
    {.name = "strands",
     .cli = "--strands",
     .type = QLN_OPT_INT,
     .def = "1",
     .metavar = "INT",
     .section = "Threads",
     .help = "Threads per worker.",
     .min = 1},
    {.name = NULL},
};

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

/* Writes TEXT to a fresh temporary .lua file whose path goes into PATH (PATHLEN bytes). */
static void
write_config(const char *text, char *path, size_t pathlen, const char *dir)
{
    int fd;
    size_t len = strlen(text);

    snprintf(path, pathlen, "%s/qilin-test-XXXXXX.lua", dir != NULL ? dir : "/tmp");
    fd = mkstemps(path, 4);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Loads TEXT as a config file; the error (if any) goes into ERR with the path replaced by "F". */
static int
load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
    char path[256], raw[512];
    size_t plen;
    int rc;

    write_config(text, path, sizeof(path), NULL);
    raw[0] = '\0';
    rc = lua_config_load(cfg, path, raw, sizeof(raw));
    unlink(path);
    plen = strlen(path);
    if (strncmp(raw, path, plen) == 0)
        snprintf(err, errlen, "F%s", raw + plen);
    else
        snprintf(err, errlen, "%s", raw);
    return rc;
}

static const char *
fixture(const char *name)
{
    static char path[1024];
    const char *dir = getenv("QILIN_TEST_FIXTURES");

    snprintf(path, sizeof(path), "%s/%s", dir != NULL ? dir : QLN_TEST_FIXTURES, name);
    return path;
}

START_TEST(fixture_applies_every_type)
{
    struct config *cfg = core_config();
    char err[512] = "";

    config_set_lenient(cfg, true);
    ck_assert_msg(lua_config_load(cfg, fixture("qilin.conf.lua"), err, sizeof(err)) == 0, "%s",
                  err);
    config_set_lenient(cfg, false);
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 2);
    ck_assert_str_eq(config_list_get(cfg, "bind", 0), "127.0.0.1:8001");
    ck_assert_str_eq(config_list_get(cfg, "bind", 1), "unix:/tmp/qilin-test.sock");
    ck_assert_int_eq(config_int(cfg, "workers"), 3);
    ck_assert_str_eq(config_str(cfg, "worker_class"), "gthread");
    ck_assert_int_eq(config_int(cfg, "timeout"), 60);
    ck_assert_int_eq(config_int(cfg, "keepalive"), 5);
    ck_assert(config_bool(cfg, "preload_app"));
    ck_assert_str_eq(config_str(cfg, "loglevel"), "warning");
    ck_assert_str_eq(config_str(cfg, "accesslog"), "-");
    ck_assert_str_eq(config_str(cfg, "wsgi_app"), "hello:app");
    ck_assert_int_eq(config_source_of(cfg, "workers"), CONFIG_SRC_FILE);
    ck_assert_int_eq(config_source_of(cfg, "backlog"), CONFIG_SRC_DEFAULT);
    /* The plugin's setting waited for its table. */
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(config_int(cfg, "strands"), 4);
    config_free(cfg);
}
END_TEST

START_TEST(globals_read_back_and_helpers)
{
    struct config *cfg = core_config();
    char err[512] = "";
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

    ck_assert_msg(load_text(cfg,
                            "workers = 2\n"
                            "workers = workers * 2 + 1\n"
                            "backlog = qilin.cpu_count()\n"
                            "proc_name = string.format('%s-%d', 'web', workers)\n"
                            "bind = '0.0.0.0:80'\n"
                            "local unused = nil\n"
                            "pidfile = nil\n",
                            err, sizeof(err)) == 0,
                  "%s", err);
    ck_assert_int_eq(config_int(cfg, "workers"), 5);
    ck_assert_int_eq(config_int(cfg, "backlog"), ncpu > 0 ? ncpu : 1);
    ck_assert_str_eq(config_str(cfg, "proc_name"), "web-5");
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 1);
    ck_assert_str_eq(config_list_get(cfg, "bind", 0), "0.0.0.0:80");
    ck_assert_ptr_null(config_str(cfg, "pidfile"));
    ck_assert_int_eq(config_source_of(cfg, "pidfile"), CONFIG_SRC_DEFAULT);
    config_free(cfg);
}
END_TEST

/* gunicorn's switch proxy_protocol = True reads as true in Lua, and means auto. */
START_TEST(proxy_protocol_takes_a_boolean)
{
    struct config *cfg = core_config();
    char err[512] = "";

    ck_assert_msg(load_text(cfg, "proxy_protocol = true\n", err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(config_str(cfg, "proxy_protocol"), "auto");
    ck_assert_msg(load_text(cfg, "proxy_protocol = false\n", err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(config_str(cfg, "proxy_protocol"), "off");
    ck_assert_msg(load_text(cfg, "proxy_protocol = 'v1'\n", err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(config_str(cfg, "proxy_protocol"), "v1");
    config_free(cfg);
}
END_TEST

/* A config text, and the error line it must give (the file's path shown as F). */
static const struct {
    const char *text;
    int rc;
    const char *err;
} error_cases[] = {
    {"workers = 2\nworkers = = 3\n", -EINVAL, "F:2: unexpected symbol near '='"},
    {"workers = 2\n\nlocal t = nil\nbacklog = t.size\n", -EINVAL,
     "F:4: attempt to index a nil value (local 't')"},
    {"error('no bind configured')\n", -EINVAL, "F:1: no bind configured"},
    {"error('plain', 0)\n", -EINVAL, "F: plain"},
    {"error({})\n", -EINVAL, "F: the config file raised a table value (use error('...'))"},
    {"timeout = 5\nworkers = \"four\"\n", -EINVAL,
     "F:2: setting 'workers' must be an integer, got string"},
    {"workers = 2.5\n", -EINVAL, "F:1: setting 'workers' must be an integer, got 2.5"},
    {"workers = 0\n", -EINVAL,
     "F:1: setting 'workers': 0 is out of range (expected a number >= 1)"},
    {"preload_app = 'yes'\n", -EINVAL, "F:1: setting 'preload_app' must be a boolean, got string"},
    {"loglevel = true\n", -EINVAL, "F:1: setting 'loglevel' must be a string, got boolean"},
    {"proxy_protocol = 'v3'\n", CONFIG_EUSAGE,
     "F:1: setting 'proxy_protocol': invalid value 'v3' (expected"
     " one of: off, v1, v2, auto; or true, false)"},
    {"bind = {'a', 2}\n", -EINVAL,
     "F:1: setting 'bind' must be a list of strings, got number at"
     " index 2"},
    {"bind = {x = 'a'}\n", -EINVAL,
     "F:1: setting 'bind' must be a list of strings like {\"a\","
     " \"b\"}, got a table with other keys"},
    {"bind = 8000\n", -EINVAL,
     "F:1: setting 'bind' must be a string or a list of strings, got"
     " number"},
    {"workers = 2\n-- note\nwokers = 3\n", -EINVAL,
     "F:3: unknown setting 'wokers'; did you mean 'workers'?"},
    {"\nfunction on_startng(server) end\n", -EINVAL,
     "F:2: unknown setting 'on_startng' (a function, but not a server hook such as on_starting,"
     " pre_fork or post_request)"},
    {"function helper() end\n", -EINVAL,
     "F:1: unknown setting 'helper' (a function, but not a server hook such as on_starting,"
     " pre_fork or post_request)"},
    {"workers = 'x'\nworkers = 3\nworkers = 'y'\n", -EINVAL,
     "F:3: setting 'workers' must be an integer, got string"},
    {"_ENV[1] = 2\n", -EINVAL, "F:1: global names must be strings, got number"},
};

START_TEST(errors_name_file_and_line)
{
    struct config *cfg = core_config();
    char err[512] = "";

    ck_assert_int_eq(load_text(cfg, error_cases[_i].text, err, sizeof(err)), error_cases[_i].rc);
    ck_assert_str_eq(err, error_cases[_i].err);
    config_free(cfg);
}
END_TEST

START_TEST(long_path_is_shown_whole)
{
    struct config *cfg = core_config();
    char dir[] = "/tmp/qilin-a-rather-long-directory-name-for-lua-chunkid-XXXXXX";
    char path[512], err[1024] = "", want[600];

    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_config("workers = 2\nbind = {\n", path, sizeof(path), dir);
    ck_assert_int_eq(lua_config_load(cfg, path, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:3: unexpected symbol near <eof>", path);
    ck_assert_str_eq(err, want);
    unlink(path);
    rmdir(dir);
    config_free(cfg);
}
END_TEST

START_TEST(missing_file)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(lua_config_load(cfg, "/nonexistent/qilin.conf.lua", err, sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "config file '/nonexistent/qilin.conf.lua' not found");
    ck_assert_int_eq(lua_config_load(cfg, "/", err, sizeof(err)), -EISDIR);
    ck_assert_str_eq(err, "config file '/': Is a directory");
    config_free(cfg);
}
END_TEST

START_TEST(unknown_waits_only_when_lenient)
{
    struct config *cfg = core_config();
    char err[256] = "";

    config_set_lenient(cfg, true);
    ck_assert_int_eq(load_text(cfg, "workers = 2\nstrand = 8\n", err, sizeof(err)), 0);
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), -ENOENT);
    ck_assert_msg(strstr(err, ":2: unknown setting 'strand'; did you mean 'strands'?") != NULL,
                  "%s", err);
    ck_assert_int_eq(config_int(cfg, "workers"), 2);
    config_free(cfg);
}
END_TEST

START_TEST(pending_keeps_lua_types)
{
    struct config *cfg = core_config();
    char err[256] = "";

    config_set_lenient(cfg, true);
    ck_assert_int_eq(load_text(cfg, "strands = true\n", err, sizeof(err)), 0);
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, ":1: setting 'strands' must be an integer, got a boolean") != NULL,
                  "%s", err);
    config_free(cfg);
}
END_TEST

START_TEST(command_line_overrides_file)
{
    struct config *cfg = core_config();
    char err[256] = "";
    char *argv[] = {"qilin", "-w", "9", NULL};

    ck_assert_int_eq(load_text(cfg, "workers = 2\nbind = {'a', 'b'}\n", err, sizeof(err)), 0);
    ck_assert_int_eq(cli_parse(cfg, 3, argv, CONFIG_SRC_CLI, err, sizeof(err)), 0);
    ck_assert_int_eq(config_int(cfg, "workers"), 9);
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 2);
    config_free(cfg);
}
END_TEST

START_TEST(binary_chunks_are_refused)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(load_text(cfg, "\x1bLua\x54", err, sizeof(err)), -EINVAL);
    ck_assert_msg(strstr(err, "attempt to load a binary chunk") != NULL, "%s", err);
    config_free(cfg);
}
END_TEST

static Suite *
lua_config_suite(void)
{
    Suite *s = suite_create("lua_config");
    TCase *tc = tcase_create("lua_config");

    tcase_set_timeout(tc, 5);
    tcase_add_test(tc, fixture_applies_every_type);
    tcase_add_test(tc, globals_read_back_and_helpers);
    tcase_add_test(tc, proxy_protocol_takes_a_boolean);
    tcase_add_loop_test(tc, errors_name_file_and_line, 0,
                        (int)(sizeof(error_cases) / sizeof(error_cases[0])));
    tcase_add_test(tc, long_path_is_shown_whole);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, unknown_waits_only_when_lenient);
    tcase_add_test(tc, pending_keeps_lua_types);
    tcase_add_test(tc, command_line_overrides_file);
    tcase_add_test(tc, binary_chunks_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(lua_config_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
