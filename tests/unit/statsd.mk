# Unit tests for StatsD metrics: the --statsd-host grammar, gunicorn's
# prefix rule and line format, datagrams on a unix socket (test_statsd).

check_PROGRAMS += tests/unit/test_statsd
TESTS += tests/unit/test_statsd

tests_unit_test_statsd_SOURCES = tests/unit/test_statsd.c
tests_unit_test_statsd_CPPFLAGS = $(unit_cppflags)
tests_unit_test_statsd_LDADD = $(unit_ldadd)
