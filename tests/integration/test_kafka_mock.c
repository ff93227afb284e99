/*
 * test_kafka_mock.c - the Kafka source and sink on librdkafka's mock
 * cluster (or a real cluster: WEIR_TEST_BROKERS).
 *
 *   - source: every message once (with blocking empty polls,
 *     poll.wait.ms), positions, headers, key header, per-partition
 *     watermarks, max.records stops the pipeline;
 *   - weir-dedup Kafka mode, exactly once, on one partition, gives the
 *     same outputs as file mode on the same input, byte for byte, with
 *     each output keeping its input key; the same at least once;
 *   - Avro in the Confluent wire format with corrupt messages;
 *   - a fenced producer (another instance took its transactional.id)
 *     stops the pipeline with a clear message, its last commit intact;
 *     checkpoints with nothing for Kafka run no transaction;
 *   - weir_kafka_mock_nodelay(): bad bootstrap lists are refused; on a
 *     mock cluster of this process its listeners get TCP_NODELAY and
 *     another listening socket of the process is left alone;
 *   - faults: a broker down and up, and injected request errors
 *     (produce, transaction and offset requests) during an exactly-once
 *     run: committed outputs still hold every record once.
 *
 * Records of aborted transactions: see test_kafka_util.h; each test
 * reports how many it filtered out.
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

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/socket.h>

#include "../../examples/dedup_kafka.h"
#include "test_kafka_util.h"

/* ------------------------------------------------------------------ *
 * Source
 * ------------------------------------------------------------------ */

struct seen {
    int n;
    uint8_t hit[4][1000];
    int bad_headers;
    int bad_key;
    int64_t ts_sum;
};

static int seen_fn(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct seen *s = opaque;
    weir_buf_t h;
    weir_buf_t k = weir_record_key(rec);
    int32_t part = weir_record_partition(rec);
    int64_t off = weir_record_offset(rec);

    (void)tag;
    if (part < 0 || part >= 4 || off < 0 || off >= 1000)
        return WEIR_ERANGE;
    s->hit[part][off]++;
    s->n++;
    if (weir_record_header(rec, "origin", &h) != WEIR_OK || h.len != 4 ||
        memcmp(h.data, "test", 4) != 0)
        s->bad_headers++;
    if (weir_record_header(rec, WEIR_KAFKA_HDR_KEY, &h) != WEIR_OK ||
        h.len != k.len || memcmp(h.data, k.data, k.len) != 0)
        s->bad_key++;
    s->ts_sum += weir_record_ts(rec);
    return WEIR_OK;
}

static void produce_with_header(const char *topic, int partition,
                                const char *key, const char *value, int64_t ts)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);

    rd_kafka_header_add(h, "origin", -1, "test", 4);
    assert_int_equal(
        0, rd_kafka_producev(cluster.producer, RD_KAFKA_V_TOPIC(topic),
                             RD_KAFKA_V_PARTITION(partition),
                             RD_KAFKA_V_KEY(key, strlen(key)),
                             RD_KAFKA_V_VALUE((void *)value, strlen(value)),
                             RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_HEADERS(h),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END));
}

/* A new topic of 4 partitions holding n messages "k<i>" (round robin,
 * time 1000000 + i, header "origin"); returns the sum of their times. */
static int64_t fill_topic(char *topic, size_t size, const char *what, int n)
{
    char key[32];
    int64_t sum = 0;
    int i;

    kt_topic_name(topic, size, what);
    assert_int_equal(0, kt_create_topic(&cluster, topic, 4));
    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        produce_with_header(topic, i % 4, key, "v", 1000000 + i);
        sum += 1000000 + i;
    }
    assert_int_equal(0, kt_flush(&cluster));
    return sum;
}

/* A source conf for topic in group on the cluster, from the earliest
 * offset. */
static weir_kafka_source_conf_t *source_conf(const char *topic,
                                             const char *group)
{
    weir_kafka_source_conf_t *sc = weir_kafka_source_conf_new(topic);
    char err[256];

    assert_non_null(sc);
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "bootstrap.servers", cluster.bootstrap,
                                  err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(sc, "group.id", group,
                                                         err, sizeof(err)));
    assert_int_equal(WEIR_OK,
                     weir_kafka_source_conf_set(sc, "auto.offset.reset",
                                                "earliest", err, sizeof(err)));
    return sc;
}

static void test_kafka_source_reads_every_message(void **state)
{
    weir_kafka_source_conf_t *sc;
    weir_pipeline_t *p;
    weir_stream_t *s;
    struct seen seen;
    char topic[128];
    char group[128];
    char err[256];
    int64_t expect_ts;
    int i;

    (void)state;
    memset(&seen, 0, sizeof(seen));
    expect_ts = fill_topic(topic, sizeof(topic), "src", 2000);
    kt_topic_name(group, sizeof(group), "grp");

    sc = source_conf(topic, group);
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "max.records", "2000", err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "key.header", "true", err, sizeof(err)));
    assert_int_equal(WEIR_ENOENT,
                     weir_kafka_source_conf_set(sc, "no.such.property", "1",
                                                err, sizeof(err)));
    assert_int_equal(WEIR_EINVAL,
                     weir_kafka_source_conf_set(sc, "watermark.every", "0", err,
                                                sizeof(err)));
    assert_int_equal(WEIR_EINVAL,
                     weir_kafka_source_conf_set(sc, "poll.wait.ms", "1001", err,
                                                sizeof(err)));
    assert_int_equal(
        WEIR_EINVAL,
        weir_kafka_source_conf_set(sc, "poll.wait.ms", "-1", err, sizeof(err)));
    /* Empty polls block in librdkafka: still every message once. */
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "poll.wait.ms", "5", err, sizeof(err)));
    p = weir_pipeline_new("kafka-source", NULL, err, sizeof(err));
    assert_non_null(p);
    s = weir_kafka_source_ex(p, sc);
    assert_int_equal(WEIR_OK, weir_stream_collect(s, seen_fn, &seen));
    assert_int_equal(WEIR_OK, weir_pipeline_run(p));
    assert_int_equal(2000, weir_kafka_consumed_records(p));
    weir_pipeline_destroy(p);

    assert_int_equal(2000, seen.n);
    for (i = 0; i < 2000; i++)
        assert_int_equal(1, seen.hit[i % 4][i / 4]);
    assert_int_equal(0, seen.bad_headers);
    assert_int_equal(0, seen.bad_key);
    assert_int_equal(expect_ts, seen.ts_sum);
}

/* headers=none: records come without the messages' headers (the key
 * header, which the source adds itself, is still there). */
static void test_kafka_source_headers_none(void **state)
{
    weir_kafka_source_conf_t *sc;
    weir_pipeline_t *p;
    struct seen seen;
    char topic[128];
    char group[128];
    char err[256];

    (void)state;
    memset(&seen, 0, sizeof(seen));
    (void)fill_topic(topic, sizeof(topic), "src-nohdr", 200);
    kt_topic_name(group, sizeof(group), "grp");
    sc = source_conf(topic, group);
    assert_int_equal(WEIR_EINVAL, weir_kafka_source_conf_set(
                                      sc, "headers", "some", err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(sc, "headers", "none",
                                                         err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "max.records", "200", err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "key.header", "true", err, sizeof(err)));
    p = weir_pipeline_new("kafka-source", NULL, err, sizeof(err));
    assert_non_null(p);
    assert_int_equal(WEIR_OK, weir_stream_collect(weir_kafka_source_ex(p, sc),
                                                  seen_fn, &seen));
    assert_int_equal(WEIR_OK, weir_pipeline_run(p));
    weir_pipeline_destroy(p);
    assert_int_equal(200, seen.n);
    assert_int_equal(200, seen.bad_headers); /* no "origin" on any */
    assert_int_equal(0, seen.bad_key);
}

/* ------------------------------------------------------------------ *
 * The source's watermark: the minimum over partitions, as soon as it
 * rises
 * ------------------------------------------------------------------ */

#define WM_PARTS 4
#define WM_EACH  300

/* Before each record, the input watermark must be exactly the minimum
 * over partitions of the largest timestamp seen so far (bound 0, a
 * watermark after every record, no idleness): no later, no earlier. */
struct wm_check {
    int64_t max[WM_PARTS];
    int seen[WM_PARTS];
    int n;
    int wrong;
    int late;
    int64_t last_wm;
};

static int wm_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct wm_check *c = (struct wm_check *)weir_ctx_opaque(ctx);
    int32_t part = weir_record_partition(in);
    weir_ts_t expect = WEIR_TS_MAX;
    weir_ts_t w = weir_ctx_watermark(ctx);
    int p;

    (void)st;
    if (part < 0 || part >= WM_PARTS)
        return WEIR_ERANGE;
    for (p = 0; p < WM_PARTS; p++)
        if (!c->seen[p] || c->max[p] < expect)
            expect = c->seen[p] ? c->max[p] : WEIR_TS_MIN;
    if (w != expect)
        c->wrong++;
    if (weir_record_ts(in) <= w)
        c->late++;
    if (!c->seen[part] || weir_record_ts(in) > c->max[part])
        c->max[part] = weir_record_ts(in);
    c->seen[part] = 1;
    c->n++;
    c->last_wm = w;
    return WEIR_OK;
}

static int wm_drop(const weir_record_t *rec, const char *tag, void *opaque)
{
    (void)rec;
    (void)tag;
    (void)opaque;
    return WEIR_OK;
}

static const weir_operator_def_t wm_check_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "wm-check",
    .process = wm_process,
};

static void test_kafka_source_watermark_is_partition_minimum(void **state)
{
    struct wm_check c;
    weir_kafka_source_conf_t *sc;
    weir_pipeline_t *p;
    weir_stream_t *s;
    char topic[128];
    char group[128];
    char err[256];
    char key[32];
    int i;
    int part;

    (void)state;
    memset(&c, 0, sizeof(c));
    kt_topic_name(topic, sizeof(topic), "wm");
    kt_topic_name(group, sizeof(group), "wm-grp");
    assert_int_equal(0, kt_create_topic(&cluster, topic, WM_PARTS));
    /* strictly rising within a partition; partitions apart in time */
    for (i = 0; i < WM_EACH; i++)
        for (part = 0; part < WM_PARTS; part++) {
            snprintf(key, sizeof(key), "k%d-%d", part, i);
            produce_with_header(topic, part, key, "v",
                                1000000 + (int64_t)i * 10 + part * 37);
        }
    assert_int_equal(0, kt_flush(&cluster));

    sc = source_conf(topic, group);
    assert_int_equal(WEIR_OK,
                     weir_kafka_source_conf_set(sc, "idle.at.eof", "false", err,
                                                sizeof(err)));
    assert_int_equal(WEIR_OK, weir_kafka_source_conf_set(
                                  sc, "max.records", "1200", err, sizeof(err)));
    p = weir_pipeline_new("kafka-wm", NULL, err, sizeof(err));
    assert_non_null(p);
    s = weir_kafka_source_ex(p, sc);
    s = weir_stream_apply(s, &wm_check_def, &c);
    assert_int_equal(WEIR_OK, weir_stream_collect(s, wm_drop, NULL));
    assert_int_equal(WEIR_OK, weir_pipeline_run(p));
    weir_pipeline_destroy(p);

    assert_int_equal(WM_PARTS * WM_EACH, c.n);
    assert_int_equal(0, c.wrong);
    assert_int_equal(0, c.late);
    /* it rose: at least to the smallest partition's next-to-last time */
    assert_true(c.last_wm >= 1000000 + (int64_t)(WM_EACH - 2) * 10);
}

/* ------------------------------------------------------------------ *
 * weir-dedup: Kafka mode against file mode
 * ------------------------------------------------------------------ */

#define NLINES 3000

struct line {
    char text[160];
    char key[32];
};

static struct line lines[NLINES];

/* Events with duplicates, disorder within B, late events and corrupt
 * lines, deterministic from the seed. */
static void make_lines(unsigned seed)
{
    int64_t ts = 1700000000000LL;
    int i;
    int r;

    srand(seed);
    for (i = 0; i < NLINES; i++) {
        snprintf(lines[i].key, sizeof(lines[i].key), "key-%d", i);
        r = rand() % 100;
        ts += rand() % 40;
        if (r < 3)
            snprintf(lines[i].text, sizeof(lines[i].text),
                     "{\"id\":\"broken-%d\",", i);
        else if (r < 5)
            snprintf(lines[i].text, sizeof(lines[i].text),
                     "{\"id\":\"no-ts-%d\",\"seq\":%d}", i, i);
        else if (r < 8)
            snprintf(lines[i].text, sizeof(lines[i].text),
                     "{\"id\":\"e%d\",\"ts\":%lld,\"seq\":%d}",
                     rand() % (i + 1), (long long)(ts - 60000), i);
        else if (r < 30 && i > 0)
            snprintf(lines[i].text, sizeof(lines[i].text),
                     "{\"id\":\"e%d\",\"ts\":%lld,\"seq\":%d}",
                     i - 1 - rand() % (i < 50 ? i : 50),
                     (long long)(ts - rand() % 900), i);
        else
            snprintf(lines[i].text, sizeof(lines[i].text),
                     "{\"id\":\"e%d\",\"ts\":%lld,\"seq\":%d}", i,
                     (long long)(ts - rand() % 900), i);
    }
}

static void fill_common(struct cli_dedup *d, const char *ckdir)
{
    memset(d, 0, sizeof(*d));
    d->keys = "id";
    d->time_field = "ts";
    d->scope = WEIR_WINDOW_ROLLING;
    d->size = WEIR_SECONDS(30);
    d->bound = WEIR_SECONDS(1);
    d->every = 1;
    d->parallelism = 2;
    d->ckdir = ckdir;
    d->ck_every = 500;
}

/* Sorted lines of a file. */
struct strs {
    char **v;
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void strs_add(struct strs *s, const char *p, size_t n)
{
    s->v = realloc(s->v, (s->n + 1) * sizeof(*s->v));
    s->v[s->n] = malloc(n + 1);
    memcpy(s->v[s->n], p, n);
    s->v[s->n][n] = '\0';
    s->n++;
}

static void strs_free(struct strs *s)
{
    size_t i;

    for (i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static void read_lines(const char *path, struct strs *out)
{
    char buf[512];
    FILE *fp = fopen(path, "r");

    assert_non_null(fp);
    while (fgets(buf, sizeof(buf), fp) != NULL) {
        size_t n = strlen(buf);

        if (n > 0 && buf[n - 1] == '\n')
            n--;
        strs_add(out, buf, n);
    }
    fclose(fp);
    qsort(out->v, out->n, sizeof(*out->v), cmp_str);
}

struct topic_read {
    struct strs values;
    int bad_keys;
};

static int collect_values(const rd_kafka_message_t *m,
                          const struct dk_commit *commit, void *opaque)
{
    struct topic_read *t = opaque;
    int i;

    (void)commit;
    strs_add(&t->values, m->payload, m->len);
    /* The value names the input line; its key must be that line's. */
    for (i = 0; i < NLINES; i++)
        if (strlen(lines[i].text) == m->len &&
            memcmp(lines[i].text, m->payload, m->len) == 0)
            break;
    if (i == NLINES || m->key_len != strlen(lines[i].key) ||
        memcmp(m->key, lines[i].key, m->key_len) != 0)
        t->bad_keys++;
    return 0;
}

static void read_topic(const char *topic, const struct dk_commit_log *cs,
                       struct topic_read *t)
{
    struct kt_read_stats st = {0};

    memset(t, 0, sizeof(*t));
    assert_int_equal(0, kt_read(&cluster, topic, cs, collect_values, t, &st));
    qsort(t->values.v, t->values.n, sizeof(*t->values.v), cmp_str);
    print_message("%s: %" PRIu64 " records, %" PRIu64
                  " of aborted/open transactions filtered out\n",
                  topic, st.total, st.uncommitted);
}

static void assert_same(const struct strs *a, const struct strs *b)
{
    size_t i;

    assert_int_equal(a->n, b->n);
    for (i = 0; i < a->n; i++)
        assert_string_equal(a->v[i], b->v[i]);
}

/* Kafka mode against file mode on the same input. private_ck: no
 * --checkpoint-dir (the run keeps its checkpoints in a directory of its own
 * under $TMPDIR and removes it); an undisturbed run commits every
 * transaction, so all records are read. */
static void run_kafka_vs_file(int at_least_once, int private_ck)
{
    static const char *const files[CLI_NOUT] = {
        "unique.jsonl", "duplicates.jsonl", "late.jsonl", "errors.jsonl"};
    struct dedup_kafka_opts o;
    struct cli_dedup d;
    struct topic_read got;
    struct strs want;
    struct dk_commit_log cs = {0};
    char dir[4096];
    char ckdir[4200];
    char tmpdir[4200];
    char fileck[4200];
    char input[4200];
    char path[4300];
    char topics[CLI_NOUT + 1][128];
    char group[128];
    char msg[CLI_MSG];
    char summary[256];
    FILE *fp;
    FILE *sum;
    int f;
    int i;

    make_lines(at_least_once ? 77 : 42);
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "kafka-vs-file"));
    snprintf(input, sizeof(input), "%s/input.jsonl", dir);
    snprintf(ckdir, sizeof(ckdir), "%s/ck-kafka", dir);
    snprintf(fileck, sizeof(fileck), "%s/ck-file", dir);
    snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", dir);
    assert_int_equal(0, mkdir(tmpdir, 0755));
    fp = fopen(input, "w");
    assert_non_null(fp);
    for (i = 0; i < NLINES; i++)
        fprintf(fp, "%s\n", lines[i].text);
    fclose(fp);

    /* File mode. */
    fill_common(&d, fileck);
    d.input = input;
    d.outdir = dir;
    if (cli_dedup_run(&d, msg) != 0)
        fail_msg("file mode: %s", msg);

    /* Kafka mode on one partition, same options. */
    for (f = 0; f <= CLI_NOUT; f++) {
        kt_topic_name(topics[f], sizeof(topics[f]), "dedup");
        assert_int_equal(
            0, kt_create_topic(&cluster, topics[f], f == CLI_NOUT ? 1 : 2));
    }
    for (i = 0; i < NLINES; i++)
        assert_int_equal(0, kt_produce(&cluster, topics[CLI_NOUT], 0,
                                       lines[i].key, strlen(lines[i].key),
                                       lines[i].text, strlen(lines[i].text)));
    assert_int_equal(0, kt_flush(&cluster));
    kt_topic_name(group, sizeof(group), "grp");
    memset(&o, 0, sizeof(o));
    fill_common(&o.d, ckdir);
    o.brokers = cluster.bootstrap;
    o.topic = topics[CLI_NOUT];
    o.group = group;
    o.out_topic = topics[CLI_UNIQUE];
    o.dup_topic = topics[CLI_DUPLICATES];
    o.late_topic = topics[CLI_LATE];
    o.err_topic = topics[CLI_ERRORS];
    o.at_least_once = at_least_once;
    o.from_beginning = 1;
    o.max_records = NLINES;
    o.commit_interval = 50;
    o.x[o.nx++] = "log_level=2";
    o.x[o.nx++] = "session.timeout.ms=6000";
    sum = tmpfile();
    o.out = sum;
    if (private_ck) {
        o.d.ckdir = NULL;
        assert_int_equal(0, setenv("TMPDIR", tmpdir, 1));
    }
    if (dedup_kafka_run(&o, msg) != CLI_EXIT_OK)
        fail_msg("kafka mode: %s", msg);
    assert_int_equal(0, unsetenv("TMPDIR"));
    assert_int_equal(1, kt_dir_empty(tmpdir)); /* the private dir is gone */
    rewind(sum);
    assert_non_null(fgets(summary, sizeof(summary), sum));
    fclose(sum);
    print_message("summary: %s", summary);

    if (!at_least_once && !private_ck)
        dk_commit_log_load(&cs, ckdir);
    for (f = 0; f < CLI_NOUT; f++) {
        memset(&want, 0, sizeof(want));
        snprintf(path, sizeof(path), "%s/%s", dir, files[f]);
        read_lines(path, &want);
        read_topic(topics[f], at_least_once || private_ck ? NULL : &cs, &got);
        assert_int_equal(0, got.bad_keys);
        if (at_least_once)
            assert_true(got.values.n >= want.n);
        else
            assert_same(&want, &got.values);
        print_message("%s: %zu records as in file mode\n", files[f], want.n);
        strs_free(&want);
        strs_free(&got.values);
    }
    dk_commit_log_free(&cs);
    kt_rmtree(dir);
}

/* TCP_NODELAY of the listening socket bound to port, -1 if none. */
static int listener_nodelay(int port)
{
    struct sockaddr_in sa;
    socklen_t len;
    int fd;
    int acc;
    int v;

    for (fd = 0; fd < 4096; fd++) {
        len = sizeof(acc);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) != 0 || !acc)
            continue;
        len = sizeof(sa);
        if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0 ||
            sa.sin_family != AF_INET || ntohs(sa.sin_port) != port)
            continue;
        len = sizeof(v);
        if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len) != 0)
            return -1;
        return v != 0;
    }
    return -1;
}

static void test_kafka_mock_nodelay(void **state)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_mock_cluster_t *mc;
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    const char *bs;
    const char *colon;
    rd_kafka_t *rk;
    char err[256];
    int other;
    int other_port;

    (void)state;
    assert_int_equal(weir_kafka_mock_nodelay(NULL), WEIR_EINVAL);
    assert_int_equal(weir_kafka_mock_nodelay(""), WEIR_EINVAL);
    assert_int_equal(weir_kafka_mock_nodelay("localhost"), WEIR_EINVAL);
    assert_int_equal(weir_kafka_mock_nodelay("localhost:0"), WEIR_EINVAL);
    assert_int_equal(weir_kafka_mock_nodelay("localhost:70000"), WEIR_EINVAL);
    assert_int_equal(weir_kafka_mock_nodelay("a:1,b"), WEIR_EINVAL);

    /* Another server of the process, on a port of its own. */
    other = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(other >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(other, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(other, 1), 0);
    assert_int_equal(getsockname(other, (struct sockaddr *)&sa, &len), 0);
    other_port = ntohs(sa.sin_port);

    rd_kafka_conf_set(conf, "log_level", "2", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    mc = rd_kafka_mock_cluster_new(rk, 2);
    assert_non_null(mc);
    bs = rd_kafka_mock_cluster_bootstraps(mc);
    colon = strrchr(bs, ':');
    assert_non_null(colon);
    assert_true(weir_kafka_mock_nodelay(bs) >= 2);
    assert_int_equal(listener_nodelay(atoi(colon + 1)), 1);
    assert_int_equal(listener_nodelay(other_port), 0);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    close(other);
}

/* A small run's fixtures: a scratch directory `dir` with the
 * checkpoint directory `ckdir` in it, and five topics of one partition
 * (input, then kt_dedup_opts' four outputs) named after `what`. */
static void one_partition_run(char topics[5][128], char dir[4096],
                              char ckdir[4200], const char *what)
{
    int i;

    assert_int_equal(0, kt_tmpdir(dir, 4096, what));
    snprintf(ckdir, 4200, "%s/ck", dir);
    for (i = 0; i < 5; i++) {
        kt_topic_name(topics[i], 128, what);
        assert_int_equal(0, kt_create_topic(&cluster, topics[i], 1));
    }
}

/* At least once passes a barrier when every record before it is
 * acknowledged, so it needs a report for every record: turning
 * successful reports off is refused with a clear message, not a hang. */
static void test_kafka_at_least_once_needs_every_report(void **state)
{
    struct dedup_kafka_opts o;
    char topics[5][128]; /* input, then kt_dedup_opts' four outputs */
    char dir[4096];
    char ckdir[4200];
    char msg[CLI_MSG];

    (void)state;
    one_partition_run(topics, dir, ckdir, "alos-reports");
    assert_int_equal(0, kt_produce(&cluster, topics[0], 0, "k", 1,
                                   "{\"id\":\"a\",\"ts\":1}", 17));
    assert_int_equal(0, kt_flush(&cluster));
    kt_dedup_opts(&o, &cluster, topics + 1, topics[0], topics[0], ckdir, 0,
                  "session.timeout.ms=6000");
    o.at_least_once = 1;
    o.max_records = 1;
    o.x[o.nx++] = "delivery.report.only.error=true";
    o.out = tmpfile();
    assert_int_equal(CLI_EXIT_RUN, dedup_kafka_run(&o, msg));
    assert_non_null(strstr(msg, "delivery.report.only.error"));
    fclose(o.out);
    kt_rmtree(dir);
}

/* Recovery rewrites checkpoint markers: never in a directory a running
 * pipeline holds (its LOCK). */
static void test_kafka_recover_refuses_a_held_directory(void **state)
{
    weir_conf_t *conf = weir_conf_new();
    char dir[4096];
    char lock[4200];
    char err[512];
    int fd;

    (void)state;
    assert_int_equal(0, kt_tmpdir(dir, sizeof(dir), "recover-lock"));
    assert_int_equal(
        WEIR_OK, weir_conf_set(conf, "checkpoint.dir", dir, err, sizeof(err)));
    snprintf(lock, sizeof(lock), "%s/LOCK", dir);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(0, flock(fd, LOCK_EX | LOCK_NB));
    assert_int_equal(WEIR_EBUSY,
                     weir_kafka_recover(conf, NULL, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "in use"));
    close(fd);
    assert_int_equal(WEIR_OK,
                     weir_kafka_recover(conf, NULL, NULL, err, sizeof(err)));
    weir_conf_destroy(conf);
    kt_rmtree(dir);
}

/* A weir-dedup instance in a thread of the test. */
struct fence_run {
    struct dedup_kafka_opts o;
    char msg[CLI_MSG];
    int rc;
    _Atomic int done;
};

static void *fence_run_main(void *arg)
{
    struct fence_run *r = arg;

    r->rc = dedup_kafka_run(&r->o, r->msg);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Lines in the commit log of ckdir (one per commit until compacted). */
static size_t log_lines(const char *ckdir)
{
    struct dk_commit_log cs = {0};
    size_t n;

    dk_commit_log_load(&cs, ckdir);
    n = cs.n;
    dk_commit_log_free(&cs);
    return n;
}

/* Takes the transactional.id over, as a second instance would: on a real
 * cluster, a producer of the same id initializing fences the first; the
 * mock does not fence, so its coordinator is told to answer the next
 * EndTxn the way a broker answers a fenced producer. */
static void fence(const char *txn_id)
{
    rd_kafka_conf_t *conf;
    rd_kafka_error_t *e;
    rd_kafka_t *rk;
    char err[256];

    if (cluster.mc != NULL) {
        rd_kafka_mock_push_request_errors(cluster.mc, 26 /* EndTxn */, 1,
                                          RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
        return;
    }
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", cluster.bootstrap, err,
                      sizeof(err));
    rd_kafka_conf_set(conf, "transactional.id", txn_id, err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    assert_non_null(rk);
    e = rd_kafka_init_transactions(rk, 30000);
    assert_null(e);
    rd_kafka_destroy(rk);
}

static int count_a(const rd_kafka_message_t *m, const struct dk_commit *commit,
                   void *opaque)
{
    (void)commit;
    if (m->len == 17 && memcmp(m->payload, "{\"id\":\"a\",\"ts\":1}", 17) == 0)
        ++*(int *)opaque;
    return 0;
}

/* How many committed copies of event a the unique output holds (-1: it
 * cannot be read); on the mock, committed by the commit log in ckdir. */
static int committed_a(const char *topic, const char *ckdir,
                       struct kt_read_stats *st)
{
    struct dk_commit_log cs = {0};
    int n = 0;

    dk_commit_log_load(&cs, ckdir);
    if (kt_read(&cluster, topic, cluster.mc != NULL ? &cs : NULL, count_a, &n,
                st) != 0)
        n = -1;
    dk_commit_log_free(&cs);
    return n;
}

/* A fenced producer is fatal: the pipeline stops with a message naming
 * the cause and the transactional.id, and exit status 1; what it had
 * committed before stays committed, once. On the way: an idle pipeline
 * runs no transactions. */
static void test_kafka_fenced_producer_stops(void **state)
{
    struct fence_run r;
    char topics[5][128]; /* input, then kt_dedup_opts' four outputs */
    char txn[160];
    char x_txn[200];
    char dir[4096];
    char ckdir[4200];
    struct kt_read_stats st;
    pthread_t th;
    int64_t deadline;
    size_t before;

    (void)state;
    one_partition_run(topics, dir, ckdir, "fenced");
    snprintf(txn, sizeof(txn), "%s-txn", topics[0]);
    snprintf(x_txn, sizeof(x_txn), "transactional.id=%s", txn);
    memset(&r, 0, sizeof(r));
    kt_dedup_opts(&r.o, &cluster, topics + 1, topics[0], topics[0], ckdir,
                  WEIR_SECONDS(120), "session.timeout.ms=6000");
    r.o.x[r.o.nx++] = x_txn;
    r.o.out = tmpfile();
    assert_int_equal(0, pthread_create(&th, NULL, fence_run_main, &r));

    /* The first event goes through and is committed. */
    assert_int_equal(0, kt_produce(&cluster, topics[0], 0, "a", 1,
                                   "{\"id\":\"a\",\"ts\":1}", 17));
    assert_int_equal(0, kt_flush(&cluster));
    deadline = kt_now() + 60000;
    while (committed_a(topics[1], ckdir, NULL) == 0 && kt_now() < deadline)
        usleep(50000);
    assert_int_equal(1, committed_a(topics[1], ckdir, NULL));

    /* Another instance takes the id over. Checkpoints with nothing for
     * Kafka (no record, no offset moved) are committed by the commit log
     * alone: the idle instance goes on through several of them without
     * a transaction, so nothing tells it yet. */
    fence(txn);
    before = log_lines(ckdir);
    deadline = kt_now() + 30000;
    while (log_lines(ckdir) < before + 5 && !atomic_load(&r.done) &&
           kt_now() < deadline)
        usleep(20000);
    assert_false(atomic_load(&r.done));
    assert_true(log_lines(ckdir) >= before + 5);

    /* Event b needs a transaction: that commit fails. */
    assert_int_equal(0, kt_produce(&cluster, topics[0], 0, "b", 1,
                                   "{\"id\":\"b\",\"ts\":2}", 17));
    assert_int_equal(0, kt_flush(&cluster));
    assert_int_equal(0, pthread_join(th, NULL));
    print_message("stopped: %s\n", r.msg);
    assert_int_equal(CLI_EXIT_RUN, r.rc);
    assert_non_null(strstr(r.msg, "fenced"));
    assert_non_null(strstr(r.msg, txn));

    /* Committed: event a, once; b's transaction never committed. */
    memset(&st, 0, sizeof(st));
    assert_int_equal(1, committed_a(topics[1], ckdir, &st));
    print_message("unique output: %" PRIu64 " records, %" PRIu64
                  " of uncommitted transactions left out\n",
                  st.total, st.uncommitted);
    assert_int_equal(st.total - st.uncommitted, 1);
    fclose(r.o.out);
    kt_rmtree(dir);
}

static void test_kafka_dedup_exactly_once_matches_file_mode(void **state)
{
    (void)state;
    run_kafka_vs_file(0, 0);
}

static void test_kafka_dedup_without_checkpoint_dir(void **state)
{
    (void)state;
    run_kafka_vs_file(0, 1);
}

static void test_kafka_dedup_at_least_once(void **state)
{
    (void)state;
    run_kafka_vs_file(1, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_source_reads_every_message),
        cmocka_unit_test(test_kafka_source_headers_none),
        cmocka_unit_test(test_kafka_source_watermark_is_partition_minimum),
        cmocka_unit_test(test_kafka_mock_nodelay),
        cmocka_unit_test(test_kafka_dedup_exactly_once_matches_file_mode),
        cmocka_unit_test(test_kafka_dedup_at_least_once),
        cmocka_unit_test(test_kafka_dedup_without_checkpoint_dir),
        cmocka_unit_test(test_kafka_recover_refuses_a_held_directory),
        cmocka_unit_test(test_kafka_at_least_once_needs_every_report),
        cmocka_unit_test(test_kafka_fenced_producer_stops),
    };

    return cmocka_run_group_tests(tests, kt_setup, kt_teardown);
}

#else /* WEIR_WITH_KAFKA && WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf("test_kafka_mock.c: built without Kafka and Avro, nothing to run\n");
    return 0;
}

#endif
