/*
 * json.c - the JSON-lines parse operator: turns line records into records
 * keyed by JSON field values and stamped with an event time.
 *
 * Each input record's value is one line. A blank line is dropped. Any
 * other line is either emitted (same value bytes, new key and timestamp,
 * optionally one more header) or forwarded to WEIR_TAG_ERRORS with a
 * one-sentence reason. The operator is stateless, so it needs no snapshot
 * and runs at any parallelism.
 *
 * How it works
 *   1. json_loadb() with the line's length (never a C string, so a NUL
 *      byte is an error, not a truncation; invalid UTF-8 is rejected by
 *      jansson). JSON_DECODE_ANY lets us tell "not JSON" from "JSON but
 *      not an object"; JSON_ALLOW_NUL accepts the valid escape \u0000.
 *   2. If jansson reports a numeric overflow (an integer beyond int64),
 *      parse a copy in which exactly those integer literals get ".0"
 *      appended, so they read as reals while every other integer stays
 *      exact (JSON_DECODE_INT_AS_REAL would turn all of them into reals,
 *      losing precision above 2^53 and the integer type of the time
 *      field). Such numbers only matter where they are used: in a key,
 *      the time field or the header field they make the line an error.
 *   3. Key fields are looked up in order and gathered into a JSON array
 *      (sharing the parsed values). The array is normalised in place:
 *      integral reals inside the int64 range become integers, recursively
 *      through nested arrays and objects. It is then dumped compact with
 *      sorted object members into a per-instance buffer: that text is the
 *      key. In content-hash mode the whole object is normalised, dumped
 *      and hashed with XXH3-128 instead.
 *   4. The time field must be a JSON integer (not a real, not a string).
 *   5. A new record copies the input's value, headers and position, gets
 *      the key and the timestamp (and the optional header), and is emitted.
 *
 * Invariants
 *   - Every non-blank input line produces exactly one output: on the main
 *     output or on WEIR_TAG_ERRORS (value byte for byte).
 *   - The options are read-only once an operator uses them, so subtasks
 *     share them without locks; each subtask has its own dump buffer.
 *   - Normalisation only touches the parsed document, which is private to
 *     one process() call.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/operator.h>

struct weir_json_opts_s {
    char **keys;        /* key field names, in order         */
    size_t nkeys;       /* number of key fields              */
    char *time_field;   /* time member name                  */
    int content_hash;   /* 1: key = XXH3-128 of the object   */
    char *hdr_field;    /* integer member copied to a header */
    char *hdr_name;     /* that header's name                */
};

/* Per-subtask state: a reusable buffer for canonical dumps. */
struct json_parse {
    char *buf;  /* dump buffer (weir_malloc) */
    size_t cap; /* its capacity              */
};

#define TWO_POW_63 9223372036854775808.0

/* ------------------------------------------------------------------ *
 * ## Options
 * ------------------------------------------------------------------ */

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = weir_malloc(n);

    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static char *dup_range(const char *s, size_t n)
{
    char *d = weir_malloc(n + 1);

    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

weir_json_opts_t *weir_json_opts_new(void)
{
    weir_json_opts_t *opts = weir_calloc(1, sizeof(*opts));

    if (opts == NULL)
        return NULL;
    opts->time_field = dup_str(WEIR_JSON_TIME_FIELD);
    if (opts->time_field == NULL) {
        weir_free(opts);
        return NULL;
    }
    return opts;
}

void weir_json_opts_destroy(weir_json_opts_t *opts)
{
    size_t i;

    if (opts == NULL)
        return;
    for (i = 0; i < opts->nkeys; i++)
        weir_free(opts->keys[i]);
    weir_free(opts->keys);
    weir_free(opts->time_field);
    weir_free(opts->hdr_field);
    weir_free(opts->hdr_name);
    weir_free(opts);
}

/* Appends an owned name to the key list (frees it on failure). */
static int push_key(weir_json_opts_t *opts, char *name)
{
    char **keys;

    if (name == NULL)
        return WEIR_ENOMEM;
    keys = weir_realloc(opts->keys, (opts->nkeys + 1) * sizeof(*keys));
    if (keys == NULL) {
        weir_free(name);
        return WEIR_ENOMEM;
    }
    opts->keys = keys;
    opts->keys[opts->nkeys++] = name;
    return WEIR_OK;
}

int weir_json_opts_add_key(weir_json_opts_t *opts, const char *field)
{
    if (opts == NULL || field == NULL || field[0] == '\0')
        return WEIR_EINVAL;
    return push_key(opts, dup_str(field));
}

int weir_json_opts_add_keys(weir_json_opts_t *opts, const char *fields)
{
    size_t before;
    const char *p;
    const char *comma;
    int rc = WEIR_OK;

    if (opts == NULL || fields == NULL || fields[0] == '\0')
        return WEIR_EINVAL;
    before = opts->nkeys;
    for (p = fields; rc == WEIR_OK; p = comma + 1) {
        comma = strchr(p, ',');
        if (comma == NULL)
            comma = p + strlen(p);
        if (comma == p)
            rc = WEIR_EINVAL;
        else
            rc = push_key(opts, dup_range(p, (size_t)(comma - p)));
        if (*comma == '\0')
            break;
    }
    if (rc != WEIR_OK) {
        while (opts->nkeys > before)
            weir_free(opts->keys[--opts->nkeys]);
    }
    return rc;
}

int weir_json_opts_set_time_field(weir_json_opts_t *opts, const char *field)
{
    char *d;

    if (opts == NULL || field == NULL || field[0] == '\0')
        return WEIR_EINVAL;
    d = dup_str(field);
    if (d == NULL)
        return WEIR_ENOMEM;
    weir_free(opts->time_field);
    opts->time_field = d;
    return WEIR_OK;
}

int weir_json_opts_set_content_hash(weir_json_opts_t *opts, int on)
{
    if (opts == NULL || (on != 0 && on != 1))
        return WEIR_EINVAL;
    opts->content_hash = on;
    return WEIR_OK;
}

int weir_json_opts_set_header_field(weir_json_opts_t *opts, const char *field,
                                    const char *header)
{
    char *f;
    char *h;

    if (opts == NULL || (field != NULL && field[0] == '\0') ||
        (header != NULL && header[0] == '\0'))
        return WEIR_EINVAL;
    if (field == NULL) {
        weir_free(opts->hdr_field);
        weir_free(opts->hdr_name);
        opts->hdr_field = NULL;
        opts->hdr_name = NULL;
        return WEIR_OK;
    }
    f = dup_str(field);
    h = dup_str(header != NULL ? header : field);
    if (f == NULL || h == NULL) {
        weir_free(f);
        weir_free(h);
        return WEIR_ENOMEM;
    }
    weir_free(opts->hdr_field);
    weir_free(opts->hdr_name);
    opts->hdr_field = f;
    opts->hdr_name = h;
    return WEIR_OK;
}

int weir_json_opts_check(const weir_json_opts_t *opts, char *errstr,
                         size_t errstr_size)
{
    const char *msg = NULL;

    if (opts == NULL)
        msg = "JSON options are NULL";
    else if (opts->nkeys == 0 && !opts->content_hash)
        msg = "JSON parse needs key fields or the content hash";
    else if (opts->nkeys > 0 && opts->content_hash)
        msg = "JSON parse takes key fields or the content hash, not both";
    if (msg == NULL)
        return WEIR_OK;
    if (errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, "%s", msg);
    return WEIR_EINVAL;
}

static void opts_free(void *opts)
{
    weir_json_opts_destroy(opts);
}

weir_stream_t *weir_stream_json_parse(weir_stream_t *s, weir_json_opts_t *opts)
{
    char err[128];

    if (s == NULL) {
        weir_json_opts_destroy(opts);
        return NULL;
    }
    if (!weir_stream_ok(s)) {
        weir_json_opts_destroy(opts);
        return s;
    }
    if (weir_json_opts_check(opts, err, sizeof(err)) != WEIR_OK) {
        weir_json_opts_destroy(opts);
        return weir_stream_error(s, WEIR_EINVAL, err);
    }
    if (weir_pipeline_attach(weir_stream_pipeline(s), opts, opts_free) !=
        WEIR_OK)
        return weir_stream_error(s, WEIR_ENOMEM, "out of memory");
    return weir_stream_apply(s, &weir_op_json_parse, opts);
}

/* ------------------------------------------------------------------ *
 * ## Canonical JSON
 * ------------------------------------------------------------------ */

/* 1 when the real v holds an integral value inside the int64 range. */
static int integral_real(const json_t *v, json_int_t *out)
{
    double d = json_real_value(v);

    if (d != floor(d) || d < -TWO_POW_63 || d >= TWO_POW_63)
        return 0;
    *out = (json_int_t)d;
    return 1;
}

/* May this real be an integer that overflowed int64 and was read as a
 * real? */
static int maybe_big_int(const json_t *v)
{
    double d = json_real_value(v);

    return d == floor(d) && (d < -TWO_POW_63 || d >= TWO_POW_63);
}

/* 1 when v is, or contains, a real that may be an overflowed integer. */
static int has_big_int(const json_t *v)
{
    const char *k;
    json_t *c;
    size_t i;

    if (json_is_real(v))
        return maybe_big_int(v);
    if (json_is_array(v)) {
        json_array_foreach(v, i, c) {
            if (has_big_int(c))
                return 1;
        }
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c) {
            if (has_big_int(c))
                return 1;
        }
    }
    return 0;
}

/* Replaces the child at (i or it) of container c when it is an integral
 * real. */
static int replace_real(json_t *c, size_t i, void *it, const json_t *v)
{
    json_int_t n;
    json_t *r;

    if (!integral_real(v, &n))
        return WEIR_OK;
    r = json_integer(n);
    if (r == NULL)
        return WEIR_ENOMEM;
    if (json_is_array(c) ? json_array_set_new(c, i, r)
                         : json_object_iter_set_new(c, it, r))
        return WEIR_ENOMEM;
    return WEIR_OK;
}

/*
 * Normalises the children of a container in place, recursively (jansson
 * limits nesting on input, so recursion is bounded): integral reals in
 * the int64 range become integers. Returns WEIR_OK or WEIR_ENOMEM.
 */
static int normalise(json_t *c)
{
    json_t *v;
    void *it = NULL;
    size_t i = 0;
    int rc = WEIR_OK;

    if (json_is_object(c))
        it = json_object_iter(c);
    while (rc == WEIR_OK) {
        if (json_is_array(c)) {
            if (i >= json_array_size(c))
                break;
            v = json_array_get(c, i);
        } else {
            if (it == NULL)
                break;
            v = json_object_iter_value(it);
        }
        if (json_is_real(v))
            rc = replace_real(c, i, it, v);
        else if (json_is_array(v) || json_is_object(v))
            rc = normalise(v);
        if (json_is_array(c))
            i++;
        else
            it = json_object_iter_next(c, it);
    }
    return rc;
}

/* Dumps j canonically into st->buf; sets *len. */
static int dump_canonical(struct json_parse *st, const json_t *j, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY;
    size_t need;
    size_t cap;
    char *nb;

    need = json_dumpb(j, st->buf, st->cap, flags);
    if (need == 0)
        return WEIR_ENOMEM;
    if (need > st->cap) {
        cap = st->cap ? st->cap : 256;
        while (cap < need)
            cap *= 2;
        nb = weir_realloc(st->buf, cap);
        if (nb == NULL)
            return WEIR_ENOMEM;
        st->buf = nb;
        st->cap = cap;
        need = json_dumpb(j, st->buf, st->cap, flags);
        if (need == 0 || need > st->cap)
            return WEIR_ENOMEM;
    }
    *len = need;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## The operator
 * ------------------------------------------------------------------ */

/* Converts weir_forward_error()'s result into "handled" (1) or an error:
 * the helpers below return WEIR_OK to go on, 1 when the line went to the
 * errors output, or a negative code. */
static int rejected(int rc)
{
    return rc < 0 ? rc : 1;
}

/* A blank line holds only JSON whitespace (space, tab, CR, LF). */
static int is_blank(weir_buf_t v)
{
    const unsigned char *p = v.data;
    size_t i;

    for (i = 0; i < v.len; i++) {
        switch (p[i]) {
        case ' ':
        case '\t':
        case '\r':
        case '\n':
            break;
        default:
            return 0;
        }
    }
    return 1;
}

static int json_open(weir_ctx_t *ctx, void *st)
{
    char err[128];

    (void)st;
    if (weir_json_opts_check(weir_ctx_opaque(ctx), err, sizeof(err)) !=
        WEIR_OK)
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", err);
    return WEIR_OK;
}

static void json_close(weir_ctx_t *ctx, void *st)
{
    struct json_parse *jp = st;

    (void)ctx;
    weir_free(jp->buf);
    jp->buf = NULL;
    jp->cap = 0;
}

/* ------------------------------------------------------------------ *
 * ## Integers beyond int64
 * ------------------------------------------------------------------ */

/* 1 when the integer literal p[0..n) (optional '-', digits) is outside
 * the int64 range. */
static int int_literal_overflows(const char *p, size_t n)
{
    const char *lim = "9223372036854775807";
    int neg = p[0] == '-';
    size_t d = n - (size_t)neg;
    int c;

    if (d != 19)
        return d > 19;
    c = memcmp(p + neg, lim, 19);
    return c > 0 && !(neg && memcmp(p + 1, "9223372036854775808", 19) == 0);
}

/*
 * A copy of the line where every integer literal outside the int64 range
 * (outside strings, without fraction or exponent) gets ".0" appended, so
 * that jansson reads it as a real while every other integer stays an
 * exact integer. Such literals have at least 19 digits, so the copy grows
 * by at most 2/19 of the line. Returns NULL when out of memory.
 */
static char *widen_big_ints(const char *p, size_t n, size_t *out_len)
{
    char *q = weir_malloc(n + n / 8 + 2);
    size_t i = 0;
    size_t o = 0;
    size_t start;
    int in_str = 0;

    if (q == NULL)
        return NULL;
    while (i < n) {
        if (in_str) {
            if (p[i] == '\\' && i + 1 < n)
                q[o++] = p[i++];
            else if (p[i] == '"')
                in_str = 0;
            q[o++] = p[i++];
            continue;
        }
        if (p[i] == '"') {
            in_str = 1;
            q[o++] = p[i++];
            continue;
        }
        if (p[i] != '-' && (p[i] < '0' || p[i] > '9')) {
            q[o++] = p[i++];
            continue;
        }
        start = i;
        i += p[i] == '-';
        while (i < n && p[i] >= '0' && p[i] <= '9')
            i++;
        memcpy(q + o, p + start, i - start);
        o += i - start;
        if ((i == n || (p[i] != '.' && p[i] != 'e' && p[i] != 'E')) &&
            i - start > 1 && int_literal_overflows(p + start, i - start)) {
            q[o++] = '.';
            q[o++] = '0';
        }
    }
    *out_len = o;
    return q;
}

/* Parses the line into an object (*doc). *big tells whether it holds
 * integers beyond int64 (read as reals). */
static int load_line(weir_ctx_t *ctx, const weir_record_t *in, json_t **doc,
                     int *big)
{
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    weir_buf_t v = weir_record_value(in);
    json_error_t err;
    size_t wlen = 0;
    char *wide;
    json_t *d;

    *big = 0;
    d = json_loadb(v.data, v.len, flags, &err);
    if (d == NULL && json_error_code(&err) == json_error_numeric_overflow) {
        wide = widen_big_ints(v.data, v.len, &wlen);
        if (wide == NULL)
            return WEIR_ENOMEM;
        if (wlen != v.len) {
            *big = 1;
            d = json_loadb(wide, wlen, flags, &err);
            if (d == NULL) /* report the first problem of the input */
                json_decref(json_loadb(v.data, v.len, flags, &err));
        }
        weir_free(wide);
    }
    if (d == NULL) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return WEIR_ENOMEM;
        return rejected(weir_forward_error(ctx, in,
                                           "invalid JSON at byte %d: %s",
                                           err.position, err.text));
    }
    if (!json_is_object(d)) {
        json_decref(d);
        return rejected(
            weir_forward_error(ctx, in, "line is not a JSON object"));
    }
    *doc = d;
    return WEIR_OK;
}

/* The key in content-hash mode: XXH3-128 of the canonical object. */
static int hash_key(weir_ctx_t *ctx, struct json_parse *st,
                    const weir_record_t *in, json_t *doc, int big,
                    weir_buf_t *key)
{
    XXH128_canonical_t digest;
    size_t len = 0;
    int rc;

    if (big && has_big_int(doc))
        return rejected(weir_forward_error(
            ctx, in, "record holds an integer outside the 64-bit range"));
    rc = normalise(doc);
    if (rc == WEIR_OK)
        rc = dump_canonical(st, doc, &len);
    if (rc != WEIR_OK)
        return rc;
    XXH128_canonicalFromHash(&digest, XXH3_128bits(st->buf, len));
    memcpy(st->buf, digest.digest, sizeof(digest.digest));
    *key = WEIR_BUF(st->buf, sizeof(digest.digest));
    return WEIR_OK;
}

/* The key from key fields: the canonical array of their values. */
static int fields_key(weir_ctx_t *ctx, struct json_parse *st,
                      const weir_json_opts_t *o, const weir_record_t *in,
                      json_t *doc, int big, weir_buf_t *key)
{
    json_t *arr;
    json_t *v;
    size_t len = 0;
    size_t i;
    int rc = WEIR_OK;

    arr = json_array();
    if (arr == NULL)
        return WEIR_ENOMEM;
    for (i = 0; i < o->nkeys && rc == WEIR_OK; i++) {
        v = json_object_get(doc, o->keys[i]);
        if (v == NULL)
            rc = rejected(weir_forward_error(
                ctx, in, "key field \"%s\" is missing", o->keys[i]));
        else if (big && has_big_int(v))
            rc = rejected(weir_forward_error(
                ctx, in,
                "key field \"%s\" holds an integer outside the 64-bit "
                "range",
                o->keys[i]));
        else if (json_array_append(arr, v) != 0)
            rc = WEIR_ENOMEM;
    }
    if (rc == WEIR_OK)
        rc = normalise(arr);
    if (rc == WEIR_OK)
        rc = dump_canonical(st, arr, &len);
    json_decref(arr);
    if (rc == WEIR_OK)
        *key = WEIR_BUF(st->buf, len);
    return rc;
}

/* Reads an integer member; `role` is "time field" or "field". */
static int read_int(weir_ctx_t *ctx, const weir_record_t *in, json_t *doc,
                    int big, const char *role, const char *name,
                    int64_t *out)
{
    json_t *v = json_object_get(doc, name);

    if (v == NULL)
        return rejected(
            weir_forward_error(ctx, in, "%s \"%s\" is missing", role, name));
    if (big && json_is_real(v) && maybe_big_int(v))
        return rejected(weir_forward_error(
            ctx, in, "%s \"%s\" is an integer outside the 64-bit range",
            role, name));
    if (!json_is_integer(v))
        return rejected(weir_forward_error(
            ctx, in, "%s \"%s\" is not an integer", role, name));
    *out = (int64_t)json_integer_value(v);
    return WEIR_OK;
}

/* The time field and, when configured, the header field. */
static int read_fields(weir_ctx_t *ctx, const weir_json_opts_t *o,
                       const weir_record_t *in, json_t *doc, int big,
                       int64_t *ts, int64_t *hv)
{
    int rc;

    rc = read_int(ctx, in, doc, big, "time field", o->time_field, ts);
    if (rc == WEIR_OK && (*ts == WEIR_TS_MIN || *ts == WEIR_TS_MAX))
        rc = rejected(weir_forward_error(
            ctx, in, "time field \"%s\" holds a reserved value",
            o->time_field));
    if (rc == WEIR_OK && o->hdr_field != NULL)
        rc = read_int(ctx, in, doc, big, "field", o->hdr_field, hv);
    return rc;
}

/* Builds and emits the parsed record. */
static int emit_parsed(weir_ctx_t *ctx, const weir_json_opts_t *o,
                       const weir_record_t *in, weir_buf_t key, weir_ts_t ts,
                       int64_t hv)
{
    weir_record_t *rec;
    const char *name;
    weir_buf_t hval;
    char num[24];
    size_t i;
    size_t n;
    int rc = WEIR_OK;

    rec = weir_record_new(ctx, key, weir_record_value(in), ts, WEIR_COPY);
    if (rec == NULL)
        return WEIR_ENOMEM;
    n = weir_record_header_count(in);
    for (i = 0; i < n && rc == WEIR_OK; i++) {
        rc = weir_record_header_at(in, i, &name, &hval);
        if (rc == WEIR_OK)
            rc = weir_record_add_header(rec, name, hval);
    }
    if (rc == WEIR_OK)
        rc = weir_record_set_position(rec, weir_record_partition(in),
                                      weir_record_offset(in));
    if (rc == WEIR_OK && o->hdr_field != NULL) {
        snprintf(num, sizeof(num), "%lld", (long long)hv);
        rc = weir_record_add_header(rec, o->hdr_name, WEIR_BUF_STR(num));
    }
    if (rc != WEIR_OK) {
        weir_record_destroy(rec);
        return rc;
    }
    return weir_emit(ctx, rec);
}

static int json_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    const weir_json_opts_t *o = weir_ctx_opaque(ctx);
    weir_buf_t key = WEIR_BUF_NULL;
    json_t *doc = NULL;
    int64_t ts = 0;
    int64_t hv = 0;
    int big = 0;
    int rc;

    if (is_blank(weir_record_value(in)))
        return WEIR_OK;
    rc = load_line(ctx, in, &doc, &big);
    if (rc != WEIR_OK)
        return rc > 0 ? WEIR_OK : rc;
    /* Fields are read before hashing: hashing normalises the document. */
    if (o->content_hash) {
        rc = read_fields(ctx, o, in, doc, big, &ts, &hv);
        if (rc == WEIR_OK)
            rc = hash_key(ctx, st, in, doc, big, &key);
    } else {
        rc = fields_key(ctx, st, o, in, doc, big, &key);
        if (rc == WEIR_OK)
            rc = read_fields(ctx, o, in, doc, big, &ts, &hv);
    }
    json_decref(doc);
    if (rc != WEIR_OK)
        return rc > 0 ? WEIR_OK : rc;
    return emit_parsed(ctx, o, in, key, ts, hv);
}

const weir_operator_def_t weir_op_json_parse = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "json_parse",
    .state_size = sizeof(struct json_parse),
    .open = json_open,
    .process = json_process,
    .close = json_close,
};
