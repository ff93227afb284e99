/*
 * test_kafka_crash.c - exactly once through SIGKILL: the weir-dedup Kafka
 * topology is killed at random points at least 20 times while it
 * deduplicates 200 000 events, restarted each time, and the committed
 * outputs must hold every input record exactly once (no loss, no
 * duplicate, never in two outputs) and every distinct event once in the
 * unique output.
 *
 * How it works
 *   This process hosts the mock cluster (it must outlive the pipelines)
 *   and runs each pipeline as a child: the test binary itself, exec'd
 *   with --child, which calls dedup_kafka_run() against the mock's
 *   bootstrap servers with a fixed checkpoint directory. The input is
 *   produced in 20 chunks of 10 000 events; for each chunk a child is
 *   started, and once its output topics grow it is killed after a random
 *   delay (seeded, printed), which lands before produce, between produce
 *   and commit, during a commit, or after it. A last child runs until it
 *   has been idle for a while and exits cleanly.
 *
 *   Checking: on the mock, read_committed consumers also see records of
 *   aborted or never-committed transactions. Every output record carries
 *   "weir.checkpoint" = "<run>:<epoch>", and the commit log in the
 *   checkpoint directory lists the committed epochs of every run; records
 *   not covered are left out of the check and reported. Against a real
 *   cluster (WEIR_TEST_BROKERS) read_committed does that work and the
 *   records are read as they are.
 *
 *   Duplicates are keyed by event id, so they share a partition, and
 *   timestamps rise with the input, so no event is late: the expected
 *   classification does not depend on how partitions interleave.
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

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "../../examples/dedup_kafka.h"
#include "test_kafka_util.h"

#define NCHUNKS           20
#define CHUNK             10000
#define NEVENTS           (NCHUNKS * CHUNK)
#define NPART             8
#define MAX_KILL_DELAY_MS 300

static char topics[5][128]; /* in, unique, dups, late, errors */
static char group[128];
static char dir[4096];
static char ckdir[4200];

static struct kt_truth truth; /* ground truth of the input */

/* ------------------------------------------------------------------ *
 * Child: one pipeline run
 * ------------------------------------------------------------------ */

static int child_main(int argc, char **argv)
{
    struct dedup_kafka_opts o;
    char msg[CLI_MSG];
    int rc;

    if (argc != 10)
        return 2;
    memset(&o, 0, sizeof(o));
    o.d.keys = "id";
    o.d.time_field = "ts";
    o.d.scope = WEIR_WINDOW_ROLLING;
    o.d.size = WEIR_HOURS(1);
    /* A bound far above any stall (a broker outage, a rebalance, a
     * restart): partitions that stall sit idle at their end, and their
     * backlog would otherwise come in behind the others' watermark as
     * late events. The checks here are about exactly once. */
    o.d.bound = WEIR_SECONDS(60);
    o.d.every = 1;
    o.d.parallelism = 2;
    o.d.ckdir = argv[5];
    o.brokers = argv[2];
    o.topic = argv[3];
    o.group = argv[4];
    o.out_topic = argv[6];
    o.dup_topic = argv[7];
    o.late_topic = argv[8];
    o.err_topic = argv[9];
    o.from_beginning = 1;
    o.idle_exit = 4000;
    o.commit_interval = 100;
    o.x[o.nx++] = "log_level=2";
    /* A killed member leaves the group only when its session expires:
     * keep that short so each restart rejoins quickly. */
    o.x[o.nx++] = "session.timeout.ms=3000";
    o.x[o.nx++] = "heartbeat.interval.ms=500";
    rc = dedup_kafka_run(&o, msg);
    if (rc != CLI_EXIT_OK)
        fprintf(stderr, "child: %s\n", msg);
    return rc;
}

static pid_t spawn_child(void)
{
    char log[4300];
    pid_t pid;
    int fd;

    snprintf(log, sizeof(log), "%s/children.log", dir);
    pid = fork();
    if (pid == 0) {
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        execl("/proc/self/exe", "test_kafka_crash", "--child",
              cluster.bootstrap, topics[0], group, ckdir, topics[1], topics[2],
              topics[3], topics[4], (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Records in the output topics so far (high watermarks). */
static int64_t output_size(void)
{
    int64_t total = 0;
    int64_t lo;
    int64_t hi;
    int t;
    int p;

    for (t = 1; t <= 4; t++)
        for (p = 0; p < NPART; p++)
            if (rd_kafka_query_watermark_offsets(cluster.producer, topics[t], p,
                                                 &lo, &hi, 5000) == 0)
                total += hi;
    return total;
}

/* ------------------------------------------------------------------ *
 * Input
 * ------------------------------------------------------------------ */

static void produce_chunk(int chunk)
{
    char key[32];
    char value[128];
    uint32_t i;
    uint32_t seq;

    for (i = 0; i < CHUNK; i++) {
        seq = (uint32_t)chunk * CHUNK + i;
        kt_truth_next(&truth, 5, 250);
        kt_truth_json(&truth, seq, key, sizeof(key), value, sizeof(value));
        assert_int_equal(0, kt_produce(&cluster, topics[0], -1, key,
                                       strlen(key), value, strlen(value)));
    }
    assert_int_equal(0, kt_flush(&cluster));
}

/* ------------------------------------------------------------------ *
 * Checking
 * ------------------------------------------------------------------ */

static void check_outputs(void)
{
    struct dk_commit_log cs = {0};
    struct kt_tally y;
    uint64_t missing = 0;
    uint64_t twice = 0;
    uint32_t i;

    memset(&y, 0, sizeof(y));
    y.t = &truth;
    y.seq = kt_seq_json;
    dk_commit_log_load(&cs, ckdir);
    print_message("commit log: %zu transactions\n", cs.n);
    assert_int_equal(
        0, kt_tally_outputs(&cluster, &topics[1], kt_real() ? NULL : &cs, &y));
    print_message("outputs: %" PRIu64 " unique, %" PRIu64
                  " duplicates, %" PRIu64 " late, %" PRIu64
                  " errors committed; %" PRIu64
                  " records of uncommitted transactions identified by their "
                  "weir.checkpoint header and left out\n",
                  y.count[0], y.count[1], y.count[2], y.count[3], y.filtered);
    for (i = 0; i < truth.n; i++) {
        missing += y.seen[i] == 0;
        twice += y.seen[i] > 1;
    }
    print_message("input records missing: %" PRIu64
                  ", seen more than once: %" PRIu64 "\n",
                  missing, twice);
    assert_int_equal(NEVENTS, truth.n);
    assert_int_equal(0, y.bad);
    assert_int_equal(0, missing);
    assert_int_equal(0, twice);
    assert_int_equal(0, y.wrong);
    assert_int_equal(truth.ndistinct, y.count[0]);
    for (i = 0; i < truth.ndistinct; i++)
        assert_int_equal(1, y.unique[i]);
    assert_int_equal(NEVENTS - truth.ncorrupt - truth.ndistinct, y.count[1]);
    assert_int_equal(0, y.count[2]);
    assert_int_equal(truth.ncorrupt, y.count[3]);
    kt_tally_free(&y);
    dk_commit_log_free(&cs);
    kt_truth_free(&truth);
}

/* ------------------------------------------------------------------ */

static void test_kafka_crash_loop_exactly_once(void **state)
{
    unsigned seed = (unsigned)(getenv("WEIR_TEST_SEED")
                                   ? strtoul(getenv("WEIR_TEST_SEED"), NULL, 10)
                                   : 20261123u);
    int kills = 0;
    int chunk;
    int i;
    int status;
    pid_t pid;

    (void)state;
    print_message("seed %u (set WEIR_TEST_SEED to repeat)\n", seed);
    srand(seed);
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "kafka-crash"));
    snprintf(ckdir, sizeof(ckdir), "%s/ck", dir);
    kt_topic_name(group, sizeof(group), "crash-grp");
    for (i = 0; i < 5; i++) {
        kt_topic_name(topics[i], sizeof(topics[i]), "crash");
        assert_int_equal(0, kt_create_topic(&cluster, topics[i], NPART));
    }
    for (chunk = 0; chunk < NCHUNKS; chunk++) {
        int64_t before = output_size();
        int64_t deadline;
        int64_t started;
        int64_t working;
        int delay = rand() % MAX_KILL_DELAY_MS;

        produce_chunk(chunk);
        pid = spawn_child();
        assert_true(pid > 0);
        started = kt_now();
        /* Kill only once it is working: its outputs have grown. */
        deadline = started + 60000;
        while (output_size() == before && kt_now() < deadline &&
               waitpid(pid, &status, WNOHANG) == 0)
            usleep(20000);
        working = kt_now() - started;
        usleep((useconds_t)delay * 1000);
        if (kill(pid, SIGKILL) == 0)
            kills++;
        assert_int_equal(pid, waitpid(pid, &status, 0));
        print_message("chunk %d: working after %" PRId64 " ms, killed %d ms "
                      "later (%" PRId64 " output records so far)\n",
                      chunk, working, delay, output_size());
    }
    print_message("%d kills; final run\n", kills);
    assert_true(kills >= 20);
    pid = spawn_child();
    assert_int_equal(pid, waitpid(pid, &status, 0));
    assert_true(WIFEXITED(status));
    assert_int_equal(0, WEXITSTATUS(status));
    check_outputs();
    kt_rmtree(dir);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_crash_loop_exactly_once),
    };

    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);
    return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf(
        "test_kafka_crash.c: built without Kafka and Avro, nothing to run\n");
    return 0;
}

#endif
