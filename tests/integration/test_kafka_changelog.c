/*
 * test_kafka_changelog.c - dedup state moves to another instance through
 * the changelog topic.
 *
 * Instance A deduplicates the first part of the input and stops cleanly.
 * Instance B, with a checkpoint directory of its own (another machine:
 * nothing of A's state on disk), takes over the group and reads the rest,
 * where many events repeat events A has seen. Before each partition's
 * first record B replays A's changelog entries for it; so every repeat
 * is a duplicate and every event is unique exactly once over both
 * instances. Rolling scope, and session scope (whose entries carry the
 * whole session). Committed outputs only (the commit logs of both; on a
 * real broker read_committed).
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

#include "../../examples/dedup_kafka.h"
#include "test_kafka_util.h"

#define NPART   4
#define NFIRST  3000 /* events read by A */
#define NSECOND 3000 /* events read by B */

struct instance {
    struct dedup_kafka_opts o;
    char ckdir[4200];
    char msg[CLI_MSG];
    uint64_t replayed;
};

/* Runs one instance until its input has been idle for 2 s. */
static void run_instance(struct instance *in, weir_window_kind_t scope,
                         char topics[][128], const char *input,
                         const char *group, const char *dir, const char *name)
{
    memset(in, 0, sizeof(*in));
    snprintf(in->ckdir, sizeof(in->ckdir), "%s/%s", dir, name);
    /* B joins after A has left: the mock keeps A's membership until its
     * session expires */
    kt_dedup_opts(&in->o, &cluster, topics, input, group, in->ckdir, 2000,
                  "session.timeout.ms=6000");
    in->o.d.scope = scope;
    in->o.replayed = &in->replayed;
    in->o.out = tmpfile();
    if (dedup_kafka_run(&in->o, in->msg) != CLI_EXIT_OK)
        fail_msg("instance %s: %s", name, in->msg);
    fclose(in->o.out);
}

static void produce_events(struct kt_truth *truth, const char *input,
                           uint32_t from, uint32_t to)
{
    char key[32];
    char value[128];
    uint32_t i;

    for (i = from; i < to; i++) {
        kt_truth_next(truth, 5, 300);
        kt_truth_json(truth, i, key, sizeof(key), value, sizeof(value));
        assert_int_equal(0, kt_produce(&cluster, input, -1, key, strlen(key),
                                       value, strlen(value)));
    }
    assert_int_equal(0, kt_flush(&cluster));
}

static void state_moves(weir_window_kind_t scope, const char *what)
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
    uint64_t straddling = 0;
    uint64_t missing = 0;
    uint64_t twice = 0;
    uint64_t both = 0;
    uint64_t none = 0;
    uint8_t *in_first;
    uint32_t i;

    srand(777);
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "kafka-changelog"));
    kt_topic_name(input, sizeof(input), "cl-in");
    kt_topic_name(group, sizeof(group), "cl");
    assert_int_equal(0, kt_create_topic(&cluster, input, NPART));
    for (i = 0; i < 4; i++) {
        kt_topic_name(topics[i], sizeof(topics[i]), "cl-out");
        assert_int_equal(0, kt_create_topic(&cluster, topics[i], NPART));
    }

    produce_events(&truth, input, 0, NFIRST);
    run_instance(&a, scope, topics, input, group, dir, "a");
    produce_events(&truth, input, NFIRST, NFIRST + NSECOND);
    run_instance(&b, scope, topics, input, group, dir, "b");

    /* events with copies on both sides */
    in_first = calloc(truth.ndistinct + 1, 1);
    assert_non_null(in_first);
    for (i = 0; i < NFIRST; i++)
        if (truth.id[i] != KT_CORRUPT)
            in_first[truth.id[i]] = 1;
    for (i = NFIRST; i < truth.n; i++)
        if (truth.id[i] != KT_CORRUPT && in_first[truth.id[i]] == 1) {
            in_first[truth.id[i]] = 2;
            straddling++;
        }
    free(in_first);

    dk_commit_log_load(&cs, a.ckdir);
    dk_commit_log_load(&cs, b.ckdir);
    memset(&y, 0, sizeof(y));
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
    print_message("%s: %" PRIu64 " events on both sides of the handover; "
                  "B replayed %" PRIu64 " changelog entries; committed %" PRIu64
                  " unique, %" PRIu64 " duplicates; unique twice %" PRIu64 "\n",
                  what, straddling, b.replayed, y.count[0], y.count[1], both);
    assert_true(straddling > 100);   /* the check below means something */
    assert_int_equal(0, a.replayed); /* nobody had the partitions before */
    assert_true(b.replayed > 0);
    assert_int_equal(0, missing);
    assert_int_equal(0, twice);
    assert_int_equal(0, y.bad);
    assert_int_equal(0, y.wrong);
    assert_int_equal(0, none);
    assert_int_equal(0, both);
    assert_int_equal(0, y.count[2]);
    assert_int_equal(truth.ncorrupt, y.count[3]);
    kt_tally_free(&y);
    dk_commit_log_free(&cs);
    kt_truth_free(&truth);
    kt_rmtree(dir);
}

static void test_kafka_changelog_rolling(void **state)
{
    (void)state;
    state_moves(WEIR_WINDOW_ROLLING, "rolling");
}

static void test_kafka_changelog_session(void **state)
{
    (void)state;
    state_moves(WEIR_WINDOW_SESSION, "session");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_changelog_rolling),
        cmocka_unit_test(test_kafka_changelog_session),
    };

    return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf("test_kafka_changelog.c: built without Kafka and Avro, nothing "
           "to run\n");
    return 0;
}

#endif
