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
 * names must be tokens and values free of CR, LF and NUL, else QLN_EBADHEADER
 * is returned and nothing is kept. Hop-by-hop headers (Connection,
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

#endif
