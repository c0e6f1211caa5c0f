/*
 * Worker plugin `asyncio`: ASGI applications on an asyncio event loop
 * (asyncio's own or uvloop's, --asgi-loop). The loop runs in the worker's
 * main greenlet; the core's C connection loop runs in one greenlet per
 * connection through the green bridge (plugins/workers/green/), whose waits
 * go to the loop, and the python3 plugin's qilin.asgi runs each request's
 * coroutine as a Task on it. The Python side is qilin/aioworker.py.
 * Worker process, and the master under preload_app.
 */
#include "qlnconfig.h"

#include <stddef.h>

#include <qilin/plugin.h>

#include "../green/green.h"

/* qilin/aioworker.py: the worker's Python side (module qilin.aioworker). */
static const char aioworker_py[] = {
#include "plugins/workers/asyncio/qilin/aioworker.py.inc"
    0};

static const struct green_flavor asyncio_flavor = {
    .name = "asyncio",
    .package = "greenlet",
    .install = "apt-get install python3-greenlet, or pip install greenlet",
    .module = "qilin.aioworker",
    .path = "plugins/workers/asyncio/qilin/aioworker.py",
    .source = aioworker_py,
};

static int
asyncio_prepare(struct qln_worker *w, char *err, size_t errlen)
{
    return green_prepare(&asyncio_flavor, w, err, errlen);
}

static int
asyncio_run(struct qln_worker *w)
{
    return green_run(&asyncio_flavor, w);
}

static const struct qln_worker_ops asyncio_ops = {
    .size = sizeof(struct qln_worker_ops),
    .flags = QLN_WORKER_GREEN | QLN_WORKER_ASYNC,
    .run = asyncio_run,
    .prepare = asyncio_prepare,
};

/* What gunicorn and uvicorn configurations call this worker class (-k, worker_class). */
static const char *const asyncio_aliases[] = {"asgi",
                                              "gunicorn.workers.gasgi.ASGIWorker",
                                              "egg:gunicorn#asgi",
                                              "uvicorn.workers.UvicornWorker",
                                              "uvicorn.workers.UvicornH11Worker",
                                              "uvicorn_worker.UvicornWorker",
                                              "uvicorn_worker.UvicornH11Worker",
                                              NULL};

QLN_PLUGIN_DEFINE(.kind = QLN_KIND_WORKER, .name = "asyncio", .version = QLN_VERSION,
                  .description = "ASGI apps on an asyncio (or uvloop) event loop; the HTTP work "
                                 "stays in C",
                  .requires = (const char *const[]){"python3", NULL}, .aliases = asyncio_aliases,
                  .worker = &asyncio_ops);
