/*
 * --reload: a worker watches the source files of its application (and
 * --reload-extra-file) with inotify and stops gracefully when one changes,
 * so the master starts a worker that loads the new code. Worker only.
 */
#ifndef QILIN_CORE_RELOADER_H
#define QILIN_CORE_RELOADER_H

#include <stddef.h>

#include <ev.h>

struct qln_worker;

struct reloader {
    ev_io io;
    ev_timer rescan; /* looks for modules imported since, once a second */
    int fd;          /* inotify; -1: off */
    struct qln_worker *w;
    char **paths;     /* indexed by watch descriptor: its file, for the log line */
    size_t npaths;    /* room in PATHS */
    size_t nwatches;  /* watches made */
};

/*
 * With --reload (setting reload), watches the app plugin's module files and
 * every reload_extra_files entry on W's loop, and once a second the files of
 * modules imported since (a Django project imports its views at the first
 * request). Call after the app is loaded. Does nothing without --reload.
 * Returns 0 or -errno (logged; the worker then serves without reloading).
 */
int reloader_start(struct reloader *r, struct qln_worker *w);

/* Stops watching and frees; safe on a reloader that never started. */
void reloader_stop(struct reloader *r);

#endif
