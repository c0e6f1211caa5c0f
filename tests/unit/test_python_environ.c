/*
 * Unit tests for the python3 app plugin (plugins/python-wsgi) against the
 * mock core (mock_core.h), so the plugin's hooks run with an embedded
 * interpreter and no arbiter. Covers the environ, wsgi.input,
 * start_response/write, the iterable's close(), file_wrapper, error
 * handling, app loading and serving from two threads.
 * Each test runs in its own forked process (one interpreter each).
 */
#include "qlnconfig.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <check.h>

#include <qilin/plugin.h>

#include "mock_core.h"

/*
 * LeakSanitizer reads this (when the test is built with it): libpython keeps
 * some allocations past Py_FinalizeEx(), which are not the plugin's leaks.
 */
__attribute__((visibility("default"))) const char *__lsan_default_suppressions(void);

const char *
__lsan_default_suppressions(void)
{
    return "leak:libpython3\n";
}

/* ------------------------------------------------------------------ harness */

extern const struct qln_plugin qilin_plugin;

static const struct qln_app_ops *ops;
static struct qln_ctx ctx;
static void *state;
static char argv0[] = "qilin";
static char *argv_[] = {argv0, NULL};
static char app_dir[] = "/tmp/qilin-pytest-XXXXXX";

/* Writes SRC as DIR/tapp.py in a fresh directory and makes it the working directory. */
static void
write_app(const char *src)
{
    char *dir = mkdtemp(app_dir);
    FILE *f;

    ck_assert_ptr_nonnull(dir);
    ck_assert_int_eq(chdir(dir), 0);
    f = fopen("tapp.py", "w");
    ck_assert_ptr_nonnull(f);
    fputs(src, f);
    fclose(f);
    setenv("PWD", dir, 1);
}

/* The plugin's init() with PYTHONPATH (NULL: none), as the master runs it. */
static void
init_plugin(const char *pythonpath)
{
    char err[256] = "";

    ops = qilin_plugin.app;
    ctx = (struct qln_ctx){.workers = 2, .argc = 1, .argv = argv_, .pythonpath = pythonpath};
    ck_assert_int_eq(ops->init(&ctx, &state, err, sizeof(err)), 0);
}

/* Writes SRC as tapp.py, loads tapp:app and attaches the calling thread. */
static void *
load(const char *src)
{
    char err[512] = "";

    write_app(src);
    init_plugin(NULL);
    ck_assert_msg(ops->load_app(state, "tapp:app", err, sizeof(err)) == 0, "load failed: %s", err);
    return ops->thread_init(state);
}

static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

/*
 * Detaches TOKEN's thread (unless NULL) and finalises the interpreter, as a
 * worker exits; then removes the app's directory.
 */
static void
unload(void *token)
{
    if (token != NULL)
        ops->thread_exit(state, token);
    ops->worker_exit(state);
    ops->shutdown(state);
    state = NULL;
    ck_assert_int_eq(chdir("/"), 0);
    ck_assert_int_eq(nftw(app_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

static int
serve(void *token, struct qln_request *req, struct qln_response *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof(*resp));
    return ops->handle(state, token, req, resp);
}

static struct qln_request
get(const char *target, const char *path)
{
    return (struct qln_request){.method = "GET", .target = target, .path = path, .minor = 1};
}

#define ASSERT_BODY(resp, expect)                                                                  \
    ck_assert_msg((resp).body != NULL && strcmp((resp).body, (expect)) == 0,                       \
                  "body %s, expected %s; log:\n%s", (resp).body ? (resp).body : "(none)",          \
                  (expect), mock_log_buf)

/* ------------------------------------------------------------------ environ */

static const char environ_app[] =
    "import json\n"
    "def app(environ, start_response):\n"
    "    keep = {k: v for k, v in environ.items() if isinstance(v, (str, bool, tuple))}\n"
    "    keep['input'] = type(environ['wsgi.input']).__name__\n"
    "    keep['all_str'] = all(type(k) is str for k in environ)\n"
    "    start_response('200 OK', [('Content-Type', 'application/json')])\n"
    "    return [json.dumps(keep, sort_keys=True).encode()]\n";

/* Runs environ_app for REQ and returns environ[KEY] as json.dumps shows it. */
static const char *
environ_value(struct qln_response *resp, const char *key)
{
    static char out[512];
    const char *p;
    char pat[128];
    size_t n;

    snprintf(pat, sizeof(pat), "\"%s\": ", key);
    p = resp->body ? strstr(resp->body, pat) : NULL;
    if (p == NULL)
        return NULL;
    p += strlen(pat);
    if (*p == '"') {
        for (n = 1; p[n] != '\0' && p[n] != '"'; n++)
            n += p[n] == '\\';
        n++;
    } else if (*p == '[') {
        n = strcspn(p, "]") + 1;
    } else {
        n = strcspn(p, ",}");
    }
    snprintf(out, sizeof(out), "%.*s", (int)n, p);
    return out;
}

#define ASSERT_ENV(resp, key, expect)                                                              \
    do {                                                                                           \
        const char *v_ = environ_value(&(resp), (key));                                            \
        ck_assert_msg(v_ != NULL && strcmp(v_, (expect)) == 0, "%s = %s, expected %s (%s)", (key), \
                      v_ ? v_ : "(absent)", (expect), (resp).body);                                \
    } while (0)

START_TEST(environ_request_line)
{
    void *t = load(environ_app);
    struct qln_request req = get("/a%20b/caf%C3%A9%zz?x=1&y=%20", "/a%20b/caf%C3%A9%zz");
    struct qln_response resp = {0};

    req.query = "x=1&y=%20";
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "REQUEST_METHOD", "\"GET\"");
    /* Decoded once, one latin-1 character per byte; a bad escape stays. */
    ASSERT_ENV(resp, "PATH_INFO", "\"/a b/caf\\u00c3\\u00a9%zz\"");
    ASSERT_ENV(resp, "QUERY_STRING", "\"x=1&y=%20\"");
    ASSERT_ENV(resp, "RAW_URI", "\"/a%20b/caf%C3%A9%zz?x=1&y=%20\"");
    ASSERT_ENV(resp, "SCRIPT_NAME", "\"\"");
    ASSERT_ENV(resp, "SERVER_PROTOCOL", "\"HTTP/1.1\"");
    ASSERT_ENV(resp, "SERVER_NAME", "\"127.0.0.1\"");
    ASSERT_ENV(resp, "SERVER_PORT", "\"8000\"");
    ASSERT_ENV(resp, "REMOTE_ADDR", "\"127.0.0.1\"");
    ASSERT_ENV(resp, "REMOTE_PORT", "\"40000\"");
    ASSERT_ENV(resp, "wsgi.url_scheme", "\"http\"");
    ASSERT_ENV(resp, "wsgi.version", "[1, 0]");
    ASSERT_ENV(resp, "wsgi.multithread", "false");
    ASSERT_ENV(resp, "wsgi.multiprocess", "true");
    ASSERT_ENV(resp, "wsgi.run_once", "false");
    ASSERT_ENV(resp, "wsgi.input_terminated", "true");
    ASSERT_ENV(resp, "input", "\"Input\"");
    ASSERT_ENV(resp, "all_str", "true");
    ck_assert_ptr_null(environ_value(&resp, "CONTENT_LENGTH"));
    ck_assert_ptr_null(environ_value(&resp, "CONTENT_TYPE"));
    ck_assert_ptr_null(environ_value(&resp, "PROXY_PROTOCOL"));
    ck_assert_ptr_null(environ_value(&resp, "PROXY_ADDR"));
    ck_assert_ptr_null(environ_value(&resp, "PROXY_PORT"));

    /* A second request on the same thread reuses the cached objects safely. */
    req = get("/", "/");
    req.minor = 0;
    req.method = "BREW";
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "REQUEST_METHOD", "\"BREW\"");
    ASSERT_ENV(resp, "SERVER_PROTOCOL", "\"HTTP/1.0\"");
    ASSERT_ENV(resp, "QUERY_STRING", "\"\"");

    /* Listeners take turns: each request has its own listener's port, more
       listeners than the plugin keeps templates for included, and the
       request before leaves nothing behind. */
    for (int i = 0; i < 14; i++) {
        static const char *const ports[] = {"8000", "8001", "8002", "8003", "8004", "8005", "8006"};
        char expect[16];

        req = get("/", "/");
        req.server_port = ports[(i * 3) % 7];
        ck_assert_int_eq(serve(t, &req, &resp), 0);
        snprintf(expect, sizeof(expect), "\"%s\"", req.server_port);
        ASSERT_ENV(resp, "SERVER_PORT", expect);
        ASSERT_ENV(resp, "SERVER_NAME", "\"127.0.0.1\"");
        ASSERT_ENV(resp, "SERVER_PROTOCOL", "\"HTTP/1.1\"");
        ASSERT_ENV(resp, "wsgi.url_scheme", "\"http\"");
    }
    /* A listener's name too long to keep a template for: set per request. */
    for (int i = 0; i < 2; i++) {
        req = get("/", "/");
        req.server_name = "a-listener-name-longer-than-the-plugin-keeps-for-its-templates.example";
        ck_assert_int_eq(serve(t, &req, &resp), 0);
        ASSERT_ENV(resp, "SERVER_NAME",
                   "\"a-listener-name-longer-than-the-plugin-keeps-for-its-templates.example\"");
        ASSERT_ENV(resp, "SERVER_PORT", "\"8000\"");
    }
    req = get("/", "/");

    /* After a PROXY protocol header: gunicorn's three keys. */
    req.proxy_proto = "TCP6";
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "PROXY_PROTOCOL", "\"TCP6\"");
    ASSERT_ENV(resp, "PROXY_ADDR", "\"2001:db8::1\"");
    ASSERT_ENV(resp, "PROXY_PORT", "\"443\"");
    ck_assert_ptr_null(environ_value(&resp, "HTTPS"));

    /* On a TLS connection: the session's variables, under the core's names,
       a name the plugin does not know included; values that change between
       requests are not taken from the last one. */
    static const char *const tls[] = {"HTTPS",
                                      "on",
                                      "SSL_PROTOCOL",
                                      "TLSv1.3",
                                      "SSL_CLIENT_S_DN",
                                      "CN=caf\xe9,O=Example",
                                      "SSL_NEW_ONE",
                                      "x",
                                      NULL};
    static const char *const tls12[] = {"HTTPS", "on", "SSL_PROTOCOL", "TLSv1.2", NULL};
    for (int i = 0; i < 2; i++) {
        req = get("/", "/");
        req.tls_vars = tls;
        ck_assert_int_eq(serve(t, &req, &resp), 0);
        ASSERT_ENV(resp, "HTTPS", "\"on\"");
        ASSERT_ENV(resp, "SSL_PROTOCOL", "\"TLSv1.3\"");
        ASSERT_ENV(resp, "SSL_CLIENT_S_DN", "\"CN=caf\\u00e9,O=Example\"");
        ASSERT_ENV(resp, "SSL_NEW_ONE", "\"x\"");
    }
    req = get("/", "/");
    req.tls_vars = tls12;
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "SSL_PROTOCOL", "\"TLSv1.2\"");
    ck_assert_ptr_null(environ_value(&resp, "SSL_CLIENT_S_DN"));
    req = get("/", "/");
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ck_assert_ptr_null(environ_value(&resp, "SSL_PROTOCOL"));
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(environ_headers)
{
    static const struct qln_header h[] = {
        {{"Host", 4}, {"example.org:8080", 16}}, {{"X-Dup", 5}, {"a", 1}},
        {{"user-agent", 10}, {"t\xe9st", 4}},    {{"x-dup", 5}, {"b", 1}},
        {{"X_Forwarded_For", 15}, {"spoof", 5}}, {{"Content-Type", 12}, {"text/plain", 10}},
        {{"Content-Length", 14}, {"3", 1}},      {{"X-Empty", 7}, {"", 0}},
    };
    void *t = load(environ_app);
    struct qln_request req = get("/", "/");
    struct qln_response resp = {0};

    req.method = "POST";
    req.headers = h;
    req.nheaders = sizeof(h) / sizeof(h[0]);
    req.body = "abc";
    req.body_len = 3;
    req.server_port = ""; /* a unix socket: SERVER_NAME/PORT come from Host */
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "HTTP_HOST", "\"example.org:8080\"");
    ASSERT_ENV(resp, "HTTP_X_DUP", "\"a,b\"");
    ASSERT_ENV(resp, "HTTP_USER_AGENT", "\"t\\u00e9st\"");
    ASSERT_ENV(resp, "HTTP_X_EMPTY", "\"\"");
    ASSERT_ENV(resp, "CONTENT_TYPE", "\"text/plain\"");
    ASSERT_ENV(resp, "CONTENT_LENGTH", "\"3\"");
    ASSERT_ENV(resp, "SERVER_NAME", "\"example.org\"");
    ASSERT_ENV(resp, "SERVER_PORT", "\"8080\"");
    /* Which names with '_' reach the app is the core's decision
       (--header-map); the plugin maps what it is given. */
    ASSERT_ENV(resp, "HTTP_X_FORWARDED_FOR", "\"spoof\"");
    ck_assert_ptr_null(environ_value(&resp, "HTTP_CONTENT_TYPE"));
    ck_assert_ptr_null(environ_value(&resp, "HTTP_CONTENT_LENGTH"));
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(environ_script_name)
{
    void *t;
    struct qln_request req = get("/mnt/x", "/mnt/x");
    struct qln_response resp = {0};

    setenv("SCRIPT_NAME", "/mnt", 1); /* read from the environment at load */
    t = load(environ_app);
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "SCRIPT_NAME", "\"/mnt\"");
    ASSERT_ENV(resp, "PATH_INFO", "\"/x\"");
    req = get("/other", "/other");
    ck_assert_int_eq(serve(t, &req, &resp), -EINVAL);
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "does not start with SCRIPT_NAME"));
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(environ_script_name_header)
{
    static const struct qln_header h[] = {{{"Script_Name", 11}, {"/api", 4}}};
    void *t = load(environ_app);
    struct qln_request req = get("/api/v1", "/api/v1");
    struct qln_response resp = {0};

    /* A SCRIPT_NAME header the core let through (a trusted proxy's
       forwarder_headers) sets SCRIPT_NAME, as gunicorn takes it. */
    req.headers = h;
    req.nheaders = 1;
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ASSERT_ENV(resp, "SCRIPT_NAME", "\"/api\"");
    ASSERT_ENV(resp, "PATH_INFO", "\"/v1\"");
    free(resp.body);
    unload(t);
}
END_TEST

/* ------------------------------------------------------------------ wsgi.input */

static const char input_app[] =
    "import json\n"
    "def app(environ, start_response):\n"
    "    inp = environ['wsgi.input']\n"
    "    how = environ['QUERY_STRING']\n"
    "    if how == 'readline':\n"
    "        out = [inp.readline(), inp.readline(3), inp.readline(-1), inp.readline(None)]\n"
    "        out.append(inp.read())\n"
    "    elif how == 'readlines':\n"
    "        out = inp.readlines()\n"
    "    elif how == 'hint':\n"
    "        out = inp.readlines(4) + [b'|'] + inp.readlines()\n"
    "    elif how == 'iter':\n"
    "        out = list(inp)\n"
    "    elif how == 'read':\n"
    "        out = [inp.read(2), inp.read(0), inp.readline(), inp.read(4), inp.read()]\n"
    "        out.append(inp.read())\n"
    "    else:\n"
    "        out = [inp.read()]\n"
    "    start_response('200 OK', [])\n"
    "    return [json.dumps([b.decode('latin-1') for b in out]).encode()]\n";

static void
check_input(void *t, const char *how, bool chunked, size_t piece, const char *expect)
{
    static const char body[] = "ab\ncdefg\n\nhij\nklm";
    struct qln_request req = get("/", "/");
    struct qln_response resp = {0};

    req.method = "POST";
    req.query = how;
    req.body = body;
    req.body_len = sizeof(body) - 1;
    req.chunked = chunked;
    req.piece = piece;
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    ck_assert_msg(resp.body && strcmp(resp.body, expect) == 0,
                  "%s chunked=%d piece=%zu: %s, expected %s", how, chunked, piece, resp.body,
                  expect);
    free(resp.body);
}

START_TEST(input_methods)
{
    void *t = load(input_app);
    size_t pieces[] = {0, 1, 3};
    size_t i;

    for (i = 0; i < 3; i++) {
        bool chunked = i == 2;

        check_input(t, "readline", chunked, pieces[i],
                    "[\"ab\\n\", \"cde\", \"fg\\n\", \"\\n\", \"hij\\nklm\"]");
        check_input(t, "readlines", chunked, pieces[i],
                    "[\"ab\\n\", \"cdefg\\n\", \"\\n\", \"hij\\n\", \"klm\"]");
        check_input(t, "hint", chunked, pieces[i],
                    "[\"ab\\n\", \"cdefg\\n\", \"|\", \"\\n\", \"hij\\n\", \"klm\"]");
        check_input(t, "iter", chunked, pieces[i],
                    "[\"ab\\n\", \"cdefg\\n\", \"\\n\", \"hij\\n\", \"klm\"]");
        check_input(t, "read", chunked, pieces[i],
                    "[\"ab\", \"\", \"\\n\", \"cdef\", \"g\\n\\nhij\\nklm\", \"\"]");
        check_input(t, "all", chunked, pieces[i], "[\"ab\\ncdefg\\n\\nhij\\nklm\"]");
    }
    unload(t);
}
END_TEST

START_TEST(input_large_body)
{
    static const char app[] =
        "import hashlib\n"
        "def app(environ, start_response):\n"
        "    data = environ['wsgi.input'].read()\n"
        "    start_response('200 OK', [])\n"
        "    return [b'%d %s' % (len(data), hashlib.sha256(data).hexdigest().encode())]\n";
    void *t = load(app);
    size_t len = 3 * 1024 * 1024 + 7, i;
    char *body = malloc(len);
    struct qln_request req = get("/", "/");
    struct qln_response resp = {0};
    char expect[128];
    PyGILState_STATE gs;
    PyObject *hashlib, *digest, *hex;

    for (i = 0; i < len; i++)
        body[i] = (char)(i * 7 + i / 251);
    req.method = "PUT";
    req.body = body;
    req.body_len = len;
    req.piece = 65521;
    req.chunked = true; /* unknown length: the result grows as data arrives */
    ck_assert_int_eq(serve(t, &req, &resp), 0);

    /* The main thread's token is detached: the GILState API still finds its state. */
    gs = PyGILState_Ensure();
    hashlib = PyImport_ImportModule("hashlib");
    digest = PyObject_CallMethod(hashlib, "sha256", "y#", body, (Py_ssize_t)len);
    hex = PyObject_CallMethod(digest, "hexdigest", NULL);
    snprintf(expect, sizeof(expect), "%zu %s", len, PyUnicode_AsUTF8(hex));
    Py_DECREF(hex);
    Py_DECREF(digest);
    Py_DECREF(hashlib);
    PyGILState_Release(gs);
    ASSERT_BODY(resp, expect);
    free(resp.body);
    free(body);
    unload(t);
}
END_TEST

START_TEST(input_error_raises_oserror)
{
    static const char app[] = "def app(environ, start_response):\n"
                              "    inp = environ['wsgi.input']\n"
                              "    first = inp.read(2)\n"
                              "    if environ['QUERY_STRING'] == 'catch':\n"
                              "        try:\n"
                              "            inp.read()\n"
                              "        except OSError as e:\n"
                              "            start_response('400 Bad Request', [])\n"
                              "            return [first + b' ' + str(e.errno).encode()]\n"
                              "    inp.read()\n"
                              "    start_response('200 OK', [])\n"
                              "    return [b'unreachable']\n";
    void *t = load(app);
    struct qln_request req = get("/up", "/up");
    struct qln_response resp = {0};
    char expect[32];

    req.method = "POST";
    req.body = "abcdef";
    req.body_len = 6;
    req.piece = 2;
    req.chunked = true;
    req.fail_at = 4;
    req.query = "catch";
    ck_assert_int_eq(serve(t, &req, &resp), 0);
    snprintf(expect, sizeof(expect), "ab %d", EIO);
    ASSERT_BODY(resp, expect);

    req.body_pos = 0;
    req.query = "";
    ck_assert_int_eq(serve(t, &req, &resp), QLN_EBADBODY);
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "Socket error processing request /up"));
    free(resp.body);
    unload(t);
}
END_TEST

/* ------------------------------------------------------------------ response */

static const char response_app[] =
    "import sys\n"
    "closed = []\n"
    "class Body:\n"
    "    def __init__(self, items, fail=False):\n"
    "        self.items, self.fail = items, fail\n"
    "    def __iter__(self):\n"
    "        yield from self.items\n"
    "        if self.fail:\n"
    "            raise RuntimeError('late failure')\n"
    "    def close(self):\n"
    "        closed.append(len(closed))\n"
    "def app(environ, start_response):\n"
    "    p = environ['PATH_INFO']\n"
    "    if p == '/write':\n"
    "        write = start_response('201 Created', [('X-A', '1')])\n"
    "        write(b'w1-')\n"
    "        write(bytearray(b'w2-'))\n"
    "        return [b'', b'r1', memoryview(b'-r2')]\n"
    "    if p == '/closed':\n"
    "        start_response('200 OK', [])\n"
    "        return [str(closed).encode()]\n"
    "    if p == '/late':\n"
    "        start_response('200 OK', [])\n"
    "        return Body([b'part'], fail=True)\n"
    "    if p == '/early':\n"
    "        start_response('200 OK', [])\n"
    "        return Body([], fail=True)\n"
    "    if p == '/excinfo':\n"
    "        start_response('200 OK', [('X-Old', '1')])\n"
    "        try:\n"
    "            1 / 0\n"
    "        except ZeroDivisionError:\n"
    "            start_response('503 Busy', [('X-New', '2')], sys.exc_info())\n"
    "        return [b'replaced']\n"
    "    if p == '/excinfo-late':\n"
    "        start_response('200 OK', [])(b'sent')\n"
    "        try:\n"
    "            1 / 0\n"
    "        except ZeroDivisionError:\n"
    "            start_response('500 Error', [], sys.exc_info())\n"
    "        return [b'never']\n"
    "    if p == '/twice':\n"
    "        start_response('200 OK', [])\n"
    "        start_response('200 OK', [])\n"
    "    if p == '/badvalue':\n"
    "        start_response('200 OK', [('X-Bad', 'a\\r\\nInjected: 1')])\n"
    "    if p == '/badname':\n"
    "        start_response('200 OK', [('Bad Name', 'x')])\n"
    "    if p == '/badstatus':\n"
    "        start_response('OK', [])\n"
    "    if p == '/notlatin1':\n"
    "        start_response('200 OK', [('X-A', '\\u20ac')])\n"
    "    if p == '/str':\n"
    "        start_response('200 OK', [])\n"
    "        return ['text']\n"
    "    if p == '/nostart':\n"
    "        return []\n"
    "    if p == '/keywords':\n"
    "        start_response(headers=[('X-K', '1')], status='202 Accepted', exc_info=None)\n"
    "        return [b'kw']\n"
    "    if p == '/noheaders':\n"
    "        start_response('200 OK')\n"
    "    if p == '/badkeyword':\n"
    "        start_response('200 OK', [], stauts=None)\n"
    "    if p == '/twovalues':\n"
    "        start_response('200 OK', [], status='200 OK')\n"
    "    if p == '/fourargs':\n"
    "        start_response('200 OK', [], None, None)\n"
    "    raise KeyError(p)\n";

static int
serve_path(void *t, const char *path, struct qln_response *resp)
{
    struct qln_request req = get(path, path);

    return serve(t, &req, resp);
}

START_TEST(response_write_and_iterable)
{
    void *t = load(response_app);
    struct qln_response resp = {0};

    ck_assert_int_eq(serve_path(t, "/write", &resp), 0);
    ck_assert_str_eq(resp.status, "201 Created");
    ck_assert_str_eq(resp.head, "X-A: 1\n");
    ASSERT_BODY(resp, "w1-w2-r1-r2");
    free(resp.body);
    resp = (struct qln_response){0};
    /* start_response's arguments by name, in any order. */
    ck_assert_int_eq(serve_path(t, "/keywords", &resp), 0);
    ck_assert_str_eq(resp.status, "202 Accepted");
    ck_assert_str_eq(resp.head, "X-K: 1\n");
    ASSERT_BODY(resp, "kw");
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(response_close_always_called)
{
    void *t = load(response_app);
    struct qln_response resp = {0};

    ck_assert_int_eq(serve_path(t, "/late", &resp), -EIO); /* head left: close the connection */
    ASSERT_BODY(resp, "part");
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "Error handling request /late"));
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "RuntimeError: late failure"));
    ck_assert_int_eq(serve_path(t, "/early", &resp), -EINVAL); /* nothing sent: a 500 */
    ck_assert_int_eq(serve_path(t, "/closed", &resp), 0);
    ASSERT_BODY(resp, "[0, 1]");
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(response_exc_info)
{
    void *t = load(response_app);
    struct qln_response resp = {0};

    ck_assert_int_eq(serve_path(t, "/excinfo", &resp), 0);
    ck_assert_str_eq(resp.status, "503 Busy");
    ck_assert_str_eq(resp.head, "X-New: 2\n");
    ASSERT_BODY(resp, "replaced");
    ck_assert_int_eq(serve_path(t, "/excinfo-late", &resp), -EIO);
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "ZeroDivisionError"));
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(response_invalid_is_500)
{
    static const struct {
        const char *path, *log;
    } cases[] = {
        {"/twice", "AssertionError: start_response() called a second time"},
        {"/badvalue", "ValueError: invalid header value"},
        {"/badname", "ValueError: invalid header name 'Bad Name'"},
        {"/badstatus", "ValueError: invalid status 'OK'"},
        {"/notlatin1", "is not latin-1"},
        {"/str", "TypeError: response body must be bytes, not str"},
        {"/nostart", "without calling start_response()"},
        {"/noheaders", "TypeError: start_response() missing required argument 'headers'"},
        {"/badkeyword", "TypeError: start_response() got an unexpected keyword argument 'stauts'"},
        {"/twovalues", "TypeError: start_response() got multiple values for argument 'status'"},
        {"/fourargs", "TypeError: start_response() takes at most 3 arguments (4 given)"},
        {"/missing", "KeyError: '/missing'"},
    };
    void *t = load(response_app);
    struct qln_response resp = {0};
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char line[128];

        mock_log_len = 0;
        mock_log_buf[0] = '\0';
        ck_assert_msg(serve_path(t, cases[i].path, &resp) == -EINVAL, "%s", cases[i].path);
        ck_assert_msg(!resp.sent, "%s sent a body", cases[i].path);
        snprintf(line, sizeof(line), "[%d] Error handling request %s\n", QLN_LOG_ERROR,
                 cases[i].path);
        ck_assert_msg(strstr(mock_log_buf, line) != NULL, "no '%s' in:\n%s", line, mock_log_buf);
        ck_assert_msg(strstr(mock_log_buf, cases[i].log) != NULL, "no '%s' in:\n%s", cases[i].log,
                      mock_log_buf);
    }
    free(resp.body);
    unload(t);
}
END_TEST

START_TEST(file_wrapper_sendfile)
{
    static const char app[] = "import io\n"
                              "def app(environ, start_response):\n"
                              "    if environ['PATH_INFO'] == '/real':\n"
                              "        f = open('data.bin', 'rb')\n"
                              "        f.read(3)\n"
                              "        start_response('200 OK', [('Content-Length', ' 5 ')])\n"
                              "    else:\n"
                              "        f = io.BytesIO(b'0123456789')\n"
                              "        f.seek(2)\n"
                              "        start_response('200 OK', [])\n"
                              "    return environ['wsgi.file_wrapper'](f, 3)\n";
    void *t = load(app);
    struct qln_response resp = {0};
    FILE *f = fopen("data.bin", "w");

    fputs("0123456789abcdef", f);
    fclose(f);
    ck_assert_int_eq(serve_path(t, "/real", &resp), 0);
    ASSERT_BODY(resp, "34567");
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "sendfile offset=3 count=5"));
    ck_assert_int_eq(serve_path(t, "/bytesio", &resp), 0);
    ASSERT_BODY(resp, "23456789");
    free(resp.body);
    unload(t);
}
END_TEST

/* ------------------------------------------------------------------ app loading */

START_TEST(load_errors)
{
    static const char src[] = "import os\n"
                              "notcallable = 42\n"
                              "nothing = None\n"
                              "class ns:\n"
                              "    @staticmethod\n"
                              "    def inner(environ, start_response):\n"
                              "        return []\n"
                              "def factory(name, n=1):\n"
                              "    assert (name, n) == ('prod', 3), (name, n)\n"
                              "    return ns.inner\n"
                              "def broken():\n"
                              "    raise ValueError('factory broke')\n";
    /* -ENOENT: not there (gunicorn's AppImportError, exit 4); -EINVAL: its code raised. */
    static const struct {
        const char *spec;
        int rc;
        const char *err;
    } cases[] = {
        {"nosuch", -ENOENT, "No module named 'nosuch'"},
        {"nosuch.sub:app", -ENOENT, "No module named 'nosuch'"},
        {"tapp", -ENOENT, "Failed to find attribute 'application' in 'tapp'."},
        {"tapp:nope", -ENOENT, "Failed to find attribute 'nope' in 'tapp'."},
        {"tapp:ns.nope", -ENOENT, "Failed to find attribute 'ns.nope' in 'tapp'."},
        {"tapp:notcallable", -ENOENT, "Application object must be callable."},
        {"tapp:nothing", -ENOENT, "Failed to find application object: 'nothing'"},
        {"tapp:1 +", -ENOENT, "Failed to parse '1 +' as an attribute name or function call."},
        {"tapp:factory(os)", -ENOENT, "Failed to parse arguments as literal values: 'factory(os)'"},
        {"tapp:broken()", -EINVAL, "ValueError: factory broke"},
        {"tapp.py:app", -ENOENT, "Failed to find application, did you mean 'tapp:app'?"},
        {"tapp:ns.inner", 0, ""},
        {"tapp:factory('prod', n=3)", 0, ""},
    };
    size_t i;

    write_app(src);
    init_plugin(NULL);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        int rc = ops->load_app(state, cases[i].spec, err, sizeof(err));

        ck_assert_msg(rc == cases[i].rc, "%s: rc %d (%s)", cases[i].spec, rc, err);
        ck_assert_msg(strcmp(err, cases[i].err) == 0, "%s: '%s', expected '%s'", cases[i].spec, err,
                      cases[i].err);
    }
    /* Only the factory's own exception came with a traceback. */
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "in broken\n    raise ValueError('factory broke')"));
    ck_assert_ptr_null(strstr(mock_log_buf, "nosuch"));
    unload(NULL);
}
END_TEST

START_TEST(load_import_error_inside_app)
{
    char err[512] = "";

    write_app("import not_installed_xyz\n");
    init_plugin(NULL);
    ck_assert_int_eq(ops->load_app(state, "tapp:app", err, sizeof(err)), -EINVAL);
    ck_assert_str_eq(err, "ModuleNotFoundError: No module named 'not_installed_xyz'");
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "Traceback (most recent call last)"));
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "tapp.py\", line 1"));
    unload(NULL);
}
END_TEST

START_TEST(load_pythonpath_and_argv)
{
    static const char src[] = "import sys, os, helper\n"
                              "def app(environ, start_response):\n"
                              "    start_response('200 OK', [])\n"
                              "    return [repr([sys.path[:3], sys.argv, helper.X]).encode()]\n";
    char expect[1200], cwd[512], err[256];
    struct qln_response resp = {0};
    void *t;
    FILE *f;

    write_app(src);
    ck_assert_int_eq(mkdir("lib1", 0700), 0);
    f = fopen("lib1/helper.py", "w");
    fputs("X = 'from lib1'\n", f);
    fclose(f);
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    init_plugin("lib1, /nowhere");
    ck_assert_msg(ops->load_app(state, "tapp:app", err, sizeof(err)) == 0, "%s", err);
    t = ops->thread_init(state);
    ck_assert_int_eq(serve_path(t, "/", &resp), 0);
    snprintf(expect, sizeof(expect), "[['%s/lib1', '/nowhere', '%s'], ['qilin'], 'from lib1']", cwd,
             cwd);
    ASSERT_BODY(resp, expect);
    free(resp.body);
    unload(t);
}
END_TEST

/* ------------------------------------------------------------------ threads */

static const char thread_app[] =
    "import threading\n"
    "local = threading.local()\n"
    "def app(environ, start_response):\n"
    "    local.n = getattr(local, 'n', 0) + 1\n"
    "    data = environ['wsgi.input'].read()\n"
    "    start_response('200 OK', [])\n"
    "    return [b'%d %s %s' % (local.n, data, str(environ['wsgi.multithread']).encode())]\n";

#define THREAD_REQUESTS 50

struct worker_thread {
    pthread_t id;
    const char *tag;
    int failures;
};

static void *
thread_main(void *arg)
{
    struct worker_thread *w = arg;
    void *t = ops->thread_init(state);
    int i;

    for (i = 1; i <= THREAD_REQUESTS; i++) {
        struct qln_request req = get("/", "/");
        struct qln_response resp = {0};
        char expect[64];

        req.method = "POST";
        req.body = w->tag;
        req.body_len = strlen(w->tag);
        req.piece = 1;
        req.ops = ops;
        req.token = t;
        snprintf(expect, sizeof(expect), "%d %s True", i, w->tag);
        if (ops->handle(state, t, &req, &resp) != 0 || !resp.body || strcmp(resp.body, expect))
            w->failures++;
        free(resp.body);
    }
    ops->thread_exit(state, t);
    return NULL;
}

/*
 * Two pool threads serve at once while reads "block" with the lock
 * released (blocking_enter/leave, as the core's poll waiter calls them):
 * each thread keeps its own threading.local, and wsgi.multithread is True.
 */
START_TEST(threads_serve_concurrently)
{
    struct worker_thread w[2] = {{.tag = "alpha"}, {.tag = "beta"}};
    void *main_token = load(thread_app);
    struct qln_response resp = {0};
    int i;

    for (i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&w[i].id, NULL, thread_main, &w[i]), 0);
    for (i = 0; i < 2; i++) {
        ck_assert_int_eq(pthread_join(w[i].id, NULL), 0);
        ck_assert_int_eq(w[i].failures, 0);
    }
    ck_assert_int_eq(serve_path(main_token, "/", &resp), 0);
    ASSERT_BODY(resp, "1  True");
    free(resp.body);
    unload(main_token);
}
END_TEST

/* ------------------------------------------------------------ gunicorn.conf.py */

/* Writes SRC as NAME in a fresh directory (the working directory) and runs
   load_config_state, which leaves the plugin state in STATE. */
static int
load_conf(const char *name, const char *src, char *err, size_t errlen)
{
    FILE *f;

    write_app("");
    f = fopen(name, "w");
    ck_assert_ptr_nonnull(f);
    fputs(src, f);
    fclose(f);
    ops = qilin_plugin.app;
    ctx = (struct qln_ctx){.workers = 2, .argc = 1, .argv = argv_};
    state = NULL;
    return ops->load_config_state(&ctx, &state, name, err, errlen);
}

START_TEST(conf_settings_and_hooks)
{
    void *conf_state;
    static const char src[] = "import multiprocessing, os\n"
                              "workers = multiprocessing.cpu_count() * 0 + 3\n"
                              "bind = '127.0.0.1:8000'\n"
                              "raw_env = ['A=1', 'B=2']\n"
                              "preload_app = True\n"
                              "worker_class = 'gunicorn.workers.gthread.ThreadWorker'\n"
                              "umask = 0o22\n"
                              "proxy_allow_ips = ('10.0.0.1',)\n"
                              "tmp_upload_dir = '/tmp/uploads'\n"
                              "logconfig_dict = {'version': 1}\n"
                              "helper_value = 17\n"
                              "loglevel = None\n"
                              "def on_starting(server):\n"
                              "    with open('mark', 'w') as f:\n"
                              "        f.write('%s %s %s' % (server.pid, server.proc_name,\n"
                              "                              server.num_workers))\n"
                              "def post_fork(server, worker):\n"
                              "    raise RuntimeError('hook broke')\n";
    const struct qln_hook_field sf[] = {
        {.key = "pid", .i = 42}, {.key = "workers", .i = 3}, {.key = "name", .s = "web"}};
    const struct qln_hook_field wf[] = {{.key = "pid", .i = 43}, {.key = "age", .i = 1}};
    const struct qln_hook_arg args[] = {{.f = sf, .n = 3}, {.f = wf, .n = 2}};
    char err[512] = "", mark[64] = "";
    FILE *f;

    ck_assert_msg(load_conf("gunicorn.conf.py", src, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(mock_set_buf,
                     "workers=3;bind=[127.0.0.1:8000];raw_env=[A=1,B=2];"
                     "preload_app=true;worker_class='gunicorn.workers.gthread.ThreadWorker';"
                     "umask='18';proxy_allow_from=[10.0.0.1];"
                     "tmp_upload_dir='/tmp/uploads'?;logconfig_dict='{'version': 1}';");
    ck_assert_uint_eq(mock_nhooks, 2);
    ck_assert_str_eq(mock_hooks[0].name, "on_starting");
    ck_assert_str_eq(mock_hooks[1].name, "post_fork");
    /* The master's init() adopts the state, and the interpreter, the file started. */
    ck_assert_ptr_nonnull(state);
    conf_state = state;
    ck_assert_int_eq(ops->init(&ctx, &state, err, sizeof(err)), 0);
    ck_assert_ptr_eq(state, conf_state);
    mock_hooks[0].fn(
        mock_hooks[0].data,
        &(struct qln_hook_call){.name = "on_starting", .ctx = &ctx, .args = args, .nargs = 1});
    f = fopen("mark", "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(mark, sizeof(mark), f));
    fclose(f);
    ck_assert_str_eq(mark, "42 web 3");
    mock_hooks[1].fn(
        mock_hooks[1].data,
        &(struct qln_hook_call){.name = "post_fork", .ctx = &ctx, .args = args, .nargs = 2});
    ck_assert_ptr_nonnull(strstr(mock_log_buf, "Hook post_fork failed: gunicorn.conf.py:18: "
                                               "RuntimeError: hook broke"));
    for (size_t i = 0; i < mock_nhooks; i++)
        mock_hooks[i].release(mock_hooks[i].data);
    unload(NULL);
}
END_TEST

START_TEST(conf_errors)
{
    static const struct {
        const char *name, *src;
        int rc;
        const char *err;
    } cases[] = {
        {"c.py", "workers = 2\nif True\n", -EINVAL, "c.py:2: SyntaxError: expected ':'"},
        {"c.py", "x = 1\n\nraise KeyError('k')\n", -EINVAL, "c.py:3: KeyError: 'k'"},
        {"c.py", "workers = [2]\n", -EINVAL, "c.py:1: setting 'workers' must be an int, got list"},
        {"c.py", "preload_app = 1\n", -EINVAL,
         "c.py:1: setting 'preload_app' must be True or False, got int"},
        {"c.conf", "workers = 2\n", -ENOTSUP, ""},
        {"python:no_such_conf_module", "", -EINVAL,
         "python:no_such_conf_module: ModuleNotFoundError: No module named 'no_such_conf_module'"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pid_t pid = fork();
        int status;

        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            char err[512] = "";
            int rc = load_conf(strncmp(cases[i].name, "python:", 7) == 0 ? "x.py" : cases[i].name,
                               cases[i].src, err, sizeof(err));

            if (strncmp(cases[i].name, "python:", 7) == 0)
                rc = ops->load_config_state(&ctx, &state, cases[i].name, err, sizeof(err));
            ck_assert_msg(rc == cases[i].rc, "case %zu: rc %d (%s)", i, rc, err);
            ck_assert_msg(strcmp(err, cases[i].err) == 0, "case %zu: '%s'", i, err);
            _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "case %zu failed", i);
    }
}
END_TEST

static Suite *
python_suite(void)
{
    Suite *s = suite_create("python3 plugin");
    TCase *tc = tcase_create("wsgi");

    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, environ_request_line);
    tcase_add_test(tc, environ_headers);
    tcase_add_test(tc, environ_script_name);
    tcase_add_test(tc, environ_script_name_header);
    tcase_add_test(tc, input_methods);
    tcase_add_test(tc, input_large_body);
    tcase_add_test(tc, input_error_raises_oserror);
    tcase_add_test(tc, response_write_and_iterable);
    tcase_add_test(tc, response_close_always_called);
    tcase_add_test(tc, response_exc_info);
    tcase_add_test(tc, response_invalid_is_500);
    tcase_add_test(tc, file_wrapper_sendfile);
    tcase_add_test(tc, load_errors);
    tcase_add_test(tc, load_import_error_inside_app);
    tcase_add_test(tc, load_pythonpath_and_argv);
    tcase_add_test(tc, threads_serve_concurrently);
    tcase_add_test(tc, conf_settings_and_hooks);
    tcase_add_test(tc, conf_errors);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(python_suite());
    int failed;

    mock_lock_held = PyGILState_Check; /* a read that waits must have released the GIL */
    unsetenv("SCRIPT_NAME");
    setenv("PYTHONDONTWRITEBYTECODE", "1", 1);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
