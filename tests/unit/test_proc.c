/*
 * Unit tests for core/proc.c (pidfile, process title) and the signal name
 * table of core/signals.c.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include "core/proc.h"
#include "core/signals.h"

static void
pid_path(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/qln-test-proc-%d.pid", (int)getpid());
    unlink(buf);
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static long
read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    long v = -1;

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fscanf(f, "%ld", &v), 1);
    fclose(f);
    return v;
}

START_TEST(pidfile_written_and_removed)
{
    char path[64], err[256] = "";

    pid_path(path, sizeof(path));
    ck_assert_int_eq(proc_pidfile_write(path, getpid(), err, sizeof(err)), 0);
    ck_assert_int_eq(read_pid(path), getpid());
    proc_pidfile_remove(path, getpid());
    ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

START_TEST(pidfile_of_live_process_refused)
{
    char path[64], err[256] = "";

    pid_path(path, sizeof(path));
    /* The parent (Check's runner) is alive and is not us. */
    snprintf(err, sizeof(err), "%d\n", (int)getppid());
    write_text(path, err);
    ck_assert_int_eq(proc_pidfile_write(path, getpid(), err, sizeof(err)), -EEXIST);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_ptr_nonnull(strstr(err, "running process"));
    ck_assert_int_eq(read_pid(path), getppid());
    unlink(path);
}
END_TEST

START_TEST(pidfile_stale_or_garbage_replaced)
{
    char path[64], err[256] = "", text[32];
    pid_t dead = fork();

    ck_assert_int_ge(dead, 0);
    if (dead == 0)
        _exit(0);
    waitpid(dead, NULL, 0);
    pid_path(path, sizeof(path));
    snprintf(text, sizeof(text), "%d\n", (int)dead);
    write_text(path, text);
    ck_assert_msg(proc_pidfile_write(path, getpid(), err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(read_pid(path), getpid());
    write_text(path, "not a pid");
    ck_assert_int_eq(proc_pidfile_write(path, getpid(), err, sizeof(err)), 0);
    ck_assert_int_eq(read_pid(path), getpid());
    unlink(path);
}
END_TEST

START_TEST(pidfile_remove_keeps_foreign_file)
{
    char path[64], text[32];

    pid_path(path, sizeof(path));
    snprintf(text, sizeof(text), "%d\n", (int)getpid() + 1);
    write_text(path, text);
    proc_pidfile_remove(path, getpid());
    ck_assert_int_eq(access(path, F_OK), 0);
    unlink(path);
}
END_TEST

START_TEST(pidfile_unwritable_dir)
{
    char err[256] = "";

    ck_assert_int_lt(proc_pidfile_write("/nonexistent-dir/q.pid", getpid(), err, sizeof(err)), 0);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/q.pid"));
}
END_TEST

START_TEST(title_sets_thread_name)
{
    char name[17] = "";

    proc_set_title("worker", "app:x");
    ck_assert_int_eq(prctl(PR_GET_NAME, name, 0, 0, 0), 0);
    ck_assert_str_eq(name, "qilin: worker");
}
END_TEST

START_TEST(title_overwrites_argv_area)
{
    /* A fake argv laid out like the kernel does: contiguous strings. */
    static char area[64] = "prog\0--flag\0value";
    char *argv[] = {area, area + 5, area + 12, NULL};

    proc_title_init(3, argv);
    proc_set_title("master", "hello:app");
    /* The original argv area is 18 bytes: the title is cut to fit, NUL-padded. */
    ck_assert_int_eq(strncmp(area, "qilin: master [he", 17), 0);
    ck_assert_int_eq(area[17], '\0');
}
END_TEST

START_TEST(signal_names)
{
    char buf[32];

    ck_assert_str_eq(signals_name(SIGTERM), "term");
    ck_assert_str_eq(signals_name(SIGTTIN), "ttin");
    ck_assert_str_eq(signals_name(SIGWINCH), "winch");
    ck_assert_str_eq(signals_name(1000), "unknown");
    ck_assert_str_eq(signals_full_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
    ck_assert_str_eq(signals_full_name(SIGUSR1, buf, sizeof(buf)), "SIGUSR1");
    ck_assert_str_eq(signals_full_name(1000, buf, sizeof(buf)), "signal 1000");
}
END_TEST

START_TEST(reset_dispositions)
{
    struct sigaction sa;

    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_DFL);
    signals_reset_dispositions();
    sigaction(SIGTERM, NULL, &sa);
    ck_assert(sa.sa_handler == SIG_DFL);
    sigaction(SIGPIPE, NULL, &sa);
    ck_assert(sa.sa_handler == SIG_IGN);
}
END_TEST

START_TEST(env_pair_set_and_rejected)
{
    char err[256] = "";

    ck_assert_int_eq(proc_setenv_pair("QILIN_UT_A=x=y z", err, sizeof(err)), 0);
    ck_assert_str_eq(getenv("QILIN_UT_A"), "x=y z");
    ck_assert_int_eq(proc_setenv_pair("QILIN_UT_B=", err, sizeof(err)), 0);
    ck_assert_str_eq(getenv("QILIN_UT_B"), "");
    ck_assert_int_eq(proc_setenv_pair("NOEQUALS", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "--env: invalid value 'NOEQUALS' (expected KEY=VALUE)");
    ck_assert_int_eq(proc_setenv_pair("=v", err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(owner_resolves_names_and_ids)
{
    struct proc_owner o;
    char err[256] = "";

    ck_assert_int_eq(proc_owner_resolve(NULL, NULL, false, &o, err, sizeof(err)), 0);
    ck_assert(!o.set_uid && !o.set_gid);
    /* A user alone brings its primary group; root is uid 0, gid 0 everywhere. */
    ck_assert_int_eq(proc_owner_resolve("root", NULL, false, &o, err, sizeof(err)), 0);
    ck_assert(o.set_uid && o.set_gid);
    ck_assert_int_eq((int)o.uid, 0);
    ck_assert_int_eq((int)o.gid, 0);
    ck_assert_str_eq(o.name, "root");
    ck_assert_int_eq(proc_owner_resolve("0", "0", true, &o, err, sizeof(err)), 0);
    ck_assert(o.initgroups);
    /* An unknown numeric id is accepted, as gunicorn does. */
    ck_assert_int_eq(proc_owner_resolve("54321", "54321", false, &o, err, sizeof(err)), 0);
    ck_assert_int_eq((int)o.uid, 54321);
    ck_assert_int_eq((int)o.gid, 54321);
    ck_assert_int_eq(proc_owner_resolve("no_such_user_ut", NULL, false, &o, err, sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "--user: no such user 'no_such_user_ut' (give a user name or uid)");
    ck_assert_int_eq(proc_owner_resolve(NULL, "no_such_group_ut", false, &o, err, sizeof(err)),
                     -ENOENT);
    ck_assert_str_eq(err, "--group: no such group 'no_such_group_ut' (give a group name or gid)");
    ck_assert_int_eq(proc_owner_resolve("54321", NULL, true, &o, err, sizeof(err)), -EINVAL);
}
END_TEST

static Suite *
proc_suite(void)
{
    Suite *s = suite_create("proc");
    TCase *tc = tcase_create("pidfile");

    tcase_add_test(tc, pidfile_written_and_removed);
    tcase_add_test(tc, pidfile_of_live_process_refused);
    tcase_add_test(tc, pidfile_stale_or_garbage_replaced);
    tcase_add_test(tc, pidfile_remove_keeps_foreign_file);
    tcase_add_test(tc, pidfile_unwritable_dir);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("title");
    tcase_add_test(tc, title_sets_thread_name);
    tcase_add_test(tc, title_overwrites_argv_area);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("signals");
    tcase_add_test(tc, signal_names);
    tcase_add_test(tc, reset_dispositions);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);

    tc = tcase_create("environment and owner");
    tcase_add_test(tc, env_pair_set_and_rejected);
    tcase_add_test(tc, owner_resolves_names_and_ids);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(proc_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
