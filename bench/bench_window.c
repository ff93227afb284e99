/*
 * bench/bench_window.c - keyed window throughput, as ratios against a
 * ceiling measured in the same run.
 *
 * Workload: N events (default 10 M; argv[1] overrides; argv[2] sets
 * pipeline.parallelism, default 1; argv[3] runs only the kinds whose
 * name contains it) over 10 000 keys. Event time rises by
 * 1 ms every 50 events with a deterministic jitter of +-40 ms, and the
 * watermark is bounded out-of-orderness 100 ms emitted every 100
 * records, so no record is late: every (key, window) seen fires exactly
 * once, which the benchmark checks.
 *
 * For each window kind, count aggregate:
 *   tumbling 1 s, sliding 10 s / 2 s (5 windows per event), session 1 s
 *   (keys are busy, so sessions grow: every event extends one)
 * it measures
 *   (a) ceiling: the same per-record work done bare - make the event,
 *       hash (key, window) with XXH3 and count it in a presized
 *       open-addressing table (sessions: one entry per key extended or
 *       restarted in place);
 *   (b) the full pipeline: generator -> watermark -> keyby -> window ->
 *       a collect sink counting firings.
 * Each runs 3 times; the median events/s and the ratio (b)/(a) are
 * printed, and the median CPU time the pipeline used per event (all of
 * its threads; on a shared machine this moves much less than wall-clock
 * throughput, so it is the figure to compare before/after a change).
 */
#include "bench_build.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include <weir.h>
#include <weir/watermark.h>
#include <weir/window.h>

#define RUNS   3
#define KEYS   10000
#define PER_MS 50
#define JITTER 40
#define BOUND  100

typedef struct kind {
    const char *name;
    weir_window_kind_t kind;
    weir_ts_t size;
    weir_ts_t slide;
} kind_t;

static const kind_t kinds[] = {
    {"tumbling 1 s", WEIR_WINDOW_TUMBLING, 1000, 1000},
    {"sliding 10 s / 2 s", WEIR_WINDOW_SLIDING, 10000, 2000},
    {"session gap 1 s", WEIR_WINDOW_SESSION, 1000, 0},
};

static char key_text[KEYS][8];

static double clock_s(clockid_t id)
{
    struct timespec t;

    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double now_s(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of the whole process (every thread). */
static double cpu_s(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Event i: its key index and timestamp. */
static void event(uint64_t i, unsigned *key, weir_ts_t *ts)
{
    uint64_t r = mix(i);

    *key = (unsigned)(r % KEYS);
    *ts = (weir_ts_t)(i / PER_MS) + (weir_ts_t)((r >> 32) % (2 * JITTER + 1)) -
          JITTER;
}

static double median3(double *v)
{
    double a = v[0];
    double b = v[1];
    double c = v[2];

    if (a > b) {
        double t = a;

        a = b;
        b = t;
    }
    if (b > c)
        b = c;
    return a > b ? a : b;
}

/* ------------------------------------------------------------------ *
 * ## (a) the ceiling
 * ------------------------------------------------------------------ */

typedef struct slot {
    uint64_t hash;        /* 0 = empty                        */
    unsigned key;         /* key index                        */
    weir_ts_t start;      /* window start                     */
    weir_ts_t end;        /* window end (sessions)            */
    uint64_t count;       /* records in the window            */
    weir_ts_t prev_start; /* sessions: the previous one  */
    weir_ts_t prev_end;   /* (prev_end == 0: none)       */
} slot_t;

typedef struct table {
    slot_t *slots;
    size_t mask;
    size_t used;
} table_t;

static slot_t *table_find(table_t *t, unsigned key, weir_ts_t start,
                          int by_key_only)
{
    unsigned char buf[16];
    uint64_t h;
    size_t i;

    memcpy(buf, key_text[key], 8);
    memcpy(buf + 8, &start, 8);
    h = XXH3_64bits(buf, by_key_only ? 8 : 16) | 1;
    for (i = h & t->mask;; i = (i + 1) & t->mask) {
        slot_t *s = &t->slots[i];

        if (s->hash == 0) {
            s->hash = h;
            s->key = key;
            s->start = start;
            t->used++;
            return s;
        }
        if (s->hash == h && s->key == key && (by_key_only || s->start == start))
            return s;
    }
}

static int touches(weir_ts_t s1, weir_ts_t e1, weir_ts_t s2, weir_ts_t e2)
{
    return s1 <= e2 && e1 >= s2;
}

/* Sessions of one key, the current one and the one before (records are
 * at most 80 ms out of order, sessions last at least a gap, so older
 * ones never change). Returns the sessions that ended for good. */
static uint64_t session_add(slot_t *s, weir_ts_t ts, weir_ts_t gap)
{
    weir_ts_t end = ts + gap;
    uint64_t done = 0;

    if (s->count > 0 && touches(ts, end, s->start, s->end)) {
        s->start = ts < s->start ? ts : s->start;
        s->end = end > s->end ? end : s->end;
    } else if (s->prev_end != 0 &&
               touches(ts, end, s->prev_start, s->prev_end)) {
        s->prev_start = ts < s->prev_start ? ts : s->prev_start;
        s->prev_end = end > s->prev_end ? end : s->prev_end;
    } else {
        done = s->prev_end != 0;
        s->prev_start = s->start;
        s->prev_end = s->count > 0 ? s->end : 0;
        s->start = ts;
        s->end = end;
    }
    s->count++;
    if (s->prev_end != 0 &&
        touches(s->prev_start, s->prev_end, s->start, s->end)) {
        s->start = s->prev_start < s->start ? s->prev_start : s->start;
        s->prev_end = 0;
    }
    return done;
}

/* Returns the number of windows seen (= the firings expected). */
static uint64_t ceiling_run(const kind_t *k, uint64_t n)
{
    table_t t;
    uint64_t windows = 0;
    size_t cap = 1;
    uint64_t i;

    while (cap < 4 * (k->kind == WEIR_WINDOW_SESSION ? KEYS : n / 4 + KEYS))
        cap *= 2;
    t.slots = calloc(cap, sizeof(*t.slots));
    t.mask = cap - 1;
    t.used = 0;
    if (t.slots == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned key;
        weir_ts_t ts;

        event(i, &key, &ts);
        if (k->kind == WEIR_WINDOW_SESSION) {
            slot_t *s = table_find(&t, key, 0, 1);

            windows += session_add(s, ts, k->size);
        } else {
            weir_ts_t start = weir_window_floor(ts, k->slide);

            for (; start > ts - k->size; start -= k->slide)
                table_find(&t, key, start, 0)->count++;
        }
    }
    if (k->kind == WEIR_WINDOW_SESSION) {
        size_t j;

        for (j = 0; j <= t.mask; j++)
            windows +=
                t.slots[j].hash != 0 ? 1 + (t.slots[j].prev_end != 0) : 0;
    } else {
        windows = t.used;
    }
    free(t.slots);
    return windows;
}

/* ------------------------------------------------------------------ *
 * ## (b) the pipeline
 * ------------------------------------------------------------------ */

typedef struct gen {
    uint64_t n;
} gen_t;

static int gen_fn(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
                  weir_ts_t *ts)
{
    const gen_t *g = opaque;
    unsigned k;

    if (i >= g->n)
        return 0;
    event(i, &k, ts);
    *key = WEIR_BUF(key_text[k], 8);
    *value = WEIR_BUF("1", 1);
    return 1;
}

static int count_fn(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    (*(uint64_t *)opaque)++;
    return WEIR_OK;
}

static int pipeline_run(const kind_t *k, uint64_t n, int parallelism,
                        uint64_t *fired, uint64_t *late)
{
    char errstr[256];
    char text[16];
    weir_conf_t *conf;
    weir_pipeline_t *p;
    weir_watermark_t *wm;
    weir_window_t *w;
    weir_stream_t *s;
    gen_t g = {.n = n};
    int rc;

    *fired = 0;
    *late = 0;
    conf = weir_conf_new();
    snprintf(text, sizeof(text), "%d", parallelism);
    if (conf == NULL || weir_conf_set(conf, "pipeline.parallelism", text,
                                      errstr, sizeof(errstr)) != WEIR_OK)
        return WEIR_EINVAL;
    p = weir_pipeline_new("bench-window", conf, errstr, sizeof(errstr));
    if (p == NULL) {
        fprintf(stderr, "pipeline: %s\n", errstr);
        return WEIR_EINVAL;
    }
    if (k->kind == WEIR_WINDOW_TUMBLING)
        w = weir_window_tumbling(k->size);
    else if (k->kind == WEIR_WINDOW_SLIDING)
        w = weir_window_sliding(k->size, k->slide);
    else
        w = weir_window_session(k->size);
    wm = weir_watermark_bounded(BOUND);
    weir_watermark_set_every(wm, 100);
    s = weir_source_generator(p, "gen", gen_fn, &g);
    s = weir_stream_watermark(s, wm);
    s = weir_stream_keyby(s, NULL, NULL);
    s = weir_stream_window(s, w, &weir_agg_count, NULL);
    weir_stream_collect(weir_stream_side_output(s, WEIR_TAG_LATE), count_fn,
                        late);
    weir_stream_collect(s, count_fn, fired);
    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK)
        fprintf(stderr, "run: %s\n", weir_pipeline_errstr(p));
    weir_pipeline_destroy(p);
    return rc;
}

int main(int argc, char **argv)
{
    uint64_t n = 10000000;
    int parallelism = 1;
    size_t i;
    int r;

    bench_check_build("bench-window");
    if (argc > 1)
        n = strtoull(argv[1], NULL, 10);
    if (argc > 2)
        parallelism = atoi(argv[2]);
    if (n == 0 || parallelism < 1) {
        fprintf(stderr, "usage: bench-window [events [parallelism [kind]]]\n");
        return 2;
    }
    for (i = 0; i < KEYS; i++)
        snprintf(key_text[i], sizeof(key_text[i]), "k%06zu", i);
    printf("bench-window: %llu events, %d keys, parallelism %d, count "
           "aggregate; median of %d\n",
           (unsigned long long)n, KEYS, parallelism, RUNS);
    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const kind_t *k = &kinds[i];
        double bare[RUNS];
        double pipe[RUNS];
        double cpu[RUNS];
        uint64_t want = 0;
        uint64_t fired = 0;
        uint64_t late = 0;
        double t0;
        double c0;
        double c;
        double m;

        if (argc > 3 && strstr(k->name, argv[3]) == NULL)
            continue;
        for (r = 0; r < RUNS; r++) {
            t0 = now_s();
            want = ceiling_run(k, n);
            bare[r] = (double)n / (now_s() - t0);
        }
        for (r = 0; r < RUNS; r++) {
            t0 = now_s();
            c0 = cpu_s();
            if (pipeline_run(k, n, parallelism, &fired, &late) != WEIR_OK)
                return 1;
            pipe[r] = (double)n / (now_s() - t0);
            cpu[r] = (cpu_s() - c0) * 1e9 / (double)n;
        }
        c = median3(bare);
        m = median3(pipe);
        printf("%-20s ceiling %8.2f M ev/s   pipeline %6.2f M ev/s   "
               "ratio %.3f   cpu %4.0f ns/ev   (%llu firings, %llu late%s)\n",
               k->name, c / 1e6, m / 1e6, m / c, median3(cpu),
               (unsigned long long)fired, (unsigned long long)late,
               fired == want && late == 0 ? "" : ", MISMATCH");
    }
    return 0;
}
