/*
 * Worker plugin `gevent`: thousands of mostly-waiting connections per worker
 * on gevent's hub. The core still does all HTTP work in C, through the green
 * bridge (plugins/workers/green/); the gevent side is qilin/gevent.py.
 * Worker process, and the master for monkey-patching under preload_app.
 */
#include "qlnconfig.h"

#include <stddef.h>

#include <qilin/plugin.h>

#include "../green/green.h"

/* qilin/gevent.py: the worker's Python side (module qilin.gevent). */
static const char gevent_py[] = {
#include "plugins/workers/gevent/qilin/gevent.py.inc"
    0};

static const struct green_flavor gevent_flavor = {
    .name = "gevent",
    .package = "gevent",
    .install = "apt-get install python3-gevent, or pip install gevent",
    .module = "qilin.gevent",
    .path = "plugins/workers/gevent/qilin/gevent.py",
    .source = gevent_py,
};

static int
gevent_prepare(struct qln_worker *w, char *err, size_t errlen)
{
    return green_prepare(&gevent_flavor, w, err, errlen);
}

static int
gevent_run(struct qln_worker *w)
{
    return green_run(&gevent_flavor, w);
}

static const struct qln_worker_ops gevent_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_GREEN,
    .run = gevent_run,
    .prepare = gevent_prepare,
};

/* What a gunicorn configuration calls this worker class (-k, worker_class). */
static const char *const gevent_aliases[] = {"gunicorn.workers.ggevent.GeventWorker",
                                             "egg:gunicorn#gevent", NULL};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "gevent", .version = QLN_VERSION,
                  .description = "green threads on gevent's hub; the HTTP work stays in C",
                  .requires = (const char *const[]){"python3", NULL}, .aliases = gevent_aliases,
                  .worker = &gevent_ops);
