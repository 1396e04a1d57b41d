/*
 * dataset/stac: the catalog-stac gate (a Collection or an Item, its required
 * fields, asset hrefs relative or absolute against the artifacts), the
 * license it declares, and the links the links gate checks, resolved.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dataset/stac.h"
#include "util/error.h"

#include <string.h>

#define A "https://store.kfm.example/processed/wells/wells.parquet"
#define B "https://store.kfm.example/processed/wells/wells.csv"
#define BASE "https://store.kfm.example/catalog/wells/collection.json"

static const char *spec_text = "{\"datasetID\":\"kfm.hydrology.wells\",\"versionID\":\"1\",\"license\":\"CC-BY-4.0\","
                               "\"artifacts\":[{\"url\":\"" A "\"},{\"url\":\"" B "\"}],"
                               "\"catalog\":{\"stac\":{\"url\":\"" BASE "\"}}}";

static char msg[DATASET_MSG_MAX];
static dataset_stac_result res;

static int judge_spec(const char *doc, const char *spec_json)
{
    cJSON *spec = cJSON_Parse(spec_json);
    int rc;
    assert_non_null(spec);
    dataset_stac_result_free(&res);
    msg[0] = '\0';
    rc = dataset_stac_judge(&res, doc, strlen(doc), spec, msg);
    cJSON_Delete(spec);
    return rc;
}

static void passes(const char *doc)
{
    int rc = judge_spec(doc, spec_text);
    if (rc != 0)
        fail_msg("expected to pass, got %d: %s\n%s", rc, msg, doc);
}

static void fails_spec(const char *doc, const char *spec, const char *needle)
{
    int rc = judge_spec(doc, spec);
    if (rc != MB_EINVAL)
        fail_msg("expected MB_EINVAL, got %d (%s)\n%s", rc, msg, doc);
    if (!strstr(msg, needle))
        fail_msg("message \"%s\" does not contain \"%s\"", msg, needle);
}

static void fails(const char *doc, const char *needle)
{
    fails_spec(doc, spec_text, needle);
}

static int teardown(void **state)
{
    (void)state;
    dataset_stac_result_free(&res);
    return 0;
}

#define COLL_HEAD "{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"wells\",\"links\":[],"

static void test_collection(void **state)
{
    (void)state;
    /* relative hrefs resolve against the document's URL (RFC 3986: "..", ".", a path from the root) */
    passes(COLL_HEAD "\"license\":\"CC-BY-4.0\",\"assets\":{\"p\":{\"href\":\"../../processed/wells/wells.parquet\"},"
                     "\"c\":{\"href\":\"/processed/./wells/x/../wells.csv\"},\"a\":{\"href\":\"" A "\"}}}");
    assert_string_equal(res.license, "CC-BY-4.0");
    passes(COLL_HEAD "\"assets\":{\"p\":{\"href\":\"HTTPS://store.kfm.example/processed/wells/wells.parquet\"}}}");
    assert_null(res.license);
}

static void test_item(void **state)
{
    (void)state;
    passes(
        "{\"type\":\"Feature\",\"stac_version\":\"1.0.0\",\"id\":\"wells-1\",\"links\":[],\"geometry\":null,"
        "\"properties\":{\"datetime\":null,\"license\":\"MIT\"},\"license\":\"other\",\"assets\":{\"p\":{\"href\":\"" A
        "\"}}}");
    assert_string_equal(res.license, "MIT"); /* properties.license first */
    passes("{\"type\":\"Feature\",\"stac_version\":\"1.1.0\",\"id\":\"wells-1\",\"links\":[],\"properties\":{},"
           "\"license\":\"CC-BY-4.0\",\"assets\":{\"p\":{\"href\":\"/processed/wells/wells.csv\"}}}");
    fails("{\"type\":\"Feature\",\"stac_version\":\"1.1.0\",\"id\":\"wells-1\",\"links\":[],\"properties\":{},"
          "\"assets\":{\"p\":{\"href\":\"wells.parquet\"}}}",
          "asset \"p\" href https://store.kfm.example/catalog/wells/wells.parquet is not among spec.artifacts[].url");
}

static void test_failures(void **state)
{
    (void)state;
    fails("{\"stac_version\":\"1.1.0\",\"id\":\"x\",\"links\":[]}", "type is missing: publish a STAC Collection");
    fails("{\"type\":\"Catalog\",\"stac_version\":\"1.1.0\",\"id\":\"x\",\"links\":[]}", "type is \"Catalog\"");
    fails("{\"type\":\"Collection\",\"id\":\"x\",\"links\":[]}", "has no stac_version string");
    fails("{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"links\":[]}", "has no id string");
    fails("{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"x\"}", "has no links array");
    fails("{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"x\",\"links\":{}}", "has no links array");
    fails(COLL_HEAD "\"license\":\"CC-BY-4.0\"}", "has no assets: add each artifact");
    fails(COLL_HEAD "\"assets\":{}}", "has no assets");
    fails(COLL_HEAD "\"assets\":[]}", "assets is not an object");
    fails(COLL_HEAD "\"assets\":{\"p\":{\"type\":\"text/csv\"}}}", "asset \"p\" has no href string");
    fails(COLL_HEAD "\"assets\":{\"p\":{\"href\":\"" A "\"},\"q\":{\"href\":\"https://other.example/q.zip\"}}}",
          "asset \"q\" href https://other.example/q.zip is not among spec.artifacts[].url");
    fails(COLL_HEAD "\"assets\":{\"p\":{\"href\":\"has space\"}}}", "href \"has space\" does not resolve to a URL");
    fails_spec(COLL_HEAD "\"assets\":{\"p\":{\"href\":\"wells.csv\"}}}", "{\"artifacts\":[{\"url\":\"" B "\"}]}",
               "spec.catalog.stac.url is needed to resolve it");
    fails("[1]", "the STAC document is not a JSON object");
    fails("{", "the STAC document is not JSON");
}

static void test_links(void **state)
{
    (void)state;
    const char *doc = COLL_HEAD "\"x\":0}";
    char **links = NULL;
    const char *with_links =
        "{\"type\":\"Collection\",\"stac_version\":\"1.1.0\",\"id\":\"wells\",\"links\":["
        "{\"rel\":\"self\",\"href\":\"" BASE "\"},{\"rel\":\"root\",\"href\":\"../catalog.json\"},"
        "{\"rel\":\"parent\",\"href\":\"../catalog.json\"},{\"rel\":\"item\",\"href\":\"./items/1/item.json\"},"
        "{\"rel\":\"child\",\"href\":\"sub/collection.json\"},{\"rel\":\"license\",\"href\":\"https://spdx.org/"
        "licenses/MIT.html\"},"
        "{\"rel\":\"alternate\",\"href\":\"https://elsewhere.example/\"},{\"rel\":\"describedby\",\"href\":\"bad "
        "url\"},"
        "{\"href\":\"no-rel\"}]}";

    assert_int_equal(dataset_stac_links(&links, with_links, strlen(with_links), BASE, msg), 0);
    assert_string_equal(links[0], BASE);
    assert_string_equal(links[1], "https://store.kfm.example/catalog/catalog.json");
    assert_string_equal(links[2], "https://store.kfm.example/catalog/catalog.json");
    assert_string_equal(links[3], "https://store.kfm.example/catalog/wells/items/1/item.json");
    assert_string_equal(links[4], "https://store.kfm.example/catalog/wells/sub/collection.json");
    assert_string_equal(links[5], "https://spdx.org/licenses/MIT.html");
    assert_null(links[6]);
    dataset_stac_links_free(links);

    assert_int_equal(dataset_stac_links(&links, doc, strlen(doc), BASE, msg), 0);
    assert_null(links[0]);
    dataset_stac_links_free(links);

    const char *bad = "{\"type\":\"Feature\",\"stac_version\":\"1.1.0\",\"id\":\"i\",\"links\":[{\"rel\":\"root\"}]}";
    assert_int_equal(dataset_stac_links(&links, bad, strlen(bad), BASE, msg), MB_EINVAL);
    assert_null(links);
    assert_non_null(strstr(msg, "root link href \"\" does not resolve to a URL: set it"));
    const char *relative =
        "{\"type\":\"Feature\",\"stac_version\":\"1.1.0\",\"id\":\"i\",\"links\":[{\"rel\":\"parent\","
        "\"href\":\"../c.json\"}]}";
    assert_int_equal(dataset_stac_links(&links, relative, strlen(relative), NULL, msg), MB_EINVAL);
    assert_non_null(strstr(msg, "parent link href \"../c.json\" does not resolve"));
    assert_int_equal(dataset_stac_links(&links, "{}", 2, BASE, msg), MB_EINVAL);
    assert_non_null(strstr(msg, "type is missing"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_collection, teardown),
        cmocka_unit_test_teardown(test_item, teardown),
        cmocka_unit_test_teardown(test_failures, teardown),
        cmocka_unit_test(test_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
