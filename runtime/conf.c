/*
 * runtime/conf.c - configuration objects.
 *
 * How it works
 *   A conf is a small list of (name, value) string pairs. Known names are
 *   checked against the table in conf_props.h (shape of the value);
 *   names under "kafka." are kept unchecked for librdkafka. weir_conf_get
 *   returns the set value or the table default.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf_props.h"
#include "internal.h"

typedef struct prop {
    char *name;
    char *value;
} prop_t;

struct weir_conf_s {
    prop_t *props;
    size_t n;
};

typedef struct prop_def {
    const char *name;
    const char *dflt;
    char kind;
    const char *desc;
} prop_def_t;

static const prop_def_t prop_defs[] = {
#define XX(name, dflt, kind, desc) {name, dflt, kind, desc},
    WEIR_CONF_PROPS(XX)
#undef XX
};

#define NPROPS (sizeof(prop_defs) / sizeof(prop_defs[0]))

static const prop_def_t *find_def(const char *name)
{
    size_t i;

    for (i = 0; i < NPROPS; i++)
        if (strcmp(prop_defs[i].name, name) == 0)
            return &prop_defs[i];
    return NULL;
}

weir_conf_t *weir_conf_new(void)
{
    return weir_calloc(1, sizeof(weir_conf_t));
}

void weir_conf_destroy(weir_conf_t *conf)
{
    size_t i;

    if (conf == NULL)
        return;
    for (i = 0; i < conf->n; i++) {
        weir_free(conf->props[i].name);
        weir_free(conf->props[i].value);
    }
    weir_free(conf->props);
    weir_free(conf);
}

static int check_value(const prop_def_t *d, const char *value, char *errstr,
                       size_t errstr_size)
{
    char *end;
    long long v;

    if (d->kind == 's')
        return WEIR_OK;
    if (d->kind == 'b') {
        if (strcmp(value, "true") == 0 || strcmp(value, "false") == 0)
            return WEIR_OK;
        weir__set_errstr(errstr, errstr_size,
                         "%s: expected true or false, got \"%s\"", d->name,
                         value);
        return WEIR_EINVAL;
    }
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < 0 ||
        (d->kind == 'p' && v < 1)) {
        weir__set_errstr(errstr, errstr_size,
                         "%s: expected an integer %s, got \"%s\"", d->name,
                         d->kind == 'p' ? ">= 1" : ">= 0", value);
        return WEIR_EINVAL;
    }
    return WEIR_OK;
}

static int put(weir_conf_t *conf, const char *name, const char *value)
{
    size_t i;
    char *v = weir__strdup(value);
    prop_t *props;

    if (v == NULL)
        return WEIR_ENOMEM;
    for (i = 0; i < conf->n; i++) {
        if (strcmp(conf->props[i].name, name) == 0) {
            weir_free(conf->props[i].value);
            conf->props[i].value = v;
            return WEIR_OK;
        }
    }
    props = weir_realloc(conf->props, (conf->n + 1) * sizeof(*props));
    if (props == NULL) {
        weir_free(v);
        return WEIR_ENOMEM;
    }
    conf->props = props;
    props[conf->n].name = weir__strdup(name);
    if (props[conf->n].name == NULL) {
        weir_free(v);
        return WEIR_ENOMEM;
    }
    props[conf->n].value = v;
    conf->n++;
    return WEIR_OK;
}

int weir_conf_set(weir_conf_t *conf, const char *name, const char *value,
                  char *errstr, size_t errstr_size)
{
    const prop_def_t *d;
    int rc;

    if (conf == NULL || name == NULL || value == NULL) {
        weir__set_errstr(errstr, errstr_size,
                         "conf, name and value "
                         "must not be NULL");
        return WEIR_EINVAL;
    }
    if (strncmp(name, "kafka.", 6) != 0) {
        d = find_def(name);
        if (d == NULL) {
            weir__set_errstr(errstr, errstr_size,
                             "unknown configuration property \"%s\"", name);
            return WEIR_ENOENT;
        }
        rc = check_value(d, value, errstr, errstr_size);
        if (rc != WEIR_OK)
            return rc;
    }
    rc = put(conf, name, value);
    if (rc != WEIR_OK)
        weir__set_errstr(errstr, errstr_size, "out of memory");
    return rc;
}

const char *weir_conf_get(const weir_conf_t *conf, const char *name)
{
    const prop_def_t *d;
    size_t i;

    if (name == NULL)
        return NULL;
    for (i = 0; conf != NULL && i < conf->n; i++)
        if (strcmp(conf->props[i].name, name) == 0)
            return conf->props[i].value;
    d = find_def(name);
    return d ? d->dflt : NULL;
}

weir_conf_t *weir_conf_dup(const weir_conf_t *conf)
{
    weir_conf_t *d;
    size_t i;

    if (conf == NULL)
        return NULL;
    d = weir_conf_new();
    for (i = 0; d != NULL && i < conf->n; i++) {
        if (put(d, conf->props[i].name, conf->props[i].value) != WEIR_OK) {
            weir_conf_destroy(d);
            return NULL;
        }
    }
    return d;
}

int64_t weir__conf_i64(const weir_conf_t *conf, const char *name, int64_t dflt)
{
    const char *v = weir_conf_get(conf, name);
    char *end;
    long long x;

    if (v == NULL || *v == '\0')
        return dflt;
    x = strtoll(v, &end, 10);
    return *end == '\0' ? (int64_t)x : dflt;
}

int weir_conf_dump_markdown(void *fp)
{
    FILE *f = fp;
    size_t i;

    if (f == NULL)
        return WEIR_EINVAL;
    fprintf(f, "| property | default | description |\n|---|---|---|\n");
    for (i = 0; i < NPROPS; i++)
        fprintf(f, "| `%s` | `%s` | %s |\n", prop_defs[i].name,
                prop_defs[i].dflt, prop_defs[i].desc);
    fprintf(f, "| `kafka.*` | | Passed to librdkafka's `rd_kafka_conf_set()`"
               " without the `kafka.` prefix. |\n");
    return ferror(f) ? WEIR_EIO : WEIR_OK;
}
