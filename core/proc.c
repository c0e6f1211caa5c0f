/*
 * The pidfile and the process title. Master (pidfile, title) and workers
 * (title).
 */
#include "qlnconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
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
/* The environment strings proc_title_init moved to the heap. They stay
   listed here because unsetenv() (LISTEN_FDS, QILIN_FD) drops them from
   environ without freeing them; this keeps them reachable, not leaked. Master. */
static char **moved_env;

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
        for (i = 0; environ[i] != NULL; i++)
            ;
        moved_env = xcalloc((size_t)i + 1, sizeof(*moved_env));
        for (i = 0; environ[i] != NULL && environ[i] == end; i++) {
            end = environ[i] + strlen(environ[i]) + 1;
            environ[i] = xstrdup(environ[i]);
            moved_env[i] = environ[i];
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

/* A numeric id, or -1 when TEXT is not all digits. */
static long
parse_id(const char *text)
{
    char *end;
    long v;

    if (text[0] < '0' || text[0] > '9')
        return -1;
    errno = 0;
    v = strtol(text, &end, 10);
    return errno == 0 && *end == '\0' && v >= 0 && v <= 0x7fffffffL ? v : -1;
}

int
proc_owner_resolve(const char *user, const char *group, bool initgroups, struct proc_owner *out,
                   char *err, size_t errlen)
{
    const struct passwd *pw = NULL;
    const struct group *gr;
    long id;

    memset(out, 0, sizeof(*out));
    out->initgroups = initgroups;
    if (user != NULL && user[0] != '\0') {
        id = parse_id(user);
        pw = id >= 0 ? getpwuid((uid_t)id) : getpwnam(user);
        if (pw == NULL && id < 0) {
            util_format(err, errlen, "--user: no such user '%s' (give a user name or uid)", user);
            return -ENOENT;
        }
        out->set_uid = true;
        out->uid = pw != NULL ? pw->pw_uid : (uid_t)id;
        if (pw != NULL) {
            snprintf(out->name, sizeof(out->name), "%s", pw->pw_name);
            /* gunicorn would keep the master's group (root's, as root): a
               worker dropped to a user takes that user's group instead. */
            out->set_gid = true;
            out->gid = pw->pw_gid;
        }
    }
    if (group != NULL && group[0] != '\0') {
        id = parse_id(group);
        gr = id >= 0 ? getgrgid((gid_t)id) : getgrnam(group);
        if (gr == NULL && id < 0) {
            util_format(err, errlen, "--group: no such group '%s' (give a group name or gid)",
                        group);
            return -ENOENT;
        }
        out->set_gid = true;
        out->gid = gr != NULL ? gr->gr_gid : (gid_t)id;
    }
    if (initgroups && out->name[0] == '\0') {
        util_format(err, errlen, "--initgroups needs --user naming a user that exists");
        return -EINVAL;
    }
    return 0;
}

int
proc_owner_apply(const struct proc_owner *o, char *err, size_t errlen)
{
    gid_t gid = o->set_gid ? o->gid : getegid();

    /*
     * Order matters: groups can only change while we are still root, so the
     * supplementary groups go first, then the gid, the uid last. A root
     * master's own supplementary groups (root's) must not leak into a worker
     * that drops to another user, hence setgroups() even without
     * --initgroups.
     */
    if (o->initgroups) {
        if (initgroups(o->name, gid) != 0)
            goto fail;
    } else if ((o->set_uid || o->set_gid) && geteuid() == 0) {
        if (setgroups(1, &gid) != 0)
            goto fail;
    }
    if (o->set_gid && setgid(o->gid) != 0)
        goto fail;
    if (o->set_uid && setuid(o->uid) != 0)
        goto fail;
    return 0;
fail:
    util_format(err, errlen, "cannot switch to user %d, group %d: %s (check --user and --group)",
                o->set_uid ? (int)o->uid : (int)geteuid(), (int)gid, strerror(errno));
    return -errno;
}

/* Points FD at /dev/null. */
static void
to_devnull(int fd, int flags)
{
    int null = open("/dev/null", flags);

    if (null < 0)
        return;
    if (null != fd) {
        dup2(null, fd);
        close(null);
    }
}

int
proc_daemonize(bool keep_stdio)
{
    pid_t pid;

    /* gunicorn's (and Stevens') double fork: the first makes us a non-leader
       for setsid(), the second makes sure we never reacquire a terminal. */
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        _exit(0);
    setsid();
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0)
        _exit(0);
    to_devnull(STDIN_FILENO, O_RDONLY);
    if (!keep_stdio) {
        to_devnull(STDOUT_FILENO, O_WRONLY);
        to_devnull(STDERR_FILENO, O_WRONLY);
    }
    return 0;
}

int
proc_setenv_pair(const char *pair, char *err, size_t errlen)
{
    const char *eq = strchr(pair, '=');
    char *key;
    int rc = 0;

    if (eq == NULL || eq == pair) {
        util_format(err, errlen, "--env: invalid value '%s' (expected KEY=VALUE)", pair);
        return -EINVAL;
    }
    key = xstrndup(pair, (size_t)(eq - pair));
    if (setenv(key, eq + 1, 1) != 0) {
        rc = -errno;
        util_format(err, errlen, "--env: cannot set '%s': %s", key, strerror(errno));
    }
    free(key);
    return rc;
}

void
proc_capture_output(int fd)
{
    if (fd < 0)
        return;
    fflush(stdout);
    fflush(stderr);
    if (fd != STDOUT_FILENO)
        dup2(fd, STDOUT_FILENO);
    if (fd != STDERR_FILENO)
        dup2(fd, STDERR_FILENO);
}
