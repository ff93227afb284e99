/*
 * test_kafka_util.h - helpers for the Kafka tests: a cluster (librdkafka's
 * mock, or a real one named by WEIR_TEST_BROKERS), unique topics,
 * producing, reading topics back, and telling committed transactions
 * from aborted ones.
 *
 * Reading back: the mock shows records of aborted and open transactions
 * to read_committed consumers, so a reader cannot rely on the broker to
 * hide them. Every record an exactly-once sink writes carries the header
 * "weir.checkpoint" = "<run>:<epoch>", and the pipeline's commit log
 * (<checkpoint dir>/kafka-commits.log, lines "commit <run> <lo> <hi>
 * <ms>") lists the epochs whose transaction committed. kt_read() keeps a
 * record only when its (run, epoch) is in that list; on a real broker the
 * same filter must change nothing, which the tests also check.
 *
 * Everything is static: include once per test file.
 */
#ifndef WEIR_TEST_KAFKA_UTIL_H
#define WEIR_TEST_KAFKA_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <weir.h>
#include <weir/kafka.h>

#include "../../examples/dedup_kafka.h"

struct kt_cluster {
    rd_kafka_t *rk; /* hosts the mock (NULL: real) */
    rd_kafka_mock_cluster_t *mc;
    char bootstrap[1024];
    rd_kafka_t *producer;
};

static int kt_counter __attribute__((unused));

static inline int64_t kt_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline const char *kt_real(void)
{
    const char *b = getenv("WEIR_TEST_BROKERS");

    return b != NULL && *b != '\0' ? b : NULL;
}

/* Re-sends a message the test's producer could not deliver: injected
 * produce errors hit whichever client sends the next request, and the
 * input must stay complete. */
static inline void kt_resend(rd_kafka_t *rk, const rd_kafka_message_t *m,
                             void *opaque)
{
    (void)opaque;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (getenv("KT_DEBUG") != NULL)
        fprintf(stderr, "test producer: resending after %s\n",
                rd_kafka_err2str(m->err));
    rd_kafka_producev(rk, RD_KAFKA_V_RKT(m->rkt),
                      RD_KAFKA_V_PARTITION(m->partition),
                      RD_KAFKA_V_KEY(m->key, m->key_len),
                      RD_KAFKA_V_VALUE(m->payload, m->len),
                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
}

/* Starts a mock cluster of n brokers, or connects to WEIR_TEST_BROKERS. */
static inline int kt_cluster_init(struct kt_cluster *k, int nbrokers)
{
    rd_kafka_conf_t *conf;
    char err[256];

    memset(k, 0, sizeof(*k));
    if (kt_real() != NULL) {
        snprintf(k->bootstrap, sizeof(k->bootstrap), "%s", kt_real());
    } else {
        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
        k->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (k->rk == NULL)
            return -1;
        k->mc = rd_kafka_mock_cluster_new(k->rk, nbrokers);
        if (k->mc == NULL)
            return -1;
        snprintf(k->bootstrap, sizeof(k->bootstrap), "%s",
                 rd_kafka_mock_cluster_bootstraps(k->mc));
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstrap, err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    rd_kafka_conf_set_dr_msg_cb(conf, kt_resend);
    k->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    return k->producer != NULL ? 0 : -1;
}

static inline void kt_cluster_destroy(struct kt_cluster *k)
{
    if (k->producer != NULL)
        rd_kafka_destroy(k->producer);
    if (k->mc != NULL)
        rd_kafka_mock_cluster_destroy(k->mc);
    if (k->rk != NULL)
        rd_kafka_destroy(k->rk);
    memset(k, 0, sizeof(*k));
}

/* The cluster a test binary's tests share (a 3-broker mock, or the one
 * WEIR_TEST_BROKERS names), started and stopped by kt_setup and
 * kt_teardown as cmocka group fixtures. */
static struct kt_cluster cluster __attribute__((unused));

static inline int kt_setup(void **state)
{
    (void)state;
    return kt_cluster_init(&cluster, 3);
}

static inline int kt_teardown(void **state)
{
    (void)state;
    kt_cluster_destroy(&cluster);
    return 0;
}

/* A topic name unique to this run. */
static inline void kt_topic_name(char *out, size_t size, const char *what)
{
    snprintf(out, size, "weir-test-%s-%d-%lld-%d", what, (int)getpid(),
             (long long)(kt_now() % 100000000), kt_counter++);
}

/* Creates a topic with n partitions (mock or real). */
static inline int kt_create_topic(struct kt_cluster *k, const char *topic,
                                  int n)
{
    rd_kafka_NewTopic_t *nt;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    char err[256];
    int rc = -1;

    if (k->mc != NULL)
        return rd_kafka_mock_topic_create(k->mc, topic, n, 1) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR
                   ? 0
                   : -1;
    nt = rd_kafka_NewTopic_new(topic, n, -1, err, sizeof(err));
    q = rd_kafka_queue_new(k->producer);
    rd_kafka_CreateTopics(k->producer, &nt, 1, NULL, q);
    ev = rd_kafka_queue_poll(q, 30000);
    if (ev != NULL && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = 0;
    if (ev != NULL)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
    return rc;
}

/* Produces one message (partition -1: by key). */
static inline int kt_produce(struct kt_cluster *k, const char *topic,
                             int partition, const void *key, size_t klen,
                             const void *value, size_t vlen)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_producev(
            k->producer, RD_KAFKA_V_TOPIC(topic),
            RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA
                                               : partition),
            RD_KAFKA_V_KEY((void *)key, klen),
            RD_KAFKA_V_VALUE((void *)value, vlen),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(k->producer, 10);
    }
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static inline int kt_flush(struct kt_cluster *k)
{
    return rd_kafka_flush(k->producer, 60000) == RD_KAFKA_RESP_ERR_NO_ERROR
               ? 0
               : -1;
}

/* ------------------------------------------------------------------ *
 * Reading topics back
 * ------------------------------------------------------------------ */

/* Called for each record read; commit is NULL for records of uncommitted
 * transactions when a commit list is given. Return 0 to go on. */
typedef int (*kt_read_fn)(const rd_kafka_message_t *m,
                          const struct dk_commit *commit, void *opaque);

struct kt_read_stats {
    uint64_t total;       /* every record read                    */
    uint64_t uncommitted; /* filtered out: not in a committed txn */
};

/*
 * Reads every partition of topic from the beginning to its end,
 * read_committed. With cs, records whose checkpoint header is not
 * committed are counted in stats and not passed to fn.
 */
static inline int kt_read(struct kt_cluster *k, const char *topic,
                          const struct dk_commit_log *cs, kt_read_fn fn,
                          void *opaque, struct kt_read_stats *stats)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_t *rkt;
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *m;
    char err[256];
    int eofs = 0;
    int i;
    int64_t deadline;
    int rc = 0;

    rd_kafka_conf_set(conf, "bootstrap.servers", k->bootstrap, err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "weir-test-reader", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (c == NULL)
        return -1;
    rd_kafka_poll_set_consumer(c);
    rkt = rd_kafka_topic_new(c, topic, NULL);
    if (rd_kafka_metadata(c, 0, rkt, &md, 10000) != 0 || md->topic_cnt != 1) {
        rd_kafka_topic_destroy(rkt);
        rd_kafka_destroy(c);
        return -1;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic,
                                          md->topics[0].partitions[i].id)
            ->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(c, parts);
    deadline = kt_now() + 60000;
    while (eofs < parts->cnt && kt_now() < deadline) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const struct dk_commit *commit = NULL;
            rd_kafka_headers_t *h;
            const void *v;
            size_t vs;

            if (stats != NULL)
                stats->total++;
            if (cs != NULL) {
                if (rd_kafka_message_headers(m, &h) == 0 &&
                    rd_kafka_header_get_last(h, WEIR_KAFKA_HDR_CHECKPOINT, &v,
                                             &vs) == 0)
                    commit = dk_commit_log_find(cs, v, vs);
                if (commit == NULL) {
                    if (stats != NULL)
                        stats->uncommitted++;
                    rd_kafka_message_destroy(m);
                    continue;
                }
            }
            if (fn != NULL && fn(m, commit, opaque) != 0)
                rc = -1;
        }
        rd_kafka_message_destroy(m);
    }
    if (eofs < parts->cnt)
        rc = -1;
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return rc;
}

/* ------------------------------------------------------------------ *
 * Ground truth of a dedup workload and the exactly-once check
 * ------------------------------------------------------------------ */

/*
 * A workload of n events: each has an id (KT_CORRUPT for a corrupt
 * message) and a sequence number that appears in its value as
 * "seq":N (JSON) or is given by the caller's decoder. Duplicates share a
 * key (their id), so a partition holds every copy of an event.
 */
#define KT_CORRUPT UINT32_MAX

struct kt_truth {
    uint32_t *id; /* per seq                              */
    uint32_t n;   /* events so far                        */
    uint32_t cap;
    uint32_t ndistinct;
    uint32_t ncorrupt;
};

/* Draws the next event: corrupt with probability corrupt_pm per mille,
 * a repeat of a recent event with probability dup_pm, else new. */
static inline uint32_t kt_truth_next(struct kt_truth *t, int corrupt_pm,
                                     int dup_pm)
{
    uint32_t id;
    int r = rand() % 1000;

    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 4096;
        t->id = realloc(t->id, t->cap * sizeof(*t->id));
    }
    if (r < corrupt_pm) {
        id = KT_CORRUPT;
        t->ncorrupt++;
    } else if (r < corrupt_pm + dup_pm && t->ndistinct > 0) {
        id = t->ndistinct - 1 -
             (uint32_t)rand() % (t->ndistinct < 5000 ? t->ndistinct : 5000);
    } else {
        id = t->ndistinct++;
    }
    t->id[t->n++] = id;
    return id;
}

/* The JSON value of event seq (a truncated object when corrupt). */
static inline void kt_truth_json(const struct kt_truth *t, uint32_t seq,
                                 char *key, size_t ksize, char *value,
                                 size_t vsize)
{
    if (t->id[seq] == KT_CORRUPT) {
        snprintf(key, ksize, "bad-%u", seq);
        snprintf(value, vsize, "{\"seq\":%u,\"id\":", seq);
    } else {
        snprintf(key, ksize, "e%u", t->id[seq]);
        snprintf(value, vsize, "{\"id\":\"e%u\",\"ts\":%u,\"seq\":%u}",
                 t->id[seq], 1000000u + seq, seq);
    }
}

static inline void kt_truth_free(struct kt_truth *t)
{
    free(t->id);
    memset(t, 0, sizeof(*t));
}

/* Reads the seq of an output record; -1 when it has none. */
typedef int64_t (*kt_seq_fn)(const rd_kafka_message_t *m);

static inline int64_t kt_seq_json(const rd_kafka_message_t *m)
{
    char buf[256];
    const char *s;

    if (m->len >= sizeof(buf))
        return -1;
    memcpy(buf, m->payload, m->len);
    buf[m->len] = '\0';
    s = strstr(buf, "\"seq\":");
    return s != NULL ? (int64_t)strtoul(s + 6, NULL, 10) : -1;
}

struct kt_tally {
    const struct kt_truth *t;
    kt_seq_fn seq;
    uint8_t *seen;   /* per seq                     */
    uint8_t *unique; /* per id, in the unique output */
    int output;      /* 0 unique 1 dups 2 late 3 err */
    uint64_t count[4];
    uint64_t bad;   /* no seq                      */
    uint64_t wrong; /* corrupt <-> errors mismatch  */
    uint64_t filtered;
    const struct dk_commit *split; /* commits from here on: 2nd log */
    uint64_t second;               /* records committed by those   */
};

static inline int kt_tally_fn(const rd_kafka_message_t *m,
                              const struct dk_commit *commit, void *opaque)
{
    struct kt_tally *y = opaque;
    int64_t seq = y->seq(m);

    if (commit != NULL && y->split != NULL && commit >= y->split)
        y->second++;
    y->count[y->output]++;
    if (seq < 0 || seq >= y->t->n) {
        y->bad++;
        return 0;
    }
    if (y->seen[seq] < 255)
        y->seen[seq]++;
    if (y->seen[seq] > 1 && getenv("KT_DEBUG") != NULL)
        fprintf(stderr,
                "seq %lld again: output %d partition %d offset %lld"
                " commit %s %llu-%llu\n",
                (long long)seq, y->output, (int)m->partition,
                (long long)m->offset, commit ? commit->run : "-",
                commit ? (unsigned long long)commit->lo : 0ULL,
                commit ? (unsigned long long)commit->hi : 0ULL);
    if ((y->t->id[seq] == KT_CORRUPT) != (y->output == 3))
        y->wrong++;
    if (y->output == 0 && y->t->id[seq] != KT_CORRUPT &&
        y->unique[y->t->id[seq]] < 255)
        y->unique[y->t->id[seq]]++;
    return 0;
}

/*
 * Reads the four outputs (unique, duplicates, late, errors), keeping only
 * committed records (cs: commit logs; NULL on a real broker, where
 * read_committed does it). Fills y; the caller frees y->seen/unique.
 */
static inline int kt_tally_outputs(struct kt_cluster *k, char topics[][128],
                                   const struct dk_commit_log *cs,
                                   struct kt_tally *y)
{
    struct kt_read_stats st;

    y->seen = calloc(y->t->n + 1, 1);
    y->unique = calloc(y->t->ndistinct + 1, 1);
    for (y->output = 0; y->output < 4; y->output++) {
        memset(&st, 0, sizeof(st));
        if (kt_read(k, topics[y->output], cs, kt_tally_fn, y, &st) != 0)
            return -1;
        y->filtered += st.uncommitted;
    }
    return 0;
}

static inline void kt_tally_free(struct kt_tally *y)
{
    free(y->seen);
    free(y->unique);
    y->seen = NULL;
    y->unique = NULL;
}

/*
 * Options of one weir-dedup Kafka instance on workload topics: key "id",
 * time "ts", rolling 1 h, a watermark bound far above any stall (a broker
 * outage, a rebalance, a restart: partitions that stall sit idle at their
 * end, and their backlog would otherwise come in behind the others'
 * watermark as late events; these tests are about exactly once),
 * parallelism 2, exactly once every 100 ms, from the beginning, stopping
 * after idle_exit ms without input, and `session` ("session.timeout.ms=
 * N", static), short so that a member that left is forgotten soon.
 * topics: unique, duplicates, late, errors.
 */
static inline void kt_dedup_opts(struct dedup_kafka_opts *o,
                                 const struct kt_cluster *k, char topics[][128],
                                 const char *input, const char *group,
                                 const char *ckdir, weir_ts_t idle_exit,
                                 const char *session)
{
    memset(o, 0, sizeof(*o));
    o->d.keys = "id";
    o->d.time_field = "ts";
    o->d.scope = WEIR_WINDOW_ROLLING;
    o->d.size = WEIR_HOURS(1);
    o->d.bound = WEIR_SECONDS(60);
    o->d.every = 1;
    o->d.parallelism = 2;
    o->d.ckdir = ckdir;
    o->brokers = k->bootstrap;
    o->topic = input;
    o->group = group;
    o->out_topic = topics[0];
    o->dup_topic = topics[1];
    o->late_topic = topics[2];
    o->err_topic = topics[3];
    o->from_beginning = 1;
    o->idle_exit = idle_exit;
    o->commit_interval = 100;
    o->x[o->nx++] = getenv("KT_DEBUG") ? "log_level=7" : "log_level=2";
    o->x[o->nx++] = session;
    o->x[o->nx++] = "heartbeat.interval.ms=1000";
    if (getenv("KT_DEBUG") != NULL)
        o->x[o->nx++] = "debug=cgrp";
}

/* A unique scratch directory under WEIR_TEST_TMP. */
static inline int kt_tmpdir(char *out, size_t size, const char *what)
{
    const char *base = getenv("WEIR_TEST_TMP");

    if (base == NULL)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(out, size, "%s/%s-XXXXXX", base, what);
    return mkdtemp(out) == NULL ? -1 : 0;
}

/* 1 when directory path has no entry (-1 when it cannot be read). */
static inline int kt_dir_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    int n = 0;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n == 0;
}

static inline void kt_rmtree(const char *path)
{
    char cmd[4300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", path);
}

#endif /* WEIR_TEST_KAFKA_UTIL_H */
