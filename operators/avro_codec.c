/*
 * avro_codec.c - Avro formats and codecs: decoding with schema resolution,
 * the Confluent wire format, field access by path, JSON -> Avro encoding.
 *
 * How it works
 *
 *   A format keeps the reader schema as JSON text plus the settings (schema
 *   directory, key and time paths, schema id for encoding). It is plain
 *   data, so any number of threads can build codecs from it.
 *
 *   A codec parses its own copy of the reader schema with Avro-C (values
 *   and schemas are reference counted and are not shared across threads)
 *   and with jansson, from which it collects per-field metadata Avro-C
 *   drops: defaults, aliases and timestamp logical types. Writer schemas of
 *   Confluent ids are loaded from "<dir>/<id>.avsc" on first use and cached
 *   in the codec with a generic value each.
 *
 *   Decoding a value:
 *     1. strip the framing (magic byte 0 + big-endian id) when configured;
 *     2. validate the bytes against the writer schema with a small scanner
 *        (skip_datum) that checks every length, index and varint against
 *        the bytes left. Avro-C allocates whatever a length prefix claims
 *        before reading it, so garbage must never reach it;
 *     3. read into the writer's generic value with avro_value_read;
 *     4. if the writer schema differs from the reader's, copy the value
 *        into the reader's generic value with resolve(): fields by name
 *        (or alias), defaults for reader-only fields, promotions, enums by
 *        symbol, unions by first matching branch. Avro-C 1.11's resolvers
 *        fail or crash when the reader adds a field with a default, which
 *        is the common schema-evolution case, hence our own.
 *   Field queries then walk the current value by path.
 *
 *   Encoding from JSON uses the same "set a value from JSON" function that
 *   fills defaults (from_json), so defaults and documents are read alike.
 *
 * Invariants
 *   - c->cur points at a complete value of c->cur_meta's schema, or is
 *     NULL; a failed decode leaves it NULL.
 *   - Nothing read from input is trusted: every length is checked before
 *     Avro-C sees it; recursion depth is bounded.
 *   - Buffers returned to callers live in the codec and are replaced by the
 *     next call.
 */
#include <avro.h>
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>
#include <weir/avro.h>
#include <weir/operator.h>

#define MAX_DEPTH       64    /* nesting limit for schemas and values */
#define MAX_ZERO_WIDTH  65536 /* items per block when an item has no bytes */
#define MAX_SCHEMA_FILE (4u << 20)

/* ------------------------------------------------------------------ *
 * ## Small helpers
 * ------------------------------------------------------------------ */

static char *dup_str(const char *s)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s) + 1;
    d = weir_malloc(n);
    if (d != NULL)
        memcpy(d, s, n);
    return d;
}

static void set_err(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr == NULL || errstr_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* A growable byte buffer owned by a codec. */
struct bytes {
    char *data;
    size_t len;
    size_t cap;
};

static int bytes_reserve(struct bytes *b, size_t need)
{
    size_t cap;
    char *p;

    if (need <= b->cap)
        return WEIR_OK;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = weir_realloc(b->data, cap);
    if (p == NULL)
        return WEIR_ENOMEM;
    b->data = p;
    b->cap = cap;
    return WEIR_OK;
}

static int bytes_append(struct bytes *b, const void *data, size_t len)
{
    if (bytes_reserve(b, b->len + len) != WEIR_OK)
        return WEIR_ENOMEM;
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    return WEIR_OK;
}

static char *read_file(const char *path, size_t *len, char *errstr,
                       size_t errstr_size)
{
    FILE *fp;
    char *buf;
    long n;

    fp = fopen(path, "rb");
    if (fp == NULL) {
        set_err(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
        (unsigned long)n > MAX_SCHEMA_FILE || fseek(fp, 0, SEEK_SET) != 0) {
        set_err(errstr, errstr_size, "%s: unreadable or too large", path);
        fclose(fp);
        return NULL;
    }
    buf = weir_malloc((size_t)n + 1);
    if (buf == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        fclose(fp);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        set_err(errstr, errstr_size, "%s: read error", path);
        weir_free(buf);
        fclose(fp);
        return NULL;
    }
    fclose(fp);
    buf[n] = '\0';
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

/* ------------------------------------------------------------------ *
 * ## Paths: "a.b.c" split once into segments
 * ------------------------------------------------------------------ */

struct path {
    char **seg; /* segment names                 */
    size_t n;   /* number of segments            */
    char *text; /* the path as given (messages)  */
};

static void path_free(struct path *p)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        weir_free(p->seg[i]);
    weir_free(p->seg);
    weir_free(p->text);
    memset(p, 0, sizeof(*p));
}

static int path_parse(struct path *p, const char *text, size_t len)
{
    size_t i;
    size_t start;
    size_t k;

    memset(p, 0, sizeof(*p));
    if (len == 0)
        return WEIR_EINVAL;
    p->text = weir_malloc(len + 1);
    if (p->text == NULL)
        return WEIR_ENOMEM;
    memcpy(p->text, text, len);
    p->text[len] = '\0';
    p->n = 1;
    for (i = 0; i < len; i++)
        if (text[i] == '.')
            p->n++;
    p->seg = weir_calloc(p->n, sizeof(*p->seg));
    if (p->seg == NULL) {
        p->n = 0;
        path_free(p);
        return WEIR_ENOMEM;
    }
    start = 0;
    k = 0;
    for (i = 0; i <= len; i++) {
        if (i < len && text[i] != '.')
            continue;
        if (i == start) {
            path_free(p);
            return WEIR_EINVAL;
        }
        p->seg[k] = weir_malloc(i - start + 1);
        if (p->seg[k] == NULL) {
            path_free(p);
            return WEIR_ENOMEM;
        }
        memcpy(p->seg[k], text + start, i - start);
        p->seg[k][i - start] = '\0';
        k++;
        start = i + 1;
    }
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Formats
 * ------------------------------------------------------------------ */

struct weir_avro_format_s {
    char *schema_json; /* reader schema text, or NULL          */
    char *schema_dir;  /* Confluent schema directory, or NULL  */
    struct path *keys; /* key field paths                      */
    size_t nkeys;
    struct path time;  /* time field path (n == 0: none)       */
    int32_t schema_id; /* framing id for encoding, -1: none    */
};

/* Walks a parsed schema along a path, through unions' non-null branches.
 * Returns 1 when every segment names a field of a record on the way. */
static int schema_has_path(avro_schema_t s, const struct path *p, size_t i,
                           int depth)
{
    size_t b;
    int idx;
    avro_schema_t f;

    if (depth > MAX_DEPTH)
        return 0;
    if (is_avro_link(s))
        return schema_has_path(avro_schema_link_target(s), p, i, depth + 1);
    if (i == p->n)
        return 1;
    if (is_avro_union(s)) {
        for (b = 0; b < avro_schema_union_size(s); b++)
            if (schema_has_path(avro_schema_union_branch(s, (int)b), p, i,
                                depth + 1))
                return 1;
        return 0;
    }
    if (!is_avro_record(s))
        return 0;
    /* avro_schema_record_field_get() crashes on unknown names. */
    idx = avro_schema_record_field_get_index(s, p->seg[i]);
    if (idx < 0)
        return 0;
    f = avro_schema_record_field_get_by_index(s, idx);
    return f != NULL && schema_has_path(f, p, i + 1, depth + 1);
}

static int format_check_path(const weir_avro_format_t *fmt,
                             const struct path *p)
{
    avro_schema_t s;
    int ok;

    if (fmt->schema_json == NULL)
        return WEIR_OK;
    if (avro_schema_from_json_length(fmt->schema_json, strlen(fmt->schema_json),
                                     &s) != 0)
        return WEIR_EINVAL;
    ok = schema_has_path(s, p, 0, 0);
    avro_schema_decref(s);
    return ok ? WEIR_OK : WEIR_EINVAL;
}

WEIR_EXTERN weir_avro_format_t *
weir_avro_format_new_json(const char *schema_json, const char *schema_dir,
                          char *errstr, size_t errstr_size)
{
    weir_avro_format_t *fmt;
    avro_schema_t s;

    if (schema_json == NULL && schema_dir == NULL) {
        set_err(errstr, errstr_size,
                "avro: a reader schema or a schema directory is needed");
        return NULL;
    }
    if (schema_json != NULL && avro_schema_from_json_length(
                                   schema_json, strlen(schema_json), &s) != 0) {
        set_err(errstr, errstr_size, "avro: invalid schema: %s",
                avro_strerror());
        return NULL;
    }
    if (schema_json != NULL)
        avro_schema_decref(s);
    fmt = weir_calloc(1, sizeof(*fmt));
    if (fmt == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    fmt->schema_id = -1;
    fmt->schema_json = dup_str(schema_json);
    fmt->schema_dir = dup_str(schema_dir);
    if ((schema_json != NULL && fmt->schema_json == NULL) ||
        (schema_dir != NULL && fmt->schema_dir == NULL)) {
        weir_avro_format_destroy(fmt);
        set_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    return fmt;
}

WEIR_EXTERN weir_avro_format_t *weir_avro_format_new(const char *schema_path,
                                                     const char *schema_dir,
                                                     char *errstr,
                                                     size_t errstr_size)
{
    weir_avro_format_t *fmt;
    char *text = NULL;

    if (schema_path != NULL) {
        text = read_file(schema_path, NULL, errstr, errstr_size);
        if (text == NULL)
            return NULL;
    }
    fmt = weir_avro_format_new_json(text, schema_dir, errstr, errstr_size);
    weir_free(text);
    return fmt;
}

WEIR_EXTERN int weir_avro_format_set_key(weir_avro_format_t *fmt,
                                         const char *paths)
{
    struct path *keys = NULL;
    size_t n = 0;
    const char *p;
    const char *comma;
    size_t i;
    size_t k;
    int rc;

    if (fmt == NULL)
        return WEIR_EINVAL;
    if (paths != NULL && *paths != '\0') {
        n = 1;
        for (p = paths; *p; p++)
            if (*p == ',')
                n++;
        keys = weir_calloc(n, sizeof(*keys));
        if (keys == NULL)
            return WEIR_ENOMEM;
        p = paths;
        for (i = 0; i < n; i++) {
            comma = strchr(p, ',');
            rc = path_parse(&keys[i], p,
                            comma ? (size_t)(comma - p) : strlen(p));
            if (rc == WEIR_OK)
                rc = format_check_path(fmt, &keys[i]);
            if (rc != WEIR_OK) {
                for (k = 0; k <= i; k++)
                    path_free(&keys[k]);
                weir_free(keys);
                return rc;
            }
            p = comma ? comma + 1 : p + strlen(p);
        }
    }
    for (i = 0; i < fmt->nkeys; i++)
        path_free(&fmt->keys[i]);
    weir_free(fmt->keys);
    fmt->keys = keys;
    fmt->nkeys = n;
    return WEIR_OK;
}

WEIR_EXTERN int weir_avro_format_set_time(weir_avro_format_t *fmt,
                                          const char *path)
{
    struct path p;
    int rc;

    if (fmt == NULL)
        return WEIR_EINVAL;
    memset(&p, 0, sizeof(p));
    if (path != NULL) {
        rc = path_parse(&p, path, strlen(path));
        if (rc == WEIR_OK)
            rc = format_check_path(fmt, &p);
        if (rc != WEIR_OK) {
            path_free(&p);
            return rc;
        }
    }
    path_free(&fmt->time);
    fmt->time = p;
    return WEIR_OK;
}

WEIR_EXTERN int weir_avro_format_set_schema_id(weir_avro_format_t *fmt,
                                               int32_t id)
{
    if (fmt == NULL || id < -1)
        return WEIR_EINVAL;
    fmt->schema_id = id;
    return WEIR_OK;
}

WEIR_EXTERN const char *weir_avro_format_schema(const weir_avro_format_t *fmt)
{
    return fmt == NULL ? NULL : fmt->schema_json;
}

WEIR_EXTERN void weir_avro_format_destroy(weir_avro_format_t *fmt)
{
    size_t i;

    if (fmt == NULL)
        return;
    for (i = 0; i < fmt->nkeys; i++)
        path_free(&fmt->keys[i]);
    weir_free(fmt->keys);
    path_free(&fmt->time);
    weir_free(fmt->schema_json);
    weir_free(fmt->schema_dir);
    weir_free(fmt);
}

/* ------------------------------------------------------------------ *
 * ## Schema metadata Avro-C does not keep (defaults, aliases, units)
 * ------------------------------------------------------------------ */

struct field_meta {
    char *record;    /* full name of the record               */
    char *field;     /* field name                            */
    json_t *dflt;    /* default (borrowed from meta->root)    */
    json_t *aliases; /* array of alias names, or NULL         */
    int64_t unit;    /* divisor to ms: 1, 1000 or 1000000     */
};

struct meta {
    json_t *root;
    struct field_meta *f;
    size_t n;
    size_t cap;
};

static void meta_free(struct meta *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        weir_free(m->f[i].record);
        weir_free(m->f[i].field);
    }
    weir_free(m->f);
    if (m->root != NULL)
        json_decref(m->root);
    memset(m, 0, sizeof(*m));
}

static char *full_name(const char *name, const char *ns)
{
    size_t a;
    size_t b;
    char *s;

    if (strchr(name, '.') != NULL || ns == NULL || *ns == '\0')
        return dup_str(name);
    a = strlen(ns);
    b = strlen(name);
    s = weir_malloc(a + b + 2);
    if (s == NULL)
        return NULL;
    memcpy(s, ns, a);
    s[a] = '.';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static int64_t unit_of(json_t *type)
{
    const char *lt;
    size_t i;
    int64_t u;

    if (json_is_array(type)) {
        for (i = 0; i < json_array_size(type); i++) {
            u = unit_of(json_array_get(type, i));
            if (u != 1)
                return u;
        }
        return 1;
    }
    if (!json_is_object(type))
        return 1;
    lt = json_string_value(json_object_get(type, "logicalType"));
    if (lt == NULL)
        return 1;
    if (strcmp(lt, "timestamp-micros") == 0 ||
        strcmp(lt, "local-timestamp-micros") == 0)
        return 1000;
    if (strcmp(lt, "timestamp-nanos") == 0 ||
        strcmp(lt, "local-timestamp-nanos") == 0)
        return 1000000;
    return 1;
}

static int meta_walk(struct meta *m, json_t *node, const char *ns, int depth);

static int meta_add_record(struct meta *m, json_t *node, const char *ns,
                           int depth)
{
    const char *name;
    const char *own_ns;
    char *full;
    char *rec_ns;
    char *dot;
    json_t *fields;
    json_t *fld;
    size_t i;
    int rc = WEIR_OK;

    name = json_string_value(json_object_get(node, "name"));
    if (name == NULL)
        return WEIR_EINVAL;
    own_ns = json_string_value(json_object_get(node, "namespace"));
    full = full_name(name, own_ns != NULL ? own_ns : ns);
    if (full == NULL)
        return WEIR_ENOMEM;
    /* Namespace for nested definitions: that of the full name. */
    rec_ns = dup_str(full);
    if (rec_ns == NULL) {
        weir_free(full);
        return WEIR_ENOMEM;
    }
    dot = strrchr(rec_ns, '.');
    if (dot != NULL)
        *dot = '\0';
    else
        rec_ns[0] = '\0';
    fields = json_object_get(node, "fields");
    for (i = 0; rc == WEIR_OK && i < json_array_size(fields); i++) {
        struct field_meta *fm;

        fld = json_array_get(fields, i);
        if (!json_is_object(fld) ||
            json_string_value(json_object_get(fld, "name")) == NULL)
            continue;
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 16;
            struct field_meta *f = weir_realloc(m->f, cap * sizeof(*f));

            if (f == NULL) {
                rc = WEIR_ENOMEM;
                break;
            }
            m->f = f;
            m->cap = cap;
        }
        fm = &m->f[m->n];
        memset(fm, 0, sizeof(*fm));
        fm->record = dup_str(full);
        fm->field = dup_str(json_string_value(json_object_get(fld, "name")));
        if (fm->record == NULL || fm->field == NULL) {
            weir_free(fm->record);
            weir_free(fm->field);
            rc = WEIR_ENOMEM;
            break;
        }
        fm->dflt = json_object_get(fld, "default");
        fm->aliases = json_object_get(fld, "aliases");
        fm->unit = unit_of(json_object_get(fld, "type"));
        m->n++;
        rc = meta_walk(m, json_object_get(fld, "type"), rec_ns, depth + 1);
    }
    weir_free(full);
    weir_free(rec_ns);
    return rc;
}

static int meta_walk(struct meta *m, json_t *node, const char *ns, int depth)
{
    const char *type;
    size_t i;
    int rc;

    if (depth > MAX_DEPTH)
        return WEIR_EINVAL;
    if (json_is_array(node)) {
        for (i = 0; i < json_array_size(node); i++) {
            rc = meta_walk(m, json_array_get(node, i), ns, depth + 1);
            if (rc != WEIR_OK)
                return rc;
        }
        return WEIR_OK;
    }
    if (!json_is_object(node))
        return WEIR_OK;
    type = json_string_value(json_object_get(node, "type"));
    if (type == NULL)
        return meta_walk(m, json_object_get(node, "type"), ns, depth + 1);
    if (strcmp(type, "record") == 0 || strcmp(type, "error") == 0)
        return meta_add_record(m, node, ns, depth);
    if (strcmp(type, "array") == 0)
        return meta_walk(m, json_object_get(node, "items"), ns, depth + 1);
    if (strcmp(type, "map") == 0)
        return meta_walk(m, json_object_get(node, "values"), ns, depth + 1);
    return WEIR_OK;
}

static int meta_load(struct meta *m, const char *json, size_t len)
{
    json_error_t jerr;

    memset(m, 0, sizeof(*m));
    m->root = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (m->root == NULL)
        return WEIR_EINVAL;
    return meta_walk(m, m->root, "", 0);
}

/* The metadata of field `field` of record schema `rec`, or NULL. */
static const struct field_meta *meta_find(const struct meta *m,
                                          avro_schema_t rec, const char *field)
{
    const char *name = avro_schema_name(rec);
    const char *ns = avro_schema_namespace(rec);
    size_t nl = name != NULL ? strlen(name) : 0;
    size_t sl = ns != NULL ? strlen(ns) : 0;
    size_t i;

    if (m == NULL || name == NULL)
        return NULL;
    for (i = 0; i < m->n; i++) {
        const char *r = m->f[i].record;
        size_t rl = strlen(r);

        if (strcmp(m->f[i].field, field) != 0)
            continue;
        /* Match "ns.name" or plain "name". */
        if (sl > 0 && rl == sl + 1 + nl && strncmp(r, ns, sl) == 0 &&
            r[sl] == '.' && strcmp(r + sl + 1, name) == 0)
            return &m->f[i];
        if (strcmp(r, name) == 0)
            return &m->f[i];
    }
    return NULL;
}

/* ------------------------------------------------------------------ *
 * ## Validation: a scanner that checks bytes against a schema
 * ------------------------------------------------------------------ */

struct scan {
    const unsigned char *p;
    const unsigned char *end;
};

static int scan_long(struct scan *sc, int64_t *out)
{
    uint64_t v = 0;
    int shift = 0;
    unsigned char b;

    do {
        if (sc->p >= sc->end || shift > 63)
            return -1;
        b = *sc->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    *out = (int64_t)((v >> 1) ^ (~(v & 1) + 1));
    return 0;
}

static int scan_skip(struct scan *sc, int64_t n)
{
    if (n < 0 || n > sc->end - sc->p)
        return -1;
    sc->p += n;
    return 0;
}

/* 1 when a value of s can take zero bytes (null, empty records, ...). */
static int zero_width(avro_schema_t s, int depth)
{
    size_t i;

    if (depth > MAX_DEPTH)
        return 1;
    if (is_avro_link(s))
        return zero_width(avro_schema_link_target(s), depth + 1);
    if (is_avro_null(s))
        return 1;
    if (is_avro_fixed(s))
        return avro_schema_fixed_size(s) == 0;
    if (is_avro_record(s)) {
        for (i = 0; i < avro_schema_record_size(s); i++)
            if (!zero_width(avro_schema_record_field_get_by_index(s, (int)i),
                            depth + 1))
                return 0;
        return 1;
    }
    return 0;
}

static int skip_datum(struct scan *sc, avro_schema_t s, int depth,
                      const char **why);

static int skip_blocks(struct scan *sc, avro_schema_t item, int is_map,
                       int depth, const char **why)
{
    int64_t count;
    int64_t size;
    int64_t i;
    int64_t limit;

    limit = zero_width(item, 0) && !is_map ? MAX_ZERO_WIDTH : INT64_MAX;
    for (;;) {
        if (scan_long(sc, &count) != 0) {
            *why = "truncated block count";
            return -1;
        }
        if (count == 0)
            return 0;
        if (count < 0) {
            if (count == INT64_MIN || scan_long(sc, &size) != 0 || size < 0) {
                *why = "bad block size";
                return -1;
            }
            count = -count;
        }
        if (count > limit || (limit == INT64_MAX && count > sc->end - sc->p)) {
            *why = "block count larger than the data";
            return -1;
        }
        for (i = 0; i < count; i++) {
            if (is_map) {
                int64_t klen;

                if (scan_long(sc, &klen) != 0 || scan_skip(sc, klen) != 0) {
                    *why = "bad map key";
                    return -1;
                }
            }
            if (skip_datum(sc, item, depth + 1, why) != 0)
                return -1;
        }
    }
}

static int skip_datum(struct scan *sc, avro_schema_t s, int depth,
                      const char **why)
{
    int64_t v;
    size_t i;

    if (depth > MAX_DEPTH) {
        *why = "value nested too deeply";
        return -1;
    }
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return 0;
    case AVRO_BOOLEAN:
        if (sc->p >= sc->end || *sc->p > 1) {
            *why = "bad boolean";
            return -1;
        }
        sc->p++;
        return 0;
    case AVRO_INT32:
    case AVRO_INT64:
        if (scan_long(sc, &v) != 0 ||
            (is_avro_int32(s) && (v < INT32_MIN || v > INT32_MAX))) {
            *why = "bad integer";
            return -1;
        }
        return 0;
    case AVRO_FLOAT:
        if (scan_skip(sc, 4) != 0) {
            *why = "truncated float";
            return -1;
        }
        return 0;
    case AVRO_DOUBLE:
        if (scan_skip(sc, 8) != 0) {
            *why = "truncated double";
            return -1;
        }
        return 0;
    case AVRO_STRING:
    case AVRO_BYTES:
        if (scan_long(sc, &v) != 0 || scan_skip(sc, v) != 0) {
            *why = "bad string or bytes length";
            return -1;
        }
        return 0;
    case AVRO_FIXED:
        if (scan_skip(sc, avro_schema_fixed_size(s)) != 0) {
            *why = "truncated fixed";
            return -1;
        }
        return 0;
    case AVRO_ENUM:
        if (scan_long(sc, &v) != 0 || v < 0 ||
            v >= avro_schema_enum_number_of_symbols(s)) {
            *why = "bad enum index";
            return -1;
        }
        return 0;
    case AVRO_UNION:
        if (scan_long(sc, &v) != 0 || v < 0 ||
            (uint64_t)v >= avro_schema_union_size(s)) {
            *why = "bad union branch";
            return -1;
        }
        return skip_datum(sc, avro_schema_union_branch(s, (int)v), depth + 1,
                          why);
    case AVRO_RECORD:
        for (i = 0; i < avro_schema_record_size(s); i++)
            if (skip_datum(sc, avro_schema_record_field_get_by_index(s, (int)i),
                           depth + 1, why) != 0)
                return -1;
        return 0;
    case AVRO_ARRAY:
        return skip_blocks(sc, avro_schema_array_items(s), 0, depth, why);
    case AVRO_MAP:
        return skip_blocks(sc, avro_schema_map_values(s), 1, depth, why);
    case AVRO_LINK:
        return skip_datum(sc, avro_schema_link_target(s), depth + 1, why);
    default:
        *why = "unsupported schema type";
        return -1;
    }
}

/* ------------------------------------------------------------------ *
 * ## Codecs
 * ------------------------------------------------------------------ */

/* A schema with a generic value to read into. */
struct slot {
    int32_t id; /* Confluent id, -1 for others         */
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    struct meta meta;
    int same; /* equal to the reader schema          */
    int ok;   /* initialized                         */
};

struct weir_avro_codec_s {
    const weir_avro_format_t *fmt;
    struct slot reader; /* ok == 0 without reader     */
    struct slot fixed;  /* new_writer(): the writer   */
    struct slot *ids;   /* Confluent writer schemas   */
    size_t nids;
    avro_reader_t mem;
    avro_value_t *cur; /* the decoded value          */
    const struct meta *cur_meta;
    int32_t last_id;
    struct bytes key;
    struct bytes out;
    struct bytes scratch;
    char *json; /* from avro_value_to_json    */
    char err[256];
};

static void slot_free(struct slot *s)
{
    if (!s->ok)
        return;
    avro_value_decref(&s->value);
    avro_value_iface_decref(s->iface);
    avro_schema_decref(s->schema);
    meta_free(&s->meta);
    memset(s, 0, sizeof(*s));
}

static int slot_init(struct slot *s, int32_t id, const char *json, char *errstr,
                     size_t errstr_size)
{
    memset(s, 0, sizeof(*s));
    s->id = id;
    if (avro_schema_from_json_length(json, strlen(json), &s->schema) != 0) {
        set_err(errstr, errstr_size, "invalid schema: %s", avro_strerror());
        return WEIR_ECODEC;
    }
    s->iface = avro_generic_class_from_schema(s->schema);
    if (s->iface == NULL) {
        avro_schema_decref(s->schema);
        set_err(errstr, errstr_size, "schema: %s", avro_strerror());
        return WEIR_ECODEC;
    }
    if (avro_generic_value_new(s->iface, &s->value) != 0) {
        avro_value_iface_decref(s->iface);
        avro_schema_decref(s->schema);
        set_err(errstr, errstr_size, "out of memory");
        return WEIR_ENOMEM;
    }
    s->ok = 1;
    if (meta_load(&s->meta, json, strlen(json)) != WEIR_OK) {
        slot_free(s);
        set_err(errstr, errstr_size, "schema metadata could not be read");
        return WEIR_ECODEC;
    }
    return WEIR_OK;
}

static weir_avro_codec_t *codec_alloc(const weir_avro_format_t *fmt,
                                      char *errstr, size_t errstr_size)
{
    weir_avro_codec_t *c;

    c = weir_calloc(1, sizeof(*c));
    if (c == NULL) {
        set_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->fmt = fmt;
    c->last_id = -1;
    c->mem = avro_reader_memory("", 0);
    if (c->mem == NULL) {
        weir_free(c);
        set_err(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (fmt->schema_json != NULL && slot_init(&c->reader, -1, fmt->schema_json,
                                              errstr, errstr_size) != WEIR_OK) {
        weir_avro_codec_destroy(c);
        return NULL;
    }
    return c;
}

WEIR_EXTERN weir_avro_codec_t *
weir_avro_codec_new(const weir_avro_format_t *fmt, char *errstr,
                    size_t errstr_size)
{
    if (fmt == NULL) {
        set_err(errstr, errstr_size, "no format");
        return NULL;
    }
    return codec_alloc(fmt, errstr, errstr_size);
}

WEIR_EXTERN weir_avro_codec_t *
weir_avro_codec_new_writer(const weir_avro_format_t *fmt,
                           const char *writer_schema_json, char *errstr,
                           size_t errstr_size)
{
    weir_avro_codec_t *c;

    if (fmt == NULL || writer_schema_json == NULL) {
        set_err(errstr, errstr_size, "no format or writer schema");
        return NULL;
    }
    c = codec_alloc(fmt, errstr, errstr_size);
    if (c == NULL)
        return NULL;
    if (slot_init(&c->fixed, -1, writer_schema_json, errstr, errstr_size) !=
        WEIR_OK) {
        weir_avro_codec_destroy(c);
        return NULL;
    }
    c->fixed.same =
        c->reader.ok && avro_schema_equal(c->fixed.schema, c->reader.schema);
    return c;
}

WEIR_EXTERN void weir_avro_codec_destroy(weir_avro_codec_t *c)
{
    size_t i;

    if (c == NULL)
        return;
    for (i = 0; i < c->nids; i++)
        slot_free(&c->ids[i]);
    weir_free(c->ids);
    slot_free(&c->fixed);
    slot_free(&c->reader);
    if (c->mem != NULL)
        avro_reader_free(c->mem);
    weir_free(c->key.data);
    weir_free(c->out.data);
    weir_free(c->scratch.data);
    free(c->json);
    weir_free(c);
}

WEIR_EXTERN const char *weir_avro_codec_errstr(const weir_avro_codec_t *c)
{
    return c == NULL ? "" : c->err;
}

WEIR_EXTERN int32_t weir_avro_codec_schema_id(const weir_avro_codec_t *c)
{
    return c == NULL ? -1 : c->last_id;
}

static int fail(weir_avro_codec_t *c, int rc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* The writer slot for a Confluent schema id, loading it on first use. */
static struct slot *writer_for_id(weir_avro_codec_t *c, int32_t id)
{
    char path[4096];
    char err[200];
    char *json;
    struct slot *s;
    size_t i;

    for (i = 0; i < c->nids; i++)
        if (c->ids[i].id == id)
            return &c->ids[i];
    snprintf(path, sizeof(path), "%s/%d.avsc", c->fmt->schema_dir, (int)id);
    json = read_file(path, NULL, err, sizeof(err));
    if (json == NULL) {
        fail(c, WEIR_ECODEC, "unknown schema id %d (%s)", (int)id, err);
        return NULL;
    }
    s = weir_realloc(c->ids, (c->nids + 1) * sizeof(*s));
    if (s == NULL) {
        weir_free(json);
        fail(c, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    c->ids = s;
    s = &c->ids[c->nids];
    if (slot_init(s, id, json, err, sizeof(err)) != WEIR_OK) {
        weir_free(json);
        fail(c, WEIR_ECODEC, "schema id %d: %s", (int)id, err);
        return NULL;
    }
    weir_free(json);
    s->same = c->reader.ok && avro_schema_equal(s->schema, c->reader.schema);
    c->nids++;
    return s;
}

/* ------------------------------------------------------------------ *
 * ## Setting values from JSON (defaults and weir_avro_encode_json)
 * ------------------------------------------------------------------ */

static int from_json(weir_avro_codec_t *c, avro_value_t *v, json_t *j,
                     const struct meta *m, int is_default, int depth);

/* 1 when JSON j plausibly encodes a value of schema s (union choice). */
static int json_fits(avro_schema_t s, json_t *j)
{
    if (is_avro_link(s))
        s = avro_schema_link_target(s);
    switch (avro_typeof(s)) {
    case AVRO_NULL:
        return json_is_null(j);
    case AVRO_BOOLEAN:
        return json_is_boolean(j);
    case AVRO_INT32:
    case AVRO_INT64:
        return json_is_integer(j);
    case AVRO_FLOAT:
    case AVRO_DOUBLE:
        return json_is_number(j);
    case AVRO_STRING:
    case AVRO_BYTES:
    case AVRO_ENUM:
    case AVRO_FIXED:
        return json_is_string(j);
    case AVRO_RECORD:
    case AVRO_MAP:
        return json_is_object(j);
    case AVRO_ARRAY:
        return json_is_array(j);
    default:
        return 0;
    }
}

/* Bytes from a JSON string of code points 0..255 (Avro's JSON bytes). */
static int json_bytes(weir_avro_codec_t *c, json_t *j)
{
    const unsigned char *s = (const unsigned char *)json_string_value(j);
    size_t n = json_string_length(j);
    size_t i;
    unsigned char b;

    c->scratch.len = 0;
    for (i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            b = s[i];
        } else if ((s[i] & 0xe0) == 0xc0 && i + 1 < n && s[i] <= 0xc3) {
            b = (unsigned char)(((s[i] & 0x03) << 6) | (s[i + 1] & 0x3f));
            i++;
        } else {
            return -1;
        }
        if (bytes_append(&c->scratch, &b, 1) != WEIR_OK)
            return -1;
    }
    return 0;
}

static int from_json_record(weir_avro_codec_t *c, avro_value_t *v, json_t *j,
                            const struct meta *m, int is_default, int depth)
{
    avro_schema_t s = avro_value_get_schema(v);
    size_t n = avro_schema_record_size(s);
    size_t i;
    const char *name;
    avro_value_t fv;
    json_t *fj;
    const struct field_meta *fm;

    if (!json_is_object(j))
        return fail(c, WEIR_ECODEC, "record %s: expected an object",
                    avro_schema_name(s));
    for (i = 0; i < n; i++) {
        if (avro_value_get_by_index(v, i, &fv, &name) != 0)
            return fail(c, WEIR_ECODEC, "record field %zu", i);
        fj = json_object_get(j, name);
        if (fj == NULL) {
            fm = meta_find(m, s, name);
            if (fm == NULL || fm->dflt == NULL)
                return fail(c, WEIR_ECODEC,
                            "field %s.%s: missing and has no default",
                            avro_schema_name(s), name);
            if (from_json(c, &fv, fm->dflt, m, 1, depth + 1) != WEIR_OK)
                return WEIR_ECODEC;
            continue;
        }
        if (from_json(c, &fv, fj, m, is_default, depth + 1) != WEIR_OK)
            return WEIR_ECODEC;
    }
    return WEIR_OK;
}

/* 1 when `name` names union branch b ("int", "User" or "ns.User"). */
static int branch_named(avro_schema_t b, const char *name)
{
    const char *ns;
    size_t nl;

    if (strcmp(avro_schema_type_name(b), name) == 0)
        return 1;
    if (!is_avro_named_type(b))
        return 0;
    ns = avro_schema_namespace(b);
    nl = ns != NULL ? strlen(ns) : 0;
    return nl > 0 && strncmp(name, ns, nl) == 0 && name[nl] == '.' &&
           strcmp(name + nl + 1, avro_schema_name(b)) == 0;
}

static int from_json_union(weir_avro_codec_t *c, avro_value_t *v, json_t *j,
                           const struct meta *m, int is_default, int depth)
{
    avro_schema_t s = avro_value_get_schema(v);
    size_t n = avro_schema_union_size(s);
    size_t i;
    avro_value_t branch;
    avro_schema_t b;
    const char *key;
    json_t *inner;

    if (is_default) {
        /* A union's default belongs to its first branch. */
        if (avro_value_set_branch(v, 0, &branch) != 0)
            return fail(c, WEIR_ECODEC, "union branch");
        return from_json(c, &branch, j, m, 1, depth + 1);
    }
    /* Avro's JSON encoding: {"type name": value}. */
    if (json_is_object(j) && json_object_size(j) == 1) {
        json_object_foreach(j, key, inner)
        {
            for (i = 0; i < n; i++) {
                b = avro_schema_union_branch(s, (int)i);
                if (branch_named(b, key)) {
                    if (avro_value_set_branch(v, (int)i, &branch) != 0)
                        return fail(c, WEIR_ECODEC, "union branch");
                    return from_json(c, &branch, inner, m, 0, depth + 1);
                }
            }
        }
    }
    for (i = 0; i < n; i++) {
        b = avro_schema_union_branch(s, (int)i);
        if (!json_fits(b, j))
            continue;
        if (avro_value_set_branch(v, (int)i, &branch) != 0)
            return fail(c, WEIR_ECODEC, "union branch");
        if (from_json(c, &branch, j, m, 0, depth + 1) == WEIR_OK)
            return WEIR_OK;
    }
    return fail(c, WEIR_ECODEC, "no union branch fits the value");
}

static int from_json(weir_avro_codec_t *c, avro_value_t *v, json_t *j,
                     const struct meta *m, int is_default, int depth)
{
    avro_schema_t s = avro_value_get_schema(v);
    avro_value_t child;
    json_t *item;
    const char *key;
    size_t i;
    int idx;
    int rc = 0;

    if (depth > MAX_DEPTH)
        return fail(c, WEIR_ECODEC, "value nested too deeply");
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        if (!json_is_null(j))
            return fail(c, WEIR_ECODEC, "expected null");
        rc = avro_value_set_null(v);
        break;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(j))
            return fail(c, WEIR_ECODEC, "expected a boolean");
        rc = avro_value_set_boolean(v, json_is_true(j));
        break;
    case AVRO_INT32:
        if (!json_is_integer(j) || json_integer_value(j) < INT32_MIN ||
            json_integer_value(j) > INT32_MAX)
            return fail(c, WEIR_ECODEC, "expected an int");
        rc = avro_value_set_int(v, (int32_t)json_integer_value(j));
        break;
    case AVRO_INT64:
        if (!json_is_integer(j))
            return fail(c, WEIR_ECODEC, "expected a long");
        rc = avro_value_set_long(v, (int64_t)json_integer_value(j));
        break;
    case AVRO_FLOAT:
        if (!json_is_number(j))
            return fail(c, WEIR_ECODEC, "expected a float");
        rc = avro_value_set_float(v, (float)json_number_value(j));
        break;
    case AVRO_DOUBLE:
        if (!json_is_number(j))
            return fail(c, WEIR_ECODEC, "expected a double");
        rc = avro_value_set_double(v, json_number_value(j));
        break;
    case AVRO_STRING:
        if (!json_is_string(j))
            return fail(c, WEIR_ECODEC, "expected a string");
        /* The length passed includes the terminating NUL. */
        rc = avro_value_set_string_len(v, json_string_value(j),
                                       json_string_length(j) + 1);
        break;
    case AVRO_BYTES:
        if (!json_is_string(j) || json_bytes(c, j) != 0)
            return fail(c, WEIR_ECODEC, "expected bytes as a string");
        rc = avro_value_set_bytes(v, c->scratch.data, c->scratch.len);
        break;
    case AVRO_FIXED:
        if (!json_is_string(j) || json_bytes(c, j) != 0 ||
            (int64_t)c->scratch.len != avro_schema_fixed_size(s))
            return fail(c, WEIR_ECODEC, "expected %lld bytes for fixed %s",
                        (long long)avro_schema_fixed_size(s),
                        avro_schema_name(s));
        rc = avro_value_set_fixed(v, c->scratch.data, c->scratch.len);
        break;
    case AVRO_ENUM:
        idx = json_is_string(j)
                  ? avro_schema_enum_get_by_name(s, json_string_value(j))
                  : -1;
        if (idx < 0)
            return fail(c, WEIR_ECODEC, "not a symbol of enum %s",
                        avro_schema_name(s));
        rc = avro_value_set_enum(v, idx);
        break;
    case AVRO_ARRAY:
        if (!json_is_array(j))
            return fail(c, WEIR_ECODEC, "expected an array");
        json_array_foreach(j, i, item)
        {
            if (avro_value_append(v, &child, NULL) != 0)
                return fail(c, WEIR_ENOMEM, "out of memory");
            if (from_json(c, &child, item, m, is_default, depth + 1) != WEIR_OK)
                return WEIR_ECODEC;
        }
        break;
    case AVRO_MAP:
        if (!json_is_object(j))
            return fail(c, WEIR_ECODEC, "expected an object for a map");
        json_object_foreach(j, key, item)
        {
            if (avro_value_add(v, key, &child, NULL, NULL) != 0)
                return fail(c, WEIR_ENOMEM, "out of memory");
            if (from_json(c, &child, item, m, is_default, depth + 1) != WEIR_OK)
                return WEIR_ECODEC;
        }
        break;
    case AVRO_RECORD:
        return from_json_record(c, v, j, m, is_default, depth);
    case AVRO_UNION:
        return from_json_union(c, v, j, m, is_default, depth);
    default:
        return fail(c, WEIR_ECODEC, "unsupported schema type");
    }
    if (rc != 0)
        return fail(c, WEIR_ECODEC, "avro: %s", avro_strerror());
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Resolution: copy a writer value into a reader value
 * ------------------------------------------------------------------ */

static int resolve(weir_avro_codec_t *c, avro_value_t *src, avro_value_t *dst,
                   int depth);

/* 1 when a value of writer schema w can be resolved into reader r. */
static int schemas_match(avro_schema_t w, avro_schema_t r)
{
    avro_type_t wt;
    avro_type_t rt;

    if (is_avro_link(w))
        w = avro_schema_link_target(w);
    if (is_avro_link(r))
        r = avro_schema_link_target(r);
    wt = avro_typeof(w);
    rt = avro_typeof(r);
    if (wt == rt) {
        if (wt == AVRO_RECORD || wt == AVRO_ENUM || wt == AVRO_FIXED)
            return strcmp(avro_schema_name(w), avro_schema_name(r)) == 0;
        return 1;
    }
    switch (wt) {
    case AVRO_INT32:
        return rt == AVRO_INT64 || rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
    case AVRO_INT64:
        return rt == AVRO_FLOAT || rt == AVRO_DOUBLE;
    case AVRO_FLOAT:
        return rt == AVRO_DOUBLE;
    case AVRO_STRING:
        return rt == AVRO_BYTES;
    case AVRO_BYTES:
        return rt == AVRO_STRING;
    default:
        return 0;
    }
}

static int resolve_record(weir_avro_codec_t *c, avro_value_t *src,
                          avro_value_t *dst, int depth)
{
    avro_schema_t rs = avro_value_get_schema(dst);
    size_t n = avro_schema_record_size(rs);
    size_t i;
    size_t a;
    const char *name;
    avro_value_t dv;
    avro_value_t sv;
    const struct field_meta *fm;
    int found;

    for (i = 0; i < n; i++) {
        if (avro_value_get_by_index(dst, i, &dv, &name) != 0)
            return fail(c, WEIR_ECODEC, "record field %zu", i);
        found = avro_value_get_by_name(src, name, &sv, NULL) == 0;
        fm = NULL;
        if (!found) {
            fm = meta_find(&c->reader.meta, rs, name);
            for (a = 0;
                 fm != NULL && !found && a < json_array_size(fm->aliases);
                 a++) {
                const char *alias =
                    json_string_value(json_array_get(fm->aliases, a));

                found = alias != NULL &&
                        avro_value_get_by_name(src, alias, &sv, NULL) == 0;
            }
        }
        if (found) {
            if (resolve(c, &sv, &dv, depth + 1) != WEIR_OK)
                return WEIR_ECODEC;
            continue;
        }
        if (fm == NULL || fm->dflt == NULL)
            return fail(c, WEIR_ECODEC,
                        "reader field %s.%s is not in the writer schema "
                        "and has no default",
                        avro_schema_name(rs), name);
        if (from_json(c, &dv, fm->dflt, &c->reader.meta, 1, depth + 1) !=
            WEIR_OK)
            return WEIR_ECODEC;
    }
    return WEIR_OK;
}

static int resolve_union_dst(weir_avro_codec_t *c, avro_value_t *src,
                             avro_value_t *dst, int depth)
{
    avro_schema_t rs = avro_value_get_schema(dst);
    avro_schema_t ws = avro_value_get_schema(src);
    avro_value_t branch;
    size_t n = avro_schema_union_size(rs);
    size_t i;
    int pass;

    /* Exact type first, then promotions. */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i++) {
            avro_schema_t b = avro_schema_union_branch(rs, (int)i);
            avro_schema_t bt = is_avro_link(b) ? avro_schema_link_target(b) : b;

            if (pass == 0 && avro_typeof(bt) != avro_typeof(ws))
                continue;
            if (!schemas_match(ws, bt))
                continue;
            if (avro_value_set_branch(dst, (int)i, &branch) != 0)
                return fail(c, WEIR_ECODEC, "union branch");
            return resolve(c, src, &branch, depth + 1);
        }
    }
    return fail(c, WEIR_ECODEC, "no reader union branch for writer type %s",
                avro_schema_type_name(ws));
}

static int resolve(weir_avro_codec_t *c, avro_value_t *src, avro_value_t *dst,
                   int depth)
{
    avro_type_t st = avro_value_get_type(src);
    avro_type_t dt = avro_value_get_type(dst);
    avro_value_t sc;
    avro_value_t dc;
    const char *str;
    const void *buf;
    const char *key;
    size_t size;
    size_t n;
    size_t i;
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    int b;
    int rc = 0;

    if (depth > MAX_DEPTH)
        return fail(c, WEIR_ECODEC, "value nested too deeply");
    if (st == AVRO_UNION) {
        if (avro_value_get_current_branch(src, &sc) != 0)
            return fail(c, WEIR_ECODEC, "union without a branch");
        return resolve(c, &sc, dst, depth + 1);
    }
    if (dt == AVRO_UNION)
        return resolve_union_dst(c, src, dst, depth);
    if (!schemas_match(avro_value_get_schema(src), avro_value_get_schema(dst)))
        return fail(c, WEIR_ECODEC, "writer type %s does not resolve to %s",
                    avro_schema_type_name(avro_value_get_schema(src)),
                    avro_schema_type_name(avro_value_get_schema(dst)));
    switch (st) {
    case AVRO_NULL:
        rc = avro_value_set_null(dst);
        break;
    case AVRO_BOOLEAN:
        rc = avro_value_get_boolean(src, &b) || avro_value_set_boolean(dst, b);
        break;
    case AVRO_INT32:
        rc = avro_value_get_int(src, &i32);
        if (rc == 0 && dt == AVRO_INT32)
            rc = avro_value_set_int(dst, i32);
        else if (rc == 0 && dt == AVRO_INT64)
            rc = avro_value_set_long(dst, i32);
        else if (rc == 0 && dt == AVRO_FLOAT)
            rc = avro_value_set_float(dst, (float)i32);
        else if (rc == 0)
            rc = avro_value_set_double(dst, i32);
        break;
    case AVRO_INT64:
        rc = avro_value_get_long(src, &i64);
        if (rc == 0 && dt == AVRO_INT64)
            rc = avro_value_set_long(dst, i64);
        else if (rc == 0 && dt == AVRO_FLOAT)
            rc = avro_value_set_float(dst, (float)i64);
        else if (rc == 0)
            rc = avro_value_set_double(dst, (double)i64);
        break;
    case AVRO_FLOAT:
        rc = avro_value_get_float(src, &f);
        if (rc == 0 && dt == AVRO_FLOAT)
            rc = avro_value_set_float(dst, f);
        else if (rc == 0)
            rc = avro_value_set_double(dst, f);
        break;
    case AVRO_DOUBLE:
        rc = avro_value_get_double(src, &d) || avro_value_set_double(dst, d);
        break;
    case AVRO_STRING:
        rc = avro_value_get_string(src, &str, &size);
        if (rc == 0 && dt == AVRO_STRING)
            rc = avro_value_set_string_len(dst, str, size);
        else if (rc == 0)
            rc = avro_value_set_bytes(dst, (void *)str, size ? size - 1 : 0);
        break;
    case AVRO_BYTES:
        rc = avro_value_get_bytes(src, &buf, &size);
        if (rc == 0 && dt == AVRO_BYTES) {
            rc = avro_value_set_bytes(dst, (void *)buf, size);
        } else if (rc == 0) {
            c->scratch.len = 0;
            if (bytes_append(&c->scratch, buf, size) != WEIR_OK ||
                bytes_append(&c->scratch, "", 1) != WEIR_OK)
                return fail(c, WEIR_ENOMEM, "out of memory");
            rc = avro_value_set_string_len(dst, c->scratch.data, size + 1);
        }
        break;
    case AVRO_FIXED:
        rc = avro_value_get_fixed(src, &buf, &size);
        if (rc == 0 &&
            (int64_t)size != avro_schema_fixed_size(avro_value_get_schema(dst)))
            return fail(c, WEIR_ECODEC, "fixed sizes differ");
        if (rc == 0)
            rc = avro_value_set_fixed(dst, (void *)buf, size);
        break;
    case AVRO_ENUM: {
        avro_schema_t ws = avro_value_get_schema(src);
        avro_schema_t rs = avro_value_get_schema(dst);
        const char *sym;
        int idx;

        rc = avro_value_get_enum(src, &idx);
        if (rc != 0)
            break;
        sym = avro_schema_enum_get(ws, idx);
        idx = sym != NULL ? avro_schema_enum_get_by_name(rs, sym) : -1;
        if (idx < 0)
            return fail(c, WEIR_ECODEC, "enum symbol %s unknown to reader",
                        sym != NULL ? sym : "?");
        rc = avro_value_set_enum(dst, idx);
        break;
    }
    case AVRO_ARRAY:
        if (avro_value_get_size(src, &n) != 0)
            return fail(c, WEIR_ECODEC, "array size");
        for (i = 0; i < n; i++) {
            if (avro_value_get_by_index(src, i, &sc, NULL) != 0 ||
                avro_value_append(dst, &dc, NULL) != 0)
                return fail(c, WEIR_ECODEC, "array item");
            if (resolve(c, &sc, &dc, depth + 1) != WEIR_OK)
                return WEIR_ECODEC;
        }
        break;
    case AVRO_MAP:
        if (avro_value_get_size(src, &n) != 0)
            return fail(c, WEIR_ECODEC, "map size");
        for (i = 0; i < n; i++) {
            if (avro_value_get_by_index(src, i, &sc, &key) != 0 ||
                avro_value_add(dst, key, &dc, NULL, NULL) != 0)
                return fail(c, WEIR_ECODEC, "map entry");
            if (resolve(c, &sc, &dc, depth + 1) != WEIR_OK)
                return WEIR_ECODEC;
        }
        break;
    case AVRO_RECORD:
        return resolve_record(c, src, dst, depth);
    default:
        return fail(c, WEIR_ECODEC, "unsupported writer type");
    }
    if (rc != 0)
        return fail(c, WEIR_ECODEC, "resolution failed");
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Decoding
 * ------------------------------------------------------------------ */

static int read_into(weir_avro_codec_t *c, struct slot *w, const char *p,
                     size_t len)
{
    struct scan sc;
    const char *why = "";

    sc.p = (const unsigned char *)p;
    sc.end = sc.p + len;
    if (skip_datum(&sc, w->schema, 0, &why) != 0)
        return fail(c, WEIR_ECODEC, "not a valid datum: %s", why);
    if (sc.p != sc.end)
        return fail(c, WEIR_ECODEC, "not a valid datum: %zu trailing bytes",
                    (size_t)(sc.end - sc.p));
    avro_reader_memory_set_source(c->mem, p, (int64_t)len);
    avro_value_reset(&w->value);
    if (avro_value_read(c->mem, &w->value) != 0)
        return fail(c, WEIR_ECODEC, "avro: %s", avro_strerror());
    return WEIR_OK;
}

WEIR_EXTERN int weir_avro_decode(weir_avro_codec_t *c, weir_buf_t value)
{
    const unsigned char *p = value.data;
    size_t len = value.len;
    struct slot *w;
    int32_t id = -1;
    int rc;

    if (c == NULL || (value.data == NULL && value.len > 0))
        return WEIR_EINVAL;
    c->cur = NULL;
    c->cur_meta = NULL;
    c->err[0] = '\0';
    if (c->fixed.ok) {
        w = &c->fixed;
    } else if (c->fmt->schema_dir != NULL) {
        if (len < 5 || p == NULL)
            return fail(c, WEIR_ECODEC, "shorter than the 5-byte header");
        if (p[0] != 0)
            return fail(c, WEIR_ECODEC, "bad magic byte %u", p[0]);
        id = (int32_t)(((uint32_t)p[1] << 24) | ((uint32_t)p[2] << 16) |
                       ((uint32_t)p[3] << 8) | (uint32_t)p[4]);
        p += 5;
        len -= 5;
        w = writer_for_id(c, id);
        if (w == NULL)
            return WEIR_ECODEC;
    } else {
        w = &c->reader;
        w->same = 1;
    }
    c->last_id = id;
    rc = read_into(c, w, (const char *)p, len);
    if (rc != WEIR_OK)
        return rc;
    if (w->same || !c->reader.ok) {
        c->cur = &w->value;
        c->cur_meta = &w->meta;
        return WEIR_OK;
    }
    avro_value_reset(&c->reader.value);
    rc = resolve(c, &w->value, &c->reader.value, 0);
    if (rc != WEIR_OK)
        return rc;
    c->cur = &c->reader.value;
    c->cur_meta = &c->reader.meta;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Field access
 * ------------------------------------------------------------------ */

/* Finds a path in the current value. *unit gets the time unit of the
 * last field. */
static int lookup(weir_avro_codec_t *c, const struct path *p, avro_value_t *out,
                  int64_t *unit)
{
    avro_value_t v;
    avro_value_t next;
    avro_schema_t rec = NULL;
    const struct field_meta *fm;
    size_t i;

    if (c->cur == NULL)
        return fail(c, WEIR_EINVAL, "nothing decoded");
    v = *c->cur;
    for (i = 0; i < p->n; i++) {
        while (avro_value_get_type(&v) == AVRO_UNION) {
            if (avro_value_get_current_branch(&v, &next) != 0)
                return fail(c, WEIR_ENOENT, "%s: no value", p->text);
            v = next;
        }
        if (avro_value_get_type(&v) == AVRO_NULL)
            return fail(c, WEIR_ENOENT, "%s is null", p->text);
        if (avro_value_get_type(&v) != AVRO_RECORD)
            return fail(c, WEIR_ENOENT, "%s: %s is not a record", p->text,
                        p->seg[i > 0 ? i - 1 : 0]);
        rec = avro_value_get_schema(&v);
        if (avro_value_get_by_name(&v, p->seg[i], &next, NULL) != 0)
            return fail(c, WEIR_ENOENT, "%s: no field %s", p->text, p->seg[i]);
        v = next;
    }
    while (avro_value_get_type(&v) == AVRO_UNION) {
        if (avro_value_get_current_branch(&v, &next) != 0)
            return fail(c, WEIR_ENOENT, "%s: no value", p->text);
        v = next;
    }
    if (avro_value_get_type(&v) == AVRO_NULL)
        return fail(c, WEIR_ENOENT, "%s is null", p->text);
    if (unit != NULL) {
        fm = rec != NULL ? meta_find(c->cur_meta, rec, p->seg[p->n - 1]) : NULL;
        *unit = fm != NULL ? fm->unit : 1;
    }
    *out = v;
    return WEIR_OK;
}

/* Appends the text/bytes form of a scalar value to b. */
static int append_scalar(weir_avro_codec_t *c, avro_value_t *v,
                         const struct path *p, struct bytes *b)
{
    char num[64];
    const char *str;
    const void *buf;
    size_t size;
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    int bo;
    int n = -1;

    switch (avro_value_get_type(v)) {
    case AVRO_STRING:
        if (avro_value_get_string(v, &str, &size) != 0)
            break;
        return bytes_append(b, str, size ? size - 1 : 0);
    case AVRO_BYTES:
        if (avro_value_get_bytes(v, &buf, &size) != 0)
            break;
        return bytes_append(b, buf, size);
    case AVRO_FIXED:
        if (avro_value_get_fixed(v, &buf, &size) != 0)
            break;
        return bytes_append(b, buf, size);
    case AVRO_ENUM:
        if (avro_value_get_enum(v, &i32) != 0 ||
            (str = avro_schema_enum_get(avro_value_get_schema(v), i32)) == NULL)
            break;
        return bytes_append(b, str, strlen(str));
    case AVRO_INT32:
        if (avro_value_get_int(v, &i32) == 0)
            n = snprintf(num, sizeof(num), "%d", (int)i32);
        break;
    case AVRO_INT64:
        if (avro_value_get_long(v, &i64) == 0)
            n = snprintf(num, sizeof(num), "%lld", (long long)i64);
        break;
    case AVRO_FLOAT:
        if (avro_value_get_float(v, &f) == 0)
            n = snprintf(num, sizeof(num), "%.9g", (double)f);
        break;
    case AVRO_DOUBLE:
        if (avro_value_get_double(v, &d) == 0)
            n = snprintf(num, sizeof(num), "%.17g", d);
        break;
    case AVRO_BOOLEAN:
        if (avro_value_get_boolean(v, &bo) == 0)
            n = snprintf(num, sizeof(num), "%s", bo ? "true" : "false");
        break;
    default:
        return fail(c, WEIR_ENOTSUP, "%s is not a scalar", p->text);
    }
    if (n < 0)
        return fail(c, WEIR_ECODEC, "%s: unreadable value", p->text);
    return bytes_append(b, num, (size_t)n);
}

WEIR_EXTERN int weir_avro_field(weir_avro_codec_t *c, const char *path,
                                weir_buf_t *out)
{
    struct path p;
    avro_value_t v;
    int rc;

    if (c == NULL || path == NULL || out == NULL)
        return WEIR_EINVAL;
    rc = path_parse(&p, path, strlen(path));
    if (rc != WEIR_OK)
        return rc;
    rc = lookup(c, &p, &v, NULL);
    c->key.len = 0;
    if (rc == WEIR_OK)
        rc = append_scalar(c, &v, &p, &c->key);
    path_free(&p);
    if (rc == WEIR_OK)
        *out = WEIR_BUF(c->key.data, c->key.len);
    return rc;
}

static int value_i64(weir_avro_codec_t *c, avro_value_t *v,
                     const struct path *p, int64_t *out)
{
    int32_t i32;
    int64_t i64;
    float f;
    double d;
    int b;

    switch (avro_value_get_type(v)) {
    case AVRO_INT32:
        if (avro_value_get_int(v, &i32) != 0)
            break;
        *out = i32;
        return WEIR_OK;
    case AVRO_INT64:
        if (avro_value_get_long(v, &i64) != 0)
            break;
        *out = i64;
        return WEIR_OK;
    case AVRO_FLOAT:
        if (avro_value_get_float(v, &f) != 0 || !(f > -9.2e18f && f < 9.2e18f))
            break;
        *out = (int64_t)f;
        return WEIR_OK;
    case AVRO_DOUBLE:
        if (avro_value_get_double(v, &d) != 0 || !(d > -9.2e18 && d < 9.2e18))
            break;
        *out = (int64_t)d;
        return WEIR_OK;
    case AVRO_BOOLEAN:
        if (avro_value_get_boolean(v, &b) != 0)
            break;
        *out = b != 0;
        return WEIR_OK;
    default:
        break;
    }
    return fail(c, WEIR_ERANGE, "%s is not a number", p->text);
}

WEIR_EXTERN int weir_avro_field_i64(weir_avro_codec_t *c, const char *path,
                                    int64_t *out)
{
    struct path p;
    avro_value_t v;
    int rc;

    if (c == NULL || path == NULL || out == NULL)
        return WEIR_EINVAL;
    rc = path_parse(&p, path, strlen(path));
    if (rc != WEIR_OK)
        return rc;
    rc = lookup(c, &p, &v, NULL);
    if (rc == WEIR_OK)
        rc = value_i64(c, &v, &p, out);
    path_free(&p);
    return rc;
}

WEIR_EXTERN int weir_avro_key(weir_avro_codec_t *c, weir_buf_t *key)
{
    avro_value_t v;
    size_t i;
    int rc;

    if (c == NULL || key == NULL)
        return WEIR_EINVAL;
    if (c->fmt->nkeys == 0)
        return fail(c, WEIR_ENOENT, "no key fields configured");
    c->key.len = 0;
    for (i = 0; i < c->fmt->nkeys; i++) {
        rc = lookup(c, &c->fmt->keys[i], &v, NULL);
        if (rc == WEIR_OK && i > 0) {
            char sep = WEIR_AVRO_KEY_SEP;

            rc = bytes_append(&c->key, &sep, 1);
        }
        if (rc == WEIR_OK)
            rc = append_scalar(c, &v, &c->fmt->keys[i], &c->key);
        if (rc != WEIR_OK)
            return rc;
    }
    *key = WEIR_BUF(c->key.data, c->key.len);
    return WEIR_OK;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char **s, const char *end, int n, int64_t *out)
{
    int64_t v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (*s >= end || !isdigit((unsigned char)**s))
            return -1;
        v = v * 10 + (**s - '0');
        (*s)++;
    }
    *out = v;
    return 0;
}

/* RFC 3339: YYYY-MM-DD[Tt ]HH:MM:SS[.frac](Z|z|+HH:MM|-HH:MM). */
static int parse_rfc3339(const char *s, size_t len, weir_ts_t *ts)
{
    const char *end = s + len;
    int64_t y, mo, d, h, mi, sec, oh, om;
    int64_t ms = 0;
    int64_t scale = 100;
    int64_t off = 0;
    int64_t v;
    int sign;

    if (digits(&s, end, 4, &y) || s >= end || *s++ != '-' ||
        digits(&s, end, 2, &mo) || s >= end || *s++ != '-' ||
        digits(&s, end, 2, &d) || s >= end ||
        (*s != 'T' && *s != 't' && *s != ' '))
        return -1;
    s++;
    if (digits(&s, end, 2, &h) || s >= end || *s++ != ':' ||
        digits(&s, end, 2, &mi) || s >= end || *s++ != ':' ||
        digits(&s, end, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (s < end && *s == '.') {
        s++;
        if (s >= end || !isdigit((unsigned char)*s))
            return -1;
        while (s < end && isdigit((unsigned char)*s)) {
            ms += (*s - '0') * scale;
            scale /= 10;
            s++;
        }
    }
    if (s >= end)
        return -1;
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
        if (digits(&s, end, 2, &oh) || s >= end || *s++ != ':' ||
            digits(&s, end, 2, &om))
            return -1;
        off = sign * (oh * 60 + om) * 60000;
    } else {
        return -1;
    }
    if (s != end)
        return -1;
    v = days_from_civil(y, mo, d) * 86400000 + h * 3600000 + mi * 60000 +
        sec * 1000 + ms - off;
    *ts = v;
    return 0;
}

WEIR_EXTERN int weir_avro_time(weir_avro_codec_t *c, weir_ts_t *ts)
{
    avro_value_t v;
    int64_t unit = 1;
    int64_t n;
    const char *str;
    size_t size;
    int rc;

    if (c == NULL || ts == NULL)
        return WEIR_EINVAL;
    if (c->fmt->time.n == 0)
        return fail(c, WEIR_ENOENT, "no time field configured");
    rc = lookup(c, &c->fmt->time, &v, &unit);
    if (rc != WEIR_OK)
        return rc;
    if (avro_value_get_type(&v) == AVRO_STRING) {
        if (avro_value_get_string(&v, &str, &size) != 0 ||
            parse_rfc3339(str, size ? size - 1 : 0, ts) != 0)
            return fail(c, WEIR_ERANGE, "%s is not an RFC 3339 timestamp",
                        c->fmt->time.text);
        return WEIR_OK;
    }
    if (avro_value_get_type(&v) == AVRO_BOOLEAN)
        return fail(c, WEIR_ERANGE, "%s is not a timestamp", c->fmt->time.text);
    rc = value_i64(c, &v, &c->fmt->time, &n);
    if (rc != WEIR_OK)
        return rc;
    if (n == INT64_MIN || n == INT64_MAX)
        return fail(c, WEIR_ERANGE, "%s is out of range", c->fmt->time.text);
    /* Floor division, so negative times round down like positive ones. */
    *ts = n / unit - ((n % unit) < 0);
    return WEIR_OK;
}

WEIR_EXTERN int weir_avro_to_json(weir_avro_codec_t *c, weir_buf_t *json)
{
    if (c == NULL || json == NULL)
        return WEIR_EINVAL;
    if (c->cur == NULL)
        return fail(c, WEIR_EINVAL, "nothing decoded");
    free(c->json);
    c->json = NULL;
    if (avro_value_to_json(c->cur, 1, &c->json) != 0 || c->json == NULL)
        return fail(c, WEIR_ENOMEM, "avro: %s", avro_strerror());
    *json = WEIR_BUF(c->json, strlen(c->json));
    return WEIR_OK;
}

/* Writes value v into c->out, after the framing when the format asks. */
static int encode_value(weir_avro_codec_t *c, avro_value_t *v, int framed,
                        weir_buf_t *out)
{
    avro_writer_t wr;
    size_t size;
    size_t head = 0;
    int32_t id = c->fmt->schema_id;

    if (avro_value_sizeof(v, &size) != 0)
        return fail(c, WEIR_ECODEC, "avro: %s", avro_strerror());
    if (framed && id >= 0)
        head = 5;
    c->out.len = 0;
    if (bytes_reserve(&c->out, head + size + 1) != WEIR_OK)
        return fail(c, WEIR_ENOMEM, "out of memory");
    if (head) {
        c->out.data[0] = 0;
        c->out.data[1] = (char)((uint32_t)id >> 24);
        c->out.data[2] = (char)((uint32_t)id >> 16);
        c->out.data[3] = (char)((uint32_t)id >> 8);
        c->out.data[4] = (char)(uint32_t)id;
    }
    wr = avro_writer_memory(c->out.data + head, (int64_t)size);
    if (wr == NULL)
        return fail(c, WEIR_ENOMEM, "out of memory");
    if (avro_value_write(wr, v) != 0) {
        avro_writer_free(wr);
        return fail(c, WEIR_ECODEC, "avro: %s", avro_strerror());
    }
    avro_writer_free(wr);
    c->out.len = head + size;
    *out = WEIR_BUF(c->out.data, c->out.len);
    return WEIR_OK;
}

WEIR_EXTERN int weir_avro_encode_json(weir_avro_codec_t *c, weir_buf_t json,
                                      weir_buf_t *out)
{
    json_error_t jerr;
    json_t *j;
    int rc;

    if (c == NULL || out == NULL || json.data == NULL)
        return WEIR_EINVAL;
    c->err[0] = '\0';
    c->cur = NULL;
    if (!c->reader.ok)
        return fail(c, WEIR_EINVAL, "no reader schema to encode with");
    j = json_loadb(json.data, json.len, JSON_DECODE_ANY, &jerr);
    if (j == NULL)
        return fail(c, WEIR_ECODEC, "invalid JSON: %s", jerr.text);
    avro_value_reset(&c->reader.value);
    rc = from_json(c, &c->reader.value, j, &c->reader.meta, 0, 0);
    json_decref(j);
    if (rc != WEIR_OK)
        return rc;
    return encode_value(c, &c->reader.value, 1, out);
}

WEIR_EXTERN int weir_avro_encode_decoded(weir_avro_codec_t *c, weir_buf_t *out)
{
    if (c == NULL || out == NULL)
        return WEIR_EINVAL;
    if (c->cur == NULL)
        return fail(c, WEIR_EINVAL, "nothing decoded");
    return encode_value(c, c->cur, 0, out);
}

/* ------------------------------------------------------------------ *
 * ## Records
 * ------------------------------------------------------------------ */

WEIR_EXTERN int weir_avro_apply(weir_avro_codec_t *c, weir_record_t *rec,
                                char *errstr, size_t errstr_size)
{
    weir_buf_t key;
    weir_ts_t ts = 0;
    int rc = WEIR_OK;

    if (c == NULL || rec == NULL) {
        set_err(errstr, errstr_size, "invalid argument");
        return WEIR_EINVAL;
    }
    if (c->cur == NULL) {
        set_err(errstr, errstr_size, "avro: nothing decoded");
        return WEIR_EINVAL;
    }
    if (c->fmt->time.n > 0)
        rc = weir_avro_time(c, &ts);
    if (rc == WEIR_OK && c->fmt->nkeys > 0) {
        rc = weir_avro_key(c, &key);
        if (rc == WEIR_OK)
            rc = weir_record_add_header(rec, WEIR_AVRO_HDR_KEY, key);
        if (rc == WEIR_ENOMEM)
            fail(c, rc, "out of memory");
    }
    if (rc != WEIR_OK) {
        set_err(errstr, errstr_size, "avro: %s", c->err);
        return rc;
    }
    if (c->fmt->time.n > 0)
        weir_record_set_ts(rec, ts);
    return WEIR_OK;
}

WEIR_EXTERN int weir_avro_extract(weir_avro_codec_t *c, weir_record_t *rec,
                                  char *errstr, size_t errstr_size)
{
    int rc;

    if (c == NULL || rec == NULL) {
        set_err(errstr, errstr_size, "invalid argument");
        return WEIR_EINVAL;
    }
    rc = weir_avro_decode(c, weir_record_value(rec));
    if (rc != WEIR_OK) {
        set_err(errstr, errstr_size, "avro: %s", c->err);
        return rc;
    }
    return weir_avro_apply(c, rec, errstr, errstr_size);
}

WEIR_EXTERN int weir_avro_key_fn(const weir_record_t *rec, weir_buf_t *key,
                                 void *opaque)
{
    (void)opaque;
    if (rec == NULL || key == NULL)
        return WEIR_EINVAL;
    if (weir_record_is_replay(rec)) {
        *key = weir_record_key(rec); /* a changelog entry carries its key */
        return WEIR_OK;
    }
    return weir_record_header(rec, WEIR_AVRO_HDR_KEY, key);
}
