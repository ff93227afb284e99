/*
 * test_kafka_log.c - compaction of the Kafka commit log
 * (weir__kafka_log_compact, operators/kafka_link.c).
 *
 * The log gets a line per committed checkpoint; compaction merges each
 * run's consecutive lines into one range, so the log stays bounded while
 * every committed epoch can still be found and the last one stays last.
 * These tests write logs by hand and check the rewritten file exactly.
 */
#if defined(WEIR_WITH_KAFKA)
/* cmocka needs these headers first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../operators/kafka_link.h"

static void scratch(char *dir, size_t size)
{
    const char *base = getenv("WEIR_TEST_TMP");

    snprintf(dir, size, "%s/kafka-log-XXXXXX", base != NULL ? base : "/tmp");
    assert_non_null(mkdtemp(dir));
}

static void put_log(const char *dir, const char *text)
{
    char path[4200];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, WEIR_KAFKA_COMMIT_LOG);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(0, fclose(fp));
}

/* The log's content (static buffer). */
static const char *get_log(const char *dir)
{
    static char buf[8192];
    char path[4200];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/%s", dir, WEIR_KAFKA_COMMIT_LOG);
    fp = fopen(path, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void cleanup(const char *dir)
{
    char path[4200];

    snprintf(path, sizeof(path), "%s/%s", dir, WEIR_KAFKA_COMMIT_LOG);
    unlink(path);
    assert_int_equal(0, rmdir(dir)); /* no temporary file left behind */
}

/* Consecutive lines of one run become one range: first epoch of the
 * first, last epoch and time of the last, records summed. */
static void test_log_compact_merges_each_run(void **state)
{
    char dir[4096];

    (void)state;
    scratch(dir, sizeof(dir));
    put_log(dir, "commit r1 1 1 1000 10\n"
                 "commit r1 2 2 1100 0\n"
                 "commit r1 3 5 1200 7\n"
                 "commit r2 4 4 2000 1\n"
                 "commit r2 5 5 2100 2\n"
                 "commit r2 6 6 2200 3\n");
    assert_int_equal(WEIR_OK, weir__kafka_log_compact(dir));
    assert_string_equal(get_log(dir), "commit r1 1 5 1200 17\n"
                                      "commit r2 4 6 2200 6\n");
    /* Compacting a compacted log changes nothing. */
    assert_int_equal(WEIR_OK, weir__kafka_log_compact(dir));
    assert_string_equal(get_log(dir), "commit r1 1 5 1200 17\n"
                                      "commit r2 4 6 2200 6\n");
    cleanup(dir);
}

/* Lines that are not consecutive epochs of one run stay apart: a range
 * never claims an epoch no line committed. */
static void test_log_compact_keeps_gaps(void **state)
{
    char dir[4096];

    (void)state;
    scratch(dir, sizeof(dir));
    put_log(dir, "commit r1 1 2 1000 1\n"
                 "commit r1 4 4 1100 1\n"
                 "commit r2 5 5 1200 1\n"
                 "commit r1 6 6 1300 1\n");
    assert_int_equal(WEIR_OK, weir__kafka_log_compact(dir));
    assert_string_equal(get_log(dir), "commit r1 1 2 1000 1\n"
                                      "commit r1 4 4 1100 1\n"
                                      "commit r2 5 5 1200 1\n"
                                      "commit r1 6 6 1300 1\n");
    cleanup(dir);
}

/* A torn last line (a crash while appending) is dropped, as readers
 * drop it; so are lines that are not commit lines. */
static void test_log_compact_drops_torn_lines(void **state)
{
    char dir[4096];

    (void)state;
    scratch(dir, sizeof(dir));
    put_log(dir, "commit r1 1 1 1000 1\n"
                 "garbage\n"
                 "commit r1 2 2 1100 1\n"
                 "commit r1 3 3 12");
    assert_int_equal(WEIR_OK, weir__kafka_log_compact(dir));
    assert_string_equal(get_log(dir), "commit r1 1 2 1100 2\n");
    cleanup(dir);
}

/* A thousand commits of a run compact to one line. */
static void test_log_compact_bounds_a_long_run(void **state)
{
    char dir[4096];
    char path[4200];
    struct stat st;
    FILE *fp;
    int i;

    (void)state;
    scratch(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, WEIR_KAFKA_COMMIT_LOG);
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (i = 1; i <= 1000; i++)
        fprintf(fp, "commit 19abc %d %d %d 1\n", i, i, 5000 + i);
    assert_int_equal(0, fclose(fp));
    assert_int_equal(WEIR_OK, weir__kafka_log_compact(dir));
    assert_string_equal(get_log(dir), "commit 19abc 1 1000 6000 1000\n");
    assert_int_equal(0, stat(path, &st));
    assert_int_equal(st.st_size, (off_t)strlen(get_log(dir)));
    cleanup(dir);
}

static void test_log_compact_bad_arguments(void **state)
{
    char dir[4096];

    (void)state;
    assert_int_equal(WEIR_EINVAL, weir__kafka_log_compact(NULL));
    scratch(dir, sizeof(dir));
    /* No log: nothing to compact, nothing created. */
    assert_int_equal(WEIR_EIO, weir__kafka_log_compact(dir));
    assert_int_equal(0, rmdir(dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_compact_merges_each_run),
        cmocka_unit_test(test_log_compact_keeps_gaps),
        cmocka_unit_test(test_log_compact_drops_torn_lines),
        cmocka_unit_test(test_log_compact_bounds_a_long_run),
        cmocka_unit_test(test_log_compact_bad_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* WEIR_WITH_KAFKA */

#include <stdio.h>

int main(void)
{
    printf("test_kafka_log.c: built without Kafka, nothing to run\n");
    return 0;
}

#endif
