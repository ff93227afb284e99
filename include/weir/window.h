/*
 * weir/window.h - window specs, aggregates, the window operator and
 * deduplication scopes.
 *
 * Semantics (docs/design/time-model.md, Flink's definitions):
 *   tumbling S:   [floor(ts/S)*S, +S), floor division (negative ts work)
 *   sliding S/D:  every [k*D, k*D+S) containing ts
 *   session G:    each record opens [ts, ts+G); windows of a key that
 *                 intersect (a.start <= b.end && a.end >= b.start) merge
 *   A window's max timestamp is end-1; it fires when W >= end-1; with
 *   allowed lateness L its state is kept until W >= end-1+L, and later
 *   records for it re-fire it; a record none of whose windows is still
 *   kept goes to the side output WEIR_TAG_LATE.
 *
 * Window results are records with key = the window's key, value = the
 * aggregate's result bytes, ts = end-1, and the headers
 * WEIR_HDR_WINDOW_START / WEIR_HDR_WINDOW_END (decimal text).
 */
#ifndef WEIR_WINDOW_H
#define WEIR_WINDOW_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WEIR_HDR_WINDOW_START "weir.window.start"
#define WEIR_HDR_WINDOW_END   "weir.window.end"

typedef enum weir_window_kind {
    WEIR_WINDOW_TUMBLING = 1,
    WEIR_WINDOW_SLIDING = 2,
    WEIR_WINDOW_SESSION = 3,
    WEIR_WINDOW_ROLLING = 4 /* dedup scope only: entry lives R after first */
} weir_window_kind_t;

typedef enum weir_trigger_kind {
    WEIR_TRIGGER_EVENT_TIME = 0, /* fire at W >= end-1, re-fire when late  */
    WEIR_TRIGGER_COUNT = 1,      /* fire every n records added            */
    WEIR_TRIGGER_EARLY = 2       /* event time + every T ms processing    */
} weir_trigger_kind_t;

/* ------------------------------------------------------------------ *
 * ## Window specs. Constructors return NULL for invalid arguments (size,
 * slide or gap <= 0; slide > size). The spec is owned by the caller until
 * a consuming call (weir_stream_window, weir_stream_dedup_scope, the
 * harness constructors) takes it.
 * ------------------------------------------------------------------ */

WEIR_EXTERN weir_window_t *weir_window_tumbling(weir_ts_t size);
WEIR_EXTERN weir_window_t *weir_window_sliding(weir_ts_t size, weir_ts_t slide);
WEIR_EXTERN weir_window_t *weir_window_session(weir_ts_t gap);
/** @brief Rolling dedup scope (ttl >= 0); not valid for aggregation. */
WEIR_EXTERN weir_window_t *weir_window_rolling(weir_ts_t ttl);

/** @brief Allowed lateness L >= 0 (default 0). */
WEIR_EXTERN int weir_window_set_lateness(weir_window_t *w, weir_ts_t lateness);
/** @brief Count trigger: fire every n (>0) records added to a window,
 * instead of on the watermark. State is still dropped at end-1+L. */
WEIR_EXTERN int weir_window_set_trigger_count(weir_window_t *w, uint64_t n);
/** @brief Event-time trigger plus early firings every `interval` ms
 * (>0) of processing time while the window has unfired records. */
WEIR_EXTERN int weir_window_set_trigger_early(weir_window_t *w,
                                              weir_ts_t interval);
/** @brief A copy of the spec. NULL when out of memory. */
WEIR_EXTERN weir_window_t *weir_window_dup(const weir_window_t *w);
WEIR_EXTERN void weir_window_destroy(weir_window_t *w);

/* Accessors (for operators implementing window policy). */
WEIR_EXTERN weir_window_kind_t weir_window_kind(const weir_window_t *w);
WEIR_EXTERN weir_ts_t weir_window_size(const weir_window_t *w);  /* S, G, R */
WEIR_EXTERN weir_ts_t weir_window_slide(const weir_window_t *w); /* D (=S)  */
WEIR_EXTERN weir_ts_t weir_window_lateness(const weir_window_t *w);
WEIR_EXTERN weir_trigger_kind_t weir_window_trigger(const weir_window_t *w,
                                                    int64_t *param);

/** @brief Floor division: the start of the tumbling/sliding window of
 * size/slide `step` containing ts (correct for negative ts). */
WEIR_EXTERN weir_ts_t weir_window_floor(weir_ts_t ts, weir_ts_t step);

/** @brief Reads the window bounds of a window result record. */
WEIR_EXTERN int weir_record_window(const weir_record_t *rec, weir_ts_t *start,
                                   weir_ts_t *end);

/* ------------------------------------------------------------------ *
 * ## Aggregates (incremental: add / merge / result)
 * ------------------------------------------------------------------ */

/** A growable accumulator, owned by the window operator. */
typedef struct weir_acc_s weir_acc_t;
WEIR_EXTERN void *weir_acc_data(weir_acc_t *acc);
WEIR_EXTERN size_t weir_acc_len(const weir_acc_t *acc);
/** @brief Resizes the accumulator; new bytes are zero. */
WEIR_EXTERN int weir_acc_resize(weir_acc_t *acc, size_t len);
/** @brief Replaces the accumulator's bytes with a copy of b. */
WEIR_EXTERN int weir_acc_set(weir_acc_t *acc, weir_buf_t b);

#define WEIR_AGGREGATE_VERSION 1

/**
 * @brief An incremental aggregate. The accumulator starts as acc_size zero
 * bytes (then init, if set). add folds one record in; merge folds another
 * accumulator in (required for session windows); result writes the
 * output value into `out` (initially empty).
 * A negative return from add sends the record to the window operator's
 * WEIR_TAG_ERRORS output with the reason; it never fails the task.
 * @remark Ownership: the def and opaque are borrowed; they must outlive
 * the pipeline. Callbacks may run on several threads at once (one per
 * subtask), each with its own accumulators.
 */
struct weir_aggregate_def {
    int version; /* WEIR_AGGREGATE_VERSION           */
    const char *name;
    size_t acc_size; /* initial accumulator size (bytes) */
    int (*init)(weir_acc_t *acc, const void *opaque);
    int (*add)(weir_acc_t *acc, const weir_record_t *rec, const void *opaque);
    int (*merge)(weir_acc_t *acc, weir_buf_t other, const void *opaque);
    int (*result)(weir_buf_t acc, weir_acc_t *out, const void *opaque);
};

/*
 * Built-in aggregates. Results are decimal text ("42") for count, sum,
 * min and max; first and last give the value bytes of the first/last
 * record added (by arrival order). sum, min and max read a signed 64-bit
 * decimal integer: from the header named by agg_opaque (a `const char *`),
 * or from the record value when agg_opaque is NULL; a record without a
 * valid integer goes to the errors output. sum wraps around on overflow.
 */
WEIR_EXTERN extern const weir_aggregate_def_t weir_agg_count;
WEIR_EXTERN extern const weir_aggregate_def_t weir_agg_sum;
WEIR_EXTERN extern const weir_aggregate_def_t weir_agg_min;
WEIR_EXTERN extern const weir_aggregate_def_t weir_agg_max;
WEIR_EXTERN extern const weir_aggregate_def_t weir_agg_first;
WEIR_EXTERN extern const weir_aggregate_def_t weir_agg_last;

/**
 * @brief A full-window function: called when a window fires with every
 * record of the window in arrival order (borrowed for the call). Emit
 * results through ctx (weir_emit_new, ...).
 */
typedef int (*weir_window_fn)(weir_ctx_t *ctx, weir_buf_t key, weir_ts_t start,
                              weir_ts_t end, const weir_record_t *const *recs,
                              size_t n, void *opaque);

/**
 * @brief Keyed window aggregation. Side outputs: WEIR_TAG_LATE (records
 * too late for every window), WEIR_TAG_ERRORS (records add() rejected).
 * @param w consumed.
 * @remark Ownership: agg and agg_opaque borrowed, must outlive the
 * pipeline.
 */
WEIR_EXTERN weir_stream_t *weir_stream_window(weir_stream_t *s,
                                              weir_window_t *w,
                                              const weir_aggregate_def_t *agg,
                                              const void *agg_opaque);

/** @brief Keyed windows with a full-window function. w consumed; opaque
 * borrowed. */
WEIR_EXTERN weir_stream_t *weir_stream_window_apply(weir_stream_t *s,
                                                    weir_window_t *w,
                                                    weir_window_fn fn,
                                                    void *opaque);

/* ------------------------------------------------------------------ *
 * ## The window operator as an operator def, for driving it directly
 * (weir_harness_new(&weir_op_window, op), custom builders). The stream
 * functions above are built on exactly this.
 * ------------------------------------------------------------------ */

/** The arguments of one window operator: spec, aggregate or function. */
typedef struct weir_window_op_s weir_window_op_t;

/**
 * @brief Window operator arguments for an incremental aggregate.
 * @param w consumed (on success and on failure).
 * @returns NULL for invalid arguments (NULL w or agg, a rolling scope, a
 * session window with an aggregate without merge, an aggregate of another
 * version or without add/result) with the reason in errstr (may be NULL),
 * or when out of memory.
 * @remark Ownership: the caller owns the result until
 * weir_window_op_destroy(); agg and agg_opaque are borrowed and must
 * outlive it. Once built, it is read-only and may be shared by every
 * subtask of the operator.
 */
WEIR_EXTERN weir_window_op_t *
weir_window_op_new(weir_window_t *w, const weir_aggregate_def_t *agg,
                   const void *agg_opaque, char *errstr, size_t errstr_size);

/**
 * @brief Window operator arguments for a full-window function.
 * @param w consumed (on success and on failure).
 * @returns NULL for invalid arguments (NULL w or fn, a rolling scope) with
 * the reason in errstr (may be NULL), or when out of memory.
 * @remark Ownership: as weir_window_op_new(); opaque is borrowed.
 */
WEIR_EXTERN weir_window_op_t *
weir_window_op_new_apply(weir_window_t *w, weir_window_fn fn, void *opaque,
                         char *errstr, size_t errstr_size);

/** @brief Frees window operator arguments. NULL is a no-op. Only once no
 * operator instance uses them any more. */
WEIR_EXTERN void weir_window_op_destroy(weir_window_op_t *op);

/** The generic keyed window operator (WEIR_OP_F_KEYED); opaque = a
 * weir_window_op_t (borrowed). */
WEIR_EXTERN extern const weir_operator_def_t weir_op_window;

/* ------------------------------------------------------------------ *
 * ## Deduplication (DESIGN §4). Main output: unique records; side
 * outputs WEIR_TAG_DUPLICATE and WEIR_TAG_LATE. Every record is
 * classified against the watermark as it stood before it.
 * ------------------------------------------------------------------ */

/** @brief Rolling dedup with ttl R and no lateness, on a keyed stream. */
WEIR_EXTERN weir_stream_t *weir_stream_dedup(weir_stream_t *s, weir_ts_t ttl);

/** @brief Dedup with a scope made by weir_window_rolling/tumbling/session
 * (lateness from weir_window_set_lateness). scope consumed. */
WEIR_EXTERN weir_stream_t *weir_stream_dedup_scope(weir_stream_t *s,
                                                   weir_window_t *scope);

#ifdef __cplusplus
}
#endif
#endif /* WEIR_WINDOW_H */
