/*
 * examples/custom_operator.c - runs the burst_detector operator of
 * examples/custom_operator.h in a pipeline.
 *
 * How it works
 *   A generator source produces 2000 login events, one every 250 ms of
 *   event time, spread over seven users; events 400..439 all belong to
 *   user-3 (a burst), and every 500th event is stamped 5 s in the past
 *   (late). The pipeline is
 *
 *     generator -> watermark (bounded, 1 s) -> keyby (record key)
 *               -> burst_detector (parallelism 2) -> collect
 *
 *   with the detector's late and summary side outputs collected too.
 *   Every collect sink has its own counters (each sink runs on its own
 *   thread), read after weir_pipeline_run() has returned.
 *
 * Invariants
 *   The input is deterministic, so is the result: exactly one alert
 *   (user-3, 41 events) and four late events. The program checks both and
 *   exits 1 when they differ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>

#include "custom_operator.h"

#define EVENTS 2000
#define START  WEIR_SECONDS(1700000000) /* first event time */

/* Generator state: the key buffer outlives each call (borrowed). */
struct logins {
    char key[16];
};

/* Collect-sink counters; one struct per sink, touched by its thread. */
struct tally {
    const char *label; /* printed before each record */
    uint64_t records;
    uint64_t alerts_in_summary;
    uint64_t late_in_summary;
};

static int gen_login(void *opaque, uint64_t i, weir_buf_t *key,
                     weir_buf_t *value, weir_ts_t *ts)
{
    struct logins *g = opaque;
    unsigned user;

    if (i >= EVENTS)
        return 0;
    user = (i >= 400 && i < 440) ? 3u : (unsigned)(i % 7);
    snprintf(g->key, sizeof(g->key), "user-%u", user);
    *key = WEIR_BUF_STR(g->key);
    *value = WEIR_BUF_STR("login");
    *ts = START + (weir_ts_t)i * 250;
    if (i % 500 == 499)
        *ts -= WEIR_SECONDS(5); /* behind the 1 s bound: late */
    return 1;
}

static int print_alert(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct tally *t = opaque;
    weir_buf_t key = weir_record_key(rec);
    weir_buf_t value = weir_record_value(rec);

    (void)tag;
    t->records++;
    printf("%-8s key=%.*s value=%.*s ts=%lld\n", t->label, (int)key.len,
           (const char *)key.data, (int)value.len, (const char *)value.data,
           (long long)weir_record_ts(rec));
    return WEIR_OK;
}

static int read_summary(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct tally *t = opaque;
    weir_buf_t value = weir_record_value(rec);
    char text[64];
    unsigned long long alerts = 0;
    unsigned long long late = 0;

    (void)tag;
    snprintf(text, sizeof(text), "%.*s", (int)value.len,
             (const char *)value.data);
    if (sscanf(text, "alerts=%llu late=%llu", &alerts, &late) != 2)
        return WEIR_EPARSE;
    t->records++;
    t->alerts_in_summary += alerts;
    t->late_in_summary += late;
    printf("%-8s %s\n", t->label, text);
    return WEIR_OK;
}

int main(void)
{
    static const struct burst_args args = {
        .threshold = 20,
        .gap = WEIR_SECONDS(10),
    };
    struct logins gen = {{0}};
    struct tally alerts = {.label = "alert"};
    struct tally late = {.label = "late"};
    struct tally summary = {.label = "summary"};
    char errstr[256];
    weir_pipeline_t *p;
    weir_stream_t *s;
    weir_stream_t *bursts;
    int rc;

    p = weir_pipeline_new("burst-detector", NULL, errstr, sizeof(errstr));
    if (p == NULL) {
        fprintf(stderr, "pipeline: %s\n", errstr);
        return 1;
    }

    s = weir_source_generator(p, "logins", gen_login, &gen);
    s = weir_stream_watermark(s, weir_watermark_bounded(WEIR_SECONDS(1)));
    s = weir_stream_keyby(s, NULL, NULL);
    bursts = weir_stream_apply(s, &burst_detector, &args);
    bursts = weir_stream_set_parallelism(bursts, 2);
    weir_stream_collect(bursts, print_alert, &alerts);
    weir_stream_collect(weir_stream_side_output(bursts, WEIR_TAG_LATE),
                        print_alert, &late);
    weir_stream_collect(weir_stream_side_output(bursts, BURST_TAG_SUMMARY),
                        read_summary, &summary);

    rc = weir_pipeline_run(p); /* also reports a sticky builder error */
    if (rc != WEIR_OK) {
        fprintf(stderr, "run: %s: %s\n", weir_strerror(rc),
                weir_pipeline_errstr(p));
        weir_pipeline_destroy(p);
        return 1;
    }
    weir_pipeline_destroy(p);

    printf("%llu alert(s), %llu late event(s)\n",
           (unsigned long long)alerts.records,
           (unsigned long long)late.records);
    if (alerts.records != 1 || late.records != 4 || summary.records != 2 ||
        summary.alerts_in_summary != 1 || summary.late_in_summary != 4) {
        fprintf(stderr, "unexpected result: want 1 alert, 4 late events "
                        "and 2 summaries\n");
        return 1;
    }
    return 0;
}
