/*
 * runtime/pipeline.c - the pipeline object and the stream builder.
 *
 * How it works
 *   The builder records a logical graph: nodes (operator def, opaque,
 *   parallelism, output tags) and, per node, its inputs (upstream node,
 *   which output tag, keyed or not). Streams are small handles naming
 *   (node, tag, keyed); key_by makes a keyed handle without a node: the
 *   partitioning happens on the edge into the next operator.
 *
 *   Errors are sticky: the first failure is stored on the pipeline and
 *   every builder call returns the pipeline's poisoned stream, on which
 *   later calls do nothing. weir_pipeline_run() refuses to start then.
 *
 * Invariants
 *   - Builder calls never return NULL for a non-NULL input stream.
 *   - Nodes, streams and attached resources are freed by
 *     weir_pipeline_destroy(), attached ones in reverse order.
 */
#include <stdarg.h>
#include <stdlib.h>

#include "internal.h"

static const weir_operator_def_t union_def;

/* ------------------------------------------------------------------ *
 * ## Pipeline
 * ------------------------------------------------------------------ */

weir_pipeline_t *weir_pipeline_new(const char *name, weir_conf_t *conf,
                                   char *errstr, size_t errstr_size)
{
    weir_pipeline_t *p;

    p = weir_calloc(1, sizeof(*p));
    if (p == NULL) {
        weir_conf_destroy(conf);
        weir__set_errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    p->name = weir__strdup(name ? name : "pipeline");
    p->conf = conf ? conf : weir_conf_new();
    if (p->name == NULL || p->conf == NULL) {
        weir_free(p->name);
        weir_conf_destroy(p->conf);
        weir_free(p);
        weir__set_errstr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->err_mu, NULL);
    p->poison.p = p;
    p->poison.poisoned = 1;
    return p;
}

static void free_node(weir__node_t *n)
{
    int i;

    for (i = 1; i < n->ntags; i++)
        weir_free((void *)n->tags[i]);
    weir_free(n->tags);
    weir_free(n->inputs);
    weir_free(n->name);
    weir_free(n);
}

void weir_pipeline_destroy(weir_pipeline_t *p)
{
    int i;

    if (p == NULL)
        return;
    for (i = 0; i < p->nnodes; i++)
        free_node(p->nodes[i]);
    weir_free(p->nodes);
    for (i = 0; i < p->nstreams; i++)
        weir_free(p->streams[i]);
    weir_free(p->streams);
    for (i = p->nattached; i > 0; i--)
        p->attached[i - 1].free_fn(p->attached[i - 1].ptr);
    weir_free(p->attached);
    weir_conf_destroy(p->conf);
    pthread_mutex_destroy(&p->err_mu);
    weir_free(p->name);
    weir_free(p);
}

void weir__pipeline_fail(weir_pipeline_t *p, int err, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&p->err_mu);
    if (p->err == WEIR_OK) {
        p->err = err;
        va_start(ap, fmt);
        vsnprintf(p->errstr, sizeof(p->errstr), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&p->err_mu);
}

int weir_pipeline_error(const weir_pipeline_t *p)
{
    int err;

    if (p == NULL)
        return WEIR_EINVAL;
    pthread_mutex_lock((pthread_mutex_t *)&p->err_mu);
    err = p->err;
    pthread_mutex_unlock((pthread_mutex_t *)&p->err_mu);
    return err;
}

const char *weir_pipeline_errstr(const weir_pipeline_t *p)
{
    return p ? p->errstr : "invalid pipeline";
}

int weir_pipeline_attach(weir_pipeline_t *p, void *ptr, void (*free_fn)(void *))
{
    weir__attach_t *a;

    if (p == NULL || free_fn == NULL) {
        if (free_fn != NULL)
            free_fn(ptr);
        return WEIR_EINVAL;
    }
    a = weir_realloc(p->attached, (p->nattached + 1) * sizeof(*a));
    if (a == NULL) {
        free_fn(ptr);
        weir__pipeline_fail(p, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    p->attached = a;
    a[p->nattached].ptr = ptr;
    a[p->nattached].free_fn = free_fn;
    p->nattached++;
    return WEIR_OK;
}

void weir_pipeline_stop(weir_pipeline_t *p)
{
    if (p != NULL)
        atomic_store(&p->stop_requested, 1);
}

int weir_pipeline_checkpoint(weir_pipeline_t *p)
{
    const char *dir;

    if (p == NULL)
        return WEIR_EINVAL;
    dir = weir_conf_get(p->conf, "checkpoint.dir");
    if (dir == NULL || *dir == '\0')
        return WEIR_EINVAL;
    atomic_store(&p->ckpt_requested, 1);
    return WEIR_OK;
}

uint64_t weir_pipeline_last_checkpoint(const weir_pipeline_t *p)
{
    return p ? atomic_load(&((weir_pipeline_t *)p)->last_completed) : 0;
}

int weir_pipeline_run(weir_pipeline_t *p)
{
    int rc;

    if (p == NULL)
        return WEIR_EINVAL;
    rc = weir_pipeline_error(p);
    if (rc != WEIR_OK)
        return rc;
    if (p->ran) {
        weir__pipeline_fail(p, WEIR_EINVAL, "a pipeline runs only once");
        return WEIR_EINVAL;
    }
    p->ran = 1;
    return weir__pipeline_execute(p);
}

/* ------------------------------------------------------------------ *
 * ## Streams
 * ------------------------------------------------------------------ */

static int usable(const weir_stream_t *s)
{
    return s != NULL && !s->poisoned && s->p->err == WEIR_OK;
}

weir_stream_t *weir_stream_error(weir_stream_t *s, int err, const char *msg)
{
    if (s == NULL)
        return NULL;
    weir__pipeline_fail(s->p, err < 0 ? err : WEIR_EINVAL, "%s",
                        msg ? msg : weir_strerror(err));
    return &s->p->poison;
}

weir_pipeline_t *weir_stream_pipeline(const weir_stream_t *s)
{
    return s ? s->p : NULL;
}

const char *weir_stream_tag(const weir_stream_t *s)
{
    if (s == NULL)
        return NULL;
    if (s->node == NULL)
        return WEIR_TAG_MAIN;
    return s->node->tags[s->tag];
}

int weir_stream_ok(const weir_stream_t *s)
{
    return usable(s);
}

static weir_stream_t *new_stream(weir_pipeline_t *p, weir__node_t *node,
                                 int tag)
{
    weir_stream_t **ss;
    weir_stream_t *s;

    ss = weir_realloc(p->streams, (p->nstreams + 1) * sizeof(*ss));
    if (ss == NULL)
        return NULL;
    p->streams = ss;
    s = weir_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->p = p;
    s->node = node;
    s->tag = tag;
    ss[p->nstreams++] = s;
    return s;
}

static weir__node_t *new_node(weir_pipeline_t *p, const char *name,
                              const weir_operator_def_t *def,
                              const void *opaque)
{
    weir__node_t **nodes;
    weir__node_t *n;

    nodes = weir_realloc(p->nodes, (p->nnodes + 1) * sizeof(*nodes));
    if (nodes == NULL)
        return NULL;
    p->nodes = nodes;
    n = weir_calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->id = p->nnodes;
    n->def = def;
    n->opaque = opaque;
    n->name = weir__strdup(name ? name : (def->name ? def->name : "op"));
    n->tags = weir_malloc(sizeof(*n->tags));
    if (n->name == NULL || n->tags == NULL) {
        free_node(n);
        return NULL;
    }
    n->tags[0] = WEIR_TAG_MAIN;
    n->ntags = 1;
    if (def->flags & WEIR_OP_F_SINGLE)
        n->parallelism = 1;
    nodes[p->nnodes++] = n;
    return n;
}

static weir_stream_t *oom(weir_pipeline_t *p)
{
    weir__pipeline_fail(p, WEIR_ENOMEM, "out of memory");
    return &p->poison;
}

static int add_input(weir__node_t *n, const weir_stream_t *s)
{
    weir__input_t *in;

    in = weir_realloc(n->inputs, (n->ninputs + 1) * sizeof(*in));
    if (in == NULL)
        return WEIR_ENOMEM;
    n->inputs = in;
    in[n->ninputs].from = s->node;
    in[n->ninputs].tag = s->tag;
    in[n->ninputs].keyed = s->keyed;
    in[n->ninputs].key_fn = s->key_fn;
    in[n->ninputs].key_opaque = s->key_opaque;
    n->ninputs++;
    return WEIR_OK;
}

weir_stream_t *weir_stream_source(weir_pipeline_t *p, const char *name,
                                  const weir_operator_def_t *def,
                                  const void *opaque)
{
    weir__node_t *n;
    weir_stream_t *s;

    if (p == NULL)
        return NULL;
    if (p->err != WEIR_OK)
        return &p->poison;
    if (def == NULL || def->poll == NULL || !weir__def_version_ok(def)) {
        weir__pipeline_fail(p, WEIR_EINVAL,
                            "source \"%s\": needs an operator def with poll "
                            "and version WEIR_OPERATOR_VERSION",
                            name ? name : "?");
        return &p->poison;
    }
    n = new_node(p, name, def, opaque);
    if (n == NULL)
        return oom(p);
    n->is_source = 1;
    n->parallelism = 1;
    s = new_stream(p, n, 0);
    return s ? s : oom(p);
}

weir_stream_t *weir_stream_keyby(weir_stream_t *s, weir_key_fn fn, void *opaque)
{
    weir_stream_t *k;

    if (!usable(s))
        return s ? &s->p->poison : NULL;
    k = new_stream(s->p, s->node, s->tag);
    if (k == NULL)
        return oom(s->p);
    k->keyed = 1;
    k->key_fn = fn;
    k->key_opaque = opaque;
    return k;
}

static weir_stream_t *apply_node(weir_stream_t *s, const char *name,
                                 const weir_operator_def_t *def,
                                 const void *opaque, int is_sink)
{
    weir__node_t *n;
    weir_stream_t *out;

    if (!usable(s))
        return s ? &s->p->poison : NULL;
    if (def == NULL || !weir__def_version_ok(def) || def->poll != NULL) {
        weir__pipeline_fail(s->p, WEIR_EINVAL,
                            "apply: operator def must be non-NULL, without "
                            "poll, with version WEIR_OPERATOR_VERSION");
        return &s->p->poison;
    }
    if ((def->flags & WEIR_OP_F_KEYED) && !s->keyed) {
        weir__pipeline_fail(s->p, WEIR_ETOPOLOGY,
                            "operator \"%s\" needs a keyed stream: call "
                            "weir_stream_keyby() first",
                            def->name ? def->name : "?");
        return &s->p->poison;
    }
    n = new_node(s->p, name, def, opaque);
    if (n == NULL || add_input(n, s) != WEIR_OK)
        return oom(s->p);
    if (is_sink && n->parallelism == 0)
        n->parallelism = 1;
    out = new_stream(s->p, n, 0);
    return out ? out : oom(s->p);
}

weir_stream_t *weir_stream_apply(weir_stream_t *s,
                                 const weir_operator_def_t *def,
                                 const void *opaque)
{
    return apply_node(s, NULL, def, opaque, 0);
}

int weir_stream_sink(weir_stream_t *s, const weir_operator_def_t *def,
                     const void *opaque)
{
    weir_stream_t *out;

    if (s == NULL)
        return WEIR_EINVAL;
    out = apply_node(s, NULL, def, opaque, 1);
    return out->poisoned ? weir_pipeline_error(s->p) : WEIR_OK;
}

/* Union: a pass-through operator with two inputs. */
static int union_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    (void)st;
    return weir_forward(ctx, in);
}

static const weir_operator_def_t union_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "union",
    .process = union_process,
};

weir_stream_t *weir_stream_union(weir_stream_t *a, weir_stream_t *b)
{
    weir__node_t *n;
    weir_stream_t *out;

    if (!usable(a))
        return a ? &a->p->poison : NULL;
    if (!usable(b) || a->p != b->p) {
        if (b != NULL && b->p != a->p)
            weir__pipeline_fail(a->p, WEIR_EINVAL,
                                "union: streams of different pipelines");
        return &a->p->poison;
    }
    n = new_node(a->p, "union", &union_def, NULL);
    if (n == NULL || add_input(n, a) != WEIR_OK || add_input(n, b) != WEIR_OK)
        return oom(a->p);
    out = new_stream(a->p, n, 0);
    return out ? out : oom(a->p);
}

weir_stream_t *weir_stream_side_output(weir_stream_t *s, const char *tag)
{
    weir__node_t *n;
    const char **tags;
    weir_stream_t *out;
    int i;

    if (!usable(s))
        return s ? &s->p->poison : NULL;
    if (tag == NULL || *tag == '\0') {
        weir__pipeline_fail(s->p, WEIR_EINVAL, "side output: empty tag");
        return &s->p->poison;
    }
    n = s->node;
    for (i = 0; i < n->ntags; i++)
        if (strcmp(n->tags[i], tag) == 0)
            break;
    if (i == n->ntags) {
        tags = weir_realloc(n->tags, (n->ntags + 1) * sizeof(*tags));
        if (tags == NULL)
            return oom(s->p);
        n->tags = tags;
        tags[n->ntags] = weir__strdup(tag);
        if (tags[n->ntags] == NULL)
            return oom(s->p);
        n->ntags++;
    }
    out = new_stream(s->p, n, i);
    return out ? out : oom(s->p);
}

weir_stream_t *weir_stream_set_parallelism(weir_stream_t *s, int parallelism)
{
    int max;

    if (!usable(s))
        return s ? &s->p->poison : NULL;
    max = (int)weir__conf_i64(s->p->conf, "pipeline.max.keygroups", 128);
    if (parallelism < 1 || parallelism > 1024 ||
        (s->node->is_source && parallelism != 1) ||
        ((s->node->def->flags & WEIR_OP_F_SINGLE) && parallelism != 1) ||
        parallelism > max) {
        weir__pipeline_fail(s->p, WEIR_EINVAL,
                            "operator \"%s\": parallelism %d not allowed",
                            s->node->name, parallelism);
        return &s->p->poison;
    }
    s->node->parallelism = parallelism;
    return s;
}

weir_stream_t *weir_stream_set_name(weir_stream_t *s, const char *name)
{
    char *n;

    if (!usable(s))
        return s ? &s->p->poison : NULL;
    if (name == NULL || *name == '\0') {
        weir__pipeline_fail(s->p, WEIR_EINVAL, "set_name: empty name");
        return &s->p->poison;
    }
    n = weir__strdup(name);
    if (n == NULL)
        return oom(s->p);
    weir_free(s->node->name);
    s->node->name = n;
    return s;
}
