/*
 * file_source.c - weir_source_file_lines(): a source that reads a text
 * file line by line.
 *
 * One record per line: value = the line's bytes without the "\n" that
 * ends it, no key, ts WEIR_TS_MIN (a parse operator stamps event time),
 * partition -1, offset = the byte offset where the line starts. Every
 * byte other than that "\n" is kept: a "\r" of a CRLF file stays in the
 * value, NUL bytes and invalid UTF-8 pass through (downstream decides), so
 * writing value + "\n" back reproduces the file. A last line without a
 * newline is a line; an empty file has none.
 *
 * How it works
 *   The file is read with read(2) into a buffer that grows to hold the
 *   longest line seen (lines of any length, e.g. 10 MB, work). `start`
 *   is the first byte of the next line, `scan` how far we already looked
 *   for a newline (so a long line is scanned once, not once per refill).
 *   Each poll emits at most POLL_LINES lines or about POLL_BYTES bytes,
 *   then returns, so checkpoint barriers get in between polls; it returns
 *   WEIR_DONE when a call finds nothing left.
 *
 * Snapshot: the byte offset of the next line to emit and the number of
 * lines emitted. Restore seeks there and forgets the buffer; a file that
 * is now shorter than the offset is corrupt for this checkpoint.
 *
 * Invariants
 *   - offset == file position of buf[start]; bytes before it have been
 *     emitted, bytes from it on have not.
 *   - start <= scan <= end <= cap; no '\n' in buf[start, scan).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/operator.h>

#define POLL_LINES 1024
#define POLL_BYTES (4u << 20)
#define READ_CHUNK (64u << 10)

struct file_source {
    int fd;         /* the input file, -1 when closed         */
    char *buf;      /* read buffer (weir_malloc)              */
    size_t cap;     /* its capacity                           */
    size_t start;   /* first byte of the next line            */
    size_t scan;    /* no newline in [start, scan)            */
    size_t end;     /* bytes read so far                      */
    int eof;        /* read() returned 0                      */
    int64_t offset; /* file offset of buf[start]              */
    uint64_t lines; /* lines emitted since the start of file  */
};

static const char *src_path(weir_ctx_t *ctx)
{
    return weir_ctx_opaque(ctx);
}

static int src_open(weir_ctx_t *ctx, void *st)
{
    struct file_source *fs = st;
    const char *path = src_path(ctx);
    struct stat sb;

    fs->fd = -1;
    if (path == NULL)
        return weir_ctx_error(ctx, WEIR_EINVAL, "file source has no path");
    fs->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fs->fd < 0)
        return weir_ctx_error(ctx, WEIR_EIO, "cannot open input \"%s\": %s",
                              path, strerror(errno));
    if (fstat(fs->fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        close(fs->fd);
        fs->fd = -1;
        return weir_ctx_error(
            ctx, WEIR_EIO, "cannot read input \"%s\": it is a directory", path);
    }
    fs->buf = weir_malloc(READ_CHUNK);
    if (fs->buf == NULL) {
        close(fs->fd);
        fs->fd = -1;
        return WEIR_ENOMEM;
    }
    fs->cap = READ_CHUNK;
    return WEIR_OK;
}

static void src_close(weir_ctx_t *ctx, void *st)
{
    struct file_source *fs = st;

    (void)ctx;
    if (fs->fd >= 0)
        close(fs->fd);
    fs->fd = -1;
    weir_free(fs->buf);
    fs->buf = NULL;
}

/* Makes room for at least READ_CHUNK more bytes: drops emitted bytes,
 * then grows the buffer. */
static int make_room(struct file_source *fs)
{
    size_t keep = fs->end - fs->start;
    size_t cap;
    char *nb;

    if (fs->start > 0) {
        memmove(fs->buf, fs->buf + fs->start, keep);
        fs->scan -= fs->start;
        fs->end = keep;
        fs->start = 0;
    }
    if (fs->cap - fs->end >= READ_CHUNK)
        return WEIR_OK;
    cap = fs->cap * 2;
    while (cap - fs->end < READ_CHUNK)
        cap *= 2;
    nb = weir_realloc(fs->buf, cap);
    if (nb == NULL)
        return WEIR_ENOMEM;
    fs->buf = nb;
    fs->cap = cap;
    return WEIR_OK;
}

/* Reads more bytes; sets eof at the end of the file. */
static int refill(weir_ctx_t *ctx, struct file_source *fs)
{
    ssize_t n;
    int rc;

    rc = make_room(fs);
    if (rc != WEIR_OK)
        return rc;
    do {
        n = read(fs->fd, fs->buf + fs->end, fs->cap - fs->end);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return weir_ctx_error(ctx, WEIR_EIO, "cannot read input \"%s\": %s",
                              src_path(ctx), strerror(errno));
    if (n == 0)
        fs->eof = 1;
    fs->end += (size_t)n;
    return WEIR_OK;
}

/* Emits buf[start, start+len) as a line; `skip` bytes follow it (the
 * newline, or 0 for a last line without one). */
static int emit_line(weir_ctx_t *ctx, struct file_source *fs, size_t len,
                     size_t skip)
{
    weir_record_t *rec;
    int rc;

    rec =
        weir_record_new(ctx, WEIR_BUF_NULL, WEIR_BUF(fs->buf + fs->start, len),
                        WEIR_TS_MIN, WEIR_COPY);
    if (rec == NULL)
        return WEIR_ENOMEM;
    rc = weir_record_set_position(rec, -1, fs->offset);
    if (rc != WEIR_OK) {
        weir_record_destroy(rec);
        return rc;
    }
    fs->start += len + skip;
    fs->scan = fs->start;
    fs->offset += (int64_t)(len + skip);
    fs->lines++;
    return weir_emit(ctx, rec);
}

/*
 * Finds the next line. Returns 1 with *len and *skip set, 0 at the end of the
 * file, or a negative code.
 */
static int next_line(weir_ctx_t *ctx, struct file_source *fs, size_t *len,
                     size_t *skip)
{
    char *nl;
    int rc;

    for (;;) {
        nl = memchr(fs->buf + fs->scan, '\n', fs->end - fs->scan);
        if (nl != NULL) {
            *len = (size_t)(nl - (fs->buf + fs->start));
            *skip = 1;
            return 1;
        }
        fs->scan = fs->end;
        if (fs->eof) {
            *len = fs->end - fs->start;
            *skip = 0;
            return *len > 0;
        }
        rc = refill(ctx, fs);
        if (rc != WEIR_OK)
            return rc;
    }
}

static int src_poll(weir_ctx_t *ctx, void *st)
{
    struct file_source *fs = st;
    size_t bytes = 0;
    size_t lines;
    size_t len = 0;
    size_t skip = 0;
    int rc;

    for (lines = 0; lines < POLL_LINES && bytes < POLL_BYTES; lines++) {
        rc = next_line(ctx, fs, &len, &skip);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return lines > 0 ? WEIR_OK : WEIR_DONE;
        rc = emit_line(ctx, fs, len, skip);
        if (rc != WEIR_OK)
            return rc;
        bytes += len + skip;
    }
    return WEIR_OK;
}

static int src_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                        uint64_t checkpoint_id)
{
    struct file_source *fs = st;
    int rc;

    (void)ctx;
    (void)checkpoint_id;
    rc = weir_write_i64(w, fs->offset);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, fs->lines);
    return rc;
}

static int src_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct file_source *fs = st;
    int64_t offset = 0;
    uint64_t lines = 0;
    struct stat sb;
    int rc;

    rc = weir_read_i64(r, &offset);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &lines);
    if (rc != WEIR_OK)
        return rc;
    if (offset < 0)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "checkpointed input offset %lld is negative",
                              (long long)offset);
    if (fstat(fs->fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size < offset)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "input \"%s\" has %lld bytes, fewer than the "
                              "checkpointed offset %lld",
                              src_path(ctx), (long long)sb.st_size,
                              (long long)offset);
    if (lseek(fs->fd, (off_t)offset, SEEK_SET) < 0)
        return weir_ctx_error(ctx, WEIR_EIO, "cannot seek input \"%s\": %s",
                              src_path(ctx), strerror(errno));
    fs->start = fs->scan = fs->end = 0;
    fs->eof = 0;
    fs->offset = offset;
    fs->lines = lines;
    return WEIR_OK;
}

const weir_operator_def_t weir_op_file_lines_source = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "file_source",
    .flags = WEIR_OP_F_SINGLE,
    .state_size = sizeof(struct file_source),
    .open = src_open,
    .poll = src_poll,
    .snapshot = src_snapshot,
    .restore = src_restore,
    .close = src_close,
};

static void free_path(void *p)
{
    weir_free(p);
}

/* A poisoned source stream carrying err (the source needs a stream to
 * poison; it has no path, so it could never run anyway). */
static weir_stream_t *bad_source(weir_pipeline_t *p, int err, const char *msg)
{
    return weir_stream_error(
        weir_stream_source(p, "file_source", &weir_op_file_lines_source, NULL),
        err, msg);
}

weir_stream_t *weir_source_file_lines(weir_pipeline_t *p, const char *path)
{
    size_t n;
    char *copy;

    if (p == NULL)
        return NULL;
    if (path == NULL || path[0] == '\0')
        return bad_source(p, WEIR_EINVAL,
                          "weir_source_file_lines: path is NULL or empty");
    n = strlen(path) + 1;
    copy = weir_malloc(n);
    if (copy == NULL)
        return bad_source(p, WEIR_ENOMEM, "out of memory");
    memcpy(copy, path, n);
    if (weir_pipeline_attach(p, copy, free_path) != WEIR_OK)
        return bad_source(p, WEIR_ENOMEM, "out of memory");
    return weir_stream_source(p, "file_source", &weir_op_file_lines_source,
                              copy);
}
