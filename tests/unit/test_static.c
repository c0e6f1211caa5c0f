/*
 * Unit tests for core/static.c: --static-map items, prefix
 * matching, path safety and normalisation, Content-Type lookup, the ETag,
 * If-None-Match lists, IMF-fixdate parsing, Range parsing and the whole
 * conditional/range decision.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <check.h>

#include "core/config.h"
#include "core/static.h"
#include "core/util.h"

#define S(lit) ((struct qln_slice){(lit), sizeof(lit) - 1})

/* ------------------------------------------------------------ mappings */

START_TEST(test_mount_parse)
{
    char tmpl[] = "/tmp/qilin-static-XXXXXX", spec[PATH_MAX + 64], file[PATH_MAX + 8];
    char *dir = mkdtemp(tmpl);
    struct static_mount m;
    char err[512];

    ck_assert_ptr_nonnull(dir);
    util_format(spec, sizeof(spec), "/assets/=%s", dir);
    ck_assert_int_eq(static_mount_parse(spec, &m, err, sizeof(err)), 0);
    ck_assert_str_eq(m.prefix, "/assets");
    ck_assert_uint_eq(m.prefix_len, 7);
    ck_assert_str_eq(m.root, dir);
    ck_assert_int_ge(m.root_fd, 0); /* for openat2(2) */
    close(m.root_fd);

    util_format(spec, sizeof(spec), "/=%s", dir);
    ck_assert_int_eq(static_mount_parse(spec, &m, err, sizeof(err)), 0);
    ck_assert_uint_eq(m.prefix_len, 0);
    close(m.root_fd);

    ck_assert_int_eq(static_mount_parse("/static", &m, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--static-map '/static': expected URL_PREFIX=DIR"));
    ck_assert_int_eq(static_mount_parse("=/tmp", &m, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(static_mount_parse("/static=", &m, err, sizeof(err)), -EINVAL);
    ck_assert_int_eq(static_mount_parse("static=/tmp", &m, err, sizeof(err)), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "must start with '/'"));
    ck_assert_int_eq(static_mount_parse("/s=/nonexistent/qilin", &m, err, sizeof(err)), -ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "'/nonexistent/qilin' not found"));

    util_format(file, sizeof(file), "%s/f", dir);
    fclose(fopen(file, "w"));
    util_format(spec, sizeof(spec), "/s=%s", file);
    ck_assert_int_eq(static_mount_parse(spec, &m, err, sizeof(err)), -ENOTDIR);
    ck_assert_ptr_nonnull(strstr(err, "is not a directory"));
    unlink(file);
    rmdir(dir);
}
END_TEST

START_TEST(test_map_load)
{
    static struct static_map map; /* too large for Check's forked stack to be polite */
    struct config *cfg = config_new();
    char err[512], spec[64];
    int i;

    ck_assert_int_eq(config_register(cfg, core_options, "core", err, sizeof(err)), 0);
    ck_assert_int_eq(static_map_load(&map, cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(map.n, 0);
    ck_assert_int_eq(config_set(cfg, "static_map", "/static=/tmp", CONFIG_SRC_CLI, "--static-map",
                                err, sizeof(err)),
                     0);
    ck_assert_int_eq(config_set(cfg, "static_map", "/media/=/", CONFIG_SRC_CLI, "--static-map",
                                err, sizeof(err)),
                     0);
    ck_assert_int_eq(static_map_load(&map, cfg, err, sizeof(err)), 0);
    ck_assert_uint_eq(map.n, 2);
    ck_assert_str_eq(map.mounts[1].prefix, "/media");
    ck_assert_str_eq(map.mounts[1].root, "/");
    static_map_release(&map);
    ck_assert_uint_eq(map.n, 0);
    for (i = 0; i < STATIC_MAX_MOUNTS; i++) {
        util_format(spec, sizeof(spec), "/s%d=/tmp", i);
        config_set(cfg, "static_map", spec, CONFIG_SRC_CLI, "--static-map", err, sizeof(err));
    }
    ck_assert_int_eq(static_map_load(&map, cfg, err, sizeof(err)), -E2BIG);
    ck_assert_uint_eq(map.n, 0);
    ck_assert_ptr_nonnull(strstr(err, "--static-map: 18 mappings given, at most 16"));
    config_free(cfg);
}
END_TEST

static struct static_map
map_of(const char *const *prefixes, size_t n)
{
    struct static_map map;
    size_t i;

    memset(&map, 0, sizeof(map));
    for (i = 0; i < n; i++) {
        util_format(map.mounts[i].prefix, sizeof(map.mounts[i].prefix), "%s", prefixes[i]);
        map.mounts[i].prefix_len = strlen(prefixes[i]);
        util_format(map.mounts[i].root, sizeof(map.mounts[i].root), "/srv/%zu", i);
    }
    map.n = n;
    return map;
}

START_TEST(test_find)
{
    static const char *const prefixes[] = {"/static", "/static/img", "/media"};
    struct static_map map = map_of(prefixes, 3);

    ck_assert_ptr_eq(static_find(&map, S("/static/a.css")), &map.mounts[0]);
    ck_assert_ptr_eq(static_find(&map, S("/static")), &map.mounts[0]);
    ck_assert_ptr_eq(static_find(&map, S("/static/img/x.png")), &map.mounts[1]);
    ck_assert_ptr_eq(static_find(&map, S("/static/imgs/x.png")), &map.mounts[0]);
    ck_assert_ptr_eq(static_find(&map, S("/media/v.mp4")), &map.mounts[2]);
    ck_assert_ptr_null(static_find(&map, S("/staticfoo/a")));
    ck_assert_ptr_null(static_find(&map, S("/stati")));
    ck_assert_ptr_null(static_find(&map, S("/")));
    ck_assert_ptr_null(static_find(&map, S("*")));
    map.n = 0;
    ck_assert_ptr_null(static_find(&map, S("/static/a.css")));
}
END_TEST

/* ------------------------------------------------------------ paths */

static const struct {
    const char *rest;
    const char *want; /* NULL: refused */
} rel_cases[] = {
    {"/a.css", "a.css"},
    {"/css/site.css", "css/site.css"},
    {"//css///./site.css", "css/site.css"},
    {"/a%20b.txt", "a b.txt"},
    {"/%41%62", "Ab"},
    {"/dir%2Ffile", "dir/file"},
    {"/..a/b..", "..a/b.."},
    {"/...", "..."},
    {"/../secret", NULL},
    {"/a/../../secret", NULL},
    {"/a/..", NULL},
    {"/%2e%2e/secret", NULL},
    {"/%2E%2e%2fsecret", NULL},
    {"/..%2fsecret", NULL},
    {"/a%00.txt", NULL},
    {"/a\\..\\b", NULL},
    {"/a%5c..%5cb", NULL},
    {"/a%zz", NULL},
    {"/a%4", NULL},
    {"/a%", NULL},
    {"", NULL},
    {"/", NULL},
    {"/css/", NULL},
    {"/./", NULL},
    {"/.", NULL},
};

START_TEST(test_rel_path)
{
    size_t i;
    char out[PATH_MAX];

    for (i = 0; i < sizeof(rel_cases) / sizeof(rel_cases[0]); i++) {
        struct qln_slice rest = {rel_cases[i].rest, strlen(rel_cases[i].rest)};
        ssize_t n = static_rel_path(rest, out, sizeof(out));

        if (rel_cases[i].want == NULL) {
            ck_assert_msg(n == -ENOENT, "'%s' should be refused, got '%s'", rel_cases[i].rest,
                          n >= 0 ? out : "?");
        } else {
            ck_assert_msg(n >= 0, "'%s' refused", rel_cases[i].rest);
            ck_assert_str_eq(out, rel_cases[i].want);
            ck_assert_int_eq(n, (ssize_t)strlen(rel_cases[i].want));
        }
    }
}
END_TEST

START_TEST(test_rel_path_too_long)
{
    char out[8];

    ck_assert_int_eq(static_rel_path(S("/abc/defg"), out, sizeof(out)), -ENOENT);
    ck_assert_int_eq(static_rel_path(S("/abc/def"), out, sizeof(out)), 7);
    ck_assert_str_eq(out, "abc/def");
}
END_TEST

/* ------------------------------------------------------------ types and validators */

START_TEST(test_mime)
{
    ck_assert_str_eq(static_mime_type("/srv/index.html"), "text/html; charset=utf-8");
    ck_assert_str_eq(static_mime_type("a.CSS"), "text/css; charset=utf-8");
    ck_assert_str_eq(static_mime_type("app.min.js"), "text/javascript; charset=utf-8");
    ck_assert_str_eq(static_mime_type("d.json"), "application/json");
    ck_assert_str_eq(static_mime_type("i.svg"), "image/svg+xml");
    ck_assert_str_eq(static_mime_type("i.png"), "image/png");
    ck_assert_str_eq(static_mime_type("i.jpg"), "image/jpeg");
    ck_assert_str_eq(static_mime_type("i.jpeg"), "image/jpeg");
    ck_assert_str_eq(static_mime_type("i.gif"), "image/gif");
    ck_assert_str_eq(static_mime_type("i.webp"), "image/webp");
    ck_assert_str_eq(static_mime_type("favicon.ico"), "image/x-icon");
    ck_assert_str_eq(static_mime_type("r.txt"), "text/plain; charset=utf-8");
    ck_assert_str_eq(static_mime_type("f.woff2"), "font/woff2");
    ck_assert_str_eq(static_mime_type("m.wasm"), "application/wasm");
    ck_assert_str_eq(static_mime_type("app.js.map"), "application/json");
    ck_assert_str_eq(static_mime_type("s.xml"), "application/xml");
    ck_assert_str_eq(static_mime_type("d.pdf"), "application/pdf");
    ck_assert_str_eq(static_mime_type("archive.tar.zst"), "application/octet-stream");
    ck_assert_str_eq(static_mime_type("Makefile"), "application/octet-stream");
    ck_assert_str_eq(static_mime_type("/srv/v1.2/README"), "application/octet-stream");
    ck_assert_str_eq(static_mime_type("x."), "application/octet-stream");
}
END_TEST

START_TEST(test_etag)
{
    char e[48];

    ck_assert_uint_eq(static_etag(e, sizeof(e), 0x5f5e1000, 4096), 15);
    ck_assert_str_eq(e, "\"5f5e1000-1000\"");
    static_etag(e, sizeof(e), 1, 0);
    ck_assert_str_eq(e, "\"1-0\"");
}
END_TEST

START_TEST(test_etag_listed)
{
    const char *e = "\"5f-10\"";

    ck_assert(static_etag_listed(S("\"5f-10\""), e));
    ck_assert(static_etag_listed(S("W/\"5f-10\""), e));
    ck_assert(static_etag_listed(S("\"a\", \"5f-10\""), e));
    ck_assert(static_etag_listed(S("\"a\",W/\"5f-10\" , \"b\""), e));
    ck_assert(static_etag_listed(S("*"), e));
    ck_assert(static_etag_listed(S(" * "), e));
    ck_assert(!static_etag_listed(S("\"5f-11\""), e));
    ck_assert(!static_etag_listed(S("5f-10"), e));
    ck_assert(!static_etag_listed(S("\"a\", \"b\""), e));
    ck_assert(!static_etag_listed(S(""), e));
    ck_assert(!static_etag_listed(S(","), e));
}
END_TEST

START_TEST(test_parse_date)
{
    ck_assert_int_eq(static_parse_date(S("Sun, 06 Nov 1994 08:49:37 GMT")), 784111777);
    ck_assert_int_eq(static_parse_date(S("Thu, 01 Jan 1970 00:00:00 GMT")), 0);
    ck_assert_int_eq(static_parse_date(S("Mon, 23 Nov 2026 14:15:24 GMT")), 1795443324);
    /* The obsolete forms and anything malformed: ignored by the caller. */
    ck_assert_int_eq(static_parse_date(S("Sunday, 06-Nov-94 08:49:37 GMT")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun Nov  6 08:49:37 1994")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun, 06 Nov 1994 08:49:37 UTC")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun, 06 Xyz 1994 08:49:37 GMT")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun, 06 anF 1994 08:49:37 GMT")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun, 32 Nov 1994 08:49:37 GMT")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun, 06 Nov 1994 24:49:37 GMT")), -1);
    ck_assert_int_eq(static_parse_date(S("Sun, 06 Nov 19x4 08:49:37 GMT")), -1);
    ck_assert_int_eq(static_parse_date(S("")), -1);
}
END_TEST

/* ------------------------------------------------------------ ranges */

static const struct {
    const char *v;
    int64_t size;
    enum static_range want;
    int64_t first, len;
} range_cases[] = {
    {"bytes=0-99", 1000, STATIC_RANGE_OK, 0, 100},
    {"bytes=100-", 1000, STATIC_RANGE_OK, 100, 900},
    {"bytes=-100", 1000, STATIC_RANGE_OK, 900, 100},
    {"bytes=-5000", 1000, STATIC_RANGE_OK, 0, 1000},
    {"bytes=990-5000", 1000, STATIC_RANGE_OK, 990, 10},
    {"bytes=999-999", 1000, STATIC_RANGE_OK, 999, 1},
    {"Bytes=5-9 ", 1000, STATIC_RANGE_OK, 5, 5},
    {"bytes=1000-", 1000, STATIC_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=5000-6000", 1000, STATIC_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-0", 1000, STATIC_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-", 0, STATIC_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=-1", 0, STATIC_RANGE_UNSATISFIABLE, 0, 0},
    {"bytes=0-1,5-6", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=9-5", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=-", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=a-b", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=1-2x", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=5", 1000, STATIC_RANGE_NONE, 0, 0},
    {"bytes=1234567890123456789-", 1000, STATIC_RANGE_NONE, 0, 0},
    {"items=0-5", 1000, STATIC_RANGE_NONE, 0, 0},
    {"", 1000, STATIC_RANGE_NONE, 0, 0},
};

START_TEST(test_range_parse)
{
    size_t i;

    for (i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
        struct qln_slice v = {range_cases[i].v, strlen(range_cases[i].v)};
        int64_t first = -1, len = -1;
        enum static_range rc = static_range_parse(v, range_cases[i].size, &first, &len);

        ck_assert_msg(rc == range_cases[i].want, "'%s' (size %lld): %d, want %d",
                      range_cases[i].v, (long long)range_cases[i].size, rc, range_cases[i].want);
        if (rc == STATIC_RANGE_OK) {
            ck_assert_int_eq(first, range_cases[i].first);
            ck_assert_int_eq(len, range_cases[i].len);
        }
    }
}
END_TEST

/* ------------------------------------------------------------ the decision */

#define MTIME 784111777 /* Sun, 06 Nov 1994 08:49:37 GMT */
#define ETAG "\"2ebc98a1-3e8\""

static struct static_answer
decide(bool is_get, const char *n1, const char *v1, const char *n2, const char *v2)
{
    struct qln_header h[3] = {{S("Host"), S("x")}};
    struct static_answer a;
    size_t n = 1;

    if (n1 != NULL)
        h[n++] = (struct qln_header){{n1, strlen(n1)}, {v1, strlen(v1)}};
    if (n2 != NULL)
        h[n++] = (struct qln_header){{n2, strlen(n2)}, {v2, strlen(v2)}};
    static_decide(h, n, is_get, 1000, MTIME, ETAG, &a);
    return a;
}

START_TEST(test_decide_conditional)
{
    struct static_answer a = decide(true, NULL, NULL, NULL, NULL);

    ck_assert_int_eq(a.status, 200);
    ck_assert_int_eq(a.first, 0);
    ck_assert_int_eq(a.len, 1000);
    ck_assert_int_eq(decide(true, "If-None-Match", ETAG, NULL, NULL).status, 304);
    ck_assert_int_eq(decide(false, "if-none-match", "\"x\", " ETAG, NULL, NULL).status, 304);
    ck_assert_int_eq(decide(true, "If-None-Match", "*", NULL, NULL).status, 304);
    ck_assert_int_eq(decide(true, "If-None-Match", "\"other\"", NULL, NULL).status, 200);
    ck_assert_int_eq(
        decide(true, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT", NULL, NULL).status, 304);
    ck_assert_int_eq(
        decide(true, "If-Modified-Since", "Mon, 07 Nov 1994 08:49:37 GMT", NULL, NULL).status, 304);
    ck_assert_int_eq(
        decide(true, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT", NULL, NULL).status, 200);
    ck_assert_int_eq(decide(true, "If-Modified-Since", "yesterday", NULL, NULL).status, 200);
    /* RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since. */
    ck_assert_int_eq(decide(true, "If-None-Match", "\"other\"", "If-Modified-Since",
                            "Mon, 07 Nov 1994 08:49:37 GMT")
                         .status,
                     200);
    ck_assert_int_eq(decide(true, "If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT",
                            "If-None-Match", ETAG)
                         .status,
                     304);
}
END_TEST

START_TEST(test_decide_range)
{
    struct static_answer a = decide(true, "Range", "bytes=10-19", NULL, NULL);

    ck_assert_int_eq(a.status, 206);
    ck_assert_int_eq(a.first, 10);
    ck_assert_int_eq(a.len, 10);
    ck_assert_int_eq(decide(true, "Range", "bytes=1000-", NULL, NULL).status, 416);
    ck_assert_int_eq(decide(true, "Range", "bytes=0-1,3-4", NULL, NULL).status, 200);
    /* HEAD: Range is for GET only. */
    ck_assert_int_eq(decide(false, "Range", "bytes=10-19", NULL, NULL).status, 200);
    /* If-Range: the exact strong tag or the exact date, else the whole file. */
    ck_assert_int_eq(decide(true, "Range", "bytes=10-19", "If-Range", ETAG).status, 206);
    ck_assert_int_eq(decide(true, "Range", "bytes=10-19", "If-Range", "W/" ETAG).status, 200);
    ck_assert_int_eq(decide(true, "Range", "bytes=10-19", "If-Range", "\"old\"").status, 200);
    ck_assert_int_eq(
        decide(true, "Range", "bytes=10-19", "If-Range", "Sun, 06 Nov 1994 08:49:37 GMT").status,
        206);
    ck_assert_int_eq(
        decide(true, "Range", "bytes=10-19", "If-Range", "Mon, 07 Nov 1994 08:49:37 GMT").status,
        200);
    ck_assert_int_eq(decide(true, "Range", "bytes=10-19", "If-Range", "garbage").status, 200);
    /* A matching If-None-Match answers 304 before any range. */
    ck_assert_int_eq(decide(true, "Range", "bytes=10-19", "If-None-Match", ETAG).status, 304);
}
END_TEST

static Suite *
static_suite(void)
{
    Suite *s = suite_create("static");
    TCase *tc = tcase_create("core");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_mount_parse);
    tcase_add_test(tc, test_map_load);
    tcase_add_test(tc, test_find);
    tcase_add_test(tc, test_rel_path);
    tcase_add_test(tc, test_rel_path_too_long);
    tcase_add_test(tc, test_mime);
    tcase_add_test(tc, test_etag);
    tcase_add_test(tc, test_etag_listed);
    tcase_add_test(tc, test_parse_date);
    tcase_add_test(tc, test_range_parse);
    tcase_add_test(tc, test_decide_conditional);
    tcase_add_test(tc, test_decide_range);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(static_suite());
    int failed;

    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
