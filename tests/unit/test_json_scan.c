/*
 * tests/unit/test_json_scan.c - the JSON parse operator's fast path
 * (operators/json_scan.c) against its jansson path.
 *
 * How it works
 *   Model-based: random JSON lines (members from a small name pool, so
 *   duplicates occur; strings with and without escapes, multi-byte UTF-8,
 *   numbers of every shape including -0, 19-20 digit integers and reals
 *   beyond the double range, literals, nested containers, odd whitespace),
 *   a third of them damaged by a flipped, deleted or inserted byte or a
 *   truncation. Each line goes through two parse operators: once as is
 *   (the fast path takes it when it can) and once with a member whose name
 *   is escaped ("\u0061") added at the front, which the fast path never
 *   takes, so the jansson path decides. Both must agree line by line:
 *   main output or errors output, and on the main output the same key,
 *   timestamp and header. weir_json_parser_apply() on the same line must
 *   give what the operator gave (key, time, header, or the same error
 *   reason). The test also checks that the fast path took a
 *   good share of the lines and gave up on the cases it must leave to
 *   jansson, scanner-level cases included.
 *
 * Invariants
 *   Deterministic (fixed seeds); frees everything.
 */
/* cmocka needs these headers first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/testing.h>

#include "../../operators/json_scan.h"

#define LINES   20000
#define LINEMAX 4096

/* ------------------------------------------------------------------ *
 * ## Random lines
 * ------------------------------------------------------------------ */

struct gen {
    uint64_t s; /* xorshift state */
    char *out;  /* the line       */
    size_t n;   /* its length     */
};

static uint64_t rnd(struct gen *g)
{
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return g->s;
}

static unsigned pick(struct gen *g, unsigned n)
{
    return (unsigned)(rnd(g) % n);
}

static void put(struct gen *g, const char *s)
{
    size_t n = strlen(s);

    if (g->n + n < LINEMAX - 1) {
        memcpy(g->out + g->n, s, n);
        g->n += n;
    }
}

static void put_ws(struct gen *g)
{
    static const char *const ws[] = {"", "", "", " ", "\t", "\r\n", "  "};

    put(g, ws[pick(g, 7)]);
}

/* Parts of a string; the first ten are plain (one is longer than the
 * scanner's 16-byte steps), the rest escapes. */
static void put_string(struct gen *g)
{
    static const char *const parts[] = {"abc",
                                        "k000123",
                                        "/",
                                        "\xc3\xa9",
                                        "\xe2\x82\xac",
                                        "\xf0\x9d\x84\x9e",
                                        "\xe2\x80\xa8",
                                        "\x7f",
                                        " ",
                                        "abcdefghijklmnopqrstuvwxyz0123456789",
                                        "\\n",
                                        "\\\"",
                                        "\\\\",
                                        "\\/",
                                        "\\u00e9",
                                        "\\ud83d\\ude00",
                                        "\\u0000",
                                        "\\ud800",
                                        "\\t",
                                        "Z",
                                        "0"};
    unsigned i;
    unsigned n = pick(g, 6);

    put(g, "\"");
    for (i = 0; i < n; i++)
        put(g, parts[pick(g, (rnd(g) % 3) ? 10 : 21)]);
    put(g, "\"");
}

static void put_number(struct gen *g)
{
    static const char *const fixed[] = {"0",
                                        "-0",
                                        "7",
                                        "-42",
                                        "01",
                                        "1.5",
                                        "-0.0",
                                        "2.0",
                                        "1e5",
                                        "1E+2",
                                        "1e400",
                                        "1e-400",
                                        "1.",
                                        ".5",
                                        "-",
                                        "+1",
                                        "3.25e-3",
                                        "1e0000001",
                                        "9223372036854775807",
                                        "-9223372036854775808",
                                        "12345678901234567890",
                                        "123456789012345678"};
    char buf[32];

    if (pick(g, 3) == 0) {
        put(g, fixed[pick(g, 22)]);
        return;
    }
    snprintf(buf, sizeof(buf), "%s%llu", pick(g, 4) == 0 ? "-" : "",
             (unsigned long long)(rnd(g) % 100000));
    put(g, buf);
}

static void put_value(struct gen *g, int depth);

static void put_object(struct gen *g, int depth, int top)
{
    static const char *const names[] = {"id", "ts", "k2", "x", "y", "\\u0069d"};
    unsigned i;
    unsigned n = pick(g, top ? 6 : 3);

    put(g, "{");
    for (i = 0; i < n; i++) {
        if (i > 0)
            put(g, ",");
        put_ws(g);
        put(g, "\"");
        put(g, names[pick(g, pick(g, 8) == 0 ? 6 : 5)]);
        put(g, "\"");
        put_ws(g);
        put(g, ":");
        put_ws(g);
        put_value(g, depth + 1);
        put_ws(g);
    }
    put(g, "}");
}

static void put_value(struct gen *g, int depth)
{
    unsigned i;

    switch (pick(g, depth > 3 ? 6 : 8)) {
    case 0:
    case 1:
        put_string(g);
        break;
    case 2:
    case 3:
        put_number(g);
        break;
    case 4:
        put(g, "true");
        break;
    case 5:
        put(g, pick(g, 2) ? "false" : "null");
        break;
    case 6:
        put_object(g, depth, 0);
        break;
    default:
        put(g, "[");
        for (i = 0; i < pick(g, 3); i++) {
            if (i > 0)
                put(g, ",");
            put_value(g, depth + 1);
        }
        put(g, "]");
        break;
    }
}

/* Mostly objects whose "id" and "ts" are usable, then damage. */
static void make_line(struct gen *g)
{
    size_t at;
    char ts[32];

    g->n = 0;
    put_ws(g);
    if (pick(g, 20) == 0) {
        put_value(g, 0); /* maybe not an object */
    } else if (pick(g, 2) == 0) {
        put(g, "{\"id\":");
        put_value(g, 2);
        snprintf(ts, sizeof(ts), ",\"ts\":%llu,\"k2\":",
                 (unsigned long long)(rnd(g) % 1000000));
        put(g, ts);
        put_value(g, 2);
        put(g, ",\"x\":");
        put_number(g);
        put(g, "}");
    } else {
        put_object(g, 0, 1);
    }
    put_ws(g);
    g->out[g->n] = '\0'; /* for strspn; the line is (out, n) */
    if (pick(g, 3) == 0 && g->n > 0) {
        at = pick(g, (unsigned)g->n);
        switch (pick(g, 4)) {
        case 0:
            g->out[at] = (char)pick(g, 256);
            break;
        case 1:
            memmove(g->out + at, g->out + at + 1, g->n - at - 1);
            g->n--;
            break;
        case 2:
            g->n = at;
            break;
        default:
            memmove(g->out + at + 1, g->out + at, g->n - at);
            g->out[at] = (char)pick(g, 256);
            g->n++;
            break;
        }
        g->out[g->n] = '\0';
    }
}

/* The same object with a member the fast path never takes put first. */
static size_t slow_twin(const char *line, size_t n, char *out)
{
    static const char member[] = "\"\\u0061\":0";
    size_t i = 0;
    size_t o;
    size_t j;

    while (i < n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
                     line[i] == '\n'))
        i++;
    if (i == n || line[i] != '{') {
        memcpy(out, line, n);
        return n;
    }
    memcpy(out, line, i + 1);
    o = i + 1;
    memcpy(out + o, member, sizeof(member) - 1);
    o += sizeof(member) - 1;
    for (j = i + 1; j < n && (line[j] == ' ' || line[j] == '\t' ||
                              line[j] == '\r' || line[j] == '\n');
         j++)
        ;
    if (j < n && line[j] != '}')
        out[o++] = ',';
    memcpy(out + o, line + i + 1, n - i - 1);
    return o + n - i - 1;
}

/* ------------------------------------------------------------------ *
 * ## Fast path against the jansson path
 * ------------------------------------------------------------------ */

static void free_opts(void *o)
{
    weir_json_opts_destroy(o);
}

static weir_harness_t *parser(const char *keys, const char *hdr)
{
    weir_json_opts_t *o = weir_json_opts_new();
    weir_harness_t *h;

    assert_non_null(o);
    assert_int_equal(WEIR_OK, weir_json_opts_add_keys(o, keys));
    if (hdr != NULL)
        assert_int_equal(WEIR_OK, weir_json_opts_set_header_field(o, hdr, "h"));
    h = weir_harness_new(&weir_op_json_parse, o);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_attach(h, o, free_opts));
    return h;
}

static int same_buf(weir_buf_t a, weir_buf_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* weir_json_get_int agrees on a line and its slow twin. */
static void same_int_member(const char *line, size_t n, const char *twin,
                            size_t tn)
{
    int64_t a = 0;
    int64_t b = 0;
    int ra = weir_json_get_int(line, n, "ts", &a, NULL, 0);
    int rb = weir_json_get_int(twin, tn, "ts", &b, NULL, 0);

    if (ra != rb || a != b)
        fail_msg("get_int: %d/%lld != %d/%lld for '%.*s'", ra, (long long)a, rb,
                 (long long)b, (int)n, line);
}

/* weir_json_parser_apply on a line must give what the operator gave: the
 * same key, time and header, the same error reason, or "blank". */
static void same_as_parser(weir_json_parser_t *jp, const weir_harness_t *op,
                           size_t fm, size_t fe, const char *line, size_t n)
{
    weir_record_t *rec;
    const weir_record_t *want;
    weir_buf_t hw;
    weir_buf_t hg;
    char why[600] = "";
    int rc;

    rec = weir_record_new(NULL, WEIR_BUF_STR("message-key"), WEIR_BUF(line, n),
                          WEIR_TS_MIN, WEIR_COPY);
    assert_non_null(rec);
    rc = weir_json_parser_apply(jp, rec, why, sizeof(why));
    if (weir_harness_count(op, WEIR_TAG_MAIN) > fm) {
        want = weir_harness_record(op, WEIR_TAG_MAIN, fm);
        if (rc != WEIR_OK)
            fail_msg("parser refused what the operator took (%s): '%.*s'", why,
                     (int)n, line);
        assert_true(same_buf(weir_record_key(rec), weir_record_key(want)));
        assert_int_equal(weir_record_ts(rec), weir_record_ts(want));
        if (weir_record_header(want, "h", &hw) == WEIR_OK) {
            assert_int_equal(WEIR_OK, weir_record_header(rec, "h", &hg));
            assert_true(same_buf(hw, hg));
        }
    } else if (weir_harness_count(op, WEIR_TAG_ERRORS) > fe) {
        want = weir_harness_record(op, WEIR_TAG_ERRORS, fe);
        assert_int_equal(WEIR_EPARSE, rc);
        assert_int_equal(WEIR_OK,
                         weir_record_header(want, WEIR_HDR_ERROR, &hw));
        if (!same_buf(hw, WEIR_BUF_STR(why)))
            fail_msg("reason '%s' != '%.*s'", why, (int)hw.len,
                     (const char *)hw.data);
        /* a refused record is left as it was */
        assert_true(
            same_buf(weir_record_key(rec), WEIR_BUF_STR("message-key")));
    } else {
        assert_int_equal(WEIR_ENOENT, rc); /* blank */
    }
    weir_record_destroy(rec);
}

/* Runs both operators on LINES random lines and compares them; and the
 * record-by-record parser with the operator. */
static void run_model(const char *keys, const char *hdr, uint64_t seed)
{
    const char *names[] = {"id", "ts", "k2", "x"};
    weir__js_span_t spans[4];
    weir_harness_t *fast = parser(keys, hdr);
    weir_harness_t *slow = parser(keys, hdr);
    struct gen g = {seed, malloc(LINEMAX), 0};
    char *twin = malloc(LINEMAX + 16);
    weir_json_opts_t *po = weir_json_opts_new();
    weir_json_parser_t *jp;
    size_t tn;
    size_t taken = 0;
    size_t mains = 0;
    size_t i;

    assert_non_null(g.out);
    assert_non_null(twin);
    assert_non_null(po);
    assert_int_equal(WEIR_OK, weir_json_opts_add_keys(po, keys));
    if (hdr != NULL)
        assert_int_equal(WEIR_OK,
                         weir_json_opts_set_header_field(po, hdr, "h"));
    jp = weir_json_parser_new(po, NULL, 0);
    assert_non_null(jp);
    for (i = 0; i < LINES; i++) {
        size_t fm = weir_harness_count(fast, WEIR_TAG_MAIN);
        size_t fe = weir_harness_count(fast, WEIR_TAG_ERRORS);

        make_line(&g);
        tn = slow_twin(g.out, g.n, twin);
        taken += (size_t)weir__json_scan(g.out, g.n, names, 4, spans);
        same_int_member(g.out, g.n, twin, tn);
        assert_int_equal(WEIR_OK, weir_harness_push_buf(fast, WEIR_BUF_NULL,
                                                        WEIR_BUF(g.out, g.n),
                                                        WEIR_TS_MIN));
        assert_int_equal(WEIR_OK, weir_harness_push_buf(slow, WEIR_BUF_NULL,
                                                        WEIR_BUF(twin, tn),
                                                        WEIR_TS_MIN));
        if (weir_harness_count(fast, WEIR_TAG_MAIN) !=
                weir_harness_count(slow, WEIR_TAG_MAIN) ||
            weir_harness_count(fast, WEIR_TAG_ERRORS) !=
                weir_harness_count(slow, WEIR_TAG_ERRORS))
            fail_msg("line %zu decided differently: '%.*s'", i, (int)g.n,
                     g.out);
        same_as_parser(jp, fast, fm, fe, g.out, g.n);
        if (weir_harness_count(fast, WEIR_TAG_MAIN) > fm) {
            const weir_record_t *a =
                weir_harness_record(fast, WEIR_TAG_MAIN, fm);
            const weir_record_t *b =
                weir_harness_record(slow, WEIR_TAG_MAIN, fm);
            weir_buf_t ha = WEIR_BUF_NULL;
            weir_buf_t hb = WEIR_BUF_NULL;

            if (!same_buf(weir_record_key(a), weir_record_key(b)))
                fail_msg("line %zu: key '%.*s' != '%.*s' for '%.*s'", i,
                         (int)weir_record_key(a).len,
                         (const char *)weir_record_key(a).data,
                         (int)weir_record_key(b).len,
                         (const char *)weir_record_key(b).data, (int)g.n,
                         g.out);
            assert_int_equal(weir_record_ts(a), weir_record_ts(b));
            assert_true(same_buf(weir_record_value(a), WEIR_BUF(g.out, g.n)));
            if (hdr != NULL) {
                assert_int_equal(WEIR_OK, weir_record_header(a, "h", &ha));
                assert_int_equal(WEIR_OK, weir_record_header(b, "h", &hb));
                assert_true(same_buf(ha, hb));
            }
            mains++;
        } else {
            /* Not parsed: an error, unless the line was blank. */
            assert_int_equal(weir_harness_count(fast, WEIR_TAG_ERRORS),
                             fe + (g.n > strspn(g.out, " \t\r\n") ? 1 : 0));
        }
        if (i % 1000 == 999) {
            weir_harness_clear(fast);
            weir_harness_clear(slow);
        }
    }
    /* The comparison means something only if both paths were exercised. */
    assert_true(taken > LINES / 4);
    assert_true(taken < LINES);
    assert_true(mains > LINES / 10);
    free(g.out);
    free(twin);
    weir_json_parser_destroy(jp);
    weir_json_opts_destroy(po);
    weir_harness_destroy(fast);
    weir_harness_destroy(slow);
}

static void test_parser_arguments(void **state)
{
    weir_json_opts_t *o = weir_json_opts_new();
    weir_json_parser_t *jp;
    weir_record_t *rec;
    char why[200];

    (void)state;
    assert_null(weir_json_parser_new(NULL, why, sizeof(why)));
    assert_non_null(o);
    /* no key fields and no content hash: invalid options */
    assert_null(weir_json_parser_new(o, why, sizeof(why)));
    assert_true(strlen(why) > 0);
    assert_int_equal(WEIR_OK, weir_json_opts_set_content_hash(o, 1));
    jp = weir_json_parser_new(o, why, sizeof(why));
    assert_non_null(jp);
    assert_int_equal(WEIR_EINVAL, weir_json_parser_apply(jp, NULL, NULL, 0));
    assert_int_equal(WEIR_EINVAL, weir_json_parser_apply(NULL, NULL, NULL, 0));
    rec = weir_record_new(NULL, WEIR_BUF_NULL,
                          WEIR_BUF_STR("{\"b\":1,\"a\":2.0,\"ts\":7}"),
                          WEIR_TS_MIN, WEIR_COPY);
    assert_non_null(rec);
    assert_int_equal(WEIR_OK, weir_json_parser_apply(jp, rec, NULL, 0));
    assert_int_equal(16, weir_record_key(rec).len); /* the content digest */
    assert_int_equal(7, weir_record_ts(rec));
    weir_record_destroy(rec);
    weir_json_parser_destroy(jp);
    weir_json_parser_destroy(NULL);
    weir_json_opts_destroy(o);
}

static void test_fast_path_matches_jansson_one_key(void **state)
{
    (void)state;
    run_model("id", NULL, 0x9e3779b97f4a7c15ULL);
}

static void test_fast_path_matches_jansson_two_keys_header(void **state)
{
    (void)state;
    run_model("id,k2", "x", 0xd1b54a32d192ed03ULL);
}

/* ------------------------------------------------------------------ *
 * ## The scanner itself
 * ------------------------------------------------------------------ */

static int scan(const char *line, weir__js_span_t *out)
{
    const char *names[] = {"id", "ts"};

    return weir__json_scan(line, strlen(line), names, 2, out);
}

static void test_scan_finds_last_member(void **state)
{
    weir__js_span_t v[2];

    (void)state;
    assert_int_equal(1, scan(" {\"id\":\"a\",\"x\":[1,{\"id\":2}],"
                             "\"id\":\"b\\u00e9\",\"ts\":-0}\r\n",
                             v));
    assert_int_equal(WEIR__JS_STR_ESC, v[0].kind);
    assert_int_equal(WEIR__JS_INT, v[1].kind);
    assert_int_equal(2, v[1].n);
    assert_int_equal(1, scan("{\"ts\":1.5e3}", v));
    assert_int_equal(WEIR__JS_MISSING, v[0].kind);
    assert_int_equal(WEIR__JS_REAL, v[1].kind);
    assert_int_equal(1, scan("{\"id\":\"\xf0\x9d\x84\x9e\",\"ts\":null}", v));
    assert_int_equal(WEIR__JS_STR, v[0].kind);
    assert_int_equal(4, v[0].n);
    assert_int_equal(WEIR__JS_NULL, v[1].kind);
}

static void test_scan_leaves_hard_cases_to_jansson(void **state)
{
    static const char *const cases[] = {
        "[1]",                           /* not an object          */
        "{\"\\u0069d\":1}",              /* escaped top-level name */
        "{\"id\":\"\\u0000\"}",          /* NUL escape             */
        "{\"id\":\"\\ud83d\\ude00\"}",   /* surrogate pair         */
        "{\"id\":1234567890123456789}",  /* 19 digits              */
        "{\"id\":1e201}",                /* exponent too large     */
        "{\"id\":01}",                   /* leading zero           */
        "{\"id\":\"\xc0\xaf\"}",         /* overlong UTF-8         */
        "{\"id\":\"\xed\xa0\x80\"}",     /* encoded surrogate      */
        "{\"id\":\"\xf4\x90\x80\x80\"}", /* beyond U+10FFFF        */
        "{\"id\":\"a\tb\"}",             /* raw control character  */
        "{\"id\":1} x",                  /* trailing garbage       */
        "{\"id\":tru}",                  /* bad literal            */
        "{\"id\":1,}",                   /* trailing comma         */
    };
    char deep[400];
    weir__js_span_t v[2];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (scan(cases[i], v) != 0)
            fail_msg("the scan took '%s'", cases[i]);
    memset(deep, 0, sizeof(deep));
    strcpy(deep, "{\"id\":");
    for (i = 0; i < WEIR__JS_MAX_DEPTH + 1; i++)
        strcat(deep, "[");
    for (i = 0; i < WEIR__JS_MAX_DEPTH + 1; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    assert_int_equal(0, scan(deep, v));
    assert_int_equal(0, weir__json_scan(NULL, 0, NULL, 0, v));
}

static void test_get_int(void **state)
{
    char why[128];
    int64_t v = 0;

    (void)state;
    assert_int_equal(WEIR_OK,
                     weir_json_get_int("{\"ts\":-5}", strlen("{\"ts\":-5}"),
                                       "ts", &v, why, sizeof(why)));
    assert_int_equal(-5, v);
    /* A number beyond 64 bits elsewhere does not matter. */
    assert_int_equal(
        WEIR_OK,
        weir_json_get_int("{\"a\":123456789012345678901,\"ts\":7}",
                          strlen("{\"a\":123456789012345678901,\"ts\":7}"),
                          "ts", &v, why, sizeof(why)));
    assert_int_equal(7, v);
    assert_int_equal(WEIR_ENOENT,
                     weir_json_get_int("{\"t\":1}", strlen("{\"t\":1}"), "ts",
                                       &v, why, sizeof(why)));
    assert_string_equal("member \"ts\" is missing", why);
    assert_int_equal(WEIR_EPARSE,
                     weir_json_get_int("{\"ts\":1.5}", strlen("{\"ts\":1.5}"),
                                       "ts", &v, why, sizeof(why)));
    assert_string_equal("member \"ts\" is not an integer", why);
    assert_int_equal(WEIR_EPARSE,
                     weir_json_get_int("{\"ts\":123456789012345678901}",
                                       strlen("{\"ts\":123456789012345678901}"),
                                       "ts", &v, why, sizeof(why)));
    assert_int_equal(WEIR_EPARSE, weir_json_get_int("[1]", strlen("[1]"), "ts",
                                                    &v, why, sizeof(why)));
    assert_string_equal("not a JSON object", why);
    assert_int_equal(WEIR_EPARSE,
                     weir_json_get_int("{\"ts\":", strlen("{\"ts\":"), "ts", &v,
                                       why, sizeof(why)));
    assert_non_null(strstr(why, "invalid JSON"));
    assert_int_equal(WEIR_EPARSE,
                     weir_json_get_int(NULL, 0, "ts", &v, NULL, 0));
    assert_int_equal(WEIR_EINVAL,
                     weir_json_get_int(NULL, 3, "ts", &v, NULL, 0));
    assert_int_equal(WEIR_EINVAL,
                     weir_json_get_int("{}", strlen("{}"), "", &v, NULL, 0));
    assert_int_equal(WEIR_EINVAL, weir_json_get_int("{}", strlen("{}"), "ts",
                                                    NULL, NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_arguments),
        cmocka_unit_test(test_fast_path_matches_jansson_one_key),
        cmocka_unit_test(test_fast_path_matches_jansson_two_keys_header),
        cmocka_unit_test(test_scan_finds_last_member),
        cmocka_unit_test(test_get_int),
        cmocka_unit_test(test_scan_leaves_hard_cases_to_jansson),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
