/*
 * The parsed request an app plugin's handle() receives. Every slice and
 * string points into core-owned memory that stays valid until handle()
 * returns. Not thread-safe: one request is used by one thread at a time.
 */
#ifndef QILIN_REQUEST_H
#define QILIN_REQUEST_H

#include <qilin/common.h>

/** Method token as sent ("GET"). */
QLN_API struct qln_slice qln_req_method(const struct qln_request *r);
/** The raw request-target as sent ("/a%20b?x=1"); gunicorn's RAW_URI. */
QLN_API struct qln_slice qln_req_target(const struct qln_request *r);
/**
 * Path part of the target, still percent-encoded; for absolute-form targets
 * the path only; empty for "OPTIONS *" (the target stays "*").
 */
QLN_API struct qln_slice qln_req_path(const struct qln_request *r);
/** Query after '?', without '#fragment'; empty when absent. */
QLN_API struct qln_slice qln_req_query(const struct qln_request *r);
/** Minor HTTP version: 0 for HTTP/1.0, 1 for HTTP/1.1. */
QLN_API int qln_req_version_minor(const struct qln_request *r);

/** Header fields in arrival order, names as sent (case kept), values trimmed of OWS. */
QLN_API size_t qln_req_nheaders(const struct qln_request *r);
QLN_API const struct qln_header *qln_req_headers(const struct qln_request *r);

/** Declared Content-Length, or -1 when the body is chunked or absent. */
QLN_API int64_t qln_req_content_length(const struct qln_request *r);
/** True when the body uses Transfer-Encoding: chunked. */
QLN_API bool qln_req_chunked(const struct qln_request *r);

/**
 * Reads up to LEN bytes of the decoded body into BUF. Returns the number of
 * bytes (> 0), 0 at the end of the body, or a negative error: -ETIMEDOUT,
 * -EFBIG (over limit_request_body), QLN_EBADBODY (broken chunked framing),
 * QLN_EPEERCLOSED (the body ended early), QLN_ESTOP. Each is sticky. All
 * but QLN_ESTOP are the client's doing, which the core has logged (one
 * "Invalid request" line) and answers itself (408, 413, 400) if handle()
 * returns the error before a response started. The first read answers
 * "Expect: 100-continue" when the client asked for it. Blocks through the
 * connection's wait hook; nothing is buffered whole.
 */
QLN_API ssize_t qln_req_read(struct qln_request *r, void *buf, size_t len);
/**
 * As qln_req_read(), but where it would wait for the client it returns
 * -EAGAIN instead (not sticky): wait for the descriptor (qln_req_fd) to
 * turn readable, then call again. Once the client has sent nothing for
 * body_timeout, it fails with -ETIMEDOUT as qln_req_read would, so the
 * caller also calls again when that much time has passed
 * (qln_req_body_timeout_ms). For a plugin whose waits belong to an event
 * loop it runs (asyncio). Since ABI 1.6.
 */
QLN_API ssize_t qln_req_read_nowait(struct qln_request *r, void *buf, size_t len);
/** The body_timeout setting in milliseconds (0: none). Since ABI 1.6. */
QLN_API int64_t qln_req_body_timeout_ms(const struct qln_request *r);
/**
 * After qln_resp_upgrade(): reads up to LEN bytes of the new protocol, first
 * those the client sent right behind its request head. Returns bytes (> 0),
 * 0 when the client closed, -EAGAIN with NOWAIT when nothing is there (wait
 * for qln_req_fd to turn readable), or another negative errno (QLN_ESTOP).
 * Without NOWAIT it waits through the connection's wait hook, with no
 * deadline: the new protocol keeps its own time. Since ABI 1.6.
 */
QLN_API ssize_t qln_req_upgraded_read(struct qln_request *r, void *buf, size_t len, bool nowait);

/**
 * The descriptor of the connection the request came on, for reading about
 * it (getpeername(2), the socket's options): gunicorn hands apps the socket.
 * The core reads, writes and closes it; a plugin must not. Since ABI 1.3.
 */
QLN_API int qln_req_fd(const struct qln_request *r);

/** Peer address as text ("127.0.0.1", "::1"); "" for unix sockets. NUL-terminated. */
QLN_API const char *qln_req_remote_addr(const struct qln_request *r);
/** Peer port as text ("51234"); "" for unix sockets. */
QLN_API const char *qln_req_remote_port(const struct qln_request *r);
/** The listener's host as bound ("127.0.0.1"); for unix sockets the socket path. */
QLN_API const char *qln_req_server_name(const struct qln_request *r);
/** The listener's port as text ("8000"); "" for unix sockets. */
QLN_API const char *qln_req_server_port(const struct qln_request *r);
/** "http" (or "https" once TLS or trusted proxies say so). */
QLN_API const char *qln_req_url_scheme(const struct qln_request *r);

/*
 * ABI 1.2. When the connection began with a PROXY protocol header naming a
 * client (--proxy-protocol), remote_addr/remote_port above are that client,
 * and these say the rest: the protocol, "TCP4" or "TCP6", and the address
 * and port the client connected to (the proxy's). NULL otherwise, also for
 * v1 UNKNOWN and v2 LOCAL headers. gunicorn's PROXY_PROTOCOL, PROXY_ADDR,
 * PROXY_PORT.
 */
QLN_API const char *qln_req_proxy_protocol(const struct qln_request *r);
QLN_API const char *qln_req_proxy_addr(const struct qln_request *r);
QLN_API const char *qln_req_proxy_port(const struct qln_request *r);

/**
 * ABI 1.5. The I-th (from 0) variable describing the connection's TLS
 * session (--certfile), named as Apache's mod_ssl names them: HTTPS ("on"),
 * SSL_PROTOCOL ("TLSv1.3"), SSL_CIPHER, SSL_TLS_SNI (when the client named
 * the host), SSL_CLIENT_VERIFY ("SUCCESS", "FAILED:reason" or "NONE"), and
 * with a client certificate SSL_CLIENT_S_DN and SSL_CLIENT_I_DN (RFC 2253),
 * SSL_CLIENT_M_SERIAL (hex) and SSL_CLIENT_CERT (PEM). Returns false past
 * the last, and at once on a connection without TLS. The strings stay
 * valid until handle() returns.
 */
QLN_API bool qln_req_tls_var(const struct qln_request *r, size_t i, const char **name,
                             const char **value);

#endif
