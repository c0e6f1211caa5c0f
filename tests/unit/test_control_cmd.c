/*
 * Unit tests for core/control_cmd.c: every command form the control socket
 * accepts and the one-line errors for what it refuses (table-driven), and
 * the default socket path.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include "core/control_cmd.h"

static const struct {
    const char *line;
    enum control_cmd_id id;
    long arg;
    bool quick, json;
} good[] = {
    {"help", CTL_HELP, 1, false, false},
    {"show all", CTL_SHOW_ALL, 1, false, false},
    {"show workers", CTL_SHOW_WORKERS, 1, false, false},
    {"json show workers", CTL_SHOW_WORKERS, 1, false, true},
    {"  SHOW\tStats  ", CTL_SHOW_STATS, 1, false, false},
    {"show config", CTL_SHOW_CONFIG, 1, false, false},
    {"show listeners\r", CTL_SHOW_LISTENERS, 1, false, false},
    {"worker add", CTL_WORKER_ADD, 1, false, false},
    {"worker add 3", CTL_WORKER_ADD, 3, false, false},
    {"worker remove 1000", CTL_WORKER_REMOVE, 1000, false, false},
    {"json worker kill 4242", CTL_WORKER_KILL, 4242, false, true},
    {"reload", CTL_RELOAD, 1, false, false},
    {"reopen", CTL_REOPEN, 1, false, false},
    {"shutdown", CTL_SHUTDOWN, 1, false, false},
    {"shutdown graceful", CTL_SHUTDOWN, 1, false, false},
    {"shutdown quick", CTL_SHUTDOWN, 1, true, false},
};

static const struct {
    const char *line, *err;
} bad[] = {
    {"", "no command given (try: help)"},
    {"json", "no command given (try: help)"},
    {"frob", "unknown command 'frob' (try: help)"},
    {"show", "'show' needs what to show: all, workers, stats, config or listeners"},
    {"show dirty", "cannot show 'dirty' (expected all, workers, stats, config or listeners)"},
    {"show workers now", "unexpected word 'now' after the show target"},
    {"worker", "'worker' needs an action: add [N], remove [N] or kill PID"},
    {"worker add 0", "invalid worker count '0' (expected 1 to 1000)"},
    {"worker add 1001", "invalid worker count '1001' (expected 1 to 1000)"},
    {"worker remove -1", "invalid worker count '-1' (expected 1 to 1000)"},
    {"worker kill", "'worker kill' needs the worker's pid (see: show workers)"},
    {"worker kill 12x", "invalid pid '12x' (expected a number)"},
    {"worker stop 1", "unknown worker action 'stop' (expected add, remove or kill)"},
    {"reload now", "unexpected word 'now' after the command"},
    {"shutdown fast", "unknown shutdown mode 'fast' (expected graceful or quick)"},
    {"json json help", "unknown command 'json' (try: help)"},
};

START_TEST(accepts_every_form)
{
    struct control_cmd cmd;
    char err[256] = "";

    ck_assert_int_eq(control_cmd_parse(good[_i].line, &cmd, err, sizeof(err)), 0);
    ck_assert_int_eq(cmd.id, good[_i].id);
    ck_assert_int_eq(cmd.arg, good[_i].arg);
    ck_assert_int_eq(cmd.quick, good[_i].quick);
    ck_assert_int_eq(cmd.json, good[_i].json);
}
END_TEST

START_TEST(refuses_with_one_line)
{
    struct control_cmd cmd;
    char err[256] = "";

    ck_assert_int_eq(control_cmd_parse(bad[_i].line, &cmd, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, bad[_i].err);
}
END_TEST

START_TEST(too_long_a_line)
{
    char line[CONTROL_LINE_MAX + 1], err[256];
    struct control_cmd cmd;

    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    ck_assert_int_eq(control_cmd_parse(line, &cmd, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(default_path)
{
    char path[256];

    setenv("XDG_RUNTIME_DIR", "/tmp", 1);
    ck_assert_int_eq(control_default_path(path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/tmp/qilin.ctl");
    /* Not a directory: $HOME's .qilin instead, as gunicorn's ~/.gunicorn. */
    setenv("XDG_RUNTIME_DIR", "/nonexistent-qilin-test", 1);
    setenv("HOME", "/home/someone/", 1);
    ck_assert_int_eq(control_default_path(path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/home/someone/.qilin/qilin.ctl");
    unsetenv("XDG_RUNTIME_DIR");
    setenv("HOME", "/srv", 1);
    ck_assert_int_eq(control_default_path(path, sizeof(path)), 0);
    ck_assert_str_eq(path, "/srv/.qilin/qilin.ctl");
    ck_assert_int_eq(control_default_path(path, 8), -ENAMETOOLONG);
}
END_TEST

static Suite *
control_cmd_suite(void)
{
    Suite *s = suite_create("control_cmd");
    TCase *tc = tcase_create("parse");

    tcase_add_loop_test(tc, accepts_every_form, 0, (int)(sizeof(good) / sizeof(good[0])));
    tcase_add_loop_test(tc, refuses_with_one_line, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, too_long_a_line);
    tcase_add_test(tc, default_path);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(control_cmd_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
