/*
 * windows/aggregates.c - accumulators (weir_acc_t) and the six built-in
 * incremental aggregates: count, sum, min, max, first and last.
 *
 * How it works
 *
 * An accumulator is a growable byte buffer owned by the window operator.
 * The operator keeps a small prefix of trigger bookkeeping in front of
 * the aggregate's bytes (assigner.h), so one keyed state value holds a
 * whole window; the aggregate only ever sees its own part, through
 * weir_acc_data()/weir_acc_len(). Buffers grow by doubling and are
 * reused from record to record: the hot path does not allocate.
 *
 * Accumulator layouts (native byte order, read and written with memcpy):
 *   count      i64 count
 *   sum        i64 sum (wraps around, computed in uint64_t)
 *   min, max   i64 value, i64 has-value flag
 *   first/last u8 has-value flag, then the value bytes
 *
 * sum, min and max read a signed decimal integer from the header named by
 * the aggregate's opaque (a const char *) or, when it is NULL, from the
 * record's value. Anything else (no such header, not a number, out of
 * range) makes add() fail, and the window operator sends the record to
 * its errors output.
 *
 * Merging (sessions): the operator folds younger sessions into the oldest
 * one, in order of creation, so first keeps the receiving accumulator's
 * value when it has one and last takes the other's.
 *
 * Invariants
 *   - acc->off + acc->len <= acc->cap; bytes past a resize are zero;
 *   - results of count/sum/min/max are decimal text without a newline.
 */
#include "assigner.h"

/* ------------------------------------------------------------------ *
 * ## Accumulator buffers
 * ------------------------------------------------------------------ */

int weir__acc_reserve(weir_acc_t *acc, size_t total)
{
    unsigned char *buf;
    size_t cap;

    if (total <= acc->cap)
        return WEIR_OK;
    cap = acc->cap < 64 ? 64 : acc->cap;
    while (cap < total) {
        if (cap > SIZE_MAX / 2)
            return WEIR_ENOMEM;
        cap *= 2;
    }
    buf = weir_realloc(acc->buf, cap);
    if (buf == NULL)
        return WEIR_ENOMEM;
    acc->buf = buf;
    acc->cap = cap;
    return WEIR_OK;
}

void weir__acc_free(weir_acc_t *acc)
{
    weir_free(acc->buf);
    memset(acc, 0, sizeof(*acc));
}

void *weir_acc_data(weir_acc_t *acc)
{
    if (acc == NULL || acc->buf == NULL)
        return NULL;
    return acc->buf + acc->off;
}

size_t weir_acc_len(const weir_acc_t *acc)
{
    return acc == NULL ? 0 : acc->len;
}

int weir_acc_resize(weir_acc_t *acc, size_t len)
{
    int rc;

    if (acc == NULL || len > SIZE_MAX - acc->off)
        return WEIR_EINVAL;
    rc = weir__acc_reserve(acc, acc->off + len);
    if (rc != WEIR_OK)
        return rc;
    if (len > acc->len)
        memset(acc->buf + acc->off + acc->len, 0, len - acc->len);
    acc->len = len;
    return WEIR_OK;
}

int weir_acc_set(weir_acc_t *acc, weir_buf_t b)
{
    const unsigned char *src = b.data;
    size_t from = 0;
    int inside;
    int rc;

    if (acc == NULL || (b.data == NULL && b.len > 0))
        return WEIR_EINVAL;
    /* b may point into the buffer itself: remember where, across growth */
    inside = acc->buf != NULL && src >= acc->buf && src < acc->buf + acc->cap;
    if (inside)
        from = (size_t)(src - acc->buf);
    rc = weir_acc_resize(acc, b.len);
    if (rc != WEIR_OK)
        return rc;
    if (inside)
        src = acc->buf + from;
    if (b.len > 0)
        memmove(acc->buf + acc->off, src, b.len);
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Helpers
 * ------------------------------------------------------------------ */

static int64_t load_i64(const void *p)
{
    int64_t v;

    memcpy(&v, p, sizeof(v));
    return v;
}

static void store_i64(void *p, int64_t v)
{
    memcpy(p, &v, sizeof(v));
}

/* The integer a record carries: header `opaque` or the value. */
static int record_i64(const weir_record_t *rec, const void *opaque, int64_t *v)
{
    weir_buf_t b;
    int rc;

    if (rec == NULL)
        return WEIR_EINVAL;
    if (opaque != NULL) {
        rc = weir_record_header(rec, (const char *)opaque, &b);
        if (rc != WEIR_OK)
            return rc;
    } else {
        b = weir_record_value(rec);
    }
    return weir__parse_i64(b.data, b.len, v);
}

static int result_i64(weir_acc_t *out, int64_t v)
{
    char text[24];
    size_t len;

    len = weir__format_i64(text, v);
    return weir_acc_set(out, WEIR_BUF(text, len));
}

/* ------------------------------------------------------------------ *
 * ## count and sum
 * ------------------------------------------------------------------ */

static int count_add(weir_acc_t *acc, const weir_record_t *rec,
                     const void *opaque)
{
    unsigned char *p = weir_acc_data(acc);

    (void)rec;
    (void)opaque;
    if (p == NULL || weir_acc_len(acc) != 8)
        return WEIR_EINVAL;
    store_i64(p, (int64_t)((uint64_t)load_i64(p) + 1));
    return WEIR_OK;
}

/* count and sum merge the same way: add the other's i64 */
static int i64_merge_add(weir_acc_t *acc, weir_buf_t other, const void *opaque)
{
    unsigned char *p = weir_acc_data(acc);

    (void)opaque;
    if (p == NULL || weir_acc_len(acc) != 8 || other.len != 8)
        return WEIR_EINVAL;
    store_i64(
        p, (int64_t)((uint64_t)load_i64(p) + (uint64_t)load_i64(other.data)));
    return WEIR_OK;
}

static int i64_result(weir_buf_t acc, weir_acc_t *out, const void *opaque)
{
    (void)opaque;
    if (acc.len != 8)
        return WEIR_EINVAL;
    return result_i64(out, load_i64(acc.data));
}

static int sum_add(weir_acc_t *acc, const weir_record_t *rec,
                   const void *opaque)
{
    unsigned char *p = weir_acc_data(acc);
    int64_t v;
    int rc;

    if (p == NULL || weir_acc_len(acc) != 8)
        return WEIR_EINVAL;
    rc = record_i64(rec, opaque, &v);
    if (rc != WEIR_OK)
        return rc;
    store_i64(p, (int64_t)((uint64_t)load_i64(p) + (uint64_t)v));
    return WEIR_OK;
}

const weir_aggregate_def_t weir_agg_count = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "count",
    .acc_size = 8,
    .add = count_add,
    .merge = i64_merge_add,
    .result = i64_result,
};

const weir_aggregate_def_t weir_agg_sum = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "sum",
    .acc_size = 8,
    .add = sum_add,
    .merge = i64_merge_add,
    .result = i64_result,
};

/* ------------------------------------------------------------------ *
 * ## min and max: [i64 value][i64 has]
 * ------------------------------------------------------------------ */

static int extreme_fold(weir_acc_t *acc, int64_t v, int want_max)
{
    unsigned char *p = weir_acc_data(acc);
    int64_t cur;

    if (p == NULL || weir_acc_len(acc) != 16)
        return WEIR_EINVAL;
    cur = load_i64(p);
    if (load_i64(p + 8) == 0 || (want_max ? v > cur : v < cur))
        store_i64(p, v);
    store_i64(p + 8, 1);
    return WEIR_OK;
}

static int extreme_merge(weir_acc_t *acc, weir_buf_t other, int want_max)
{
    const unsigned char *o = other.data;

    if (other.len != 16)
        return WEIR_EINVAL;
    if (load_i64(o + 8) == 0)
        return WEIR_OK;
    return extreme_fold(acc, load_i64(o), want_max);
}

static int extreme_result(weir_buf_t acc, weir_acc_t *out)
{
    const unsigned char *p = acc.data;

    if (acc.len != 16)
        return WEIR_EINVAL;
    if (load_i64(p + 8) == 0)
        return weir_acc_resize(out, 0);
    return result_i64(out, load_i64(p));
}

static int min_add(weir_acc_t *acc, const weir_record_t *rec,
                   const void *opaque)
{
    int64_t v;
    int rc;

    rc = record_i64(rec, opaque, &v);
    if (rc != WEIR_OK)
        return rc;
    return extreme_fold(acc, v, 0);
}

static int max_add(weir_acc_t *acc, const weir_record_t *rec,
                   const void *opaque)
{
    int64_t v;
    int rc;

    rc = record_i64(rec, opaque, &v);
    if (rc != WEIR_OK)
        return rc;
    return extreme_fold(acc, v, 1);
}

static int min_merge(weir_acc_t *acc, weir_buf_t other, const void *opaque)
{
    (void)opaque;
    return extreme_merge(acc, other, 0);
}

static int max_merge(weir_acc_t *acc, weir_buf_t other, const void *opaque)
{
    (void)opaque;
    return extreme_merge(acc, other, 1);
}

static int extreme_result_cb(weir_buf_t acc, weir_acc_t *out,
                             const void *opaque)
{
    (void)opaque;
    return extreme_result(acc, out);
}

const weir_aggregate_def_t weir_agg_min = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "min",
    .acc_size = 16,
    .add = min_add,
    .merge = min_merge,
    .result = extreme_result_cb,
};

const weir_aggregate_def_t weir_agg_max = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "max",
    .acc_size = 16,
    .add = max_add,
    .merge = max_merge,
    .result = extreme_result_cb,
};

/* ------------------------------------------------------------------ *
 * ## first and last: [u8 has][value bytes]
 * ------------------------------------------------------------------ */

static int keep_value(weir_acc_t *acc, weir_buf_t v)
{
    unsigned char *p;
    int rc;

    if (v.len == SIZE_MAX)
        return WEIR_ERANGE;
    rc = weir_acc_resize(acc, 1 + v.len);
    if (rc != WEIR_OK)
        return rc;
    p = weir_acc_data(acc);
    p[0] = 1;
    if (v.len > 0)
        memcpy(p + 1, v.data, v.len);
    return WEIR_OK;
}

static int has_value(weir_acc_t *acc)
{
    const unsigned char *p = weir_acc_data(acc);

    return p != NULL && weir_acc_len(acc) >= 1 && p[0] != 0;
}

static int first_add(weir_acc_t *acc, const weir_record_t *rec,
                     const void *opaque)
{
    (void)opaque;
    if (acc == NULL || rec == NULL)
        return WEIR_EINVAL;
    if (has_value(acc))
        return WEIR_OK;
    return keep_value(acc, weir_record_value(rec));
}

static int last_add(weir_acc_t *acc, const weir_record_t *rec,
                    const void *opaque)
{
    (void)opaque;
    if (acc == NULL || rec == NULL)
        return WEIR_EINVAL;
    return keep_value(acc, weir_record_value(rec));
}

static int other_has(weir_buf_t other)
{
    return other.len >= 1 && ((const unsigned char *)other.data)[0] != 0;
}

static int first_merge(weir_acc_t *acc, weir_buf_t other, const void *opaque)
{
    (void)opaque;
    if (has_value(acc) || !other_has(other))
        return WEIR_OK;
    return weir_acc_set(acc, other);
}

static int last_merge(weir_acc_t *acc, weir_buf_t other, const void *opaque)
{
    (void)opaque;
    if (!other_has(other))
        return WEIR_OK;
    return weir_acc_set(acc, other);
}

static int value_result(weir_buf_t acc, weir_acc_t *out, const void *opaque)
{
    const unsigned char *p = acc.data;

    (void)opaque;
    if (acc.len < 1 || p[0] == 0)
        return weir_acc_resize(out, 0);
    return weir_acc_set(out, WEIR_BUF(p + 1, acc.len - 1));
}

const weir_aggregate_def_t weir_agg_first = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "first",
    .acc_size = 1,
    .add = first_add,
    .merge = first_merge,
    .result = value_result,
};

const weir_aggregate_def_t weir_agg_last = {
    .version = WEIR_AGGREGATE_VERSION,
    .name = "last",
    .acc_size = 1,
    .add = last_add,
    .merge = last_merge,
    .result = value_result,
};
