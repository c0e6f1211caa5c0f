/*
 * The modules qilin's plugins bring to the interpreter: the package "qilin"
 * and the modules under it (qilin.conf, qilin.green, ...). Their Python is
 * .py files in qilin's source tree, compiled into the plugins as text
 * (tools/embed-py); here each becomes a real module in sys.modules, imported
 * by its name. Its __file__ is the source file's path in the tree, so a
 * traceback names the file and the line, and its __loader__ hands the text
 * to linecache, so the traceback shows the line itself too. C functions a
 * module offers are put in it before its Python runs.
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string.h>

#include "py.h"

#define PACKAGE "qilin"

/* sys.modules["qilin"], made (an empty package) if missing: borrowed, or NULL with an error. */
static PyObject *
package(void)
{
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *pkg = PyDict_GetItemString(modules, PACKAGE), *path;

    if (pkg != NULL)
        return pkg;
    pkg = PyModule_New(PACKAGE);
    path = pkg != NULL ? PyList_New(0) : NULL;
    if (path == NULL || PyModule_AddObjectRef(pkg, "__path__", path) < 0 ||
        PyModule_AddStringConstant(pkg, "__package__", PACKAGE) < 0 ||
        PyDict_SetItemString(modules, PACKAGE, pkg) < 0) {
        Py_XDECREF(path);
        Py_XDECREF(pkg);
        return NULL;
    }
    Py_DECREF(path);
    Py_DECREF(pkg); /* sys.modules holds it */
    return pkg;
}

/*
 * The module's __loader__: an object whose get_source(NAME) returns SOURCE,
 * which is all linecache asks of a loader. New reference, or NULL.
 */
static PyObject *
source_loader(PyObject *name, const char *source)
{
    PyObject *types = PyImport_ImportModule("types");
    PyObject *ns_type = types != NULL ? PyObject_GetAttrString(types, "SimpleNamespace") : NULL;
    PyObject *text = ns_type != NULL ? PyUnicode_FromString(source) : NULL;
    PyObject *by_name = text != NULL ? PyDict_New() : NULL;
    PyObject *get = NULL, *kw = NULL, *loader = NULL;

    if (by_name != NULL && PyDict_SetItem(by_name, name, text) == 0)
        get = PyObject_GetAttrString(by_name, "get");
    kw = get != NULL ? PyDict_New() : NULL;
    if (kw != NULL && PyDict_SetItemString(kw, "get_source", get) == 0)
        loader = PyObject_VectorcallDict(ns_type, NULL, 0, kw);
    Py_XDECREF(kw);
    Py_XDECREF(get);
    Py_XDECREF(by_name);
    Py_XDECREF(text);
    Py_XDECREF(ns_type);
    Py_XDECREF(types);
    return loader;
}

PyObject *
pyw_module_define(const char *name, const char *path, const char *source, PyMethodDef *methods)
{
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    PyObject *pkg, *mod, *pyname, *dict, *code, *r;
    const char *leaf = strrchr(name, '.');

    if (leaf == NULL || (size_t)(leaf - name) != strlen(PACKAGE) ||
        strncmp(name, PACKAGE, strlen(PACKAGE)) != 0) {
        PyErr_Format(PyExc_ValueError, "%s is not a module of the " PACKAGE " package", name);
        return NULL;
    }
    pkg = package();
    mod = pkg != NULL ? PyModule_New(name) : NULL;
    if (mod == NULL)
        return NULL;
    dict = PyModule_GetDict(mod); /* borrowed */
    pyname = PyModule_GetNameObject(mod);
    if (pyname == NULL || PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyModule_AddStringConstant(mod, "__package__", PACKAGE) < 0 ||
        (methods != NULL && PyModule_AddFunctions(mod, methods) < 0))
        goto fail;
    if (source != NULL) {
        PyObject *loader = source_loader(pyname, source);

        if (loader == NULL || PyModule_AddObjectRef(mod, "__loader__", loader) < 0 ||
            PyModule_AddStringConstant(mod, "__file__", path) < 0) {
            Py_XDECREF(loader);
            goto fail;
        }
        Py_DECREF(loader);
    }
    /* In sys.modules while it runs, as an import does, so that its own
       imports of it (and of the package) find it. */
    if (PyDict_SetItem(modules, pyname, mod) < 0)
        goto fail;
    if (source != NULL) {
        code = Py_CompileString(source, path, Py_file_input);
        r = code != NULL ? PyEval_EvalCode(code, dict, dict) : NULL;
        Py_XDECREF(code);
        if (r == NULL) {
            PyObject *exc = pyw_err_fetch();

            if (PyDict_DelItem(modules, pyname) < 0)
                PyErr_Clear();
            pyw_err_restore(exc);
            goto fail;
        }
        Py_DECREF(r);
    }
    if (PyObject_SetAttrString(pkg, leaf + 1, mod) < 0)
        goto fail;
    Py_DECREF(pyname);
    return mod;
fail:
    Py_XDECREF(pyname);
    Py_DECREF(mod);
    return NULL;
}
