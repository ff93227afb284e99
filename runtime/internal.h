/*
 * runtime/internal.h - definitions shared by the runtime's files, and by
 * nothing else (CMake gives only weir_runtime this include path).
 *
 * How the pieces fit
 *   pipeline.c/stream.c  the builder: a logical graph of nodes and edges
 *   plan.c               nodes -> tasks (operator chains per subtask) and
 *                        channels between them
 *   task.c               one worker thread per task: the run loop
 *   channel.c            bounded SPSC queues of stream elements
 *   record.c             records, record batches with an arena
 *   inst.c               one operator instance: ctx, emit routing, timers,
 *                        watermark firing, snapshot/restore
 *   state_mem.c          keyed state, in memory
 *   timer.c              per-instance timer heaps
 *   checkpoint.c         coordinator, checkpoint files, recovery
 *   harness.c            weir/testing.h on top of inst.c
 */
#ifndef WEIR_RUNTIME_INTERNAL_H
#define WEIR_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>

#define WEIR__ERRSTR 512

/* ------------------------------------------------------------------ *
 * ## Small helpers
 * ------------------------------------------------------------------ */

char *weir__strdup(const char *s);
void *weir__memdup(const void *p, size_t n);
uint64_t weir__hash(const void *data, size_t len);
weir_ts_t weir__now_ms(void);
void weir__set_errstr(char *errstr, size_t size, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Growable byte buffer. */
typedef struct weir__bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} weir__bytes_t;

int weir__bytes_reserve(weir__bytes_t *b, size_t extra);
int weir__bytes_append(weir__bytes_t *b, const void *p, size_t n);
void weir__bytes_free(weir__bytes_t *b);

/* ------------------------------------------------------------------ *
 * ## Records and batches
 * ------------------------------------------------------------------ */

typedef struct weir__header {
    const char *name;
    weir_buf_t value;
} weir__header_t;

struct weir_record_s {
    weir_buf_t key;          /* the record's own key                    */
    weir_buf_t value;        /* payload                                 */
    weir_buf_t rkey;         /* key_by key (what weir_ctx_key returns)  */
    weir_ts_t ts;            /* event time                              */
    int32_t partition;       /* source partition, -1 none               */
    int64_t offset;          /* source offset, -1 none                  */
    uint32_t nheaders;       /* number of headers                       */
    uint32_t owned;          /* 1: standalone, owns its memory          */
    weir__header_t *headers; /* nheaders entries                        */
};

/* An arena chunk of a batch. */
typedef struct weir__chunk {
    struct weir__chunk *next;
    size_t used;
    size_t cap;
    uint8_t data[];
} weir__chunk_t;

/* A watermark carried inside a batch: applies before record `pos`. */
typedef struct weir__batch_wm {
    uint32_t pos;
    weir_ts_t wm;
} weir__batch_wm_t;

/* A batch of records travelling through a channel; owns all its bytes.
 * Watermarks ride along in order (wms), so a watermark after every record
 * does not cut batches into single records. */
typedef struct weir__batch {
    weir_record_t *recs;   /* cap entries                               */
    uint32_t n;            /* records filled                            */
    uint32_t cap;          /* record capacity                           */
    weir__batch_wm_t *wms; /* watermarks, in order of pos               */
    uint32_t nwm;
    uint32_t capwm;
    size_t bytes;          /* arena bytes used                          */
    weir__chunk_t *chunks; /* arena, newest first                       */
    weir__chunk_t *spare;  /* emptied chunks of the usual size, reused  */
} weir__batch_t;

weir__batch_t *weir__batch_new(uint32_t cap);
void weir__batch_free(weir__batch_t *b);
void weir__batch_reset(weir__batch_t *b);
/* Appends a deep copy of rec (rkey replaced by `rkey` when given). */
int weir__batch_add(weir__batch_t *b, const weir_record_t *rec,
                    const weir_buf_t *rkey);
void weir__record_init(weir_record_t *rec);
/* Appends a watermark after the records added so far. */
int weir__batch_add_wm(weir__batch_t *b, weir_ts_t wm);

/* ------------------------------------------------------------------ *
 * ## Snapshot writer / reader
 * ------------------------------------------------------------------ */

struct weir_writer_s {
    weir__bytes_t buf;
};

struct weir_reader_s {
    const uint8_t *p;
    size_t len;
    size_t pos;
};

void weir__reader_init(weir_reader_t *r, const void *p, size_t len);

/* ------------------------------------------------------------------ *
 * ## Keyed state (memory backend)
 * ------------------------------------------------------------------ */

typedef struct weir__state weir__state_t;

weir__state_t *weir__state_new(void);
void weir__state_free(weir__state_t *st);
/* kind: 'v' value, 'm' map entry. Key parts are copied. */
int weir__state_get(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey,
                    weir_buf_t *out);
int weir__state_put(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey,
                    weir_buf_t value);
int weir__state_del(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey);
int weir__state_map_iter(weir__state_t *st, const char *name, weir_buf_t key,
                         weir_buf_t ns, weir_map_iter_fn fn, void *opaque);
int weir__state_keys(weir__state_t *st, const char *name, weir_key_iter_fn fn,
                     void *opaque);
int weir__state_snapshot(weir__state_t *st, weir_writer_t *w);
int weir__state_restore(weir__state_t *st, weir_reader_t *r);
size_t weir__state_count(const weir__state_t *st);

/* ------------------------------------------------------------------ *
 * ## Timers
 * ------------------------------------------------------------------ */

typedef struct weir__timers weir__timers_t;

weir__timers_t *weir__timers_new(void);
void weir__timers_free(weir__timers_t *t);
int weir__timers_set(weir__timers_t *t, weir_ts_t when, weir_buf_t key,
                     weir_buf_t ns);
int weir__timers_del(weir__timers_t *t, weir_ts_t when, weir_buf_t key,
                     weir_buf_t ns);
/* Earliest timer; WEIR_TS_MAX when none... use has_next. */
int weir__timers_peek(const weir__timers_t *t, weir_ts_t *when);
/* Pops the earliest timer if when <= limit: key/ns copied into bufs. */
int weir__timers_pop(weir__timers_t *t, weir_ts_t limit, weir_ts_t *when,
                     weir__bytes_t *key, weir__bytes_t *ns);
size_t weir__timers_count(const weir__timers_t *t);
int weir__timers_snapshot(const weir__timers_t *t, weir_writer_t *w);
int weir__timers_restore(weir__timers_t *t, weir_reader_t *r);

/* ------------------------------------------------------------------ *
 * ## Operator instances
 * ------------------------------------------------------------------ */

typedef struct weir__inst weir__inst_t;

/* Where an instance's output goes: implemented by the task (exchanges,
 * chained instances) or by the harness (collectors). */
typedef struct weir__out_ops {
    int (*record)(void *sink, int tag, const weir_record_t *rec);
    int (*watermark)(void *sink, weir_ts_t wm);
    int (*idle)(void *sink, int idle);
    /* Optional: records emitted under a tag the instance does not know
     * (the harness collects every tag; tasks drop them). */
    int (*record_named)(void *sink, const char *tag, const weir_record_t *rec);
} weir__out_ops_t;

struct weir_ctx_s {
    weir__inst_t *inst;
};

/* What weir_ctx_waker() hands out. A task points mu/cond at its own
 * mutex and condition when the instance is its source; elsewhere (the
 * harness, operators that are not sources) they stay NULL and a wake only
 * sets `pending`. */
struct weir_waker_s {
    atomic_int pending;   /* a wake came since the last poll began */
    pthread_mutex_t *mu;  /* the source task's mutex, or NULL      */
    pthread_cond_t *cond; /* the source task's condition           */
};

struct weir__inst {
    struct weir_ctx_s ctx;          /* handed to callbacks               */
    const weir_operator_def_t *def; /* the vtable                        */
    const void *opaque;             /* user argument                     */
    char *name;                     /* operator name                     */
    void *st;                       /* state_size block                  */
    int subtask;                    /* index of this instance            */
    int parallelism;                /* number of instances               */
    int opened;                     /* open succeeded                    */
    int restored;                   /* restored from a checkpoint        */
    const weir_conf_t *conf;        /* pipeline conf (may be NULL)       */
    const char *ckpt_dir;           /* checkpoint dir or NULL            */
    weir__state_t *state;           /* keyed state                       */
    weir__timers_t *timers[2];      /* event, processing                 */
    weir_ts_t wm;                   /* current input watermark           */
    weir_ts_t out_wm;               /* last watermark emitted            */
    int out_idle;                   /* last idle marker emitted          */
    weir_buf_t key;                 /* current key (borrowed or scratch) */
    weir__bytes_t key_buf;          /* scratch for set_key / timers      */
    weir__bytes_t ns_buf;           /* current namespace                 */
    const char **tags;              /* output tag names; [0] = main      */
    int ntags;
    const weir__out_ops_t *out; /* output routing                    */
    void *out_sink;
    char errstr[WEIR__ERRSTR];  /* weir_ctx_error text               */
    weir_ts_t (*clock)(void *); /* processing-time clock             */
    void *clock_arg;
    uint64_t dropped;          /* records to unknown tags           */
    struct weir_waker_s waker; /* ends this source's idle wait      */
    int node;                  /* pipeline node id (-1: harness)    */
    char *state_dir;           /* weir_ctx_state_dir, made lazily   */
};

weir__inst_t *weir__inst_new(const weir_operator_def_t *def, const void *opaque,
                             const char *name, int subtask, int parallelism);
void weir__inst_free(weir__inst_t *in);
/* tags: copied pointers (must outlive the instance). */
void weir__inst_set_out(weir__inst_t *in, const weir__out_ops_t *ops,
                        void *sink, const char **tags, int ntags);
int weir__inst_open(weir__inst_t *in);
void weir__inst_close(weir__inst_t *in);
int weir__inst_process(weir__inst_t *in, const weir_record_t *rec);
/* How far ahead of processing a batch the first member's prefetch hint
 * runs: enough to cover a memory access with the work on a few records. */
#define WEIR__PREFETCH_AHEAD 8
/* The def's prefetch hint (NULL for none or a version 1 table), and a
 * call of it with rec's key_by key. */
typedef void (*weir__prefetch_fn)(void *st, const weir_record_t *in,
                                  weir_buf_t key);
weir__prefetch_fn weir__inst_prefetcher(const weir__inst_t *in);
void weir__inst_prefetch(weir__inst_t *in, const weir_record_t *rec);
/* 1 for a def of a version this runtime knows (1..WEIR_OPERATOR_VERSION). */
static inline int weir__def_version_ok(const weir_operator_def_t *def)
{
    return def->version >= 1 && def->version <= WEIR_OPERATOR_VERSION;
}
/* Advances the input watermark: timers, on_watermark, forward. */
int weir__inst_watermark(weir__inst_t *in, weir_ts_t wm);
int weir__inst_idle(weir__inst_t *in, int idle);
/* Fires processing-time timers <= now. */
int weir__inst_processing_time(weir__inst_t *in, weir_ts_t now);
int weir__inst_next_processing_timer(weir__inst_t *in, weir_ts_t *when);
int weir__inst_poll(weir__inst_t *in);
int weir__inst_snapshot(weir__inst_t *in, uint64_t id, weir_writer_t *w);
int weir__inst_restore(weir__inst_t *in, weir_reader_t *r);
int weir__inst_complete(weir__inst_t *in, uint64_t id);
int weir__inst_end(weir__inst_t *in);
int weir__inst_tag_index(const weir__inst_t *in, const char *tag);

/* ------------------------------------------------------------------ *
 * ## Configuration
 * ------------------------------------------------------------------ */

int64_t weir__conf_i64(const weir_conf_t *conf, const char *name, int64_t dflt);

/* ------------------------------------------------------------------ *
 * ## Pipeline (builder, plan, tasks)
 * ------------------------------------------------------------------ */

typedef enum weir__edge_kind {
    WEIR__EDGE_FORWARD = 0,
    WEIR__EDGE_HASH = 1,
    WEIR__EDGE_REBALANCE = 2
} weir__edge_kind_t;

typedef struct weir__node weir__node_t;

/* An input of a node: the upstream node, which tag, how partitioned. */
typedef struct weir__input {
    weir__node_t *from;
    int tag;            /* index in from->tags                        */
    int keyed;          /* 1 when it comes through keyby             */
    weir_key_fn key_fn; /* keyby extractor or NULL                   */
    void *key_opaque;
} weir__input_t;

struct weir__node {
    int id;
    char *name;
    const weir_operator_def_t *def;
    const void *opaque;
    int parallelism; /* 0 = pipeline default                  */
    int is_source;
    weir__input_t *inputs;
    int ninputs;
    const char **tags; /* [0] "main", then side outputs         */
    int ntags;
};

struct weir_stream_s {
    weir_pipeline_t *p;
    weir__node_t *node; /* producing node (NULL when poisoned)   */
    int tag;            /* which output of node                  */
    int keyed;          /* produced by keyby                     */
    weir_key_fn key_fn;
    void *key_opaque;
    int poisoned;
};

typedef struct weir__attach {
    void *ptr;
    void (*free_fn)(void *);
} weir__attach_t;

typedef struct weir__run weir__run_t;

struct weir_pipeline_s {
    char *name;
    weir_conf_t *conf;
    int err; /* sticky error                  */
    char errstr[WEIR__ERRSTR];
    pthread_mutex_t err_mu; /* guards err/errstr during run  */
    weir__node_t **nodes;
    int nnodes;
    weir_stream_t **streams;
    int nstreams;
    weir__attach_t *attached;
    int nattached;
    weir_stream_t poison; /* returned after errors         */
    int ran;
    atomic_int stop_requested;
    atomic_int ckpt_requested;
    _Atomic uint64_t last_completed;
    weir__run_t *run; /* live while running            */
};

void weir__pipeline_fail(weir_pipeline_t *p, int err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int weir__pipeline_execute(weir_pipeline_t *p);

#endif /* WEIR_RUNTIME_INTERNAL_H */
