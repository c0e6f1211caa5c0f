/*
 * The pidfile and the process title. Master (pidfile, title) and workers
 * (title).
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "proc.h"
#include "util.h"

extern char **environ;

/* The argv area proc_set_title() writes into; set once by proc_title_init in
   the master, inherited by workers across fork. */
static char *title_base;
static size_t title_len;

/* Reads a pid from PATH: >0, 0 (missing), or -1 (unreadable or garbage). */
static pid_t
read_pidfile(const char *path)
{
    char buf[32];
    ssize_t n;
    long v;
    char *end;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    errno = 0;
    v = strtol(buf, &end, 10);
    if (errno != 0 || end == buf || v <= 0 || v > 0x7fffffffL)
        return -1;
    return (pid_t)v;
}

static bool
pid_alive(pid_t pid)
{
    /* EPERM means the process exists but belongs to someone else. */
    return kill(pid, 0) == 0 || errno == EPERM;
}

int
proc_pidfile_write(const char *path, pid_t pid, char *err, size_t errlen)
{
    char *tmp = NULL;
    char line[32];
    pid_t old = read_pidfile(path);
    int fd = -1, rc = 0, len;

    if (old > 0 && old != pid && pid_alive(old)) {
        util_format(err, errlen,
                    "pidfile %s names a running process (pid %d): is qilin already running? "
                    "stop it or choose another --pid",
                    path, (int)old);
        return -EEXIST;
    }
    /* Write beside the target and rename: a reader never sees a half-written pid. */
    tmp = xasprintf("%s.%d.tmp", path, (int)pid);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        util_format(err, errlen, "can't write pidfile %s: %s (check --pid)", path, strerror(-rc));
        goto out;
    }
    len = snprintf(line, sizeof(line), "%d\n", (int)pid);
    if (write(fd, line, (size_t)len) != len || fsync(fd) != 0) {
        rc = errno ? -errno : -EIO;
        util_format(err, errlen, "can't write pidfile %s: %s", path, strerror(-rc));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = -errno;
        util_format(err, errlen, "can't write pidfile %s: %s (check --pid)", path, strerror(-rc));
    }
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

void
proc_pidfile_remove(const char *path, pid_t pid)
{
    if (read_pidfile(path) == pid)
        unlink(path);
}

void
proc_title_init(int argc, char **argv)
{
    char *end;
    int i;

    if (argc <= 0 || argv == NULL || argv[0] == NULL)
        return;
    /*
     * ps(1) reads /proc/PID/cmdline, i.e. the memory argv's strings occupy.
     * The kernel lays argv and then environ out contiguously; to get room for
     * a title longer than the original command line we take the environment
     * strings' space too, after moving them to the heap (nginx, Redis and
     * PostgreSQL do the same). Stop at the first string that is not adjacent.
     */
    end = argv[0] + strlen(argv[0]) + 1;
    for (i = 1; i < argc && argv[i] == end; i++)
        end = argv[i] + strlen(argv[i]) + 1;
    if (i == argc && environ != NULL) {
        for (i = 0; environ[i] != NULL && environ[i] == end; i++) {
            end = environ[i] + strlen(environ[i]) + 1;
            environ[i] = xstrdup(environ[i]);
        }
    }
    title_base = argv[0];
    title_len = (size_t)(end - argv[0]);
}

void
proc_set_title(const char *role, const char *name)
{
    char comm[16];
    char title[512];
    size_t n;

    snprintf(comm, sizeof(comm), "qilin: %s", role);
    prctl(PR_SET_NAME, comm, 0, 0, 0);
    if (title_base == NULL || title_len < 2)
        return;
    if (name != NULL && name[0] != '\0')
        snprintf(title, sizeof(title), "qilin: %s [%s]", role, name);
    else
        snprintf(title, sizeof(title), "qilin: %s", role);
    n = strlen(title);
    if (n > title_len - 1)
        n = title_len - 1;
    /* NUL-fill the rest, so ps shows no leftovers of the old arguments. */
    memcpy(title_base, title, n);
    memset(title_base + n, '\0', title_len - n);
}
