/*
 * The signal table and the resets around fork. Master and workers.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "signals.h"
#include "util.h"

struct signal_name {
    int signo;
    const char *name; /* lower case, no "SIG": gunicorn's "Handling signal: term" */
};

/* Read-only table; master and workers. */
static const struct signal_name names[] = {
    {SIGHUP, "hup"},       {SIGINT, "int"},   {SIGQUIT, "quit"},   {SIGILL, "ill"},
    {SIGTRAP, "trap"},     {SIGABRT, "abrt"}, {SIGBUS, "bus"},     {SIGFPE, "fpe"},
    {SIGKILL, "kill"},     {SIGUSR1, "usr1"}, {SIGSEGV, "segv"},   {SIGUSR2, "usr2"},
    {SIGPIPE, "pipe"},     {SIGALRM, "alrm"}, {SIGTERM, "term"},   {SIGCHLD, "chld"},
    {SIGCONT, "cont"},     {SIGSTOP, "stop"}, {SIGTSTP, "tstp"},   {SIGTTIN, "ttin"},
    {SIGTTOU, "ttou"},     {SIGURG, "urg"},   {SIGXCPU, "xcpu"},   {SIGXFSZ, "xfsz"},
    {SIGVTALRM, "vtalrm"}, {SIGPROF, "prof"}, {SIGWINCH, "winch"}, {SIGIO, "io"},
    {SIGPWR, "pwr"},       {SIGSYS, "sys"},
};

/* The master's watched signals (gunicorn's SIGNALS list); read-only. */
const int signals_master[] = {SIGHUP,  SIGQUIT, SIGINT,  SIGTERM, SIGTTIN,
                              SIGTTOU, SIGUSR1, SIGUSR2, SIGWINCH};
const size_t signals_master_count = ARRAY_SIZE(signals_master);

const char *
signals_name(int signo)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(names); i++) {
        if (names[i].signo == signo)
            return names[i].name;
    }
    return "unknown";
}

const char *
signals_full_name(int signo, char *buf, size_t len)
{
    const char *n = signals_name(signo);
    size_t i;

    if (strcmp(n, "unknown") == 0) {
        snprintf(buf, len, "signal %d", signo);
        return buf;
    }
    /* "SIG" + upper-cased short name: the table stays the single source. */
    snprintf(buf, len, "SIG%s", n);
    for (i = 3; buf[i] != '\0'; i++) {
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    }
    return buf;
}

void
signals_reset_dispositions(void)
{
    struct sigaction sa;
    size_t i;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (i = 0; i < signals_master_count; i++)
        sigaction(signals_master[i], &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    /* A peer that hangs up must give EPIPE on write, not kill the process. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

void
signals_block_all(sigset_t *old)
{
    sigset_t all;

    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, old);
}

void
signals_restore(const sigset_t *old)
{
    sigprocmask(SIG_SETMASK, old, NULL);
}

void
signals_unblock_all(void)
{
    sigset_t none;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}
