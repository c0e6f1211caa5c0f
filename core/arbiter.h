/*
 * The master process (arbiter): binds the listeners, starts the app plugin,
 * forks and supervises the workers (respawn, timeouts, signals), and stops
 * them. It never touches a client connection. Master only.
 */
#ifndef QILIN_CORE_ARBITER_H
#define QILIN_CORE_ARBITER_H

#include <qilin/plugin.h>

#include "config.h"

/*
 * Runs the master until it stops, and returns the process exit status:
 * 0 after a requested stop, 1 for a startup error (one "Error: ..." line on
 * stderr), 3 when a worker failed to boot, 4 when the app failed to load
 * (gunicorn's codes). CTX holds the complete configuration; APP and WORKER
 * are the loaded app and worker plugins (borrowed; they must stay loaded
 * until this returns). Call once per process.
 */
int arbiter_run(struct qln_ctx *ctx, const struct qln_plugin *app, const struct qln_plugin *worker);

#endif
