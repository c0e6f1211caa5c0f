# Integration tests: Python (the interpreter qilin embeds) drives the built
# `qilin` over real sockets on 127.0.0.1. One file per feature.
integration_tests += \
	tests/integration/test_hello.py \
	tests/integration/test_body.py \
	tests/integration/test_keepalive.py \
	tests/integration/test_errors.py \
	tests/integration/test_wsgi_validate.py \
	tests/integration/test_frameworks.py \
	tests/integration/test_filewrapper.py \
	tests/integration/test_process.py \
	tests/integration/test_cli.py \
	tests/integration/test_appspec.py \
	tests/integration/test_signals.py \
	tests/integration/test_ops_load.py \
	tests/integration/test_ops_process.py \
	tests/integration/test_ops_hooks.py \
	tests/integration/test_ops_stop.py \
	tests/integration/test_gunicorn_conf.py \
	tests/integration/test_plugin_python.py \
	tests/integration/test_core_graph.py \
	tests/integration/test_emfile.py \
	tests/integration/test_nginx.py \
	tests/integration/test_python_link.py \
	tests/integration/test_fairness.py \
	tests/integration/test_tls.py \
	tests/integration/test_statsd.py \
	tests/integration/test_ruby.py \
	tests/integration/test_paste.py \
	tests/integration/test_syslog.py \
	tests/integration/test_logconfig.py \
	tests/integration/test_logger_class.py

# How configure linked the interpreter, for test_python_link.py.
if PYTHON_STATIC
QILIN_PYTHON_LINK = static
else
QILIN_PYTHON_LINK = shared
endif

# Whether TLS was built, for test_tls.py.
if HAVE_TLS
QILIN_TLS = yes
else
QILIN_TLS = no
endif

TEST_EXTENSIONS = .py
PY_LOG_COMPILER = $(PYTHON_BIN)
AM_PY_LOG_FLAGS = $(top_srcdir)/tests/integration/run.py
if BUILD_PYTHON
TESTS += $(integration_tests)
endif
EXTRA_DIST += tests/integration/run.py tests/integration/qilintest.py tests/integration/opsload.py \
	tests/integration/socket_activate.py tests/integration/gunicorn_settings.txt $(integration_tests) tests/apps \
	tests/lsan.supp

# Uninstalled plugins live in .libs/ (libtool), so point the loader there.
AM_TESTS_ENVIRONMENT = \
	QILIN_BIN='$(abs_top_builddir)/qilin'; export QILIN_BIN; \
	QILIN_PLUGIN_PATH='$(abs_top_builddir)/plugins/workers/sync/.libs:$(abs_top_builddir)/plugins/workers/gthread/.libs:$(abs_top_builddir)/plugins/workers/gevent/.libs:$(abs_top_builddir)/plugins/workers/eventlet/.libs:$(abs_top_builddir)/plugins/workers/asyncio/.libs:$(abs_top_builddir)/plugins/python-wsgi/.libs:$(abs_top_builddir)/plugins/ruby/.libs'; \
	export QILIN_PLUGIN_PATH; \
	QILIN_TEST_APPS='$(abs_top_srcdir)/tests/apps'; export QILIN_TEST_APPS; \
	QILIN_TEST_FIXTURES='$(abs_top_srcdir)/tests/unit/fixtures'; export QILIN_TEST_FIXTURES; \
	QILIN_UNIT_PLUGINS='$(abs_top_builddir)/tests/unit/.libs'; export QILIN_UNIT_PLUGINS; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE; \
	QILIN_PYTHON_LINK='$(QILIN_PYTHON_LINK)'; export QILIN_PYTHON_LINK; \
	QILIN_TLS='$(QILIN_TLS)'; export QILIN_TLS; \
	LSAN_OPTIONS='suppressions=$(abs_top_srcdir)/tests/lsan.supp:print_suppressions=0'; \
	export LSAN_OPTIONS;
integration_tests += tests/integration/test_static.py

# The control socket and its client (test_control.py runs qilinctl from here).
integration_tests += tests/integration/test_control.py
AM_TESTS_ENVIRONMENT += QILIN_CTL_BIN='$(abs_top_builddir)/qilinctl'; export QILIN_CTL_BIN;

# --protocol uwsgi, raw packets and behind nginx uwsgi_pass.
integration_tests += tests/integration/test_uwsgi.py
