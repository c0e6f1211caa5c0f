/*
 * environ["gunicorn.socket"]: gunicorn hands the application the request's
 * socket object, which some middlewares read (the peer's address, the
 * descriptor). This is a read-only view of the connection's socket:
 * fileno(), getpeername(), getsockname(), family, type and proto, answered
 * by the system when asked, so a request pays nothing for it. It cannot
 * read, write or close: the core owns the connection. Once the request is
 * over it is detached, and its methods raise OSError (EBADF). Workers,
 * under the GIL.
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <qilin/plugin.h>

#include "py.h"

struct sockref_object {
    PyObject_HEAD int fd; /* -1 when detached */
};

static PyObject *
sockref_fileno(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(((struct sockref_object *)self)->fd);
}

/* ADDR as the socket module spells it: (host, port), (host, port, flow, scope), or a path. */
static PyObject *
address(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];

    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        return Py_BuildValue("(si)", host, ntohs(in->sin_port));
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port), ntohl(in6->sin6_flowinfo),
                             in6->sin6_scope_id);
    }
    if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? strnlen(un->sun_path, len - offsetof(struct sockaddr_un, sun_path))
                       : 0;

        return PyUnicode_DecodeFSDefaultAndSize(un->sun_path, (Py_ssize_t)n);
    }
    return PyUnicode_FromString("");
}

static PyObject *
name_of(PyObject *self, int (*get)(int, struct sockaddr *, socklen_t *))
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = ((struct sockref_object *)self)->fd;

    memset(&ss, 0, sizeof(ss));
    if (fd < 0) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (get(fd, (struct sockaddr *)&ss, &len) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return address(&ss, len);
}

static PyObject *
sockref_getpeername(PyObject *self, PyObject *unused)
{
    return name_of(self, getpeername);
}

static PyObject *
sockref_getsockname(PyObject *self, PyObject *unused)
{
    return name_of(self, getsockname);
}

/* SO_DOMAIN, SO_TYPE or SO_PROTOCOL of the socket. */
static PyObject *
sockopt(PyObject *self, int opt)
{
    int fd = ((struct sockref_object *)self)->fd, v = 0;
    socklen_t len = sizeof(v);

    if (fd < 0) {
        errno = EBADF;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    if (getsockopt(fd, SOL_SOCKET, opt, &v, &len) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong(v);
}

static PyObject *
sockref_family(PyObject *self, void *unused)
{
    return sockopt(self, SO_DOMAIN);
}

static PyObject *
sockref_type(PyObject *self, void *unused)
{
    return sockopt(self, SO_TYPE);
}

static PyObject *
sockref_proto(PyObject *self, void *unused)
{
    return sockopt(self, SO_PROTOCOL);
}

static PyObject *
sockref_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<qilin.socket fd=%d (read-only)>",
                                ((struct sockref_object *)self)->fd);
}

static PyMethodDef sockref_methods[] = {
    {"fileno", sockref_fileno, METH_NOARGS, "The connection's file descriptor (-1 once over)."},
    {"getpeername", sockref_getpeername, METH_NOARGS, "The client's address."},
    {"getsockname", sockref_getsockname, METH_NOARGS, "The address the client connected to."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sockref_getset[] = {
    {"family", sockref_family, NULL, "The address family (socket.AF_*).", NULL},
    {"type", sockref_type, NULL, "The socket type (socket.SOCK_STREAM).", NULL},
    {"proto", sockref_proto, NULL, "The protocol number.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject pyw_sockref_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "qilin.socket",
    .tp_basicsize = sizeof(struct sockref_object),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A read-only view of the request's connection socket (gunicorn.socket).",
    .tp_repr = sockref_repr,
    .tp_methods = sockref_methods,
    .tp_getset = sockref_getset,
};

PyObject *
pyw_sockref_new(void)
{
    struct sockref_object *o = PyObject_New(struct sockref_object, &pyw_sockref_type);

    if (o != NULL)
        o->fd = -1;
    return (PyObject *)o;
}

void
pyw_sockref_attach(PyObject *sockref, int fd)
{
    ((struct sockref_object *)sockref)->fd = fd;
}
