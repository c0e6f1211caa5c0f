/*
 * Server hooks: Lua functions assigned in the config file under gunicorn's
 * hook names (on_starting, pre_fork, post_request...). The Lua state that
 * loaded the file stays alive for them; workers inherit it across fork.
 * Master and workers.
 */
#ifndef QILIN_CORE_HOOKS_H
#define QILIN_CORE_HOOKS_H

#include <stddef.h>
#include <stdint.h>

struct lua_State;
struct qln_request;
struct qln_worker;

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
 * function assigned to a hook name. The result is staged: hooks_commit()
 * makes it current (closing the previous state), hooks_discard() drops it.
 * Master only.
 */
void hooks_stage(struct lua_State *L, int store);
void hooks_commit(void);
void hooks_discard(void);
/* Closes every state (master exit). */
void hooks_free(void);

/* True when the current configuration defines hook ID. Any process. */
int hooks_have(enum hook_id id);

/*
 * One named field of a table argument; S == NULL means the integer I. A
 * struct hook_table with KEY == NULL in its only field is passed as a bare
 * integer instead of a table (nworkers_changed's counts).
 */
struct hook_field {
    const char *key;
    const char *s;
    int64_t i;
};
struct hook_table {
    const struct hook_field *f;
    size_t n;
};

/*
 * Calls hook ID with NARGS arguments, each a table built from ARGS (gunicorn
 * passes the arbiter and the worker object; we pass tables describing them:
 * pid, age, ...). An error raised by the hook is logged with its file:line
 * and a traceback, and otherwise ignored: a hook never stops the server.
 * Serialised by a mutex (gthread workers run requests on many threads).
 * Does nothing when the hook is not defined.
 */
void hooks_call(enum hook_id id, const struct hook_table *args, size_t nargs);

/*
 * ID is HOOK_PRE_REQUEST or HOOK_POST_REQUEST: called by conn.c around each
 * request, with the worker {pid, age} and the request {method, path, query
 * and, for post_request, status: the response's}. Worker, any thread.
 */
void hooks_request(struct qln_worker *w, const struct qln_request *req, enum hook_id id,
                   int status);

#endif
