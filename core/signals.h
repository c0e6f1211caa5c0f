/*
 * The signal table: which signals qilin handles, their names for the log
 * ("term" as in gunicorn's "Handling signal: term", "SIGKILL" for exits),
 * and the resets a child needs after fork. Master and workers.
 */
#ifndef QILIN_CORE_SIGNALS_H
#define QILIN_CORE_SIGNALS_H

#include <signal.h>
#include <stddef.h>

/* Signals the master watches, in the order its watchers are started. */
extern const int signals_master[];
extern const size_t signals_master_count;

/* Lower-case name without "SIG" ("term", "ttin"); "unknown" for others. Static storage. */
const char *signals_name(int signo);

/* Full name ("SIGKILL"); "signal N" in BUF (at least 16 bytes) for others. */
const char *signals_full_name(int signo, char *buf, size_t len);

/*
 * Restores the default disposition of every signal the master handles and
 * of SIGCHLD, SIGABRT and SIGPIPE, then sets SIGPIPE to SIG_IGN. Called by a
 * freshly forked worker before it installs its own handlers; the signal
 * mask is left as it is (see signals_unblock_all).
 */
void signals_reset_dispositions(void);

/* Blocks every signal; stores the previous mask in OLD. */
void signals_block_all(sigset_t *old);
/* Restores mask OLD (from signals_block_all). */
void signals_restore(const sigset_t *old);
/* Unblocks every signal (the child after fork). */
void signals_unblock_all(void);

#endif
