/*
 * The plugin loader: search path, dlopen, descriptor checks, requires,
 * worker aliases, option registration. Master only (workers inherit the
 * loaded plugins across fork).
 */
#ifndef QILIN_CORE_PLUGIN_H
#define QILIN_CORE_PLUGIN_H

#include <stddef.h>

#include <qilin/plugin.h>

#include "config.h"

struct loaded_plugin {
    const struct qln_plugin *desc;
    void *handle; /* dlopen handle */
    char *path;   /* where it was found */
    void *state;  /* an app plugin's, from load_config_state() until init() adopts it */
};

struct plugin_set {
    struct loaded_plugin *items;
    size_t n, cap;
};

/*
 * Checks a descriptor against this core: magic, ABI major equal, minor not
 * newer, size not smaller, name equal to EXPECT_NAME (the file stem; NULL
 * skips), kind/ops consistency, ops table sizes, reserved NULL. Returns 0 or
 * QLN_EABI / -EINVAL with ERR saying what is wrong and the fix (rebuild the
 * plugin against this qilin).
 */
int plugin_check(const struct qln_plugin *p, const char *expect_name, char *err, size_t errlen);

/*
 * Loads plugin NAME (or the path NAME if it contains '/'; its file name
 * without ".so" is then the expected plugin name) into SET unless a plugin
 * of that name is already there. Search order: each directory of
 * $QILIN_PLUGIN_PATH (colon-separated, empty parts skipped), each
 * --plugin-dir (setting plugin_dir, when CFG has it), then PKGLIBDIR. dlopen
 * uses RTLD_NOW | RTLD_GLOBAL. Loads the plugin's requires first (cycles are
 * refused) and keeps them in SET even if NAME then fails. Registers its
 * options in CFG (owner = its name). Returns 0, or -ENOENT (not found),
 * -ENOEXEC (not loadable, or no qilin_plugin symbol), QLN_EABI / -EINVAL
 * (plugin_check), -ELOOP (requirement cycle), -EEXIST (option clash), with
 * ERR one line such as "plugin 'foo' not found (searched: /a, /b,
 * /usr/lib/qilin); check --plugin-dir or QILIN_PLUGIN_PATH".
 */
int plugin_load(struct plugin_set *set, struct config *cfg, const char *name, char *err,
                size_t errlen);

/*
 * The plugin NAME stands for: NAME itself when it is a path (it holds a
 * '/') or when a loaded plugin has that
 * name or its file NAME.so is on the search path; else the plugin that
 * lists NAME among its aliases (a gunicorn class path such as
 * "gunicorn.workers.ggevent.GeventWorker" for gevent), found among the
 * loaded plugins, then among the plugin files on the search path, which
 * are opened only to read their descriptors. NAME when none claims it
 * (loading it then says it is missing). Returns NAME, a loaded
 * descriptor's name, or BUF (LEN bytes) holding the name. Master only.
 */
const char *plugin_resolve(const struct plugin_set *set, const struct config *cfg, const char *name,
                           char *buf, size_t len);

/* Finds a loaded plugin by name; NULL if absent. */
const struct loaded_plugin *plugin_find(const struct plugin_set *set, const char *name);
/* The first loaded plugin of KIND (QLN_KIND_APP...), or NULL. */
const struct loaded_plugin *plugin_first_of_kind(const struct plugin_set *set, unsigned kind);

/* Frees the bookkeeping and empties SET (master exit); the objects stay mapped (see plugin.c). */
void plugin_set_free(struct plugin_set *set);

#endif
