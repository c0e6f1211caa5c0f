/*
 * Server hooks: those of the Lua config file (the state that ran the file is
 * kept) and C callbacks plugins register for their own config files. Both
 * are staged, then committed when the whole configuration is valid, and
 * called by name with records describing the server, the worker or the
 * request. Master and workers (which inherit them across fork).
 */
#include "qlnconfig.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include <qilin/log.h>
#include <qilin/request.h>

#include "hooks.h"
#include "util.h"

static const char *const hook_names[HOOK_COUNT] = {
    [HOOK_ON_STARTING] = "on_starting",   [HOOK_ON_RELOAD] = "on_reload",
    [HOOK_WHEN_READY] = "when_ready",     [HOOK_PRE_FORK] = "pre_fork",
    [HOOK_POST_FORK] = "post_fork",       [HOOK_POST_WORKER_INIT] = "post_worker_init",
    [HOOK_WORKER_INT] = "worker_int",     [HOOK_WORKER_ABORT] = "worker_abort",
    [HOOK_PRE_EXEC] = "pre_exec",         [HOOK_PRE_REQUEST] = "pre_request",
    [HOOK_POST_REQUEST] = "post_request", [HOOK_CHILD_EXIT] = "child_exit",
    [HOOK_WORKER_EXIT] = "worker_exit",   [HOOK_NWORKERS_CHANGED] = "nworkers_changed",
    [HOOK_ON_EXIT] = "on_exit",
};

/* A hook a plugin registered (qln_hook_register). */
struct c_hook {
    qln_hook_fn *fn; /* NULL: not defined */
    void *data;
    void (*release)(void *data);
};

/* One loaded config file's hooks: its Lua state and a registry ref per hook,
   or the C callbacks its plugin registered. */
struct hook_set {
    lua_State *L;
    int ref[HOOK_COUNT]; /* LUA_NOREF: not defined (also when L is NULL) */
    struct c_hook c[HOOK_COUNT];
};

/* The current and the staged sets. Written by the master's main thread only
   (at startup and on HUP); workers inherit them and only call. */
static struct hook_set current = {.L = NULL};
static struct hook_set staged = {.L = NULL};
/* What C hooks get as qln_hook_call.ctx; set by the master, inherited. */
static struct qln_ctx *hook_ctx;
/* Lua states are not thread-safe: gthread workers call request hooks from
   several threads. Used in workers. */
static pthread_mutex_t call_lock = PTHREAD_MUTEX_INITIALIZER;

int
hooks_lookup(const char *name)
{
    int i;

    for (i = 0; i < HOOK_COUNT; i++) {
        if (strcmp(hook_names[i], name) == 0)
            return i;
    }
    return -1;
}

/* Drops a set's Lua state and releases its C hooks, leaving it empty. */
static void
set_close(struct hook_set *s)
{
    if (s->L != NULL)
        lua_close(s->L);
    s->L = NULL;
    for (int i = 0; i < HOOK_COUNT; i++) {
        if (s->c[i].fn != NULL && s->c[i].release != NULL)
            s->c[i].release(s->c[i].data);
        s->c[i] = (struct c_hook){.fn = NULL};
    }
}

void
hooks_set_ctx(struct qln_ctx *ctx)
{
    hook_ctx = ctx;
}

int
qln_hook_register(struct qln_ctx *ctx, const char *name, qln_hook_fn *fn, void *data,
                  void (*release)(void *data))
{
    int id = hooks_lookup(name);

    if (id < 0)
        return -ENOENT;
    if (staged.c[id].fn != NULL && staged.c[id].release != NULL)
        staged.c[id].release(staged.c[id].data);
    staged.c[id] = (struct c_hook){.fn = fn, .data = data, .release = release};
    return 0;
}

void
hooks_stage(struct lua_State *L, int store)
{
    int i, found = 0;

    set_close(&staged);
    staged.L = L;
    for (i = 0; i < HOOK_COUNT; i++) {
        staged.ref[i] = LUA_NOREF;
        lua_getfield(L, store, hook_names[i]);
        if (lua_type(L, -1) == LUA_TFUNCTION) {
            staged.ref[i] = luaL_ref(L, LUA_REGISTRYINDEX);
            found = 1;
        } else {
            lua_pop(L, 1);
        }
    }
    lua_settop(L, 0);
    if (!found)
        set_close(&staged); /* nothing to keep: free the state now */
}

void
hooks_commit(void)
{
    set_close(&current);
    current = staged;
    memset(&staged, 0, sizeof(staged));
}

void
hooks_discard(void)
{
    set_close(&staged);
}

void
hooks_free(void)
{
    set_close(&staged);
    set_close(&current);
}

int
hooks_have(enum hook_id id)
{
    return (current.L != NULL && current.ref[id] != LUA_NOREF) || current.c[id].fn != NULL;
}

static void
push_table(lua_State *L, const struct qln_hook_arg *t)
{
    size_t i;

    if (t->n == 1 && t->f[0].key == NULL) {
        lua_pushinteger(L, (lua_Integer)t->f[0].i);
        return;
    }
    lua_createtable(L, 0, (int)t->n);
    for (i = 0; i < t->n; i++) {
        if (t->f[i].s != NULL)
            lua_pushstring(L, t->f[i].s);
        else
            lua_pushinteger(L, (lua_Integer)t->f[i].i);
        lua_setfield(L, -2, t->f[i].key);
    }
}

/* Message handler: the error with a traceback, so the log shows file:line. */
static int
traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);

    luaL_traceback(L, L, msg != NULL ? msg : "(error object is not a string)", 1);
    return 1;
}

/*
 * Calls hook ID, C or Lua. Only a Lua call takes call_lock: a C hook does its
 * own locking (Python's is the GIL), and under a green worker a Python hook
 * may switch to another greenlet on the same thread, which would then block
 * on the mutex its own thread already holds.
 */
static void
call_hook(enum hook_id id, const struct qln_hook_arg *args, size_t nargs,
          const struct qln_request *req)
{
    lua_State *L = current.L;
    size_t i;
    int base;

    if (current.c[id].fn != NULL) {
        const struct qln_hook_call call = {
            .name = hook_names[id],
            .ctx = hook_ctx,
            .args = args,
            .nargs = nargs,
            .req = req,
        };

        current.c[id].fn(current.c[id].data, &call);
        return;
    }
    pthread_mutex_lock(&call_lock);
    base = lua_gettop(L);
    lua_pushcfunction(L, traceback);
    lua_rawgeti(L, LUA_REGISTRYINDEX, current.ref[id]);
    for (i = 0; i < nargs; i++)
        push_table(L, &args[i]);
    if (lua_pcall(L, (int)nargs, 0, base + 1) != LUA_OK)
        qln_log(QLN_LOG_ERROR, "Hook %s failed: %s", hook_names[id], lua_tostring(L, -1));
    lua_settop(L, base);
    pthread_mutex_unlock(&call_lock);
}

void
hooks_call(enum hook_id id, const struct qln_hook_arg *args, size_t nargs)
{
    if (hooks_have(id))
        call_hook(id, args, nargs, NULL);
}

void
hooks_request(pid_t pid, int age, const struct qln_request *req, enum hook_id id, int status)
{
    struct qln_slice m, p, q;
    char *method, *path, *query;

    if (!hooks_have(id))
        return;
    m = qln_req_method(req);
    p = qln_req_path(req);
    q = qln_req_query(req);
    method = xstrndup(m.p != NULL ? m.p : "", m.len);
    path = xstrndup(p.p != NULL ? p.p : "", p.len);
    query = xstrndup(q.p != NULL ? q.p : "", q.len);
    {
        const struct qln_hook_field wf[] = {
            {.key = "pid", .i = pid},
            {.key = "age", .i = age},
        };
        const struct qln_hook_field rf[] = {
            {.key = "method", .s = method},
            {.key = "path", .s = path},
            {.key = "query", .s = query},
            {.key = "status", .i = status},
        };
        const struct qln_hook_arg args[] = {
            {.f = wf, .n = ARRAY_SIZE(wf)},
            {.f = rf, .n = id == HOOK_PRE_REQUEST ? ARRAY_SIZE(rf) - 1 : ARRAY_SIZE(rf)},
        };

        call_hook(id, args, ARRAY_SIZE(args), req);
    }
    free(method);
    free(path);
    free(query);
}
