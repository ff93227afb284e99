/*
 * test_kafka_signals.c - weir-dedup in Kafka mode ends cleanly on SIGTERM
 * and SIGINT: a final checkpoint (every record it read is committed to
 * its outputs), exit status 0, and the summary line last on stdout.
 *
 * How it works
 *   The test process hosts the cluster (the mock, or WEIR_TEST_BROKERS);
 *   the weir-dedup program (WEIR_DEDUP_BIN) runs as a child with its
 *   stdout and stderr in files. The child has no --max-records and no
 *   --idle-exit: only the signal ends it.
 *   - SIGTERM while it works: once the outputs hold a record for every
 *     input message (the mock shows records of open transactions, so
 *     this says it has read everything, not that it has committed), the
 *     child gets SIGTERM; after it exits, every output record must be
 *     in a committed transaction (its commit log), once, and the summary
 *     must count them.
 *   - SIGINT while it starts: brokers that refuse connections keep it in
 *     its start-up; once it has said so on stderr (after its signal
 *     handlers are installed), it gets SIGINT and must still exit 0 with
 *     an all-zero summary, leaving no temporary checkpoint directory.
 *   Waiting is on conditions (output sizes, stderr contents, the child's
 *   exit), each with a deadline.
 */
#if defined(WEIR_WITH_KAFKA) && defined(WEIR_WITH_AVRO)
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "test_kafka_util.h"

#define NEVENTS 300
#define NUNIQUE 200 /* ids 0..199; events 200..299 repeat ids 0..99 */
#define NPART   3

/* Starts weir-dedup with argv (NULL-terminated), stdout and stderr into
 * files of dir. */
static pid_t spawn_tool(char *const argv[], const char *dir, const char *tmp)
{
    char out[4300];
    char err[4300];
    pid_t pid;
    int fd;

    snprintf(out, sizeof(out), "%s/stdout", dir);
    snprintf(err, sizeof(err), "%s/stderr", dir);
    pid = fork();
    if (pid == 0) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
        fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            close(fd);
        }
        if (tmp != NULL)
            setenv("TMPDIR", tmp, 1);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits up to ms for the child to exit; its status, or -1 (killed then). */
static int wait_exit(pid_t pid, int64_t ms)
{
    int64_t deadline = kt_now() + ms;
    int status;

    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (kt_now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(20000);
    }
    return status;
}

/* The whole of a small file, NUL-terminated (malloc'ed; "" if missing). */
static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *s = calloc(1, 65536);
    size_t n;

    assert_non_null(s);
    if (fp == NULL)
        return s;
    n = fread(s, 1, 65535, fp);
    s[n] = '\0';
    fclose(fp);
    return s;
}

/* The last line of dir/stdout, without its newline. */
static void last_line(const char *dir, char *out, size_t size)
{
    char path[4300];
    char *s;
    char *end;
    char *start;

    snprintf(path, sizeof(path), "%s/stdout", dir);
    s = slurp(path);
    end = s + strlen(s);
    while (end > s && end[-1] == '\n')
        *--end = '\0';
    start = strrchr(s, '\n');
    snprintf(out, size, "%s", start != NULL ? start + 1 : s);
    free(s);
}

/* Records in topic so far (high watermarks; the mock counts records of
 * open transactions too). */
static int64_t topic_size(const char *topic)
{
    int64_t total = 0;
    int64_t lo;
    int64_t hi;
    int p;

    for (p = 0; p < NPART; p++)
        if (rd_kafka_query_watermark_offsets(cluster.producer, topic, p, &lo,
                                             &hi, 5000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
            total += hi - lo;
    return total;
}

static int count_fn(const rd_kafka_message_t *m, const struct dk_commit *c,
                    void *opaque)
{
    (void)m;
    (void)c;
    ++*(uint64_t *)opaque;
    return 0;
}

static void test_sigterm_ends_with_a_final_checkpoint(void **state)
{
    char topics[4][128];
    char group[128];
    char dir[4096];
    char ckdir[4200];
    char value[128];
    char key[32];
    char line[512];
    char want[256];
    struct dk_commit_log cl = {0};
    struct kt_read_stats st;
    uint64_t n[2];
    int64_t deadline;
    pid_t pid;
    int status;
    int i;
    char *argv[] = {getenv("WEIR_DEDUP_BIN"),
                    "--brokers",
                    cluster.bootstrap,
                    "--topic",
                    topics[0],
                    "--group",
                    group,
                    "--output-topic",
                    topics[1],
                    "--duplicates-topic",
                    topics[2],
                    "--key",
                    "id",
                    "--from-beginning",
                    "--checkpoint-dir",
                    ckdir,
                    "-X",
                    "log_level=2",
                    NULL};

    (void)state;
    assert_non_null(argv[0]);
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "sigterm"));
    snprintf(ckdir, sizeof(ckdir), "%s/ck", dir);
    kt_topic_name(group, sizeof(group), "sigterm-group");
    for (i = 0; i < 3; i++) {
        kt_topic_name(topics[i], sizeof(topics[i]), "sigterm");
        assert_int_equal(0, kt_create_topic(&cluster, topics[i], NPART));
    }
    for (i = 0; i < NEVENTS; i++) {
        int id = i < NUNIQUE ? i : i - NUNIQUE;

        snprintf(key, sizeof(key), "k%d", id);
        snprintf(value, sizeof(value), "{\"id\":\"k%d\",\"ts\":%d}", id,
                 1000 + i);
        assert_int_equal(0, kt_produce(&cluster, topics[0], -1, key,
                                       strlen(key), value, strlen(value)));
    }
    assert_int_equal(0, kt_flush(&cluster));

    pid = spawn_tool(argv, dir, NULL);
    assert_true(pid > 0);
    deadline = kt_now() + 120000;
    while (topic_size(topics[1]) + topic_size(topics[2]) < NEVENTS &&
           kt_now() < deadline && waitpid(pid, &status, WNOHANG) == 0)
        usleep(20000);
    assert_int_equal(NEVENTS, topic_size(topics[1]) + topic_size(topics[2]));
    assert_int_equal(0, kill(pid, SIGTERM));
    status = wait_exit(pid, 120000);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(0, WEXITSTATUS(status));

    /* Every output record is in a committed transaction, once. */
    dk_commit_log_load(&cl, ckdir);
    for (i = 0; i < 2; i++) {
        n[i] = 0;
        memset(&st, 0, sizeof(st));
        assert_int_equal(
            0, kt_read(&cluster, topics[1 + i], &cl, count_fn, &n[i], &st));
        assert_int_equal(0, st.uncommitted);
    }
    assert_int_equal(NUNIQUE, n[0]);
    assert_int_equal(NEVENTS - NUNIQUE, n[1]);
    dk_commit_log_free(&cl);
    last_line(dir, line, sizeof(line));
    snprintf(want, sizeof(want),
             "{\"records\":%d,\"unique\":%d,\"duplicates\":%d,\"late\":0,"
             "\"errors\":0}",
             NEVENTS, NUNIQUE, NEVENTS - NUNIQUE);
    assert_string_equal(want, line);
    kt_rmtree(dir);
}

static void test_sigint_while_starting(void **state)
{
    char dir[4096];
    char tmp[4200];
    char errpath[4300];
    char line[512];
    int64_t deadline;
    char *err;
    int said = 0;
    pid_t pid;
    int status;
    /* Port 1 on the loopback: nothing listens, connections are refused,
     * and weir-dedup stays in its start-up (topic metadata) for a while. */
    char *argv[] = {getenv("WEIR_DEDUP_BIN"),
                    "--brokers",
                    "127.0.0.1:1",
                    "--topic",
                    "t",
                    "--output-topic",
                    "o",
                    "--key",
                    "id",
                    "-X",
                    "log_level=0",
                    NULL};

    (void)state;
    assert_non_null(argv[0]);
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "sigint"));
    snprintf(tmp, sizeof(tmp), "%s/tmp", dir);
    assert_int_equal(0, mkdir(tmp, 0755));
    snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
    pid = spawn_tool(argv, dir, tmp);
    assert_true(pid > 0);
    /* It names its private checkpoint directory once its handlers are
     * in place. */
    deadline = kt_now() + 60000;
    while (!said && kt_now() < deadline &&
           waitpid(pid, &status, WNOHANG) == 0) {
        err = slurp(errpath);
        said = strstr(err, "no --checkpoint-dir") != NULL;
        free(err);
        if (!said)
            usleep(20000);
    }
    assert_true(said);
    assert_int_equal(0, kill(pid, SIGINT));
    status = wait_exit(pid, 120000);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(0, WEXITSTATUS(status));
    last_line(dir, line, sizeof(line));
    assert_string_equal(
        "{\"records\":0,\"unique\":0,\"duplicates\":0,\"late\":0,\"errors\":0}",
        line);
    assert_int_equal(1, kt_dir_empty(tmp));
    kt_rmtree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_ends_with_a_final_checkpoint),
        cmocka_unit_test(test_sigint_while_starting),
    };

    return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf("test_kafka_signals.c: built without Kafka and Avro, nothing to "
           "run\n");
    return 0;
}

#endif
