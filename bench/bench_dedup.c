/*
 * bench/bench_dedup.c - in-memory dedup throughput and memory, as ratios
 * against a ceiling measured in the same run.
 *
 * Workload: N events (default 10 M; argv[1] overrides), 16-byte random
 * keys, 10% of events repeat an earlier key. Event time rises by 1 ms per
 * event and the rolling TTL is one day, so nothing expires: every repeat
 * is a duplicate and the table ends with ~0.9 N live keys.
 *
 *   (a)  ceiling: a bare open-addressing set of the 16-byte keys
 *        (XXH3_64 hash, linear probing, insert-if-absent), presized;
 *   (a2) the dedup table alone: dedup_rolling_h() from
 *        operators/dedup_table.h, exactly what the operator runs per
 *        record (128-bit digest, expiry check, growth by rebuild), not
 *        presized, with the digest computed and the slot prefetched
 *        TABLE_AHEAD records ahead as the operator's prefetch hint does;
 *   (b)  the dedup operator driven by the harness (which also copies
 *        every output record: an upper bound on operator cost);
 *   (c)  a full pipeline: generator -> watermark (bounded 1 s, every
 *        1000) -> keyby -> dedup -> counting collect sinks, at
 *        pipeline.parallelism 1.
 *
 * The four are run in turn, 3 rounds (interleaved, so that a change in
 * the load of a shared machine hits all of them alike); the median
 * events/s and its ratio to (a) are printed, by wall clock and, for the
 * single-threaded ones, by process CPU time (steadier when other work
 * competes for the cores). Memory: bytes per live key of the table's own
 * allocation (from (a2), the operator's structure), and the same minus the 16
 * bytes of digest that stand in for the key.
 */
#include "bench_build.h"
#include "../operators/dedup_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>
#include <weir/watermark.h>
#include <weir/window.h>

#define RUNS    3
#define KEY_LEN 16
#define TTL     WEIR_DAYS(1)

struct workload {
    size_t n;            /* events                          */
    unsigned char *keys; /* n * KEY_LEN bytes               */
    size_t uniques;      /* distinct keys among the events  */
};

/* A measurement: wall-clock and process CPU seconds. */
struct span {
    double wall;
    double cpu;
};

static double clock_s(clockid_t id)
{
    struct timespec t;

    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static struct span span_now(void)
{
    struct span s;

    s.wall = clock_s(CLOCK_MONOTONIC);
    s.cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    return s;
}

/* Events per second over [t0, now): wall in r[0], CPU in r[1]. */
static void rate(size_t n, struct span t0, double r[2])
{
    struct span t1 = span_now();

    r[0] = (double)n / (t1.wall - t0.wall);
    r[1] = (double)n / (t1.cpu - t0.cpu);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z;

    z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int make_workload(struct workload *wl, size_t n)
{
    uint64_t s;
    uint64_t a;
    uint64_t b;
    size_t i;

    wl->n = n;
    wl->uniques = 0;
    wl->keys = malloc(n * KEY_LEN);
    if (wl->keys == NULL)
        return -1;
    s = 42;
    for (i = 0; i < n; i++) {
        if (i > 0 && splitmix(&s) % 10 == 0) {
            memcpy(wl->keys + i * KEY_LEN,
                   wl->keys + (splitmix(&s) % i) * KEY_LEN, KEY_LEN);
            continue;
        }
        a = splitmix(&s) | 1; /* never all zero: zero marks empty in (a) */
        b = splitmix(&s);
        memcpy(wl->keys + i * KEY_LEN, &a, 8);
        memcpy(wl->keys + i * KEY_LEN + 8, &b, 8);
        wl->uniques++;
    }
    return 0;
}

/* Median of the RUNS values v[0][k], v[1][k], ... */
static double median(double v[RUNS][2], int k)
{
    double c[RUNS];
    double t;
    int i;
    int j;

    for (i = 0; i < RUNS; i++)
        c[i] = v[i][k];
    for (i = 0; i < RUNS; i++) {
        for (j = i + 1; j < RUNS; j++) {
            if (c[j] < c[i]) {
                t = c[i];
                c[i] = c[j];
                c[j] = t;
            }
        }
    }
    return c[RUNS / 2];
}

/* ------------------------------------------------------------------ *
 * ## (a) the ceiling: a bare set of 16-byte keys
 * ------------------------------------------------------------------ */

/* One run; r gets wall and CPU events/s. Returns the repeats found. */
static size_t run_bare(const struct workload *wl, double r[2], size_t *bytes)
{
    unsigned char *slots;
    const unsigned char *k;
    unsigned char *sl;
    struct span t0;
    size_t dups;
    size_t mask;
    size_t cap;
    size_t i;
    size_t j;
    uint64_t w0;
    uint64_t w1;

    cap = 16;
    while (cap * 3 < wl->n * 4) /* load <= 3/4 even if all unique */
        cap <<= 1;
    slots = calloc(cap, KEY_LEN);
    if (slots == NULL)
        return 0;
    mask = cap - 1;
    dups = 0;
    t0 = span_now();
    for (i = 0; i < wl->n; i++) {
        k = wl->keys + i * KEY_LEN;
        j = (size_t)XXH3_64bits(k, KEY_LEN) & mask;
        for (;;) {
            sl = slots + j * KEY_LEN;
            memcpy(&w0, sl, 8);
            memcpy(&w1, sl + 8, 8);
            if (w0 == 0 && w1 == 0) {
                memcpy(sl, k, KEY_LEN);
                break;
            }
            if (memcmp(sl, k, KEY_LEN) == 0) {
                dups++;
                break;
            }
            j = (j + 1) & mask;
        }
    }
    rate(wl->n, t0, r);
    *bytes = cap * KEY_LEN;
    free(slots);
    return dups;
}

/* ------------------------------------------------------------------ *
 * ## (a2) the dedup table alone
 * ------------------------------------------------------------------ */

#define TABLE_AHEAD 8 /* as the runtime's prefetch hint */

static XXH128_hash_t ahead(const struct workload *wl, dtab_t *t, size_t i)
{
    XXH128_hash_t d = XXH3_128bits(wl->keys + i * KEY_LEN, KEY_LEN);

    dtab_prefetch(t, d.low64);
    return d;
}

static size_t run_table(const struct workload *wl, double r[2], size_t *bytes,
                        size_t *live)
{
    XXH128_hash_t d[TABLE_AHEAD];
    XXH128_hash_t h;
    struct span t0;
    size_t dups;
    dtab_t t;
    size_t i;
    int cls;

    if (dtab_init(&t, sizeof(struct dtab_head), NULL, 0) != WEIR_OK)
        return 0;
    dups = 0;
    t0 = span_now();
    for (i = 0; i < TABLE_AHEAD && i < wl->n; i++)
        d[i] = ahead(wl, &t, i);
    for (i = 0; i < wl->n; i++) {
        h = d[i % TABLE_AHEAD];
        if (i + TABLE_AHEAD < wl->n)
            d[i % TABLE_AHEAD] = ahead(wl, &t, i + TABLE_AHEAD);
        cls = dedup_rolling_h(&t, h, (weir_ts_t)i, WEIR_TS_MIN, TTL, 0);
        if (cls < 0) {
            fprintf(stderr, "table: %s\n", weir_strerror(cls));
            break;
        }
        dups += cls == DEDUP_DUPLICATE;
    }
    rate(wl->n, t0, r);
    *bytes = dtab_bytes(&t);
    *live = t.used;
    dtab_free(&t);
    return dups;
}

/* ------------------------------------------------------------------ *
 * ## (b) the operator through the harness
 * ------------------------------------------------------------------ */

static size_t run_harness(const struct workload *wl, double r[2])
{
    weir_harness_t *h;
    struct span t0;
    size_t dups;
    size_t i;

    h = weir_harness_new_dedup(weir_window_rolling(TTL));
    if (h == NULL)
        return 0;
    dups = 0;
    t0 = span_now();
    for (i = 0; i < wl->n; i++) {
        if (weir_harness_push_buf(h, WEIR_BUF(wl->keys + i * KEY_LEN, KEY_LEN),
                                  WEIR_BUF_NULL, (weir_ts_t)i) != WEIR_OK)
            break;
        if (i % 1000 == 999) {
            weir_harness_watermark(h, (weir_ts_t)i - 1000);
            dups += weir_harness_count(h, WEIR_TAG_DUPLICATE);
            weir_harness_clear(h);
        }
    }
    dups += weir_harness_count(h, WEIR_TAG_DUPLICATE);
    rate(wl->n, t0, r);
    weir_harness_destroy(h);
    return dups;
}

/* ------------------------------------------------------------------ *
 * ## (c) a full pipeline
 * ------------------------------------------------------------------ */

static int gen(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
               weir_ts_t *ts)
{
    const struct workload *wl = opaque;

    if (i >= wl->n)
        return 0;
    *key = WEIR_BUF(wl->keys + i * KEY_LEN, KEY_LEN);
    *value = WEIR_BUF("", 0);
    *ts = (weir_ts_t)i;
    return 1;
}

static int count_sink(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    (*(size_t *)opaque)++;
    return WEIR_OK;
}

static size_t run_pipeline(struct workload *wl, double r[2])
{
    weir_watermark_t *wm;
    weir_pipeline_t *p;
    weir_conf_t *conf;
    weir_stream_t *s;
    weir_stream_t *d;
    struct span t0;
    size_t uniques;
    size_t dups;
    char err[256];
    int rc;

    conf = weir_conf_new();
    if (conf == NULL || weir_conf_set(conf, "pipeline.parallelism", "1", err,
                                      sizeof(err)) != WEIR_OK) {
        weir_conf_destroy(conf);
        return 0;
    }
    p = weir_pipeline_new("bench-dedup", conf, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "pipeline: %s\n", err);
        return 0;
    }
    uniques = 0;
    dups = 0;
    wm = weir_watermark_bounded(WEIR_SECONDS(1));
    weir_watermark_set_every(wm, 1000);
    s = weir_source_generator(p, "gen", gen, wl);
    s = weir_stream_watermark(s, wm);
    s = weir_stream_keyby(s, NULL, NULL);
    d = weir_stream_dedup(s, TTL);
    weir_stream_collect(d, count_sink, &uniques);
    weir_stream_collect(weir_stream_side_output(d, WEIR_TAG_DUPLICATE),
                        count_sink, &dups);
    t0 = span_now();
    rc = weir_pipeline_run(p);
    rate(wl->n, t0, r);
    if (rc != WEIR_OK)
        fprintf(stderr, "run: %s\n", weir_pipeline_errstr(p));
    weir_pipeline_destroy(p);
    if (rc == WEIR_OK && uniques + dups != wl->n)
        fprintf(stderr, "pipeline: %zu + %zu != %zu events\n", uniques, dups,
                wl->n);
    return dups;
}

/* ------------------------------------------------------------------ *
 * ## Main
 * ------------------------------------------------------------------ */

static void report(const char *what, double v[RUNS][2], double ceiling[2],
                   int cpu, int correct)
{
    double wall;
    double c;

    wall = median(v, 0);
    c = median(v, 1);
    printf("%-36s %7.2f M events/s  ratio %.2f", what, wall / 1e6,
           wall / ceiling[0]);
    if (cpu)
        printf("  (CPU time: %.2f M/s, ratio %.2f)", c / 1e6, c / ceiling[1]);
    printf("%s\n", correct ? "" : "  WRONG duplicate count");
}

int main(int argc, char **argv)
{
    double bare[RUNS][2];
    double table[RUNS][2];
    double harness[RUNS][2];
    double pipe[RUNS][2];
    double ceiling[2];
    struct workload wl;
    size_t bare_bytes;
    size_t table_bytes;
    size_t live;
    size_t want;
    size_t n;
    int ok[4] = {1, 1, 1, 1};
    int i;

    bench_check_build("bench-dedup");
    bare_bytes = 0;
    table_bytes = 0;
    live = 1;
    n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000000;
    if (n == 0 || make_workload(&wl, n) != 0) {
        fprintf(stderr, "usage: bench-dedup [events]\n");
        return 1;
    }
    want = wl.n - wl.uniques;
    printf("bench-dedup: %zu events, %zu distinct 16-byte keys, %zu "
           "repeats; median of %d interleaved runs\n",
           wl.n, wl.uniques, want, RUNS);
    for (i = 0; i < RUNS; i++) {
        ok[0] &= run_bare(&wl, bare[i], &bare_bytes) == want;
        ok[1] &= run_table(&wl, table[i], &table_bytes, &live) == want;
        ok[2] &= run_harness(&wl, harness[i]) == want;
        ok[3] &= run_pipeline(&wl, pipe[i]) == want;
    }
    ceiling[0] = median(bare, 0);
    ceiling[1] = median(bare, 1);
    report("(a)  bare set, presized (ceiling)", bare, ceiling, 1, ok[0]);
    report("(a2) dedup table (operator core)", table, ceiling, 1, ok[1]);
    report("(b)  dedup operator via harness", harness, ceiling, 1, ok[2]);
    report("(c)  gen>watermark>keyby>dedup>sink", pipe, ceiling, 0, ok[3]);
    printf("memory: bare set %.1f B/key (presized); dedup table %zu B for "
           "%zu live keys = %.1f B/key, %.1f B/key beyond the 16-byte "
           "digest\n",
           (double)bare_bytes / (double)wl.uniques, table_bytes, live,
           (double)table_bytes / (double)live,
           (double)table_bytes / (double)live - 16.0);
    free(wl.keys);
    return 0;
}
