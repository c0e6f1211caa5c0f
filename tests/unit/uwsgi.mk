# The uwsgi packet decoder (core/uwsgi.c).
check_PROGRAMS += tests/unit/test_uwsgi
TESTS += tests/unit/test_uwsgi
tests_unit_test_uwsgi_SOURCES = tests/unit/test_uwsgi.c
tests_unit_test_uwsgi_CPPFLAGS = $(unit_cppflags)
tests_unit_test_uwsgi_LDADD = $(unit_ldadd)
