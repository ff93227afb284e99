/*
 * weir/operator.h - writing operators: the vtable, the context, emitting,
 * keyed state, timers and snapshots.
 *
 * Built-in operators (windows, dedup, watermark assigners, file and Kafka
 * connectors) are written against exactly this header.
 *
 * Runtime guarantees
 *   - All callbacks of one operator instance (one subtask) run on one
 *     thread and never concurrently, timers included.
 *   - Order: open; restore when recovering; then any interleaving of
 *     process, on_timer, on_watermark, snapshot, on_checkpoint_complete
 *     (and poll, for sources); then on_end when every input has ended;
 *     then close, exactly once whenever open succeeded (also on failure
 *     or cancel).
 *   - The watermark only moves forward. It is the minimum over all
 *     non-idle inputs. Every event-time timer with when <= wm fires first,
 *     in order of `when`; then on_watermark runs; then the runtime forwards
 *     wm downstream, so results fired by a watermark arrive ahead of it.
 *     An operator with WEIR_OP_F_HOLD_WATERMARK forwards watermarks itself
 *     with weir_emit_watermark(); the final watermark (+infinity, end of
 *     input) is forwarded by the runtime in any case.
 *   - Barriers are never seen as records. When checkpoint barrier n is
 *     aligned on all inputs, snapshot(..., n) is called with no process
 *     call in between; managed keyed state and timers are snapshotted by
 *     the runtime; then the barrier is forwarded.
 *   - A negative return from a callback fails the task; the pipeline stops
 *     and, when restarted, recovers from the last completed checkpoint.
 *     Operators never call exit() or abort().
 *   - If a function that takes a callback returns an error, the callback
 *     is never called (a failed weir_timer_set() means no on_timer).
 *
 * Records passed to callbacks are borrowed until the callback returns.
 */
#ifndef WEIR_OPERATOR_H
#define WEIR_OPERATOR_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added prefetch; tables of version 1 are still accepted. */
#define WEIR_OPERATOR_VERSION 2

typedef struct weir_writer_s weir_writer_t; /* snapshot output stream */
typedef struct weir_reader_s weir_reader_t; /* snapshot input stream  */
typedef struct weir_waker_s weir_waker_t;   /* ends a source's idle wait */

/** @brief The two clocks: event time (watermarks) and processing time
 * (the wall clock, or the harness's manual clock). */
typedef enum weir_time_domain {
    WEIR_TIME_EVENT = 0,
    WEIR_TIME_PROCESSING = 1
} weir_time_domain_t;

#define WEIR_OP_F_KEYED          (1u << 0) /* needs a keyed input          */
#define WEIR_OP_F_HOLD_WATERMARK (1u << 1) /* forwards watermarks itself   */
#define WEIR_OP_F_SINGLE         (1u << 2) /* parallelism is always 1      */

/**
 * @brief The method table of an operator. Fill it with designated
 * initializers; every callback is optional unless noted. Return WEIR_OK
 * or a negative WEIR_E* code.
 * @remark Ownership: the runtime borrows the def; it must outlive every
 * pipeline using it (a `static const` is typical).
 */
struct weir_operator_def {
    int version;       /* WEIR_OPERATOR_VERSION                        */
    const char *name;  /* for logs, metrics, snapshot files            */
    unsigned flags;    /* WEIR_OP_F_*                                  */
    size_t state_size; /* zeroed block passed as `st`; 0 = none        */

    /** Called once per subtask before anything else. */
    int (*open)(weir_ctx_t *ctx, void *st);
    /** Required for non-sources. `in` is borrowed until return. */
    int (*process)(weir_ctx_t *ctx, void *st, const weir_record_t *in);
    /** After all timers <= wm have fired; wm never decreases. */
    int (*on_watermark)(weir_ctx_t *ctx, void *st, weir_ts_t wm);
    /** A timer fired; weir_ctx_key()/weir_ctx_namespace() are the timer's. */
    int (*on_timer)(weir_ctx_t *ctx, void *st, weir_time_domain_t dom,
                    weir_ts_t when);
    /** Operator-local (non-keyed) state only; keyed state is automatic. */
    int (*snapshot)(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                    uint64_t checkpoint_id);
    /** After open, when recovering; reads what snapshot wrote. */
    int (*restore)(weir_ctx_t *ctx, void *st, weir_reader_t *r);
    /** Called exactly once if open succeeded, also on failure/cancel. */
    void (*close)(weir_ctx_t *ctx, void *st);
    /**
     * Sources only (a def with poll is a source): emit some records and
     * return WEIR_OK to be called again, WEIR_IDLE when nothing is
     * available now (the runtime waits up to "source.idle.wait.ms"),
     * WEIR_DONE at the end of input, or a negative code.
     */
    int (*poll)(weir_ctx_t *ctx, void *st);
    /** Checkpoint n is complete everywhere: commit what was pre-committed
     * for n (sinks). Runs on the operator's thread. */
    int (*on_checkpoint_complete)(weir_ctx_t *ctx, void *st,
                                  uint64_t checkpoint_id);
    /** Every input has ended (after the final watermark); flush. */
    int (*on_end)(weir_ctx_t *ctx, void *st);
    /**
     * Optional (version 2), a hint: `in` will be processed soon, under
     * key_by key `key` (what weir_ctx_key() will return then). Called on
     * the operator's thread a few records ahead, for records that arrive
     * in a batch from another task; `in` and `key` stay valid until in's
     * own process call returns. Lets an operator start the memory loads
     * that record will need (e.g. __builtin_prefetch of a hash table
     * slot) or compute something that depends only on the record. It
     * cannot fail, emit or change what the operator outputs; a record may
     * also be processed without having been prefetched.
     */
    void (*prefetch)(void *st, const weir_record_t *in, weir_buf_t key);
};

/* ------------------------------------------------------------------ *
 * ## Context. Valid only inside callbacks of its own instance, on that
 * instance's thread.
 * ------------------------------------------------------------------ */

/** @brief The opaque given to weir_stream_apply()/weir_stream_source(). */
WEIR_EXTERN const void *weir_ctx_opaque(const weir_ctx_t *ctx);
/** @brief This subtask's index (0..parallelism-1) and the parallelism. */
WEIR_EXTERN int weir_ctx_subtask(const weir_ctx_t *ctx);
WEIR_EXTERN int weir_ctx_parallelism(const weir_ctx_t *ctx);
/** @brief The operator's name. Borrowed for the life of the instance. */
WEIR_EXTERN const char *weir_ctx_name(const weir_ctx_t *ctx);

/**
 * @brief The current key: the key of the record being processed (on a
 * keyed stream, the key_by key), or of the timer that fired.
 * WEIR_BUF_NULL outside keyed scope. Borrowed until the callback returns.
 */
WEIR_EXTERN weir_buf_t weir_ctx_key(const weir_ctx_t *ctx);

/**
 * @brief Sets the current key for state and timer calls, e.g. to visit
 * other keys from on_watermark. Copied; lasts until the callback returns.
 */
WEIR_EXTERN int weir_ctx_set_key(weir_ctx_t *ctx, weir_buf_t key);

/** @brief The current state/timer namespace (empty by default). */
WEIR_EXTERN weir_buf_t weir_ctx_namespace(const weir_ctx_t *ctx);
/** @brief Sets the namespace for later state and timer calls (copied);
 * reset to empty before every callback. */
WEIR_EXTERN int weir_ctx_set_namespace(weir_ctx_t *ctx, weir_buf_t ns);

/** @brief The current input watermark (WEIR_TS_MIN before the first). */
WEIR_EXTERN weir_ts_t weir_ctx_watermark(const weir_ctx_t *ctx);
/** @brief 1 when ts <= the current watermark, else 0. */
WEIR_EXTERN int weir_ctx_is_late(const weir_ctx_t *ctx, weir_ts_t ts);
/** @brief Processing time in ms (wall clock; the harness's manual clock). */
WEIR_EXTERN weir_ts_t weir_ctx_processing_time(const weir_ctx_t *ctx);

/**
 * @brief This instance's waker (borrowed; valid until the instance is
 * freed, i.e. after its close returns). Sources hand it to whatever
 * learns first that input has arrived (a client library's callback, an
 * I/O thread) so that a poll that returned WEIR_IDLE is followed by the
 * next poll at once instead of after "source.idle.wait.ms". NULL only
 * when ctx is NULL.
 */
WEIR_EXTERN weir_waker_t *weir_ctx_waker(weir_ctx_t *ctx);

/**
 * @brief Ends the source's current idle wait, or makes its next one
 * return at once. Thread-safe: any thread may call it, any number of
 * times (cheap when a wake is already pending); not async-signal-safe.
 * A no-op for instances that are not sources and for w == NULL.
 */
WEIR_EXTERN void weir_waker_wake(weir_waker_t *w);

/**
 * @brief A directory private to this instance inside the checkpoint
 * directory, for files that outlive one checkpoint (incremental
 * snapshots whose checkpoints refer to files written earlier). Named by
 * the instance's place in the pipeline, so a restarted pipeline finds the
 * same one; created on the first call. The operator owns its content and
 * deletes what no retained checkpoint needs. NULL when checkpointing is
 * off, in the test harness, or when it cannot be created. Borrowed for
 * the life of the instance; call on the instance's thread.
 */
WEIR_EXTERN const char *weir_ctx_state_dir(weir_ctx_t *ctx);

/**
 * @brief 1 when the instance's output `tag` is connected (a stream was
 * taken from it with weir_stream_side_output(), or tag is the main
 * output; in the test harness, any tag), else 0; 0 for NULL arguments.
 * Lets an operator skip work for an output nobody reads (a
 * WEIR_TAG_CHANGELOG). Call on the instance's thread.
 */
WEIR_EXTERN int weir_ctx_has_output(const weir_ctx_t *ctx, const char *tag);

/** @brief 1 when the instance was restored from a checkpoint. */
WEIR_EXTERN int weir_ctx_is_restored(const weir_ctx_t *ctx);

/** @brief A pipeline configuration value (borrowed), or NULL. */
WEIR_EXTERN const char *weir_ctx_conf(const weir_ctx_t *ctx, const char *name);

/** @brief The checkpoint directory of this run, or NULL when
 * checkpointing is off. Borrowed for the life of the instance. */
WEIR_EXTERN const char *weir_ctx_checkpoint_dir(const weir_ctx_t *ctx);

/**
 * @brief Records an error message for the failing task (printf format);
 * returns err so that `return weir_ctx_error(ctx, WEIR_EIO, "...")` works.
 */
WEIR_EXTERN int weir_ctx_error(weir_ctx_t *ctx, int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/** @brief The last message set with weir_ctx_error() ("" if none). */
WEIR_EXTERN const char *weir_ctx_errstr(const weir_ctx_t *ctx);

/* ------------------------------------------------------------------ *
 * ## Emitting. `tag` NULL or WEIR_TAG_MAIN is the main output.
 * ------------------------------------------------------------------ */

/** @brief Emits a record you created. Consumes rec on success and on
 * failure. */
WEIR_EXTERN int weir_emit(weir_ctx_t *ctx, weir_record_t *rec);
WEIR_EXTERN int weir_emit_to(weir_ctx_t *ctx, const char *tag,
                             weir_record_t *rec);

/** @brief Re-emits an input record unchanged (no copy needed by you). */
WEIR_EXTERN int weir_forward(weir_ctx_t *ctx, const weir_record_t *in);
WEIR_EXTERN int weir_forward_to(weir_ctx_t *ctx, const char *tag,
                                const weir_record_t *in);

/**
 * @brief Re-emits an input record with its key and event time replaced
 * (to `tag`; NULL is the main output). Value, headers and source
 * position go on as they are, without a copy: what parsers and timestamp
 * assigners need. key is borrowed for the call.
 * @returns WEIR_OK, WEIR_EINVAL (NULL ctx or in, key.data NULL with
 * key.len > 0) or what emitting returns.
 */
WEIR_EXTERN int weir_forward_as(weir_ctx_t *ctx, const char *tag,
                                const weir_record_t *in, weir_buf_t key,
                                weir_ts_t ts);

/**
 * @brief Like weir_forward_as(), with the value replaced too (borrowed
 * for the call): a record derived from the input that keeps its headers
 * and source position (a WEIR_TAG_CHANGELOG entry, for one).
 * @returns WEIR_OK, WEIR_EINVAL (NULL ctx or in, a NULL data pointer with
 * a length) or what emitting returns.
 */
WEIR_EXTERN int weir_forward_with(weir_ctx_t *ctx, const char *tag,
                                  const weir_record_t *in, weir_buf_t key,
                                  weir_buf_t value, weir_ts_t ts);

/**
 * @brief Forwards an input record to a side output with a WEIR_HDR_ERROR
 * header holding `reason` (printf format); used for the errors output.
 */
WEIR_EXTERN int weir_forward_error(weir_ctx_t *ctx, const weir_record_t *in,
                                   const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/** @brief Emits a new record with copies of key and value. */
WEIR_EXTERN int weir_emit_new(weir_ctx_t *ctx, weir_buf_t key, weir_buf_t value,
                              weir_ts_t ts);
WEIR_EXTERN int weir_emit_new_to(weir_ctx_t *ctx, const char *tag,
                                 weir_buf_t key, weir_buf_t value,
                                 weir_ts_t ts);

/**
 * @brief Emits a new record with copies of key, value and `n` headers
 * (names[i] = values[i], in that order): the same record as
 * weir_record_new() + weir_record_add_header() for each + weir_emit_to(),
 * without allocating a record. Returns WEIR_EINVAL for a NULL ctx, a
 * NULL name, or data NULL with a length > 0 (names/values may be NULL
 * when n == 0).
 * @remark Ownership: every argument is borrowed for the call; whatever
 * the runtime keeps, it copies. Thread-safety: like every ctx call, only
 * on the instance's thread, inside its callbacks.
 */
WEIR_EXTERN int weir_emit_new_headers_to(weir_ctx_t *ctx, const char *tag,
                                         weir_buf_t key, weir_buf_t value,
                                         weir_ts_t ts, const char *const *names,
                                         const weir_buf_t *values, size_t n);

/**
 * @brief Emits a watermark downstream. Only for watermark generators and
 * WEIR_OP_F_HOLD_WATERMARK operators; values not above the last emitted
 * watermark are ignored.
 */
WEIR_EXTERN int weir_emit_watermark(weir_ctx_t *ctx, weir_ts_t wm);

/**
 * @brief Marks this operator's output idle (1) or active again (0):
 * downstream leaves an idle input out of its watermark minimum.
 */
WEIR_EXTERN int weir_emit_idle(weir_ctx_t *ctx, int idle);

/* ------------------------------------------------------------------ *
 * ## Keyed state, scoped to (current key, current namespace, name).
 * Values returned are borrowed until the next weir_state_* / weir_map_*
 * call on this ctx or the end of the callback, whichever comes first.
 * ------------------------------------------------------------------ */

WEIR_EXTERN int weir_state_get(weir_ctx_t *ctx, const char *name,
                               weir_buf_t *value); /* WEIR_ENOENT if none */
WEIR_EXTERN int weir_state_put(weir_ctx_t *ctx, const char *name,
                               weir_buf_t value); /* value copied */
/** @brief Deletes the value; WEIR_ENOENT when there was none. */
WEIR_EXTERN int weir_state_del(weir_ctx_t *ctx, const char *name);
/** @brief An 8-byte value as int64: WEIR_ENOENT when there is none,
 * WEIR_ECORRUPT when the stored value is not 8 bytes. */
WEIR_EXTERN int weir_state_get_i64(weir_ctx_t *ctx, const char *name,
                                   int64_t *value);
WEIR_EXTERN int weir_state_put_i64(weir_ctx_t *ctx, const char *name,
                                   int64_t value);

/** @brief Map state: many (map key -> value) entries under one name. */
WEIR_EXTERN int weir_map_get(weir_ctx_t *ctx, const char *name,
                             weir_buf_t map_key, weir_buf_t *value);
WEIR_EXTERN int weir_map_put(weir_ctx_t *ctx, const char *name,
                             weir_buf_t map_key, weir_buf_t value);
WEIR_EXTERN int weir_map_del(weir_ctx_t *ctx, const char *name,
                             weir_buf_t map_key);

/** @brief Visitor for weir_map_iter(); return 0 to go on, 1 to stop, or a
 * negative code (returned by weir_map_iter). Arguments are borrowed for
 * the call; do not modify the map from inside it. */
typedef int (*weir_map_iter_fn)(weir_buf_t map_key, weir_buf_t value,
                                void *opaque);
/** @brief Visits the entries of a map, in unspecified order. */
WEIR_EXTERN int weir_map_iter(weir_ctx_t *ctx, const char *name,
                              weir_map_iter_fn fn, void *opaque);

/** @brief Visitor for weir_state_keys(): key is borrowed for the call.
 * Return 0 to go on, 1 to stop, or a negative code (returned). */
typedef int (*weir_key_iter_fn)(weir_buf_t key, void *opaque);
/** @brief Visits every key that has value or map state under `name`, once per
 * (key, namespace) holding it; do not modify state from the visitor. */
WEIR_EXTERN int weir_state_keys(weir_ctx_t *ctx, const char *name,
                                weir_key_iter_fn fn, void *opaque);

/* ------------------------------------------------------------------ *
 * ## Timers, scoped to (current key, current namespace). One timer per
 * (domain, key, namespace, when): setting it twice is a no-op.
 * ------------------------------------------------------------------ */

WEIR_EXTERN int weir_timer_set(weir_ctx_t *ctx, weir_time_domain_t dom,
                               weir_ts_t when);
/** @brief Deletes a timer; WEIR_ENOENT when there was none. */
WEIR_EXTERN int weir_timer_del(weir_ctx_t *ctx, weir_time_domain_t dom,
                               weir_ts_t when);

/* ------------------------------------------------------------------ *
 * ## Snapshot streams (operator-local state). Little-endian, length
 * prefixed; readers fail with WEIR_ECORRUPT on short input.
 * ------------------------------------------------------------------ */

WEIR_EXTERN int weir_write_bytes(weir_writer_t *w, const void *data,
                                 size_t len);
WEIR_EXTERN int weir_write_u64(weir_writer_t *w, uint64_t v);
WEIR_EXTERN int weir_write_i64(weir_writer_t *w, int64_t v);
WEIR_EXTERN int weir_write_buf(weir_writer_t *w, weir_buf_t b); /* len+data */

WEIR_EXTERN int weir_read_bytes(weir_reader_t *r, void *data, size_t len);
WEIR_EXTERN int weir_read_u64(weir_reader_t *r, uint64_t *v);
WEIR_EXTERN int weir_read_i64(weir_reader_t *r, int64_t *v);
/** @brief Reads a weir_write_buf() value; *b is borrowed until the reader
 * is gone (the end of restore). */
WEIR_EXTERN int weir_read_buf(weir_reader_t *r, weir_buf_t *b);

#ifdef __cplusplus
}
#endif
#endif /* WEIR_OPERATOR_H */
