/*
 * The bridge shared by the gevent and eventlet worker plugins (linked into
 * each): the core's connection loop runs in one green thread per
 * connection, and every socket wait yields to the green library's hub.
 * What differs between the two libraries is a Python module of each.
 * Worker process (and the master for prepare under preload_app).
 */
#ifndef QILIN_GREEN_H
#define QILIN_GREEN_H

#include <stddef.h>

struct qln_worker;

/*
 * One green library. Its Python module (SOURCE, the text of the .py file at
 * PATH, compiled in; imported as MODULE) builds on qilin.green (the Crew of
 * connection green threads, TimedWaiter, timerfd_open and timerfd_arm) and
 * defines:
 *   prepare()   monkey-patch this process, or, when the master already did
 *               (preload_app), give the forked child a fresh hub;
 *   Waiter(fd)  a TimedWaiter for one connection's waits: .wait(events,
 *               seconds|None, idle) returns 0 (ready) or 1 (timed out);
 *               .close() before the fd is closed;
 *   run(fds, accept, serve, tick, max_conns, graceful_timeout, wake_fd, linger, drain_max)
 *               serves until tick() reports a stop (calling tick() whenever
 *               WAKE_FD is readable, and a few times a second), then, on a
 *               graceful stop, Crew.linger()s and waits for the connections
 *               in service; returns when all are done: None, or an int,
 *               the worker's exit status.
 */
struct green_flavor {
    const char *name;    /* the worker plugin: "gevent" */
    const char *package; /* the Python package it needs, for error lines */
    const char *install; /* how to get it: "apt-get install python3-gevent" */
    const char *module;  /* its Python module: "qilin.gevent" */
    const char *path;    /* that module's file in the source tree */
    const char *source;  /* that file's text */
};

/*
 * The worker ops' prepare hook for FL: starts the interpreter through the
 * python3 plugin's "python3.embed" service and runs the flavor module's
 * prepare(). W is NULL in the master. Returns 0 or -errno with ERR set.
 */
int green_prepare(const struct green_flavor *fl, struct qln_worker *w, char *err, size_t errlen);

/* The worker ops' run hook for FL: the worker's whole life on the hub. Returns the exit status. */
int green_run(const struct green_flavor *fl, struct qln_worker *w);

#endif
