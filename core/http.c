/*
 * llhttp glue: parses request heads incrementally, enforces gunicorn's
 * limits and the framing rules of RFC 9112 that llhttp does not enforce by
 * itself, and decodes bodies one zero-copy slice at a time. Worker processes.
 */
#include "qlnconfig.h"

#include <stdint.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

#include <qilin/log.h>
#include <qilin/request.h>

#include "field.h"
#include "http.h"
#include "util.h"

/* Reason phrases of RFC 9110 §15 that qilin or common apps send. Read-only; any process. */
static const struct {
    int status;
    const char *text;
} reasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {422, "Unprocessable Content"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

const char *
http_reason(int status)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(reasons); i++) {
        if (reasons[i].status == status)
            return reasons[i].text;
    }
    return "Unknown";
}

static struct http_parser *
parser_of(llhttp_t *ll)
{
    return qln_container_of(ll, struct http_parser, ll);
}

/* Records the answer for a rejected request; the callback then returns -1. */
static int
fail(struct http_parser *p, int status, const char *reason)
{
    p->status = status;
    p->reason = reason;
    return -1;
}

static size_t
off_of(const struct http_parser *p, const char *at)
{
    return (size_t)(at - p->base);
}

static int
check_line(struct http_parser *p, const char *at, size_t len)
{
    size_t end = off_of(p, at) + len;

    if (p->start == SIZE_MAX)
        p->start = off_of(p, at);
    if (end - p->start > p->limits.line) {
        util_format(p->reason_buf, sizeof(p->reason_buf), "Request Line is too large (%zu > %zu)",
                    end - p->start, p->limits.line);
        return fail(p, 414, p->reason_buf);
    }
    return 0;
}

static int
on_method(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);

    if (p->method_other)
        return 0; /* llhttp is reading the stand-in, not the buffer (other_method) */
    if (p->method_len == 0)
        p->method_off = off_of(p, at);
    p->method_len += len;
    return check_line(p, at, len);
}

/*
 * llhttp also knows RTSP's methods (PLAY, PAUSE, SETUP ...), which it then
 * refuses with an HTTP version. To an HTTP server they are tokens like any
 * other, so they go the way of the methods llhttp does not know
 * (other_method). PRI stays llhttp's: it begins the HTTP/2 preface.
 */
static int
on_method_complete(llhttp_t *ll)
{
    switch (ll->method) {
#define XX(num, name, string) case HTTP_##name:
        HTTP_METHOD_MAP(XX)
#undef XX
    case HTTP_PRI:
        return 0;
    default:
        return -1; /* HPE_CB_METHOD_COMPLETE, see http_parse */
    }
}

static int
on_url(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    size_t i;

    /* RFC 9112 §3.2: the request-target has no whitespace or control characters.
       llhttp's non-strict build lets a few through, and a NUL in a target ends up
       in PATH_INFO, so refuse them here. */
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)at[i];

        if (c <= 0x20 || c == 0x7f)
            return fail(p, 400, "Invalid character in request target");
    }
    if (p->target_len == 0) {
        p->target_off = off_of(p, at);
        /* RFC 9112 §3: one SP between the parts. llhttp skips extra spaces, so
           "GET  /" would reach the app, while a proxy may split it otherwise. */
        if (p->target_off != p->method_off + p->method_len + 1)
            return fail(p, 400, "Invalid request line: more than one space after the method");
    }
    p->target_len += len;
    return check_line(p, at, len);
}

static int
on_version(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);

    p->version_end = off_of(p, at) + len;
    return check_line(p, at, len);
}

/*
 * RFC 9112 §2.2 lets a recipient take a bare LF for a line end; llhttp does
 * so after the request line even in its strict build. Refuse it: a proxy
 * that does not would see different header fields. Called once the line
 * end lies in the buffer (the first field, or the end of the head).
 */
static int
check_line_end(struct http_parser *p)
{
    if (p->line_end_checked)
        return 0;
    p->line_end_checked = true;
    if (p->base[p->version_end] != '\r')
        return fail(p, 400, "Invalid request line: not ended by CRLF");
    return 0;
}

static int
on_version_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);

    p->line_done = true;
    /* llhttp accepts HTTP/0.9 and HTTP/2.0 request lines; only 1.0 and 1.1 are
       served here (HTTP/2 needs a different framing altogether), unless
       permit_unconventional_http_version asks for any HTTP/d.d, which is
       then served as HTTP/1.0 (below 1.1) or HTTP/1.1 (from 1.1 up), as
       gunicorn orders versions. */
    if (!p->limits.any_version && (ll->http_major != 1 || ll->http_minor > 1)) {
        util_format(p->reason_buf, sizeof(p->reason_buf), "Invalid HTTP Version: HTTP/%u.%u",
                    ll->http_major, ll->http_minor);
        return fail(p, 505, p->reason_buf);
    }
    return 0;
}

/* The HTTP/1 minor version a request is served as: 0 below HTTP/1.1, else 1. */
static int
effective_minor(const llhttp_t *ll)
{
    if (ll->http_major != 1)
        return ll->http_major > 1 ? 1 : 0;
    return ll->http_minor > 1 ? 1 : ll->http_minor;
}

static struct http_field *
field_new(struct http_parser *p)
{
    struct http_field *f;

    if (p->nfields == p->fields_cap) {
        p->fields_cap = p->fields_cap ? p->fields_cap * 2 : 16;
        p->fields = xrealloc(p->fields, p->fields_cap * sizeof(*p->fields));
    }
    f = &p->fields[p->nfields++];
    memset(f, 0, sizeof(*f));
    return f;
}

/* One header line, CRLF included, as gunicorn counts limit_request_field_size. */
static int
check_field_size(struct http_parser *p, size_t end)
{
    const struct http_field *f = &p->fields[p->nfields - 1];

    if (end - f->name_off + 2 > p->limits.field_size)
        return fail(p, 431, "Request Header Fields Too Large: a header line is too long");
    return 0;
}

static int
on_header_field(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    struct http_field *f;

    if (p->phase != HTTP_PHASE_HEAD)
        return 0; /* chunked trailers: parsed for validity, not kept */
    if (!p->field_open) {
        if (check_line_end(p) < 0)
            return -1;
        if (p->nfields >= p->limits.fields)
            return fail(p, 431, "Request Header Fields Too Large: too many header fields");
        f = field_new(p);
        f->name_off = (uint32_t)off_of(p, at);
        p->field_open = true;
        p->in_value = false;
    }
    f = &p->fields[p->nfields - 1];
    f->name_len += (uint32_t)len;
    return check_field_size(p, off_of(p, at) + len);
}

static int
on_header_field_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    const struct http_field *f;
    size_t i;

    if (p->phase != HTTP_PHASE_HEAD)
        return 0;
    f = &p->fields[p->nfields - 1];
    /* RFC 9112 §5.1: "No whitespace is allowed between the field name and colon
       ... a server MUST reject ... with a response status code of 400". llhttp's
       non-strict build keeps such a space as part of the name; a name must be a
       token, which catches it and anything else odd. */
    if (f->name_len == 0)
        return fail(p, 400, "Invalid header name: empty");
    for (i = 0; i < f->name_len; i++) {
        if (!field_is_tchar((unsigned char)p->base[f->name_off + i]))
            return fail(p, 400, "Invalid header name");
    }
    return 0;
}

/* Appends LEN bytes at SRC to field F's value, in place in the buffer (left of SRC). */
static void
unfold_piece(struct http_parser *p, struct http_field *f, const char *src, size_t len)
{
    char *dst = (char *)(uintptr_t)p->base + f->value_off + f->value_len;

    memmove(dst, src, len);
    f->value_len += (uint32_t)len;
}

static int
on_header_value(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);
    struct http_field *f;
    size_t off = off_of(p, at);

    if (p->phase != HTTP_PHASE_HEAD)
        return 0;
    f = &p->fields[p->nfields - 1];
    if (!p->in_value) {
        f->value_off = (uint32_t)off;
        p->in_value = true;
        p->fold_ws = false;
    } else if (off != p->value_raw_end) {
        /* llhttp hands a value to us in pieces only at the end of the data it
           was given, so the next piece starts right where the last one ended.
           A gap means a CRLF and whitespace lay between them: obs-fold, which
           RFC 9112 §5.2 lets a server reject with 400, and must unless told
           otherwise, since proxies unfold it differently. */
        if (!p->limits.obs_fold)
            return fail(p, 400, "Obsolete line folding in a header field");
        /* Unfolded as RFC 9112 §5.2 says, each fold one SP: the pieces move
           left, next to the value, over bytes llhttp has passed. */
        unfold_piece(p, f, " ", 1);
        p->fold_ws = true;
    }
    if (p->fold_ws || (size_t)f->value_off + f->value_len != off) {
        /* After a fold: its leading whitespace dropped, even where it comes
           in pieces of its own, and the rest following the moved bytes. */
        p->value_raw_end = off + len;
        while (p->fold_ws && len > 0 && (*at == ' ' || *at == '\t')) {
            at++;
            len--;
        }
        if (len > 0)
            p->fold_ws = false;
        unfold_piece(p, f, at, len);
        return check_field_size(p, p->value_raw_end);
    }
    f->value_len += (uint32_t)len;
    p->value_raw_end = off + len;
    return check_field_size(p, off + len);
}

/* Case-insensitive comparison of BUF[OFF, OFF+LEN) with LIT. */
static bool
span_caseeq(const struct http_parser *p, size_t off, size_t len, const char *lit)
{
    struct qln_slice s = {p->base + off, len};

    return slice_caseeq(s, lit);
}

static bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * RFC 9112 §6.1: a server that receives a transfer coding it does not
 * understand SHOULD answer 501. Only "chunked" is decoded here; passing
 * gzip/deflate bodies through undecoded, as gunicorn does, leaves the app to
 * guess where the body ends.
 */
static int
check_transfer_encoding(struct http_parser *p, const char *v, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t b, e;

        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        b = i;
        while (i < len && v[i] != ',' && v[i] != ';' && !is_ows(v[i]))
            i++;
        e = i;
        while (i < len && v[i] != ',')
            i++;
        if (e > b && !slice_caseeq((struct qln_slice){v + b, e - b}, "chunked"))
            return fail(p, 501, "Unsupported transfer coding");
    }
    return 0;
}

static int
on_header_value_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);
    struct http_field *f;
    const char *v;

    if (p->phase != HTTP_PHASE_HEAD)
        return 0;
    p->field_open = false;
    p->in_value = false;
    f = &p->fields[p->nfields - 1];
    if (f->value_len == 0)
        f->value_off = f->name_off + f->name_len;
    v = p->base + f->value_off;
    while (f->value_len > 0 && is_ows(v[f->value_len - 1]))
        f->value_len--;

    if (span_caseeq(p, f->name_off, f->name_len, "transfer-encoding")) {
        p->te_seen = true;
        return check_transfer_encoding(p, v, f->value_len);
    }
    if (span_caseeq(p, f->name_off, f->name_len, "host")) {
        /* RFC 9112 §3.2: more than one Host field line MUST be answered with 400;
           two hosts let a proxy and the app disagree on the target. */
        if (p->host_seen)
            return fail(p, 400, "Duplicate Host header");
        p->host_seen = true;
        return 0;
    }
    if (span_caseeq(p, f->name_off, f->name_len, "content-type")) {
        /* A singleton field (RFC 9110 §8.3): joined with a comma, two media
           types make one nobody sent, and a proxy may have passed either. */
        if (p->content_type_seen)
            return fail(p, 400, "Duplicate Content-Type header");
        p->content_type_seen = true;
        return 0;
    }
    if (span_caseeq(p, f->name_off, f->name_len, "expect")) {
        if (span_caseeq(p, f->value_off, f->value_len, "100-continue"))
            p->expect_continue = true;
        else
            return fail(p, 417, "Unsupported Expect header");
    }
    return 0;
}

static int
on_headers_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);

    /* llhttp takes "GET /" alone for an HTTP/0.9 simple request. */
    if (!p->line_done)
        return fail(p, 400, "Invalid request line: no HTTP version");
    if (check_line_end(p) < 0)
        return -1;
    /* RFC 9112 §3.2.4: the asterisk form is for a server-wide OPTIONS only. */
    if (p->target_len == 1 && p->base[p->target_off] == '*' &&
        (p->method_other || ll->method != HTTP_OPTIONS))
        return fail(p, 400, "Invalid request target: * is only for OPTIONS");
    if (p->te_seen) {
        /* RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means the
           framing is faulty. §6.3: Transfer-Encoding with Content-Length is
           a smuggling attempt; llhttp refuses it already, this is the belt. */
        if (effective_minor(ll) == 0)
            return fail(p, 400, "Transfer-Encoding in an HTTP/1.0 request");
        if (ll->flags & F_CONTENT_LENGTH)
            return fail(p, 400, "Content-Length with Transfer-Encoding");
        if (!(ll->flags & F_CHUNKED))
            return fail(p, 400, "Transfer-Encoding without final chunked");
    }
    p->chunked = (ll->flags & F_CHUNKED) != 0;
    p->content_length = (ll->flags & F_CONTENT_LENGTH) ? (int64_t)ll->content_length : -1;
    p->version_minor = effective_minor(ll);
    p->method = ll->method;
    p->keep_alive = llhttp_should_keep_alive(ll) != 0;
    if (p->version_minor == 0)
        p->expect_continue = false; /* RFC 9110 §10.1.1: ignored for HTTP/1.0 */
    p->size_line_next = p->chunked;
    return HPE_PAUSED;
}

static int
on_chunk_header(llhttp_t *ll)
{
    if (ll->content_length == 0)
        parser_of(ll)->last_chunk = true; /* trailers follow, not another size line */
    return 0;
}

/* A chunk's data and CRLF are through: the next byte begins a size line. */
static int
on_chunk_complete(llhttp_t *ll)
{
    struct http_parser *p = parser_of(ll);

    if (p->last_chunk)
        return 0;
    p->size_line_next = true;
    return HPE_PAUSED; /* http_parse tidies the line before llhttp reads on */
}

static int
on_body(llhttp_t *ll, const char *at, size_t len)
{
    struct http_parser *p = parser_of(ll);

    /* llhttp flushes an open span at the end of each buffer, possibly empty;
       pausing on nothing would hand out an empty slice and spin. */
    if (len == 0)
        return 0;
    p->body.p = at;
    p->body.len = len;
    return HPE_PAUSED;
}

static int
on_message_complete(llhttp_t *ll)
{
    parser_of(ll)->phase = HTTP_PHASE_DONE;
    return HPE_PAUSED;
}

/*
 * Only the callbacks above; never any llhttp_set_lenient_*(), and only
 * LENIENT_VERSION (which llhttp 8 has no setter for) with
 * permit_unconventional_http_version. Read-only; any process.
 */
static const llhttp_settings_t parser_settings = {
    .on_method = on_method,
    .on_method_complete = on_method_complete,
    .on_url = on_url,
    .on_version = on_version,
    .on_version_complete = on_version_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_chunk_complete = on_chunk_complete,
    .on_message_complete = on_message_complete,
};

void
http_parser_init(struct http_parser *p, const struct http_limits *limits)
{
    memset(p, 0, sizeof(*p));
    p->limits = *limits;
    llhttp_init(&p->ll, HTTP_REQUEST, &parser_settings);
    /* llhttp_reset keeps it from one message to the next. */
    if (limits->any_version)
        p->ll.lenient_flags |= LENIENT_VERSION;
    http_parser_next(p);
}

void
http_parser_fini(struct http_parser *p)
{
    free(p->fields);
    p->fields = NULL;
    p->fields_cap = 0;
}

void
http_parser_next(struct http_parser *p)
{
    /* A fresh llhttp state per message: we decide keep-alive ourselves, and an
       upgrade request we did not honour must not switch llhttp off. */
    llhttp_reset(&p->ll);
    p->phase = HTTP_PHASE_HEAD;
    p->start = SIZE_MAX;
    p->method_off = p->method_len = 0;
    p->target_off = p->target_len = 0;
    p->head_end = 0;
    p->line_done = false;
    p->line_end_checked = false;
    p->method_pending = false;
    p->method_other = false;
    p->version_end = 0;
    p->nfields = 0;
    p->field_open = false;
    p->in_value = false;
    p->te_seen = false;
    p->host_seen = false;
    p->content_type_seen = false;
    p->expect_continue = false;
    p->keep_alive = false;
    p->content_length = -1;
    p->chunked = false;
    p->size_line_next = false;
    p->last_chunk = false;
    p->version_minor = 1;
    p->method = 0;
    p->body.p = NULL;
    p->body.len = 0;
    p->status = 0;
    p->reason = NULL;
}

/* True when S is a possibly truncated "HTTP/" DIGIT "." DIGIT. */
static bool
looks_like_version(const char *s, size_t n)
{
    static const char pat[] = "HTTP/d.d";
    size_t i;

    if (n == 0 || n > sizeof(pat) - 1)
        return false;
    for (i = 0; i < n; i++) {
        if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
            return false;
    }
    return n >= 6; /* at least "HTTP/1" */
}

/*
 * llhttp says HPE_INVALID_VERSION both for "HTTP/1.x" (malformed: 400) and
 * for "HTTP/3.0" (well-formed but unsupported: 505). Look at the line.
 */
static int
version_status(const struct http_parser *p, const char *buf, size_t len)
{
    size_t b = p->start == SIZE_MAX ? 0 : p->start;
    size_t e = b, sp = SIZE_MAX;

    while (e < len && buf[e] != '\r' && buf[e] != '\n') {
        if (buf[e] == ' ')
            sp = e;
        e++;
    }
    /* HTTP/1.0 and 1.1 are served, so the fault lies elsewhere (a bare CR ...). */
    if (sp != SIZE_MAX && looks_like_version(buf + sp + 1, e - sp - 1) &&
        !(e - sp - 1 == 8 && buf[sp + 6] == '1' && buf[sp + 8] <= '1'))
        return 505;
    return 400;
}

/* The method llhttp reads in place of one it does not know (other_method). */
static const char stand_in_method[] = "GET";

/*
 * llhttp knows a fixed list of methods and says HPE_INVALID_METHOD for any
 * other. But any token is a valid method (RFC 9110 §9.1), and in WSGI the
 * app decides which ones it implements: WebDAV, cache purges and QUERY
 * rely on that, and gunicorn passes them on. So a token followed by SP is
 * kept as the method (at its offsets in BUF), while llhttp, reset, reads
 * stand_in_method in its place and then the rest of the request from that
 * SP: the target, version and fields get all of llhttp's checks, and a
 * method without semantics of its own parses as GET does. Anything other
 * than a token is a malformed line (400).
 *
 * llhttp fails at the first byte no known method has there, which may be
 * the last one received so far: then the method is scanned here again as
 * more bytes come, so the outcome does not depend on how they were split.
 * The message starts at offset 0 (http_parser_next).
 */
static enum http_rc
other_method(struct http_parser *p, char *buf, size_t len, size_t *pos)
{
    size_t i = 0, b;

    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    b = i;
    while (i < len && field_is_tchar((unsigned char)buf[i]))
        i++;
    if (i == len && i - b > p->limits.line)
        return http_parser_overflow(p);
    if (i == len) {
        p->method_pending = true;
        *pos = len;
        return HTTP_NEED_MORE;
    }
    p->method_pending = false;
    if (i == b || buf[i] != ' ') {
        p->phase = HTTP_PHASE_ERROR;
        p->status = 400;
        p->reason = "Invalid method";
        return HTTP_ERROR;
    }
    if (i - b > p->limits.line)
        return http_parser_overflow(p);
    llhttp_reset(&p->ll);
    p->method_other = true;
    p->start = p->method_off = b;
    p->method_len = i - b;
    if (llhttp_execute(&p->ll, stand_in_method, sizeof(stand_in_method) - 1) != HPE_OK)
        qln_unreachable();
    *pos = i;
    return http_parse(p, buf, len, pos);
}

static enum http_rc
parse_error(struct http_parser *p, llhttp_errno_t err, const char *buf, size_t len)
{
    p->phase = HTTP_PHASE_ERROR;
    if (p->status != 0)
        return HTTP_ERROR; /* one of our checks; reason set */
    p->reason = llhttp_get_error_reason(&p->ll);
    if (p->reason == NULL)
        p->reason = llhttp_errno_name(err);
    p->status = 400;
    if (err == HPE_INVALID_VERSION) {
        p->status = version_status(p, buf, len);
        if (p->status == 505)
            p->reason = "Invalid HTTP Version";
    } else if (err == HPE_PAUSED_H2_UPGRADE) {
        p->status = 505;
        p->reason = "HTTP/2 connection preface";
    }
    return HTTP_ERROR;
}

enum http_rc
http_parser_overflow(struct http_parser *p)
{
    p->phase = HTTP_PHASE_ERROR;
    if (!p->line_done) {
        p->status = 414;
        util_format(p->reason_buf, sizeof(p->reason_buf), "Request Line is too large (> %zu)",
                    p->limits.line);
        p->reason = p->reason_buf;
    } else {
        p->status = 431;
        p->reason = "Request Header Fields Too Large";
    }
    return HTTP_ERROR;
}

/*
 * RFC 9112 §7.1.1 allows whitespace (BWS) around the ";" and "=" of chunk
 * extensions, "5 ; name = value", which llhttp's strict build refuses. The
 * size line in LINE[0, N) (CRLF excluded) is rewritten in place to the form
 * llhttp takes: the whitespace is taken out, what remains moves right, and
 * the room it leaves becomes leading zeros of the chunk size, which keep its
 * value. Nothing else changes: whitespace anywhere else (inside the size, in
 * a name or a token value, at the end), or a line that does not begin with
 * a hex digit, is left for llhttp to refuse; a quoted value is copied as it
 * is. The line is at most HTTP_SIZE_LINE_MAX bytes.
 */
static void
drop_chunk_bws(char *line, size_t n)
{
    bool drop[HTTP_SIZE_LINE_MAX];
    size_t i = 0, j, w;

    if (n == 0 || !isxdigit((unsigned char)line[0]))
        return;
    memset(drop, 0, n);
    while (i < n && isxdigit((unsigned char)line[i]))
        i++;
    while (i < n) {
        if (is_ows(line[i])) {
            for (j = i; j < n && is_ows(line[j]); j++)
                ;
            if (j < n && (line[j] == ';' || line[j] == '='))
                memset(drop + i, 1, j - i);
            i = j;
        } else if (line[i] == ';' || line[i] == '=') {
            for (i++; i < n && is_ows(line[i]); i++)
                drop[i] = true;
        } else if (line[i] == '"') {
            for (i++; i < n && line[i] != '"'; i++) {
                if (line[i] == '\\')
                    i++;
            }
            i++;
        } else {
            i++;
        }
    }
    for (i = n, w = n; i > 0; i--) {
        if (!drop[i - 1])
            line[--w] = line[i - 1];
    }
    memset(line, '0', w);
}

/*
 * A chunk-size line begins at BUF[POS]: once it is whole in the buffer,
 * tidies it (drop_chunk_bws) and returns true. False while it is not: the
 * caller keeps those bytes and parses again with more. A line that grows
 * beyond HTTP_SIZE_LINE_MAX without its LF goes to llhttp as it is.
 */
static bool
tidy_size_line(struct http_parser *p, char *buf, size_t len, size_t pos)
{
    size_t n = len - pos;
    char *lf = memchr(buf + pos, '\n', n < HTTP_SIZE_LINE_MAX ? n : HTTP_SIZE_LINE_MAX);

    if (lf == NULL && n < HTTP_SIZE_LINE_MAX)
        return false;
    p->size_line_next = false;
    if (lf != NULL) {
        n = (size_t)(lf - (buf + pos));
        if (n > 0 && buf[pos + n - 1] == '\r')
            n--;
        drop_chunk_bws(buf + pos, n);
    }
    return true;
}

enum http_rc
http_parse(struct http_parser *p, char *buf, size_t len, size_t *pos)
{
    llhttp_errno_t err;
    size_t at;

    if (p->phase == HTTP_PHASE_ERROR)
        return HTTP_ERROR;
    if (p->phase == HTTP_PHASE_DONE)
        return HTTP_MSG_DONE;
    if (p->method_pending)
        return other_method(p, buf, len, pos);
    p->base = buf;
    p->body.len = 0;
    for (;;) {
        if (p->size_line_next && !tidy_size_line(p, buf, len, *pos))
            return HTTP_NEED_MORE; /* *pos stays at the line's start */
        if (llhttp_get_errno(&p->ll) == HPE_PAUSED)
            llhttp_resume(&p->ll);
        err = llhttp_execute(&p->ll, buf + *pos, len - *pos);
        if (err == HPE_OK) {
            *pos = len;
            return HTTP_NEED_MORE;
        }
        if ((err == HPE_INVALID_METHOD || err == HPE_CB_METHOD_COMPLETE) && p->status == 0 &&
            !p->method_other)
            return other_method(p, buf, len, pos);
        if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE)
            return parse_error(p, err, buf, len);

        at = off_of(p, llhttp_get_error_pos(&p->ll));
        *pos = at;
        if (p->phase == HTTP_PHASE_DONE || err == HPE_PAUSED_UPGRADE) {
            p->phase = HTTP_PHASE_DONE;
            return HTTP_MSG_DONE;
        }
        if (p->phase == HTTP_PHASE_HEAD) {
            p->phase = HTTP_PHASE_BODY;
            p->head_end = at;
            return HTTP_HEAD_DONE;
        }
        if (p->body.len > 0)
            return HTTP_BODY_DATA;
        /* Paused at the end of a chunk (on_chunk_complete): go on. */
    }
}

void
http_casefold_method(const struct http_parser *p, char *buf)
{
    size_t i;

    /* Only a method llhttp did not know can hold a lowercase letter. */
    if (!p->method_other)
        return;
    for (i = p->method_off; i < p->method_off + p->method_len; i++) {
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    }
}
