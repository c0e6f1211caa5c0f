/*
 * The worker process: what the core keeps for one worker (struct
 * qln_worker, opaque to plugins) and the child side of fork. Worker only.
 */
#ifndef QILIN_CORE_WORKER_H
#define QILIN_CORE_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#include <ev.h>

#include <qilin/plugin.h>

#include "config.h"
#include "listener.h"
#include "settings.h"
#include "static.h" /* struct static_map */

struct scoreboard_slot;
struct serve_pool;
struct proc_owner;

struct qln_worker {
    struct ev_loop *loop;
    struct qln_ctx *ctx;
    const struct qln_app_ops *app; /* the app plugin's hooks */
    void *app_state;               /* from its init() */
    const struct qln_worker_ops *ops;
    struct listener *listeners; /* borrowed from the master's arbiter (inherited) */
    size_t nlisteners;
    volatile sig_atomic_t stop; /* enum qln_stop, written by the signal handler */
    int age;                    /* 1, 2, 3...: order of spawning, as gunicorn's worker.age */
    pid_t pid;
    struct scoreboard_slot *slot; /* this worker's slot in the shared scoreboard */
    struct conn_settings conn;
    struct static_map statics; /* --static-map */
    struct serve_pool *pool;   /* serve.c's free sessions, created lazily */
    ev_io wake;                /* on wake_fd: signal handlers poke the loop through it */
    int wake_fd;               /* an eventfd; qln_worker_wake_fd() */
    ev_timer heartbeat;
    volatile sig_atomic_t reopen_logs; /* SIGUSR1 seen; the wake callback reopens the logs */
    int exit_status;                   /* qln_worker_exit()'s status */
    bool exit_asked;                   /* the application asked to end the worker */
    pid_t ppid;                        /* the master; when getppid() differs, it died */
    uint64_t max_requests;             /* recycle after this many requests; 0: never */
    int64_t max_rss_kib;               /* --max-worker-memory in KiB; 0: never */
    int64_t lifetime_end_ms;           /* --max-worker-lifetime's end (util_now_ms); 0: never */
    int statm_fd;                      /* /proc/self/statm, kept open when max_rss_kib is set */
    int64_t rss_checked_ms;            /* when a request last looked at the RSS */
    int recycling;                     /* a memory or lifetime restart was begun (atomic) */
    int64_t linger_until;              /* graceful stop: idle connections close by then;
                                          0 until asked (qln_conn_idle_deadline) */
    bool accept_failure_logged;        /* EMFILE and its kind are logged once */
};

/* After how many requests, or milliseconds, a request looks at the RSS again. */
#define RSS_CHECK_REQUESTS 64
#define RSS_CHECK_MS 20

/*
 * --max-worker-memory and --max-worker-lifetime: when the worker's resident
 * memory or its age passes the limit, logs it with the figure and begins a
 * graceful stop (the requests in progress finish; the master starts a
 * replacement). Thread-safe; one read of /proc/self/statm when a memory
 * limit is set.
 */
void worker_check_recycle(struct qln_worker *w);

/*
 * Makes the worker's wake_fd readable, so whichever loop watches it (the
 * core's, or a green hub through qln_worker_wake_fd) runs its wake callback
 * soon. write(2) to an eventfd is async-signal-safe and thread-safe, hence
 * usable from the signal handlers, gthread's pool threads and the session's
 * max_requests count alike.
 */
static inline void
worker_poke(const struct qln_worker *w)
{
    uint64_t one = 1;
    ssize_t n = write(w->wake_fd, &one, sizeof(one));

    (void)n; /* only fails when the counter is full: the fd is readable then anyway */
}

/*
 * The app plugin's hook NAME from OPS, or NULL when it is unset or lies
 * beyond the table's size (a plugin built against an older ABI minor).
 */
#define APP_HOOK(ops, name)                                                                        \
    ((ops)->size >= offsetof(struct qln_app_ops, name) + sizeof((ops)->name) ? (ops)->name : NULL)

/* The same for an optional worker plugin hook NAME (e.g. prepare). */
#define WORKER_HOOK(ops, name)                                                                     \
    ((ops)->size >= offsetof(struct qln_worker_ops, name) + sizeof((ops)->name) ? (ops)->name      \
                                                                                : NULL)

/* Room for the master's own descriptors in struct worker_boot. */
#define MASTER_FDS_MAX 16

/* What the master hands to a freshly forked worker. Borrowed by worker_main. */
struct worker_boot {
    struct qln_ctx *ctx;
    const struct qln_app_ops *app;
    void *app_state;
    const struct qln_worker_ops *ops;
    struct listener *listeners;
    size_t nlisteners;
    struct scoreboard_slot *slot;
    int age;
    bool app_loaded;                /* preload_app: the master already ran load_app */
    const char *app_spec;           /* wsgi_app, for load_app */
    const char *proc_name;          /* for the process title */
    const struct proc_owner *owner; /* --user/--group to switch to; NULL: none */
    /* The master's own descriptors (its --stats socket and connections),
       which the child closes first: only the listeners may reach a worker. */
    int master_fds[MASTER_FDS_MAX];
    size_t nmaster_fds;
};

/*
 * The child side of fork, called right after fork() with every signal
 * blocked (the master blocks them around fork). Resets signals, makes a
 * fresh loop, runs post_fork_child and load_app, installs the worker's
 * signal handling and heartbeat, then the worker plugin's run(). Exits the
 * process: run()'s status, 3 when the worker failed to boot, 4 when the app
 * failed to load (gunicorn's codes). Worker only; never returns.
 */
_Noreturn void worker_main(const struct worker_boot *boot);

#endif
