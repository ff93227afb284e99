/*
 * watermark/strategy.c - the watermark strategy object (weir_watermark_t)
 * and the assigner operator (weir_op_watermark) that runs it.
 *
 * A strategy names a generator (a weir_watermark_def_t: bounded,
 * ascending, punctuated or custom) and a cadence: every N records, every
 * T ms of processing time, and an optional idle timeout. The assigner is
 * an ordinary operator written against weir/operator.h; one instance runs
 * per subtask, each with its own generator state.
 *
 * How it works
 *   process: the generator's on_event sees the record first (a punctuated
 *   generator may ask for a watermark there); the record is forwarded
 *   unchanged; then the watermark it caused, if any, is emitted, so a
 *   record always travels ahead of the watermark it produced. After every
 *   N-th record the generator's on_periodic gives the current candidate.
 *   on_timer: a processing-time timer every T ms asks on_periodic too,
 *   and re-arms itself on a grid of T ms; idleness has its own timer
 *   (idle.c).
 *   A candidate is emitted only when it is above the last watermark
 *   emitted (W), so watermarks never go backwards and never repeat.
 *   The assigner holds the watermark (WEIR_OP_F_HOLD_WATERMARK): upstream
 *   watermarks are ignored; the runtime sends the final +infinity at the
 *   end of input itself.
 *   snapshot/restore: W, the largest timestamp seen, the record count and
 *   the generator's state block (raw bytes), so that a restored assigner
 *   emits exactly what the original would have. Timers are not part of
 *   the snapshot: processing time restarts with the process, so restore
 *   arms fresh ones, as open does.
 *
 * Invariants
 *   - a->wm only increases, and every value emitted is a->wm.
 *   - At most one cadence timer and one idleness timer are current
 *     (tick_at, idle_at); other processing-time timers are stale.
 *   - The strategy outlives every assigner (the pipeline or harness owns
 *     it); the assigner copies what it needs at open.
 */
#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>
#include <weir/watermark.h>

#include "assigner.h"

#define SNAPSHOT_VERSION 1

/* ------------------------------------------------------------------ *
 * ## The strategy object
 * ------------------------------------------------------------------ */

weir_watermark_t *weir__watermark_new(const weir_watermark_def_t *def)
{
    weir_watermark_t *wm;

    wm = weir_calloc(1, sizeof(*wm));
    if (wm == NULL)
        return NULL;
    wm->def = def;
    wm->opaque = wm;
    wm->every = 1;
    return wm;
}

weir_ts_t weir__watermark_sub(weir_ts_t a, weir_ts_t b)
{
    if (b >= 0 && a < WEIR_TS_MIN + b)
        return WEIR_TS_MIN;
    if (b < 0 && a > WEIR_TS_MAX + b)
        return WEIR_TS_MAX;
    return a - b;
}

weir_watermark_t *weir_watermark_custom(const weir_watermark_def_t *def,
                                        const void *opaque)
{
    weir_watermark_t *wm;

    if (def == NULL || def->version != WEIR_WATERMARK_VERSION)
        return NULL;
    if (def->on_event == NULL && def->on_periodic == NULL)
        return NULL;
    wm = weir__watermark_new(def);
    if (wm == NULL)
        return NULL;
    wm->opaque = opaque;
    return wm;
}

int weir_watermark_set_every(weir_watermark_t *wm, uint64_t n)
{
    if (wm == NULL)
        return WEIR_EINVAL;
    wm->every = n;
    return WEIR_OK;
}

int weir_watermark_set_interval(weir_watermark_t *wm, weir_ts_t ms)
{
    if (wm == NULL || ms < 0)
        return WEIR_EINVAL;
    wm->interval = ms;
    return WEIR_OK;
}

int weir_watermark_set_idle_timeout(weir_watermark_t *wm, weir_ts_t ms)
{
    if (wm == NULL || ms < 0)
        return WEIR_EINVAL;
    wm->idle_timeout = ms;
    return WEIR_OK;
}

void weir_watermark_destroy(weir_watermark_t *wm)
{
    weir_free(wm);
}

static void destroy_strategy(void *ptr)
{
    weir_watermark_destroy(ptr);
}

/* ------------------------------------------------------------------ *
 * ## The assigner operator
 * ------------------------------------------------------------------ */

/* Emits cand when it moves W forward. */
static int advance(weir_ctx_t *ctx, struct weir__assigner *a, weir_ts_t cand)
{
    if (cand <= a->wm)
        return WEIR_OK;
    a->wm = cand;
    return weir_emit_watermark(ctx, cand);
}

/* An emission point of the cadence: ask the generator for a candidate. */
static int periodic(weir_ctx_t *ctx, struct weir__assigner *a)
{
    weir_ts_t cand;
    int rc;

    if (a->def->on_periodic == NULL)
        return WEIR_OK;
    cand = WEIR_TS_MIN;
    rc = a->def->on_periodic(a->gen_st, &cand, a->def_opaque);
    if (rc < 0)
        return weir_ctx_error(ctx, rc, "watermark generator %s failed",
                              a->def->name ? a->def->name : "?");
    if (rc == 0)
        return WEIR_OK;
    return advance(ctx, a, cand);
}

static int arm_tick(weir_ctx_t *ctx, struct weir__assigner *a, weir_ts_t when)
{
    int rc;

    rc = weir_timer_set(ctx, WEIR_TIME_PROCESSING, when);
    if (rc != WEIR_OK)
        return rc;
    a->tick_at = when;
    a->tick_armed = 1;
    return WEIR_OK;
}

/* Arms the timers a fresh (or freshly restored) instance needs. */
static int start_timers(weir_ctx_t *ctx, struct weir__assigner *a)
{
    weir_ts_t now;
    int rc;

    now = weir_ctx_processing_time(ctx);
    if (a->interval > 0) {
        rc = arm_tick(ctx, a, weir__watermark_sub(now, -a->interval));
        if (rc != WEIR_OK)
            return rc;
    }
    if (a->idle_timeout > 0)
        return weir__idle_start(ctx, a);
    return WEIR_OK;
}

static int wm_open(weir_ctx_t *ctx, void *st)
{
    struct weir__assigner *a = st;
    const weir_watermark_t *wm;

    wm = weir_ctx_opaque(ctx);
    if (wm == NULL || wm->def == NULL)
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "watermark assigner without a strategy");
    a->def = wm->def;
    a->def_opaque = wm->opaque;
    a->every = wm->every;
    a->interval = wm->interval;
    a->idle_timeout = wm->idle_timeout;
    a->wm = WEIR_TS_MIN;
    a->max_ts = WEIR_TS_MIN;
    if (a->def->state_size > 0) {
        a->gen_st = weir_calloc(1, a->def->state_size);
        if (a->gen_st == NULL)
            return WEIR_ENOMEM;
    }
    return start_timers(ctx, a);
}

static void wm_close(weir_ctx_t *ctx, void *st)
{
    struct weir__assigner *a = st;

    (void)ctx;
    weir_free(a->gen_st);
    a->gen_st = NULL;
}

static int wm_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct weir__assigner *a = st;
    weir_ts_t ts;
    weir_ts_t cand;
    int fire;
    int rc;

    if (a->idle_timeout > 0) {
        rc = weir__idle_on_record(ctx, a);
        if (rc != WEIR_OK)
            return rc;
    }
    ts = weir_record_ts(in);
    fire = 0;
    cand = WEIR_TS_MIN;
    if (a->def->on_event != NULL) {
        fire = a->def->on_event(a->gen_st, in, ts, &cand, a->def_opaque);
        if (fire < 0)
            return weir_forward_error(ctx, in,
                                      "watermark generator %s rejected the "
                                      "record: %s",
                                      a->def->name ? a->def->name : "?",
                                      weir_strerror(fire));
    }
    if (ts > a->max_ts)
        a->max_ts = ts;
    rc = weir_forward(ctx, in);
    if (rc != WEIR_OK)
        return rc;
    if (fire > 0) {
        rc = advance(ctx, a, cand);
        if (rc != WEIR_OK)
            return rc;
    }
    a->count++;
    if (a->every > 0 && a->count % a->every == 0)
        return periodic(ctx, a);
    return WEIR_OK;
}

/* The next point of the T grid strictly after now. */
static weir_ts_t next_tick(weir_ts_t when, weir_ts_t now, weir_ts_t t)
{
    weir_ts_t steps;

    if (now < when)
        return weir__watermark_sub(when, -t);
    steps = (now - when) / t + 1;
    if (steps > WEIR_TS_MAX / t)
        return WEIR_TS_MAX;
    return weir__watermark_sub(when, -(steps * t));
}

static int wm_on_timer(weir_ctx_t *ctx, void *st, weir_time_domain_t dom,
                       weir_ts_t when)
{
    struct weir__assigner *a = st;
    weir_ts_t now;
    int rc;

    if (dom != WEIR_TIME_PROCESSING)
        return WEIR_OK;
    if (a->tick_armed && when == a->tick_at) {
        a->tick_armed = 0;
        rc = periodic(ctx, a);
        if (rc != WEIR_OK)
            return rc;
        now = weir_ctx_processing_time(ctx);
        rc = arm_tick(ctx, a, next_tick(when, now, a->interval));
        if (rc != WEIR_OK)
            return rc;
    }
    if (a->idle_timeout > 0)
        return weir__idle_on_timer(ctx, a, when);
    return WEIR_OK;
}

static int wm_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                       uint64_t checkpoint_id)
{
    struct weir__assigner *a = st;
    int rc;

    (void)ctx;
    (void)checkpoint_id;
    rc = weir_write_u64(w, SNAPSHOT_VERSION);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, a->wm);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, a->max_ts);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, a->count);
    if (rc == WEIR_OK)
        rc = weir_write_buf(w, WEIR_BUF(a->gen_st, a->def->state_size));
    return rc;
}

static int wm_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct weir__assigner *a = st;
    uint64_t version;
    weir_buf_t gen;
    int rc;

    rc = weir_read_u64(r, &version);
    if (rc != WEIR_OK)
        return rc;
    if (version != SNAPSHOT_VERSION)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "watermark snapshot version %llu unknown",
                              (unsigned long long)version);
    rc = weir_read_i64(r, &a->wm);
    if (rc == WEIR_OK)
        rc = weir_read_i64(r, &a->max_ts);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &a->count);
    if (rc == WEIR_OK)
        rc = weir_read_buf(r, &gen);
    if (rc != WEIR_OK)
        return rc;
    if (gen.len != a->def->state_size)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "watermark generator state is %zu bytes, "
                              "expected %zu",
                              gen.len, a->def->state_size);
    if (gen.len > 0)
        memcpy(a->gen_st, gen.data, gen.len);
    a->idle = 0;
    return start_timers(ctx, a);
}

const weir_operator_def_t weir_op_watermark = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "watermark",
    .flags = WEIR_OP_F_HOLD_WATERMARK,
    .state_size = sizeof(struct weir__assigner),
    .open = wm_open,
    .process = wm_process,
    .on_timer = wm_on_timer,
    .snapshot = wm_snapshot,
    .restore = wm_restore,
    .close = wm_close,
};

/* ------------------------------------------------------------------ *
 * ## Builder and harness
 * ------------------------------------------------------------------ */

weir_stream_t *weir_stream_watermark(weir_stream_t *s, weir_watermark_t *wm)
{
    int rc;

    if (s == NULL) {
        weir_watermark_destroy(wm);
        return NULL;
    }
    if (!weir_stream_ok(s)) {
        weir_watermark_destroy(wm);
        return s;
    }
    if (wm == NULL)
        return weir_stream_error(s, WEIR_EINVAL,
                                 "weir_stream_watermark: no strategy");
    rc = weir_pipeline_attach(weir_stream_pipeline(s), wm, destroy_strategy);
    if (rc != WEIR_OK)
        return weir_stream_error(s, rc, "weir_stream_watermark: out of memory");
    return weir_stream_apply(s, &weir_op_watermark, wm);
}

weir_harness_t *weir_harness_new_watermark(weir_watermark_t *wm)
{
    weir_harness_t *h;

    if (wm == NULL)
        return NULL;
    h = weir_harness_new(&weir_op_watermark, wm);
    if (h == NULL) {
        weir_watermark_destroy(wm);
        return NULL;
    }
    if (weir_harness_attach(h, wm, destroy_strategy) != WEIR_OK) {
        weir_harness_destroy(h);
        return NULL;
    }
    return h;
}
