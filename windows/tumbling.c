/*
 * windows/tumbling.c - the tumbling window assigner.
 *
 * A tumbling window of size S holds the timestamps of one slot
 * [floor(ts/S)*S, floor(ts/S)*S + S). Floor division (not C's truncating
 * division) keeps negative timestamps in the right slot: with S = 10,
 * ts = -1 belongs to [-10, 0), not to [0, 10).
 *
 * How it works
 *
 * assign() computes the one window with weir_window_floor() and hands it
 * to the visitor. Tumbling windows never merge.
 *
 * Invariants
 *   - exactly one window per record; start <= ts < end, except at the
 *     very top of the time line, where end saturates at WEIR_TS_MAX
 *     (a record stamped WEIR_TS_MAX lands in the last, clipped window).
 */
#include "assigner.h"

static int tumbling_assign(weir_ts_t size, weir_ts_t slide, weir_ts_t ts,
                           weir__span_fn visit, void *arg)
{
    weir__span_t win;

    (void)slide;
    win.start = weir_window_floor(ts, size);
    win.end = weir__ts_add(win.start, size);
    return visit(win, arg);
}

const weir__assigner_t weir__assigner_tumbling = {
    .name = "tumbling",
    .merging = 0,
    .assign = tumbling_assign,
};
