/*
 * dataset/dcat over dataset/jsonld: the catalog-dcat gate on every JSON-LD
 * form a DCAT publisher writes (compact with prefixes or terms, a context
 * array, a well-known remote context, @vocab, keyword aliases, expanded,
 * flattened in a @graph or a top-level array, nested, embedded contexts,
 * @list, values plain, @value or @id, one distribution or many), and each
 * way it fails, by its message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/dcat.h"
#include "dataset/jsonld.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define A "https://store.kfm.example/processed/wells.parquet"
#define B "https://store.kfm.example/processed/wells.csv"
#define DCAT "http://www.w3.org/ns/dcat#"
#define DCT "http://purl.org/dc/terms/"
#define PREFIXES "\"@context\":{\"dcat\":\"" DCAT "\",\"dct\":\"" DCT "\"}"

static const char *spec_text = "{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"2026-03-01.1\","
                               "\"license\":\"CC-BY-4.0\",\"policyLabel\":\"public\","
                               "\"artifacts\":[{\"name\":\"p\",\"url\":\"" A "\"},{\"name\":\"c\",\"url\":\"" B "\"}],"
                               "\"catalog\":{\"dcat\":{\"url\":\"https://store.kfm.example/catalog/dcat.jsonld\"}}}";

static char msg[DATASET_MSG_MAX];
static dataset_dcat_result res;

static int judge_spec(const char *doc, const char *spec_json)
{
    cJSON *spec = cJSON_Parse(spec_json);
    int rc;
    assert_non_null(spec);
    dataset_dcat_result_free(&res);
    msg[0] = '\0';
    rc = dataset_dcat_judge(&res, doc, strlen(doc), spec, msg);
    cJSON_Delete(spec);
    return rc;
}

static int judge(const char *doc)
{
    return judge_spec(doc, spec_text);
}

static void passes(const char *doc, size_t ndownloads)
{
    int rc = judge(doc);
    if (rc != 0)
        fail_msg("expected to pass, got %d: %s\n%s", rc, msg, doc);
    assert_int_equal(res.ndownloads, ndownloads);
}

static void fails(const char *doc, const char *needle)
{
    int rc = judge(doc);
    if (rc != MB_EINVAL)
        fail_msg("expected MB_EINVAL, got %d (%s)\n%s", rc, msg, doc);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
}

static int teardown(void **state)
{
    (void)state;
    dataset_dcat_result_free(&res);
    return 0;
}

static void test_compact_nested(void **state)
{
    (void)state;
    /* one distribution as an object, @type a string, values {"@id"}, license as an SPDX URL */
    passes("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
           "\"dct:license\":{\"@id\":\"https://spdx.org/licenses/CC-BY-4.0\"},"
           "\"dcat:distribution\":{\"@type\":\"dcat:Distribution\",\"dcat:downloadURL\":{\"@id\":\"" A "\"}}}",
           1);
    assert_int_equal(res.nlicenses, 1);
    assert_string_equal(res.licenses[0], "https://spdx.org/licenses/CC-BY-4.0");
    assert_string_equal(res.downloads[0], A);
}

static void test_compact_dcterms_array(void **state)
{
    (void)state;
    /* the dcterms prefix, distributions an array, plain-string URLs, {"@value"} identifier, @type an array */
    passes("{\"@context\":{\"dcat\":\"" DCAT "\",\"dcterms\":\"" DCT "\"},\"@id\":\"#ds\","
           "\"@type\":[\"dcat:Dataset\",\"dcterms:Dataset\"],\"dcterms:identifier\":{\"@value\":\"kfm.hydrology."
           "wells\"},"
           "\"dcterms:license\":\"CC-BY-4.0\",\"dcat:distribution\":["
           "{\"dcat:downloadURL\":\"" A
           "\",\"dcterms:license\":{\"@id\":\"https://spdx.org/licenses/CC-BY-4.0.html\"}},"
           "{\"dcat:downloadURL\":[\"" B "\"]}]}",
           2);
    assert_int_equal(res.nlicenses, 2);
    assert_string_equal(res.licenses[0], "CC-BY-4.0");
    assert_string_equal(res.licenses[1], "https://spdx.org/licenses/CC-BY-4.0.html");
}

static void test_context_terms_full_iris(void **state)
{
    (void)state;
    /* terms mapped to full IRIs, coerced to @id, keyword aliases */
    passes("{\"@context\":{\"id\":\"@id\",\"type\":\"@type\",\"Dataset\":\"" DCAT "Dataset\","
           "\"identifier\":\"" DCT "identifier\","
           "\"distribution\":{\"@id\":\"" DCAT "distribution\",\"@type\":\"@id\"},"
           "\"downloadURL\":{\"@id\":\"" DCAT "downloadURL\",\"@type\":\"@id\"}},"
           "\"@graph\":[{\"id\":\"https://c.example/ds\",\"type\":\"Dataset\",\"identifier\":\"kfm.hydrology.wells\","
           "\"distribution\":[\"https://c.example/d1\",\"https://c.example/d2\"]},"
           "{\"id\":\"https://c.example/d1\",\"downloadURL\":\"" A "\"},"
           "{\"id\":\"https://c.example/d2\",\"downloadURL\":\"" B "\"}]}",
           2);
}

static void test_context_array_and_remote(void **state)
{
    (void)state;
    /* an array: the W3C DCAT context (built in) and a local object with a term of its own */
    passes("{\"@context\":[\"https://www.w3.org/ns/dcat.jsonld\",{\"kfm\":\"https://kfm.example/ns/\"}],"
           "\"type\":\"Dataset\",\"identifier\":\"kfm.hydrology.wells\",\"license\":\"https://spdx.org/licenses/"
           "CC-BY-4.0\","
           "\"kfm:owner\":\"hydrology\",\"distribution\":{\"type\":\"Distribution\",\"downloadURL\":\"" A "\"}}",
           1);
    assert_string_equal(res.licenses[0], "https://spdx.org/licenses/CC-BY-4.0");
    passes("{\"@context\":\"http://www.w3.org/ns/dcat2.jsonld\",\"@type\":\"dcat:Dataset\","
           "\"dct:identifier\":\"kfm.hydrology.wells\",\"dcat:distribution\":{\"dcat:downloadURL\":\"" A "\"}}",
           1);
}

static void test_vocab(void **state)
{
    (void)state;
    passes("{\"@context\":{\"@vocab\":\"" DCAT "\",\"dct\":\"" DCT "\","
           "\"downloadURL\":{\"@type\":\"@id\"}},\"@type\":\"Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
           "\"distribution\":{\"@type\":\"Distribution\",\"downloadURL\":\"" B "\"}}",
           1);
    assert_string_equal(res.downloads[0], B);
}

static void test_expanded_top_level_array(void **state)
{
    (void)state;
    /* expanded form as rdflib writes it without a context: full IRIs, arrays everywhere, nodes linked by @id */
    passes("[{\"@id\":\"https://c.example/d1\",\"@type\":[\"" DCAT "Distribution\"],"
           "\"" DCAT "downloadURL\":[{\"@id\":\"" A "\"}]},"
           "{\"@id\":\"https://c.example/ds\",\"@type\":[\"" DCAT "Dataset\"],"
           "\"" DCT "identifier\":[{\"@value\":\"kfm.hydrology.wells\"}],"
           "\"" DCT "license\":[{\"@id\":\"https://spdx.org/licenses/CC-BY-4.0.json\"}],"
           "\"" DCAT "distribution\":[{\"@id\":\"https://c.example/d1\"},{\"@id\":\"https://c.example/d2\"}]},"
           "{\"@id\":\"https://c.example/d2\",\"" DCAT "downloadURL\":[{\"@id\":\"" B "\"}]}]",
           2);
}

static void test_flattened_graph_and_named_graph(void **state)
{
    (void)state;
    /* compact, flattened into @graph; the dataset before or after its distributions */
    passes("{" PREFIXES
           ",\"@graph\":[{\"@id\":\"_:b0\",\"@type\":\"dcat:Distribution\",\"dcat:downloadURL\":{\"@id\":\"" B
           "\"}},{\"@id\":\"https://c.example/"
           "ds\",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
           "\"dcat:distribution\":{\"@id\":\"_:b0\"}}]}",
           1);
    /* a named graph: a top-level array holding a graph node whose @graph has the nodes */
    passes("[{\"@id\":\"https://c.example/g\",\"@graph\":[{\"@id\":\"https://c.example/ds\",\"@type\":[\"" DCAT
           "Dataset\"],\"" DCT "identifier\":[{\"@value\":\"kfm.hydrology.wells\"}],\"" DCAT
           "distribution\":[{\"@id\":\"https://c.example/d\"}]},{\"@id\":\"https://c.example/d\",\"" DCAT
           "downloadURL\":[{\"@id\":\"" A "\"}]}]}]",
           1);
}

static void test_embedded_context_list_relative(void **state)
{
    (void)state;
    /* a node with a context of its own, distributions in an @list, a relative download URL */
    passes("{\"@context\":{\"dcat\":\"" DCAT "\"},\"@type\":\"dcat:Dataset\","
           "\"@reverse\":{},\"dcat:distribution\":{\"@list\":[{\"@context\":{\"u\":{\"@id\":\"dcat:downloadURL\","
           "\"@type\":\"@id\"}},\"u\":\"../processed/wells.csv\"}]},"
           "\"http://purl.org/dc/terms/identifier\":\"kfm.hydrology.wells\"}",
           1);
    assert_string_equal(res.downloads[0], B);
}

static void test_base(void **state)
{
    (void)state;
    /* relative IRIs resolve against @base when the context sets one, else against the document's URL */
    passes("[{\"@context\":{\"@base\":\"https://store.kfm.example/processed/\",\"dcat\":\"" DCAT "\",\"dct\":\"" DCT
           "\"},\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\",\"dcat:distribution\":"
           "{\"@id\":\"#d\"}},{\"@context\":{\"@base\":\"https://store.kfm.example/processed/\"},\"@id\":\"#d\",\"" DCAT
           "downloadURL\":{\"@id\":\"wells.csv\"}}]",
           1);
    assert_string_equal(res.downloads[0], B);
    /* without it, wells.csv is the document's neighbour, not an artifact */
    fails("{\"@context\":{\"dcat\":\"" DCAT "\",\"dct\":\"" DCT "\"},\"@type\":\"dcat:Dataset\",\"dct:identifier\":"
          "\"kfm.hydrology.wells\",\"dcat:distribution\":{\"dcat:downloadURL\":{\"@id\":\"wells.csv\"}}}",
          "https://store.kfm.example/catalog/wells.csv is not among");
    /* "@base": null in a nested context: relative again */
    fails("{\"@context\":{\"@base\":\"https://store.kfm.example/processed/\",\"dcat\":\"" DCAT "\",\"dct\":\"" DCT
          "\"},\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\",\"dcat:distribution\":"
          "{\"@context\":{\"@base\":null},\"dcat:downloadURL\":{\"@id\":\"wells.csv\"}}}",
          "https://store.kfm.example/catalog/wells.csv is not among");
}

static void test_null_context_and_null_term(void **state)
{
    (void)state;
    /* "@context": null forgets the prefixes: dcat:downloadURL is then an IRI of scheme "dcat", not DCAT's */
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
          "\"dcat:distribution\":{\"@context\":null,\"dcat:downloadURL\":\"" A "\"}}",
          "has no dcat:downloadURL");
    /* a term defined as null is dropped */
    fails("{\"@context\":[\"https://www.w3.org/ns/dcat.jsonld\",{\"identifier\":null}],\"type\":\"Dataset\","
          "\"identifier\":\"kfm.hydrology.wells\",\"distribution\":{\"downloadURL\":\"" A "\"}}",
          "has no dcat:Dataset whose dct:identifier is spec.datasetID \"kfm.hydrology.wells\" (it has none)");
}

static void test_failures(void **state)
{
    (void)state;
    fails("{\"@context\":\"https://schema.org/\",\"@type\":\"Dataset\"}",
          "uses the remote @context \"https://schema.org/\", which a gate cannot fetch");
    fails("{\"@context\":[{\"dcat\":\"" DCAT "\"},\"https://example.org/ctx.jsonld\"]}",
          "remote @context \"https://example.org/ctx.jsonld\"");
    fails("{\"@context\":{\"@import\":\"https://example.org/c.jsonld\"}}", "imports the remote context");
    fails("{\"@context\":{\"d\":{\"@id\":\"" DCAT "distribution\",\"@context\":{}}}}", "scoped @context");
    fails("{\"@context\":{\"d\":5}}", "defines term \"d\" in @context as neither");
    fails("{\"@context\":5}", "@context that is neither");
    fails("\"just a string\"", "neither a JSON-LD object nor an array");
    fails("{not json", "the DCAT document is not JSON");
    fails("{" PREFIXES ",\"@type\":\"dcat:Catalog\"}", "has no node of type dcat:Dataset");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.other\"}",
          "no dcat:Dataset whose dct:identifier is spec.datasetID \"kfm.hydrology.wells\" (it has \"kfm.other\")");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\"}",
          "has no dcat:distribution");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
          "\"dcat:distribution\":{\"@id\":\"https://c.example/d\",\"dcat:accessURL\":{\"@id\":\"" A "\"}}}",
          "distribution https://c.example/d has no dcat:downloadURL");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
          "\"dcat:distribution\":{\"@id\":\"https://c.example/missing\"}}",
          "refers to the distribution https://c.example/missing but does not describe it");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
          "\"dcat:distribution\":\"https://c.example/d\"}",
          "dcat:distribution \"https://c.example/d\" is a string, not a node");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\",\"dcat:distribution\":["
          "{\"dcat:downloadURL\":\"" A "\"},{\"dcat:downloadURL\":\"https://elsewhere.example/wells.zip\"}]}",
          "dcat:downloadURL https://elsewhere.example/wells.zip is not among spec.artifacts[].url");
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.hydrology.wells\","
          "\"dcat:distribution\":{\"dcat:downloadURL\":\"bad url\"}}",
          "dcat:downloadURL \"bad url\" is not a URL");
}

static void test_spec_and_limits(void **state)
{
    (void)state;
    const char *doc = "{}";
    cJSON *spec = cJSON_Parse(spec_text);
    char *big = NULL;
    size_t n = 0, cap = 32 * (JSONLD_MAX_NODES + 2);

    assert_int_equal(judge_spec("{}", "{\"datasetID\":\"\"}"), MB_EINVAL);
    assert_non_null(strstr(msg, "spec.datasetID is empty"));
    assert_int_equal(dataset_dcat_judge(&res, doc, DATASET_DOC_MAX + 1, spec, msg), MB_EINVAL);
    assert_non_null(strstr(msg, "more than the 4 MiB"));
    dataset_dcat_result_free(&res);
    cJSON_Delete(spec);

    /* more nodes than a catalog may have */
    big = malloc(cap);
    assert_non_null(big);
    big[n++] = '[';
    for (int i = 0; i <= JSONLD_MAX_NODES; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s{\"@id\":\"_:n%d\"}", i ? "," : "", i);
    big[n++] = ']';
    big[n] = '\0';
    fails(big, "has more than 10000 nodes");
    free(big);

    /* nested contexts past the limit */
    char deep[4096] = "";
    for (int i = 0; i < JSONLD_MAX_CONTEXT_DEPTH + 1; i++)
        strcat(deep, "{\"@context\":{},\"http://x/p\":");
    strcat(deep, "1");
    for (int i = 0; i < JSONLD_MAX_CONTEXT_DEPTH + 1; i++)
        strcat(deep, "}");
    fails(deep, "nests @context more than 32 deep");
}

static void test_wrong_identifier_keeps_licenses(void **state)
{
    (void)state;
    /* the document's only dataset has another identifier: the gate fails, and its licenses still reach the
     * license gate (which judges them on their own); with two datasets, neither is taken */
    fails("{" PREFIXES ",\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.other\","
          "\"dct:license\":\"CC-BY-4.0\",\"dcat:distribution\":{\"dcat:downloadURL\":{\"@id\":\"" A "\"}}}",
          "kfm.other");
    assert_int_equal(res.nlicenses, 1);
    assert_string_equal(res.licenses[0], "CC-BY-4.0");
    dataset_dcat_result_free(&res);
    fails("{" PREFIXES ",\"@graph\":[{\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.a\","
          "\"dct:license\":\"MIT\"},{\"@type\":\"dcat:Dataset\",\"dct:identifier\":\"kfm.b\","
          "\"dct:license\":\"CC-BY-4.0\"}]}",
          "kfm.a");
    assert_int_equal(res.nlicenses, 0);
}

static void test_reader_merges_ids(void **state)
{
    (void)state;
    char m[DATASET_MSG_MAX];
    jsonld_graph *g = NULL;
    cJSON *doc = cJSON_Parse("[{\"@id\":\"https://c/x\",\"@type\":\"https://t/A\",\"https://p/q\":\"1\"},"
                             "{\"@id\":\"https://c/x\",\"@type\":[\"https://t/A\",\"https://t/B\"],\"https://p/q\":"
                             "[{\"@value\":\"2\"},{\"@id\":\"https://c/y\"},7,true,null]}]");
    assert_int_equal(jsonld_read(&g, doc, "the document", m), 0);
    assert_int_equal(g->count, 2); /* x, and y as a node referred to */
    const jsonld_node *x = jsonld_node_find(g, "https://c/x");
    assert_non_null(x);
    assert_int_equal(x->ntypes, 2);
    assert_true(jsonld_node_has_type(x, "https://t/B"));
    const jsonld_prop *q = jsonld_node_prop(x, "https://p/q");
    assert_non_null(q);
    assert_int_equal(q->count, 3);
    assert_int_equal(q->values[0].kind, JSONLD_LITERAL);
    assert_string_equal(q->values[1].text, "2");
    assert_int_equal(q->values[2].kind, JSONLD_REF);
    assert_string_equal(q->values[2].text, "https://c/y");
    assert_null(jsonld_node_prop(x, "https://p/none"));
    assert_null(jsonld_node_find(g, "https://c/none"));
    jsonld_graph_free(g);
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_compact_nested, teardown),
        cmocka_unit_test_teardown(test_compact_dcterms_array, teardown),
        cmocka_unit_test_teardown(test_context_terms_full_iris, teardown),
        cmocka_unit_test_teardown(test_context_array_and_remote, teardown),
        cmocka_unit_test_teardown(test_vocab, teardown),
        cmocka_unit_test_teardown(test_expanded_top_level_array, teardown),
        cmocka_unit_test_teardown(test_flattened_graph_and_named_graph, teardown),
        cmocka_unit_test_teardown(test_embedded_context_list_relative, teardown),
        cmocka_unit_test_teardown(test_base, teardown),
        cmocka_unit_test_teardown(test_null_context_and_null_term, teardown),
        cmocka_unit_test_teardown(test_failures, teardown),
        cmocka_unit_test_teardown(test_spec_and_limits, teardown),
        cmocka_unit_test_teardown(test_wrong_identifier_keeps_licenses, teardown),
        cmocka_unit_test(test_reader_merges_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
