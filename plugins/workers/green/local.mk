# The green bridge that the gevent and eventlet worker plugins both link:
# the core's connection loop in one green thread per connection, every wait
# on the green library's hub. Its Python half is the module qilin.green.
if BUILD_PYTHON
noinst_LTLIBRARIES += plugins/workers/green/libgreen.la
plugins_workers_green_libgreen_la_SOURCES = plugins/workers/green/green.c \
	plugins/workers/green/green.h
nodist_plugins_workers_green_libgreen_la_SOURCES = plugins/workers/green/qilin/green.py.inc
plugins_workers_green_libgreen_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CFLAGS)
plugins_workers_green_libgreen_la_CFLAGS = $(AM_CFLAGS) -fno-strict-aliasing
BUILT_SOURCES += plugins/workers/green/qilin/green.py.inc
endif
plugins/workers/green/qilin/green.py.inc: plugins/workers/green/qilin/green.py
	$(EMBED_PY) $(srcdir)/plugins/workers/green/qilin/green.py $@
CLEANFILES += plugins/workers/green/qilin/green.py.inc
EXTRA_DIST += plugins/workers/green/qilin/green.py
