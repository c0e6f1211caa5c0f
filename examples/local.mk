# Examples: out-of-tree plugin, systemd units; and packaging.

# Installed under $(docdir)/examples, as distros ship them.
examplesdir = $(docdir)/examples
dist_examples_DATA = examples/hello.py examples/qilin.conf.lua
examples_plugin_hellodir = $(examplesdir)/plugin-hello
dist_examples_plugin_hello_DATA = examples/plugin-hello/Makefile examples/plugin-hello/hello.c
examples_systemddir = $(examplesdir)/systemd
dist_examples_systemd_DATA = examples/systemd/qilin.service examples/systemd/qilin.socket

# The core dlopens NAME.so; libtool's .la files are of no use at run time,
# so they are not installed (as Debian's dh_missing would insist). Libtool's
# uninstall finds the .so through the .la, hence the explicit uninstall too.
install-exec-hook:
	@for la in $(pkglib_LTLIBRARIES); do \
	  f="$(DESTDIR)$(pkglibdir)/`basename $$la`"; \
	  echo " rm -f '$$f'"; rm -f "$$f"; \
	done
uninstall-hook:
	@for la in $(pkglib_LTLIBRARIES); do \
	  f="$(DESTDIR)$(pkglibdir)/`basename $$la .la`.so"; \
	  echo " rm -f '$$f'"; rm -f "$$f"; \
	done

# EXTRA_DIST names whole directories (docs, tests/unit/fixtures, ...), and
# automake copies a directory from the build tree on top of the source
# tree's copy: objects built there (fixture plugins) must not ship. bench/
# cannot be in EXTRA_DIST at all: DISTFILES are prerequisites of distdir, and
# `make bench` would run the benchmarks; it is copied from the source tree.
dist-hook:
	@cp -pR "$(srcdir)/bench" "$(distdir)/" && chmod -R u+w "$(distdir)/bench"
	@find "$(distdir)" -type d \( -name .deps -o -name .libs -o -name __pycache__ \) \
	  -prune -exec rm -rf {} +
	@find "$(distdir)" -type f \( -name '*.o' -o -name '*.lo' -o -name '*.la' -o -name '*.so' \
	  -o -name .dirstamp -o -name '*.pyc' -o -name '*.log' -o -name '*.trs' \) -exec rm -f {} +

# Autoconf's exit trap runs `rm -f core ...` before removing confdefs.h, and
# stops there when the build tree has a directory called core/ (ours does).
DISTCLEANFILES += confdefs.h

# Debian packaging travels in the tarball; `make deb` builds the .debs from
# that tarball in a scratch directory, never in the source tree.
EXTRA_DIST += debian
deb: dist
	$(top_srcdir)/tools/build-deb $(DIST_ARCHIVES) $(abs_top_builddir)
.PHONY: deb

integration_tests += \
	tests/integration/test_sdk.py \
	tests/integration/test_symbols.py \
	tests/integration/test_systemd_units.py
