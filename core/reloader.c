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

#include "config.h"
#include "reloader.h"
#include "util.h"
#include "worker.h"

/* inotify watches are a per-user kernel resource (8192 by default). */
#define MAX_WATCHES 4096
#define WATCH_MASK (IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

struct reloader_watch {
    int wd;
    char *path;
};

static void
add_file(void *ctx, const char *path)
{
    struct reloader *r = ctx;
    int wd;

    if (r->nwatches >= MAX_WATCHES)
        return;
    wd = inotify_add_watch(r->fd, path, WATCH_MASK);
    if (wd < 0)
        return; /* gone or unreadable (zip imports, frozen modules): not watchable */
    if (r->nwatches == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->watches = xrealloc(r->watches, r->cap * sizeof(*r->watches));
    }
    r->watches[r->nwatches++] = (struct reloader_watch){.wd = wd, .path = xstrdup(path)};
}

static const char *
watch_path(const struct reloader *r, int wd)
{
    size_t i;

    for (i = 0; i < r->nwatches; i++) {
        if (r->watches[i].wd == wd)
            return r->watches[i].path;
    }
    return "?";
}

static void
on_change(struct ev_loop *loop, ev_io *io, int revents)
{
    struct reloader *r = container_of(io, struct reloader, io);
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
    /* Once is enough: the worker is on its way out. The watcher was
       unreferenced (reloader_start), so libev wants the reference back first. */
    ev_ref(loop);
    ev_io_stop(loop, io);
    if (r->w->stop == QLN_STOP_NONE)
        r->w->stop = QLN_STOP_GRACEFUL;
    ev_break(loop, EVBREAK_ALL);
}

int
reloader_start(struct reloader *r, struct qln_worker *w)
{
    const struct config *cfg = w->ctx->cfg;
    void (*module_files)(void *, void (*)(void *, const char *), void *);
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
    r->w = w;
    module_files = APP_HOOK(w->app, module_files);
    if (module_files != NULL)
        module_files(w->app_state, add_file, r);
    n = config_find(cfg, "reload_extra_files") != NULL ? config_list_len(cfg, "reload_extra_files")
                                                       : 0;
    for (i = 0; i < n; i++)
        add_file(r, config_list_get(cfg, "reload_extra_files", i));
    qln_log(QLN_LOG_DEBUG, "--reload: watching %zu files", r->nwatches);
    ev_io_init(&r->io, on_change, r->fd, EV_READ);
    ev_io_start(w->loop, &r->io);
    /* Like the heartbeat: it must not keep the worker's loop alive. */
    ev_unref(w->loop);
    return 0;
}

void
reloader_stop(struct reloader *r)
{
    size_t i;

    if (r->fd < 0)
        return;
    if (ev_is_active(&r->io)) {
        ev_ref(r->w->loop);
        ev_io_stop(r->w->loop, &r->io);
    }
    close(r->fd);
    r->fd = -1;
    for (i = 0; i < r->nwatches; i++)
        free(r->watches[i].path);
    free(r->watches);
    r->watches = NULL;
    r->nwatches = r->cap = 0;
}
