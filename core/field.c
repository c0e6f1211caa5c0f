/*
 * Response head checks (field.h): what the response writer refuses from an
 * app, and the reason it gives.
 */
#include "qlnconfig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "field.h"

/* RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
   "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. Read-only; any process. */
static const uint8_t tchar_map[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

bool
field_is_tchar(unsigned char c)
{
    return tchar_map[c] != 0;
}

/* A header name: one or more tchars. */
static bool
field_name_ok(struct qln_slice n)
{
    size_t i;

    if (n.len == 0)
        return false;
    for (i = 0; i < n.len; i++) {
        if (!field_is_tchar((unsigned char)n.p[i]))
            return false;
    }
    return true;
}

/* A header value: VCHAR, obs-text, SP and HTAB only (RFC 9110 §5.5): CR,
   LF and NUL would split or truncate the header on the wire, the other
   controls confuse clients. */
static bool
field_value_ok(struct qln_slice v)
{
    size_t i;

    for (i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.p[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return false;
    }
    return true;
}

/* "200 OK" or "200": the status code (100..999), or -1 when S is not a status line. */
static int
field_status_code(struct qln_slice s)
{
    if (s.len < 3 || s.p[0] < '1' || s.p[0] > '9' || s.p[1] < '0' || s.p[1] > '9' || s.p[2] < '0' ||
        s.p[2] > '9')
        return -1;
    if (s.len > 3 && s.p[3] != ' ')
        return -1;
    if (!field_value_ok(s))
        return -1;
    return (s.p[0] - '0') * 100 + (s.p[1] - '0') * 10 + (s.p[2] - '0');
}

/* A Content-Length value (digits, optional whitespace around them), or -1. */
static int64_t
field_content_length(struct qln_slice v)
{
    size_t b = 0, e = v.len, i;
    int64_t n = 0;

    while (b < e && (v.p[b] == ' ' || v.p[b] == '\t'))
        b++;
    while (e > b && (v.p[e - 1] == ' ' || v.p[e - 1] == '\t'))
        e--;
    if (e == b || e - b > 18)
        return -1;
    for (i = b; i < e; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        n = n * 10 + (v.p[i] - '0');
    }
    return n;
}

/*
 * Appends S to OUT (LEN bytes, NUL-terminated) in single quotes with
 * backslash escapes (\t \n \r \\ \' \xNN), as Python's repr() shows a str,
 * so a reason names the offending bytes. Beyond 64 bytes, or the room left,
 * it ends with "...".
 */
static void
field_quote(char *out, size_t len, struct qln_slice s)
{
    size_t n = strlen(out), i;
    int k;

    if (n + 8 > len)
        return;
    out[n++] = '\'';
    /* Each step leaves room for its longest escape, "...", the quote and the NUL. */
    for (i = 0; i < s.len && i < 64 && n + 9 < len; i++) {
        unsigned char c = (unsigned char)s.p[i];

        if (c == '\t' || c == '\n' || c == '\r' || c == '\\' || c == '\'') {
            out[n++] = '\\';
            out[n++] = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            k = snprintf(out + n, len - n, "\\x%02x", c);
            n += k > 0 ? (size_t)k : 0;
        } else {
            out[n++] = (char)c;
        }
    }
    if (i < s.len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n++] = '\'';
    out[n] = '\0';
}

/* WHY = WHAT, S quoted, then TAIL. Returns -1. */
static int
refuse(char *why, size_t len, const char *what, struct qln_slice s, const char *tail)
{
    size_t t = strlen(tail);

    snprintf(why, len, "%s ", what);
    field_quote(why, len > t ? len - t : 0, s);
    strncat(why, tail, len - strlen(why) - 1);
    return -1;
}

int
field_check(struct qln_slice status, const struct qln_header *h, size_t n, int64_t *length,
            char *why, size_t len)
{
    int code = field_status_code(status);
    int64_t v;
    size_t i;

    *length = -1;
    if (code < 0)
        return refuse(why, len, "invalid status", status, ": expected e.g. '200 OK'");
    for (i = 0; i < n; i++) {
        if (!field_name_ok(h[i].name))
            return refuse(why, len, "invalid header name", h[i].name, "");
        if (!field_value_ok(h[i].value)) {
            /* "invalid header value 'a\nb' for 'X-Note'": the field's name as well. */
            refuse(why, len, "invalid header value", h[i].value, " for ");
            field_quote(why, len, h[i].name);
            return -1;
        }
        if (h[i].name.len != 14 || strncasecmp(h[i].name.p, "content-length", 14) != 0)
            continue;
        v = field_content_length(h[i].value);
        if (v < 0)
            return refuse(why, len, "invalid Content-Length", h[i].value, ": expected digits");
        if (*length >= 0 && v != *length)
            return refuse(why, len, "Content-Length", h[i].value, " differs from an earlier one");
        *length = v;
    }
    return code;
}
