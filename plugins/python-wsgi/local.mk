# App plugin `python3`: embeds CPython and serves WSGI (PEP 3333) apps.
# Its Python modules, qilin.LEAF (qilin.conf, ...), compiled in as text.
pyw_python = \
	plugins/python-wsgi/qilin/conf.py \
	plugins/python-wsgi/qilin/loggers.py \
	plugins/python-wsgi/qilin/failapp.py \
	plugins/python-wsgi/qilin/asgi.py \
	plugins/python-wsgi/qilin/paste.py \
	plugins/python-wsgi/qilin/logconf.py
if BUILD_PYTHON
pkglib_LTLIBRARIES += plugins/python-wsgi/python3.la
plugins_python_wsgi_python3_la_SOURCES = \
	plugins/python-wsgi/py.h \
	plugins/python-wsgi/python.c \
	plugins/python-wsgi/app.c \
	plugins/python-wsgi/environ.c \
	plugins/python-wsgi/input.c \
	plugins/python-wsgi/start_response.c \
	plugins/python-wsgi/filewrapper.c \
	plugins/python-wsgi/errors.c \
	plugins/python-wsgi/conf.c \
	plugins/python-wsgi/interrupt.c \
	plugins/python-wsgi/sockref.c \
	plugins/python-wsgi/service.c \
	plugins/python-wsgi/modules.c \
	plugins/python-wsgi/asgi.c \
	plugins/python-wsgi/wsframe.c \
	plugins/python-wsgi/wsframe.h
nodist_plugins_python_wsgi_python3_la_SOURCES = $(pyw_python:.py=.py.inc)
BUILT_SOURCES += $(pyw_python:.py=.py.inc)
plugins_python_wsgi_python3_la_CPPFLAGS = $(AM_CPPFLAGS) $(PYTHON_CFLAGS) \
	-DQLN_PYTHON_BIN='"$(PYTHON_BIN)"'
plugins_python_wsgi_python3_la_CFLAGS = $(AM_CFLAGS) -fno-strict-aliasing
plugins_python_wsgi_python3_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_python_wsgi_python3_la_LIBADD = $(PYTHON_PLUGIN_LIBS)

# Unit test of the plugin against the mock core (tests/unit/mock_core.c
# defines the qln_* functions, with the core's response checks from
# core/field.c), so it compiles the plugin's sources rather than linking
# libqilincore. One program, one Check suite.
if HAVE_CHECK
check_PROGRAMS += tests/unit/test_python_environ
TESTS += tests/unit/test_python_environ
tests_unit_test_python_environ_SOURCES = tests/unit/test_python_environ.c \
	tests/unit/mock_core.c tests/unit/mock_core.h core/field.c core/field.h \
	$(plugins_python_wsgi_python3_la_SOURCES)
nodist_tests_unit_test_python_environ_SOURCES = $(nodist_plugins_python_wsgi_python3_la_SOURCES)
tests_unit_test_python_environ_CPPFLAGS = $(plugins_python_wsgi_python3_la_CPPFLAGS) $(CHECK_CFLAGS)
tests_unit_test_python_environ_CFLAGS = $(plugins_python_wsgi_python3_la_CFLAGS)
tests_unit_test_python_environ_LDADD = $(CHECK_LIBS) $(PYTHON_LIBS) $(PTHREAD_LIBS)

# The WebSocket frame format, on its own (no Python).
check_PROGRAMS += tests/unit/test_wsframe
TESTS += tests/unit/test_wsframe
tests_unit_test_wsframe_SOURCES = tests/unit/test_wsframe.c plugins/python-wsgi/wsframe.c \
	plugins/python-wsgi/wsframe.h
tests_unit_test_wsframe_CPPFLAGS = $(AM_CPPFLAGS) $(CHECK_CFLAGS)
tests_unit_test_wsframe_LDADD = $(CHECK_LIBS)
endif
endif
plugins/python-wsgi/qilin/conf.py.inc: plugins/python-wsgi/qilin/conf.py
	$(EMBED_PY) $(srcdir)/plugins/python-wsgi/qilin/conf.py $@
plugins/python-wsgi/qilin/loggers.py.inc: plugins/python-wsgi/qilin/loggers.py
	$(EMBED_PY) $(srcdir)/plugins/python-wsgi/qilin/loggers.py $@
plugins/python-wsgi/qilin/failapp.py.inc: plugins/python-wsgi/qilin/failapp.py
	$(EMBED_PY) $(srcdir)/plugins/python-wsgi/qilin/failapp.py $@
plugins/python-wsgi/qilin/asgi.py.inc: plugins/python-wsgi/qilin/asgi.py
	$(EMBED_PY) $(srcdir)/plugins/python-wsgi/qilin/asgi.py $@
plugins/python-wsgi/qilin/paste.py.inc: plugins/python-wsgi/qilin/paste.py
	$(EMBED_PY) $(srcdir)/plugins/python-wsgi/qilin/paste.py $@
plugins/python-wsgi/qilin/logconf.py.inc: plugins/python-wsgi/qilin/logconf.py
	$(EMBED_PY) $(srcdir)/plugins/python-wsgi/qilin/logconf.py $@
CLEANFILES += $(pyw_python:.py=.py.inc)
EXTRA_DIST += $(pyw_python)
