/*
 * Reading the connection settings out of the configuration, once per
 * worker, so the request path never looks an option up by name.
 */
#include "qlnconfig.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <qilin/log.h>

#include "settings.h"
#include "tls.h"
#include "util.h"

/* Timeout option NAME in ms; when the user never set it, FALLBACK (from --timeout). */
static int64_t
timeout_or(const struct config *cfg, const char *name, int64_t fallback)
{
    int64_t v;

    if (config_source_of(cfg, name) == CONFIG_SRC_DEFAULT)
        return fallback;
    v = config_int(cfg, name);
    return v > 0 ? v * 1000 : 0;
}

static const char *const header_map_names[] = {
    [HEADER_MAP_DROP] = "drop",
    [HEADER_MAP_REFUSE] = "refuse",
    [HEADER_MAP_DANGEROUS] = "dangerous",
};

/* header_map's value as the enum; -1 when it is none of them. */
static int
header_map_of(const struct config *cfg)
{
    const char *v = config_find(cfg, "header_map") != NULL ? config_str(cfg, "header_map") : NULL;
    size_t i;

    if (v == NULL)
        return HEADER_MAP_DROP;
    for (i = 0; i < sizeof(header_map_names) / sizeof(header_map_names[0]); i++)
        if (strcasecmp(v, header_map_names[i]) == 0)
            return (int)i;
    return -1;
}

/*
 * Splits forwarder_headers ("SCRIPT_NAME,PATH_INFO") into S's names; 0, or
 * -1 with ERR for a list too long or a name too long.
 */
static int
forwarders_parse(const struct config *cfg, struct conn_settings *s, char *err, size_t errlen)
{
    const char *v =
        config_find(cfg, "forwarder_headers") != NULL ? config_str(cfg, "forwarder_headers") : NULL;
    const char *p = v, *e;
    size_t n;

    s->nforwarders = 0;
    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == ',')
            p++;
        for (e = p; *e != '\0' && *e != ','; e++)
            ;
        n = (size_t)(e - p);
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == 0)
            break;
        if (n >= FORWARDER_NAME_MAX || s->nforwarders == FORWARDER_HEADERS_MAX) {
            snprintf(err, errlen,
                     "invalid --forwarder-headers '%s': at most %d names of at most %d"
                     " characters",
                     v, FORWARDER_HEADERS_MAX, FORWARDER_NAME_MAX - 1);
            return -1;
        }
        memcpy(s->forwarders[s->nforwarders], p, n);
        s->forwarders[s->nforwarders++][n] = '\0';
        p = e;
    }
    return 0;
}

/*
 * --protocol and --uwsgi-allow-from into S. Returns 0, or -1 with one line in
 * ERR; S is then plain HTTP.
 */
static int
uwsgi_of(const struct config *cfg, struct conn_settings *s, char *err, size_t errlen)
{
    const char *proto = config_str(cfg, "protocol");
    const char *allow = config_str(cfg, "uwsgi_allow_ips");

    s->uwsgi = false;
    if (proto != NULL && strcasecmp(proto, "http") != 0 && strcasecmp(proto, "uwsgi") != 0) {
        snprintf(err, errlen, "invalid --protocol '%s': use http or uwsgi", proto);
        return -1;
    }
    if (proxy_allow_parse_for("--uwsgi-allow-from", allow != NULL ? allow : "127.0.0.1,::1",
                              &s->uwsgi_allow, err, errlen) != 0)
        return -1;
    s->uwsgi = proto != NULL && strcasecmp(proto, "uwsgi") == 0;
    return 0;
}

int
conn_settings_check(const struct config *cfg, char *err, size_t errlen)
{
    struct conn_settings s;

    if (header_map_of(cfg) < 0) {
        snprintf(err, errlen, "invalid --header-map '%s': use drop, refuse or dangerous",
                 config_str(cfg, "header_map"));
        return -1;
    }
    if (uwsgi_of(cfg, &s, err, errlen) != 0)
        return -1;
    return forwarders_parse(cfg, &s, err, errlen);
}

bool
conn_settings_forwarder(const struct conn_settings *s, struct qln_slice name)
{
    size_t i;

    for (i = 0; i < s->nforwarders; i++) {
        const char *f = s->forwarders[i];

        if ((f[0] == '*' && f[1] == '\0') ||
            (strlen(f) == name.len && strncasecmp(f, name.p, name.len) == 0))
            return true;
    }
    return false;
}

void
conn_settings_load(struct conn_settings *s, const struct config *cfg)
{
    int64_t v;
    const char *server;
    char err[256];

    v = config_int(cfg, "keepalive");
    s->keepalive_ms = v > 0 ? v * 1000 : 0;
    v = config_int(cfg, "timeout");
    s->timeout_ms = v > 0 ? v * 1000 : 0;
    /* gunicorn: 0 means "unlimited", which is still capped at 8190. */
    v = config_int(cfg, "limit_request_line");
    s->limit_request_line = (v <= 0 || v > 8190) ? 8190 : (size_t)v;
    v = config_int(cfg, "limit_request_fields");
    s->limit_request_fields = (v <= 0 || v > 32768) ? 32768 : (size_t)v;
    /* gunicorn since 25.x treats 0 as the default 8190. */
    v = config_int(cfg, "limit_request_field_size");
    s->limit_request_field_size = v <= 0 ? 8190 : (size_t)v;
    server = config_str(cfg, "server_header");
    util_format(s->server_header, sizeof(s->server_header), "%s", server ? server : "");
    s->header_timeout_ms = timeout_or(cfg, "header_timeout", s->timeout_ms);
    s->body_timeout_ms = timeout_or(cfg, "body_timeout", s->timeout_ms);
    v = config_int(cfg, "limit_request_body");
    s->limit_request_body = v > 0 ? v : 0;
    s->casefold_method = config_bool(cfg, "casefold_http_method");
    s->obs_fold = config_bool(cfg, "permit_obsolete_folding");
    s->any_version = config_bool(cfg, "permit_unconventional_http_version");
    s->sendfile = config_bool(cfg, "sendfile");
    /* Checked at startup; after a reload a bad value is logged and the safe
       side kept (drop, and no forwarder). */
    v = header_map_of(cfg);
    if (v < 0)
        qln_log(QLN_LOG_ERROR, "invalid --header-map '%s': dropping headers with '_'",
                config_str(cfg, "header_map"));
    s->header_map = v < 0 ? HEADER_MAP_DROP : (enum header_map)v;
    if (forwarders_parse(cfg, s, err, sizeof(err)) != 0) {
        qln_log(QLN_LOG_ERROR, "%s", err);
        s->nforwarders = 0;
    }
    s->real_ip = config_bool(cfg, "real_ip");
    /* Checked at startup (main.c); a bad value from a reload trusts no TCP peer. */
    if (proxy_allow_parse(proxy_allow_spec(cfg), &s->forwarded_allow, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    /* Likewise; a bad value leaves the PROXY protocol off. */
    if (proxy_protocol_load(&s->proxy, cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    /* Checked at startup; a bad value from a reload serves plain HTTP. */
    if (uwsgi_of(cfg, s, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    s->tls = tls_current();
}
