/*
 * The response side of PEP 3333: start_response (status and header checks,
 * exc_info), the write() callable it returns, and sending the iterable the
 * app returned, whose close() is always called. Workers, under the GIL.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <strings.h>

#include <qilin/plugin.h>

#include "py.h"

#define HEADERS_ON_STACK 32

/* write(): a separate object so that start_response and it form no cycle. */
struct write_object {
    PyObject ob_base;       /* PyObject_HEAD */
    struct pyw_request *rq; /* borrowed; NULL outside a request */
};

struct sr_object {
    PyObject ob_base;           /* PyObject_HEAD */
    vectorcallfunc vectorcall;  /* sr_vectorcall: called without an args tuple */
    struct pyw_request *rq;     /* borrowed; NULL outside a request */
    struct write_object *write; /* new */
};

static PyObject *sr_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames);

PyObject *
pyw_start_response_new(void)
{
    struct sr_object *sr =
        (struct sr_object *)pyw_start_response_type.tp_alloc(&pyw_start_response_type, 0);

    if (sr == NULL)
        return NULL;
    sr->vectorcall = sr_vectorcall;
    sr->write = (struct write_object *)pyw_write_type.tp_alloc(&pyw_write_type, 0);
    if (sr->write == NULL)
        Py_CLEAR(sr);
    return (PyObject *)sr;
}

bool
pyw_start_response_unshared(PyObject *obj)
{
    struct sr_object *sr = (struct sr_object *)obj;

    return Py_REFCNT(obj) == 1 && Py_REFCNT(sr->write) == 1;
}

void
pyw_start_response_bind(PyObject *obj, struct pyw_request *rq)
{
    struct sr_object *sr = (struct sr_object *)obj;

    sr->rq = rq;
    sr->write->rq = rq;
}

static void
sr_dealloc(PyObject *obj)
{
    struct sr_object *sr = (struct sr_object *)obj;

    Py_XDECREF(sr->write);
    Py_TYPE(obj)->tp_free(obj);
}

/* The latin-1 bytes of str S (no copy), or NULL with ValueError naming WHAT. */
static const char *
latin1(PyObject *s, const char *what, size_t *len)
{
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(s) < 0)
        return NULL;
#endif
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        PyErr_Format(PyExc_ValueError, "%s %R is not latin-1: encode it (RFC 9110)", what, s);
        return NULL;
    }
    *len = (size_t)PyUnicode_GET_LENGTH(s);
    return (const char *)PyUnicode_1BYTE_DATA(s);
}

/*
 * STATUS as latin-1 text; the core checks its form (qln_resp_start) and says
 * what is wrong with it (qln_resp_refusal).
 */
static int
check_status(PyObject *status, struct qln_slice *out)
{
    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "status must be a str, not %.100s", Py_TYPE(status)->tp_name);
        return -1;
    }
    out->p = latin1(status, "status", &out->len);
    return out->p != NULL ? 0 : -1;
}

/* A header pair as latin-1 text; the core checks names and values (RFC 9110 5.1, 5.5). */
static int
check_field(PyObject *name, PyObject *value, struct qln_header *h)
{
    if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "header name and value must be str, not %.100s and %.100s",
                     Py_TYPE(name)->tp_name, Py_TYPE(value)->tp_name);
        return -1;
    }
    h->name.p = latin1(name, "header name", &h->name.len);
    h->value.p = h->name.p ? latin1(value, "header value", &h->value.len) : NULL;
    return h->value.p != NULL ? 0 : -1;
}

/*
 * Checks HEADERS (a list of (str, str) tuples) into H (N entries) and hands
 * them with STATUS to the core, which copies them. Returns 0 or -1 with an
 * exception set: invalid headers become an exception the app sees, so the
 * request ends in a 500 and nothing invalid reaches the client.
 */
static int
start(struct pyw_request *rq, struct qln_slice status, PyObject *seq, struct qln_header *h)
{
    Py_ssize_t i, n = PySequence_Fast_GET_SIZE(seq);
    int rc;

    for (i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);

        /* PEP 3333 says tuples; gunicorn takes any pair, and so do we. */
        if ((!PyTuple_Check(item) && !PyList_Check(item)) || PySequence_Fast_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "headers must be (name, value) tuples, not %R", item);
            return -1;
        }
        if (check_field(PySequence_Fast_GET_ITEM(item, 0), PySequence_Fast_GET_ITEM(item, 1),
                        &h[i]) < 0)
            return -1;
    }
    rc = qln_resp_start(rq->resp, status, h, (size_t)n);
    if (rc == QLN_EBADHEADER) {
        PyErr_SetString(PyExc_ValueError, qln_resp_refusal(rq->resp));
        return -1;
    }
    if (rc < 0) {
        PyErr_Format(PyExc_ValueError, "invalid response headers: %s", qln_strerror(rc));
        return -1;
    }
    rq->content_length = qln_resp_content_length(rq->resp);
    rq->started = true;
    return 0;
}

/* Re-raises the app's exc_info tuple (PEP 3333: headers already left). */
static PyObject *
reraise(PyObject *exc_info)
{
    PyObject *value;

    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError, "exc_info must be a (type, value, traceback) tuple");
        return NULL;
    }
    value = PyTuple_GET_ITEM(exc_info, 1);
    if (!PyExceptionInstance_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "exc_info[1] must be an exception instance");
        return NULL;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(value), value);
    return NULL;
}

/*
 * start_response(status, headers, exc_info=None)'s arguments, positional or
 * by name, into ARGV[3] (exc_info None when absent). -1 with TypeError set
 * when they do not fit that signature.
 */
static int
sr_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject *argv[3])
{
    static const char *const names[3] = {"status", "headers", "exc_info"};
    Py_ssize_t i, j, nkw = kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0;

    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "start_response() takes at most 3 arguments (%zd given)",
                     nargs + nkw);
        return -1;
    }
    argv[0] = argv[1] = argv[2] = NULL;
    for (i = 0; i < nargs; i++)
        argv[i] = args[i];
    for (i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);

        for (j = 0; j < 3 && PyUnicode_CompareWithASCIIString(name, names[j]) != 0; j++)
            ;
        if (j == 3) {
            PyErr_Format(PyExc_TypeError,
                         "start_response() got an unexpected keyword argument '%U'", name);
            return -1;
        }
        if (argv[j] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         "start_response() got multiple values for argument '%s'", names[j]);
            return -1;
        }
        argv[j] = args[nargs + i];
    }
    for (j = 0; j < 2; j++) {
        if (argv[j] == NULL) {
            PyErr_Format(PyExc_TypeError, "start_response() missing required argument '%s'",
                         names[j]);
            return -1;
        }
    }
    if (argv[2] == NULL)
        argv[2] = Py_None;
    return 0;
}

static PyObject *
sr_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    struct sr_object *sr = (struct sr_object *)self;
    struct pyw_request *rq = sr->rq;
    PyObject *argv[3], *status, *headers, *exc_info, *seq;
    struct qln_header stack[HEADERS_ON_STACK], *h = stack;
    struct qln_slice st;
    int rc;

    if (sr_args(args, PyVectorcall_NARGS(nargsf), kwnames, argv) < 0)
        return NULL;
    status = argv[0];
    headers = argv[1];
    exc_info = argv[2];
    if (rq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after its request finished");
        return NULL;
    }
    if (exc_info != Py_None) {
        if (qln_resp_headers_sent(rq->resp))
            return reraise(exc_info);
    } else if (rq->started) {
        PyErr_SetString(PyExc_AssertionError,
                        "start_response() called a second time without exc_info");
        return NULL;
    }
    if (check_status(status, &st) < 0)
        return NULL;
    if (!PyList_Check(headers) && !PyTuple_Check(headers)) {
        PyErr_Format(PyExc_TypeError, "headers must be a list, not %.100s",
                     Py_TYPE(headers)->tp_name);
        return NULL;
    }
    seq = PySequence_Fast(headers, "headers must be a list");
    if (seq == NULL)
        return NULL;
    if (PySequence_Fast_GET_SIZE(seq) > HEADERS_ON_STACK)
        h = PyMem_Calloc((size_t)PySequence_Fast_GET_SIZE(seq), sizeof(*h));
    if (h == NULL) {
        PyErr_NoMemory();
        rc = -1;
    } else {
        rc = start(rq, st, seq, h);
    }
    if (h != stack)
        PyMem_Free(h);
    Py_DECREF(seq);
    if (rc < 0)
        return NULL;
    return Py_NewRef((PyObject *)sr->write);
}

/* A bytes-like chunk of body: bytes directly, other buffers through the buffer protocol. */
static int
get_chunk(PyObject *data, Py_buffer *view)
{
    if (PyUnicode_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "response body must be bytes, not str: encode it");
        return -1;
    }
    if (PyObject_GetBuffer(data, view, PyBUF_SIMPLE) < 0) {
        PyErr_Format(PyExc_TypeError, "response body must be bytes, not %.100s",
                     Py_TYPE(data)->tp_name);
        return -1;
    }
    return 0;
}

int
pyw_response_write(struct pyw_request *rq, const void *buf, size_t len)
{
    int rc = qln_resp_write(rq->resp, buf, len);

    if (rc < 0)
        rq->io_error = rc;
    return rc;
}

/* Sends one body chunk; empty ones are skipped so the head waits for real data. */
static int
send_chunk(struct pyw_request *rq, PyObject *data)
{
    Py_buffer view;
    int rc;

    if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) == 0)
        return 0;
    if (get_chunk(data, &view) < 0)
        return -1;
    if (view.len > 0 && !rq->started) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_AssertionError, "the response body started before start_response()");
        return -1;
    }
    rc = view.len > 0 ? pyw_response_write(rq, view.buf, (size_t)view.len) : 0;
    PyBuffer_Release(&view);
    return rc;
}

static PyObject *
write_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    struct write_object *w = (struct write_object *)self;
    PyObject *data;
    int rc;

    if (!PyArg_ParseTuple(args, "O:write", &data))
        return NULL;
    if (w->rq == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after its request finished");
        return NULL;
    }
    if (!w->rq->started) {
        PyErr_SetString(PyExc_AssertionError, "write() called before start_response()");
        return NULL;
    }
    rc = send_chunk(w->rq, data);
    if (rc < 0)
        return PyErr_Occurred() ? NULL : pyw_raise_io(rc);
    Py_RETURN_NONE;
}

/*
 * Iterates RESULT and sends each chunk. A list or tuple is walked by index
 * (no iterator object, and no app code runs between chunks); the length is
 * re-read each time because the GIL may be released while a write waits.
 */
static int
send_iterable(struct pyw_request *rq, PyObject *result)
{
    PyObject *it, *item;
    int rc = 0;

    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        Py_ssize_t i;

        for (i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(result); i++) {
            item = Py_NewRef(PySequence_Fast_GET_ITEM(result, i));
            rc = send_chunk(rq, item);
            Py_DECREF(item);
        }
        return rc;
    }
    it = PyObject_GetIter(result);
    if (it == NULL)
        return -1;
    while (rc == 0 && (item = PyIter_Next(it)) != NULL) {
        rc = send_chunk(rq, item);
        Py_DECREF(item);
    }
    Py_DECREF(it);
    if (rc == 0 && PyErr_Occurred())
        rc = -1;
    return rc;
}

/*
 * PEP 3333: close() of the iterable is called whatever happened. An
 * exception from close() is the request's failure unless an earlier one
 * already is; then close()'s is logged on its own.
 */
/*
 * Looks up RESULT.close without raising AttributeError when it is absent.
 * Returns 1 with a new reference in *CLOSE, 0 when absent, -1 on error.
 */
static int
lookup_close(PyObject *result, PyObject **close)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttrString(result, "close", close);
#else
    /* Worker processes: the interned name, made once under the GIL. */
    static PyObject *name;

    if (name == NULL && (name = PyUnicode_InternFromString("close")) == NULL)
        return -1;
    return _PyObject_LookupAttr(result, name, close);
#endif
}

static int
call_close(struct pyw_request *rq, PyObject *result, int rc)
{
    PyObject *pending, *close = NULL, *res;

    /*
     * Exact lists and tuples, most responses, have no close(). Asking them
     * anyway (hasattr) builds and clears an AttributeError on every request:
     * about a quarter of a hello request's instructions under callgrind.
     */
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result))
        return rc;
    pending = pyw_err_fetch(); /* looking close() up would clear it */
    if (lookup_close(result, &close) <= 0) {
        PyErr_Clear();
        pyw_err_restore(pending);
        return rc;
    }
    res = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    if (res != NULL) {
        Py_DECREF(res);
    } else if (pending == NULL && rc == 0) {
        return -1;
    } else {
        pyw_log_exception(rq->st, QLN_LOG_ERROR,
                          "Exception in the close() of the response iterable");
    }
    pyw_err_restore(pending);
    return rc;
}

int
pyw_response_send(struct pyw_request *rq, PyObject *result)
{
    int rc = 1;

    if (Py_IS_TYPE(result, &pyw_filewrapper_type))
        rc = pyw_filewrapper_send(rq, result);
    if (rc == 1)
        rc = send_iterable(rq, result);
    if (rc == 0 && !rq->started) {
        PyErr_SetString(PyExc_AssertionError,
                        "the application returned without calling start_response()");
        rc = -1;
    }
    return call_close(rq, result, rc);
}

PyTypeObject pyw_start_response_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.StartResponse",
    .tp_basicsize = sizeof(struct sr_object),
    .tp_dealloc = sr_dealloc,
    .tp_vectorcall_offset = offsetof(struct sr_object, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "start_response(status, headers, exc_info=None) -> write",
};

PyTypeObject pyw_write_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.Write",
    .tp_basicsize = sizeof(struct write_object),
    .tp_call = write_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "write(data): sends DATA (bytes) as part of the response body.",
};
