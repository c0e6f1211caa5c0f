/*
 * systemd's readiness protocol (sd_notify) without libsystemd: one datagram
 * to the AF_UNIX socket named by $NOTIFY_SOCKET. Master only.
 */
#ifndef QILIN_CORE_NOTIFY_H
#define QILIN_CORE_NOTIFY_H

#include <stdbool.h>

/* True when $NOTIFY_SOCKET is set (we run under a Type=notify unit). */
bool notify_enabled(void);

/*
 * Sends STATE ("READY=1", "STOPPING=1", "MAINPID=123\nREADY=1") to
 * $NOTIFY_SOCKET; a name starting with '@' is an abstract socket. Returns 0
 * (also when the variable is unset: nothing to do) or -errno.
 */
int notify_send(const char *state);

#endif
