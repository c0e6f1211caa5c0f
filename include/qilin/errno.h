/*
 * Error codes beyond errno. Functions return 0 or a negative errno value;
 * the codes below fill the gaps and sit below -4096 so they never clash.
 */
#ifndef QILIN_ERRNO_H
#define QILIN_ERRNO_H

#include <qilin/common.h>

/* XX(name, value, message) */
#define QLN_ERRNO_MAP(XX)                                                                          \
    XX(EBADREQ, -5001, "malformed HTTP request")                                                   \
    XX(EBADBODY, -5002, "malformed request body framing")                                          \
    XX(EPEERCLOSED, -5003, "client closed the connection")                                         \
    XX(ESTOP, -5004, "worker is stopping")                                                         \
    XX(EBADHEADER, -5005, "invalid response header from the application")                        \
    XX(EABI, -5006, "plugin ABI mismatch")

enum {
#define QLN_ERRNO_ENUM(name, value, msg) QLN_##name = value,
    QLN_ERRNO_MAP(QLN_ERRNO_ENUM)
#undef QLN_ERRNO_ENUM
};

/** Message for 0, a negative errno or a QLN_E* code; never NULL; static storage. */
QLN_API const char *qln_strerror(int err);
/** Symbolic name ("ENOENT", "QLN_EBADREQ"); "UNKNOWN" for others; static storage. */
QLN_API const char *qln_err_name(int err);

#endif
