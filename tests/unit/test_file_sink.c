/*
 * tests/unit/test_file_sink.c - the line-file connectors:
 * weir_source_file_lines() and weir_sink_file_lines() (weir/json.h defs).
 *
 * How it works
 *   Source: a harness polls weir_op_file_lines_source over files written
 *   here (blank lines, CRLF, a last line without newline, NUL bytes, a
 *   10 MB line, 3000 lines in bounded batches) and checks values,
 *   offsets and the snapshot -> restore seek.
 *
 *   Sink, exactly-once protocol: a harness drives weir_op_file_lines_sink
 *   through write -> checkpoint -> complete, and simulates crashes by
 *   destroying a harness without delivering a completion (or after
 *   damaging the file as a crash mid-append would) and restoring a fresh
 *   one from an earlier snapshot; the final file must hold exactly the
 *   expected bytes and no pending file may remain. These tests give the
 *   sink a checkpoint directory (weir_harness_new_checkpointed); the
 *   direct-mode tests give it none.
 *
 *   Sink, in pipelines: the same guarantees end to end, whatever the
 *   harness does. A generator source fails after some records (a crash);
 *   the run returns the error; a second run with the same checkpoint
 *   directory restores and must produce exactly the output of an
 *   uninterrupted run, even after garbage was appended to the file in
 *   between; a fresh run truncates old output and removes stray pending
 *   files.
 *
 * Invariants
 *   Deterministic (no sleeps, no clocks); each test works in its own
 *   directory under WEIR_TEST_TMP and frees everything it made.
 */
/* cmocka needs these headers first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/testing.h>

/* ------------------------------------------------------------------ *
 * ## Files and directories
 * ------------------------------------------------------------------ */

static void make_dir(char *out, size_t size, const char *name)
{
    const char *tmp = getenv("WEIR_TEST_TMP");

    snprintf(out, size, "%s/%s-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", name);
    mkdir(tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", 0777);
    assert_non_null(mkdtemp(out));
}

static void join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, 4096, "%s/%s", dir, name);

    assert_true(n > 0 && n < 4096);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(n, fwrite(p, 1, n, f));
    assert_int_equal(0, fclose(f));
}

static void append_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "ab");

    assert_non_null(f);
    assert_int_equal(strlen(s), fwrite(s, 1, strlen(s), f));
    assert_int_equal(0, fclose(f));
}

/* The whole file (caller frees), its length in *n; NULL if missing. */
static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    size_t cap = 0;
    size_t got;

    *n = 0;
    if (f == NULL)
        return NULL;
    do {
        if (*n + 65536 > cap) {
            cap = cap * 2 + 65536;
            p = realloc(p, cap);
            assert_non_null(p);
        }
        got = fread(p + *n, 1, cap - *n, f);
        *n += got;
    } while (got > 0);
    fclose(f);
    return p;
}

static void assert_file(const char *path, const char *want, size_t wn)
{
    size_t n;
    char *got = read_file(path, &n);

    assert_non_null(got);
    if (n != wn || memcmp(got, want, n) != 0)
        fail_msg("%s: got %zu bytes '%.*s', want %zu bytes '%.*s'", path, n,
                 (int)(n < 200 ? n : 200), got, wn, (int)(wn < 200 ? wn : 200),
                 want);
    free(got);
}

static void assert_file_str(const char *path, const char *want)
{
    assert_file(path, want, strlen(want));
}

/* Entries of dir other than "." and "..", except `keep`. */
static int other_entries(const char *dir, const char *keep)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
            (keep == NULL || strcmp(de->d_name, keep) != 0))
            n++;
    closedir(d);
    return n;
}

/* rm -r of a test directory (one level of subdirectories). */
static void remove_dir(const char *dir)
{
    char path[4096];
    struct dirent *de;
    struct stat sb;
    DIR *d = opendir(dir);

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        join(path, dir, de->d_name);
        if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_dir(path);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

/* ------------------------------------------------------------------ *
 * ## Source
 * ------------------------------------------------------------------ */

static int buf_eq(weir_buf_t b, const void *p, size_t n)
{
    return b.len == n && (n == 0 || memcmp(b.data, p, n) == 0);
}

static void assert_line(const weir_harness_t *h, size_t i, const void *p,
                        size_t n, int64_t offset)
{
    const weir_record_t *r = weir_harness_record(h, NULL, i);

    assert_non_null(r);
    assert_true(buf_eq(weir_record_value(r), p, n));
    assert_int_equal(offset, weir_record_offset(r));
    assert_int_equal(-1, weir_record_partition(r));
    assert_int_equal(WEIR_TS_MIN, weir_record_ts(r));
    assert_null(weir_record_key(r).data);
}

static void test_file_source_lines(void **state)
{
    static const char text[] = "a\n\n  \nb\r\nx\0y\nlast";
    char dir[4096];
    char path[4096];
    weir_harness_t *h;

    (void)state;
    make_dir(dir, sizeof(dir), "src-lines");
    join(path, dir, "in.txt");
    write_file(path, text, sizeof(text) - 1);
    h = weir_harness_new(&weir_op_file_lines_source, path);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_poll(h));
    assert_int_equal(WEIR_DONE, weir_harness_poll(h));
    assert_int_equal(6, weir_harness_count(h, NULL));
    assert_line(h, 0, "a", 1, 0);
    assert_line(h, 1, "", 0, 2);
    assert_line(h, 2, "  ", 2, 3);
    assert_line(h, 3, "b\r", 2, 6);
    assert_line(h, 4, "x\0y", 3, 9);
    assert_line(h, 5, "last", 4, 13);
    weir_harness_destroy(h);
    remove_dir(dir);
}

static void test_file_source_empty_file(void **state)
{
    char dir[4096];
    char path[4096];
    weir_harness_t *h;

    (void)state;
    make_dir(dir, sizeof(dir), "src-empty");
    join(path, dir, "in.txt");
    write_file(path, "", 0);
    h = weir_harness_new(&weir_op_file_lines_source, path);
    assert_non_null(h);
    assert_int_equal(WEIR_DONE, weir_harness_poll(h));
    assert_int_equal(0, weir_harness_count(h, NULL));
    weir_harness_destroy(h);
    remove_dir(dir);
}

/* Polls are bounded; a snapshot taken between polls resumes exactly. */
static void test_file_source_batches_and_restore(void **state)
{
    char dir[4096];
    char path[4096];
    char line[32];
    char *text = malloc(3000 * 16);
    int64_t offsets[3001];
    weir_snapshot_t *snap = NULL;
    weir_harness_t *h;
    size_t n = 0;
    size_t i;
    int len;
    int rc;

    (void)state;
    assert_non_null(text);
    for (i = 0; i < 3000; i++) {
        offsets[i] = (int64_t)n;
        n += (size_t)sprintf(text + n, "line-%zu\n", i);
    }
    make_dir(dir, sizeof(dir), "src-batch");
    join(path, dir, "in.txt");
    write_file(path, text, n);
    h = weir_harness_new(&weir_op_file_lines_source, path);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_poll(h));
    assert_int_equal(1024, weir_harness_count(h, NULL));
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &snap));
    assert_int_equal(WEIR_OK, weir_harness_poll(h));
    weir_harness_destroy(h);

    h = weir_harness_new(&weir_op_file_lines_source, path);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_restore(h, snap));
    while ((rc = weir_harness_poll(h)) == WEIR_OK)
        ;
    assert_int_equal(WEIR_DONE, rc);
    assert_int_equal(3000 - 1024, weir_harness_count(h, NULL));
    for (i = 1024; i < 3000; i++) {
        len = sprintf(line, "line-%zu", i);
        assert_line(h, i - 1024, line, (size_t)len, offsets[i]);
    }
    weir_harness_destroy(h);

    /* The file lost its tail: the checkpoint no longer fits. */
    assert_int_equal(0, truncate(path, 100));
    h = weir_harness_new(&weir_op_file_lines_source, path);
    assert_non_null(h);
    assert_int_equal(WEIR_ECORRUPT, weir_harness_restore(h, snap));
    weir_harness_destroy(h);
    weir_snapshot_destroy(snap);
    free(text);
    remove_dir(dir);
}

static void test_file_source_ten_megabyte_line(void **state)
{
    const size_t big = 10u << 20;
    char dir[4096];
    char path[4096];
    char *text = malloc(big + 16);
    weir_harness_t *h;
    int rc;

    (void)state;
    assert_non_null(text);
    memcpy(text, "s\n", 2);
    memset(text + 2, 'z', big);
    memcpy(text + 2 + big, "\nt\n", 3);
    make_dir(dir, sizeof(dir), "src-big");
    join(path, dir, "in.txt");
    write_file(path, text, big + 5);
    h = weir_harness_new(&weir_op_file_lines_source, path);
    assert_non_null(h);
    while ((rc = weir_harness_poll(h)) == WEIR_OK)
        ;
    assert_int_equal(WEIR_DONE, rc);
    assert_int_equal(3, weir_harness_count(h, NULL));
    assert_line(h, 0, "s", 1, 0);
    assert_line(h, 1, text + 2, big, 2);
    assert_line(h, 2, "t", 1, (int64_t)big + 3);
    weir_harness_destroy(h);
    free(text);
    remove_dir(dir);
}

static void test_file_source_unreadable(void **state)
{
    char dir[4096];
    char path[4096];

    (void)state;
    make_dir(dir, sizeof(dir), "src-bad");
    join(path, dir, "missing.txt");
    assert_null(weir_harness_new(&weir_op_file_lines_source, path));
    assert_null(weir_harness_new(&weir_op_file_lines_source, dir));
    assert_null(weir_harness_new(&weir_op_file_lines_source, NULL));
    remove_dir(dir);
}

/* ------------------------------------------------------------------ *
 * ## Sink through the harness
 * ------------------------------------------------------------------ */

/* Exactly-once tests give the sink a checkpoint directory (as a pipeline
 * with checkpoint.dir does); direct-mode tests give it none. */
static const char *eo_dir;

static weir_harness_t *sink(const char *path)
{
    weir_harness_t *h;

    if (eo_dir != NULL)
        h = weir_harness_new_checkpointed(&weir_op_file_lines_sink, path,
                                          eo_dir);
    else
        h = weir_harness_new(&weir_op_file_lines_sink, path);
    assert_non_null(h);
    return h;
}

/* Checkpoint `id`, keeping no snapshot. */
static void checkpoint(weir_harness_t *h, uint64_t id)
{
    weir_snapshot_t *snap = NULL;

    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, id, &snap));
    weir_snapshot_destroy(snap);
}

static void put(weir_harness_t *h, const char *line)
{
    assert_int_equal(WEIR_OK, weir_harness_push(h, NULL, line, 0));
}

/* Whether the harness runs the sink exactly once (it gives the operator
 * a checkpoint directory) or directly: one record and the end of input
 * reach the file only in direct mode. */
static void need_exactly_once(void)
{
    const char *base = getenv("WEIR_TEST_TMP");

    eo_dir = base ? base : "/tmp";
}

static void need_direct(void)
{
    eo_dir = NULL;
}

static void test_file_sink_direct(void **state)
{
    char dir[4096];
    char path[4096];
    weir_harness_t *h;

    (void)state;
    need_direct();
    make_dir(dir, sizeof(dir), "sink-direct");
    join(path, dir, "out.txt");
    write_file(path, "old content\n", 12);
    h = sink(path);
    assert_file_str(path, ""); /* truncated at open */
    put(h, "a");
    put(h, "");
    put(h, "b c");
    assert_int_equal(WEIR_OK, weir_harness_end(h));
    assert_file_str(path, "a\n\nb c\n");
    weir_harness_destroy(h);
    assert_file_str(path, "a\n\nb c\n");
    assert_int_equal(0, other_entries(dir, "out.txt"));
    remove_dir(dir);
}

/* write, checkpoint, complete; crash before a completion; restore from
 * the previous snapshot. */
static void test_file_sink_checkpoint_and_crash(void **state)
{
    char dir[4096];
    char path[4096];
    weir_snapshot_t *s1 = NULL;
    weir_snapshot_t *s2 = NULL;
    weir_harness_t *h;

    (void)state;
    need_exactly_once();
    make_dir(dir, sizeof(dir), "sink-eo");
    join(path, dir, "out.txt");
    h = sink(path);
    put(h, "a");
    put(h, "b");
    assert_file_str(path, "");
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &s1));
    assert_file_str(path, ""); /* pending until complete */
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 1));
    assert_file_str(path, "a\nb\n");
    put(h, "c");
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 2, &s2));
    put(h, "d");             /* after barrier 2: belongs to no checkpoint yet */
    weir_harness_destroy(h); /* crash: 2 never completes */
    assert_file_str(path, "a\nb\n");

    /* Restart from checkpoint 1: the pending part of 2 is discarded. */
    h = sink(path);
    assert_int_equal(WEIR_OK, weir_harness_restore(h, s1));
    assert_file_str(path, "a\nb\n");
    assert_int_equal(0, other_entries(dir, "out.txt"));
    put(h, "c");
    put(h, "d");
    checkpoint(h, 2);
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 2));
    assert_file_str(path, "a\nb\nc\nd\n");
    weir_harness_destroy(h);
    weir_snapshot_destroy(s1);
    weir_snapshot_destroy(s2);
    remove_dir(dir);
}

/* Checkpoint 2 completed but the sink died before publishing it, then
 * again while appending it. */
static void test_file_sink_restore_publishes_completed(void **state)
{
    char dir[4096];
    char path[4096];
    weir_snapshot_t *s2 = NULL;
    weir_harness_t *h;

    (void)state;
    need_exactly_once();
    make_dir(dir, sizeof(dir), "sink-pub");
    join(path, dir, "out.txt");
    h = sink(path);
    put(h, "one");
    checkpoint(h, 1);
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 1));
    put(h, "two");
    put(h, "three");
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 2, &s2));
    weir_harness_destroy(h);
    assert_file_str(path, "one\n");

    /* A crash in the middle of appending part 2. */
    append_file(path, "two\nth");
    h = sink(path);
    assert_int_equal(WEIR_OK, weir_harness_restore(h, s2));
    assert_file_str(path, "one\ntwo\nthree\n");
    assert_int_equal(0, other_entries(dir, "out.txt"));
    weir_harness_destroy(h);

    /* Restoring the same checkpoint again changes nothing. */
    h = sink(path);
    assert_int_equal(WEIR_OK, weir_harness_restore(h, s2));
    assert_file_str(path, "one\ntwo\nthree\n");
    put(h, "four");
    checkpoint(h, 3);
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 3));
    assert_file_str(path, "one\ntwo\nthree\nfour\n");
    weir_harness_destroy(h);
    weir_snapshot_destroy(s2);
    remove_dir(dir);
}

/* Restoring an older checkpoint drops what later ones published. */
static void test_file_sink_restore_older_truncates(void **state)
{
    char dir[4096];
    char path[4096];
    weir_snapshot_t *s1 = NULL;
    weir_harness_t *h;

    (void)state;
    need_exactly_once();
    make_dir(dir, sizeof(dir), "sink-old");
    join(path, dir, "out.txt");
    h = sink(path);
    put(h, "a");
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 1, &s1));
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 1));
    put(h, "b");
    checkpoint(h, 2);
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 2));
    weir_harness_destroy(h);
    assert_file_str(path, "a\nb\n");
    h = sink(path);
    assert_int_equal(WEIR_OK, weir_harness_restore(h, s1));
    assert_file_str(path, "a\n");
    weir_harness_destroy(h);
    weir_snapshot_destroy(s1);
    remove_dir(dir);
}

/* A completion that arrives late publishes every older part in order;
 * empty checkpoints publish nothing. */
static void test_file_sink_late_completion(void **state)
{
    char dir[4096];
    char path[4096];
    weir_snapshot_t *s3 = NULL;
    weir_harness_t *h;

    (void)state;
    need_exactly_once();
    make_dir(dir, sizeof(dir), "sink-late");
    join(path, dir, "out.txt");
    h = sink(path);
    put(h, "1");
    checkpoint(h, 1);
    checkpoint(h, 2);
    put(h, "3");
    put(h, "");
    assert_int_equal(WEIR_OK, weir_harness_checkpoint(h, 3, &s3));
    put(h, "4");
    checkpoint(h, 4);
    assert_file_str(path, "");
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 3));
    assert_file_str(path, "1\n3\n\n");
    weir_harness_destroy(h);
    /* Restoring 3 keeps the published parts and drops part 4. */
    h = sink(path);
    assert_int_equal(WEIR_OK, weir_harness_restore(h, s3));
    assert_file_str(path, "1\n3\n\n");
    assert_int_equal(0, other_entries(dir, "out.txt"));
    weir_harness_destroy(h);
    weir_snapshot_destroy(s3);
    remove_dir(dir);
}

/* A fresh (not restored) run empties old output and old pending files,
 * and only its own pending files (not a look-alike's). */
static void test_file_sink_fresh_run(void **state)
{
    char dir[4096];
    char path[4096];
    char other[4096];
    weir_harness_t *h;

    (void)state;
    need_exactly_once();
    make_dir(dir, sizeof(dir), "sink-fresh");
    join(path, dir, "out.txt");
    write_file(path, "stale\n", 6);
    join(other, dir, ".out.txt.weir-7.part");
    write_file(other, "x\n", 2);
    join(other, dir, ".out.txt.weir-open.part");
    write_file(other, "y\n", 2);
    join(other, dir, ".out.txt.weir-x.weir-3.part");
    write_file(other, "z\n", 2);
    h = sink(path);
    put(h, "new");
    checkpoint(h, 1);
    assert_int_equal(WEIR_OK, weir_harness_complete(h, 1));
    assert_file_str(path, "new\n");
    weir_harness_destroy(h);
    assert_int_equal(1, other_entries(dir, "out.txt"));
    assert_file_str(other, "z\n");
    remove_dir(dir);
}

/* ------------------------------------------------------------------ *
 * ## Sink in pipelines
 * ------------------------------------------------------------------ */

struct gen {
    uint64_t n;       /* records to produce                      */
    uint64_t fail_at; /* fail when asked for this index (0: never) */
    char line[32];    /* the current value                        */
};

static int gen_lines(void *opaque, uint64_t i, weir_buf_t *key,
                     weir_buf_t *value, weir_ts_t *ts)
{
    struct gen *g = opaque;
    int n;

    if (g->fail_at != 0 && i == g->fail_at)
        return WEIR_EIO;
    if (i >= g->n)
        return 0;
    n = snprintf(g->line, sizeof(g->line), "line %llu", (unsigned long long)i);
    *key = WEIR_BUF_NULL;
    *value = WEIR_BUF(g->line, (size_t)n);
    *ts = (weir_ts_t)i;
    return 1;
}

/* "line 0\n" ... "line n-1\n" (caller frees). */
static char *expected_lines(uint64_t n, size_t *len)
{
    char *p = malloc(n * 24 + 1);
    uint64_t i;

    assert_non_null(p);
    *len = 0;
    for (i = 0; i < n; i++)
        *len += (size_t)sprintf(p + *len, "line %llu\n", (unsigned long long)i);
    return p;
}

/* Runs generator -> file sink; returns the run's result. */
static int run_pipeline(struct gen *g, const char *path, const char *ckdir)
{
    weir_conf_t *conf = weir_conf_new();
    weir_pipeline_t *p;
    char err[256];
    int rc;

    assert_non_null(conf);
    if (ckdir != NULL) {
        assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.dir", ckdir,
                                                err, sizeof(err)));
        assert_int_equal(WEIR_OK,
                         weir_conf_set(conf, "checkpoint.every.records", "700",
                                       err, sizeof(err)));
    }
    p = weir_pipeline_new("file-sink-test", conf, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(WEIR_OK,
                     weir_sink_file_lines(
                         weir_source_generator(p, "gen", gen_lines, g), path));
    rc = weir_pipeline_run(p);
    weir_pipeline_destroy(p);
    return rc;
}

static void test_file_sink_pipeline_direct(void **state)
{
    struct gen g = {.n = 5000};
    char dir[4096];
    char path[4096];
    size_t n;
    char *want = expected_lines(g.n, &n);

    (void)state;
    make_dir(dir, sizeof(dir), "pipe-direct");
    join(path, dir, "out.txt");
    write_file(path, "old\n", 4);
    assert_int_equal(WEIR_OK, run_pipeline(&g, path, NULL));
    assert_file(path, want, n);
    assert_int_equal(0, other_entries(dir, "out.txt"));
    free(want);
    remove_dir(dir);
}

/* A crash (the source fails), damage to the file, a restart: the output
 * is exactly the uninterrupted run's. */
static void test_file_sink_pipeline_crash_restart(void **state)
{
    struct gen g = {.n = 20000, .fail_at = 12345};
    char dir[4096];
    char path[4096];
    char ck[4096];
    size_t n;
    size_t got_n;
    char *want = expected_lines(g.n, &n);
    char *got;

    (void)state;
    make_dir(dir, sizeof(dir), "pipe-crash");
    join(path, dir, "out.txt");
    join(ck, dir, "ck");
    assert_true(run_pipeline(&g, path, ck) < 0);
    /* What is published is a prefix of the full output. */
    got = read_file(path, &got_n);
    assert_non_null(got);
    assert_true(got_n < n && memcmp(got, want, got_n) == 0);
    free(got);
    /* As if the crash came in the middle of an append. */
    append_file(path, "line 99999\nline 1");
    g.fail_at = 0;
    assert_int_equal(WEIR_OK, run_pipeline(&g, path, ck));
    assert_file(path, want, n);
    assert_int_equal(0, other_entries(dir, "out.txt") - 1); /* ck only */
    free(want);
    remove_dir(dir);
}

/* With a checkpoint directory and nothing to restore, a run starts over:
 * old output and stray pending files go. */
static void test_file_sink_pipeline_fresh_checkpointed(void **state)
{
    struct gen g = {.n = 3000};
    char dir[4096];
    char path[4096];
    char stray[4096];
    char ck[4096];
    size_t n;
    char *want = expected_lines(g.n, &n);

    (void)state;
    make_dir(dir, sizeof(dir), "pipe-fresh");
    join(path, dir, "out.txt");
    join(ck, dir, "ck");
    join(stray, dir, ".out.txt.weir-3.part");
    write_file(path, "stale\n", 6);
    write_file(stray, "stray\n", 6);
    assert_int_equal(WEIR_OK, run_pipeline(&g, path, ck));
    assert_file(path, want, n);
    assert_int_equal(-1, access(stray, F_OK));
    free(want);
    remove_dir(dir);
}

/* Builder errors. */
static void test_file_sink_builder_errors(void **state)
{
    char err[256];
    weir_pipeline_t *p = weir_pipeline_new("bad", NULL, err, sizeof(err));
    struct gen g = {.n = 1};

    (void)state;
    assert_non_null(p);
    assert_int_equal(WEIR_EINVAL,
                     weir_sink_file_lines(
                         weir_source_generator(p, "gen", gen_lines, &g), ""));
    assert_int_equal(WEIR_EINVAL, weir_pipeline_error(p));
    weir_pipeline_destroy(p);
    assert_int_equal(WEIR_EINVAL, weir_sink_file_lines(NULL, "x"));
    p = weir_pipeline_new("bad", NULL, err, sizeof(err));
    assert_non_null(p);
    assert_false(weir_stream_ok(weir_source_file_lines(p, NULL)));
    assert_int_equal(WEIR_EINVAL, weir_pipeline_error(p));
    weir_pipeline_destroy(p);
}

/* An unreadable input fails the run with a clear message. */
static void test_file_source_pipeline_unreadable(void **state)
{
    char dir[4096];
    char path[4096];
    char out[4096];
    char err[256];
    weir_pipeline_t *p;

    (void)state;
    make_dir(dir, sizeof(dir), "pipe-unreadable");
    join(path, dir, "missing.jsonl");
    join(out, dir, "out.txt");
    p = weir_pipeline_new("unreadable", NULL, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(
        WEIR_OK, weir_sink_file_lines(weir_source_file_lines(p, path), out));
    assert_true(weir_pipeline_run(p) < 0);
    assert_non_null(strstr(weir_pipeline_errstr(p), "missing.jsonl"));
    weir_pipeline_destroy(p);
    remove_dir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_source_lines),
        cmocka_unit_test(test_file_source_empty_file),
        cmocka_unit_test(test_file_source_batches_and_restore),
        cmocka_unit_test(test_file_source_ten_megabyte_line),
        cmocka_unit_test(test_file_source_unreadable),
        cmocka_unit_test(test_file_sink_direct),
        cmocka_unit_test(test_file_sink_checkpoint_and_crash),
        cmocka_unit_test(test_file_sink_restore_publishes_completed),
        cmocka_unit_test(test_file_sink_restore_older_truncates),
        cmocka_unit_test(test_file_sink_late_completion),
        cmocka_unit_test(test_file_sink_fresh_run),
        cmocka_unit_test(test_file_sink_pipeline_direct),
        cmocka_unit_test(test_file_sink_pipeline_crash_restart),
        cmocka_unit_test(test_file_sink_pipeline_fresh_checkpointed),
        cmocka_unit_test(test_file_sink_builder_errors),
        cmocka_unit_test(test_file_source_pipeline_unreadable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
