/*
 * tests/unit/test_examples.c - harness tests of the operator and the
 * watermark generator that the examples and guides teach:
 * burst_detector (examples/custom_operator.h) and skew_guard
 * (examples/custom_watermark.h). The headers are included as they are,
 * so the examples' code is what is tested.
 *
 * How it works
 *   Each test drives one instance through weir/testing.h: records with
 *   keys and timestamps, watermarks, end of input, and checkpoint ->
 *   destroy -> restore round trips. Outputs are read back per tag. The
 *   code listed in docs/guide/writing-an-operator.md comes from here.
 *
 * Invariants
 *   Deterministic: no threads, no clock, no randomness. Every test frees
 *   its harnesses and snapshots.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <weir.h>
#include <weir/testing.h>

#include "../../examples/custom_operator.h"
#include "../../examples/custom_watermark.h"

static const struct burst_args three_in_10s = {
    .threshold = 2,
    .gap = WEIR_SECONDS(10),
};

/* 1 when buf holds exactly the bytes of s. */
static int buf_is(weir_buf_t buf, const char *s)
{
    size_t n = strlen(s);

    return buf.len == n && (n == 0 || memcmp(buf.data, s, n) == 0);
}

static void assert_key(const weir_harness_t *h, const char *tag, size_t i,
                       const char *key)
{
    const weir_record_t *rec = weir_harness_record(h, tag, i);

    assert_non_null(rec);
    assert_true(buf_is(weir_record_key(rec), key));
}

static void assert_value(const weir_harness_t *h, const char *tag, size_t i,
                         const char *value)
{
    const weir_record_t *rec = weir_harness_record(h, tag, i);

    assert_non_null(rec);
    assert_true(buf_is(weir_record_value(rec), value));
}

/* ------------------------------------------------------------------ *
 * ## burst_detector
 * ------------------------------------------------------------------ */

static void test_examples_burst_alerts_when_timer_fires(void **unused)
{
    weir_harness_t *h;
    const weir_record_t *alert;

    (void)unused;
    h = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h);

    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "a", 1000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "b", 2000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "c", 3000));

    /* The episode [1000, 11000) closes at 10999, not before. */
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 10998));
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 10999));
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));

    alert = weir_harness_record(h, WEIR_TAG_MAIN, 0);
    assert_non_null(alert);
    assert_true(buf_is(weir_record_key(alert), "k1"));
    assert_int_equal(3, weir_harness_i64(h, WEIR_TAG_MAIN, 0));
    assert_int_equal(10999, weir_record_ts(alert));

    /* No on_watermark: the runtime forwards every watermark. */
    assert_int_equal(2, weir_harness_watermark_count(h));
    assert_int_equal(10998, weir_harness_watermark_at(h, 0));
    assert_int_equal(10999, weir_harness_watermark_at(h, 1));
    weir_harness_destroy(h);
}

static void test_examples_burst_quiet_key_starts_over(void **unused)
{
    weir_harness_t *h;

    (void)unused;
    h = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h);

    /* Two events: not more than the threshold, no alert. */
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "a", 1000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "b", 1500));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 15000));
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));

    /* The count was deleted: a new episode counts from zero. */
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "c", 20000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "d", 21000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "e", 22000));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 29999));
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(3, weir_harness_i64(h, WEIR_TAG_MAIN, 0));
    assert_int_equal(29999, weir_record_ts(weir_harness_record(h, NULL, 0)));
    weir_harness_destroy(h);
}

static void test_examples_burst_keys_fire_in_time_order(void **unused)
{
    weir_harness_t *h;
    int i;

    (void)unused;
    h = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h);

    /* k1 opens first but closes later than k2. */
    for (i = 0; i < 3; i++) {
        assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "x", 5000 + i));
        assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "x", 1000 + i));
    }
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k2", "x", 1003));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 20000));

    assert_int_equal(2, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_key(h, WEIR_TAG_MAIN, 0, "k2");
    assert_int_equal(4, weir_harness_i64(h, WEIR_TAG_MAIN, 0));
    assert_int_equal(10999, weir_record_ts(weir_harness_record(h, NULL, 0)));
    assert_key(h, WEIR_TAG_MAIN, 1, "k1");
    assert_int_equal(3, weir_harness_i64(h, WEIR_TAG_MAIN, 1));
    assert_int_equal(14999, weir_record_ts(weir_harness_record(h, NULL, 1)));
    weir_harness_destroy(h);
}

static void test_examples_burst_late_goes_to_side_output(void **unused)
{
    weir_harness_t *h;

    (void)unused;
    h = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h);

    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 5000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "late", 5000));
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_LATE));
    assert_value(h, WEIR_TAG_LATE, 0, "late");
    assert_int_equal(5000,
                     weir_record_ts(weir_harness_record(h, WEIR_TAG_LATE, 0)));

    /* Three on-time events: the late one was not counted, no alert. */
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "a", 5001));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "b", 5002));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(1, weir_harness_count(h, BURST_TAG_SUMMARY));
    assert_value(h, BURST_TAG_SUMMARY, 0, "alerts=0 late=1");
    weir_harness_destroy(h);
}

static void test_examples_burst_bad_timestamps_are_errors(void **unused)
{
    weir_harness_t *h;
    weir_buf_t reason;

    (void)unused;
    h = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h);

    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "no-ts", WEIR_TS_MIN));
    assert_int_equal(WEIR_OK,
                     weir_harness_push(h, "k1", "end-of-time", WEIR_TS_MAX));
    assert_int_equal(2, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_value(h, WEIR_TAG_ERRORS, 0, "no-ts");
    assert_int_equal(
        WEIR_OK, weir_record_header(weir_harness_record(h, WEIR_TAG_ERRORS, 0),
                                    WEIR_HDR_ERROR, &reason));
    assert_true(buf_is(reason, "record has no timestamp"));
    assert_value(h, WEIR_TAG_ERRORS, 1, "end-of-time");

    /* Nothing was counted, and the task did not fail. */
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    weir_harness_destroy(h);
}

static void test_examples_burst_rejects_bad_args(void **unused)
{
    static const struct burst_args no_gap = {.threshold = 1, .gap = 0};
    static const struct burst_args negative = {.threshold = -1, .gap = 1};

    (void)unused;
    assert_null(weir_harness_new(&burst_detector, NULL));
    assert_null(weir_harness_new(&burst_detector, &no_gap));
    assert_null(weir_harness_new(&burst_detector, &negative));
}

/* The restore scenario in two halves: a checkpoint goes between them,
 * or nothing does (the reference run). */
static void push_first_half(weir_harness_t *h)
{
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "a", 1000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "b", 2000));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k9", "a", 1500));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 2500));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "late", 2400));
}

static void push_second_half(weir_harness_t *h)
{
    /* Late only if the watermark 2500 survived the restore. */
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "late", 2500));
    /* k1 has an open episode: no new timer is set for it here. */
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k1", "c", 3000));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 12000));
    assert_int_equal(WEIR_OK, weir_harness_end(h));
}

static void test_examples_burst_survives_restore(void **unused)
{
    weir_harness_t *h;
    weir_harness_t *h2;
    weir_harness_t *ref;
    weir_snapshot_t *snap = NULL;

    (void)unused;
    h = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h);
    push_first_half(h);
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_LATE));
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &snap));
    assert_non_null(snap);
    weir_harness_destroy(h);

    h2 = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(h2);
    assert_int_equal(WEIR_OK, weir_harness_restore(h2, snap));
    push_second_half(h2);

    /* Keyed state (count 2 -> 3) and k1's timer at 10999 came back. */
    assert_int_equal(1, weir_harness_count(h2, WEIR_TAG_MAIN));
    assert_key(h2, WEIR_TAG_MAIN, 0, "k1");
    assert_int_equal(3, weir_harness_i64(h2, WEIR_TAG_MAIN, 0));
    assert_int_equal(10999, weir_record_ts(weir_harness_record(h2, NULL, 0)));
    /* The watermark came back: 2500 is late after the restore. */
    assert_int_equal(1, weir_harness_count(h2, WEIR_TAG_LATE));
    /* Operator-local counters came back through snapshot/restore. */
    assert_value(h2, BURST_TAG_SUMMARY, 0, "alerts=1 late=2");

    /* The same input without the restore gives the same answer. */
    ref = weir_harness_new(&burst_detector, &three_in_10s);
    assert_non_null(ref);
    push_first_half(ref);
    push_second_half(ref);
    assert_int_equal(1, weir_harness_count(ref, WEIR_TAG_MAIN));
    assert_int_equal(3, weir_harness_i64(ref, WEIR_TAG_MAIN, 0));
    assert_value(ref, BURST_TAG_SUMMARY, 0, "alerts=1 late=2");

    weir_harness_destroy(ref);
    weir_harness_destroy(h2);
    weir_snapshot_destroy(snap);
}

/* ------------------------------------------------------------------ *
 * ## skew_guard
 * ------------------------------------------------------------------ */

static const struct skew_guard_args guard_args = {
    .max_ooo = WEIR_SECONDS(2),
    .max_jump = WEIR_MINUTES(1),
};

static weir_ts_t last_watermark(const weir_harness_t *h)
{
    size_t n = weir_harness_watermark_count(h);

    return n == 0 ? WEIR_TS_MIN : weir_harness_watermark_at(h, n - 1);
}

static void test_examples_skew_guard_ignores_clock_jumps(void **unused)
{
    weir_harness_t *h;
    weir_harness_t *bounded;

    (void)unused;
    h = weir_harness_new_watermark(
        weir_watermark_custom(&skew_guard, &guard_args));
    bounded =
        weir_harness_new_watermark(weir_watermark_bounded(WEIR_SECONDS(2)));
    assert_non_null(h);
    assert_non_null(bounded);

    assert_int_equal(WEIR_OK, weir_harness_push(h, "s", "a", 10000));
    assert_int_equal(8000, last_watermark(h));
    assert_int_equal(WEIR_OK,
                     weir_harness_push(h, "s", "b", 10000 + WEIR_DAYS(1)));
    assert_int_equal(8000, last_watermark(h));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "s", "c", 12000));
    assert_int_equal(10000, last_watermark(h));
    /* A jump within max_jump is trusted. */
    assert_int_equal(WEIR_OK, weir_harness_push(h, "s", "d", 42000));
    assert_int_equal(40000, last_watermark(h));
    /* Records pass through unchanged, the skewed one included. */
    assert_int_equal(4, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_value(h, WEIR_TAG_MAIN, 1, "b");

    /* The built-in bounded strategy follows the skewed clock. */
    assert_int_equal(WEIR_OK, weir_harness_push(bounded, "s", "a", 10000));
    assert_int_equal(
        WEIR_OK, weir_harness_push(bounded, "s", "b", 10000 + WEIR_DAYS(1)));
    assert_int_equal(8000 + WEIR_DAYS(1), last_watermark(bounded));

    weir_harness_destroy(bounded);
    weir_harness_destroy(h);
}

static void test_examples_skew_guard_survives_restore(void **unused)
{
    weir_harness_t *h;
    weir_harness_t *h2;
    weir_snapshot_t *snap = NULL;
    size_t i;

    (void)unused;
    h = weir_harness_new_watermark(
        weir_watermark_custom(&skew_guard, &guard_args));
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_push(h, "s", "a", 12000));
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 7, &snap));
    weir_harness_destroy(h);

    h2 = weir_harness_new_watermark(
        weir_watermark_custom(&skew_guard, &guard_args));
    assert_non_null(h2);
    assert_int_equal(WEIR_OK, weir_harness_restore(h2, snap));
    /* With max_ts = 12000 restored, a day's jump is ignored; a fresh
     * state would have accepted it as its first timestamp. */
    assert_int_equal(WEIR_OK,
                     weir_harness_push(h2, "s", "b", 12000 + WEIR_DAYS(1)));
    for (i = 0; i < weir_harness_watermark_count(h2); i++)
        assert_true(weir_harness_watermark_at(h2, i) < WEIR_DAYS(1));
    assert_int_equal(WEIR_OK, weir_harness_push(h2, "s", "c", 14000));
    assert_int_equal(12000, last_watermark(h2));

    weir_harness_destroy(h2);
    weir_snapshot_destroy(snap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_examples_burst_alerts_when_timer_fires),
        cmocka_unit_test(test_examples_burst_quiet_key_starts_over),
        cmocka_unit_test(test_examples_burst_keys_fire_in_time_order),
        cmocka_unit_test(test_examples_burst_late_goes_to_side_output),
        cmocka_unit_test(test_examples_burst_bad_timestamps_are_errors),
        cmocka_unit_test(test_examples_burst_rejects_bad_args),
        cmocka_unit_test(test_examples_burst_survives_restore),
        cmocka_unit_test(test_examples_skew_guard_ignores_clock_jumps),
        cmocka_unit_test(test_examples_skew_guard_survives_restore),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
