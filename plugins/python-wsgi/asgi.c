/*
 * ASGI 3 (and ASGI 2) HTTP on the asyncio worker, and the module qilin.asgi.
 *
 * The core serves each connection in a greenlet of the asyncio worker
 * (plugins/workers/asyncio/) whose parent, the hub, runs the event loop.
 * handle() runs in that connection greenlet: it builds the scope, starts
 * the app's coroutine as a Task on the loop and switches to the hub until
 * the response is complete. The app's send() and receive() run in the
 * Task, on the hub; they record what they ask in the call object and, if
 * the connection greenlet is waiting for them, switch to it, and it does
 * the socket work through the core (whose waits switch back to the hub).
 * When that work finished without waiting, send()/receive() return an
 * awaitable that is already done; otherwise a future the connection
 * greenlet completes later, which is how a slow client slows the app's
 * `await send()`. So HTTP stays on the core's one request path.
 *
 * Memory rule: the hub and the connection greenlet share the call object
 * (heap) only; a greenlet's C stack is copied away while another runs.
 * Worker process, main thread, interpreter lock held throughout.
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "py.h"

/* How much request body one http.request message carries at most. */
#define ASGI_BODY_CHUNK (64 * 1024)
/* Response headers kept on the stack; more are allocated. */
#define ASGI_STACK_HEADERS 32

/* The plugin state the module's functions use: one per process. */
static struct pyw_state *asgi_st;

enum send_kind {
    SEND_NONE = 0,
    SEND_BODY,
    SEND_PATH,
};

/*
 * One request: shared by its connection greenlet (handle()) and the app's
 * Task (send, receive, the done callback). REQ is NULL once handle() has
 * returned: the response is complete or abandoned, and the Task, which may
 * still run (background work), gets no-ops and http.disconnect.
 */
struct asgi_call {
    PyObject_HEAD struct pyw_state *st;
    struct qln_request *req;
    struct qln_response *resp;
    PyObject *gl_switch; /* new: the connection greenlet's switch */
    PyObject *task;      /* new: the app's Task */
    bool waiting;        /* the connection greenlet waits for the app: wake it */
    bool watching;       /* WATCH_FD's reader is registered */
    int watch_fd;        /* a dup of the socket for this call's own waits, or -1 */
    bool started;        /* http.response.start arrived */
    bool head_done;      /* the core has the head (qln_resp_start) */
    bool complete;       /* the last body message went out */
    bool task_done;
    bool gone;       /* the client went away (or a write failed): sends are no-ops */
    bool body_done;  /* the last http.request message was delivered */
    bool ambiguous;  /* bytes of a next request arrived: a disconnect cannot be seen */
    bool stop;       /* the worker stops now */
    int status;
    PyObject *headers; /* new: the start message's headers */
    enum send_kind pend;
    PyObject *pend_obj;  /* new: the body (bytes-like) or the path */
    bool pend_more;
    PyObject *send_fut;  /* new: the future a waiting send() returned */
    PyObject *send_err;  /* new: the exception that future (or send()) gets */
    bool recv_pend;
    PyObject *recv_msg;  /* new: a message ready for receive() */
    PyObject *recv_fut;  /* new: the future a waiting receive() returned */
    PyObject *exc;       /* new: the Task's exception */
    int io_error;
};

static PyTypeObject asgi_call_type;

/* ------------------------------------------------------------ the module */

static PyObject *
intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

static void
clear_loop(struct pyw_asgi *a)
{
    Py_CLEAR(a->loop);
    Py_CLEAR(a->hub_switch);
    Py_CLEAR(a->getcurrent);
    Py_CLEAR(a->create_task);
    Py_CLEAR(a->create_future);
    Py_CLEAR(a->add_reader);
    Py_CLEAR(a->remove_reader);
    Py_CLEAR(a->done);
}

/* attach(loop, hub): the worker's loop and hub; attach(None, None) forgets them. */
static PyObject *
mod_attach(PyObject *self, PyObject *args)
{
    struct pyw_asgi *a = &asgi_st->asgi;
    PyObject *loop, *hub, *greenlet, *r;

    if (!PyArg_ParseTuple(args, "OO:attach", &loop, &hub))
        return NULL;
    clear_loop(a);
    if (loop == Py_None)
        Py_RETURN_NONE;
    greenlet = PyImport_ImportModule("greenlet");
    if (greenlet == NULL)
        return NULL;
    a->getcurrent = PyObject_GetAttrString(greenlet, "getcurrent");
    Py_DECREF(greenlet);
    a->loop = Py_NewRef(loop);
    a->hub_switch = PyObject_GetAttr(hub, a->s_switch);
    a->create_task = PyObject_GetAttrString(loop, "create_task");
    a->create_future = PyObject_GetAttrString(loop, "create_future");
    a->add_reader = PyObject_GetAttrString(loop, "add_reader");
    a->remove_reader = PyObject_GetAttrString(loop, "remove_reader");
    if (a->getcurrent == NULL || a->hub_switch == NULL || a->create_task == NULL ||
        a->create_future == NULL || a->add_reader == NULL || a->remove_reader == NULL) {
        clear_loop(a);
        return NULL;
    }
    a->done = PyObject_CallNoArgs(a->create_future);
    r = a->done ? PyObject_CallMethodOneArg(a->done, a->s_set_result, Py_None) : NULL;
    if (r == NULL) {
        clear_loop(a);
        return NULL;
    }
    Py_DECREF(r);
    Py_RETURN_NONE;
}

/*
 * An ASGI 2 application as an ASGI 3 callable: app2(scope) is the instance,
 * instance(receive, send) the coroutine.
 */
static PyObject *
asgi2_call(PyObject *self, PyObject *args)
{
    PyObject *scope, *receive, *send, *inst, *coro;

    if (!PyArg_ParseTuple(args, "OOO", &scope, &receive, &send))
        return NULL;
    inst = PyObject_CallOneArg(self, scope);
    if (inst == NULL)
        return NULL;
    coro = PyObject_CallFunctionObjArgs(inst, receive, send, NULL);
    Py_DECREF(inst);
    return coro;
}

static PyMethodDef asgi2_def = {"asgi2_app", asgi2_call, METH_VARARGS, NULL};

/* app(): the application as an ASGI 3 callable. */
static PyObject *
mod_app(PyObject *self, PyObject *unused)
{
    if (asgi_st->app == NULL)
        return PyErr_Format(PyExc_RuntimeError, "no application is loaded");
    if (asgi_st->iface == PYW_ASGI2)
        return PyCFunction_New(&asgi2_def, asgi_st->app);
    return Py_NewRef(asgi_st->app);
}

/* setting(name): a string or integer setting of qilin's. */
static PyObject *
mod_setting(PyObject *self, PyObject *arg)
{
    const struct qln_option *o;
    const char *name = PyUnicode_AsUTF8(arg);

    if (name == NULL)
        return NULL;
    o = qln_cfg_option(asgi_st->ctx, name);
    if (o == NULL)
        return PyErr_Format(PyExc_KeyError, "no setting %s", name);
    if (o->type == QLN_OPT_INT)
        return PyLong_FromLongLong((long long)qln_cfg_int(asgi_st->ctx, name));
    if (o->type == QLN_OPT_BOOL)
        return PyBool_FromLong(qln_cfg_bool(asgi_st->ctx, name));
    if (o->type == QLN_OPT_STRING) {
        const char *v = qln_cfg_str(asgi_st->ctx, name);

        return PyUnicode_FromString(v != NULL ? v : "");
    }
    return PyErr_Format(PyExc_TypeError, "setting %s is a list", name);
}

/* set_state(dict or None): the lifespan state request scopes copy. */
static PyObject *
mod_set_state(PyObject *self, PyObject *arg)
{
    if (arg != Py_None && !PyDict_Check(arg))
        return PyErr_Format(PyExc_TypeError, "set_state takes a dict");
    Py_XSETREF(asgi_st->asgi.state, arg == Py_None ? NULL : Py_NewRef(arg));
    Py_RETURN_NONE;
}

static int
level_of(const char *name)
{
    static const struct {
        const char *name;
        int level;
    } levels[] = {{"debug", QLN_LOG_DEBUG},
                  {"info", QLN_LOG_INFO},
                  {"warning", QLN_LOG_WARNING},
                  {"error", QLN_LOG_ERROR},
                  {"critical", QLN_LOG_CRITICAL}};
    size_t i;

    for (i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        if (strcmp(levels[i].name, name) == 0)
            return levels[i].level;
    }
    return QLN_LOG_ERROR;
}

/* Makes EXC (borrowed) the current exception, traceback included. */
static void
restore_exception(PyObject *exc)
{
    PyObject *tb = PyException_GetTraceback(exc);

    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), Py_NewRef(exc), tb);
}

/* log(level, msg[, exc]) */
static PyObject *
mod_log(PyObject *self, PyObject *args)
{
    const char *level, *msg;
    PyObject *exc = NULL;

    if (!PyArg_ParseTuple(args, "ss|O:log", &level, &msg, &exc))
        return NULL;
    if (exc != NULL && PyExceptionInstance_Check(exc)) {
        restore_exception(exc);
        pyw_log_exception(asgi_st, level_of(level), "%s", msg);
    } else {
        qln_log(level_of(level), "%s", msg);
    }
    Py_RETURN_NONE;
}

static PyMethodDef asgi_methods[] = {
    {"attach", mod_attach, METH_VARARGS, NULL},
    {"app", mod_app, METH_NOARGS, NULL},
    {"setting", mod_setting, METH_O, NULL},
    {"set_state", mod_set_state, METH_O, NULL},
    {"log", mod_log, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* qilin/asgi.py: the Python half (module qilin.asgi, over the C functions of qilin._asgi). */
static const char asgi_py[] = {
#include "plugins/python-wsgi/qilin/asgi.py.inc"
    0};

int
pyw_asgi_init(struct pyw_state *st)
{
    struct pyw_asgi *a = &st->asgi;
    const char *root = qln_cfg_str(st->ctx, "root_path");
    PyObject *mod;

    asgi_st = st;
    a->http10 = intern("1.0");
    a->http11 = intern("1.1");
    a->http = intern("http");
    a->https = intern("https");
    a->k_type = intern("type");
    a->k_asgi = intern("asgi");
    a->k_http_version = intern("http_version");
    a->k_server = intern("server");
    a->k_client = intern("client");
    a->k_scheme = intern("scheme");
    a->k_method = intern("method");
    a->k_root_path = intern("root_path");
    a->k_path = intern("path");
    a->k_raw_path = intern("raw_path");
    a->k_query_string = intern("query_string");
    a->k_headers = intern("headers");
    a->k_state = intern("state");
    a->k_extensions = intern("extensions");
    a->k_body = intern("body");
    a->k_more_body = intern("more_body");
    a->k_status = intern("status");
    a->k_path_send = intern("path");
    a->t_http_request = intern("http.request");
    a->t_http_disconnect = intern("http.disconnect");
    a->t_response_start = intern("http.response.start");
    a->t_response_body = intern("http.response.body");
    a->t_pathsend = intern("http.response.pathsend");
    a->s_switch = intern("switch");
    a->s_add_done_callback = intern("add_done_callback");
    a->s_set_result = intern("set_result");
    a->s_cancel = intern("cancel");
    a->s_cancelled = intern("cancelled");
    a->s_exception = intern("exception");
    a->s_done = intern("done");
    a->root_path = PyUnicode_FromString(root != NULL ? root : "");
    a->asgi_version = Py_BuildValue("{s:s,s:s}", "version", "3.0", "spec_version", "2.3");
    a->extensions = Py_BuildValue("{s:{}}", "http.response.pathsend");
    if (PyErr_Occurred() || PyType_Ready(&asgi_call_type) < 0)
        return -1;
    mod = pyw_module_define("qilin._asgi", NULL, NULL, asgi_methods);
    if (mod == NULL)
        return -1;
    Py_DECREF(mod);
    mod = pyw_module_define("qilin.asgi", "plugins/python-wsgi/qilin/asgi.py", asgi_py, NULL);
    if (mod == NULL)
        return -1;
    Py_DECREF(mod);
    return 0;
}

void
pyw_asgi_fini(struct pyw_state *st)
{
    struct pyw_asgi *a = &st->asgi;
    PyObject **objs[] = {
        &a->state,          &a->root_path,      &a->asgi_version,  &a->extensions,
        &a->http10,         &a->http11,         &a->http,          &a->https,
        &a->k_type,         &a->k_asgi,         &a->k_http_version, &a->k_server,
        &a->k_client,       &a->k_scheme,       &a->k_method,      &a->k_root_path,
        &a->k_path,         &a->k_raw_path,     &a->k_query_string, &a->k_headers,
        &a->k_state,        &a->k_extensions,   &a->k_body,        &a->k_more_body,
        &a->k_status,       &a->k_path_send,    &a->t_http_request, &a->t_http_disconnect,
        &a->t_response_start, &a->t_response_body, &a->t_pathsend, &a->s_switch,
        &a->s_add_done_callback, &a->s_set_result, &a->s_cancel,  &a->s_cancelled,
        &a->s_exception,    &a->s_done,
    };
    size_t i;

    clear_loop(a);
    for (i = 0; i < sizeof(objs) / sizeof(objs[0]); i++)
        Py_CLEAR(*objs[i]);
}

/* ------------------------------------------------------------ settings */

static int
check_choice(struct qln_ctx *ctx, const char *name, const char *flag, const char *const *choices,
             char *err, size_t errlen)
{
    const char *v = qln_cfg_str(ctx, name);
    size_t i;

    for (i = 0; v != NULL && choices[i] != NULL; i++) {
        if (strcmp(v, choices[i]) == 0)
            return 0;
    }
    snprintf(err, errlen, "%s '%s' is not one of %s, %s, %s%s%s", flag, v != NULL ? v : "",
             choices[0], choices[1], choices[2], choices[3] ? ", " : "",
             choices[3] ? choices[3] : "");
    return -EINVAL;
}

int
pyw_asgi_check_settings(struct qln_ctx *ctx, char *err, size_t errlen)
{
    static const char *const ifaces[] = {"auto", "asgi3", "asgi2", "wsgi", NULL};
    static const char *const loops[] = {"auto", "asyncio", "uvloop", NULL};
    static const char *const lifespans[] = {"auto", "on", "off", NULL};

    if (check_choice(ctx, "interface", "--interface", ifaces, err, errlen) < 0 ||
        check_choice(ctx, "asgi_loop", "--asgi-loop", loops, err, errlen) < 0 ||
        check_choice(ctx, "asgi_lifespan", "--asgi-lifespan", lifespans, err, errlen) < 0)
        return -EINVAL;
    return 0;
}

/* True when OBJ is a coroutine function (inspect.iscoroutinefunction), -1 on error. */
static int
is_coroutine_function(PyObject *inspect, PyObject *obj)
{
    PyObject *r = PyObject_CallMethod(inspect, "iscoroutinefunction", "O", obj);
    int yes;

    if (r == NULL)
        return -1;
    yes = PyObject_IsTrue(r);
    Py_DECREF(r);
    return yes;
}

/* ASGI 3 when the app or its __call__ is a coroutine function. */
static int
detect(PyObject *app)
{
    PyObject *inspect = PyImport_ImportModule("inspect"), *call;
    int yes;

    if (inspect == NULL)
        return -1;
    yes = is_coroutine_function(inspect, app);
    if (yes == 0 && !PyType_Check(app) && !PyFunction_Check(app)) {
        call = PyObject_GetAttrString(app, "__call__");
        if (call == NULL)
            PyErr_Clear();
        else
            yes = is_coroutine_function(inspect, call);
        Py_XDECREF(call);
    }
    Py_DECREF(inspect);
    return yes < 0 ? -1 : yes ? PYW_ASGI3 : PYW_WSGI;
}

int
pyw_asgi_detect(struct pyw_state *st, const char *spec, char *err, size_t errlen)
{
    const char *forced = qln_cfg_str(st->ctx, "interface");
    bool async = (qln_ctx_worker_flags(st->ctx) & QLN_WORKER_ASYNC) != 0;
    int iface;

    if (forced != NULL && strcmp(forced, "asgi3") == 0)
        iface = PYW_ASGI3;
    else if (forced != NULL && strcmp(forced, "asgi2") == 0)
        iface = PYW_ASGI2;
    else if (forced != NULL && strcmp(forced, "wsgi") == 0)
        iface = PYW_WSGI;
    else
        iface = detect(st->app);
    if (iface < 0) {
        pyw_exception_line(err, errlen);
        PyErr_Clear();
        return -EINVAL;
    }
    st->iface = (enum pyw_iface)iface;
    if (iface != PYW_WSGI && !async) {
        snprintf(err, errlen,
                 "'%s' is an ASGI application, which this worker class cannot serve:"
                 " run it with -k asyncio",
                 spec);
        return -EINVAL;
    }
    if (iface == PYW_WSGI && async) {
        snprintf(err, errlen,
                 "'%s' is a WSGI application, which -k asyncio cannot serve: run it with -k sync,"
                 " gthread, gevent or eventlet (or say --interface asgi3 if it is ASGI)",
                 spec);
        return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------ the scope */

static PyObject *
bytes_of(struct qln_slice s)
{
    return PyBytes_FromStringAndSize(s.p, (Py_ssize_t)s.len);
}

/* The headers as [(lowercase name, value)], bytes each. */
static PyObject *
scope_headers(struct qln_request *req)
{
    size_t i, n = qln_req_nheaders(req);
    const struct qln_header *h = qln_req_headers(req);
    PyObject *list = PyList_New((Py_ssize_t)n);

    for (i = 0; list != NULL && i < n; i++) {
        PyObject *name = bytes_of(h[i].name), *value = bytes_of(h[i].value), *pair = NULL;
        char *p;
        size_t j;

        if (name != NULL && value != NULL) {
            p = PyBytes_AS_STRING(name);
            for (j = 0; j < h[i].name.len; j++) {
                if (p[j] >= 'A' && p[j] <= 'Z')
                    p[j] = (char)(p[j] - 'A' + 'a');
            }
            pair = PyTuple_Pack(2, name, value);
        }
        Py_XDECREF(name);
        Py_XDECREF(value);
        if (pair == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, pair);
    }
    return list;
}

/* The path percent-decoded, then decoded as UTF-8 (urllib's unquote). */
static PyObject *
scope_path(struct qln_slice path)
{
    char stackbuf[1024];
    char *buf;
    PyObject *out;

    if (memchr(path.p, '%', path.len) == NULL)
        return PyUnicode_DecodeUTF8(path.p, (Py_ssize_t)path.len, "replace");
    buf = path.len <= sizeof(stackbuf) ? stackbuf : PyMem_Malloc(path.len);
    if (buf == NULL)
        return PyErr_NoMemory();
    out = PyUnicode_DecodeUTF8(buf, (Py_ssize_t)pyw_unquote(buf, path.p, path.len), "replace");
    if (buf != stackbuf)
        PyMem_Free(buf);
    return out;
}

/* (host, port) or, for a unix socket, (path, None). */
static PyObject *
address(const char *host, const char *port)
{
    if (port == NULL || port[0] == '\0')
        return Py_BuildValue("(sO)", host, Py_None);
    return Py_BuildValue("(si)", host, atoi(port));
}

static int
put(PyObject *d, PyObject *key, PyObject *value)
{
    int rc;

    if (value == NULL)
        return -1;
    rc = PyDict_SetItem(d, key, value);
    Py_DECREF(value);
    return rc;
}

static PyObject *
scope_build(struct pyw_state *st, struct qln_request *req)
{
    struct pyw_asgi *a = &st->asgi;
    struct qln_slice path = qln_req_path(req);
    const char *scheme = qln_req_url_scheme(req);
    const char *raddr = qln_req_remote_addr(req);
    PyObject *scope = PyDict_New();

    if (path.len == 0)
        path = qln_req_target(req); /* OPTIONS * */
    if (scope == NULL ||
        PyDict_SetItem(scope, a->k_type, a->http) < 0 ||
        PyDict_SetItem(scope, a->k_asgi, a->asgi_version) < 0 ||
        PyDict_SetItem(scope, a->k_http_version,
                       qln_req_version_minor(req) == 0 ? a->http10 : a->http11) < 0 ||
        put(scope, a->k_server, address(qln_req_server_name(req), qln_req_server_port(req))) < 0 ||
        put(scope, a->k_client,
            raddr[0] != '\0' ? address(raddr, qln_req_remote_port(req)) : Py_NewRef(Py_None)) <
            0 ||
        PyDict_SetItem(scope, a->k_scheme, strcmp(scheme, "https") == 0 ? a->https : a->http) <
            0 ||
        put(scope, a->k_method, pyw_method_object(&st->env, qln_req_method(req))) < 0 ||
        PyDict_SetItem(scope, a->k_root_path, a->root_path) < 0 ||
        put(scope, a->k_path, scope_path(path)) < 0 ||
        put(scope, a->k_raw_path, bytes_of(path)) < 0 ||
        put(scope, a->k_query_string, bytes_of(qln_req_query(req))) < 0 ||
        put(scope, a->k_headers, scope_headers(req)) < 0 ||
        PyDict_SetItem(scope, a->k_extensions, a->extensions) < 0 ||
        (a->state != NULL && put(scope, a->k_state, PyDict_Copy(a->state)) < 0)) {
        Py_XDECREF(scope);
        return NULL;
    }
    return scope;
}

/* ------------------------------------------------------------ messages */

static PyObject *
message_request(struct pyw_asgi *a, PyObject *body, bool more)
{
    PyObject *m = PyDict_New();

    if (m == NULL || PyDict_SetItem(m, a->k_type, a->t_http_request) < 0 ||
        PyDict_SetItem(m, a->k_body, body) < 0 ||
        PyDict_SetItem(m, a->k_more_body, more ? Py_True : Py_False) < 0) {
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}

static PyObject *
message_disconnect(struct pyw_asgi *a)
{
    PyObject *m = PyDict_New();

    if (m == NULL || PyDict_SetItem(m, a->k_type, a->t_http_disconnect) < 0) {
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}

/* A finished future with RESULT (borrowed). */
static PyObject *
future_done(struct pyw_asgi *a, PyObject *result)
{
    PyObject *f, *r;

    if (result == Py_None)
        return Py_NewRef(a->done);
    f = PyObject_CallNoArgs(a->create_future);
    if (f == NULL)
        return NULL;
    r = PyObject_CallMethodOneArg(f, a->s_set_result, result);
    if (r == NULL)
        Py_CLEAR(f);
    Py_XDECREF(r);
    return f;
}

/*
 * Completes *SLOT (a future the app awaits; taken) with RESULT, or raises
 * EXC in it when EXC is set. A future the app cancelled meanwhile is left.
 */
static void
future_finish(struct pyw_asgi *a, PyObject **slot, PyObject *result, PyObject *exc)
{
    PyObject *f = *slot, *r;
    int cancelled;

    *slot = NULL;
    if (f == NULL)
        return;
    r = PyObject_CallMethodNoArgs(f, a->s_done);
    cancelled = r != NULL ? PyObject_IsTrue(r) : 1;
    Py_XDECREF(r);
    if (cancelled == 0) {
        r = exc != NULL ? PyObject_CallMethod(f, "set_exception", "O", exc)
                        : PyObject_CallMethodOneArg(f, a->s_set_result, result);
        Py_XDECREF(r);
    }
    PyErr_Clear();
    Py_DECREF(f);
}

/* ------------------------------------------- the connection greenlet's side */

/* Converts the start message's headers for the core; adds Content-Length when LENGTH >= 0. */
static int
start_head(struct asgi_call *c, int64_t length)
{
    struct qln_header stack[ASGI_STACK_HEADERS], *h = stack;
    PyObject *seq = PySequence_Fast(c->headers, "ASGI response headers must be a list");
    Py_ssize_t i, n;
    char status[64], lenbuf[24];
    bool has_length = false;
    int rc = -EINVAL;

    if (seq == NULL)
        return -EINVAL;
    n = PySequence_Fast_GET_SIZE(seq);
    if ((size_t)n + 1 > ASGI_STACK_HEADERS)
        h = PyMem_Calloc((size_t)n + 1, sizeof(*h));
    if (h == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i), *name, *value;

        if (!PyTuple_Check(pair) && !PyList_Check(pair)) {
            PyErr_Format(PyExc_TypeError, "ASGI response header %zd is not a (name, value) pair",
                         i);
            goto out;
        }
        if (PySequence_Fast_GET_SIZE(pair) != 2) {
            PyErr_Format(PyExc_TypeError, "ASGI response header %zd is not a (name, value) pair",
                         i);
            goto out;
        }
        name = PySequence_Fast_GET_ITEM(pair, 0);
        value = PySequence_Fast_GET_ITEM(pair, 1);
        if (!PyBytes_Check(name) || !PyBytes_Check(value)) {
            PyErr_Format(PyExc_TypeError,
                         "ASGI response header names and values must be bytes, not %.50s",
                         Py_TYPE(PyBytes_Check(name) ? value : name)->tp_name);
            goto out;
        }
        h[i].name.p = PyBytes_AS_STRING(name);
        h[i].name.len = (size_t)PyBytes_GET_SIZE(name);
        h[i].value.p = PyBytes_AS_STRING(value);
        h[i].value.len = (size_t)PyBytes_GET_SIZE(value);
        if (h[i].name.len == 14 && strncasecmp(h[i].name.p, "content-length", 14) == 0)
            has_length = true;
    }
    if (length >= 0 && !has_length) {
        h[n].name.p = "Content-Length";
        h[n].name.len = 14;
        h[n].value.p = lenbuf;
        h[n].value.len = (size_t)snprintf(lenbuf, sizeof(lenbuf), "%lld", (long long)length);
        n++;
    }
    snprintf(status, sizeof(status), "%d %s", c->status, qln_http_reason(c->status));
    rc = qln_resp_start(c->resp, (struct qln_slice){status, strlen(status)}, h, (size_t)n);
    if (rc == QLN_EBADHEADER)
        PyErr_Format(PyExc_RuntimeError, "Invalid ASGI response: %s", qln_resp_refusal(c->resp));
    else if (rc < 0)
        PyErr_Format(PyExc_RuntimeError, "ASGI response refused: %s", qln_strerror(rc));
    else
        c->head_done = true;
out:
    if (h != stack)
        PyMem_Free(h);
    Py_DECREF(seq);
    return rc;
}

/* Sends a file named by http.response.pathsend with sendfile. */
static int
send_path(struct asgi_call *c)
{
    const char *path = PyUnicode_AsUTF8(c->pend_obj);
    struct stat sb;
    int fd, rc;

    if (path == NULL)
        return -EINVAL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        PyErr_SetFromErrnoWithFilename(PyExc_OSError, path);
        if (fd >= 0)
            close(fd);
        return -EINVAL;
    }
    rc = c->head_done ? 0 : start_head(c, (int64_t)sb.st_size);
    if (rc == 0)
        rc = qln_resp_sendfile(c->resp, fd, 0, (int64_t)sb.st_size);
    close(fd);
    return rc;
}

/* Writes the pending send; returns 0, or a negative errno (a Python error for -EINVAL). */
static int
send_pending(struct asgi_call *c)
{
    Py_buffer view;
    int rc;

    if (c->pend == SEND_PATH)
        return send_path(c);
    if (PyObject_GetBuffer(c->pend_obj, &view, PyBUF_SIMPLE) < 0)
        return -EINVAL;
    rc = c->head_done ? 0 : start_head(c, c->pend_more ? -1 : (int64_t)view.len);
    if (rc == 0 && view.len > 0)
        rc = qln_resp_write(c->resp, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return rc;
}

static void
do_send(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    bool last = c->pend == SEND_PATH || !c->pend_more;
    int rc = send_pending(c);

    c->pend = SEND_NONE;
    Py_CLEAR(c->pend_obj);
    if (rc < 0 && PyErr_Occurred()) {
        /* The app's mistake: its await send() raises it. */
        Py_XSETREF(c->send_err, pyw_err_fetch());
    } else if (rc < 0) {
        /* The client is gone: sends are no-ops from now on (ASGI spec 2.3). */
        c->io_error = rc;
        c->gone = true;
    } else if (last) {
        c->complete = true;
    }
    if (c->send_fut != NULL) {
        future_finish(a, &c->send_fut, Py_None, c->send_err);
        Py_CLEAR(c->send_err);
    }
}

/* Peer state once the body is read: true when it has closed its side. */
static bool
peer_closed(struct asgi_call *c)
{
    struct pollfd p = {.fd = qln_req_fd(c->req), .events = POLLIN | POLLRDHUP};

    if (poll(&p, 1, 0) <= 0)
        return false;
    if (p.revents & (POLLRDHUP | POLLHUP | POLLERR))
        return true;
    /* Bytes of a pipelined next request: nothing tells a close apart any more. */
    c->ambiguous = true;
    return false;
}

/* Delivers MSG (new; NULL: a Python error) to the pending receive(). */
static void
deliver(struct asgi_call *c, PyObject *msg)
{
    struct pyw_asgi *a = &c->st->asgi;

    if (msg == NULL) {
        PyErr_Clear();
        msg = Py_NewRef(Py_None);
    }
    c->recv_pend = false;
    if (c->recv_fut != NULL) {
        future_finish(a, &c->recv_fut, msg, NULL);
        Py_DECREF(msg);
    } else {
        Py_XSETREF(c->recv_msg, msg);
    }
}

/*
 * Serves the pending receive() if it can without waiting: 0 when done, 1
 * when it must wait for the socket.
 */
static int
do_receive(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *body, *msg;
    char *p;
    ssize_t n;
    size_t got = 0;
    bool more = true;

    if (c->gone) {
        deliver(c, message_disconnect(a));
        return 0;
    }
    if (c->body_done) {
        if (c->ambiguous || !peer_closed(c))
            return 1;
        c->gone = true;
        deliver(c, message_disconnect(a));
        return 0;
    }
    body = PyBytes_FromStringAndSize(NULL, ASGI_BODY_CHUNK);
    if (body == NULL) {
        deliver(c, NULL);
        return 0;
    }
    p = PyBytes_AS_STRING(body);
    while (got < ASGI_BODY_CHUNK) {
        n = qln_req_read_nowait(c->req, p + got, ASGI_BODY_CHUNK - got);
        if (n > 0) {
            got += (size_t)n;
            continue;
        }
        if (n == 0)
            more = false;
        else if (n != -EAGAIN)
            c->io_error = (int)n;
        break;
    }
    if (got == 0 && more && c->io_error == 0) {
        Py_DECREF(body);
        return 1;
    }
    if (c->io_error != 0 && got == 0) {
        Py_DECREF(body);
        c->gone = true;
        deliver(c, message_disconnect(a));
        return 0;
    }
    if (c->io_error != 0)
        more = true; /* what came is delivered; the disconnect follows */
    if (_PyBytes_Resize(&body, (Py_ssize_t)got) < 0) {
        deliver(c, NULL);
        return 0;
    }
    c->body_done = !more;
    msg = message_request(a, body, more);
    Py_DECREF(body);
    deliver(c, msg);
    return 0;
}

/* Wakes the connection greenlet if it waits for the app. -1 with a Python error. */
static int
wake(struct asgi_call *c)
{
    PyObject *r;

    if (!c->waiting || c->gl_switch == NULL)
        return 0;
    r = PyObject_CallNoArgs(c->gl_switch);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ------------------------------------------------------------ the Task's side */

static PyObject *
call_send(struct asgi_call *c, PyObject *msg)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *type, *v, *f;

    if (!PyDict_Check(msg))
        return PyErr_Format(PyExc_TypeError, "ASGI send() takes a dict, not %.50s",
                            Py_TYPE(msg)->tp_name);
    type = PyDict_GetItemWithError(msg, a->k_type);
    if (type == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "ASGI message without 'type'");
        return NULL;
    }
    if (c->gone)
        return Py_NewRef(a->done);
    if (c->req == NULL || c->complete)
        return PyErr_Format(PyExc_RuntimeError,
                            "Unexpected ASGI message %R sent, after response already completed.",
                            type);
    if (c->pend != SEND_NONE)
        return PyErr_Format(PyExc_RuntimeError,
                            "ASGI message %R sent while the previous send() is not done", type);
    if (PyUnicode_Compare(type, a->t_response_start) == 0) {
        if (c->started)
            return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R sent, after "
                                                    "response already started.",
                                type);
        v = PyDict_GetItemWithError(msg, a->k_status);
        if (v == NULL || !PyLong_Check(v)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "http.response.start needs an int 'status'");
            return NULL;
        }
        c->status = (int)PyLong_AsLong(v);
        if (c->status < 100 || c->status > 999)
            return PyErr_Format(PyExc_ValueError, "invalid ASGI response status %R", v);
        v = PyDict_GetItemWithError(msg, a->k_headers);
        if (v == NULL && PyErr_Occurred())
            return NULL;
        Py_XSETREF(c->headers, v != NULL ? Py_NewRef(v) : PyTuple_New(0));
        c->started = true;
        return Py_NewRef(a->done);
    }
    if (!c->started)
        return PyErr_Format(PyExc_RuntimeError,
                            "Unexpected ASGI message %R sent, before 'http.response.start'.", type);
    if (PyUnicode_Compare(type, a->t_response_body) == 0) {
        v = PyDict_GetItemWithError(msg, a->k_body);
        if (v == NULL && PyErr_Occurred())
            return NULL;
        if (v != NULL && !PyObject_CheckBuffer(v))
            return PyErr_Format(PyExc_TypeError, "ASGI response body must be bytes, not %.50s",
                                Py_TYPE(v)->tp_name);
        c->pend_obj = v != NULL ? Py_NewRef(v) : PyBytes_FromStringAndSize(NULL, 0);
        v = PyDict_GetItemWithError(msg, a->k_more_body);
        if (v == NULL && PyErr_Occurred())
            return NULL;
        c->pend_more = v != NULL && PyObject_IsTrue(v) == 1;
        c->pend = SEND_BODY;
    } else if (PyUnicode_Compare(type, a->t_pathsend) == 0) {
        v = PyDict_GetItemWithError(msg, a->k_path_send);
        if (v == NULL || !PyUnicode_Check(v)) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "http.response.pathsend needs a str 'path'");
            return NULL;
        }
        c->pend_obj = Py_NewRef(v);
        c->pend = SEND_PATH;
    } else {
        return PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R sent.", type);
    }
    if (wake(c) < 0)
        return NULL;
    if (c->pend == SEND_NONE) {
        if (c->send_err != NULL) {
            pyw_err_restore(c->send_err);
            c->send_err = NULL;
            return NULL;
        }
        return Py_NewRef(a->done);
    }
    f = PyObject_CallNoArgs(a->create_future);
    if (f != NULL)
        c->send_fut = Py_NewRef(f);
    return f;
}

static PyObject *
call_receive(struct asgi_call *c, PyObject *unused)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *msg, *f;

    if (c->req == NULL) {
        msg = message_disconnect(a);
        f = msg != NULL ? future_done(a, msg) : NULL;
        Py_XDECREF(msg);
        return f;
    }
    if (c->recv_pend)
        return PyErr_Format(PyExc_RuntimeError, "ASGI receive() called while another is waiting");
    c->recv_pend = true;
    if (wake(c) < 0)
        return NULL;
    if (c->recv_msg != NULL) {
        msg = c->recv_msg;
        c->recv_msg = NULL;
        f = future_done(a, msg);
        Py_DECREF(msg);
        return f;
    }
    f = PyObject_CallNoArgs(a->create_future);
    if (f != NULL)
        c->recv_fut = Py_NewRef(f);
    return f;
}

/* The Task's done callback. */
static PyObject *
call_task_done(struct asgi_call *c, PyObject *task)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *r = PyObject_CallMethodNoArgs(task, a->s_cancelled);
    int cancelled = r != NULL ? PyObject_IsTrue(r) : 1;

    Py_XDECREF(r);
    PyErr_Clear();
    c->task_done = true;
    if (cancelled == 0) {
        r = PyObject_CallMethodNoArgs(task, a->s_exception);
        if (r != NULL && r != Py_None)
            Py_XSETREF(c->exc, Py_NewRef(r));
        Py_XDECREF(r);
        PyErr_Clear();
    }
    if (c->req == NULL && c->exc != NULL) {
        /* The response went out; the app failed afterwards (background work). */
        restore_exception(c->exc);
        Py_CLEAR(c->exc);
        pyw_log_exception(c->st, QLN_LOG_ERROR, "Exception in ASGI application");
    }
    Py_CLEAR(c->task);
    if (wake(c) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* The loop's reader callback while the connection greenlet waits for the client. */
static PyObject *
call_readable(struct asgi_call *c, PyObject *unused)
{
    if (wake(c) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void
call_dealloc(struct asgi_call *c)
{
    Py_XDECREF(c->gl_switch);
    Py_XDECREF(c->task);
    Py_XDECREF(c->headers);
    Py_XDECREF(c->pend_obj);
    Py_XDECREF(c->send_fut);
    Py_XDECREF(c->send_err);
    Py_XDECREF(c->recv_msg);
    Py_XDECREF(c->recv_fut);
    Py_XDECREF(c->exc);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyMethodDef call_methods[] = {
    {"send", (PyCFunction)call_send, METH_O, NULL},
    {"receive", (PyCFunction)call_receive, METH_NOARGS, NULL},
    {"_task_done", (PyCFunction)call_task_done, METH_O, NULL},
    {"_readable", (PyCFunction)call_readable, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject asgi_call_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.asgi.Call",
    .tp_basicsize = sizeof(struct asgi_call),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)call_dealloc,
    .tp_methods = call_methods,
};

/* ------------------------------------------------------------ handle() */

/*
 * Registers (ON) or removes the reader that wakes the connection greenlet
 * while it waits for the client and the app at once (body, disconnect).
 * It is on a dup of the socket: the socket's own fd carries the worker's
 * reader for the core's waits, which one loop cannot share. -1 with a
 * Python error.
 */
static int
watch(struct asgi_call *c, bool on)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *fd, *cb = NULL, *r = NULL;

    if (c->watching == on)
        return 0;
    if (c->watch_fd < 0) {
        c->watch_fd = fcntl(qln_req_fd(c->req), F_DUPFD_CLOEXEC, 0);
        if (c->watch_fd < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
    }
    fd = PyLong_FromLong(c->watch_fd);
    if (fd != NULL && on)
        cb = PyObject_GetAttrString((PyObject *)c, "_readable");
    if (fd != NULL && (cb != NULL || !on))
        r = on ? PyObject_CallFunctionObjArgs(a->add_reader, fd, cb, NULL)
               : PyObject_CallOneArg(a->remove_reader, fd);
    Py_XDECREF(cb);
    Py_XDECREF(fd);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    c->watching = on;
    return 0;
}

/* Starts the app's Task for SCOPE; 0 or -1 with a Python error. */
static int
start_task(struct asgi_call *c, PyObject *scope)
{
    struct pyw_state *st = c->st;
    struct pyw_asgi *a = &st->asgi;
    PyObject *recv = PyObject_GetAttrString((PyObject *)c, "receive");
    PyObject *send = PyObject_GetAttrString((PyObject *)c, "send");
    PyObject *coro = NULL, *inst, *cb = NULL, *r = NULL;

    if (recv != NULL && send != NULL) {
        if (st->iface == PYW_ASGI2) {
            inst = PyObject_CallOneArg(st->app, scope);
            coro = inst != NULL ? PyObject_CallFunctionObjArgs(inst, recv, send, NULL) : NULL;
            Py_XDECREF(inst);
        } else {
            coro = PyObject_CallFunctionObjArgs(st->app, scope, recv, send, NULL);
        }
    }
    if (coro != NULL)
        c->task = PyObject_CallOneArg(a->create_task, coro);
    if (c->task != NULL)
        cb = PyObject_GetAttrString((PyObject *)c, "_task_done");
    if (cb != NULL)
        r = PyObject_CallMethodOneArg(c->task, a->s_add_done_callback, cb);
    Py_XDECREF(r);
    Py_XDECREF(cb);
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(recv);
    return r != NULL ? 0 : -1;
}

/* Waits for the app until the response is complete or the Task ends. */
static void
run_call(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *r;

    for (;;) {
        if (c->pend != SEND_NONE) {
            do_send(c);
            continue;
        }
        if (c->recv_pend && c->recv_msg == NULL && do_receive(c) == 0)
            continue;
        if (c->complete || c->task_done || c->gone)
            return;
        if (c->recv_pend && !c->ambiguous && watch(c, true) < 0)
            PyErr_Clear();
        c->waiting = true;
        r = PyObject_CallNoArgs(a->hub_switch);
        c->waiting = false;
        if (c->watching && watch(c, false) < 0)
            PyErr_Clear();
        if (r == NULL) {
            /* Killed (GreenletExit) when the worker stops at once. */
            PyErr_Clear();
            c->stop = true;
            return;
        }
        Py_DECREF(r);
    }
}

/* After the response (or the end): log what the app did wrong; the core's return code. */
static int
conclude(struct asgi_call *c)
{
    struct qln_slice target = qln_req_target(c->req);
    bool sent = qln_resp_headers_sent(c->resp);

    if (c->stop)
        return QLN_ESTOP;
    if (c->complete)
        return 0;
    if (c->gone) {
        int e = c->io_error != 0 ? c->io_error : QLN_EPEERCLOSED;

        qln_log(QLN_LOG_DEBUG, "Client gone while processing request %.*s: %s", (int)target.len,
                target.p, qln_strerror(e));
        return e;
    }
    if (c->exc != NULL) {
        restore_exception(c->exc);
        Py_CLEAR(c->exc);
        pyw_log_exception(c->st, QLN_LOG_ERROR, "Exception in ASGI application");
    } else if (!c->started) {
        qln_log(QLN_LOG_ERROR, "ASGI callable returned without starting response (%.*s)",
                (int)target.len, target.p);
    } else {
        qln_log(QLN_LOG_ERROR, "ASGI callable returned without completing response (%.*s)",
                (int)target.len, target.p);
    }
    return sent ? -EIO : -EINVAL;
}

/*
 * The Task of a response that will not complete: cancelled at once when the
 * worker stops now, else once asgi_disconnect_grace_period has passed, so
 * the app can see http.disconnect and clean up first (gunicorn 26's rule).
 */
static void
cancel_task(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    int64_t grace = c->stop ? 0 : qln_cfg_int(c->st->ctx, "asgi_disconnect_grace_period");
    PyObject *cancel = PyObject_GetAttr(c->task, a->s_cancel), *r = NULL;

    if (cancel != NULL)
        r = grace > 0 ? PyObject_CallMethod(a->loop, "call_later", "LO", (long long)grace, cancel)
                      : PyObject_CallNoArgs(cancel);
    Py_XDECREF(r);
    Py_XDECREF(cancel);
    PyErr_Clear();
}

/* Cuts the call loose from the request: later sends are no-ops, receives disconnects. */
static void
detach(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;

    if (!c->complete)
        c->gone = true;
    if (c->recv_fut != NULL) {
        PyObject *msg = message_disconnect(a);

        future_finish(a, &c->recv_fut, msg != NULL ? msg : Py_None, NULL);
        Py_XDECREF(msg);
    }
    future_finish(a, &c->send_fut, Py_None, NULL);
    c->recv_pend = false;
    if (c->task != NULL && (c->stop || !c->complete))
        cancel_task(c);
    if (c->watch_fd >= 0) {
        close(c->watch_fd);
        c->watch_fd = -1;
    }
    c->req = NULL;
    c->resp = NULL;
    Py_CLEAR(c->gl_switch);
}

int
pyw_asgi_serve(struct pyw_state *st, struct qln_request *req, struct qln_response *resp)
{
    struct pyw_asgi *a = &st->asgi;
    struct asgi_call *c;
    PyObject *scope, *gl;
    int rc;

    if (a->loop == NULL) {
        qln_log(QLN_LOG_ERROR, "ASGI application without an event loop: run it with -k asyncio");
        return -EINVAL;
    }
    c = PyObject_New(struct asgi_call, &asgi_call_type);
    if (c == NULL) {
        pyw_log_exception(st, QLN_LOG_ERROR, "Error handling request");
        return -EINVAL;
    }
    memset((char *)c + sizeof(PyObject), 0, sizeof(*c) - sizeof(PyObject));
    c->st = st;
    c->watch_fd = -1;
    c->req = req;
    c->resp = resp;
    gl = PyObject_CallNoArgs(a->getcurrent);
    if (gl != NULL) {
        c->gl_switch = PyObject_GetAttr(gl, a->s_switch);
        Py_DECREF(gl);
    }
    scope = c->gl_switch != NULL ? scope_build(st, req) : NULL;
    if (scope == NULL || start_task(c, scope) < 0) {
        struct qln_slice target = qln_req_target(req);

        pyw_log_exception(st, QLN_LOG_ERROR, "Error handling request %.*s", (int)target.len,
                          target.p);
        Py_XDECREF(scope);
        detach(c);
        Py_DECREF(c);
        return -EINVAL;
    }
    Py_DECREF(scope);
    run_call(c);
    rc = conclude(c);
    detach(c);
    Py_DECREF(c);
    return rc;
}
