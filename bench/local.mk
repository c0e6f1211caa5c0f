# Benchmarks: `make bench` runs bench/run.py against this build tree.
# Not part of `make check`: it measures, it never asserts timings.
#
# The `null` app plugin answers from C (the core's ceiling without Python).
# It is built with everything else so a broken build shows at once, but it
# is never installed: noinst, made a loadable module by -rpath.
noinst_LTLIBRARIES += bench/plugin-null/null.la
bench_plugin_null_null_la_SOURCES = bench/plugin-null/null.c
bench_plugin_null_null_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS) -rpath /nowhere

# BENCH_FLAGS passes options to the harness: make bench BENCH_FLAGS='--quick --cases hello'.
# The harness runs under Debian's /usr/bin/python3, the interpreter the peers
# (gunicorn, uwsgi's plugin, waitress) are packaged for.
BENCH_INTERP = /usr/bin/python3
BENCH_FLAGS =
bench: all
	$(BENCH_INTERP) $(abs_top_srcdir)/bench/run.py --build $(abs_top_builddir) $(BENCH_FLAGS)
.PHONY: bench

# bench/testssl [BUILD_DIR] runs Debian's testssl.sh (protocols, cipher
# categories, forward secrecy, vulnerabilities) against this build's TLS on
# 127.0.0.1 and prints a short summary. Like the rest of bench/, it ships in
# the tarball through dist-hook (examples/local.mk), not EXTRA_DIST.

# The null plugin and the harness's wrk parser are checked in `make check`
# (behaviour only, never timings), so `make bench` cannot rot unnoticed.
integration_tests += tests/integration/test_bench_null.py
