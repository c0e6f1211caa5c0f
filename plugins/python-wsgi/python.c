/*
 * The python3 app plugin: its descriptor and options, the lifecycle hooks
 * (init, load_app, fork, threads, worker exit) and handle(), which runs one
 * WSGI request. Master (preload_app only) and workers.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "py.h"

void *
pyw_calloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    qln_assert(p != NULL);
    return p;
}

static int
py_init(struct qln_ctx *ctx, void **state, char *err, size_t errlen)
{
    /* A gunicorn.conf.py started the interpreter in this master already: adopt it. */
    struct pyw_state *st = *state;

    if (st == NULL)
        st = pyw_calloc(1, sizeof(*st));
    st->ctx = ctx;
    st->master_pid = getpid();
    st->multiprocess = qln_cfg_int(ctx, "workers") > 1;
    *state = st;
    if (pyw_asgi_check_settings(ctx, err, errlen) < 0)
        return -EINVAL;
    /* --log-config: the master's lines go through Python's logging too, so
       the interpreter starts here, as under gunicorn.conf.py. */
    if (pyw_logconf_wanted(ctx)) {
        int rc = 0;

        if (!st->initialised) {
            rc = pyw_interp_init(st, err, errlen);
            if (!st->initialised)
                return rc;
        } else {
            PyEval_RestoreThread(st->main_ts);
        }
        if (rc == 0)
            rc = pyw_logconf_init(st, err, errlen);
        st->main_thread = pthread_self();
        st->main_ts = PyEval_SaveThread();
        if (rc != 0)
            return rc;
    }
    /* The green worker plugins start the interpreter through this service. */
    return pyw_service_register(st, err, errlen);
}

/*
 * Drops every object the plugin holds, then finalises the interpreter so
 * that atexit handlers run and sys.stdout is flushed, as when gunicorn's
 * Python process exits. The main thread's state must be current.
 */
static void
finalize(struct pyw_state *st)
{
    Py_CLEAR(st->app);
    Py_CLEAR(st->broken_file);
    pyw_asgi_fini(st);
    pyw_environ_fini(st);
    pyw_errors_fini(st);
    if (Py_FinalizeEx() < 0)
        qln_log(QLN_LOG_WARNING, "Python finalization failed: flushing buffered data failed");
    st->initialised = false;
    st->main_ts = NULL;
}

/*
 * Loads the app; the interpreter is made here the first time (in the worker,
 * or in the master under preload_app). Whatever happens, the main thread
 * ends detached, its state saved in st->main_ts: the core's wait and fork
 * code runs without the lock, and thread_init() re-attaches it.
 */
static int
py_load_app(void *state, const char *spec, char *err, size_t errlen)
{
    struct pyw_state *st = state;
    size_t len = strlen(spec);
    int rc;

    /* "config.ru" would be imported as module "config": say what it is. */
    if (len > 3 && strcmp(spec + len - 3, ".ru") == 0) {
        snprintf(err, errlen,
                 "'%s' is a Rack rackup file, not a Python app: serve it with --plugin ruby", spec);
        return -ENOENT;
    }
    if (!st->initialised) {
        rc = pyw_interp_init(st, err, errlen);
        if (!st->initialised)
            return rc;
    } else {
        PyEval_RestoreThread(st->main_ts);
        rc = 0;
        /* The interpreter predates --env when gunicorn.conf.py started it. */
        if (st->conf_started && pyw_conf_sync_environ(st) < 0) {
            pyw_exception_line(err, errlen);
            PyErr_Clear();
            rc = -EINVAL;
        }
    }
    if (rc == 0)
        rc = pyw_app_load(st, spec, err, errlen);
    if (rc == 0)
        rc = pyw_asgi_detect(st, spec, err, errlen);
    if (rc == 0 && getpid() != st->master_pid && pyw_interrupt_init(st) < 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        rc = -EINVAL;
    }
    if (rc == 0 && st->env.tmpl == NULL && pyw_environ_init(st) < 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        rc = -EINVAL;
    }
    st->main_thread = pthread_self();
    st->main_ts = PyEval_SaveThread();
    return rc;
}

/*
 * Fork protocol (architecture.md 3.3): take the lock, then
 * PyOS_BeforeFork() (import lock, os.register_at_fork "before" hooks); after
 * the fork each side runs its AfterFork call and only then releases the lock
 * again. Releasing before AfterFork_Child would let the child run Python with
 * thread bookkeeping that still describes the parent's threads.
 */
static void
py_pre_fork(void *state)
{
    struct pyw_state *st = state;

    if (!st->initialised)
        return;
    PyEval_RestoreThread(st->main_ts);
    /* After a HUP: the logging configuration's new version. */
    pyw_logconf_check(st);
    /* Python's logging cannot be used in the child until AfterFork_Child. */
    st->sink_on = false;
    PyOS_BeforeFork();
}

static void
py_post_fork_parent(void *state, pid_t child)
{
    struct pyw_state *st = state;

    if (!st->initialised)
        return;
    PyOS_AfterFork_Parent();
    st->main_ts = PyEval_SaveThread();
    st->sink_on = st->logconfig_on;
}

static int
py_post_fork_child(void *state, char *err, size_t errlen)
{
    struct pyw_state *st = state;

    int rc = 0;

    if (!st->initialised)
        return 0;
    PyOS_AfterFork_Child();
    st->sink_on = st->logconfig_on;
    /* Preloaded: load_app will not run in this worker. */
    if (pyw_interrupt_init(st) < 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        rc = -EINVAL;
    }
    st->main_thread = pthread_self();
    st->main_ts = PyEval_SaveThread();
    return rc;
}

/*
 * Attaches the calling thread to the interpreter once for its whole life
 * (attaching per request would create and destroy a thread state each time
 * and lose threading.local data). The main thread re-uses the state saved
 * by load_app or the fork hooks; any other thread gets one through
 * PyGILState_Ensure, so C extensions using the GILState API find it. The
 * thread leaves detached: handle() attaches around the app call only.
 */
static void *
py_thread_init(void *state)
{
    struct pyw_state *st = state;
    struct pyw_thread *t = pyw_calloc(1, sizeof(*t));

    qln_assert(st->initialised);
    t->thread = pthread_self();
    if (st->main_ts != NULL && !st->main_ts_taken && pthread_equal(st->main_thread, t->thread)) {
        t->ts = st->main_ts;
        st->main_ts_taken = true;
        return t;
    }
    t->gs = PyGILState_Ensure();
    t->own_gilstate = true;
    if (!pthread_equal(st->main_thread, t->thread))
        pyw_environ_set_multithread(st);
    t->ts = PyEval_SaveThread();
    return t;
}

static void
py_thread_exit(void *state, void *token)
{
    struct pyw_state *st = state;
    struct pyw_thread *t = token;

    if (t == NULL)
        return;
    PyEval_RestoreThread(t->ts);
    Py_CLEAR(t->input);
    Py_CLEAR(t->sr);
    Py_CLEAR(t->sock);
    if (t->own_gilstate) {
        /* Drops the thread state and the lock with it. */
        PyGILState_Release(t->gs);
    } else {
        st->main_ts = PyEval_SaveThread();
        st->main_ts_taken = false;
    }
    free(t);
}

/*
 * The core's poll waiter calls these around a wait that really blocks inside
 * handle() (a body read, a slow write), so other threads run Python
 * meanwhile. They act only on the owning thread while it is inside handle():
 * the core may also wait while draining a body after handle() returned, and
 * an app thread may read wsgi.input on a thread that owns no token.
 */
static void
py_blocking_enter(void *token)
{
    struct pyw_thread *t = token;

    if (t == NULL || !t->held || !pthread_equal(t->thread, pthread_self()))
        return;
    t->held = false;
    t->blocked = true;
    t->ts = PyEval_SaveThread();
}

static void
py_blocking_leave(void *token)
{
    struct pyw_thread *t = token;

    if (t == NULL || !t->blocked || !pthread_equal(t->thread, pthread_self()))
        return;
    PyEval_RestoreThread(t->ts);
    t->blocked = false;
    t->held = true;
}

/* Returns the thread's cached object when only the cache holds it, else a fresh one. */
static PyObject *
take_cached(PyObject **slot, PyObject *(*make)(void), bool (*unshared)(PyObject *))
{
    if (slot != NULL && *slot != NULL && unshared(*slot)) {
        Py_INCREF(*slot);
        return *slot;
    }
    if (slot != NULL)
        Py_CLEAR(*slot);
    return make();
}

static bool
input_unshared(PyObject *o)
{
    return Py_REFCNT(o) == 1;
}

/* Keeps OBJ for the next request of this thread (a token-less caller keeps nothing). */
static void
keep_cached(PyObject **slot, PyObject *obj)
{
    if (slot != NULL && *slot == NULL)
        *slot = obj;
    else
        Py_DECREF(obj);
}

/*
 * Logs a failed request the way gunicorn does and picks the return code:
 * the core answers 500 while the head has not left (-EINVAL), else closes
 * the connection (-EIO). A client that went away is not an application
 * error: gunicorn logs "Ignoring EPIPE" at debug level. Nor is a request
 * body that broke off: the core logged it and answers it (qln_req_read).
 */
static int
report_failure(struct pyw_request *rq, int rc)
{
    struct qln_slice target = qln_req_target(rq->req);
    bool is_os = PyErr_Occurred() && PyErr_ExceptionMatches(PyExc_OSError);
    int exit_rc = pyw_exit_request(rq->st, target.p, target.len);

    if (exit_rc != 0)
        return exit_rc;
    if (rq->io_error != 0 && (!PyErr_Occurred() || is_os)) {
        int e = rq->io_error;
        int level = (rq->body_error || e == -EPIPE || e == -ECONNRESET || e == QLN_EPEERCLOSED ||
                     e == QLN_ESTOP)
                        ? QLN_LOG_DEBUG
                        : QLN_LOG_ERROR;

        PyErr_Clear();
        qln_log(level, "Socket error processing request %.*s: %s", (int)target.len, target.p,
                qln_strerror(e));
        return e;
    }
    if (!PyErr_Occurred()) {
        qln_log(QLN_LOG_ERROR, "Error handling request %.*s: %s", (int)target.len, target.p,
                qln_strerror(rc));
        return qln_resp_headers_sent(rq->resp) ? -EIO : -EINVAL;
    }
    pyw_log_exception(rq->st, QLN_LOG_ERROR, "Error handling request %.*s", (int)target.len,
                      target.p);
    return qln_resp_headers_sent(rq->resp) ? -EIO : -EINVAL;
}

/* Runs the app for one request; the calling thread holds the lock. */
static int
serve(struct pyw_state *st, struct pyw_thread *t, struct qln_request *req,
      struct qln_response *resp)
{
    struct pyw_request rq = {.st = st, .req = req, .resp = resp, .content_length = -1};
    PyObject *input, *sr, *sock, *environ = NULL, *result = NULL;
    int rc = -1;

    input = take_cached(t ? &t->input : NULL, pyw_input_new, input_unshared);
    sr = take_cached(t ? &t->sr : NULL, pyw_start_response_new, pyw_start_response_unshared);
    sock = take_cached(t ? &t->sock : NULL, pyw_sockref_new, input_unshared);
    if (input == NULL || sr == NULL || sock == NULL) {
        Py_XDECREF(input);
        Py_XDECREF(sr);
        Py_XDECREF(sock);
        return report_failure(&rq, -ENOMEM);
    }
    pyw_input_attach(input, &rq);
    pyw_start_response_bind(sr, &rq);
    pyw_sockref_attach(sock, qln_req_fd(req));

    environ = pyw_environ_build(st, req, input, sock);
    if (environ != NULL)
        result = PyObject_CallFunctionObjArgs(st->app, environ, sr, NULL);
    if (result != NULL)
        rc = pyw_response_send(&rq, result);
    if (rc != 0)
        rc = report_failure(&rq, rc);

    Py_XDECREF(result);
    Py_XDECREF(environ);
    pyw_input_detach(input);
    pyw_start_response_bind(sr, NULL);
    pyw_sockref_attach(sock, -1);
    keep_cached(t ? &t->input : NULL, input);
    keep_cached(t ? &t->sr : NULL, sr);
    keep_cached(t ? &t->sock : NULL, sock);
    return rc;
}

/*
 * GIL transitions: a token from thread_init() is attached around the app call
 * and detached again before returning to the core. A NULL token means the
 * caller already runs Python on this thread (a green worker whose hub owns
 * the interpreter): PyGILState_Ensure then only nests, and takes the lock
 * when, unexpectedly, it is not held.
 */
static int
py_handle(void *state, void *token, struct qln_request *req, struct qln_response *resp)
{
    struct pyw_state *st = state;
    struct pyw_thread *t = token;
    PyGILState_STATE gs = PyGILState_UNLOCKED;
    bool main = t != NULL && pthread_equal(pthread_self(), st->main_thread);
    int rc;

    if (t != NULL) {
        PyEval_RestoreThread(t->ts);
        t->held = true;
    } else {
        gs = PyGILState_Ensure();
        /* Without a thread token the caller is a green worker, whose green
           threads serve requests concurrently: gunicorn's gevent and eventlet
           workers say wsgi.multithread. */
        if (!st->multithread)
            pyw_environ_set_multithread(st);
    }
    st->main_in_handle += main;
    rc = st->iface != PYW_WSGI ? pyw_asgi_serve(st, req, resp) : serve(st, t, req, resp);
    st->main_in_handle -= main;
    if (t != NULL) {
        t->held = false;
        t->ts = PyEval_SaveThread();
    } else {
        PyGILState_Release(gs);
    }
    return rc;
}

static void
py_on_abort(void *state)
{
    struct pyw_state *st = state;

    if (st->initialised)
        pyw_abort_dump(st);
}

/*
 * Worker exit (and master exit under preload_app): the main thread takes
 * the lock back unless it already holds it (a green worker), then finalises.
 */
static void
py_worker_exit(void *state)
{
    struct pyw_state *st = state;

    if (!st->initialised)
        return;
    if (!PyGILState_Check())
        PyEval_RestoreThread(st->main_ts);
    finalize(st);
}

static void
py_shutdown(void *state)
{
    struct pyw_state *st = state;

    py_worker_exit(st);
    free(st);
}

static const struct qln_option py_options[] = {
    {
        .name = "pythonpath",
        .cli = "--pythonpath",
        .type = QLN_OPT_STRING,
        .metavar = "STRING",
        .section = "Python",
        .help = "Comma-separated directories put in front of sys.path, e.g. /srv/app,/srv/lib.",
    },
    {
        .name = "paste",
        .cli = "--paste,--paster",
        .type = QLN_OPT_STRING,
        .metavar = "STRING",
        .section = "Python",
        .help = "Load the app from a PasteDeploy config file, FILE or FILE#SECTION (e.g."
                " production.ini#admin), in place of APP_MODULE.",
    },
    {
        .name = "raw_paste_global_conf",
        .cli = "--paste-global",
        .type = QLN_OPT_LIST,
        .metavar = "CONF",
        .section = "Python",
        .help = "A PasteDeploy global config variable, KEY=VALUE; repeatable.",
    },
    {
        .name = "logger_class",
        .cli = "--logger-class",
        .type = QLN_OPT_STRING,
        .def = "gunicorn.glogging.Logger",
        .metavar = "STRING",
        .section = "Python",
        .help = "A Python class with gunicorn's Logger interface (module.Class) that takes"
                " qilin's error and access lines; the default is qilin's own logging.",
    },
    {
        .name = "logconfig",
        .cli = "--log-config",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "Python",
        .help = "A Python logging configuration file (ini, logging.config.fileConfig): qilin's"
                " error and access lines go through the gunicorn.error and gunicorn.access"
                " loggers it configures.",
    },
    {
        .name = "logconfig_json",
        .cli = "--log-config-json",
        .type = QLN_OPT_STRING,
        .metavar = "FILE",
        .section = "Python",
        .help = "As --log-config, from a JSON file for logging.config.dictConfig.",
    },
    {
        .name = "logconfig_dict",
        .type = QLN_OPT_STRING,
        .metavar = "DICT",
        .section = "Python",
        .help = "As --log-config, from a dict (gunicorn.conf.py only).",
        .flags = QLN_OPT_INTERNAL,
    },
    {
        .name = "interface",
        .cli = "--interface",
        .type = QLN_OPT_STRING,
        .def = "auto",
        .metavar = "STRING",
        .section = "Python",
        .help = "The application's interface: auto (ASGI 3 when it is a coroutine function,"
                " else WSGI), asgi3, asgi2 or wsgi.",
    },
    {
        .name = "asgi_loop",
        .cli = "--asgi-loop",
        .type = QLN_OPT_STRING,
        .def = "auto",
        .metavar = "STRING",
        .section = "Python",
        .help = "The event loop of -k asyncio: auto (uvloop when installed, else asyncio),"
                " asyncio or uvloop.",
    },
    {
        .name = "asgi_lifespan",
        .cli = "--asgi-lifespan",
        .type = QLN_OPT_STRING,
        .def = "auto",
        .metavar = "STRING",
        .section = "Python",
        .help = "The ASGI lifespan protocol: auto (used when the app supports it), on (a"
                " failed startup stops the worker) or off.",
    },
    {
        .name = "asgi_disconnect_grace_period",
        .cli = "--asgi-disconnect-grace-period",
        .type = QLN_OPT_INT,
        .def = "3",
        .metavar = "INT",
        .section = "Python",
        .help = "Seconds an ASGI request's task may run on after its client disconnected"
                " before it is cancelled.",
        .min = 0,
    },
    {
        .name = "ws_max_size",
        .cli = "--ws-max-size",
        .type = QLN_OPT_INT,
        .def = "16777216",
        .metavar = "BYTES",
        .section = "Python",
        .help = "The largest WebSocket message an ASGI app receives; a larger one closes the"
                " connection with 1009.",
        .min = 125,
        .max = 1073741824,
    },
    {
        .name = "root_path",
        .cli = "--root-path",
        .type = QLN_OPT_STRING,
        .def = "",
        .metavar = "STRING",
        .section = "Python",
        .help = "The ASGI root_path: the prefix the app is mounted under behind a proxy,"
                " e.g. /api.",
    },
    {.name = NULL},
};

/* --reload: the __file__ of every module in sys.modules, and the file with
   the SyntaxError the app failed on (pyw_app_load), which is in none. */
static void
py_module_files(void *state, void (*add)(void *ctx, const char *path), void *ctx)
{
    struct pyw_state *st = state;
    PyGILState_STATE gil;
    PyObject *mods, *values, *file; /* borrowed, new, new */
    const char *path;
    Py_ssize_t i;

    if (!st->initialised)
        return;
    gil = PyGILState_Ensure();
    mods = PySys_GetObject("modules");
    values = mods != NULL && PyDict_Check(mods) ? PyDict_Values(mods) : NULL;
    for (i = 0; values != NULL && i < PyList_GET_SIZE(values); i++) {
        file = PyObject_GetAttrString(PyList_GET_ITEM(values, i), "__file__");
        if (file == NULL) {
            PyErr_Clear(); /* built-in modules have none */
            continue;
        }
        path = PyUnicode_Check(file) ? PyUnicode_AsUTF8(file) : NULL;
        if (path != NULL)
            add(ctx, path);
        PyErr_Clear();
        Py_DECREF(file);
    }
    Py_XDECREF(values);
    path = st->broken_file != NULL ? PyUnicode_AsUTF8(st->broken_file) : NULL;
    if (path != NULL)
        add(ctx, path);
    PyErr_Clear();
    PyGILState_Release(gil);
}

static const struct qln_app_ops py_ops = {
    .size = sizeof(struct qln_app_ops),
    .init = py_init,
    .load_app = py_load_app,
    .pre_fork = py_pre_fork,
    .post_fork_parent = py_post_fork_parent,
    .post_fork_child = py_post_fork_child,
    .thread_init = py_thread_init,
    .thread_exit = py_thread_exit,
    .blocking_enter = py_blocking_enter,
    .blocking_leave = py_blocking_leave,
    .handle = py_handle,
    .on_abort = py_on_abort,
    .worker_exit = py_worker_exit,
    .shutdown = py_shutdown,
    .module_files = py_module_files,      /* --reload */
    .load_config_state = pyw_load_config, /* gunicorn.conf.py */
    .interrupt = pyw_interrupt,
};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_APP, .name = "python3", .version = QLN_VERSION,
                  .description =
                      "WSGI (PEP 3333) and ASGI 3 applications on embedded CPython " PY_VERSION,
                  .options = py_options, .app = &py_ops);
