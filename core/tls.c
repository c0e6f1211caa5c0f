/*
 * TLS with OpenSSL 3: the server context (master) and the TLS transport
 * (workers). See tls.h.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <qilin/log.h>
#include <qilin/worker.h>

#include "tls.h"
#include "util.h"

/* The master's context; a worker's copy from its fork. */
static struct tls_server *current;

#ifdef QLN_HAVE_TLS

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* TLS 1.2 ciphers unless --ciphers says otherwise: forward secret, AEAD only. */
#define TLS_DEFAULT_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* Small pieces of one writev are sent as one record of at most this size. */
#define TLS_GATHER 16384
/* How many variables a session has at most (make_vars). */
#define TLS_VAR_MAX 9

struct tls_server {
    SSL_CTX *ctx;
    bool ragged_eof_ok; /* suppress_ragged_eofs */
    char summary[320];
};

/* One connection's TLS state. */
struct tls_conn {
    SSL *ssl;
    const struct tls_server *srv;
    const char *peer;
    bool failed;   /* a fatal error: no close_notify, nothing more logged */
    ssize_t ended; /* once failed, what reads return again: 0 (EOF) or -errno */
    /* The session's variables, made on first use. */
    bool vars_made;
    size_t nvars;
    const char *var_name[TLS_VAR_MAX];
    char *var_value[TLS_VAR_MAX];
};

/* ------------------------------------------------------------ the server context */

/* The newest OpenSSL error as text, for an error line; clears the queue. */
static const char *
ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;

    if (r == NULL && e != 0) {
        ERR_error_string_n(e, buf, len);
        r = buf;
    }
    ERR_clear_error();
    return r != NULL ? r : "unknown error";
}

/* Never prompts for a passphrase: a key that has one is refused with a clear error. */
static int
no_passphrase(char *buf, int size, int rwflag, void *asked)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    *(bool *)asked = true;
    return 0;
}

/* ALPN: HTTP/1.1 is what this server speaks. */
static int
alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
            unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301 §3.2: no_application_protocol */
    return SSL_TLSEXT_ERR_OK;
}

static int
readable_file(const char *flag, const char *path, char *err, size_t errlen)
{
    if (access(path, R_OK) == 0)
        return 0;
    return util_err(err, errlen, -1, "%s '%s': %s", flag, path, strerror(errno));
}

static int
load_key_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    char buf[256];
    bool asked = false;

    if (readable_file("--certfile", cert, err, errlen) != 0 ||
        readable_file("--keyfile", key, err, errlen) != 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return util_err(err, errlen, -1, "--certfile '%s': no PEM certificate could be read (%s)",
                        cert, ssl_reason(buf, sizeof(buf)));
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &asked);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (asked) {
            ERR_clear_error();
            return util_err(err, errlen, -1,
                            "--keyfile '%s' is encrypted: qilin reads keys without a passphrase"
                            " (write one with: openssl pkey -in '%s' -out KEY.pem)",
                            key, key);
        }
        return util_err(err, errlen, -1, "--keyfile '%s': no PEM private key could be read (%s)",
                        key, ssl_reason(buf, sizeof(buf)));
    }
    SSL_CTX_set_default_passwd_cb(ctx, NULL);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return util_err(err, errlen, -1,
                        "--keyfile '%s' is not the key of the certificate in --certfile '%s'"
                        " (%s)",
                        key, cert, ssl_reason(buf, sizeof(buf)));
    return 0;
}

static int
load_client_auth(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    const char *ca = config_str(cfg, "ca_certs");
    int64_t reqs = config_int(cfg, "cert_reqs");
    char buf[256];

    if (ca != NULL) {
        if (readable_file("--ca-certs", ca, err, errlen) != 0)
            return -1;
        if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
            return util_err(err, errlen, -1,
                            "--ca-certs '%s': no PEM certificate could be read (%s)", ca,
                            ssl_reason(buf, sizeof(buf)));
        /* The CAs a client is told its certificate must chain to. */
        SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(ca));
        ERR_clear_error();
    }
    if (reqs == 0)
        return 0;
    if (ca == NULL)
        return util_err(err, errlen, -1,
                        "--cert-reqs %lld verifies client certificates: give the CAs that sign them"
                        " with --ca-certs FILE",
                        (long long)reqs);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (reqs == 2 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                       NULL);
    return 0;
}

static int
load_protocols(SSL_CTX *ctx, const struct config *cfg, char *err, size_t errlen)
{
    const char *min = config_str(cfg, "ssl_min_version");
    const char *ciphers = config_str(cfg, "ciphers");
    const char *suites = config_str(cfg, "ssl_ciphersuites");
    const char *groups = config_str(cfg, "ssl_ecdh_curve");
    char buf[256];
    int version;

    if (min == NULL || strcmp(min, "TLSv1.2") == 0)
        version = TLS1_2_VERSION;
    else if (strcmp(min, "TLSv1.3") == 0)
        version = TLS1_3_VERSION;
    else
        return util_err(err, errlen, -1,
                        "--ssl-min-version '%s' is not a protocol qilin offers: use TLSv1.2 or"
                        " TLSv1.3",
                        min);
    SSL_CTX_set_min_proto_version(ctx, version);
    if (SSL_CTX_set_cipher_list(ctx, ciphers != NULL ? ciphers : TLS_DEFAULT_CIPHERS) != 1)
        return util_err(err, errlen, -1,
                        "--ciphers '%s' names no cipher OpenSSL has (%s): see `openssl ciphers`",
                        ciphers, ssl_reason(buf, sizeof(buf)));
    if (suites != NULL && SSL_CTX_set_ciphersuites(ctx, suites) != 1)
        return util_err(err, errlen, -1,
                        "--ssl-ciphersuites '%s' is not a list of TLS 1.3 suites (%s): e.g."
                        " TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
                        suites, ssl_reason(buf, sizeof(buf)));
    if (groups != NULL && SSL_CTX_set1_groups_list(ctx, groups) != 1)
        return util_err(err, errlen, -1,
                        "--ssl-ecdh-curve '%s' is not a list of groups OpenSSL has (%s): e.g."
                        " X25519:P-256",
                        groups, ssl_reason(buf, sizeof(buf)));
    return 0;
}

/* What memory BIO B holds, as a string when OK; B is freed. */
static char *
bio_text(BIO *b, bool ok)
{
    char *text = NULL, *data;
    long n;

    if (ok) {
        n = BIO_get_mem_data(b, &data);
        text = xstrndup(data, (size_t)(n > 0 ? n : 0));
    }
    BIO_free(b);
    return text;
}

/* NAME in RFC 2253 form ("CN=client,O=Example"), as nginx's $ssl_client_s_dn. */
static char *
dn_text(const X509_NAME *name)
{
    BIO *b = BIO_new(BIO_s_mem());

    return b != NULL ? bio_text(b, X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253) >= 0) : NULL;
}

/* "certificate CN=example.org (RSA 2048 bits), TLSv1.2 or newer, ...": the startup log's line. */
static void
describe(struct tls_server *s, const struct config *cfg)
{
    X509 *cert = SSL_CTX_get0_certificate(s->ctx);
    EVP_PKEY *key = SSL_CTX_get0_privatekey(s->ctx);
    const char *min = config_str(cfg, "ssl_min_version");
    static const char *const reqs[] = {"not asked", "verified when sent", "required"};
    int64_t r = config_int(cfg, "cert_reqs");
    char *subject = cert != NULL ? dn_text(X509_get_subject_name(cert)) : NULL;

    util_format(s->summary, sizeof(s->summary),
                "certificate %s (%s %d bits), %s or newer, client certificates %s, ALPN"
                " http/1.1, files encrypted in the worker (no kernel TLS)",
                subject != NULL && subject[0] ? subject : "without subject",
                key != NULL ? EVP_PKEY_get0_type_name(key) : "?",
                key != NULL ? EVP_PKEY_get_bits(key) : 0, min != NULL ? min : "TLSv1.2",
                reqs[r >= 0 && r <= 2 ? r : 0]);
    free(subject);
}

int
tls_server_new(const struct config *cfg, struct tls_server **out, char *err, size_t errlen)
{
    const char *cert = config_str(cfg, "certfile");
    const char *key = config_str(cfg, "keyfile");
    struct tls_server *s;
    char buf[256];

    *out = NULL;
    if (cert == NULL && key == NULL)
        return 0;
    if (cert == NULL)
        return util_err(err, errlen, -1,
                        "--keyfile '%s' needs --certfile: give the certificate it belongs to", key);
    s = xcalloc(1, sizeof(*s));
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx == NULL) {
        util_err(err, errlen, -1, "TLS: cannot create a context: %s", ssl_reason(buf, sizeof(buf)));
        free(s);
        return -1;
    }
    if (load_protocols(s->ctx, cfg, err, errlen) != 0 ||
        load_key_pair(s->ctx, cert, key != NULL ? key : cert, err, errlen) != 0 ||
        load_client_auth(s->ctx, cfg, err, errlen) != 0) {
        tls_server_free(s);
        return -1;
    }
    /* No compression (CRIME), no renegotiation (a client-driven CPU cost,
       and a read that would want to write); the server's cipher order. */
    SSL_CTX_set_options(s->ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                    SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* A write may end after whole records (partial writes) and be retried
       from another buffer with the same bytes (gathered on the stack);
       idle connections give their record buffers back. */
    SSL_CTX_set_mode(s->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                 SSL_MODE_RELEASE_BUFFERS);
    /* Sessions resume from tickets, whose keys this context made once for
       every worker; the id context also lets verified sessions resume. */
    SSL_CTX_set_session_id_context(s->ctx, (const unsigned char *)"qilin", 5);
    SSL_CTX_set_alpn_select_cb(s->ctx, alpn_select, NULL);
    s->ragged_eof_ok = config_bool(cfg, "suppress_ragged_eofs");
    describe(s, cfg);
    *out = s;
    return 0;
}

void
tls_server_free(struct tls_server *s)
{
    if (s == NULL)
        return;
    SSL_CTX_free(s->ctx);
    free(s);
}

const char *
tls_server_summary(const struct tls_server *s)
{
    return s->summary;
}

/* ------------------------------------------------------------ the transport */

/*
 * A client that sent plain HTTP to the TLS port gets a plain answer saying
 * so (as nginx gives), in one non-blocking attempt: its browser or curl then
 * shows why, rather than a reset.
 */
static void
answer_plain_http(int fd)
{
    static const char page[] = "HTTP/1.1 400 Bad Request\r\n"
                               "Connection: close\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 49\r\n"
                               "\r\n"
                               "This port speaks HTTPS: use https:// to reach it\n";

    if (send(fd, page, sizeof(page) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        return;
}

/*
 * A connection that failed: what the client already sent is read away
 * before the close, which would otherwise answer it with a reset (that may
 * destroy the plain answer above before the client reads it).
 */
static void
drain(int fd)
{
    char buf[4096];
    int i;

    shutdown(fd, SHUT_WR);
    for (i = 0; i < 16; i++) {
        if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
            break;
    }
}

/*
 * Before an SSL_* call whose failure SSL_get_error() will read: the
 * thread's error queue must be empty, or an old entry (of this thread's
 * other OpenSSL users: Python's ssl, hashlib) would turn "wants to read"
 * into a fatal error. Peeking first is cheaper than clearing the queue's
 * slots on every request.
 */
static void
clear_errors(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/*
 * After an SSL_* call on TC failed with CODE (SSL_get_error): -EAGAIN with
 * T's want set, 0 for the end of the stream when READING, or a negative
 * errno. A handshake that fails is logged once, with the client's address.
 */
static ssize_t
tls_failed(struct transport *t, struct tls_conn *tc, int code, bool reading)
{
    unsigned long e;
    int reason;
    char buf[256];

    switch (code) {
    case SSL_ERROR_WANT_READ:
        t->want = QLN_EV_READ;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->want = QLN_EV_WRITE;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify */
        return reading ? 0 : -EPIPE;
    case SSL_ERROR_SYSCALL:
        tc->failed = true;
        tc->ended = errno != 0 && errno != EAGAIN ? -errno : 0;
        ERR_clear_error();
        return reading || tc->ended != 0 ? tc->ended : -EPIPE;
    default:
        break;
    }
    tc->failed = true;
    tc->ended = -EPROTO;
    e = ERR_peek_last_error();
    reason = ERR_GET_REASON(e);
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        /* The TCP stream ended without close_notify: an end the peer did not
           sign (a truncation attack could look the same), a normal one for
           most clients. Before the handshake ended, a client that gave up. */
        ERR_clear_error();
        tc->ended = t->handshaking || tc->srv->ragged_eof_ok ? 0 : -ECONNRESET;
        return reading || tc->ended != 0 ? tc->ended : -EPIPE;
    }
    if (t->handshaking && reason == SSL_R_HTTP_REQUEST)
        answer_plain_http(t->fd);
    if (t->handshaking) {
        const char *why = ssl_reason(buf, sizeof(buf));

        qln_log(QLN_LOG_WARNING, "Invalid request from ip=%s: TLS handshake failed: %s%s", tc->peer,
                why,
                reason == SSL_R_HTTP_REQUEST ? " (plain HTTP sent to the TLS port: use https://)"
                                             : "");
    } else {
        qln_log(QLN_LOG_DEBUG, "TLS error from ip=%s: %s", tc->peer, ssl_reason(buf, sizeof(buf)));
    }
    return -EPROTO;
}

static ssize_t
tls_read(struct transport *t, void *buf, size_t len)
{
    struct tls_conn *tc = t->state;
    size_t n;
    int ok;

    if (tc->failed)
        return tc->ended;
    clear_errors();
    errno = 0;
    ok = SSL_read_ex(tc->ssl, buf, len, &n);
    t->handshaking = !SSL_is_init_finished(tc->ssl);
    if (ok == 1)
        return (ssize_t)n;
    return tls_failed(t, tc, SSL_get_error(tc->ssl, 0), true);
}

static ssize_t
tls_writev(struct transport *t, const struct iovec *iov, int n, bool more)
{
    struct tls_conn *tc = t->state;
    char gather[TLS_GATHER];
    const void *p = iov[0].iov_base;
    size_t len = iov[0].iov_len, done;
    int i;

    (void)more; /* records leave as they are made; the gather below joins small pieces */
    if (tc->failed)
        return -EPIPE;
    /* A head and a small body become one record, and one segment, rather
       than one each. Retried after -EAGAIN with the same IOV, this gathers
       the same bytes, which OpenSSL accepts from a moved buffer. */
    if (n > 1 && len < TLS_GATHER) {
        len = 0;
        for (i = 0; i < n && len < TLS_GATHER; i++) {
            size_t k = iov[i].iov_len < TLS_GATHER - len ? iov[i].iov_len : TLS_GATHER - len;

            memcpy(gather + len, iov[i].iov_base, k);
            len += k;
        }
        p = gather;
    }
    if (len == 0)
        return 0;
    clear_errors();
    errno = 0;
    if (SSL_write_ex(tc->ssl, p, len, &done) == 1)
        return (ssize_t)done;
    return tls_failed(t, tc, SSL_get_error(tc->ssl, 0), false);
}

/* Sends close_notify once, when the session is up and healthy. Best effort. */
static void
tls_notify_close(struct tls_conn *tc)
{
    if (tc->failed || !SSL_is_init_finished(tc->ssl) ||
        (SSL_get_shutdown(tc->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    if (SSL_shutdown(tc->ssl) < 0)
        ERR_clear_error();
}

static void
tls_shutdown(struct transport *t)
{
    tls_notify_close(t->state);
    shutdown(t->fd, SHUT_WR);
}

static void
tls_close(struct transport *t)
{
    struct tls_conn *tc = t->state;
    size_t i;

    tls_notify_close(tc);
    if (tc->failed)
        drain(t->fd);
    SSL_free(tc->ssl);
    for (i = 0; i < tc->nvars; i++)
        free(tc->var_value[i]);
    free(tc);
    t->state = NULL;
    close(t->fd);
    t->fd = -1;
}

static bool
tls_pending(const struct transport *t)
{
    const struct tls_conn *tc = t->state;

    /* Decrypted bytes only: a partial record waits for more from the socket
       (SSL_has_pending() would count it, and a stalled client would look
       readable forever). */
    return !tc->failed && SSL_pending(tc->ssl) > 0;
}

static void
add_var(struct tls_conn *tc, const char *name, char *value)
{
    if (value == NULL || tc->nvars == TLS_VAR_MAX) {
        free(value);
        return;
    }
    tc->var_name[tc->nvars] = name;
    tc->var_value[tc->nvars++] = value;
}

static char *
pem_text(X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());

    return b != NULL ? bio_text(b, PEM_write_bio_X509(b, cert) == 1) : NULL;
}

static char *
serial_text(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    char *text = hex != NULL ? xstrdup(hex) : NULL;

    OPENSSL_free(hex);
    BN_free(bn);
    return text;
}

/* The variables mod_ssl (and uWSGI, nginx by other names) give an app. */
static void
make_vars(struct tls_conn *tc)
{
    SSL *ssl = tc->ssl;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    X509 *cert = SSL_get1_peer_certificate(ssl);
    long verify = SSL_get_verify_result(ssl);

    tc->vars_made = true;
    add_var(tc, "HTTPS", xstrdup("on"));
    add_var(tc, "SSL_PROTOCOL", xstrdup(SSL_get_version(ssl)));
    add_var(tc, "SSL_CIPHER", xstrdup(SSL_get_cipher_name(ssl)));
    if (sni != NULL)
        add_var(tc, "SSL_TLS_SNI", xstrdup(sni));
    if (cert == NULL) {
        add_var(tc, "SSL_CLIENT_VERIFY", xstrdup("NONE"));
        return;
    }
    add_var(tc, "SSL_CLIENT_VERIFY",
            verify == X509_V_OK ? xstrdup("SUCCESS")
                                : xasprintf("FAILED:%s", X509_verify_cert_error_string(verify)));
    add_var(tc, "SSL_CLIENT_S_DN", dn_text(X509_get_subject_name(cert)));
    add_var(tc, "SSL_CLIENT_I_DN", dn_text(X509_get_issuer_name(cert)));
    add_var(tc, "SSL_CLIENT_M_SERIAL", serial_text(cert));
    add_var(tc, "SSL_CLIENT_CERT", pem_text(cert));
    X509_free(cert);
}

static bool
tls_var(struct transport *t, size_t i, const char **name, const char **value)
{
    struct tls_conn *tc = t->state;

    if (!tc->vars_made)
        make_vars(tc);
    if (i >= tc->nvars)
        return false;
    *name = tc->var_name[i];
    *value = tc->var_value[i];
    return true;
}

/*
 * The read side of a connection whose first TLS bytes were read before the
 * handshake began (with a PROXY protocol header): a BIO that hands out
 * those bytes, then reads the socket as OpenSSL's socket BIO does.
 */
struct prefixed {
    int fd;
    size_t pos, len;
    unsigned char bytes[]; /* the prefix */
};

static int
prefixed_read(BIO *b, char *buf, size_t len, size_t *done)
{
    struct prefixed *p = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (p->pos < p->len) {
        n = (ssize_t)(p->len - p->pos < len ? p->len - p->pos : len);
        memcpy(buf, p->bytes + p->pos, (size_t)n);
        p->pos += (size_t)n;
        *done = (size_t)n;
        return 1;
    }
    do
        n = read(p->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        *done = (size_t)n;
        return 1;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        BIO_set_retry_read(b);
    else if (n == 0)
        BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* OpenSSL then tells an EOF from an error */
    return 0;
}

static long
prefixed_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}

static int
prefixed_destroy(BIO *b)
{
    free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    return 1;
}

static BIO_METHOD *prefixed_method;
static pthread_once_t prefixed_once = PTHREAD_ONCE_INIT;

static void
prefixed_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "qilin prefixed");

    if (m == NULL || BIO_meth_set_read_ex(m, prefixed_read) != 1 ||
        BIO_meth_set_ctrl(m, prefixed_ctrl) != 1 ||
        BIO_meth_set_destroy(m, prefixed_destroy) != 1) {
        BIO_meth_free(m);
        return;
    }
    prefixed_method = m;
}

/* SSL reads PREFIX, then FD; it writes to FD. Returns 0 or -ENOMEM. */
static int
set_prefixed_fd(SSL *ssl, int fd, const void *prefix, size_t n)
{
    struct prefixed *p;
    BIO *rb, *wb;

    pthread_once(&prefixed_once, prefixed_method_make);
    if (prefixed_method == NULL)
        return -ENOMEM;
    p = malloc(sizeof(*p) + n);
    rb = BIO_new(prefixed_method);
    wb = BIO_new_socket(fd, BIO_NOCLOSE);
    if (p == NULL || rb == NULL || wb == NULL) {
        free(p);
        BIO_free(rb);
        BIO_free(wb);
        return -ENOMEM;
    }
    p->fd = fd;
    p->pos = 0;
    p->len = n;
    memcpy(p->bytes, prefix, n);
    BIO_set_data(rb, p);
    BIO_set_init(rb, 1);
    SSL_set0_rbio(ssl, rb);
    SSL_set0_wbio(ssl, wb);
    return 0;
}

static const struct transport_ops tls_ops = {
    .name = "tls",
    .secure = true,
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = NULL, /* the caller copies files through writev */
    .shutdown = tls_shutdown,
    .close = tls_close,
    .pending = tls_pending,
    .var = tls_var,
};

int
transport_tls_init(struct transport *t, int fd, const struct tls_server *s, const char *peer,
                   const void *prefix, size_t n)
{
    struct tls_conn *tc = calloc(1, sizeof(*tc));
    int rc = -ENOMEM;

    if (tc == NULL)
        return -ENOMEM;
    tc->ssl = SSL_new(s->ctx);
    if (tc->ssl != NULL && n > 0)
        rc = set_prefixed_fd(tc->ssl, fd, prefix, n);
    else if (tc->ssl != NULL && SSL_set_fd(tc->ssl, fd) == 1)
        rc = 0;
    if (rc != 0) {
        ERR_clear_error();
        SSL_free(tc->ssl);
        free(tc);
        return -ENOMEM;
    }
    SSL_set_accept_state(tc->ssl);
    tc->srv = s;
    tc->peer = peer;
    t->ops = &tls_ops;
    t->fd = fd;
    t->want = 0;
    t->handshaking = true;
    t->state = tc;
    return 0;
}

#else /* !QLN_HAVE_TLS */

struct tls_server {
    int unused;
};

int
tls_server_new(const struct config *cfg, struct tls_server **out, char *err, size_t errlen)
{
    *out = NULL;
    if (config_str(cfg, "certfile") == NULL && config_str(cfg, "keyfile") == NULL)
        return 0;
    return util_err(err, errlen, -1,
                    "--certfile: this qilin was built without TLS (--without-openssl, or no"
                    " OpenSSL 3 at configure time): rebuild it with libssl-dev installed, or"
                    " terminate TLS in a proxy");
}

void
tls_server_free(struct tls_server *s)
{
    free(s);
}

const char *
tls_server_summary(const struct tls_server *s)
{
    (void)s;
    return "";
}

int
transport_tls_init(struct transport *t, int fd, const struct tls_server *s, const char *peer,
                   const void *prefix, size_t n)
{
    (void)t;
    (void)fd;
    (void)s;
    (void)peer;
    (void)prefix;
    (void)n;
    return -ENOTSUP;
}

#endif /* QLN_HAVE_TLS */

struct tls_server *
tls_current(void)
{
    return current;
}

void
tls_set_current(struct tls_server *s)
{
    if (current != s)
        tls_server_free(current);
    current = s;
}
