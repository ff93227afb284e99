/*
 * runtime/timer.c - per-instance timer service for one time domain.
 *
 * How it works
 *   Timers fire in order of `when`, and timers with equal `when` in the
 *   order they were set (deterministic). Window and TTL workloads set
 *   thousands of timers for the same few moments (every window of a
 *   tumbling period ends at once), so timers are kept in buckets, one per
 *   distinct `when`: a bucket is a FIFO list of its timers in the order
 *   they were set. A binary min-heap orders the buckets by `when`, and a
 *   small hash map finds the bucket of a `when`. Setting a timer appends
 *   to its bucket (a heap insertion only for a new `when`); firing takes
 *   the head of the earliest bucket; deleting unlinks the timer at once
 *   (no dead entries linger), dropping its bucket when it empties.
 *
 *   A hash set over (when, key, namespace) makes setting a timer twice a
 *   no-op and lets weir_timer_del find an entry; its slots keep the hash
 *   next to the pointer, so probes compare without a miss. Entries are
 *   single weir_malloc blocks (when, links, key, namespace); freed
 *   entries are kept for reuse, up to the most timers ever pending at
 *   once (so a tumbling period's burst of firings refills the next
 *   period's timers without the allocator), and a few buckets too.
 *
 * Invariants
 *   - Every timer is in the set and in the list of the bucket of its
 *     `when`; every bucket is non-empty, in the map and in the heap at
 *     heap[b->pos], and no two buckets have the same `when`.
 *   - Within a bucket, list order is the order the timers were set.
 *   - Snapshots list timers in firing order; restore reinserts them in
 *     that order, so relative firing order survives.
 */
#include <stdlib.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "internal.h"

#define ENTRY_MIN_DATA 32 /* key+ns bytes every entry has room for */
#define FREE_MIN                                                               \
    1024 /* entries (and buckets) always kept for
                             reuse; up to the peak timer count */

typedef struct bucket bucket_t;

typedef struct tentry {
    weir_ts_t when;
    uint64_t hash;       /* of (when, key, ns)               */
    struct tentry *prev; /* bucket list                      */
    struct tentry *next; /* bucket list; free list link      */
    bucket_t *b;         /* its bucket                       */
    uint32_t klen;
    uint32_t nlen;
    uint32_t cap;   /* data bytes allocated             */
    uint8_t data[]; /* key then namespace               */
} tentry_t;

struct bucket {
    weir_ts_t when;
    tentry_t *head; /* fires first                        */
    tentry_t *tail;
    size_t pos;     /* index in the heap                  */
    bucket_t *next; /* free list link                     */
};

typedef struct hnode {
    weir_ts_t when;
    bucket_t *b;
} hnode_t;

typedef struct tslot {
    uint64_t hash;
    tentry_t *e; /* NULL: empty */
} tslot_t;

struct weir__timers {
    hnode_t *heap; /* buckets by when            */
    size_t nb;     /* buckets                    */
    size_t heap_cap;
    bucket_t **map; /* when -> bucket, open addressing, power of two */
    size_t map_cap;
    tslot_t *set; /* (when, key, ns) -> entry, power of two */
    size_t set_cap;
    size_t n;    /* timers                                  */
    size_t peak; /* most timers ever pending: free list cap */
    tentry_t *free_e;
    size_t nfree_e;
    bucket_t *free_b;
    size_t nfree_b;
};

weir__timers_t *weir__timers_new(void)
{
    return weir_calloc(1, sizeof(weir__timers_t));
}

void weir__timers_free(weir__timers_t *t)
{
    tentry_t *e;
    tentry_t *next;
    bucket_t *b;
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->nb; i++) {
        for (e = t->heap[i].b->head; e != NULL; e = next) {
            next = e->next;
            weir_free(e);
        }
        weir_free(t->heap[i].b);
    }
    while ((e = t->free_e) != NULL) {
        t->free_e = e->next;
        weir_free(e);
    }
    while ((b = t->free_b) != NULL) {
        t->free_b = b->next;
        weir_free(b);
    }
    weir_free(t->heap);
    weir_free(t->map);
    weir_free(t->set);
    weir_free(t);
}

size_t weir__timers_count(const weir__timers_t *t)
{
    return t->n;
}

static uint64_t thash(weir_ts_t when, weir_buf_t key, weir_buf_t ns)
{
    uint64_t h =
        XXH3_64bits_withSeed(key.data ? key.data : "", key.len, (uint64_t)when);

    return XXH3_64bits_withSeed(ns.data ? ns.data : "", ns.len, h);
}

static int same(const tentry_t *e, weir_ts_t when, weir_buf_t key,
                weir_buf_t ns)
{
    return e->when == when && e->klen == key.len && e->nlen == ns.len &&
           (key.len == 0 || memcmp(e->data, key.data, key.len) == 0) &&
           (ns.len == 0 || memcmp(e->data + e->klen, ns.data, ns.len) == 0);
}

/* ------------------------------------------------------------------ *
 * ## Entries and buckets
 * ------------------------------------------------------------------ */

static tentry_t *entry_new(weir__timers_t *t, size_t len)
{
    tentry_t *e = t->free_e;
    size_t cap = len < ENTRY_MIN_DATA ? ENTRY_MIN_DATA : len;

    if (e != NULL && e->cap >= len) {
        t->free_e = e->next;
        t->nfree_e--;
        return e;
    }
    e = weir_malloc(sizeof(*e) + cap);
    if (e != NULL)
        e->cap = (uint32_t)cap;
    return e;
}

static void entry_free(weir__timers_t *t, tentry_t *e)
{
    if (t->nfree_e >= FREE_MIN && t->nfree_e >= t->peak) {
        weir_free(e);
        return;
    }
    e->next = t->free_e;
    t->free_e = e;
    t->nfree_e++;
}

static bucket_t *bucket_new(weir__timers_t *t)
{
    bucket_t *b = t->free_b;

    if (b != NULL) {
        t->free_b = b->next;
        t->nfree_b--;
        return b;
    }
    return weir_malloc(sizeof(*b));
}

static void bucket_free(weir__timers_t *t, bucket_t *b)
{
    if (t->nfree_b >= FREE_MIN) {
        weir_free(b);
        return;
    }
    b->next = t->free_b;
    t->free_b = b;
    t->nfree_b++;
}

/* ------------------------------------------------------------------ *
 * ## Hash set (linear probing, backward-shift deletion)
 * ------------------------------------------------------------------ */

static size_t set_find(const weir__timers_t *t, uint64_t h, weir_ts_t when,
                       weir_buf_t key, weir_buf_t ns)
{
    size_t mask = t->set_cap - 1;
    size_t i = (size_t)h & mask;

    while (t->set[i].e != NULL &&
           !(t->set[i].hash == h && same(t->set[i].e, when, key, ns)))
        i = (i + 1) & mask;
    return i;
}

static int set_grow(weir__timers_t *t)
{
    size_t ncap = t->set_cap ? t->set_cap * 2 : 64;
    tslot_t *old = t->set;
    size_t ocap = t->set_cap;
    size_t i;
    size_t j;

    t->set = weir_calloc(ncap, sizeof(*t->set));
    if (t->set == NULL) {
        t->set = old;
        return WEIR_ENOMEM;
    }
    t->set_cap = ncap;
    for (i = 0; i < ocap; i++) {
        if (old[i].e == NULL)
            continue;
        j = (size_t)old[i].hash & (ncap - 1);
        while (t->set[j].e != NULL)
            j = (j + 1) & (ncap - 1);
        t->set[j] = old[i];
    }
    weir_free(old);
    return WEIR_OK;
}

static void set_remove_at(weir__timers_t *t, size_t i)
{
    size_t mask = t->set_cap - 1;
    size_t j = i;
    size_t home;

    t->set[i].e = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (t->set[j].e == NULL)
            return;
        home = (size_t)t->set[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->set[i] = t->set[j];
            t->set[j].e = NULL;
            i = j;
        }
    }
}

/* Removes entry e (which is in the set): found by pointer. */
static void set_remove(weir__timers_t *t, const tentry_t *e)
{
    size_t mask = t->set_cap - 1;
    size_t i = (size_t)e->hash & mask;

    while (t->set[i].e != e)
        i = (i + 1) & mask;
    set_remove_at(t, i);
}

/* ------------------------------------------------------------------ *
 * ## Bucket map: when -> bucket (linear probing, backward-shift deletion)
 * ------------------------------------------------------------------ */

static size_t when_home(weir_ts_t when, size_t mask)
{
    uint64_t h = (uint64_t)when * 0x9E3779B97F4A7C15ull;

    return (size_t)(h ^ (h >> 32)) & mask;
}

/* The slot of when's bucket, or the empty slot where it would go. */
static size_t map_find(const weir__timers_t *t, weir_ts_t when)
{
    size_t mask = t->map_cap - 1;
    size_t i = when_home(when, mask);

    while (t->map[i] != NULL && t->map[i]->when != when)
        i = (i + 1) & mask;
    return i;
}

static int map_grow(weir__timers_t *t)
{
    size_t ncap = t->map_cap ? t->map_cap * 2 : 16;
    bucket_t **old = t->map;
    size_t ocap = t->map_cap;
    size_t i;
    size_t j;

    t->map = weir_calloc(ncap, sizeof(*t->map));
    if (t->map == NULL) {
        t->map = old;
        return WEIR_ENOMEM;
    }
    t->map_cap = ncap;
    for (i = 0; i < ocap; i++) {
        if (old[i] == NULL)
            continue;
        j = when_home(old[i]->when, ncap - 1);
        while (t->map[j] != NULL)
            j = (j + 1) & (ncap - 1);
        t->map[j] = old[i];
    }
    weir_free(old);
    return WEIR_OK;
}

static void map_remove(weir__timers_t *t, weir_ts_t when)
{
    size_t mask = t->map_cap - 1;
    size_t i = map_find(t, when);
    size_t j = i;
    size_t home;

    t->map[i] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (t->map[j] == NULL)
            return;
        home = when_home(t->map[j]->when, mask);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->map[i] = t->map[j];
            t->map[j] = NULL;
            i = j;
        }
    }
}

/* ------------------------------------------------------------------ *
 * ## Heap of buckets (distinct whens)
 * ------------------------------------------------------------------ */

static void place(weir__timers_t *t, size_t i, hnode_t x)
{
    t->heap[i] = x;
    x.b->pos = i;
}

static void sift_up(weir__timers_t *t, size_t i)
{
    hnode_t x = t->heap[i];
    size_t p;

    while (i > 0) {
        p = (i - 1) / 2;
        if (t->heap[p].when <= x.when)
            break;
        place(t, i, t->heap[p]);
        i = p;
    }
    place(t, i, x);
}

static void sift_down(weir__timers_t *t, size_t i)
{
    hnode_t x = t->heap[i];
    size_t c;

    for (;;) {
        c = 2 * i + 1;
        if (c >= t->nb)
            break;
        if (c + 1 < t->nb && t->heap[c + 1].when < t->heap[c].when)
            c++;
        if (x.when <= t->heap[c].when)
            break;
        place(t, i, t->heap[c]);
        i = c;
    }
    place(t, i, x);
}

/* Takes heap[i] out of the heap. */
static void heap_remove(weir__timers_t *t, size_t i)
{
    t->nb--;
    if (i == t->nb)
        return;
    t->heap[i] = t->heap[t->nb];
    if (i > 0 && t->heap[i].when < t->heap[(i - 1) / 2].when)
        sift_up(t, i);
    else
        sift_down(t, i);
}

/* Makes room for one more bucket in the heap and the map. */
static int reserve_bucket(weir__timers_t *t)
{
    hnode_t *nh;
    size_t ncap;

    if (t->nb == t->heap_cap) {
        ncap = t->heap_cap ? t->heap_cap * 2 : 16;
        nh = weir_realloc(t->heap, ncap * sizeof(*nh));
        if (nh == NULL)
            return WEIR_ENOMEM;
        t->heap = nh;
        t->heap_cap = ncap;
    }
    if ((t->nb + 1) * 4 > t->map_cap * 3)
        return map_grow(t);
    return WEIR_OK;
}

/* Unlinks e from its bucket; drops the bucket when it empties. */
static void unlink_entry(weir__timers_t *t, tentry_t *e)
{
    bucket_t *b = e->b;

    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        b->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        b->tail = e->prev;
    t->n--;
    if (b->head != NULL)
        return;
    heap_remove(t, b->pos);
    map_remove(t, b->when);
    bucket_free(t, b);
}

/* Timers of one `when` fire in a burst (a tumbling period's windows all
 * end at once), one pop after another, each touching two cold cache
 * lines: the entry and its set slot. While e is being fired, fetch the
 * next entry's set slot (the entry itself was fetched one pop earlier)
 * and the entry after it, so later pops find them in cache. */
static void prefetch_next(const weir__timers_t *t, const tentry_t *e)
{
#if defined(__GNUC__)
    const tentry_t *next = e->next;

    if (next == NULL)
        return;
    __builtin_prefetch(&t->set[(size_t)next->hash & (t->set_cap - 1)]);
    if (next->next != NULL)
        __builtin_prefetch(next->next);
#else
    (void)t;
    (void)e;
#endif
}

/* ------------------------------------------------------------------ *
 * ## API
 * ------------------------------------------------------------------ */

int weir__timers_set(weir__timers_t *t, weir_ts_t when, weir_buf_t key,
                     weir_buf_t ns)
{
    uint64_t h = thash(when, key, ns);
    tentry_t *e;
    bucket_t *b;
    size_t i;
    size_t m;

    if ((t->n + 1) * 4 > t->set_cap * 3 && set_grow(t) != WEIR_OK)
        return WEIR_ENOMEM;
    i = set_find(t, h, when, key, ns);
    if (t->set[i].e != NULL)
        return WEIR_OK;
    if (reserve_bucket(t) != WEIR_OK)
        return WEIR_ENOMEM;
    e = entry_new(t, key.len + ns.len);
    if (e == NULL)
        return WEIR_ENOMEM;
    m = map_find(t, when);
    b = t->map[m];
    if (b == NULL) {
        b = bucket_new(t);
        if (b == NULL) {
            entry_free(t, e);
            return WEIR_ENOMEM;
        }
        b->when = when;
        b->head = NULL;
        b->tail = NULL;
        t->map[m] = b;
        t->heap[t->nb].when = when;
        t->heap[t->nb].b = b;
        b->pos = t->nb++;
        sift_up(t, b->pos);
    }
    e->when = when;
    e->hash = h;
    e->b = b;
    e->klen = (uint32_t)key.len;
    e->nlen = (uint32_t)ns.len;
    if (key.len > 0)
        memcpy(e->data, key.data, key.len);
    if (ns.len > 0)
        memcpy(e->data + key.len, ns.data, ns.len);
    e->next = NULL;
    e->prev = b->tail;
    if (b->tail != NULL)
        b->tail->next = e;
    else
        b->head = e;
    b->tail = e;
    t->set[i].hash = h;
    t->set[i].e = e;
    if (++t->n > t->peak)
        t->peak = t->n;
    return WEIR_OK;
}

int weir__timers_del(weir__timers_t *t, weir_ts_t when, weir_buf_t key,
                     weir_buf_t ns)
{
    uint64_t h;
    tentry_t *e;
    size_t i;

    if (t->n == 0)
        return WEIR_ENOENT;
    h = thash(when, key, ns);
    i = set_find(t, h, when, key, ns);
    e = t->set[i].e;
    if (e == NULL)
        return WEIR_ENOENT;
    set_remove_at(t, i);
    unlink_entry(t, e);
    entry_free(t, e);
    return WEIR_OK;
}

int weir__timers_peek(const weir__timers_t *t, weir_ts_t *when)
{
    if (t->nb == 0)
        return WEIR_ENOENT;
    *when = t->heap[0].when;
    return WEIR_OK;
}

int weir__timers_pop(weir__timers_t *t, weir_ts_t limit, weir_ts_t *when,
                     weir__bytes_t *key, weir__bytes_t *ns)
{
    tentry_t *e;
    int rc;

    if (t->nb == 0 || t->heap[0].when > limit)
        return WEIR_ENOENT;
    e = t->heap[0].b->head;
    prefetch_next(t, e);
    unlink_entry(t, e);
    set_remove(t, e);
    *when = e->when;
    key->len = 0;
    ns->len = 0;
    rc = weir__bytes_append(key, e->data, e->klen);
    if (rc == WEIR_OK)
        rc = weir__bytes_append(ns, e->data + e->klen, e->nlen);
    entry_free(t, e);
    return rc;
}

static int cmp_nodes(const void *a, const void *b)
{
    const hnode_t *x = a;
    const hnode_t *y = b;

    return x->when < y->when ? -1 : x->when > y->when;
}

int weir__timers_snapshot(const weir__timers_t *t, weir_writer_t *w)
{
    hnode_t *sorted;
    const tentry_t *e;
    size_t i;
    int rc;

    sorted = weir_malloc((t->nb ? t->nb : 1) * sizeof(*sorted));
    if (sorted == NULL)
        return WEIR_ENOMEM;
    if (t->nb > 0)
        memcpy(sorted, t->heap, t->nb * sizeof(*sorted));
    qsort(sorted, t->nb, sizeof(*sorted), cmp_nodes);
    rc = weir_write_u64(w, t->n);
    for (i = 0; rc == WEIR_OK && i < t->nb; i++) {
        for (e = sorted[i].b->head; rc == WEIR_OK && e != NULL; e = e->next) {
            rc = weir_write_i64(w, e->when);
            if (rc == WEIR_OK)
                rc = weir_write_buf(w, WEIR_BUF(e->data, e->klen));
            if (rc == WEIR_OK)
                rc = weir_write_buf(w, WEIR_BUF(e->data + e->klen, e->nlen));
        }
    }
    weir_free(sorted);
    return rc;
}

int weir__timers_restore(weir__timers_t *t, weir_reader_t *r)
{
    uint64_t n;
    uint64_t i;
    int64_t when;
    weir_buf_t key;
    weir_buf_t ns;
    int rc;

    rc = weir_read_u64(r, &n);
    for (i = 0; rc == WEIR_OK && i < n; i++) {
        rc = weir_read_i64(r, &when);
        if (rc == WEIR_OK)
            rc = weir_read_buf(r, &key);
        if (rc == WEIR_OK)
            rc = weir_read_buf(r, &ns);
        if (rc == WEIR_OK)
            rc = weir__timers_set(t, when, key, ns);
    }
    return rc;
}
