/*
 * wsgi.input: a file-like object over the core's body reader
 * (qln_req_read). read(-1) streams the body in chunks until its end; a small
 * internal buffer exists only for readline(). Nothing is buffered whole.
 * Workers, under the GIL (the core's waiter releases it while it blocks).
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include <qilin/plugin.h>

#include "py.h"

#define INPUT_CHUNK 8192         /* readline buffer size and unknown-length growth step */
#define INPUT_KEEP (64 * 1024)   /* a buffer grown past this is freed between requests */
#define INPUT_PREALLOC (1 << 20) /* at most this much is allocated ahead of the data */

struct input_object {
    PyObject ob_base;       /* PyObject_HEAD */
    struct pyw_request *rq; /* borrowed; NULL outside a request */
    char *buf;              /* readline buffer (PyMem), bytes [start, end) unread */
    size_t cap, start, end;
    int64_t remaining; /* body bytes not yet read from the core; -1: unknown (chunked) */
    bool eof;
};

PyObject *
pyw_input_new(void)
{
    /* tp_alloc zero-fills: no buffer, no request. */
    return pyw_input_type.tp_alloc(&pyw_input_type, 0);
}

void
pyw_input_attach(PyObject *obj, struct pyw_request *rq)
{
    struct input_object *in = (struct input_object *)obj;
    int64_t cl = qln_req_content_length(rq->req);

    in->rq = rq;
    in->start = in->end = 0;
    in->remaining = qln_req_chunked(rq->req) ? -1 : (cl > 0 ? cl : 0);
    in->eof = in->remaining == 0;
}

void
pyw_input_detach(PyObject *obj)
{
    struct input_object *in = (struct input_object *)obj;

    in->rq = NULL;
    in->start = in->end = 0;
    if (in->cap > INPUT_KEEP) {
        PyMem_Free(in->buf);
        in->buf = NULL;
        in->cap = 0;
    }
}

static void
input_dealloc(PyObject *obj)
{
    struct input_object *in = (struct input_object *)obj;

    PyMem_Free(in->buf);
    Py_TYPE(obj)->tp_free(obj);
}

static int
check_open(struct input_object *in)
{
    if (in->rq != NULL)
        return 0;
    PyErr_SetString(PyExc_ValueError, "wsgi.input used after its request finished");
    return -1;
}

/*
 * Reads up to LEN bytes from the core into DST. Returns the count, 0 at the
 * end of the body, or -1 with OSError raised (the app may catch it). The
 * core's waiter releases the GIL if this blocks.
 */
static Py_ssize_t
read_core(struct input_object *in, char *dst, size_t len)
{
    ssize_t n;

    if (in->eof || len == 0)
        return 0;
    if (in->remaining >= 0 && (int64_t)len > in->remaining)
        len = (size_t)in->remaining;
    n = qln_req_read(in->rq->req, dst, len);
    if (n < 0) {
        in->rq->io_error = (int)n;
        in->rq->body_error = true;
        in->eof = true;
        pyw_raise_io((int)n);
        return -1;
    }
    if (n == 0) {
        in->eof = true;
        return 0;
    }
    if (in->remaining >= 0) {
        in->remaining -= n;
        in->eof = in->remaining == 0;
    }
    return n;
}

/* Takes N buffered bytes as a new bytes object. */
static PyObject *
take(struct input_object *in, size_t n)
{
    PyObject *out;

    if (n == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    out = PyBytes_FromStringAndSize(in->buf + in->start, (Py_ssize_t)n);
    if (out != NULL)
        in->start += n;
    return out;
}

/* Accepts None or an int; None and negative values mean "all". */
static int
parse_size(PyObject *const *args, Py_ssize_t nargs, const char *fname, Py_ssize_t *size)
{
    *size = -1;
    if (nargs > 1) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most 1 argument (%zd given)", fname, nargs);
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    *size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (*size == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/*
 * read(size=-1): buffered bytes first, then straight from the core into the
 * result object, until SIZE bytes or the end of the body. The first
 * allocation is bounded by what the body can still hold, and by
 * INPUT_PREALLOC, so a lying Content-Length or read(10**9) costs nothing
 * until the bytes really arrive.
 */
static PyObject *
input_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct input_object *in = (struct input_object *)self;
    Py_ssize_t size, len, cap, want;
    size_t buffered;
    PyObject *out;

    if (parse_size(args, nargs, "read", &size) < 0 || check_open(in) < 0)
        return NULL;
    buffered = in->end - in->start;
    if (size >= 0 && (size_t)size <= buffered)
        return take(in, (size_t)size);
    want = in->remaining >= 0 ? (Py_ssize_t)buffered + (Py_ssize_t)in->remaining
                              : (Py_ssize_t)buffered + INPUT_CHUNK;
    if (size >= 0 && size < want)
        want = size;
    cap = want < INPUT_PREALLOC ? want : INPUT_PREALLOC;
    out = PyBytes_FromStringAndSize(NULL, cap);
    if (out == NULL)
        return NULL;
    if (buffered > 0)
        memcpy(PyBytes_AS_STRING(out), in->buf + in->start, buffered);
    in->start = in->end = 0;
    len = (Py_ssize_t)buffered;
    while (size < 0 || len < size) {
        Py_ssize_t n;

        if (len == cap) {
            Py_ssize_t grow = cap < INPUT_CHUNK ? INPUT_CHUNK : cap;

            if (in->eof)
                break;
            cap = size >= 0 && cap + grow > size ? size : cap + grow;
            if (_PyBytes_Resize(&out, cap) < 0)
                return NULL;
        }
        n = read_core(in, PyBytes_AS_STRING(out) + len, (size_t)(cap - len));
        if (n < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (n == 0)
            break;
        len += n;
    }
    if (len != cap && _PyBytes_Resize(&out, len) < 0)
        return NULL;
    return out;
}

/* Reads more body into the readline buffer; returns the count, 0 at the end, -1 on error. */
static Py_ssize_t
fill(struct input_object *in)
{
    Py_ssize_t n;

    if (in->start > 0 && in->end == in->cap) {
        memmove(in->buf, in->buf + in->start, in->end - in->start);
        in->end -= in->start;
        in->start = 0;
    }
    if (in->end == in->cap) {
        size_t ncap = in->cap ? in->cap * 2 : INPUT_CHUNK;
        char *nbuf = PyMem_Realloc(in->buf, ncap);

        if (nbuf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        in->buf = nbuf;
        in->cap = ncap;
    }
    n = read_core(in, in->buf + in->end, in->cap - in->end);
    if (n > 0)
        in->end += (size_t)n;
    return n;
}

/* One line (with its '\n'), at most SIZE bytes when SIZE >= 0; b"" at the end. */
static PyObject *
readline_sized(struct input_object *in, Py_ssize_t size)
{
    size_t scanned = 0;

    for (;;) {
        size_t avail = in->end - in->start;
        size_t limit = size >= 0 && (size_t)size < avail ? (size_t)size : avail;
        const char *nl = NULL;
        Py_ssize_t n;

        if (limit > scanned)
            nl = memchr(in->buf + in->start + scanned, '\n', limit - scanned);
        if (nl != NULL)
            return take(in, (size_t)(nl - (in->buf + in->start)) + 1);
        if ((size >= 0 && avail >= (size_t)size) || in->eof)
            return take(in, limit);
        scanned = limit;
        n = fill(in);
        if (n < 0)
            return NULL;
    }
}

static PyObject *
input_readline(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct input_object *in = (struct input_object *)self;
    Py_ssize_t size;

    if (parse_size(args, nargs, "readline", &size) < 0 || check_open(in) < 0)
        return NULL;
    return readline_sized(in, size);
}

static PyObject *
input_readlines(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    struct input_object *in = (struct input_object *)self;
    Py_ssize_t hint, total = 0;
    PyObject *lines;

    if (parse_size(args, nargs, "readlines", &hint) < 0 || check_open(in) < 0)
        return NULL;
    lines = PyList_New(0);
    while (lines != NULL) {
        PyObject *line = readline_sized(in, -1);

        if (line == NULL || PyBytes_GET_SIZE(line) == 0) {
            if (line == NULL)
                Py_CLEAR(lines);
            Py_XDECREF(line);
            break;
        }
        total += PyBytes_GET_SIZE(line);
        if (PyList_Append(lines, line) < 0)
            Py_CLEAR(lines);
        Py_DECREF(line);
        if (hint > 0 && total >= hint)
            break;
    }
    return lines;
}

static PyObject *
input_iternext(PyObject *self)
{
    struct input_object *in = (struct input_object *)self;
    PyObject *line;

    if (check_open(in) < 0)
        return NULL;
    line = readline_sized(in, -1);
    if (line != NULL && PyBytes_GET_SIZE(line) == 0)
        Py_CLEAR(line); /* NULL without an exception: StopIteration */
    return line;
}

static PyMethodDef input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))input_read, METH_FASTCALL,
     "read(size=-1) -> bytes: up to SIZE bytes of the body, all of it when negative."},
    {"readline", (PyCFunction)(void (*)(void))input_readline, METH_FASTCALL,
     "readline(size=-1) -> bytes: one line including its newline."},
    {"readlines", (PyCFunction)(void (*)(void))input_readlines, METH_FASTCALL,
     "readlines(hint=-1) -> list of lines."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyw_input_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.Input",
    .tp_basicsize = sizeof(struct input_object),
    .tp_dealloc = input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, streamed from the connection.",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_iternext,
    .tp_methods = input_methods,
};
