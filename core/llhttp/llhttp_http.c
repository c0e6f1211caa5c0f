/* Compiles Debian's node-llhttp source http.c (path chosen by configure's --with-llhttp-src). */
#include "qlnconfig.h"
#include QLN_LLHTTP_HTTP_C
