/*
 * The fake worker of the unit suites (fakeworker.h).
 */
#include "qlnconfig.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <check.h>

#include "fakeworker.h"

void
fake_worker_init(struct qln_worker *w, struct listener *l, const struct qln_app_ops *app)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    int fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    snprintf(l->host, sizeof(l->host), "127.0.0.1");
    snprintf(l->port, sizeof(l->port), "%u", ntohs(sin.sin_port));

    memset(w, 0, sizeof(*w));
    w->app = app;
    w->listeners = l;
    w->nlisteners = 1;
    w->conn.keepalive_ms = 5000;
    w->conn.timeout_ms = 5000;
    w->conn.header_timeout_ms = 5000;
    w->conn.body_timeout_ms = 5000;
    w->conn.limit_request_line = 4094;
    w->conn.limit_request_fields = 100;
    w->conn.limit_request_field_size = 8190;
    snprintf(w->conn.server_header, sizeof(w->conn.server_header), "qilin");
}

int
fake_client(const struct listener *l)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    sin.sin_port = htons((uint16_t)atoi(l->port));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}
