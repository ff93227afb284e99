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
 *   0. The fast path first (json_scan.c): one validating pass that finds
 *      the key, time and header members without a document. When it
 *      vouches for the line and every key value is a plain string, an
 *      integer of at most 18 digits, true, false or null, and the time
 *      and header values are such integers, the key is written directly
 *      (byte for byte what steps 3-4 give for such values) and the record
 *      emitted. Everything else, errors included, takes steps 1-5.
 *   1. json_loadb() with the line's length (never a C string, so a NUL
 *      byte is an error, not a truncation; invalid UTF-8 is rejected by
 *      jansson). JSON_DECODE_ANY lets us tell "not JSON" from "JSON but
 *      not an object"; JSON_ALLOW_NUL accepts the valid escape \u0000.
 *   2. Numbers jansson cannot hold (integers beyond int64, reals beyond
 *      the double range) make it fail with a numeric overflow, although
 *      the line is valid JSON. We then parse a copy of the line in which
 *      exactly those number literals are replaced by marker strings,
 *      "\u0000weir-<nonce>:<i>", and keep the exact canonical decimal text
 *      of number i aside (JSON_DECODE_INT_AS_REAL is no help: it turns
 *      every integer into a lossy real). The nonce is chosen so that no
 *      string of the line contains the marker prefix (checked after
 *      parsing; only \u0000 escapes could spell it), so markers are
 *      unambiguous.
 *   3. Key fields are looked up in order and gathered into a JSON array
 *      (sharing the parsed values). The array is normalised in place,
 *      recursively: integral reals inside the int64 range become
 *      integers; integral reals beyond it become markers holding the
 *      value of their shortest decimal form (so 1e19 equals
 *      10000000000000000000). It is
 *      dumped compact with sorted object members, and every marker in the
 *      text is replaced by its number: that text is the key. In
 *      content-hash mode the whole object goes through the same steps
 *      and the text is hashed with XXH3-128.
 *   4. The time field must be a JSON integer within int64 (not a real,
 *      not a string); an integer literal beyond int64 is reported as such.
 *   5. A new record copies the input's value, headers and position, gets
 *      the key and the timestamp (and the optional header), and is emitted.
 *
 * Canonical numbers: int64 integers as they are; other reals as jansson
 * writes doubles (17 significant digits); numbers beyond int64 or double
 * by exact value: the integer digits when integral with at most
 * BIG_DIGITS digits, else "d.ddde<exp>" with no redundant zeros. So every
 * spelling of one value gives one text, except that reals inside the
 * double range are compared as doubles.
 *
 * Invariants
 *   - Every non-blank input line produces exactly one output: on the main
 *     output or on WEIR_TAG_ERRORS (value byte for byte).
 *   - The options are read-only once an operator uses them, so subtasks
 *     share them without locks; each subtask has its own buffers.
 *   - Normalisation only touches the parsed document, which is private to
 *     one process() call; the number table is reset for every line.
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <xxhash.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/operator.h>

#include "json_scan.h"

struct weir_json_opts_s {
    char **keys;      /* key field names, in order         */
    size_t nkeys;     /* number of key fields              */
    char *time_field; /* time member name                  */
    int content_hash; /* 1: key = XXH3-128 of the object   */
    char *hdr_field;  /* integer member copied to a header */
    char *hdr_name;   /* that header's name                */
};

/* One number jansson cannot hold: its canonical text in the arena. */
struct bignum {
    size_t off;  /* offset of the text in numtab.text        */
    size_t len;  /* its length                               */
    int integer; /* 1: it was written as an integer literal  */
};

/* The numbers of the current line that live behind markers. */
struct numtab {
    char prefix[32];  /* marker prefix as decoded: "\0weir-<hex>:" */
    size_t plen;      /* its length                                */
    char dumped[40];  /* the prefix as jansson dumps it, with '"' */
    size_t dlen;      /* its length                                */
    int active;       /* a prefix is chosen for this line          */
    struct bignum *v; /* numbers, by marker index                  */
    size_t n;         /* how many                                  */
    size_t cap;       /* capacity of v                             */
    char *text;       /* canonical texts, back to back             */
    size_t tlen;      /* bytes used in text                        */
    size_t tcap;      /* capacity of text                          */
};

/* Per-subtask state: reusable buffers. */
struct json_parse {
    char *buf;              /* canonical dumps, fast keys      */
    size_t cap;             /* its capacity                    */
    char *buf2;             /* rewritten lines, rewrites       */
    size_t cap2;            /* its capacity                    */
    struct numtab num;      /* numbers behind markers          */
    const char **names;     /* keys, time field, header field  */
    size_t nnames;          /* how many                        */
    weir__js_span_t *spans; /* their values in the current line */
};

#define TWO_POW_63   9223372036854775808.0
#define BIG_DIGITS   1024 /* longest integer written out   */
#define MAX_EXPONENT INT64_C(1000000000000000) /* 10^15            */
#define NONCE_TRIES  16

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
 * ## Buffers
 * ------------------------------------------------------------------ */

/* Makes *buf hold at least `need` bytes. */
static int reserve(char **buf, size_t *cap, size_t need)
{
    size_t c = *cap ? *cap : 256;
    char *nb;

    if (need <= *cap)
        return WEIR_OK;
    while (c < need)
        c *= 2;
    nb = weir_realloc(*buf, c);
    if (nb == NULL)
        return WEIR_ENOMEM;
    *buf = nb;
    *cap = c;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Numbers jansson cannot hold
 * ------------------------------------------------------------------ */

static void num_reset(struct numtab *t)
{
    t->active = 0;
    t->n = 0;
    t->tlen = 0;
}

static void num_set_nonce(struct numtab *t, uint64_t nonce)
{
    t->prefix[0] = '\0';
    t->plen = 1 + (size_t)snprintf(t->prefix + 1, sizeof(t->prefix) - 1,
                                   "weir-%016" PRIx64 ":", nonce);
    t->dlen = (size_t)snprintf(t->dumped, sizeof(t->dumped),
                               "\"\\u0000weir-%016" PRIx64 ":", nonce);
    t->active = 1;
}

/* Appends the canonical text of a number (see the file comment) given
 * as sign, significant digits d[0..nd) (no leading or trailing zeros,
 * nd > 0) and exponent e: value = d * 10^e. */
static void put_canonical(char *out, size_t *o, int neg, const char *d,
                          size_t nd, int64_t e)
{
    int64_t i;

    if (neg)
        out[(*o)++] = '-';
    if (e >= 0 && (int64_t)nd + e <= BIG_DIGITS) {
        memcpy(out + *o, d, nd);
        *o += nd;
        for (i = 0; i < e; i++)
            out[(*o)++] = '0';
        return;
    }
    out[(*o)++] = d[0];
    if (nd > 1) {
        out[(*o)++] = '.';
        memcpy(out + *o, d + 1, nd - 1);
        *o += nd - 1;
    }
    *o += (size_t)sprintf(out + *o, "e%" PRId64, e + (int64_t)nd - 1);
}

/*
 * Adds the number literal tok[0..n) to the table. Returns its index,
 * WEIR_ERANGE when its exponent is beyond MAX_EXPONENT, or WEIR_ENOMEM.
 */
static int num_add_literal(struct numtab *t, const char *tok, size_t n)
{
    struct bignum *nv;
    char *d;
    size_t nd = 0;
    size_t i = 0;
    size_t o;
    int64_t e = 0;
    int64_t frac = 0;
    int neg = tok[0] == '-';
    int eneg = 0;
    int integer = 1;

    if (t->n == t->cap) {
        nv = weir_realloc(t->v, (t->cap * 2 + 8) * sizeof(*nv));
        if (nv == NULL)
            return WEIR_ENOMEM;
        t->v = nv;
        t->cap = t->cap * 2 + 8;
    }
    /* digits (at most n) plus the integer form (BIG_DIGITS) or "e..." */
    if (reserve(&t->text, &t->tcap, t->tlen + 2 * n + BIG_DIGITS + 32))
        return WEIR_ENOMEM;
    d = t->text + t->tlen + n + BIG_DIGITS + 32; /* scratch for digits */
    for (i = (size_t)neg; i < n && tok[i] >= '0' && tok[i] <= '9'; i++)
        if (nd > 0 || tok[i] != '0')
            d[nd++] = tok[i];
    if (i < n && tok[i] == '.') {
        integer = 0;
        for (i++; i < n && tok[i] >= '0' && tok[i] <= '9'; i++, frac++)
            if (nd > 0 || tok[i] != '0')
                d[nd++] = tok[i];
    }
    if (i < n && (tok[i] == 'e' || tok[i] == 'E')) {
        integer = 0;
        i++;
        if (i < n && (tok[i] == '+' || tok[i] == '-'))
            eneg = tok[i++] == '-';
        for (; i < n; i++) {
            if (e > MAX_EXPONENT)
                return WEIR_ERANGE;
            e = e * 10 + (tok[i] - '0');
        }
        if (e > MAX_EXPONENT)
            return WEIR_ERANGE;
    }
    e = (eneg ? -e : e) - frac;
    while (nd > 0 && d[nd - 1] == '0') {
        nd--;
        e++;
    }
    o = t->tlen;
    if (nd == 0)
        t->text[o++] = '0';
    else
        put_canonical(t->text, &o, neg, d, nd, e);
    t->v[t->n].off = t->tlen;
    t->v[t->n].len = o - t->tlen;
    t->v[t->n].integer = integer;
    t->tlen = o;
    return (int)t->n++;
}

/* 1 when the integer literal p[0..n) is outside the int64 range. */
static int int_literal_overflows(const char *p, size_t n)
{
    const char *lim = "9223372036854775807";
    int neg = p[0] == '-';
    size_t d = n - (size_t)neg;

    if (d != 19)
        return d > 19;
    if (memcmp(p + neg, lim, 19) <= 0)
        return 0;
    return !(neg && memcmp(p + 1, "9223372036854775808", 19) == 0);
}

/* 1 when the real literal p[0..n) overflows a double, as jansson sees
 * it (strtod in the current locale, after putting its decimal point). */
static int real_literal_overflows(const char *p, size_t n)
{
    const char *point = localeconv()->decimal_point;
    char small[64];
    char *s = n < sizeof(small) ? small : weir_malloc(n + 1);
    char *dot;
    double v;
    int over;

    if (s == NULL)
        return 0; /* then the line stays invalid: reported, not lost */
    memcpy(s, p, n);
    s[n] = '\0';
    dot = strchr(s, '.');
    if (dot != NULL && point != NULL && point[0] != '\0')
        *dot = point[0];
    errno = 0;
    v = strtod(s, NULL);
    over = errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL);
    if (s != small)
        weir_free(s);
    return over;
}

/* Length of the number token at p (lenient: JSON checks come later). */
static size_t number_token(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && ((p[i] >= '0' && p[i] <= '9') || p[i] == '-' ||
                     p[i] == '+' || p[i] == '.' || p[i] == 'e' || p[i] == 'E'))
        i++;
    return i;
}

/* Skips digits from p[*i]; returns how many. */
static size_t skip_digits(const char *p, size_t n, size_t *i)
{
    size_t start = *i;

    while (*i < n && p[*i] >= '0' && p[*i] <= '9')
        (*i)++;
    return *i - start;
}

/* 1 when p[0..n) is exactly a JSON number:
 * -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int is_json_number(const char *p, size_t n)
{
    size_t i = p[0] == '-';
    size_t first = i;

    if (skip_digits(p, n, &i) == 0 || (p[first] == '0' && i - first > 1))
        return 0;
    if (i < n && p[i] == '.') {
        i++;
        if (skip_digits(p, n, &i) == 0)
            return 0;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (skip_digits(p, n, &i) == 0)
            return 0;
    }
    return i == n;
}

/* 1 when the number token p[0..n) is valid JSON that jansson cannot
 * hold. Invalid tokens stay as they are, so the line stays invalid. */
static int needs_marker(const char *p, size_t n)
{
    if (!is_json_number(p, n))
        return 0;
    if (memchr(p, '.', n) || memchr(p, 'e', n) || memchr(p, 'E', n))
        return real_literal_overflows(p, n);
    return int_literal_overflows(p, n);
}

/*
 * Copies the line into st->buf2 with every number jansson cannot hold
 * replaced by a marker string (the table must be reset and a nonce set).
 * Returns WEIR_OK, WEIR_ERANGE or WEIR_ENOMEM.
 */
static int mark_numbers(struct json_parse *st, const char *p, size_t n,
                        size_t *out_len)
{
    struct numtab *t = &st->num;
    size_t i = 0;
    size_t o = 0;
    size_t tok;
    int in_str = 0;
    int idx;

    while (i < n) {
        /* Room for the rest of the line plus one marker (< 64 bytes). */
        if (reserve(&st->buf2, &st->cap2, o + (n - i) + 64))
            return WEIR_ENOMEM;
        if (in_str || p[i] == '"') {
            if (in_str && p[i] == '\\' && i + 1 < n)
                st->buf2[o++] = p[i++];
            else if (p[i] == '"')
                in_str = !in_str;
            st->buf2[o++] = p[i++];
            continue;
        }
        tok = (p[i] == '-' || (p[i] >= '0' && p[i] <= '9'))
                  ? number_token(p + i, n - i)
                  : 0;
        if (tok == 0 || !needs_marker(p + i, tok)) {
            tok = tok ? tok : 1;
            memcpy(st->buf2 + o, p + i, tok);
            o += tok;
            i += tok;
            continue;
        }
        idx = num_add_literal(t, p + i, tok);
        if (idx < 0)
            return idx;
        o += (size_t)sprintf(st->buf2 + o, "%s%d\"", t->dumped, idx);
        i += tok;
    }
    *out_len = o;
    return WEIR_OK;
}

/* Number of strings in v that contain the marker prefix. */
static size_t count_prefixed(const json_t *v, const struct numtab *t)
{
    const char *k;
    json_t *c;
    size_t i;
    size_t count = 0;

    if (json_is_string(v))
        return memmem(json_string_value(v), json_string_length(v), t->prefix,
                      t->plen) != NULL;
    if (json_is_array(v)) {
        json_array_foreach(v, i, c) count += count_prefixed(c, t);
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, c) count += count_prefixed(c, t);
    }
    return count;
}

/* The nonce of try `i` for a line: deterministic, different per try. */
static uint64_t nonce_for(weir_buf_t line, int i)
{
    return XXH3_64bits_withSeed(line.data, line.len, (uint64_t)i);
}

/* Gives the table a prefix no string of doc contains (for markers made
 * after parsing). */
static int num_activate(struct numtab *t, const json_t *doc, weir_buf_t line)
{
    int i;

    if (t->active)
        return WEIR_OK;
    for (i = 0; i < NONCE_TRIES; i++) {
        num_set_nonce(t, nonce_for(line, i));
        if (count_prefixed(doc, t) == 0)
            return WEIR_OK;
    }
    t->active = 0;
    return WEIR_EPARSE;
}

/* The marker index held by v, or -1 when v is not one of our markers. */
static int marker_index(const struct numtab *t, const json_t *v)
{
    const char *s;
    size_t len;
    size_t i;
    size_t idx = 0;

    if (!t->active || !json_is_string(v))
        return -1;
    s = json_string_value(v);
    len = json_string_length(v);
    if (len <= t->plen || memcmp(s, t->prefix, t->plen) != 0)
        return -1;
    for (i = t->plen; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        idx = idx * 10 + (size_t)(s[i] - '0');
        if (idx >= t->n)
            return -1;
    }
    return (int)idx;
}

/* The shortest "%e" text that reads back as d, with '.' as the decimal
 * point whatever the locale. */
static int shortest_double(double d, char *out, size_t size)
{
    const char *point = localeconv()->decimal_point;
    char *dot;
    int n = 0;
    int p;

    for (p = 1; p <= 17; p++) {
        n = snprintf(out, size, "%.*e", p - 1, d);
        if (n <= 0 || (size_t)n >= size)
            return -1;
        if (strtod(out, NULL) == d)
            break;
    }
    if (point != NULL && point[0] != '\0' && point[0] != '.' &&
        (dot = strchr(out, point[0])) != NULL)
        *dot = '.';
    return n;
}

/* A marker string for a new number: the integral double d (beyond
 * int64), by the value of its shortest decimal form (so 1e300 equals the
 * integer literal 1 followed by 300 zeros). NULL when out of memory. */
static json_t *marker_for_double(struct numtab *t, double d)
{
    char text[64];
    char m[64];
    size_t len;
    int n = shortest_double(d, text, sizeof(text));
    int idx;

    if (n <= 0)
        return NULL;
    idx = num_add_literal(t, text, (size_t)n);
    if (idx < 0)
        return NULL;
    memcpy(m, t->prefix, t->plen);
    len = t->plen + (size_t)sprintf(m + t->plen, "%d", idx);
    return json_stringn(m, len);
}

/* Replaces every marker in st->buf[0..*len) by its number's text. */
static int unmark(struct json_parse *st, size_t *len)
{
    const struct numtab *t = &st->num;
    const struct bignum *b;
    size_t i = 0;
    size_t o = 0;
    size_t idx;
    char *m;
    char *sw;

    if (reserve(&st->buf2, &st->cap2, *len + t->tlen + 1))
        return WEIR_ENOMEM;
    while ((m = memmem(st->buf + i, *len - i, t->dumped, t->dlen)) != NULL) {
        memcpy(st->buf2 + o, st->buf + i, (size_t)(m - (st->buf + i)));
        o += (size_t)(m - (st->buf + i));
        i = (size_t)(m - st->buf) + t->dlen;
        for (idx = 0; i < *len && st->buf[i] >= '0' && st->buf[i] <= '9';)
            idx = idx * 10 + (size_t)(st->buf[i++] - '0');
        if (idx >= t->n || i >= *len || st->buf[i] != '"')
            return WEIR_EPARSE; /* cannot happen: markers are ours */
        i++;
        b = &t->v[idx];
        memcpy(st->buf2 + o, t->text + b->off, b->len);
        o += b->len;
    }
    memcpy(st->buf2 + o, st->buf + i, *len - i);
    o += *len - i;
    sw = st->buf;
    st->buf = st->buf2;
    st->buf2 = sw;
    i = st->cap;
    st->cap = st->cap2;
    st->cap2 = i;
    *len = o;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Canonical JSON
 * ------------------------------------------------------------------ */

/* What normalisation needs besides the value. */
struct norm {
    struct numtab *t;  /* the line's number table             */
    const json_t *doc; /* the whole document (prefix choice) */
    weir_buf_t line;   /* the line (nonce seed)              */
};

/* The canonical replacement for real v, or NULL to keep it: an integer
 * when integral inside int64, a marker when integral beyond. */
static int replacement(struct norm *nm, const json_t *v, json_t **out)
{
    double d = json_real_value(v);
    int rc;

    *out = NULL;
    if (d != floor(d))
        return WEIR_OK;
    if (d >= -TWO_POW_63 && d < TWO_POW_63) {
        *out = json_integer((json_int_t)d);
    } else {
        rc = num_activate(nm->t, nm->doc, nm->line);
        if (rc != WEIR_OK)
            return rc;
        *out = marker_for_double(nm->t, d);
    }
    return *out == NULL ? WEIR_ENOMEM : WEIR_OK;
}

/*
 * Normalises the children of a container in place, recursively (jansson
 * limits nesting on input, so recursion is bounded). Returns WEIR_OK,
 * WEIR_ENOMEM or WEIR_EPARSE (no usable marker prefix).
 */
static int normalise(struct norm *nm, json_t *c)
{
    json_t *v;
    json_t *r;
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
        if (json_is_real(v)) {
            rc = replacement(nm, v, &r);
            if (rc == WEIR_OK && r != NULL &&
                (json_is_array(c) ? json_array_set_new(c, i, r)
                                  : json_object_iter_set_new(c, it, r)))
                rc = WEIR_ENOMEM;
        } else if (json_is_array(v) || json_is_object(v)) {
            rc = normalise(nm, v);
        }
        if (json_is_array(c))
            i++;
        else
            it = json_object_iter_next(c, it);
    }
    return rc;
}

/* Dumps j canonically into st->buf, numbers behind markers written out;
 * sets *len. */
static int dump_canonical(struct json_parse *st, const json_t *j, size_t *len)
{
    const size_t flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY;
    size_t need;
    int rc;

    need = json_dumpb(j, st->buf, st->cap, flags);
    if (need == 0)
        return WEIR_ENOMEM;
    if (need > st->cap) {
        rc = reserve(&st->buf, &st->cap, need);
        if (rc != WEIR_OK)
            return rc;
        need = json_dumpb(j, st->buf, st->cap, flags);
        if (need == 0 || need > st->cap)
            return WEIR_ENOMEM;
    }
    *len = need;
    if (st->num.active && st->num.n > 0)
        return unmark(st, len);
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

/* Where a rejected line goes: the operator's errors output (ctx set), or
 * a reason for the caller of weir_json_parser_apply() (ctx NULL). */
struct reject_to {
    weir_ctx_t *ctx;
    const weir_record_t *in;
    char *why;
    size_t why_size;
};

/* Rejects r->in with a one-sentence reason; 1 (handled) or a negative
 * code. */
static int reject(const struct reject_to *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int reject(const struct reject_to *r, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    if (r->ctx == NULL) {
        if (r->why != NULL && r->why_size > 0)
            vsnprintf(r->why, r->why_size, fmt, ap);
        va_end(ap);
        return 1;
    }
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return rejected(weir_forward_error(r->ctx, r->in, "%s", msg));
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

static void parse_state_free(struct json_parse *jp)
{
    weir_free(jp->buf);
    weir_free(jp->buf2);
    weir_free(jp->num.v);
    weir_free(jp->num.text);
    weir_free(jp->names);
    weir_free(jp->spans);
    memset(jp, 0, sizeof(*jp));
}

/* Sets up the fast path's names: key fields, the time field, the
 * header field. On failure jp is left freed. */
static int parse_state_init(struct json_parse *jp, const weir_json_opts_t *o)
{
    size_t i;

    memset(jp, 0, sizeof(*jp));
    if (o->content_hash)
        return WEIR_OK; /* the whole object is needed: no fast path */
    jp->names = weir_calloc(o->nkeys + 2, sizeof(*jp->names));
    jp->spans = weir_calloc(o->nkeys + 2, sizeof(*jp->spans));
    if (jp->names == NULL || jp->spans == NULL) {
        parse_state_free(jp);
        return WEIR_ENOMEM;
    }
    for (i = 0; i < o->nkeys; i++)
        jp->names[jp->nnames++] = o->keys[i];
    jp->names[jp->nnames++] = o->time_field;
    if (o->hdr_field != NULL)
        jp->names[jp->nnames++] = o->hdr_field;
    return WEIR_OK;
}

static int json_open(weir_ctx_t *ctx, void *st)
{
    const weir_json_opts_t *o = weir_ctx_opaque(ctx);
    char err[128];

    if (weir_json_opts_check(o, err, sizeof(err)) != WEIR_OK)
        return weir_ctx_error(ctx, WEIR_EINVAL, "%s", err);
    /* close is not called when open fails: init frees what it made */
    if (parse_state_init(st, o) != WEIR_OK)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    return WEIR_OK;
}

static void json_close(weir_ctx_t *ctx, void *st)
{
    (void)ctx;
    parse_state_free(st);
}

/*
 * Parses a line that jansson refused for a numeric overflow, with the
 * numbers it cannot hold behind markers. Returns the document or NULL;
 * *rc is WEIR_OK (the line is invalid for another reason, in *err),
 * WEIR_ERANGE (an exponent too large), WEIR_EPARSE (no usable prefix) or
 * WEIR_ENOMEM.
 */
static json_t *load_marked(struct json_parse *st, weir_buf_t v,
                           json_error_t *err, int *rc)
{
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    size_t wlen = 0;
    json_t *d;
    int i;

    for (i = 0; i < NONCE_TRIES; i++) {
        num_reset(&st->num);
        num_set_nonce(&st->num, nonce_for(v, i));
        *rc = mark_numbers(st, v.data, v.len, &wlen);
        if (*rc != WEIR_OK)
            return NULL;
        d = json_loadb(st->buf2, wlen, flags, err);
        if (d == NULL || count_prefixed(d, &st->num) == st->num.n)
            return d;
        json_decref(d); /* a string of the line holds the prefix */
    }
    *rc = WEIR_EPARSE;
    return NULL;
}

/* Parses the line into an object (*doc). */
static int load_line(const struct reject_to *r, struct json_parse *st,
                     json_t **doc)
{
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    weir_buf_t v = weir_record_value(r->in);
    json_error_t err;
    json_t *d;
    int rc = WEIR_OK;

    num_reset(&st->num);
    d = json_loadb(v.data, v.len, flags, &err);
    if (d == NULL && json_error_code(&err) == json_error_numeric_overflow) {
        d = load_marked(st, v, &err, &rc);
        if (rc == WEIR_ENOMEM)
            return rc;
        if (rc == WEIR_ERANGE)
            return reject(r, "a number has an exponent beyond 10^15");
        if (rc == WEIR_EPARSE)
            return reject(r, "numbers beyond 64 bits could not be marked");
        if (d == NULL) /* positions in the marked copy are shifted */
            return reject(r, "invalid JSON: %s", err.text);
    }
    if (d == NULL) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return WEIR_ENOMEM;
        return reject(r, "invalid JSON at byte %d: %s", err.position, err.text);
    }
    if (!json_is_object(d)) {
        json_decref(d);
        return reject(r, "line is not a JSON object");
    }
    *doc = d;
    return WEIR_OK;
}

/* Maps normalise()'s failures: WEIR_EPARSE rejects the line. */
static int norm_failed(const struct reject_to *r, int rc)
{
    if (rc != WEIR_EPARSE)
        return rc;
    return reject(r, "numbers beyond 64 bits could not be marked");
}

/* The key in content-hash mode: XXH3-128 of the canonical object. */
static int hash_key(const struct reject_to *r, struct json_parse *st,
                    json_t *doc, weir_buf_t *key)
{
    struct norm nm = {&st->num, doc, weir_record_value(r->in)};
    XXH128_canonical_t digest;
    size_t len = 0;
    int rc;

    rc = normalise(&nm, doc);
    if (rc != WEIR_OK)
        return norm_failed(r, rc);
    rc = dump_canonical(st, doc, &len);
    if (rc != WEIR_OK)
        return rc;
    XXH128_canonicalFromHash(&digest, XXH3_128bits(st->buf, len));
    memcpy(st->buf, digest.digest, sizeof(digest.digest));
    *key = WEIR_BUF(st->buf, sizeof(digest.digest));
    return WEIR_OK;
}

/* The key from key fields: the canonical array of their values. */
static int fields_key(const struct reject_to *r, struct json_parse *st,
                      const weir_json_opts_t *o, json_t *doc, weir_buf_t *key)
{
    struct norm nm = {&st->num, doc, weir_record_value(r->in)};
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
            rc = reject(r, "key field \"%s\" is missing", o->keys[i]);
        else if (json_array_append(arr, v) != 0)
            rc = WEIR_ENOMEM;
    }
    if (rc == WEIR_OK) {
        rc = normalise(&nm, arr);
        if (rc != WEIR_OK)
            rc = norm_failed(r, rc);
    }
    if (rc == WEIR_OK)
        rc = dump_canonical(st, arr, &len);
    json_decref(arr);
    if (rc == WEIR_OK)
        *key = WEIR_BUF(st->buf, len);
    return rc;
}

/* Reads an integer member; `role` is "time field" or "field". */
static int read_int(const struct reject_to *r, struct json_parse *st,
                    json_t *doc, const char *role, const char *name,
                    int64_t *out)
{
    json_t *v = json_object_get(doc, name);
    int idx;

    if (v == NULL)
        return reject(r, "%s \"%s\" is missing", role, name);
    idx = marker_index(&st->num, v);
    if (idx >= 0 && st->num.v[idx].integer)
        return reject(r, "%s \"%s\" is an integer outside the 64-bit range",
                      role, name);
    if (!json_is_integer(v))
        return reject(r, "%s \"%s\" is not an integer", role, name);
    *out = (int64_t)json_integer_value(v);
    return WEIR_OK;
}

/* The time field and, when configured, the header field. */
static int read_fields(const struct reject_to *r, struct json_parse *st,
                       const weir_json_opts_t *o, json_t *doc, int64_t *ts,
                       int64_t *hv)
{
    int rc;

    rc = read_int(r, st, doc, "time field", o->time_field, ts);
    if (rc == WEIR_OK && (*ts == WEIR_TS_MIN || *ts == WEIR_TS_MAX))
        rc = reject(r, "time field \"%s\" holds a reserved value",
                    o->time_field);
    if (rc == WEIR_OK && o->hdr_field != NULL)
        rc = read_int(r, st, doc, "field", o->hdr_field, hv);
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

    if (o->hdr_field == NULL) /* value, headers, position as they are */
        return weir_forward_as(ctx, NULL, in, key, ts);
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

/* ------------------------------------------------------------------ *
 * ## The fast path (json_scan.c): plain lines without a document
 * ------------------------------------------------------------------ */

/* An integer literal the scanner vouched for (at most 18 digits). */
static int64_t span_int(const weir__js_span_t *v)
{
    const char *p = v->p;
    const char *end = v->p + v->n;
    int neg = *p == '-';
    int64_t x = 0;

    for (p += neg; p < end; p++)
        x = x * 10 + (*p - '0');
    return neg ? -x : x;
}

/* Appends one key value as jansson dumps it; 0 when the value needs the
 * slow path (escaped strings, reals, containers, missing). */
static int put_key_value(char *out, size_t *o, const weir__js_span_t *v)
{
    switch (v->kind) {
    case WEIR__JS_STR:
        out[(*o)++] = '"';
        memcpy(out + *o, v->p, v->n);
        *o += v->n;
        out[(*o)++] = '"';
        return 1;
    case WEIR__JS_INT:
        if (v->n == 2 && v->p[0] == '-' && v->p[1] == '0') {
            out[(*o)++] = '0'; /* jansson reads -0 as the integer 0 */
            return 1;
        }
        memcpy(out + *o, v->p, v->n); /* the literal is canonical */
        *o += v->n;
        return 1;
    case WEIR__JS_TRUE:
    case WEIR__JS_FALSE:
    case WEIR__JS_NULL:
        memcpy(out + *o, v->p, v->n);
        *o += v->n;
        return 1;
    default:
        return 0;
    }
}

/*
 * Key, time and header value of a line without a document. Returns 1
 * when they are decided (exactly what the jansson path would give), 0
 * when the line needs that path, or WEIR_ENOMEM.
 */
static int fast_fields(struct json_parse *st, const weir_json_opts_t *o,
                       const weir_record_t *in, weir_buf_t *key, int64_t *ts,
                       int64_t *hv)
{
    weir_buf_t v = weir_record_value(in);
    const weir__js_span_t *sp = st->spans;
    size_t need = 2 + o->nkeys;
    size_t len = 0;
    size_t i;

    if (st->names == NULL || !weir__json_scan((const char *)v.data, v.len,
                                              st->names, st->nnames, st->spans))
        return 0;
    if (sp[o->nkeys].kind != WEIR__JS_INT ||
        (o->hdr_field != NULL && sp[o->nkeys + 1].kind != WEIR__JS_INT))
        return 0;
    for (i = 0; i < o->nkeys; i++)
        need += sp[i].n + 2;
    if (reserve(&st->buf, &st->cap, need) != WEIR_OK)
        return WEIR_ENOMEM;
    st->buf[len++] = '[';
    for (i = 0; i < o->nkeys; i++) {
        if (i > 0)
            st->buf[len++] = ',';
        if (!put_key_value(st->buf, &len, &sp[i]))
            return 0;
    }
    st->buf[len++] = ']';
    *key = WEIR_BUF(st->buf, len);
    *ts = span_int(&sp[o->nkeys]);
    if (o->hdr_field != NULL)
        *hv = span_int(&sp[o->nkeys + 1]);
    return 1;
}

/* ------------------------------------------------------------------ *
 * ## One integer member (weir_json_get_int)
 * ------------------------------------------------------------------ */

static int get_int_failed(int rc, char *errstr, size_t errstr_size,
                          const char *fmt, const char *arg)
{
    if (errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, fmt, arg);
    return rc;
}

/* The jansson path, with the parse operator's treatment of numbers beyond
 * int64 or double: they do not make the object invalid, and one as the
 * member is not an integer. */
static int get_int_slow(struct json_parse *st, weir_buf_t line,
                        const char *field, int64_t *out, char *errstr,
                        size_t errstr_size)
{
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    json_error_t err;
    json_t *doc;
    json_t *v;
    int rc = WEIR_OK;

    doc = json_loadb(line.data, line.len, flags, &err);
    if (doc == NULL && json_error_code(&err) == json_error_numeric_overflow) {
        doc = load_marked(st, line, &err, &rc);
        if (rc == WEIR_ENOMEM)
            return rc;
        if (rc != WEIR_OK)
            return get_int_failed(WEIR_EPARSE, errstr, errstr_size, "%s",
                                  rc == WEIR_ERANGE
                                      ? "a number has an exponent beyond 10^15"
                                      : "numbers beyond 64 bits could not be "
                                        "marked");
    }
    if (doc == NULL) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return WEIR_ENOMEM;
        return get_int_failed(WEIR_EPARSE, errstr, errstr_size,
                              "invalid JSON: %s", err.text);
    }
    v = json_object_get(doc, field);
    if (v != NULL && marker_index(&st->num, v) >= 0)
        v = json_null(); /* a number beyond 64 bits: not an integer */
    if (!json_is_object(doc))
        rc = get_int_failed(WEIR_EPARSE, errstr, errstr_size, "%s",
                            "not a JSON object");
    else if (v == NULL)
        rc = get_int_failed(WEIR_ENOENT, errstr, errstr_size,
                            "member \"%s\" is missing", field);
    else if (!json_is_integer(v))
        rc = get_int_failed(WEIR_EPARSE, errstr, errstr_size,
                            "member \"%s\" is not an integer", field);
    else
        *out = (int64_t)json_integer_value(v);
    json_decref(doc);
    return rc;
}

int weir_json_get_int(const void *data, size_t len, const char *field,
                      int64_t *out, char *errstr, size_t errstr_size)
{
    const char *names[1];
    struct json_parse st;
    weir__js_span_t v;
    int rc;

    if ((data == NULL && len > 0) || field == NULL || field[0] == '\0' ||
        out == NULL)
        return WEIR_EINVAL;
    names[0] = field;
    if (data == NULL || !weir__json_scan(data, len, names, 1, &v)) {
        memset(&st, 0, sizeof(st));
        rc = get_int_slow(&st, WEIR_BUF(data != NULL ? data : "", len), field,
                          out, errstr, errstr_size);
        parse_state_free(&st);
        return rc;
    }
    if (v.kind == WEIR__JS_MISSING)
        return get_int_failed(WEIR_ENOENT, errstr, errstr_size,
                              "member \"%s\" is missing", field);
    if (v.kind != WEIR__JS_INT)
        return get_int_failed(WEIR_EPARSE, errstr, errstr_size,
                              "member \"%s\" is not an integer", field);
    *out = span_int(&v);
    return WEIR_OK;
}

/*
 * Key, time and header value of a non-blank line: the fast path when it
 * can vouch for the line, jansson otherwise. WEIR_OK, 1 when the line was
 * rejected (gone to r), or a negative code. The key lives in st->buf
 * until the next line.
 */
static int parse_line(struct json_parse *st, const weir_json_opts_t *o,
                      const struct reject_to *r, weir_buf_t *key, int64_t *ts,
                      int64_t *hv)
{
    json_t *doc = NULL;
    int rc;

    rc = fast_fields(st, o, r->in, key, ts, hv);
    if (rc != 0)
        return rc < 0 ? rc : WEIR_OK;
    rc = load_line(r, st, &doc);
    if (rc != WEIR_OK)
        return rc;
    /* Fields are read before hashing: hashing normalises the document. */
    if (o->content_hash) {
        rc = read_fields(r, st, o, doc, ts, hv);
        if (rc == WEIR_OK)
            rc = hash_key(r, st, doc, key);
    } else {
        rc = fields_key(r, st, o, doc, key);
        if (rc == WEIR_OK)
            rc = read_fields(r, st, o, doc, ts, hv);
    }
    json_decref(doc);
    return rc;
}

static int json_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    const weir_json_opts_t *o = weir_ctx_opaque(ctx);
    struct reject_to r = {ctx, in, NULL, 0};
    weir_buf_t key = WEIR_BUF_NULL;
    int64_t ts = 0;
    int64_t hv = 0;
    int rc;

    if (weir_record_is_replay(in))
        return weir_forward(ctx, in); /* a changelog entry: key and ts set */
    if (is_blank(weir_record_value(in)))
        return WEIR_OK;
    rc = parse_line(st, o, &r, &key, &ts, &hv);
    if (rc != WEIR_OK)
        return rc > 0 ? WEIR_OK : rc;
    return emit_parsed(ctx, o, in, key, ts, hv);
}

/* ------------------------------------------------------------------ *
 * ## The same, record by record (weir_json_parser_*)
 * ------------------------------------------------------------------ */

struct weir_json_parser_s {
    const weir_json_opts_t *o;
    struct json_parse st;
};

weir_json_parser_t *weir_json_parser_new(const weir_json_opts_t *opts,
                                         char *errstr, size_t errstr_size)
{
    weir_json_parser_t *jp;

    if (opts == NULL) {
        if (errstr != NULL && errstr_size > 0)
            snprintf(errstr, errstr_size, "no options");
        return NULL;
    }
    if (weir_json_opts_check(opts, errstr, errstr_size) != WEIR_OK)
        return NULL;
    jp = weir_calloc(1, sizeof(*jp));
    if (jp == NULL || parse_state_init(&jp->st, opts) != WEIR_OK) {
        weir_free(jp);
        if (errstr != NULL && errstr_size > 0)
            snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    jp->o = opts;
    return jp;
}

int weir_json_parser_apply(weir_json_parser_t *jp, weir_record_t *rec,
                           char *errstr, size_t errstr_size)
{
    struct reject_to r = {NULL, rec, errstr, errstr_size};
    const weir_json_opts_t *o;
    weir_buf_t key = WEIR_BUF_NULL;
    char num[24];
    int64_t ts = 0;
    int64_t hv = 0;
    int rc;

    if (jp == NULL || rec == NULL)
        return WEIR_EINVAL;
    o = jp->o;
    if (is_blank(weir_record_value(rec))) {
        if (errstr != NULL && errstr_size > 0)
            snprintf(errstr, errstr_size, "blank line");
        return WEIR_ENOENT;
    }
    rc = parse_line(&jp->st, o, &r, &key, &ts, &hv);
    if (rc > 0)
        return WEIR_EPARSE; /* the reason is in errstr */
    if (rc == WEIR_OK)
        rc = weir_record_set_key(rec, key);
    if (rc == WEIR_OK)
        rc = weir_record_set_ts(rec, (weir_ts_t)ts);
    if (rc == WEIR_OK && o->hdr_field != NULL) {
        snprintf(num, sizeof(num), "%lld", (long long)hv);
        rc = weir_record_add_header(rec, o->hdr_name, WEIR_BUF_STR(num));
    }
    return rc;
}

void weir_json_parser_destroy(weir_json_parser_t *jp)
{
    if (jp == NULL)
        return;
    parse_state_free(&jp->st);
    weir_free(jp);
}

const weir_operator_def_t weir_op_json_parse = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "json_parse",
    .state_size = sizeof(struct json_parse),
    .open = json_open,
    .process = json_process,
    .close = json_close,
};
