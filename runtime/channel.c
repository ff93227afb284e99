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
 *   - Batches go back: the consumer returns each batch it has processed
 *     (channel_recycle, up to CHANNEL_SPARES), and a push hands one to
 *     the producer, so steady traffic allocates no arenas.
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
    for (i = 0; i < ch->nspare; i++)
        weir__batch_free(ch->spare[i]);
    pthread_cond_destroy(&ch->not_full);
    weir_free(ch->ring);
    weir_free(ch);
}

/* Pushes e; when spare is given, hands back an emptied batch (or NULL)
 * for the producer's next records. */
int channel_push(channel_t *ch, elem_t e, atomic_int *cancel,
                 weir__batch_t **spare)
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
    if (spare != NULL)
        *spare = ch->nspare > 0 ? ch->spare[--ch->nspare] : NULL;
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

/* The consumer is done with b: keep it for the producer, or free it.
 * Called by the consumer without its mutex. */
void channel_recycle(channel_t *ch, weir__batch_t *b)
{
    task_t *t = ch->consumer;

    weir__batch_reset(b);
    pthread_mutex_lock(&t->mu);
    if (ch->nspare < CHANNEL_SPARES) {
        ch->spare[ch->nspare++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&t->mu);
    weir__batch_free(b);
}
