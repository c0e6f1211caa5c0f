/*
 * Starting the interpreter and finding the application: PyConfig set-up,
 * sys.path (working directory, --pythonpath) and the app spec
 * ("module:callable", "module:factory(args)", "module"), with gunicorn's
 * error messages. Master (preload_app) or worker, main thread.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "py.h"

#ifndef QLN_PYTHON_BIN
#define QLN_PYTHON_BIN "python3"
#endif

static int
status_error(PyStatus status, char *err, size_t errlen)
{
    snprintf(err, errlen, "Python initialization failed: %s%s%s", status.func ? status.func : "",
             status.func ? ": " : "", status.err_msg ? status.err_msg : "unknown error");
    return -EINVAL;
}

/*
 * The interpreter's program name decides where it looks for its standard
 * library and site-packages. Inside a virtualenv it must be the venv's
 * python, so that site finds pyvenv.cfg (a venv is not a PYTHONHOME); else
 * the interpreter qilin was built against, never "qilin" itself.
 */
static PyStatus
set_program_name(PyConfig *cfg)
{
    const char *venv = getenv("VIRTUAL_ENV");
    char path[PATH_MAX];

    if (venv != NULL && *venv != '\0' &&
        (size_t)snprintf(path, sizeof(path), "%s/bin/python", venv) < sizeof(path))
        return PyConfig_SetBytesString(cfg, &cfg->program_name, path);
    return PyConfig_SetBytesString(cfg, &cfg->program_name, QLN_PYTHON_BIN);
}

/*
 * Not isolated, so PYTHONPATH, PYTHONUNBUFFERED and friends work as under
 * gunicorn. install_signal_handlers = 0: the core owns every signal, and
 * Python's SIGINT handler would only run when the main thread is in the
 * eval loop anyway. parse_argv = 0: qilin's own options must not be read as
 * python's (-c, -m ...); sys.argv is simply qilin's argv, as gunicorn's is.
 */
int
pyw_interp_init(struct pyw_state *st, char *err, size_t errlen)
{
    PyPreConfig pre;
    PyConfig cfg;
    PyStatus status;
    int argc = qln_ctx_argc(st->ctx);
    char *const *argv = qln_ctx_argv(st->ctx);

    PyPreConfig_InitPythonConfig(&pre);
    pre.utf8_mode = -1;
    status = Py_PreInitialize(&pre);
    if (PyStatus_Exception(status))
        return status_error(status, err, errlen);

    PyConfig_InitPythonConfig(&cfg);
    cfg.install_signal_handlers = 0;
    cfg.parse_argv = 0;
    status = PyConfig_SetBytesArgv(&cfg, argc > 0 ? argc : 0, argv);
    if (!PyStatus_Exception(status))
        status = set_program_name(&cfg);
    if (!PyStatus_Exception(status))
        status = Py_InitializeFromConfig(&cfg);
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(status))
        return status_error(status, err, errlen);
    st->initialised = true;

    if (PyType_Ready(&pyw_input_type) < 0 || PyType_Ready(&pyw_start_response_type) < 0 ||
        PyType_Ready(&pyw_write_type) < 0 || PyType_Ready(&pyw_filewrapper_type) < 0 ||
        PyType_Ready(&pyw_errors_type) < 0 || PyType_Ready(&pyw_sockref_type) < 0 ||
        pyw_errors_init(st) < 0 || pyw_asgi_init(st) < 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        return -EINVAL;
    }
    return 0;
}

/* Inserts DIR (str, stolen) at the front of sys.path unless it is there already. */
static int
path_prepend(PyObject *syspath, PyObject *dir)
{
    int found;

    if (dir == NULL)
        return -1;
    found = PySequence_Contains(syspath, dir);
    if (found == 0)
        found = PyList_Insert(syspath, 0, dir);
    Py_DECREF(dir);
    return found < 0 ? -1 : 0;
}

/*
 * The directory the app is imported from, as gunicorn names it: $PWD when it
 * is the working directory (keeps a symlinked path as the user typed it),
 * else getcwd(). The core has already applied --chdir.
 */
static PyObject *
cwd_object(void)
{
    const char *pwd = getenv("PWD");
    struct stat a, b;
    char buf[PATH_MAX];

    if (pwd != NULL && pwd[0] == '/' && stat(pwd, &a) == 0 && stat(".", &b) == 0 &&
        a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return PyUnicode_DecodeFSDefault(pwd);
    if (getcwd(buf, sizeof(buf)) == NULL)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyUnicode_DecodeFSDefault(buf);
}

int
pyw_sys_path_init(struct pyw_state *st)
{
    const char *pp = qln_cfg_str(st->ctx, "pythonpath");
    PyObject *syspath = PySys_GetObject("path"); /* borrowed */
    PyObject *str = NULL, *sep = NULL, *entries = NULL, *os_path = NULL;
    Py_ssize_t i;
    int rc = -1;

    if (syspath == NULL || !PyList_Check(syspath)) {
        PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
        return -1;
    }
    if (path_prepend(syspath, cwd_object()) < 0)
        return -1;
    if (pp == NULL || *pp == '\0')
        return 0;
    str = PyUnicode_DecodeFSDefault(pp);
    sep = PyUnicode_FromString(",");
    entries = str && sep ? PyUnicode_Split(str, sep, -1) : NULL;
    os_path = entries ? PyImport_ImportModule("os.path") : NULL;
    if (entries == NULL || os_path == NULL)
        goto done;
    for (i = PyList_GET_SIZE(entries) - 1; i >= 0; i--) {
        PyObject *item = PyObject_CallMethod(PyList_GET_ITEM(entries, i), "strip", NULL);

        if (item == NULL)
            goto done;
        if (PyUnicode_GET_LENGTH(item) == 0) {
            Py_DECREF(item);
            continue;
        }
        if (path_prepend(syspath, PyObject_CallMethod(os_path, "abspath", "N", item)) < 0)
            goto done;
    }
    rc = 0;
done:
    Py_XDECREF(str);
    Py_XDECREF(sep);
    Py_XDECREF(entries);
    Py_XDECREF(os_path);
    return rc;
}

/* Logs the app's own exception with its traceback; ERR gets its last line. */
static int
app_exception(struct pyw_state *st, char *err, size_t errlen)
{
    pyw_exception_line(err, errlen);
    pyw_log_exception(st, QLN_LOG_ERROR, "%s",
                      getpid() == st->master_pid ? "Exception while loading the application"
                                                 : "Exception in worker process");
    return -EINVAL;
}

/*
 * The import failed. When the module itself (or a parent package) does not
 * exist, that is a usage error: one line, no traceback, as gunicorn prints
 * it. Anything else came from the app's own code and gets its traceback.
 */
static int
import_failed(struct pyw_state *st, const char *module, const char *expr, char *err, size_t errlen)
{
    PyObject *exc, *name, *msg;
    size_t mlen = strlen(module), nlen = 0;
    const char *n = NULL;

    if (!PyErr_ExceptionMatches(PyExc_ModuleNotFoundError))
        return app_exception(st, err, errlen);
    exc = pyw_err_fetch();
    name = PyObject_GetAttrString(exc, "name");
    if (name != NULL && PyUnicode_Check(name)) {
        Py_ssize_t sz;

        n = PyUnicode_AsUTF8AndSize(name, &sz);
        nlen = n ? (size_t)sz : 0;
    }
    PyErr_Clear();
    if (n == NULL || nlen > mlen || memcmp(n, module, nlen) != 0 ||
        (nlen < mlen && module[nlen] != '.')) {
        /* A module the app's code imports is missing: the app's own error. */
        Py_XDECREF(name);
        pyw_err_restore(exc);
        return app_exception(st, err, errlen);
    }
    if (mlen > 3 && strcmp(module + mlen - 3, ".py") == 0 && access(module, F_OK) == 0) {
        snprintf(err, errlen, "Failed to find application, did you mean '%.*s:%s'?",
                 (int)(mlen - 3), module, expr);
    } else {
        const char *text;

        msg = PyObject_Str(exc);
        text = msg ? PyUnicode_AsUTF8(msg) : NULL;
        if (text != NULL)
            snprintf(err, errlen, "%s", text);
        else
            snprintf(err, errlen, "No module named '%s'", module);
        Py_XDECREF(msg);
        PyErr_Clear();
    }
    Py_XDECREF(name);
    Py_DECREF(exc);
    return -ENOENT;
}

/* qilin/failapp.py (module qilin.failapp): make(body) is a WSGI app answering 500 with BODY. */
static const char failapp_py[] = {
#include "plugins/python-wsgi/qilin/failapp.py.inc"
    0};

/*
 * --reload, and the import failed with a SyntaxError (the pending
 * exception): as gunicorn does, the worker stays up, answering every
 * request 500 with the traceback (this is a developer's server), and the
 * file at fault joins the watched ones (st->broken_file), so that fixing it
 * reloads. The traceback is logged too. New reference to that app, or NULL
 * with another Python error.
 */
static PyObject *
syntax_error_app(struct pyw_state *st)
{
    PyObject *exc = pyw_err_fetch(), *tb = NULL, *mod = NULL, *app = NULL;
    PyObject *filename = PyObject_GetAttrString(exc, "filename");

    if (filename != NULL && PyUnicode_Check(filename))
        Py_XSETREF(st->broken_file, Py_NewRef(filename));
    PyErr_Clear();
    tb = pyw_format_exception(st, exc);
    mod = tb != NULL ? pyw_module_define("qilin.failapp", "plugins/python-wsgi/qilin/failapp.py",
                                         failapp_py, NULL)
                     : NULL;
    if (mod != NULL)
        app = PyObject_CallMethod(
            mod, (qln_ctx_worker_flags(st->ctx) & QLN_WORKER_ASYNC) ? "make_asgi" : "make", "O",
            tb);
    pyw_err_restore(Py_NewRef(exc));
    pyw_log_exception(st, QLN_LOG_ERROR,
                      "Exception in worker process (--reload: serving the"
                      " error until the file is fixed)");
    Py_XDECREF(mod);
    Py_XDECREF(tb);
    Py_XDECREF(filename);
    Py_DECREF(exc);
    return app;
}

/* qilin/paste.py (module qilin.paste): load(uri, raw_global_conf) is the app of a PasteDeploy file.
 */
static const char paste_py[] = {
#include "plugins/python-wsgi/qilin/paste.py.inc"
    0};

/*
 * --paste: the app of the PasteDeploy file URI ("production.ini#admin").
 * A missing file, PasteDeploy not installed or a malformed --paste-global
 * is one line; what the app's factory raised gets its traceback.
 */
static int
paste_load(struct pyw_state *st, const char *uri, char *err, size_t errlen)
{
    size_t i, n = qln_cfg_list_len(st->ctx, "raw_paste_global_conf");
    PyObject *mod, *raw = PyList_New(0), *app = NULL, *item;
    int rc = -EINVAL;

    mod = raw != NULL ? pyw_module_define("qilin.paste", "plugins/python-wsgi/qilin/paste.py",
                                          paste_py, NULL)
                      : NULL;
    for (i = 0; mod != NULL && i < n; i++) {
        item = PyUnicode_DecodeFSDefault(qln_cfg_list_get(st->ctx, "raw_paste_global_conf", i));
        if (item == NULL || PyList_Append(raw, item) < 0)
            Py_CLEAR(mod);
        Py_XDECREF(item);
    }
    if (mod != NULL)
        app = PyObject_CallMethod(mod, "load", "sO", uri, raw);
    if (app == NULL) {
        if (PyErr_ExceptionMatches(PyExc_FileNotFoundError) ||
            PyErr_ExceptionMatches(PyExc_ImportError) || PyErr_ExceptionMatches(PyExc_ValueError)) {
            rc = PyErr_ExceptionMatches(PyExc_FileNotFoundError) ? -ENOENT : -EINVAL;
            pyw_exception_line(err, errlen);
            PyErr_Clear();
        } else {
            rc = app_exception(st, err, errlen);
        }
    } else if (!PyCallable_Check(app)) {
        snprintf(err, errlen, "Application object must be callable.");
    } else {
        Py_XSETREF(st->app, Py_NewRef(app));
        rc = 0;
    }
    Py_XDECREF(app);
    Py_XDECREF(mod);
    Py_XDECREF(raw);
    return rc;
}

/* True for "name" or "a.b.c" made of ASCII identifier characters. */
static bool
is_dotted_name(const char *s)
{
    bool start = true;

    for (; *s; s++) {
        char c = *s;

        if (c == '.') {
            if (start)
                return false;
            start = true;
        } else if (c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                   (!start && c >= '0' && c <= '9')) {
            start = false;
        } else {
            return false;
        }
    }
    return !start;
}

/* Looks the dotted NAME up from MOD. Returns a new reference or NULL with ERR set. */
static PyObject *
resolve_dotted(PyObject *mod, const char *module, const char *name, char *err, size_t errlen)
{
    PyObject *obj = Py_NewRef(mod);
    const char *p = name;

    while (obj != NULL && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        PyObject *attr = PyUnicode_FromStringAndSize(p, (Py_ssize_t)len);

        Py_SETREF(obj, attr ? PyObject_GetAttr(obj, attr) : NULL);
        Py_XDECREF(attr);
        p += len + (dot != NULL);
    }
    if (obj == NULL) {
        PyErr_Clear();
        snprintf(err, errlen, "Failed to find attribute '%s' in '%s'.", name, module);
    }
    return obj;
}

/* Text of an ast.Name / ast.Attribute chain ("a.b"), or NULL when it is something else. */
static PyObject *
ast_dotted(PyObject *node)
{
    PyObject *id = PyObject_GetAttrString(node, "id");
    PyObject *value, *attr, *base, *out;

    if (id != NULL)
        return id;
    PyErr_Clear();
    value = PyObject_GetAttrString(node, "value");
    attr = PyObject_GetAttrString(node, "attr");
    base = value && attr && PyUnicode_Check(attr) ? ast_dotted(value) : NULL;
    out = base ? PyUnicode_FromFormat("%U.%U", base, attr) : NULL;
    PyErr_Clear();
    Py_XDECREF(value);
    Py_XDECREF(attr);
    Py_XDECREF(base);
    return out;
}

/* Evaluates each literal of the ast nodes LIST into a tuple; NULL when one is not literal. */
static PyObject *
literal_args(PyObject *literal_eval, PyObject *list)
{
    Py_ssize_t i, n = PySequence_Size(list);
    PyObject *out = n >= 0 ? PyTuple_New(n) : NULL;

    for (i = 0; out != NULL && i < n; i++) {
        PyObject *node = PySequence_GetItem(list, i);
        PyObject *v = node ? PyObject_CallOneArg(literal_eval, node) : NULL;

        Py_XDECREF(node);
        if (v == NULL)
            Py_CLEAR(out);
        else
            PyTuple_SET_ITEM(out, i, v);
    }
    return out;
}

/* The keyword arguments of an ast.Call as a dict of literals; NULL when not literal. */
static PyObject *
literal_kwargs(PyObject *literal_eval, PyObject *keywords)
{
    Py_ssize_t i, n = PySequence_Size(keywords);
    PyObject *out = n >= 0 ? PyDict_New() : NULL;

    for (i = 0; out != NULL && i < n; i++) {
        PyObject *kw = PySequence_GetItem(keywords, i);
        PyObject *arg = kw ? PyObject_GetAttrString(kw, "arg") : NULL;
        PyObject *node = kw ? PyObject_GetAttrString(kw, "value") : NULL;
        PyObject *v =
            node && arg && PyUnicode_Check(arg) ? PyObject_CallOneArg(literal_eval, node) : NULL;

        if (v == NULL || PyDict_SetItem(out, arg, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(kw);
        Py_XDECREF(arg);
        Py_XDECREF(node);
        Py_XDECREF(v);
    }
    return out;
}

/* ast.parse(EXPR, mode="eval"): new reference or NULL. */
static PyObject *
parse_eval(PyObject *ast, const char *expr)
{
    PyObject *parse = PyObject_GetAttrString(ast, "parse");
    PyObject *args = parse ? Py_BuildValue("(s)", expr) : NULL;
    PyObject *kwargs = args ? Py_BuildValue("{ss}", "mode", "eval") : NULL;
    PyObject *tree = kwargs ? PyObject_Call(parse, args, kwargs) : NULL;

    Py_XDECREF(parse);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return tree;
}

/*
 * EXPR is a call, "factory(args)": parsed with ast like gunicorn does, the
 * arguments only as literals (ast.literal_eval), never evaluated as code.
 * Returns the factory's result (new), or NULL with ERR set.
 */
/* As resolve_dotted, for "factory(args)"; *RC is -EINVAL when the factory raised. */
static PyObject *
call_factory(struct pyw_state *st, PyObject *mod, const char *module, const char *expr, int *rc,
             char *err, size_t errlen)
{
    PyObject *ast = PyImport_ImportModule("ast");
    PyObject *tree = NULL, *body = NULL, *call = NULL, *fname = NULL, *func = NULL;
    PyObject *eval = NULL, *nodes = NULL, *args = NULL, *kwargs = NULL, *app = NULL;

    tree = ast ? parse_eval(ast, expr) : NULL;
    body = tree ? PyObject_GetAttrString(tree, "body") : NULL;
    call = ast ? PyObject_GetAttrString(ast, "Call") : NULL;
    if (body == NULL || call == NULL || !PyObject_TypeCheck(body, (PyTypeObject *)call)) {
        PyErr_Clear();
        snprintf(err, errlen, "Failed to parse '%s' as an attribute name or function call.", expr);
        goto done;
    }
    nodes = PyObject_GetAttrString(body, "func");
    fname = nodes ? ast_dotted(nodes) : NULL;
    Py_CLEAR(nodes);
    if (fname == NULL) {
        PyErr_Clear();
        snprintf(err, errlen, "Function reference must be a simple name: '%s'", expr);
        goto done;
    }
    eval = PyObject_GetAttrString(ast, "literal_eval");
    nodes = eval ? PyObject_GetAttrString(body, "args") : NULL;
    args = nodes ? literal_args(eval, nodes) : NULL;
    Py_CLEAR(nodes);
    nodes = args ? PyObject_GetAttrString(body, "keywords") : NULL;
    kwargs = nodes ? literal_kwargs(eval, nodes) : NULL;
    if (kwargs == NULL) {
        PyErr_Clear();
        snprintf(err, errlen, "Failed to parse arguments as literal values: '%s'", expr);
        goto done;
    }
    func = PyUnicode_AsUTF8(fname)
               ? resolve_dotted(mod, module, PyUnicode_AsUTF8(fname), err, errlen)
               : NULL;
    if (func == NULL)
        goto done;
    app = PyObject_Call(func, args, kwargs);
    if (app == NULL)
        *rc = app_exception(st, err, errlen);
done:
    Py_XDECREF(ast);
    Py_XDECREF(tree);
    Py_XDECREF(body);
    Py_XDECREF(call);
    Py_XDECREF(fname);
    Py_XDECREF(func);
    Py_XDECREF(eval);
    Py_XDECREF(nodes);
    Py_XDECREF(args);
    Py_XDECREF(kwargs);
    return app;
}

int
pyw_app_load(struct pyw_state *st, const char *spec, char *err, size_t errlen)
{
    const char *colon = strchr(spec, ':');
    const char *expr = colon ? colon + 1 : "application";
    size_t mlen = colon ? (size_t)(colon - spec) : strlen(spec);
    char *module = pyw_calloc(1, mlen + 1);
    PyObject *mod = NULL, *app = NULL;
    /* Not found unless the app's own code raised (see load_app in plugin.h). */
    int rc = -ENOENT;

    memcpy(module, spec, mlen);
    /* Before the app imports: it may take the loggers' handlers at import
       time. Here rather than at startup, so that the level is --log-level
       even when gunicorn.conf.py started the interpreter earlier. */
    if (pyw_sys_path_init(st) < 0 || (!st->logconfig_on && pyw_loggers_init() < 0)) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        rc = -EINVAL;
        goto done;
    }
    if (qln_cfg_str(st->ctx, "paste") != NULL) {
        rc = paste_load(st, qln_cfg_str(st->ctx, "paste"), err, errlen);
        goto done;
    }
    if (mlen == 0) {
        snprintf(err, errlen,
                 "Failed to find application: '%s' names no module; "
                 "write it as MODULE:CALLABLE",
                 spec);
        goto done;
    }
    mod = PyImport_ImportModule(module);
    if (mod == NULL && PyErr_ExceptionMatches(PyExc_SyntaxError) &&
        qln_cfg_bool(st->ctx, "reload") && getpid() != st->master_pid) {
        app = syntax_error_app(st);
        if (app == NULL) {
            rc = app_exception(st, err, errlen);
            goto done;
        }
        Py_XSETREF(st->app, Py_NewRef(app));
        rc = 0;
        goto done;
    }
    if (mod == NULL) {
        rc = import_failed(st, module, expr, err, errlen);
        goto done;
    }
    if (is_dotted_name(expr))
        app = resolve_dotted(mod, module, expr, err, errlen);
    else
        app = call_factory(st, mod, module, expr, &rc, err, errlen);
    if (app == NULL)
        goto done;
    if (app == Py_None) {
        snprintf(err, errlen, "Failed to find application object: '%s'", expr);
        goto done;
    }
    if (!PyCallable_Check(app)) {
        snprintf(err, errlen, "Application object must be callable.");
        goto done;
    }
    Py_XSETREF(st->app, Py_NewRef(app));
    rc = 0;
done:
    Py_XDECREF(app);
    Py_XDECREF(mod);
    free(module);
    return rc;
}
