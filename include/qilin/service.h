/*
 * Services: versioned function tables one plugin offers another through the
 * core, so that neither links against the other's symbols (a worker plugin
 * that needs the embedded interpreter asks the python3 app plugin for it).
 * Also the tables of the well-known services, each with its version.
 */
#ifndef QILIN_SERVICE_H
#define QILIN_SERVICE_H

#include <qilin/common.h>

/**
 * Offers TABLE (borrowed: it must stay valid for the life of the process,
 * forks included) under NAME and VERSION. A provider registers from its
 * init() hook in the master, so every worker inherits it. Tables start
 * with a uint32_t size, like the ops tables; a new version is a new table.
 * Returns 0, or -EEXIST when NAME/VERSION is already registered, -ENOSPC
 * when the registry is full. Not thread-safe (master startup only).
 */
QLN_API int qln_service_register(const char *name, unsigned version, const void *table);

/** The table registered as NAME/VERSION, or NULL. Any process; thread-safe (read-only). */
QLN_API const void *qln_service_get(const char *name, unsigned version);

/* ------------------------------------------------------ python3.embed v1 */

#define QLN_SERVICE_PYTHON_EMBED "python3.embed"
#define QLN_SERVICE_PYTHON_EMBED_V1 1u

/**
 * Offered by the python3 app plugin to worker plugins that run Python
 * themselves (gevent, eventlet). Every function runs on the process's main
 * thread (the one that runs load_app and the worker plugin's run()).
 */
struct qln_python_embed {
    uint32_t size;                /**< sizeof(struct qln_python_embed) as compiled */
    unsigned long py_version_hex; /**< PY_VERSION_HEX the provider was built with: a
                                       user must refuse a different X.Y */
    void *state;                  /**< the provider's; pass it back to the functions */
    /** Starts the interpreter if this process has none yet (the same configuration
        load_app would use) and attaches the main thread: the GIL is held on return.
        Returns 0, or -errno with ERR set (then the GIL is not held). */
    int (*ensure_initialized)(void *state, char *err, size_t errlen);
    /** Detaches the main thread again (pairs with ensure_initialized), leaving the
        interpreter as load_app and the fork hooks expect it. */
    void (*release)(void *state);
    /** Logs the pending Python exception with its traceback at LEVEL (enum
        qln_log_level) after the line WHAT, and clears it. GIL held. */
    void (*log_exception)(void *state, int level, const char *what);
    /** Since ABI 1.4 (check size): makes the module NAME, "qilin.LEAF", in
        sys.modules (and the package "qilin" if missing), replacing any earlier
        one. METHODS (a PyMethodDef array ending in a zeroed entry, or NULL; it
        must outlive the interpreter) go in first; then SOURCE (Python text, or
        NULL) runs in it as the file PATH, the .py file's path in the source
        tree, which tracebacks name (with the line, through the module's
        __loader__). Returns a new reference to the module (a PyObject *), or
        NULL with the Python exception set. GIL held. */
    void *(*define_module)(void *state, const char *name, const char *path, const char *source,
                           void *methods);
};

#endif
