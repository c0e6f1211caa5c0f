/*
 * Static files served by the core (--static-map URL_PREFIX=DIR):
 * mapping, path safety, Content-Type, validators, conditional and range
 * requests, and the answer written with sendfile(2) through the response
 * writer. The master checks the mappings at startup; workers serve.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <qilin/log.h>
#include <qilin/response.h>

#include "config.h"
#include "http.h"
#include "request.h"
#include "response.h"
#include "static.h"
#include "util.h"

#define SLICE_LIT(s) ((struct qln_slice){(s), sizeof(s) - 1})

/* ------------------------------------------------------------ mappings */

int
static_mount_parse(const char *spec, struct static_mount *m, char *err, size_t errlen)
{
    const char *eq = strchr(spec, '=');
    size_t plen;
    struct stat st;

    if (eq == NULL || eq == spec || eq[1] == '\0')
        return util_err(err, errlen, -EINVAL,
                        "--static-map '%s': expected URL_PREFIX=DIR (e.g. /static=./static)", spec);
    plen = (size_t)(eq - spec);
    if (spec[0] != '/')
        return util_err(err, errlen, -EINVAL,
                        "--static-map '%s': the URL prefix must start with '/' (e.g. /static=%s)",
                        spec, eq + 1);
    while (plen > 0 && spec[plen - 1] == '/')
        plen--;
    if (plen >= sizeof(m->prefix))
        return util_err(err, errlen, -EINVAL,
                        "--static-map '%s': the URL prefix is longer than %d bytes", spec,
                        STATIC_PREFIX_MAX - 1);
    memcpy(m->prefix, spec, plen);
    m->prefix[plen] = '\0';
    m->prefix_len = plen;
    if (stat(eq + 1, &st) != 0 || realpath(eq + 1, m->root) == NULL)
        return util_err(err, errlen, -ENOENT,
                        "--static-map '%s': directory '%s' not found (%s): create it or fix the"
                        " path",
                        spec, eq + 1, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return util_err(err, errlen, -ENOTDIR,
                        "--static-map '%s': '%s' is not a directory: name the directory to serve",
                        spec, eq + 1);
    m->root_len = strlen(m->root);
    /* Without it (an old kernel's openat2 is missing anyway), open_file
       falls back to realpath(3). */
    m->root_fd = open(m->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    return 0;
}

void
static_map_release(struct static_map *map)
{
    size_t i;

    for (i = 0; i < map->n; i++)
        if (map->mounts[i].root_fd >= 0)
            close(map->mounts[i].root_fd);
    map->n = 0;
}

int
static_map_load(struct static_map *map, const struct config *cfg, char *err, size_t errlen)
{
    size_t i, n = config_list_len(cfg, "static_map");
    int rc;

    map->n = 0;
    if (n > STATIC_MAX_MOUNTS)
        return util_err(err, errlen, -E2BIG,
                        "--static-map: %zu mappings given, at most %d: serve a common parent"
                        " directory instead",
                        n, STATIC_MAX_MOUNTS);
    for (i = 0; i < n; i++) {
        rc = static_mount_parse(config_list_get(cfg, "static_map", i), &map->mounts[i], err,
                                errlen);
        if (rc != 0) {
            map->n = i;
            static_map_release(map);
            return rc;
        }
    }
    map->n = n;
    return 0;
}

const struct static_mount *
static_find(const struct static_map *map, struct qln_slice path)
{
    const struct static_mount *best = NULL;
    size_t i;

    for (i = 0; i < map->n; i++) {
        const struct static_mount *m = &map->mounts[i];

        if (path.len < m->prefix_len || memcmp(path.p, m->prefix, m->prefix_len) != 0)
            continue;
        if (path.len > m->prefix_len && path.p[m->prefix_len] != '/')
            continue; /* "/staticfoo" is not under "/static" */
        if (best == NULL || m->prefix_len > best->prefix_len)
            best = m;
    }
    return best;
}

/* ------------------------------------------------------------ paths */

/*
 * Percent-decodes S into OUT. A decoded '/' (from %2F) becomes a separator
 * like any other, so "..%2F" is caught as a ".." segment below; NUL would
 * cut the path short at open(2), and a backslash is a separator on some
 * systems a tree may be copied to: both are refused.
 */
static ssize_t
percent_decode(struct qln_slice s, char *out, size_t outlen)
{
    size_t i, o = 0;
    int hi, lo;
    char ch;

    for (i = 0; i < s.len; i++) {
        ch = s.p[i];
        if (ch == '%') {
            if (i + 2 >= s.len)
                return -ENOENT;
            hi = util_hex_digit(s.p[i + 1]);
            lo = util_hex_digit(s.p[i + 2]);
            if (hi < 0 || lo < 0)
                return -ENOENT;
            ch = (char)(hi * 16 + lo);
            i += 2;
        }
        if (ch == '\0' || ch == '\\' || o + 1 >= outlen)
            return -ENOENT;
        out[o++] = ch;
    }
    out[o] = '\0';
    return (ssize_t)o;
}

ssize_t
static_rel_path(struct qln_slice rest, char *out, size_t outlen)
{
    char dec[PATH_MAX];
    ssize_t n = percent_decode(rest, dec, sizeof(dec));
    size_t i = 0, o = 0, b, len;

    if (n <= 0 || dec[n - 1] == '/')
        return -ENOENT; /* the directory itself: no listings */
    while (i < (size_t)n) {
        b = i;
        while (i < (size_t)n && dec[i] != '/')
            i++;
        len = i - b;
        i++; /* past the '/' */
        if (len == 0 || (len == 1 && dec[b] == '.'))
            continue;
        /* Refused rather than resolved: a ".." can only be a probe or a
           mistake, and refusing it keeps DIR's boundary a textual fact. */
        if (len == 2 && dec[b] == '.' && dec[b + 1] == '.')
            return -ENOENT;
        if (o + (o > 0) + len + 1 > outlen)
            return -ENOENT;
        if (o > 0)
            out[o++] = '/';
        memcpy(out + o, dec + b, len);
        o += len;
    }
    if (o == 0)
        return -ENOENT;
    out[o] = '\0';
    return (ssize_t)o;
}

/* True when the resolved path REAL lies strictly inside M's root. */
static bool
inside_root(const struct static_mount *m, const char *real)
{
    if (m->root_len == 1) /* the root is "/" */
        return real[1] != '\0';
    return strncmp(real, m->root, m->root_len) == 0 && real[m->root_len] == '/';
}

/* ------------------------------------------------------------ Content-Type */

static const struct {
    const char *ext;
    const char *type;
} mime_types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"txt", "text/plain; charset=utf-8"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"wasm", "application/wasm"},
    {"xml", "application/xml"},
    {"pdf", "application/pdf"},
};

const char *
static_mime_type(const char *name)
{
    const char *slash = strrchr(name, '/');
    const char *dot = strrchr(slash != NULL ? slash + 1 : name, '.');
    size_t i;

    if (dot != NULL) {
        for (i = 0; i < ARRAY_SIZE(mime_types); i++) {
            if (strcasecmp(dot + 1, mime_types[i].ext) == 0)
                return mime_types[i].type;
        }
    }
    return "application/octet-stream";
}

/* ------------------------------------------------------------ validators */

size_t
static_etag(char *out, size_t len, time_t mtime, int64_t size)
{
    util_format(out, len, "\"%llx-%llx\"", (unsigned long long)mtime, (unsigned long long)size);
    return strlen(out);
}

static struct qln_slice
trim(struct qln_slice s)
{
    while (s.len > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.len--;
    }
    while (s.len > 0 && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

bool
static_etag_listed(struct qln_slice v, const char *etag)
{
    struct qln_slice own = {etag, strlen(etag)}, item;
    const char *comma;

    if (own.len > 2 && etag[0] == 'W' && etag[1] == '/') {
        own.p += 2;
        own.len -= 2;
    }
    while (v.len > 0) {
        comma = memchr(v.p, ',', v.len);
        item = trim((struct qln_slice){v.p, comma != NULL ? (size_t)(comma - v.p) : v.len});
        if (item.len == 1 && item.p[0] == '*')
            return true;
        if (item.len > 2 && item.p[0] == 'W' && item.p[1] == '/') {
            item.p += 2;
            item.len -= 2;
        }
        if (item.len == own.len && memcmp(item.p, own.p, own.len) == 0)
            return true;
        if (comma == NULL)
            break;
        v.len -= (size_t)(comma - v.p) + 1;
        v.p = comma + 1;
    }
    return false;
}

/* Two decimal digits at P, or -1. */
static int
two_digits(const char *p)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

/*
 * Only the IMF-fixdate form, which every current client sends: RFC 9110
 * §5.6.7's obsolete forms fail to parse, and a condition that does not parse
 * is ignored, which only costs a full 200.
 */
time_t
static_parse_date(struct qln_slice v)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    const char *p = v.p, *mon;
    struct tm tm = {0};
    int year_hi, year_lo;

    if (v.len != 29 || p[3] != ',' || p[4] != ' ' || p[7] != ' ' || p[11] != ' ' ||
        p[16] != ' ' || p[19] != ':' || p[22] != ':' || memcmp(p + 25, " GMT", 4) != 0)
        return -1;
    mon = strstr(months, (char[4]){p[8], p[9], p[10], '\0'});
    year_hi = two_digits(p + 12);
    year_lo = two_digits(p + 14);
    tm.tm_mday = two_digits(p + 5);
    tm.tm_hour = two_digits(p + 17);
    tm.tm_min = two_digits(p + 20);
    tm.tm_sec = two_digits(p + 23);
    if (mon == NULL || (mon - months) % 3 != 0 || year_hi < 0 || year_lo < 0 || tm.tm_mday < 1 ||
        tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 ||
        tm.tm_sec < 0 || tm.tm_sec > 60)
        return -1;
    tm.tm_mon = (int)((mon - months) / 3);
    tm.tm_year = year_hi * 100 + year_lo - 1900;
    return timegm(&tm);
}

/* Decimal digits S[*I..] into *OUT (at most 18 of them); false when there are none. */
static bool
digits(struct qln_slice s, size_t *i, int64_t *out)
{
    size_t b = *i;
    int64_t n = 0;

    while (*i < s.len && s.p[*i] >= '0' && s.p[*i] <= '9') {
        if (*i - b == 18)
            return false;
        n = n * 10 + (s.p[*i] - '0');
        (*i)++;
    }
    *out = n;
    return *i > b;
}

enum static_range
static_range_parse(struct qln_slice v, int64_t size, int64_t *first, int64_t *len)
{
    int64_t a, b = -1;
    size_t i = 0;

    v = trim(v);
    if (v.len < 6 || strncasecmp(v.p, "bytes=", 6) != 0)
        return STATIC_RANGE_NONE;
    v = trim((struct qln_slice){v.p + 6, v.len - 6});
    if (memchr(v.p, ',', v.len) != NULL)
        return STATIC_RANGE_NONE; /* several ranges: the whole file (documented) */
    if (v.len > 0 && v.p[0] == '-') {
        i = 1;
        if (!digits(v, &i, &a) || i != v.len)
            return STATIC_RANGE_NONE;
        if (a == 0 || size == 0)
            return STATIC_RANGE_UNSATISFIABLE;
        *first = a < size ? size - a : 0;
        *len = size - *first;
        return STATIC_RANGE_OK;
    }
    if (!digits(v, &i, &a) || i >= v.len || v.p[i++] != '-')
        return STATIC_RANGE_NONE;
    if (i < v.len && (!digits(v, &i, &b) || b < a))
        return STATIC_RANGE_NONE;
    if (i != v.len)
        return STATIC_RANGE_NONE;
    if (a >= size)
        return STATIC_RANGE_UNSATISFIABLE;
    *first = a;
    *len = (b < 0 || b >= size ? size - 1 : b) - a + 1;
    return STATIC_RANGE_OK;
}

static const struct qln_slice *
header(const struct qln_header *h, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (slice_caseeq(h[i].name, name))
            return &h[i].value;
    }
    return NULL;
}

/*
 * If-Range (RFC 9110 §13.1.5) needs a strong match: the exact entity-tag
 * (never a weak one), or exactly our Last-Modified date.
 */
static bool
if_range_holds(struct qln_slice v, time_t mtime, const char *etag)
{
    v = trim(v);
    if (v.len > 0 && v.p[0] == '"')
        return v.len == strlen(etag) && memcmp(v.p, etag, v.len) == 0;
    if (v.len > 1 && v.p[0] == 'W' && v.p[1] == '/')
        return false;
    return static_parse_date(v) == mtime;
}

void
static_decide(const struct qln_header *h, size_t n, bool is_get, int64_t size, time_t mtime,
              const char *etag, struct static_answer *a)
{
    const struct qln_slice *inm = header(h, n, "If-None-Match");
    const struct qln_slice *ims = header(h, n, "If-Modified-Since");
    const struct qln_slice *range = header(h, n, "Range");
    const struct qln_slice *if_range = header(h, n, "If-Range");
    time_t t;

    *a = (struct static_answer){.status = 200, .first = 0, .len = size};
    if (inm != NULL) {
        if (static_etag_listed(*inm, etag)) {
            a->status = 304;
            return;
        }
    } else if (ims != NULL && (t = static_parse_date(trim(*ims))) >= 0 && mtime <= t) {
        a->status = 304;
        return;
    }
    /* Range is defined for GET only (RFC 9110 §14.2); HEAD gets the 200 head. */
    if (!is_get || range == NULL || (if_range != NULL && !if_range_holds(*if_range, mtime, etag)))
        return;
    switch (static_range_parse(*range, size, &a->first, &a->len)) {
    case STATIC_RANGE_OK:
        a->status = 206;
        break;
    case STATIC_RANGE_UNSATISFIABLE:
        a->status = 416;
        a->first = a->len = 0;
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------ serving */

/*
 * A small html error page with keep-alive (unlike the core's protocol
 * errors, nothing is wrong with the connection). 405 names the methods.
 */
static int
answer_status(struct qln_response *resp, int status)
{
    struct qln_header h[3];
    char body[256], length[24], code[4];
    size_t n = 0, body_len = response_error_body(body, sizeof(body), status);

    util_format(code, sizeof(code), "%d", status);
    util_format(length, sizeof(length), "%zu", body_len);
    h[n++] = (struct qln_header){SLICE_LIT("Content-Type"), SLICE_LIT("text/html")};
    h[n++] = (struct qln_header){SLICE_LIT("Content-Length"), {length, strlen(length)}};
    if (status == 405)
        h[n++] = (struct qln_header){SLICE_LIT("Allow"), SLICE_LIT("GET, HEAD")};
    if (qln_resp_start(resp, (struct qln_slice){code, 3}, h, n) == 0)
        qln_resp_write(resp, body, body_len);
    return 0;
}

/*
 * Opens REL under M's root with openat2(2) and RESOLVE_BENEATH: the kernel
 * follows relative symlinks and refuses (EXDEV) an absolute one or any
 * step that leaves the root, in one call and without a window between a
 * check and the open; no lstat(2) per component either. -ENOSYS where the
 * kernel (before 5.6) or a seccomp filter lacks openat2.
 */
static int
open_beneath(const struct static_mount *m, const char *rel)
{
    /* O_NONBLOCK: opening a FIFO must not block the worker; it is refused later. */
    struct open_how how = {
        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd;

    if (m->root_fd < 0)
        return -ENOSYS;
    fd = syscall(SYS_openat2, m->root_fd, rel, &how, sizeof(how));
    return fd >= 0 ? (int)fd : -errno;
}

/*
 * The same without openat2, or for a path through an absolute symlink or
 * one that leaves the root: realpath(3) resolves every link and "..", and
 * the result is checked against the root (itself resolved at startup).
 * O_NOFOLLOW then refuses a last component swapped for a link since; a
 * directory swapped higher up in between stays possible, as with nginx's
 * default disable_symlinks off, for whoever can write inside DIR.
 */
static int
open_resolved(const struct static_mount *m, const char *rel)
{
    char full[PATH_MAX], real[PATH_MAX];
    int fd;

    if (util_format(full, sizeof(full), "%s/%s", m->root, rel) != 0)
        return -ENOENT;
    if (realpath(full, real) == NULL)
        return -errno;
    if (!inside_root(m, real))
        return -ENOENT;
    fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    return fd >= 0 ? fd : -errno;
}

/*
 * Opens the file REQ names under M: the fd (>= 0) with *ST filled and its
 * relative path (for the Content-Type) in REL, or -(HTTP status).
 */
static int
open_file(const struct static_mount *m, const struct qln_request *req, char *rel,
          struct stat *st)
{
    struct qln_slice rest = {req->path.p + m->prefix_len, req->path.len - m->prefix_len};
    int fd;

    if (static_rel_path(rest, rel, PATH_MAX) < 0)
        return -404;
    fd = open_beneath(m, rel);
    /* EXDEV: a symlink on the way is absolute or climbs out of the root;
       realpath(3) decides by where it finally leads. */
    if (fd == -ENOSYS || fd == -EXDEV)
        fd = open_resolved(m, rel);
    if (fd < 0)
        return fd == -EACCES ? -403 : -404;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        close(fd);
        return -404;
    }
    return fd;
}

int
static_serve(const struct static_mount *m, struct qln_request *req, struct qln_response *resp)
{
    struct static_answer a;
    struct qln_header h[8];
    struct stat st;
    char rel[PATH_MAX], etag[48], modified[30], length[24], range[80], code[4];
    size_t n = 0;
    bool is_get = slice_eq(req->method, "GET");
    int fd;

    if (!is_get && !req->is_head)
        return answer_status(resp, 405);
    fd = open_file(m, req, rel, &st);
    if (fd < 0)
        return answer_status(resp, -fd);
    static_etag(etag, sizeof(etag), st.st_mtime, (int64_t)st.st_size);
    response_format_date(st.st_mtime, modified);
    static_decide(req->headers, req->nheaders, is_get, (int64_t)st.st_size, st.st_mtime, etag, &a);

    util_format(code, sizeof(code), "%d", a.status);
    h[n++] = (struct qln_header){SLICE_LIT("ETag"), {etag, strlen(etag)}};
    h[n++] = (struct qln_header){SLICE_LIT("Last-Modified"), {modified, 29}};
    if (a.status != 304) {
        const char *type = a.status == 416 ? "text/plain" : static_mime_type(rel);

        util_format(length, sizeof(length), "%lld", (long long)a.len);
        h[n++] = (struct qln_header){SLICE_LIT("Content-Type"), {type, strlen(type)}};
        h[n++] = (struct qln_header){SLICE_LIT("Content-Length"), {length, strlen(length)}};
        h[n++] = (struct qln_header){SLICE_LIT("Accept-Ranges"), SLICE_LIT("bytes")};
    }
    if (a.status == 206)
        util_format(range, sizeof(range), "bytes %lld-%lld/%lld", (long long)a.first,
                    (long long)(a.first + a.len - 1), (long long)st.st_size);
    else if (a.status == 416)
        util_format(range, sizeof(range), "bytes */%lld", (long long)st.st_size);
    if (a.status == 206 || a.status == 416)
        h[n++] = (struct qln_header){SLICE_LIT("Content-Range"), {range, strlen(range)}};

    if (qln_resp_start(resp, (struct qln_slice){code, 3}, h, n) == 0 && a.len > 0 &&
        (a.status == 200 || a.status == 206))
        qln_resp_sendfile(resp, fd, (off_t)a.first, a.len);
    close(fd);
    return 0;
}
