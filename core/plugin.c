/*
 * The plugin loader: finds NAME.so on the search path, dlopens it, checks
 * its descriptor against this core's ABI, loads what it requires first and
 * registers its options. Master only; workers inherit the set across fork.
 */
#include "qlnconfig.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <qilin/plugin.h>

#include "config.h"
#include "log.h"
#include "plugin.h"
#include "util.h"

#ifndef PKGLIBDIR
#error "PKGLIBDIR (the installed plugin directory) must come from core/local.mk"
#endif

/* Requirement chains deeper than this are certainly a mistake (or a cycle we missed). */
#define PLUGIN_MAX_DEPTH 16

/* The names of the plugins being loaded, outermost first: detects requirement cycles. */
struct load_stack {
    const char *names[PLUGIN_MAX_DEPTH];
    size_t n;
};

static int
abi_error(const struct qln_plugin *p, const char *name, char *err, size_t errlen)
{
    util_format(err, errlen,
                "plugin '%s' was built for qilin plugin ABI %u.%u but this qilin speaks %u.%u; "
                "rebuild the plugin against this qilin's headers",
                name, p->abi_major, p->abi_minor, QLN_ABI_MAJOR, QLN_ABI_MINOR);
    return QLN_EABI;
}

/*
 * The tables as ABI 1.0 defined them, ending at their last 1.0 hook. A plugin
 * built for any 1.x has at least these. Hooks a later minor appends are read
 * only through APP_HOOK()/WORKER_HOOK() (core/worker.h), which check the
 * plugin's size first, so comparing with today's sizeof() would wrongly
 * refuse every plugin built for an older minor.
 */
#define OPS_SIZE_UPTO(type, last) (offsetof(type, last) + sizeof(((type *)0)->last))
#define APP_OPS_SIZE_1_0 OPS_SIZE_UPTO(struct qln_app_ops, module_files)
#define WORKER_OPS_SIZE_1_0 OPS_SIZE_UPTO(struct qln_worker_ops, prepare)
#define PLUGIN_SIZE_1_0 OPS_SIZE_UPTO(struct qln_plugin, reserved)

/* Checks the app or worker ops table that KIND promises. */
static int
check_ops(const struct qln_plugin *p, const char *name, char *err, size_t errlen)
{
    const char *missing = NULL;

    if (p->app != NULL) {
        if (p->app->size < APP_OPS_SIZE_1_0) {
            util_format(err, errlen,
                        "plugin '%s' has an app hook table of %u bytes, fewer than the %zu "
                        "ABI 1.0 defines; rebuild the plugin against this qilin's headers",
                        name, p->app->size, (size_t)APP_OPS_SIZE_1_0);
            return QLN_EABI;
        }
        if (p->app->init == NULL)
            missing = "app init";
        else if (p->app->load_app == NULL)
            missing = "app load_app";
        else if (p->app->handle == NULL)
            missing = "app handle";
    }
    if (p->worker != NULL && missing == NULL) {
        if (p->worker->size < WORKER_OPS_SIZE_1_0) {
            util_format(err, errlen,
                        "plugin '%s' has a worker hook table of %u bytes, fewer than the %zu "
                        "ABI 1.0 defines; rebuild the plugin against this qilin's headers",
                        name, p->worker->size, (size_t)WORKER_OPS_SIZE_1_0);
            return QLN_EABI;
        }
        if (p->worker->run == NULL)
            missing = "worker run";
    }
    if (missing != NULL) {
        util_format(err, errlen, "plugin '%s' lacks the required %s hook; fix the plugin", name,
                    missing);
        return -EINVAL;
    }
    return 0;
}

/* Checks name, kind and the ops tables, once magic, ABI and size are known good. */
static int
check_contents(const struct qln_plugin *p, const char *name, const char *expect_name, char *err,
               size_t errlen)
{
    const uint32_t known = QLN_KIND_APP | QLN_KIND_WORKER;

    if (p->name == NULL || p->name[0] == '\0') {
        util_format(err, errlen, "plugin '%s' has no name in its descriptor; fix the plugin", name);
        return -EINVAL;
    }
    if (expect_name != NULL && strcmp(p->name, expect_name) != 0) {
        util_format(err, errlen,
                    "plugin file '%s' holds plugin '%s'; a plugin's name must equal its file "
                    "name: rename the file to %s.so or fix the descriptor",
                    expect_name, p->name, p->name);
        return -EINVAL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(p->reserved); i++) {
        if (p->reserved[i] != NULL) {
            util_format(err, errlen,
                        "plugin '%s' sets reserved descriptor fields (built for another qilin?); "
                        "rebuild the plugin against this qilin's headers",
                        name);
            return QLN_EABI;
        }
    }
    if (p->kind == 0 || (p->kind & ~known) != 0 ||
        ((p->kind & QLN_KIND_APP) != 0) != (p->app != NULL) ||
        ((p->kind & QLN_KIND_WORKER) != 0) != (p->worker != NULL)) {
        util_format(err, errlen,
                    "plugin '%s' has kind 0x%x but %s app hooks and %s worker hooks; a plugin "
                    "must have exactly the hook tables its kind names: fix the plugin",
                    name, p->kind, p->app != NULL ? "has" : "no", p->worker != NULL ? "has" : "no");
        return -EINVAL;
    }
    return check_ops(p, name, err, errlen);
}

int
plugin_check(const struct qln_plugin *p, const char *expect_name, char *err, size_t errlen)
{
    const char *name = expect_name;

    if (p->magic != QLN_PLUGIN_MAGIC) {
        util_format(err, errlen,
                    "plugin '%s' has a bad magic number (0x%08x, expected 0x%08x): it is not a "
                    "qilin plugin or it is damaged; rebuild it against this qilin's headers",
                    name != NULL ? name : "?", p->magic, QLN_PLUGIN_MAGIC);
        return QLN_EABI;
    }
    /* Past the magic the descriptor is ours, so its name can be shown. */
    if (name == NULL)
        name = p->name != NULL ? p->name : "?";
    if (p->abi_major != QLN_ABI_MAJOR || p->abi_minor > QLN_ABI_MINOR)
        return abi_error(p, name, err, errlen);
    /*
     * The fields of ABI 1.0 must all be there. Later minors only append, and
     * this core reads an appended field only when the plugin's size covers it.
     */
    if (p->size < PLUGIN_SIZE_1_0) {
        util_format(err, errlen,
                    "plugin '%s' has a descriptor of %u bytes, fewer than the %zu of ABI 1.0; "
                    "rebuild the plugin against this qilin's headers",
                    name, p->size, (size_t)PLUGIN_SIZE_1_0);
        return QLN_EABI;
    }
    return check_contents(p, name, expect_name, err, errlen);
}

const struct loaded_plugin *
plugin_find(const struct plugin_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->items[i].desc->name, name) == 0)
            return &set->items[i];
    return NULL;
}

const struct loaded_plugin *
plugin_first_of_kind(const struct plugin_set *set, unsigned kind)
{
    for (size_t i = 0; i < set->n; i++)
        if ((set->items[i].desc->kind & kind) != 0)
            return &set->items[i];
    return NULL;
}

void
plugin_set_free(struct plugin_set *set)
{
    /*
     * The shared objects stay mapped: a plugin that embedded an interpreter
     * leaves libpython state, atexit handlers and threads behind, and
     * unmapping code that may still run at exit is unsafe. It also keeps the
     * frames of leak reports (LeakSanitizer symbolizes at exit) resolvable,
     * so the suite's tests/lsan.supp can match the runtimes' own leaks.
     */
    for (size_t i = set->n; i-- > 0;)
        free(set->items[i].path);
    free(set->items);
    set->items = NULL;
    set->n = set->cap = 0;
}

/* Appends DIR to the "searched" list shown when nothing is found. */
static void
note_searched(char *list, size_t len, const char *dir, size_t dirlen)
{
    size_t used = strlen(list);

    if (used + 2 + dirlen + 1 > len)
        return;
    if (used > 0) {
        memcpy(list + used, ", ", 2);
        used += 2;
    }
    memcpy(list + used, dir, dirlen);
    list[used + dirlen] = '\0';
}

/*
 * Calls VISIT(DIR, DIRLEN, ARG) for each plugin directory in search order:
 * $QILIN_PLUGIN_PATH, each plugin_dir setting, PKGLIBDIR; stops when it
 * returns true.
 */
static void
search_dirs(const struct config *cfg, bool (*visit)(const char *, size_t, void *), void *arg)
{
    const char *env = getenv("QILIN_PLUGIN_PATH");

    for (const char *d = env; d != NULL;) {
        const char *colon = strchr(d, ':');
        size_t dlen = colon != NULL ? (size_t)(colon - d) : strlen(d);

        if (dlen > 0 && visit(d, dlen, arg))
            return;
        d = colon != NULL ? colon + 1 : NULL;
    }
    if (cfg != NULL && config_find(cfg, "plugin_dir") != NULL) {
        size_t n = config_list_len(cfg, "plugin_dir");

        for (size_t i = 0; i < n; i++) {
            const char *d = config_list_get(cfg, "plugin_dir", i);

            if (d[0] != '\0' && visit(d, strlen(d), arg))
                return;
        }
    }
    visit(PKGLIBDIR, strlen(PKGLIBDIR), arg);
}

struct find {
    const char *name;
    char searched[1024]; /* the directories tried, for the error */
    char *path;
};

/* Tries DIR/NAME.so; a regular file there ends the search. */
static bool
try_dir(const char *dir, size_t dirlen, void *arg)
{
    struct find *f = arg;
    struct stat st;

    note_searched(f->searched, sizeof(f->searched), dir, dirlen);
    f->path = xasprintf("%.*s/%s.so", (int)dirlen, dir, f->name);
    if (stat(f->path, &st) == 0 && S_ISREG(st.st_mode))
        return true;
    free(f->path);
    f->path = NULL;
    return false;
}

/*
 * Finds NAME.so along the plugin directories. Returns the path (free it),
 * or NULL with ERR listing the directories searched.
 */
static char *
find_plugin(const struct config *cfg, const char *name, char *err, size_t errlen)
{
    struct find f = {.name = name};

    search_dirs(cfg, try_dir, &f);
    if (f.path == NULL)
        util_format(err, errlen,
                    "plugin '%s' not found (searched: %s); check --plugin-dir or "
                    "QILIN_PLUGIN_PATH",
                    name, f.searched);
    return f.path;
}

/* ------------------------------------------------------------ aliases */

static bool
has_alias(const struct qln_plugin *d, const char *name)
{
    for (size_t i = 0; d->aliases != NULL && d->aliases[i] != NULL; i++)
        if (strcmp(d->aliases[i], name) == 0)
            return true;
    return false;
}

struct alias_scan {
    const char *alias;
    char *buf; /* the claiming plugin's name, once found */
    size_t len;
    bool found;
};

/*
 * Opens each DIR/x.so just to read its descriptor (lazily bound, local, and
 * closed again: nothing in it runs) and looks for the alias there.
 */
static bool
scan_dir(const char *dir, size_t dirlen, void *arg)
{
    struct alias_scan *a = arg;
    char *path = xasprintf("%.*s", (int)dirlen, dir);
    DIR *dp = opendir(path);
    struct dirent *e;

    free(path);
    while (dp != NULL && !a->found && (e = readdir(dp)) != NULL) {
        size_t n = strlen(e->d_name);
        const struct qln_plugin *d;
        void *h;

        if (n <= 3 || strcmp(e->d_name + n - 3, ".so") != 0)
            continue;
        path = xasprintf("%.*s/%s", (int)dirlen, dir, e->d_name);
        h = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
        free(path);
        if (h == NULL)
            continue;
        d = dlsym(h, "qilin_plugin");
        if (d != NULL && d->magic == QLN_PLUGIN_MAGIC && d->abi_major == QLN_ABI_MAJOR &&
            d->size >= PLUGIN_SIZE_1_0 && d->name != NULL && has_alias(d, a->alias)) {
            util_format(a->buf, a->len, "%s", d->name);
            a->found = true;
        }
        dlclose(h);
    }
    if (dp != NULL)
        closedir(dp);
    return a->found;
}

const char *
plugin_resolve(const struct plugin_set *set, const struct config *cfg, const char *name, char *buf,
               size_t len)
{
    struct alias_scan scan = {.alias = name, .buf = buf, .len = len};
    struct find f = {.name = name};

    if (strchr(name, '/') != NULL)
        return name; /* a path to the shared object */
    for (size_t i = 0; set != NULL && i < set->n; i++)
        if (strcmp(set->items[i].desc->name, name) == 0)
            return name;
    for (size_t i = 0; set != NULL && i < set->n; i++)
        if (has_alias(set->items[i].desc, name))
            return set->items[i].desc->name;
    search_dirs(cfg, try_dir, &f);
    if (f.path != NULL) {
        free(f.path);
        return name;
    }
    search_dirs(cfg, scan_dir, &scan);
    return scan.found ? buf : name;
}

/* The descriptor name expected from a path: its file name without ".so". */
static char *
path_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    size_t len;

    base = base != NULL ? base + 1 : path;
    len = strlen(base);
    if (len > 3 && strcmp(base + len - 3, ".so") == 0)
        len -= 3;
    return xstrndup(base, len);
}

static int load_one(struct plugin_set *set, struct config *cfg, const char *name,
                    struct load_stack *stack, char *err, size_t errlen);

/* Loads every plugin DESC requires, before DESC itself joins the set. */
static int
load_requires(struct plugin_set *set, struct config *cfg, const struct qln_plugin *desc,
              struct load_stack *stack, char *err, size_t errlen)
{
    char inner[768];
    int rc;

    for (size_t i = 0; desc->requires != NULL && desc->requires[i] != NULL; i++) {
        const char *req = desc->requires[i];

        rc = load_one(set, cfg, req, stack, inner, sizeof(inner));
        if (rc < 0) {
            util_format(err, errlen,
                        "plugin '%s' requires plugin '%s', which could not be loaded: %s",
                        desc->name, req, inner);
            return rc;
        }
    }
    return 0;
}

/* dlopens PATH and returns its checked descriptor; *HANDLE is set on success. */
static int
open_plugin(const char *path, const char *stem, void **handle, const struct qln_plugin **desc,
            char *err, size_t errlen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    const struct qln_plugin *d;
    int rc;

    if (h == NULL) {
        const char *why = dlerror();

        util_format(err, errlen, "cannot load plugin %s: %s", path, why != NULL ? why : "?");
        return -ENOEXEC;
    }
    dlerror();
    d = dlsym(h, "qilin_plugin");
    if (d == NULL) {
        util_format(err, errlen, "%s is not a qilin plugin (no qilin_plugin symbol)", path);
        dlclose(h);
        return -ENOEXEC;
    }
    rc = plugin_check(d, stem, err, errlen);
    if (rc < 0) {
        dlclose(h);
        return rc;
    }
    *handle = h;
    *desc = d;
    return 0;
}

/*
 * Registers DESC's options. On failure the handle is deliberately never
 * closed: config_register may have kept rows of the table before it hit the
 * bad one, and those point into the plugin's memory. The master exits on
 * this error anyway.
 */
static int
register_options(struct config *cfg, const struct qln_plugin *desc, char *err, size_t errlen)
{
    char inner[512];
    int rc;

    if (desc->options == NULL || cfg == NULL)
        return 0;
    rc = config_register(cfg, desc->options, desc->name, inner, sizeof(inner));
    if (rc < 0)
        util_format(err, errlen, "plugin '%s' cannot add its options: %s", desc->name, inner);
    return rc;
}

static void
set_append(struct plugin_set *set, const struct qln_plugin *desc, void *handle, char *path)
{
    if (set->n == set->cap) {
        set->cap = set->cap ? set->cap * 2 : 4;
        set->items = xrealloc(set->items, set->cap * sizeof(*set->items));
    }
    set->items[set->n++] = (struct loaded_plugin){.desc = desc, .handle = handle, .path = path};
}

/* Refuses NAME when it is already being loaded further up the chain. */
static int
push_stack(struct load_stack *stack, const char *name, char *err, size_t errlen)
{
    char chain[512] = "";

    for (size_t i = 0; i < stack->n; i++) {
        if (strcmp(stack->names[i], name) != 0)
            continue;
        for (size_t j = i; j < stack->n; j++)
            note_searched(chain, sizeof(chain), stack->names[j], strlen(stack->names[j]));
        util_format(err, errlen,
                    "plugin requirement cycle: %s, then '%s' again; remove one of the requires",
                    chain, name);
        return -ELOOP;
    }
    if (stack->n == PLUGIN_MAX_DEPTH) {
        util_format(err, errlen, "plugin '%s': requirements nest deeper than %d plugins", name,
                    PLUGIN_MAX_DEPTH);
        return -ELOOP;
    }
    stack->names[stack->n++] = name;
    return 0;
}

static int
load_one(struct plugin_set *set, struct config *cfg, const char *name, struct load_stack *stack,
         char *err, size_t errlen)
{
    bool is_path = strchr(name, '/') != NULL;
    char *stem = is_path ? path_stem(name) : xstrdup(name);
    char *path = NULL;
    void *handle = NULL;
    const struct qln_plugin *desc = NULL;
    int rc = 0;

    if (stem[0] == '\0') {
        util_format(err, errlen, "empty plugin name '%s'; pass a name such as python3", name);
        rc = -EINVAL;
        goto out;
    }
    if (plugin_find(set, stem) != NULL)
        goto out;
    if ((rc = push_stack(stack, stem, err, errlen)) < 0)
        goto out;
    path = is_path ? xstrdup(name) : find_plugin(cfg, stem, err, errlen);
    if (path == NULL) {
        rc = -ENOENT;
        goto pop;
    }
    if ((rc = open_plugin(path, stem, &handle, &desc, err, errlen)) < 0)
        goto pop;
    if ((rc = load_requires(set, cfg, desc, stack, err, errlen)) < 0) {
        dlclose(handle);
        goto pop;
    }
    if ((rc = register_options(cfg, desc, err, errlen)) < 0)
        goto pop;
    set_append(set, desc, handle, path);
    path = NULL;
    qln_log(QLN_LOG_DEBUG, "Loaded plugin %s %s from %s", desc->name,
            desc->version != NULL ? desc->version : "", set->items[set->n - 1].path);
pop:
    stack->n--;
out:
    free(path);
    free(stem);
    return rc;
}

int
plugin_load(struct plugin_set *set, struct config *cfg, const char *name, char *err, size_t errlen)
{
    struct load_stack stack = {.n = 0};

    if (name == NULL || name[0] == '\0') {
        util_format(err, errlen, "empty plugin name; pass a name such as python3");
        return -EINVAL;
    }
    return load_one(set, cfg, name, &stack, err, errlen);
}
