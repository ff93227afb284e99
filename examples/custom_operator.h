/*
 * examples/custom_operator.h - "burst_detector", a keyed operator with
 * keyed state, event-time timers, side outputs and operator-local state.
 * It is included by examples/custom_operator.c (a runnable pipeline) and
 * by tests/unit/test_examples.c (harness tests), so that the program and
 * its tests run the same code. docs/guide/writing-an-operator.md walks
 * through it.
 *
 * What it computes
 *   For each key, the first on-time event, at time t, opens an episode
 *   that covers the event times [t, t + gap). The episode closes when the
 *   watermark reaches t + gap - 1; if at that moment more than
 *   `threshold` events of the key have arrived since the episode opened,
 *   one alert is emitted: key = the key, value = the event count as
 *   decimal text, timestamp = t + gap - 1. The next event of the key
 *   opens a new episode.
 *
 * How it works
 *   - Keyed value state "count" holds the number of events of the open
 *     episode; "count" absent means no episode is open. The runtime
 *     scopes it to the current key, checkpoints it and restores it.
 *   - The first event of an episode sets an event-time timer at
 *     t + gap - 1. When the watermark passes it, on_timer runs with the
 *     timer's key as the current key, reads "count", deletes it and
 *     maybe emits the alert.
 *   - A record with ts <= the current watermark is late: it goes to the
 *     WEIR_TAG_LATE side output and is not counted. This also guarantees
 *     that every timer is set in the future.
 *   - A record without a timestamp, or one so close to WEIR_TS_MAX that
 *     ts + gap would overflow, goes to WEIR_TAG_ERRORS with a reason.
 *   - The operator-local block (struct burst_stats) counts alerts and
 *     late records of this subtask. It is not keyed, so the runtime
 *     cannot checkpoint it: snapshot/restore write and read it. At the
 *     end of input, on_end emits the totals to the side output
 *     BURST_TAG_SUMMARY as "alerts=<n> late=<n>".
 *
 * Invariants
 *   - "count" exists for a key exactly when a timer is pending for it.
 *   - Callbacks of one instance never run concurrently (operator.h), so
 *     struct burst_stats needs no locking.
 *
 * Everything is static: each program that includes this file gets its
 * own copy of the operator.
 */
#ifndef EXAMPLES_CUSTOM_OPERATOR_H
#define EXAMPLES_CUSTOM_OPERATOR_H

#include <stdio.h>

#include <weir.h>
#include <weir/operator.h>

#define BURST_TAG_SUMMARY "summary" /* side output of on_end's totals */

/** Arguments of burst_detector, passed as the opaque of
 * weir_stream_apply(); borrowed, must outlive the pipeline. */
struct burst_args {
    int64_t threshold; /* alert when count > threshold (>= 0)  */
    weir_ts_t gap;     /* episode length in ms of event time (> 0) */
};

/* Operator-local state of one subtask (the `st` block). */
struct burst_stats {
    uint64_t alerts; /* alerts emitted by this subtask     */
    uint64_t late;   /* records sent to WEIR_TAG_LATE      */
};

static int burst_open(weir_ctx_t *ctx, void *st)
{
    const struct burst_args *args = weir_ctx_opaque(ctx);

    (void)st;
    if (args == NULL || args->threshold < 0 || args->gap <= 0)
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "burst_detector: needs threshold >= 0 and "
                              "gap > 0");
    return WEIR_OK;
}

static int burst_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    const struct burst_args *args = weir_ctx_opaque(ctx);
    struct burst_stats *stats = st;
    weir_ts_t ts = weir_record_ts(in);
    int64_t count = 0;
    int rc;

    if (ts == WEIR_TS_MIN)
        return weir_forward_error(ctx, in, "record has no timestamp");
    if (ts > WEIR_TS_MAX - args->gap)
        return weir_forward_error(ctx, in, "timestamp %lld out of range",
                                  (long long)ts);
    if (weir_ctx_is_late(ctx, ts)) {
        stats->late++;
        return weir_forward_to(ctx, WEIR_TAG_LATE, in);
    }

    rc = weir_state_get_i64(ctx, "count", &count);
    if (rc == WEIR_ENOENT) {
        /* No open episode for this key: open one. */
        rc = weir_timer_set(ctx, WEIR_TIME_EVENT, ts + args->gap - 1);
        count = 0;
    }
    if (rc != WEIR_OK)
        return rc;
    return weir_state_put_i64(ctx, "count", count + 1);
}

static int burst_on_timer(weir_ctx_t *ctx, void *st, weir_time_domain_t dom,
                          weir_ts_t when)
{
    const struct burst_args *args = weir_ctx_opaque(ctx);
    struct burst_stats *stats = st;
    int64_t count = 0;
    char text[24];
    int rc;

    (void)dom; /* only event-time timers are set */
    rc = weir_state_get_i64(ctx, "count", &count);
    if (rc != WEIR_OK)
        return rc;
    rc = weir_state_del(ctx, "count");
    if (rc != WEIR_OK || count <= args->threshold)
        return rc;

    stats->alerts++;
    snprintf(text, sizeof(text), "%lld", (long long)count);
    return weir_emit_new(ctx, weir_ctx_key(ctx), WEIR_BUF_STR(text), when);
}

static int burst_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                          uint64_t checkpoint_id)
{
    const struct burst_stats *stats = st;
    int rc;

    (void)ctx;
    (void)checkpoint_id;
    rc = weir_write_u64(w, stats->alerts);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, stats->late);
    return rc;
}

static int burst_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct burst_stats *stats = st;
    int rc;

    (void)ctx;
    rc = weir_read_u64(r, &stats->alerts);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &stats->late);
    return rc;
}

static int burst_on_end(weir_ctx_t *ctx, void *st)
{
    const struct burst_stats *stats = st;
    char text[64];

    snprintf(text, sizeof(text), "alerts=%llu late=%llu",
             (unsigned long long)stats->alerts,
             (unsigned long long)stats->late);
    return weir_emit_new_to(ctx, BURST_TAG_SUMMARY, WEIR_BUF_NULL,
                            WEIR_BUF_STR(text), weir_ctx_watermark(ctx));
}

static const weir_operator_def_t burst_detector = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "burst_detector",
    .flags = WEIR_OP_F_KEYED,
    .state_size = sizeof(struct burst_stats),
    .open = burst_open,
    .process = burst_process,
    .on_timer = burst_on_timer,
    .snapshot = burst_snapshot,
    .restore = burst_restore,
    .on_end = burst_on_end,
    /* on_watermark NULL: due timers fire, then the runtime forwards the
     * watermark. close NULL: open allocates nothing. */
};

#endif /* EXAMPLES_CUSTOM_OPERATOR_H */
