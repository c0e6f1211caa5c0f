# Unit tests for the processes area: bind specs and sockets (test_listener),
# the shared scoreboard (test_scoreboard), pidfile/title/signal names (test_proc),
# server hooks in the Lua config (test_hooks).

check_PROGRAMS += tests/unit/test_listener tests/unit/test_scoreboard tests/unit/test_proc \
	tests/unit/test_hooks
TESTS += tests/unit/test_listener tests/unit/test_scoreboard tests/unit/test_proc \
	tests/unit/test_hooks

tests_unit_test_listener_SOURCES = tests/unit/test_listener.c
tests_unit_test_listener_CPPFLAGS = $(unit_cppflags)
tests_unit_test_listener_LDADD = $(unit_ldadd)

tests_unit_test_scoreboard_SOURCES = tests/unit/test_scoreboard.c
tests_unit_test_scoreboard_CPPFLAGS = $(unit_cppflags)
tests_unit_test_scoreboard_LDADD = $(unit_ldadd)

tests_unit_test_proc_SOURCES = tests/unit/test_proc.c
tests_unit_test_proc_CPPFLAGS = $(unit_cppflags)
tests_unit_test_proc_LDADD = $(unit_ldadd)

tests_unit_test_hooks_SOURCES = tests/unit/test_hooks.c
tests_unit_test_hooks_CPPFLAGS = $(unit_cppflags)
tests_unit_test_hooks_LDADD = $(unit_ldadd)
