/*
 * The "python3.embed" v1 service (include/qilin/service.h): lets a worker
 * plugin that runs Python itself (gevent, eventlet) start and attach the
 * interpreter before the app is imported, without linking to this plugin.
 * Registered by init() in the master; used in the master and in workers.
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <qilin/plugin.h>

#include "py.h"

/* The public table with the state its functions need behind it. */
struct embed_service {
    struct qln_python_embed pub;
    struct pyw_state *st;
};

/*
 * Same steps as load_app's start: the first call makes the interpreter (GIL
 * held by pyw_interp_init), later ones re-attach the main thread's saved
 * state. A failure after the interpreter exists still leaves it attached, so
 * it is detached again here: the caller must not hold the lock on error.
 */
static int
embed_ensure_initialized(void *state, char *err, size_t errlen)
{
    struct pyw_state *st = state;
    int rc;

    if (st->initialised) {
        PyEval_RestoreThread(st->main_ts);
        return 0;
    }
    rc = pyw_interp_init(st, err, errlen);
    if (rc != 0 && st->initialised) {
        st->main_thread = pthread_self();
        st->main_ts = PyEval_SaveThread();
    }
    return rc;
}

/* Leaves the main thread detached with its state where load_app and the fork hooks look. */
static void
embed_release(void *state)
{
    struct pyw_state *st = state;

    st->main_thread = pthread_self();
    st->main_ts = PyEval_SaveThread();
}

static void
embed_log_exception(void *state, int level, const char *what)
{
    pyw_log_exception(state, level, "%s", what);
}

static void *
embed_define_module(void *state, const char *name, const char *path, const char *source,
                    void *methods)
{
    return pyw_module_define(name, path, source, methods);
}

int
pyw_service_register(struct pyw_state *st, char *err, size_t errlen)
{
    /* Lives as long as the process: the registry keeps pointing at it. */
    struct embed_service *svc = pyw_calloc(1, sizeof(*svc));
    int rc;

    svc->st = st;
    svc->pub.size = sizeof(svc->pub);
    svc->pub.py_version_hex = PY_VERSION_HEX;
    svc->pub.state = st;
    svc->pub.ensure_initialized = embed_ensure_initialized;
    svc->pub.release = embed_release;
    svc->pub.log_exception = embed_log_exception;
    svc->pub.define_module = embed_define_module;
    rc = qln_service_register(QLN_SERVICE_PYTHON_EMBED, QLN_SERVICE_PYTHON_EMBED_V1, &svc->pub);
    if (rc != 0) {
        snprintf(err, errlen, "cannot register the %s service: %s", QLN_SERVICE_PYTHON_EMBED,
                 qln_strerror(rc));
        free(svc);
    }
    return rc;
}
