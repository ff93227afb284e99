/*
 * test_avro.c - the Avro codec, extract operator and container files.
 *
 * Covers: plain and Confluent-framed decoding, field access by path
 * through nested records and nullable unions, time units, writer ->
 * reader resolution (added fields with defaults, dropped and reordered
 * fields, promotions, enums, unions), JSON encoding, garbage input (a
 * seeded fuzz loop: never a crash, always a clean WEIR_ECODEC), the
 * extract operator in a pipeline with its errors output, the container
 * file source, and the exactly-once container sink across a failure and
 * a restore.
 */
#if defined(WEIR_WITH_AVRO)
/* cmocka needs these headers first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <avro.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/avro.h>
#include <weir/operator.h>

#define V1                                                                     \
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"demo\","          \
    "\"fields\":["                                                             \
    "{\"name\":\"id\",\"type\":\"string\"},"                                   \
    "{\"name\":\"ts\",\"type\":\"long\"},"                                     \
    "{\"name\":\"user\",\"type\":[\"null\",{\"type\":\"record\","              \
    "\"name\":\"User\",\"fields\":[{\"name\":\"uid\",\"type\":\"int\"},"       \
    "{\"name\":\"country\",\"type\":[\"null\",\"string\"],"                    \
    "\"default\":null}]}],\"default\":null},"                                  \
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"Kind\","        \
    "\"symbols\":[\"CLICK\",\"VIEW\"]}},"                                      \
    "{\"name\":\"amount\",\"type\":\"float\"}]}"

/* V2: drops nothing the reader needs, adds `source` with a default,
 * promotes uid int->long and amount float->double, reorders fields, adds
 * an enum symbol, and renames `kind` through an alias. */
#define V2                                                                     \
    "{\"type\":\"record\",\"name\":\"Event\",\"namespace\":\"demo\","          \
    "\"fields\":["                                                             \
    "{\"name\":\"amount\",\"type\":\"double\"},"                               \
    "{\"name\":\"id\",\"type\":\"string\"},"                                   \
    "{\"name\":\"source\",\"type\":\"string\",\"default\":\"web\"},"           \
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"},"   \
    "\"default\":[\"a\",\"b\"]},"                                              \
    "{\"name\":\"user\",\"type\":[\"null\",{\"type\":\"record\","              \
    "\"name\":\"User\",\"fields\":[{\"name\":\"uid\",\"type\":\"long\"},"      \
    "{\"name\":\"country\",\"type\":[\"null\",\"string\"],"                    \
    "\"default\":null},{\"name\":\"vip\",\"type\":\"boolean\","                \
    "\"default\":false}]}],\"default\":null},"                                 \
    "{\"name\":\"type\",\"aliases\":[\"kind\"],\"type\":{\"type\":\"enum\","   \
    "\"name\":\"Kind\",\"symbols\":[\"VIEW\",\"CLICK\",\"BUY\"]}},"            \
    "{\"name\":\"ts\",\"type\":{\"type\":\"long\","                            \
    "\"logicalType\":\"timestamp-micros\"}}]}"

#define EV1                                                                    \
    "{\"id\":\"e-1\",\"ts\":1700000000123,\"user\":{\"demo.User\":"            \
    "{\"uid\":42,\"country\":{\"string\":\"PT\"}}},\"kind\":\"VIEW\","         \
    "\"amount\":2.5}"

static char tmp_root[4096];

static const char *tmp_base(void)
{
    const char *t = getenv("WEIR_TEST_TMP");

    return t != NULL ? t : "/tmp";
}

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmp_root, sizeof(tmp_root), "%s/avro-XXXXXX", tmp_base());
    mkdir(tmp_base(), 0755);
    return mkdtemp(tmp_root) == NULL ? -1 : 0;
}

static int rm_rf(const char *path)
{
    char cmd[8192];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    return system(cmd);
}

static int teardown_tmp(void **state)
{
    (void)state;
    if (getenv("WEIR_TEST_KEEP") == NULL)
        rm_rf(tmp_root);
    return 0;
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* Encodes a JSON document with a fresh codec; returns a malloc'd copy. */
static char *encode(const char *schema, const char *json, int32_t id,
                    size_t *len)
{
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    weir_buf_t out;
    char err[256];
    char *copy;

    fmt = weir_avro_format_new_json(schema, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_schema_id(fmt, id));
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    if (weir_avro_encode_json(c, WEIR_BUF_STR(json), &out) != WEIR_OK)
        fail_msg("encode: %s", weir_avro_codec_errstr(c));
    copy = malloc(out.len);
    memcpy(copy, out.data, out.len);
    *len = out.len;
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
    return copy;
}

static void assert_field(weir_avro_codec_t *c, const char *path,
                         const char *expect)
{
    weir_buf_t b;

    assert_int_equal(WEIR_OK, weir_avro_field(c, path, &b));
    assert_int_equal(strlen(expect), b.len);
    assert_memory_equal(expect, b.data, b.len);
}

/* ------------------------------------------------------------------ */

static void test_avro_decode_fields(void **state)
{
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    weir_buf_t b;
    weir_ts_t ts;
    int64_t n;
    char err[256];
    char *data;
    size_t len;

    (void)state;
    data = encode(V1, EV1, -1, &len);
    fmt = weir_avro_format_new_json(V1, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_key(fmt, "id,user.uid"));
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "ts"));
    assert_int_equal(WEIR_EINVAL, weir_avro_format_set_key(fmt, "nope"));
    assert_int_equal(WEIR_EINVAL, weir_avro_format_set_time(fmt, "user.x"));
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);

    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(data, len)));
    assert_int_equal(-1, weir_avro_codec_schema_id(c));
    assert_field(c, "id", "e-1");
    assert_field(c, "user.uid", "42");
    assert_field(c, "user.country", "PT");
    assert_field(c, "kind", "VIEW");
    assert_field(c, "amount", "2.5");
    assert_int_equal(WEIR_ENOENT, weir_avro_field(c, "user.nope", &b));
    assert_int_equal(WEIR_ENOTSUP, weir_avro_field(c, "user", &b));
    assert_int_equal(WEIR_OK, weir_avro_field_i64(c, "user.uid", &n));
    assert_int_equal(42, n);
    assert_int_equal(WEIR_ERANGE, weir_avro_field_i64(c, "id", &n));
    assert_int_equal(WEIR_OK, weir_avro_key(c, &b));
    assert_int_equal(6, b.len);
    assert_memory_equal("e-1\x1f"
                        "42",
                        b.data, 6);
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(1700000000123LL, ts);
    assert_int_equal(WEIR_OK, weir_avro_to_json(c, &b));
    assert_non_null(memmem(b.data, b.len, "\"e-1\"", 5));

    /* A null union: the nested path is absent, not an error of decode. */
    free(data);
    data = encode(V1,
                  "{\"id\":\"e-2\",\"ts\":-5,\"user\":null,"
                  "\"kind\":\"CLICK\",\"amount\":1}",
                  -1, &len);
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(data, len)));
    assert_int_equal(WEIR_ENOENT, weir_avro_field(c, "user.uid", &b));
    assert_int_equal(WEIR_ENOENT, weir_avro_key(c, &b));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "null"));
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(-5, ts);

    free(data);
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
}

static void test_avro_time_units(void **state)
{
    const char *schema = "{\"type\":\"record\",\"name\":\"T\",\"fields\":["
                         "{\"name\":\"us\",\"type\":{\"type\":\"long\","
                         "\"logicalType\":\"timestamp-micros\"}},"
                         "{\"name\":\"s\",\"type\":[\"null\",\"string\"]},"
                         "{\"name\":\"d\",\"type\":\"double\"}]}";
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    weir_ts_t ts;
    char err[256];
    char *data;
    size_t len;

    (void)state;
    data = encode(schema,
                  "{\"us\":-1500,\"s\":{\"string\":"
                  "\"2024-05-01T12:00:00.250+02:00\"},\"d\":12.9}",
                  -1, &len);
    fmt = weir_avro_format_new_json(schema, NULL, err, sizeof(err));
    assert_non_null(fmt);
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(data, len)));

    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "us"));
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(-2, ts); /* floor(-1.5 ms) */
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "s"));
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(1714557600250LL, ts);
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "d"));
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(12, ts);

    free(data);
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
}

static void test_avro_confluent_resolution(void **state)
{
    char dir[4200];
    char path[4300];
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    weir_buf_t b;
    weir_ts_t ts;
    char err[256];
    char *v1;
    char *v2;
    size_t len1;
    size_t len2;
    unsigned char bad[64];

    (void)state;
    snprintf(dir, sizeof(dir), "%s/schemas", tmp_root);
    assert_int_equal(0, mkdir(dir, 0755));
    snprintf(path, sizeof(path), "%s/7.avsc", dir);
    write_text(path, V1);
    snprintf(path, sizeof(path), "%s/8.avsc", dir);
    write_text(path, V2);

    v1 = encode(V1, EV1, 7, &len1);
    assert_int_equal(0, v1[0]);
    assert_int_equal(7, v1[4]);
    v2 = encode(V2,
                "{\"amount\":9.75,\"id\":\"e-9\",\"user\":{\"demo.User\":"
                "{\"uid\":3}},\"type\":\"BUY\",\"ts\":1700000000999000}",
                8, &len2);

    /* Reader V2: V1 data gets defaults, promotions and the alias. */
    snprintf(path, sizeof(path), "%s/8.avsc", dir);
    fmt = weir_avro_format_new(path, dir, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "ts"));
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(v1, len1)));
    assert_int_equal(7, weir_avro_codec_schema_id(c));
    assert_field(c, "source", "web");
    assert_field(c, "user.uid", "42");
    assert_field(c, "user.vip", "false");
    assert_field(c, "user.country", "PT");
    assert_field(c, "type", "VIEW");
    assert_field(c, "amount", "2.5");
    assert_int_equal(WEIR_OK, weir_avro_to_json(c, &b));
    assert_non_null(memmem(b.data, b.len, "[\"a\", \"b\"]", 10));
    /* The reader says micros: V1's ms value is now read as micros. */
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(1700000000LL, ts);
    /* V2 data read as itself. */
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(v2, len2)));
    assert_int_equal(8, weir_avro_codec_schema_id(c));
    assert_field(c, "type", "BUY");
    assert_int_equal(WEIR_OK, weir_avro_time(c, &ts));
    assert_int_equal(1700000000999LL, ts);
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);

    /* Reader V1 on V2 data: long does not narrow to int, and V1's `kind`
     * (an alias in the writer only) has no default -> clean errors. */
    snprintf(path, sizeof(path), "%s/7.avsc", dir);
    fmt = weir_avro_format_new(path, dir, err, sizeof(err));
    assert_non_null(fmt);
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(v2, len2)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "long"));
    free(v2);
    v2 = encode(V2,
                "{\"amount\":1,\"id\":\"e-8\",\"user\":null,"
                "\"type\":\"BUY\",\"ts\":1}",
                8, &len2);
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(v2, len2)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "kind"));

    /* Framing errors. */
    memset(bad, 0, sizeof(bad));
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(bad, 3)));
    bad[0] = 1;
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(bad, 8)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "magic"));
    bad[0] = 0;
    bad[4] = 99;
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(bad, 8)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "99"));
    /* Trailing bytes after a valid datum. */
    memcpy(bad, v1, len1);
    bad[len1] = 0;
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(bad, len1 + 1)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "trailing"));
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);

    /* Without a reader schema each value is read with its writer's. */
    fmt = weir_avro_format_new(NULL, dir, err, sizeof(err));
    assert_non_null(fmt);
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(v1, len1)));
    assert_field(c, "kind", "VIEW");
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(v2, len2)));
    assert_field(c, "type", "BUY");
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);

    free(v1);
    free(v2);
}

static void test_avro_missing_default(void **state)
{
    const char *w = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                    "{\"name\":\"a\",\"type\":\"int\"}]}";
    const char *r = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
                    "{\"name\":\"a\",\"type\":\"long\"},"
                    "{\"name\":\"b\",\"type\":\"int\"}]}";
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    char err[256];
    char *data;
    size_t len;

    (void)state;
    data = encode(w, "{\"a\":1}", -1, &len);
    fmt = weir_avro_format_new_json(r, NULL, err, sizeof(err));
    assert_non_null(fmt);
    c = weir_avro_codec_new_writer(fmt, w, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(data, len)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "no default"));
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
    free(data);

    /* An enum symbol unknown to the reader. */
    data = encode("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
                  "[\"A\",\"B\",\"C\"]}",
                  "\"C\"", -1, &len);
    fmt = weir_avro_format_new_json("{\"type\":\"enum\",\"name\":\"E\","
                                    "\"symbols\":[\"B\",\"A\"]}",
                                    NULL, err, sizeof(err));
    assert_non_null(fmt);
    c = weir_avro_codec_new_writer(fmt,
                                   "{\"type\":\"enum\",\"name\":\"E\","
                                   "\"symbols\":[\"A\",\"B\",\"C\"]}",
                                   err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(data, len)));
    assert_non_null(strstr(weir_avro_codec_errstr(c), "symbol C"));
    free(data);
    data = encode("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":"
                  "[\"A\",\"B\",\"C\"]}",
                  "\"A\"", -1, &len);
    assert_int_equal(WEIR_OK, weir_avro_decode(c, WEIR_BUF(data, len)));
    free(data);
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);

    assert_null(weir_avro_format_new_json("{\"type\":\"nope\"}", NULL, err,
                                          sizeof(err)));
    assert_null(weir_avro_format_new(NULL, NULL, err, sizeof(err)));
    assert_null(
        weir_avro_format_new("/nonexistent.avsc", NULL, err, sizeof(err)));
}

static void test_avro_encode_json_errors(void **state)
{
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    weir_buf_t out;
    char err[256];

    (void)state;
    fmt = weir_avro_format_new_json(V1, NULL, err, sizeof(err));
    assert_non_null(fmt);
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_ECODEC, weir_avro_encode_json(
                                      c, WEIR_BUF_STR("{\"id\":1}"), &out));
    assert_int_equal(WEIR_ECODEC,
                     weir_avro_encode_json(c, WEIR_BUF_STR("not json"), &out));
    /* Missing `user` takes its default (null); plain union values work. */
    assert_int_equal(
        WEIR_OK,
        weir_avro_encode_json(c,
                              WEIR_BUF_STR("{\"id\":\"x\",\"ts\":1,\"kind\":"
                                           "\"CLICK\",\"amount\":0.5}"),
                              &out));
    assert_int_equal(WEIR_OK, weir_avro_decode(c, out));
    assert_field(c, "id", "x");
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
}

/* Garbage never crashes: truncations, bit flips and random bytes. */
static void test_avro_garbage(void **state)
{
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    char err[256];
    char *data;
    unsigned char buf[256];
    size_t len;
    size_t i;
    unsigned seed = 20261122;
    int ok = 0;
    int bad = 0;
    int round;
    int rc;
    /* A string length of 2^62 must not reach Avro-C's allocator. */
    static const unsigned char huge[] = {0x80, 0x80, 0x80, 0x80, 0x80,
                                         0x80, 0x80, 0x80, 0x7f};

    (void)state;
    print_message("seed %u\n", seed);
    srand(seed);
    data = encode(V1, EV1, -1, &len);
    assert_true(len < sizeof(buf));
    fmt = weir_avro_format_new_json(V1, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_key(fmt, "id"));
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(huge, 9)));
    assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF("", 0)));
    for (i = 0; i < len; i++)
        assert_int_equal(WEIR_ECODEC, weir_avro_decode(c, WEIR_BUF(data, i)));
    for (round = 0; round < 20000; round++) {
        weir_buf_t key;

        memcpy(buf, data, len);
        if (round % 2 == 0) {
            buf[rand() % len] ^= (unsigned char)(1u << (rand() % 8));
            buf[rand() % len] = (unsigned char)rand();
            rc = weir_avro_decode(c, WEIR_BUF(buf, len));
        } else {
            size_t n = (size_t)(rand() % (int)sizeof(buf));

            for (i = 0; i < n; i++)
                buf[i] = (unsigned char)rand();
            rc = weir_avro_decode(c, WEIR_BUF(buf, n));
        }
        assert_true(rc == WEIR_OK || rc == WEIR_ECODEC);
        if (rc == WEIR_OK) {
            ok++;
            rc = weir_avro_key(c, &key);
            assert_int_equal(WEIR_OK, rc);
        } else {
            bad++;
            assert_true(strlen(weir_avro_codec_errstr(c)) > 0);
        }
    }
    print_message("garbage: %d decoded, %d rejected\n", ok, bad);
    assert_true(bad > 0);
    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
    free(data);
}

static void test_avro_extract_record(void **state)
{
    weir_avro_format_t *fmt;
    weir_avro_codec_t *c;
    weir_record_t *rec;
    weir_buf_t key;
    char err[256];
    char *data;
    size_t len;

    (void)state;
    data = encode(V1, EV1, -1, &len);
    fmt = weir_avro_format_new_json(V1, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_key(fmt, "user.uid"));
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "ts"));
    c = weir_avro_codec_new(fmt, err, sizeof(err));
    assert_non_null(c);
    rec = weir_record_new(NULL, WEIR_BUF_STR("k"), WEIR_BUF(data, len),
                          WEIR_TS_MIN, WEIR_COPY);
    assert_non_null(rec);
    assert_int_equal(WEIR_OK, weir_avro_extract(c, rec, err, sizeof(err)));
    assert_int_equal(1700000000123LL, weir_record_ts(rec));
    assert_int_equal(WEIR_OK, weir_avro_key_fn(rec, &key, NULL));
    assert_int_equal(2, key.len);
    assert_memory_equal("42", key.data, 2);
    key = weir_record_key(rec);
    assert_memory_equal("k", key.data, 1); /* own key untouched */
    weir_record_destroy(rec);

    rec =
        weir_record_new(NULL, WEIR_BUF_NULL, WEIR_BUF("\x02", 1), 7, WEIR_COPY);
    assert_int_equal(WEIR_ECODEC, weir_avro_extract(c, rec, err, sizeof(err)));
    assert_non_null(strstr(err, "avro"));
    assert_int_equal(7, weir_record_ts(rec));
    assert_int_equal(WEIR_ENOENT, weir_avro_key_fn(rec, &key, NULL));
    weir_record_destroy(rec);

    weir_avro_codec_destroy(c);
    weir_avro_format_destroy(fmt);
    free(data);
}

/* ------------------------------------------------------------------ *
 * Pipelines
 * ------------------------------------------------------------------ */

#define NEVENTS 500

struct gen {
    char value[NEVENTS + 10][128];
    size_t len[NEVENTS + 10];
    int n;
    int fail_at; /* generator fails at this index (-1: never) */
};

static int gen_fn(void *opaque, uint64_t i, weir_buf_t *key, weir_buf_t *value,
                  weir_ts_t *ts)
{
    struct gen *g = opaque;

    if ((int)i == g->fail_at)
        return WEIR_EIO;
    if (i >= (uint64_t)g->n)
        return 0;
    *key = WEIR_BUF_NULL;
    *value = WEIR_BUF(g->value[i], g->len[i]);
    *ts = WEIR_TS_MIN;
    return 1;
}

struct collected {
    int is_errors; /* collects the errors output */
    int main;
    int errors;
    int64_t ts_sum;
    char last_key[64];
};

static int collect_fn(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct collected *col = opaque;
    weir_buf_t k;
    weir_buf_t why;

    (void)tag;
    if (col->is_errors) {
        assert_int_equal(WEIR_OK,
                         weir_record_header(rec, WEIR_HDR_ERROR, &why));
        assert_true(why.len > 0);
        if (col->errors++ == 0)
            print_message("first error: %.*s\n", (int)why.len,
                          (const char *)why.data);
        return WEIR_OK;
    }
    col->main++;
    if (weir_record_ts(rec) == WEIR_TS_MIN)
        fail_msg("main record without a timestamp, offset %lld",
                 (long long)weir_record_offset(rec));
    col->ts_sum += weir_record_ts(rec);
    if (weir_avro_key_fn(rec, &k, NULL) == WEIR_OK && k.len < 64) {
        memcpy(col->last_key, k.data, k.len);
        col->last_key[k.len] = '\0';
    }
    return WEIR_OK;
}

static void fill_gen(struct gen *g, int n, int corrupt_every)
{
    char json[256];
    char *data;
    size_t len;
    int i;

    g->n = n;
    g->fail_at = -1;
    for (i = 0; i < n; i++) {
        snprintf(json, sizeof(json),
                 "{\"id\":\"e-%d\",\"ts\":%d,\"user\":{\"demo.User\":"
                 "{\"uid\":%d}},\"kind\":\"CLICK\",\"amount\":1}",
                 i, 1000 + i, i % 10);
        data = encode(V1, json, -1, &len);
        assert_true(len <= sizeof(g->value[i]));
        memcpy(g->value[i], data, len);
        g->len[i] = len;
        free(data);
        if (corrupt_every > 0 && i % corrupt_every == 3)
            g->len[i] = 2; /* truncated */
    }
}

static void test_avro_extract_pipeline(void **state)
{
    static struct gen g;
    struct collected col;
    struct collected errs = {.is_errors = 1};
    weir_avro_format_t *fmt;
    weir_pipeline_t *p;
    weir_stream_t *s;
    weir_stream_t *x;
    char err[256];
    int64_t expect_ts = 0;
    int i;

    (void)state;
    memset(&col, 0, sizeof(col));
    fill_gen(&g, 100, 10);
    fmt = weir_avro_format_new_json(V1, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_key(fmt, "id"));
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "ts"));
    p = weir_pipeline_new("avro-extract", NULL, err, sizeof(err));
    assert_non_null(p);
    s = weir_source_generator(p, "gen", gen_fn, &g);
    x = weir_stream_avro_extract(s, fmt);
    assert_int_equal(WEIR_OK, weir_stream_collect(x, collect_fn, &col));
    assert_int_equal(WEIR_OK, weir_stream_collect(
                                  weir_stream_side_output(x, WEIR_TAG_ERRORS),
                                  collect_fn, &errs));
    assert_int_equal(WEIR_OK, weir_pipeline_run(p));
    weir_pipeline_destroy(p);
    for (i = 0; i < 100; i++)
        if (i % 10 != 3)
            expect_ts += 1000 + i;
    assert_int_equal(90, col.main);
    assert_int_equal(10, errs.errors);
    assert_int_equal(expect_ts, col.ts_sum);
    assert_string_equal("e-99", col.last_key);
    weir_avro_format_destroy(fmt);
}

/* Writes a container file of V1 with n events through Avro-C. */
static void write_container(const char *path, int n)
{
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t v;
    avro_value_t f;
    avro_value_t b;
    avro_file_writer_t w;
    char id[32];
    int i;

    assert_int_equal(0, avro_schema_from_json_length(V1, strlen(V1), &schema));
    iface = avro_generic_class_from_schema(schema);
    assert_int_equal(0, avro_generic_value_new(iface, &v));
    assert_int_equal(0, avro_file_writer_create(path, schema, &w));
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "c-%d", i);
        avro_value_get_by_name(&v, "id", &f, NULL);
        avro_value_set_string(&f, id);
        avro_value_get_by_name(&v, "ts", &f, NULL);
        avro_value_set_long(&f, 5000 + i);
        avro_value_get_by_name(&v, "user", &f, NULL);
        avro_value_set_branch(&f, 0, &b);
        avro_value_set_null(&b);
        avro_value_get_by_name(&v, "kind", &f, NULL);
        avro_value_set_enum(&f, i % 2);
        avro_value_get_by_name(&v, "amount", &f, NULL);
        avro_value_set_float(&f, (float)i);
        assert_int_equal(0, avro_file_writer_append_value(w, &v));
    }
    assert_int_equal(0, avro_file_writer_close(w));
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

/* Reads the ids of a V1 container file; returns the count. */
static int read_container_ids(const char *path, char ids[][32], int max)
{
    avro_file_reader_t r;
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t v;
    avro_value_t f;
    const char *s;
    size_t size;
    int n = 0;

    assert_int_equal(0, avro_file_reader(path, &r));
    schema = avro_file_reader_get_writer_schema(r);
    iface = avro_generic_class_from_schema(schema);
    assert_int_equal(0, avro_generic_value_new(iface, &v));
    while (avro_file_reader_read_value(r, &v) == 0) {
        assert_true(n < max);
        avro_value_get_by_name(&v, "id", &f, NULL);
        avro_value_get_string(&f, &s, &size);
        snprintf(ids[n++], 32, "%s", s);
    }
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    avro_file_reader_close(r);
    return n;
}

static void test_avro_container_source(void **state)
{
    struct collected col;
    struct collected errs = {.is_errors = 1};
    weir_avro_format_t *fmt;
    weir_pipeline_t *p;
    weir_stream_t *s;
    int64_t expect_ts = 0;
    int i;
    char path[4200];
    char err[256];

    (void)state;
    memset(&col, 0, sizeof(col));
    snprintf(path, sizeof(path), "%s/in.avro", tmp_root);
    write_container(path, 2500);
    /* Read with V2 as the reader schema: resolution applies. */
    fmt = weir_avro_format_new_json(V2, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_key(fmt, "id,source"));
    assert_int_equal(WEIR_OK, weir_avro_format_set_time(fmt, "ts"));
    p = weir_pipeline_new("avro-source", NULL, err, sizeof(err));
    assert_non_null(p);
    s = weir_avro_source_file(p, path, fmt);
    assert_int_equal(WEIR_OK, weir_stream_collect(s, collect_fn, &col));
    assert_int_equal(WEIR_OK, weir_stream_collect(
                                  weir_stream_side_output(s, WEIR_TAG_ERRORS),
                                  collect_fn, &errs));
    assert_int_equal(WEIR_OK, weir_pipeline_run(p));
    weir_pipeline_destroy(p);
    assert_int_equal(0, errs.errors);
    assert_int_equal(2500, col.main);
    assert_string_equal("c-2499\x1fweb", col.last_key);
    /* V2 reads ts as micros: 5000..7499 us -> 5, 6 or 7 ms. */
    for (i = 0; i < 2500; i++)
        expect_ts += (5000 + i) / 1000;
    assert_int_equal(expect_ts, col.ts_sum);
    weir_avro_format_destroy(fmt);
}

/* Fails the task once, when the record with this id passes. */
struct failer {
    const char *id;
    int armed;
};

static int fail_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    const struct failer *f = weir_ctx_opaque(ctx);
    weir_buf_t k;

    (void)st;
    if (f->armed && weir_avro_key_fn(in, &k, NULL) == WEIR_OK &&
        k.len == strlen(f->id) && memcmp(k.data, f->id, k.len) == 0)
        return weir_ctx_error(ctx, WEIR_EIO, "injected failure");
    return weir_forward(ctx, in);
}

static const weir_operator_def_t failer_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "failer",
    .process = fail_process,
};

static int run_copy(const char *in, const char *out, const char *ckpt,
                    const weir_avro_format_t *fmt, struct failer *f)
{
    weir_conf_t *conf;
    weir_pipeline_t *p;
    weir_stream_t *s;
    char err[256];
    int rc;

    conf = weir_conf_new();
    assert_non_null(conf);
    if (ckpt != NULL) {
        assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.dir", ckpt,
                                                err, sizeof(err)));
        assert_int_equal(WEIR_OK,
                         weir_conf_set(conf, "checkpoint.every.records", "300",
                                       err, sizeof(err)));
        assert_int_equal(WEIR_OK, weir_conf_set(conf, "checkpoint.fsync",
                                                "false", err, sizeof(err)));
    }
    p = weir_pipeline_new("avro-copy", conf, err, sizeof(err));
    assert_non_null(p);
    s = weir_avro_source_file(p, in, fmt);
    s = weir_stream_apply(s, &failer_def, f);
    assert_int_equal(WEIR_OK, weir_avro_sink_file(s, out, fmt));
    rc = weir_pipeline_run(p);
    weir_pipeline_destroy(p);
    return rc;
}

static void test_avro_container_sink_exactly_once(void **state)
{
    static char ids[3000][32];
    weir_avro_format_t *fmt;
    struct failer f = {.id = "c-1700", .armed = 1};
    struct failer off = {.id = "", .armed = 0};
    char in[4200];
    char out[4200];
    char ckpt[4200];
    char err[256];
    char want[32];
    FILE *fp;
    int n;
    int i;

    (void)state;
    snprintf(in, sizeof(in), "%s/src.avro", tmp_root);
    snprintf(out, sizeof(out), "%s/out.avro", tmp_root);
    snprintf(ckpt, sizeof(ckpt), "%s/ckpt", tmp_root);
    write_container(in, 2000);
    fmt = weir_avro_format_new_json(V1, NULL, err, sizeof(err));
    assert_non_null(fmt);
    assert_int_equal(WEIR_OK, weir_avro_format_set_key(fmt, "id"));

    /* Direct mode. */
    assert_int_equal(WEIR_OK, run_copy(in, out, NULL, fmt, &off));
    n = read_container_ids(out, ids, 3000);
    assert_int_equal(2000, n);

    /* Exactly once: fail after some checkpoints, then recover. */
    assert_int_equal(WEIR_EIO, run_copy(in, out, ckpt, fmt, &f));
    n = read_container_ids(out, ids, 3000);
    assert_true(n < 1700);
    /* Only what completed checkpoints cover: a prefix of the input, cut
     * where a barrier passed (between two polls of the source). */
    for (i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "c-%d", i);
        assert_string_equal(want, ids[i]);
    }
    print_message("after the failure the file holds %d datums\n", n);
    f.armed = 0;
    assert_int_equal(WEIR_OK, run_copy(in, out, ckpt, fmt, &f));
    n = read_container_ids(out, ids, 3000);
    assert_int_equal(2000, n);
    for (i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "c-%d", i);
        assert_string_equal(want, ids[i]);
    }

    /* A torn append after the last checkpoint (a crash while publishing
     * a checkpoint that never completed): restoring truncates it away. */
    fp = fopen(out, "ab");
    assert_non_null(fp);
    fputs("torn block that no checkpoint published", fp);
    fclose(fp);
    assert_int_equal(WEIR_OK, run_copy(in, out, ckpt, fmt, &f));
    n = read_container_ids(out, ids, 3000);
    assert_int_equal(2000, n);
    assert_string_equal("c-1999", ids[1999]);
    weir_avro_format_destroy(fmt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avro_decode_fields),
        cmocka_unit_test(test_avro_time_units),
        cmocka_unit_test_setup_teardown(test_avro_confluent_resolution,
                                        setup_tmp, teardown_tmp),
        cmocka_unit_test(test_avro_missing_default),
        cmocka_unit_test(test_avro_encode_json_errors),
        cmocka_unit_test(test_avro_garbage),
        cmocka_unit_test(test_avro_extract_record),
        cmocka_unit_test(test_avro_extract_pipeline),
        cmocka_unit_test_setup_teardown(test_avro_container_source, setup_tmp,
                                        teardown_tmp),
        cmocka_unit_test_setup_teardown(test_avro_container_sink_exactly_once,
                                        setup_tmp, teardown_tmp),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else /* WEIR_WITH_AVRO */

#include <stdio.h>

int main(void)
{
    printf("test_avro.c: built without Avro, nothing to run\n");
    return 0;
}

#endif
