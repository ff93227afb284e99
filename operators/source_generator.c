/*
 * operators/source_generator.c - a source of generated records
 * (weir_source_generator): tests, benchmarks and examples.
 *
 * How it works
 *   poll() calls the user's generator for indexes next, next+1, ... and
 *   emits up to one batch of records per call; it returns WEIR_DONE when
 *   the generator says the input has ended. The next index is the
 *   source's whole state: it is what snapshot writes and restore reads,
 *   so a restored pipeline resumes exactly after the last checkpointed
 *   record.
 */
#include <weir.h>
#include <weir/operator.h>

#define GEN_BATCH 512

typedef struct gen_args {
    weir_generator_fn fn;
    void *opaque;
} gen_args_t;

typedef struct gen_state {
    uint64_t next;
} gen_state_t;

static int gen_poll(weir_ctx_t *ctx, void *st)
{
    const gen_args_t *a = weir_ctx_opaque(ctx);
    gen_state_t *g = st;
    weir_buf_t key;
    weir_buf_t value;
    weir_ts_t ts;
    int i;
    int rc;

    for (i = 0; i < GEN_BATCH; i++) {
        key = WEIR_BUF_NULL;
        value = WEIR_BUF_NULL;
        ts = WEIR_TS_MIN;
        rc = a->fn(a->opaque, g->next, &key, &value, &ts);
        if (rc < 0)
            return weir_ctx_error(ctx, rc, "generator failed at record %llu",
                                  (unsigned long long)g->next);
        if (rc == 0)
            return WEIR_DONE;
        g->next++;
        rc = weir_emit_new(ctx, key, value, ts);
        if (rc != WEIR_OK)
            return rc;
    }
    return WEIR_OK;
}

static int gen_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                        uint64_t id)
{
    (void)ctx;
    (void)id;
    return weir_write_u64(w, ((gen_state_t *)st)->next);
}

static int gen_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    (void)ctx;
    return weir_read_u64(r, &((gen_state_t *)st)->next);
}

static const weir_operator_def_t gen_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "generator",
    .flags = WEIR_OP_F_SINGLE,
    .state_size = sizeof(gen_state_t),
    .poll = gen_poll,
    .snapshot = gen_snapshot,
    .restore = gen_restore,
};

weir_stream_t *weir_source_generator(weir_pipeline_t *p, const char *name,
                                     weir_generator_fn fn, void *opaque)
{
    gen_args_t *a;
    weir_stream_t *s;

    if (p == NULL)
        return NULL;
    if (fn == NULL) {
        s = weir_stream_source(p, name, &gen_def, NULL);
        return weir_stream_error(s, WEIR_EINVAL,
                                 "weir_source_generator: fn is NULL");
    }
    a = weir_malloc(sizeof(*a));
    if (a == NULL)
        return weir_stream_error(weir_stream_source(p, name, &gen_def, NULL),
                                 WEIR_ENOMEM, "out of memory");
    a->fn = fn;
    a->opaque = opaque;
    if (weir_pipeline_attach(p, a, weir_free) != WEIR_OK)
        return weir_stream_source(p, name, &gen_def, NULL);
    return weir_stream_source(p, name ? name : "generator", &gen_def, a);
}
