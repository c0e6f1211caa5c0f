/*
 * Trusting a front proxy: which peers may set the request's scheme through
 * gunicorn's secure scheme headers (--forwarded-allow-ips, networks in CIDR
 * form or "*"), and reading those headers; the PROXY protocol header (v1
 * text, v2 binary) that may precede a connection's first request
 * (--proxy-protocol, --proxy-allow-from). Settings are parsed once per
 * process from the configuration and read-only afterwards, so any thread may
 * match; the header parser keeps no state. Worker (parsing) and master
 * (checking the settings at startup).
 */
#ifndef QILIN_CORE_PROXY_H
#define QILIN_CORE_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
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
 * naming the bad entry and the option (--forwarded-allow-ips).
 */
int proxy_allow_parse(const char *spec, struct proxy_allow *out, char *err, size_t errlen);

/* As proxy_allow_parse(), naming the option FLAG ("--proxy-allow-from") in ERR. */
int proxy_allow_parse_for(const char *flag, const char *spec, struct proxy_allow *out, char *err,
                          size_t errlen);

/*
 * The effective --forwarded-allow-ips of CFG, as gunicorn takes it: the
 * option when set, else $FORWARDED_ALLOW_IPS, else the default.
 */
const char *proxy_allow_spec(const struct config *cfg);

/*
 * Parses the effective proxy settings of CFG (--forwarded-allow-ips,
 * --proxy-protocol, --proxy-allow-from) to report a bad one at startup:
 * 0, or -EINVAL with one line in ERR naming the option and the fix.
 */
int proxy_check_config(const struct config *cfg, char *err, size_t errlen);

/*
 * True when PEER (the accepted connection's address) is trusted by A. Peers
 * of unix sockets are, as in gunicorn: only local processes reach them. An
 * IPv4-mapped IPv6 address matches IPv4 entries.
 */
bool proxy_allow_match(const struct proxy_allow *a, const struct sockaddr_storage *peer);

/*
 * The client address that trusted proxies report for a request whose socket
 * peer is trusted: from Forwarded's for= (RFC 7239) when that header is
 * present, else from X-Forwarded-For. Entries are read from the right (the
 * one our proxy appended) and an entry that is itself in TRUSTED is skipped,
 * so a client cannot choose its address by sending its own header: only the
 * first address left of our trusted chain is believed. Writes it as text
 * into OUT (INET6_ADDRSTRLEN bytes) and returns true; false when there is no
 * usable entry (absent, "unknown", obfuscated or malformed). Any process.
 */
bool proxy_forwarded_for(const struct proxy_allow *trusted, const struct qln_header *headers,
                         size_t n, char *out, size_t outlen);

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

/* --proxy-protocol: whether a PROXY header precedes a connection's first request. */
enum proxy_mode {
    PROXY_MODE_OFF = 0, /* never: the first bytes are HTTP */
    PROXY_MODE_V1,      /* a v1 text header is required */
    PROXY_MODE_V2,      /* a v2 binary header is required */
    PROXY_MODE_AUTO,    /* v1, v2 or none (plain HTTP) */
};

/* The PROXY protocol settings of a worker (struct conn_settings holds one). */
struct proxy_protocol {
    enum proxy_mode mode;
    struct proxy_allow from; /* --proxy-allow-from: peers that may send a header */
};

/*
 * Fills P from CFG (--proxy-protocol, --proxy-allow-from). Returns 0, or
 * -EINVAL with one line in ERR; P is then off (no header accepted), which
 * a worker reloaded with a bad value falls back to.
 */
int proxy_protocol_load(struct proxy_protocol *p, const struct config *cfg, char *err,
                        size_t errlen);

/* The longest header proxy_header_parse() accepts: v1's 107, v2's 16 plus this block. */
#define PROXY_V1_MAX 107
#define PROXY_V2_MAX_BLOCK 2048

enum proxy_rc {
    PROXY_NONE = 0,  /* auto: the bytes are not a PROXY header; they are HTTP */
    PROXY_NEED_MORE, /* a header may be or is being received; read more */
    PROXY_DONE,      /* a valid header of H->len bytes; see H->local, addr, port */
    PROXY_BAD,       /* malformed (or missing where required): H->reason says why */
};

/* What proxy_header_parse() found. Plain data; no ownership. */
struct proxy_header {
    int version; /* 1 or 2 once the signature was seen (even if malformed); else 0 */
    size_t len;  /* PROXY_DONE: bytes the header takes at the start of the buffer */
    bool local;  /* PROXY_DONE: v2 LOCAL or UNSPEC, v1 UNKNOWN: keep the socket's peer */
    char proto[5];               /* PROXY_DONE, !local: "TCP4" or "TCP6" */
    char addr[INET6_ADDRSTRLEN]; /* PROXY_DONE, !local: the client's (source) address */
    char port[8];                /* ... and port, in decimal */
    char dst_addr[INET6_ADDRSTRLEN]; /* PROXY_DONE, !local: the address the client reached */
    char dst_port[8];                /* ... and port, in decimal */
    const char *reason;          /* PROXY_BAD: one line for the log (static text) */
};

/*
 * Parses the PROXY header that MODE (not OFF) expects at the start of
 * BUF[0, LEN), the first bytes a connection received. Stateless, so a
 * caller that got PROXY_NEED_MORE calls it again over the grown buffer; it
 * never asks for more than the protocol's maximum. v1 "PROXY UNKNOWN ..."
 * is accepted and ignored (the spec's health checks), as v2 LOCAL is.
 * Returns enum proxy_rc and fills *H. Thread-safe.
 */
enum proxy_rc proxy_header_parse(enum proxy_mode mode, const char *buf, size_t len,
                                 struct proxy_header *h);

#endif
