/*
 * watermark/assigner.h - shared between the files of watermark/: the
 * strategy object (weir_watermark_t), the assigner's per-subtask state and
 * the built-in generator defs.
 *
 * Nothing here is public. The files of watermark/ include only public
 * headers plus this one; the runtime never sees it.
 */
#ifndef WEIR_WATERMARK_ASSIGNER_H
#define WEIR_WATERMARK_ASSIGNER_H

#include <weir.h>
#include <weir/operator.h>
#include <weir/watermark.h>

/*
 * A strategy: which generator, its arguments, and the cadence. Built-in
 * generators get the strategy itself as their opaque and read their
 * arguments (bound, punctuation callback) from it; a custom generator
 * gets the opaque its author passed.
 */
struct weir_watermark_s {
    const weir_watermark_def_t *def; /* the generator                    */
    const void *opaque;              /* passed to def's callbacks        */
    uint64_t every;                  /* count cadence N (0 = off)        */
    weir_ts_t interval;              /* time cadence T ms (0 = off)      */
    weir_ts_t idle_timeout;          /* idleness after ms (0 = off)      */
    weir_ts_t bound;                 /* bounded: max out-of-orderness B  */
    weir_punctuated_fn punct_fn;     /* punctuated: the user's callback  */
    void *punct_opaque;              /* punctuated: its opaque           */
};

/*
 * The assigner's state block (weir_op_watermark.state_size bytes, zeroed
 * by the runtime). Timer fields hold the `when` of the one timer of each
 * kind the assigner considers current; a processing-time timer that fires
 * with another `when` is stale (for example one restored by the runtime
 * from an older run) and is ignored.
 */
struct weir__assigner {
    const weir_watermark_def_t *def; /* copied from the strategy         */
    const void *def_opaque;          /* copied from the strategy         */
    uint64_t every;                  /* count cadence N (0 = off)        */
    weir_ts_t interval;              /* time cadence T (0 = off)         */
    weir_ts_t idle_timeout;          /* idleness timeout (0 = off)       */
    void *gen_st;                    /* generator state, state_size B    */
    weir_ts_t wm;                    /* last watermark emitted (W)       */
    weir_ts_t max_ts;                /* largest timestamp seen           */
    uint64_t count;                  /* records seen (mod nothing)       */
    weir_ts_t tick_at;               /* pending cadence timer            */
    int tick_armed;                  /* tick_at is set                   */
    weir_ts_t idle_at;               /* pending idleness timer           */
    int idle_armed;                  /* idle_at is set                   */
    weir_ts_t last_record_pt;        /* processing time of last record   */
    int idle;                        /* idle marker currently sent       */
};

/* Built-in generators (bounded.c, ascending.c, punctuated.c). */
extern const weir_watermark_def_t weir__watermark_bounded_def;
extern const weir_watermark_def_t weir__watermark_ascending_def;
extern const weir_watermark_def_t weir__watermark_punctuated_def;

/* A strategy for def with default cadence (every record), owned by the
 * caller. opaque is set to the strategy itself. NULL when out of memory. */
weir_watermark_t *weir__watermark_new(const weir_watermark_def_t *def);

/* a - b, clamped to [WEIR_TS_MIN, WEIR_TS_MAX] (b >= 0). */
weir_ts_t weir__watermark_sub(weir_ts_t a, weir_ts_t b);

/* Idleness (idle.c). Called from open/restore, for every record, and for
 * every processing-time timer. Each returns WEIR_OK or a negative code. */
int weir__idle_start(weir_ctx_t *ctx, struct weir__assigner *a);
int weir__idle_on_record(weir_ctx_t *ctx, struct weir__assigner *a);
int weir__idle_on_timer(weir_ctx_t *ctx, struct weir__assigner *a,
                        weir_ts_t when);

#endif /* WEIR_WATERMARK_ASSIGNER_H */
