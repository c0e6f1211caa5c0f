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
 * paths are fuzzed too.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#include "core/worker.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The longest input worth sending: beyond it a unix socket's buffer fills. */
#define FUZZ_MAX_INPUT (64 * 1024)

static struct qln_worker worker;
static struct listener lst;
static int client_fd = -1;

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
    return 0;
}

/*
 * The first byte picks limits, so that the small-limit paths run as well,
 * and (bits 5-6) the PROXY protocol mode: off, v1, v2, auto. The client is
 * a unix socket, which --proxy-allow-from always lets send a PROXY header.
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
    worker.conn.proxy.mode = modes[(b >> 5) & 3];
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct qln_conn *c;
    int i;

    if (size < 1 || size > FUZZ_MAX_INPUT)
        return -1;
    pick_settings(data[0]);
    data++;
    size--;
    snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "qilin-fuzz-%d", (int)getpid());
    client_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client_fd < 0 || connect(client_fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
        abort();
    if (qln_conn_accept(&worker, lst.fd, &c) != 0)
        abort();
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
    close(client_fd);
    client_fd = -1;
    return 0;
}
