/*
 * The uwsgi packet decoder (--protocol uwsgi). A packet is length-prefixed
 * binary, not a text grammar, so there is no llhttp for it: this file checks
 * each length against the block that holds it, and then writes the packet
 * back as the HTTP/1.x head it stands for. That head goes through llhttp
 * like any client's, so one set of rules (limits, smuggling checks, the body
 * reader) covers both protocols. Worker processes; any thread.
 */
#include "qlnconfig.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "uwsgi.h"

/* The hop-by-hop fields nginx passes on as HTTP_* variables although it has
   acted on them itself: the body it sends is de-chunked and of CONTENT_LENGTH
   bytes, it answered any "Expect: 100-continue", and the connection to us is
   its own. Passing them on would make the HTTP parser frame the body or the
   response for a client we never talk to. */
static const char *const hop_vars[] = {
    "HTTP_CONNECTION",     "HTTP_TRANSFER_ENCODING", "HTTP_EXPECT", "HTTP_KEEP_ALIVE",
    "HTTP_CONTENT_LENGTH", "HTTP_CONTENT_TYPE",      "HTTP_TE",     "HTTP_TRAILER",
    "HTTP_HOST", /* written first, from its own slice */
};

static unsigned
le16(const char *p)
{
    return (unsigned)(unsigned char)p[0] | (unsigned)(unsigned char)p[1] << 8;
}

static bool
slice_is(struct qln_slice s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* RFC 9110 §5.6.2 tchar. */
static bool
is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool
all_tchar(struct qln_slice s)
{
    size_t i;

    for (i = 0; i < s.len; i++) {
        if (!is_tchar((unsigned char)s.p[i]))
            return false;
    }
    return s.len > 0;
}

/*
 * Takes the next variable from [*P, END) into K and V. False when a length
 * runs past END. Every read is checked before it happens: two bytes of
 * length, then that many bytes.
 */
static bool
next_var(const char **pp, const char *end, struct qln_slice *k, struct qln_slice *v)
{
    const char *p = *pp;
    size_t n;

    if (end - p < 2)
        return false;
    n = le16(p);
    p += 2;
    if ((size_t)(end - p) < n)
        return false;
    *k = (struct qln_slice){p, n};
    p += n;
    if (end - p < 2)
        return false;
    n = le16(p);
    p += 2;
    if ((size_t)(end - p) < n)
        return false;
    *v = (struct qln_slice){p, n};
    *pp = p + n;
    return true;
}

/* No byte of S may end a line or a string in the HTTP head it goes into. */
static bool
has_breaks(struct qln_slice s)
{
    return memchr(s.p, '\r', s.len) != NULL || memchr(s.p, '\n', s.len) != NULL ||
           memchr(s.p, '\0', s.len) != NULL;
}

/* A request target may not hold spaces or controls: they would split the request line. */
static bool
uri_ok(struct qln_slice s)
{
    size_t i;

    for (i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];

        if (ch <= 0x20 || ch == 0x7f)
            return false;
    }
    return true;
}

static bool
is_hop(struct qln_slice k)
{
    size_t i;

    for (i = 0; i < sizeof(hop_vars) / sizeof(hop_vars[0]); i++) {
        /* Any case: a name the HTTP parser would read as that field. */
        if (k.len == strlen(hop_vars[i]) && strncasecmp(k.p, hop_vars[i], k.len) == 0)
            return true;
    }
    return false;
}

/* The variables the request line and the fixed headers come from. */
static const struct {
    const char *name;
    size_t off; /* of its struct qln_slice in struct uwsgi_packet */
} noted[] = {
    {"REQUEST_METHOD", offsetof(struct uwsgi_packet, method)},
    {"REQUEST_URI", offsetof(struct uwsgi_packet, request_uri)},
    {"PATH_INFO", offsetof(struct uwsgi_packet, path_info)},
    {"QUERY_STRING", offsetof(struct uwsgi_packet, query)},
    {"SERVER_PROTOCOL", offsetof(struct uwsgi_packet, protocol)},
    {"CONTENT_LENGTH", offsetof(struct uwsgi_packet, content_length)},
    {"CONTENT_TYPE", offsetof(struct uwsgi_packet, content_type)},
    {"HTTP_HOST", offsetof(struct uwsgi_packet, host)},
    {"SERVER_NAME", offsetof(struct uwsgi_packet, server_name)},
    {"REMOTE_ADDR", offsetof(struct uwsgi_packet, remote_addr)},
    {"REMOTE_PORT", offsetof(struct uwsgi_packet, remote_port)},
};

static bool
is_on(struct qln_slice v)
{
    return (v.len == 2 && strncasecmp(v.p, "on", 2) == 0) || (v.len == 1 && v.p[0] == '1') ||
           (v.len == 4 && strncasecmp(v.p, "true", 4) == 0);
}

/* Notes K if it is one of noted[] (the last one wins), or says the scheme. */
static void
note_var(struct uwsgi_packet *p, struct qln_slice k, struct qln_slice v)
{
    size_t i;

    for (i = 0; i < sizeof(noted) / sizeof(noted[0]); i++) {
        if (slice_is(k, noted[i].name)) {
            *(struct qln_slice *)((char *)p + noted[i].off) = v;
            return;
        }
    }
    if (slice_is(k, "HTTPS"))
        p->https = p->https || is_on(v);
    else if (slice_is(k, "UWSGI_SCHEME") || slice_is(k, "wsgi.url_scheme"))
        p->https = p->https || slice_is(v, "https");
}

/* Checks one variable; NULL, or why the packet is refused. */
static const char *
check_var(struct qln_slice k, struct qln_slice v)
{
    if (k.len == 0)
        return "empty uwsgi variable name";
    if (has_breaks(k) || has_breaks(v))
        return "CR, LF or NUL in a uwsgi variable";
    if (k.len > 5 && memcmp(k.p, "HTTP_", 5) == 0 &&
        !all_tchar((struct qln_slice){k.p + 5, k.len - 5}))
        return "invalid header name in a uwsgi HTTP_ variable";
    return NULL;
}

enum uwsgi_rc
uwsgi_parse(const char *buf, size_t len, struct uwsgi_packet *p)
{
    const char *q, *end;
    struct qln_slice k, v;
    size_t datasize;

    memset(p, 0, sizeof(*p));
    if (len < 1)
        return UWSGI_NEED_MORE;
    /* modifier1 0 is a WSGI (CGI-style) request; the others are uWSGI's
       internal packet types (signals, Perl, Lua, spooler...) we cannot serve. */
    if (buf[0] != 0) {
        p->reason = "unsupported uwsgi modifier1 (only 0, a WSGI request, is)";
        return UWSGI_BAD;
    }
    if (len < UWSGI_HEADER_LEN)
        return UWSGI_NEED_MORE;
    datasize = le16(buf + 1);
    if (datasize == 0) {
        p->reason = "empty uwsgi packet (datasize 0)";
        return UWSGI_BAD;
    }
    p->len = UWSGI_HEADER_LEN + datasize;
    if (len < p->len)
        return UWSGI_NEED_MORE;
    q = buf + UWSGI_HEADER_LEN;
    end = buf + p->len;
    p->vars = (struct qln_slice){q, datasize};
    while (q < end) {
        const char *why;

        if (p->nvars == UWSGI_VARS_MAX) {
            p->reason = "too many uwsgi variables";
            return UWSGI_BAD;
        }
        if (!next_var(&q, end, &k, &v)) {
            p->reason = "truncated uwsgi variable (a length runs past the packet)";
            return UWSGI_BAD;
        }
        why = check_var(k, v);
        if (why != NULL) {
            p->reason = why;
            return UWSGI_BAD;
        }
        /* Two lengths for one body: which one frames it? (RFC 9112 §6.3) */
        if (slice_is(k, "CONTENT_LENGTH") && p->content_length.p != NULL &&
            (v.len != p->content_length.len || memcmp(v.p, p->content_length.p, v.len) != 0)) {
            p->reason = "differing CONTENT_LENGTH variables in a uwsgi packet";
            return UWSGI_BAD;
        }
        note_var(p, k, v);
        p->nvars++;
    }
    if (p->method.p == NULL || !all_tchar(p->method)) {
        p->reason = p->method.p == NULL ? "uwsgi packet without REQUEST_METHOD"
                                        : "invalid REQUEST_METHOD in a uwsgi packet";
        return UWSGI_BAD;
    }
    if (p->request_uri.len > 0 ? !uri_ok(p->request_uri) : !uri_ok(p->query)) {
        p->reason = "space or control character in the uwsgi REQUEST_URI or QUERY_STRING";
        return UWSGI_BAD;
    }
    p->http10 = slice_is(p->protocol, "HTTP/1.0");
    return UWSGI_DONE;
}

size_t
uwsgi_http_head_size(const struct uwsgi_packet *p)
{
    /* The variable block holds every byte the head copies; a path may triple
       when percent-encoded, and the fixed text of the request line, the
       fixed header names and their CRLFs take less than 128 bytes. */
    return 3 * p->vars.len + 128;
}

static char *
put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}

#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

/* PATH_INFO is decoded by the front end: encode what a target cannot hold raw. */
static char *
put_path(char *o, struct qln_slice s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;

    if (s.len == 0 || s.p[0] != '/')
        *o++ = '/';
    for (i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.p[i];

        if (ch <= 0x20 || ch >= 0x7f || ch == '%' || ch == '?' || ch == '#') {
            *o++ = '%';
            *o++ = hex[ch >> 4];
            *o++ = hex[ch & 15];
        } else {
            *o++ = (char)ch;
        }
    }
    return o;
}

/* HTTP_X_FORWARDED_FOR -> X-Forwarded-For, as a client would have written it. */
static char *
put_name(char *o, struct qln_slice k)
{
    bool word_start = true;
    size_t i;

    for (i = 5; i < k.len; i++) {
        char ch = k.p[i];

        if (ch == '_') {
            *o++ = '-';
            word_start = true;
            continue;
        }
        if (word_start && ch >= 'a' && ch <= 'z')
            ch = (char)(ch - 'a' + 'A');
        else if (!word_start && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        *o++ = ch;
        word_start = false;
    }
    return o;
}

size_t
uwsgi_http_head(const struct uwsgi_packet *p, char *out)
{
    const char *q = p->vars.p, *end = p->vars.p + p->vars.len;
    struct qln_slice k, v;
    char *o = out;

    o = put(o, p->method.p, p->method.len);
    *o++ = ' ';
    if (p->request_uri.len > 0) {
        o = put(o, p->request_uri.p, p->request_uri.len);
    } else {
        o = put_path(o, p->path_info);
        if (p->query.len > 0) {
            *o++ = '?';
            o = put(o, p->query.p, p->query.len);
        }
    }
    o = p->http10 ? PUT_LIT(o, " HTTP/1.0\r\n") : PUT_LIT(o, " HTTP/1.1\r\n");
    if (p->host.p != NULL || p->server_name.len > 0) {
        o = PUT_LIT(o, "Host: ");
        o = p->host.p != NULL ? put(o, p->host.p, p->host.len)
                              : put(o, p->server_name.p, p->server_name.len);
        o = PUT_LIT(o, "\r\n");
    }
    /* nginx's uwsgi_params send CONTENT_LENGTH and CONTENT_TYPE empty for
       requests without them: empty means absent. */
    if (p->content_length.len > 0) {
        o = PUT_LIT(o, "Content-Length: ");
        o = put(o, p->content_length.p, p->content_length.len);
        o = PUT_LIT(o, "\r\n");
    }
    if (p->content_type.len > 0) {
        o = PUT_LIT(o, "Content-Type: ");
        o = put(o, p->content_type.p, p->content_type.len);
        o = PUT_LIT(o, "\r\n");
    }
    /* The block was checked whole by uwsgi_parse(): every length fits. */
    while (q < end && next_var(&q, end, &k, &v)) {
        if (k.len <= 5 || memcmp(k.p, "HTTP_", 5) != 0 || is_hop(k))
            continue;
        o = put_name(o, k);
        o = PUT_LIT(o, ": ");
        o = put(o, v.p, v.len);
        o = PUT_LIT(o, "\r\n");
    }
    o = PUT_LIT(o, "\r\n");
    return (size_t)(o - out);
}
