/*
 * Unit tests for core/http.c: a table of raw requests, each parsed in one
 * go and again one byte at a time, checked against the expected request
 * fields and decoded body, or the expected error status.
 */
#include "qlnconfig.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <check.h>

#include <qilin/request.h>

#include "core/field.h"
#include "core/http.h"
#include "core/request.h"
#include "core/util.h"

#define ANY (-2) /* "do not check" for numeric fields */

struct row {
    const char *name;
    const char *raw;
    size_t rawlen; /* 0: strlen(raw) */
    int status;    /* 0: valid; else the answer expected */
    const char *method, *target, *path, *query;
    int minor;
    int nheaders;
    int hidx; /* header checked (name/value) */
    const char *hname, *hvalue;
    long long cl;
    int chunked, keep_alive, expect;
    const char *body;
    struct http_limits lim; /* zero fields: defaults */
};

/* Valid rows: V(name, raw, method, target, path, query, minor, nheaders, cl, chunked, ka, body) */
#define V(n, r, m, t, pa, q, mi, nh, c, ch, ka, b)                                                 \
    {                                                                                              \
        .name = n, .raw = r, .method = m, .target = t, .path = pa, .query = q, .minor = mi,        \
        .nheaders = nh, .hidx = -1, .cl = c, .chunked = ch, .keep_alive = ka, .expect = ANY,       \
        .body = b                                                                                  \
    }
/* Valid rows checking header HIDX. */
#define H(n, r, nh, i, hn, hv)                                                                     \
    {                                                                                              \
        .name = n, .raw = r, .minor = ANY, .nheaders = nh, .hidx = i, .hname = hn, .hvalue = hv,   \
        .cl = ANY, .chunked = ANY, .keep_alive = ANY, .expect = ANY                                \
    }
/* Invalid rows. */
#define E(n, r, st)                                                                                \
    {                                                                                              \
        .name = n, .raw = r, .status = st                                                          \
    }
/* Valid rows checking header HIDX, parsed with permit_obsolete_folding. */
#define HF(n, r, nh, i, hn, hv)                                                                    \
    {                                                                                              \
        .name = n, .raw = r, .minor = ANY, .nheaders = nh, .hidx = i, .hname = hn, .hvalue = hv,   \
        .cl = ANY, .chunked = ANY, .keep_alive = ANY, .expect = ANY, .lim = {                      \
            4094,                                                                                  \
            100,                                                                                   \
            8190,                                                                                  \
            true                                                                                   \
        }                                                                                          \
    }
/* Valid rows checking the version served, parsed with permit_unconventional_http_version. */
#define VV(n, r, mi)                                                                               \
    {                                                                                              \
        .name = n, .raw = r, .minor = mi, .nheaders = 0, .hidx = -1, .cl = ANY, .chunked = ANY,    \
        .keep_alive = ANY, .expect = ANY, .lim = {                                                 \
            4094,                                                                                  \
            100,                                                                                   \
            8190,                                                                                  \
            false,                                                                                 \
            true                                                                                   \
        }                                                                                          \
    }
#define EL(n, r, st, l, f, fs)                                                                     \
    {                                                                                              \
        .name = n, .raw = r, .status = st, .lim = {.line = l, .fields = f, .field_size = fs }      \
    }
/* Invalid rows whose literal holds a NUL. */
#define EZ(n, r, st)                                                                               \
    {                                                                                              \
        .name = n, .raw = r, .rawlen = sizeof(r) - 1, .status = st                                 \
    }

static const struct row rows[] = {
    V("simple GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/", "/", "", 1, 1, -1, 0, 1, ""),
    V("path and query", "GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/a/b?x=1&y=2",
      "/a/b", "x=1&y=2", 1, 1, -1, 0, 1, ""),
    V("query and fragment", "GET /p?q=1#frag HTTP/1.1\r\n\r\n", "GET", "/p?q=1#frag", "/p", "q=1",
      1, 0, -1, 0, 1, ""),
    V("fragment only", "GET /p#f HTTP/1.1\r\n\r\n", "GET", "/p#f", "/p", "", 1, 0, -1, 0, 1, ""),
    V("percent-encoding kept", "GET /a%20b?c=%41 HTTP/1.1\r\n\r\n", "GET", "/a%20b?c=%41", "/a%20b",
      "c=%41", 1, 0, -1, 0, 1, ""),
    V("absolute-form", "GET http://example.com/a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n",
      "GET", "http://example.com/a/b?c=d", "/a/b", "c=d", 1, 1, -1, 0, 1, ""),
    V("absolute-form without path", "GET http://example.com HTTP/1.1\r\n\r\n", "GET",
      "http://example.com", "", "", 1, 0, -1, 0, 1, ""),
    V("OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", "OPTIONS", "*", "", "", 1, 1, -1, 0, 1,
      ""),
    V("HEAD", "HEAD /h HTTP/1.1\r\n\r\n", "HEAD", "/h", "/h", "", 1, 0, -1, 0, 1, ""),
    V("HTTP/1.0 closes", "GET / HTTP/1.0\r\n\r\n", "GET", "/", "/", "", 0, 0, -1, 0, 0, ""),
    V("HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "/", "/",
      "", 0, 1, -1, 0, 1, ""),
    V("HTTP/1.1 Connection: close", "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "GET", "/", "/",
      "", 1, 1, -1, 0, 0, ""),
    V("Content-Length body", "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "POST", "/p",
      "/p", "", 1, 1, 5, 0, 1, "hello"),
    V("Content-Length 0", "POST /p HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "POST", "/p", "/p", "",
      1, 1, 0, 0, 1, ""),
    V("Content-Length with OWS", "PUT / HTTP/1.1\r\nContent-Length:  3 \r\n\r\nabc", "PUT", "/",
      "/", "", 1, 1, 3, 0, 1, "abc"),
    V("chunked body",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      "POST", "/", "/", "", 1, 1, -1, 1, 1, "hello world"),
    V("chunked, extension and trailer",
      "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
      "3;name=val\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
      "POST", "/", "/", "", 1, 1, -1, 1, 1, "abc0123456789"),
    V("leading CRLF", "\r\nGET /x HTTP/1.1\r\n\r\n", "GET", "/x", "/x", "", 1, 0, -1, 0, 1, ""),
    V("DELETE", "DELETE /r/1 HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n", "DELETE", "/r/1", "/r/1",
      "", 1, 2, -1, 0, 1, ""),
    V("Upgrade is ignored", "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
      "GET", "/ws", "/ws", "", 1, 2, -1, 0, ANY, ""),
    V("empty query", "GET /e? HTTP/1.1\r\n\r\n", "GET", "/e?", "/e", "", 1, 0, -1, 0, 1, ""),
    /* RFC 9110 §9.1: any token is a method; the app decides what it implements. */
    V("unknown method", "FOO /f HTTP/1.1\r\n\r\n", "FOO", "/f", "/f", "", 1, 0, -1, 0, 1, ""),
    V("lowercase method", "get / HTTP/1.1\r\n\r\n", "get", "/", "/", "", 1, 0, -1, 0, 1, ""),
    V("QUERY with a body", "QUERY /q?a=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nx=1", "QUERY",
      "/q?a=1", "/q", "a=1", 1, 1, 3, 0, 1, "x=1"),
/* RFC 9112 §7.1.1: BWS around the ";" and "=" of chunk extensions. */
#define CHUNKED_POST "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    V("chunk ext, space after ;", CHUNKED_POST "5; a=b\r\nhello\r\n0\r\n\r\n", "POST", "/", "/", "",
      1, 1, -1, 1, 1, "hello"),
    V("chunk ext, space before ;", CHUNKED_POST "5 ;a\r\nhello\r\n0\r\n\r\n", "POST", "/", "/", "",
      1, 1, -1, 1, 1, "hello"),
    V("chunk ext, spaces around =", CHUNKED_POST "5;a = b\r\nhello\r\n0\r\n\r\n", "POST", "/", "/",
      "", 1, 1, -1, 1, 1, "hello"),
    V("chunk ext, tab before ;", CHUNKED_POST "5\t;a\r\nhello\r\n0\r\n\r\n", "POST", "/", "/", "",
      1, 1, -1, 1, 1, "hello"),
    V("chunk ext, all of it and a quoted value",
      CHUNKED_POST "3 \t; a = \"x y;z\" ;b\r\nabc\r\n2 ; c\r\nde\r\n0 ; end = 1\r\n\r\n", "POST",
      "/", "/", "", 1, 1, -1, 1, 1, "abcde"),
    V("chunk ext, spaces on a later chunk", CHUNKED_POST "2\r\nab\r\n3   ;   x\r\ncde\r\n0\r\n\r\n",
      "POST", "/", "/", "", 1, 1, -1, 1, 1, "abcde"),
    V("chunked body, unknown method",
      "BREW /pot HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ntea\r\n0\r\n\r\n", "BREW",
      "/pot", "/pot", "", 1, 1, -1, 1, 1, "tea"),
    V("token characters", "X-CUSTOM.1!#$%&'*+^_`|~ / HTTP/1.1\r\n\r\n", "X-CUSTOM.1!#$%&'*+^_`|~",
      "/", "/", "", 1, 0, -1, 0, 1, ""),
    V("leading hyphen", "-BLARGH / HTTP/1.1\r\n\r\n", "-BLARGH", "/", "/", "", 1, 0, -1, 0, 1, ""),
    V("one letter", "A / HTTP/1.0\r\n\r\n", "A", "/", "/", "", 0, 0, -1, 0, 0, ""),
    V("a prefix of a known method", "GE / HTTP/1.1\r\n\r\n", "GE", "/", "/", "", 1, 0, -1, 0, 1,
      ""),
    V("a known method and more", "GETX / HTTP/1.1\r\n\r\n", "GETX", "/", "/", "", 1, 0, -1, 0, 1,
      ""),
    V("RTSP's methods are tokens too", "PAUSE /p HTTP/1.1\r\n\r\n", "PAUSE", "/p", "/p", "", 1, 0,
      -1, 0, 1, ""),
    V("WebDAV", "PROPFIND /d HTTP/1.1\r\nDepth: 1\r\n\r\n", "PROPFIND", "/d", "/d", "", 1, 1, -1, 0,
      1, ""),
    V("leading CRLF, unknown method", "\r\nFOO /x HTTP/1.1\r\n\r\n", "FOO", "/x", "/x", "", 1, 0,
      -1, 0, 1, ""),
    H("value trimmed of OWS", "GET / HTTP/1.1\r\nX-A:   value  \t\r\n\r\n", 1, 0, "X-A", "value"),
    H("empty value", "GET / HTTP/1.1\r\nX-Empty:\r\nB: 2\r\n\r\n", 2, 0, "X-Empty", ""),
    H("name case kept", "GET / HTTP/1.1\r\nX-CuStOm: Yes\r\n\r\n", 1, 0, "X-CuStOm", "Yes"),
    H("inner spaces kept", "GET / HTTP/1.1\r\nUser-Agent: a b  c\r\n\r\n", 1, 0, "User-Agent",
      "a b  c"),
    H("obs-text accepted", "GET / HTTP/1.1\r\nX-Name: caf\xc3\xa9\r\n\r\n", 1, 0, "X-Name",
      "caf\xc3\xa9"),
    H("fifth of five", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n", 5, 4, "E",
      "5"),
    H("repeated names kept in order", "GET / HTTP/1.1\r\nAccept: a\r\nAccept: b\r\n\r\n", 2, 1,
      "Accept", "b"),
    H("tab inside value", "GET / HTTP/1.1\r\nX: a\tb\r\n\r\n", 1, 0, "X", "a\tb"),

    E("no version", "GET /\r\n\r\n", 400),
    E("asterisk with GET", "GET * HTTP/1.1\r\n\r\n", 400),
    E("asterisk with POST", "POST * HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 400),
    E("asterisk with another method", "FOO * HTTP/1.1\r\n\r\n", 400),
    E("garbage line", "HELLO\r\n\r\n", 400),
    E("method not a token", "G@T / HTTP/1.1\r\n\r\n", 400),
    E("unknown method, no SP", "FOO\t/ HTTP/1.1\r\n\r\n", 400),
    E("unknown method, two SP", "FOO  / HTTP/1.1\r\n\r\n", 400),
    E("unknown method, bad version", "FOO / HTTP/1.x\r\n\r\n", 400),
    E("unknown method, HTTP/3", "FOO / HTTP/3.0\r\n\r\n", 505),
    E("unknown method, bad target", "FOO /a\x01b HTTP/1.1\r\n\r\n", 400),
    E("unknown method, smuggling",
      "FOO / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    E("empty method", " / HTTP/1.1\r\n\r\n", 400),
    E("two spaces after method", "GET  / HTTP/1.1\r\n\r\n", 400),
    E("bare LF after the request line", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
    E("bare LF ending a fieldless head", "GET / HTTP/1.1\n\r\n", 400),
    E("bare CR after the version", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    E("chunk data longer than its size",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400),
    E("space in target", "GET /a b HTTP/1.1\r\n\r\n", 400),
    E("control char in target", "GET /a\x01 HTTP/1.1\r\n\r\n", 400),
    E("tab in target", "GET /a\tb HTTP/1.1\r\n\r\n", 400),
    E("bad header name", "GET / HTTP/1.1\r\nBad@Name: x\r\n\r\n", 400),
    E("space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    E("header without colon", "GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
    E("obs-fold", "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", 400),
    E("obs-fold with tab", "GET / HTTP/1.1\r\nX-A: one\r\n\ttwo\r\nB: c\r\n\r\n", 400),
    HF("obs-fold permitted", "GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", 1, 0, "X-A", "one two"),
    HF("obs-folds permitted, then a field",
       "GET / HTTP/1.1\r\nX-A: one\r\n \t two\r\n\tthree  \r\nB: c\r\n\r\n", 2, 0, "X-A",
       "one two three"),
    HF("field after an unfolded one", "GET / HTTP/1.1\r\nX-A: one\r\n two\r\nB: c\r\n\r\n", 2, 1,
       "B", "c"),
    E("bare CR in value", "GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", 400),
    E("bare LF line ends", "GET / HTTP/1.1\nHost: x\n\n", 400),
    EZ("NUL in value", "GET / HTTP/1.1\r\nX-A: a\0b\r\n\r\n", 400),
    EZ("NUL in target", "GET /a\0b HTTP/1.1\r\n\r\n", 400),
    EZ("NUL in header name", "GET / HTTP/1.1\r\nX\0A: b\r\n\r\n", 400),
    E("chunk size overflow",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 400),
    E("DEL in value", "GET / HTTP/1.1\r\nX-A: a\x7f\r\n\r\n", 400),
    E("Content-Length then Transfer-Encoding",
      "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    E("Transfer-Encoding then Content-Length",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", 400),
    E("differing Content-Length",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
    E("repeated Content-Length",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na", 400),
    E("Content-Length not a number", "POST / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", 400),
    E("negative Content-Length", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    E("bad chunk size", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", 400),
    E("chunk ext without a size", CHUNKED_POST " ;a\r\nhello\r\n0\r\n\r\n", 400),
    E("space inside a chunk size", CHUNKED_POST "5 5\r\nhello\r\n0\r\n\r\n", 400),
    E("space after a chunk size", CHUNKED_POST "5 \r\nhello\r\n0\r\n\r\n", 400),
    E("space inside a chunk ext name", CHUNKED_POST "5;a b\r\nhello\r\n0\r\n\r\n", 400),
    E("chunk ext, bare LF after spaces", CHUNKED_POST "5 ;a\nhello\r\n0\r\n\r\n", 400),
    E("chunk data overrun", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
      400),
    E("chunked in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    E("chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    E("chunked twice",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400),
    E("duplicate Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    E("duplicate Content-Type",
      "POST / HTTP/1.1\r\nContent-Type: a/b\r\ncontent-type: c/d\r\nContent-Length: 0\r\n\r\n",
      400),
    E("Transfer-Encoding gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    E("Transfer-Encoding gzip, chunked",
      "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    E("Transfer-Encoding unknown", "POST / HTTP/1.1\r\nTransfer-Encoding: foo\r\n\r\n", 501),
    E("Transfer-Encoding identity", "POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 501),
    E("HTTP/2.0", "GET / HTTP/2.0\r\n\r\n", 505),
    E("HTTP/1.2", "GET / HTTP/1.2\r\n\r\n", 505),
    E("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", 505),
    E("HTTP/3.0", "GET / HTTP/3.0\r\n\r\n", 505),
    E("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    VV("HTTP/1.2 permitted", "GET / HTTP/1.2\r\n\r\n", 1),
    VV("HTTP/2.0 permitted", "GET / HTTP/2.0\r\n\r\n", 1),
    VV("HTTP/0.9 permitted", "GET / HTTP/0.9\r\n\r\n", 0),
    VV("HTTP/1.0 still 1.0", "GET / HTTP/1.0\r\n\r\n", 0),
    E("malformed version", "GET / HTTP/1.x\r\n\r\n", 400),
    E("lowercase version", "GET / http/1.1\r\n\r\n", 400),
    E("Expect other than 100-continue", "GET / HTTP/1.1\r\nExpect: the-unexpected\r\n\r\n", 417),
    EL("request line too long", "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n",
       414, 32, 100, 8190),
    EL("unknown method too long",
       "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n\r\n", 414, 40, 100,
       8190),
    EL("unknown method and target too long",
       "FOO /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", 414, 40, 100, 8190),
    EL("method+version too long", "OPTIONS /aaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n", 414, 40, 100,
       8190),
    EL("too many headers", "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431, 4094, 3,
       8190),
    EL("header line too long", "GET / HTTP/1.1\r\nX-Long: 0123456789012345678901234567\r\n\r\n",
       431, 4094, 100, 32),
    EL("header name too long", "GET / HTTP/1.1\r\nX-0123456789012345678901234567890: v\r\n\r\n",
       431, 4094, 100, 32),
};

/* Limits in a row that leaves them 0 (gunicorn's defaults). */
static const struct http_limits default_limits = {.line = 4094, .fields = 100, .field_size = 8190};

/* What one parse run saw. */
struct result {
    int status;
    bool head;
    bool done;
    struct qln_request req;
    char body[256];
    size_t body_len;
    size_t consumed; /* bytes used by the message (pipelining) */
    char *raw;       /* the parsed copy, which the slices point into */
};

static void
result_fini(struct result *r)
{
    request_fini(&r->req);
    free(r->raw);
    r->raw = NULL;
}

/*
 * Parses RAW[0, N) as if it arrived STEP bytes at a time (the buffer grows,
 * as conn.c's does), collecting the head and the decoded body. The parser
 * works on a copy, since it may tidy chunk-size lines in place.
 */
static void
drive(struct http_parser *p, const char *src, size_t n, size_t step, struct result *out)
{
    struct qln_header *headers = out->req.headers; /* kept across runs, as a conn keeps it */
    size_t cap = out->req.headers_cap, len = 0, pos = 0;
    char *raw = malloc(n + 1);
    enum http_rc rc;

    memcpy(raw, src, n);
    free(out->raw);
    memset(out, 0, sizeof(*out));
    out->req.headers = headers;
    out->req.headers_cap = cap;
    out->raw = raw;
    len = step < n ? step : n;
    while (!out->done && out->status == 0) {
        rc = http_parse(p, raw, len, &pos);
        switch (rc) {
        case HTTP_HEAD_DONE:
            ck_assert(!out->head);
            out->head = true;
            request_fill(&out->req, p, raw);
            break;
        case HTTP_BODY_DATA:
            ck_assert(out->head);
            ck_assert_uint_gt(p->body.len, 0);
            ck_assert_uint_le(out->body_len + p->body.len, sizeof(out->body));
            memcpy(out->body + out->body_len, p->body.p, p->body.len);
            out->body_len += p->body.len;
            break;
        case HTTP_MSG_DONE:
            out->done = true;
            out->consumed = pos;
            break;
        case HTTP_ERROR:
            out->status = p->status;
            ck_assert_ptr_nonnull(p->reason);
            ck_assert_uint_gt(strlen(p->reason), 0);
            break;
        case HTTP_NEED_MORE:
            /* Short of LEN only at an unfinished chunk-size line. */
            ck_assert_uint_le(pos, len);
            ck_assert(pos == len || p->size_line_next);
            if (len == n)
                return;
            len = n - len < step ? n : len + step;
            break;
        }
    }
}

static void
check_slice(struct qln_slice s, const char *want, const char *what, const struct row *r)
{
    ck_assert_msg(s.len == strlen(want) && memcmp(s.p, want, s.len) == 0,
                  "%s: %s is '%.*s', want '%s'", r->name, what, (int)s.len, s.p, want);
}

static void
check_row(const struct row *r, size_t step)
{
    struct http_parser p;
    struct result res = {0};
    const struct http_limits *lim = r->lim.line ? &r->lim : &default_limits;
    size_t n = r->rawlen ? r->rawlen : strlen(r->raw);

    http_parser_init(&p, lim);
    drive(&p, r->raw, n, step, &res);
    if (r->status != 0) {
        ck_assert_msg(res.status == r->status, "%s (step %zu): status %d, want %d", r->name, step,
                      res.status, r->status);
        goto out;
    }
    ck_assert_msg(res.status == 0, "%s (step %zu): rejected with %d: %s", r->name, step, res.status,
                  p.reason);
    ck_assert_msg(res.head && res.done, "%s (step %zu): incomplete", r->name, step);
    ck_assert_uint_eq(res.consumed, n);
    if (r->method != NULL) {
        check_slice(res.req.method, r->method, "method", r);
        check_slice(res.req.target, r->target, "target", r);
        check_slice(res.req.path, r->path, "path", r);
        check_slice(res.req.query, r->query, "query", r);
    }
    if (r->minor != ANY)
        ck_assert_int_eq(res.req.version_minor, r->minor);
    ck_assert_msg((int)res.req.nheaders == r->nheaders, "%s: %zu headers, want %d", r->name,
                  res.req.nheaders, r->nheaders);
    if (r->hidx >= 0) {
        check_slice(res.req.headers[r->hidx].name, r->hname, "header name", r);
        check_slice(res.req.headers[r->hidx].value, r->hvalue, "header value", r);
    }
    if (r->cl != ANY)
        ck_assert_int_eq(res.req.content_length, r->cl);
    if (r->chunked != ANY)
        ck_assert_int_eq(res.req.chunked, r->chunked);
    if (r->keep_alive != ANY)
        ck_assert_msg(res.req.keep_alive == r->keep_alive, "%s: keep_alive %d", r->name,
                      res.req.keep_alive);
    if (r->body != NULL)
        ck_assert_msg(res.body_len == strlen(r->body) &&
                          memcmp(res.body, r->body, res.body_len) == 0,
                      "%s (step %zu): body '%.*s', want '%s'", r->name, step, (int)res.body_len,
                      res.body, r->body);
out:
    result_fini(&res);
    http_parser_fini(&p);
}

START_TEST(test_row_whole)
{
    check_row(&rows[_i], SIZE_MAX);
}
END_TEST

START_TEST(test_row_bytewise)
{
    check_row(&rows[_i], 1);
}
END_TEST

START_TEST(test_row_split3)
{
    check_row(&rows[_i], 3);
}
END_TEST

START_TEST(test_expect_continue)
{
    static const char *const raw[] = {
        "POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
        "POST / HTTP/1.1\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx",
        "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx",
    };
    static const bool want[] = {true, true, false};
    struct http_parser p;
    struct result res = {0};
    size_t i;

    for (i = 0; i < ARRAY_SIZE(raw); i++) {
        http_parser_init(&p, &default_limits);
        drive(&p, raw[i], strlen(raw[i]), SIZE_MAX, &res);
        ck_assert_int_eq(res.status, 0);
        ck_assert_int_eq(res.req.expect_continue, want[i]);
        result_fini(&res);
        http_parser_fini(&p);
    }
}
END_TEST

/* Two requests in one buffer: the first stops at its end, the second parses after a restart. */
START_TEST(test_pipelined)
{
    static char raw[] = "POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                        "GET /two HTTP/1.1\r\nHost: h\r\n\r\n";
    struct http_parser p;
    struct result res = {0};
    size_t first;

    http_parser_init(&p, &default_limits);
    drive(&p, raw, sizeof(raw) - 1, SIZE_MAX, &res);
    ck_assert(res.done);
    check_slice(res.req.target, "/one", "target", &rows[0]);
    ck_assert_int_eq((int)res.body_len, 3);
    first = res.consumed;
    ck_assert_uint_eq(first, strlen("POST /one HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"));
    /* The parser stays at the end of the first message until told to go on. */
    ck_assert_int_eq(http_parse(&p, raw, sizeof(raw) - 1, &first), HTTP_MSG_DONE);

    http_parser_next(&p);
    drive(&p, raw + first, sizeof(raw) - 1 - first, SIZE_MAX, &res);
    ck_assert(res.done);
    check_slice(res.req.target, "/two", "target", &rows[0]);
    ck_assert_uint_eq(res.req.nheaders, 1);
    check_slice(res.req.headers[0].value, "h", "host", &rows[0]);
    result_fini(&res);
    http_parser_fini(&p);
}
END_TEST

/* A method llhttp does not know, then a known one, then an unknown one again, pipelined. */
START_TEST(test_pipelined_methods)
{
    static const char *const want[] = {"BREW", "GET", "PURGE", "query"};
    static const char raw[] = "BREW /a HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                              "GET /b HTTP/1.1\r\n\r\n"
                              "PURGE /c HTTP/1.1\r\n\r\n"
                              "query /d HTTP/1.1\r\n\r\n";
    struct http_parser p;
    struct result res = {0};
    size_t off = 0, i;

    http_parser_init(&p, &default_limits);
    for (i = 0; i < ARRAY_SIZE(want); i++) {
        if (i > 0)
            http_parser_next(&p);
        drive(&p, raw + off, sizeof(raw) - 1 - off, SIZE_MAX, &res);
        ck_assert(res.done);
        check_slice(res.req.method, want[i], "method", &rows[0]);
        off += res.consumed;
    }
    ck_assert_uint_eq(off, sizeof(raw) - 1);
    result_fini(&res);
    http_parser_fini(&p);
}
END_TEST

/*
 * casefold_http_method: the method is uppercased in the buffer, and a HEAD
 * or CONNECT that arrived in lowercase then means what it says.
 */
START_TEST(test_casefold_method)
{
    static const struct {
        const char *raw, *method;
        bool fold, is_head;
    } cases[] = {
        {"head /x HTTP/1.1\r\n\r\n", "HEAD", true, true},
        {"head /x HTTP/1.1\r\n\r\n", "head", false, false},
        {"Brew-Tea /x HTTP/1.1\r\n\r\n", "BREW-TEA", true, false},
        {"HEAD /x HTTP/1.1\r\n\r\n", "HEAD", true, true},
        {"GET /x HTTP/1.1\r\n\r\n", "GET", true, false},
    };
    struct http_parser p;
    char buf[64];
    size_t i, pos;

    for (i = 0; i < ARRAY_SIZE(cases); i++) {
        struct qln_request req = {0};

        snprintf(buf, sizeof(buf), "%s", cases[i].raw);
        pos = 0;
        http_parser_init(&p, &default_limits);
        ck_assert_int_eq(http_parse(&p, buf, strlen(buf), &pos), HTTP_HEAD_DONE);
        if (cases[i].fold)
            http_casefold_method(&p, buf);
        request_fill(&req, &p, buf);
        check_slice(req.method, cases[i].method, "method", &rows[0]);
        ck_assert_int_eq(req.is_head, cases[i].is_head);
        ck_assert(!req.is_connect);
        request_fini(&req);
        http_parser_fini(&p);
    }
}
END_TEST

/* The head stops at the blank line: body bytes are not parsed before the app asks. */
START_TEST(test_head_stops_before_body)
{
    static char raw[] = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody";
    struct http_parser p;
    size_t pos = 0;

    http_parser_init(&p, &default_limits);
    ck_assert_int_eq(http_parse(&p, raw, sizeof(raw) - 1, &pos), HTTP_HEAD_DONE);
    ck_assert_uint_eq(pos, sizeof(raw) - 1 - 4);
    ck_assert_uint_eq(p.head_end, pos);
    ck_assert_int_eq(http_parse(&p, raw, sizeof(raw) - 1, &pos), HTTP_BODY_DATA);
    ck_assert_uint_eq(p.body.len, 4);
    ck_assert_ptr_eq(p.body.p, raw + sizeof(raw) - 1 - 4);
    ck_assert_int_eq(http_parse(&p, raw, sizeof(raw) - 1, &pos), HTTP_MSG_DONE);
    http_parser_fini(&p);
}
END_TEST

/* A head outgrowing the connection's buffer: 414 in the line, 431 in the fields. */
START_TEST(test_overflow)
{
    struct http_parser p;
    size_t pos = 0;

    http_parser_init(&p, &default_limits);
    ck_assert_int_eq(http_parse(&p, "GET /aaaa", 9, &pos), HTTP_NEED_MORE);
    ck_assert_int_eq(http_parser_overflow(&p), HTTP_ERROR);
    ck_assert_int_eq(p.status, 414);
    http_parser_next(&p);
    pos = 0;
    ck_assert_int_eq(http_parse(&p, "GET / HTTP/1.1\r\nA: b", 20, &pos), HTTP_NEED_MORE);
    ck_assert_int_eq(http_parser_overflow(&p), HTTP_ERROR);
    ck_assert_int_eq(p.status, 431);
    /* Errors are sticky. */
    ck_assert_int_eq(http_parse(&p, "GET / HTTP/1.1\r\nA: b", 20, &pos), HTTP_ERROR);
    http_parser_fini(&p);
}
END_TEST

/* The field array is reused: a second, smaller head on the same parser. */
START_TEST(test_reuse_after_large_head)
{
    char raw[4096];
    struct http_parser p;
    struct result res = {0};
    int i, n = snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\n");

    for (i = 0; i < 60; i++)
        n += snprintf(raw + n, sizeof(raw) - (size_t)n, "X-%d: %d\r\n", i, i);
    n += snprintf(raw + n, sizeof(raw) - (size_t)n, "\r\n");
    http_parser_init(&p, &default_limits);
    drive(&p, raw, (size_t)n, SIZE_MAX, &res);
    ck_assert(res.done);
    ck_assert_uint_eq(res.req.nheaders, 60);
    check_slice(res.req.headers[59].value, "59", "value", &rows[0]);
    http_parser_next(&p);
    drive(&p, "GET /s HTTP/1.1\r\nA: 1\r\n\r\n", 25, SIZE_MAX, &res);
    ck_assert(res.done);
    ck_assert_uint_eq(res.req.nheaders, 1);
    result_fini(&res);
    http_parser_fini(&p);
}
END_TEST

START_TEST(test_reason_phrases)
{
    ck_assert_str_eq(http_reason(400), "Bad Request");
    ck_assert_str_eq(http_reason(414), "URI Too Long");
    ck_assert_str_eq(http_reason(431), "Request Header Fields Too Large");
    ck_assert_str_eq(http_reason(505), "HTTP Version Not Supported");
    ck_assert(field_is_tchar('!') && field_is_tchar('z') && !field_is_tchar(' ') &&
              !field_is_tchar(':') && !field_is_tchar(0x80));
}
END_TEST

/* A response head the app hands over, and what field_check says of it. */
static const struct {
    const char *status;
    const char *names[3], *values[3];
    int code;        /* field_check's result */
    int64_t length;  /* the declared Content-Length when accepted */
    const char *why; /* the reason when refused */
} heads[] = {
    {"200 OK", {"Content-Type"}, {"text/plain"}, 200, -1, NULL},
    {"204", {NULL}, {NULL}, 204, -1, NULL},
    {"200 OK", {"Content-Length", "content-length"}, {" 5 ", "5"}, 200, 5, NULL},
    {"200 OK", {"X-Tab"}, {"a\tb"}, 200, -1, NULL},
    {"OK", {NULL}, {NULL}, -1, -1, "invalid status 'OK': expected e.g. '200 OK'"},
    {"200 OK\r\nX: y",
     {NULL},
     {NULL},
     -1,
     -1,
     "invalid status '200 OK\\r\\nX: y': expected e.g. '200 OK'"},
    {"200 OK", {"Bad Name"}, {"x"}, -1, -1, "invalid header name 'Bad Name'"},
    {"200 OK", {""}, {"x"}, -1, -1, "invalid header name ''"},
    {"200 OK", {"X-Note"}, {"a\nb"}, -1, -1, "invalid header value 'a\\nb' for 'X-Note'"},
    {"200 OK",
     {"X-Note"},
     {"it's\x01\xe9"},
     -1,
     -1,
     "invalid header value 'it\\'s\\x01\\xe9' for 'X-Note'"},
    {"200 OK",
     {"Content-Length"},
     {"12a"},
     -1,
     -1,
     "invalid Content-Length '12a': expected digits"},
    {"200 OK",
     {"Content-Length", "Content-Length"},
     {"3", "4"},
     -1,
     -1,
     "Content-Length '4' differs from an earlier one"},
};

START_TEST(test_field_check)
{
    struct qln_header h[3];
    size_t n = 0;
    int64_t length;
    char why[160] = "";
    const char *status = heads[_i].status;
    int code;

    for (; n < 3 && heads[_i].names[n] != NULL; n++) {
        h[n].name = (struct qln_slice){heads[_i].names[n], strlen(heads[_i].names[n])};
        h[n].value = (struct qln_slice){heads[_i].values[n], strlen(heads[_i].values[n])};
    }
    code = field_check((struct qln_slice){status, strlen(status)}, h, n, &length, why, sizeof(why));
    ck_assert_int_eq(code, heads[_i].code);
    if (code > 0)
        ck_assert_int_eq(length, heads[_i].length);
    else
        ck_assert_str_eq(why, heads[_i].why);
}
END_TEST

/* A long value is cut, and the reason always fits its buffer. */
START_TEST(test_field_quote_cuts)
{
    char value[300], why[64] = "";
    struct qln_header h = {{"X", 1}, {value, sizeof(value)}};
    int64_t length;

    memset(value, '\x01', sizeof(value));
    ck_assert_int_eq(field_check((struct qln_slice){"200 OK", 6}, &h, 1, &length, why, sizeof(why)),
                     -1);
    ck_assert_uint_lt(strlen(why), sizeof(why));
    ck_assert_ptr_nonnull(strstr(why, "invalid header value '\\x01"));
    ck_assert_ptr_nonnull(strstr(why, "...'"));
}
END_TEST

static Suite *
http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = tcase_create("parser");
    int n = (int)ARRAY_SIZE(rows);

    tcase_set_timeout(tc, 10);
    tcase_add_loop_test(tc, test_row_whole, 0, n);
    tcase_add_loop_test(tc, test_row_bytewise, 0, n);
    tcase_add_loop_test(tc, test_row_split3, 0, n);
    tcase_add_test(tc, test_expect_continue);
    tcase_add_test(tc, test_pipelined);
    tcase_add_test(tc, test_pipelined_methods);
    tcase_add_test(tc, test_casefold_method);
    tcase_add_test(tc, test_head_stops_before_body);
    tcase_add_test(tc, test_overflow);
    tcase_add_test(tc, test_reuse_after_large_head);
    tcase_add_test(tc, test_reason_phrases);
    tcase_add_loop_test(tc, test_field_check, 0, (int)ARRAY_SIZE(heads));
    tcase_add_test(tc, test_field_quote_cuts);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(http_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
