/*
 * watermark/ascending.c - the ascending-timestamps generator
 * (weir_watermark_ascending): bounded out-of-orderness with B = 0, for
 * streams whose timestamps never decrease.
 *
 * How it works
 *   The same rule as bounded.c with B = 0: on_event keeps the largest
 *   timestamp seen, on_periodic proposes it. A record with a smaller
 *   timestamp than one already seen is not an error here; it simply does
 *   not move the watermark (and is late for event-time operators
 *   downstream).
 *
 * Invariants
 *   - The state block is plain data (snapshotted as raw bytes).
 *   - No proposal before the first record.
 */
#include <weir.h>
#include <weir/watermark.h>

#include "assigner.h"

struct ascending_state {
    weir_ts_t max_ts; /* largest timestamp seen        */
    int64_t seen;     /* 1 once a record has been seen */
};

static int ascending_on_event(void *st, const weir_record_t *rec, weir_ts_t ts,
                              weir_ts_t *wm, const void *opaque)
{
    struct ascending_state *s = st;

    (void)rec;
    (void)wm;
    (void)opaque;
    if (!s->seen || ts > s->max_ts) {
        s->max_ts = ts;
        s->seen = 1;
    }
    return 0;
}

static int ascending_on_periodic(void *st, weir_ts_t *wm, const void *opaque)
{
    const struct ascending_state *s = st;

    (void)opaque;
    if (!s->seen)
        return 0;
    *wm = s->max_ts;
    return 1;
}

const weir_watermark_def_t weir__watermark_ascending_def = {
    .version = WEIR_WATERMARK_VERSION,
    .name = "ascending",
    .state_size = sizeof(struct ascending_state),
    .on_event = ascending_on_event,
    .on_periodic = ascending_on_periodic,
};

weir_watermark_t *weir_watermark_ascending(void)
{
    return weir__watermark_new(&weir__watermark_ascending_def);
}
