/*
 * dedup_store.c - segment files of incremental dedup snapshots.
 *
 * How it works
 *   Segment `id` is the file <state dir>/seg-<id>: a 40-byte header
 *   (magic "WDEDSEG1", scope kind, id, base flag, entry count), the
 *   entries as 24-byte little-endian (lo, hi, expiry unbiased), and an
 *   XXH64 of everything before it. It is written whole, fsynced, and the
 *   directory fsynced, before the snapshot that names it is acknowledged,
 *   so a completed checkpoint never refers to a segment that is not on
 *   disk. Ids are checkpoint ids; an id can come back after a crash (the
 *   runtime drops incomplete checkpoints and reuses their ids), and the
 *   file is then simply rewritten: no completed checkpoint named it.
 *
 *   Deletion. The history lists (snapshot id, base of its chain) for the
 *   snapshots this instance wrote since it started or restored. When
 *   checkpoint `done` completes, the runtime keeps checkpoints from
 *   done - retain + 1 on; every segment older than the oldest base those
 *   refer to is deleted. Segments newer than a restored checkpoint are
 *   deleted at restore: only checkpoints that never completed, or that
 *   recovery gave up (Kafka: completed locally, never committed), wrote
 *   them.
 *
 * Invariants
 *   - chain[0] is a base segment; chain ids increase.
 *   - hist ids increase; only the last DSTORE_HIST entries are kept,
 *     which covers any retain up to that many checkpoints.
 */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dedup_store.h"
#include "fileio.h"

#define SEG_MAGIC   UINT64_C(0x3147455344454457) /* "WDEDSEG1" */
#define SEG_HEADER  40
#define SEG_ENTRY   24
#define DSTORE_HIST 256

static void put64(unsigned char *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}

static void seg_path(const dstore_t *s, uint64_t id, char *out, size_t size)
{
    snprintf(out, size, "%s/seg-%020llu", s->dir, (unsigned long long)id);
}

int dstore_init(dstore_t *s, const char *dir, uint64_t kind)
{
    size_t n = strlen(dir) + 1;

    memset(s, 0, sizeof(*s));
    s->kind = kind;
    s->dir = weir_malloc(n);
    s->chain = weir_malloc(DSTORE_MAX_CHAIN * sizeof(*s->chain));
    s->hist = weir_malloc(DSTORE_HIST * sizeof(*s->hist));
    if (s->dir == NULL || s->chain == NULL || s->hist == NULL) {
        dstore_free(s);
        return WEIR_ENOMEM;
    }
    memcpy(s->dir, dir, n);
    return WEIR_OK;
}

void dstore_free(dstore_t *s)
{
    weir_free(s->dir);
    weir_free(s->chain);
    weir_free(s->hist);
    memset(s, 0, sizeof(*s));
}

static void hist_add(dstore_t *s, uint64_t id)
{
    if (s->nhist == DSTORE_HIST) {
        memmove(s->hist, s->hist + 1, (DSTORE_HIST - 1) * sizeof(*s->hist));
        s->nhist--;
    }
    s->hist[s->nhist].id = id;
    s->hist[s->nhist].base = s->nchain > 0 ? s->chain[0] : id;
    s->nhist++;
}

/* Serialises a segment: header, entries, checksum. */
static unsigned char *seg_encode(const dstore_t *s, uint64_t id, int base,
                                 const struct dtab_head *v, size_t n,
                                 size_t *len)
{
    unsigned char *b;
    unsigned char *p;
    size_t i;

    *len = SEG_HEADER + n * SEG_ENTRY + 8;
    b = weir_malloc(*len);
    if (b == NULL)
        return NULL;
    put64(b, SEG_MAGIC);
    put64(b + 8, s->kind);
    put64(b + 16, id);
    put64(b + 24, base ? 1 : 0);
    put64(b + 32, n);
    p = b + SEG_HEADER;
    for (i = 0; i < n; i++, p += SEG_ENTRY) {
        put64(p, v[i].lo);
        put64(p + 8, v[i].hi);
        put64(p + 16, (uint64_t)dtab_unbias(v[i].exp));
    }
    put64(p, XXH64(b, *len - 8, 0));
    return b;
}

int dstore_append(dstore_t *s, uint64_t id, int base, const struct dtab_head *v,
                  size_t n, char *err, size_t errsz)
{
    char path[4096];
    unsigned char *b;
    size_t len;
    int fd;
    int bad;

    if (!base && (s->nchain == 0 || s->nchain == DSTORE_MAX_CHAIN))
        base = 1; /* callers decide; this keeps the invariant regardless */
    b = seg_encode(s, id, base, v, n, &len);
    if (b == NULL)
        return WEIR_ENOMEM;
    seg_path(s, id, path, sizeof(path));
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bad = fd < 0 || weir__write_all(fd, b, len) != 0 || fsync(fd) != 0;
    if (fd >= 0 && close(fd) != 0)
        bad = 1;
    weir_free(b);
    if (bad || weir__fsync_dir(s->dir) != 0) {
        snprintf(err, errsz, "dedup: cannot write %s: %s", path,
                 strerror(errno));
        return WEIR_EIO;
    }
    if (base) {
        s->nchain = 0;
        s->chain_entries = 0;
    } else {
        s->chain_entries += n;
    }
    s->chain[s->nchain++] = id;
    hist_add(s, id);
    return WEIR_OK;
}

int dstore_note(dstore_t *s, uint64_t id)
{
    hist_add(s, id);
    return WEIR_OK;
}

static int read_whole(const char *path, unsigned char **out, size_t *len)
{
    struct stat sb;
    unsigned char *b;
    size_t got = 0;
    ssize_t r;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return WEIR_ECORRUPT;
    if (fstat(fd, &sb) != 0 || sb.st_size < SEG_HEADER + 8) {
        close(fd);
        return WEIR_ECORRUPT;
    }
    b = weir_malloc((size_t)sb.st_size);
    if (b == NULL) {
        close(fd);
        return WEIR_ENOMEM;
    }
    while (got < (size_t)sb.st_size) {
        r = read(fd, b + got, (size_t)sb.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != (size_t)sb.st_size) {
        weir_free(b);
        return WEIR_ECORRUPT;
    }
    *out = b;
    *len = got;
    return WEIR_OK;
}

int dstore_read(const dstore_t *s, uint64_t id, struct dtab_head **v, size_t *n,
                int *base, char *err, size_t errsz)
{
    char path[4096];
    unsigned char *b = NULL;
    const unsigned char *p;
    size_t len = 0;
    uint64_t cnt;
    size_t i;
    int rc;

    seg_path(s, id, path, sizeof(path));
    rc = read_whole(path, &b, &len);
    if (rc != WEIR_OK) {
        snprintf(err, errsz, "dedup snapshot: segment %s is missing or short",
                 path);
        return rc;
    }
    cnt = get64(b + 32);
    if (get64(b) != SEG_MAGIC || get64(b + 8) != s->kind ||
        get64(b + 16) != id || cnt > (len - SEG_HEADER - 8) / SEG_ENTRY ||
        len != SEG_HEADER + cnt * SEG_ENTRY + 8 ||
        get64(b + len - 8) != XXH64(b, len - 8, 0)) {
        weir_free(b);
        snprintf(err, errsz, "dedup snapshot: segment %s is corrupt", path);
        return WEIR_ECORRUPT;
    }
    *v = weir_malloc(cnt > 0 ? cnt * sizeof(**v) : 1);
    if (*v == NULL) {
        weir_free(b);
        return WEIR_ENOMEM;
    }
    p = b + SEG_HEADER;
    for (i = 0; i < cnt; i++, p += SEG_ENTRY) {
        (*v)[i].lo = get64(p);
        (*v)[i].hi = get64(p + 8);
        (*v)[i].exp = dtab_bias((weir_ts_t)get64(p + 16));
    }
    *n = (size_t)cnt;
    *base = get64(b + 24) != 0;
    weir_free(b);
    return WEIR_OK;
}

/* Deletes seg-<x> for every x with x < below or x > above. */
static void delete_outside(const dstore_t *s, uint64_t below, uint64_t above)
{
    char path[4096];
    struct dirent *de;
    unsigned long long x;
    char *end;
    DIR *d;

    d = opendir(s->dir);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "seg-", 4) != 0)
            continue;
        x = strtoull(de->d_name + 4, &end, 10);
        if (*end != '\0' || (x >= below && x <= above))
            continue;
        seg_path(s, x, path, sizeof(path));
        unlink(path);
    }
    closedir(d);
}

int dstore_adopt(dstore_t *s, uint64_t id, const uint64_t *ids, size_t n,
                 uint64_t chain_entries)
{
    if (n == 0 || n > DSTORE_MAX_CHAIN)
        return WEIR_ECORRUPT;
    memcpy(s->chain, ids, n * sizeof(*ids));
    s->nchain = n;
    s->chain_entries = chain_entries;
    s->nhist = 0;
    hist_add(s, id);
    delete_outside(s, 0, id);
    return WEIR_OK;
}

void dstore_forget(dstore_t *s, uint64_t done, uint64_t retain)
{
    uint64_t keep_from = done >= retain ? done - retain + 1 : 0;
    uint64_t base = UINT64_MAX;
    size_t i;

    if (retain == 0 || s->nhist == 0 || s->hist[0].id > keep_from)
        return; /* a kept checkpoint may be older than what we know */
    for (i = 0; i < s->nhist; i++)
        if (s->hist[i].id >= keep_from && s->hist[i].base < base)
            base = s->hist[i].base;
    if (base == UINT64_MAX)
        return;
    delete_outside(s, base, UINT64_MAX);
    /* Entries older than every kept checkpoint are not needed again. */
    for (i = 0; i < s->nhist && s->hist[i].id < keep_from; i++)
        ;
    if (i > 0 && i < s->nhist) {
        memmove(s->hist, s->hist + i, (s->nhist - i) * sizeof(*s->hist));
        s->nhist -= i;
    }
}
