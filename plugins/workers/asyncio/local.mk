# Worker plugin asyncio: ASGI apps on an asyncio (or uvloop) loop, through
# the green bridge (plugins/workers/green/) with python3-greenlet. Needs the
# python3 app plugin (and its libpython); configure --disable-asyncio
# leaves it out.
if BUILD_ASYNCIO
pkglib_LTLIBRARIES += plugins/workers/asyncio/asyncio.la
plugins_workers_asyncio_asyncio_la_SOURCES = plugins/workers/asyncio/asyncio.c
nodist_plugins_workers_asyncio_asyncio_la_SOURCES = plugins/workers/asyncio/qilin/aioworker.py.inc
BUILT_SOURCES += plugins/workers/asyncio/qilin/aioworker.py.inc
plugins_workers_asyncio_asyncio_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CFLAGS)
plugins_workers_asyncio_asyncio_la_CFLAGS = $(AM_CFLAGS) -fno-strict-aliasing
plugins_workers_asyncio_asyncio_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_workers_asyncio_asyncio_la_LIBADD = plugins/workers/green/libgreen.la $(PYTHON_PLUGIN_LIBS) $(EV_LIBS)

integration_tests += tests/integration/test_asgi.py
endif
plugins/workers/asyncio/qilin/aioworker.py.inc: plugins/workers/asyncio/qilin/aioworker.py
	$(EMBED_PY) $(srcdir)/plugins/workers/asyncio/qilin/aioworker.py $@
CLEANFILES += plugins/workers/asyncio/qilin/aioworker.py.inc
# Distributed whatever this build leaves out.
EXTRA_DIST += tests/integration/test_asgi.py plugins/workers/asyncio/qilin/aioworker.py
