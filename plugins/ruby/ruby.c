/*
 * App plugin `ruby` (alias `rack`): embeds libruby and serves Rack apps.
 *
 *   qilin --plugin ruby config.ru
 *
 * The app spec is a rackup file, loaded with Rack::Builder.parse_file in
 * the process that serves (each worker, or the master with --preload).
 * Each request becomes a Rack env Hash (the Rack SPEC's keys, the headers
 * as HTTP_*), app.call(env) runs under rb_protect, and the answer [status,
 * headers, body] goes out through the core's qln_resp_*: body.each's
 * strings are written as they come, a body that responds to to_path is
 * sent with sendfile, and body.close is always called. rack.input streams
 * the request body from the connection (Qilin::Input, below) behind
 * Rack::RewindableInput, which spools it to a Tempfile on first use as Rack
 * expects of a rewindable input.
 *
 * On -k sync the VM lives on the worker's main thread; on -k gthread on a
 * thread of its own with --threads Ruby threads (see "-k gthread" below).
 * Green and asyncio workers are refused at startup.
 */
/* Ruby's config.h defines the __STDC_WANT_* macros unconditionally, and
   qlnconfig.h only where they are not yet defined: Ruby comes first. */
#include <ruby.h>
#include <ruby/encoding.h>
#include <ruby/thread.h>
#include <ruby/version.h>

#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qilin/plugin.h>

#define RB_STR2(x) #x
#define RB_STR(x) RB_STR2(x)
#define RB_API_VERSION RB_STR(RUBY_API_VERSION_MAJOR) "." RB_STR(RUBY_API_VERSION_MINOR)

/* Response headers kept on the stack; more are allocated. */
#define RB_STACK_HEADERS 32
/* The most bytes Qilin::Input#read without a length reads at once. */
#define INPUT_CHUNK (64 * 1024)

/*
 * The env's per-request keys, and some of its values, as frozen Strings made
 * once: a frozen String key goes into a Hash as it is, where a new one
 * would be allocated and then copied by Hash#[]= on every request.
 */
enum rb_str_id {
    S_REQUEST_METHOD,
    S_PATH_INFO,
    S_QUERY_STRING,
    S_REQUEST_URI,
    S_SERVER_PROTOCOL,
    S_REMOTE_ADDR,
    S_SERVER_NAME,
    S_SERVER_PORT,
    S_URL_SCHEME,
    S_INPUT,
    S_HTTP_HOST,
    S_FINISHED,
    S_HTTP,
    S_HTTP10,
    S_HTTP11,
    S_COUNT
};

static const char *const rb_str_text[S_COUNT] = {
    [S_REQUEST_METHOD] = "REQUEST_METHOD",
    [S_PATH_INFO] = "PATH_INFO",
    [S_QUERY_STRING] = "QUERY_STRING",
    [S_REQUEST_URI] = "REQUEST_URI",
    [S_SERVER_PROTOCOL] = "SERVER_PROTOCOL",
    [S_REMOTE_ADDR] = "REMOTE_ADDR",
    [S_SERVER_NAME] = "SERVER_NAME",
    [S_SERVER_PORT] = "SERVER_PORT",
    [S_URL_SCHEME] = "rack.url_scheme",
    [S_INPUT] = "rack.input",
    [S_HTTP_HOST] = "HTTP_HOST",
    [S_FINISHED] = "rack.response_finished",
    [S_HTTP] = "http",
    [S_HTTP10] = "HTTP/1.0",
    [S_HTTP11] = "HTTP/1.1",
};

struct rb_state {
    bool vm;              /* the Ruby VM runs in this process */
    bool multiprocess;    /* workers > 1: rack.multiprocess */
    VALUE app;            /* the Rack app (a GC root once loaded) */
    VALUE env_base;       /* the env keys every request shares (a GC root) */
    VALUE cInput;         /* Qilin::Input */
    VALUE cRewindable;    /* Rack::RewindableInput */
    VALUE cHijackIO;      /* Qilin::HijackIO */
    VALUE cStream;        /* Qilin::Stream */
    VALUE hijack;         /* env['rack.hijack']: a Qilin::Hijack, the same for every request */
    VALUE errors;         /* rack.errors: a Qilin::Errors */
    VALUE str[S_COUNT];   /* rb_str_text's Strings, frozen (GC roots) */
    char *rackup;         /* the rackup file's path, for --reload */
    bool threaded;        /* -k gthread: Ruby runs on threads of its own (below) */
    unsigned nthreads;    /* --threads: the Ruby threads that serve */
    struct rb_pool *pool; /* threaded only */
};

/* The one state of this process; Ruby's callbacks reach it from here. */
static struct rb_state *rb_st;

/* What one request's Ruby code needs: passed through rb_protect. */
struct rb_call {
    struct rb_state *st;
    struct qln_request *req;
    struct qln_response *resp;
    VALUE body;   /* the response body, to close */
    VALUE input;  /* the Qilin::Input under rack.input */
    VALUE rinput; /* the Rack::RewindableInput around it */
    VALUE env;
    VALUE hijack_io;       /* the Qilin::HijackIO once the app hijacked, else nil */
    bool full_hijack;      /* env['rack.hijack'] was called: the app writes the answer */
    VALUE hijack_proc;     /* the response's rack.hijack callable, else nil */
    VALUE lines;           /* the answer's header lines (head_pair's) */
    VALUE status, headers; /* the app's, once it answered; for rack.response_finished */
    VALUE finished;        /* env['rack.response_finished'] */
    bool client_gone;      /* a streaming body's write failed: what it raised is not the app's */
    int rc;                /* the core's return code for handle() */
};

/* The request this thread serves: env['rack.hijack'] is one object for all. */
static __thread struct rb_call *rb_current;

/* ------------------------------------------------------------ non-local exits */

/*
 * Ruby raises and breaks out of blocks with longjmp, from libruby, which
 * AddressSanitizer does not see: the frames of this file it jumps over
 * keep their stack poisoned, and a later call that reuses that stack is
 * reported as an overflow. Where such a jump lands back in this file, the
 * stack below is unpoisoned (what ASan does itself before a longjmp it
 * intercepts). Nothing in other builds.
 */
#if defined(__SANITIZE_ADDRESS__)
#define QLN_RUBY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define QLN_RUBY_ASAN 1
#endif
#endif
#ifdef QLN_RUBY_ASAN
#include <sanitizer/asan_interface.h>
#define landed() __asan_handle_no_return()
#else
#define landed() ((void)0)
#endif

/* rb_protect, for this file: a raise that it caught has jumped here. */
static VALUE
protect(VALUE (*func)(VALUE), VALUE arg, int *state)
{
    VALUE r = rb_protect(func, arg, state);

    if (*state != 0)
        landed();
    return r;
}

/* ------------------------------------------------------------ errors */

static VALUE
backtrace_of(VALUE exc)
{
    return rb_funcall(exc, rb_intern("backtrace"), 0);
}

/*
 * Logs Ruby's pending exception (rb_errinfo) at LEVEL after WHAT: its class,
 * message and backtrace, one log record, as the Python plugin logs a
 * traceback. Clears it.
 */
static void
log_exception(int level, const char *what)
{
    VALUE exc = rb_errinfo();
    VALUE msg, bt, line;
    int state = 0;
    long i;

    rb_set_errinfo(Qnil);
    if (NIL_P(exc)) {
        qln_log(level, "%s", what);
        return;
    }
    msg = protect(rb_obj_as_string, exc, &state);
    if (state != 0) {
        rb_set_errinfo(Qnil);
        msg = rb_str_new_cstr("(message not printable)");
    }
    bt = protect(backtrace_of, exc, &state);
    if (state != 0) {
        rb_set_errinfo(Qnil);
        bt = Qnil;
    }
    line = rb_sprintf("%s\n%" PRIsVALUE ": %" PRIsVALUE, what, rb_obj_class(exc), msg);
    if (RB_TYPE_P(bt, T_ARRAY))
        for (i = 0; i < RARRAY_LEN(bt); i++)
            rb_str_catf(line, "\n  %" PRIsVALUE, RARRAY_AREF(bt, i));
    qln_log(level, "%.*s", (int)RSTRING_LEN(line), RSTRING_PTR(line));
}

/* Qilin.log(level, line): rack.errors' way into the error log. */
static VALUE
m_log(VALUE self, VALUE level, VALUE line)
{
    StringValue(line);
    qln_log(NUM2INT(level), "%.*s", (int)RSTRING_LEN(line), RSTRING_PTR(line));
    return Qnil;
}

/* ------------------------------------------------------------ the core's waits */

/*
 * The core's calls that may wait for the client. With -k gthread they are
 * made without Ruby's lock (rb_thread_call_without_gvl), so the other Ruby
 * threads run meanwhile; under -k sync there is no other thread to let run.
 */
enum io_kind { IO_READ, IO_WRITE, IO_SENDFILE };

struct io_call {
    enum io_kind kind;
    struct qln_request *req;
    struct qln_response *resp;
    void *buf;
    size_t len;
    int fd;
    ssize_t r;
};

static void *
io_nogvl(void *arg)
{
    struct io_call *a = arg;

    switch (a->kind) {
    case IO_READ:
        a->r = qln_req_read(a->req, a->buf, a->len);
        break;
    case IO_WRITE:
        a->r = qln_resp_write(a->resp, a->buf, a->len);
        break;
    case IO_SENDFILE:
        a->r = qln_resp_sendfile(a->resp, a->fd, 0, -1);
        break;
    }
    return NULL;
}

static ssize_t
io_run(struct io_call *a)
{
    if (rb_st != NULL && rb_st->threaded)
        rb_thread_call_without_gvl(io_nogvl, a, NULL, NULL);
    else
        io_nogvl(a);
    return a->r;
}

/* ------------------------------------------------------------ rack.input */

/*
 * Qilin::Input: the request body, read from the connection as it is asked
 * for (IO#read's contract: read(n) is nil at the end, read() is ""). The
 * app sees it through Rack::RewindableInput, which only calls read, and
 * gives the app gets, each and rewind. Valid only during its request;
 * afterwards it reads as an empty body.
 */
struct input {
    struct qln_request *req;
    bool eof;
    int err; /* a read failed: -errno */
};

static const rb_data_type_t input_type = {
    .wrap_struct_name = "Qilin::Input",
    .function = {.dfree = RUBY_TYPED_DEFAULT_FREE},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE
input_alloc(VALUE klass)
{
    struct input *in;

    return TypedData_Make_Struct(klass, struct input, &input_type, in);
}

/* Appends up to WANT bytes (all when WANT < 0) of the body to STR; the count. */
static long
input_fill(struct input *in, VALUE str, long want)
{
    char buf[INPUT_CHUNK];
    long got = 0;
    ssize_t n;

    while (!in->eof && in->req != NULL && (want < 0 || got < want)) {
        size_t ask = want < 0 || want - got > INPUT_CHUNK ? INPUT_CHUNK : (size_t)(want - got);

        n = io_run(&(struct io_call){.kind = IO_READ, .req = in->req, .buf = buf, .len = ask});
        if (n <= 0) {
            in->eof = true;
            if (n < 0) {
                in->err = (int)n;
                rb_raise(rb_eIOError, "reading the request body: %s", qln_strerror((int)n));
            }
            break;
        }
        rb_str_cat(str, buf, n);
        got += n;
    }
    return got;
}

/* read([length[, outbuf]]) */
static VALUE
input_read(int argc, VALUE *argv, VALUE self)
{
    struct input *in;
    VALUE vlen, out;
    long len = -1;

    TypedData_Get_Struct(self, struct input, &input_type, in);
    rb_scan_args(argc, argv, "02", &vlen, &out);
    if (!NIL_P(vlen)) {
        len = NUM2LONG(vlen);
        if (len < 0)
            rb_raise(rb_eArgError, "negative length %ld given", len);
    }
    if (NIL_P(out)) {
        out = rb_str_buf_new(len > 0 && len < INPUT_CHUNK ? len : 0);
    } else {
        StringValue(out);
        rb_str_modify(out);
        rb_str_set_len(out, 0);
    }
    rb_enc_associate(out, rb_ascii8bit_encoding());
    if (len == 0)
        return out;
    if (input_fill(in, out, len) == 0 && len > 0)
        return Qnil;
    return out;
}

/* ------------------------------------------------------------ rack.hijack */

/*
 * Qilin::HijackIO: the connection, once the app has hijacked it. Its IO
 * methods are Ruby (boot_rb, below) over three primitives here: a read
 * that does not wait, a wait for the socket to turn readable, and a write.
 * Each goes through the core (qln_req_upgraded_read,
 * qln_resp_upgraded_write), so TLS connections work as plain ones, and
 * without Ruby's lock, so the app's other threads run. LOCK makes the
 * core's calls on the connection one at a time, whichever Ruby threads
 * the app uses: a TLS session must not be read and written at once. A
 * read waits for data outside it, so a thread blocked reading does not
 * hold up one that writes. The connection stays the app's until it
 * closes the IO; then the request's thread detaches it (hijack_detach)
 * and the core closes the connection.
 */
struct hijack {
    struct qln_request *req; /* NULL once detached */
    struct qln_response *resp;
    int fd;
    pthread_mutex_t lock;
};

static void
hijack_free(void *p)
{
    struct hijack *h = p;

    pthread_mutex_destroy(&h->lock);
    ruby_xfree(h);
}

static const rb_data_type_t hijack_type = {
    .wrap_struct_name = "Qilin::HijackIO",
    .function = {.dfree = hijack_free},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE
hijack_alloc(VALUE klass)
{
    struct hijack *h;
    VALUE obj = TypedData_Make_Struct(klass, struct hijack, &hijack_type, h);

    pthread_mutex_init(&h->lock, NULL);
    h->fd = -1;
    return obj;
}

struct hijack_call {
    struct hijack *h;
    void *buf;
    size_t len;
    int timeout_ms;
    ssize_t r;
};

static void *
hijack_read_nogvl(void *arg)
{
    struct hijack_call *a = arg;

    pthread_mutex_lock(&a->h->lock);
    a->r = a->h->req != NULL ? qln_req_upgraded_read(a->h->req, a->buf, a->len, true) : -EBADF;
    pthread_mutex_unlock(&a->h->lock);
    return NULL;
}

static void *
hijack_write_nogvl(void *arg)
{
    struct hijack_call *a = arg;

    pthread_mutex_lock(&a->h->lock);
    a->r = a->h->resp != NULL ? qln_resp_upgraded_write(a->h->resp, a->buf, a->len) : -EBADF;
    pthread_mutex_unlock(&a->h->lock);
    return NULL;
}

static void *
hijack_poll_nogvl(void *arg)
{
    struct hijack_call *a = arg;
    struct pollfd pfd = {.fd = a->h->fd, .events = POLLIN};

    a->r = poll(&pfd, 1, a->timeout_ms);
    return NULL;
}

static void *
hijack_detach_nogvl(void *arg)
{
    struct hijack *h = arg;

    pthread_mutex_lock(&h->lock);
    h->req = NULL;
    h->resp = NULL;
    pthread_mutex_unlock(&h->lock);
    return NULL;
}

static struct hijack *
hijack_of(VALUE self)
{
    struct hijack *h;

    TypedData_Get_Struct(self, struct hijack, &hijack_type, h);
    return h;
}

static NORETURN(void hijack_raise(ssize_t err));

static void
hijack_raise(ssize_t err)
{
    if (err == -EBADF)
        rb_raise(rb_eIOError, "closed stream");
    if (err < 0 && err > -4096) /* an errno: Errno::EPIPE and friends, as a socket raises */
        rb_syserr_fail((int)-err, "hijacked connection");
    rb_raise(rb_eIOError, "hijacked connection: %s", qln_strerror((int)err));
}

/* _read(maxlen): up to MAXLEN bytes, nil at the end, :wait_readable when none yet. */
static VALUE
hijack_m_read(VALUE self, VALUE vlen)
{
    long len = NUM2LONG(vlen);
    VALUE out;
    struct hijack_call a = {.h = hijack_of(self)};

    if (len <= 0)
        return rb_str_new(NULL, 0);
    out = rb_str_buf_new(len);
    a.buf = RSTRING_PTR(out);
    a.len = (size_t)len;
    rb_thread_call_without_gvl(hijack_read_nogvl, &a, NULL, NULL);
    if (a.r == -EAGAIN)
        return ID2SYM(rb_intern("wait_readable"));
    if (a.r == 0)
        return Qnil;
    if (a.r < 0)
        hijack_raise(a.r);
    rb_str_set_len(out, a.r);
    return out;
}

/* _wait_readable(ms): true when the socket turned readable within MS. */
static VALUE
hijack_m_wait(VALUE self, VALUE ms)
{
    struct hijack_call a = {.h = hijack_of(self), .timeout_ms = NUM2INT(ms)};

    if (a.h->req == NULL)
        hijack_raise(-EBADF);
    rb_thread_call_without_gvl(hijack_poll_nogvl, &a, RUBY_UBF_IO, NULL);
    return a.r > 0 ? Qtrue : Qfalse;
}

/* _write(str): writes all of STR; its byte count. */
static VALUE
hijack_m_write(VALUE self, VALUE str)
{
    struct hijack_call a = {.h = hijack_of(self)};

    StringValue(str);
    str = rb_str_new_frozen(str); /* another thread may change the caller's String meanwhile */
    a.buf = RSTRING_PTR(str);
    a.len = (size_t)RSTRING_LEN(str);
    if (a.len > 0)
        rb_thread_call_without_gvl(hijack_write_nogvl, &a, NULL, NULL);
    RB_GC_GUARD(str);
    if (a.r < 0)
        hijack_raise(a.r);
    return LONG2NUM((long)a.len);
}

/*
 * Starts the answer with status S and LINES (head_pair's), or with HIJACK
 * hands the connection over after them (nothing sent when S is 0); the
 * core's code.
 */
static int
start_answer(struct qln_response *resp, long s, VALUE lines, bool hijack)
{
    struct qln_header stack[RB_STACK_HEADERS], *h = stack;
    size_t i, n = NIL_P(lines) ? 0 : (size_t)RARRAY_LEN(lines) / 2;
    char code[4];
    int rc;

    if (n > RB_STACK_HEADERS)
        h = ruby_xmalloc2(n, sizeof(*h));
    for (i = 0; i < n; i++) {
        VALUE k = RARRAY_AREF(lines, 2 * i), v = RARRAY_AREF(lines, 2 * i + 1);

        h[i].name = (struct qln_slice){RSTRING_PTR(k), (size_t)RSTRING_LEN(k)};
        h[i].value = (struct qln_slice){RSTRING_PTR(v), (size_t)RSTRING_LEN(v)};
    }
    snprintf(code, sizeof(code), "%03ld", s);
    if (hijack)
        rc = qln_resp_hijack(resp, (struct qln_slice){code, s != 0 ? 3 : 0}, h, n);
    else
        rc = qln_resp_start(resp, (struct qln_slice){code, 3}, h, n);
    if (h != stack)
        ruby_xfree(h);
    return rc;
}

/*
 * Hands the connection to the app: the rest of the request body goes into
 * rack.input's spool first (the app's bytes start after it), then the core
 * sends STATUS and LINES (head_pair's) unless STATUS is 0. The
 * Qilin::HijackIO, also set as env['rack.hijack_io'].
 */
static VALUE
hijack_start(struct rb_call *c, long status, VALUE lines)
{
    struct input *in;
    struct hijack *h;
    int rc;

    if (!NIL_P(c->hijack_io))
        return c->hijack_io;
    TypedData_Get_Struct(c->input, struct input, &input_type, in);
    if (!in->eof) {
        rb_funcall(c->rinput, rb_intern("read"), 0);
        rb_funcall(c->rinput, rb_intern("rewind"), 0);
    }
    rc = start_answer(c->resp, status, lines, true);
    if (rc == QLN_EBADHEADER)
        rb_raise(rb_eArgError, "invalid Rack response: %s", qln_resp_refusal(c->resp));
    if (rc != 0)
        rb_raise(rb_eIOError, "rack.hijack: %s", qln_strerror(rc));
    c->hijack_io = rb_class_new_instance(0, NULL, c->st->cHijackIO);
    h = hijack_of(c->hijack_io);
    h->req = c->req;
    h->resp = c->resp;
    h->fd = qln_req_fd(c->req);
    rb_hash_aset(c->env, rb_str_new_cstr("rack.hijack_io"), c->hijack_io);
    return c->hijack_io;
}

/* env['rack.hijack'].call: the full hijack, on the thread serving the request. */
static VALUE
hijack_m_call(VALUE self)
{
    struct rb_call *c = rb_current;

    if (c == NULL)
        rb_raise(rb_eIOError, "rack.hijack called outside the request it came with");
    if (!NIL_P(c->hijack_io))
        return c->hijack_io;
    c->full_hijack = true;
    return hijack_start(c, 0, Qnil);
}

/* Waits until the app closed the hijacked IO, then takes the connection back from it. */
static VALUE
hijack_wait(VALUE io)
{
    return rb_funcall(io, rb_intern("_wait_closed"), 0);
}

static void
hijack_detach(VALUE io)
{
    rb_thread_call_without_gvl(hijack_detach_nogvl, hijack_of(io), NULL, NULL);
}

/* ------------------------------------------------------------ Rack 3 streaming bodies */

/*
 * Qilin::Stream: what a body that responds to call (and not to each) is
 * called with, Rack 3's streaming body. Its writes are the response body,
 * framed by the core as each's strings are (chunked without a
 * Content-Length); its reads are rack.input's. Ruby (boot_rb) has the IO
 * methods; _write is here. Valid during the body's call only.
 */
struct stream {
    struct rb_call *c; /* NULL once the call returned */
};

static const rb_data_type_t stream_type = {
    .wrap_struct_name = "Qilin::Stream",
    .function = {.dfree = RUBY_TYPED_DEFAULT_FREE},
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static VALUE
stream_alloc(VALUE klass)
{
    struct stream *sm;

    return TypedData_Make_Struct(klass, struct stream, &stream_type, sm);
}

static VALUE
stream_m_write(VALUE self, VALUE str)
{
    struct stream *sm;
    int rc;

    TypedData_Get_Struct(self, struct stream, &stream_type, sm);
    if (sm->c == NULL)
        rb_raise(rb_eIOError, "the stream of a Rack body is used after its call returned");
    StringValue(str);
    rc = (int)io_run(&(struct io_call){.kind = IO_WRITE,
                                       .resp = sm->c->resp,
                                       .buf = RSTRING_PTR(str),
                                       .len = (size_t)RSTRING_LEN(str)});
    RB_GC_GUARD(str);
    if (rc != 0) {
        sm->c->rc = rc;
        sm->c->client_gone = true;
        rb_raise(rb_eIOError, "writing the response: %s", qln_strerror(rc));
    }
    return LONG2NUM(RSTRING_LEN(str));
}

static VALUE
stream_end(VALUE obj)
{
    struct stream *sm;

    TypedData_Get_Struct(obj, struct stream, &stream_type, sm);
    sm->c = NULL;
    return Qnil;
}

static VALUE
stream_call(VALUE arg)
{
    VALUE *a = (VALUE *)arg;

    return rb_funcall(a[0], rb_intern("call"), 1, a[1]);
}

/* Calls BODY with a Qilin::Stream: Rack 3's streaming body. */
static void
stream_body(struct rb_call *c, VALUE body)
{
    VALUE stream = rb_class_new_instance(1, &c->rinput, c->st->cStream);
    VALUE args[2] = {body, stream};
    struct stream *sm;

    TypedData_Get_Struct(stream, struct stream, &stream_type, sm);
    sm->c = c;
    rb_ensure(stream_call, (VALUE)args, stream_end, stream);
    RB_GC_GUARD(stream);
}

/* ------------------------------------------------------------ the VM */

/*
 * Ruby that is easier said in Ruby: rack.errors (IO-like, whole lines to
 * the error log) and the loading of the rackup file. Evaluated once.
 */
static const char boot_rb[] =
    "require 'rack'\n"
    "require 'rack/builder'\n"
    "require 'rack/rewindable_input'\n"
    "require 'tempfile'\n"
    "require 'uri'\n"
    "module Qilin\n"
    "  class Errors\n"
    "    def initialize; @buf = +''; end\n"
    "    def write(s); s = s.to_s; @buf << s; flush_lines; s.bytesize; end\n"
    "    def puts(*a); a = [''] if a.empty?; a.flatten.each { |x| x = x.to_s; "
    "write(x.end_with?(\"\\n\") ? x : x + \"\\n\") }; nil; end\n"
    "    def print(*a); a.each { |x| write(x) }; nil; end\n"
    "    def flush; Qilin.log(40, @buf) unless @buf.empty?; @buf = +''; self; end\n"
    "    def close; end\n"
    "    private def flush_lines\n"
    "      while (i = @buf.index(\"\\n\"))\n"
    "        Qilin.log(40, @buf[0, i]); @buf = @buf[(i + 1)..]\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  class HijackIO\n"
    "    def initialize; @closed = @rclosed = @wclosed = false; @m = Mutex.new; "
    "@cv = ConditionVariable.new; end\n"
    "    def read(len = nil, buf = nil)\n"
    "      raise ArgumentError, \"negative length #{len} given\" if len && len < 0\n"
    "      out = String.new(encoding: Encoding::BINARY)\n"
    "      while len.nil? || out.bytesize < len\n"
    "        s = partial(len ? len - out.bytesize : 65536) or break\n"
    "        out << s\n"
    "      end\n"
    "      out = nil if len && len > 0 && out.empty?\n"
    "      buf ? (buf.replace(out || ''); out && buf) : out\n"
    "    end\n"
    "    def readpartial(len, buf = nil)\n"
    "      s = partial(len) or raise EOFError, 'end of file reached'\n"
    "      buf ? buf.replace(s) : s\n"
    "    end\n"
    "    def read_nonblock(len, buf = nil, exception: true)\n"
    "      readable!\n"
    "      s = _read(len)\n"
    "      if s == :wait_readable\n"
    "        raise IO::EAGAINWaitReadable, 'read would block' if exception\n"
    "        return s\n"
    "      end\n"
    "      return (exception ? raise(EOFError, 'end of file reached') : nil) if s.nil?\n"
    "      buf ? buf.replace(s) : s\n"
    "    end\n"
    "    def write(*strs); writable!; strs.sum { |s| _write(s.to_s) }; end\n"
    "    def write_nonblock(s, exception: true); write(s); end\n"
    "    def <<(s); write(s); self; end\n"
    "    def flush; self; end\n"
    "    def sync; true; end\n"
    "    def sync=(v); end\n"
    "    def wait_readable(timeout = nil)\n"
    "      readable!; _wait_readable(timeout ? (timeout * 1000).ceil : -1) ? self : nil\n"
    "    end\n"
    "    def close_read; @rclosed = true; close if @wclosed; nil; end\n"
    "    def close_write; @wclosed = true; close if @rclosed; nil; end\n"
    "    def close; @m.synchronize { @closed = true; @cv.broadcast }; nil; end\n"
    "    def closed?; @closed; end\n"
    "    def _wait_closed; @m.synchronize { @cv.wait(@m) until @closed }; end\n"
    "    private\n"
    "    def readable!; raise IOError, 'not opened for reading' if @closed || @rclosed; end\n"
    "    def writable!; raise IOError, 'not opened for writing' if @closed || @wclosed; end\n"
    "    def partial(len)\n"
    "      loop do\n"
    "        readable!\n"
    "        s = _read(len)\n"
    "        return s unless s == :wait_readable\n"
    "        _wait_readable(500)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  class Stream\n"
    "    def initialize(input); @input = input; @closed = @rclosed = @wclosed = false; end\n"
    "    def read(*a); raise IOError, 'not opened for reading' if @closed || @rclosed; "
    "@input.read(*a); end\n"
    "    def write(*strs)\n"
    "      raise IOError, 'not opened for writing' if @closed || @wclosed\n"
    "      strs.sum { |s| _write(s.to_s) }\n"
    "    end\n"
    "    def <<(s); write(s); self; end\n"
    "    def flush; self; end\n"
    "    def close_read; @rclosed = true; nil; end\n"
    "    def close_write; @wclosed = true; nil; end\n"
    "    def close; @closed = true; nil; end\n"
    "    def closed?; @closed; end\n"
    "  end\n"
    "  def self.load_rackup(path)\n"
    "    app = Rack::Builder.parse_file(path)\n"
    "    app.is_a?(Array) ? app[0] : app\n"
    "  end\n"
    "end\n";

static VALUE
eval_boot(VALUE unused)
{
    return rb_eval_string(boot_rb);
}

/* Starts the VM in this process once; 0 or -errno with ERR. */
static int
vm_start(struct rb_state *st, char *err, size_t errlen)
{
    static char arg0[] = "qilin", arg1[] = "-e0";
    char *args[] = {arg0, arg1, NULL};
    char **argv = args;
    int argc = 2, state = 0, status = 0;
    VALUE mQilin;
    void *node;

    if (st->vm)
        return 0;
    ruby_sysinit(&argc, &argv);
    {
        RUBY_INIT_STACK;
        if (ruby_setup() != 0) {
            snprintf(err, errlen, "the Ruby VM did not start");
            return -EINVAL;
        }
    }
    /* Options as the ruby command takes them: the load path, encodings and
       RubyGems, so that `require` finds what `ruby` would. */
    node = ruby_options(argc, argv);
    if (!ruby_executable_node(node, &status)) {
        snprintf(err, errlen, "the Ruby VM did not start (status %d)", status);
        return -EINVAL;
    }
    st->vm = true;
    protect(eval_boot, Qnil, &state);
    if (state != 0) {
        log_exception(QLN_LOG_ERROR, "Ruby: loading rack failed");
        snprintf(err, errlen, "Ruby cannot load rack: apt-get install ruby-rack");
        return -ENOENT;
    }
    mQilin = rb_const_get(rb_cObject, rb_intern("Qilin"));
    rb_define_module_function(mQilin, "log", m_log, 2);
    st->cInput = rb_define_class_under(mQilin, "Input", rb_cObject);
    rb_define_alloc_func(st->cInput, input_alloc);
    rb_define_method(st->cInput, "read", input_read, -1);
    st->cRewindable = rb_path2class("Rack::RewindableInput");
    st->cStream = rb_path2class("Qilin::Stream");
    rb_define_alloc_func(st->cStream, stream_alloc);
    rb_define_method(st->cStream, "_write", stream_m_write, 1);
    st->cHijackIO = rb_path2class("Qilin::HijackIO");
    rb_define_alloc_func(st->cHijackIO, hijack_alloc);
    rb_define_method(st->cHijackIO, "_read", hijack_m_read, 1);
    rb_define_method(st->cHijackIO, "_wait_readable", hijack_m_wait, 1);
    rb_define_method(st->cHijackIO, "_write", hijack_m_write, 1);
    {
        VALUE cHijack = rb_define_class_under(mQilin, "Hijack", rb_cObject);

        rb_define_method(cHijack, "call", hijack_m_call, 0);
        st->hijack = rb_obj_freeze(rb_class_new_instance(0, NULL, cHijack));
        rb_gc_register_mark_object(st->hijack);
    }
    st->errors = rb_class_new_instance(0, NULL, rb_path2class("Qilin::Errors"));
    rb_gc_register_address(&st->errors);
    for (int i = 0; i < S_COUNT; i++) {
        st->str[i] = rb_obj_freeze(rb_str_new_cstr(rb_str_text[i]));
        rb_gc_register_mark_object(st->str[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ loading */

static VALUE
load_rackup(VALUE path)
{
    return rb_funcall(rb_const_get(rb_cObject, rb_intern("Qilin")), rb_intern("load_rackup"), 1,
                      path);
}

/* The env entries that are the same for every request of this process. */
static VALUE
make_env_base(struct rb_state *st)
{
    VALUE env = rb_hash_new();
    VALUE version = rb_ary_new_from_args(2, INT2FIX(1), INT2FIX(3));

    rb_hash_aset(env, rb_str_new_cstr("rack.version"), rb_obj_freeze(version));
    rb_hash_aset(env, rb_str_new_cstr("rack.errors"), st->errors);
    rb_hash_aset(env, rb_str_new_cstr("rack.multithread"), st->threaded ? Qtrue : Qfalse);
    rb_hash_aset(env, rb_str_new_cstr("rack.multiprocess"), st->multiprocess ? Qtrue : Qfalse);
    rb_hash_aset(env, rb_str_new_cstr("rack.run_once"), Qfalse);
    rb_hash_aset(env, rb_str_new_cstr("rack.hijack?"), Qtrue);
    rb_hash_aset(env, rb_str_new_cstr("rack.hijack"), st->hijack);
    rb_hash_aset(env, rb_str_new_cstr("SCRIPT_NAME"), rb_obj_freeze(rb_str_new_cstr("")));
    rb_hash_aset(env, rb_str_new_cstr("SERVER_SOFTWARE"),
                 rb_obj_freeze(rb_str_new_cstr("qilin/" QLN_VERSION)));
    return rb_obj_freeze(env);
}

/* Starts the VM on this thread if need be and loads SPEC; 0 or -errno with ERR. */
static int
load_in_vm(struct rb_state *st, const char *spec, char *err, size_t errlen)
{
    int rc, pstate = 0;
    VALUE app;

    rc = vm_start(st, err, errlen);
    if (rc != 0)
        return rc;
    app = protect(load_rackup, rb_str_new_cstr(spec), &pstate);
    if (pstate != 0) {
        char what[512];

        snprintf(what, sizeof(what), "Ruby: loading '%s' failed", spec);
        log_exception(QLN_LOG_ERROR, what);
        snprintf(err, errlen, "rackup file '%s' raised an exception (see the traceback above)",
                 spec);
        return -EINVAL;
    }
    if (!rb_respond_to(app, rb_intern("call"))) {
        snprintf(err, errlen, "rackup file '%s' gave no Rack app (nothing that responds to call)",
                 spec);
        return -ENOENT;
    }
    st->app = app;
    rb_gc_register_address(&st->app);
    free(st->rackup);
    st->rackup = realpath(spec, NULL);
    st->env_base = make_env_base(st);
    rb_gc_register_address(&st->env_base);
    return 0;
}

static int pool_load(struct rb_state *st, const char *spec, char *err, size_t errlen);

static int
rb_load_app(void *state, const char *spec, char *err, size_t errlen)
{
    struct rb_state *st = state;
    struct stat sb;

    if (stat(spec, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "rackup file '%s' not found: give the path of your config.ru", spec);
        return -ENOENT;
    }
    if (st->threaded)
        return pool_load(st, spec, err, errlen);
    return load_in_vm(st, spec, err, errlen);
}

/* ------------------------------------------------------------ the env */

static VALUE
str_of(struct qln_slice s)
{
    return rb_str_new(s.p, (long)s.len);
}

/*
 * "HTTP_" + NAME upper-cased with '-' as '_'; CONTENT_TYPE/LENGTH bare; Qnil
 * to drop (a name too long). Names with '_' come only as --header-map and
 * --forwarder-headers allow: the core drops or refuses the others.
 */
static VALUE
header_key(struct qln_slice name)
{
    char buf[256];
    size_t i;

    if (name.len + 5 >= sizeof(buf))
        return Qnil;
    memcpy(buf, "HTTP_", 5);
    for (i = 0; i < name.len; i++) {
        char c = name.p[i];

        buf[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    if (name.len == 12 && memcmp(buf + 5, "CONTENT_TYPE", 12) == 0)
        return rb_str_new(buf + 5, 12);
    if (name.len == 14 && memcmp(buf + 5, "CONTENT_LENGTH", 14) == 0)
        return rb_str_new(buf + 5, 14);
    return rb_str_new(buf, (long)(5 + name.len));
}

/* SERVER_NAME and SERVER_PORT from the Host header, else the listener's. */
static void
env_server(struct rb_state *st, VALUE env, struct qln_request *req, const char *scheme)
{
    VALUE host = rb_hash_lookup(env, st->str[S_HTTP_HOST]);
    const char *name = qln_req_server_name(req), *port = qln_req_server_port(req);
    long nlen = (long)strlen(name), plen = (long)strlen(port);

    if (!NIL_P(host) && RSTRING_LEN(host) > 0) {
        const char *p = RSTRING_PTR(host), *colon = NULL;
        long len = RSTRING_LEN(host), i;

        if (p[0] == '[') { /* [v6]:port */
            const char *end = memchr(p, ']', (size_t)len);

            if (end != NULL && end + 1 < p + len && end[1] == ':')
                colon = end + 1;
        } else {
            for (i = len - 1; i >= 0 && colon == NULL; i--)
                if (p[i] == ':')
                    colon = p + i;
        }
        name = p;
        nlen = colon != NULL ? colon - p : len;
        if (colon != NULL) {
            port = colon + 1;
            plen = len - (colon + 1 - p);
        } else {
            port = strcmp(scheme, "https") == 0 ? "443" : "80";
            plen = (long)strlen(port);
        }
    }
    rb_hash_aset(env, st->str[S_SERVER_NAME], rb_str_new(name, nlen));
    rb_hash_aset(env, st->str[S_SERVER_PORT], rb_str_new(port, plen));
}

static VALUE
make_env(struct rb_call *c, VALUE *input)
{
    struct rb_state *st = c->st;
    struct qln_request *req = c->req;
    const struct qln_header *h = qln_req_headers(req);
    size_t nh = qln_req_nheaders(req);
    const char *scheme = qln_req_url_scheme(req);
    const char *tname, *tvalue;
    VALUE env = rb_hash_dup(st->env_base), key, old, raw;
    struct qln_slice path = qln_req_path(req);
    size_t i;

    rb_hash_aset(env, st->str[S_REQUEST_METHOD], str_of(qln_req_method(req)));
    /* As sent, still percent-encoded (as Puma and Unicorn give it); empty for
       "OPTIONS *", whose target REQUEST_URI keeps (Rack::Lint: a non-empty
       PATH_INFO starts with '/'). */
    rb_hash_aset(env, st->str[S_PATH_INFO], str_of(path));
    rb_hash_aset(env, st->str[S_QUERY_STRING], str_of(qln_req_query(req)));
    rb_hash_aset(env, st->str[S_REQUEST_URI], str_of(qln_req_target(req)));
    rb_hash_aset(env, st->str[S_SERVER_PROTOCOL],
                 st->str[qln_req_version_minor(req) == 0 ? S_HTTP10 : S_HTTP11]);
    rb_hash_aset(env, st->str[S_REMOTE_ADDR], rb_str_new_cstr(qln_req_remote_addr(req)));
    rb_hash_aset(env, st->str[S_URL_SCHEME],
                 strcmp(scheme, "http") == 0 ? st->str[S_HTTP] : rb_str_new_cstr(scheme));
    for (i = 0; i < nh; i++) {
        key = header_key(h[i].name);
        if (NIL_P(key))
            continue;
        old = rb_hash_lookup(env, key);
        if (NIL_P(old)) {
            rb_hash_aset(env, key, str_of(h[i].value));
        } else {
            /* Repeated fields join as one (RFC 9110 5.3) with ',' as under
               WSGI; cookies with "; " (RFC 6265 5.4). */
            raw = rb_str_dup(old);
            rb_str_cat_cstr(raw, strcmp(RSTRING_PTR(key), "HTTP_COOKIE") == 0 ? "; " : ",");
            rb_str_cat(raw, h[i].value.p, (long)h[i].value.len);
            rb_hash_aset(env, key, raw);
        }
    }
    for (i = 0; qln_req_tls_var(req, i, &tname, &tvalue); i++)
        rb_hash_aset(env, rb_str_new_cstr(tname), rb_str_new_cstr(tvalue));
    env_server(st, env, req, scheme);
    *input = rb_class_new_instance(0, NULL, st->cInput);
    {
        struct input *in;

        TypedData_Get_Struct(*input, struct input, &input_type, in);
        in->req = req;
        in->eof = qln_req_content_length(req) <= 0 && !qln_req_chunked(req);
    }
    c->rinput = rb_class_new_instance(1, input, st->cRewindable);
    rb_hash_aset(env, st->str[S_INPUT], c->rinput);
    c->finished = rb_ary_new();
    rb_hash_aset(env, st->str[S_FINISHED], c->finished);
    c->env = env;
    return env;
}

/* ------------------------------------------------------------ the answer */

/*
 * The answer's header lines, as a flat Ruby Array [name, value, name,
 * value, ...] of Strings: collected while Ruby code (to_s) may still raise,
 * so nothing in C is allocated until they are all there.
 */

/* One header pair; Rack 2 puts several values of one field in one, split by "\n". */
static int
head_pair(VALUE name, VALUE value, VALUE arg)
{
    struct rb_call *c = (struct rb_call *)arg;
    VALUE lines = c->lines;
    const char *p, *nl;
    long len;

    name = rb_obj_as_string(name);
    if (RSTRING_LEN(name) == 11 && memcmp(RSTRING_PTR(name), "rack.hijack", 11) == 0) {
        c->hijack_proc = value; /* the partial hijack: called after the head */
        return ST_CONTINUE;
    }
    value = rb_obj_as_string(value);
    p = RSTRING_PTR(value);
    len = RSTRING_LEN(value);
    while ((nl = memchr(p, '\n', (size_t)len)) != NULL) {
        rb_ary_push(lines, name);
        rb_ary_push(lines, rb_str_new(p, nl - p));
        len -= nl + 1 - p;
        p = nl + 1;
    }
    rb_ary_push(lines, name);
    rb_ary_push(lines, p == RSTRING_PTR(value) ? value : rb_str_new(p, len));
    return ST_CONTINUE;
}

static bool
has_header(VALUE lines, const char *name)
{
    long i, len = (long)strlen(name);

    for (i = 0; i < RARRAY_LEN(lines); i += 2) {
        VALUE k = RARRAY_AREF(lines, i);

        if (RSTRING_LEN(k) == len && strncasecmp(RSTRING_PTR(k), name, (size_t)len) == 0)
            return true;
    }
    return false;
}

/* The byte length of an Array body of Strings (what the app gave whole), else -1. */
static long
array_length(VALUE body)
{
    long i, n = 0;

    if (!RB_TYPE_P(body, T_ARRAY))
        return -1;
    for (i = 0; i < RARRAY_LEN(body); i++) {
        VALUE part = RARRAY_AREF(body, i);

        if (!RB_TYPE_P(part, T_STRING))
            return -1;
        n += RSTRING_LEN(part);
    }
    return n;
}

static VALUE
body_chunk(RB_BLOCK_CALL_FUNC_ARGLIST(chunk, arg))
{
    struct rb_call *c = (struct rb_call *)arg;
    int rc;

    StringValue(chunk);
    rc = (int)io_run(&(struct io_call){.kind = IO_WRITE,
                                       .resp = c->resp,
                                       .buf = RSTRING_PTR(chunk),
                                       .len = (size_t)RSTRING_LEN(chunk)});
    RB_GC_GUARD(chunk);
    if (rc != 0) {
        /* The client is gone: stop the app's each; the core closes. */
        c->rc = rc;
        rb_iter_break();
    }
    return Qnil;
}

/* A body that names a file (to_path, as Rack::Files gives): sendfile. 1 when sent. */
static int
send_path(struct rb_call *c, VALUE body)
{
    VALUE path;
    int fd;

    if (!rb_respond_to(body, rb_intern("to_path")))
        return 0;
    path = rb_funcall(body, rb_intern("to_path"), 0);
    StringValue(path);
    fd = open(StringValueCStr(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0; /* not readable here: each will say why */
    c->rc = (int)io_run(&(struct io_call){.kind = IO_SENDFILE, .resp = c->resp, .fd = fd});
    close(fd);
    return 1;
}

static VALUE
serve(VALUE arg)
{
    struct rb_call *c = (struct rb_call *)arg;
    VALUE env = make_env(c, &c->input);
    VALUE res = rb_funcall(c->st->app, rb_intern("call"), 1, env);
    VALUE status, headers;
    long s, length;

    if (c->full_hijack)
        return Qnil; /* the app answers on the connection; its triplet is ignored */
    if (!RB_TYPE_P(res, T_ARRAY) || RARRAY_LEN(res) != 3)
        rb_raise(rb_eTypeError, "a Rack app returns [status, headers, body], not %" PRIsVALUE,
                 rb_inspect(res));
    status = RARRAY_AREF(res, 0);
    headers = RARRAY_AREF(res, 1);
    c->body = RARRAY_AREF(res, 2);
    s = NUM2LONG(rb_funcall(status, rb_intern("to_i"), 0));
    if (s < 100 || s > 999)
        rb_raise(rb_eArgError, "invalid Rack response status %" PRIsVALUE, rb_inspect(status));
    headers = rb_convert_type(headers, T_HASH, "Hash", "to_hash");
    c->status = status;
    c->headers = headers;
    c->lines = rb_ary_new();
    rb_hash_foreach(headers, head_pair, (VALUE)c);
    if (!NIL_P(c->hijack_proc)) {
        /* The partial hijack: the head, then the app writes the body itself. */
        rb_funcall(c->hijack_proc, rb_intern("call"), 1, hijack_start(c, s, c->lines));
        return Qnil;
    }
    length = array_length(c->body);
    if (length >= 0 && s >= 200 && s != 204 && s != 304 &&
        !has_header(c->lines, "content-length") && !has_header(c->lines, "transfer-encoding")) {
        rb_ary_push(c->lines, rb_str_new_cstr("Content-Length"));
        rb_ary_push(c->lines, rb_sprintf("%ld", length));
    }
    c->rc = start_answer(c->resp, s, c->lines, false);
    if (c->rc == QLN_EBADHEADER)
        rb_raise(rb_eArgError, "invalid Rack response: %s", qln_resp_refusal(c->resp));
    if (c->rc != 0)
        return Qnil;
    if (send_path(c, c->body))
        return Qnil;
    if (!rb_respond_to(c->body, rb_intern("each")) && rb_respond_to(c->body, rb_intern("call")))
        stream_body(c, c->body);
    else
        rb_block_call(c->body, rb_intern("each"), 0, NULL, body_chunk, (VALUE)c);
    if (c->rc != 0)
        landed(); /* body_chunk broke out of each (rb_iter_break) */
    RB_GC_GUARD(env);
    return Qnil;
}

static VALUE
close_body(VALUE arg)
{
    struct rb_call *c = (struct rb_call *)arg;

    if (!NIL_P(c->body) && rb_respond_to(c->body, rb_intern("close")))
        rb_funcall(c->body, rb_intern("close"), 0);
    return Qnil;
}

static VALUE
serve_and_close(VALUE arg)
{
    return rb_ensure(serve, arg, close_body, arg);
}

struct finished_call {
    VALUE callable, args[4];
};

static VALUE
finished_call(VALUE arg)
{
    struct finished_call *f = (struct finished_call *)arg;

    return rb_funcallv(f->callable, rb_intern("call"), 4, f->args);
}

/*
 * Rack 3's rack.response_finished: each callable the app added is called
 * with (env, status, headers, error) once the answer is written (before a
 * chunked body's last chunk, which the core sends after handle()). One that
 * raises is logged; the others still run.
 */
static void
response_finished(struct rb_call *c, VALUE error)
{
    struct finished_call f = {.args = {c->env, c->status, c->headers, error}};
    long i;
    int state;

    if (!NIL_P(f.args[1]))
        f.args[1] = rb_funcall(f.args[1], rb_intern("to_i"), 0);
    for (i = 0; i < RARRAY_LEN(c->finished); i++) {
        f.callable = RARRAY_AREF(c->finished, i);
        state = 0;
        protect(finished_call, (VALUE)&f, &state);
        if (state != 0)
            log_exception(QLN_LOG_ERROR, "rack.response_finished callable raised");
    }
}

/* Serves one request on a Ruby thread (the VM's lock held); the core's code. */
static int
serve_request(struct rb_state *st, struct qln_request *req, struct qln_response *resp)
{
    struct rb_call c = {.st = st,
                        .req = req,
                        .resp = resp,
                        .body = Qnil,
                        .input = Qnil,
                        .rinput = Qnil,
                        .env = Qnil,
                        .hijack_io = Qnil,
                        .hijack_proc = Qnil,
                        .lines = Qnil,
                        .status = Qnil,
                        .headers = Qnil,
                        .finished = Qnil};
    int pstate = 0, in_err = 0, wstate = 0, rc;
    VALUE error;

    rb_current = &c;
    protect(serve_and_close, (VALUE)&c, &pstate);
    rb_current = NULL;
    if (!NIL_P(c.hijack_io)) {
        /* The connection is the app's until it closes the IO (at once when
           the app failed); then the core closes it. */
        if (pstate == 0)
            protect(hijack_wait, c.hijack_io, &wstate);
        hijack_detach(c.hijack_io);
        if (wstate != 0)
            rb_set_errinfo(Qnil);
    }
    if (!NIL_P(c.input)) {
        /* The app may keep rack.input: it reads as an empty body from now on. */
        struct input *in;

        TypedData_Get_Struct(c.input, struct input, &input_type, in);
        in->req = NULL;
        in->eof = true;
        in_err = in->err;
    }
    rc = c.rc;
    error = pstate != 0 ? rb_errinfo() : Qnil;
    if (pstate != 0 && ((in_err != 0 && !qln_resp_headers_sent(resp)) || c.client_gone)) {
        /* The client's doing (a body too large, too slow, cut short: the
           core has logged it and answers 413, 408 or 400), or the client
           went away while a streaming body wrote. */
        rc = c.client_gone ? c.rc : in_err;
        rb_set_errinfo(Qnil);
    } else if (pstate != 0) {
        struct qln_slice target = qln_req_target(req);
        char what[256];

        snprintf(what, sizeof(what), "Error handling request %.*s",
                 (int)(target.len < 200 ? target.len : 200), target.p);
        log_exception(QLN_LOG_ERROR, what);
        rc = qln_resp_headers_sent(resp) ? -EIO : -EINVAL;
    }
    if (!NIL_P(c.finished) && RARRAY_LEN(c.finished) > 0)
        response_finished(&c, error);
    RB_GC_GUARD(c.body);
    RB_GC_GUARD(c.input);
    RB_GC_GUARD(c.rinput);
    RB_GC_GUARD(c.env);
    RB_GC_GUARD(c.hijack_io);
    RB_GC_GUARD(c.hijack_proc);
    RB_GC_GUARD(c.lines);
    RB_GC_GUARD(c.status);
    RB_GC_GUARD(c.headers);
    RB_GC_GUARD(c.finished);
    RB_GC_GUARD(error);
    return rc;
}

/* ------------------------------------------------------------ -k gthread */

/*
 * Ruby code runs only on threads the VM made, and a thread that holds the
 * VM's lock lets the others run only from Ruby code or a blocking region.
 * So with -k gthread the VM gets a thread of its own (vm_main), started by
 * load_app; the core's threads never run Ruby. Each pool thread's handle()
 * queues its request and waits; --threads Ruby threads (the VM's thread
 * and the ones it made) take requests from the queue, each waiting for
 * one without the lock, and serve them with the same code as -k sync,
 * releasing the lock whenever the core waits for the client (io_run).
 * They never end: when the worker stops, its pool threads are done with
 * the queue and the process exits with the Ruby threads still waiting
 * (letting them end would run Ruby's thread teardown for nothing, and
 * under AddressSanitizer that teardown trips over the signal stacks Ruby
 * gives its threads).
 */
struct rb_job {
    struct qln_request *req;
    struct qln_response *resp;
    int rc;
    bool done;
    pthread_cond_t done_cv; /* its pool thread waits on it: one wake-up per answer */
    struct rb_job *next;
};

struct rb_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cv; /* a job was queued, or Ruby kicked */
    pthread_cond_t done_cv; /* the VM thread started */
    struct rb_job *head, *tail;
    bool kicked; /* Ruby asked a waiting thread to look at its interrupts */
    /* load_app's hand-over with vm_main */
    const char *spec;
    bool started;
    int start_rc;
    char start_err[512];
    pthread_t vm_thread;
};

/* KICK: pop_job came back for Ruby's interrupts, not with a job. */
static struct rb_job kick_job;

static void *
pop_job(void *arg)
{
    struct rb_pool *p = arg;
    struct rb_job *j = NULL;

    pthread_mutex_lock(&p->lock);
    while (p->head == NULL && !p->kicked)
        pthread_cond_wait(&p->work_cv, &p->lock);
    if (p->head != NULL) {
        j = p->head;
        p->head = j->next;
        if (p->head == NULL)
            p->tail = NULL;
    } else if (p->kicked) {
        p->kicked = false;
        j = &kick_job;
    }
    pthread_mutex_unlock(&p->lock);
    return j;
}

/* Ruby's unblocking function for pop_job: Thread#raise, Thread#kill, exit. */
static void
kick_pop(void *arg)
{
    struct rb_pool *p = arg;

    pthread_mutex_lock(&p->lock);
    p->kicked = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->lock);
}

/* The body of every serving Ruby thread. */
static VALUE
ruby_server(void *arg)
{
    struct rb_state *st = arg;
    struct rb_pool *p = st->pool;
    struct rb_job *j;
    int rc;

    for (;;) {
        j = rb_thread_call_without_gvl(pop_job, p, kick_pop, p);
        if (j == &kick_job) {
            rb_thread_check_ints();
            continue;
        }
        rc = serve_request(st, j->req, j->resp);
        pthread_mutex_lock(&p->lock);
        j->rc = rc;
        j->done = true;
        pthread_cond_signal(&j->done_cv);
        pthread_mutex_unlock(&p->lock);
    }
    return Qnil; /* not reached: see above */
}

static int load_in_vm(struct rb_state *st, const char *spec, char *err, size_t errlen);

/* The VM's own thread: starts Ruby, loads the app, then serves. */
static void *
vm_main(void *arg)
{
    struct rb_state *st = arg;
    struct rb_pool *p = st->pool;
    sigset_t all;
    int rc;

    /* Signals are the main thread's to take, as in gthread's pool. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    rc = load_in_vm(st, p->spec, p->start_err, sizeof(p->start_err));
    pthread_mutex_lock(&p->lock);
    p->start_rc = rc;
    p->started = true;
    pthread_cond_broadcast(&p->done_cv);
    pthread_mutex_unlock(&p->lock);
    if (rc != 0)
        return NULL;
    for (unsigned i = 1; i < st->nthreads; i++)
        rb_thread_create(ruby_server, st);
    ruby_server(st);
    return NULL;
}

static int
pool_load(struct rb_state *st, const char *spec, char *err, size_t errlen)
{
    struct rb_pool *p = calloc(1, sizeof(*p));
    pthread_attr_t attr;
    int rc;

    if (p == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    p->spec = spec;
    st->pool = p;
    /* The VM's main thread gets a main thread's stack: Ruby sizes its
       recursion limit from it. */
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 8u << 20);
    rc = pthread_create(&p->vm_thread, &attr, vm_main, st);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the Ruby thread: %s", strerror(rc));
        return -rc;
    }
    pthread_mutex_lock(&p->lock);
    while (!p->started)
        pthread_cond_wait(&p->done_cv, &p->lock);
    rc = p->start_rc;
    pthread_mutex_unlock(&p->lock);
    if (rc != 0)
        snprintf(err, errlen, "%s", p->start_err);
    return rc;
}

/* A pool thread's request: queued for the Ruby threads, waited for. */
static int
pool_serve(struct rb_pool *p, struct qln_request *req, struct qln_response *resp)
{
    struct rb_job j = {.req = req, .resp = resp};

    pthread_cond_init(&j.done_cv, NULL);
    pthread_mutex_lock(&p->lock);
    if (p->tail != NULL)
        p->tail->next = &j;
    else
        p->head = &j;
    p->tail = &j;
    pthread_cond_signal(&p->work_cv);
    while (!j.done)
        pthread_cond_wait(&j.done_cv, &p->lock);
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&j.done_cv);
    return j.rc;
}

static int
rb_handle(void *state, void *tstate, struct qln_request *req, struct qln_response *resp)
{
    struct rb_state *st = state;

    if (st->threaded)
        return pool_serve(st->pool, req, resp);
    return serve_request(st, req, resp);
}

/*
 * Exported by libruby since 2.x, declared in no public header of 3.1: true
 * when the calling thread holds the VM's lock.
 */
int ruby_thread_has_gvl_p(void);

static void *
log_stuck_backtrace(void *unused)
{
    VALUE bt = rb_make_backtrace(), text = rb_str_new_cstr("Ruby backtrace of the stuck "
                                                           "request (most recent call first):");
    long i;

    for (i = 0; RB_TYPE_P(bt, T_ARRAY) && i < RARRAY_LEN(bt); i++)
        rb_str_catf(text, "\n  %" PRIsVALUE, RARRAY_AREF(bt, i));
    qln_log(QLN_LOG_ERROR, "%.*s", (int)RSTRING_LEN(text), RSTRING_PTR(text));
    return NULL;
}

/*
 * --timeout on -k sync: the master's SIGABRT found the main thread stuck,
 * in Ruby code (holding the VM's lock) or in a wait that released it
 * (sleep, I/O). Called from the signal handler, as the core documents: the
 * process is about to die, and the master's SIGKILL bounds anything that
 * goes wrong here. On -k gthread the Ruby threads are not the one
 * interrupted, and the worker's main thread never stalls for them.
 */
static void
rb_on_abort(void *state)
{
    struct rb_state *st = state;

    if (!st->vm || st->threaded)
        return;
    if (ruby_thread_has_gvl_p())
        log_stuck_backtrace(NULL);
    else
        rb_thread_call_with_gvl(log_stuck_backtrace, NULL);
}

/* ------------------------------------------------------------ life cycle */

static int
rb_init(struct qln_ctx *ctx, void **state, char *err, size_t errlen)
{
    uint32_t flags = qln_ctx_worker_flags(ctx);
    struct rb_state *st;

    if (flags & (QLN_WORKER_GREEN | QLN_WORKER_ASYNC)) {
        snprintf(err, errlen,
                 "the ruby plugin serves Rack apps on -k sync; green and asyncio workers "
                 "run Python only");
        return -EINVAL;
    }
    if ((flags & QLN_WORKER_THREADED) && qln_cfg_bool(ctx, "preload_app")) {
        /* The VM would belong to the main thread, which the gthread worker
           keeps for its connections: no Ruby thread could ever run. */
        snprintf(err, errlen,
                 "the ruby plugin cannot --preload on -k gthread: drop --preload, or use "
                 "-k sync");
        return -EINVAL;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    st->app = Qnil;
    st->env_base = Qnil;
    st->errors = Qnil;
    for (int i = 0; i < S_COUNT; i++)
        st->str[i] = Qnil;
    st->multiprocess = qln_cfg_int(ctx, "workers") > 1;
    st->threaded = (flags & QLN_WORKER_THREADED) != 0;
    st->nthreads = st->threaded ? (unsigned)qln_cfg_int(ctx, "threads") : 1;
    if (st->nthreads < 1)
        st->nthreads = 1;
    rb_st = st;
    *state = st;
    return 0;
}

/* A VM started in the master (--preload): the child's threads are gone. */
static int
rb_post_fork_child(void *state, char *err, size_t errlen)
{
    struct rb_state *st = state;

    if (st->vm)
        rb_thread_atfork();
    return 0;
}

/* --reload: the rackup file and every file Ruby has required. */
static void
rb_module_files(void *state, void (*add)(void *ctx, const char *path), void *ctx)
{
    struct rb_state *st = state;
    VALUE feats;
    long i;

    if (st->rackup != NULL)
        add(ctx, st->rackup);
    if (!st->vm || st->threaded)
        return; /* with -k gthread this thread is not Ruby's to use */
    feats = rb_gv_get("$LOADED_FEATURES");
    if (!RB_TYPE_P(feats, T_ARRAY))
        return;
    for (i = 0; i < RARRAY_LEN(feats); i++) {
        VALUE f = RARRAY_AREF(feats, i);

        if (RB_TYPE_P(f, T_STRING) && memchr(RSTRING_PTR(f), 0, RSTRING_LEN(f)) == NULL)
            add(ctx, RSTRING_PTR(f));
    }
}

static void
rb_shutdown(void *state)
{
    struct rb_state *st = state;

    /* The VM is not torn down: ruby_cleanup would run the app's at_exit
       blocks in a master that never ran the app. The process exits next. */
    if (rb_st == st)
        rb_st = NULL;
    free(st->rackup);
    free(st);
}

static const struct qln_app_ops rb_ops = {
    .size = sizeof(struct qln_app_ops),
    .init = rb_init,
    .load_app = rb_load_app,
    .post_fork_child = rb_post_fork_child,
    .handle = rb_handle,
    .on_abort = rb_on_abort,
    .module_files = rb_module_files,
    .shutdown = rb_shutdown,
};

static const char *const rb_aliases[] = {"rack", NULL};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_APP, .name = "ruby", .version = QLN_VERSION,
                  .description = "Rack applications on embedded Ruby " RB_API_VERSION,
                  .aliases = rb_aliases, .app = &rb_ops);
