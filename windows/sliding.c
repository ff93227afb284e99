/*
 * windows/sliding.c - the sliding window assigner.
 *
 * A sliding window of size S and slide D starts at every multiple of D;
 * a timestamp belongs to every [k*D, k*D + S) containing it, that is to
 * about S/D windows (exactly ceil(S/D) or floor(S/D) of them when D does
 * not divide S).
 *
 * How it works
 *
 * assign() starts from the latest window start at or before ts,
 * floor(ts/D)*D, and walks back by D while the window still contains ts
 * (start + S > ts), visiting each window. Walking is allocation free,
 * whatever S/D is. Sliding windows never merge.
 *
 * Invariants
 *   - windows are visited most recent first, each exactly once;
 *   - no arithmetic overflows: ends saturate at WEIR_TS_MAX and the walk
 *     stops before a start would fall below WEIR_TS_MIN.
 */
#include "assigner.h"

static int sliding_assign(weir_ts_t size, weir_ts_t slide, weir_ts_t ts,
                          weir__span_fn visit, void *arg)
{
    weir__span_t win;
    weir_ts_t start;
    int rc;

    start = weir_window_floor(ts, slide);
    for (;;) {
        win.start = start;
        win.end = weir__ts_add(start, size);
        if (win.end <= ts && win.end != WEIR_TS_MAX)
            break;
        rc = visit(win, arg);
        if (rc < 0)
            return rc;
        if (start < WEIR_TS_MIN + slide)
            break;
        start -= slide;
    }
    return WEIR_OK;
}

const weir__assigner_t weir__assigner_sliding = {
    .name = "sliding",
    .merging = 0,
    .assign = sliding_assign,
};
