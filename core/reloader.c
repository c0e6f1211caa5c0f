/*
 * --reload with inotify: one watch per source file. Any change to one
 * (written in place, replaced by rename as editors do, touched, removed)
 * logs gunicorn's "Worker reloading: PATH modified" and stops the worker
 * gracefully; the master replaces it, and the new worker imports the new
 * code. Worker only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <limits.h>
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

static void
add_module_files(struct reloader *r)
{
    if (r->module_files != NULL)
        r->module_files(r->app_state, add_file, r);
}

static void
on_rescan(struct ev_loop *loop, ev_timer *t, int revents)
{
    struct reloader *r = qln_container_of(t, struct reloader, rescan);

    (void)loop;
    (void)revents;
    add_module_files(r);
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
    qln_log(QLN_LOG_INFO, "Worker reloading: %s modified", watch_path(r, ev->wd));
    /* Once is enough: the worker is on its way out. The watchers were
       unreferenced (reloader_start), so libev wants the references back first. */
    ev_ref(loop);
    ev_io_stop(loop, io);
    ev_ref(loop);
    ev_timer_stop(loop, &r->rescan);
    if (*r->stop == QLN_STOP_NONE)
        *r->stop = QLN_STOP_GRACEFUL;
    ev_break(loop, EVBREAK_ALL);
}

int
reloader_start(struct reloader *r, struct ev_loop *loop, const struct config *cfg,
               reloader_files_fn module_files, void *app_state, volatile sig_atomic_t *stop)
{
    size_t i, n;
    int e;

    memset(r, 0, sizeof(*r));
    r->fd = -1;
    if (config_find(cfg, "reload") == NULL || !config_bool(cfg, "reload"))
        return 0;
    r->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (r->fd < 0) {
        e = errno;
        qln_log_errno(QLN_LOG_ERROR, e, "--reload: inotify_init1()");
        return -e;
    }
    r->loop = loop;
    r->module_files = module_files;
    r->app_state = app_state;
    r->stop = stop;
    add_module_files(r);
    n = config_find(cfg, "reload_extra_files") != NULL ? config_list_len(cfg, "reload_extra_files")
                                                       : 0;
    for (i = 0; i < n; i++)
        add_file(r, config_list_get(cfg, "reload_extra_files", i));
    qln_log(QLN_LOG_DEBUG, "--reload: watching %zu files", r->nwatches);
    ev_io_init(&r->io, on_change, r->fd, EV_READ);
    ev_io_start(loop, &r->io);
    ev_timer_init(&r->rescan, on_rescan, RESCAN_INTERVAL, RESCAN_INTERVAL);
    ev_timer_start(loop, &r->rescan);
    /* Like the heartbeat: they must not keep the worker's loop alive. */
    ev_unref(loop);
    ev_unref(loop);
    return 0;
}

void
reloader_stop(struct reloader *r)
{
    size_t i;

    if (r->fd < 0)
        return;
    if (ev_is_active(&r->io)) {
        ev_ref(r->loop);
        ev_io_stop(r->loop, &r->io);
    }
    if (ev_is_active(&r->rescan)) {
        ev_ref(r->loop);
        ev_timer_stop(r->loop, &r->rescan);
    }
    close(r->fd);
    r->fd = -1;
    for (i = 0; i < r->npaths; i++)
        free(r->paths[i]);
    free(r->paths);
    r->paths = NULL;
    r->npaths = r->nwatches = 0;
}
