/*
 * runtime/record.c - records and record batches.
 *
 * How it works
 *   A record is a small struct of views (key, value, key_by key, headers)
 *   plus timestamp and source position. Two kinds exist:
 *   - standalone records (weir_record_new/copy): the struct and every
 *     byte it points to are weir_malloc blocks owned by the record until
 *     weir_emit consumes it or weir_record_destroy frees it. A copied key
 *     and value share the struct's block (REC_KEY_INLINE,
 *     REC_VALUE_INLINE), and a header's name and value share one block,
 *     so a source's record costs few allocations;
 *   - batch records: the structs live in a batch's array and their bytes
 *     in the batch's arena, a list of chunks that never move, so views
 *     stay valid until the batch is freed by the task that consumed it.
 *   weir__batch_add deep-copies a record into a batch: this is the only
 *   copy a record sees on its way between two tasks; within a chain of
 *   operators records are passed by pointer.
 */
#include <stdlib.h>

#include "internal.h"

#define CHUNK_SIZE (64 * 1024)
/* Chunks a reset batch keeps for reuse. Freeing them instead is not just
 * a free: glibc consolidates the arena's fast bins on every free of 64
 * KiB or more, and a batch is freed by the consuming task, so in another
 * thread's arena, under its lock (a tenth of a dedup task's time). */
#define KEEP_CHUNKS 8

/* rec->owned of a standalone record: nonzero, plus where its bytes are. */
#define REC_STANDALONE   1u
#define REC_KEY_INLINE   2u /* key bytes inside the struct's block   */
#define REC_VALUE_INLINE 4u /* value bytes inside the struct's block */

/* Field by field: a memset of the struct compiles to `rep stos`, whose
 * start-up cost is most of the work for 80 bytes (this runs for every
 * record a source emits). */
void weir__record_init(weir_record_t *rec)
{
    rec->key = WEIR_BUF_NULL;
    rec->value = WEIR_BUF_NULL;
    rec->rkey = WEIR_BUF_NULL;
    rec->ts = WEIR_TS_MIN;
    rec->partition = -1;
    rec->offset = -1;
    rec->nheaders = 0;
    rec->owned = 0;
    rec->headers = NULL;
}

/* ------------------------------------------------------------------ *
 * ## Accessors
 * ------------------------------------------------------------------ */

weir_buf_t weir_record_key(const weir_record_t *rec)
{
    return rec ? rec->key : WEIR_BUF_NULL;
}

weir_buf_t weir_record_value(const weir_record_t *rec)
{
    return rec ? rec->value : WEIR_BUF_NULL;
}

weir_ts_t weir_record_ts(const weir_record_t *rec)
{
    return rec ? rec->ts : WEIR_TS_MIN;
}

int32_t weir_record_partition(const weir_record_t *rec)
{
    return rec ? rec->partition : -1;
}

int64_t weir_record_offset(const weir_record_t *rec)
{
    return rec ? rec->offset : -1;
}

int weir_record_header(const weir_record_t *rec, const char *name,
                       weir_buf_t *value)
{
    uint32_t i;

    if (rec == NULL || name == NULL || value == NULL)
        return WEIR_EINVAL;
    for (i = rec->nheaders; i > 0; i--) {
        if (strcmp(rec->headers[i - 1].name, name) == 0) {
            *value = rec->headers[i - 1].value;
            return WEIR_OK;
        }
    }
    return WEIR_ENOENT;
}

int weir_record_is_replay(const weir_record_t *rec)
{
    uint32_t i;

    if (rec == NULL)
        return 0;
    for (i = 0; i < rec->nheaders; i++)
        if (rec->headers[i].name[0] == WEIR_HDR_REPLAY[0] &&
            strcmp(rec->headers[i].name, WEIR_HDR_REPLAY) == 0)
            return 1;
    return 0;
}

size_t weir_record_header_count(const weir_record_t *rec)
{
    return rec ? rec->nheaders : 0;
}

int weir_record_header_at(const weir_record_t *rec, size_t i, const char **name,
                          weir_buf_t *value)
{
    if (rec == NULL || name == NULL || value == NULL)
        return WEIR_EINVAL;
    if (i >= rec->nheaders)
        return WEIR_ENOENT;
    *name = rec->headers[i].name;
    *value = rec->headers[i].value;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Standalone records
 * ------------------------------------------------------------------ */

static int dup_buf(weir_buf_t *dst, weir_buf_t src)
{
    void *d;

    if (src.data == NULL) {
        *dst = WEIR_BUF_NULL;
        return WEIR_OK;
    }
    d = weir_malloc(src.len ? src.len : 1);
    if (d == NULL)
        return WEIR_ENOMEM;
    if (src.len > 0)
        memcpy(d, src.data, src.len);
    *dst = WEIR_BUF(d, src.len);
    return WEIR_OK;
}

/* Bytes a copy of b takes inside a record's block (0 for a null view). */
static size_t inline_size(weir_buf_t b)
{
    return b.data == NULL ? 0 : b.len;
}

/* Copies b to *p and returns the view of the copy ("" for empty). */
static weir_buf_t inline_put(unsigned char **p, weir_buf_t b)
{
    unsigned char *d = *p;

    if (b.len > 0)
        memcpy(d, b.data, b.len);
    *p += b.len;
    return WEIR_BUF(d, b.len);
}

/* One block: the struct, then a copy of key, then of value. */
static weir_record_t *record_new_copy(weir_buf_t key, weir_buf_t value)
{
    size_t kn = inline_size(key);
    size_t vn = inline_size(value);
    weir_record_t *rec;
    unsigned char *p;

    if (kn > SIZE_MAX - sizeof(*rec) - 1 ||
        vn > SIZE_MAX - sizeof(*rec) - 1 - kn)
        return NULL;
    rec = weir_malloc(sizeof(*rec) + kn + vn + 1);
    if (rec == NULL)
        return NULL;
    weir__record_init(rec);
    rec->owned = REC_STANDALONE;
    p = (unsigned char *)(rec + 1);
    if (key.data != NULL) {
        rec->key = inline_put(&p, key);
        rec->owned |= REC_KEY_INLINE;
    }
    if (value.data != NULL) {
        rec->value = inline_put(&p, value);
        rec->owned |= REC_VALUE_INLINE;
    }
    return rec;
}

weir_record_t *weir_record_new(weir_ctx_t *ctx, weir_buf_t key,
                               weir_buf_t value, weir_ts_t ts, int flags)
{
    weir_record_t *rec;

    (void)ctx;
    if (!(flags & WEIR_TAKE)) {
        rec = record_new_copy(key, value);
        if (rec != NULL)
            rec->ts = ts;
        return rec;
    }
    rec = weir_malloc(sizeof(*rec));
    if (rec == NULL) {
        weir_free((void *)key.data);
        weir_free((void *)value.data);
        return NULL;
    }
    weir__record_init(rec);
    rec->owned = REC_STANDALONE;
    rec->ts = ts;
    rec->key = key;
    rec->value = value;
    return rec;
}

weir_record_t *weir_record_copy(const weir_record_t *src)
{
    weir_record_t *rec;
    uint32_t i;

    if (src == NULL)
        return NULL;
    rec = weir_record_new(NULL, src->key, src->value, src->ts, WEIR_COPY);
    if (rec == NULL)
        return NULL;
    rec->partition = src->partition;
    rec->offset = src->offset;
    if (dup_buf(&rec->rkey, src->rkey) != WEIR_OK)
        goto fail;
    for (i = 0; i < src->nheaders; i++)
        if (weir_record_add_header(rec, src->headers[i].name,
                                   src->headers[i].value) != WEIR_OK)
            goto fail;
    return rec;
fail:
    weir_record_destroy(rec);
    return NULL;
}

int weir_record_set_ts(weir_record_t *rec, weir_ts_t ts)
{
    if (rec == NULL || !rec->owned)
        return WEIR_EINVAL;
    rec->ts = ts;
    return WEIR_OK;
}

int weir_record_set_key(weir_record_t *rec, weir_buf_t key)
{
    weir_buf_t nk;

    if (rec == NULL || !rec->owned || (key.data == NULL && key.len > 0))
        return WEIR_EINVAL;
    if (dup_buf(&nk, key) != WEIR_OK)
        return WEIR_ENOMEM;
    if (!(rec->owned & REC_KEY_INLINE))
        weir_free((void *)rec->key.data);
    rec->owned &= ~REC_KEY_INLINE;
    rec->key = nk;
    return WEIR_OK;
}

int weir_record_set_position(weir_record_t *rec, int32_t partition,
                             int64_t offset)
{
    if (rec == NULL || !rec->owned)
        return WEIR_EINVAL;
    rec->partition = partition;
    rec->offset = offset;
    return WEIR_OK;
}

/* The header array holds max(4, the next power of two) entries: grow it
 * when it is full. */
static int headers_reserve(weir_record_t *rec)
{
    uint32_t n = rec->nheaders;
    weir__header_t *hs;

    if (n != 0 && (n < 4 || (n & (n - 1)) != 0))
        return WEIR_OK;
    if (n >= UINT32_MAX / 2)
        return WEIR_ENOMEM;
    hs = weir_realloc(rec->headers, (n == 0 ? 4 : 2 * (size_t)n) * sizeof(*hs));
    if (hs == NULL)
        return WEIR_ENOMEM;
    rec->headers = hs;
    return WEIR_OK;
}

/* A header's name and value share one block: the name, its NUL, then
 * the value bytes; freeing the name frees both. */
int weir_record_add_header(weir_record_t *rec, const char *name,
                           weir_buf_t value)
{
    weir__header_t *h;
    size_t nn;
    char *block;

    if (rec == NULL || !rec->owned || name == NULL ||
        (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    nn = strlen(name) + 1;
    if (value.len > SIZE_MAX - nn || headers_reserve(rec) != WEIR_OK)
        return WEIR_ENOMEM;
    block = weir_malloc(nn + value.len);
    if (block == NULL)
        return WEIR_ENOMEM;
    memcpy(block, name, nn);
    if (value.len > 0)
        memcpy(block + nn, value.data, value.len);
    h = &rec->headers[rec->nheaders++];
    h->name = block;
    h->value = WEIR_BUF(block + nn, value.len);
    return WEIR_OK;
}

void weir_record_destroy(weir_record_t *rec)
{
    uint32_t i;

    if (rec == NULL || !rec->owned)
        return;
    if (!(rec->owned & REC_KEY_INLINE))
        weir_free((void *)rec->key.data);
    if (!(rec->owned & REC_VALUE_INLINE))
        weir_free((void *)rec->value.data);
    weir_free((void *)rec->rkey.data);
    for (i = 0; i < rec->nheaders; i++)
        weir_free((void *)rec->headers[i].name); /* and its value */
    weir_free(rec->headers);
    weir_free(rec);
}

/* ------------------------------------------------------------------ *
 * ## Batches
 * ------------------------------------------------------------------ */

weir__batch_t *weir__batch_new(uint32_t cap)
{
    weir__batch_t *b = weir_calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->recs = weir_malloc(sizeof(weir_record_t) * (cap ? cap : 1));
    if (b->recs == NULL) {
        weir_free(b);
        return NULL;
    }
    b->cap = cap ? cap : 1;
    return b;
}

void weir__batch_free(weir__batch_t *b)
{
    weir__chunk_t *c;
    weir__chunk_t *next;

    if (b == NULL)
        return;
    for (c = b->chunks; c != NULL; c = next) {
        next = c->next;
        weir_free(c);
    }
    for (c = b->spare; c != NULL; c = next) {
        next = c->next;
        weir_free(c);
    }
    weir_free(b->wms);
    weir_free(b->recs);
    weir_free(b);
}

/* Empties b for reuse; keeps up to KEEP_CHUNKS arena chunks of the
 * usual size for its next records. */
void weir__batch_reset(weir__batch_t *b)
{
    weir__chunk_t *c;
    weir__chunk_t *next;
    int kept = 0;

    for (c = b->spare; c != NULL; c = c->next)
        kept++;
    for (c = b->chunks; c != NULL; c = next) {
        next = c->next;
        if (c->cap == CHUNK_SIZE && kept < KEEP_CHUNKS) {
            c->used = 0;
            c->next = b->spare;
            b->spare = c;
            kept++;
            continue;
        }
        weir_free(c);
    }
    b->chunks = NULL;
    b->n = 0;
    b->nwm = 0;
    b->bytes = 0;
}

int weir__batch_add_wm(weir__batch_t *b, weir_ts_t wm)
{
    weir__batch_wm_t *w;

    if (b->nwm > 0 && b->wms[b->nwm - 1].pos == b->n) {
        b->wms[b->nwm - 1].wm = wm; /* nothing between: keep the latest */
        return WEIR_OK;
    }
    if (b->nwm == b->capwm) {
        w = weir_realloc(b->wms, (b->capwm ? b->capwm * 2 : 8) * sizeof(*w));
        if (w == NULL)
            return WEIR_ENOMEM;
        b->wms = w;
        b->capwm = b->capwm ? b->capwm * 2 : 8;
    }
    b->wms[b->nwm].pos = b->n;
    b->wms[b->nwm].wm = wm;
    b->nwm++;
    return WEIR_OK;
}

static void *arena_alloc(weir__batch_t *b, size_t n)
{
    weir__chunk_t *c = b->chunks;
    size_t cap;
    void *p;

    n = (n + 7) & ~(size_t)7;
    if (c == NULL || c->cap - c->used < n) {
        cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
        if (cap == CHUNK_SIZE && b->spare != NULL) {
            c = b->spare;
            b->spare = c->next;
        } else {
            c = weir_malloc(sizeof(*c) + cap);
            if (c == NULL)
                return NULL;
            c->cap = cap;
        }
        c->used = 0;
        c->next = b->chunks;
        b->chunks = c;
    }
    p = c->data + c->used;
    c->used += n;
    b->bytes += n;
    return p;
}

static int arena_buf(weir__batch_t *b, weir_buf_t *dst, weir_buf_t src)
{
    void *d;

    if (src.data == NULL) {
        *dst = WEIR_BUF_NULL;
        return WEIR_OK;
    }
    d = arena_alloc(b, src.len ? src.len : 1);
    if (d == NULL)
        return WEIR_ENOMEM;
    if (src.len > 0)
        memcpy(d, src.data, src.len);
    *dst = WEIR_BUF(d, src.len);
    return WEIR_OK;
}

static int arena_headers(weir__batch_t *b, weir_record_t *dst,
                         const weir_record_t *src)
{
    weir__header_t *hs;
    uint32_t i;
    size_t n;
    char *name;

    hs = arena_alloc(b, sizeof(*hs) * src->nheaders);
    if (hs == NULL)
        return WEIR_ENOMEM;
    for (i = 0; i < src->nheaders; i++) {
        n = strlen(src->headers[i].name) + 1;
        name = arena_alloc(b, n);
        if (name == NULL)
            return WEIR_ENOMEM;
        memcpy(name, src->headers[i].name, n);
        hs[i].name = name;
        if (arena_buf(b, &hs[i].value, src->headers[i].value) != WEIR_OK)
            return WEIR_ENOMEM;
    }
    dst->headers = hs;
    dst->nheaders = src->nheaders;
    return WEIR_OK;
}

/* Arena bytes a copy of buffer src needs (none for a NULL buffer). */
static size_t arena_need(weir_buf_t src)
{
    if (src.data == NULL)
        return 0;
    return ((src.len ? src.len : 1) + 7) & ~(size_t)7;
}

/* Copies src to p (taking arena_need(src) bytes); returns the view. */
static weir_buf_t arena_put(unsigned char **p, weir_buf_t src)
{
    unsigned char *d = *p;

    if (src.data == NULL)
        return WEIR_BUF_NULL;
    if (src.len > 0)
        memcpy(d, src.data, src.len);
    *p = d + arena_need(src);
    return WEIR_BUF(d, src.len);
}

int weir__batch_add(weir__batch_t *b, const weir_record_t *rec,
                    const weir_buf_t *rkey)
{
    weir_buf_t rk = rkey ? *rkey : rec->rkey;
    weir_record_t *dst;
    unsigned char *p = NULL;
    size_t need;

    if (b->n >= b->cap)
        return WEIR_ERANGE;
    /* key, value and key_by key share one arena block */
    need = arena_need(rec->key) + arena_need(rec->value) + arena_need(rk);
    if (need > 0) {
        p = arena_alloc(b, need);
        if (p == NULL)
            return WEIR_ENOMEM;
    }
    dst = &b->recs[b->n];
    dst->key = arena_put(&p, rec->key);
    dst->value = arena_put(&p, rec->value);
    dst->rkey = arena_put(&p, rk);
    dst->ts = rec->ts;
    dst->partition = rec->partition;
    dst->offset = rec->offset;
    dst->nheaders = 0;
    dst->owned = 0;
    dst->headers = NULL;
    if (rec->nheaders > 0 && arena_headers(b, dst, rec) != WEIR_OK)
        return WEIR_ENOMEM;
    b->n++;
    return WEIR_OK;
}
