/*
 * Server hooks under gunicorn's names (on_starting, pre_fork, post_request...):
 * Lua functions assigned in the Lua config file, whose state stays alive for
 * them, or C callbacks a plugin registered while reading its own config file
 * (qln_hook_register: gunicorn.conf.py's Python functions). Workers inherit
 * them across fork. Master and workers.
 */
#ifndef QILIN_CORE_HOOKS_H
#define QILIN_CORE_HOOKS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <qilin/hook.h>

struct lua_State;
struct qln_request;

enum hook_id {
    HOOK_ON_STARTING,
    HOOK_ON_RELOAD,
    HOOK_WHEN_READY,
    HOOK_PRE_FORK,
    HOOK_POST_FORK,
    HOOK_POST_WORKER_INIT,
    HOOK_WORKER_INT,
    HOOK_WORKER_ABORT,
    HOOK_PRE_EXEC,
    HOOK_PRE_REQUEST,
    HOOK_POST_REQUEST,
    HOOK_CHILD_EXIT,
    HOOK_WORKER_EXIT,
    HOOK_NWORKERS_CHANGED,
    HOOK_ON_EXIT,
    HOOK_COUNT
};

/* The hook called NAME, or -1 when NAME is no hook. Pure. */
int hooks_lookup(const char *name);

/*
 * lua_config.c, after a config file ran: takes ownership of L and keeps,
 * from the table at stack index STORE (name -> assigned value), every
 * function assigned to a hook name. The result is staged (with whatever
 * qln_hook_register() staged for the same file): hooks_commit() makes it
 * current (closing the previous state and releasing the previous C hooks),
 * hooks_discard() drops it. Master only.
 */
void hooks_stage(struct lua_State *L, int store);
void hooks_commit(void);
void hooks_discard(void);
/* Closes every state (master exit). */
void hooks_free(void);

/* The configuration handed to C hooks (qln_hook_call.ctx). Set by the master
   before the first call; CTX must outlive every call. */
void hooks_set_ctx(struct qln_ctx *ctx);

/* True when the current configuration defines hook ID. Any process. */
int hooks_have(enum hook_id id);

/*
 * Calls hook ID with NARGS arguments, each a table built from ARGS (gunicorn
 * passes the arbiter and the worker object; we pass tables describing them:
 * pid, age, ...); a C hook gets them as they are (qln_hook_call). An error
 * raised by a Lua hook is logged with its file:line and a traceback, and
 * otherwise ignored: a hook never stops the server. Lua calls are serialised
 * by a mutex (gthread workers run requests on many threads); C hooks lock for
 * themselves. Does nothing when the hook is not defined.
 */
void hooks_call(enum hook_id id, const struct qln_hook_arg *args, size_t nargs);

/*
 * ID is HOOK_PRE_REQUEST or HOOK_POST_REQUEST: called by the session
 * (serve.c) around each request, with the worker {PID, AGE} and the request {method, path, query
 * and, for post_request, status: the response's}. Worker, any thread.
 */
void hooks_request(pid_t pid, int age, const struct qln_request *req, enum hook_id id, int status);

#endif
