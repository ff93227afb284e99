/*
 * tests/unit/test_window.c - the window specs, assigners, aggregates and
 * the window operator, driven through the single-operator harness.
 *
 * How it works
 *
 * Each test builds a harness around the window operator, pushes records
 * and watermarks by hand and checks the firings (main output), the late
 * side output and the errors side output. Firings are looked up by their
 * window bounds, so the tests do not depend on the order in which one
 * watermark fires several windows. The checkpoint test cuts a fixed
 * script of records, watermarks and clock moves at every position,
 * restores the cut into a fresh harness and compares the union of both
 * harnesses' outputs with an uninterrupted run.
 *
 * Invariants: no threads, no sleeps; every harness, snapshot and record
 * made is destroyed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>
#include <weir/testing.h>
#include <weir/window.h>

/* ------------------------------------------------------------------ *
 * ## Helpers
 * ------------------------------------------------------------------ */

static weir_harness_t *mk(weir_window_t *w, const weir_aggregate_def_t *agg)
{
    weir_harness_t *h;

    assert_non_null(w);
    h = weir_harness_new_window(w, agg);
    assert_non_null(h);
    return h;
}

static int buf_is(weir_buf_t b, const char *s)
{
    size_t n = strlen(s);

    return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

static size_t n_main(const weir_harness_t *h)
{
    return weir_harness_count(h, WEIR_TAG_MAIN);
}

static size_t n_late(const weir_harness_t *h)
{
    return weir_harness_count(h, WEIR_TAG_LATE);
}

static size_t n_errors(const weir_harness_t *h)
{
    return weir_harness_count(h, WEIR_TAG_ERRORS);
}

/* Checks firing i completely: key, window, ts = end - 1, value. */
static void check_fire(const weir_harness_t *h, size_t i, const char *key,
                       weir_ts_t start, weir_ts_t end, const char *value)
{
    const weir_record_t *rec = weir_harness_record(h, WEIR_TAG_MAIN, i);
    weir_ts_t s = 0;
    weir_ts_t e = 0;

    assert_non_null(rec);
    assert_int_equal(WEIR_OK, weir_record_window(rec, &s, &e));
    assert_int_equal(start, s);
    assert_int_equal(end, e);
    assert_int_equal(end - 1, weir_record_ts(rec));
    assert_true(buf_is(weir_record_key(rec), key));
    if (!buf_is(weir_record_value(rec), value))
        fail_msg("firing %zu: value '%.*s', expected '%s'", i,
                 (int)weir_record_value(rec).len,
                 (const char *)weir_record_value(rec).data, value);
}

/* Index of the last firing of (key, start, end), or -1. */
static long find_fire(const weir_harness_t *h, const char *key, weir_ts_t start,
                      weir_ts_t end)
{
    size_t n = n_main(h);
    long found = -1;
    size_t i;

    for (i = 0; i < n; i++) {
        const weir_record_t *rec = weir_harness_record(h, WEIR_TAG_MAIN, i);
        weir_ts_t s;
        weir_ts_t e;

        if (weir_record_window(rec, &s, &e) == WEIR_OK && s == start &&
            e == end && buf_is(weir_record_key(rec), key))
            found = (long)i;
    }
    return found;
}

static void expect_window(const weir_harness_t *h, const char *key,
                          weir_ts_t start, weir_ts_t end, const char *value)
{
    long i = find_fire(h, key, start, end);

    if (i < 0)
        fail_msg("no firing for %s [%lld, %lld)", key, (long long)start,
                 (long long)end);
    check_fire(h, (size_t)i, key, start, end, value);
}

static void push(weir_harness_t *h, const char *key, const char *value,
                 weir_ts_t ts)
{
    assert_int_equal(WEIR_OK, weir_harness_push(h, key, value, ts));
}

static void wm(weir_harness_t *h, weir_ts_t w)
{
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, w));
}

/* ------------------------------------------------------------------ *
 * ## Specs
 * ------------------------------------------------------------------ */

static void test_window_spec_invalid(void **state)
{
    (void)state;
    assert_null(weir_window_tumbling(0));
    assert_null(weir_window_tumbling(-5));
    assert_null(weir_window_sliding(10, 0));
    assert_null(weir_window_sliding(10, 11));
    assert_null(weir_window_sliding(0, 0));
    assert_null(weir_window_session(0));
    assert_null(weir_window_rolling(-1));
    assert_int_equal(WEIR_EINVAL, weir_window_set_lateness(NULL, 1));
    assert_int_equal(WEIR_EINVAL, weir_window_set_trigger_count(NULL, 1));
    assert_int_equal(WEIR_EINVAL, weir_window_set_trigger_early(NULL, 1));
    assert_null(weir_window_dup(NULL));
    weir_window_destroy(NULL);
    assert_int_equal(0, weir_window_size(NULL));
    assert_int_equal(WEIR_EINVAL, weir_record_window(NULL, NULL, NULL));
}

static void test_window_spec_accessors(void **state)
{
    weir_window_t *w;
    weir_window_t *d;
    int64_t param = -1;

    (void)state;
    w = weir_window_sliding(WEIR_SECONDS(10), WEIR_SECONDS(2));
    assert_non_null(w);
    assert_int_equal(WEIR_WINDOW_SLIDING, weir_window_kind(w));
    assert_int_equal(10000, weir_window_size(w));
    assert_int_equal(2000, weir_window_slide(w));
    assert_int_equal(0, weir_window_lateness(w));
    assert_int_equal(WEIR_TRIGGER_EVENT_TIME, weir_window_trigger(w, &param));
    assert_int_equal(0, param);
    assert_int_equal(WEIR_EINVAL, weir_window_set_lateness(w, -1));
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, 500));
    assert_int_equal(500, weir_window_lateness(w));
    assert_int_equal(WEIR_EINVAL, weir_window_set_trigger_count(w, 0));
    assert_int_equal(WEIR_OK, weir_window_set_trigger_count(w, 7));
    assert_int_equal(WEIR_TRIGGER_COUNT, weir_window_trigger(w, &param));
    assert_int_equal(7, param);
    assert_int_equal(WEIR_EINVAL, weir_window_set_trigger_early(w, 0));
    assert_int_equal(WEIR_OK, weir_window_set_trigger_early(w, 250));
    assert_int_equal(WEIR_TRIGGER_EARLY, weir_window_trigger(w, NULL));
    d = weir_window_dup(w);
    weir_window_destroy(w);
    assert_non_null(d);
    assert_int_equal(WEIR_TRIGGER_EARLY, weir_window_trigger(d, &param));
    assert_int_equal(250, param);
    assert_int_equal(500, weir_window_lateness(d));
    assert_int_equal(2000, weir_window_slide(d));
    weir_window_destroy(d);

    w = weir_window_tumbling(100);
    assert_int_equal(WEIR_WINDOW_TUMBLING, weir_window_kind(w));
    assert_int_equal(100, weir_window_slide(w));
    weir_window_destroy(w);
    w = weir_window_session(30);
    assert_int_equal(WEIR_WINDOW_SESSION, weir_window_kind(w));
    assert_int_equal(30, weir_window_size(w));
    weir_window_destroy(w);
    w = weir_window_rolling(0);
    assert_non_null(w);
    assert_int_equal(WEIR_WINDOW_ROLLING, weir_window_kind(w));
    weir_window_destroy(w);
}

static void test_window_floor(void **state)
{
    (void)state;
    assert_int_equal(0, weir_window_floor(0, 10));
    assert_int_equal(0, weir_window_floor(9, 10));
    assert_int_equal(10, weir_window_floor(10, 10));
    assert_int_equal(-10, weir_window_floor(-1, 10));
    assert_int_equal(-10, weir_window_floor(-10, 10));
    assert_int_equal(-20, weir_window_floor(-11, 10));
    assert_true(weir_window_floor(WEIR_TS_MIN, 1000) == WEIR_TS_MIN);
    assert_true(weir_window_floor(WEIR_TS_MIN + 1, 1000) == WEIR_TS_MIN);
    assert_true(weir_window_floor(WEIR_TS_MAX, 10) == WEIR_TS_MAX - 7);
    assert_int_equal(42, weir_window_floor(42, 0));
}

static void test_window_record_window(void **state)
{
    weir_record_t *rec;
    weir_ts_t s = 0;
    weir_ts_t e = 0;

    (void)state;
    rec = weir_record_new(NULL, WEIR_BUF_STR("k"), WEIR_BUF_STR("v"), 5, 0);
    assert_non_null(rec);
    assert_int_equal(WEIR_ENOENT, weir_record_window(rec, &s, &e));
    assert_int_equal(WEIR_OK, weir_record_add_header(rec, WEIR_HDR_WINDOW_START,
                                                     WEIR_BUF_STR("-20")));
    assert_int_equal(WEIR_OK, weir_record_add_header(rec, WEIR_HDR_WINDOW_END,
                                                     WEIR_BUF_STR("x1")));
    assert_int_equal(WEIR_EPARSE, weir_record_window(rec, &s, &e));
    assert_int_equal(WEIR_OK, weir_record_add_header(rec, WEIR_HDR_WINDOW_END,
                                                     WEIR_BUF_STR("-10")));
    assert_int_equal(WEIR_OK, weir_record_window(rec, &s, &e));
    assert_int_equal(-20, s);
    assert_int_equal(-10, e);
    assert_int_equal(WEIR_OK, weir_record_window(rec, NULL, NULL));
    weir_record_destroy(rec);
}

static void test_window_invalid_operator_args(void **state)
{
    static const weir_aggregate_def_t no_merge = {
        .version = WEIR_AGGREGATE_VERSION,
        .name = "no-merge",
        .acc_size = 8,
        .add = NULL,
    };
    weir_aggregate_def_t agg = weir_agg_count;
    char err[128] = "";

    (void)state;
    assert_null(weir_harness_new_window(NULL, &weir_agg_count));
    assert_null(weir_harness_new_window(weir_window_tumbling(10), NULL));
    assert_null(
        weir_harness_new_window(weir_window_rolling(10), &weir_agg_count));
    assert_null(weir_harness_new_window(weir_window_session(10), &no_merge));
    agg.merge = NULL;
    assert_null(weir_harness_new_window(weir_window_session(10), &agg));
    agg.version = 99;
    assert_null(weir_window_op_new(weir_window_tumbling(10), &agg, NULL, err,
                                   sizeof(err)));
    assert_true(strstr(err, "version") != NULL);
    assert_null(weir_window_op_new(weir_window_rolling(10), &weir_agg_count,
                                   NULL, err, sizeof(err)));
    assert_true(strstr(err, "rolling") != NULL);
    assert_null(weir_window_op_new_apply(weir_window_tumbling(10), NULL, NULL,
                                         err, sizeof(err)));
    weir_window_op_destroy(NULL);
    /* a tumbling window does not need merge */
    agg = weir_agg_count;
    agg.merge = NULL;
    {
        weir_harness_t *h = mk(weir_window_tumbling(10), &agg);

        weir_harness_destroy(h);
    }
}

/* ------------------------------------------------------------------ *
 * ## Tumbling
 * ------------------------------------------------------------------ */

static void test_window_tumbling_boundaries(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_tumbling(WEIR_SECONDS(10)), &weir_agg_count);
    push(h, "k1", "a", 0);
    push(h, "k1", "b", 9999);  /* ts == end - 1: last ms of [0, 10s) */
    push(h, "k1", "c", 10000); /* ts == end: the next window */
    push(h, "k2", "d", 5000);
    wm(h, 9998);
    assert_int_equal(0, n_main(h));
    wm(h, 9999); /* wm == end - 1 fires */
    assert_int_equal(2, n_main(h));
    expect_window(h, "k1", 0, 10000, "2");
    expect_window(h, "k2", 0, 10000, "1");
    wm(h, 19999);
    assert_int_equal(3, n_main(h));
    check_fire(h, 2, "k1", 10000, 20000, "1");
    assert_int_equal(0, n_late(h));
    assert_int_equal(0, n_errors(h));
    /* the forwarded watermarks follow the firings */
    assert_int_equal(3, weir_harness_watermark_count(h));
    assert_int_equal(19999, weir_harness_watermark_at(h, 2));
    weir_harness_destroy(h);
}

static void test_window_tumbling_late(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_tumbling(WEIR_SECONDS(10)), &weir_agg_count);
    push(h, "k1", "a", 1000);
    wm(h, 9999);
    assert_int_equal(1, n_main(h));
    push(h, "k1", "late", 5000);  /* window [0,10s) is gone: late */
    push(h, "k1", "late2", 9999); /* ts == W, same window: late */
    push(h, "k1", "ok", 10000);   /* next window: fine */
    assert_int_equal(2, n_late(h));
    assert_true(buf_is(
        weir_record_value(weir_harness_record(h, WEIR_TAG_LATE, 0)), "late"));
    assert_int_equal(5000,
                     weir_record_ts(weir_harness_record(h, WEIR_TAG_LATE, 0)));
    assert_int_equal(1, n_main(h)); /* no re-fire */
    wm(h, 20000);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k1", 10000, 20000, "1");
    weir_harness_destroy(h);
}

static void test_window_tumbling_negative(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_tumbling(WEIR_SECONDS(10)), &weir_agg_count);
    push(h, "k", "a", -1);     /* [-10000, 0) */
    push(h, "k", "b", -10000); /* [-10000, 0) */
    push(h, "k", "c", -10001); /* [-20000, -10000) */
    push(h, "k", "d", 0);      /* [0, 10000) */
    wm(h, -10001);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", -20000, -10000, "1");
    wm(h, -1);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", -10000, 0, "2");
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(3, n_main(h));
    check_fire(h, 2, "k", 0, 10000, "1");
    weir_harness_destroy(h);
}

static void test_window_lateness_refire(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_tumbling(WEIR_SECONDS(10));
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, WEIR_SECONDS(5)));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 1000);
    push(h, "k", "b", 2000);
    wm(h, 9999);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 10000, "2");
    push(h, "k", "c", 3000); /* within lateness: re-fire, whole aggregate */
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 0, 10000, "3");
    wm(h, 14998); /* end - 1 + L = 14999 not reached */
    assert_int_equal(2, n_main(h));
    push(h, "k", "d", 0);
    assert_int_equal(3, n_main(h));
    check_fire(h, 2, "k", 0, 10000, "4");
    assert_int_equal(0, n_late(h));
    wm(h, 14999); /* state dropped, no firing */
    assert_int_equal(3, n_main(h));
    push(h, "k", "e", 9999);
    assert_int_equal(1, n_late(h));
    /* a window that never had records, first record within lateness */
    push(h, "k2", "f", 7000);
    assert_int_equal(2, n_late(h)); /* same window [0,10s): gone */
    push(h, "k2", "g", 10500);      /* [10s, 20s): not yet fired */
    assert_int_equal(3, n_main(h));
    wm(h, 21000);
    push(h, "k2", "h", 19000); /* fired already, within lateness */
    assert_int_equal(5, n_main(h));
    check_fire(h, 3, "k2", 10000, 20000, "1");
    check_fire(h, 4, "k2", 10000, 20000, "2");
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(5, n_main(h)); /* already fired; end only clears */
    weir_harness_destroy(h);
}

static void test_window_first_record_within_lateness(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_tumbling(100);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, 50));
    h = mk(w, &weir_agg_count);
    wm(h, 120);
    push(h, "k", "a", 50); /* [0,100): end-1 = 99 <= 120 < 149 */
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 100, "1");
    wm(h, 148);
    push(h, "k", "b", 99);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 0, 100, "2");
    wm(h, 149);
    push(h, "k", "c", 99);
    assert_int_equal(1, n_late(h));
    assert_int_equal(2, n_main(h));
    weir_harness_destroy(h);
}

static void test_window_end_of_input(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_tumbling(WEIR_MINUTES(1)), &weir_agg_sum);
    push(h, "a", "5", 1);
    push(h, "a", "7", WEIR_MINUTES(3));
    push(h, "b", "-2", WEIR_MINUTES(3) + 1);
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(3, n_main(h));
    expect_window(h, "a", 0, WEIR_MINUTES(1), "5");
    expect_window(h, "a", WEIR_MINUTES(3), WEIR_MINUTES(4), "7");
    expect_window(h, "b", WEIR_MINUTES(3), WEIR_MINUTES(4), "-2");
    weir_harness_destroy(h);
}

static void test_window_time_limits(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    /* huge lateness and windows at the ends of the time line */
    w = weir_window_tumbling(1000);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, WEIR_TS_MAX));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", WEIR_TS_MAX - 1);
    push(h, "k", "b", WEIR_TS_MAX);
    push(h, "k", "c", WEIR_TS_MIN + 1);
    wm(h, WEIR_TS_MAX - 2000);
    assert_int_equal(1, n_main(h)); /* the bottom window */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(2, n_main(h));
    {
        const weir_record_t *rec = weir_harness_record(h, WEIR_TAG_MAIN, 1);
        weir_ts_t s;
        weir_ts_t e;

        assert_int_equal(WEIR_OK, weir_record_window(rec, &s, &e));
        assert_true(e == WEIR_TS_MAX);
        assert_true(weir_record_ts(rec) == WEIR_TS_MAX - 1);
        assert_true(buf_is(weir_record_value(rec), "2"));
    }
    assert_int_equal(0, n_late(h));
    weir_harness_destroy(h);

    w = weir_window_sliding(WEIR_TS_MAX, WEIR_TS_MAX / 4);
    assert_non_null(w);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, WEIR_TS_MAX));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", WEIR_TS_MAX - 5);
    push(h, "k", "b", WEIR_TS_MIN + 5);
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_true(n_main(h) >= 2);
    weir_harness_destroy(h);

    w = weir_window_session(WEIR_TS_MAX);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, WEIR_TS_MAX));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", WEIR_TS_MAX - 5);
    push(h, "k", "b", 0);               /* [0, MAX): merges */
    push(h, "k", "c", WEIR_TS_MIN + 5); /* [MIN+5, 4): merges */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(1, n_main(h));
    assert_true(buf_is(
        weir_record_value(weir_harness_record(h, WEIR_TAG_MAIN, 0)), "3"));
    weir_harness_destroy(h);
}

static void test_window_no_timestamp(void **state)
{
    weir_harness_t *h;
    weir_buf_t reason;

    (void)state;
    h = mk(weir_window_tumbling(10), &weir_agg_count);
    push(h, "k", "a", WEIR_TS_MIN);
    assert_int_equal(1, n_errors(h));
    assert_int_equal(
        WEIR_OK, weir_record_header(weir_harness_record(h, WEIR_TAG_ERRORS, 0),
                                    WEIR_HDR_ERROR, &reason));
    assert_true(reason.len > 0);
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(0, n_main(h));
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Sliding
 * ------------------------------------------------------------------ */

static void test_window_sliding_overlap(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_sliding(WEIR_SECONDS(10), WEIR_SECONDS(5)),
           &weir_agg_count);
    push(h, "k", "a", 7000);  /* [0,10s) and [5s,15s) */
    push(h, "k", "b", 4999);  /* [-5s,5s) and [0,10s) */
    push(h, "k", "c", 10000); /* [5s,15s) and [10s,20s) */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(4, n_main(h));
    expect_window(h, "k", -5000, 5000, "1");
    expect_window(h, "k", 0, 10000, "2");
    expect_window(h, "k", 5000, 15000, "2");
    expect_window(h, "k", 10000, 20000, "1");
    weir_harness_destroy(h);
}

static void test_window_sliding_uneven(void **state)
{
    weir_harness_t *h;

    (void)state;
    /* S = 10, D = 4: ts 9 is in [8,18), [4,14), [0,10) */
    h = mk(weir_window_sliding(10, 4), &weir_agg_count);
    push(h, "k", "a", 9);
    push(h, "k", "b", -1); /* [-8,2), [-4,6) */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(5, n_main(h));
    expect_window(h, "k", 8, 18, "1");
    expect_window(h, "k", 4, 14, "1");
    expect_window(h, "k", 0, 10, "1");
    expect_window(h, "k", -4, 6, "1");
    expect_window(h, "k", -8, 2, "1");
    weir_harness_destroy(h);
}

static void test_window_sliding_partly_late(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_sliding(WEIR_SECONDS(10), WEIR_SECONDS(5)),
           &weir_agg_count);
    push(h, "k", "a", 6000);
    wm(h, 9999); /* [0,10s) fires with a */
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 10000, "1");
    push(h, "k", "b", 7000); /* [0,10s) is gone, [5s,15s) is not */
    assert_int_equal(0, n_late(h));
    assert_int_equal(1, n_main(h));
    push(h, "k", "c", 4000); /* [-5s,5s) and [0,10s) both gone */
    assert_int_equal(1, n_late(h));
    wm(h, 14999);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 5000, 15000, "2");
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Sessions
 * ------------------------------------------------------------------ */

static void test_window_session_basic(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_session(WEIR_SECONDS(5)), &weir_agg_count);
    push(h, "k", "a", 1000);
    push(h, "k", "b", 3000); /* extends to [1s, 8s) */
    push(h, "k", "c", 2000); /* inside */
    push(h, "j", "d", 2000); /* other key: own session */
    wm(h, 6999);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "j", 2000, 7000, "1");
    wm(h, 7999);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 1000, 8000, "3");
    weir_harness_destroy(h);
}

static void test_window_session_touching(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_session(WEIR_SECONDS(5)), &weir_agg_count);
    push(h, "k", "a", 0);     /* [0, 5000) */
    push(h, "k", "b", 5000);  /* [5000, 10000) touches: merges */
    push(h, "k", "c", 15001); /* [15001, 20001): 10000 < 15001, apart */
    wm(h, 9999);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 10000, "2");
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 15001, 20001, "1");
    weir_harness_destroy(h);
}

static void test_window_session_bridge(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_session(WEIR_SECONDS(5)), &weir_agg_count);
    push(h, "k", "a", 0);    /* [0, 5000)     */
    push(h, "k", "b", 9000); /* [9000, 14000) */
    wm(h, 3000);
    push(h, "k", "c", 4500); /* [4500, 9500) bridges both */
    wm(h, 4999);             /* the old windows' timers are gone */
    wm(h, 13998);
    assert_int_equal(0, n_main(h));
    wm(h, 13999);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 14000, "3");
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(1, n_main(h));
    weir_harness_destroy(h);
}

static void test_window_session_bridge_many(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_session(10), &weir_agg_sum);
    push(h, "k", "1", 0);    /* [0,10)   */
    push(h, "k", "2", 30);   /* [30,40)  */
    push(h, "k", "4", 60);   /* [60,70)  */
    push(h, "k", "8", 90);   /* [90,100) */
    push(h, "k", "16", 15);  /* [15,25): nothing */
    push(h, "k", "32", 45);  /* [45,55): nothing */
    push(h, "k", "64", 8);   /* [8,18) joins [0,10) and [15,25) */
    push(h, "k", "128", 25); /* [25,35) joins [0,25) and [30,40) */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(4, n_main(h));
    expect_window(h, "k", 0, 40, "211");
    expect_window(h, "k", 45, 55, "32");
    expect_window(h, "k", 60, 70, "4");
    expect_window(h, "k", 90, 100, "8");
    weir_harness_destroy(h);
}

static void test_window_session_late_and_lateness(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_session(100);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, 50));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 1000); /* [1000, 1100) */
    wm(h, 1099);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 1000, 1100, "1");
    /* own window late ([900,1000): 999 + 50 <= 1099) but touches the live
     * session: merged and re-fired */
    push(h, "k", "b", 900);
    assert_int_equal(0, n_late(h));
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 900, 1100, "2");
    /* alone and late */
    push(h, "k", "c", 500);
    assert_int_equal(1, n_late(h));
    /* alone, within lateness: opens a session that fires at once */
    push(h, "j", "d", 1040); /* [1040,1140): 1139 > 1099, not fired */
    assert_int_equal(2, n_main(h));
    wm(h, 1148);
    assert_int_equal(3, n_main(h));
    check_fire(h, 2, "j", 1040, 1140, "1");
    wm(h, 1149);             /* k's session [900,1100) dropped at 1149 */
    push(h, "k", "e", 1100); /* [1100,1200) would touch it, but it is gone */
    assert_int_equal(3, n_main(h));
    assert_int_equal(1, n_late(h));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(4, n_main(h));
    check_fire(h, 3, "k", 1100, 1200, "1");
    weir_harness_destroy(h);
}

static void test_window_session_merge_after_fire(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_session(10);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, 100));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 0);  /* [0,10) */
    push(h, "k", "b", 20); /* [20,30) */
    wm(h, 9);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 10, "1");
    /* bridge: merged [0,30) has end-1 = 29 > W: a timer, not a firing */
    push(h, "k", "c", 10);
    assert_int_equal(1, n_main(h));
    wm(h, 29);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 0, 30, "3");
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(2, n_main(h));
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Triggers
 * ------------------------------------------------------------------ */

static void test_window_trigger_count(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_tumbling(100);
    assert_int_equal(WEIR_OK, weir_window_set_trigger_count(w, 2));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 1);
    assert_int_equal(0, n_main(h));
    push(h, "k", "b", 2);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 100, "2");
    push(h, "k", "c", 3);
    wm(h, 99); /* no firing on the watermark */
    assert_int_equal(1, n_main(h));
    push(h, "k", "d", 150);
    push(h, "k", "e", 151);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 100, 200, "2");
    push(h, "k", "f", 4); /* state dropped at 99: late */
    assert_int_equal(1, n_late(h));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(2, n_main(h));
    weir_harness_destroy(h);

    /* with lateness the count goes on until end-1+L */
    w = weir_window_tumbling(100);
    assert_int_equal(WEIR_OK, weir_window_set_trigger_count(w, 2));
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, 100));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 1);
    wm(h, 150);
    push(h, "k", "b", 2);
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 100, "2");
    push(h, "k", "c", 3);
    push(h, "k", "d", 3);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 0, 100, "4");
    weir_harness_destroy(h);
}

static void test_window_trigger_count_sessions(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_session(10);
    assert_int_equal(WEIR_OK, weir_window_set_trigger_count(w, 3));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 0);
    push(h, "k", "b", 30);
    assert_int_equal(0, n_main(h));
    push(h, "k", "c", 15); /* [15,25) alone */
    assert_int_equal(0, n_main(h));
    push(h, "k", "d", 8); /* bridges [0,10) and [15,25): 1+1+1 >= 3 */
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 25, "3");
    push(h, "k", "e", 24); /* [24,34) bridges with [30,40): 0 + 1 + 1 */
    assert_int_equal(1, n_main(h));
    push(h, "k", "f", 1);
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 0, 40, "6");
    weir_harness_destroy(h);
}

static void test_window_trigger_early(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_tumbling(WEIR_SECONDS(10));
    assert_int_equal(WEIR_OK, weir_window_set_trigger_early(w, 1000));
    h = mk(w, &weir_agg_count);
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 100));
    push(h, "k", "a", 1);
    push(h, "k", "b", 2);
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 999));
    assert_int_equal(0, n_main(h));
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 1000));
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 10000, "2");
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 5000));
    assert_int_equal(1, n_main(h)); /* nothing new: no firing */
    push(h, "k", "c", 3);
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 5999));
    assert_int_equal(1, n_main(h));
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 6000));
    assert_int_equal(2, n_main(h));
    check_fire(h, 1, "k", 0, 10000, "3");
    push(h, "k", "d", 4);
    wm(h, 9999); /* the event-time firing */
    assert_int_equal(3, n_main(h));
    check_fire(h, 2, "k", 0, 10000, "4");
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 20000));
    assert_int_equal(3, n_main(h)); /* fired and cleared */
    weir_harness_destroy(h);
}

static void test_window_trigger_early_sessions(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;

    (void)state;
    w = weir_window_session(100);
    assert_int_equal(WEIR_OK, weir_window_set_trigger_early(w, 10));
    h = mk(w, &weir_agg_count);
    push(h, "k", "a", 0);
    push(h, "k", "b", 300);
    push(h, "k", "c", 150); /* [150,250) bridges nothing: 100 < 150 */
    push(h, "k", "d", 99);  /* [99,199) joins [0,100) and [150,250) */
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 10));
    assert_int_equal(2, n_main(h));
    expect_window(h, "k", 0, 250, "3");
    expect_window(h, "k", 300, 400, "1");
    assert_int_equal(WEIR_OK, weir_harness_set_processing_time(h, 100));
    assert_int_equal(2, n_main(h));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(4, n_main(h));
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Aggregates
 * ------------------------------------------------------------------ */

static const char *agg_result(const weir_aggregate_def_t *agg,
                              const char *const *values, size_t n)
{
    static char out[64];
    weir_harness_t *h;
    const weir_record_t *rec;
    size_t i;

    h = mk(weir_window_tumbling(100), agg);
    for (i = 0; i < n; i++)
        push(h, "k", values[i], (weir_ts_t)i);
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(1, n_main(h));
    rec = weir_harness_record(h, WEIR_TAG_MAIN, 0);
    snprintf(out, sizeof(out), "%.*s", (int)weir_record_value(rec).len,
             (const char *)weir_record_value(rec).data);
    weir_harness_destroy(h);
    return out;
}

static void test_window_aggregates(void **state)
{
    static const char *const nums[] = {"5", "-3", "12", "+4", "0"};
    static const char *const wrap[] = {"9223372036854775807", "1"};
    static const char *const words[] = {"alpha", "", "gamma"};

    (void)state;
    assert_string_equal("5", agg_result(&weir_agg_count, nums, 5));
    assert_string_equal("18", agg_result(&weir_agg_sum, nums, 5));
    assert_string_equal("-3", agg_result(&weir_agg_min, nums, 5));
    assert_string_equal("12", agg_result(&weir_agg_max, nums, 5));
    assert_string_equal("5", agg_result(&weir_agg_first, nums, 5));
    assert_string_equal("0", agg_result(&weir_agg_last, nums, 5));
    assert_string_equal("-9223372036854775808",
                        agg_result(&weir_agg_sum, wrap, 2));
    assert_string_equal("alpha", agg_result(&weir_agg_first, words, 3));
    assert_string_equal("gamma", agg_result(&weir_agg_last, words, 3));
    assert_string_equal("", agg_result(&weir_agg_last, words, 2));
}

static void test_window_aggregate_errors(void **state)
{
    const weir_aggregate_def_t *aggs[] = {&weir_agg_sum, &weir_agg_min,
                                          &weir_agg_max};
    size_t i;

    (void)state;
    for (i = 0; i < 3; i++) {
        weir_harness_t *h = mk(weir_window_tumbling(100), aggs[i]);
        weir_buf_t reason;

        push(h, "k", "7", 1);
        push(h, "k", "abc", 2);
        push(h, "k", "", 3);
        push(h, "k", "99999999999999999999", 4);
        push(h, "k", "1 ", 5);
        push(h, "k", "-", 6);
        assert_int_equal(5, n_errors(h));
        assert_int_equal(WEIR_OK, weir_record_header(weir_harness_record(
                                                         h, WEIR_TAG_ERRORS, 0),
                                                     WEIR_HDR_ERROR, &reason));
        assert_true(reason.len > 0);
        assert_true(buf_is(
            weir_record_value(weir_harness_record(h, WEIR_TAG_ERRORS, 0)),
            "abc"));
        assert_int_equal(WEIR_OK, weir_harness_end(h));
        assert_int_equal(1, n_main(h));
        assert_int_equal(7, weir_harness_i64(h, WEIR_TAG_MAIN, 0));
        weir_harness_destroy(h);
    }
}

static void test_window_aggregate_rejects_new_window(void **state)
{
    weir_harness_t *h;

    (void)state;
    /* a rejected record creates no window and no firing */
    h = mk(weir_window_session(10), &weir_agg_sum);
    push(h, "k", "x", 5);
    push(h, "k", "1", 0);
    push(h, "k", "2", 20);
    push(h, "k", "bad", 10); /* would bridge: rejected, nothing merges */
    assert_int_equal(2, n_errors(h));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(2, n_main(h));
    expect_window(h, "k", 0, 10, "1");
    expect_window(h, "k", 20, 30, "2");
    weir_harness_destroy(h);
}

static void test_window_aggregate_header(void **state)
{
    weir_harness_t *h;
    size_t i;

    (void)state;
    h = weir_harness_new_window_ex(weir_window_tumbling(100), &weir_agg_sum,
                                   "amount");
    assert_non_null(h);
    for (i = 0; i < 4; i++) {
        weir_record_t *rec;
        char num[8];

        rec = weir_record_new(NULL, WEIR_BUF_STR("k"), WEIR_BUF_STR("x"),
                              (weir_ts_t)i, WEIR_COPY);
        assert_non_null(rec);
        snprintf(num, sizeof(num), "%zu", i * 10);
        if (i != 2)
            assert_int_equal(WEIR_OK, weir_record_add_header(
                                          rec, "amount", WEIR_BUF_STR(num)));
        assert_int_equal(WEIR_OK, weir_harness_push_record(h, rec));
        weir_record_destroy(rec);
    }
    assert_int_equal(1, n_errors(h)); /* no header */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(40, weir_harness_i64(h, WEIR_TAG_MAIN, 0));
    weir_harness_destroy(h);
}

static void test_window_acc_api(void **state)
{
    (void)state;
    assert_null(weir_acc_data(NULL));
    assert_int_equal(0, weir_acc_len(NULL));
    assert_int_equal(WEIR_EINVAL, weir_acc_resize(NULL, 4));
    assert_int_equal(WEIR_EINVAL, weir_acc_set(NULL, WEIR_BUF_STR("x")));
}

/* A user aggregate with a growing accumulator and init: concatenates
 * values with '+', starting from "<". Exercises init, resize and set. */
static int cat_init(weir_acc_t *acc, const void *opaque)
{
    (void)opaque;
    return weir_acc_set(acc, WEIR_BUF_STR("<"));
}

static int cat_add(weir_acc_t *acc, const weir_record_t *rec,
                   const void *opaque)
{
    weir_buf_t v = weir_record_value(rec);
    size_t len = weir_acc_len(acc);
    int rc;

    (void)opaque;
    rc = weir_acc_resize(acc, len + v.len + 1);
    if (rc != WEIR_OK)
        return rc;
    memcpy((char *)weir_acc_data(acc) + len, v.data, v.len);
    ((char *)weir_acc_data(acc))[len + v.len] = '+';
    return WEIR_OK;
}

static int cat_merge(weir_acc_t *acc, weir_buf_t other, const void *opaque)
{
    size_t len = weir_acc_len(acc);
    int rc;

    (void)opaque;
    rc = weir_acc_resize(acc, len + other.len - 1);
    if (rc != WEIR_OK)
        return rc;
    memcpy((char *)weir_acc_data(acc) + len, (const char *)other.data + 1,
           other.len - 1);
    return WEIR_OK;
}

static int cat_result(weir_buf_t acc, weir_acc_t *out, const void *opaque)
{
    (void)opaque;
    return weir_acc_set(out, acc);
}

static const weir_aggregate_def_t cat_agg = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "cat",
    .acc_size = 0,
    .init = cat_init,
    .add = cat_add,
    .merge = cat_merge,
    .result = cat_result,
};

static void test_window_user_aggregate(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = mk(weir_window_session(10), &cat_agg);
    push(h, "k", "a", 0);
    push(h, "k", "bb", 20);
    push(h, "k", "ccc", 10); /* bridges: b's session merges into a's */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(1, n_main(h));
    check_fire(h, 0, "k", 0, 30, "<a+bb+ccc+");
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Full-window functions
 * ------------------------------------------------------------------ */

/* Emits "start..end:v1,v2,...@ts1,ts2..." for each firing. */
static int list_fn(weir_ctx_t *ctx, weir_buf_t key, weir_ts_t start,
                   weir_ts_t end, const weir_record_t *const *recs, size_t n,
                   void *opaque)
{
    char out[512];
    size_t len;
    size_t i;
    int *calls = opaque;

    (*calls)++;
    len = (size_t)snprintf(out, sizeof(out), "%lld..%lld:", (long long)start,
                           (long long)end);
    for (i = 0; i < n && len < sizeof(out) - 64; i++) {
        weir_buf_t v = weir_record_value(recs[i]);

        if (weir_record_key(recs[i]).len != key.len ||
            memcmp(weir_record_key(recs[i]).data, key.data, key.len) != 0)
            return WEIR_EINVAL;
        len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%.*s@%lld",
                                i ? "," : "", (int)v.len, (const char *)v.data,
                                (long long)weir_record_ts(recs[i]));
    }
    return weir_emit_new(ctx, key, WEIR_BUF(out, len), end - 1);
}

static void op_free(void *p)
{
    weir_window_op_destroy(p);
}

static weir_harness_t *mk_apply(weir_window_t *w, int *calls)
{
    weir_window_op_t *op;
    weir_harness_t *h;
    char err[128];

    op = weir_window_op_new_apply(w, list_fn, calls, err, sizeof(err));
    assert_non_null(op);
    h = weir_harness_new(&weir_op_window, op);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_attach(h, op, op_free));
    return h;
}

static void expect_output(const weir_harness_t *h, size_t i, const char *v)
{
    const weir_record_t *rec = weir_harness_record(h, WEIR_TAG_MAIN, i);

    assert_non_null(rec);
    if (!buf_is(weir_record_value(rec), v))
        fail_msg("output %zu: '%.*s', expected '%s'", i,
                 (int)weir_record_value(rec).len,
                 (const char *)weir_record_value(rec).data, v);
}

static void test_window_apply_tumbling(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;
    int calls = 0;

    (void)state;
    w = weir_window_tumbling(100);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, 50));
    h = mk_apply(w, &calls);
    push(h, "k", "c", 30);
    push(h, "k", "a", 10);
    push(h, "k", "b", 99);
    push(h, "k", "z", 100);
    wm(h, 99);
    assert_int_equal(1, n_main(h));
    expect_output(h, 0, "0..100:c@30,a@10,b@99");
    push(h, "k", "d", 0); /* within lateness: re-fire with everything */
    assert_int_equal(2, n_main(h));
    expect_output(h, 1, "0..100:c@30,a@10,b@99,d@0");
    wm(h, 149);
    push(h, "k", "e", 0);
    assert_int_equal(1, n_late(h));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(3, n_main(h));
    expect_output(h, 2, "100..200:z@100");
    assert_int_equal(3, calls);
    weir_harness_destroy(h);
}

static void test_window_apply_sessions(void **state)
{
    weir_harness_t *h;
    int calls = 0;

    (void)state;
    h = mk_apply(weir_window_session(10), &calls);
    push(h, "k", "a", 0);
    push(h, "k", "b", 20);
    push(h, "k", "c", 3);
    push(h, "k", "d", 22);
    push(h, "k", "e", 12); /* bridges: arrival order is kept */
    push(h, "k", "f", 50);
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(2, n_main(h));
    expect_output(h, 0, "0..32:a@0,b@20,c@3,d@22,e@12");
    expect_output(h, 1, "50..60:f@50");
    weir_harness_destroy(h);
}

static void test_window_apply_sliding_count(void **state)
{
    weir_window_t *w;
    weir_harness_t *h;
    int calls = 0;

    (void)state;
    w = weir_window_sliding(10, 5);
    assert_int_equal(WEIR_OK, weir_window_set_trigger_count(w, 2));
    h = mk_apply(w, &calls);
    push(h, "k", "a", 7); /* [5,15) and [0,10) */
    push(h, "k", "b", 8); /* both reach 2 */
    assert_int_equal(2, n_main(h));
    push(h, "k", "c", 12); /* [10,20) and [5,15) */
    assert_int_equal(2, n_main(h));
    push(h, "k", "d", 13);
    assert_int_equal(4, n_main(h));
    expect_output(h, 2, "10..20:c@12,d@13");
    expect_output(h, 3, "5..15:a@7,b@8,c@12,d@13");
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Checkpoints: restoring mid-stream gives an uninterrupted run's output
 * ------------------------------------------------------------------ */

typedef struct step {
    char op; /* 'r' record, 'w' watermark, 'p' processing time */
    const char *key;
    const char *value;
    weir_ts_t t;
} step_t;

static void run_steps(weir_harness_t *h, const step_t *steps, size_t from,
                      size_t to)
{
    size_t i;

    for (i = from; i < to; i++) {
        const step_t *s = &steps[i];

        if (s->op == 'r')
            push(h, s->key, s->value, s->t);
        else if (s->op == 'w')
            wm(h, s->t);
        else
            assert_int_equal(WEIR_OK,
                             weir_harness_set_processing_time(h, s->t));
    }
}

/* Appends "tag|key|value|ts|start|end\n" for every output to out. */
static void dump(const weir_harness_t *h, char *out, size_t size)
{
    static const char *const tags[] = {WEIR_TAG_MAIN, WEIR_TAG_LATE,
                                       WEIR_TAG_ERRORS};
    size_t t;
    size_t i;

    for (t = 0; t < 3; t++) {
        for (i = 0; i < weir_harness_count(h, tags[t]); i++) {
            const weir_record_t *rec = weir_harness_record(h, tags[t], i);
            weir_ts_t s = 0;
            weir_ts_t e = 0;
            size_t len = strlen(out);

            (void)weir_record_window(rec, &s, &e);
            snprintf(out + len, size - len, "%s|%.*s|%.*s|%lld|%lld|%lld\n",
                     tags[t], (int)weir_record_key(rec).len,
                     (const char *)weir_record_key(rec).data,
                     (int)weir_record_value(rec).len,
                     (const char *)weir_record_value(rec).data,
                     (long long)weir_record_ts(rec), (long long)s,
                     (long long)e);
        }
    }
}

/* Splits text into at most max lines (in place). */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    char *tok;

    for (tok = strtok(text, "\n"); tok != NULL && n < max;
         tok = strtok(NULL, "\n"))
        lines[n++] = tok;
    return n;
}

/* The two dumps hold the same lines, in any order. */
static void same_lines(const char *whole, const char *parts, size_t cut)
{
    char *a = strdup(whole);
    char *b = strdup(parts);
    char *la[256];
    char *lb[256];
    size_t na;
    size_t nb;
    size_t i;
    size_t j;

    assert_non_null(a);
    assert_non_null(b);
    na = split_lines(a, la, 256);
    nb = split_lines(b, lb, 256);
    assert_int_equal(na, nb);
    for (i = 0; i < na; i++) {
        int hit = 0;

        for (j = 0; j < nb && !hit; j++) {
            if (lb[j] != NULL && strcmp(la[i], lb[j]) == 0) {
                lb[j] = NULL;
                hit = 1;
            }
        }
        if (!hit)
            fail_msg("cut %zu: missing '%s'", cut, la[i]);
    }
    free(a);
    free(b);
}

typedef weir_harness_t *(*make_fn)(void);

static void check_restore(make_fn make, const step_t *steps, size_t n)
{
    char whole[8192];
    char parts[8192];
    size_t cut;

    whole[0] = '\0';
    {
        weir_harness_t *h = make();

        run_steps(h, steps, 0, n);
        assert_int_equal(WEIR_OK, weir_harness_end(h));
        dump(h, whole, sizeof(whole));
        weir_harness_destroy(h);
    }
    assert_true(strlen(whole) > 0);
    for (cut = 0; cut <= n; cut++) {
        weir_harness_t *h1 = make();
        weir_harness_t *h2 = make();
        weir_snapshot_t *snap = NULL;

        parts[0] = '\0';
        run_steps(h1, steps, 0, cut);
        assert_int_equal(WEIR_OK, weir_harness_checkpoint(h1, 1, &snap));
        dump(h1, parts, sizeof(parts));
        /* the first harness goes on a bit, then dies: that output is lost */
        run_steps(h1, steps, cut, n < cut + 2 ? n : cut + 2);
        weir_harness_destroy(h1);
        assert_int_equal(WEIR_OK, weir_harness_restore(h2, snap));
        weir_snapshot_destroy(snap);
        run_steps(h2, steps, cut, n);
        assert_int_equal(WEIR_OK, weir_harness_end(h2));
        dump(h2, parts, sizeof(parts));
        weir_harness_destroy(h2);
        same_lines(whole, parts, cut);
    }
}

static const step_t restore_steps[] = {
    {'r', "a", "1", 100},    {'r', "b", "2", 150},    {'p', NULL, NULL, 5},
    {'r', "a", "3", 1200},   {'w', NULL, NULL, 900},  {'r', "a", "4", 300},
    {'r', "b", "5", 1100},   {'p', NULL, NULL, 12},   {'w', NULL, NULL, 1150},
    {'r', "a", "6", 50},     {'r', "b", "7", 1400},   {'r', "c", "8", -500},
    {'w', NULL, NULL, 1800}, {'r', "a", "9", 1000},   {'r', "a", "10", 2500},
    {'p', NULL, NULL, 40},   {'w', NULL, NULL, 2200}, {'r', "c", "x", 2300},
};

static weir_harness_t *make_tumbling(void)
{
    weir_window_t *w = weir_window_tumbling(1000);

    weir_window_set_lateness(w, 300);
    return mk(w, &weir_agg_sum);
}

static weir_harness_t *make_sliding_early(void)
{
    weir_window_t *w = weir_window_sliding(1000, 250);

    weir_window_set_trigger_early(w, 10);
    return mk(w, &weir_agg_sum);
}

static weir_harness_t *make_session(void)
{
    weir_window_t *w = weir_window_session(400);

    weir_window_set_lateness(w, 200);
    return mk(w, &weir_agg_sum);
}

static weir_harness_t *make_session_count(void)
{
    weir_window_t *w = weir_window_session(400);

    weir_window_set_trigger_count(w, 2);
    return mk(w, &weir_agg_last);
}

static int apply_calls;

static weir_harness_t *make_session_apply(void)
{
    weir_window_t *w = weir_window_session(300);

    weir_window_set_lateness(w, 500);
    return mk_apply(w, &apply_calls);
}

static void test_window_restore(void **state)
{
    size_t n = sizeof(restore_steps) / sizeof(restore_steps[0]);

    (void)state;
    check_restore(make_tumbling, restore_steps, n);
    check_restore(make_sliding_early, restore_steps, n);
    check_restore(make_session, restore_steps, n);
    check_restore(make_session_count, restore_steps, n);
    check_restore(make_session_apply, restore_steps, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_spec_invalid),
        cmocka_unit_test(test_window_spec_accessors),
        cmocka_unit_test(test_window_floor),
        cmocka_unit_test(test_window_record_window),
        cmocka_unit_test(test_window_invalid_operator_args),
        cmocka_unit_test(test_window_tumbling_boundaries),
        cmocka_unit_test(test_window_tumbling_late),
        cmocka_unit_test(test_window_tumbling_negative),
        cmocka_unit_test(test_window_lateness_refire),
        cmocka_unit_test(test_window_first_record_within_lateness),
        cmocka_unit_test(test_window_end_of_input),
        cmocka_unit_test(test_window_time_limits),
        cmocka_unit_test(test_window_no_timestamp),
        cmocka_unit_test(test_window_sliding_overlap),
        cmocka_unit_test(test_window_sliding_uneven),
        cmocka_unit_test(test_window_sliding_partly_late),
        cmocka_unit_test(test_window_session_basic),
        cmocka_unit_test(test_window_session_touching),
        cmocka_unit_test(test_window_session_bridge),
        cmocka_unit_test(test_window_session_bridge_many),
        cmocka_unit_test(test_window_session_late_and_lateness),
        cmocka_unit_test(test_window_session_merge_after_fire),
        cmocka_unit_test(test_window_trigger_count),
        cmocka_unit_test(test_window_trigger_count_sessions),
        cmocka_unit_test(test_window_trigger_early),
        cmocka_unit_test(test_window_trigger_early_sessions),
        cmocka_unit_test(test_window_aggregates),
        cmocka_unit_test(test_window_aggregate_errors),
        cmocka_unit_test(test_window_aggregate_rejects_new_window),
        cmocka_unit_test(test_window_aggregate_header),
        cmocka_unit_test(test_window_acc_api),
        cmocka_unit_test(test_window_user_aggregate),
        cmocka_unit_test(test_window_apply_tumbling),
        cmocka_unit_test(test_window_apply_sessions),
        cmocka_unit_test(test_window_apply_sliding_count),
        cmocka_unit_test(test_window_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
