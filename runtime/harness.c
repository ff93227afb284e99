/*
 * runtime/harness.c - the single-operator test harness (weir/testing.h).
 *
 * How it works
 *   A harness owns one operator instance (inst.c) and plays the task's
 *   part by hand: it calls process for pushed records, advances the
 *   watermark, sets a manual processing-time clock and fires processing
 *   timers, and implements the instance's output routing by collecting
 *   deep copies of every emitted record per tag and every forwarded
 *   watermark. Checkpoints are the instance's snapshot bytes; restoring
 *   them into a fresh harness is exactly what a task does on recovery.
 *   No threads anywhere: every test built on it is deterministic.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal.h"

typedef struct collected {
    char *tag;
    weir_record_t **recs;
    size_t n;
    size_t cap;
} collected_t;

struct weir_harness_s {
    weir__inst_t *in;
    char *ckpt_dir;
    weir_ts_t now;
    collected_t *outs;
    size_t nouts;
    weir_ts_t *wms;
    size_t nwm;
    size_t capwm;
    int idle;
    weir__attach_t *attached;
    size_t nattached;
};

struct weir_snapshot_s {
    weir__bytes_t bytes;
};

/* ------------------------------------------------------------------ *
 * ## Output collection
 * ------------------------------------------------------------------ */

static collected_t *find_out(const weir_harness_t *h, const char *tag)
{
    size_t i;

    if (tag == NULL)
        tag = WEIR_TAG_MAIN;
    for (i = 0; i < h->nouts; i++)
        if (strcmp(h->outs[i].tag, tag) == 0)
            return &h->outs[i];
    return NULL;
}

static collected_t *get_out(weir_harness_t *h, const char *tag)
{
    collected_t *c = find_out(h, tag);
    collected_t *outs;

    if (c != NULL)
        return c;
    outs = weir_realloc(h->outs, (h->nouts + 1) * sizeof(*outs));
    if (outs == NULL)
        return NULL;
    h->outs = outs;
    c = &outs[h->nouts];
    memset(c, 0, sizeof(*c));
    c->tag = weir__strdup(tag ? tag : WEIR_TAG_MAIN);
    if (c->tag == NULL)
        return NULL;
    h->nouts++;
    return c;
}

static int collect_named(void *sink, const char *tag, const weir_record_t *rec)
{
    weir_harness_t *h = sink;
    collected_t *c = get_out(h, tag);
    weir_record_t **recs;
    weir_record_t *copy;

    if (c == NULL)
        return WEIR_ENOMEM;
    if (c->n == c->cap) {
        recs =
            weir_realloc(c->recs, (c->cap ? c->cap * 2 : 16) * sizeof(*recs));
        if (recs == NULL)
            return WEIR_ENOMEM;
        c->recs = recs;
        c->cap = c->cap ? c->cap * 2 : 16;
    }
    copy = weir_record_copy(rec);
    if (copy == NULL)
        return WEIR_ENOMEM;
    c->recs[c->n++] = copy;
    return WEIR_OK;
}

static int collect(void *sink, int tag, const weir_record_t *rec)
{
    weir_harness_t *h = sink;

    return collect_named(sink, h->in->tags[tag], rec);
}

static int collect_wm(void *sink, weir_ts_t wm)
{
    weir_harness_t *h = sink;
    weir_ts_t *wms;

    if (h->nwm == h->capwm) {
        wms =
            weir_realloc(h->wms, (h->capwm ? h->capwm * 2 : 16) * sizeof(*wms));
        if (wms == NULL)
            return WEIR_ENOMEM;
        h->wms = wms;
        h->capwm = h->capwm ? h->capwm * 2 : 16;
    }
    h->wms[h->nwm++] = wm;
    return WEIR_OK;
}

static int collect_idle(void *sink, int idle)
{
    ((weir_harness_t *)sink)->idle = idle;
    return WEIR_OK;
}

static const weir__out_ops_t harness_out = {
    .record = collect,
    .watermark = collect_wm,
    .idle = collect_idle,
    .record_named = collect_named,
};

static weir_ts_t harness_clock(void *arg)
{
    return ((weir_harness_t *)arg)->now;
}

/* ------------------------------------------------------------------ *
 * ## Lifecycle
 * ------------------------------------------------------------------ */

static weir_harness_t *harness_create(const weir_operator_def_t *def,
                                      const void *opaque, int subtask,
                                      int parallelism, const char *ckpt_dir)
{
    weir_harness_t *h;

    if (def == NULL || parallelism < 1 || subtask < 0 || subtask >= parallelism)
        return NULL;
    h = weir_calloc(1, sizeof(*h));
    if (h == NULL)
        return NULL;
    h->idle = -1;
    h->in = weir__inst_new(def, opaque, def->name, subtask, parallelism);
    if (h->in == NULL) {
        weir_free(h);
        return NULL;
    }
    weir__inst_set_out(h->in, &harness_out, h, NULL, 0);
    if (ckpt_dir != NULL) {
        h->ckpt_dir = weir__strdup(ckpt_dir);
        if (h->ckpt_dir == NULL) {
            weir_harness_destroy(h);
            return NULL;
        }
        h->in->ckpt_dir = h->ckpt_dir;
    }
    h->in->clock = harness_clock;
    h->in->clock_arg = h;
    if (weir__inst_open(h->in) != WEIR_OK) {
        weir_harness_destroy(h);
        return NULL;
    }
    return h;
}

weir_harness_t *weir_harness_new_ex(const weir_operator_def_t *def,
                                    const void *opaque, int subtask,
                                    int parallelism)
{
    return harness_create(def, opaque, subtask, parallelism, NULL);
}

weir_harness_t *weir_harness_new_checkpointed(const weir_operator_def_t *def,
                                              const void *opaque,
                                              const char *checkpoint_dir)
{
    if (checkpoint_dir == NULL)
        return NULL;
    return harness_create(def, opaque, 0, 1, checkpoint_dir);
}

weir_harness_t *weir_harness_new(const weir_operator_def_t *def,
                                 const void *opaque)
{
    return weir_harness_new_ex(def, opaque, 0, 1);
}

int weir_harness_attach(weir_harness_t *h, void *ptr, void (*free_fn)(void *))
{
    weir__attach_t *a;

    if (h == NULL || free_fn == NULL) {
        if (free_fn != NULL)
            free_fn(ptr);
        return WEIR_EINVAL;
    }
    a = weir_realloc(h->attached, (h->nattached + 1) * sizeof(*a));
    if (a == NULL) {
        free_fn(ptr);
        return WEIR_ENOMEM;
    }
    h->attached = a;
    a[h->nattached].ptr = ptr;
    a[h->nattached].free_fn = free_fn;
    h->nattached++;
    return WEIR_OK;
}

void weir_harness_clear(weir_harness_t *h)
{
    size_t i;
    size_t j;

    if (h == NULL)
        return;
    for (i = 0; i < h->nouts; i++) {
        for (j = 0; j < h->outs[i].n; j++)
            weir_record_destroy(h->outs[i].recs[j]);
        h->outs[i].n = 0;
    }
    h->nwm = 0;
}

void weir_harness_destroy(weir_harness_t *h)
{
    size_t i;

    if (h == NULL)
        return;
    weir__inst_free(h->in);
    weir_free(h->ckpt_dir);
    weir_harness_clear(h);
    for (i = 0; i < h->nouts; i++) {
        weir_free(h->outs[i].recs);
        weir_free(h->outs[i].tag);
    }
    weir_free(h->outs);
    weir_free(h->wms);
    for (i = h->nattached; i > 0; i--)
        h->attached[i - 1].free_fn(h->attached[i - 1].ptr);
    weir_free(h->attached);
    weir_free(h);
}

/* ------------------------------------------------------------------ *
 * ## Driving
 * ------------------------------------------------------------------ */

int weir_harness_push_buf(weir_harness_t *h, weir_buf_t key, weir_buf_t value,
                          weir_ts_t ts)
{
    weir_record_t rec;

    if (h == NULL || (key.data == NULL && key.len > 0) ||
        (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    weir__record_init(&rec);
    rec.key = key;
    rec.rkey = key;
    rec.value = value;
    rec.ts = ts;
    return weir__inst_process(h->in, &rec);
}

int weir_harness_push(weir_harness_t *h, const char *key, const char *value,
                      weir_ts_t ts)
{
    return weir_harness_push_buf(h, key ? WEIR_BUF_STR(key) : WEIR_BUF_NULL,
                                 value ? WEIR_BUF_STR(value) : WEIR_BUF("", 0),
                                 ts);
}

/* rec as the runtime hands it to an operator: rkey defaults to key. */
static weir_record_t as_delivered(const weir_record_t *rec)
{
    weir_record_t copy = *rec;

    if (copy.rkey.data == NULL)
        copy.rkey = copy.key;
    return copy;
}

int weir_harness_push_record(weir_harness_t *h, const weir_record_t *rec)
{
    weir_record_t copy;

    if (h == NULL || rec == NULL)
        return WEIR_EINVAL;
    copy = as_delivered(rec);
    return weir__inst_process(h->in, &copy);
}

int weir_harness_push_batch(weir_harness_t *h, const weir_record_t *const *recs,
                            size_t n)
{
    int pf = h != NULL && weir__inst_prefetcher(h->in) != NULL;
    weir_record_t *b;
    size_t i;
    int rc = WEIR_OK;

    if (h == NULL || (recs == NULL && n > 0))
        return WEIR_EINVAL;
    for (i = 0; i < n; i++)
        if (recs[i] == NULL)
            return WEIR_EINVAL;
    if (n == 0)
        return WEIR_OK;
    b = weir_malloc(n * sizeof(*b));
    if (b == NULL)
        return WEIR_ENOMEM;
    for (i = 0; i < n; i++)
        b[i] = as_delivered(recs[i]);
    for (i = 0; pf && i < n && i < WEIR__PREFETCH_AHEAD; i++)
        weir__inst_prefetch(h->in, &b[i]);
    for (i = 0; i < n && rc == WEIR_OK; i++) {
        if (pf && i + WEIR__PREFETCH_AHEAD < n)
            weir__inst_prefetch(h->in, &b[i + WEIR__PREFETCH_AHEAD]);
        rc = weir__inst_process(h->in, &b[i]);
    }
    weir_free(b);
    return rc;
}

int weir_harness_prefetch(weir_harness_t *h, const weir_record_t *rec)
{
    weir_record_t copy;

    if (h == NULL || rec == NULL)
        return WEIR_EINVAL;
    if (weir__inst_prefetcher(h->in) == NULL)
        return WEIR_OK;
    copy = as_delivered(rec);
    weir__inst_prefetch(h->in, &copy);
    return WEIR_OK;
}

int weir_harness_watermark(weir_harness_t *h, weir_ts_t wm)
{
    if (h == NULL)
        return WEIR_EINVAL;
    return weir__inst_watermark(h->in, wm);
}

int weir_harness_set_processing_time(weir_harness_t *h, weir_ts_t now)
{
    if (h == NULL)
        return WEIR_EINVAL;
    if (now > h->now)
        h->now = now;
    return weir__inst_processing_time(h->in, h->now);
}

int weir_harness_poll(weir_harness_t *h)
{
    if (h == NULL)
        return WEIR_EINVAL;
    return weir__inst_poll(h->in);
}

int weir_harness_end(weir_harness_t *h)
{
    int rc;

    if (h == NULL)
        return WEIR_EINVAL;
    rc = weir__inst_watermark(h->in, WEIR_TS_MAX);
    if (rc != WEIR_OK)
        return rc;
    return weir__inst_end(h->in);
}

int weir_harness_checkpoint(weir_harness_t *h, uint64_t id,
                            weir_snapshot_t **snap)
{
    weir_writer_t w = {{0}};
    weir_snapshot_t *s;
    int rc;

    if (h == NULL || snap == NULL)
        return WEIR_EINVAL;
    *snap = NULL;
    rc = weir__inst_snapshot(h->in, id, &w);
    if (rc != WEIR_OK) {
        weir__bytes_free(&w.buf);
        return rc;
    }
    s = weir_calloc(1, sizeof(*s));
    if (s == NULL) {
        weir__bytes_free(&w.buf);
        return WEIR_ENOMEM;
    }
    s->bytes = w.buf;
    *snap = s;
    return WEIR_OK;
}

int weir_harness_complete(weir_harness_t *h, uint64_t id)
{
    if (h == NULL)
        return WEIR_EINVAL;
    return weir__inst_complete(h->in, id);
}

int weir_harness_restore(weir_harness_t *h, const weir_snapshot_t *snap)
{
    weir_reader_t r;

    if (h == NULL || snap == NULL)
        return WEIR_EINVAL;
    weir__reader_init(&r, snap->bytes.data, snap->bytes.len);
    return weir__inst_restore(h->in, &r);
}

void weir_snapshot_destroy(weir_snapshot_t *snap)
{
    if (snap == NULL)
        return;
    weir__bytes_free(&snap->bytes);
    weir_free(snap);
}

/* ------------------------------------------------------------------ *
 * ## Inspecting outputs
 * ------------------------------------------------------------------ */

size_t weir_harness_count(const weir_harness_t *h, const char *tag)
{
    const collected_t *c;

    if (h == NULL)
        return 0;
    c = find_out(h, tag);
    return c ? c->n : 0;
}

const weir_record_t *weir_harness_record(const weir_harness_t *h,
                                         const char *tag, size_t i)
{
    const collected_t *c;

    if (h == NULL)
        return NULL;
    c = find_out(h, tag);
    return (c != NULL && i < c->n) ? c->recs[i] : NULL;
}

int64_t weir_harness_i64(const weir_harness_t *h, const char *tag, size_t i)
{
    const weir_record_t *rec = weir_harness_record(h, tag, i);
    char buf[32];
    char *end;
    long long v;

    if (rec == NULL || rec->value.len == 0 || rec->value.len >= sizeof(buf))
        return INT64_MIN;
    memcpy(buf, rec->value.data, rec->value.len);
    buf[rec->value.len] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return INT64_MIN;
    return (int64_t)v;
}

size_t weir_harness_watermark_count(const weir_harness_t *h)
{
    return h ? h->nwm : 0;
}

weir_ts_t weir_harness_watermark_at(const weir_harness_t *h, size_t i)
{
    return (h != NULL && i < h->nwm) ? h->wms[i] : WEIR_TS_MIN;
}

int weir_harness_idle(const weir_harness_t *h)
{
    return h ? h->idle : -1;
}
