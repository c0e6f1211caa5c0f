/*
 * Worker plugin `eventlet`: green threads on eventlet's hub, the same bridge
 * as the gevent worker (plugins/workers/green/) with eventlet's Python side
 * (qilin/eventlet.py). Worker process, and the master for monkey-patching
 * under preload_app.
 */
#include "qlnconfig.h"

#include <stddef.h>

#include <qilin/plugin.h>

#include "../green/green.h"

/* qilin/eventlet.py: the worker's Python side (module qilin.eventlet). */
static const char eventlet_py[] = {
#include "plugins/workers/eventlet/qilin/eventlet.py.inc"
    0};

static const struct green_flavor eventlet_flavor = {
    .name = "eventlet",
    .package = "eventlet",
    .install = "apt-get install python3-eventlet, or pip install eventlet",
    .module = "qilin.eventlet",
    .path = "plugins/workers/eventlet/qilin/eventlet.py",
    .source = eventlet_py,
};

static int
eventlet_prepare(struct qln_worker *w, char *err, size_t errlen)
{
    return green_prepare(&eventlet_flavor, w, err, errlen);
}

static int
eventlet_run(struct qln_worker *w)
{
    return green_run(&eventlet_flavor, w);
}

static const struct qln_worker_ops eventlet_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_GREEN,
    .run = eventlet_run,
    .prepare = eventlet_prepare,
};

/* What a gunicorn configuration calls this worker class (-k, worker_class). */
static const char *const eventlet_aliases[] = {"gunicorn.workers.geventlet.EventletWorker",
                                               "egg:gunicorn#eventlet", NULL};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "eventlet", .version = QLN_VERSION,
                  .description = "green threads on eventlet's hub; the HTTP work stays in C",
                  .requires = (const char *const[]){"python3", NULL}, .aliases = eventlet_aliases,
                  .worker = &eventlet_ops);
