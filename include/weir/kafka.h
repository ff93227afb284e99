/*
 * weir/kafka.h - Kafka sources and sinks, exactly once.
 *
 * Built on librdkafka. A Kafka source is one consumer in a consumer group
 * (cooperative-sticky assignment); a Kafka sink writes through a producer
 * that every Kafka sink of the pipeline shares (idempotent always,
 * transactional in exactly-once mode). See docs/design/exactly-once.md
 * for the protocol and docs/guide/kafka.md for a walk-through.
 *
 * Exactly once (the default delivery of a sink) ties Kafka transactions
 * to checkpoints: the records a pipeline writes before checkpoint barrier
 * n, on every Kafka sink, plus the source offsets at barrier n, are one
 * transaction, committed when checkpoint n is complete (its operator
 * state is durable). Records that arrive after barrier n and before n's
 * commit are held in memory and produced into the next transaction.
 * It needs "checkpoint.dir" and "checkpoint.interval.ms" (the commit
 * interval; 100 ms is a good value). At-least-once sinks produce at once
 * and flush at each barrier; sources then commit their offsets when the
 * checkpoint completes. A pipeline's Kafka sinks must all use the same
 * delivery guarantee; its sources follow them.
 *
 * Recovery: call weir_kafka_recover() before weir_pipeline_run(). It finds
 * the last checkpoint whose transaction committed (from the committed
 * offsets' metadata on a real broker, from the commit log kept in the
 * checkpoint directory otherwise) and makes it the one the run restores.
 *
 * Configuration: the *_conf_set() functions take weir properties (listed
 * at each function) and pass every other name to librdkafka (client
 * properties such as "bootstrap.servers", "group.id", "security.protocol").
 * Pipeline properties "kafka.bootstrap.servers" and "kafka.group.id" are
 * used when a conf does not set them.
 */
#ifndef WEIR_KAFKA_H
#define WEIR_KAFKA_H

#include "../weir.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Header on every record an exactly-once sink writes: "<run>:<n>", the
 * process run id and the checkpoint whose transaction holds it. */
#define WEIR_KAFKA_HDR_CHECKPOINT "weir.checkpoint"

/** Header where a source keeps the message key when "key.header" is on,
 * so a sink can write it back after an operator replaced the key. */
#define WEIR_KAFKA_HDR_KEY "weir.kafka.key"

/** Prefix of the committed offsets' metadata: "weir:chk=<n>;run=<r>;tid=<t>".
 */
#define WEIR_KAFKA_META_PREFIX "weir:chk="

/** Name of the commit log written into the checkpoint directory: one line
 * per committed checkpoint (a Kafka transaction, or a checkpoint with
 * nothing for Kafka), "commit <run> <first epoch> <last epoch> <unix ms>
 * <records>". Each time it has grown by 1 MiB it is compacted: every
 * run's consecutive lines become one range (the last commit's time, the
 * records summed). */
#define WEIR_KAFKA_COMMIT_LOG "kafka-commits.log"

typedef struct weir_kafka_source_conf_s weir_kafka_source_conf_t;
typedef struct weir_kafka_sink_conf_s weir_kafka_sink_conf_t;

/* ------------------------------------------------------------------ *
 * ## Extractors: decode a message into a record's timestamp and key
 * ------------------------------------------------------------------ */

#define WEIR_KAFKA_EXTRACTOR_VERSION 1

/** What an extractor returns for a message to consume and drop (a blank
 * line, say): counted as consumed, emitted nowhere. */
#define WEIR_KAFKA_SKIP 1

/**
 * @brief Turns a consumed message into the record the source emits, on
 * the source's thread, before per-partition watermarks see it: typically
 * sets the event time (weir_record_set_ts) and adds a key header.
 *
 * open is called once per source instance with the opaque given to
 * weir_kafka_source_conf_set_extractor() and returns the instance's state
 * (NULL = failure, with a reason in errstr). extract returns WEIR_OK,
 * WEIR_KAFKA_SKIP (the message is consumed and emitted nowhere), or a
 * negative code with a reason in errstr: the message then goes to the
 * source's WEIR_TAG_ERRORS output, unchanged, with that reason. close
 * frees what open made.
 * @remark Ownership: the table and opaque are borrowed and must outlive
 * the pipeline. `rec` is owned by the source; extract may change its
 * timestamp, key and headers but must not free it.
 * @remark Thread-safety: each instance state is used by one thread.
 */
typedef struct weir_kafka_extractor {
    int version;      /* WEIR_KAFKA_EXTRACTOR_VERSION */
    const char *name; /* for messages                 */
    void *(*open)(const void *opaque, char *errstr, size_t errstr_size);
    int (*extract)(void *inst, weir_record_t *rec, char *errstr,
                   size_t errstr_size);
    void (*close)(void *inst);
} weir_kafka_extractor_t;

/* ------------------------------------------------------------------ *
 * ## Sources
 * ------------------------------------------------------------------ */

/**
 * @brief A source configuration for a comma-separated list of topics.
 * @returns NULL when out of memory or topics is NULL/empty.
 * @remark Ownership: topics is copied; the caller owns the conf until
 * weir_kafka_source_ex() consumes it or weir_kafka_source_conf_destroy().
 * @remark Thread-safety: not thread-safe; configure from one thread.
 */
WEIR_EXTERN weir_kafka_source_conf_t *
weir_kafka_source_conf_new(const char *topics);

/**
 * @brief Sets a source property. weir properties:
 *   - "timestamp": "message" (default: the message timestamp) or "none"
 *     (WEIR_TS_MIN, for an extractor to set);
 *   - "watermark.out.of.orderness.ms" (B, default 0): each partition's
 *     watermark is max(W_p, maxTs_p - B);
 *   - "watermark.every" (N >= 1, default 1): a partition's watermark is
 *     recomputed after every N-th record of that partition;
 *   - "idle.timeout.ms" (default 0, off): a partition without records for
 *     that long is idle; "idle.at.eof" (true/false, default true): a
 *     partition is idle while it is at its end. The source's watermark is
 *     the minimum over assigned partitions that are not idle; a partition
 *     with no record yet holds it at -infinity. When every partition is
 *     idle the source is marked idle;
 *   - "max.records" (0 = unlimited): after that many messages the source
 *     stops the pipeline (weir_pipeline_stop: a final checkpoint, no final
 *     watermark); "idle.exit.ms" (0 = never): the same after no message
 *     for that long (counted from the first assignment);
 *   - "key.header" (true/false, default false): copy each message key into
 *     the WEIR_KAFKA_HDR_KEY header;
 *   - "poll.batch" (default 1000): messages per poll call;
 *   - "poll.wait.ms" (0..1000, default 0): when nothing is queued, a poll
 *     waits that long in librdkafka for the first message, so a new
 *     message is picked up as it arrives; 0: the poll returns at once and
 *     the runtime's idle wait ("source.idle.wait.ms", 10 ms) paces polls;
 *   - "changelog.topic" (default unset): a topic a changelog sink writes
 *     (sink property "changelog"). When a partition is assigned that
 *     another instance has processed since what our restored checkpoint
 *     knows of it (the group's committed offset is further), its entries
 *     are read from that topic, read_committed, to its end and emitted as
 *     WEIR_HDR_REPLAY records before the partition's first record, so
 *     the state of the keys it carries is in place (weir.h, "State that
 *     moves between processes").
 * Any other name is a librdkafka consumer property ("group.id",
 * "bootstrap.servers", "auto.offset.reset", ...). weir sets
 * "partition.assignment.strategy" to "cooperative-sticky" and
 * "enable.auto.commit" to "false"; "enable.partition.eof" follows
 * "idle.at.eof". Unless set: "isolation.level" is "read_committed",
 * "queued.max.messages.kbytes" 65536 and "queued.min.messages" 10000000
 * (librdkafka 2.0 applies the latter to the whole consumer queue and
 * re-checks it about once a second, so its default stalls a fast
 * consumer).
 * @returns WEIR_OK, WEIR_EINVAL (bad value), WEIR_ENOENT (librdkafka does
 * not know the name); the reason in errstr.
 * @remark Ownership: name and value are copied.
 */
WEIR_EXTERN int weir_kafka_source_conf_set(weir_kafka_source_conf_t *sc,
                                           const char *name, const char *value,
                                           char *errstr, size_t errstr_size);

/**
 * @brief Sets the extractor (NULL turns it off).
 * @remark Ownership: ex and opaque borrowed; they must outlive the
 * pipeline.
 */
WEIR_EXTERN int
weir_kafka_source_conf_set_extractor(weir_kafka_source_conf_t *sc,
                                     const weir_kafka_extractor_t *ex,
                                     const void *opaque);

/** @brief Frees a source conf. NULL is a no-op. */
WEIR_EXTERN void weir_kafka_source_conf_destroy(weir_kafka_source_conf_t *sc);

/**
 * @brief A Kafka source with default settings (group and brokers from the
 * pipeline properties "kafka.group.id" and "kafka.bootstrap.servers").
 */
WEIR_EXTERN weir_stream_t *weir_kafka_source(weir_pipeline_t *p,
                                             const char *topics);

/**
 * @brief A Kafka source (always parallelism 1: one consumer per process;
 * run more processes in the same group to scale out). Records: key and
 * value of the message, timestamp per "timestamp" or the extractor,
 * partition and offset, the message headers. Side output
 * WEIR_TAG_ERRORS: messages the extractor rejected, with the reason.
 *
 * Offsets: the snapshot of checkpoint n holds the next offset of every
 * assigned partition; restore seeks there as partitions are assigned.
 * A revoked partition is paused and released after the checkpoint that
 * covers its last emitted record has committed; a lost partition fails
 * the task (the pipeline restarts from the last committed checkpoint).
 * @param sc consumed (on success and on failure).
 */
WEIR_EXTERN weir_stream_t *weir_kafka_source_ex(weir_pipeline_t *p,
                                                weir_kafka_source_conf_t *sc);

/* ------------------------------------------------------------------ *
 * ## Sinks
 * ------------------------------------------------------------------ */

/**
 * @brief A sink configuration writing to `topic`.
 * @returns NULL when out of memory or topic is NULL/empty.
 * @remark Ownership: topic copied; the caller owns the conf until
 * weir_kafka_sink_ex() consumes it or weir_kafka_sink_conf_destroy().
 * @remark Thread-safety: not thread-safe.
 */
WEIR_EXTERN weir_kafka_sink_conf_t *weir_kafka_sink_conf_new(const char *topic);

/**
 * @brief Sets a sink property. weir properties:
 *   - "delivery": "exactly-once" (default) or "at-least-once";
 *   - "transactional.id": the id of the process's transactional producer
 *     (default "weir-<group>-<hash of host and checkpoint directory>",
 *     stable across restarts of one instance, distinct across instances);
 *   - "key.header": take each message key from this record header
 *     (WEIR_KAFKA_HDR_KEY typically) instead of the record key;
 *   - "headers": "all" (default: copy the record's headers except weir's
 *     own "weir.*" ones, WEIR_HDR_ERROR excepted) or "none";
 *   - "checkpoint.header" (true/false, default true): add
 *     WEIR_KAFKA_HDR_CHECKPOINT in exactly-once mode;
 *   - "timestamp": "event" (default: the record timestamp when known) or
 *     "now";
 *   - "changelog" (true/false, default false): write records as
 *     changelog entries (a WEIR_TAG_CHANGELOG output), batched per source
 *     partition: at each barrier (and every 64 KiB) one message to
 *     partition (source partition mod the topic's partitions), key = the
 *     source partition (4 bytes, big-endian), value = format byte 1, then
 *     per entry u32 key length, key, i64 event time, u32 value length,
 *     value (big-endian); no headers. In the same transaction as the other sinks' records.
 * Any other name is a librdkafka producer property. The producer is shared
 * by the pipeline's Kafka sinks: the first sink opened creates it with its
 * properties. weir sets "enable.idempotence" to "true".
 * @returns WEIR_OK, WEIR_EINVAL, WEIR_ENOENT; the reason in errstr.
 */
WEIR_EXTERN int weir_kafka_sink_conf_set(weir_kafka_sink_conf_t *kc,
                                         const char *name, const char *value,
                                         char *errstr, size_t errstr_size);

/** @brief Frees a sink conf. NULL is a no-op. */
WEIR_EXTERN void weir_kafka_sink_conf_destroy(weir_kafka_sink_conf_t *kc);

/** @brief A Kafka sink to `topic` with default settings (exactly once). */
WEIR_EXTERN int weir_kafka_sink(weir_stream_t *s, const char *topic);

/**
 * @brief Ends s in a Kafka sink. Any parallelism; every instance shares
 * the pipeline's producer.
 * Failures: a record librdkafka cannot deliver, or an abortable
 * transaction error, aborts the open transaction and fails the task with
 * WEIR_EKAFKA (restart the pipeline: it resumes from the last committed
 * checkpoint); a fatal producer error (another instance with the same
 * transactional.id fenced this one) fails it with WEIR_EFENCED.
 * @param kc consumed (on success and on failure).
 * @returns WEIR_OK or the sticky builder error.
 */
WEIR_EXTERN int weir_kafka_sink_ex(weir_stream_t *s,
                                   weir_kafka_sink_conf_t *kc);

/* ------------------------------------------------------------------ *
 * ## Recovery and progress
 * ------------------------------------------------------------------ */

/**
 * @brief Prepares an exactly-once restart: finds the last checkpoint
 * whose Kafka transaction committed and makes it the one
 * weir_pipeline_run() restores, by marking newer completed checkpoints of
 * "checkpoint.dir" incomplete (their transactions were aborted, so their
 * state must not be used).
 *
 * The committed checkpoint is read from the consumer group's committed
 * offsets (metadata written by this instance's transactional.id) when the
 * broker stores them, else from the commit log in the checkpoint
 * directory (the librdkafka mock cluster keeps no transactional offsets).
 * @param conf the pipeline configuration (not consumed).
 * @param sc the source configuration (not consumed): brokers, group,
 * topics. NULL: use the commit log only.
 * @param transactional_id NULL for the sinks' default.
 * @returns WEIR_OK (also when there is nothing to recover);
 * WEIR_ECORRUPT when the committed checkpoint is missing locally (the
 * message says how to start over); WEIR_EBUSY when a running pipeline
 * holds the checkpoint directory; WEIR_EKAFKA, WEIR_EIO.
 * @remark Thread-safety: call before the pipeline runs.
 */
WEIR_EXTERN int weir_kafka_recover(const weir_conf_t *conf,
                                   const weir_kafka_source_conf_t *sc,
                                   const char *transactional_id, char *errstr,
                                   size_t errstr_size);

/**
 * @brief Records written to `topic` by p's Kafka sinks and committed
 * (exactly once) or acknowledged at a checkpoint (at least once) during
 * the current or last run. NULL topic: all topics.
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN uint64_t weir_kafka_committed_records(const weir_pipeline_t *p,
                                                  const char *topic);

/**
 * @brief The last checkpoint whose Kafka transaction p committed (0 when
 * none). @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN uint64_t weir_kafka_committed_checkpoint(const weir_pipeline_t *p);

/**
 * @brief The messages p's Kafka sources consumed during the current or
 * last run (errors included). @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN uint64_t weir_kafka_consumed_records(const weir_pipeline_t *p);

/**
 * @brief The changelog entries p's Kafka sources replayed (source property
 * "changelog.topic") during the current or last run.
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN uint64_t weir_kafka_replayed_records(const weir_pipeline_t *p);

/**
 * @brief How often p's Kafka sources could not hand partitions over
 * cleanly during the current or last run: exactly once, the offset
 * commit through the consumer made when a revoked partition is released
 * failed, or the assignment was lost (session expired). On a real
 * broker such commits are redundant (the offsets travel in the
 * transactions); on the mock cluster, which keeps no transactional
 * offsets, the next owner of a partition then starts from an older
 * offset (docs/design/exactly-once.md).
 * @remark Thread-safety: safe from any thread.
 */
WEIR_EXTERN uint64_t weir_kafka_handover_failures(const weir_pipeline_t *p);

/**
 * @brief Turns off Nagle's algorithm on the sockets of a librdkafka mock
 * cluster that runs in this process, given its bootstrap list
 * (rd_kafka_mock_cluster_bootstraps()).
 *
 * The mock's brokers leave Nagle on, so each response waits for the
 * client's delayed ACK: about 40 ms per produce acknowledgement, fetch and
 * transaction commit on loopback, where a real broker (which sets
 * TCP_NODELAY) answers in about a millisecond. Call it right after
 * creating the cluster: the listeners pass the option on to connections
 * accepted later, and connections already accepted are changed too.
 * Sockets of other servers and clients are not touched (matched by local
 * port). Linux semantics; harmless elsewhere.
 *
 * @return the number of sockets changed (>= 0), or WEIR_EINVAL when
 *         bootstraps is NULL or not a "host:port,..." list.
 * @remark Thread-safety: safe from any thread, while the cluster runs.
 */
WEIR_EXTERN int weir_kafka_mock_nodelay(const char *bootstraps);

#ifdef __cplusplus
}
#endif
#endif /* WEIR_KAFKA_H */
