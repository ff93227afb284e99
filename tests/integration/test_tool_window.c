/*
 * test_tool_window.c - weir-window in file mode, checked against its
 * specification and DESIGN.md section 4 (windows, watermarks, lateness).
 *
 * How it works: every case writes a JSON-lines input into a scratch
 * directory, runs weir-window (WEIR_WINDOW_BIN) with posix_spawn and reads
 * back results.jsonl, late.jsonl and errors.jsonl. Each result line is
 * parsed and reduced to "key|start|end|value", the key being the
 * canonical JSON text of the key array, and results are compared as
 * multisets (firing order is not part of the contract). late.jsonl and
 * errors.jsonl hold input lines byte for byte: in input order at
 * parallelism 1, as multisets with the order within each key kept
 * otherwise.
 *
 * - Hand-written cases cover tumbling, sliding (slide dividing the size or
 *   not) and session windows, count/sum/min/max, re-firing within the
 *   allowed lateness, merged sessions, late records, aggregate fields that
 *   are missing or not integers, the key array in --key order, the
 *   watermark cadence, and end of input.
 * - A reference model of Flink's event-time trigger, written here,
 *   computes the firings: a window fires when the watermark reaches
 *   end - 1; a record added to a kept window whose end - 1 <= W fires it at
 *   once with the aggregate of all its records; a session that merges
 *   fires as one window; state is dropped when W >= end - 1 + L; end of
 *   input fires every window that has a firing pending. The model checks
 *   itself against the hand cases, then the tool runs on random inputs at
 *   parallelism 1, 2 and 4 and must produce the model's multiset.
 *
 * Invariants: parsing is jansson's strict JSON, as in test_tool_dedup.c;
 * the watermark starts "not set" (-inf); a window that fired has no firing
 * pending until a merge moves its end past the watermark.
 */
#include "tool_util.h"

enum { WIN_TUMBLING, WIN_SLIDING, WIN_SESSION };
enum { AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX };
enum { CLS_OK, CLS_LATE, CLS_ERROR, CLS_BLANK };

/* ------------------------------------------------------------------ */
/* Configuration                                                       */
/* ------------------------------------------------------------------ */

typedef struct {
    char keys[8][64];
    int nkeys;
    char time_field[64];
    int kind;
    int64_t size; /* tumbling/sliding size, session gap */
    int64_t slide;
    int agg;
    char agg_field[64];
    int64_t bound;
    int64_t late;
    long every;
} wcfg_t;

static void cfg_keys(wcfg_t *c, const char *list)
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

static void cfg_window(wcfg_t *c, const char *spec)
{
    char buf[64];
    const char *colon = strchr(spec, ':');
    char *slash;

    assert_non_null(colon);
    snprintf(buf, sizeof(buf), "%s", colon + 1);
    if (strncmp(spec, "tumbling:", 9) == 0) {
        c->kind = WIN_TUMBLING;
        assert_int_equal(0, tu_parse_dur(buf, &c->size));
    } else if (strncmp(spec, "sliding:", 8) == 0) {
        c->kind = WIN_SLIDING;
        slash = strchr(buf, '/');
        assert_non_null(slash);
        *slash = '\0';
        assert_int_equal(0, tu_parse_dur(buf, &c->size));
        assert_int_equal(0, tu_parse_dur(slash + 1, &c->slide));
    } else if (strncmp(spec, "session:", 8) == 0) {
        c->kind = WIN_SESSION;
        assert_int_equal(0, tu_parse_dur(buf, &c->size));
    } else {
        fail_msg("bad window in test: %s", spec);
    }
}

static void cfg_agg(wcfg_t *c, const char *spec)
{
    const char *colon = strchr(spec, ':');

    if (strcmp(spec, "count") == 0) {
        c->agg = AGG_COUNT;
        return;
    }
    assert_non_null(colon);
    if (strncmp(spec, "sum:", 4) == 0)
        c->agg = AGG_SUM;
    else if (strncmp(spec, "min:", 4) == 0)
        c->agg = AGG_MIN;
    else if (strncmp(spec, "max:", 4) == 0)
        c->agg = AGG_MAX;
    else
        fail_msg("bad aggregate in test: %s", spec);
    snprintf(c->agg_field, sizeof(c->agg_field), "%s", colon + 1);
}

static void cfg_parse(wcfg_t *c, const char *const *args)
{
    int i;

    memset(c, 0, sizeof(*c));
    strcpy(c->time_field, "ts");
    c->agg = AGG_COUNT;
    c->every = 1;
    c->kind = -1;
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
        else if (strcmp(o, "--agg") == 0)
            cfg_agg(c, v);
        else if (strcmp(o, "--max-out-of-orderness") == 0)
            assert_int_equal(0, tu_parse_dur(v, &c->bound));
        else if (strcmp(o, "--allowed-lateness") == 0)
            assert_int_equal(0, tu_parse_dur(v, &c->late));
        else if (strcmp(o, "--watermark-every") == 0)
            c->every = atol(v);
        else
            fail_msg("option unknown to the model: %s", o);
    }
    assert_true(c->nkeys > 0 && c->kind >= 0);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

static int is_blank(const tu_line_t *l)
{
    size_t i;

    for (i = 0; i < l->len; i++)
        if (l->p[i] != ' ' && l->p[i] != '\t')
            return 0;
    return 1;
}

/* 0 with the canonical key array (caller frees), time and aggregate
 * input, or -1: the line is an error. */
static int parse_record(const wcfg_t *c, const tu_line_t *l, char **key,
                        int64_t *ts, int64_t *val)
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
    *val = 0;
    if (c->agg != AGG_COUNT) {
        json_t *v = json_object_get(o, c->agg_field);

        if (v == NULL || !json_is_integer(v)) {
            json_decref(o);
            return -1;
        }
        *val = (int64_t)json_integer_value(v);
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
    int64_t val;

    if (parse_record(opaque, l, &key, &ts, &val) != 0)
        return NULL;
    return key;
}

/* ------------------------------------------------------------------ */
/* The reference model: Flink's event-time trigger                     */
/* ------------------------------------------------------------------ */

typedef struct {
    int64_t s;
    int64_t e;
    int64_t cnt;
    int64_t sum;
    int64_t min;
    int64_t max;
    int pending; /* a firing is due when W reaches e - 1 */
} mwin_t;

typedef struct {
    char *key;
    mwin_t *w;
    size_t n;
} wkey_t;

typedef struct {
    const wcfg_t *c;
    wkey_t *v;
    size_t n;
    size_t cap;
    int wm_set;
    int64_t wm;
    tu_lines_t results; /* "key|start|end|value" per firing */
    long refires;       /* firings caused by a record, not by W */
} wmodel_t;

static wkey_t *model_key(wmodel_t *m, char *key)
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

static void model_free(wmodel_t *m)
{
    size_t i;

    for (i = 0; i < m->n; i++) {
        free(m->v[i].key);
        free(m->v[i].w);
    }
    free(m->v);
    tu_lines_free(&m->results);
}

static int behind(const wmodel_t *m, int64_t x)
{
    return m->wm_set && x <= m->wm;
}

static void result_text(tu_buf_t *b, const char *key, int64_t s, int64_t e,
                        int64_t v)
{
    b->len = 0;
    tu_buf_printf(b, "%s|%" PRId64 "|%" PRId64 "|%" PRId64, key, s, e, v);
}

static void emit(wmodel_t *m, const wkey_t *k, const mwin_t *w)
{
    tu_buf_t b = {0};
    int64_t v;

    switch (m->c->agg) {
    case AGG_SUM:
        v = w->sum;
        break;
    case AGG_MIN:
        v = w->min;
        break;
    case AGG_MAX:
        v = w->max;
        break;
    default:
        v = w->cnt;
        break;
    }
    result_text(&b, k->key, w->s, w->e, v);
    tu_lines_push(&m->results, b.data, b.len);
    tu_buf_free(&b);
}

static void acc_add(mwin_t *w, int64_t v)
{
    if (w->cnt == 0 || v < w->min)
        w->min = v;
    if (w->cnt == 0 || v > w->max)
        w->max = v;
    w->cnt++;
    w->sum += v;
}

static void acc_merge(mwin_t *into, const mwin_t *from)
{
    if (from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->cnt += from->cnt;
    into->sum += from->sum;
    into->s = from->s < into->s ? from->s : into->s;
    into->e = from->e > into->e ? from->e : into->e;
}

static mwin_t *key_window(wkey_t *k, int64_t s, int64_t e)
{
    size_t i;

    for (i = 0; i < k->n; i++)
        if (k->w[i].s == s && k->w[i].e == e)
            return &k->w[i];
    k->w = tu_xrealloc(k->w, (k->n + 1) * sizeof(mwin_t));
    memset(&k->w[k->n], 0, sizeof(mwin_t));
    k->w[k->n].s = s;
    k->w[k->n].e = e;
    return &k->w[k->n++];
}

/* Adds the record to window w (already in k), firing it when W is past
 * its end - 1. */
static void add_and_trigger(wmodel_t *m, wkey_t *k, mwin_t *w)
{
    if (behind(m, w->e - 1)) {
        emit(m, k, w);
        w->pending = 0;
        m->refires++;
    } else {
        w->pending = 1;
    }
}

static int process_fixed(wmodel_t *m, wkey_t *k, int64_t ts, int64_t v)
{
    const wcfg_t *c = m->c;
    int64_t slide = c->kind == WIN_TUMBLING ? c->size : c->slide;
    int64_t kk = tu_floordiv(ts, slide);
    int kept = 0;

    for (; kk * slide + c->size > ts; kk--) {
        int64_t s = kk * slide;
        mwin_t *w;

        if (behind(m, s + c->size - 1 + c->late))
            continue;
        kept = 1;
        w = key_window(k, s, s + c->size);
        acc_add(w, v);
        add_and_trigger(m, k, w);
    }
    return kept ? CLS_OK : CLS_LATE;
}

static int process_session(wmodel_t *m, wkey_t *k, int64_t ts, int64_t v)
{
    const wcfg_t *c = m->c;
    mwin_t nw = {0};
    int merged = 0;
    size_t i;

    nw.s = ts;
    nw.e = ts + c->size;
    acc_add(&nw, v);
    for (i = 0; i < k->n;) {
        if (k->w[i].s <= nw.e && k->w[i].e >= nw.s) {
            acc_merge(&nw, &k->w[i]);
            k->w[i] = k->w[--k->n];
            merged = 1;
            i = 0;
            continue;
        }
        i++;
    }
    if (!merged && behind(m, nw.e - 1 + c->late))
        return CLS_LATE;
    k->w = tu_xrealloc(k->w, (k->n + 1) * sizeof(mwin_t));
    k->w[k->n] = nw;
    add_and_trigger(m, k, &k->w[k->n]);
    k->n++;
    return CLS_OK;
}

/* W moves to wm: due firings first, then state past its lateness goes. */
static void advance(wmodel_t *m, int64_t wm, int final)
{
    size_t i;
    size_t j;

    m->wm = wm;
    m->wm_set = 1;
    for (i = 0; i < m->n; i++) {
        wkey_t *k = &m->v[i];

        for (j = 0; j < k->n; j++) {
            if (k->w[j].pending && (final || behind(m, k->w[j].e - 1))) {
                emit(m, k, &k->w[j]);
                k->w[j].pending = 0;
            }
        }
        for (j = 0; j < k->n;) {
            if (final || behind(m, k->w[j].e - 1 + m->c->late))
                k->w[j] = k->w[--k->n];
            else
                j++;
        }
    }
}

/* Classifies every line (CLS_*) and collects the firings in m. */
static void run_model(wmodel_t *m, const wcfg_t *c, const tu_lines_t *in,
                      int *cls)
{
    int64_t max_ts = 0;
    long count = 0;
    size_t i;

    memset(m, 0, sizeof(*m));
    m->c = c;
    for (i = 0; i < in->n; i++) {
        char *key;
        int64_t ts;
        int64_t v;
        wkey_t *k;

        if (is_blank(&in->v[i])) {
            cls[i] = CLS_BLANK;
            continue;
        }
        if (parse_record(c, &in->v[i], &key, &ts, &v) != 0) {
            cls[i] = CLS_ERROR;
            continue;
        }
        k = model_key(m, key);
        if (c->kind == WIN_SESSION)
            cls[i] = process_session(m, k, ts, v);
        else
            cls[i] = process_fixed(m, k, ts, v);
        if (count == 0 || ts > max_ts)
            max_ts = ts;
        count++;
        if (count % c->every == 0 && (!m->wm_set || max_ts - c->bound > m->wm))
            advance(m, max_ts - c->bound, 0);
    }
    advance(m, m->wm, 1);
}

/* ------------------------------------------------------------------ */
/* Running the tool and checking its files                             */
/* ------------------------------------------------------------------ */

/* Reduces a result line of the tool to "key|start|end|value". */
static void canon_result(const wcfg_t *c, const tu_line_t *l, tu_buf_t *b)
{
    json_error_t jerr;
    json_t *o;
    json_t *key;
    json_t *s;
    json_t *e;
    json_t *v;
    char shown[256];
    char *k;

    o = json_loadb(l->p, l->len, 0, &jerr);
    key = json_object_get(o, "key");
    s = json_object_get(o, "start");
    e = json_object_get(o, "end");
    v = json_object_get(o, "value");
    if (o == NULL || !json_is_object(o) || json_object_size(o) != 4 ||
        !json_is_array(key) || (int)json_array_size(key) != c->nkeys ||
        !json_is_integer(s) || !json_is_integer(e) || !json_is_integer(v)) {
        json_decref(o);
        TU_FAIL("results.jsonl: not {\"key\":[%d values],\"start\":S,"
                "\"end\":E,\"value\":V}: '%s'",
                c->nkeys, tu_show(l->p, l->len, shown, sizeof(shown)));
    }
    k = tu_json_canon(key);
    result_text(b, k, (int64_t)json_integer_value(s),
                (int64_t)json_integer_value(e), (int64_t)json_integer_value(v));
    free(k);
    json_decref(o);
}

static void select_lines(const tu_lines_t *in, const int *cls, int which,
                         tu_lines_t *out)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < in->n; i++)
        if (cls[i] == which)
            tu_lines_push(out, in->v[i].p, in->v[i].len);
}

static void run_window(const char *bin, const char *dir, const char *input,
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
    tu_argv_add(&a, "--parallelism");
    tu_argv_addf(&a, "%d", par);
    tu_run(a.v, dir, r);
    tu_argv_free(&a);
}

static void check_tool(const char *bin, const char *dir, const char *input,
                       const wcfg_t *c, const char *const *args,
                       const tu_lines_t *in, const int *cls,
                       const tu_lines_t *want_results, int par)
{
    static const char *const side[2] = {"late.jsonl", "errors.jsonl"};
    static const int side_cls[2] = {CLS_LATE, CLS_ERROR};
    char outdir[4096];
    char name[64];
    char what[128];
    tu_run_t r;
    tu_lines_t got;
    tu_lines_t canon = {0};
    tu_buf_t b = {0};
    size_t i;
    int f;

    snprintf(name, sizeof(name), "out-p%d", par);
    tu_subdir(outdir, sizeof(outdir), dir, name);
    run_window(bin, dir, input, outdir, args, par, &r);
    tu_check_ok(&r);
    tu_run_free(&r);
    tu_read_output(&got, outdir, "results.jsonl");
    for (i = 0; i < got.n; i++) {
        canon_result(c, &got.v[i], &b);
        tu_lines_push(&canon, b.data, b.len);
    }
    tu_buf_free(&b);
    snprintf(what, sizeof(what), "P=%d results.jsonl (key|start|end|value)",
             par);
    tu_check_lines_multiset(what, &canon, want_results);
    tu_lines_free(&canon);
    tu_lines_free(&got);
    for (f = 0; f < 2; f++) {
        tu_lines_t want;

        snprintf(what, sizeof(what), "P=%d %s", par, side[f]);
        tu_read_output(&got, outdir, side[f]);
        select_lines(in, cls, side_cls[f], &want);
        if (par == 1) {
            tu_check_lines_exact(what, &got, &want);
        } else {
            tu_check_lines_multiset(what, &got, &want);
            if (side_cls[f] == CLS_LATE)
                tu_check_key_order(what, &got, &want, line_key, (void *)c);
        }
        tu_lines_free(&got);
        tu_lines_free(&want);
    }
}

/* ------------------------------------------------------------------ */
/* Hand-written cases                                                  */
/* ------------------------------------------------------------------ */

#define MAXL 40

typedef struct {
    const char *key; /* JSON text of the key array; NULL ends */
    int64_t start;
    int64_t end;
    int64_t value;
} wres_t;

typedef struct {
    const char *args[20];
    const char *lines[MAXL];
    wres_t results[MAXL];
    int late[MAXL]; /* 1-based line numbers, 0-terminated */
    int err[MAXL];
} wcase_t;

static void case_results(const wcase_t *wc, tu_lines_t *out)
{
    tu_buf_t b = {0};
    int i;

    memset(out, 0, sizeof(*out));
    for (i = 0; wc->results[i].key != NULL; i++) {
        json_error_t jerr;
        json_t *k = json_loads(wc->results[i].key, 0, &jerr);
        char *ks;

        assert_non_null(k);
        ks = tu_json_canon(k);
        result_text(&b, ks, wc->results[i].start, wc->results[i].end,
                    wc->results[i].value);
        tu_lines_push(out, b.data, b.len);
        free(ks);
        json_decref(k);
    }
    tu_buf_free(&b);
}

static void run_case(const char *name, const wcase_t *wc)
{
    char dir[4096];
    char input[4096];
    tu_lines_t in = {0};
    tu_lines_t want = {0};
    tu_buf_t text = {0};
    wmodel_t m;
    wcfg_t c;
    int cls[MAXL];
    const char *bin;
    size_t i;
    int j;

    tu_set_ctx("case %s", name);
    for (i = 0; wc->lines[i] != NULL; i++) {
        tu_lines_push_str(&in, wc->lines[i]);
        tu_buf_puts(&text, wc->lines[i]);
        tu_buf_puts(&text, "\n");
    }
    cfg_parse(&c, wc->args);
    case_results(wc, &want);
    run_model(&m, &c, &in, cls);
    for (j = 0; wc->late[j] != 0; j++)
        TU_CHECK(cls[wc->late[j] - 1] == CLS_LATE,
                 "test case and model disagree: line %d late", wc->late[j]);
    for (j = 0; wc->err[j] != 0; j++)
        TU_CHECK(cls[wc->err[j] - 1] == CLS_ERROR,
                 "test case and model disagree: line %d error", wc->err[j]);
    for (i = 0; i < in.n; i++) {
        int listed = 0;

        for (j = 0; wc->late[j] != 0; j++)
            listed |= (size_t)wc->late[j] == i + 1;
        for (j = 0; wc->err[j] != 0; j++)
            listed |= (size_t)wc->err[j] == i + 1;
        TU_CHECK(listed || cls[i] == CLS_OK || cls[i] == CLS_BLANK,
                 "test case and model disagree: line %zu", i + 1);
    }
    tu_check_lines_multiset("test case vs model results", &m.results, &want);
    model_free(&m);
    bin = tu_tool("WEIR_WINDOW_BIN");
    if (bin == NULL) {
        tu_lines_free(&in);
        tu_lines_free(&want);
        tu_buf_free(&text);
        skip();
    }
    tu_mkdtemp(dir, sizeof(dir), "window-case");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_write_file(input, text.data, text.len);
    check_tool(bin, dir, input, &c, wc->args, &in, cls, &want, 1);
    check_tool(bin, dir, input, &c, wc->args, &in, cls, &want, 3);
    tu_rmtree(dir);
    tu_lines_free(&in);
    tu_lines_free(&want);
    tu_buf_free(&text);
}

static void tumbling_count(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "tumbling:10ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":1}", "{\"id\":\"a\",\"ts\":5}",
                  "{\"id\":\"b\",\"ts\":3}",
                  "{\"id\":\"a\",\"ts\":9}", /* W:=9 fires [0,10) */
                  "{\"id\":\"a\",\"ts\":8}", /* L=0: late */
                  "{\"id\":\"a\",\"ts\":10}",
                  "{\"id\":\"a\",\"ts\":-1}", /* [-10,0): late */
                  NULL},
        .results = {{"[\"a\"]", 0, 10, 3},
                    {"[\"b\"]", 0, 10, 1},
                    {"[\"a\"]", 10, 20, 1},
                    {NULL, 0, 0, 0}},
        .late = {5, 7, 0},
        .err = {0},
    };

    (void)state;
    run_case("tumbling_count", &wc);
}

/* The input shared by the aggregate cases: records with v, records whose
 * v is missing or not an integer, and plain errors. */
#define AGG_INPUT                                                              \
    {                                                                          \
        "{\"id\":\"a\",\"ts\":1,\"v\":5}", "{\"id\":\"a\",\"ts\":2}",          \
            "{\"id\":\"a\",\"ts\":3,\"v\":\"5\"}",                             \
            "{\"id\":\"a\",\"ts\":4,\"v\":1.5}",                               \
            "{\"id\":\"a\",\"ts\":5,\"v\":null}",                              \
            "{\"id\":\"a\",\"ts\":6,\"v\":-7}", "{\"ts\":7,\"v\":1}", "nope",  \
            "{\"id\":\"b\",\"ts\":-3,\"v\":4}",                                \
            "{\"id\":\"a\",\"ts\":15,\"v\":10}",                               \
            "{\"id\":\"b\",\"ts\":-10,\"v\":-4}",                              \
            "{\"id\":\"a\",\"ts\":9,\"v\":0}",                                 \
            "{\"id\":\"a\",\"ts\":\"9\",\"v\":0}", NULL                        \
    }

#define AGG_ARGS(agg)                                                          \
    {                                                                          \
        "--key", "id", "--window", "tumbling:10ms", "--max-out-of-orderness",  \
            "1h", "--agg", agg, NULL                                           \
    }

static void agg_count(void **state)
{
    static const wcase_t wc = {
        .args = AGG_ARGS("count"),
        .lines = AGG_INPUT,
        .results = {{"[\"a\"]", 0, 10, 7},
                    {"[\"a\"]", 10, 20, 1},
                    {"[\"b\"]", -10, 0, 2},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {7, 8, 13, 0},
    };

    (void)state;
    run_case("agg_count", &wc);
}

static void agg_sum(void **state)
{
    static const wcase_t wc = {
        .args = AGG_ARGS("sum:v"),
        .lines = AGG_INPUT,
        .results = {{"[\"a\"]", 0, 10, -2},
                    {"[\"a\"]", 10, 20, 10},
                    {"[\"b\"]", -10, 0, 0},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {2, 3, 4, 5, 7, 8, 13, 0},
    };

    (void)state;
    run_case("agg_sum", &wc);
}

static void agg_min(void **state)
{
    static const wcase_t wc = {
        .args = AGG_ARGS("min:v"),
        .lines = AGG_INPUT,
        .results = {{"[\"a\"]", 0, 10, -7},
                    {"[\"a\"]", 10, 20, 10},
                    {"[\"b\"]", -10, 0, -4},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {2, 3, 4, 5, 7, 8, 13, 0},
    };

    (void)state;
    run_case("agg_min", &wc);
}

static void agg_max(void **state)
{
    static const wcase_t wc = {
        .args = AGG_ARGS("max:v"),
        .lines = AGG_INPUT,
        .results = {{"[\"a\"]", 0, 10, 5},
                    {"[\"a\"]", 10, 20, 10},
                    {"[\"b\"]", -10, 0, 4},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {2, 3, 4, 5, 7, 8, 13, 0},
    };

    (void)state;
    run_case("agg_max", &wc);
}

/* Sliding windows [k*D, k*D+S) with negative times. */
static void sliding_windows(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "sliding:10ms/5ms",
                 "--max-out-of-orderness", "1h", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":7}", "{\"id\":\"a\",\"ts\":-3}",
                  "{\"id\":\"a\",\"ts\":5}", "{\"id\":\"a\",\"ts\":10}",
                  "{\"id\":\"b\",\"ts\":0}", NULL},
        .results = {{"[\"a\"]", -10, 0, 1},
                    {"[\"a\"]", -5, 5, 1},
                    {"[\"a\"]", 0, 10, 2},
                    {"[\"a\"]", 5, 15, 3},
                    {"[\"a\"]", 10, 20, 1},
                    {"[\"b\"]", -5, 5, 1},
                    {"[\"b\"]", 0, 10, 1},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("sliding_windows", &wc);
}

/* A slide that does not divide the size. */
static void sliding_uneven(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "sliding:10ms/3ms",
                 "--max-out-of-orderness", "1h", "--agg", "sum:v", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":7,\"v\":1}",
                  "{\"id\":\"a\",\"ts\":0,\"v\":10}", NULL},
        .results = {{"[\"a\"]", -9, 1, 10},
                    {"[\"a\"]", -6, 4, 10},
                    {"[\"a\"]", -3, 7, 10},
                    {"[\"a\"]", 0, 10, 11},
                    {"[\"a\"]", 3, 13, 1},
                    {"[\"a\"]", 6, 16, 1},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("sliding_uneven", &wc);
}

/* A record is late only when none of its sliding windows is kept. */
static void sliding_partly_late(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "sliding:10ms/5ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":12}", /* [5,15), [10,20) */
                  "{\"id\":\"a\",\"ts\":14}", /* W:=14 fires [5,15) */
                  "{\"id\":\"a\",\"ts\":13}", /* only [10,20) still kept */
                  "{\"id\":\"a\",\"ts\":4}",  /* [-5,5), [0,10): both gone */
                  NULL},
        .results = {{"[\"a\"]", 5, 15, 2},
                    {"[\"a\"]", 10, 20, 3},
                    {NULL, 0, 0, 0}},
        .late = {4, 0},
        .err = {0},
    };

    (void)state;
    run_case("sliding_partly_late", &wc);
}

/* Within the allowed lateness every added record fires the window again
 * with everything it holds; end - 1 + L == W drops it. */
static void refire_within_lateness(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "tumbling:10ms",
                 "--allowed-lateness", "5ms", "--agg", "sum:v", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":1,\"v\":1}",
                  "{\"id\":\"b\",\"ts\":9,\"v\":2}",   /* W:=9: a, b fire */
                  "{\"id\":\"a\",\"ts\":3,\"v\":10}",  /* fires a again */
                  "{\"id\":\"c\",\"ts\":13,\"v\":4}",  /* W:=13 */
                  "{\"id\":\"a\",\"ts\":4,\"v\":100}", /* 9+5 > 13: again */
                  "{\"id\":\"c\",\"ts\":14,\"v\":8}",  /* W:=14 drops [0,10) */
                  "{\"id\":\"a\",\"ts\":5,\"v\":1000}",
                  "{\"id\":\"b\",\"ts\":0,\"v\":1000}", NULL},
        .results = {{"[\"a\"]", 0, 10, 1},
                    {"[\"b\"]", 0, 10, 2},
                    {"[\"a\"]", 0, 10, 11},
                    {"[\"a\"]", 0, 10, 111},
                    {"[\"c\"]", 10, 20, 12},
                    {NULL, 0, 0, 0}},
        .late = {7, 8, 0},
        .err = {0},
    };

    (void)state;
    run_case("refire_within_lateness", &wc);
}

/* A window created after W passed its end - 1 (but within lateness)
 * fires at once; end of input fires only windows with a firing due. */
static void end_of_input(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "tumbling:10ms",
                 "--allowed-lateness", "100ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":1}",
                  "{\"id\":\"a\",\"ts\":10}", /* W:=10 fires a [0,10) */
                  "{\"id\":\"a\",\"ts\":2}",  /* fires it again */
                  "{\"id\":\"b\",\"ts\":5}",  /* new window, already due */
                  NULL},
        .results = {{"[\"a\"]", 0, 10, 1},
                    {"[\"a\"]", 0, 10, 2},
                    {"[\"b\"]", 0, 10, 1},
                    {"[\"a\"]", 10, 20, 1},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("end_of_input", &wc);
}

/* Sessions: merging, firing of merged sessions, re-firing, lateness. */
static void sessions(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "session:10ms",
                 "--allowed-lateness", "20ms", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":100}", /* [100,110) */
                  "{\"id\":\"a\",\"ts\":105}", /* [100,115) */
                  "{\"id\":\"b\",\"ts\":120}", /* W:=120: a [100,115) fires */
                  "{\"id\":\"a\",\"ts\":115}", /* touches: [100,125), due 124 */
                  "{\"id\":\"b\",\"ts\":130}", /* W:=130: a [100,125) fires */
                  "{\"id\":\"a\",\"ts\":101}", /* kept, past end: fires */
                  "{\"id\":\"c\",\"ts\":50}",  /* 59+20 <= 130: late */
                  "{\"id\":\"a\",\"ts\":60}",  /* merges nothing: late */
                  "{\"id\":\"a\",\"ts\":95}",  /* touches: [95,125) fires */
                  NULL},
        .results = {{"[\"a\"]", 100, 115, 2},
                    {"[\"a\"]", 100, 125, 3},
                    {"[\"a\"]", 100, 125, 4},
                    {"[\"a\"]", 95, 125, 5},
                    {"[\"b\"]", 120, 140, 2},
                    {NULL, 0, 0, 0}},
        .late = {7, 8, 0},
        .err = {0},
    };

    (void)state;
    run_case("sessions", &wc);
}

/* A record that bridges two sessions makes them one window. */
static void session_bridge(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "session:10ms",
                 "--max-out-of-orderness", "1h", "--agg", "min:v", NULL},
        .lines = {"{\"id\":\"a\",\"ts\":0,\"v\":3}",
                  "{\"id\":\"a\",\"ts\":20,\"v\":-2}",
                  "{\"id\":\"a\",\"ts\":10,\"v\":7}",
                  "{\"id\":\"a\",\"ts\":41,\"v\":9}",
                  "{\"id\":\"a\",\"ts\":-50,\"v\":1}", NULL},
        .results = {{"[\"a\"]", 0, 30, -2},
                    {"[\"a\"]", 41, 51, 9},
                    {"[\"a\"]", -50, -40, 1},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {0},
    };

    (void)state;
    run_case("session_bridge", &wc);
}

/* The key array holds the values in --key order; keys compare by JSON
 * value. */
static void key_array_in_key_order(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "b,a", "--window", "tumbling:10ms",
                 "--max-out-of-orderness", "1h", NULL},
        .lines = {"{\"a\":\"x\",\"b\":1,\"ts\":1}",
                  "{\"b\":1,\"a\":\"x\",\"ts\":2}",
                  "{\"a\":{\"p\":1,\"q\":2},\"b\":[1],\"ts\":3}",
                  "{\"a\":{\"q\":2,\"p\":1},\"b\":[1],\"ts\":4}",
                  "{\"a\":\"\\u0078\",\"b\":1,\"ts\":5}",
                  "{\"a\":\"x\",\"b\":\"1\",\"ts\":6}",
                  "{\"a\":\"x\",\"ts\":6}", NULL},
        .results = {{"[1,\"x\"]", 0, 10, 3},
                    {"[[1],{\"p\":1,\"q\":2}]", 0, 10, 2},
                    {"[\"1\",\"x\"]", 0, 10, 1},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {7, 0},
    };

    (void)state;
    run_case("key_array_in_key_order", &wc);
}

/* W moves after every N-th non-error record; late records count. */
static void watermark_cadence(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--window", "tumbling:10ms",
                 "--watermark-every", "3", "--max-out-of-orderness", "2ms",
                 NULL},
        .lines = {"{\"id\":\"a\",\"ts\":5}", "garbage",
                  "{\"id\":\"a\",\"ts\":12}",
                  "{\"id\":\"a\",\"ts\":11}", /* 3rd: W:=10 fires [0,10) */
                  "{\"id\":\"a\",\"ts\":9}",  /* late (4th) */
                  "{\"id\":\"a\",\"ts\":19}",
                  "{\"id\":\"a\",\"ts\":30}", /* 6th: W:=28 fires [10,20) */
                  "{\"id\":\"a\",\"ts\":15}", /* late */
                  NULL},
        .results = {{"[\"a\"]", 0, 10, 1},
                    {"[\"a\"]", 10, 20, 3},
                    {"[\"a\"]", 30, 40, 1},
                    {NULL, 0, 0, 0}},
        .late = {5, 8, 0},
        .err = {2, 0},
    };

    (void)state;
    run_case("watermark_cadence", &wc);
}

static void time_field_option(void **state)
{
    static const wcase_t wc = {
        .args = {"--key", "id", "--time-field", "when", "--window",
                 "tumbling:1s", "--max-out-of-orderness", "1m", NULL},
        .lines = {"{\"id\":\"a\",\"when\":-1,\"ts\":5000}",
                  "{\"id\":\"a\",\"ts\":5}", "{\"id\":\"a\",\"when\":-1000}",
                  "{\"id\":\"a\",\"when\":999}", "{\"id\":\"a\",\"when\":1000}",
                  NULL},
        .results = {{"[\"a\"]", -1000, 0, 2},
                    {"[\"a\"]", 0, 1000, 1},
                    {"[\"a\"]", 1000, 2000, 1},
                    {NULL, 0, 0, 0}},
        .late = {0},
        .err = {2, 0},
    };

    (void)state;
    run_case("time_field_option", &wc);
}

/* ------------------------------------------------------------------ */
/* Model-based randomized tests                                        */
/* ------------------------------------------------------------------ */

typedef struct {
    uint64_t seed;
    const char *window;
    const char *agg;
    const char *bound;
    const char *late;
    const char *every;
    const char *keys;
} rcfg_t;

static void random_run(const rcfg_t *rc)
{
    static const int pars[3] = {1, 2, 4};
    const char *args[20];
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
    long long count[4] = {0};
    wmodel_t m;
    wcfg_t c;
    int *cls;
    size_t i;
    int n = 0;

    tu_set_ctx("seed=%" PRIu64 " window=%s agg=%s B=%s L=%s N=%s key=%s",
               rc->seed, rc->window, rc->agg, rc->bound, rc->late, rc->every,
               rc->keys);
    args[n++] = "--key";
    args[n++] = rc->keys;
    args[n++] = "--window";
    args[n++] = rc->window;
    args[n++] = "--agg";
    args[n++] = rc->agg;
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
    run_model(&m, &c, &in, cls);
    for (i = 0; i < in.n; i++)
        count[cls[i]]++;
    TU_CHECK(m.results.n > 100 && count[CLS_LATE] > 20 &&
                 count[CLS_ERROR] > 20 && (c.late == 0 || m.refires > 10),
             "degenerate input: %zu results, %lld late, %lld errors, "
             "%ld re-firings",
             m.results.n, count[CLS_LATE], count[CLS_ERROR], m.refires);
    bin = tu_tool("WEIR_WINDOW_BIN");
    if (bin == NULL) {
        model_free(&m);
        free(cls);
        tu_lines_free(&in);
        tu_buf_free(&text);
        skip();
    }
    tu_mkdtemp(dir, sizeof(dir), "window-random");
    tu_path(input, sizeof(input), dir, "input.jsonl");
    tu_write_file(input, text.data, text.len);
    for (i = 0; i < 3; i++)
        check_tool(bin, dir, input, &c, args, &in, cls, &m.results, pars[i]);
    tu_rmtree(dir);
    model_free(&m);
    free(cls);
    tu_lines_free(&in);
    tu_buf_free(&text);
}

static void random_tumbling(void **state)
{
    static const rcfg_t cfgs[] = {
        {4001, "tumbling:200ms", "count", "0", "0", "1", "k,g"},
        {4002, "tumbling:200ms", "sum:v", "30ms", "100ms", "5", "k,g"},
        {4003, "tumbling:70ms", "max:v", "0", "40ms", "2", "k"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
        random_run(&cfgs[i]);
}

static void random_sliding(void **state)
{
    static const rcfg_t cfgs[] = {
        {5001, "sliding:300ms/100ms", "max:v", "20ms", "50ms", "3", "k,g"},
        {5002, "sliding:250ms/100ms", "count", "0", "0", "1", "k,g"},
        {5003, "sliding:90ms/40ms", "min:v", "10ms", "30ms", "1", "k"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
        random_run(&cfgs[i]);
}

static void random_session(void **state)
{
    static const rcfg_t cfgs[] = {
        {6001, "session:40ms", "min:v", "0", "0", "1", "k,g"},
        {6002, "session:40ms", "count", "50ms", "80ms", "4", "k,g"},
        {6003, "session:15ms", "sum:v", "0", "60ms", "1", "k"},
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
        cmocka_unit_test_setup(tumbling_count, reset_ctx),
        cmocka_unit_test_setup(agg_count, reset_ctx),
        cmocka_unit_test_setup(agg_sum, reset_ctx),
        cmocka_unit_test_setup(agg_min, reset_ctx),
        cmocka_unit_test_setup(agg_max, reset_ctx),
        cmocka_unit_test_setup(sliding_windows, reset_ctx),
        cmocka_unit_test_setup(sliding_uneven, reset_ctx),
        cmocka_unit_test_setup(sliding_partly_late, reset_ctx),
        cmocka_unit_test_setup(refire_within_lateness, reset_ctx),
        cmocka_unit_test_setup(end_of_input, reset_ctx),
        cmocka_unit_test_setup(sessions, reset_ctx),
        cmocka_unit_test_setup(session_bridge, reset_ctx),
        cmocka_unit_test_setup(key_array_in_key_order, reset_ctx),
        cmocka_unit_test_setup(watermark_cadence, reset_ctx),
        cmocka_unit_test_setup(time_field_option, reset_ctx),
        cmocka_unit_test_setup(random_tumbling, reset_ctx),
        cmocka_unit_test_setup(random_sliding, reset_ctx),
        cmocka_unit_test_setup(random_session, reset_ctx),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
