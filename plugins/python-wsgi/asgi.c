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
#include "wsframe.h"

/* How much request body one http.request message carries at most. */
#define ASGI_BODY_CHUNK (64 * 1024)
/* Response headers kept on the stack; more are allocated. */
#define ASGI_STACK_HEADERS 32
/* WebSocket messages queued for the app before the server stops reading. */
#define WS_INBOX_MAX 64
/* RFC 6455 §1.3: appended to Sec-WebSocket-Key before hashing. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* The plugin state the module's functions use: one per process. */
static struct pyw_state *asgi_st;

enum send_kind {
    SEND_NONE = 0,
    SEND_BODY,
    SEND_PATH,
    SEND_WS_ACCEPT, /* pend_obj: the accept message's headers (or None) */
    SEND_WS_FRAME,  /* pend_obj: a whole frame, head included */
    SEND_WS_CLOSE,  /* pend_obj: a close frame; the socket closes after it */
};

enum ws_state {
    WS_CONNECTING = 0, /* websocket.connect is delivered, no answer yet */
    WS_OPEN,           /* accepted: frames flow */
    WS_CLOSED,         /* a close frame went out, or the connection broke */
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
    PyObject *timer;     /* new: the body_timeout wake-up (a TimerHandle), or NULL */
    bool started;        /* http.response.start arrived */
    bool head_done;      /* the core has the head (qln_resp_start) */
    bool complete;       /* the last body message went out */
    bool ended;          /* the last body message was taken; it goes out on the next pass */
    bool task_done;
    bool gone;      /* the client went away (or a write failed): sends are no-ops */
    bool body_done; /* the last http.request message was delivered */
    bool ambiguous; /* bytes of a next request arrived: a disconnect cannot be seen */
    bool stop;      /* the worker stops now */
    int status;
    PyObject *headers; /* new: the start message's headers */
    enum send_kind pend;
    PyObject *pend_obj; /* new: the body (bytes-like) or the path */
    bool pend_more;
    PyObject *send_fut; /* new: the future a waiting send() returned */
    PyObject *send_err; /* new: the exception that future (or send()) gets */
    bool recv_pend;
    PyObject *recv_msg; /* new: a message ready for receive() */
    PyObject *recv_fut; /* new: the future a waiting receive() returned */
    PyObject *exc;      /* new: the Task's exception */
    int io_error;

    /* WebSocket (a websocket scope) */
    bool ws;
    enum ws_state ws_state;
    bool ws_ready;         /* the socket turned readable since the last read */
    bool going_away;       /* the worker stops: close with 1001 */
    PyObject *inbox;       /* new: list of messages for receive() */
    PyObject *subprotocol; /* new: websocket.accept's subprotocol, or NULL */
    uint8_t *rbuf;         /* bytes read and not yet parsed */
    size_t rlen, rcap;
    uint8_t *frag; /* the fragments of a message so far */
    size_t flen, fcap;
    unsigned frag_op;                    /* its opcode; 0: no message under way */
    int close_code;                      /* websocket.disconnect's code */
    struct asgi_call *ws_prev, *ws_next; /* the open WebSockets (going_away) */
};

/* The open WebSockets of this process, for a worker that stops (going_away()). */
static struct asgi_call *ws_open_list;

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
    Py_CLEAR(a->call_soon);
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
    a->call_soon = PyObject_GetAttrString(loop, "call_soon");
    a->add_reader = PyObject_GetAttrString(loop, "add_reader");
    a->remove_reader = PyObject_GetAttrString(loop, "remove_reader");
    if (a->getcurrent == NULL || a->hub_switch == NULL || a->create_task == NULL ||
        a->create_future == NULL || a->call_soon == NULL || a->add_reader == NULL ||
        a->remove_reader == NULL) {
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

static PyObject *mod_going_away(PyObject *self, PyObject *unused);

static PyMethodDef asgi_methods[] = {
    {"attach", mod_attach, METH_VARARGS, NULL},
    {"app", mod_app, METH_NOARGS, NULL},
    {"setting", mod_setting, METH_O, NULL},
    {"set_state", mod_set_state, METH_O, NULL},
    {"log", mod_log, METH_VARARGS, NULL},
    {"going_away", mod_going_away, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* qilin/asgi.py: the Python half (module qilin.asgi, over the C functions of qilin._asgi). */
static const char asgi_py[] = {
#include "plugins/python-wsgi/qilin/asgi.py.inc"
    0};

/* MODULE.NAME, a new reference, or NULL with a Python error. */
static PyObject *
import_attr(const char *module, const char *name)
{
    PyObject *m = PyImport_ImportModule(module), *v = NULL;

    if (m != NULL)
        v = PyObject_GetAttrString(m, name);
    Py_XDECREF(m);
    return v;
}

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
    a->websocket = intern("websocket");
    a->ws = intern("ws");
    a->wss = intern("wss");
    a->k_subprotocols = intern("subprotocols");
    a->k_subprotocol = intern("subprotocol");
    a->k_code = intern("code");
    a->k_reason = intern("reason");
    a->k_text = intern("text");
    a->k_bytes = intern("bytes");
    a->t_ws_connect = intern("websocket.connect");
    a->t_ws_receive = intern("websocket.receive");
    a->t_ws_disconnect = intern("websocket.disconnect");
    a->t_ws_accept = intern("websocket.accept");
    a->t_ws_send = intern("websocket.send");
    a->t_ws_close = intern("websocket.close");
    a->t_ws_http_start = intern("websocket.http.response.start");
    a->t_ws_http_body = intern("websocket.http.response.body");
    a->ws_extensions = Py_BuildValue("{s:{}}", "websocket.http.response");
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
        &a->state,
        &a->root_path,
        &a->asgi_version,
        &a->extensions,
        &a->http10,
        &a->http11,
        &a->http,
        &a->https,
        &a->k_type,
        &a->k_asgi,
        &a->k_http_version,
        &a->k_server,
        &a->k_client,
        &a->k_scheme,
        &a->k_method,
        &a->k_root_path,
        &a->k_path,
        &a->k_raw_path,
        &a->k_query_string,
        &a->k_headers,
        &a->k_state,
        &a->k_extensions,
        &a->k_body,
        &a->k_more_body,
        &a->k_status,
        &a->k_path_send,
        &a->t_http_request,
        &a->t_http_disconnect,
        &a->t_response_start,
        &a->t_response_body,
        &a->t_pathsend,
        &a->s_switch,
        &a->s_add_done_callback,
        &a->s_set_result,
        &a->s_cancel,
        &a->s_cancelled,
        &a->s_exception,
        &a->s_done,
        &a->websocket,
        &a->ws,
        &a->wss,
        &a->ws_extensions,
        &a->sha1,
        &a->b64,
        &a->k_subprotocols,
        &a->k_subprotocol,
        &a->k_code,
        &a->k_reason,
        &a->k_text,
        &a->k_bytes,
        &a->t_ws_connect,
        &a->t_ws_receive,
        &a->t_ws_disconnect,
        &a->t_ws_accept,
        &a->t_ws_send,
        &a->t_ws_close,
        &a->t_ws_http_start,
        &a->t_ws_http_body,
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

/*
 * The headers as [(lowercase name, value)], bytes each. A name with "_"
 * comes only as --header-map and --forwarder-headers allow (the core drops
 * or refuses the others): "X_Forwarded_For" would otherwise pass for
 * X-Forwarded-For in apps that turn names into environ-style keys
 * (Django's ASGI handler).
 */
static PyObject *
scope_headers(struct qln_request *req)
{
    size_t i, k = 0, n = qln_req_nheaders(req);
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
        PyList_SET_ITEM(list, (Py_ssize_t)k++, pair);
    }
    /* Shrink past the names left out (the unset slots are NULL). */
    if (list != NULL && k < n && PyList_SetSlice(list, (Py_ssize_t)k, (Py_ssize_t)n, NULL) < 0)
        Py_CLEAR(list);
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

/* The Sec-WebSocket-Protocol values, split at commas: a new list. */
static PyObject *
scope_subprotocols(struct qln_request *req)
{
    size_t i, n = qln_req_nheaders(req);
    const struct qln_header *h = qln_req_headers(req);
    PyObject *list = PyList_New(0);

    for (i = 0; list != NULL && i < n; i++) {
        const char *p = h[i].value.p, *end = p + h[i].value.len;

        if (h[i].name.len != 22 || strncasecmp(h[i].name.p, "sec-websocket-protocol", 22) != 0)
            continue;
        while (p < end) {
            const char *q = memchr(p, ',', (size_t)(end - p)), *e;
            PyObject *v;

            e = q != NULL ? q : end;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (e > p) {
                v = PyUnicode_DecodeLatin1(p, e - p, NULL);
                if (v == NULL || PyList_Append(list, v) < 0)
                    Py_CLEAR(list);
                Py_XDECREF(v);
                if (list == NULL)
                    break;
            }
            p = q != NULL ? q + 1 : end;
        }
    }
    return list;
}

static PyObject *
scope_build(struct pyw_state *st, struct qln_request *req, bool ws)
{
    struct pyw_asgi *a = &st->asgi;
    struct qln_slice path = qln_req_path(req);
    const char *scheme = qln_req_url_scheme(req);
    const char *raddr = qln_req_remote_addr(req);
    bool https = strcmp(scheme, "https") == 0;
    PyObject *scope = PyDict_New();

    if (path.len == 0)
        path = qln_req_target(req); /* OPTIONS * */
    if (scope == NULL || PyDict_SetItem(scope, a->k_type, ws ? a->websocket : a->http) < 0 ||
        PyDict_SetItem(scope, a->k_asgi, a->asgi_version) < 0 ||
        PyDict_SetItem(scope, a->k_http_version,
                       qln_req_version_minor(req) == 0 ? a->http10 : a->http11) < 0 ||
        put(scope, a->k_server, address(qln_req_server_name(req), qln_req_server_port(req))) < 0 ||
        put(scope, a->k_client,
            raddr[0] != '\0' ? address(raddr, qln_req_remote_port(req)) : Py_NewRef(Py_None)) < 0 ||
        PyDict_SetItem(scope, a->k_scheme,
                       ws ? (https ? a->wss : a->ws) : (https ? a->https : a->http)) < 0 ||
        put(scope, a->k_method, pyw_method_object(&st->env, qln_req_method(req))) < 0 ||
        PyDict_SetItem(scope, a->k_root_path, a->root_path) < 0 ||
        put(scope, a->k_path, scope_path(path)) < 0 ||
        put(scope, a->k_raw_path, bytes_of(path)) < 0 ||
        put(scope, a->k_query_string, bytes_of(qln_req_query(req))) < 0 ||
        put(scope, a->k_headers, scope_headers(req)) < 0 ||
        PyDict_SetItem(scope, a->k_extensions, ws ? a->ws_extensions : a->extensions) < 0 ||
        (ws && put(scope, a->k_subprotocols, scope_subprotocols(req)) < 0) ||
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

/* Writes V in decimal to OUT (at least 20 bytes, no NUL); returns the length. */
static size_t
decimal(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* Converts the start message's headers for the core; adds Content-Length when LENGTH >= 0. */
static int
start_head(struct asgi_call *c, int64_t length)
{
    struct qln_header stack[ASGI_STACK_HEADERS], *h = stack;
    PyObject *seq = PySequence_Fast(c->headers, "ASGI response headers must be a list");
    Py_ssize_t i, n;
    char status[3], lenbuf[24];
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
        h[n].value.len = decimal(lenbuf, (uint64_t)length);
        n++;
    }
    /* The code alone: the core adds its reason phrase. */
    status[0] = (char)('0' + c->status / 100);
    status[1] = (char)('0' + c->status / 10 % 10);
    status[2] = (char)('0' + c->status % 10);
    rc = qln_resp_start(c->resp, (struct qln_slice){status, 3}, h, (size_t)n);
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

/* The call's methods; handle() binds them with PyCFunction_New (no attribute lookup). */
enum call_method {
    CALL_SEND,
    CALL_RECEIVE,
    CALL_TASK_DONE,
    CALL_READABLE,
    CALL_WAKE,
};

static PyObject *bound(struct asgi_call *c, enum call_method m);

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

/*
 * Wakes the connection greenlet from the loop's next pass rather than now.
 * Answers finished in one pass then go out together in the next, so a
 * client that sleeps between them (wrk, nginx's upstream side) is woken
 * once per pass, not once per answer: on loopback the wake-up is the
 * writer's cost, and this is most of what uvloop's own write queue saves
 * uvicorn. -1 with a Python error.
 */
static int
wake_soon(struct asgi_call *c)
{
    PyObject *cb = bound(c, CALL_WAKE), *r;

    r = cb != NULL ? PyObject_CallOneArg(c->st->asgi.call_soon, cb) : NULL;
    Py_XDECREF(cb);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* The loop's callback that wake_soon() scheduled. */
static PyObject *
call_wake(struct asgi_call *c, PyObject *unused)
{
    if (wake(c) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------ WebSocket */

static int watch(struct asgi_call *c, bool on);

/* True when P[0, LEN) contains WORD (lowercase), ignoring case. */
static bool
memmem_ci(const char *p, size_t len, const char *word)
{
    size_t i, w = strlen(word);

    for (i = 0; i + w <= len; i++) {
        if (strncasecmp(p + i, word, w) == 0)
            return true;
    }
    return false;
}

static PyObject *
message_ws(struct pyw_asgi *a, PyObject *type, PyObject *key, PyObject *value)
{
    PyObject *m = PyDict_New();

    if (m == NULL || PyDict_SetItem(m, a->k_type, type) < 0 ||
        (key != NULL && PyDict_SetItem(m, key, value) < 0)) {
        Py_XDECREF(m);
        return NULL;
    }
    return m;
}

static PyObject *
message_ws_disconnect(struct pyw_asgi *a, int code)
{
    PyObject *v = PyLong_FromLong(code),
             *m = v != NULL ? message_ws(a, a->t_ws_disconnect, a->k_code, v) : NULL;

    Py_XDECREF(v);
    return m;
}

/* Queues MSG (new; NULL: a Python error, dropped) for receive(), or hands it to a waiting one. */
static void
ws_push(struct asgi_call *c, PyObject *msg)
{
    if (msg == NULL) {
        PyErr_Clear();
        return;
    }
    if (c->recv_fut != NULL) {
        c->recv_pend = false;
        future_finish(&c->st->asgi, &c->recv_fut, msg, NULL);
    } else if (PyList_Append(c->inbox, msg) < 0) {
        PyErr_Clear();
    }
    Py_DECREF(msg);
}

/* Writes BUF through the upgraded connection; a failure ends the WebSocket (1006). */
static void
ws_write(struct asgi_call *c, const void *buf, size_t len)
{
    int rc;

    if (c->ws_state == WS_CLOSED && c->gone)
        return;
    rc = qln_resp_upgraded_write(c->resp, buf, len);
    if (rc < 0) {
        c->io_error = rc;
        c->gone = true;
        if (c->ws_state != WS_CLOSED)
            ws_push(c, message_ws_disconnect(&c->st->asgi, WS_ABNORMAL));
        c->ws_state = WS_CLOSED;
    }
}

/* Sends a control frame OPCODE with LEN (at most 125) bytes of P. */
static void
ws_control(struct asgi_call *c, unsigned opcode, const uint8_t *p, size_t len)
{
    uint8_t frame[2 + 125];
    size_t h = ws_frame_head(frame, opcode, len);

    if (len > 0)
        memcpy(frame + h, p, len);
    ws_write(c, frame, h + len);
}

/*
 * Ends the WebSocket from our side: a close frame with CODE, and (unless the
 * app asked for the close) websocket.disconnect with it for the app.
 */
static void
ws_close(struct asgi_call *c, int code, bool tell_app)
{
    uint8_t b[2] = {(uint8_t)(code >> 8), (uint8_t)code};

    if (c->ws_state == WS_CLOSED)
        return;
    ws_control(c, WS_CLOSE, b, 2);
    if (tell_app && c->ws_state != WS_CLOSED)
        ws_push(c, message_ws_disconnect(&c->st->asgi, code));
    c->close_code = code;
    c->ws_state = WS_CLOSED;
}

/* The client broke the protocol (or sent what cannot be taken): close with CODE. */
static void
ws_fail(struct asgi_call *c, int code)
{
    ws_close(c, code, true);
    c->gone = true;
}

/* A whole message of OPCODE from P[0, LEN) for the app; false after ws_fail. */
static bool
ws_deliver(struct asgi_call *c, unsigned opcode, const uint8_t *p, size_t len)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *v, *m;

    if (opcode == WS_TEXT) {
        v = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)len, "strict");
        if (v == NULL) {
            PyErr_Clear();
            ws_fail(c, WS_INVALID_DATA);
            return false;
        }
    } else {
        v = PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)len);
    }
    m = v != NULL ? message_ws(a, a->t_ws_receive, opcode == WS_TEXT ? a->k_text : a->k_bytes, v)
                  : NULL;
    Py_XDECREF(v);
    ws_push(c, m);
    return true;
}

/* The client's close frame (payload P[0, LEN)): answer it and tell the app. */
static void
ws_closed_by_client(struct asgi_call *c, const uint8_t *p, size_t len)
{
    unsigned code = WS_NO_STATUS;
    PyObject *reason;

    if (len == 1) {
        ws_fail(c, WS_PROTOCOL_ERROR);
        return;
    }
    if (len >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!ws_close_code_valid(code)) {
            ws_fail(c, WS_PROTOCOL_ERROR);
            return;
        }
        reason = PyUnicode_DecodeUTF8((const char *)p + 2, (Py_ssize_t)(len - 2), "strict");
        if (reason == NULL) {
            PyErr_Clear();
            ws_fail(c, WS_INVALID_DATA);
            return;
        }
        Py_DECREF(reason);
    }
    /* Echo the code (RFC 6455 §5.5.1); an empty close is answered with an empty one. */
    ws_control(c, WS_CLOSE, p, len >= 2 ? 2 : 0);
    ws_push(c, message_ws_disconnect(&c->st->asgi, (int)code));
    c->close_code = (int)code;
    c->ws_state = WS_CLOSED;
    c->gone = true;
}

/*
 * Handles the frame F whose payload P is unmasked. Returns false once the
 * WebSocket is closed.
 */
static bool
ws_frame(struct asgi_call *c, const struct ws_frame *f, uint8_t *p, uint64_t max)
{
    size_t len = (size_t)f->len;

    switch (f->opcode) {
    case WS_PING:
        ws_control(c, WS_PONG, p, len);
        return c->ws_state != WS_CLOSED;
    case WS_PONG:
        return true;
    case WS_CLOSE:
        ws_closed_by_client(c, p, len);
        return false;
    case WS_CONT:
        if (c->frag_op == 0) {
            ws_fail(c, WS_PROTOCOL_ERROR);
            return false;
        }
        break;
    default:
        if (c->frag_op != 0) {
            ws_fail(c, WS_PROTOCOL_ERROR); /* a new message inside a fragmented one */
            return false;
        }
        if (f->fin)
            return ws_deliver(c, f->opcode, p, len);
        c->frag_op = f->opcode;
        c->flen = 0;
        break;
    }
    if (c->flen + len > max) {
        ws_fail(c, WS_TOO_BIG);
        return false;
    }
    if (c->flen + len > c->fcap) {
        size_t cap = (c->flen + len) * 2;
        uint8_t *nb = PyMem_Realloc(c->frag, cap);

        if (nb == NULL) {
            ws_fail(c, WS_TOO_BIG);
            return false;
        }
        c->frag = nb;
        c->fcap = cap;
    }
    if (len > 0)
        memcpy(c->frag + c->flen, p, len);
    c->flen += len;
    if (f->fin) {
        unsigned op = c->frag_op;

        c->frag_op = 0;
        return ws_deliver(c, op, c->frag, c->flen);
    }
    return true;
}

/* Reads what the client sent (without waiting) and turns its frames into messages. */
static void
ws_read(struct asgi_call *c)
{
    uint64_t max = (uint64_t)qln_cfg_int(c->st->ctx, "ws_max_size");
    struct ws_frame f;
    size_t off = 0, total;
    ssize_t n;
    int rc, why;

    if (c->rcap - c->rlen < 16384) {
        size_t cap = c->rcap < 65536 ? 65536 : c->rcap * 2;
        uint8_t *nb = PyMem_Realloc(c->rbuf, cap);

        if (nb == NULL) {
            ws_fail(c, WS_TOO_BIG);
            return;
        }
        c->rbuf = nb;
        c->rcap = cap;
    }
    n = qln_req_upgraded_read(c->req, c->rbuf + c->rlen, c->rcap - c->rlen, true);
    if (n == -EAGAIN) {
        c->ws_ready = false;
        return;
    }
    if (n <= 0) {
        /* The client went away without a close frame. */
        c->io_error = n < 0 ? (int)n : 0;
        c->gone = true;
        ws_push(c, message_ws_disconnect(&c->st->asgi, WS_ABNORMAL));
        c->close_code = WS_ABNORMAL;
        c->ws_state = WS_CLOSED;
        return;
    }
    c->rlen += (size_t)n;
    while (c->ws_state == WS_OPEN) {
        rc = ws_frame_parse(c->rbuf + off, c->rlen - off, max - (c->frag_op ? c->flen : 0), &f,
                            &why);
        if (rc < 0) {
            ws_fail(c, why);
            return;
        }
        if (rc == 0)
            break;
        total = f.head_len + (size_t)f.len;
        if (c->rlen - off < total) {
            if (total > c->rcap) {
                uint8_t *nb = PyMem_Realloc(c->rbuf, total);

                if (nb == NULL) {
                    ws_fail(c, WS_TOO_BIG);
                    return;
                }
                c->rbuf = nb;
                c->rcap = total;
            }
            break;
        }
        ws_unmask(c->rbuf + off + f.head_len, (size_t)f.len, f.mask, 0);
        if (!ws_frame(c, &f, c->rbuf + off + f.head_len, max))
            return;
        off += total;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
}

/* websocket.accept: the 101 answer, with Sec-WebSocket-Accept from the client's key. */
static int
ws_accept(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    struct qln_header h[ASGI_STACK_HEADERS + 2];
    size_t i, n = qln_req_nheaders(c->req), k = 0;
    const struct qln_header *rh = qln_req_headers(c->req);
    PyObject *keyed = NULL, *hash = NULL, *digest = NULL, *b64 = NULL, *seq = NULL;
    int rc = -EINVAL;

    for (i = 0; i < n; i++) {
        if (rh[i].name.len == 17 && strncasecmp(rh[i].name.p, "sec-websocket-key", 17) == 0) {
            keyed = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(rh[i].value.len + 36));
            if (keyed != NULL) {
                memcpy(PyBytes_AS_STRING(keyed), rh[i].value.p, rh[i].value.len);
                memcpy(PyBytes_AS_STRING(keyed) + rh[i].value.len, WS_GUID, 36);
            }
            break;
        }
    }
    /* hashlib loads OpenSSL: only once a WebSocket is accepted, not in every
       interpreter (a master that only read gunicorn.conf.py, say). */
    if (keyed != NULL && a->sha1 == NULL) {
        a->sha1 = import_attr("hashlib", "sha1");
        a->b64 = a->sha1 != NULL ? import_attr("base64", "b64encode") : NULL;
        if (a->b64 == NULL)
            Py_CLEAR(keyed);
    }
    if (keyed != NULL)
        hash = PyObject_CallOneArg(a->sha1, keyed);
    if (hash != NULL)
        digest = PyObject_CallMethod(hash, "digest", NULL);
    if (digest != NULL)
        b64 = PyObject_CallOneArg(a->b64, digest);
    if (b64 != NULL && PyBytes_Check(b64)) {
        h[k].name = (struct qln_slice){"Sec-WebSocket-Accept", 20};
        h[k++].value = (struct qln_slice){PyBytes_AS_STRING(b64), (size_t)PyBytes_GET_SIZE(b64)};
        if (c->subprotocol != NULL) {
            Py_ssize_t len;
            const char *p = PyUnicode_AsUTF8AndSize(c->subprotocol, &len);

            if (p != NULL) {
                h[k].name = (struct qln_slice){"Sec-WebSocket-Protocol", 22};
                h[k++].value = (struct qln_slice){p, (size_t)len};
            }
        }
        seq = c->pend_obj != Py_None
                  ? PySequence_Fast(c->pend_obj, "websocket.accept headers must be a list")
                  : NULL;
        for (i = 0;
             seq != NULL && i < (size_t)PySequence_Fast_GET_SIZE(seq) && k < ASGI_STACK_HEADERS + 2;
             i++) {
            PyObject *pair = PySequence_Fast_GET_ITEM(seq, (Py_ssize_t)i), *nm, *v;

            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2)
                continue;
            nm = PyTuple_GET_ITEM(pair, 0);
            v = PyTuple_GET_ITEM(pair, 1);
            if (!PyBytes_Check(nm) || !PyBytes_Check(v))
                continue;
            h[k].name = (struct qln_slice){PyBytes_AS_STRING(nm), (size_t)PyBytes_GET_SIZE(nm)};
            h[k++].value = (struct qln_slice){PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v)};
        }
        PyErr_Clear();
        rc = qln_resp_upgrade(c->resp, "websocket", h, k);
        if (rc == QLN_EBADHEADER)
            PyErr_Format(PyExc_RuntimeError, "Invalid ASGI websocket.accept: %s",
                         qln_resp_refusal(c->resp));
        else if (rc == -EINVAL)
            PyErr_SetString(PyExc_RuntimeError, "this request cannot switch to WebSocket");
    }
    if (rc == 0) {
        c->started = c->head_done = true;
        c->ws_state = WS_OPEN;
        c->ws_ready = true; /* frames may have come with the request */
    } else if (!PyErr_Occurred()) {
        if (rc < 0 && rc != -EINVAL) {
            c->io_error = rc;
            c->gone = true;
            c->ws_state = WS_CLOSED;
            rc = 0;
        } else {
            PyErr_SetString(PyExc_RuntimeError, "the WebSocket handshake could not be answered");
        }
    }
    Py_XDECREF(seq);
    Py_XDECREF(b64);
    Py_XDECREF(digest);
    Py_XDECREF(hash);
    Py_XDECREF(keyed);
    return rc;
}

/* Does the pending WebSocket send (on the connection greenlet). */
static void
ws_do_send(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    enum send_kind kind = c->pend;
    int rc = 0;

    if (kind == SEND_BODY || kind == SEND_PATH) {
        do_send(c); /* a denial answer (websocket.http.response) or websocket.close's 403 */
        return;
    }
    if (kind == SEND_WS_ACCEPT) {
        rc = ws_accept(c);
    } else if (c->ws_state == WS_OPEN) {
        ws_write(c, PyBytes_AS_STRING(c->pend_obj), (size_t)PyBytes_GET_SIZE(c->pend_obj));
        if (kind == SEND_WS_CLOSE) {
            c->ws_state = WS_CLOSED;
            c->complete = true;
        }
    }
    c->pend = SEND_NONE;
    Py_CLEAR(c->pend_obj);
    if (rc < 0 && PyErr_Occurred())
        Py_XSETREF(c->send_err, pyw_err_fetch());
    if (c->send_fut != NULL) {
        future_finish(a, &c->send_fut, Py_None, c->send_err);
        Py_CLEAR(c->send_err);
    }
}

/* A whole frame for websocket.send or websocket.close: new bytes, or NULL with an error. */
static PyObject *
ws_make_frame(unsigned opcode, const char *p, size_t len, const uint8_t *prefix, size_t plen)
{
    uint8_t head[10];
    size_t h = ws_frame_head(head, opcode, len + plen);
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(h + plen + len));

    if (b != NULL) {
        memcpy(PyBytes_AS_STRING(b), head, h);
        if (plen > 0)
            memcpy(PyBytes_AS_STRING(b) + h, prefix, plen);
        if (len > 0)
            memcpy(PyBytes_AS_STRING(b) + h + plen, p, len);
    }
    return b;
}

/*
 * send() of a websocket scope (on the hub): records the message as the
 * pending send. Returns 0 (pending), 1 (nothing to send) or -1 with an error.
 */
static int
ws_send_message(struct asgi_call *c, PyObject *type, PyObject *msg)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *v;
    Py_ssize_t len;
    const char *p;

    if (PyUnicode_Compare(type, a->t_ws_accept) == 0) {
        if (c->ws_state != WS_CONNECTING || c->started) {
            PyErr_Format(PyExc_RuntimeError,
                         "Unexpected ASGI message %R sent: the handshake"
                         " was already answered",
                         type);
            return -1;
        }
        v = PyDict_GetItemWithError(msg, a->k_subprotocol);
        if (v != NULL && v != Py_None && !PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "websocket.accept's subprotocol must be a str");
            return -1;
        }
        Py_XSETREF(c->subprotocol, v != NULL && v != Py_None ? Py_NewRef(v) : NULL);
        v = PyDict_GetItemWithError(msg, a->k_headers);
        if (PyErr_Occurred())
            return -1;
        c->pend_obj = Py_NewRef(v != NULL ? v : Py_None);
        c->pend = SEND_WS_ACCEPT;
        return 0;
    }
    if (PyUnicode_Compare(type, a->t_ws_send) == 0) {
        if (c->ws_state == WS_CONNECTING) {
            PyErr_Format(PyExc_RuntimeError,
                         "Unexpected ASGI message %R sent before"
                         " 'websocket.accept'",
                         type);
            return -1;
        }
        if (c->ws_state == WS_CLOSED)
            return 1;
        v = PyDict_GetItemWithError(msg, a->k_bytes);
        if (v != NULL && v != Py_None) {
            if (!PyBytes_Check(v)) {
                PyErr_SetString(PyExc_TypeError, "websocket.send's bytes must be bytes");
                return -1;
            }
            c->pend_obj = ws_make_frame(WS_BINARY, PyBytes_AS_STRING(v),
                                        (size_t)PyBytes_GET_SIZE(v), NULL, 0);
        } else {
            v = PyDict_GetItemWithError(msg, a->k_text);
            if (v == NULL || !PyUnicode_Check(v)) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "websocket.send needs 'bytes' or 'text'");
                return -1;
            }
            p = PyUnicode_AsUTF8AndSize(v, &len);
            c->pend_obj = p != NULL ? ws_make_frame(WS_TEXT, p, (size_t)len, NULL, 0) : NULL;
        }
        if (c->pend_obj == NULL)
            return -1;
        c->pend = SEND_WS_FRAME;
        return 0;
    }
    if (PyUnicode_Compare(type, a->t_ws_close) == 0) {
        long code = 1000;
        uint8_t cb[2];

        v = PyDict_GetItemWithError(msg, a->k_code);
        if (v != NULL && v != Py_None)
            code = PyLong_AsLong(v);
        if (PyErr_Occurred())
            return -1;
        if (c->ws_state == WS_CLOSED)
            return 1;
        if (c->ws_state == WS_CONNECTING) {
            /* Closing before the handshake is a refusal: 403 (the ASGI spec). */
            c->status = 403;
            Py_XSETREF(c->headers, PyTuple_New(0));
            c->started = true;
            c->pend_obj = PyBytes_FromStringAndSize(NULL, 0);
            c->pend_more = false;
            c->pend = SEND_BODY;
            return c->pend_obj != NULL ? 0 : -1;
        }
        v = PyDict_GetItemWithError(msg, a->k_reason);
        p = v != NULL && v != Py_None ? PyUnicode_AsUTF8AndSize(v, &len) : "";
        if (p == NULL)
            return -1;
        if (v == NULL || v == Py_None)
            len = 0;
        if (len > 123)
            len = 123; /* a control frame carries at most 125 bytes */
        cb[0] = (uint8_t)(code >> 8);
        cb[1] = (uint8_t)code;
        c->close_code = (int)code;
        c->pend_obj = ws_make_frame(WS_CLOSE, p, (size_t)len, cb, 2);
        if (c->pend_obj == NULL)
            return -1;
        c->pend = SEND_WS_CLOSE;
        return 0;
    }
    PyErr_Format(PyExc_RuntimeError, "Unexpected ASGI message %R sent.", type);
    return -1;
}

/* Waits for the app and the client until the WebSocket is closed or the Task ends. */
static void
run_ws(struct asgi_call *c)
{
    struct pyw_asgi *a = &c->st->asgi;
    PyObject *r;

    for (;;) {
        if (c->pend != SEND_NONE) {
            ws_do_send(c);
            continue;
        }
        if (c->ws_state == WS_OPEN && c->ws_ready && PyList_GET_SIZE(c->inbox) < WS_INBOX_MAX) {
            ws_read(c);
            continue;
        }
        if (c->ws_state == WS_OPEN && c->going_away) {
            ws_close(c, WS_GOING_AWAY, true);
            continue;
        }
        if (c->ws_state == WS_OPEN && c->task_done) {
            ws_close(c, c->exc != NULL ? WS_INTERNAL_ERROR : WS_NORMAL, false);
            c->complete = true;
            continue;
        }
        if (c->ws_state == WS_CLOSED || c->complete || c->gone || c->task_done)
            return;
        if (c->ws_state == WS_OPEN && PyList_GET_SIZE(c->inbox) < WS_INBOX_MAX &&
            watch(c, true) < 0)
            PyErr_Clear();
        c->waiting = true;
        r = PyObject_CallNoArgs(a->hub_switch);
        c->waiting = false;
        if (r == NULL) {
            PyErr_Clear();
            c->stop = true;
            return;
        }
        Py_DECREF(r);
    }
}

/* going_away(): the worker stops; every open WebSocket closes with 1001. */
static PyObject *
mod_going_away(PyObject *self, PyObject *unused)
{
    struct asgi_call *c, *next;

    for (c = ws_open_list; c != NULL; c = next) {
        next = c->ws_next;
        c->going_away = true;
        Py_INCREF(c);
        if (wake(c) < 0)
            PyErr_Clear();
        Py_DECREF(c);
    }
    Py_RETURN_NONE;
}

static void
ws_list_add(struct asgi_call *c)
{
    c->ws_next = ws_open_list;
    if (ws_open_list != NULL)
        ws_open_list->ws_prev = c;
    ws_open_list = c;
}

static void
ws_list_remove(struct asgi_call *c)
{
    if (c->ws_prev != NULL)
        c->ws_prev->ws_next = c->ws_next;
    else if (ws_open_list == c)
        ws_open_list = c->ws_next;
    if (c->ws_next != NULL)
        c->ws_next->ws_prev = c->ws_prev;
    c->ws_prev = c->ws_next = NULL;
}

/* True when REQ asks for a WebSocket (RFC 6455 §4.1): GET, Upgrade: websocket, Connection: upgrade.
 */
static bool
is_websocket(struct qln_request *req)
{
    size_t i, n = qln_req_nheaders(req);
    const struct qln_header *h = qln_req_headers(req);
    struct qln_slice m = qln_req_method(req);
    bool upgrade = false, connection = false;

    if (m.len != 3 || memcmp(m.p, "GET", 3) != 0 || qln_req_version_minor(req) < 1)
        return false;
    for (i = 0; i < n; i++) {
        if (h[i].name.len == 7 && strncasecmp(h[i].name.p, "upgrade", 7) == 0)
            upgrade =
                upgrade || (h[i].value.len == 9 && strncasecmp(h[i].value.p, "websocket", 9) == 0);
        else if (h[i].name.len == 10 && strncasecmp(h[i].name.p, "connection", 10) == 0)
            connection = connection || memmem_ci(h[i].value.p, h[i].value.len, "upgrade");
    }
    return upgrade && connection;
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
    if (c->req == NULL || c->complete || c->ended)
        return PyErr_Format(PyExc_RuntimeError,
                            "Unexpected ASGI message %R sent, after response already completed.",
                            type);
    if (c->pend != SEND_NONE)
        return PyErr_Format(PyExc_RuntimeError,
                            "ASGI message %R sent while the previous send() is not done", type);
    if (c->ws) {
        /* A denial answer (websocket.http.response.*) takes HTTP's way. */
        if (PyUnicode_Compare(type, a->t_ws_http_start) == 0 && c->ws_state == WS_CONNECTING)
            type = a->t_response_start;
        else if (PyUnicode_Compare(type, a->t_ws_http_body) == 0 && c->started &&
                 c->ws_state == WS_CONNECTING)
            type = a->t_response_body;
        else
            switch (ws_send_message(c, type, msg)) {
            case -1:
                return NULL;
            case 1:
                return Py_NewRef(a->done);
            default:
                goto queued;
            }
    }
    if (PyUnicode_Compare(type, a->t_response_start) == 0) {
        if (c->started)
            return PyErr_Format(PyExc_RuntimeError,
                                "Unexpected ASGI message %R sent, after "
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
queued:
    if (c->pend == SEND_BODY && !c->pend_more && c->waiting) {
        /* The last body: the app goes on at once, and the connection
           greenlet writes it on the loop's next pass, with the other
           connections' answers of this pass. */
        c->ended = true;
        return wake_soon(c) < 0 ? NULL : Py_NewRef(a->done);
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

    if (c->ws && c->inbox != NULL && PyList_GET_SIZE(c->inbox) > 0) {
        msg = Py_NewRef(PyList_GET_ITEM(c->inbox, 0));
        if (PySequence_DelItem(c->inbox, 0) < 0) {
            Py_DECREF(msg);
            return NULL;
        }
        /* Reading stopped while the inbox was full: it may go on now. */
        if (PyList_GET_SIZE(c->inbox) == WS_INBOX_MAX - 1 && wake(c) < 0)
            PyErr_Clear();
        f = future_done(a, msg);
        Py_DECREF(msg);
        return f;
    }
    if (c->req == NULL || (c->ws && c->ws_state == WS_CLOSED)) {
        msg = c->ws ? message_ws_disconnect(a, c->close_code) : message_disconnect(a);
        f = msg != NULL ? future_done(a, msg) : NULL;
        Py_XDECREF(msg);
        return f;
    }
    if (c->recv_pend)
        return PyErr_Format(PyExc_RuntimeError, "ASGI receive() called while another is waiting");
    if (c->ws) {
        /* Messages come as the connection greenlet reads them: wait for one. */
        f = PyObject_CallNoArgs(a->create_future);
        if (f != NULL) {
            c->recv_pend = true;
            c->recv_fut = Py_NewRef(f);
        }
        return f;
    }
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
        if (pyw_exit_request(c->st, "(after its response)", 20) == 0)
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
    c->ws_ready = true;
    if (c->waiting) {
        if (wake(c) < 0)
            return NULL;
    } else if (c->watching && c->req != NULL && watch(c, false) < 0) {
        /* Busy elsewhere (a write): off the loop until the next wait, or the
           level-triggered loop would call this on every pass. */
        return NULL;
    }
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
    Py_XDECREF(c->inbox);
    Py_XDECREF(c->timer);
    Py_XDECREF(c->subprotocol);
    PyMem_Free(c->rbuf);
    PyMem_Free(c->frag);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyMethodDef call_methods[] = {
    [CALL_SEND] = {"send", (PyCFunction)call_send, METH_O, NULL},
    [CALL_RECEIVE] = {"receive", (PyCFunction)call_receive, METH_NOARGS, NULL},
    [CALL_TASK_DONE] = {"_task_done", (PyCFunction)call_task_done, METH_O, NULL},
    [CALL_READABLE] = {"_readable", (PyCFunction)call_readable, METH_NOARGS, NULL},
    [CALL_WAKE] = {"_wake", (PyCFunction)call_wake, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* C's method M bound to C: a new reference, or NULL with a Python error. */
static PyObject *
bound(struct asgi_call *c, enum call_method m)
{
    return PyCFunction_New(&call_methods[m], (PyObject *)c);
}

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
        cb = bound(c, CALL_READABLE);
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
    PyObject *recv = bound(c, CALL_RECEIVE);
    PyObject *send = bound(c, CALL_SEND);
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
        cb = bound(c, CALL_TASK_DONE);
    if (cb != NULL)
        r = PyObject_CallMethodOneArg(c->task, a->s_add_done_callback, cb);
    Py_XDECREF(r);
    Py_XDECREF(cb);
    Py_XDECREF(coro);
    Py_XDECREF(send);
    Py_XDECREF(recv);
    return r != NULL ? 0 : -1;
}

/* Arms C's timer to wake it once the body_timeout has passed (none: nothing). */
static int
timer_arm(struct asgi_call *c)
{
    int64_t ms = qln_req_body_timeout_ms(c->req);
    PyObject *cb;

    if (ms <= 0 || c->timer != NULL)
        return 0;
    cb = bound(c, CALL_READABLE);
    if (cb == NULL)
        return -1;
    c->timer =
        PyObject_CallMethod(c->st->asgi.loop, "call_later", "dO", (double)ms / 1000.0 + 0.001, cb);
    Py_DECREF(cb);
    return c->timer != NULL ? 0 : -1;
}

static void
timer_cancel(struct asgi_call *c)
{
    PyObject *r;

    if (c->timer == NULL)
        return;
    r = PyObject_CallMethodNoArgs(c->timer, c->st->asgi.s_cancel);
    Py_XDECREF(r);
    PyErr_Clear();
    Py_CLEAR(c->timer);
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
        /* Waiting for body bytes: wake up when body_timeout would pass, so
           qln_req_read_nowait can say so. */
        if (c->recv_pend && !c->body_done && timer_arm(c) < 0)
            PyErr_Clear();
        c->waiting = true;
        r = PyObject_CallNoArgs(a->hub_switch);
        c->waiting = false;
        if (c->watching && watch(c, false) < 0)
            PyErr_Clear();
        timer_cancel(c);
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
    if (c->exc == NULL && c->send_err != NULL) {
        /* A last body that failed after send() had returned (wake_soon). */
        c->exc = c->send_err;
        c->send_err = NULL;
    }
    if (c->complete || (c->ws && c->ws_state != WS_CONNECTING))
        return 0;
    if (c->gone) {
        int e = c->io_error != 0 ? c->io_error : QLN_EPEERCLOSED;

        qln_log(QLN_LOG_DEBUG, "Client gone while processing request %.*s: %s", (int)target.len,
                target.p, qln_strerror(e));
        return e;
    }
    if (c->exc != NULL) {
        int rc;

        restore_exception(c->exc);
        Py_CLEAR(c->exc);
        /* SystemExit or KeyboardInterrupt ends the worker, as under WSGI. */
        rc = pyw_exit_request(c->st, target.p, target.len);
        if (rc != 0)
            return rc;
        pyw_log_exception(c->st, QLN_LOG_ERROR, "Exception in ASGI application");
    } else if (!c->started && c->ws) {
        qln_log(QLN_LOG_ERROR, "ASGI callable returned without sending handshake (%.*s)",
                (int)target.len, target.p);
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

    if (c->ws) {
        ws_list_remove(c);
        if (c->ws_state != WS_CLOSED && c->close_code == 0)
            c->close_code = WS_ABNORMAL;
        c->ws_state = WS_CLOSED;
    }
    if (!c->complete)
        c->gone = true;
    if (c->recv_fut != NULL) {
        PyObject *msg = c->ws ? message_ws_disconnect(a, c->close_code) : message_disconnect(a);

        future_finish(a, &c->recv_fut, msg != NULL ? msg : Py_None, NULL);
        Py_XDECREF(msg);
    }
    future_finish(a, &c->send_fut, Py_None, NULL);
    c->recv_pend = false;
    if (c->task != NULL && (c->stop || !c->complete))
        cancel_task(c);
    if (c->watching && watch(c, false) < 0)
        PyErr_Clear();
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
    c->ws = is_websocket(req);
    if (c->ws) {
        c->inbox = PyList_New(0);
        ws_push(c, c->inbox != NULL ? message_ws(a, a->t_ws_connect, NULL, NULL) : NULL);
        ws_list_add(c);
    }
    scope =
        c->gl_switch != NULL && (!c->ws || c->inbox != NULL) ? scope_build(st, req, c->ws) : NULL;
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
    if (c->ws)
        run_ws(c);
    else
        run_call(c);
    rc = conclude(c);
    detach(c);
    Py_DECREF(c);
    return rc;
}
