/*
 * The response writer: validates and copies the app's status and headers,
 * frames the body (Content-Length, chunked, or close-delimited), sends the
 * head with the first body bytes in one writev, and streams files with
 * sendfile(2). Worker processes, on the thread serving the request.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <qilin/errno.h>
#include <qilin/log.h>
#include <qilin/response.h>

#include "conn.h"
#include "field.h"
#include "http.h"
#include "request.h"
#include "response.h"
#include "util.h"

/* The fallback copy loop's block, on the stack of the serving thread. */
#define RESP_COPY_BLOCK 16384

/* ------------------------------------------------------------ Date */

/* Each serving thread keeps its own formatted Date (gthread runs several), so
   no lock is needed; regenerated only when time(NULL) changes. Workers only. */
static __thread time_t date_sec = -1;
static __thread char date_text[30];

void
response_format_date(time_t t, char out[30])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    /* By hand rather than strftime(): %a and %b follow LC_TIME, and an
       embedded interpreter may change the locale. */
    gmtime_r(&t, &tm);
    util_format(out, 30, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
                months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
response_date(char out[30])
{
    time_t now = time(NULL);

    if (now != date_sec) {
        response_format_date(now, date_text);
        date_sec = now;
    }
    memcpy(out, date_text, sizeof(date_text));
}

/* ------------------------------------------------------------ life */

void
response_init(struct qln_response *r, struct conn *c, struct qln_request *req)
{
    memset(r, 0, sizeof(*r));
    r->conn = c;
    r->req = req;
    r->content_length = -1;
}

void
response_fini(struct qln_response *r)
{
    free(r->store);
    free(r->head);
    r->store = r->head = NULL;
    r->store_cap = r->head_cap = 0;
}

void
response_reset(struct qln_response *r)
{
    r->started = false;
    r->head_sent = false;
    r->keep_alive = false;
    r->cut_logged = false;
    r->failed = 0;
    r->status = 0;
    r->status_line = (struct qln_slice){NULL, 0};
    r->headers = NULL;
    r->nheaders = 0;
    r->content_length = -1;
    r->framing = RESP_NO_BODY;
    r->body_bytes = 0;
    r->head_len = 0;
    r->upgrade = NULL;
    r->hijacked = false;
}

size_t
response_error_body(char *buf, size_t len, int status)
{
    const char *reason = http_reason(status);

    util_format(buf, len,
                "<html>\n  <head>\n    <title>%s</title>\n  </head>\n"
                "  <body>\n    <h1><p>%s</p></h1>\n  </body>\n</html>\n",
                reason, reason);
    return strlen(buf);
}

size_t
response_error_page(char *buf, size_t len, int status, size_t *body_len)
{
    const char *reason = http_reason(status);
    char body[256], date[30];
    int n;

    /* RFC 9110 §6.6.1: an origin server with a clock sends Date, errors too. */
    response_date(date);
    *body_len = response_error_body(body, sizeof(body), status);
    n = snprintf(buf, len,
                 "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\nContent-Type: text/html\r\n"
                 "Content-Length: %zu\r\n\r\n%s",
                 status, reason, date, *body_len, body);
    return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* ------------------------------------------------------------ qln_resp_start */

enum header_kind {
    HEADER_KEEP,
    HEADER_DROP,   /* hop-by-hop (RFC 9110 §7.6.1), or Date/Server, which we write */
    HEADER_LENGTH, /* Content-Length */
};

static bool
name_is(struct qln_slice name, const char *lit)
{
    return strncasecmp(name.p, lit, name.len) == 0;
}

/*
 * What to do with an app header, as gunicorn does. This runs for every
 * header of every response, so it switches on the length first and makes at
 * most two comparisons; a scan over the whole list cost 44% of the core's
 * own instructions per hello request under callgrind.
 */
static enum header_kind
classify(struct qln_slice name)
{
    bool drop;

    switch (name.len) {
    case 2:
        drop = name_is(name, "te");
        break;
    case 4:
        drop = name_is(name, "date");
        break;
    case 6:
        drop = name_is(name, "server");
        break;
    case 7:
        drop = name_is(name, "upgrade");
        break;
    case 8:
        drop = name_is(name, "trailers");
        break;
    case 10:
        drop = name_is(name, "connection") || name_is(name, "keep-alive");
        break;
    case 14:
        return name_is(name, "content-length") ? HEADER_LENGTH : HEADER_KEEP;
    case 17:
        drop = name_is(name, "transfer-encoding");
        break;
    case 18:
        drop = name_is(name, "proxy-authenticate");
        break;
    case 19:
        drop = name_is(name, "proxy-authorization");
        break;
    default:
        drop = false;
    }
    return drop ? HEADER_DROP : HEADER_KEEP;
}

/*
 * Counts the headers kept (field_check passed them) and their total text
 * size in *TEXT: hop-by-hop ones are dropped, and of the Content-Length
 * fields (which agree) only the first is kept, never in a 1xx or 204
 * response (RFC 9110 §8.6).
 */
static int
count_kept(int status, const struct qln_header *h, size_t n, size_t *text)
{
    bool length_kept = status < 200 || status == 204;
    enum header_kind kind;
    size_t i;
    int kept = 0;

    *text = 0;
    for (i = 0; i < n; i++) {
        kind = classify(h[i].name);
        if (kind == HEADER_DROP)
            continue;
        if (kind == HEADER_LENGTH) {
            if (length_kept)
                continue;
            length_kept = true;
        }
        kept++;
        *text += h[i].name.len + h[i].value.len;
    }
    return kept;
}

static char *
store_copy(char **at, struct qln_slice s, struct qln_slice *out)
{
    memcpy(*at, s.p, s.len);
    out->p = *at;
    out->len = s.len;
    *at += s.len;
    return *at;
}

int
qln_resp_start(struct qln_response *resp, struct qln_slice status, const struct qln_header *headers,
               size_t nheaders)
{
    int64_t length;
    size_t text, need, i, k = 0;
    bool length_kept = false;
    int code, kept;
    char *at;

    /* Nothing is logged here: the app plugin turns the error into what its
       users see (the Python plugin raises, and the traceback is the one line). */
    resp->refusal[0] = '\0';
    if (resp->head_sent)
        return -EALREADY;
    code = field_check(status, headers, nheaders, &length, resp->refusal, sizeof(resp->refusal));
    if (code < 0)
        return QLN_EBADHEADER;
    kept = count_kept(code, headers, nheaders, &text);
    /* The app's strings may be temporary (Python bytes objects), so copy them.
       The header array comes first in the store, where malloc's alignment holds. */
    need = (size_t)kept * sizeof(struct qln_header) + text + status.len;
    if (need > resp->store_cap) {
        free(resp->store);
        resp->store_cap = need < 1024 ? 1024 : need * 2;
        resp->store = xmalloc(resp->store_cap);
    }
    resp->headers = (struct qln_header *)(void *)resp->store;
    at = resp->store + (size_t)kept * sizeof(struct qln_header);
    for (i = 0; i < nheaders; i++) {
        enum header_kind kind = classify(headers[i].name);

        if (kind == HEADER_DROP)
            continue;
        if (kind == HEADER_LENGTH) {
            if (code < 200 || code == 204 || length_kept)
                continue;
            length_kept = true;
        }
        store_copy(&at, headers[i].name, &resp->headers[k].name);
        store_copy(&at, headers[i].value, &resp->headers[k].value);
        k++;
    }
    store_copy(&at, status, &resp->status_line);
    resp->nheaders = k;
    resp->status = code;
    resp->content_length = length;
    resp->started = true;
    return 0;
}

bool
qln_resp_headers_sent(const struct qln_response *resp)
{
    return resp->head_sent;
}

const char *
qln_resp_refusal(const struct qln_response *resp)
{
    return resp->refusal;
}

int64_t
qln_resp_content_length(const struct qln_response *resp)
{
    return resp->started ? resp->content_length : -1;
}

/* ------------------------------------------------------------ the head */

static bool
keep_alive_after(const struct qln_response *r)
{
    const struct conn *c = r->conn;
    const struct qln_request *req = r->req;

    if (!req->keep_alive || c->must_close || c->s->keepalive_ms <= 0)
        return false;
    if (r->framing == RESP_CLOSE || r->status < 200)
        return false; /* close-delimited body; 101 and friends switch away from HTTP */
    if (conn_stopping(c) != QLN_STOP_NONE)
        return false;
    /* A body the app left unread, too large to read away after the response
       (or of unknown size, or not sent before "100 Continue"): the next bytes
       are not a request head, so the connection ends with this response. */
    return request_body_drainable(req);
}

static char *
put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put((p), (lit), sizeof(lit) - 1)

/* Decides the framing and serialises the head into R->head. */
static void
build_head(struct qln_response *r)
{
    const struct qln_request *req = r->req;
    const char *server = r->conn->s->server_header;
    size_t server_len = strlen(server), need, i;
    char date[30], *p;

    if (r->hijacked)
        r->framing = RESP_CLOSE; /* the app's bytes as they are, ended by the close */
    else if (req->is_head || r->status < 200 || r->status == 204 || r->status == 304)
        r->framing = RESP_NO_BODY;
    else if (r->content_length >= 0)
        r->framing = RESP_LENGTH;
    else if (req->version_minor >= 1 && !req->close_delimited)
        r->framing = RESP_CHUNKED;
    else
        r->framing = RESP_CLOSE;
    r->keep_alive = keep_alive_after(r);

    need = 16 + r->status_line.len + 8 + 29 + 2 + 10 + server_len + 24 + 28 + 2 +
           (r->upgrade != NULL ? 32 + strlen(r->upgrade) : 0);
    for (i = 0; i < r->nheaders; i++)
        need += r->headers[i].name.len + r->headers[i].value.len + 4;
    if (need > r->head_cap) {
        free(r->head);
        r->head_cap = need < 512 ? 512 : need * 2;
        r->head = xmalloc(r->head_cap);
    }
    p = r->head;
    p = req->version_minor >= 1 ? PUT_LIT(p, "HTTP/1.1 ") : PUT_LIT(p, "HTTP/1.0 ");
    p = put(p, r->status_line.p, r->status_line.len);
    if (r->status_line.len == 3) {
        const char *reason = http_reason(r->status);

        *p++ = ' ';
        p = put(p, reason, strlen(reason) < 24 ? strlen(reason) : 24);
    }
    p = PUT_LIT(p, "\r\n");
    for (i = 0; i < r->nheaders; i++) {
        p = put(p, r->headers[i].name.p, r->headers[i].name.len);
        p = PUT_LIT(p, ": ");
        p = put(p, r->headers[i].value.p, r->headers[i].value.len);
        p = PUT_LIT(p, "\r\n");
    }
    response_date(date);
    p = PUT_LIT(p, "Date: ");
    p = put(p, date, 29);
    p = PUT_LIT(p, "\r\n");
    if (server_len > 0) {
        p = PUT_LIT(p, "Server: ");
        p = put(p, server, server_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (r->upgrade != NULL) {
        p = PUT_LIT(p, "Connection: Upgrade\r\nUpgrade: ");
        p = put(p, r->upgrade, strlen(r->upgrade));
        p = PUT_LIT(p, "\r\n");
    } else {
        p = r->keep_alive ? PUT_LIT(p, "Connection: keep-alive\r\n")
                          : PUT_LIT(p, "Connection: close\r\n");
    }
    if (r->framing == RESP_CHUNKED)
        p = PUT_LIT(p, "Transfer-Encoding: chunked\r\n");
    p = PUT_LIT(p, "\r\n");
    r->head_len = (size_t)(p - r->head);
}

static int
fail_with(struct qln_response *r, int err)
{
    r->failed = err;
    r->keep_alive = false;
    r->conn->must_close = true;
    return err;
}

/*
 * Sends the head (if it has not left) followed by IOV[0, N) in one writev.
 * IOV has a free slot at index 0 for the head. MORE: more bytes follow at once.
 */
static int
send_with_head(struct qln_response *r, struct iovec *iov, int n, bool more)
{
    int first = 1, rc;

    if (!r->head_sent) {
        if (r->head_len == 0)
            build_head(r);
        iov[0].iov_base = r->head;
        iov[0].iov_len = r->head_len;
        first = 0;
        /* From here on it cannot change, even if the write fails. */
        r->head_sent = true;
        r->req->final_sent = true;
    }
    if (n - first == 0)
        return 0;
    rc = conn_writev(r->conn, iov + first, n - first, more);
    return rc < 0 ? fail_with(r, rc) : 0;
}

/* Applies the app's Content-Length to LEN more body bytes; returns what may go out. */
static size_t
length_cut(struct qln_response *r, size_t len)
{
    uint64_t left = (uint64_t)(r->content_length - r->body_bytes);

    if (len <= left)
        return len;
    if (!r->cut_logged) {
        r->cut_logged = true;
        qln_log(QLN_LOG_WARNING,
                "Response body is longer than its Content-Length (%lld): the excess was dropped",
                (long long)r->content_length);
    }
    return (size_t)left;
}

int
qln_resp_write(struct qln_response *resp, const void *buf, size_t len)
{
    struct iovec iov[4];
    char size_line[24];
    int n = 1, rc;
    bool last;

    if (!resp->started)
        return -EINVAL;
    if (resp->failed != 0)
        return resp->failed;
    if (len == 0)
        return 0;
    if (resp->head_len == 0)
        build_head(resp);
    if (resp->framing == RESP_NO_BODY)
        len = 0; /* HEAD, 1xx, 204, 304: the app's bytes are not for the wire */
    else if (resp->framing == RESP_LENGTH)
        len = length_cut(resp, len);
    if (len == 0 && resp->head_sent)
        return 0;
    if (len > 0 && resp->framing == RESP_CHUNKED) {
        iov[n].iov_base = size_line;
        iov[n++].iov_len = (size_t)snprintf(size_line, sizeof(size_line), "%zx\r\n", len);
    }
    if (len > 0) {
        iov[n].iov_base = (void *)buf;
        iov[n++].iov_len = len;
    }
    if (len > 0 && resp->framing == RESP_CHUNKED) {
        iov[n].iov_base = (void *)"\r\n";
        iov[n++].iov_len = 2;
    }
    /* The body's last bytes on a connection that closes after it: they go
       out with the FIN in one segment instead of two (a connection per
       request: -19 % server CPU per request, measured in bench/run.py's
       close case). */
    last = !resp->keep_alive && resp->framing == RESP_LENGTH &&
           resp->body_bytes + (int64_t)len == resp->content_length;
    rc = send_with_head(resp, iov, n, last);
    if (rc == 0) {
        resp->body_bytes += (int64_t)len;
        if (last)
            conn_end_output(resp->conn);
    }
    return rc;
}

/* ------------------------------------------------------------ sendfile */

/* Copies with pread/write where sendfile(2) cannot be used (some filesystems) or is off. */
static int
copy_file(struct qln_response *r, int fd, off_t *off, int64_t *left)
{
    char block[RESP_COPY_BLOCK];
    struct iovec iov;
    ssize_t n;
    int rc;

    while (*left > 0) {
        n = pread(fd, block, *left < RESP_COPY_BLOCK ? (size_t)*left : RESP_COPY_BLOCK, *off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail_with(r, n < 0 ? -errno : -EIO); /* the file shrank under us */
        iov = (struct iovec){block, (size_t)n};
        rc = conn_writev(r->conn, &iov, 1, false);
        if (rc < 0)
            return fail_with(r, rc);
        *off += n;
        *left -= n;
        r->body_bytes += n;
    }
    return 0;
}

static int
send_file_body(struct qln_response *r, int fd, off_t off, int64_t left)
{
    int64_t count = left;
    int rc;

    if (!r->conn->s->sendfile)
        return copy_file(r, fd, &off, &left);
    rc = conn_sendfile(r->conn, fd, &off, &left);
    r->body_bytes += count - left;
    if (rc == -ENOTSUP)
        return copy_file(r, fd, &off, &left);
    return rc < 0 ? fail_with(r, rc) : 0;
}

int
qln_resp_sendfile(struct qln_response *resp, int fd, off_t offset, int64_t count)
{
    struct iovec iov[2];
    char size_line[24];
    struct stat st;
    int n = 1, rc;

    if (!resp->started)
        return -EINVAL;
    if (resp->failed != 0)
        return resp->failed;
    if (count < 0) {
        if (fstat(fd, &st) < 0)
            return -errno;
        count = st.st_size > offset ? (int64_t)(st.st_size - offset) : 0;
    }
    if (resp->head_len == 0)
        build_head(resp);
    if (resp->framing == RESP_NO_BODY)
        count = 0;
    else if (resp->framing == RESP_LENGTH)
        count = (int64_t)length_cut(resp, (size_t)count);
    if (count > 0 && resp->framing == RESP_CHUNKED) {
        iov[n].iov_base = size_line;
        iov[n++].iov_len =
            (size_t)snprintf(size_line, sizeof(size_line), "%llx\r\n", (unsigned long long)count);
    }
    /* MSG_MORE: the head leaves with the file's first bytes, not in a packet alone. */
    rc = send_with_head(resp, iov, n, count > 0);
    if (rc < 0 || count == 0)
        return rc;
    rc = send_file_body(resp, fd, offset, count);
    if (rc == 0 && resp->framing == RESP_CHUNKED) {
        iov[0] = (struct iovec){(void *)"\r\n", 2};
        rc = conn_writev(resp->conn, iov, 1, false);
        if (rc < 0)
            fail_with(resp, rc);
    }
    return rc;
}

/* ------------------------------------------------------------ finishing */

int
response_finish(struct qln_response *r)
{
    struct iovec iov[2];
    int n = 1, rc;

    if (r->failed != 0)
        return r->failed;
    if (r->upgrade != NULL || r->hijacked)
        return 0; /* the other protocol ended; the connection closes */
    if (r->head_len == 0)
        build_head(r);
    if (r->framing == RESP_CHUNKED) {
        iov[n].iov_base = (void *)"0\r\n\r\n";
        iov[n++].iov_len = 5;
    }
    rc = send_with_head(r, iov, n, false);
    if (rc < 0)
        return rc;
    if (r->framing == RESP_LENGTH && r->body_bytes < r->content_length) {
        qln_log(QLN_LOG_WARNING,
                "Response body is shorter than its Content-Length (%lld < %lld): "
                "closing the connection",
                (long long)r->body_bytes, (long long)r->content_length);
        return fail_with(r, -EPIPE);
    }
    if (r->framing == RESP_CLOSE)
        r->conn->must_close = true;
    return 0;
}

/* ------------------------------------------------------------ upgrades */

/* The status of an "HTTP/1.x NNN" line at BUF (an app's own head), else 0. */
static int
status_of_line(const void *buf, size_t len)
{
    const char *p = buf;
    int i, status = 0;

    if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return 0;
    for (i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        status = status * 10 + (p[i] - '0');
    }
    return status >= 100 ? status : 0;
}

int
qln_resp_upgrade(struct qln_response *resp, const char *protocol, const struct qln_header *headers,
                 size_t nheaders)
{
    static const char status[] = "101 Switching Protocols";
    struct iovec iov[1];
    const struct qln_request *req = resp->req;
    int rc;

    if (resp->head_sent)
        return -EALREADY;
    /* The new protocol's bytes start right after the head: a request with a
       body, or HTTP/1.0, cannot switch (RFC 9110 §7.8). */
    if (req->version_minor < 1 || req->chunked || req->content_length > 0 || protocol == NULL ||
        protocol[0] == '\0' || strpbrk(protocol, "\r\n") != NULL)
        return -EINVAL;
    rc = qln_resp_start(resp, (struct qln_slice){status, sizeof(status) - 1}, headers, nheaders);
    if (rc < 0)
        return rc;
    resp->upgrade = protocol;
    resp->conn->must_close = true; /* when handle() returns, the connection ends */
    build_head(resp);
    return send_with_head(resp, iov, 1, false); /* iov[0] takes the head */
}

int
qln_resp_hijack(struct qln_response *resp, struct qln_slice status,
                const struct qln_header *headers, size_t nheaders)
{
    struct iovec iov[1];
    int rc;

    if (resp->head_sent)
        return -EALREADY;
    /* The app's bytes start right after the head: unread body bytes would
       come first. */
    if (request_body_left(resp->req))
        return -EINVAL;
    if (status.len == 0) {
        resp->started = true;
        resp->head_sent = true;
        resp->hijacked = true;
        resp->conn->must_close = true;
        return 0;
    }
    rc = qln_resp_start(resp, status, headers, nheaders);
    if (rc < 0)
        return rc;
    resp->hijacked = true;
    resp->conn->must_close = true; /* "Connection: close" */
    build_head(resp);
    return send_with_head(resp, iov, 1, false); /* iov[0] takes the head */
}

int
qln_resp_upgraded_write(struct qln_response *resp, const void *buf, size_t len)
{
    int rc;

    if (resp->upgrade == NULL && !resp->hijacked)
        return -EINVAL;
    if (resp->failed != 0)
        return resp->failed;
    if (resp->hijacked && resp->status == 0 && resp->body_bytes == 0)
        resp->status = status_of_line(buf, len);
    rc = conn_write_all(resp->conn, buf, len);
    if (rc < 0)
        return fail_with(resp, rc);
    resp->body_bytes += (int64_t)len;
    return 0;
}
