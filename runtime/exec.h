/*
 * runtime/exec.h - physical execution: tasks, channels, exchanges, the
 * run (shared by plan.c, task.c, channel.c and checkpoint.c only).
 */
#ifndef WEIR_RUNTIME_EXEC_H
#define WEIR_RUNTIME_EXEC_H

#include "internal.h"

typedef enum elem_kind {
    E_BATCH = 1, /* record batch                                     */
    E_WM,        /* watermark (v)                                    */
    E_BARRIER,   /* checkpoint barrier (v = id)                      */
    E_IDLE,      /* the producer is idle                             */
    E_ACTIVE,    /* the producer is active again                     */
    E_END,       /* end of input (no more records or watermarks)     */
    E_TERM       /* the producer task has terminated                 */
} elem_kind_t;

typedef struct elem {
    int kind;
    weir__batch_t *batch;
    int64_t v;
} elem_t;

typedef struct task task_t;

#define CHANNEL_SPARES 2

typedef struct channel {
    task_t *consumer; /* its mutex guards the ring          */
    elem_t *ring;
    size_t cap;
    size_t head;
    size_t count;
    pthread_cond_t not_full;
    /* batches the consumer is done with, for the producer to refill:
     * no malloc/free of arenas per batch (guarded like the ring)     */
    weir__batch_t *spare[CHANNEL_SPARES];
    size_t nspare;
    /* consumer-side input state (touched by the consumer only)      */
    weir_ts_t wm; /* last watermark from this input     */
    int idle;     /* producer marked idle               */
    int blocked;  /* barrier seen, waiting for others   */
    int ended;    /* E_END seen                         */
    int term;     /* E_TERM seen                        */
} channel_t;

typedef enum ex_kind { EX_FORWARD, EX_HASH, EX_REBALANCE } ex_kind_t;

/* The producer side of one edge for one producer subtask. */
typedef struct exchange {
    ex_kind_t kind;
    channel_t **ch;          /* indexed by consumer subtask        */
    weir__batch_t **pending; /* one open batch per channel         */
    int nch;
    weir_key_fn key_fn;
    void *key_opaque;
    int maxkg;
    unsigned rr;      /* rebalance cursor                   */
    uint64_t dropped; /* records whose key could not be read */
} exchange_t;

typedef struct target {
    weir__inst_t *chained; /* next instance in this task, or NULL */
    exchange_t *ex;        /* or an exchange                     */
} target_t;

/* Output routing of one member instance. */
typedef struct route {
    task_t *task;
    int member;
    target_t **targets; /* per tag                            */
    int *ntargets;      /* per tag                            */
    int ntags;
} route_t;

struct task {
    weir__run_t *run;
    int id;
    int head_node; /* node id of the chain head          */
    int subtask;
    weir__inst_t **members; /* topological order; [0] is the head */
    route_t *routes;
    int nmembers;
    channel_t **in;
    int nin;
    exchange_t **ex;
    int nex;
    int is_source;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    pthread_t thread;
    int started;
    /* mailbox, guarded by mu */
    uint64_t complete_upto; /* completions to deliver             */
    uint64_t inject_upto;   /* barriers to inject (sources)       */
    int terminate;          /* sources: stop and exit             */
    int stop;               /* sources: stop polling              */
    /* task-local */
    uint64_t complete_done;
    uint64_t injected;
    uint64_t src_records;
    int naligned;
    int nended;
    int nterm;
    int ended;
    int idle_out;
    weir_ts_t in_wm;
    uint32_t batch_size;
};

struct weir__run {
    weir_pipeline_t *p;
    task_t **tasks;
    int ntasks;
    channel_t **chans;
    int nchans;
    exchange_t **exs;
    int nexs;
    atomic_int cancel;
    pthread_mutex_t mu; /* coordinator state                  */
    pthread_cond_t cond;
    char *ckpt_dir; /* NULL: checkpointing off            */
    int lock_fd;    /* ckpt_dir/LOCK, flock'ed; -1: none  */
    int fsync;
    int retain;
    int64_t every_records;
    int64_t interval_ms;
    int64_t idle_wait_ms;
    uint64_t restore_id; /* 0: fresh start                     */
    uint64_t last_id;
    uint64_t inflight;    /* the checkpoint in flight, 0: none       */
    int acks;             /* tasks that acknowledged it              */
    uint64_t retire_upto; /* completed: older ones may be deleted   */
    int sources_done;
    int nsources;
    int want_ckpt;
    uint64_t final_id;
};

channel_t *channel_new(task_t *consumer, size_t cap);
void channel_free(channel_t *ch);
int channel_push(channel_t *ch, elem_t e, atomic_int *cancel,
                 weir__batch_t **spare);
void channel_recycle(channel_t *ch, weir__batch_t *b);
int channel_pop_locked(channel_t *ch, elem_t *e);

int plan_build(weir__run_t *run);
void plan_free(weir__run_t *run);
void *task_main(void *arg);
void run_fail(weir__run_t *run, task_t *t, int member, int rc);
void run_wake_all(weir__run_t *run);

/* checkpoint.c */
int ckpt_prepare(weir__run_t *run);
int ckpt_begin(weir__run_t *run, uint64_t id);
int ckpt_write_task(weir__run_t *run, task_t *t, uint64_t id,
                    const weir__bytes_t *data);
int ckpt_read_task(weir__run_t *run, task_t *t, uint64_t id,
                   weir__bytes_t *data);
int ckpt_complete(weir__run_t *run, uint64_t id);
void ckpt_retire(weir__run_t *run, uint64_t id);
void ckpt_ack(weir__run_t *run, uint64_t id);

#endif
