/*
 * --max-worker-memory and --max-worker-lifetime: when a worker's resident
 * memory or age passes the limit, it is told to stop gracefully, as
 * --max-requests does. A file of its own so that the request path
 * (serve.c) and the worker's loop (worker.c) both reach it without
 * reaching each other. Worker processes only.
 */
#include "qlnconfig.h"

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include <qilin/log.h>

#include "util.h"
#include "worker.h"

/* The worker's resident memory in KiB, from /proc/self/statm; -1 when unknown. */
static int64_t
rss_kib(const struct qln_worker *w)
{
    char buf[128];
    long long size, resident;
    ssize_t n;

    if (w->statm_fd < 0)
        return -1;
    n = pread(w->statm_fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    if (sscanf(buf, "%lld %lld", &size, &resident) != 2)
        return -1;
    return (int64_t)resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void
worker_check_recycle(struct qln_worker *w)
{
    int64_t rss = -1;
    bool old_age;

    if (w->stop != QLN_STOP_NONE || __atomic_load_n(&w->recycling, __ATOMIC_RELAXED))
        return;
    old_age = w->lifetime_end_ms > 0 && util_now_ms() >= w->lifetime_end_ms;
    if (!old_age && w->max_rss_kib > 0)
        rss = rss_kib(w);
    if (!old_age && rss <= w->max_rss_kib)
        return;
    if (__atomic_exchange_n(&w->recycling, 1, __ATOMIC_RELAXED))
        return; /* another thread saw it first */
    if (old_age)
        qln_log(QLN_LOG_INFO,
                "Worker (pid: %d) reached --max-worker-lifetime: restarting it after its current"
                " requests",
                (int)w->pid);
    else
        qln_log(QLN_LOG_WARNING,
                "Worker (pid: %d) uses %lld MiB, over --max-worker-memory %lld MiB: restarting it"
                " after its current requests",
                (int)w->pid, (long long)((rss + 1023) / 1024), (long long)(w->max_rss_kib / 1024));
    if (w->stop == QLN_STOP_NONE)
        w->stop = QLN_STOP_GRACEFUL;
    worker_poke(w); /* its loop begins the stop */
}
