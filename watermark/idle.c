/*
 * watermark/idle.c - idleness detection for the watermark assigner.
 *
 * An input that has had no record for the idle timeout I (processing
 * time) is marked idle (weir_emit_idle(ctx, 1)), and downstream operators
 * leave it out of their watermark minimum, so one silent partition does
 * not stall event time everywhere. The next record marks it active again
 * (weir_emit_idle(ctx, 0)) before that record is forwarded.
 *
 * How it works
 *   One processing-time timer at a time, at idle_at. Records do not move
 *   the timer (that would cost a timer update per record); they only note
 *   their processing time. When the timer fires, either I has passed
 *   since the last record, and the output is marked idle (no timer until
 *   the next record), or it has not, and the timer is re-armed at
 *   last record + I. The timer is armed at open too, so an input that
 *   never sees a record becomes idle after I.
 *
 * Invariants
 *   - idle_armed implies a processing-time timer at idle_at; a timer with
 *     another `when` is stale and ignored.
 *   - Idle and active markers alternate, starting with idle.
 */
#include <weir.h>
#include <weir/operator.h>

#include "assigner.h"

static int arm(weir_ctx_t *ctx, struct weir__assigner *a, weir_ts_t when)
{
    int rc;

    rc = weir_timer_set(ctx, WEIR_TIME_PROCESSING, when);
    if (rc != WEIR_OK)
        return rc;
    a->idle_at = when;
    a->idle_armed = 1;
    return WEIR_OK;
}

int weir__idle_start(weir_ctx_t *ctx, struct weir__assigner *a)
{
    a->last_record_pt = weir_ctx_processing_time(ctx);
    a->idle = 0;
    return arm(ctx, a,
               weir__watermark_sub(a->last_record_pt, -a->idle_timeout));
}

int weir__idle_on_record(weir_ctx_t *ctx, struct weir__assigner *a)
{
    int rc;

    a->last_record_pt = weir_ctx_processing_time(ctx);
    if (a->idle) {
        rc = weir_emit_idle(ctx, 0);
        if (rc != WEIR_OK)
            return rc;
        a->idle = 0;
    }
    if (!a->idle_armed)
        return arm(ctx, a,
                   weir__watermark_sub(a->last_record_pt, -a->idle_timeout));
    return WEIR_OK;
}

int weir__idle_on_timer(weir_ctx_t *ctx, struct weir__assigner *a,
                        weir_ts_t when)
{
    weir_ts_t now;
    weir_ts_t due;
    int rc;

    if (!a->idle_armed || when != a->idle_at)
        return WEIR_OK;
    a->idle_armed = 0;
    now = weir_ctx_processing_time(ctx);
    due = weir__watermark_sub(a->last_record_pt, -a->idle_timeout);
    if (now < due)
        return arm(ctx, a, due);
    if (a->idle)
        return WEIR_OK;
    rc = weir_emit_idle(ctx, 1);
    if (rc != WEIR_OK)
        return rc;
    a->idle = 1;
    return WEIR_OK;
}
