/*
 * Unit tests for core/cli.c: $QILIN_CMD_ARGS splitting, the early scan, the
 * full parse in every flag form, errors with "did you mean", and --help.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <qilin/option.h>

#include "core/cli.h"
#include "core/config.h"

#define MAX_ARGS 16

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

/* The core registers threads itself, hence a made-up "strands". */
static const struct qln_option plugin_options[] = {
    {.name = "strands",
     .cli = "--strands",
     .type = QLN_OPT_INT,
     .def = "1",
     .metavar = "INT",
     .section = "Threads",
     .help = "The number of worker threads for handling requests.",
     .min = 1},
    {.name = "spooling",
     .cli = "--no-spooling",
     .type = QLN_OPT_BOOL,
     .def = "true",
     .section = "Threads",
     .help = "Disable spooling.",
     .flags = QLN_OPT_NEGATE},
    {.name = NULL},
};

/* Parses a NULL-terminated argv (argv[0] added) at SRC; returns cli_parse's result. */
static int
parse(struct config *cfg, enum config_source src, char *err, size_t errlen, const char *const *args)
{
    char *argv[MAX_ARGS + 2] = {"qilin"};
    int argc = 1;

    while (args[argc - 1] != NULL)
        argv[argc] = (char *)args[argc - 1], argc++;
    return cli_parse(cfg, argc, argv, src, err, errlen);
}

#define ARGS(...) ((const char *[]){__VA_ARGS__, NULL})

/* ---- cli_split ---------------------------------------------------------- */

static const struct {
    const char *text;
    const char *want[6]; /* after argv[0]; NULL-terminated */
} split_cases[] = {
    {"", {NULL}},
    {"   \t ", {NULL}},
    {"-w 3 -b 127.0.0.1:9000", {"-w", "3", "-b", "127.0.0.1:9000", NULL}},
    {"  --name   'my app'  ", {"--name", "my app", NULL}},
    {"--name \"a \\\"b\\\" c\"", {"--name", "a \"b\" c", NULL}},
    {"a\\ b c", {"a b", "c", NULL}},
    {"'' \"\"", {"", "", NULL}},
    {"\"x\"'y'z", {"xyz", NULL}},
    {"'back\\slash' \"d\\q\"", {"back\\slash", "d\\q", NULL}},
    {"--access-logformat='%(h)s \"%(r)s\"'", {"--access-logformat=%(h)s \"%(r)s\"", NULL}},
};

START_TEST(split_like_a_shell)
{
    int argc = -1;
    char **argv = NULL;
    char err[256] = "";
    size_t n = 0;

    ck_assert_int_eq(cli_split(split_cases[_i].text, &argc, &argv, err, sizeof(err)), 0);
    ck_assert_str_eq(argv[0], "qilin");
    while (split_cases[_i].want[n] != NULL) {
        ck_assert_int_gt(argc, (int)n + 1);
        ck_assert_str_eq(argv[n + 1], split_cases[_i].want[n]);
        n++;
    }
    ck_assert_int_eq(argc, (int)n + 1);
    ck_assert_ptr_null(argv[argc]);
    cli_argv_free(argv);
}
END_TEST

START_TEST(split_rejects_unbalanced_quotes)
{
    static const char *const bad[] = {"-n 'abc", "-n \"abc", "-n abc\\", "\"a\\\""};
    char err[256];
    char **argv = NULL;
    int argc = 0;

    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        err[0] = '\0';
        ck_assert_int_eq(cli_split(bad[k], &argc, &argv, err, sizeof(err)), CONFIG_EUSAGE);
        ck_assert_msg(strstr(err, bad[k]) != NULL, "%s", err);
    }
    ck_assert_ptr_null(argv);
    cli_argv_free(NULL);
}
END_TEST

/* ---- cli_parse ---------------------------------------------------------- */

START_TEST(parse_value_forms)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--workers=3")), 0);
    ck_assert_int_eq(config_int(cfg, "workers"), 3);
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--workers", "4")), 0);
    ck_assert_int_eq(config_int(cfg, "workers"), 4);
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("-w5")), 0);
    ck_assert_int_eq(config_int(cfg, "workers"), 5);
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("-w", "6")), 0);
    ck_assert_int_eq(config_int(cfg, "workers"), 6);
    ck_assert_int_eq(config_source_of(cfg, "workers"), CONFIG_SRC_CLI);
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err),
                           ARGS("-b127.0.0.1:1", "--bind", "127.0.0.1:2", "--bind=unix:/x")),
                     0);
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 3);
    ck_assert_str_eq(config_list_get(cfg, "bind", 0), "127.0.0.1:1");
    ck_assert_str_eq(config_list_get(cfg, "bind", 2), "unix:/x");
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err),
                           ARGS("--preload", "--access-logfile", "-", "-p/run/q.pid",
                                "--limit-request-field_size", "100", "--log-level=DEBUG")),
                     0);
    ck_assert(config_bool(cfg, "preload_app"));
    ck_assert_str_eq(config_str(cfg, "accesslog"), "-");
    ck_assert_str_eq(config_str(cfg, "pidfile"), "/run/q.pid");
    ck_assert_int_eq(config_int(cfg, "limit_request_field_size"), 100);
    ck_assert_str_eq(config_str(cfg, "loglevel"), "DEBUG"); /* as given: levels are caseless */
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--preload=no")), 0);
    ck_assert(!config_bool(cfg, "preload_app"));
    config_free(cfg);
}
END_TEST

START_TEST(parse_positional_app)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err),
                           ARGS("-w", "2", "myapp:app", "--timeout", "5")),
                     0);
    ck_assert_str_eq(config_str(cfg, "wsgi_app"), "myapp:app");
    ck_assert_int_eq(config_int(cfg, "timeout"), 5);
    config_free(cfg);

    cfg = core_config();
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--", "-odd:app")), 0);
    ck_assert_str_eq(config_str(cfg, "wsgi_app"), "-odd:app");
    config_free(cfg);
}
END_TEST

START_TEST(parse_two_positionals_is_an_error)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("a:app", "b:app")), CONFIG_EUSAGE);
    ck_assert_str_eq(err, "unexpected extra argument 'b:app' after APP_MODULE 'a:app' (give one"
                          " application)");
    config_free(cfg);
}
END_TEST

/* RC: CONFIG_EUSAGE for a malformed command line, -EINVAL for a wrong value. */
static const struct {
    const char *args[4];
    enum config_source src;
    const char *err;
    int rc;
} parse_errors[] = {
    {{"--frobnicate"}, CONFIG_SRC_CLI, "unrecognized option '--frobnicate' (see qilin --help)", CONFIG_EUSAGE},
    {{"--wokers", "2"},
     CONFIG_SRC_CLI,
     "unrecognized option '--wokers'; did you mean '--workers'? (see qilin --help)", CONFIG_EUSAGE},
    {{"--keepalive=5"},
     CONFIG_SRC_CLI,
     "unrecognized option '--keepalive'; did you mean '--keep-alive'? (see qilin --help)", CONFIG_EUSAGE},
    {{"-Z"}, CONFIG_SRC_CLI, "unrecognized option '-Z' (see qilin --help)", CONFIG_EUSAGE},
    {{"--frobnicate"}, CONFIG_SRC_ENV, "unrecognized option '--frobnicate' (see qilin --help)", CONFIG_EUSAGE},
    {{"--workers"}, CONFIG_SRC_CLI, "option '--workers' requires a value (--workers INT)", CONFIG_EUSAGE},
    {{"-w", "abc"}, CONFIG_SRC_CLI, "-w: invalid integer 'abc' (expected a number >= 1)", CONFIG_EUSAGE},
    {{"--workers=abc"},
     CONFIG_SRC_CLI,
     "--workers: invalid integer 'abc' (expected a number >= 1)", CONFIG_EUSAGE},
    /* Well-formed but wrong: not a usage error (exit 1, not 2). */
    {{"--workers", "0"}, CONFIG_SRC_ENV, "--workers: 0 is out of range (expected a number >= 1)",
     -EINVAL},
    {{"--preload=perhaps"},
     CONFIG_SRC_CLI,
     "--preload: invalid boolean 'perhaps' (expected true or false)", CONFIG_EUSAGE},
};

START_TEST(parse_reports_errors)
{
    struct config *cfg = core_config();
    char *argv[6] = {"qilin"};
    char err[256] = "";
    int argc = 1;

    while (argc < 5 && parse_errors[_i].args[argc - 1] != NULL)
        argv[argc] = (char *)parse_errors[_i].args[argc - 1], argc++;
    ck_assert_int_eq(cli_parse(cfg, argc, argv, parse_errors[_i].src, err, sizeof(err)),
                     parse_errors[_i].rc);
    ck_assert_str_eq(err, parse_errors[_i].err);
    ck_assert_int_eq(config_int(cfg, "workers"), 1);
    config_free(cfg);
}
END_TEST

START_TEST(parse_ignores_help_and_version)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err),
                           ARGS("-h", "--help", "-v", "--version", "-w", "2")),
                     0);
    ck_assert_int_eq(config_int(cfg, "workers"), 2);
    config_free(cfg);
}
END_TEST

START_TEST(parse_bool_flags)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert(config_bool(cfg, "spooling"));
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--no-spooling")), 0);
    ck_assert(!config_bool(cfg, "spooling"));
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--no-spooling=yes")),
                     CONFIG_EUSAGE);
    ck_assert_str_eq(err, "option '--no-spooling' takes no value (got 'yes')");
    config_free(cfg);
}
END_TEST

/* ---- early scan and the whole startup sequence -------------------------- */

START_TEST(early_scan_finds_plugins_and_config)
{
    struct config *cfg = core_config();
    struct cli_early early = {0};
    char err[256] = "";
    char *argv[] = {"qilin",     "--strands", "4",         "-c", "conf.lua",
                    "--plugin",  "python3",   "-w",        "7",  "--plugin=gthread",
                    "-kgthread", "app:app",   "--version", NULL};
    int argc = (int)(sizeof(argv) / sizeof(argv[0])) - 1;

    ck_assert_int_eq(cli_scan_early(cfg, argc, argv, CONFIG_SRC_CLI, &early, err, sizeof(err)), 0);
    ck_assert_str_eq(early.config_file, "conf.lua");
    ck_assert(early.version);
    ck_assert(!early.help);
    ck_assert_str_eq(config_str(cfg, "config"), "conf.lua");
    ck_assert_str_eq(config_str(cfg, "worker_class"), "gthread");
    ck_assert_uint_eq(config_list_len(cfg, "plugin"), 2);
    ck_assert_str_eq(config_list_get(cfg, "plugin", 0), "python3");
    ck_assert_str_eq(config_list_get(cfg, "plugin", 1), "gthread");
    /* Not early: left for the full parse. */
    ck_assert_int_eq(config_int(cfg, "workers"), 1);
    ck_assert_ptr_null(config_str(cfg, "wsgi_app"));

    /* The plugin registers --strands; the full parse over the same argv adds no plugin twice. */
    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    ck_assert_int_eq(cli_parse(cfg, argc, argv, CONFIG_SRC_CLI, err, sizeof(err)), 0);
    ck_assert_uint_eq(config_list_len(cfg, "plugin"), 2);
    ck_assert_int_eq(config_int(cfg, "strands"), 4);
    ck_assert_int_eq(config_int(cfg, "workers"), 7);
    ck_assert_str_eq(config_str(cfg, "wsgi_app"), "app:app");
    config_free(cfg);
}
END_TEST

START_TEST(early_scan_needs_values)
{
    struct config *cfg = core_config();
    struct cli_early early = {0};
    char err[256] = "";
    char *argv[] = {"qilin", "-h", "--config", NULL};

    ck_assert_int_eq(cli_scan_early(cfg, 3, argv, CONFIG_SRC_CLI, &early, err, sizeof(err)),
                     CONFIG_EUSAGE);
    ck_assert_str_eq(err, "option '--config' requires a value (--config CONFIG)");
    ck_assert(early.help);
    config_free(cfg);
}
END_TEST

/* The order main.c follows: env scan, CLI scan, file, plugins, then env and CLI in full. */
START_TEST(precedence_through_startup)
{
    struct config *cfg = core_config();
    struct cli_early early = {0};
    char err[256] = "";
    char **env = NULL;
    int envc = 0;
    char *argv[] = {"qilin", "-w", "5", "--plugin", "cli-plugin", NULL};

    ck_assert_int_eq(
        cli_split("-w 2 -b 127.0.0.1:7000 --plugin env-plugin -t 9", &envc, &env, err, sizeof(err)),
        0);
    ck_assert_int_eq(cli_scan_early(cfg, envc, env, CONFIG_SRC_ENV, &early, err, sizeof(err)), 0);
    ck_assert_int_eq(cli_scan_early(cfg, 5, argv, CONFIG_SRC_CLI, &early, err, sizeof(err)), 0);
    config_set_lenient(cfg, true);
    ck_assert_int_eq(config_set(cfg, "workers", "3", CONFIG_SRC_FILE, "f:1", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "timeout", "8", CONFIG_SRC_FILE, "f:2", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(cfg, "keepalive", "7", CONFIG_SRC_FILE, "f:3", err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_set(cfg, "bind", "file", CONFIG_SRC_FILE, "f:4", err, sizeof(err)), 0);
    config_set_lenient(cfg, false);
    ck_assert_int_eq(config_resolve_pending(cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cli_parse(cfg, envc, env, CONFIG_SRC_ENV, err, sizeof(err)), 0);
    ck_assert_int_eq(cli_parse(cfg, 5, argv, CONFIG_SRC_CLI, err, sizeof(err)), 0);

    ck_assert_int_eq(config_int(cfg, "workers"), 5);   /* CLI > env > file */
    ck_assert_int_eq(config_int(cfg, "timeout"), 9);   /* env > file */
    ck_assert_int_eq(config_int(cfg, "keepalive"), 7); /* file > default */
    ck_assert_int_eq(config_int(cfg, "backlog"), 2048);
    ck_assert_uint_eq(config_list_len(cfg, "bind"), 1);
    ck_assert_str_eq(config_list_get(cfg, "bind", 0), "127.0.0.1:7000");
    ck_assert_uint_eq(config_list_len(cfg, "plugin"), 1);
    ck_assert_str_eq(config_list_get(cfg, "plugin", 0), "cli-plugin");
    cli_argv_free(env);
    config_free(cfg);
}
END_TEST

/* ---- a flag whose value may be left out (--proxy-protocol) ---------------- */

static const struct {
    const char *args[4];    /* NULL-terminated */
    const char *mode, *app; /* expected proxy_protocol and wsgi_app (NULL: unset) */
    int64_t workers;
} bare_cases[] = {
    {{"--proxy-protocol", "app:app"}, "auto", "app:app", 1}, /* before the app spec */
    {{"--proxy-protocol", "myapp"}, "auto", "myapp", 1},     /* a module without a colon */
    {{"--proxy-protocol", "-w", "3"}, "auto", NULL, 3},      /* before another flag */
    {{"-w", "2", "--proxy-protocol"}, "auto", NULL, 2},      /* the last word */
    {{"--proxy-protocol", "v2", "app:app"}, "v2", "app:app", 1},
    {{"--proxy-protocol", "OFF", "app:app"}, "off", "app:app", 1},
    {{"--proxy-protocol=v1", "app:app"}, "v1", "app:app", 1},
    {{"--proxy-protocol=true"}, "auto", NULL, 1},
    {{"--proxy-protocol=no", "app:app"}, "off", "app:app", 1},
    {{"--proxy-protocol", "--", "v1"}, "auto", "v1", 1}, /* "--": only positionals follow */
};

START_TEST(parse_bare_optional_value)
{
    struct config *cfg = core_config();
    char err[256] = "";

    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), bare_cases[_i].args), 0);
    ck_assert_str_eq(config_str(cfg, "proxy_protocol"), bare_cases[_i].mode);
    ck_assert_pstr_eq(config_str(cfg, "wsgi_app"), bare_cases[_i].app);
    ck_assert_int_eq(config_int(cfg, "workers"), bare_cases[_i].workers);
    config_free(cfg);
}
END_TEST

START_TEST(parse_bare_flag_errors)
{
    struct config *cfg = core_config();
    char err[256] = "";

    /* The word after the bare flag was no app after all: it was a bad mode. */
    ck_assert_int_eq(
        parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--proxy-protocol", "v3", "app:app")),
        CONFIG_EUSAGE);
    ck_assert_str_eq(err, "--proxy-protocol: invalid value 'v3' (expected one of: off, v1, v2,"
                          " auto; or true, false)");
    ck_assert_int_eq(parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--proxy-protocol=v9")),
                     CONFIG_EUSAGE);
    ck_assert_str_eq(err, "--proxy-protocol: invalid value 'v9' (expected one of: off, v1, v2,"
                          " auto; or true, false)");
    /* An app spec is never a mode: two of them is the usual error. */
    ck_assert_int_eq(
        parse(cfg, CONFIG_SRC_CLI, err, sizeof(err), ARGS("--proxy-protocol", "a:app", "b:app")),
        CONFIG_EUSAGE);
    ck_assert_str_eq(err, "unexpected extra argument 'b:app' after APP_MODULE 'a:app' (give one"
                          " application)");
    config_free(cfg);
}
END_TEST

/* $QILIN_CMD_ARGS and $GUNICORN_CMD_ARGS go through the same parser, with the early scan first. */
START_TEST(env_bare_optional_value)
{
    static const struct {
        const char *text, *mode;
        int64_t workers;
    } cases[] = {
        {"--proxy-protocol", "auto", 1},
        {"--proxy-protocol --workers 2", "auto", 2},
        {"--proxy-protocol v1 -w 3", "v1", 3},
        {"--proxy-protocol=v2", "v2", 1},
    };

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct config *cfg = core_config();
        struct cli_early early = {0};
        char err[256] = "", **env = NULL;
        int envc = 0;

        ck_assert_int_eq(cli_split(cases[k].text, &envc, &env, err, sizeof(err)), 0);
        ck_assert_int_eq(cli_scan_early(cfg, envc, env, CONFIG_SRC_ENV, &early, err, sizeof(err)),
                         0);
        ck_assert_int_eq(cli_parse(cfg, envc, env, CONFIG_SRC_ENV, err, sizeof(err)), 0);
        ck_assert_str_eq(config_str(cfg, "proxy_protocol"), cases[k].mode);
        ck_assert_int_eq(config_int(cfg, "workers"), cases[k].workers);
        ck_assert_ptr_null(config_str(cfg, "wsgi_app"));
        cli_argv_free(env);
        config_free(cfg);
    }
}
END_TEST

/* ---- --help ------------------------------------------------------------- */

START_TEST(help_groups_by_section)
{
    struct config *cfg = core_config();
    char err[256] = "", *out = NULL;
    size_t len = 0;
    FILE *f;
    const char *usage, *socket, *bind, *logging, *threads, *threads_opt;

    ck_assert_int_eq(config_register(cfg, plugin_options, "gthread", err, sizeof(err)), 0);
    f = open_memstream(&out, &len);
    cli_help(cfg, f);
    fclose(f);
    usage = strstr(out, "usage: qilin [OPTIONS] [APP_MODULE]\n");
    socket = strstr(out, "\nServer Socket:\n");
    bind = strstr(out, "\n  -b ADDRESS, --bind ADDRESS\n");
    logging = strstr(out, "\nLogging:\n");
    threads = strstr(out, "\nThreads:\n");
    threads_opt = strstr(out, "\n  --strands INT         The number of worker threads for handling"
                              " requests. [1]\n");
    ck_assert_ptr_eq(usage, out);
    ck_assert_ptr_nonnull(socket);
    ck_assert_msg(bind != NULL && bind > socket, "%s", out);
    ck_assert_ptr_nonnull(logging);
    ck_assert_msg(threads != NULL && threads > logging, "plugin sections come last:\n%s", out);
    ck_assert_msg(threads_opt != NULL && threads_opt > threads, "%s", out);
    ck_assert_ptr_nonnull(strstr(out, "  --no-spooling         Disable spooling. [True]\n"));
    ck_assert_ptr_nonnull(strstr(out, "[2048]"));
    ck_assert_ptr_nonnull(strstr(out, "['127.0.0.1:8000']"));
    ck_assert_ptr_nonnull(strstr(out, "--limit-request-field_size INT, --limit-request-field-size"
                                      " INT"));
    ck_assert_ptr_null(strstr(out, "wsgi_app"));
    /* A value that may be left out is in brackets. */
    ck_assert_ptr_nonnull(strstr(out, "\n  --proxy-protocol [MODE]\n"));
    /* Every line fits the terminal. */
    for (const char *p = out; *p != '\0';) {
        size_t n = strcspn(p, "\n");

        ck_assert_msg(n <= 79 || strncmp(p, "  -", 3) == 0, "long line: %.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    free(out);
    config_free(cfg);
}
END_TEST

static Suite *
cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");

    tcase_set_timeout(tc, 5);
    tcase_add_loop_test(tc, split_like_a_shell, 0,
                        (int)(sizeof(split_cases) / sizeof(split_cases[0])));
    tcase_add_test(tc, split_rejects_unbalanced_quotes);
    tcase_add_test(tc, parse_value_forms);
    tcase_add_test(tc, parse_positional_app);
    tcase_add_test(tc, parse_two_positionals_is_an_error);
    tcase_add_loop_test(tc, parse_reports_errors, 0,
                        (int)(sizeof(parse_errors) / sizeof(parse_errors[0])));
    tcase_add_test(tc, parse_ignores_help_and_version);
    tcase_add_test(tc, parse_bool_flags);
    tcase_add_loop_test(tc, parse_bare_optional_value, 0,
                        sizeof(bare_cases) / sizeof(bare_cases[0]));
    tcase_add_test(tc, parse_bare_flag_errors);
    tcase_add_test(tc, env_bare_optional_value);
    tcase_add_test(tc, early_scan_finds_plugins_and_config);
    tcase_add_test(tc, early_scan_needs_values);
    tcase_add_test(tc, precedence_through_startup);
    tcase_add_test(tc, help_groups_by_section);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(cli_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
