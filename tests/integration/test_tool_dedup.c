/*
 * test_tool_dedup.c - weir-dedup in file mode, checked against its
 * specification and DESIGN.md section 4 (the time semantics).
 *
 * How it works: every case writes a JSON-lines input into a scratch
 * directory, runs weir-dedup (WEIR_DEDUP_BIN) with posix_spawn and reads
 * back unique.jsonl, duplicates.jsonl, late.jsonl and errors.jsonl and
 * the summary line on stdout.
 *
 * - Hand-written cases list, for every input line, the file it must land
 *   in; they sit on the boundaries of DESIGN section 4 (f + R - 1 + L ==
 *   W, ts + L == W, end - 1 + L == W, touching sessions, negative times),
 *   on key equality by JSON value, and on byte-exact copying. At
 *   parallelism 1 every file must match exactly, in input order; at 3 as
 *   a multiset with the order within each key kept.
 * - A reference model, written here from section 4 (per-key lists: a
 *   rolling entry, the live tumbling windows, the live sessions; the
 *   bounded-out-of-orderness watermark raised after every N-th non-error
 *   record), classifies every line. It first checks itself against the
 *   hand-written cases, then runs on random inputs (fixed seeds) whose
 *   outputs from the tool at parallelism 1, 2 and 4 must equal the
 *   model's.
 *
 * Invariants: the model parses with jansson (strict JSON: valid UTF-8,
 * no raw control bytes, no trailing text; "\u0000" escapes allowed);
 * keys are compared as canonical JSON text (compact, sorted members);
 * the watermark -inf is "not set yet". When the tool is not built, the
 * model checks still run and the tool checks are skipped.
 */
#include "tool_util.h"

enum { SCOPE_ROLLING, SCOPE_TUMBLING, SCOPE_SESSION };
enum {
    CLS_UNIQUE = TU_UNIQUE,
    CLS_DUP = TU_DUPLICATES,
    CLS_LATE = TU_LATE,
    CLS_ERROR = TU_ERRORS,
    CLS_BLANK
};

/* ------------------------------------------------------------------ */
/* Configuration, from the same arguments the tool gets                */
/* ------------------------------------------------------------------ */

typedef struct {
    char keys[8][64];
    int nkeys;
    char time_field[64];
    int scope;
    int64_t size;  /* R, S or G */
    int64_t bound; /* B: max out-of-orderness */
    int64_t late;  /* L: allowed lateness */
    long every;    /* N: watermark cadence */
} dcfg_t;

static void cfg_keys(dcfg_t *c, const char *list)
{
    const char *p = list;

    c->nkeys = 0;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");

        assert_true(c->nkeys < 8 && n < sizeof(c->keys[0]));
        memcpy(c->keys[c->nkeys], p, n);
        c->keys[c->nkeys][n] = '\0';
        c->nkeys++;
        p += n;
        if (*p == ',')
            p++;
    }
}

static void cfg_window(dcfg_t *c, const char *spec)
{
    const char *colon = strchr(spec, ':');

    assert_non_null(colon);
    if (strncmp(spec, "rolling:", 8) == 0)
        c->scope = SCOPE_ROLLING;
    else if (strncmp(spec, "tumbling:", 9) == 0)
        c->scope = SCOPE_TUMBLING;
    else if (strncmp(spec, "session:", 8) == 0)
        c->scope = SCOPE_SESSION;
    else
        fail_msg("bad window in test: %s", spec);
    assert_int_equal(0, tu_parse_dur(colon + 1, &c->size));
}

/* args: NULL-terminated option list, as passed to the tool. */
static void cfg_parse(dcfg_t *c, const char *const *args)
{
    int i;

    memset(c, 0, sizeof(*c));
    strcpy(c->time_field, "ts");
    c->scope = SCOPE_ROLLING;
    c->size = 3600000;
    c->every = 1;
    for (i = 0; args[i] != NULL; i += 2) {
        const char *o = args[i];
        const char *v = args[i + 1];

        assert_non_null(v);
        if (strcmp(o, "--key") == 0)
            cfg_keys(c, v);
        else if (strcmp(o, "--time-field") == 0)
            snprintf(c->time_field, sizeof(c->time_field), "%s", v);
        else if (strcmp(o, "--window") == 0)
            cfg_window(c, v);
        else if (strcmp(o, "--max-out-of-orderness") == 0)
            assert_int_equal(0, tu_parse_dur(v, &c->bound));
        else if (strcmp(o, "--allowed-lateness") == 0)
            assert_int_equal(0, tu_parse_dur(v, &c->late));
        else if (strcmp(o, "--watermark-every") == 0)
            c->every = atol(v);
        else
            fail_msg("option unknown to the model: %s", o);
    }
    assert_true(c->nkeys > 0);
}

/* ------------------------------------------------------------------ */
/* Parsing a line the way the spec describes                           */
/* ------------------------------------------------------------------ */

static int is_blank(const tu_line_t *l)
{
    size_t i;

    for (i = 0; i < l->len; i++)
        if (l->p[i] != ' ' && l->p[i] != '\t')
            return 0;
    return 1;
}

/* 0 and the canonical key (caller frees) and time, or -1: an error. */
static int parse_record(const dcfg_t *c, const tu_line_t *l, char **key,
                        int64_t *ts)
{
    json_error_t jerr;
    json_t *o;
    json_t *t;
    json_t *arr;
    int i;

    o = json_loadb(l->p, l->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (o == NULL)
        return -1;
    t = json_object_get(o, c->time_field);
    if (!json_is_object(o) || t == NULL || !json_is_integer(t)) {
        json_decref(o);
        return -1;
    }
    arr = json_array();
    for (i = 0; i < c->nkeys; i++) {
        json_t *v = json_object_get(o, c->keys[i]);

        if (v == NULL) {
            json_decref(arr);
            json_decref(o);
            return -1;
        }
        json_array_append(arr, v);
    }
    *key = tu_json_canon(arr);
    *ts = (int64_t)json_integer_value(t);
    json_decref(arr);
    json_decref(o);
    return 0;
}

static char *line_key(const tu_line_t *l, void *opaque)
{
    char *key = NULL;
    int64_t ts;

    if (parse_record(opaque, l, &key, &ts) != 0)
        return NULL;
    return key;
}

/* ------------------------------------------------------------------ */
/* The reference model (DESIGN.md section 4)                           */
/* ------------------------------------------------------------------ */

typedef struct {
    int64_t s;
    int64_t e;
} iv_t;

typedef struct {
    char *key;
    int has_entry; /* rolling */
    int64_t first;
    int64_t *starts; /* tumbling: windows with state */
    size_t nstarts;
    iv_t *sess; /* session: live sessions */
    size_t nsess;
} mkey_t;

typedef struct {
    mkey_t *v;
    size_t n;
    size_t cap;
    int wm_set; /* W > -inf */
    int64_t wm;
} model_t;

static mkey_t *model_key(model_t *m, char *key)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        if (strcmp(m->v[i].key, key) == 0) {
            free(key);
            return &m->v[i];
        }
    }
    if (m->n == m->cap) {
        m->cap = m->cap == 0 ? 16 : m->cap * 2;
        m->v = tu_xrealloc(m->v, m->cap * sizeof(*m->v));
    }
    memset(&m->v[m->n], 0, sizeof(m->v[0]));
    m->v[m->n].key = key;
    return &m->v[m->n++];
}

static void model_free(model_t *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].starts);
        free(m->v[i].sess);
    }
    free(m->v);
}

/* x <= W, with W = -inf before the first emission. */
static int behind(const model_t *m, int64_t x)
{
    return m->wm_set && x <= m->wm;
}

static int classify_rolling(const dcfg_t *c, model_t *m, mkey_t *k, int64_t ts)
{
    if (k->has_entry && !behind(m, k->first + c->size - 1 + c->late))
        return CLS_DUP;
    if (behind(m, ts + c->late))
        return CLS_LATE;
    k->has_entry = 1;
    k->first = ts;
    return CLS_UNIQUE;
}

static int classify_tumbling(const dcfg_t *c, model_t *m, mkey_t *k, int64_t ts)
{
    int64_t start = tu_floordiv(ts, c->size) * c->size;
    size_t i;

    if (behind(m, start + c->size - 1 + c->late))
        return CLS_LATE;
    for (i = 0; i < k->nstarts; i++)
        if (k->starts[i] == start)
            return CLS_DUP;
    k->starts = tu_xrealloc(k->starts, (k->nstarts + 1) * sizeof(int64_t));
    k->starts[k->nstarts++] = start;
    return CLS_UNIQUE;
}

static int classify_session(const dcfg_t *c, model_t *m, mkey_t *k, int64_t ts)
{
    iv_t w = {ts, ts + c->size};
    int merged = 0;
    size_t i = 0;

    /* Sessions whose state is gone (end - 1 + L <= W) are dropped. */
    while (i < k->nsess) {
        if (behind(m, k->sess[i].e - 1 + c->late))
            k->sess[i] = k->sess[--k->nsess];
        else
            i++;
    }
    /* Merge every live session that intersects, until none does. */
    for (i = 0; i < k->nsess;) {
        iv_t *s = &k->sess[i];

        if (s->s <= w.e && s->e >= w.s) {
            w.s = s->s < w.s ? s->s : w.s;
            w.e = s->e > w.e ? s->e : w.e;
            k->sess[i] = k->sess[--k->nsess];
            merged = 1;
            i = 0;
            continue;
        }
        i++;
    }
    if (!merged && behind(m, ts + c->size - 1 + c->late))
        return CLS_LATE;
    k->sess = tu_xrealloc(k->sess, (k->nsess + 1) * sizeof(iv_t));
    k->sess[k->nsess++] = w;
    return merged ? CLS_DUP : CLS_UNIQUE;
}

/* Classifies every line of in (CLS_*); cls has in->n slots. */
static void run_model(const dcfg_t *c, const tu_lines_t *in, int *cls)
{
    model_t m = {0};
    int64_t max_ts = 0;
    long count = 0;
    size_t i;

    for (i = 0; i < in->n; i++) {
        char *key;
        int64_t ts;
        mkey_t *k;

        if (is_blank(&in->v[i])) {
            cls[i] = CLS_BLANK;
            continue;
        }
        if (parse_record(c, &in->v[i], &key, &ts) != 0) {
            cls[i] = CLS_ERROR;
            continue;
        }
        k = model_key(&m, key);
        if (c->scope == SCOPE_ROLLING)
            cls[i] = classify_rolling(c, &m, k, ts);
        else if (c->scope == SCOPE_TUMBLING)
            cls[i] = classify_tumbling(c, &m, k, ts);
        else
            cls[i] = classify_session(c, &m, k, ts);
        if (count == 0 || ts > max_ts)
            max_ts = ts;
        count++;
        if (count % c->every == 0 && (!m.wm_set || max_ts - c->bound > m.wm)) {
            m.wm = max_ts - c->bound;
            m.wm_set = 1;
        }
    }
    model_free(&m);
}

/* ------------------------------------------------------------------ */
/* Running the tool and checking its files                             */
/* ------------------------------------------------------------------ */

/* Lines of in whose class is cls, in input order. */
static void select_lines(const tu_lines_t *in, const int *cls, int which,
                         tu_lines_t *out)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < in->n; i++)
        if (cls[i] == which)
            tu_lines_push(out, in->v[i].p, in->v[i].len);
}

static void run_dedup(const char *bin, const char *dir, const char *input,
                      const char *outdir, const char *const *args, int par,
                      tu_run_t *r)
{
    tu_argv_t a = {0};
    int i;

    tu_argv_add(&a, bin);
    tu_argv_add(&a, "--input");
    tu_argv_add(&a, input);
    tu_argv_add(&a, "--output-dir");
    tu_argv_add(&a, outdir);
    for (i = 0; args[i] != NULL; i++)
        tu_argv_add(&a, args[i]);
    if (par > 0) {
        tu_argv_add(&a, "--parallelism");
        tu_argv_addf(&a, "%d", par);
    }
    tu_run(a.v, dir, r);
    tu_argv_free(&a);
}

/* Runs the tool on in at parallelism par and checks all four files and
 * the summary against the classes cls. */
static void check_tool(const char *bin, const char *dir, const char *input,
                       const dcfg_t *c, const char *const *args,
                       const tu_lines_t *in, const int *cls, int par)
{
    char outdir[4096];
    char name[64];
    char what[128];
    long long count[TU_NFILES] = {0};
    tu_run_t r;
    size_t i;
    int f;

    snprintf(name, sizeof(name), "out-p%d", par);
    tu_subdir(outdir, sizeof(outdir), dir, name);
    run_dedup(bin, dir, input, outdir, args, par, &r);
    tu_check_ok(&r);
    for (i = 0; i < in->n; i++)
        if (cls[i] != CLS_BLANK)
            count[cls[i]]++;
    for (f = 0; f < TU_NFILES; f++) {
        tu_lines_t got;
        tu_lines_t want;

        snprintf(what, sizeof(what), "P=%d %s", par, tu_dedup_files[f]);
        tu_read_output(&got, outdir, tu_dedup_files[f]);
        select_lines(in, cls, f, &want);
        if (par == 1) {
            tu_check_lines_exact(what, &got, &want);
        } else {
            tu_check_lines_multiset(what, &got, &want);
            if (f != TU_ERRORS)
                tu_check_key_order(what, &got, &want, line_key, (void *)c);
        }
        tu_lines_free(&got);
        tu_lines_free(&want);
    }
    tu_check_summary(&r, count[0] + count[1] + count[2] + count[3], count[0],
                     count[1], count[2], count[3]);
    tu_run_free(&r);
}

/* ------------------------------------------------------------------ */
/* Hand-written cases                                                  */
/* ------------------------------------------------------------------ */

#define MAXL 40

typedef struct {
    const char *args[20];    /* tool options, NULL-terminated */
    const char *lines[MAXL]; /* input lines, NULL-terminated */
    int unique[MAXL];        /* 1-based line numbers, 0-terminated */
    int dup[MAXL];
    int late[MAXL];
    int err[MAXL];
    int no_final_newline;
} dcase_t;

static void case_classes(const dcase_t *dc, size_t n, int *cls)
{
    const int *lists[4];
    size_t i;
    int f;
    int j;

    lists[CLS_UNIQUE] = dc->unique;
    lists[CLS_DUP] = dc->dup;
    lists[CLS_LATE] = dc->late;
    lists[CLS_ERROR] = dc->err;
    for (i = 0; i < n; i++)
        cls[i] = CLS_BLANK;
    for (f = 0; f < 4; f++) {
        for (j = 0; lists[f][j] != 0; j++) {
            assert_true(lists[f][j] >= 1 && (size_t)lists[f][j] <= n);
            assert_int_equal(CLS_BLANK, cls[lists[f][j] - 1]);
            cls[lists[f][j] - 1] = f;
        }
    }
}

static const char *cls_name(int c)
{
    return c == CLS_BLANK ? "(ignored)" : tu_dedup_files[c];
}

static void run_case(const char *name, const dcase_t *dc)
{
    char dir[4096];
    char input[4096];
    tu_lines_t in = {0};
    tu_buf_t text = {0};
    dcfg_t c;
    int want[MAXL];
    int got[MAXL];
    const char *bin;
    size_t i;

    tu_set_ctx("case %s", name);
    for (i = 0; dc->lines[i] != NULL; i++) {
        tu_lines_push_str(&in, dc->lines[i]);
        tu_buf_puts(&text, dc->lines[i]);
        if (dc->lines[i + 1] != NULL || !dc->no_final_newline)
            tu_buf_puts(&text, "\n");
    }
    cfg_parse(&c, dc->args);
    case_classes(dc, in.n, want);
    run_model(&c, &in, got);
    for (i = 0; i < in.n; i++)
        TU_CHECK(got[i] == want[i],
                 "test case and model disagree on line %zu: case says %s, "
                 "model says %s",
                 i + 1, cls_name(want[i]), cls_name(got[i]));
    bin = tu_tool("WEIR_DEDUP_BIN");
    if (bin == NULL) {
        tu_lines_free(&in);
        tu_buf_free(&text);
        skip();
    }
    tu_mkdtemp(dir, sizeof(dir), "dedup-case");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_write_file(input, text.data, text.len);
    check_tool(bin, dir, input, &c, dc->args, &in, want, 1);
    check_tool(bin, dir, input, &c, dc->args, &in, want, 2);
    tu_rmtree(dir);
    tu_lines_free(&in);
    tu_buf_free(&text);
}

/* Rolling: live while f + R - 1 + L > W; late when ts + L <= W. */
static void rolling_boundaries(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "rolling:10ms",
                 "--allowed-lateness", "5ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":100,\"n\":1}", /* W=-inf; W:=100 */
                  "{\"id\":\"b\",\"ts\":113,\"n\":2}", /* W:=113 */
                  "{\"id\":\"a\",\"ts\":100,\"n\":3}", /* 114 > 113: live */
                  "{\"id\":\"b\",\"ts\":114,\"n\":4}", /* W:=114 */
                  "{\"id\":\"a\",\"ts\":200,\"n\":5}", /* 114 == W: gone */
                  "{\"id\":\"c\",\"ts\":195,\"n\":6}", /* 195+5 == W=200 */
                  "{\"id\":\"c\",\"ts\":196,\"n\":7}", /* 201 > 200 */
                  "{\"id\":\"c\",\"ts\":150,\"n\":8}", /* behind W, but live */
                  "{\"id\":\"d\",\"ts\":10,\"n\":9}", NULL},
        .unique = {1, 2, 5, 7, 0},
        .dup = {3, 4, 8, 0},
        .late = {6, 9, 0},
        .err = {0},
    };

    (void)state;
    run_case("rolling_boundaries", &dc);
}

/* The entry keeps the time of the first record; duplicates do not move
 * it. */
static void rolling_first_seen_is_kept(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "rolling:10ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":0}",
                  "{\"id\":\"a\",\"ts\":8}",  /* 9 > 0: duplicate; W:=8 */
                  "{\"id\":\"b\",\"ts\":9}",  /* W:=9: a's entry is gone */
                  "{\"id\":\"a\",\"ts\":10}", /* unique (not live from ts 8) */
                  "{\"id\":\"a\",\"ts\":12}", NULL},
        .unique = {1, 3, 4, 0},
        .dup = {2, 5, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("rolling_first_seen_is_kept", &dc);
}

/* Tumbling: late when end - 1 + L <= W. */
static void tumbling_boundaries(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "tumbling:10ms",
                 "--allowed-lateness", "3ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":0}", "{\"id\":\"a\",\"ts\":9}",
                  "{\"id\":\"a\",\"ts\":10}", /* W:=10 */
                  "{\"id\":\"a\",\"ts\":5}",  /* [0,10): 12 > 10 */
                  "{\"id\":\"b\",\"ts\":12}", /* W:=12 */
                  "{\"id\":\"a\",\"ts\":3}",  /* [0,10): 12 <= 12 */
                  "{\"id\":\"b\",\"ts\":2}",
                  "{\"id\":\"a\",\"ts\":-1}", /* [-10,0) */
                  "{\"id\":\"a\",\"ts\":19}", "{\"id\":\"a\",\"ts\":20}", NULL},
        .unique = {1, 3, 5, 10, 0},
        .dup = {2, 4, 9, 0},
        .late = {6, 7, 8, 0},
        .err = {0},
    };

    (void)state;
    run_case("tumbling_boundaries", &dc);
}

/* Tumbling windows of negative times use floor division. */
static void tumbling_negative_times(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "tumbling:10ms",
                 "--max-out-of-orderness", "100ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":-1}", /* [-10,0) */
                  "{\"id\":\"a\",\"ts\":-10}",
                  "{\"id\":\"a\",\"ts\":-11}", /* [-20,-10) */
                  "{\"id\":\"a\",\"ts\":0}",   /* [0,10) */
                  "{\"id\":\"a\",\"ts\":-20}", "{\"id\":\"a\",\"ts\":9}",
                  "{\"id\":\"a\",\"ts\":-5}",
                  "{\"id\":\"a\",\"ts\":-21}", /* [-30,-20) */
                  "{\"id\":\"a\",\"ts\":-30}",
                  "{\"id\":\"a\",\"ts\":-31}", /* [-40,-30) */
                  NULL},
        .unique = {1, 3, 4, 8, 10, 0},
        .dup = {2, 5, 6, 7, 9, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("tumbling_negative_times", &dc);
}

/* Sessions merge when they intersect, touching included. */
static void session_touching(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "session:10ms",
                 "--max-out-of-orderness", "1000ms", NULL},
        .lines =
            {"{\"id\":\"a\",\"ts\":100}", /* [100,110) */
             "{\"id\":\"a\",\"ts\":110}", /* touches: [100,120) */
             "{\"id\":\"a\",\"ts\":130}", /* [130,140) */
             "{\"id\":\"a\",\"ts\":120}", /* bridges: [100,140) */
             "{\"id\":\"a\",\"ts\":150}", /* [150,160) */
             "{\"id\":\"a\",\"ts\":90}",  /* [90,100) touches: [90,140) */
             "{\"id\":\"b\",\"ts\":95}",
             "{\"id\":\"a\",\"ts\":79}",  /* [79,89): gap of 1 */
             "{\"id\":\"a\",\"ts\":140}", /* joins [90,140) and [150,160) */
             "{\"id\":\"a\",\"ts\":89}",  /* joins [79,89) and [90,160) */
             NULL},
        .unique = {1, 3, 5, 7, 8, 0},
        .dup = {2, 4, 6, 9, 10, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("session_touching", &dc);
}

/* Session lateness: ts + G - 1 + L <= W and nothing live to merge with. */
static void session_lateness(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "session:10ms",
                 "--allowed-lateness", "5ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":100}", /* [100,110); W:=100 */
                  "{\"id\":\"b\",\"ts\":200}", /* W:=200; a's session gone */
                  "{\"id\":\"a\",\"ts\":105}", /* 119 <= 200 */
                  "{\"id\":\"a\",\"ts\":186}", /* 186+9+5 == 200 */
                  "{\"id\":\"a\",\"ts\":187}", /* 201 > 200: [187,197) */
                  "{\"id\":\"a\",\"ts\":180}", /* merges a live session */
                  "{\"id\":\"a\",\"ts\":170}", /* touches [180,197) */
                  "{\"id\":\"c\",\"ts\":170}",
                  "{\"id\":\"a\",\"ts\":160}", /* touches [170,197) */
                  NULL},
        .unique = {1, 2, 5, 0},
        .dup = {6, 7, 9, 0},
        .late = {3, 4, 8, 0},
        .err = {0},
    };

    (void)state;
    run_case("session_lateness", &dc);
}

/* A key of several fields is the tuple of their values in --key order. */
static void multi_field_keys(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "a,b", "--max-out-of-orderness", "1h", NULL},
        .lines = {"{\"a\":1,\"b\":2,\"ts\":0}", "{\"b\":2,\"a\":1,\"ts\":1}",
                  "{\"a\":2,\"b\":1,\"ts\":2}",
                  "{\"a\":1,\"b\":\"2\",\"ts\":3}", "{\"a\":1,\"ts\":4}",
                  "{\"a\":1,\"b\":2,\"c\":9,\"ts\":5}",
                  "{\"a\":\"1\",\"b\":\"23\",\"ts\":6}",
                  "{\"a\":\"12\",\"b\":\"3\",\"ts\":7}",
                  "{\"a\":12,\"b\":3,\"ts\":8}", "{\"a\":1,\"b\":23,\"ts\":9}",
                  "{\"b\":2,\"ts\":10}", "{\"a\":\"12\",\"b\":\"3\",\"ts\":11}",
                  "{\"a\":\"1,2\",\"b\":3,\"ts\":12}",
                  "{\"a\":1,\"b\":\"2,3\",\"ts\":13}",
                  "{\"a\":[1,2],\"b\":3,\"ts\":14}",
                  "{\"a\":1,\"b\":[2,3],\"ts\":15}",
                  "{\"a\":[1,2],\"b\":3,\"ts\":16}", NULL},
        .unique = {1, 3, 4, 7, 8, 9, 10, 13, 14, 15, 16, 0},
        .dup = {2, 6, 12, 17, 0},
        .late = {0},
        .err = {5, 11, 0},
    };

    (void)state;
    run_case("multi_field_keys", &dc);
}

/* Keys compare by JSON value, not by text. */
static void keys_compare_by_json_value(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--max-out-of-orderness", "1h", NULL},
        .lines = {"{\"id\":1,\"ts\":0}",
                  "{\"id\":\"1\",\"ts\":0}",
                  "{\"id\":{\"a\":1,\"b\":2},\"ts\":0}",
                  "{\"id\":{\"b\":2,\"a\":1},\"ts\":0}",
                  "{  \"id\" :  1 ,  \"ts\" : 0 }",
                  "{\"id\":\"\\u0061\",\"ts\":0}",
                  "{\"id\":\"a\",\"ts\":0}",
                  "{\"id\":\"\xc3\xa9\",\"ts\":0}",
                  "{\"id\":\"\\u00e9\",\"ts\":0}",
                  "{\"id\":\"\\u00E9\",\"ts\":0}",
                  "{\"id\":[1,2],\"ts\":0}",
                  "{\"id\":[2,1],\"ts\":0}",
                  "{\"id\":[ 1 , 2 ],\"ts\":0}",
                  "{\"id\":true,\"ts\":0}",
                  "{\"id\":false,\"ts\":0}",
                  "{\"id\":{\"a\":{\"x\":1,\"y\":2}},\"ts\":0}",
                  "{\"id\":{\"a\":{\"y\":2,\"x\":1}},\"ts\":0}",
                  "{\"id\":\"a\\\"b\",\"ts\":0}",
                  "{\"id\":\"a\\u0022b\",\"ts\":0}",
                  "{\"id\":\"\\ud83d\\ude00\",\"ts\":0}",
                  "{\"id\":\"\xf0\x9f\x98\x80\",\"ts\":0}",
                  "{\"id\":{},\"ts\":0}",
                  "{\"id\":[],\"ts\":0}",
                  "{\"id\":\"\",\"ts\":0}",
                  "{\"id\":0,\"ts\":0}",
                  "{\"id\":{\"a\":1,\"b\":2,\"c\":3},\"ts\":0}",
                  "{\"id\":\"a\\/b\",\"ts\":0}",
                  "{\"id\":\"a/b\",\"ts\":0}",
                  "{\"id\":-7,\"ts\":0}",
                  "{\"id\":7,\"ts\":0}",
                  "{\"id\":null,\"ts\":0}",
                  "{\"id\":null,\"ts\":1}",
                  "{\"id\":\"null\",\"ts\":0}",
                  NULL},
        .unique = {1,  2,  3,  6,  8,  11, 12, 14, 15, 16, 18, 20,
                   22, 23, 24, 25, 26, 27, 29, 30, 31, 33, 0},
        .dup = {4, 5, 7, 9, 10, 13, 17, 19, 21, 28, 32, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("keys_compare_by_json_value", &dc);
}

/* Output lines are the input bytes: spacing, escapes, number spellings
 * and a trailing '\r' (JSON whitespace) are kept. */
static void bytes_are_kept(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--max-out-of-orderness", "1h", NULL},
        .lines = {"  {\"id\" :\"x\",   \"ts\":1}   ",
                  "{\"id\":\"\\u00e9\\n\",\"ts\":2,\"s\":\"tab\\there\"}",
                  "{\"id\":\"y\",\"ts\":3,\"u\":\"\xe6\x97\xa5\","
                  "\"e\":\"\\u65e5\\/\"}",
                  "{\"id\":\"x\",\"ts\":4}\t",
                  "{\"id\":\"w\",\"ts\":6,\"f\":1.50,\"g\":1E+2,\"h\":-0.0}",
                  "{ \"id\" : \"x\" ", "\t{\"ts\":-5,\r\"id\":\"v\"}",
                  "{\"id\":\"crlf\",\"ts\":8}\r", NULL},
        .unique = {1, 2, 3, 5, 7, 8, 0},
        .dup = {4, 0},
        .late = {0},
        .err = {6, 0},
    };

    (void)state;
    run_case("bytes_are_kept", &dc);
}

/* Empty lines are ignored; a last line without '\n' is read. */
static void blank_lines_ignored(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", NULL},
        .lines = {"", "{\"id\":\"a\",\"ts\":1}", "", "",
                  "{\"id\":\"a\",\"ts\":2}", "{\"id\":\"b\",\"ts\":3}", NULL},
        .unique = {2, 6, 0},
        .dup = {5, 0},
        .late = {0},
        .err = {0},
        .no_final_newline = 1,
    };

    (void)state;
    run_case("blank_lines_ignored", &dc);
}

/* Lines of only spaces or tabs are blank too. */
static void whitespace_lines_are_blank(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", NULL},
        .lines = {"   ", "{\"id\":\"a\",\"ts\":1}", "\t", " \t ",
                  "{\"id\":\"a\",\"ts\":2}", NULL},
        .unique = {2, 0},
        .dup = {5, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("whitespace_lines_are_blank", &dc);
}

static void time_field_option(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--time-field", "t", NULL},
        .lines = {"{\"id\":\"a\",\"t\":5,\"ts\":\"x\"}",
                  "{\"id\":\"a\",\"ts\":5}", "{\"id\":\"b\",\"t\":-5}",
                  "{\"id\":\"a\",\"t\":\"5\"}", "{\"id\":\"c\",\"t\":6}",
                  "{\"id\":\"a\",\"t\":7}", NULL},
        .unique = {1, 5, 0},
        .dup = {6, 0},
        .late = {3, 0},
        .err = {2, 4, 0},
    };

    (void)state;
    run_case("time_field_option", &dc);
}

/* The watermark moves after every N-th record that is not an error;
 * errors and blank lines do not count. */
static void watermark_cadence(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "rolling:10ms", "--watermark-every",
                 "2", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":100}", /* 1st */
                  "", "garbage",
                  "{\"id\":\"b\",\"ts\":50}",  /* 2nd: W:=100 after it */
                  "{\"id\":\"c\",\"ts\":300}", /* 3rd */
                  "{\"id\":\"d\",\"ts\":250}", /* W still 100; 4th: W:=300 */
                  "[]", "{\"id\":\"e\",\"ts\":300}", /* 300 <= 300 */
                  "{\"id\":\"f\",\"ts\":301}", NULL},
        .unique = {1, 4, 5, 6, 9, 0},
        .dup = {0},
        .late = {8, 0},
        .err = {3, 7, 0},
    };

    (void)state;
    run_case("watermark_cadence", &dc);
}

static void out_of_orderness(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "rolling:1s",
                 "--max-out-of-orderness", "5ms", "--allowed-lateness", "2ms",
                 NULL},
        .lines = {"{\"id\":\"a\",\"ts\":100}", /* W:=95 */
                  "{\"id\":\"b\",\"ts\":93}",  /* 95 <= 95 */
                  "{\"id\":\"c\",\"ts\":94}", "{\"id\":\"a\",\"ts\":50}",
                  "{\"id\":\"d\",\"ts\":106}", /* W:=101 */
                  "{\"id\":\"e\",\"ts\":99}", "{\"id\":\"f\",\"ts\":100}",
                  NULL},
        .unique = {1, 3, 5, 7, 0},
        .dup = {4, 0},
        .late = {2, 6, 0},
        .err = {0},
    };

    (void)state;
    run_case("out_of_orderness", &dc);
}

/* Units: m (minutes, not ms), h and the bare 0. */
static void duration_minutes_hours(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "tumbling:1m",
                 "--max-out-of-orderness", "1h", "--allowed-lateness", "0",
                 NULL},
        .lines = {"{\"id\":\"a\",\"ts\":0}", "{\"id\":\"a\",\"ts\":59999}",
                  "{\"id\":\"a\",\"ts\":60000}", "{\"id\":\"a\",\"ts\":-1}",
                  "{\"id\":\"a\",\"ts\":-60000}", NULL},
        .unique = {1, 3, 4, 0},
        .dup = {2, 5, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("duration_minutes_hours", &dc);
}

/* Units: s. */
static void duration_seconds(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "rolling:1s",
                 "--max-out-of-orderness", "1s", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":0}",    /* W:=-1000 */
                  "{\"id\":\"b\",\"ts\":1998}", /* W:=998 */
                  "{\"id\":\"a\",\"ts\":1000}", /* 999 > 998 */
                  "{\"id\":\"b\",\"ts\":1999}", /* W:=999 */
                  "{\"id\":\"a\",\"ts\":1500}", /* a gone; 1500 > 999 */
                  NULL},
        .unique = {1, 2, 5, 0},
        .dup = {3, 4, 0},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("duration_seconds", &dc);
}

/* Units: d and h. */
static void duration_days(void **state)
{
    static const dcase_t dc = {
        .args = {"--key", "id", "--window", "rolling:1d", "--allowed-lateness",
                 "1h", "--max-out-of-orderness", "0", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":0}", "{\"id\":\"b\",\"ts\":86400000}",
                  "{\"id\":\"a\",\"ts\":5}",        /* 89999999 > W */
                  "{\"id\":\"c\",\"ts\":89999999}", /* W:=89999999 */
                  "{\"id\":\"a\",\"ts\":7}",
                  "{\"id\":\"d\",\"ts\":86399999}", /* +1h == W */
                  "{\"id\":\"e\",\"ts\":86400000}", NULL},
        .unique = {1, 2, 4, 7, 0},
        .dup = {3, 0},
        .late = {5, 6, 0},
        .err = {0},
    };

    (void)state;
    run_case("duration_days", &dc);
}

/* ------------------------------------------------------------------ */
/* Model-based randomized tests                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    uint64_t seed;
    const char *window;
    const char *bound;
    const char *late;
    const char *every;
    const char *keys;
} rcfg_t;

static void random_run(const rcfg_t *rc)
{
    static const int pars[3] = {1, 2, 4};
    const char *args[16];
    const char *bin;
    char dir[4096];
    char input[4096];
    tu_buf_t text = {0};
    tu_lines_t in = {0};
    tu_rng_t rng = {rc->seed};
    tu_gen_t g = {
        .lines = 3000,
        .ts_start = -20000,
        .step_max = 20,
        .jitter = 150,
        .far_pct = 4,
        .far_max = 2000,
        .error_pct = 3,
        .blank_pct = 1,
        .groups = 3,
        .bad_v_pct = 5,
    };
    long long count[5] = {0};
    dcfg_t c;
    int *cls;
    size_t i;
    int n = 0;

    tu_set_ctx("seed=%" PRIu64 " window=%s B=%s L=%s N=%s key=%s", rc->seed,
               rc->window, rc->bound, rc->late, rc->every, rc->keys);
    args[n++] = "--key";
    args[n++] = rc->keys;
    args[n++] = "--window";
    args[n++] = rc->window;
    args[n++] = "--max-out-of-orderness";
    args[n++] = rc->bound;
    args[n++] = "--allowed-lateness";
    args[n++] = rc->late;
    args[n++] = "--watermark-every";
    args[n++] = rc->every;
    args[n] = NULL;
    cfg_parse(&c, args);
    tu_gen_input(&rng, &g, &text);
    tu_lines_split(&in, text.data, text.len);
    cls = tu_xrealloc(NULL, in.n * sizeof(int));
    run_model(&c, &in, cls);
    for (i = 0; i < in.n; i++)
        count[cls[i]]++;
    /* The input must exercise every outcome, or the test proves little. */
    TU_CHECK(count[CLS_UNIQUE] > 100 && count[CLS_DUP] > 100 &&
                 count[CLS_LATE] > 20 && count[CLS_ERROR] > 20,
             "degenerate input: %lld unique, %lld dup, %lld late, "
             "%lld errors",
             count[0], count[1], count[2], count[3]);
    bin = tu_tool("WEIR_DEDUP_BIN");
    if (bin == NULL) {
        free(cls);
        tu_lines_free(&in);
        tu_buf_free(&text);
        skip();
    }
    tu_mkdtemp(dir, sizeof(dir), "dedup-random");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_write_file(input, text.data, text.len);
    for (i = 0; i < 3; i++)
        check_tool(bin, dir, input, &c, args, &in, cls, pars[i]);
    tu_rmtree(dir);
    free(cls);
    tu_lines_free(&in);
    tu_buf_free(&text);
}

static void random_rolling(void **state)
{
    static const rcfg_t cfgs[] = {
        {1001, "rolling:300ms", "0", "0", "1", "k,g"},
        {1002, "rolling:300ms", "50ms", "100ms", "7", "k,g"},
        {1003, "rolling:1s", "20ms", "0", "3", "k"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
        random_run(&cfgs[i]);
}

static void random_tumbling(void **state)
{
    static const rcfg_t cfgs[] = {
        {2001, "tumbling:500ms", "0", "0", "1", "k,g"},
        {2002, "tumbling:500ms", "40ms", "200ms", "5", "k,g"},
        {2003, "tumbling:120ms", "10ms", "30ms", "2", "k"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
        random_run(&cfgs[i]);
}

static void random_session(void **state)
{
    static const rcfg_t cfgs[] = {
        {3001, "session:80ms", "0", "0", "1", "k,g"},
        {3002, "session:80ms", "60ms", "120ms", "3", "k,g"},
        {3003, "session:30ms", "100ms", "50ms", "11", "k"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
        random_run(&cfgs[i]);
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
        cmocka_unit_test_setup(rolling_boundaries, reset_ctx),
        cmocka_unit_test_setup(rolling_first_seen_is_kept, reset_ctx),
        cmocka_unit_test_setup(tumbling_boundaries, reset_ctx),
        cmocka_unit_test_setup(tumbling_negative_times, reset_ctx),
        cmocka_unit_test_setup(session_touching, reset_ctx),
        cmocka_unit_test_setup(session_lateness, reset_ctx),
        cmocka_unit_test_setup(multi_field_keys, reset_ctx),
        cmocka_unit_test_setup(keys_compare_by_json_value, reset_ctx),
        cmocka_unit_test_setup(bytes_are_kept, reset_ctx),
        cmocka_unit_test_setup(blank_lines_ignored, reset_ctx),
        cmocka_unit_test_setup(whitespace_lines_are_blank, reset_ctx),
        cmocka_unit_test_setup(time_field_option, reset_ctx),
        cmocka_unit_test_setup(watermark_cadence, reset_ctx),
        cmocka_unit_test_setup(out_of_orderness, reset_ctx),
        cmocka_unit_test_setup(duration_minutes_hours, reset_ctx),
        cmocka_unit_test_setup(duration_seconds, reset_ctx),
        cmocka_unit_test_setup(duration_days, reset_ctx),
        cmocka_unit_test_setup(random_rolling, reset_ctx),
        cmocka_unit_test_setup(random_tumbling, reset_ctx),
        cmocka_unit_test_setup(random_session, reset_ctx),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
