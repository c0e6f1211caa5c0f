/*
 * --static-map URL_PREFIX=DIR: GET and HEAD requests under a
 * prefix are answered from files in DIR by the core, before the app plugin
 * sees them, in every worker class. The parsing, path, range and validator
 * helpers are pure (unit-tested); static_serve() does the I/O. Master
 * (startup check) and workers.
 */
#ifndef QILIN_CORE_STATIC_H
#define QILIN_CORE_STATIC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <qilin/common.h>

struct config;

/* Mappings per server; more is a configuration error. */
#define STATIC_MAX_MOUNTS 16
/* Longest URL prefix accepted, in bytes. */
#define STATIC_PREFIX_MAX 256

struct static_mount {
    char prefix[STATIC_PREFIX_MAX]; /* "/static", no trailing '/'; "" maps "/" */
    size_t prefix_len;
    char root[PATH_MAX]; /* realpath(3) of DIR */
    size_t root_len;
    int root_fd; /* O_PATH descriptor of root for openat2(2); -1 without one */
};

/* Fixed-size, so a worker's settings need no allocation; static_map_release
   closes the directory descriptors. */
struct static_map {
    struct static_mount mounts[STATIC_MAX_MOUNTS];
    size_t n;
};

/*
 * Parses one "URL_PREFIX=DIR" item into M: the prefix must start with '/'
 * (trailing slashes are dropped), DIR must exist and be a directory; a
 * relative DIR is taken from the current directory (after --chdir).
 * Returns 0, or -EINVAL/-ENOENT/-ENOTDIR with ERR naming --static-map and
 * the fix.
 */
int static_mount_parse(const char *spec, struct static_mount *m, char *err, size_t errlen);

/*
 * Fills MAP from the static_map option of CFG (empty when unset). Returns 0
 * or the first item's error (see static_mount_parse; -E2BIG beyond
 * STATIC_MAX_MOUNTS). MAP is left empty on error; one loaded before must
 * have been released.
 */
int static_map_load(struct static_map *map, const struct config *cfg, char *err, size_t errlen);

/* Closes the descriptors MAP holds and empties it. */
void static_map_release(struct static_map *map);

/*
 * The mount whose prefix PATH (raw, still percent-encoded) falls under: the
 * prefix followed by '/' or the end of PATH. The longest prefix wins. NULL
 * when none does (the app answers). Thread-safe.
 */
const struct static_mount *static_find(const struct static_map *map, struct qln_slice path);

/*
 * Turns REST (the raw path after the prefix) into a relative file path in
 * OUT (OUTLEN bytes, NUL-terminated): percent-decoded, empty and "."
 * segments dropped. Refuses (-ENOENT) a ".." segment, a NUL or a backslash
 * (decoded or not), a malformed %-escape, an empty result (the directory
 * itself) and a result longer than OUTLEN. Returns the length or -ENOENT.
 */
ssize_t static_rel_path(struct qln_slice rest, char *out, size_t outlen);

/* The Content-Type for NAME's extension (case-insensitive); application/octet-stream by default. */
const char *static_mime_type(const char *name);

/* The strong validator nginx gives a file: "\"<mtime hex>-<size hex>\"". Returns its length. */
size_t static_etag(char *out, size_t len, time_t mtime, int64_t size);

/*
 * True when the If-None-Match value V (a list of entity-tags, or "*")
 * matches ETAG under the weak comparison (RFC 9110 §13.1.2: W/ ignored).
 */
bool static_etag_listed(struct qln_slice v, const char *etag);

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); -1 when V is not one. */
time_t static_parse_date(struct qln_slice v);

enum static_range {
    STATIC_RANGE_NONE = 0, /* absent, not "bytes=", malformed or several: send it all */
    STATIC_RANGE_OK,       /* one satisfiable range: *FIRST, *LEN set */
    STATIC_RANGE_UNSATISFIABLE,
};

/*
 * Parses a Range value for a file of SIZE bytes: "bytes=a-b", "bytes=a-"
 * or "bytes=-n" (RFC 9110 §14.1.2). b past the end is clamped; a first
 * byte at or past the end, or "-0", is unsatisfiable.
 */
enum static_range static_range_parse(struct qln_slice v, int64_t size, int64_t *first,
                                     int64_t *len);

/* What a static file request gets. */
struct static_answer {
    int status;    /* 200, 206, 304 or 416 */
    int64_t first; /* 200, 206: the bytes to send */
    int64_t len;
};

/*
 * Decides the answer for a file of SIZE bytes modified at MTIME with ETAG,
 * from the request's conditional and range headers H[0, N): If-None-Match
 * (304; it takes precedence over If-Modified-Since, RFC 9110 §13.2.2),
 * If-Modified-Since (304), then, for GET only, Range (206 or 416) unless
 * an If-Range fails to match (200). Pure; thread-safe.
 */
void static_decide(const struct qln_header *h, size_t n, bool is_get, int64_t size, time_t mtime,
                   const char *etag, struct static_answer *a);

/*
 * Answers the request REQ under mount M on RESP, the way an app plugin's
 * handle() would: always through qln_resp_*(), files with sendfile(2)
 * through the connection's wait hook. Returns 0 (write errors are left in
 * RESP for the caller's response_finish()).
 */
int static_serve(const struct static_mount *m, struct qln_request *req, struct qln_response *resp);

#endif
