/*
 * The command line, built from the option table: the early scan (plugins and
 * config file, before plugins load), the full parse, shell-like splitting of
 * $QILIN_CMD_ARGS, and --help. Master only.
 *
 * We parse by hand rather than with getopt_long: the table grows while we
 * run (plugins register options after the early scan), the early scan must
 * skip flags it does not know yet, and getopt's global state and argument
 * permutation would make two passes over the same argv fragile.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qilin/option.h>

#include "cli.h"
#include "config.h"
#include "util.h"

/* Column where --help starts the description, and the width it wraps at (argparse's). */
#define HELP_COLUMN 24
#define HELP_WIDTH 79

/* LIST values collected during one pass, applied at its end with config_set_list(). */
struct list_acc {
    const struct qln_option *opt;
    const char **items; /* borrowed from argv */
    size_t n, cap;
    char origin[96];
};

/* One pass over an argv: the early scan or the full parse. */
struct pass {
    struct config *cfg;
    enum config_source src;
    bool early;
    struct cli_early *out; /* early scan only */
    const char *app;       /* the positional APP_MODULE seen in this pass */
    /* The word after the last flag given alone that could have a value
       (--proxy-protocol app:app), and that flag: if that word turns out not to
       be the APP_MODULE, it was a bad value for the flag. */
    const char *after_bare;
    const struct qln_option *bare_opt;
    char bare_flag[128];
    struct list_acc *lists;
    size_t nlists;
    char *err;
    size_t errlen;
};

/*
 * Lists collect every value of one pass and replace the option's items at
 * the end. So "-b a -b b" appends within the command line, a higher source
 * replaces a lower one, and running the early scan and the full parse over
 * the same argv does not add each --plugin twice.
 */
static void
list_collect(struct pass *ps, const struct qln_option *opt, const char *value, const char *flag)
{
    struct list_acc *acc = NULL;

    for (size_t k = 0; k < ps->nlists; k++) {
        if (ps->lists[k].opt == opt)
            acc = &ps->lists[k];
    }
    if (acc == NULL) {
        ps->lists = xrealloc(ps->lists, (ps->nlists + 1) * sizeof(*ps->lists));
        acc = &ps->lists[ps->nlists++];
        memset(acc, 0, sizeof(*acc));
        acc->opt = opt;
        snprintf(acc->origin, sizeof(acc->origin), "%s", flag);
    }
    if (acc->n == acc->cap) {
        acc->cap = acc->cap ? acc->cap * 2 : 4;
        acc->items = xrealloc(acc->items, acc->cap * sizeof(*acc->items));
    }
    acc->items[acc->n++] = value;
}

static int
lists_apply(struct pass *ps)
{
    int rc = 0;

    for (size_t k = 0; k < ps->nlists && rc == 0; k++) {
        struct list_acc *acc = &ps->lists[k];

        rc = config_set_list(ps->cfg, acc->opt->name, acc->items, acc->n, ps->src, acc->origin,
                             ps->err, ps->errlen);
    }
    return rc;
}

static void
pass_fini(struct pass *ps)
{
    for (size_t k = 0; k < ps->nlists; k++)
        free(ps->lists[k].items);
    free(ps->lists);
}

static int
unrecognized(struct pass *ps, const char *flag)
{
    const char *why = config_refused(flag);
    char hint[64];

    if (why != NULL)
        return util_err(ps->err, ps->errlen, -EINVAL, "%s: %s", flag, why);
    if (config_suggest(ps->cfg, flag, true, hint, sizeof(hint)) > 0)
        return util_err(ps->err, ps->errlen, CONFIG_EUSAGE,
                        "unrecognized option '%s'; did you mean '%s'? (see qilin --help)", flag,
                        hint);
    return util_err(ps->err, ps->errlen, CONFIG_EUSAGE,
                    "unrecognized option '%s' (see qilin --help)", flag);
}

static int
positional(struct pass *ps, const char *arg)
{
    if (ps->early)
        return 0;
    /* "--proxy-protocol v3 app:app": v3 was meant as the flag's value (but not
       "--proxy-protocol app:app extra": MODULE:CALLABLE is no value). */
    if (ps->app != NULL && ps->app == ps->after_bare && strchr(ps->app, ':') == NULL)
        return config_set(ps->cfg, ps->bare_opt->name, ps->app, ps->src, ps->bare_flag, ps->err,
                          ps->errlen);
    if (ps->app != NULL)
        return util_err(
            ps->err, ps->errlen, CONFIG_EUSAGE,
            "unexpected extra argument '%s' after APP_MODULE '%s' (give one application)", arg,
            ps->app);
    ps->app = arg;
    return config_set(ps->cfg, "wsgi_app", arg, ps->src, "APP_MODULE", ps->err, ps->errlen);
}

/* -h/--help and -v/--version are not options with values; the early scan reports them. */
static bool
builtin_flag(struct pass *ps, const char *flag)
{
    bool help = strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0;
    bool version = strcmp(flag, "-v") == 0 || strcmp(flag, "--version") == 0;

    if (ps->out != NULL) {
        ps->out->help |= help;
        ps->out->version |= version;
    }
    return help || version;
}

/* Applies one flag's VALUE (text as typed) unless the early scan is not interested. */
static int
apply(struct pass *ps, const struct qln_option *opt, const char *flag, const char *value)
{
    if (ps->early && !(opt->flags & QLN_OPT_EARLY))
        return 0;
    if (ps->out != NULL && strcmp(opt->name, "config") == 0)
        ps->out->config_file = value;
    if (opt->type == QLN_OPT_LIST) {
        list_collect(ps, opt, value, flag);
        return 0;
    }
    return config_set(ps->cfg, opt->name, value, ps->src, flag, ps->err, ps->errlen);
}

/*
 * Handles ARGV[*I], a flag: "--name=value", "--name value", "-xVALUE" or
 * "-x VALUE"; a BOOL takes no value (except "--name=yes" spelled out). A
 * flag that may stand alone (config_bare_value) takes the next word only
 * when it is one of its words: "--proxy-protocol app:app" serves app:app.
 */
static int
one_flag(struct pass *ps, int argc, char *const *argv, int *i)
{
    const char *arg = argv[*i], *attached = NULL, *value, *bare;
    const struct qln_option *opt;
    char flag[128];

    if (arg[1] == '-') {
        const char *eq = strchr(arg, '=');
        size_t len = eq != NULL ? (size_t)(eq - arg) : strlen(arg);

        snprintf(flag, sizeof(flag), "%.*s", (int)len, arg);
        attached = eq != NULL ? eq + 1 : NULL;
    } else {
        snprintf(flag, sizeof(flag), "%.2s", arg);
        attached = arg[2] != '\0' ? arg + 2 : NULL;
    }
    if (builtin_flag(ps, flag))
        return 0;
    opt = config_find_flag(ps->cfg, flag);
    if (opt == NULL)
        return ps->early ? 0 : unrecognized(ps, flag);
    if (opt->type == QLN_OPT_BOOL) {
        if (attached != NULL && (arg[1] != '-' || (opt->flags & QLN_OPT_NEGATE)))
            return util_err(ps->err, ps->errlen, CONFIG_EUSAGE, "option '%s' takes no value (got '%s')",
                            flag, attached);
        value = attached != NULL ? attached : (opt->flags & QLN_OPT_NEGATE) ? "false" : "true";
        return apply(ps, opt, flag, value);
    }
    bare = config_bare_value(opt);
    if (attached != NULL) {
        value = attached;
    } else if (bare != NULL && (*i + 1 == argc || !config_is_choice(opt, argv[*i + 1]))) {
        value = bare;
        ps->after_bare = *i + 1 < argc ? argv[*i + 1] : NULL;
        ps->bare_opt = opt;
        snprintf(ps->bare_flag, sizeof(ps->bare_flag), "%s", flag);
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        return util_err(ps->err, ps->errlen, CONFIG_EUSAGE, "option '%s' requires a value (%s %s)", flag,
                        flag, opt->metavar != NULL ? opt->metavar : "VALUE");
    }
    return apply(ps, opt, flag, value);
}

static int
run_pass(struct pass *ps, int argc, char *const *argv)
{
    bool only_positional = false;
    int rc = 0;

    for (int i = 1; i < argc && rc == 0; i++) {
        const char *arg = argv[i];

        if (!only_positional && strcmp(arg, "--") == 0)
            only_positional = true;
        else if (only_positional || arg[0] != '-' || arg[1] == '\0')
            rc = positional(ps, arg);
        else
            rc = one_flag(ps, argc, argv, &i);
    }
    if (rc == 0)
        rc = lists_apply(ps);
    pass_fini(ps);
    return rc;
}

int
cli_scan_early(struct config *cfg, int argc, char *const *argv, enum config_source src,
               struct cli_early *out, char *err, size_t errlen)
{
    struct pass ps = {
        .cfg = cfg,
        .src = src,
        .early = true,
        .out = out,
        .err = err,
        .errlen = errlen,
    };

    return run_pass(&ps, argc, argv);
}

int
cli_parse(struct config *cfg, int argc, char *const *argv, enum config_source src, char *err,
          size_t errlen)
{
    struct pass ps = {.cfg = cfg, .src = src, .err = err, .errlen = errlen};

    return run_pass(&ps, argc, argv);
}

/* ------------------------------------------------------------------------ */
/* $QILIN_CMD_ARGS                                                            */

struct word {
    char *buf;
    size_t len, cap;
};

static void
word_put(struct word *w, char c)
{
    if (w->len + 1 >= w->cap) {
        w->cap = w->cap ? w->cap * 2 : 32;
        w->buf = xrealloc(w->buf, w->cap);
    }
    w->buf[w->len++] = c;
    w->buf[w->len] = '\0';
}

/* Makes W a word even if empty: '' and "" are arguments of their own. */
static void
word_touch(struct word *w)
{
    if (w->buf == NULL) {
        w->cap = 32;
        w->buf = xcalloc(1, w->cap);
    }
}

static void
argv_push(char ***argv, int *argc, struct word *w)
{
    *argv = xrealloc(*argv, (size_t)(*argc + 2) * sizeof(**argv));
    (*argv)[(*argc)++] = w->buf != NULL ? w->buf : xstrdup("");
    (*argv)[*argc] = NULL;
    memset(w, 0, sizeof(*w));
}

/*
 * POSIX shell word splitting without expansions, as Python's shlex.split()
 * does it for gunicorn's $GUNICORN_CMD_ARGS: blanks separate words, single
 * quotes keep everything, double quotes keep everything but a backslash
 * before $ ` " \ or newline, and an unquoted backslash escapes any character.
 */
int
cli_split(const char *text, int *argc, char ***argv, char *err, size_t errlen)
{
    struct word w = {0};
    char **v = NULL;
    int n = 0;
    bool in_word = false;
    const char *p = text;

    w.buf = xstrdup("qilin");
    argv_push(&v, &n, &w);
    for (; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\t' || *p == '\n') {
            if (in_word)
                argv_push(&v, &n, &w);
            in_word = false;
            continue;
        }
        in_word = true;
        if (*p == '\\') {
            if (*++p == '\0')
                goto trailing_backslash;
            word_put(&w, *p);
        } else if (*p == '\'') {
            for (p++; *p != '\'' && *p != '\0'; p++)
                word_put(&w, *p);
            if (*p == '\0')
                goto unbalanced;
            word_touch(&w);
        } else if (*p == '"') {
            for (p++; *p != '"' && *p != '\0'; p++) {
                if (*p == '\\' && p[1] != '\0' && strchr("$`\"\\\n", p[1]) != NULL)
                    p++;
                word_put(&w, *p);
            }
            if (*p == '\0')
                goto unbalanced;
            word_touch(&w);
        } else {
            word_put(&w, *p);
        }
    }
    if (in_word)
        argv_push(&v, &n, &w);
    *argc = n;
    *argv = v;
    return 0;

unbalanced:
    util_err(err, errlen, CONFIG_EUSAGE, "unbalanced quote in '%s'", text);
    goto fail;
trailing_backslash:
    util_err(err, errlen, CONFIG_EUSAGE, "a backslash ends '%s' (escape it as \\\\)", text);
fail:
    free(w.buf);
    cli_argv_free(v);
    return CONFIG_EUSAGE;
}

void
cli_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **p = argv; *p != NULL; p++)
        free(*p);
    free(argv);
}

/* ------------------------------------------------------------------------ */
/* --help                                                                     */

/* The default as --help shows it, in gunicorn's (Python's) spelling. */
static void
format_default(const struct qln_option *o, char *buf, size_t len)
{
    const char *def = o->def;

    switch (o->type) {
    case QLN_OPT_BOOL:
        snprintf(buf, len, "%s",
                 def != NULL && (strcmp(def, "true") == 0 || strcmp(def, "1") == 0) ? "True"
                                                                                    : "False");
        break;
    case QLN_OPT_INT:
        snprintf(buf, len, "%s", def != NULL ? def : "0");
        break;
    case QLN_OPT_STRING:
        snprintf(buf, len, "%s", def != NULL ? def : "None");
        break;
    case QLN_OPT_LIST:
        if (def != NULL)
            snprintf(buf, len, "['%s']", def);
        else
            snprintf(buf, len, "[]");
        break;
    }
}

/* "-b ADDRESS, --bind ADDRESS" (argparse's spelling); a BOOL has no metavar, and a
   flag that may stand alone shows it in brackets: "--proxy-protocol [MODE]". */
static void
format_flags(const struct qln_option *o, char *buf, size_t len)
{
    const char *p = o->cli;
    bool bare = config_bare_value(o) != NULL;
    size_t used = 0;

    buf[0] = '\0';
    while (p != NULL && *p != '\0' && used < len) {
        const char *comma = strchr(p, ',');
        int flen = (int)(comma != NULL ? (size_t)(comma - p) : strlen(p));

        if (o->type == QLN_OPT_BOOL)
            used += (size_t)snprintf(buf + used, len - used, "%s%.*s", used ? ", " : "", flen, p);
        else
            used += (size_t)snprintf(buf + used, len - used, bare ? "%s%.*s [%s]" : "%s%.*s %s",
                                     used ? ", " : "", flen, p,
                                     o->metavar != NULL ? o->metavar : "VALUE");
        p = comma != NULL ? comma + 1 : NULL;
    }
}

/* Writes TEXT word-wrapped at HELP_WIDTH; the first line continues at column COL. */
static void
wrap(FILE *out, const char *text, int col)
{
    const char *p = text;

    while (*p != '\0') {
        size_t n = strcspn(p, " ");

        if (col > HELP_COLUMN && col + 1 + (int)n > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_COLUMN, "");
            col = HELP_COLUMN;
        } else if (col > HELP_COLUMN) {
            fputc(' ', out);
            col++;
        }
        fprintf(out, "%.*s", (int)n, p);
        col += (int)n;
        p += n;
        p += strspn(p, " ");
    }
    fputc('\n', out);
}

static void
help_entry(FILE *out, const char *flags, const char *text)
{
    int col = fprintf(out, "  %s", flags);

    if (col + 2 > HELP_COLUMN) {
        fprintf(out, "\n%*s", HELP_COLUMN, "");
    } else {
        fprintf(out, "%*s", HELP_COLUMN - col, "");
    }
    wrap(out, text, HELP_COLUMN);
}

static void
help_option(FILE *out, const struct qln_option *o)
{
    char flags[256], def[160], text[640];

    format_flags(o, flags, sizeof(flags));
    format_default(o, def, sizeof(def));
    snprintf(text, sizeof(text), "%s [%s]", o->help != NULL ? o->help : "", def);
    help_entry(out, flags, text);
}

static bool
same_section(const char *a, const char *b)
{
    return strcmp(a != NULL ? a : "Other", b != NULL ? b : "Other") == 0;
}

/* True when an option before index I already opened SECTION. */
static bool
section_seen(const struct config *cfg, size_t i, const char *section)
{
    for (size_t k = 0; k < i; k++) {
        const struct qln_option *o = config_option_at(cfg, k, NULL);

        if (!(o->flags & QLN_OPT_INTERNAL) && o->cli != NULL && same_section(o->section, section))
            return true;
    }
    return false;
}

void
cli_help(const struct config *cfg, FILE *out)
{
    const struct qln_option *o;

    fputs("usage: qilin [OPTIONS] [APP_MODULE]\n\n", out);
    fputs("positional arguments:\n", out);
    help_entry(out, "APP_MODULE",
               "The application to serve, MODULE:CALLABLE (the callable"
               " defaults to 'application').");
    fputs("\noptions:\n", out);
    help_entry(out, "-h, --help", "Show this help message and exit.");
    help_entry(out, "-v, --version", "Show the version and exit.");
    /* Sections in the order they first appear: the core registers first, then each plugin. */
    for (size_t i = 0; (o = config_option_at(cfg, i, NULL)) != NULL; i++) {
        const struct qln_option *m;

        if ((o->flags & QLN_OPT_INTERNAL) || o->cli == NULL || section_seen(cfg, i, o->section))
            continue;
        fprintf(out, "\n%s:\n", o->section != NULL ? o->section : "Other");
        for (size_t k = i; (m = config_option_at(cfg, k, NULL)) != NULL; k++) {
            if (!(m->flags & QLN_OPT_INTERNAL) && m->cli != NULL &&
                same_section(m->section, o->section))
                help_option(out, m);
        }
    }
}
