/*
 * Internals of the python3 app plugin, shared by its files and never
 * installed: the plugin state, the per-thread token, the per-request context,
 * the Python types and the helpers each file offers the others. Used in
 * workers, and in the master when preload_app is on. Everything here is
 * hidden (-fvisibility=hidden); the plugin exports only `qilin_plugin`.
 *
 * Locking rule for every function below that takes or returns a PyObject:
 * the caller holds the interpreter lock (the GIL) unless stated otherwise.
 */
#ifndef QILIN_PYW_PY_H
#define QILIN_PYW_PY_H

#include <Python.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <qilin/plugin.h>

/* One cached str built from a C string that often repeats (the listener's
   address, the peer's address): reused while the text is the same. */
struct pyw_strcache {
    char text[48];
    size_t len;
    PyObject *obj; /* new, or NULL */
};

/* The environ keys the plugin sets itself: X(field, key). */
#define PYW_KEYS(X)                                                                                \
    X(request_method, "REQUEST_METHOD")                                                            \
    X(script_name, "SCRIPT_NAME")                                                                  \
    X(path_info, "PATH_INFO")                                                                      \
    X(query_string, "QUERY_STRING")                                                                \
    X(raw_uri, "RAW_URI")                                                                          \
    X(content_type, "CONTENT_TYPE")                                                                \
    X(content_length, "CONTENT_LENGTH")                                                            \
    X(server_name, "SERVER_NAME")                                                                  \
    X(server_port, "SERVER_PORT")                                                                  \
    X(server_protocol, "SERVER_PROTOCOL")                                                          \
    X(remote_addr, "REMOTE_ADDR")                                                                  \
    X(remote_port, "REMOTE_PORT")                                                                  \
    X(proxy_protocol, "PROXY_PROTOCOL")                                                            \
    X(proxy_addr, "PROXY_ADDR")                                                                    \
    X(proxy_port, "PROXY_PORT")                                                                    \
    X(url_scheme, "wsgi.url_scheme")                                                               \
    X(input, "wsgi.input")                                                                         \
    X(multithread, "wsgi.multithread")                                                             \
    X(gunicorn_socket, "gunicorn.socket")

/* Those keys, interned once per interpreter (new references). */
struct pyw_keys {
#define PYW_KEY_FIELD(field, text) PyObject *field;
    PYW_KEYS(PYW_KEY_FIELD)
#undef PYW_KEY_FIELD
};

struct pyw_hkey; /* environ.c: the HTTP_* key cache entry */

/* The TLS variables the core names (qln_req_tls_var; environ.c lists them). */
#define PYW_NTLS_VARS 9

/* One TLS variable's key, made on first use, and its last value. */
struct pyw_tlsvar {
    PyObject *key; /* new, interned, or NULL */
    struct pyw_strcache value;
};

/* A template with one listener's SERVER_NAME, SERVER_PORT and url scheme. */
struct pyw_bound {
    char name[64], port[8], scheme[8];
    PyObject *tmpl; /* new, or NULL: an unused slot */
};

/* environ.c's state: the template and the cached keys and values. */
struct pyw_environ {
    PyObject *tmpl; /* new: the constant entries, copied per request */
    struct pyw_keys k;
    PyObject *script_name;       /* new: $SCRIPT_NAME as str ("" when unset) */
    PyObject *proto10, *proto11; /* new: "HTTP/1.0", "HTTP/1.1" */
    PyObject *http, *https;      /* new: url schemes */
    PyObject *empty;             /* new: "" */
    PyObject *methods[8];        /* new: the common methods, interned */
    struct pyw_strcache remote_addr, remote_port;
    struct pyw_hkey *hkeys; /* open-addressing table, environ.c */
    size_t nhkeys;
    struct pyw_tlsvar tls[PYW_NTLS_VARS]; /* the TLS variables' keys and values */
    struct pyw_bound bound[4];            /* the listeners served lately */
    unsigned bound_next;                  /* the slot a new listener takes */
};

/* The interface of the loaded app: how handle() calls it. */
enum pyw_iface {
    PYW_WSGI = 0,  /* PEP 3333 */
    PYW_ASGI3 = 1, /* app(scope, receive, send) is a coroutine */
    PYW_ASGI2 = 2, /* app(scope) returns an instance; instance(receive, send) is a coroutine */
};

/* asgi.c's state: the worker's loop (qilin.asgi.attach) and the cached objects. */
struct pyw_asgi {
    PyObject *loop;          /* new: the running event loop, or NULL outside the asyncio worker */
    PyObject *hub_switch;    /* new: the hub greenlet's switch */
    PyObject *getcurrent;    /* new: greenlet.getcurrent */
    PyObject *create_task;   /* new: loop.create_task */
    PyObject *create_future; /* new: loop.create_future */
    PyObject *call_soon;     /* new: loop.call_soon */
    PyObject *add_reader;    /* new: loop.add_reader */
    PyObject *remove_reader; /* new: loop.remove_reader */
    PyObject *done;          /* new: a finished future whose result is None */
    PyObject *state;         /* new: the lifespan state, copied into each scope; or NULL */
    PyObject *root_path;     /* new: root_path as str */
    PyObject *asgi_version;  /* new: scope["asgi"] */
    PyObject *extensions;    /* new: scope["extensions"] */
    PyObject *http10, *http11, *http, *https;
    PyObject *k_type, *k_asgi, *k_http_version, *k_server, *k_client, *k_scheme, *k_method,
        *k_root_path, *k_path, *k_raw_path, *k_query_string, *k_headers, *k_state, *k_extensions,
        *k_body, *k_more_body, *k_status, *k_path_send;
    PyObject *t_http_request, *t_http_disconnect, *t_response_start, *t_response_body, *t_pathsend;
    PyObject *s_switch, *s_add_done_callback, *s_set_result, *s_cancel, *s_cancelled, *s_exception,
        *s_done;
    /* WebSocket */
    PyObject *websocket, *ws, *wss, *ws_extensions, *sha1, *b64;
    PyObject *k_subprotocols, *k_subprotocol, *k_code, *k_reason, *k_text, *k_bytes;
    PyObject *t_ws_connect, *t_ws_receive, *t_ws_disconnect, *t_ws_accept, *t_ws_send, *t_ws_close,
        *t_ws_http_start, *t_ws_http_body;
};

/* The plugin's state, one per process (what init() stores for the core). */
struct pyw_state {
    struct qln_ctx *ctx;      /* borrowed from the core */
    pid_t master_pid;         /* init() runs in the master */
    bool multiprocess;        /* workers > 1: wsgi.multiprocess */
    bool multithread;         /* a thread other than the main one serves: wsgi.multithread */
    bool initialised;         /* the interpreter exists in this process */
    bool conf_started;        /* it was started in the master for gunicorn.conf.py (conf.c) */
    PyObject *conf_helper;    /* qilin.conf's namespace, once a config file ran (conf.c) */
    struct qln_ctx *conf_ctx; /* the live configuration hooks read server.cfg from (conf.c) */
    bool conf_loaded;         /* a config file ran: the next load is a HUP's, which re-imports */

    /* The main thread's interpreter state while it is detached (load_app and
       the fork hooks leave it so), and that thread; a thread token may own it. */
    PyThreadState *main_ts;
    pthread_t main_thread;
    bool main_ts_taken;

    PyObject *app;         /* new: the WSGI or ASGI callable */
    enum pyw_iface iface;  /* how handle() calls it */
    struct pyw_asgi asgi;  /* asgi.c */
    PyObject *broken_file; /* new: --reload, the app's file with a SyntaxError; or NULL */

    /* Immediate stop (interrupt.c): the main thread's depth in handle() with
       a thread token (not a green worker's), and whether an INT or QUIT asked
       the app code to give up. */
    int main_in_handle;
    volatile sig_atomic_t interrupted;
    /* --log-config and friends, and --logger-class (errors.c): the core's
       error and access lines go to qilin.logconf's functions while SINK_ON;
       off around a fork. LOGCONFIG_ON in both cases. */
    bool logconfig_on;
    volatile bool sink_on;
    bool logger_on;                   /* --logger-class: an instance of it takes the lines */
    PyObject *logger_class;           /* new: logger_class = SomeClass in gunicorn.conf.py */
    PyObject *log_error, *log_access; /* new */
    PyObject *log_reopen;             /* new */
    PyObject *log_mod, *log_sig;      /* new: qilin.logconf, and what it was applied from */
    struct qln_logger logger;
    PyObject *format_exception; /* new: traceback.format_exception */
    PyObject *errors;           /* new: the wsgi.errors stream */
    PyObject *fh_dump;          /* new: faulthandler.dump_traceback, for on_abort */
    PyObject *fh_args;          /* new: (log fd, True) */
    struct pyw_environ env;
};

/*
 * The token thread_init() returns for one serving thread. HELD and BLOCKED
 * are touched only by the owning thread: HELD while it runs app code inside
 * handle(), BLOCKED while blocking_enter() has released the lock for it.
 */
struct pyw_thread {
    PyThreadState *ts;
    pthread_t thread;
    bool own_gilstate; /* attached with PyGILState_Ensure (not the main thread) */
    PyGILState_STATE gs;
    bool held;
    bool blocked;
    PyObject *input; /* new: wsgi.input object reused while nobody else holds it */
    PyObject *sock;  /* new: gunicorn.socket, the same rule */
    PyObject *sr;    /* new: start_response object, same rule */
};

/* One request being served; lives on handle()'s stack. */
struct pyw_request {
    struct pyw_state *st;
    struct qln_request *req;
    struct qln_response *resp;
    bool started;           /* start_response() succeeded */
    int64_t content_length; /* the app's Content-Length header, -1 when absent */
    int io_error;           /* the last failed core read/write (negative), 0 if none */
    bool body_error;        /* io_error came from reading the request body */
};

/* ---------------------------------------------------------------- python.c */

/* calloc that aborts (through qln_assert) when memory is exhausted. */
void *pyw_calloc(size_t n, size_t size);

/* ------------------------------------------------------------------- conf.c */

/*
 * load_config_state (ABI 1.4): runs the Python config file LOCATION
 * (PATH.py, file:PATH, python:MODULE), starting the interpreter in the
 * master if need be in the plugin state *STATE (made when NULL, and adopted
 * by init()), and sets its settings and hooks through CTX. Returns 0,
 * -ENOTSUP (not Python), -ENOENT (no such file) or -EINVAL with ERR
 * "FILE:LINE: message". Master only; the main thread ends detached
 * (st->main_ts), as after load_app.
 */
int pyw_load_config(struct qln_ctx *ctx, void **state, const char *location, char *err,
                    size_t errlen);
/* Defines the modules qilin._conf and qilin.conf (the Config, Request and
   Response objects hooks and --logger-class get). 0, or -1 with a Python error. */
int pyw_conf_helpers(struct pyw_state *st);
/* (uri, version, headers) of REQ as gunicorn's Request has them: header
   names upper-cased. New reference, or NULL with an exception set. */
PyObject *pyw_request_head(const struct qln_request *req);
/* The request's WSGI environ, rebuilt after it was served (wsgi.input and
   gunicorn.socket are None), for post_request and --logger-class. New. */
PyObject *pyw_request_environ(struct pyw_state *st, const struct qln_request *req);
/*
 * os.environ made anew from the C environment: an interpreter started for the
 * config file predates the core's --env (raw_env) and HUP's changes. 0 or -1
 * (exception set).
 */
int pyw_conf_sync_environ(struct pyw_state *st);

/* ---------------------------------------------------------------- service.c */

/* Offers "python3.embed" v1 for ST (from init, once per process).
   Returns 0 or -errno with ERR set. */
int pyw_service_register(struct pyw_state *st, char *err, size_t errlen);

/* ---------------------------------------------------------------- modules.c */

/*
 * Makes the module NAME ("qilin.LEAF"; the package "qilin" too if missing)
 * in sys.modules, replacing any earlier one: the C functions METHODS (NULL,
 * or an array ending in a zeroed entry; they must outlive the interpreter)
 * go in first, then SOURCE (Python text, or NULL) runs in it as the file
 * PATH. New reference to the module, or NULL with a Python error.
 */
PyObject *pyw_module_define(const char *name, const char *path, const char *source,
                            PyMethodDef *methods);

/* -------------------------------------------------------------------- app.c */

/*
 * Initialises the interpreter in this process (PyConfig: python config, not
 * isolated, no signal handlers, sys.argv = qilin's argv), then the plugin's
 * types and helpers. Returns 0 or -EINVAL with ERR set. st->initialised
 * says whether the interpreter exists; when it does, the calling thread
 * holds its lock, even after a failure in the later steps.
 */
int pyw_interp_init(struct pyw_state *st, char *err, size_t errlen);

/*
 * Prepends the working directory and --pythonpath to sys.path, imports the
 * app named by SPEC ("module", "module:name", "module:a.b",
 * "module:factory(args)") and stores it in st->app. Returns 0 or -EINVAL
 * with ERR one line (gunicorn's wording); an exception raised by the app's
 * own code is also logged with its traceback.
 */
int pyw_app_load(struct pyw_state *st, const char *spec, char *err, size_t errlen);
/*
 * sys.path becomes [pythonpath entries in the given order, cwd, ...]: gunicorn
 * inserts the working directory, then each --pythonpath entry (made
 * absolute) in front of it. Entries already present stay where they are, so
 * a second call changes nothing. 0, or -1 with a Python error.
 */
int pyw_sys_path_init(struct pyw_state *st);

/* ---------------------------------------------------------------- environ.c */

/* A str for S (LEN bytes, latin-1), reused while the text stays the same. New reference. */
PyObject *pyw_strcache_get(struct pyw_strcache *c, const char *s, size_t len);
/* The request method as str, interned for the common ones. New reference. */
PyObject *pyw_method_object(struct pyw_environ *e, struct qln_slice m);
/* "http" or "https" (cached), or S. New reference. */
PyObject *pyw_scheme_object(struct pyw_environ *e, const char *s);
/* Percent-decodes SRC into DST (at least LEN bytes) as urllib's unquote_to_bytes. */
size_t pyw_unquote(char *dst, const char *src, size_t len);

/* Builds the keys, cached values and the template. Returns 0 or -1 (exception set). */
int pyw_environ_init(struct pyw_state *st);
/* Drops every object environ.c holds (before Py_FinalizeEx). */
void pyw_environ_fini(struct pyw_state *st);
/* Sets wsgi.multithread to True in the template (a second serving thread appeared). */
void pyw_environ_set_multithread(struct pyw_state *st);
/*
 * Returns a new environ dict for REQ with INPUT as wsgi.input and SOCK as
 * gunicorn.socket, or NULL with an exception set (e.g. the path does not
 * start with SCRIPT_NAME).
 */
PyObject *pyw_environ_build(struct pyw_state *st, struct qln_request *req, PyObject *input,
                            PyObject *sock);

/* ------------------------------------------------------------------- asgi.c */

/*
 * Checks the ASGI settings (interface, asgi_loop, asgi_lifespan) in the
 * master: 0, or -EINVAL with ERR one line naming the setting and the choices.
 */
int pyw_asgi_check_settings(struct qln_ctx *ctx, char *err, size_t errlen);
/* Makes the module qilin.asgi (asgi.c and qilin/asgi.py). 0 or -1 with a Python error. */
int pyw_asgi_init(struct pyw_state *st);
/* Drops asgi.c's objects (before Py_FinalizeEx). */
void pyw_asgi_fini(struct pyw_state *st);
/*
 * After the app loaded: sets st->iface (--interface, or detected: a coroutine
 * function, or an object whose __call__ is one, is ASGI 3) and checks it
 * against the worker class. 0, or -EINVAL with ERR one line.
 */
int pyw_asgi_detect(struct pyw_state *st, const char *spec, char *err, size_t errlen);
/* handle() for an ASGI app: runs one HTTP request as a Task on the worker's loop. */
int pyw_asgi_serve(struct pyw_state *st, struct qln_request *req, struct qln_response *resp);

/* ------------------------------------------------------------------ input.c */

extern PyTypeObject pyw_input_type;
/* Returns a new wsgi.input object bound to no request. */
PyObject *pyw_input_new(void);
/* Binds IN to RQ (borrowed until pyw_input_detach) and resets its buffer. */
void pyw_input_attach(PyObject *in, struct pyw_request *rq);
/* Unbinds IN: later reads raise ValueError. */
void pyw_input_detach(PyObject *in);

/* --------------------------------------------------------- start_response.c */

extern PyTypeObject pyw_start_response_type;
extern PyTypeObject pyw_write_type;
/* Returns a new start_response callable bound to no request. */
PyObject *pyw_start_response_new(void);
/* True when SR and its write() callable are referenced only by the caller. */
bool pyw_start_response_unshared(PyObject *sr);
/* Binds SR (and its write callable) to RQ, or unbinds them when RQ is NULL. */
void pyw_start_response_bind(PyObject *sr, struct pyw_request *rq);
/*
 * Sends the app's RESULT (an iterable of bytes, or a wsgi.file_wrapper) and
 * always calls RESULT.close() when it has one. Returns 0; -1 with a Python
 * exception set when the app failed; or a negative errno (rq->io_error, no
 * exception) when the core could not send.
 */
int pyw_response_send(struct pyw_request *rq, PyObject *result);
/* Sends LEN bytes of body; a failure is recorded in rq->io_error and returned. */
int pyw_response_write(struct pyw_request *rq, const void *buf, size_t len);

/* ------------------------------------------------------------ filewrapper.c */

extern PyTypeObject pyw_filewrapper_type;
/*
 * Sends a wsgi.file_wrapper over a real file with qln_resp_sendfile, from the
 * file's current position (up to the app's Content-Length). Returns 0 when
 * sent, 1 when FW's file has no usable descriptor (the caller iterates it),
 * -1 with an exception set, or a negative errno (rq->io_error).
 */
int pyw_filewrapper_send(struct pyw_request *rq, PyObject *fw);

/* ----------------------------------------------------------------- errors.c */

extern PyTypeObject pyw_errors_type;
/* Imports traceback and faulthandler and makes the wsgi.errors stream. 0 or -1. */
int pyw_errors_init(struct pyw_state *st);
/*
 * Gives the "gunicorn.error" and "gunicorn.access" Python loggers handlers
 * that write to qilin's error and access logs (errors.c). 0, or -1 with a
 * Python error.
 */
int pyw_loggers_init(void);
/*
 * In a worker, on the main thread: makes the Python-level handler of SIGINT
 * raise SystemExit while the main thread is inside handle(), keeping the
 * core's handler for the signal itself (interrupt.c). 0 or -1 with a Python
 * error.
 */
int pyw_interrupt_init(struct pyw_state *st);
/* The app hook interrupt(): from the core's INT/QUIT handler. Async-signal-safe. */
void pyw_interrupt(void *state);
/*
 * The pending exception is SystemExit or KeyboardInterrupt, raised in a
 * request: the application ends this worker, as under gunicorn (or the
 * INT/QUIT interruption did). Logs why, asks the core to end the worker
 * with the exit status Python would have, clears the exception and
 * returns QLN_ESTOP; returns 0 for any other exception (left pending).
 */
int pyw_exit_request(struct pyw_state *st, const char *target, size_t len);
/* Drops errors.c's objects (before Py_FinalizeEx). */
void pyw_errors_fini(struct pyw_state *st);
/*
 * Logs one line (FMT) at LEVEL, then the current exception's traceback
 * verbatim, and clears the exception. Does nothing but clear it below the
 * log level.
 */
void pyw_log_exception(struct pyw_state *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* environ["gunicorn.socket"] (sockref.c): a read-only view of a connection's socket. */
extern PyTypeObject pyw_sockref_type;
/* A detached view: new reference, or NULL with a Python error. */
PyObject *pyw_sockref_new(void);
/* Points SOCKREF at FD (-1: detached, its methods then raise OSError). */
void pyw_sockref_attach(PyObject *sockref, int fd);

/* The traceback of EXC as traceback.format_exception prints it: new bytes, or NULL. */
PyObject *pyw_format_exception(struct pyw_state *st, PyObject *exc);
/* Takes the current exception out (normalised, traceback attached): new or NULL. */
/*
 * --log-config, --log-config-json, logconfig_dict: configures Python's
 * logging and makes it take the core's error and access lines; or
 * --logger-class: an instance of the class takes them. Nothing when none is
 * set. Lock held. 0, or -EINVAL with one line in ERR.
 */
int pyw_logconf_init(struct pyw_state *st, char *err, size_t errlen);
/* True when one of them is set in CTX. */
bool pyw_logconf_wanted(const struct qln_ctx *ctx);
/*
 * Master, before a fork: after a HUP that changed the settings or the
 * files they name, applies the new configuration, or keeps the old one
 * with one error line. Lock held.
 */
void pyw_logconf_check(struct pyw_state *st);

PyObject *pyw_err_fetch(void);
/* Makes EXC (stolen; NULL: nothing) the current exception again. */
void pyw_err_restore(PyObject *exc);
/* Writes "Type: message" of the current exception into ERR; the exception stays set. */
void pyw_exception_line(char *err, size_t errlen);
/* Raises OSError for the core error RC (a negative errno or QLN_E*); returns NULL. */
PyObject *pyw_raise_io(int rc);
/*
 * SIGABRT path: dumps every thread's Python stack to the error log with
 * faulthandler. May run in a signal handler: it allocates nothing and takes
 * the lock only when this thread is known to the interpreter.
 */
void pyw_abort_dump(struct pyw_state *st);

#endif
