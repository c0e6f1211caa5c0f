"""The HTTP/1.1 conformance corpus: raw requests, valid and
invalid, one row each, with the status qilin must answer and, for valid
requests, the fields the WSGI app must see (tests/apps/echoapp.py echoes them
as JSON).

Rows are served by a server started with SERVER_ARGS. The integration test
tests/integration/test_conformance.py runs every row against every worker
class that is built; tests/conformance/run_gunicorn.py runs them against
gunicorn by hand.

A row: Case(name, raw bytes, status, env={environ key: value}, body=bytes,
statuses=[...] when one send holds pipelined requests, ref=where the rule
comes from). For an invalid row (status >= 400) the server must also answer
`Connection: close`, close the connection, log one `Invalid request from
ip=` line and keep the same worker.
"""

# Options the corpus server runs with (limit_request_body makes the 413 rows).
SERVER_ARGS = ["--limit-request-body", "1000"]
BODY_LIMIT = 1000


class Case:
    def __init__(self, name, raw, status, env=None, body=None, statuses=None, ref=""):
        self.name = name
        self.raw = raw
        self.status = status
        self.env = env or {}
        self.body = body
        self.statuses = statuses
        self.ref = ref

    @property
    def invalid(self):
        return self.status >= 400

    def __repr__(self):
        return "Case(%s, %r)" % (self.name, self.raw[:80])


def req(line, *headers, body=b"", host=True):
    """Request bytes: LINE, a Host header unless HOST is false, HEADERS, BODY."""
    lines = [line]
    if host:
        lines.append(b"Host: example.com")
    lines.extend(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunks(*pieces, trailer=b""):
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n" + trailer + b"\r\n"


TE = b"Transfer-Encoding: chunked"
CASES = [
    # -- valid: the request line and target ----------------------------------
    Case("get-root", req(b"GET / HTTP/1.1"), 200,
         env={"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "", "RAW_URI": "/",
              "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "example.com", "SCRIPT_NAME": "",
              "wsgi.url_scheme": "http"}),
    Case("get-query", req(b"GET /p/q?a=1&b=2 HTTP/1.1"), 200,
         env={"PATH_INFO": "/p/q", "QUERY_STRING": "a=1&b=2", "RAW_URI": "/p/q?a=1&b=2"}),
    Case("http10-no-host", req(b"GET /old HTTP/1.0", host=False), 200,
         env={"SERVER_PROTOCOL": "HTTP/1.0", "PATH_INFO": "/old"}),
    Case("pct-space", req(b"GET /a%20b HTTP/1.1"), 200,
         env={"PATH_INFO": "/a b", "RAW_URI": "/a%20b"}, ref="PEP 3333: decoded once"),
    Case("pct-slash", req(b"GET /a%2Fb HTTP/1.1"), 200,
         env={"PATH_INFO": "/a/b", "RAW_URI": "/a%2Fb"}),
    Case("pct-double", req(b"GET /a%2541 HTTP/1.1"), 200,
         env={"PATH_INFO": "/a%41", "RAW_URI": "/a%2541"}, ref="decoded exactly once"),
    Case("pct-latin1", req(b"GET /caf%E9 HTTP/1.1"), 200, env={"PATH_INFO": "/caf\u00e9"},
         ref="PEP 3333: bytes as latin-1"),
    Case("pct-utf8", req(b"GET /caf%C3%A9 HTTP/1.1"), 200, env={"PATH_INFO": "/caf\u00c3\u00a9"},
         ref="PEP 3333: UTF-8 bytes stay bytes (latin-1)"),
    Case("pct-lowercase-hex", req(b"GET /%7e%7E HTTP/1.1"), 200, env={"PATH_INFO": "/~~"}),
    Case("pct-invalid-kept", req(b"GET /a%zzb HTTP/1.1"), 200, env={"PATH_INFO": "/a%zzb"}),
    Case("pct-truncated-kept", req(b"GET /a%4 HTTP/1.1"), 200, env={"PATH_INFO": "/a%4"}),
    Case("pct-in-query-raw", req(b"GET /q?x=%20%26 HTTP/1.1"), 200,
         env={"PATH_INFO": "/q", "QUERY_STRING": "x=%20%26"}, ref="QUERY_STRING is not decoded"),
    Case("plus-not-space", req(b"GET /a+b HTTP/1.1"), 200, env={"PATH_INFO": "/a+b"}),
    Case("query-with-question", req(b"GET /p?a?b=c HTTP/1.1"), 200,
         env={"PATH_INFO": "/p", "QUERY_STRING": "a?b=c"}),
    Case("empty-query", req(b"GET /p? HTTP/1.1"), 200, env={"PATH_INFO": "/p", "QUERY_STRING": ""}),
    Case("fragment-dropped", req(b"GET /p?x=1#frag HTTP/1.1"), 200,
         env={"PATH_INFO": "/p", "QUERY_STRING": "x=1"}),
    Case("dot-segments-kept", req(b"GET /a/../b/./c HTTP/1.1"), 200,
         env={"PATH_INFO": "/a/../b/./c"}, ref="normalising is the app's business"),
    Case("double-slash", req(b"GET //x//y HTTP/1.1"), 200, env={"PATH_INFO": "//x//y"}),
    Case("absolute-form", req(b"GET http://example.com/p/q?x=1 HTTP/1.1"), 200,
         env={"PATH_INFO": "/p/q", "QUERY_STRING": "x=1", "RAW_URI": "http://example.com/p/q?x=1"},
         ref="RFC 9112 3.2.2"),
    Case("absolute-form-port", req(b"GET http://example.com:8080/z HTTP/1.1"), 200,
         env={"PATH_INFO": "/z"}),
    Case("absolute-form-https", req(b"GET https://example.com/s?k HTTP/1.1"), 200,
         env={"PATH_INFO": "/s", "QUERY_STRING": "k"}),
    Case("options-asterisk", req(b"OPTIONS * HTTP/1.1"), 200,
         env={"REQUEST_METHOD": "OPTIONS", "RAW_URI": "*", "PATH_INFO": "", "SCRIPT_NAME": "",
              "QUERY_STRING": ""},
         ref="RFC 9112 3.2.4; PEP 3333: PATH_INFO empty or starting with /"),
    Case("long-target", req(b"GET /" + b"a" * 4000 + b" HTTP/1.1"), 200,
         env={"PATH_INFO": "/" + "a" * 4000}, ref="limit_request_line 4094"),
    Case("leading-crlf", b"\r\n" + req(b"GET /lead HTTP/1.1"), 200, env={"PATH_INFO": "/lead"},
         ref="RFC 9112 2.2: ignore a leading empty line"),
    Case("method-post", req(b"POST /m HTTP/1.1", b"Content-Length: 0"), 200,
         env={"REQUEST_METHOD": "POST", "body": ""}),
    Case("method-put", req(b"PUT /m HTTP/1.1", b"Content-Length: 2", body=b"hi"), 200,
         env={"REQUEST_METHOD": "PUT", "body": "hi"}),
    Case("method-delete", req(b"DELETE /m HTTP/1.1"), 200, env={"REQUEST_METHOD": "DELETE"}),
    Case("method-patch", req(b"PATCH /m HTTP/1.1", b"Content-Length: 1", body=b"x"), 200,
         env={"REQUEST_METHOD": "PATCH", "body": "x"}),
    Case("method-head", req(b"HEAD /h HTTP/1.1"), 200, body=b"", ref="HEAD has no body"),
    Case("method-query", req(b"QUERY /q?a=1 HTTP/1.1", b"Content-Length: 7", body=b"select*"), 200,
         env={"REQUEST_METHOD": "QUERY", "QUERY_STRING": "a=1", "body": "select*"},
         ref="RFC 9110 9.1: any token; the app decides"),
    Case("method-unknown-token", req(b"FROBNICATE / HTTP/1.1"), 200,
         env={"REQUEST_METHOD": "FROBNICATE"}),
    Case("method-hyphens", req(b"X-CUSTOM /x HTTP/1.1"), 200, env={"REQUEST_METHOD": "X-CUSTOM"}),
    Case("method-leading-hyphen", req(b"-BLARGH /x HTTP/1.1"), 200,
         env={"REQUEST_METHOD": "-BLARGH"}),
    Case("method-brew-chunked", req(b"BREW /pot HTTP/1.1", TE, body=chunks(b"tea")), 200,
         env={"REQUEST_METHOD": "BREW", "body": "tea"}),
    Case("method-lowercase", req(b"get /l HTTP/1.1"), 200, env={"REQUEST_METHOD": "get"},
         ref="methods are case-sensitive: passed as sent"),
    Case("method-rtsp-name", req(b"PAUSE /p HTTP/1.1"), 200, env={"REQUEST_METHOD": "PAUSE"},
         ref="a token llhttp knows only for RTSP"),
    Case("method-webdav", req(b"PROPFIND /d HTTP/1.1", b"Depth: 1"), 200,
         env={"REQUEST_METHOD": "PROPFIND", "HTTP_DEPTH": "1"}),

    # -- valid: header fields --------------------------------------------------
    Case("header-plain", req(b"GET / HTTP/1.1", b"X-Thing: value"), 200,
         env={"HTTP_X_THING": "value"}),
    Case("header-case", req(b"GET / HTTP/1.1", b"x-MiXeD-case: v"), 200,
         env={"HTTP_X_MIXED_CASE": "v"}),
    Case("header-ows-trimmed", req(b"GET / HTTP/1.1", b"X-Sp: \t  padded value \t "), 200,
         env={"HTTP_X_SP": "padded value"}, ref="RFC 9112 5: OWS around the value"),
    Case("header-no-space", req(b"GET / HTTP/1.1", b"X-Tight:v"), 200, env={"HTTP_X_TIGHT": "v"}),
    Case("header-empty-value", req(b"GET / HTTP/1.1", b"X-Empty:"), 200, env={"HTTP_X_EMPTY": ""}),
    Case("header-inner-tab", req(b"GET / HTTP/1.1", b"X-Tab: a\tb"), 200,
         env={"HTTP_X_TAB": "a\tb"}),
    Case("header-obs-text", req(b"GET / HTTP/1.1", b"X-Latin: caf\xe9"), 200,
         env={"HTTP_X_LATIN": "caf\u00e9"}, ref="obs-text, latin-1 in the environ"),
    Case("header-duplicates-joined", req(b"GET / HTTP/1.1", b"X-Dup: a", b"X-Dup: b"), 200,
         env={"HTTP_X_DUP": "a,b"}, ref="RFC 9110 5.3"),
    Case("header-underscore-dropped",
         req(b"GET / HTTP/1.1", b"X_Under: smuggled", b"X-Under: real"), 200,
         env={"HTTP_X_UNDER": "real"}, ref="gunicorn: header names with _ are dropped"),
    Case("header-content-type", req(b"GET / HTTP/1.1", b"Content-Type: text/x"), 200,
         env={"CONTENT_TYPE": "text/x"}),
    Case("header-token-chars", req(b"GET / HTTP/1.1", b"X-!#$%&'*+.^`|~: t"), 200,
         env={"HTTP_X_!#$%&'*+.^`|~": "t"}, ref="RFC 9110 5.6.2 tchar"),
    Case("header-many", req(b"GET / HTTP/1.1", *[b"X-H%d: %d" % (i, i) for i in range(99)]), 200,
         env={"HTTP_X_H98": "98"}, ref="limit_request_fields 100 (Host included)"),
    Case("header-large", req(b"GET / HTTP/1.1", b"X-Big: " + b"v" * 8000), 200,
         env={"HTTP_X_BIG": "v" * 8000}, ref="limit_request_field_size 8190"),
    Case("host-with-port", b"GET / HTTP/1.1\r\nHost: h:81\r\n\r\n", 200,
         env={"HTTP_HOST": "h:81"}),

    # -- valid: scheme headers from a trusted peer (127.0.0.1 is, by default) ----
    Case("xfp-https", req(b"GET / HTTP/1.1", b"X-Forwarded-Proto: https"), 200,
         env={"wsgi.url_scheme": "https"}, ref="gunicorn secure_scheme_headers"),
    Case("xfp-http", req(b"GET / HTTP/1.1", b"X-Forwarded-Proto: http"), 200,
         env={"wsgi.url_scheme": "http"}),
    Case("xfp-case-insensitive-name", req(b"GET / HTTP/1.1", b"x-forwarded-proto: https"), 200,
         env={"wsgi.url_scheme": "https"}),
    Case("x-forwarded-ssl-on", req(b"GET / HTTP/1.1", b"X-Forwarded-Ssl: on"), 200,
         env={"wsgi.url_scheme": "https"}),
    Case("x-forwarded-protocol-ssl", req(b"GET / HTTP/1.1", b"X-Forwarded-Protocol: ssl"), 200,
         env={"wsgi.url_scheme": "https"}),
    Case("scheme-headers-agree",
         req(b"GET / HTTP/1.1", b"X-Forwarded-Proto: https", b"X-Forwarded-Ssl: on"), 200,
         env={"wsgi.url_scheme": "https"}),

    # -- valid: bodies ---------------------------------------------------------
    Case("body-content-length", req(b"POST /b HTTP/1.1", b"Content-Length: 5", body=b"hello"),
         200, env={"body": "hello", "CONTENT_LENGTH": "5"}),
    Case("body-cl-leading-zeros", req(b"POST /b HTTP/1.1", b"Content-Length: 005", body=b"hello"),
         200, env={"body": "hello"}),
    Case("body-chunked", req(b"POST /c HTTP/1.1", TE, body=chunks(b"hel", b"lo")), 200,
         env={"body": "hello", "wsgi.input_terminated": True}),
    Case("body-chunked-case", req(b"POST /c HTTP/1.1", b"Transfer-Encoding: ChUnKeD",
                                  body=chunks(b"abc")), 200, env={"body": "abc"}),
    Case("body-chunked-ext", req(b"POST /c HTTP/1.1", TE, body=b"3;name=val\r\nabc\r\n0\r\n\r\n"),
         200, env={"body": "abc"}, ref="RFC 9112 7.1.1 chunk extensions"),
    Case("body-chunked-ext-bws-after-semicolon",
         req(b"POST /c HTTP/1.1", TE, body=b"5; a=b\r\nhello\r\n0\r\n\r\n"), 200,
         env={"body": "hello"}, ref="RFC 9112 7.1.1: BWS around ';' and '='"),
    Case("body-chunked-ext-bws-before-semicolon",
         req(b"POST /c HTTP/1.1", TE, body=b"5 ;a\r\nhello\r\n0\r\n\r\n"), 200, env={"body": "hello"}),
    Case("body-chunked-ext-bws-around-equals",
         req(b"POST /c HTTP/1.1", TE, body=b"5;a = b\r\nhello\r\n0\r\n\r\n"), 200,
         env={"body": "hello"}),
    Case("body-chunked-ext-tab-before-semicolon",
         req(b"POST /c HTTP/1.1", TE, body=b"5\t;a\r\nhello\r\n2 ; b = \"c d\"\r\n!!\r\n0\r\n\r\n"),
         200, env={"body": "hello!!"}),
    Case("body-chunked-upper-hex", req(b"POST /c HTTP/1.1", TE,
                                       body=b"A\r\n0123456789\r\n0\r\n\r\n"), 200,
         env={"body": "0123456789"}),
    Case("body-chunked-leading-zeros", req(b"POST /c HTTP/1.1", TE,
                                           body=b"0003\r\nabc\r\n0\r\n\r\n"), 200,
         env={"body": "abc"}),
    Case("body-chunked-trailers", req(b"POST /c HTTP/1.1", TE,
                                      body=chunks(b"abc", trailer=b"X-Trailer: t\r\n")), 200,
         env={"body": "abc"}, ref="RFC 9112 7.1.2"),
    Case("body-chunked-empty", req(b"POST /c HTTP/1.1", TE, body=b"0\r\n\r\n"), 200,
         env={"body": ""}),
    Case("body-binary", req(b"POST /b HTTP/1.1", b"Content-Length: 4", body=b"\x00\r\n\xff"), 200,
         env={"body": "\x00\r\n\xff"}),
    Case("body-at-limit", req(b"POST /b HTTP/1.1", b"Content-Length: 1000", body=b"x" * 1000),
         200, env={"body": "x" * 1000}, ref="limit_request_body 1000"),
    Case("body-chunked-at-limit",
         req(b"POST /c HTTP/1.1", TE, body=chunks(b"y" * 600, b"y" * 400)), 200,
         env={"body": "y" * 1000}),
    Case("expect-continue", req(b"POST /e HTTP/1.1", b"Expect: 100-continue",
                                b"Content-Length: 2", body=b"ok"), 200, env={"body": "ok"},
         ref="RFC 9110 10.1.1"),
    Case("get-with-body", req(b"GET /g HTTP/1.1", b"Content-Length: 3", body=b"abc"), 200,
         env={"body": "abc"}),

    # -- valid: connections ----------------------------------------------------
    Case("pipelined-two", req(b"GET /1 HTTP/1.1") + req(b"GET /2 HTTP/1.1"), 200,
         statuses=[200, 200], ref="RFC 9112 9.3.2"),
    Case("pipelined-after-body",
         req(b"POST /1 HTTP/1.1", b"Content-Length: 3", body=b"abc") + req(b"GET /2 HTTP/1.1"),
         200, statuses=[200, 200]),
    Case("pipelined-after-chunked",
         req(b"POST /1 HTTP/1.1", TE, body=chunks(b"abc")) + req(b"GET /2 HTTP/1.1"), 200,
         statuses=[200, 200]),

    # -- invalid: the request line ---------------------------------------------
    Case("garbage", b"GARBAGE\r\n\r\n", 400),
    Case("asterisk-get", req(b"GET * HTTP/1.1"), 400, ref="RFC 9112 3.2.4: * is for OPTIONS only"),
    Case("asterisk-delete", req(b"DELETE * HTTP/1.1"), 400),
    Case("no-version", b"GET /\r\n\r\n", 400, ref="HTTP/0.9 is not served"),
    Case("version-lowercase", req(b"GET / http/1.1"), 400),
    Case("version-malformed", req(b"GET / HTTP/1.x"), 400),
    Case("version-two-digits", req(b"GET / HTTP/11"), 400),
    Case("version-1-2", req(b"GET / HTTP/1.2"), 505, ref="RFC 9110 15.6.6"),
    Case("version-2-0", req(b"GET / HTTP/2.0"), 505),
    Case("version-0-9", req(b"GET / HTTP/0.9"), 505),
    Case("version-3-0", req(b"GET / HTTP/3.0"), 505),
    Case("h2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    Case("double-space", req(b"GET  / HTTP/1.1"), 400, ref="RFC 9112 3: single SP"),
    Case("tab-separator", req(b"GET\t/ HTTP/1.1"), 400),
    Case("space-in-target", req(b"GET /a b HTTP/1.1"), 400),
    Case("nul-in-target", req(b"GET /a\x00b HTTP/1.1"), 400),
    Case("ctl-in-target", req(b"GET /a\x01b HTTP/1.1"), 400),
    Case("del-in-target", req(b"GET /a\x7fb HTTP/1.1"), 400),
    Case("trailing-space-line", req(b"GET / HTTP/1.1 "), 400),
    Case("bare-lf-line", b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400, ref="RFC 9112 2.2 (strict)"),
    Case("bare-cr-line", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400),
    Case("method-empty", req(b" / HTTP/1.1"), 400),
    Case("method-bad-char", req(b"G@T / HTTP/1.1"), 400),
    Case("method-nul", req(b"GE\x00T / HTTP/1.1"), 400),
    Case("line-too-long", req(b"GET /" + b"a" * 5000 + b" HTTP/1.1"), 414,
         ref="limit_request_line 4094"),
    Case("line-too-long-query", req(b"GET /?" + b"q" * 8000 + b" HTTP/1.1"), 414),

    # -- invalid: header fields ------------------------------------------------
    Case("header-no-colon", req(b"GET / HTTP/1.1", b"NoColonHere"), 400),
    Case("header-space-before-colon", req(b"GET / HTTP/1.1", b"X-Sp : v"), 400,
         ref="RFC 9112 5.1 MUST 400"),
    Case("header-tab-before-colon", req(b"GET / HTTP/1.1", b"X-Tb\t: v"), 400),
    Case("header-space-in-name", req(b"GET / HTTP/1.1", b"X Y: v"), 400),
    Case("header-empty-name", req(b"GET / HTTP/1.1", b": v"), 400),
    Case("header-bad-name-char", req(b"GET / HTTP/1.1", b"X(y): v"), 400),
    Case("header-utf8-name", req(b"GET / HTTP/1.1", b"X-\xc3\xa9: v"), 400),
    Case("header-nul-value", req(b"GET / HTTP/1.1", b"X-N: a\x00b"), 400, ref="RFC 9110 5.5"),
    Case("header-cr-value", req(b"GET / HTTP/1.1", b"X-C: a\rb"), 400),
    Case("header-bare-lf", b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    Case("header-obs-fold", req(b"GET / HTTP/1.1", b"X-F: a", b" folded"), 400,
         ref="RFC 9112 5.2"),
    Case("header-obs-fold-tab", req(b"GET / HTTP/1.1", b"X-F: a", b"\tfolded"), 400),
    Case("header-leading-space", b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    Case("duplicate-host", req(b"GET / HTTP/1.1", b"Host: other"), 400, ref="RFC 9112 3.2"),
    Case("duplicate-content-type",
         req(b"POST / HTTP/1.1", b"Content-Type: application/json", b"Content-Type: text/html",
             b"Content-Length: 2", body=b"{}"), 400, ref="RFC 9110 8.3: a singleton field"),
    Case("duplicate-content-type-same",
         req(b"POST / HTTP/1.1", b"content-type: text/plain", b"Content-Type: text/plain",
             b"Content-Length: 2", body=b"hi"), 400),
    Case("http11-no-host", req(b"GET / HTTP/1.1", host=False), 400, ref="RFC 9112 3.2"),
    Case("absolute-form-no-host", req(b"GET http://example.com/ HTTP/1.1", host=False), 400,
         ref="RFC 9112 3.2: Host is required even with an absolute-form target"),
    Case("too-many-headers", req(b"GET / HTTP/1.1", *[b"X-H%d: 1" % i for i in range(101)]),
         431, ref="limit_request_fields 100"),
    Case("header-too-large", req(b"GET / HTTP/1.1", b"X-Big: " + b"v" * 9000), 431,
         ref="limit_request_field_size 8190"),
    Case("expect-unknown", req(b"GET / HTTP/1.1", b"Expect: 200-ok"), 417, ref="RFC 9110 10.1.1"),
    Case("scheme-headers-contradict",
         req(b"GET / HTTP/1.1", b"X-Forwarded-Proto: https", b"X-Forwarded-Ssl: off"), 400,
         ref="gunicorn InvalidSchemeHeaders"),
    Case("scheme-header-repeated-differing",
         req(b"GET / HTTP/1.1", b"X-Forwarded-Proto: https", b"X-Forwarded-Proto: http"), 400),

    # -- invalid: body framing (request smuggling) -------------------------------
    Case("cl-and-te", req(b"POST / HTTP/1.1", b"Content-Length: 5", TE, body=chunks(b"abc")),
         400, ref="RFC 9112 6.3"),
    Case("te-and-cl", req(b"POST / HTTP/1.1", TE, b"Content-Length: 5", body=chunks(b"abc")),
         400),
    Case("cl-duplicate-differing",
         req(b"POST / HTTP/1.1", b"Content-Length: 3", b"Content-Length: 4", body=b"abcd"), 400),
    Case("cl-duplicate-same",
         req(b"POST / HTTP/1.1", b"Content-Length: 3", b"Content-Length: 3", body=b"abc"), 400),
    Case("cl-list", req(b"POST / HTTP/1.1", b"Content-Length: 3, 3", body=b"abc"), 400),
    Case("cl-negative", req(b"POST / HTTP/1.1", b"Content-Length: -1"), 400),
    Case("cl-plus", req(b"POST / HTTP/1.1", b"Content-Length: +3", body=b"abc"), 400),
    Case("cl-alpha", req(b"POST / HTTP/1.1", b"Content-Length: abc"), 400),
    Case("cl-inner-space", req(b"POST / HTTP/1.1", b"Content-Length: 1 2"), 400),
    Case("cl-overflow", req(b"POST / HTTP/1.1", b"Content-Length: 99999999999999999999999"),
         400),
    Case("cl-hex", req(b"POST / HTTP/1.1", b"Content-Length: 0x3", body=b"abc"), 400),
    Case("te-gzip", req(b"POST / HTTP/1.1", b"Transfer-Encoding: gzip"), 501,
         ref="RFC 9112 6.1"),
    Case("te-gzip-chunked", req(b"POST / HTTP/1.1", b"Transfer-Encoding: gzip, chunked",
                                body=chunks(b"abc")), 501),
    Case("te-chunked-not-final", req(b"POST / HTTP/1.1", b"Transfer-Encoding: chunked, identity",
                                     body=chunks(b"abc")), 400, ref="RFC 9112 6.3: chunked not final"),
    Case("te-xchunked", req(b"POST / HTTP/1.1", b"Transfer-Encoding: xchunked"), 501),
    Case("te-http10", req(b"POST / HTTP/1.0", TE, body=chunks(b"abc")), 400,
         ref="RFC 9112 6.1"),
    Case("chunk-size-invalid", req(b"POST / HTTP/1.1", TE, body=b"zz\r\nabc\r\n0\r\n\r\n"), 400),
    Case("chunk-size-overflow",
         req(b"POST / HTTP/1.1", TE, body=b"fffffffffffffffffffff\r\nabc\r\n0\r\n\r\n"), 400),
    Case("chunk-size-negative", req(b"POST / HTTP/1.1", TE, body=b"-3\r\nabc\r\n0\r\n\r\n"), 400),
    Case("chunk-data-too-long", req(b"POST / HTTP/1.1", TE, body=b"3\r\nabcdef\r\n0\r\n\r\n"),
         400),
    Case("chunk-bare-lf", req(b"POST / HTTP/1.1", TE, body=b"3\nabc\r\n0\r\n\r\n"), 400),
    Case("chunk-size-space-inside", req(b"POST / HTTP/1.1", TE, body=b"1 0\r\n" + b"a" * 16 +
                                        b"\r\n0\r\n\r\n"), 400),
    Case("chunk-ext-bws-without-size", req(b"POST / HTTP/1.1", TE, body=b" ;a\r\nabc\r\n0\r\n\r\n"),
         400, ref="BWS is allowed around ';', never in place of the size"),
    Case("chunk-size-trailing-space", req(b"POST / HTTP/1.1", TE, body=b"3 \r\nabc\r\n0\r\n\r\n"),
         400),
    Case("chunk-ext-space-in-name", req(b"POST / HTTP/1.1", TE, body=b"3;a b\r\nabc\r\n0\r\n\r\n"),
         400),

    # -- invalid: limits on the body -------------------------------------------
    Case("body-over-limit", req(b"POST / HTTP/1.1", b"Content-Length: 1001", body=b"x" * 1001),
         413, ref="limit_request_body 1000"),
    Case("body-huge-declared", req(b"POST / HTTP/1.1", b"Content-Length: 10000000000"), 413),
    Case("body-chunked-over-limit",
         req(b"POST / HTTP/1.1", TE, body=chunks(b"z" * 600, b"z" * 401)), 413),
]
