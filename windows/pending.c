/*
 * windows/pending.c - the pending tumbling/sliding windows of one key as
 * one byte list, the value of the window operator's "win.pend" state.
 *
 * A record of a sliding window of size S and slide D falls in S/D
 * windows at once. Keeping each window in a state value of its own costs
 * S/D lookups (and as many cache misses) per record; keeping all of a
 * key's pending windows in one value costs one read and one write,
 * whatever S/D is. The list is small: a key has about S/D + 1 pending
 * windows, since a window leaves it when the watermark passes its end.
 *
 * How it works
 *
 * The list is worked on in place, in the encoding it is stored in:
 * entries of i64 start, u32 value length, value bytes (native byte
 * order), in no particular order. Finding a window walks the entries;
 * a value that keeps its length (the usual case: counts, sums, min/max)
 * is overwritten in place; one that changes length is spliced; a new
 * window is appended; a leaving one is cut out.
 *
 * Invariants
 *   - buf[0..len) is a sequence of whole entries, no two with the same
 *     start (a corrupt stored value is caught by the walk: WEIR_ECORRUPT);
 *   - views returned by weir__pend_find() are valid until the list
 *     changes.
 */
#include "assigner.h"

#define HEAD 12 /* i64 start, u32 length */

static int reserve(weir__pend_t *p, size_t need)
{
    unsigned char *b;
    size_t cap;

    if (need <= p->cap)
        return WEIR_OK;
    cap = p->cap < 64 ? 64 : p->cap;
    while (cap < need)
        cap *= 2;
    b = weir_realloc(p->buf, cap);
    if (b == NULL)
        return WEIR_ENOMEM;
    p->buf = b;
    p->cap = cap;
    return WEIR_OK;
}

int weir__pend_load(weir__pend_t *p, weir_buf_t b)
{
    int rc;

    p->len = 0;
    if (b.len == 0)
        return WEIR_OK;
    if (b.data == NULL)
        return WEIR_ECORRUPT;
    rc = reserve(p, b.len);
    if (rc != WEIR_OK)
        return rc;
    memcpy(p->buf, b.data, b.len);
    p->len = b.len;
    return WEIR_OK;
}

int weir__pend_find(const weir__pend_t *p, weir_ts_t start, size_t *at,
                    weir_buf_t *value)
{
    size_t i = 0;
    weir_ts_t s;
    uint32_t n;

    while (i < p->len) {
        if (p->len - i < HEAD)
            return WEIR_ECORRUPT;
        memcpy(&s, p->buf + i, 8);
        memcpy(&n, p->buf + i + 8, 4);
        if (p->len - i - HEAD < n)
            return WEIR_ECORRUPT;
        if (s == start) {
            *at = i;
            *value = WEIR_BUF(p->buf + i + HEAD, n);
            return WEIR_OK;
        }
        i += HEAD + n;
    }
    return WEIR_ENOENT;
}

int weir__pend_put(weir__pend_t *p, weir_ts_t start, size_t at, int found,
                   weir_buf_t value)
{
    uint32_t n = (uint32_t)value.len;
    uint32_t old;
    size_t tail;
    int rc;

    if (value.len > UINT32_MAX - HEAD)
        return WEIR_ERANGE;
    if (!found) {
        rc = reserve(p, p->len + HEAD + value.len);
        if (rc != WEIR_OK)
            return rc;
        at = p->len;
        memcpy(p->buf + at, &start, 8);
        memcpy(p->buf + at + 8, &n, 4);
        p->len += HEAD + value.len;
    } else {
        memcpy(&old, p->buf + at + 8, 4);
        if (old != n) {
            if (n > old) {
                rc = reserve(p, p->len + (n - old));
                if (rc != WEIR_OK)
                    return rc;
            }
            tail = p->len - (at + HEAD + old);
            memmove(p->buf + at + HEAD + n, p->buf + at + HEAD + old, tail);
            p->len = p->len - old + n;
            memcpy(p->buf + at + 8, &n, 4);
        }
    }
    if (n > 0)
        memcpy(p->buf + at + HEAD, value.data, n);
    return WEIR_OK;
}

void weir__pend_remove(weir__pend_t *p, size_t at)
{
    uint32_t n;
    size_t end;

    memcpy(&n, p->buf + at + 8, 4);
    end = at + HEAD + n;
    memmove(p->buf + at, p->buf + end, p->len - end);
    p->len -= HEAD + n;
}

void weir__pend_free(weir__pend_t *p)
{
    weir_free(p->buf);
    memset(p, 0, sizeof(*p));
}
