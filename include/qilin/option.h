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

/** The registered option NAME, or NULL when no loaded table has it. */
QLN_API const struct qln_option *qln_cfg_option(const struct qln_ctx *ctx, const char *name);

/** A value for qln_cfg_set(), of one TYPE. */
struct qln_cfg_value {
    enum qln_opt_type type;   /**< which member below holds the value */
    bool b;                   /**< QLN_OPT_BOOL */
    int64_t i;                /**< QLN_OPT_INT */
    const char *s;            /**< QLN_OPT_STRING: text parsed as on the command line, so
                                   "4" is fine for an INT option and "true" for a BOOL one */
    const char *const *items; /**< QLN_OPT_LIST: N strings, replacing the list */
    size_t n;
};

enum qln_cfg_set_flags {
    /** NAME may be a setting no loaded table knows (another server's setting, or
        one a worker plugin not yet loaded adds): if it is still unknown once every
        plugin is loaded, the core logs one warning naming it instead of failing. */
    QLN_CFG_OPTIONAL = 1u << 0,
};

/**
 * Sets NAME from a configuration file that an app plugin's load_config() reads
 * (config-file precedence: below $GUNICORN_CMD_ARGS, $QILIN_CMD_ARGS and the
 * command line), as the Lua config file does. A value of the wrong type or out of
 * range is -EINVAL; an unknown NAME is -ENOENT unless FLAGS has QLN_CFG_OPTIONAL
 * (or plugins are still loading, when the check waits until they are). ORIGIN
 * ("FILE:LINE") starts ERR, one line naming the setting and the fix. Only during
 * load_config(); master only. Returns 0 or -errno.
 */
QLN_API int qln_cfg_set(struct qln_ctx *ctx, const char *name, const struct qln_cfg_value *v,
                        uint32_t flags, const char *origin, char *err, size_t errlen);

/** The command line qilin was started with (for the app's sys.argv). */
QLN_API int qln_ctx_argc(const struct qln_ctx *ctx);
QLN_API char *const *qln_ctx_argv(const struct qln_ctx *ctx);

/**
 * The flags (enum qln_worker_flags, <qilin/plugin.h>) of the worker class
 * this server runs: an app plugin reads QLN_WORKER_ASYNC to know whether
 * async applications can be served. Since ABI 1.6.
 */
QLN_API uint32_t qln_ctx_worker_flags(const struct qln_ctx *ctx);

#endif
