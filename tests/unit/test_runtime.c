/*
 * tests/unit/test_runtime.c - the runtime end to end: parallel keyed
 * pipelines, watermarks and timer order, side outputs, unions, sticky
 * builder errors, failures, checkpoints and recovery.
 *
 * Every pipeline here is deterministic in what it outputs (as a
 * multiset, and in order per key): tests compare against values computed
 * in the test, at parallelism 1, 2 and 4.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>

#define NKEYS 37

/* ------------------------------------------------------------------ *
 * Generator: record i has key "k<i % NKEYS>", ts = i, value = i.
 * ------------------------------------------------------------------ */

typedef struct gen {
    uint64_t n;
    char key[32];
    char val[32];
} gen_t;

static int gen_fn(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
                  weir_ts_t *ts)
{
    gen_t *g = opaque;

    if (i >= g->n)
        return 0;
    snprintf(g->key, sizeof(g->key), "k%llu", (unsigned long long)(i % NKEYS));
    snprintf(g->val, sizeof(g->val), "%llu", (unsigned long long)i);
    *key = WEIR_BUF_STR(g->key);
    *value = WEIR_BUF_STR(g->val);
    *ts = (weir_ts_t)i;
    return 1;
}

/* ------------------------------------------------------------------ *
 * A keyed operator: counts per key in keyed state; sets an event timer
 * at ts + 10 for each key's first record; on the timer emits
 * "key=count" to the main output; records with i % 10 == 0 also go to
 * the side output "tens". Checks that the value sequence per key is
 * increasing (order per key is kept).
 * ------------------------------------------------------------------ */

static int count_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    int64_t n = 0;
    int64_t last = -1;
    weir_buf_t v = weir_record_value(in);
    char buf[32];
    int64_t x;
    int rc;

    (void)st;
    memcpy(buf, v.data, v.len);
    buf[v.len] = '\0';
    x = atoll(buf);
    rc = weir_state_get_i64(ctx, "last", &last);
    if (rc == WEIR_OK && x <= last)
        return weir_ctx_error(ctx, WEIR_EINVAL, "order broken");
    weir_state_put_i64(ctx, "last", x);
    rc = weir_state_get_i64(ctx, "count", &n);
    if (rc == WEIR_ENOENT) {
        rc = weir_timer_set(ctx, WEIR_TIME_EVENT, weir_record_ts(in) + 10);
        if (rc != WEIR_OK)
            return rc;
    }
    rc = weir_state_put_i64(ctx, "count", n + 1);
    if (rc != WEIR_OK)
        return rc;
    if (x % 10 == 0)
        return weir_forward_to(ctx, "tens", in);
    return WEIR_OK;
}

static int count_on_timer(weir_ctx_t *ctx, void *st, weir_time_domain_t dom,
                          weir_ts_t when)
{
    int64_t n = 0;
    char buf[64];
    weir_buf_t key = weir_ctx_key(ctx);
    int rc;

    (void)st;
    (void)dom;
    /* The timer fires before the watermark that triggered it moves on. */
    if (weir_ctx_watermark(ctx) < when)
        return weir_ctx_error(ctx, WEIR_EINVAL, "timer early");
    rc = weir_state_get_i64(ctx, "count", &n);
    if (rc != WEIR_OK)
        return rc;
    snprintf(buf, sizeof(buf), "%.*s=%lld", (int)key.len,
             (const char *)key.data, (long long)n);
    weir_state_del(ctx, "count");
    return weir_emit_new(ctx, key, WEIR_BUF_STR(buf), when);
}

static const weir_operator_def_t count_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "count",
    .flags = WEIR_OP_F_KEYED,
    .process = count_process,
    .on_timer = count_on_timer,
};

/* Passes records and emits watermark ts after each (ascending). */
static int asc_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    int rc;

    (void)st;
    rc = weir_forward(ctx, in);
    if (rc != WEIR_OK)
        return rc;
    return weir_emit_watermark(ctx, weir_record_ts(in));
}

static const weir_operator_def_t asc_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "asc",
    .flags = WEIR_OP_F_HOLD_WATERMARK,
    .process = asc_process,
};

typedef struct sink {
    uint64_t n;
    uint64_t sum_counts;
    uint64_t tens;
    int seen_wm_after; /* not used by collect; kept for clarity */
} sink_t;

static int main_sink(const weir_record_t *rec, const char *tag, void *opaque)
{
    sink_t *s = opaque;
    weir_buf_t v = weir_record_value(rec);
    const char *eq = memchr(v.data, '=', v.len);
    char buf[32];
    size_t n;

    (void)tag;
    if (eq == NULL)
        return WEIR_EINVAL;
    n = v.len - (size_t)(eq + 1 - (const char *)v.data);
    memcpy(buf, eq + 1, n);
    buf[n] = '\0';
    s->n++;
    s->sum_counts += (uint64_t)atoll(buf);
    return WEIR_OK;
}

static int tens_sink(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    ((sink_t *)opaque)->tens++;
    return WEIR_OK;
}

static weir_pipeline_t *build(int parallelism, gen_t *g, sink_t *main_out,
                              sink_t *tens_out, weir_conf_t *conf)
{
    char err[256];
    char p[16];
    weir_pipeline_t *pl;
    weir_stream_t *s;
    weir_stream_t *counted;

    if (conf == NULL)
        conf = weir_conf_new();
    snprintf(p, sizeof(p), "%d", parallelism);
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "pipeline.parallelism", p,
                                            err, sizeof(err)));
    assert_int_equal(WEIR_OK,
                     weir_conf_set(conf, "batch.size", "7", err, sizeof(err)));
    pl = weir_pipeline_new("t", conf, err, sizeof(err));
    assert_non_null(pl);
    s = weir_source_generator(pl, "gen", gen_fn, g);
    s = weir_stream_apply(s, &asc_def, NULL);
    s = weir_stream_keyby(s, NULL, NULL);
    counted = weir_stream_apply(s, &count_def, NULL);
    assert_int_equal(WEIR_OK,
                     weir_stream_collect(counted, main_sink, main_out));
    assert_int_equal(
        WEIR_OK, weir_stream_collect(weir_stream_side_output(counted, "tens"),
                                     tens_sink, tens_out));
    assert_int_equal(WEIR_OK, weir_pipeline_error(pl));
    return pl;
}

static void keyed_pipeline_at(int parallelism)
{
    gen_t g = {.n = 5000};
    sink_t m = {0};
    sink_t t = {0};
    weir_pipeline_t *pl = build(parallelism, &g, &m, &t, NULL);
    int rc = weir_pipeline_run(pl);

    if (rc != WEIR_OK)
        print_error("%s\n", weir_pipeline_errstr(pl));
    assert_int_equal(WEIR_OK, rc);
    /* Each key's count is flushed whenever its timer fires; the sum of all
     * counts is every record. */
    assert_int_equal(5000, m.sum_counts);
    assert_int_equal(500, t.tens);
    assert_true(m.n >= NKEYS);
    weir_pipeline_destroy(pl);
}

static void runtime_keyed_p1(void **unused)
{
    (void)unused;
    keyed_pipeline_at(1);
}

static void runtime_keyed_p2(void **unused)
{
    (void)unused;
    keyed_pipeline_at(2);
}

static void runtime_keyed_p4(void **unused)
{
    (void)unused;
    keyed_pipeline_at(4);
}

/* Emitted counts per run must not depend on parallelism: collect the
 * exact multiset of main outputs at 1 and 4 and compare. */
typedef struct strs {
    char **v;
    size_t n;
} strs_t;

static int str_sink(const weir_record_t *rec, const char *tag, void *opaque)
{
    strs_t *s = opaque;
    weir_buf_t v = weir_record_value(rec);
    char *c = malloc(v.len + 1);

    (void)tag;
    memcpy(c, v.data, v.len);
    c[v.len] = '\0';
    s->v = realloc(s->v, (s->n + 1) * sizeof(char *));
    s->v[s->n++] = c;
    return WEIR_OK;
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void collect_outputs(int parallelism, strs_t *out)
{
    gen_t g = {.n = 3000};
    sink_t t = {0};
    char err[256];
    char p[16];
    weir_conf_t *conf = weir_conf_new();
    weir_pipeline_t *pl;
    weir_stream_t *s;

    snprintf(p, sizeof(p), "%d", parallelism);
    weir_conf_set(conf, "pipeline.parallelism", p, err, sizeof(err));
    pl = weir_pipeline_new("t", conf, err, sizeof(err));
    s = weir_source_generator(pl, "gen", gen_fn, &g);
    s = weir_stream_apply(s, &asc_def, NULL);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), &count_def, NULL);
    weir_stream_collect(s, str_sink, out);
    weir_stream_collect(weir_stream_side_output(s, "tens"), tens_sink, &t);
    assert_int_equal(WEIR_OK, weir_pipeline_run(pl));
    weir_pipeline_destroy(pl);
    qsort(out->v, out->n, sizeof(char *), cmpstr);
}

static void free_strs(strs_t *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static void runtime_output_independent_of_parallelism(void **unused)
{
    strs_t a = {0};
    strs_t b = {0};
    size_t i;

    (void)unused;
    collect_outputs(1, &a);
    collect_outputs(4, &b);
    assert_int_equal(a.n, b.n);
    for (i = 0; i < a.n; i++)
        assert_string_equal(a.v[i], b.v[i]);
    free_strs(&a);
    free_strs(&b);
}

/* ------------------------------------------------------------------ *
 * Sticky builder errors and failures.
 * ------------------------------------------------------------------ */

static void runtime_sticky_errors(void **unused)
{
    char err[256];
    gen_t g = {.n = 10};
    weir_pipeline_t *pl = weir_pipeline_new("t", NULL, err, sizeof(err));
    weir_stream_t *s = weir_source_generator(pl, "gen", gen_fn, &g);
    weir_stream_t *bad;
    weir_stream_t *later;

    (void)unused;
    bad = weir_stream_apply(s, &count_def, NULL); /* not keyed */
    assert_false(weir_stream_ok(bad));
    assert_int_equal(WEIR_ETOPOLOGY, weir_pipeline_error(pl));
    later = weir_stream_keyby(bad, NULL, NULL);
    assert_non_null(later);
    assert_false(weir_stream_ok(later));
    assert_non_null(strstr(weir_pipeline_errstr(pl), "keyed"));
    assert_int_equal(WEIR_ETOPOLOGY, weir_pipeline_run(pl));
    weir_pipeline_destroy(pl);
}

static int failing_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    (void)st;
    if (weir_record_ts(in) == 1234)
        return weir_ctx_error(ctx, WEIR_EIO, "record %d is bad", 1234);
    return weir_forward(ctx, in);
}

static int closes;

static void failing_close(weir_ctx_t *ctx, void *st)
{
    (void)ctx;
    (void)st;
    __atomic_add_fetch(&closes, 1, __ATOMIC_SEQ_CST);
}

static const weir_operator_def_t failing_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "failing",
    .process = failing_process,
    .close = failing_close,
};

static int count_sink(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    (*(uint64_t *)opaque)++;
    return WEIR_OK;
}

static void runtime_failure_stops_and_closes(void **unused)
{
    char err[256];
    gen_t g = {.n = 100000};
    uint64_t n = 0;
    weir_conf_t *conf = weir_conf_new();
    weir_pipeline_t *pl;
    weir_stream_t *s;

    (void)unused;
    closes = 0;
    weir_conf_set(conf, "pipeline.parallelism", "3", err, sizeof(err));
    pl = weir_pipeline_new("t", conf, err, sizeof(err));
    s = weir_source_generator(pl, "gen", gen_fn, &g);
    s = weir_stream_keyby(s, NULL, NULL);
    s = weir_stream_apply(s, &failing_def, NULL);
    weir_stream_collect(s, count_sink, &n);
    assert_int_equal(WEIR_EIO, weir_pipeline_run(pl));
    assert_non_null(strstr(weir_pipeline_errstr(pl), "record 1234 is bad"));
    assert_int_equal(3, closes);
    weir_pipeline_destroy(pl);
}

/* ------------------------------------------------------------------ *
 * Prefetch hints: ahead of processing, in processing order, with the key
 * processing sees; never for a version 1 table.
 * ------------------------------------------------------------------ */

#define PF_Q 64

struct pf {
    const weir_record_t *q[PF_Q]; /* prefetched, not yet processed */
    char key[PF_Q][32];
    size_t klen[PF_Q];
    unsigned head;
    unsigned tail;
};

struct pf_totals {
    uint64_t prefetched;
    uint64_t hinted; /* processed records that were prefetched first */
    uint64_t bad;    /* out of order, or another key */
};

static void pf_prefetch(void *st, const weir_record_t *in, weir_buf_t key)
{
    struct pf *p = st;
    unsigned k = p->head++ % PF_Q;

    p->q[k] = in;
    p->klen[k] = key.len < 32 ? key.len : 32;
    memcpy(p->key[k], key.data, p->klen[k]);
}

static int pf_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct pf *p = st;
    struct pf_totals *t = (struct pf_totals *)weir_ctx_opaque(ctx);
    weir_buf_t key = weir_ctx_key(ctx);
    unsigned k = p->tail % PF_Q;

    if (p->head != p->tail) {
        if (p->q[k] != in || p->klen[k] != key.len ||
            memcmp(p->key[k], key.data, key.len) != 0)
            __atomic_add_fetch(&t->bad, 1, __ATOMIC_SEQ_CST);
        else
            __atomic_add_fetch(&t->hinted, 1, __ATOMIC_SEQ_CST);
        p->tail++;
    }
    return weir_forward(ctx, in);
}

static void pf_close(weir_ctx_t *ctx, void *st)
{
    struct pf *p = st;
    struct pf_totals *t = (struct pf_totals *)weir_ctx_opaque(ctx);

    __atomic_add_fetch(&t->prefetched, p->head, __ATOMIC_SEQ_CST);
    if (p->head != p->tail)
        __atomic_add_fetch(&t->bad, 1, __ATOMIC_SEQ_CST);
}

static const weir_operator_def_t pf_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "pf",
    .flags = WEIR_OP_F_KEYED,
    .state_size = sizeof(struct pf),
    .process = pf_process,
    .close = pf_close,
    .prefetch = pf_prefetch,
};

static void never_prefetch(void *st, const weir_record_t *in, weir_buf_t key)
{
    (void)st;
    (void)in;
    (void)key;
    fail_msg("prefetch called on a version 1 table");
}

static const weir_operator_def_t pf_v1_def = {
    .version = 1,
    .name = "pf-v1",
    .flags = WEIR_OP_F_KEYED,
    .state_size = sizeof(struct pf),
    .process = pf_process,
    .close = pf_close,
    .prefetch = never_prefetch, /* not part of a version 1 table */
};

static uint64_t run_pf(const weir_operator_def_t *def, struct pf_totals *t)
{
    char err[256];
    gen_t g = {.n = 20000};
    uint64_t n = 0;
    weir_conf_t *conf = weir_conf_new();
    weir_pipeline_t *pl;
    weir_stream_t *s;

    weir_conf_set(conf, "pipeline.parallelism", "2", err, sizeof(err));
    pl = weir_pipeline_new("t", conf, err, sizeof(err));
    s = weir_source_generator(pl, "gen", gen_fn, &g);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), def, t);
    weir_stream_collect(s, count_sink, &n);
    assert_int_equal(WEIR_OK, weir_pipeline_run(pl));
    weir_pipeline_destroy(pl);
    return n;
}

static void runtime_prefetch_hint(void **unused)
{
    struct pf_totals t = {0};
    weir_operator_def_t v3 = pf_def;
    char err[256];
    weir_pipeline_t *pl;
    weir_stream_t *s;
    gen_t g = {.n = 1};

    (void)unused;
    assert_int_equal(run_pf(&pf_def, &t), 20000);
    assert_int_equal(t.bad, 0);
    assert_int_equal(t.prefetched, 20000); /* all came in batches */
    assert_int_equal(t.hinted, 20000);

    memset(&t, 0, sizeof(t));
    assert_int_equal(run_pf(&pf_v1_def, &t), 20000);
    assert_int_equal(t.prefetched, 0);
    assert_int_equal(t.bad, 0);

    /* a version this runtime does not know is refused */
    v3.version = WEIR_OPERATOR_VERSION + 1;
    pl = weir_pipeline_new("t", NULL, err, sizeof(err));
    s = weir_source_generator(pl, "gen", gen_fn, &g);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), &v3, &t);
    assert_false(weir_stream_ok(s));
    assert_int_equal(WEIR_EINVAL, weir_pipeline_error(pl));
    weir_pipeline_destroy(pl);
}

/* ------------------------------------------------------------------ *
 * Union: watermark is the minimum of both inputs.
 * ------------------------------------------------------------------ */

static void runtime_union(void **unused)
{
    char err[256];
    gen_t g1 = {.n = 1000};
    gen_t g2 = {.n = 700};
    uint64_t n = 0;
    weir_pipeline_t *pl = weir_pipeline_new("t", NULL, err, sizeof(err));
    weir_stream_t *a;
    weir_stream_t *b;

    (void)unused;
    a = weir_stream_apply(weir_source_generator(pl, "a", gen_fn, &g1), &asc_def,
                          NULL);
    b = weir_stream_apply(weir_source_generator(pl, "b", gen_fn, &g2), &asc_def,
                          NULL);
    weir_stream_collect(weir_stream_union(a, b), count_sink, &n);
    assert_int_equal(WEIR_OK, weir_pipeline_run(pl));
    assert_int_equal(1700, n);
    weir_pipeline_destroy(pl);
}

/* ------------------------------------------------------------------ *
 * Checkpoints: a run stopped after a checkpoint and restarted from it
 * produces, together with the first run's output up to the checkpoint,
 * exactly the uninterrupted output. The collect sink is not
 * transactional, so this test counts what the restored run produces.
 * ------------------------------------------------------------------ */

static char *tmpdir(void)
{
    const char *base = getenv("WEIR_TEST_TMP");
    char *path = malloc(4096);

    snprintf(path, 4096, "%s/rt-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(path));
    return path;
}

static void rm_rf(const char *path)
{
    char cmd[4200];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(0, system(cmd));
}

static weir_conf_t *ckpt_conf(const char *dir, const char *parallelism)
{
    char err[256];
    weir_conf_t *conf = weir_conf_new();

    assert_int_equal(
        WEIR_OK, weir_conf_set(conf, "checkpoint.dir", dir, err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.every.records",
                                            "700", err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.fsync", "false",
                                            err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "pipeline.parallelism",
                                            parallelism, err, sizeof(err)));
    assert_int_equal(WEIR_OK,
                     weir_conf_set(conf, "batch.size", "13", err, sizeof(err)));
    return conf;
}

typedef struct stopping_sink {
    weir_pipeline_t *pl;
    strs_t out;
    size_t stop_after;
} stopping_sink_t;

static int stopping_sink_fn(const weir_record_t *rec, const char *tag,
                            void *opaque)
{
    stopping_sink_t *s = opaque;
    int rc = str_sink(rec, tag, &s->out);

    if (s->out.n == s->stop_after)
        weir_pipeline_stop(s->pl);
    return rc;
}

/* One run of generator -> ascending watermarks -> keyby -> count (keyed
 * state + event timers), stopped after `stop_after` outputs (0: never). */
static int run_counting(const char *dir, const char *par, gen_t *g,
                        stopping_sink_t *sink, uint64_t *last_ckpt)
{
    char err[256];
    weir_pipeline_t *pl;
    weir_stream_t *s;
    sink_t tens = {0};
    int rc;

    pl = weir_pipeline_new("t", ckpt_conf(dir, par), err, sizeof(err));
    sink->pl = pl;
    s = weir_source_generator(pl, "gen", gen_fn, g);
    s = weir_stream_apply(s, &asc_def, NULL);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), &count_def, NULL);
    weir_stream_collect(s, stopping_sink_fn, sink);
    weir_stream_collect(weir_stream_side_output(s, "tens"), tens_sink, &tens);
    rc = weir_pipeline_run(pl);
    *last_ckpt = weir_pipeline_last_checkpoint(pl);
    weir_pipeline_destroy(pl);
    return rc;
}

/* Stop a run (a final checkpoint is taken at the stop point), restart it
 * from that checkpoint: the two runs together emit exactly what one
 * uninterrupted run emits. Keyed state, timers and watermarks all have
 * to survive for that. */
static void restore_equivalence_at(const char *par)
{
    char *dir1 = tmpdir();
    char *dir2 = tmpdir();
    gen_t g = {.n = 20000};
    stopping_sink_t whole = {0};
    stopping_sink_t first = {0};
    stopping_sink_t second = {0};
    uint64_t ck1;
    uint64_t ck2;
    size_t i;

    assert_int_equal(WEIR_OK, run_counting(dir1, par, &g, &whole, &ck1));
    first.stop_after = whole.out.n / 3;
    assert_int_equal(WEIR_OK, run_counting(dir2, par, &g, &first, &ck1));
    assert_true(ck1 >= 1);
    assert_true(first.out.n < whole.out.n);
    assert_int_equal(WEIR_OK, run_counting(dir2, par, &g, &second, &ck2));
    assert_true(ck2 > ck1);
    for (i = 0; i < second.out.n; i++) {
        first.out.v = realloc(first.out.v, (first.out.n + 1) * sizeof(char *));
        first.out.v[first.out.n++] = second.out.v[i];
    }
    free(second.out.v);
    qsort(first.out.v, first.out.n, sizeof(char *), cmpstr);
    qsort(whole.out.v, whole.out.n, sizeof(char *), cmpstr);
    assert_int_equal(whole.out.n, first.out.n);
    for (i = 0; i < whole.out.n; i++)
        assert_string_equal(whole.out.v[i], first.out.v[i]);
    free_strs(&whole.out);
    free_strs(&first.out);
    rm_rf(dir1);
    rm_rf(dir2);
    free(dir1);
    free(dir2);
}

static void runtime_restore_equivalence_p1(void **unused)
{
    (void)unused;
    restore_equivalence_at("1");
}

static void runtime_restore_equivalence_p3(void **unused)
{
    (void)unused;
    restore_equivalence_at("3");
}

/* A changed parallelism cannot restore operator-local snapshots: a clear
 * error, not a crash. */
static void runtime_restore_rejects_other_parallelism(void **unused)
{
    char *dir = tmpdir();
    gen_t g = {.n = 3000};
    stopping_sink_t a = {0};
    stopping_sink_t b = {0};
    uint64_t ck;
    char err[256];
    weir_pipeline_t *pl;
    weir_stream_t *s;

    (void)unused;
    a.stop_after = 100;
    assert_int_equal(WEIR_OK, run_counting(dir, "2", &g, &a, &ck));
    pl = weir_pipeline_new("t", ckpt_conf(dir, "3"), err, sizeof(err));
    b.pl = pl;
    s = weir_source_generator(pl, "gen", gen_fn, &g);
    s = weir_stream_apply(s, &asc_def, NULL);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), &count_def, NULL);
    weir_stream_collect(s, stopping_sink_fn, &b);
    assert_int_equal(WEIR_ETOPOLOGY, weir_pipeline_run(pl));
    assert_non_null(strstr(weir_pipeline_errstr(pl), "parallelism"));
    weir_pipeline_destroy(pl);
    free_strs(&a.out);
    free_strs(&b.out);
    rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------------------------ *
 * A run holds its checkpoint directory: a second run on it is refused
 * (WEIR_EBUSY) and leaves it untouched; the hold ends with the run.
 * ------------------------------------------------------------------ */

/* flock(LOCK_EX | LOCK_NB) on dir/LOCK through a new open file: the fd
 * when taken, -1 when someone else holds it (fails the test otherwise). */
static int try_lock(const char *dir)
{
    char path[4200];
    int fd;

    snprintf(path, sizeof(path), "%s/LOCK", dir);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return fd;
    assert_int_equal(errno, EWOULDBLOCK);
    close(fd);
    return -1;
}

typedef struct lock_probe {
    stopping_sink_t s;
    const char *dir;
    int probed;
    int held_by_run; /* the lock was busy while the run went on */
} lock_probe_t;

static int lock_probe_fn(const weir_record_t *rec, const char *tag,
                         void *opaque)
{
    lock_probe_t *lp = opaque;
    int fd;

    if (!lp->probed) {
        lp->probed = 1;
        fd = try_lock(lp->dir);
        lp->held_by_run = fd < 0;
        if (fd >= 0)
            close(fd);
    }
    return stopping_sink_fn(rec, tag, &lp->s);
}

static int run_probing(const char *dir, gen_t *g, lock_probe_t *lp,
                       char *errbuf, size_t errsize)
{
    char err[256];
    weir_pipeline_t *pl;
    weir_stream_t *s;
    int rc;

    pl = weir_pipeline_new("t", ckpt_conf(dir, "2"), err, sizeof(err));
    lp->s.pl = pl;
    lp->dir = dir;
    s = weir_source_generator(pl, "gen", gen_fn, g);
    s = weir_stream_apply(s, &asc_def, NULL);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), &count_def, NULL);
    weir_stream_collect(s, lock_probe_fn, lp);
    rc = weir_pipeline_run(pl);
    snprintf(errbuf, errsize, "%s", weir_pipeline_errstr(pl));
    weir_pipeline_destroy(pl);
    return rc;
}

static int count_complete(const char *dir)
{
    char path[4300];
    DIR *d = opendir(dir);
    struct dirent *de;
    struct stat sb;
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "chk-", 4) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s/_COMPLETE", dir, de->d_name);
        n += stat(path, &sb) == 0;
    }
    closedir(d);
    return n;
}

static void runtime_checkpoint_dir_is_locked(void **unused)
{
    char *dir = tmpdir();
    gen_t g = {.n = 3000};
    lock_probe_t a = {.s.stop_after = 100};
    lock_probe_t b = {0};
    lock_probe_t c = {0};
    char msg[512];
    int held;
    int before;

    (void)unused;
    assert_int_equal(WEIR_OK, run_probing(dir, &g, &a, msg, sizeof(msg)));
    assert_true(a.probed);
    assert_true(a.held_by_run);
    before = count_complete(dir);
    assert_true(before >= 1);

    /* Released when the run returned; now someone else holds it. */
    held = try_lock(dir);
    assert_true(held >= 0);
    assert_int_equal(WEIR_EBUSY, run_probing(dir, &g, &b, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "in use"));
    assert_false(b.probed); /* nothing ran */
    assert_int_equal(before, count_complete(dir));
    close(held);

    /* Free again: the next run restores and finishes. */
    assert_int_equal(WEIR_OK, run_probing(dir, &g, &c, msg, sizeof(msg)));
    assert_true(c.held_by_run);
    assert_true(c.s.out.n > 0);
    free_strs(&a.s.out);
    free_strs(&c.s.out);
    rm_rf(dir);
    free(dir);
}

/* ------------------------------------------------------------------ *
 * Harness: keyed state, namespaces, timers in order, restore.
 * ------------------------------------------------------------------ */

static void harness_timer_order_and_restore(void **unused)
{
    weir_harness_t *h = weir_harness_new(&count_def, NULL);
    weir_harness_t *h2;
    weir_snapshot_t *snap;

    (void)unused;
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_push(h, "a", "1", 100));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "b", "2", 50));
    assert_int_equal(WEIR_OK, weir_harness_push(h, "a", "3", 101));
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &snap));
    assert_int_equal(WEIR_OK, weir_harness_watermark(h, 60)); /* b fires */
    assert_int_equal(1, weir_harness_count(h, NULL));
    assert_memory_equal(
        "b=1", weir_record_value(weir_harness_record(h, NULL, 0)).data, 3);
    assert_int_equal(1, weir_harness_watermark_count(h));
    assert_int_equal(60, weir_harness_watermark_at(h, 0));
    weir_harness_destroy(h);

    h2 = weir_harness_new(&count_def, NULL);
    assert_int_equal(WEIR_OK, weir_harness_restore(h2, snap));
    assert_int_equal(WEIR_OK, weir_harness_push(h2, "a", "4", 102));
    assert_int_equal(WEIR_OK, weir_harness_end(h2));
    assert_int_equal(2, weir_harness_count(h2, NULL));
    /* Timers fire in order of `when`: b (60) then a (110). */
    assert_memory_equal(
        "b=1", weir_record_value(weir_harness_record(h2, NULL, 0)).data, 3);
    assert_memory_equal(
        "a=3", weir_record_value(weir_harness_record(h2, NULL, 1)).data, 3);
    weir_snapshot_destroy(snap);
    weir_harness_destroy(h2);
}

/* ------------------------------------------------------------------ *
 * Map state against a reference model: random puts/gets/dels over a few
 * keys, namespaces and map keys, with a snapshot/restore in the middle.
 * ------------------------------------------------------------------ */

#define MODEL_N 6

typedef struct map_model {
    int present[MODEL_N][MODEL_N][MODEL_N]; /* key, ns, map key */
    int value[MODEL_N][MODEL_N][MODEL_N];
} map_model_t;

typedef struct map_cmd {
    int op; /* 0 put, 1 del, 2 check */
    int key;
    int ns;
    int mk;
    int value;
} map_cmd_t;

static map_model_t model;
static map_cmd_t cmd;

static int iter_count(weir_buf_t mk, weir_buf_t v, void *opaque)
{
    (void)mk;
    (void)v;
    (*(int *)opaque)++;
    return 0;
}

static int map_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    char ns[8];
    char mk[8];
    char val[16];
    weir_buf_t got;
    int i;
    int n = 0;
    int want = 0;
    int rc;

    (void)st;
    (void)in;
    snprintf(ns, sizeof(ns), "n%d", cmd.ns);
    snprintf(mk, sizeof(mk), "m%d", cmd.mk);
    weir_ctx_set_namespace(ctx, WEIR_BUF_STR(ns));
    if (cmd.op == 0) {
        snprintf(val, sizeof(val), "v%d", cmd.value);
        return weir_map_put(ctx, "m", WEIR_BUF_STR(mk), WEIR_BUF_STR(val));
    }
    if (cmd.op == 1) {
        rc = weir_map_del(ctx, "m", WEIR_BUF_STR(mk));
        return rc == WEIR_ENOENT ? WEIR_OK : rc;
    }
    rc = weir_map_get(ctx, "m", WEIR_BUF_STR(mk), &got);
    if (model.present[cmd.key][cmd.ns][cmd.mk]) {
        snprintf(val, sizeof(val), "v%d", model.value[cmd.key][cmd.ns][cmd.mk]);
        if (rc != WEIR_OK || got.len != strlen(val) ||
            memcmp(got.data, val, got.len) != 0)
            return weir_ctx_error(ctx, WEIR_EINVAL, "map get differs");
    } else if (rc != WEIR_ENOENT) {
        return weir_ctx_error(ctx, WEIR_EINVAL, "map get found a ghost");
    }
    rc = weir_map_iter(ctx, "m", iter_count, &n);
    for (i = 0; i < MODEL_N; i++)
        want += model.present[cmd.key][cmd.ns][i];
    if (rc != WEIR_OK || n != want)
        return weir_ctx_error(ctx, WEIR_EINVAL, "map iter count differs");
    return WEIR_OK;
}

static const weir_operator_def_t map_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "map",
    .flags = WEIR_OP_F_KEYED,
    .process = map_process,
};

static void harness_map_state_model(void **unused)
{
    weir_harness_t *h = weir_harness_new(&map_def, NULL);
    weir_snapshot_t *snap;
    char key[8];
    unsigned seed = 12345;
    int step;

    (void)unused;
    memset(&model, 0, sizeof(model));
    for (step = 0; step < 20000; step++) {
        seed = seed * 1103515245u + 12345u;
        cmd.op = (int)((seed >> 16) % 3);
        cmd.key = (int)((seed >> 8) % MODEL_N);
        cmd.ns = (int)((seed >> 4) % MODEL_N);
        cmd.mk = (int)((seed >> 20) % MODEL_N);
        cmd.value = step;
        snprintf(key, sizeof(key), "k%d", cmd.key);
        assert_int_equal(WEIR_OK, weir_harness_push(h, key, "", step));
        if (cmd.op == 0) {
            model.present[cmd.key][cmd.ns][cmd.mk] = 1;
            model.value[cmd.key][cmd.ns][cmd.mk] = step;
        } else if (cmd.op == 1) {
            model.present[cmd.key][cmd.ns][cmd.mk] = 0;
        }
        if (step == 10000) {
            assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &snap));
            weir_harness_destroy(h);
            h = weir_harness_new(&map_def, NULL);
            assert_int_equal(WEIR_OK, weir_harness_restore(h, snap));
            weir_snapshot_destroy(snap);
        }
    }
    weir_harness_destroy(h);
}

static void conf_rejects_bad_values(void **unused)
{
    char err[256];
    weir_conf_t *c = weir_conf_new();
    weir_conf_t *d;

    (void)unused;
    assert_int_equal(WEIR_ENOENT,
                     weir_conf_set(c, "no.such", "1", err, sizeof(err)));
    assert_non_null(strstr(err, "no.such"));
    assert_int_equal(WEIR_EINVAL, weir_conf_set(c, "pipeline.parallelism", "0",
                                                err, sizeof(err)));
    assert_int_equal(WEIR_EINVAL,
                     weir_conf_set(c, "batch.size", "x", err, sizeof(err)));
    assert_int_equal(WEIR_OK,
                     weir_conf_set(c, "kafka.acks", "all", err, sizeof(err)));
    assert_string_equal("1", weir_conf_get(c, "pipeline.parallelism"));
    d = weir_conf_dup(c);
    assert_string_equal("all", weir_conf_get(d, "kafka.acks"));
    weir_conf_destroy(c);
    weir_conf_destroy(d);
    assert_string_equal("WEIR_EINVAL", weir_err_name(WEIR_EINVAL));
    assert_string_equal("invalid argument", weir_strerror(WEIR_EINVAL));
}

/* ------------------------------------------------------------------ *
 * Waker: a source fed by another thread, with an idle wait of an hour.
 * Every item is handed over only after the previous one came out, so the
 * source goes idle before each; a lost wake would make the run hang
 * (the test's timeout), a working one finishes at once.
 * ------------------------------------------------------------------ */

typedef struct feed {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    weir_waker_t *waker; /* set by open                  */
    uint64_t offered;    /* items handed to the source   */
    uint64_t taken;      /* items the source emitted     */
    uint64_t seen;       /* items the sink received      */
    uint64_t total;
    uint64_t idle_polls; /* polls that found nothing     */
} feed_t;

static int feed_open(weir_ctx_t *ctx, void *st)
{
    feed_t *f = (feed_t *)weir_ctx_opaque(ctx);

    (void)st;
    pthread_mutex_lock(&f->mu);
    f->waker = weir_ctx_waker(ctx);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return f->waker != NULL ? WEIR_OK : WEIR_EINVAL;
}

static int feed_poll(weir_ctx_t *ctx, void *st)
{
    feed_t *f = (feed_t *)weir_ctx_opaque(ctx);
    uint64_t next;
    char v[24];

    (void)st;
    pthread_mutex_lock(&f->mu);
    if (f->taken == f->total) {
        pthread_mutex_unlock(&f->mu);
        return WEIR_DONE;
    }
    if (f->taken == f->offered) {
        f->idle_polls++;
        pthread_mutex_unlock(&f->mu);
        return WEIR_IDLE;
    }
    next = f->taken++;
    pthread_mutex_unlock(&f->mu);
    snprintf(v, sizeof(v), "%llu", (unsigned long long)next);
    return weir_emit_new(ctx, WEIR_BUF_STR(v), WEIR_BUF_STR(v),
                         (weir_ts_t)next);
}

static const weir_operator_def_t feed_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "feed",
    .open = feed_open,
    .poll = feed_poll,
};

static int feed_sink(const weir_record_t *rec, const char *tag, void *opaque)
{
    feed_t *f = opaque;

    (void)rec;
    (void)tag;
    pthread_mutex_lock(&f->mu);
    f->seen++;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->mu);
    return WEIR_OK;
}

/* Offers one item at a time, each after the previous one came out. */
static void *feeder(void *arg)
{
    feed_t *f = arg;
    weir_waker_t *w;

    pthread_mutex_lock(&f->mu);
    while (f->waker == NULL)
        pthread_cond_wait(&f->cond, &f->mu);
    w = f->waker;
    while (f->offered < f->total) {
        while (f->seen < f->offered)
            pthread_cond_wait(&f->cond, &f->mu);
        f->offered++;
        pthread_mutex_unlock(&f->mu);
        weir_waker_wake(w);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void runtime_waker_ends_idle_wait(void **unused)
{
    char err[256];
    feed_t f = {.total = 300};
    weir_conf_t *conf = weir_conf_new();
    weir_pipeline_t *pl;
    pthread_t th;

    (void)unused;
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cond, NULL);
    assert_int_equal(WEIR_OK, weir_conf_set(conf, "source.idle.wait.ms",
                                            "3600000", err, sizeof(err)));
    pl = weir_pipeline_new("t", conf, err, sizeof(err));
    assert_non_null(pl);
    weir_stream_collect(weir_stream_source(pl, "feed", &feed_def, &f),
                        feed_sink, &f);
    assert_int_equal(0, pthread_create(&th, NULL, feeder, &f));
    assert_int_equal(WEIR_OK, weir_pipeline_run(pl));
    pthread_join(th, NULL);
    assert_int_equal(300, f.seen);
    assert_true(f.idle_polls > 0); /* the source did go idle */
    weir_waker_wake(NULL);         /* harmless */
    assert_null(weir_ctx_waker(NULL));
    weir_pipeline_destroy(pl);
    pthread_cond_destroy(&f.cond);
    pthread_mutex_destroy(&f.mu);
}

/* ------------------------------------------------------------------ *
 * weir_forward_as: key and time replaced, the rest passed on as is.
 * ------------------------------------------------------------------ */

static int rekey_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    weir_buf_t v = weir_record_value(in);

    (void)st;
    /* long values go to side output "long" (the harness collects it) */
    return weir_forward_as(ctx, v.len > 3 ? "long" : NULL, in,
                           WEIR_BUF_STR("new-key"), weir_record_ts(in) + 1000);
}

static const weir_operator_def_t rekey_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "rekey",
    .process = rekey_process,
};

static void runtime_forward_as(void **unused)
{
    weir_harness_t *h = weir_harness_new(&rekey_def, NULL);
    weir_record_t *in;
    const weir_record_t *out;
    weir_buf_t hv;

    (void)unused;
    assert_non_null(h);
    in = weir_record_new(NULL, WEIR_BUF_STR("old"), WEIR_BUF_STR("abc"), 5,
                         WEIR_COPY);
    assert_non_null(in);
    assert_int_equal(WEIR_OK,
                     weir_record_add_header(in, "h1", WEIR_BUF_STR("x")));
    assert_int_equal(WEIR_OK, weir_record_set_position(in, 3, 77));
    assert_int_equal(WEIR_OK, weir_harness_push_record(h, in));
    weir_record_destroy(in);
    assert_int_equal(WEIR_OK, weir_harness_push(h, "k", "abcdef", 9));
    out = weir_harness_record(h, WEIR_TAG_MAIN, 0);
    assert_non_null(out);
    assert_int_equal(7, weir_record_key(out).len);
    assert_memory_equal("new-key", weir_record_key(out).data, 7);
    assert_int_equal(3, weir_record_value(out).len);
    assert_memory_equal("abc", weir_record_value(out).data, 3);
    assert_int_equal(1005, weir_record_ts(out));
    assert_int_equal(3, weir_record_partition(out));
    assert_int_equal(77, weir_record_offset(out));
    assert_int_equal(WEIR_OK, weir_record_header(out, "h1", &hv));
    assert_int_equal(1, hv.len);
    out = weir_harness_record(h, "long", 0);
    assert_non_null(out);
    assert_int_equal(1009, weir_record_ts(out));
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(WEIR_EINVAL,
                     weir_forward_as(NULL, NULL, out, WEIR_BUF_NULL, 0));
    weir_harness_destroy(h);
}

/* Standalone records: copied key and value share the struct's block,
 * headers share one block each; every accessor sees the bytes given,
 * and replacing, growing and copying keep them (ASan checks the frees). */
static void record_ownership(void **state)
{
    static const char *const names[] = {"a", "bb", "ccc", "d", "e",
                                        "f", "g",  "h",   "i"};
    weir_record_t *r;
    weir_record_t *c;
    weir_buf_t v;
    const char *name;
    size_t i;

    (void)state;
    r = weir_record_new(NULL, WEIR_BUF_STR("key-1"), WEIR_BUF_STR("value"), 7,
                        WEIR_COPY);
    assert_non_null(r);
    assert_int_equal(weir_record_key(r).len, 5);
    assert_memory_equal(weir_record_key(r).data, "key-1", 5);
    assert_memory_equal(weir_record_value(r).data, "value", 5);
    assert_int_equal(weir_record_ts(r), 7);
    assert_int_equal(weir_record_set_key(r, WEIR_BUF_STR("longer-key-2")),
                     WEIR_OK);
    assert_int_equal(weir_record_set_key(r, WEIR_BUF_STR("k3")), WEIR_OK);
    assert_memory_equal(weir_record_key(r).data, "k3", 2);
    for (i = 0; i < 9; i++)
        assert_int_equal(
            weir_record_add_header(
                r, names[i], i == 4 ? WEIR_BUF_NULL : WEIR_BUF_STR(names[i])),
            WEIR_OK);
    assert_int_equal(weir_record_header_count(r), 9);
    for (i = 0; i < 9; i++) {
        assert_int_equal(weir_record_header_at(r, i, &name, &v), WEIR_OK);
        assert_string_equal(name, names[i]);
        assert_int_equal(v.len, i == 4 ? 0 : strlen(names[i]));
        assert_non_null(v.data);
        assert_memory_equal(v.data, names[i], v.len);
    }
    c = weir_record_copy(r);
    assert_non_null(c);
    weir_record_destroy(r);
    assert_memory_equal(weir_record_key(c).data, "k3", 2);
    assert_memory_equal(weir_record_value(c).data, "value", 5);
    assert_int_equal(weir_record_header(c, "ccc", &v), WEIR_OK);
    assert_memory_equal(v.data, "ccc", 3);
    weir_record_destroy(c);

    /* null and empty views stay what they were */
    r = weir_record_new(NULL, WEIR_BUF_NULL, WEIR_BUF("", 0), 0, WEIR_COPY);
    assert_non_null(r);
    assert_null(weir_record_key(r).data);
    assert_non_null(weir_record_value(r).data);
    assert_int_equal(weir_record_value(r).len, 0);
    weir_record_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(record_ownership),
        cmocka_unit_test(runtime_keyed_p1),
        cmocka_unit_test(runtime_keyed_p2),
        cmocka_unit_test(runtime_keyed_p4),
        cmocka_unit_test(runtime_output_independent_of_parallelism),
        cmocka_unit_test(runtime_sticky_errors),
        cmocka_unit_test(runtime_prefetch_hint),
        cmocka_unit_test(runtime_failure_stops_and_closes),
        cmocka_unit_test(runtime_union),
        cmocka_unit_test(runtime_restore_equivalence_p1),
        cmocka_unit_test(runtime_restore_equivalence_p3),
        cmocka_unit_test(runtime_restore_rejects_other_parallelism),
        cmocka_unit_test(runtime_checkpoint_dir_is_locked),
        cmocka_unit_test(harness_timer_order_and_restore),
        cmocka_unit_test(harness_map_state_model),
        cmocka_unit_test(conf_rejects_bad_values),
        cmocka_unit_test(runtime_waker_ends_idle_wait),
        cmocka_unit_test(runtime_forward_as),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
