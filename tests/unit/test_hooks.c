/*
 * Unit tests for core/hooks.c: hook names, staging and committing the Lua
 * state a config file ran in, the arguments hooks receive, that a
 * failing hook is contained, and hooks a plugin registers in C.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "core/config.h"
#include "core/hooks.h"
#include "core/lua_config.h"

static char conf_path[64];
static char out_path[64];

/* Loads TEXT as a config file (core options only); the hooks it defines are staged. */
static int
load(const char *text)
{
    struct config *cfg = config_new();
    char err[512] = "";
    FILE *f;
    int rc;

    snprintf(conf_path, sizeof(conf_path), "/tmp/qilin-ut-hooks-%d.lua", (int)getpid());
    f = fopen(conf_path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), 0);
    rc = lua_config_load(cfg, conf_path, err, sizeof(err));
    unlink(conf_path);
    config_free(cfg);
    return rc;
}

static char *
slurp(void)
{
    static char buf[4096];
    FILE *f = fopen(out_path, "r");
    size_t n = 0;

    buf[0] = '\0';
    if (f != NULL) {
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
    }
    buf[n] = '\0';
    return buf;
}

static void
write_hooks(char *buf, size_t len)
{
    snprintf(out_path, sizeof(out_path), "/tmp/qilin-ut-hooks-%d.out", (int)getpid());
    unlink(out_path);
    snprintf(
        buf, len,
        "local out = '%s'\n"
        "local n = 0\n"
        "local function note(s) local f = io.open(out, 'a'); f:write(s, '\\n'); f:close() end\n"
        "workers = 2\n"
        "function on_starting(server) n = n + 1; note('start ' .. server.pid .. ' '"
        " .. server.name .. ' ' .. n) end\n"
        "function nworkers_changed(server, new, old) note('n ' .. new .. ' ' .. old) end\n"
        "function pre_fork(server, worker) error('pre_fork broke') end\n",
        out_path);
}

START_TEST(names)
{
    ck_assert_int_eq(hooks_lookup("on_starting"), HOOK_ON_STARTING);
    ck_assert_int_eq(hooks_lookup("post_request"), HOOK_POST_REQUEST);
    ck_assert_int_eq(hooks_lookup("on_exit"), HOOK_ON_EXIT);
    ck_assert_int_eq(hooks_lookup("on_startng"), -1);
    ck_assert_int_eq(hooks_lookup("workers"), -1);
}
END_TEST

START_TEST(staged_hooks_run_only_after_commit)
{
    const struct qln_hook_field sf[] = {{.key = "pid", .i = 42}, {.key = "name", .s = "site"}};
    const struct qln_hook_arg server = {.f = sf, .n = 2};
    const struct qln_hook_field nf[] = {{.key = NULL, .i = 3}};
    const struct qln_hook_field of[] = {{.key = NULL, .i = 2}};
    const struct qln_hook_arg counts[] = {server, {.f = nf, .n = 1}, {.f = of, .n = 1}};
    char text[2048];

    write_hooks(text, sizeof(text));
    ck_assert_int_eq(load(text), 0);
    ck_assert(!hooks_have(HOOK_ON_STARTING));
    hooks_call(HOOK_ON_STARTING, &server, 1);
    ck_assert_str_eq(slurp(), "");

    hooks_commit();
    ck_assert(hooks_have(HOOK_ON_STARTING));
    ck_assert(!hooks_have(HOOK_ON_EXIT));
    hooks_call(HOOK_ON_STARTING, &server, 1);
    hooks_call(HOOK_ON_STARTING, &server, 1);
    hooks_call(HOOK_NWORKERS_CHANGED, counts, 3);
    hooks_call(HOOK_ON_EXIT, &server, 1); /* not defined: nothing */
    /* The file's locals live on between calls (n counts). */
    ck_assert_str_eq(slurp(), "start 42 site 1\nstart 42 site 2\nn 3 2\n");

    /* A failing hook is logged and contained. */
    hooks_call(HOOK_PRE_FORK, &server, 1);
    hooks_call(HOOK_ON_STARTING, &server, 1);
    ck_assert(strstr(slurp(), "start 42 site 3\n") != NULL);

    /* A reload that fails discards what it staged; the current hooks stay. */
    ck_assert_int_eq(load("function on_starting(s) error('new') end\n"), 0);
    hooks_discard();
    hooks_call(HOOK_ON_STARTING, &server, 1);
    ck_assert(strstr(slurp(), "start 42 site 4\n") != NULL);

    /* A file without hooks replaces them with none. */
    ck_assert_int_eq(load("workers = 3\n"), 0);
    hooks_commit();
    ck_assert(!hooks_have(HOOK_ON_STARTING));
    hooks_free();
    unlink(out_path);
}
END_TEST

/* A C hook (qln_hook_register): what it saw, and how often it was released. */
static char c_seen[256];
static int c_released;

static void
c_hook(void *data, const struct qln_hook_call *call)
{
    snprintf(c_seen + strlen(c_seen), sizeof(c_seen) - strlen(c_seen), "%s %s %s %lld %s;",
             (const char *)data, call->name, call->args[0].f[0].key,
             (long long)call->args[0].f[0].i, call->req == NULL ? "noreq" : "req");
}

static void
c_release(void *data)
{
    c_released++;
}

START_TEST(c_hooks_are_staged_called_and_released)
{
    const struct qln_hook_field sf[] = {{.key = "pid", .i = 7}};
    const struct qln_hook_arg server = {.f = sf, .n = 1};

    ck_assert_int_eq(qln_hook_register(NULL, "no_such_hook", c_hook, "x", c_release), -ENOENT);
    ck_assert_int_eq(qln_hook_register(NULL, "on_starting", c_hook, "first", c_release), 0);
    /* Registered twice for one file: the later wins, the earlier is released. */
    ck_assert_int_eq(qln_hook_register(NULL, "on_starting", c_hook, "a", c_release), 0);
    ck_assert_int_eq(c_released, 1);
    ck_assert(!hooks_have(HOOK_ON_STARTING));
    hooks_commit();
    ck_assert(hooks_have(HOOK_ON_STARTING));
    hooks_call(HOOK_ON_STARTING, &server, 1);
    ck_assert_str_eq(c_seen, "a on_starting pid 7 noreq;");

    /* A failed reload drops what it staged; the current hook stays. */
    ck_assert_int_eq(qln_hook_register(NULL, "on_starting", c_hook, "b", c_release), 0);
    hooks_discard();
    ck_assert_int_eq(c_released, 2);
    hooks_call(HOOK_ON_STARTING, &server, 1);
    ck_assert_str_eq(c_seen, "a on_starting pid 7 noreq;a on_starting pid 7 noreq;");

    /* A Lua file replacing a Python one: the C hook is released, Lua's called. */
    ck_assert_int_eq(load("function on_exit(s) end\n"), 0);
    hooks_commit();
    ck_assert_int_eq(c_released, 3);
    ck_assert(!hooks_have(HOOK_ON_STARTING));
    ck_assert(hooks_have(HOOK_ON_EXIT));
    hooks_free();
}
END_TEST

static Suite *
hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("hooks");

    tcase_add_test(tc, names);
    tcase_add_test(tc, staged_hooks_run_only_after_commit);
    tcase_add_test(tc, c_hooks_are_staged_called_and_released);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(hooks_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
