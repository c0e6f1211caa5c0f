# Worker plugin gthread: a thread pool over the core's connection lifecycle.
pkglib_LTLIBRARIES += plugins/workers/gthread/gthread.la
plugins_workers_gthread_gthread_la_SOURCES = plugins/workers/gthread/gthread.c
plugins_workers_gthread_gthread_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_workers_gthread_gthread_la_LIBADD = $(EV_LIBS) $(PTHREAD_LIBS)
integration_tests += tests/integration/test_gthread.py

# `make check-gthread`: the integration suite again with every server on
# -k gthread (tests/integration/qilintest.py reads QILIN_TEST_WORKER_CLASS).
check-gthread: all
	$(MAKE) $(AM_MAKEFLAGS) check TESTS='$(integration_tests)' \
	    TESTS_ENVIRONMENT='QILIN_TEST_WORKER_CLASS=gthread; export QILIN_TEST_WORKER_CLASS;'
.PHONY: check-gthread
