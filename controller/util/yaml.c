/*
 * YAML to cJSON over libyaml's event API: one recursive descent per document
 * that builds cJSON nodes as events arrive, resolves plain scalars with the
 * YAML 1.2 core schema, expands aliases by copying the anchored node and
 * applies "<<" merge keys when a mapping ends. Depth and the node count after
 * alias expansion are bounded (yaml.h), so a "billion laughs" document fails
 * with a message instead of exhausting memory.
 */
#include "util/yaml.h"
#include "util/error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_NULL "tag:yaml.org,2002:null"
#define TAG_BOOL "tag:yaml.org,2002:bool"
#define TAG_INT "tag:yaml.org,2002:int"
#define TAG_FLOAT "tag:yaml.org,2002:float"
#define TAG_MERGE "tag:yaml.org,2002:merge"

typedef struct {
    char *name;
    const cJSON *node; /* borrowed: lives in the document tree or in hold */
    long nodes;        /* size of the subtree */
    int height;        /* levels of the subtree, 1 for a scalar */
} yaml_anchor;

typedef struct {
    yaml_parser_t parser;
    const char *source;
    yaml_anchor *anchors;
    size_t n_anchors;
    size_t cap_anchors;
    long nodes;  /* nodes built in the current document */
    cJSON *hold; /* merge-key values: anchors may point into them */
} yaml_ctx;

/* What one parsed node is: the tree and its shape, for the limits. */
typedef struct {
    cJSON *item;
    long nodes;
    int height;
} yaml_node;

__attribute__((format(printf, 3, 4))) static int error_at(const yaml_ctx *c, yaml_mark_t mark, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return mb_error_set(MB_EINVAL, "%s: line %zu, column %zu: %s", c->source, mark.line + 1, mark.column + 1, what);
}

static int parser_error(const yaml_ctx *c)
{
    const yaml_parser_t *p = &c->parser;
    const char *problem = p->problem ? p->problem : "unknown error";

    switch (p->error) {
    case YAML_MEMORY_ERROR: return mb_error_set(MB_ENOMEM, "%s: out of memory while parsing YAML", c->source);
    case YAML_READER_ERROR:
        return mb_error_set(MB_EINVAL, "%s: byte offset %zu: %s (YAML must be UTF-8 or UTF-16 text)", c->source,
                            p->problem_offset, problem);
    default: break;
    }
    if (p->context)
        return mb_error_set(MB_EINVAL, "%s: line %zu, column %zu: %s (%s at line %zu, column %zu)", c->source,
                            p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                            p->context_mark.line + 1, p->context_mark.column + 1);
    return mb_error_set(MB_EINVAL, "%s: line %zu, column %zu: %s", c->source, p->problem_mark.line + 1,
                        p->problem_mark.column + 1, problem);
}

static int next_event(yaml_ctx *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev))
        return parser_error(c);
    return 0;
}

static void anchors_reset(yaml_ctx *c)
{
    for (size_t i = 0; i < c->n_anchors; i++)
        free(c->anchors[i].name);
    c->n_anchors = 0;
    c->nodes = 0;
    cJSON_Delete(c->hold);
    c->hold = NULL;
}

static int anchor_add(yaml_ctx *c, const char *name, const yaml_node *n)
{
    if (c->n_anchors == c->cap_anchors) {
        size_t cap = c->cap_anchors ? c->cap_anchors * 2 : 8;
        yaml_anchor *a = realloc(c->anchors, cap * sizeof(*a));
        if (!a)
            return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
        c->anchors = a;
        c->cap_anchors = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
    c->anchors[c->n_anchors++] = (yaml_anchor){copy, n->item, n->nodes, n->height};
    return 0;
}

/* The latest definition of an anchor wins, as in YAML. */
static const yaml_anchor *anchor_find(const yaml_ctx *c, const char *name)
{
    for (size_t i = c->n_anchors; i > 0; i--)
        if (strcmp(c->anchors[i - 1].name, name) == 0)
            return &c->anchors[i - 1];
    return NULL;
}

static int count_add(yaml_ctx *c, long n, yaml_mark_t mark)
{
    if (n > MB_YAML_MAX_NODES - c->nodes)
        return error_at(c, mark, "the document expands to more than %ld nodes (too many aliases)",
                        (long)MB_YAML_MAX_NODES);
    c->nodes += n;
    return 0;
}

static long count_nodes(const cJSON *item)
{
    long n = 1;
    for (const cJSON *ch = item->child; ch; ch = ch->next)
        n += count_nodes(ch);
    return n;
}

/* Levels of the subtree, 1 for a scalar or an empty collection (as yaml_node.height counts them). */
static int tree_height(const cJSON *item)
{
    int h = 0;
    for (const cJSON *ch = item->child; ch; ch = ch->next) {
        int c = tree_height(ch);
        if (c > h)
            h = c;
    }
    return h + 1;
}

/* ---- scalars ---------------------------------------------------------- */

static bool all_digits(const char *s, const char *digits)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!strchr(digits, *s))
            return false;
    return true;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_core_float(const char *s)
{
    size_t int_digits = 0, frac_digits = 0;
    if (*s == '-' || *s == '+')
        s++;
    while (*s >= '0' && *s <= '9') {
        s++;
        int_digits++;
    }
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            s++;
            frac_digits++;
        }
        if (int_digits == 0 && frac_digits == 0)
            return false;
    } else if (int_digits == 0) {
        return false;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        if (!(*s >= '0' && *s <= '9'))
            return false;
        while (*s >= '0' && *s <= '9')
            s++;
    }
    return *s == '\0';
}

static bool is_one_of(const char *s, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(s, *words) == 0)
            return true;
    return false;
}

static bool is_core_int(const char *s)
{
    if (strncmp(s, "0o", 2) == 0)
        return all_digits(s + 2, "01234567");
    if (strncmp(s, "0x", 2) == 0)
        return all_digits(s + 2, "0123456789abcdefABCDEF");
    return all_digits((*s == '-' || *s == '+') ? s + 1 : s, "0123456789");
}

/* The core-schema value of a plain scalar; NULL only when out of memory. */
static cJSON *resolve_plain(const char *s)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *unsigned_part = (*s == '-' || *s == '+') ? s + 1 : s;

    if (is_one_of(s, nulls))
        return cJSON_CreateNull();
    if (is_one_of(s, trues))
        return cJSON_CreateTrue();
    if (is_one_of(s, falses))
        return cJSON_CreateFalse();
    if (is_core_int(s) && strncmp(s, "0o", 2) == 0)
        return cJSON_CreateNumber((double)strtoull(s + 2, NULL, 8));
    if (is_core_int(s) && strncmp(s, "0x", 2) == 0)
        return cJSON_CreateNumber((double)strtoull(s + 2, NULL, 16));
    if (is_core_int(s) || is_core_float(s))
        return cJSON_CreateNumber(strtod(s, NULL));
    if (is_one_of(unsigned_part, infs))
        return cJSON_CreateNumber(*s == '-' ? -INFINITY : INFINITY);
    if (is_one_of(s, nans))
        return cJSON_CreateNumber(NAN);
    return cJSON_CreateString(s);
}

static int parse_scalar(yaml_ctx *c, const yaml_event_t *ev, cJSON **out)
{
    const char *value = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    cJSON *item = NULL;

    if (strlen(value) != ev->data.scalar.length)
        return error_at(c, ev->start_mark, "a string contains a NUL character");

    if (tag && strcmp(tag, TAG_STR) == 0) {
        item = cJSON_CreateString(value);
    } else if (tag && (strcmp(tag, TAG_NULL) == 0 || strcmp(tag, TAG_BOOL) == 0 || strcmp(tag, TAG_INT) == 0 ||
                       strcmp(tag, TAG_FLOAT) == 0)) {
        item = resolve_plain(value);
        if (item) {
            bool ok = strcmp(tag, TAG_NULL) == 0   ? cJSON_IsNull(item)
                      : strcmp(tag, TAG_BOOL) == 0 ? cJSON_IsBool(item)
                      : strcmp(tag, TAG_INT) == 0  ? is_core_int(value)
                                                   : cJSON_IsNumber(item);
            if (!ok) {
                cJSON_Delete(item);
                return error_at(c, ev->start_mark, "\"%s\" is not a valid !!%s", value,
                                tag + strlen("tag:yaml.org,2002:"));
            }
        }
    } else if (plain && (!tag || strcmp(tag, "!") != 0)) {
        item = resolve_plain(value);
    } else {
        item = cJSON_CreateString(value);
    }
    if (!item)
        return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
    *out = item;
    return 0;
}

/* ---- collections ------------------------------------------------------ */

static int parse_node(yaml_ctx *c, yaml_event_t *ev, int depth, yaml_node *out);

static int parse_sequence(yaml_ctx *c, int depth, yaml_node *out)
{
    int err = 0;
    yaml_event_t ev;
    yaml_node child;

    for (;;) {
        if ((err = next_event(c, &ev)) < 0)
            return err;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        err = parse_node(c, &ev, depth + 1, &child);
        yaml_event_delete(&ev);
        if (err < 0)
            return err;
        cJSON_AddItemToArray(out->item, child.item);
        out->nodes += child.nodes;
        if (child.height + 1 > out->height)
            out->height = child.height + 1;
    }
}

/* One "<<" key of a mapping: its value (held in ctx->hold) and where it was. */
typedef struct {
    const cJSON *value;
    yaml_mark_t mark;
} yaml_merge;

/* Adds to out the members of src (a mapping) that out does not have yet. */
static int merge_from(yaml_ctx *c, yaml_node *out, const cJSON *src, yaml_mark_t mark)
{
    int err = 0;
    for (const cJSON *m = src->child; m; m = m->next) {
        if (cJSON_GetObjectItemCaseSensitive(out->item, m->string))
            continue;
        long n = count_nodes(m);
        if ((err = count_add(c, n, mark)) < 0)
            return err;
        cJSON *copy = cJSON_Duplicate(m, 1);
        if (!copy || !cJSON_AddItemToObject(out->item, m->string, copy)) {
            cJSON_Delete(copy);
            return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
        }
        out->nodes += n;
        /* an alias of out copies the merged members too: its depth check needs their height */
        int h = tree_height(m);
        if (h + 1 > out->height)
            out->height = h + 1;
    }
    return 0;
}

/* Explicit keys win over merged ones; among merged mappings the first wins. */
static int apply_merges(yaml_ctx *c, yaml_node *out, const yaml_merge *merges, size_t n)
{
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        const cJSON *value = merges[i].value;
        if (cJSON_IsObject(value)) {
            if ((err = merge_from(c, out, value, merges[i].mark)) < 0)
                return err;
            continue;
        }
        bool ok = cJSON_IsArray(value);
        for (const cJSON *v = ok ? value->child : NULL; v; v = v->next)
            ok = ok && cJSON_IsObject(v);
        if (!ok)
            return error_at(c, merges[i].mark, "a merge key (<<) takes a mapping or a list of mappings");
        for (const cJSON *v = value->child; v; v = v->next)
            if ((err = merge_from(c, out, v, merges[i].mark)) < 0)
                return err;
    }
    return 0;
}

/* Takes ownership of item: keeps it alive until the document ends. */
static int hold_add(yaml_ctx *c, cJSON *item)
{
    if (!c->hold && !(c->hold = cJSON_CreateArray())) {
        cJSON_Delete(item);
        return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
    }
    cJSON_AddItemToArray(c->hold, item);
    return 0;
}

static int parse_mapping(yaml_ctx *c, int depth, yaml_node *out)
{
    int err = 0;
    yaml_event_t key_ev, value_ev;
    bool have_key = false, have_value = false;
    yaml_merge *merges = NULL;
    size_t n_merges = 0;
    yaml_node child;

    for (;;) {
        if ((err = next_event(c, &key_ev)) < 0)
            goto done;
        have_key = true;
        if (key_ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (key_ev.type != YAML_SCALAR_EVENT) {
            err = error_at(c, key_ev.start_mark, "mapping keys must be scalars, not collections or aliases");
            goto done;
        }
        const char *key = (const char *)key_ev.data.scalar.value;
        const char *key_tag = (const char *)key_ev.data.scalar.tag;
        bool is_merge = strcmp(key, "<<") == 0 && ((key_ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !key_tag) ||
                                                   (key_tag && strcmp(key_tag, TAG_MERGE) == 0));
        if (strlen(key) != key_ev.data.scalar.length) {
            err = error_at(c, key_ev.start_mark, "a key contains a NUL character");
            goto done;
        }
        if (!is_merge && cJSON_GetObjectItemCaseSensitive(out->item, key)) {
            err = error_at(c, key_ev.start_mark, "duplicate key \"%s\"", key);
            goto done;
        }
        if ((err = next_event(c, &value_ev)) < 0)
            goto done;
        have_value = true;
        if ((err = parse_node(c, &value_ev, depth + 1, &child)) < 0)
            goto done;
        if (is_merge) {
            yaml_merge *grown = realloc(merges, (n_merges + 1) * sizeof(*merges));
            if (!grown) {
                cJSON_Delete(child.item);
                err = mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
                goto done;
            }
            merges = grown;
            merges[n_merges++] = (yaml_merge){child.item, key_ev.start_mark};
            /* anchors may point into the merged value: keep it until the document ends */
            if ((err = hold_add(c, child.item)) < 0)
                goto done;
        } else {
            if (!cJSON_AddItemToObject(out->item, key, child.item)) {
                cJSON_Delete(child.item);
                err = mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
                goto done;
            }
            out->nodes += child.nodes;
            if (child.height + 1 > out->height)
                out->height = child.height + 1;
        }
        yaml_event_delete(&key_ev);
        yaml_event_delete(&value_ev);
        have_key = have_value = false;
    }
    err = apply_merges(c, out, merges, n_merges);

done:
    if (have_key)
        yaml_event_delete(&key_ev);
    if (have_value)
        yaml_event_delete(&value_ev);
    free(merges);
    return err;
}

/* Builds the node that starts with ev (a scalar, alias or collection start). */
static int parse_node(yaml_ctx *c, yaml_event_t *ev, int depth, yaml_node *out)
{
    int err = 0;
    const char *anchor = NULL;
    yaml_node n = {NULL, 1, 1};

    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        const yaml_anchor *a = anchor_find(c, name);
        if (!a)
            return error_at(c, ev->start_mark, "alias *%s names no anchor defined before it", name);
        if (depth + a->height - 1 > MB_YAML_MAX_DEPTH)
            return error_at(c, ev->start_mark, "alias *%s nests the document too deeply", name);
        if ((err = count_add(c, a->nodes, ev->start_mark)) < 0)
            return err;
        if (!(n.item = cJSON_Duplicate(a->node, 1)))
            return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
        n.nodes = a->nodes;
        n.height = a->height;
        *out = n;
        return 0;
    }
    case YAML_SCALAR_EVENT:
        anchor = (const char *)ev->data.scalar.anchor;
        if ((err = count_add(c, 1, ev->start_mark)) < 0)
            return err;
        if ((err = parse_scalar(c, ev, &n.item)) < 0)
            return err;
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        anchor = (const char *)(seq ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor);
        if (depth > MB_YAML_MAX_DEPTH)
            return error_at(c, ev->start_mark, "collections nest more than %d levels deep", MB_YAML_MAX_DEPTH);
        if ((err = count_add(c, 1, ev->start_mark)) < 0)
            return err;
        if (!(n.item = seq ? cJSON_CreateArray() : cJSON_CreateObject()))
            return mb_error_set(MB_ENOMEM, "%s: out of memory", c->source);
        err = seq ? parse_sequence(c, depth, &n) : parse_mapping(c, depth, &n);
        if (err < 0) {
            cJSON_Delete(n.item);
            return err;
        }
        break;
    }
    default: return error_at(c, ev->start_mark, "unexpected YAML event");
    }
    if (anchor && (err = anchor_add(c, anchor, &n)) < 0) {
        cJSON_Delete(n.item);
        return err;
    }
    *out = n;
    return 0;
}

/* ---- documents -------------------------------------------------------- */

/*
 * Parses the next document into *out; sets *end when the stream ended
 * instead (then *out is NULL).
 */
static int parse_document(yaml_ctx *c, cJSON **out, bool *end)
{
    int err = 0;
    yaml_event_t ev;
    yaml_node root = {NULL, 0, 0};

    *out = NULL;
    *end = false;
    if ((err = next_event(c, &ev)) < 0)
        return err;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        *end = true;
        return 0;
    }
    if (ev.type != YAML_DOCUMENT_START_EVENT) {
        err = error_at(c, ev.start_mark, "expected the start of a document");
        yaml_event_delete(&ev);
        return err;
    }
    yaml_event_delete(&ev);

    if ((err = next_event(c, &ev)) < 0)
        return err;
    err = parse_node(c, &ev, 1, &root);
    yaml_event_delete(&ev);
    if (err < 0)
        goto done;

    if ((err = next_event(c, &ev)) < 0)
        goto done;
    if (ev.type != YAML_DOCUMENT_END_EVENT)
        err = error_at(c, ev.start_mark, "expected the end of the document");
    yaml_event_delete(&ev);

done:
    anchors_reset(c);
    if (err < 0) {
        cJSON_Delete(root.item);
        return err;
    }
    *out = root.item;
    return 0;
}

static int parse_stream(cJSON **out, const char *text, size_t len, const char *source_name, bool all)
{
    int err = 0;
    yaml_ctx c;
    yaml_event_t ev;
    cJSON *docs = NULL, *doc = NULL;
    bool end = false;

    *out = NULL;
    memset(&c, 0, sizeof(c));
    c.source = source_name ? source_name : "yaml";
    if (!yaml_parser_initialize(&c.parser))
        return mb_error_set(MB_ENOMEM, "%s: out of memory", c.source);
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)(text ? text : ""), text ? len : 0);

    if ((err = next_event(&c, &ev)) < 0)
        goto done;
    yaml_event_delete(&ev); /* STREAM-START */

    if (!all) {
        if ((err = parse_document(&c, &doc, &end)) < 0)
            goto done;
        if (end && !(doc = cJSON_CreateNull())) {
            err = mb_error_set(MB_ENOMEM, "%s: out of memory", c.source);
            goto done;
        }
        *out = doc;
        doc = NULL;
        goto done;
    }

    if (!(docs = cJSON_CreateArray())) {
        err = mb_error_set(MB_ENOMEM, "%s: out of memory", c.source);
        goto done;
    }
    for (;;) {
        if ((err = parse_document(&c, &doc, &end)) < 0)
            goto done;
        if (end)
            break;
        if (cJSON_IsNull(doc))
            cJSON_Delete(doc);
        else
            cJSON_AddItemToArray(docs, doc);
        doc = NULL;
    }
    *out = docs;
    docs = NULL;

done:
    cJSON_Delete(doc);
    cJSON_Delete(docs);
    anchors_reset(&c);
    free(c.anchors);
    yaml_parser_delete(&c.parser);
    return err;
}

int mb_yaml_parse(cJSON **out, const char *text, size_t len, const char *source_name)
{
    return parse_stream(out, text, len, source_name, false);
}

int mb_yaml_parse_all(cJSON **out, const char *text, size_t len, const char *source_name)
{
    return parse_stream(out, text, len, source_name, true);
}
