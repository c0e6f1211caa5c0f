/*
 * The Lua 5.4 configuration file: option names are globals. The chunk runs
 * with an environment that records every global assignment and its line;
 * the recorded values then go through the typed setters. Master only.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "config.h"
#include "hooks.h"
#include "lua_config.h"
#include "util.h"

/* Upvalue slots of the recording metamethods. */
enum { UV_STORE = 1, UV_ORDER, UV_LINES, UV_GLOBALS };

/* qilin.cpu_count(): online CPUs, as Python's os.cpu_count() that gunicorn's docs use. */
static int
lua_cpu_count(lua_State *L)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    lua_pushinteger(L, n > 0 ? n : 1);
    return 1;
}

/*
 * __newindex of the chunk's environment: remember the value, the line of the
 * assignment (the calling Lua frame, level 1) and, the first time, the name's
 * position in the assignment order. Values live in a separate store table so
 * that every assignment, not only the first, comes through here.
 */
static int
record_assignment(lua_State *L)
{
    lua_Debug ar;
    int line = 0;

    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "global names must be strings, got %s", luaL_typename(L, 2));
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        line = ar.currentline;
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(UV_LINES)) == LUA_TNIL) {
        lua_pushvalue(L, 2);
        lua_rawseti(L, lua_upvalueindex(UV_ORDER),
                    (lua_Integer)lua_rawlen(L, lua_upvalueindex(UV_ORDER)) + 1);
    }
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lua_pushinteger(L, line);
    lua_rawset(L, lua_upvalueindex(UV_LINES));
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, lua_upvalueindex(UV_STORE));
    return 0;
}

/* __index: the file's own settings first (so `workers = workers + 1` works), then the globals. */
static int
lookup_global(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(UV_STORE)) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(UV_GLOBALS));
    return 1;
}

/*
 * Pushes the recording environment and leaves the store, order and lines
 * tables at absolute indexes 1, 2, 3 of the (fresh) stack.
 */
static void
push_environment(lua_State *L)
{
    lua_newtable(L); /* 1: store */
    lua_newtable(L); /* 2: order */
    lua_newtable(L); /* 3: lines */
    lua_newtable(L); /* the environment, always empty */
    lua_newtable(L); /* its metatable */
    for (int k = 1; k <= 3; k++)
        lua_pushvalue(L, k);
    lua_pushglobaltable(L);
    lua_pushcclosure(L, record_assignment, 4);
    lua_setfield(L, -2, "__newindex");
    for (int k = 1; k <= 3; k++)
        lua_pushvalue(L, k);
    lua_pushglobaltable(L);
    lua_pushcclosure(L, lookup_global, 4);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

static void
open_helpers(lua_State *L)
{
    luaL_openlibs(L);
    lua_newtable(L);
    lua_pushcfunction(L, lua_cpu_count);
    lua_setfield(L, -2, "cpu_count");
    lua_setglobal(L, "qilin");
}

/*
 * Lua's error messages start with the chunk's short name, which it truncates
 * past LUA_IDSIZE ("...long/path/qilin.conf.lua:3:"); put the full PATH back
 * so every error reads "PATH:LINE: message".
 */
static int
lua_failure(lua_State *L, const char *path, char *err, size_t errlen)
{
    const char *msg = lua_tostring(L, -1);
    const char *p;

    if (msg == NULL)
        return util_err(err, errlen, -EINVAL,
                        "%s: the config file raised a %s value (use error('...'))", path,
                        luaL_typename(L, -1));
    if (strncmp(msg, path, strlen(path)) == 0 && msg[strlen(path)] == ':')
        return util_err(err, errlen, -EINVAL, "%s", msg);
    if (strncmp(msg, "...", 3) == 0 || strncmp(msg, "[string ", 8) == 0) {
        for (p = strchr(msg, ':'); p != NULL; p = strchr(p + 1, ':')) {
            size_t digits = strspn(p + 1, "0123456789");

            if (digits > 0 && p[1 + digits] == ':')
                return util_err(err, errlen, -EINVAL, "%s%s", path, p);
        }
    }
    return util_err(err, errlen, -EINVAL, "%s: %s", path, msg);
}

/* Reads PATH whole: config files are small, and loading from memory can refuse binary chunks. */
static int
read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    size_t cap = 4096, n = 0, got;
    char *b;
    int rc;

    if (f == NULL) {
        rc = -errno;
        if (rc == -ENOENT)
            return util_err(err, errlen, rc, "config file '%s' not found", path);
        return util_err(err, errlen, rc, "config file '%s': %s", path, strerror(-rc));
    }
    b = xmalloc(cap);
    while ((got = fread(b + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            b = xrealloc(b, cap *= 2);
    }
    if (ferror(f)) {
        rc = -(errno ? errno : EIO);
        fclose(f);
        free(b);
        return util_err(err, errlen, rc, "config file '%s': %s", path, strerror(-rc));
    }
    fclose(f);
    *buf = b;
    *len = n;
    return 0;
}

/* The "got ..." of a type error: the value itself for a number, else its Lua type. */
static void
describe_value(lua_State *L, int idx, char *buf, size_t len)
{
    if (lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx))
        snprintf(buf, len, "%.14g", (double)lua_tonumber(L, idx));
    else
        snprintf(buf, len, "%s", luaL_typename(L, idx));
}

static int
type_error(lua_State *L, int idx, const struct qln_option *o, const char *origin, char *err,
           size_t errlen)
{
    static const char *const want[] = {
        [QLN_OPT_BOOL] = "a boolean",
        [QLN_OPT_INT] = "an integer",
        [QLN_OPT_STRING] = "a string",
        [QLN_OPT_LIST] = "a string or a list of strings",
    };
    char got[64];

    describe_value(L, idx, got, sizeof(got));
    return util_err(err, errlen, -EINVAL, "%s: setting '%s' must be %s, got %s", origin, o->name,
                    want[o->type], got);
}

/* A table of strings (the value at the top of the stack) to config_set_list. */
static int
apply_table(lua_State *L, struct config *cfg, const char *name, const char *origin, char *err,
            size_t errlen)
{
    size_t n = lua_rawlen(L, -1), keys = 0;
    const char **items = xcalloc(n ? n : 1, sizeof(*items));
    int rc = 0;

    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        keys++;
        lua_pop(L, 1);
    }
    if (keys != n)
        rc = util_err(err, errlen, -EINVAL,
                      "%s: setting '%s' must be a list of strings like {\"a\", \"b\"}, got a table"
                      " with other keys",
                      origin, name);
    for (size_t k = 0; k < n && rc == 0; k++) {
        size_t len;

        /* The table stays referenced below us on the stack, so its strings stay alive. */
        if (lua_rawgeti(L, -1, (lua_Integer)k + 1) != LUA_TSTRING)
            rc = util_err(err, errlen, -EINVAL,
                          "%s: setting '%s' must be a list of strings, got %s at index %zu", origin,
                          name, luaL_typename(L, -1), k + 1);
        else if (items[k] = lua_tolstring(L, -1, &len), strlen(items[k]) != len)
            rc = util_err(err, errlen, -EINVAL, "%s: setting '%s': item %zu contains a NUL byte",
                          origin, name, k + 1);
        lua_pop(L, 1);
    }
    if (rc == 0)
        rc = config_set_list(cfg, name, items, n, CONFIG_SRC_FILE, origin, err, errlen);
    free(items);
    return rc;
}

static int
apply_string(lua_State *L, struct config *cfg, const struct qln_option *o, const char *name,
             const char *origin, char *err, size_t errlen)
{
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);

    if (strlen(s) != len)
        return util_err(err, errlen, -EINVAL, "%s: setting '%s' contains a NUL byte", origin, name);
    /* One string for a LIST is a one-item list, replacing the defaults like a table would. */
    if (o != NULL && o->type == QLN_OPT_LIST)
        return config_set_list(cfg, name, &s, 1, CONFIG_SRC_FILE, origin, err, errlen);
    if (o != NULL && o->type != QLN_OPT_STRING)
        return type_error(L, -1, o, origin, err, errlen);
    return config_set(cfg, name, s, CONFIG_SRC_FILE, origin, err, errlen);
}

static int
apply_number(lua_State *L, struct config *cfg, const struct qln_option *o, const char *name,
             const char *origin, char *err, size_t errlen)
{
    int exact = 0;
    lua_Integer v = lua_tointegerx(L, -1, &exact);
    char text[64];

    if (o != NULL && (o->type != QLN_OPT_INT || !exact))
        return type_error(L, -1, o, origin, err, errlen);
    if (exact)
        return config_set_int(cfg, name, v, CONFIG_SRC_FILE, origin, err, errlen);
    /* Not registered yet: keep the text; a plugin's INT option will reject it on resolve. */
    snprintf(text, sizeof(text), "%.17g", (double)lua_tonumber(L, -1));
    return config_set(cfg, name, text, CONFIG_SRC_FILE, origin, err, errlen);
}

static int
unknown_function(const struct config *cfg, const char *name, const char *origin, char *err,
                 size_t errlen)
{
    const char *why = config_refused(name);
    char hint[128];

    if (why != NULL) /* ssl_context */
        return util_err(err, errlen, -EINVAL, "%s: setting '%s': %s", origin, name, why);
    if (config_suggest(cfg, name, false, hint, sizeof(hint)) > 0)
        return util_err(err, errlen, -EINVAL, "%s: unknown setting '%s'; did you mean '%s'?",
                        origin, name, hint);
    return util_err(
        err, errlen, -EINVAL,
        "%s: unknown setting '%s' (a function, but not a server hook such as on_starting,"
        " pre_fork or post_request)",
        origin, name);
}

/* Sets NAME from the value at the top of the stack, assigned at ORIGIN ("PATH:LINE"). */
static int
apply_value(lua_State *L, struct config *cfg, const char *name, const char *origin, char *err,
            size_t errlen)
{
    const struct qln_option *o = config_find(cfg, name);

    switch (lua_type(L, -1)) {
    case LUA_TNIL:
        return 0; /* assigned nil: as if never set */
    case LUA_TBOOLEAN:
        /* proxy_protocol = true: a STRING with a word for each boolean (config.h). */
        if (o != NULL && o->type != QLN_OPT_BOOL && !config_accepts_bool(o))
            return type_error(L, -1, o, origin, err, errlen);
        return config_set_bool(cfg, name, lua_toboolean(L, -1), CONFIG_SRC_FILE, origin, err,
                               errlen);
    case LUA_TNUMBER:
        return apply_number(L, cfg, o, name, origin, err, errlen);
    case LUA_TSTRING:
        return apply_string(L, cfg, o, name, origin, err, errlen);
    case LUA_TTABLE:
        if (o != NULL && o->type != QLN_OPT_LIST)
            return type_error(L, -1, o, origin, err, errlen);
        return apply_table(L, cfg, name, origin, err, errlen);
    case LUA_TFUNCTION:
        /* A server hook (hooks.c keeps it after the file ran); never a setting. */
        if (o == NULL && hooks_lookup(name) >= 0)
            return 0;
        if (o == NULL)
            return unknown_function(cfg, name, origin, err, errlen);
        return type_error(L, -1, o, origin, err, errlen);
    default:
        if (o == NULL)
            return unknown_function(cfg, name, origin, err, errlen);
        return type_error(L, -1, o, origin, err, errlen);
    }
}

/* Applies the recorded assignments (store, order, lines at stack indexes 1, 2, 3) in order. */
static int
apply_all(lua_State *L, struct config *cfg, const char *path, char *err, size_t errlen)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    int rc = 0;

    for (lua_Integer k = 1; k <= n && rc == 0; k++) {
        const char *name;
        char origin[512];

        lua_rawgeti(L, 2, k);
        name = lua_tostring(L, -1);
        lua_pushvalue(L, -1);
        lua_rawget(L, 3);
        snprintf(origin, sizeof(origin), "%s:%lld", path, (long long)lua_tointeger(L, -1));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_rawget(L, 1);
        rc = apply_value(L, cfg, name, origin, err, errlen);
        lua_pop(L, 2);
    }
    return rc;
}

/*
 * The caller turns config_set_lenient() on around this call when plugins
 * are not loaded yet, so their settings wait for config_resolve_pending();
 * with it off, an unknown name fails here with its line.
 */
int
lua_config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    char chunkname[4096];
    char *buf = NULL;
    size_t len = 0;
    lua_State *L;
    int rc;

    rc = read_file(path, &buf, &len, err, errlen);
    if (rc < 0)
        return rc;
    L = luaL_newstate();
    if (L == NULL) {
        free(buf);
        return util_err(err, errlen, -ENOMEM, "%s: cannot create a Lua state", path);
    }
    open_helpers(L);
    push_environment(L); /* stack: store, order, lines, env */
    snprintf(chunkname, sizeof(chunkname), "@%s", path);
    /* "t": text only; a precompiled chunk could crash the loader on purpose. */
    if (luaL_loadbufferx(L, buf, len, chunkname, "t") != LUA_OK) {
        rc = lua_failure(L, path, err, errlen);
        goto out;
    }
    /* A main chunk's only upvalue is _ENV: point it at the recording environment. */
    lua_pushvalue(L, 4);
    lua_setupvalue(L, -2, 1);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        rc = lua_failure(L, path, err, errlen);
        goto out;
    }
    rc = apply_all(L, cfg, path, err, errlen);
    /* -ENOENT is kept for "no such file", which callers may treat as optional. */
    if (rc == -ENOENT)
        rc = -EINVAL;
    if (rc == 0) {
        /* The state lives on for the hooks defined in the file. */
        hooks_stage(L, 1);
        L = NULL;
    }

out:
    if (L != NULL)
        lua_close(L);
    free(buf);
    return rc;
}
