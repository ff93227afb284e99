/*
 * tool_util.h - shared helpers for the integration tests of the weir-*
 * command-line tools (weir-dedup, weir-window).
 *
 * How it works: the tools are separate programs, found through the
 * environment (WEIR_DEDUP_BIN, WEIR_WINDOW_BIN). A test makes a scratch
 * directory under WEIR_TEST_TMP, writes an input file there, runs a tool
 * with posix_spawn (never through a shell, so paths need no quoting),
 * captures its stdout and stderr into files of the scratch directory,
 * waits for it with a deadline (SIGCHLD is blocked and collected with
 * sigtimedwait, so there is no polling), and reads the output files back
 * as lists of lines. Lines are byte strings with a length: they may hold
 * NUL bytes. Comparisons are either exact (same lines, same order) or as
 * multisets (sorted copies compared). A failed check prints what differed
 * plus the test's context string (seed, configuration) and fails the
 * cmocka test; nothing is printed on success.
 *
 * Everything is static inline so that each test file takes only what it
 * uses without unused-function warnings.
 *
 * Invariants: every list, buffer and run result owns its memory and is
 * released by its _free function; a tool process is always reaped before
 * tu_wait returns (killed with SIGKILL when it overruns its deadline);
 * SIGCHLD stays blocked in the test process, and children start with an
 * empty signal mask.
 */
#ifndef WEIR_TESTS_TOOL_UTIL_H
#define WEIR_TESTS_TOOL_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

extern char **environ;

/* Seconds one tool run may take before it is killed and the test fails. */
#define TU_TOOL_TIMEOUT_S 300

/* The four output files of weir-dedup, in a fixed order. */
enum { TU_UNIQUE, TU_DUPLICATES, TU_LATE, TU_ERRORS, TU_NFILES };

static const char *const tu_dedup_files[TU_NFILES] = {
    "unique.jsonl", "duplicates.jsonl", "late.jsonl", "errors.jsonl"};

/* ------------------------------------------------------------------ */
/* Failure reporting                                                   */
/* ------------------------------------------------------------------ */

/* Context printed with every failure: seed, configuration, ... */
static char tu_ctx[512];

static inline void tu_set_ctx(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tu_ctx, sizeof(tu_ctx), fmt, ap);
    va_end(ap);
}

static inline void tu_report(const char *file, int line, const char *fmt, ...)
{
    char msg[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    print_error("%s:%d: %s%s%s%s\n", file, line, msg,
                tu_ctx[0] != '\0' ? " [" : "", tu_ctx,
                tu_ctx[0] != '\0' ? "]" : "");
}

#define TU_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            tu_report(__FILE__, __LINE__, __VA_ARGS__);                        \
            _fail(__FILE__, __LINE__);                                         \
        }                                                                      \
    } while (0)

#define TU_FAIL(...) TU_CHECK(0, __VA_ARGS__)

/* A printable, truncated rendering of bytes (for messages only). */
static inline const char *tu_show(const char *p, size_t len, char *out,
                                  size_t size)
{
    size_t i;
    size_t o = 0;

    for (i = 0; i < len && o + 8 < size; i++) {
        unsigned char c = (unsigned char)p[i];

        if (o > 160) {
            o += (size_t)snprintf(out + o, size - o, "...(%zu bytes)", len);
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, size - o, "\\x%02x", c);
    }
    out[o < size ? o : size - 1] = '\0';
    return out;
}

/* ------------------------------------------------------------------ */
/* Memory and byte buffers                                             */
/* ------------------------------------------------------------------ */

static inline void *tu_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n == 0 ? 1 : n);

    assert_non_null(q);
    return q;
}

static inline char *tu_xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(tu_xrealloc(NULL, n), s, n);
}

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} tu_buf_t;

static inline void tu_buf_add(tu_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap;

        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = tu_xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static inline void tu_buf_puts(tu_buf_t *b, const char *s)
{
    tu_buf_add(b, s, strlen(s));
}

static inline void tu_buf_printf(tu_buf_t *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    assert_true(n >= 0);
    if ((size_t)n < sizeof(small)) {
        tu_buf_add(b, small, (size_t)n);
        return;
    }
    {
        char *big = tu_xrealloc(NULL, (size_t)n + 1);

        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        tu_buf_add(b, big, (size_t)n);
        free(big);
    }
}

static inline void tu_buf_free(tu_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------------ */
/* Files and directories                                               */
/* ------------------------------------------------------------------ */

/* Reads a whole file; returns 0, or -errno (and *data NULL). */
static inline int tu_read_file(const char *path, char **data, size_t *len)
{
    tu_buf_t b = {0};
    char chunk[65536];
    ssize_t n;
    int fd;

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;

            close(fd);
            tu_buf_free(&b);
            return -e;
        }
        if (n == 0)
            break;
        tu_buf_add(&b, chunk, (size_t)n);
    }
    close(fd);
    if (b.data == NULL)
        tu_buf_add(&b, "", 0);
    *data = b.data;
    *len = b.len;
    return 0;
}

static inline void tu_write_file(const char *path, const void *data, size_t len)
{
    const char *p = data;
    size_t done = 0;
    int fd;

    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    TU_CHECK(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        TU_CHECK(n > 0, "cannot write %s: %s", path, strerror(errno));
        done += (size_t)n;
    }
    TU_CHECK(close(fd) == 0, "cannot close %s", path);
}

static inline void tu_path(char *out, size_t size, const char *dir,
                           const char *name)
{
    int n = snprintf(out, size, "%s/%s", dir, name);

    assert_true(n > 0 && (size_t)n < size);
}

/* A fresh directory WEIR_TEST_TMP/<tag>-XXXXXX (or under /tmp). */
static inline void tu_mkdtemp(char *out, size_t size, const char *tag)
{
    const char *base = getenv("WEIR_TEST_TMP");
    int n;

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    (void)mkdir(base, 0755);
    n = snprintf(out, size, "%s/%s-XXXXXX", base, tag);
    assert_true(n > 0 && (size_t)n < size);
    TU_CHECK(mkdtemp(out) != NULL, "mkdtemp %s: %s", out, strerror(errno));
}

/* A subdirectory dir/name, created; its path in out. */
static inline void tu_subdir(char *out, size_t size, const char *dir,
                             const char *name)
{
    tu_path(out, size, dir, name);
    TU_CHECK(mkdir(out, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", out,
             strerror(errno));
}

static inline int tu_rm_entry(const char *path, const struct stat *sb, int type,
                              struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    (void)chmod(path, 0700);
    return remove(path) == 0 ? 0 : 0;
}

/* Removes a directory tree (best effort). */
static inline void tu_rmtree(const char *dir)
{
    (void)nftw(dir, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ------------------------------------------------------------------ */
/* Lines                                                               */
/* ------------------------------------------------------------------ */

typedef struct {
    char *p; /* NUL-terminated copy; may also hold NUL bytes inside */
    size_t len;
} tu_line_t;

typedef struct {
    tu_line_t *v;
    size_t n;
    size_t cap;
    int unterminated; /* last line had no '\n' */
} tu_lines_t;

static inline void tu_lines_push(tu_lines_t *ls, const char *p, size_t len)
{
    if (ls->n == ls->cap) {
        ls->cap = ls->cap == 0 ? 64 : ls->cap * 2;
        ls->v = tu_xrealloc(ls->v, ls->cap * sizeof(*ls->v));
    }
    ls->v[ls->n].p = tu_xrealloc(NULL, len + 1);
    if (len > 0)
        memcpy(ls->v[ls->n].p, p, len);
    ls->v[ls->n].p[len] = '\0';
    ls->v[ls->n].len = len;
    ls->n++;
}

static inline void tu_lines_push_str(tu_lines_t *ls, const char *s)
{
    tu_lines_push(ls, s, strlen(s));
}

/* Splits data at '\n' (each line without its '\n'). */
static inline void tu_lines_split(tu_lines_t *ls, const char *data, size_t len)
{
    size_t start = 0;
    size_t i;

    for (i = 0; i < len; i++) {
        if (data[i] == '\n') {
            tu_lines_push(ls, data + start, i - start);
            start = i + 1;
        }
    }
    if (start < len) {
        tu_lines_push(ls, data + start, len - start);
        ls->unterminated = 1;
    }
}

static inline void tu_lines_free(tu_lines_t *ls)
{
    size_t i;

    for (i = 0; i < ls->n; i++)
        free(ls->v[i].p);
    free(ls->v);
    memset(ls, 0, sizeof(*ls));
}

/* Reads path as lines; returns 0, or -errno when it cannot be read. */
static inline int tu_lines_read(tu_lines_t *ls, const char *path)
{
    char *data;
    size_t len;
    int rc;

    memset(ls, 0, sizeof(*ls));
    rc = tu_read_file(path, &data, &len);
    if (rc != 0)
        return rc;
    tu_lines_split(ls, data, len);
    free(data);
    return 0;
}

/* Reads dir/name, which must exist and end every line with '\n'. */
static inline void tu_read_output(tu_lines_t *ls, const char *dir,
                                  const char *name)
{
    char path[4096];
    int rc;

    tu_path(path, sizeof(path), dir, name);
    rc = tu_lines_read(ls, path);
    TU_CHECK(rc == 0, "output file %s missing or unreadable: %s", path,
             strerror(-rc));
    TU_CHECK(!ls->unterminated, "%s: last line has no newline", name);
}

static inline int tu_line_cmp(const void *a, const void *b)
{
    const tu_line_t *x = a;
    const tu_line_t *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n == 0 ? 0 : memcmp(x->p, y->p, n);

    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len ? 1 : 0;
}

static inline int tu_line_eq(const tu_line_t *x, const tu_line_t *y)
{
    return x->len == y->len && (x->len == 0 || memcmp(x->p, y->p, x->len) == 0);
}

/* got must equal want line for line, in order. */
static inline void tu_check_lines_exact(const char *what, const tu_lines_t *got,
                                        const tu_lines_t *want)
{
    char a[256];
    char b[256];
    size_t i;
    size_t n = got->n < want->n ? got->n : want->n;

    for (i = 0; i < n; i++) {
        TU_CHECK(tu_line_eq(&got->v[i], &want->v[i]),
                 "%s: line %zu differs: got '%s', want '%s'", what, i + 1,
                 tu_show(got->v[i].p, got->v[i].len, a, sizeof(a)),
                 tu_show(want->v[i].p, want->v[i].len, b, sizeof(b)));
    }
    if (got->n > n)
        TU_FAIL("%s: %zu lines, want %zu; first extra: '%s'", what, got->n,
                want->n, tu_show(got->v[n].p, got->v[n].len, a, sizeof(a)));
    if (want->n > n)
        TU_FAIL("%s: %zu lines, want %zu; first missing: '%s'", what, got->n,
                want->n, tu_show(want->v[n].p, want->v[n].len, a, sizeof(a)));
}

/* got must equal want as multisets of lines. */
static inline void tu_check_lines_multiset(const char *what,
                                           const tu_lines_t *got,
                                           const tu_lines_t *want)
{
    tu_line_t *x;
    tu_line_t *y;
    char s[256];
    size_t i = 0;
    size_t j = 0;

    x = tu_xrealloc(NULL, (got->n + 1) * sizeof(*x));
    y = tu_xrealloc(NULL, (want->n + 1) * sizeof(*y));
    if (got->n > 0)
        memcpy(x, got->v, got->n * sizeof(*x));
    if (want->n > 0)
        memcpy(y, want->v, want->n * sizeof(*y));
    qsort(x, got->n, sizeof(*x), tu_line_cmp);
    qsort(y, want->n, sizeof(*y), tu_line_cmp);
    while (i < got->n || j < want->n) {
        int c;

        if (i == got->n)
            c = 1;
        else if (j == want->n)
            c = -1;
        else
            c = tu_line_cmp(&x[i], &y[j]);
        if (c != 0) {
            const tu_line_t *l = c < 0 ? &x[i] : &y[j];

            tu_show(l->p, l->len, s, sizeof(s));
            free(x);
            free(y);
            TU_FAIL("%s: %zu lines, want %zu (as a multiset); %s: '%s'", what,
                    got->n, want->n, c < 0 ? "unexpected line" : "missing line",
                    s);
        }
        i++;
        j++;
    }
    free(x);
    free(y);
}

/* ------------------------------------------------------------------ */
/* Running a tool                                                      */
/* ------------------------------------------------------------------ */

typedef struct {
    char *v[64];
    int n;
} tu_argv_t;

static inline void tu_argv_add(tu_argv_t *a, const char *s)
{
    assert_true(a->n + 1 < (int)(sizeof(a->v) / sizeof(a->v[0])));
    a->v[a->n++] = tu_xstrdup(s);
    a->v[a->n] = NULL;
}

static inline void tu_argv_addf(tu_argv_t *a, const char *fmt, ...)
{
    char s[4096];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s, sizeof(s), fmt, ap);
    va_end(ap);
    tu_argv_add(a, s);
}

static inline void tu_argv_free(tu_argv_t *a)
{
    int i;

    for (i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
    a->v[0] = NULL;
}

/* The tool named by environment variable env, or NULL when not built. */
static inline const char *tu_tool(const char *env)
{
    const char *bin = getenv(env);

    if (bin == NULL || bin[0] == '\0' || access(bin, X_OK) != 0)
        return NULL;
    return bin;
}

typedef struct {
    int exited; /* exited normally, with status code */
    int code;
    int signaled; /* killed by signal sig */
    int sig;
    int timed_out; /* ran past its deadline (then killed) */
    char *out;     /* captured stdout (NUL-terminated) */
    size_t out_len;
    char *err; /* captured stderr (NUL-terminated) */
    size_t err_len;
} tu_run_t;

static inline void tu_block_sigchld(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    assert_int_equal(0, sigprocmask(SIG_BLOCK, &set, NULL));
}

/* Starts argv (argv[0] is the program path), stdout and stderr redirected
 * to out_path and err_path, stdin from /dev/null. */
static inline pid_t tu_spawn(char *const argv[], const char *out_path,
                             const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t empty;
    pid_t pid;
    int rc;

    tu_block_sigchld();
    sigemptyset(&empty);
    assert_int_equal(0, posix_spawn_file_actions_init(&fa));
    assert_int_equal(0, posix_spawnattr_init(&attr));
    assert_int_equal(
        0, posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0));
    assert_int_equal(0,
                     posix_spawn_file_actions_addopen(
                         &fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    assert_int_equal(0,
                     posix_spawn_file_actions_addopen(
                         &fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    assert_int_equal(0, posix_spawnattr_setsigmask(&attr, &empty));
    assert_int_equal(0,
                     posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK));
    rc = posix_spawn(&pid, argv[0], &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    TU_CHECK(rc == 0, "cannot start %s: %s", argv[0], strerror(rc));
    return pid;
}

static inline double tu_now(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Waits for pid with a deadline; fills the status fields of r. */
static inline void tu_wait(pid_t pid, double timeout_s, tu_run_t *r)
{
    sigset_t set;
    double deadline = tu_now() + timeout_s;
    int status = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        double left;
        struct timespec ts;

        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            TU_FAIL("waitpid: %s", strerror(errno));
        left = deadline - tu_now();
        if (left <= 0) {
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            r->timed_out = 1;
            break;
        }
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        (void)sigtimedwait(&set, NULL, &ts);
    }
    r->exited = WIFEXITED(status);
    r->code = r->exited ? WEXITSTATUS(status) : -1;
    r->signaled = WIFSIGNALED(status);
    r->sig = r->signaled ? WTERMSIG(status) : 0;
}

static inline void tu_run_free(tu_run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* Runs argv to completion; stdout/stderr captured via files in capdir. */
static inline void tu_run(char *const argv[], const char *capdir, tu_run_t *r)
{
    char out_path[4096];
    char err_path[4096];
    pid_t pid;

    memset(r, 0, sizeof(*r));
    tu_path(out_path, sizeof(out_path), capdir, "tool.stdout");
    tu_path(err_path, sizeof(err_path), capdir, "tool.stderr");
    pid = tu_spawn(argv, out_path, err_path);
    tu_wait(pid, TU_TOOL_TIMEOUT_S, r);
    assert_int_equal(0, tu_read_file(out_path, &r->out, &r->out_len));
    assert_int_equal(0, tu_read_file(err_path, &r->err, &r->err_len));
    unlink(out_path);
    unlink(err_path);
}

/* A one-line description of how a run ended, for messages. */
static inline const char *tu_run_how(const tu_run_t *r, char *out, size_t size)
{
    char e[256];

    tu_show(r->err, r->err_len, e, sizeof(e));
    if (r->timed_out)
        snprintf(out, size, "timed out after %d s; stderr '%s'",
                 TU_TOOL_TIMEOUT_S, e);
    else if (r->signaled)
        snprintf(out, size, "killed by signal %d (%s); stderr '%s'", r->sig,
                 strsignal(r->sig), e);
    else
        snprintf(out, size, "exit %d; stderr '%s'", r->code, e);
    return out;
}

/* The run must have exited with status 0. */
static inline void tu_check_ok(const tu_run_t *r)
{
    char how[512];

    TU_CHECK(r->exited && r->code == 0, "tool failed: %s",
             tu_run_how(r, how, sizeof(how)));
}

/* The run must have exited (not by a signal) with a non-zero status and
 * exactly one line on stderr. */
static inline void tu_check_rejected(const tu_run_t *r, const char *what)
{
    char how[512];
    size_t nl = 0;
    size_t i;

    TU_CHECK(!r->timed_out && !r->signaled, "%s: crashed: %s", what,
             tu_run_how(r, how, sizeof(how)));
    TU_CHECK(r->exited && r->code != 0, "%s: want a non-zero exit: %s", what,
             tu_run_how(r, how, sizeof(how)));
    for (i = 0; i < r->err_len; i++)
        nl += r->err[i] == '\n';
    TU_CHECK(r->err_len > 0 && r->err[0] != '\n', "%s: stderr empty: %s", what,
             tu_run_how(r, how, sizeof(how)));
    TU_CHECK(nl == 0 || (nl == 1 && r->err[r->err_len - 1] == '\n'),
             "%s: want exactly one line on stderr, got %zu: %s", what, nl,
             tu_run_how(r, how, sizeof(how)));
}

/* ------------------------------------------------------------------ */
/* The dedup summary line                                              */
/* ------------------------------------------------------------------ */

/* Copies the last non-empty line of stdout into out. */
static inline void tu_last_line(const tu_run_t *r, char *out, size_t size)
{
    size_t end = r->out_len;
    size_t start;
    size_t n;

    while (end > 0 && (r->out[end - 1] == '\n' || r->out[end - 1] == '\r'))
        end--;
    start = end;
    while (start > 0 && r->out[start - 1] != '\n')
        start--;
    n = end - start < size - 1 ? end - start : size - 1;
    memcpy(out, r->out + start, n);
    out[n] = '\0';
}

/* The summary object {"records":R,"unique":U,"duplicates":D,"late":L,
 * "errors":E} must be the last line on stdout, with exactly these five
 * integer members and these values. */
static inline void tu_check_summary(const tu_run_t *r, long long records,
                                    long long unique, long long dups,
                                    long long late, long long errors)
{
    static const char *const names[5] = {"records", "unique", "duplicates",
                                         "late", "errors"};
    long long want[5];
    char line[1024];
    json_error_t jerr;
    json_t *o;
    int i;

    want[0] = records;
    want[1] = unique;
    want[2] = dups;
    want[3] = late;
    want[4] = errors;
    tu_last_line(r, line, sizeof(line));
    o = json_loads(line, 0, &jerr);
    TU_CHECK(o != NULL && json_is_object(o),
             "last stdout line is not a JSON object: '%s'", line);
    for (i = 0; i < 5; i++) {
        json_t *v = json_object_get(o, names[i]);

        if (v == NULL || !json_is_integer(v)) {
            json_decref(o);
            TU_FAIL("summary '%s' lacks integer \"%s\"", line, names[i]);
        }
        if (json_integer_value(v) != want[i]) {
            long long got = (long long)json_integer_value(v);

            json_decref(o);
            TU_FAIL("summary '%s': %s = %lld, want %lld", line, names[i], got,
                    want[i]);
        }
    }
    i = (int)json_object_size(o);
    json_decref(o);
    TU_CHECK(i == 5, "summary '%s' has %d members, want 5", line, i);
}

/* ------------------------------------------------------------------ */
/* Durations, random numbers, keys                                     */
/* ------------------------------------------------------------------ */

/* Parses DUR (integer + ms|s|m|h|d, or "0") into milliseconds. */
static inline int tu_parse_dur(const char *s, int64_t *ms)
{
    char *end;
    long long n;

    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*s < '0' || *s > '9')
        return -1;
    n = strtoll(s, &end, 10);
    if (strcmp(end, "ms") == 0)
        *ms = n;
    else if (strcmp(end, "s") == 0)
        *ms = n * 1000;
    else if (strcmp(end, "m") == 0)
        *ms = n * 60000;
    else if (strcmp(end, "h") == 0)
        *ms = n * 3600000;
    else if (strcmp(end, "d") == 0)
        *ms = n * 86400000;
    else
        return -1;
    return 0;
}

/* Floor division (b > 0). */
static inline int64_t tu_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* splitmix64: small, fixed, reproducible. */
typedef struct {
    uint64_t s;
} tu_rng_t;

static inline uint64_t tu_rng_next(tu_rng_t *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static inline int64_t tu_rng_range(tu_rng_t *r, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(tu_rng_next(r) % (uint64_t)(hi - lo + 1));
}

static inline int tu_rng_pct(tu_rng_t *r, int pct)
{
    return (int)(tu_rng_next(r) % 100) < pct;
}

/* Canonical text of a JSON value: compact, object members sorted, so two
 * texts are equal exactly when the values are. Caller frees. */
static inline char *tu_json_canon(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    assert_non_null(s);
    return s;
}

/* Key values for generated inputs. Each row lists spellings of one JSON
 * value (the tools must treat them as the same key); rows are distinct
 * values, some of them easy to confuse (1 vs "1"). */
#define TU_POOL_ROWS 10
static const char *const tu_key_pool[TU_POOL_ROWS][3] = {
    {"\"a\"", "\"\\u0061\"", NULL},
    {"\"b\"", NULL, NULL},
    {"1", NULL, NULL},
    {"\"1\"", NULL, NULL},
    {"{\"x\":1,\"y\":2}", "{\"y\":2,\"x\":1}", "{ \"x\" : 1 , \"y\" :2}"},
    {"[1,2]", "[ 1, 2 ]", NULL},
    {"\"\\u00e9\"", "\"\xc3\xa9\"", NULL},
    {"true", NULL, NULL},
    {"-3", NULL, NULL},
    {"\"a b\"", "\"a\\u0020b\"", NULL},
};

/* How tu_gen_input draws lines. */
typedef struct {
    size_t lines;     /* input lines, blank ones included */
    int64_t ts_start; /* the moving base time starts here */
    int64_t step_max; /* the base advances 0..step_max per line */
    int64_t jitter;   /* ts = base + [-jitter, jitter] */
    int far_pct;      /* % of records far behind the base */
    int64_t far_max;  /* ... by up to this much */
    int error_pct;    /* % of lines that are errors for every tool */
    int blank_pct;    /* % of blank lines */
    int groups;       /* "g" in 0..groups-1 (always written) */
    int bad_v_pct;    /* % of records whose "v" is missing or no int */
} tu_gen_t;

static inline void tu_gen_sep(tu_rng_t *r, tu_buf_t *b, const char *sep)
{
    int k = (int)tu_rng_range(r, 0, 5);

    if (k == 0)
        tu_buf_puts(b, " ");
    tu_buf_puts(b, sep);
    if (k <= 1)
        tu_buf_puts(b, " ");
}

/* One record {"k":..,"g":..,"ts":..,"v":..,"seq":..} in random member
 * order and spacing; seq makes every record line distinct. */
static inline void tu_gen_record(tu_rng_t *r, tu_buf_t *b, size_t seq,
                                 int64_t ts, const tu_gen_t *g)
{
    char member[5][128];
    int order[5] = {0, 1, 2, 3, 4};
    int row = (int)tu_rng_range(r, 0, TU_POOL_ROWS - 1);
    int nsp = 0;
    int i;
    int vmode = tu_rng_pct(r, g->bad_v_pct) ? (int)tu_rng_range(r, 1, 4) : 0;
    const char *kv;

    while (nsp < 3 && tu_key_pool[row][nsp] != NULL)
        nsp++;
    kv = tu_key_pool[row][tu_rng_range(r, 0, nsp - 1)];
    snprintf(member[0], sizeof(member[0]), "\"k\"%%s%s", kv);
    snprintf(member[1], sizeof(member[1]), "\"g\"%%s%d",
             g->groups > 0 ? (int)tu_rng_range(r, 0, g->groups - 1) : 0);
    snprintf(member[2], sizeof(member[2]), "\"ts\"%%s%" PRId64, ts);
    if (vmode == 0)
        snprintf(member[3], sizeof(member[3]), "\"v\"%%s%d",
                 (int)tu_rng_range(r, -1000, 1000));
    else if (vmode == 1)
        snprintf(member[3], sizeof(member[3]), "\"w\"%%s%d", 5);
    else if (vmode == 2)
        snprintf(member[3], sizeof(member[3]), "\"v\"%%s\"%d\"", 7);
    else if (vmode == 3)
        snprintf(member[3], sizeof(member[3]), "\"v\"%%s2.5");
    else
        snprintf(member[3], sizeof(member[3]), "\"v\"%%snull");
    snprintf(member[4], sizeof(member[4]), "\"seq\"%%s%zu", seq);
    for (i = 4; i > 0; i--) {
        int j = (int)tu_rng_range(r, 0, i);
        int t = order[i];

        order[i] = order[j];
        order[j] = t;
    }
    tu_buf_puts(b, "{");
    for (i = 0; i < 5; i++) {
        const char *m = member[order[i]];
        const char *pct = strstr(m, "%s");

        if (i > 0)
            tu_gen_sep(r, b, ",");
        tu_buf_add(b, m, (size_t)(pct - m));
        tu_gen_sep(r, b, ":");
        tu_buf_puts(b, pct + 2);
    }
    tu_buf_puts(b, "}");
}

/* Lines that are errors for both tools whatever the key (k or k,g) and
 * aggregate; %zu is a sequence number. */
static const char *const tu_error_lines[] = {
    "not json %zu",
    "{\"k\":\"a\",\"g\":1,\"ts\":%zu",
    "{\"k\":\"a\",\"g\":1,\"seq\":%zu}",
    "{\"g\":1,\"ts\":5,\"v\":1,\"seq\":%zu}",
    "{\"k\":\"a\",\"g\":1,\"ts\":\"12\",\"v\":1,\"seq\":%zu}",
    "{\"k\":\"b\",\"g\":0,\"ts\":1.5,\"v\":1,\"seq\":%zu}",
    "{\"k\":1,\"g\":2,\"ts\":null,\"v\":1,\"seq\":%zu}",
    "{\"k\":\"a\",\"g\":1,\"ts\":true,\"v\":1,\"seq\":%zu}",
    "[1,2,%zu]",
    "\"just a string %zu\"",
    "%zu",
    "{\"k\":\"a\",\"g\":1,\"ts\":5,\"v\":1,\"seq\":%zu}}",
    "{\"k\":\"a\",\"g\":1,\"tsx\":5,\"v\":1,\"seq\":%zu}",
};

/* Appends g->lines lines of generated input to b. */
static inline void tu_gen_input(tu_rng_t *r, const tu_gen_t *g, tu_buf_t *b)
{
    int64_t base = g->ts_start;
    size_t nerr = sizeof(tu_error_lines) / sizeof(tu_error_lines[0]);
    size_t i;

    for (i = 0; i < g->lines; i++) {
        int64_t ts;

        base += tu_rng_range(r, 0, g->step_max);
        if (tu_rng_pct(r, g->blank_pct)) {
            tu_buf_puts(b, "\n");
            continue;
        }
        if (tu_rng_pct(r, g->error_pct)) {
            tu_buf_printf(b, tu_error_lines[tu_rng_next(r) % nerr], i);
            tu_buf_puts(b, "\n");
            continue;
        }
        ts = base + tu_rng_range(r, -g->jitter, g->jitter);
        if (tu_rng_pct(r, g->far_pct))
            ts = base - tu_rng_range(r, 0, g->far_max);
        tu_gen_record(r, b, i, ts, g);
        tu_buf_puts(b, "\n");
    }
}

/* ------------------------------------------------------------------ */
/* Per-key order                                                       */
/* ------------------------------------------------------------------ */

/* The canonical key of a line, or NULL when it has none; caller frees. */
typedef char *(*tu_key_fn)(const tu_line_t *l, void *opaque);

typedef struct {
    char *key;
    size_t pos;
    const tu_line_t *line;
} tu_keyed_t;

static inline int tu_keyed_cmp(const void *a, const void *b)
{
    const tu_keyed_t *x = a;
    const tu_keyed_t *y = b;
    int c = strcmp(x->key, y->key);

    if (c != 0)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static inline tu_keyed_t *tu_keyed(const tu_lines_t *ls, tu_key_fn fn,
                                   void *opaque, size_t *n)
{
    tu_keyed_t *v = tu_xrealloc(NULL, (ls->n + 1) * sizeof(*v));
    size_t i;

    *n = 0;
    for (i = 0; i < ls->n; i++) {
        char *k = fn(&ls->v[i], opaque);

        if (k == NULL)
            continue;
        v[*n].key = k;
        v[*n].pos = i;
        v[*n].line = &ls->v[i];
        (*n)++;
    }
    qsort(v, *n, sizeof(*v), tu_keyed_cmp);
    return v;
}

static inline void tu_keyed_free(tu_keyed_t *v, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(v[i].key);
    free(v);
}

/* For every key, the lines of got with that key must be the lines of
 * want with that key, in the same order. */
static inline void tu_check_key_order(const char *what, const tu_lines_t *got,
                                      const tu_lines_t *want, tu_key_fn fn,
                                      void *opaque)
{
    tu_keyed_t *x;
    tu_keyed_t *y;
    size_t nx;
    size_t ny;
    size_t i;
    char a[256];
    char b[256];

    x = tu_keyed(got, fn, opaque, &nx);
    y = tu_keyed(want, fn, opaque, &ny);
    for (i = 0; i < nx && i < ny; i++) {
        if (strcmp(x[i].key, y[i].key) != 0 ||
            !tu_line_eq(x[i].line, y[i].line)) {
            tu_show(x[i].line->p, x[i].line->len, a, sizeof(a));
            tu_show(y[i].line->p, y[i].line->len, b, sizeof(b));
            tu_keyed_free(x, nx);
            tu_keyed_free(y, ny);
            TU_FAIL("%s: order within a key differs: got '%s' where '%s' "
                    "was expected",
                    what, a, b);
        }
    }
    tu_keyed_free(x, nx);
    tu_keyed_free(y, ny);
    TU_CHECK(nx == ny, "%s: %zu keyed lines, want %zu", what, nx, ny);
}

#endif /* WEIR_TESTS_TOOL_UTIL_H */
