/*
 * runtime/inst.c - one operator instance: the weir_ctx_t behind every
 * callback, emit routing, keyed state and timer scoping, watermark
 * handling, snapshots.
 *
 * How it works
 *   A task (or the test harness) owns instances and calls weir__inst_*
 *   to drive them; the instance calls the operator's vtable and routes
 *   whatever the operator emits through `out` (weir__out_ops_t), which
 *   the owner implements: the task sends to the next operator of its
 *   chain or into channels, the harness collects.
 *
 *   Watermarks: weir__inst_watermark(wm) ignores a wm that does not move
 *   forward; otherwise it sets the current watermark, fires every
 *   event-time timer with when <= wm in (when, seq) order, calls
 *   on_watermark, then forwards wm (unless WEIR_OP_F_HOLD_WATERMARK), so
 *   results fired by a watermark precede it downstream.
 *
 *   Scoping: the current key is the key_by key of the record being
 *   processed, or the key of the timer being fired, or what
 *   weir_ctx_set_key() set; the namespace is reset to empty before every
 *   callback. State and timer calls use (key, namespace).
 *
 * Snapshot layout (one instance):
 *   u64 magic, i64 watermark, i64 emitted watermark, buf operator bytes,
 *   keyed state, event timers, processing timers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "internal.h"

#define SNAP_MAGIC   0x5745495231534e50ull /* "WEIR1SNP" */
#define EMIT_HEADERS 8 /* headers weir_emit_new_headers_to keeps on stack */

static const char *const default_tags[] = {WEIR_TAG_MAIN};

static weir__inst_t *ctx_inst(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst : NULL;
}

/* ------------------------------------------------------------------ *
 * ## Lifecycle
 * ------------------------------------------------------------------ */

weir__inst_t *weir__inst_new(const weir_operator_def_t *def, const void *opaque,
                             const char *name, int subtask, int parallelism)
{
    weir__inst_t *in;

    in = weir_calloc(1, sizeof(*in));
    if (in == NULL)
        return NULL;
    in->ctx.inst = in;
    in->node = -1;
    in->def = def;
    in->opaque = opaque;
    in->subtask = subtask;
    in->parallelism = parallelism;
    in->wm = WEIR_TS_MIN;
    in->out_wm = WEIR_TS_MIN;
    in->out_idle = -1;
    in->tags = (const char **)default_tags;
    in->ntags = 1;
    in->name = weir__strdup(name ? name : (def->name ? def->name : "op"));
    in->state = weir__state_new();
    in->timers[0] = weir__timers_new();
    in->timers[1] = weir__timers_new();
    if (def->state_size > 0)
        in->st = weir_calloc(1, def->state_size);
    if (in->name == NULL || in->state == NULL || in->timers[0] == NULL ||
        in->timers[1] == NULL || (def->state_size > 0 && in->st == NULL)) {
        weir__inst_free(in);
        return NULL;
    }
    return in;
}

void weir__inst_free(weir__inst_t *in)
{
    if (in == NULL)
        return;
    weir__inst_close(in);
    weir__state_free(in->state);
    weir__timers_free(in->timers[0]);
    weir__timers_free(in->timers[1]);
    weir__bytes_free(&in->key_buf);
    weir__bytes_free(&in->ns_buf);
    weir_free(in->st);
    weir_free(in->name);
    weir_free(in->state_dir);
    weir_free(in);
}

void weir__inst_set_out(weir__inst_t *in, const weir__out_ops_t *ops,
                        void *sink, const char **tags, int ntags)
{
    in->out = ops;
    in->out_sink = sink;
    if (tags != NULL && ntags > 0) {
        in->tags = tags;
        in->ntags = ntags;
    }
}

static void reset_scope(weir__inst_t *in)
{
    in->key = WEIR_BUF_NULL;
    in->ns_buf.len = 0;
}

int weir__inst_open(weir__inst_t *in)
{
    int rc = WEIR_OK;

    reset_scope(in);
    if (in->def->open != NULL)
        rc = in->def->open(&in->ctx, in->st);
    if (rc == WEIR_OK)
        in->opened = 1;
    return rc;
}

void weir__inst_close(weir__inst_t *in)
{
    if (!in->opened)
        return;
    in->opened = 0;
    reset_scope(in);
    if (in->def->close != NULL)
        in->def->close(&in->ctx, in->st);
}

/* ------------------------------------------------------------------ *
 * ## Driving
 * ------------------------------------------------------------------ */

int weir__inst_process(weir__inst_t *in, const weir_record_t *rec)
{
    in->key = rec->rkey;
    in->ns_buf.len = 0;
    if (in->def->process == NULL)
        return WEIR_OK;
    return in->def->process(&in->ctx, in->st, rec);
}

weir__prefetch_fn weir__inst_prefetcher(const weir__inst_t *in)
{
    return in->def->version >= 2 ? in->def->prefetch : NULL;
}

void weir__inst_prefetch(weir__inst_t *in, const weir_record_t *rec)
{
    in->def->prefetch(in->st, rec, rec->rkey);
}

static int emit_wm(weir__inst_t *in, weir_ts_t wm)
{
    if (wm <= in->out_wm)
        return WEIR_OK;
    in->out_wm = wm;
    if (in->out == NULL || in->out->watermark == NULL)
        return WEIR_OK;
    return in->out->watermark(in->out_sink, wm);
}

static int fire_timers(weir__inst_t *in, int dom, weir_ts_t limit)
{
    weir_ts_t when;
    int rc;

    while (weir__timers_pop(in->timers[dom], limit, &when, &in->key_buf,
                            &in->ns_buf) == WEIR_OK) {
        in->key = WEIR_BUF(in->key_buf.data ? in->key_buf.data : (uint8_t *)"",
                           in->key_buf.len);
        if (in->def->on_timer == NULL)
            continue;
        rc = in->def->on_timer(&in->ctx, in->st, (weir_time_domain_t)dom, when);
        if (rc != WEIR_OK)
            return rc;
    }
    reset_scope(in);
    return WEIR_OK;
}

int weir__inst_watermark(weir__inst_t *in, weir_ts_t wm)
{
    int rc;

    if (wm <= in->wm)
        return WEIR_OK;
    in->wm = wm;
    rc = fire_timers(in, WEIR_TIME_EVENT, wm);
    if (rc != WEIR_OK)
        return rc;
    reset_scope(in);
    if (in->def->on_watermark != NULL) {
        rc = in->def->on_watermark(&in->ctx, in->st, wm);
        if (rc != WEIR_OK)
            return rc;
    }
    /* The final watermark (end of input) always flows on. */
    if ((in->def->flags & WEIR_OP_F_HOLD_WATERMARK) && wm != WEIR_TS_MAX)
        return WEIR_OK;
    return emit_wm(in, wm);
}

static int emit_idle(weir__inst_t *in, int idle)
{
    if (in->out_idle == idle)
        return WEIR_OK;
    in->out_idle = idle;
    if (in->out == NULL || in->out->idle == NULL)
        return WEIR_OK;
    return in->out->idle(in->out_sink, idle);
}

int weir__inst_idle(weir__inst_t *in, int idle)
{
    if (in->def->flags & WEIR_OP_F_HOLD_WATERMARK)
        return WEIR_OK;
    return emit_idle(in, idle);
}

int weir__inst_processing_time(weir__inst_t *in, weir_ts_t now)
{
    return fire_timers(in, WEIR_TIME_PROCESSING, now);
}

int weir__inst_next_processing_timer(weir__inst_t *in, weir_ts_t *when)
{
    return weir__timers_peek(in->timers[WEIR_TIME_PROCESSING], when);
}

int weir__inst_poll(weir__inst_t *in)
{
    reset_scope(in);
    if (in->def->poll == NULL)
        return WEIR_DONE;
    return in->def->poll(&in->ctx, in->st);
}

int weir__inst_complete(weir__inst_t *in, uint64_t id)
{
    reset_scope(in);
    if (in->def->on_checkpoint_complete == NULL)
        return WEIR_OK;
    return in->def->on_checkpoint_complete(&in->ctx, in->st, id);
}

int weir__inst_end(weir__inst_t *in)
{
    reset_scope(in);
    if (in->def->on_end == NULL)
        return WEIR_OK;
    return in->def->on_end(&in->ctx, in->st);
}

int weir__inst_snapshot(weir__inst_t *in, uint64_t id, weir_writer_t *w)
{
    weir_writer_t opw = {{0}};
    int rc = WEIR_OK;

    reset_scope(in);
    if (in->def->snapshot != NULL)
        rc = in->def->snapshot(&in->ctx, in->st, &opw, id);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, SNAP_MAGIC);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, in->wm);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, in->out_wm);
    if (rc == WEIR_OK)
        rc = weir_write_buf(
            w,
            WEIR_BUF(opw.buf.data ? opw.buf.data : (uint8_t *)"", opw.buf.len));
    if (rc == WEIR_OK)
        rc = weir__state_snapshot(in->state, w);
    if (rc == WEIR_OK)
        rc = weir__timers_snapshot(in->timers[0], w);
    if (rc == WEIR_OK)
        rc = weir__timers_snapshot(in->timers[1], w);
    weir__bytes_free(&opw.buf);
    return rc;
}

int weir__inst_restore(weir__inst_t *in, weir_reader_t *r)
{
    uint64_t magic;
    weir_buf_t opbytes;
    weir_reader_t opr;
    int rc;

    rc = weir_read_u64(r, &magic);
    if (rc == WEIR_OK && magic != SNAP_MAGIC)
        rc = WEIR_ECORRUPT;
    if (rc == WEIR_OK)
        rc = weir_read_i64(r, &in->wm);
    if (rc == WEIR_OK)
        rc = weir_read_i64(r, &in->out_wm);
    if (rc == WEIR_OK)
        rc = weir_read_buf(r, &opbytes);
    if (rc == WEIR_OK)
        rc = weir__state_restore(in->state, r);
    if (rc == WEIR_OK)
        rc = weir__timers_restore(in->timers[0], r);
    if (rc == WEIR_OK)
        rc = weir__timers_restore(in->timers[1], r);
    if (rc != WEIR_OK)
        return rc;
    in->restored = 1;
    reset_scope(in);
    if (in->def->restore == NULL)
        return WEIR_OK;
    weir__reader_init(&opr, opbytes.data, opbytes.len);
    return in->def->restore(&in->ctx, in->st, &opr);
}

/* Runs for every forwarded record: the first byte rules out most tags
 * (the built-in ones all differ in it) before a strcmp. */
static int same_tag(const char *a, const char *b)
{
    return a == b || (a[0] == b[0] && strcmp(a, b) == 0);
}

int weir__inst_tag_index(const weir__inst_t *in, const char *tag)
{
    int i;

    if (tag == NULL || same_tag(tag, WEIR_TAG_MAIN) ||
        (in->ntags > 0 && tag == in->tags[0]))
        return 0;
    for (i = 1; i < in->ntags; i++)
        if (same_tag(tag, in->tags[i]))
            return i;
    return -1;
}

/* ------------------------------------------------------------------ *
 * ## Context accessors
 * ------------------------------------------------------------------ */

int weir_ctx_has_output(const weir_ctx_t *ctx, const char *tag)
{
    if (ctx == NULL || tag == NULL || ctx->inst == NULL)
        return 0;
    /* The harness collects every tag. */
    return weir__inst_tag_index(ctx->inst, tag) >= 0 ||
           (ctx->inst->out != NULL && ctx->inst->out->record_named != NULL);
}

const void *weir_ctx_opaque(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->opaque : NULL;
}

int weir_ctx_subtask(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->subtask : WEIR_EINVAL;
}

int weir_ctx_parallelism(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->parallelism : WEIR_EINVAL;
}

const char *weir_ctx_name(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->name : NULL;
}

weir_buf_t weir_ctx_key(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->key : WEIR_BUF_NULL;
}

int weir_ctx_set_key(weir_ctx_t *ctx, weir_buf_t key)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (in == NULL || (key.data == NULL && key.len > 0))
        return WEIR_EINVAL;
    in->key_buf.len = 0;
    if (weir__bytes_append(&in->key_buf, key.data, key.len) != WEIR_OK)
        return WEIR_ENOMEM;
    in->key =
        WEIR_BUF(key.data ? (const void *)in->key_buf.data : NULL, key.len);
    if (key.data != NULL && in->key_buf.data == NULL)
        in->key = WEIR_BUF("", 0);
    return WEIR_OK;
}

weir_buf_t weir_ctx_namespace(const weir_ctx_t *ctx)
{
    if (ctx == NULL)
        return WEIR_BUF_NULL;
    return WEIR_BUF(ctx->inst->ns_buf.data ? ctx->inst->ns_buf.data
                                           : (uint8_t *)"",
                    ctx->inst->ns_buf.len);
}

int weir_ctx_set_namespace(weir_ctx_t *ctx, weir_buf_t ns)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (in == NULL || (ns.data == NULL && ns.len > 0))
        return WEIR_EINVAL;
    if (ns.len <= in->ns_buf.cap) { /* no call out for the common case */
        if (ns.len > 0)
            memmove(in->ns_buf.data, ns.data, ns.len);
        in->ns_buf.len = ns.len;
        return WEIR_OK;
    }
    in->ns_buf.len = 0;
    return weir__bytes_append(&in->ns_buf, ns.data, ns.len);
}

weir_ts_t weir_ctx_watermark(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->wm : WEIR_TS_MIN;
}

int weir_ctx_is_late(const weir_ctx_t *ctx, weir_ts_t ts)
{
    return ctx != NULL && ts <= ctx->inst->wm;
}

const char *weir_ctx_state_dir(weir_ctx_t *ctx)
{
    weir__inst_t *in = ctx_inst(ctx);
    char path[4096];
    int n;

    if (in == NULL || in->ckpt_dir == NULL || in->node < 0)
        return NULL;
    if (in->state_dir != NULL)
        return in->state_dir;
    n = snprintf(path, sizeof(path), "%s/state-n%d-%d", in->ckpt_dir, in->node,
                 in->subtask);
    if (n < 0 || (size_t)n >= sizeof(path) ||
        (mkdir(path, 0755) != 0 && errno != EEXIST))
        return NULL;
    in->state_dir = weir__strdup(path);
    return in->state_dir;
}

weir_waker_t *weir_ctx_waker(weir_ctx_t *ctx)
{
    weir__inst_t *in = ctx_inst(ctx);

    return in != NULL ? &in->waker : NULL;
}

/* Any thread. The exchange keeps a burst of wakes down to one signal per
 * poll: while `pending` is set the source will not wait anyway. */
void weir_waker_wake(weir_waker_t *w)
{
    if (w == NULL || atomic_exchange(&w->pending, 1))
        return;
    if (w->mu == NULL)
        return;
    pthread_mutex_lock(w->mu);
    pthread_cond_broadcast(w->cond);
    pthread_mutex_unlock(w->mu);
}

weir_ts_t weir_ctx_processing_time(const weir_ctx_t *ctx)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (in == NULL)
        return 0;
    if (in->clock != NULL)
        return in->clock(in->clock_arg);
    return weir__now_ms();
}

int weir_ctx_is_restored(const weir_ctx_t *ctx)
{
    return ctx != NULL && ctx->inst->restored;
}

const char *weir_ctx_conf(const weir_ctx_t *ctx, const char *name)
{
    if (ctx == NULL || name == NULL || ctx->inst->conf == NULL)
        return NULL;
    return weir_conf_get(ctx->inst->conf, name);
}

const char *weir_ctx_checkpoint_dir(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->ckpt_dir : NULL;
}

int weir_ctx_error(weir_ctx_t *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    if (ctx == NULL || fmt == NULL)
        return err;
    va_start(ap, fmt);
    vsnprintf(ctx->inst->errstr, sizeof(ctx->inst->errstr), fmt, ap);
    va_end(ap);
    return err;
}

const char *weir_ctx_errstr(const weir_ctx_t *ctx)
{
    return ctx ? ctx->inst->errstr : "";
}

/* ------------------------------------------------------------------ *
 * ## Emitting
 * ------------------------------------------------------------------ */

static int route(weir__inst_t *in, const char *tag, const weir_record_t *rec)
{
    int t = weir__inst_tag_index(in, tag);

    if (t < 0) {
        if (in->out != NULL && in->out->record_named != NULL)
            return in->out->record_named(in->out_sink, tag, rec);
        in->dropped++;
        return WEIR_OK;
    }
    if (in->out == NULL || in->out->record == NULL)
        return WEIR_OK;
    return in->out->record(in->out_sink, t, rec);
}

int weir_emit_to(weir_ctx_t *ctx, const char *tag, weir_record_t *rec)
{
    int rc;

    if (ctx == NULL || rec == NULL) {
        weir_record_destroy(rec);
        return WEIR_EINVAL;
    }
    rc = route(ctx->inst, tag, rec);
    weir_record_destroy(rec);
    return rc;
}

int weir_emit(weir_ctx_t *ctx, weir_record_t *rec)
{
    return weir_emit_to(ctx, NULL, rec);
}

int weir_forward_to(weir_ctx_t *ctx, const char *tag, const weir_record_t *in)
{
    if (ctx == NULL || in == NULL)
        return WEIR_EINVAL;
    return route(ctx->inst, tag, in);
}

int weir_forward_as(weir_ctx_t *ctx, const char *tag, const weir_record_t *in,
                    weir_buf_t key, weir_ts_t ts)
{
    weir_record_t rec;

    if (ctx == NULL || in == NULL || (key.data == NULL && key.len > 0))
        return WEIR_EINVAL;
    rec = *in; /* borrows value and headers for the call */
    rec.owned = 0;
    rec.key = key;
    rec.ts = ts;
    return route(ctx->inst, tag, &rec);
}

int weir_forward_with(weir_ctx_t *ctx, const char *tag, const weir_record_t *in,
                      weir_buf_t key, weir_buf_t value, weir_ts_t ts)
{
    weir_record_t rec;

    if (ctx == NULL || in == NULL || (key.data == NULL && key.len > 0) ||
        (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    rec = *in; /* borrows headers for the call */
    rec.owned = 0;
    rec.key = key;
    rec.value = value;
    rec.ts = ts;
    return route(ctx->inst, tag, &rec);
}

int weir_forward(weir_ctx_t *ctx, const weir_record_t *in)
{
    return weir_forward_to(ctx, NULL, in);
}

int weir_emit_new_to(weir_ctx_t *ctx, const char *tag, weir_buf_t key,
                     weir_buf_t value, weir_ts_t ts)
{
    weir_record_t rec;

    if (ctx == NULL || (key.data == NULL && key.len > 0) ||
        (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    weir__record_init(&rec);
    rec.key = key;
    rec.value = value;
    rec.ts = ts;
    return route(ctx->inst, tag, &rec);
}

int weir_emit_new(weir_ctx_t *ctx, weir_buf_t key, weir_buf_t value,
                  weir_ts_t ts)
{
    return weir_emit_new_to(ctx, NULL, key, value, ts);
}

/* A stack record with its headers in a small array (the heap beyond it). */
int weir_emit_new_headers_to(weir_ctx_t *ctx, const char *tag, weir_buf_t key,
                             weir_buf_t value, weir_ts_t ts,
                             const char *const *names, const weir_buf_t *values,
                             size_t n)
{
    weir__header_t small[EMIT_HEADERS];
    weir__header_t *hs = small;
    weir_record_t rec;
    size_t i;
    int rc;

    if (ctx == NULL || (key.data == NULL && key.len > 0) ||
        (value.data == NULL && value.len > 0) ||
        (n > 0 && (names == NULL || values == NULL)) || n > UINT32_MAX)
        return WEIR_EINVAL;
    for (i = 0; i < n; i++)
        if (names[i] == NULL || (values[i].data == NULL && values[i].len > 0))
            return WEIR_EINVAL;
    if (n > EMIT_HEADERS) {
        hs = weir_malloc(n * sizeof(*hs));
        if (hs == NULL)
            return WEIR_ENOMEM;
    }
    for (i = 0; i < n; i++) {
        hs[i].name = names[i];
        hs[i].value = values[i].data ? values[i] : WEIR_BUF("", 0);
    }
    weir__record_init(&rec);
    rec.key = key;
    rec.value = value;
    rec.ts = ts;
    rec.headers = n > 0 ? hs : NULL;
    rec.nheaders = (uint32_t)n;
    rc = route(ctx->inst, tag, &rec);
    if (hs != small)
        weir_free(hs);
    return rc;
}

int weir_forward_error(weir_ctx_t *ctx, const weir_record_t *in,
                       const char *fmt, ...)
{
    char reason[512];
    weir__header_t *hs;
    weir_record_t rec;
    va_list ap;
    int rc;

    if (ctx == NULL || in == NULL || fmt == NULL)
        return WEIR_EINVAL;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    hs = weir_malloc((in->nheaders + 1) * sizeof(*hs));
    if (hs == NULL)
        return WEIR_ENOMEM;
    if (in->nheaders > 0)
        memcpy(hs, in->headers, in->nheaders * sizeof(*hs));
    hs[in->nheaders].name = WEIR_HDR_ERROR;
    hs[in->nheaders].value = WEIR_BUF(reason, strlen(reason));
    rec = *in;
    rec.owned = 0;
    rec.headers = hs;
    rec.nheaders = in->nheaders + 1;
    rc = route(ctx->inst, WEIR_TAG_ERRORS, &rec);
    weir_free(hs);
    return rc;
}

int weir_emit_watermark(weir_ctx_t *ctx, weir_ts_t wm)
{
    if (ctx == NULL)
        return WEIR_EINVAL;
    return emit_wm(ctx->inst, wm);
}

int weir_emit_idle(weir_ctx_t *ctx, int idle)
{
    if (ctx == NULL || (idle != 0 && idle != 1))
        return WEIR_EINVAL;
    return emit_idle(ctx->inst, idle);
}

/* ------------------------------------------------------------------ *
 * ## Keyed state
 * ------------------------------------------------------------------ */

static weir_buf_t cur_ns(const weir__inst_t *in)
{
    return WEIR_BUF(in->ns_buf.data ? in->ns_buf.data : (uint8_t *)"",
                    in->ns_buf.len);
}

static int state_args_ok(const weir_ctx_t *ctx, const char *name)
{
    return ctx != NULL && name != NULL;
}

int weir_state_get(weir_ctx_t *ctx, const char *name, weir_buf_t *value)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name) || value == NULL)
        return WEIR_EINVAL;
    return weir__state_get(in->state, 'v', name, in->key, cur_ns(in),
                           WEIR_BUF_NULL, value);
}

int weir_state_put(weir_ctx_t *ctx, const char *name, weir_buf_t value)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name) || (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    return weir__state_put(in->state, 'v', name, in->key, cur_ns(in),
                           WEIR_BUF_NULL, value);
}

int weir_state_del(weir_ctx_t *ctx, const char *name)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name))
        return WEIR_EINVAL;
    return weir__state_del(in->state, 'v', name, in->key, cur_ns(in),
                           WEIR_BUF_NULL);
}

int weir_state_get_i64(weir_ctx_t *ctx, const char *name, int64_t *value)
{
    weir_buf_t b;
    int rc;

    if (value == NULL)
        return WEIR_EINVAL;
    rc = weir_state_get(ctx, name, &b);
    if (rc != WEIR_OK)
        return rc;
    if (b.len != sizeof(int64_t))
        return WEIR_ECORRUPT;
    memcpy(value, b.data, sizeof(int64_t));
    return WEIR_OK;
}

int weir_state_put_i64(weir_ctx_t *ctx, const char *name, int64_t value)
{
    return weir_state_put(ctx, name, WEIR_BUF(&value, sizeof(value)));
}

int weir_map_get(weir_ctx_t *ctx, const char *name, weir_buf_t map_key,
                 weir_buf_t *value)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name) || value == NULL ||
        (map_key.data == NULL && map_key.len > 0))
        return WEIR_EINVAL;
    return weir__state_get(in->state, 'm', name, in->key, cur_ns(in), map_key,
                           value);
}

int weir_map_put(weir_ctx_t *ctx, const char *name, weir_buf_t map_key,
                 weir_buf_t value)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name) ||
        (map_key.data == NULL && map_key.len > 0) ||
        (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    return weir__state_put(in->state, 'm', name, in->key, cur_ns(in), map_key,
                           value);
}

int weir_map_del(weir_ctx_t *ctx, const char *name, weir_buf_t map_key)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name) || (map_key.data == NULL && map_key.len > 0))
        return WEIR_EINVAL;
    return weir__state_del(in->state, 'm', name, in->key, cur_ns(in), map_key);
}

int weir_map_iter(weir_ctx_t *ctx, const char *name, weir_map_iter_fn fn,
                  void *opaque)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (!state_args_ok(ctx, name) || fn == NULL)
        return WEIR_EINVAL;
    return weir__state_map_iter(in->state, name, in->key, cur_ns(in), fn,
                                opaque);
}

int weir_state_keys(weir_ctx_t *ctx, const char *name, weir_key_iter_fn fn,
                    void *opaque)
{
    if (!state_args_ok(ctx, name) || fn == NULL)
        return WEIR_EINVAL;
    return weir__state_keys(ctx->inst->state, name, fn, opaque);
}

/* ------------------------------------------------------------------ *
 * ## Timers
 * ------------------------------------------------------------------ */

int weir_timer_set(weir_ctx_t *ctx, weir_time_domain_t dom, weir_ts_t when)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (in == NULL || (dom != WEIR_TIME_EVENT && dom != WEIR_TIME_PROCESSING))
        return WEIR_EINVAL;
    return weir__timers_set(in->timers[dom], when, in->key, cur_ns(in));
}

int weir_timer_del(weir_ctx_t *ctx, weir_time_domain_t dom, weir_ts_t when)
{
    weir__inst_t *in = ctx_inst(ctx);

    if (in == NULL || (dom != WEIR_TIME_EVENT && dom != WEIR_TIME_PROCESSING))
        return WEIR_EINVAL;
    return weir__timers_del(in->timers[dom], when, in->key, cur_ns(in));
}
