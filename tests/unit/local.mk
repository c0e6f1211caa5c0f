# Check unit suites: one program per core module, each linking libqilincore.la.
# Each area has its own fragment so owners never edit the same file.
if HAVE_CHECK
unit_cppflags = $(AM_CPPFLAGS) $(CHECK_CFLAGS) $(LUA_CFLAGS) $(LLHTTP_CFLAGS)
unit_ldadd = core/libqilincore.la $(CHECK_LIBS)
include tests/unit/config.mk
include tests/unit/control.mk
include tests/unit/http.mk
include tests/unit/loader.mk
include tests/unit/proc.mk
include tests/unit/static.mk
include tests/unit/statsd.mk
include tests/unit/uwsgi.mk
endif
EXTRA_DIST += tests/unit/fixtures
