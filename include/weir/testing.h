/*
 * weir/testing.h - the single-operator test harness.
 *
 * A harness drives one operator instance by hand, with no threads: push
 * records (with keys and timestamps), push watermarks, move a manual
 * processing-time clock, take checkpoints and restore them into a fresh
 * harness. It collects every output per tag, in order, and every
 * watermark the operator forwards. The same context, keyed state and
 * timer code as the runtime's is used, so what passes here behaves the
 * same in a pipeline.
 *
 * Every function returns the operator's callback result (WEIR_OK or the
 * negative code it returned). A harness is not thread-safe.
 */
#ifndef WEIR_TESTING_H
#define WEIR_TESTING_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weir_harness_s weir_harness_t;
typedef struct weir_snapshot_s weir_snapshot_t;

/**
 * @brief A harness around one instance of def (subtask 0 of 1), already
 * opened. Processing time starts at 0.
 * @remark Ownership: def and opaque borrowed, must outlive the harness.
 * @returns NULL when open failed or out of memory.
 */
WEIR_EXTERN weir_harness_t *weir_harness_new(const weir_operator_def_t *def,
                                             const void *opaque);

/** @brief Like weir_harness_new, as subtask `subtask` of `parallelism`. */
WEIR_EXTERN weir_harness_t *weir_harness_new_ex(const weir_operator_def_t *def,
                                                const void *opaque, int subtask,
                                                int parallelism);

/**
 * @brief Like weir_harness_new, with checkpointing on: the operator sees
 * `checkpoint_dir` (copied) from weir_ctx_checkpoint_dir(), as it would in
 * a pipeline with "checkpoint.dir" set (exactly-once sinks use it).
 */
WEIR_EXTERN weir_harness_t *
weir_harness_new_checkpointed(const weir_operator_def_t *def,
                              const void *opaque, const char *checkpoint_dir);

/** @brief Ties ptr's lifetime to the harness: free_fn(ptr) at destroy.
 * On failure free_fn(ptr) is called at once. */
WEIR_EXTERN int weir_harness_attach(weir_harness_t *h, void *ptr,
                                    void (*free_fn)(void *));

/** @brief A window operator harness. w consumed; agg borrowed. */
WEIR_EXTERN weir_harness_t *
weir_harness_new_window(weir_window_t *w, const weir_aggregate_def_t *agg);
WEIR_EXTERN weir_harness_t *
weir_harness_new_window_ex(weir_window_t *w, const weir_aggregate_def_t *agg,
                           const void *agg_opaque);
/** @brief A dedup harness for a scope (rolling/tumbling/session). scope
 * consumed. */
WEIR_EXTERN weir_harness_t *weir_harness_new_dedup(weir_window_t *scope);
/** @brief A watermark assigner harness. wm consumed. */
WEIR_EXTERN weir_harness_t *weir_harness_new_watermark(weir_watermark_t *wm);

/** @brief Pushes a record; key NULL = no key. Strings copied. */
WEIR_EXTERN int weir_harness_push(weir_harness_t *h, const char *key,
                                  const char *value, weir_ts_t ts);
WEIR_EXTERN int weir_harness_push_buf(weir_harness_t *h, weir_buf_t key,
                                      weir_buf_t value, weir_ts_t ts);
/** @brief Pushes a copy of rec (headers and position included). */
WEIR_EXTERN int weir_harness_push_record(weir_harness_t *h,
                                         const weir_record_t *rec);
/**
 * @brief Pushes copies of recs[0..n) the way the runtime delivers a
 * batch from another task: the operator's prefetch hint (if it has one)
 * runs a few records ahead of process, in order. Stops at the first
 * error. recs borrowed until return.
 */
WEIR_EXTERN int weir_harness_push_batch(weir_harness_t *h,
                                        const weir_record_t *const *recs,
                                        size_t n);
/**
 * @brief Gives the operator's prefetch hint rec alone, as if rec were
 * coming next; then nothing else happens (to test that an operator copes
 * with records processed without their hint, or hints never followed).
 * WEIR_OK, also when the operator takes no hint. rec borrowed until
 * return.
 */
WEIR_EXTERN int weir_harness_prefetch(weir_harness_t *h,
                                      const weir_record_t *rec);
/** @brief Advances the input watermark: fires event timers <= wm in order,
 * then on_watermark. A wm not above the current one is ignored. */
WEIR_EXTERN int weir_harness_watermark(weir_harness_t *h, weir_ts_t wm);
/** @brief Sets the processing-time clock; fires processing timers <= now. */
WEIR_EXTERN int weir_harness_set_processing_time(weir_harness_t *h,
                                                 weir_ts_t now);
/** @brief Calls poll once (sources). Returns WEIR_OK/IDLE/DONE/negative. */
WEIR_EXTERN int weir_harness_poll(weir_harness_t *h);
/** @brief Final watermark (+infinity), then on_end. */
WEIR_EXTERN int weir_harness_end(weir_harness_t *h);

/**
 * @brief Barrier `id`: operator snapshot plus keyed state, timers and the
 * watermark, into a new snapshot owned by the caller.
 */
WEIR_EXTERN int weir_harness_checkpoint(weir_harness_t *h, uint64_t id,
                                        weir_snapshot_t **snap);
/** @brief Delivers on_checkpoint_complete(id). */
WEIR_EXTERN int weir_harness_complete(weir_harness_t *h, uint64_t id);
/** @brief Restores a snapshot into a fresh harness (before any push).
 * snap is borrowed. */
WEIR_EXTERN int weir_harness_restore(weir_harness_t *h,
                                     const weir_snapshot_t *snap);
WEIR_EXTERN void weir_snapshot_destroy(weir_snapshot_t *snap);

/** @brief Number of records collected under tag (NULL = main). */
WEIR_EXTERN size_t weir_harness_count(const weir_harness_t *h, const char *tag);
/** @brief The i-th record collected under tag; borrowed until clear or
 * destroy. NULL when out of range. */
WEIR_EXTERN const weir_record_t *weir_harness_record(const weir_harness_t *h,
                                                     const char *tag, size_t i);
/** @brief The i-th output's value parsed as a decimal int64 (INT64_MIN if
 * absent or not a number). */
WEIR_EXTERN int64_t weir_harness_i64(const weir_harness_t *h, const char *tag,
                                     size_t i);
/** @brief Watermarks the operator forwarded, in order. */
WEIR_EXTERN size_t weir_harness_watermark_count(const weir_harness_t *h);
WEIR_EXTERN weir_ts_t weir_harness_watermark_at(const weir_harness_t *h,
                                                size_t i);
/** @brief The last idle marker emitted (0 active, 1 idle, -1 none). */
WEIR_EXTERN int weir_harness_idle(const weir_harness_t *h);
/** @brief Forgets collected outputs and watermarks. */
WEIR_EXTERN void weir_harness_clear(weir_harness_t *h);
/** @brief Closes the operator (if open) and frees everything. */
WEIR_EXTERN void weir_harness_destroy(weir_harness_t *h);

#ifdef __cplusplus
}
#endif
#endif /* WEIR_TESTING_H */
