/*
 * examples/custom_watermark.c - the skew_guard watermark generator of
 * examples/custom_watermark.h against the built-in bounded one.
 *
 * How it works
 *   Three sensors send one reading every 100 ms of event time, 1500 in
 *   all; every 300th reading comes from a device whose clock is a day
 *   ahead. The same pipeline runs twice,
 *
 *     generator -> watermark (strategy) -> keyby (sensor)
 *               -> tumbling 10 s window, count -> collect
 *                                            \-> late side output -> collect
 *
 *   first with weir_watermark_bounded(2 s), then with
 *   weir_watermark_custom(&skew_guard, ...) with the same 2 s bound and
 *   jumps of more than one minute ignored. The first skewed reading
 *   moves the bounded watermark a day ahead and makes every later
 *   on-time reading late; skew_guard ignores it.
 *
 * Invariants
 *   Deterministic input, so: bounded gives 1196 late readings, skew_guard
 *   none, and every reading counted. The program checks this and exits 1
 *   otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include <weir.h>

#include "custom_watermark.h"

#define READINGS 1500
#define START    WEIR_SECONDS(1700000000)

struct sensors {
    char key[16]; /* borrowed by the runtime until the next call */
};

struct result {
    int64_t counted; /* sum of window counts   */
    uint64_t late;   /* late side output size  */
};

static int gen_reading(void *opaque, uint64_t i, weir_buf_t *key,
                       weir_buf_t *value, weir_ts_t *ts)
{
    struct sensors *g = opaque;

    if (i >= READINGS)
        return 0;
    snprintf(g->key, sizeof(g->key), "sensor-%u", (unsigned)(i % 3));
    *key = WEIR_BUF_STR(g->key);
    *value = WEIR_BUF_STR("21.5");
    *ts = START + (weir_ts_t)i * 100;
    if (i % 300 == 299)
        *ts += WEIR_DAYS(1); /* a clock running a day ahead */
    return 1;
}

static int add_count(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct result *r = opaque;
    weir_buf_t value = weir_record_value(rec);
    char text[24];

    (void)tag;
    snprintf(text, sizeof(text), "%.*s", (int)value.len,
             (const char *)value.data);
    r->counted += strtoll(text, NULL, 10);
    return WEIR_OK;
}

static int add_late(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct result *r = opaque;

    (void)rec;
    (void)tag;
    r->late++;
    return WEIR_OK;
}

/* Runs the pipeline with strategy wm (consumed). */
static int run_with(const char *label, weir_watermark_t *wm, struct result *r)
{
    struct sensors gen = {{0}};
    struct result late = {0};
    char errstr[256];
    weir_pipeline_t *p;
    weir_stream_t *s;
    weir_stream_t *counts;
    int rc;

    p = weir_pipeline_new(label, NULL, errstr, sizeof(errstr));
    if (p == NULL) {
        if (wm != NULL)
            weir_watermark_destroy(wm);
        fprintf(stderr, "pipeline: %s\n", errstr);
        return WEIR_ENOMEM;
    }
    s = weir_source_generator(p, "readings", gen_reading, &gen);
    s = weir_stream_watermark(s, wm);
    s = weir_stream_keyby(s, NULL, NULL);
    counts = weir_stream_window(s, weir_window_tumbling(WEIR_SECONDS(10)),
                                &weir_agg_count, NULL);
    weir_stream_collect(counts, add_count, r);
    weir_stream_collect(weir_stream_side_output(counts, WEIR_TAG_LATE),
                        add_late, &late);

    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK)
        fprintf(stderr, "run: %s: %s\n", weir_strerror(rc),
                weir_pipeline_errstr(p));
    weir_pipeline_destroy(p);
    r->late = late.late;
    printf("%-11s %4lld readings counted, %4llu late\n", label,
           (long long)r->counted, (unsigned long long)r->late);
    return rc;
}

int main(void)
{
    static const struct skew_guard_args args = {
        .max_ooo = WEIR_SECONDS(2),
        .max_jump = WEIR_MINUTES(1),
    };
    struct result bounded = {0};
    struct result guarded = {0};

    if (run_with("bounded", weir_watermark_bounded(WEIR_SECONDS(2)),
                 &bounded) != WEIR_OK ||
        run_with("skew_guard", weir_watermark_custom(&skew_guard, &args),
                 &guarded) != WEIR_OK)
        return 1;

    if (bounded.late != 1196 || bounded.counted != READINGS - 1196 ||
        guarded.late != 0 || guarded.counted != READINGS) {
        fprintf(stderr, "unexpected result\n");
        return 1;
    }
    return 0;
}
