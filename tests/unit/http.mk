# Unit tests for the http area: the request parser (test_http, table-driven),
# the connection loop with the response writer (test_conn, over sockets), the
# connection lifecycle (test_lifecycle), and the plain-socket transport
# (test_transport, over a socketpair and a TCP connection).

# The fake worker both connection suites serve from.
unit_fakeworker = tests/unit/fakeworker.c tests/unit/fakeworker.h

check_PROGRAMS += tests/unit/test_http tests/unit/test_conn tests/unit/test_proxy \
	tests/unit/test_lifecycle tests/unit/test_transport
TESTS += tests/unit/test_http tests/unit/test_conn tests/unit/test_proxy tests/unit/test_lifecycle \
	tests/unit/test_transport

tests_unit_test_http_SOURCES = tests/unit/test_http.c
tests_unit_test_http_CPPFLAGS = $(unit_cppflags)
tests_unit_test_http_LDADD = $(unit_ldadd)

tests_unit_test_conn_SOURCES = tests/unit/test_conn.c $(unit_fakeworker)
tests_unit_test_conn_CPPFLAGS = $(unit_cppflags)
tests_unit_test_conn_LDADD = $(unit_ldadd) $(PTHREAD_LIBS)

# The connection lifecycle on a libev loop in a server thread.
tests_unit_test_lifecycle_SOURCES = tests/unit/test_lifecycle.c $(unit_fakeworker)
tests_unit_test_lifecycle_CPPFLAGS = $(unit_cppflags)
tests_unit_test_lifecycle_LDADD = $(unit_ldadd) $(EV_LIBS) $(PTHREAD_LIBS)
# The test's epoll_ctl() counts libev's calls: exported, it takes libc's place.
tests_unit_test_lifecycle_LDFLAGS = $(AM_LDFLAGS) -Wl,--export-dynamic-symbol=epoll_ctl

tests_unit_test_proxy_SOURCES = tests/unit/test_proxy.c
tests_unit_test_proxy_CPPFLAGS = $(unit_cppflags)
tests_unit_test_proxy_LDADD = $(unit_ldadd)

tests_unit_test_transport_SOURCES = tests/unit/test_transport.c
tests_unit_test_transport_CPPFLAGS = $(unit_cppflags)
tests_unit_test_transport_LDADD = $(unit_ldadd)
