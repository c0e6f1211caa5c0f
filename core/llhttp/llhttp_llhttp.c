/* Compiles Debian's node-llhttp source llhttp.c (path chosen by configure's --with-llhttp-src). */
#include "qlnconfig.h"

/* The strict parser. The default build skips the two bytes after
   chunk data whatever they are ("3\r\nabcdef" reads as "abc" then a chunk of
   size "f"), accepts several spaces in the request line and a bare LF after
   it: each is a request-smuggling desync with a front proxy. */
#define LLHTTP_STRICT_MODE 1
#include QLN_LLHTTP_LLHTTP_C
