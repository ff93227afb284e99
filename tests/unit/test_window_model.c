/*
 * tests/unit/test_window_model.c - model-based randomized tests of the
 * window operator.
 *
 * A reference model, written here as plainly as possible (arrays, linear
 * scans, no timers), is fed the same random input as the real operator:
 * random keys, out-of-order timestamps on both sides of zero, random
 * watermarks. Both the multiset of firings (key, start, end, value) and
 * the multiset of late records must be equal. The operator runs in the
 * single-operator harness (explicit watermarks; some runs checkpoint
 * mid-stream, restore into a new harness and go on) and in a full
 * pipeline (generator -> bounded watermark every 3 records -> key_by ->
 * window -> collect) at parallelism 1, 2 and 4.
 *
 * How it works
 *
 * The model, for a watermark W (as it stood before each record):
 *   - a window is "gone" when end-1+L <= W;
 *   - a record is late when all its windows are gone; for sessions, when
 *     its own window is gone and merges with no live session;
 *   - a window fires when W moves past end-1 (old < end-1 <= new), and at
 *     once when a record reaches it while end-1 <= W; with the count
 *     trigger, instead, whenever n records were added since its last
 *     firing;
 *   - sessions merge when they intersect (touching included) and carry
 *     the sum of everything merged.
 *
 * Both the aggregate (weir_agg_sum) and a full-window function computing
 * the same sum are checked.
 *
 * Seeds are fixed and printed; WEIR_TEST_SEED overrides the base seed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>
#include <weir/testing.h>
#include <weir/window.h>

/* ------------------------------------------------------------------ *
 * ## Random input
 * ------------------------------------------------------------------ */

typedef struct ev {
    int key;      /* 0..keys-1          */
    weir_ts_t ts; /* event time         */
    int64_t v;    /* summed value       */
    weir_ts_t wm; /* harness: watermark pushed before it (or WEIR_TS_MIN) */
} ev_t;

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static int64_t rnd_range(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static uint64_t base_seed(void)
{
    const char *s = getenv("WEIR_TEST_SEED");

    return s != NULL ? strtoull(s, NULL, 10) : 20261123;
}

/* n records over keys, time moving forward ~step per record from t0,
 * each jittered by up to +-jitter; harness watermarks now and then,
 * maxTs - jitter/2 - [0, jitter]. */
static ev_t *make_events(uint64_t seed, size_t n, int keys, weir_ts_t t0,
                         weir_ts_t step, weir_ts_t jitter)
{
    ev_t *evs = calloc(n, sizeof(*evs));
    weir_ts_t max_ts = WEIR_TS_MIN;
    size_t i;

    assert_non_null(evs);
    rng_state = seed * 2654435761u + 1;
    for (i = 0; i < n; i++) {
        evs[i].key = (int)rnd_range(0, keys - 1);
        evs[i].ts = t0 + (weir_ts_t)i * step + rnd_range(-jitter, jitter);
        evs[i].v = rnd_range(-50, 100);
        evs[i].wm = WEIR_TS_MIN;
        if (i > 0 && rnd() % 4 == 0)
            evs[i].wm = max_ts - jitter / 2 - rnd_range(0, jitter);
        if (evs[i].ts > max_ts)
            max_ts = evs[i].ts;
    }
    return evs;
}

/* ------------------------------------------------------------------ *
 * ## The model
 * ------------------------------------------------------------------ */

typedef struct cfg {
    weir_window_kind_t kind;
    weir_ts_t size;     /* S or G                      */
    weir_ts_t slide;    /* D (sliding)                 */
    weir_ts_t lateness; /* L                           */
    uint64_t count;     /* count trigger n, 0 = events */
} cfg_t;

typedef struct fire {
    int key;
    weir_ts_t start;
    weir_ts_t end;
    int64_t value;
} fire_t;

typedef struct late {
    int key;
    weir_ts_t ts;
    int64_t v;
} late_t;

typedef struct mwin {
    int key;
    weir_ts_t start;
    weir_ts_t end;
    int64_t sum;
    uint64_t since; /* records since the last firing (count trigger) */
} mwin_t;

typedef struct out {
    fire_t *fires;
    size_t n_fires;
    late_t *lates;
    size_t n_lates;
    size_t bad; /* outputs that could not be read or kept */
} out_t;

typedef struct model {
    cfg_t cfg;
    mwin_t *wins;
    size_t n;
    size_t cap;
    out_t out;
} model_t;

/* The out_* and take helpers run on sink threads in pipeline runs, so
 * they never use cmocka's asserts: failures are counted in o->bad and
 * checked on the test's thread. */
static void out_fire(out_t *o, int key, weir_ts_t start, weir_ts_t end,
                     int64_t value)
{
    fire_t *f = realloc(o->fires, (o->n_fires + 1) * sizeof(*o->fires));

    if (f == NULL) {
        o->bad++;
        return;
    }
    o->fires = f;
    o->fires[o->n_fires].key = key;
    o->fires[o->n_fires].start = start;
    o->fires[o->n_fires].end = end;
    o->fires[o->n_fires].value = value;
    o->n_fires++;
}

static void out_late(out_t *o, int key, weir_ts_t ts, int64_t v)
{
    late_t *l = realloc(o->lates, (o->n_lates + 1) * sizeof(*o->lates));

    if (l == NULL) {
        o->bad++;
        return;
    }
    o->lates = l;
    o->lates[o->n_lates].key = key;
    o->lates[o->n_lates].ts = ts;
    o->lates[o->n_lates].v = v;
    o->n_lates++;
}

static void out_free(out_t *o)
{
    free(o->fires);
    free(o->lates);
    memset(o, 0, sizeof(*o));
}

static int gone(const model_t *m, weir_ts_t end, weir_ts_t w)
{
    return end - 1 + m->cfg.lateness <= w;
}

static mwin_t *model_add_win(model_t *m, int key, weir_ts_t start,
                             weir_ts_t end)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->wins = realloc(m->wins, m->cap * sizeof(*m->wins));
        assert_non_null(m->wins);
    }
    memset(&m->wins[m->n], 0, sizeof(m->wins[m->n]));
    m->wins[m->n].key = key;
    m->wins[m->n].start = start;
    m->wins[m->n].end = end;
    return &m->wins[m->n++];
}

/* One record reached a window: add it and fire if the trigger says so. */
static void model_touch(model_t *m, mwin_t *win, weir_ts_t w)
{
    win->since++;
    if (m->cfg.count > 0) {
        if (win->since >= m->cfg.count) {
            out_fire(&m->out, win->key, win->start, win->end, win->sum);
            win->since = 0;
        }
    } else if (win->end - 1 <= w) {
        out_fire(&m->out, win->key, win->start, win->end, win->sum);
    }
}

static void model_record_fixed(model_t *m, const ev_t *e, weir_ts_t w)
{
    weir_ts_t d =
        m->cfg.kind == WEIR_WINDOW_TUMBLING ? m->cfg.size : m->cfg.slide;
    weir_ts_t first;
    weir_ts_t start;
    int kept = 0;

    /* the latest start at or before ts, by plain floor division */
    first = e->ts / d;
    if (e->ts % d != 0 && e->ts < 0)
        first--;
    first *= d;
    for (start = first; start > e->ts - m->cfg.size; start -= d) {
        weir_ts_t end = start + m->cfg.size;
        mwin_t *win = NULL;
        size_t i;

        if (gone(m, end, w))
            continue;
        kept = 1;
        for (i = 0; i < m->n && win == NULL; i++)
            if (m->wins[i].key == e->key && m->wins[i].start == start &&
                m->wins[i].end == end)
                win = &m->wins[i];
        if (win == NULL)
            win = model_add_win(m, e->key, start, end);
        win->sum += e->v;
        model_touch(m, win, w);
    }
    if (!kept)
        out_late(&m->out, e->key, e->ts, e->v);
}

static void model_record_session(model_t *m, const ev_t *e, weir_ts_t w)
{
    weir_ts_t start = e->ts;
    weir_ts_t end = e->ts + m->cfg.size;
    int64_t sum = e->v;
    uint64_t since = 1;
    int merged = 0;
    int grew = 1;
    size_t i;
    mwin_t *win;

    while (grew) {
        grew = 0;
        for (i = 0; i < m->n; i++) {
            mwin_t *s = &m->wins[i];

            if (s->key != e->key || !(s->start <= end && s->end >= start))
                continue;
            if (s->start < start)
                start = s->start;
            if (s->end > end)
                end = s->end;
            sum += s->sum;
            since += s->since;
            m->wins[i] = m->wins[--m->n]; /* remove, look again */
            merged = grew = 1;
            break;
        }
    }
    if (!merged && gone(m, end, w)) {
        out_late(&m->out, e->key, e->ts, e->v);
        return;
    }
    win = model_add_win(m, e->key, start, end);
    win->sum = sum;
    win->since = since - 1;
    model_touch(m, win, w);
}

static void model_record(model_t *m, const ev_t *e, weir_ts_t w)
{
    if (m->cfg.kind == WEIR_WINDOW_SESSION)
        model_record_session(m, e, w);
    else
        model_record_fixed(m, e, w);
}

static void model_watermark(model_t *m, weir_ts_t old, weir_ts_t w)
{
    size_t i = 0;

    if (m->cfg.count == 0) {
        for (i = 0; i < m->n; i++) {
            mwin_t *win = &m->wins[i];

            if (old < win->end - 1 && win->end - 1 <= w)
                out_fire(&m->out, win->key, win->start, win->end, win->sum);
        }
    }
    i = 0;
    while (i < m->n) {
        if (gone(m, m->wins[i].end, w))
            m->wins[i] = m->wins[--m->n];
        else
            i++;
    }
}

/* ------------------------------------------------------------------ *
 * ## Comparing outputs
 * ------------------------------------------------------------------ */

static int cmp_i64(int64_t a, int64_t b)
{
    return a < b ? -1 : a > b;
}

static int fire_cmp(const void *pa, const void *pb)
{
    const fire_t *a = pa;
    const fire_t *b = pb;
    int c;

    if ((c = cmp_i64(a->key, b->key)) != 0)
        return c;
    if ((c = cmp_i64(a->start, b->start)) != 0)
        return c;
    if ((c = cmp_i64(a->end, b->end)) != 0)
        return c;
    return cmp_i64(a->value, b->value);
}

static int late_cmp(const void *pa, const void *pb)
{
    const late_t *a = pa;
    const late_t *b = pb;
    int c;

    if ((c = cmp_i64(a->key, b->key)) != 0)
        return c;
    if ((c = cmp_i64(a->ts, b->ts)) != 0)
        return c;
    return cmp_i64(a->v, b->v);
}

static void compare(out_t *want, out_t *got, const char *what)
{
    size_t i;

    if (got->bad != 0)
        fail_msg("%s: %zu outputs could not be read", what, got->bad);

    qsort(want->fires, want->n_fires, sizeof(fire_t), fire_cmp);
    qsort(got->fires, got->n_fires, sizeof(fire_t), fire_cmp);
    qsort(want->lates, want->n_lates, sizeof(late_t), late_cmp);
    qsort(got->lates, got->n_lates, sizeof(late_t), late_cmp);
    for (i = 0; i < want->n_fires && i < got->n_fires; i++) {
        const fire_t *a = &want->fires[i];
        const fire_t *b = &got->fires[i];

        if (fire_cmp(a, b) != 0)
            fail_msg("%s: firing %zu: model k%d [%" PRId64 ",%" PRId64
                     ")=%" PRId64 ", operator k%d [%" PRId64 ",%" PRId64
                     ")=%" PRId64,
                     what, i, a->key, a->start, a->end, a->value, b->key,
                     b->start, b->end, b->value);
    }
    if (want->n_fires != got->n_fires)
        fail_msg("%s: %zu firings in the model, %zu from the operator", what,
                 want->n_fires, got->n_fires);
    for (i = 0; i < want->n_lates && i < got->n_lates; i++) {
        if (late_cmp(&want->lates[i], &got->lates[i]) != 0)
            fail_msg("%s: late record %zu differs (ts %" PRId64 " vs %" PRId64
                     ")",
                     what, i, want->lates[i].ts, got->lates[i].ts);
    }
    if (want->n_lates != got->n_lates)
        fail_msg("%s: %zu late records in the model, %zu from the operator",
                 what, want->n_lates, got->n_lates);
}

/* "k<n>" -> n, or -1. */
static int parse_key(weir_buf_t k)
{
    char tmp[16];

    if (k.len < 2 || k.len >= sizeof(tmp) || ((const char *)k.data)[0] != 'k')
        return -1;
    memcpy(tmp, k.data, k.len);
    tmp[k.len] = '\0';
    return atoi(tmp + 1);
}

static int parse_value(weir_buf_t v, int64_t *out)
{
    char tmp[32];
    char *end;

    if (v.len == 0 || v.len >= sizeof(tmp))
        return -1;
    memcpy(tmp, v.data, v.len);
    tmp[v.len] = '\0';
    *out = strtoll(tmp, &end, 10);
    return *end == '\0' ? 0 : -1;
}

/* Adds a main or late output record to got. */
static void take(out_t *got, const weir_record_t *rec, int is_late)
{
    int key = parse_key(weir_record_key(rec));
    int64_t v;
    weir_ts_t s;
    weir_ts_t e;

    if (key < 0 || parse_value(weir_record_value(rec), &v) != 0) {
        got->bad++;
        return;
    }
    if (is_late) {
        out_late(got, key, weir_record_ts(rec), v);
        return;
    }
    if (weir_record_window(rec, &s, &e) != WEIR_OK ||
        weir_record_ts(rec) != e - 1) {
        got->bad++;
        return;
    }
    out_fire(got, key, s, e, v);
}

static weir_window_t *make_window(const cfg_t *c)
{
    weir_window_t *w;

    if (c->kind == WEIR_WINDOW_TUMBLING)
        w = weir_window_tumbling(c->size);
    else if (c->kind == WEIR_WINDOW_SLIDING)
        w = weir_window_sliding(c->size, c->slide);
    else
        w = weir_window_session(c->size);
    assert_non_null(w);
    assert_int_equal(WEIR_OK, weir_window_set_lateness(w, c->lateness));
    if (c->count > 0)
        assert_int_equal(WEIR_OK, weir_window_set_trigger_count(w, c->count));
    return w;
}

/* A full-window function computing what weir_agg_sum computes, so that
 * the model checks full-window mode too. It runs on operator threads:
 * bad input fails the run instead of asserting. */
static int sum_fn(weir_ctx_t *ctx, weir_buf_t key, weir_ts_t start,
                  weir_ts_t end, const weir_record_t *const *recs, size_t n,
                  void *opaque)
{
    weir_record_t *rec;
    char text[32];
    int64_t sum = 0;
    int64_t v;
    size_t i;
    int rc;

    (void)opaque;
    if (n == 0)
        return WEIR_EINVAL;
    for (i = 0; i < n; i++) {
        weir_ts_t ts = weir_record_ts(recs[i]);

        if (parse_value(weir_record_value(recs[i]), &v) != 0 || ts < start ||
            ts >= end)
            return WEIR_EINVAL;
        sum += v;
    }
    snprintf(text, sizeof(text), "%" PRId64, sum);
    rec = weir_record_new(ctx, key, WEIR_BUF_STR(text), end - 1, WEIR_COPY);
    if (rec == NULL)
        return WEIR_ENOMEM;
    snprintf(text, sizeof(text), "%" PRId64, start);
    rc = weir_record_add_header(rec, WEIR_HDR_WINDOW_START, WEIR_BUF_STR(text));
    snprintf(text, sizeof(text), "%" PRId64, end);
    if (rc == WEIR_OK)
        rc = weir_record_add_header(rec, WEIR_HDR_WINDOW_END,
                                    WEIR_BUF_STR(text));
    if (rc != WEIR_OK) {
        weir_record_destroy(rec);
        return rc;
    }
    return weir_emit(ctx, rec);
}

static void op_free(void *p)
{
    weir_window_op_destroy(p);
}

static weir_window_t *make_window(const cfg_t *c);

/* A harness running sum (aggregate) or sum_fn (full-window function). */
static weir_harness_t *make_harness(const cfg_t *c, int apply)
{
    weir_window_op_t *op;
    weir_harness_t *h;

    if (!apply) {
        h = weir_harness_new_window(make_window(c), &weir_agg_sum);
        assert_non_null(h);
        return h;
    }
    op = weir_window_op_new_apply(make_window(c), sum_fn, NULL, NULL, 0);
    assert_non_null(op);
    h = weir_harness_new(&weir_op_window, op);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_attach(h, op, op_free));
    return h;
}

static const cfg_t configs[] = {
    {WEIR_WINDOW_TUMBLING, 1000, 0, 0, 0},
    {WEIR_WINDOW_TUMBLING, 1000, 0, 700, 0},
    {WEIR_WINDOW_SLIDING, 1000, 250, 0, 0},
    {WEIR_WINDOW_SLIDING, 1000, 300, 400, 0},
    {WEIR_WINDOW_SESSION, 150, 0, 0, 0},
    {WEIR_WINDOW_SESSION, 150, 0, 500, 0},
    {WEIR_WINDOW_TUMBLING, 1000, 0, 300, 3},
    {WEIR_WINDOW_SESSION, 150, 0, 200, 4},
};

/* ------------------------------------------------------------------ *
 * ## Harness runs
 * ------------------------------------------------------------------ */

/* Moves what the harness collected into got. */
static void take_all(out_t *got, const weir_harness_t *h)
{
    size_t i;

    for (i = 0; i < weir_harness_count(h, WEIR_TAG_MAIN); i++)
        take(got, weir_harness_record(h, WEIR_TAG_MAIN, i), 0);
    for (i = 0; i < weir_harness_count(h, WEIR_TAG_LATE); i++)
        take(got, weir_harness_record(h, WEIR_TAG_LATE, i), 1);
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_ERRORS));
}

/* With restore_at < n, the harness is checkpointed before record
 * restore_at, destroyed, and a new one restored from the checkpoint goes
 * on: the outputs must not change. */
static void run_harness(const cfg_t *c, uint64_t seed, size_t restore_at,
                        int apply)
{
    const size_t n = 3000;
    ev_t *evs;
    model_t m;
    out_t got;
    weir_harness_t *h;
    weir_ts_t w = WEIR_TS_MIN;
    char what[96];
    size_t i;

    memset(&m, 0, sizeof(m));
    memset(&got, 0, sizeof(got));
    m.cfg = *c;
    evs = make_events(seed, n, 7, -40000, 27, 1500);
    h = make_harness(c, apply);
    for (i = 0; i < n; i++) {
        char key[16];
        char val[32];

        if (i == restore_at) {
            weir_snapshot_t *snap = NULL;

            assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &snap));
            take_all(&got, h);
            weir_harness_destroy(h);
            h = make_harness(c, apply);
            assert_int_equal(WEIR_OK, weir_harness_restore(h, snap));
            weir_snapshot_destroy(snap);
        }
        if (evs[i].wm > w) {
            assert_int_equal(WEIR_OK, weir_harness_watermark(h, evs[i].wm));
            model_watermark(&m, w, evs[i].wm);
            w = evs[i].wm;
        }
        snprintf(key, sizeof(key), "k%d", evs[i].key);
        snprintf(val, sizeof(val), "%" PRId64, evs[i].v);
        assert_int_equal(WEIR_OK, weir_harness_push(h, key, val, evs[i].ts));
        model_record(&m, &evs[i], w);
    }
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    model_watermark(&m, w, WEIR_TS_MAX);
    take_all(&got, h);
    snprintf(what, sizeof(what),
             "harness%s kind %d L %" PRId64 " n %" PRIu64 " seed %" PRIu64
             " restore %zu",
             apply ? " (function)" : "", (int)c->kind, c->lateness, c->count,
             seed, restore_at);
    compare(&m.out, &got, what);
    /* the run must exercise both outputs */
    assert_true(got.n_fires > 20);
    if (c->count == 0)
        assert_true(got.n_lates > 0);
    weir_harness_destroy(h);
    out_free(&got);
    out_free(&m.out);
    free(m.wins);
    free(evs);
}

static void test_window_model_harness(void **state)
{
    uint64_t seed = base_seed();
    size_t i;
    int round;

    (void)state;
    printf("window model (harness): seed %" PRIu64 "\n", seed);
    /* round 0 plain, round 1 restored mid-stream, round 2 the same with
     * a full-window function */
    for (round = 0; round < 3; round++)
        for (i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
            run_harness(&configs[i], seed + (uint64_t)round * 101 + i,
                        round == 0 ? (size_t)-1 : 700 + (size_t)round * 600,
                        round == 2);
}

/* ------------------------------------------------------------------ *
 * ## Pipeline runs: generator -> bounded(B) -> key_by -> window -> collect
 * ------------------------------------------------------------------ */

typedef struct gen {
    const ev_t *evs;
    size_t n;
    char key[16];
    char val[32];
} gen_t;

static int gen_fn(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
                  weir_ts_t *ts)
{
    gen_t *g = opaque;
    int len;

    if (i >= g->n)
        return 0;
    len = snprintf(g->key, sizeof(g->key), "k%d", g->evs[i].key);
    *key = WEIR_BUF(g->key, (size_t)len);
    len = snprintf(g->val, sizeof(g->val), "%" PRId64, g->evs[i].v);
    *value = WEIR_BUF(g->val, (size_t)len);
    *ts = g->evs[i].ts;
    return 1;
}

typedef struct sink {
    out_t out;
    int is_late;
    size_t errors;
} sink_t;

static int collect_fn(const weir_record_t *rec, const char *tag, void *opaque)
{
    sink_t *s = opaque;

    (void)tag;
    take(&s->out, rec, s->is_late);
    return WEIR_OK;
}

static int count_fn(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    ((sink_t *)opaque)->errors++;
    return WEIR_OK;
}

static void run_pipeline(const cfg_t *c, uint64_t seed, int parallelism,
                         int apply)
{
    const size_t n = 4000;
    const size_t every = 3;
    const weir_ts_t bound = 800;
    weir_watermark_t *wm;
    char errstr[256];
    char text[16];
    weir_conf_t *conf;
    weir_pipeline_t *p;
    weir_stream_t *s;
    weir_stream_t *win;
    sink_t main_sink;
    sink_t late_sink;
    sink_t err_sink;
    gen_t g;
    model_t m;
    ev_t *evs;
    weir_ts_t w = WEIR_TS_MIN;
    weir_ts_t max_ts = WEIR_TS_MIN;
    char what[96];
    size_t i;
    int rc;

    memset(&m, 0, sizeof(m));
    memset(&main_sink, 0, sizeof(main_sink));
    memset(&late_sink, 0, sizeof(late_sink));
    memset(&err_sink, 0, sizeof(err_sink));
    late_sink.is_late = 1;
    m.cfg = *c;
    evs = make_events(seed, n, 23, -60000, 19, 1200);
    g.evs = evs;
    g.n = n;

    /* the model: after every `every`-th record, W := max(W, maxTs - B) */
    for (i = 0; i < n; i++) {
        model_record(&m, &evs[i], w);
        if (evs[i].ts > max_ts)
            max_ts = evs[i].ts;
        if ((i + 1) % every == 0 && max_ts - bound > w) {
            model_watermark(&m, w, max_ts - bound);
            w = max_ts - bound;
        }
    }
    model_watermark(&m, w, WEIR_TS_MAX);

    conf = weir_conf_new();
    assert_non_null(conf);
    snprintf(text, sizeof(text), "%d", parallelism);
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "pipeline.parallelism", text,
                                            errstr, sizeof(errstr)));
    p = weir_pipeline_new("window-model", conf, errstr, sizeof(errstr));
    assert_non_null(p);
    s = weir_source_generator(p, "gen", gen_fn, &g);
    wm = weir_watermark_bounded(bound);
    assert_non_null(wm);
    assert_int_equal(WEIR_OK, weir_watermark_set_every(wm, every));
    s = weir_stream_watermark(s, wm);
    s = weir_stream_set_parallelism(s, 1);
    s = weir_stream_keyby(s, NULL, NULL);
    if (apply)
        win = weir_stream_window_apply(s, make_window(c), sum_fn, NULL);
    else
        win = weir_stream_window(s, make_window(c), &weir_agg_sum, NULL);
    assert_int_equal(WEIR_OK, weir_stream_collect(win, collect_fn, &main_sink));
    assert_int_equal(WEIR_OK, weir_stream_collect(
                                  weir_stream_side_output(win, WEIR_TAG_LATE),
                                  collect_fn, &late_sink));
    assert_int_equal(WEIR_OK, weir_stream_collect(
                                  weir_stream_side_output(win, WEIR_TAG_ERRORS),
                                  count_fn, &err_sink));
    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK)
        fail_msg("run: %s (%s)", weir_strerror(rc), weir_pipeline_errstr(p));
    weir_pipeline_destroy(p);

    main_sink.out.lates = late_sink.out.lates;
    main_sink.out.n_lates = late_sink.out.n_lates;
    main_sink.out.bad += late_sink.out.bad;
    snprintf(what, sizeof(what),
             "pipeline%s P=%d kind %d L %" PRId64 " seed %" PRIu64,
             apply ? " (function)" : "", parallelism, (int)c->kind, c->lateness,
             seed);
    compare(&m.out, &main_sink.out, what);
    assert_int_equal(0, err_sink.errors);
    assert_true(main_sink.out.n_fires > 100);
    assert_true(main_sink.out.n_lates > 0);
    out_free(&main_sink.out);
    out_free(&m.out);
    free(m.wins);
    free(evs);
}

static void test_window_model_pipeline(void **state)
{
    static const int pars[] = {1, 2, 4};
    uint64_t seed = base_seed() + 7;
    size_t i;
    size_t j;

    (void)state;
    printf("window model (pipeline): seed %" PRIu64 "\n", seed);
    /* every kind at every parallelism; the other event-time configs at
     * parallelism 1 */
    for (j = 0; j < 3; j++)
        for (i = 0; i < 6; i++)
            if (j == 0 || i % 2 == 1)
                run_pipeline(&configs[i], seed + i, pars[j], 0);
    run_pipeline(&configs[5], seed + 11, 2, 1);
    run_pipeline(&configs[3], seed + 12, 4, 1);
}

/* The builder rejects bad arguments with a sticky error and still
 * consumes the spec. */
static void test_window_builder_errors(void **state)
{
    static const weir_aggregate_def_t no_merge = {
        .version = WEIR_AGGREGATE_VERSION,
        .name = "no-merge",
        .acc_size = 8,
        .add = NULL,
    };
    struct {
        weir_window_t *w;
        const weir_aggregate_def_t *agg;
    } bad[4];
    char errstr[256];
    size_t i;
    gen_t g = {.evs = NULL, .n = 0};

    (void)state;
    bad[0].w = NULL;
    bad[0].agg = &weir_agg_count;
    bad[1].w = weir_window_tumbling(10);
    bad[1].agg = NULL;
    bad[2].w = weir_window_rolling(10);
    bad[2].agg = &weir_agg_count;
    bad[3].w = weir_window_session(10);
    bad[3].agg = &no_merge;
    for (i = 0; i < 4; i++) {
        weir_pipeline_t *p =
            weir_pipeline_new("bad", NULL, errstr, sizeof(errstr));
        weir_stream_t *s;

        assert_non_null(p);
        s = weir_source_generator(p, "gen", gen_fn, &g);
        s = weir_stream_keyby(s, NULL, NULL);
        s = weir_stream_window(s, bad[i].w, bad[i].agg, NULL);
        assert_int_equal(0, weir_stream_ok(s));
        assert_int_equal(WEIR_EINVAL, weir_pipeline_error(p));
        assert_true(strlen(weir_pipeline_errstr(p)) > 0);
        /* later calls on the poisoned stream still consume their spec */
        s = weir_stream_window(s, weir_window_tumbling(5), &weir_agg_count,
                               NULL);
        assert_int_equal(0, weir_stream_ok(s));
        weir_pipeline_destroy(p);
    }
}

int main(void)
{
    const char *filter = getenv("WEIR_TEST_FILTER");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_model_harness),
        cmocka_unit_test(test_window_model_pipeline),
        cmocka_unit_test(test_window_builder_errors),
    };
    if (filter != NULL)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
