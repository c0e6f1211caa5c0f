dnl Small local macros, so the build needs nothing beyond autoconf, automake,
dnl libtool and pkg-config (no autoconf-archive).

dnl AX_CHECK_CFLAG_LITE(FLAG, ACTION-IF-OK): does $CC accept FLAG with -Werror?
AC_DEFUN([AX_CHECK_CFLAG_LITE], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  qln_save_CFLAGS=$CFLAGS
  CFLAGS="$CFLAGS -Werror $1"
  AC_COMPILE_IFELSE([AC_LANG_PROGRAM([], [])], [AC_MSG_RESULT([yes]); $2], [AC_MSG_RESULT([no])])
  CFLAGS=$qln_save_CFLAGS
])

dnl AX_PTHREAD_LITE: glibc 2.34+ has threads in libc; older ones need -pthread.
AC_DEFUN([AX_PTHREAD_LITE], [
  PTHREAD_CFLAGS=-pthread
  PTHREAD_LIBS=-pthread
  AC_SUBST([PTHREAD_CFLAGS])
  AC_SUBST([PTHREAD_LIBS])
])
