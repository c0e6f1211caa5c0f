/*
 * The checks an app's response head must pass (RFC 9110): the status line,
 * header names (tokens) and values (no control characters but HTAB), and
 * Content-Length; with a one-line reason for the app's author when one
 * fails. Pure and thread-safe, with no other core dependency, so the
 * request parser, the response writer and a plugin's unit tests against a
 * mock core all use the same rules. Any process.
 */
#ifndef QILIN_CORE_FIELD_H
#define QILIN_CORE_FIELD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <qilin/common.h>

/* True when C is an RFC 9110 tchar (header names, methods). */
bool field_is_tchar(unsigned char c);

/* A header name: one or more tchars. */
bool field_name_ok(struct qln_slice name);

/* A header value: VCHAR, obs-text, SP and HTAB only. */
bool field_value_ok(struct qln_slice value);

/* "200 OK" or "200": the status code (100..999), or -1 when S is not a status line. */
int field_status_code(struct qln_slice s);

/* A Content-Length value (digits, optional whitespace around them), or -1. */
int64_t field_content_length(struct qln_slice v);

/*
 * Appends S to OUT (LEN bytes, NUL-terminated) in single quotes with
 * backslash escapes (\t \n \r \\ \' \xNN), as Python's repr() shows a str,
 * so a reason names the offending bytes. Beyond 64 bytes, or the room left,
 * it ends with "...".
 */
void field_quote(char *out, size_t len, struct qln_slice s);

/*
 * Checks STATUS and HEADERS[0, N): returns the status code with *LENGTH the
 * declared Content-Length (-1: none; repeats must agree), or -1 with WHY
 * (LEN bytes) one line: "invalid header name 'Bad Name'", "invalid status
 * 'OK': expected e.g. '200 OK'".
 */
int field_check(struct qln_slice status, const struct qln_header *h, size_t n, int64_t *length,
                char *why, size_t len);

#endif
