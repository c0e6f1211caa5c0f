/*
 * libFuzzer target: arbitrary bytes through the real connection
 * code. Each input is sent on a fresh unix-socket connection accepted by
 * qln_conn_accept(), then served by qln_conn_serve() with a tiny C app that
 * reads the whole body and answers with what it parsed, until the
 * connection closes. The waiter is in memory: it never blocks, it empties
 * the client's side so responses of any size can leave, and it answers a
 * read wait with a timeout (the client has sent everything, so waiting for
 * more would only mean the request is incomplete).
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined; the
 * first input byte picks a few settings (limits, keep-alive) so their code
 * paths are fuzzed too. Its top bit picks TLS: the listener then speaks TLS
 * (a certificate made at startup), an OpenSSL client completes the
 * handshake against qln_conn_serve(), and the input's bytes go through the
 * TLS transport as application data, in records of a size the next byte
 * picks, ended by close_notify or by a bare EOF.
 *
 * A request with "Upgrade: websocket" is switched with qln_resp_upgrade(),
 * and what follows it is read as WebSocket frames through
 * qln_req_upgraded_read() and the python3 plugin's frame parser
 * (plugins/python-wsgi/wsframe.c), pings answered, until a close frame, a
 * protocol error or the end of the input.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <qilin/plugin.h>
#include <qilin/request.h>
#include <qilin/response.h>
#include <qilin/worker.h>

#include "core/config.h"
#include "core/conn.h"
#include "core/listener.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/worker.h"
#include "plugins/python-wsgi/wsframe.h"

#ifdef QLN_HAVE_TLS
#include <fcntl.h>
#include <sys/mman.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The longest input worth sending: beyond it a unix socket's buffer fills. */
#define FUZZ_MAX_INPUT (64 * 1024)

static struct qln_worker worker;
static struct listener lst;
static int client_fd = -1;
static struct tls_server *tls_srv; /* NULL: built without TLS */

/* True when REQ carries Upgrade: websocket. */
static bool
wants_websocket(struct qln_request *req)
{
    const struct qln_header *h = qln_req_headers(req);
    size_t i;

    for (i = 0; i < qln_req_nheaders(req); i++) {
        if (h[i].name.len == 7 && strncasecmp(h[i].name.p, "upgrade", 7) == 0 &&
            h[i].value.len == 9 && strncasecmp(h[i].value.p, "websocket", 9) == 0)
            return true;
    }
    return false;
}

/* After the 101: frames until a close, an error or the end of the input; pings answered. */
static int
websocket(struct qln_request *req, struct qln_response *resp)
{
    static uint8_t buf[FUZZ_MAX_INPUT + 16];
    uint8_t head[10];
    struct ws_frame f;
    size_t len = 0, total;
    ssize_t n;
    int rc, why;

    for (;;) {
        rc = ws_frame_parse(buf, len, 1 << 20, &f, &why);
        if (rc < 0 || (rc == 1 && f.opcode == WS_CLOSE))
            return 0;
        total = rc == 1 ? f.head_len + (size_t)f.len : 0;
        if (rc == 1 && total <= len) {
            ws_unmask(buf + f.head_len, (size_t)f.len, f.mask, 0);
            if (f.opcode == WS_PING) {
                size_t h = ws_frame_head(head, WS_PONG, f.len);

                if (qln_resp_upgraded_write(resp, head, h) < 0 ||
                    qln_resp_upgraded_write(resp, buf + f.head_len, (size_t)f.len) < 0)
                    return 0;
            }
            memmove(buf, buf + total, len - total);
            len -= total;
            continue;
        }
        if (len == sizeof(buf))
            return 0;
        n = qln_req_upgraded_read(req, buf + len, sizeof(buf) - len, false);
        if (n <= 0)
            return 0;
        len += (size_t)n;
    }
}

/* Answers with the method, path, query, header count and body length it saw. */
static int
app_handle(void *state, void *tstate, struct qln_request *req, struct qln_response *resp)
{
    static const struct qln_header hdr[] = {{{"Content-Type", 12}, {"text/plain", 10}}};
    char buf[4096], out[512];
    struct qln_slice m = qln_req_method(req), p = qln_req_path(req), q = qln_req_query(req);
    size_t total = 0;
    ssize_t n;
    int len, rc;

    (void)state;
    (void)tstate;
    if (wants_websocket(req)) {
        static const struct qln_header accept[] = {
            {{"Sec-WebSocket-Accept", 20}, {"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28}}};

        rc = qln_resp_upgrade(resp, "websocket", accept, 1);
        if (rc == 0)
            return websocket(req, resp);
        if (rc != -EINVAL)
            return rc;
    }
    while ((n = qln_req_read(req, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    if (n < 0)
        return (int)n;
    len = snprintf(out, sizeof(out), "%.*s %.*s ?%.*s h=%zu b=%zu\n",
                   (int)(m.len > 64 ? 64 : m.len), m.p, (int)(p.len > 128 ? 128 : p.len), p.p,
                   (int)(q.len > 64 ? 64 : q.len), q.p, qln_req_nheaders(req), total);
    rc = qln_resp_start(resp, (struct qln_slice){"200 OK", 6}, hdr, 1);
    if (rc == 0)
        rc = qln_resp_write(resp, out, (size_t)len);
    return rc;
}

static const struct qln_app_ops fuzz_app = {
    .size = sizeof(struct qln_app_ops),
    .handle = app_handle,
};

/* Empties whatever the server wrote to the client's side. */
static void
drain_client(void)
{
    char sink[65536];

    while (recv(client_fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
        ;
}

static int
mem_wait(void *ctx, int fd, unsigned events, int64_t deadline)
{
    (void)ctx;
    (void)fd;
    (void)deadline;
    if (events & QLN_EV_WRITE) {
        drain_client();
        return QLN_WAIT_READY;
    }
    return QLN_WAIT_TIMEOUT;
}

static const struct qln_waiter mem_waiter = {
    .size = sizeof(struct qln_waiter),
    .wait = mem_wait,
};

static void
quiet_logs(void)
{
    const struct log_options lo = {.errorlog = "/dev/null"};
    char err[256];

    if (log_open(&lo, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_conn: %s\n", err);
        abort();
    }
}

#ifdef QLN_HAVE_TLS
static SSL_CTX *client_ctx;

/* A P-256 key and a self-signed certificate for it, in PEM, in file F. */
static void
write_key_pair(FILE *f)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    X509_NAME *name;

    if (key == NULL || cert == NULL)
        abort();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    if (X509_sign(cert, key, EVP_sha256()) == 0 || PEM_write_X509(f, cert) != 1 ||
        PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1)
        abort();
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* The server context, through the settings as qilin's master builds it. */
static void
tls_setup(void)
{
    char path[64], err[512];
    struct config *cfg = config_new();
    int fd = memfd_create("qilin-fuzz-cert", MFD_CLOEXEC);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (f == NULL)
        abort();
    write_key_pair(f);
    fflush(f);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    if (config_register(cfg, core_options, "core", err, sizeof(err)) != 0 ||
        config_set(cfg, "certfile", path, CONFIG_SRC_CLI, NULL, err, sizeof(err)) != 0 ||
        tls_server_new(cfg, &tls_srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_conn: %s\n", err);
        abort();
    }
    fclose(f);
    config_free(cfg);
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (client_ctx == NULL)
        abort();
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
}

/*
 * The client's half of a TLS connection: the handshake, stepped in turn
 * with the server's serve(), then DATA as application data in records of
 * 1 << (SHAPE & 15) bytes (or more, for at most 256 of them), over TLS 1.2
 * (SHAPE bit 4) or 1.3, ended by close_notify (bit 5) or a bare EOF.
 * Returns the client, or NULL when serve() ended the connection during the
 * handshake.
 */
static SSL *
tls_client_send(struct qln_conn *c, uint8_t shape, const uint8_t *data, size_t size)
{
    SSL *cl = SSL_new(client_ctx);
    size_t chunk = (size_t)1 << (shape & 15), off, n, done;
    int i, flags = fcntl(client_fd, F_GETFL);

    /* At most 256 records, so that their overhead still fits the socket's
       buffer: nothing reads them until serve() runs. */
    if (chunk < size / 256 + 1)
        chunk = size / 256 + 1;

    if (cl == NULL || SSL_set_fd(cl, client_fd) != 1)
        abort();
    SSL_set_max_proto_version(cl, (shape & 16) ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_set_connect_state(cl);
    fcntl(client_fd, F_SETFL, flags | O_NONBLOCK);
    for (i = 0; SSL_do_handshake(cl) != 1; i++) {
        int e = SSL_get_error(cl, -1);

        if (i == 50 || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE))
            abort(); /* a well-behaved client must always get through */
        if (qln_conn_serve(c, &mem_waiter, NULL) != QLN_CONN_IDLE) {
            SSL_free(cl);
            return NULL;
        }
    }
    fcntl(client_fd, F_SETFL, flags);
    for (off = 0; off < size; off += n) {
        n = size - off < chunk ? size - off : chunk;
        if (SSL_write_ex(cl, data + off, n, &done) != 1 || done != n)
            abort();
    }
    if (shape & 32)
        SSL_shutdown(cl);
    ERR_clear_error();
    return cl;
}
#endif

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};

    (void)argc;
    (void)argv;
    quiet_logs();
    /* An abstract socket: nothing on disk to clean up, unique per process. */
    snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "qilin-fuzz-%d", (int)getpid());
    lst.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lst.fd < 0 || bind(lst.fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
        listen(lst.fd, 4) != 0) {
        perror("fuzz_conn: listen");
        abort();
    }
    worker.app = &fuzz_app;
    worker.listeners = &lst;
    worker.nlisteners = 1;
    worker.conn.timeout_ms = 1000;
    worker.conn.header_timeout_ms = 1000;
    worker.conn.body_timeout_ms = 1000;
    snprintf(worker.conn.server_header, sizeof(worker.conn.server_header), "qilin");
#ifdef QLN_HAVE_TLS
    tls_setup();
#endif
    return 0;
}

/*
 * The first byte picks limits, so that the small-limit paths run as well,
 * (bits 5-6) the PROXY protocol mode: off, v1, v2, auto, and (bit 7) TLS
 * (without a PROXY header).
 * The client is a unix socket, which --proxy-allow-from always lets send a
 * PROXY header.
 */
static void
pick_settings(uint8_t b)
{
    static const enum proxy_mode modes[] = {PROXY_MODE_OFF, PROXY_MODE_V1, PROXY_MODE_V2,
                                            PROXY_MODE_AUTO};

    worker.conn.limit_request_line = (b & 1) ? 64 : 4094;
    worker.conn.limit_request_fields = (b & 2) ? 4 : 100;
    worker.conn.limit_request_field_size = (b & 4) ? 64 : 8190;
    worker.conn.limit_request_body = (b & 8) ? 16 : 0;
    worker.conn.keepalive_ms = (b & 16) ? 0 : 2000;
    worker.conn.tls = (b & 128) ? tls_srv : NULL;
    /* The TLS client sends no PROXY header. */
    worker.conn.proxy.mode = worker.conn.tls != NULL ? PROXY_MODE_OFF : modes[(b >> 5) & 3];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct qln_conn *c;
    void *tls_client = NULL;
    uint8_t shape = 0;
    int i;

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return -1;
    pick_settings(data[0]);
    data++;
    size--;
    if (worker.conn.tls != NULL) {
        if (size < 1)
            return -1;
        shape = data[0];
        data++;
        size--;
    }
    snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "qilin-fuzz-%d", (int)getpid());
    client_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client_fd < 0 || connect(client_fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        abort();
    if (qln_conn_accept(&worker, lst.fd, &c) != 0)
        abort();
#ifdef QLN_HAVE_TLS
    if (worker.conn.tls != NULL) {
        tls_client = tls_client_send(c, shape, data, size);
        size = 0; /* sent */
    }
#endif
    (void)shape;
    if (size > 0 && send(client_fd, data, size, MSG_NOSIGNAL) != (ssize_t)size)
        abort();
    shutdown(client_fd, SHUT_WR);
    /* Everything was sent and the write side shut, so each serve() either
       makes progress or ends at EOF; the bound only guards against a bug. */
    for (i = 0; i < 1000; i++) {
        if (qln_conn_serve(c, &mem_waiter, NULL) != QLN_CONN_IDLE)
            break;
        drain_client();
    }
    if (i == 1000)
        abort(); /* serve() kept saying IDLE at EOF: a livelock */
    qln_conn_close(c, &mem_waiter);
    drain_client();
#ifdef QLN_HAVE_TLS
    SSL_free(tls_client);
#endif
    close(client_fd);
    client_fd = -1;
    return 0;
}
