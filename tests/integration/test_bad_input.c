/*
 * test_bad_input.c - weir-dedup and weir-window given bad input and bad
 * arguments.
 *
 * How it works: each case writes an input file into a scratch directory
 * and runs a tool with posix_spawn. Inputs with broken lines (invalid
 * JSON, wrong types, non-objects, raw NUL bytes, invalid UTF-8, numbers
 * beyond int64, 10 MiB lines, deep nesting, extreme timestamps) must run
 * to a normal exit with every line in exactly one output file, byte for
 * byte, good lines where the specification puts them. Bad invocations
 * (missing or unknown options, malformed durations, parallelism or
 * cadence 0, an input that does not exist or cannot be read) must end
 * with a non-zero exit status and exactly one line on stderr. In every
 * case an exit by a signal is a failure.
 *
 * Invariants: argument lists name the input and output directory with
 * the placeholders @IN and @OUT, replaced per run; expected classes are
 * given per input line (U unique, D duplicate, L late, E error) with the
 * line's exact bytes and length, so lines may hold NUL bytes.
 */
#include "tool_util.h"

enum { U = TU_UNIQUE, D = TU_DUPLICATES, LT = TU_LATE, E = TU_ERRORS };

typedef struct {
    const char *p;
    size_t len;
    int cls;
} bline_t;

/* A line with its exact length (NUL bytes included) and class. */
#define BL(s, c)                                                               \
    {                                                                          \
        s, sizeof(s) - 1, c                                                    \
    }

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Runs bin with args, @IN and @OUT replaced by in and out. */
static void run_args(const char *bin, const char *dir, const char *in,
                     const char *out, const char *const *args, tu_run_t *r)
{
    tu_argv_t a = {0};
    int i;

    tu_argv_add(&a, bin);
    for (i = 0; args[i] != NULL; i++) {
        if (strcmp(args[i], "@IN") == 0)
            tu_argv_add(&a, in);
        else if (strcmp(args[i], "@OUT") == 0)
            tu_argv_add(&a, out);
        else
            tu_argv_add(&a, args[i]);
    }
    tu_run(a.v, dir, r);
    tu_argv_free(&a);
}

static void write_lines(const char *path, const tu_lines_t *in)
{
    tu_buf_t b = {0};
    size_t i;

    for (i = 0; i < in->n; i++) {
        tu_buf_add(&b, in->v[i].p, in->v[i].len);
        tu_buf_add(&b, "\n", 1);
    }
    tu_write_file(path, b.data == NULL ? "" : b.data, b.len);
    tu_buf_free(&b);
}

/* Runs weir-dedup on in (classes cls) at parallelism 1 and 2 and checks
 * the four files (exact at 1, as multisets at 2) and the summary. */
static void expect_dedup(const char *bin, const tu_lines_t *in, const int *cls,
                         const char *const *args)
{
    static const int pars[2] = {1, 2};
    char dir[4096];
    char input[4096];
    char outdir[4096];
    char name[32];
    char what[64];
    const char *full[32];
    long long count[TU_NFILES] = {0};
    size_t i;
    int n = 0;
    int p;
    int f;

    for (i = 0; i < in->n; i++)
        count[cls[i]]++;
    tu_mkdtemp(dir, sizeof(dir), "bad-input");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    write_lines(input, in);
    for (p = 0; p < 2; p++) {
        tu_run_t r;

        snprintf(name, sizeof(name), "out-p%d", pars[p]);
        tu_subdir(outdir, sizeof(outdir), dir, name);
        snprintf(name, sizeof(name), "%d", pars[p]);
        n = 0;
        full[n++] = "--input";
        full[n++] = "@IN";
        full[n++] = "--output-dir";
        full[n++] = "@OUT";
        full[n++] = "--parallelism";
        full[n++] = name;
        for (i = 0; args[i] != NULL; i++)
            full[n++] = args[i];
        full[n] = NULL;
        run_args(bin, dir, input, outdir, full, &r);
        tu_check_ok(&r);
        for (f = 0; f < TU_NFILES; f++) {
            tu_lines_t got;
            tu_lines_t want = {0};

            for (i = 0; i < in->n; i++)
                if (cls[i] == f)
                    tu_lines_push(&want, in->v[i].p, in->v[i].len);
            tu_read_output(&got, outdir, tu_dedup_files[f]);
            snprintf(what, sizeof(what), "P=%d %s", pars[p], tu_dedup_files[f]);
            if (pars[p] == 1)
                tu_check_lines_exact(what, &got, &want);
            else
                tu_check_lines_multiset(what, &got, &want);
            tu_lines_free(&got);
            tu_lines_free(&want);
        }
        tu_check_summary(&r, (long long)in->n, count[U], count[D], count[LT],
                         count[E]);
        tu_run_free(&r);
    }
    tu_rmtree(dir);
}

static void expect_dedup_table(const bline_t *t, size_t n,
                               const char *const *args)
{
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    tu_lines_t in = {0};
    int *cls;
    size_t i;

    if (bin == NULL)
        skip();
    cls = tu_xrealloc(NULL, n * sizeof(int));
    for (i = 0; i < n; i++) {
        tu_lines_push(&in, t[i].p, t[i].len);
        cls[i] = t[i].cls;
    }
    expect_dedup(bin, &in, cls, args);
    free(cls);
    tu_lines_free(&in);
}

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ */
/* Broken lines                                                        */
/* ------------------------------------------------------------------ */

static const bline_t wrong_types[] = {
    BL("{\"id\":\"n\",\"ts\":-7}", U),
    BL("{\"id\":\"a\",\"ts\":1}", U),
    BL("{\"id\":\"a\",\"ts\":", E),
    BL("{\"id\":\"b\",\"ts\":\"5\"}", E),
    BL("{\"id\":\"b\",\"ts\":5.0}", E),
    BL("{\"id\":\"b\",\"ts\":1.5}", E),
    BL("{\"id\":\"b\",\"ts\":true}", E),
    BL("{\"id\":\"b\",\"ts\":null}", E),
    BL("{\"id\":\"b\",\"ts\":[1]}", E),
    BL("{\"id\":\"b\",\"ts\":{}}", E),
    BL("{\"id\":\"b\"}", E),
    BL("{\"ts\":3}", E),
    BL("[1,2,3]", E),
    BL("42", E),
    BL("\"str\"", E),
    BL("null", E),
    BL("true", E),
    BL("{\"id\":\"b\",\"ts\":2} trailing", E),
    BL("{\"id\":\"b\",\"ts\":2}{\"id\":\"c\",\"ts\":3}", E),
    BL("{'id':'b','ts':2}", E),
    BL("{\"id\":\"b\",\"ts\":2,}", E),
    BL("{\"id\":\"c\",\"ts\":1e3}", E),
    BL("{\"id\":\"c\",\"ts\":-1E2}", E),
    BL("{\"id\":\"b\",\"ts\":3}", U),
    BL("{\"id\":\"c\",\"ts\":0x10}", E),
    BL("{\"id\":\"c\",\"ts\":+5}", E),
    BL("{\"id\":\"c\",\"ts\":05}", E),
    BL("{}", E),
    BL("{\"id\":\"c\",\"ts\":NaN}", E),
    BL("{\"id\":\"c\" \"ts\":5}", E),
    BL("{\"id\":\"b\",\"ts\":4}", D),
    BL("{\"id\":\"c\",\"ts\":5", E),
    BL("}", E),
};

static void dedup_wrong_types(void **state)
{
    static const char *const args[] = {"--key", "id", NULL};

    (void)state;
    expect_dedup_table(wrong_types, NELEM(wrong_types), args);
}

/* The same lines through weir-window: errors.jsonl exact, the good lines
 * counted. */
static void window_wrong_types(void **state)
{
    static const char *const args[] = {"--input",
                                       "@IN",
                                       "--output-dir",
                                       "@OUT",
                                       "--key",
                                       "id",
                                       "--window",
                                       "tumbling:10ms",
                                       "--max-out-of-orderness",
                                       "1h",
                                       NULL};
    const char *bin = tu_tool("WEIR_WINDOW_BIN");
    char dir[4096];
    char input[4096];
    char outdir[4096];
    tu_lines_t in = {0};
    tu_lines_t want = {0};
    tu_lines_t got;
    tu_run_t r;
    size_t i;

    (void)state;
    if (bin == NULL)
        skip();
    for (i = 0; i < NELEM(wrong_types); i++) {
        tu_lines_push(&in, wrong_types[i].p, wrong_types[i].len);
        if (wrong_types[i].cls == E)
            tu_lines_push(&want, wrong_types[i].p, wrong_types[i].len);
    }
    tu_mkdtemp(dir, sizeof(dir), "bad-window");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_subdir(outdir, sizeof(outdir), dir, "out");
    write_lines(input, &in);
    run_args(bin, dir, input, outdir, args, &r);
    tu_check_ok(&r);
    tu_run_free(&r);
    tu_read_output(&got, outdir, "errors.jsonl");
    tu_check_lines_exact("errors.jsonl", &got, &want);
    tu_lines_free(&got);
    tu_read_output(&got, outdir, "late.jsonl");
    TU_CHECK(got.n == 0, "late.jsonl: %zu lines, want 0", got.n);
    tu_lines_free(&got);
    tu_read_output(&got, outdir, "results.jsonl");
    /* n [-10,0), a [0,10), b [0,10) */
    TU_CHECK(got.n == 3, "results.jsonl: %zu lines, want 3", got.n);
    tu_lines_free(&got);
    tu_rmtree(dir);
    tu_lines_free(&in);
    tu_lines_free(&want);
}

/* Raw NUL bytes make a line invalid JSON, wherever they are. */
static void nul_bytes(void **state)
{
    static const bline_t t[] = {
        BL("{\"id\":\"a\",\"ts\":1}", U),
        BL("{\"id\":\"a\0b\",\"ts\":2}", E),
        BL("{\"id\":\"c\",\"ts\":3}\0", E),
        BL("{\"id\":\"d\",\"ts\":4}\0{\"id\":\"e\",\"ts\":5}", E),
        BL("\0", E),
        BL("\0{\"id\":\"f\",\"ts\":6}", E),
        BL("{\"id\":\"g\",\0\"ts\":7}", E),
        BL("{\"id\":\"a\",\"ts\":8}", D),
    };
    static const char *const args[] = {"--key", "id", NULL};

    (void)state;
    expect_dedup_table(t, NELEM(t), args);
}

/* "\u0000" is valid JSON: such keys are keys like any other, and
 * differ after the NUL. */
static void escaped_nul_in_keys(void **state)
{
    static const bline_t t[] = {
        BL("{\"id\":\"x\\u0000y\",\"ts\":6}", U),
        BL("{\"id\":\"x\\u0000z\",\"ts\":7}", U),
        BL("{\"id\":\"x\\u0000y\",\"ts\":8}", D),
        BL("{\"id\":\"x\",\"ts\":9}", U),
        BL("{\"id\":\"x\",\"ts\":10,\"s\":\"\\u0000\"}", D),
    };
    static const char *const args[] = {"--key", "id", NULL};

    (void)state;
    expect_dedup_table(t, NELEM(t), args);
}

/* JSON text is UTF-8: invalid sequences make a line an error. */
static void invalid_utf8(void **state)
{
    static const bline_t t[] = {
        BL("{\"id\":\"a\",\"ts\":1}", U),
        BL("{\"id\":\"\xff\",\"ts\":2}", E),
        BL("{\"id\":\"b\",\"ts\":3,\"x\":\"\xc3\"}", E),
        BL("{\"id\":\"b\",\"ts\":4,\"x\":\"\xc0\xaf\"}", E),
        BL("{\"id\":\"b\",\"ts\":5,\"x\":\"\xed\xa0\x80\"}", E),
        BL("\xfe\xff garbage", E),
        BL("{\"id\":\"b\",\"ts\":6}", U),
        BL("{\"id\":\"\xc3\xa9\",\"ts\":7}", U),
        BL("{\"id\":\"\\u00e9\",\"ts\":8}", D),
    };
    static const char *const args[] = {"--key", "id", NULL};

    (void)state;
    expect_dedup_table(t, NELEM(t), args);
}

/* The JSON grammar puts no limit on numbers: a line with a number beyond
 * int64 or double, in the key or in another field, is still a JSON
 * object with its key and an integer time, and keys compare by value. */
static void big_numbers(void **state)
{
    static const bline_t t[] = {
        BL("{\"id\":\"a\",\"ts\":1,\"n\":123456789012345678901234567890}", U),
        BL("{\"id\":\"b\",\"ts\":2,\"f\":1e400}", U),
        BL("{\"id\":123456789012345678901234567890,\"ts\":3}", U),
        BL("{\"id\":123456789012345678901234567891,\"ts\":4}", U),
        BL("{\"id\":123456789012345678901234567890,\"ts\":5}", D),
        BL("{\"id\":\"a\",\"ts\":6}", D),
    };
    static const char *const args[] = {"--key", "id", NULL};

    (void)state;
    expect_dedup_table(t, NELEM(t), args);
}

/* 10 MiB lines: a valid one is unique (copied whole), an invalid one is
 * an error, and the lines around them are not lost. */
static void huge_lines(void **state)
{
    const size_t pad = 10u << 20;
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    static const char *const args[] = {"--key", "id", NULL};
    tu_lines_t in = {0};
    tu_buf_t b = {0};
    int cls[6] = {U, U, D, E, U, U};
    char *fill;

    (void)state;
    if (bin == NULL)
        skip();
    fill = tu_xrealloc(NULL, pad);
    memset(fill, 'x', pad);
    tu_lines_push_str(&in, "{\"id\":\"a\",\"ts\":1}");
    tu_buf_puts(&b, "{\"id\":\"big\",\"ts\":2,\"pad\":\"");
    tu_buf_add(&b, fill, pad);
    tu_buf_puts(&b, "\"}");
    tu_lines_push(&in, b.data, b.len);
    tu_lines_push_str(&in, "{\"id\":\"big\",\"ts\":3}");
    b.len = 0;
    tu_buf_puts(&b, "{\"id\":\"big2\",\"ts\":4,\"pad\":\"");
    tu_buf_add(&b, fill, pad);
    tu_lines_push(&in, b.data, b.len);
    tu_lines_push_str(&in, "{\"id\":\"b\",\"ts\":5}");
    b.len = 0;
    tu_buf_puts(&b, "{\"pad\":\"");
    tu_buf_add(&b, fill, pad);
    tu_buf_puts(&b, "\",\"id\":\"big3\",\"ts\":6}");
    tu_lines_push(&in, b.data, b.len);
    expect_dedup(bin, &in, cls, args);
    free(fill);
    tu_buf_free(&b);
    tu_lines_free(&in);
}

/* Deep nesting: unbalanced is invalid (an error); balanced is valid JSON,
 * which a parser may refuse past its depth limit: then it is an error,
 * otherwise unique. Either way no crash and no lost line. */
static void deep_nesting(void **state)
{
    const size_t depth = 1000000;
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    char dir[4096];
    char input[4096];
    char outdir[4096];
    tu_lines_t in = {0};
    tu_lines_t files[TU_NFILES];
    tu_buf_t b = {0};
    tu_run_t r;
    size_t i;
    size_t j;
    int f;
    static const char *const args[] = {
        "--input", "@IN", "--output-dir", "@OUT", "--key", "id", NULL};

    (void)state;
    if (bin == NULL)
        skip();
    tu_lines_push_str(&in, "{\"id\":\"a\",\"ts\":1}");
    tu_buf_puts(&b, "{\"id\":\"deep\",\"ts\":2,\"x\":");
    for (i = 0; i < depth; i++)
        tu_buf_puts(&b, "[");
    tu_lines_push(&in, b.data, b.len); /* unbalanced */
    for (i = 0; i < depth; i++)
        tu_buf_puts(&b, "]");
    tu_buf_puts(&b, "}");
    tu_lines_push(&in, b.data, b.len); /* balanced */
    b.len = 0;
    for (i = 0; i < depth; i++)
        tu_buf_puts(&b, "{\"a\":");
    tu_lines_push(&in, b.data, b.len); /* unbalanced */
    tu_lines_push_str(&in, "{\"id\":\"a\",\"ts\":3}");
    tu_mkdtemp(dir, sizeof(dir), "bad-deep");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_subdir(outdir, sizeof(outdir), dir, "out");
    write_lines(input, &in);
    run_args(bin, dir, input, outdir, args, &r);
    tu_check_ok(&r);
    tu_run_free(&r);
    for (f = 0; f < TU_NFILES; f++)
        tu_read_output(&files[f], outdir, tu_dedup_files[f]);
    TU_CHECK(files[U].n >= 1 && tu_line_eq(&files[U].v[0], &in.v[0]),
             "first good line not in unique.jsonl");
    TU_CHECK(files[D].n == 1 && tu_line_eq(&files[D].v[0], &in.v[4]),
             "last good line not in duplicates.jsonl");
    TU_CHECK(files[E].n >= 2 && files[LT].n == 0,
             "unbalanced lines: %zu errors, %zu late", files[E].n, files[LT].n);
    for (i = 1; i < 4; i++) {
        size_t seen = 0;

        for (f = 0; f < TU_NFILES; f++)
            for (j = 0; j < files[f].n; j++)
                seen += tu_line_eq(&files[f].v[j], &in.v[i]);
        TU_CHECK(seen == 1, "nested line %zu found %zu times", i + 1, seen);
    }
    TU_CHECK(files[U].n + files[D].n + files[E].n == 5, "%zu lines out, want 5",
             files[U].n + files[D].n + files[E].n);
    for (f = 0; f < TU_NFILES; f++)
        tu_lines_free(&files[f]);
    tu_rmtree(dir);
    tu_buf_free(&b);
    tu_lines_free(&in);
}

/* Timestamps at the ends of the int64 range and past them: no crash,
 * every line in exactly one file, for every scope. */
static void extreme_timestamps(void **state)
{
    static const char *const lines[] = {
        "{\"id\":\"min\",\"ts\":-9223372036854775808}",
        "{\"id\":\"a\",\"ts\":0}",
        "{\"id\":\"min2\",\"ts\":-9223372036854775807}",
        "{\"id\":\"max\",\"ts\":9223372036854775807}",
        "{\"id\":\"max2\",\"ts\":9223372036854775806}",
        "{\"id\":\"b\",\"ts\":1}",
        "{\"id\":\"big\",\"ts\":99999999999999999999}",
        "{\"id\":\"nbig\",\"ts\":-99999999999999999999}",
        "{\"id\":\"max\",\"ts\":-9223372036854775808}",
    };
    static const char *const variants[][12] = {
        {"--key", "id", NULL},
        {"--key", "id", "--window", "rolling:1d", "--allowed-lateness", "1d",
         "--max-out-of-orderness", "1d", NULL},
        {"--key", "id", "--window", "tumbling:1h", "--allowed-lateness", "1h",
         "--max-out-of-orderness", "5ms", NULL},
        {"--key", "id", "--window", "session:1h", "--allowed-lateness", "1h",
         "--max-out-of-orderness", "5ms", NULL},
    };
    static const char *const wvariants[][12] = {
        {"--key", "id", "--window", "tumbling:1h", "--allowed-lateness", "1h",
         "--max-out-of-orderness", "5ms", NULL},
        {"--key", "id", "--window", "sliding:1h/10m", "--allowed-lateness",
         "1h", "--max-out-of-orderness", "5ms", NULL},
        {"--key", "id", "--window", "session:1h", "--allowed-lateness", "1h",
         "--max-out-of-orderness", "5ms", NULL},
    };
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    const char *wbin = tu_tool("WEIR_WINDOW_BIN");
    char dir[4096];
    char input[4096];
    char outdir[4096];
    char name[32];
    const char *full[24];
    tu_lines_t in = {0};
    size_t i;
    size_t v;

    (void)state;
    if (bin == NULL && wbin == NULL)
        skip();
    for (i = 0; i < NELEM(lines); i++)
        tu_lines_push_str(&in, lines[i]);
    tu_mkdtemp(dir, sizeof(dir), "bad-extreme");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    write_lines(input, &in);
    for (v = 0; bin != NULL && v < NELEM(variants); v++) {
        tu_lines_t files[TU_NFILES];
        tu_run_t r;
        size_t total = 0;
        size_t j;
        int n = 0;
        int f;

        tu_set_ctx("weir-dedup %s %s", variants[v][2] ? variants[v][2] : "",
                   variants[v][2] ? variants[v][3] : "");
        snprintf(name, sizeof(name), "dedup-%zu", v);
        tu_subdir(outdir, sizeof(outdir), dir, name);
        full[n++] = "--input";
        full[n++] = "@IN";
        full[n++] = "--output-dir";
        full[n++] = "@OUT";
        for (j = 0; variants[v][j] != NULL; j++)
            full[n++] = variants[v][j];
        full[n] = NULL;
        run_args(bin, dir, input, outdir, full, &r);
        tu_check_ok(&r);
        tu_run_free(&r);
        for (f = 0; f < TU_NFILES; f++) {
            tu_read_output(&files[f], outdir, tu_dedup_files[f]);
            total += files[f].n;
        }
        TU_CHECK(total == in.n, "%zu lines out, want %zu", total, in.n);
        for (i = 0; i < in.n; i++) {
            size_t seen = 0;

            for (f = 0; f < TU_NFILES; f++)
                for (j = 0; j < files[f].n; j++)
                    seen += tu_line_eq(&files[f].v[j], &in.v[i]);
            TU_CHECK(seen == 1, "line %zu found %zu times", i + 1, seen);
        }
        for (f = 0; f < TU_NFILES; f++)
            tu_lines_free(&files[f]);
    }
    for (v = 0; wbin != NULL && v < NELEM(wvariants); v++) {
        tu_run_t r;
        size_t j;
        int n = 0;

        tu_set_ctx("weir-window %s", wvariants[v][3]);
        snprintf(name, sizeof(name), "window-%zu", v);
        tu_subdir(outdir, sizeof(outdir), dir, name);
        full[n++] = "--input";
        full[n++] = "@IN";
        full[n++] = "--output-dir";
        full[n++] = "@OUT";
        for (j = 0; wvariants[v][j] != NULL; j++)
            full[n++] = wvariants[v][j];
        full[n] = NULL;
        run_args(wbin, dir, input, outdir, full, &r);
        tu_check_ok(&r);
        tu_run_free(&r);
    }
    tu_rmtree(dir);
    tu_lines_free(&in);
}

/* ------------------------------------------------------------------ */
/* Empty input                                                         */
/* ------------------------------------------------------------------ */

static void empty_input_one(const char *bin, const char *content, int is_dedup)
{
    static const char *const wfiles[3] = {"results.jsonl", "late.jsonl",
                                          "errors.jsonl"};
    static const char *const dargs[] = {
        "--input", "@IN", "--output-dir", "@OUT", "--key", "id", NULL};
    static const char *const wargs[] = {
        "--input", "@IN",      "--output-dir", "@OUT", "--key",
        "id",      "--window", "tumbling:1s",  NULL};
    char dir[4096];
    char input[4096];
    char outdir[4096];
    tu_run_t r;
    int f;

    tu_mkdtemp(dir, sizeof(dir), "bad-empty");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_subdir(outdir, sizeof(outdir), dir, "out");
    tu_write_file(input, content, strlen(content));
    run_args(bin, dir, input, outdir, is_dedup ? dargs : wargs, &r);
    tu_check_ok(&r);
    for (f = 0; f < (is_dedup ? TU_NFILES : 3); f++) {
        const char *name = is_dedup ? tu_dedup_files[f] : wfiles[f];
        tu_lines_t got;

        tu_read_output(&got, outdir, name);
        TU_CHECK(got.n == 0, "%s: %zu lines, want an empty file", name, got.n);
        tu_lines_free(&got);
    }
    if (is_dedup)
        tu_check_summary(&r, 0, 0, 0, 0, 0);
    tu_run_free(&r);
    tu_rmtree(dir);
}

static void empty_input(void **state)
{
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    const char *wbin = tu_tool("WEIR_WINDOW_BIN");

    (void)state;
    if (bin == NULL && wbin == NULL)
        skip();
    if (bin != NULL) {
        tu_set_ctx("weir-dedup, empty file");
        empty_input_one(bin, "", 1);
        tu_set_ctx("weir-dedup, only empty lines");
        empty_input_one(bin, "\n\n\n", 1);
    }
    if (wbin != NULL) {
        tu_set_ctx("weir-window, empty file");
        empty_input_one(wbin, "", 0);
        tu_set_ctx("weir-window, only empty lines");
        empty_input_one(wbin, "\n\n", 0);
    }
}

/* ------------------------------------------------------------------ */
/* Inputs that cannot be read, bad arguments                           */
/* ------------------------------------------------------------------ */

/* Runs bin with args (placeholders @IN: a valid input, @OUT: an empty
 * directory, @NOFILE: a path that does not exist, @DIR: a directory) and
 * expects a rejection. */
static void expect_rejected(const char *bin, const char *const *args,
                            const char *what)
{
    char dir[4096];
    char input[4096];
    char outdir[4096];
    char nofile[4096];
    tu_argv_t a = {0};
    tu_run_t r;
    int i;

    tu_mkdtemp(dir, sizeof(dir), "bad-args");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_path(nofile, sizeof(nofile), dir, "no/such/input.jsonl");
    tu_subdir(outdir, sizeof(outdir), dir, "out");
    tu_write_file(input, "{\"id\":\"a\",\"ts\":1}\n", 18);
    tu_argv_add(&a, bin);
    for (i = 0; args[i] != NULL; i++) {
        if (strcmp(args[i], "@IN") == 0)
            tu_argv_add(&a, input);
        else if (strcmp(args[i], "@OUT") == 0)
            tu_argv_add(&a, outdir);
        else if (strcmp(args[i], "@NOFILE") == 0)
            tu_argv_add(&a, nofile);
        else if (strcmp(args[i], "@DIR") == 0)
            tu_argv_add(&a, dir);
        else
            tu_argv_add(&a, args[i]);
    }
    tu_run(a.v, dir, &r);
    tu_argv_free(&a);
    tu_check_rejected(&r, what);
    tu_run_free(&r);
    tu_rmtree(dir);
}

/* Runs bin with args and expects success (the baseline of a table). */
static void expect_accepted(const char *bin, const char *const *args)
{
    char dir[4096];
    char input[4096];
    char outdir[4096];
    tu_run_t r;

    tu_mkdtemp(dir, sizeof(dir), "good-args");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_subdir(outdir, sizeof(outdir), dir, "out");
    tu_write_file(input, "{\"id\":\"a\",\"ts\":1}\n", 18);
    run_args(bin, dir, input, outdir, args, &r);
    tu_check_ok(&r);
    tu_run_free(&r);
    tu_rmtree(dir);
}

#define IO "--input", "@IN", "--output-dir", "@OUT"

static void dedup_unreadable_input(void **state)
{
    static const char *const nofile[] = {
        "--input", "@NOFILE", "--output-dir", "@OUT", "--key", "id", NULL};
    static const char *const isdir[] = {
        "--input", "@DIR", "--output-dir", "@OUT", "--key", "id", NULL};
    const char *bin = tu_tool("WEIR_DEDUP_BIN");

    (void)state;
    if (bin == NULL)
        skip();
    expect_rejected(bin, nofile, "nonexistent input");
    expect_rejected(bin, isdir, "input is a directory");
}

static void window_unreadable_input(void **state)
{
    static const char *const nofile[] = {
        "--input", "@NOFILE",  "--output-dir", "@OUT", "--key",
        "id",      "--window", "tumbling:1s",  NULL};
    static const char *const isdir[] = {
        "--input", "@DIR",     "--output-dir", "@OUT", "--key",
        "id",      "--window", "tumbling:1s",  NULL};
    const char *bin = tu_tool("WEIR_WINDOW_BIN");

    (void)state;
    if (bin == NULL)
        skip();
    expect_rejected(bin, nofile, "nonexistent input");
    expect_rejected(bin, isdir, "input is a directory");
}

/* A file without read permission (meaningless for root, who reads all). */
static void unreadable_permissions(void **state)
{
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    const char *wbin = tu_tool("WEIR_WINDOW_BIN");
    char dir[4096];
    char input[4096];
    char outdir[4096];
    tu_argv_t a = {0};
    tu_run_t r;

    (void)state;
    if ((bin == NULL && wbin == NULL) || geteuid() == 0)
        skip();
    tu_mkdtemp(dir, sizeof(dir), "bad-perm");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_subdir(outdir, sizeof(outdir), dir, "out");
    tu_write_file(input, "{\"id\":\"a\",\"ts\":1}\n", 18);
    assert_int_equal(0, chmod(input, 0));
    if (bin != NULL) {
        tu_argv_add(&a, bin);
        tu_argv_add(&a, "--input");
        tu_argv_add(&a, input);
        tu_argv_add(&a, "--output-dir");
        tu_argv_add(&a, outdir);
        tu_argv_add(&a, "--key");
        tu_argv_add(&a, "id");
        tu_run(a.v, dir, &r);
        tu_argv_free(&a);
        tu_check_rejected(&r, "weir-dedup, input without permission");
        tu_run_free(&r);
    }
    if (wbin != NULL) {
        tu_argv_add(&a, wbin);
        tu_argv_add(&a, "--input");
        tu_argv_add(&a, input);
        tu_argv_add(&a, "--output-dir");
        tu_argv_add(&a, outdir);
        tu_argv_add(&a, "--key");
        tu_argv_add(&a, "id");
        tu_argv_add(&a, "--window");
        tu_argv_add(&a, "tumbling:1s");
        tu_run(a.v, dir, &r);
        tu_argv_free(&a);
        tu_check_rejected(&r, "weir-window, input without permission");
        tu_run_free(&r);
    }
    tu_rmtree(dir);
}

typedef struct {
    const char *what;
    const char *args[20];
} bad_args_t;

static void dedup_bad_arguments(void **state)
{
    static const char *const good[] = {IO, "--key", "id", NULL};
    static const char *const good_all[] = {
        IO,           "--key",
        "id,x",       "--time-field",
        "ts",         "--window",
        "session:5m", "--max-out-of-orderness",
        "0",          "--allowed-lateness",
        "2d",         "--watermark-every",
        "3",          "--parallelism",
        "2",          NULL};
    static const bad_args_t bad[] = {
        {"no arguments", {NULL}},
        {"missing --input", {"--output-dir", "@OUT", "--key", "id"}},
        {"missing --output-dir", {"--input", "@IN", "--key", "id"}},
        {"missing --key", {IO}},
        {"unknown option", {IO, "--key", "id", "--bogus", "1"}},
        {"unknown flag", {IO, "--key", "id", "--frobnicate"}},
        {"stray argument", {IO, "--key", "id", "stray"}},
        {"option without value", {IO, "--key"}},
        {"DUR without unit", {IO, "--key", "id", "--window", "rolling:10"}},
        {"DUR with bad unit", {IO, "--key", "id", "--window", "rolling:5x"}},
        {"negative DUR", {IO, "--key", "id", "--window", "rolling:-1s"}},
        {"fractional DUR", {IO, "--key", "id", "--window", "rolling:1.5s"}},
        {"DUR unit only", {IO, "--key", "id", "--window", "rolling:s"}},
        {"window without DUR", {IO, "--key", "id", "--window", "rolling"}},
        {"window empty DUR", {IO, "--key", "id", "--window", "rolling:"}},
        {"unknown scope", {IO, "--key", "id", "--window", "hopping:1s"}},
        {"sliding is no dedup scope",
         {IO, "--key", "id", "--window", "sliding:1s/1s"}},
        {"out-of-orderness without unit",
         {IO, "--key", "id", "--max-out-of-orderness", "10"}},
        {"out-of-orderness bad unit",
         {IO, "--key", "id", "--max-out-of-orderness", "5x"}},
        {"out-of-orderness negative",
         {IO, "--key", "id", "--max-out-of-orderness", "-1s"}},
        {"lateness without unit",
         {IO, "--key", "id", "--allowed-lateness", "10"}},
        {"lateness negative", {IO, "--key", "id", "--allowed-lateness", "-1s"}},
        {"lateness empty", {IO, "--key", "id", "--allowed-lateness", ""}},
        {"parallelism 0", {IO, "--key", "id", "--parallelism", "0"}},
        {"parallelism negative", {IO, "--key", "id", "--parallelism", "-1"}},
        {"parallelism not a number",
         {IO, "--key", "id", "--parallelism", "abc"}},
        {"parallelism trailing junk",
         {IO, "--key", "id", "--parallelism", "2x"}},
        {"watermark-every 0", {IO, "--key", "id", "--watermark-every", "0"}},
        {"watermark-every negative",
         {IO, "--key", "id", "--watermark-every", "-2"}},
        {"watermark-every not a number",
         {IO, "--key", "id", "--watermark-every", "x"}},
    };
    const char *bin = tu_tool("WEIR_DEDUP_BIN");
    size_t i;

    (void)state;
    if (bin == NULL)
        skip();
    tu_set_ctx("baseline");
    expect_accepted(bin, good);
    tu_set_ctx("baseline with every option");
    expect_accepted(bin, good_all);
    for (i = 0; i < NELEM(bad); i++) {
        tu_set_ctx("weir-dedup: %s", bad[i].what);
        expect_rejected(bin, bad[i].args, bad[i].what);
    }
}

static void window_bad_arguments(void **state)
{
    static const char *const good[] = {IO,         "--key",       "id",
                                       "--window", "tumbling:1s", NULL};
    static const char *const good_all[] = {IO,
                                           "--key",
                                           "id,x",
                                           "--time-field",
                                           "ts",
                                           "--window",
                                           "sliding:1h/10m",
                                           "--agg",
                                           "max:v",
                                           "--max-out-of-orderness",
                                           "0",
                                           "--allowed-lateness",
                                           "3s",
                                           "--watermark-every",
                                           "2",
                                           "--parallelism",
                                           "3",
                                           NULL};
    static const bad_args_t bad[] = {
        {"no arguments", {NULL}},
        {"missing --window", {IO, "--key", "id"}},
        {"missing --input",
         {"--output-dir", "@OUT", "--key", "id", "--window", "tumbling:1s"}},
        {"missing --output-dir",
         {"--input", "@IN", "--key", "id", "--window", "tumbling:1s"}},
        {"missing --key", {IO, "--window", "tumbling:1s"}},
        {"unknown option",
         {IO, "--key", "id", "--window", "tumbling:1s", "--bogus", "1"}},
        {"DUR without unit", {IO, "--key", "id", "--window", "tumbling:10"}},
        {"DUR with bad unit", {IO, "--key", "id", "--window", "tumbling:5x"}},
        {"negative DUR", {IO, "--key", "id", "--window", "session:-1s"}},
        {"sliding without slide",
         {IO, "--key", "id", "--window", "sliding:10ms"}},
        {"sliding bad slide",
         {IO, "--key", "id", "--window", "sliding:10ms/5x"}},
        {"rolling is no window", {IO, "--key", "id", "--window", "rolling:1s"}},
        {"unknown window", {IO, "--key", "id", "--window", "hop:1s"}},
        {"unknown aggregate",
         {IO, "--key", "id", "--window", "tumbling:1s", "--agg", "avg:v"}},
        {"aggregate without field",
         {IO, "--key", "id", "--window", "tumbling:1s", "--agg", "sum"}},
        {"bad aggregate",
         {IO, "--key", "id", "--window", "tumbling:1s", "--agg", "bogus"}},
        {"out-of-orderness without unit",
         {IO, "--key", "id", "--window", "tumbling:1s",
          "--max-out-of-orderness", "10"}},
        {"lateness negative",
         {IO, "--key", "id", "--window", "tumbling:1s", "--allowed-lateness",
          "-1s"}},
        {"parallelism 0",
         {IO, "--key", "id", "--window", "tumbling:1s", "--parallelism", "0"}},
        {"watermark-every 0",
         {IO, "--key", "id", "--window", "tumbling:1s", "--watermark-every",
          "0"}},
    };
    const char *bin = tu_tool("WEIR_WINDOW_BIN");
    size_t i;

    (void)state;
    if (bin == NULL)
        skip();
    tu_set_ctx("baseline");
    expect_accepted(bin, good);
    tu_set_ctx("baseline with every option");
    expect_accepted(bin, good_all);
    for (i = 0; i < NELEM(bad); i++) {
        tu_set_ctx("weir-window: %s", bad[i].what);
        expect_rejected(bin, bad[i].args, bad[i].what);
    }
}

static int reset_ctx(void **state)
{
    (void)state;
    tu_ctx[0] = '\0';
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(dedup_wrong_types, reset_ctx),
        cmocka_unit_test_setup(window_wrong_types, reset_ctx),
        cmocka_unit_test_setup(nul_bytes, reset_ctx),
        cmocka_unit_test_setup(escaped_nul_in_keys, reset_ctx),
        cmocka_unit_test_setup(invalid_utf8, reset_ctx),
        cmocka_unit_test_setup(big_numbers, reset_ctx),
        cmocka_unit_test_setup(huge_lines, reset_ctx),
        cmocka_unit_test_setup(deep_nesting, reset_ctx),
        cmocka_unit_test_setup(extreme_timestamps, reset_ctx),
        cmocka_unit_test_setup(empty_input, reset_ctx),
        cmocka_unit_test_setup(dedup_unreadable_input, reset_ctx),
        cmocka_unit_test_setup(window_unreadable_input, reset_ctx),
        cmocka_unit_test_setup(unreadable_permissions, reset_ctx),
        cmocka_unit_test_setup(dedup_bad_arguments, reset_ctx),
        cmocka_unit_test_setup(window_bad_arguments, reset_ctx),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
