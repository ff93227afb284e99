/*
 * kafka_demo.c - the embedded Kafka demo (make demo): deduplicate a Kafka
 * topic exactly once, with no broker installed.
 *
 * What it does
 *   1. Starts a librdkafka mock cluster of 3 brokers inside this process.
 *   2. Runs the weir-dedup Kafka topology (dedup_kafka.h) exactly once,
 *      Avro in the Confluent wire format, against it, while
 *   3. a generator produces a realistic order-event stream into a topic
 *      of 6 partitions with the failure modes that make Kafka pipelines
 *      see duplicates:
 *        - producer retries after a lost acknowledgement (the same
 *          message written twice, back to back),
 *        - re-delivery after a consumer crash before its offset commit
 *          (the last few dozen events of a partition sent again),
 *        - a replay from an earlier offset, as after a failover (a long
 *          run of old events sent again),
 *      plus events out of order (within the watermark bound), late events
 *      (behind the watermark), corrupt messages, and two writer schema
 *      versions resolved to one reader schema.
 *   4. Reads the outputs back (read_committed; on the mock, records of
 *      aborted transactions are told apart with the weir.checkpoint
 *      header and the commit log, see docs/design/exactly-once.md),
 *      prints a table and checks every count against what the generator
 *      knows.
 *
 * Latency is end to end: from the moment the generator produced an event
 * to the moment the transaction holding its output committed (the commit
 * log records that time), for every unique event.
 *
 * Exit status 0 when every count matches.
 */
#include <pthread.h>

#include "dedup_kafka.h"

#define NPART    6
#define NEVENTS  120000
#define RATE     40000 /* events per second offered by the generator */
#define BOUND_MS 2000

#define SCHEMA_V1                                                              \
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\","          \
    "\"fields\":[{\"name\":\"order_id\",\"type\":\"string\"},"                 \
    "{\"name\":\"customer\",\"type\":\"string\"},"                             \
    "{\"name\":\"amount_cents\",\"type\":\"int\"},"                            \
    "{\"name\":\"event_time\",\"type\":{\"type\":\"long\","                    \
    "\"logicalType\":\"timestamp-millis\"}},"                                  \
    "{\"name\":\"produced_at\",\"type\":\"long\"}]}"

/* v2 adds a field with a default and widens the amount to long. */
#define SCHEMA_V2                                                              \
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"shop\","          \
    "\"fields\":[{\"name\":\"order_id\",\"type\":\"string\"},"                 \
    "{\"name\":\"customer\",\"type\":\"string\"},"                             \
    "{\"name\":\"amount_cents\",\"type\":\"long\"},"                           \
    "{\"name\":\"event_time\",\"type\":{\"type\":\"long\","                    \
    "\"logicalType\":\"timestamp-millis\"}},"                                  \
    "{\"name\":\"produced_at\",\"type\":\"long\"},"                            \
    "{\"name\":\"channel\",\"type\":[\"null\",\"string\"],"                    \
    "\"default\":null}]}"

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ *
 * The generator
 * ------------------------------------------------------------------ */

struct sent {
    uint32_t order; /* order number                 */
    int64_t ts;     /* event time                   */
    int64_t at;     /* when it was first produced   */
};

struct gen {
    rd_kafka_t *producer;
    const char *topic;
    weir_avro_format_t *fmt[2]; /* writer schemas 1 and 2     */
    weir_avro_codec_t *enc[2];  /* their encoders (borrow fmt) */
    struct sent *log;           /* every valid event sent      */
    uint32_t nlog;
    uint32_t orders;  /* distinct orders so far      */
    uint64_t records; /* messages produced           */
    uint64_t retries; /* duplicates by mode          */
    uint64_t redelivered;
    uint64_t replayed;
    uint64_t late;
    uint64_t corrupt;
    uint64_t unique;
};

static int produce(struct gen *g, const char *key, const void *v, size_t n)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_producev(g->producer, RD_KAFKA_V_TOPIC(g->topic),
                                RD_KAFKA_V_KEY((void *)key, strlen(key)),
                                RD_KAFKA_V_VALUE((void *)v, n),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(g->producer, 5);
    }
    g->records++;
    return err == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* Produces order `order` with event time ts (the same bytes every time
 * for the same arguments, as a retried or replayed message has). */
static int send_order(struct gen *g, uint32_t order, int64_t ts,
                      int64_t produced_at)
{
    char key[32];
    char json[256];
    weir_buf_t b;
    int v2 = order % 2;

    snprintf(key, sizeof(key), "o-%u", order);
    if (v2)
        snprintf(json, sizeof(json),
                 "{\"order_id\":\"o-%u\",\"customer\":\"c-%u\","
                 "\"amount_cents\":%u,\"event_time\":%lld,"
                 "\"produced_at\":%lld,\"channel\":{\"string\":\"web\"}}",
                 order, order % 997, 100 + order % 50000, (long long)ts,
                 (long long)produced_at);
    else
        snprintf(json, sizeof(json),
                 "{\"order_id\":\"o-%u\",\"customer\":\"c-%u\","
                 "\"amount_cents\":%u,\"event_time\":%lld,"
                 "\"produced_at\":%lld}",
                 order, order % 997, 100 + order % 50000, (long long)ts,
                 (long long)produced_at);
    if (weir_avro_encode_json(g->enc[v2], WEIR_BUF_STR(json), &b) != WEIR_OK)
        return -1;
    return produce(g, key, b.data, b.len);
}

static int gen_run(struct gen *g, int64_t t_start)
{
    uint32_t i;
    uint32_t k;
    int64_t ts;
    int64_t due;
    char junk[40];
    char key[32];
    int r;

    srand(20261122);
    for (i = 1; g->records < NEVENTS; i++) {
        /* Pace the offered load. */
        due = t_start + (int64_t)(g->records - 1) * 1000 / RATE;
        while (now_ms() < due)
            usleep(1000);
        r = rand() % 1000;
        /* Event time: when the order happened, up to half the bound
         * before it is produced (disorder the watermark absorbs). */
        ts = now_ms() - rand() % (BOUND_MS / 2);
        if (r < 8) {
            /* A corrupt message. */
            size_t n = 5 + (size_t)(rand() % 30);
            size_t j;

            for (j = 0; j < n; j++)
                junk[j] = (char)rand();
            if (r < 4)
                junk[0] = 0; /* right magic byte, garbage after it */
            snprintf(key, sizeof(key), "junk-%u", i);
            if (produce(g, key, junk, n) != 0)
                return -1;
            g->corrupt++;
        } else if (r < 16 && i > NEVENTS / 5) {
            /* A late order: its event time is minutes behind. */
            if (send_order(g, 1000000000u + i, ts - 5 * 60 * 1000, now_ms()) !=
                0)
                return -1;
            g->late++;
        } else if (r < 40 && g->nlog > 0) {
            /* A producer retry after a lost ack: the last message again,
             * the same bytes. */
            struct sent *s = &g->log[g->nlog - 1];

            if (send_order(g, s->order, s->ts, s->at) != 0)
                return -1;
            g->retries++;
        } else if (r < 42 && g->nlog > 100) {
            /* Re-delivery after a crash before the offset commit. */
            for (k = g->nlog - 40; k < g->nlog; k++)
                if (send_order(g, g->log[k].order, g->log[k].ts,
                               g->log[k].at) != 0)
                    return -1;
            g->redelivered += 40;
        } else if (r == 42 && g->nlog > 5000) {
            /* A replay from an earlier offset, as after a failover. */
            uint32_t from = g->nlog - 5000 + (uint32_t)rand() % 2000;

            for (k = from; k < from + 600; k++)
                if (send_order(g, g->log[k].order, g->log[k].ts,
                               g->log[k].at) != 0)
                    return -1;
            g->replayed += 600;
        } else {
            /* A new order. */
            uint32_t order = g->orders++;
            int64_t at = now_ms();

            if (send_order(g, order, ts, at) != 0)
                return -1;
            g->log[g->nlog].order = order;
            g->log[g->nlog].ts = ts;
            g->log[g->nlog].at = at;
            g->nlog++;
            g->unique++;
        }
    }
    return rd_kafka_flush(g->producer, 60000) == 0 ? 0 : -1;
}

/* Sends the first order and waits until it reaches the unique output, so
 * the offered load meets a running pipeline (the first join of a group
 * takes a few seconds; the mock has no API to ask about groups). */
static int warm_up(struct gen *g, const char *unique_topic)
{
    int64_t deadline = now_ms() + 60000;
    int64_t lo;
    int64_t hi;
    int64_t total = 0;
    int64_t at = now_ms();
    int p;

    if (send_order(g, g->orders, at, at) != 0 ||
        rd_kafka_flush(g->producer, 10000) != 0)
        return -1;
    g->log[g->nlog].order = g->orders++;
    g->log[g->nlog].ts = at;
    g->log[g->nlog].at = at;
    g->nlog++;
    g->unique++;
    while (total == 0 && now_ms() < deadline) {
        usleep(50000);
        for (p = 0; p < NPART; p++)
            if (rd_kafka_query_watermark_offsets(g->producer, unique_topic, p,
                                                 &lo, &hi, 5000) == 0)
                total += hi;
    }
    return total > 0 ? 0 : -1;
}

/* ------------------------------------------------------------------ *
 * Reading the outputs back
 * ------------------------------------------------------------------ */

struct tally {
    uint64_t count;    /* committed records                  */
    uint64_t filtered; /* of aborted/open transactions       */
    int64_t *lat;      /* unique output: latencies (ms)      */
    size_t nlat;
    uint64_t bad_key; /* a record whose key is not its order */
    int64_t last;     /* latest commit time seen            */
};

/* Reads every partition of topic from the start to its end. */
static int read_topic(const char *bootstrap, const char *topic,
                      const struct dk_commit_log *cs, weir_avro_codec_t *dec,
                      struct tally *t)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *m;
    rd_kafka_headers_t *h;
    rd_kafka_t *c;
    const struct dk_commit *cm;
    const void *v;
    weir_buf_t id;
    size_t vs;
    char err[256];
    int eofs = 0;
    int i;
    int64_t deadline = now_ms() + 60000;
    int64_t at;
    int64_t produced;

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "weir-demo-reader", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "isolation.level", "read_committed", err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (c == NULL)
        return -1;
    rd_kafka_poll_set_consumer(c);
    parts = rd_kafka_topic_partition_list_new(NPART);
    for (i = 0; i < NPART; i++)
        rd_kafka_topic_partition_list_add(parts, topic, i)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(c, parts);
    while (eofs < NPART && now_ms() < deadline) {
        m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            at = -1;
            if (rd_kafka_message_headers(m, &h) == 0 &&
                rd_kafka_header_get_last(h, WEIR_KAFKA_HDR_CHECKPOINT, &v,
                                         &vs) == 0 &&
                (cm = dk_commit_log_find(cs, v, vs)) != NULL)
                at = cm->ms;
            if (at < 0) {
                t->filtered++;
            } else {
                t->count++;
                if (at > t->last)
                    t->last = at;
                if (dec != NULL &&
                    weir_avro_decode(dec, WEIR_BUF(m->payload, m->len)) ==
                        WEIR_OK &&
                    weir_avro_field_i64(dec, "produced_at", &produced) ==
                        WEIR_OK) {
                    t->lat = realloc(t->lat, (t->nlat + 1) * sizeof(*t->lat));
                    t->lat[t->nlat++] = at - produced;
                    if (weir_avro_field(dec, "order_id", &id) != WEIR_OK ||
                        id.len != m->key_len ||
                        memcmp(id.data, m->key, id.len) != 0)
                        t->bad_key++;
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return eofs == NPART ? 0 : -1;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ *
 * Main
 * ------------------------------------------------------------------ */

struct pipeline_thread {
    struct dedup_kafka_opts o;
    char msg[CLI_MSG];
    int rc;
};

static void *run_pipeline(void *arg)
{
    struct pipeline_thread *pt = arg;

    pt->rc = dedup_kafka_run(&pt->o, pt->msg);
    return NULL;
}

static int write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    if (fp == NULL)
        return -1;
    fputs(text, fp);
    return fclose(fp);
}

static void row(const char *name, uint64_t want, uint64_t got)
{
    printf("  %-12s %12" PRIu64 " %12" PRIu64 "   %s\n", name, want, got,
           want == got ? "ok" : "MISMATCH");
}

/* The demo's scratch directory: checkpoints/ and schemas/ (the writer
 * schemas 1.avsc and 2.avsc; 2 is also the reader schema). */
struct demo_dir {
    char dir[32];
    char ckdir[64];
    char sdir[64];
    char reader[128]; /* schemas/2.avsc */
};

static int demo_dir_make(struct demo_dir *d)
{
    char path[128];

    snprintf(d->dir, sizeof(d->dir), "/tmp/weir-demo-XXXXXX");
    if (mkdtemp(d->dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(d->ckdir, sizeof(d->ckdir), "%s/checkpoints", d->dir);
    snprintf(d->sdir, sizeof(d->sdir), "%s/schemas", d->dir);
    snprintf(path, sizeof(path), "%s/1.avsc", d->sdir);
    snprintf(d->reader, sizeof(d->reader), "%s/2.avsc", d->sdir);
    if (mkdir(d->sdir, 0755) != 0 || write_file(path, SCHEMA_V1) != 0 ||
        write_file(d->reader, SCHEMA_V2) != 0)
        return -1;
    return 0;
}

static void demo_dir_remove(const struct demo_dir *d)
{
    char cmd[64];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "weir demo: could not remove %s\n", d->dir);
}

/* The weir-dedup Kafka topology's options for the demo. */
static void pipeline_opts(struct dedup_kafka_opts *o, const char *bootstrap,
                          char topics[5][64], const struct demo_dir *d,
                          FILE *summary)
{
    memset(o, 0, sizeof(*o));
    o->d.keys = "order_id";
    o->d.time_field = "event_time";
    o->d.scope = WEIR_WINDOW_ROLLING;
    o->d.size = WEIR_MINUTES(10);
    o->d.bound = BOUND_MS;
    o->d.every = 1;
    o->d.parallelism = 2;
    o->d.ckdir = d->ckdir;
    o->brokers = bootstrap;
    o->topic = topics[0];
    o->group = "weir-demo";
    o->out_topic = topics[1];
    o->dup_topic = topics[2];
    o->late_topic = topics[3];
    o->err_topic = topics[4];
    o->avro = 1;
    o->schema = d->reader;
    o->schema_dir = d->sdir;
    o->from_beginning = 1;
    o->idle_exit = 3000;
    o->commit_interval = 100;
    o->x[o->nx++] = "log_level=2";
    o->x[o->nx++] = "session.timeout.ms=6000";
    /* The mock does not answer a waiting fetch when data arrives but when
     * the wait expires (a real broker answers at once): without this,
     * latency would be the default 500 ms fetch wait. 1 ms, as in
     * bench-kafka; 10 ms added about 5 ms to every event's latency. */
    o->x[o->nx++] = "fetch.wait.max.ms=1";
    o->out = summary;
}

/* The generator's producer and its encoders (writer schemas 1 and 2). */
static int gen_open(struct gen *g, const char *bootstrap, const char *topic)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    int i;

    memset(g, 0, sizeof(*g));
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "linger.ms", "2", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    g->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    g->topic = topic;
    for (i = 0; i < 2; i++) {
        g->fmt[i] = weir_avro_format_new_json(i ? SCHEMA_V2 : SCHEMA_V1, NULL,
                                              err, sizeof(err));
        weir_avro_format_set_schema_id(g->fmt[i], i + 1);
        g->enc[i] = weir_avro_codec_new(g->fmt[i], err, sizeof(err));
    }
    g->log = calloc(NEVENTS, sizeof(*g->log));
    return g->producer != NULL && g->enc[0] != NULL && g->enc[1] != NULL &&
                   g->log != NULL
               ? 0
               : -1;
}

static void gen_close(struct gen *g)
{
    int i;

    for (i = 0; i < 2; i++) {
        weir_avro_codec_destroy(g->enc[i]);
        weir_avro_format_destroy(g->fmt[i]);
    }
    free(g->log);
    if (g->producer != NULL)
        rd_kafka_destroy(g->producer);
}

/* Reads the four outputs back (committed records only) into t[]. */
static int read_back(const char *bootstrap, char topics[5][64],
                     const struct demo_dir *d, struct dk_commit_log *cs,
                     struct tally t[4])
{
    weir_avro_format_t *fmt;
    weir_avro_codec_t *dec;
    char err[256];
    int rc = 0;
    int i;

    memset(cs, 0, sizeof(*cs));
    memset(t, 0, 4 * sizeof(*t));
    dk_commit_log_load(cs, d->ckdir);
    fmt = weir_avro_format_new(d->reader, d->sdir, err, sizeof(err));
    dec = weir_avro_codec_new(fmt, err, sizeof(err));
    for (i = 0; i < 4 && rc == 0; i++) {
        rc = read_topic(bootstrap, topics[i + 1], cs, i == 0 ? dec : NULL,
                        &t[i]);
        if (rc != 0)
            fprintf(stderr, "weir demo: cannot read %s\n", topics[i + 1]);
    }
    weir_avro_codec_destroy(dec);
    weir_avro_format_destroy(fmt);
    return rc;
}

/* Prints the table; returns 1 when every count matches the generator. */
static int report(const struct gen *g, struct tally t[4],
                  const struct dk_commit_log *cs, int64_t t_start,
                  const char *summary)
{
    int64_t t_end = t_start + 1;
    double secs;
    int ok;
    int i;

    for (i = 0; i < 4; i++)
        if (t[i].last > t_end)
            t_end = t[i].last;
    secs = (double)(t_end - t_start) / 1000.0;
    if (t[0].nlat > 0)
        qsort(t[0].lat, t[0].nlat, sizeof(*t[0].lat), cmp_i64);

    printf("\n  %-12s %12s %12s\n", "", "generator", "weir");
    row("records", g->records,
        t[0].count + t[1].count + t[2].count + t[3].count);
    row("unique", g->unique, t[0].count);
    row("duplicates", g->retries + g->redelivered + g->replayed, t[1].count);
    row("late", g->late, t[2].count);
    row("errors", g->corrupt, t[3].count);
    printf("  %-12s %12.0f events/s over %.1f s (offered %d/s)\n", "throughput",
           (double)g->records / secs, secs, RATE);
    if (t[0].nlat > 0)
        printf("  %-12s p50 %" PRId64 " ms, p99 %" PRId64
               " ms (produced -> transaction committed)\n",
               "latency", t[0].lat[t[0].nlat / 2],
               t[0].lat[t[0].nlat * 99 / 100]);
    printf("  %-12s %zu transactions; %" PRIu64 " records of aborted or "
           "open transactions left out (the mock shows them to "
           "read_committed readers)\n",
           "kafka", cs->n,
           t[0].filtered + t[1].filtered + t[2].filtered + t[3].filtered);
    printf("  %-12s %s", "weir-dedup", summary);
    ok = g->unique == t[0].count &&
         g->retries + g->redelivered + g->replayed == t[1].count &&
         g->late == t[2].count && g->corrupt == t[3].count && t[0].bad_key == 0;
    printf("\n%s\n", ok ? "check: every count matches the generator's "
                          "ground truth: each event once, exactly once."
                        : "check: MISMATCH against the generator's ground "
                          "truth.");
    return ok;
}

/* Runs the pipeline in a thread while the generator offers its load;
 * the pipeline's summary line goes to `summary`. */
static int run(struct gen *g, struct pipeline_thread *pt, char topics[5][64],
               int64_t *t_start, char *summary, size_t size)
{
    FILE *sum = pt->o.out;
    pthread_t th;

    if (pthread_create(&th, NULL, run_pipeline, pt) != 0)
        return -1;
    printf("  generator      %d events at %d events/s: retries, "
           "re-deliveries, replays, disorder, late and corrupt events\n",
           NEVENTS, RATE);
    if (warm_up(g, topics[1]) != 0) {
        fprintf(stderr, "weir demo: the pipeline did not start\n");
        return -1;
    }
    *t_start = now_ms();
    if (gen_run(g, *t_start) != 0) {
        fprintf(stderr, "weir demo: producing failed\n");
        return -1;
    }
    pthread_join(th, NULL);
    if (pt->rc != 0) {
        fprintf(stderr, "weir demo: pipeline: %s\n", pt->msg);
        return -1;
    }
    rewind(sum);
    if (fgets(summary, (int)size, sum) == NULL)
        summary[0] = '\0';
    return 0;
}

/* A mock cluster of 3 brokers in this process (hosted by *host), with
 * the demo's topics; prints what the demo does. */
static rd_kafka_mock_cluster_t *start_cluster(rd_kafka_t **host,
                                              char topics[5][64])
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    char err[256];
    int i;

    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    mc = *host ? rd_kafka_mock_cluster_new(*host, 3) : NULL;
    if (mc == NULL)
        return NULL;
    bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    weir_kafka_mock_nodelay(bootstrap); /* answer at once, as a broker */
    for (i = 0; i < 5; i++)
        rd_kafka_mock_topic_create(mc, topics[i], NPART, 3);
    printf("weir demo: deduplicating Kafka orders exactly once\n");
    printf("  mock cluster   3 brokers at %s (in this process)\n", bootstrap);
    printf("  input          topic %s, %d partitions, Avro (Confluent "
           "framing, writer schemas 1 and 2, reader schema 2)\n",
           topics[0], NPART);
    printf("  dedup          key order_id, rolling 10 min, watermark bound "
           "%d ms, commit interval 100 ms\n",
           BOUND_MS);
    return mc;
}

int main(void)
{
    static char topics[5][64] = {"orders", "orders-unique", "orders-duplicates",
                                 "orders-late", "orders-errors"};
    struct pipeline_thread pt;
    struct demo_dir d;
    struct gen g;
    struct dk_commit_log cs;
    struct tally t[4];
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc;
    const char *bootstrap;
    char summary[256] = "";
    int64_t t_start = 0;
    int ok = 0;
    int i;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (demo_dir_make(&d) != 0)
        return 1;

    /* 1. The cluster. */
    mc = start_cluster(&host, topics);
    if (mc == NULL) {
        fprintf(stderr, "weir demo: cannot start the mock cluster\n");
        return 1;
    }
    bootstrap = rd_kafka_mock_cluster_bootstraps(mc);

    /* 2. The pipeline (in its own thread) and 3. the generator, offering
     * RATE events/s once the group is up. */
    memset(&pt, 0, sizeof(pt));
    pipeline_opts(&pt.o, bootstrap, topics, &d, tmpfile());
    if (pt.o.out == NULL || gen_open(&g, bootstrap, topics[0]) != 0) {
        fprintf(stderr, "weir demo: cannot set up the generator\n");
        return 1;
    }
    if (run(&g, &pt, topics, &t_start, summary, sizeof(summary)) != 0)
        return 1;
    fclose(pt.o.out);

    /* 4. Read back, committed records only, and check. */
    if (read_back(bootstrap, topics, &d, &cs, t) == 0)
        ok = report(&g, t, &cs, t_start, summary);

    for (i = 0; i < 4; i++)
        free(t[i].lat);
    dk_commit_log_free(&cs);
    gen_close(&g);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    demo_dir_remove(&d);
    return ok ? 0 : 1;
}
