/*
 * Command-line parsing built from the option table (getopt_long), the early
 * scan that finds plugins and the config file before plugins load, shell-like
 * splitting of $QILIN_CMD_ARGS, and --help. Master only.
 */
#ifndef QILIN_CORE_CLI_H
#define QILIN_CORE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/* What must be known before plugins are loaded and the config file read. */
struct cli_early {
    const char *config_file; /* -c/--config, or NULL */
    bool help;               /* -h/--help */
    bool version;            /* -v/--version */
};

/*
 * Scans ARGV (argv[0] skipped) for the options flagged QLN_OPT_EARLY
 * (--plugin, --plugin-dir, -k/--worker-class, -c/--config) and -h/-v, without
 * rejecting anything else, and sets early options into CFG at SRC. Returns 0
 * or -EINVAL (a flag missing its value).
 */
int cli_scan_early(struct config *cfg, int argc, char *const *argv, enum config_source src,
                   struct cli_early *out, char *err, size_t errlen);

/*
 * Parses ARGV fully against every registered option. The first positional
 * argument sets wsgi_app; a second is an error. An unknown flag fails:
 * "unrecognized option '--x' (see qilin --help)". Returns 0 or -EINVAL.
 */
int cli_parse(struct config *cfg, int argc, char *const *argv, enum config_source src,
              char *err, size_t errlen);

/*
 * Splits TEXT like a POSIX shell (quotes and backslashes, no expansion) into
 * a NULL-terminated argv whose argv[0] is "qilin". Returns 0 or -EINVAL
 * (unbalanced quote). Free with cli_argv_free().
 */
int cli_split(const char *text, int *argc, char ***argv, char *err, size_t errlen);
void cli_argv_free(char **argv);

/* Usage text: every non-internal option grouped by section, plugins' sections last. */
void cli_help(const struct config *cfg, FILE *out);

#endif
