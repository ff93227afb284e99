/*
 * kafka_link.c - the pipeline's shared Kafka producer and the protocol
 * that makes a checkpoint one Kafka transaction.
 *
 * How it works
 *
 *   Every pipeline with a Kafka source or sink has one link (see
 *   kafka_link.h). Sinks produce through the link's single producer: in
 *   exactly-once mode a transactional one (one per process and
 *   transactional.id: the process-wide registry refuses a second), in
 *   at-least-once mode a plain idempotent one.
 *
 *   Epochs. Records a sink receives between barriers n-1 and n form epoch
 *   n and belong to checkpoint n. A sink knows its epoch (1, or restored
 *   id + 1, then +1 at each snapshot). The link knows `committed`, the
 *   last checkpoint whose transaction committed. The open transaction is
 *   always the one of epoch committed + 1, so:
 *     - a record of epoch committed + 1 is produced at once;
 *     - a record of a later epoch (its sink has passed a barrier whose
 *       checkpoint has not committed yet) is held in memory, in order.
 *   No sink can be in epoch committed + 1 while a commit runs: commit(n)
 *   starts only when checkpoint n is complete, so every sink has passed
 *   barrier n and is in an epoch > n >= committed + 1.
 *
 *   Commit of checkpoint n (the first sink whose on_checkpoint_complete(n)
 *   runs does it; the others find committed >= n):
 *     1. produce held records of epochs <= n (none in the common case);
 *     2. for every source, send the offsets it published at its snapshot
 *        of n (the latest <= n) with metadata "weir:chk=n;run=R;tid=T",
 *        using the live consumer's group metadata (fencing of zombies);
 *     3. commit_transaction; append "commit R lo hi ms records" to the
 *        commit log in the checkpoint directory and fsync it;
 *     4. committed = n; produce the held records of epoch n + 1 into the
 *        next transaction (begun lazily, at the first record).
 *   A checkpoint with no record and no moved offset skips 2-3: nothing
 *   for Kafka, its commit-log line alone commits it. The commit log is
 *   compacted (each run's lines merged into ranges) every 1 MiB.
 *   A sink's snapshot(n) first commits n - 1 itself when chk-(n-1) is
 *   complete but not yet committed (its completion has not reached any
 *   sink yet), so Kafka is never more than one checkpoint behind the
 *   local checkpoints and the checkpoint to restore is always retained.
 *
 *   Errors. Before committing, the producer is flushed and every delivery
 *   report checked: a record that could not be delivered aborts the
 *   transaction (librdkafka 2.0.2 does not always refuse the commit
 *   itself). An abortable error aborts the transaction and fails the
 *   link (every Kafka operator then fails its task with WEIR_EKAFKA, the
 *   pipeline stops, and a restart resumes from the last committed
 *   checkpoint); retriable errors are retried; a fatal error (fenced)
 *   fails with WEIR_EFENCED.
 *
 *   At-least-once: records are produced at once; a sink's snapshot(n)
 *   flushes the producer and checks delivery reports; sources commit
 *   their offsets of n when n completes (kafka_source.c).
 *
 *   Recovery (weir_kafka_recover): the last committed checkpoint is the
 *   larger of the one named in the group's committed offsets (metadata
 *   of this transactional.id) and the last line of the commit log; newer
 *   completed checkpoints lose their _COMPLETE marker so the runtime
 *   restores the committed one.
 *
 * Invariants
 *   - txn_open implies eos and a begun transaction of epoch committed+1.
 *   - held[] is in arrival order; every held epoch is > committed + 1, or
 *     a commit is in progress.
 *   - failed != 0 is final for the run: nothing is produced after it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "fileio.h"
#include "kafka_link.h"

#define TXN_TIMEOUT_MS   60000
#define INIT_TIMEOUT_MS  30000
#define FLUSH_TIMEOUT_MS 60000
#define WARM_TIMEOUT_MS  5000
#define COMMIT_RETRIES   5
/* The commit log is compacted each time it grows by this much (about
 * 17 000 commits, half an hour of commits every 100 ms). */
#define LOG_COMPACT_BYTES (1u << 20)

/* ------------------------------------------------------------------ *
 * ## Small helpers
 * ------------------------------------------------------------------ */

static char *dup_str(const char *s)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = weir_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int weir__kafka_bool(const char *value, int *out)
{
    if (value == NULL)
        return WEIR_EINVAL;
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
        *out = 1;
    else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
        *out = 0;
    else
        return WEIR_EINVAL;
    return WEIR_OK;
}

int weir__kafka_choice(const char *value, const char *zero, const char *one,
                       int *out)
{
    if (value == NULL)
        return WEIR_EINVAL;
    if (strcmp(value, zero) == 0)
        *out = 0;
    else if (strcmp(value, one) == 0)
        *out = 1;
    else
        return WEIR_EINVAL;
    return WEIR_OK;
}

int weir__kafka_props_add(struct kafka_props *pr, const char *name,
                          const char *value)
{
    char **n;
    char **v;
    size_t i;

    for (i = 0; i < pr->n; i++) {
        if (strcmp(pr->name[i], name) == 0) {
            char *nv = dup_str(value);

            if (nv == NULL)
                return WEIR_ENOMEM;
            weir_free(pr->value[i]);
            pr->value[i] = nv;
            return WEIR_OK;
        }
    }
    n = weir_realloc(pr->name, (pr->n + 1) * sizeof(*n));
    if (n == NULL)
        return WEIR_ENOMEM;
    pr->name = n;
    v = weir_realloc(pr->value, (pr->n + 1) * sizeof(*v));
    if (v == NULL)
        return WEIR_ENOMEM;
    pr->value = v;
    pr->name[pr->n] = dup_str(name);
    pr->value[pr->n] = dup_str(value);
    if (pr->name[pr->n] == NULL || pr->value[pr->n] == NULL) {
        weir_free(pr->name[pr->n]);
        weir_free(pr->value[pr->n]);
        return WEIR_ENOMEM;
    }
    pr->n++;
    return WEIR_OK;
}

void weir__kafka_props_free(struct kafka_props *pr)
{
    size_t i;

    for (i = 0; i < pr->n; i++) {
        weir_free(pr->name[i]);
        weir_free(pr->value[i]);
    }
    weir_free(pr->name);
    weir_free(pr->value);
    memset(pr, 0, sizeof(*pr));
}

const char *weir__kafka_props_get(const struct kafka_props *pr,
                                  const char *name)
{
    size_t i;

    for (i = 0; i < pr->n; i++)
        if (strcmp(pr->name[i], name) == 0)
            return pr->value[i];
    return NULL;
}

int weir__kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errstr, size_t errstr_size)
{
    char err[256];

    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) ==
        RD_KAFKA_CONF_OK)
        return WEIR_OK;
    snprintf(errstr, errstr_size, "kafka: %.400s", err);
    return WEIR_EINVAL;
}

int weir__kafka_check_prop(rd_kafka_type_t type, const char *name,
                           const char *value, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_res_t res;
    char err[256];

    (void)type;
    if (conf == NULL)
        return WEIR_ENOMEM;
    res = rd_kafka_conf_set(conf, name, value, err, sizeof(err));
    rd_kafka_conf_destroy(conf);
    if (res == RD_KAFKA_CONF_OK)
        return WEIR_OK;
    if (errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, "kafka: %.400s", err);
    return res == RD_KAFKA_CONF_UNKNOWN ? WEIR_ENOENT : WEIR_EINVAL;
}

/* Pipeline properties used when a conf does not set them. */
static const char *const fallback_props[] = {"bootstrap.servers",
                                             "group.id",
                                             "client.id",
                                             "security.protocol",
                                             "sasl.mechanisms",
                                             "sasl.username",
                                             "sasl.password",
                                             "ssl.ca.location",
                                             "ssl.certificate.location",
                                             "ssl.key.location",
                                             "ssl.key.password",
                                             "debug",
                                             "log_level",
                                             NULL};

rd_kafka_conf_t *weir__kafka_conf(weir_ctx_t *ctx,
                                  const struct kafka_props *props, char *errstr,
                                  size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char name[128];
    const char *v;
    size_t i;

    if (conf == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (i = 0; ctx != NULL && fallback_props[i] != NULL; i++) {
        snprintf(name, sizeof(name), "kafka.%s", fallback_props[i]);
        v = weir_ctx_conf(ctx, name);
        if (v != NULL && *v != '\0' &&
            weir__kafka_props_get(props, fallback_props[i]) == NULL &&
            weir__kafka_set(conf, fallback_props[i], v, errstr, errstr_size) !=
                WEIR_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    for (i = 0; i < props->n; i++) {
        if (weir__kafka_set(conf, props->name[i], props->value[i], errstr,
                            errstr_size) != WEIR_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

void weir__kafka_default_txn_id(const char *group, const char *ckpt_dir,
                                char *out, size_t size)
{
    char host[256];
    char real[PATH_MAX];
    char seed[PATH_MAX + 300];
    uint64_t h;

    if (gethostname(host, sizeof(host)) != 0)
        strcpy(host, "localhost");
    host[sizeof(host) - 1] = '\0';
    if (ckpt_dir == NULL || realpath(ckpt_dir, real) == NULL)
        snprintf(real, sizeof(real), "%s", ckpt_dir ? ckpt_dir : "");
    snprintf(seed, sizeof(seed), "%s:%s", host, real);
    h = XXH3_64bits(seed, strlen(seed));
    snprintf(out, size, "weir-%s-%016" PRIx64,
             group != NULL && *group != '\0' ? group : "pipeline", h);
}

/* ------------------------------------------------------------------ *
 * ## Links and the process registry
 * ------------------------------------------------------------------ */

struct link_entry {
    weir__kafka_link_t *l;
    struct link_entry *next;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct link_entry *registry;

static void held_free(struct kafka_held *h)
{
    weir_free(h->key);
    weir_free(h->value);
    if (h->hdrs != NULL)
        rd_kafka_headers_destroy(h->hdrs);
    memset(h, 0, sizeof(*h));
}

static void offsets_free(struct kafka_offsets *o)
{
    if (o->list != NULL)
        rd_kafka_topic_partition_list_destroy(o->list);
    if (o->cgmd != NULL)
        rd_kafka_consumer_group_metadata_destroy(o->cgmd);
    memset(o, 0, sizeof(*o));
}

/* Drops the topic handles (before the producer goes; the sinks have
 * stopped producing). */
static void drop_topic_handles(weir__kafka_link_t *l)
{
    size_t i;

    for (i = 0; i < l->ncounts; i++) {
        if (l->counts[i]->rkt != NULL)
            rd_kafka_topic_destroy(l->counts[i]->rkt);
        l->counts[i]->rkt = NULL;
    }
}

static void link_free(void *ptr)
{
    weir__kafka_link_t *l = ptr;
    struct link_entry **pp;
    struct link_entry *e;
    size_t i;

    pthread_mutex_lock(&registry_mu);
    for (pp = &registry; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->l == l) {
            e = *pp;
            *pp = e->next;
            weir_free(e);
            break;
        }
    }
    pthread_mutex_unlock(&registry_mu);
    for (i = 0; i < l->nheld; i++)
        held_free(&l->held[i]);
    weir_free(l->held);
    for (i = 0; i < l->noffs; i++)
        offsets_free(&l->offs[i]);
    weir_free(l->offs);
    for (i = 0; i < l->ncounts; i++) {
        weir_free(l->counts[i]->topic);
        weir_free(l->counts[i]->pend_epoch);
        weir_free(l->counts[i]->pend_n);
        weir_free(l->counts[i]);
    }
    weir_free(l->counts);
    for (i = 0; l->sent != NULL && i < (size_t)l->nconsumers; i++)
        if (l->sent[i] != NULL)
            rd_kafka_topic_partition_list_destroy(l->sent[i]);
    weir_free(l->sent);
    weir_free(l->consumers);
    weir_free(l->group);
    weir_free(l->ckpt_dir);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cond);
    weir_free(l);
}

weir__kafka_link_t *weir__kafka_link_get(weir_pipeline_t *p)
{
    struct link_entry *e;
    weir__kafka_link_t *l = NULL;

    pthread_mutex_lock(&registry_mu);
    for (e = registry; e != NULL; e = e->next)
        if (e->l->p == p)
            break;
    if (e != NULL) {
        l = e->l;
        pthread_mutex_unlock(&registry_mu);
        return l;
    }
    l = weir_calloc(1, sizeof(*l));
    e = weir_calloc(1, sizeof(*e));
    if (l == NULL || e == NULL) {
        pthread_mutex_unlock(&registry_mu);
        weir_free(l);
        weir_free(e);
        return NULL;
    }
    l->p = p;
    l->log_fd = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    e->l = l;
    e->next = registry;
    registry = e;
    pthread_mutex_unlock(&registry_mu);
    /* On failure weir_pipeline_attach() frees l at once. */
    if (weir_pipeline_attach(p, l, link_free) != WEIR_OK)
        return NULL;
    return l;
}

/* Looks up the link of a pipeline for the getters (NULL if none). */
static weir__kafka_link_t *link_find(const weir_pipeline_t *p)
{
    struct link_entry *e;
    weir__kafka_link_t *l = NULL;

    pthread_mutex_lock(&registry_mu);
    for (e = registry; e != NULL; e = e->next)
        if (e->l->p == p)
            l = e->l;
    pthread_mutex_unlock(&registry_mu);
    return l;
}

/* Claims (bootstrap, transactional.id) for l; WEIR_EBUSY when another
 * live link of this process holds it. Called with l->mu held. */
static int registry_claim(weir__kafka_link_t *l)
{
    struct link_entry *e;
    int rc = WEIR_OK;

    pthread_mutex_lock(&registry_mu);
    for (e = registry; e != NULL; e = e->next) {
        weir__kafka_link_t *o = e->l;

        if (o == l || !o->registered)
            continue;
        if (strcmp(o->txn_id, l->txn_id) == 0 &&
            strcmp(o->bootstrap, l->bootstrap) == 0) {
            rc = WEIR_EBUSY;
            break;
        }
    }
    if (rc == WEIR_OK)
        l->registered = 1;
    pthread_mutex_unlock(&registry_mu);
    return rc;
}

static void registry_release(weir__kafka_link_t *l)
{
    pthread_mutex_lock(&registry_mu);
    l->registered = 0;
    pthread_mutex_unlock(&registry_mu);
}

/* ------------------------------------------------------------------ *
 * ## Failure
 * ------------------------------------------------------------------ */

/* Records the first failure of the run. Called with l->mu held. */
static int link_fail(weir__kafka_link_t *l, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int link_fail(weir__kafka_link_t *l, int code, const char *fmt, ...)
{
    va_list ap;

    if (l->failed == 0) {
        l->failed = code;
        va_start(ap, fmt);
        vsnprintf(l->err, sizeof(l->err), fmt, ap);
        va_end(ap);
        pthread_cond_broadcast(&l->cond);
    }
    return l->failed;
}

int weir__kafka_link_failed(weir__kafka_link_t *l, char *errstr,
                            size_t errstr_size)
{
    int rc;

    pthread_mutex_lock(&l->mu);
    rc = l->failed;
    if (rc != 0 && errstr != NULL)
        snprintf(errstr, errstr_size, "%s", l->err);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Fails the calling operator with the link's failure. */
static int ctx_fail(weir__kafka_link_t *l, weir_ctx_t *ctx)
{
    return weir_ctx_error(ctx, l->failed, "%s", l->err);
}

/* 1 for the codes of a producer another instance has fenced. */
static int is_fenced(rd_kafka_resp_err_t code)
{
    return code == RD_KAFKA_RESP_ERR__FENCED ||
           code == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
           code == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH;
}

/* Fails the link for a fatal producer error `code` met in `what`: a
 * fence (another instance took the transactional.id) or another fatal
 * error. */
static int fail_fatal(weir__kafka_link_t *l, rd_kafka_resp_err_t code,
                      const char *what, const char *msg)
{
    if (is_fenced(code))
        return link_fail(l, WEIR_EFENCED,
                         "kafka: %s: producer fenced (another instance uses "
                         "transactional.id %s): %s; stopping",
                         what, l->txn_id, msg);
    return link_fail(l, WEIR_EFATAL, "kafka: %s: fatal error: %s", what, msg);
}

/* Classifies a transactional API error: aborts when it must, records the
 * failure, or returns 1 for "retry". Called with l->mu held. */
static int txn_error(weir__kafka_link_t *l, rd_kafka_error_t *e,
                     const char *what)
{
    rd_kafka_resp_err_t code = rd_kafka_error_code(e);
    char msg[300];
    rd_kafka_error_t *ae;

    snprintf(msg, sizeof(msg), "%s", rd_kafka_error_string(e));
    if (rd_kafka_error_is_fatal(e)) {
        rd_kafka_error_destroy(e);
        fail_fatal(l, code, what, msg);
        return 0;
    }
    if (rd_kafka_error_txn_requires_abort(e)) {
        rd_kafka_error_destroy(e);
        ae = rd_kafka_abort_transaction(l->producer, TXN_TIMEOUT_MS);
        if (ae != NULL)
            rd_kafka_error_destroy(ae);
        l->txn_open = 0;
        link_fail(l, WEIR_EKAFKA,
                  "kafka: %s: transaction aborted (%s); restart to resume "
                  "from checkpoint %" PRIu64,
                  what, msg, l->committed);
        return 0;
    }
    if (rd_kafka_error_is_retriable(e)) {
        rd_kafka_error_destroy(e);
        return 1;
    }
    rd_kafka_error_destroy(e);
    link_fail(l, WEIR_EKAFKA, "kafka: %s: %s", what, msg);
    return 0;
}

/* ------------------------------------------------------------------ *
 * ## Producer
 * ------------------------------------------------------------------ */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    weir__kafka_link_t *l = opaque;
    int zero = 0;

    (void)rk;
    if (!l->eos)
        atomic_fetch_sub(&l->inflight[(uintptr_t)m->_private % 64], 1);
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (atomic_compare_exchange_strong(&l->dr_err, &zero, (int)m->err))
        snprintf(l->dr_msg, sizeof(l->dr_msg), "%s (topic %s)",
                 rd_kafka_err2str(m->err),
                 m->rkt ? rd_kafka_topic_name(m->rkt) : "?");
}

static void make_run_id(weir__kafka_link_t *l)
{
    static _Atomic unsigned counter;
    uint64_t v;

    v = ((uint64_t)now_ms() << 16) ^ ((uint64_t)getpid() << 4) ^
        (uint64_t)atomic_fetch_add(&counter, 1);
    snprintf(l->run_id, sizeof(l->run_id), "%" PRIx64, v);
}

static int open_log(weir__kafka_link_t *l)
{
    char path[PATH_MAX];
    struct stat st;

    if (l->ckpt_dir == NULL)
        return WEIR_OK;
    snprintf(path, sizeof(path), "%s/%s", l->ckpt_dir, WEIR_KAFKA_COMMIT_LOG);
    l->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (l->log_fd < 0)
        return WEIR_EIO;
    /* A log left large by earlier runs is compacted at the first commit. */
    l->log_grown = fstat(l->log_fd, &st) == 0 ? (size_t)st.st_size : 0;
    return WEIR_OK;
}

/* 1 when the sink's properties ask for reports of failed records only. */
static int only_errors(const struct weir_kafka_sink_conf_s *kc)
{
    const char *v =
        weir__kafka_props_get(&kc->props, "delivery.report.only.error");
    int b = 0;

    return v != NULL && weir__kafka_bool(v, &b) == WEIR_OK && b;
}

int weir__kafka_link_start_producer(weir__kafka_link_t *l, weir_ctx_t *ctx,
                                    const struct weir_kafka_sink_conf_s *kc)
{
    rd_kafka_conf_t *conf;
    rd_kafka_error_t *e;
    const char *dir = weir_ctx_checkpoint_dir(ctx);
    const char *bs;
    char err[512];
    int rc = WEIR_OK;

    pthread_mutex_lock(&l->mu);
    if (l->producer != NULL || l->failed) {
        rc = l->failed ? ctx_fail(l, ctx) : WEIR_OK;
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    l->eos = !kc->alos;
    if (l->eos && dir == NULL) {
        pthread_mutex_unlock(&l->mu);
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "kafka sink: exactly-once delivery needs "
                              "\"checkpoint.dir\" (or use "
                              "delivery=at-least-once)");
    }
    make_run_id(l);
    weir_free(l->ckpt_dir);
    l->ckpt_dir = dup_str(dir);
    conf = weir__kafka_conf(ctx, &kc->props, err, sizeof(err));
    if (conf == NULL) {
        pthread_mutex_unlock(&l->mu);
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", err);
    }
    bs = weir__kafka_props_get(&kc->props, "bootstrap.servers");
    if (bs == NULL)
        bs = weir_ctx_conf(ctx, "kafka.bootstrap.servers");
    snprintf(l->bootstrap, sizeof(l->bootstrap), "%s", bs ? bs : "");
    if (kc->txn_id != NULL)
        snprintf(l->txn_id, sizeof(l->txn_id), "%s", kc->txn_id);
    else
        weir__kafka_default_txn_id(l->group, dir, l->txn_id, sizeof(l->txn_id));
    /* librdkafka's default linger (5 ms) is a floor under at-least-once
     * latency, and exactly once pays it at every commit: the records
     * produced just before a barrier are still lingering when the commit
     * flushes (measured: flush p90 10 ms with 5, 1 ms with 1). 1 ms still
     * batches under load; 0 costs throughput. */
    if (weir__kafka_props_get(&kc->props, "linger.ms") == NULL &&
        weir__kafka_props_get(&kc->props, "queue.buffering.max.ms") == NULL)
        weir__kafka_set(conf, "linger.ms", "1", err, sizeof(err));
    /* Exactly once needs to hear of failed records only (check_delivered;
     * the commit itself waits for every acknowledgement): a report per
     * record would cost an event, a queue round and a free on the sink's
     * thread for each. At least once counts acknowledgements (wait_acked). */
    if (l->eos &&
        weir__kafka_props_get(&kc->props, "delivery.report.only.error") == NULL)
        weir__kafka_set(conf, "delivery.report.only.error", "true", err,
                        sizeof(err));
    if (!l->eos && only_errors(kc)) {
        rd_kafka_conf_destroy(conf);
        pthread_mutex_unlock(&l->mu);
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "kafka sink: at-least-once delivery counts "
                              "every acknowledgement; "
                              "\"delivery.report.only.error\" must stay "
                              "false");
    }
    if (weir__kafka_set(conf, "enable.idempotence", "true", err, sizeof(err)) !=
            WEIR_OK ||
        (l->eos && weir__kafka_set(conf, "transactional.id", l->txn_id, err,
                                   sizeof(err)) != WEIR_OK)) {
        rd_kafka_conf_destroy(conf);
        pthread_mutex_unlock(&l->mu);
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", err);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, l);
    if (l->eos && registry_claim(l) != WEIR_OK) {
        rd_kafka_conf_destroy(conf);
        pthread_mutex_unlock(&l->mu);
        return weir_ctx_error(ctx, WEIR_EBUSY,
                              "kafka sink: transactional.id %s is already "
                              "used by another pipeline of this process",
                              l->txn_id);
    }
    l->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (l->producer == NULL) {
        rd_kafka_conf_destroy(conf);
        registry_release(l);
        pthread_mutex_unlock(&l->mu);
        return weir_ctx_error(ctx, WEIR_EKAFKA, "kafka: %.400s", err);
    }
    if (l->eos) {
        /* Fences an earlier incarnation and aborts its open transaction. */
        e = rd_kafka_init_transactions(l->producer, INIT_TIMEOUT_MS);
        if (e != NULL) {
            snprintf(err, sizeof(err), "%s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            link_fail(l, WEIR_EKAFKA, "kafka: init_transactions: %s", err);
            rc = ctx_fail(l, ctx);
        } else if (open_log(l) != WEIR_OK) {
            link_fail(l, WEIR_EIO, "kafka: cannot open the commit log in %s",
                      l->ckpt_dir);
            rc = ctx_fail(l, ctx);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

void weir__kafka_link_warm(weir__kafka_link_t *l, const char *topic)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt;
    rd_kafka_t *rk;

    pthread_mutex_lock(&l->mu);
    rk = l->producer; /* stays while this instance is open */
    pthread_mutex_unlock(&l->mu);
    if (rk == NULL || topic == NULL)
        return;
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL)
        return;
    if (rd_kafka_metadata(rk, 0, rkt, &md, WARM_TIMEOUT_MS) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
}

int weir__kafka_partition_count(rd_kafka_t *rk, const char *topic, char *err,
                                size_t err_size)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt;
    rd_kafka_resp_err_t e;
    int n = -1;

    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rkt == NULL) {
        snprintf(err, err_size, "kafka: topic %s: out of memory", topic);
        return -1;
    }
    e = rd_kafka_metadata(rk, 0, rkt, &md, WARM_TIMEOUT_MS);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = md->topic_cnt == 1 ? md->topics[0].err
                               : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR && md->topics[0].partition_cnt > 0)
            n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
    }
    if (n < 0)
        snprintf(err, err_size, "kafka: topic %s: %s", topic,
                 e ? rd_kafka_err2str(e) : "no partitions");
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* Destroys the producer when the last instance closes. l->mu held. */
static void stop_producer(weir__kafka_link_t *l)
{
    rd_kafka_error_t *e;
    size_t i;

    if (l->producer == NULL)
        return;
    if (l->eos && l->txn_open) {
        /* Records of no committed checkpoint: replay writes them again. */
        e = rd_kafka_abort_transaction(l->producer, TXN_TIMEOUT_MS);
        if (e != NULL)
            rd_kafka_error_destroy(e);
        l->txn_open = 0;
    }
    if (!l->eos)
        rd_kafka_flush(l->producer, FLUSH_TIMEOUT_MS);
    else
        rd_kafka_purge(l->producer,
                       RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    drop_topic_handles(l);
    rd_kafka_destroy(l->producer);
    l->producer = NULL;
    if (l->registered)
        registry_release(l);
    if (l->log_fd >= 0) {
        close(l->log_fd);
        l->log_fd = -1;
    }
    for (i = 0; i < l->nheld; i++)
        held_free(&l->held[i]);
    l->nheld = 0;
}

void weir__kafka_link_open(weir__kafka_link_t *l)
{
    pthread_mutex_lock(&l->mu);
    if (l->opened++ == 0) {
        /* A new run of this pipeline starts from a clean slate. */
        l->failed = 0;
        l->err[0] = '\0';
        atomic_store(&l->dr_err, 0);
        atomic_store(&l->consumed, 0);
    }
    pthread_mutex_unlock(&l->mu);
}

void weir__kafka_link_close(weir__kafka_link_t *l)
{
    pthread_mutex_lock(&l->mu);
    while (l->committing)
        pthread_cond_wait(&l->cond, &l->mu);
    if (--l->opened == 0)
        stop_producer(l);
    pthread_mutex_unlock(&l->mu);
}

void weir__kafka_link_restored(weir__kafka_link_t *l, uint64_t id)
{
    pthread_mutex_lock(&l->mu);
    if (id > l->committed) {
        l->committed = id;
        atomic_store(&l->committed_id, id);
    }
    pthread_mutex_unlock(&l->mu);
}

void weir__kafka_link_poll(weir__kafka_link_t *l)
{
    if (l->producer != NULL)
        rd_kafka_poll(l->producer, 0);
}

/* ------------------------------------------------------------------ *
 * ## Counting
 * ------------------------------------------------------------------ */

struct kafka_topic_count *weir__kafka_link_topic(weir__kafka_link_t *l,
                                                 const char *topic)
{
    struct kafka_topic_count **v;
    struct kafka_topic_count *c;
    size_t i;

    pthread_mutex_lock(&l->mu);
    for (i = 0; i < l->ncounts; i++) {
        if (strcmp(l->counts[i]->topic, topic) == 0) {
            pthread_mutex_unlock(&l->mu);
            return l->counts[i];
        }
    }
    c = weir_calloc(1, sizeof(*c));
    v = weir_realloc(l->counts, (l->ncounts + 1) * sizeof(*v));
    if (v != NULL)
        l->counts = v;
    if (c == NULL || v == NULL || (c->topic = dup_str(topic)) == NULL) {
        weir_free(c);
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    l->counts[l->ncounts++] = c;
    pthread_mutex_unlock(&l->mu);
    return c;
}

/* l->mu held. */
static int count_pending(struct kafka_topic_count *tc, uint64_t epoch)
{
    uint64_t *e;
    uint64_t *n;

    if (tc->npend > 0 && tc->pend_epoch[tc->npend - 1] == epoch) {
        tc->pend_n[tc->npend - 1]++;
        return WEIR_OK;
    }
    e = weir_realloc(tc->pend_epoch, (tc->npend + 1) * sizeof(*e));
    if (e == NULL)
        return WEIR_ENOMEM;
    tc->pend_epoch = e;
    n = weir_realloc(tc->pend_n, (tc->npend + 1) * sizeof(*n));
    if (n == NULL)
        return WEIR_ENOMEM;
    tc->pend_n = n;
    tc->pend_epoch[tc->npend] = epoch;
    tc->pend_n[tc->npend] = 1;
    tc->npend++;
    return WEIR_OK;
}

/* Moves counts of epochs <= id to committed. l->mu held. */
static void count_commit(weir__kafka_link_t *l, uint64_t id)
{
    size_t i;
    size_t k;
    size_t j;

    for (i = 0; i < l->ncounts; i++) {
        struct kafka_topic_count *tc = l->counts[i];

        for (k = 0, j = 0; k < tc->npend; k++) {
            if (tc->pend_epoch[k] <= id) {
                atomic_fetch_add(&tc->committed, tc->pend_n[k]);
            } else {
                tc->pend_epoch[j] = tc->pend_epoch[k];
                tc->pend_n[j] = tc->pend_n[k];
                j++;
            }
        }
        tc->npend = j;
    }
}

/* ------------------------------------------------------------------ *
 * ## Producing
 * ------------------------------------------------------------------ */

/* Begins the transaction of epoch committed + 1 if needed. l->mu held. */
static int ensure_txn(weir__kafka_link_t *l)
{
    rd_kafka_error_t *e;

    if (!l->eos || l->txn_open)
        return WEIR_OK;
    e = rd_kafka_begin_transaction(l->producer);
    if (e != NULL) {
        txn_error(l, e, "begin_transaction");
        if (l->failed == 0)
            link_fail(l, WEIR_EKAFKA, "kafka: begin_transaction failed");
        return l->failed;
    }
    l->txn_open = 1;
    return WEIR_OK;
}

/* The producer's handle of tc's topic: made once, so that a message does
 * not look its topic up by name (librdkafka would, under its lock, for
 * every message). l->mu held. */
static rd_kafka_topic_t *topic_handle(weir__kafka_link_t *l,
                                      struct kafka_topic_count *tc)
{
    if (tc->rkt == NULL)
        tc->rkt = rd_kafka_topic_new(l->producer, tc->topic, NULL);
    return tc->rkt;
}

/* Hands one message of `epoch` to librdkafka, waiting while its queue is
 * full. Takes hdrs on success and on failure. l->mu held. */
static int produce(weir__kafka_link_t *l, uint64_t epoch,
                   struct kafka_topic_count *tc, int32_t partition,
                   const void *key, size_t klen, const void *value, size_t vlen,
                   int64_t ts, rd_kafka_headers_t *hdrs)
{
    rd_kafka_topic_t *rkt = topic_handle(l, tc);
    rd_kafka_resp_err_t err;

    if (rkt == NULL) {
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        return link_fail(l, WEIR_EKAFKA, "kafka: cannot produce to %s: %s",
                         tc->topic, rd_kafka_err2str(rd_kafka_last_error()));
    }
    if (!l->eos)
        atomic_fetch_add(&l->inflight[epoch % 64], 1);
    for (;;) {
        err = rd_kafka_producev(
            l->producer, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY((void *)key, klen),
            RD_KAFKA_V_VALUE((void *)value, vlen),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts),
            RD_KAFKA_V_HEADERS(hdrs),
            RD_KAFKA_V_OPAQUE((void *)(uintptr_t)epoch), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(l->producer, 10);
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return WEIR_OK;
    if (!l->eos)
        atomic_fetch_sub(&l->inflight[epoch % 64], 1);
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char msg[256];

        err = rd_kafka_fatal_error(l->producer, msg, sizeof(msg));
        return fail_fatal(l, err, "produce", msg);
    }
    return link_fail(l, WEIR_EKAFKA, "kafka: cannot produce to %s: %s",
                     tc->topic, rd_kafka_err2str(err));
}

static int hold(weir__kafka_link_t *l, struct kafka_topic_count *tc,
                uint64_t epoch, int32_t partition, weir_buf_t key,
                weir_buf_t value, int64_t ts, rd_kafka_headers_t *hdrs)
{
    struct kafka_held *h;
    size_t cap;

    if (l->nheld == l->capheld) {
        cap = l->capheld ? l->capheld * 2 : 1024;
        h = weir_realloc(l->held, cap * sizeof(*h));
        if (h == NULL)
            goto oom;
        l->held = h;
        l->capheld = cap;
    }
    h = &l->held[l->nheld];
    memset(h, 0, sizeof(*h));
    h->epoch = epoch;
    h->tc = tc;
    h->partition = partition;
    h->ts = ts;
    if (key.data != NULL) {
        h->key = weir_malloc(key.len ? key.len : 1);
        if (h->key == NULL)
            goto oom;
        memcpy(h->key, key.data, key.len);
        h->klen = key.len;
    }
    if (value.data != NULL) {
        h->value = weir_malloc(value.len ? value.len : 1);
        if (h->value == NULL) {
            weir_free(h->key);
            goto oom;
        }
        memcpy(h->value, value.data, value.len);
        h->vlen = value.len;
    }
    h->hdrs = hdrs;
    l->nheld++;
    return WEIR_OK;
oom:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    return link_fail(l, WEIR_ENOMEM, "kafka: out of memory holding records");
}

/* Produces held messages of epochs <= upto, in order. l->mu held. */
static int release_held(weir__kafka_link_t *l, uint64_t upto)
{
    size_t i;
    size_t j;
    int rc = WEIR_OK;

    for (i = 0, j = 0; i < l->nheld; i++) {
        struct kafka_held *h = &l->held[i];

        if (h->epoch > upto || rc != WEIR_OK) {
            l->held[j++] = *h;
            continue;
        }
        rc = ensure_txn(l);
        if (rc == WEIR_OK) {
            rc = produce(l, h->epoch, h->tc, h->partition, h->key, h->klen,
                         h->value, h->vlen, h->ts, h->hdrs);
            h->hdrs = NULL;
        }
        held_free(h);
    }
    l->nheld = j;
    return rc;
}

int weir__kafka_link_send(weir__kafka_link_t *l, weir_ctx_t *ctx,
                          struct kafka_topic_count *tc, uint64_t epoch,
                          int32_t partition, weir_buf_t key, weir_buf_t value,
                          int64_t ts, rd_kafka_headers_t *hdrs)
{
    int rc;

    pthread_mutex_lock(&l->mu);
    if (l->failed) {
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        rc = ctx_fail(l, ctx);
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    if (count_pending(tc, epoch) != WEIR_OK) {
        if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
        link_fail(l, WEIR_ENOMEM, "kafka: out of memory");
        rc = ctx_fail(l, ctx);
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    if (!l->eos || epoch <= l->committed + 1) {
        rc = ensure_txn(l);
        if (rc == WEIR_OK)
            rc = produce(l, epoch, tc, partition, key.data, key.len, value.data,
                         value.len, ts, hdrs);
        else if (hdrs != NULL)
            rd_kafka_headers_destroy(hdrs);
    } else {
        rc = hold(l, tc, epoch, partition, key, value, ts, hdrs);
    }
    if (rc != WEIR_OK)
        rc = ctx_fail(l, ctx);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ------------------------------------------------------------------ *
 * ## Offsets from sources
 * ------------------------------------------------------------------ */

int weir__kafka_link_add_consumer(weir__kafka_link_t *l, rd_kafka_t *rk)
{
    size_t n;
    rd_kafka_t **c;
    rd_kafka_topic_partition_list_t **sent;
    int slot;

    pthread_mutex_lock(&l->mu);
    n = (size_t)l->nconsumers + 1;
    c = weir_realloc(l->consumers, n * sizeof(*c));
    if (c != NULL)
        l->consumers = c;
    sent = c != NULL ? weir_realloc(l->sent, n * sizeof(*sent)) : NULL;
    if (sent == NULL) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    l->sent = sent;
    slot = l->nconsumers++;
    c[slot] = rk;
    sent[slot] = NULL;
    pthread_mutex_unlock(&l->mu);
    return slot;
}

void weir__kafka_link_remove_consumer(weir__kafka_link_t *l, int slot)
{
    pthread_mutex_lock(&l->mu);
    while (l->committing)
        pthread_cond_wait(&l->cond, &l->mu);
    if (slot >= 0 && slot < l->nconsumers)
        l->consumers[slot] = NULL;
    pthread_mutex_unlock(&l->mu);
}

int weir__kafka_link_put_offsets(weir__kafka_link_t *l, int slot, uint64_t id,
                                 const rd_kafka_topic_partition_list_t *list,
                                 rd_kafka_t *rk)
{
    struct kafka_offsets *o;

    pthread_mutex_lock(&l->mu);
    if (!l->eos) {
        pthread_mutex_unlock(&l->mu);
        return WEIR_OK;
    }
    o = weir_realloc(l->offs, (l->noffs + 1) * sizeof(*o));
    if (o == NULL) {
        pthread_mutex_unlock(&l->mu);
        return WEIR_ENOMEM;
    }
    l->offs = o;
    o = &l->offs[l->noffs];
    o->id = id;
    o->src = slot;
    o->list = rd_kafka_topic_partition_list_copy(list);
    o->cgmd = rk != NULL ? rd_kafka_consumer_group_metadata(rk) : NULL;
    l->noffs++;
    pthread_mutex_unlock(&l->mu);
    return WEIR_OK;
}

uint64_t weir__kafka_link_committed(weir__kafka_link_t *l)
{
    return atomic_load(&l->committed_id);
}

/* The offsets source `slot` published for checkpoint id (its latest at
 * or before id), or NULL when there are none to commit. */
static struct kafka_offsets *offsets_for(weir__kafka_link_t *l, int slot,
                                         uint64_t id)
{
    struct kafka_offsets *best = NULL;
    size_t i;

    for (i = 0; i < l->noffs; i++)
        if (l->offs[i].src == slot && l->offs[i].id <= id &&
            (best == NULL || l->offs[i].id > best->id))
            best = &l->offs[i];
    if (best == NULL || best->list == NULL || best->list->cnt == 0)
        return NULL;
    return best;
}

int weir__kafka_same_offsets(const rd_kafka_topic_partition_list_t *a,
                             const rd_kafka_topic_partition_list_t *b)
{
    const rd_kafka_topic_partition_t *q;
    int k;

    if (a == NULL || b == NULL || a->cnt != b->cnt)
        return 0;
    for (k = 0; k < a->cnt; k++) {
        q = rd_kafka_topic_partition_list_find(
            (rd_kafka_topic_partition_list_t *)b, a->elems[k].topic,
            a->elems[k].partition);
        if (q == NULL || q->offset != a->elems[k].offset)
            return 0;
    }
    return 1;
}

/* 1 when committing checkpoint id would send no offset that the last
 * commit did not: every source is where it was then. l->mu held. */
static int offsets_unchanged(weir__kafka_link_t *l, uint64_t id)
{
    struct kafka_offsets *o;
    int slot;

    for (slot = 0; slot < l->nconsumers; slot++) {
        o = offsets_for(l, slot, id);
        if (o != NULL && !weir__kafka_same_offsets(o->list, l->sent[slot]))
            return 0;
    }
    return 1;
}

/* Remembers what slot's commit sent, for offsets_unchanged(). */
static void offsets_sent(weir__kafka_link_t *l, int slot,
                         const rd_kafka_topic_partition_list_t *list)
{
    if (l->sent[slot] != NULL)
        rd_kafka_topic_partition_list_destroy(l->sent[slot]);
    l->sent[slot] = rd_kafka_topic_partition_list_copy(list);
}

/* Sends, for each source, its latest offsets <= id. l->mu held; it is
 * released while the broker is asked. */
static int send_offsets(weir__kafka_link_t *l, uint64_t id)
{
    char meta[400];
    int slot;
    int k;
    int nslots = l->nconsumers;
    int rc = WEIR_OK;

    snprintf(meta, sizeof(meta), "%s%" PRIu64 ";run=%s;tid=%s",
             WEIR_KAFKA_META_PREFIX, id, l->run_id, l->txn_id);
    for (slot = 0; slot < nslots && rc == WEIR_OK; slot++) {
        struct kafka_offsets *best = offsets_for(l, slot, id);
        rd_kafka_topic_partition_list_t *list;
        rd_kafka_consumer_group_metadata_t *cgmd;
        rd_kafka_error_t *e;
        int tries;

        if (best == NULL)
            continue;
        list = rd_kafka_topic_partition_list_copy(best->list);
        for (k = 0; k < list->cnt; k++) {
            free(list->elems[k].metadata);
            list->elems[k].metadata = strdup(meta);
            list->elems[k].metadata_size =
                list->elems[k].metadata ? strlen(meta) : 0;
        }
        cgmd = l->consumers[slot] != NULL
                   ? rd_kafka_consumer_group_metadata(l->consumers[slot])
                   : NULL;
        if (cgmd == NULL && best->cgmd != NULL) {
            /* The source has closed: use what it saw at its snapshot. */
            cgmd = best->cgmd;
            best->cgmd = NULL;
        }
        if (cgmd == NULL) {
            rd_kafka_topic_partition_list_destroy(list);
            continue;
        }
        for (tries = 0; tries < COMMIT_RETRIES; tries++) {
            pthread_mutex_unlock(&l->mu);
            e = rd_kafka_send_offsets_to_transaction(l->producer, list, cgmd,
                                                     TXN_TIMEOUT_MS);
            pthread_mutex_lock(&l->mu);
            if (e == NULL || !txn_error(l, e, "send_offsets_to_transaction"))
                break;
        }
        if (e != NULL && l->failed == 0)
            link_fail(l, WEIR_EKAFKA,
                      "kafka: send_offsets_to_transaction kept failing");
        rc = l->failed;
        if (rc == WEIR_OK)
            offsets_sent(l, slot, best->list);
        rd_kafka_consumer_group_metadata_destroy(cgmd);
        rd_kafka_topic_partition_list_destroy(list);
    }
    return rc;
}

/* Drops offsets entries no longer needed after committing id. */
static void prune_offsets(weir__kafka_link_t *l, uint64_t id)
{
    size_t i;
    size_t j;

    for (i = 0, j = 0; i < l->noffs; i++) {
        if (l->offs[i].id <= id)
            offsets_free(&l->offs[i]);
        else
            l->offs[j++] = l->offs[i];
    }
    l->noffs = j;
}

/* ------------------------------------------------------------------ *
 * ## Commit
 * ------------------------------------------------------------------ */

/* Records of epochs <= id not yet counted as committed. l->mu held. */
static uint64_t count_pending_upto(const weir__kafka_link_t *l, uint64_t id)
{
    uint64_t n = 0;
    size_t i;
    size_t k;

    for (i = 0; i < l->ncounts; i++)
        for (k = 0; k < l->counts[i]->npend; k++)
            if (l->counts[i]->pend_epoch[k] <= id)
                n += l->counts[i]->pend_n[k];
    return n;
}

/* One line of the commit log. */
struct log_line {
    char run[64];
    uint64_t lo;
    uint64_t hi;
    int64_t ms;
    uint64_t records;
};

/* Formats e as "commit <run> <lo> <hi> <unix ms> <records>\n" into buf
 * (LOG_LINE_MAX bytes); returns its length. */
#define LOG_LINE_MAX 200
static int log_line_format(char *buf, const struct log_line *e)
{
    return snprintf(buf, LOG_LINE_MAX,
                    "commit %s %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRIu64
                    "\n",
                    e->run, e->lo, e->hi, e->ms, e->records);
}

static int log_line_write(FILE *fp, const struct log_line *e)
{
    char buf[LOG_LINE_MAX];

    log_line_format(buf, e);
    return fputs(buf, fp) < 0 ? -1 : 0;
}

/* Copies log `in` to `out` with each run's consecutive lines merged into
 * one range (the last commit's time, the records summed). A torn last
 * line (no newline) is dropped, as readers drop it. */
static int log_merge(FILE *in, FILE *out)
{
    struct log_line cur = {0};
    struct log_line e;
    char line[256];
    int have = 0;

    while (fgets(line, sizeof(line), in) != NULL) {
        if (strchr(line, '\n') == NULL ||
            sscanf(line,
                   "commit %63s %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNu64,
                   e.run, &e.lo, &e.hi, &e.ms, &e.records) != 5)
            continue;
        if (have && strcmp(cur.run, e.run) == 0 && e.lo == cur.hi + 1) {
            cur.hi = e.hi;
            cur.ms = e.ms;
            cur.records += e.records;
            continue;
        }
        if (have && log_line_write(out, &cur) != 0)
            return -1;
        cur = e;
        have = 1;
    }
    return have ? log_line_write(out, &cur) : 0;
}

int weir__kafka_log_compact(const char *dir)
{
    char path[PATH_MAX];
    char tmp[PATH_MAX + 8];
    FILE *in;
    FILE *out;
    int ok = 0;

    if (dir == NULL)
        return WEIR_EINVAL;
    snprintf(path, sizeof(path), "%s/%s", dir, WEIR_KAFKA_COMMIT_LOG);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    in = fopen(path, "r");
    out = in != NULL ? fopen(tmp, "w") : NULL;
    if (out != NULL && log_merge(in, out) == 0 && fflush(out) == 0 &&
        fsync(fileno(out)) == 0)
        ok = 1;
    if (in != NULL)
        fclose(in);
    if (out != NULL && fclose(out) != 0)
        ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return WEIR_EIO;
    }
    weir__fsync_dir(dir); /* at worst, a crash brings the old log back */
    return WEIR_OK;
}

/* Compacts l's commit log; appends then go to the new file. A failure
 * leaves the log as it was and is tried again after as much growth. */
static int log_compact(weir__kafka_link_t *l)
{
    char path[PATH_MAX];
    int fd;

    if (weir__kafka_log_compact(l->ckpt_dir) != WEIR_OK)
        return WEIR_OK;
    snprintf(path, sizeof(path), "%s/%s", l->ckpt_dir, WEIR_KAFKA_COMMIT_LOG);
    fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return WEIR_EIO;
    close(l->log_fd);
    l->log_fd = fd;
    return WEIR_OK;
}

/* "commit <run> <first epoch> <last epoch> <unix ms> <records>"; the log
 * is compacted each time it has grown by LOG_COMPACT_BYTES. */
static int log_commit(weir__kafka_link_t *l, uint64_t lo, uint64_t hi)
{
    struct log_line e = {.lo = lo, .hi = hi};
    char line[LOG_LINE_MAX];
    int n;

    if (l->log_fd < 0)
        return WEIR_OK;
    snprintf(e.run, sizeof(e.run), "%s", l->run_id);
    e.ms = now_ms();
    e.records = count_pending_upto(l, hi);
    n = log_line_format(line, &e);
    if (write(l->log_fd, line, (size_t)n) != n || fsync(l->log_fd) != 0)
        return WEIR_EIO;
    l->log_grown += (size_t)n;
    if (l->log_grown >= LOG_COMPACT_BYTES) {
        l->log_grown = 0; /* a failure is tried again after as much */
        return log_compact(l);
    }
    return WEIR_OK;
}

/* Waits for the delivery report of every record of the open transaction
 * and aborts it if one failed. librdkafka 2.0.2 can commit a transaction
 * some of whose records failed for good (seen with a permanent produce
 * error on the mock), so weir checks itself. l->mu held (released while
 * waiting); no record is produced meanwhile (see the file comment). */
static int check_delivered(weir__kafka_link_t *l)
{
    rd_kafka_error_t *e;
    char msg[256];
    int dr;

    pthread_mutex_unlock(&l->mu);
    rd_kafka_flush(l->producer, FLUSH_TIMEOUT_MS);
    pthread_mutex_lock(&l->mu);
    dr = atomic_load(&l->dr_err);
    if (dr == 0)
        return WEIR_OK;
    snprintf(msg, sizeof(msg), "%s", l->dr_msg);
    e = rd_kafka_abort_transaction(l->producer, TXN_TIMEOUT_MS);
    if (e != NULL)
        rd_kafka_error_destroy(e);
    l->txn_open = 0;
    return link_fail(l, WEIR_EKAFKA,
                     "kafka: a record could not be delivered (%s); "
                     "transaction aborted, restart to resume from checkpoint "
                     "%" PRIu64,
                     msg, l->committed);
}

/* The Kafka transaction of checkpoint id: offsets, delivery check,
 * commit. l->mu held. */
static int end_txn(weir__kafka_link_t *l, uint64_t id)
{
    rd_kafka_error_t *e = NULL;
    int tries;
    int rc;

    rc = ensure_txn(l);
    if (rc == WEIR_OK)
        rc = send_offsets(l, id);
    if (rc == WEIR_OK)
        rc = check_delivered(l);
    if (rc != WEIR_OK)
        return rc;
    for (tries = 0; tries < COMMIT_RETRIES; tries++) {
        pthread_mutex_unlock(&l->mu);
        e = rd_kafka_commit_transaction(l->producer, TXN_TIMEOUT_MS);
        pthread_mutex_lock(&l->mu);
        if (e == NULL || !txn_error(l, e, "commit_transaction"))
            break;
    }
    if (e != NULL) {
        if (l->failed == 0)
            link_fail(l, WEIR_EKAFKA,
                      "kafka: commit_transaction kept "
                      "failing");
        return l->failed;
    }
    l->txn_open = 0;
    return WEIR_OK;
}

/* Commits checkpoint id (exactly once). A checkpoint with no record to
 * produce and no source offset that moved since the last commit has
 * nothing for Kafka: it is committed by its commit-log line alone (an
 * idle pipeline then costs the cluster nothing). l->mu held; committing
 * set. */
static int commit_txn(weir__kafka_link_t *l, uint64_t id)
{
    uint64_t lo = l->committed + 1;
    int rc;

    rc = release_held(l, id);
    if (rc == WEIR_OK && (l->txn_open || !offsets_unchanged(l, id)))
        rc = end_txn(l, id);
    if (rc != WEIR_OK)
        return rc;
    /* Log first: the sources' follow-up consumer commits (after they see
     * committed_id) must never be ahead of the log. */
    if (log_commit(l, lo, id) != WEIR_OK)
        return link_fail(l, WEIR_EIO,
                         "kafka: cannot write the commit log "
                         "in %s",
                         l->ckpt_dir);
    l->committed = id;
    atomic_store(&l->committed_id, id);
    count_commit(l, id);
    prune_offsets(l, id);
    /* The held records of the next epoch go into the next transaction. */
    return release_held(l, id + 1);
}

int weir__kafka_link_commit(weir__kafka_link_t *l, weir_ctx_t *ctx, uint64_t id)
{
    int rc = WEIR_OK;

    pthread_mutex_lock(&l->mu);
    while (l->committing && !l->failed)
        pthread_cond_wait(&l->cond, &l->mu);
    if (l->failed) {
        rc = ctx_fail(l, ctx);
        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    if (l->producer == NULL || l->committed >= id) {
        pthread_mutex_unlock(&l->mu);
        return WEIR_OK;
    }
    if (!l->eos) {
        l->committed = id;
        atomic_store(&l->committed_id, id);
        count_commit(l, id);
        pthread_mutex_unlock(&l->mu);
        return WEIR_OK;
    }
    l->committing = 1;
    rc = commit_txn(l, id);
    l->committing = 0;
    pthread_cond_broadcast(&l->cond);
    if (rc != WEIR_OK)
        rc = ctx_fail(l, ctx);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int chk_complete(const char *dir, uint64_t id)
{
    char path[PATH_MAX];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/chk-%" PRIu64 "/_COMPLETE", dir, id);
    return stat(path, &sb) == 0;
}

/* Serves delivery reports until no message of an epoch <= id (among the
 * last 64) is unacknowledged. Called without l->mu. */
static int wait_acked(weir__kafka_link_t *l, uint64_t id)
{
    int64_t deadline = now_ms() + FLUSH_TIMEOUT_MS;
    uint64_t e;
    int busy;

    for (;;) {
        busy = 0;
        for (e = id >= 63 ? id - 63 : 0; e <= id && !busy; e++)
            busy = atomic_load(&l->inflight[e % 64]) != 0;
        if (!busy)
            return WEIR_OK;
        if (now_ms() > deadline)
            return WEIR_ETIMEDOUT;
        rd_kafka_poll(l->producer, 1);
    }
}

int weir__kafka_link_barrier(weir__kafka_link_t *l, weir_ctx_t *ctx,
                             uint64_t id)
{
    int dr;
    int need;
    char msg[300];

    weir__kafka_link_poll(l);
    pthread_mutex_lock(&l->mu);
    need = l->eos && id >= 2 && l->committed < id - 1 && l->ckpt_dir &&
           chk_complete(l->ckpt_dir, id - 1);
    pthread_mutex_unlock(&l->mu);
    if (need && weir__kafka_link_commit(l, ctx, id - 1) != WEIR_OK)
        return weir_ctx_error(ctx, l->failed, "%s", l->err);
    pthread_mutex_lock(&l->mu);
    if (!l->eos && l->producer != NULL && !l->failed) {
        pthread_mutex_unlock(&l->mu);
        /* At least once: every record before the barrier is acknowledged
         * before the checkpoint can complete. Only those: a flush would
         * also wait for what the other sinks produce after the barrier. */
        if (wait_acked(l, id) != WEIR_OK) {
            pthread_mutex_lock(&l->mu);
            link_fail(l, WEIR_EKAFKA,
                      "kafka: records not acknowledged "
                      "within %d ms",
                      FLUSH_TIMEOUT_MS);
        } else {
            pthread_mutex_lock(&l->mu);
        }
    }
    dr = atomic_load(&l->dr_err);
    if (dr != 0 && !l->failed) {
        snprintf(msg, sizeof(msg), "%s", l->dr_msg);
        link_fail(l, WEIR_EKAFKA,
                  "kafka: a record could not be delivered: "
                  "%s",
                  msg);
    }
    if (l->failed) {
        int rc = ctx_fail(l, ctx);

        pthread_mutex_unlock(&l->mu);
        return rc;
    }
    pthread_mutex_unlock(&l->mu);
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Progress getters
 * ------------------------------------------------------------------ */

WEIR_EXTERN uint64_t weir_kafka_committed_records(const weir_pipeline_t *p,
                                                  const char *topic)
{
    weir__kafka_link_t *l;
    uint64_t n = 0;
    size_t i;

    if (p == NULL || (l = link_find(p)) == NULL)
        return 0;
    pthread_mutex_lock(&l->mu);
    for (i = 0; i < l->ncounts; i++)
        if (topic == NULL || strcmp(topic, l->counts[i]->topic) == 0)
            n += atomic_load(&l->counts[i]->committed);
    pthread_mutex_unlock(&l->mu);
    return n;
}

WEIR_EXTERN uint64_t weir_kafka_committed_checkpoint(const weir_pipeline_t *p)
{
    weir__kafka_link_t *l;

    if (p == NULL || (l = link_find(p)) == NULL)
        return 0;
    return atomic_load(&l->committed_id);
}

WEIR_EXTERN uint64_t weir_kafka_consumed_records(const weir_pipeline_t *p)
{
    weir__kafka_link_t *l;

    if (p == NULL || (l = link_find(p)) == NULL)
        return 0;
    return atomic_load(&l->consumed);
}

WEIR_EXTERN uint64_t weir_kafka_handover_failures(const weir_pipeline_t *p)
{
    weir__kafka_link_t *l;

    if (p == NULL || (l = link_find(p)) == NULL)
        return 0;
    return atomic_load(&l->handover_failures);
}

WEIR_EXTERN uint64_t weir_kafka_replayed_records(const weir_pipeline_t *p)
{
    weir__kafka_link_t *l;

    if (p == NULL || (l = link_find(p)) == NULL)
        return 0;
    return atomic_load(&l->replayed);
}

/* ------------------------------------------------------------------ *
 * ## Recovery
 * ------------------------------------------------------------------ */

/* The last checkpoint the commit log names, -1 when none. */
static int64_t log_last(const char *dir)
{
    char path[PATH_MAX];
    char line[256];
    char run[64];
    FILE *fp;
    uint64_t lo;
    uint64_t hi;
    int64_t last = -1;

    snprintf(path, sizeof(path), "%s/%s", dir, WEIR_KAFKA_COMMIT_LOG);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp) != NULL) {
        /* A torn last line (crash during write) has no newline. */
        if (strchr(line, '\n') == NULL)
            break;
        if (sscanf(line, "commit %63s %" SCNu64 " %" SCNu64, run, &lo, &hi) ==
                3 &&
            (int64_t)hi > last)
            last = (int64_t)hi;
    }
    fclose(fp);
    return last;
}

/* Parses "weir:chk=<n>;run=..;tid=<t>"; returns n when tid matches. */
static int64_t meta_checkpoint(const void *meta, size_t size, const char *tid)
{
    char buf[512];
    const char *t;
    uint64_t n;

    if (meta == NULL || size == 0 || size >= sizeof(buf))
        return -1;
    memcpy(buf, meta, size);
    buf[size] = '\0';
    if (strncmp(buf, WEIR_KAFKA_META_PREFIX, strlen(WEIR_KAFKA_META_PREFIX)) !=
        0)
        return -1;
    if (sscanf(buf + strlen(WEIR_KAFKA_META_PREFIX), "%" SCNu64, &n) != 1)
        return -1;
    t = strstr(buf, ";tid=");
    if (t == NULL || strcmp(t + 5, tid) != 0)
        return -1;
    return (int64_t)n;
}

/* The largest checkpoint id in the group's committed offsets' metadata
 * for transactional.id tid; -1 when none. */
static int64_t broker_last(const weir_kafka_source_conf_t *sc,
                           const weir_conf_t *conf, const char *tid,
                           char *errstr, size_t errstr_size, int *rc)
{
    rd_kafka_conf_t *kconf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    const struct rd_kafka_metadata *md;
    const char *v;
    char *topics;
    char *save = NULL;
    char *t;
    char err[512];
    int64_t last = -1;
    int i;
    int k;

    *rc = WEIR_OK;
    kconf = weir__kafka_conf(NULL, &sc->props, err, sizeof(err));
    if (kconf == NULL) {
        snprintf(errstr, errstr_size, "%s", err);
        *rc = WEIR_EINVAL;
        return -1;
    }
    if (weir__kafka_props_get(&sc->props, "bootstrap.servers") == NULL &&
        (v = weir_conf_get(conf, "kafka.bootstrap.servers")) != NULL)
        weir__kafka_set(kconf, "bootstrap.servers", v, err, sizeof(err));
    if (weir__kafka_props_get(&sc->props, "group.id") == NULL &&
        (v = weir_conf_get(conf, "kafka.group.id")) != NULL)
        weir__kafka_set(kconf, "group.id", v, err, sizeof(err));
    weir__kafka_set(kconf, "enable.auto.commit", "false", err, sizeof(err));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, err, sizeof(err));
    if (rk == NULL) {
        rd_kafka_conf_destroy(kconf);
        snprintf(errstr, errstr_size, "kafka: %.400s", err);
        *rc = WEIR_EKAFKA;
        return -1;
    }
    parts = rd_kafka_topic_partition_list_new(16);
    topics = dup_str(sc->topics);
    for (t = topics ? strtok_r(topics, ",", &save) : NULL; t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, t, NULL);

        if (rkt == NULL)
            continue;
        if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            for (i = 0; i < md->topic_cnt; i++)
                for (k = 0; k < md->topics[i].partition_cnt; k++)
                    rd_kafka_topic_partition_list_add(
                        parts, t, md->topics[i].partitions[k].id);
            rd_kafka_metadata_destroy(md);
        } else {
            snprintf(errstr, errstr_size,
                     "kafka: cannot read the metadata of topic %s", t);
            *rc = WEIR_EKAFKA;
        }
        rd_kafka_topic_destroy(rkt);
    }
    weir_free(topics);
    if (*rc == WEIR_OK && parts->cnt > 0) {
        if (rd_kafka_committed(rk, parts, 10000) !=
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(errstr, errstr_size,
                     "kafka: cannot read the committed offsets");
            *rc = WEIR_EKAFKA;
        } else {
            for (i = 0; i < parts->cnt; i++) {
                int64_t n = meta_checkpoint(parts->elems[i].metadata,
                                            parts->elems[i].metadata_size, tid);
                if (n > last)
                    last = n;
            }
        }
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return last;
}

/* Removes _COMPLETE of every chk-<m> with m > keep; reports whether
 * chk-<keep> is complete. */
static int demote_newer(const char *dir, uint64_t keep, int *have_keep)
{
    DIR *d;
    struct dirent *de;
    char path[PATH_MAX];
    uint64_t m;
    char tail;
    int rc = WEIR_OK;

    *have_keep = 0;
    d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? WEIR_OK : WEIR_EIO;
    while ((de = readdir(d)) != NULL) {
        if (sscanf(de->d_name, "chk-%" SCNu64 "%c", &m, &tail) != 1)
            continue;
        if (!chk_complete(dir, m))
            continue;
        if (m == keep) {
            *have_keep = 1;
            continue;
        }
        if (m < keep)
            continue;
        snprintf(path, sizeof(path), "%s/chk-%" PRIu64 "/_COMPLETE", dir, m);
        if (unlink(path) != 0)
            rc = WEIR_EIO;
    }
    closedir(d);
    if (rc == WEIR_OK) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY);

        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    return rc;
}

/* Takes the checkpoint directory's lock (the one a run holds, see
 * runtime/checkpoint.c), so that recovery never rewrites the markers of a
 * directory a running pipeline uses. *fd = -1 when there is no directory
 * yet (nothing to rewrite). */
static int lock_dir(const char *dir, int *fd)
{
    char path[PATH_MAX];
    int err;

    snprintf(path, sizeof(path), "%s/LOCK", dir);
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (*fd < 0)
        return errno == ENOENT ? WEIR_OK : WEIR_EIO;
    if (flock(*fd, LOCK_EX | LOCK_NB) == 0)
        return WEIR_OK;
    err = errno;
    close(*fd);
    *fd = -1;
    return err == EWOULDBLOCK ? WEIR_EBUSY : WEIR_EIO;
}

static int recover_dir(const weir_conf_t *conf, const char *dir,
                       const weir_kafka_source_conf_t *sc,
                       const char *transactional_id, char *errstr,
                       size_t errstr_size);

WEIR_EXTERN int weir_kafka_recover(const weir_conf_t *conf,
                                   const weir_kafka_source_conf_t *sc,
                                   const char *transactional_id, char *errstr,
                                   size_t errstr_size)
{
    const char *dir;
    int fd;
    int rc;

    if (conf == NULL)
        return WEIR_EINVAL;
    dir = weir_conf_get(conf, "checkpoint.dir");
    if (dir == NULL || *dir == '\0')
        return WEIR_OK;
    rc = lock_dir(dir, &fd);
    if (rc != WEIR_OK) {
        if (errstr != NULL)
            snprintf(errstr, errstr_size,
                     rc == WEIR_EBUSY
                         ? "kafka: checkpoint directory %s is in use by "
                           "another run (each pipeline needs its own)"
                         : "kafka: cannot lock checkpoint directory %s",
                     dir);
        return rc;
    }
    rc = recover_dir(conf, dir, sc, transactional_id, errstr, errstr_size);
    if (fd >= 0)
        close(fd);
    return rc;
}

static int recover_dir(const weir_conf_t *conf, const char *dir,
                       const weir_kafka_source_conf_t *sc,
                       const char *transactional_id, char *errstr,
                       size_t errstr_size)
{
    const char *group = NULL;
    char tid[256];
    char err[512] = "";
    int64_t from_log;
    int64_t from_broker = -1;
    uint64_t k;
    int have;
    int rc = WEIR_OK;

    if (sc != NULL)
        group = weir__kafka_props_get(&sc->props, "group.id");
    if (group == NULL)
        group = weir_conf_get(conf, "kafka.group.id");
    if (transactional_id != NULL)
        snprintf(tid, sizeof(tid), "%s", transactional_id);
    else
        weir__kafka_default_txn_id(group, dir, tid, sizeof(tid));
    if (sc != NULL) {
        from_broker = broker_last(sc, conf, tid, err, sizeof(err), &rc);
        if (rc != WEIR_OK) {
            if (errstr != NULL)
                snprintf(errstr, errstr_size, "%.*s", (int)errstr_size, err);
            return rc;
        }
    }
    from_log = log_last(dir);
    /* On a real broker the offsets' metadata is behind the log only by
     * checkpoints that had nothing for Kafka (the log commits those); on
     * the mock (no transactional offsets) the log is the record. */
    k = (uint64_t)(from_broker > from_log ? from_broker
                                          : (from_log > 0 ? from_log : 0));
    rc = demote_newer(dir, k, &have);
    if (rc != WEIR_OK) {
        if (errstr != NULL)
            snprintf(errstr, errstr_size,
                     "kafka: cannot update checkpoints in %s", dir);
        return rc;
    }
    if (k > 0 && !have) {
        if (errstr != NULL)
            snprintf(errstr, errstr_size,
                     "kafka: checkpoint %" PRIu64 " committed to Kafka is "
                     "not in %s; to start over, remove the directory and "
                     "reset the group's offsets",
                     k, dir);
        return WEIR_ECORRUPT;
    }
    return WEIR_OK;
}
