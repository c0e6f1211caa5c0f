/*
 * The control socket's command words and default path, shared by the
 * master and qilinctl (control_cmd.h has the protocol). libc only, since
 * qilinctl links nothing else.
 */
#include "qlnconfig.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control_cmd.h"

#define MAX_WORDS 4

const struct control_cmd_help control_cmd_help[] = {
    {"show all", "the master and its workers"},
    {"show workers", "each worker: pid, age, state, requests served, heartbeat"},
    {"show stats", "the master: pid, uptime, workers, spawned, reloads"},
    {"show config", "every setting's effective value"},
    {"show listeners", "the listening sockets"},
    {"worker add [N]", "N more workers (default 1), as N TTIN"},
    {"worker remove [N]", "N fewer workers (default 1; never below 1), as N TTOU"},
    {"worker kill PID", "stop worker PID gracefully (TERM); a new one replaces it"},
    {"reload", "reload the configuration and replace the workers (HUP)"},
    {"reopen", "reopen the log files (USR1)"},
    {"shutdown [graceful|quick]", "stop the server: graceful (TERM, default) or quick (INT)"},
    {"help", "this list"},
};
const size_t control_cmd_help_count = sizeof(control_cmd_help) / sizeof(control_cmd_help[0]);

static int
fail(char *err, size_t errlen, const char *fmt, const char *word)
{
    snprintf(err, errlen, fmt, word);
    return -EINVAL;
}

/* A decimal number from 1 to MAX, or -1. */
static long
parse_number(const char *word, long max)
{
    char *end;
    long v;

    if (word[0] < '0' || word[0] > '9')
        return -1;
    errno = 0;
    v = strtol(word, &end, 10);
    if (*end != '\0' || errno != 0 || v < 1 || v > max)
        return -1;
    return v;
}

static int
parse_show(char **w, int n, struct control_cmd *cmd, char *err, size_t errlen)
{
    static const struct {
        const char *word;
        enum control_cmd_id id;
    } targets[] = {
        {"all", CTL_SHOW_ALL},       {"workers", CTL_SHOW_WORKERS},     {"stats", CTL_SHOW_STATS},
        {"config", CTL_SHOW_CONFIG}, {"listeners", CTL_SHOW_LISTENERS},
    };
    size_t i;

    if (n < 2)
        return fail(err, errlen,
                    "'%s' needs what to show: all, workers, stats, config or listeners", w[0]);
    if (n > 2)
        return fail(err, errlen, "unexpected word '%s' after the show target", w[2]);
    for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        if (strcasecmp(w[1], targets[i].word) == 0) {
            cmd->id = targets[i].id;
            return 0;
        }
    }
    return fail(err, errlen, "cannot show '%s' (expected all, workers, stats, config or listeners)",
                w[1]);
}

static int
parse_worker(char **w, int n, struct control_cmd *cmd, char *err, size_t errlen)
{
    char msg[128];

    if (n < 2)
        return fail(err, errlen, "'%s' needs an action: add [N], remove [N] or kill PID", w[0]);
    if (n > 3)
        return fail(err, errlen, "unexpected word '%s' after the worker count or pid", w[3]);
    if (strcasecmp(w[1], "add") == 0 || strcasecmp(w[1], "remove") == 0) {
        cmd->id = strcasecmp(w[1], "add") == 0 ? CTL_WORKER_ADD : CTL_WORKER_REMOVE;
        cmd->arg = n == 3 ? parse_number(w[2], CONTROL_MAX_COUNT) : 1;
        snprintf(msg, sizeof(msg), "invalid worker count '%%s' (expected 1 to %d)",
                 CONTROL_MAX_COUNT);
        return cmd->arg < 0 ? fail(err, errlen, msg, w[2]) : 0;
    }
    if (strcasecmp(w[1], "kill") == 0) {
        cmd->id = CTL_WORKER_KILL;
        if (n < 3)
            return fail(err, errlen, "'%s kill' needs the worker's pid (see: show workers)", w[0]);
        cmd->arg = parse_number(w[2], 0x7fffffffL);
        return cmd->arg < 0 ? fail(err, errlen, "invalid pid '%s' (expected a number)", w[2]) : 0;
    }
    return fail(err, errlen, "unknown worker action '%s' (expected add, remove or kill)", w[1]);
}

int
control_cmd_parse(const char *line, struct control_cmd *cmd, char *err, size_t errlen)
{
    char buf[CONTROL_LINE_MAX], *w[MAX_WORDS + 1], *save = NULL, *tok;
    int n = 0;

    memset(cmd, 0, sizeof(*cmd));
    cmd->arg = 1;
    if (strlen(line) >= sizeof(buf))
        return fail(err, errlen, "%s", "request longer than the control socket's line limit");
    strcpy(buf, line);
    for (tok = strtok_r(buf, " \t\r", &save); tok != NULL; tok = strtok_r(NULL, " \t\r", &save)) {
        if (n == 0 && !cmd->json && strcasecmp(tok, "json") == 0) {
            cmd->json = true;
            continue;
        }
        if (n == MAX_WORDS)
            return fail(err, errlen, "unexpected word '%s' (too many words)", tok);
        w[n++] = tok;
    }
    if (n == 0)
        return fail(err, errlen, "%s", "no command given (try: help)");
    if (strcasecmp(w[0], "show") == 0)
        return parse_show(w, n, cmd, err, errlen);
    if (strcasecmp(w[0], "worker") == 0)
        return parse_worker(w, n, cmd, err, errlen);
    if (strcasecmp(w[0], "shutdown") == 0) {
        cmd->id = CTL_SHUTDOWN;
        if (n > 2)
            return fail(err, errlen, "unexpected word '%s' after the shutdown mode", w[2]);
        if (n == 2 && strcasecmp(w[1], "quick") == 0)
            cmd->quick = true;
        else if (n == 2 && strcasecmp(w[1], "graceful") != 0)
            return fail(err, errlen, "unknown shutdown mode '%s' (expected graceful or quick)",
                        w[1]);
        return 0;
    }
    if (strcasecmp(w[0], "help") == 0)
        cmd->id = CTL_HELP;
    else if (strcasecmp(w[0], "reload") == 0)
        cmd->id = CTL_RELOAD;
    else if (strcasecmp(w[0], "reopen") == 0)
        cmd->id = CTL_REOPEN;
    else
        return fail(err, errlen, "unknown command '%s' (try: help)", w[0]);
    if (n > 1)
        return fail(err, errlen, "unexpected word '%s' after the command", w[1]);
    return 0;
}

int
control_default_path(char *buf, size_t len)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    const char *home = getenv("HOME");
    struct stat st;
    int n;

    if (xdg != NULL && xdg[0] == '/' && stat(xdg, &st) == 0 && S_ISDIR(st.st_mode)) {
        n = snprintf(buf, len, "%s/%s", xdg, CONTROL_SOCKET_NAME);
        return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
    }
    if (home == NULL || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());

        home = pw != NULL && pw->pw_dir != NULL && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
    }
    if (home == NULL)
        return -ENOENT;
    n = snprintf(buf, len, "%s%s%s/%s", home, home[strlen(home) - 1] == '/' ? "" : "/",
                 CONTROL_HOME_DIR, CONTROL_SOCKET_NAME);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}
