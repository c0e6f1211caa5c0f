/* Compiles Debian's node-llhttp source api.c (path chosen by configure's --with-llhttp-src). */
#include "qlnconfig.h"
#include QLN_LLHTTP_API_C
