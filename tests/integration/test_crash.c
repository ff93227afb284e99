/*
 * test_crash.c - weir-dedup with --checkpoint-dir survives SIGKILL at any
 * moment: a run killed and started again with the same arguments ends
 * with output files identical to those of an uninterrupted run.
 *
 * How it works: a generated input of some tens of thousands of lines
 * (unique records, duplicates, late records, errors, blank lines) is
 * deduplicated once without interruption, with a checkpoint directory, to
 * get the reference files of each scope (rolling, tumbling, session); a
 * run without checkpointing must give the same bytes. Then every trial
 * uses a fresh output and checkpoint directory: the tool is started
 * (trials rotate through the scopes), killed with SIGKILL after a delay,
 * possibly started and killed again, and finally started and left to
 * finish. The four output files must then equal the reference byte for
 * byte (parallelism 1), or as multisets (parallelism 2: each line exactly
 * once). The delay only picks where the kill lands, it synchronizes
 * nothing: trials kill at once after the start, at random points within
 * the (estimated) remaining run time, and near its end; half of the
 * trials checkpoint every 500 records, the others every 97. A run that
 * finished before its kill counts as a kill after the last write (the
 * state on disk is the same).
 *
 * Invariants: every trial starts from empty directories and uses the
 * same arguments for every start; every started process is reaped; the
 * seed of the input and the delays is fixed (printed with a failure),
 * the exact kill points are not, so a failure message lists the trial's
 * kill delays and how each killed run ended.
 */
#include "tool_util.h"

#define CRASH_LINES     20000
#define CRASH_TRIALS_P1 24
#define CRASH_TRIALS_P2 4
#define CRASH_SEED      7001

/* The input: ids from a pool of 3000, times moving forward with jitter,
 * some records far behind, errors and blank lines. */
static void gen_input(tu_buf_t *b, tu_rng_t *r)
{
    int64_t base = 1700000000000LL;
    size_t i;

    for (i = 0; i < CRASH_LINES; i++) {
        int64_t ts;
        int pick = (int)tu_rng_range(r, 0, 999);

        base += tu_rng_range(r, 0, 6);
        if (pick < 5) {
            tu_buf_puts(b, "\n");
            continue;
        }
        if (pick < 25) {
            tu_buf_printf(b,
                          pick < 15 ? "{\"id\":\"u%zu\",\"ts\":\"x\"}\n"
                                    : "not json %zu\n",
                          i);
            continue;
        }
        ts = base + tu_rng_range(r, -100, 100);
        if (pick < 60)
            ts = base - tu_rng_range(r, 0, 5000);
        tu_buf_printf(b, "{\"id\":\"u%d\",\"ts\":%" PRId64 ",\"seq\":%zu}\n",
                      (int)tu_rng_range(r, 0, 2999), ts, i);
    }
}

/* Dedup scopes; trials rotate through them. */
#define NSCOPES 3
static const char *const scopes[NSCOPES] = {"rolling:20s", "tumbling:10s",
                                            "session:1s"};

typedef struct {
    char input[4096];
    char dir[4096];                     /* scratch dir of the test */
    tu_lines_t ref[NSCOPES][TU_NFILES]; /* reference output */
    double ref_seconds[NSCOPES];        /* wall time of the reference */
    int have_ref[NSCOPES];
    const char *bin;
} crash_t;

/* argv for one start: output in trial/out, checkpoints in trial/ckpt. */
static void crash_argv(const crash_t *c, const char *trial, int scope, int par,
                       int every, tu_argv_t *a)
{
    tu_argv_add(a, c->bin);
    tu_argv_add(a, "--input");
    tu_argv_add(a, c->input);
    tu_argv_add(a, "--output-dir");
    tu_argv_addf(a, "%s/out", trial);
    tu_argv_add(a, "--key");
    tu_argv_add(a, "id");
    tu_argv_add(a, "--window");
    tu_argv_add(a, scopes[scope]);
    tu_argv_add(a, "--max-out-of-orderness");
    tu_argv_add(a, "200ms");
    tu_argv_add(a, "--allowed-lateness");
    tu_argv_add(a, "500ms");
    tu_argv_add(a, "--watermark-every");
    tu_argv_add(a, "10");
    tu_argv_add(a, "--parallelism");
    tu_argv_addf(a, "%d", par);
    if (every > 0) {
        tu_argv_add(a, "--checkpoint-dir");
        tu_argv_addf(a, "%s/ckpt", trial);
        tu_argv_add(a, "--checkpoint-every");
        tu_argv_addf(a, "%d", every);
    }
}

static void new_trial(const crash_t *c, const char *name, char *trial,
                      size_t size)
{
    char out[4096];

    tu_subdir(trial, size, c->dir, name);
    tu_subdir(out, sizeof(out), trial, "out");
}

static void read_outputs(const char *trial, tu_lines_t *files)
{
    char out[4096];
    int f;

    tu_path(out, sizeof(out), trial, "out");
    for (f = 0; f < TU_NFILES; f++)
        tu_read_output(&files[f], out, tu_dedup_files[f]);
}

static void free_outputs(tu_lines_t *files)
{
    int f;

    for (f = 0; f < TU_NFILES; f++)
        tu_lines_free(&files[f]);
}

/* Runs to completion (checkpointing every `every` records, 0: none);
 * returns the wall time in seconds. */
static double run_complete(const crash_t *c, const char *trial, int scope,
                           int par, int every)
{
    tu_argv_t a = {0};
    tu_run_t r;
    double t0 = tu_now();
    double t;

    crash_argv(c, trial, scope, par, every, &a);
    tu_run(a.v, trial, &r);
    t = tu_now() - t0;
    tu_argv_free(&a);
    tu_check_ok(&r);
    tu_run_free(&r);
    return t;
}

/* Starts a run and SIGKILLs it after delay seconds. Returns 1 when the
 * kill ended it, 0 when it had finished (status 0) before. */
static int run_killed(const crash_t *c, const char *trial, int scope, int par,
                      int every, double delay)
{
    char out_path[4096];
    char err_path[4096];
    char how[512];
    tu_argv_t a = {0};
    tu_run_t r;
    struct timespec ts;
    pid_t pid;

    memset(&r, 0, sizeof(r));
    tu_path(out_path, sizeof(out_path), trial, "killed.stdout");
    tu_path(err_path, sizeof(err_path), trial, "killed.stderr");
    crash_argv(c, trial, scope, par, every, &a);
    pid = tu_spawn(a.v, out_path, err_path);
    tu_argv_free(&a);
    if (delay > 0) {
        ts.tv_sec = (time_t)delay;
        ts.tv_nsec = (long)((delay - (double)ts.tv_sec) * 1e9);
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
    }
    kill(pid, SIGKILL);
    tu_wait(pid, TU_TOOL_TIMEOUT_S, &r);
    if (r.signaled && r.sig == SIGKILL)
        return 1;
    (void)tu_read_file(err_path, &r.err, &r.err_len);
    TU_CHECK(r.exited && r.code == 0, "a run ended on its own, badly: %s",
             tu_run_how(&r, how, sizeof(how)));
    tu_run_free(&r);
    return 0;
}

/* One trial: kills, then a final run; outputs compared with the
 * reference. */
static void trial(crash_t *c, int n, int scope, int par, int every,
                  const double *delays, int nkills)
{
    char trial_dir[4096];
    char name[64];
    char log[1024];
    size_t used = 0;
    tu_lines_t files[TU_NFILES];
    int k;
    int f;

    snprintf(name, sizeof(name), "trial-%02d-p%d", n, par);
    new_trial(c, name, trial_dir, sizeof(trial_dir));
    tu_set_ctx("seed=%d trial %d %s P=%d every %d, reference %.3fs", CRASH_SEED,
               n, scopes[scope], par, every, c->ref_seconds[scope]);
    log[0] = '\0';
    for (k = 0; k < nkills; k++) {
        int killed = run_killed(c, trial_dir, scope, par, every, delays[k]);

        used += (size_t)snprintf(log + used, sizeof(log) - used, "%s%.3fs(%s)",
                                 k > 0 ? ", " : "", delays[k],
                                 killed ? "killed" : "had finished");
        if (used >= sizeof(log))
            used = sizeof(log) - 1;
    }
    tu_set_ctx("seed=%d trial %d %s P=%d every %d, reference %.3fs, "
               "kills at %s",
               CRASH_SEED, n, scopes[scope], par, every, c->ref_seconds[scope],
               log);
    (void)run_complete(c, trial_dir, scope, par, every);
    read_outputs(trial_dir, files);
    for (f = 0; f < TU_NFILES; f++) {
        if (par == 1)
            tu_check_lines_exact(tu_dedup_files[f], &files[f],
                                 &c->ref[scope][f]);
        else
            tu_check_lines_multiset(tu_dedup_files[f], &files[f],
                                    &c->ref[scope][f]);
    }
    free_outputs(files);
    tu_rmtree(trial_dir);
}

static int crash_setup(void **state)
{
    crash_t *c = calloc(1, sizeof(*c));
    tu_buf_t b = {0};
    tu_rng_t r = {CRASH_SEED};

    assert_non_null(c);
    *state = c;
    tu_ctx[0] = '\0';
    c->bin = tu_tool("WEIR_DEDUP_BIN");
    if (c->bin == NULL)
        return 0;
    tu_mkdtemp(c->dir, sizeof(c->dir), "crash");
    tu_path(c->input, sizeof(c->input), c->dir, "input.jsonl");
    gen_input(&b, &r);
    tu_write_file(c->input, b.data, b.len);
    tu_buf_free(&b);
    return 0;
}

static int crash_teardown(void **state)
{
    crash_t *c = *state;
    int s;
    int f;

    for (s = 0; s < NSCOPES; s++)
        for (f = 0; f < TU_NFILES; f++)
            tu_lines_free(&c->ref[s][f]);
    if (c->bin != NULL)
        tu_rmtree(c->dir);
    free(c);
    return 0;
}

/* The reference: uninterrupted, with checkpoints; without checkpoints
 * the files are the same. */
static void reference(crash_t *c, int scope)
{
    char trial_dir[4096];
    tu_lines_t plain[TU_NFILES];
    tu_lines_t *ref = c->ref[scope];
    size_t total = 0;
    int f;

    tu_set_ctx("seed=%d reference %s", CRASH_SEED, scopes[scope]);
    new_trial(c, "reference", trial_dir, sizeof(trial_dir));
    c->ref_seconds[scope] = run_complete(c, trial_dir, scope, 1, 500);
    read_outputs(trial_dir, ref);
    for (f = 0; f < TU_NFILES; f++) {
        TU_CHECK(ref[f].n > 100, "reference %s has only %zu lines",
                 tu_dedup_files[f], ref[f].n);
        total += ref[f].n;
    }
    TU_CHECK(total > CRASH_LINES * 9 / 10, "reference holds %zu lines", total);
    tu_rmtree(trial_dir);
    new_trial(c, "plain", trial_dir, sizeof(trial_dir));
    (void)run_complete(c, trial_dir, scope, 1, 0);
    read_outputs(trial_dir, plain);
    for (f = 0; f < TU_NFILES; f++)
        tu_check_lines_exact(tu_dedup_files[f], &plain[f], &ref[f]);
    free_outputs(plain);
    tu_rmtree(trial_dir);
}

static void kill_and_restart(void **state)
{
    crash_t *c = *state;
    tu_rng_t r = {CRASH_SEED + 1};
    int n;

    if (c->bin == NULL)
        skip();
    for (n = 0; n < NSCOPES; n++)
        reference(c, n);
    for (n = 0; n < CRASH_TRIALS_P1 + CRASH_TRIALS_P2; n++) {
        int scope = (n + n / 6) % NSCOPES;
        double t = c->ref_seconds[scope];
        double left = t; /* the work a restarted run still has, roughly */
        double delays[3];
        int nkills = n % 6 == 2 ? 3 : n % 6 == 0 || n % 6 == 3 ? 2 : 1;
        int k;

        for (k = 0; k < nkills; k++) {
            double frac = (double)tu_rng_range(&r, 0, 1000) / 1000.0;

            if (n % 6 == 0 && k == 0)
                frac = 0; /* right after the start */
            else if (n % 6 == 1 || (n % 6 == 3 && k == 1))
                frac = (double)tu_rng_range(&r, 900, 1000) / 1000.0;
            else if (n % 6 == 3 && k == 0)
                frac = (double)tu_rng_range(&r, 0, 30) / 1000.0;
            delays[k] = frac * left;
            left = left - delays[k] + 0.05 * t;
        }
        trial(c, n, scope, n < CRASH_TRIALS_P1 ? 1 : 2, n % 2 ? 97 : 500,
              delays, nkills);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(kill_and_restart, crash_setup,
                                        crash_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
