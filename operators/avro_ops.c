/*
 * avro_ops.c - Avro operators: the extract operator, the object container
 * file source and the exactly-once container file sink.
 *
 * How it works
 *
 *   extract: one codec per subtask (codecs are single-threaded). Each
 *   record is decoded; on success a copy gets its timestamp from the time
 *   field and the WEIR_AVRO_HDR_KEY header, and is emitted; on failure the
 *   input goes to WEIR_TAG_ERRORS with the codec's reason.
 *
 *   file source: Avro-C's container reader yields generic values of the
 *   file's schema. Each value is written back as a plain binary datum,
 *   decoded by a codec made for (file schema -> format's reader schema),
 *   and emitted with the reader-schema encoding as its value. The
 *   position is the index of the next datum; restore re-opens the file and
 *   skips that many (container files have no index to seek by).
 *
 *   file sink: without checkpointing, an Avro-C container writer appends
 *   every datum directly. With checkpointing, datums are kept in memory
 *   per checkpoint epoch and travel inside the sink's snapshot until the
 *   checkpoint completes; then they are appended to the file in one go
 *   and the file is fsynced. The snapshot also holds the file length after
 *   the last publication, so restore can truncate away anything a later,
 *   uncompleted checkpoint appended (or a half-done append), then publish
 *   the restored parts again. The appended bytes are a pure function of
 *   the datums, so publishing twice after truncation gives the same file.
 *
 * Invariants
 *   - sink: parts[] holds sealed, unpublished epochs in increasing id;
 *     `size` is the file length once every part with id <= published is
 *     in it; the open buffer holds records after the last barrier.
 *   - source: `next` datums have been emitted (or sent to errors).
 */
#include <avro.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/avro.h>
#include <weir/operator.h>

#define POLL_DATUMS  1024
#define SNAP_VERSION 1

/* ------------------------------------------------------------------ *
 * ## Extract operator
 * ------------------------------------------------------------------ */

struct extract {
    weir_avro_codec_t *codec;
};

static int extract_open(weir_ctx_t *ctx, void *st)
{
    struct extract *x = st;
    char err[256];

    x->codec = weir_avro_codec_new(weir_ctx_opaque(ctx), err, sizeof(err));
    if (x->codec == NULL)
        return weir_ctx_error(ctx, WEIR_ECODEC, "avro: %s", err);
    return WEIR_OK;
}

static int extract_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct extract *x = st;
    weir_record_t *rec;
    char err[300];
    int rc;

    rec = weir_record_copy(in);
    if (rec == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    rc = weir_avro_extract(x->codec, rec, err, sizeof(err));
    if (rc == WEIR_ENOMEM) {
        weir_record_destroy(rec);
        return weir_ctx_error(ctx, rc, "out of memory");
    }
    if (rc != WEIR_OK) {
        weir_record_destroy(rec);
        return weir_forward_error(ctx, in, "%s", err);
    }
    return weir_emit(ctx, rec);
}

static void extract_close(weir_ctx_t *ctx, void *st)
{
    struct extract *x = st;

    (void)ctx;
    weir_avro_codec_destroy(x->codec);
    x->codec = NULL;
}

static const weir_operator_def_t avro_extract_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "avro_extract",
    .state_size = sizeof(struct extract),
    .open = extract_open,
    .process = extract_process,
    .close = extract_close,
};

WEIR_EXTERN weir_stream_t *
weir_stream_avro_extract(weir_stream_t *s, const weir_avro_format_t *fmt)
{
    if (s == NULL)
        return NULL;
    if (fmt == NULL)
        return weir_stream_error(s, WEIR_EINVAL, "avro extract: no format");
    return weir_stream_apply(s, &avro_extract_def, fmt);
}

/* ------------------------------------------------------------------ *
 * ## Helpers
 * ------------------------------------------------------------------ */

/* The JSON text of a schema (weir_malloc'd). */
static char *schema_json(avro_schema_t schema)
{
    size_t cap = 4096;
    char *buf = NULL;
    char *p;
    avro_writer_t w;
    int64_t n;

    for (;;) {
        p = weir_realloc(buf, cap);
        if (p == NULL) {
            weir_free(buf);
            return NULL;
        }
        buf = p;
        w = avro_writer_memory(buf, (int64_t)cap - 1);
        if (w == NULL) {
            weir_free(buf);
            return NULL;
        }
        if (avro_schema_to_json(schema, w) == 0) {
            n = avro_writer_tell(w);
            avro_writer_free(w);
            buf[n] = '\0';
            return buf;
        }
        avro_writer_free(w);
        if (cap > (64u << 20)) {
            weir_free(buf);
            return NULL;
        }
        cap *= 2;
    }
}

/* ------------------------------------------------------------------ *
 * ## Container file source
 * ------------------------------------------------------------------ */

struct file_source_args {
    char *path;
    const weir_avro_format_t *fmt;
};

struct avro_source {
    avro_file_reader_t reader;
    avro_schema_t schema; /* the file's schema            */
    avro_value_iface_t *iface;
    avro_value_t value;
    int have_value;
    weir_avro_format_t *own_fmt; /* when no reader format given  */
    weir_avro_codec_t *codec;
    char *buf; /* encoded datum                */
    size_t cap;
    uint64_t next; /* datums consumed              */
    int done;
};

static void source_free(struct avro_source *s)
{
    if (s->have_value)
        avro_value_decref(&s->value);
    if (s->iface != NULL)
        avro_value_iface_decref(s->iface);
    if (s->schema != NULL)
        avro_schema_decref(s->schema);
    if (s->reader != NULL)
        avro_file_reader_close(s->reader);
    weir_avro_codec_destroy(s->codec);
    weir_avro_format_destroy(s->own_fmt);
    weir_free(s->buf);
    memset(s, 0, sizeof(*s));
}

static int source_open_file(weir_ctx_t *ctx, struct avro_source *s)
{
    const struct file_source_args *a = weir_ctx_opaque(ctx);
    const weir_avro_format_t *fmt = a->fmt;
    char err[256];
    char *json;

    if (avro_file_reader(a->path, &s->reader) != 0) {
        s->reader = NULL;
        return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot open %s: %s",
                              a->path, avro_strerror());
    }
    s->schema = avro_file_reader_get_writer_schema(s->reader);
    s->iface = avro_generic_class_from_schema(s->schema);
    if (s->iface == NULL || avro_generic_value_new(s->iface, &s->value) != 0)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "avro: %s", avro_strerror());
    s->have_value = 1;
    json = schema_json(s->schema);
    if (json == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    if (fmt == NULL || weir_avro_format_schema(fmt) == NULL) {
        s->own_fmt = weir_avro_format_new_json(json, NULL, err, sizeof(err));
        if (s->own_fmt == NULL) {
            weir_free(json);
            return weir_ctx_error(ctx, WEIR_ECODEC, "avro: %s", err);
        }
    }
    s->codec = weir_avro_codec_new_writer(s->own_fmt ? s->own_fmt : fmt, json,
                                          err, sizeof(err));
    weir_free(json);
    if (s->codec == NULL)
        return weir_ctx_error(ctx, WEIR_ECODEC, "avro: %s", err);
    return WEIR_OK;
}

static int source_open(weir_ctx_t *ctx, void *st)
{
    struct avro_source *s = st;
    int rc;

    rc = source_open_file(ctx, s);
    if (rc != WEIR_OK)
        source_free(s);
    return rc;
}

/* Reads the next datum into s->value: 1 read, 0 at end, negative error. */
static int source_read(weir_ctx_t *ctx, struct avro_source *s)
{
    int rc;

    avro_value_reset(&s->value);
    rc = avro_file_reader_read_value(s->reader, &s->value);
    if (rc == EOF)
        return 0;
    if (rc != 0)
        return weir_ctx_error(ctx, WEIR_ECODEC,
                              "avro: corrupt container file after datum "
                              "%llu: %s",
                              (unsigned long long)s->next, avro_strerror());
    return 1;
}

/* Encodes s->value as a plain datum into s->buf. */
static int source_encode(weir_ctx_t *ctx, struct avro_source *s, size_t *len)
{
    avro_writer_t w;
    size_t size;
    char *p;

    if (avro_value_sizeof(&s->value, &size) != 0)
        return weir_ctx_error(ctx, WEIR_ECODEC, "avro: %s", avro_strerror());
    if (size + 1 > s->cap) {
        p = weir_realloc(s->buf, size + 1);
        if (p == NULL)
            return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
        s->buf = p;
        s->cap = size + 1;
    }
    w = avro_writer_memory(s->buf, (int64_t)size);
    if (w == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    if (avro_value_write(w, &s->value) != 0) {
        avro_writer_free(w);
        return weir_ctx_error(ctx, WEIR_ECODEC, "avro: %s", avro_strerror());
    }
    avro_writer_free(w);
    *len = size;
    return WEIR_OK;
}

static int source_emit(weir_ctx_t *ctx, struct avro_source *s)
{
    weir_record_t *rec;
    weir_buf_t out;
    size_t len = 0;
    char err[300];
    int rc;

    rc = source_encode(ctx, s, &len);
    if (rc != WEIR_OK)
        return rc;
    rc = weir_avro_decode(s->codec, WEIR_BUF(s->buf, len));
    if (rc == WEIR_OK)
        rc = weir_avro_encode_decoded(s->codec, &out);
    if (rc != WEIR_OK)
        out = WEIR_BUF(s->buf, len);
    rec = weir_record_new(ctx, WEIR_BUF_NULL, out, WEIR_TS_MIN, WEIR_COPY);
    if (rec == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    weir_record_set_position(rec, -1, (int64_t)s->next);
    if (rc == WEIR_OK)
        rc = weir_avro_apply(s->codec, rec, err, sizeof(err));
    else
        snprintf(err, sizeof(err), "avro: %s",
                 weir_avro_codec_errstr(s->codec));
    if (rc == WEIR_ENOMEM) {
        weir_record_destroy(rec);
        return weir_ctx_error(ctx, rc, "out of memory");
    }
    if (rc != WEIR_OK) {
        rc = weir_record_add_header(rec, WEIR_HDR_ERROR, WEIR_BUF_STR(err));
        if (rc != WEIR_OK) {
            weir_record_destroy(rec);
            return weir_ctx_error(ctx, rc, "out of memory");
        }
        return weir_emit_to(ctx, WEIR_TAG_ERRORS, rec);
    }
    return weir_emit(ctx, rec);
}

static int source_poll(weir_ctx_t *ctx, void *st)
{
    struct avro_source *s = st;
    int i;
    int rc;

    if (s->done)
        return WEIR_DONE;
    for (i = 0; i < POLL_DATUMS; i++) {
        rc = source_read(ctx, s);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            s->done = 1;
            return i > 0 ? WEIR_OK : WEIR_DONE;
        }
        rc = source_emit(ctx, s);
        s->next++;
        if (rc != WEIR_OK)
            return rc;
    }
    return WEIR_OK;
}

static int source_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                           uint64_t checkpoint_id)
{
    struct avro_source *s = st;

    (void)ctx;
    (void)checkpoint_id;
    return weir_write_u64(w, s->next);
}

static int source_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct avro_source *s = st;
    uint64_t next;
    uint64_t i;
    int rc;

    rc = weir_read_u64(r, &next);
    if (rc != WEIR_OK)
        return rc;
    for (i = s->next; i < next; i++) {
        rc = source_read(ctx, s);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return weir_ctx_error(ctx, WEIR_ECORRUPT,
                                  "avro: the file has %llu datums, the "
                                  "checkpoint expects at least %llu",
                                  (unsigned long long)i,
                                  (unsigned long long)next);
    }
    s->next = next;
    return WEIR_OK;
}

static void source_close(weir_ctx_t *ctx, void *st)
{
    (void)ctx;
    source_free(st);
}

static const weir_operator_def_t avro_source_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "avro_file_source",
    .flags = WEIR_OP_F_SINGLE,
    .state_size = sizeof(struct avro_source),
    .open = source_open,
    .poll = source_poll,
    .snapshot = source_snapshot,
    .restore = source_restore,
    .close = source_close,
};

static void free_source_args(void *ptr)
{
    struct file_source_args *a = ptr;

    weir_free(a->path);
    weir_free(a);
}

WEIR_EXTERN weir_stream_t *weir_avro_source_file(weir_pipeline_t *p,
                                                 const char *path,
                                                 const weir_avro_format_t *fmt)
{
    struct file_source_args *a;
    size_t n;

    if (p == NULL)
        return NULL;
    if (path == NULL)
        return weir_stream_error(
            weir_stream_source(p, "avro_file_source", &avro_source_def, NULL),
            WEIR_EINVAL, "avro file source: no path");
    a = weir_calloc(1, sizeof(*a));
    n = strlen(path) + 1;
    if (a == NULL || (a->path = weir_malloc(n)) == NULL) {
        weir_free(a);
        return weir_stream_error(
            weir_stream_source(p, "avro_file_source", &avro_source_def, NULL),
            WEIR_ENOMEM, "out of memory");
    }
    memcpy(a->path, path, n);
    a->fmt = fmt;
    if (weir_pipeline_attach(p, a, free_source_args) != WEIR_OK)
        return weir_stream_error(
            weir_stream_source(p, "avro_file_source", &avro_source_def, NULL),
            WEIR_ENOMEM, "out of memory");
    return weir_stream_source(p, "avro_file_source", &avro_source_def, a);
}

/* ------------------------------------------------------------------ *
 * ## Container file sink
 * ------------------------------------------------------------------ */

struct file_sink_args {
    char *path;
    const weir_avro_format_t *fmt;
};

/* Datums of one checkpoint epoch: [u32 length][datum]... */
struct part {
    uint64_t id;
    char *data;
    size_t len;
    size_t cap;
};

struct avro_sink {
    const struct file_sink_args *a;
    weir_avro_codec_t *codec;
    avro_schema_t schema;      /* the file's schema        */
    avro_file_writer_t direct; /* without checkpointing    */
    int eo;                    /* exactly once             */
    int fresh;                 /* file not yet reset       */
    struct part open;          /* records since last barrier */
    struct part *parts;        /* sealed, unpublished      */
    size_t nparts;
    uint64_t published;
    int64_t size;     /* file length when published */
    uint64_t skipped; /* undecodable values       */
};

static void part_free(struct part *pt)
{
    weir_free(pt->data);
    memset(pt, 0, sizeof(*pt));
}

static int part_append(struct part *pt, const void *data, size_t len)
{
    size_t need = pt->len + 4 + len;
    size_t cap;
    char *p;

    if (len > UINT32_MAX)
        return WEIR_ERANGE;
    if (need > pt->cap) {
        cap = pt->cap ? pt->cap : 4096;
        while (cap < need)
            cap *= 2;
        p = weir_realloc(pt->data, cap);
        if (p == NULL)
            return WEIR_ENOMEM;
        pt->data = p;
        pt->cap = cap;
    }
    pt->data[pt->len] = (char)(len & 0xff);
    pt->data[pt->len + 1] = (char)((len >> 8) & 0xff);
    pt->data[pt->len + 2] = (char)((len >> 16) & 0xff);
    pt->data[pt->len + 3] = (char)((len >> 24) & 0xff);
    memcpy(pt->data + pt->len + 4, data, len);
    pt->len = need;
    return WEIR_OK;
}

static int64_t file_size(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) != 0)
        return -1;
    return (int64_t)sb.st_size;
}

static int fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    int rc;

    if (fd < 0)
        return WEIR_EIO;
    rc = fsync(fd) == 0 ? WEIR_OK : WEIR_EIO;
    close(fd);
    return rc;
}

/* Creates (or re-creates) an empty container file with the header. */
static int sink_create(weir_ctx_t *ctx, struct avro_sink *k)
{
    avro_file_writer_t w;

    unlink(k->a->path);
    if (avro_file_writer_create(k->a->path, k->schema, &w) != 0)
        return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot create %s: %s",
                              k->a->path, avro_strerror());
    if (avro_file_writer_close(w) != 0)
        return weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s", k->a->path,
                              avro_strerror());
    if (fsync_path(k->a->path) != WEIR_OK)
        return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot sync %s",
                              k->a->path);
    k->size = file_size(k->a->path);
    return k->size < 0 ? weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s",
                                        k->a->path, strerror(errno))
                       : WEIR_OK;
}

/* Appends one part's datums to the file, which must be `k->size` long. */
static int sink_publish(weir_ctx_t *ctx, struct avro_sink *k,
                        const struct part *pt)
{
    avro_file_writer_t w;
    size_t off = 0;
    uint32_t len;
    const unsigned char *d;
    int rc = WEIR_OK;

    if (truncate(k->a->path, (off_t)k->size) != 0)
        return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot truncate %s: %s",
                              k->a->path, strerror(errno));
    if (pt->len == 0)
        return WEIR_OK;
    if (avro_file_writer_open(k->a->path, &w) != 0)
        return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot append to %s: %s",
                              k->a->path, avro_strerror());
    while (off + 4 <= pt->len) {
        d = (const unsigned char *)pt->data + off;
        len = (uint32_t)d[0] | ((uint32_t)d[1] << 8) | ((uint32_t)d[2] << 16) |
              ((uint32_t)d[3] << 24);
        if (avro_file_writer_append_encoded(w, d + 4, len) != 0) {
            rc = weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s", k->a->path,
                                avro_strerror());
            break;
        }
        off += 4 + (size_t)len;
    }
    if (avro_file_writer_close(w) != 0 && rc == WEIR_OK)
        rc = weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s", k->a->path,
                            avro_strerror());
    if (rc == WEIR_OK && fsync_path(k->a->path) != WEIR_OK)
        rc = weir_ctx_error(ctx, WEIR_EIO, "avro: cannot sync %s", k->a->path);
    if (rc == WEIR_OK) {
        k->size = file_size(k->a->path);
        if (k->size < 0)
            rc = weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s", k->a->path,
                                strerror(errno));
    }
    return rc;
}

/* A fresh (not restored) run starts from an empty file. Lazy, because
 * restore() runs after open(). */
static int sink_reset(weir_ctx_t *ctx, struct avro_sink *k)
{
    int rc;

    if (!k->fresh)
        return WEIR_OK;
    k->fresh = 0;
    if (!k->eo)
        return WEIR_OK;
    rc = sink_create(ctx, k);
    return rc;
}

static int sink_open(weir_ctx_t *ctx, void *st)
{
    struct avro_sink *k = st;
    char err[256];
    const char *json;

    k->a = weir_ctx_opaque(ctx);
    json = weir_avro_format_schema(k->a->fmt);
    if (json == NULL ||
        avro_schema_from_json_length(json, strlen(json), &k->schema) != 0)
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "avro sink: the format has no usable schema");
    k->codec = weir_avro_codec_new(k->a->fmt, err, sizeof(err));
    if (k->codec == NULL) {
        avro_schema_decref(k->schema);
        return weir_ctx_error(ctx, WEIR_ECODEC, "avro: %s", err);
    }
    k->eo = weir_ctx_checkpoint_dir(ctx) != NULL;
    k->fresh = 1;
    if (!k->eo) {
        unlink(k->a->path);
        if (avro_file_writer_create(k->a->path, k->schema, &k->direct) != 0) {
            weir_avro_codec_destroy(k->codec);
            avro_schema_decref(k->schema);
            return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot create %s: %s",
                                  k->a->path, avro_strerror());
        }
    }
    return WEIR_OK;
}

static int sink_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct avro_sink *k = st;
    weir_buf_t datum;
    int rc;

    rc = sink_reset(ctx, k);
    if (rc != WEIR_OK)
        return rc;
    rc = weir_avro_decode(k->codec, weir_record_value(in));
    if (rc == WEIR_OK)
        rc = weir_avro_encode_decoded(k->codec, &datum);
    if (rc == WEIR_ENOMEM)
        return weir_ctx_error(ctx, rc, "out of memory");
    if (rc != WEIR_OK) {
        k->skipped++;
        return WEIR_OK;
    }
    if (!k->eo) {
        if (avro_file_writer_append_encoded(k->direct, datum.data, datum.len) !=
            0)
            return weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s", k->a->path,
                                  avro_strerror());
        return WEIR_OK;
    }
    rc = part_append(&k->open, datum.data, datum.len);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "avro sink: cannot buffer a datum");
    return WEIR_OK;
}

static int sink_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                         uint64_t checkpoint_id)
{
    struct avro_sink *k = st;
    struct part *p;
    size_t i;
    int rc;

    rc = sink_reset(ctx, k);
    if (rc != WEIR_OK || !k->eo)
        return rc;
    /* Seal the open buffer as the part of this checkpoint. */
    p = weir_realloc(k->parts, (k->nparts + 1) * sizeof(*p));
    if (p == NULL)
        return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
    k->parts = p;
    k->parts[k->nparts] = k->open;
    k->parts[k->nparts].id = checkpoint_id;
    k->nparts++;
    memset(&k->open, 0, sizeof(k->open));
    rc = weir_write_u64(w, SNAP_VERSION);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, k->published);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, k->size);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, k->nparts);
    for (i = 0; rc == WEIR_OK && i < k->nparts; i++) {
        rc = weir_write_u64(w, k->parts[i].id);
        if (rc == WEIR_OK)
            rc = weir_write_buf(w, WEIR_BUF(k->parts[i].data, k->parts[i].len));
    }
    return rc;
}

/* Publishes every sealed part with id <= upto, in order. */
static int sink_publish_upto(weir_ctx_t *ctx, struct avro_sink *k,
                             uint64_t upto)
{
    size_t i;
    size_t done = 0;
    int rc = WEIR_OK;

    for (i = 0; i < k->nparts && k->parts[i].id <= upto; i++) {
        rc = sink_publish(ctx, k, &k->parts[i]);
        if (rc != WEIR_OK)
            break;
        k->published = k->parts[i].id;
        done++;
    }
    for (i = 0; i < done; i++)
        part_free(&k->parts[i]);
    memmove(k->parts, k->parts + done, (k->nparts - done) * sizeof(*k->parts));
    k->nparts -= done;
    return rc;
}

static int sink_complete(weir_ctx_t *ctx, void *st, uint64_t checkpoint_id)
{
    struct avro_sink *k = st;
    int rc;

    rc = sink_reset(ctx, k);
    if (rc != WEIR_OK || !k->eo)
        return rc;
    return sink_publish_upto(ctx, k, checkpoint_id);
}

static int sink_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct avro_sink *k = st;
    uint64_t version;
    uint64_t n;
    uint64_t i;
    uint64_t id;
    weir_buf_t b;
    int64_t cur;
    int rc;

    k->fresh = 0;
    rc = weir_read_u64(r, &version);
    if (rc == WEIR_OK && version != SNAP_VERSION)
        rc = WEIR_ECORRUPT;
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &k->published);
    if (rc == WEIR_OK)
        rc = weir_read_i64(r, &k->size);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &n);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "avro sink: bad snapshot");
    for (i = 0; i < n; i++) {
        struct part *p;

        rc = weir_read_u64(r, &id);
        if (rc == WEIR_OK)
            rc = weir_read_buf(r, &b);
        if (rc != WEIR_OK)
            return weir_ctx_error(ctx, rc, "avro sink: bad snapshot");
        p = weir_realloc(k->parts, (k->nparts + 1) * sizeof(*p));
        if (p == NULL)
            return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
        k->parts = p;
        p = &k->parts[k->nparts];
        memset(p, 0, sizeof(*p));
        p->id = id;
        if (b.len > 0) {
            p->data = weir_malloc(b.len);
            if (p->data == NULL)
                return weir_ctx_error(ctx, WEIR_ENOMEM, "out of memory");
            memcpy(p->data, b.data, b.len);
            p->len = p->cap = b.len;
        }
        k->nparts++;
    }
    /* The file must hold exactly what the checkpoint had published. */
    cur = file_size(k->a->path);
    if (k->size == 0 || cur < k->size) {
        if (k->size != 0)
            return weir_ctx_error(ctx, WEIR_ECORRUPT,
                                  "avro sink: %s is missing or shorter "
                                  "than the checkpoint says",
                                  k->a->path);
        rc = sink_create(ctx, k);
        if (rc != WEIR_OK)
            return rc;
    } else if (cur > k->size && truncate(k->a->path, (off_t)k->size) != 0) {
        return weir_ctx_error(ctx, WEIR_EIO, "avro: cannot truncate %s",
                              k->a->path);
    }
    /* The restored checkpoint is complete: publish its parts now. */
    return sink_publish_upto(ctx, k, UINT64_MAX);
}

static int sink_end(weir_ctx_t *ctx, void *st)
{
    struct avro_sink *k = st;
    int rc;

    rc = sink_reset(ctx, k);
    if (rc != WEIR_OK)
        return rc;
    if (k->direct != NULL && avro_file_writer_flush(k->direct) != 0)
        return weir_ctx_error(ctx, WEIR_EIO, "avro: %s: %s", k->a->path,
                              avro_strerror());
    return WEIR_OK;
}

static void sink_close(weir_ctx_t *ctx, void *st)
{
    struct avro_sink *k = st;
    size_t i;

    (void)ctx;
    if (k->direct != NULL)
        avro_file_writer_close(k->direct);
    for (i = 0; i < k->nparts; i++)
        part_free(&k->parts[i]);
    weir_free(k->parts);
    part_free(&k->open);
    weir_avro_codec_destroy(k->codec);
    if (k->schema != NULL)
        avro_schema_decref(k->schema);
    memset(k, 0, sizeof(*k));
}

static const weir_operator_def_t avro_sink_def = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "avro_file_sink",
    .flags = WEIR_OP_F_SINGLE,
    .state_size = sizeof(struct avro_sink),
    .open = sink_open,
    .process = sink_process,
    .snapshot = sink_snapshot,
    .restore = sink_restore,
    .on_checkpoint_complete = sink_complete,
    .on_end = sink_end,
    .close = sink_close,
};

static void free_sink_args(void *ptr)
{
    struct file_sink_args *a = ptr;

    weir_free(a->path);
    weir_free(a);
}

WEIR_EXTERN int weir_avro_sink_file(weir_stream_t *s, const char *path,
                                    const weir_avro_format_t *fmt)
{
    struct file_sink_args *a;
    size_t n;

    if (s == NULL)
        return WEIR_EINVAL;
    if (path == NULL || fmt == NULL || weir_avro_format_schema(fmt) == NULL) {
        weir_stream_error(s, WEIR_EINVAL,
                          "avro file sink: needs a path and a format with "
                          "a reader schema");
        return WEIR_EINVAL;
    }
    a = weir_calloc(1, sizeof(*a));
    n = strlen(path) + 1;
    if (a == NULL || (a->path = weir_malloc(n)) == NULL) {
        weir_free(a);
        weir_stream_error(s, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    memcpy(a->path, path, n);
    a->fmt = fmt;
    if (weir_pipeline_attach(weir_stream_pipeline(s), a, free_sink_args) !=
        WEIR_OK) {
        weir_stream_error(s, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    return weir_stream_sink(s, &avro_sink_def, a);
}
