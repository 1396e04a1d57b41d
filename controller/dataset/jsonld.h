/*
 * JSON-LD as DCAT publishers write it, read into a flat node map (the shape
 * of JSON-LD's own flattening, without its RDF round trip): enough of JSON-LD
 * 1.1 expansion to read a catalog whatever form it was written in. Compact
 * form with a @context (an object, or an array of them, whose terms are
 * prefixes such as dcat, dct or dcterms, terms mapping to compact or full
 * IRIs, keyword aliases, @vocab, @base, "@type": "@id" coercion) and expanded form
 * with full IRIs; nodes nested in each other or flattened (a @graph or a
 * top-level array, linked by @id); @type a string or an array; values plain
 * strings, {"@value": ...}, {"@id": ...}, @list/@set or arrays of these.
 *
 * A remote @context cannot be fetched by a pure reader: the well-known DCAT
 * context URLs (https://www.w3.org/ns/dcat.jsonld, dcat2, dcat3, http or
 * https) and the DCTERMS namespace URL (http://purl.org/dc/terms/) are
 * understood through a built-in term table of the DCAT and DCTERMS
 * vocabularies; any other remote context, a scoped context on a term and
 * @import fail closed with a message naming them. Nested @context is
 * followed to 32 levels, and a document has at most 10000 nodes.
 */
#ifndef MB_DATASET_JSONLD_H
#define MB_DATASET_JSONLD_H

#include "dataset/verdict.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define JSONLD_DCAT "http://www.w3.org/ns/dcat#"
#define JSONLD_DCT "http://purl.org/dc/terms/"
#define JSONLD_MAX_NODES 10000
#define JSONLD_MAX_CONTEXT_DEPTH 32

typedef enum {
    JSONLD_LITERAL, /* a string value: "x" or {"@value": "x"} */
    JSONLD_REF,     /* a node: {"@id": ...}, an embedded node (its id, made up when blank), or a coerced IRI */
} jsonld_kind;

typedef struct {
    jsonld_kind kind;
    char *text; /* the literal, or the node's id (as written after prefix expansion: may be relative) */
} jsonld_value;

typedef struct {
    char *iri; /* the property's full IRI */
    jsonld_value *values;
    size_t count, cap;
} jsonld_prop;

typedef struct {
    char *id;     /* "@id" after prefix expansion, or "_:mb<n>" when the node had none */
    char **types; /* full IRIs */
    size_t ntypes, captypes;
    jsonld_prop *props;
    size_t nprops, capprops;
} jsonld_node;

typedef struct {
    jsonld_node *nodes; /* one per id: the same id written twice is one node with both's properties */
    size_t count, cap;
    unsigned long blank;
} jsonld_graph;

/*
 * Reads the parsed document doc into *out. what names the document in
 * messages. 0; MB_EINVAL with msg naming what could not be read (an unknown
 * remote @context and its URL, a bad @context, too many nodes); MB_ENOMEM.
 */
int jsonld_read(jsonld_graph **out, const cJSON *doc, const char *what, char msg[DATASET_MSG_MAX]);

void jsonld_graph_free(jsonld_graph *g);

/* The node with that id, or NULL. Borrowed. */
const jsonld_node *jsonld_node_find(const jsonld_graph *g, const char *id);

/* Whether n has the type iri (a full IRI). */
bool jsonld_node_has_type(const jsonld_node *n, const char *iri);

/* The property iri (a full IRI) of n, or NULL. Borrowed. */
const jsonld_prop *jsonld_node_prop(const jsonld_node *n, const char *iri);

#endif
