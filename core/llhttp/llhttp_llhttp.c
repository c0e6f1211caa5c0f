/* Compiles Debian's node-llhttp source llhttp.c (path chosen by configure's --with-llhttp-src). */
#include "qlnconfig.h"
#include QLN_LLHTTP_LLHTTP_C
