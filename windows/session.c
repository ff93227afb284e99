/*
 * windows/session.c - the session window assigner and the per-key set of
 * live sessions that merging works on.
 *
 * A record stamped ts opens the proto-session [ts, ts + G). Two windows
 * of one key that intersect (a.start <= b.end && a.end >= b.start, so
 * touching windows count) belong to one session. A record may extend a
 * session, or bridge two sessions into one.
 *
 * How it works
 *
 * The window operator keeps, per key, a set of live sessions, each with
 * its actual window, an id (sid) and its value (trigger prefix and
 * accumulator). The sid names where the session's timers (and, for
 * full-window functions, its records) live; it is fixed when the session
 * is created, so a session that grows moves nothing (Flink's
 * MergingWindowSet keeps a "state window" for the same reason). Values
 * live in the set itself, so a record reads and writes one state value
 * whatever it merges. weir__session_set_plan() finds the sessions a new
 * proto-window merges with, by repeating a pass over the set until the
 * hull stops growing, and orders them oldest first. The operator folds
 * the younger sessions' accumulators into the oldest one (agg->merge)
 * and drops them with their timers.
 *
 * Timers: a session keeps one wake-up timer pending at or before the
 * next moment it needs (its firing at end-1, then its cleanup at
 * end-1+L), and remembers the earliest in `wake`. Growing a session only
 * moves those moments later, so the common case - a record extending a
 * session - touches no timer at all, where deleting and re-adding the
 * pair (Flink's onMerge) would churn the timer heap on every record. A
 * wake-up that finds its moment moved simply sets the next one; since a
 * timer set for a time <= the watermark fires in the same advance, in
 * order, every firing still happens exactly at `when` = end-1.
 *
 * Encoding (a keyed value state): u64 next, then per session (i64 start,
 * i64 end, u64 sid, i64 wake, u32 value length or 0xffffffff for none,
 * the value bytes), native byte order. Sessions are kept unordered; a key
 * rarely has more than a handful of live ones. In memory the values sit
 * in one arena; a changed value is appended to it (the old bytes are
 * dropped at the next decode), so updates never move other values.
 *
 * Invariants
 *   - live sessions of a key are pairwise disjoint and do not touch
 *     (otherwise they would have merged);
 *   - sids are unique within a set and smaller than `next`;
 *   - a live session has an event timer pending at `wake`, and `wake` is
 *     at or before its next firing or cleanup time;
 *   - the hull of a plan contains the proto-window and every merged
 *     session;
 *   - a session's value, when it has one, is vals[voff, voff + vlen);
 *     values are never shared, so changing one leaves the others alone.
 */
#include "assigner.h"

#define ENTRY_LEN 36 /* i64 start, i64 end, u64 sid, i64 wake, u32 len */
#define NONE32    0xffffffffu

static int session_assign(weir_ts_t size, weir_ts_t slide, weir_ts_t ts,
                          weir__span_fn visit, void *arg)
{
    weir__span_t win;

    (void)slide;
    win.start = ts;
    win.end = weir__ts_add(ts, size);
    return visit(win, arg);
}

const weir__assigner_t weir__assigner_session = {
    .name = "session",
    .merging = 1,
    .assign = session_assign,
};

/* ------------------------------------------------------------------ *
 * ## Session sets
 * ------------------------------------------------------------------ */

static int reserve(weir__session_set_t *set, size_t n)
{
    weir__session_t *items;
    size_t *merged;
    size_t cap;

    if (n <= set->cap)
        return WEIR_OK;
    cap = set->cap < 8 ? 8 : set->cap;
    while (cap < n)
        cap *= 2;
    items = weir_realloc(set->items, cap * sizeof(*items));
    if (items == NULL)
        return WEIR_ENOMEM;
    set->items = items;
    merged = weir_realloc(set->merged, cap * sizeof(*merged));
    if (merged == NULL)
        return WEIR_ENOMEM;
    set->merged = merged;
    set->cap = cap;
    set->merged_cap = cap;
    return WEIR_OK;
}

/* Makes room for n more value bytes in the arena. */
static int reserve_vals(weir__session_set_t *set, size_t n)
{
    unsigned char *v;
    size_t cap;

    if (set->vals_len + n <= set->vals_cap)
        return WEIR_OK;
    cap = set->vals_cap < 64 ? 64 : set->vals_cap;
    while (cap < set->vals_len + n)
        cap *= 2;
    v = weir_realloc(set->vals, cap);
    if (v == NULL)
        return WEIR_ENOMEM;
    set->vals = v;
    set->vals_cap = cap;
    return WEIR_OK;
}

int weir__session_set_decode(weir__session_set_t *set, weir_buf_t b)
{
    const unsigned char *p = b.data;
    const unsigned char *end = p + b.len;
    weir__session_t *s;
    uint32_t vlen;
    int rc;

    set->n = 0;
    set->next = 0;
    set->vals_len = 0;
    if (b.len == 0)
        return WEIR_OK;
    if (p == NULL || b.len < 8)
        return WEIR_ECORRUPT;
    /* the values need at most the encoding's size */
    rc = reserve_vals(set, b.len);
    if (rc != WEIR_OK)
        return rc;
    memcpy(&set->next, p, 8);
    p += 8;
    while (p < end) {
        if ((size_t)(end - p) < ENTRY_LEN)
            return WEIR_ECORRUPT;
        rc = reserve(set, set->n + 1);
        if (rc != WEIR_OK)
            return rc;
        s = &set->items[set->n];
        memcpy(&s->start, p, 8);
        memcpy(&s->end, p + 8, 8);
        memcpy(&s->sid, p + 16, 8);
        memcpy(&s->wake, p + 24, 8);
        memcpy(&vlen, p + 32, 4);
        p += ENTRY_LEN;
        s->vlen = WEIR__NO_VALUE;
        s->voff = 0;
        if (vlen != NONE32) {
            if ((size_t)(end - p) < vlen)
                return WEIR_ECORRUPT;
            s->voff = set->vals_len;
            s->vlen = vlen;
            if (vlen > 0)
                memcpy(set->vals + set->vals_len, p, vlen);
            set->vals_len += vlen;
            p += vlen;
        }
        set->n++;
    }
    return WEIR_OK;
}

size_t weir__session_set_encoded_len(const weir__session_set_t *set)
{
    size_t len = 8 + set->n * ENTRY_LEN;
    size_t i;

    for (i = 0; i < set->n; i++)
        if (set->items[i].vlen != WEIR__NO_VALUE)
            len += set->items[i].vlen;
    return len;
}

void weir__session_set_encode(const weir__session_set_t *set,
                              unsigned char *out)
{
    const weir__session_t *s;
    uint32_t vlen;
    size_t i;

    memcpy(out, &set->next, 8);
    out += 8;
    for (i = 0; i < set->n; i++) {
        s = &set->items[i];
        vlen = s->vlen == WEIR__NO_VALUE ? NONE32 : (uint32_t)s->vlen;
        memcpy(out, &s->start, 8);
        memcpy(out + 8, &s->end, 8);
        memcpy(out + 16, &s->sid, 8);
        memcpy(out + 24, &s->wake, 8);
        memcpy(out + 32, &vlen, 4);
        out += ENTRY_LEN;
        if (vlen != NONE32 && vlen > 0) {
            memcpy(out, set->vals + s->voff, vlen);
            out += vlen;
        }
    }
}

int weir__session_set_value(const weir__session_set_t *set, size_t i,
                            weir_buf_t *v)
{
    if (i >= set->n || set->items[i].vlen == WEIR__NO_VALUE)
        return WEIR_ENOENT;
    *v = WEIR_BUF(set->vals + set->items[i].voff, set->items[i].vlen);
    return WEIR_OK;
}

int weir__session_set_put_value(weir__session_set_t *set, size_t i,
                                weir_buf_t v)
{
    size_t from = 0;
    int inside;
    int rc;

    if (i >= set->n || v.len >= NONE32)
        return WEIR_EINVAL;
    /* v may point into the arena, which may move */
    inside = v.len > 0 && set->vals != NULL &&
             (const unsigned char *)v.data >= set->vals &&
             (const unsigned char *)v.data < set->vals + set->vals_len;
    if (inside)
        from = (size_t)((const unsigned char *)v.data - set->vals);
    rc = reserve_vals(set, v.len);
    if (rc != WEIR_OK)
        return rc;
    if (v.len > 0)
        memmove(set->vals + set->vals_len,
                inside ? set->vals + from : (const unsigned char *)v.data,
                v.len);
    set->items[i].voff = set->vals_len;
    set->items[i].vlen = v.len;
    set->vals_len += v.len;
    return WEIR_OK;
}

int weir__session_set_add(weir__session_set_t *set, weir__span_t win,
                          uint64_t sid)
{
    int rc;

    rc = reserve(set, set->n + 1);
    if (rc != WEIR_OK)
        return rc;
    set->items[set->n].start = win.start;
    set->items[set->n].end = win.end;
    set->items[set->n].sid = sid;
    set->items[set->n].wake = WEIR_TS_MIN;
    set->items[set->n].voff = 0;
    set->items[set->n].vlen = WEIR__NO_VALUE;
    set->n++;
    return WEIR_OK;
}

void weir__session_set_remove(weir__session_set_t *set, size_t i)
{
    if (i >= set->n)
        return;
    set->items[i] = set->items[set->n - 1];
    set->n--;
}

long weir__session_set_find(const weir__session_set_t *set, uint64_t sid)
{
    size_t i;

    for (i = 0; i < set->n; i++) {
        if (set->items[i].sid == sid)
            return (long)i;
    }
    return -1;
}

static weir__span_t span_of(const weir__session_t *s)
{
    weir__span_t win;

    win.start = s->start;
    win.end = s->end;
    return win;
}

static void sort_by_sid(weir__session_set_t *set, size_t n)
{
    size_t i;
    size_t j;

    /* insertion sort: a plan rarely holds more than two sessions */
    for (i = 1; i < n; i++) {
        size_t x = set->merged[i];

        for (j = i;
             j > 0 && set->items[set->merged[j - 1]].sid > set->items[x].sid;
             j--)
            set->merged[j] = set->merged[j - 1];
        set->merged[j] = x;
    }
}

long weir__session_set_plan(weir__session_set_t *set, weir__span_t nw,
                            weir__span_t *hull)
{
    size_t found = 0;
    size_t i;
    int grew = 1;
    int rc;

    rc = reserve(set, set->n == 0 ? 1 : set->n);
    if (rc != WEIR_OK)
        return rc;
    *hull = nw;
    while (grew) {
        grew = 0;
        for (i = 0; i < set->n; i++) {
            weir__span_t win = span_of(&set->items[i]);
            size_t k;
            int seen = 0;

            for (k = 0; k < found && !seen; k++)
                seen = set->merged[k] == i;
            if (seen || !weir__span_intersects(win, *hull))
                continue;
            set->merged[found++] = i;
            if (win.start < hull->start)
                hull->start = win.start;
            if (win.end > hull->end)
                hull->end = win.end;
            grew = 1;
        }
    }
    sort_by_sid(set, found);
    return (long)found;
}

void weir__session_set_free(weir__session_set_t *set)
{
    weir_free(set->items);
    weir_free(set->merged);
    weir_free(set->vals);
    memset(set, 0, sizeof(*set));
}
