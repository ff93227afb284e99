/*
 * weir_demo.c - the end-to-end demo (`make demo`): generates a realistic
 * stream of shop events, deduplicates it with the weir-dedup topology and
 * checks the outcome against what the generator knows.
 *
 * How it works
 *   The generator (fixed seed, so every run is the same) writes JSON lines
 *   of order and click events into a temporary directory. Every line is
 *   one of:
 *     - an original event: a new event_id, its time up to 3 s behind the
 *       producer clock (out of order within a bounded delay);
 *     - a producer retry: an event from the last few dozen, re-sent byte
 *       for byte a moment later;
 *     - a replay: a burst of hundreds of events from 5 to 20 minutes
 *       earlier, re-sent in a block (an upstream job replayed its log);
 *     - a late event: a new event_id stamped 2 to 6 hours in the past
 *       (a device that was offline);
 *     - a malformed line (cut short, no event_id, time as a string, not
 *       an object, invalid UTF-8, fractional time);
 *     - rarely, a blank line (ignored, not counted).
 *   Then it runs the dedup topology of weir-dedup in this process
 *   (cli_common.h): key event_id, rolling:1h scope, max out-of-orderness
 *   5 s, watermark after every record. With that configuration the
 *   classification is known in advance: originals are unique (3 s < 5 s,
 *   so never late), retries and replays are duplicates (their first copy
 *   is at most 20 minutes old, well inside the hour), late events are late
 *   (hours behind the watermark, with no state to match), malformed lines
 *   are errors. The demo prints the counts beside the generator's, the
 *   throughput, and fails (exit 1) if any count differs.
 *
 * Invariants: deterministic input for a given seed and size; the
 * temporary directory is removed unless --keep is given.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weir.h>
#include <weir/json.h>

#include "cli_common.h"

#define T0           INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */
#define MAX_DELAY    3000 /* originals: up to 3 s out of order */
#define BOUND        "5s" /* watermark bound B > MAX_DELAY     */
#define RETRY_WINDOW 50   /* retries re-send one of the last N */

static const char usage[] =
    "usage: weir-demo [--events N] [--seed S] [--parallelism P] [--keep]\n"
    "Generates N JSON events (default 200000) with duplicates, late and\n"
    "malformed lines, deduplicates them with the weir-dedup topology and\n"
    "checks the counts against the generator's ground truth.\n";

/* What the generator wrote, by outcome. */
struct truth {
    int64_t originals;
    int64_t retries;
    int64_t replayed;
    int64_t late;
    int64_t errors;
    int64_t blanks;
};

struct gen {
    uint64_t rng;   /* splitmix64 state                     */
    int64_t base;   /* producer clock                       */
    int64_t *ts;    /* ts of original i                     */
    int64_t *at;    /* producer clock when i was first sent */
    size_t n;       /* originals so far                     */
    FILE *out;      /* events file                          */
    struct truth t; /* what was written                     */
};

static uint64_t next_u64(struct gen *g)
{
    uint64_t z = (g->rng += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t uniform(struct gen *g, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(next_u64(g) % (uint64_t)(hi - lo + 1));
}

/* Writes the event line of original i; the same bytes every time, so a
 * retry or replay is a byte-exact copy. */
static void write_original(struct gen *g, size_t i)
{
    uint64_t h = (uint64_t)i * UINT64_C(0x9e3779b97f4a7c15);
    unsigned user = (unsigned)(h >> 40) % 20000;

    if ((h >> 20) % 5 == 0)
        fprintf(g->out,
                "{\"event_id\":\"ev-%08zu\",\"type\":\"order\",\"user\":"
                "\"u-%05u\",\"ts\":%" PRId64 ",\"amount_cents\":%u,"
                "\"currency\":\"EUR\"}\n",
                i, user, g->ts[i], (unsigned)(h >> 8) % 50000 + 99);
    else
        fprintf(g->out,
                "{\"event_id\":\"ev-%08zu\",\"type\":\"click\",\"user\":"
                "\"u-%05u\",\"ts\":%" PRId64 ",\"page\":\"/item/%u\"}\n",
                i, user, g->ts[i], (unsigned)(h >> 12) % 3000);
}

/* A producer retry: one of the last RETRY_WINDOW originals again. */
static void write_retry(struct gen *g)
{
    int64_t window = g->n < RETRY_WINDOW ? (int64_t)g->n : RETRY_WINDOW;

    write_original(g, g->n - 1 - (size_t)uniform(g, 0, window - 1));
    g->t.retries++;
}

static void write_new_original(struct gen *g)
{
    g->base += uniform(g, 0, 50);
    g->ts[g->n] = g->base - uniform(g, 0, MAX_DELAY);
    g->at[g->n] = g->base;
    write_original(g, g->n);
    g->n++;
    g->t.originals++;
}

/* The first original sent at or after producer time t (g->n if none). */
static size_t first_sent_at(const struct gen *g, int64_t t)
{
    size_t lo = 0;
    size_t hi = g->n;
    size_t mid;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (g->at[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A burst of originals first sent 5 to 20 minutes ago, re-sent from a
 * random point of that range. Returns the number of lines written. */
static int64_t write_replay(struct gen *g, int64_t budget)
{
    size_t lo = first_sent_at(g, g->base - WEIR_MINUTES(20));
    size_t hi = first_sent_at(g, g->base - WEIR_MINUTES(5) + 1);
    int64_t len = uniform(g, 200, 800);
    size_t start;
    int64_t k;

    if (lo >= hi)
        return 0;
    start = lo + (size_t)uniform(g, 0, (int64_t)(hi - lo) - 1);
    if (len > budget)
        len = budget;
    if (len > (int64_t)(hi - start))
        len = (int64_t)(hi - start);
    for (k = 0; k < len; k++)
        write_original(g, start + (size_t)k);
    g->t.replayed += len;
    return len;
}

static void write_late(struct gen *g)
{
    fprintf(g->out,
            "{\"event_id\":\"ev-late-%06" PRId64 "\",\"type\":\"click\","
            "\"user\":\"u-%05u\",\"ts\":%" PRId64 ",\"page\":\"/home\"}\n",
            g->t.late, (unsigned)uniform(g, 0, 19999),
            g->base - uniform(g, WEIR_HOURS(2), WEIR_HOURS(6)));
    g->t.late++;
}

static void write_malformed(struct gen *g)
{
    int64_t e = g->t.errors++;

    switch (uniform(g, 0, 5)) {
    case 0:
        fprintf(g->out,
                "{\"event_id\":\"ev-bad-%06" PRId64 "\",\"type\":"
                "\"click\",\"ts\":\n",
                e);
        break;
    case 1:
        fprintf(g->out,
                "{\"type\":\"order\",\"user\":\"u-00001\",\"ts\":%" PRId64
                "}\n",
                g->base);
        break;
    case 2:
        fprintf(g->out,
                "{\"event_id\":\"ev-bad-%06" PRId64 "\",\"ts\":"
                "\"2024-01-01T00:00:00Z\"}\n",
                e);
        break;
    case 3:
        fprintf(g->out, "[\"ev-bad-%06" PRId64 "\",%" PRId64 "]\n", e, g->base);
        break;
    case 4:
        fprintf(g->out,
                "{\"event_id\":\"ev-\xff%06" PRId64 "\",\"ts\":%" PRId64 "}\n",
                e, g->base);
        break;
    default:
        fprintf(g->out,
                "{\"event_id\":\"ev-bad-%06" PRId64 "\",\"ts\":%" PRId64
                ".5}\n",
                e, g->base);
        break;
    }
}

/* Writes `events` non-blank lines to path. */
static int generate(const char *path, int64_t events, uint64_t seed,
                    struct truth *t)
{
    struct gen g;
    int64_t written = 0;
    int64_t r;
    int rc = 0;

    memset(&g, 0, sizeof(g));
    g.rng = seed;
    g.base = T0;
    g.ts = malloc((size_t)events * sizeof(*g.ts));
    g.at = malloc((size_t)events * sizeof(*g.at));
    g.out = fopen(path, "w");
    if (g.ts == NULL || g.at == NULL || g.out == NULL) {
        rc = -1;
        goto done;
    }
    while (written < events) {
        r = uniform(&g, 0, 9999);
        if (r < 3 && g.n > 0) {
            written += write_replay(&g, events - written);
            continue;
        }
        if (r < 800 && g.n > 0) {
            write_retry(&g);
        } else if (r < 830 && g.n > 0) {
            write_late(&g);
        } else if (r < 845) {
            write_malformed(&g);
        } else if (r < 850) {
            fputs(r % 2 ? "\n" : "  \n", g.out);
            g.t.blanks++;
            continue;
        } else {
            write_new_original(&g);
        }
        written++;
    }
    *t = g.t;
done:
    if (g.out != NULL && fclose(g.out) != 0)
        rc = -1;
    free(g.ts);
    free(g.at);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void remove_tree(const char *dir, const char *outdir, const char *input)
{
    char path[4096];
    int f;

    for (f = 0; f < CLI_NOUT; f++) {
        cli_join(path, outdir, cli_dedup_files[f]);
        unlink(path);
    }
    rmdir(outdir);
    unlink(input);
    rmdir(dir);
}

static int report(const int64_t *got, const struct truth *t, int64_t lines,
                  double secs)
{
    int64_t want[CLI_NOUT];
    const char *names[CLI_NOUT] = {"unique", "duplicates", "late", "errors"};
    int64_t total = 0;
    int ok = 1;
    int f;

    want[CLI_UNIQUE] = t->originals;
    want[CLI_DUPLICATES] = t->retries + t->replayed;
    want[CLI_LATE] = t->late;
    want[CLI_ERRORS] = t->errors;
    printf("\n  %-12s %10s %12s\n", "outcome", "weir", "generator");
    for (f = 0; f < CLI_NOUT; f++)
        total += got[f];
    printf("  %-12s %10" PRId64 " %12" PRId64 "\n", "records", total, lines);
    ok = total == lines;
    for (f = 0; f < CLI_NOUT; f++) {
        printf("  %-12s %10" PRId64 " %12" PRId64 "%s\n", names[f], got[f],
               want[f], got[f] == want[f] ? "" : "   <-- differs");
        ok = ok && got[f] == want[f];
    }
    printf("  (duplicates: %" PRId64 " producer retries + %" PRId64
           " replayed events;\n   %" PRId64 " blank lines ignored)\n",
           t->retries, t->replayed, t->blanks);
    printf("\n  throughput   %.0f events/s (%" PRId64 " events in %.2f s)\n",
           secs > 0 ? (double)lines / secs : 0.0, lines, secs);
    if (ok)
        printf("\ncounts match the generator's ground truth\n");
    else
        printf("\nFAILED: counts differ from the generator's ground truth\n");
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct cli_opt opts[] = {
        {"events", NULL, 0}, {"seed", NULL, 0}, {"parallelism", NULL, 0},
        {"keep", NULL, 1},   {NULL, NULL, 0},
    };
    struct cli_dedup d;
    struct truth t;
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    char input[4096];
    char outdir[4096];
    char msg[CLI_MSG];
    int64_t got[CLI_NOUT];
    uint64_t events;
    uint64_t seed;
    uint64_t par;
    double t0;
    double secs;
    int rc;

    rc = cli_parse(argc, argv, opts, msg);
    if (rc == 1) {
        fputs(usage, stdout);
        return 0;
    }
    if (rc != 0 ||
        cli_opt_u64(opts, "events", 1, 100000000, 200000, &events, msg) ||
        cli_opt_u64(opts, "seed", 0, UINT64_MAX, 42, &seed, msg) ||
        cli_opt_u64(opts, "parallelism", 1, 1024, 2, &par, msg)) {
        cli_error("weir-demo", msg);
        return CLI_EXIT_USAGE;
    }
    snprintf(dir, sizeof(dir), "%s/weir-demo-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        cli_fmt(msg, "cannot create a directory in %s", dir);
        cli_error("weir-demo", msg);
        return CLI_EXIT_RUN;
    }
    cli_join(input, dir, "events.jsonl");
    cli_join(outdir, dir, "out");
    printf("weir demo: event-time dedup of %" PRIu64 " shop events "
           "(seed %" PRIu64 ")\n",
           events, seed);
    if (generate(input, (int64_t)events, seed, &t) != 0) {
        cli_fmt(msg, "cannot write %s", input);
        cli_error("weir-demo", msg);
        remove_tree(dir, outdir, input);
        return CLI_EXIT_RUN;
    }
    printf("  input        %s\n", input);
    printf("  pipeline     file -> json parse -> watermark (B=" BOUND
           ", every record)\n"
           "               -> key_by(event_id) -> dedup rolling:1h "
           "(parallelism %" PRIu64 ")\n"
           "               -> unique / duplicates / late / errors files\n",
           par);
    memset(&d, 0, sizeof(d));
    d.input = input;
    d.outdir = outdir;
    d.keys = "event_id";
    d.time_field = "ts";
    d.scope = WEIR_WINDOW_ROLLING;
    d.size = WEIR_HOURS(1);
    d.bound = WEIR_SECONDS(5);
    d.every = 1;
    d.parallelism = (int)par;
    t0 = now_s();
    rc = cli_dedup_run(&d, msg);
    secs = now_s() - t0;
    if (rc == 0)
        rc = cli_dedup_counts(outdir, got, msg);
    if (rc != 0) {
        cli_error("weir-demo", msg);
        remove_tree(dir, outdir, input);
        return CLI_EXIT_RUN;
    }
    rc = report(got, &t, (int64_t)events, secs);
    if (cli_get(opts, "keep") != NULL)
        printf("files kept in %s\n", dir);
    else
        remove_tree(dir, outdir, input);
    return rc == 0 ? 0 : 1;
}
