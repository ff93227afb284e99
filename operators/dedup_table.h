/*
 * operators/dedup_table.h - the open-addressing table behind the dedup
 * operator (operators/dedup.c), header-only so that bench/bench_dedup.c
 * can measure exactly the code the operator runs.
 *
 * Each slot starts with a head: a 128-bit XXH3 digest of what identifies
 * the state (the key; for tumbling scopes the key seeded with the window
 * start) and an expiry time. The digest replaces the key bytes, so a
 * slot costs 24 bytes whatever the key length; the session table (in
 * dedup.c) appends a pointer to the key's sessions. A collision of two
 * 128-bit digests is far less likely than a hardware fault, and is
 * accepted.
 *
 * How it works
 *   Linear probing from the low bits of the digest. The expiry is stored
 *   biased (sign bit flipped) so that unsigned order equals signed order
 *   and 0, the bias of WEIR_TS_MIN, marks an empty slot: memory from
 *   weir_calloc is an empty table. An entry is live while exp > W (W the
 *   current watermark) and dead afterwards; nothing is ever deleted.
 *   Dead entries count as absent: a probe runs to an empty slot (or to
 *   the entry with the same digest) and remembers the first dead slot on
 *   its way, where an insert goes. So expired state is reused without a
 *   timer, and a key has at most one slot.
 *   `used` counts non-empty slots, live or dead. When it reaches 3/4 of
 *   the capacity the table is rebuilt: dead entries are dropped and the
 *   live ones re-inserted into a table sized so that they fill at most
 *   half of it. Growing (x2) or keeping the size is done in place
 *   (weir_realloc, then a rehash in one pass): the pages already in use
 *   are kept, nothing is copied to a second table, and the peak memory
 *   is the new table alone. A sweep, paid for by records and watermarks
 *   (a few slots each), counts live entries over a full pass; a pass
 *   that finds the table less than 1/8 live shrinks it into a fresh,
 *   smaller allocation. Memory is thus bounded by the live entries, not
 *   by history.
 *
 *   Cost, measured by bench/bench_dedup.c: a probe is one cache miss
 *   like in a bare set of keys; the 128-bit digest and the 24-byte slot
 *   (against a 64-bit hash and 16-byte slots) and growth without
 *   presizing make up the difference.
 *
 * Invariants
 *   - used < capacity (there is always an empty slot: probes end).
 *   - No two non-empty slots hold the same digest.
 *   - Every non-empty slot has exp != 0; a slot whose state must be kept
 *     for probing but is no longer live holds an exp <= the watermark.
 *   - Capacity is a power of two, at least DTAB_MIN_CAP.
 */
#ifndef WEIR_DEDUP_TABLE_H
#define WEIR_DEDUP_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <weir.h>

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

#define DTAB_MIN_CAP 16
#define DTAB_BIAS    (UINT64_C(1) << 63)

/* The head of every slot. */
struct dtab_head {
    uint64_t lo;  /* digest, low half: also picks the home slot */
    uint64_t hi;  /* digest, high half                           */
    uint64_t exp; /* biased expiry; 0 = empty slot               */
};

/* Called for a dead or remaining slot when the table drops it. */
typedef void (*dtab_drop_fn)(struct dtab_head *slot);

/* Entries claimed since the log was last emptied, in claim order, for
 * incremental snapshots. `lost` is set when an append could not grow the
 * log: the log is then incomplete and the next snapshot must be full. */
struct dtab_log {
    struct dtab_head *v; /* claimed entries (lo, hi, exp)  */
    size_t n;            /* how many                       */
    size_t cap;          /* capacity of v                  */
    int lost;            /* an append failed               */
};

typedef struct dtab {
    unsigned char *slots; /* capacity * stride bytes               */
    size_t stride;        /* bytes per slot (>= sizeof head)       */
    size_t mask;          /* capacity - 1                          */
    size_t used;          /* non-empty slots (live or dead)        */
    size_t limit;         /* rebuild when used reaches this        */
    size_t sweep_pos;     /* next slot the sweep looks at          */
    size_t sweep_live;    /* live slots seen in the current pass   */
    dtab_drop_fn drop;    /* frees what a slot owns, or NULL       */
    struct dtab_log *log; /* claims are appended here, or NULL     */
} dtab_t;

/* The biased form of a time: order-preserving, WEIR_TS_MIN -> 0. */
static inline uint64_t dtab_bias(weir_ts_t ts)
{
    return (uint64_t)ts ^ DTAB_BIAS;
}

static inline weir_ts_t dtab_unbias(uint64_t b)
{
    return (weir_ts_t)(b ^ DTAB_BIAS);
}

/* a + b + c, clamped to [WEIR_TS_MIN, WEIR_TS_MAX]. */
static inline weir_ts_t dtab_sum3(weir_ts_t a, weir_ts_t b, weir_ts_t c)
{
#ifdef __SIZEOF_INT128__
    __int128 s;

    s = (__int128)a + b + c;
    if (s > (__int128)WEIR_TS_MAX)
        return WEIR_TS_MAX;
    if (s < (__int128)WEIR_TS_MIN)
        return WEIR_TS_MIN;
    return (weir_ts_t)s;
#else
    weir_ts_t s;

    if (__builtin_add_overflow(a, b, &s))
        s = a > 0 ? WEIR_TS_MAX : WEIR_TS_MIN;
    if (__builtin_add_overflow(s, c, &s))
        s = c > 0 ? WEIR_TS_MAX : WEIR_TS_MIN;
    return s;
#endif
}

static inline struct dtab_head *dtab_slot(const dtab_t *t, size_t i)
{
    return (struct dtab_head *)(void *)(t->slots + i * t->stride);
}

/* The same with a stride known at the call site (lets the compiler
 * turn the multiplication into address arithmetic on the hot path). */
static inline struct dtab_head *dtab_slot_s(const dtab_t *t, size_t i,
                                            size_t stride)
{
    return (struct dtab_head *)(void *)(t->slots + i * stride);
}

static inline size_t dtab_capacity(const dtab_t *t)
{
    return t->mask + 1;
}

/* A hint: the slot where a probe for digest lo starts will be read
 * soon. Only a hint: the table may grow before the probe. */
static inline void dtab_prefetch(const dtab_t *t, uint64_t lo)
{
    if (t->slots != NULL)
        __builtin_prefetch(dtab_slot(t, (size_t)lo & t->mask), 1);
}

/* Bytes the table itself holds (slots only). */
static inline size_t dtab_bytes(const dtab_t *t)
{
    return t->slots == NULL ? 0 : dtab_capacity(t) * t->stride;
}

static inline int dtab_init(dtab_t *t, size_t stride, dtab_drop_fn drop,
                            size_t cap)
{
    size_t c;

    memset(t, 0, sizeof(*t));
    c = DTAB_MIN_CAP;
    while (c < cap)
        c <<= 1;
    t->slots = weir_calloc(c, stride);
    if (t->slots == NULL)
        return WEIR_ENOMEM;
    t->stride = stride;
    t->mask = c - 1;
    t->limit = c - c / 4;
    t->drop = drop;
    return WEIR_OK;
}

/* Frees the table; drop (when set) sees every non-empty slot. */
static inline void dtab_free(dtab_t *t)
{
    size_t i;

    if (t->slots != NULL && t->drop != NULL) {
        for (i = 0; i <= t->mask; i++) {
            if (dtab_slot(t, i)->exp != 0)
                t->drop(dtab_slot(t, i));
        }
    }
    weir_free(t->slots);
    memset(t, 0, sizeof(*t));
}

/*
 * Finds the slot for digest (lo, hi) at biased watermark wb. *live is 1
 * when the returned slot is the digest's live entry; otherwise the slot
 * is where an entry for the digest goes (its own dead entry, the first
 * dead slot on the probe path, or the empty slot that ended it).
 * stride must equal t->stride (pass a constant).
 */
static inline struct dtab_head *dtab_probe(const dtab_t *t, size_t stride,
                                           uint64_t lo, uint64_t hi,
                                           uint64_t wb, int *live)
{
    const size_t mask = t->mask;
    struct dtab_head *reuse;
    struct dtab_head *e;
    size_t i;

    reuse = NULL;
    i = (size_t)lo & mask;
    for (;;) {
        e = dtab_slot_s(t, i, stride);
        if (e->exp == 0) {
            *live = 0;
            return reuse != NULL ? reuse : e;
        }
        if (e->lo == lo && e->hi == hi) {
            *live = e->exp > wb;
            return e;
        }
        if (reuse == NULL && e->exp <= wb)
            reuse = e;
        i = (i + 1) & mask;
    }
}

static inline void dtab_log_add(struct dtab_log *l, const struct dtab_head *e)
{
    struct dtab_head *v;
    size_t cap;

    if (l->n == l->cap) {
        cap = l->cap ? l->cap * 2 : 1024;
        v = weir_realloc(l->v, cap * sizeof(*v));
        if (v == NULL) {
            l->lost = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *e;
}

/* Stores an entry into a slot returned by dtab_probe (exp != 0). The
 * slot's previous content, when dead, is overwritten. */
static inline void dtab_claim(dtab_t *t, struct dtab_head *e, uint64_t lo,
                              uint64_t hi, uint64_t exp)
{
    if (e->exp == 0)
        t->used++;
    e->lo = lo;
    e->hi = hi;
    e->exp = exp;
    if (t->log != NULL)
        dtab_log_add(t->log, e);
}

/* Moves the live entries (exp > wb) into a fresh table of cap slots
 * (used to shrink, and to size a table for a restore); dead ones are
 * dropped. On failure the table is left as it was. */
static inline int dtab_resize(dtab_t *t, size_t cap, uint64_t wb)
{
    unsigned char *slots;
    struct dtab_head *e;
    size_t mask;
    size_t live;
    size_t i;
    size_t j;

    slots = weir_calloc(cap, t->stride);
    if (slots == NULL)
        return WEIR_ENOMEM;
    mask = cap - 1;
    live = 0;
    for (i = 0; i <= t->mask; i++) {
        e = dtab_slot(t, i);
        if (e->exp == 0)
            continue;
        if (e->exp <= wb) {
            if (t->drop != NULL)
                t->drop(e);
            continue;
        }
        j = (size_t)e->lo & mask;
        while (((struct dtab_head *)(void *)(slots + j * t->stride))->exp != 0)
            j = (j + 1) & mask;
        memcpy(slots + j * t->stride, e, t->stride);
        live++;
    }
    weir_free(t->slots);
    t->slots = slots;
    t->mask = mask;
    t->used = live;
    t->limit = cap - cap / 4;
    t->sweep_pos = 0;
    t->sweep_live = 0;
    return WEIR_OK;
}

/* Empties a slot; drop (when set) first frees what it owns. */
static inline void dtab_clear(dtab_t *t, struct dtab_head *e, int drop)
{
    if (drop && t->drop != NULL)
        t->drop(e);
    memset(e, 0, t->stride);
}

/* Puts a copy of entry e where probing from its home ends (rehash). */
static inline void dtab_place(dtab_t *t, const struct dtab_head *e)
{
    size_t j;

    j = (size_t)e->lo & t->mask;
    while (dtab_slot(t, j)->exp != 0)
        j = (j + 1) & t->mask;
    memcpy(dtab_slot(t, j), e, t->stride);
}

/*
 * Rehashes in place into cap = capacity or 2 * capacity slots, dropping
 * dead entries. The run of entries at the start of the array (slots
 * 0..e0-1, e0 the first empty slot) may belong to a cluster that wrapped
 * around the end; it is set aside first. Every other entry's probe path
 * then lies between its home and its slot. Slots are visited in order;
 * each entry moves to where probing from its new home ends, counting its
 * own slot as free. Every slot before the one visited already holds its
 * final content, so the probe never passes an entry that will move
 * later, and ends at the visited slot at the latest. Finally the entries
 * set aside are inserted into the finished table. Growing with
 * weir_realloc keeps the pages already in use (no copy with an mremap-
 * capable allocator) and needs no second table.
 */
static inline int dtab_rehash_in_place(dtab_t *t, size_t cap, uint64_t wb)
{
    unsigned char *head;
    unsigned char *slots;
    struct dtab_head *e;
    size_t oldcap;
    size_t live;
    size_t e0;
    size_t i;
    size_t j;

    oldcap = dtab_capacity(t);
    e0 = 0;
    while (dtab_slot(t, e0)->exp != 0)
        e0++;
    head = NULL;
    if (e0 > 0) {
        head = weir_malloc(e0 * t->stride);
        if (head == NULL)
            return WEIR_ENOMEM;
        memcpy(head, t->slots, e0 * t->stride);
    }
    if (cap != oldcap) {
        slots = weir_realloc(t->slots, cap * t->stride);
        if (slots == NULL) {
            weir_free(head);
            return WEIR_ENOMEM;
        }
        t->slots = slots;
        memset(slots + oldcap * t->stride, 0, (cap - oldcap) * t->stride);
    }
    memset(t->slots, 0, e0 * t->stride);
    t->mask = cap - 1;
    live = 0;
    for (i = e0; i < oldcap; i++) {
        e = dtab_slot(t, i);
        if (e->exp == 0)
            continue;
        if (e->exp <= wb) {
            dtab_clear(t, e, 1);
            continue;
        }
        live++;
        j = (size_t)e->lo & t->mask;
        while (j != i && dtab_slot(t, j)->exp != 0)
            j = (j + 1) & t->mask;
        if (j == i)
            continue;
        memcpy(dtab_slot(t, j), e, t->stride);
        dtab_clear(t, e, 0);
    }
    for (i = 0; i < e0; i++) {
        e = (struct dtab_head *)(void *)(head + i * t->stride);
        if (e->exp <= wb) {
            if (t->drop != NULL)
                t->drop(e);
            continue;
        }
        dtab_place(t, e);
        live++;
    }
    weir_free(head);
    t->used = live;
    t->limit = cap - cap / 4;
    t->sweep_pos = 0;
    t->sweep_live = 0;
    return WEIR_OK;
}

/* Drops dead entries; the live ones end up filling at most half. */
static inline int dtab_rebuild(dtab_t *t, uint64_t wb)
{
    size_t live;
    size_t cap;
    size_t i;

    live = 0;
    for (i = 0; i <= t->mask; i++) {
        if (dtab_slot(t, i)->exp > wb)
            live++;
    }
    cap = DTAB_MIN_CAP;
    while (cap < 2 * live + 2)
        cap <<= 1;
    if (cap == dtab_capacity(t) || cap == 2 * dtab_capacity(t))
        return dtab_rehash_in_place(t, cap, wb);
    return dtab_resize(t, cap, wb);
}

/* Call before a probe that may insert: keeps an empty slot available. */
static inline int dtab_reserve(dtab_t *t, uint64_t wb)
{
    if (t->used < t->limit)
        return WEIR_OK;
    return dtab_rebuild(t, wb);
}

/* Looks at up to `budget` slots of the sweep; a pass that found fewer
 * than 1/8 of the slots live shrinks the table. */
static inline int dtab_sweep(dtab_t *t, uint64_t wb, size_t budget)
{
    size_t cap;

    cap = dtab_capacity(t);
    while (budget-- > 0) {
        if (dtab_slot(t, t->sweep_pos)->exp > wb)
            t->sweep_live++;
        if (++t->sweep_pos <= t->mask)
            continue;
        t->sweep_pos = 0;
        if (cap > DTAB_MIN_CAP && t->sweep_live * 8 < cap)
            return dtab_rebuild(t, wb);
        t->sweep_live = 0;
        return WEIR_OK;
    }
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## The rolling and tumbling rules (DESIGN §4), on a 24-byte table
 * ------------------------------------------------------------------ */

#define DEDUP_UNIQUE    0
#define DEDUP_DUPLICATE 1
#define DEDUP_LATE      2

/* The expiry of a rolling claim at ts: f + R - 1 + L. */
static inline weir_ts_t dedup_rolling_exp(weir_ts_t ts, weir_ts_t ttl,
                                          weir_ts_t lateness)
{
    return dtab_sum3(ts, ttl - 1, lateness);
}

/* The expiry of a tumbling window [start, start + S): end - 1 + L. */
static inline weir_ts_t dedup_tumbling_exp(weir_ts_t start, weir_ts_t size,
                                           weir_ts_t lateness)
{
    return dtab_sum3(dtab_sum3(start, size, 0), -1, lateness);
}

/* The digest of (key, window): the key seeded with the window start. */
static inline XXH128_hash_t dedup_tumbling_digest(const void *key, size_t len,
                                                  weir_ts_t start)
{
    return XXH3_128bits_withSeed(key, len, (XXH64_hash_t)start);
}

/*
 * A claim made elsewhere (a replayed changelog entry): the entry (lo, hi)
 * lives until at least exp. A live entry keeps the later expiry; nothing
 * dead at w is stored. WEIR_OK or WEIR_ENOMEM.
 */
static inline int dtab_merge_claim(dtab_t *t, uint64_t lo, uint64_t hi,
                                   weir_ts_t exp, weir_ts_t w)
{
    struct dtab_head *e;
    uint64_t wb;
    int live;
    int rc;

    if (exp <= w)
        return WEIR_OK;
    wb = dtab_bias(w);
    rc = dtab_reserve(t, wb);
    if (rc != WEIR_OK)
        return rc;
    e = dtab_probe(t, sizeof(struct dtab_head), lo, hi, wb, &live);
    if (!live || e->exp < dtab_bias(exp))
        dtab_claim(t, e, lo, hi, dtab_bias(exp));
    return WEIR_OK;
}

/*
 * rolling:R with lateness L. The key's live entry (f + R - 1 + L > W)
 * makes the record a duplicate; without one the record is late when
 * ts + L <= W, else unique and opens the entry (f = ts). Returns
 * DEDUP_* or a negative code.
 */
static inline int dedup_rolling_h(dtab_t *t, XXH128_hash_t d, weir_ts_t ts,
                                  weir_ts_t w, weir_ts_t ttl,
                                  weir_ts_t lateness)
{
    struct dtab_head *e;
    weir_ts_t exp;
    uint64_t wb;
    int live;
    int rc;

    wb = dtab_bias(w);
    rc = dtab_reserve(t, wb);
    if (rc != WEIR_OK)
        return rc;
    e = dtab_probe(t, sizeof(struct dtab_head), d.low64, d.high64, wb, &live);
    if (live)
        return DEDUP_DUPLICATE;
    if (dtab_sum3(ts, lateness, 0) <= w)
        return DEDUP_LATE;
    exp = dedup_rolling_exp(ts, ttl, lateness);
    if (exp > w)
        dtab_claim(t, e, d.low64, d.high64, dtab_bias(exp));
    return DEDUP_UNIQUE;
}

/* The same, from the key (its digest: XXH3-128 of the bytes). */
static inline int dedup_rolling(dtab_t *t, const void *key, size_t len,
                                weir_ts_t ts, weir_ts_t w, weir_ts_t ttl,
                                weir_ts_t lateness)
{
    return dedup_rolling_h(t, XXH3_128bits(key, len), ts, w, ttl, lateness);
}

/*
 * tumbling:S with lateness L; start = floor(ts/S)*S. Late when
 * end - 1 + L <= W; else the first record of (key, window) is unique and
 * later ones duplicates. d = dedup_tumbling_digest(key, start). Returns
 * DEDUP_* or a negative code.
 */
static inline int dedup_tumbling_h(dtab_t *t, XXH128_hash_t d, weir_ts_t start,
                                   weir_ts_t w, weir_ts_t size,
                                   weir_ts_t lateness)
{
    struct dtab_head *e;
    weir_ts_t exp;
    uint64_t wb;
    int live;
    int rc;

    exp = dedup_tumbling_exp(start, size, lateness);
    if (exp <= w)
        return DEDUP_LATE;
    wb = dtab_bias(w);
    rc = dtab_reserve(t, wb);
    if (rc != WEIR_OK)
        return rc;
    e = dtab_probe(t, sizeof(struct dtab_head), d.low64, d.high64, wb, &live);
    if (live)
        return DEDUP_DUPLICATE;
    dtab_claim(t, e, d.low64, d.high64, dtab_bias(exp));
    return DEDUP_UNIQUE;
}

#endif /* WEIR_DEDUP_TABLE_H */
