# HTTP conformance corpus and fuzzing.
# The corpus runs against the built server in make check, for every worker
# class whose plugin is built (tests/integration/test_conformance.py).
integration_tests += tests/integration/test_conformance.py \
	tests/integration/test_timeouts.py tests/integration/test_slowloris.py \
	tests/integration/test_proxy.py
EXTRA_DIST += tests/conformance/corpus.py tests/conformance/runner.py \
	tests/conformance/run_gunicorn.py

# libFuzzer target: the real connection code (every core source but main.c,
# and the WebSocket frame parser of the python3 plugin) under clang
# -fsanitize=fuzzer,address,undefined, built outside the normal build so no
# other object needs clang. `make fuzz` runs it FUZZ_SECONDS
# (default 1800), `make fuzz-smoke` 60 s (CI). Seeds come from the corpus;
# findings land in tests/conformance/fuzz-out/ of the build directory.
EXTRA_DIST += tests/conformance/fuzz_conn.c tests/conformance/fuzz_seeds.py
FUZZ_SECONDS = 1800
# Every .c of the core but main.c (and of llhttp when compiled from source);
# the recipe picks the .c files, since automake forbids GNU make's $(filter).
fuzz_conn_deps = tests/conformance/fuzz_conn.c plugins/python-wsgi/wsframe.c $(core_sources)
if LLHTTP_BUNDLED_SRC
fuzz_conn_deps += $(core_libllhttp_la_SOURCES)
endif
fuzz_conn_bin = tests/conformance/fuzz_conn

# How a libFuzzer target is built: FUZZ_LINK -o TARGET SOURCES FUZZ_LIBS.
FUZZ_LINK = $(FUZZ_CC) -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer -std=gnu11 \
	-I$(top_builddir) -I$(top_builddir)/include -I$(top_srcdir)/include -I$(top_srcdir) \
	-I$(top_srcdir)/core $(LUA_CFLAGS) $(LLHTTP_CFLAGS) $(OPENSSL_CFLAGS) \
	-DPKGLIBDIR='"$(pkglibdir)"'
FUZZ_LIBS = $(EV_LIBS) $(LUA_LIBS) $(LLHTTP_LIBS) $(OPENSSL_LIBS) $(PTHREAD_LIBS) -ldl -lm
# A recipe's first line: stops with the fix when configure found no libFuzzer.
FUZZ_CHECK = if test "x$(QLN_HAVE_LIBFUZZER)" != xyes; then \
	  echo "make fuzz: no clang with libFuzzer was found by configure;" \
	    "install clang and libclang-rt-14-dev (Debian), then re-run configure" >&2; \
	  exit 1; fi; $(MKDIR_P) tests/conformance

$(fuzz_conn_bin): $(fuzz_conn_deps) qlnconfig.h
	@$(FUZZ_CHECK)
	$(AM_V_CC)srcs=; for f in $(fuzz_conn_deps); do \
	  case $$f in *.c) srcs="$$srcs $(top_srcdir)/$$f";; esac; done; \
	$(FUZZ_LINK) -o $@ $$srcs $(FUZZ_LIBS)

fuzz-seeds: $(top_srcdir)/tests/conformance/corpus.py
	@rm -rf tests/conformance/fuzz-seeds && $(MKDIR_P) tests/conformance/fuzz-seeds
	$(PYTHON_BIN) $(top_srcdir)/tests/conformance/fuzz_seeds.py tests/conformance/fuzz-seeds

fuzz-run: $(fuzz_conn_bin) fuzz-seeds
	@$(MKDIR_P) tests/conformance/fuzz-out/corpus
	cd tests/conformance/fuzz-out && ../fuzz_conn -max_len=65536 -timeout=10 \
	  -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus ../fuzz-seeds

fuzz:
	$(MAKE) $(AM_MAKEFLAGS) fuzz-run FUZZ_SECONDS=$(FUZZ_SECONDS)

# CI: the connection target for 60 s, then the uwsgi one for 30 s.
fuzz-smoke:
	$(MAKE) $(AM_MAKEFLAGS) fuzz-run FUZZ_SECONDS=60
	$(MAKE) $(AM_MAKEFLAGS) fuzz-uwsgi FUZZ_SECONDS=30

clean-local: clean-fuzz
clean-fuzz:
	rm -rf $(fuzz_conn_bin) tests/conformance/fuzz-seeds tests/conformance/fuzz-out

.PHONY: fuzz fuzz-smoke fuzz-run fuzz-seeds clean-fuzz

# libFuzzer target for the uwsgi packet decoder and the HTTP head it writes
# (tests/conformance/fuzz_uwsgi.c), seeded by uwsgi_seeds.py: `make fuzz-uwsgi`
# runs it FUZZ_SECONDS; findings land in tests/conformance/fuzz-uwsgi-out/.
EXTRA_DIST += tests/conformance/fuzz_uwsgi.c tests/conformance/uwsgi_seeds.py
fuzz_uwsgi_deps = tests/conformance/fuzz_uwsgi.c $(core_sources)
if LLHTTP_BUNDLED_SRC
fuzz_uwsgi_deps += $(core_libllhttp_la_SOURCES)
endif

tests/conformance/fuzz_uwsgi: $(fuzz_uwsgi_deps) qlnconfig.h
	@$(FUZZ_CHECK)
	$(AM_V_CC)srcs=; for f in $(fuzz_uwsgi_deps); do \
	  case $$f in *.c) srcs="$$srcs $(top_srcdir)/$$f";; esac; done; \
	$(FUZZ_LINK) -o $@ $$srcs $(FUZZ_LIBS)

fuzz-uwsgi: tests/conformance/fuzz_uwsgi
	@rm -rf tests/conformance/fuzz-uwsgi-seeds
	$(PYTHON_BIN) $(top_srcdir)/tests/conformance/uwsgi_seeds.py tests/conformance/fuzz-uwsgi-seeds
	@$(MKDIR_P) tests/conformance/fuzz-uwsgi-out/corpus
	cd tests/conformance/fuzz-uwsgi-out && ../fuzz_uwsgi -max_len=70000 -timeout=10 \
	  -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus ../fuzz-uwsgi-seeds

clean-fuzz-uwsgi:
	rm -rf tests/conformance/fuzz_uwsgi tests/conformance/fuzz-uwsgi-seeds \
	  tests/conformance/fuzz-uwsgi-out

.PHONY: fuzz-uwsgi clean-fuzz-uwsgi
