/*
 * The option registry and the effective configuration (struct qln_ctx is
 * its plugin-facing handle). Sources, later wins: defaults < config file
 * < $QILIN_CMD_ARGS < command line. Master builds it; workers inherit it
 * across fork and only read it (readers are then thread-safe).
 *
 * Every ERR below receives one line without a prefix, naming the option and
 * the fix, e.g. "--workers: invalid integer 'abc' (expected a number >= 1)";
 * the caller prints it as "Error: <line>".
 */
#ifndef QILIN_CORE_CONFIG_H
#define QILIN_CORE_CONFIG_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <qilin/option.h>

struct log_options; /* log.h */

enum config_source {
    CONFIG_SRC_DEFAULT = 0,
    CONFIG_SRC_FILE = 1,
    CONFIG_SRC_ENV = 2,
    CONFIG_SRC_CLI = 3,
};

struct config; /* opaque */

/* The plugin-facing handle: the qln_cfg_*() functions read through it. */
struct qln_ctx {
    struct config *cfg;
    int argc;
    char **argv;
    uint32_t worker_flags; /* the worker plugin's enum qln_worker_flags */
};

/* The core's own option table (core/options.c), NULL-name terminated. */
extern const struct qln_option core_options[];

/* Returns an empty registry; free with config_free(). */
struct config *config_new(void);
void config_free(struct config *cfg);

/*
 * Adds a table of options owned by OWNER ("core", a plugin name; copied) and
 * applies their defaults. Returns 0, or -EEXIST when a name or CLI flag is
 * already registered or is -h/--help/-v/--version (ERR names both owners),
 * or -EINVAL for a malformed row or default; then nothing of the table is
 * registered. The table must outlive CFG. INT rows: min..max inclusive, both
 * 0 unbounded, max 0 with a non-zero min means "at least min". For OWNER
 * "core", $PORT and $WEB_CONCURRENCY give the defaults of bind and workers
 * as in gunicorn (a bad $WEB_CONCURRENCY is an -EINVAL naming it).
 */
int config_register(struct config *cfg, const struct qln_option *opts, const char *owner,
                    char *err, size_t errlen);

/* Looks an option up by name, or by CLI flag ("-b", "--bind"); NULL if unknown. */
const struct qln_option *config_find(const struct config *cfg, const char *name);
const struct qln_option *config_find_flag(const struct config *cfg, const char *flag);

/*
 * Sets NAME from text, as typed on a command line: BOOL accepts
 * true/false/yes/no/on/off/1/0, INT decimal, 0x.., 0o.. within min..max,
 * LIST appends one item (a value set from a lower source is replaced first).
 * A value from a lower SRC than the current one is ignored (returns 0).
 * ORIGIN ("qilin.conf.lua:12", "--bind", "$QILIN_CMD_ARGS") prefixes errors.
 * Unknown NAME: -ENOENT, unless config_set_lenient() is on, in which case the
 * item is kept pending for config_resolve_pending(). Returns 0 or -errno
 * with ERR set to one line naming the option and the fix.
 */
int config_set(struct config *cfg, const char *name, const char *value, enum config_source src,
               const char *origin, char *err, size_t errlen);
/* Typed setters for the Lua loader; same rules as config_set. A value of the
   wrong type for the option is -EINVAL ("... must be an integer, got a boolean"). */
int config_set_bool(struct config *cfg, const char *name, bool v, enum config_source src,
                    const char *origin, char *err, size_t errlen);
int config_set_int(struct config *cfg, const char *name, int64_t v, enum config_source src,
                   const char *origin, char *err, size_t errlen);
/* Replaces a LIST with N items at once (Lua tables), even from the same SRC;
   a lower SRC is ignored. The items are copied. */
int config_set_list(struct config *cfg, const char *name, const char *const *items, size_t n,
                    enum config_source src, const char *origin, char *err, size_t errlen);

/*
 * qln_cfg_set(): V through the typed setter of its type. With FLAGS
 * QLN_CFG_OPTIONAL, a NAME that is unknown (now, or on resolve when lenient)
 * logs one warning "ORIGIN: setting 'x' is not supported by qilin; ignored"
 * and is not an error.
 */
int config_set_value(struct config *cfg, const char *name, const struct qln_cfg_value *v,
                     uint32_t flags, enum config_source src, const char *origin, char *err,
                     size_t errlen);

/* While on, unknown names are kept pending instead of failing. */
void config_set_lenient(struct config *cfg, bool on);
/*
 * Applies pending items now that plugins have registered their options.
 * An item still unknown fails: "<origin>: unknown setting 'x'" plus a
 * "did you mean" suggestion when one is close. Returns 0 or -ENOENT/-EINVAL.
 */
int config_resolve_pending(struct config *cfg, char *err, size_t errlen);

/* Readers (the qln_cfg_*() functions are thin wrappers). Assert on unknown name/type.
   Strings are owned by CFG and stay valid until the value changes or config_free(). */
bool config_bool(const struct config *cfg, const char *name);
int64_t config_int(const struct config *cfg, const char *name);
const char *config_str(const struct config *cfg, const char *name);
size_t config_list_len(const struct config *cfg, const char *name);
/* The log settings (errorlog, loglevel, accesslog, access_log_format) into O, for log_open(). */
void config_log_options(const struct config *cfg, struct log_options *o);
const char *config_list_get(const struct config *cfg, const char *name, size_t i);
/* Where the effective value came from. */
enum config_source config_source_of(const struct config *cfg, const char *name);

/* --print-config: "name = value" lines for every option, sorted by name, the
   "=" aligned and values spelled as gunicorn prints them (None, True, ['a']). */
void config_print(const struct config *cfg, FILE *out);
/* As config_print, or, when INDENTED, as gunicorn's debug log lists the
   configuration at startup: "  name: value". */
void config_list(const struct config *cfg, FILE *out, bool indented);

/*
 * The error code of a command line that is malformed rather than wrong: an
 * unknown flag, a flag without its value, a value that is not of the
 * flag's type (integer, boolean, one of its words). main.c exits 2 for it,
 * as gunicorn's argparse does; other errors exit 1.
 */
#define CONFIG_EUSAGE (-EBADMSG)

/*
 * Why qilin refuses the gunicorn setting WORD (a name, "certfile", or a flag,
 * "--certfile") instead of ignoring it: running without it would be less
 * safe than asked (TLS, secure_scheme_headers). NULL for any other word.
 * Setting such a name from any source is an error with this reason.
 */
const char *config_refused(const char *word);

/*
 * "Did you mean": writes into BUF (LEN bytes, NUL-terminated) the registered
 * option name closest to WORD, or with FLAGS the closest CLI flag ("--workers"
 * for "--wokers"). Returns the suggestion's length, 0 when nothing is close.
 */
size_t config_suggest(const struct config *cfg, const char *word, bool flags, char *buf,
                      size_t len);

/*
 * Core STRING options with a word list (config.c's choices[]). A flag that
 * may stand alone on the command line: config_bare_value() is what it means
 * alone (NULL: it needs a value), and the next word is its value only when
 * config_is_choice() says so. config_accepts_bool(): a boolean (a config
 * file's true/false, or true/yes/on/1, false/no/off/0) sets it too, as a word.
 */
const char *config_bare_value(const struct qln_option *o);
bool config_is_choice(const struct qln_option *o, const char *word);
bool config_accepts_bool(const struct qln_option *o);

/* Iterates registered options in registration order: I from 0 until NULL. */
const struct qln_option *config_option_at(const struct config *cfg, size_t i, const char **owner);

/*
 * The app spec: wsgi_app (APP_MODULE), else, for an app plugin that offers
 * gunicorn's --paste, the PasteDeploy file it names; NULL when neither.
 */
const char *config_app_spec(const struct config *cfg);

#endif
