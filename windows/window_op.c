/*
 * windows/window_op.c - the generic keyed window operator (weir_op_window)
 * and the builder and harness functions around it: weir_stream_window(),
 * weir_stream_window_apply(), weir_harness_new_window(_ex)().
 *
 * It is an ordinary weir_operator_def_t written against the public
 * operator API only: keyed state holds the windows, event-time timers
 * fire them, side outputs take late and rejected records. It follows
 * Flink's WindowOperator with the EventTimeTrigger (DESIGN.md section 4).
 *
 * How it works
 *
 * W is the operator's input watermark as it stood before the record. For
 * a record stamped ts the assigner yields its windows (assigner.h). A
 * window whose cleanup time end-1+L is <= W is skipped: its state may be
 * gone. A record all of whose windows are skipped goes to "late". For
 * every other window:
 *
 *   1. its value is loaded into a reusable buffer, or created fresh: a
 *      prefix of trigger bookkeeping, then the accumulator (acc_size zero
 *      bytes, then init);
 *   2. the record is folded in with agg->add. A negative result sends the
 *      record to "errors" with the reason; nothing of that window changes;
 *   3. the trigger decides whether to fire now: the event-time trigger
 *      fires at once when end-1 <= W (a late record within the allowed
 *      lateness re-fires the window with everything it holds); the count
 *      trigger fires when n records were added since the last firing;
 *   4. the value is written back, and for a new window its timers are
 *      set (below).
 *
 * Where values live. Per-record cost is dominated by keyed-state lookups
 * (a hash and a probe, and a cache miss or two, each), so a record reads
 * and writes one state value per key, not one per window:
 *
 *   - Tumbling and sliding windows whose end-1 is still ahead of W are
 *     pending: all of a key's pending windows live in one value, state
 *     "win.pend" under the empty namespace (pending.c), so a record of a
 *     sliding window in S/D windows costs one read and one write. A new
 *     pending window gets a timer at end-1 and, when L > 0, a cleanup
 *     timer at end-1+L (with L == 0 they are one timer). At end-1 the
 *     window leaves the list: it fires (event-time triggers), then is
 *     dropped (L == 0) or kept for the allowed lateness in state "win"
 *     under its own namespace (the window start) until cleanup deletes
 *     it. A record that first reaches a window at end-1 <= W (late, but
 *     within the lateness) creates it there directly, with only the
 *     cleanup timer. Since W only grows and every timer <= W has fired
 *     before a record or a processing timer sees W, "end-1 > W" tells
 *     exactly which of the two places holds a window.
 *   - Sessions merge (session.c): a per-key set of live sessions (state
 *     "win.sessions", empty namespace) holds each session's actual
 *     window, its id and its value; its timers (and records, for
 *     full-window functions) live under the id, so a growing session
 *     moves nothing. Merging is staged in memory first (merge
 *     accumulators, add the record); only when every step succeeded is
 *     anything written, so a rejected record never changes a session.
 *     The younger sessions then lose their values and timers. Instead of
 *     a trigger/cleanup timer pair re-registered on every change (Flink's
 *     onMerge), a session keeps one wake-up timer at or before its next
 *     due moment; when it goes off early it moves on, so firing and
 *     cleanup still happen exactly at end-1 and end-1+L.
 *
 * Firing never purges, so later records within the lateness re-fire with
 * the full aggregate. A firing emits key = the current key, value =
 * agg->result, ts = end-1 and the window bounds as headers, from a
 * record on the stack (weir_emit_new_headers_to: nothing is allocated per
 * result). The runtime fires timers before on_watermark and forwards the
 * watermark after them, so results precede it.
 *
 * Early trigger: event time as above, plus a processing-time timer at the
 * next multiple of T after a record arrives (when none is pending); it
 * fires the window if records were added since its last firing.
 *
 * Full-window functions keep the records themselves, one value state
 * "win.rec" each, under the window's namespace (start or session id)
 * plus an 8-byte index 0..n-1 (so adding one is O(1) however big the
 * window is); the value is a u64 arrival number, the i64 ts and the value
 * bytes. The "accumulator" is then the record count n. For sessions the
 * arrival number comes from the session set, so arrival order survives
 * merges: a merge moves the younger sessions' records behind the
 * target's.
 *
 * Trigger prefix (native byte order): count trigger u64 records since the
 * last firing; early trigger the same plus i64 pending processing timer.
 * The event-time trigger needs no prefix at all.
 *
 * Invariants
 *   - a tumbling/sliding window with end-1 > W is in its key's pending
 *     list and has a timer at end-1; one with end-1 <= W that has a
 *     value holds it in "win" under its start and has a cleanup timer at
 *     end-1+L; every live session is in its key's set and has a wake-up
 *     timer pending at or before its next firing or cleanup;
 *   - nothing allocates per record once the scratch buffers have grown;
 *   - a record is added to every window of it that is kept, or goes to
 *     "late" when none is; if add() rejected it anywhere, it also goes
 *     to "errors", once;
 *   - a timer of a window that is gone finds no value (or no session
 *     with its id) and does nothing; one that finds a session not yet
 *     due only moves its wake-up;
 *   - no time arithmetic overflows (assigner.h saturates).
 */
#include <stdio.h>
#include <stdlib.h>

#include <weir/testing.h>

#include "assigner.h"

#define NAME_WIN      "win"
#define NAME_REC      "win.rec"
#define NAME_SESSIONS "win.sessions"
#define NAME_PEND     "win.pend"
#define NO_TIMER      WEIR_TS_MIN

struct weir_window_op_s {
    weir_window_kind_t kind;          /* tumbling, sliding or session    */
    weir_ts_t size;                   /* S or G                          */
    weir_ts_t slide;                  /* D (S for tumbling)              */
    weir_ts_t lateness;               /* L                               */
    weir_trigger_kind_t trigger;      /* event time, count or early      */
    int64_t trigger_param;            /* n or T                          */
    const weir__assigner_t *assigner; /* tumbling/sliding/session        */
    const weir_aggregate_def_t *agg;  /* NULL: full-window function      */
    const void *agg_opaque;           /* borrowed                        */
    weir_window_fn fn;                /* full-window function or NULL    */
    void *fn_opaque;                  /* borrowed                        */
    size_t prefix;                    /* trigger bookkeeping: 0, 8, 16   */
    size_t acc_size;                  /* initial accumulator bytes       */
};

/* A record of a full-window function, collected when firing. */
typedef struct rec_item {
    uint64_t seq; /* arrival number          */
    weir_ts_t ts; /* event timestamp         */
    size_t off;   /* value bytes in arena    */
    size_t len;   /* value length            */
} rec_item_t;

/* A session taking part in a merge. */
typedef struct part {
    weir_ts_t proc; /* its pending processing timer, or NO_TIMER */
    uint64_t n;     /* its records (full-window functions)       */
} part_t;

/* Per-subtask scratch (the operator's st block). Holds no window data
 * between callbacks: every window lives in keyed state. */
typedef struct win_task {
    const weir_window_op_t *op;   /* the arguments (borrowed)          */
    weir_acc_t acc;               /* window being updated: prefix+acc  */
    weir_acc_t other;             /* a second window during merges     */
    weir_acc_t out;               /* result bytes, encoded sessions    */
    weir_acc_t rec;               /* encoded record (full-window)      */
    weir_acc_t arena;             /* record values while firing        */
    weir__session_set_t sessions; /* the current key's sessions        */
    weir__pend_t pend;            /* the current key's pending windows */
    rec_item_t *items;            /* records while firing              */
    size_t n_items;               /* used entries of items             */
    size_t cap_items;             /* allocated entries of items        */
    weir_record_t **recs;         /* temporary records for fn          */
    size_t cap_recs;              /* allocated entries of recs         */
    part_t *parts;                /* sessions of a merge               */
    size_t cap_parts;             /* allocated entries of parts        */
    unsigned char cur[8];         /* state namespace of the window     */
    unsigned char ns[16];         /* other namespace bytes             */
} win_task_t;

/* Trigger bookkeeping kept in front of each accumulator. */
typedef struct trig {
    uint64_t count; /* records added since the last firing */
    weir_ts_t proc; /* pending processing timer or NO_TIMER  */
} trig_t;

/* ------------------------------------------------------------------ *
 * ## Small helpers
 * ------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    void *np;
    size_t n;

    if (need <= *cap)
        return WEIR_OK;
    n = *cap < 16 ? 16 : *cap;
    while (n < need)
        n *= 2;
    np = weir_realloc(*p, n * elem);
    if (np == NULL)
        return WEIR_ENOMEM;
    *p = np;
    *cap = n;
    return WEIR_OK;
}

static int span_eq(weir__span_t a, weir__span_t b)
{
    return a.start == b.start && a.end == b.end;
}

static weir__span_t session_span(const weir__session_t *s)
{
    weir__span_t win;

    win.start = s->start;
    win.end = s->end;
    return win;
}

static int is_merging(const weir_window_op_t *op)
{
    return op->assigner->merging;
}

static int fires_on_event_time(const weir_window_op_t *op)
{
    return op->trigger != WEIR_TRIGGER_COUNT;
}

static int tolerate_missing(int rc)
{
    return rc == WEIR_ENOENT ? WEIR_OK : rc;
}

/* ------------------------------------------------------------------ *
 * ## Namespaces
 *
 * Tumbling and sliding windows: state and timers under the window start
 * (8 bytes; the end follows from the size). Sessions: state and timers
 * under the session id (8 bytes). The records of a full-window function:
 * the window's state namespace plus an 8-byte index. t->cur holds the
 * state namespace of the window being worked on.
 * ------------------------------------------------------------------ */

static int set_ns_state(weir_ctx_t *ctx, win_task_t *t)
{
    return weir_ctx_set_namespace(ctx, WEIR_BUF(t->cur, sizeof(t->cur)));
}

static int set_ns_start(weir_ctx_t *ctx, win_task_t *t, weir__span_t win)
{
    weir__ns_put_ts(t->cur, win.start);
    return set_ns_state(ctx, t);
}

static int set_ns_sid(weir_ctx_t *ctx, win_task_t *t, uint64_t sid)
{
    weir__ns_put_u64(t->cur, sid);
    return set_ns_state(ctx, t);
}

static int set_ns_rec(weir_ctx_t *ctx, win_task_t *t, uint64_t idx)
{
    memcpy(t->ns, t->cur, 8);
    weir__ns_put_u64(t->ns + 8, idx);
    return weir_ctx_set_namespace(ctx, WEIR_BUF(t->ns, 16));
}

static int set_ns_root(weir_ctx_t *ctx)
{
    return weir_ctx_set_namespace(ctx, WEIR_BUF("", 0));
}

/* ------------------------------------------------------------------ *
 * ## Where a window's value lives. Tumbling and sliding windows: state
 * "win" under the window's namespace (the caller has set it to t->cur).
 * Sessions: inline in the key's session set (loaded into t->sessions,
 * written back by sessions_store()), found by the id in t->cur.
 * ------------------------------------------------------------------ */

static long cur_session(win_task_t *t)
{
    return weir__session_set_find(&t->sessions, weir__ns_get_u64(t->cur));
}

static int val_get(weir_ctx_t *ctx, win_task_t *t, weir_buf_t *v)
{
    long i;

    if (!is_merging(t->op))
        return weir_state_get(ctx, NAME_WIN, v);
    i = cur_session(t);
    if (i < 0)
        return WEIR_ENOENT;
    return weir__session_set_value(&t->sessions, (size_t)i, v);
}

static int val_put(weir_ctx_t *ctx, win_task_t *t, weir_buf_t v)
{
    long i;

    if (!is_merging(t->op))
        return weir_state_put(ctx, NAME_WIN, v);
    i = cur_session(t);
    if (i < 0)
        return weir_ctx_error(ctx, WEIR_ECORRUPT, "window: no session");
    return weir__session_set_put_value(&t->sessions, (size_t)i, v);
}

/* Drops the value; a session leaves the set through its caller. */
static int val_del(weir_ctx_t *ctx, win_task_t *t)
{
    long i;

    if (!is_merging(t->op))
        return tolerate_missing(weir_state_del(ctx, NAME_WIN));
    i = cur_session(t);
    if (i >= 0)
        t->sessions.items[i].vlen = WEIR__NO_VALUE;
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Window values: [trigger prefix][accumulator]
 * ------------------------------------------------------------------ */

static void trig_load(const weir_window_op_t *op, const weir_acc_t *a,
                      trig_t *tg)
{
    tg->count = 0;
    tg->proc = NO_TIMER;
    if (op->prefix >= 8)
        memcpy(&tg->count, a->buf, 8);
    if (op->prefix >= 16)
        memcpy(&tg->proc, a->buf + 8, 8);
}

static void trig_store(const weir_window_op_t *op, weir_acc_t *a,
                       const trig_t *tg)
{
    if (op->prefix >= 8)
        memcpy(a->buf, &tg->count, 8);
    if (op->prefix >= 16)
        memcpy(a->buf + 8, &tg->proc, 8);
}

/* A new window: default prefix, acc_size zero bytes, then init. */
static int acc_fresh(weir_ctx_t *ctx, win_task_t *t, weir_acc_t *a)
{
    const weir_window_op_t *op = t->op;
    trig_t tg = {.count = 0, .proc = NO_TIMER};
    int rc;

    a->off = 0;
    a->len = 0;
    /* at least one byte: the buffer is never NULL once a window exists */
    rc = weir__acc_reserve(a, op->prefix + op->acc_size + 1);
    if (rc != WEIR_OK)
        return rc;
    memset(a->buf, 0, op->prefix);
    a->off = op->prefix;
    trig_store(op, a, &tg);
    rc = weir_acc_resize(a, op->acc_size);
    if (rc != WEIR_OK)
        return rc;
    if (op->agg != NULL && op->agg->init != NULL) {
        rc = op->agg->init(a, op->agg_opaque);
        if (rc < 0)
            return weir_ctx_error(ctx, rc, "window: aggregate %s: init: %s",
                                  op->agg->name, weir_strerror(rc));
    }
    return WEIR_OK;
}

/* Copies a stored window value into a. */
static int acc_load(weir_ctx_t *ctx, win_task_t *t, weir_acc_t *a, weir_buf_t v)
{
    int rc;

    if (v.len < t->op->prefix || (v.data == NULL && v.len > 0) ||
        (t->op->agg == NULL && v.len != t->op->prefix + 8))
        return weir_ctx_error(ctx, WEIR_ECORRUPT,
                              "window: bad state value of %zu bytes", v.len);
    rc = weir__acc_reserve(a, v.len + 1);
    if (rc != WEIR_OK)
        return rc;
    if (v.len > 0)
        memcpy(a->buf, v.data, v.len);
    a->off = t->op->prefix;
    a->len = v.len - t->op->prefix;
    return WEIR_OK;
}

/* Loads the window value under the current namespace into a; *fresh is 1
 * when there was none (a new window). */
static int acc_get(weir_ctx_t *ctx, win_task_t *t, weir_acc_t *a, int *fresh)
{
    weir_buf_t v;
    int rc;

    rc = val_get(ctx, t, &v);
    if (rc == WEIR_ENOENT) {
        *fresh = 1;
        return acc_fresh(ctx, t, a);
    }
    if (rc != WEIR_OK)
        return rc;
    *fresh = 0;
    return acc_load(ctx, t, a, v);
}

static weir_buf_t acc_whole(const weir_acc_t *a)
{
    return WEIR_BUF(a->buf, a->off + a->len);
}

static weir_buf_t acc_part(const weir_acc_t *a)
{
    return WEIR_BUF(a->buf + a->off, a->len);
}

/* Full-window mode: the accumulator is the record count. */
static uint64_t acc_count(const weir_acc_t *a)
{
    uint64_t n;

    memcpy(&n, a->buf + a->off, 8);
    return n;
}

static void acc_set_count(weir_acc_t *a, uint64_t n)
{
    memcpy(a->buf + a->off, &n, 8);
}

static int acc_put(weir_ctx_t *ctx, win_task_t *t, const weir_acc_t *a)
{
    return val_put(ctx, t, acc_whole(a));
}

/* ------------------------------------------------------------------ *
 * ## Full-window records: value state "win.rec" under the window's
 * state namespace + index 0..n-1; value = u64 arrival number, i64 ts,
 * value bytes. Adding one is O(1) whatever the window holds.
 * ------------------------------------------------------------------ */

static int put_record(weir_ctx_t *ctx, win_task_t *t, uint64_t idx,
                      uint64_t seq, const weir_record_t *in)
{
    weir_buf_t value = weir_record_value(in);
    weir_ts_t ts = weir_record_ts(in);
    int rc;

    rc = weir__acc_reserve(&t->rec, 16 + value.len);
    if (rc == WEIR_OK)
        rc = set_ns_rec(ctx, t, idx);
    if (rc != WEIR_OK)
        return rc;
    memcpy(t->rec.buf, &seq, 8);
    memcpy(t->rec.buf + 8, &ts, 8);
    if (value.len > 0)
        memcpy(t->rec.buf + 16, value.data, value.len);
    return weir_state_put(ctx, NAME_REC, WEIR_BUF(t->rec.buf, 16 + value.len));
}

static int item_cmp(const void *a, const void *b)
{
    const rec_item_t *x = a;
    const rec_item_t *y = b;

    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads the n records of the current window into items, by arrival. */
static int collect_records(weir_ctx_t *ctx, win_task_t *t, uint64_t n)
{
    uint64_t i;
    int rc;

    t->n_items = 0;
    t->arena.off = 0;
    t->arena.len = 0;
    rc = grow((void **)&t->items, &t->cap_items, n == 0 ? 1 : (size_t)n,
              sizeof(*t->items));
    for (i = 0; rc == WEIR_OK && i < n; i++) {
        rec_item_t *it;
        weir_buf_t v;

        rc = set_ns_rec(ctx, t, i);
        if (rc == WEIR_OK)
            rc = weir_state_get(ctx, NAME_REC, &v);
        if (rc == WEIR_OK && v.len < 16)
            rc = WEIR_ECORRUPT;
        if (rc == WEIR_OK)
            rc = weir__acc_reserve(&t->arena, t->arena.len + v.len - 16 + 1);
        if (rc != WEIR_OK)
            break;
        it = &t->items[t->n_items++];
        memcpy(&it->seq, v.data, 8);
        memcpy(&it->ts, (const unsigned char *)v.data + 8, 8);
        it->off = t->arena.len;
        it->len = v.len - 16;
        if (it->len > 0)
            memcpy(t->arena.buf + it->off, (const unsigned char *)v.data + 16,
                   it->len);
        t->arena.len += it->len;
    }
    if (rc != WEIR_OK)
        return rc == WEIR_ENOENT ? WEIR_ECORRUPT : rc;
    if (t->n_items > 1)
        qsort(t->items, t->n_items, sizeof(*t->items), item_cmp);
    return WEIR_OK;
}

static int delete_records(weir_ctx_t *ctx, win_task_t *t, uint64_t n)
{
    uint64_t i;
    int rc = WEIR_OK;

    for (i = 0; rc == WEIR_OK && i < n; i++) {
        rc = set_ns_rec(ctx, t, i);
        if (rc == WEIR_OK)
            rc = tolerate_missing(weir_state_del(ctx, NAME_REC));
    }
    return rc;
}

/* Moves n records of session `from` to indexes base.. of session `to`,
 * keeping their arrival numbers. Leaves t->cur at `to`. */
static int move_records(weir_ctx_t *ctx, win_task_t *t, uint64_t from,
                        uint64_t n, uint64_t to, uint64_t base)
{
    uint64_t j;
    int rc = WEIR_OK;

    for (j = 0; rc == WEIR_OK && j < n; j++) {
        weir_buf_t v;

        weir__ns_put_u64(t->cur, from);
        rc = set_ns_rec(ctx, t, j);
        if (rc == WEIR_OK)
            rc = weir_state_get(ctx, NAME_REC, &v);
        if (rc == WEIR_OK)
            rc = weir__acc_reserve(&t->rec, v.len + 1);
        if (rc != WEIR_OK)
            break;
        if (v.len > 0)
            memcpy(t->rec.buf, v.data, v.len);
        rc = weir_state_del(ctx, NAME_REC);
        weir__ns_put_u64(t->cur, to);
        if (rc == WEIR_OK)
            rc = set_ns_rec(ctx, t, base + j);
        if (rc == WEIR_OK)
            rc = weir_state_put(ctx, NAME_REC, WEIR_BUF(t->rec.buf, v.len));
    }
    weir__ns_put_u64(t->cur, to);
    return rc;
}

/* ------------------------------------------------------------------ *
 * ## Firing
 * ------------------------------------------------------------------ */

/* Emits the aggregate result of a window: key, result, ts = end-1 and
 * the bounds as headers, from a record on the stack (nothing allocated). */
static int emit_result(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                       weir_buf_t acc)
{
    static const char *const names[2] = {WEIR_HDR_WINDOW_START,
                                         WEIR_HDR_WINDOW_END};
    const weir_window_op_t *op = t->op;
    char start[24];
    char end[24];
    weir_buf_t bounds[2];
    weir_buf_t value;
    int rc;

    t->out.off = 0;
    t->out.len = 0;
    rc = op->agg->result(acc, &t->out, op->agg_opaque);
    if (rc < 0)
        return weir_ctx_error(ctx, rc, "window: aggregate %s: result: %s",
                              op->agg->name, weir_strerror(rc));
    value = t->out.len > 0 ? WEIR_BUF(t->out.buf, t->out.len) : WEIR_BUF("", 0);
    bounds[0] = WEIR_BUF(start, weir__format_i64(start, win.start));
    bounds[1] = WEIR_BUF(end, weir__format_i64(end, win.end));
    return weir_emit_new_headers_to(ctx, NULL, weir_ctx_key(ctx), value,
                                    weir__span_max(win), names, bounds, 2);
}

/* Calls the full-window function with the n records of the window whose
 * state namespace is t->cur. */
static int fire_function(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                         uint64_t n)
{
    const weir_window_op_t *op = t->op;
    weir_buf_t key = weir_ctx_key(ctx);
    size_t made = 0;
    size_t i;
    int rc;

    rc = collect_records(ctx, t, n);
    if (rc == WEIR_OK)
        rc = grow((void **)&t->recs, &t->cap_recs,
                  t->n_items == 0 ? 1 : t->n_items, sizeof(*t->recs));
    for (i = 0; rc == WEIR_OK && i < t->n_items; i++) {
        rec_item_t *it = &t->items[i];
        weir_buf_t value = it->len > 0
                               ? WEIR_BUF(t->arena.buf + it->off, it->len)
                               : WEIR_BUF("", 0);

        t->recs[i] = weir_record_new(ctx, key, value, it->ts, WEIR_COPY);
        if (t->recs[i] == NULL)
            rc = WEIR_ENOMEM;
        else
            made++;
    }
    if (rc == WEIR_OK)
        rc = op->fn(ctx, key, win.start, win.end,
                    (const weir_record_t *const *)t->recs, made, op->fn_opaque);
    for (i = 0; i < made; i++)
        weir_record_destroy(t->recs[i]);
    return rc;
}

/* Fires the window whose value is in a and whose state namespace is
 * t->cur. Leaves the context's namespace unspecified. */
static int fire(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                const weir_acc_t *a)
{
    if (t->op->agg != NULL)
        return emit_result(ctx, t, win, acc_part(a));
    return fire_function(ctx, t, win, acc_count(a));
}

/* After a record was added: fire now? Resets the count when it does. */
static int fire_now(const weir_window_op_t *op, weir__span_t win, weir_ts_t wm,
                    trig_t *tg)
{
    int yes;

    if (op->trigger == WEIR_TRIGGER_COUNT)
        yes = tg->count >= (uint64_t)op->trigger_param;
    else
        yes = weir__span_max(win) <= wm;
    if (yes)
        tg->count = 0;
    return yes;
}

/* ------------------------------------------------------------------ *
 * ## Timers (current namespace = the window's timer namespace)
 * ------------------------------------------------------------------ */

/* With L == 0 the trigger and cleanup timers are one timer. */
static int arm_timers(weir_ctx_t *ctx, const weir_window_op_t *op,
                      weir__span_t win, weir_ts_t wm)
{
    weir_ts_t max = weir__span_max(win);
    weir_ts_t cleanup = weir__span_cleanup(win, op->lateness);
    int rc;

    if (fires_on_event_time(op) && max > wm && max != cleanup) {
        rc = weir_timer_set(ctx, WEIR_TIME_EVENT, max);
        if (rc != WEIR_OK)
            return rc;
    }
    return weir_timer_set(ctx, WEIR_TIME_EVENT, cleanup);
}

/* Early trigger: a processing timer at the next multiple of T, unless one
 * is pending or nothing is left unfired. The timer goes under t->cur. */
static int arm_early(weir_ctx_t *ctx, win_task_t *t, trig_t *tg)
{
    const weir_window_op_t *op = t->op;
    weir_ts_t now;
    weir_ts_t next;
    int rc;

    if (op->trigger != WEIR_TRIGGER_EARLY || tg->proc != NO_TIMER ||
        tg->count == 0)
        return WEIR_OK;
    now = weir_ctx_processing_time(ctx);
    next = weir__ts_add(weir_window_floor(now, op->trigger_param),
                        op->trigger_param);
    rc = set_ns_state(ctx, t);
    if (rc == WEIR_OK)
        rc = weir_timer_set(ctx, WEIR_TIME_PROCESSING, next);
    if (rc == WEIR_OK)
        tg->proc = next;
    return rc;
}

/* ------------------------------------------------------------------ *
 * ## Adding a record to a staged window value
 * ------------------------------------------------------------------ */

/* Folds the record into a (memory only); a negative result from the
 * aggregate is returned in *rejected. */
static void stage_add(win_task_t *t, weir_acc_t *a, const weir_record_t *in,
                      int *rejected)
{
    const weir_window_op_t *op = t->op;
    int rc;

    *rejected = 0;
    if (op->agg == NULL) {
        acc_set_count(a, acc_count(a) + 1);
        return;
    }
    rc = op->agg->add(a, in, op->agg_opaque);
    if (rc < 0)
        *rejected = rc;
}

static int forward_rejected(weir_ctx_t *ctx, const weir_window_op_t *op,
                            const weir_record_t *in, const char *what, int err)
{
    return weir_forward_error(ctx, in, "window aggregate %s: %s: %s",
                              op->agg != NULL ? op->agg->name : "?", what,
                              weir_strerror(err));
}

/* ------------------------------------------------------------------ *
 * ## Per-key session sets (a weir__session_set_t in one value state
 * under the empty namespace).
 * ------------------------------------------------------------------ */

static int set_load(weir_ctx_t *ctx, weir__session_set_t *set, const char *name)
{
    weir_buf_t v;
    int rc;

    rc = set_ns_root(ctx);
    if (rc != WEIR_OK)
        return rc;
    rc = weir_state_get(ctx, name, &v);
    if (rc == WEIR_ENOENT)
        v = WEIR_BUF(NULL, 0);
    else if (rc != WEIR_OK)
        return rc;
    rc = weir__session_set_decode(set, v);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "window: bad %s state", name);
    return WEIR_OK;
}

static int set_store(weir_ctx_t *ctx, win_task_t *t,
                     const weir__session_set_t *set, const char *name)
{
    size_t len;
    int rc;

    rc = set_ns_root(ctx);
    if (rc != WEIR_OK)
        return rc;
    if (set->n == 0)
        return tolerate_missing(weir_state_del(ctx, name));
    len = weir__session_set_encoded_len(set);
    t->out.off = 0;
    t->out.len = 0;
    rc = weir__acc_reserve(&t->out, len);
    if (rc != WEIR_OK)
        return rc;
    weir__session_set_encode(set, t->out.buf);
    return weir_state_put(ctx, name, WEIR_BUF(t->out.buf, len));
}

/* ------------------------------------------------------------------ *
 * ## Tumbling and sliding windows. A window whose end-1 is still ahead
 * of the watermark is pending: its value lives in the key's pending list
 * (state "win.pend", pending.c), so a record reads and writes one value
 * however many windows it falls in. At end-1 a timer takes the window
 * out of the list: it fires (event-time triggers) and, with allowed
 * lateness, its value moves to state "win" under its own namespace until
 * cleanup; a window that a record first reaches at end-1 <= W goes there
 * directly. Timers of a window are set under its own namespace either
 * way.
 * ------------------------------------------------------------------ */

static int pend_load(weir_ctx_t *ctx, win_task_t *t)
{
    weir_buf_t v;
    int rc;

    rc = set_ns_root(ctx);
    if (rc != WEIR_OK)
        return rc;
    rc = weir_state_get(ctx, NAME_PEND, &v);
    if (rc == WEIR_ENOENT)
        v = WEIR_BUF(NULL, 0);
    else if (rc != WEIR_OK)
        return rc;
    return weir__pend_load(&t->pend, v);
}

static int pend_store(weir_ctx_t *ctx, win_task_t *t)
{
    int rc;

    rc = set_ns_root(ctx);
    if (rc != WEIR_OK)
        return rc;
    if (t->pend.len == 0)
        return tolerate_missing(weir_state_del(ctx, NAME_PEND));
    return weir_state_put(ctx, NAME_PEND, WEIR_BUF(t->pend.buf, t->pend.len));
}

/* Finds a pending window: *found 1 with its value in t->acc, or 0. */
static int pend_get(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                    size_t *at, int *found)
{
    weir_buf_t v;
    int rc;

    rc = weir__pend_find(&t->pend, win.start, at, &v);
    *found = rc == WEIR_OK;
    if (rc == WEIR_ENOENT)
        return WEIR_OK;
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "window: bad pending windows");
    return acc_load(ctx, t, &t->acc, v);
}

/* Timers of a new pending window (namespace t->cur): one at end-1, when
 * it leaves the set, and the cleanup at end-1+L when that is later. */
static int pend_arm(weir_ctx_t *ctx, win_task_t *t, weir__span_t win)
{
    weir_ts_t max = weir__span_max(win);
    weir_ts_t cleanup = weir__span_cleanup(win, t->op->lateness);
    int rc;

    rc = set_ns_state(ctx, t);
    if (rc == WEIR_OK)
        rc = weir_timer_set(ctx, WEIR_TIME_EVENT, max);
    if (rc == WEIR_OK && cleanup != max)
        rc = weir_timer_set(ctx, WEIR_TIME_EVENT, cleanup);
    return rc;
}

struct visit {
    weir_ctx_t *ctx;         /* the operator's context       */
    win_task_t *t;           /* scratch                      */
    const weir_record_t *in; /* the record                   */
    weir_ts_t wm;            /* W before the record          */
    int kept;                /* some window took the record  */
    int rejected;            /* first add() error, or 0      */
    int pend_loaded;         /* t->pend holds the key's set  */
    int pend_dirty;          /* t->pend must be written      */
};

/* Adds the record to a pending window (end-1 > W), in the key's list. */
static int update_pending(struct visit *v, weir__span_t win)
{
    weir_ctx_t *ctx = v->ctx;
    win_task_t *t = v->t;
    const weir_window_op_t *op = t->op;
    trig_t tg;
    size_t at = 0;
    int found;
    int rejected;
    int firing;
    int rc;

    if (!v->pend_loaded) {
        rc = pend_load(ctx, t);
        if (rc != WEIR_OK)
            return rc;
        v->pend_loaded = 1;
    }
    weir__ns_put_ts(t->cur, win.start);
    rc = pend_get(ctx, t, win, &at, &found);
    if (rc == WEIR_OK && !found)
        rc = acc_fresh(ctx, t, &t->acc);
    if (rc != WEIR_OK)
        return rc;
    stage_add(t, &t->acc, v->in, &rejected);
    if (rejected != 0) {
        if (v->rejected == 0)
            v->rejected = rejected;
        return WEIR_OK;
    }
    if (op->agg == NULL) {
        uint64_t i = acc_count(&t->acc) - 1;

        rc = put_record(ctx, t, i, i, v->in);
        if (rc != WEIR_OK)
            return rc;
    }
    trig_load(op, &t->acc, &tg);
    tg.count++;
    firing = fire_now(op, win, v->wm, &tg);
    rc = arm_early(ctx, t, &tg);
    if (rc == WEIR_OK && !found)
        rc = pend_arm(ctx, t, win);
    if (rc != WEIR_OK)
        return rc;
    trig_store(op, &t->acc, &tg);
    rc = weir__pend_put(&t->pend, win.start, at, found, acc_whole(&t->acc));
    if (rc != WEIR_OK)
        return rc;
    v->pend_dirty = 1;
    if (firing) /* the count trigger */
        rc = fire(ctx, t, win, &t->acc);
    return rc;
}

static int update_window(weir__span_t win, void *arg)
{
    struct visit *v = arg;
    weir_ctx_t *ctx = v->ctx;
    win_task_t *t = v->t;
    const weir_window_op_t *op = t->op;
    trig_t tg;
    int rejected;
    int fresh;
    int firing;
    int rc;

    if (weir__span_late(win, op->lateness, v->wm))
        return WEIR_OK;
    v->kept = 1;
    if (weir__span_max(win) > v->wm)
        return update_pending(v, win);
    rc = set_ns_start(ctx, t, win);
    if (rc == WEIR_OK)
        rc = acc_get(ctx, t, &t->acc, &fresh);
    if (rc != WEIR_OK)
        return rc;
    stage_add(t, &t->acc, v->in, &rejected);
    if (rejected != 0) {
        if (v->rejected == 0)
            v->rejected = rejected;
        return WEIR_OK;
    }
    if (op->agg == NULL) {
        uint64_t idx = acc_count(&t->acc) - 1;

        rc = put_record(ctx, t, idx, idx, v->in);
        if (rc == WEIR_OK)
            rc = set_ns_state(ctx, t);
        if (rc != WEIR_OK)
            return rc;
    }
    trig_load(op, &t->acc, &tg);
    tg.count++;
    firing = fire_now(op, win, v->wm, &tg);
    rc = arm_early(ctx, t, &tg);
    if (rc != WEIR_OK)
        return rc;
    trig_store(op, &t->acc, &tg);
    rc = acc_put(ctx, t, &t->acc);
    if (rc == WEIR_OK && fresh)
        rc = arm_timers(ctx, op, win, v->wm);
    if (rc == WEIR_OK && firing)
        rc = fire(ctx, t, win, &t->acc);
    return rc;
}

static int process_fixed(weir_ctx_t *ctx, win_task_t *t,
                         const weir_record_t *in, weir_ts_t ts, weir_ts_t wm)
{
    const weir_window_op_t *op = t->op;
    struct visit v = {.ctx = ctx, .t = t, .in = in, .wm = wm};
    int rc;

    rc = op->assigner->assign(op->size, op->slide, ts, update_window, &v);
    if (rc == WEIR_OK && v.pend_dirty)
        rc = pend_store(ctx, t);
    if (rc < 0)
        return rc;
    if (!v.kept)
        return weir_forward_to(ctx, WEIR_TAG_LATE, in);
    if (v.rejected != 0)
        return forward_rejected(ctx, op, in, "add", v.rejected);
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Session windows. State and timers of a session live under its id
 * (t->cur); see session.c for the wake-up timer.
 * ------------------------------------------------------------------ */

static int sessions_load(weir_ctx_t *ctx, win_task_t *t)
{
    return set_load(ctx, &t->sessions, NAME_SESSIONS);
}

static int sessions_store(weir_ctx_t *ctx, win_task_t *t)
{
    return set_store(ctx, t, &t->sessions, NAME_SESSIONS);
}

/* The next moment a session needs its timer, seen at time now: its
 * firing while end-1 is ahead (event-time triggers), else its cleanup. */
static weir_ts_t session_due(const weir_window_op_t *op,
                             const weir__session_t *s, weir_ts_t now)
{
    weir__span_t win = session_span(s);

    if (fires_on_event_time(op) && weir__span_max(win) > now)
        return weir__span_max(win);
    return weir__span_cleanup(win, op->lateness);
}

/* Makes sure a wake-up timer is pending at or before the session's due
 * time; t->cur must hold the session's id. */
static int session_wake(weir_ctx_t *ctx, win_task_t *t, weir__session_t *s,
                        weir_ts_t now)
{
    weir_ts_t due = session_due(t->op, s, now);
    int rc;

    if (s->wake != NO_TIMER && s->wake <= due)
        return WEIR_OK;
    rc = set_ns_state(ctx, t);
    if (rc == WEIR_OK)
        rc = weir_timer_set(ctx, WEIR_TIME_EVENT, due);
    if (rc == WEIR_OK)
        s->wake = due;
    return rc;
}

/* Writes a session's staged value (t->acc) and its timers. */
static int session_commit(weir_ctx_t *ctx, win_task_t *t, weir__session_t *s,
                          trig_t *tg, weir_ts_t wm)
{
    const weir_window_op_t *op = t->op;
    int rc;

    weir__ns_put_u64(t->cur, s->sid);
    rc = arm_early(ctx, t, tg);
    if (rc == WEIR_OK)
        rc = session_wake(ctx, t, s, wm);
    if (rc != WEIR_OK)
        return rc;
    trig_store(op, &t->acc, tg);
    return acc_put(ctx, t, &t->acc);
}

/* The record opens a session of its own. */
static int session_open(weir_ctx_t *ctx, win_task_t *t, const weir_record_t *in,
                        weir__span_t nw, weir_ts_t wm)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    uint64_t sid;
    trig_t tg;
    int rejected;
    int firing;
    int rc;

    rc = acc_fresh(ctx, t, &t->acc);
    if (rc != WEIR_OK)
        return rc;
    stage_add(t, &t->acc, in, &rejected);
    if (rejected != 0)
        return forward_rejected(ctx, op, in, "add", rejected);
    sid = set->next++;
    trig_load(op, &t->acc, &tg);
    tg.count = 1;
    firing = fire_now(op, nw, wm, &tg);
    rc = weir__session_set_add(set, nw, sid);
    if (rc == WEIR_OK && op->agg == NULL) {
        weir__ns_put_u64(t->cur, sid);
        rc = put_record(ctx, t, 0, set->next++, in);
    }
    if (rc == WEIR_OK)
        rc = session_commit(ctx, t, &set->items[set->n - 1], &tg, wm);
    if (rc == WEIR_OK)
        rc = sessions_store(ctx, t);
    if (rc == WEIR_OK && firing)
        rc = fire(ctx, t, nw, &t->acc);
    return rc;
}

/* The record falls inside a live session without changing its window. */
static int session_join(weir_ctx_t *ctx, win_task_t *t, const weir_record_t *in,
                        size_t idx, weir_ts_t wm)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    weir__span_t win = session_span(&set->items[idx]);
    trig_t tg;
    int rejected;
    int firing;
    int fresh;
    int rc;

    weir__ns_put_u64(t->cur, set->items[idx].sid);
    rc = acc_get(ctx, t, &t->acc, &fresh);
    if (rc != WEIR_OK)
        return rc;
    stage_add(t, &t->acc, in, &rejected);
    if (rejected != 0)
        return forward_rejected(ctx, op, in, "add", rejected);
    trig_load(op, &t->acc, &tg);
    tg.count++;
    firing = fire_now(op, win, wm, &tg);
    if (op->agg == NULL)
        rc = put_record(ctx, t, acc_count(&t->acc) - 1, set->next++, in);
    if (rc == WEIR_OK)
        rc = session_commit(ctx, t, &set->items[idx], &tg, wm);
    if (rc == WEIR_OK) /* the value lives in the set */
        rc = sessions_store(ctx, t);
    if (rc == WEIR_OK && firing) {
        weir__ns_put_u64(t->cur, set->items[idx].sid);
        rc = fire(ctx, t, win, &t->acc);
    }
    return rc;
}

/* Stages the merge of the planned sessions into the oldest one, in t->acc;
 * notes each one's pending processing timer and record count in t->parts.
 * *rejected gets a merge() or add() error; nothing is written. */
static int session_stage_merge(weir_ctx_t *ctx, win_task_t *t, size_t found,
                               const weir_record_t *in, trig_t *tg,
                               int *rejected, const char **what)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    trig_t other;
    uint64_t count = 0;
    size_t k;
    int fresh;
    int rc;

    rc = grow((void **)&t->parts, &t->cap_parts, found, sizeof(*t->parts));
    if (rc != WEIR_OK)
        return rc;
    *rejected = 0;
    for (k = 0; k < found; k++) {
        weir_acc_t *a = k == 0 ? &t->acc : &t->other;

        weir__ns_put_u64(t->cur, set->items[set->merged[k]].sid);
        rc = acc_get(ctx, t, a, &fresh);
        if (rc != WEIR_OK)
            return rc;
        trig_load(op, a, &other);
        t->parts[k].proc = other.proc;
        t->parts[k].n = op->agg == NULL ? acc_count(a) : 0;
        count += other.count;
        if (k == 0)
            continue;
        if (op->agg == NULL) {
            acc_set_count(&t->acc, acc_count(&t->acc) + acc_count(a));
            continue;
        }
        rc = op->agg->merge(&t->acc, acc_part(a), op->agg_opaque);
        if (rc < 0) {
            *rejected = rc;
            *what = "merge";
            return WEIR_OK;
        }
    }
    stage_add(t, &t->acc, in, rejected);
    *what = "add";
    tg->count = count + 1;
    tg->proc = t->parts[0].proc; /* the target's timer stays valid */
    return WEIR_OK;
}

/* Removes set->merged[1..found-1] from the set. Removal moves the last
 * entry into the hole, so indices go from the highest down: every index
 * still to remove is then below the hole and never moved. */
static void remove_merged(weir__session_set_t *set, size_t found)
{
    size_t i;
    size_t j;

    for (i = 2; i < found; i++) {
        size_t x = set->merged[i];

        for (j = i; j > 1 && set->merged[j - 1] < x; j--)
            set->merged[j] = set->merged[j - 1];
        set->merged[j] = x;
    }
    for (i = 1; i < found; i++)
        weir__session_set_remove(set, set->merged[i]);
}

/* Commits a staged merge for the younger sessions: their records move to
 * the target, their state and timers go. */
static int session_retire(weir_ctx_t *ctx, win_task_t *t, size_t found,
                          uint64_t target)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    uint64_t base = t->parts[0].n;
    size_t k;
    int rc = WEIR_OK;

    for (k = 1; rc == WEIR_OK && k < found; k++) {
        weir__session_t s = set->items[set->merged[k]];

        if (op->agg == NULL) {
            rc = move_records(ctx, t, s.sid, t->parts[k].n, target, base);
            base += t->parts[k].n;
        }
        if (rc == WEIR_OK)
            rc = set_ns_sid(ctx, t, s.sid);
        if (rc == WEIR_OK)
            rc = val_del(ctx, t);
        if (rc == WEIR_OK && s.wake != NO_TIMER)
            rc = tolerate_missing(weir_timer_del(ctx, WEIR_TIME_EVENT, s.wake));
        if (rc == WEIR_OK && t->parts[k].proc != NO_TIMER)
            rc = tolerate_missing(
                weir_timer_del(ctx, WEIR_TIME_PROCESSING, t->parts[k].proc));
    }
    return rc;
}

/* The record merges sessions (or extends one). */
static int session_merge(weir_ctx_t *ctx, win_task_t *t,
                         const weir_record_t *in, size_t found,
                         weir__span_t hull, weir_ts_t wm)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    weir__session_t *target = &set->items[set->merged[0]];
    const char *what = "add";
    trig_t tg;
    int rejected;
    int firing;
    int rc;

    rc = session_stage_merge(ctx, t, found, in, &tg, &rejected, &what);
    if (rc != WEIR_OK)
        return rc;
    if (rejected != 0)
        return forward_rejected(ctx, op, in, what, rejected);
    firing = fire_now(op, hull, wm, &tg);
    rc = session_retire(ctx, t, found, target->sid);
    target->start = hull.start;
    target->end = hull.end;
    if (rc == WEIR_OK && op->agg == NULL) {
        weir__ns_put_u64(t->cur, target->sid);
        rc = put_record(ctx, t, acc_count(&t->acc) - 1, set->next++, in);
    }
    if (rc == WEIR_OK)
        rc = session_commit(ctx, t, target, &tg, wm);
    if (rc != WEIR_OK)
        return rc;
    remove_merged(set, found); /* target may move: t->cur keeps its id */
    rc = sessions_store(ctx, t);
    if (rc == WEIR_OK && firing)
        rc = fire(ctx, t, hull, &t->acc);
    return rc;
}

static int process_session(weir_ctx_t *ctx, win_task_t *t,
                           const weir_record_t *in, weir_ts_t ts, weir_ts_t wm)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    weir__span_t nw;
    weir__span_t hull;
    long found;
    int rc;

    nw.start = ts;
    nw.end = weir__ts_add(ts, op->size);
    rc = sessions_load(ctx, t);
    if (rc != WEIR_OK)
        return rc;
    found = weir__session_set_plan(set, nw, &hull);
    if (found < 0)
        return (int)found;
    /* a merged window contains a live (hence not late) session */
    if (weir__span_late(hull, op->lateness, wm))
        return weir_forward_to(ctx, WEIR_TAG_LATE, in);
    if (found == 0)
        return session_open(ctx, t, in, nw, wm);
    if (found == 1 && span_eq(session_span(&set->items[set->merged[0]]), hull))
        return session_join(ctx, t, in, set->merged[0], wm);
    return session_merge(ctx, t, in, (size_t)found, hull, wm);
}

/* ------------------------------------------------------------------ *
 * ## Timers firing. On entry the context's namespace is the window's
 * state namespace, also held in t->cur.
 * ------------------------------------------------------------------ */

/* Event timer at end-1: fire if the window has state. */
static int on_trigger_timer(weir_ctx_t *ctx, win_task_t *t, weir__span_t win)
{
    const weir_window_op_t *op = t->op;
    weir_buf_t v;
    trig_t tg;
    int rc;

    rc = val_get(ctx, t, &v);
    if (rc == WEIR_ENOENT)
        return WEIR_OK;
    if (rc == WEIR_OK)
        rc = acc_load(ctx, t, &t->acc, v);
    if (rc != WEIR_OK)
        return rc;
    trig_load(op, &t->acc, &tg);
    if (tg.count != 0) {
        tg.count = 0;
        trig_store(op, &t->acc, &tg);
        rc = acc_put(ctx, t, &t->acc);
        if (rc != WEIR_OK)
            return rc;
    }
    return fire(ctx, t, win, &t->acc);
}

/* Processing timer (early trigger): fire if records came since the last
 * firing. */
static int on_early_timer(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                          weir_ts_t when)
{
    const weir_window_op_t *op = t->op;
    weir_buf_t v;
    trig_t tg;
    int firing;
    int rc;

    rc = val_get(ctx, t, &v);
    if (rc == WEIR_ENOENT)
        return WEIR_OK;
    if (rc == WEIR_OK)
        rc = acc_load(ctx, t, &t->acc, v);
    if (rc != WEIR_OK)
        return rc;
    trig_load(op, &t->acc, &tg);
    if (tg.proc != when)
        return WEIR_OK;
    tg.proc = NO_TIMER;
    firing = tg.count > 0;
    tg.count = 0;
    trig_store(op, &t->acc, &tg);
    rc = acc_put(ctx, t, &t->acc);
    if (rc == WEIR_OK && firing)
        rc = fire(ctx, t, win, &t->acc);
    return rc;
}

/* Cleanup: deletes the window's state (namespace t->cur); *proc gets its
 * pending processing timer (NO_TIMER when none). */
static int clear_state(weir_ctx_t *ctx, win_task_t *t, weir_ts_t *proc)
{
    const weir_window_op_t *op = t->op;
    weir_buf_t v;
    trig_t tg;
    int rc;

    *proc = NO_TIMER;
    rc = set_ns_state(ctx, t);
    if (rc != WEIR_OK)
        return rc;
    if (op->agg != NULL && op->prefix < 16) /* nothing to read first */
        return val_del(ctx, t);
    rc = val_get(ctx, t, &v);
    if (rc == WEIR_ENOENT)
        return WEIR_OK;
    if (rc == WEIR_OK)
        rc = acc_load(ctx, t, &t->acc, v);
    if (rc != WEIR_OK)
        return rc;
    trig_load(op, &t->acc, &tg);
    *proc = tg.proc;
    if (op->agg == NULL) {
        rc = delete_records(ctx, t, acc_count(&t->acc));
        if (rc == WEIR_OK)
            rc = set_ns_state(ctx, t);
        if (rc != WEIR_OK)
            return rc;
    }
    return val_del(ctx, t);
}

/* Early trigger, pending window: fire if records came since the last
 * firing. */
static int pend_early_timer(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                            weir_ts_t when)
{
    const weir_window_op_t *op = t->op;
    trig_t tg;
    size_t at = 0;
    int found;
    int firing;
    int rc;

    rc = pend_load(ctx, t);
    if (rc == WEIR_OK)
        rc = pend_get(ctx, t, win, &at, &found);
    if (rc != WEIR_OK || !found)
        return rc;
    trig_load(op, &t->acc, &tg);
    if (tg.proc != when)
        return WEIR_OK;
    tg.proc = NO_TIMER;
    firing = tg.count > 0;
    tg.count = 0;
    trig_store(op, &t->acc, &tg);
    rc = weir__pend_put(&t->pend, win.start, at, 1, acc_whole(&t->acc));
    if (rc == WEIR_OK)
        rc = pend_store(ctx, t);
    weir__ns_put_ts(t->cur, win.start);
    if (rc == WEIR_OK && firing)
        rc = fire(ctx, t, win, &t->acc);
    return rc;
}

/* end-1 came: the window leaves the pending list. It fires (event-time
 * triggers); then it is dropped when end-1 is also its cleanup time, or
 * kept under its own namespace for the allowed lateness. *found is 0
 * when the window was not pending. */
static int pend_leave(weir_ctx_t *ctx, win_task_t *t, weir__span_t win,
                      int *found)
{
    const weir_window_op_t *op = t->op;
    int drop = weir__span_cleanup(win, op->lateness) == weir__span_max(win);
    int firing = fires_on_event_time(op);
    trig_t tg;
    size_t at = 0;
    int rc;

    rc = pend_load(ctx, t);
    if (rc == WEIR_OK)
        rc = pend_get(ctx, t, win, &at, found);
    if (rc != WEIR_OK || !*found)
        return rc;
    trig_load(op, &t->acc, &tg);
    if (firing && tg.count != 0) {
        tg.count = 0;
        trig_store(op, &t->acc, &tg);
    }
    weir__pend_remove(&t->pend, at);
    rc = pend_store(ctx, t);
    if (rc == WEIR_OK)
        rc = set_ns_start(ctx, t, win);
    if (rc == WEIR_OK && !drop)
        rc = acc_put(ctx, t, &t->acc);
    if (rc == WEIR_OK && firing)
        rc = fire(ctx, t, win, &t->acc);
    if (rc != WEIR_OK || !drop)
        return rc;
    if (op->agg == NULL)
        rc = delete_records(ctx, t, acc_count(&t->acc));
    if (rc == WEIR_OK && tg.proc != NO_TIMER)
        rc = set_ns_state(ctx, t);
    if (rc == WEIR_OK && tg.proc != NO_TIMER)
        rc = tolerate_missing(
            weir_timer_del(ctx, WEIR_TIME_PROCESSING, tg.proc));
    return rc;
}

static int fixed_timer(weir_ctx_t *ctx, win_task_t *t, weir_time_domain_t dom,
                       weir_ts_t when, weir__span_t win)
{
    const weir_window_op_t *op = t->op;
    weir_ts_t proc;
    int found;
    int rc;

    if (dom == WEIR_TIME_PROCESSING &&
        weir__span_max(win) > weir_ctx_watermark(ctx))
        return pend_early_timer(ctx, t, win, when);
    if (dom == WEIR_TIME_EVENT && when == weir__span_max(win)) {
        rc = pend_leave(ctx, t, win, &found);
        if (rc != WEIR_OK || found)
            return rc;
    }
    rc = set_ns_start(ctx, t, win);
    if (rc != WEIR_OK)
        return rc;
    if (dom == WEIR_TIME_PROCESSING)
        return on_early_timer(ctx, t, win, when);
    if (when != weir__span_cleanup(win, op->lateness))
        return WEIR_OK;
    rc = clear_state(ctx, t, &proc);
    if (rc == WEIR_OK && proc != NO_TIMER)
        rc = tolerate_missing(weir_timer_del(ctx, WEIR_TIME_PROCESSING, proc));
    return rc;
}

/* A session's timer: fire exactly at end-1, clear at end-1+L, and
 * otherwise move the wake-up to the next moment the session needs. */
static int session_timer(weir_ctx_t *ctx, win_task_t *t, weir_time_domain_t dom,
                         weir_ts_t when, uint64_t sid)
{
    const weir_window_op_t *op = t->op;
    weir__session_set_t *set = &t->sessions;
    weir__span_t win;
    weir_ts_t proc;
    long idx;
    int rc;

    rc = sessions_load(ctx, t);
    if (rc != WEIR_OK)
        return rc;
    idx = weir__session_set_find(set, sid);
    if (idx < 0)
        return WEIR_OK; /* not a live session (any more) */
    win = session_span(&set->items[idx]);
    rc = set_ns_sid(ctx, t, sid);
    if (rc != WEIR_OK)
        return rc;
    if (dom == WEIR_TIME_PROCESSING) {
        rc = on_early_timer(ctx, t, win, when);
        return rc == WEIR_OK ? sessions_store(ctx, t) : rc;
    }
    if (set->items[idx].wake == when)
        set->items[idx].wake = NO_TIMER;
    if (fires_on_event_time(op) && when == weir__span_max(win)) {
        rc = on_trigger_timer(ctx, t, win);
        if (rc != WEIR_OK)
            return rc;
    }
    weir__ns_put_u64(t->cur, sid);
    if (when >= weir__span_cleanup(win, op->lateness)) {
        rc = clear_state(ctx, t, &proc);
        if (rc == WEIR_OK && proc != NO_TIMER)
            rc = tolerate_missing(
                weir_timer_del(ctx, WEIR_TIME_PROCESSING, proc));
        if (rc != WEIR_OK)
            return rc;
        weir__session_set_remove(set, (size_t)idx);
    } else {
        rc = session_wake(ctx, t, &set->items[idx], when);
        if (rc != WEIR_OK)
            return rc;
    }
    return sessions_store(ctx, t);
}

/* Fixed windows: the timer's namespace is the window start. Sessions:
 * the session id. */
static int timer_scope(weir_ctx_t *ctx, const weir_window_op_t *op,
                       weir__span_t *win, uint64_t *sid)
{
    weir_buf_t ns = weir_ctx_namespace(ctx);

    if (ns.data == NULL || ns.len != 8)
        return WEIR_ECORRUPT;
    if (is_merging(op)) {
        *sid = weir__ns_get_u64(ns.data);
        return WEIR_OK;
    }
    win->start = weir__ns_get_ts(ns.data);
    win->end = weir__ts_add(win->start, op->size);
    return WEIR_OK;
}

/* ------------------------------------------------------------------ *
 * ## Operator callbacks
 * ------------------------------------------------------------------ */

static int win_open(weir_ctx_t *ctx, void *st)
{
    win_task_t *t = st;

    t->op = weir_ctx_opaque(ctx);
    if (t->op == NULL)
        return weir_ctx_error(ctx, WEIR_EINVAL,
                              "window: operator arguments missing");
    return WEIR_OK;
}

static int win_process(weir_ctx_t *ctx, void *st, const weir_record_t *in)
{
    win_task_t *t = st;
    weir_ts_t ts = weir_record_ts(in);
    weir_ts_t wm = weir_ctx_watermark(ctx);

    if (ts == WEIR_TS_MIN)
        return weir_forward_error(ctx, in,
                                  "window: record has no event timestamp");
    if (is_merging(t->op))
        return process_session(ctx, t, in, ts, wm);
    return process_fixed(ctx, t, in, ts, wm);
}

static int win_on_timer(weir_ctx_t *ctx, void *st, weir_time_domain_t dom,
                        weir_ts_t when)
{
    win_task_t *t = st;
    weir__span_t win = {0, 0};
    uint64_t sid = 0;
    int rc;

    rc = timer_scope(ctx, t->op, &win, &sid);
    if (rc != WEIR_OK)
        return weir_ctx_error(ctx, rc, "window: timer without a window");
    if (is_merging(t->op))
        return session_timer(ctx, t, dom, when, sid);
    return fixed_timer(ctx, t, dom, when, win);
}

static void win_close(weir_ctx_t *ctx, void *st)
{
    win_task_t *t = st;

    (void)ctx;
    weir__acc_free(&t->acc);
    weir__acc_free(&t->other);
    weir__acc_free(&t->out);
    weir__acc_free(&t->rec);
    weir__acc_free(&t->arena);
    weir__session_set_free(&t->sessions);
    weir__pend_free(&t->pend);
    weir_free(t->items);
    weir_free(t->recs);
    weir_free(t->parts);
    memset(t, 0, sizeof(*t));
}

const weir_operator_def_t weir_op_window = {
    .version = WEIR_OPERATOR_VERSION,
    .name = "window",
    .flags = WEIR_OP_F_KEYED,
    .state_size = sizeof(win_task_t),
    .open = win_open,
    .process = win_process,
    .on_timer = win_on_timer,
    .close = win_close,
};

/* ------------------------------------------------------------------ *
 * ## Arguments
 * ------------------------------------------------------------------ */

static void set_err(char *errstr, size_t errstr_size, const char *msg)
{
    if (errstr != NULL && errstr_size > 0)
        snprintf(errstr, errstr_size, "%s", msg);
}

static const weir__assigner_t *assigner_for(weir_window_kind_t kind)
{
    switch (kind) {
    case WEIR_WINDOW_TUMBLING:
        return &weir__assigner_tumbling;
    case WEIR_WINDOW_SLIDING:
        return &weir__assigner_sliding;
    case WEIR_WINDOW_SESSION:
        return &weir__assigner_session;
    default:
        return NULL;
    }
}

static const char *check_agg(const weir_window_t *w,
                             const weir_aggregate_def_t *agg)
{
    if (agg == NULL)
        return "window: aggregate is NULL";
    if (agg->version != WEIR_AGGREGATE_VERSION)
        return "window: aggregate has an unknown version";
    if (agg->add == NULL || agg->result == NULL)
        return "window: aggregate needs add and result";
    if (weir_window_kind(w) == WEIR_WINDOW_SESSION && agg->merge == NULL)
        return "window: session windows need an aggregate with merge";
    return NULL;
}

/* Builds the arguments; w is consumed. *err gets the code on failure. */
static weir_window_op_t *op_build(weir_window_t *w,
                                  const weir_aggregate_def_t *agg,
                                  const void *agg_opaque, weir_window_fn fn,
                                  void *fn_opaque, char *errstr,
                                  size_t errstr_size, int *err)
{
    weir_window_op_t *op;
    const char *why = NULL;

    *err = WEIR_EINVAL;
    if (w == NULL)
        why = "window: window spec is NULL";
    else if (weir_window_kind(w) == WEIR_WINDOW_ROLLING)
        why = "window: rolling scopes are for dedup only";
    else if (assigner_for(weir_window_kind(w)) == NULL)
        why = "window: unknown window kind";
    else if (fn == NULL)
        why = check_agg(w, agg);
    if (why != NULL) {
        set_err(errstr, errstr_size, why);
        weir_window_destroy(w);
        return NULL;
    }
    op = weir_calloc(1, sizeof(*op));
    if (op == NULL) {
        *err = WEIR_ENOMEM;
        set_err(errstr, errstr_size, "window: out of memory");
        weir_window_destroy(w);
        return NULL;
    }
    op->kind = weir_window_kind(w);
    op->size = weir_window_size(w);
    op->slide = weir_window_slide(w);
    op->lateness = weir_window_lateness(w);
    op->trigger = weir_window_trigger(w, &op->trigger_param);
    op->assigner = assigner_for(op->kind);
    op->agg = fn == NULL ? agg : NULL;
    op->agg_opaque = fn == NULL ? agg_opaque : NULL;
    op->fn = fn;
    op->fn_opaque = fn_opaque;
    op->prefix = op->trigger == WEIR_TRIGGER_COUNT   ? 8
                 : op->trigger == WEIR_TRIGGER_EARLY ? 16
                                                     : 0;
    op->acc_size = fn == NULL ? agg->acc_size : 8;
    weir_window_destroy(w);
    *err = WEIR_OK;
    return op;
}

weir_window_op_t *weir_window_op_new(weir_window_t *w,
                                     const weir_aggregate_def_t *agg,
                                     const void *agg_opaque, char *errstr,
                                     size_t errstr_size)
{
    int err;

    if (agg == NULL) {
        set_err(errstr, errstr_size, "window: aggregate is NULL");
        weir_window_destroy(w);
        return NULL;
    }
    return op_build(w, agg, agg_opaque, NULL, NULL, errstr, errstr_size, &err);
}

weir_window_op_t *weir_window_op_new_apply(weir_window_t *w, weir_window_fn fn,
                                           void *opaque, char *errstr,
                                           size_t errstr_size)
{
    int err;

    if (fn == NULL) {
        set_err(errstr, errstr_size, "window: window function is NULL");
        weir_window_destroy(w);
        return NULL;
    }
    return op_build(w, NULL, NULL, fn, opaque, errstr, errstr_size, &err);
}

void weir_window_op_destroy(weir_window_op_t *op)
{
    weir_free(op);
}

static void op_free(void *p)
{
    weir_window_op_destroy(p);
}

/* ------------------------------------------------------------------ *
 * ## Builder and harness
 * ------------------------------------------------------------------ */

static weir_stream_t *apply_op(weir_stream_t *s, weir_window_op_t *op, int err,
                               const char *why)
{
    int rc;

    if (s == NULL || !weir_stream_ok(s)) {
        weir_window_op_destroy(op);
        return s;
    }
    if (op == NULL)
        return weir_stream_error(s, err, why);
    rc = weir_pipeline_attach(weir_stream_pipeline(s), op, op_free);
    if (rc != WEIR_OK)
        return weir_stream_error(s, rc, "window: cannot attach arguments");
    return weir_stream_apply(s, &weir_op_window, op);
}

weir_stream_t *weir_stream_window(weir_stream_t *s, weir_window_t *w,
                                  const weir_aggregate_def_t *agg,
                                  const void *agg_opaque)
{
    char why[128] = "window: aggregate is NULL";
    weir_window_op_t *op = NULL;
    int err = WEIR_EINVAL;

    if (agg != NULL)
        op = op_build(w, agg, agg_opaque, NULL, NULL, why, sizeof(why), &err);
    else
        weir_window_destroy(w);
    return apply_op(s, op, err, why);
}

weir_stream_t *weir_stream_window_apply(weir_stream_t *s, weir_window_t *w,
                                        weir_window_fn fn, void *opaque)
{
    char why[128] = "window: window function is NULL";
    weir_window_op_t *op = NULL;
    int err = WEIR_EINVAL;

    if (fn != NULL)
        op = op_build(w, NULL, NULL, fn, opaque, why, sizeof(why), &err);
    else
        weir_window_destroy(w);
    return apply_op(s, op, err, why);
}

weir_harness_t *weir_harness_new_window_ex(weir_window_t *w,
                                           const weir_aggregate_def_t *agg,
                                           const void *agg_opaque)
{
    weir_window_op_t *op;
    weir_harness_t *h;

    op = weir_window_op_new(w, agg, agg_opaque, NULL, 0);
    if (op == NULL)
        return NULL;
    h = weir_harness_new(&weir_op_window, op);
    if (h == NULL) {
        weir_window_op_destroy(op);
        return NULL;
    }
    if (weir_harness_attach(h, op, op_free) != WEIR_OK) {
        weir_harness_destroy(h);
        return NULL;
    }
    return h;
}

weir_harness_t *weir_harness_new_window(weir_window_t *w,
                                        const weir_aggregate_def_t *agg)
{
    return weir_harness_new_window_ex(w, agg, NULL);
}
