# Worker plugin eventlet (issue 6): the gevent worker's bridge (green.c) with
# eventlet's hub. Needs the python3 app plugin (and its libpython);
# configure --disable-eventlet leaves it out.
if BUILD_EVENTLET
pkglib_LTLIBRARIES += plugins/workers/eventlet/eventlet.la
plugins_workers_eventlet_eventlet_la_SOURCES = plugins/workers/eventlet/eventlet.c \
	plugins/workers/gevent/green.c plugins/workers/gevent/green.h
plugins_workers_eventlet_eventlet_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CFLAGS)
plugins_workers_eventlet_eventlet_la_CFLAGS = $(AM_CFLAGS) -fno-strict-aliasing
plugins_workers_eventlet_eventlet_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_workers_eventlet_eventlet_la_LIBADD = $(PYTHON_LIBS) $(EV_LIBS)

integration_tests += tests/integration/test_eventlet.py
endif
# Distributed whatever this build leaves out.
EXTRA_DIST += tests/integration/test_eventlet.py
