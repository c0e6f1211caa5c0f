/*
 * --reload with inotify: one watch per source file; or, with
 * --reload-engine poll (file systems without inotify: NFS, some container
 * mounts), a stat(2) of each file once a second. Any change to one
 * (written in place, replaced by rename as editors do, touched, removed)
 * logs gunicorn's "Worker reloading: PATH modified" and stops the worker
 * gracefully; the master replaces it, and the new worker imports the new
 * code. Worker only.
 */
#include "qlnconfig.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/log.h>
#include <qilin/plugin.h>
#include <qilin/worker.h>

#include "config.h"
#include "reloader.h"
#include "util.h"

/* inotify watches are a per-user kernel resource (8192 by default). */
#define MAX_WATCHES 4096
#define WATCH_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
/* How often the app plugin is asked again for its module files, as gunicorn's
   reloader looks at sys.modules once a second. */
#define RESCAN_INTERVAL 1.0
/* How deep a "**" in a --reload-extra-file pattern looks. */
#define PATTERN_DEPTH 32

/* ------------------------------------------------------------ the poll engine */

static uint64_t
path_hash(const char *p)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */

    while (*p != '\0')
        h = (h ^ (unsigned char)*p++) * 1099511628211ull;
    return h;
}

/* The slot of PATH in R's index: where it is, or the empty one it would take. */
static size_t *
index_slot(const struct reloader *r, const char *path)
{
    size_t mask = r->index_cap - 1, i = (size_t)path_hash(path) & mask;

    while (r->index[i] != 0 && strcmp(r->files[r->index[i] - 1].path, path) != 0)
        i = (i + 1) & mask;
    return &r->index[i];
}

static void
index_grow(struct reloader *r)
{
    size_t i;

    free(r->index);
    r->index_cap = r->index_cap ? r->index_cap * 2 : 256;
    r->index = xcalloc(r->index_cap, sizeof(*r->index));
    for (i = 0; i < r->nfiles; i++)
        *index_slot(r, r->files[i].path) = i + 1;
}

static void
snapshot(struct polled_file *f)
{
    struct stat st;

    f->gone = stat(f->path, &st) != 0;
    if (f->gone)
        return;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->mtime = st.st_mtim;
}

static void
poll_add(struct reloader *r, const char *path)
{
    struct polled_file *f;
    size_t *slot;

    if (r->nfiles >= MAX_WATCHES || access(path, F_OK) != 0)
        return; /* gone or not a file (zip imports, frozen modules): not watchable */
    if ((r->nfiles + 1) * 2 > r->index_cap)
        index_grow(r);
    slot = index_slot(r, path);
    if (*slot != 0)
        return;
    if (r->nfiles == r->files_cap) {
        r->files_cap = r->files_cap ? r->files_cap * 2 : 64;
        r->files = xrealloc(r->files, r->files_cap * sizeof(*r->files));
    }
    f = &r->files[r->nfiles];
    memset(f, 0, sizeof(*f));
    f->path = xstrdup(path);
    snapshot(f);
    *slot = ++r->nfiles;
}

/* The first watched file that changed since the last look, or NULL. */
static const char *
poll_changed(struct reloader *r)
{
    struct polled_file was;
    size_t i;

    for (i = 0; i < r->nfiles; i++) {
        was = r->files[i];
        snapshot(&r->files[i]);
        if (was.gone != r->files[i].gone ||
            (!was.gone &&
             (was.dev != r->files[i].dev || was.ino != r->files[i].ino ||
              was.size != r->files[i].size || was.mtime.tv_sec != r->files[i].mtime.tv_sec ||
              was.mtime.tv_nsec != r->files[i].mtime.tv_nsec)))
            return r->files[i].path;
    }
    return NULL;
}

/* ------------------------------------------------------------ inotify */

/*
 * Watches PATH unless it is watched already: inotify gives the same watch
 * descriptor again for a file it watches, so PATHS, indexed by descriptor,
 * tells a new watch from a known one without comparing names.
 */
static void
add_file(void *ctx, const char *path)
{
    struct reloader *r = ctx;
    size_t n;
    int wd;

    if (r->polling) {
        poll_add(r, path);
        return;
    }
    if (r->nwatches >= MAX_WATCHES)
        return;
    wd = inotify_add_watch(r->fd, path, WATCH_MASK);
    if (wd < 0)
        return; /* gone or unreadable (zip imports, frozen modules): not watchable */
    if ((size_t)wd >= r->npaths) {
        n = r->npaths ? r->npaths : 64;
        while (n <= (size_t)wd)
            n *= 2;
        r->paths = xrealloc(r->paths, n * sizeof(*r->paths));
        memset(r->paths + r->npaths, 0, (n - r->npaths) * sizeof(*r->paths));
        r->npaths = n;
    }
    if (r->paths[wd] != NULL)
        return;
    r->paths[wd] = xstrdup(path);
    r->nwatches++;
}

static void add_pattern(struct reloader *r, const char *pattern, int depth);

/* add_pattern of DIR/REST, then of each directory under DIR (hidden ones aside, as in Python). */
static void
add_under(struct reloader *r, const char *dir, const char *rest, int depth)
{
    char path[PATH_MAX];
    struct dirent *e;
    struct stat st;
    DIR *d;

    if (snprintf(path, sizeof(path), "%s/%s", dir, rest) < (int)sizeof(path))
        add_pattern(r, path, depth + 1);
    if (depth >= PATTERN_DEPTH || (d = opendir(dir)) == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' ||
            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path))
            continue;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            add_under(r, path, rest, depth + 1);
    }
    closedir(d);
}

/*
 * Adds the files PATTERN matches (glob(3)); a "**" component matches any
 * number of directories (none included), as in gunicorn's (Python's
 * recursive) glob: a pattern "templates", "**", "*.html" joined by slashes
 * matches templates/x.html and templates/a/b/x.html.
 */
static void
add_pattern(struct reloader *r, const char *pattern, int depth)
{
    const char *twin = strstr(pattern, "**");
    char dir[PATH_MAX];
    size_t len, i;
    glob_t g;

    if (twin == NULL) {
        if (glob(pattern, 0, NULL, &g) == 0)
            for (i = 0; i < g.gl_pathc; i++)
                add_file(r, g.gl_pathv[i]);
        globfree(&g);
        return;
    }
    len = (size_t)(twin - pattern);
    while (len > 1 && pattern[len - 1] == '/')
        len--;
    if (len >= sizeof(dir))
        return;
    if (len == 0)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)len, pattern);
    add_under(r, dir, twin[2] == '/' ? twin + 3 : twin + 2, depth);
}

/*
 * The app's module files and every reload_extra_files entry; an entry
 * with a glob character (* ? [) is a pattern, expanded again on each
 * rescan so that files created since are watched too.
 */
static void
add_files(struct reloader *r)
{
    size_t i, n;

    if (r->module_files != NULL)
        r->module_files(r->app_state, add_file, r);
    n = config_find(r->cfg, "reload_extra_files") != NULL
            ? config_list_len(r->cfg, "reload_extra_files")
            : 0;
    for (i = 0; i < n; i++) {
        const char *entry = config_list_get(r->cfg, "reload_extra_files", i);

        if (strpbrk(entry, "*?[") == NULL)
            add_file(r, entry);
        else
            add_pattern(r, entry, 0);
    }
}

/* A watched file changed: the worker stops, once. */
static void
changed(struct reloader *r, const char *path)
{
    qln_log(QLN_LOG_INFO, "Worker reloading: %s modified", path);
    /* The watchers were unreferenced (reloader_start), so libev wants the
       references back first. */
    if (ev_is_active(&r->io)) {
        ev_ref(r->loop);
        ev_io_stop(r->loop, &r->io);
    }
    ev_ref(r->loop);
    ev_timer_stop(r->loop, &r->rescan);
    if (*r->stop == QLN_STOP_NONE)
        *r->stop = QLN_STOP_GRACEFUL;
    ev_break(r->loop, EVBREAK_ALL);
}

static void
on_rescan(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct reloader *r = qln_container_of(t, struct reloader, rescan);
    const char *path;

    (void)loop;
    (void)revents;
    /* The files known so far first: one added now has nothing to compare with. */
    if (r->polling && (path = poll_changed(r)) != NULL) {
        changed(r, path);
        return;
    }
    add_files(r);
}

static const char *
watch_path(const struct reloader *r, int wd)
{
    return wd >= 0 && (size_t)wd < r->npaths && r->paths[wd] != NULL ? r->paths[wd] : "?";
}

static void
on_change(struct ev_loop *loop, ev_io *io, int revents)
{
    struct reloader *r = qln_container_of(io, struct reloader, io);
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    const struct inotify_event *ev;
    ssize_t n;

    (void)revents;
    n = read(r->fd, buf, sizeof(buf));
    if (n < (ssize_t)sizeof(*ev))
        return;
    ev = (const struct inotify_event *)(void *)buf;
    if (ev->mask & IN_IGNORED)
        return;
    (void)loop;
    changed(r, watch_path(r, ev->wd));
}

int
reloader_check_config(const struct config *cfg, char *err, size_t errlen)
{
    const char *engine =
        config_find(cfg, "reload_engine") != NULL ? config_str(cfg, "reload_engine") : NULL;

    if (engine == NULL || strcmp(engine, "auto") == 0 || strcmp(engine, "poll") == 0 ||
        strcmp(engine, "inotify") == 0)
        return 0;
    snprintf(err, errlen, "invalid --reload-engine '%s': use auto, poll or inotify", engine);
    return -1;
}

int
reloader_start(struct reloader *r, struct ev_loop *loop, const struct config *cfg,
               reloader_files_fn module_files, void *app_state, volatile sig_atomic_t *stop)
{
    const char *engine;
    int e;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (config_find(cfg, "reload") == NULL || !config_bool(cfg, "reload"))
        return 0;
    engine = config_find(cfg, "reload_engine") != NULL ? config_str(cfg, "reload_engine") : NULL;
    r->polling = engine != NULL && strcmp(engine, "poll") == 0;
    if (!r->polling) {
        r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (r->fd < 0) {
            e = errno;
            if (engine != NULL && strcmp(engine, "inotify") == 0) {
                qln_log_errno(QLN_LOG_ERROR, e, "--reload: inotify_init1()");
                return -e;
            }
            qln_log_errno(QLN_LOG_WARNING, e,
                          "--reload: no inotify, looking at the files"
                          " once a second instead: inotify_init1()");
            r->polling = true;
        }
    }
    r->on = true;
    r->cfg = cfg;
    r->loop = loop;
    r->module_files = module_files;
    r->app_state = app_state;
    r->stop = stop;
    add_files(r);
    qln_log(QLN_LOG_DEBUG, "--reload: watching %zu files (%s)",
            r->polling ? r->nfiles : r->nwatches, r->polling ? "poll" : "inotify");
    if (!r->polling) {
        ev_io_init(&r->io, on_change, r->fd, EV_READ);
        ev_io_start(loop, &r->io);
        ev_unref(loop);
    }
    ev_timer_init(&r->rescan, on_rescan, RESCAN_INTERVAL, RESCAN_INTERVAL);
    ev_timer_start(loop, &r->rescan);
    /* Like the heartbeat: they must not keep the worker's loop alive. */
    ev_unref(loop);
    return 0;
}

void
reloader_stop(struct reloader *r)
{
    size_t i;

    if (!r->on)
        return;
    if (ev_is_active(&r->io)) {
        ev_ref(r->loop);
        ev_io_stop(r->loop, &r->io);
    }
    if (ev_is_active(&r->rescan)) {
        ev_ref(r->loop);
        ev_timer_stop(r->loop, &r->rescan);
    }
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    for (i = 0; i < r->npaths; i++)
        free(r->paths[i]);
    free(r->paths);
    for (i = 0; i < r->nfiles; i++)
        free(r->files[i].path);
    free(r->files);
    free(r->index);
    memset(r, 0, sizeof(*r));
    r->fd = -1;
}
