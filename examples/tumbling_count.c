/*
 * examples/tumbling_count.c - clicks per user per 10 seconds of event
 * time, with late clicks kept apart.
 *
 * How it works
 *   A generator source produces 1000 clicks of five users, one every
 *   137 ms of event time, each shifted by up to +/-750 ms (out of order,
 *   but within the watermark's 2 s bound). Every 200th click is stamped
 *   30 s in the past: by then its window has fired, so it is late.
 *
 *     generator -> watermark (bounded, 2 s) -> keyby (record key)
 *               -> tumbling 10 s window, count -> collect (print)
 *                                            \-> late side output -> collect
 *
 *   Results arrive as records: key = user, value = the count as decimal
 *   text, ts = window end - 1, and the window bounds in headers, read
 *   with weir_record_window().
 *
 * Invariants
 *   Every click is counted once or reported late once: the program checks
 *   that the counts add up to 995 and that 5 clicks were late, and exits
 *   1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include <weir.h>

#define CLICKS 1000
#define START  WEIR_SECONDS(1700000000)

struct clicks {
    char key[16]; /* borrowed by the runtime until the next call */
};

struct totals {
    uint64_t results; /* records seen by the sink          */
    int64_t clicks;   /* sum of the counts (results sink)  */
};

static int gen_click(void *opaque, uint64_t i, weir_buf_t *key,
                     weir_buf_t *value, weir_ts_t *ts)
{
    struct clicks *g = opaque;
    weir_ts_t jitter = (weir_ts_t)((i * 7919) % 1500) - 750;

    if (i >= CLICKS)
        return 0;
    snprintf(g->key, sizeof(g->key), "user-%u", (unsigned)(i % 5));
    *key = WEIR_BUF_STR(g->key);
    *value = WEIR_BUF_STR("click");
    *ts = START + (weir_ts_t)i * 137 + jitter;
    if (i % 200 == 199)
        *ts -= WEIR_SECONDS(30);
    return 1;
}

static int print_count(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct totals *t = opaque;
    weir_buf_t key = weir_record_key(rec);
    weir_buf_t value = weir_record_value(rec);
    weir_ts_t start;
    weir_ts_t end;
    char text[24];
    int rc;

    (void)tag;
    rc = weir_record_window(rec, &start, &end);
    if (rc != WEIR_OK)
        return rc;
    snprintf(text, sizeof(text), "%.*s", (int)value.len,
             (const char *)value.data);
    t->results++;
    t->clicks += strtoll(text, NULL, 10);
    printf("%.*s [%lld, %lld) %s\n", (int)key.len, (const char *)key.data,
           (long long)start, (long long)end, text);
    return WEIR_OK;
}

static int print_late(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct totals *t = opaque;
    weir_buf_t key = weir_record_key(rec);

    (void)tag;
    t->results++;
    printf("late: %.*s at %lld\n", (int)key.len, (const char *)key.data,
           (long long)weir_record_ts(rec));
    return WEIR_OK;
}

int main(void)
{
    struct clicks gen = {{0}};
    struct totals counted = {0};
    struct totals late = {0};
    char errstr[256];
    weir_pipeline_t *p;
    weir_stream_t *s;
    weir_stream_t *counts;
    int rc;

    p = weir_pipeline_new("tumbling-count", NULL, errstr, sizeof(errstr));
    if (p == NULL) {
        fprintf(stderr, "pipeline: %s\n", errstr);
        return 1;
    }

    s = weir_source_generator(p, "clicks", gen_click, &gen);
    s = weir_stream_watermark(s, weir_watermark_bounded(WEIR_SECONDS(2)));
    s = weir_stream_keyby(s, NULL, NULL);
    counts = weir_stream_window(s, weir_window_tumbling(WEIR_SECONDS(10)),
                                &weir_agg_count, NULL);
    weir_stream_collect(counts, print_count, &counted);
    weir_stream_collect(weir_stream_side_output(counts, WEIR_TAG_LATE),
                        print_late, &late);

    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK) {
        fprintf(stderr, "run: %s: %s\n", weir_strerror(rc),
                weir_pipeline_errstr(p));
        weir_pipeline_destroy(p);
        return 1;
    }
    weir_pipeline_destroy(p);

    printf("%llu windows, %lld clicks counted, %llu late\n",
           (unsigned long long)counted.results, (long long)counted.clicks,
           (unsigned long long)late.results);
    if (counted.clicks != CLICKS - 5 || late.results != 5) {
        fprintf(stderr, "unexpected totals: want 995 counted, 5 late\n");
        return 1;
    }
    return 0;
}
