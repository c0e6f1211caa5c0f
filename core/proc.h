/*
 * Process-level helpers: the pidfile and the process title. Master (and
 * workers for their title).
 */
#ifndef QILIN_CORE_PROC_H
#define QILIN_CORE_PROC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * Writes PID to PATH atomically (a temporary file renamed over it). Refuses
 * when PATH already names another live process: -EEXIST with ERR saying so
 * and how to fix it. A stale file (dead pid, garbage) is replaced. Returns 0
 * or -errno with ERR one line naming PATH. Master only.
 */
int proc_pidfile_write(const char *path, pid_t pid, char *err, size_t errlen);

/* Removes PATH if it still holds PID (a newer master may own it). Master only. */
void proc_pidfile_remove(const char *path, pid_t pid);

/*
 * Remembers where ARGV's strings (and the environment after them) live so
 * that proc_set_title() can show a title in ps(1). Moves the environment
 * strings to the heap, so environ stays valid. Call once, early in main,
 * after copying anything still needed from ARGV: the strings are
 * overwritten later. Master only.
 */
void proc_title_init(int argc, char **argv);

/*
 * Sets the process title to "qilin: ROLE [NAME]" (ps, /proc/PID/cmdline)
 * and the thread name to "qilin: ROLE" (prctl(PR_SET_NAME), 15 bytes).
 * NAME may be NULL. Master and workers.
 */
void proc_set_title(const char *role, const char *name);

#endif
