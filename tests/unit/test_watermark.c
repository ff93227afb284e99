/*
 * tests/unit/test_watermark.c - watermark strategies and the assigner
 * (the files of watermark/), driven by the single-operator harness, plus two
 * pipeline checks (a record travels ahead of the watermark it causes;
 * a NULL strategy is a builder error).
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>
#include <weir/watermark.h>

/* ------------------------------------------------------------------ *
 * ## Helpers
 * ------------------------------------------------------------------ */

static void push_ts(weir_harness_t *h, weir_ts_t ts)
{
    char value[32];

    snprintf(value, sizeof(value), "%lld", (long long)ts);
    assert_int_equal(weir_harness_push(h, "k", value, ts), WEIR_OK);
}

static void assert_wms(const weir_harness_t *h, const weir_ts_t *want, size_t n)
{
    size_t i;

    assert_int_equal(weir_harness_watermark_count(h), n);
    for (i = 0; i < n; i++)
        assert_int_equal(weir_harness_watermark_at(h, i), want[i]);
}

/* Every watermark forwarded is above the one before. */
static void assert_increasing(const weir_harness_t *h)
{
    size_t i;

    for (i = 1; i < weir_harness_watermark_count(h); i++)
        assert_true(weir_harness_watermark_at(h, i) >
                    weir_harness_watermark_at(h, i - 1));
}

/* ------------------------------------------------------------------ *
 * ## Bounded and ascending
 * ------------------------------------------------------------------ */

static void test_watermark_bounded_every_record(void **state)
{
    static const weir_ts_t want[] = {5, 15, 25};
    static const weir_ts_t ts[] = {10, 5, 20, 18, 30};
    weir_harness_t *h;
    size_t i;

    (void)state;
    h = weir_harness_new_watermark(weir_watermark_bounded(5));
    assert_non_null(h);
    for (i = 0; i < 5; i++)
        push_ts(h, ts[i]);
    assert_wms(h, want, 3);
    /* records pass through unchanged and in order */
    assert_int_equal(weir_harness_count(h, NULL), 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(weir_record_ts(weir_harness_record(h, NULL, i)),
                         ts[i]);
        assert_int_equal(weir_harness_i64(h, NULL, i), ts[i]);
        assert_memory_equal(
            weir_record_key(weir_harness_record(h, NULL, i)).data, "k", 1);
    }
    weir_harness_destroy(h);
}

static void test_watermark_bounded_never_backwards(void **state)
{
    static const weir_ts_t ts[] = {100, 50, 120, 90, 80, 121, 10, 300, 299};
    static const weir_ts_t want[] = {90, 110, 111, 290};
    weir_harness_t *h;
    size_t i;

    (void)state;
    h = weir_harness_new_watermark(weir_watermark_bounded(10));
    assert_non_null(h);
    for (i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
        push_ts(h, ts[i]);
    assert_wms(h, want, 4);
    assert_increasing(h);
    weir_harness_destroy(h);
}

static void test_watermark_ascending(void **state)
{
    static const weir_ts_t ts[] = {1, 2, 2, 5, 3, 6};
    static const weir_ts_t want[] = {1, 2, 5, 6};
    weir_harness_t *h;
    size_t i;

    (void)state;
    h = weir_harness_new_watermark(weir_watermark_ascending());
    assert_non_null(h);
    for (i = 0; i < sizeof(ts) / sizeof(ts[0]); i++)
        push_ts(h, ts[i]);
    assert_wms(h, want, 4);
    assert_int_equal(weir_harness_count(h, NULL), 6);
    weir_harness_destroy(h);
}

static void test_watermark_negative_timestamps(void **state)
{
    static const weir_ts_t want[] = {-1010, -505};
    weir_harness_t *h;

    (void)state;
    h = weir_harness_new_watermark(weir_watermark_bounded(10));
    assert_non_null(h);
    push_ts(h, -1000);
    push_ts(h, -2000);
    push_ts(h, -495);
    assert_wms(h, want, 2);
    weir_harness_destroy(h);
}

static void test_watermark_overflow_guard(void **state)
{
    static const weir_ts_t want[] = {WEIR_TS_MIN + 1, -1000};
    weir_harness_t *h;

    (void)state;
    h = weir_harness_new_watermark(weir_watermark_bounded(1000));
    assert_non_null(h);
    /* maxTs - B would wrap around: the candidate is clamped, not emitted */
    push_ts(h, WEIR_TS_MIN + 5);
    assert_int_equal(weir_harness_watermark_count(h), 0);
    push_ts(h, WEIR_TS_MIN + 1001);
    push_ts(h, 0);
    assert_wms(h, want, 2);
    weir_harness_destroy(h);

    h = weir_harness_new_watermark(weir_watermark_bounded(WEIR_TS_MAX));
    assert_non_null(h);
    push_ts(h, -1);
    push_ts(h, 5);
    assert_wms(h, (const weir_ts_t[]){5 - WEIR_TS_MAX}, 1);
    weir_harness_destroy(h);
}

static void test_watermark_count_cadence(void **state)
{
    static const weir_ts_t ts[] = {50, 10, 20, 60, 70, 65, 90};
    static const weir_ts_t want[] = {50, 70};
    weir_watermark_t *wm;
    weir_harness_t *h;
    size_t i;

    (void)state;
    wm = weir_watermark_ascending();
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, 3), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    for (i = 0; i < 2; i++)
        push_ts(h, ts[i]);
    assert_int_equal(weir_harness_watermark_count(h), 0);
    push_ts(h, ts[2]); /* third record: max of all three, not the last */
    assert_wms(h, want, 1);
    for (i = 3; i < 6; i++)
        push_ts(h, ts[i]);
    assert_wms(h, want, 2);
    push_ts(h, ts[6]); /* seventh: not an emission point */
    assert_wms(h, want, 2);
    assert_int_equal(weir_harness_count(h, NULL), 7);
    weir_harness_destroy(h);
}

static void test_watermark_time_cadence(void **state)
{
    weir_watermark_t *wm;
    weir_harness_t *h;

    (void)state;
    wm = weir_watermark_bounded(5);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, 0), WEIR_OK);
    assert_int_equal(weir_watermark_set_interval(wm, 100), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    push_ts(h, 10);
    push_ts(h, 20);
    assert_int_equal(weir_harness_watermark_count(h), 0);
    assert_int_equal(weir_harness_set_processing_time(h, 99), WEIR_OK);
    assert_int_equal(weir_harness_watermark_count(h), 0);
    assert_int_equal(weir_harness_set_processing_time(h, 100), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){15}, 1);
    push_ts(h, 50);
    assert_int_equal(weir_harness_set_processing_time(h, 150), WEIR_OK);
    assert_int_equal(weir_harness_watermark_count(h), 1);
    assert_int_equal(weir_harness_set_processing_time(h, 200), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){15, 45}, 2);
    /* a jump of the clock fires once, and the grid continues after it */
    push_ts(h, 70);
    assert_int_equal(weir_harness_set_processing_time(h, 1050), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){15, 45, 65}, 3);
    push_ts(h, 90);
    assert_int_equal(weir_harness_set_processing_time(h, 1099), WEIR_OK);
    assert_int_equal(weir_harness_watermark_count(h), 3);
    assert_int_equal(weir_harness_set_processing_time(h, 1100), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){15, 45, 65, 85}, 4);
    weir_harness_destroy(h);
}

static void test_watermark_both_cadences(void **state)
{
    weir_watermark_t *wm;
    weir_harness_t *h;

    (void)state;
    wm = weir_watermark_ascending();
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, 2), WEIR_OK);
    assert_int_equal(weir_watermark_set_interval(wm, 10), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    push_ts(h, 1);
    push_ts(h, 2);
    assert_wms(h, (const weir_ts_t[]){2}, 1);
    push_ts(h, 3);
    assert_int_equal(weir_harness_set_processing_time(h, 10), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){2, 3}, 2);
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Punctuated and custom
 * ------------------------------------------------------------------ */

/* Value "wm:N" carries watermark N; "bad" is rejected. */
static int punct(const weir_record_t *rec, weir_ts_t *wm, void *opaque)
{
    weir_buf_t v = weir_record_value(rec);
    char buf[32];

    (*(int *)opaque)++;
    if (v.len == 3 && memcmp(v.data, "bad", 3) == 0)
        return WEIR_EPARSE;
    if (v.len < 4 || v.len >= sizeof(buf) || memcmp(v.data, "wm:", 3) != 0)
        return 0;
    memcpy(buf, v.data, v.len);
    buf[v.len] = '\0';
    *wm = strtoll(buf + 3, NULL, 10);
    return 1;
}

static void test_watermark_punctuated(void **state)
{
    static const weir_ts_t want[] = {50, 70};
    weir_harness_t *h;
    int calls = 0;

    (void)state;
    h = weir_harness_new_watermark(weir_watermark_punctuated(punct, &calls));
    assert_non_null(h);
    assert_int_equal(weir_harness_push(h, "a", "x", 1000), WEIR_OK);
    assert_int_equal(weir_harness_watermark_count(h), 0);
    assert_int_equal(weir_harness_push(h, "a", "wm:50", 1), WEIR_OK);
    assert_int_equal(weir_harness_push(h, "a", "wm:30", 2), WEIR_OK);
    assert_int_equal(weir_harness_push(h, "a", "wm:50", 3), WEIR_OK);
    assert_int_equal(weir_harness_push(h, "a", "wm:70", 4), WEIR_OK);
    assert_int_equal(weir_harness_push(h, "a", "bad", 5), WEIR_OK);
    assert_int_equal(calls, 6);
    assert_wms(h, want, 2);
    /* the rejected record went to the errors output with a reason */
    assert_int_equal(weir_harness_count(h, NULL), 5);
    assert_int_equal(weir_harness_count(h, WEIR_TAG_ERRORS), 1);
    {
        weir_buf_t reason;

        assert_int_equal(
            weir_record_header(weir_harness_record(h, WEIR_TAG_ERRORS, 0),
                               WEIR_HDR_ERROR, &reason),
            WEIR_OK);
        assert_true(reason.len > 0);
    }
    weir_harness_destroy(h);
}

/* A custom generator: periodic max - 1, and a punctuation on "flush". */
static const int custom_marker = 42;

struct custom_state {
    weir_ts_t max_ts;
    int64_t seen;
};

static int custom_event(void *st, const weir_record_t *rec, weir_ts_t ts,
                        weir_ts_t *wm, const void *opaque)
{
    struct custom_state *c = st;
    weir_buf_t v = weir_record_value(rec);

    assert_ptr_equal(opaque, &custom_marker);
    if (!c->seen || ts > c->max_ts) {
        c->max_ts = ts;
        c->seen = 1;
    }
    if (v.len == 5 && memcmp(v.data, "flush", 5) == 0) {
        *wm = c->max_ts;
        return 1;
    }
    return 0;
}

static int custom_periodic(void *st, weir_ts_t *wm, const void *opaque)
{
    struct custom_state *c = st;

    (void)opaque;
    if (!c->seen)
        return 0;
    *wm = c->max_ts - 1;
    return 1;
}

static const weir_watermark_def_t custom_def = {
    .version = WEIR_WATERMARK_VERSION,
    .name = "custom",
    .state_size = sizeof(struct custom_state),
    .on_event = custom_event,
    .on_periodic = custom_periodic,
};

static void test_watermark_custom(void **state)
{
    weir_watermark_t *wm;
    weir_harness_t *h;

    (void)state;
    wm = weir_watermark_custom(&custom_def, &custom_marker);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, 2), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    assert_int_equal(weir_harness_push(h, "a", "x", 10), WEIR_OK);
    assert_int_equal(weir_harness_push(h, "a", "x", 20), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){19}, 1);
    assert_int_equal(weir_harness_push(h, "a", "flush", 30), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){19, 30}, 2);
    /* the periodic candidate 29 at the 4th record is behind: not sent */
    assert_int_equal(weir_harness_push(h, "a", "x", 25), WEIR_OK);
    assert_wms(h, (const weir_ts_t[]){19, 30}, 2);
    weir_harness_destroy(h);
}

static void test_watermark_invalid_arguments(void **state)
{
    static const weir_watermark_def_t bad_version = {
        .version = 99,
        .name = "bad",
        .on_periodic = custom_periodic,
    };
    static const weir_watermark_def_t no_callbacks = {
        .version = WEIR_WATERMARK_VERSION,
        .name = "none",
    };
    weir_watermark_t *wm;

    (void)state;
    assert_null(weir_watermark_bounded(-1));
    assert_null(weir_watermark_punctuated(NULL, NULL));
    assert_null(weir_watermark_custom(NULL, NULL));
    assert_null(weir_watermark_custom(&bad_version, NULL));
    assert_null(weir_watermark_custom(&no_callbacks, NULL));
    assert_int_equal(weir_watermark_set_every(NULL, 1), WEIR_EINVAL);
    assert_int_equal(weir_watermark_set_interval(NULL, 1), WEIR_EINVAL);
    assert_int_equal(weir_watermark_set_idle_timeout(NULL, 1), WEIR_EINVAL);
    wm = weir_watermark_bounded(0);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_interval(wm, -1), WEIR_EINVAL);
    assert_int_equal(weir_watermark_set_idle_timeout(wm, -5), WEIR_EINVAL);
    assert_int_equal(weir_watermark_set_interval(wm, 0), WEIR_OK);
    assert_int_equal(weir_watermark_set_every(wm, 0), WEIR_OK);
    weir_watermark_destroy(wm);
    weir_watermark_destroy(NULL);
    assert_null(weir_harness_new_watermark(NULL));
}

/* ------------------------------------------------------------------ *
 * ## Idleness
 * ------------------------------------------------------------------ */

static void test_watermark_idle_and_back(void **state)
{
    weir_watermark_t *wm;
    weir_harness_t *h;

    (void)state;
    wm = weir_watermark_bounded(0);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_idle_timeout(wm, 50), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    assert_int_equal(weir_harness_idle(h), -1);
    /* an input that never had a record becomes idle too */
    assert_int_equal(weir_harness_set_processing_time(h, 49), WEIR_OK);
    assert_int_equal(weir_harness_idle(h), -1);
    assert_int_equal(weir_harness_set_processing_time(h, 50), WEIR_OK);
    assert_int_equal(weir_harness_idle(h), 1);
    /* the next record marks it active again, and passes through */
    push_ts(h, 7);
    assert_int_equal(weir_harness_idle(h), 0);
    assert_int_equal(weir_harness_count(h, NULL), 1);
    assert_int_equal(weir_harness_set_processing_time(h, 99), WEIR_OK);
    assert_int_equal(weir_harness_idle(h), 0);
    assert_int_equal(weir_harness_set_processing_time(h, 100), WEIR_OK);
    assert_int_equal(weir_harness_idle(h), 1);
    weir_harness_destroy(h);
}

static void test_watermark_idle_records_keep_active(void **state)
{
    weir_watermark_t *wm;
    weir_harness_t *h;
    weir_ts_t now;

    (void)state;
    wm = weir_watermark_bounded(0);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_idle_timeout(wm, 50), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    for (now = 0; now <= 300; now += 30) {
        assert_int_equal(weir_harness_set_processing_time(h, now), WEIR_OK);
        push_ts(h, now);
        assert_int_equal(weir_harness_idle(h), -1);
    }
    /* last record at 300: idle at 350, not before */
    assert_int_equal(weir_harness_set_processing_time(h, 349), WEIR_OK);
    assert_int_equal(weir_harness_idle(h), -1);
    assert_int_equal(weir_harness_set_processing_time(h, 350), WEIR_OK);
    assert_int_equal(weir_harness_idle(h), 1);
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Snapshot and restore
 * ------------------------------------------------------------------ */

static weir_harness_t *new_bounded_every(weir_ts_t b, uint64_t every)
{
    weir_watermark_t *wm;

    wm = weir_watermark_bounded(b);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, every), WEIR_OK);
    return weir_harness_new_watermark(wm);
}

static void test_watermark_snapshot_restore(void **state)
{
    static const weir_ts_t before[] = {100, 40, 130, 120};
    static const weir_ts_t after[] = {90, 200, 150, 160, 400, 390, 391};
    weir_snapshot_t *snap;
    weir_harness_t *h;
    weir_harness_t *r;
    size_t i;

    (void)state;
    h = new_bounded_every(10, 3);
    assert_non_null(h);
    for (i = 0; i < 4; i++)
        push_ts(h, before[i]);
    assert_wms(h, (const weir_ts_t[]){120}, 1);
    assert_int_equal(weir_harness_checkpoint(h, 1, &snap), WEIR_OK);
    weir_harness_clear(h);

    r = new_bounded_every(10, 3);
    assert_non_null(r);
    assert_int_equal(weir_harness_restore(r, snap), WEIR_OK);
    weir_snapshot_destroy(snap);
    for (i = 0; i < sizeof(after) / sizeof(after[0]); i++) {
        push_ts(h, after[i]);
        push_ts(r, after[i]);
    }
    /* the count (4 so far), maxTs (130) and W (120) carried over:
     * emission points are the 6th and 9th records overall */
    assert_wms(h, (const weir_ts_t[]){190, 390}, 2);
    assert_int_equal(weir_harness_watermark_count(r),
                     weir_harness_watermark_count(h));
    for (i = 0; i < weir_harness_watermark_count(h); i++)
        assert_int_equal(weir_harness_watermark_at(r, i),
                         weir_harness_watermark_at(h, i));
    assert_int_equal(weir_harness_count(r, NULL), weir_harness_count(h, NULL));
    weir_harness_destroy(h);
    weir_harness_destroy(r);
}

static void test_watermark_snapshot_restore_no_regress(void **state)
{
    weir_snapshot_t *snap;
    weir_harness_t *h;
    weir_harness_t *r;

    (void)state;
    h = new_bounded_every(0, 1);
    assert_non_null(h);
    push_ts(h, 500);
    assert_int_equal(weir_harness_checkpoint(h, 7, &snap), WEIR_OK);
    r = new_bounded_every(0, 1);
    assert_non_null(r);
    assert_int_equal(weir_harness_restore(r, snap), WEIR_OK);
    weir_snapshot_destroy(snap);
    /* W was 500 before the checkpoint: 400 must not be sent after it */
    push_ts(r, 400);
    assert_int_equal(weir_harness_watermark_count(r), 0);
    push_ts(r, 501);
    assert_wms(r, (const weir_ts_t[]){501}, 1);
    weir_harness_destroy(h);
    weir_harness_destroy(r);
}

static void test_watermark_restore_custom_state(void **state)
{
    weir_snapshot_t *snap;
    weir_watermark_t *wm;
    weir_harness_t *h;
    weir_harness_t *r;

    (void)state;
    wm = weir_watermark_custom(&custom_def, &custom_marker);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, 0), WEIR_OK);
    h = weir_harness_new_watermark(wm);
    assert_non_null(h);
    assert_int_equal(weir_harness_push(h, "a", "x", 77), WEIR_OK);
    assert_int_equal(weir_harness_checkpoint(h, 1, &snap), WEIR_OK);
    wm = weir_watermark_custom(&custom_def, &custom_marker);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, 0), WEIR_OK);
    r = weir_harness_new_watermark(wm);
    assert_non_null(r);
    assert_int_equal(weir_harness_restore(r, snap), WEIR_OK);
    weir_snapshot_destroy(snap);
    /* the generator's state block came back: max is still 77 */
    assert_int_equal(weir_harness_push(r, "a", "flush", 3), WEIR_OK);
    assert_wms(r, (const weir_ts_t[]){77}, 1);
    weir_harness_destroy(h);
    weir_harness_destroy(r);
}

/* ------------------------------------------------------------------ *
 * ## Pipelines
 * ------------------------------------------------------------------ */

static int gen_ascending(void *opaque, uint64_t i, weir_buf_t *key,
                         weir_buf_t *value, weir_ts_t *ts)
{
    (void)opaque;
    if (i >= 5)
        return 0;
    *key = WEIR_BUF("k", 1);
    *value = WEIR_BUF("v", 1);
    *ts = (weir_ts_t)(i + 1) * 10;
    return 1;
}

/* Records downstream the watermark each record saw. */
struct seen {
    weir_ts_t ts[8];
    weir_ts_t wm[8];
    size_t n;
};

static int probe_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct seen *s = (struct seen *)weir_ctx_opaque(ctx);

    (void)st;
    if (s->n < 8) {
        s->ts[s->n] = weir_record_ts(in);
        s->wm[s->n] = weir_ctx_watermark(ctx);
        s->n++;
    }
    return WEIR_OK;
}

static const weir_operator_def_t probe_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "probe",
    .flags = WEIR_OP_F_SINGLE,
    .process = probe_process,
};

static void test_watermark_pipeline_record_before_watermark(void **state)
{
    weir_pipeline_t *p;
    weir_stream_t *s;
    struct seen seen;
    char err[256];
    size_t i;

    (void)state;
    memset(&seen, 0, sizeof(seen));
    p = weir_pipeline_new("wm-order", NULL, err, sizeof(err));
    assert_non_null(p);
    s = weir_source_generator(p, "gen", gen_ascending, NULL);
    s = weir_stream_watermark(s, weir_watermark_ascending());
    assert_int_equal(weir_stream_sink(s, &probe_def, &seen), WEIR_OK);
    assert_int_equal(weir_pipeline_run(p), WEIR_OK);
    /* record i (ts 10*(i+1)) arrives before its own watermark, so it
     * sees the watermark of record i-1 */
    assert_int_equal(seen.n, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(seen.ts[i], (weir_ts_t)(i + 1) * 10);
        assert_int_equal(seen.wm[i], i == 0 ? WEIR_TS_MIN : (weir_ts_t)i * 10);
    }
    weir_pipeline_destroy(p);
}

static void test_watermark_pipeline_null_strategy(void **state)
{
    weir_pipeline_t *p;
    weir_stream_t *s;
    char err[256];

    (void)state;
    p = weir_pipeline_new("wm-null", NULL, err, sizeof(err));
    assert_non_null(p);
    s = weir_source_generator(p, "gen", gen_ascending, NULL);
    s = weir_stream_watermark(s, NULL);
    assert_false(weir_stream_ok(s));
    assert_int_equal(weir_pipeline_error(p), WEIR_EINVAL);
    /* a poisoned stream consumes the strategy without leaking it */
    s = weir_stream_watermark(s, weir_watermark_bounded(1));
    assert_false(weir_stream_ok(s));
    weir_pipeline_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watermark_bounded_every_record),
        cmocka_unit_test(test_watermark_bounded_never_backwards),
        cmocka_unit_test(test_watermark_ascending),
        cmocka_unit_test(test_watermark_negative_timestamps),
        cmocka_unit_test(test_watermark_overflow_guard),
        cmocka_unit_test(test_watermark_count_cadence),
        cmocka_unit_test(test_watermark_time_cadence),
        cmocka_unit_test(test_watermark_both_cadences),
        cmocka_unit_test(test_watermark_punctuated),
        cmocka_unit_test(test_watermark_custom),
        cmocka_unit_test(test_watermark_invalid_arguments),
        cmocka_unit_test(test_watermark_idle_and_back),
        cmocka_unit_test(test_watermark_idle_records_keep_active),
        cmocka_unit_test(test_watermark_snapshot_restore),
        cmocka_unit_test(test_watermark_snapshot_restore_no_regress),
        cmocka_unit_test(test_watermark_restore_custom_state),
        cmocka_unit_test(test_watermark_pipeline_record_before_watermark),
        cmocka_unit_test(test_watermark_pipeline_null_strategy),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
