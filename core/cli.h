/*
 * Command-line parsing built from the option table, the early scan that finds
 * plugins and the config file before plugins load, shell-like splitting of
 * $QILIN_CMD_ARGS, and --help. Master only. Flags take "--name=value",
 * "--name value", "-xVALUE" or "-x VALUE"; a BOOL flag takes no value. ERR
 * gets one line naming the flag, without "Error: " and without saying where
 * ARGV came from: the caller adds both ("Error: $QILIN_CMD_ARGS: ...").
 */
#ifndef QILIN_CORE_CLI_H
#define QILIN_CORE_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/* What must be known before plugins are loaded and the config file read.
   A scan sets only what it finds, so one zeroed struct can collect the scan of
   $QILIN_CMD_ARGS and then the command line's. */
struct cli_early {
    const char *config_file; /* -c/--config (borrowed from argv), or NULL */
    bool help;               /* -h/--help */
    bool version;            /* -v/--version */
};

/*
 * Scans ARGV (argv[0] skipped) for the options flagged QLN_OPT_EARLY
 * (--plugin, --plugin-dir, -k/--worker-class, -c/--config) and -h/-v, without
 * rejecting anything else, and sets early options into CFG at SRC. A flag not
 * registered yet (a plugin's) is skipped; a value after it looks like a
 * positional, which the scan ignores too. Returns 0 or -EINVAL (a known flag
 * missing its value).
 */
int cli_scan_early(struct config *cfg, int argc, char *const *argv, enum config_source src,
                   struct cli_early *out, char *err, size_t errlen);

/*
 * Parses ARGV fully against every registered option. The first positional
 * argument sets wsgi_app; a second is an error; "--" ends the flags. An
 * unknown flag fails: "unrecognized option '--x' (see qilin --help)", with a
 * "did you mean" when one is close. -h/-v are accepted and ignored (main
 * acts on cli_scan_early's result). A LIST's values within one ARGV append;
 * together they replace the values of a lower source, and parsing the same
 * ARGV again (after the early scan) gives the same list, not a doubled one.
 * Returns 0 or -EINVAL.
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
