# Worker plugin eventlet: the green bridge (plugins/workers/green/) on
# eventlet's hub. Needs the python3 app plugin (and its libpython);
# configure --disable-eventlet leaves it out.
if BUILD_EVENTLET
pkglib_LTLIBRARIES += plugins/workers/eventlet/eventlet.la
plugins_workers_eventlet_eventlet_la_SOURCES = plugins/workers/eventlet/eventlet.c
nodist_plugins_workers_eventlet_eventlet_la_SOURCES = plugins/workers/eventlet/qilin/eventlet.py.inc
BUILT_SOURCES += plugins/workers/eventlet/qilin/eventlet.py.inc
plugins_workers_eventlet_eventlet_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CFLAGS)
plugins_workers_eventlet_eventlet_la_CFLAGS = $(AM_CFLAGS) -fno-strict-aliasing
plugins_workers_eventlet_eventlet_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_workers_eventlet_eventlet_la_LIBADD = plugins/workers/green/libgreen.la $(PYTHON_PLUGIN_LIBS) $(EV_LIBS)

integration_tests += tests/integration/test_eventlet.py
endif
plugins/workers/eventlet/qilin/eventlet.py.inc: plugins/workers/eventlet/qilin/eventlet.py
	$(EMBED_PY) $(srcdir)/plugins/workers/eventlet/qilin/eventlet.py $@
CLEANFILES += plugins/workers/eventlet/qilin/eventlet.py.inc
# Distributed whatever this build leaves out.
EXTRA_DIST += tests/integration/test_eventlet.py plugins/workers/eventlet/qilin/eventlet.py
