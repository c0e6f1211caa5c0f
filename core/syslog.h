/*
 * gunicorn's syslog output (--log-syslog): each error log line, and each
 * access line unless --disable-redirect-access-to-syslog, also goes to a
 * syslog daemon over UDP, TCP or a unix socket, as gunicorn's
 * SysLogHandler writes it: "<PRI>gunicorn.PREFIX.error: [PID] MESSAGE"
 * and a NUL. Sending never waits: a daemon that is gone or slow loses
 * lines, the server does not. Master and workers (a worker inherits the
 * master's socket).
 */
#ifndef QILIN_CORE_SYSLOG_H
#define QILIN_CORE_SYSLOG_H

#include <stdbool.h>
#include <stddef.h>

/* What --log-syslog* say (config_log_options() reads them). */
struct syslog_options {
    bool on;              /* syslog */
    bool access;          /* access lines too (not disable_redirect_access_to_syslog) */
    const char *addr;     /* syslog_addr: udp://HOST:PORT, tcp://HOST:PORT, unix://PATH[#dgram] */
    const char *prefix;   /* syslog_prefix, else the process name (proc_name or the app) */
    const char *facility; /* syslog_facility: user, daemon, local0 ... */
};

/* The open target; zeroed: off. */
struct syslog_target {
    int fd;          /* -1: off */
    bool stream;     /* TCP or a unix stream socket */
    bool access;     /* access lines go here too */
    int facility;    /* the facility's number (user is 1) */
    char ident[256]; /* "gunicorn.PREFIX" */
};

/*
 * Checks O without opening anything: the address form and the facility
 * name. 0, or -EINVAL with one line in ERR naming the flag and the forms.
 */
int syslog_check(const struct syslog_options *o, char *err, size_t errlen);

/*
 * Opens the target of O into T (off when O->on is false). The socket is
 * non-blocking and close-on-exec; a TCP or unix stream one is connected
 * here. Returns 0, or -errno with one line in ERR (T unchanged).
 */
int syslog_open(const struct syslog_options *o, struct syslog_target *t, char *err, size_t errlen);

/* Closes T (it is off afterwards). */
void syslog_close(struct syslog_target *t);

/*
 * Sends MSG (LEN bytes, no newline) as one syslog message of KIND
 * ("error" or "access") at qilin log level LEVEL, from process PID. Never
 * blocks; a failed send is dropped. Thread-safe.
 */
void syslog_send(const struct syslog_target *t, int level, const char *kind, int pid,
                 const char *msg, size_t len);

#endif
