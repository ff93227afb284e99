/*
 * json_scan.h - a validating single-pass scan of one JSON object line
 * that finds top-level members by name (the JSON parse operator's fast
 * path; internal to the library).
 *
 * weir__json_scan() answers "certainly the same as jansson" or "not
 * sure". It returns 1 only when the line is one JSON object that jansson
 * (JSON_DECODE_ANY | JSON_ALLOW_NUL) loads without error, and then gives,
 * for every requested name, the span of the value of the last member of
 * that name (jansson keeps the last of duplicate members), or kind
 * WEIR__JS_MISSING. It returns 0 for anything it does not check itself:
 * invalid JSON, a top level that is not an object, escapes in top-level
 * member names, \u escapes of NUL or surrogates, integers of more than
 * 18 digits, reals that could overflow a double, nesting deeper than
 * WEIR__JS_MAX_DEPTH. The caller then parses with jansson, which gives
 * the exact error or the exact value.
 *
 * Thread-safety: pure function of its arguments.
 */
#ifndef WEIR_JSON_SCAN_H
#define WEIR_JSON_SCAN_H

#include <stddef.h>

#define WEIR__JS_MAX_DEPTH  64
#define WEIR__JS_INT_DIGITS 18 /* always inside int64 */

typedef enum weir__js_kind {
    WEIR__JS_MISSING = 0, /* no member of that name                   */
    WEIR__JS_STR,         /* string without escapes: span is inside "" */
    WEIR__JS_STR_ESC,     /* string with escapes: span includes the "" */
    WEIR__JS_INT,         /* integer literal of at most 18 digits      */
    WEIR__JS_REAL,        /* number with a fraction or an exponent     */
    WEIR__JS_TRUE,
    WEIR__JS_FALSE,
    WEIR__JS_NULL,
    WEIR__JS_OBJECT,
    WEIR__JS_ARRAY
} weir__js_kind_t;

/* One requested member's value: its bytes in the line. */
typedef struct weir__js_span {
    weir__js_kind_t kind;
    const char *p;
    size_t n;
} weir__js_span_t;

/* Scans line[0..len) for the top-level members names[0..nnames) (NUL-
 * terminated; compared byte for byte). Returns 1 with out[i] set, or 0
 * (see above). */
int weir__json_scan(const char *line, size_t len, const char *const *names,
                    size_t nnames, weir__js_span_t *out);

#endif
