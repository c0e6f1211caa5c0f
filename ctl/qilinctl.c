/*
 * qilinctl: sends one command to a qilin master's control socket and
 * prints the answer (core/control_cmd.h has the protocol; docs/qilinctl.1
 * the usage). Exit status: 0 done, 1 the command could not be done (no
 * server, no permission, refused), 2 a usage error. Client only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <qilin/version.h>

#include "core/control_cmd.h"

#define EXIT_USAGE 2
#define IO_TIMEOUT_S 10
#define ANSWER_MAX (64u * 1024 * 1024)

static void
usage(FILE *out, const char *dflt)
{
    size_t i;

    fprintf(out,
            "Usage: qilinctl [-s PATH] [-j] COMMAND [ARG]...\n"
            "       qilinctl [-s PATH] [-j] -c \"COMMAND [ARG]...\"\n"
            "\n"
            "Sends COMMAND to a running qilin master over its control socket.\n"
            "\n"
            "Options:\n"
            "  -s, --socket PATH     the control socket (default: %s)\n"
            "  -j, --json            print the answer as JSON\n"
            "  -c, --command CMD     the command as one string, as gunicornc -c takes it\n"
            "  -h, --help            show this help and exit\n"
            "  -v, --version         show the version and exit\n"
            "\n"
            "Commands:\n",
            dflt);
    for (i = 0; i < control_cmd_help_count; i++)
        fprintf(out, "  %-27s %s\n", control_cmd_help[i].usage, control_cmd_help[i].what);
    fputs("\nExit status: 0 done, 1 not done (no server, no permission, refused), 2 usage.\n", out);
}

/* The words in ARGV (or CMD) as one request line: "[json ]WORDS". */
static int
build_line(char *line, size_t len, bool json, const char *cmd, char **words, int n)
{
    size_t pos = 0;
    int i, k;

    pos += (size_t)snprintf(line, len, "%s%s", json ? "json " : "", cmd != NULL ? cmd : "");
    for (i = 0; i < n && pos < len; i++)
        pos +=
            (size_t)snprintf(line + pos, len - pos, "%s%s", pos > 0 && i > 0 ? " " : "", words[i]);
    if (pos >= len)
        return -1;
    for (k = 0; line[k] != '\0'; k++) {
        if (line[k] == '\n')
            return -1;
    }
    return 0;
}

static const char *
hint(int e)
{
    if (e == EACCES || e == EPERM)
        return " (run qilinctl as the server's user, or widen its --control-socket-mode)";
    return " (is qilin running with --control-socket?)";
}

/* Connects to PATH; -errno with one line on stderr. */
static int
connect_to(const char *path)
{
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S, .tv_usec = 0};
    struct sockaddr_un sun;
    int fd, e;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "qilinctl: socket path %s is too long (at most %zu bytes)\n", path,
                sizeof(sun.sun_path) - 1);
        return -ENAMETOOLONG;
    }
    memcpy(sun.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "qilinctl: socket(): %s\n", strerror(errno));
        return -errno;
    }
    /* Bounded waits: a master that stopped answering must not hang a script. */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        e = errno;
        fprintf(stderr, "qilinctl: cannot connect to %s: %s%s\n", path, strerror(e), hint(e));
        close(fd);
        return -e;
    }
    return fd;
}

/* Reads the whole answer into *OUT (NUL-terminated, owned). Returns 0 or -errno. */
static int
read_answer(int fd, char **out, size_t *outlen)
{
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    ssize_t n;

    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (cap - len < 2) {
            char *nb = cap < ANSWER_MAX ? realloc(buf, cap * 2) : NULL;

            if (nb == NULL) {
                free(buf);
                return -EFBIG;
            }
            buf = nb;
            cap *= 2;
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno == EAGAIN ? ETIMEDOUT : errno;

            free(buf);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

static int
send_line(int fd, const char *line)
{
    size_t len = strlen(line), off = 0;
    ssize_t n;

    while (off < len) {
        n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        off += (size_t)n;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"socket", required_argument, NULL, 's'},  {"json", no_argument, NULL, 'j'},
        {"command", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},       {NULL, 0, NULL, 0},
    };
    char dflt[512], line[CONTROL_LINE_MAX + 8], err[256], *answer = NULL, *nl;
    const char *path = NULL, *cmd = NULL;
    struct control_cmd parsed;
    bool json = false;
    size_t len = 0;
    int opt, fd, rc;

    if (control_default_path(dflt, sizeof(dflt)) != 0)
        snprintf(dflt, sizeof(dflt), "%s", "(none: $XDG_RUNTIME_DIR and $HOME are unset)");
    /* "+": words after the command are its arguments, never options. */
    while ((opt = getopt_long(argc, argv, "+s:jc:hv", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            path = optarg;
            break;
        case 'j':
            json = true;
            break;
        case 'c':
            cmd = optarg;
            break;
        case 'h':
            usage(stdout, dflt);
            return 0;
        case 'v':
            printf("qilinctl (qilin %s)\n", QLN_VERSION);
            return 0;
        default:
            fprintf(stderr, "qilinctl: try 'qilinctl --help'\n");
            return EXIT_USAGE;
        }
    }
    if (cmd == NULL && optind == argc) {
        fprintf(stderr, "qilinctl: no command given (e.g. qilinctl show workers; see qilinctl"
                        " --help)\n");
        return EXIT_USAGE;
    }
    if (cmd != NULL && optind < argc) {
        fprintf(stderr, "qilinctl: give the command either with -c or as words, not both\n");
        return EXIT_USAGE;
    }
    if (build_line(line, CONTROL_LINE_MAX, json, cmd, argv + optind, argc - optind) != 0) {
        fprintf(stderr, "qilinctl: the command is too long or spans lines\n");
        return EXIT_USAGE;
    }
    if (control_cmd_parse(line, &parsed, err, sizeof(err)) != 0) {
        fprintf(stderr, "qilinctl: %s\n", err);
        return EXIT_USAGE;
    }
    if (path == NULL && control_default_path(dflt, sizeof(dflt)) != 0) {
        fprintf(stderr, "qilinctl: no default socket path ($XDG_RUNTIME_DIR and $HOME are"
                        " unset): give one with -s PATH\n");
        return EXIT_USAGE;
    }
    if (path == NULL)
        path = dflt;
    fd = connect_to(path);
    if (fd < 0)
        return EXIT_FAILURE;
    strcat(line, "\n");
    rc = send_line(fd, line);
    if (rc == 0)
        rc = read_answer(fd, &answer, &len);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "qilinctl: no answer from %s: %s\n", path,
                rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
        return EXIT_FAILURE;
    }
    nl = strchr(answer, '\n');
    if (nl != NULL && strncmp(answer, "ok\n", 3) == 0) {
        fwrite(nl + 1, 1, len - (size_t)(nl + 1 - answer), stdout);
        free(answer);
        return fflush(stdout) == 0 ? 0 : EXIT_FAILURE;
    }
    if (nl != NULL && strncmp(answer, "error: ", 7) == 0) {
        *nl = '\0';
        fprintf(stderr, "qilinctl: %s\n", answer + 7);
    } else {
        fprintf(stderr, "qilinctl: unexpected answer from %s (not a qilin control socket?)\n",
                path);
    }
    free(answer);
    return EXIT_FAILURE;
}
