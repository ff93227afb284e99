/*
 * examples/custom_watermark.h - "skew_guard", a watermark generator that
 * is not fooled by a clock running far ahead. Included by
 * examples/custom_watermark.c and tests/unit/test_examples.c;
 * docs/guide/writing-a-watermark.md walks through it.
 *
 * What it computes
 *   Like bounded out-of-orderness B (W = maxTs - B), except that a
 *   timestamp more than `max_jump` ms ahead of the largest accepted one
 *   does not move maxTs. One device with a clock a day ahead would
 *   otherwise push the watermark a day forward, and every later record
 *   of every other device would be late.
 *
 * How it works
 *   on_event sees each record's timestamp and updates maxTs in the state
 *   block; it never emits by itself (it returns 0). on_periodic, called
 *   at each emission point of the assigner (every N records and/or every
 *   T ms, weir_watermark_set_every/_set_interval), proposes maxTs - B.
 *   The assigner keeps watermarks from going backwards.
 *
 * Invariants
 *   - struct skew_guard_state is plain data: the assigner snapshots it as
 *     raw bytes, so it holds no pointers.
 *   - The first timestamp seen is accepted as is: the guard can only
 *     judge a jump against something it has already seen.
 *   - No arithmetic overflows, whatever the timestamps; a negative
 *     argument counts as 0.
 */
#ifndef EXAMPLES_CUSTOM_WATERMARK_H
#define EXAMPLES_CUSTOM_WATERMARK_H

#include <weir.h>
#include <weir/watermark.h>

/** Arguments of skew_guard, passed as the opaque of
 * weir_watermark_custom(); borrowed, must outlive the pipeline. */
struct skew_guard_args {
    weir_ts_t max_ooo;  /* B: bounded out-of-orderness (>= 0)       */
    weir_ts_t max_jump; /* larger forward jumps are ignored (>= 0) */
};

/* The state block (state_size bytes, zeroed by the assigner). */
struct skew_guard_state {
    weir_ts_t max_ts; /* largest accepted timestamp      */
    int seen;         /* 1 once max_ts holds a timestamp */
};

static int skew_guard_on_event(void *st, const weir_record_t *rec, weir_ts_t ts,
                               weir_ts_t *wm, const void *opaque)
{
    const struct skew_guard_args *args = opaque;
    struct skew_guard_state *s = st;

    (void)rec;
    (void)wm; /* never emits from here */
    if (ts == WEIR_TS_MIN)
        return 0; /* no timestamp: nothing to learn */
    if (!s->seen) {
        s->max_ts = ts;
        s->seen = 1;
    } else if (ts > s->max_ts && args->max_jump >= 0 &&
               (uint64_t)ts - (uint64_t)s->max_ts <= (uint64_t)args->max_jump) {
        s->max_ts = ts;
    }
    return 0;
}

static int skew_guard_on_periodic(void *st, weir_ts_t *wm, const void *opaque)
{
    const struct skew_guard_args *args = opaque;
    const struct skew_guard_state *s = st;
    weir_ts_t bound = args->max_ooo > 0 ? args->max_ooo : 0;

    if (!s->seen || s->max_ts < WEIR_TS_MIN + bound)
        return 0; /* no candidate yet */
    *wm = s->max_ts - bound;
    return 1;
}

static const weir_watermark_def_t skew_guard = {
    .version = WEIR_WATERMARK_VERSION,
    .name = "skew_guard",
    .state_size = sizeof(struct skew_guard_state),
    .on_event = skew_guard_on_event,
    .on_periodic = skew_guard_on_periodic,
};

#endif /* EXAMPLES_CUSTOM_WATERMARK_H */
