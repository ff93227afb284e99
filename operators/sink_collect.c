/*
 * operators/sink_collect.c - a sink that hands every record to a user
 * callback (weir_stream_collect), and the filter operator
 * (weir_stream_filter).
 *
 * How it works
 *   Both are one-callback operators whose opaque is a small (fn, opaque)
 *   pair allocated by the builder and tied to the pipeline's lifetime.
 *   The collect sink runs with parallelism 1 unless the caller sets
 *   another, so a user callback sees records from one thread at a time.
 */
#include <weir.h>
#include <weir/operator.h>

typedef struct fn_args {
    void *fn;
    void *opaque;
    char *tag; /* for collect: the tag reported to the callback */
} fn_args_t;

static void free_args(void *p)
{
    fn_args_t *a = p;

    weir_free(a->tag);
    weir_free(a);
}

static fn_args_t *make_args(weir_stream_t *s, void *fn, void *opaque)
{
    fn_args_t *a = weir_calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    a->fn = fn;
    a->opaque = opaque;
    if (weir_pipeline_attach(weir_stream_pipeline(s), a, free_args) != WEIR_OK)
        return NULL;
    return a;
}

static int collect_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    const fn_args_t *a = weir_ctx_opaque(ctx);
    weir_collect_fn fn;

    (void)st;
    *(void **)&fn = a->fn;
    return fn(in, a->tag ? a->tag : WEIR_TAG_MAIN, a->opaque);
}

static const weir_operator_def_t collect_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "collect",
    .process = collect_process,
};

int weir_stream_collect(weir_stream_t *s, weir_collect_fn fn, void *opaque)
{
    fn_args_t *a;

    if (s == NULL)
        return WEIR_EINVAL;
    if (!weir_stream_ok(s))
        return weir_pipeline_error(weir_stream_pipeline(s));
    if (fn == NULL) {
        weir_stream_error(s, WEIR_EINVAL, "weir_stream_collect: fn is NULL");
        return WEIR_EINVAL;
    }
    a = make_args(s, *(void **)&fn, opaque);
    if (a == NULL)
        return weir_pipeline_error(weir_stream_pipeline(s));
    a->tag = weir_malloc(strlen(weir_stream_tag(s)) + 1);
    if (a->tag == NULL) {
        weir_stream_error(s, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    strcpy(a->tag, weir_stream_tag(s));
    return weir_stream_sink(s, &collect_def, a);
}

static int filter_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    const fn_args_t *a = weir_ctx_opaque(ctx);
    weir_filter_fn fn;

    (void)st;
    *(void **)&fn = a->fn;
    return fn(in, a->opaque) ? weir_forward(ctx, in) : WEIR_OK;
}

static const weir_operator_def_t filter_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "filter",
    .process = filter_process,
};

weir_stream_t *weir_stream_filter(weir_stream_t *s, weir_filter_fn fn,
                                  void *opaque)
{
    fn_args_t *a;

    if (s == NULL || !weir_stream_ok(s))
        return s;
    if (fn == NULL)
        return weir_stream_error(s, WEIR_EINVAL,
                                 "weir_stream_filter: fn is NULL");
    a = make_args(s, *(void **)&fn, opaque);
    if (a == NULL)
        return weir_stream_error(s, WEIR_ENOMEM, "out of memory");
    return weir_stream_apply(s, &filter_def, a);
}
