/*
 * runtime/util.c - allocator, error strings, version, byte buffers and
 * the snapshot writer/reader.
 *
 * How it works
 *   Every allocation goes through weir_malloc & co., which call the
 *   functions installed by weir_replace_allocator() (the C library's by
 *   default), so fault-injection tests can fail the Nth allocation.
 *   Snapshot streams are little-endian: u64/i64 as 8 bytes, buffers as a
 *   u64 length followed by the bytes. A reader never reads past its end;
 *   a short read is WEIR_ECORRUPT.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

#include <xxhash.h>

#include "internal.h"

/* ------------------------------------------------------------------ *
 * ## Allocator
 * ------------------------------------------------------------------ */

static void *(*alloc_malloc)(size_t) = malloc;
static void *(*alloc_realloc)(void *, size_t) = realloc;
static void *(*alloc_calloc)(size_t, size_t) = calloc;
static void (*alloc_free)(void *) = free;

int weir_replace_allocator(void *(*malloc_fn)(size_t),
                           void *(*realloc_fn)(void *, size_t),
                           void *(*calloc_fn)(size_t, size_t),
                           void (*free_fn)(void *))
{
    if (malloc_fn == NULL || realloc_fn == NULL || calloc_fn == NULL ||
        free_fn == NULL)
        return WEIR_EINVAL;
    alloc_malloc = malloc_fn;
    alloc_realloc = realloc_fn;
    alloc_calloc = calloc_fn;
    alloc_free = free_fn;
    return WEIR_OK;
}

void *weir_malloc(size_t size)
{
    return alloc_malloc(size ? size : 1);
}

void *weir_calloc(size_t n, size_t size)
{
    return alloc_calloc(n ? n : 1, size ? size : 1);
}

void *weir_realloc(void *ptr, size_t size)
{
    return alloc_realloc(ptr, size ? size : 1);
}

void weir_free(void *ptr)
{
    if (ptr != NULL)
        alloc_free(ptr);
}

char *weir__strdup(const char *s)
{
    size_t n;
    char *d;

    if (s == NULL)
        return NULL;
    n = strlen(s);
    d = weir_malloc(n + 1);
    if (d != NULL)
        memcpy(d, s, n + 1);
    return d;
}

void *weir__memdup(const void *p, size_t n)
{
    void *d = weir_malloc(n);

    if (d != NULL && n > 0)
        memcpy(d, p, n);
    return d;
}

uint64_t weir__hash(const void *data, size_t len)
{
    return XXH3_64bits(data, len);
}

weir_ts_t weir__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (weir_ts_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void weir__set_errstr(char *errstr, size_t size, const char *fmt, ...)
{
    va_list ap;

    if (errstr == NULL || size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errstr, size, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ *
 * ## Errors and version
 * ------------------------------------------------------------------ */

const char *weir_strerror(int err)
{
    switch (err) {
    case WEIR_OK:
        return "success";
    case WEIR_DONE:
        return "end of input";
    case WEIR_IDLE:
        return "no input available now";
#define XX(name, val, msg)                                                     \
    case WEIR_##name:                                                          \
        return msg;
        WEIR_ERRNO_MAP(XX)
#undef XX
    default:
        return "unknown error";
    }
}

const char *weir_err_name(int err)
{
    switch (err) {
    case WEIR_OK:
        return "WEIR_OK";
    case WEIR_DONE:
        return "WEIR_DONE";
    case WEIR_IDLE:
        return "WEIR_IDLE";
#define XX(name, val, msg)                                                     \
    case WEIR_##name:                                                          \
        return "WEIR_" #name;
        WEIR_ERRNO_MAP(XX)
#undef XX
    default:
        return "WEIR_UNKNOWN";
    }
}

unsigned weir_version(void)
{
    return WEIR_VERSION_HEX;
}

const char *weir_version_string(void)
{
#define WEIR__STR2(x) #x
#define WEIR__STR(x)  WEIR__STR2(x)
    return WEIR__STR(WEIR_VERSION_MAJOR) "." WEIR__STR(
        WEIR_VERSION_MINOR) "." WEIR__STR(WEIR_VERSION_PATCH);
}

/* ------------------------------------------------------------------ *
 * ## Byte buffers
 * ------------------------------------------------------------------ */

int weir__bytes_reserve(weir__bytes_t *b, size_t extra)
{
    size_t need = b->len + extra;
    size_t cap;
    uint8_t *d;

    if (need <= b->cap)
        return WEIR_OK;
    cap = b->cap ? b->cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    d = weir_realloc(b->data, cap);
    if (d == NULL)
        return WEIR_ENOMEM;
    b->data = d;
    b->cap = cap;
    return WEIR_OK;
}

int weir__bytes_append(weir__bytes_t *b, const void *p, size_t n)
{
    if (weir__bytes_reserve(b, n) != WEIR_OK)
        return WEIR_ENOMEM;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return WEIR_OK;
}

void weir__bytes_free(weir__bytes_t *b)
{
    weir_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ *
 * ## Snapshot streams
 * ------------------------------------------------------------------ */

int weir_write_bytes(weir_writer_t *w, const void *data, size_t len)
{
    if (w == NULL || (data == NULL && len > 0))
        return WEIR_EINVAL;
    return weir__bytes_append(&w->buf, data, len);
}

int weir_write_u64(weir_writer_t *w, uint64_t v)
{
    uint8_t b[8];
    int i;

    for (i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return weir_write_bytes(w, b, 8);
}

int weir_write_i64(weir_writer_t *w, int64_t v)
{
    return weir_write_u64(w, (uint64_t)v);
}

int weir_write_buf(weir_writer_t *w, weir_buf_t b)
{
    int rc = weir_write_u64(w, b.len);

    if (rc != WEIR_OK)
        return rc;
    return weir_write_bytes(w, b.data, b.len);
}

void weir__reader_init(weir_reader_t *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
}

int weir_read_bytes(weir_reader_t *r, void *data, size_t len)
{
    if (r == NULL || (data == NULL && len > 0))
        return WEIR_EINVAL;
    if (r->len - r->pos < len)
        return WEIR_ECORRUPT;
    if (len > 0)
        memcpy(data, r->p + r->pos, len);
    r->pos += len;
    return WEIR_OK;
}

int weir_read_u64(weir_reader_t *r, uint64_t *v)
{
    uint8_t b[8];
    uint64_t x = 0;
    int i;
    int rc;

    if (v == NULL)
        return WEIR_EINVAL;
    rc = weir_read_bytes(r, b, 8);
    if (rc != WEIR_OK)
        return rc;
    for (i = 0; i < 8; i++)
        x |= (uint64_t)b[i] << (8 * i);
    *v = x;
    return WEIR_OK;
}

int weir_read_i64(weir_reader_t *r, int64_t *v)
{
    uint64_t u;
    int rc;

    if (v == NULL)
        return WEIR_EINVAL;
    rc = weir_read_u64(r, &u);
    if (rc == WEIR_OK)
        *v = (int64_t)u;
    return rc;
}

int weir_read_buf(weir_reader_t *r, weir_buf_t *b)
{
    uint64_t n;
    int rc;

    if (r == NULL || b == NULL)
        return WEIR_EINVAL;
    rc = weir_read_u64(r, &n);
    if (rc != WEIR_OK)
        return rc;
    if (r->len - r->pos < n)
        return WEIR_ECORRUPT;
    b->data = r->p + r->pos;
    b->len = (size_t)n;
    r->pos += (size_t)n;
    return WEIR_OK;
}
