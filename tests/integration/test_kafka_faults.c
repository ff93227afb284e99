/*
 * test_kafka_faults.c - exactly once through broker faults, with Avro.
 *
 * The input is Avro in the Confluent wire format (schema id 1 in a local
 * schema directory) with corrupt messages among it, keyed by event id. It
 * arrives over a few seconds while the weir-dedup Kafka topology runs
 * exactly once; meanwhile the mock cluster fails requests (produce,
 * AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn: errors
 * the clients must retry), one broker goes down and comes back, an offset
 * commit in a transaction fails in a way that requires an abort, and one
 * produce request fails for good: aborted transactions restart the
 * pipeline from its last committed checkpoint. The
 * committed outputs must hold every input record once, corrupt ones in
 * the errors output with a reason, every distinct event once in the
 * unique output.
 *
 * With WEIR_TEST_BROKERS the same workload runs without the injected
 * faults (a real cluster cannot be told to fail).
 */
#if defined(WEIR_WITH_KAFKA) && defined(WEIR_WITH_AVRO)
/* cmocka needs these headers first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <pthread.h>

#include "../../examples/dedup_kafka.h"
#include "test_kafka_util.h"

#define NEVENTS 20000
#define NPART   4

/* Kafka API keys of the requests we fail. */
#define API_PRODUCE               0
#define API_ADD_PARTITIONS_TO_TXN 24
#define API_ADD_OFFSETS_TO_TXN    25
#define API_END_TXN               26
#define API_TXN_OFFSET_COMMIT     28

#define SCHEMA                                                                 \
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"weir.test\","     \
    "\"fields\":[{\"name\":\"id\",\"type\":\"string\"},"                       \
    "{\"name\":\"ts\",\"type\":\"long\"},{\"name\":\"seq\",\"type\":"          \
    "\"long\"},{\"name\":\"user\",\"type\":[\"null\",\"string\"],"             \
    "\"default\":null}]}"

static weir_avro_codec_t *reader; /* decodes outputs for the check */

struct instance {
    struct dedup_kafka_opts o;
    char msg[CLI_MSG];
    int rc;
};

static void *run_instance(void *arg)
{
    struct instance *in = arg;

    in->rc = dedup_kafka_run(&in->o, in->msg);
    return NULL;
}

/* seq of an output: from the key of a corrupt message ("bad-N"), else
 * from the Avro value. */
static int64_t seq_of(const rd_kafka_message_t *m)
{
    char buf[32];
    int64_t seq;

    if (m->key_len > 4 && m->key_len < sizeof(buf) &&
        memcmp(m->key, "bad-", 4) == 0) {
        memcpy(buf, (const char *)m->key + 4, m->key_len - 4);
        buf[m->key_len - 4] = '\0';
        return (int64_t)strtoul(buf, NULL, 10);
    }
    if (weir_avro_decode(reader, WEIR_BUF(m->payload, m->len)) != WEIR_OK ||
        weir_avro_field_i64(reader, "seq", &seq) != WEIR_OK)
        return -1;
    return seq;
}

/* An event as a framed Avro value, or garbage when it is corrupt. */
static size_t encode_event(weir_avro_codec_t *c, const struct kt_truth *t,
                           uint32_t seq, char *key, size_t ksize, char *out)
{
    char json[160];
    weir_buf_t b;
    size_t i;
    size_t n;

    if (t->id[seq] == KT_CORRUPT) {
        snprintf(key, ksize, "bad-%u", seq);
        n = 1 + (size_t)(rand() % 30);
        for (i = 0; i < n; i++)
            out[i] = (char)rand();
        if (seq % 2 == 0 && n > 5)
            out[0] = 0; /* right magic byte, garbage after it */
        return n;
    }
    snprintf(key, ksize, "e%u", t->id[seq]);
    snprintf(json, sizeof(json),
             "{\"id\":\"e%u\",\"ts\":%u,\"seq\":%u,\"user\":%s}", t->id[seq],
             1000000u + seq, seq, seq % 3 ? "null" : "{\"string\":\"u\"}");
    assert_int_equal(WEIR_OK, weir_avro_encode_json(c, WEIR_BUF_STR(json), &b));
    memcpy(out, b.data, b.len);
    return b.len;
}

static char out_topics[4][128];

/* Records in the output topics so far (high watermarks). */
static int64_t outputs_size(void)
{
    int64_t total = 0;
    int64_t lo;
    int64_t hi;
    int t;
    int p;

    for (t = 0; t < 4; t++)
        for (p = 0; p < NPART; p++)
            if (rd_kafka_query_watermark_offsets(
                    cluster.producer, out_topics[t], p, &lo, &hi, 5000) == 0)
                total += hi;
    return total;
}

/* Counts the copies of each event in the input topic. */
static int count_input(const rd_kafka_message_t *m,
                       const struct dk_commit *commit, void *opaque)
{
    uint8_t *copies = opaque;
    int64_t seq = seq_of(m);

    (void)commit;
    if (seq >= 0 && seq < NEVENTS && copies[seq] < 255)
        copies[seq]++;
    return 0;
}

static void inject(int step)
{
    if (cluster.mc == NULL)
        return;
    if (step == 4) {
        print_message("injecting request errors\n");
        rd_kafka_mock_push_request_errors(
            cluster.mc, API_PRODUCE, 4,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
            RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
            RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
            RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION);
        rd_kafka_mock_push_request_errors(
            cluster.mc, API_ADD_PARTITIONS_TO_TXN, 2,
            RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
            RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE);
        rd_kafka_mock_push_request_errors(
            cluster.mc, API_ADD_OFFSETS_TO_TXN, 1,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
        rd_kafka_mock_push_request_errors(
            cluster.mc, API_TXN_OFFSET_COMMIT, 1,
            RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
        rd_kafka_mock_push_request_errors(cluster.mc, API_END_TXN, 2,
                                          RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                          RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    } else if (step == 8) {
        print_message("broker 2 down\n");
        rd_kafka_mock_broker_set_down(cluster.mc, 2);
    } else if (step == 14) {
        print_message("broker 2 up\n");
        rd_kafka_mock_broker_set_up(cluster.mc, 2);
    } else if (step == 11) {
        /* An abortable error only a transactional producer can get (the
         * test's clients never send TxnOffsetCommit): the transaction is
         * aborted and the pipeline restarts from its last commit. */
        print_message("failing the next TxnOffsetCommit\n");
        rd_kafka_mock_push_request_errors(
            cluster.mc, API_TXN_OFFSET_COMMIT, 1,
            RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    } else if (step == 16) {
        /* A permanent produce error: the records of that request cannot
         * be delivered, the transaction must be aborted, and weir-dedup
         * restarts from its last committed checkpoint. Injected right
         * after our own producer has flushed, so that the pipeline's
         * producer sends the next produce request. */
        int64_t before;
        int64_t deadline;

        kt_flush(&cluster);
        before = outputs_size();
        print_message("injecting a permanent produce error\n");
        rd_kafka_mock_push_request_errors(cluster.mc, API_PRODUCE, 1,
                                          RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
        /* Hold our own input back until the pipeline has produced again
         * (after its restart, when it took the error). */
        deadline = kt_now() + 30000;
        while (outputs_size() == before && kt_now() < deadline)
            usleep(20000);
    }
}

static void test_kafka_faults_avro_exactly_once(void **state)
{
    struct instance in;
    struct kt_truth truth = {0};
    struct dk_commit_log cs = {0};
    struct kt_tally y;
    weir_avro_format_t *fmt;
    weir_avro_codec_t *enc;
    pthread_t thread;
    char topics[4][128];
    char input[128];
    char group[128];
    char dir[4096];
    char ckdir[4200];
    char sdir[4200];
    char path[4300];
    char key[32];
    char value[256];
    char err[256];
    FILE *fp;
    FILE *sum = tmpfile();
    size_t len;
    uint64_t missing = 0;
    uint64_t twice = 0;
    uint32_t i;
    uint32_t runs = 0;
    uint8_t *copies;
    uint64_t repeated = 0;
    uint64_t corrupt;

    (void)state;
    srand(777);
    print_message("seed 777\n");
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "kafka-faults"));
    snprintf(ckdir, sizeof(ckdir), "%s/ck", dir);
    snprintf(sdir, sizeof(sdir), "%s/schemas", dir);
    assert_int_equal(0, mkdir(sdir, 0755));
    snprintf(path, sizeof(path), "%s/1.avsc", sdir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(SCHEMA, fp);
    fclose(fp);
    fmt = weir_avro_format_new(NULL, sdir, err, sizeof(err));
    assert_non_null(fmt);
    reader = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(reader);
    {
        weir_avro_format_t *wfmt =
            weir_avro_format_new_json(SCHEMA, NULL, err, sizeof(err));

        assert_non_null(wfmt);
        assert_int_equal(WEIR_OK, weir_avro_format_set_schema_id(wfmt, 1));
        enc = weir_avro_codec_new(wfmt, err, sizeof(err));
        assert_non_null(enc);

        kt_topic_name(input, sizeof(input), "faults-in");
        kt_topic_name(group, sizeof(group), "faults-grp");
        assert_int_equal(0, kt_create_topic(&cluster, input, NPART));
        for (i = 0; i < 4; i++) {
            kt_topic_name(topics[i], sizeof(topics[i]), "faults-out");
            assert_int_equal(0, kt_create_topic(&cluster, topics[i], NPART));
            memcpy(out_topics[i], topics[i], sizeof(topics[i]));
        }
        memset(&in, 0, sizeof(in));
        in.o.d.keys = "id";
        in.o.d.time_field = "ts";
        in.o.d.scope = WEIR_WINDOW_ROLLING;
        in.o.d.size = WEIR_HOURS(1);
        /* A bound far above any stall (a broker outage, a rebalance, a
         * restart): partitions that stall sit idle at their end, and their
         * backlog would otherwise come in behind the others' watermark as
         * late events. The checks here are about exactly once. */
        in.o.d.bound = WEIR_SECONDS(60);
        in.o.d.every = 1;
        in.o.d.parallelism = 2;
        in.o.d.ckdir = ckdir;
        in.o.brokers = cluster.bootstrap;
        in.o.topic = input;
        in.o.group = group;
        in.o.out_topic = topics[0];
        in.o.dup_topic = topics[1];
        in.o.late_topic = topics[2];
        in.o.err_topic = topics[3];
        in.o.avro = 1;
        in.o.schema_dir = sdir;
        in.o.from_beginning = 1;
        in.o.idle_exit = 5000;
        in.o.commit_interval = 100;
        in.o.x[in.o.nx++] = "log_level=0";
        in.o.x[in.o.nx++] = "session.timeout.ms=6000";
        in.o.out = sum;
        assert_int_equal(0, pthread_create(&thread, NULL, run_instance, &in));
        for (i = 0; i < NEVENTS; i++) {
            kt_truth_next(&truth, 10, 250);
            len = encode_event(enc, &truth, i, key, sizeof(key), value);
            assert_int_equal(0, kt_produce(&cluster, input, -1, key,
                                           strlen(key), value, len));
            if (i % 1000 == 999) {
                /* No flush here: while a broker is down it would block
                 * until its timeout, and the broker would come back late. */
                rd_kafka_poll(cluster.producer, 0);
                inject((int)(i / 1000));
                usleep(300000); /* pacing the input */
            }
        }
        assert_int_equal(0, kt_flush(&cluster));
        assert_int_equal(0, pthread_join(thread, NULL));
        weir_avro_codec_destroy(enc);
        weir_avro_format_destroy(wfmt);
    }
    if (in.rc != 0)
        fail_msg("weir-dedup: %s", in.msg);

    dk_commit_log_load(&cs, ckdir);
    for (i = 1; i < cs.n; i++)
        runs += strcmp(cs.c[i].run, cs.c[i - 1].run) != 0;
    print_message("pipeline runs (restarts after aborted transactions + 1): "
                  "%u\n",
                  runs + 1);
    if (cluster.mc != NULL)
        assert_true(runs >= 1);
    memset(&y, 0, sizeof(y));
    y.t = &truth;
    y.seq = seq_of;
    assert_int_equal(
        0, kt_tally_outputs(&cluster, topics, kt_real() ? NULL : &cs, &y));
    /* What the input topic really holds: our producer re-sends records
     * an injected error made it drop, and one reported "purged in flight"
     * may have been written as well, so a few events can be in the input
     * twice. Each copy must come out exactly once. */
    copies = calloc(truth.n, 1);
    assert_int_equal(0,
                     kt_read(&cluster, input, NULL, count_input, copies, NULL));
    for (i = 0; i < truth.n; i++) {
        missing += y.seen[i] < copies[i];
        twice += y.seen[i] > copies[i];
        repeated += copies[i] > 1;
    }
    print_message("input events written twice by the test's producer: %" PRIu64
                  "\n",
                  repeated);
    print_message("committed: %" PRIu64 " unique, %" PRIu64
                  " duplicates, %" PRIu64 " late, %" PRIu64 " errors; %" PRIu64
                  " records of uncommitted transactions "
                  "left out; missing %" PRIu64 ", more than once %" PRIu64 "\n",
                  y.count[0], y.count[1], y.count[2], y.count[3], y.filtered,
                  missing, twice);
    assert_int_equal(0, y.bad);
    assert_int_equal(0, missing);
    assert_int_equal(0, twice);
    assert_int_equal(0, y.wrong);
    assert_int_equal(truth.ndistinct, y.count[0]);
    for (i = 0; i < truth.ndistinct; i++)
        assert_int_equal(1, y.unique[i]);
    for (i = 0, corrupt = 0; i < truth.n; i++)
        if (truth.id[i] == KT_CORRUPT)
            corrupt += copies[i];
    assert_int_equal(corrupt, y.count[3]);
    free(copies);
    assert_int_equal(0, y.count[2]);
    kt_tally_free(&y);
    dk_commit_log_free(&cs);
    kt_truth_free(&truth);
    weir_avro_codec_destroy(reader);
    weir_avro_format_destroy(fmt);
    fclose(sum);
    kt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_faults_avro_exactly_once),
    };

    return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf(
        "test_kafka_faults.c: built without Kafka and Avro, nothing to run\n");
    return 0;
}

#endif
