/*
 * runtime/timer.c - per-instance timer service for one time domain.
 *
 * How it works
 *   A binary min-heap ordered by (when, seq) holds timer entries; seq is
 *   an insertion counter so timers with equal `when` fire in the order
 *   they were set (deterministic). A hash set over (when, key, namespace)
 *   makes setting a timer twice a no-op and lets weir_timer_del find an
 *   entry: deletion only marks it dead; dead entries are dropped when
 *   they reach the top of the heap.
 *
 * Invariants
 *   - Every live entry is in both the heap and the set; dead entries only
 *     in the heap.
 *   - Snapshots list live timers in (when, seq) order; restore reinserts
 *     them in that order, so relative firing order survives.
 */
#include <stdlib.h>

#include "internal.h"

typedef struct tentry {
    weir_ts_t when;
    uint64_t seq;
    uint64_t hash;
    int live;
    uint32_t klen;
    uint32_t nlen;
    uint8_t data[]; /* key then namespace */
} tentry_t;

struct weir__timers {
    tentry_t **heap;
    size_t n;
    size_t cap;
    tentry_t **set; /* open addressing, power of two */
    size_t set_cap;
    size_t live;
    uint64_t seq;
};

weir__timers_t *weir__timers_new(void)
{
    return weir_calloc(1, sizeof(weir__timers_t));
}

void weir__timers_free(weir__timers_t *t)
{
    size_t i;

    if (t == NULL)
        return;
    for (i = 0; i < t->n; i++)
        weir_free(t->heap[i]);
    weir_free(t->heap);
    weir_free(t->set);
    weir_free(t);
}

size_t weir__timers_count(const weir__timers_t *t)
{
    return t->live;
}

static uint64_t thash(weir_ts_t when, weir_buf_t key, weir_buf_t ns)
{
    uint64_t h = weir__hash(key.data ? key.data : "", key.len);

    h ^= weir__hash(ns.data ? ns.data : "", ns.len) * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)when * 0xC2B2AE3D27D4EB4Full;
    return h ^ (h >> 29);
}

static int same(const tentry_t *e, weir_ts_t when, weir_buf_t key,
                weir_buf_t ns)
{
    return e->when == when && e->klen == key.len && e->nlen == ns.len &&
           (key.len == 0 || memcmp(e->data, key.data, key.len) == 0) &&
           (ns.len == 0 || memcmp(e->data + e->klen, ns.data, ns.len) == 0);
}

/* ------------------------------------------------------------------ *
 * ## Hash set (linear probing, backward-shift deletion)
 * ------------------------------------------------------------------ */

static size_t set_find(const weir__timers_t *t, uint64_t h, weir_ts_t when,
                       weir_buf_t key, weir_buf_t ns)
{
    size_t mask = t->set_cap - 1;
    size_t i = (size_t)h & mask;

    while (t->set[i] != NULL &&
           !(t->set[i]->hash == h && same(t->set[i], when, key, ns)))
        i = (i + 1) & mask;
    return i;
}

static int set_grow(weir__timers_t *t)
{
    size_t ncap = t->set_cap ? t->set_cap * 2 : 64;
    tentry_t **old = t->set;
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
        if (old[i] == NULL)
            continue;
        j = (size_t)old[i]->hash & (ncap - 1);
        while (t->set[j] != NULL)
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

    t->set[i] = NULL;
    for (;;) {
        j = (j + 1) & mask;
        if (t->set[j] == NULL)
            return;
        home = (size_t)t->set[j]->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            t->set[i] = t->set[j];
            t->set[j] = NULL;
            i = j;
        }
    }
}

static void set_remove(weir__timers_t *t, tentry_t *e)
{
    weir_buf_t key = WEIR_BUF(e->data, e->klen);
    weir_buf_t ns = WEIR_BUF(e->data + e->klen, e->nlen);
    size_t i = set_find(t, e->hash, e->when, key, ns);

    if (t->set[i] == e)
        set_remove_at(t, i);
}

/* ------------------------------------------------------------------ *
 * ## Heap
 * ------------------------------------------------------------------ */

static int before(const tentry_t *a, const tentry_t *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void sift_up(weir__timers_t *t, size_t i)
{
    tentry_t *e = t->heap[i];

    while (i > 0 && before(e, t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = e;
}

static void sift_down(weir__timers_t *t, size_t i)
{
    tentry_t *e = t->heap[i];
    size_t c;

    for (;;) {
        c = 2 * i + 1;
        if (c >= t->n)
            break;
        if (c + 1 < t->n && before(t->heap[c + 1], t->heap[c]))
            c++;
        if (!before(t->heap[c], e))
            break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    t->heap[i] = e;
}

static tentry_t *heap_pop(weir__timers_t *t)
{
    tentry_t *top = t->heap[0];

    t->n--;
    if (t->n > 0) {
        t->heap[0] = t->heap[t->n];
        sift_down(t, 0);
    }
    return top;
}

/* Drops dead entries from the top. */
static void clean_top(weir__timers_t *t)
{
    while (t->n > 0 && !t->heap[0]->live)
        weir_free(heap_pop(t));
}

/* ------------------------------------------------------------------ *
 * ## API
 * ------------------------------------------------------------------ */

int weir__timers_set(weir__timers_t *t, weir_ts_t when, weir_buf_t key,
                     weir_buf_t ns)
{
    uint64_t h = thash(when, key, ns);
    tentry_t *e;
    tentry_t **nh;
    size_t i;

    if ((t->live + 1) * 4 > t->set_cap * 3 && set_grow(t) != WEIR_OK)
        return WEIR_ENOMEM;
    i = set_find(t, h, when, key, ns);
    if (t->set[i] != NULL)
        return WEIR_OK;
    if (t->n == t->cap) {
        nh = weir_realloc(t->heap, (t->cap ? t->cap * 2 : 64) * sizeof(*nh));
        if (nh == NULL)
            return WEIR_ENOMEM;
        t->heap = nh;
        t->cap = t->cap ? t->cap * 2 : 64;
    }
    e = weir_malloc(sizeof(*e) + key.len + ns.len);
    if (e == NULL)
        return WEIR_ENOMEM;
    e->when = when;
    e->seq = t->seq++;
    e->hash = h;
    e->live = 1;
    e->klen = (uint32_t)key.len;
    e->nlen = (uint32_t)ns.len;
    if (key.len > 0)
        memcpy(e->data, key.data, key.len);
    if (ns.len > 0)
        memcpy(e->data + key.len, ns.data, ns.len);
    t->set[i] = e;
    t->live++;
    t->heap[t->n++] = e;
    sift_up(t, t->n - 1);
    return WEIR_OK;
}

int weir__timers_del(weir__timers_t *t, weir_ts_t when, weir_buf_t key,
                     weir_buf_t ns)
{
    uint64_t h = thash(when, key, ns);
    size_t i;

    if (t->set_cap == 0)
        return WEIR_ENOENT;
    i = set_find(t, h, when, key, ns);
    if (t->set[i] == NULL)
        return WEIR_ENOENT;
    t->set[i]->live = 0;
    set_remove_at(t, i);
    t->live--;
    clean_top(t);
    return WEIR_OK;
}

int weir__timers_peek(const weir__timers_t *t, weir_ts_t *when)
{
    if (t->n == 0)
        return WEIR_ENOENT;
    *when = t->heap[0]->when;
    return WEIR_OK;
}

int weir__timers_pop(weir__timers_t *t, weir_ts_t limit, weir_ts_t *when,
                     weir__bytes_t *key, weir__bytes_t *ns)
{
    tentry_t *e;
    int rc;

    clean_top(t);
    if (t->n == 0 || t->heap[0]->when > limit)
        return WEIR_ENOENT;
    e = heap_pop(t);
    set_remove(t, e);
    t->live--;
    *when = e->when;
    key->len = 0;
    ns->len = 0;
    rc = weir__bytes_append(key, e->data, e->klen);
    if (rc == WEIR_OK)
        rc = weir__bytes_append(ns, e->data + e->klen, e->nlen);
    weir_free(e);
    clean_top(t);
    return rc;
}

static int cmp_entries(const void *a, const void *b)
{
    const tentry_t *x = *(const tentry_t *const *)a;
    const tentry_t *y = *(const tentry_t *const *)b;

    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

int weir__timers_snapshot(const weir__timers_t *t, weir_writer_t *w)
{
    tentry_t **sorted;
    size_t i;
    size_t k = 0;
    int rc;

    sorted = weir_malloc((t->n ? t->n : 1) * sizeof(*sorted));
    if (sorted == NULL)
        return WEIR_ENOMEM;
    for (i = 0; i < t->n; i++)
        if (t->heap[i]->live)
            sorted[k++] = t->heap[i];
    qsort(sorted, k, sizeof(*sorted), cmp_entries);
    rc = weir_write_u64(w, k);
    for (i = 0; rc == WEIR_OK && i < k; i++) {
        rc = weir_write_i64(w, sorted[i]->when);
        if (rc == WEIR_OK)
            rc = weir_write_buf(w, WEIR_BUF(sorted[i]->data, sorted[i]->klen));
        if (rc == WEIR_OK)
            rc = weir_write_buf(w, WEIR_BUF(sorted[i]->data + sorted[i]->klen,
                                            sorted[i]->nlen));
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
