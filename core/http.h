/*
 * HTTP/1.x request parsing on top of llhttp: the request head with
 * gunicorn's limits, the request-smuggling rules llhttp leaves to us, and
 * chunked / Content-Length body decoding handed out one slice at a time.
 * No I/O here (the connection layer reads and writes). Worker processes only.
 */
#ifndef QILIN_CORE_HTTP_H
#define QILIN_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#include <qilin/common.h>

/* A chunk-size line longer than this goes to llhttp untidied (http_parse). */
#define HTTP_SIZE_LINE_MAX 1024

/* Limits on the request head (struct conn_settings supplies them). */
struct http_limits {
    size_t line;       /* request line without CRLF; 1..8190 */
    size_t fields;     /* number of header fields */
    size_t field_size; /* one header line, CRLF included */
    bool obs_fold;     /* permit_obsolete_folding: unfold, instead of 400 */
    bool any_version;  /* permit_unconventional_http_version: any HTTP/d.d, not only 1.0, 1.1 */
};

/* Where one header field lies in the read buffer (offsets survive a realloc). */
struct http_field {
    uint32_t name_off;
    uint32_t name_len;
    uint32_t value_off;
    uint32_t value_len;
};

enum http_phase {
    HTTP_PHASE_HEAD = 0, /* reading the request line and header fields */
    HTTP_PHASE_BODY = 1, /* head done; body slices (if any) follow */
    HTTP_PHASE_DONE = 2, /* the whole message was parsed */
    HTTP_PHASE_ERROR = 3,
};

enum http_rc {
    HTTP_NEED_MORE = 0, /* every byte given was consumed; feed more */
    HTTP_HEAD_DONE = 1, /* the head is complete and valid (request_fill() next) */
    HTTP_BODY_DATA = 2, /* p->body holds the next decoded body slice */
    HTTP_MSG_DONE = 3,  /* end of the message; bytes after *pos belong to the next one */
    HTTP_ERROR = 4,     /* p->status and p->reason say why; the connection must close */
};

/*
 * One parser per connection, reused for every request on it. The field array
 * grows to the largest head seen and is kept, so a keep-alive request costs
 * no allocation.
 */
struct http_parser {
    llhttp_t ll;
    struct http_limits limits;
    const char *base; /* the buffer of the current http_parse() call */
    enum http_phase phase;

    /* The current message, as offsets into the buffer. */
    size_t start; /* first byte of the method; SIZE_MAX before it */
    size_t method_off, method_len;
    size_t target_off, target_len;
    size_t head_end;    /* offset just after the blank line ending the head */
    size_t version_end; /* offset just after the request line's version */
    bool line_done;
    bool line_end_checked; /* the request line was seen to end with CRLF */
    bool method_pending;   /* llhttp refused the method; scanning it (other_method) */
    bool method_other;     /* a token method llhttp does not know; it parsed a stand-in */
    struct http_field *fields;
    size_t nfields;
    size_t fields_cap;
    bool in_value;        /* the last span of the current field was its value */
    size_t value_raw_end; /* where the last span of the value ended in the buffer */
    bool fold_ws;         /* unfolding: the whitespace that begins a continuation line */
    bool te_seen;         /* a Transfer-Encoding field arrived */
    bool host_seen;       /* a Host field arrived */
    bool content_type_seen;
    bool expect_continue;
    bool keep_alive;        /* llhttp_should_keep_alive() at the end of the head */
    bool field_open;        /* a header field's name or value is being received */
    int64_t content_length; /* declared length, or -1 */
    bool chunked;
    bool size_line_next; /* a chunk-size line begins at the next byte (tidy_size_line) */
    bool last_chunk;     /* the zero-size chunk came: trailers follow */
    int version_minor;
    uint8_t method; /* enum llhttp_method */

    struct qln_slice body; /* valid after HTTP_BODY_DATA */

    int status;         /* the HTTP status to answer after HTTP_ERROR */
    const char *reason; /* one line for the log, after HTTP_ERROR */
    char reason_buf[96];
};

/* Prepares P with LIMITS (copied). */
void http_parser_init(struct http_parser *p, const struct http_limits *limits);
/*
 * The head outgrew the caller's buffer cap: records 414 (still in the request
 * line) or 431 (header fields) in P and returns HTTP_ERROR.
 */
enum http_rc http_parser_overflow(struct http_parser *p);

/* Frees P's field array. */
void http_parser_fini(struct http_parser *p);
/*
 * Starts the next message: call before feeding the first byte of a request
 * (the previous one must have reached HTTP_MSG_DONE). Offsets restart at 0,
 * so the caller moves the unparsed bytes to the start of its buffer first.
 */
void http_parser_next(struct http_parser *p);

/*
 * Parses BUF[*POS, LEN). BUF is the caller's whole buffer: offsets kept in P
 * are relative to it, so it may be reallocated between calls as long as
 * the bytes before LEN stay in place. Advances *POS past what was consumed
 * and returns at each event (enum http_rc): the head, every body slice
 * (zero-copy: P->body points into BUF) and the end of the message, so a
 * pipelined next request is never parsed early. HTTP_ERROR is sticky.
 * HTTP_NEED_MORE may leave *POS short of LEN inside a chunked body (an
 * incomplete chunk-size line): the caller keeps BUF[*POS, LEN) and appends
 * to it, and may move it, offset and all, after the head. BUF is written
 * to only there: whitespace in a chunk-size line is tidied in place.
 */
enum http_rc http_parse(struct http_parser *p, char *buf, size_t len, size_t *pos);

/*
 * After HTTP_HEAD_DONE, before request_fill(): uppercases the method
 * in BUF (gunicorn's casefold_http_method). Known methods are uppercase
 * already; the others are changed in place.
 */
void http_casefold_method(const struct http_parser *p, char *buf);

/* Reason phrase for STATUS ("Bad Request"); "Unknown" for unlisted codes. */
const char *http_reason(int status);

#endif
