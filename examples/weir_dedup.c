/*
 * weir_dedup.c - the weir-dedup tool: deduplicates a file of JSON lines
 * into unique, duplicate, late and error lines (docs/tools/weir-dedup.md).
 *
 * How it works
 *   Options are parsed and checked strictly first (any problem: one line
 *   on stderr, exit 2; an unreadable input: exit 1). Then the dedup
 *   topology of cli_common.h runs: every non-blank input line ends, byte
 *   for byte, in exactly one of DIR/unique.jsonl, DIR/duplicates.jsonl,
 *   DIR/late.jsonl and DIR/errors.jsonl. The summary printed last is
 *   counted from the input (records) and from the output files (the rest),
 *   so it is right after a restart too, when this process wrote only part
 *   of the files.
 *
 *   With --checkpoint-dir, checkpoints are taken every --checkpoint-every
 *   records (default 10000), the file sinks are exactly once, and a run
 *   started again after a crash (SIGKILL included) resumes from the last
 *   completed checkpoint and ends with the same files as a run that never
 *   crashed.
 *
 * Invariants: the process exits 0 only when the pipeline ran to the end of
 * the input; the summary is the last line on stdout.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <weir.h>
#include <weir/json.h>

#include "cli_common.h"
#if defined(WEIR_WITH_KAFKA) && defined(WEIR_WITH_AVRO)
#define WEIR_DEDUP_KAFKA 1
#include "dedup_kafka.h"
#endif

static const char usage[] =
    "usage: weir-dedup --input PATH --output-dir DIR --key FIELD[,FIELD...]\n"
    "                  [--time-field FIELD]\n"
    "                  [--window rolling:DUR|tumbling:DUR|session:DUR]\n"
    "                  [--max-out-of-orderness DUR] [--allowed-lateness DUR]\n"
    "                  [--watermark-every N] [--parallelism P]\n"
    "                  [--checkpoint-dir DIR] [--checkpoint-every N]\n"
    "\n"
    "Reads JSON lines from PATH and writes each non-blank line, byte for\n"
    "byte, to exactly one of DIR/unique.jsonl, DIR/duplicates.jsonl,\n"
    "DIR/late.jsonl or DIR/errors.jsonl; prints a JSON summary last.\n"
    "\n"
    "  --input PATH                 JSON-lines input file\n"
    "  --output-dir DIR             output directory (created if missing)\n"
    "  --key FIELD[,FIELD...]       fields whose values identify an event\n"
    "  --time-field FIELD           event time in ms since the epoch "
    "(default ts)\n"
    "  --window KIND:DUR            scope of \"same event\" (default "
    "rolling:1h)\n"
    "  --max-out-of-orderness DUR   watermark bound B (default 0)\n"
    "  --allowed-lateness DUR       allowed lateness L (default 0)\n"
    "  --watermark-every N          watermark after every N records "
    "(default 1)\n"
    "  --parallelism P              dedup instances, 1..1024 (default 1)\n"
    "  --checkpoint-dir DIR         checkpoints; a restart resumes, exactly "
    "once\n"
    "  --checkpoint-every N         records between checkpoints (default "
    "10000)\n"
    "  --help                       this text\n"
    "\n"
    "DUR is an integer with a unit ms, s, m, h or d (\"250ms\", \"10s\"), "
    "or 0.\n"
    "Exit status: 0 done, 1 input or run error, 2 bad arguments.\n";

/* Parses "rolling:DUR", "tumbling:DUR" or "session:DUR". */
static int parse_scope(const char *v, struct cli_dedup *d, char *msg)
{
    static const struct {
        const char *name;
        weir_window_kind_t kind;
    } kinds[] = {
        {"rolling:", WEIR_WINDOW_ROLLING},
        {"tumbling:", WEIR_WINDOW_TUMBLING},
        {"session:", WEIR_WINDOW_SESSION},
    };
    size_t i;
    size_t n;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        n = strlen(kinds[i].name);
        if (strncmp(v, kinds[i].name, n) != 0)
            continue;
        if (cli_parse_dur(v + n, &d->size) != 0) {
            cli_fmt(msg, "--window: bad duration in '%s'", v);
            return -1;
        }
        if (d->size == 0 && kinds[i].kind != WEIR_WINDOW_ROLLING) {
            cli_fmt(msg, "--window: '%s' needs a duration above 0", v);
            return -1;
        }
        d->scope = kinds[i].kind;
        return 0;
    }
    cli_fmt(msg,
            "--window: bad value '%s' (want rolling:DUR, tumbling:DUR "
            "or session:DUR)",
            v);
    return -1;
}

/* Fills d from the options; -1 with a message on a bad argument. */
static int parse_args(const struct cli_opt *o, struct cli_dedup *d, char *msg,
                      int kafka)
{
    uint64_t par;
    const char *req[] = {"key", "input", "output-dir"};
    size_t i;

    /* Kafka mode reads a topic and writes topics: only --key is needed. */
    for (i = 0; i < (kafka ? 1 : sizeof(req) / sizeof(req[0])); i++) {
        if (cli_get(o, req[i]) == NULL) {
            cli_fmt(msg, "missing --%s (see --help)", req[i]);
            return -1;
        }
    }
    d->input = cli_get(o, "input");
    d->outdir = cli_get(o, "output-dir");
    d->keys = cli_get(o, "key");
    d->time_field = cli_get(o, "time-field");
    if (d->time_field == NULL)
        d->time_field = WEIR_JSON_TIME_FIELD;
    d->ckdir = cli_get(o, "checkpoint-dir");
    d->scope = WEIR_WINDOW_ROLLING;
    d->size = WEIR_HOURS(1);
    if ((!kafka && (d->input[0] == '\0' || d->outdir[0] == '\0')) ||
        d->time_field[0] == '\0' || (d->ckdir && d->ckdir[0] == '\0')) {
        cli_fmt(msg, "empty --input, --output-dir, --time-field or "
                     "--checkpoint-dir");
        return -1;
    }
    if (cli_check_keys(d->keys, msg) != 0)
        return -1;
    if (cli_get(o, "window") != NULL &&
        parse_scope(cli_get(o, "window"), d, msg) != 0)
        return -1;
    if (cli_opt_dur(o, "max-out-of-orderness", 0, &d->bound, msg) != 0 ||
        cli_opt_dur(o, "allowed-lateness", 0, &d->lateness, msg) != 0 ||
        cli_opt_u64(o, "watermark-every", 1, UINT64_MAX, 1, &d->every, msg) !=
            0 ||
        cli_opt_u64(o, "parallelism", 1, 1024, 1, &par, msg) != 0 ||
        cli_opt_u64(o, "checkpoint-every", 1, INT64_MAX, 10000, &d->ck_every,
                    msg) != 0)
        return -1;
    d->parallelism = (int)par;
    if (cli_get(o, "checkpoint-every") != NULL && d->ckdir == NULL) {
        cli_fmt(msg, "--checkpoint-every needs --checkpoint-dir");
        return -1;
    }
    return 0;
}

#ifdef WEIR_DEDUP_KAFKA
/* Kafka mode: the same dedup graph between topics, exactly once by
 * default; dedup_kafka_run prints the summary line. */
static int run_kafka(const struct cli_opt *o, struct dedup_kafka_opts *k)
{
    char msg[CLI_MSG];

    if (parse_args(o, &k->d, msg, 1) != 0 ||
        dedup_kafka_from_opts(o, k, msg) != 0) {
        cli_error("weir-dedup", msg);
        return CLI_EXIT_USAGE;
    }
    if (dedup_kafka_run(k, msg) != 0) {
        cli_error("weir-dedup", msg);
        return CLI_EXIT_RUN;
    }
    return CLI_EXIT_OK;
}
#endif

int main(int argc, char **argv)
{
    struct cli_opt opts[] = {
        {"input", NULL, 0},
        {"output-dir", NULL, 0},
        {"key", NULL, 0},
        {"time-field", NULL, 0},
        {"window", NULL, 0},
        {"max-out-of-orderness", NULL, 0},
        {"allowed-lateness", NULL, 0},
        {"watermark-every", NULL, 0},
        {"parallelism", NULL, 0},
        {"checkpoint-dir", NULL, 0},
        {"checkpoint-every", NULL, 0},
#ifdef WEIR_DEDUP_KAFKA
        DEDUP_KAFKA_CLI_OPTS,
#endif
        {NULL, NULL, 0},
    };
    struct cli_dedup d;
#ifdef WEIR_DEDUP_KAFKA
    struct dedup_kafka_opts k;
#endif
    int64_t counts[CLI_NOUT];
    int64_t records;
    char msg[CLI_MSG];
    int rc;

    memset(&d, 0, sizeof(d));
#ifdef WEIR_DEDUP_KAFKA
    memset(&k, 0, sizeof(k));
    if (dedup_kafka_take_x(&argc, argv, &k, msg) != 0) {
        cli_error("weir-dedup", msg);
        return CLI_EXIT_USAGE;
    }
#endif
    rc = cli_parse(argc, argv, opts, msg);
    if (rc == 1) {
        fputs(usage, stdout);
#ifdef WEIR_DEDUP_KAFKA
        fputs(DEDUP_KAFKA_USAGE, stdout);
#endif
        return CLI_EXIT_OK;
    }
#ifdef WEIR_DEDUP_KAFKA
    if (rc == 0 && dedup_kafka_wanted(opts))
        return run_kafka(opts, &k);
#endif
    if (rc != 0 || parse_args(opts, &d, msg, 0) != 0) {
        cli_error("weir-dedup", msg);
        return CLI_EXIT_USAGE;
    }
    if (cli_check_input(d.input, msg) != 0 || cli_dedup_run(&d, msg) != 0) {
        cli_error("weir-dedup", msg);
        return CLI_EXIT_RUN;
    }
    records = cli_count_lines(d.input, 1, msg);
    if (records < 0 || cli_dedup_counts(d.outdir, counts, msg) != 0) {
        cli_error("weir-dedup", msg);
        return CLI_EXIT_RUN;
    }
    printf("{\"records\":%" PRId64 ",\"unique\":%" PRId64
           ",\"duplicates\":%" PRId64 ",\"late\":%" PRId64
           ",\"errors\":%" PRId64 "}\n",
           records, counts[CLI_UNIQUE], counts[CLI_DUPLICATES],
           counts[CLI_LATE], counts[CLI_ERRORS]);
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_RUN;
}
