/*
 * runtime/channel.c - bounded single-producer/single-consumer channels.
 *
 * How it works
 *   A channel is a ring of stream elements (record batches, watermarks,
 *   barriers, idle markers, end of input, termination) from one producer
 *   task to one consumer task. It is protected by the CONSUMER task's
 *   mutex, so a consumer with many inputs sleeps on one condition
 *   variable and any producer can wake it. A full ring blocks the
 *   producer on the channel's not_full condition: that is backpressure.
 *   Elements carry batches, so a lock is taken per batch, not per record.
 *
 * Invariants
 *   - Elements arrive in the order they were pushed (FIFO per channel).
 *   - When the run is cancelled, blocked producers wake up and their
 *     pushes fail with WEIR_ECANCELED (the batch is freed).
 */
#include <stdlib.h>

#include "exec.h"

channel_t *channel_new(task_t *consumer, size_t cap)
{
    channel_t *ch = weir_calloc(1, sizeof(*ch));

    if (ch == NULL)
        return NULL;
    ch->ring = weir_calloc(cap, sizeof(elem_t));
    if (ch->ring == NULL) {
        weir_free(ch);
        return NULL;
    }
    ch->cap = cap;
    ch->consumer = consumer;
    ch->wm = WEIR_TS_MIN;
    pthread_cond_init(&ch->not_full, NULL);
    return ch;
}

void channel_free(channel_t *ch)
{
    size_t i;

    if (ch == NULL)
        return;
    for (i = 0; i < ch->count; i++) {
        elem_t *e = &ch->ring[(ch->head + i) % ch->cap];
        if (e->kind == E_BATCH)
            weir__batch_free(e->batch);
    }
    pthread_cond_destroy(&ch->not_full);
    weir_free(ch->ring);
    weir_free(ch);
}

int channel_push(channel_t *ch, elem_t e, atomic_int *cancel)
{
    task_t *t = ch->consumer;

    pthread_mutex_lock(&t->mu);
    while (ch->count == ch->cap && !atomic_load(cancel))
        pthread_cond_wait(&ch->not_full, &t->mu);
    if (atomic_load(cancel)) {
        pthread_mutex_unlock(&t->mu);
        if (e.kind == E_BATCH)
            weir__batch_free(e.batch);
        return WEIR_ECANCELED;
    }
    ch->ring[(ch->head + ch->count) % ch->cap] = e;
    ch->count++;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
    return WEIR_OK;
}

/* Caller holds the consumer's mutex. */
int channel_pop_locked(channel_t *ch, elem_t *e)
{
    if (ch->count == 0)
        return 0;
    *e = ch->ring[ch->head];
    ch->head = (ch->head + 1) % ch->cap;
    if (ch->count-- == ch->cap)
        pthread_cond_signal(&ch->not_full);
    return 1;
}
