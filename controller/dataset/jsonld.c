/*
 * The JSON-LD reader of the DCAT gate: contexts as a chain of levels (one per
 * @context met, most recent first), IRI expansion through them, and a walk of
 * the document that puts every node object, however nested, into one node
 * map keyed by @id.
 */
#include "dataset/jsonld.h"

#include "dataset/urls.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- contexts ------------------------------------------------------------------------ */

typedef struct {
    const char *term;
    const char *iri; /* NULL: the term is defined as null (its properties are dropped) */
    bool coerce_id;  /* "@type": "@id" or "@vocab": a string value is a node reference */
} term_def;

typedef struct level {
    const struct level *parent;
    term_def *terms; /* owned definitions (their strings point into the document) */
    size_t nterms, cap;
    const term_def *builtin; /* or a built-in table */
    size_t nbuiltin;
    const char *vocab; /* "@vocab" set at this level, or NULL */
    const char *base;  /* "@base" set at this level (has_base; NULL: "@base": null) */
    bool has_base;
    bool reset; /* "@context": null: nothing above this level is visible */
    int depth;
} level;

#define DCAT_NS JSONLD_DCAT
#define DCT_NS JSONLD_DCT

/* The DCAT and DCTERMS vocabularies as a context: their usual prefixes, and the local names of the classes and
 * properties the DCAT gate reads (and a few more a catalog commonly has), IRI-valued ones coerced to @id. */
static const term_def builtin_dcat[] = {
    {"id", "@id", false},
    {"type", "@type", false},
    {"dcat", DCAT_NS, false},
    {"dct", DCT_NS, false},
    {"dcterms", DCT_NS, false},
    {"foaf", "http://xmlns.com/foaf/0.1/", false},
    {"rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#", false},
    {"rdfs", "http://www.w3.org/2000/01/rdf-schema#", false},
    {"xsd", "http://www.w3.org/2001/XMLSchema#", false},
    {"owl", "http://www.w3.org/2002/07/owl#", false},
    {"skos", "http://www.w3.org/2004/02/skos/core#", false},
    {"prov", "http://www.w3.org/ns/prov#", false},
    {"vcard", "http://www.w3.org/2006/vcard/ns#", false},
    {"odrl", "http://www.w3.org/ns/odrl/2/", false},
    {"locn", "http://www.w3.org/ns/locn#", false},
    {"adms", "http://www.w3.org/ns/adms#", false},
    {"schema", "http://schema.org/", false},
    {"Catalog", DCAT_NS "Catalog", false},
    {"Dataset", DCAT_NS "Dataset", false},
    {"Distribution", DCAT_NS "Distribution", false},
    {"DataService", DCAT_NS "DataService", false},
    {"dataset", DCAT_NS "dataset", true},
    {"distribution", DCAT_NS "distribution", true},
    {"downloadURL", DCAT_NS "downloadURL", true},
    {"accessURL", DCAT_NS "accessURL", true},
    {"mediaType", DCAT_NS "mediaType", true},
    {"byteSize", DCAT_NS "byteSize", false},
    {"keyword", DCAT_NS "keyword", false},
    {"identifier", DCT_NS "identifier", false},
    {"license", DCT_NS "license", true},
    {"title", DCT_NS "title", false},
    {"description", DCT_NS "description", false},
    {"issued", DCT_NS "issued", false},
    {"modified", DCT_NS "modified", false},
    {"publisher", DCT_NS "publisher", true},
    {"format", DCT_NS "format", true},
};

static const char *const builtin_urls[] = {
    "https://www.w3.org/ns/dcat.jsonld", "http://www.w3.org/ns/dcat.jsonld",   "https://www.w3.org/ns/dcat2.jsonld",
    "http://www.w3.org/ns/dcat2.jsonld", "https://www.w3.org/ns/dcat3.jsonld", "http://www.w3.org/ns/dcat3.jsonld",
    "http://purl.org/dc/terms/",         "https://purl.org/dc/terms/",
};

typedef struct {
    jsonld_graph *g;
    const char *what;
    char *msg;
    level **levels; /* every level made, freed at the end */
    size_t nlevels, caplevels;
} reader;

static int grow(void **items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 4;
    while (n < need)
        n *= 2;
    void *p = realloc(*items, n * size);
    if (!p)
        return MB_ENOMEM;
    *items = p;
    *cap = n;
    return 0;
}

static int new_level(level **out, reader *r, const level *parent)
{
    level *l = NULL;
    int depth = parent ? parent->depth + 1 : 1;

    *out = NULL;
    if (depth > JSONLD_MAX_CONTEXT_DEPTH)
        return dataset_fail(r->msg, MB_EINVAL, "%s nests @context more than %d deep: flatten it", r->what,
                            JSONLD_MAX_CONTEXT_DEPTH);
    if (grow((void **)&r->levels, &r->caplevels, r->nlevels + 1, sizeof(*r->levels)) < 0 ||
        !(l = calloc(1, sizeof(*l))))
        return dataset_nomem(r->msg);
    l->parent = parent;
    l->depth = depth;
    r->levels[r->nlevels++] = l;
    *out = l;
    return 0;
}

/* The definition of term visible from l (the latest one wins), or NULL. */
static const term_def *lookup(const level *l, const char *term)
{
    for (; l; l = l->parent) {
        for (size_t i = l->nterms; i-- > 0;)
            if (strcmp(l->terms[i].term, term) == 0)
                return &l->terms[i];
        for (size_t i = 0; i < l->nbuiltin; i++)
            if (strcmp(l->builtin[i].term, term) == 0)
                return &l->builtin[i];
        if (l->reset)
            break;
    }
    return NULL;
}

static const char *vocab_of(const level *l)
{
    for (; l; l = l->parent) {
        if (l->vocab)
            return l->vocab;
        if (l->reset)
            break;
    }
    return NULL;
}

/* The @base in effect, or NULL (then relative IRIs stay relative: the gate resolves them against the document's URL). */
static const char *base_of(const level *l)
{
    for (; l; l = l->parent) {
        if (l->has_base)
            return l->base;
        if (l->reset)
            break;
    }
    return NULL;
}

static char *concat(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    memcpy(s + la, b, lb + 1);
    return s;
}

/*
 * IRI expansion (JSON-LD 1.1 section 5.2): a keyword stays, a term (when
 * vocab) becomes its definition, prefix:suffix becomes the prefix's IRI +
 * suffix, a bare word gets @vocab in front (when vocab) or is resolved
 * against the context's @base (otherwise; without one it stays relative).
 * *out is NULL when the term is defined as null. 0 or MB_ENOMEM.
 */
static int expand_iri(char **out, const level *ctx, const char *s, bool vocab, int depth)
{
    const term_def *t = NULL;
    const char *colon = NULL;

    *out = NULL;
    if (s[0] == '@')
        goto copy;
    if (vocab && (t = lookup(ctx, s))) {
        if (!t->iri)
            return 0;
        if (strcmp(t->iri, s) != 0) {
            if (depth >= 8)
                goto copy; /* terms defined through each other in a cycle */
            return expand_iri(out, ctx, t->iri, true, depth + 1);
        }
        /* a term defined as itself: expanded as a compact IRI or through @vocab below */
    }
    if ((colon = strchr(s, ':'))) {
        size_t plen = (size_t)(colon - s);
        char prefix[128];
        if (plen == 1 && s[0] == '_')
            goto copy; /* a blank node identifier */
        if (colon[1] == '/' && colon[2] == '/')
            goto copy; /* an absolute IRI */
        if (plen < sizeof(prefix)) {
            memcpy(prefix, s, plen);
            prefix[plen] = '\0';
            if ((t = lookup(ctx, prefix)) && t->iri && depth < 8) {
                char *base = NULL;
                int err = expand_iri(&base, ctx, t->iri, true, depth + 1);
                if (err < 0)
                    return err;
                if (base) {
                    *out = concat(base, colon + 1);
                    free(base);
                    return *out ? 0 : MB_ENOMEM;
                }
            }
        }
        goto copy;
    }
    if (vocab && vocab_of(ctx)) {
        *out = concat(vocab_of(ctx), s);
        return *out ? 0 : MB_ENOMEM;
    }
    if (!vocab && base_of(ctx)) {
        int err = dataset_url_resolve(out, base_of(ctx), s);
        if (err == 0 || err == MB_ENOMEM)
            return err;
        mb_error_clear(); /* a base or reference that is no URL: the IRI stays as written */
    }
copy:
    *out = strdup(s);
    return *out ? 0 : MB_ENOMEM;
}

static bool builtin_url(const char *url)
{
    for (size_t i = 0; i < sizeof(builtin_urls) / sizeof(builtin_urls[0]); i++)
        if (strcmp(url, builtin_urls[i]) == 0)
            return true;
    return false;
}

static int add_term(reader *r, level *l, const char *term, const cJSON *def)
{
    term_def t = {.term = term};

    if (cJSON_IsNull(def)) {
        t.iri = NULL;
    } else if (cJSON_IsString(def)) {
        t.iri = def->valuestring;
    } else if (cJSON_IsObject(def)) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(def, "@id");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(def, "@type");
        if (cJSON_GetObjectItemCaseSensitive(def, "@context"))
            return dataset_fail(r->msg, MB_EINVAL,
                                "%s gives term \"%.100s\" a scoped @context, which the judge does not read: define "
                                "the term without one",
                                r->what, term);
        if (cJSON_GetObjectItemCaseSensitive(def, "@reverse"))
            t.iri = NULL; /* a reverse property: not read */
        else if (cJSON_IsString(id))
            t.iri = id->valuestring;
        else if (cJSON_IsNull(id))
            t.iri = NULL;
        else
            t.iri = term; /* a compact or full IRI expands itself; a bare word through @vocab */
        t.coerce_id = cJSON_IsString(type) &&
                      (!strcmp(type->valuestring, "@id") || !strcmp(type->valuestring, "@vocab"));
    } else {
        return dataset_fail(r->msg, MB_EINVAL,
                            "%s defines term \"%.100s\" in @context as neither a string, an object nor null", r->what,
                            term);
    }
    if (grow((void **)&l->terms, &l->cap, l->nterms + 1, sizeof(*l->terms)) < 0)
        return dataset_nomem(r->msg);
    l->terms[l->nterms++] = t;
    return 0;
}

/* One @context value (string, object, null or an array of them) on top of parent; *out is the new top. */
static int read_context(const level **out, reader *r, const level *parent, const cJSON *ctx)
{
    level *l = NULL;
    const cJSON *item = NULL;
    int err = 0;

    *out = parent;
    if (cJSON_IsArray(ctx)) {
        cJSON_ArrayForEach(item, ctx) {
            if ((err = read_context(out, r, *out, item)) < 0)
                return err;
        }
        return 0;
    }
    if ((err = new_level(&l, r, parent)) < 0)
        return err;
    *out = l;
    if (cJSON_IsNull(ctx)) {
        l->reset = true;
        return 0;
    }
    if (cJSON_IsString(ctx)) {
        if (!builtin_url(ctx->valuestring))
            return dataset_fail(r->msg, MB_EINVAL,
                                "%s uses the remote @context \"%.200s\", which a gate cannot fetch: inline it, or "
                                "use https://www.w3.org/ns/dcat.jsonld",
                                r->what, ctx->valuestring);
        l->builtin = builtin_dcat;
        l->nbuiltin = sizeof(builtin_dcat) / sizeof(builtin_dcat[0]);
        return 0;
    }
    if (!cJSON_IsObject(ctx))
        return dataset_fail(r->msg, MB_EINVAL, "%s has a @context that is neither an object, an array, a URL nor null",
                            r->what);
    cJSON_ArrayForEach(item, ctx) {
        const char *k = item->string;
        if (strcmp(k, "@vocab") == 0) {
            if (cJSON_IsString(item))
                l->vocab = item->valuestring;
        } else if (strcmp(k, "@base") == 0) {
            l->has_base = true;
            l->base = cJSON_IsString(item) ? item->valuestring : NULL;
        } else if (strcmp(k, "@import") == 0) {
            return dataset_fail(r->msg, MB_EINVAL,
                                "%s imports the remote context \"%.200s\" with @import, which a gate cannot fetch: "
                                "inline it",
                                r->what, cJSON_IsString(item) ? item->valuestring : "");
        } else if (k[0] == '@') {
            continue; /* @version, @language, @direction, @protected, @propagate: nothing to read */
        } else if ((err = add_term(r, l, k, item)) < 0) {
            return err;
        }
    }
    return 0;
}

/* ---- the node map ------------------------------------------------------------------------ */

static jsonld_node *node_at(const jsonld_graph *g, size_t i)
{
    return &g->nodes[i];
}

static int node_get(size_t *out, reader *r, char *id /* taken */)
{
    jsonld_graph *g = r->g;
    for (size_t i = 0; i < g->count; i++) {
        if (strcmp(g->nodes[i].id, id) == 0) {
            free(id);
            *out = i;
            return 0;
        }
    }
    if (g->count >= JSONLD_MAX_NODES) {
        free(id);
        return dataset_fail(r->msg, MB_EINVAL, "%s has more than %d nodes: split the catalog", r->what,
                            JSONLD_MAX_NODES);
    }
    if (grow((void **)&g->nodes, &g->cap, g->count + 1, sizeof(*g->nodes)) < 0) {
        free(id);
        return dataset_nomem(r->msg);
    }
    memset(&g->nodes[g->count], 0, sizeof(g->nodes[0]));
    g->nodes[g->count].id = id;
    *out = g->count++;
    return 0;
}

static int node_add_type(reader *r, size_t ni, char *iri /* taken */)
{
    jsonld_node *n = node_at(r->g, ni);
    if (jsonld_node_has_type(n, iri)) {
        free(iri);
        return 0;
    }
    if (grow((void **)&n->types, &n->captypes, n->ntypes + 1, sizeof(*n->types)) < 0) {
        free(iri);
        return dataset_nomem(r->msg);
    }
    n->types[n->ntypes++] = iri;
    return 0;
}

static int node_add_value(reader *r, size_t ni, const char *prop, jsonld_kind kind, char *text /* taken */)
{
    jsonld_node *n = node_at(r->g, ni);
    jsonld_prop *p = (jsonld_prop *)jsonld_node_prop(n, prop);

    if (!p) {
        if (grow((void **)&n->props, &n->capprops, n->nprops + 1, sizeof(*n->props)) < 0)
            goto nomem;
        p = &n->props[n->nprops];
        memset(p, 0, sizeof(*p));
        if (!(p->iri = strdup(prop)))
            goto nomem;
        n->nprops++;
    }
    if (grow((void **)&p->values, &p->cap, p->count + 1, sizeof(*p->values)) < 0)
        goto nomem;
    p->values[p->count].kind = kind;
    p->values[p->count].text = text;
    p->count++;
    return 0;
nomem:
    free(text);
    return dataset_nomem(r->msg);
}

static int walk_node(size_t *out, reader *r, const cJSON *obj, const level *ctx);

/* Adds the value v of property prop (full IRI, term definition t or NULL) to node ni. */
static int walk_value(reader *r, size_t ni, const char *prop, const term_def *t, const cJSON *v, const level *ctx)
{
    const cJSON *item = NULL;
    int err = 0;

    if (cJSON_IsString(v)) {
        char *text = NULL;
        if (t && t->coerce_id) {
            if ((err = expand_iri(&text, ctx, v->valuestring, false, 0)) < 0)
                return dataset_nomem(r->msg);
            if (!text)
                return 0;
            return node_add_value(r, ni, prop, JSONLD_REF, text);
        }
        if (!(text = strdup(v->valuestring)))
            return dataset_nomem(r->msg);
        return node_add_value(r, ni, prop, JSONLD_LITERAL, text);
    }
    if (cJSON_IsArray(v)) {
        cJSON_ArrayForEach(item, v) {
            if ((err = walk_value(r, ni, prop, t, item, ctx)) < 0)
                return err;
        }
        return 0;
    }
    if (!cJSON_IsObject(v))
        return 0; /* numbers, booleans, null: nothing the gates read */
    /* a value object, a list or set, or a node; keys may be aliases of the keywords */
    cJSON_ArrayForEach(item, v) {
        char *k = NULL;
        if (strcmp(item->string, "@context") == 0)
            continue;
        if ((err = expand_iri(&k, ctx, item->string, true, 0)) < 0)
            return dataset_nomem(r->msg);
        if (k && strcmp(k, "@value") == 0) {
            free(k);
            if (!cJSON_IsString(item))
                return 0;
            char *text = strdup(item->valuestring);
            if (!text)
                return dataset_nomem(r->msg);
            return node_add_value(r, ni, prop, JSONLD_LITERAL, text);
        }
        if (k && (strcmp(k, "@list") == 0 || strcmp(k, "@set") == 0)) {
            free(k);
            return walk_value(r, ni, prop, t, item, ctx);
        }
        free(k);
    }
    /* a node object: walked into the map, referred to by its id */
    size_t child = 0;
    char *id = NULL;
    if ((err = walk_node(&child, r, v, ctx)) < 0)
        return err;
    if (!(id = strdup(node_at(r->g, child)->id)))
        return dataset_nomem(r->msg);
    return node_add_value(r, ni, prop, JSONLD_REF, id);
}

static int walk_nodes(reader *r, const cJSON *items, const level *ctx)
{
    const cJSON *item = NULL;
    size_t ignored = 0;
    int err = 0;

    if (cJSON_IsObject(items))
        return walk_node(&ignored, r, items, ctx);
    cJSON_ArrayForEach(item, items) {
        if (cJSON_IsObject(item) && (err = walk_node(&ignored, r, item, ctx)) < 0)
            return err;
    }
    return 0;
}

static int walk_node(size_t *out, reader *r, const cJSON *obj, const level *ctx)
{
    const cJSON *item = NULL;
    char *id = NULL;
    size_t ni = 0;
    int err = 0;

    if ((item = cJSON_GetObjectItemCaseSensitive(obj, "@context")) && (err = read_context(&ctx, r, ctx, item)) < 0)
        return err;
    /* the id first: it may be written under an alias, anywhere among the keys */
    cJSON_ArrayForEach(item, obj) {
        char *k = NULL;
        if ((err = expand_iri(&k, ctx, item->string, true, 0)) < 0)
            return dataset_nomem(r->msg);
        bool is_id = k && strcmp(k, "@id") == 0 && cJSON_IsString(item);
        free(k);
        if (is_id) {
            if ((err = expand_iri(&id, ctx, item->valuestring, false, 0)) < 0)
                return dataset_nomem(r->msg);
            break;
        }
    }
    if (!id) {
        char blank[32];
        snprintf(blank, sizeof(blank), "_:mb%lu", ++r->g->blank);
        if (!(id = strdup(blank)))
            return dataset_nomem(r->msg);
    }
    if ((err = node_get(&ni, r, id)) < 0)
        return err;
    *out = ni;
    cJSON_ArrayForEach(item, obj) {
        char *k = NULL;
        const term_def *t = NULL;
        if (strcmp(item->string, "@context") == 0)
            continue;
        if ((err = expand_iri(&k, ctx, item->string, true, 0)) < 0)
            return dataset_nomem(r->msg);
        if (!k)
            continue;
        if (strcmp(k, "@type") == 0) {
            const cJSON *ty = NULL;
            const cJSON *one = cJSON_IsArray(item) ? item->child : item;
            for (ty = one; ty; ty = cJSON_IsArray(item) ? ty->next : NULL) {
                char *iri = NULL;
                if (!cJSON_IsString(ty))
                    continue;
                if ((err = expand_iri(&iri, ctx, ty->valuestring, true, 0)) < 0) {
                    free(k);
                    return dataset_nomem(r->msg);
                }
                if (iri && (err = node_add_type(r, ni, iri)) < 0) {
                    free(k);
                    return err;
                }
            }
        } else if (strcmp(k, "@graph") == 0 || strcmp(k, "@included") == 0) {
            if ((err = walk_nodes(r, item, ctx)) < 0) {
                free(k);
                return err;
            }
        } else if (k[0] != '@' && strchr(k, ':')) {
            t = lookup(ctx, item->string);
            if ((err = walk_value(r, ni, k, t, item, ctx)) < 0) {
                free(k);
                return err;
            }
        }
        /* other keywords, and keys that expand to no IRI, carry nothing (JSON-LD drops them) */
        free(k);
    }
    return 0;
}

int jsonld_read(jsonld_graph **out, const cJSON *doc, const char *what, char msg[DATASET_MSG_MAX])
{
    reader r = {.what = what, .msg = msg};
    int err = 0;

    *out = NULL;
    if (!(r.g = calloc(1, sizeof(*r.g))))
        return dataset_nomem(msg);
    if (cJSON_IsArray(doc) || cJSON_IsObject(doc))
        err = walk_nodes(&r, doc, NULL);
    else
        err = dataset_fail(msg, MB_EINVAL, "%s is neither a JSON-LD object nor an array of them", what);
    for (size_t i = 0; i < r.nlevels; i++) {
        free(r.levels[i]->terms);
        free(r.levels[i]);
    }
    free(r.levels);
    if (err < 0) {
        jsonld_graph_free(r.g);
        return err;
    }
    *out = r.g;
    return 0;
}

void jsonld_graph_free(jsonld_graph *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->count; i++) {
        jsonld_node *n = &g->nodes[i];
        for (size_t j = 0; j < n->ntypes; j++)
            free(n->types[j]);
        for (size_t j = 0; j < n->nprops; j++) {
            for (size_t k = 0; k < n->props[j].count; k++)
                free(n->props[j].values[k].text);
            free(n->props[j].values);
            free(n->props[j].iri);
        }
        free(n->types);
        free(n->props);
        free(n->id);
    }
    free(g->nodes);
    free(g);
}

const jsonld_node *jsonld_node_find(const jsonld_graph *g, const char *id)
{
    for (size_t i = 0; g && id && i < g->count; i++)
        if (strcmp(g->nodes[i].id, id) == 0)
            return &g->nodes[i];
    return NULL;
}

bool jsonld_node_has_type(const jsonld_node *n, const char *iri)
{
    for (size_t i = 0; n && i < n->ntypes; i++)
        if (strcmp(n->types[i], iri) == 0)
            return true;
    return false;
}

const jsonld_prop *jsonld_node_prop(const jsonld_node *n, const char *iri)
{
    for (size_t i = 0; n && i < n->nprops; i++)
        if (strcmp(n->props[i].iri, iri) == 0)
            return &n->props[i];
    return NULL;
}
