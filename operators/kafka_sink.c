/*
 * kafka_sink.c - weir_kafka_sink(): records to a Kafka topic, exactly once
 * (transactions tied to checkpoints) or at least once.
 *
 * How it works
 *   Each sink instance turns records into messages (key from the record
 *   or a header, value, event timestamp, headers) and hands them to the
 *   pipeline's link (kafka_link.c), which owns the one producer and
 *   decides whether a message goes out now or waits for its epoch's
 *   transaction. The instance tracks its epoch: 1 on a fresh run, the
 *   restored checkpoint + 1 after a restore, and n + 1 after snapshot(n).
 *   snapshot(n) asks the link to close the epoch (flush for at-least-once,
 *   commit of a complete predecessor for exactly-once) and records n;
 *   on_checkpoint_complete(n) asks the link to commit n.
 *
 *   A changelog sink ("changelog" = true) batches its records as
 *   changelog entries per source partition and writes them at each
 *   barrier (see "Changelog entries" below).
 *
 *   In exactly-once mode every message carries WEIR_KAFKA_HDR_CHECKPOINT
 *   "<run>:<epoch>", which lets a reader that cannot rely on
 *   read_committed (the mock cluster) tell committed transactions from
 *   aborted ones with the commit log.
 *
 * Invariants
 *   - epoch == last snapshot id + 1 (or restored id + 1, or 1).
 *   - Every message this instance handed to the link before barrier n
 *     belongs to an epoch <= n.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "kafka_link.h"

#define SNAP_VERSION 1
#define POLL_EVERY   1024

struct sink_args {
    weir__kafka_link_t *l;
    weir_kafka_sink_conf_t *kc;
};

struct clbuf;

struct sink {
    const struct sink_args *a;
    struct kafka_topic_count *tc;
    int32_t nparts;   /* changelog: partitions of the topic  */
    struct clbuf *cl; /* changelog: batch per source partition + 1 */
    size_t ncl;
    uint64_t epoch;
    uint64_t n;
    int opened;
    char chk[96]; /* WEIR_KAFKA_HDR_CHECKPOINT's value for chk_epoch */
    int chk_len;
    uint64_t chk_epoch; /* 0: none yet (epochs start at 1) */
};

/* ------------------------------------------------------------------ *
 * ## Configuration
 * ------------------------------------------------------------------ */

static void set_err(char *errstr, size_t errstr_size, const char *msg,
                    const char *name)
{
    if (errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, "kafka sink: %s: %s", name, msg);
}

WEIR_EXTERN weir_kafka_sink_conf_t *weir_kafka_sink_conf_new(const char *topic)
{
    weir_kafka_sink_conf_t *kc;
    size_t n;

    if (topic == NULL || *topic == '\0')
        return NULL;
    kc = weir_calloc(1, sizeof(*kc));
    if (kc == NULL)
        return NULL;
    n = strlen(topic) + 1;
    kc->topic = weir_malloc(n);
    if (kc->topic == NULL) {
        weir_free(kc);
        return NULL;
    }
    memcpy(kc->topic, topic, n);
    return kc;
}

WEIR_EXTERN void weir_kafka_sink_conf_destroy(weir_kafka_sink_conf_t *kc)
{
    if (kc == NULL)
        return;
    weir__kafka_props_free(&kc->props);
    weir_free(kc->topic);
    weir_free(kc->txn_id);
    weir_free(kc->key_header);
    weir_free(kc);
}

static int set_str(char **dst, const char *value)
{
    size_t n = strlen(value) + 1;
    char *s = weir_malloc(n);

    if (s == NULL)
        return WEIR_ENOMEM;
    memcpy(s, value, n);
    weir_free(*dst);
    *dst = s;
    return WEIR_OK;
}

WEIR_EXTERN int weir_kafka_sink_conf_set(weir_kafka_sink_conf_t *kc,
                                         const char *name, const char *value,
                                         char *errstr, size_t errstr_size)
{
    int b;
    int rc;

    if (kc == NULL || name == NULL || value == NULL)
        return WEIR_EINVAL;
    if (strcmp(name, "delivery") == 0) {
        if (strcmp(value, "exactly-once") == 0)
            kc->alos = 0;
        else if (strcmp(value, "at-least-once") == 0)
            kc->alos = 1;
        else {
            set_err(errstr, errstr_size, "want exactly-once or at-least-once",
                    name);
            return WEIR_EINVAL;
        }
        return WEIR_OK;
    }
    if (strcmp(name, "transactional.id") == 0) {
        if (*value == '\0') {
            set_err(errstr, errstr_size, "empty", name);
            return WEIR_EINVAL;
        }
        return set_str(&kc->txn_id, value);
    }
    if (strcmp(name, "key.header") == 0) {
        if (*value == '\0') {
            weir_free(kc->key_header);
            kc->key_header = NULL;
            return WEIR_OK;
        }
        return set_str(&kc->key_header, value);
    }
    if (strcmp(name, "headers") == 0) {
        if (weir__kafka_choice(value, "all", "none", &kc->headers_none) !=
            WEIR_OK) {
            set_err(errstr, errstr_size, "want all or none", name);
            return WEIR_EINVAL;
        }
        return WEIR_OK;
    }
    if (strcmp(name, "checkpoint.header") == 0) {
        if (weir__kafka_bool(value, &b) != WEIR_OK) {
            set_err(errstr, errstr_size, "want true or false", name);
            return WEIR_EINVAL;
        }
        kc->no_chk_header = !b;
        return WEIR_OK;
    }
    if (strcmp(name, "changelog") == 0) {
        if (weir__kafka_bool(value, &b) != WEIR_OK) {
            set_err(errstr, errstr_size, "want true or false", name);
            return WEIR_EINVAL;
        }
        kc->changelog = b;
        return WEIR_OK;
    }
    if (strcmp(name, "timestamp") == 0) {
        if (strcmp(value, "event") == 0)
            kc->ts_now = 0;
        else if (strcmp(value, "now") == 0)
            kc->ts_now = 1;
        else {
            set_err(errstr, errstr_size, "want event or now", name);
            return WEIR_EINVAL;
        }
        return WEIR_OK;
    }
    if (strcmp(name, "enable.idempotence") == 0 ||
        strcmp(name, "transactional.id") == 0) {
        set_err(errstr, errstr_size, "set by weir", name);
        return WEIR_EINVAL;
    }
    rc = weir__kafka_check_prop(RD_KAFKA_PRODUCER, name, value, errstr,
                                errstr_size);
    if (rc != WEIR_OK)
        return rc;
    return weir__kafka_props_add(&kc->props, name, value);
}

/* ------------------------------------------------------------------ *
 * ## The operator
 * ------------------------------------------------------------------ */

/* A changelog sink needs the topic's partition count to place entries. */
static int open_changelog(weir_ctx_t *ctx, struct sink *k)
{
    char err[KAFKA_ERRSTR];
    rd_kafka_t *rk;
    int n;

    pthread_mutex_lock(&k->a->l->mu);
    rk = k->a->l->producer; /* stays while this instance is open */
    pthread_mutex_unlock(&k->a->l->mu);
    n = rk ? weir__kafka_partition_count(rk, k->a->kc->topic, err, sizeof(err))
           : -1;
    if (n <= 0)
        return weir_ctx_error(ctx, WEIR_EKAFKA, "changelog %s: %s",
                              k->a->kc->topic, rk ? err : "no producer");
    k->nparts = n;
    return WEIR_OK;
}

static int sink_open(weir_ctx_t *ctx, void *st)
{
    struct sink *k = st;
    int rc;

    k->a = weir_ctx_opaque(ctx);
    weir__kafka_link_open(k->a->l);
    k->opened = 1;
    k->epoch = 1;
    rc = weir__kafka_link_start_producer(k->a->l, ctx, k->a->kc);
    if (rc != WEIR_OK)
        return rc;
    k->tc = weir__kafka_link_topic(k->a->l, k->a->kc->topic);
    if (k->tc == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    if (k->a->kc->changelog)
        return open_changelog(ctx, k);
    weir__kafka_link_warm(k->a->l, k->a->kc->topic);
    return WEIR_OK;
}

/* 1 when a record header goes into the message. */
static int keep_header(const char *name)
{
    if (name[0] != 'w' || strncmp(name, "weir.", 5) != 0)
        return 1;
    return strcmp(name, WEIR_HDR_ERROR) == 0;
}

/* The checkpoint header's value ("run:epoch"), made once per epoch. */
static void checkpoint_value(struct sink *k)
{
    int n;

    if (k->chk_epoch == k->epoch)
        return;
    n = snprintf(k->chk, sizeof(k->chk), "%s:%" PRIu64, k->a->l->run_id,
                 k->epoch);
    k->chk_len = n < 0                      ? 0
                 : n >= (int)sizeof(k->chk) ? (int)sizeof(k->chk) - 1
                                            : n;
    k->chk_epoch = k->epoch;
}

static rd_kafka_headers_t *make_headers(struct sink *k, const weir_record_t *in)
{
    const weir_kafka_sink_conf_t *kc = k->a->kc;
    rd_kafka_headers_t *h;
    const char *name;
    weir_buf_t v;
    size_t n = in != NULL ? weir_record_header_count(in) : 0;
    size_t i;
    int eos = !kc->alos && !kc->no_chk_header;

    if ((kc->headers_none || n == 0) && !eos)
        return NULL;
    h = rd_kafka_headers_new(n + 1);
    if (h == NULL)
        return NULL;
    for (i = 0; !kc->headers_none && i < n; i++) {
        if (weir_record_header_at(in, i, &name, &v) != WEIR_OK ||
            !keep_header(name))
            continue;
        rd_kafka_header_add(h, name, -1, v.data, (ssize_t)v.len);
    }
    if (eos) {
        checkpoint_value(k);
        rd_kafka_header_add(h, WEIR_KAFKA_HDR_CHECKPOINT,
                            sizeof(WEIR_KAFKA_HDR_CHECKPOINT) - 1, k->chk,
                            k->chk_len);
    }
    return h;
}

/*
 * ## Changelog entries
 *
 * Changelog entries are batched per source partition and epoch: one
 * message per source partition at each barrier (or every
 * CHANGELOG_BATCH bytes), to partition (source partition mod the topic's
 * partitions), key = the source partition (4 bytes, big-endian), value =
 * CHANGELOG_FORMAT (1 byte) then entries of u32 key length, key, i64
 * event time, u32 value length, value (big-endian). No headers. The
 * source replays them (kafka_source.c, replay()).
 */
#define CHANGELOG_FORMAT 1
#define CHANGELOG_BATCH  65536

struct clbuf {
    unsigned char *b;
    size_t n;
    size_t cap;
};

static void put_be(unsigned char *p, uint64_t v, int bytes)
{
    int i;

    for (i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

/* Sends the batch of source partition slot - 1 and empties it. */
static int flush_slot(weir_ctx_t *ctx, struct sink *k, size_t slot)
{
    struct clbuf *c = &k->cl[slot];
    int32_t part = (int32_t)slot - 1;
    unsigned char key[4];
    int rc;

    if (c->n <= 1)
        return WEIR_OK;
    put_be(key, (uint32_t)part, 4);
    rc = weir__kafka_link_send(k->a->l, ctx, k->tc, k->epoch,
                               part < 0 ? 0 : part % k->nparts,
                               WEIR_BUF(key, 4), WEIR_BUF(c->b, c->n), 0, NULL);
    c->n = 0;
    return rc;
}

static int flush_changelog(weir_ctx_t *ctx, struct sink *k)
{
    size_t i;
    int rc = WEIR_OK;

    for (i = 0; i < k->ncl && rc == WEIR_OK; i++)
        rc = flush_slot(ctx, k, i);
    return rc;
}

/* Adds a record to its source partition's batch. */
static int send_changelog(weir_ctx_t *ctx, struct sink *k,
                          const weir_record_t *in)
{
    weir_buf_t rk = weir_record_key(in);
    weir_buf_t rv = weir_record_value(in);
    int32_t part = weir_record_partition(in);
    size_t slot = part < 0 ? 0 : (size_t)part + 1;
    size_t need = 4 + rk.len + 8 + 4 + rv.len;
    unsigned char *at;
    struct clbuf *c;
    void *grown;
    size_t cap;

    if (slot >= k->ncl) {
        grown = weir_realloc(k->cl, (slot + 1) * sizeof(*k->cl));
        if (grown == NULL)
            return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
        k->cl = grown;
        memset(k->cl + k->ncl, 0, (slot + 1 - k->ncl) * sizeof(*k->cl));
        k->ncl = slot + 1;
    }
    c = &k->cl[slot];
    if (c->n == 0)
        c->n = 1; /* the format byte, written below */
    if (c->n + need > c->cap) {
        cap = c->cap ? c->cap : 4096;
        while (cap < c->n + need)
            cap *= 2;
        grown = weir_realloc(c->b, cap);
        if (grown == NULL)
            return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
        c->b = grown;
        c->cap = cap;
    }
    c->b[0] = CHANGELOG_FORMAT;
    at = c->b + c->n;
    put_be(at, rk.len, 4);
    if (rk.len > 0)
        memcpy(at + 4, rk.data, rk.len);
    at += 4 + rk.len;
    put_be(at, (uint64_t)weir_record_ts(in), 8);
    put_be(at + 8, rv.len, 4);
    if (rv.len > 0)
        memcpy(at + 12, rv.data, rv.len);
    c->n += need;
    return c->n >= CHANGELOG_BATCH ? flush_slot(ctx, k, slot) : WEIR_OK;
}

static void free_changelog(struct sink *k)
{
    size_t i;

    for (i = 0; i < k->ncl; i++)
        weir_free(k->cl[i].b);
    weir_free(k->cl);
    k->cl = NULL;
    k->ncl = 0;
}

static int sink_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct sink *k = st;
    const weir_kafka_sink_conf_t *kc = k->a->kc;
    weir_buf_t key = weir_record_key(in);
    weir_ts_t ts = weir_record_ts(in);
    int64_t mts = 0;

    if (++k->n % POLL_EVERY == 0)
        weir__kafka_link_poll(k->a->l);
    if (kc->changelog)
        return send_changelog(ctx, k, in);
    if (kc->key_header != NULL &&
        weir_record_header(in, kc->key_header, &key) != WEIR_OK)
        key = WEIR_BUF_NULL;
    if (!kc->ts_now && ts != WEIR_TS_MIN && ts != WEIR_TS_MAX && ts >= 0)
        mts = ts;
    return weir__kafka_link_send(
        k->a->l, ctx, k->tc, k->epoch, RD_KAFKA_PARTITION_UA, key,
        weir_record_value(in), mts, make_headers(k, in));
}

static int sink_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                         uint64_t checkpoint_id)
{
    struct sink *k = st;
    int rc;

    rc = flush_changelog(ctx, k); /* the epoch's last entries */
    if (rc == WEIR_OK)
        rc = weir__kafka_link_barrier(k->a->l, ctx, checkpoint_id);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, SNAP_VERSION);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, checkpoint_id);
    if (rc == WEIR_OK)
        k->epoch = checkpoint_id + 1;
    return rc;
}

static int sink_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct sink *k = st;
    uint64_t version;
    uint64_t id;

    if (weir_read_u64(r, &version) != WEIR_OK || version != SNAP_VERSION ||
        weir_read_u64(r, &id) != WEIR_OK)
        return weir_ctx_error(ctx, WEIR_ECORRUPT, "kafka sink: bad snapshot");
    k->epoch = id + 1;
    weir__kafka_link_restored(k->a->l, id);
    return WEIR_OK;
}

static int sink_complete(weir_ctx_t *ctx, void *st, uint64_t checkpoint_id)
{
    struct sink *k = st;

    return weir__kafka_link_commit(k->a->l, ctx, checkpoint_id);
}

static void sink_close(weir_ctx_t *ctx, void *st)
{
    struct sink *k = st;

    /* Exactly once, entries after the last barrier belong to no
     * committed checkpoint; at least once, the records they describe
     * went out already, so their entries go too. */
    if (k->opened && k->a->kc->alos)
        flush_changelog(ctx, k);
    free_changelog(k);
    if (k->opened)
        weir__kafka_link_close(k->a->l);
    k->opened = 0;
}

static const weir_operator_def_t kafka_sink_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "kafka_sink",
    .state_size = sizeof(struct sink),
    .open = sink_open,
    .process = sink_process,
    .snapshot = sink_snapshot,
    .restore = sink_restore,
    .on_checkpoint_complete = sink_complete,
    .close = sink_close,
};

/* ------------------------------------------------------------------ *
 * ## Builders
 * ------------------------------------------------------------------ */

static void free_sink_args(void *ptr)
{
    struct sink_args *a = ptr;

    weir_kafka_sink_conf_destroy(a->kc);
    weir_free(a);
}

WEIR_EXTERN int weir_kafka_sink_ex(weir_stream_t *s, weir_kafka_sink_conf_t *kc)
{
    weir_pipeline_t *p;
    weir__kafka_link_t *l;
    struct sink_args *a;

    if (s == NULL) {
        weir_kafka_sink_conf_destroy(kc);
        return WEIR_EINVAL;
    }
    p = weir_stream_pipeline(s);
    if (!weir_stream_ok(s)) {
        weir_kafka_sink_conf_destroy(kc);
        return weir_pipeline_error(p);
    }
    if (kc == NULL) {
        weir_stream_error(s, WEIR_EINVAL, "kafka sink: no configuration");
        return WEIR_EINVAL;
    }
    l = weir__kafka_link_get(p);
    a = weir_calloc(1, sizeof(*a));
    if (l == NULL || a == NULL) {
        weir_free(a);
        weir_kafka_sink_conf_destroy(kc);
        weir_stream_error(s, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    a->l = l;
    a->kc = kc;
    if (weir_pipeline_attach(p, a, free_sink_args) != WEIR_OK) {
        weir_stream_error(s, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    if ((kc->alos && l->sinks_eos > 0) || (!kc->alos && l->sinks_alos > 0)) {
        weir_stream_error(s, WEIR_EINVAL,
                          "kafka sink: a pipeline's Kafka sinks must all use "
                          "the same delivery guarantee");
        return WEIR_EINVAL;
    }
    if (kc->alos)
        l->sinks_alos++;
    else
        l->sinks_eos++;
    return weir_stream_sink(s, &kafka_sink_def, a);
}

WEIR_EXTERN int weir_kafka_sink(weir_stream_t *s, const char *topic)
{
    weir_kafka_sink_conf_t *kc;

    if (s == NULL)
        return WEIR_EINVAL;
    kc = weir_kafka_sink_conf_new(topic);
    if (kc == NULL) {
        weir_stream_error(s, WEIR_EINVAL, "kafka sink: bad topic");
        return WEIR_EINVAL;
    }
    return weir_kafka_sink_ex(s, kc);
}
