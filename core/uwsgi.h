/*
 * The uwsgi binary protocol (--protocol uwsgi), what nginx's uwsgi_pass
 * sends: a 4-byte header, a block of CGI-style variables, then the raw
 * request body. The decoder turns a packet into the equivalent HTTP/1.x
 * request head, which the HTTP parser then reads like any other, so the
 * limits, the body reader and every app plugin work unchanged. Stateless
 * and allocation-free: any thread of a worker process may call it.
 */
#ifndef QILIN_CORE_UWSGI_H
#define QILIN_CORE_UWSGI_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>

#include <qilin/common.h>

/* The header: modifier1, datasize (u16 little-endian), modifier2. */
#define UWSGI_HEADER_LEN 4
/* The longest packet (header and variables) a datasize can describe. */
#define UWSGI_PACKET_MAX (UWSGI_HEADER_LEN + 65535)
/* The most variables a packet may carry (gunicorn's bound); HTTP's
   limit_request_fields then applies to the headers made of them. */
#define UWSGI_VARS_MAX 1000

enum uwsgi_rc {
    UWSGI_NEED_MORE = 0, /* the packet is not complete yet; read more */
    UWSGI_DONE,          /* a valid packet; see struct uwsgi_packet */
    UWSGI_BAD,           /* malformed: P->reason says why (answer 400) */
};

/* What uwsgi_parse() found. Slices point into the caller's buffer. */
struct uwsgi_packet {
    size_t len;            /* bytes the header and variables take; the body follows */
    struct qln_slice vars; /* the variable block */
    struct qln_slice method, request_uri, path_info, query, protocol;
    struct qln_slice content_length, content_type, host, server_name;
    struct qln_slice remote_addr, remote_port;
    bool https;         /* HTTPS on/1/true, or UWSGI_SCHEME / wsgi.url_scheme https */
    bool http10;        /* SERVER_PROTOCOL is HTTP/1.0 */
    size_t nvars;       /* variables in the block */
    const char *reason; /* UWSGI_BAD: one line for the log (static text) */
};

/*
 * Parses the packet at the start of BUF[0, LEN), the bytes a connection
 * received so far, and checks every length against the block it lies in.
 * Stateless: a caller that got UWSGI_NEED_MORE calls it again over the
 * grown buffer. Refused: modifier1 other than 0 (a WSGI request), an empty
 * variable block, a length past its block, more than UWSGI_VARS_MAX
 * variables, no REQUEST_METHOD, and bytes that could not be written back
 * into an HTTP head unchanged (CR, LF or NUL anywhere; a method that is not
 * a token; a URI with spaces or controls; a variable name that is not one).
 * Returns enum uwsgi_rc and fills *P.
 */
enum uwsgi_rc uwsgi_parse(const char *buf, size_t len, struct uwsgi_packet *p);

/*
 * The most bytes uwsgi_http_head() writes for P (a UWSGI_DONE packet).
 */
size_t uwsgi_http_head_size(const struct uwsgi_packet *p);

/*
 * Writes the HTTP/1.x request head P stands for into OUT (at least
 * uwsgi_http_head_size() bytes): the request line from REQUEST_METHOD,
 * REQUEST_URI (or PATH_INFO, percent-encoded where HTTP needs it, and
 * QUERY_STRING) and SERVER_PROTOCOL (HTTP/1.0 stays 1.0; any other, HTTP/2.0
 * included, is spoken to us as 1.1); one header per HTTP_* variable
 * (HTTP_X_FORWARDED_FOR becomes X-Forwarded-For) except the hop-by-hop
 * ones the front end already handled (Connection, Transfer-Encoding,
 * Expect, Keep-Alive) and those below; Content-Length and Content-Type from
 * CONTENT_LENGTH and CONTENT_TYPE when not empty; Host from SERVER_NAME when
 * HTTP_HOST is absent. Returns the bytes written.
 */
size_t uwsgi_http_head(const struct uwsgi_packet *p, char *out);

#endif
