/*
 * Unit tests for core/log.c: the error line format, level filtering, pids
 * across fork, whole lines under threads, reopen after rename (USR1), and
 * every access log atom through log_access_format.
 */
#include "qlnconfig.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <check.h>

#include <qilin/log.h>

#include "core/config.h"
#include "core/log.h"

/* Each test (a forked child) gets its own directory for log files. */
static char tmpdir[64];

static void
setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/qilin-test-log-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    setenv("TZ", "UTC", 1);
    tzset();
}

static void
teardown(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[PATH_MAX];

    log_close();
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(tmpdir);
}

static char *
tmp_path(const char *name)
{
    static char paths[4][PATH_MAX];
    static int next;
    char *p = paths[next++ % 4];

    snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
    return p;
}

/* Opens the logs through the real option table, as the master does. NULL keeps a default. */
static int
open_logs(const char *errorlog, const char *level, const char *accesslog, const char *format,
          char *err, size_t errlen)
{
    struct config *cfg = config_new();
    const char *names[] = {"errorlog", "loglevel", "accesslog", "access_log_format"};
    const char *values[] = {errorlog, level, accesslog, format};
    struct log_options lo;
    int rc;

    ck_assert_msg(config_register(cfg, core_options, "core", err, errlen) == 0, "%s", err);
    for (size_t i = 0; i < 4; i++)
        if (values[i] != NULL)
            ck_assert_msg(
                config_set(cfg, names[i], values[i], CONFIG_SRC_CLI, "test", err, errlen) == 0,
                "%s", err);
    config_log_options(cfg, &lo);
    rc = log_open(&lo, err, errlen);
    config_free(cfg);
    return rc;
}

static void
open_logs_ok(const char *errorlog, const char *level, const char *accesslog, const char *format)
{
    char err[512] = "";

    ck_assert_msg(open_logs(errorlog, level, accesslog, format, err, sizeof(err)) == 0, "%s", err);
}

/* Reads a whole file into a fresh string (free it). */
static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static bool
matches(const char *pattern, const char *text)
{
    regex_t re;
    int rc;

    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    return rc == 0;
}

#define STAMP "\\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [+-][0-9]{4}\\]"

START_TEST(test_error_line_format)
{
    char *path = tmp_path("error.log");
    char pattern[256];
    char *text;

    open_logs_ok(path, NULL, NULL, NULL);
    qln_log(QLN_LOG_INFO, "Listening at: %s (%d)", "http://127.0.0.1:8000", 30869);
    text = slurp(path);
    snprintf(pattern, sizeof(pattern),
             "^" STAMP " \\[%d\\] \\[INFO\\] Listening at: http://127\\.0\\.0\\.1:8000 "
             "\\(30869\\)\n$",
             (int)getpid());
    ck_assert_msg(matches(pattern, text), "got '%s'", text);
    free(text);
}
END_TEST

/* The stamp is local time with its numeric zone, as gunicorn's %z. */
START_TEST(test_error_line_local_time)
{
    char *path = tmp_path("error.log");
    char *text;
    time_t before, after;
    struct tm tm;
    char want[64];

    setenv("TZ", "XST-05:30", 1);
    tzset();
    open_logs_ok(path, NULL, NULL, NULL);
    before = time(NULL);
    qln_log(QLN_LOG_WARNING, "zone");
    after = time(NULL);
    text = slurp(path);
    ck_assert_msg(matches("^" STAMP " \\[[0-9]+\\] \\[WARNING\\] zone\n$", text), "%s", text);
    ck_assert_msg(strstr(text, " +0530] ") != NULL, "%s", text);
    /* The wall-clock part is local too: it equals one of the seconds around the call. */
    localtime_r(&before, &tm);
    strftime(want, sizeof(want), "[%Y-%m-%d %H:%M:%S +0530]", &tm);
    if (strncmp(text, want, strlen(want)) != 0) {
        localtime_r(&after, &tm);
        strftime(want, sizeof(want), "[%Y-%m-%d %H:%M:%S +0530]", &tm);
    }
    ck_assert_msg(strncmp(text, want, strlen(want)) == 0, "got '%s', want '%s'", text, want);
    free(text);
}
END_TEST

START_TEST(test_levels_filter)
{
    char *path = tmp_path("error.log");
    char *text;

    open_logs_ok(path, "warning", NULL, NULL);
    ck_assert_int_eq(qln_log_level(), QLN_LOG_WARNING);
    qln_log(QLN_LOG_DEBUG, "d");
    qln_log(QLN_LOG_INFO, "i");
    qln_log(QLN_LOG_WARNING, "w");
    qln_log(QLN_LOG_ERROR, "e");
    qln_log(QLN_LOG_CRITICAL, "c");
    text = slurp(path);
    ck_assert_msg(matches("^" STAMP " \\[[0-9]+\\] \\[WARNING\\] w\n" STAMP
                          " \\[[0-9]+\\] \\[ERROR\\] e\n" STAMP " \\[[0-9]+\\] \\[CRITICAL\\] c\n$",
                          text),
                  "%s", text);
    free(text);
    log_close();

    open_logs_ok(path, "DEBUG", NULL, NULL);
    ck_assert_int_eq(qln_log_level(), QLN_LOG_DEBUG);
    qln_log(QLN_LOG_DEBUG, "now visible");
    text = slurp(path);
    ck_assert_msg(strstr(text, "] [DEBUG] now visible\n") != NULL, "%s", text);
    free(text);
}
END_TEST

static const struct {
    const char *name;
    int level;
} level_names[] = {
    {"debug", QLN_LOG_DEBUG},
    {"info", QLN_LOG_INFO},
    {"Warning", QLN_LOG_WARNING},
    {"ERROR", QLN_LOG_ERROR},
    {"critical", QLN_LOG_CRITICAL},
    {"verbose", -EINVAL},
    {"", -EINVAL},
    {"warn", -EINVAL},
};

START_TEST(test_level_parse)
{
    ck_assert_int_eq(log_level_parse(level_names[_i].name), level_names[_i].level);
}
END_TEST

START_TEST(test_errno_suffix_and_newline)
{
    char *path = tmp_path("error.log");
    char *text;

    open_logs_ok(path, NULL, NULL, NULL);
    qln_log_errno(QLN_LOG_ERROR, ENOENT, "open(%s)", "/x");
    qln_log_errno(QLN_LOG_ERROR, -EACCES, "bind(%s)", "0.0.0.0:80");
    qln_log(QLN_LOG_INFO, "trailing newline dropped\n");
    text = slurp(path);
    ck_assert_msg(matches("\\[ERROR\\] open\\(/x\\) failed: No such file or directory\n" STAMP
                          " \\[[0-9]+\\] \\[ERROR\\] bind\\(0\\.0\\.0\\.0:80\\) failed: "
                          "Permission denied\n" STAMP
                          " \\[[0-9]+\\] \\[INFO\\] trailing newline dropped\n$",
                          text),
                  "%s", text);
    free(text);
}
END_TEST

START_TEST(test_long_line_truncated)
{
    char *path = tmp_path("error.log");
    char *big = malloc(10001);
    char *text;
    size_t n;

    memset(big, 'a', 10000);
    big[10000] = '\0';
    open_logs_ok(path, NULL, NULL, NULL);
    qln_log(QLN_LOG_INFO, "%s", big);
    qln_log_errno(QLN_LOG_ERROR, EIO, "%s", big);
    text = slurp(path);
    /* Two lines, each cut to 4096 bytes with "..." before the newline. */
    n = strlen(text);
    ck_assert_uint_eq(n, 2 * 4096);
    ck_assert_mem_eq(text + 4096 - 4, "...\n", 4);
    ck_assert_mem_eq(text + 2 * 4096 - 4, "...\n", 4);
    ck_assert_msg(matches("^" STAMP " \\[[0-9]+\\] \\[ERROR\\] aaa", text + 4096), "%s",
                  text + 4096);
    free(text);
    free(big);
}
END_TEST

START_TEST(test_raw_and_fd)
{
    char *path = tmp_path("error.log");
    const char tb[] = "Traceback (most recent call last):\n  File \"x.py\"\n";
    char *text;
    struct stat a, b;

    open_logs_ok(path, NULL, NULL, NULL);
    ck_assert_int_gt(qln_log_fd(), 2);
    ck_assert_int_eq(fstat(qln_log_fd(), &a), 0);
    ck_assert_int_eq(stat(path, &b), 0);
    ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
    qln_log_raw(tb, sizeof(tb) - 1);
    text = slurp(path);
    ck_assert_str_eq(text, tb);
    free(text);
}
END_TEST

/* The pid is the writer's: the atfork handler forgets the cached one in a child. */
START_TEST(test_pid_after_fork)
{
    char *path = tmp_path("error.log");
    char want[64];
    char *text;
    pid_t child;
    int status;

    open_logs_ok(path, NULL, NULL, NULL);
    qln_log(QLN_LOG_INFO, "parent");
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        qln_log(QLN_LOG_INFO, "child");
        _exit(0);
    }
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    text = slurp(path);
    snprintf(want, sizeof(want), "] [%d] [INFO] parent\n", (int)getpid());
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    snprintf(want, sizeof(want), "] [%d] [INFO] child\n", (int)child);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    free(text);

    log_set_pid(12345);
    qln_log(QLN_LOG_INFO, "set");
    text = slurp(path);
    ck_assert_msg(strstr(text, "] [12345] [INFO] set\n") != NULL, "%s", text);
    free(text);
}
END_TEST

/* Redirects FD to a new file in tmpdir; returns the file's path. */
static char *
capture_fd(int fd, const char *name)
{
    char *path = tmp_path(name);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(dup2(f, fd), fd);
    close(f);
    return path;
}

START_TEST(test_stderr_before_open)
{
    char *path = capture_fd(2, "stderr.txt");
    char *text;

    ck_assert_int_eq(qln_log_level(), QLN_LOG_INFO);
    ck_assert_int_eq(qln_log_fd(), 2);
    qln_log(QLN_LOG_DEBUG, "hidden");
    qln_log(QLN_LOG_INFO, "early");
    text = slurp(path);
    ck_assert_msg(matches("^" STAMP " \\[[0-9]+\\] \\[INFO\\] early\n$", text), "%s", text);
    free(text);

    /* "-" keeps stderr. */
    open_logs_ok("-", "error", NULL, NULL);
    ck_assert_int_eq(qln_log_fd(), 2);
    qln_log(QLN_LOG_ERROR, "still stderr");
    text = slurp(path);
    ck_assert_msg(strstr(text, "] [ERROR] still stderr\n") != NULL, "%s", text);
    free(text);
}
END_TEST

struct thread_arg {
    int id;
};

static void *
log_many(void *p)
{
    const struct thread_arg *a = p;

    for (int i = 0; i < 500; i++)
        qln_log(QLN_LOG_INFO, "thread %d line %d %0200d", a->id, i, 0);
    return NULL;
}

/* Lines from concurrent threads stay whole: each one leaves in one write(2). */
START_TEST(test_threads_whole_lines)
{
    char *path = tmp_path("error.log");
    pthread_t t[4];
    struct thread_arg args[4];
    char *text, *line, *save = NULL;
    int count = 0;

    open_logs_ok(path, NULL, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        args[i].id = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, log_many, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    text = slurp(path);
    for (line = strtok_r(text, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        ck_assert_msg(
            matches("^" STAMP " \\[[0-9]+\\] \\[INFO\\] thread [0-3] line [0-9]+ 0{200}$", line),
            "broken line: %s", line);
        count++;
    }
    ck_assert_int_eq(count, 2000);
    free(text);
}
END_TEST

START_TEST(test_reopen_after_rename)
{
    char *elog = tmp_path("error.log"), *alog = tmp_path("access.log");
    char eold[PATH_MAX], aold[PATH_MAX];
    struct access_record rec = {.remote_addr = "10.0.0.1",
                                .method = {"GET", 3},
                                .target = {"/", 1},
                                .path = {"/", 1},
                                .version_minor = 1,
                                .status = 204};
    int fd;
    char *text;

    snprintf(eold, sizeof(eold), "%s.old", elog);
    snprintf(aold, sizeof(aold), "%s.old", alog);
    open_logs_ok(elog, NULL, alog, "%(h)s %(s)s");
    ck_assert(log_access_enabled());
    fd = qln_log_fd();
    qln_log(QLN_LOG_INFO, "before rotation");
    log_access(&rec);
    ck_assert_int_eq(rename(elog, eold), 0);
    ck_assert_int_eq(rename(alog, aold), 0);
    ck_assert_int_eq(log_reopen(), 0);
    /* The fd number stays valid for whoever copied it (faulthandler). */
    ck_assert_int_eq(qln_log_fd(), fd);
    ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    qln_log(QLN_LOG_INFO, "after rotation");
    rec.status = 404;
    log_access(&rec);

    text = slurp(eold);
    ck_assert_msg(strstr(text, "before rotation") && !strstr(text, "after rotation"), "%s", text);
    free(text);
    text = slurp(elog);
    ck_assert_msg(strstr(text, "after rotation") && !strstr(text, "before rotation"), "%s", text);
    free(text);
    text = slurp(aold);
    ck_assert_str_eq(text, "10.0.0.1 204\n");
    free(text);
    text = slurp(alog);
    ck_assert_str_eq(text, "10.0.0.1 404\n");
    free(text);
}
END_TEST

/* A reopen that cannot open the new file keeps writing to the old one and says why. */
START_TEST(test_reopen_failure_keeps_old_file)
{
    char *sub = tmp_path("sub"), *moved = tmp_path("moved");
    char elog[PATH_MAX], eold[PATH_MAX + 16], want[PATH_MAX + 128];
    char *text;

    snprintf(elog, sizeof(elog), "%s/error.log", sub);
    snprintf(eold, sizeof(eold), "%s/error.log", moved);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    open_logs_ok(elog, NULL, NULL, NULL);
    ck_assert_int_eq(rename(sub, moved), 0);
    ck_assert_int_eq(log_reopen(), -ENOENT);
    qln_log(QLN_LOG_INFO, "still here");
    text = slurp(eold);
    snprintf(want, sizeof(want),
             "] [ERROR] cannot open error log %s: No such file or directory; check "
             "--error-logfile and the directory's permissions\n",
             elog);
    ck_assert_msg(strstr(text, want) != NULL, "%s", text);
    ck_assert_msg(strstr(text, "] [INFO] still here\n") != NULL, "%s", text);
    free(text);
    log_close();
    unlink(eold);
    rmdir(moved);
}
END_TEST

START_TEST(test_open_failures)
{
    char err[512] = "";
    char *elog = tmp_path("error.log");

    ck_assert_int_eq(
        open_logs("/nonexistent-qilin-dir/error.log", NULL, NULL, NULL, err, sizeof(err)), -ENOENT);
    ck_assert_str_eq(err, "cannot open error log /nonexistent-qilin-dir/error.log: No such file "
                          "or directory; check --error-logfile and the directory's permissions");
    ck_assert_int_eq(qln_log_fd(), 2);

    /* A bad access log leaves everything as it was, error log included. */
    ck_assert_int_eq(
        open_logs(elog, NULL, "/nonexistent-qilin-dir/access.log", NULL, err, sizeof(err)),
        -ENOENT);
    ck_assert_str_eq(err, "cannot open access log /nonexistent-qilin-dir/access.log: No such "
                          "file or directory; check --access-logfile and the directory's "
                          "permissions");
    ck_assert_int_eq(qln_log_fd(), 2);
    ck_assert(!log_access_enabled());
}
END_TEST

START_TEST(test_access_to_stdout)
{
    char *path = capture_fd(1, "stdout.txt");
    struct qln_header hdrs[] = {{{"User-Agent", 10}, {"ua/1", 4}}};
    struct access_record rec = {.remote_addr = "127.0.0.1",
                                .method = {"POST", 4},
                                .target = {"/submit?a=b", 11},
                                .path = {"/submit", 7},
                                .query = {"a=b", 3},
                                .version_minor = 0,
                                .status = 201,
                                .body_bytes = 0,
                                .req_headers = hdrs,
                                .nreq_headers = 1,
                                .time = {1795388969, 0}};
    char *text;

    open_logs_ok(NULL, NULL, NULL, NULL);
    ck_assert(!log_access_enabled());
    open_logs_ok(NULL, NULL, "-", NULL);
    ck_assert(log_access_enabled());
    log_access(&rec);
    text = slurp(path);
    /* gunicorn's default format. */
    ck_assert_str_eq(text, "127.0.0.1 - - [22/Nov/2026:23:09:29 +0000] \"POST /submit?a=b "
                           "HTTP/1.0\" 201 0 \"-\" \"ua/1\"\n");
    free(text);
}
END_TEST

/* The record every atom row reads. */
static const struct qln_header req_headers[] = {
    {{"Host", 4}, {"example.com", 11}},    {{"Referer", 7}, {"http://ref/\"q\"", 14}},
    {{"User-Agent", 10}, {"curl/8.0", 8}}, {{"Authorization", 13}, {"Basic dXNlcjpwYXNz", 18}},
    {{"X-Custom", 8}, {"one", 3}},         {{"x-custom", 8}, {"two", 3}},
};
static const struct qln_header resp_headers[] = {
    {{"Content-Type", 12}, {"text/plain", 10}},
    {{"X-Quote", 7}, {"a\"b", 3}},
};

static struct access_record
sample_record(void)
{
    return (struct access_record){.remote_addr = "127.0.0.1",
                                  .remote_port = "51234",
                                  .server_name = "127.0.0.1",
                                  .server_port = "8000",
                                  .url_scheme = "http",
                                  .method = {"GET", 3},
                                  .target = {"/path?x=1", 9},
                                  .path = {"/path", 5},
                                  .query = {"x=1", 3},
                                  .version_minor = 1,
                                  .status = 200,
                                  .body_bytes = 1234,
                                  .req_headers = req_headers,
                                  .nreq_headers = 6,
                                  .resp_headers = resp_headers,
                                  .nresp_headers = 2,
                                  .time = {1795388969, 0}, /* 2026-11-22 23:09:29 UTC */
                                  .duration_us = 1234567};
}

static const struct {
    const char *format;
    const char *want;
} atoms[] = {
    {"%(h)s", "127.0.0.1"},
    {"%(l)s", "-"},
    {"%(u)s", "user"},
    {"%(t)s", "[22/Nov/2026:23:09:29 +0000]"},
    {"%(r)s", "GET /path?x=1 HTTP/1.1"},
    {"%(m)s", "GET"},
    {"%(U)s", "/path"},
    {"%(q)s", "x=1"},
    {"%(H)s", "HTTP/1.1"},
    {"%(p)s", "<4242>"},
    {"%(s)s", "200"},
    {"%(b)s", "1234"},
    {"%(B)s", "1234"},
    {"%(f)s", "http://ref/\\\"q\\\""},
    {"%(a)s", "curl/8.0"},
    {"%(T)s", "1"},
    {"%(M)s", "1234"},
    {"%(D)s", "1234567"},
    {"%(L)s", "1.234567"},
    {"%({host}i)s", "example.com"},
    {"%({HOST}i)s", "example.com"},
    {"%({x-custom}i)s", "two"}, /* the last duplicate, as gunicorn's dict keeps */
    {"%({missing}i)s", "-"},
    {"%({content-type}o)s", "text/plain"},
    {"%({Content-Type}o)s", "text/plain"},
    {"%({x-quote}o)s", "a\\\"b"},
    {"%({host}o)s", "-"},
    /* The request's WSGI environ, as gunicorn reads it; never the process's. */
    {"%({QILIN_TEST_LOG_VAR}e)s", "-"},
    {"%({REQUEST_METHOD}e)s %({PATH_INFO}e)s %({QUERY_STRING}e)s", "GET /path x=1"},
    {"%({RAW_URI}e)s %({SERVER_PROTOCOL}e)s", "/path?x=1 HTTP/1.1"},
    {"%({REMOTE_ADDR}e)s:%({REMOTE_PORT}e)s", "127.0.0.1:51234"},
    {"%({SERVER_NAME}e)s:%({SERVER_PORT}e)s %({wsgi.url_scheme}e)s", "127.0.0.1:8000 http"},
    {"%({HTTP_HOST}e)s %({HTTP_X_CUSTOM}e)s %({HTTP_USER_AGENT}e)s", "example.com two curl/8.0"},
    {"%({HTTP_REFERER}e)s", "http://ref/\\\"q\\\""},
    {"%({CONTENT_TYPE}e)s %({HTTP_MISSING}e)s %({request_method}e)s", "- - -"},
    {"%(zz)s", "-"},
    {"%(Z)s", "-"},
    {"%({host}x)s", "-"},
    {"100%%", "100%"},
    {"%(s)d", "200"},
    {"%(h)-12s|", "127.0.0.1   |"},
    {"%(s)5s|", "  200|"},
    {"%(s", "%(s"},
    {"50% off", "50% off"},
    {"", ""},
    {"%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"",
     "127.0.0.1 - user [22/Nov/2026:23:09:29 +0000] \"GET /path?x=1 HTTP/1.1\" 200 1234 "
     "\"http://ref/\\\"q\\\"\" \"curl/8.0\""},
};

START_TEST(test_access_atoms)
{
    struct access_record rec = sample_record();
    char buf[1024];
    size_t n;

    setenv("QILIN_TEST_LOG_VAR", "from \"env\"", 1);
    n = log_access_format(atoms[_i].format, &rec, 4242, buf, sizeof(buf));
    ck_assert_msg(strcmp(buf, atoms[_i].want) == 0, "format '%s': got '%s', want '%s'",
                  atoms[_i].format, buf, atoms[_i].want);
    ck_assert_uint_eq(n, strlen(buf));
}
END_TEST

/* What a request with almost nothing known renders. */
START_TEST(test_access_missing_values)
{
    struct access_record rec = {.method = {"GET", 3}, .target = {"/", 1}, .status = 400};
    char buf[256];

    log_access_format("%(h)s|%(u)s|%(f)s|%(a)s|%(b)s|%(B)s|%(q)s|%(U)s|%(D)s|%({x}i)s|%({x}o)s",
                      &rec, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "-|-|-|-|0|0||-|0|-|-");
}
END_TEST

/* --access-logformat json: one JSON object, every value escaped for JSON. */
START_TEST(test_access_json)
{
    static const struct qln_header h[] = {{{"User-Agent", 10}, {"a\"b\\c\x01\xe9", 7}}};
    struct access_record rec = {.remote_addr = "10.0.0.1",
                                .method = {"GET", 3},
                                .target = {"/p?q=\"1\"", 8},
                                .path = {"/p", 2},
                                .query = {"q=\"1\"", 5},
                                .version_minor = 1,
                                .status = 201,
                                .body_bytes = 12,
                                .req_headers = h,
                                .nreq_headers = 1,
                                .duration_us = 1500};
    char buf[1024];

    log_access_format("json", &rec, 7, buf, sizeof(buf));
    ck_assert_ptr_nonnull(strstr(buf, "{\"remote_addr\": \"10.0.0.1\", \"time\": \"["));
    ck_assert_ptr_nonnull(strstr(buf, "\"request\": \"GET /p?q=\\\"1\\\" HTTP/1.1\", "
                                      "\"method\": \"GET\", \"path\": \"/p\", "
                                      "\"query\": \"q=\\\"1\\\"\", \"protocol\": \"HTTP/1.1\", "
                                      "\"status\": 201, \"bytes\": 12, \"referer\": \"-\", "
                                      "\"user_agent\": \"a\\\"b\\\\c\\u0001\\u00e9\", "
                                      "\"duration_us\": 1500, \"pid\": \"<7>\"}"));
}
END_TEST

/* A TLS connection's variables, as the core's transport lists them. */
static const char *const tls_var_table[][2] = {
    {"HTTPS", "on"}, {"SSL_PROTOCOL", "TLSv1.3"}, {"SSL_CIPHER", "TLS_AES_256_GCM_SHA384"}};

static bool
tls_vars(const void *ctx, size_t i, const char **name, const char **value)
{
    ck_assert_ptr_eq(ctx, tls_var_table);
    if (i >= sizeof(tls_var_table) / sizeof(tls_var_table[0]))
        return false;
    *name = tls_var_table[i][0];
    *value = tls_var_table[i][1];
    return true;
}

/* "%({SSL_CIPHER}e)s" and its kind: the connection's own variables, "-" without TLS. */
START_TEST(test_access_tls_vars)
{
    static const char format[] =
        "%({SSL_PROTOCOL}e)s %({SSL_CIPHER}e)s %({HTTPS}e)s %({SSL_CLIENT_S_DN}e)s";
    struct access_record rec = sample_record();
    char buf[256];

    log_access_format(format, &rec, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "- - - -");
    rec.env_var = tls_vars;
    rec.env_ctx = tls_var_table;
    log_access_format(format, &rec, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "TLSv1.3 TLS_AES_256_GCM_SHA384 on -");
}
END_TEST

/* %(U)s and PATH_INFO are the path decoded; a decoded control byte is escaped. */
START_TEST(test_access_decoded_path)
{
    struct access_record rec = {
        .method = {"GET", 3}, .path = {"/a%20b%22c%0Ad%zz%4", 19}, .status = 200};
    char buf[256];

    log_access_format("%(U)s|%({PATH_INFO}e)s", &rec, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "/a b\\\"c\\x0ad%zz%4|/a b\\\"c\\x0ad%zz%4");
}
END_TEST

static const struct {
    const char *authorization;
    const char *user;
} auths[] = {
    {"Basic dXNlcjpwYXNz", "user"}, /* user:pass */
    {"basic   dXNlcg==  ", "user"}, /* no password; scheme case and spaces */
    {"Basic YSJiOnB3", "a\\\"b"},   /* a"b:pw, escaped */
    {"Bearer dXNlcjpwYXNz", "-"},
    {"Basic !!!!", "-"},
    {"Basic dXNlcjpwYXN", "-"}, /* not padded base64 */
    {"Basic", "-"},
    {"Basic ", "-"},
};

START_TEST(test_access_basic_user)
{
    struct qln_header h[] = {
        {{"authorization", 13}, {auths[_i].authorization, strlen(auths[_i].authorization)}}};
    struct access_record rec = {.req_headers = h, .nreq_headers = 1};
    char buf[128];

    log_access_format("%(u)s", &rec, 1, buf, sizeof(buf));
    ck_assert_msg(strcmp(buf, auths[_i].user) == 0, "'%s': got '%s'", auths[_i].authorization, buf);
}
END_TEST

/* %(t)s is local time like the error log, with the zone's offset. */
START_TEST(test_access_time_zones)
{
    struct access_record rec = sample_record();
    char buf[64];

    setenv("TZ", "XST-05:30", 1);
    tzset();
    log_access_format("%(t)s", &rec, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[23/Nov/2026:04:39:29 +0530]");
    setenv("TZ", "YST+03", 1);
    tzset();
    log_access_format("%(t)s", &rec, 1, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[22/Nov/2026:20:09:29 -0300]");
}
END_TEST

START_TEST(test_access_truncation)
{
    struct access_record rec = sample_record();
    char buf[8];
    char *alog = tmp_path("access.log");
    static char longpath[20000];
    char *text;

    ck_assert_uint_eq(log_access_format("%(h)s", &rec, 1, buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "127.0.0");
    ck_assert_uint_eq(log_access_format("%(h)10s", &rec, 1, buf, sizeof(buf)), 7);
    ck_assert_str_eq(buf, "127.0.0");

    /* A line longer than the access buffer is cut, marked and still one line. */
    memset(longpath, 'p', sizeof(longpath) - 1);
    rec.target = (struct qln_slice){longpath, sizeof(longpath) - 1};
    open_logs_ok(NULL, NULL, alog, "%(r)s");
    log_access(&rec);
    text = slurp(alog);
    ck_assert_uint_lt(strlen(text), sizeof(longpath));
    ck_assert_str_eq(text + strlen(text) - 4, "...\n");
    ck_assert_ptr_eq(strchr(text, '\n'), text + strlen(text) - 1);
    free(text);
}
END_TEST

/* What a plugin's logger (or sink) was handed. */
static struct {
    int errors, accesses, reopens;
    int status;
    int64_t duration_us;
    char line[256];
} got;

/* Takes warnings and above, leaves the rest to the core. */
static bool
take_error(void *ctx, int level, const char *msg, size_t len)
{
    if (level < QLN_LOG_WARNING)
        return false;
    got.errors++;
    snprintf(got.line, sizeof(got.line), "%.*s", (int)len, msg);
    return true;
}

static bool
take_access(void *ctx, const struct qln_access_info *info)
{
    got.accesses++;
    got.status = info->status;
    got.duration_us = info->duration_us;
    snprintf(got.line, sizeof(got.line), "%.*s", (int)info->len, info->line);
    return true;
}

static void
count_reopen(void *ctx)
{
    got.reopens++;
}

static bool
sink_take_access(void *ctx, const char *line, size_t len)
{
    got.accesses++;
    snprintf(got.line, sizeof(got.line), "%.*s", (int)len, line);
    return true;
}

START_TEST(test_plugin_logger_and_sink)
{
    const char *errpath = tmp_path("error.log"), *accpath = tmp_path("access.log");
    static const struct qln_logger logger = {.size = sizeof(struct qln_logger),
                                             .error = take_error,
                                             .access = take_access,
                                             .reopen = count_reopen};
    static const struct qln_log_sink sink = {.access = sink_take_access};
    struct access_record rec = sample_record();
    char *text;

    open_logs_ok(errpath, NULL, accpath, "%(s)s %(D)s");
    qln_log_set_logger(&logger);
    ck_assert(log_access_enabled());
    qln_log_write(QLN_LOG_INFO, "left to the core");
    qln_log_write(QLN_LOG_WARNING, "taken by the logger");
    ck_assert_int_eq(got.errors, 1);
    ck_assert_str_eq(got.line, "taken by the logger");
    /* The whole request, and the line formatted as the core would write it. */
    log_access(&rec);
    ck_assert_int_eq(got.accesses, 1);
    ck_assert_int_eq(got.status, 200);
    ck_assert_int_eq(got.duration_us, 1234567);
    ck_assert_str_eq(got.line, "200 1234567");
    ck_assert_int_eq(log_reopen(), 0);
    ck_assert_int_eq(got.reopens, 1);
    /* A 1.8 sink takes the logger's place and gets the line only. */
    qln_log_set_sink(&sink);
    rec.status = 404;
    log_access(&rec);
    ck_assert_int_eq(got.accesses, 2);
    ck_assert_str_eq(got.line, "404 1234567");
    qln_log_write(QLN_LOG_WARNING, "no error callback: the core's");
    ck_assert_int_eq(got.errors, 1);
    /* NULL gives every line back to the core. */
    qln_log_set_sink(NULL);
    rec.status = 500;
    log_access(&rec);
    ck_assert_int_eq(got.accesses, 2);
    text = slurp(errpath);
    ck_assert(strstr(text, "[INFO] left to the core\n") != NULL);
    ck_assert(strstr(text, "taken by the logger") == NULL);
    ck_assert(strstr(text, "[WARNING] no error callback: the core's\n") != NULL);
    free(text);
    text = slurp(accpath);
    ck_assert_str_eq(text, "500 1234567\n");
    free(text);
}
END_TEST

START_TEST(test_assert_fail)
{
    char *path = tmp_path("error.log");
    char *text;
    pid_t child;
    int status;

    open_logs_ok(path, NULL, NULL, NULL);
    child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        int one = 1;

        signal(SIGABRT, SIG_DFL);
        qln_assert(one == 2);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGABRT);
    text = slurp(path);
    ck_assert_msg(matches("^" STAMP " \\[[0-9]+\\] \\[CRITICAL\\] [^ ]*test_log\\.c:[0-9]+: "
                          "assertion failed: one == 2\n$",
                          text),
                  "%s", text);
    free(text);
}
END_TEST

static Suite *
log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *err = tcase_create("error_log");
    TCase *acc = tcase_create("access_log");

    tcase_add_checked_fixture(err, setup, teardown);
    tcase_set_timeout(err, 10);
    tcase_add_test(err, test_error_line_format);
    tcase_add_test(err, test_error_line_local_time);
    tcase_add_test(err, test_levels_filter);
    tcase_add_loop_test(err, test_level_parse, 0, sizeof(level_names) / sizeof(level_names[0]));
    tcase_add_test(err, test_errno_suffix_and_newline);
    tcase_add_test(err, test_long_line_truncated);
    tcase_add_test(err, test_raw_and_fd);
    tcase_add_test(err, test_pid_after_fork);
    tcase_add_test(err, test_stderr_before_open);
    tcase_add_test(err, test_threads_whole_lines);
    tcase_add_test(err, test_reopen_after_rename);
    tcase_add_test(err, test_reopen_failure_keeps_old_file);
    tcase_add_test(err, test_open_failures);
    tcase_add_test(err, test_assert_fail);
    suite_add_tcase(s, err);

    tcase_add_checked_fixture(acc, setup, teardown);
    tcase_set_timeout(acc, 10);
    tcase_add_test(acc, test_access_to_stdout);
    tcase_add_loop_test(acc, test_access_atoms, 0, sizeof(atoms) / sizeof(atoms[0]));
    tcase_add_test(acc, test_access_missing_values);
    tcase_add_test(acc, test_access_json);
    tcase_add_test(acc, test_access_decoded_path);
    tcase_add_test(acc, test_access_tls_vars);
    tcase_add_loop_test(acc, test_access_basic_user, 0, sizeof(auths) / sizeof(auths[0]));
    tcase_add_test(acc, test_access_time_zones);
    tcase_add_test(acc, test_access_truncation);
    tcase_add_test(acc, test_plugin_logger_and_sink);
    suite_add_tcase(s, acc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(log_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
