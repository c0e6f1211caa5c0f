# Unit tests for static files served by the core: --static-map
# items, path safety, Content-Type, validators, ranges (test_static).

check_PROGRAMS += tests/unit/test_static
TESTS += tests/unit/test_static

tests_unit_test_static_SOURCES = tests/unit/test_static.c
tests_unit_test_static_CPPFLAGS = $(unit_cppflags)
tests_unit_test_static_LDADD = $(unit_ldadd)
