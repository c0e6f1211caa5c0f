# Unit tests for the http area: the request parser (test_http, table-driven)
# and the connection loop with the response writer (test_conn, over sockets).

check_PROGRAMS += tests/unit/test_http tests/unit/test_conn tests/unit/test_proxy
TESTS += tests/unit/test_http tests/unit/test_conn tests/unit/test_proxy

tests_unit_test_http_SOURCES = tests/unit/test_http.c
tests_unit_test_http_CPPFLAGS = $(unit_cppflags)
tests_unit_test_http_LDADD = $(unit_ldadd)

tests_unit_test_conn_SOURCES = tests/unit/test_conn.c
tests_unit_test_conn_CPPFLAGS = $(unit_cppflags)
tests_unit_test_conn_LDADD = $(unit_ldadd) $(PTHREAD_LIBS)

tests_unit_test_proxy_SOURCES = tests/unit/test_proxy.c
tests_unit_test_proxy_CPPFLAGS = $(unit_cppflags)
tests_unit_test_proxy_LDADD = $(unit_ldadd)
