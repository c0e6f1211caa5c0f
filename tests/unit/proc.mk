# Unit tests for the processes area: bind specs and sockets (test_listener),
# the shared scoreboard (test_scoreboard), pidfile/title/signal names (test_proc).

check_PROGRAMS += tests/unit/test_listener tests/unit/test_scoreboard tests/unit/test_proc
TESTS += tests/unit/test_listener tests/unit/test_scoreboard tests/unit/test_proc

tests_unit_test_listener_SOURCES = tests/unit/test_listener.c
tests_unit_test_listener_CPPFLAGS = $(unit_cppflags)
tests_unit_test_listener_LDADD = $(unit_ldadd)

tests_unit_test_scoreboard_SOURCES = tests/unit/test_scoreboard.c
tests_unit_test_scoreboard_CPPFLAGS = $(unit_cppflags)
tests_unit_test_scoreboard_LDADD = $(unit_ldadd)

tests_unit_test_proc_SOURCES = tests/unit/test_proc.c
tests_unit_test_proc_CPPFLAGS = $(unit_cppflags)
tests_unit_test_proc_LDADD = $(unit_ldadd)
