/*
 * Errors and the error log: Python tracebacks written to qilin's error log,
 * the wsgi.errors stream, OSError for failed body I/O, the stack dump on
 * SIGABRT (the master's timeout), and the "gunicorn.error" and
 * "gunicorn.access" loggers. Workers, and the master under preload_app;
 * under the GIL except pyw_abort_dump.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <qilin/plugin.h>

#include "py.h"

PyObject *
pyw_err_fetch(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;

    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

void
pyw_err_restore(PyObject *exc)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL)
        return;
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}

PyObject *
pyw_format_exception(struct pyw_state *st, PyObject *exc)
{
    PyObject *lines, *sep, *text, *bytes = NULL;

    if (st->format_exception == NULL)
        return NULL;
    lines = PyObject_CallOneArg(st->format_exception, exc);
    sep = lines ? PyUnicode_FromString("") : NULL;
    text = sep ? PyUnicode_Join(sep, lines) : NULL;
    if (text != NULL)
        bytes = PyUnicode_AsEncodedString(text, "utf-8", "backslashreplace");
    Py_XDECREF(lines);
    Py_XDECREF(sep);
    Py_XDECREF(text);
    return bytes;
}

void
pyw_log_exception(struct pyw_state *st, int level, const char *fmt, ...)
{
    PyObject *exc = pyw_err_fetch();
    PyObject *tb;
    char line[1024];
    va_list ap;

    if (level < qln_log_level()) {
        Py_XDECREF(exc);
        return;
    }
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    qln_log_write(level, "%s", line);
    if (exc == NULL)
        return;
    tb = pyw_format_exception(st, exc);
    if (tb != NULL) {
        qln_log_raw(PyBytes_AS_STRING(tb), (size_t)PyBytes_GET_SIZE(tb));
        Py_DECREF(tb);
    } else {
        static const char msg[] = "(the traceback could not be formatted)\n";

        PyErr_Clear();
        qln_log_raw(msg, sizeof(msg) - 1);
    }
    Py_DECREF(exc);
}

void
pyw_exception_line(char *err, size_t errlen)
{
    PyObject *exc = pyw_err_fetch();
    PyObject *msg = exc ? PyObject_Str(exc) : NULL;
    const char *text = msg ? PyUnicode_AsUTF8(msg) : NULL;
    const char *type = exc ? Py_TYPE(exc)->tp_name : "unknown error";

    if (text != NULL && *text != '\0')
        snprintf(err, errlen, "%s: %s", type, text);
    else
        snprintf(err, errlen, "%s", type);
    Py_XDECREF(msg);
    PyErr_Clear();
    pyw_err_restore(exc);
}

/*
 * Maps a core error to an OSError the app can catch. A client that went
 * away is ConnectionResetError, as a socket would say; framing errors and
 * the rest carry EIO with qilin's message.
 */
PyObject *
pyw_raise_io(int rc)
{
    int e = rc > -4096 ? -rc : (rc == QLN_EPEERCLOSED ? ECONNRESET : EIO);
    PyObject *args = Py_BuildValue("(is)", e, qln_strerror(rc));

    if (args != NULL) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

/* ---------------------------------------------------------------- wsgi.errors */

static PyObject *
errors_write(PyObject *self, PyObject *arg)
{
    Py_ssize_t len;
    const char *p;

    if (!PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "write() argument must be str, not %.100s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    p = PyUnicode_AsUTF8AndSize(arg, &len);
    if (p == NULL)
        return NULL;
    if (len > 0)
        qln_log_raw(p, (size_t)len);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(arg));
}

static PyObject *
errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq), *item;

    if (it == NULL)
        return NULL;
    while ((item = PyIter_Next(it)) != NULL) {
        PyObject *r = errors_write(self, item);

        Py_DECREF(item);
        if (r == NULL) {
            Py_DECREF(it);
            return NULL;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* Every write already reached the log with one write(2): nothing to flush. */
static PyObject *
errors_flush(PyObject *self, PyObject *unused)
{
    Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
    {"write", errors_write, METH_O, "write(str): appends text to the error log."},
    {"writelines", errors_writelines, METH_O, "writelines(iterable of str)."},
    {"flush", errors_flush, METH_NOARGS, "flush(): nothing is buffered."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyw_errors_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.ErrorStream",
    .tp_basicsize = sizeof(PyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: text written here goes to qilin's error log.",
    .tp_methods = errors_methods,
};

/* ------------------------------------------------------------------ set-up */

int
pyw_errors_init(struct pyw_state *st)
{
    PyObject *mod;

    mod = PyImport_ImportModule("traceback");
    if (mod == NULL)
        return -1;
    st->format_exception = PyObject_GetAttrString(mod, "format_exception");
    Py_DECREF(mod);
    if (st->format_exception == NULL)
        return -1;
    st->errors = pyw_errors_type.tp_alloc(&pyw_errors_type, 0);
    if (st->errors == NULL)
        return -1;

    /* on_abort must not allocate (it may run in a signal handler): prepare
       the call to faulthandler.dump_traceback(fd, all_threads=True) now. */
    mod = PyImport_ImportModule("faulthandler");
    if (mod == NULL)
        return -1;
    st->fh_dump = PyObject_GetAttrString(mod, "dump_traceback");
    Py_DECREF(mod);
    st->fh_args = Py_BuildValue("(iO)", qln_log_fd(), Py_True);
    return st->fh_dump != NULL && st->fh_args != NULL ? 0 : -1;
}

/* qilin/loggers.py (module qilin.loggers): handlers for gunicorn's loggers. */
static const char loggers_py[] = {
#include "plugins/python-wsgi/qilin/loggers.py.inc"
    0};

/* write_error(levelno, text): one error log line; a traceback after it verbatim. */
static PyObject *
loggers_write_error(PyObject *self, PyObject *args)
{
    const char *text, *nl;
    Py_ssize_t len;
    int level;

    if (!PyArg_ParseTuple(args, "is#:write_error", &level, &text, &len))
        return NULL;
    nl = memchr(text, '\n', (size_t)len);
    qln_log_write(level, "%.*s", (int)(nl != NULL ? nl - text : len), text);
    if (nl != NULL && nl + 1 < text + len) {
        qln_log_raw(nl + 1, (size_t)(text + len - nl - 1));
        if (text[len - 1] != '\n')
            qln_log_raw("\n", 1);
    }
    Py_RETURN_NONE;
}

/* write_access(levelno, text): TEXT as an access log line. */
static PyObject *
loggers_write_access(PyObject *self, PyObject *args)
{
    const char *text;
    Py_ssize_t len;
    int level;

    if (!PyArg_ParseTuple(args, "is#:write_access", &level, &text, &len))
        return NULL;
    qln_log_access_line(text, (size_t)len);
    Py_RETURN_NONE;
}

/* Handed to PyCFunction_New (which wants them mutable); never written. */
static PyMethodDef write_error_def = {"write_error", loggers_write_error, METH_VARARGS, NULL};
static PyMethodDef write_access_def = {"write_access", loggers_write_access, METH_VARARGS, NULL};

int
pyw_loggers_init(void)
{
    PyObject *mod, *we = NULL, *wa = NULL, *r = NULL;

    mod = pyw_module_define("qilin.loggers", "plugins/python-wsgi/qilin/loggers.py", loggers_py,
                            NULL);
    we = mod != NULL ? PyCFunction_New(&write_error_def, NULL) : NULL;
    wa = we != NULL ? PyCFunction_New(&write_access_def, NULL) : NULL;
    if (wa != NULL)
        r = PyObject_CallMethod(mod, "install", "OOi", we, wa, qln_log_level());
    Py_XDECREF(r);
    Py_XDECREF(wa);
    Py_XDECREF(we);
    Py_XDECREF(mod);
    return r != NULL ? 0 : -1;
}

/* ------------------------------------------- --log-config, --logger-class */

/* qilin/logconf.py (module qilin.logconf): configure(), error(), access(),
   and --logger-class's start_logger(). */
static const char logconf_py[] = {
#include "plugins/python-wsgi/qilin/logconf.py.inc"
    0};

static bool
setting(const struct qln_ctx *ctx, const char *name)
{
    const char *v = qln_cfg_str(ctx, name);

    return v != NULL && v[0] != '\0';
}

/* gunicorn's names for its own loggers, which are qilin's built-in logging. */
static const char *const builtin_loggers[] = {
    "gunicorn.glogging.Logger",          "simple", "egg:gunicorn#simple",
    "gunicorn.instrument.statsd.Statsd", "statsd", "egg:gunicorn#statsd",
};

/* --logger-class names a class of the user's own. */
static bool
logger_class_wanted(const struct qln_ctx *ctx)
{
    const char *v = qln_cfg_str(ctx, "logger_class");

    if (v == NULL || v[0] == '\0')
        return false;
    for (size_t i = 0; i < sizeof(builtin_loggers) / sizeof(builtin_loggers[0]); i++)
        if (strcmp(v, builtin_loggers[i]) == 0)
            return false;
    return true;
}

bool
pyw_logconf_wanted(const struct qln_ctx *ctx)
{
    return setting(ctx, "logconfig") || setting(ctx, "logconfig_dict") ||
           setting(ctx, "logconfig_json") || logger_class_wanted(ctx);
}

/*
 * Calls FN with the tuple ARGS makes from A (stolen) under the lock; true
 * when it returned True (the line was taken). Off around a fork.
 */
static bool
sink_call(struct pyw_state *st, PyObject *fn, PyObject *(*args)(struct pyw_state *, const void *),
          const void *a)
{
    PyGILState_STATE gil;
    PyObject *pending, *t, *r = NULL;
    bool taken;

    if (!st->sink_on)
        return false;
    gil = PyGILState_Ensure();
    /* The line may be logged while an exception is being reported. */
    pending = pyw_err_fetch();
    t = args(st, a);
    if (t != NULL)
        r = PyObject_Call(fn, t, NULL);
    Py_XDECREF(t);
    taken = r != NULL && r != Py_False;
    if (r == NULL)
        PyErr_Clear(); /* the core writes the line itself */
    Py_XDECREF(r);
    pyw_err_restore(pending);
    PyGILState_Release(gil);
    return taken;
}

struct error_line {
    int level;
    const char *msg;
    size_t len;
};

static PyObject *
error_args(struct pyw_state *st, const void *a)
{
    const struct error_line *e = a;

    return Py_BuildValue("(is#)", e->level, e->msg, (Py_ssize_t)e->len);
}

static bool
logger_error(void *ctx, int level, const char *msg, size_t len)
{
    struct pyw_state *st = ctx;
    struct error_line e = {level, msg, len};

    return sink_call(st, st->log_error, error_args, &e);
}

/* The response headers as gunicorn's resp.headers: a list of (name, value). */
static PyObject *
header_list(const struct qln_header *h, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);

    for (size_t i = 0; list != NULL && i < n; i++) {
        PyObject *t = Py_BuildValue("(s#s#)", h[i].name.p, (Py_ssize_t)h[i].name.len, h[i].value.p,
                                    (Py_ssize_t)h[i].value.len);

        if (t == NULL)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

/*
 * access(line) under --log-config; under --logger-class,
 * access(line, status, headers, sent, duration_us, method, head, environ):
 * what gunicorn's resp, req, environ and request_time are made from.
 */
static PyObject *
access_args(struct pyw_state *st, const void *a)
{
    const struct qln_access_info *info = a;
    struct qln_slice m;

    if (!st->logger_on || info->req == NULL)
        return Py_BuildValue("(s#)", info->line, (Py_ssize_t)info->len);
    m = qln_req_method(info->req);
    return Py_BuildValue("(s#iNLLs#NN)", info->line, (Py_ssize_t)info->len, info->status,
                         header_list(info->resp_headers, info->nresp_headers),
                         (long long)info->body_bytes, (long long)info->duration_us, m.p,
                         (Py_ssize_t)m.len, pyw_request_head(info->req),
                         pyw_request_environ(st, info->req));
}

static bool
logger_access(void *ctx, const struct qln_access_info *info)
{
    struct pyw_state *st = ctx;

    return sink_call(st, st->log_access, access_args, info);
}

static PyObject *
no_args(struct pyw_state *st, const void *a)
{
    return PyTuple_New(0);
}

/* USR1: the files the Python loggers write are reopened after the core's. */
static void
logger_reopen(void *ctx)
{
    struct pyw_state *st = ctx;

    sink_call(st, st->log_reopen, no_args, NULL);
}

/* qilin.logconf.signature() of the current settings: new, or NULL. */
static PyObject *
log_signature(struct pyw_state *st, PyObject *mod)
{
    return PyObject_CallMethod(mod, "signature", "zzz", qln_cfg_str(st->ctx, "logconfig"),
                               qln_cfg_str(st->ctx, "logconfig_dict"),
                               qln_cfg_str(st->ctx, "logconfig_json"));
}

void
pyw_logconf_check(struct pyw_state *st)
{
    PyObject *sig, *why;
    int same;

    if (!st->logconfig_on || st->log_mod == NULL)
        return;
    sig = log_signature(st, st->log_mod);
    same = sig != NULL ? PyObject_RichCompareBool(sig, st->log_sig, Py_EQ) : 1;
    if (same == 0) {
        why = PyObject_CallMethod(st->log_mod, "reconfigure", "zzzi",
                                  qln_cfg_str(st->ctx, "logconfig"),
                                  qln_cfg_str(st->ctx, "logconfig_dict"),
                                  qln_cfg_str(st->ctx, "logconfig_json"), qln_log_level());
        if (why != NULL && why != Py_None)
            qln_log(QLN_LOG_ERROR, "Reload: %s; keeping the previous logging configuration",
                    PyUnicode_Check(why) ? PyUnicode_AsUTF8(why) : "failed");
        else if (why != NULL)
            qln_log(QLN_LOG_INFO, "Reload: the logging configuration was applied again");
        Py_XDECREF(why);
        Py_XSETREF(st->log_sig, Py_NewRef(sig));
    }
    Py_XDECREF(sig);
    PyErr_Clear();
}

/* Starts --logger-class's logger, or applies --log-config: new result or NULL. */
static PyObject *
logconf_start(struct pyw_state *st, PyObject *mod)
{
    if (!st->logger_on)
        return PyObject_CallMethod(mod, "configure", "zzzi", qln_cfg_str(st->ctx, "logconfig"),
                                   qln_cfg_str(st->ctx, "logconfig_dict"),
                                   qln_cfg_str(st->ctx, "logconfig_json"), qln_log_level());
    /* Its cfg is qilin.conf's, and it is imported as an app is. */
    if (pyw_conf_helpers(st) < 0 || pyw_sys_path_init(st) < 0)
        return NULL;
    return PyObject_CallMethod(mod, "start_logger", "sO", qln_cfg_str(st->ctx, "logger_class"),
                               st->logger_class != NULL ? st->logger_class : Py_None);
}

int
pyw_logconf_init(struct pyw_state *st, char *err, size_t errlen)
{
    PyObject *mod, *r = NULL;
    int rc = -EINVAL;

    if (!pyw_logconf_wanted(st->ctx))
        return 0;
    st->logger_on = logger_class_wanted(st->ctx);
    mod = pyw_module_define("qilin.logconf", "plugins/python-wsgi/qilin/logconf.py", logconf_py,
                            NULL);
    if (mod != NULL)
        r = logconf_start(st, mod);
    if (r != NULL) {
        Py_XSETREF(st->log_error, PyObject_GetAttrString(mod, "error"));
        Py_XSETREF(st->log_access, PyObject_GetAttrString(mod, "access"));
        Py_XSETREF(st->log_reopen, PyObject_GetAttrString(mod, "reopen"));
        Py_XSETREF(st->log_sig, log_signature(st, mod));
        if (st->log_error != NULL && st->log_access != NULL && st->log_reopen != NULL &&
            st->log_sig != NULL) {
            Py_XSETREF(st->log_mod, Py_NewRef(mod));
            rc = 0;
        }
    }
    if (rc != 0 && PyErr_ExceptionMatches(PyExc_ValueError)) {
        /* qilin.logconf's ValueError is the whole line, naming the setting. */
        PyObject *exc = pyw_err_fetch();
        PyObject *msg = exc != NULL ? PyObject_Str(exc) : NULL;
        const char *text = msg != NULL ? PyUnicode_AsUTF8(msg) : NULL;

        snprintf(err, errlen, "%s", text != NULL ? text : "ValueError");
        Py_XDECREF(msg);
        Py_XDECREF(exc);
        PyErr_Clear();
    } else if (rc != 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
    } else {
        /* A logger class keeps its own syslog handlers, as gunicorn's Logger does. */
        st->logger = (struct qln_logger){.size = sizeof(st->logger),
                                         .flags = st->logger_on ? QLN_LOGGER_OWNS_SYSLOG : 0,
                                         .ctx = st,
                                         .error = logger_error,
                                         .access = logger_access,
                                         .reopen = logger_reopen};
        st->logconfig_on = true;
        st->sink_on = true;
        qln_log_set_logger(&st->logger);
    }
    Py_XDECREF(r);
    Py_XDECREF(mod);
    return rc;
}

void
pyw_errors_fini(struct pyw_state *st)
{
    if (st->logconfig_on) {
        st->sink_on = false;
        qln_log_set_logger(NULL);
    }
    Py_CLEAR(st->log_error);
    Py_CLEAR(st->log_access);
    Py_CLEAR(st->log_reopen);
    Py_CLEAR(st->log_mod);
    Py_CLEAR(st->log_sig);
    Py_CLEAR(st->logger_class);
    Py_CLEAR(st->format_exception);
    Py_CLEAR(st->errors);
    Py_CLEAR(st->fh_dump);
    Py_CLEAR(st->fh_args);
}

/* An exception set aside without allocating anything (one object since 3.12). */
struct stash {
    PyObject *type, *value, *tb;
};

static void
stash_take(struct stash *s)
{
#if PY_VERSION_HEX >= 0x030C0000
    s->type = s->tb = NULL;
    s->value = PyErr_GetRaisedException();
#else
    PyErr_Fetch(&s->type, &s->value, &s->tb);
#endif
}

static void
stash_put(struct stash *s)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(s->value);
#else
    PyErr_Restore(s->type, s->value, s->tb);
#endif
}

/*
 * Runs on SIGABRT, possibly inside the signal handler while the thread was
 * anywhere (in the app's Python code holding the GIL, or blocked in a C call
 * that released it). faulthandler's dump reads every thread's frames without
 * locking, which is what it was written for; the Python-level call needs
 * this thread attached, so the lock is taken only when the thread is known
 * to the interpreter and does not hold it already. The process is about to
 * die: should taking the lock hang, the master's SIGKILL follows.
 */
void
pyw_abort_dump(struct pyw_state *st)
{
    PyThreadState *ts = PyGILState_GetThisThreadState();
    struct stash pending;
    PyObject *r;
    int held;

    if (ts == NULL || st->fh_dump == NULL || st->fh_args == NULL)
        return;
    held = PyGILState_Check();
    if (!held)
        PyEval_RestoreThread(ts);
    /* The interrupted code may be handling an exception: keep it. */
    stash_take(&pending);
    r = PyObject_Call(st->fh_dump, st->fh_args, NULL);
    if (r == NULL)
        PyErr_Clear();
    Py_XDECREF(r);
    stash_put(&pending);
    if (!held)
        PyEval_SaveThread();
}
