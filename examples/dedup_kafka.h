/*
 * dedup_kafka.h - the Kafka mode of weir-dedup: deduplicate a Kafka topic
 * into Kafka topics, exactly once (or at least once).
 *
 * The topology (same dedup as file mode, cli_common.h):
 *
 *   kafka source (per-partition watermarks, bounded B, every N; its
 *   extractor parses each message once: JSON into the record key =
 *   canonical key fields and ts, as file mode's parse does; Avro into ts
 *   and the key header)
 *       -> key_by -> dedup scope -> unique      -> --output-topic
 *                                +-> duplicates -> --duplicates-topic
 *                                +-> late       -> --late-topic
 *                                +-> changelog  -> <group>-dedup-changelog
 *     undecodable input                         -> --errors-topic
 *
 * Outputs keep the input message's value byte for byte and its key (the
 * JSON extractor replaces the record key with the dedup key, so the
 * source keeps the message key in a header the sinks write back). An
 * output without a topic is counted and dropped.
 *
 * How it works
 *   dedup_kafka_run() builds and runs the pipeline with checkpoints every
 *   commit interval (100 ms unless set): each checkpoint is one Kafka
 *   transaction (weir/kafka.h). Before each run weir_kafka_recover()
 *   makes the last committed checkpoint the one restored. A run that
 *   fails with a retriable Kafka error (an aborted transaction) is run
 *   again from there, up to DK_MAX_RESTARTS times; a fenced producer
 *   stops with its message. SIGINT/SIGTERM stop the pipeline with a final
 *   checkpoint. Without --checkpoint-dir the checkpoints go to a
 *   directory of the run's own under $TMPDIR, removed at exit (see
 *   dk_private_ckdir). With no --brokers an embedded mock cluster (3
 *   brokers) is started in the process and its bootstrap servers printed
 *   on stderr.
 *   The last line on stdout is the summary
 *   {"records":R,"unique":U,"duplicates":D,"late":L,"errors":E}: messages
 *   consumed and records committed to each output by this invocation.
 *
 * Everything is static inline, like cli_common.h; include it once.
 */
#ifndef WEIR_EXAMPLES_DEDUP_KAFKA_H
#define WEIR_EXAMPLES_DEDUP_KAFKA_H

#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "cli_common.h"
#include <weir/avro.h>
#include <weir/kafka.h>

#define DK_MAX_RESTARTS  20
#define DK_DEFAULT_GROUP "weir-dedup"
#define DK_MAX_X         64

/* Options of the Kafka mode (file-mode options keep their meaning). */
struct dedup_kafka_opts {
    struct cli_dedup d;        /* key, time field, window, bound,
                                * lateness, watermark every, parallelism,
                                * checkpoint dir (input/outdir unused) */
    const char *brokers;       /* --brokers, NULL: embedded mock     */
    const char *topic;         /* --topic (required)                 */
    const char *group;         /* --group (default weir-dedup)       */
    const char *out_topic;     /* --output-topic (required)          */
    const char *dup_topic;     /* --duplicates-topic or NULL         */
    const char *late_topic;    /* --late-topic or NULL               */
    const char *err_topic;     /* --errors-topic or NULL             */
    int avro;                  /* --format avro                      */
    const char *schema;        /* --schema FILE                      */
    const char *schema_dir;    /* --schema-dir DIR                   */
    int at_least_once;         /* --at-least-once                    */
    int from_beginning;        /* --from-beginning                   */
    uint64_t max_records;      /* --max-records (0: no limit)        */
    weir_ts_t idle_exit;       /* --idle-exit (0: never)             */
    weir_ts_t commit_interval; /* checkpoint interval (0: 100 ms)    */
    const char *x[DK_MAX_X];   /* -X key=value, passed to librdkafka */
    size_t nx;
    FILE *out;                   /* summary stream (NULL: stdout)      */
    uint64_t *replayed;          /* adds changelog entries replayed    */
    uint64_t *handover_failures; /* adds unclean handovers   */
};

/* The option table entries of the Kafka mode, for cli_parse(). */
#define DEDUP_KAFKA_CLI_OPTS                                                   \
    {"brokers", NULL, 0}, {"topic", NULL, 0}, {"group", NULL, 0},              \
        {"output-topic", NULL, 0}, {"duplicates-topic", NULL, 0},              \
        {"late-topic", NULL, 0}, {"errors-topic", NULL, 0},                    \
        {"format", NULL, 0}, {"schema", NULL, 0}, {"schema-dir", NULL, 0},     \
        {"exactly-once", NULL, 1}, {"at-least-once", NULL, 1},                 \
        {"from-beginning", NULL, 1}, {"max-records", NULL, 0},                 \
        {"idle-exit", NULL, 0},                                                \
    {                                                                          \
        "commit-interval", NULL, 0                                             \
    }

#define DEDUP_KAFKA_USAGE                                                      \
    "Kafka mode (instead of --input/--output-dir):\n"                          \
    "  --brokers LIST          bootstrap servers (none: embedded mock "        \
    "cluster)\n"                                                               \
    "  --topic IN              input topic\n"                                  \
    "  --group G               consumer group (default weir-dedup)\n"          \
    "  --output-topic OUT      unique events\n"                                \
    "  --duplicates-topic D    duplicates (dropped when absent)\n"             \
    "  --late-topic L          late events (dropped when absent)\n"            \
    "  --errors-topic E        undecodable input (dropped when absent)\n"      \
    "  --format json|avro      message values (default json)\n"                \
    "  --schema FILE           Avro reader schema\n"                           \
    "  --schema-dir DIR        Avro writer schemas <id>.avsc (Confluent "      \
    "framing)\n"                                                               \
    "  --exactly-once          transactions per checkpoint (default)\n"        \
    "  --at-least-once         no transactions, lower latency\n"               \
    "  --from-beginning        start at the earliest offset when the group "   \
    "has none\n"                                                               \
    "  --max-records N         stop cleanly after N messages\n"                \
    "  --idle-exit DUR         stop cleanly after no input for DUR\n"          \
    "  --commit-interval DUR   checkpoint/commit interval (default 100ms)\n"   \
    "  -X key=value            librdkafka property (repeatable)\n"

/* 1 when the options ask for Kafka mode. */
static inline int dedup_kafka_wanted(const struct cli_opt *o)
{
    return cli_get(o, "topic") != NULL || cli_get(o, "brokers") != NULL;
}

/*
 * Removes every "-X key=value" (or "-Xkey=value") from argv, before
 * cli_parse(), keeping them in k->x. -1 with a message when malformed.
 */
static inline int dedup_kafka_take_x(int *argc, char **argv,
                                     struct dedup_kafka_opts *k, char *msg)
{
    const char *v;
    int i;
    int j = 1;

    for (i = 1; i < *argc; i++) {
        if (strncmp(argv[i], "-X", 2) != 0) {
            argv[j++] = argv[i];
            continue;
        }
        v = argv[i][2] != '\0' ? argv[i] + 2
                               : (i + 1 < *argc ? argv[++i] : NULL);
        if (v == NULL || strchr(v, '=') == NULL || v[0] == '=') {
            cli_fmt(msg, "-X needs key=value");
            return -1;
        }
        if (k->nx == DK_MAX_X) {
            cli_fmt(msg, "too many -X options");
            return -1;
        }
        k->x[k->nx++] = v;
    }
    *argc = j;
    argv[j] = NULL;
    return 0;
}

/* Fills the Kafka fields of k from parsed options (k->d is the caller's:
 * the file-mode options). -1 with a message on a bad argument. */
static inline int dedup_kafka_from_opts(const struct cli_opt *o,
                                        struct dedup_kafka_opts *k, char *msg)
{
    const char *fmt = cli_get(o, "format");

    k->brokers = cli_get(o, "brokers");
    k->topic = cli_get(o, "topic");
    k->group = cli_get(o, "group");
    k->out_topic = cli_get(o, "output-topic");
    k->dup_topic = cli_get(o, "duplicates-topic");
    k->late_topic = cli_get(o, "late-topic");
    k->err_topic = cli_get(o, "errors-topic");
    k->schema = cli_get(o, "schema");
    k->schema_dir = cli_get(o, "schema-dir");
    k->from_beginning = cli_get(o, "from-beginning") != NULL;
    k->at_least_once = cli_get(o, "at-least-once") != NULL;
    if (k->at_least_once && cli_get(o, "exactly-once") != NULL) {
        cli_fmt(msg, "--exactly-once and --at-least-once exclude each other");
        return -1;
    }
    if (k->topic == NULL || k->out_topic == NULL) {
        cli_fmt(msg, "Kafka mode needs --topic and --output-topic");
        return -1;
    }
    if (fmt != NULL && strcmp(fmt, "avro") != 0 && strcmp(fmt, "json") != 0) {
        cli_fmt(msg, "--format: want json or avro, not '%s'", fmt);
        return -1;
    }
    k->avro = fmt != NULL && strcmp(fmt, "avro") == 0;
    if (k->avro && k->schema == NULL && k->schema_dir == NULL) {
        cli_fmt(msg, "--format avro needs --schema or --schema-dir");
        return -1;
    }
    if (cli_opt_u64(o, "max-records", 0, INT64_MAX, 0, &k->max_records, msg) !=
            0 ||
        cli_opt_dur(o, "idle-exit", 0, &k->idle_exit, msg) != 0 ||
        cli_opt_dur(o, "commit-interval", 100, &k->commit_interval, msg) != 0)
        return -1;
    if (k->commit_interval <= 0) {
        cli_fmt(msg, "--commit-interval must be above 0");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ *
 * ## Extractors
 * ------------------------------------------------------------------ */

/* JSON: the whole parse where the message is read (weir_json_parser_*):
 * key = the canonical key fields, ts = the time field, so per-partition
 * watermarks see the time and no later operator reads the line again.
 * A bad line goes to the errors output with the file mode's reason; a
 * blank one is consumed and dropped, as in file mode. opaque: the
 * options (struct cli_dedup). */
struct dk_json {
    weir_json_opts_t *opts;
    weir_json_parser_t *parser;
};

static inline void dk_json_close(void *inst)
{
    struct dk_json *j = inst;

    if (j == NULL)
        return;
    weir_json_parser_destroy(j->parser);
    weir_json_opts_destroy(j->opts);
    free(j);
}

static inline void *dk_json_open(const void *opaque, char *errstr,
                                 size_t errstr_size)
{
    const struct cli_dedup *d = opaque;
    struct dk_json *j = calloc(1, sizeof(*j));

    if (j == NULL)
        return NULL;
    j->opts = weir_json_opts_new();
    if (j->opts == NULL || weir_json_opts_add_keys(j->opts, d->keys) != 0 ||
        weir_json_opts_set_time_field(
            j->opts, d->time_field ? d->time_field : WEIR_JSON_TIME_FIELD) !=
            0) {
        snprintf(errstr, errstr_size, "bad --key or --time-field");
        dk_json_close(j);
        return NULL;
    }
    j->parser = weir_json_parser_new(j->opts, errstr, errstr_size);
    if (j->parser == NULL) {
        dk_json_close(j);
        return NULL;
    }
    return j;
}

static inline int dk_json_extract(void *inst, weir_record_t *rec, char *errstr,
                                  size_t errstr_size)
{
    struct dk_json *j = inst;
    int rc = weir_json_parser_apply(j->parser, rec, errstr, errstr_size);

    return rc == WEIR_ENOENT ? WEIR_KAFKA_SKIP : rc;
}

static const weir_kafka_extractor_t dk_json_extractor = {
    .version = WEIR_KAFKA_EXTRACTOR_VERSION,
    .name = "json",
    .open = dk_json_open,
    .extract = dk_json_extract,
    .close = dk_json_close,
};

/* Avro: one codec per source instance; ts and the key header. */
static inline void *dk_avro_open(const void *opaque, char *errstr,
                                 size_t errstr_size)
{
    return weir_avro_codec_new(opaque, errstr, errstr_size);
}

static inline int dk_avro_extract(void *inst, weir_record_t *rec, char *errstr,
                                  size_t errstr_size)
{
    return weir_avro_extract(inst, rec, errstr, errstr_size);
}

static inline void dk_avro_close(void *inst)
{
    weir_avro_codec_destroy(inst);
}

static const weir_kafka_extractor_t dk_avro_extractor = {
    .version = WEIR_KAFKA_EXTRACTOR_VERSION,
    .name = "avro",
    .open = dk_avro_open,
    .extract = dk_avro_extract,
    .close = dk_avro_close,
};

/* ------------------------------------------------------------------ *
 * ## Signals
 * ------------------------------------------------------------------ */

static weir_pipeline_t *volatile dk_running;
static volatile sig_atomic_t dk_signalled;

static inline void dk_on_signal(int sig)
{
    weir_pipeline_t *p = dk_running;

    (void)sig;
    dk_signalled = 1;
    if (p != NULL)
        weir_pipeline_stop(p);
}

static inline void dk_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = dk_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* ------------------------------------------------------------------ *
 * ## The pipeline
 * ------------------------------------------------------------------ */

/* Counts records of outputs that have no topic. */
static inline int dk_count(const weir_record_t *rec, const char *tag,
                           void *opaque)
{
    (void)rec;
    (void)tag;
    atomic_fetch_add((_Atomic uint64_t *)opaque, 1);
    return WEIR_OK;
}

struct dk_run {
    const struct dedup_kafka_opts *o;
    const char *brokers;
    const char *ckdir;
    weir_avro_format_t *fmt;
    _Atomic uint64_t dropped[CLI_NOUT];
};

/* Sets a property on a source or sink conf; -1 with a message. */
static inline int dk_set(weir_kafka_source_conf_t *sc,
                         weir_kafka_sink_conf_t *kc, const char *name,
                         const char *value, char *msg)
{
    char err[512];
    int rc;

    rc = sc != NULL
             ? weir_kafka_source_conf_set(sc, name, value, err, sizeof(err))
             : weir_kafka_sink_conf_set(kc, name, value, err, sizeof(err));
    if (rc == WEIR_OK)
        return 0;
    cli_fmt(msg, "cannot set %s=%s: %s", name, value, err);
    return -1;
}

/* Applies -X key=value to a conf; consumer-only or producer-only names
 * are accepted by both (librdkafka ignores them where they do not
 * apply). */
static inline int dk_set_x(const struct dedup_kafka_opts *o,
                           weir_kafka_source_conf_t *sc,
                           weir_kafka_sink_conf_t *kc, char *msg)
{
    char name[256];
    size_t i;
    size_t n;

    for (i = 0; i < o->nx; i++) {
        n = (size_t)(strchr(o->x[i], '=') - o->x[i]);
        if (n >= sizeof(name)) {
            cli_fmt(msg, "-X %s: name too long", o->x[i]);
            return -1;
        }
        memcpy(name, o->x[i], n);
        name[n] = '\0';
        if (dk_set(sc, kc, name, o->x[i] + n + 1, msg) != 0)
            return -1;
    }
    return 0;
}

/* The dedup state's changelog topic: <group>-dedup-changelog. */
static inline void dk_changelog_topic(const struct dedup_kafka_opts *o,
                                      char *out, size_t size)
{
    snprintf(out, size, "%s-dedup-changelog",
             o->group ? o->group : DK_DEFAULT_GROUP);
}

/* The partition count of topic as rk sees it, -1 when unknown. Never
 * creates the topic (rk is a consumer: no automatic creation). */
static inline int dk_partitions(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;

    if (rkt == NULL)
        return -1;
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (md->topic_cnt == 1 &&
            md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/*
 * Creates the changelog topic, when it does not exist, with as many
 * partitions as the input topic (so each input partition has its own)
 * and a retention that covers the state's lifetime.
 * Best effort: where the cluster refuses (the mock has no CreateTopics;
 * ACLs), the topic is created on first use if the cluster does that,
 * and the changelog sink reports it missing otherwise.
 */
static inline void dk_ensure_changelog(const struct dk_run *r)
{
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char topic[300];
    char err[256];
    size_t i;
    int n;

    rd_kafka_conf_set(conf, "bootstrap.servers", r->brokers, err, sizeof(err));
    for (i = 0; i < r->o->nx; i++) { /* security settings and the like */
        char name[256];
        size_t k = (size_t)(strchr(r->o->x[i], '=') - r->o->x[i]);

        if (k < sizeof(name)) {
            memcpy(name, r->o->x[i], k);
            name[k] = '\0';
            rd_kafka_conf_set(conf, name, r->o->x[i] + k + 1, err, sizeof(err));
        }
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return;
    }
    dk_changelog_topic(r->o, topic, sizeof(topic));
    n = dk_partitions(rk, r->o->topic);
    if (n > 0 && dk_partitions(rk, topic) < 0)
        nt = rd_kafka_NewTopic_new(topic, n, -1, err, sizeof(err));
    if (nt != NULL && r->o->d.scope != WEIR_WINDOW_SESSION) {
        /* Entries older than the state's lifetime describe expired state:
         * keep twice window + lateness + bound, plus an hour, for event
         * time that lags the clock (a replay reads all that is kept).
         * Sessions can last indefinitely: the cluster's default. */
        char ms[32];

        snprintf(
            ms, sizeof(ms), "%" PRId64,
            (int64_t)(2 * (r->o->d.size + r->o->d.lateness + r->o->d.bound) +
                      WEIR_HOURS(1)));
        rd_kafka_NewTopic_set_config(nt, "retention.ms", ms);
    }
    if (nt != NULL && (q = rd_kafka_queue_new(rk)) != NULL) {
        rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
        ev = rd_kafka_queue_poll(q, 15000);
        if (ev != NULL)
            rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
    }
    if (nt != NULL)
        rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
}

static inline weir_kafka_source_conf_t *dk_source_conf(struct dk_run *r,
                                                       char *msg)
{
    const struct dedup_kafka_opts *o = r->o;
    weir_kafka_source_conf_t *sc = weir_kafka_source_conf_new(o->topic);
    char topic[300];
    char num[32];

    if (sc == NULL) {
        cli_fmt(msg, "out of memory");
        return NULL;
    }
    if (dk_set(sc, NULL, "bootstrap.servers", r->brokers, msg) != 0 ||
        dk_set(sc, NULL, "group.id", o->group ? o->group : DK_DEFAULT_GROUP,
               msg) != 0 ||
        dk_set(sc, NULL, "auto.offset.reset",
               o->from_beginning ? "earliest" : "latest", msg) != 0 ||
        dk_set(sc, NULL, "timestamp", "none", msg) != 0 ||
        dk_set(sc, NULL, "key.header", o->avro ? "false" : "true", msg) != 0)
        goto fail;
    snprintf(num, sizeof(num), "%" PRId64, (int64_t)o->d.bound);
    if (dk_set(sc, NULL, "watermark.out.of.orderness.ms", num, msg) != 0)
        goto fail;
    snprintf(num, sizeof(num), "%" PRIu64, o->d.every ? o->d.every : 1);
    if (dk_set(sc, NULL, "watermark.every", num, msg) != 0)
        goto fail;
    snprintf(num, sizeof(num), "%" PRIu64, o->max_records);
    if (dk_set(sc, NULL, "max.records", num, msg) != 0)
        goto fail;
    snprintf(num, sizeof(num), "%" PRId64, (int64_t)o->idle_exit);
    if (dk_set(sc, NULL, "idle.exit.ms", num, msg) != 0)
        goto fail;
    dk_changelog_topic(o, topic, sizeof(topic));
    if (dk_set(sc, NULL, "changelog.topic", topic, msg) != 0 ||
        dk_set_x(o, sc, NULL, msg) != 0)
        goto fail;
    if (o->avro)
        weir_kafka_source_conf_set_extractor(sc, &dk_avro_extractor, r->fmt);
    else
        weir_kafka_source_conf_set_extractor(sc, &dk_json_extractor, &o->d);
    return sc;
fail:
    weir_kafka_source_conf_destroy(sc);
    return NULL;
}

/* A sink conf for topic with the run's brokers, delivery and -X. */
static inline weir_kafka_sink_conf_t *dk_sink_conf(struct dk_run *r,
                                                   const char *topic, char *msg)
{
    weir_kafka_sink_conf_t *kc = weir_kafka_sink_conf_new(topic);

    if (kc == NULL) {
        cli_fmt(msg, "bad topic '%s'", topic);
        return NULL;
    }
    if (dk_set(NULL, kc, "bootstrap.servers", r->brokers, msg) != 0 ||
        dk_set(NULL, kc, "delivery",
               r->o->at_least_once ? "at-least-once" : "exactly-once",
               msg) != 0 ||
        dk_set_x(r->o, NULL, kc, msg) != 0) {
        weir_kafka_sink_conf_destroy(kc);
        return NULL;
    }
    return kc;
}

/* Ends s in a Kafka sink to topic, or in a counter when topic is NULL. */
static inline void dk_output(struct dk_run *r, weir_stream_t *s,
                             const char *topic, int which, char *msg, int *bad)
{
    weir_kafka_sink_conf_t *kc;

    if (topic == NULL) {
        weir_stream_collect(s, dk_count, (void *)&r->dropped[which]);
        return;
    }
    kc = dk_sink_conf(r, topic, msg);
    if (kc == NULL || (!r->o->avro && dk_set(NULL, kc, "key.header",
                                             WEIR_KAFKA_HDR_KEY, msg) != 0)) {
        weir_kafka_sink_conf_destroy(kc);
        *bad = 1;
        return;
    }
    weir_kafka_sink_ex(s, kc);
}

/* Ends the dedup's changelog output in a changelog sink. */
static inline void dk_changelog(struct dk_run *r, weir_stream_t *s, char *msg,
                                int *bad)
{
    weir_kafka_sink_conf_t *kc;
    char topic[300];

    dk_changelog_topic(r->o, topic, sizeof(topic));
    kc = dk_sink_conf(r, topic, msg);
    if (kc == NULL || dk_set(NULL, kc, "changelog", "true", msg) != 0) {
        weir_kafka_sink_conf_destroy(kc);
        *bad = 1;
        return;
    }
    weir_kafka_sink_ex(s, kc);
}

/* Builds the pipeline; NULL with a message. */
static inline weir_pipeline_t *dk_build(struct dk_run *r, char *msg)
{
    const struct dedup_kafka_opts *o = r->o;
    weir_stream_t *out[CLI_NOUT];
    weir_kafka_source_conf_t *sc;
    weir_pipeline_t *p;
    weir_window_t *scope;
    weir_stream_t *s;
    weir_conf_t *conf;
    char err[256];
    char num[32];
    int bad = 0;

    conf = cli_conf(o->d.parallelism > 0 ? o->d.parallelism : 1, NULL, 0, msg);
    if (conf == NULL)
        return NULL;
    if (r->ckdir != NULL) {
        snprintf(num, sizeof(num), "%" PRId64, (int64_t)o->commit_interval);
        if (cli_conf_set(conf, "checkpoint.dir", r->ckdir, msg) != 0 ||
            cli_conf_set(conf, "checkpoint.interval.ms", num, msg) != 0) {
            weir_conf_destroy(conf);
            return NULL;
        }
    }
    sc = dk_source_conf(r, msg);
    if (sc == NULL) {
        weir_conf_destroy(conf);
        return NULL;
    }
    if (!o->at_least_once && r->ckdir != NULL &&
        weir_kafka_recover(conf, sc, NULL, err, sizeof(err)) != WEIR_OK) {
        cli_fmt(msg, "%s", err);
        weir_kafka_source_conf_destroy(sc);
        weir_conf_destroy(conf);
        return NULL;
    }
    p = weir_pipeline_new("weir-dedup-kafka", conf, err, sizeof(err));
    if (p == NULL) {
        weir_kafka_source_conf_destroy(sc);
        cli_fmt(msg, "%s", err);
        return NULL;
    }
    s = weir_kafka_source_ex(p, sc);
    out[CLI_ERRORS] = weir_stream_side_output(s, WEIR_TAG_ERRORS);
    /* The source's extractor has parsed each message: JSON into the
     * record key, Avro into WEIR_AVRO_HDR_KEY. */
    s = weir_stream_keyby(s, o->avro ? weir_avro_key_fn : NULL, NULL);
    scope = cli_dedup_scope(&o->d);
    if (scope == NULL)
        s = weir_stream_error(s, WEIR_EINVAL, "bad --window");
    else
        s = weir_stream_dedup_scope(s, scope);
    out[CLI_UNIQUE] = s;
    out[CLI_DUPLICATES] = weir_stream_side_output(s, WEIR_TAG_DUPLICATE);
    out[CLI_LATE] = weir_stream_side_output(s, WEIR_TAG_LATE);
    dk_output(r, out[CLI_UNIQUE], o->out_topic, CLI_UNIQUE, msg, &bad);
    dk_output(r, out[CLI_DUPLICATES], o->dup_topic, CLI_DUPLICATES, msg, &bad);
    dk_output(r, out[CLI_LATE], o->late_topic, CLI_LATE, msg, &bad);
    dk_output(r, out[CLI_ERRORS], o->err_topic, CLI_ERRORS, msg, &bad);
    if (!bad)
        dk_changelog(r, weir_stream_side_output(s, WEIR_TAG_CHANGELOG), msg,
                     &bad);
    if (!bad && weir_pipeline_error(p) != WEIR_OK) {
        cli_fmt(msg, "%s", weir_pipeline_errstr(p));
        bad = 1;
    }
    if (bad) {
        weir_pipeline_destroy(p);
        return NULL;
    }
    return p;
}

/* Creates a mock cluster of 3 brokers in this process (hosted by *host). */
static inline rd_kafka_mock_cluster_t *
dk_mock(rd_kafka_t **host, const char **bootstrap, char *msg)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_mock_cluster_t *mc;
    char err[256];

    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
    *host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (*host == NULL) {
        rd_kafka_conf_destroy(conf);
        cli_fmt(msg, "kafka: %s", err);
        return NULL;
    }
    mc = rd_kafka_mock_cluster_new(*host, 3);
    if (mc == NULL) {
        rd_kafka_destroy(*host);
        *host = NULL;
        cli_fmt(msg, "kafka: cannot start a mock cluster");
        return NULL;
    }
    *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    weir_kafka_mock_nodelay(*bootstrap); /* answer at once, as a broker */
    return mc;
}

static inline void dk_mock_free(rd_kafka_t *host, rd_kafka_mock_cluster_t *mc)
{
    if (mc != NULL)
        rd_kafka_mock_cluster_destroy(mc);
    if (host != NULL)
        rd_kafka_destroy(host);
}

/* Topic counts of one output: committed to Kafka, or counted and
 * dropped when it has no topic. */
static inline uint64_t dk_output_count(struct dk_run *r, weir_pipeline_t *p,
                                       const char *topic, int which)
{
    if (topic == NULL)
        return atomic_load(&r->dropped[which]);
    return weir_kafka_committed_records(p, topic);
}

/* Without --checkpoint-dir a run keeps its checkpoints in a directory of
 * its own under $TMPDIR (or /tmp), removed at exit: exactly once within
 * the run. Its state is not needed by the next run: that one starts like
 * an instance the partitions moved to (the group's committed offsets, the
 * dedup changelog). -1 with a message when it cannot be created. */
static inline int dk_private_ckdir(char *out, size_t size, char *msg)
{
    const char *tmp = getenv("TMPDIR");

    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(out, size, "%s/weir-dedup-XXXXXX", tmp) >= size ||
        mkdtemp(out) == NULL) {
        cli_fmt(msg, "cannot create a checkpoint directory in %s: %s", tmp,
                strerror(errno));
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/*
 * Runs the Kafka mode and prints the summary line. Returns a CLI exit
 * code (CLI_EXIT_OK, CLI_EXIT_RUN, CLI_EXIT_USAGE) with a message in msg
 * on failure.
 */
/* CLI_EXIT_USAGE with a message when two outputs share a topic. */
static inline int dk_check_topics(const char *const topics[CLI_NOUT], char *msg)
{
    int i;
    int j;

    for (i = 0; i < CLI_NOUT; i++)
        for (j = i + 1; j < CLI_NOUT; j++)
            if (topics[i] != NULL && topics[j] != NULL &&
                strcmp(topics[i], topics[j]) == 0) {
                cli_fmt(msg, "each output needs its own topic ('%s' twice)",
                        topics[i]);
                return CLI_EXIT_USAGE;
            }
    return CLI_EXIT_OK;
}

/* The Avro format of --format avro (r->fmt); CLI_EXIT_USAGE with a
 * message when the schema cannot be loaded or lacks the key or time. */
static inline int dk_avro(struct dk_run *r, char *msg)
{
    const struct dedup_kafka_opts *o = r->o;
    char err[256];

    r->fmt = weir_avro_format_new(o->schema, o->schema_dir, err, sizeof(err));
    if (r->fmt != NULL &&
        weir_avro_format_set_key(r->fmt, o->d.keys) == WEIR_OK &&
        weir_avro_format_set_time(
            r->fmt, o->d.time_field ? o->d.time_field : WEIR_JSON_TIME_FIELD) ==
            WEIR_OK)
        return CLI_EXIT_OK;
    cli_fmt(msg, "avro: %s",
            r->fmt == NULL ? err
                           : "--key or --time-field is not a field of the "
                             "schema");
    weir_avro_format_destroy(r->fmt);
    r->fmt = NULL;
    return CLI_EXIT_USAGE;
}

/* Runs the pipeline until it ends, restarting it from its last committed
 * checkpoint after a Kafka error (at most DK_MAX_RESTARTS times); adds
 * each run's counts to totals (outputs, then records read). */
static inline int dk_run_loop(struct dk_run *r,
                              const char *const topics[CLI_NOUT],
                              uint64_t totals[CLI_NOUT + 1], char *msg)
{
    const struct dedup_kafka_opts *o = r->o;
    weir_pipeline_t *p;
    int restarts = 0;
    int wrc;
    int i;

    for (;;) {
        if (dk_signalled)
            return CLI_EXIT_OK; /* stopped before a run began */
        p = dk_build(r, msg);
        if (p == NULL)
            return CLI_EXIT_RUN;
        dk_running = p;
        if (dk_signalled)
            weir_pipeline_stop(p);
        wrc = weir_pipeline_run(p);
        dk_running = NULL;
        totals[CLI_NOUT] += weir_kafka_consumed_records(p);
        if (o->replayed != NULL)
            *o->replayed += weir_kafka_replayed_records(p);
        if (o->handover_failures != NULL)
            *o->handover_failures += weir_kafka_handover_failures(p);
        for (i = 0; i < CLI_NOUT; i++) {
            totals[i] += dk_output_count(r, p, topics[i], i);
            atomic_store(&r->dropped[i], 0);
        }
        if (wrc == WEIR_OK) {
            weir_pipeline_destroy(p);
            return CLI_EXIT_OK;
        }
        cli_fmt(msg, "%s", weir_pipeline_errstr(p));
        weir_pipeline_destroy(p);
        if (wrc != WEIR_EKAFKA || dk_signalled || ++restarts > DK_MAX_RESTARTS)
            return CLI_EXIT_RUN;
        fprintf(stderr,
                "weir-dedup: %s; restarting from the last committed "
                "checkpoint\n",
                msg);
    }
}

/* The summary line, as file mode prints it. */
static inline int dk_summary(FILE *out, const uint64_t totals[CLI_NOUT + 1])
{
    fprintf(out,
            "{\"records\":%" PRIu64 ",\"unique\":%" PRIu64
            ",\"duplicates\":%" PRIu64 ",\"late\":%" PRIu64
            ",\"errors\":%" PRIu64 "}\n",
            totals[CLI_NOUT], totals[CLI_UNIQUE], totals[CLI_DUPLICATES],
            totals[CLI_LATE], totals[CLI_ERRORS]);
    return fflush(out) == 0 ? CLI_EXIT_OK : CLI_EXIT_RUN;
}

static inline int dedup_kafka_run(const struct dedup_kafka_opts *o, char *msg)
{
    struct dk_run r;
    rd_kafka_mock_cluster_t *mc = NULL;
    rd_kafka_t *mock = NULL;
    uint64_t totals[CLI_NOUT + 1];
    char tmpdir[PATH_MAX] = "";
    const char *topics[CLI_NOUT];
    int rc;

    memset(&r, 0, sizeof(r));
    memset(totals, 0, sizeof(totals));
    r.o = o;
    r.brokers = o->brokers;
    r.ckdir = o->d.ckdir;
    topics[CLI_UNIQUE] = o->out_topic;
    topics[CLI_DUPLICATES] = o->dup_topic;
    topics[CLI_LATE] = o->late_topic;
    topics[CLI_ERRORS] = o->err_topic;
    rc = dk_check_topics(topics, msg);
    if (rc != CLI_EXIT_OK)
        return rc;
    /* From here on SIGINT/SIGTERM end the run cleanly, also while it is
     * still starting (a cluster that is slow to answer). */
    dk_signals();
    if (o->brokers == NULL) {
        mc = dk_mock(&mock, &r.brokers, msg);
        if (mc == NULL)
            return CLI_EXIT_RUN;
        fprintf(stderr, "weir-dedup: embedded mock cluster at %s\n", r.brokers);
    }
    if (r.ckdir == NULL) {
        if (dk_private_ckdir(tmpdir, sizeof(tmpdir), msg) != 0) {
            dk_mock_free(mock, mc);
            return CLI_EXIT_RUN;
        }
        r.ckdir = tmpdir;
        if (o->brokers != NULL)
            fprintf(stderr,
                    "weir-dedup: no --checkpoint-dir: checkpoints go to %s "
                    "(removed at exit); a restart resumes from the group's "
                    "committed offsets and the dedup changelog\n",
                    tmpdir);
    }
    if (o->avro)
        rc = dk_avro(&r, msg);
    if (rc == CLI_EXIT_OK) {
        dk_ensure_changelog(&r);
        rc = dk_run_loop(&r, topics, totals, msg);
    }
    weir_avro_format_destroy(r.fmt);
    dk_mock_free(mock, mc);
    if (tmpdir[0] != '\0') {
        char cmd[PATH_MAX + 16];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "weir-dedup: could not remove %s\n", tmpdir);
    }
    if (rc != CLI_EXIT_OK)
        return rc;
    return dk_summary(o->out ? o->out : stdout, totals);
}

/* ------------------------------------------------------------------ *
 * ## Reading the commit log
 * ------------------------------------------------------------------ */

/*
 * The commit log an exactly-once run keeps in its checkpoint directory
 * (WEIR_KAFKA_COMMIT_LOG), one entry per committed transaction. Readers
 * that cannot rely on read_committed (the mock cluster shows aborted
 * transactions) keep a record only when the entry of its
 * WEIR_KAFKA_HDR_CHECKPOINT header exists; the entry's time is when the
 * record became visible, for latency.
 */
struct dk_commit {
    char run[40];     /* run id                         */
    uint64_t lo;      /* first epoch of the transaction */
    uint64_t hi;      /* last epoch (the checkpoint)    */
    int64_t ms;       /* commit time, unix ms           */
    uint64_t records; /* records in the transaction     */
};

struct dk_commit_log {
    struct dk_commit *c;
    size_t n;
};

/* Appends the entries of ckdir's log; -1 when out of memory. A torn last
 * line (a crash while writing it) is not an entry. */
static inline int dk_commit_log_load(struct dk_commit_log *log,
                                     const char *ckdir)
{
    struct dk_commit c;
    struct dk_commit *v;
    char path[4300];
    char line[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%.4200s/%s", ckdir, WEIR_KAFKA_COMMIT_LOG);
    fp = fopen(path, "r");
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (strchr(line, '\n') == NULL)
            break;
        memset(&c, 0, sizeof(c));
        if (sscanf(line,
                   "commit %39s %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNu64,
                   c.run, &c.lo, &c.hi, &c.ms, &c.records) < 4)
            continue;
        v = realloc(log->c, (log->n + 1) * sizeof(*v));
        if (v == NULL) {
            fclose(fp);
            return -1;
        }
        log->c = v;
        log->c[log->n++] = c;
    }
    fclose(fp);
    return 0;
}

/* The entry committing a "<run>:<epoch>" header value, or NULL. */
static inline const struct dk_commit *
dk_commit_log_find(const struct dk_commit_log *log, const void *hdr, size_t len)
{
    const char *colon = memchr(hdr, ':', len);
    char run[40];
    uint64_t epoch;
    size_t rl;
    size_t i;

    if (colon == NULL || (rl = (size_t)(colon - (const char *)hdr)) >= 40)
        return NULL;
    memcpy(run, hdr, rl);
    run[rl] = '\0';
    epoch = 0;
    for (i = rl + 1; i < len; i++) {
        char ch = ((const char *)hdr)[i];

        if (ch < '0' || ch > '9')
            return NULL;
        epoch = epoch * 10 + (uint64_t)(ch - '0');
    }
    for (i = 0; i < log->n; i++)
        if (strcmp(log->c[i].run, run) == 0 && log->c[i].lo <= epoch &&
            epoch <= log->c[i].hi)
            return &log->c[i];
    return NULL;
}

static inline void dk_commit_log_free(struct dk_commit_log *log)
{
    free(log->c);
    log->c = NULL;
    log->n = 0;
}

#endif /* WEIR_EXAMPLES_DEDUP_KAFKA_H */
