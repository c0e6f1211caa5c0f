/*
 * The green bridge (green.h): C functions the green library's Python side
 * calls (accept, serve one connection, tick) and the qln_waiter that turns
 * every core socket wait into a wait on the hub. Worker process, on its
 * main thread, which holds the interpreter lock for the whole hub lifetime.
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/lifecycle.h>
#include <qilin/plugin.h>

#include "green.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define GREEN_ASAN 1
#endif

#define GREEN_CAPSULE "qilin.green"
#define CONN_CAPSULE "qilin.conn"

/* The worker's bridge state; lives on green_run()'s stack for the hub's lifetime. */
struct green {
    const struct green_flavor *fl;
    struct qln_worker *w;
    PyObject *waiter_cls; /* borrowed from the flavor module: Waiter */
    PyObject *str_wait;   /* new: "wait" */
    PyObject *str_close;  /* new: "close" */
    uintptr_t stack_top;  /* ASan builds: the high end of the main thread's stack */
};

/*
 * One connection's waiter. It lives on the C stack of the green thread that
 * serves the connection: greenlet keeps that stack while the thread is
 * suspended, so the pointer the core holds stays valid across switches.
 */
struct green_conn {
    struct qln_waiter waiter;
    struct green *g;
    int fd;
    PyObject *pyw; /* new: the flavor module's Waiter for FD, made at the first wait */
};

/* Puts "Type: message" of the pending Python exception into ERR and clears it. */
static void
exception_line(char *err, size_t errlen)
{
    PyObject *type, *value, *tb, *s = NULL;
    const char *name = "error", *msg = NULL;

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (type != NULL && PyType_Check(type))
        name = ((PyTypeObject *)type)->tp_name;
    if (value != NULL)
        s = PyObject_Str(value);
    if (s != NULL)
        msg = PyUnicode_AsUTF8(s);
    if (msg != NULL && msg[0] != '\0')
        snprintf(err, errlen, "%s: %s", name, msg);
    else
        snprintf(err, errlen, "%s", name);
    Py_XDECREF(s);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    PyErr_Clear();
}

/*
 * The python3 plugin's embedding service. The bridge runs Python itself, so
 * it must be built for the very interpreter the app plugin embeds: two
 * copies of libpython of different minor versions in one process corrupt
 * each other.
 */
static const struct qln_python_embed *
embed_get(const struct green_flavor *fl, char *err, size_t errlen)
{
    const struct qln_python_embed *py =
        qln_service_get(QLN_SERVICE_PYTHON_EMBED, QLN_SERVICE_PYTHON_EMBED_V1);

    if (py == NULL || py->size < sizeof(*py) || py->define_module == NULL) {
        snprintf(err, errlen,
                 "worker %s needs the python3 app plugin (started with --plugin python3)",
                 fl->name);
        return NULL;
    }
    if ((py->py_version_hex >> 16) != (PY_VERSION_HEX >> 16)) {
        snprintf(err, errlen,
                 "worker %s was built for Python %d.%d but the python3 plugin embeds %lu.%lu;"
                 " rebuild qilin's plugins together",
                 fl->name, PY_MAJOR_VERSION, PY_MINOR_VERSION, py->py_version_hex >> 24,
                 (py->py_version_hex >> 16) & 0xff);
        return NULL;
    }
    return py;
}

/* qilin/green.py: the Python half of the bridge (module qilin.green). */
static const char green_py[] = {
#include "plugins/workers/green/qilin/green.py.inc"
    0};

/*
 * A hub's precise clock (eventlet's PreciseHub, gevent's PreciseLoop).
 * select.epoll.poll() and libev's epoll backend take their timeout in whole
 * milliseconds, rounded up, so a hub that sleeps through it wakes up to 1 ms
 * late for every timer: 0.5 ms on average, 1 % of a 50 ms sleep. A timerfd
 * in the hub's epoll set, armed to the nanosecond before each wait, wakes it
 * on time. Python 3.11's os module has no timerfd, hence these two.
 *
 * timerfd_open() -> fd (non-blocking, close-on-exec, CLOCK_MONOTONIC).
 */
static PyObject *
green_timerfd_open(PyObject *self, PyObject *unused)
{
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

    if (fd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(fd);
}

/*
 * timerfd_arm(fd, seconds[, absolute]): one expiry SECONDS (> 0; more than
 * 1e9 counts as 1e9) from now, or at SECONDS on CLOCK_MONOTONIC (libev's
 * clock) if ABSOLUTE is true; re-arming also clears a past expiry.
 */
static PyObject *
green_timerfd_arm(PyObject *self, PyObject *args)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    double seconds;
    int fd, absolute = 0;

    if (!PyArg_ParseTuple(args, "id|p:timerfd_arm", &fd, &seconds, &absolute))
        return NULL;
    if (!(seconds > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "timerfd_arm: seconds must be positive");
        return NULL;
    }
    if (seconds > 1e9)
        seconds = 1e9;
    its.it_value.tv_sec = (time_t)seconds;
    its.it_value.tv_nsec = (long)((seconds - (double)its.it_value.tv_sec) * 1e9);
    if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0)
        its.it_value.tv_nsec = 1; /* all zero would disarm it */
    if (timerfd_settime(fd, absolute ? TFD_TIMER_ABSTIME : 0, &its, NULL) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

/* The C functions of the module qilin.green. */
static PyMethodDef green_methods[] = {
    {"timerfd_open", green_timerfd_open, METH_NOARGS, NULL},
    {"timerfd_arm", green_timerfd_arm, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/*
 * Defines the modules qilin.green and FL's own (which imports it) through
 * PY: the namespace of FL's module (new reference), or NULL with ERR set.
 */
static PyObject *
bootstrap(const struct green_flavor *fl, const struct qln_python_embed *py, char *err,
          size_t errlen)
{
    PyObject *green, *mod = NULL, *ns = NULL;

    green = py->define_module(py->state, "qilin.green", "plugins/workers/green/qilin/green.py",
                              green_py, green_methods);
    if (green != NULL)
        mod = py->define_module(py->state, fl->module, fl->path, fl->source, NULL);
    if (mod != NULL)
        ns = Py_NewRef(PyModule_GetDict(mod));
    Py_XDECREF(mod);
    Py_XDECREF(green);
    if (ns != NULL)
        return ns;
    if (PyErr_ExceptionMatches(PyExc_ImportError)) {
        char why[256];

        exception_line(why, sizeof(why));
        snprintf(err, errlen, "worker %s needs the Python package %s (%s): %s", fl->name,
                 fl->package, fl->install, why);
    } else {
        exception_line(err, errlen);
    }
    return NULL;
}

int
green_prepare(const struct green_flavor *fl, struct qln_worker *w, char *err, size_t errlen)
{
    const struct qln_python_embed *py = embed_get(fl, err, errlen);
    PyObject *ns, *r = NULL;
    int rc;

    if (py == NULL)
        return -ENOENT;
    rc = py->ensure_initialized(py->state, err, errlen);
    if (rc != 0)
        return rc;
    ns = bootstrap(fl, py, err, errlen);
    if (ns != NULL) {
        r = PyObject_CallMethod(ns, "get", "s", "prepare");
        if (r != NULL) {
            PyObject *f = r;

            r = PyObject_CallNoArgs(f);
            Py_DECREF(f);
        }
        if (r == NULL) {
            char why[512];

            exception_line(why, sizeof(why));
            snprintf(err, errlen, "worker %s: monkey-patching failed: %s", fl->name, why);
        }
    }
    rc = (ns != NULL && r != NULL) ? 0 : -EINVAL;
    Py_XDECREF(r);
    Py_XDECREF(ns);
    py->release(py->state);
    return rc;
}

/* ------------------------------------------------------------------ waits */

/*
 * Waits for FD through the connection's Python Waiter (the hub). IDLE marks
 * a keep-alive wait between requests, which a graceful stop cancels. A
 * Python exception out of the wait (the green thread being killed at
 * shutdown, a cancelled wait) abandons the connection.
 */
static int
wait_common(struct green_conn *gc, int fd, unsigned events, int64_t deadline_ms, bool idle)
{
    struct green *g = gc->g;
    PyObject *pyw = gc->pyw, *ev = NULL, *secs = NULL, *r = NULL;
    long v = -1;

    if (qln_worker_stopping(g->w) == QLN_STOP_NOW)
        return QLN_WAIT_STOP;
    if (fd != gc->fd || pyw == NULL) {
        pyw = PyObject_CallFunction(g->waiter_cls, "i", fd);
        if (pyw != NULL && fd == gc->fd)
            gc->pyw = pyw;
    }
    if (pyw != NULL) {
        ev = PyLong_FromUnsignedLong(events);
        if (deadline_ms < 0) {
            secs = Py_NewRef(Py_None);
        } else {
            int64_t left = deadline_ms - qln_now_ms();

            secs = PyFloat_FromDouble(left > 0 ? (double)left / 1000.0 : 0.0);
        }
    }
    if (ev != NULL && secs != NULL)
        r = PyObject_CallMethodObjArgs(pyw, g->str_wait, ev, secs, idle ? Py_True : Py_False, NULL);
    if (r != NULL)
        v = PyLong_AsLong(r);
    Py_XDECREF(r);
    Py_XDECREF(ev);
    Py_XDECREF(secs);
    if (pyw != gc->pyw)
        Py_XDECREF(pyw);
    if (v == 0)
        return QLN_WAIT_READY;
    if (v == 1)
        return QLN_WAIT_TIMEOUT;
    /* GreenletExit or a cancellation at shutdown: the connection just ends. */
    if (qln_worker_stopping(g->w) != QLN_STOP_NONE) {
        PyErr_Clear();
        return QLN_WAIT_STOP;
    }
    if (PyErr_Occurred()) {
        char why[256];

        exception_line(why, sizeof(why));
        qln_log(QLN_LOG_DEBUG, "wait on fd %d abandoned: %s", fd, why);
    }
    return QLN_WAIT_ERROR;
}

static int
green_wait(void *ctx, int fd, unsigned events, int64_t deadline_ms)
{
    return wait_common(ctx, fd, events, deadline_ms, false);
}

/*
 * Before the core closes FD: the hub must forget its watchers for it, or a
 * later connection that gets the same fd number could be woken by (or
 * collide with) a stale watcher.
 */
static void
green_fd_closing(void *ctx, int fd)
{
    struct green_conn *gc = ctx;
    PyObject *r;

    if (gc->pyw == NULL || fd != gc->fd)
        return;
    r = PyObject_CallMethodNoArgs(gc->pyw, gc->g->str_close);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    Py_CLEAR(gc->pyw);
}

/* ------------------------------------------------- functions for Python */

static struct green *
self_green(PyObject *self)
{
    return PyCapsule_GetPointer(self, GREEN_CAPSULE);
}

/*
 * A connection accepted but never served (its green thread was killed
 * before it ran, at shutdown) is closed when its capsule goes; serve()
 * marks the capsule taken through its context.
 */
static void
conn_capsule_free(PyObject *cap)
{
    struct qln_conn *c = PyCapsule_GetPointer(cap, CONN_CAPSULE);

    if (c != NULL && PyCapsule_GetContext(cap) == NULL)
        qln_conn_close(c, NULL);
}

/*
 * accept(fd): a capsule around the next connection, None when none is
 * pending (wait for the listener), or after a resource error (EMFILE...)
 * the seconds to back off before trying again, the lifecycle's
 * QLN_ACCEPT_BACKOFF_MS: the connection stays queued, so retrying at once
 * would spin.
 */
static PyObject *
green_accept(PyObject *self, PyObject *arg)
{
    struct green *g = self_green(self);
    struct qln_conn *c;
    long fd = PyLong_AsLong(arg);
    int rc;

    if (g == NULL || (fd == -1 && PyErr_Occurred()))
        return NULL;
    rc = qln_worker_accept(g->w, (int)fd, &c);
    if (rc == 0)
        return PyCapsule_New(c, CONN_CAPSULE, conn_capsule_free);
    if (rc == -EAGAIN)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(QLN_ACCEPT_BACKOFF_MS / 1000.0);
}

/*
 * serve(conn): the connection's whole life, in its own green thread. The
 * core serves what is ready; an IDLE connection waits on the hub for its
 * next request until qln_conn_idle_deadline() (during a graceful stop, the
 * linger). Only an immediate stop closes it at once. TSTATE is NULL:
 * this thread already holds the interpreter lock, which is what the
 * python3 plugin's handle() expects from a green worker.
 */
static PyObject *
green_serve(PyObject *self, PyObject *cap)
{
    struct green *g = self_green(self);
    struct qln_conn *c = PyCapsule_GetPointer(cap, CONN_CAPSULE);
    struct green_conn gc;
    enum qln_conn_status st;
    int rc;

    if (g == NULL || c == NULL)
        return NULL;
    if (PyCapsule_GetContext(cap) != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "qilin connection served twice");
        return NULL;
    }
    PyCapsule_SetContext(cap, g);
    memset(&gc, 0, sizeof(gc));
    gc.waiter.size = sizeof(gc.waiter);
    gc.waiter.ctx = &gc;
    gc.waiter.wait = green_wait;
    gc.waiter.fd_closing = green_fd_closing;
    gc.g = g;
    gc.fd = qln_conn_fd(c);
    for (;;) {
        st = qln_conn_serve(c, &gc.waiter, NULL);
        if (st != QLN_CONN_IDLE || qln_worker_stopping(g->w) == QLN_STOP_NOW)
            break;
        rc = wait_common(&gc, gc.fd, QLN_EV_READ, qln_conn_idle_deadline(c), true);
        /* A request that arrived as the deadline passed is served, not reset. */
        if (rc != QLN_WAIT_READY && !(rc == QLN_WAIT_TIMEOUT && qln_conn_readable(c)))
            break;
    }
    qln_conn_close(c, &gc.waiter);
    Py_CLEAR(gc.pyw);
    Py_RETURN_NONE;
}

/*
 * tick(): called from a hub timer several times a second, and whenever the
 * worker's wake fd turns readable (a stop or USR1, at once). It beats the
 * heartbeat and runs one non-blocking pass of the core's own loop, which
 * the hub otherwise never runs: that is where the core reads the wake fd,
 * handles USR1 (log reopen), its heartbeat and its orphan check. Returns
 * the stop state (enum qln_stop), which the signal handlers set.
 */
static PyObject *
green_tick(PyObject *self, PyObject *unused)
{
    struct green *g = self_green(self);

    if (g == NULL)
        return NULL;
    qln_worker_heartbeat(g->w);
    ev_run(qln_worker_loop(g->w), EVRUN_NOWAIT);
    return PyLong_FromLong(qln_worker_stopping(g->w));
}

#ifdef GREEN_ASAN
/*
 * AddressSanitizer builds only. greenlet runs every green thread on the
 * main thread's stack, saving and restoring slices of it by copying; ASan
 * cannot know, so the shadow of that stack still describes the frames of
 * whichever green thread ran there last: instrumented code then trips over
 * redzones that belong to another green thread (and a fresh frame relies on
 * a clean shadow below the stack pointer). greenlet calls this trace
 * function on the target of every switch, where we clear the shadow of the
 * live stack plus a margin below it: redzone checks of frames suspended
 * across a switch are lost, nothing is falsely reported.
 */
#define ASAN_MARGIN (256 * 1024)

__attribute__((no_sanitize_address)) static PyObject *
green_asan_resync(PyObject *self, PyObject *args)
{
    struct green *g = self_green(self);
    volatile char here = 0;
    uintptr_t low = (uintptr_t)&here - ASAN_MARGIN;

    if (g == NULL)
        return NULL;
    if (g->stack_top > low)
        __asan_unpoison_memory_region((void *)low, g->stack_top - low);
    Py_RETURN_NONE;
}

static PyMethodDef asan_def = {"asan_resync", green_asan_resync, METH_VARARGS, NULL};

/* Installs the trace function above (greenlet.settrace); 0 or -1 with a Python error. */
static int
asan_install(struct green *g, PyObject *self)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    PyObject *mod, *fn, *r = NULL;

    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return 0;
    if (pthread_attr_getstack(&attr, &addr, &size) == 0)
        g->stack_top = (uintptr_t)addr + size;
    pthread_attr_destroy(&attr);
    mod = PyImport_ImportModule("greenlet");
    fn = PyCFunction_New(&asan_def, self);
    if (mod != NULL && fn != NULL)
        r = PyObject_CallMethod(mod, "settrace", "O", fn);
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_XDECREF(mod);
    return r != NULL ? 0 : -1;
}
#endif

/* Method tables handed to PyCFunction_New (which wants them mutable); never written. */
static PyMethodDef accept_def = {"accept", green_accept, METH_O, NULL};
static PyMethodDef serve_def = {"serve", green_serve, METH_O, NULL};
static PyMethodDef tick_def = {"tick", green_tick, METH_NOARGS, NULL};

/* ------------------------------------------------------------------- run */

/*
 * Calls the flavor module's run(); the interpreter lock is held. Returns the
 * exit status: run()'s when it returns an int, else 0, or 1 when it raised.
 */
static int
call_run(struct green *g, PyObject *ns, const struct qln_python_embed *py)
{
    struct qln_ctx *ctx = qln_worker_ctx(g->w);
    int status;
    PyObject *self, *fds, *accept = NULL, *serve = NULL, *tick = NULL, *r = NULL;
    size_t i, n = qln_worker_nlisteners(g->w);
    char what[64];

    self = PyCapsule_New(g, GREEN_CAPSULE, NULL);
    fds = PyTuple_New((Py_ssize_t)n);
    for (i = 0; fds != NULL && i < n; i++)
        PyTuple_SET_ITEM(fds, (Py_ssize_t)i, PyLong_FromLong(qln_worker_listener_fd(g->w, i)));
#ifdef GREEN_ASAN
    if (self != NULL && asan_install(g, self) != 0)
        Py_CLEAR(self);
#endif
    if (self != NULL) {
        accept = PyCFunction_New(&accept_def, self);
        serve = PyCFunction_New(&serve_def, self);
        tick = PyCFunction_New(&tick_def, self);
    }
    if (fds != NULL && accept != NULL && serve != NULL && tick != NULL)
        r = PyObject_CallMethod(ns, "get", "s", "run");
    if (r != NULL) {
        PyObject *run = r;

        r = PyObject_CallFunction(run, "OOOOLLidi", fds, accept, serve, tick,
                                  (long long)qln_cfg_int(ctx, "worker_connections"),
                                  (long long)qln_cfg_int(ctx, "graceful_timeout"),
                                  qln_worker_wake_fd(g->w), QLN_STOP_LINGER_MS / 1000.0,
                                  QLN_DRAIN_MAX);
        Py_DECREF(run);
    }
    if (r == NULL) {
        snprintf(what, sizeof(what), "The %s worker failed", g->fl->name);
        py->log_exception(py->state, QLN_LOG_CRITICAL, what);
    }
    status = r == NULL ? 1 : PyLong_Check(r) ? (int)PyLong_AsLong(r) : 0;
    Py_XDECREF(r);
    Py_XDECREF(tick);
    Py_XDECREF(serve);
    Py_XDECREF(accept);
    Py_XDECREF(fds);
    Py_XDECREF(self);
    return status;
}

int
green_run(const struct green_flavor *fl, struct qln_worker *w)
{
    struct green g = {.fl = fl, .w = w};
    const struct qln_python_embed *py;
    PyObject *ns;
    char err[512] = "";
    int status = 1;

    py = embed_get(fl, err, sizeof(err));
    if (py == NULL || py->ensure_initialized(py->state, err, sizeof(err)) != 0) {
        qln_log(QLN_LOG_CRITICAL, "%s", err);
        return 1;
    }
    ns = bootstrap(fl, py, err, sizeof(err));
    if (ns == NULL)
        qln_log(QLN_LOG_CRITICAL, "%s", err);
    if (ns != NULL) {
        g.waiter_cls = PyDict_GetItemString(ns, "Waiter");
        g.str_wait = PyUnicode_InternFromString("wait");
        g.str_close = PyUnicode_InternFromString("close");
        if (g.waiter_cls != NULL && g.str_wait != NULL && g.str_close != NULL)
            status = call_run(&g, ns, py);
        else
            PyErr_Clear();
    }
    Py_XDECREF(g.str_close);
    Py_XDECREF(g.str_wait);
    Py_XDECREF(ns);
    py->release(py->state);
    return status;
}
