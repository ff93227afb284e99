/*
 * runtime/task.c - worker threads: the per-task run loop, output routing
 * and exchanges, watermark valve, barrier alignment.
 *
 * How it works
 *   Each task runs one chain of operator instances for one subtask on its
 *   own thread. Records emitted by a member go to the chained member
 *   directly (a function call) or into an exchange, which appends a copy
 *   to an open batch per target channel and pushes the batch when it is
 *   full, before any control element, and before the task waits.
 *
 *   Source tasks call poll; at end of input they send a final watermark
 *   of +infinity and an end-of-input marker, then stay alive to inject
 *   barriers (the final checkpoint) until the coordinator terminates them.
 *
 *   Other tasks loop: deliver checkpoint completions from the mailbox,
 *   take the next element from an input that is not blocked by barrier
 *   alignment (round robin over inputs), handle it; when no input has an
 *   element, flush outputs and sleep, waking for the next
 *   processing-time timer. A batch's records go to the first member in
 *   order, its prefetch hint (if any) WEIR__PREFETCH_AHEAD records ahead;
 *   the emptied batch goes back to its channel for the producer to
 *   refill.
 *
 *   Valve: each input keeps its last watermark and idle flag; the task's
 *   input watermark is the minimum over inputs that are neither idle nor
 *   terminated, and only ever increases. When all inputs are idle the
 *   task marks its outputs idle.
 *
 *   Alignment: when barrier n arrives on an input, that input is blocked
 *   until n has arrived on every input; then every member is snapshotted
 *   in order, the snapshot written, the coordinator acknowledged, and the
 *   barrier forwarded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "exec.h"

/* ------------------------------------------------------------------ *
 * ## Failure
 * ------------------------------------------------------------------ */

void run_wake_all(weir__run_t *run)
{
    int i;

    for (i = 0; i < run->ntasks; i++) {
        pthread_mutex_lock(&run->tasks[i]->mu);
        pthread_cond_broadcast(&run->tasks[i]->cond);
        pthread_mutex_unlock(&run->tasks[i]->mu);
    }
    for (i = 0; i < run->nchans; i++) {
        task_t *c = run->chans[i]->consumer;
        pthread_mutex_lock(&c->mu);
        pthread_cond_broadcast(&run->chans[i]->not_full);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&run->mu);
    pthread_cond_broadcast(&run->cond);
    pthread_mutex_unlock(&run->mu);
}

void run_fail(weir__run_t *run, task_t *t, int member, int rc)
{
    const weir__inst_t *in = NULL;

    if (rc == WEIR_ECANCELED && atomic_load(&run->cancel))
        return;
    if (t != NULL && member >= 0 && member < t->nmembers)
        in = t->members[member];
    if (in != NULL)
        weir__pipeline_fail(run->p, rc, "operator \"%s\" (subtask %d): %s%s%s",
                            in->name, in->subtask, weir_strerror(rc),
                            in->errstr[0] ? ": " : "", in->errstr);
    else
        weir__pipeline_fail(run->p, rc, "task failed: %s", weir_strerror(rc));
    atomic_store(&run->cancel, 1);
    run_wake_all(run);
}

/* ------------------------------------------------------------------ *
 * ## Exchanges
 * ------------------------------------------------------------------ */

static int ex_push(task_t *t, exchange_t *ex, int c, elem_t e)
{
    return channel_push(ex->ch[c], e, &t->run->cancel, NULL);
}

static int ex_flush_one(task_t *t, exchange_t *ex, int c)
{
    elem_t e = {0};

    if (ex->pending[c] == NULL ||
        (ex->pending[c]->n == 0 && ex->pending[c]->nwm == 0))
        return WEIR_OK;
    e.kind = E_BATCH;
    e.batch = ex->pending[c];
    ex->pending[c] = NULL;
    /* an emptied batch back from the consumer, if one is ready */
    return channel_push(ex->ch[c], e, &t->run->cancel, &ex->pending[c]);
}

static int flush_all(task_t *t)
{
    int i;
    int c;
    int rc;

    for (i = 0; i < t->nex; i++)
        for (c = 0; c < t->ex[i]->nch; c++) {
            rc = ex_flush_one(t, t->ex[i], c);
            if (rc != WEIR_OK)
                return rc;
        }
    return WEIR_OK;
}

/* Flushes, then sends a control element on every output channel. */
static int broadcast(task_t *t, elem_t e)
{
    int i;
    int c;
    int rc = flush_all(t);

    for (i = 0; rc == WEIR_OK && i < t->nex; i++)
        for (c = 0; rc == WEIR_OK && c < t->ex[i]->nch; c++)
            rc = ex_push(t, t->ex[i], c, e);
    return rc;
}

static int ex_channel(exchange_t *ex, const weir_record_t *rec, weir_buf_t *key)
{
    uint64_t kg;

    if (ex->kind == EX_FORWARD)
        return 0;
    if (ex->kind == EX_REBALANCE)
        return (int)(ex->rr % (unsigned)ex->nch);
    if (ex->key_fn != NULL) {
        if (ex->key_fn(rec, key, ex->key_opaque) != WEIR_OK)
            return -1;
    } else {
        *key = rec->key;
    }
    if (key->data == NULL)
        *key = WEIR_BUF("", 0);
    kg = weir__hash(key->data, key->len) % (uint64_t)ex->maxkg;
    return (int)(kg * (uint64_t)ex->nch / (uint64_t)ex->maxkg);
}

static weir__batch_t *pending_batch(task_t *t, exchange_t *ex, int c)
{
    if (ex->pending[c] == NULL)
        ex->pending[c] = weir__batch_new(t->batch_size);
    return ex->pending[c];
}

/* Watermarks travel inside the open batch of every channel. */
static int ex_watermark(task_t *t, exchange_t *ex, weir_ts_t wm)
{
    weir__batch_t *b;
    int c;
    int rc;

    for (c = 0; c < ex->nch; c++) {
        b = pending_batch(t, ex, c);
        if (b == NULL)
            return WEIR_ENOMEM;
        rc = weir__batch_add_wm(b, wm);
        if (rc != WEIR_OK)
            return rc;
        if (b->nwm >= 4096 && (rc = ex_flush_one(t, ex, c)) != WEIR_OK)
            return rc;
    }
    return WEIR_OK;
}

static int ex_add(task_t *t, exchange_t *ex, const weir_record_t *rec)
{
    weir_buf_t key = WEIR_BUF_NULL;
    int c = ex_channel(ex, rec, &key);
    weir__batch_t *b;
    int rc;

    if (c < 0) {
        ex->dropped++;
        return WEIR_OK;
    }
    b = pending_batch(t, ex, c);
    if (b == NULL)
        return WEIR_ENOMEM;
    rc = weir__batch_add(b, rec, ex->kind == EX_HASH ? &key : NULL);
    if (rc != WEIR_OK)
        return rc;
    if (b->n == b->cap || b->bytes > (4u << 20)) {
        rc = ex_flush_one(t, ex, c);
        if (ex->kind == EX_REBALANCE)
            ex->rr++;
    }
    return rc;
}

/* ------------------------------------------------------------------ *
 * ## Output routing (weir__out_ops_t for members)
 * ------------------------------------------------------------------ */

static int out_record(void *sink, int tag, const weir_record_t *rec)
{
    route_t *r = sink;
    int i;
    int rc;

    if (r->member == 0 && r->task->is_source)
        r->task->src_records++;
    for (i = 0; i < r->ntargets[tag]; i++) {
        target_t *tg = &r->targets[tag][i];
        rc = tg->chained ? weir__inst_process(tg->chained, rec)
                         : ex_add(r->task, tg->ex, rec);
        if (rc != WEIR_OK)
            return rc;
    }
    return WEIR_OK;
}

static int out_control(route_t *r, int kind, weir_ts_t wm, int idle)
{
    elem_t e = {0};
    int g;
    int i;
    int c;
    int rc;

    e.kind = kind;
    e.v = wm;
    for (g = 0; g < r->ntags; g++) {
        for (i = 0; i < r->ntargets[g]; i++) {
            target_t *tg = &r->targets[g][i];
            if (tg->chained != NULL) {
                rc = kind == E_WM ? weir__inst_watermark(tg->chained, wm)
                                  : weir__inst_idle(tg->chained, idle);
            } else if (kind == E_WM) {
                rc = ex_watermark(r->task, tg->ex, wm);
            } else {
                rc = WEIR_OK;
                for (c = 0; rc == WEIR_OK && c < tg->ex->nch; c++) {
                    rc = ex_flush_one(r->task, tg->ex, c);
                    if (rc == WEIR_OK)
                        rc = ex_push(r->task, tg->ex, c, e);
                }
            }
            if (rc != WEIR_OK)
                return rc;
        }
    }
    return WEIR_OK;
}

static int out_watermark(void *sink, weir_ts_t wm)
{
    return out_control(sink, E_WM, wm, 0);
}

static int out_idle(void *sink, int idle)
{
    return out_control(sink, idle ? E_IDLE : E_ACTIVE, 0, idle);
}

static const weir__out_ops_t task_out = {
    .record = out_record,
    .watermark = out_watermark,
    .idle = out_idle,
};

/* ------------------------------------------------------------------ *
 * ## Snapshots
 * ------------------------------------------------------------------ */

/* Serialises the task's state for checkpoint `id` into w (memory only). */
static int snapshot_task(task_t *t, uint64_t id, weir_writer_t *w)
{
    int i;
    int rc;

    rc = weir_write_u64(w, (uint64_t)t->nin);
    for (i = 0; rc == WEIR_OK && i < t->nin; i++) {
        rc = weir_write_i64(w, t->in[i]->wm);
        if (rc == WEIR_OK)
            rc = weir_write_u64(w, (uint64_t)t->in[i]->ended);
    }
    if (rc == WEIR_OK)
        rc = weir_write_i64(w, t->in_wm);
    if (rc == WEIR_OK)
        rc = weir_write_u64(w, (uint64_t)t->nmembers);
    for (i = 0; rc == WEIR_OK && i < t->nmembers; i++) {
        rc = weir__inst_snapshot(t->members[i], id, w);
        if (rc != WEIR_OK) {
            run_fail(t->run, t, i, rc);
            return rc;
        }
    }
    if (rc != WEIR_OK)
        run_fail(t->run, t, -1, rc);
    return rc;
}

static int restore_task(task_t *t, uint64_t id)
{
    weir__bytes_t data = {0};
    weir_reader_t r;
    uint64_t n;
    uint64_t ended;
    int i;
    int rc;

    rc = ckpt_read_task(t->run, t, id, &data);
    if (rc != WEIR_OK)
        return rc;
    weir__reader_init(&r, data.data, data.len);
    rc = weir_read_u64(&r, &n);
    if (rc == WEIR_OK && n != (uint64_t)t->nin)
        rc = WEIR_ETOPOLOGY;
    for (i = 0; rc == WEIR_OK && i < t->nin; i++) {
        rc = weir_read_i64(&r, &t->in[i]->wm);
        if (rc == WEIR_OK)
            rc = weir_read_u64(&r, &ended);
    }
    if (rc == WEIR_OK)
        rc = weir_read_i64(&r, &t->in_wm);
    if (rc == WEIR_OK)
        rc = weir_read_u64(&r, &n);
    if (rc == WEIR_OK && n != (uint64_t)t->nmembers)
        rc = WEIR_ETOPOLOGY;
    for (i = 0; rc == WEIR_OK && i < t->nmembers; i++) {
        rc = weir__inst_restore(t->members[i], &r);
        if (rc != WEIR_OK && rc != WEIR_ECORRUPT && rc != WEIR_ETOPOLOGY) {
            run_fail(t->run, t, i, rc);
            weir__bytes_free(&data);
            return rc;
        }
    }
    weir__bytes_free(&data);
    if (rc == WEIR_ETOPOLOGY)
        weir__pipeline_fail(t->run->p, rc,
                            "checkpoint %llu does not match this pipeline "
                            "(operators or parallelism changed)",
                            (unsigned long long)id);
    else if (rc != WEIR_OK)
        weir__pipeline_fail(t->run->p, rc,
                            "checkpoint %llu: corrupt "
                            "snapshot of task %d",
                            (unsigned long long)id, t->id);
    return rc;
}

/*
 * Checkpoint `id` at this task: flush what precedes the barrier, capture
 * the state in memory, pass the barrier on, then write the snapshot file
 * (fsync) and acknowledge. Downstream tasks take their snapshots while
 * this one writes; records after the barrier wait until we return, so
 * the captured state is exactly the state at the barrier.
 */
static int take_barrier(task_t *t, uint64_t id)
{
    weir_writer_t w = {{0}};
    elem_t e = {0};
    int rc;

    rc = flush_all(t);
    if (rc == WEIR_OK)
        rc = snapshot_task(t, id, &w);
    if (rc == WEIR_OK) {
        e.kind = E_BARRIER;
        e.v = (int64_t)id;
        rc = broadcast(t, e);
    }
    if (rc == WEIR_OK) {
        rc = ckpt_write_task(t->run, t, id, &w.buf);
        if (rc != WEIR_OK)
            run_fail(t->run, t, -1, rc);
    }
    weir__bytes_free(&w.buf);
    if (rc == WEIR_OK)
        ckpt_ack(t->run, id);
    return rc;
}

/* ------------------------------------------------------------------ *
 * ## Mailbox
 * ------------------------------------------------------------------ */

/* Delivers checkpoint completions. Called without t->mu held. */
static int deliver_completions(task_t *t, uint64_t upto)
{
    int i;
    int rc;

    if (upto <= t->complete_done)
        return WEIR_OK;
    t->complete_done = upto;
    for (i = 0; i < t->nmembers; i++) {
        rc = weir__inst_complete(t->members[i], upto);
        if (rc != WEIR_OK) {
            run_fail(t->run, t, i, rc);
            return rc;
        }
    }
    return WEIR_OK;
}

static int fire_processing_timers(task_t *t)
{
    weir_ts_t now = weir__now_ms();
    int i;
    int rc;

    for (i = 0; i < t->nmembers; i++) {
        rc = weir__inst_processing_time(t->members[i], now);
        if (rc != WEIR_OK) {
            run_fail(t->run, t, i, rc);
            return rc;
        }
    }
    return WEIR_OK;
}

static weir_ts_t next_processing_timer(task_t *t)
{
    weir_ts_t best = WEIR_TS_MAX;
    weir_ts_t when;
    int i;

    for (i = 0; i < t->nmembers; i++)
        if (weir__inst_next_processing_timer(t->members[i], &when) == WEIR_OK &&
            when < best)
            best = when;
    return best;
}

/* Waits on t->cond (t->mu held) until `deadline` ms, or forever. */
static void wait_until(task_t *t, weir_ts_t deadline)
{
    struct timespec ts;

    if (deadline == WEIR_TS_MAX) {
        pthread_cond_wait(&t->cond, &t->mu);
        return;
    }
    ts.tv_sec = deadline / 1000;
    ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
    pthread_cond_timedwait(&t->cond, &t->mu, &ts);
}

/* ------------------------------------------------------------------ *
 * ## Sources
 * ------------------------------------------------------------------ */

static void source_done(task_t *t)
{
    weir__run_t *run = t->run;

    pthread_mutex_lock(&run->mu);
    run->sources_done++;
    pthread_cond_broadcast(&run->cond);
    pthread_mutex_unlock(&run->mu);
}

static void request_checkpoint(weir__run_t *run)
{
    pthread_mutex_lock(&run->mu);
    run->want_ckpt = 1;
    pthread_cond_broadcast(&run->cond);
    pthread_mutex_unlock(&run->mu);
}

static int end_of_input(task_t *t)
{
    elem_t e = {0};
    int i;
    int rc;

    rc = weir__inst_watermark(t->members[0], WEIR_TS_MAX);
    if (rc != WEIR_OK) {
        run_fail(t->run, t, 0, rc);
        return rc;
    }
    for (i = 0; i < t->nmembers; i++) {
        rc = weir__inst_end(t->members[i]);
        if (rc != WEIR_OK) {
            run_fail(t->run, t, i, rc);
            return rc;
        }
    }
    e.kind = E_END;
    return broadcast(t, e);
}

static int source_poll(task_t *t, int *done)
{
    weir__run_t *run = t->run;
    uint64_t before = t->src_records;
    weir_waker_t *wk = &t->members[0]->waker;
    int rc;

    atomic_store(&wk->pending, 0); /* wakes from now on end the wait */
    rc = weir__inst_poll(t->members[0]);
    if (rc < 0) {
        run_fail(run, t, 0, rc);
        return rc;
    }
    if (rc == WEIR_DONE) {
        *done = 1;
        rc = end_of_input(t);
        if (rc == WEIR_OK)
            source_done(t);
        return rc;
    }
    if (run->every_records > 0 &&
        before / (uint64_t)run->every_records !=
            t->src_records / (uint64_t)run->every_records)
        request_checkpoint(run);
    if (flush_all(t) != WEIR_OK)
        return WEIR_ECANCELED;
    if (rc == WEIR_IDLE) {
        pthread_mutex_lock(&t->mu);
        if (t->inject_upto <= t->injected && !t->terminate && !t->stop &&
            !atomic_load(&wk->pending))
            wait_until(t, weir__now_ms() + run->idle_wait_ms);
        pthread_mutex_unlock(&t->mu);
    }
    return WEIR_OK;
}

static void source_loop(task_t *t)
{
    weir__run_t *run = t->run;
    uint64_t complete;
    uint64_t inject;
    int done = 0;
    int terminate;
    int stop;

    while (!atomic_load(&run->cancel)) {
        pthread_mutex_lock(&t->mu);
        while (done && t->complete_upto <= t->complete_done &&
               t->inject_upto <= t->injected && !t->terminate &&
               !atomic_load(&run->cancel))
            wait_until(t, next_processing_timer(t));
        complete = t->complete_upto;
        inject = t->inject_upto;
        terminate = t->terminate;
        stop = t->stop;
        pthread_mutex_unlock(&t->mu);
        if (deliver_completions(t, complete) != WEIR_OK)
            return;
        if (inject > t->injected) {
            t->injected = inject;
            if (take_barrier(t, inject) != WEIR_OK)
                return;
            continue;
        }
        if (terminate)
            return;
        if (fire_processing_timers(t) != WEIR_OK)
            return;
        if (done)
            continue;
        if (stop) {
            done = 1;
            if (flush_all(t) != WEIR_OK)
                return;
            source_done(t);
            continue;
        }
        if (source_poll(t, &done) != WEIR_OK)
            return;
    }
}

/* ------------------------------------------------------------------ *
 * ## Inputs
 * ------------------------------------------------------------------ */

static int update_valve(task_t *t)
{
    weir_ts_t min = WEIR_TS_MAX;
    int any_active = 0;
    int i;
    int rc;

    for (i = 0; i < t->nin; i++) {
        channel_t *ch = t->in[i];
        if (ch->term || ch->idle)
            continue;
        any_active = 1;
        if (ch->wm < min)
            min = ch->wm;
    }
    if (!any_active) {
        if (!t->idle_out && t->nin > 0) {
            t->idle_out = 1;
            return weir__inst_idle(t->members[0], 1);
        }
        return WEIR_OK;
    }
    if (t->idle_out) {
        t->idle_out = 0;
        rc = weir__inst_idle(t->members[0], 0);
        if (rc != WEIR_OK)
            return rc;
    }
    if (min > t->in_wm) {
        t->in_wm = min;
        return weir__inst_watermark(t->members[0], min);
    }
    return WEIR_OK;
}

static int handle_barrier(task_t *t, channel_t *ch, uint64_t id)
{
    int i;
    int rc;

    ch->blocked = 1;
    if (++t->naligned < t->nin)
        return WEIR_OK;
    t->naligned = 0;
    for (i = 0; i < t->nin; i++)
        t->in[i]->blocked = 0;
    rc = take_barrier(t, id);
    return rc;
}

static int handle_end(task_t *t)
{
    elem_t e = {0};
    int i;
    int rc;

    if (++t->nended < t->nin)
        return WEIR_OK;
    t->ended = 1;
    for (i = 0; i < t->nmembers; i++) {
        rc = weir__inst_end(t->members[i]);
        if (rc != WEIR_OK)
            return rc;
    }
    e.kind = E_END;
    return broadcast(t, e);
}

static int input_watermark(task_t *t, channel_t *ch, weir_ts_t wm)
{
    if (wm > ch->wm)
        ch->wm = wm;
    return update_valve(t);
}

static int handle_batch(task_t *t, channel_t *ch, weir__batch_t *b)
{
    weir__inst_t *first = t->members[0];
    int pf = weir__inst_prefetcher(first) != NULL;
    uint32_t i;
    uint32_t w = 0;
    int rc = WEIR_OK;

    for (i = 0; pf && i < b->n && i < WEIR__PREFETCH_AHEAD; i++)
        weir__inst_prefetch(first, &b->recs[i]);
    for (i = 0; i <= b->n && rc == WEIR_OK; i++) {
        while (rc == WEIR_OK && w < b->nwm && b->wms[w].pos == i)
            rc = input_watermark(t, ch, b->wms[w++].wm);
        if (rc != WEIR_OK || i == b->n)
            continue;
        if (pf && i + WEIR__PREFETCH_AHEAD < b->n)
            weir__inst_prefetch(first, &b->recs[i + WEIR__PREFETCH_AHEAD]);
        rc = weir__inst_process(first, &b->recs[i]);
    }
    channel_recycle(ch, b);
    return rc;
}

/* Returns 1 when the task should exit. */
static int handle(task_t *t, channel_t *ch, elem_t e, int *rc)
{
    switch (e.kind) {
    case E_BATCH:
        *rc = handle_batch(t, ch, e.batch);
        break;
    case E_WM:
        *rc = input_watermark(t, ch, e.v);
        break;
    case E_IDLE:
    case E_ACTIVE:
        ch->idle = e.kind == E_IDLE;
        *rc = update_valve(t);
        break;
    case E_BARRIER:
        *rc = handle_barrier(t, ch, (uint64_t)e.v);
        return 0;
    case E_END:
        ch->ended = 1;
        *rc = handle_end(t);
        break;
    case E_TERM:
        ch->term = 1;
        return ++t->nterm == t->nin;
    }
    return 0;
}

/* Picks the next element (t->mu held); round robin over free inputs. */
static channel_t *next_input(task_t *t, elem_t *e, int *cursor)
{
    int k;

    for (k = 0; k < t->nin; k++) {
        channel_t *ch = t->in[(*cursor + k) % t->nin];
        if (ch->blocked || ch->term)
            continue;
        if (channel_pop_locked(ch, e)) {
            *cursor = (*cursor + k + 1) % t->nin;
            return ch;
        }
    }
    return NULL;
}

static void worker_loop(task_t *t)
{
    weir__run_t *run = t->run;
    channel_t *ch;
    elem_t e;
    uint64_t complete;
    int cursor = 0;
    int rc = WEIR_OK;

    while (!atomic_load(&run->cancel)) {
        pthread_mutex_lock(&t->mu);
        complete = t->complete_upto;
        ch = next_input(t, &e, &cursor);
        if (ch == NULL && complete <= t->complete_done) {
            pthread_mutex_unlock(&t->mu);
            if (flush_all(t) != WEIR_OK)
                return;
            pthread_mutex_lock(&t->mu);
            ch = next_input(t, &e, &cursor);
            complete = t->complete_upto;
            if (ch == NULL && complete <= t->complete_done &&
                !atomic_load(&run->cancel))
                wait_until(t, next_processing_timer(t));
        }
        pthread_mutex_unlock(&t->mu);
        if (deliver_completions(t, complete) != WEIR_OK) {
            if (ch != NULL && e.kind == E_BATCH)
                weir__batch_free(e.batch);
            return;
        }
        if (ch == NULL) {
            if (fire_processing_timers(t) != WEIR_OK)
                return;
            continue;
        }
        if (handle(t, ch, e, &rc))
            return;
        if (rc != WEIR_OK) {
            run_fail(run, t, 0, rc);
            return;
        }
    }
}

/* ------------------------------------------------------------------ *
 * ## Thread entry
 * ------------------------------------------------------------------ */

static int open_members(task_t *t)
{
    int i;
    int rc;

    for (i = 0; i < t->nmembers; i++) {
        weir__inst_set_out(t->members[i], &task_out, &t->routes[i], NULL, 0);
        rc = weir__inst_open(t->members[i]);
        if (rc != WEIR_OK) {
            run_fail(t->run, t, i, rc);
            return rc;
        }
    }
    if (t->run->restore_id == 0)
        return WEIR_OK;
    rc = restore_task(t, t->run->restore_id);
    if (rc != WEIR_OK) {
        atomic_store(&t->run->cancel, 1);
        run_wake_all(t->run);
    }
    return rc;
}

/* Names the thread after its chain's head and subtask ("w:dedup/1"), so
 * top -H, perf and gdb tell tasks apart (at most 15 characters). */
static void name_thread(const task_t *t)
{
    char name[16];

    snprintf(name, sizeof(name), "w:%.8s/%d", t->members[0]->name, t->subtask);
    pthread_setname_np(pthread_self(), name);
}

void *task_main(void *arg)
{
    task_t *t = arg;
    elem_t term = {0};
    uint64_t done_upto;
    int i;

    name_thread(t);
    if (open_members(t) == WEIR_OK) {
        if (t->is_source)
            source_loop(t);
        else
            worker_loop(t);
    }
    if (!atomic_load(&t->run->cancel)) {
        pthread_mutex_lock(&t->mu);
        done_upto = t->complete_upto;
        pthread_mutex_unlock(&t->mu);
        deliver_completions(t, done_upto);
        term.kind = E_TERM;
        broadcast(t, term);
    }
    for (i = 0; i < t->nmembers; i++)
        weir__inst_close(t->members[i]);
    return NULL;
}
