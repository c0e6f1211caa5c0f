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

/*
 * Checks STATUS and HEADERS[0, N): returns the status code with *LENGTH the
 * declared Content-Length (-1: none; repeats must agree), or -1 with WHY
 * (LEN bytes) one line: "invalid header name 'Bad Name'", "invalid status
 * 'OK': expected e.g. '200 OK'".
 */
int field_check(struct qln_slice status, const struct qln_header *h, size_t n, int64_t *length,
                char *why, size_t len);

#endif
