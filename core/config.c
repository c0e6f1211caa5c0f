/*
 * The option registry: typed values with their source, precedence between
 * defaults, config file, $QILIN_CMD_ARGS and the command line, settings kept
 * pending until a plugin registers them, and --print-config. Master builds
 * it; workers inherit it across fork and only read it.
 */
#include "qlnconfig.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <qilin/log.h>
#include <qilin/option.h>

#include "config.h"
#include "control_cmd.h"
#include "log.h"
#include "util.h"

/* One registered option and its effective value. */
struct entry {
    const struct qln_option *opt;
    char *owner;            /* owned copy of the registrant's name ("core", a plugin) */
    enum config_source src; /* where the current value came from */
    bool b;
    int64_t i;
    char *s;      /* STRING: owned, NULL when unset */
    char **items; /* LIST: owned items */
    size_t n, cap;
};

enum pending_kind { PEND_TEXT, PEND_BOOL, PEND_INT, PEND_LIST };

/* A setting whose name nobody has registered yet (config_set_lenient). */
struct pending {
    char *name;
    enum pending_kind kind;
    char *text;   /* PEND_TEXT */
    bool b;       /* PEND_BOOL */
    int64_t i;    /* PEND_INT */
    char **items; /* PEND_LIST */
    size_t n;
    enum config_source src;
    char *origin;
    bool optional; /* QLN_CFG_OPTIONAL: still unknown on resolve is a warning */
};

struct config {
    struct entry *ents;
    size_t n, cap;
    struct pending *pend;
    size_t npend, pcap;
    bool lenient;
};

/*
 * Defaults gunicorn takes from the environment ($PORT for the bind address
 * that Heroku-style platforms hand out, $WEB_CONCURRENCY for the worker
 * count). They apply at CONFIG_SRC_DEFAULT, only to the core's own options.
 * Read-only table, master only.
 */
static const struct {
    const char *option;
    const char *env;
    const char *format; /* "%s" is the variable's value */
} env_defaults[] = {
    {"bind", "PORT", "0.0.0.0:%s"},
    {"workers", "WEB_CONCURRENCY", "%s"},
};

/*
 * INT options of the core that are file modes: their text is always octal,
 * as chmod(1) writes it ("600", "0600", "0o600"), where gunicorn's auto_int
 * reads "0600" as octal but "600" as decimal. Numbers from a config file are
 * taken as they are (Lua's 384, gunicorn.conf.py's 0o600). Read-only, master.
 */
static const char *const octal_options[] = {"control_socket_mode"};
/* INT options read as gunicorn's auto_int: a leading 0 followed by a digit
   is octal ("022"), as a shell's umask is written; else as parse_int. */
static const char *const auto_octal_options[] = {"umask"};

/*
 * STRING options of the core restricted to a set of words (matched without
 * case). Kept here rather than in struct qln_option: plugins hand their
 * option tables over as bare arrays built against the installed header, so
 * that struct cannot grow (DESIGN.md, Plugin ABI).
 *
 * BARE lets the CLI flag stand alone: the flag by itself means BARE, and the
 * next word is its value only when it is one of WORDS (or a boolean word
 * where booleans are allowed); anything else stays the APP_MODULE or the next
 * flag. IF_TRUE/IF_FALSE let a boolean set the option: a config file's
 * true/false (Lua) or True/False (gunicorn.conf.py), or the words
 * true/yes/on/1 and false/no/off/0 as typed.
 */
static const struct {
    const char *option;
    const char *words[8];
    const char *bare;               /* NULL: the flag needs a value */
    const char *if_true, *if_false; /* NULL: no booleans */
} choices[] = {
    /* gunicorn's --proxy-protocol is a switch: a v1 header when one comes from an
       allowed peer, plain HTTP otherwise. That is "auto" (which also knows v2);
       "v1" would refuse the plain requests gunicorn serves, health checks included. */
    {"proxy_protocol", {"off", "v1", "v2", "auto", NULL}, "auto", "auto", "off"},
};

/* Flags the command line handles itself; no option may claim them. */
static const char *const reserved_flags[] = {"-h", "--help", "-v", "--version"};

/* ------------------------------------------------------------------------ */
/* Lookup and suggestions                                                     */

static struct entry *
find_entry(const struct config *cfg, const char *name)
{
    for (size_t k = 0; k < cfg->n; k++) {
        if (strcmp(cfg->ents[k].opt->name, name) == 0)
            return &cfg->ents[k];
    }
    return NULL;
}

/*
 * Calls FN for each comma-separated flag in CLI ("-b,--bind"); stops and
 * returns true as soon as FN does.
 */
static bool
each_flag(const char *cli, bool (*fn)(const char *flag, size_t len, void *arg), void *arg)
{
    const char *p = cli;

    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);

        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        if (len > 0 && fn(p, len, arg))
            return true;
        p = comma != NULL ? comma + 1 : NULL;
    }
    return false;
}

static bool
flag_equals(const char *flag, size_t len, void *arg)
{
    const char *want = arg;

    return strlen(want) == len && memcmp(flag, want, len) == 0;
}

const struct qln_option *
config_find(const struct config *cfg, const char *name)
{
    struct entry *e = find_entry(cfg, name);

    return e != NULL ? e->opt : NULL;
}

const struct qln_option *
config_find_flag(const struct config *cfg, const char *flag)
{
    for (size_t k = 0; k < cfg->n; k++) {
        const struct qln_option *o = cfg->ents[k].opt;

        if (o->cli != NULL && each_flag(o->cli, flag_equals, (void *)flag))
            return o;
    }
    return NULL;
}

/* Levenshtein distance, two rows; names are short. */
static size_t
edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    size_t *prev = xcalloc(lb + 1, sizeof(*prev));
    size_t *cur = xcalloc(lb + 1, sizeof(*cur));
    size_t d;

    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1;
            size_t ins = cur[j - 1] + 1;

            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof(*prev));
    }
    d = prev[lb];
    free(prev);
    free(cur);
    return d;
}

/*
 * A typo is close when it differs by at most a third of its length (at least
 * 1, at most 3). Two characters ("-Z") are too short to guess from: every
 * short flag is one edit away from every other.
 */
static size_t
close_enough(size_t len)
{
    size_t limit = len / 3;

    if (len < 3)
        return 0;
    return limit < 1 ? 1 : (limit > 3 ? 3 : limit);
}

struct suggest {
    const char *word;
    size_t wlen;
    const char *best;
    size_t best_len;
    size_t best_dist;
};

static void
suggest_consider(struct suggest *s, const char *cand, size_t len)
{
    size_t d = edit_distance(s->word, s->wlen, cand, len);
    size_t shorter = len < s->wlen ? len : s->wlen;

    /* A truncated name ("preload" for "preload_app") is as good as a one-letter typo. */
    if (shorter >= 4 && strncmp(s->word, cand, shorter) == 0 && d > 1)
        d = 1;

    if (d <= close_enough(s->wlen) && d < s->best_dist) {
        s->best = cand;
        s->best_len = len;
        s->best_dist = d;
    }
}

static bool
suggest_flag(const char *flag, size_t len, void *arg)
{
    suggest_consider(arg, flag, len);
    return false;
}

size_t
config_suggest(const struct config *cfg, const char *word, bool flags, char *buf, size_t len)
{
    struct suggest s = {.word = word, .wlen = strlen(word), .best_dist = SIZE_MAX};

    for (size_t k = 0; k < cfg->n; k++) {
        const struct qln_option *o = cfg->ents[k].opt;

        if (flags) {
            if (o->cli != NULL)
                each_flag(o->cli, suggest_flag, &s);
        } else {
            suggest_consider(&s, o->name, strlen(o->name));
        }
    }
    if (s.best == NULL || len == 0)
        return 0;
    snprintf(buf, len, "%.*s", (int)s.best_len, s.best);
    return s.best_len;
}

/* ------------------------------------------------------------------------ */
/* Parsing values                                                             */

static const char *
type_noun(enum qln_opt_type t)
{
    switch (t) {
    case QLN_OPT_BOOL:
        return "a boolean";
    case QLN_OPT_INT:
        return "an integer";
    case QLN_OPT_STRING:
        return "a string";
    case QLN_OPT_LIST:
        return "a string or a list of strings";
    }
    return "a value";
}

static int
parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t k = 0; k < ARRAY_SIZE(yes); k++) {
        if (strcasecmp(text, yes[k]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[k]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Decimal, 0x.. hexadecimal or 0o.. octal (Python's spelling, as gunicorn's umask), signed. */
static int
parse_int(const char *text, int64_t *out)
{
    const char *p = text;
    bool neg = false;
    int base = 10;
    uint64_t mag;
    char *end;

    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    }
    /* strtoull would accept its own sign and leading blanks; we allow neither here. */
    if (!isxdigit((unsigned char)*p))
        return -EINVAL;
    errno = 0;
    mag = strtoull(p, &end, base);
    if (end == p || *end != '\0')
        return -EINVAL;
    if (errno == ERANGE || mag > (uint64_t)INT64_MAX + neg)
        return -ERANGE;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return 0;
}

static bool
in_names(const char *const *names, size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++) {
        if (strcmp(names[k], name) == 0)
            return true;
    }
    return false;
}

static bool
is_octal(const struct qln_option *o)
{
    return in_names(octal_options, ARRAY_SIZE(octal_options), o->name);
}

/* TEXT is "0" and more digits for an option read as gunicorn's auto_int. */
static bool
is_auto_octal(const struct qln_option *o, const char *text)
{
    return text[0] == '0' && isdigit((unsigned char)text[1]) &&
           in_names(auto_octal_options, ARRAY_SIZE(auto_octal_options), o->name);
}

/* A file mode: octal digits with an optional 0o prefix, at most 0777. */
static int
parse_mode(const char *text, int64_t *out)
{
    const char *p = text;
    int64_t v = 0;

    if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        p += 2;
    if (*p == '\0')
        return -EINVAL;
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '7' || v > 0777)
            return -EINVAL;
        v = v * 8 + (*p - '0');
    }
    if (v > 0777)
        return -EINVAL;
    *out = v;
    return 0;
}

/*
 * The bounds of an INT option. Both 0 means unbounded; a max of 0 with a
 * non-zero min means "at least min" (the natural way to write workers >= 1).
 */
static void
int_bounds(const struct qln_option *o, int64_t *lo, int64_t *hi)
{
    *lo = o->min;
    *hi = o->max;
    if (o->max == 0) {
        *hi = INT64_MAX;
        if (o->min == 0)
            *lo = INT64_MIN;
    }
}

static void
describe_bounds(const struct qln_option *o, char *buf, size_t len)
{
    int64_t lo, hi;

    int_bounds(o, &lo, &hi);
    /* A cap at INT32_MAX only keeps seconds and counts in an int; users need not read it. */
    if (lo == INT64_MIN && hi >= INT32_MAX)
        snprintf(buf, len, "a number");
    else if (hi >= INT32_MAX)
        snprintf(buf, len, "a number >= %" PRId64, lo);
    else if (lo == INT64_MIN)
        snprintf(buf, len, "a number <= %" PRId64, hi);
    else
        snprintf(buf, len, "a number between %" PRId64 " and %" PRId64, lo, hi);
}

/*
 * The start of every error about option O set from ORIGIN. When ORIGIN is a
 * flag ("--workers", "$QILIN_CMD_ARGS: --workers") it already names the
 * option; a file position ("qilin.conf.lua:3") gets the setting's name added.
 */
static void
error_prefix(const struct qln_option *o, const char *origin, char *buf, size_t len)
{
    const char *last = origin != NULL ? strrchr(origin, ' ') : NULL;

    last = last != NULL ? last + 1 : origin;
    if (origin == NULL || *origin == '\0')
        snprintf(buf, len, "setting '%s'", o->name);
    else if (last[0] == '-')
        snprintf(buf, len, "%s", origin);
    else
        snprintf(buf, len, "%s: setting '%s'", origin, o->name);
}

static int
check_int(const struct qln_option *o, int64_t v, const char *pfx, char *err, size_t errlen)
{
    int64_t lo, hi;
    char want[96];

    int_bounds(o, &lo, &hi);
    if (v >= lo && v <= hi)
        return 0;
    describe_bounds(o, want, sizeof(want));
    return util_err(err, errlen, -EINVAL, "%s: %" PRId64 " is out of range (expected %s)", pfx, v,
                    want);
}

/* O's row in choices[], or -1 when O takes any text. */
static int
choice_index(const struct qln_option *o)
{
    for (size_t k = 0; k < ARRAY_SIZE(choices); k++) {
        if (o->type == QLN_OPT_STRING && strcmp(choices[k].option, o->name) == 0)
            return (int)k;
    }
    return -1;
}

/* The canonical word TEXT stands for in word list K (a boolean word too), or NULL. */
static const char *
choice_match(size_t k, const char *text)
{
    const char *const *w = choices[k].words;
    bool b;

    for (size_t j = 0; w[j] != NULL; j++) {
        if (strcasecmp(w[j], text) == 0)
            return w[j];
    }
    if (choices[k].if_true != NULL && parse_bool(text, &b) == 0)
        return b ? choices[k].if_true : choices[k].if_false;
    return NULL;
}

/* Checks a STRING against its word list, if it has one; returns the canonical word or TEXT. */
static int
check_choice(const struct qln_option *o, const char *text, const char *pfx, const char **out,
             char *err, size_t errlen)
{
    int k = choice_index(o);
    char want[160];
    size_t used = 0;

    *out = text;
    if (k < 0)
        return 0;
    *out = choice_match((size_t)k, text);
    if (*out != NULL)
        return 0;
    for (size_t j = 0; choices[k].words[j] != NULL; j++)
        used += (size_t)snprintf(want + used, used < sizeof(want) ? sizeof(want) - used : 0, "%s%s",
                                 j > 0 ? ", " : "", choices[k].words[j]);
    return util_err(err, errlen, CONFIG_EUSAGE, "%s: invalid value '%s' (expected one of: %s%s)",
                    pfx, text, want, choices[k].if_true != NULL ? "; or true, false" : "");
}

const char *
config_bare_value(const struct qln_option *o)
{
    int k = choice_index(o);

    return k >= 0 ? choices[k].bare : NULL;
}

bool
config_accepts_bool(const struct qln_option *o)
{
    int k = choice_index(o);

    return k >= 0 && choices[k].if_true != NULL;
}

bool
config_is_choice(const struct qln_option *o, const char *word)
{
    int k = choice_index(o);

    return k >= 0 && choice_match((size_t)k, word) != NULL;
}

/* ------------------------------------------------------------------------ */
/* Storing values                                                             */

static void
list_clear(struct entry *e)
{
    for (size_t k = 0; k < e->n; k++)
        free(e->items[k]);
    e->n = 0;
}

static void
list_append(struct entry *e, const char *item)
{
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
    }
    e->items[e->n++] = xstrdup(item);
}

static void
entry_fini(struct entry *e)
{
    list_clear(e);
    free(e->items);
    free(e->s);
    free(e->owner);
}

/*
 * Whether a value from SRC may replace the current one: a higher source
 * always wins, the same source overrides (a LIST appends instead), and a
 * lower source is ignored.
 */
static bool
source_wins(struct entry *e, enum config_source src)
{
    if (src < e->src)
        return false;
    if (e->opt->type == QLN_OPT_LIST && src > e->src)
        list_clear(e);
    e->src = src;
    return true;
}

/* Sets E from TEXT as typed by a user; validation first, so a bad value is an error everywhere. */
static int
entry_set_text(struct entry *e, const char *text, enum config_source src, const char *origin,
               char *err, size_t errlen)
{
    const struct qln_option *o = e->opt;
    char pfx[256], want[96];
    const char *word;
    bool b;
    int64_t i;
    int rc;

    error_prefix(o, origin, pfx, sizeof(pfx));
    switch (o->type) {
    case QLN_OPT_BOOL:
        if (parse_bool(text, &b) < 0)
            return util_err(err, errlen, CONFIG_EUSAGE,
                            "%s: invalid boolean '%s' (expected true or false)", pfx, text);
        if (source_wins(e, src))
            e->b = b;
        return 0;
    case QLN_OPT_INT:
        if (is_octal(o) && parse_mode(text, &i) < 0)
            return util_err(err, errlen, CONFIG_EUSAGE,
                            "%s: invalid mode '%s' (expected octal permission bits from 0 to"
                            " 0777, e.g. 0600 or 0660)",
                            pfx, text);
        rc = is_octal(o) ? 0 : is_auto_octal(o, text) ? parse_mode(text, &i) : parse_int(text, &i);
        if (rc < 0) {
            describe_bounds(o, want, sizeof(want));
            return util_err(err, errlen, CONFIG_EUSAGE, "%s: invalid integer '%s' (expected %s)",
                            pfx, text, want);
        }
        rc = check_int(o, i, pfx, err, errlen);
        if (rc == 0 && source_wins(e, src))
            e->i = i;
        return rc;
    case QLN_OPT_STRING:
        rc = check_choice(o, text, pfx, &word, err, errlen);
        if (rc == 0 && source_wins(e, src)) {
            free(e->s);
            e->s = xstrdup(word);
        }
        return rc;
    case QLN_OPT_LIST:
        if (source_wins(e, src))
            list_append(e, text);
        return 0;
    }
    qln_unreachable();
}

static int
wrong_type(const struct entry *e, const char *got, const char *origin, char *err, size_t errlen)
{
    char pfx[256];

    error_prefix(e->opt, origin, pfx, sizeof(pfx));
    return util_err(err, errlen, -EINVAL, "%s must be %s, got %s", pfx, type_noun(e->opt->type),
                    got);
}

/* ------------------------------------------------------------------------ */
/* Pending settings and unknown names                                         */

/*
 * gunicorn settings that qilin refuses instead of ignoring them, since
 * running without them would be less safe than the user asked: the
 * ssl_context hook (a Python SSLContext, which the C core cannot use, so
 * TLS would run without what it configures) and secure_scheme_headers
 * (other headers trusted than configured). No plugin provides them.
 * Read-only; master.
 */
static const struct {
    const char *name, *why;
} refused_settings[] = {
    {"secure_scheme_headers",
     "qilin trusts gunicorn's default set (X-Forwarded-Protocol: ssl, X-Forwarded-Proto: https,"
     " X-Forwarded-Ssl: on) from --forwarded-allow-ips peers and cannot change it; remove the"
     " setting to use that set"},
    {"ssl_context",
     "qilin builds its TLS context in C and cannot call this hook, whose SSLContext is Python's:"
     " set the same with --ciphers, --ssl-ciphersuites, --ssl-min-version, --ssl-ecdh-curve,"
     " --ca-certs and --cert-reqs, and remove the hook"},
};

const char *
config_refused(const char *word)
{
    char name[64];
    size_t i;

    /* A flag ("--certfile") or a setting's name ("certfile"). */
    while (*word == '-')
        word++;
    for (i = 0; word[i] != '\0' && word[i] != '=' && i < sizeof(name) - 1; i++)
        name[i] = word[i] == '-' ? '_' : word[i];
    name[i] = '\0';
    for (i = 0; i < ARRAY_SIZE(refused_settings); i++) {
        if (strcmp(name, refused_settings[i].name) == 0)
            return refused_settings[i].why;
    }
    return NULL;
}

static int
refused_setting(const char *name, const char *origin, char *err, size_t errlen)
{
    const char *why = config_refused(name);

    if (why == NULL)
        return 0;
    return util_err(err, errlen, -EINVAL, "%s%ssetting '%s': %s", origin ? origin : "",
                    origin ? ": " : "", name, why);
}

static int
unknown_setting(const struct config *cfg, const char *name, const char *origin, char *err,
                size_t errlen)
{
    char hint[128];

    if (config_refused(name) != NULL)
        return refused_setting(name, origin, err, errlen);
    if (config_suggest(cfg, name, false, hint, sizeof(hint)) > 0)
        return util_err(err, errlen, -ENOENT, "%s%sunknown setting '%s'; did you mean '%s'?",
                        origin ? origin : "", origin ? ": " : "", name, hint);
    return util_err(err, errlen, -ENOENT, "%s%sunknown setting '%s'", origin ? origin : "",
                    origin ? ": " : "", name);
}

static struct pending *
pending_add(struct config *cfg, const char *name, enum pending_kind kind, enum config_source src,
            const char *origin)
{
    struct pending *p;

    if (cfg->npend == cfg->pcap) {
        cfg->pcap = cfg->pcap ? cfg->pcap * 2 : 8;
        cfg->pend = xrealloc(cfg->pend, cfg->pcap * sizeof(*cfg->pend));
    }
    p = &cfg->pend[cfg->npend++];
    memset(p, 0, sizeof(*p));
    p->name = xstrdup(name);
    p->kind = kind;
    p->src = src;
    p->origin = origin != NULL ? xstrdup(origin) : NULL;
    return p;
}

static void
pending_fini(struct pending *p)
{
    free(p->name);
    free(p->text);
    for (size_t k = 0; k < p->n; k++)
        free(p->items[k]);
    free(p->items);
    free(p->origin);
}

static void
pending_clear(struct config *cfg)
{
    for (size_t k = 0; k < cfg->npend; k++)
        pending_fini(&cfg->pend[k]);
    cfg->npend = 0;
}

void
config_set_lenient(struct config *cfg, bool on)
{
    cfg->lenient = on;
}

/* A QLN_CFG_OPTIONAL setting nobody registered: one warning, then it is ignored. */
static void
unsupported_setting(const char *name, const char *origin)
{
    qln_log(QLN_LOG_WARNING, "%s%ssetting '%s' is not supported by qilin; ignored",
            origin ? origin : "", origin ? ": " : "", name);
}

/*
 * Applies pending items in the order they were set, so a LIST repeated in
 * one source still appends, and the source rules decide as if the item had
 * been known all along.
 */
int
config_resolve_pending(struct config *cfg, char *err, size_t errlen)
{
    bool lenient = cfg->lenient;
    int rc = 0;

    cfg->lenient = false;
    for (size_t k = 0; k < cfg->npend && rc == 0; k++) {
        struct pending *p = &cfg->pend[k];

        if (p->optional && find_entry(cfg, p->name) == NULL) {
            unsupported_setting(p->name, p->origin);
            continue;
        }
        switch (p->kind) {
        case PEND_TEXT:
            rc = config_set(cfg, p->name, p->text, p->src, p->origin, err, errlen);
            break;
        case PEND_BOOL:
            rc = config_set_bool(cfg, p->name, p->b, p->src, p->origin, err, errlen);
            break;
        case PEND_INT:
            rc = config_set_int(cfg, p->name, p->i, p->src, p->origin, err, errlen);
            break;
        case PEND_LIST:
            rc = config_set_list(cfg, p->name, (const char *const *)p->items, p->n, p->src,
                                 p->origin, err, errlen);
            break;
        }
    }
    pending_clear(cfg);
    cfg->lenient = lenient;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Setters                                                                    */

int
config_set(struct config *cfg, const char *name, const char *value, enum config_source src,
           const char *origin, char *err, size_t errlen)
{
    struct entry *e = find_entry(cfg, name);

    if (e == NULL) {
        if (!cfg->lenient || config_refused(name))
            return unknown_setting(cfg, name, origin, err, errlen);
        pending_add(cfg, name, PEND_TEXT, src, origin)->text = xstrdup(value);
        return 0;
    }
    return entry_set_text(e, value, src, origin, err, errlen);
}

int
config_set_bool(struct config *cfg, const char *name, bool v, enum config_source src,
                const char *origin, char *err, size_t errlen)
{
    struct entry *e = find_entry(cfg, name);

    if (e == NULL) {
        if (!cfg->lenient || config_refused(name))
            return unknown_setting(cfg, name, origin, err, errlen);
        pending_add(cfg, name, PEND_BOOL, src, origin)->b = v;
        return 0;
    }
    if (e->opt->type == QLN_OPT_STRING && config_accepts_bool(e->opt))
        return entry_set_text(e, v ? "true" : "false", src, origin, err, errlen);
    if (e->opt->type != QLN_OPT_BOOL)
        return wrong_type(e, "a boolean", origin, err, errlen);
    if (source_wins(e, src))
        e->b = v;
    return 0;
}

int
config_set_int(struct config *cfg, const char *name, int64_t v, enum config_source src,
               const char *origin, char *err, size_t errlen)
{
    struct entry *e = find_entry(cfg, name);
    char pfx[256];
    int rc;

    if (e == NULL) {
        if (!cfg->lenient || config_refused(name))
            return unknown_setting(cfg, name, origin, err, errlen);
        pending_add(cfg, name, PEND_INT, src, origin)->i = v;
        return 0;
    }
    if (e->opt->type != QLN_OPT_INT)
        return wrong_type(e, "an integer", origin, err, errlen);
    error_prefix(e->opt, origin, pfx, sizeof(pfx));
    rc = check_int(e->opt, v, pfx, err, errlen);
    if (rc == 0 && source_wins(e, src))
        e->i = v;
    return rc;
}

int
config_set_list(struct config *cfg, const char *name, const char *const *items, size_t n,
                enum config_source src, const char *origin, char *err, size_t errlen)
{
    struct entry *e = find_entry(cfg, name);
    struct pending *p;

    if (e == NULL) {
        if (!cfg->lenient || config_refused(name))
            return unknown_setting(cfg, name, origin, err, errlen);
        p = pending_add(cfg, name, PEND_LIST, src, origin);
        p->items = xcalloc(n ? n : 1, sizeof(*p->items));
        for (p->n = 0; p->n < n; p->n++)
            p->items[p->n] = xstrdup(items[p->n]);
        return 0;
    }
    if (e->opt->type != QLN_OPT_LIST)
        return wrong_type(e, "a list", origin, err, errlen);
    if (src < e->src)
        return 0;
    /* A whole list replaces whatever was there, even from the same source. */
    list_clear(e);
    e->src = src;
    for (size_t k = 0; k < n; k++)
        list_append(e, items[k]);
    return 0;
}

int
config_set_value(struct config *cfg, const char *name, const struct qln_cfg_value *v,
                 uint32_t flags, enum config_source src, const char *origin, char *err,
                 size_t errlen)
{
    size_t npend = cfg->npend;
    int rc;

    if (find_entry(cfg, name) == NULL && config_refused(name))
        return refused_setting(name, origin, err, errlen);
    if ((flags & QLN_CFG_OPTIONAL) && !cfg->lenient && find_entry(cfg, name) == NULL) {
        unsupported_setting(name, origin);
        return 0;
    }
    switch (v->type) {
    case QLN_OPT_BOOL:
        rc = config_set_bool(cfg, name, v->b, src, origin, err, errlen);
        break;
    case QLN_OPT_INT:
        rc = config_set_int(cfg, name, v->i, src, origin, err, errlen);
        break;
    case QLN_OPT_STRING:
        rc = config_set(cfg, name, v->s, src, origin, err, errlen);
        break;
    case QLN_OPT_LIST:
        rc = config_set_list(cfg, name, v->items, v->n, src, origin, err, errlen);
        break;
    default:
        return util_err(err, errlen, -EINVAL, "%s: setting '%s': bad value type %d", origin, name,
                        (int)v->type);
    }
    if (rc == 0 && cfg->npend > npend)
        cfg->pend[npend].optional = (flags & QLN_CFG_OPTIONAL) != 0;
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Registration                                                               */

struct flag_check {
    const struct config *cfg;
    const struct qln_option *table; /* the rows being registered */
    size_t row;                     /* index of the row whose flags are checked */
    const char *owner;
    char *err;
    size_t errlen;
    int rc;
};

static bool
flag_well_formed(const char *flag, size_t len)
{
    size_t start = len > 2 && flag[1] == '-' ? 2 : 1;

    if (len < 2 || flag[0] != '-' || (start == 1 && len != 2))
        return false;
    for (size_t k = start; k < len; k++) {
        if (!isalnum((unsigned char)flag[k]) && flag[k] != '-' && flag[k] != '_')
            return false;
    }
    return true;
}

/* Checks one flag of row FC->row against the registry, the reserved flags and earlier rows. */
static bool
flag_conflicts(const char *flag, size_t len, void *arg)
{
    struct flag_check *fc = arg;
    const struct qln_option *o = &fc->table[fc->row];
    char f[64];
    const struct qln_option *other;

    if (!flag_well_formed(flag, len) || len >= sizeof(f)) {
        fc->rc = util_err(fc->err, fc->errlen, -EINVAL,
                          "option '%s' (%s): malformed flag '%.*s' (expected -x or --name)",
                          o->name, fc->owner, (int)len, flag);
        return true;
    }
    snprintf(f, sizeof(f), "%.*s", (int)len, flag);
    for (size_t k = 0; k < ARRAY_SIZE(reserved_flags); k++) {
        if (strcmp(f, reserved_flags[k]) == 0) {
            fc->rc = util_err(fc->err, fc->errlen, -EEXIST,
                              "option '%s' (%s): flag '%s' is reserved by qilin itself", o->name,
                              fc->owner, f);
            return true;
        }
    }
    other = config_find_flag(fc->cfg, f);
    if (other != NULL) {
        const char *owner = "?";

        for (size_t k = 0; k < fc->cfg->n; k++) {
            if (fc->cfg->ents[k].opt == other)
                owner = fc->cfg->ents[k].owner;
        }
        fc->rc = util_err(fc->err, fc->errlen, -EEXIST,
                          "option '%s' (%s): flag '%s' is already used by option '%s' (%s)",
                          o->name, fc->owner, f, other->name, owner);
        return true;
    }
    for (size_t r = 0; r < fc->row; r++) {
        if (fc->table[r].cli != NULL && each_flag(fc->table[r].cli, flag_equals, f)) {
            fc->rc = util_err(fc->err, fc->errlen, -EEXIST,
                              "option '%s' (%s): flag '%s' is already used by option '%s' (%s)",
                              o->name, fc->owner, f, fc->table[r].name, fc->owner);
            return true;
        }
    }
    return false;
}

static bool
name_well_formed(const char *name)
{
    if (name[0] == '\0' || isdigit((unsigned char)name[0]))
        return false;
    for (const char *p = name; *p != '\0'; p++) {
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    }
    return true;
}

/* Validates row R of OPTS (shape, unique name and flags) before anything is registered. */
static int
check_row(const struct config *cfg, const struct qln_option *opts, size_t r, const char *owner,
          char *err, size_t errlen)
{
    const struct qln_option *o = &opts[r];
    struct flag_check fc = {cfg, opts, r, owner, err, errlen, 0};
    struct entry *dup;

    if (!name_well_formed(o->name))
        return util_err(err, errlen, -EINVAL, "option '%s' (%s): name must be snake_case", o->name,
                        owner);
    if (o->type < QLN_OPT_BOOL || o->type > QLN_OPT_LIST)
        return util_err(err, errlen, -EINVAL, "option '%s' (%s): unknown type %d", o->name, owner,
                        (int)o->type);
    if (o->type == QLN_OPT_INT && o->max != 0 && o->max < o->min)
        return util_err(err, errlen, -EINVAL, "option '%s' (%s): max %" PRId64 " < min %" PRId64,
                        o->name, owner, o->max, o->min);
    dup = find_entry(cfg, o->name);
    if (dup != NULL)
        return util_err(err, errlen, -EEXIST, "option '%s' (%s) is already defined by '%s'",
                        o->name, owner, dup->owner);
    for (size_t k = 0; k < r; k++) {
        if (strcmp(opts[k].name, o->name) == 0)
            return util_err(err, errlen, -EEXIST, "option '%s' (%s) is defined twice", o->name,
                            owner);
    }
    if (o->cli != NULL && each_flag(o->cli, flag_conflicts, &fc))
        return fc.rc;
    return 0;
}

/* Applies the default of E: the row's text, or for the core the environment's (env_defaults). */
static int
apply_default(struct entry *e, const char *owner, char *err, size_t errlen)
{
    const char *def = e->opt->def;
    const char *origin = NULL;
    char buf[256], where[64], msg[512];
    int rc;

    for (size_t k = 0; k < ARRAY_SIZE(env_defaults) && strcmp(owner, "core") == 0; k++) {
        const char *v = getenv(env_defaults[k].env);

        if (strcmp(env_defaults[k].option, e->opt->name) != 0 || v == NULL || *v == '\0')
            continue;
        /* The format is one of the literals above, with exactly one %s. */
        snprintf(buf, sizeof(buf), env_defaults[k].format, v);
        snprintf(where, sizeof(where), "$%s", env_defaults[k].env);
        def = buf;
        origin = where;
    }
    /* gunicorn computes control_socket's default from $XDG_RUNTIME_DIR or
       $HOME; so does qilin, so that --print-config shows the real path. */
    if (def == NULL && strcmp(owner, "core") == 0 && strcmp(e->opt->name, "control_socket") == 0 &&
        control_default_path(buf, sizeof(buf)) == 0)
        def = buf;
    if (def == NULL)
        return 0;
    rc = entry_set_text(e, def, CONFIG_SRC_DEFAULT, origin, msg, sizeof(msg));
    if (rc < 0 && origin != NULL)
        return util_err(err, errlen, rc, "%s; fix or unset the environment variable", msg);
    if (rc < 0) /* the plugin's mistake, not the command line's */
        return util_err(err, errlen, -EINVAL, "option table of '%s': bad default for %s", owner,
                        msg);
    return 0;
}

int
config_register(struct config *cfg, const struct qln_option *opts, const char *owner, char *err,
                size_t errlen)
{
    size_t first = cfg->n, count = 0;
    int rc;

    for (; opts[count].name != NULL; count++) {
        rc = check_row(cfg, opts, count, owner, err, errlen);
        if (rc < 0)
            return rc;
    }
    if (cfg->n + count > cfg->cap) {
        cfg->cap = cfg->n + count + 16;
        cfg->ents = xrealloc(cfg->ents, cfg->cap * sizeof(*cfg->ents));
    }
    for (size_t r = 0; r < count; r++) {
        struct entry *e = &cfg->ents[cfg->n++];

        memset(e, 0, sizeof(*e));
        e->opt = &opts[r];
        e->owner = xstrdup(owner);
        rc = apply_default(e, owner, err, errlen);
        if (rc < 0)
            goto fail;
    }
    return 0;

fail:
    /* All or nothing: a table with a bad default registers none of its rows. */
    while (cfg->n > first)
        entry_fini(&cfg->ents[--cfg->n]);
    return rc;
}

struct config *
config_new(void)
{
    return xcalloc(1, sizeof(struct config));
}

void
config_free(struct config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t k = 0; k < cfg->n; k++)
        entry_fini(&cfg->ents[k]);
    free(cfg->ents);
    pending_clear(cfg);
    free(cfg->pend);
    free(cfg);
}

const struct qln_option *
config_option_at(const struct config *cfg, size_t i, const char **owner)
{
    if (i >= cfg->n)
        return NULL;
    if (owner != NULL)
        *owner = cfg->ents[i].owner;
    return cfg->ents[i].opt;
}

/* ------------------------------------------------------------------------ */
/* Readers                                                                    */

/* A reader asked for a name or type that does not exist: a programming error, so say which. */
static const struct entry *
typed_entry(const struct config *cfg, const char *name, enum qln_opt_type type)
{
    const struct entry *e = find_entry(cfg, name);

    if (e == NULL || e->opt->type != type) {
        qln_log_write(QLN_LOG_CRITICAL, "config: no option '%s' of %s registered", name,
                      type_noun(type));
        qln_assert(e != NULL && e->opt->type == type);
    }
    return e;
}

bool
config_bool(const struct config *cfg, const char *name)
{
    return typed_entry(cfg, name, QLN_OPT_BOOL)->b;
}

int64_t
config_int(const struct config *cfg, const char *name)
{
    return typed_entry(cfg, name, QLN_OPT_INT)->i;
}

const char *
config_str(const struct config *cfg, const char *name)
{
    return typed_entry(cfg, name, QLN_OPT_STRING)->s;
}

/*
 * The --log-syslog settings; the prefix is gunicorn's: --log-syslog-prefix,
 * else the process name (proc_name, or the app) with ':' as '.'.
 */
static void
syslog_options_of(const struct config *cfg, struct syslog_options *o)
{
    static char prefix[256];
    const char *name;
    size_t i;

    o->on = config_bool(cfg, "syslog");
    o->access = !config_bool(cfg, "disable_redirect_access_to_syslog");
    o->addr = config_str(cfg, "syslog_addr");
    o->facility = config_str(cfg, "syslog_facility");
    o->prefix = config_str(cfg, "syslog_prefix");
    if (o->prefix != NULL && o->prefix[0] != '\0')
        return;
    name = config_str(cfg, "proc_name");
    if (name == NULL)
        name = config_app_spec(cfg);
    util_format(prefix, sizeof(prefix), "%s", name != NULL ? name : "qilin");
    for (i = 0; prefix[i] != '\0'; i++)
        if (prefix[i] == ':')
            prefix[i] = '.';
    o->prefix = prefix;
}

void
config_log_options(const struct config *cfg, struct log_options *o)
{
    o->errorlog = config_str(cfg, "errorlog");
    o->loglevel = config_str(cfg, "loglevel");
    o->accesslog = config_str(cfg, "accesslog");
    o->access_log_format = config_str(cfg, "access_log_format");
    syslog_options_of(cfg, &o->syslog);
}

size_t
config_list_len(const struct config *cfg, const char *name)
{
    return typed_entry(cfg, name, QLN_OPT_LIST)->n;
}

const char *
config_list_get(const struct config *cfg, const char *name, size_t i)
{
    const struct entry *e = typed_entry(cfg, name, QLN_OPT_LIST);

    qln_assert(i < e->n);
    return e->items[i];
}

enum config_source
config_source_of(const struct config *cfg, const char *name)
{
    const struct entry *e = find_entry(cfg, name);

    qln_assert(e != NULL);
    return e->src;
}

/* The plugin-facing readers: plugins hold a qln_ctx, never the struct config. */

bool
qln_cfg_bool(const struct qln_ctx *ctx, const char *name)
{
    return config_bool(ctx->cfg, name);
}

const struct qln_option *
qln_cfg_option(const struct qln_ctx *ctx, const char *name)
{
    return config_find(ctx->cfg, name);
}

int
qln_cfg_set(struct qln_ctx *ctx, const char *name, const struct qln_cfg_value *v, uint32_t flags,
            const char *origin, char *err, size_t errlen)
{
    return config_set_value(ctx->cfg, name, v, flags, CONFIG_SRC_FILE, origin, err, errlen);
}

int64_t
qln_cfg_int(const struct qln_ctx *ctx, const char *name)
{
    return config_int(ctx->cfg, name);
}

const char *
qln_cfg_str(const struct qln_ctx *ctx, const char *name)
{
    return config_str(ctx->cfg, name);
}

size_t
qln_cfg_list_len(const struct qln_ctx *ctx, const char *name)
{
    return config_list_len(ctx->cfg, name);
}

const char *
qln_cfg_list_get(const struct qln_ctx *ctx, const char *name, size_t i)
{
    return config_list_get(ctx->cfg, name, i);
}

int
qln_ctx_argc(const struct qln_ctx *ctx)
{
    return ctx->argc;
}

char *const *
qln_ctx_argv(const struct qln_ctx *ctx)
{
    return ctx->argv;
}

uint32_t
qln_ctx_worker_flags(const struct qln_ctx *ctx)
{
    return ctx->worker_flags;
}

/* ------------------------------------------------------------------------ */
/* --print-config                                                             */

/* Python's repr() of a str, as gunicorn shows list items: quotes chosen as Python does. */
static void
print_repr(FILE *out, const char *s)
{
    char q = strchr(s, '\'') != NULL && strchr(s, '"') == NULL ? '"' : '\'';

    fputc(q, out);
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == q || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if ((unsigned char)*p < 0x20)
            fprintf(out, "\\x%02x", (unsigned char)*p);
        else
            fputc(*p, out);
    }
    fputc(q, out);
}

/* Writes E's value as gunicorn's print of the Python value would. */
static void
print_value(FILE *out, const struct entry *e)
{
    switch (e->opt->type) {
    case QLN_OPT_BOOL:
        fputs(e->b ? "True" : "False", out);
        break;
    case QLN_OPT_INT:
        fprintf(out, "%" PRId64, e->i);
        break;
    case QLN_OPT_STRING:
        fputs(e->s != NULL ? e->s : "None", out);
        break;
    case QLN_OPT_LIST:
        fputc('[', out);
        for (size_t k = 0; k < e->n; k++) {
            if (k > 0)
                fputs(", ", out);
            print_repr(out, e->items[k]);
        }
        fputc(']', out);
        break;
    }
}

static int
entry_name_cmp(const void *a, const void *b)
{
    const struct entry *const *x = a, *const *y = b;

    return strcmp((*x)->opt->name, (*y)->opt->name);
}

void
config_print(const struct config *cfg, FILE *out)
{
    config_list(cfg, out, false);
}

void
config_list(const struct config *cfg, FILE *out, bool indented)
{
    const struct entry **sorted = xcalloc(cfg->n ? cfg->n : 1, sizeof(*sorted));
    int width = 0;

    for (size_t k = 0; k < cfg->n; k++) {
        int len = (int)strlen(cfg->ents[k].opt->name);

        sorted[k] = &cfg->ents[k];
        width = len > width ? len : width;
    }
    qsort(sorted, cfg->n, sizeof(*sorted), entry_name_cmp);
    /* gunicorn pads names to the longest one: "bind     = ['127.0.0.1:8000']";
       its debug listing is "  bind: ['127.0.0.1:8000']". */
    for (size_t k = 0; k < cfg->n; k++) {
        if (indented)
            fprintf(out, "  %s: ", sorted[k]->opt->name);
        else
            fprintf(out, "%-*s = ", width, sorted[k]->opt->name);
        print_value(out, sorted[k]);
        fputc('\n', out);
    }
    free(sorted);
}

const char *
config_app_spec(const struct config *cfg)
{
    const struct qln_option *o;

    if (config_str(cfg, "wsgi_app") != NULL)
        return config_str(cfg, "wsgi_app");
    o = config_find(cfg, "paste");
    return o != NULL && o->type == QLN_OPT_STRING ? config_str(cfg, "paste") : NULL;
}
