/*
 * Process-level helpers: the pidfile and the process title. Master (and
 * workers for their title).
 */
#ifndef QILIN_CORE_PROC_H
#define QILIN_CORE_PROC_H

#include <stdbool.h>
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

/* Who the workers run as (--user, --group, --initgroups), resolved by the master. */
struct proc_owner {
    bool set_uid, set_gid;
    uid_t uid;
    gid_t gid;
    bool initgroups;
    char name[64]; /* the user's name, for initgroups(3); "" when none */
};

/*
 * Resolves USER and GROUP (names or numeric ids; either may be NULL) into
 * OUT. A user without GROUP gets the user's primary group (gunicorn keeps
 * the master's, root's when run as root, which we consider unsafe).
 * Returns 0 or -ENOENT with ERR one line naming the option ("--user: no
 * such user 'x'"). Master only.
 */
int proc_owner_resolve(const char *user, const char *group, bool initgroups, struct proc_owner *out,
                       char *err, size_t errlen);

/*
 * Switches this process to O: supplementary groups (initgroups, or just the
 * group when root drops privileges), then gid, then uid. Returns 0 or
 * -errno with ERR one line. Worker, before the app loads.
 */
int proc_owner_apply(const struct proc_owner *o, char *err, size_t errlen);

/*
 * gunicorn's daemonize: fork (the parent exits 0), setsid, fork again, and
 * point stdin at /dev/null, and stdout/stderr too unless KEEP_STDIO. Returns
 * 0 in the daemon or -errno (nothing changed then). Master, at startup.
 */
int proc_daemonize(bool keep_stdio);

/*
 * Sets one "KEY=VALUE" (--env) in this process's environment. Returns 0 or
 * -EINVAL with ERR naming the value and the fix. Master.
 */
int proc_setenv_pair(const char *pair, char *err, size_t errlen);

/*
 * --capture-output: makes stdout and stderr copies of FD (the error log),
 * so print() and C writes land in the log. Call again after the log was
 * reopened. Master and workers.
 */
void proc_capture_output(int fd);

#endif
