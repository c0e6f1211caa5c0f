/*
 * App plugin `null`, used only by the benchmark (bench/run.py): answers every
 * request from C through qln_resp_*, so its figures are the core's own
 * ceiling without Python. init/shutdown run in the master, the rest in each
 * worker. Never installed.
 *
 *   qilin --plugin bench/plugin-null/.libs/null.so hello   13-byte "Hello, World!"
 *   ... big      a 1 MiB body from one buffer made at load time
 *   ... upload   reads and discards the request body, then answers as hello
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qilin/plugin.h>

#define BIG_LEN (1024 * 1024)

enum null_mode {
    NULL_HELLO,
    NULL_BIG,
    NULL_UPLOAD,
};

struct null_state {
    enum null_mode mode;
    char *big; /* the 1 MiB body, made once in load_app so no request allocates */
    char clen[24];
};

static const char hello_body[] = "Hello, World!";

static int
null_init(struct qln_ctx *ctx, void **state, char *err, size_t errlen)
{
    *state = calloc(1, sizeof(struct null_state));
    if (*state == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int
null_load_app(void *state, const char *spec, char *err, size_t errlen)
{
    struct null_state *st = state;

    if (strcmp(spec, "hello") == 0) {
        st->mode = NULL_HELLO;
    } else if (strcmp(spec, "upload") == 0) {
        st->mode = NULL_UPLOAD;
    } else if (strcmp(spec, "big") == 0) {
        st->mode = NULL_BIG;
        if (st->big == NULL) {
            st->big = malloc(BIG_LEN);
            if (st->big == NULL) {
                snprintf(err, errlen, "out of memory for the 1 MiB body");
                return -ENOMEM;
            }
            /* Touch every page now: the benchmark counts page faults per request. */
            memset(st->big, 'x', BIG_LEN);
        }
    } else {
        snprintf(err, errlen, "null plugin: unknown app '%s' (use hello, big or upload)", spec);
        return -EINVAL;
    }
    snprintf(st->clen, sizeof(st->clen), "%zu",
             st->mode == NULL_BIG ? (size_t)BIG_LEN : sizeof(hello_body) - 1);
    return 0;
}

/* Drains the request body with a stack buffer: nothing is allocated per request. */
static int
drain_body(struct qln_request *req)
{
    char buf[16384];
    ssize_t n;

    do {
        n = qln_req_read(req, buf, sizeof(buf));
    } while (n > 0);
    return n < 0 ? (int)n : 0;
}

static int
null_handle(void *state, void *tstate, struct qln_request *req, struct qln_response *resp)
{
    static const char status[] = "200 OK";
    static const char ctype_name[] = "Content-Type", ctype[] = "text/plain";
    static const char clen_name[] = "Content-Length";
    struct null_state *st = state;
    struct qln_header h[2];
    int rc;

    if (st->mode == NULL_UPLOAD && (rc = drain_body(req)) != 0)
        return rc;
    h[0] = (struct qln_header){{ctype_name, sizeof(ctype_name) - 1}, {ctype, sizeof(ctype) - 1}};
    h[1] = (struct qln_header){{clen_name, sizeof(clen_name) - 1}, {st->clen, strlen(st->clen)}};
    rc = qln_resp_start(resp, (struct qln_slice){status, sizeof(status) - 1}, h, 2);
    if (rc != 0)
        return rc;
    if (st->mode == NULL_BIG)
        return qln_resp_write(resp, st->big, BIG_LEN);
    return qln_resp_write(resp, hello_body, sizeof(hello_body) - 1);
}

/* Without --preload the body was made in the worker: give it back there. */
static void
null_worker_exit(void *state)
{
    struct null_state *st = state;

    free(st->big);
    st->big = NULL;
}

static void
null_shutdown(void *state)
{
    struct null_state *st = state;

    free(st->big);
    free(st);
}

static const struct qln_app_ops null_ops = {
    .size = sizeof(struct qln_app_ops),
    .init = null_init,
    .load_app = null_load_app,
    .handle = null_handle,
    .worker_exit = null_worker_exit,
    .shutdown = null_shutdown,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_APP, .name = "null", .version = QLN_VERSION,
                  .description = "benchmark-only C app: the core's ceiling without Python",
                  .app = &null_ops);
