/*
 * runtime/state_mem.c - keyed state, in-memory backend.
 *
 * How it works
 *   One open-addressing table (linear probing, backward-shift deletion,
 *   power-of-two capacity, max load 3/4) per operator instance. An entry
 *   is one weir_malloc block: its 64-bit hash, the composite key
 *   (kind | name | key | namespace, each length-prefixed) and the value,
 *   with room for a quarter more once the value has grown (a key's list
 *   of windows grows and shrinks by an entry all the time). Freed blocks
 *   are kept for reuse (up to the number of live entries).
 *   Value state is one entry per (name, key, namespace). Map state is one
 *   entry per (name, key, namespace) too, whose value is the serialized
 *   list of (map key, value) pairs: maps are meant for small per-key
 *   collections (session sets, per-window lists), and this keeps
 *   iteration of one key's map O(size of that map). A map put replaces a
 *   value of the same length in place and appends a new key's pair at
 *   the end; only a value that changes length rewrites the list.
 *
 *   Lookups never build the composite key: the hash is computed from the
 *   parts (name, key, namespace) directly, and a probe compares the
 *   parts with an entry's stored composite key in place. The slot array
 *   keeps every entry's hash, so a probe touches an entry only when the
 *   hashes are equal. The composite key is written once, into the entry,
 *   when the entry is made. Operators nearly always read then write the
 *   same state (a window's get and put), so the table also remembers the
 *   slot of the last entry it found or made: a lookup first compares that
 *   entry's key (usually failing at the length or the first differing
 *   word), and on a match skips hashing and probing altogether.
 *
 *   The parts hash mixes 8-byte words with multiply-rotate rounds and
 *   ends with a full avalanche; it is computed the same way from a
 *   stored composite key when a snapshot is restored.
 *
 * Invariants
 *   - Values returned by get are borrowed until the next call that may
 *     modify the table.
 *   - slots[i].hash == hash of the key parts of entry slots[i].e.
 *   - When last_ok, slots[last] holds an entry (any call that moves or
 *     frees entries clears last_ok).
 *   - Snapshots list entries in table order; restore re-inserts them.
 */
#include <stdlib.h>

#include "internal.h"

#define KEY_OVERHEAD (1 + 3 * sizeof(uint32_t)) /* kind + three lengths */
#define SPARE_MIN                                                              \
    32 /* freed entries always kept for reuse; up to the
                        number of live entries when there are more */

/* Kept small: a lookup reads the header, the key and the value, and
 * the fewer cache lines they span the better (the hash lives in the
 * slot). */
typedef struct entry {
    uint32_t klen;
    uint32_t vlen;
    uint32_t vcap;  /* value bytes allocated (>= vlen)          */
    uint8_t data[]; /* klen key bytes, then vlen value bytes */
} entry_t;

typedef struct slot {
    uint64_t hash; /* the entry's hash: probes compare without a miss */
    entry_t *e;
} slot_t;

struct weir__state {
    slot_t *slots;
    size_t cap; /* power of two, or 0 */
    size_t n;
    size_t last;          /* slot of the last entry found or made */
    int last_ok;          /* last is current                      */
    weir__bytes_t mapbuf; /* map value being rebuilt              */
    entry_t **spare;      /* freed entries kept for reuse         */
    size_t nspare;
    size_t spare_cap;
};

/* A composite key given as its parts. */
typedef struct qkey {
    uint8_t kind;     /* 'v' value, 'm' map          */
    const void *name; /* state name bytes (no NUL)   */
    size_t nlen;
    weir_buf_t key;
    weir_buf_t ns;
} qkey_t;

/* Where a lookup ended. */
typedef struct where {
    uint64_t hash; /* the key's hash (when hashed)               */
    int hashed;    /* hash is set                                */
    size_t slot;   /* the entry's slot, when e != NULL           */
    entry_t *e;    /* the entry, or NULL                         */
} where_t;

weir__state_t *weir__state_new(void)
{
    return weir_calloc(1, sizeof(weir__state_t));
}

void weir__state_free(weir__state_t *st)
{
    size_t i;

    if (st == NULL)
        return;
    for (i = 0; i < st->cap; i++)
        weir_free(st->slots[i].e);
    for (i = 0; i < st->nspare; i++)
        weir_free(st->spare[i]);
    weir_free(st->spare);
    weir_free(st->slots);
    weir__bytes_free(&st->mapbuf);
    weir_free(st);
}

size_t weir__state_count(const weir__state_t *st)
{
    return st ? st->n : 0;
}

/* ------------------------------------------------------------------ *
 * ## Small byte helpers: parts are short (a name, a key, an 8-byte
 * namespace), so they are loaded, compared and copied inline.
 * ------------------------------------------------------------------ */

static inline uint64_t load64(const void *p)
{
    uint64_t v;

    memcpy(&v, p, 8);
    return v;
}

static inline uint32_t load32(const void *p)
{
    uint32_t v;

    memcpy(&v, p, 4);
    return v;
}

/* bytes_eq() for lengths outside 8..16. */
static int bytes_eq_any(const uint8_t *x, const uint8_t *y, size_t n)
{
    if (n >= 4 && n < 8)
        return load32(x) == load32(y) && load32(x + n - 4) == load32(y + n - 4);
    if (n < 4) /* bytes 0, n/2 and n-1 cover 1..3 bytes */
        return n == 0 ||
               (x[0] == y[0] && x[n >> 1] == y[n >> 1] && x[n - 1] == y[n - 1]);
    return memcmp(x, y, n) == 0;
}

/* memcmp(a, b, n) == 0; 8..16 bytes (keys, namespaces) in two loads. */
static inline int bytes_eq(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a;
    const uint8_t *y = b;

    if (n - 8 <= 8)
        return ((load64(x) ^ load64(y)) |
                (load64(x + n - 8) ^ load64(y + n - 8))) == 0;
    return bytes_eq_any(x, y, n);
}

static inline void bytes_copy(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    uint64_t a;
    uint64_t b;

    if (n - 8 <= 8) {
        a = load64(s);
        b = load64(s + n - 8);
        memcpy(d, &a, 8);
        memcpy(d + n - 8, &b, 8);
        return;
    }
    if (n < 8) {
        while (n-- > 0)
            *d++ = *s++;
        return;
    }
    memcpy(dst, src, n);
}

/* ------------------------------------------------------------------ *
 * ## Keys: hashing the parts, comparing parts with a stored composite
 * key (kind, then u32 length + bytes of name, key and namespace)
 * ------------------------------------------------------------------ */

#define MIX_P1 0x9E3779B97F4A7C15ull
#define MIX_P2 0xC2B2AE3D27D4EB4Full

static inline uint64_t mix(uint64_t h, uint64_t w)
{
    h ^= w * MIX_P2;
    h = (h << 31) | (h >> 33);
    return h * MIX_P1;
}

/* Folds n bytes at p into h, one multiply round per 8 bytes. */
static inline uint64_t mix_part(uint64_t h, const uint8_t *p, size_t n)
{
    uint64_t w;

    if (n == 8)
        return mix(h, load64(p));
    for (; n > 8; p += 8, n -= 8)
        h = mix(h, load64(p));
    if (n == 8)
        w = load64(p);
    else if (n >= 4)
        w = ((uint64_t)load32(p) << 32) | load32(p + n - 4);
    else if (n > 0)
        w = ((uint64_t)p[0] << 16) | ((uint64_t)p[n >> 1] << 8) | p[n - 1];
    else
        return h;
    return mix(h, w);
}

/* The lengths go in first, so parts cannot trade bytes. */
static uint64_t hash_parts(const qkey_t *q)
{
    uint64_t h = mix(q->kind, (uint64_t)q->nlen ^ ((uint64_t)q->key.len << 21) ^
                                  ((uint64_t)q->ns.len << 42));

    h = mix_part(h, q->name, q->nlen);
    h = mix_part(h, q->key.data, q->key.len);
    h = mix_part(h, q->ns.data, q->ns.len);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
}

static size_t key_len(const qkey_t *q)
{
    return KEY_OVERHEAD + q->nlen + q->key.len + q->ns.len;
}

/* Compares a stored part (u32 length + bytes at *pp) with buf; moves *pp
 * past it. */
static inline int part_eq(const uint8_t **pp, weir_buf_t buf)
{
    const uint8_t *p = *pp;

    if (load32(p) != buf.len)
        return 0;
    *pp = p + 4 + buf.len;
    return buf.len == 0 || bytes_eq(p + 4, buf.data, buf.len);
}

/* 1 when entry e's key is q. The user key is compared first: it tells
 * two lookups apart most often. */
static inline int key_is(const entry_t *e, const qkey_t *q)
{
    const uint8_t *k = e->data;
    const uint8_t *p = k + 5 + q->nlen;

    if (e->klen != key_len(q) || load32(k + 1) != q->nlen)
        return 0;
    return part_eq(&p, q->key) && part_eq(&p, q->ns) && k[0] == q->kind &&
           (q->nlen == 0 || bytes_eq(k + 5, q->name, q->nlen));
}

static uint8_t *put_part(uint8_t *p, const void *src, size_t n)
{
    uint32_t len = (uint32_t)n;

    memcpy(p, &len, sizeof(len));
    if (n > 0)
        bytes_copy(p + sizeof(len), src, n);
    return p + sizeof(len) + n;
}

static void write_key(uint8_t *p, const qkey_t *q)
{
    *p++ = q->kind;
    p = put_part(p, q->name, q->nlen);
    p = put_part(p, q->key.data, q->key.len);
    put_part(p, q->ns.data, q->ns.len);
}

/* Reads part *n of a stored composite key (len bytes at k); 0 when it
 * does not fit. */
static int take_part(const uint8_t **pp, const uint8_t *end, weir_buf_t *b)
{
    uint32_t n;

    if (end - *pp < 4)
        return 0;
    n = load32(*pp);
    if ((size_t)(end - *pp) - 4 < n)
        return 0;
    *b = WEIR_BUF(*pp + 4, n);
    *pp += 4 + n;
    return 1;
}

/* Splits a stored composite key into its parts (restore). */
static int parse_key(const uint8_t *k, size_t len, qkey_t *q)
{
    const uint8_t *p = k + 1;
    const uint8_t *end = k + len;
    weir_buf_t name;

    if (len < KEY_OVERHEAD || !take_part(&p, end, &name) ||
        !take_part(&p, end, &q->key) || !take_part(&p, end, &q->ns) || p != end)
        return WEIR_ECORRUPT;
    q->kind = k[0];
    q->name = name.data;
    q->nlen = name.len;
    return WEIR_OK;
}

static void qkey_init(qkey_t *q, char kind, const char *name, weir_buf_t key,
                      weir_buf_t ns)
{
    q->kind = (uint8_t)kind;
    q->name = name;
    q->nlen = strlen(name);
    q->key = key;
    q->ns = ns;
}

/* ------------------------------------------------------------------ *
 * ## Table
 * ------------------------------------------------------------------ */

static int grow(weir__state_t *st)
{
    size_t ncap = st->cap ? st->cap * 2 : 64;
    slot_t *old = st->slots;
    size_t ocap = st->cap;
    size_t i;
    size_t j;

    st->slots = weir_calloc(ncap, sizeof(slot_t));
    if (st->slots == NULL) {
        st->slots = old;
        return WEIR_ENOMEM;
    }
    st->last_ok = 0;
    st->cap = ncap;
    for (i = 0; i < ocap; i++) {
        if (old[i].e == NULL)
            continue;
        j = (size_t)old[i].hash & (ncap - 1);
        while (st->slots[j].e != NULL)
            j = (j + 1) & (ncap - 1);
        st->slots[j] = old[i];
    }
    weir_free(old);
    return WEIR_OK;
}

/* The slot holding hash h / key q, or the empty slot where it would go. */
static size_t probe(const weir__state_t *st, uint64_t h, const qkey_t *q)
{
    size_t mask = st->cap - 1;
    size_t i = (size_t)h & mask;

    while (st->slots[i].e != NULL &&
           !(st->slots[i].hash == h && key_is(st->slots[i].e, q)))
        i = (i + 1) & mask;
    return i;
}

/* locate() past the remembered entry: hash and probe. */
static void locate_probe(weir__state_t *st, const qkey_t *q, where_t *w)
{
    size_t i;

    w->e = NULL;
    w->hash = hash_parts(q);
    w->hashed = 1;
    if (st->cap == 0)
        return;
    i = probe(st, w->hash, q);
    if (st->slots[i].e == NULL)
        return;
    w->slot = i;
    w->e = st->slots[i].e;
    st->last = i;
    st->last_ok = 1;
}

/* Finds q: the entry the table remembers first, else hash and probe. */
static inline void locate(weir__state_t *st, const qkey_t *q, where_t *w)
{
    if (st->last_ok && key_is(st->slots[st->last].e, q)) {
        w->hashed = 0;
        w->slot = st->last;
        w->e = st->slots[st->last].e;
        return;
    }
    locate_probe(st, q, w);
}

/* A block for an entry with klen key and vlen value bytes: the last
 * spare one when it is big enough, else a new one. */
static entry_t *entry_new(weir__state_t *st, size_t klen, size_t vlen)
{
    entry_t *e;

    if (st->nspare > 0) {
        e = st->spare[st->nspare - 1];
        if ((size_t)e->klen + e->vcap >= klen + vlen) {
            st->nspare--;
            e->vcap = (uint32_t)((size_t)e->klen + e->vcap - klen);
            return e;
        }
    }
    e = weir_malloc(sizeof(*e) + klen + vlen);
    if (e != NULL)
        e->vcap = (uint32_t)vlen;
    return e;
}

/* Keeps a freed entry for reuse: values deleted and made again (a key's
 * window list emptied at a window's end, then refilled by its next
 * record) then cost no allocator work. At most max(SPARE_MIN, live
 * entries) are kept, so spares never outweigh the table. */
static void entry_free(weir__state_t *st, entry_t *e)
{
    entry_t **sp;
    size_t cap;

    if (st->nspare >= SPARE_MIN && st->nspare >= st->n) {
        weir_free(e);
        return;
    }
    if (st->nspare == st->spare_cap) {
        cap = st->spare_cap ? st->spare_cap * 2 : SPARE_MIN;
        sp = weir_realloc(st->spare, cap * sizeof(*sp));
        if (sp == NULL) {
            weir_free(e);
            return;
        }
        st->spare = sp;
        st->spare_cap = cap;
    }
    st->spare[st->nspare++] = e;
}

/* Adds q (not in the table, w from locate) with value v. */
static int insert(weir__state_t *st, const qkey_t *q, where_t *w, weir_buf_t v)
{
    size_t klen = key_len(q);
    entry_t *e;
    size_t i;

    if (!w->hashed) {
        w->hash = hash_parts(q);
        w->hashed = 1;
    }
    if ((st->n + 1) * 4 > st->cap * 3 && grow(st) != WEIR_OK)
        return WEIR_ENOMEM;
    e = entry_new(st, klen, v.len);
    if (e == NULL)
        return WEIR_ENOMEM;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)v.len;
    write_key(e->data, q);
    if (v.len > 0)
        bytes_copy(e->data + klen, v.data, v.len);
    i = probe(st, w->hash, q);
    st->slots[i].hash = w->hash;
    st->slots[i].e = e;
    st->n++;
    st->last = i;
    st->last_ok = 1;
    w->slot = i;
    w->e = e;
    return WEIR_OK;
}

/* Makes room for a value of len bytes in w's entry (which may move); a
 * value that grows gets a quarter more, so a value growing and shrinking
 * by a little (a key's list of windows) stops reallocating. */
static entry_t *grow_value(weir__state_t *st, where_t *w, size_t len)
{
    entry_t *e = w->e;
    size_t cap = len + len / 4;

    if (cap > UINT32_MAX - e->klen)
        cap = len;
    e = weir_realloc(e, sizeof(*e) + e->klen + cap);
    if (e == NULL)
        return NULL;
    e->vcap = (uint32_t)cap;
    st->slots[w->slot].e = e;
    w->e = e;
    return e;
}

/* Sets q's value to v (copied); w from locate. */
static int upsert(weir__state_t *st, const qkey_t *q, where_t *w, weir_buf_t v)
{
    entry_t *e = w->e;

    if (e == NULL)
        return insert(st, q, w, v);
    if (v.len > e->vcap) {
        e = grow_value(st, w, v.len);
        if (e == NULL)
            return WEIR_ENOMEM;
    }
    e->vlen = (uint32_t)v.len;
    if (v.len > 0)
        bytes_copy(e->data + e->klen, v.data, v.len);
    return WEIR_OK;
}

static void remove_at(weir__state_t *st, size_t i)
{
    size_t mask = st->cap - 1;
    size_t j = i;
    size_t home;

    st->last_ok = 0;
    entry_free(st, st->slots[i].e);
    st->slots[i].e = NULL;
    st->n--;
    /* Backward-shift: move later entries of the run into the hole. */
    for (;;) {
        j = (j + 1) & mask;
        if (st->slots[j].e == NULL)
            return;
        home = (size_t)st->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            st->slots[i] = st->slots[j];
            st->slots[j].e = NULL;
            i = j;
        }
    }
}

/* ------------------------------------------------------------------ *
 * ## Map values: (u32 klen, key, u32 vlen, value)*
 * ------------------------------------------------------------------ */

typedef struct map_cursor {
    const uint8_t *p;
    const uint8_t *end;
} map_cursor_t;

static void map_open(map_cursor_t *c, const entry_t *e)
{
    c->p = e->data + e->klen;
    c->end = c->p + e->vlen;
}

static int map_next(map_cursor_t *c, weir_buf_t *mk, weir_buf_t *v)
{
    uint32_t n;

    if (c->end - c->p < 4)
        return 0;
    memcpy(&n, c->p, 4);
    *mk = WEIR_BUF(c->p + 4, n);
    c->p += 4 + n;
    memcpy(&n, c->p, 4);
    *v = WEIR_BUF(c->p + 4, n);
    c->p += 4 + n;
    return 1;
}

static int same_bytes(weir_buf_t a, weir_buf_t b)
{
    return a.len == b.len && (a.len == 0 || bytes_eq(a.data, b.data, a.len));
}

/* Finds mkey: *v its value, *at the offset of its pair in the map bytes,
 * *plen the pair's length. */
static int map_find(const entry_t *e, weir_buf_t mkey, weir_buf_t *v,
                    size_t *at, size_t *plen)
{
    map_cursor_t c;
    const uint8_t *start;
    const uint8_t *p;
    weir_buf_t k;

    map_open(&c, e);
    start = c.p;
    for (p = c.p; map_next(&c, &k, v); p = c.p) {
        if (same_bytes(k, mkey)) {
            *at = (size_t)(p - start);
            *plen = (size_t)(c.p - p);
            return WEIR_OK;
        }
    }
    return WEIR_ENOENT;
}

static size_t pair_len(weir_buf_t k, weir_buf_t v)
{
    return 8 + k.len + v.len;
}

static void pair_write(uint8_t *p, weir_buf_t k, weir_buf_t v)
{
    p = put_part(p, k.data, k.len);
    put_part(p, v.data, v.len);
}

/* The map without the pair at `at` (plen bytes), then mkey=value, into
 * st->mapbuf. */
static int map_rewrite(weir__state_t *st, const entry_t *e, size_t at,
                       size_t plen, weir_buf_t mkey, weir_buf_t value)
{
    weir__bytes_t *b = &st->mapbuf;
    const uint8_t *m = e->data + e->klen;
    size_t need = e->vlen - plen + pair_len(mkey, value);

    b->len = 0;
    if (weir__bytes_reserve(b, need) != WEIR_OK)
        return WEIR_ENOMEM;
    memcpy(b->data, m, at);
    memcpy(b->data + at, m + at + plen, e->vlen - at - plen);
    pair_write(b->data + e->vlen - plen, mkey, value);
    b->len = need;
    return WEIR_OK;
}

/* Sets mkey=value in q's map (w from locate): in place when the value
 * keeps its length, appended when the map key is new. */
static int map_put(weir__state_t *st, const qkey_t *q, where_t *w,
                   weir_buf_t mkey, weir_buf_t value)
{
    entry_t *e = w->e;
    weir_buf_t old;
    size_t at;
    size_t plen;
    size_t add = pair_len(mkey, value);

    if (e == NULL) {
        st->mapbuf.len = 0;
        if (weir__bytes_reserve(&st->mapbuf, add) != WEIR_OK)
            return WEIR_ENOMEM;
        pair_write(st->mapbuf.data, mkey, value);
        return insert(st, q, w, WEIR_BUF(st->mapbuf.data, add));
    }
    if (map_find(e, mkey, &old, &at, &plen) == WEIR_OK) {
        if (old.len == value.len) {
            if (value.len > 0)
                memcpy((uint8_t *)old.data, value.data, value.len);
            return WEIR_OK;
        }
        if (map_rewrite(st, e, at, plen, mkey, value) != WEIR_OK)
            return WEIR_ENOMEM;
        return upsert(st, q, w, WEIR_BUF(st->mapbuf.data, st->mapbuf.len));
    }
    if (e->vlen + add > e->vcap) {
        e = grow_value(st, w, e->vlen + add);
        if (e == NULL)
            return WEIR_ENOMEM;
    }
    pair_write(e->data + e->klen + e->vlen, mkey, value);
    e->vlen += (uint32_t)add;
    return WEIR_OK;
}

/* Removes mkey from q's map (the entry when it empties). */
static int map_del(weir__state_t *st, where_t *w, weir_buf_t mkey)
{
    entry_t *e = w->e;
    uint8_t *m;
    weir_buf_t old;
    size_t at;
    size_t plen;

    if (e == NULL || map_find(e, mkey, &old, &at, &plen) != WEIR_OK)
        return WEIR_ENOENT;
    if (plen == e->vlen) {
        remove_at(st, w->slot);
        return WEIR_OK;
    }
    m = e->data + e->klen;
    memmove(m + at, m + at + plen, e->vlen - at - plen);
    e->vlen -= (uint32_t)plen;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## API
 * ------------------------------------------------------------------ */

int weir__state_get(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey,
                    weir_buf_t *out)
{
    qkey_t q;
    where_t w;
    size_t at;
    size_t plen;

    qkey_init(&q, kind, name, key, ns);
    locate(st, &q, &w);
    if (w.e == NULL)
        return WEIR_ENOENT;
    if (kind == 'm')
        return map_find(w.e, mkey, out, &at, &plen);
    *out = WEIR_BUF(w.e->data + w.e->klen, w.e->vlen);
    return WEIR_OK;
}

int weir__state_put(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey,
                    weir_buf_t value)
{
    qkey_t q;
    where_t w;

    qkey_init(&q, kind, name, key, ns);
    locate(st, &q, &w);
    if (kind != 'm')
        return upsert(st, &q, &w, value);
    return map_put(st, &q, &w, mkey, value);
}

int weir__state_del(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey)
{
    qkey_t q;
    where_t w;

    qkey_init(&q, kind, name, key, ns);
    locate(st, &q, &w);
    if (kind == 'm')
        return map_del(st, &w, mkey);
    if (w.e == NULL)
        return WEIR_ENOENT;
    remove_at(st, w.slot);
    return WEIR_OK;
}

int weir__state_map_iter(weir__state_t *st, const char *name, weir_buf_t key,
                         weir_buf_t ns, weir_map_iter_fn fn, void *opaque)
{
    qkey_t q;
    where_t w;
    map_cursor_t c;
    weir_buf_t k;
    weir_buf_t v;
    int rc;

    qkey_init(&q, 'm', name, key, ns);
    locate(st, &q, &w);
    if (w.e == NULL)
        return WEIR_OK;
    map_open(&c, w.e);
    while (map_next(&c, &k, &v)) {
        rc = fn(k, v, opaque);
        if (rc != 0)
            return rc < 0 ? rc : WEIR_OK;
    }
    return WEIR_OK;
}

/* Decodes the user key of a composite key with the given name. */
static int entry_key(const entry_t *e, const char *name, size_t nlen,
                     weir_buf_t *key)
{
    const uint8_t *p = e->data + 1;
    uint32_t n;

    n = load32(p);
    if (n != nlen || memcmp(p + 4, name, n) != 0)
        return 0;
    p += 4 + n;
    n = load32(p);
    *key = WEIR_BUF(p + 4, n);
    return 1;
}

int weir__state_keys(weir__state_t *st, const char *name, weir_key_iter_fn fn,
                     void *opaque)
{
    size_t nlen = strlen(name);
    size_t i;
    weir_buf_t key;
    int rc;

    for (i = 0; i < st->cap; i++) {
        if (st->slots[i].e == NULL ||
            !entry_key(st->slots[i].e, name, nlen, &key))
            continue;
        rc = fn(key, opaque);
        if (rc != 0)
            return rc < 0 ? rc : WEIR_OK;
    }
    return WEIR_OK;
}

int weir__state_snapshot(weir__state_t *st, weir_writer_t *w)
{
    size_t i;
    entry_t *e;
    int rc;

    rc = weir_write_u64(w, st->n);
    for (i = 0; rc == WEIR_OK && i < st->cap; i++) {
        e = st->slots[i].e;
        if (e == NULL)
            continue;
        rc = weir_write_buf(w, WEIR_BUF(e->data, e->klen));
        if (rc == WEIR_OK)
            rc = weir_write_buf(w, WEIR_BUF(e->data + e->klen, e->vlen));
    }
    return rc;
}

int weir__state_restore(weir__state_t *st, weir_reader_t *r)
{
    uint64_t n;
    uint64_t i;
    weir_buf_t k;
    weir_buf_t v;
    qkey_t q;
    where_t w;
    int rc;

    rc = weir_read_u64(r, &n);
    for (i = 0; rc == WEIR_OK && i < n; i++) {
        rc = weir_read_buf(r, &k);
        if (rc == WEIR_OK)
            rc = weir_read_buf(r, &v);
        if (rc == WEIR_OK)
            rc = parse_key(k.data, k.len, &q);
        if (rc != WEIR_OK)
            break;
        locate(st, &q, &w);
        rc = upsert(st, &q, &w, v);
    }
    return rc;
}
