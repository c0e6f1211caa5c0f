/*
 * The qilin plugin ABI. A plugin is a shared object NAME.so that exports one
 * symbol, `qilin_plugin`, a const struct qln_plugin built with
 * QLN_PLUGIN_DEFINE. The core dlopens it (RTLD_NOW | RTLD_GLOBAL), checks
 * magic, ABI major/minor and size, and refuses a mismatch with a clear error.
 *
 * An app plugin (QLN_KIND_APP) hosts applications in one language; a worker
 * plugin (QLN_KIND_WORKER) supplies a concurrency model. Every ops table
 * starts with its size; hooks are only ever appended, and the core calls a
 * hook only when the table's size covers it and it is non-NULL.
 */
#ifndef QILIN_PLUGIN_H
#define QILIN_PLUGIN_H

#include <qilin/common.h>
#include <qilin/errno.h>
#include <qilin/hook.h>
#include <qilin/lifecycle.h>
#include <qilin/log.h>
#include <qilin/option.h>
#include <qilin/request.h>
#include <qilin/response.h>
#include <qilin/service.h>
#include <qilin/version.h>
#include <qilin/worker.h>

#define QLN_PLUGIN_MAGIC 0x716c6e70u /* "qlnp" */

enum qln_kind {
    QLN_KIND_APP = 1u << 0,
    QLN_KIND_WORKER = 1u << 1,
};

/** Worker plugin flags. */
enum qln_worker_flags {
    /** App code runs inside the worker's own scheduler (gevent, eventlet): the app
        plugin keeps its interpreter lock held and the worker supplies the waits. */
    QLN_WORKER_GREEN = 1u << 0,
    /** The worker runs app code on several threads (gthread). */
    QLN_WORKER_THREADED = 1u << 1,
    /** App code runs as coroutines on the worker's event loop (asyncio), which
        also hosts the green threads of QLN_WORKER_GREEN: the app plugin serves
        async applications (ASGI) and refuses others. Since ABI 1.6. */
    QLN_WORKER_ASYNC = 1u << 2,
};

/**
 * App plugin hooks. STATE is what init() stored. ERR/ERRLEN receive one
 * human-readable line (NUL-terminated) when a hook returns an error.
 */
struct qln_app_ops {
    uint32_t size; /**< sizeof(struct qln_app_ops) as compiled */

    /** Required. Master, after the configuration is complete; keep it cheap (no
        interpreter yet unless preload_app). Returns 0 or -errno. */
    int (*init)(struct qln_ctx *ctx, void **state, char *err, size_t errlen);
    /** Required. Loads the application SPEC (e.g. "module:callable"): in the master
        when preload_app, else in each worker after post_fork_child. Returns 0;
        -ENOENT when the application does not exist (no such module or callable,
        a malformed SPEC): the server stops with "App failed to load" (exit 4,
        gunicorn's AppImportError); or another -errno when loading it failed (its
        code raised): the worker failed to boot (exit 3, gunicorn's "Exception in
        worker process"). Under preload_app any failure stops the master (exit 1). */
    int (*load_app)(void *state, const char *spec, char *err, size_t errlen);
    /** Optional. Master, just before each fork(). */
    void (*pre_fork)(void *state);
    /** Optional. Master, just after each fork(), with the child's pid. */
    void (*post_fork_parent)(void *state, pid_t child);
    /** Optional. Worker, first thing after fork(). Returns 0 or -errno (exit 3). */
    int (*post_fork_child)(void *state, char *err, size_t errlen);
    /** Optional. On each serving thread (the sync worker's main thread too) before
        any handle(); returns that thread's token. The thread holds no interpreter
        lock when it returns. */
    void *(*thread_init)(void *state);
    /** Optional. Pairs with thread_init, on the same thread. */
    void (*thread_exit)(void *state, void *tstate);
    /** Optional. Threaded workers call these around a wait that really blocks
        (inside handle(), e.g. reading the body): release and retake the lock. */
    void (*blocking_enter)(void *tstate);
    void (*blocking_leave)(void *tstate);
    /** Required. Serves one request: read it with qln_req_*, answer with
        qln_resp_*. Returns 0 when the app finished (the core completes the
        response), or -errno when it failed: the core answers 500 if the head
        has not left, else closes the connection. */
    int (*handle)(void *state, void *tstate, struct qln_request *req, struct qln_response *resp);
    /** Optional. Worker, on SIGABRT from the master's timeout: dump stacks. */
    void (*on_abort)(void *state);
    /** Optional. Worker, before it exits normally. */
    void (*worker_exit)(void *state);
    /** Optional. Master, before it exits. */
    void (*shutdown)(void *state);
    /** Optional (--reload). Worker, after load_app, on the thread that
        called it: calls ADD(CTX, path) for each source file the loaded application
        came from (Python: every module's __file__), so the core can watch them. */
    void (*module_files)(void *state, void (*add)(void *ctx, const char *path), void *ctx);

    /* ABI 1.1 */

    /** Optional. Master, before init() and before the worker plugin loads (and again
        on HUP, with a fresh CTX): reads the configuration file PATH written in the
        plugin's language, e.g. "gunicorn.conf.py" or "python:pkg.conf". It sets
        settings with qln_cfg_set() and may register server hooks with
        qln_hook_register(); CTX is valid during the call only. Returns 0;
        -ENOTSUP when PATH is not a file this plugin reads (the core tries the next
        app plugin, then Lua); -ENOENT when PATH does not exist; else -errno with
        ERR one line "FILE:LINE: message". */
    int (*load_config)(struct qln_ctx *ctx, const char *path, char *err, size_t errlen);

    /* ABI 1.3 */

    /** Optional. Worker, from the signal handler of an INT or QUIT (an immediate
        stop): make application code now running on the main thread give up soon
        (Python: raise SystemExit in it, as gunicorn's worker does), so the worker
        exits at once and runs worker_int. Must be async-signal-safe. handle()
        then returns -errno; the core answers nothing more. */
    void (*interrupt)(void *state);

    /* ABI 1.4 */

    /** Optional; used instead of load_config when set. The same, with the
        plugin's state: *STATE is NULL the first time in this process, and what
        the plugin stores there is kept by the core and handed back, to init()
        (which finds *STATE already set: adopt it) and to the next call (HUP,
        with the state init() left); if the master ends before init() (as with
        --print-config), to shutdown(). So a plugin that must start its
        language to read its config file keeps that runtime in its state, not
        in a global. */
    int (*load_config_state)(struct qln_ctx *ctx, void **state, const char *path, char *err,
                             size_t errlen);
};

/** Worker plugin hooks. */
struct qln_worker_ops {
    uint32_t size;  /**< sizeof(struct qln_worker_ops) as compiled */
    uint32_t flags; /**< enum qln_worker_flags */
    /** Required. The worker's whole life: serve until qln_worker_stopping() says
        stop, then return the process exit status (0). Runs after the app is loaded. */
    int (*run)(struct qln_worker *w);
    /** Optional. Readies the process before the app is imported, e.g.
        monkey-patching for a green worker. Called in each worker after the app
        plugin's post_fork_child and before load_app (W is the worker), and also in
        the master just before a preload_app load_app (W is NULL). Returns 0 or
        -errno with one line in ERR: the worker exits 3, the master does not start. */
    int (*prepare)(struct qln_worker *w, char *err, size_t errlen);
};

struct qln_plugin {
    uint32_t magic;      /**< QLN_PLUGIN_MAGIC */
    uint16_t abi_major;  /**< QLN_ABI_MAJOR as compiled */
    uint16_t abi_minor;  /**< QLN_ABI_MINOR as compiled */
    uint32_t size;       /**< sizeof(struct qln_plugin) as compiled */
    uint32_t kind;       /**< enum qln_kind bits */
    const char *name;    /**< equals the file stem: "python3", "sync" */
    const char *version; /**< the plugin's own version */
    const char *description;            /**< one line for --help and logs */
    const char *const *requires;        /**< NULL-terminated plugin names loaded first, or NULL */
    const char *const *aliases;         /**< NULL-terminated other names (-k, --plugin), or NULL */
    const struct qln_option *options;   /**< the plugin's options, or NULL */
    const struct qln_app_ops *app;      /**< non-NULL iff kind has QLN_KIND_APP */
    const struct qln_worker_ops *worker; /**< non-NULL iff kind has QLN_KIND_WORKER */
    const void *reserved[4];            /**< room to grow; must be NULL */
};

/**
 * Defines the descriptor with the ABI fields filled in:
 *   QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "sync", .worker = &ops);
 */
#define QLN_PLUGIN_DEFINE(...)                                                                     \
    QLN_API const struct qln_plugin qilin_plugin = {.magic = QLN_PLUGIN_MAGIC,                     \
                                                    .abi_major = QLN_ABI_MAJOR,                    \
                                                    .abi_minor = QLN_ABI_MINOR,                    \
                                                    .size = sizeof(struct qln_plugin),             \
                                                    __VA_ARGS__}

#endif
