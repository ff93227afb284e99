/*
 * examples/sessions_dedup.c - drop retransmitted events with a session
 * dedup scope, then count the unique events per user per minute.
 *
 * How it works
 *   600 events, one per second of event time, each with an id ("e42",
 *   the record key) and a user ("u2", the record value). Some are sent
 *   again, as a client that retries would:
 *     - every 4th event once more 3 s later: within the 30 s session of
 *       its first copy, so it is a duplicate (and extends the session);
 *     - every 50th event once more 40 s later: its session ended 30 s
 *       after the last copy, so it opens a new session and counts again.
 *   The records are produced in timestamp order from a table built in
 *   main().
 *
 *     generator -> watermark (bounded, 5 s) -> keyby (event id)
 *               -> dedup, session scope 30 s -> keyby (user)
 *               -> tumbling 1 min window, count -> collect (print)
 *     dedup's duplicates side output -> collect (count)
 *
 * Invariants
 *   600 + 12 events are unique and 150 are duplicates, whatever the
 *   parallelism; the program checks both and exits 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include <weir.h>

#define EVENTS      600
#define START       WEIR_SECONDS(1700000000)
#define RESENT_SOON (EVENTS / 4)  /* every 4th event, 3 s later   */
#define RESENT_LATE (EVENTS / 50) /* every 50th event, 40 s later */
#define RECORDS     (EVENTS + RESENT_SOON + RESENT_LATE)

struct event {
    weir_ts_t ts;
    unsigned id;
};

struct feed {
    struct event ev[RECORDS]; /* sorted by ts                 */
    char key[16];             /* borrowed until the next call */
    char value[16];
};

struct totals {
    uint64_t records; /* records reaching the sink    */
    int64_t counted;  /* sum of window counts         */
};

static int by_ts(const void *a, const void *b)
{
    const struct event *x = a;
    const struct event *y = b;

    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static void feed_init(struct feed *f)
{
    size_t n = 0;
    unsigned id;

    for (id = 0; id < EVENTS; id++) {
        weir_ts_t ts = START + WEIR_SECONDS(id);

        f->ev[n++] = (struct event){.ts = ts, .id = id};
        if (id % 4 == 0)
            f->ev[n++] = (struct event){.ts = ts + WEIR_SECONDS(3), .id = id};
        if (id % 50 == 0)
            f->ev[n++] = (struct event){.ts = ts + WEIR_SECONDS(40), .id = id};
    }
    qsort(f->ev, n, sizeof(f->ev[0]), by_ts);
}

static int gen_event(void *opaque, uint64_t i, weir_buf_t *key,
                     weir_buf_t *value, weir_ts_t *ts)
{
    struct feed *f = opaque;

    if (i >= RECORDS)
        return 0;
    snprintf(f->key, sizeof(f->key), "e%u", f->ev[i].id);
    snprintf(f->value, sizeof(f->value), "u%u", f->ev[i].id % 5);
    *key = WEIR_BUF_STR(f->key);
    *value = WEIR_BUF_STR(f->value);
    *ts = f->ev[i].ts;
    return 1;
}

/* Keys the unique events by user: the value, borrowed from rec. */
static int user_key(const weir_record_t *rec, weir_buf_t *key, void *opaque)
{
    (void)opaque;
    *key = weir_record_value(rec);
    return WEIR_OK;
}

static int print_count(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct totals *t = opaque;
    weir_buf_t key = weir_record_key(rec);
    weir_buf_t value = weir_record_value(rec);
    weir_ts_t start;
    weir_ts_t end;
    char text[24];
    int rc;

    (void)tag;
    rc = weir_record_window(rec, &start, &end);
    if (rc != WEIR_OK)
        return rc;
    snprintf(text, sizeof(text), "%.*s", (int)value.len,
             (const char *)value.data);
    t->records++;
    t->counted += strtoll(text, NULL, 10);
    printf("%.*s [%lld, %lld) %s unique events\n", (int)key.len,
           (const char *)key.data, (long long)start, (long long)end, text);
    return WEIR_OK;
}

static int count_record(const weir_record_t *rec, const char *tag, void *opaque)
{
    struct totals *t = opaque;

    (void)rec;
    (void)tag;
    t->records++;
    return WEIR_OK;
}

int main(void)
{
    static struct feed feed; /* large: not on the stack */
    struct totals unique = {0};
    struct totals dups = {0};
    struct totals late = {0};
    char errstr[256];
    weir_pipeline_t *p;
    weir_stream_t *s;
    weir_stream_t *deduped;
    weir_stream_t *counts;
    int rc;

    feed_init(&feed);
    p = weir_pipeline_new("sessions-dedup", NULL, errstr, sizeof(errstr));
    if (p == NULL) {
        fprintf(stderr, "pipeline: %s\n", errstr);
        return 1;
    }

    s = weir_source_generator(p, "events", gen_event, &feed);
    s = weir_stream_watermark(s, weir_watermark_bounded(WEIR_SECONDS(5)));
    s = weir_stream_keyby(s, NULL, NULL); /* by event id, the record key */
    deduped = weir_stream_dedup_scope(s, weir_window_session(WEIR_SECONDS(30)));
    weir_stream_collect(weir_stream_side_output(deduped, WEIR_TAG_DUPLICATE),
                        count_record, &dups);
    weir_stream_collect(weir_stream_side_output(deduped, WEIR_TAG_LATE),
                        count_record, &late);

    s = weir_stream_keyby(deduped, user_key, NULL);
    counts = weir_stream_window(s, weir_window_tumbling(WEIR_MINUTES(1)),
                                &weir_agg_count, NULL);
    weir_stream_collect(counts, print_count, &unique);

    rc = weir_pipeline_run(p);
    if (rc != WEIR_OK) {
        fprintf(stderr, "run: %s: %s\n", weir_strerror(rc),
                weir_pipeline_errstr(p));
        weir_pipeline_destroy(p);
        return 1;
    }
    weir_pipeline_destroy(p);

    printf("%lld unique, %llu duplicates, %llu late\n",
           (long long)unique.counted, (unsigned long long)dups.records,
           (unsigned long long)late.records);
    if (unique.counted != EVENTS + RESENT_LATE || dups.records != RESENT_SOON ||
        late.records != 0) {
        fprintf(stderr,
                "unexpected totals: want %d unique, %d duplicates, "
                "0 late\n",
                EVENTS + RESENT_LATE, RESENT_SOON);
        return 1;
    }
    return 0;
}
