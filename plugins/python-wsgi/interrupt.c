/*
 * How a request ends a worker, as under gunicorn: an immediate stop (INT,
 * QUIT) raises SystemExit in the application code that runs, and a request
 * that raises SystemExit or KeyboardInterrupt itself ends the worker. Worker
 * processes; pyw_interrupt runs in a signal handler, the rest under the GIL.
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <qilin/plugin.h>

#include "py.h"

/* The worker's plugin state, for the Python-level handler (one per process). */
static struct pyw_state *handler_state;

/*
 * The Python-level SIGINT handler: gunicorn's worker answers INT and QUIT
 * with SystemExit on the main thread, which ends the request it runs (a
 * time.sleep() too: the signal interrupts it, and Python runs the handler).
 * Outside handle() the worker is between requests or running a server hook,
 * which must not be cut short: nothing then. Nor under a green worker
 * (handle() without a thread token), whose hub would get the exception:
 * that worker ends its green threads itself.
 */
static PyObject *
stop_handler(PyObject *self, PyObject *args)
{
    if (handler_state == NULL || handler_state->main_in_handle == 0)
        Py_RETURN_NONE;
    PyErr_SetString(PyExc_SystemExit, "the worker stops at once (INT or QUIT)");
    return NULL;
}

/* Handed to PyCFunction_New (which wants it mutable); never written. */
static PyMethodDef stop_handler_def = {"qilin_stop_handler", stop_handler, METH_VARARGS, NULL};

int
pyw_interrupt_init(struct pyw_state *st)
{
    struct sigaction core;
    PyObject *signal_mod, *fn = NULL, *r = NULL;

    if (handler_state == st)
        return 0;
    /* signal.signal() installs Python's own C handler with sigaction; the core
       keeps the signal (it stops the worker and calls pyw_interrupt), so its
       handler goes back at once: Python only records ours as SIGINT's. */
    if (sigaction(SIGINT, NULL, &core) != 0)
        return 0;
    signal_mod = PyImport_ImportModule("signal");
    if (signal_mod != NULL)
        fn = PyCFunction_New(&stop_handler_def, NULL);
    if (fn != NULL)
        r = PyObject_CallMethod(signal_mod, "signal", "iO", SIGINT, fn);
    sigaction(SIGINT, &core, NULL);
    Py_XDECREF(r);
    Py_XDECREF(fn);
    Py_XDECREF(signal_mod);
    if (r == NULL)
        return -1;
    handler_state = st;
    return 0;
}

void
pyw_interrupt(void *state)
{
    struct pyw_state *st = state;

    if (!st->initialised || handler_state != st)
        return;
    st->interrupted = 1;
    /* Async-signal-safe: marks SIGINT's Python handler as due. */
    PyErr_SetInterrupt();
}

/* The exit status Python gives SystemExit(CODE): None 0, an int itself, else 1. */
static int
exit_code(PyObject *exc)
{
    PyObject *code = PyObject_GetAttrString(exc, "code");
    long v = 1;
    int overflow = 0;

    if (code == Py_None) {
        v = 0;
    } else if (code != NULL && PyLong_Check(code)) {
        v = PyLong_AsLongAndOverflow(code, &overflow);
        if (overflow != 0 || v == -1)
            v = 1;
    }
    PyErr_Clear();
    Py_XDECREF(code);
    return (int)(v & 0xff);
}

int
pyw_exit_request(struct pyw_state *st, const char *target, size_t len)
{
    PyObject *exc;
    int status;

    if (!PyErr_Occurred())
        return 0;
    /* Whatever ended the request during an immediate stop (SystemExit from
       the handler, a green worker's GreenletExit) is the stop, not a fault. */
    if (st->interrupted) {
        qln_log(QLN_LOG_DEBUG, "Request %.*s ended: the worker stops at once", (int)len, target);
        PyErr_Clear();
        return QLN_ESTOP;
    }
    if (!PyErr_ExceptionMatches(PyExc_SystemExit) &&
        !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt))
        return 0;
    exc = pyw_err_fetch();
    if (PyObject_TypeCheck(exc, (PyTypeObject *)PyExc_SystemExit)) {
        status = exit_code(exc);
        qln_log(QLN_LOG_WARNING,
                "Worker exiting: the application raised SystemExit(%d) in %.*s; the worker"
                " ends with status %d",
                status, (int)len, target, status);
    } else {
        status = 1;
        qln_log(QLN_LOG_WARNING,
                "Worker exiting: the application raised KeyboardInterrupt in %.*s", (int)len,
                target);
    }
    Py_DECREF(exc);
    qln_worker_exit(status);
    return QLN_ESTOP;
}
