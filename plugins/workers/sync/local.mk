# Worker plugin `sync`: one request at a time per worker, libev for idle connections.
pkglib_LTLIBRARIES += plugins/workers/sync/sync.la
plugins_workers_sync_sync_la_SOURCES = plugins/workers/sync/sync.c
plugins_workers_sync_sync_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_workers_sync_sync_la_LIBADD = $(EV_LIBS)
