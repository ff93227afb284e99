/*
 * kafka_source.c - weir_kafka_source(): a consumer in a group, with
 * per-partition watermarks and offsets that belong to checkpoints.
 *
 * How it works
 *
 *   One librdkafka consumer per source (parallelism 1; processes scale
 *   out by sharing the group). open() subscribes; every poll() serves the
 *   consumer (rd_kafka_consumer_poll, at most poll.batch messages) and
 *   returns WEIR_IDLE when nothing came, so the runtime waits
 *   (source.idle.wait.ms) and injects barriers between polls. The
 *   consumer queue's event callback (librdkafka's thread, when something
 *   is queued on the empty queue) wakes the task through its waker, so a
 *   fetched message is emitted at once, not after the idle wait. With
 *   poll.wait.ms > 0 an empty poll first blocks that long in librdkafka
 *   for a message instead and returns WEIR_OK.
 *
 *   Per partition we keep the next offset to emit, the largest timestamp
 *   seen and the partition watermark W_p = max(W_p, maxTs_p - B),
 *   recomputed after every N-th record of that partition (DESIGN.md §4,
 *   applied per partition). The source's watermark is the minimum of W_p
 *   over assigned partitions that are neither idle nor being revoked, and
 *   is emitted as soon as it rises, before the next record. A partition
 *   with no record yet holds it at -infinity; one at its end (idle.at.eof)
 *   or silent for idle.timeout.ms is idle; when all are idle the source
 *   marks its output idle. Watermarks are generated here rather than by a
 *   downstream assigner because only the source knows partitions,
 *   assignment and end of partition: a merged stream cannot tell a
 *   lagging partition from late data.
 *
 *   Checkpoints. snapshot(n) writes the next offset and watermark state of
 *   every assigned partition (plus restored partitions not assigned yet)
 *   and, in exactly-once mode, publishes the assigned partitions' offsets
 *   to the link for n's transaction. restore() keeps the snapshot's
 *   entries; when a partition is assigned, its restored offset goes into
 *   the assignment (a seek before the first fetch) with its watermark
 *   state, unless the group's committed offset is further (another
 *   instance advanced the partition meanwhile). In at-least-once mode the
 *   offsets of n are committed through the consumer when n completes. In
 *   exactly-once mode they travel in n's transaction; they are committed
 *   through the consumer as well when a revoked partition is released and
 *   at close (see settle()): redundant on a real broker, and what lets
 *   another instance pick a partition up on the mock cluster, which does
 *   not store transactional offsets.
 *
 *   State that moves (changelog.topic). A partition another instance
 *   has processed (the group's committed offset is beyond what our
 *   restored checkpoint knows of it) comes without its keyed state: before
 *   its first record, its changelog entries are read and emitted as
 *   WEIR_HDR_REPLAY records (see "Changelog replay" below).
 *
 *   Rebalances (cooperative-sticky). Assign: seek as above, then
 *   incremental_assign. Revoke: the partitions are paused (no record of
 *   theirs is emitted any more), a checkpoint is requested, and
 *   incremental_unassign is called only once the checkpoint covering
 *   every record already emitted from them has committed, so the next
 *   owner starts exactly after what we wrote. Lost partitions (our session
 *   expired) fail the task in exactly-once mode: the open transaction may
 *   hold their records, so it must be aborted and the pipeline restarted.
 *   While closing, revocations are released at once.
 *
 *   Backpressure: emits block while downstream is full, and the fetch
 *   queue is bounded (queued.max.messages.kbytes, 64 MiB unless set). A
 *   poll that lasts more than a second (its poll.wait.ms wait aside; a
 *   batch takes that long only when emits block; timed per poll, not per
 *   message) pauses the assigned partitions for 100 ms, so the consumer
 *   keeps being served (group membership) while its queue stops filling.
 *   Pausing is kept for long stalls only: librdkafka 2.0 resumes fetching
 *   up to a second after resume (and after its queue thresholds), which
 *   would cost more than a short stall. For the same reason queued.min.messages is raised
 *   (see subscribe()).
 *
 * Invariants
 *   - parts[] holds exactly the partitions currently assigned to the
 *     consumer (revoking ones included until unassigned); carry[] holds
 *     restored partitions not assigned to us.
 *   - next is the offset after the last emitted message of the partition
 *     (or the restored offset), -1 when unknown.
 *   - epoch == last snapshot id + 1 (restored id + 1 after a restore).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka_link.h"

#define SNAP_VERSION     1
#define BLOCKED_PAUSE_MS 1000
#define PAUSE_MS         100

struct source_args {
    weir__kafka_link_t *l;
    weir_kafka_source_conf_t *sc;
};

struct pstate {
    char *topic;
    int32_t partition;
    int64_t next;     /* next offset, -1 unknown          */
    weir_ts_t max_ts; /* largest timestamp seen           */
    weir_ts_t wm;     /* partition watermark              */
    uint64_t since;   /* records since the last wm update */
    int64_t last_ms;  /* processing time of last record   */
    int idle;
    int revoking;
    int replay; /* changelog entries to replay before its first record */
    uint64_t revoke_epoch;
};

struct hist {
    uint64_t id;
    rd_kafka_topic_partition_list_t *list;
};

struct source {
    const struct source_args *a;
    weir_ctx_t *ctx; /* during callbacks  */
    rd_kafka_t *rk;
    rd_kafka_queue_t *q; /* the consumer queue (wakes the task) */
    rd_kafka_t *clk;     /* changelog reader (created on demand) */
    int clparts;         /* changelog partitions, 0 = not known yet */
    int slot;
    struct pstate *parts;
    size_t nparts;
    struct pstate *carry;
    size_t ncarry;
    struct hist *hist;
    size_t nhist;
    rd_kafka_topic_partition_list_t *acked; /* ALOS: last committed */
    uint64_t epoch;
    uint64_t done;     /* last completed (ALOS) */
    weir_ts_t emitted; /* last watermark out    */
    int wm_dirty;      /* partitions left the minimum: recompute */
    int idle_out;      /* output marked idle    */
    int eos;
    int ckpt;
    int closing;
    int stopped;
    int paused;
    int64_t paused_until;
    uint64_t count;
    int64_t last_msg_ms;
    int64_t assigned_ms;
    int fail;
    char err[KAFKA_ERRSTR];
    void *ex; /* extractor instance */
    int opened;
};

static void commit_last(struct source *s);

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = weir_malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

/* ------------------------------------------------------------------ *
 * ## Configuration
 * ------------------------------------------------------------------ */

WEIR_EXTERN weir_kafka_source_conf_t *
weir_kafka_source_conf_new(const char *topics)
{
    weir_kafka_source_conf_t *sc;

    if (topics == NULL || *topics == '\0')
        return NULL;
    sc = weir_calloc(1, sizeof(*sc));
    if (sc == NULL)
        return NULL;
    sc->topics = dup_str(topics);
    if (sc->topics == NULL) {
        weir_free(sc);
        return NULL;
    }
    sc->every = 1;
    sc->idle_eof = 1;
    sc->poll_batch = 1000;
    sc->poll_wait_ms = 0;
    return sc;
}

WEIR_EXTERN void weir_kafka_source_conf_destroy(weir_kafka_source_conf_t *sc)
{
    if (sc == NULL)
        return;
    weir__kafka_props_free(&sc->props);
    weir_free(sc->topics);
    weir_free(sc->changelog);
    weir_free(sc);
}

static int parse_i64(const char *v, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long n;

    if (v == NULL || *v == '\0')
        return WEIR_EINVAL;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (*end != '\0' || errno != 0 || n < min || n > max)
        return WEIR_EINVAL;
    *out = n;
    return WEIR_OK;
}

WEIR_EXTERN int weir_kafka_source_conf_set(weir_kafka_source_conf_t *sc,
                                           const char *name, const char *value,
                                           char *errstr, size_t errstr_size)
{
    int64_t n;
    int b;
    int rc = WEIR_OK;

    if (sc == NULL || name == NULL || value == NULL)
        return WEIR_EINVAL;
    if (strcmp(name, "timestamp") == 0) {
        rc = weir__kafka_choice(value, "message", "none", &sc->ts_none);
    } else if (strcmp(name, "watermark.out.of.orderness.ms") == 0) {
        rc = parse_i64(value, 0, INT64_MAX / 4, &n);
        sc->bound = rc == WEIR_OK ? n : sc->bound;
    } else if (strcmp(name, "watermark.every") == 0) {
        rc = parse_i64(value, 1, INT64_MAX, &n);
        sc->every = rc == WEIR_OK ? (uint64_t)n : sc->every;
    } else if (strcmp(name, "idle.timeout.ms") == 0) {
        rc = parse_i64(value, 0, INT64_MAX / 4, &n);
        sc->idle_ms = rc == WEIR_OK ? n : sc->idle_ms;
    } else if (strcmp(name, "idle.at.eof") == 0) {
        rc = weir__kafka_bool(value, &b);
        sc->idle_eof = rc == WEIR_OK ? b : sc->idle_eof;
    } else if (strcmp(name, "max.records") == 0) {
        rc = parse_i64(value, 0, INT64_MAX, &n);
        sc->max_records = rc == WEIR_OK ? (uint64_t)n : sc->max_records;
    } else if (strcmp(name, "idle.exit.ms") == 0) {
        rc = parse_i64(value, 0, INT64_MAX / 4, &n);
        sc->idle_exit_ms = rc == WEIR_OK ? n : sc->idle_exit_ms;
    } else if (strcmp(name, "key.header") == 0) {
        rc = weir__kafka_bool(value, &b);
        sc->key_header = rc == WEIR_OK ? b : sc->key_header;
    } else if (strcmp(name, "headers") == 0) {
        rc = weir__kafka_choice(value, "all", "none", &sc->headers_none);
    } else if (strcmp(name, "poll.batch") == 0) {
        rc = parse_i64(value, 1, 1000000, &n);
        sc->poll_batch = rc == WEIR_OK ? (int)n : sc->poll_batch;
    } else if (strcmp(name, "poll.wait.ms") == 0) {
        rc = parse_i64(value, 0, 1000, &n);
        sc->poll_wait_ms = rc == WEIR_OK ? (int)n : sc->poll_wait_ms;
    } else if (strcmp(name, "changelog.topic") == 0) {
        char *t = *value != '\0' ? dup_str(value) : NULL;

        if (*value != '\0' && t == NULL)
            return WEIR_ENOMEM;
        weir_free(sc->changelog);
        sc->changelog = t;
    } else if (strcmp(name, "enable.auto.commit") == 0 ||
               strcmp(name, "enable.partition.eof") == 0) {
        if (errstr != NULL && errstr_size > 0)
            snprintf(errstr, errstr_size, "kafka source: %s is set by weir",
                     name);
        return WEIR_EINVAL;
    } else {
        rc = weir__kafka_check_prop(RD_KAFKA_CONSUMER, name, value, errstr,
                                    errstr_size);
        if (rc == WEIR_OK)
            rc = weir__kafka_props_add(&sc->props, name, value);
        return rc;
    }
    if (rc != WEIR_OK && errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, "kafka source: bad value for %s: %s",
                 name, value);
    return rc;
}

WEIR_EXTERN int
weir_kafka_source_conf_set_extractor(weir_kafka_source_conf_t *sc,
                                     const weir_kafka_extractor_t *ex,
                                     const void *opaque)
{
    if (sc == NULL ||
        (ex != NULL &&
         (ex->version != WEIR_KAFKA_EXTRACTOR_VERSION || ex->extract == NULL)))
        return WEIR_EINVAL;
    sc->ex = ex;
    sc->ex_opaque = opaque;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Partition table
 * ------------------------------------------------------------------ */

static struct pstate *find(struct pstate *v, size_t n, const char *topic,
                           int32_t partition)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (v[i].partition == partition && strcmp(v[i].topic, topic) == 0)
            return &v[i];
    return NULL;
}

static void remove_at(struct pstate *v, size_t *n, struct pstate *p,
                      int free_topic)
{
    size_t i = (size_t)(p - v);

    if (free_topic)
        weir_free(p->topic);
    memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(*v));
    (*n)--;
}

static int append(struct pstate **v, size_t *n, const struct pstate *p)
{
    struct pstate *nv = weir_realloc(*v, (*n + 1) * sizeof(*nv));

    if (nv == NULL)
        return WEIR_ENOMEM;
    *v = nv;
    nv[*n] = *p;
    (*n)++;
    return WEIR_OK;
}

static void source_failf(struct source *s, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void source_failf(struct source *s, int code, const char *fmt, ...)
{
    va_list ap;

    if (s->fail != 0)
        return;
    s->fail = code;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof(s->err), fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ *
 * ## Rebalances
 * ------------------------------------------------------------------ */

static int cooperative(rd_kafka_t *rk)
{
    return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

/* The group's committed offsets of the partitions in list that were
 * restored (so that a partition another instance has advanced since our
 * checkpoint does not go back: its outputs are committed already) or,
 * with a changelog, of all of them (to tell whether another instance has
 * processed them: then their state must be replayed). */
static rd_kafka_topic_partition_list_t *
committed_of(struct source *s, const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *q;
    int all = s->a->sc->changelog != NULL;
    int i;

    q = rd_kafka_topic_partition_list_new(list->cnt > 0 ? list->cnt : 1);
    for (i = 0; i < list->cnt; i++)
        if (all || find(s->carry, s->ncarry, list->elems[i].topic,
                        list->elems[i].partition) != NULL)
            rd_kafka_topic_partition_list_add(q, list->elems[i].topic,
                                              list->elems[i].partition);
    if (q->cnt == 0 ||
        rd_kafka_committed(s->rk, q, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(q);
        return NULL;
    }
    return q;
}

/* The group's committed offset of tp in com, -1 when none. */
static int64_t committed_at(const rd_kafka_topic_partition_list_t *com,
                            const rd_kafka_topic_partition_t *tp)
{
    rd_kafka_topic_partition_t *ct;

    if (com == NULL)
        return -1;
    ct = rd_kafka_topic_partition_list_find(com, tp->topic, tp->partition);
    if (ct == NULL || ct->err != RD_KAFKA_RESP_ERR_NO_ERROR || ct->offset < 0)
        return -1;
    return ct->offset;
}

/* The state of assigned partition tp, whose group-committed offset is
 * co (-1: none): carried over from our checkpoint (then tp is seeked to
 * its position), or new. 0 when out of memory. */
static int partition_state(struct source *s, rd_kafka_topic_partition_t *tp,
                           int64_t co, struct pstate *p)
{
    struct pstate *c = find(s->carry, s->ncarry, tp->topic, tp->partition);

    if (c != NULL) {
        *p = *c;
        remove_at(s->carry, &s->ncarry, c, 0);
        /* Another instance went further than our checkpoint: its state
         * for the partition is in the changelog, not here. */
        p->replay = s->a->sc->changelog != NULL && co > p->next;
        if (co > p->next)
            p->next = co;
        if (p->next >= 0)
            tp->offset = p->next; /* seek before the first fetch */
        return 1;
    }
    memset(p, 0, sizeof(*p));
    p->topic = dup_str(tp->topic);
    p->partition = tp->partition;
    p->next = -1;
    p->max_ts = WEIR_TS_MIN;
    p->wm = WEIR_TS_MIN;
    /* someone has processed it before */
    p->replay = s->a->sc->changelog != NULL && co >= 0;
    return p->topic != NULL;
}

/* Hands list to the consumer (incrementally with cooperative-sticky). */
static void assign_list(struct source *s, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_error_t *e;
    rd_kafka_resp_err_t err;

    if (cooperative(s->rk)) {
        e = rd_kafka_incremental_assign(s->rk, list);
        if (e != NULL) {
            source_failf(s, WEIR_EKAFKA, "kafka: assign: %s",
                         rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        }
        return;
    }
    err = rd_kafka_assign(s->rk, list);
    if (err)
        source_failf(s, WEIR_EKAFKA, "kafka: assign: %s",
                     rd_kafka_err2str(err));
}

static void do_assign(struct source *s, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *com = committed_of(s, list);
    int64_t t = now_ms();
    struct pstate p;
    int i;

    for (i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];

        if (find(s->parts, s->nparts, tp->topic, tp->partition) != NULL)
            continue;
        if (!partition_state(s, tp, committed_at(com, tp), &p)) {
            source_failf(s, WEIR_ENOMEM, "out of memory");
            continue;
        }
        p.idle = 0;
        p.revoking = 0;
        p.last_ms = t;
        if (append(&s->parts, &s->nparts, &p) != WEIR_OK) {
            weir_free(p.topic);
            source_failf(s, WEIR_ENOMEM, "out of memory");
        }
    }
    assign_list(s, list);
    /* The idle-exit clock restarts whenever partitions arrive. */
    if (list->cnt > 0)
        s->assigned_ms = t;
    if (com != NULL)
        rd_kafka_topic_partition_list_destroy(com);
}

/* Removes partitions from the assignment and the table. */
static void do_unassign(struct source *s,
                        const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_error_t *e = NULL;
    int i;

    for (i = 0; i < list->cnt; i++) {
        struct pstate *p = find(s->parts, s->nparts, list->elems[i].topic,
                                list->elems[i].partition);
        if (p != NULL)
            remove_at(s->parts, &s->nparts, p, 1);
    }
    s->wm_dirty = 1;
    if (cooperative(s->rk))
        e = rd_kafka_incremental_unassign(s->rk, list);
    else
        rd_kafka_assign(s->rk, NULL);
    if (e != NULL) {
        if (!s->closing)
            source_failf(s, WEIR_EKAFKA, "kafka: unassign: %s",
                         rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    }
}

/* Offsets of the given partitions from our table (for commits). */
static rd_kafka_topic_partition_list_t *
positions(struct source *s, const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *out;
    int i;

    out = rd_kafka_topic_partition_list_new(list->cnt > 0 ? list->cnt : 1);
    for (i = 0; i < list->cnt; i++) {
        struct pstate *p = find(s->parts, s->nparts, list->elems[i].topic,
                                list->elems[i].partition);
        if (p != NULL && p->next >= 0)
            rd_kafka_topic_partition_list_add(out, p->topic, p->partition)
                ->offset = p->next;
    }
    return out;
}

static void do_revoke(struct source *s, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *pos;
    int lost = rd_kafka_assignment_lost(s->rk);
    int i;

    if (lost)
        atomic_fetch_add(&s->a->l->handover_failures, 1);
    if (s->closing || lost || !s->ckpt) {
        if (lost && !s->closing && s->eos)
            source_failf(s, WEIR_EKAFKA,
                         "kafka: %d partition(s) lost (the consumer's "
                         "session expired); the open transaction may hold "
                         "their records, so the pipeline must restart from "
                         "its last committed checkpoint",
                         list->cnt);
        if (!lost && !s->ckpt) {
            pos = positions(s, list);
            if (pos->cnt > 0)
                rd_kafka_commit(s->rk, pos, 0);
            rd_kafka_topic_partition_list_destroy(pos);
        }
        /* Closing, exactly once: commit the last committed checkpoint's
         * offsets again here, inside the revocation, where the member's
         * generation is still current. The commit made before closing
         * fails when another member's rebalance is under way; the next
         * owner would then start from older offsets on the mock. */
        if (!lost && s->closing && s->eos)
            commit_last(s);
        do_unassign(s, list);
        return;
    }
    /* Keep them until the checkpoint covering their emitted records has
     * committed; emit nothing more from them meanwhile. */
    for (i = 0; i < list->cnt; i++) {
        struct pstate *p = find(s->parts, s->nparts, list->elems[i].topic,
                                list->elems[i].partition);
        if (p != NULL && !p->revoking) {
            p->revoking = 1;
            p->revoke_epoch = s->epoch;
            s->wm_dirty = 1;
        }
    }
    rd_kafka_pause_partitions(s->rk, list);
    /* Ask for that checkpoint now rather than at the next interval. */
    weir_pipeline_checkpoint(s->a->l->p);
}

/* librdkafka's thread: something was queued on the empty consumer queue. */
static void queue_event(rd_kafka_t *rk, void *waker)
{
    (void)rk;
    weir_waker_wake(waker);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    struct source *s = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        do_assign(s, list);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        do_revoke(s, list);
    } else {
        rd_kafka_assign(rk, NULL);
        if (!s->closing)
            source_failf(s, WEIR_EKAFKA, "kafka: rebalance failed: %s",
                         rd_kafka_err2str(err));
    }
}

/* ------------------------------------------------------------------ *
 * ## Watermarks
 * ------------------------------------------------------------------ */

/* The minimum over active partitions; WEIR_TS_MIN when one has no
 * watermark yet; *active gets the number of active partitions. */
static weir_ts_t source_wm(const struct source *s, int *active)
{
    weir_ts_t w = WEIR_TS_MAX;
    size_t i;

    *active = 0;
    for (i = 0; i < s->nparts; i++) {
        if (s->parts[i].idle || s->parts[i].revoking)
            continue;
        (*active)++;
        if (s->parts[i].wm < w)
            w = s->parts[i].wm;
    }
    return *active > 0 ? w : WEIR_TS_MIN;
}

static int set_idle_out(struct source *s, weir_ctx_t *ctx, int idle)
{
    if (s->idle_out == idle)
        return WEIR_OK;
    s->idle_out = idle;
    return weir_emit_idle(ctx, idle);
}

/* Emits the source watermark if it rose; marks idleness. */
static int advance(struct source *s, weir_ctx_t *ctx)
{
    weir_ts_t w;
    int active;
    int rc;

    s->wm_dirty = 0;
    w = source_wm(s, &active);
    if (active == 0)
        return set_idle_out(s, ctx, 1);
    rc = set_idle_out(s, ctx, 0);
    if (rc != WEIR_OK || w == WEIR_TS_MIN || w <= s->emitted)
        return rc;
    s->emitted = w;
    return weir_emit_watermark(ctx, w);
}

/* Folds a record's timestamp into its partition; 1 when W_p rose from
 * at or below the watermark emitted last: only then can the minimum over
 * partitions rise (otherwise another partition holds it), so only then
 * is it worth computing per record. The end of every poll computes it
 * anyway. */
static int observe(struct source *s, struct pstate *p, weir_ts_t ts)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    weir_ts_t cand;
    weir_ts_t old;

    if (ts == WEIR_TS_MIN || ts == WEIR_TS_MAX)
        return 0;
    if (ts > p->max_ts)
        p->max_ts = ts;
    if (++p->since < sc->every)
        return 0;
    p->since = 0;
    cand = p->max_ts < WEIR_TS_MIN + sc->bound ? WEIR_TS_MIN
                                               : p->max_ts - sc->bound;
    if (cand <= p->wm)
        return 0;
    old = p->wm;
    p->wm = cand;
    return old <= s->emitted;
}

/* ------------------------------------------------------------------ *
 * ## Open / close
 * ------------------------------------------------------------------ */

/* The consumer's configuration: the source's properties over the
 * pipeline's, then what weir needs (cooperative-sticky assignment, its
 * own offset handling with checkpoints, partition EOF for idle.at.eof)
 * and its defaults, in *out; an error reported on ctx otherwise. */
static int consumer_conf(struct source *s, weir_ctx_t *ctx,
                         rd_kafka_conf_t **out)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    const char *manual = s->ckpt ? "false" : "true";
    rd_kafka_conf_t *conf;
    char errstr[512];
    const char *group;

    conf = weir__kafka_conf(ctx, &sc->props, errstr, sizeof(errstr));
    if (conf == NULL)
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", errstr);
    group = weir__kafka_props_get(&sc->props, "group.id");
    if (group == NULL)
        group = weir_ctx_conf(ctx, "kafka.group.id");
    if (group == NULL || *group == '\0') {
        rd_kafka_conf_destroy(conf);
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "kafka source: no group.id (set it on the "
                              "source or as kafka.group.id)");
    }
    if (weir__kafka_set(conf, "partition.assignment.strategy",
                        "cooperative-sticky", errstr,
                        sizeof(errstr)) != WEIR_OK ||
        weir__kafka_set(conf, "enable.auto.commit", manual, errstr,
                        sizeof(errstr)) != WEIR_OK ||
        weir__kafka_set(conf, "enable.auto.offset.store", manual, errstr,
                        sizeof(errstr)) != WEIR_OK ||
        weir__kafka_set(conf, "enable.partition.eof",
                        sc->idle_eof ? "true" : "false", errstr,
                        sizeof(errstr)) != WEIR_OK) {
        rd_kafka_conf_destroy(conf);
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", errstr);
    }
    if (weir__kafka_props_get(&sc->props, "isolation.level") == NULL)
        weir__kafka_set(conf, "isolation.level", "read_committed", errstr,
                        sizeof(errstr));
    /* librdkafka 2.0 compares queued.min.messages with the whole consumer
     * queue (partition queues forward to it) and looks again only about
     * once a second: with its default (100000) a fast fetcher stops and
     * the pipeline then starves for up to a second. The byte bound alone
     * keeps the queue bounded. */
    if (weir__kafka_props_get(&sc->props, "queued.min.messages") == NULL)
        weir__kafka_set(conf, "queued.min.messages", "10000000", errstr,
                        sizeof(errstr));
    if (weir__kafka_props_get(&sc->props, "queued.max.messages.kbytes") == NULL)
        weir__kafka_set(conf, "queued.max.messages.kbytes", "65536", errstr,
                        sizeof(errstr));
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_opaque(conf, s);
    *out = conf;
    return WEIR_OK;
}

/* Subscribes the consumer to the source's topics (comma-separated). */
static int subscribe_topics(struct source *s, weir_ctx_t *ctx)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t err;
    char *copy = dup_str(sc->topics);
    char *save = NULL;
    char *t;

    if (copy == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    topics = rd_kafka_topic_partition_list_new(4);
    for (t = strtok_r(copy, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save))
        rd_kafka_topic_partition_list_add(topics, t, RD_KAFKA_PARTITION_UA);
    weir_free(copy);
    err = rd_kafka_subscribe(s->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return weir_ctx_error(ctx, WEIR_EKAFKA, "kafka: subscribe %s: %s",
                              sc->topics, rd_kafka_err2str(err));
    return WEIR_OK;
}

static int subscribe(struct source *s, weir_ctx_t *ctx)
{
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];
    int rc = consumer_conf(s, ctx, &conf);

    if (rc != WEIR_OK)
        return rc;
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (s->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return weir_ctx_error(ctx, WEIR_EKAFKA, "kafka: %s", errstr);
    }
    rd_kafka_poll_set_consumer(s->rk);
    /* Messages (and rebalance events) arriving on an empty queue end the
     * task's idle wait: no idle-wait delay between fetch and emit. */
    s->q = rd_kafka_queue_get_consumer(s->rk);
    if (s->q != NULL)
        rd_kafka_queue_cb_event_enable(s->q, queue_event, weir_ctx_waker(ctx));
    return subscribe_topics(s, ctx);
}

static int source_open(weir_ctx_t *ctx, void *st)
{
    struct source *s = st;
    const weir_kafka_source_conf_t *sc;
    weir__kafka_link_t *l;
    char errstr[512] = "";
    int rc;

    s->a = weir_ctx_opaque(ctx);
    sc = s->a->sc;
    l = s->a->l;
    weir__kafka_link_open(l);
    s->opened = 1;
    s->epoch = 1;
    s->emitted = WEIR_TS_MIN;
    s->idle_out = -1;
    s->slot = -1;
    s->ckpt = weir_ctx_checkpoint_dir(ctx) != NULL;
    s->eos = l->sinks_eos > 0 && s->ckpt;
    if (sc->ex != NULL && sc->ex->open != NULL) {
        s->ex = sc->ex->open(sc->ex_opaque, errstr, sizeof(errstr));
        if (s->ex == NULL)
            return weir_ctx_error(ctx, WEIR_EINVAL,
                                  "kafka source: extractor %s: %s",
                                  sc->ex->name ? sc->ex->name : "", errstr);
    }
    s->ctx = ctx;
    rc = subscribe(s, ctx);
    if (rc != WEIR_OK)
        return rc;
    s->slot = weir__kafka_link_add_consumer(l, s->rk);
    if (s->slot < 0)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    return WEIR_OK;
}

static void free_hist(struct source *s, uint64_t upto)
{
    size_t i;
    size_t j;

    for (i = 0, j = 0; i < s->nhist; i++) {
        if (s->hist[i].id <= upto)
            rd_kafka_topic_partition_list_destroy(s->hist[i].list);
        else
            s->hist[j++] = s->hist[i];
    }
    s->nhist = j;
}

static void source_close(weir_ctx_t *ctx, void *st)
{
    struct source *s = st;
    rd_kafka_topic_partition_list_t *rev;
    size_t i;

    s->ctx = ctx;
    s->closing = 1;
    if (s->rk != NULL) {
        /* Release partitions whose revocation was deferred, then leave. */
        rev = rd_kafka_topic_partition_list_new(1);
        for (i = 0; i < s->nparts; i++)
            if (s->parts[i].revoking)
                rd_kafka_topic_partition_list_add(rev, s->parts[i].topic,
                                                  s->parts[i].partition);
        if (s->eos)
            commit_last(s);
        if (rev->cnt > 0)
            do_unassign(s, rev);
        rd_kafka_topic_partition_list_destroy(rev);
        if (s->slot >= 0)
            weir__kafka_link_remove_consumer(s->a->l, s->slot);
        rd_kafka_consumer_close(s->rk);
        if (s->q != NULL) {
            rd_kafka_queue_cb_event_enable(s->q, NULL, NULL);
            rd_kafka_queue_destroy(s->q);
            s->q = NULL;
        }
        rd_kafka_destroy(s->rk);
        s->rk = NULL;
    }
    if (s->clk != NULL) {
        rd_kafka_consumer_close(s->clk);
        rd_kafka_destroy(s->clk);
        s->clk = NULL;
    }
    for (i = 0; i < s->nparts; i++)
        weir_free(s->parts[i].topic);
    weir_free(s->parts);
    for (i = 0; i < s->ncarry; i++)
        weir_free(s->carry[i].topic);
    weir_free(s->carry);
    free_hist(s, UINT64_MAX);
    weir_free(s->hist);
    if (s->acked != NULL)
        rd_kafka_topic_partition_list_destroy(s->acked);
    if (s->ex != NULL && s->a->sc->ex->close != NULL)
        s->a->sc->ex->close(s->ex);
    if (s->opened)
        weir__kafka_link_close(s->a->l);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ *
 * ## Poll
 * ------------------------------------------------------------------ */

/* A synchronous commit through the consumer; 0 when it failed. */
static int consumer_commit(struct source *s,
                           const rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(s->rk, list, 0);
    int i;

    for (i = 0; err == RD_KAFKA_RESP_ERR_NO_ERROR && i < list->cnt; i++)
        err = list->elems[i].err;
    return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Releases revoked partitions whose last checkpoint has committed. Their
 * offsets are committed through the consumer first (synchronously): on a
 * real broker the transaction did it already and this changes nothing;
 * on the mock, which keeps no transactional offsets, it is what the next
 * owner reads. Consumer commits are made only here and at close, never
 * periodically: a commit that reaches the group coordinator during the
 * join phase of a rebalance fails with ILLEGAL_GENERATION, and librdkafka
 * then treats the whole assignment as lost. */
static void settle(struct source *s)
{
    rd_kafka_topic_partition_list_t *rel;
    rd_kafka_topic_partition_list_t *pos;
    uint64_t done;
    size_t i;

    done = s->eos ? weir__kafka_link_committed(s->a->l) : s->done;
    rel = NULL;
    for (i = 0; i < s->nparts; i++) {
        if (!s->parts[i].revoking || s->parts[i].revoke_epoch > done)
            continue;
        if (rel == NULL)
            rel = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(rel, s->parts[i].topic,
                                          s->parts[i].partition);
    }
    if (rel == NULL)
        return;
    if (s->eos) {
        pos = positions(s, rel);
        if (pos->cnt > 0 && !consumer_commit(s, pos))
            atomic_fetch_add(&s->a->l->handover_failures, 1);
        rd_kafka_topic_partition_list_destroy(pos);
    }
    do_unassign(s, rel);
    rd_kafka_topic_partition_list_destroy(rel);
}

/* At close, exactly once: commits through the consumer the offsets of the
 * last checkpoint whose transaction committed (see settle()). */
static void commit_last(struct source *s)
{
    uint64_t done = weir__kafka_link_committed(s->a->l);
    size_t i;
    size_t best = s->nhist;

    for (i = 0; i < s->nhist; i++)
        if (s->hist[i].id <= done &&
            (best == s->nhist || s->hist[i].id > s->hist[best].id))
            best = i;
    if (best < s->nhist && s->hist[best].list->cnt > 0)
        consumer_commit(s, s->hist[best].list);
}

static void stop_pipeline(struct source *s)
{
    rd_kafka_topic_partition_list_t *all;

    if (s->stopped)
        return;
    s->stopped = 1;
    if (rd_kafka_assignment(s->rk, &all) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_pause_partitions(s->rk, all);
        rd_kafka_topic_partition_list_destroy(all);
    }
    weir_pipeline_stop(s->a->l->p);
}

static void pause_all(struct source *s, int pause)
{
    rd_kafka_topic_partition_list_t *all;

    if (rd_kafka_assignment(s->rk, &all) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (pause) {
        rd_kafka_pause_partitions(s->rk, all);
    } else {
        /* Revoking partitions stay paused. */
        int i;

        for (i = 0; i < all->cnt; i++) {
            struct pstate *p = find(s->parts, s->nparts, all->elems[i].topic,
                                    all->elems[i].partition);
            if (p != NULL && p->revoking)
                all->elems[i].err = RD_KAFKA_RESP_ERR__STATE;
        }
        for (i = 0; i < all->cnt; i++)
            if (all->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                break;
        if (i < all->cnt) {
            rd_kafka_topic_partition_list_t *res =
                rd_kafka_topic_partition_list_new(all->cnt);

            for (i = 0; i < all->cnt; i++)
                if (all->elems[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                    rd_kafka_topic_partition_list_add(res, all->elems[i].topic,
                                                      all->elems[i].partition);
            rd_kafka_resume_partitions(s->rk, res);
            rd_kafka_topic_partition_list_destroy(res);
        }
    }
    rd_kafka_topic_partition_list_destroy(all);
    s->paused = pause;
}

/* Copies a message's headers into rec. */
static int copy_headers(weir_record_t *rec, const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs;
    const char *name;
    const void *val;
    size_t size;
    size_t i;
    int rc;

    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return WEIR_OK;
    for (i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        rc = weir_record_add_header(rec, name,
                                    val ? WEIR_BUF(val, size) : WEIR_BUF_NULL);
        if (rc != WEIR_OK)
            return rc;
    }
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Changelog replay
 *
 * A partition another instance has processed (the group's committed
 * offset is beyond what our restored checkpoint knows of it) comes with
 * state we do not have. Before its first record, the entries a changelog
 * sink wrote for it (kafka_sink.c, send_changelog) are read, read_committed,
 * from the start of changelog partition (partition mod its partitions) to
 * its end, and emitted as records with the WEIR_HDR_REPLAY header: key =
 * the entry's key after the 4-byte source partition, event time = its
 * value. Stateful operators apply them to their state and emit nothing;
 * they pass the channels in order, so they are in place before the
 * partition's first record. Entries of other source partitions sharing
 * the changelog partition are skipped.
 * ------------------------------------------------------------------ */

#define REPLAY_TIMEOUT_MS 120000

/* The changelog reader: a consumer that only assigns (never joins). */
static int replay_reader(struct source *s, weir_ctx_t *ctx)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    rd_kafka_conf_t *conf;
    char errstr[512];

    if (s->clk != NULL)
        return WEIR_OK;
    conf = weir__kafka_conf(ctx, &sc->props, errstr, sizeof(errstr));
    if (conf == NULL)
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", errstr);
    if (weir__kafka_set(conf, "group.id", "weir-changelog-reader", errstr,
                        sizeof(errstr)) != WEIR_OK ||
        weir__kafka_set(conf, "enable.auto.commit", "false", errstr,
                        sizeof(errstr)) != WEIR_OK ||
        weir__kafka_set(conf, "enable.partition.eof", "true", errstr,
                        sizeof(errstr)) != WEIR_OK ||
        weir__kafka_set(conf, "isolation.level", "read_committed", errstr,
                        sizeof(errstr)) != WEIR_OK) {
        rd_kafka_conf_destroy(conf);
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", errstr);
    }
    s->clk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (s->clk == NULL) {
        rd_kafka_conf_destroy(conf);
        return weir_ctx_error(ctx, WEIR_EKAFKA, "kafka: changelog reader: %s",
                              errstr);
    }
    return WEIR_OK;
}

static uint64_t get_be(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Emits one entry as a replay record. */
static int replay_entry(struct source *s, weir_ctx_t *ctx,
                        const struct pstate *p, weir_buf_t key,
                        weir_buf_t value, weir_ts_t ts)
{
    weir_record_t *rec;
    int rc;

    rec = weir_record_new(ctx, key, value, ts, WEIR_COPY);
    if (rec == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    weir_record_set_position(rec, p->partition, -1);
    rc = weir_record_add_header(rec, WEIR_HDR_REPLAY, WEIR_BUF_STR("1"));
    if (rc != WEIR_OK) {
        weir_record_destroy(rec);
        return weir_ctx_error(ctx, rc, "out of memory");
    }
    rc = weir_emit(ctx, rec);
    if (rc == WEIR_OK)
        atomic_fetch_add(&s->a->l->replayed, 1);
    return rc;
}

/* Emits the entries of one changelog message of p (kafka_sink.c,
 * send_changelog: format byte, then u32 key length, key, i64 time, u32
 * value length, value); messages of other source partitions are
 * skipped. */
static int replay_one(struct source *s, weir_ctx_t *ctx, const struct pstate *p,
                      const rd_kafka_message_t *m)
{
    const unsigned char *v = m->payload;
    size_t at = 1;
    uint64_t klen;
    uint64_t vlen;
    int rc = WEIR_OK;

    if (m->key == NULL || m->key_len != 4 || v == NULL || m->len < 1 ||
        (int32_t)get_be(m->key, 4) != p->partition)
        return WEIR_OK;
    if (v[0] != 1)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "kafka: changelog %s: unknown entry format %d",
                              s->a->sc->changelog, (int)v[0]);
    while (rc == WEIR_OK && at < m->len) {
        if (m->len - at < 16 || (klen = get_be(v + at, 4)) > m->len - at - 16 ||
            (vlen = get_be(v + at + 12 + klen, 4)) > m->len - at - 16 - klen)
            return weir_ctx_error(ctx, WEIR_ECORRUPT,
                                  "kafka: changelog %s: truncated entry at "
                                  "offset %" PRId64,
                                  s->a->sc->changelog, m->offset);
        rc = replay_entry(s, ctx, p, WEIR_BUF(v + at + 4, klen),
                          vlen ? WEIR_BUF(v + at + 16 + klen, vlen)
                               : WEIR_BUF_NULL,
                          (weir_ts_t)get_be(v + at + 4 + klen, 8));
        at += 16 + klen + vlen;
    }
    return rc;
}

/* Reads changelog partition `cp` from its start to its end. */
static int replay_read(struct source *s, weir_ctx_t *ctx,
                       const struct pstate *p, int32_t cp)
{
    const char *topic = s->a->sc->changelog;
    rd_kafka_topic_partition_list_t *a;
    rd_kafka_message_t *m;
    rd_kafka_resp_err_t err;
    int64_t deadline = now_ms() + REPLAY_TIMEOUT_MS;
    int rc = WEIR_OK;
    int done = 0;

    a = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(a, topic, cp)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(s->clk, a);
    rd_kafka_topic_partition_list_destroy(a);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return weir_ctx_error(ctx, WEIR_EKAFKA,
                              "kafka: changelog %s [%d]: assign: %s", topic,
                              (int)cp, rd_kafka_err2str(err));
    while (!done && rc == WEIR_OK) {
        if (now_ms() > deadline) {
            rc = weir_ctx_error(ctx, WEIR_EKAFKA,
                                "kafka: changelog %s [%d]: no end after "
                                "%d ms",
                                topic, (int)cp, REPLAY_TIMEOUT_MS);
            break;
        }
        m = rd_kafka_consumer_poll(s->clk, 100);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            done = m->partition == cp;
        else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
                 (m->err == RD_KAFKA_RESP_ERR__FATAL ||
                  m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED))
            rc = weir_ctx_error(ctx, WEIR_EKAFKA, "kafka: changelog %s: %s",
                                topic, rd_kafka_message_errstr(m));
        else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = replay_one(s, ctx, p, m);
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(s->clk, NULL);
    return rc;
}

/* Puts p's state in place: replays its changelog entries. */
static int replay(struct source *s, weir_ctx_t *ctx, struct pstate *p)
{
    char err[KAFKA_ERRSTR];
    int n;
    int rc;

    p->replay = 0;
    if (s->a->sc->changelog == NULL)
        return WEIR_OK;
    rc = replay_reader(s, ctx);
    if (rc != WEIR_OK)
        return rc;
    if (s->clparts <= 0) {
        n = weir__kafka_partition_count(s->clk, s->a->sc->changelog, err,
                                        sizeof(err));
        if (n <= 0)
            return WEIR_OK; /* no changelog yet: nothing was written to it */
        s->clparts = n;     /* a changelog keeps its partition count */
    }
    return replay_read(s, ctx, p, p->partition % s->clparts);
}

/* Turns one message into a record and emits it (or its error). */
static int handle(struct source *s, weir_ctx_t *ctx, struct pstate *p,
                  const rd_kafka_message_t *m)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    weir_record_t *rec;
    rd_kafka_timestamp_type_t tt;
    weir_buf_t key = WEIR_BUF_NULL;
    weir_ts_t ts = WEIR_TS_MIN;
    char why[400];
    int rc;

    if (m->key != NULL)
        key = WEIR_BUF(m->key, m->key_len);
    if (!sc->ts_none) {
        int64_t mts = rd_kafka_message_timestamp(m, &tt);

        if (mts >= 0)
            ts = mts;
    }
    rec = weir_record_new(ctx, key,
                          WEIR_BUF(m->payload ? m->payload : "", m->len), ts,
                          WEIR_COPY);
    if (rec == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    weir_record_set_position(rec, m->partition, m->offset);
    rc = sc->headers_none ? WEIR_OK : copy_headers(rec, m);
    if (rc == WEIR_OK && sc->key_header && m->key != NULL)
        rc = weir_record_add_header(rec, WEIR_KAFKA_HDR_KEY, key);
    if (rc != WEIR_OK) {
        weir_record_destroy(rec);
        return weir_ctx_error(ctx, rc, "out of memory");
    }
    if (s->idle_out != 0) {
        rc = set_idle_out(s, ctx, 0);
        if (rc != WEIR_OK) {
            weir_record_destroy(rec);
            return rc;
        }
    }
    why[0] = '\0';
    if (s->ex != NULL || (sc->ex != NULL && sc->ex->open == NULL))
        rc = sc->ex->extract(s->ex, rec, why, sizeof(why));
    if (rc == WEIR_ENOMEM) {
        weir_record_destroy(rec);
        return weir_ctx_error(ctx, rc, "out of memory");
    }
    if (rc == WEIR_KAFKA_SKIP) {
        weir_record_destroy(rec);
        return WEIR_OK;
    }
    if (rc != WEIR_OK) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "%s", weir_strerror(rc));
        rc = weir_record_add_header(rec, WEIR_HDR_ERROR, WEIR_BUF_STR(why));
        if (rc != WEIR_OK) {
            weir_record_destroy(rec);
            return weir_ctx_error(ctx, rc, "out of memory");
        }
        rc = weir_emit_to(ctx, WEIR_TAG_ERRORS, rec);
    } else {
        ts = weir_record_ts(rec);
        rc = weir_emit(ctx, rec);
        if (rc == WEIR_OK && (observe(s, p, ts) || s->wm_dirty))
            rc = advance(s, ctx);
    }
    return rc;
}

/* A message that carries an error instead of a record: end of a
 * partition (idle, with idle.at.eof) or a fatal consumer error. Takes m. */
static int poll_error(struct source *s, weir_ctx_t *ctx, rd_kafka_message_t *m)
{
    struct pstate *p;
    char err[KAFKA_ERRSTR];

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF && m->rkt != NULL) {
        p = find(s->parts, s->nparts, rd_kafka_topic_name(m->rkt),
                 m->partition);
        if (p != NULL && s->a->sc->idle_eof) {
            p->idle = 1;
            s->wm_dirty = 1;
        }
    } else if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(s->rk, err, sizeof(err));
        rd_kafka_message_destroy(m);
        return weir_ctx_error(ctx, WEIR_EKAFKA,
                              "kafka: fatal consumer error: %s", err);
    }
    rd_kafka_message_destroy(m);
    return WEIR_OK;
}

/* A record message read at time t: emitted (after its partition's
 * changelog replay), its partition's position and activity updated.
 * Takes m. *got counts the messages of this poll. */
static int poll_record(struct source *s, weir_ctx_t *ctx, rd_kafka_message_t *m,
                       int64_t t, int *got)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    struct pstate *p;
    int rc;

    p = find(s->parts, s->nparts, rd_kafka_topic_name(m->rkt), m->partition);
    if (p == NULL || p->revoking) {
        rd_kafka_message_destroy(m); /* of a partition no longer ours */
        return WEIR_OK;
    }
    rc = p->replay ? replay(s, ctx, p) : WEIR_OK;
    if (rc == WEIR_OK)
        rc = handle(s, ctx, p, m);
    p->next = m->offset + 1;
    p->idle = 0;
    p->last_ms = t;
    rd_kafka_message_destroy(m);
    if (rc != WEIR_OK)
        return rc;
    (*got)++;
    s->count++;
    atomic_fetch_add(&s->a->l->consumed, 1);
    if (sc->max_records > 0 && s->count >= sc->max_records)
        stop_pipeline(s);
    return WEIR_OK;
}

/* After a poll at time t that read `got` messages and spent `blocked` ms
 * other than waiting for the first: idle partitions, the watermark,
 * backpressure (pause fetching) and idle.exit.ms. */
static int poll_end(struct source *s, weir_ctx_t *ctx, int64_t t,
                    int64_t blocked, int got)
{
    const weir_kafka_source_conf_t *sc = s->a->sc;
    size_t i;
    int rc;

    if (got > 0)
        s->last_msg_ms = t;
    if (sc->idle_ms > 0)
        for (i = 0; i < s->nparts; i++)
            if (!s->parts[i].idle && t - s->parts[i].last_ms >= sc->idle_ms)
                s->parts[i].idle = 1;
    rc = advance(s, ctx);
    if (rc != WEIR_OK)
        return rc;
    if (blocked > BLOCKED_PAUSE_MS && !s->paused && !s->stopped) {
        /* Downstream is slow: stop fetching for a while, keep serving. */
        pause_all(s, 1);
        s->paused_until = t + PAUSE_MS;
    }
    if (sc->idle_exit_ms > 0 && s->assigned_ms > 0 && !s->stopped &&
        t - (s->last_msg_ms > s->assigned_ms ? s->last_msg_ms
                                             : s->assigned_ms) >=
            sc->idle_exit_ms)
        stop_pipeline(s);
    return WEIR_OK;
}

static int source_poll(weir_ctx_t *ctx, void *st)
{
    struct source *s = st;
    const weir_kafka_source_conf_t *sc = s->a->sc;
    rd_kafka_message_t *m;
    int64_t blocked = 0; /* first the blocking wait, then time blocked */
    int64_t t_loop;
    int64_t t;
    char err[KAFKA_ERRSTR];
    int got = 0;
    int waited = 0;
    int rc = WEIR_OK;

    s->ctx = ctx;
    rc = weir__kafka_link_failed(s->a->l, err, sizeof(err));
    if (rc != 0)
        return weir_ctx_error(ctx, rc, "%s", err);
    if (s->ckpt)
        settle(s);
    if (s->fail != 0)
        return weir_ctx_error(ctx, s->fail, "%s", s->err);
    t = now_ms();
    t_loop = t;
    if (s->paused && t >= s->paused_until && !s->stopped)
        pause_all(s, 0);
    while (got < sc->poll_batch && !s->stopped) {
        m = rd_kafka_consumer_poll(s->rk, 0);
        if (m == NULL && got == 0 && !waited && sc->poll_wait_ms > 0) {
            /* Nothing queued: wait here briefly rather than in the
             * runtime's idle wait, so a message is picked up as soon as
             * it arrives. */
            waited = 1;
            blocked -= now_ms();
            m = rd_kafka_consumer_poll(s->rk, sc->poll_wait_ms);
            blocked += now_ms();
        }
        if (s->fail != 0) {
            if (m != NULL)
                rd_kafka_message_destroy(m);
            return weir_ctx_error(ctx, s->fail, "%s", s->err);
        }
        if (m == NULL)
            break;
        rc = m->err != RD_KAFKA_RESP_ERR_NO_ERROR
                 ? poll_error(s, ctx, m)
                 : poll_record(s, ctx, m, t, &got);
        if (rc != WEIR_OK)
            return rc;
    }
    t = now_ms();
    /* Time in this poll apart from a blocking wait for the first message:
     * a batch takes far less than a second unless emits block. */
    blocked = t - t_loop - blocked;
    rc = poll_end(s, ctx, t, blocked, got);
    if (rc != WEIR_OK)
        return rc;
    return got > 0 || waited ? WEIR_OK : WEIR_IDLE;
}

/* ------------------------------------------------------------------ *
 * ## Checkpoints
 * ------------------------------------------------------------------ */

static int write_pstate(weir_writer_t *w, const struct pstate *p)
{
    int rc;

    rc = weir_write_buf(w, WEIR_BUF_STR(p->topic));
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, p->partition);
    /* A partition whose changelog is not replayed yet has emitted
     * nothing: "unknown" seeks to the group's offset as well, and makes
     * a restore replay it. */
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, p->replay ? -1 : p->next);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, p->max_ts);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, p->wm);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, p->since);
    return rc;
}

static int source_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                           uint64_t checkpoint_id)
{
    struct source *s = st;
    rd_kafka_topic_partition_list_t *list;
    struct hist *h;
    char meta[64];
    size_t i;
    int rc;

    list = rd_kafka_topic_partition_list_new((int)s->nparts + 1);
    snprintf(meta, sizeof(meta), "%s%" PRIu64, WEIR_KAFKA_META_PREFIX,
             checkpoint_id);
    for (i = 0; i < s->nparts; i++) {
        rd_kafka_topic_partition_t *tp;

        if (s->parts[i].next < 0)
            continue;
        tp = rd_kafka_topic_partition_list_add(list, s->parts[i].topic,
                                               s->parts[i].partition);
        tp->offset = s->parts[i].next;
        tp->metadata = strdup(meta);
        tp->metadata_size = tp->metadata ? strlen(meta) : 0;
    }
    rc = weir_write_u64(w, SNAP_VERSION);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, checkpoint_id);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, s->emitted);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, s->nparts + s->ncarry);
    for (i = 0; rc == WEIR_OK && i < s->nparts; i++)
        rc = write_pstate(w, &s->parts[i]);
    for (i = 0; rc == WEIR_OK && i < s->ncarry; i++)
        rc = write_pstate(w, &s->carry[i]);
    if (rc == WEIR_OK && s->eos)
        rc = weir__kafka_link_put_offsets(s->a->l, s->slot, checkpoint_id, list,
                                          s->rk);
    if (rc == WEIR_OK && s->eos) {
        /* Keep the last committed entry (commit_last) and newer ones. */
        uint64_t done = weir__kafka_link_committed(s->a->l);

        if (done > 0)
            free_hist(s, done - 1);
    }
    if (rc == WEIR_OK && s->ckpt) {
        h = weir_realloc(s->hist, (s->nhist + 1) * sizeof(*h));
        if (h == NULL) {
            rc = WEIR_ENOMEM;
        } else {
            s->hist = h;
            s->hist[s->nhist].id = checkpoint_id;
            s->hist[s->nhist].list = list;
            s->nhist++;
            list = NULL;
        }
    }
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "kafka source: snapshot failed");
    s->epoch = checkpoint_id + 1;
    return WEIR_OK;
}

static int source_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct source *s = st;
    struct pstate p;
    weir_buf_t topic;
    uint64_t version;
    uint64_t id;
    uint64_t n;
    uint64_t i;
    int64_t v;
    int rc;

    rc = weir_read_u64(r, &version);
    if (rc == WEIR_OK && version != SNAP_VERSION)
        rc = WEIR_ECORRUPT;
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &id);
    if (rc == WEIR_OK)
        rc = weir_read_i64(r, &s->emitted);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &n);
    for (i = 0; rc == WEIR_OK && i < n; i++) {
        memset(&p, 0, sizeof(p));
        rc = weir_read_buf(r, &topic);
        if (rc == WEIR_OK)
            rc = weir_read_i64(r, &v);
        p.partition = (int32_t)v;
        if (rc == WEIR_OK)
            rc = weir_read_i64(r, &p.next);
        if (rc == WEIR_OK)
            rc = weir_read_i64(r, &p.max_ts);
        if (rc == WEIR_OK)
            rc = weir_read_i64(r, &p.wm);
        if (rc == WEIR_OK)
            rc = weir_read_u64(r, &p.since);
        if (rc != WEIR_OK)
            break;
        p.topic = weir_malloc(topic.len + 1);
        if (p.topic == NULL)
            return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
        memcpy(p.topic, topic.data, topic.len);
        p.topic[topic.len] = '\0';
        if (append(&s->carry, &s->ncarry, &p) != WEIR_OK) {
            weir_free(p.topic);
            return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
        }
    }
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, WEIR_ECORRUPT, "kafka source: bad snapshot");
    s->epoch = id + 1;
    s->done = id;
    return WEIR_OK;
}

static int source_complete(weir_ctx_t *ctx, void *st, uint64_t checkpoint_id)
{
    struct source *s = st;
    size_t i;
    size_t best;

    (void)ctx;
    if (s->eos || s->rk == NULL || checkpoint_id <= s->done)
        return WEIR_OK;
    /* At least once: the sinks flushed at the barrier; commit now, in
     * the background (a revoked partition released before this lands may
     * be read again by its next owner: at least once allows it). */
    best = s->nhist;
    for (i = 0; i < s->nhist; i++)
        if (s->hist[i].id <= checkpoint_id &&
            (best == s->nhist || s->hist[i].id > s->hist[best].id))
            best = i;
    if (best < s->nhist && s->hist[best].list->cnt > 0 &&
        !weir__kafka_same_offsets(s->hist[best].list, s->acked)) {
        /* An idle source (nothing read since) sends no request. */
        rd_kafka_commit(s->rk, s->hist[best].list, 1);
        if (s->acked != NULL)
            rd_kafka_topic_partition_list_destroy(s->acked);
        s->acked = rd_kafka_topic_partition_list_copy(s->hist[best].list);
    }
    s->done = checkpoint_id;
    free_hist(s, checkpoint_id);
    return WEIR_OK;
}

static const weir_operator_def_t kafka_source_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "kafka_source",
    .flags = WEIR_OP_F_SINGLE,
    .state_size = sizeof(struct source),
    .open = source_open,
    .poll = source_poll,
    .snapshot = source_snapshot,
    .restore = source_restore,
    .on_checkpoint_complete = source_complete,
    .close = source_close,
};

/* ------------------------------------------------------------------ *
 * ## Builders
 * ------------------------------------------------------------------ */

static void free_source_args(void *ptr)
{
    struct source_args *a = ptr;

    weir_kafka_source_conf_destroy(a->sc);
    weir_free(a);
}

WEIR_EXTERN weir_stream_t *weir_kafka_source_ex(weir_pipeline_t *p,
                                                weir_kafka_source_conf_t *sc)
{
    weir__kafka_link_t *l;
    struct source_args *a;
    weir_stream_t *s;
    const char *group;

    if (p == NULL) {
        weir_kafka_source_conf_destroy(sc);
        return NULL;
    }
    if (sc == NULL)
        return weir_stream_error(
            weir_stream_source(p, "kafka_source", &kafka_source_def, NULL),
            WEIR_EINVAL, "kafka source: no configuration");
    l = weir__kafka_link_get(p);
    a = weir_calloc(1, sizeof(*a));
    if (l == NULL || a == NULL) {
        weir_free(a);
        weir_kafka_source_conf_destroy(sc);
        return weir_stream_error(
            weir_stream_source(p, "kafka_source", &kafka_source_def, NULL),
            WEIR_ENOMEM, "out of memory");
    }
    a->l = l;
    a->sc = sc;
    if (weir_pipeline_attach(p, a, free_source_args) != WEIR_OK)
        return weir_stream_error(
            weir_stream_source(p, "kafka_source", &kafka_source_def, NULL),
            WEIR_ENOMEM, "out of memory");
    group = weir__kafka_props_get(&sc->props, "group.id");
    if (l->group == NULL && group != NULL)
        l->group = dup_str(group);
    l->nsources++;
    s = weir_stream_source(p, "kafka_source", &kafka_source_def, a);
    return s;
}

WEIR_EXTERN weir_stream_t *weir_kafka_source(weir_pipeline_t *p,
                                             const char *topics)
{
    weir_kafka_source_conf_t *sc;

    if (p == NULL)
        return NULL;
    sc = weir_kafka_source_conf_new(topics);
    if (sc == NULL)
        return weir_stream_error(
            weir_stream_source(p, "kafka_source", &kafka_source_def, NULL),
            WEIR_EINVAL, "kafka source: bad topics");
    return weir_kafka_source_ex(p, sc);
}
