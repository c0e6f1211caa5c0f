# Worker plugin gevent: green threads on gevent's hub over the core's
# C connection loop. Needs the python3 app plugin (and its libpython);
# configure --disable-gevent leaves it out.
if BUILD_GEVENT
pkglib_LTLIBRARIES += plugins/workers/gevent/gevent.la
plugins_workers_gevent_gevent_la_SOURCES = plugins/workers/gevent/gevent.c
nodist_plugins_workers_gevent_gevent_la_SOURCES = plugins/workers/gevent/qilin/gevent.py.inc
BUILT_SOURCES += plugins/workers/gevent/qilin/gevent.py.inc
plugins_workers_gevent_gevent_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CFLAGS)
plugins_workers_gevent_gevent_la_CFLAGS = $(AM_CFLAGS) -fno-strict-aliasing
plugins_workers_gevent_gevent_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_workers_gevent_gevent_la_LIBADD = plugins/workers/green/libgreen.la $(PYTHON_PLUGIN_LIBS) $(EV_LIBS)

integration_tests += tests/integration/test_gevent.py
endif
plugins/workers/gevent/qilin/gevent.py.inc: plugins/workers/gevent/qilin/gevent.py
	$(EMBED_PY) $(srcdir)/plugins/workers/gevent/qilin/gevent.py $@
CLEANFILES += plugins/workers/gevent/qilin/gevent.py.inc
# Distributed whatever this build leaves out.
EXTRA_DIST += tests/integration/test_gevent.py plugins/workers/gevent/qilin/gevent.py

# The service registry the green workers find python3's embedding through.
if HAVE_CHECK
check_PROGRAMS += tests/unit/test_service
TESTS += tests/unit/test_service
tests_unit_test_service_SOURCES = tests/unit/test_service.c
tests_unit_test_service_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_unit_test_service_LDADD = core/libqilincore.la $(CHECK_LIBS)
endif
