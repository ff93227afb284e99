/*
 * weir/watermark.h - watermark strategies.
 *
 * A strategy is attached with weir_stream_watermark(). The assigner it
 * creates passes every record through unchanged and emits watermarks:
 *
 *   bounded out-of-orderness B: W starts at -infinity; at each emission
 *   point W := max(W, maxTs - B), maxTs the largest timestamp seen so far.
 *   ascending: bounded with B = 0.
 *   punctuated: a user callback looks at each record and may return a
 *   watermark to emit at once.
 *
 * Emission cadence: every N records (default N = 1; deterministic for
 * files) and/or every T ms of processing time (for live sources). Only
 * records reaching the assigner count (error records are routed away
 * before it). With an idle timeout, an input that has had no record for
 * that long is marked idle and left out of downstream watermark minimums
 * until it has data again. Watermarks never go backwards.
 */
#ifndef WEIR_WATERMARK_H
#define WEIR_WATERMARK_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEIR_WATERMARK_VERSION 1

/**
 * @brief A watermark generator. `st` is a zeroed block of state_size bytes
 * owned by the assigner (snapshotted as raw bytes: keep it plain data).
 * on_event sees every record with its timestamp; it returns 1 and sets *wm
 * to emit a watermark immediately (punctuated), else 0. on_periodic
 * returns 1 and sets *wm to the current candidate at each emission point,
 * or 0 when it has none yet.
 * @remark Ownership: def and opaque borrowed, must outlive the pipeline.
 */
typedef struct weir_watermark_def {
    int version; /* WEIR_WATERMARK_VERSION */
    const char *name;
    size_t state_size;
    int (*on_event)(void *st, const weir_record_t *rec, weir_ts_t ts,
                    weir_ts_t *wm, const void *opaque);
    int (*on_periodic)(void *st, weir_ts_t *wm, const void *opaque);
} weir_watermark_def_t;

/** @brief Punctuation callback: return 1 and set *wm when rec carries a
 * watermark, else 0. */
typedef int (*weir_punctuated_fn)(const weir_record_t *rec, weir_ts_t *wm,
                                  void *opaque);

/* Constructors return NULL on invalid arguments or out of memory. The
 * caller owns the strategy until weir_stream_watermark() consumes it. */
WEIR_EXTERN weir_watermark_t *weir_watermark_bounded(weir_ts_t max_ooo);
WEIR_EXTERN weir_watermark_t *weir_watermark_ascending(void);
WEIR_EXTERN weir_watermark_t *weir_watermark_punctuated(weir_punctuated_fn fn,
                                                        void *opaque);
WEIR_EXTERN weir_watermark_t *
weir_watermark_custom(const weir_watermark_def_t *def, const void *opaque);

/** @brief Emit every n (>= 1) records; 0 turns count cadence off. */
WEIR_EXTERN int weir_watermark_set_every(weir_watermark_t *wm, uint64_t n);
/** @brief Emit every `ms` (> 0) of processing time; 0 turns it off. */
WEIR_EXTERN int weir_watermark_set_interval(weir_watermark_t *wm, weir_ts_t ms);
/** @brief Mark the stream idle after `ms` (> 0) without records; 0 off. */
WEIR_EXTERN int weir_watermark_set_idle_timeout(weir_watermark_t *wm,
                                                weir_ts_t ms);
WEIR_EXTERN void weir_watermark_destroy(weir_watermark_t *wm);

/** The assigner operator; opaque = the weir_watermark_t (borrowed). */
WEIR_EXTERN extern const weir_operator_def_t weir_op_watermark;

#ifdef __cplusplus
}
#endif
#endif /* WEIR_WATERMARK_H */
