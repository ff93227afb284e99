/*
 * cli_common.h - code shared by the weir-dedup and weir-window tools and
 * the weir-demo program: option parsing, durations, output files, line
 * counts, and the dedup topology itself.
 *
 * How it works
 *   Every function is static inline, so each program takes only what it
 *   uses (the examples CMake builds each examples/<name>.c on its own).
 *   Options are long options only ("--name VALUE" or "--name=VALUE"),
 *   looked up in a table the program gives; anything else is an error
 *   with a one-line message. Durations are an unsigned integer followed
 *   by ms, s, m, h or d, or a bare "0".
 *
 *   The dedup topology (weir-dedup and weir-demo run the same one):
 *
 *     file lines -> json parse -+-> watermark (bounded B, every N) ->
 *                               |   key_by -> dedup scope -> unique
 *                               |                        +-> duplicates
 *                               |                        +-> late
 *                               +-> errors
 *
 *   Source, parse and the watermark assigner run as one instance each so
 *   that the watermark cadence counts records in input order; only the
 *   keyed dedup operator runs at "pipeline.parallelism". Each output is a
 *   file sink (exactly once when "checkpoint.dir" is set).
 *
 * Invariants: functions report failures through their return value and a
 * message buffer; nothing here exits the process.
 */
#ifndef WEIR_EXAMPLES_CLI_COMMON_H
#define WEIR_EXAMPLES_CLI_COMMON_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/json.h>

#define CLI_MSG 1024

/* Exit codes of the tools. */
#define CLI_EXIT_OK    0
#define CLI_EXIT_RUN   1 /* the input could not be read, I/O, run error */
#define CLI_EXIT_USAGE 2 /* bad arguments                               */

/* ------------------------------------------------------------------ *
 * ## Messages
 * ------------------------------------------------------------------ */

static inline void cli_fmt(char *msg, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Writes a message into msg (CLI_MSG bytes). */
static inline void cli_fmt(char *msg, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, CLI_MSG, fmt, ap);
    va_end(ap);
}

/* Prints "prog: msg" as one line on stderr (newlines in msg become
 * spaces, so the message stays one line whatever it quotes). */
static inline void cli_error(const char *prog, const char *msg)
{
    char line[CLI_MSG];
    size_t i;

    snprintf(line, sizeof(line), "%s", msg);
    for (i = 0; line[i] != '\0'; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    fprintf(stderr, "%s: %s\n", prog, line);
}

/* ------------------------------------------------------------------ *
 * ## Numbers and durations
 * ------------------------------------------------------------------ */

/* Parses an unsigned decimal (digits only) in [min, max]. */
static inline int cli_parse_u64(const char *s, uint64_t min, uint64_t max,
                                uint64_t *out)
{
    uint64_t v = 0;
    const char *p;

    if (s == NULL || *s == '\0')
        return -1;
    for (p = s; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Parses DUR: digits then ms|s|m|h|d ("10s", "250ms"), or "0". Rejects a
 * sign, a missing unit on a non-zero number, spaces and overflow. */
static inline int cli_parse_dur(const char *s, weir_ts_t *out)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    char digits[32];
    uint64_t n;
    size_t len;
    size_t i;

    if (s == NULL)
        return -1;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    len = strspn(s, "0123456789");
    if (len == 0 || len >= sizeof(digits))
        return -1;
    memcpy(digits, s, len);
    digits[len] = '\0';
    if (cli_parse_u64(digits, 0, INT64_MAX, &n) != 0)
        return -1;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s + len, units[i].unit) != 0)
            continue;
        if (n > (uint64_t)(INT64_MAX / units[i].ms))
            return -1;
        *out = (weir_ts_t)n * units[i].ms;
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------ *
 * ## Options
 * ------------------------------------------------------------------ */

/* One long option: --name VALUE, or --name alone for a flag. */
struct cli_opt {
    const char *name;  /* without the leading "--"          */
    const char *value; /* set by cli_parse ("" for a flag)  */
    int flag;          /* 1: takes no value                 */
};

/*
 * Parses argv against opts (terminated by a NULL name). Returns 1 when
 * "--help" was given, 0 on success, -1 with a message in msg.
 */
static inline int cli_parse(int argc, char **argv, struct cli_opt *opts,
                            char *msg)
{
    const char *arg;
    const char *eq;
    const char *val;
    size_t nlen;
    int i;
    int j;

    for (i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0)
            return 1;
    for (i = 1; i < argc; i++) {
        arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            cli_fmt(msg, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        eq = strchr(arg, '=');
        nlen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        for (j = 0; opts[j].name != NULL; j++)
            if (strlen(opts[j].name) == nlen &&
                strncmp(opts[j].name, arg + 2, nlen) == 0)
                break;
        if (opts[j].name == NULL) {
            cli_fmt(msg, "unknown option '%.*s' (see --help)", (int)(nlen + 2),
                    arg);
            return -1;
        }
        if (opts[j].flag) {
            if (eq != NULL) {
                cli_fmt(msg, "option --%s takes no value", opts[j].name);
                return -1;
            }
            val = "";
        } else if (eq != NULL) {
            val = eq + 1;
        } else if (i + 1 < argc) {
            val = argv[++i];
        } else {
            cli_fmt(msg, "option --%s needs a value", opts[j].name);
            return -1;
        }
        if (opts[j].value != NULL) {
            cli_fmt(msg, "option --%s given more than once", opts[j].name);
            return -1;
        }
        opts[j].value = val;
    }
    return 0;
}

/* The value of option `name`, or NULL. */
static inline const char *cli_get(const struct cli_opt *opts, const char *name)
{
    int j;

    for (j = 0; opts[j].name != NULL; j++)
        if (strcmp(opts[j].name, name) == 0)
            return opts[j].value;
    return NULL;
}

/* Parses an optional DUR option (def when absent). */
static inline int cli_opt_dur(const struct cli_opt *opts, const char *name,
                              weir_ts_t def, weir_ts_t *out, char *msg)
{
    const char *v = cli_get(opts, name);

    *out = def;
    if (v == NULL)
        return 0;
    if (cli_parse_dur(v, out) == 0)
        return 0;
    cli_fmt(msg,
            "--%s: bad duration '%s' (want a number with a unit ms, s, m, "
            "h or d, or 0)",
            name, v);
    return -1;
}

/* Parses an optional integer option in [min, max] (def when absent). */
static inline int cli_opt_u64(const struct cli_opt *opts, const char *name,
                              uint64_t min, uint64_t max, uint64_t def,
                              uint64_t *out, char *msg)
{
    const char *v = cli_get(opts, name);

    *out = def;
    if (v == NULL)
        return 0;
    if (cli_parse_u64(v, min, max, out) == 0)
        return 0;
    cli_fmt(msg,
            "--%s: bad value '%s' (want an integer from %" PRIu64 " to %" PRIu64
            ")",
            name, v, min, max);
    return -1;
}

/* Checks the --key list: comma-separated, no empty names. */
static inline int cli_check_keys(const char *keys, char *msg)
{
    weir_json_opts_t *o = weir_json_opts_new();
    int rc;

    if (o == NULL) {
        cli_fmt(msg, "out of memory");
        return -1;
    }
    rc = weir_json_opts_add_keys(o, keys);
    weir_json_opts_destroy(o);
    if (rc == WEIR_OK)
        return 0;
    cli_fmt(msg, "--key: bad field list '%s' (want FIELD[,FIELD...])", keys);
    return -1;
}

/* ------------------------------------------------------------------ *
 * ## Files
 * ------------------------------------------------------------------ */

/* Checks that the input can be opened for reading and is not a
 * directory. */
static inline int cli_check_input(const char *path, char *msg)
{
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        cli_fmt(msg, "cannot read input '%s': %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fd);
        cli_fmt(msg, "cannot read input '%s': it is a directory", path);
        return -1;
    }
    close(fd);
    return 0;
}

/* mkdir -p. */
static inline int cli_mkdirs(const char *dir, char *msg)
{
    char path[4096];
    struct stat sb;
    size_t i;
    size_t n = strlen(dir);

    if (n == 0 || n >= sizeof(path)) {
        cli_fmt(msg, "bad directory name '%s'", dir);
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            cli_fmt(msg, "cannot create directory '%s': %s", path,
                    strerror(errno));
            return -1;
        }
        path[i] = i < n ? '/' : '\0';
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_fmt(msg, "'%s' is not a directory", dir);
        return -1;
    }
    return 0;
}

/* dir + "/" + name into out (4096 bytes); a path too long becomes "",
 * which every later open rejects. */
static inline void cli_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, 4096, "%s/%s", dir, name);

    if (n < 0 || n >= 4096)
        out[0] = '\0';
}

/* Makes sure each of DIR/names[i] exists, without truncating it (the
 * sinks decide about truncation: a restored run must keep its output). */
static inline int cli_create_outputs(const char *dir, const char *const *names,
                                     size_t n, char *msg)
{
    char path[4096];
    size_t i;
    int fd;

    for (i = 0; i < n; i++) {
        cli_join(path, dir, names[i]);
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) {
            cli_fmt(msg, "cannot create '%s': %s", path, strerror(errno));
            return -1;
        }
        close(fd);
    }
    return 0;
}

/* 1 when the line holds only JSON whitespace (what the parser drops). */
static inline int cli_blank(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
            return 0;
    return 1;
}

/*
 * Counts the lines of a file (a last line without "\n" counts), or only
 * the non-blank ones. Returns the count, or -1 with a message.
 */
static inline int64_t cli_count_lines(const char *path, int nonblank, char *msg)
{
    static char buf[1 << 16];
    int64_t count = 0;
    int blank = 1;
    int partial = 0;
    ssize_t n;
    ssize_t seg;
    const char *p;
    const char *nl;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        cli_fmt(msg, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cli_fmt(msg, "cannot read '%s': %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        for (p = buf; p < buf + n; p = nl + 1) {
            nl = memchr(p, '\n', (size_t)(buf + n - p));
            seg = (nl != NULL ? nl : buf + n) - p;
            if (seg > 0) {
                partial = 1;
                if (blank && !cli_blank(p, (size_t)seg))
                    blank = 0;
            }
            if (nl == NULL)
                break;
            count += !nonblank || !blank;
            blank = 1;
            partial = 0;
        }
    }
    close(fd);
    if (partial)
        count += !nonblank || !blank;
    return count;
}

/* ------------------------------------------------------------------ *
 * ## Pipeline helpers
 * ------------------------------------------------------------------ */

/* Sets a conf property; on failure writes a message. */
static inline int cli_conf_set(weir_conf_t *conf, const char *name,
                               const char *value, char *msg)
{
    char err[256];

    if (weir_conf_set(conf, name, value, err, sizeof(err)) == WEIR_OK)
        return 0;
    cli_fmt(msg, "cannot set %s=%s: %s", name, value, err);
    return -1;
}

/* A conf with "pipeline.parallelism" and, when ckdir is set, the
 * checkpoint properties. NULL with a message on failure. */
static inline weir_conf_t *cli_conf(int parallelism, const char *ckdir,
                                    uint64_t ck_every, char *msg)
{
    weir_conf_t *conf = weir_conf_new();
    char num[32];

    if (conf == NULL) {
        cli_fmt(msg, "out of memory");
        return NULL;
    }
    snprintf(num, sizeof(num), "%d", parallelism);
    if (cli_conf_set(conf, "pipeline.parallelism", num, msg) != 0)
        goto fail;
    if (ckdir != NULL) {
        snprintf(num, sizeof(num), "%" PRIu64, ck_every);
        if (cli_conf_set(conf, "checkpoint.dir", ckdir, msg) != 0 ||
            cli_conf_set(conf, "checkpoint.every.records", num, msg) != 0)
            goto fail;
    }
    return conf;
fail:
    weir_conf_destroy(conf);
    return NULL;
}

/*
 * Source -> JSON parse. Sets *errors to the parse errors. The parse runs
 * as one instance, right after the source.
 */
static inline weir_stream_t *cli_parsed_lines(weir_pipeline_t *p,
                                              const char *input,
                                              weir_json_opts_t *opts,
                                              weir_stream_t **errors)
{
    weir_stream_t *lines = weir_source_file_lines(p, input);
    weir_stream_t *parsed;

    parsed = weir_stream_json_parse(lines, opts);
    parsed = weir_stream_set_parallelism(parsed, 1);
    *errors = weir_stream_side_output(parsed, WEIR_TAG_ERRORS);
    return parsed;
}

/* Bounded out-of-orderness watermarks every n records, one instance. */
static inline weir_stream_t *cli_watermarks(weir_stream_t *s, weir_ts_t bound,
                                            uint64_t every)
{
    weir_watermark_t *wm = weir_watermark_bounded(bound);

    if (wm != NULL && weir_watermark_set_every(wm, every) != WEIR_OK) {
        weir_watermark_destroy(wm);
        wm = NULL;
    }
    if (wm == NULL)
        return weir_stream_error(s, WEIR_EINVAL,
                                 "cannot make the watermark strategy");
    return weir_stream_set_parallelism(weir_stream_watermark(s, wm), 1);
}

/* Runs p; on failure writes its error message. Destroys p. */
static inline int cli_run(weir_pipeline_t *p, char *msg)
{
    int rc = weir_pipeline_error(p);

    if (rc == WEIR_OK)
        rc = weir_pipeline_run(p);
    if (rc != WEIR_OK) {
        const char *e = weir_pipeline_errstr(p);

        cli_fmt(msg, "%s", e != NULL && e[0] != '\0' ? e : weir_strerror(rc));
    }
    weir_pipeline_destroy(p);
    return rc == WEIR_OK ? 0 : -1;
}

/* ------------------------------------------------------------------ *
 * ## The dedup topology
 * ------------------------------------------------------------------ */

enum { CLI_UNIQUE, CLI_DUPLICATES, CLI_LATE, CLI_ERRORS, CLI_NOUT };

static const char *const cli_dedup_files[CLI_NOUT] = {
    "unique.jsonl", "duplicates.jsonl", "late.jsonl", "errors.jsonl"};

/* What weir-dedup runs. */
struct cli_dedup {
    const char *input;        /* JSON-lines input                       */
    const char *outdir;       /* the four output files go here          */
    const char *keys;         /* FIELD[,FIELD...]                       */
    const char *time_field;   /* "ts" by default                        */
    weir_window_kind_t scope; /* ROLLING, TUMBLING or SESSION         */
    weir_ts_t size;           /* R, S or G                              */
    weir_ts_t bound;          /* max out-of-orderness B                 */
    weir_ts_t lateness;       /* allowed lateness L                     */
    uint64_t every;           /* watermark every N records              */
    int parallelism;          /* keyed parallelism P                    */
    const char *ckdir;        /* checkpoint dir, or NULL                */
    uint64_t ck_every;        /* checkpoint every N records             */
};

/* The dedup scope window of a configuration (NULL if invalid). */
static inline weir_window_t *cli_dedup_scope(const struct cli_dedup *d)
{
    weir_window_t *w = NULL;

    if (d->scope == WEIR_WINDOW_ROLLING)
        w = weir_window_rolling(d->size);
    else if (d->scope == WEIR_WINDOW_TUMBLING)
        w = weir_window_tumbling(d->size);
    else if (d->scope == WEIR_WINDOW_SESSION)
        w = weir_window_session(d->size);
    if (w != NULL && weir_window_set_lateness(w, d->lateness) != WEIR_OK) {
        weir_window_destroy(w);
        w = NULL;
    }
    return w;
}

/* Builds and runs the dedup pipeline. 0, or -1 with a message. */
static inline int cli_dedup_run(const struct cli_dedup *d, char *msg)
{
    char path[CLI_NOUT][4096];
    weir_stream_t *out[CLI_NOUT];
    weir_json_opts_t *opts;
    weir_pipeline_t *p;
    weir_window_t *scope;
    weir_stream_t *s;
    weir_conf_t *conf;
    char err[256];
    int f;

    if (cli_mkdirs(d->outdir, msg) != 0 ||
        cli_create_outputs(d->outdir, cli_dedup_files, CLI_NOUT, msg) != 0)
        return -1;
    conf = cli_conf(d->parallelism, d->ckdir, d->ck_every, msg);
    if (conf == NULL)
        return -1;
    p = weir_pipeline_new("weir-dedup", conf, err, sizeof(err));
    if (p == NULL) {
        cli_fmt(msg, "%s", err);
        return -1;
    }
    opts = weir_json_opts_new();
    if (opts != NULL &&
        (weir_json_opts_add_keys(opts, d->keys) != WEIR_OK ||
         weir_json_opts_set_time_field(opts, d->time_field) != WEIR_OK)) {
        weir_json_opts_destroy(opts);
        opts = NULL;
    }
    if (opts == NULL) {
        weir_pipeline_destroy(p);
        cli_fmt(msg, "bad --key or --time-field");
        return -1;
    }
    s = cli_parsed_lines(p, d->input, opts, &out[CLI_ERRORS]);
    s = cli_watermarks(s, d->bound, d->every);
    s = weir_stream_keyby(s, NULL, NULL);
    scope = cli_dedup_scope(d);
    if (scope == NULL)
        s = weir_stream_error(s, WEIR_EINVAL, "bad --window");
    else
        s = weir_stream_dedup_scope(s, scope);
    out[CLI_UNIQUE] = s;
    out[CLI_DUPLICATES] = weir_stream_side_output(s, WEIR_TAG_DUPLICATE);
    out[CLI_LATE] = weir_stream_side_output(s, WEIR_TAG_LATE);
    for (f = 0; f < CLI_NOUT; f++) {
        cli_join(path[f], d->outdir, cli_dedup_files[f]);
        weir_sink_file_lines(out[f], path[f]);
    }
    return cli_run(p, msg);
}

/* Counts the lines of the dedup outputs into counts[CLI_NOUT]. */
static inline int cli_dedup_counts(const char *outdir, int64_t *counts,
                                   char *msg)
{
    char path[4096];
    int f;

    for (f = 0; f < CLI_NOUT; f++) {
        cli_join(path, outdir, cli_dedup_files[f]);
        counts[f] = cli_count_lines(path, 0, msg);
        if (counts[f] < 0)
            return -1;
    }
    return 0;
}

#endif /* WEIR_EXAMPLES_CLI_COMMON_H */
