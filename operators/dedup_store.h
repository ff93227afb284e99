/*
 * dedup_store.h - incremental snapshots of the dedup table: segment files
 * in the instance's state directory (weir_ctx_state_dir), and the chain of
 * segments each checkpoint refers to. Internal to the dedup operator.
 *
 * A segment holds table entries: a base segment every live entry, a delta
 * segment the entries claimed since the previous snapshot, in claim order.
 * The state at checkpoint n is its chain replayed in order: a base, then
 * deltas (a later entry for a digest replaces an earlier one; a digest is
 * claimed again only after its previous entry died). See dedup.c for when
 * a base is written and docs/design/state.md for the whole scheme.
 *
 * Thread-safety: a store belongs to one operator instance and is used on
 * its thread only.
 */
#ifndef WEIR_DEDUP_STORE_H
#define WEIR_DEDUP_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "dedup_table.h"

#define DSTORE_MAX_CHAIN 64 /* a base is written at the latest then */

/* One snapshot this instance wrote (or restored): its id and base. */
struct dstore_hist {
    uint64_t id;
    uint64_t base;
};

typedef struct dstore {
    char *dir;              /* the state directory (owned)           */
    uint64_t kind;          /* the scope kind, checked on read       */
    uint64_t *chain;        /* segment ids of the current state      */
    size_t nchain;          /* base first                            */
    uint64_t chain_entries; /* entries in the chain's deltas         */
    struct dstore_hist *hist;
    size_t nhist;
} dstore_t;

/* Sets up an empty store on dir (copied). WEIR_OK or WEIR_ENOMEM. */
int dstore_init(dstore_t *s, const char *dir, uint64_t kind);
void dstore_free(dstore_t *s);

/* Writes segment `id` (v[0..n), a base when base != 0), durably, and
 * makes it the chain's newest link (a base starts a new chain); records
 * (id, base of the chain) in the history. WEIR_OK, WEIR_EIO or
 * WEIR_ENOMEM, with a reason in err. */
int dstore_append(dstore_t *s, uint64_t id, int base, const struct dtab_head *v,
                  size_t n, char *err, size_t errsz);

/* Records that snapshot `id` refers to the chain as it is (no new
 * segment: nothing was claimed since the last one). */
int dstore_note(dstore_t *s, uint64_t id);

/* Reads segment `id`: its entries (*v, weir_malloc'd, the caller frees)
 * and whether it is a base. WEIR_OK, WEIR_ECORRUPT (missing, truncated,
 * wrong kind or checksum; reason in err) or WEIR_ENOMEM. */
int dstore_read(const dstore_t *s, uint64_t id, struct dtab_head **v, size_t *n,
                int *base, char *err, size_t errsz);

/* After a restore of checkpoint `id` with chain ids[0..n): adopts the
 * chain and deletes segments newer than id (left by checkpoints that
 * never completed or were given up). */
int dstore_adopt(dstore_t *s, uint64_t id, const uint64_t *ids, size_t n,
                 uint64_t chain_entries);

/* Checkpoint `done` completed and the runtime keeps `retain` completed
 * checkpoints: deletes the segments none of them can need any more. */
void dstore_forget(dstore_t *s, uint64_t done, uint64_t retain);

#endif
