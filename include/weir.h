/*
 * weir.h - the public API of weir, an event-time stream processing
 * framework.
 *
 * A program builds a pipeline (weir_pipeline_t) from streams
 * (weir_stream_t): sources, a watermark strategy, key_by, windows, dedup,
 * custom operators, unions, side outputs and sinks; then runs it. Records
 * (weir_record_t) carry key bytes, value bytes, an event timestamp, headers
 * and their source position.
 *
 * Conventions used on every declaration:
 *   - functions that can fail return WEIR_OK or a negative WEIR_E* code;
 *     constructors return NULL and, where details help, write a message
 *     into errstr;
 *   - the builder (weir_stream_*) never returns NULL: the first failure is
 *     recorded on the pipeline, later calls on a poisoned stream do
 *     nothing, weir_pipeline_error() reports it and weir_pipeline_run()
 *     refuses to start;
 *   - a function documented as consuming an argument takes ownership of it
 *     on success and on failure;
 *   - strings and byte buffers passed in are copied unless stated;
 *   - pointers returned are borrowed and live as long as the handle they
 *     came from, unless stated.
 *
 * Records: emitted records are immutable and owned by the runtime. A
 * callback receives `const weir_record_t *` borrowed for the duration of the
 * callback only; to keep anything past it, copy it into keyed state.
 */
#ifndef WEIR_H
#define WEIR_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "weir/errno.h"
#include "weir/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ *
 * ## Time
 * ------------------------------------------------------------------ */

/** Event or processing time, milliseconds since the Unix epoch. */
typedef int64_t weir_ts_t;

#define WEIR_TS_MIN     INT64_MIN /* "no watermark yet" (-infinity)   */
#define WEIR_TS_MAX     INT64_MAX /* final watermark (+infinity)      */
#define WEIR_MILLIS(n)  ((weir_ts_t)(n))
#define WEIR_SECONDS(n) ((weir_ts_t)(n)*1000)
#define WEIR_MINUTES(n) ((weir_ts_t)(n)*60 * 1000)
#define WEIR_HOURS(n)   ((weir_ts_t)(n)*60 * 60 * 1000)
#define WEIR_DAYS(n)    ((weir_ts_t)(n)*24 * 60 * 60 * 1000)

/* ------------------------------------------------------------------ *
 * ## Byte buffers
 * ------------------------------------------------------------------ */

/**
 * @brief A borrowed view of bytes: never owns what it points to.
 * A NULL data pointer with len 0 means "absent" (for example, no key).
 */
typedef struct weir_buf {
    const void *data; /* first byte, or NULL when absent */
    size_t len;       /* number of bytes                 */
} weir_buf_t;

#define WEIR_BUF(p, n)  ((weir_buf_t){(const void *)(p), (size_t)(n)})
#define WEIR_BUF_STR(s) ((weir_buf_t){(const void *)(s), strlen(s)})
#define WEIR_BUF_NULL   ((weir_buf_t){NULL, 0})

/* ------------------------------------------------------------------ *
 * ## Handles
 * ------------------------------------------------------------------ */

typedef struct weir_conf_s weir_conf_t;           /* configuration       */
typedef struct weir_pipeline_s weir_pipeline_t;   /* a job definition    */
typedef struct weir_stream_s weir_stream_t;       /* builder edge        */
typedef struct weir_record_s weir_record_t;       /* one event           */
typedef struct weir_window_s weir_window_t;       /* window spec         */
typedef struct weir_watermark_s weir_watermark_t; /* watermark strategy  */
typedef struct weir_ctx_s weir_ctx_t;             /* operator context    */
typedef struct weir_operator_def weir_operator_def_t;
typedef struct weir_aggregate_def weir_aggregate_def_t;

/* Side-output tags. Any other string names a side output of your own. */
#define WEIR_TAG_MAIN      "main"       /* an operator's main output   */
#define WEIR_TAG_LATE      "late"       /* records behind the lateness */
#define WEIR_TAG_DUPLICATE "duplicates" /* dedup: repeated events      */
#define WEIR_TAG_ERRORS    "errors"     /* undecodable/bad input       */
#define WEIR_TAG_CHANGELOG "changelog"  /* state changes (see below)   */

/* Header set on records sent to WEIR_TAG_ERRORS: the reason, as text. */
#define WEIR_HDR_ERROR "weir.error"

/*
 * State that moves between processes. A stateful operator whose
 * WEIR_TAG_CHANGELOG side output is connected emits there each record
 * that changed its state (weir_stream_dedup: the records that claimed a
 * key). A source that replays such a changelog (the Kafka source's
 * "changelog.topic") emits the entries, before the first record of a
 * partition it takes over, as records carrying WEIR_HDR_REPLAY: stateful
 * operators apply them to their state and emit nothing; stateless ones
 * pass them on unchanged (weir_stream_json_parse does).
 */
#define WEIR_HDR_REPLAY "weir.replay"

/* ------------------------------------------------------------------ *
 * ## Memory
 * ------------------------------------------------------------------ */

/**
 * @brief Allocator used for every allocation weir makes, and for buffers
 * handed over with WEIR_TAKE.
 * @remark Thread-safety: weir_malloc/weir_free are safe from any thread;
 * weir_replace_allocator() must be called before any other weir call.
 */
WEIR_EXTERN void *weir_malloc(size_t size);
WEIR_EXTERN void *weir_calloc(size_t n, size_t size);
WEIR_EXTERN void *weir_realloc(void *ptr, size_t size);
WEIR_EXTERN void weir_free(void *ptr);
WEIR_EXTERN int weir_replace_allocator(void *(*malloc_fn)(size_t),
                                       void *(*realloc_fn)(void *, size_t),
                                       void *(*calloc_fn)(size_t, size_t),
                                       void (*free_fn)(void *));

/* ------------------------------------------------------------------ *
 * ## Configuration
 * ------------------------------------------------------------------ */

/**
 * @brief A new configuration holding every property at its default.
 * @returns NULL only when out of memory.
 * @remark Ownership: the caller owns it until a consuming call
 * (weir_pipeline_new) or weir_conf_destroy().
 * @remark Thread-safety: a conf is not thread-safe; use it from one thread.
 */
WEIR_EXTERN weir_conf_t *weir_conf_new(void);

/** @brief Frees a conf. NULL is a no-op. */
WEIR_EXTERN void weir_conf_destroy(weir_conf_t *conf);

/**
 * @brief A deep copy, for callers who want to keep a conf across a
 * consuming call. @returns NULL when out of memory or conf is NULL.
 */
WEIR_EXTERN weir_conf_t *weir_conf_dup(const weir_conf_t *conf);

/**
 * @brief Sets a property ("checkpoint.interval.ms", "pipeline.parallelism",
 * ...; see docs/CONFIGURATION.md). Names under "kafka." are passed through
 * to librdkafka unchecked.
 * @returns WEIR_OK; WEIR_ENOENT for an unknown name, WEIR_EINVAL for a
 * value of the wrong shape; the reason is written to errstr.
 * @remark Ownership: name and value are copied.
 */
WEIR_EXTERN int weir_conf_set(weir_conf_t *conf, const char *name,
                              const char *value, char *errstr,
                              size_t errstr_size);

/**
 * @brief The current value of a property, or NULL if unknown/unset.
 * @remark Ownership: borrowed; valid until the property is next set or
 * the conf is destroyed.
 */
WEIR_EXTERN const char *weir_conf_get(const weir_conf_t *conf,
                                      const char *name);

/**
 * @brief Writes the property table (name, default, description) as a
 * Markdown table to fp. @returns WEIR_OK or WEIR_EIO.
 */
WEIR_EXTERN int weir_conf_dump_markdown(void *fp /* FILE * */);

/* ------------------------------------------------------------------ *
 * ## Pipeline
 * ------------------------------------------------------------------ */

/**
 * @brief Creates an empty pipeline.
 * @param conf consumed (on success and on failure); NULL means defaults.
 * @returns NULL on failure, with the reason in errstr.
 * @remark Thread-safety: build a pipeline from one thread; only
 * weir_pipeline_stop() and weir_pipeline_checkpoint() may be called from
 * other threads while weir_pipeline_run() is running.
 */
WEIR_EXTERN weir_pipeline_t *weir_pipeline_new(const char *name,
                                               weir_conf_t *conf, char *errstr,
                                               size_t errstr_size);

/** @brief The first (sticky) builder or run error, or WEIR_OK. */
WEIR_EXTERN int weir_pipeline_error(const weir_pipeline_t *p);

/**
 * @brief A message describing the last error ("" when none).
 * @remark Ownership: borrowed; valid until the next call on p.
 */
WEIR_EXTERN const char *weir_pipeline_errstr(const weir_pipeline_t *p);

/**
 * @brief Plans and runs the pipeline on worker threads and blocks until
 * every source has reached the end of its input (a final watermark of
 * +infinity is then sent, which fires every window), or until
 * weir_pipeline_stop() is called, or until a task fails.
 *
 * If "checkpoint.dir" holds a completed checkpoint, the pipeline is
 * restored from the latest one before it starts: operator state, keyed
 * state, watermarks and source positions. The run holds the directory
 * (a flock on <checkpoint.dir>/LOCK) until it returns.
 * @returns WEIR_OK, the sticky builder error, WEIR_EBUSY when another run
 * (of this or another process) holds "checkpoint.dir", or the first task
 * failure.
 * @remark A pipeline runs at most once.
 */
WEIR_EXTERN int weir_pipeline_run(weir_pipeline_t *p);

/**
 * @brief Asks a running pipeline to stop: sources stop reading, a final
 * checkpoint is taken when checkpointing is configured, and
 * weir_pipeline_run() returns WEIR_OK. No final watermark is sent.
 * @remark Thread-safety: safe from any thread and from a signal handler.
 */
WEIR_EXTERN void weir_pipeline_stop(weir_pipeline_t *p);

/**
 * @brief Requests a checkpoint now (in addition to the configured ones).
 * @returns WEIR_OK, or WEIR_EINVAL when checkpointing is not configured.
 * @remark Thread-safety: safe from any thread while running.
 */
WEIR_EXTERN int weir_pipeline_checkpoint(weir_pipeline_t *p);

/**
 * @brief The id of the last completed checkpoint (0 when none).
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN uint64_t weir_pipeline_last_checkpoint(const weir_pipeline_t *p);

/**
 * @brief Frees the pipeline and every stream, spec and operator instance
 * it owns. NULL is a no-op. Must not be called while running.
 */
WEIR_EXTERN void weir_pipeline_destroy(weir_pipeline_t *p);

/* ------------------------------------------------------------------ *
 * ## Streams (the builder). None of these returns NULL; see the file
 * comment for sticky errors. Every stream belongs to its pipeline.
 * ------------------------------------------------------------------ */

/**
 * @brief Extracts the key of a record for key_by.
 * @param key out: bytes borrowed from rec, or from memory that lives at
 * least until the next call of this function on the same thread.
 * @returns WEIR_OK, or a negative code: the record is then dropped (and
 * counted); route bad records to an errors output before key_by.
 */
typedef int (*weir_key_fn)(const weir_record_t *rec, weir_buf_t *key,
                           void *opaque);

/** @brief Generates records for weir_source_generator(). Returns 1 when it
 * produced a record (key/value borrowed until the next call), 0 at the end
 * of input, negative on error. `i` counts from 0. */
typedef int (*weir_generator_fn)(void *opaque, uint64_t i, weir_buf_t *key,
                                 weir_buf_t *value, weir_ts_t *ts);

/** @brief Receives each record reaching a weir_stream_collect() sink, on
 * the sink's thread. `rec` is borrowed for the call; `tag` is the tag of
 * the collected stream (weir_stream_tag). Return WEIR_OK or a negative
 * code (fails the task). */
typedef int (*weir_collect_fn)(const weir_record_t *rec, const char *tag,
                               void *opaque);

/** @brief Predicate for weir_stream_filter(): 1 keeps, 0 drops. */
typedef int (*weir_filter_fn)(const weir_record_t *rec, void *opaque);

/**
 * @brief A source built from an operator def whose `poll` callback emits
 * records. Sources run with parallelism 1 unless set otherwise.
 * @remark Ownership: def and opaque are borrowed and must outlive p.
 */
WEIR_EXTERN weir_stream_t *weir_stream_source(weir_pipeline_t *p,
                                              const char *name,
                                              const weir_operator_def_t *def,
                                              const void *opaque);

/**
 * @brief A source of generated records (tests, benchmarks, examples).
 * Its position (the next index) is part of every checkpoint.
 * @remark Ownership: opaque is borrowed and must outlive p.
 */
WEIR_EXTERN weir_stream_t *weir_source_generator(weir_pipeline_t *p,
                                                 const char *name,
                                                 weir_generator_fn fn,
                                                 void *opaque);

/**
 * @brief A source reading text lines from a file: one record per line
 * (newline removed, every other byte kept), no key, timestamp WEIR_TS_MIN,
 * offset = byte offset of the line. Its byte position is part of every
 * checkpoint. Blank lines are emitted too (filter them if needed).
 * @remark Ownership: path is copied. The file is opened by run().
 */
WEIR_EXTERN weir_stream_t *weir_source_file_lines(weir_pipeline_t *p,
                                                  const char *path);

/**
 * @brief Assigns watermarks: every record passes through unchanged, and
 * watermarks are generated per the strategy.
 * @param wm consumed.
 */
WEIR_EXTERN weir_stream_t *weir_stream_watermark(weir_stream_t *s,
                                                 weir_watermark_t *wm);

/**
 * @brief Partitions the stream by key: records with equal keys go to the
 * same subtask of the next operator, in order. The key is hashed (xxh3)
 * into "pipeline.max.keygroups" key groups, mapped to subtasks.
 * @param fn NULL keys by the record's own key. A record for which fn
 * fails is dropped and counted.
 * @remark Ownership: opaque is borrowed and must outlive p. fn may be
 * called from several threads at once (one per upstream subtask).
 */
WEIR_EXTERN weir_stream_t *weir_stream_keyby(weir_stream_t *s, weir_key_fn fn,
                                             void *opaque);

/**
 * @brief Applies an operator (custom or built-in) to each subtask of the
 * stream. Keyed operators (WEIR_OP_F_KEYED) need a keyed stream.
 * @remark Ownership: def and opaque are borrowed and must outlive p.
 */
WEIR_EXTERN weir_stream_t *weir_stream_apply(weir_stream_t *s,
                                             const weir_operator_def_t *def,
                                             const void *opaque);

/** @brief Keeps records for which fn returns 1. opaque is borrowed. */
WEIR_EXTERN weir_stream_t *weir_stream_filter(weir_stream_t *s,
                                              weir_filter_fn fn, void *opaque);

/**
 * @brief Merges two streams of the same pipeline. Watermarks of the result
 * are the minimum of both inputs.
 */
WEIR_EXTERN weir_stream_t *weir_stream_union(weir_stream_t *a,
                                             weir_stream_t *b);

/**
 * @brief The records the operator behind s emits under `tag`
 * (WEIR_TAG_LATE, WEIR_TAG_DUPLICATE, WEIR_TAG_ERRORS or your own name).
 * Records emitted under a tag nobody asked for are dropped and counted.
 * @remark Ownership: tag is copied.
 */
WEIR_EXTERN weir_stream_t *weir_stream_side_output(weir_stream_t *s,
                                                   const char *tag);

/**
 * @brief Sets the parallelism of the operator that produces s (1..1024).
 * Defaults: keyed operators (after weir_stream_keyby) take
 * "pipeline.parallelism"; other operators take their input's parallelism
 * (so records keep their order); sources and sinks are 1.
 */
WEIR_EXTERN weir_stream_t *weir_stream_set_parallelism(weir_stream_t *s,
                                                       int parallelism);

/** @brief Names the operator that produces s (logs, checkpoints). Copied. */
WEIR_EXTERN weir_stream_t *weir_stream_set_name(weir_stream_t *s,
                                                const char *name);

/**
 * @brief Ends the stream in an operator def acting as a sink (its emits
 * are ignored). @returns WEIR_OK or the sticky error.
 * @remark Ownership: def and opaque borrowed, must outlive p.
 */
WEIR_EXTERN int weir_stream_sink(weir_stream_t *s,
                                 const weir_operator_def_t *def,
                                 const void *opaque);

/**
 * @brief A sink calling fn for every record (parallelism 1 unless set).
 * @remark Ownership: opaque borrowed, must outlive p.
 */
WEIR_EXTERN int weir_stream_collect(weir_stream_t *s, weir_collect_fn fn,
                                    void *opaque);

/**
 * @brief A sink writing each record's value plus "\n" to a file.
 * Without checkpointing, lines are written as they arrive. With
 * "checkpoint.dir" set, it is exactly once: the output of checkpoint n
 * goes to a pending file that is published into `path` when n
 * completes; recovery discards pending output of incomplete checkpoints.
 * Always parallelism 1. The file is truncated by a fresh (non-restored)
 * run. @remark Ownership: path is copied.
 */
WEIR_EXTERN int weir_sink_file_lines(weir_stream_t *s, const char *path);

/** @brief The pipeline a stream belongs to. */
WEIR_EXTERN weir_pipeline_t *weir_stream_pipeline(const weir_stream_t *s);

/** @brief The output tag s stands for ("main", or a side output's name).
 * Borrowed for the life of the pipeline; NULL for a NULL stream. */
WEIR_EXTERN const char *weir_stream_tag(const weir_stream_t *s);

/** @brief 1 when s is usable, 0 when it is poisoned by a sticky error. */
WEIR_EXTERN int weir_stream_ok(const weir_stream_t *s);

/**
 * @brief Records a sticky builder error (for builder functions written
 * outside the runtime, such as weir_stream_window) and returns a poisoned
 * stream. The first error on a pipeline wins. msg is copied.
 */
WEIR_EXTERN weir_stream_t *weir_stream_error(weir_stream_t *s, int err,
                                             const char *msg);

/**
 * @brief Ties ptr's lifetime to the pipeline: free_fn(ptr) is called by
 * weir_pipeline_destroy(). Consumes ptr: on failure free_fn(ptr) is
 * called at once. For builder helpers that allocate operator arguments.
 */
WEIR_EXTERN int weir_pipeline_attach(weir_pipeline_t *p, void *ptr,
                                     void (*free_fn)(void *));

/* ------------------------------------------------------------------ *
 * ## Records
 * ------------------------------------------------------------------ */

/** Flags for weir_record_new(). */
#define WEIR_COPY 0x0 /* copy key and value bytes                       */
#define WEIR_TAKE 0x1 /* take over key.data and value.data (weir_malloc) */

/** @brief The record's key (WEIR_BUF_NULL when it has none). Borrowed for
 * as long as rec is. */
WEIR_EXTERN weir_buf_t weir_record_key(const weir_record_t *rec);
/** @brief The record's value bytes. Borrowed for as long as rec is. */
WEIR_EXTERN weir_buf_t weir_record_value(const weir_record_t *rec);
/** @brief The event timestamp in ms (WEIR_TS_MIN when unknown). */
WEIR_EXTERN weir_ts_t weir_record_ts(const weir_record_t *rec);
/** @brief Source partition (-1 when not from a partitioned source). */
WEIR_EXTERN int32_t weir_record_partition(const weir_record_t *rec);
/** @brief Source offset (line byte offset, Kafka offset; -1 if none). */
WEIR_EXTERN int64_t weir_record_offset(const weir_record_t *rec);
/** @brief 1 when rec is a changelog entry being replayed (it carries
 * WEIR_HDR_REPLAY), else 0 (also for NULL). */
WEIR_EXTERN int weir_record_is_replay(const weir_record_t *rec);

/**
 * @brief Looks up a header by name (the last one when repeated).
 * @returns WEIR_OK with *value borrowed for as long as rec is, or
 * WEIR_ENOENT.
 */
WEIR_EXTERN int weir_record_header(const weir_record_t *rec, const char *name,
                                   weir_buf_t *value);

/** @brief Number of headers, and the i-th one (borrowed). */
WEIR_EXTERN size_t weir_record_header_count(const weir_record_t *rec);
WEIR_EXTERN int weir_record_header_at(const weir_record_t *rec, size_t i,
                                      const char **name, weir_buf_t *value);

/**
 * @brief Creates a record owned by the caller, to be emitted with
 * weir_emit() (which consumes it) or freed with weir_record_destroy().
 * @param ctx the operator context it will be emitted from (may be NULL
 * for records built outside a callback).
 * @param flags WEIR_COPY, or WEIR_TAKE to take over key.data and
 * value.data, which must come from weir_malloc (freed even on failure).
 * @returns NULL when out of memory.
 */
WEIR_EXTERN weir_record_t *weir_record_new(weir_ctx_t *ctx, weir_buf_t key,
                                           weir_buf_t value, weir_ts_t ts,
                                           int flags);

/**
 * @brief A caller-owned copy of rec (key, value, ts, headers, position).
 * @returns NULL when out of memory or rec is NULL.
 */
WEIR_EXTERN weir_record_t *weir_record_copy(const weir_record_t *rec);

/** @brief Sets the timestamp of a record you own (not yet emitted). */
WEIR_EXTERN int weir_record_set_ts(weir_record_t *rec, weir_ts_t ts);

/** @brief Replaces the key of a record you own (bytes copied). */
WEIR_EXTERN int weir_record_set_key(weir_record_t *rec, weir_buf_t key);

/** @brief Sets the source position of a record you own. */
WEIR_EXTERN int weir_record_set_position(weir_record_t *rec, int32_t partition,
                                         int64_t offset);

/**
 * @brief Appends a header to a record you own (name and value copied).
 * @returns WEIR_OK, WEIR_EINVAL, WEIR_ENOMEM.
 */
WEIR_EXTERN int weir_record_add_header(weir_record_t *rec, const char *name,
                                       weir_buf_t value);

/** @brief Frees a record you own that was not emitted. NULL: no-op. */
WEIR_EXTERN void weir_record_destroy(weir_record_t *rec);

/* ------------------------------------------------------------------ *
 * ## Version
 * ------------------------------------------------------------------ */

/** @brief "MAJOR.MINOR.PATCH". Static string. */
WEIR_EXTERN const char *weir_version_string(void);

#ifdef __cplusplus
}
#endif

#include "weir/operator.h"
#include "weir/watermark.h"
#include "weir/window.h"
#endif /* WEIR_H */
