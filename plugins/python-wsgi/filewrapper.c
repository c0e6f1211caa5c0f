/*
 * wsgi.file_wrapper: wraps a file-like object. Returned by the app over a
 * real file, its bytes leave with sendfile(2) through the core; over
 * anything else it is an ordinary iterable of blocks. Workers, under the GIL.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qilin/plugin.h>

#include "py.h"

struct fw_object {
    PyObject ob_base;   /* PyObject_HEAD */
    PyObject *filelike; /* new */
    Py_ssize_t blksize;
};

static PyObject *
fw_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 8192;
    struct fw_object *fw;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:file_wrapper", kwlist, &filelike, &blksize))
        return NULL;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "file_wrapper block size must be positive");
        return NULL;
    }
    fw = (struct fw_object *)type->tp_alloc(type, 0);
    if (fw == NULL)
        return NULL;
    fw->filelike = Py_NewRef(filelike);
    fw->blksize = blksize;
    return (PyObject *)fw;
}

static int
fw_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((struct fw_object *)self)->filelike);
    return 0;
}

static int
fw_clear(PyObject *self)
{
    Py_CLEAR(((struct fw_object *)self)->filelike);
    return 0;
}

static void
fw_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    fw_clear(self);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *
fw_iternext(PyObject *self)
{
    struct fw_object *fw = (struct fw_object *)self;
    PyObject *data;

    if (fw->filelike == NULL)
        return NULL;
    data = PyObject_CallMethod(fw->filelike, "read", "n", fw->blksize);
    if (data != NULL && PyObject_Length(data) <= 0)
        Py_CLEAR(data); /* end of file (StopIteration), or the length failed (raised) */
    return data;
}

/* PEP 3333: closing the wrapper closes the file-like object when it can be closed. */
static PyObject *
fw_close(PyObject *self, PyObject *unused)
{
    struct fw_object *fw = (struct fw_object *)self;
    PyObject *close, *res;

    if (fw->filelike == NULL || !PyObject_HasAttrString(fw->filelike, "close"))
        Py_RETURN_NONE;
    close = PyObject_GetAttrString(fw->filelike, "close");
    res = close ? PyObject_CallNoArgs(close) : NULL;
    Py_XDECREF(close);
    return res;
}

/* The file's descriptor when it is a regular file, else -1 (no exception). */
static int
regular_fd(PyObject *filelike)
{
    PyObject *r = PyObject_CallMethod(filelike, "fileno", NULL);
    struct stat sb;
    long fd;

    if (r == NULL) {
        /* No fileno() (BytesIO raises io.UnsupportedOperation): iterate instead. */
        PyErr_Clear();
        return -1;
    }
    fd = PyLong_Check(r) ? PyLong_AsLong(r) : -1;
    Py_DECREF(r);
    PyErr_Clear();
    if (fd < 0 || fd > INT_MAX || fstat((int)fd, &sb) < 0 || !S_ISREG(sb.st_mode))
        return -1;
    return (int)fd;
}

/*
 * The position to send from: tell() when the object has it, since a
 * buffered Python file's descriptor offset runs ahead of what was read
 * through it; else the descriptor's own offset.
 */
static off_t
start_offset(PyObject *filelike, int fd)
{
    PyObject *r = PyObject_CallMethod(filelike, "tell", NULL);
    long long pos = -1;

    if (r != NULL) {
        pos = PyLong_AsLongLong(r);
        Py_DECREF(r);
    }
    PyErr_Clear();
    if (pos >= 0)
        return (off_t)pos;
    return lseek(fd, 0, SEEK_CUR);
}

int
pyw_filewrapper_send(struct pyw_request *rq, PyObject *obj)
{
    struct fw_object *fw = (struct fw_object *)obj;
    int fd = fw->filelike ? regular_fd(fw->filelike) : -1;
    off_t offset;
    int rc;

    if (fd < 0)
        return 1;
    offset = start_offset(fw->filelike, fd);
    if (offset < 0)
        return 1;
    if (!rq->started) {
        PyErr_SetString(PyExc_AssertionError,
                        "the application returned a file_wrapper before start_response()");
        return -1;
    }
    /* Up to the app's Content-Length: the framing promised that many bytes. */
    rc = qln_resp_sendfile(rq->resp, fd, offset, rq->content_length);
    if (rc < 0) {
        rq->io_error = rc;
        return rc;
    }
    return 0;
}

static PyMethodDef fw_methods[] = {
    {"close", fw_close, METH_NOARGS, "close(): closes the wrapped file-like object."},
    {NULL, NULL, 0, NULL},
};

PyTypeObject pyw_filewrapper_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.FileWrapper",
    .tp_basicsize = sizeof(struct fw_object),
    .tp_dealloc = fw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "file_wrapper(filelike, blksize=8192): an iterable of the file's blocks; served "
              "with sendfile(2) when the file is a real one.",
    .tp_traverse = fw_traverse,
    .tp_clear = fw_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_iternext,
    .tp_methods = fw_methods,
    .tp_new = fw_new,
};
