/*
 * test_kafka_group.c - two pipeline instances in one consumer group, with
 * a rebalance in the middle of the input.
 *
 * Instance A starts alone and takes every partition; while events keep
 * arriving, instance B joins the group: cooperative-sticky moves half of
 * the partitions from A to B. A releases them only after the checkpoint
 * covering what it emitted from them has committed, so B starts exactly
 * where A stopped. Both instances run exactly once, each with its own
 * checkpoint directory (hence its own transactional.id), and stop after
 * the input has been idle for a while.
 *
 * Checked on the committed outputs of both: every input record exactly
 * once (no loss, no duplicate, never in two outputs), corrupt ones in the
 * errors output, and every distinct event exactly once in the unique
 * output. A quarter of the input repeats one of the last 5000 events
 * (same message key, so same partition), so hundreds of events have
 * copies on both sides of the handover: they are classified against the
 * state B replays from the changelog topic before a moved partition's
 * first record (without it, about 360 of them came out unique twice).
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

#define NEVENTS 24000
#define NPART   4

struct instance {
    struct dedup_kafka_opts o;
    char ckdir[4200];
    char msg[CLI_MSG];
    int rc;
    uint64_t replayed;
    uint64_t handover_failures;
    pthread_t thread;
};

static void *run_instance(void *arg)
{
    struct instance *in = arg;

    in->rc = dedup_kafka_run(&in->o, in->msg);
    return NULL;
}

static void start(struct instance *in, char topics[][128], const char *input,
                  const char *group, const char *dir, const char *name,
                  FILE *sum)
{
    memset(in, 0, sizeof(*in));
    snprintf(in->ckdir, sizeof(in->ckdir), "%s/%s", dir, name);
    kt_dedup_opts(&in->o, &cluster, topics, input, group, in->ckdir, 5000,
                  "session.timeout.ms=10000");
    in->o.out = sum;
    in->o.replayed = &in->replayed;
    in->o.handover_failures = &in->handover_failures;
    assert_int_equal(0, pthread_create(&in->thread, NULL, run_instance, in));
}

/* 1 when instance b's commit log holds a transaction with records. */
static int committed_records(const struct instance *b, int started)
{
    char path[4300];
    char line[256];
    FILE *fp;
    unsigned long n;
    int found = 0;

    if (!started)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", b->ckdir, WEIR_KAFKA_COMMIT_LOG);
    fp = fopen(path, "r");
    while (fp != NULL && !found && fgets(line, sizeof(line), fp) != NULL)
        found = sscanf(line, "commit %*s %*s %*s %*s %lu", &n) == 1 && n > 0;
    if (fp != NULL)
        fclose(fp);
    return found;
}

static int64_t output_size(char topics[][128])
{
    int64_t total = 0;
    int64_t lo;
    int64_t hi;
    int t;
    int p;

    for (t = 0; t < 4; t++)
        for (p = 0; p < NPART; p++)
            if (rd_kafka_query_watermark_offsets(cluster.producer, topics[t], p,
                                                 &lo, &hi, 5000) == 0)
                total += hi;
    return total;
}

static void test_kafka_two_instances_rebalance(void **state)
{
    struct instance a;
    struct instance b;
    struct kt_truth truth = {0};
    struct dk_commit_log cs = {0};
    struct kt_tally y;
    char topics[4][128];
    char input[128];
    char group[128];
    char dir[4096];
    char key[32];
    char value[128];
    FILE *sum = tmpfile();
    uint64_t missing = 0;
    uint64_t twice = 0;
    uint64_t both = 0;
    uint64_t none = 0;
    uint32_t i;
    size_t na;
    int b_started = 0;
    int64_t deadline;

    (void)state;
    srand(4242);
    print_message("seed 4242\n");
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "kafka-group"));
    kt_topic_name(input, sizeof(input), "grp-in");
    kt_topic_name(group, sizeof(group), "grp");
    assert_int_equal(0, kt_create_topic(&cluster, input, NPART));
    for (i = 0; i < 4; i++) {
        kt_topic_name(topics[i], sizeof(topics[i]), "grp-out");
        assert_int_equal(0, kt_create_topic(&cluster, topics[i], NPART));
    }
    start(&a, topics, input, group, dir, "a", sum);
    /* Events arrive over time; B joins once A has written output. */
    deadline = kt_now() + 120000;
    /* NEVENTS at least; more until B has committed records of its own
     * (under load the two-step cooperative rebalance can take longer than
     * the input), at most twice as many. */
    for (i = 0;
         i < NEVENTS || (i < 2 * NEVENTS && !committed_records(&b, b_started));
         i++) {
        kt_truth_next(&truth, 5, 250);
        kt_truth_json(&truth, i, key, sizeof(key), value, sizeof(value));
        assert_int_equal(0, kt_produce(&cluster, input, -1, key, strlen(key),
                                       value, strlen(value)));
        if (i % 1000 == 999) {
            kt_flush(&cluster);
            usleep(800000); /* pacing the input, not synchronization */
        }
        if (!b_started && i >= NEVENTS / 4 && output_size(topics) > 0) {
            start(&b, topics, input, group, dir, "b", sum);
            b_started = 1;
            print_message("instance B joins after %u events\n", i + 1);
        }
    }
    assert_int_equal(0, kt_flush(&cluster));
    assert_true(b_started);
    assert_int_equal(0, pthread_join(a.thread, NULL));
    assert_int_equal(0, pthread_join(b.thread, NULL));
    assert_true(kt_now() < deadline);
    if (a.rc != 0 || b.rc != 0)
        fail_msg("A: %s / B: %s", a.msg, b.msg);

    dk_commit_log_load(&cs, a.ckdir);
    na = cs.n;
    dk_commit_log_load(&cs, b.ckdir);
    memset(&y, 0, sizeof(y));
    y.split = kt_real() ? NULL : &cs.c[na];
    y.t = &truth;
    y.seq = kt_seq_json;
    assert_int_equal(
        0, kt_tally_outputs(&cluster, topics, kt_real() ? NULL : &cs, &y));
    for (i = 0; i < truth.n; i++) {
        missing += y.seen[i] == 0;
        twice += y.seen[i] > 1;
    }
    for (i = 0; i < truth.ndistinct; i++) {
        none += y.unique[i] == 0;
        both += y.unique[i] > 1;
    }
    print_message("committed: %" PRIu64 " unique, %" PRIu64
                  " duplicates, %" PRIu64 " late, %" PRIu64 " errors; %" PRIu64
                  " records of uncommitted transactions "
                  "left out; %" PRIu64 " events unique on both sides of the "
                  "handover\n",
                  y.count[0], y.count[1], y.count[2], y.count[3], y.filtered,
                  both);
    print_message("changelog entries replayed: A %" PRIu64 ", B %" PRIu64
                  "; unclean handovers: A %" PRIu64 ", B %" PRIu64 "\n",
                  a.replayed, b.replayed, a.handover_failures,
                  b.handover_failures);
    print_message("records committed by instance B: %" PRIu64
                  "; missing %" PRIu64 ", more than once %" PRIu64
                  ", events never unique %" PRIu64 "\n",
                  y.second, missing, twice, none);
    assert_int_equal(0, none);
    assert_int_equal(0, missing);
    assert_int_equal(0, y.bad);
    if (!kt_real())
        assert_true(y.second > 0 && y.second < truth.n);
    if (!kt_real() && a.handover_failures > 0) {
        /* The mock keeps no transactional offsets: the next owner learns
         * where A stopped only from A's consumer commit at release, which
         * the mock refuses while its group is between generations (or A
         * lost its assignment and never released it). B
         * then starts earlier and writes again what A committed (and,
         * with no offset to tell it A had the partition, replays no
         * state). Known mock-only gap (docs/design/exactly-once.md); on
         * a real broker the transaction holds the offsets. */
        print_message("mock-only gap: %" PRIu64 " unclean handover(s) "
                      "by A (failed consumer commit or lost assignment); "
                      "exactly once across the handover not checked in "
                      "this run, at least once is\n",
                      a.handover_failures);
        assert_true(y.count[3] >= truth.ncorrupt);
        assert_true(y.count[0] + y.count[1] + y.count[2] + y.count[3] >=
                    truth.n);
    } else {
        assert_true(b.replayed > 0);
        assert_int_equal(0, both);
        assert_int_equal(0, twice);
        assert_int_equal(truth.ncorrupt, y.count[3]);
        assert_int_equal(truth.n,
                         y.count[0] + y.count[1] + y.count[2] + y.count[3]);
    }
    assert_int_equal(0, y.wrong);
    kt_tally_free(&y);
    dk_commit_log_free(&cs);
    kt_truth_free(&truth);
    fclose(sum);
    kt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_two_instances_rebalance),
    };

    return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf(
        "test_kafka_group.c: built without Kafka and Avro, nothing to run\n");
    return 0;
}

#endif
