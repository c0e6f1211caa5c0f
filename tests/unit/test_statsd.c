/*
 * Unit tests for core/statsd.c: gunicorn's --statsd-host grammar
 * (table-driven), its prefix rule, the line format and the millisecond
 * text, and the datagrams that reach a unix datagram socket.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <check.h>

#include <qilin/log.h>

#include "core/config.h"
#include "core/statsd.h"

struct host_case {
    const char *spec;
    int rc;
    bool is_unix;
    const char *host;
    const char *port;
};

static const struct host_case host_cases[] = {
    {"127.0.0.1:8125", 0, false, "127.0.0.1", "8125"},
    {"statsd.example.com:9125", 0, false, "statsd.example.com", "9125"},
    {"StatsD.Example.COM", 0, false, "statsd.example.com", "8125"},
    {"localhost", 0, false, "localhost", "8125"},
    {"tcp://localhost:1234", 0, false, "localhost", "1234"},
    {"[::1]:8126", 0, false, "::1", "8126"},
    {"[::1]", 0, false, "::1", "8125"},
    {"unix:/run/statsd.sock", 0, true, "/run/statsd.sock", ""},
    {"unix:///run/statsd.sock", 0, true, "/run/statsd.sock", ""},
    {"unix:relative.sock", 0, true, "relative.sock", ""},
    /* gunicorn's reading of "unix:NNNN", kept for old configurations. */
    {"unix:8125", 0, false, "unix", "8125"},
    {"localhost:notaport", -EINVAL, false, NULL, NULL},
    {"localhost:0", -EINVAL, false, NULL, NULL},
    {"localhost:65536", -EINVAL, false, NULL, NULL},
    {"localhost:", -EINVAL, false, NULL, NULL},
    {":8125", -EINVAL, false, NULL, NULL},
    {"", -EINVAL, false, NULL, NULL},
    {"::1:8125", -EINVAL, false, NULL, NULL},
    {"[::1", -EINVAL, false, NULL, NULL},
    {"[::1]x", -EINVAL, false, NULL, NULL},
    {"unix:", -EINVAL, false, NULL, NULL},
    {"fd://3", -EINVAL, false, NULL, NULL},
};

START_TEST(host_grammar)
{
    const struct host_case *c = &host_cases[_i];
    struct statsd_addr a;
    char err[512] = "";
    int rc = statsd_parse_host(c->spec, &a, err, sizeof(err));

    ck_assert_msg(rc == c->rc, "'%s': rc %d, want %d (%s)", c->spec, rc, c->rc, err);
    if (rc != 0) {
        /* One line that names the flag and the forms it takes. */
        ck_assert_ptr_nonnull(strstr(err, "--statsd-host: "));
        ck_assert_ptr_nonnull(strstr(err, "HOST:PORT"));
        ck_assert_ptr_null(strchr(err, '\n'));
        return;
    }
    ck_assert_int_eq(a.is_unix, c->is_unix);
    ck_assert_str_eq(a.host, c->host);
    ck_assert_str_eq(a.port, c->port);
}
END_TEST

START_TEST(prefix_rule)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"", ""},      {"app", "app."}, {"app.", "app."}, {"app...", "app."}, {"my.app", "my.app."},
        {"ab", "ab."}, {"a", "a"},      {"a.", "a."},     {".", "."},         {"..", ".."},
    };
    char buf[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = statsd_prefix_join(cases[i].in, buf, sizeof(buf));

        ck_assert_msg(strcmp(buf, cases[i].out) == 0, "'%s' -> '%s', want '%s'", cases[i].in, buf,
                      cases[i].out);
        ck_assert_uint_eq(n, strlen(cases[i].out));
    }
}
END_TEST

START_TEST(line_format)
{
    char buf[256];

    statsd_format(buf, sizeof(buf), "", "gunicorn.requests", "1", STATSD_COUNTER, "");
    ck_assert_str_eq(buf, "gunicorn.requests:1|c|@1.0");
    statsd_format(buf, sizeof(buf), "app.", "gunicorn.workers", "0", STATSD_GAUGE, NULL);
    ck_assert_str_eq(buf, "app.gunicorn.workers:0|g");
    statsd_format(buf, sizeof(buf), "", "gunicorn.request.duration", "1.5", STATSD_TIMER,
                  "env:prod,team:web");
    ck_assert_str_eq(buf, "gunicorn.request.duration:1.5|ms|#env:prod,team:web");
    statsd_format(buf, sizeof(buf), "x.", "gunicorn.backlog", "7", STATSD_HISTOGRAM, "a:b");
    ck_assert_str_eq(buf, "x.gunicorn.backlog:7|h|#a:b");
    /* A line that does not fit is no line at all. */
    ck_assert_uint_eq(statsd_format(buf, 10, "", "gunicorn.requests", "1", STATSD_COUNTER, ""), 0);
    ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(milliseconds_as_python_floats)
{
    static const struct {
        int64_t us;
        const char *text;
    } cases[] = {
        {0, "0.0"},
        {1, "0.001"},
        {10, "0.01"},
        {999, "0.999"},
        {1000, "1.0"},
        {1500, "1.5"},
        {12345, "12.345"},
        {12340, "12.34"},
        {-5, "0.0"},
        {2000001, "2000.001"},
        {86400000000LL, "86400000.0"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        statsd_format_ms(buf, sizeof(buf), cases[i].us);
        ck_assert_msg(strcmp(buf, cases[i].text) == 0, "%lld us -> '%s', want '%s'",
                      (long long)cases[i].us, buf, cases[i].text);
    }
}
END_TEST

/* A configuration with the core's options and the three statsd settings. */
static struct config *
statsd_config(const char *host, const char *prefix, const char *tags)
{
    struct config *cfg = config_new();
    char err[256];

    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), 0);
    if (host != NULL)
        ck_assert_int_eq(
            config_set(cfg, "statsd_host", host, CONFIG_SRC_CLI, "--statsd-host", err, sizeof(err)),
            0);
    ck_assert_int_eq(config_set(cfg, "statsd_prefix", prefix, CONFIG_SRC_CLI, "--statsd-prefix",
                                err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_set(cfg, "dogstatsd_tags", tags, CONFIG_SRC_CLI, "--dogstatsd-tags",
                                err, sizeof(err)),
                     0);
    return cfg;
}

START_TEST(config_check)
{
    struct config *cfg;
    char err[512];

    cfg = statsd_config(NULL, "", "");
    ck_assert_int_eq(statsd_check_config(cfg, err, sizeof(err)), 0);
    config_free(cfg);
    cfg = statsd_config("localhost:8125", "app", "env:prod");
    ck_assert_int_eq(statsd_check_config(cfg, err, sizeof(err)), 0);
    config_free(cfg);
    cfg = statsd_config("localhost:x", "", "");
    ck_assert_int_eq(statsd_check_config(cfg, err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "--statsd-host: invalid port in 'localhost:x' (expected HOST:PORT,"
                          " [IPv6]:PORT, HOST for port 8125 or unix:PATH)");
    config_free(cfg);
    /* A line break would start a metric of the sender's choosing. */
    cfg = statsd_config("localhost", "", "env:a\nevil:1|c");
    ck_assert_int_eq(statsd_check_config(cfg, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--dogstatsd-tags: control characters"));
    config_free(cfg);
}
END_TEST

/* Binds a unix datagram socket in a fresh directory; its path goes to PATH. */
static int
bind_unix_dgram(char *path, size_t len)
{
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    char dir[] = "/tmp/qilin-statsd-XXXXXX";
    int fd;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, len, "%s/statsd.sock", dir);
    snprintf(un.sun_path, sizeof(un.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&un, sizeof(un)), 0);
    return fd;
}

static void
receive(int fd, char *buf, size_t len)
{
    ssize_t n = recv(fd, buf, len - 1, 0);

    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
}

START_TEST(datagrams_reach_a_unix_socket)
{
    char path[100], spec[120], buf[4096], err[512];
    struct config *cfg;
    int fd = bind_unix_dgram(path, sizeof(path));
    struct timeval tv = {.tv_sec = 2};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    snprintf(spec, sizeof(spec), "unix:%s", path);
    cfg = statsd_config(spec, "app", "env:test");
    ck_assert_msg(statsd_open(cfg, err, sizeof(err)) == 0, "%s", err);
    ck_assert(statsd_enabled());

    statsd_request(404, 2500);
    receive(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "app.gunicorn.request.duration:2.5|ms|#env:test\n"
                          "app.gunicorn.requests:1|c|@1.0|#env:test\n"
                          "app.gunicorn.request.status.404:1|c|@1.0|#env:test");
    statsd_workers(3);
    statsd_workers(3); /* unchanged: not sent again */
    statsd_workers(0);
    receive(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "app.gunicorn.workers:3|g|#env:test");
    receive(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "app.gunicorn.workers:0|g|#env:test");
    statsd_log_line(QLN_LOG_INFO); /* not counted */
    statsd_log_line(QLN_LOG_WARNING);
    statsd_log_line(QLN_LOG_ERROR);
    statsd_log_line(QLN_LOG_CRITICAL);
    receive(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "app.gunicorn.log.warning:1|c|@1.0|#env:test");
    receive(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "app.gunicorn.log.error:1|c|@1.0|#env:test");
    receive(fd, buf, sizeof(buf));
    ck_assert_str_eq(buf, "app.gunicorn.log.critical:1|c|@1.0|#env:test");

    /* Nobody listening any more: sending costs nothing and fails quietly. */
    close(fd);
    unlink(path);
    statsd_request(200, 1000);
    *strrchr(path, '/') = '\0';
    rmdir(path);
    statsd_close();
    ck_assert(!statsd_enabled());
    statsd_request(200, 1000); /* off: a no-op */
    config_free(cfg);
}
END_TEST

static Suite *
statsd_suite(void)
{
    Suite *s = suite_create("statsd");
    TCase *tc = tcase_create("statsd");

    tcase_add_loop_test(tc, host_grammar, 0, (int)(sizeof(host_cases) / sizeof(host_cases[0])));
    tcase_add_test(tc, prefix_rule);
    tcase_add_test(tc, line_format);
    tcase_add_test(tc, milliseconds_as_python_floats);
    tcase_add_test(tc, config_check);
    tcase_add_test(tc, datagrams_reach_a_unix_socket);
    tcase_set_timeout(tc, 5);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(statsd_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
