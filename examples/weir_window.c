/*
 * weir_window.c - the weir-window tool: windowed count, sum, min or max
 * per key over a file of JSON lines (docs/tools/weir-window.md).
 *
 * How it works
 *   The topology is the one of weir-dedup with a window instead of dedup:
 *
 *     file lines -> json parse -+-> watermark (bounded B, every N) ->
 *                               |   key_by -> window(agg) -> format ->
 *                               |                 |          results.jsonl
 *                               |                 +-> late.jsonl
 *                               +-> errors.jsonl (with window errors)
 *
 *   The parse operator keys each record by the canonical JSON array of
 *   the --key values, so the window results carry that text as their key
 *   and the formatter writes it verbatim:
 *     {"key":[v1,...],"start":S,"end":E,"value":V}
 *   For sum/min/max the parser copies the integer field into a header the
 *   aggregate reads; a line without it is an error, sent to errors.jsonl
 *   before the watermark assigner (so it does not count for the cadence).
 *
 * Invariants: every non-blank input line lands in late.jsonl or
 * errors.jsonl, or is counted in the results; the summary is the last
 * line on stdout.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/operator.h>

#include "cli_common.h"

/* Header the parser fills and sum/min/max read. */
#define AGG_HEADER "weir.agg.input"

static const char usage[] =
    "usage: weir-window --input PATH --output-dir DIR --key FIELD[,FIELD...]\n"
    "                   [--time-field FIELD]\n"
    "                   --window tumbling:DUR|sliding:SIZE/SLIDE|session:GAP\n"
    "                   [--agg count|sum:FIELD|min:FIELD|max:FIELD]\n"
    "                   [--max-out-of-orderness DUR] [--allowed-lateness "
    "DUR]\n"
    "                   [--watermark-every N] [--parallelism P]\n"
    "\n"
    "Aggregates JSON lines from PATH per key and window. Writes one line\n"
    "per window firing to DIR/results.jsonl:\n"
    "  {\"key\":[v1,...],\"start\":S,\"end\":E,\"value\":V}\n"
    "and the input lines too late for every window, or in error, byte for\n"
    "byte to DIR/late.jsonl and DIR/errors.jsonl; prints a JSON summary "
    "last.\n"
    "\n"
    "  --input PATH                 JSON-lines input file\n"
    "  --output-dir DIR             output directory (created if missing)\n"
    "  --key FIELD[,FIELD...]       fields whose values make the key\n"
    "  --time-field FIELD           event time in ms since the epoch "
    "(default ts)\n"
    "  --window SPEC                tumbling:DUR, sliding:SIZE/SLIDE or "
    "session:GAP\n"
    "  --agg AGG                    count (default), sum:FIELD, min:FIELD, "
    "max:FIELD\n"
    "  --max-out-of-orderness DUR   watermark bound B (default 0)\n"
    "  --allowed-lateness DUR       allowed lateness L (default 0)\n"
    "  --watermark-every N          watermark after every N records "
    "(default 1)\n"
    "  --parallelism P              window instances, 1..1024 (default 1)\n"
    "  --help                       this text\n"
    "\n"
    "DUR is an integer with a unit ms, s, m, h or d (\"250ms\", \"10s\"), "
    "or 0.\n"
    "Exit status: 0 done, 1 input or run error, 2 bad arguments.\n";

enum { OUT_RESULTS, OUT_LATE, OUT_ERRORS, OUT_N };

static const char *const out_files[OUT_N] = {"results.jsonl", "late.jsonl",
                                             "errors.jsonl"};

struct window_args {
    const char *input;
    const char *outdir;
    const char *keys;
    const char *time_field;
    weir_window_kind_t kind;
    weir_ts_t size;
    weir_ts_t slide;
    const weir_aggregate_def_t *agg;
    const char *agg_field; /* NULL for count */
    weir_ts_t bound;
    weir_ts_t lateness;
    uint64_t every;
    int parallelism;
};

/* ------------------------------------------------------------------ *
 * ## The result formatter
 * ------------------------------------------------------------------ */

/*
 * Turns a window result (key = canonical JSON array, value = decimal
 * text, window bounds in headers) into its output line.
 */
static int format_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    weir_buf_t key = weir_record_key(in);
    weir_buf_t val = weir_record_value(in);
    weir_ts_t start = 0;
    weir_ts_t end = 0;
    char *line;
    int n;
    size_t cap;
    int rc;

    (void)st;
    rc = weir_record_window(in, &start, &end);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "window result without bounds");
    cap = key.len + val.len + 96;
    line = weir_malloc(cap);
    if (line == NULL)
        return WEIR_ENOMEM;
    n = snprintf(line, cap,
                 "{\"key\":%.*s,\"start\":%" PRId64 ",\"end\":%" PRId64
                 ",\"value\":%.*s}",
                 (int)key.len, (const char *)key.data, start, end, (int)val.len,
                 (const char *)val.data);
    rc = weir_emit_new(ctx, key, WEIR_BUF(line, (size_t)n), weir_record_ts(in));
    weir_free(line);
    return rc;
}

static const weir_operator_def_t format_result = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "format_window_result",
    .process = format_process,
};

/* ------------------------------------------------------------------ *
 * ## Arguments
 * ------------------------------------------------------------------ */

/* "SIZE/SLIDE" of a sliding window. */
static int parse_sliding(const char *v, struct window_args *a, char *msg)
{
    char size[64];
    const char *slash = strchr(v, '/');

    if (slash == NULL || (size_t)(slash - v) >= sizeof(size)) {
        cli_fmt(msg, "--window: want sliding:SIZE/SLIDE, got 'sliding:%s'", v);
        return -1;
    }
    memcpy(size, v, (size_t)(slash - v));
    size[slash - v] = '\0';
    if (cli_parse_dur(size, &a->size) != 0 ||
        cli_parse_dur(slash + 1, &a->slide) != 0) {
        cli_fmt(msg, "--window: bad duration in 'sliding:%s'", v);
        return -1;
    }
    if (a->size <= 0 || a->slide <= 0 || a->slide > a->size) {
        cli_fmt(msg, "--window: 'sliding:%s' needs 0 < SLIDE <= SIZE", v);
        return -1;
    }
    return 0;
}

static int parse_window(const char *v, struct window_args *a, char *msg)
{
    if (strncmp(v, "sliding:", 8) == 0) {
        a->kind = WEIR_WINDOW_SLIDING;
        return parse_sliding(v + 8, a, msg);
    }
    if (strncmp(v, "tumbling:", 9) == 0) {
        a->kind = WEIR_WINDOW_TUMBLING;
        v += 9;
    } else if (strncmp(v, "session:", 8) == 0) {
        a->kind = WEIR_WINDOW_SESSION;
        v += 8;
    } else {
        cli_fmt(msg,
                "--window: bad value '%s' (want tumbling:DUR, "
                "sliding:SIZE/SLIDE or session:GAP)",
                v);
        return -1;
    }
    if (cli_parse_dur(v, &a->size) != 0 || a->size <= 0) {
        cli_fmt(msg, "--window: bad or zero duration '%s'", v);
        return -1;
    }
    a->slide = a->size;
    return 0;
}

static int parse_agg(const char *v, struct window_args *a, char *msg)
{
    static const struct {
        const char *prefix;
        const weir_aggregate_def_t *agg;
    } aggs[] = {
        {"sum:", &weir_agg_sum},
        {"min:", &weir_agg_min},
        {"max:", &weir_agg_max},
    };
    size_t i;

    a->agg = &weir_agg_count;
    a->agg_field = NULL;
    if (v == NULL || strcmp(v, "count") == 0)
        return 0;
    for (i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++) {
        if (strncmp(v, aggs[i].prefix, 4) == 0 && v[4] != '\0') {
            a->agg = aggs[i].agg;
            a->agg_field = v + 4;
            return 0;
        }
    }
    cli_fmt(msg,
            "--agg: bad value '%s' (want count, sum:FIELD, min:FIELD "
            "or max:FIELD)",
            v);
    return -1;
}

static int parse_args(const struct cli_opt *o, struct window_args *a, char *msg)
{
    const char *req[] = {"input", "output-dir", "key", "window"};
    uint64_t par;
    size_t i;

    for (i = 0; i < sizeof(req) / sizeof(req[0]); i++) {
        if (cli_get(o, req[i]) == NULL) {
            cli_fmt(msg, "missing --%s (see --help)", req[i]);
            return -1;
        }
    }
    a->input = cli_get(o, "input");
    a->outdir = cli_get(o, "output-dir");
    a->keys = cli_get(o, "key");
    a->time_field = cli_get(o, "time-field");
    if (a->time_field == NULL)
        a->time_field = WEIR_JSON_TIME_FIELD;
    if (a->input[0] == '\0' || a->outdir[0] == '\0' ||
        a->time_field[0] == '\0') {
        cli_fmt(msg, "empty --input, --output-dir or --time-field");
        return -1;
    }
    if (cli_check_keys(a->keys, msg) != 0 ||
        parse_window(cli_get(o, "window"), a, msg) != 0 ||
        parse_agg(cli_get(o, "agg"), a, msg) != 0)
        return -1;
    if (cli_opt_dur(o, "max-out-of-orderness", 0, &a->bound, msg) != 0 ||
        cli_opt_dur(o, "allowed-lateness", 0, &a->lateness, msg) != 0 ||
        cli_opt_u64(o, "watermark-every", 1, UINT64_MAX, 1, &a->every, msg) !=
            0 ||
        cli_opt_u64(o, "parallelism", 1, 1024, 1, &par, msg) != 0)
        return -1;
    a->parallelism = (int)par;
    return 0;
}

/* ------------------------------------------------------------------ *
 * ## The pipeline
 * ------------------------------------------------------------------ */

static weir_window_t *make_window(const struct window_args *a)
{
    weir_window_t *w = NULL;

    if (a->kind == WEIR_WINDOW_TUMBLING)
        w = weir_window_tumbling(a->size);
    else if (a->kind == WEIR_WINDOW_SLIDING)
        w = weir_window_sliding(a->size, a->slide);
    else if (a->kind == WEIR_WINDOW_SESSION)
        w = weir_window_session(a->size);
    if (w != NULL && weir_window_set_lateness(w, a->lateness) != WEIR_OK) {
        weir_window_destroy(w);
        w = NULL;
    }
    return w;
}

static weir_json_opts_t *make_opts(const struct window_args *a)
{
    weir_json_opts_t *opts = weir_json_opts_new();

    if (opts == NULL)
        return NULL;
    if (weir_json_opts_add_keys(opts, a->keys) != WEIR_OK ||
        weir_json_opts_set_time_field(opts, a->time_field) != WEIR_OK ||
        (a->agg_field != NULL &&
         weir_json_opts_set_header_field(opts, a->agg_field, AGG_HEADER) !=
             WEIR_OK)) {
        weir_json_opts_destroy(opts);
        return NULL;
    }
    return opts;
}

static int run_window(const struct window_args *a, char *msg)
{
    char path[OUT_N][4096];
    weir_stream_t *out[OUT_N];
    weir_json_opts_t *opts;
    weir_stream_t *errors;
    weir_pipeline_t *p;
    weir_window_t *w;
    weir_stream_t *s;
    weir_conf_t *conf;
    char err[256];
    int f;

    if (cli_mkdirs(a->outdir, msg) != 0 ||
        cli_create_outputs(a->outdir, out_files, OUT_N, msg) != 0)
        return -1;
    conf = cli_conf(a->parallelism, NULL, 0, msg);
    if (conf == NULL)
        return -1;
    p = weir_pipeline_new("weir-window", conf, err, sizeof(err));
    if (p == NULL) {
        cli_fmt(msg, "%s", err);
        return -1;
    }
    opts = make_opts(a);
    if (opts == NULL) {
        weir_pipeline_destroy(p);
        cli_fmt(msg, "bad --key, --time-field or --agg");
        return -1;
    }
    s = cli_parsed_lines(p, a->input, opts, &errors);
    s = cli_watermarks(s, a->bound, a->every);
    s = weir_stream_keyby(s, NULL, NULL);
    w = make_window(a);
    if (w == NULL)
        s = weir_stream_error(s, WEIR_EINVAL, "bad --window");
    else
        s = weir_stream_window(s, w, a->agg,
                               a->agg_field != NULL ? AGG_HEADER : NULL);
    out[OUT_LATE] = weir_stream_side_output(s, WEIR_TAG_LATE);
    out[OUT_ERRORS] =
        weir_stream_union(errors, weir_stream_side_output(s, WEIR_TAG_ERRORS));
    out[OUT_RESULTS] = weir_stream_apply(s, &format_result, NULL);
    for (f = 0; f < OUT_N; f++) {
        cli_join(path[f], a->outdir, out_files[f]);
        weir_sink_file_lines(out[f], path[f]);
    }
    return cli_run(p, msg);
}

int main(int argc, char **argv)
{
    struct cli_opt opts[] = {
        {"input", NULL, 0},
        {"output-dir", NULL, 0},
        {"key", NULL, 0},
        {"time-field", NULL, 0},
        {"window", NULL, 0},
        {"agg", NULL, 0},
        {"max-out-of-orderness", NULL, 0},
        {"allowed-lateness", NULL, 0},
        {"watermark-every", NULL, 0},
        {"parallelism", NULL, 0},
        {NULL, NULL, 0},
    };
    struct window_args a;
    int64_t counts[OUT_N];
    int64_t records;
    char path[4096];
    char msg[CLI_MSG];
    int rc;
    int f;

    memset(&a, 0, sizeof(a));
    rc = cli_parse(argc, argv, opts, msg);
    if (rc == 1) {
        fputs(usage, stdout);
        return CLI_EXIT_OK;
    }
    if (rc != 0 || parse_args(opts, &a, msg) != 0) {
        cli_error("weir-window", msg);
        return CLI_EXIT_USAGE;
    }
    if (cli_check_input(a.input, msg) != 0 || run_window(&a, msg) != 0) {
        cli_error("weir-window", msg);
        return CLI_EXIT_RUN;
    }
    records = cli_count_lines(a.input, 1, msg);
    for (f = 0; f < OUT_N && records >= 0; f++) {
        cli_join(path, a.outdir, out_files[f]);
        counts[f] = cli_count_lines(path, 0, msg);
        if (counts[f] < 0)
            records = -1;
    }
    if (records < 0) {
        cli_error("weir-window", msg);
        return CLI_EXIT_RUN;
    }
    printf("{\"records\":%" PRId64 ",\"results\":%" PRId64 ",\"late\":%" PRId64
           ",\"errors\":%" PRId64 "}\n",
           records, counts[OUT_RESULTS], counts[OUT_LATE], counts[OUT_ERRORS]);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_RUN;
}
