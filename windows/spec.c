/*
 * windows/spec.c - window specs (weir_window_t): constructors, setters,
 * accessors, weir_window_floor() and weir_record_window(); plus the
 * decimal helpers declared in assigner.h (the namespace helpers are
 * inline there: they run several times per record).
 *
 * How it works
 *
 * A spec is a small plain struct: kind, size (S, G or R), slide (D),
 * allowed lateness and trigger. It is a description only; the window
 * operator (window_op.c) and the dedup operator copy what they need out
 * of it through the public accessors, so the struct stays private to
 * this file.
 *
 * Invariants
 *   - size > 0 (rolling: >= 0); 0 < slide <= size for sliding windows;
 *   - lateness >= 0; trigger parameters > 0;
 *   - weir_window_floor() never overflows: results below WEIR_TS_MIN are
 *     clamped to WEIR_TS_MIN.
 */
#include "assigner.h"

struct weir_window_s {
    weir_window_kind_t kind;     /* tumbling/sliding/session/rolling */
    weir_ts_t size;              /* S, G or R                        */
    weir_ts_t slide;             /* D (sliding), S (tumbling), else 0 */
    weir_ts_t lateness;          /* L >= 0                           */
    weir_trigger_kind_t trigger; /* event time, count or early        */
    int64_t trigger_param;       /* n (count) or T (early), else 0    */
};

/* ------------------------------------------------------------------ *
 * ## Constructors
 * ------------------------------------------------------------------ */

static weir_window_t *spec_new(weir_window_kind_t kind, weir_ts_t size,
                               weir_ts_t slide)
{
    weir_window_t *w;

    w = weir_calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    w->kind = kind;
    w->size = size;
    w->slide = slide;
    w->lateness = 0;
    w->trigger = WEIR_TRIGGER_EVENT_TIME;
    w->trigger_param = 0;
    return w;
}

weir_window_t *weir_window_tumbling(weir_ts_t size)
{
    if (size <= 0)
        return NULL;
    return spec_new(WEIR_WINDOW_TUMBLING, size, size);
}

weir_window_t *weir_window_sliding(weir_ts_t size, weir_ts_t slide)
{
    if (size <= 0 || slide <= 0 || slide > size)
        return NULL;
    return spec_new(WEIR_WINDOW_SLIDING, size, slide);
}

weir_window_t *weir_window_session(weir_ts_t gap)
{
    if (gap <= 0)
        return NULL;
    return spec_new(WEIR_WINDOW_SESSION, gap, 0);
}

weir_window_t *weir_window_rolling(weir_ts_t ttl)
{
    if (ttl < 0)
        return NULL;
    return spec_new(WEIR_WINDOW_ROLLING, ttl, 0);
}

weir_window_t *weir_window_dup(const weir_window_t *w)
{
    weir_window_t *copy;

    if (w == NULL)
        return NULL;
    copy = weir_malloc(sizeof(*copy));
    if (copy == NULL)
        return NULL;
    *copy = *w;
    return copy;
}

void weir_window_destroy(weir_window_t *w)
{
    weir_free(w);
}

/* ------------------------------------------------------------------ *
 * ## Setters
 * ------------------------------------------------------------------ */

int weir_window_set_lateness(weir_window_t *w, weir_ts_t lateness)
{
    if (w == NULL || lateness < 0)
        return WEIR_EINVAL;
    w->lateness = lateness;
    return WEIR_OK;
}

int weir_window_set_trigger_count(weir_window_t *w, uint64_t n)
{
    if (w == NULL || n == 0 || n > (uint64_t)INT64_MAX)
        return WEIR_EINVAL;
    w->trigger = WEIR_TRIGGER_COUNT;
    w->trigger_param = (int64_t)n;
    return WEIR_OK;
}

int weir_window_set_trigger_early(weir_window_t *w, weir_ts_t interval)
{
    if (w == NULL || interval <= 0)
        return WEIR_EINVAL;
    w->trigger = WEIR_TRIGGER_EARLY;
    w->trigger_param = interval;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Accessors
 * ------------------------------------------------------------------ */

weir_window_kind_t weir_window_kind(const weir_window_t *w)
{
    return w == NULL ? (weir_window_kind_t)0 : w->kind;
}

weir_ts_t weir_window_size(const weir_window_t *w)
{
    return w == NULL ? 0 : w->size;
}

weir_ts_t weir_window_slide(const weir_window_t *w)
{
    return w == NULL ? 0 : w->slide;
}

weir_ts_t weir_window_lateness(const weir_window_t *w)
{
    return w == NULL ? 0 : w->lateness;
}

weir_trigger_kind_t weir_window_trigger(const weir_window_t *w, int64_t *param)
{
    if (w == NULL) {
        if (param != NULL)
            *param = 0;
        return WEIR_TRIGGER_EVENT_TIME;
    }
    if (param != NULL)
        *param = w->trigger_param;
    return w->trigger;
}

/* ------------------------------------------------------------------ *
 * ## Floor division and result records
 * ------------------------------------------------------------------ */

weir_ts_t weir_window_floor(weir_ts_t ts, weir_ts_t step)
{
    weir_ts_t r;

    if (step <= 0)
        return ts;
    r = ts % step;
    if (r < 0)
        r += step;
    if (ts < WEIR_TS_MIN + r)
        return WEIR_TS_MIN;
    return ts - r;
}

static int header_i64(const weir_record_t *rec, const char *name,
                      weir_ts_t *out)
{
    weir_buf_t v;
    int64_t n;
    int rc;

    rc = weir_record_header(rec, name, &v);
    if (rc != WEIR_OK)
        return rc;
    rc = weir__parse_i64(v.data, v.len, &n);
    if (rc != WEIR_OK)
        return rc;
    if (out != NULL)
        *out = n;
    return WEIR_OK;
}

int weir_record_window(const weir_record_t *rec, weir_ts_t *start,
                       weir_ts_t *end)
{
    int rc;

    if (rec == NULL)
        return WEIR_EINVAL;
    rc = header_i64(rec, WEIR_HDR_WINDOW_START, start);
    if (rc != WEIR_OK)
        return rc;
    return header_i64(rec, WEIR_HDR_WINDOW_END, end);
}

/* ------------------------------------------------------------------ *
 * ## Shared helpers (assigner.h)
 * ------------------------------------------------------------------ */

int weir__parse_i64(const void *data, size_t len, int64_t *v)
{
    const unsigned char *p = data;
    uint64_t limit;
    uint64_t acc = 0;
    size_t i = 0;
    int neg = 0;

    if (p == NULL || len == 0)
        return WEIR_EPARSE;
    if (p[0] == '-' || p[0] == '+') {
        neg = p[0] == '-';
        i = 1;
    }
    if (i == len)
        return WEIR_EPARSE;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < len; i++) {
        unsigned d;

        if (p[i] < '0' || p[i] > '9')
            return WEIR_EPARSE;
        d = (unsigned)(p[i] - '0');
        if (acc > (limit - d) / 10)
            return WEIR_ERANGE;
        acc = acc * 10 + d;
    }
    if (neg)
        *v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *v = (int64_t)acc;
    return WEIR_OK;
}

size_t weir__format_i64(char *out, int64_t v)
{
    static const char pairs[201] = "00010203040506070809"
                                   "10111213141516171819"
                                   "20212223242526272829"
                                   "30313233343536373839"
                                   "40414243444546474849"
                                   "50515253545556575859"
                                   "60616263646566676869"
                                   "70717273747576777879"
                                   "80818283848586878889"
                                   "90919293949596979899";
    char tmp[24];
    uint64_t u;
    size_t n = sizeof(tmp);
    size_t len = 0;

    u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    /* two digits per division, from the right */
    while (u >= 100) {
        size_t d = (size_t)(u % 100) * 2;

        u /= 100;
        tmp[--n] = pairs[d + 1];
        tmp[--n] = pairs[d];
    }
    if (u >= 10) {
        tmp[--n] = pairs[u * 2 + 1];
        tmp[--n] = pairs[u * 2];
    } else {
        tmp[--n] = (char)('0' + u);
    }
    if (v < 0)
        out[len++] = '-';
    memcpy(out + len, tmp + n, sizeof(tmp) - n);
    len += sizeof(tmp) - n;
    out[len] = '\0';
    return len;
}
