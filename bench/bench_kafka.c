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
 * Ceiling: raw consume -> transactional produce
 * ------------------------------------------------------------------ */

static double raw_ceiling(const char *input, uint64_t n, int round)
{
    char group[64];
    char txn[64];
    char out[1][64];
    struct observer ob;
    rd_kafka_t *c;
    rd_kafka_t *p;
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_topic_partition_list_t *pos;
    rd_kafka_consumer_group_metadata_t *md;
    rd_kafka_message_t *m;
    rd_kafka_error_t *e;
    uint64_t done = 0;
    int64_t next = 0;

    snprintf(group, sizeof(group), "bench-raw-%d", round);
    snprintf(txn, sizeof(txn), "bench-raw-%d", round);
    new_topic(out[0], sizeof(out[0]), "raw-out");
    c = client(RD_KAFKA_CONSUMER, group, NULL);
    p = client(RD_KAFKA_PRODUCER, NULL, txn);
    rd_kafka_poll_set_consumer(c);
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, input, RD_KAFKA_PARTITION_UA);
    rd_kafka_subscribe(c, list);
    rd_kafka_topic_partition_list_destroy(list);
    e = rd_kafka_init_transactions(p, 30000);
    if (e == NULL)
        e = rd_kafka_begin_transaction(p);
    if (e != NULL) {
        fprintf(stderr, "raw: %s\n", rd_kafka_error_string(e));
        exit(1);
    }
    observer_start(&ob, out, 1, n, 0);
    while (done < n) {
        m = rd_kafka_consumer_poll(c, 10);
        if (m != NULL && m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            while (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(out[0]),
                                     RD_KAFKA_V_KEY(m->key, m->key_len),
                                     RD_KAFKA_V_VALUE(m->payload, m->len),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END) ==
                   RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(p, 5);
            done++;
        }
        if (m != NULL)
            rd_kafka_message_destroy(m);
        if (now_ms() >= next || done == n) {
            if (rd_kafka_assignment(c, &pos) == 0) {
                rd_kafka_position(c, pos);
                md = rd_kafka_consumer_group_metadata(c);
                e = rd_kafka_send_offsets_to_transaction(p, pos, md, 30000);
                if (e == NULL)
                    e = rd_kafka_commit_transaction(p, 30000);
                if (e == NULL)
                    e = rd_kafka_begin_transaction(p);
                if (e != NULL) {
                    fprintf(stderr, "raw: %s\n", rd_kafka_error_string(e));
                    exit(1);
                }
                rd_kafka_consumer_group_metadata_destroy(md);
                rd_kafka_topic_partition_list_destroy(pos);
            }
            next = now_ms() + COMMIT_MS;
        }
    }
    rd_kafka_abort_transaction(p, 30000);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    rd_kafka_destroy(p);
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

/* EOS latencies: commit time of each output record's transaction minus
 * its produced time, reading the outputs after the run. */
static void eos_latencies(struct weir_run *w, int64_t **lat, size_t *nlat)
{
    struct dk_commit_log cl;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *c;
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_message_t *m;
    rd_kafka_headers_t *h;
    const void *v;
    size_t vs;
    const struct dk_commit *cm;
    int64_t deadline = now_ms() + 30000;
    int eofs = 0;
    int p;
    char err[64];

    memset(&cl, 0, sizeof(cl));
    dk_commit_log_load(&cl, w->ckdir);
    if (getenv("BENCH_KAFKA_LATENCY_AT") != NULL && cl.n > 1)
        fprintf(stderr, "  %zu transactions, one every %.0f ms\n", cl.n,
                (double)(cl.c[cl.n - 1].ms - cl.c[0].ms) / (double)(cl.n - 1));
    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, err, sizeof(err));
    rd_kafka_conf_set(conf, "group.id", "bench-lat-reader", err, sizeof(err));
    rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof(err));
    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    rd_kafka_poll_set_consumer(c);
    parts = rd_kafka_topic_partition_list_new(NPART);
    for (p = 0; p < NPART; p++)
        rd_kafka_topic_partition_list_add(parts, w->topics[0], p)->offset =
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
                 rd_kafka_header_get_last(h, WEIR_KAFKA_HDR_CHECKPOINT, &v,
                                          &vs) == 0 &&
                 (cm = dk_commit_log_find(&cl, v, vs)) != NULL) {
            *lat = realloc(*lat, (*nlat + 1) * sizeof(**lat));
            (*lat)[(*nlat)++] = cm->ms - value_at(m);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    dk_commit_log_free(&cl);
}

/* Runs weir on a live input offered at `rate` events/s; reports p50/p99. */
static void latency(int alos, double rate, int64_t *p50, int64_t *p99)
{
    struct weir_run w;
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
    weir_start(&w, input, alos, 0, alos ? "lat-alos" : "lat-eos");
    /* Warm up: one event, until it comes out (the group has joined) and,
     * at least once, until the observer has read it (it is fetching). */
    if (alos)
        observer_start(&ob, w.topics, 4, n + 1, 1);
    event(0, now_ms(), key, value);
    produce(input, key, value);
    rd_kafka_flush(producer, 10000);
    while (alos ? ob.count == 0 : total == 0) {
        usleep(50000);
        for (p = 0; !alos && p < NPART; p++)
            if (rd_kafka_query_watermark_offsets(producer, w.topics[0], p, &lo,
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
    if (!alos) {
        pthread_join(w.thread, NULL);
        w.joined = 1;
        eos_latencies(&w, &lat, &nlat);
    }
    weir_finish(&w);
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
    int r;

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

        latency(0, rate, &e50, &e99);
        latency(1, rate, &a50, &a99);
        printf("at %.0f/s: exactly once p50 %" PRId64 " p99 %" PRId64
               " ms, at least once p50 %" PRId64 " p99 %" PRId64 " ms\n",
               rate, e50, e99, a50, a99);
        return 0;
    }
    printf("bench-kafka: %" PRIu64 " events, %d partitions, 3-broker mock "
           "cluster, commit interval %d ms, %d rounds\n",
           n, NPART, COMMIT_MS, ROUNDS);
    if (getenv("BENCH_KAFKA_ONLY") != NULL) {
        /* One measurement only (for profiling): raw, eos or alos. */
        const char *only = getenv("BENCH_KAFKA_ONLY");
        double rate = strcmp(only, "raw") == 0
                          ? raw_ceiling(input, n, 0)
                          : weir_rate(input, n, strcmp(only, "alos") == 0);

        printf("%s: %.0f/s\n", only, rate);
        return 0;
    }
    for (r = 0; r < ROUNDS; r++) {
        raw[r] = raw_ceiling(input, n, r);
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
    latency(0, eos[ROUNDS / 2] / 2, &e50, &e99);
    latency(1, alos[ROUNDS / 2] / 2, &a50, &a99);
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
    printf("  (medians; latency at half of each maximum rate; exactly once: "
           "produced -> transaction committed, at least once: produced -> "
           "read)\n");
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
