/*
 * TLS on the listeners (--certfile): the server context, built in the
 * master from the settings before any worker forks, so every worker shares
 * its session-ticket keys and a client resumes its session on any of them;
 * and the TLS transport a worker puts over each accepted connection, with
 * OpenSSL 3. The handshake never blocks: it runs inside the connection's
 * first reads, as bytes arrive, like the request head it precedes.
 */
#ifndef QILIN_CORE_TLS_H
#define QILIN_CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "transport.h"

struct tls_server;

/*
 * Master: the server context CFG describes (certfile, keyfile, ca_certs,
 * cert_reqs, ciphers, ssl_*). Returns 0 with *OUT, NULL when CFG asks for
 * no TLS; or -1 with ERR one line naming the setting and the fix.
 */
int tls_server_new(const struct config *cfg, struct tls_server **out, char *err, size_t errlen);
void tls_server_free(struct tls_server *s);

/* One line for the startup log: certificate, protocols, client certificates. */
const char *tls_server_summary(const struct tls_server *s);

/*
 * The master's server context, which workers inherit when they fork; NULL
 * without TLS. Setting it frees the one it replaces (a worker forked
 * before keeps its own copy).
 */
struct tls_server *tls_current(void);
void tls_set_current(struct tls_server *s);

/*
 * Worker: makes T the TLS transport of server S over the accepted socket
 * FD, the handshake still to come. The first N bytes of the client's TLS
 * stream are PREFIX, already read from FD (they came with a PROXY protocol
 * header); N may be 0. PEER names the client in log lines and must outlive
 * T. Returns 0, or -ENOMEM (T is then left untouched).
 */
int transport_tls_init(struct transport *t, int fd, const struct tls_server *s, const char *peer,
                       const void *prefix, size_t n);

#endif
