/*
 * The Lua 5.4 configuration file: option names are globals. Master only.
 */
#ifndef QILIN_CORE_LUA_CONFIG_H
#define QILIN_CORE_LUA_CONFIG_H

#include <stddef.h>

#include "config.h"

/*
 * Runs PATH in a fresh Lua state whose global table records assignments,
 * then sets every assigned global into CFG at CONFIG_SRC_FILE (call with
 * config_set_lenient() on so settings of not-yet-loaded plugins wait).
 * Booleans, integers, strings and (for lists) arrays of strings are
 * accepted; functions are kept for hooks later. Errors are one line
 * starting "PATH:LINE:" (syntax, runtime, wrong type). A `qilin` table
 * offers qilin.cpu_count(). Returns 0, -ENOENT (file missing) or -EINVAL.
 */
int lua_config_load(struct config *cfg, const char *path, char *err, size_t errlen);

#endif
