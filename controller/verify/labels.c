/*
 * Label selectors: a LabelSelector object is compiled into a list of
 * requirements (matchLabels become single-value equality requirements), its
 * kubectl-style rendering is computed once for messages, and matching walks
 * the requirements against an object of string labels. Validation follows the
 * API server's (operator set, value counts, string types) so a selector the
 * API would reject never silently matches or misses.
 */
#include "verify/labels.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { REQ_EQUALS, REQ_IN, REQ_NOT_IN, REQ_EXISTS, REQ_NOT_EXISTS } req_op;

typedef struct {
    const char *key; /* borrowed from the selector text below */
    req_op op;
    const char **values; /* borrowed */
    size_t n_values;
} req;

typedef enum { SEL_NOTHING, SEL_EVERYTHING, SEL_REQS } sel_kind;

struct labels_selector {
    sel_kind kind;
    req *reqs;
    size_t n_reqs;
    cJSON *copy; /* the selector's own copy of the JSON, so the strings stay valid */
    char *text;
};

static const char *label_get(const cJSON *labels, const char *key)
{
    const cJSON *v;
    if (!cJSON_IsObject(labels))
        return NULL;
    v = cJSON_GetObjectItemCaseSensitive(labels, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool req_matches(const req *r, const cJSON *labels)
{
    const char *have = label_get(labels, r->key);
    switch (r->op) {
    case REQ_EXISTS: return have != NULL;
    case REQ_NOT_EXISTS: return have == NULL;
    case REQ_EQUALS:
    case REQ_IN:
        if (!have)
            return false;
        for (size_t i = 0; i < r->n_values; i++)
            if (strcmp(have, r->values[i]) == 0)
                return true;
        return false;
    case REQ_NOT_IN:
        if (!have)
            return true;
        for (size_t i = 0; i < r->n_values; i++)
            if (strcmp(have, r->values[i]) == 0)
                return false;
        return true;
    }
    return false;
}

bool labels_selector_matches(const labels_selector *s, const cJSON *labels)
{
    if (!s || s->kind == SEL_NOTHING)
        return false;
    for (size_t i = 0; i < s->n_reqs; i++)
        if (!req_matches(&s->reqs[i], labels))
            return false;
    return true;
}

bool labels_selector_is_everything(const labels_selector *s)
{
    return s && s->kind == SEL_EVERYTHING;
}

bool labels_selector_is_nothing(const labels_selector *s)
{
    return !s || s->kind == SEL_NOTHING;
}

const char *labels_selector_string(const labels_selector *s)
{
    return s && s->text ? s->text : "<none>";
}

void labels_selector_free(labels_selector *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_reqs; i++)
        free(s->reqs[i].values);
    free(s->reqs);
    cJSON_Delete(s->copy);
    free(s->text);
    free(s);
}

static int render(labels_selector *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (s->kind != SEL_REQS) {
        s->text = strdup(s->kind == SEL_EVERYTHING ? "<all>" : "<none>");
        return s->text ? 0 : mb_error_set(MB_ENOMEM, "out of memory");
    }
    if (!(f = open_memstream(&buf, &len)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n_reqs; i++) {
        const req *r = &s->reqs[i];
        if (i)
            fputc(',', f);
        switch (r->op) {
        case REQ_EQUALS: fprintf(f, "%s=%s", r->key, r->values[0]); break;
        case REQ_EXISTS: fputs(r->key, f); break;
        case REQ_NOT_EXISTS: fprintf(f, "!%s", r->key); break;
        case REQ_IN:
        case REQ_NOT_IN:
            fprintf(f, "%s %s (", r->key, r->op == REQ_IN ? "in" : "notin");
            for (size_t j = 0; j < r->n_values; j++)
                fprintf(f, "%s%s", j ? "," : "", r->values[j]);
            fputc(')', f);
            break;
        }
    }
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    s->text = buf;
    return 0;
}

static int parse_op(req_op *out, const char *op)
{
    static const struct {
        const char *name;
        req_op op;
    } ops[] = {{"In", REQ_IN}, {"NotIn", REQ_NOT_IN}, {"Exists", REQ_EXISTS}, {"DoesNotExist", REQ_NOT_EXISTS}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(op, ops[i].name) == 0) {
            *out = ops[i].op;
            return 0;
        }
    }
    return -1;
}

static int parse_expression(req *r, const cJSON *e, const char *where, int idx)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(e, "key");
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(e, "operator");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(e, "values");
    const cJSON *v;
    int n;

    if (!cJSON_IsObject(e))
        return mb_error_set(MB_EINVAL, "%s.matchExpressions[%d] is not an object; write {key, operator, values}", where,
                            idx);
    if (!cJSON_IsString(key) || !key->valuestring[0])
        return mb_error_set(MB_EINVAL, "%s.matchExpressions[%d] has no key; give the label key to test", where, idx);
    if (!cJSON_IsString(op) || parse_op(&r->op, op->valuestring) < 0)
        return mb_error_set(MB_EINVAL,
                            "%s.matchExpressions[%d] (key %s) has operator %s%s%s; use In, NotIn, Exists or "
                            "DoesNotExist",
                            where, idx, key->valuestring, cJSON_IsString(op) ? "\"" : "",
                            cJSON_IsString(op) ? op->valuestring : "missing", cJSON_IsString(op) ? "\"" : "");
    r->key = key->valuestring;
    if (values && !cJSON_IsNull(values) && !cJSON_IsArray(values))
        return mb_error_set(MB_EINVAL, "%s.matchExpressions[%d] (key %s): values must be a list of strings", where, idx,
                            r->key);
    n = cJSON_IsArray(values) ? cJSON_GetArraySize(values) : 0;
    if ((r->op == REQ_IN || r->op == REQ_NOT_IN) && n == 0)
        return mb_error_set(MB_EINVAL, "%s.matchExpressions[%d] (key %s): operator %s needs at least one value", where,
                            idx, r->key, op->valuestring);
    if ((r->op == REQ_EXISTS || r->op == REQ_NOT_EXISTS) && n > 0)
        return mb_error_set(MB_EINVAL, "%s.matchExpressions[%d] (key %s): operator %s takes no values; remove them",
                            where, idx, r->key, op->valuestring);
    if (n == 0)
        return 0;
    if (!(r->values = calloc((size_t)n, sizeof(*r->values))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(v, values) {
        if (!cJSON_IsString(v))
            return mb_error_set(MB_EINVAL, "%s.matchExpressions[%d] (key %s): every value must be a string", where, idx,
                                r->key);
        r->values[r->n_values++] = v->valuestring;
    }
    return 0;
}

int labels_selector_parse(labels_selector **out, const cJSON *sel, const char *where)
{
    int err = 0;
    labels_selector *s = NULL;
    const cJSON *ml, *me, *item;
    size_t cap;

    *out = NULL;
    if (!where)
        where = "label selector";
    if (!(s = calloc(1, sizeof(*s)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (!sel || cJSON_IsNull(sel)) {
        s->kind = SEL_NOTHING;
        err = render(s);
        goto done;
    }
    if (!cJSON_IsObject(sel)) {
        err = mb_error_set(MB_EINVAL, "%s must be an object with matchLabels and/or matchExpressions", where);
        goto done;
    }
    if (!(s->copy = cJSON_Duplicate(sel, 1))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    ml = cJSON_GetObjectItemCaseSensitive(s->copy, "matchLabels");
    me = cJSON_GetObjectItemCaseSensitive(s->copy, "matchExpressions");
    if (ml && !cJSON_IsNull(ml) && !cJSON_IsObject(ml)) {
        err = mb_error_set(MB_EINVAL, "%s.matchLabels must be a map of label keys to strings", where);
        goto done;
    }
    if (me && !cJSON_IsNull(me) && !cJSON_IsArray(me)) {
        err = mb_error_set(MB_EINVAL, "%s.matchExpressions must be a list", where);
        goto done;
    }
    cap = (size_t)(cJSON_IsObject(ml) ? cJSON_GetArraySize(ml) : 0) +
          (size_t)(cJSON_IsArray(me) ? cJSON_GetArraySize(me) : 0);
    s->kind = cap ? SEL_REQS : SEL_EVERYTHING;
    if (cap && !(s->reqs = calloc(cap, sizeof(*s->reqs)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (cJSON_IsObject(ml)) {
        cJSON_ArrayForEach(item, ml) {
            req *r = &s->reqs[s->n_reqs++];
            if (!item->string[0]) {
                err = mb_error_set(MB_EINVAL, "%s.matchLabels has an empty key", where);
                goto done;
            }
            if (!cJSON_IsString(item)) {
                err = mb_error_set(MB_EINVAL, "%s.matchLabels[%s] must be a string; quote the value", where,
                                   item->string);
                goto done;
            }
            r->key = item->string;
            r->op = REQ_EQUALS;
            if (!(r->values = malloc(sizeof(*r->values)))) {
                err = mb_error_set(MB_ENOMEM, "out of memory");
                goto done;
            }
            r->values[0] = item->valuestring;
            r->n_values = 1;
        }
    }
    if (cJSON_IsArray(me)) {
        int idx = 0;
        cJSON_ArrayForEach(item, me) {
            if ((err = parse_expression(&s->reqs[s->n_reqs++], item, where, idx++)) < 0)
                goto done;
        }
    }
    err = render(s);
done:
    if (err < 0)
        labels_selector_free(s);
    else
        *out = s;
    return err;
}

int labels_selector_match(bool *out, const cJSON *sel, const cJSON *labels)
{
    labels_selector *s = NULL;
    int err = labels_selector_parse(&s, sel, NULL);
    if (err < 0)
        return err;
    *out = labels_selector_matches(s, labels);
    labels_selector_free(s);
    return 0;
}

/* Whether v is among r's values. */
static bool req_has(const req *r, const char *v)
{
    for (size_t i = 0; i < r->n_values; i++)
        if (strcmp(r->values[i], v) == 0)
            return true;
    return false;
}

/*
 * The value a hypothetical object gives key: the first value of the first
 * Equals/In requirement on it that every other requirement on the key
 * accepts, else a placeholder (for Exists, or NotIn alone); NULL when the key
 * must be absent or no value works.
 */
static const char *example_value(const labels_selector *s, const char *key, bool *absent)
{
    static const char *const placeholders[] = {LABELS_PLACEHOLDER, LABELS_PLACEHOLDER "-1", LABELS_PLACEHOLDER "-2"};
    const req *first_in = NULL;
    bool exists = false;

    *absent = false;
    for (size_t i = 0; i < s->n_reqs; i++) {
        const req *r = &s->reqs[i];
        if (strcmp(r->key, key) != 0)
            continue;
        if ((r->op == REQ_EQUALS || r->op == REQ_IN) && !first_in)
            first_in = r;
        if (r->op == REQ_EXISTS)
            exists = true;
        if (r->op == REQ_NOT_EXISTS)
            *absent = true;
    }
    if (*absent)
        return NULL;
    if (first_in) {
        for (size_t v = 0; v < first_in->n_values; v++) {
            bool ok = true;
            for (size_t i = 0; i < s->n_reqs && ok; i++) {
                const req *r = &s->reqs[i];
                if (strcmp(r->key, key) != 0)
                    continue;
                if (r->op == REQ_EQUALS || r->op == REQ_IN)
                    ok = req_has(r, first_in->values[v]);
                else if (r->op == REQ_NOT_IN)
                    ok = !req_has(r, first_in->values[v]);
            }
            if (ok)
                return first_in->values[v];
        }
        return NULL;
    }
    if (!exists)
        return NULL; /* only NotIn: absent satisfies it */
    for (size_t p = 0; p < sizeof(placeholders) / sizeof(placeholders[0]); p++) {
        bool ok = true;
        for (size_t i = 0; i < s->n_reqs && ok; i++)
            if (strcmp(s->reqs[i].key, key) == 0 && s->reqs[i].op == REQ_NOT_IN)
                ok = !req_has(&s->reqs[i], placeholders[p]);
        if (ok)
            return placeholders[p];
    }
    return NULL;
}

int labels_selector_example(cJSON **out, const labels_selector *s)
{
    cJSON *labels = NULL;
    int err = 0;

    *out = NULL;
    if (labels_selector_is_nothing(s))
        return mb_error_set(MB_EINVAL, "the selector is nil: no object matches it");
    if (!(labels = cJSON_CreateObject()))
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (size_t i = 0; i < s->n_reqs; i++) {
        const char *key = s->reqs[i].key, *value;
        bool absent;
        if (cJSON_GetObjectItemCaseSensitive(labels, key))
            continue;
        value = example_value(s, key, &absent);
        if (!value)
            continue;
        if (!cJSON_AddStringToObject(labels, key, value)) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
    }
    if (!labels_selector_matches(s, labels))
        err = mb_error_set(MB_EINVAL, "no labels can satisfy the selector %s", labels_selector_string(s));
done:
    if (err < 0)
        cJSON_Delete(labels);
    else
        *out = labels;
    return err;
}
