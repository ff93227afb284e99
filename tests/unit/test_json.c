/*
 * tests/unit/test_json.c - the JSON-lines parse operator (weir/json.h).
 *
 * How it works
 *   Each test builds options, drives one weir_op_json_parse instance
 *   through the harness with line records, and reads back the main output
 *   (key, value, timestamp, headers) and the errors output (value and the
 *   WEIR_HDR_ERROR reason). Cases cover every error reason, canonical keys
 *   (numbers by value, strings by their decoded text, members sorted,
 *   nested values, several fields in --key order), the content hash, big
 *   integers, NUL bytes, invalid UTF-8 and a 10 MB line, plus the options
 *   API and the stream builder.
 *
 * Invariants
 *   Deterministic; every test frees its harness, options and buffers.
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

/* ------------------------------------------------------------------ *
 * ## Helpers
 * ------------------------------------------------------------------ */

static void free_opts(void *o)
{
    weir_json_opts_destroy(o);
}

/* A parser keyed by `keys` (NULL: content hash), with an optional
 * header field copied into header "h". */
static weir_harness_t *parser(const char *keys, const char *time_field,
                              const char *hdr_field)
{
    weir_json_opts_t *o = weir_json_opts_new();
    weir_harness_t *h;

    assert_non_null(o);
    if (keys != NULL)
        assert_int_equal(WEIR_OK, weir_json_opts_add_keys(o, keys));
    else
        assert_int_equal(WEIR_OK, weir_json_opts_set_content_hash(o, 1));
    if (time_field != NULL)
        assert_int_equal(WEIR_OK, weir_json_opts_set_time_field(o, time_field));
    if (hdr_field != NULL)
        assert_int_equal(WEIR_OK,
                         weir_json_opts_set_header_field(o, hdr_field, "h"));
    h = weir_harness_new(&weir_op_json_parse, o);
    assert_non_null(h);
    assert_int_equal(WEIR_OK, weir_harness_attach(h, o, free_opts));
    return h;
}

static void push_bytes(weir_harness_t *h, const void *p, size_t n)
{
    assert_int_equal(
        WEIR_OK,
        weir_harness_push_buf(h, WEIR_BUF_NULL, WEIR_BUF(p, n), WEIR_TS_MIN));
}

static void push(weir_harness_t *h, const char *line)
{
    push_bytes(h, line, strlen(line));
}

static int buf_eq(weir_buf_t b, const void *p, size_t n)
{
    return b.len == n && (n == 0 || memcmp(b.data, p, n) == 0);
}

/* Asserts main output i has key `key` (text) and value `value`. */
static void assert_main(const weir_harness_t *h, size_t i, const char *key,
                        const char *value, weir_ts_t ts)
{
    const weir_record_t *r = weir_harness_record(h, WEIR_TAG_MAIN, i);
    weir_buf_t k;

    assert_non_null(r);
    k = weir_record_key(r);
    if (!buf_eq(k, key, strlen(key)))
        fail_msg("key %zu: got '%.*s', want '%s'", i, (int)k.len,
                 (const char *)k.data, key);
    assert_true(buf_eq(weir_record_value(r), value, strlen(value)));
    assert_int_equal(ts, weir_record_ts(r));
}

/* The key text of main output i (for equality checks). */
static weir_buf_t key_at(const weir_harness_t *h, size_t i)
{
    const weir_record_t *r = weir_harness_record(h, WEIR_TAG_MAIN, i);

    assert_non_null(r);
    return weir_record_key(r);
}

/* Asserts errors output i holds the bytes (p, n) and the reason. */
static void assert_error_bytes(const weir_harness_t *h, size_t i, const void *p,
                               size_t n, const char *reason)
{
    const weir_record_t *r = weir_harness_record(h, WEIR_TAG_ERRORS, i);
    weir_buf_t why;

    assert_non_null(r);
    assert_true(buf_eq(weir_record_value(r), p, n));
    assert_int_equal(WEIR_OK, weir_record_header(r, WEIR_HDR_ERROR, &why));
    if (why.len < strlen(reason) ||
        memcmp(why.data, reason, strlen(reason)) != 0)
        fail_msg("reason %zu: got '%.*s', want '%s...'", i, (int)why.len,
                 (const char *)why.data, reason);
}

static void assert_error(const weir_harness_t *h, size_t i, const char *line,
                         const char *reason)
{
    assert_error_bytes(h, i, line, strlen(line), reason);
}

/* ------------------------------------------------------------------ *
 * ## Records
 * ------------------------------------------------------------------ */

static void test_json_parsed_record(void **state)
{
    static const char line[] = "  {\"id\" : \"a\", \"ts\":-42, \"x\":[1]} ";
    weir_harness_t *h = parser("id", NULL, NULL);
    weir_record_t *in;
    const weir_record_t *out;
    weir_buf_t v;

    (void)state;
    in = weir_record_new(NULL, WEIR_BUF_NULL, WEIR_BUF_STR(line), WEIR_TS_MIN,
                         WEIR_COPY);
    assert_non_null(in);
    assert_int_equal(WEIR_OK, weir_record_set_position(in, 3, 1234));
    assert_int_equal(WEIR_OK,
                     weir_record_add_header(in, "trace", WEIR_BUF_STR("t1")));
    assert_int_equal(WEIR_OK, weir_harness_push_record(h, in));
    weir_record_destroy(in);
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_main(h, 0, "[\"a\"]", line, -42);
    out = weir_harness_record(h, WEIR_TAG_MAIN, 0);
    assert_int_equal(3, weir_record_partition(out));
    assert_int_equal(1234, weir_record_offset(out));
    assert_int_equal(WEIR_OK, weir_record_header(out, "trace", &v));
    assert_true(buf_eq(v, "t1", 2));
    weir_harness_destroy(h);
}

static void test_json_blank_lines_dropped(void **state)
{
    weir_harness_t *h = parser("id", NULL, NULL);

    (void)state;
    push(h, "");
    push(h, "   ");
    push(h, "\t \t");
    push(h, "\r");
    push(h, " \r");
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_ERRORS));
    /* Not JSON whitespace: an error, not a blank line. */
    push(h, "\f");
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_ERRORS));
    weir_harness_destroy(h);
}

static void test_json_error_reasons(void **state)
{
    static const struct {
        const char *line;
        const char *reason;
    } cases[] = {
        {"not json", "invalid JSON at byte "},
        {"{\"id\":\"a\",\"ts\":1", "invalid JSON at byte "},
        {"{\"id\":\"a\",\"ts\":1}}", "invalid JSON at byte "},
        {"{\"id\":\"a\",\"ts\":1} x", "invalid JSON at byte "},
        {"[1,2]", "line is not a JSON object"},
        {"\"text\"", "line is not a JSON object"},
        {"42", "line is not a JSON object"},
        {"null", "line is not a JSON object"},
        {"{\"ts\":1}", "key field \"id\" is missing"},
        {"{\"id\":\"a\"}", "time field \"ts\" is missing"},
        {"{\"id\":\"a\",\"ts\":1.5}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":1.0}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":1e3}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":\"5\"}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":null}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":true}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":[1]}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":-9223372036854775808}",
         "time field \"ts\" holds a reserved value"},
        {"{\"id\":\"a\",\"ts\":9223372036854775807}",
         "time field \"ts\" holds a reserved value"},
        {"{\"id\":\"a\",\"ts\":9223372036854775808}",
         "time field \"ts\" is an integer outside the 64-bit range"},
        {"{\"id\":\"a\",\"ts\":-99999999999999999999}",
         "time field \"ts\" is an integer outside the 64-bit range"},
        {"{\"id\":\"a\",\"ts\":1e400}", "time field \"ts\" is not an integer"},
        {"{\"id\":\"a\",\"ts\":1,\"x\":1e9999999999999999}",
         "a number has an exponent beyond 10^15"},
        {"{\"id\":\"a\",\"ts\":1,\"x\":99999999999999999999} x",
         "invalid JSON: "},
        {"{\"id\":\"a\",\"ts\":1,\"x\":1e999-5}", "invalid JSON"},
        {"{\"id\":\"a\",\"ts\":1,\"x\":0099999999999999999999}",
         "invalid JSON"},
    };
    weir_harness_t *h = parser("id", NULL, NULL);
    size_t n = sizeof(cases) / sizeof(cases[0]);
    size_t i;

    (void)state;
    for (i = 0; i < n; i++)
        push(h, cases[i].line);
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(n, weir_harness_count(h, WEIR_TAG_ERRORS));
    for (i = 0; i < n; i++)
        assert_error(h, i, cases[i].line, cases[i].reason);
    weir_harness_destroy(h);
}

/* The first problem in key, time, header order is the one reported. */
static void test_json_error_order_and_names(void **state)
{
    weir_harness_t *h = parser("a,b", "t", "v");

    (void)state;
    push(h, "{\"a\":1}");
    push(h, "{\"a\":1,\"b\":2}");
    push(h, "{\"a\":1,\"b\":2,\"t\":3}");
    push(h, "{\"a\":1,\"b\":2,\"t\":3,\"v\":\"7\"}");
    push(h, "{\"a\":1,\"b\":2,\"t\":3,\"v\":7}");
    assert_int_equal(4, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_error(h, 0, "{\"a\":1}", "key field \"b\" is missing");
    assert_error(h, 1, "{\"a\":1,\"b\":2}", "time field \"t\" is missing");
    assert_error(h, 2, "{\"a\":1,\"b\":2,\"t\":3}", "field \"v\" is missing");
    assert_error(h, 3, "{\"a\":1,\"b\":2,\"t\":3,\"v\":\"7\"}",
                 "field \"v\" is not an integer");
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Canonical keys
 * ------------------------------------------------------------------ */

static void test_json_keys_compare_by_value(void **state)
{
    static const struct {
        const char *line;
        const char *key;
    } cases[] = {
        {"{\"a\":1,\"ts\":0}", "[1]"},
        {"{\"a\":1.0,\"ts\":0}", "[1]"},
        {"{\"a\":1e0,\"ts\":0}", "[1]"},
        {"{\"a\":10E-1,\"ts\":0}", "[1]"},
        {"{\"a\":\"1\",\"ts\":0}", "[\"1\"]"},
        {"{\"a\":1e2,\"ts\":0}", "[100]"},
        {"{\"a\":-0.0,\"ts\":0}", "[0]"},
        {"{\"a\":-3.00,\"ts\":0}", "[-3]"},
        {"{\"a\":1.5,\"ts\":0}", "[1.5]"},
        {"{\"a\":\"\\u0041\",\"ts\":0}", "[\"A\"]"},
        {"{\"a\":\"\\u00e9\",\"ts\":0}", "[\"\xc3\xa9\"]"},
        {"{\"a\":\"\\ud83d\\ude00\",\"ts\":0}", "[\"\xf0\x9f\x98\x80\"]"},
        {"{\"a\":\"a\\/b\",\"ts\":0}", "[\"a/b\"]"},
        {"{\"a\":\"x\\u0000y\",\"ts\":0}", "[\"x\\u0000y\"]"},
        {"{\"a\":true,\"ts\":0}", "[true]"},
        {"{\"a\":null,\"ts\":0}", "[null]"},
        {"{\"a\":[ 1 , 2.0 ],\"ts\":0}", "[[1,2]]"},
        {"{\"a\":{},\"ts\":0}", "[{}]"},
        {"{\"a\":1e19,\"ts\":0}", "[10000000000000000000]"},
        {"{\"a\":10000000000000000000,\"ts\":0}", "[10000000000000000000]"},
        {"{\"a\":-1.5E+19,\"ts\":0}", "[-15000000000000000000]"},
        {"{\"a\":123456789012345678901234567890,\"ts\":0}",
         "[123456789012345678901234567890]"},
        {"{\"a\":[-98765432109876543210],\"ts\":0}",
         "[[-98765432109876543210]]"},
        {"{\"a\":1e2000,\"ts\":0}", "[1e2000]"},
        {"{\"a\":100e1998,\"ts\":0}", "[1e2000]"},
        {"{\"a\":0.00012345e2005,\"ts\":0}", "[1.2345e2001]"},
        {"{\"a\":-2.50e1500,\"ts\":0}", "[-2.5e1500]"},
    };
    weir_harness_t *h = parser("a", NULL, NULL);
    size_t n = sizeof(cases) / sizeof(cases[0]);
    size_t i;

    (void)state;
    for (i = 0; i < n; i++)
        push(h, cases[i].line);
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_int_equal(n, weir_harness_count(h, WEIR_TAG_MAIN));
    for (i = 0; i < n; i++)
        assert_main(h, i, cases[i].key, cases[i].line, 0);
    weir_harness_destroy(h);
}

/* Integral values beyond int64 are written out in full (up to 1024
 * digits), whatever their spelling: literal, real, or beyond double. */
static void test_json_big_keys_by_value(void **state)
{
    static const char *const lines[] = {
        "{\"a\":1e300,\"ts\":0}",
        "{\"a\":10e299,\"ts\":0}",
        "{\"a\":1e400,\"ts\":0}",
        "{\"a\":1.0E+400,\"ts\":0}",
    };
    char want300[310];
    char want400[410];
    weir_harness_t *h = parser("a", NULL, NULL);
    weir_buf_t k;
    size_t i;

    (void)state;
    want300[0] = '[';
    want300[1] = '1';
    memset(want300 + 2, '0', 300);
    strcpy(want300 + 302, "]");
    want400[0] = '[';
    want400[1] = '1';
    memset(want400 + 2, '0', 400);
    strcpy(want400 + 402, "]");
    for (i = 0; i < 4; i++)
        push(h, lines[i]);
    assert_int_equal(4, weir_harness_count(h, WEIR_TAG_MAIN));
    for (i = 0; i < 4; i++) {
        k = key_at(h, i);
        assert_true(buf_eq(k, i < 2 ? want300 : want400,
                           strlen(i < 2 ? want300 : want400)));
    }
    weir_harness_destroy(h);
}

/* Many short literals beyond the double range on one line (each marker
 * is longer than the literal it replaces). */
static void test_json_many_big_reals(void **state)
{
    static const char tail[] = ",5e5390]]";
    weir_harness_t *h = parser("id", NULL, NULL);
    char line[8192];
    weir_buf_t k;
    size_t n = 0;
    int i;

    (void)state;
    n += (size_t)sprintf(line + n, "{\"ts\":1,\"id\":[");
    for (i = 0; i < 500; i++)
        n += (size_t)sprintf(line + n, "%s%de%d", i ? "," : "", i % 9 + 1,
                             400 + i * 10);
    sprintf(line + n, "]}");
    push(h, line);
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    k = key_at(h, 0);
    /* 1e400 is written out; 5e5390 has too many digits for that. */
    assert_true(k.len > 410 && memcmp(k.data, "[[1000000000", 12) == 0);
    assert_true(memcmp((const char *)k.data + k.len - strlen(tail), tail,
                       strlen(tail)) == 0);
    assert_null(memmem(k.data, k.len, "weir-", 5));
    weir_harness_destroy(h);
}

static void test_json_multi_field_key_order(void **state)
{
    weir_harness_t *h = parser("b,a", NULL, NULL);

    (void)state;
    push(h, "{\"a\":1,\"b\":2,\"ts\":0}");
    push(h, "{\"ts\":0,\"b\":2,\"a\":1}");
    push(h, "{\"a\":2,\"b\":1,\"ts\":0}");
    push(h, "{\"a\":\"1,2\",\"b\":3,\"ts\":0}");
    assert_int_equal(4, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_main(h, 0, "[2,1]", "{\"a\":1,\"b\":2,\"ts\":0}", 0);
    assert_main(h, 1, "[2,1]", "{\"ts\":0,\"b\":2,\"a\":1}", 0);
    assert_main(h, 2, "[1,2]", "{\"a\":2,\"b\":1,\"ts\":0}", 0);
    assert_main(h, 3, "[3,\"1,2\"]", "{\"a\":\"1,2\",\"b\":3,\"ts\":0}", 0);
    weir_harness_destroy(h);
}

static void test_json_nested_key_values(void **state)
{
    static const char l1[] =
        "{\"id\":{\"y\":[1.0,{\"b\":2,\"a\":1}],\"x\":\"s\"},\"ts\":7}";
    static const char l2[] =
        "{\"ts\":7, \"id\":{ \"x\":\"s\", \"y\":[1,{\"a\":1.0,\"b\":2}]}}";
    static const char l3[] =
        "{\"id\":{\"x\":\"s\",\"y\":[1,{\"a\":1,\"b\":3}]},\"ts\":7}";
    weir_harness_t *h = parser("id", NULL, NULL);

    (void)state;
    push(h, l1);
    push(h, l2);
    push(h, l3);
    assert_int_equal(3, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_main(h, 0, "[{\"x\":\"s\",\"y\":[1,{\"a\":1,\"b\":2}]}]", l1, 7);
    assert_main(h, 1, "[{\"x\":\"s\",\"y\":[1,{\"a\":1,\"b\":2}]}]", l2, 7);
    assert_main(h, 2, "[{\"x\":\"s\",\"y\":[1,{\"a\":1,\"b\":3}]}]", l3, 7);
    weir_harness_destroy(h);
}

static void test_json_content_hash(void **state)
{
    weir_harness_t *h = parser(NULL, NULL, NULL);
    weir_buf_t k0;
    weir_buf_t k;

    (void)state;
    push(h, "{\"a\":1,\"b\":{\"x\":1,\"y\":2},\"ts\":5}");
    push(h, "{ \"ts\":5, \"b\":{\"y\":2.0,\"x\":1}, \"a\":1.0 }");
    push(h, "{\"a\":1,\"b\":{\"x\":1,\"y\":3},\"ts\":5}");
    push(h, "{\"a\":1,\"b\":{\"x\":1,\"y\":2},\"ts\":6}");
    push(h, "{\"a\":\"\\u0031\",\"b\":{\"x\":1,\"y\":2},\"ts\":5}");
    push(h, "{\"a\":1,\"ts\":5.0}");
    push(h, "{\"a\":1,\"n\":99999999999999999999,\"ts\":5}");
    push(h, "{\"n\":99999999999999999999, \"ts\":5,\"a\":1}");
    push(h, "{\"a\":1,\"n\":99999999999999999998,\"ts\":5}");
    push(h, "{\"a\":1,\"n\":\"99999999999999999999\",\"ts\":5}");
    assert_int_equal(9, weir_harness_count(h, WEIR_TAG_MAIN));
    k0 = key_at(h, 0);
    assert_int_equal(16, k0.len);
    k = key_at(h, 1);
    assert_true(buf_eq(k, k0.data, k0.len));
    assert_int_equal(5, weir_record_ts(weir_harness_record(h, NULL, 1)));
    assert_false(buf_eq(key_at(h, 2), k0.data, k0.len));
    assert_false(buf_eq(key_at(h, 3), k0.data, k0.len));
    assert_false(buf_eq(key_at(h, 4), k0.data, k0.len));
    /* Hashing normalises the document; the time field is read first. */
    assert_error(h, 0, "{\"a\":1,\"ts\":5.0}",
                 "time field \"ts\" is not an integer");
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_ERRORS));
    k = key_at(h, 5);
    assert_true(buf_eq(key_at(h, 6), k.data, k.len));
    assert_false(buf_eq(key_at(h, 7), k.data, k.len));
    assert_false(buf_eq(key_at(h, 8), k.data, k.len));
    assert_false(buf_eq(k, k0.data, k0.len));
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Hard input
 * ------------------------------------------------------------------ */

static void test_json_big_integers_elsewhere(void **state)
{
    static const char line[] =
        "{\"id\":\"a\",\"ts\":5,\"big\":123456789012345678901234567890,"
        "\"neg\":-98765432109876543210}";
    /* Other integers on such a line stay exact (2^53 + 1). */
    static const char exact[] =
        "{\"id\":9007199254740993,\"ts\":9007199254740993,"
        "\"b\":[99999999999999999999]}";
    /* Digits inside strings are left alone. */
    static const char strs[] = "{\"id\":\"x\\\"99999999999999999999\",\"ts\":1,"
                               "\"b\":99999999999999999999}";
    /* A real time field is still a real. */
    static const char real_ts[] =
        "{\"id\":1,\"ts\":1.0,\"b\":99999999999999999999}";
    weir_harness_t *h = parser("id", NULL, NULL);

    (void)state;
    push(h, line);
    push(h, "{\"id\":9223372036854775807,\"ts\":1}");
    push(h, "{\"id\":-9223372036854775808,\"ts\":1}");
    push(h, exact);
    push(h, strs);
    push(h, real_ts);
    /* In a key, such integers compare exactly. */
    push(h, "{\"id\":123456789012345678901234567890,\"ts\":3}");
    push(h, "{\"id\":123456789012345678901234567891,\"ts\":4}");
    push(h, "{\"id\":[\"\\u0000weir-\",\"\\u0000\",-99999999999999999999],"
            "\"ts\":5}");
    assert_int_equal(8, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_main(h, 0, "[\"a\"]", line, 5);
    assert_main(h, 1, "[9223372036854775807]",
                "{\"id\":9223372036854775807,\"ts\":1}", 1);
    assert_main(h, 2, "[-9223372036854775808]",
                "{\"id\":-9223372036854775808,\"ts\":1}", 1);
    assert_main(h, 3, "[9007199254740993]", exact, 9007199254740993LL);
    assert_main(h, 4, "[\"x\\\"99999999999999999999\"]", strs, 1);
    assert_main(h, 5, "[123456789012345678901234567890]",
                "{\"id\":123456789012345678901234567890,\"ts\":3}", 3);
    assert_main(h, 6, "[123456789012345678901234567891]",
                "{\"id\":123456789012345678901234567891,\"ts\":4}", 4);
    assert_main(h, 7, "[[\"\\u0000weir-\",\"\\u0000\",-99999999999999999999]]",
                "{\"id\":[\"\\u0000weir-\",\"\\u0000\",-99999999999999999999],"
                "\"ts\":5}",
                5);
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_error(h, 0, real_ts, "time field \"ts\" is not an integer");
    weir_harness_destroy(h);
}

static void test_json_nul_bytes_are_errors(void **state)
{
    /* Cut at the NUL, each of these would be a valid line. */
    static const char l1[] = "{\"id\":\"a\",\"ts\":1}\0junk";
    static const char l2[] = "{\"id\":\"a\0\",\"ts\":1}";
    static const char l3[] = "\0";
    weir_harness_t *h = parser("id", NULL, NULL);

    (void)state;
    push_bytes(h, l1, sizeof(l1) - 1);
    push_bytes(h, l2, sizeof(l2) - 1);
    push_bytes(h, l3, sizeof(l3) - 1);
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(3, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_error_bytes(h, 0, l1, sizeof(l1) - 1, "invalid JSON");
    assert_error_bytes(h, 1, l2, sizeof(l2) - 1, "invalid JSON");
    assert_error_bytes(h, 2, l3, sizeof(l3) - 1, "invalid JSON");
    weir_harness_destroy(h);
}

static void test_json_invalid_utf8_is_error(void **state)
{
    static const char *const lines[] = {
        "{\"id\":\"\xff\",\"ts\":1}",
        "{\"id\":\"\xc0\xaf\",\"ts\":1}",             /* overlong "/" */
        "{\"id\":\"\xed\xa0\x80\",\"ts\":1}",         /* UTF-16 surrogate */
        "{\"id\":\"a\",\"ts\":1,\"x\":\"\xe2\x82\"}", /* cut short */
        "{\"\xfe\":1,\"id\":\"a\",\"ts\":1}",
    };
    weir_harness_t *h = parser("id", NULL, NULL);
    size_t i;

    (void)state;
    for (i = 0; i < 5; i++)
        push(h, lines[i]);
    assert_int_equal(0, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(5, weir_harness_count(h, WEIR_TAG_ERRORS));
    for (i = 0; i < 5; i++)
        assert_error(h, i, lines[i], "invalid JSON");
    weir_harness_destroy(h);
}

static void test_json_ten_megabyte_line(void **state)
{
    const size_t fill = 10u << 20;
    weir_harness_t *h = parser("id", NULL, NULL);
    char *line = malloc(fill + 64);
    size_t n;

    (void)state;
    assert_non_null(line);
    n = (size_t)sprintf(line, "{\"id\":\"big\",\"ts\":3,\"pad\":\"");
    memset(line + n, 'x', fill);
    n += fill;
    n += (size_t)sprintf(line + n, "\"}");
    push_bytes(h, line, n);
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_true(
        buf_eq(weir_record_value(weir_harness_record(h, NULL, 0)), line, n));
    assert_true(buf_eq(key_at(h, 0), "[\"big\"]", 7));
    /* The same line cut short is an error, kept whole. */
    push_bytes(h, line, n - 1);
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_error_bytes(h, 0, line, n - 1, "invalid JSON");
    free(line);
    weir_harness_destroy(h);
}

static void test_json_header_field(void **state)
{
    weir_harness_t *h = parser("id", NULL, "amount");
    const weir_record_t *r;
    weir_buf_t v;

    (void)state;
    push(h, "{\"id\":\"a\",\"ts\":1,\"amount\":-250}");
    push(h, "{\"id\":\"a\",\"ts\":2,\"amount\":250.0}");
    push(h, "{\"id\":\"a\",\"ts\":3}");
    push(h, "{\"id\":\"a\",\"ts\":4,\"amount\":99999999999999999999}");
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    r = weir_harness_record(h, NULL, 0);
    assert_int_equal(WEIR_OK, weir_record_header(r, "h", &v));
    assert_true(buf_eq(v, "-250", 4));
    assert_int_equal(3, weir_harness_count(h, WEIR_TAG_ERRORS));
    assert_error(h, 0, "{\"id\":\"a\",\"ts\":2,\"amount\":250.0}",
                 "field \"amount\" is not an integer");
    assert_error(h, 1, "{\"id\":\"a\",\"ts\":3}",
                 "field \"amount\" is missing");
    assert_error(h, 2,
                 "{\"id\":\"a\",\"ts\":4,\"amount\":99999999999999999999}",
                 "field \"amount\" is an integer outside the 64-bit range");
    weir_harness_destroy(h);
}

static void test_json_time_field_option(void **state)
{
    weir_harness_t *h = parser("id", "event_time", NULL);

    (void)state;
    push(h, "{\"id\":1,\"event_time\":-1700000000000,\"ts\":\"x\"}");
    push(h, "{\"id\":1,\"ts\":5}");
    assert_int_equal(1, weir_harness_count(h, WEIR_TAG_MAIN));
    assert_int_equal(-1700000000000LL,
                     weir_record_ts(weir_harness_record(h, NULL, 0)));
    assert_error(h, 0, "{\"id\":1,\"ts\":5}",
                 "time field \"event_time\" is missing");
    weir_harness_destroy(h);
}

/* ------------------------------------------------------------------ *
 * ## Options and the builder
 * ------------------------------------------------------------------ */

static void test_json_opts_api(void **state)
{
    weir_json_opts_t *o = weir_json_opts_new();
    char err[128];

    (void)state;
    assert_non_null(o);
    assert_int_equal(WEIR_EINVAL, weir_json_opts_check(o, err, sizeof(err)));
    assert_non_null(strstr(err, "key fields"));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_add_keys(o, "a,,b"));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_add_keys(o, "a,"));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_add_keys(o, ""));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_add_keys(o, NULL));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_add_key(o, ""));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_add_key(NULL, "a"));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_set_time_field(o, ""));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_set_content_hash(o, 2));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_set_header_field(o, "", NULL));
    /* Failed calls added nothing. */
    assert_int_equal(WEIR_EINVAL, weir_json_opts_check(o, NULL, 0));
    assert_int_equal(WEIR_OK, weir_json_opts_add_key(o, "a"));
    assert_int_equal(WEIR_OK, weir_json_opts_check(o, err, sizeof(err)));
    assert_int_equal(WEIR_OK, weir_json_opts_set_content_hash(o, 1));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_check(o, err, sizeof(err)));
    assert_non_null(strstr(err, "not both"));
    assert_int_equal(WEIR_OK, weir_json_opts_set_header_field(o, "v", NULL));
    assert_int_equal(WEIR_OK, weir_json_opts_set_header_field(o, NULL, NULL));
    assert_int_equal(WEIR_EINVAL, weir_json_opts_check(NULL, NULL, 0));
    weir_json_opts_destroy(o);
    weir_json_opts_destroy(NULL);
}

/* Invalid options make open fail: no harness. */
static void test_json_invalid_opts_fail_open(void **state)
{
    weir_json_opts_t *o = weir_json_opts_new();

    (void)state;
    assert_non_null(o);
    assert_null(weir_harness_new(&weir_op_json_parse, o));
    weir_json_opts_destroy(o);
}

static int no_records(void *opaque, uint64_t i, weir_buf_t *key,
                      weir_buf_t *value, weir_ts_t *ts)
{
    (void)opaque;
    (void)i;
    (void)key;
    (void)value;
    (void)ts;
    return 0;
}

/* The builder consumes the options and poisons the stream when they are
 * invalid. */
static void test_json_stream_builder(void **state)
{
    char err[256];
    weir_pipeline_t *p = weir_pipeline_new("json", NULL, err, sizeof(err));
    weir_stream_t *s;

    (void)state;
    assert_non_null(p);
    s = weir_source_generator(p, "gen", no_records, NULL);
    s = weir_stream_json_parse(s, weir_json_opts_new());
    assert_false(weir_stream_ok(s));
    assert_int_equal(WEIR_EINVAL, weir_pipeline_error(p));
    assert_non_null(strstr(weir_pipeline_errstr(p), "key fields"));
    /* A poisoned stream still consumes the options. */
    s = weir_stream_json_parse(s, weir_json_opts_new());
    assert_false(weir_stream_ok(s));
    weir_pipeline_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parsed_record),
        cmocka_unit_test(test_json_blank_lines_dropped),
        cmocka_unit_test(test_json_error_reasons),
        cmocka_unit_test(test_json_error_order_and_names),
        cmocka_unit_test(test_json_keys_compare_by_value),
        cmocka_unit_test(test_json_big_keys_by_value),
        cmocka_unit_test(test_json_many_big_reals),
        cmocka_unit_test(test_json_multi_field_key_order),
        cmocka_unit_test(test_json_nested_key_values),
        cmocka_unit_test(test_json_content_hash),
        cmocka_unit_test(test_json_big_integers_elsewhere),
        cmocka_unit_test(test_json_nul_bytes_are_errors),
        cmocka_unit_test(test_json_invalid_utf8_is_error),
        cmocka_unit_test(test_json_ten_megabyte_line),
        cmocka_unit_test(test_json_header_field),
        cmocka_unit_test(test_json_time_field_option),
        cmocka_unit_test(test_json_opts_api),
        cmocka_unit_test(test_json_invalid_opts_fail_open),
        cmocka_unit_test(test_json_stream_builder),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
