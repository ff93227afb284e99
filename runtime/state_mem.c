/*
 * runtime/state_mem.c - keyed state, in-memory backend.
 *
 * How it works
 *   One open-addressing table (linear probing, backward-shift deletion,
 *   power-of-two capacity, max load 3/4) per operator instance. An entry
 *   is one weir_malloc block: its 64-bit hash, the composite key
 *   (kind | name | key | namespace, each length-prefixed) and the value.
 *   Value state is one entry per (name, key, namespace). Map state is one
 *   entry per (name, key, namespace) too, whose value is the serialized
 *   list of (map key, value) pairs: maps are meant for small per-key
 *   collections (session sets, per-window lists), and this keeps
 *   iteration of one key's map O(size of that map).
 *
 * Invariants
 *   - Values returned by get are borrowed until the next call that may
 *     modify the table.
 *   - Snapshots list entries in table order; restore re-inserts them.
 */
#include <stdlib.h>

#include "internal.h"

typedef struct entry {
    uint64_t hash;
    uint32_t klen;
    uint32_t vlen;
    uint8_t data[]; /* klen key bytes, then vlen value bytes */
} entry_t;

typedef struct slot {
    uint64_t hash; /* copy of e->hash: probes compare without a miss */
    entry_t *e;
} slot_t;

struct weir__state {
    slot_t *slots;
    size_t cap;  /* power of two, or 0 */
    size_t n;
    weir__bytes_t scratch; /* composite key being built */
    weir__bytes_t mapbuf;  /* map value being rebuilt   */
};

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
    weir_free(st->slots);
    weir__bytes_free(&st->scratch);
    weir__bytes_free(&st->mapbuf);
    weir_free(st);
}

size_t weir__state_count(const weir__state_t *st)
{
    return st ? st->n : 0;
}

/* ------------------------------------------------------------------ *
 * ## Composite keys
 * ------------------------------------------------------------------ */

static int put_part(weir__bytes_t *b, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;

    if (weir__bytes_append(b, &len, sizeof(len)) != WEIR_OK)
        return WEIR_ENOMEM;
    return weir__bytes_append(b, p, n);
}

static int build_key(weir__state_t *st, char kind, const char *name,
                     weir_buf_t key, weir_buf_t ns)
{
    weir__bytes_t *b = &st->scratch;

    b->len = 0;
    if (weir__bytes_append(b, &kind, 1) != WEIR_OK ||
        put_part(b, name, strlen(name)) != WEIR_OK ||
        put_part(b, key.data, key.len) != WEIR_OK ||
        put_part(b, ns.data, ns.len) != WEIR_OK)
        return WEIR_ENOMEM;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Table
 * ------------------------------------------------------------------ */

static size_t find_slot(const weir__state_t *st, uint64_t h, const void *k,
                        size_t klen)
{
    size_t mask = st->cap - 1;
    size_t i = (size_t)h & mask;
    const slot_t *sl;

    for (;;) {
        sl = &st->slots[i];
        if (sl->e == NULL)
            return i;
        if (sl->hash == h && sl->e->klen == klen &&
            memcmp(sl->e->data, k, klen) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

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

static entry_t *lookup(const weir__state_t *st, const weir__bytes_t *k)
{
    uint64_t h;

    if (st->cap == 0)
        return NULL;
    h = weir__hash(k->data, k->len);
    return st->slots[find_slot(st, h, k->data, k->len)].e;
}

static int upsert(weir__state_t *st, const weir__bytes_t *k, weir_buf_t v)
{
    uint64_t h = weir__hash(k->data, k->len);
    size_t i;
    entry_t *e;

    if ((st->n + 1) * 4 > st->cap * 3 && grow(st) != WEIR_OK)
        return WEIR_ENOMEM;
    i = find_slot(st, h, k->data, k->len);
    e = st->slots[i].e;
    if (e != NULL && e->vlen == v.len) {
        if (v.len > 0)
            memcpy(e->data + e->klen, v.data, v.len);
        return WEIR_OK;
    }
    e = weir_realloc(e, sizeof(*e) + k->len + v.len);
    if (e == NULL)
        return WEIR_ENOMEM;
    if (st->slots[i].e == NULL) {
        st->n++;
        e->hash = h;
        e->klen = (uint32_t)k->len;
        memcpy(e->data, k->data, k->len);
    }
    e->vlen = (uint32_t)v.len;
    if (v.len > 0)
        memcpy(e->data + e->klen, v.data, v.len);
    st->slots[i].e = e;
    st->slots[i].hash = h;
    return WEIR_OK;
}

static void remove_at(weir__state_t *st, size_t i)
{
    size_t mask = st->cap - 1;
    size_t j = i;
    size_t home;

    weir_free(st->slots[i].e);
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

static int erase(weir__state_t *st, const weir__bytes_t *k)
{
    uint64_t h;
    size_t i;

    if (st->cap == 0)
        return WEIR_ENOENT;
    h = weir__hash(k->data, k->len);
    i = find_slot(st, h, k->data, k->len);
    if (st->slots[i].e == NULL)
        return WEIR_ENOENT;
    remove_at(st, i);
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Map values: u32 count, then (u32 klen, key, u32 vlen, value)*
 * ------------------------------------------------------------------ */

typedef struct map_cursor {
    const uint8_t *p;
    const uint8_t *end;
} map_cursor_t;

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

static int map_find(const entry_t *e, weir_buf_t mkey, weir_buf_t *out)
{
    map_cursor_t c;
    weir_buf_t k;
    weir_buf_t v;

    c.p = e->data + e->klen;
    c.end = c.p + e->vlen;
    while (map_next(&c, &k, &v)) {
        if (k.len == mkey.len && (k.len == 0 || memcmp(k.data, mkey.data,
                                                       k.len) == 0)) {
            *out = v;
            return WEIR_OK;
        }
    }
    return WEIR_ENOENT;
}

static int map_append(weir__bytes_t *b, weir_buf_t k, weir_buf_t v)
{
    uint32_t n = (uint32_t)k.len;

    if (weir__bytes_append(b, &n, 4) != WEIR_OK ||
        weir__bytes_append(b, k.data, k.len) != WEIR_OK)
        return WEIR_ENOMEM;
    n = (uint32_t)v.len;
    if (weir__bytes_append(b, &n, 4) != WEIR_OK ||
        weir__bytes_append(b, v.data, v.len) != WEIR_OK)
        return WEIR_ENOMEM;
    return WEIR_OK;
}

/* Rebuilds the map without mkey (and with mkey=value when value given). */
static int map_rewrite(weir__state_t *st, const entry_t *e, weir_buf_t mkey,
                       const weir_buf_t *value)
{
    weir__bytes_t *b = &st->mapbuf;
    map_cursor_t c;
    weir_buf_t k;
    weir_buf_t v;

    b->len = 0;
    if (e != NULL) {
        c.p = e->data + e->klen;
        c.end = c.p + e->vlen;
        while (map_next(&c, &k, &v)) {
            if (k.len == mkey.len &&
                (k.len == 0 || memcmp(k.data, mkey.data, k.len) == 0))
                continue;
            if (map_append(b, k, v) != WEIR_OK)
                return WEIR_ENOMEM;
        }
    }
    if (value != NULL && map_append(b, mkey, *value) != WEIR_OK)
        return WEIR_ENOMEM;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## API
 * ------------------------------------------------------------------ */

int weir__state_get(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey,
                    weir_buf_t *out)
{
    entry_t *e;

    if (build_key(st, kind, name, key, ns) != WEIR_OK)
        return WEIR_ENOMEM;
    e = lookup(st, &st->scratch);
    if (e == NULL)
        return WEIR_ENOENT;
    if (kind == 'm')
        return map_find(e, mkey, out);
    *out = WEIR_BUF(e->data + e->klen, e->vlen);
    return WEIR_OK;
}

int weir__state_put(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey,
                    weir_buf_t value)
{
    weir__bytes_t mb;
    entry_t *e;
    int rc;

    if (build_key(st, kind, name, key, ns) != WEIR_OK)
        return WEIR_ENOMEM;
    if (kind != 'm')
        return upsert(st, &st->scratch, value);
    e = lookup(st, &st->scratch);
    if (map_rewrite(st, e, mkey, &value) != WEIR_OK)
        return WEIR_ENOMEM;
    mb = st->mapbuf;
    rc = upsert(st, &st->scratch, WEIR_BUF(mb.data, mb.len));
    return rc;
}

int weir__state_del(weir__state_t *st, char kind, const char *name,
                    weir_buf_t key, weir_buf_t ns, weir_buf_t mkey)
{
    entry_t *e;
    weir_buf_t dummy;

    if (build_key(st, kind, name, key, ns) != WEIR_OK)
        return WEIR_ENOMEM;
    if (kind != 'm')
        return erase(st, &st->scratch);
    e = lookup(st, &st->scratch);
    if (e == NULL || map_find(e, mkey, &dummy) != WEIR_OK)
        return WEIR_ENOENT;
    if (map_rewrite(st, e, mkey, NULL) != WEIR_OK)
        return WEIR_ENOMEM;
    if (st->mapbuf.len == 0)
        return erase(st, &st->scratch);
    return upsert(st, &st->scratch, WEIR_BUF(st->mapbuf.data,
                                             st->mapbuf.len));
}

int weir__state_map_iter(weir__state_t *st, const char *name, weir_buf_t key,
                         weir_buf_t ns, weir_map_iter_fn fn, void *opaque)
{
    entry_t *e;
    map_cursor_t c;
    weir_buf_t k;
    weir_buf_t v;
    int rc;

    if (build_key(st, 'm', name, key, ns) != WEIR_OK)
        return WEIR_ENOMEM;
    e = lookup(st, &st->scratch);
    if (e == NULL)
        return WEIR_OK;
    c.p = e->data + e->klen;
    c.end = c.p + e->vlen;
    while (map_next(&c, &k, &v)) {
        rc = fn(k, v, opaque);
        if (rc != 0)
            return rc < 0 ? rc : WEIR_OK;
    }
    return WEIR_OK;
}

/* Decodes the user key of a composite key with the given name. */
static int entry_key(const entry_t *e, const char *name, weir_buf_t *key)
{
    const uint8_t *p = e->data + 1;
    uint32_t n;
    size_t nlen = strlen(name);

    memcpy(&n, p, 4);
    if (n != nlen || memcmp(p + 4, name, n) != 0)
        return 0;
    p += 4 + n;
    memcpy(&n, p, 4);
    *key = WEIR_BUF(p + 4, n);
    return 1;
}

int weir__state_keys(weir__state_t *st, const char *name, weir_key_iter_fn fn,
                     void *opaque)
{
    size_t i;
    weir_buf_t key;
    int rc;

    for (i = 0; i < st->cap; i++) {
        if (st->slots[i].e == NULL || !entry_key(st->slots[i].e, name, &key))
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
    weir__bytes_t kb = {0};
    int rc;

    rc = weir_read_u64(r, &n);
    for (i = 0; rc == WEIR_OK && i < n; i++) {
        rc = weir_read_buf(r, &k);
        if (rc == WEIR_OK)
            rc = weir_read_buf(r, &v);
        if (rc != WEIR_OK)
            break;
        kb.data = (uint8_t *)k.data;
        kb.len = k.len;
        rc = upsert(st, &kb, v);
    }
    return rc;
}
