/*
 * runtime/plan.c - from the logical graph to tasks and channels.
 *
 * How it works
 *   1. Parallelism: a keyed node without one gets
 *      "pipeline.parallelism"; a non-keyed one follows its first input
 *      (sources and sinks were set to 1 by the builder).
 *   2. Chaining: a node is chained into its producer's task when it has
 *      exactly one input, that input is not keyed, both have the same
 *      parallelism, and it is the only consumer of that producer output.
 *      Chained nodes call each other directly: no queue, no copy. A chain
 *      is a tree rooted at its head; members are kept in node-id order,
 *      which is topological (a node is created after its inputs).
 *   3. Tasks: one per (chain head, subtask), each with one instance per
 *      member.
 *   4. Edges that are not chained become exchanges (producer side) and
 *      channels (one per connected producer/consumer subtask pair):
 *      keyed inputs hash the key into key groups mapped to subtasks,
 *      equal parallelism forwards subtask i to i, anything else
 *      rebalances round-robin per batch.
 */
#include <stdlib.h>

#include "exec.h"

typedef struct consumer {
    weir__node_t *node;
    int input;
} consumer_t;

typedef struct plan_ctx {
    weir__run_t *run;
    weir_pipeline_t *p;
    int *head;          /* node id -> chain head node id           */
    int *chained;       /* node id -> 1 if chained into producer   */
    task_t ***tasks_of; /* head node id -> task per subtask        */
    size_t chan_cap;
    uint32_t batch_size;
    int maxkg;
} plan_ctx_t;

static int count_consumers(weir_pipeline_t *p, const weir__node_t *n, int tag)
{
    int i;
    int j;
    int c = 0;

    for (i = 0; i < p->nnodes; i++)
        for (j = 0; j < p->nodes[i]->ninputs; j++)
            if (p->nodes[i]->inputs[j].from == n &&
                p->nodes[i]->inputs[j].tag == tag)
                c++;
    return c;
}

/* Keyed operators get the pipeline default; the others follow their
 * (first) input, so a stateless step after a source keeps its order. */
static int default_parallelism(const weir__node_t *n, int dflt)
{
    int j;

    for (j = 0; j < n->ninputs; j++)
        if (n->inputs[j].keyed)
            return dflt;
    return n->ninputs > 0 ? n->inputs[0].from->parallelism : dflt;
}

static int resolve_parallelism(plan_ctx_t *pc)
{
    weir_pipeline_t *p = pc->p;
    int dflt = (int)weir__conf_i64(p->conf, "pipeline.parallelism", 1);
    int i;
    int j;

    for (i = 0; i < p->nnodes; i++) {
        weir__node_t *n = p->nodes[i];
        if (n->parallelism == 0)
            n->parallelism = default_parallelism(n, dflt);
        for (j = 0; j < n->ninputs; j++) {
            if (n->inputs[j].keyed && n->parallelism > pc->maxkg) {
                weir__pipeline_fail(p, WEIR_ETOPOLOGY,
                                    "operator \"%s\": parallelism %d exceeds "
                                    "pipeline.max.keygroups %d",
                                    n->name, n->parallelism, pc->maxkg);
                return WEIR_ETOPOLOGY;
            }
        }
        if (!n->is_source && n->ninputs == 0) {
            weir__pipeline_fail(p, WEIR_ETOPOLOGY,
                                "operator \"%s\" has no input", n->name);
            return WEIR_ETOPOLOGY;
        }
    }
    return WEIR_OK;
}

static void decide_chaining(plan_ctx_t *pc)
{
    weir_pipeline_t *p = pc->p;
    int i;

    for (i = 0; i < p->nnodes; i++) {
        weir__node_t *n = p->nodes[i];
        weir__input_t *in = n->ninputs == 1 ? &n->inputs[0] : NULL;

        pc->head[i] = i;
        pc->chained[i] = 0;
        if (in == NULL || in->keyed ||
            in->from->parallelism != n->parallelism ||
            count_consumers(p, in->from, in->tag) != 1)
            continue;
        pc->chained[i] = 1;
        pc->head[i] = pc->head[in->from->id];
    }
}

static int add_ptr(void ***arr, int *n, void *ptr)
{
    void **a = weir_realloc(*arr, (*n + 1) * sizeof(void *));

    if (a == NULL)
        return WEIR_ENOMEM;
    a[*n] = ptr;
    *arr = a;
    (*n)++;
    return WEIR_OK;
}

static task_t *new_task(plan_ctx_t *pc, int head, int subtask)
{
    weir_pipeline_t *p = pc->p;
    weir__run_t *run = pc->run;
    task_t *t = weir_calloc(1, sizeof(*t));
    int i;

    if (t == NULL)
        return NULL;
    t->run = run;
    t->head_node = head;
    t->subtask = subtask;
    t->is_source = p->nodes[head]->is_source;
    t->in_wm = WEIR_TS_MIN;
    t->batch_size = pc->batch_size;
    t->idle_out = 0;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    t->id = run->ntasks;
    if (add_ptr((void ***)&run->tasks, &run->ntasks, t) != WEIR_OK) {
        weir_free(t);
        return NULL;
    }
    for (i = 0; i < p->nnodes; i++) {
        weir__node_t *n = p->nodes[i];
        weir__inst_t *in;

        if (pc->head[i] != head)
            continue;
        in =
            weir__inst_new(n->def, n->opaque, n->name, subtask, n->parallelism);
        if (in == NULL ||
            add_ptr((void ***)&t->members, &t->nmembers, in) != WEIR_OK) {
            weir__inst_free(in);
            return NULL;
        }
        in->conf = p->conf;
        in->ckpt_dir = run->ckpt_dir;
        in->node = i;
        if (t->is_source && t->nmembers == 1) { /* the chain's head */
            in->waker.mu = &t->mu;
            in->waker.cond = &t->cond;
        }
    }
    t->routes = weir_calloc(t->nmembers, sizeof(route_t));
    if (t->routes == NULL)
        return NULL;
    return t;
}

static int make_tasks(plan_ctx_t *pc)
{
    weir_pipeline_t *p = pc->p;
    int i;
    int s;

    for (i = 0; i < p->nnodes; i++) {
        if (pc->head[i] != i)
            continue;
        pc->tasks_of[i] =
            weir_calloc(p->nodes[i]->parallelism, sizeof(task_t *));
        if (pc->tasks_of[i] == NULL)
            return WEIR_ENOMEM;
        for (s = 0; s < p->nodes[i]->parallelism; s++) {
            pc->tasks_of[i][s] = new_task(pc, i, s);
            if (pc->tasks_of[i][s] == NULL)
                return WEIR_ENOMEM;
        }
    }
    return WEIR_OK;
}

/* The member index of node id in task t (members are in node order). */
static int member_of(const plan_ctx_t *pc, const task_t *t, int node)
{
    int i;
    int m = 0;

    for (i = 0; i < node; i++)
        if (pc->head[i] == t->head_node)
            m++;
    return m;
}

static int add_target(route_t *r, int tag, target_t tg)
{
    target_t *a =
        weir_realloc(r->targets[tag], (r->ntargets[tag] + 1) * sizeof(*a));

    if (a == NULL)
        return WEIR_ENOMEM;
    a[r->ntargets[tag]++] = tg;
    r->targets[tag] = a;
    return WEIR_OK;
}

static exchange_t *new_exchange(plan_ctx_t *pc, const weir__input_t *in,
                                int from_par, int to_par, int subtask,
                                task_t **consumers)
{
    weir__run_t *run = pc->run;
    exchange_t *ex = weir_calloc(1, sizeof(*ex));
    int j;

    if (ex == NULL)
        return NULL;
    if (add_ptr((void ***)&run->exs, &run->nexs, ex) != WEIR_OK) {
        weir_free(ex);
        return NULL;
    }
    ex->kind = in->keyed            ? EX_HASH
               : from_par == to_par ? EX_FORWARD
                                    : EX_REBALANCE;
    ex->key_fn = in->key_fn;
    ex->key_opaque = in->key_opaque;
    ex->maxkg = pc->maxkg;
    ex->nch = ex->kind == EX_FORWARD ? 1 : to_par;
    ex->rr = (unsigned)subtask;
    ex->ch = weir_calloc(ex->nch, sizeof(channel_t *));
    ex->pending = weir_calloc(ex->nch, sizeof(weir__batch_t *));
    if (ex->ch == NULL || ex->pending == NULL)
        return NULL;
    for (j = 0; j < ex->nch; j++) {
        task_t *c = consumers[ex->kind == EX_FORWARD ? subtask : j];
        channel_t *ch = channel_new(c, pc->chan_cap);

        if (ch == NULL ||
            add_ptr((void ***)&run->chans, &run->nchans, ch) != WEIR_OK) {
            channel_free(ch);
            return NULL;
        }
        /* From here on the run owns the channel. */
        if (add_ptr((void ***)&c->in, &c->nin, ch) != WEIR_OK)
            return NULL;
        ex->ch[j] = ch;
    }
    return ex;
}

static int connect_edge(plan_ctx_t *pc, weir__node_t *to, int input)
{
    weir__input_t *in = &to->inputs[input];
    weir__node_t *from = in->from;
    task_t **producers = pc->tasks_of[pc->head[from->id]];
    int s;

    for (s = 0; s < from->parallelism; s++) {
        task_t *t = producers[s];
        route_t *r = &t->routes[member_of(pc, t, from->id)];
        target_t tg = {0};

        if (pc->chained[to->id]) {
            tg.chained = t->members[member_of(pc, t, to->id)];
        } else {
            tg.ex = new_exchange(pc, in, from->parallelism, to->parallelism, s,
                                 pc->tasks_of[to->id]);
            if (tg.ex == NULL ||
                add_ptr((void ***)&t->ex, &t->nex, tg.ex) != WEIR_OK)
                return WEIR_ENOMEM;
        }
        if (add_target(r, in->tag, tg) != WEIR_OK)
            return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

static int init_routes(plan_ctx_t *pc)
{
    weir__run_t *run = pc->run;
    int i;
    int m;

    for (i = 0; i < run->ntasks; i++) {
        task_t *t = run->tasks[i];
        int node = 0;

        for (m = 0; m < t->nmembers; m++) {
            while (pc->head[node] != t->head_node)
                node++;
            t->routes[m].task = t;
            t->routes[m].member = m;
            t->routes[m].ntags = pc->p->nodes[node]->ntags;
            t->routes[m].targets =
                weir_calloc(t->routes[m].ntags, sizeof(target_t *));
            t->routes[m].ntargets =
                weir_calloc(t->routes[m].ntags, sizeof(int));
            if (t->routes[m].targets == NULL || t->routes[m].ntargets == NULL)
                return WEIR_ENOMEM;
            t->members[m]->tags = pc->p->nodes[node]->tags;
            t->members[m]->ntags = pc->p->nodes[node]->ntags;
            node++;
        }
    }
    return WEIR_OK;
}

int plan_build(weir__run_t *run)
{
    weir_pipeline_t *p = run->p;
    plan_ctx_t pc = {0};
    int rc;
    int i;
    int j;

    pc.run = run;
    pc.p = p;
    pc.maxkg = (int)weir__conf_i64(p->conf, "pipeline.max.keygroups", 128);
    pc.chan_cap = (size_t)weir__conf_i64(p->conf, "channel.capacity", 16);
    pc.batch_size = (uint32_t)weir__conf_i64(p->conf, "batch.size", 512);
    if (p->nnodes == 0) {
        weir__pipeline_fail(p, WEIR_ETOPOLOGY, "the pipeline is empty");
        return WEIR_ETOPOLOGY;
    }
    pc.head = weir_calloc(p->nnodes, sizeof(int));
    pc.chained = weir_calloc(p->nnodes, sizeof(int));
    pc.tasks_of = weir_calloc(p->nnodes, sizeof(task_t **));
    rc = (pc.head && pc.chained && pc.tasks_of) ? WEIR_OK : WEIR_ENOMEM;
    if (rc == WEIR_OK)
        rc = resolve_parallelism(&pc);
    if (rc == WEIR_OK) {
        decide_chaining(&pc);
        rc = make_tasks(&pc);
    }
    if (rc == WEIR_OK)
        rc = init_routes(&pc);
    for (i = 0; rc == WEIR_OK && i < p->nnodes; i++)
        for (j = 0; rc == WEIR_OK && j < p->nodes[i]->ninputs; j++)
            rc = connect_edge(&pc, p->nodes[i], j);
    for (i = 0; i < run->ntasks; i++)
        if (run->tasks[i]->is_source)
            run->nsources++;
    if (pc.tasks_of != NULL)
        for (i = 0; i < p->nnodes; i++)
            weir_free(pc.tasks_of[i]);
    weir_free(pc.tasks_of);
    weir_free(pc.head);
    weir_free(pc.chained);
    if (rc == WEIR_ENOMEM)
        weir__pipeline_fail(p, rc, "out of memory while planning");
    return rc;
}

void plan_free(weir__run_t *run)
{
    int i;
    int m;
    int g;

    for (i = 0; i < run->ntasks; i++) {
        task_t *t = run->tasks[i];

        for (m = 0; m < t->nmembers; m++) {
            weir__inst_free(t->members[m]);
            if (t->routes == NULL)
                continue;
            for (g = 0; g < t->routes[m].ntags && t->routes[m].targets; g++)
                weir_free(t->routes[m].targets[g]);
            weir_free(t->routes[m].targets);
            weir_free(t->routes[m].ntargets);
        }
        weir_free(t->routes);
        weir_free(t->members);
        weir_free(t->in);
        weir_free(t->ex);
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cond);
        weir_free(t);
    }
    weir_free(run->tasks);
    for (i = 0; i < run->nexs; i++) {
        for (g = 0; g < run->exs[i]->nch; g++)
            weir__batch_free(run->exs[i]->pending ? run->exs[i]->pending[g]
                                                  : NULL);
        weir_free(run->exs[i]->pending);
        weir_free(run->exs[i]->ch);
        weir_free(run->exs[i]);
    }
    weir_free(run->exs);
    for (i = 0; i < run->nchans; i++)
        channel_free(run->chans[i]);
    weir_free(run->chans);
}
