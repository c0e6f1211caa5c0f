/*
 * The master process (arbiter): binds the listeners, starts the app plugin,
 * forks and supervises the workers (respawn, timeouts, signals), and stops
 * them. It never touches a client connection. Master only.
 */
#ifndef QILIN_CORE_ARBITER_H
#define QILIN_CORE_ARBITER_H

#include <stddef.h>

#include <qilin/plugin.h>

#include "config.h"

/*
 * Runs the master until it stops, and returns the process exit status:
 * 0 after a requested stop, 1 for a startup error (one "Error: ..." line on
 * stderr), 3 when a worker failed to boot, 4 when the app failed to load
 * (gunicorn's codes). CTX holds the complete configuration; APP and WORKER
 * are the loaded app and worker plugins (borrowed; they must stay loaded
 * until this returns); APP_STATE is what APP's load_config_state() left
 * (NULL: none), which its init() adopts. Call once per process.
 */
int arbiter_run(struct qln_ctx *ctx, const struct qln_plugin *app, void *app_state,
                const struct qln_plugin *worker);

/*
 * HUP's configuration reload. The function builds a complete new
 * configuration the way startup did (config file, $QILIN_CMD_ARGS, command
 * line) and, on success, points CTX->cfg at it and returns 0; the previous
 * configuration must stay valid until the process exits (plugins may hold
 * strings read from it). On failure it leaves CTX alone and returns -errno
 * with ERR one line. APP_STATE is the app plugin's state, for its
 * load_config_state(). OPAQUE is passed through.
 */
typedef int arbiter_reload_fn(void *opaque, struct qln_ctx *ctx, void **app_state, char *err,
                              size_t errlen);

/* Installs the reload function used on HUP (none: HUP only replaces workers).
   Call before arbiter_run(). Master only. */
void arbiter_set_reload(arbiter_reload_fn *fn, void *opaque);

#endif
