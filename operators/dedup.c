/*
 * operators/dedup.c - keyed deduplication (weir_stream_dedup,
 * weir_stream_dedup_scope, weir_harness_new_dedup).
 *
 * The scope of "the same event" is a window kind: rolling:R (R ms after
 * a key was first seen), tumbling:S (within one tumbling window) or
 * session:G (within one session of the key). Unique records go to the
 * main output, repeats to WEIR_TAG_DUPLICATE, records whose deciding
 * state may already be gone to WEIR_TAG_LATE. One principle decides
 * every case (DESIGN §4): a record that matches live state is a
 * duplicate, even behind the watermark; a record is late only when the
 * state that would decide it may already be gone. Every record is
 * classified against W = weir_ctx_watermark(), the watermark as it stood
 * before that record, and against its own key's state only, so results
 * do not depend on parallelism.
 *
 * How it works
 *   State is operator-local, in the open-addressing table of
 *   dedup_table.h, keyed by a 128-bit XXH3 digest (of the key; for
 *   tumbling, of the key seeded with the window start) with an expiry
 *   time: the watermark at which the state is gone.
 *     rolling:  exp = f + R - 1 + L (f = first-seen time);
 *     tumbling: exp = end - 1 + L;
 *     session:  exp = max over the key's sessions of end - 1 + L, and
 *               the slot also points to the key's sessions, a small
 *               array of [start, end) pruned on every visit.
 *   Expired state is never deleted by a timer: it counts as absent, is
 *   reused by the next insert on its probe path, and is dropped when the
 *   table is rebuilt (when it would grow) or shrunk (by the sweep that
 *   records and watermarks pay for a few slots at a time).
 *   snapshot writes the live entries (digests and times, never keys);
 *   restore re-inserts them. No per-record allocation except when a
 *   key's session array must grow.
 *   Changelog: when WEIR_TAG_CHANGELOG is connected, each record that
 *   changed the state is emitted there too (key, time; for sessions the
 *   whole session it joined); a record carrying WEIR_HDR_REPLAY is such
 *   an entry coming back (another process wrote it) and is applied to
 *   the state without output (apply_entry).
 *   Prefetch: for records arriving in a batch, the runtime's prefetch
 *   hint (dedup_prefetch) computes the digest a few records ahead and
 *   starts the load of the slot its probe begins at; process takes the
 *   digest from a FIFO when the record matches (see "Classification").
 *
 * Invariants
 *   - Records of a key are classified in arrival order against a
 *     watermark that never decreases; state dead at W stays dead.
 *   - A key's live sessions are pairwise disjoint and not touching
 *     (two that intersected would have merged).
 *   - A session slot's exp is the largest expiry of its sessions while
 *     any is live; a slot whose sessions are all dead has exp <= W.
 */
#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>
#include <weir/operator.h>
#include <weir/testing.h>
#include <weir/window.h>

#include "dedup_store.h"
#include "dedup_table.h"

#define SNAPSHOT_VERSION 1 /* the whole table inline                  */
#define SNAPSHOT_CHAIN   2 /* a chain of segments (dedup_store.h)      */
#define BASE_FACTOR      4 /* new base once deltas exceed 4 tables     */
#define BASE_MIN_ENTRIES 4096
#define SWEEP_PER_RECORD 1    /* sweep budget each record earns         */
#define SWEEP_PER_WM     4    /* ... and each watermark                  */
#define SWEEP_BATCH      1024 /* sweep when this much budget has built up */
#define CHUNK_ENTRIES    512  /* snapshot I/O chunk (24 bytes each)      */

/* One session of a key: [start, end). */
struct sess {
    weir_ts_t start;
    weir_ts_t end;
};

/* A session table slot. */
struct skey {
    struct dtab_head h; /* digest of the key, max expiry (biased) */
    struct sess *v;     /* the key's sessions (weir_malloc)        */
    uint32_t n;         /* sessions in v                           */
    uint32_t cap;       /* capacity of v                           */
};

/* Digests computed by prefetch, in the order the records will come to
 * process (a FIFO; see dedup_prefetch). */
#define MEMO_CAP 16

struct memo {
    const weir_record_t *rec; /* the record, and what the digest is of */
    const void *key;
    size_t len;
    weir_ts_t ts;
    XXH128_hash_t h;
};

/* The operator's state block. */
struct dedup {
    weir_window_kind_t kind; /* rolling, tumbling or session        */
    weir_ts_t size;          /* R, S or G                           */
    weir_ts_t lateness;      /* L                                   */
    dtab_t t;                /* the table                           */
    size_t credit;           /* sweep budget built up               */
    int incremental;         /* snapshots are segment chains        */
    int changelog;           /* WEIR_TAG_CHANGELOG is connected     */
    struct sess last;        /* session: where the last record went */
    struct dtab_log log;     /* claims since the last snapshot      */
    dstore_t store;          /* segment files and chains            */
    struct memo memo[MEMO_CAP];
    unsigned memo_head; /* next to fill */
    unsigned memo_tail; /* next to use  */
};

/* ------------------------------------------------------------------ *
 * ## Sessions
 * ------------------------------------------------------------------ */

static void drop_skey(struct dtab_head *slot)
{
    struct skey *k = (struct skey *)(void *)slot;

    weir_free(k->v);
    k->v = NULL;
    k->n = 0;
    k->cap = 0;
}

static weir_ts_t sess_exp(const struct dedup *d, const struct sess *s)
{
    return dtab_sum3(s->end, -1, d->lateness);
}

static int sess_append(struct skey *k, weir_ts_t start, weir_ts_t end)
{
    struct sess *v;
    uint32_t cap;

    if (k->n == k->cap) {
        cap = k->cap == 0 ? 2 : k->cap * 2;
        v = weir_realloc(k->v, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return WEIR_ENOMEM;
        k->v = v;
        k->cap = cap;
    }
    k->v[k->n].start = start;
    k->v[k->n].end = end;
    k->n++;
    return WEIR_OK;
}

/*
 * A record's window [rs, re) against a key with live state: drops dead
 * sessions and merges every live one that intersects the window into
 * one (the union, the record's window included). Returns 1 when at least
 * one merged (a duplicate), 0 when none did (nothing else changed but
 * pruning), or a negative code.
 */
static int sess_merge(const struct dedup *d, struct skey *k, weir_ts_t rs,
                      weir_ts_t re, weir_ts_t w)
{
    weir_ts_t ms;
    weir_ts_t me;
    weir_ts_t maxexp;
    weir_ts_t e;
    uint32_t i;
    uint32_t n;
    int hit;

    hit = 0;
    ms = rs;
    me = re;
    maxexp = WEIR_TS_MIN;
    n = 0;
    for (i = 0; i < k->n; i++) {
        e = sess_exp(d, &k->v[i]);
        if (e <= w)
            continue;
        if (k->v[i].start <= re && k->v[i].end >= rs) {
            hit = 1;
            if (k->v[i].start < ms)
                ms = k->v[i].start;
            if (k->v[i].end > me)
                me = k->v[i].end;
            continue;
        }
        k->v[n++] = k->v[i];
        if (e > maxexp)
            maxexp = e;
    }
    k->n = n;
    if (hit) {
        /* at least one slot was freed above, so this cannot fail */
        k->v[k->n].start = ms;
        k->v[k->n].end = me;
        k->n++;
        e = dtab_sum3(me, -1, d->lateness);
        if (e > maxexp)
            maxexp = e;
    }
    k->h.exp = dtab_bias(maxexp);
    if (k->h.exp == 0)
        k->h.exp = 1; /* keep the slot occupied; dead at any W reached */
    return hit;
}

/*
 * A window [rs, re) of a key against its sessions: merged into the live
 * ones it meets (a duplicate), or a session of its own (unique), or late
 * when it meets none and is dead at w. A record's window is
 * [ts, ts + G); a replayed changelog entry's is the session it left.
 * On unique and duplicate, *out (when not NULL) is the key's session
 * that now holds the window.
 */
static int dedup_session(struct dedup *d, XXH128_hash_t h, weir_ts_t rs,
                         weir_ts_t re, weir_ts_t w, struct sess *out)
{
    struct skey *k;
    uint64_t wb;
    int live;
    int rc;

    wb = dtab_bias(w);
    rc = dtab_reserve(&d->t, wb);
    if (rc != WEIR_OK)
        return rc;
    k = (struct skey *)(void *)dtab_probe(&d->t, sizeof(struct skey), h.low64,
                                          h.high64, wb, &live);
    if (live) {
        rc = sess_merge(d, k, rs, re, w);
        if (rc > 0 && out != NULL)
            *out = k->v[k->n - 1]; /* the merged session is appended */
        if (rc != 0)
            return rc < 0 ? rc : DEDUP_DUPLICATE;
    }
    if (dtab_sum3(re, -1, d->lateness) <= w)
        return DEDUP_LATE;
    if (!live) {
        /* a dead slot (this key's or another's) or an empty one */
        if (k->h.exp == 0)
            d->t.used++;
        k->h.lo = h.low64;
        k->h.hi = h.high64;
        k->n = 0;
    }
    rc = sess_append(k, rs, re);
    if (rc == WEIR_OK && out != NULL)
        *out = k->v[k->n - 1];
    if (rc != WEIR_OK) {
        if (k->n == 0)
            k->h.exp = 1; /* nothing live: leave a dead slot behind */
        return rc;
    }
    if (dtab_bias(dtab_sum3(re, -1, d->lateness)) > k->h.exp || !live)
        k->h.exp = dtab_bias(dtab_sum3(re, -1, d->lateness));
    return DEDUP_UNIQUE;
}

/* ------------------------------------------------------------------ *
 * ## The operator
 * ------------------------------------------------------------------ */

static int dedup_open(weir_ctx_t *ctx, void *st)
{
    struct dedup *d = st;
    const weir_window_t *scope;
    const char *dir;
    size_t stride;
    int rc;

    scope = weir_ctx_opaque(ctx);
    if (scope == NULL)
        return weir_ctx_error(ctx, WEIR_EINVAL, "dedup without a scope");
    d->changelog = weir_ctx_has_output(ctx, WEIR_TAG_CHANGELOG);
    d->kind = weir_window_kind(scope);
    d->size = weir_window_size(scope);
    d->lateness = weir_window_lateness(scope);
    if (d->kind != WEIR_WINDOW_ROLLING && d->kind != WEIR_WINDOW_TUMBLING &&
        d->kind != WEIR_WINDOW_SESSION)
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "dedup scope must be rolling, tumbling or "
                              "session");
    if (d->size < 0 || d->lateness < 0 ||
        (d->kind != WEIR_WINDOW_ROLLING && d->size <= 0))
        return weir_ctx_error(ctx, WEIR_EINVAL, "dedup scope out of range");
    stride = d->kind == WEIR_WINDOW_SESSION ? sizeof(struct skey)
                                            : sizeof(struct dtab_head);
    rc = dtab_init(&d->t, stride,
                   d->kind == WEIR_WINDOW_SESSION ? drop_skey : NULL, 0);
    if (rc != WEIR_OK || d->kind == WEIR_WINDOW_SESSION)
        return rc;
    /* Checkpoints on disk: snapshots become chains of segment files. */
    dir = weir_ctx_state_dir(ctx);
    if (dir == NULL)
        return WEIR_OK;
    rc = dstore_init(&d->store, dir, (uint64_t)d->kind);
    if (rc != WEIR_OK)
        return rc;
    d->incremental = 1;
    d->t.log = &d->log;
    return WEIR_OK;
}

static void dedup_close(weir_ctx_t *ctx, void *st)
{
    struct dedup *d = st;

    (void)ctx;
    dtab_free(&d->t);
    weir_free(d->log.v);
    if (d->incremental)
        dstore_free(&d->store);
    memset(d, 0, sizeof(*d));
}

static int route(weir_ctx_t *ctx, const weir_record_t *in, int cls)
{
    switch (cls) {
    case DEDUP_UNIQUE:
        return weir_forward(ctx, in);
    case DEDUP_DUPLICATE:
        return weir_forward_to(ctx, WEIR_TAG_DUPLICATE, in);
    case DEDUP_LATE:
        return weir_forward_to(ctx, WEIR_TAG_LATE, in);
    default:
        return weir_ctx_error(ctx, cls, "dedup: %s", weir_strerror(cls));
    }
}

/* The digest a record's (key, time) is looked up under. */
static XXH128_hash_t digest(const struct dedup *d, weir_buf_t key, weir_ts_t ts)
{
    if (d->kind == WEIR_WINDOW_TUMBLING)
        return dedup_tumbling_digest(key.data, key.len,
                                     weir_window_floor(ts, d->size));
    return XXH3_128bits(key.data, key.len);
}

/*
 * Applies a changelog entry: the state a record of key at ts left behind
 * when it claimed (rolling, tumbling) or joined a session. Rolling keeps
 * the later expiry when the key is live already (a key claimed again
 * after its state had expired); what is dead at w is not restored.
 */
static int apply_entry(struct dedup *d, weir_buf_t key, weir_ts_t ts,
                       weir_buf_t value, weir_ts_t w)
{
    XXH128_hash_t h = digest(d, key, ts);
    weir_ts_t start;
    weir_ts_t end;
    uint64_t be;
    int rc;

    switch (d->kind) {
    case WEIR_WINDOW_ROLLING:
        return dtab_merge_claim(&d->t, h.low64, h.high64,
                                dedup_rolling_exp(ts, d->size, d->lateness), w);
    case WEIR_WINDOW_TUMBLING:
        start = weir_window_floor(ts, d->size);
        return dtab_merge_claim(&d->t, h.low64, h.high64,
                                dedup_tumbling_exp(start, d->size, d->lateness),
                                w);
    default:
        /* the session the record left: [ts, end) (value: end, 8 bytes
         * big-endian); a plain record stands for [ts, ts + G) */
        if (value.len == 8) {
            memcpy(&be, value.data, sizeof(be));
            end = (weir_ts_t)be64toh(be);
        } else {
            end = dtab_sum3(ts, d->size, 0);
        }
        if (end < ts)
            return WEIR_ECORRUPT;
        rc = dedup_session(d, h, ts, end, w, NULL);
        return rc < 0 ? rc : WEIR_OK;
    }
}

/* ------------------------------------------------------------------ *
 * ## Classification
 *
 * The table's probes are cache misses: at a million keys each costs a
 * trip to memory. The runtime calls dedup_prefetch for records a few
 * places ahead of the one being processed (records that came in a
 * batch); it computes the record's digest, asks the CPU to fetch the
 * slot where its probe will start, and keeps the digest in a FIFO for
 * process. Records are processed in the order they were prefetched; one
 * that is not at the front (it came another way) empties the FIFO and
 * is hashed as usual. A memo is used only for the same record, key
 * bytes and time it was made for.
 * ------------------------------------------------------------------ */

static void dedup_prefetch(void *st, const weir_record_t *in, weir_buf_t key)
{
    struct dedup *d = st;
    struct memo *m;

    if (d->memo_head - d->memo_tail == MEMO_CAP)
        return; /* full: process will hash this one itself */
    m = &d->memo[d->memo_head++ % MEMO_CAP];
    m->rec = in;
    m->key = key.data;
    m->len = key.len;
    m->ts = weir_record_ts(in);
    m->h = digest(d, key, m->ts);
    dtab_prefetch(&d->t, m->h.low64);
}

/* Takes the FIFO's front when it was made for (in, key, ts); any other
 * front empties the FIFO. NULL when there is no such memo. */
static const struct memo *take_memo(struct dedup *d, const weir_record_t *in,
                                    weir_buf_t key, weir_ts_t ts)
{
    const struct memo *m;

    if (d->memo_head == d->memo_tail)
        return NULL;
    m = &d->memo[d->memo_tail % MEMO_CAP];
    if (m->rec == in && m->key == key.data && m->len == key.len &&
        m->ts == ts) {
        d->memo_tail++;
        return m;
    }
    d->memo_head = d->memo_tail = 0;
    return NULL;
}

static XXH128_hash_t take_digest(struct dedup *d, const weir_record_t *in,
                                 weir_buf_t key, weir_ts_t ts)
{
    const struct memo *m = take_memo(d, in, key, ts);

    return m != NULL ? m->h : digest(d, key, ts);
}

static int classify(struct dedup *d, const weir_record_t *in, weir_buf_t key,
                    weir_ts_t ts, weir_ts_t w)
{
    XXH128_hash_t h = take_digest(d, in, key, ts);

    switch (d->kind) {
    case WEIR_WINDOW_ROLLING:
        return dedup_rolling_h(&d->t, h, ts, w, d->size, d->lateness);
    case WEIR_WINDOW_TUMBLING:
        return dedup_tumbling_h(&d->t, h, weir_window_floor(ts, d->size), w,
                                d->size, d->lateness);
    default:
        return dedup_session(d, h, ts, dtab_sum3(ts, d->size, 0), w, &d->last);
    }
}

/* 1 when a record classified cls changed the state (see apply_entry). */
static int changed_state(const struct dedup *d, int cls)
{
    return cls == DEDUP_UNIQUE ||
           (cls == DEDUP_DUPLICATE && d->kind == WEIR_WINDOW_SESSION);
}

/* The changelog entry of a record that changed the state: its key and
 * time; for sessions, the session it is now part of ([ts, end): time =
 * start, value = end as 8 bytes big-endian). */
static int emit_change(weir_ctx_t *ctx, const struct dedup *d,
                       const weir_record_t *in, weir_buf_t key, weir_ts_t ts)
{
    uint64_t end;

    if (d->kind != WEIR_WINDOW_SESSION)
        return weir_forward_with(ctx, WEIR_TAG_CHANGELOG, in, key,
                                 WEIR_BUF_NULL, ts);
    end = htobe64((uint64_t)d->last.end);
    return weir_forward_with(ctx, WEIR_TAG_CHANGELOG, in, key,
                             WEIR_BUF(&end, sizeof(end)), d->last.start);
}

static int dedup_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct dedup *d = st;
    weir_buf_t key;
    weir_ts_t ts;
    weir_ts_t w;
    int cls;
    int rc;

    key = weir_ctx_key(ctx);
    ts = weir_record_ts(in);
    w = weir_ctx_watermark(ctx);
    d->credit += SWEEP_PER_RECORD;
    if (d->log.n > 2 * d->t.used + BASE_MIN_ENTRIES) {
        d->log.n = 0; /* churn: the next snapshot is a base anyway */
        d->log.lost = 1;
    }
    if (weir_record_is_replay(in)) {
        (void)take_memo(d, in, key, ts); /* keeps the FIFO in step */
        rc = apply_entry(d, key, ts, weir_record_value(in), w);
        return rc == WEIR_OK
                   ? WEIR_OK
                   : weir_ctx_error(ctx, rc, "dedup: %s", weir_strerror(rc));
    }
    cls = classify(d, in, key, ts, w);
    if (d->changelog && changed_state(d, cls)) {
        rc = emit_change(ctx, d, in, key, ts);
        if (rc != WEIR_OK)
            return rc;
    }
    return route(ctx, in, cls);
}

static int dedup_on_watermark(weir_ctx_t *ctx, void *st, weir_ts_t wm)
{
    struct dedup *d = st;
    size_t budget;
    int rc;

    d->credit += SWEEP_PER_WM;
    if (d->credit < SWEEP_BATCH)
        return WEIR_OK;
    budget = d->credit;
    d->credit = 0;
    rc = dtab_sweep(&d->t, dtab_bias(wm), budget);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "dedup: %s", weir_strerror(rc));
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Snapshot and restore
 *
 * u64 version, u64 kind, u64 n, then n entries. Rolling and tumbling:
 * 24 bytes each, little-endian lo, hi, exp (unbiased, signed), written
 * in chunks. Session: u64 lo, u64 hi, u64 m, then m pairs i64 start,
 * i64 end.
 * ------------------------------------------------------------------ */

/* Little-endian stores and loads (a single move on x86 and arm64). */
static inline void put_le64(unsigned char *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

static inline uint64_t get_le64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static size_t count_live(const dtab_t *t, uint64_t wb)
{
    size_t n;
    size_t i;

    n = 0;
    for (i = 0; i <= t->mask; i++) {
        if (dtab_slot(t, i)->exp > wb)
            n++;
    }
    return n;
}

static int snapshot_flat(const dtab_t *t, uint64_t wb, weir_writer_t *w)
{
    unsigned char buf[CHUNK_ENTRIES * 24];
    const struct dtab_head *e;
    size_t fill;
    size_t i;
    int rc;

    fill = 0;
    for (i = 0; i <= t->mask; i++) {
        e = dtab_slot(t, i);
        if (e->exp <= wb)
            continue;
        put_le64(buf + fill * 24, e->lo);
        put_le64(buf + fill * 24 + 8, e->hi);
        put_le64(buf + fill * 24 + 16, (uint64_t)dtab_unbias(e->exp));
        if (++fill < CHUNK_ENTRIES)
            continue;
        rc = weir_write_bytes(w, buf, fill * 24);
        if (rc != WEIR_OK)
            return rc;
        fill = 0;
    }
    return fill > 0 ? weir_write_bytes(w, buf, fill * 24) : WEIR_OK;
}

static int snapshot_sessions(const struct dedup *d, weir_ts_t wm,
                             weir_writer_t *w)
{
    const struct skey *k;
    uint64_t m;
    uint32_t j;
    size_t i;
    int rc;

    for (i = 0; i <= d->t.mask; i++) {
        k = (const struct skey *)(void *)dtab_slot(&d->t, i);
        if (k->h.exp <= dtab_bias(wm))
            continue;
        m = 0;
        for (j = 0; j < k->n; j++)
            m += sess_exp(d, &k->v[j]) > wm;
        rc = weir_write_u64(w, k->h.lo);
        if (rc == WEIR_OK)
            rc = weir_write_u64(w, k->h.hi);
        if (rc == WEIR_OK)
            rc = weir_write_u64(w, m);
        for (j = 0; rc == WEIR_OK && j < k->n; j++) {
            if (sess_exp(d, &k->v[j]) <= wm)
                continue;
            rc = weir_write_i64(w, k->v[j].start);
            if (rc == WEIR_OK)
                rc = weir_write_i64(w, k->v[j].end);
        }
        if (rc != WEIR_OK)
            return rc;
    }
    return WEIR_OK;
}

/* Writes every live entry as the base segment `id`. */
static int write_base(struct dedup *d, uint64_t id, uint64_t wb, char *err,
                      size_t errsz)
{
    struct dtab_head *v;
    const struct dtab_head *e;
    size_t n = 0;
    size_t i;
    int rc;

    v = weir_malloc((count_live(&d->t, wb) + 1) * sizeof(*v));
    if (v == NULL)
        return WEIR_ENOMEM;
    for (i = 0; i <= d->t.mask; i++) {
        e = dtab_slot(&d->t, i);
        if (e->exp > wb)
            v[n++] = *e;
    }
    rc = dstore_append(&d->store, id, 1, v, n, err, errsz);
    weir_free(v);
    return rc;
}

/*
 * Incremental snapshot `id`: a delta segment with the entries claimed
 * since the last snapshot, or a base segment when there is no chain yet,
 * the log is incomplete, the chain is at its longest, or its deltas
 * would exceed BASE_FACTOR tables (so restores read a bounded amount and
 * the work stays O(1) per record amortised). The blob names the chain.
 */
static int snapshot_chain(weir_ctx_t *ctx, struct dedup *d, weir_writer_t *w,
                          uint64_t id)
{
    const dstore_t *s = &d->store;
    uint64_t full = d->t.used > BASE_MIN_ENTRIES ? d->t.used : BASE_MIN_ENTRIES;
    char err[256] = "";
    size_t i;
    int rc;

    if (s->nchain == 0 || d->log.lost || s->nchain >= DSTORE_MAX_CHAIN ||
        s->chain_entries + d->log.n > BASE_FACTOR * full)
        rc = write_base(d, id, dtab_bias(weir_ctx_watermark(ctx)), err,
                        sizeof(err));
    else if (d->log.n > 0)
        rc = dstore_append(&d->store, id, 0, d->log.v, d->log.n, err,
                           sizeof(err));
    else
        rc = dstore_note(&d->store, id);
    if (rc != WEIR_OK)
        return err[0] ? weir_ctx_error(ctx, rc, "%s", err) : rc;
    d->log.n = 0;
    d->log.lost = 0;
    rc = weir_write_u64(w, SNAPSHOT_CHAIN);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, (uint64_t)d->kind);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, id);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, s->chain_entries);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, s->nchain);
    for (i = 0; rc == WEIR_OK && i < s->nchain; i++)
        rc = weir_write_u64(w, s->chain[i]);
    return rc;
}

static int dedup_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                          uint64_t checkpoint_id)
{
    struct dedup *d = st;
    weir_ts_t wm;
    int rc;

    if (d->incremental)
        return snapshot_chain(ctx, d, w, checkpoint_id);
    wm = weir_ctx_watermark(ctx);
    rc = weir_write_u64(w, SNAPSHOT_VERSION);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, (uint64_t)d->kind);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, count_live(&d->t, dtab_bias(wm)));
    if (rc != WEIR_OK)
        return rc;
    if (d->kind == WEIR_WINDOW_SESSION)
        return snapshot_sessions(d, wm, w);
    return snapshot_flat(&d->t, dtab_bias(wm), w);
}

/* Inserts a restored entry; digests in a snapshot are distinct. */
static struct dtab_head *restore_slot(dtab_t *t, uint64_t lo, uint64_t hi)
{
    struct dtab_head *e;
    int live;

    e = dtab_probe(t, t->stride, lo, hi, 0, &live);
    if (e->exp == 0)
        t->used++;
    e->lo = lo;
    e->hi = hi;
    return e;
}

static int restore_flat(weir_ctx_t *ctx, struct dedup *d, uint64_t n,
                        weir_reader_t *r)
{
    unsigned char buf[CHUNK_ENTRIES * 24];
    struct dtab_head *e;
    uint64_t done;
    size_t chunk;
    size_t i;
    int rc;

    for (done = 0; done < n; done += chunk) {
        chunk = n - done < CHUNK_ENTRIES ? (size_t)(n - done) : CHUNK_ENTRIES;
        rc = weir_read_bytes(r, buf, chunk * 24);
        if (rc != WEIR_OK)
            return rc;
        for (i = 0; i < chunk; i++) {
            e = restore_slot(&d->t, get_le64(buf + i * 24),
                             get_le64(buf + i * 24 + 8));
            e->exp = dtab_bias((weir_ts_t)get_le64(buf + i * 24 + 16));
            if (e->exp == 0)
                return weir_ctx_error(ctx, WEIR_ECORRUPT,
                                      "dedup snapshot: bad entry");
        }
    }
    return WEIR_OK;
}

static int restore_sessions(weir_ctx_t *ctx, struct dedup *d, uint64_t n,
                            weir_reader_t *r)
{
    struct skey *k;
    weir_ts_t start;
    weir_ts_t end;
    weir_ts_t maxexp;
    uint64_t lo;
    uint64_t hi;
    uint64_t m;
    uint64_t i;
    uint64_t j;
    int rc;

    for (i = 0; i < n; i++) {
        rc = weir_read_u64(r, &lo);
        if (rc == WEIR_OK)
            rc = weir_read_u64(r, &hi);
        if (rc == WEIR_OK)
            rc = weir_read_u64(r, &m);
        if (rc != WEIR_OK)
            return rc;
        if (m == 0 || m > UINT32_MAX / 2)
            return weir_ctx_error(ctx, WEIR_ECORRUPT,
                                  "dedup snapshot: bad session count");
        k = (struct skey *)(void *)restore_slot(&d->t, lo, hi);
        k->h.exp = 1;
        k->n = 0;
        maxexp = WEIR_TS_MIN;
        for (j = 0; j < m; j++) {
            rc = weir_read_i64(r, &start);
            if (rc == WEIR_OK)
                rc = weir_read_i64(r, &end);
            if (rc == WEIR_OK)
                rc = sess_append(k, start, end);
            if (rc != WEIR_OK)
                return rc;
            if (dtab_sum3(end, -1, d->lateness) > maxexp)
                maxexp = dtab_sum3(end, -1, d->lateness);
        }
        k->h.exp = dtab_bias(maxexp) == 0 ? 1 : dtab_bias(maxexp);
    }
    return WEIR_OK;
}

/* A table of at least 2n + 2 slots for n entries to come. */
static int size_for(struct dedup *d, uint64_t n)
{
    size_t cap = DTAB_MIN_CAP;

    if (n > (SIZE_MAX / 4) / d->t.stride)
        return WEIR_ECORRUPT;
    while (cap < 2 * (size_t)n + 2)
        cap <<= 1;
    return dtab_resize(&d->t, cap, 0);
}

/* Replays segments in chain order; a later entry of a digest wins. */
static int apply_segments(weir_ctx_t *ctx, struct dedup *d,
                          struct dtab_head **seg, const size_t *nseg,
                          size_t nchain)
{
    struct dtab_head *e;
    size_t i;
    size_t j;

    for (i = 0; i < nchain; i++) {
        for (j = 0; j < nseg[i]; j++) {
            if (seg[i][j].exp == 0)
                return weir_ctx_error(ctx, WEIR_ECORRUPT,
                                      "dedup snapshot: bad entry");
            e = restore_slot(&d->t, seg[i][j].lo, seg[i][j].hi);
            e->exp = seg[i][j].exp;
        }
    }
    return WEIR_OK;
}

/* Reads the chain's segments, sizes the table, replays them. */
static int load_chain(weir_ctx_t *ctx, struct dedup *d, const uint64_t *ids,
                      size_t nchain)
{
    struct dtab_head *seg[DSTORE_MAX_CHAIN] = {0};
    size_t nseg[DSTORE_MAX_CHAIN] = {0};
    uint64_t total = 0;
    char err[256] = "";
    size_t i;
    int base;
    int rc = WEIR_OK;

    for (i = 0; rc == WEIR_OK && i < nchain; i++) {
        rc = dstore_read(&d->store, ids[i], &seg[i], &nseg[i], &base, err,
                         sizeof(err));
        if (rc == WEIR_OK && base != (i == 0)) {
            rc = WEIR_ECORRUPT;
            snprintf(err, sizeof(err),
                     "dedup snapshot: segment %llu is %s a base",
                     (unsigned long long)ids[i], base ? "unexpectedly" : "not");
        }
        total += nseg[i];
    }
    if (rc == WEIR_OK)
        rc = size_for(d, total);
    if (rc == WEIR_OK)
        rc = apply_segments(ctx, d, seg, nseg, nchain);
    for (i = 0; i < nchain; i++)
        weir_free(seg[i]);
    if (rc != WEIR_OK && err[0] != '\0')
        return weir_ctx_error(ctx, rc, "%s", err);
    return rc;
}

static int restore_chain(weir_ctx_t *ctx, struct dedup *d, weir_reader_t *r)
{
    uint64_t ids[DSTORE_MAX_CHAIN];
    uint64_t id;
    uint64_t entries;
    uint64_t n;
    uint64_t i;
    int rc;

    rc = weir_read_u64(r, &id);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &entries);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &n);
    if (rc != WEIR_OK)
        return rc;
    if (n == 0 || n > DSTORE_MAX_CHAIN)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "dedup snapshot: a chain of %llu segments",
                              (unsigned long long)n);
    for (i = 0; rc == WEIR_OK && i < n; i++)
        rc = weir_read_u64(r, &ids[i]);
    if (rc != WEIR_OK)
        return rc;
    if (!d->incremental)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "dedup snapshot: it refers to segment files, "
                              "but this instance has no state directory");
    rc = load_chain(ctx, d, ids, (size_t)n);
    if (rc == WEIR_OK)
        rc = dstore_adopt(&d->store, id, ids, (size_t)n, entries);
    return rc;
}

static int dedup_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct dedup *d = st;
    uint64_t version;
    uint64_t kind;
    uint64_t n;
    size_t cap;
    int rc;

    rc = weir_read_u64(r, &version);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &kind);
    if (rc == WEIR_OK && version == SNAPSHOT_CHAIN && kind == (uint64_t)d->kind)
        return restore_chain(ctx, d, r);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &n);
    if (rc != WEIR_OK)
        return rc;
    if (version != SNAPSHOT_VERSION || kind != (uint64_t)d->kind)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "dedup snapshot: version %llu kind %llu, "
                              "expected version %d kind %d",
                              (unsigned long long)version,
                              (unsigned long long)kind, SNAPSHOT_VERSION,
                              (int)d->kind);
    if (n > (SIZE_MAX / 4) / d->t.stride)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "dedup snapshot: %llu entries",
                              (unsigned long long)n);
    cap = DTAB_MIN_CAP;
    while (cap < 2 * (size_t)n + 2)
        cap <<= 1;
    rc = dtab_resize(&d->t, cap, 0);
    if (rc != WEIR_OK)
        return rc;
    if (d->kind == WEIR_WINDOW_SESSION)
        return restore_sessions(ctx, d, n, r);
    return restore_flat(ctx, d, n, r);
}

/* Deletes the segments no retained checkpoint refers to any more. */
static int dedup_complete(weir_ctx_t *ctx, void *st, uint64_t checkpoint_id)
{
    struct dedup *d = st;
    const char *v = weir_ctx_conf(ctx, "checkpoint.retain");
    unsigned long long retain = v != NULL ? strtoull(v, NULL, 10) : 2;

    if (d->incremental)
        dstore_forget(&d->store, checkpoint_id, retain);
    return WEIR_OK;
}

static const weir_operator_def_t dedup_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "dedup",
    .flags = WEIR_OP_F_KEYED,
    .state_size = sizeof(struct dedup),
    .open = dedup_open,
    .process = dedup_process,
    .prefetch = dedup_prefetch,
    .on_watermark = dedup_on_watermark,
    .snapshot = dedup_snapshot,
    .restore = dedup_restore,
    .on_checkpoint_complete = dedup_complete,
    .close = dedup_close,
};

/* ------------------------------------------------------------------ *
 * ## Builder and harness
 * ------------------------------------------------------------------ */

static void destroy_scope(void *ptr)
{
    weir_window_destroy(ptr);
}

/* NULL when scope is a valid dedup scope, else why not. */
static const char *scope_problem(const weir_window_t *scope)
{
    weir_window_kind_t kind;

    if (scope == NULL)
        return "no scope (invalid window arguments?)";
    kind = weir_window_kind(scope);
    if (kind == WEIR_WINDOW_SLIDING)
        return "sliding windows are not a dedup scope";
    if (kind != WEIR_WINDOW_ROLLING && kind != WEIR_WINDOW_TUMBLING &&
        kind != WEIR_WINDOW_SESSION)
        return "unknown scope kind";
    return NULL;
}

weir_stream_t *weir_stream_dedup_scope(weir_stream_t *s, weir_window_t *scope)
{
    const char *why;
    int rc;

    if (s == NULL || !weir_stream_ok(s)) {
        weir_window_destroy(scope);
        return s;
    }
    why = scope_problem(scope);
    if (why != NULL) {
        weir_window_destroy(scope);
        return weir_stream_error(s, WEIR_EINVAL, why);
    }
    rc = weir_pipeline_attach(weir_stream_pipeline(s), scope, destroy_scope);
    if (rc != WEIR_OK)
        return weir_stream_error(s, rc, "weir_stream_dedup: out of memory");
    return weir_stream_apply(s, &dedup_def, scope);
}

weir_stream_t *weir_stream_dedup(weir_stream_t *s, weir_ts_t ttl)
{
    weir_window_t *scope;

    if (s == NULL || !weir_stream_ok(s))
        return s;
    if (ttl < 0)
        return weir_stream_error(s, WEIR_EINVAL,
                                 "weir_stream_dedup: ttl must be >= 0");
    scope = weir_window_rolling(ttl);
    if (scope == NULL)
        return weir_stream_error(s, WEIR_ENOMEM,
                                 "weir_stream_dedup: out of memory");
    return weir_stream_dedup_scope(s, scope);
}

weir_harness_t *weir_harness_new_dedup(weir_window_t *scope)
{
    weir_harness_t *h;

    if (scope_problem(scope) != NULL) {
        weir_window_destroy(scope);
        return NULL;
    }
    h = weir_harness_new(&dedup_def, scope);
    if (h == NULL) {
        weir_window_destroy(scope);
        return NULL;
    }
    if (weir_harness_attach(h, scope, destroy_scope) != WEIR_OK) {
        weir_harness_destroy(h);
        return NULL;
    }
    return h;
}
