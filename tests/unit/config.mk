# Unit tests for the config area: the option registry (test_config), the
# command line (test_cli) and the Lua config file (test_lua_config).

check_PROGRAMS += tests/unit/test_config tests/unit/test_cli tests/unit/test_lua_config
TESTS += tests/unit/test_config tests/unit/test_cli tests/unit/test_lua_config

# Fixtures are found through $QILIN_TEST_FIXTURES (set by the harness); this
# is the fallback when a test binary runs by hand.
config_test_cppflags = $(unit_cppflags) -DQLN_TEST_FIXTURES='"$(abs_top_srcdir)/tests/unit/fixtures"'

tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CPPFLAGS = $(config_test_cppflags)
tests_unit_test_config_LDADD = $(unit_ldadd)

tests_unit_test_cli_SOURCES = tests/unit/test_cli.c
tests_unit_test_cli_CPPFLAGS = $(config_test_cppflags)
tests_unit_test_cli_LDADD = $(unit_ldadd)

tests_unit_test_lua_config_SOURCES = tests/unit/test_lua_config.c
tests_unit_test_lua_config_CPPFLAGS = $(config_test_cppflags)
tests_unit_test_lua_config_LDADD = $(unit_ldadd)
