/*
 * windows/assigner.h - internal interface between the window operator
 * (window_op.c) and the window assigners (tumbling.c, sliding.c,
 * session.c), plus the small helpers they share: saturating time
 * arithmetic, window namespaces, accumulator buffers and decimal text.
 *
 * Nothing here is public: only files under windows/ include it.
 *
 * Time arithmetic saturates at WEIR_TS_MIN / WEIR_TS_MAX, so that windows
 * of records stamped near the ends of the time line never overflow: such
 * windows are clipped (their end becomes WEIR_TS_MAX, their cleanup time
 * WEIR_TS_MAX, which the final watermark reaches).
 */
#ifndef WEIR_WINDOWS_ASSIGNER_H
#define WEIR_WINDOWS_ASSIGNER_H

#include <weir.h>
#include <weir/operator.h>
#include <weir/window.h>

/* ------------------------------------------------------------------ *
 * ## Windows and assigners
 * ------------------------------------------------------------------ */

/** A window [start, end); its max timestamp is end - 1. */
typedef struct weir__span {
    weir_ts_t start; /* first timestamp inside       */
    weir_ts_t end;   /* first timestamp after (excl.) */
} weir__span_t;

/** Called once per window of a record; a negative return stops the walk
 * and is returned by assign(). */
typedef int (*weir__span_fn)(weir__span_t win, void *arg);

/**
 * An assigner maps a timestamp to the windows containing it. assign()
 * calls visit for each of them (most recent start first) and returns
 * WEIR_OK or the first negative visit result. Merging assigners
 * (sessions) produce one proto-window per record; the operator merges it
 * with the key's live sessions (see session.c).
 */
typedef struct weir__assigner {
    const char *name; /* "tumbling", "sliding", "session"   */
    int merging;      /* 1 when windows of one key merge     */
    int (*assign)(weir_ts_t size, weir_ts_t slide, weir_ts_t ts,
                  weir__span_fn visit, void *arg);
} weir__assigner_t;

extern const weir__assigner_t weir__assigner_tumbling;
extern const weir__assigner_t weir__assigner_sliding;
extern const weir__assigner_t weir__assigner_session;

/* ------------------------------------------------------------------ *
 * ## Session sets (session.c): the live sessions of one key, kept in one
 * keyed value state together with each session's value (trigger prefix
 * and accumulator), so a record costs one state read and one write
 * however many sessions it touches. Each session has its actual window
 * and an id (sid) naming the namespace of its timers (and records, for
 * full-window functions); ids grow per key, so a smaller id means an
 * older session. `next` also numbers records for full-window functions,
 * which keeps arrival order across merges.
 * ------------------------------------------------------------------ */

typedef struct weir__session {
    weir_ts_t start; /* actual window start                       */
    weir_ts_t end;   /* actual window end (exclusive)             */
    uint64_t sid;    /* timer namespace id (creation order)       */
    weir_ts_t wake;  /* earliest pending event timer, WEIR_TS_MIN */
    size_t voff;     /* its value: bytes at vals + voff ...       */
    size_t vlen;     /* ... vlen of them, or WEIR__NO_VALUE       */
} weir__session_t;

#define WEIR__NO_VALUE ((size_t)-1)

typedef struct weir__session_set {
    uint64_t next;          /* next id to hand out             */
    size_t n;               /* live sessions                   */
    size_t cap;             /* allocated entries               */
    weir__session_t *items; /* unordered                       */
    size_t *merged;         /* scratch: indices found by plan  */
    size_t merged_cap;      /* allocated entries in merged     */
    unsigned char *vals;    /* session values (append only
                               until the next decode)          */
    size_t vals_len;
    size_t vals_cap;
} weir__session_set_t;

/** Loads an encoded set (empty when b.len == 0). WEIR_ECORRUPT/ENOMEM. */
int weir__session_set_decode(weir__session_set_t *set, weir_buf_t b);
/** Encoded length of the set, and encoding into out (that many bytes). */
size_t weir__session_set_encoded_len(const weir__session_set_t *set);
void weir__session_set_encode(const weir__session_set_t *set,
                              unsigned char *out);
/** Session i's value (borrowed until the set changes); WEIR_ENOENT when
 * it has none. */
int weir__session_set_value(const weir__session_set_t *set, size_t i,
                            weir_buf_t *v);
/** Sets session i's value to a copy of v. WEIR_ENOMEM. */
int weir__session_set_put_value(weir__session_set_t *set, size_t i,
                                weir_buf_t v);
/** Appends a session (no timer, no value yet). WEIR_ENOMEM. */
int weir__session_set_add(weir__session_set_t *set, weir__span_t win,
                          uint64_t sid);
/** Removes entry i (order is not kept). */
void weir__session_set_remove(weir__session_set_t *set, size_t i);
/** The index of the session with id sid, or -1. */
long weir__session_set_find(const weir__session_set_t *set, uint64_t sid);
/**
 * Finds every session that the new window nw merges with (directly or
 * through another merged session). Their indices go to set->merged,
 * sorted by sid (oldest first); *hull is the merged window (nw itself
 * when nothing merges). Returns the number found or WEIR_ENOMEM.
 */
long weir__session_set_plan(weir__session_set_t *set, weir__span_t nw,
                            weir__span_t *hull);
void weir__session_set_free(weir__session_set_t *set);

/* ------------------------------------------------------------------ *
 * ## Pending windows (pending.c): a key's tumbling/sliding windows whose
 * end-1 the watermark has not reached yet, as one byte list of (i64
 * start, u32 length, value bytes) entries, worked on in place.
 * ------------------------------------------------------------------ */

typedef struct weir__pend {
    unsigned char *buf; /* the entries          */
    size_t len;         /* bytes used           */
    size_t cap;         /* bytes allocated      */
} weir__pend_t;

/** Loads a stored list (a copy; empty when b.len == 0). WEIR_ENOMEM,
 * WEIR_ECORRUPT. */
int weir__pend_load(weir__pend_t *p, weir_buf_t b);
/** Finds the window starting at start: *at its entry's offset, *value
 * its value (borrowed until the list changes). WEIR_ENOENT when absent,
 * WEIR_ECORRUPT when the list is damaged. */
int weir__pend_find(const weir__pend_t *p, weir_ts_t start, size_t *at,
                    weir_buf_t *value);
/** Sets the value of the window found at `at` (found = 1), or appends a
 * new window (found = 0). value must not point into the list.
 * WEIR_ENOMEM, WEIR_ERANGE. */
int weir__pend_put(weir__pend_t *p, weir_ts_t start, size_t at, int found,
                   weir_buf_t value);
/** Cuts out the window found at `at`. */
void weir__pend_remove(weir__pend_t *p, size_t at);
void weir__pend_free(weir__pend_t *p);

/* ------------------------------------------------------------------ *
 * ## Saturating time arithmetic
 * ------------------------------------------------------------------ */

/** a + b clamped to [WEIR_TS_MIN, WEIR_TS_MAX]. */
static inline weir_ts_t weir__ts_add(weir_ts_t a, weir_ts_t b)
{
    if (b > 0 && a > WEIR_TS_MAX - b)
        return WEIR_TS_MAX;
    if (b < 0 && a < WEIR_TS_MIN - b)
        return WEIR_TS_MIN;
    return a + b;
}

/** The window's max timestamp, end - 1 (end > start >= WEIR_TS_MIN). */
static inline weir_ts_t weir__span_max(weir__span_t win)
{
    return win.end == WEIR_TS_MIN ? WEIR_TS_MIN : win.end - 1;
}

/** When the window's state is dropped: end - 1 + lateness, saturated. */
static inline weir_ts_t weir__span_cleanup(weir__span_t win, weir_ts_t lateness)
{
    return weir__ts_add(weir__span_max(win), lateness);
}

/** 1 when the window's state may be gone at watermark wm. */
static inline int weir__span_late(weir__span_t win, weir_ts_t lateness,
                                  weir_ts_t wm)
{
    return weir__span_cleanup(win, lateness) <= wm;
}

/** Flink's intersection test: touching windows intersect too. */
static inline int weir__span_intersects(weir__span_t a, weir__span_t b)
{
    return a.start <= b.end && a.end >= b.start;
}

/* ------------------------------------------------------------------ *
 * ## Namespaces: a timestamp or an id as 8 bytes, big endian (timestamps
 * with the sign bit flipped), so byte order is numeric order.
 * ------------------------------------------------------------------ */

static inline void weir__ns_put_u64(unsigned char *p, uint64_t v)
{
    int i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static inline uint64_t weir__ns_get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static inline void weir__ns_put_ts(unsigned char *p, weir_ts_t ts)
{
    weir__ns_put_u64(p, (uint64_t)ts ^ ((uint64_t)1 << 63));
}

static inline weir_ts_t weir__ns_get_ts(const unsigned char *p)
{
    return (weir_ts_t)(weir__ns_get_u64(p) ^ ((uint64_t)1 << 63));
}

/* ------------------------------------------------------------------ *
 * ## Accumulators. One buffer holds [prefix][accumulator]; the aggregate
 * sees only the accumulator (data + off, len bytes). The prefix holds the
 * trigger's bookkeeping, so one state value covers a window.
 * ------------------------------------------------------------------ */

struct weir_acc_s {
    unsigned char *buf; /* prefix + accumulator bytes       */
    size_t off;         /* prefix length                    */
    size_t len;         /* accumulator length (after off)   */
    size_t cap;         /* allocated bytes in buf           */
};

/** Makes room for `total` bytes (prefix included). WEIR_ENOMEM. */
int weir__acc_reserve(weir_acc_t *acc, size_t total);
/** Frees the buffer and zeroes the struct. */
void weir__acc_free(weir_acc_t *acc);

/* ------------------------------------------------------------------ *
 * ## Decimal text
 * ------------------------------------------------------------------ */

/** Parses an optional sign and decimal digits (nothing else) into *v.
 * WEIR_OK, WEIR_EPARSE or WEIR_ERANGE. */
int weir__parse_i64(const void *data, size_t len, int64_t *v);

/** Writes v as decimal text into out (at least 21 bytes); returns the
 * length (no terminator written beyond it). */
size_t weir__format_i64(char *out, int64_t v);

#endif /* WEIR_WINDOWS_ASSIGNER_H */
