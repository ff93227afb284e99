/*
 * json_scan.c - the JSON parse operator's fast path: one validating pass
 * over a line that finds the top-level members it is asked for, without
 * building a document.
 *
 * How it works
 *   A recursive-descent scanner over RFC 8259 grammar, strict where
 *   jansson is strict: whitespace is space, tab, CR, LF; numbers have no
 *   leading zeros, '+' or bare '.'; strings hold no control characters
 *   and only valid UTF-8 (no overlong forms, surrogates or code points
 *   beyond U+10FFFF); escapes are the eight single-character ones and
 *   \uXXXX; after the value only whitespace may follow. Whenever the
 *   line holds something whose treatment by jansson is not plain
 *   (see json_scan.h) the scan gives up and returns 0: it never decides
 *   an error itself, so every rejected line gets jansson's own message.
 *
 *   Top-level member names are compared with the requested names as they
 *   are scanned; a later member of the same name replaces the earlier
 *   span, as jansson's object does. Nested values are validated and
 *   skipped. Depth is bounded by WEIR__JS_MAX_DEPTH, so the recursion is.
 *
 * Invariants
 *   - A return of 1 implies jansson loads the line into an object whose
 *     members named names[i] have exactly the values out[i] describes.
 *   - Reads only line[0..len); no allocation.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "json_scan.h"

struct js {
    const unsigned char *p;   /* next byte            */
    const unsigned char *end; /* one past the last    */
};

/* Compact JSON has no whitespace: one comparison decides most calls. A
 * local cursor stays in a register (s->p may alias the bytes). */
static inline void skip_ws(struct js *s)
{
    const unsigned char *p = s->p;

    if (p<s->end && * p> ' ')
        return;
    while (p < s->end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    s->p = p;
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One UTF-8 sequence starting with a byte >= 0x80: its length, or 0 when
 * it is invalid (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    size_t n;
    size_t i;

    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    if (p[0] == 0xE0)
        lo = 0xA0; /* overlong */
    else if (p[0] == 0xED)
        hi = 0x9F; /* surrogates */
    else if (p[0] == 0xF0)
        lo = 0x90; /* overlong */
    else if (p[0] == 0xF4)
        hi = 0x8F; /* beyond U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return n;
}

/* One escape after the backslash at s->p[-1]; 0 to give up. */
static int scan_escape(struct js *s)
{
    unsigned v = 0;
    int h;
    int i;

    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        s->p++;
        return 1;
    case 'u':
        break;
    default:
        return 0;
    }
    if (s->end - s->p < 5)
        return 0;
    for (i = 1; i <= 4; i++) {
        h = hex_value(s->p[i]);
        if (h < 0)
            return 0;
        v = v * 16 + (unsigned)h;
    }
    if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
        return 0; /* NUL and surrogate pairs: jansson decides */
    s->p += 5;
    return 1;
}

/* A string whose opening quote is at s->p. Sets *esc when it holds an
 * escape; *v spans the bytes between the quotes. */
/* The first byte at or after p that is not plain ASCII string content
 * ('"', '\\', a control byte or a byte >= 0x80), or end. With SSE2, 16
 * bytes per step: as signed bytes, control bytes and bytes >= 0x80 are
 * exactly those below 0x20. */
static inline const unsigned char *plain_run(const unsigned char *p,
                                             const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
            _mm_cmplt_epi8(v, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(hit);

        if (mask != 0)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#endif
    while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
        p++;
    return p;
}

static int scan_string(struct js *s, int *esc, weir__js_span_t *v)
{
    const unsigned char *start = ++s->p;
    const unsigned char *p;
    size_t n;

    *esc = 0;
    while (s->p < s->end) {
        unsigned char c;

        /* Plain ASCII runs: a local cursor the compiler keeps in a
         * register (s->p may alias the bytes, being stored through). */
        p = plain_run(s->p, s->end);
        s->p = p;
        if (p == s->end)
            break;
        c = *p; /* '"', '\\', a control byte or a multi-byte start */
        if (c == '"') {
            v->p = (const char *)start;
            v->n = (size_t)(s->p - start);
            s->p++;
            return 1;
        }
        if (c == '\\') {
            *esc = 1;
            s->p++;
            if (!scan_escape(s))
                return 0;
        } else if (c < 0x20) {
            return 0;
        } else {
            n = utf8_seq(s->p, s->end);
            if (n == 0)
                return 0;
            s->p += n;
        }
    }
    return 0;
}

/* Digits at s->p: how many (at least one wanted by callers). */
static size_t scan_digits(struct js *s)
{
    const unsigned char *start = s->p;
    const unsigned char *p = start;

    while (p < s->end && (unsigned)(*p - '0') <= 9u)
        p++;
    s->p = p;
    return (size_t)(p - start);
}

/* A number; integers of at most WEIR__JS_INT_DIGITS digits, reals that
 * cannot overflow a double (at most 100 integer digits, |exponent| at
 * most 200). */
static int scan_number(struct js *s, weir__js_span_t *v)
{
    const unsigned char *start = s->p;
    size_t idigits;
    long exp = 0;
    int real = 0;

    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end || *s->p < '0' || *s->p > '9')
        return 0;
    if (*s->p == '0') {
        s->p++;
        idigits = 1;
    } else {
        idigits = scan_digits(s);
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        real = 1;
        if (scan_digits(s) == 0)
            return 0;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        real = 1;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            exp = exp * 10 + (*s->p - '0');
            if (exp > 200)
                return 0;
            s->p++;
        }
    }
    if (real ? idigits > 100 : idigits > WEIR__JS_INT_DIGITS)
        return 0;
    v->kind = real ? WEIR__JS_REAL : WEIR__JS_INT;
    v->p = (const char *)start;
    v->n = (size_t)(s->p - start);
    return 1;
}

static int scan_literal(struct js *s, const char *word, weir__js_kind_t kind,
                        weir__js_span_t *v)
{
    size_t n = strlen(word);

    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return 0;
    v->kind = kind;
    v->p = (const char *)s->p;
    v->n = n;
    s->p += n;
    return 1;
}

static int scan_value(struct js *s, int depth, weir__js_span_t *v);

/* After a member or element: 1 when a ',' follows (more to come), 0 when
 * `close` ends the container, -1 for anything else. */
static int next_item(struct js *s, unsigned char close)
{
    skip_ws(s);
    if (s->p >= s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        return 0;
    }
    if (*s->p != ',')
        return -1;
    s->p++;
    skip_ws(s);
    return 1;
}

/* Opens a container at s->p: 1 when it has content, 0 when it is empty
 * (and consumed), -1 when nested too deep. */
static int open_container(struct js *s, int depth, unsigned char close)
{
    if (depth > WEIR__JS_MAX_DEPTH)
        return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 0;
    }
    return 1;
}

/* Stores val into every requested slot whose name is `name` (a name may
 * be asked for twice, e.g. as a key field and as the time field). */
static void store_member(const weir__js_span_t *name,
                         const weir__js_span_t *val, const char *const *names,
                         size_t nnames, weir__js_span_t *out)
{
    char first = name->n > 0 ? name->p[0] : '\0';
    size_t i;

    /* the first byte rules out most names before a strncmp */
    for (i = 0; i < nnames; i++)
        if (names[i][0] == first &&
            (name->n == 0 || (strncmp(names[i], name->p, name->n) == 0 &&
                              names[i][name->n] == '\0')))
            out[i] = *val;
}

/* An object at s->p ('{'). At the top (names != NULL) member values
 * whose names are requested are stored into out. */
static int scan_object(struct js *s, int depth, const char *const *names,
                       size_t nnames, weir__js_span_t *out)
{
    weir__js_span_t name;
    weir__js_span_t val;
    int more = open_container(s, depth, '}');
    int esc;

    for (; more > 0; more = next_item(s, '}')) {
        if (s->p >= s->end || *s->p != '"' || !scan_string(s, &esc, &name))
            return 0;
        if (esc && names != NULL)
            return 0; /* an escaped name may spell a requested one */
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return 0;
        s->p++;
        skip_ws(s);
        if (!scan_value(s, depth, &val))
            return 0;
        if (names != NULL)
            store_member(&name, &val, names, nnames, out);
    }
    return more == 0;
}

static int scan_array(struct js *s, int depth)
{
    weir__js_span_t val;
    int more = open_container(s, depth, ']');

    for (; more > 0; more = next_item(s, ']'))
        if (!scan_value(s, depth, &val))
            return 0;
    return more == 0;
}

/* Any value at s->p (whitespace already skipped). */
static int scan_value(struct js *s, int depth, weir__js_span_t *v)
{
    const unsigned char *start = s->p;
    int esc;
    int ok;

    if (s->p >= s->end)
        return 0;
    switch (*s->p) {
    case '"':
        if (!scan_string(s, &esc, v))
            return 0;
        v->kind = esc ? WEIR__JS_STR_ESC : WEIR__JS_STR;
        if (esc) { /* the caller must not use the raw bytes as text */
            v->p = (const char *)start;
            v->n = (size_t)(s->p - start);
        }
        return 1;
    case '{':
        ok = scan_object(s, depth + 1, NULL, 0, NULL);
        v->kind = WEIR__JS_OBJECT;
        break;
    case '[':
        ok = scan_array(s, depth + 1);
        v->kind = WEIR__JS_ARRAY;
        break;
    case 't':
        return scan_literal(s, "true", WEIR__JS_TRUE, v);
    case 'f':
        return scan_literal(s, "false", WEIR__JS_FALSE, v);
    case 'n':
        return scan_literal(s, "null", WEIR__JS_NULL, v);
    default:
        return scan_number(s, v);
    }
    v->p = (const char *)start;
    v->n = (size_t)(s->p - start);
    return ok;
}

int weir__json_scan(const char *line, size_t len, const char *const *names,
                    size_t nnames, weir__js_span_t *out)
{
    struct js s;
    size_t i;

    if (line == NULL || out == NULL || (names == NULL && nnames > 0))
        return 0;
    for (i = 0; i < nnames; i++) {
        out[i].kind = WEIR__JS_MISSING;
        out[i].p = NULL;
        out[i].n = 0;
    }
    s.p = (const unsigned char *)line;
    s.end = s.p + len;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return 0;
    if (!scan_object(&s, 1, names, nnames, out))
        return 0;
    skip_ws(&s);
    return s.p == s.end;
}
