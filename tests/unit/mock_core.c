/*
 * The mock core of the app-plugin unit suites (mock_core.h): the qln_*
 * functions over in-memory requests and responses, logging, config and
 * hooks captured in the state below.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <check.h>

#include <qilin/plugin.h>

#include "core/field.h"
#include "mock_core.h"

/* The captured state (mock_core.h), per test process. */
char mock_log_buf[MOCK_LOG_SIZE];
size_t mock_log_len;
pthread_mutex_t mock_log_lock = PTHREAD_MUTEX_INITIALIZER;
char mock_set_buf[MOCK_SET_SIZE];
struct mock_hook mock_hooks[MOCK_HOOKS_MAX];
size_t mock_nhooks;
const void *mock_service;
int (*mock_lock_held)(void);

static void
log_append(const char *p, size_t n)
{
    pthread_mutex_lock(&mock_log_lock);
    if (n > sizeof(mock_log_buf) - 1 - mock_log_len)
        n = sizeof(mock_log_buf) - 1 - mock_log_len;
    memcpy(mock_log_buf + mock_log_len, p, n);
    mock_log_len += n;
    mock_log_buf[mock_log_len] = '\0';
    pthread_mutex_unlock(&mock_log_lock);
}

int64_t
qln_now_ms(void)
{
    return 0;
}

bool
qln_cfg_bool(const struct qln_ctx *ctx, const char *name)
{
    ck_assert_str_eq(name, "preload_app");
    return false;
}

int64_t
qln_cfg_int(const struct qln_ctx *ctx, const char *name)
{
    ck_assert_str_eq(name, "workers");
    return ctx->workers;
}

const char *
qln_cfg_str(const struct qln_ctx *ctx, const char *name)
{
    /* The ASGI settings keep their defaults: the suites serve WSGI. */
    if (strcmp(name, "root_path") == 0)
        return "";
    if (strcmp(name, "interface") == 0 || strcmp(name, "asgi_loop") == 0 ||
        strcmp(name, "asgi_lifespan") == 0)
        return "auto";
    if (strcmp(name, "paste") == 0 || strncmp(name, "logconfig", 9) == 0)
        return NULL; /* modules, not --paste; no --log-config */
    if (strcmp(name, "logger_class") == 0)
        return "gunicorn.glogging.Logger"; /* the default: qilin's own logging */
    ck_assert_str_eq(name, "pythonpath");
    return ctx->pythonpath;
}

size_t
qln_cfg_list_len(const struct qln_ctx *ctx, const char *name)
{
    return 0;
}

const char *
qln_cfg_list_get(const struct qln_ctx *ctx, const char *name, size_t i)
{
    return NULL;
}

/* The settings the gunicorn.conf.py tests assign, typed as the core types them. */
const struct qln_option mock_options[] = {
    {.name = "workers", .type = QLN_OPT_INT},
    {.name = "bind", .type = QLN_OPT_LIST},
    {.name = "raw_env", .type = QLN_OPT_LIST},
    {.name = "preload_app", .type = QLN_OPT_BOOL},
    {.name = "worker_class", .type = QLN_OPT_STRING},
    {.name = "umask", .type = QLN_OPT_STRING},
    {.name = "proxy_allow_from", .type = QLN_OPT_LIST},
    {.name = "logconfig_dict", .type = QLN_OPT_STRING},
};
const size_t mock_noptions = sizeof(mock_options) / sizeof(mock_options[0]);

const struct qln_option *
qln_cfg_option(const struct qln_ctx *ctx, const char *name)
{
    for (size_t i = 0; i < mock_noptions; i++)
        if (strcmp(mock_options[i].name, name) == 0)
            return &mock_options[i];
    return NULL;
}

int
qln_cfg_set(struct qln_ctx *ctx, const char *name, const struct qln_cfg_value *v, uint32_t flags,
            const char *origin, char *err, size_t errlen)
{
    char *p = mock_set_buf + strlen(mock_set_buf);
    size_t room = sizeof(mock_set_buf) - (size_t)(p - mock_set_buf);

    switch (v->type) {
    case QLN_OPT_BOOL:
        snprintf(p, room, "%s=%s;", name, v->b ? "true" : "false");
        break;
    case QLN_OPT_INT:
        snprintf(p, room, "%s=%lld;", name, (long long)v->i);
        break;
    case QLN_OPT_STRING:
        snprintf(p, room, "%s='%s'%s;", name, v->s, flags & QLN_CFG_OPTIONAL ? "?" : "");
        break;
    case QLN_OPT_LIST:
        snprintf(p, room, "%s=[", name);
        for (size_t i = 0; i < v->n; i++)
            snprintf(p + strlen(p), room - strlen(p), "%s%s", i ? "," : "", v->items[i]);
        snprintf(p + strlen(p), room - strlen(p), "];");
        break;
    }
    return 0;
}

int
qln_hook_register(struct qln_ctx *ctx, const char *name, qln_hook_fn *fn, void *data,
                  void (*release)(void *data))
{
    if (strcmp(name, "on_starting") != 0 && strcmp(name, "post_fork") != 0)
        return -ENOENT;
    ck_assert_uint_lt(mock_nhooks, MOCK_HOOKS_MAX);
    snprintf(mock_hooks[mock_nhooks].name, sizeof(mock_hooks[0].name), "%s", name);
    mock_hooks[mock_nhooks].fn = fn;
    mock_hooks[mock_nhooks].data = data;
    mock_hooks[mock_nhooks++].release = release;
    return 0;
}

int
qln_ctx_argc(const struct qln_ctx *ctx)
{
    return ctx->argc;
}

char *const *
qln_ctx_argv(const struct qln_ctx *ctx)
{
    return ctx->argv;
}

uint32_t
qln_ctx_worker_flags(const struct qln_ctx *ctx)
{
    return 0;
}

int
qln_log_level(void)
{
    return QLN_LOG_DEBUG;
}

void
qln_log_write(int level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n = snprintf(line, sizeof(line), "[%d] ", level);

    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    log_append(line, (size_t)n);
}

void
qln_log_errno_write(int level, int err, const char *fmt, ...)
{
    qln_log_write(level, "%s failed: %s", fmt, strerror(err < 0 ? -err : err));
}

void
qln_log_raw(const char *text, size_t len)
{
    log_append(text, len);
}

/* No worker here: the integration tests see a request end its worker. */
void
qln_worker_exit(int status)
{
    (void)status;
}

/* The access log is the error log's buffer here, marked. */
void
qln_log_access_line(const char *text, size_t len)
{
    log_append("access: ", 8);
    log_append(text, len);
    log_append("\n", 1);
}

int
qln_log_fd(void)
{
    return 2;
}

void
qln_log_set_logger(const struct qln_logger *logger)
{
    (void)logger; /* the suites run without --log-config or --logger-class */
}

void
qln_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}

const char *
qln_strerror(int err)
{
    return err == QLN_EBADBODY ? "malformed request body framing" : strerror(-err);
}

const char *
qln_err_name(int err)
{
    return "UNKNOWN";
}

/* A plugin's init() may offer a service (python3: python3.embed); one suite loads one plugin. */
int
qln_service_register(const char *name, unsigned version, const void *table)
{
    mock_service = table;
    return 0;
}

const void *
qln_service_get(const char *name, unsigned version)
{
    return mock_service;
}

struct qln_slice
qln_req_method(const struct qln_request *r)
{
    return (struct qln_slice){r->method, strlen(r->method)};
}

struct qln_slice
qln_req_target(const struct qln_request *r)
{
    return (struct qln_slice){r->target, strlen(r->target)};
}

struct qln_slice
qln_req_path(const struct qln_request *r)
{
    return (struct qln_slice){r->path, strlen(r->path)};
}

struct qln_slice
qln_req_query(const struct qln_request *r)
{
    return (struct qln_slice){r->query ? r->query : "", r->query ? strlen(r->query) : 0};
}

int
qln_req_version_minor(const struct qln_request *r)
{
    return r->minor;
}

size_t
qln_req_nheaders(const struct qln_request *r)
{
    return r->nheaders;
}

const struct qln_header *
qln_req_headers(const struct qln_request *r)
{
    return r->headers;
}

int64_t
qln_req_content_length(const struct qln_request *r)
{
    return r->chunked || r->body == NULL ? -1 : (int64_t)r->body_len;
}

bool
qln_req_chunked(const struct qln_request *r)
{
    return r->chunked;
}

int64_t
qln_req_body_timeout_ms(const struct qln_request *r)
{
    return 0;
}

/* The mock's bodies are all in memory: nothing ever waits. */
ssize_t
qln_req_read_nowait(struct qln_request *r, void *buf, size_t len)
{
    const struct qln_app_ops *ops = r->ops;
    ssize_t n;

    r->ops = NULL;
    n = qln_req_read(r, buf, len);
    r->ops = ops;
    return n;
}

ssize_t
qln_req_read(struct qln_request *r, void *buf, size_t len)
{
    size_t n = r->body_len - r->body_pos;

    if (r->fail_at > 0 && r->body_pos >= (size_t)r->fail_at)
        return QLN_EBADBODY;
    if (r->piece > 0 && n > r->piece)
        n = r->piece;
    if (n > len)
        n = len;
    if (r->ops != NULL) {
        /* A real wait: the interpreter lock must be released meanwhile. */
        r->ops->blocking_enter(r->token);
        if (mock_lock_held != NULL)
            ck_assert(!mock_lock_held());
        usleep(100);
        r->ops->blocking_leave(r->token);
    }
    if (n > 0)
        memcpy(buf, r->body + r->body_pos, n);
    r->body_pos += n;
    return (ssize_t)n;
}

/* No socket: gunicorn.socket's methods then raise OSError (EBADF). */
int
qln_req_fd(const struct qln_request *r)
{
    return -1;
}

const char *
qln_req_remote_addr(const struct qln_request *r)
{
    return "127.0.0.1";
}

const char *
qln_req_remote_port(const struct qln_request *r)
{
    return "40000";
}

const char *
qln_req_server_name(const struct qln_request *r)
{
    if (r->server_port && *r->server_port == '\0')
        return "/tmp/q.sock";
    return r->server_name ? r->server_name : "127.0.0.1";
}

const char *
qln_req_server_port(const struct qln_request *r)
{
    return r->server_port ? r->server_port : "8000";
}

const char *
qln_req_url_scheme(const struct qln_request *r)
{
    return "http";
}

const char *
qln_req_proxy_protocol(const struct qln_request *r)
{
    return r->proxy_proto;
}

bool
qln_req_tls_var(const struct qln_request *r, size_t i, const char **name, const char **value)
{
    size_t k;

    if (r->tls_vars == NULL)
        return false;
    for (k = 0; k < i; k++) {
        if (r->tls_vars[2 * k] == NULL)
            return false;
    }
    if (r->tls_vars[2 * i] == NULL)
        return false;
    *name = r->tls_vars[2 * i];
    *value = r->tls_vars[2 * i + 1];
    return true;
}

const char *
qln_req_proxy_addr(const struct qln_request *r)
{
    return r->proxy_proto ? "2001:db8::1" : NULL;
}

const char *
qln_req_proxy_port(const struct qln_request *r)
{
    return r->proxy_proto ? "443" : NULL;
}

int
qln_resp_start(struct qln_response *resp, struct qln_slice status, const struct qln_header *headers,
               size_t nheaders)
{
    size_t i, off = 0;

    if (resp->sent)
        return -EALREADY;
    /* The core's own checks, so the plugin's tests see its refusals. */
    if (field_check(status, headers, nheaders, &resp->content_length, resp->refusal,
                    sizeof(resp->refusal)) < 0)
        return QLN_EBADHEADER;
    snprintf(resp->status, sizeof(resp->status), "%.*s", (int)status.len, status.p);
    for (i = 0; i < nheaders; i++)
        off += (size_t)snprintf(resp->head + off, sizeof(resp->head) - off, "%.*s: %.*s\n",
                                (int)headers[i].name.len, headers[i].name.p,
                                (int)headers[i].value.len, headers[i].value.p);
    resp->started = true;
    return 0;
}

/* The mock's connections have no socket: nothing switches protocols. */
int
qln_resp_upgrade(struct qln_response *resp, const char *protocol, const struct qln_header *headers,
                 size_t nheaders)
{
    return -EINVAL;
}

int
qln_resp_upgraded_write(struct qln_response *resp, const void *buf, size_t len)
{
    return -EINVAL;
}

ssize_t
qln_req_upgraded_read(struct qln_request *r, void *buf, size_t len, bool nowait)
{
    return -EINVAL;
}

const char *
qln_resp_refusal(const struct qln_response *resp)
{
    return resp->refusal;
}

int64_t
qln_resp_content_length(const struct qln_response *resp)
{
    return resp->started ? resp->content_length : -1;
}

int
qln_resp_write(struct qln_response *resp, const void *buf, size_t len)
{
    if (!resp->started)
        return -EINVAL;
    if (len == 0)
        return 0;
    resp->sent = true;
    if (resp->len + len > resp->cap) {
        resp->cap = (resp->len + len) * 2;
        resp->body = realloc(resp->body, resp->cap + 1);
        ck_assert_ptr_nonnull(resp->body);
    }
    memcpy(resp->body + resp->len, buf, len);
    resp->len += len;
    resp->body[resp->len] = '\0';
    return 0;
}

int
qln_resp_sendfile(struct qln_response *resp, int fd, off_t offset, int64_t count)
{
    char buf[4096];
    ssize_t n;

    qln_log_write(QLN_LOG_DEBUG, "sendfile offset=%lld count=%lld", (long long)offset,
                  (long long)count);
    while (count != 0 &&
           (n = pread(fd, buf, count > 0 && count < 4096 ? (size_t)count : 4096, offset)) > 0) {
        qln_resp_write(resp, buf, (size_t)n);
        offset += n;
        if (count > 0)
            count -= n;
    }
    return 0;
}

bool
qln_resp_headers_sent(const struct qln_response *resp)
{
    return resp->sent;
}
