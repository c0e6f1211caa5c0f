# The core: the `qilin` binary and libqilincore.la (the same sources, for unit tests).
# One variable per area; each area's owner edits only its own lines.

core_util_sources = core/util.c core/util.h core/service.c
core_config_sources = core/config.c core/config.h core/options.c core/cli.c core/cli.h \
	core/lua_config.c core/lua_config.h
core_log_sources = core/log.c core/log.h core/plugin.c core/plugin.h core/syslog.c core/syslog.h
core_http_sources = core/transport.c core/transport.h core/conn.c core/conn.h \
	core/field.c core/field.h core/http.c core/http.h core/request.c core/request.h core/response.c core/response.h \
	core/settings.c core/settings.h core/serve.c core/serve.h \
	core/proxy.c core/proxy.h core/static.c core/static.h core/tls.c core/tls.h
core_uwsgi_sources = core/uwsgi.c core/uwsgi.h
core_proc_sources = core/arbiter.c core/arbiter.h core/arbiter_int.h core/binding.c core/children.c \
	core/reexec.c core/reload.c core/worker.c core/worker.h \
	core/scoreboard.c core/scoreboard.h core/signals.c core/signals.h core/lifecycle.c \
	core/listener.c core/listener.h core/proc.c core/proc.h \
	core/hooks.c core/hooks.h core/notify.c core/notify.h \
	core/stats.c core/stats.h core/reloader.c core/reloader.h core/recycle.c \
	core/statsd.c core/statsd.h

# The control socket: the master's side, and the protocol qilinctl shares.
core_control_sources = core/control.c core/control.h core/control_cmd.c core/control_cmd.h \
	core/admin.c

core_sources = $(core_util_sources) $(core_config_sources) $(core_log_sources) \
	$(core_http_sources) $(core_proc_sources) $(core_control_sources) $(core_uwsgi_sources)

core_cppflags = $(AM_CPPFLAGS) $(LUA_CFLAGS) $(LLHTTP_CFLAGS) $(OPENSSL_CFLAGS) \
	-DPKGLIBDIR='"$(pkglibdir)"'
core_libs = $(EV_LIBS) $(LUA_LIBS) $(LLHTTP_LIBS) $(OPENSSL_LIBS) $(PTHREAD_LIBS)

# llhttp from Debian's node-llhttp sources (never copied into this tree): the
# wrappers #include the files named by configure. Built without our warning
# flags, since it is third-party generated code.
if LLHTTP_BUNDLED_SRC
noinst_LTLIBRARIES += core/libllhttp.la
core_libllhttp_la_SOURCES = core/llhttp/llhttp_api.c core/llhttp/llhttp_http.c \
	core/llhttp/llhttp_llhttp.c
core_libllhttp_la_CPPFLAGS = -I$(top_builddir) $(LLHTTP_CFLAGS)
core_libllhttp_la_CFLAGS = -std=gnu11 -fvisibility=hidden -w $(QLN_SAN_CFLAGS)
core_llhttp_lib = core/libllhttp.la
else
core_llhttp_lib =
endif

noinst_LTLIBRARIES += core/libqilincore.la
core_libqilincore_la_SOURCES = $(core_sources)
core_libqilincore_la_CPPFLAGS = $(core_cppflags)
core_libqilincore_la_CFLAGS = $(AM_CFLAGS)
core_libqilincore_la_LIBADD = $(core_llhttp_lib) $(core_libs)

# The binary compiles the sources itself rather than linking the convenience
# library: an archive would drop qln_* functions the core never calls, yet
# plugins need every one of them exported (-export-dynamic).
bin_PROGRAMS += qilin
qilin_SOURCES = core/main.c $(core_sources)
qilin_CPPFLAGS = $(core_cppflags)
qilin_CFLAGS = $(AM_CFLAGS)
qilin_LDFLAGS = $(AM_LDFLAGS) -export-dynamic
qilin_LDADD = $(core_llhttp_lib) $(core_libs)
# With the static interpreter (configure.ac explains why) the binary carries
# libpythonX.Y.a whole, non-PIC, so it cannot be a PIE.
if PYTHON_STATIC
qilin_LDFLAGS += -no-pie
qilin_LDADD += $(PYTHON_STATIC_LIBS)
endif
