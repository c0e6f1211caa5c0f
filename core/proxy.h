/*
 * Trusting a front proxy: which peers may set the request's scheme through
 * gunicorn's secure scheme headers (--forwarded-allow-ips, networks in CIDR
 * form or "*"), and reading those headers. Parsed once per process from the
 * configuration; read-only afterwards, so any thread may match.
 */
#ifndef QILIN_CORE_PROXY_H
#define QILIN_CORE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <qilin/common.h>

struct config;

#define PROXY_ALLOW_MAX 32

struct proxy_net {
    int family;       /* AF_INET or AF_INET6 */
    unsigned bits;    /* prefix length */
    uint8_t addr[16]; /* network address, 4 bytes used for AF_INET */
};

/* A parsed --forwarded-allow-ips. */
struct proxy_allow {
    bool any; /* "*" */
    size_t n;
    struct proxy_net nets[PROXY_ALLOW_MAX];
};

/*
 * Parses SPEC, comma-separated addresses or networks ("127.0.0.1,::1",
 * "10.0.0.0/8", "*"), into *OUT. Returns 0, or -EINVAL with one line in ERR
 * naming the bad entry and the option.
 */
int proxy_allow_parse(const char *spec, struct proxy_allow *out, char *err, size_t errlen);

/*
 * The effective --forwarded-allow-ips of CFG, as gunicorn takes it: the
 * option when set, else $FORWARDED_ALLOW_IPS, else the default.
 */
const char *proxy_allow_spec(const struct config *cfg);

/* Parses the effective setting of CFG to report a bad one at startup (0 or -EINVAL). */
int proxy_check_config(const struct config *cfg, char *err, size_t errlen);

/*
 * True when PEER (the accepted connection's address) is trusted by A. Peers
 * of unix sockets are, as in gunicorn: only local processes reach them. An
 * IPv4-mapped IPv6 address matches IPv4 entries.
 */
bool proxy_allow_match(const struct proxy_allow *a, const struct sockaddr_storage *peer);

enum proxy_scheme {
    PROXY_SCHEME_NONE = 0, /* no secure scheme header */
    PROXY_SCHEME_HTTP,
    PROXY_SCHEME_HTTPS,
    PROXY_SCHEME_CONFLICT, /* they disagree: the request must be refused (400) */
};

/*
 * The scheme gunicorn's default secure_scheme_headers give a request
 * (X-Forwarded-Protocol: ssl, X-Forwarded-Proto: https, X-Forwarded-Ssl: on;
 * names case-insensitive, values exact): each of them present says https
 * when it has that value, else http.
 */
enum proxy_scheme proxy_scheme(const struct qln_header *headers, size_t n);

#endif
