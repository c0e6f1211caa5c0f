/*
 * The connection settings a worker reads once from the configuration:
 * timeouts, request limits, the Server header and the proxy trust rules.
 * Every layer of the request path reads them, none
 * writes them. Worker processes only.
 */
#ifndef QILIN_CORE_SETTINGS_H
#define QILIN_CORE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <qilin/common.h>

#include "config.h"
#include "proxy.h" /* struct proxy_allow, struct proxy_protocol */

struct tls_server;

/* header_map: what becomes of a header whose name has '_' (gunicorn 22+). */
enum header_map {
    HEADER_MAP_DROP = 0,  /* left out of the request the app sees */
    HEADER_MAP_REFUSE,    /* the request is answered 400 */
    HEADER_MAP_DANGEROUS, /* kept: X_Forwarded_For and X-Forwarded-For then share a key */
};

/* The most forwarder_headers names, and their longest. */
#define FORWARDER_HEADERS_MAX 16
#define FORWARDER_NAME_MAX 64

struct conn_settings {
    int64_t keepalive_ms;            /* keepalive; 0 disables keep-alive */
    int64_t timeout_ms;              /* budget for a head, a body read or a write to progress */
    size_t limit_request_line;       /* 0 = unlimited, capped at 8190 */
    size_t limit_request_fields;     /* max 32768 */
    size_t limit_request_field_size; /* 0 = 8190 */
    char server_header[128];         /* "Server:" value; "" = no header */
    /* Hostile-input limits. */
    int64_t header_timeout_ms;  /* budget for a whole request head; 0 = none */
    int64_t body_timeout_ms;    /* budget for one body read to progress; 0 = none */
    int64_t limit_request_body; /* bytes of request body; 0 = unlimited */
    bool casefold_method;       /* casefold_http_method: uppercase methods */
    bool obs_fold;              /* permit_obsolete_folding: unfold obs-fold, not 400 */
    bool any_version;           /* permit_unconventional_http_version */
    bool sendfile; /* sendfile (--no-sendfile sets it false): file bodies by sendfile(2) */
    enum header_map header_map;
    /* forwarder_headers: names a trusted peer may send with '_' whatever
       header_map says; "*" is any. */
    char forwarders[FORWARDER_HEADERS_MAX][FORWARDER_NAME_MAX];
    size_t nforwarders;
    bool real_ip; /* REMOTE_ADDR from a trusted peer's Forwarded/X-Forwarded-For */
    struct proxy_allow forwarded_allow; /* peers trusted with the scheme headers */
    struct proxy_protocol proxy;        /* --proxy-protocol, --proxy-allow-from */
    const struct tls_server *tls;       /* --certfile: the listeners speak TLS; else NULL */
    bool uwsgi;                         /* --protocol uwsgi: connections carry uwsgi packets */
    struct proxy_allow uwsgi_allow;     /* --uwsgi-allow-from: peers that may send them */
};

/*
 * Fills S from CFG (keepalive, timeout, limit_request_*, server_header,
 * header_timeout, body_timeout, limit_request_body, casefold_http_method, sendfile,
 * header_map, forwarder_headers,
 * real_ip, forwarded_allow_ips, proxy_protocol, proxy_allow_from, protocol,
 * uwsgi_allow_ips), and the
 * TLS context the master built (tls_current()). Values
 * that fail to parse were refused at startup; after a reload one is logged
 * and left at its safe side (trust nothing).
 */
void conn_settings_load(struct conn_settings *s, const struct config *cfg);

/*
 * Checks CFG's header_map, forwarder_headers, protocol and uwsgi_allow_ips; 0, or -1 with one
 * line in ERR naming the value and what is allowed.
 */
int conn_settings_check(const struct config *cfg, char *err, size_t errlen);

/* True when NAME (any case) is one of S's forwarder_headers. */
bool conn_settings_forwarder(const struct conn_settings *s, struct qln_slice name);

#endif
