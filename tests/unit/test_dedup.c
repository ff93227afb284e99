/*
 * tests/unit/test_dedup.c - the dedup operator (operators/dedup.c) in the
 * single-operator harness: every scope, every boundary of DESIGN §4
 * (f + R - 1 + L == W, ts + L == W, end - 1 + L == W, touching and
 * bridging sessions), negative timestamps, lateness, keys compared by
 * bytes, snapshot/restore equivalence, and memory that stays bounded
 * while keys expire (measured through a counting allocator installed
 * with weir_replace_allocator()).
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
#include <weir/window.h>

#include "../../operators/dedup_table.h"

#define U 0 /* unique    */
#define D 1 /* duplicate */
#define L 2 /* late      */

/* ------------------------------------------------------------------ *
 * ## A counting allocator (single-threaded tests only)
 * ------------------------------------------------------------------ */

#define HDR 16
static size_t live_bytes;

static void *cnt_malloc(size_t n)
{
    unsigned char *p;

    p = malloc(n + HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    live_bytes += n;
    return p + HDR;
}

static void cnt_free(void *ptr)
{
    unsigned char *p;
    size_t n;

    if (ptr == NULL)
        return;
    p = (unsigned char *)ptr - HDR;
    memcpy(&n, p, sizeof(n));
    live_bytes -= n;
    free(p);
}

static void *cnt_realloc(void *ptr, size_t n)
{
    unsigned char *p;
    size_t old;

    if (ptr == NULL)
        return cnt_malloc(n);
    p = (unsigned char *)ptr - HDR;
    memcpy(&old, p, sizeof(old));
    p = realloc(p, n + HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &n, sizeof(n));
    live_bytes = live_bytes - old + n;
    return p + HDR;
}

static void *cnt_calloc(size_t n, size_t size)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = cnt_malloc(n * size);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

/* ------------------------------------------------------------------ *
 * ## Helpers
 * ------------------------------------------------------------------ */

static weir_harness_t *new_dedup(weir_window_t *scope, weir_ts_t lateness)
{
    weir_harness_t *h;

    assert_non_null(scope);
    assert_int_equal(weir_window_set_lateness(scope, lateness), WEIR_OK);
    h = weir_harness_new_dedup(scope);
    assert_non_null(h);
    return h;
}

static int counts_sum(const weir_harness_t *h, size_t c[3])
{
    c[U] = weir_harness_count(h, NULL);
    c[D] = weir_harness_count(h, WEIR_TAG_DUPLICATE);
    c[L] = weir_harness_count(h, WEIR_TAG_LATE);
    return (int)(c[U] + c[D] + c[L]);
}

/* Pushes key@ts with a unique value and checks where it went. */
static void expect_buf(weir_harness_t *h, weir_buf_t key, weir_ts_t ts, int cls,
                       int line)
{
    static const char *names[] = {"unique", "duplicate", "late"};
    static unsigned seq;
    const weir_record_t *rec;
    size_t before[3];
    size_t after[3];
    char value[32];
    int got;

    snprintf(value, sizeof(value), "%u", ++seq);
    counts_sum(h, before);
    assert_int_equal(weir_harness_push_buf(h, key, WEIR_BUF_STR(value), ts),
                     WEIR_OK);
    assert_int_equal(counts_sum(h, after),
                     (int)(before[U] + before[D] + before[L] + 1));
    got = after[U] > before[U] ? U : after[D] > before[D] ? D : L;
    if (got != cls)
        fail_msg("line %d: ts %lld went %s, expected %s", line, (long long)ts,
                 names[got], names[cls]);
    rec = weir_harness_record(h,
                              got == U   ? NULL
                              : got == D ? WEIR_TAG_DUPLICATE
                                         : WEIR_TAG_LATE,
                              after[got] - 1);
    assert_non_null(rec);
    assert_int_equal(weir_record_ts(rec), ts);
    assert_int_equal(weir_record_value(rec).len, strlen(value));
    assert_memory_equal(weir_record_value(rec).data, value, strlen(value));
}

#define EXPECT(h, key, ts, cls)                                                \
    expect_buf((h), WEIR_BUF_STR(key), (ts), (cls), __LINE__)
#define WM(h, w) assert_int_equal(weir_harness_watermark((h), (w)), WEIR_OK)

/* ------------------------------------------------------------------ *
 * ## Rolling
 * ------------------------------------------------------------------ */

static void test_dedup_rolling_basic(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_rolling(10), 0);
    EXPECT(h, "a", 100, U); /* f = 100: live while 109 > W */
    EXPECT(h, "a", 50, D);
    EXPECT(h, "a", 5000, D);
    EXPECT(h, "b", 100, U);
    WM(h, 108);
    EXPECT(h, "a", 1, D);   /* behind W, but state is live: duplicate */
    WM(h, 109);             /* f + R - 1 + L == W: the entry is gone */
    EXPECT(h, "a", 109, L); /* ts + L == W */
    EXPECT(h, "a", 110, U); /* opens f = 110 */
    EXPECT(h, "a", 100, D);
    EXPECT(h, "b", 200, U);
    weir_harness_destroy(h);
}

static void test_dedup_rolling_duplicates_do_not_extend(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_rolling(10), 0);
    EXPECT(h, "a", 100, U);
    EXPECT(h, "a", 105, D);
    EXPECT(h, "a", 108, D);
    WM(h, 109);
    EXPECT(h, "a", 115, U);
    weir_harness_destroy(h);
}

static void test_dedup_rolling_lateness(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_rolling(10), 5);
    EXPECT(h, "a", 100, U); /* live while 114 > W */
    WM(h, 113);
    EXPECT(h, "a", 0, D);
    WM(h, 114);
    EXPECT(h, "a", 109, L); /* 109 + 5 == 114 */
    EXPECT(h, "a", 110, U); /* 115 > 114 */
    EXPECT(h, "a", 109, D); /* the new entry is live: duplicate */
    EXPECT(h, "c", 109, L);
    EXPECT(h, "c", 110, U);
    weir_harness_destroy(h);
}

static void test_dedup_rolling_negative_and_zero_ttl(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_rolling(10), 0);
    EXPECT(h, "a", -100, U); /* live while -91 > W */
    WM(h, -92);
    EXPECT(h, "a", -500, D);
    WM(h, -91);
    EXPECT(h, "a", -91, L);
    EXPECT(h, "a", -90, U);
    weir_harness_destroy(h);

    /* R = 0: an entry lives while ts - 1 > W */
    h = new_dedup(weir_window_rolling(0), 0);
    EXPECT(h, "a", 5, U);
    EXPECT(h, "a", 5, D);
    WM(h, 4);
    EXPECT(h, "a", 4, L);
    EXPECT(h, "a", 5, U); /* 5 - 1 == 4 == W: dead at once */
    EXPECT(h, "a", 5, U);
    EXPECT(h, "a", 6, U);
    EXPECT(h, "a", 6, D);
    weir_harness_destroy(h);
}

static void test_dedup_keys_by_bytes(void **state)
{
    static const char k1[] = {'a', 0, 'b'};
    static const char k2[] = {'a', 0, 'c'};
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_rolling(100), 0);
    expect_buf(h, WEIR_BUF(k1, 3), 1, U, __LINE__);
    expect_buf(h, WEIR_BUF(k2, 3), 1, U, __LINE__);
    expect_buf(h, WEIR_BUF(k1, 2), 1, U, __LINE__);
    expect_buf(h, WEIR_BUF(k1, 1), 1, U, __LINE__);
    expect_buf(h, WEIR_BUF("a", 1), 1, D, __LINE__);
    expect_buf(h, WEIR_BUF_NULL, 1, U, __LINE__);
    expect_buf(h, WEIR_BUF_NULL, 2, D, __LINE__);
    expect_buf(h, WEIR_BUF(k2, 3), 7, D, __LINE__);
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Tumbling
 * ------------------------------------------------------------------ */

static void test_dedup_tumbling_basic(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_tumbling(10), 0);
    EXPECT(h, "a", 5, U); /* [0, 10) */
    EXPECT(h, "a", 0, D);
    EXPECT(h, "a", 9, D);
    EXPECT(h, "a", 10, U); /* [10, 20) */
    EXPECT(h, "a", -1, U); /* [-10, 0) */
    EXPECT(h, "a", -10, D);
    EXPECT(h, "a", -11, U); /* [-20, -10) */
    EXPECT(h, "b", 5, U);
    WM(h, 8);
    EXPECT(h, "a", 3, D);
    EXPECT(h, "c", 3, U); /* first of (c, [0,10)), behind W: unique */
    WM(h, 9);             /* end - 1 + L == W: [0,10) is late */
    EXPECT(h, "a", 3, L);
    EXPECT(h, "d", 9, L);
    EXPECT(h, "a", 10, D);
    EXPECT(h, "a", 19, D);
    EXPECT(h, "d", 10, U);
    weir_harness_destroy(h);
}

static void test_dedup_tumbling_lateness(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_tumbling(10), 5);
    EXPECT(h, "a", 5, U); /* [0,10): state until W >= 14 */
    WM(h, 13);
    EXPECT(h, "a", 1, D);
    EXPECT(h, "b", 1, U);
    WM(h, 14);
    EXPECT(h, "a", 1, L);
    EXPECT(h, "b", 9, L);
    EXPECT(h, "a", 10, U);
    weir_harness_destroy(h);
}

static void test_dedup_tumbling_negative(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_tumbling(1000), 0);
    EXPECT(h, "a", -1, U); /* [-1000, 0) */
    EXPECT(h, "a", -1000, D);
    EXPECT(h, "a", -1001, U); /* [-2000, -1000) */
    WM(h, -1002);
    EXPECT(h, "a", -1500, D);
    WM(h, -1001); /* end - 1 == -1001 */
    EXPECT(h, "a", -1500, L);
    EXPECT(h, "a", -999, D);
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Session
 * ------------------------------------------------------------------ */

static void test_dedup_session_touching(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_session(10), 0);
    EXPECT(h, "a", 100, U); /* [100, 110) */
    EXPECT(h, "a", 110, D); /* [110, 120) touches: [100, 120) */
    EXPECT(h, "a", 90, D);  /* [90, 100) touches: [90, 120) */
    EXPECT(h, "a", 121, U); /* [121, 131) is apart */
    EXPECT(h, "a", 79, U);  /* [79, 89) is apart */
    EXPECT(h, "b", 100, U);
    weir_harness_destroy(h);
}

static void test_dedup_session_bridging(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_session(10), 0);
    EXPECT(h, "a", 100, U); /* [100, 110) */
    EXPECT(h, "a", 120, U); /* [120, 130) */
    EXPECT(h, "a", 110, D); /* bridges both: [100, 130) */
    EXPECT(h, "a", 130, D); /* touches: [100, 140) */
    WM(h, 129);
    /* the merged session is live (139 > 129); [100, 110) alone would not
     * be, and the record would be late */
    EXPECT(h, "a", 105, D);
    WM(h, 139);
    EXPECT(h, "a", 105, L);
    EXPECT(h, "a", 130, L); /* 130 + 10 - 1 == 139 */
    EXPECT(h, "a", 131, U); /* opens a new session */
    weir_harness_destroy(h);
}

static void test_dedup_session_boundaries(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_session(10), 0);
    EXPECT(h, "a", 100, U); /* [100,110): live while 109 > W */
    WM(h, 108);
    EXPECT(h, "a", 95, D); /* merges: [95, 110) */
    WM(h, 109);
    /* the session is gone; [105,115) merges with nothing; 114 > 109 */
    EXPECT(h, "a", 105, U);
    EXPECT(h, "b", 100, L); /* ts + G - 1 == W */
    EXPECT(h, "b", 101, U);
    EXPECT(h, "a", 100, D); /* [100,110) meets the live [105,115) */
    weir_harness_destroy(h);
}

static void test_dedup_session_lateness_and_negative(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_session(10), 5);
    EXPECT(h, "a", -100, U); /* [-100,-90): live while -86 > W */
    WM(h, -87);
    EXPECT(h, "a", -95, D); /* [-100, -85): live while -81 > W */
    WM(h, -81);
    EXPECT(h, "a", -95, L); /* -95 + 9 + 5 == -81 */
    EXPECT(h, "a", -94, U);
    EXPECT(h, "a", -1000, L);
    weir_harness_destroy(h);
}

static void test_dedup_session_many_sessions_one_key(void **state)
{
    weir_harness_t *h;
    weir_ts_t t;

    (void)state;
    h = new_dedup(weir_window_session(10), 0);
    for (t = 0; t < 2000; t += 20)
        EXPECT(h, "a", t, U);
    for (t = 0; t < 2000; t += 20)
        EXPECT(h, "a", t + 5, D);
    /* fill every gap: each record bridges two sessions */
    for (t = 10; t < 2000; t += 20)
        EXPECT(h, "a", t + 5, D);
    WM(h, 1900);
    EXPECT(h, "a", 0, D); /* everything merged into [0, 2005) */
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Builder and harness arguments
 * ------------------------------------------------------------------ */

static int gen_none(void *opaque, uint64_t i, weir_buf_t *key,
                    weir_buf_t *value, weir_ts_t *ts)
{
    (void)opaque;
    (void)i;
    (void)key;
    (void)value;
    (void)ts;
    return 0;
}

static weir_stream_t *keyed_source(weir_pipeline_t *p)
{
    weir_stream_t *s;

    s = weir_source_generator(p, "none", gen_none, NULL);
    s = weir_stream_keyby(s, NULL, NULL);
    assert_true(weir_stream_ok(s));
    return s;
}

/* ------------------------------------------------------------------ *
 * ## Changelog replay (WEIR_HDR_REPLAY)
 * ------------------------------------------------------------------ */

/* Pushes a changelog entry key@ts; it must produce no output. */
static void replay(weir_harness_t *h, const char *key, weir_ts_t ts)
{
    weir_record_t *rec;
    size_t before[3];
    size_t after[3];

    rec =
        weir_record_new(NULL, WEIR_BUF_STR(key), WEIR_BUF_NULL, ts, WEIR_COPY);
    assert_non_null(rec);
    assert_int_equal(WEIR_OK, weir_record_add_header(rec, WEIR_HDR_REPLAY,
                                                     WEIR_BUF_STR("1")));
    assert_int_equal(1, weir_record_is_replay(rec));
    counts_sum(h, before);
    assert_int_equal(WEIR_OK, weir_harness_push_record(h, rec));
    assert_int_equal(counts_sum(h, after), counts_sum(h, before));
    weir_record_destroy(rec);
}

static void test_dedup_replay_rolling(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_rolling(10), 0);
    assert_int_equal(0, weir_record_is_replay(NULL));
    replay(h, "a", 100); /* as if "a" was claimed at 100 elsewhere */
    EXPECT(h, "a", 105, D);
    EXPECT(h, "b", 105, U);
    /* A later claim elsewhere (after a's state had expired there) keeps
     * the later expiry here, whatever the order. */
    replay(h, "a", 300);
    replay(h, "a", 100);
    WM(h, 200);
    EXPECT(h, "a", 250, D); /* live until 309 */
    /* What is dead at W is not restored. */
    replay(h, "c", 150); /* expires at 159 <= 200 */
    EXPECT(h, "c", 201, U);
    WM(h, 309);
    EXPECT(h, "a", 310, U);
    weir_harness_destroy(h);
}

static void test_dedup_replay_tumbling_and_session(void **state)
{
    weir_harness_t *h;

    (void)state;
    h = new_dedup(weir_window_tumbling(100), 0);
    replay(h, "a", 150); /* window [100, 200) */
    EXPECT(h, "a", 199, D);
    EXPECT(h, "a", 200, U); /* the next window */
    EXPECT(h, "a", 99, U);  /* the previous one */
    weir_harness_destroy(h);

    h = new_dedup(weir_window_session(10), 0);
    replay(h, "a", 100); /* session [100, 110) */
    replay(h, "a", 108); /* extends it to [100, 118) */
    EXPECT(h, "a", 117, D);
    EXPECT(h, "a", 130, U);
    weir_harness_destroy(h);
}

/* Replays a's changelog output into b (as a source would). */
static void replay_from(const weir_harness_t *a, weir_harness_t *b)
{
    const weir_record_t *e;
    weir_record_t *rec;
    size_t i;

    for (i = 0; i < weir_harness_count(a, WEIR_TAG_CHANGELOG); i++) {
        e = weir_harness_record(a, WEIR_TAG_CHANGELOG, i);
        rec = weir_record_new(NULL, weir_record_key(e), weir_record_value(e),
                              weir_record_ts(e), WEIR_COPY);
        assert_non_null(rec);
        assert_int_equal(WEIR_OK, weir_record_add_header(rec, WEIR_HDR_REPLAY,
                                                         WEIR_BUF_STR("1")));
        assert_int_equal(WEIR_OK, weir_harness_push_record(b, rec));
        weir_record_destroy(rec);
    }
}

/* A session entry carries the whole session: a record that joined it
 * early may be dead on its own by the time another instance replays. */
static void test_dedup_replay_session_whole(void **state)
{
    weir_harness_t *a;
    weir_harness_t *b;

    (void)state;
    a = new_dedup(weir_window_session(10), 0);
    b = new_dedup(weir_window_session(10), 0);
    EXPECT(a, "a", 100, U); /* [100, 110) */
    EXPECT(a, "a", 108, D); /* [100, 118) */
    assert_int_equal(2, weir_harness_count(a, WEIR_TAG_CHANGELOG));
    WM(a, 112);
    WM(b, 112);
    replay_from(a, b);     /* [100, 110) alone is dead at 112 */
    EXPECT(a, "a", 95, D); /* [95, 105) meets [100, 118) */
    EXPECT(b, "a", 95, D);
    weir_harness_destroy(a);
    weir_harness_destroy(b);
}

static void test_dedup_invalid_scopes(void **state)
{
    weir_pipeline_t *p;
    weir_stream_t *s;
    char err[256];

    (void)state;
    assert_null(weir_harness_new_dedup(NULL));
    assert_null(weir_harness_new_dedup(weir_window_sliding(10, 5)));

    p = weir_pipeline_new("dedup-args", NULL, err, sizeof(err));
    assert_non_null(p);
    s = keyed_source(p);
    s = weir_stream_dedup_scope(s, weir_window_sliding(10, 5));
    assert_false(weir_stream_ok(s));
    assert_int_equal(weir_pipeline_error(p), WEIR_EINVAL);
    weir_pipeline_destroy(p);

    p = weir_pipeline_new("dedup-args", NULL, err, sizeof(err));
    assert_non_null(p);
    s = keyed_source(p);
    s = weir_stream_dedup(s, -1);
    assert_false(weir_stream_ok(s));
    assert_int_equal(weir_pipeline_error(p), WEIR_EINVAL);
    weir_pipeline_destroy(p);

    p = weir_pipeline_new("dedup-args", NULL, err, sizeof(err));
    assert_non_null(p);
    s = keyed_source(p);
    s = weir_stream_dedup_scope(s, NULL);
    assert_false(weir_stream_ok(s));
    assert_int_equal(weir_pipeline_error(p), WEIR_EINVAL);
    /* a poisoned stream still consumes the scope */
    s = weir_stream_dedup_scope(s, weir_window_tumbling(5));
    assert_false(weir_stream_ok(s));
    weir_pipeline_destroy(p);
}

/* ------------------------------------------------------------------ *
 * ## Snapshot and restore
 * ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void feed(weir_harness_t *h, const uint64_t *keys, const weir_ts_t *ts,
                 size_t from, size_t to)
{
    char key[32];
    char value[32];
    size_t i;

    for (i = from; i < to; i++) {
        snprintf(key, sizeof(key), "k%llu", (unsigned long long)keys[i]);
        snprintf(value, sizeof(value), "%zu", i);
        assert_int_equal(weir_harness_push(h, key, value, ts[i]), WEIR_OK);
        if (i % 7 == 6)
            WM(h, ts[i] - 40);
    }
}

static void assert_same_outputs(const weir_harness_t *a,
                                const weir_harness_t *b)
{
    static const char *tags[] = {WEIR_TAG_MAIN, WEIR_TAG_DUPLICATE,
                                 WEIR_TAG_LATE};
    weir_buf_t va;
    weir_buf_t vb;
    size_t t;
    size_t i;

    for (t = 0; t < 3; t++) {
        assert_int_equal(weir_harness_count(a, tags[t]),
                         weir_harness_count(b, tags[t]));
        for (i = 0; i < weir_harness_count(a, tags[t]); i++) {
            va = weir_record_value(weir_harness_record(a, tags[t], i));
            vb = weir_record_value(weir_harness_record(b, tags[t], i));
            assert_int_equal(va.len, vb.len);
            assert_memory_equal(va.data, vb.data, va.len);
        }
    }
}

static weir_window_t *scope_of(int kind)
{
    switch (kind) {
    case 0:
        return weir_window_rolling(30);
    case 1:
        return weir_window_tumbling(25);
    default:
        return weir_window_session(8);
    }
}

static void test_dedup_snapshot_restore(void **state)
{
    enum { N = 6000, CUT = 3500 };
    weir_snapshot_t *snap;
    weir_harness_t *h;
    weir_harness_t *r;
    uint64_t *keys;
    weir_ts_t *ts;
    size_t seen[3];
    size_t i;
    int kind;

    (void)state;
    keys = malloc(N * sizeof(*keys));
    ts = malloc(N * sizeof(*ts));
    assert_non_null(keys);
    assert_non_null(ts);
    for (kind = 0; kind < 3; kind++) {
        rng_state = 0x9E3779B97F4A7C15ull + (uint64_t)kind;
        print_message("snapshot/restore kind %d seed %llu\n", kind,
                      (unsigned long long)rng_state);
        for (i = 0; i < N; i++) {
            keys[i] = rng() % 300;
            ts[i] = (weir_ts_t)i / 2 - 1000 - (weir_ts_t)(rng() % 60);
        }
        h = new_dedup(scope_of(kind), 3);
        feed(h, keys, ts, 0, CUT);
        assert_int_equal(weir_harness_checkpoint(h, 1, &snap), WEIR_OK);
        weir_harness_clear(h);
        r = new_dedup(scope_of(kind), 3);
        assert_int_equal(weir_harness_restore(r, snap), WEIR_OK);
        weir_snapshot_destroy(snap);
        feed(h, keys, ts, CUT, N);
        feed(r, keys, ts, CUT, N);
        assert_same_outputs(h, r);
        /* the input exercised every output */
        counts_sum(h, seen);
        assert_true(seen[U] > 0 && seen[D] > 0 && seen[L] > 0);
        weir_harness_destroy(h);
        weir_harness_destroy(r);
    }
    free(keys);
    free(ts);
}

/* The same input through the prefetch hint as the runtime gives it
 * (batches of 1..40 records, the hint 8 ahead), and with stray hints
 * (records hinted but never processed, before a batch), classifies every
 * record as pushing them one by one does. */
static void feed_batches(weir_harness_t *h, const uint64_t *keys,
                         const weir_ts_t *ts, size_t n, int stray)
{
    enum { MAXB = 40 };
    char key[MAXB][32];
    char value[MAXB][32];
    weir_record_t *r[MAXB];
    weir_record_t *x;
    size_t i = 0;
    size_t k;
    size_t b;

    while (i < n) {
        b = 1 + rng() % MAXB;
        if (b > n - i)
            b = n - i;
        for (k = 0; k < b; k++) {
            snprintf(key[k], sizeof(key[k]), "k%llu",
                     (unsigned long long)keys[i + k]);
            snprintf(value[k], sizeof(value[k]), "%zu", i + k);
            r[k] =
                weir_record_new(NULL, WEIR_BUF_STR(key[k]),
                                WEIR_BUF_STR(value[k]), ts[i + k], WEIR_COPY);
            assert_non_null(r[k]);
        }
        if (stray) {
            /* another key, and this batch's first key at another time */
            x = weir_record_new(NULL, WEIR_BUF_STR("stray"), WEIR_BUF_STR("x"),
                                ts[i], WEIR_COPY);
            assert_int_equal(weir_harness_prefetch(h, x), WEIR_OK);
            weir_record_destroy(x);
            x = weir_record_new(NULL, WEIR_BUF_STR(key[0]), WEIR_BUF_STR("x"),
                                ts[i] + 1000, WEIR_COPY);
            assert_int_equal(weir_harness_prefetch(h, x), WEIR_OK);
            weir_record_destroy(x);
        }
        assert_int_equal(
            weir_harness_push_batch(h, (const weir_record_t *const *)r, b),
            WEIR_OK);
        for (k = 0; k < b; k++)
            weir_record_destroy(r[k]);
        i += b;
        WM(h, ts[i - 1] - 40);
    }
}

/* The same records one by one, with the watermarks at the same places. */
static void feed_one_by_one(weir_harness_t *h, const uint64_t *keys,
                            const weir_ts_t *ts, const size_t *cuts,
                            size_t ncuts)
{
    char key[32];
    char value[32];
    size_t c;
    size_t i = 0;

    for (c = 0; c < ncuts; c++) {
        for (; i < cuts[c]; i++) {
            snprintf(key, sizeof(key), "k%llu", (unsigned long long)keys[i]);
            snprintf(value, sizeof(value), "%zu", i);
            assert_int_equal(weir_harness_push(h, key, value, ts[i]), WEIR_OK);
        }
        WM(h, ts[cuts[c] - 1] - 40);
    }
}

static void test_dedup_prefetch_same_result(void **state)
{
    enum { N = 4000 };
    uint64_t keys[N];
    weir_ts_t ts[N];
    size_t cuts[N];
    size_t ncuts;
    weir_harness_t *one;
    weir_harness_t *batched;
    weir_harness_t *strays;
    size_t seen[3];
    uint64_t seed;
    size_t i;
    int kind;

    (void)state;
    for (kind = 0; kind < 3; kind++) {
        rng_state = 0x51ED27A3C0FFEEull + (uint64_t)kind;
        for (i = 0; i < N; i++) {
            keys[i] = rng() % 200;
            ts[i] = (weir_ts_t)i / 2 - (weir_ts_t)(rng() % 60);
        }
        seed = rng_state;
        batched = new_dedup(scope_of(kind), 3);
        feed_batches(batched, keys, ts, N, 0);
        /* the batch boundaries drawn, for the one-by-one run */
        rng_state = seed;
        for (i = 0, ncuts = 0; i < N; ncuts++) {
            size_t b = 1 + rng() % 40;

            i += b > N - i ? N - i : b;
            cuts[ncuts] = i;
        }
        one = new_dedup(scope_of(kind), 3);
        feed_one_by_one(one, keys, ts, cuts, ncuts);
        rng_state = seed;
        strays = new_dedup(scope_of(kind), 3);
        feed_batches(strays, keys, ts, N, 1);
        assert_same_outputs(one, batched);
        assert_same_outputs(one, strays);
        counts_sum(one, seen);
        assert_true(seen[U] > 0 && seen[D] > 0 && seen[L] > 0);
        weir_harness_destroy(one);
        weir_harness_destroy(batched);
        weir_harness_destroy(strays);
    }
}

/* A restored operator without the snapshot would call these unique. */
static void test_dedup_restore_keeps_state(void **state)
{
    weir_snapshot_t *snap;
    weir_harness_t *h;
    weir_harness_t *r;
    int kind;

    (void)state;
    for (kind = 0; kind < 3; kind++) {
        h = new_dedup(scope_of(kind), 0);
        EXPECT(h, "a", 100, U);
        EXPECT(h, "b", 50, U);
        WM(h, 90); /* b's state is gone for every scope, a's is not */
        assert_int_equal(weir_harness_checkpoint(h, 1, &snap), WEIR_OK);
        r = new_dedup(scope_of(kind), 0);
        assert_int_equal(weir_harness_restore(r, snap), WEIR_OK);
        weir_snapshot_destroy(snap);
        EXPECT(r, "a", 100, D);
        EXPECT(r, "b", 50, L);
        weir_harness_destroy(h);
        weir_harness_destroy(r);
    }
}

static void test_dedup_restore_corrupt(void **state)
{
    weir_snapshot_t *snap;
    weir_harness_t *h;
    weir_harness_t *r;

    (void)state;
    h = new_dedup(weir_window_rolling(10), 0);
    EXPECT(h, "a", 100, U);
    assert_int_equal(weir_harness_checkpoint(h, 1, &snap), WEIR_OK);
    /* a snapshot of another scope kind is refused */
    r = new_dedup(weir_window_tumbling(10), 0);
    assert_true(weir_harness_restore(r, snap) < 0);
    weir_snapshot_destroy(snap);
    weir_harness_destroy(h);
    weir_harness_destroy(r);
}

/* ------------------------------------------------------------------ *
 * ## Memory stays bounded while keys expire
 * ------------------------------------------------------------------ */

/* Pushes `n` fresh keys starting at ts; the watermark follows closely. */
static void churn(weir_harness_t *h, uint64_t *next_key, weir_ts_t *ts,
                  size_t n)
{
    char key[32];
    size_t i;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key-%016llu",
                 (unsigned long long)(*next_key)++);
        assert_int_equal(weir_harness_push(h, key, "", *ts), WEIR_OK);
        (*ts)++;
        if (i % 16 == 15)
            WM(h, *ts - 50);
        if (i % 1000 == 999)
            weir_harness_clear(h);
    }
    weir_harness_clear(h);
}

/* Pushes `n` fresh keys with no watermark: every one stays live. */
static void burst(weir_harness_t *h, uint64_t *next_key, weir_ts_t *ts,
                  size_t n)
{
    char key[32];
    size_t i;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "key-%016llu",
                 (unsigned long long)(*next_key)++);
        assert_int_equal(weir_harness_push(h, key, "", *ts), WEIR_OK);
        (*ts)++;
        if (i % 1000 == 999)
            weir_harness_clear(h);
    }
    weir_harness_clear(h);
}

static void test_dedup_memory_bounded(void **state)
{
    enum { ROUND = 10000, ROUNDS = 8 };
    uint64_t next_key;
    size_t base;
    size_t after_first;
    size_t peak;
    weir_harness_t *h;
    weir_ts_t ts;
    int kind;
    int i;

    (void)state;
    for (kind = 0; kind < 3; kind++) {
        base = live_bytes;
        h = new_dedup(scope_of(kind), 10);
        next_key = 0;
        ts = 0;
        churn(h, &next_key, &ts, ROUND);
        after_first = live_bytes - base;
        peak = after_first;
        for (i = 1; i < ROUNDS; i++) {
            churn(h, &next_key, &ts, ROUND);
            if (live_bytes - base > peak)
                peak = live_bytes - base;
        }
        print_message("kind %d: %zu bytes after one round, peak %zu over "
                      "%d rounds of %d keys\n",
                      kind, after_first, peak, ROUNDS, ROUND);
        /* ROUNDS x more keys, and no more than 2x the memory */
        assert_true(peak <= 2 * after_first);
        weir_harness_destroy(h);
        assert_int_equal(live_bytes, base);
    }
}

/* After a burst of keys that all expire, the table shrinks again. */
static void test_dedup_memory_shrinks(void **state)
{
    uint64_t next_key;
    size_t base;
    size_t peak;
    weir_harness_t *h;
    weir_ts_t ts;
    weir_ts_t w;
    int kind;

    (void)state;
    for (kind = 0; kind < 3; kind++) {
        base = live_bytes;
        h = new_dedup(scope_of(kind), 0);
        next_key = 0;
        ts = 0;
        burst(h, &next_key, &ts, 20000);
        peak = live_bytes - base;
        /* everything expires; the sweep runs on watermarks alone */
        for (w = ts; w < ts + 10000; w++) {
            WM(h, w);
            if (w % 1000 == 0)
                weir_harness_clear(h); /* forwarded watermarks */
        }
        weir_harness_clear(h);
        print_message("kind %d: %zu bytes after the burst, %zu after "
                      "expiry\n",
                      kind, peak, live_bytes - base);
        assert_true((live_bytes - base) * 8 < peak);
        weir_harness_destroy(h);
        assert_int_equal(live_bytes, base);
    }
}

/* ------------------------------------------------------------------ *
 * ## The table itself: growth, in-place rehash, wrapped clusters
 * ------------------------------------------------------------------ */

struct probe_entry {
    uint64_t lo;
    uint64_t hi;
    weir_ts_t exp;
};

/* Every entry is found, live exactly when exp > w; used matches. */
static void check_table(const dtab_t *t, const struct probe_entry *v, size_t n,
                        weir_ts_t w)
{
    struct dtab_head *e;
    size_t live;
    size_t i;
    int is_live;

    live = 0;
    for (i = 0; i < n; i++) {
        e = dtab_probe(t, sizeof(struct dtab_head), v[i].lo, v[i].hi,
                       dtab_bias(w), &is_live);
        if (is_live != (v[i].exp > w))
            fail_msg("entry %zu (lo %llx): live %d, expected %d", i,
                     (unsigned long long)v[i].lo, is_live, v[i].exp > w);
        if (is_live) {
            assert_int_equal(e->lo, v[i].lo);
            assert_int_equal(e->hi, v[i].hi);
            assert_int_equal(dtab_unbias(e->exp), v[i].exp);
            live++;
        }
    }
    assert_true(t->used >= live);
    assert_true(t->used < dtab_capacity(t));
}

static void insert_entry(dtab_t *t, const struct probe_entry *x, weir_ts_t w)
{
    struct dtab_head *e;
    int live;

    assert_int_equal(dtab_reserve(t, dtab_bias(w)), WEIR_OK);
    e = dtab_probe(t, sizeof(struct dtab_head), x->lo, x->hi, dtab_bias(w),
                   &live);
    assert_false(live);
    dtab_claim(t, e, x->lo, x->hi, dtab_bias(x->exp));
}

static void test_dedup_table_rehash(void **state)
{
    enum { N = 40000 };
    struct probe_entry *v;
    dtab_t t;
    size_t i;
    int round;

    (void)state;
    v = calloc(N, sizeof(*v));
    assert_non_null(v);
    for (round = 0; round < 4; round++) {
        rng_state = 0xC0FFEEull + (uint64_t)round;
        print_message("table round %d seed %llu\n", round,
                      (unsigned long long)rng_state);
        assert_int_equal(dtab_init(&t, sizeof(struct dtab_head), NULL, 0),
                         WEIR_OK);
        for (i = 0; i < N; i++) {
            /* one in 500 lands in the last 16 slots of any capacity, so
             * that a cluster wraps around the end of the array */
            v[i].lo = rng() % 500 == 0 ? ~(uint64_t)(rng() % 16) : rng();
            v[i].hi = rng();
            v[i].exp = (weir_ts_t)(rng() % 1000);
            insert_entry(&t, &v[i], round == 0 ? WEIR_TS_MIN : 300);
            if (i % 997 == 0)
                check_table(&t, v, i + 1, round == 0 ? WEIR_TS_MIN : 300);
        }
        check_table(&t, v, N, round == 0 ? WEIR_TS_MIN : 300);
        /* rebuild at a later watermark: same size, shrink or grow */
        assert_int_equal(dtab_rebuild(&t, dtab_bias(500)), WEIR_OK);
        check_table(&t, v, N, 500);
        assert_int_equal(
            dtab_rehash_in_place(&t, dtab_capacity(&t), dtab_bias(600)),
            WEIR_OK);
        check_table(&t, v, N, 600);
        assert_int_equal(
            dtab_rehash_in_place(&t, 2 * dtab_capacity(&t), dtab_bias(600)),
            WEIR_OK);
        check_table(&t, v, N, 600);
        assert_int_equal(dtab_sweep(&t, dtab_bias(999), 10 * N), WEIR_OK);
        check_table(&t, v, N, 999);
        assert_int_equal(dtab_capacity(&t), DTAB_MIN_CAP);
        dtab_free(&t);
    }
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_rolling_basic),
        cmocka_unit_test(test_dedup_rolling_duplicates_do_not_extend),
        cmocka_unit_test(test_dedup_rolling_lateness),
        cmocka_unit_test(test_dedup_rolling_negative_and_zero_ttl),
        cmocka_unit_test(test_dedup_keys_by_bytes),
        cmocka_unit_test(test_dedup_tumbling_basic),
        cmocka_unit_test(test_dedup_tumbling_lateness),
        cmocka_unit_test(test_dedup_tumbling_negative),
        cmocka_unit_test(test_dedup_session_touching),
        cmocka_unit_test(test_dedup_session_bridging),
        cmocka_unit_test(test_dedup_session_boundaries),
        cmocka_unit_test(test_dedup_session_lateness_and_negative),
        cmocka_unit_test(test_dedup_session_many_sessions_one_key),
        cmocka_unit_test(test_dedup_invalid_scopes),
        cmocka_unit_test(test_dedup_snapshot_restore),
        cmocka_unit_test(test_dedup_prefetch_same_result),
        cmocka_unit_test(test_dedup_restore_keeps_state),
        cmocka_unit_test(test_dedup_restore_corrupt),
        cmocka_unit_test(test_dedup_memory_bounded),
        cmocka_unit_test(test_dedup_memory_shrinks),
        cmocka_unit_test(test_dedup_table_rehash),
        cmocka_unit_test(test_dedup_replay_rolling),
        cmocka_unit_test(test_dedup_replay_tumbling_and_session),
        cmocka_unit_test(test_dedup_replay_session_whole),
    };

    if (weir_replace_allocator(cnt_malloc, cnt_realloc, cnt_calloc, cnt_free) !=
        WEIR_OK)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
