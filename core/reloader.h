/*
 * --reload: a worker watches the source files of its application (and
 * --reload-extra-file, glob patterns included) with inotify, or by
 * looking at each file once a second (--reload-engine poll), and stops
 * gracefully when one changes, so the master starts a worker that loads
 * the new code. Worker only, but reloader_check_config.
 */
#ifndef QILIN_CORE_RELOADER_H
#define QILIN_CORE_RELOADER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <ev.h>

struct config;

/* The app plugin's module_files hook (struct qln_app_ops). */
typedef void (*reloader_files_fn)(void *state, void (*add)(void *ctx, const char *path), void *ctx);

/* A file the poll engine watches: what stat(2) said last. */
struct polled_file {
    char *path;
    bool gone; /* stat failed: its coming back is a change too */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

struct reloader {
    ev_io io;
    ev_timer rescan; /* looks for modules imported since, once a second */
    int fd;          /* inotify; -1: not the inotify engine */
    bool on;         /* --reload is on (either engine) */
    bool polling;    /* --reload-engine poll */
    const struct config *cfg;
    struct ev_loop *loop;
    reloader_files_fn module_files; /* NULL: the app plugin has none */
    void *app_state;
    volatile sig_atomic_t *stop; /* the worker's enum qln_stop: set to graceful on a change */
    char **paths;                /* indexed by watch descriptor: its file, for the log line */
    size_t npaths;               /* room in PATHS */
    size_t nwatches;             /* watches made */
    struct polled_file *files;   /* poll engine: the files, in order of adding */
    size_t nfiles, files_cap;
    size_t *index;    /* poll engine: open-addressing table of FILES positions + 1, by path */
    size_t index_cap; /* a power of two, at least twice NFILES */
};

/*
 * Checks CFG's reload_engine ("auto", "poll" or "inotify"); 0, or -1 with
 * one line in ERR naming the value and the choices.
 */
int reloader_check_config(const struct config *cfg, char *err, size_t errlen);

/*
 * With --reload (setting reload in CFG), watches the app's module files
 * (MODULE_FILES of APP_STATE) and every reload_extra_files entry on LOOP, and once a second the
 * files of modules imported since (a Django project imports its views at the first request). On a
 * change it sets *STOP to QLN_STOP_GRACEFUL and breaks LOOP. Call after the app is loaded. Does
 * nothing without --reload. Returns 0 or -errno (logged; the worker then serves without reloading).
 */
int reloader_start(struct reloader *r, struct ev_loop *loop, const struct config *cfg,
                   reloader_files_fn module_files, void *app_state, volatile sig_atomic_t *stop);

/* Stops watching and frees; safe on a reloader that never started. */
void reloader_stop(struct reloader *r);

#endif
