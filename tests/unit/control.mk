# Unit tests for the control socket's protocol: the command parser that the
# master and qilinctl share, and the default path (test_control_cmd).

check_PROGRAMS += tests/unit/test_control_cmd
TESTS += tests/unit/test_control_cmd

tests_unit_test_control_cmd_SOURCES = tests/unit/test_control_cmd.c
tests_unit_test_control_cmd_CPPFLAGS = $(unit_cppflags)
tests_unit_test_control_cmd_LDADD = $(unit_ldadd)
