/*
 * The response writer an app plugin uses inside handle(). The core frames
 * the response (status line with the request's version, Date, Server,
 * Connection, Content-Length or chunked, HEAD/204/304 without body) and
 * writes it through the connection's wait hook. Not thread-safe: one
 * response is used by the thread running handle().
 */
#ifndef QILIN_RESPONSE_H
#define QILIN_RESPONSE_H

#include <qilin/common.h>

/**
 * Sets the status ("200 OK", copied) and the app's headers (copied). Header
 * names must be tokens and values free of control characters but HTAB, and
 * a Content-Length must be digits (repeated only with the same value), else
 * QLN_EBADHEADER is returned, nothing is kept, and qln_resp_refusal() says
 * why. Hop-by-hop headers (Connection,
 * Transfer-Encoding, Keep-Alive...) and Date/Server are dropped; an app
 * Content-Length is honoured. May be called again until the head is sent
 * (start_response with exc_info); afterwards returns -EALREADY.
 */
QLN_API int qln_resp_start(struct qln_response *resp, struct qln_slice status,
                           const struct qln_header *headers, size_t nheaders);

/**
 * Sends LEN body bytes. The first call sends the head and these bytes in one
 * writev. Returns 0 or a negative errno (-EPIPE, -ETIMEDOUT, QLN_ESTOP, or
 * -EINVAL when qln_resp_start was not called). LEN 0 sends nothing.
 */
QLN_API int qln_resp_write(struct qln_response *resp, const void *buf, size_t len);

/**
 * Sends COUNT bytes (-1: to end of file) of the open file FD from OFFSET with
 * sendfile(2), falling back to read/write where sendfile cannot be used.
 * Does not close FD. Returns 0 or a negative errno.
 */
QLN_API int qln_resp_sendfile(struct qln_response *resp, int fd, off_t offset, int64_t count);

/** True once the head has left (status and headers can no longer change). */
QLN_API bool qln_resp_headers_sent(const struct qln_response *resp);

/**
 * Why the last qln_resp_start() on RESP returned QLN_EBADHEADER, as one
 * line that names the field and quotes the offending text in single
 * quotes with backslash escapes: "invalid header name 'Bad Name'", "invalid status 'OK':
 * expected e.g. '200 OK'". "" when it did not refuse. Since ABI 1.4.
 */
QLN_API const char *qln_resp_refusal(const struct qln_response *resp);

/**
 * The Content-Length the app's headers declared (after a successful
 * qln_resp_start()), or -1 when they declared none. The core cuts a longer
 * body to it and closes the connection after a shorter one. Since ABI 1.4.
 */
QLN_API int64_t qln_resp_content_length(const struct qln_response *resp);
/**
 * Switches the connection to PROTOCOL ("websocket", a token; kept, not
 * copied): sends "101 Switching Protocols" with Connection: Upgrade,
 * Upgrade: PROTOCOL, Date, Server and HEADERS (checked and copied as by
 * qln_resp_start; hop-by-hop ones dropped). Afterwards the request's bytes
 * are read with qln_req_upgraded_read() and written with
 * qln_resp_upgraded_write(), and the connection closes when handle()
 * returns; the access log shows 101 and the bytes written. Returns 0,
 * QLN_EBADHEADER (qln_resp_refusal says why), -EALREADY when a head left,
 * -EINVAL for a request that cannot switch (HTTP/1.0, or one with a body),
 * or a write error. Since ABI 1.6.
 */
QLN_API int qln_resp_upgrade(struct qln_response *resp, const char *protocol,
                             const struct qln_header *headers, size_t nheaders);
/** After qln_resp_upgrade() or qln_resp_hijack(): writes LEN bytes as they are. 0 or a negative
 * errno. Since ABI 1.6. */
QLN_API int qln_resp_upgraded_write(struct qln_response *resp, const void *buf, size_t len);

/**
 * Hands the connection to the app (Rack's hijack). With a STATUS ("200",
 * "200 OK"), the head goes first: the status line, HEADERS (checked and
 * copied as by qln_resp_start; hop-by-hop ones dropped), Date, Server and
 * Connection: close, and no framing: what the app writes next is the body
 * as it is, ended by the close. With an empty STATUS nothing is sent and
 * the app writes the whole answer itself; the access log then shows the
 * status of the status line it writes first. The request's body must have
 * been read to its end. Afterwards, as after qln_resp_upgrade(), bytes are
 * read with qln_req_upgraded_read() and written with
 * qln_resp_upgraded_write(), and the connection closes when handle()
 * returns. Returns 0, QLN_EBADHEADER (qln_resp_refusal says why),
 * -EALREADY when a head left, -EINVAL while the request's body is not all
 * read, or a write error. Since ABI 1.7.
 */
QLN_API int qln_resp_hijack(struct qln_response *resp, struct qln_slice status,
                            const struct qln_header *headers, size_t nheaders);

#endif
