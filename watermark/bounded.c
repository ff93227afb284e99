/*
 * watermark/bounded.c - the bounded out-of-orderness generator
 * (weir_watermark_bounded).
 *
 * A stream whose records arrive at most B ms out of order: once a record
 * with timestamp t has been seen, no record with a timestamp below t - B
 * is expected any more.
 *
 * How it works
 *   on_event keeps the largest timestamp seen (maxTs); on_periodic, at
 *   each emission point of the cadence, proposes maxTs - B, clamped at
 *   WEIR_TS_MIN so that a huge B or an early negative timestamp cannot
 *   overflow. The assigner (strategy.c) emits the proposal only when it
 *   is above the last watermark, which gives W := max(W, maxTs - B).
 *
 * Invariants
 *   - The state block is plain data (snapshotted as raw bytes).
 *   - No proposal before the first record: W stays at -infinity.
 */
#include <weir.h>
#include <weir/watermark.h>

#include "assigner.h"

struct bounded_state {
    weir_ts_t max_ts; /* largest timestamp seen        */
    int64_t seen;     /* 1 once a record has been seen */
};

static int bounded_on_event(void *st, const weir_record_t *rec, weir_ts_t ts,
                            weir_ts_t *wm, const void *opaque)
{
    struct bounded_state *b = st;

    (void)rec;
    (void)wm;
    (void)opaque;
    if (!b->seen || ts > b->max_ts) {
        b->max_ts = ts;
        b->seen = 1;
    }
    return 0;
}

static int bounded_on_periodic(void *st, weir_ts_t *wm, const void *opaque)
{
    const struct bounded_state *b = st;
    const weir_watermark_t *strategy = opaque;

    if (!b->seen)
        return 0;
    *wm = weir__watermark_sub(b->max_ts, strategy->bound);
    return 1;
}

const weir_watermark_def_t weir__watermark_bounded_def = {
    .version = WEIR_WATERMARK_VERSION,
    .name = "bounded",
    .state_size = sizeof(struct bounded_state),
    .on_event = bounded_on_event,
    .on_periodic = bounded_on_periodic,
};

weir_watermark_t *weir_watermark_bounded(weir_ts_t max_ooo)
{
    weir_watermark_t *wm;

    if (max_ooo < 0)
        return NULL;
    wm = weir__watermark_new(&weir__watermark_bounded_def);
    if (wm == NULL)
        return NULL;
    wm->bound = max_ooo;
    return wm;
}
