/*
 * bench_kafka.c - Kafka -> dedup -> Kafka throughput, exactly once and at
 * least once, as a ratio to raw librdkafka on the same mock cluster in the
 * same run; then end-to-end latency at half of the measured maximum rate.
 *
 * How it works
 *   A librdkafka mock cluster (3 brokers) runs in this process. N events
 *   (16-byte keys, ~100-byte JSON values, 10% repeats of a recent event)
 *   are loaded into a topic of 16 partitions. Each round measures, on
 *   fresh consumer groups and output topics:
 *     ceiling  raw librdkafka: one consumer in a group -> one
 *              transactional producer, committing the consumed offsets in
 *              the transaction every 100 ms (the same commit interval);
 *     eos      weir-dedup's Kafka topology, exactly once (dedup_kafka.h);
 *     alos     the same, at least once.
 *   Throughput is the output rate seen by an observer consumer reading the
 *   outputs while they are written (first to last record), the same
 *   measure for all three, so the consumer group's join time (seconds on
 *   the mock) stays out of it. The ratio of each round is taken, and the
 *   median over rounds reported.
 *
 *   Every consumer here uses fetch.wait.max.ms=1 (BENCH_KAFKA_FETCH_WAIT_MS
 *   changes it): the mock does not answer a waiting fetch when data
 *   arrives but when the wait expires, so the default 500 ms would be
 *   measured instead of the pipeline (a real broker answers at once).
 *   The mock's sockets get TCP_NODELAY (weir_kafka_mock_nodelay): with
 *   Nagle on, every acknowledgement and commit waits ~40 ms for a delayed
 *   ACK, which a real broker does not. BENCH_KAFKA_NAGLE=1 leaves them.
 *   BENCH_KAFKA_ONLY=raw|eos|alos runs one measurement (for profiling).
 *
 *   Latency: an event generator offers half of the measured maximum
 *   rate for a few seconds, stamping each value with the time it was
 *   produced. Exactly once: latency = the commit time of the transaction
 *   holding the event's output (the commit log has it; the mock shows
 *   records before their commit, so arrival at a consumer would flatter
 *   it) - produced time. At least once: arrival at the observer -
 *   produced time.
 *
 * Usage: bench-kafka [N] (default 200000, at most MAX_EVENTS). Prints a
 * table. The mock keeps only about 5 MB per partition and drops the
 * oldest message sets beyond that, so a larger input would lose records
 * before weir reads them (and the run would wait for them forever).
 */
#if defined(WEIR_WITH_KAFKA) && defined(WEIR_WITH_AVRO)
#include <pthread.h>

#include "../examples/dedup_kafka.h"
#include "bench_build.h"

#define NPART       16
#define ROUNDS      3
#define COMMIT_MS   100
#define LAT_SECONDS 4
#define MAX_EVENTS  400000

static rd_kafka_mock_cluster_t *mc;
static const char *bootstrap;
static rd_kafka_t *producer;
static int topic_seq;

/* fetch.wait.max.ms of every consumer (see above). */
static const char *fetch_wait(void)
{
    const char *v = getenv("BENCH_KAFKA_FETCH_WAIT_MS");

    return v != NULL ? v : "1";
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static rd_kafka_t *client(rd_kafka_type_t type, const char *group,
                          const char *txn_id)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    if (group != NULL) {
        rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err));
        rd_kafka_conf_set(conf, "auto.offset.reset", "earliest", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "session.timeout.ms", "6000", err, sizeof(err));
    }
    if (type == RD_KAFKA_CONSUMER) {
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", fetch_wait(), err,
                          sizeof(err));
        /* As weir's source sets them (see kafka_source.c): librdkafka's
         * default queued.min.messages stalls a fast consumer. */
        rd_kafka_conf_set(conf, "queued.min.messages", "10000000", err,
                          sizeof(err));
        rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "65536", err,
                          sizeof(err));
    }
    if (txn_id != NULL) {
        rd_kafka_conf_set(conf, "transactional.id", txn_id, err, sizeof(err));
        rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof(err));
    }
    if (type == RD_KAFKA_PRODUCER && txn_id == NULL)
        rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
    return rd_kafka_new(type, conf, err, sizeof(err));
}

static void new_topic(char *out, size_t size, const char *what)
{
    snprintf(out, size, "bench-%s-%d", what, topic_seq++);
    rd_kafka_mock_topic_create(mc, out, NPART, 1);
}

static void produce(const char *topic, const char *key, const char *value)
{
    while (rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_KEY((void *)key, strlen(key)),
                             RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(producer, 5);
}

/* Event i: 16-byte key, ~100-byte value; 10% repeat a recent event. */
static void event(uint64_t i, int64_t produced_at, char *key, char *value)
{
    uint64_t id = i;

    if (i > 1000 && (i * 2654435761u) % 10 == 0)
        id = i - 1 - (i * 40503u) % 1000;
    snprintf(key, 17, "k%015" PRIu64, id % 1000000000000000u);
    snprintf(value, 160,
             "{\"id\":\"%s\",\"ts\":%" PRId64 ",\"at\":%" PRId64
             ",\"payload\":\"abcdefghijklmnopqrstuvwxyz0123456789\"}",
             key, produced_at, produced_at);
}

/* ------------------------------------------------------------------ *
 * The observer: reads output topics while they are written
 * ------------------------------------------------------------------ */

struct observer {
    char topics[4][64];
    int ntopics;
    uint64_t expect;
    uint64_t count;
    int64_t first;
    int64_t last;
    int latency; /* record arrival - "at" of each value */
    int64_t *lat;
    size_t nlat;
    int stop;
    pthread_t thread;
};

static int64_t value_at(const rd_kafka_message_t *m)
{
    char buf[256];
    const char *p;

    if (m->len >= sizeof(buf))
        return -1;
    memcpy(buf, m->payload, m->len);
    buf[m->len] = '\0';
    p = strstr(buf, "\"at\":");
    return p != NULL ? strtoll(p + 5, NULL, 10) : -1;
}

static void *observe(void *arg)
{
    struct observer *ob = arg;
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, "bench-observer", NULL);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *m;
    int64_t deadline = now_ms() + 300000;
    int64_t t;
    int i;
    int p;

    rd_kafka_poll_set_consumer(c);
    parts = rd_kafka_topic_partition_list_new(NPART * ob->ntopics);
    for (i = 0; i < ob->ntopics; i++)
        for (p = 0; p < NPART; p++)
            rd_kafka_topic_partition_list_add(parts, ob->topics[i], p)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    while (!ob->stop && ob->count < ob->expect && now_ms() < deadline) {
        m = rd_kafka_consumer_poll(c, 50);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            t = now_ms();
            if (ob->count++ == 0)
                ob->first = t;
            ob->last = t;
            if (ob->latency) {
                ob->lat = realloc(ob->lat, (ob->nlat + 1) * sizeof(int64_t));
                ob->lat[ob->nlat++] = t - value_at(m);
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return NULL;
}

static void observer_start(struct observer *ob, char topics[][64], int n,
                           uint64_t expect, int latency)
{
    int i;

    memset(ob, 0, sizeof(*ob));
    for (i = 0; i < n; i++)
        snprintf(ob->topics[i], sizeof(ob->topics[i]), "%s", topics[i]);
    ob->ntopics = n;
    ob->expect = expect;
    ob->latency = latency;
    pthread_create(&ob->thread, NULL, observe, ob);
}

static double observer_rate(struct observer *ob)
{
    pthread_join(ob->thread, NULL);
    if (ob->count < 2 || ob->last <= ob->first)
        return 0;
    return (double)(ob->count - 1) * 1000.0 / (double)(ob->last - ob->first);
}

/* ------------------------------------------------------------------ *
 * Raw librdkafka: consume -> produce, the ceiling and the latency floor
 * ------------------------------------------------------------------ */

#define RAW_HDR_TXN "bench.txn"
#define RAW_MAX_TXN 4096

/* One consumer in a group feeding one producer, configured as weir's
 * source and sinks are: transactional (default linger, the consumed
 * offsets sent in every transaction, a commit every COMMIT_MS) or, for
 * at least once, idempotent with linger.ms=1. For latency (stamp), each
 * record carries the sequence number of its transaction, whose commit
 * time is kept in commit_ms[]; the ceiling sends records as they came. */
struct raw_pipe {
    char input[64];
    char out[1][64];
    char group[64];
    int txn;
    int stamp;
    uint64_t n; /* stop after n records */
    int64_t commit_ms[RAW_MAX_TXN];
    uint32_t ntxn;
    pthread_t thread;
};

static void raw_fail(const char *what, rd_kafka_error_t *e)
{
    fprintf(stderr, "raw: %s: %s\n", what,
            e != NULL ? rd_kafka_error_string(e) : "failed");
    exit(1);
}

/* Sends the consumed offsets, commits, begins the next transaction. */
static void raw_commit(struct raw_pipe *rp, rd_kafka_t *c, rd_kafka_t *p)
{
    rd_kafka_topic_partition_list_t *pos;
    rd_kafka_consumer_group_metadata_t *md;
    rd_kafka_error_t *e;

    if (rd_kafka_assignment(c, &pos) != 0)
        return;
    rd_kafka_position(c, pos);
    md = rd_kafka_consumer_group_metadata(c);
    e = rd_kafka_send_offsets_to_transaction(p, pos, md, 30000);
    if (e == NULL)
        e = rd_kafka_commit_transaction(p, 30000);
    if (e != NULL)
        raw_fail("commit", e);
    if (rp->ntxn < RAW_MAX_TXN)
        rp->commit_ms[rp->ntxn] = now_ms();
    rp->ntxn++;
    e = rd_kafka_begin_transaction(p);
    if (e != NULL)
        raw_fail("begin", e);
    rd_kafka_consumer_group_metadata_destroy(md);
    rd_kafka_topic_partition_list_destroy(pos);
}

static void raw_forward(struct raw_pipe *rp, rd_kafka_t *p,
                        const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *h = NULL;
    char seq[16];

    if (rp->txn && rp->stamp) {
        snprintf(seq, sizeof(seq), "%" PRIu32, rp->ntxn);
        h = rd_kafka_headers_new(1);
        rd_kafka_header_add(h, RAW_HDR_TXN, -1, seq, -1);
    }
    /* By topic name: a topic handle made once, as weir's sinks use,
     * measured slower for this loop here (0.73-0.99 M/s against
     * 1.02-1.39 M/s, alternating runs), and the ceiling is the faster. */
    while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(rp->out[0]),
                             RD_KAFKA_V_KEY(m->key, m->key_len),
                             RD_KAFKA_V_VALUE(m->payload, m->len),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_HEADERS(h),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(p, 5);
}

static void *raw_run(void *arg)
{
    struct raw_pipe *rp = arg;
    rd_kafka_t *c = client(RD_KAFKA_CONSUMER, rp->group, NULL);
    rd_kafka_t *p = client(RD_KAFKA_PRODUCER, NULL, rp->txn ? rp->group : NULL);
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_message_t *m;
    rd_kafka_error_t *e;
    uint64_t done = 0;
    int64_t next = 0;

    rd_kafka_poll_set_consumer(c);
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, rp->input, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rp->txn) {
        e = rd_kafka_init_transactions(p, 30000);
        if (e == NULL)
            e = rd_kafka_begin_transaction(p);
        if (e != NULL)
            raw_fail("init", e);
    }
    while (done < rp->n) {
        m = rd_kafka_consumer_poll(c, 10);
        if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            raw_forward(rp, p, m);
            done++;
        }
        if (m != NULL)
            rd_kafka_message_destroy(m);
        if (!rp->txn)
            rd_kafka_poll(p, 0);
        else if (now_ms() >= next || done == rp->n) {
            raw_commit(rp, c, p);
            next = now_ms() + COMMIT_MS;
        }
    }
    if (rp->txn)
        rd_kafka_abort_transaction(p, 30000);
    rd_kafka_flush(p, 30000);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
    return NULL;
}

static void raw_start(struct raw_pipe *rp, const char *input, int txn,
                      int stamp, uint64_t n, const char *tag)
{
    memset(rp, 0, sizeof(*rp));
    snprintf(rp->input, sizeof(rp->input), "%s", input);
    new_topic(rp->out[0], sizeof(rp->out[0]), tag);
    snprintf(rp->group, sizeof(rp->group), "bench-%s-%d", tag, topic_seq);
    rp->txn = txn;
    rp->stamp = stamp;
    rp->n = n;
    pthread_create(&rp->thread, NULL, raw_run, rp);
}

/* The ceiling: the raw pipe, exactly once, through n records. */
static double raw_ceiling(const char *input, uint64_t n)
{
    struct raw_pipe *rp = malloc(sizeof(*rp));
    struct observer ob;

    raw_start(rp, input, 1, 0, n, "raw");
    observer_start(&ob, rp->out, 1, n, 0);
    pthread_join(rp->thread, NULL);
    free(rp);
    return observer_rate(&ob);
}

/* ------------------------------------------------------------------ *
 * weir
 * ------------------------------------------------------------------ */

struct weir_run {
    struct dedup_kafka_opts o;
    char topics[4][64];
    char group[64];
    char ckdir[64];
    char msg[CLI_MSG];
    char fetch_wait[64];
    int rc;
    int joined;
    pthread_t thread;
};

static void *weir_thread(void *arg)
{
    struct weir_run *w = arg;

    w->rc = dedup_kafka_run(&w->o, w->msg);
    return NULL;
}

static void weir_start(struct weir_run *w, const char *input, int alos,
                       uint64_t max_records, const char *tag)
{
    static FILE *devnull;
    int i;

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    memset(w, 0, sizeof(*w));
    for (i = 0; i < 4; i++)
        new_topic(w->topics[i], sizeof(w->topics[i]), tag);
    snprintf(w->group, sizeof(w->group), "bench-%s-%d", tag, topic_seq);
    snprintf(w->ckdir, sizeof(w->ckdir), "/tmp/weir-bench-XXXXXX");
    if (mkdtemp(w->ckdir) == NULL)
        exit(1);
    w->o.d.keys = "id";
    w->o.d.time_field = "ts";
    w->o.d.scope = WEIR_WINDOW_ROLLING;
    w->o.d.size = WEIR_HOURS(1);
    w->o.d.bound = WEIR_SECONDS(2);
    w->o.d.every = 1;
    w->o.d.parallelism = 1;
    w->o.d.ckdir = w->ckdir;
    w->o.brokers = bootstrap;
    w->o.topic = input;
    w->o.group = w->group;
    w->o.out_topic = w->topics[0];
    w->o.dup_topic = w->topics[1];
    w->o.late_topic = w->topics[2];
    w->o.err_topic = w->topics[3];
    w->o.at_least_once = alos;
    w->o.from_beginning = 1;
    w->o.max_records = max_records;
    w->o.idle_exit = max_records ? 0 : 2000;
    w->o.commit_interval = COMMIT_MS;
    w->o.x[w->o.nx++] = "log_level=2";
    w->o.x[w->o.nx++] = "session.timeout.ms=6000";
    /* The mock does not wake a waiting fetch when data arrives. */
    snprintf(w->fetch_wait, sizeof(w->fetch_wait), "fetch.wait.max.ms=%s",
             fetch_wait());
    w->o.x[w->o.nx++] = w->fetch_wait;
    w->o.out = devnull;
    pthread_create(&w->thread, NULL, weir_thread, w);
}

static void weir_finish(struct weir_run *w)
{
    char cmd[128];

    if (!w->joined)
        pthread_join(w->thread, NULL);
    w->joined = 1;
    if (w->rc != 0) {
        fprintf(stderr, "weir: %s\n", w->msg);
        exit(1);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", w->ckdir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", w->ckdir);
}

static double weir_rate(const char *input, uint64_t n, int alos)
{
    struct weir_run w;
    struct observer ob;
    double rate;

    weir_start(&w, input, alos, n, alos ? "alos" : "eos");
    observer_start(&ob, w.topics, 4, n, 0);
    rate = observer_rate(&ob);
    weir_finish(&w);
    return rate;
}

/* ------------------------------------------------------------------ *
 * Latency at a given rate
 * ------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* Commit time (unix ms) of the transaction a record's header names, or
 * -1: weir's checkpoint header and commit log, or the raw pipe's. */
typedef int64_t (*commit_at_fn)(const void *arg, const void *hdr, size_t len);

static int64_t weir_commit_at(const void *arg, const void *hdr, size_t len)
{
    const struct dk_commit *cm = dk_commit_log_find(arg, hdr, len);

    return cm != NULL ? cm->ms : -1;
}

static int64_t raw_commit_at(const void *arg, const void *hdr, size_t len)
{
    const struct raw_pipe *rp = arg;
    char buf[16];
    unsigned long seq;

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, hdr, len);
    buf[len] = '\0';
    seq = strtoul(buf, NULL, 10);
    return seq < rp->ntxn && seq < RAW_MAX_TXN ? rp->commit_ms[seq] : -1;
}

/* Exactly-once latencies: commit time of each output record's
 * transaction minus its produced time, reading `topic` after the run. */
static void committed_latencies(const char *topic, const char *hdr,
                                commit_at_fn commit_at, const void *arg,
                                int64_t **lat, size_t *nlat)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *m;
    rd_kafka_headers_t *h;
    const void *v;
    size_t vs;
    int64_t at;
    int64_t deadline = now_ms() + 30000;
    int eofs = 0;
    int p;
    char err[64];

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "bench-lat-reader", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    rd_kafka_poll_set_consumer(c);
    parts = rd_kafka_topic_partition_list_new(NPART);
    for (p = 0; p < NPART; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    while (eofs < NPART && now_ms() < deadline) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            eofs++;
        else if (m->err == 0 && rd_kafka_message_headers(m, &h) == 0 &&
                 rd_kafka_header_get_last(h, hdr, &v, &vs) == 0 &&
                 (at = commit_at(arg, v, vs)) >= 0) {
            *lat = realloc(*lat, (*nlat + 1) * sizeof(**lat));
            (*lat)[(*nlat)++] = at - value_at(m);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

/* The pipeline under a latency measurement: weir, or the raw pipe (the
 * floor: what librdkafka and the mock alone take on the same path). */
struct lat_run {
    int raw;
    int alos;
    struct weir_run w;
    struct raw_pipe *rp;
    char (*topics)[64];
    int ntopics;
};

static void lat_start(struct lat_run *lr, const char *input, uint64_t n)
{
    if (lr->raw) {
        lr->rp = malloc(sizeof(*lr->rp));
        raw_start(lr->rp, input, !lr->alos, 1, n,
                  lr->alos ? "lat-raw-alos" : "lat-raw-eos");
        lr->topics = lr->rp->out;
        lr->ntopics = 1;
    } else {
        weir_start(&lr->w, input, lr->alos, 0,
                   lr->alos ? "lat-alos" : "lat-eos");
        lr->topics = lr->w.topics;
        lr->ntopics = 4;
    }
}

/* Waits for the pipeline to end; exactly once, collects latencies. */
static void lat_finish(struct lat_run *lr, int64_t **lat, size_t *nlat)
{
    struct dk_commit_log cl;

    if (lr->raw) {
        pthread_join(lr->rp->thread, NULL);
        if (!lr->alos)
            committed_latencies(lr->topics[0], RAW_HDR_TXN, raw_commit_at,
                                lr->rp, lat, nlat);
        free(lr->rp);
        return;
    }
    pthread_join(lr->w.thread, NULL);
    lr->w.joined = 1;
    if (!lr->alos) {
        memset(&cl, 0, sizeof(cl));
        dk_commit_log_load(&cl, lr->w.ckdir);
        if (getenv("BENCH_KAFKA_LATENCY_AT") != NULL && cl.n > 1)
            fprintf(stderr, "  %zu transactions, one every %.0f ms\n", cl.n,
                    (double)(cl.c[cl.n - 1].ms - cl.c[0].ms) /
                        (double)(cl.n - 1));
        committed_latencies(lr->topics[0], WEIR_KAFKA_HDR_CHECKPOINT,
                            weir_commit_at, &cl, lat, nlat);
        dk_commit_log_free(&cl);
    }
    weir_finish(&lr->w);
}

/* Runs weir (or the raw pipe) on a live input offered at `rate`
 * events/s; reports p50/p99. */
static void latency(int raw, int alos, double rate, int64_t *p50, int64_t *p99)
{
    struct lat_run lr = {.raw = raw, .alos = alos};
    struct observer ob;
    char input[64];
    char key[20];
    char value[160];
    int64_t *lat = NULL;
    size_t nlat = 0;
    uint64_t i;
    uint64_t n = (uint64_t)(rate * LAT_SECONDS);
    int64_t t0;
    int64_t lo;
    int64_t hi;
    int64_t total = 0;
    int p;

    new_topic(input, sizeof(input), "lat-in");
    lat_start(&lr, input, n + 1);
    /* Warm up: one event, until it comes out (the group has joined) and,
     * at least once, until the observer has read it (it is fetching). */
    if (alos)
        observer_start(&ob, lr.topics, lr.ntopics, n + 1, 1);
    event(0, now_ms(), key, value);
    produce(input, key, value);
    rd_kafka_flush(producer, 10000);
    while (alos ? ob.count == 0 : total == 0) {
        usleep(50000);
        for (p = 0; !alos && p < NPART; p++)
            if (rd_kafka_query_watermark_offsets(producer, lr.topics[0], p, &lo,
                                                 &hi, 5000) == 0)
                total += hi;
    }
    t0 = now_ms();
    for (i = 1; i <= n; i++) {
        while (now_ms() < t0 + (int64_t)((double)i * 1000.0 / rate))
            usleep(200);
        event(i, now_ms(), key, value);
        produce(input, key, value);
        rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 30000);
    if (alos) {
        observer_rate(&ob);
        lat = ob.lat;
        nlat = ob.nlat;
        if (nlat > 0) /* the warm-up event */
            memmove(lat, lat + 1, --nlat * sizeof(*lat));
    }
    lat_finish(&lr, &lat, &nlat);
    *p50 = *p99 = -1;
    if (nlat > 0) {
        qsort(lat, nlat, sizeof(*lat), cmp_i64);
        *p50 = lat[nlat / 2];
        *p99 = lat[nlat * 99 / 100];
    }
    free(lat);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *host;
    char input[64];
    char key[20];
    char value[160];
    char err[256];
    double raw[ROUNDS];
    double eos[ROUNDS];
    double alos[ROUNDS];
    double r_eos[ROUNDS];
    double r_alos[ROUNDS];
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
    uint64_t i;
    int64_t e50;
    int64_t e99;
    int64_t a50;
    int64_t a99;
    int64_t f50[2]; /* the raw pipe at the same rates: the floor */
    int64_t f99[2];
    int r;

    bench_check_build("bench-kafka");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (n < 2 || n > MAX_EVENTS) {
        fprintf(stderr,
                "bench-kafka: N must be 2..%d (the mock cluster keeps about "
                "5 MB per partition)\n",
                MAX_EVENTS);
        return 2;
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    mc = rd_kafka_mock_cluster_new(host, 3);
    bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    if (getenv("BENCH_KAFKA_NAGLE") == NULL)
        weir_kafka_mock_nodelay(bootstrap);
    producer = client(RD_KAFKA_PRODUCER, NULL, NULL);
    new_topic(input, sizeof(input), "in");
    for (i = 0; i < n; i++) {
        event(i, 1700000000000LL + (int64_t)i, key, value);
        produce(input, key, value);
    }
    rd_kafka_flush(producer, 60000);
    if (getenv("BENCH_KAFKA_LATENCY_AT") != NULL) {
        /* Latency only, at a given rate (for investigations). */
        double rate = strtod(getenv("BENCH_KAFKA_LATENCY_AT"), NULL);
        int64_t l[8];
        int k;

        for (k = 0; k < 4; k++)
            latency(k >> 1, k & 1, rate, &l[2 * k], &l[2 * k + 1]);
        printf("at %.0f/s, p50 / p99 ms: weir exactly once %" PRId64
               " / %" PRId64 ", at least once %" PRId64 " / %" PRId64
               "; raw (floor) exactly once %" PRId64 " / %" PRId64
               ", at least once %" PRId64 " / %" PRId64 "\n",
               rate, l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7]);
        return 0;
    }
    printf("bench-kafka: %" PRIu64 " events, %d partitions, 3-broker mock "
           "cluster, commit interval %d ms, %d rounds\n",
           n, NPART, COMMIT_MS, ROUNDS);
    if (getenv("BENCH_KAFKA_ONLY") != NULL) {
        /* One measurement only (for profiling): raw, eos or alos. */
        const char *only = getenv("BENCH_KAFKA_ONLY");
        double rate = strcmp(only, "raw") == 0
                          ? raw_ceiling(input, n)
                          : weir_rate(input, n, strcmp(only, "alos") == 0);

        printf("%s: %.0f/s\n", only, rate);
        return 0;
    }
    for (r = 0; r < ROUNDS; r++) {
        raw[r] = raw_ceiling(input, n);
        eos[r] = weir_rate(input, n, 0);
        alos[r] = weir_rate(input, n, 1);
        r_eos[r] = eos[r] / raw[r];
        r_alos[r] = alos[r] / raw[r];
        printf("  round %d: raw %.0f/s, exactly-once %.0f/s (%.2fx), "
               "at-least-once %.0f/s (%.2fx)\n",
               r + 1, raw[r], eos[r], r_eos[r], alos[r], r_alos[r]);
    }
    qsort(raw, ROUNDS, sizeof(double), cmp_double);
    qsort(eos, ROUNDS, sizeof(double), cmp_double);
    qsort(alos, ROUNDS, sizeof(double), cmp_double);
    qsort(r_eos, ROUNDS, sizeof(double), cmp_double);
    qsort(r_alos, ROUNDS, sizeof(double), cmp_double);
    latency(0, 0, eos[ROUNDS / 2] / 2, &e50, &e99);
    latency(0, 1, alos[ROUNDS / 2] / 2, &a50, &a99);
    latency(1, 0, eos[ROUNDS / 2] / 2, &f50[0], &f99[0]);
    latency(1, 1, alos[ROUNDS / 2] / 2, &f50[1], &f99[1]);
    printf("\n  %-34s %12s %8s %10s %10s\n", "", "events/s", "ratio", "p50 ms",
           "p99 ms");
    printf("  %-34s %12.0f %8s %10s %10s\n",
           "raw consume -> txn produce (ceiling)", raw[ROUNDS / 2], "1.00", "",
           "");
    printf("  %-34s %12.0f %8.2f %10" PRId64 " %10" PRId64 "\n",
           "weir dedup, exactly once", eos[ROUNDS / 2], r_eos[ROUNDS / 2], e50,
           e99);
    printf("  %-34s %12.0f %8.2f %10" PRId64 " %10" PRId64 "\n",
           "weir dedup, at least once", alos[ROUNDS / 2], r_alos[ROUNDS / 2],
           a50, a99);
    printf("  %-34s %12s %8s %10" PRId64 " %10" PRId64 "\n",
           "raw, txn produce, same rate (floor)", "", "", f50[0], f99[0]);
    printf("  %-34s %12s %8s %10" PRId64 " %10" PRId64 "\n",
           "raw, plain produce, same rate", "", "", f50[1], f99[1]);
    printf("  (medians; latency at half of each maximum rate; exactly once: "
           "produced -> transaction committed, at least once: produced -> "
           "read; the raw pipe offered the same rates shows what librdkafka "
           "and the mock alone take)\n");
    rd_kafka_destroy(producer);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return 0;
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf("bench_kafka.c: built without Kafka and Avro, nothing to run\n");
    return 0;
}

#endif
