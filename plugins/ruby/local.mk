# App plugin `ruby` (alias `rack`): embeds libruby and serves Rack apps.
if BUILD_RUBY
pkglib_LTLIBRARIES += plugins/ruby/ruby.la
plugins_ruby_ruby_la_SOURCES = plugins/ruby/ruby.c
plugins_ruby_ruby_la_CPPFLAGS = $(AM_CPPFLAGS) $(RUBY_CFLAGS)
# Ruby's headers use what -Wstrict-prototypes and friends do not like, and
# its API casts function pointers (RUBY_METHOD_FUNC): keep the warnings
# that matter for our own code.
plugins_ruby_ruby_la_CFLAGS = $(AM_CFLAGS) -Wno-strict-prototypes -Wno-missing-prototypes
plugins_ruby_ruby_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LDFLAGS)
plugins_ruby_ruby_la_LIBADD = $(RUBY_LIBS)
endif
