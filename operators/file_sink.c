/*
 * file_sink.c - weir_sink_file_lines(): a sink writing each record's value
 * plus "\n" to a file, exactly once when checkpointing is on.
 *
 * Two modes, chosen at open by weir_ctx_checkpoint_dir():
 *
 *   direct (no checkpoint directory): the file is truncated at open and
 *   written through a 64 KiB buffer, flushed when full, at on_end and at
 *   close.
 *
 *   exactly once (checkpoint directory set): records never go to the file
 *   directly. DESIGN.md section 5, "Files".
 *
 * How exactly-once works
 *   Let F be the output ("out/unique.jsonl"). Pending data lives next to
 *   it, in hidden files of the same directory (same file system, so a
 *   rename publishes atomically and no copy crosses devices):
 *     .F.weir-open.part   records since the last barrier (the open part)
 *     .F.weir-<n>.part    the sealed part of checkpoint n
 *   - process: append value + "\n" to the open part (buffered).
 *   - snapshot(n): flush and fsync the open part and rename it to the part
 *     of n (fsync the directory). Record in the snapshot: the length F had
 *     when published up to then, and for every sealed part not yet
 *     published (n's and any older one whose checkpoint has not
 *     completed yet) its id, its file name and `after`, the length F will
 *     have once that part is published. Parts are published in order, so
 *     each part's `before` is the previous part's `after`.
 *   - on_checkpoint_complete(m): publish every sealed part with id <= m in
 *     order: when F is empty, rename the part onto F; otherwise truncate F
 *     to `before` (idempotent), append the part, fsync F, remove the part.
 *   - restore (from a completed checkpoint c): for each part of c's list,
 *     with S the current size of F: S >= after means it was published
 *     already (remove the part file if it is still there); otherwise F is
 *     truncated to `before` (this undoes a half-done append) and the part
 *     is published again. Then F is truncated to the length c expects
 *     (this drops whatever a later checkpoint that we are not restoring
 *     had published), and every other pending file of F is removed: open
 *     parts and parts of checkpoints that never completed.
 *   - a fresh run (not restored) truncates F and removes every pending
 *     file of F. It happens lazily, before the first record, snapshot,
 *     completion or end, because restore() runs after open().
 *   - close removes the open part (its records belong to no checkpoint;
 *     replay writes them again) and leaves sealed parts for restore.
 *   Whatever the moment of a crash (mid-append, between rename and
 *   unlink, before a completion arrives), restarting from the last
 *   completed checkpoint leaves F exactly as a run without the crash.
 *
 * Invariants
 *   - published <= sealed; parts[] holds the sealed, unpublished parts in
 *     id order with increasing `after`, the last one's `after` == sealed.
 *   - F's size == published whenever no publication is in progress.
 *   - In exactly-once mode, fd is the open part (or -1 when no record
 *     arrived since the last barrier); in direct mode, fd is F.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <weir.h>
#include <weir/json.h>
#include <weir/operator.h>

#include "fileio.h"

#define WBUF_CAP     (64u << 10)
#define COPY_CHUNK   (1u << 20)
#define SNAP_VERSION 1
#define OPEN_TAG     "open"
#define PART_SUFFIX  ".part"

struct part {
    uint64_t id;   /* checkpoint the part was sealed for    */
    int64_t after; /* length of F once the part is published */
};

struct file_sink {
    const char *path;   /* F (borrowed from the opaque)          */
    char *dir;          /* F's directory ("." when none)         */
    char *prefix;       /* ".<basename of F>.weir-"              */
    int eo;             /* exactly-once mode                     */
    int started;        /* fresh truncation done, or restored    */
    int fd;             /* see the invariants                    */
    char *wbuf;         /* write buffer                          */
    size_t wlen;        /* bytes in wbuf                         */
    int64_t open_bytes; /* bytes written to the open part        */
    int64_t published;  /* length of F, published parts included */
    int64_t sealed;     /* length of F once all parts are out    */
    struct part *parts; /* sealed, unpublished parts, by id      */
    size_t nparts;      /* number of them                        */
    size_t partcap;     /* capacity of parts                     */
};

/* ------------------------------------------------------------------ *
 * ## File helpers
 * ------------------------------------------------------------------ */

/* A weir_malloc'd "<dir>/<prefix><tag>.part". */
static char *part_path(const struct file_sink *fs, const char *tag)
{
    size_t n = strlen(fs->dir) + strlen(fs->prefix) + strlen(tag) +
               sizeof(PART_SUFFIX) + 2;
    char *p = weir_malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s%s%s", fs->dir, fs->prefix, tag, PART_SUFFIX);
    return p;
}

static char *sealed_path(const struct file_sink *fs, uint64_t id)
{
    char tag[24];

    snprintf(tag, sizeof(tag), "%" PRIu64, id);
    return part_path(fs, tag);
}

/* Size of F (0 when it does not exist), or -1. */
static int64_t final_size(const struct file_sink *fs)
{
    struct stat sb;

    if (stat(fs->path, &sb) == 0)
        return (int64_t)sb.st_size;
    return errno == ENOENT ? 0 : -1;
}

static int io_error(weir_ctx_t *ctx, const char *what, const char *path)
{
    return weir_ctx_error(ctx, WEIR_EIO, "cannot %s \"%s\": %s", what, path,
                          strerror(errno));
}

/* Splits F into its directory and the pending-file prefix. */
static int split_path(struct file_sink *fs)
{
    const char *slash = strrchr(fs->path, '/');
    const char *base = slash ? slash + 1 : fs->path;
    size_t dlen = slash ? (size_t)(slash - fs->path) : 0;
    size_t plen = strlen(base) + sizeof(".") + sizeof(".weir-");

    fs->dir = weir_malloc(dlen + 2);
    fs->prefix = weir_malloc(plen);
    if (fs->dir == NULL || fs->prefix == NULL)
        return WEIR_ENOMEM;
    if (slash == NULL)
        strcpy(fs->dir, ".");
    else if (dlen == 0)
        strcpy(fs->dir, "/");
    else {
        memcpy(fs->dir, fs->path, dlen);
        fs->dir[dlen] = '\0';
    }
    snprintf(fs->prefix, plen, ".%s.weir-", base);
    return WEIR_OK;
}

/* 1 when name is one of F's pending files: prefix, then "open" or a
 * checkpoint id, then ".part". */
static int is_pending(const struct file_sink *fs, const char *name)
{
    size_t pl = strlen(fs->prefix);
    const char *tag = name + pl;
    size_t tl;

    if (strncmp(name, fs->prefix, pl) != 0)
        return 0;
    tl = strlen(tag);
    if (tl <= sizeof(PART_SUFFIX) - 1 ||
        strcmp(tag + tl - (sizeof(PART_SUFFIX) - 1), PART_SUFFIX) != 0)
        return 0;
    tl -= sizeof(PART_SUFFIX) - 1;
    if (tl == sizeof(OPEN_TAG) - 1 && strncmp(tag, OPEN_TAG, tl) == 0)
        return 1;
    return strspn(tag, "0123456789") == tl;
}

/* Removes every pending file of F (open and sealed parts). */
static int remove_pending(weir_ctx_t *ctx, struct file_sink *fs)
{
    struct dirent *de;
    DIR *d;
    int fd;

    d = opendir(fs->dir);
    if (d == NULL)
        return io_error(ctx, "open directory", fs->dir);
    fd = dirfd(d);
    while ((de = readdir(d)) != NULL) {
        if (is_pending(fs, de->d_name) && unlinkat(fd, de->d_name, 0) != 0 &&
            errno != ENOENT) {
            closedir(d);
            return io_error(ctx, "remove", de->d_name);
        }
    }
    closedir(d);
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Writing
 * ------------------------------------------------------------------ */

static int flush_buf(weir_ctx_t *ctx, struct file_sink *fs)
{
    if (fs->wlen == 0 || fs->fd < 0)
        return WEIR_OK;
    if (weir__write_all(fs->fd, fs->wbuf, fs->wlen) != 0)
        return io_error(ctx, "write", fs->path);
    fs->wlen = 0;
    return WEIR_OK;
}

/* Appends bytes to the current target through the buffer. */
static int put(weir_ctx_t *ctx, struct file_sink *fs, const void *p, size_t n)
{
    int rc;

    if (fs->wlen + n > WBUF_CAP) {
        rc = flush_buf(ctx, fs);
        if (rc != WEIR_OK)
            return rc;
    }
    if (n >= WBUF_CAP) {
        if (weir__write_all(fs->fd, p, n) != 0)
            return io_error(ctx, "write", fs->path);
    } else {
        memcpy(fs->wbuf + fs->wlen, p, n);
        fs->wlen += n;
    }
    fs->open_bytes += (int64_t)n;
    return WEIR_OK;
}

/* Opens the open part when a record arrives after a barrier. */
static int ensure_open_part(weir_ctx_t *ctx, struct file_sink *fs)
{
    char *name;

    if (fs->fd >= 0)
        return WEIR_OK;
    name = part_path(fs, OPEN_TAG);
    if (name == NULL)
        return WEIR_ENOMEM;
    fs->fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fs->fd < 0) {
        io_error(ctx, "create", name);
        weir_free(name);
        return WEIR_EIO;
    }
    weir_free(name);
    fs->open_bytes = 0;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Publishing
 * ------------------------------------------------------------------ */

/* Appends the file `src` to F at offset `before` (truncating F there
 * first), then fsyncs F. */
static int append_copy(weir_ctx_t *ctx, struct file_sink *fs, const char *src,
                       int64_t before)
{
    char *buf = NULL;
    int in = -1;
    int out = -1;
    ssize_t n;
    int rc = WEIR_EIO;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        io_error(ctx, "open", src);
        goto done;
    }
    out = open(fs->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (out < 0 || ftruncate(out, (off_t)before) != 0 ||
        lseek(out, (off_t)before, SEEK_SET) < 0) {
        io_error(ctx, "write", fs->path);
        goto done;
    }
    buf = weir_malloc(COPY_CHUNK);
    if (buf == NULL) {
        rc = WEIR_ENOMEM;
        goto done;
    }
    for (;;) {
        n = read(in, buf, COPY_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            io_error(ctx, "read", src);
            goto done;
        }
        if (n == 0)
            break;
        if (weir__write_all(out, buf, (size_t)n) != 0) {
            io_error(ctx, "write", fs->path);
            goto done;
        }
    }
    if (fsync(out) != 0) {
        io_error(ctx, "sync", fs->path);
        goto done;
    }
    rc = WEIR_OK;
done:
    weir_free(buf);
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return rc;
}

/* Publishes part file `src` that takes F from `before` to its end. */
static int publish_file(weir_ctx_t *ctx, struct file_sink *fs, const char *src,
                        int64_t before)
{
    int rc;

    if (before == 0 && rename(src, fs->path) == 0) {
        if (weir__fsync_dir(fs->dir) != 0)
            return io_error(ctx, "sync directory", fs->dir);
        return WEIR_OK;
    }
    rc = append_copy(ctx, fs, src, before);
    if (rc != WEIR_OK)
        return rc;
    if (unlink(src) != 0 && errno != ENOENT)
        return io_error(ctx, "remove", src);
    return WEIR_OK;
}

/* Publishes the sealed parts with id <= upto, in order. */
static int publish_upto(weir_ctx_t *ctx, struct file_sink *fs, uint64_t upto)
{
    size_t done = 0;
    char *src;
    int rc = WEIR_OK;

    while (done < fs->nparts && fs->parts[done].id <= upto) {
        src = sealed_path(fs, fs->parts[done].id);
        if (src == NULL) {
            rc = WEIR_ENOMEM;
            break;
        }
        rc = publish_file(ctx, fs, src, fs->published);
        weir_free(src);
        if (rc != WEIR_OK)
            break;
        fs->published = fs->parts[done].after;
        done++;
    }
    if (done > 0) {
        memmove(fs->parts, fs->parts + done,
                (fs->nparts - done) * sizeof(*fs->parts));
        fs->nparts -= done;
    }
    return rc;
}

/* Seals the open part as checkpoint id's part. */
static int seal(weir_ctx_t *ctx, struct file_sink *fs, uint64_t id)
{
    struct part *np;
    char *from = NULL;
    char *to = NULL;
    int rc;

    if (fs->fd < 0)
        return WEIR_OK;
    rc = flush_buf(ctx, fs);
    if (rc != WEIR_OK)
        return rc;
    if (fsync(fs->fd) != 0)
        return io_error(ctx, "sync", fs->path);
    close(fs->fd);
    fs->fd = -1;
    if (fs->nparts == fs->partcap) {
        np = weir_realloc(fs->parts, (fs->partcap * 2 + 4) * sizeof(*np));
        if (np == NULL)
            return WEIR_ENOMEM;
        fs->parts = np;
        fs->partcap = fs->partcap * 2 + 4;
    }
    from = part_path(fs, OPEN_TAG);
    to = sealed_path(fs, id);
    if (from == NULL || to == NULL)
        rc = WEIR_ENOMEM;
    else if (rename(from, to) != 0 || weir__fsync_dir(fs->dir) != 0)
        rc = io_error(ctx, "seal", to);
    weir_free(from);
    weir_free(to);
    if (rc != WEIR_OK)
        return rc;
    fs->sealed += fs->open_bytes;
    fs->open_bytes = 0;
    fs->parts[fs->nparts].id = id;
    fs->parts[fs->nparts].after = fs->sealed;
    fs->nparts++;
    return WEIR_OK;
}

/* A fresh run: empty F and forget pending files of earlier runs. */
static int ensure_started(weir_ctx_t *ctx, struct file_sink *fs)
{
    int64_t size;
    int fd;

    if (!fs->eo || fs->started)
        return WEIR_OK;
    fs->started = 1;
    if (weir_ctx_is_restored(ctx)) {
        /* Restored without operator state: keep F as it is. */
        size = final_size(fs);
        if (size < 0)
            return io_error(ctx, "stat", fs->path);
        fs->published = fs->sealed = size;
        return WEIR_OK;
    }
    fd = open(fs->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return io_error(ctx, "create", fs->path);
    close(fd);
    return remove_pending(ctx, fs);
}

/* ------------------------------------------------------------------ *
 * ## Callbacks
 * ------------------------------------------------------------------ */

static int sink_open(weir_ctx_t *ctx, void *st)
{
    struct file_sink *fs = st;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    int fd;

    fs->fd = -1;
    fs->path = weir_ctx_opaque(ctx);
    if (fs->path == NULL || fs->path[0] == '\0')
        return weir_ctx_error(ctx, WEIR_EINVAL, "file sink has no path");
    fs->eo = weir_ctx_checkpoint_dir(ctx) != NULL;
    fs->wbuf = weir_malloc(WBUF_CAP);
    if (fs->wbuf == NULL || split_path(fs) != WEIR_OK)
        return WEIR_ENOMEM;
    /* Direct mode truncates now; exactly-once mode only makes sure F
     * exists and decides later whether this run is fresh. */
    fd = open(fs->path, fs->eo ? flags : flags | O_TRUNC, 0666);
    if (fd < 0)
        return io_error(ctx, "create", fs->path);
    if (fs->eo)
        close(fd);
    else
        fs->fd = fd;
    return WEIR_OK;
}

static void sink_close(weir_ctx_t *ctx, void *st)
{
    struct file_sink *fs = st;
    char *name;

    if (fs->fd >= 0) {
        if (!fs->eo)
            (void)flush_buf(ctx, fs);
        close(fs->fd);
        if (fs->eo && (name = part_path(fs, OPEN_TAG)) != NULL) {
            (void)unlink(name);
            weir_free(name);
        }
    }
    fs->fd = -1;
    weir_free(fs->wbuf);
    weir_free(fs->dir);
    weir_free(fs->prefix);
    weir_free(fs->parts);
    fs->wbuf = fs->dir = fs->prefix = NULL;
    fs->parts = NULL;
}

static int sink_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    struct file_sink *fs = st;
    weir_buf_t v = weir_record_value(in);
    int rc;

    rc = ensure_started(ctx, fs);
    if (rc == WEIR_OK && fs->eo)
        rc = ensure_open_part(ctx, fs);
    if (rc == WEIR_OK && v.len > 0)
        rc = put(ctx, fs, v.data, v.len);
    if (rc == WEIR_OK)
        rc = put(ctx, fs, "\n", 1);
    return rc;
}

static int sink_snapshot(weir_ctx_t *ctx, void *st, weir_writer_t *w,
                         uint64_t checkpoint_id)
{
    struct file_sink *fs = st;
    char *name;
    size_t i;
    int rc;

    if (!fs->eo)
        return flush_buf(ctx, fs);
    rc = ensure_started(ctx, fs);
    if (rc == WEIR_OK)
        rc = seal(ctx, fs, checkpoint_id);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, SNAP_VERSION);
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, fs->published);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, fs->nparts);
    for (i = 0; i < fs->nparts && rc == WEIR_OK; i++) {
        name = sealed_path(fs, fs->parts[i].id);
        if (name == NULL)
            return WEIR_ENOMEM;
        rc = weir_write_u64(w, fs->parts[i].id);
        if (rc == WEIR_OK) /* the file name, without the directory */
            rc = weir_write_buf(w, WEIR_BUF_STR(strrchr(name, '/') + 1));
        if (rc == WEIR_OK)
            rc = weir_write_i64(w, fs->parts[i].after);
        weir_free(name);
    }
    return rc;
}

static int sink_complete(weir_ctx_t *ctx, void *st, uint64_t checkpoint_id)
{
    struct file_sink *fs = st;
    int rc;

    if (!fs->eo)
        return WEIR_OK;
    rc = ensure_started(ctx, fs);
    if (rc != WEIR_OK)
        return rc;
    return publish_upto(ctx, fs, checkpoint_id);
}

static int sink_end(weir_ctx_t *ctx, void *st)
{
    struct file_sink *fs = st;

    /* Exactly-once output is published by the final checkpoint. */
    if (fs->eo)
        return ensure_started(ctx, fs);
    return flush_buf(ctx, fs);
}

/* ------------------------------------------------------------------ *
 * ## Restore
 * ------------------------------------------------------------------ */

/* Re-publishes one part of the restored checkpoint if F lacks it. */
static int restore_part(weir_ctx_t *ctx, struct file_sink *fs, weir_buf_t name,
                        int64_t before, int64_t after, int64_t *size)
{
    struct stat sb;
    char *src;
    size_t n;
    int rc = WEIR_OK;

    if (name.len == 0 || memchr(name.data, '/', name.len) != NULL ||
        before > after)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "bad pending part in the checkpoint of \"%s\"",
                              fs->path);
    n = strlen(fs->dir) + name.len + 2;
    src = weir_malloc(n);
    if (src == NULL)
        return WEIR_ENOMEM;
    snprintf(src, n, "%s/%.*s", fs->dir, (int)name.len,
             (const char *)name.data);
    if (*size >= after) {
        if (unlink(src) != 0 && errno != ENOENT)
            rc = io_error(ctx, "remove", src);
    } else if (*size < before || stat(src, &sb) != 0 ||
               (int64_t)sb.st_size != after - before) {
        rc = weir_ctx_error(ctx, WEIR_ECORRUPT,
                            "cannot restore \"%s\": it has %lld bytes and "
                            "the pending part \"%s\" is missing or damaged",
                            fs->path, (long long)*size, src);
    } else {
        rc = publish_file(ctx, fs, src, before);
        if (rc == WEIR_OK)
            *size = after;
    }
    weir_free(src);
    return rc;
}

static int sink_restore(weir_ctx_t *ctx, void *st, weir_reader_t *r)
{
    struct file_sink *fs = st;
    uint64_t version = 0;
    uint64_t count = 0;
    uint64_t id = 0;
    uint64_t i;
    int64_t expect = 0;
    int64_t after = 0;
    int64_t size;
    weir_buf_t name;
    int rc;

    fs->started = 1;
    if (!fs->eo)
        return WEIR_OK;
    rc = weir_read_u64(r, &version);
    if (rc == WEIR_OK && version != SNAP_VERSION)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "unknown file sink snapshot version %llu",
                              (unsigned long long)version);
    if (rc == WEIR_OK)
        rc = weir_read_i64(r, &expect);
    if (rc == WEIR_OK)
        rc = weir_read_u64(r, &count);
    size = final_size(fs);
    if (rc == WEIR_OK && size < 0)
        rc = io_error(ctx, "stat", fs->path);
    for (i = 0; i < count && rc == WEIR_OK; i++) {
        rc = weir_read_u64(r, &id);
        if (rc == WEIR_OK)
            rc = weir_read_buf(r, &name);
        if (rc == WEIR_OK)
            rc = weir_read_i64(r, &after);
        if (rc == WEIR_OK)
            rc = restore_part(ctx, fs, name, expect, after, &size);
        expect = after;
    }
    if (rc != WEIR_OK)
        return rc;
    if (size < expect)
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "cannot restore \"%s\": it has %lld bytes, "
                              "the checkpoint expects %lld",
                              fs->path, (long long)size, (long long)expect);
    if (size > expect && truncate(fs->path, (off_t)expect) != 0)
        return io_error(ctx, "truncate", fs->path);
    fs->published = fs->sealed = expect;
    return remove_pending(ctx, fs);
}

const weir_operator_def_t weir_op_file_lines_sink = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "file_sink",
    .flags = WEIR_OP_F_SINGLE,
    .state_size = sizeof(struct file_sink),
    .open = sink_open,
    .process = sink_process,
    .snapshot = sink_snapshot,
    .restore = sink_restore,
    .close = sink_close,
    .on_checkpoint_complete = sink_complete,
    .on_end = sink_end,
};

static void free_path(void *p)
{
    weir_free(p);
}

int weir_sink_file_lines(weir_stream_t *s, const char *path)
{
    size_t n;
    char *copy;
    int rc;

    if (s == NULL)
        return WEIR_EINVAL;
    if (!weir_stream_ok(s))
        return weir_pipeline_error(weir_stream_pipeline(s));
    if (path == NULL || path[0] == '\0') {
        weir_stream_error(s, WEIR_EINVAL,
                          "weir_sink_file_lines: path is NULL or empty");
        return WEIR_EINVAL;
    }
    n = strlen(path) + 1;
    copy = weir_malloc(n);
    if (copy == NULL) {
        weir_stream_error(s, WEIR_ENOMEM, "out of memory");
        return WEIR_ENOMEM;
    }
    memcpy(copy, path, n);
    rc = weir_pipeline_attach(weir_stream_pipeline(s), copy, free_path);
    if (rc != WEIR_OK) {
        weir_stream_error(s, rc, "out of memory");
        return rc;
    }
    return weir_stream_sink(s, &weir_op_file_lines_sink, copy);
}
