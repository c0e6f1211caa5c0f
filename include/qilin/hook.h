/*
 * Server hooks registered by a plugin (ABI 1.1): gunicorn's on_starting,
 * pre_fork, post_request... called at gunicorn's call points, in the master
 * or the workers. A configuration file in the plugin's language (see
 * qln_app_ops.load_config) defines them; the Lua config file uses the same
 * call points.
 */
#ifndef QILIN_HOOK_H
#define QILIN_HOOK_H

#include <qilin/common.h>

/** One named field of a hook argument: the string S, or the integer I when S is NULL. */
struct qln_hook_field {
    const char *key;
    const char *s;
    int64_t i;
};

/**
 * One argument: a record of N fields ("server": pid, workers, name; "worker":
 * pid, age and, for child_exit, exit_code; see docs/configuration.md). A
 * single field whose KEY is NULL is a bare integer (nworkers_changed's counts).
 */
struct qln_hook_arg {
    const struct qln_hook_field *f;
    size_t n;
};

/** What one call of a hook carries. Everything is borrowed for the call only. */
struct qln_hook_call {
    const char *name;                /**< gunicorn's hook name: "pre_fork" */
    struct qln_ctx *ctx;             /**< the effective configuration */
    const struct qln_hook_arg *args; /**< gunicorn's arguments, in order */
    size_t nargs;
    /** pre_request and post_request: the request (its head; the body is not readable
        here), else NULL. The first argument is then the worker and the second the
        request record {method, path, query} (post_request adds status). */
    const struct qln_request *req;
};

/**
 * A hook. May run in the master or in a worker, on any serving thread at once
 * (gthread): the core does not serialise C hooks, the plugin locks what it needs
 * (Python: the GIL). It must not fail into the core: it logs its own failures and
 * returns.
 */
typedef void qln_hook_fn(void *data, const struct qln_hook_call *call);

/**
 * Registers FN (with DATA) as the hook NAME for the configuration being read;
 * only from load_config(). The hooks become current with that configuration (and
 * replace those of the previous one on HUP, calling RELEASE(DATA) for each old
 * one, in the master; RELEASE may be NULL). Returns 0, or -ENOENT when NAME is no
 * hook. Master only.
 */
QLN_API int qln_hook_register(struct qln_ctx *ctx, const char *name, qln_hook_fn *fn, void *data,
                              void (*release)(void *data));

#endif
