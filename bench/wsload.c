/*
 * wsload: a WebSocket echo load generator for bench/run.py (wrk speaks no
 * WebSocket). It opens CONNS connections to ws://127.0.0.1:PORT/PATH, does
 * the RFC 6455 handshake on each, then keeps one masked binary message of
 * SIZE bytes in flight per connection for SECONDS: send, read the whole
 * echo, send again. One thread, epoll. It prints one line:
 *
 *     messages=N seconds=S errors=E
 *
 * where N counts echoes received in full within the SECONDS (S is that
 * window as measured), and E counts connections that failed: closed or
 * reset by the server, a close frame it sent first, a frame that is neither
 * data nor ping/pong, an echo of the wrong size, or a handshake not done
 * by the end. Pings are answered with pongs and not counted.
 *
 * At the end each connection closes cleanly, so that the servers' logs
 * show no dropped connections: the echo in flight is read (not counted),
 * then a close frame (1000) is sent and the server's close frame awaited,
 * for at most 2 s in all; connections still open then are just closed.
 *
 *     wsload [-c CONNS] [-d SECONDS] [-s SIZE] PORT [PATH]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536
#define DRAIN_SECONDS 2.0

enum state {
    HANDSHAKE, /* the upgrade request sent, its 101 not read yet */
    ECHO,      /* a message in flight */
    CLOSING,   /* our close frame sent, the server's awaited */
    DONE       /* the socket closed */
};

struct client {
    int fd;
    enum state state;
    size_t got;  /* bytes in buf */
    unsigned char buf[MAX_SIZE + 4096];
};

static const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};

static double
now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
    perror(what);
    exit(1);
}

/* A masked client frame (FIN set) with OPCODE and N bytes of P into OUT: its length. */
static size_t
make_frame(unsigned char *out, int opcode, const unsigned char *p, size_t n)
{
    size_t h = 2, i;

    out[0] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        out[1] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        out[1] = 0x80 | 126;
        out[2] = (unsigned char)(n >> 8);
        out[3] = (unsigned char)n;
        h = 4;
    } else {
        out[1] = 0x80 | 127;
        for (i = 0; i < 8; i++)
            out[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
        h = 10;
    }
    memcpy(out + h, mask, 4);
    for (i = 0; i < n; i++)
        out[h + 4 + i] = p[i] ^ mask[i % 4];
    return h + 4 + n;
}

/* Sends all N bytes of P; false when the connection failed. */
static bool
send_all(int fd, const void *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p = (const char *)p + k;
        n -= (size_t)k;
    }
    return true;
}

/*
 * The server frame at the start of BUF (N bytes): its total size and, in
 * *HEAD, its header's; 0 while the header is incomplete. Server frames are
 * unmasked.
 */
static size_t
server_frame_size(const unsigned char *buf, size_t n, size_t *head)
{
    uint64_t len;
    int i;

    if (n < 2)
        return 0;
    len = buf[1] & 0x7f;
    *head = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)buf[2] << 8 | buf[3];
        *head = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (i = 0; i < 8; i++)
            len = len << 8 | buf[2 + i];
        *head = 10;
    }
    if (len > MAX_SIZE + 1024)
        return SIZE_MAX; /* more than buf holds: refused as an error */
    return *head + (size_t)len;
}

static void
finish(int ep, struct client *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->state = DONE;
}

static bool
send_close(struct client *c)
{
    static const unsigned char code[2] = {0x03, 0xe8}; /* 1000, normal closure */
    unsigned char f[16];

    c->state = CLOSING;
    return send_all(c->fd, f, make_frame(f, 0x8, code, 2));
}

int
main(int argc, char **argv)
{
    static const char key[] = "dGhlIHNhbXBsZSBub25jZQ==";
    static unsigned char frame[MAX_SIZE + 16], payload[MAX_SIZE], pong[1024];
    int conns = 50, seconds = 5, size = 64, opt, ep, i, n, port, live;
    const char *path = "/ws/echo";
    size_t flen, echo_len, head;
    long long messages = 0, errors = 0;
    struct client *cl;
    struct epoll_event ev, evs[256];
    struct sockaddr_in sa;
    char req[512];
    double start, end, stop;
    bool running = true;

    while ((opt = getopt(argc, argv, "c:d:s:")) != -1) {
        if (opt == 'c')
            conns = atoi(optarg);
        else if (opt == 'd')
            seconds = atoi(optarg);
        else if (opt == 's')
            size = atoi(optarg);
        else
            return 2;
    }
    if (optind >= argc || conns < 1 || seconds < 1 || size < 0 || size > MAX_SIZE) {
        fprintf(stderr, "usage: wsload [-c CONNS] [-d SECONDS] [-s SIZE<=65536] PORT [PATH]\n");
        return 2;
    }
    port = atoi(argv[optind]);
    if (optind + 1 < argc)
        path = argv[optind + 1];
    for (i = 0; i < size; i++)
        payload[i] = (unsigned char)('a' + i % 26);
    flen = make_frame(frame, 0x2, payload, (size_t)size);
    /* The echo: the same payload, unmasked, with the header a server writes. */
    echo_len = (size_t)size + (size < 126 ? 2 : size < 65536 ? 4 : 10);
    cl = calloc((size_t)conns, sizeof(*cl));
    ep = epoll_create1(0);
    if (cl == NULL || ep < 0)
        die("setup");
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n\r\n",
                 path, port, key);
    for (i = 0; i < conns; i++) {
        int one = 1;

        cl[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (cl[i].fd < 0 || connect(cl[i].fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
            die("connect");
        setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (!send_all(cl[i].fd, req, (size_t)n))
            die("send");
        cl[i].state = HANDSHAKE;
        ev.events = EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev) != 0)
            die("epoll_ctl");
    }
    live = conns;
    start = now();
    end = start + seconds;
    stop = end + DRAIN_SECONDS;
    while (live > 0) {
        double t = now();
        int k;

        if (running && t >= end) {
            /* The window is over: no more messages; a handshake not done is an error. */
            running = false;
            for (i = 0; i < conns; i++) {
                if (cl[i].state == HANDSHAKE) {
                    errors++;
                    finish(ep, &cl[i]);
                    live--;
                }
            }
            continue;
        }
        if (!running && t >= stop)
            break;
        k = epoll_wait(ep, evs, 256, (int)(((running ? end : stop) - t) * 1000) + 1);
        for (n = 0; n < k; n++) {
            struct client *c = &cl[evs[n].data.u32];
            ssize_t r;
            bool failed = false, closed = false;

            if (c->state == DONE)
                continue;
            r = recv(c->fd, c->buf + c->got, sizeof(c->buf) - c->got, 0);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                /* EOF after our close frame is the clean end; anything else fails. */
                if (c->state != CLOSING)
                    errors++;
                finish(ep, c);
                live--;
                continue;
            }
            c->got += (size_t)r;
            if (c->state == HANDSHAKE) {
                unsigned char *eoh = memmem(c->buf, c->got, "\r\n\r\n", 4);
                size_t used;

                if (eoh == NULL)
                    continue;
                if (strncmp((char *)c->buf, "HTTP/1.1 101", 12) != 0) {
                    fprintf(stderr, "wsload: handshake refused: %.40s\n", (char *)c->buf);
                    return 1;
                }
                used = (size_t)(eoh + 4 - c->buf);
                memmove(c->buf, c->buf + used, c->got - used);
                c->got -= used;
                c->state = ECHO;
                if (!send_all(c->fd, frame, flen))
                    failed = true;
            }
            /* Every whole frame in buf, in order. */
            while (!failed && !closed) {
                size_t need = server_frame_size(c->buf, c->got, &head);
                int opcode = c->buf[0] & 0x0f;

                if (need == SIZE_MAX) {
                    failed = true;
                    break;
                }
                if (need == 0 || c->got < need)
                    break;
                if (opcode >= 0x8 && need - head > 125) {
                    failed = true; /* control payloads are at most 125 bytes */
                } else if (opcode == 0x9) {
                    /* Ping: a pong with its payload. */
                    if (!send_all(c->fd, pong, make_frame(pong, 0xa, c->buf + head,
                                                          need - head)))
                        failed = true;
                } else if (opcode == 0xa) {
                    /* An unsolicited pong: ignored. */
                } else if (opcode == 0x8) {
                    if (c->state != CLOSING)
                        failed = true; /* the server closed first */
                    closed = true;
                } else if ((opcode == 0x2 || opcode == 0x1) && c->state == ECHO) {
                    if (need != echo_len || (c->buf[0] & 0x80) == 0) {
                        fprintf(stderr, "wsload: echo of %zu bytes, %zu expected\n", need,
                                echo_len);
                        failed = true;
                    } else if (running) {
                        messages++;
                        if (!send_all(c->fd, frame, flen))
                            failed = true;
                    } else if (!send_close(c)) {
                        failed = true;
                    }
                } else if (opcode == 0x2 || opcode == 0x1) {
                    /* Data after our close frame: the server had not seen it yet. */
                } else {
                    failed = true;
                }
                memmove(c->buf, c->buf + need, c->got - need);
                c->got -= need;
            }
            if (failed || closed) {
                if (failed)
                    errors++;
                finish(ep, c);
                live--;
            }
        }
    }
    printf("messages=%lld seconds=%.3f errors=%lld\n", messages,
           (running ? now() : end) - start, errors);
    fflush(stdout);
    for (i = 0; i < conns; i++) {
        if (cl[i].state != DONE)
            close(cl[i].fd);
    }
    free(cl);
    close(ep);
    return 0;
}
