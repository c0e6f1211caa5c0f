/*
 * The PEP 3333 environ of each request: a dict copied from a template of
 * the constant entries, interned keys, cached values (methods, protocol,
 * addresses) and a small cache of HTTP_* keys, so a typical request makes
 * only the objects that really differ. Workers; set up where the app loads.
 * Every function runs under the GIL.
 *
 * The template also holds every key each request sets (None until then)
 * and room for ENV_ROOM entries: CPython copies a dict's hash table whole,
 * spare room included, so a request's own values replace entries in place
 * and its headers fill the room, with no resize. What is the same
 * for every request on a listener (SERVER_NAME, SERVER_PORT, the scheme)
 * is in a copy of the template per listener, and SERVER_PROTOCOL and
 * QUERY_STRING start as HTTP/1.1 and "", so most requests set neither.
 */
#include "qlnconfig.h"

/* Python.h first among the rest: it sets feature macros the C library reads. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <qilin/plugin.h>

#include "py.h"

/*
 * HTTP_* keys seen so far, by their transformed bytes. The table stops
 * growing at HKEY_MAX entries, so a client inventing header names cannot
 * make the worker grow without bound; later names are built per request.
 */
#define HKEY_SLOTS 256 /* power of two, twice HKEY_MAX */
#define HKEY_MAX 128
#define HKEY_NAME_MAX 64 /* "HTTP_" included */

struct pyw_hkey {
    uint32_t hash;
    uint32_t len; /* 0: empty slot */
    char name[HKEY_NAME_MAX];
    PyObject *key; /* new, interned */
};

static const char *const method_names[] = {
    "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
};

static PyObject *
intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

/* Stores VALUE (stolen; NULL means its constructor failed) under KEY. */
static int
put(PyObject *env, PyObject *key, PyObject *value)
{
    int rc = value != NULL ? PyDict_SetItem(env, key, value) : -1;

    Py_XDECREF(value);
    return rc;
}

/* As put() with a C string key, interned. */
static int
put_str(PyObject *env, const char *key, PyObject *value)
{
    PyObject *k = intern(key);
    int rc;

    if (k == NULL) {
        Py_XDECREF(value);
        return -1;
    }
    rc = put(env, k, value);
    Py_DECREF(k);
    return rc;
}

static int
init_keys(struct pyw_keys *k)
{
#define PYW_KEY_INIT(field, text)                                                                  \
    if ((k->field = intern(text)) == NULL)                                                         \
        return -1;
    PYW_KEYS(PYW_KEY_INIT)
#undef PYW_KEY_INIT
    return 0;
}

/* Entries the template has room for: the constants, the request's own
   keys, and the headers of a browser's request. */
#define ENV_ROOM 40

static int
init_template(struct pyw_state *st)
{
    struct pyw_environ *e = &st->env;
    const struct pyw_keys *k = &e->k;
    /* Set by every request, or by the listener's copy (the server and the
       scheme); REMOTE_PORT is deleted where there is none. */
    PyObject *const per_request[] = {
        k->request_method, k->path_info,       k->raw_uri,     k->url_scheme,  k->remote_addr,
        k->remote_port,    k->gunicorn_socket, k->server_name, k->server_port, k->input,
    };
    PyObject *t = _PyDict_NewPresized(ENV_ROOM);
    size_t i;

    if (t == NULL)
        return -1;
    e->tmpl = t;
    for (i = 0; i < sizeof(per_request) / sizeof(per_request[0]); i++) {
        if (PyDict_SetItem(t, per_request[i], Py_None) < 0)
            return -1;
    }
    if (PyDict_SetItem(t, k->server_protocol, e->proto11) < 0 ||
        PyDict_SetItem(t, k->query_string, e->empty) < 0 ||
        PyDict_SetItem(t, e->k.script_name, e->script_name) < 0 ||
        put_str(t, "SERVER_SOFTWARE", PyUnicode_FromString("qilin/" QLN_VERSION)) < 0 ||
        put_str(t, "wsgi.version", Py_BuildValue("(ii)", 1, 0)) < 0 ||
        put_str(t, "wsgi.errors", Py_NewRef(st->errors)) < 0 ||
        put(t, e->k.multithread, PyBool_FromLong(st->multithread)) < 0 ||
        put_str(t, "wsgi.multiprocess", PyBool_FromLong(st->multiprocess)) < 0 ||
        put_str(t, "wsgi.run_once", Py_NewRef(Py_False)) < 0 ||
        put_str(t, "wsgi.file_wrapper", Py_NewRef((PyObject *)&pyw_filewrapper_type)) < 0 ||
        put_str(t, "wsgi.input_terminated", Py_NewRef(Py_True)) < 0)
        return -1;
    return 0;
}

int
pyw_environ_init(struct pyw_state *st)
{
    struct pyw_environ *e = &st->env;
    const char *script = getenv("SCRIPT_NAME");
    size_t i;

    if (init_keys(&e->k) < 0)
        return -1;
    /* As gunicorn: SCRIPT_NAME comes from the process environment. Latin-1,
       so that it compares byte for byte with the decoded path. */
    script = script ? script : "";
    e->script_name = PyUnicode_DecodeLatin1(script, (Py_ssize_t)strlen(script), NULL);
    e->proto10 = intern("HTTP/1.0");
    e->proto11 = intern("HTTP/1.1");
    e->http = intern("http");
    e->https = intern("https");
    e->empty = PyUnicode_New(0, 0);
    if (!e->script_name || !e->proto10 || !e->proto11 || !e->http || !e->https || !e->empty)
        return -1;
    for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        e->methods[i] = intern(method_names[i]);
        if (e->methods[i] == NULL)
            return -1;
    }
    e->hkeys = pyw_calloc(HKEY_SLOTS, sizeof(*e->hkeys));
    return init_template(st);
}

static void
strcache_clear(struct pyw_strcache *c)
{
    Py_CLEAR(c->obj);
    c->len = 0;
}

static void
bound_clear(struct pyw_environ *e)
{
    for (size_t i = 0; i < sizeof(e->bound) / sizeof(e->bound[0]); i++)
        Py_CLEAR(e->bound[i].tmpl);
}

void
pyw_environ_fini(struct pyw_state *st)
{
    struct pyw_environ *e = &st->env;
    size_t i;

    bound_clear(e);
#define PYW_KEY_CLEAR(field, text) Py_CLEAR(e->k.field);
    PYW_KEYS(PYW_KEY_CLEAR)
#undef PYW_KEY_CLEAR
    Py_CLEAR(e->tmpl);
    Py_CLEAR(e->script_name);
    Py_CLEAR(e->proto10);
    Py_CLEAR(e->proto11);
    Py_CLEAR(e->http);
    Py_CLEAR(e->https);
    Py_CLEAR(e->empty);
    for (i = 0; i < sizeof(e->methods) / sizeof(e->methods[0]); i++)
        Py_CLEAR(e->methods[i]);
    strcache_clear(&e->remote_addr);
    strcache_clear(&e->remote_port);
    for (i = 0; i < PYW_NTLS_VARS; i++) {
        Py_CLEAR(e->tls[i].key);
        strcache_clear(&e->tls[i].value);
    }
    for (i = 0; e->hkeys != NULL && i < HKEY_SLOTS; i++)
        Py_CLEAR(e->hkeys[i].key);
    free(e->hkeys);
    e->hkeys = NULL;
    e->nhkeys = 0;
}

void
pyw_environ_set_multithread(struct pyw_state *st)
{
    if (st->multithread)
        return;
    st->multithread = true;
    bound_clear(&st->env); /* copies of the template as it was */
    if (st->env.tmpl != NULL && PyDict_SetItem(st->env.tmpl, st->env.k.multithread, Py_True) < 0)
        PyErr_Clear();
}

/* A str for S (LEN bytes, latin-1), reused while the text stays the same. New reference. */
PyObject *
pyw_strcache_get(struct pyw_strcache *c, const char *s, size_t len)
{
    PyObject *obj;

    if (c->obj != NULL && c->len == len && memcmp(c->text, s, len) == 0)
        return Py_NewRef(c->obj);
    obj = PyUnicode_DecodeLatin1(s, (Py_ssize_t)len, NULL);
    if (obj != NULL && len <= sizeof(c->text)) {
        Py_XSETREF(c->obj, Py_NewRef(obj));
        memcpy(c->text, s, len);
        c->len = len;
    }
    return obj;
}

PyObject *
pyw_method_object(struct pyw_environ *e, struct qln_slice m)
{
    size_t i;

    for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++) {
        if (strlen(method_names[i]) == m.len && memcmp(method_names[i], m.p, m.len) == 0)
            return Py_NewRef(e->methods[i]);
    }
    return PyUnicode_DecodeLatin1(m.p, (Py_ssize_t)m.len, NULL);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes SRC into DST (at least LEN bytes) as urllib's unquote_to_bytes:
   a '%' not followed by two hex digits stays as it is. Returns the length. */
size_t
pyw_unquote(char *dst, const char *src, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        int hi, lo;

        if (src[i] == '%' && i + 2 < len && (hi = hexval(src[i + 1])) >= 0 &&
            (lo = hexval(src[i + 2])) >= 0) {
            dst[n++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[n++] = src[i];
        }
    }
    return n;
}

/* PATH_INFO from the decoded path SRC (N bytes): SCRIPT (SCRIPT_NAME) is cut off the front. */
static PyObject *
strip_script_name(PyObject *script, const char *src, size_t n)
{
    size_t snlen = (size_t)PyUnicode_GET_LENGTH(script);
    PyObject *p;

    if (snlen == 0)
        return PyUnicode_DecodeLatin1(src, (Py_ssize_t)n, NULL);
    if (n >= snlen && memcmp(src, PyUnicode_1BYTE_DATA(script), snlen) == 0)
        return PyUnicode_DecodeLatin1(src + snlen, (Py_ssize_t)(n - snlen), NULL);
    p = PyUnicode_DecodeLatin1(src, (Py_ssize_t)n, NULL);
    if (p != NULL)
        PyErr_Format(PyExc_ValueError,
                     "Request path %R does not start with SCRIPT_NAME %R: fix the SCRIPT_NAME "
                     "environment variable, or the SCRIPT_NAME header the proxy sends",
                     p, script);
    Py_XDECREF(p);
    return NULL;
}

/*
 * PATH_INFO: the path percent-decoded once, each byte one latin-1
 * character (PEP 3333), minus SCRIPT (SCRIPT_NAME). A path outside it is a
 * configuration problem (gunicorn answers 500 too).
 */
static PyObject *
path_info(PyObject *script, struct qln_slice path)
{
    char stackbuf[1024];
    char *buf;
    PyObject *out;

    if (path.len == 0 || memchr(path.p, '%', path.len) == NULL)
        return strip_script_name(script, path.p, path.len);
    buf = path.len <= sizeof(stackbuf) ? stackbuf : PyMem_Malloc(path.len);
    if (buf == NULL)
        return PyErr_NoMemory();
    out = strip_script_name(script, buf, pyw_unquote(buf, path.p, path.len));
    if (buf != stackbuf)
        PyMem_Free(buf);
    return out;
}

/*
 * SCRIPT_NAME: from a SCRIPT_NAME header when the request has one (the core
 * keeps it only from a peer in --forwarded-allow-ips when forwarder_headers
 * names it, or with --header-map dangerous), as gunicorn takes it; else
 * from the process environment. A new reference.
 */
static PyObject *
script_name(const struct pyw_environ *e, const struct qln_header *h, size_t nh)
{
    size_t i;

    for (i = 0; i < nh; i++)
        if (h[i].name.len == 11 && strncasecmp(h[i].name.p, "SCRIPT_NAME", 11) == 0)
            return PyUnicode_DecodeLatin1(h[i].value.p, (Py_ssize_t)h[i].value.len, NULL);
    return Py_NewRef(e->script_name);
}

static uint32_t
fnv1a(const char *p, size_t n)
{
    uint32_t h = 2166136261u;

    while (n--)
        h = (h ^ (unsigned char)*p++) * 16777619u;
    return h;
}

/* Finds or makes the interned key for NAME (N bytes, already "HTTP_..."). New reference. */
static PyObject *
hkey_lookup(struct pyw_environ *e, const char *name, size_t n)
{
    uint32_t h = fnv1a(name, n);
    size_t i = h & (HKEY_SLOTS - 1);
    PyObject *key;

    for (; e->hkeys[i].len != 0; i = (i + 1) & (HKEY_SLOTS - 1)) {
        struct pyw_hkey *s = &e->hkeys[i];

        if (s->hash == h && s->len == n && memcmp(s->name, name, n) == 0)
            return Py_NewRef(s->key);
    }
    key = PyUnicode_DecodeLatin1(name, (Py_ssize_t)n, NULL);
    if (key == NULL)
        return NULL;
    PyUnicode_InternInPlace(&key);
    if (e->nhkeys < HKEY_MAX) {
        e->hkeys[i].hash = h;
        e->hkeys[i].len = (uint32_t)n;
        memcpy(e->hkeys[i].name, name, n);
        e->hkeys[i].key = Py_NewRef(key);
        e->nhkeys++;
    }
    return key;
}

/*
 * The environ key of header NAME: "HTTP_" + upper-case, '-' -> '_';
 * CONTENT_TYPE and CONTENT_LENGTH without the prefix. Names containing '_'
 * reach here only as --header-map and --forwarder-headers allow (the core
 * drops or refuses the others). Returns 1 with *KEY new, -1 on error.
 */
static int
header_key(struct pyw_environ *e, struct qln_slice name, PyObject **key)
{
    char stackbuf[HKEY_NAME_MAX];
    size_t i, n = name.len + 5;
    char *buf = n <= sizeof(stackbuf) ? stackbuf : PyMem_Malloc(n);

    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(buf, "HTTP_", 5);
    for (i = 0; i < name.len; i++) {
        char c = name.p[i];

        buf[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    if (n == 5 + 12 && memcmp(buf + 5, "CONTENT_TYPE", 12) == 0)
        *key = Py_NewRef(e->k.content_type);
    else if (n == 5 + 14 && memcmp(buf + 5, "CONTENT_LENGTH", 14) == 0)
        *key = Py_NewRef(e->k.content_length);
    else if (buf == stackbuf)
        *key = hkey_lookup(e, buf, n);
    else
        *key = PyUnicode_DecodeLatin1(buf, (Py_ssize_t)n, NULL);
    if (buf != stackbuf)
        PyMem_Free(buf);
    return *key != NULL ? 1 : -1;
}

/* Adds every header as a CGI variable; repeated fields are joined with ','. */
static int
put_headers(struct pyw_environ *e, PyObject *env, const struct qln_header *h, size_t nh)
{
    size_t i;

    for (i = 0; i < nh; i++) {
        PyObject *key = NULL, *value, *old;
        int rc = header_key(e, h[i].name, &key);

        if (rc <= 0) {
            if (rc < 0)
                return -1;
            continue;
        }
        value = PyUnicode_DecodeLatin1(h[i].value.p, (Py_ssize_t)h[i].value.len, NULL);
        old = value != NULL ? PyDict_GetItemWithError(env, key) : NULL; /* borrowed */
        if (old != NULL)
            Py_SETREF(value, PyUnicode_FromFormat("%U,%U", old, value));
        else if (PyErr_Occurred())
            Py_CLEAR(value);
        rc = put(env, key, value);
        Py_DECREF(key);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* The Host header's value, or an empty slice. */
static struct qln_slice
find_host(const struct qln_header *h, size_t nh)
{
    size_t i;

    for (i = 0; i < nh; i++) {
        if (h[i].name.len == 4 && strncasecmp(h[i].name.p, "host", 4) == 0)
            return h[i].value;
    }
    return (struct qln_slice){.p = "", .len = 0};
}

/*
 * SERVER_NAME and SERVER_PORT: the listener's address; on a unix socket,
 * which has no port, gunicorn takes them from Host (port 80 or 443 when
 * Host names none).
 */
static int
put_server(struct pyw_environ *e, PyObject *env, struct qln_request *req, PyObject *scheme,
           const struct qln_header *h, size_t nh)
{
    const char *name = qln_req_server_name(req), *port = qln_req_server_port(req);
    struct qln_slice host = find_host(h, nh);
    PyObject *sname, *sport;
    size_t i, colon = 0;

    if (*port != '\0' || host.len == 0) {
        sname = PyUnicode_DecodeLatin1(name, (Py_ssize_t)strlen(name), NULL);
        sport = PyUnicode_DecodeLatin1(port, (Py_ssize_t)strlen(port), NULL);
    } else {
        for (i = 0; i < host.len; i++) {
            if (host.p[i] == ':')
                colon = i;
            else if (host.p[i] == ']')
                colon = 0;
        }
        sname = PyUnicode_DecodeLatin1(host.p, (Py_ssize_t)(colon ? colon : host.len), NULL);
        if (colon != 0)
            sport = PyUnicode_DecodeLatin1(host.p + colon + 1, (Py_ssize_t)(host.len - colon - 1),
                                           NULL);
        else
            sport = PyUnicode_FromString(scheme == e->https ? "443" : "80");
    }
    if (sname == NULL || sport == NULL) {
        Py_XDECREF(sname);
        Py_XDECREF(sport);
        return -1;
    }
    if (put(env, e->k.server_name, sname) < 0) {
        Py_DECREF(sport);
        return -1;
    }
    return put(env, e->k.server_port, sport);
}

/*
 * *OUT: the template copy with REQ's listener (SERVER_NAME, SERVER_PORT)
 * and wsgi.url_scheme SCHEME (its str SCHEME_OBJ), borrowed; made when no
 * slot holds it, in place of the oldest. NULL where there is none to take:
 * a unix socket (SERVER_NAME comes from Host) or a name too long to keep.
 * -1 with an exception set when making it failed.
 */
static int
bound_template(struct pyw_environ *e, struct qln_request *req, const char *scheme,
               PyObject *scheme_obj, PyObject **out)
{
    const size_t nslots = sizeof(e->bound) / sizeof(e->bound[0]);
    const char *name = qln_req_server_name(req), *port = qln_req_server_port(req);
    size_t lname, lport, lscheme;
    struct pyw_bound *b;
    PyObject *t;

    *out = NULL;
    if (*port == '\0')
        return 0;
    for (size_t i = 0; i < nslots; i++) {
        b = &e->bound[i];
        if (b->tmpl != NULL && strcmp(b->name, name) == 0 && strcmp(b->port, port) == 0 &&
            strcmp(b->scheme, scheme) == 0) {
            *out = b->tmpl;
            return 0;
        }
    }
    lname = strlen(name);
    lport = strlen(port);
    lscheme = strlen(scheme);
    if (lname >= sizeof(b->name) || lport >= sizeof(b->port) || lscheme >= sizeof(b->scheme))
        return 0;
    t = PyDict_Copy(e->tmpl);
    if (t == NULL || put_server(e, t, req, scheme_obj, NULL, 0) < 0 ||
        PyDict_SetItem(t, e->k.url_scheme, scheme_obj) < 0) {
        Py_XDECREF(t);
        return -1;
    }
    b = &e->bound[e->bound_next++ % nslots];
    Py_XSETREF(b->tmpl, t);
    memcpy(b->name, name, lname + 1);
    memcpy(b->port, port, lport + 1);
    memcpy(b->scheme, scheme, lscheme + 1);
    *out = t;
    return 0;
}

PyObject *
pyw_scheme_object(struct pyw_environ *e, const char *s)
{
    if (strcmp(s, "http") == 0)
        return Py_NewRef(e->http);
    if (strcmp(s, "https") == 0)
        return Py_NewRef(e->https);
    return PyUnicode_FromString(s);
}

/*
 * gunicorn's PROXY_PROTOCOL, PROXY_ADDR and PROXY_PORT, on every request of
 * a connection that began with a PROXY protocol header naming a client.
 */
static int
put_proxy(const struct pyw_keys *k, PyObject *env, struct qln_request *req)
{
    const char *proto = qln_req_proxy_protocol(req);

    if (proto == NULL)
        return 0;
    if (put(env, k->proxy_protocol, PyUnicode_FromString(proto)) < 0 ||
        put(env, k->proxy_addr, PyUnicode_FromString(qln_req_proxy_addr(req))) < 0 ||
        put(env, k->proxy_port, PyUnicode_FromString(qln_req_proxy_port(req))) < 0)
        return -1;
    return 0;
}

/*
 * On a TLS connection, HTTPS=on and the session's SSL_* variables (mod_ssl's
 * names, which uWSGI and Django middleware read). Each request of a TLS
 * connection sets them, so the known names' keys are made once and their
 * values reused while they repeat (protocol, cipher, "on"); a name the core
 * added later is set as it comes.
 */
static int
put_tls(struct pyw_environ *e, PyObject *env, struct qln_request *req)
{
    static const char *const names[PYW_NTLS_VARS] = {
        "HTTPS",           "SSL_PROTOCOL",        "SSL_CIPHER",
        "SSL_TLS_SNI",     "SSL_CLIENT_VERIFY",   "SSL_CLIENT_S_DN",
        "SSL_CLIENT_I_DN", "SSL_CLIENT_M_SERIAL", "SSL_CLIENT_CERT"};
    const char *name, *value;
    PyObject *v;
    size_t i, k = 0;
    int rc;

    for (i = 0; qln_req_tls_var(req, i, &name, &value); i++) {
        /* The core gives them in this order, some left out: search onwards. */
        while (k < PYW_NTLS_VARS && strcmp(names[k], name) != 0)
            k++;
        if (k == PYW_NTLS_VARS) {
            v = PyUnicode_DecodeLatin1(value, (Py_ssize_t)strlen(value), NULL);
            rc = v != NULL ? PyDict_SetItemString(env, name, v) : -1;
            Py_XDECREF(v);
            if (rc < 0)
                return -1;
            k = 0;
            continue;
        }
        if (e->tls[k].key == NULL && (e->tls[k].key = PyUnicode_InternFromString(name)) == NULL)
            return -1;
        if (put(env, e->tls[k].key, pyw_strcache_get(&e->tls[k].value, value, strlen(value))) < 0)
            return -1;
    }
    return 0;
}

PyObject *
pyw_environ_build(struct pyw_state *st, struct qln_request *req, PyObject *input, PyObject *sock)
{
    struct pyw_environ *e = &st->env;
    struct pyw_keys *k = &e->k;
    struct qln_slice query = qln_req_query(req), target = qln_req_target(req);
    const struct qln_header *h = qln_req_headers(req);
    size_t nh = qln_req_nheaders(req);
    const char *raddr = qln_req_remote_addr(req), *rport = qln_req_remote_port(req);
    const char *scheme_s = qln_req_url_scheme(req);
    PyObject *scheme = pyw_scheme_object(e, scheme_s), *bound = NULL, *env = NULL;
    PyObject *script = script_name(e, h, nh);

    if (scheme == NULL || script == NULL || bound_template(e, req, scheme_s, scheme, &bound) < 0)
        goto fail;
    env = PyDict_Copy(bound != NULL ? bound : e->tmpl);
    if (env == NULL)
        goto fail;
    if (put(env, k->request_method, pyw_method_object(e, qln_req_method(req))) < 0 ||
        put(env, k->path_info, path_info(script, qln_req_path(req))) < 0 ||
        (script != e->script_name && PyDict_SetItem(env, k->script_name, script) < 0) ||
        (query.len != 0 && put(env, k->query_string,
                               PyUnicode_DecodeLatin1(query.p, (Py_ssize_t)query.len, NULL)) < 0) ||
        put(env, k->raw_uri, PyUnicode_DecodeLatin1(target.p, (Py_ssize_t)target.len, NULL)) < 0 ||
        (qln_req_version_minor(req) == 0 &&
         PyDict_SetItem(env, k->server_protocol, e->proto10) < 0) ||
        (bound == NULL && PyDict_SetItem(env, k->url_scheme, scheme) < 0) ||
        put(env, k->remote_addr, pyw_strcache_get(&e->remote_addr, raddr, strlen(raddr))) < 0 ||
        (*rport != '\0'
             ? put(env, k->remote_port, pyw_strcache_get(&e->remote_port, rport, strlen(rport)))
             : PyDict_DelItem(env, k->remote_port)) < 0 ||
        PyDict_SetItem(env, k->input, input) < 0 ||
        PyDict_SetItem(env, k->gunicorn_socket, sock) < 0 || put_headers(e, env, h, nh) < 0 ||
        (bound == NULL && put_server(e, env, req, scheme, h, nh) < 0) ||
        put_proxy(k, env, req) < 0 || put_tls(e, env, req) < 0)
        goto fail;
    Py_DECREF(scheme);
    Py_DECREF(script);
    return env;
fail:
    Py_XDECREF(scheme);
    Py_XDECREF(script);
    Py_XDECREF(env);
    return NULL;
}
