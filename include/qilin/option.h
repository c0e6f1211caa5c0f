/*
 * Options: one table drives the command line, the Lua config file,
 * $QILIN_CMD_ARGS, --help and --print-config. The core owns the values;
 * plugins add rows with their descriptor and read values with qln_cfg_*().
 */
#ifndef QILIN_OPTION_H
#define QILIN_OPTION_H

#include <qilin/common.h>

enum qln_opt_type {
    QLN_OPT_BOOL = 1, /**< flag without argument on the CLI; Lua true/false */
    QLN_OPT_INT,      /**< integer; accepts 0x.. and 0o.. prefixes; range min..max */
    QLN_OPT_STRING,   /**< text */
    QLN_OPT_LIST,     /**< repeatable; each CLI use appends; Lua string or table of strings */
};

enum qln_opt_flags {
    QLN_OPT_EARLY = 1u << 0,  /**< read before plugins load (--plugin, -k, -c ...) */
    QLN_OPT_NEGATE = 1u << 1, /**< BOOL whose CLI flag sets false (gunicorn's --no-sendfile) */
    QLN_OPT_INTERNAL = 1u << 2, /**< not shown in --help (e.g. the positional app) */
};

/** One row. Tables end with a row whose name is NULL. */
struct qln_option {
    const char *name;    /**< snake_case; also the Lua global: "worker_connections" */
    const char *cli;     /**< "-k,--worker-class", "--backlog"; NULL: config file only */
    enum qln_opt_type type;
    const char *def;     /**< default as text, parsed like user input; NULL: unset */
    const char *metavar; /**< "INT", "ADDRESS" ... for --help */
    const char *section; /**< --help section, e.g. "Server Socket" */
    const char *help;    /**< one line */
    int64_t min, max;    /**< INT bounds, inclusive; both 0: unbounded */
    uint32_t flags;      /**< enum qln_opt_flags */
};

/*
 * Readers of the effective configuration. NAME must be a registered option of
 * that type (a programming error otherwise: the core asserts). Values are
 * owned by the core and stay valid for the life of the process (until a
 * reload, which re-execs or re-forks). Thread-safe (read-only after startup).
 */
QLN_API bool qln_cfg_bool(const struct qln_ctx *ctx, const char *name);
QLN_API int64_t qln_cfg_int(const struct qln_ctx *ctx, const char *name);
/** NULL when unset. */
QLN_API const char *qln_cfg_str(const struct qln_ctx *ctx, const char *name);
QLN_API size_t qln_cfg_list_len(const struct qln_ctx *ctx, const char *name);
QLN_API const char *qln_cfg_list_get(const struct qln_ctx *ctx, const char *name, size_t i);

/** The command line qilin was started with (for the app's sys.argv). */
QLN_API int qln_ctx_argc(const struct qln_ctx *ctx);
QLN_API char *const *qln_ctx_argv(const struct qln_ctx *ctx);

#endif
