/*
 * kafka_link.h - what the Kafka source and sink share within a pipeline:
 * the configuration objects, and the link (the pipeline's transactional
 * producer, the source offsets of each checkpoint, the commit protocol).
 * Private to operators/kafka_*.c.
 *
 * One link exists per pipeline that has a Kafka source or sink. It is
 * created by the first builder call, attached to the pipeline (freed with
 * it) and reached by every Kafka operator instance through its opaque.
 * A process-wide registry keyed by (bootstrap servers, transactional.id)
 * makes sure one transactional producer per id exists in the process.
 *
 * Locking: every field of the link is protected by link->mu, except the
 * atomics (counters read by weir_kafka_* getters from any thread).
 */
#ifndef WEIR_OPERATORS_KAFKA_LINK_H
#define WEIR_OPERATORS_KAFKA_LINK_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>

#include <weir.h>
#include <weir/kafka.h>
#include <weir/operator.h>

#define KAFKA_ERRSTR 512

/* librdkafka properties collected by a conf (name/value pairs). */
struct kafka_props {
    char **name;
    char **value;
    size_t n;
};

struct weir_kafka_source_conf_s {
    char *topics;             /* comma-separated          */
    struct kafka_props props; /* for librdkafka           */
    int ts_none;              /* "timestamp" = none       */
    weir_ts_t bound;          /* out-of-orderness B       */
    uint64_t every;           /* watermark every N        */
    weir_ts_t idle_ms;        /* idle timeout, 0 = off    */
    int idle_eof;             /* idle while at the end    */
    uint64_t max_records;     /* 0 = unlimited            */
    weir_ts_t idle_exit_ms;   /* 0 = never                */
    int key_header;           /* copy key into a header   */
    int headers_none;         /* "headers" = none         */
    int poll_batch;           /* messages per poll        */
    int poll_wait_ms;         /* block when nothing came  */
    char *changelog;          /* replayed on assignment   */
    const weir_kafka_extractor_t *ex;
    const void *ex_opaque;
};

struct weir_kafka_sink_conf_s {
    char *topic;
    struct kafka_props props;
    int alos;         /* at-least-once                  */
    char *txn_id;     /* NULL: derived                  */
    char *key_header; /* NULL: the record key           */
    int headers_none;
    int no_chk_header;
    int ts_now;
    int changelog; /* write changelog entries          */
};

/* Counts per output topic: committed and per epoch still pending. */
struct kafka_topic_count {
    char *topic;
    rd_kafka_topic_t *rkt; /* the producer's handle, made at first use */
    _Atomic uint64_t committed;
    uint64_t *pend_epoch; /* epochs with pending counts          */
    uint64_t *pend_n;
    size_t npend;
};

/* A message held back until its epoch's transaction is open. */
struct kafka_held {
    uint64_t epoch;
    struct kafka_topic_count *tc; /* its topic (owned by the link)  */
    char *key;                    /* weir_malloc, or NULL              */
    size_t klen;
    char *value;
    size_t vlen;
    int64_t ts;               /* 0: let librdkafka stamp it        */
    int32_t partition;        /* RD_KAFKA_PARTITION_UA: partitioner */
    rd_kafka_headers_t *hdrs; /* owned until produced              */
};

/* Offsets a source published at a checkpoint. */
struct kafka_offsets {
    uint64_t id; /* checkpoint id         */
    int src;     /* source slot           */
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_consumer_group_metadata_t *cgmd;
};

typedef struct weir__kafka_link {
    weir_pipeline_t *p;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Build time. */
    int sinks_eos;
    int sinks_alos;
    int nsources;
    char *group; /* first source's group.id  */
    /* Run time. */
    int opened; /* open instances           */
    rd_kafka_t *producer;
    int eos;
    char txn_id[256];
    char bootstrap[1024];
    char run_id[32];
    int registered; /* in the process registry  */
    char *ckpt_dir;
    int log_fd;         /* commit log, -1 if none   */
    size_t log_grown;   /* bytes since its compaction */
    uint64_t committed; /* last committed id        */
    int txn_open;
    int committing;
    struct kafka_held *held;
    size_t nheld;
    size_t capheld;
    struct kafka_offsets *offs;
    size_t noffs;
    rd_kafka_t **consumers;                 /* live consumers by slot   */
    rd_kafka_topic_partition_list_t **sent; /* by slot: the offsets last
                                             * committed, or NULL        */
    int nconsumers;
    struct kafka_topic_count **counts; /* each entry stays put   */
    size_t ncounts;
    int failed; /* a WEIR_E* code, 0 = ok   */
    char err[KAFKA_ERRSTR];
    _Atomic uint64_t inflight[64]; /* unacked messages by epoch
                                    * (epoch % 64)              */
    _Atomic int dr_err;            /* first delivery error     */
    char dr_msg[256];
    _Atomic uint64_t consumed;
    _Atomic uint64_t replayed;          /* changelog entries sources replayed */
    _Atomic uint64_t handover_failures; /* release commit failed, lost */
    _Atomic uint64_t committed_id;
} weir__kafka_link_t;

/* ------------------------------------------------------------------ *
 * Configuration helpers (kafka_link.c)
 * ------------------------------------------------------------------ */

int weir__kafka_props_add(struct kafka_props *pr, const char *name,
                          const char *value);
void weir__kafka_props_free(struct kafka_props *pr);
const char *weir__kafka_props_get(const struct kafka_props *pr,
                                  const char *name);
/* Checks a librdkafka property against a scratch conf of `type`. */
int weir__kafka_check_prop(rd_kafka_type_t type, const char *name,
                           const char *value, char *errstr, size_t errstr_size);
/* A librdkafka conf: pipeline fallbacks, then props (weir's own wins
 * for the names it forces, set by the caller afterwards). */
rd_kafka_conf_t *weir__kafka_conf(weir_ctx_t *ctx,
                                  const struct kafka_props *props, char *errstr,
                                  size_t errstr_size);
int weir__kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errstr, size_t errstr_size);
/* Parses true/false. */
int weir__kafka_bool(const char *value, int *out);

/* A two-valued property: *out = 0 for `zero`, 1 for `one`; WEIR_EINVAL
 * for anything else (out unchanged). */
int weir__kafka_choice(const char *value, const char *zero, const char *one,
                       int *out);
/* Rewrites the commit log in dir (WEIR_KAFKA_COMMIT_LOG) with each run's
 * consecutive lines merged into one range: its first and last epoch, the
 * last commit's time, the records summed (so readers still find every
 * committed epoch, and recovery the last one); a torn last line is
 * dropped. Written to a temporary file, synced and renamed over the log:
 * a crash leaves the old log or the new one. WEIR_EIO when it could not
 * (the log is then unchanged). Not thread-safe against writers of the
 * same log: the link calls it under its lock. */
int weir__kafka_log_compact(const char *dir);

/* 1 when lists a and b hold the same partitions at the same offsets (0
 * when either is NULL). */
int weir__kafka_same_offsets(const rd_kafka_topic_partition_list_t *a,
                             const rd_kafka_topic_partition_list_t *b);

/* The default transactional.id for a group and checkpoint directory. */
void weir__kafka_default_txn_id(const char *group, const char *ckpt_dir,
                                char *out, size_t size);

/* ------------------------------------------------------------------ *
 * The link (kafka_link.c)
 * ------------------------------------------------------------------ */

/* The link of p, created and attached on first use; NULL when out of
 * memory (a sticky error is then recorded by the caller). */
weir__kafka_link_t *weir__kafka_link_get(weir_pipeline_t *p);

/* Instances call open/close around their lifetime. */
void weir__kafka_link_open(weir__kafka_link_t *l);
void weir__kafka_link_close(weir__kafka_link_t *l);

/* Sources. */
int weir__kafka_link_add_consumer(weir__kafka_link_t *l, rd_kafka_t *rk);
void weir__kafka_link_remove_consumer(weir__kafka_link_t *l, int slot);
int weir__kafka_link_put_offsets(weir__kafka_link_t *l, int slot, uint64_t id,
                                 const rd_kafka_topic_partition_list_t *list,
                                 rd_kafka_t *rk);
uint64_t weir__kafka_link_committed(weir__kafka_link_t *l);
int weir__kafka_link_failed(weir__kafka_link_t *l, char *errstr,
                            size_t errstr_size);

/* Sinks. */
int weir__kafka_link_start_producer(weir__kafka_link_t *l, weir_ctx_t *ctx,
                                    const struct weir_kafka_sink_conf_s *kc);
void weir__kafka_link_restored(weir__kafka_link_t *l, uint64_t id);
struct kafka_topic_count *weir__kafka_link_topic(weir__kafka_link_t *l,
                                                 const char *topic);
/* Looks the topic's partitions and leaders up once at open, so the first
 * record written does not wait for that lookup (an at-least-once barrier
 * would wait with it). Failures are left for produce to report. */
void weir__kafka_link_warm(weir__kafka_link_t *l, const char *topic);
/* The topic's partition count (asking for its metadata, which creates it
 * where the cluster creates topics on demand); -1 with a reason in err. */
int weir__kafka_partition_count(rd_kafka_t *rk, const char *topic, char *err,
                                size_t err_size);
/* Produces (or holds) one message of epoch `epoch` to `partition`
 * (RD_KAFKA_PARTITION_UA: the partitioner decides). Takes hdrs. */
int weir__kafka_link_send(weir__kafka_link_t *l, weir_ctx_t *ctx,
                          struct kafka_topic_count *tc, uint64_t epoch,
                          int32_t partition, weir_buf_t key, weir_buf_t value,
                          int64_t ts, rd_kafka_headers_t *hdrs);
/* Sink snapshot n: at-least-once flushes; exactly once catches up on a
 * complete-but-uncommitted previous checkpoint. */
int weir__kafka_link_barrier(weir__kafka_link_t *l, weir_ctx_t *ctx,
                             uint64_t id);
/* Checkpoint n is complete: commit (first caller) and release held
 * messages. */
int weir__kafka_link_commit(weir__kafka_link_t *l, weir_ctx_t *ctx,
                            uint64_t id);
void weir__kafka_link_poll(weir__kafka_link_t *l);

#endif /* WEIR_OPERATORS_KAFKA_LINK_H */
