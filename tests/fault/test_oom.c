/*
 * tests/fault/test_oom.c - allocation failure sweeps.
 *
 * A replaceable allocator fails the Nth allocation; for N = 1, 2, ...
 * the test builds and runs a small keyed pipeline with checkpoints (and,
 * separately, drives the harness through a checkpoint/restore cycle).
 * Every run must end in WEIR_OK or a clean error (never a crash), and
 * ASan's leak checker verifies that every error path frees what it
 * allocated. The sweep stops once a run needs no failed allocation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>

static atomic_long countdown; /* fail when it reaches 0; < 0: never */
static atomic_long failures;

static int should_fail(void)
{
    long v = atomic_fetch_sub(&countdown, 1);

    if (v == 1) {
        atomic_fetch_add(&failures, 1);
        return 1;
    }
    return 0;
}

static void *t_malloc(size_t n)
{
    return should_fail() ? NULL : malloc(n);
}

static void *t_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n);
}

static void *t_calloc(size_t n, size_t m)
{
    return should_fail() ? NULL : calloc(n, m);
}

static int gen_fn(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
                  weir_ts_t *ts)
{
    static char k[16];

    (void)opaque;
    if (i >= 300)
        return 0;
    snprintf(k, sizeof(k), "k%d", (int)(i % 7));
    *key = WEIR_BUF_STR(k);
    *value = WEIR_BUF_STR("v");
    *ts = (weir_ts_t)i;
    return 1;
}

static int keyed_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    int64_t n = 0;
    int rc;

    (void)st;
    rc = weir_state_get_i64(ctx, "n", &n);
    if (rc != WEIR_OK && rc != WEIR_ENOENT)
        return rc;
    rc = weir_state_put_i64(ctx, "n", n + 1);
    if (rc != WEIR_OK)
        return rc;
    rc = weir_timer_set(ctx, WEIR_TIME_EVENT, weir_record_ts(in) + 5);
    if (rc != WEIR_OK)
        return rc;
    return weir_forward(ctx, in);
}

static int keyed_timer(weir_ctx_t *ctx, void *st, weir_time_domain_t dom,
                       weir_ts_t when)
{
    (void)st;
    (void)dom;
    return weir_emit_new(ctx, weir_ctx_key(ctx), WEIR_BUF_STR("t"), when);
}

static int asc_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    int rc;

    (void)st;
    rc = weir_forward(ctx, in);
    return rc != WEIR_OK ? rc : weir_emit_watermark(ctx, weir_record_ts(in));
}

static const weir_operator_def_t asc_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "asc",
    .flags = WEIR_OP_F_HOLD_WATERMARK,
    .process = asc_process,
};

static const weir_operator_def_t keyed_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "keyed",
    .flags = WEIR_OP_F_KEYED,
    .process = keyed_process,
    .on_timer = keyed_timer,
};

static int sink_fn(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    (*(long *)opaque)++;
    return WEIR_OK;
}

static int run_pipeline(const char *dir, long *out)
{
    char err[256];
    weir_conf_t *conf = weir_conf_new();
    weir_pipeline_t *p;
    weir_stream_t *s;
    int rc;

    if (conf == NULL)
        return WEIR_ENOMEM;
    if (weir_conf_set(conf, "pipeline.parallelism", "2", err, sizeof(err)) ||
        weir_conf_set(conf, "checkpoint.dir", dir, err, sizeof(err)) ||
        weir_conf_set(conf, "checkpoint.every.records", "100", err,
                      sizeof(err)) ||
        weir_conf_set(conf, "checkpoint.fsync", "false", err, sizeof(err)) ||
        weir_conf_set(conf, "batch.size", "16", err, sizeof(err))) {
        weir_conf_destroy(conf);
        return WEIR_ENOMEM;
    }
    p = weir_pipeline_new("oom", conf, err, sizeof(err));
    if (p == NULL)
        return WEIR_ENOMEM;
    s = weir_source_generator(p, "gen", gen_fn, NULL);
    s = weir_stream_apply(s, &asc_def, NULL);
    s = weir_stream_apply(weir_stream_keyby(s, NULL, NULL), &keyed_def, NULL);
    weir_stream_collect(s, sink_fn, out);
    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK)
        assert_true(strlen(weir_pipeline_errstr(p)) > 0);
    weir_pipeline_destroy(p);
    return rc;
}

static void oom_pipeline_sweep(void **unused)
{
    const char *base = getenv("WEIR_TEST_TMP");
    char dir[4096];
    char cmd[4200];
    long n;
    long out;
    int rc;
    int ok_runs = 0;

    (void)unused;
    for (n = 1; n < 20000; n += (n < 400 ? 1 : 37)) {
        snprintf(dir, sizeof(dir), "%s/oom-XXXXXX", base ? base : "/tmp");
        assert_non_null(mkdtemp(dir));
        out = 0;
        atomic_store(&failures, 0);
        atomic_store(&countdown, n);
        weir_replace_allocator(t_malloc, t_realloc, t_calloc, free);
        rc = run_pipeline(dir, &out);
        weir_replace_allocator(malloc, realloc, calloc, free);
        atomic_store(&countdown, -1);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        assert_int_equal(0, system(cmd));
        assert_true(rc == WEIR_OK || rc < 0);
        if (atomic_load(&failures) == 0) {
            assert_int_equal(WEIR_OK, rc);
            assert_true(out > 300);
            if (++ok_runs == 3)
                break;
        }
    }
    assert_int_equal(3, ok_runs);
}

static void oom_harness_sweep(void **unused)
{
    long n;
    int done = 0;

    (void)unused;
    for (n = 1; n < 5000 && !done; n++) {
        weir_harness_t *h;
        weir_harness_t *h2 = NULL;
        weir_snapshot_t *snap = NULL;
        int rc = WEIR_OK;
        int i;

        atomic_store(&failures, 0);
        atomic_store(&countdown, n);
        weir_replace_allocator(t_malloc, t_realloc, t_calloc, free);
        h = weir_harness_new(&keyed_def, NULL);
        for (i = 0; h != NULL && rc == WEIR_OK && i < 50; i++)
            rc = weir_harness_push(h, i % 2 ? "a" : "b", "v", i);
        if (h != NULL && rc == WEIR_OK)
            rc = weir_harness_checkpoint(h, 1, &snap);
        if (snap != NULL)
            h2 = weir_harness_new(&keyed_def, NULL);
        if (h2 != NULL)
            rc = weir_harness_restore(h2, snap);
        if (h2 != NULL && rc == WEIR_OK)
            rc = weir_harness_end(h2);
        weir_replace_allocator(malloc, realloc, calloc, free);
        atomic_store(&countdown, -1);
        if (atomic_load(&failures) == 0) {
            assert_int_equal(WEIR_OK, rc);
            assert_non_null(h2);
            assert_int_equal(50, weir_harness_count(h2, NULL));
            done = 1;
        }
        weir_snapshot_destroy(snap);
        weir_harness_destroy(h);
        weir_harness_destroy(h2);
    }
    assert_true(done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(oom_harness_sweep),
        cmocka_unit_test(oom_pipeline_sweep),
    };
    atomic_store(&countdown, -1);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
