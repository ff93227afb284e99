/*
 * runtime/checkpoint.c - the run: coordinator, checkpoint files and
 * recovery.
 *
 * How it works
 *   weir__pipeline_execute() plans the pipeline, locks checkpoint.dir
 *   for the run (ckpt_lock), looks for the newest completed checkpoint
 *   in it (a chk-<n> directory holding _COMPLETE), removes incomplete
 *   ones, starts one thread per task (each opens its members and, when
 *   recovering, restores them from chk-<n>/t<head>-<subtask>.snap), then
 *   acts as the checkpoint coordinator on the calling thread:
 *     - a checkpoint is triggered by checkpoint.interval.ms (a fixed
 *       rate, see next_slot), by sources crossing a multiple of
 *       checkpoint.every.records, by weir_pipeline_checkpoint(), and once
 *       more after every source has finished (the final checkpoint); one
 *       is in flight at a time;
 *     - triggering n = creating chk-<n> and asking every source task to
 *       inject barrier n;
 *     - the task that acknowledges n last completes it on its thread
 *       (ckpt_ack): the empty marker _COMPLETE is created between two
 *       syncs of the directory (ckpt_complete), n is the last completed
 *       checkpoint, and every task is asked to deliver
 *       on_checkpoint_complete(n); then the coordinator deletes older
 *       ones beyond checkpoint.retain;
 *     - when every source is done (end of input or stop) and the final
 *       checkpoint (if any) has completed, sources are told to terminate;
 *       termination flows through the channels and every thread exits.
 *   A task failure cancels the run: every thread wakes, closes its
 *   operators and exits; run() returns the first error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "exec.h"

/* ------------------------------------------------------------------ *
 * ## Files
 * ------------------------------------------------------------------ */

static void chk_path(const weir__run_t *run, uint64_t id, const char *file,
                     char *out, size_t size)
{
    if (file != NULL)
        snprintf(out, size, "%s/chk-%llu/%s", run->ckpt_dir,
                 (unsigned long long)id, file);
    else
        snprintf(out, size, "%s/chk-%llu", run->ckpt_dir,
                 (unsigned long long)id);
}

/* Makes the names in directory path durable. A file system that cannot
 * sync directories (EINVAL) keeps them without it. */
static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = WEIR_OK;

    if (fd < 0)
        return WEIR_EIO;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = WEIR_EIO;
    close(fd);
    return rc;
}

static int write_file(const char *path, const void *data, size_t len,
                      int do_fsync)
{
    const uint8_t *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ssize_t n;

    if (fd < 0)
        return WEIR_EIO;
    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return WEIR_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    if (do_fsync && fsync(fd) != 0) {
        close(fd);
        return WEIR_EIO;
    }
    return close(fd) == 0 ? WEIR_OK : WEIR_EIO;
}

static int read_file(const char *path, weir__bytes_t *out)
{
    uint8_t buf[65536];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return WEIR_ENOENT;
    for (;;) {
        n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (weir__bytes_append(out, buf, (size_t)n) != WEIR_OK) {
            close(fd);
            return WEIR_ENOMEM;
        }
    }
    close(fd);
    return n < 0 ? WEIR_EIO : WEIR_OK;
}

static void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *de;
    char sub[4096];

    if (d == NULL) {
        unlink(path);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        remove_tree(sub);
    }
    closedir(d);
    rmdir(path);
}

static int mkdir_p(const char *path)
{
    char tmp[4096];
    char *p;

    snprintf(tmp, sizeof(tmp), "%s", path);
    for (p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return WEIR_EIO;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return WEIR_EIO;
    return WEIR_OK;
}

static int complete_exists(const weir__run_t *run, uint64_t id)
{
    char path[4096];
    struct stat sb;

    chk_path(run, id, "_COMPLETE", path, sizeof(path));
    return stat(path, &sb) == 0;
}

/* Calls fn for every chk-<n> directory. */
static void each_checkpoint(weir__run_t *run,
                            void (*fn)(weir__run_t *, uint64_t, void *),
                            void *arg)
{
    DIR *d = opendir(run->ckpt_dir);
    struct dirent *de;
    char *end;
    unsigned long long id;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "chk-", 4) != 0)
            continue;
        id = strtoull(de->d_name + 4, &end, 10);
        if (*end == '\0' && id > 0)
            fn(run, id, arg);
    }
    closedir(d);
}

static void find_latest(weir__run_t *run, uint64_t id, void *arg)
{
    uint64_t *best = arg;

    if (id > *best && complete_exists(run, id))
        *best = id;
}

static void find_max(weir__run_t *run, uint64_t id, void *arg)
{
    (void)run;
    if (id > *(uint64_t *)arg)
        *(uint64_t *)arg = id;
}

static void drop_incomplete(weir__run_t *run, uint64_t id, void *arg)
{
    char path[4096];

    (void)arg;
    if (complete_exists(run, id))
        return;
    chk_path(run, id, NULL, path, sizeof(path));
    remove_tree(path);
}

static void drop_old(weir__run_t *run, uint64_t id, void *arg)
{
    uint64_t keep_from = *(uint64_t *)arg;
    char path[4096];

    if (id >= keep_from)
        return;
    chk_path(run, id, NULL, path, sizeof(path));
    remove_tree(path);
}

/* Takes the directory for this run: an exclusive flock on ckpt_dir/LOCK,
 * held until run_destroy. Two runs writing one directory (two processes,
 * or two pipelines of one process) would restore and delete each other's
 * checkpoints; the second is refused instead. The kernel drops the lock
 * when its holder dies, so a crashed run never blocks its restart. */
static int ckpt_lock(weir__run_t *run)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/LOCK", run->ckpt_dir);
    run->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (run->lock_fd < 0) {
        weir__pipeline_fail(run->p, WEIR_EIO, "cannot open %s: %s", path,
                            strerror(errno));
        return WEIR_EIO;
    }
    if (flock(run->lock_fd, LOCK_EX | LOCK_NB) == 0)
        return WEIR_OK;
    if (errno == EWOULDBLOCK) {
        weir__pipeline_fail(run->p, WEIR_EBUSY,
                            "checkpoint directory %s is in use by another "
                            "run (each pipeline needs its own)",
                            run->ckpt_dir);
        return WEIR_EBUSY;
    }
    weir__pipeline_fail(run->p, WEIR_EIO, "cannot lock %s: %s", path,
                        strerror(errno));
    return WEIR_EIO;
}

int ckpt_prepare(weir__run_t *run)
{
    uint64_t latest = 0;
    uint64_t max = 0;
    int rc;

    if (run->ckpt_dir == NULL)
        return WEIR_OK;
    if (mkdir_p(run->ckpt_dir) != WEIR_OK) {
        weir__pipeline_fail(run->p, WEIR_EIO,
                            "cannot create checkpoint directory %s: %s",
                            run->ckpt_dir, strerror(errno));
        return WEIR_EIO;
    }
    rc = ckpt_lock(run);
    if (rc != WEIR_OK)
        return rc;
    each_checkpoint(run, find_latest, &latest);
    each_checkpoint(run, drop_incomplete, NULL);
    each_checkpoint(run, find_max, &max);
    run->restore_id = latest;
    run->last_id = max > latest ? max : latest;
    atomic_store(&run->p->last_completed, latest);
    return WEIR_OK;
}

int ckpt_begin(weir__run_t *run, uint64_t id)
{
    char path[4096];

    chk_path(run, id, NULL, path, sizeof(path));
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        weir__pipeline_fail(run->p, WEIR_EIO, "cannot create %s: %s", path,
                            strerror(errno));
        return WEIR_EIO;
    }
    return WEIR_OK;
}

static void task_file(const task_t *t, char *out, size_t size)
{
    snprintf(out, size, "t%d-%d.snap", t->head_node, t->subtask);
}

int ckpt_write_task(weir__run_t *run, task_t *t, uint64_t id,
                    const weir__bytes_t *data)
{
    char name[64];
    char path[4096];

    task_file(t, name, sizeof(name));
    chk_path(run, id, name, path, sizeof(path));
    return write_file(path, data->data ? data->data : (uint8_t *)"", data->len,
                      run->fsync);
}

int ckpt_read_task(weir__run_t *run, task_t *t, uint64_t id,
                   weir__bytes_t *data)
{
    char name[64];
    char path[4096];
    int rc;

    task_file(t, name, sizeof(name));
    chk_path(run, id, name, path, sizeof(path));
    rc = read_file(path, data);
    if (rc != WEIR_OK)
        weir__pipeline_fail(run->p, rc == WEIR_ENOENT ? WEIR_ETOPOLOGY : rc,
                            "checkpoint %llu: cannot read %s (operators or "
                            "parallelism changed?)",
                            (unsigned long long)id, path);
    return rc == WEIR_ENOENT ? WEIR_ETOPOLOGY : rc;
}

/* Marks checkpoint id complete. The marker is an empty file: its name in
 * the directory is the whole record, so a crash can leave it absent or
 * present, never half written. The first directory sync makes the task
 * files' names durable before the marker can be; the second, the
 * marker's. This is on the path of every exactly-once commit, so it is
 * two syncs and nothing else (older checkpoints go in ckpt_retire). */
int ckpt_complete(weir__run_t *run, uint64_t id)
{
    char path[4096];
    char dir[4096];
    int fd;

    chk_path(run, id, "_COMPLETE", path, sizeof(path));
    chk_path(run, id, NULL, dir, sizeof(dir));
    if (run->fsync && fsync_dir(dir) != WEIR_OK)
        goto fail;
    fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        goto fail;
    close(fd);
    if (run->fsync && fsync_dir(dir) != WEIR_OK)
        goto fail;
    atomic_store(&run->p->last_completed, id);
    return WEIR_OK;
fail:
    weir__pipeline_fail(run->p, WEIR_EIO,
                        "cannot complete checkpoint %llu in %s: %s",
                        (unsigned long long)id, dir, strerror(errno));
    return WEIR_EIO;
}

/* Deletes the completed checkpoints older than the checkpoint.retain
 * newest, once id is complete and its completion has been posted. */
void ckpt_retire(weir__run_t *run, uint64_t id)
{
    uint64_t keep_from;

    keep_from =
        id >= (uint64_t)run->retain ? id - (uint64_t)run->retain + 1 : 0;
    each_checkpoint(run, drop_old, &keep_from);
}

/* ------------------------------------------------------------------ *
 * ## Coordinator
 * ------------------------------------------------------------------ */

static void post_sources(weir__run_t *run, uint64_t inject, int terminate,
                         int stop)
{
    int i;

    for (i = 0; i < run->ntasks; i++) {
        task_t *t = run->tasks[i];
        if (!t->is_source)
            continue;
        pthread_mutex_lock(&t->mu);
        if (inject > t->inject_upto)
            t->inject_upto = inject;
        if (terminate)
            t->terminate = 1;
        if (stop)
            t->stop = 1;
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->mu);
    }
}

static void post_complete(weir__run_t *run, uint64_t id)
{
    int i;

    for (i = 0; i < run->ntasks; i++) {
        task_t *t = run->tasks[i];
        pthread_mutex_lock(&t->mu);
        t->complete_upto = id;
        pthread_cond_broadcast(&t->cond);
        pthread_mutex_unlock(&t->mu);
    }
}

/*
 * A task acknowledges checkpoint id. The last one to do so completes it
 * on its own thread (marker, then completion posted to every task, its
 * own included) rather than waking the coordinator to do it: two thread
 * wake-ups fewer between the last snapshot and an exactly-once sink's
 * commit, which that same task then runs first thing. `inflight` stays
 * set until the completion is posted, so the coordinator starts no
 * checkpoint meanwhile; it deletes the old ones afterwards.
 */
void ckpt_ack(weir__run_t *run, uint64_t id)
{
    int last;
    int rc;

    pthread_mutex_lock(&run->mu);
    last = id == run->inflight && ++run->acks == run->ntasks;
    pthread_mutex_unlock(&run->mu);
    if (!last)
        return;
    rc = ckpt_complete(run, id);
    if (rc == WEIR_OK)
        post_complete(run, id);
    else
        atomic_store(&run->cancel, 1); /* the coordinator ends the run */
    pthread_mutex_lock(&run->mu);
    run->inflight = 0;
    if (rc == WEIR_OK)
        run->retire_upto = id;
    pthread_cond_broadcast(&run->cond);
    pthread_mutex_unlock(&run->mu);
}

static void coordinator_wait(weir__run_t *run, weir_ts_t deadline)
{
    struct timespec ts;
    weir_ts_t now = weir__now_ms();
    weir_ts_t limit = now + 20; /* poll the async-signal-safe stop flag */

    if (deadline < limit)
        limit = deadline;
    ts.tv_sec = limit / 1000;
    ts.tv_nsec = (long)(limit % 1000) * 1000000L;
    pthread_cond_timedwait(&run->cond, &run->mu, &ts);
}

/* checkpoint.interval.ms is a fixed rate: checkpoints start on a grid of
 * that period from the start of the run, so a late wake-up or a
 * checkpoint still in flight delays one checkpoint, not every later one.
 * Moves *slot to the first grid point after now. */
static void next_slot(weir_ts_t *slot, int64_t interval, weir_ts_t now)
{
    *slot += interval;
    if (*slot <= now)
        *slot += ((now - *slot) / interval + 1) * interval;
}

/* One step of the coordinator, run->mu held. Returns 1 when done. */
static int coordinate(weir__run_t *run, weir_ts_t *next_interval, int *stopping)
{
    weir_pipeline_t *p = run->p;
    int all_done;
    uint64_t id;

    if (!*stopping && atomic_load(&p->stop_requested)) {
        *stopping = 1;
        post_sources(run, 0, 0, 1);
    }
    if (atomic_exchange(&p->ckpt_requested, 0))
        run->want_ckpt = 1;
    if (atomic_load(&run->cancel))
        return 1; /* a completion failed (ckpt_ack) */
    if (run->retire_upto != 0) {
        id = run->retire_upto;
        run->retire_upto = 0;
        pthread_mutex_unlock(&run->mu);
        ckpt_retire(run, id);
        pthread_mutex_lock(&run->mu);
    }
    all_done = run->sources_done == run->nsources;
    if (run->ckpt_dir == NULL) {
        if (all_done) {
            post_sources(run, 0, 1, 0);
            return 1;
        }
        return 0;
    }
    if (run->inflight != 0)
        return 0;
    if (all_done && run->final_id != 0 &&
        atomic_load(&p->last_completed) >= run->final_id) {
        post_sources(run, 0, 1, 0);
        return 1;
    }
    if (run->interval_ms > 0 && weir__now_ms() >= *next_interval) {
        run->want_ckpt = 1;
        next_slot(next_interval, run->interval_ms, weir__now_ms());
    }
    if (!run->want_ckpt && !(all_done && run->final_id == 0))
        return 0;
    id = ++run->last_id;
    if (all_done)
        run->final_id = id;
    run->want_ckpt = 0;
    run->inflight = id;
    run->acks = 0;
    if (ckpt_begin(run, id) != WEIR_OK) {
        atomic_store(&run->cancel, 1);
        return 1;
    }
    post_sources(run, id, 0, 0);
    return 0;
}

static void coordinator(weir__run_t *run)
{
    weir_ts_t next_interval = weir__now_ms() + run->interval_ms;
    int stopping = 0;

    pthread_mutex_lock(&run->mu);
    while (!atomic_load(&run->cancel)) {
        if (coordinate(run, &next_interval, &stopping))
            break;
        coordinator_wait(run,
                         run->interval_ms > 0 ? next_interval : WEIR_TS_MAX);
    }
    pthread_mutex_unlock(&run->mu);
    if (atomic_load(&run->cancel))
        run_wake_all(run);
}

static int run_init(weir__run_t *run, weir_pipeline_t *p)
{
    const char *dir = weir_conf_get(p->conf, "checkpoint.dir");
    const char *fs = weir_conf_get(p->conf, "checkpoint.fsync");

    memset(run, 0, sizeof(*run));
    run->p = p;
    run->lock_fd = -1;
    pthread_mutex_init(&run->mu, NULL);
    pthread_cond_init(&run->cond, NULL);
    if (dir != NULL && *dir != '\0') {
        run->ckpt_dir = weir__strdup(dir);
        if (run->ckpt_dir == NULL)
            return WEIR_ENOMEM;
    }
    run->fsync = fs == NULL || strcmp(fs, "false") != 0;
    run->retain = (int)weir__conf_i64(p->conf, "checkpoint.retain", 2);
    run->every_records = weir__conf_i64(p->conf, "checkpoint.every.records", 0);
    run->interval_ms = weir__conf_i64(p->conf, "checkpoint.interval.ms", 0);
    run->idle_wait_ms = weir__conf_i64(p->conf, "source.idle.wait.ms", 10);
    return WEIR_OK;
}

static void run_destroy(weir__run_t *run)
{
    plan_free(run);
    if (run->lock_fd >= 0)
        close(run->lock_fd); /* releases the directory */
    weir_free(run->ckpt_dir);
    pthread_mutex_destroy(&run->mu);
    pthread_cond_destroy(&run->cond);
}

int weir__pipeline_execute(weir_pipeline_t *p)
{
    weir__run_t run;
    int rc;
    int i;

    rc = run_init(&run, p);
    if (rc == WEIR_OK)
        rc = ckpt_prepare(&run);
    if (rc == WEIR_OK)
        rc = plan_build(&run);
    if (rc == WEIR_OK && run.nsources == 0) {
        weir__pipeline_fail(p, WEIR_ETOPOLOGY, "the pipeline has no source");
        rc = WEIR_ETOPOLOGY;
    }
    for (i = 0; rc == WEIR_OK && i < run.ntasks; i++) {
        if (pthread_create(&run.tasks[i]->thread, NULL, task_main,
                           run.tasks[i]) != 0) {
            weir__pipeline_fail(p, WEIR_ENOMEM, "cannot start a thread");
            atomic_store(&run.cancel, 1);
            run_wake_all(&run);
            rc = WEIR_ENOMEM;
            break;
        }
        run.tasks[i]->started = 1;
    }
    if (rc == WEIR_OK)
        coordinator(&run);
    else if (rc == WEIR_ENOMEM && p->err == WEIR_OK)
        weir__pipeline_fail(p, rc, "out of memory");
    for (i = 0; i < run.ntasks; i++)
        if (run.tasks[i]->started)
            pthread_join(run.tasks[i]->thread, NULL);
    run_destroy(&run);
    return weir_pipeline_error(p);
}
