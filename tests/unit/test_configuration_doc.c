/*
 * tests/unit/test_configuration_doc.c - docs/CONFIGURATION.md must hold
 * exactly the property table the library prints (weir_conf_dump_markdown),
 * so the reference cannot drift from runtime/conf_props.h.
 * Regenerate with: build/examples/example-list-config > docs/CONFIGURATION.md
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weir.h>

static char *slurp(FILE *f)
{
    size_t cap = 4096;
    size_t n = 0;
    char *buf = malloc(cap);
    size_t r;

    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    return buf;
}

static void configuration_doc_matches_table(void **unused)
{
    const char *src = getenv("WEIR_SOURCE_DIR");
    char path[4096];
    FILE *doc;
    FILE *tmp;
    char *want;
    char *have;

    (void)unused;
    assert_non_null(src);
    snprintf(path, sizeof(path), "%s/docs/CONFIGURATION.md", src);
    doc = fopen(path, "r");
    assert_non_null(doc);
    have = slurp(doc);
    fclose(doc);
    tmp = tmpfile();
    assert_non_null(tmp);
    assert_int_equal(WEIR_OK, weir_conf_dump_markdown(tmp));
    rewind(tmp);
    want = slurp(tmp);
    fclose(tmp);
    if (strstr(have, want) == NULL)
        fail_msg("docs/CONFIGURATION.md is out of date; regenerate it with "
                 "example-list-config");
    free(want);
    free(have);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(configuration_doc_matches_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
