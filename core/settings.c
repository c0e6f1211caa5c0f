/*
 * Reading the connection settings out of the configuration, once per
 * worker, so the request path never looks an option up by name.
 */
#include "qlnconfig.h"

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
    s->sendfile = config_bool(cfg, "sendfile");
    s->real_ip = config_bool(cfg, "real_ip");
    /* Checked at startup (main.c); a bad value from a reload trusts no TCP peer. */
    if (proxy_allow_parse(proxy_allow_spec(cfg), &s->forwarded_allow, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    /* Likewise; a bad value leaves the PROXY protocol off. */
    if (proxy_protocol_load(&s->proxy, cfg, err, sizeof(err)) != 0)
        qln_log(QLN_LOG_ERROR, "%s", err);
    s->tls = tls_current();
}
