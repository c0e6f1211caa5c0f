/*
 * The Lua 5.4 configuration file: option names are globals. Master only.
 */
#ifndef QILIN_CORE_LUA_CONFIG_H
#define QILIN_CORE_LUA_CONFIG_H

#include <stddef.h>

#include "config.h"

/*
 * Runs PATH in a fresh Lua state whose global table records assignments,
 * then sets every assigned global into CFG at CONFIG_SRC_FILE, in the order
 * first assigned, with the last value and its line ("PATH:LINE" origin).
 * The CALLER turns config_set_lenient() on around this call when plugins are
 * not loaded yet, so their settings wait for config_resolve_pending(); with
 * it off an unknown name fails here. Booleans, integers (or integral
 * floats), strings and, for lists, a string or an array of strings are
 * accepted; a global assigned nil is not set. A function assigned to a
 * server hook name is handed with the state to hooks_stage() (hooks.h; the
 * caller commits or discards it); any other function is an unknown setting.
 * Errors are one line starting "PATH:LINE:" (syntax, runtime, wrong type,
 * unknown setting), or
 * "config file 'PATH' not found". Binary chunks are refused. A `qilin`
 * table offers qilin.cpu_count(). Returns 0, -ENOENT (PATH does not exist:
 * only then), another -errno from reading PATH, or -EINVAL.
 */
int lua_config_load(struct config *cfg, const char *path, char *err, size_t errlen);

#endif
