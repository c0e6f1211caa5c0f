/*
 * Types shared by every qilin plugin header: export marker, byte slices,
 * header pairs and the opaque handles the core passes to plugins.
 */
#ifndef QILIN_COMMON_H
#define QILIN_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/** Marks a symbol the core exports to plugins (everything else is hidden). */
#define QLN_API __attribute__((visibility("default")))

/** The TYPE whose MEMBER is at PTR: from an embedded member (a libev watcher,
    a struct qln_waiter) back to the struct that holds it. */
#define qln_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/** A byte range; not NUL-terminated unless a function says so. */
struct qln_slice {
    const char *p;
    size_t len;
};

/** One HTTP header field as received or as given by the app. */
struct qln_header {
    struct qln_slice name;
    struct qln_slice value;
};

struct qln_ctx;      /**< configuration and process context handed to plugins */
struct qln_worker;   /**< one worker process, as seen by its worker plugin */
struct qln_conn;     /**< one client connection */
struct qln_request;  /**< one parsed request (valid until the app's handle() returns) */
struct qln_response; /**< the response writer of that request */

/** Monotonic clock in milliseconds; cheap (vDSO). Thread-safe. */
QLN_API int64_t qln_now_ms(void);

#endif
