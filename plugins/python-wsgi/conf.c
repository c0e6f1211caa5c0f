/*
 * gunicorn.conf.py: the python3 plugin's load_config hook runs a Python
 * configuration file (a path, file:PATH or python:MODULE) as a module and
 * turns its globals into qilin settings and its functions into server hooks.
 * Master (the interpreter starts there only for such a file); hooks run in
 * the master and the workers.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "py.h"

/*
 * The Python half, qilin/conf.py (module qilin.conf): loading the file, the
 * one-line description of an exception, and the server/worker/req/resp
 * objects the hooks receive. It imports log and cfg, the C functions below,
 * from the module qilin._conf.
 */
static const char conf_py[] = {
#include "plugins/python-wsgi/qilin/conf.py.inc"
    0};

/*
 * gunicorn's setting and hook names (20.1 to 26.1) that qilin has no option for:
 * one warning each when a file sets them. Any other global that is not a
 * setting (imports, helpers) is ignored silently, as gunicorn does.
 */
static const char *const gunicorn_settings[] = {
    "control_socket",
    "control_socket_disable",
    "control_socket_mode",
    "default_proc_name",
    "dirty_apps",
    "dirty_graceful_timeout",
    "dirty_post_fork",
    "dirty_threads",
    "dirty_timeout",
    "dirty_worker_exit",
    "dirty_worker_init",
    "dirty_workers",
    "http2_cleartext",
    "http2_initial_window_size",
    "http2_max_concurrent_streams",
    "http2_max_frame_size",
    "http2_max_header_list_size",
    "http_parser",
    "http_protocols",
    "is_ssl",
    "on_dirty_starting",
    "secure_scheme_headers",
    "spew",
    "ssl_context",
    "strip_header_spaces",
    "tmp_upload_dir",
    "tolerate_dangerous_framing",
};

/* gunicorn names whose qilin option is spelled differently. */
static const struct {
    const char *gunicorn, *qilin;
} renamed[] = {
    {"proxy_allow_ips", "proxy_allow_from"},
};

/* The name of the capsule on qilin._conf that leads its functions to the plugin state. */
#define STATE_CAPSULE "qilin._conf.state"

/* log(level, text): one line (or a traceback's lines) in qilin's error log. */
static PyObject *
helper_log(PyObject *self, PyObject *args)
{
    const char *text;
    int level;

    if (!PyArg_ParseTuple(args, "is", &level, &text))
        return NULL;
    if (level >= qln_log_level())
        qln_log_write(level, "%s", text);
    Py_RETURN_NONE;
}

/* cfg(name): server.cfg.NAME, the effective value of a qilin setting. */
static PyObject *
helper_cfg(PyObject *self, PyObject *arg)
{
    const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    PyObject *cap = PyObject_GetAttrString(self, "_state");
    struct pyw_state *st = cap != NULL ? PyCapsule_GetPointer(cap, STATE_CAPSULE) : NULL;
    /* A hook's configuration; else, once init() ran, the effective one
       (--logger-class's cfg reads it at any time). */
    struct qln_ctx *hook_ctx = st == NULL ? NULL : st->conf_ctx != NULL ? st->conf_ctx : st->ctx;
    const struct qln_option *o;
    PyObject *list;
    const char *s;

    Py_XDECREF(cap);
    if (st == NULL)
        return NULL;
    if (name == NULL)
        return PyErr_Format(PyExc_TypeError, "setting names are str");
    if (hook_ctx == NULL)
        return PyErr_Format(PyExc_RuntimeError, "server.cfg is not readable yet");
    o = qln_cfg_option(hook_ctx, name);
    if (o == NULL)
        return PyErr_Format(PyExc_AttributeError, "no setting named '%s'", name);
    switch (o->type) {
    case QLN_OPT_BOOL:
        return PyBool_FromLong(qln_cfg_bool(hook_ctx, name));
    case QLN_OPT_INT:
        return PyLong_FromLongLong(qln_cfg_int(hook_ctx, name));
    case QLN_OPT_STRING:
        s = qln_cfg_str(hook_ctx, name);
        return s != NULL ? PyUnicode_DecodeFSDefault(s) : Py_NewRef(Py_None);
    case QLN_OPT_LIST:
        list = PyList_New(0);
        for (size_t i = 0; list != NULL && i < qln_cfg_list_len(hook_ctx, name); i++) {
            PyObject *item = PyUnicode_DecodeFSDefault(qln_cfg_list_get(hook_ctx, name, i));

            if (item == NULL || PyList_Append(list, item) < 0)
                Py_CLEAR(list);
            Py_XDECREF(item);
        }
        return list;
    }
    Py_RETURN_NONE;
}

static PyMethodDef helper_methods[] = {
    {"log", helper_log, METH_VARARGS, NULL},
    {"cfg", helper_cfg, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

int
pyw_conf_helpers(struct pyw_state *st)
{
    PyObject *native, *cap, *mod = NULL;

    if (st->conf_helper != NULL)
        return 0;
    native = pyw_module_define("qilin._conf", NULL, NULL, helper_methods);
    /* Its functions find the plugin state through this (cfg() reads conf_ctx). */
    cap = native != NULL ? PyCapsule_New(st, STATE_CAPSULE, NULL) : NULL;
    if (native != NULL && (cap == NULL || PyModule_AddObjectRef(native, "_state", cap) < 0))
        Py_CLEAR(native);
    Py_XDECREF(cap);
    if (native != NULL)
        mod = pyw_module_define("qilin.conf", "plugins/python-wsgi/qilin/conf.py", conf_py, NULL);
    if (mod != NULL)
        st->conf_helper = Py_NewRef(PyModule_GetDict(mod));
    Py_XDECREF(mod);
    Py_XDECREF(native);
    return st->conf_helper != NULL ? 0 : -1;
}

/* helper.NAME(*args) with a tuple built by Py_BuildValue(FMT, ...): new or NULL. */
static PyObject *
helper_call(struct pyw_state *st, const char *name, PyObject *args)
{
    PyObject *fn = PyDict_GetItemString(st->conf_helper, name); /* borrowed */
    PyObject *res;

    if (args == NULL)
        return NULL;
    res = PyObject_CallObject(fn, args);
    Py_DECREF(args);
    return res;
}

int
pyw_conf_sync_environ(struct pyw_state *st)
{
    PyObject *entries = PyList_New(0), *res;

    for (char **e = environ; entries != NULL && *e != NULL; e++) {
        PyObject *b = PyBytes_FromString(*e);

        if (b == NULL || PyList_Append(entries, b) < 0)
            Py_CLEAR(entries);
        Py_XDECREF(b);
    }
    /* os.environ keeps bytes on POSIX (its _data); rebuilding that keeps every
       reference to os.environ valid, unlike assigning a new mapping. */
    res = entries != NULL ? helper_call(st, "sync_environ", Py_BuildValue("(N)", entries)) : NULL;
    Py_XDECREF(res);
    return res != NULL ? 0 : -1;
}

/* The current exception as "FILE:LINE: Type: message" into ERR (PATH: the config file);
   the exception stays set. */
static void
describe_exception(struct pyw_state *st, const char *path, char *err, size_t errlen)
{
    PyObject *exc = pyw_err_fetch();
    PyObject *line = helper_call(st, "describe", Py_BuildValue("(Os)", exc, path));
    const char *text = line != NULL ? PyUnicode_AsUTF8(line) : NULL;

    if (text != NULL) {
        snprintf(err, errlen, "%s", text);
    } else {
        PyErr_Clear();
        pyw_err_restore(Py_NewRef(exc));
        pyw_exception_line(err, errlen);
    }
    Py_XDECREF(line);
    pyw_err_restore(exc);
}

/* ------------------------------------------------------------------ hooks */

/* A server hook the config file defined; ST is the plugin state it runs in. */
struct conf_hook {
    PyObject *fn;
    struct pyw_state *st;
};

static void
hook_release(void *data)
{
    struct conf_hook *h = data;

    /* At master exit the interpreter may be finalised already: nothing to drop then. */
    if (Py_IsInitialized()) {
        PyGILState_STATE gil = PyGILState_Ensure();

        Py_CLEAR(h->fn);
        PyGILState_Release(gil);
    }
    free(h);
}

/* A hook argument record as a dict, or a bare int (nworkers_changed's counts). */
static PyObject *
arg_object(const struct qln_hook_arg *a)
{
    PyObject *d;

    if (a->n == 1 && a->f[0].key == NULL)
        return PyLong_FromLongLong(a->f[0].i);
    d = PyDict_New();
    for (size_t i = 0; d != NULL && i < a->n; i++) {
        PyObject *v = a->f[i].s != NULL
                          ? PyUnicode_DecodeLatin1(a->f[i].s, strlen(a->f[i].s), "strict")
                          : PyLong_FromLongLong(a->f[i].i);

        if (v == NULL || PyDict_SetItemString(d, a->f[i].key, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *
slice_str(struct qln_slice s)
{
    return PyUnicode_DecodeLatin1(s.p != NULL ? s.p : "", (Py_ssize_t)s.len, "strict");
}

PyObject *
pyw_request_head(const struct qln_request *req)
{
    const struct qln_header *h = qln_req_headers(req);
    size_t n = qln_req_nheaders(req);
    PyObject *headers = PyList_New((Py_ssize_t)n);

    for (size_t i = 0; headers != NULL && i < n; i++) {
        PyObject *name = slice_str(h[i].name), *upper = NULL, *t = NULL;

        if (name != NULL)
            upper = PyObject_CallMethod(name, "upper", NULL);
        if (upper != NULL)
            t = Py_BuildValue("(NN)", upper, slice_str(h[i].value));
        Py_XDECREF(name);
        if (t == NULL) {
            Py_CLEAR(headers);
            break;
        }
        PyList_SET_ITEM(headers, (Py_ssize_t)i, t);
    }
    if (headers == NULL)
        return NULL;
    return Py_BuildValue("(N(ii)N)", slice_str(qln_req_target(req)), 1, qln_req_version_minor(req),
                         headers);
}

PyObject *
pyw_request_environ(struct pyw_state *st, const struct qln_request *req)
{
    if (st->env.tmpl == NULL)
        return PyDict_New();
    /* Only reads the head; the cast drops a const the builder's signature lacks. */
    return pyw_environ_build(st, (struct qln_request *)req, Py_None, Py_None);
}

/* Calls the Python hook of CALL; its exceptions are logged with FILE:LINE, never raised. */
static void
hook_call(void *data, const struct qln_hook_call *call)
{
    struct conf_hook *h = data;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *args = PyTuple_New((Py_ssize_t)call->nargs), *head = NULL, *env = NULL, *res;
    char line[1024];

    h->st->conf_ctx = call->ctx;
    for (size_t i = 0; args != NULL && i < call->nargs; i++) {
        PyObject *a = arg_object(&call->args[i]);

        if (a == NULL)
            Py_CLEAR(args);
        else
            PyTuple_SET_ITEM(args, (Py_ssize_t)i, a);
    }
    if (call->req != NULL) {
        head = pyw_request_head(call->req);
        env =
            strcmp(call->name, "post_request") == 0 ? pyw_request_environ(h->st, call->req) : NULL;
    }
    res = args != NULL ? helper_call(h->st, "call",
                                     Py_BuildValue("(OsOOO)", h->fn, call->name, args,
                                                   head ? head : Py_None, env ? env : Py_None))
                       : NULL;
    if (res == NULL) {
        describe_exception(h->st, call->name, line, sizeof(line));
        pyw_log_exception(h->st, QLN_LOG_ERROR, "Hook %s failed: %s", call->name, line);
    }
    Py_XDECREF(res);
    Py_XDECREF(args);
    Py_XDECREF(head);
    Py_XDECREF(env);
    PyGILState_Release(gil);
}

/* ---------------------------------------------------------------- settings */

static bool
in_list(const char *name, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* The strings of a str, list or tuple VALUE into *ITEMS (borrowed UTF-8). -1 if not strings. */
static int
list_items(PyObject *value, const char ***items, size_t *n)
{
    Py_ssize_t len;

    if (PyUnicode_Check(value)) {
        *items = malloc(sizeof(**items));
        qln_assert(*items != NULL);
        (*items)[0] = PyUnicode_AsUTF8(value);
        *n = 1;
        return (*items)[0] != NULL ? 0 : -1;
    }
    if (!PyList_Check(value) && !PyTuple_Check(value))
        return -1;
    len = PySequence_Fast_GET_SIZE(value);
    *items = pyw_calloc(len > 0 ? (size_t)len : 1, sizeof(**items));
    *n = (size_t)len;
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *it = PySequence_Fast_GET_ITEM(value, i);

        (*items)[i] = PyUnicode_Check(it) ? PyUnicode_AsUTF8(it) : NULL;
        if ((*items)[i] == NULL)
            return -1;
    }
    return 0;
}

/*
 * VALUE as a qln_cfg_value of TYPE (0: whatever VALUE's Python type maps to).
 * Returns 0, 1 when VALUE is None (not set, as gunicorn keeps the default) or
 * -1 when the type does not fit (no exception). *ITEMS and *TEXT are for the
 * caller to free.
 */
static int
convert(PyObject *value, enum qln_opt_type type, struct qln_cfg_value *v, const char ***items,
        PyObject **text)
{
    int overflow = 0;

    if (value == Py_None)
        return 1;
    if (type == 0)
        type = PyBool_Check(value)                           ? QLN_OPT_BOOL
               : PyLong_Check(value)                         ? QLN_OPT_INT
               : PyUnicode_Check(value)                      ? QLN_OPT_STRING
               : PyList_Check(value) || PyTuple_Check(value) ? QLN_OPT_LIST
                                                             : 0;
    /* As gunicorn's validators: a str is parsed like the command line for every type. */
    if (PyUnicode_Check(value) && type != QLN_OPT_LIST) {
        *v = (struct qln_cfg_value){.type = QLN_OPT_STRING, .s = PyUnicode_AsUTF8(value)};
        return v->s != NULL ? 0 : (PyErr_Clear(), -1);
    }
    /* A bool for a str setting goes to the core as a bool: the string settings
       that are gunicorn switches (proxy_protocol = True) take it, others refuse it. */
    if (type == QLN_OPT_STRING && PyBool_Check(value))
        type = QLN_OPT_BOOL;
    switch (type) {
    case QLN_OPT_BOOL:
        if (!PyBool_Check(value))
            return -1;
        *v = (struct qln_cfg_value){.type = QLN_OPT_BOOL, .b = value == Py_True};
        return 0;
    case QLN_OPT_INT:
        if (!PyLong_Check(value) || PyBool_Check(value))
            return -1;
        *v = (struct qln_cfg_value){.type = QLN_OPT_INT,
                                    .i = PyLong_AsLongLongAndOverflow(value, &overflow)};
        return overflow == 0 && !PyErr_Occurred() ? 0 : (PyErr_Clear(), -1);
    case QLN_OPT_STRING:
        /* umask = 0o022 and the like: an int is its decimal text; a list of str
           (forwarded_allow_ips = ["10.0.0.1", ...]) its comma-separated items. */
        if (PyList_Check(value) || PyTuple_Check(value)) {
            PyObject *comma;

            if (list_items(value, items, &v->n) < 0)
                return PyErr_Clear(), -1;
            comma = PyUnicode_FromString(",");
            *text = comma != NULL ? PyUnicode_Join(comma, value) : NULL;
            Py_XDECREF(comma);
        } else if (PyLong_Check(value) && !PyBool_Check(value)) {
            *text = PyObject_Str(value);
        } else if (PyDict_Check(value)) {
            /* logconfig_dict: its repr, which qilin.logconf reads back. */
            *text = PyObject_Repr(value);
        } else {
            return -1;
        }
        *v = (struct qln_cfg_value){.type = QLN_OPT_STRING,
                                    .s = *text != NULL ? PyUnicode_AsUTF8(*text) : NULL};
        return v->s != NULL ? 0 : (PyErr_Clear(), -1);
    case QLN_OPT_LIST:
        *v = (struct qln_cfg_value){.type = QLN_OPT_LIST};
        if (list_items(value, items, &v->n) < 0)
            return PyErr_Clear(), -1;
        v->items = *items;
        return 0;
    }
    return -1;
}

static const char *
type_words(enum qln_opt_type type)
{
    switch (type) {
    case QLN_OPT_BOOL:
        return "True or False";
    case QLN_OPT_INT:
        return "an int";
    case QLN_OPT_STRING:
        return "a str (or an int, or a list of str joined by commas)";
    case QLN_OPT_LIST:
        return "a str or a list of str";
    }
    return "a bool, int, str or list of str";
}

/* One module global NAME = VALUE (assigned at ORIGIN): a setting, a hook, or ignored. */
/*
 * True when NAME is secure_scheme_headers and VALUE is gunicorn's default
 * for it, the set qilin trusts: a file that spells the default out means
 * what qilin does (any other value is refused, see config_refused).
 */
static bool
is_default_scheme_headers(const char *name, PyObject *value)
{
    PyObject *dflt;
    int eq;

    if (strcmp(name, "secure_scheme_headers") != 0 || !PyDict_Check(value))
        return false;
    dflt = Py_BuildValue("{ssssss}", "X-FORWARDED-PROTOCOL", "ssl", "X-FORWARDED-PROTO", "https",
                         "X-FORWARDED-SSL", "on");
    eq = dflt != NULL ? PyObject_RichCompareBool(value, dflt, Py_EQ) : -1;
    Py_XDECREF(dflt);
    if (eq < 0)
        PyErr_Clear();
    return eq == 1;
}

/* logger_class = SomeClass: keeps the class for errors.c, and sets the
   setting to its name ("module.Class"), which --print-config shows. */
static int
set_logger_class(struct pyw_state *st, struct qln_ctx *ctx, PyObject *cls, const char *origin,
                 char *err, size_t errlen)
{
    PyObject *module = PyObject_GetAttrString(cls, "__module__");
    PyObject *qual = PyObject_GetAttrString(cls, "__qualname__");
    PyObject *text =
        module != NULL && qual != NULL ? PyUnicode_FromFormat("%S.%S", module, qual) : NULL;
    struct qln_cfg_value v = {.type = QLN_OPT_STRING,
                              .s = text != NULL ? PyUnicode_AsUTF8(text) : NULL};
    int rc;

    if (v.s == NULL) {
        PyErr_Clear();
        snprintf(err, errlen, "%s: setting 'logger_class': the class has no name", origin);
        rc = -EINVAL;
    } else {
        st->logger_class = Py_NewRef(cls);
        rc = qln_cfg_set(ctx, "logger_class", &v, 0, origin, err, errlen);
    }
    Py_XDECREF(module);
    Py_XDECREF(qual);
    Py_XDECREF(text);
    return rc;
}

static int
apply_global(struct pyw_state *st, struct qln_ctx *ctx, const char *name, PyObject *value,
             const char *origin, char *err, size_t errlen)
{
    const struct qln_option *o;
    const char **items = NULL;
    PyObject *text = NULL;
    struct qln_cfg_value v;
    uint32_t flags = 0;
    int rc;

    for (size_t i = 0; i < sizeof(renamed) / sizeof(renamed[0]); i++)
        if (strcmp(name, renamed[i].gunicorn) == 0)
            name = renamed[i].qilin;
    o = qln_cfg_option(ctx, name);
    /* logger_class = SomeClass (defined in the file, say): the class itself is
       kept for errors.c, and the setting names it. */
    if (o != NULL && strcmp(name, "logger_class") == 0) {
        Py_CLEAR(st->logger_class);
        if (PyType_Check(value))
            return set_logger_class(st, ctx, value, origin, err, errlen);
    }
    if (o == NULL && PyCallable_Check(value)) {
        struct conf_hook *h = pyw_calloc(1, sizeof(*h));

        h->fn = Py_NewRef(value);
        h->st = st;
        if (qln_hook_register(ctx, name, hook_call, h, hook_release) == 0)
            return 0;
        Py_DECREF(h->fn);
        free(h);
    }
    if (o == NULL) {
        /* Another plugin may add it (loaded after this file); if none does, one warning. */
        if (!in_list(name, gunicorn_settings,
                     sizeof(gunicorn_settings) / sizeof(gunicorn_settings[0])))
            return 0; /* imports, helpers: ignored, as gunicorn does */
        flags = QLN_CFG_OPTIONAL;
    }
    if (o == NULL && is_default_scheme_headers(name, value))
        return 0; /* gunicorn's default, which qilin trusts too */
    rc = convert(value, o != NULL ? o->type : 0, &v, &items, &text);
    if (rc < 0 && o == NULL) {
        /* A value no option type fits (a dict, a function): its text, so that
           the core still warns about the setting, or refuses it where
           ignoring it would be unsafe (secure_scheme_headers, ssl_context). */
        text = PyObject_Str(value);
        v = (struct qln_cfg_value){.type = QLN_OPT_STRING,
                                   .s = text != NULL ? PyUnicode_AsUTF8(text) : NULL};
        rc = v.s != NULL ? 0 : (PyErr_Clear(), -1);
    }
    if (rc == 1) {
        rc = 0;
    } else if (rc < 0 && o == NULL) {
        qln_log(QLN_LOG_WARNING, "%s: setting '%s' is not supported by qilin; ignored", origin,
                name);
        rc = 0;
    } else if (rc < 0) {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: setting '%s' must be %s, got %s", origin, name,
                 type_words(o->type), Py_TYPE(value)->tp_name);
    } else {
        rc = qln_cfg_set(ctx, name, &v, flags, origin, err, errlen);
    }
    free(items);
    Py_XDECREF(text);
    return rc;
}

/* Runs LOCATION and applies its globals in order. Under the GIL. */
static int
run_file(struct pyw_state *st, struct qln_ctx *ctx, const char *location, char *err, size_t errlen)
{
    PyObject *res, *path, *globals;
    int rc = 0;

    if (pyw_conf_helpers(st) < 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        return -EINVAL;
    }
    res = helper_call(st, "load",
                      Py_BuildValue("(sO)", location, st->conf_loaded ? Py_True : Py_False));
    st->conf_loaded = true;
    if (res == NULL) {
        describe_exception(st, location, err, errlen);
        PyErr_Clear();
        return -EINVAL;
    }
    path = PyTuple_GET_ITEM(res, 0);
    globals = PyTuple_GET_ITEM(res, 1);
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(globals); i++) {
        PyObject *t = PyList_GET_ITEM(globals, i);
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, 0));
        char origin[1024];

        snprintf(origin, sizeof(origin), "%s:%ld", PyUnicode_AsUTF8(path),
                 PyLong_AsLong(PyTuple_GET_ITEM(t, 2)));
        if (name != NULL)
            rc = apply_global(st, ctx, name, PyTuple_GET_ITEM(t, 1), origin, err, errlen);
    }
    PyErr_Clear();
    Py_DECREF(res);
    return rc;
}

/* The file part of LOCATION (gunicorn's PATH, file:PATH), or NULL for python:MODULE. */
static const char *
file_of(const char *location)
{
    if (strncmp(location, "python:", 7) == 0)
        return NULL;
    return strncmp(location, "file:", 5) == 0 ? location + 5 : location;
}

int
pyw_load_config(struct qln_ctx *ctx, void **state, const char *location, char *err, size_t errlen)
{
    const char *file = file_of(location);
    size_t len = file != NULL ? strlen(file) : 0;
    struct pyw_state *st = *state;
    PyGILState_STATE gil;
    int rc;

    /* gunicorn reads any file given as file:PATH as Python; a bare path only as *.py. */
    if (file == location && (len < 3 || strcmp(file + len - 3, ".py") != 0))
        return -ENOTSUP;
    if (file != NULL && access(file, F_OK) != 0)
        return snprintf(err, errlen, "config file '%s' not found", file), -ENOENT;
    if (st == NULL) {
        /* The state init() adopts: the interpreter started here lives on in it. */
        st = pyw_calloc(1, sizeof(*st));
        st->ctx = ctx; /* for sys.argv; init() sets the lasting one */
        *state = st;
    }
    if (!st->initialised) {
        rc = pyw_interp_init(st, err, errlen);
        if (!st->initialised)
            return rc;
        st->conf_started = true;
        if (rc == 0)
            rc = run_file(st, ctx, file != NULL ? file : location, err, errlen);
        /* Detached, as load_app leaves the main thread: the fork hooks retake it. */
        st->main_thread = pthread_self();
        st->main_ts = PyEval_SaveThread();
        return rc;
    }
    gil = PyGILState_Ensure();
    rc = run_file(st, ctx, file != NULL ? file : location, err, errlen);
    PyGILState_Release(gil);
    return rc;
}
