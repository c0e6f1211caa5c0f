# Unit tests for the loader area: the error and access logs (test_log) and
# the plugin loader (test_plugin), which dlopens the fixture plugins below.

check_PROGRAMS += tests/unit/test_log tests/unit/test_plugin
TESTS += tests/unit/test_log tests/unit/test_plugin

tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_CPPFLAGS = $(unit_cppflags)
tests_unit_test_log_LDADD = $(unit_ldadd)

# The fixture plugins call no qln_* function, but a plugin that did would
# resolve it against the test binary, as it does against qilin.
tests_unit_test_plugin_SOURCES = tests/unit/test_plugin.c
tests_unit_test_plugin_CPPFLAGS = $(unit_cppflags)
tests_unit_test_plugin_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
tests_unit_test_plugin_LDADD = $(unit_ldadd)

# Fixture plugins: one valid, the rest broken in one way each. They sit in
# tests/unit/ so libtool puts the .so files in tests/unit/.libs, which the
# harness passes as $QILIN_UNIT_PLUGINS. The broken ones override fields that
# QLN_PLUGIN_DEFINE sets, hence -Wno-override-init.
loader_plugins = tests/unit/good.la tests/unit/needsgood.la tests/unit/badabi.la \
	tests/unit/newminor.la tests/unit/badmagic.la tests/unit/shortsize.la \
	tests/unit/nameclash.la tests/unit/reserved.la tests/unit/badkind.la \
	tests/unit/shortops.la tests/unit/needsmissing.la tests/unit/cyclea.la \
	tests/unit/cycleb.la tests/unit/optclash.la tests/unit/nosym.la
check_LTLIBRARIES += $(loader_plugins)
EXTRA_tests_unit_test_plugin_DEPENDENCIES = $(loader_plugins)

loader_plugin_cflags = $(AM_CFLAGS) -Wno-override-init
# Linked like real plugins (PLUGIN_LDFLAGS): exporting only qilin_plugin also
# keeps ASan's per-symbol ODR indicators local, which RTLD_GLOBAL would
# otherwise share between plugins and report as an ODR violation.
loader_plugin_ldflags = -module -avoid-version -shared -rpath /nowhere \
	-export-symbols-regex '^qilin_plugin$$'

tests_unit_good_la_SOURCES = tests/unit/fixtures/plugins/good.c
tests_unit_good_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_good_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_needsgood_la_SOURCES = tests/unit/fixtures/plugins/needsgood.c
tests_unit_needsgood_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_needsgood_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_badabi_la_SOURCES = tests/unit/fixtures/plugins/badabi.c
tests_unit_badabi_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_badabi_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_newminor_la_SOURCES = tests/unit/fixtures/plugins/newminor.c
tests_unit_newminor_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_newminor_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_badmagic_la_SOURCES = tests/unit/fixtures/plugins/badmagic.c
tests_unit_badmagic_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_badmagic_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_shortsize_la_SOURCES = tests/unit/fixtures/plugins/shortsize.c
tests_unit_shortsize_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_shortsize_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_nameclash_la_SOURCES = tests/unit/fixtures/plugins/nameclash.c
tests_unit_nameclash_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_nameclash_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_reserved_la_SOURCES = tests/unit/fixtures/plugins/reserved.c
tests_unit_reserved_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_reserved_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_badkind_la_SOURCES = tests/unit/fixtures/plugins/badkind.c
tests_unit_badkind_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_badkind_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_shortops_la_SOURCES = tests/unit/fixtures/plugins/shortops.c
tests_unit_shortops_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_shortops_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_needsmissing_la_SOURCES = tests/unit/fixtures/plugins/needsmissing.c
tests_unit_needsmissing_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_needsmissing_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_cyclea_la_SOURCES = tests/unit/fixtures/plugins/cyclea.c
tests_unit_cyclea_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_cyclea_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_cycleb_la_SOURCES = tests/unit/fixtures/plugins/cycleb.c
tests_unit_cycleb_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_cycleb_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_optclash_la_SOURCES = tests/unit/fixtures/plugins/optclash.c
tests_unit_optclash_la_CFLAGS = $(loader_plugin_cflags)
tests_unit_optclash_la_LDFLAGS = $(loader_plugin_ldflags)
tests_unit_nosym_la_SOURCES = tests/unit/fixtures/plugins/nosym.c
tests_unit_nosym_la_CFLAGS = $(loader_plugin_cflags)
# No qilin_plugin to keep, so no export list (an empty one is a linker error).
tests_unit_nosym_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
