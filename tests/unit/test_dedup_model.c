/*
 * tests/unit/test_dedup_model.c - the dedup operator against a reference
 * model of DESIGN §4 written here as plainly as possible: a list of
 * entries per key, nothing ever removed, every rule spelled out.
 *
 * Randomized input (fixed seeds, printed): hot and cold keys, timestamps
 * out of order by up to J ms and negative at first, watermarks computed
 * as bounded out-of-orderness B emitted every N records. The same input
 * goes (1) through the harness, where the output must equal the model's
 * record for record, and (2) through full pipelines
 *   generator -> watermark(bounded B, every N) -> keyby -> dedup -> collect
 * at "pipeline.parallelism" 1, 2 and 4, where each output (main,
 * duplicates, late) must equal the model's as a multiset and keep, per
 * key, the input order; and (3) through the same pipeline with a
 * checkpoint directory (incremental snapshots: segment chains) whose sink
 * fails every few thousand records, restarted until it completes: records
 * after the last checkpoint come out again, and each must come out with
 * the model's tag every time (a state lost or doubled across a restore
 * would change some record's tag). Afterwards the state directories hold
 * segments, but not more than the retained checkpoints can need.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>
#include <weir/watermark.h>
#include <weir/window.h>

#define N_RECORDS 20000
#define N_KEYS    150
#define N_HOT     5

enum { UNIQUE = 0, DUPLICATE = 1, LATE = 2 };
static const char *const tags[3] = {WEIR_TAG_MAIN, WEIR_TAG_DUPLICATE,
                                    WEIR_TAG_LATE};

struct config {
    weir_window_kind_t kind;
    weir_ts_t size;     /* R, S or G                  */
    weir_ts_t lateness; /* L                          */
    weir_ts_t bound;    /* watermark B                */
    uint64_t every;     /* watermark every N records  */
    weir_ts_t jitter;   /* timestamps up to J behind  */
    uint64_t seed;
};

static const struct config configs[] = {
    {WEIR_WINDOW_ROLLING, 50, 0, 20, 1, 70, 1},
    {WEIR_WINDOW_ROLLING, 30, 15, 40, 5, 90, 2},
    {WEIR_WINDOW_ROLLING, 0, 7, 10, 3, 30, 3},
    {WEIR_WINDOW_TUMBLING, 40, 0, 20, 3, 70, 4},
    {WEIR_WINDOW_TUMBLING, 25, 10, 60, 1, 100, 5},
    {WEIR_WINDOW_SESSION, 15, 0, 30, 2, 70, 6},
    {WEIR_WINDOW_SESSION, 8, 12, 50, 7, 90, 7},
    {WEIR_WINDOW_SESSION, 3, 0, 5, 1, 20, 8},
};

/* The input: key ids, timestamps, and W before each record. */
struct input {
    uint32_t key[N_RECORDS];
    weir_ts_t ts[N_RECORDS];
    weir_ts_t wm[N_RECORDS];
    char keybuf[N_RECORDS][8];
    char valbuf[N_RECORDS][8];
};

/* A list of indices (per output). */
struct list {
    uint32_t *v;
    size_t n;
    size_t cap;
};

static void list_add(struct list *l, uint32_t x)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = realloc(l->v, l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n++] = x;
}

static void list_free(struct list *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* ------------------------------------------------------------------ *
 * ## Input
 * ------------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void make_input(struct input *in, const struct config *c)
{
    weir_ts_t max_ts;
    weir_ts_t w;
    size_t i;

    rng_state = 0x2545F4914F6CDD1Dull * c->seed + 1;
    print_message("model: kind %d size %lld L %lld B %lld N %llu seed "
                  "%llu\n",
                  (int)c->kind, (long long)c->size, (long long)c->lateness,
                  (long long)c->bound, (unsigned long long)c->every,
                  (unsigned long long)rng_state);
    w = WEIR_TS_MIN;
    max_ts = WEIR_TS_MIN;
    for (i = 0; i < N_RECORDS; i++) {
        in->key[i] = rng() % 5 == 0 ? (uint32_t)(rng() % N_HOT)
                                    : (uint32_t)(rng() % N_KEYS);
        in->ts[i] = -3000 + (weir_ts_t)i / 2 -
                    (weir_ts_t)(rng() % (uint64_t)(c->jitter + 1));
        snprintf(in->keybuf[i], sizeof(in->keybuf[i]), "k%u", in->key[i]);
        snprintf(in->valbuf[i], sizeof(in->valbuf[i]), "%zu", i);
        /* the watermark as it stands before record i */
        in->wm[i] = w;
        if (in->ts[i] > max_ts)
            max_ts = in->ts[i];
        if ((i + 1) % c->every == 0 && max_ts - c->bound > w)
            w = max_ts - c->bound;
    }
}

/* ------------------------------------------------------------------ *
 * ## The reference model
 * ------------------------------------------------------------------ */

struct entry {
    weir_ts_t a; /* rolling: first seen; tumbling: start; session: start */
    weir_ts_t b; /* session: end                                         */
    int gone;    /* session: merged into another entry                   */
};

struct model_key {
    struct entry *e;
    size_t n;
    size_t cap;
};

static void add_entry(struct model_key *k, weir_ts_t a, weir_ts_t b)
{
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 8;
        k->e = realloc(k->e, k->cap * sizeof(*k->e));
        assert_non_null(k->e);
    }
    k->e[k->n].a = a;
    k->e[k->n].b = b;
    k->e[k->n].gone = 0;
    k->n++;
}

static weir_ts_t floor_to(weir_ts_t ts, weir_ts_t s)
{
    weir_ts_t r = ts % s;

    return r < 0 ? ts - r - s : ts - r;
}

static int model_rolling(const struct config *c, struct model_key *k,
                         weir_ts_t ts, weir_ts_t w)
{
    size_t i;

    for (i = 0; i < k->n; i++) {
        if (k->e[i].a + c->size - 1 + c->lateness > w)
            return DUPLICATE;
    }
    if (ts + c->lateness <= w)
        return LATE;
    add_entry(k, ts, 0);
    return UNIQUE;
}

static int model_tumbling(const struct config *c, struct model_key *k,
                          weir_ts_t ts, weir_ts_t w)
{
    weir_ts_t start = floor_to(ts, c->size);
    size_t i;

    if (start + c->size - 1 + c->lateness <= w)
        return LATE;
    for (i = 0; i < k->n; i++) {
        if (k->e[i].a == start)
            return DUPLICATE;
    }
    add_entry(k, start, 0);
    return UNIQUE;
}

static int model_session(const struct config *c, struct model_key *k,
                         weir_ts_t ts, weir_ts_t w)
{
    weir_ts_t start = ts;
    weir_ts_t end = ts + c->size;
    weir_ts_t ms = start;
    weir_ts_t me = end;
    int merged = 0;
    size_t i;

    for (i = 0; i < k->n; i++) {
        struct entry *s = &k->e[i];

        if (s->gone || s->b - 1 + c->lateness <= w)
            continue; /* merged away, or not live */
        if (s->a <= end && s->b >= start) {
            merged = 1;
            s->gone = 1;
            if (s->a < ms)
                ms = s->a;
            if (s->b > me)
                me = s->b;
        }
    }
    if (merged) {
        add_entry(k, ms, me);
        return DUPLICATE;
    }
    if (ts + c->size - 1 + c->lateness <= w)
        return LATE;
    add_entry(k, start, end);
    return UNIQUE;
}

/* Runs the model; out[t] receives the input indices per output. */
static void run_model(const struct config *c, const struct input *in,
                      struct list out[3])
{
    struct model_key *keys;
    size_t i;
    int cls;

    keys = calloc(N_KEYS, sizeof(*keys));
    assert_non_null(keys);
    for (i = 0; i < N_RECORDS; i++) {
        struct model_key *k = &keys[in->key[i]];

        if (c->kind == WEIR_WINDOW_ROLLING)
            cls = model_rolling(c, k, in->ts[i], in->wm[i]);
        else if (c->kind == WEIR_WINDOW_TUMBLING)
            cls = model_tumbling(c, k, in->ts[i], in->wm[i]);
        else
            cls = model_session(c, k, in->ts[i], in->wm[i]);
        list_add(&out[cls], (uint32_t)i);
    }
    for (i = 0; i < N_KEYS; i++)
        free(keys[i].e);
    free(keys);
    print_message("model: %zu unique, %zu duplicates, %zu late\n", out[0].n,
                  out[1].n, out[2].n);
    /* the input must exercise every rule */
    assert_true(out[UNIQUE].n > 100);
    assert_true(out[DUPLICATE].n > 100);
    assert_true(out[LATE].n > 20);
}

static weir_window_t *scope_for(const struct config *c)
{
    weir_window_t *w;

    if (c->kind == WEIR_WINDOW_ROLLING)
        w = weir_window_rolling(c->size);
    else if (c->kind == WEIR_WINDOW_TUMBLING)
        w = weir_window_tumbling(c->size);
    else
        w = weir_window_session(c->size);
    assert_non_null(w);
    assert_int_equal(weir_window_set_lateness(w, c->lateness), WEIR_OK);
    return w;
}

static uint32_t value_index(const weir_record_t *rec)
{
    weir_buf_t v = weir_record_value(rec);
    char buf[16];

    assert_true(v.len > 0 && v.len < sizeof(buf));
    memcpy(buf, v.data, v.len);
    buf[v.len] = '\0';
    return (uint32_t)strtoul(buf, NULL, 10);
}

/* ------------------------------------------------------------------ *
 * ## Harness: equal record for record
 * ------------------------------------------------------------------ */

static void check_harness(const struct config *c, const struct input *in,
                          struct list model[3])
{
    weir_harness_t *h;
    weir_ts_t w;
    size_t i;
    int t;

    h = weir_harness_new_dedup(scope_for(c));
    assert_non_null(h);
    w = WEIR_TS_MIN;
    for (i = 0; i < N_RECORDS; i++) {
        if (in->wm[i] > w) {
            w = in->wm[i];
            assert_int_equal(weir_harness_watermark(h, w), WEIR_OK);
        }
        assert_int_equal(
            weir_harness_push(h, in->keybuf[i], in->valbuf[i], in->ts[i]),
            WEIR_OK);
    }
    for (t = 0; t < 3; t++) {
        assert_int_equal(weir_harness_count(h, tags[t]), model[t].n);
        for (i = 0; i < model[t].n; i++)
            assert_int_equal(value_index(weir_harness_record(h, tags[t], i)),
                             model[t].v[i]);
    }
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Handover: state moved through the changelog
 *
 * Instance A classifies records [0, k) and writes its changelog; a fresh
 * instance B is brought to A's watermark, replays A's changelog entries
 * (WEIR_HDR_REPLAY) and classifies [k, N): B must agree with the model
 * record for record, as if one instance had seen everything, in every
 * scope (a session entry carries the whole session the record joined).
 * ------------------------------------------------------------------ */

static void push_range(weir_harness_t *h, const struct input *in, size_t from,
                       size_t to, weir_ts_t *w)
{
    size_t i;

    for (i = from; i < to; i++) {
        if (in->wm[i] > *w) {
            *w = in->wm[i];
            assert_int_equal(weir_harness_watermark(h, *w), WEIR_OK);
        }
        assert_int_equal(
            weir_harness_push(h, in->keybuf[i], in->valbuf[i], in->ts[i]),
            WEIR_OK);
    }
}

/* Replays a's changelog into b. */
static void replay_changelog(const weir_harness_t *a, weir_harness_t *b)
{
    const weir_record_t *e;
    weir_record_t *rec;
    size_t n = weir_harness_count(a, WEIR_TAG_CHANGELOG);
    size_t i;

    assert_true(n > 0);
    for (i = 0; i < n; i++) {
        e = weir_harness_record(a, WEIR_TAG_CHANGELOG, i);
        rec = weir_record_new(NULL, weir_record_key(e), weir_record_value(e),
                              weir_record_ts(e), WEIR_COPY);
        assert_non_null(rec);
        assert_int_equal(WEIR_OK, weir_record_add_header(rec, WEIR_HDR_REPLAY,
                                                         WEIR_BUF_STR("1")));
        assert_int_equal(WEIR_OK, weir_harness_push_record(b, rec));
        weir_record_destroy(rec);
    }
    for (i = 0; i < 3; i++)
        assert_int_equal(0, weir_harness_count(b, tags[i]));
}

static void check_handover(const struct config *c, const struct input *in,
                           struct list model[3], size_t k)
{
    weir_harness_t *a;
    weir_harness_t *b;
    weir_ts_t w = WEIR_TS_MIN;
    size_t i;
    size_t j;
    int t;

    a = weir_harness_new_dedup(scope_for(c));
    b = weir_harness_new_dedup(scope_for(c));
    assert_non_null(a);
    assert_non_null(b);
    push_range(a, in, 0, k, &w);
    /* the changelog holds exactly the records that changed the state:
     * the claims; for sessions, every record that joined a session */
    assert_int_equal(weir_harness_count(a, WEIR_TAG_CHANGELOG),
                     weir_harness_count(a, NULL) +
                         (c->kind == WEIR_WINDOW_SESSION
                              ? weir_harness_count(a, WEIR_TAG_DUPLICATE)
                              : 0));
    if (w > WEIR_TS_MIN)
        assert_int_equal(weir_harness_watermark(b, w), WEIR_OK);
    replay_changelog(a, b);
    push_range(b, in, k, N_RECORDS, &w);
    for (t = 0; t < 3; t++) {
        for (i = 0; i < model[t].n && model[t].v[i] < k; i++)
            ;
        assert_int_equal(weir_harness_count(b, tags[t]), model[t].n - i);
        for (j = 0; i < model[t].n; i++, j++)
            assert_int_equal(value_index(weir_harness_record(b, tags[t], j)),
                             model[t].v[i]);
    }
    weir_harness_destroy(a);
    weir_harness_destroy(b);
}

/* ------------------------------------------------------------------ *
 * ## Pipelines at parallelism 1, 2 and 4
 * ------------------------------------------------------------------ */

static int gen(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
               weir_ts_t *ts)
{
    const struct input *in = opaque;

    if (i >= N_RECORDS)
        return 0;
    *key = WEIR_BUF_STR(in->keybuf[i]);
    *value = WEIR_BUF_STR(in->valbuf[i]);
    *ts = in->ts[i];
    return 1;
}

/* One sink's collected indices; each sink runs on one thread. */
static int collect(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)tag;
    list_add(opaque, value_index(rec));
    return WEIR_OK;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a;
    uint32_t y = *(const uint32_t *)b;

    return x < y ? -1 : x > y;
}

static void check_output(const struct input *in, struct list *got,
                         const struct list *want, const char *tag)
{
    int64_t last[N_KEYS];
    size_t i;

    /* per key, the input order */
    for (i = 0; i < N_KEYS; i++)
        last[i] = -1;
    for (i = 0; i < got->n; i++) {
        uint32_t x = got->v[i];

        assert_true(x < N_RECORDS);
        if ((int64_t)x <= last[in->key[x]])
            fail_msg("%s: record %u of key %u after record %lld", tag, x,
                     in->key[x], (long long)last[in->key[x]]);
        last[in->key[x]] = x;
    }
    /* as a multiset (the model's list is sorted already) */
    qsort(got->v, got->n, sizeof(*got->v), cmp_u32);
    assert_int_equal(got->n, want->n);
    for (i = 0; i < got->n; i++)
        assert_int_equal(got->v[i], want->v[i]);
}

static void check_pipeline(const struct config *c, const struct input *in,
                           struct list model[3], int parallelism)
{
    struct list got[3];
    weir_pipeline_t *p;
    weir_watermark_t *wm;
    weir_conf_t *conf;
    weir_stream_t *s;
    weir_stream_t *d;
    char value[16];
    char err[256];
    int t;

    memset(got, 0, sizeof(got));
    conf = weir_conf_new();
    assert_non_null(conf);
    snprintf(value, sizeof(value), "%d", parallelism);
    assert_int_equal(
        weir_conf_set(conf, "pipeline.parallelism", value, err, sizeof(err)),
        WEIR_OK);
    p = weir_pipeline_new("dedup-model", conf, err, sizeof(err));
    assert_non_null(p);
    wm = weir_watermark_bounded(c->bound);
    assert_non_null(wm);
    assert_int_equal(weir_watermark_set_every(wm, c->every), WEIR_OK);
    s = weir_source_generator(p, "gen", gen, (void *)in);
    s = weir_stream_watermark(s, wm);
    /* one assigner sees every record: the watermark the model computes */
    s = weir_stream_set_parallelism(s, 1);
    s = weir_stream_keyby(s, NULL, NULL);
    d = weir_stream_dedup_scope(s, scope_for(c));
    assert_int_equal(weir_stream_collect(d, collect, &got[UNIQUE]), WEIR_OK);
    assert_int_equal(
        weir_stream_collect(weir_stream_side_output(d, WEIR_TAG_DUPLICATE),
                            collect, &got[DUPLICATE]),
        WEIR_OK);
    assert_int_equal(
        weir_stream_collect(weir_stream_side_output(d, WEIR_TAG_LATE), collect,
                            &got[LATE]),
        WEIR_OK);
    if (weir_pipeline_run(p) != WEIR_OK)
        fail_msg("run: %s", weir_pipeline_errstr(p));
    weir_pipeline_destroy(p);
    for (t = 0; t < 3; t++) {
        check_output(in, &got[t], &model[t], tags[t]);
        list_free(&got[t]);
    }
}

/* ------------------------------------------------------------------ *
 * ## Pipelines that fail and restart from their checkpoints
 * ------------------------------------------------------------------ */

/* Run r's sink fails at its (r + 1) * CRASH_EVERY-th record, so the first
 * run always fails and later runs get further even when no checkpoint
 * completed in between. */
#define CRASH_EVERY 1000

static int crash_restarts; /* failed runs over the whole test */

struct crash_sink {
    pthread_mutex_t mu;
    unsigned char *tags; /* per input record: bit t = seen with tag t */
    uint64_t count;      /* records this run                          */
    uint64_t limit;      /* where this run fails                      */
};

static int crash_collect(const weir_record_t *rec, const char *tag,
                         void *opaque)
{
    struct crash_sink *cs = opaque;
    uint32_t x = value_index(rec);
    int t = tag == NULL || strcmp(tag, WEIR_TAG_MAIN) == 0 ? UNIQUE
            : strcmp(tag, WEIR_TAG_DUPLICATE) == 0         ? DUPLICATE
                                                           : LATE;
    int rc = WEIR_OK;

    pthread_mutex_lock(&cs->mu);
    cs->tags[x] |= (unsigned char)(1u << t);
    if (++cs->count == cs->limit)
        rc = WEIR_EIO; /* the run dies here, without a final checkpoint */
    pthread_mutex_unlock(&cs->mu);
    return rc;
}

/* Counts seg-* files in the state directories under dir. */
static size_t count_segments(const char *dir, size_t *most)
{
    char path[512];
    struct dirent *de;
    struct dirent *se;
    DIR *d = opendir(dir);
    DIR *s;
    size_t total = 0;
    size_t n;

    *most = 0;
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "state-", 6) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        s = opendir(path);
        assert_non_null(s);
        n = 0;
        while ((se = readdir(s)) != NULL)
            n += strncmp(se->d_name, "seg-", 4) == 0;
        closedir(s);
        total += n;
        if (n > *most)
            *most = n;
    }
    closedir(d);
    return total;
}

static int crash_run(const struct config *c, const struct input *in,
                     const char *dir, int parallelism, struct crash_sink *cs)
{
    weir_pipeline_t *p;
    weir_watermark_t *wm;
    weir_conf_t *conf = weir_conf_new();
    weir_stream_t *s;
    weir_stream_t *d;
    char value[16];
    char err[256];
    int rc;

    snprintf(value, sizeof(value), "%d", parallelism);
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "pipeline.parallelism", value,
                                            err, sizeof(err)));
    assert_int_equal(
        WEIR_OK, weir_conf_set(conf, "checkpoint.dir", dir, err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.every.records",
                                            "211", err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.fsync", "false",
                                            err, sizeof(err)));
    p = weir_pipeline_new("dedup-crash", conf, err, sizeof(err));
    assert_non_null(p);
    wm = weir_watermark_bounded(c->bound);
    assert_int_equal(weir_watermark_set_every(wm, c->every), WEIR_OK);
    s = weir_source_generator(p, "gen", gen, (void *)in);
    s = weir_stream_set_parallelism(weir_stream_watermark(s, wm), 1);
    s = weir_stream_keyby(s, NULL, NULL);
    d = weir_stream_dedup_scope(s, scope_for(c));
    assert_int_equal(WEIR_OK, weir_stream_collect(d, crash_collect, cs));
    assert_int_equal(WEIR_OK, weir_stream_collect(weir_stream_side_output(
                                                      d, WEIR_TAG_DUPLICATE),
                                                  crash_collect, cs));
    assert_int_equal(
        WEIR_OK, weir_stream_collect(weir_stream_side_output(d, WEIR_TAG_LATE),
                                     crash_collect, cs));
    cs->count = 0;
    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK && rc != WEIR_EIO)
        fail_msg("run: %s", weir_pipeline_errstr(p));
    weir_pipeline_destroy(p);
    return rc;
}

static void check_pipeline_crashes(const struct config *c,
                                   const struct input *in, struct list model[3],
                                   int parallelism)
{
    const char *tmp = getenv("WEIR_TEST_TMP");
    struct crash_sink cs;
    unsigned char want;
    char dir[256];
    char cmd[300];
    size_t most;
    size_t i;
    int t;
    int runs = 0;

    snprintf(dir, sizeof(dir), "%s/dedup-crash-XXXXXX", tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    memset(&cs, 0, sizeof(cs));
    pthread_mutex_init(&cs.mu, NULL);
    cs.tags = calloc(N_RECORDS, 1);
    assert_non_null(cs.tags);
    for (cs.limit = CRASH_EVERY;
         crash_run(c, in, dir, parallelism, &cs) != WEIR_OK;
         cs.limit += CRASH_EVERY)
        assert_true(++runs < 100);
    assert_true(runs >= 1); /* it did fail and restore */
    crash_restarts += runs;
    for (t = 0; t < 3; t++)
        for (i = 0; i < model[t].n; i++) {
            want = (unsigned char)(1u << t);
            if (cs.tags[model[t].v[i]] != want)
                fail_msg("record %u: tags %#x, model %#x (parallelism %d)",
                         model[t].v[i], cs.tags[model[t].v[i]], want,
                         parallelism);
        }
    if (c->kind != WEIR_WINDOW_SESSION) {
        assert_true(count_segments(dir, &most) > 0);
        assert_true(most <= 2 * 64);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(0, system(cmd));
    free(cs.tags);
    pthread_mutex_destroy(&cs.mu);
}

/* ------------------------------------------------------------------ *
 * ## Tests
 * ------------------------------------------------------------------ */

static void run_config(const struct config *c, int pipelines)
{
    struct list model[3];
    struct input *in;
    int t;

    in = malloc(sizeof(*in));
    assert_non_null(in);
    memset(model, 0, sizeof(model));
    make_input(in, c);
    run_model(c, in, model);
    check_harness(c, in, model);
    check_handover(c, in, model, N_RECORDS / 7);
    check_handover(c, in, model, N_RECORDS / 2);
    check_handover(c, in, model, N_RECORDS - 3);
    if (pipelines) {
        check_pipeline(c, in, model, 1);
        check_pipeline(c, in, model, 2);
        check_pipeline(c, in, model, 4);
        check_pipeline_crashes(c, in, model, 1);
        check_pipeline_crashes(c, in, model, 3);
    }
    for (t = 0; t < 3; t++)
        list_free(&model[t]);
    free(in);
}

static void test_dedup_model_harness(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
        run_config(&configs[i], 0);
}

static void test_dedup_model_pipeline(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
        run_config(&configs[i], 1);
    /* two crash runs per config, most of them restarting several times */
    assert_true(crash_restarts >=
                3 * (int)(sizeof(configs) / sizeof(configs[0])));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_model_harness),
        cmocka_unit_test(test_dedup_model_pipeline),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
