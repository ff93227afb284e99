/*
 * watermark/punctuated.c - the punctuated generator
 * (weir_watermark_punctuated): records themselves carry watermarks (an
 * end-of-batch marker, a heartbeat event, a header).
 *
 * How it works
 *   on_event calls the user's callback for every record; when it returns
 *   1 the watermark it wrote is proposed at once, and the assigner emits
 *   it right after forwarding the record, if it is above the last one
 *   (a punctuation never moves the watermark backwards). There is no
 *   periodic proposal, so the count and time cadences have no effect.
 *   A negative return rejects the record: the assigner sends it to the
 *   errors output with the reason.
 *
 * Invariants
 *   - No state block: everything the callback needs is in its opaque.
 */
#include <weir.h>
#include <weir/watermark.h>

#include "assigner.h"

static int punctuated_on_event(void *st, const weir_record_t *rec, weir_ts_t ts,
                               weir_ts_t *wm, const void *opaque)
{
    const weir_watermark_t *strategy = opaque;
    int rc;

    (void)st;
    (void)ts;
    rc = strategy->punct_fn(rec, wm, strategy->punct_opaque);
    if (rc < 0)
        return rc;
    return rc > 0 ? 1 : 0;
}

const weir_watermark_def_t weir__watermark_punctuated_def = {
    .version = WEIR_WATERMARK_VERSION,
    .name = "punctuated",
    .state_size = 0,
    .on_event = punctuated_on_event,
    .on_periodic = NULL,
};

weir_watermark_t *weir_watermark_punctuated(weir_punctuated_fn fn, void *opaque)
{
    weir_watermark_t *wm;

    if (fn == NULL)
        return NULL;
    wm = weir__watermark_new(&weir__watermark_punctuated_def);
    if (wm == NULL)
        return NULL;
    wm->punct_fn = fn;
    wm->punct_opaque = opaque;
    return wm;
}
