/*
 * A mock core for the app-plugin unit suites: the qln_* API an app plugin
 * links against, implemented over in-memory requests and responses with
 * captured logs, config and hooks, so a plugin's hooks run with no arbiter,
 * worker or socket. A suite links mock_core.c with the plugin's sources in
 * place of libqilincore. Its state is global, and the suites run each Check
 * test in its own forked process, so every test starts from a clean copy.
 */
#ifndef QILIN_TEST_MOCK_CORE_H
#define QILIN_TEST_MOCK_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include <qilin/plugin.h>

/*
 * What the qln_cfg_* and qln_ctx_* functions read, filled in by the suite
 * before it calls the plugin's init() or load_config(). Only these names are
 * known: qln_cfg_int("workers") gives WORKERS, qln_cfg_str("pythonpath")
 * gives PYTHONPATH (NULL: unset) and qln_cfg_bool("preload_app") is false;
 * any other name fails the test. Lists are always empty.
 */
struct qln_ctx {
    int workers;
    const char *pythonpath;
    int argc;
    char **argv;
};

/*
 * One request, built by the suite and read through qln_req_*. The peer is
 * always 127.0.0.1:40000 and the scheme http; there is no socket, so
 * qln_req_fd() is -1. The strings are borrowed and must outlive the call.
 */
struct qln_request {
    const char *method, *target, *path, *query; /* QUERY NULL: empty */
    int minor;                                  /* HTTP/1.MINOR */
    const struct qln_header *headers;
    size_t nheaders;
    const char *body; /* decoded body handed out by qln_req_read */
    size_t body_len, body_pos;
    size_t piece; /* at most this many bytes per read (0: all) */
    int fail_at;  /* > 0: reads fail with QLN_EBADBODY once body_pos reaches it */
    bool chunked; /* true (or BODY NULL): qln_req_content_length() is -1 */
    /* NULL: 127.0.0.1:8000; "": a unix socket, server name /tmp/q.sock */
    const char *server_port;
    const char *server_name;     /* a TCP listener's name; NULL: 127.0.0.1 */
    const char *proxy_proto;     /* what a PROXY header said ("TCP6"), NULL: none */
    const char *const *tls_vars; /* name, value, ..., NULL: a TLS session's; NULL: plain */
    /*
     * Non-NULL OPS simulates a blocking wait inside each read, as the core's
     * poll waiter does: ops->blocking_enter(TOKEN), a 100 us sleep during
     * which mock_lock_held() must be false, then ops->blocking_leave(TOKEN).
     */
    const struct qln_app_ops *ops;
    void *token;
};

/*
 * One response as the plugin wrote it. Start it zeroed; qln_resp_* fill it
 * in, and the suite frees BODY.
 */
struct qln_response {
    char status[64];        /* the status line's text, "200 OK" */
    char head[1024];        /* "Name: value\n" lines */
    bool started;           /* qln_resp_start() ran */
    bool sent;              /* some body bytes went out; a later start is -EALREADY */
    char refusal[160];      /* qln_resp_refusal(): the core's own checks (core/field.c) */
    int64_t content_length; /* qln_resp_content_length() */
    char *body;             /* what qln_resp_write/sendfile wrote, NUL-terminated; owned */
    size_t len, cap;
};

#define MOCK_LOG_SIZE 65536

/*
 * Everything logged, in order, NUL-terminated and cut short when full.
 * qln_log_write adds "[LEVEL] text\n" with the numeric level (every level is
 * enabled); qln_log_errno_write adds "[LEVEL] FMT failed: strerror\n" with
 * FMT unformatted; qln_log_raw adds its bytes as they are; an access line
 * becomes "access: text\n". The qln_log_* functions append under
 * mock_log_lock, so plugin threads may log at once; the suite reads the
 * buffer after its threads are joined, and clears it by setting
 * mock_log_len and mock_log_buf[0] to 0.
 */
extern char mock_log_buf[MOCK_LOG_SIZE];
extern size_t mock_log_len;
extern pthread_mutex_t mock_log_lock;

/*
 * The options qln_cfg_option() knows (the settings the gunicorn.conf.py
 * tests assign), mock_noptions of them; any other name is NULL.
 */
extern const struct qln_option mock_options[];
extern const size_t mock_noptions;

#define MOCK_SET_SIZE 4096

/*
 * What qln_cfg_set() received, in order, one "name=value;" each: a bool as
 * true/false, an int in decimal, a string as 'text' (followed by ? when
 * QLN_CFG_OPTIONAL is set), a list as [a,b]. qln_cfg_set always succeeds.
 */
extern char mock_set_buf[MOCK_SET_SIZE];

#define MOCK_HOOKS_MAX 8

/* One hook as qln_hook_register() received it. */
struct mock_hook {
    char name[32];
    qln_hook_fn *fn;
    void *data;
    void (*release)(void *data);
};

/*
 * The registered hooks, mock_nhooks of them, in order. Only on_starting and
 * post_fork are known (others are -ENOENT), and registering more than
 * MOCK_HOOKS_MAX fails the test. The mock never calls FN or RELEASE: the
 * suite does, as the master would.
 */
extern struct mock_hook mock_hooks[MOCK_HOOKS_MAX];
extern size_t mock_nhooks;

/*
 * The one service slot: qln_service_register() stores its table here, and
 * qln_service_get() returns it, whatever the name and version.
 */
extern const void *mock_service;

/*
 * Whether the calling thread holds the app language's interpreter lock
 * (PyGILState_Check for Python), set by the suite before its tests run.
 * qln_req_read asserts it is false during a simulated blocking wait; NULL:
 * not checked. It keeps this mock free of any one language's headers.
 */
extern int (*mock_lock_held)(void);

#endif
