/*
 * Unit tests for core/plugin.c: the search path, descriptor checks on real
 * dlopened fixture plugins (tests/unit/fixtures/plugins), requires, option
 * registration and worker aliases.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <check.h>

#include <qilin/plugin.h>

#include "core/config.h"
#include "core/plugin.h"

/* Where the fixture .so files are: $QILIN_UNIT_PLUGINS, else .libs next to this binary. */
static char plugin_dir[PATH_MAX];

static void
find_plugin_dir(void)
{
    const char *env = getenv("QILIN_UNIT_PLUGINS");
    char exe[PATH_MAX - 16];
    ssize_t n;
    char *slash;

    if (env != NULL && env[0] != '\0') {
        snprintf(plugin_dir, sizeof(plugin_dir), "%s", env);
        return;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    slash = strrchr(exe, '/');
    *slash = '\0';
    /* A libtool wrapper runs the real binary from .libs already. */
    if (slash - exe >= 6 && strcmp(slash - 6, "/.libs") == 0)
        snprintf(plugin_dir, sizeof(plugin_dir), "%s", exe);
    else
        snprintf(plugin_dir, sizeof(plugin_dir), "%s/.libs", exe);
}

/* A registry with the core's options (plugin_dir among them), like the master's. */
static struct config *
new_config(void)
{
    struct config *cfg = config_new();
    char err[512];

    ck_assert_msg(config_register(cfg, core_options, "core", err, sizeof(err)) == 0, "%s", err);
    return cfg;
}

static void
setup(void)
{
    find_plugin_dir();
    setenv("QILIN_PLUGIN_PATH", plugin_dir, 1);
}

START_TEST(test_good_plugin_loads)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "";
    char want_path[PATH_MAX + 32];
    const char *owner = NULL;
    const struct qln_option *o;
    const struct loaded_plugin *lp;

    ck_assert_msg(plugin_load(&set, cfg, "good", err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(set.n, 1);
    lp = plugin_find(&set, "good");
    ck_assert_ptr_nonnull(lp);
    ck_assert_str_eq(lp->desc->name, "good");
    snprintf(want_path, sizeof(want_path), "%s/good.so", plugin_dir);
    ck_assert_str_eq(lp->path, want_path);
    ck_assert_ptr_eq(plugin_first_of_kind(&set, QLN_KIND_WORKER), lp);
    ck_assert_ptr_null(plugin_first_of_kind(&set, QLN_KIND_APP));
    ck_assert_ptr_null(plugin_find(&set, "python3"));

    /* Its option is registered, owned by the plugin, with its default. */
    ck_assert_ptr_nonnull(config_find(cfg, "good_answer"));
    ck_assert_ptr_nonnull(config_find_flag(cfg, "--good-answer"));
    ck_assert_int_eq(config_int(cfg, "good_answer"), 42);
    for (size_t i = 0; (o = config_option_at(cfg, i, &owner)) != NULL; i++)
        if (strcmp(o->name, "good_answer") == 0)
            break;
    ck_assert_ptr_nonnull(o);
    ck_assert_str_eq(owner, "good");

    /* A second load of the same name is a no-op. */
    ck_assert_int_eq(plugin_load(&set, cfg, "good", err, sizeof(err)), 0);
    ck_assert_uint_eq(set.n, 1);

    plugin_set_free(&set);
    ck_assert_uint_eq(set.n, 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_load_by_path)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "";
    char path[PATH_MAX + 32];

    unsetenv("QILIN_PLUGIN_PATH");
    snprintf(path, sizeof(path), "%s/good.so", plugin_dir);
    ck_assert_msg(plugin_load(&set, cfg, path, err, sizeof(err)) == 0, "%s", err);
    ck_assert_ptr_nonnull(plugin_find(&set, "good"));
    ck_assert_str_eq(set.items[0].path, path);
    plugin_set_free(&set);
    config_free(cfg);
}
END_TEST

/* --plugin-dir (the plugin_dir setting) is searched when $QILIN_PLUGIN_PATH has nothing. */
START_TEST(test_plugin_dir_setting)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "";

    setenv("QILIN_PLUGIN_PATH", "/nonexistent-qilin-a", 1);
    ck_assert_int_eq(
        config_set(cfg, "plugin_dir", plugin_dir, CONFIG_SRC_CLI, "--plugin-dir", err, sizeof(err)),
        0);
    ck_assert_msg(plugin_load(&set, cfg, "good", err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(set.n, 1);
    plugin_set_free(&set);
    config_free(cfg);
}
END_TEST

/*
 * $QILIN_PLUGIN_PATH wins over plugin_dir: a directory holding a broken
 * "good.so" (a copy of badabi.so) is used only when it comes first.
 */
static void
make_decoy_dir(char *dir, size_t len)
{
    char src[PATH_MAX + 32], dst[PATH_MAX + 32], buf[65536];
    int in, out;
    ssize_t n;

    snprintf(dir, len, "/tmp/qilin-test-plugin-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(src, sizeof(src), "%s/badabi.so", plugin_dir);
    snprintf(dst, sizeof(dst), "%s/good.so", dir);
    in = open(src, O_RDONLY);
    ck_assert_int_ge(in, 0);
    out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0755);
    ck_assert_int_ge(out, 0);
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ck_assert_int_eq(write(out, buf, (size_t)n), n);
    close(in);
    close(out);
}

static void
remove_decoy_dir(const char *dir)
{
    char path[PATH_MAX + 32];

    snprintf(path, sizeof(path), "%s/good.so", dir);
    unlink(path);
    rmdir(dir);
}

START_TEST(test_search_order)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "", decoy[64];
    int rc;

    make_decoy_dir(decoy, sizeof(decoy));
    /* Environment first: the real plugin wins over the decoy in plugin_dir. */
    setenv("QILIN_PLUGIN_PATH", plugin_dir, 1);
    config_set(cfg, "plugin_dir", decoy, CONFIG_SRC_CLI, "--plugin-dir", err, sizeof(err));
    ck_assert_msg(plugin_load(&set, cfg, "good", err, sizeof(err)) == 0, "%s", err);
    plugin_set_free(&set);

    /* The decoy first in the environment: it is the one loaded, and refused. */
    setenv("QILIN_PLUGIN_PATH", decoy, 1);
    rc = plugin_load(&set, cfg, "good", err, sizeof(err));
    remove_decoy_dir(decoy);
    ck_assert_int_eq(rc, QLN_EABI);
    ck_assert_msg(strstr(err, "plugin 'good' was built for qilin plugin ABI") == err, "%s", err);
    ck_assert_uint_eq(set.n, 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_not_found)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "";
    const char *want = "plugin 'nosuch' not found (searched: /nonexistent-qilin-a, "
                       "/nonexistent-qilin-b, /nonexistent-qilin-c, ";
    const char *tail = "); check --plugin-dir or QILIN_PLUGIN_PATH";

    /* An empty element (the "::") is skipped, not taken as the current directory. */
    setenv("QILIN_PLUGIN_PATH", "/nonexistent-qilin-a::/nonexistent-qilin-b", 1);
    config_set(cfg, "plugin_dir", "/nonexistent-qilin-c", CONFIG_SRC_CLI, "--plugin-dir", err,
               sizeof(err));
    ck_assert_int_eq(plugin_load(&set, cfg, "nosuch", err, sizeof(err)), -ENOENT);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_str_eq(err + strlen(err) - strlen(tail), tail);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_uint_eq(set.n, 0);
    config_free(cfg);
}
END_TEST

/* Each broken fixture: the code and the start of the one-line error. */
static const struct {
    const char *name;
    int rc;
    const char *prefix;
} broken[] = {
    {"badmagic", QLN_EABI, "plugin 'badmagic' has a bad magic number (0xdeadbeef, expected "},
    {"shortsize", QLN_EABI, "plugin 'shortsize' has a descriptor of 16 bytes, fewer than the "},
    {"nameclash", -EINVAL,
     "plugin file 'nameclash' holds plugin 'other'; a plugin's name must equal its file name: "
     "rename the file to other.so or fix the descriptor"},
    {"reserved", QLN_EABI, "plugin 'reserved' sets reserved descriptor fields"},
    {"badkind", -EINVAL, "plugin 'badkind' has kind 0x1 but no app hooks and has worker hooks"},
    {"shortops", QLN_EABI, "plugin 'shortops' has a worker hook table of 4 bytes"},
    {"needsmissing", -ENOENT,
     "plugin 'needsmissing' requires plugin 'doesnotexist', which could not be loaded: "
     "plugin 'doesnotexist' not found (searched: "},
    {"cyclea", -ELOOP,
     "plugin 'cyclea' requires plugin 'cycleb', which could not be loaded: plugin 'cycleb' "
     "requires plugin 'cyclea', which could not be loaded: plugin requirement cycle: cyclea, "
     "cycleb, then 'cyclea' again"},
};

START_TEST(test_broken_plugins)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024];
    int rc;

    rc = plugin_load(&set, cfg, broken[_i].name, err, sizeof(err));
    ck_assert_msg(rc == broken[_i].rc, "%s: rc %d, want %d (%s)", broken[_i].name, rc,
                  broken[_i].rc, err);
    ck_assert_msg(strncmp(err, broken[_i].prefix, strlen(broken[_i].prefix)) == 0, "%s: got '%s'",
                  broken[_i].name, err);
    ck_assert_ptr_null(strchr(err, '\n'));
    ck_assert_ptr_null(plugin_find(&set, broken[_i].name));
    plugin_set_free(&set);
    config_free(cfg);
}
END_TEST

/* The ABI messages in full, since users compare them with their build. */
START_TEST(test_abi_messages)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024], want[512];

    ck_assert_int_eq(plugin_load(&set, cfg, "badabi", err, sizeof(err)), QLN_EABI);
    snprintf(want, sizeof(want),
             "plugin 'badabi' was built for qilin plugin ABI %d.%d but this qilin speaks %d.%d; "
             "rebuild the plugin against this qilin's headers",
             QLN_ABI_MAJOR + 1, QLN_ABI_MINOR, QLN_ABI_MAJOR, QLN_ABI_MINOR);
    ck_assert_str_eq(err, want);

    ck_assert_int_eq(plugin_load(&set, cfg, "newminor", err, sizeof(err)), QLN_EABI);
    snprintf(want, sizeof(want),
             "plugin 'newminor' was built for qilin plugin ABI %d.%d but this qilin speaks "
             "%d.%d; rebuild the plugin against this qilin's headers",
             QLN_ABI_MAJOR, QLN_ABI_MINOR + 1, QLN_ABI_MAJOR, QLN_ABI_MINOR);
    ck_assert_str_eq(err, want);
    ck_assert_uint_eq(set.n, 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_no_symbol_and_not_elf)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024], want[PATH_MAX + 128], junk[] = "/tmp/qilin-test-junk-XXXXXX.so";
    int fd;

    ck_assert_int_eq(plugin_load(&set, cfg, "nosym", err, sizeof(err)), -ENOEXEC);
    snprintf(want, sizeof(want), "%s/nosym.so is not a qilin plugin (no qilin_plugin symbol)",
             plugin_dir);
    ck_assert_str_eq(err, want);

    fd = mkstemps(junk, 3);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not an ELF file\n", 16), 16);
    close(fd);
    ck_assert_int_eq(plugin_load(&set, cfg, junk, err, sizeof(err)), -ENOEXEC);
    unlink(junk);
    snprintf(want, sizeof(want), "cannot load plugin %s: ", junk);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    /* The rest is dlerror()'s reason. */
    ck_assert_uint_gt(strlen(err), strlen(want));
    ck_assert_uint_eq(set.n, 0);
    config_free(cfg);
}
END_TEST

START_TEST(test_requires_loaded_first)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "";

    ck_assert_msg(plugin_load(&set, cfg, "needsgood", err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(set.n, 2);
    ck_assert_str_eq(set.items[0].desc->name, "good");
    ck_assert_str_eq(set.items[1].desc->name, "needsgood");
    ck_assert_ptr_nonnull(config_find(cfg, "good_answer"));
    plugin_set_free(&set);
    config_free(cfg);
}
END_TEST

START_TEST(test_option_clash)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "";
    const char *want = "plugin 'optclash' cannot add its options: ";

    ck_assert_msg(plugin_load(&set, cfg, "good", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(plugin_load(&set, cfg, "optclash", err, sizeof(err)), -EEXIST);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "%s", err);
    ck_assert_msg(strstr(err, "good_answer") != NULL, "%s", err);
    ck_assert_uint_eq(set.n, 1);
    plugin_set_free(&set);
    config_free(cfg);
}
END_TEST

/*
 * A -k or --plugin name resolves to a plugin that declares it as an alias:
 * among the plugin files on the search path before any is loaded, then
 * among the loaded ones. A name no plugin claims stays as it is.
 */
START_TEST(test_plugin_aliases)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[1024] = "", buf[64];

    ck_assert_str_eq(plugin_resolve(&set, cfg, "good", buf, sizeof(buf)), "good");
    ck_assert_str_eq(plugin_resolve(&set, cfg, "goodworker", buf, sizeof(buf)), "good");
    ck_assert_str_eq(plugin_resolve(&set, cfg, "mypkg.workers.GoodWorker", buf, sizeof(buf)),
                     "good");
    ck_assert_str_eq(plugin_resolve(&set, cfg, "GoodWorker", buf, sizeof(buf)), "GoodWorker");
    ck_assert_uint_eq(set.n, 0); /* resolving loads nothing */
    ck_assert_msg(plugin_load(&set, cfg, "good", err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(plugin_resolve(&set, cfg, "goodworker", buf, sizeof(buf)), "good");
    ck_assert_str_eq(plugin_resolve(&set, cfg, "good", buf, sizeof(buf)), "good");
    plugin_set_free(&set);
    config_free(cfg);
}
END_TEST

/* plugin_check on descriptors in memory: the cases no fixture covers. */
static int
fake_run(struct qln_worker *w)
{
    return 0;
}

START_TEST(test_check_in_memory)
{
    static const struct qln_worker_ops ops = {.size = sizeof(ops), .run = fake_run};
    static const struct qln_worker_ops no_run = {.size = sizeof(no_run)};
    struct qln_plugin p = {.magic = QLN_PLUGIN_MAGIC,
                           .abi_major = QLN_ABI_MAJOR,
                           .abi_minor = QLN_ABI_MINOR,
                           .size = sizeof(p),
                           .kind = QLN_KIND_WORKER,
                           .name = "mem",
                           .worker = &ops};
    char err[512] = "";

    ck_assert_msg(plugin_check(&p, "mem", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(plugin_check(&p, NULL, err, sizeof(err)), 0);
    /* A larger descriptor (a later 1.x minor appended fields) is fine. */
    p.size = sizeof(p) + 16;
    ck_assert_int_eq(plugin_check(&p, "mem", err, sizeof(err)), 0);
    p.size = sizeof(p);

    p.worker = &no_run;
    ck_assert_int_eq(plugin_check(&p, "mem", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "plugin 'mem' lacks the required worker run hook; fix the plugin");
    p.worker = &ops;

    p.kind = 0;
    ck_assert_int_eq(plugin_check(&p, "mem", err, sizeof(err)), -EINVAL);
    p.kind = QLN_KIND_WORKER | 0x80;
    ck_assert_int_eq(plugin_check(&p, "mem", err, sizeof(err)), -EINVAL);
    p.kind = QLN_KIND_WORKER;

    p.name = NULL;
    ck_assert_int_eq(plugin_check(&p, NULL, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "plugin '?' has no name in its descriptor; fix the plugin");
    p.name = "mem";

    p.abi_minor = QLN_ABI_MINOR + 1;
    ck_assert_int_eq(plugin_check(&p, NULL, err, sizeof(err)), QLN_EABI);
    ck_assert_msg(strstr(err, "plugin 'mem' was built for qilin plugin ABI") == err, "%s", err);
}
END_TEST

START_TEST(test_empty_name)
{
    struct plugin_set set = {0};
    struct config *cfg = new_config();
    char err[512] = "";

    ck_assert_int_eq(plugin_load(&set, cfg, "", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "empty plugin name; pass a name such as python3");
    ck_assert_int_eq(plugin_load(&set, cfg, "/tmp/", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "empty plugin name '/tmp/'; pass a name such as python3");
    config_free(cfg);
}
END_TEST

static Suite *
plugin_suite(void)
{
    Suite *s = suite_create("plugin");
    TCase *tc = tcase_create("loader");

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_good_plugin_loads);
    tcase_add_test(tc, test_load_by_path);
    tcase_add_test(tc, test_plugin_dir_setting);
    tcase_add_test(tc, test_search_order);
    tcase_add_test(tc, test_not_found);
    tcase_add_loop_test(tc, test_broken_plugins, 0, sizeof(broken) / sizeof(broken[0]));
    tcase_add_test(tc, test_abi_messages);
    tcase_add_test(tc, test_no_symbol_and_not_elf);
    tcase_add_test(tc, test_requires_loaded_first);
    tcase_add_test(tc, test_option_clash);
    tcase_add_test(tc, test_plugin_aliases);
    tcase_add_test(tc, test_check_in_memory);
    tcase_add_test(tc, test_empty_name);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(plugin_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
