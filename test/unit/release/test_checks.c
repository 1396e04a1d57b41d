/*
 * The verification input a release's checks run from (release/checks.h): the
 * contract input and base URL taken from spec.verification and spec.target,
 * and the whole verify_input (owner, target Deployment, spec.membrane; a base
 * URL that cannot be formed fails every contract check with the reason).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "release/checks.h"
#include "util/error.h"
#include "util/json.h"

#include <stdlib.h>
#include <string.h>

static const char RELEASE[] =
    "{\"metadata\":{\"name\":\"kfm-api\",\"namespace\":\"kfm\"},"
    "\"spec\":{\"target\":{\"deployment\":\"kfm-api\",\"container\":\"api\"},"
    "\"verification\":{\"authSecretRef\":{\"name\":\"smoke-token\",\"key\":\"token\"},\"timeoutSeconds\":3,"
    "\"checks\":[\"health\",\"focus-ask\"],\"evidenceRefs\":[{\"type\":\"stac_item\",\"id\":\"w\"}],"
    "\"focusQuestion\":\"Why?\",\"restrictedDatasetID\":\"kfm.sacred-sites\"}}}";

static void test_from_release(void **state)
{
    (void)state;
    cJSON *rel = cJSON_Parse(RELEASE);
    contract_input in;
    char *url = NULL;

    release_contract_input(&in, rel);
    assert_int_equal(in.timeout_ms, 3000);
    assert_int_equal(cJSON_GetArraySize(in.checks), 2);
    assert_string_equal(in.focus_question, "Why?");
    assert_string_equal(in.restricted_dataset_id, "kfm.sacred-sites");
    assert_int_equal(cJSON_GetArraySize(in.evidence_refs), 1);
    assert_null(in.base_url);
    assert_null(in.token);

    assert_int_equal(release_contract_base_url(&url, rel), 0);
    assert_string_equal(url, "http://kfm-api.kfm.svc");
    free(url);
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(rel, "spec"), "verification"), "baseURL",
                            "http://kfm-api.kfm.svc:8080");
    assert_int_equal(release_contract_base_url(&url, rel), 0);
    assert_string_equal(url, "http://kfm-api.kfm.svc:8080");
    free(url);

    cJSON *bare = cJSON_Parse("{\"metadata\":{\"namespace\":\"kfm\"},\"spec\":{\"target\":{\"deployment\":\"d\"}}}");
    release_contract_input(&in, bare);
    assert_int_equal(in.timeout_ms, CONTRACT_TIMEOUT_MS_DEFAULT);
    assert_null(in.checks);
    cJSON_Delete(bare);
    bare = cJSON_Parse("{\"metadata\":{\"namespace\":\"kfm\"},\"spec\":{}}");
    assert_int_equal(release_contract_base_url(&url, bare), MB_EINVAL);
    assert_null(url);
    cJSON_Delete(bare);
    cJSON_Delete(rel);
}

static void test_verify_input(void **state)
{
    (void)state;
    release_verify_input vi;
    cJSON *rel = cJSON_Parse("{\"apiVersion\":\"governance.kfm.dev/v1alpha1\",\"metadata\":{\"name\":\"kfm-api\","
                             "\"namespace\":\"kfm\",\"uid\":\"u-1\"},\"spec\":{\"target\":{\"deployment\":\"api\"},"
                             "\"verification\":{\"baseURL\":\"http://api:8080\",\"timeoutSeconds\":7},"
                             "\"membrane\":{\"apiServiceAccount\":\"kfm-api\",\"clients\":[],\"stores\":[]}}}");
    assert_non_null(rel);
    assert_int_equal(release_verify_input_build(&vi, NULL, rel, "3f9c0a1b2c4d", "sha256:aa", 1795341600), 0);
    assert_string_equal(vi.in.owner.namespace, "kfm");
    assert_string_equal(vi.in.owner.name, "kfm-api");
    assert_string_equal(vi.in.owner.uid, "u-1");
    assert_string_equal(vi.in.owner.api_version, "governance.kfm.dev/v1alpha1");
    assert_string_equal(vi.in.release_id, "3f9c0a1b2c4d");
    assert_string_equal(vi.in.target_deployment, "api");
    assert_ptr_equal(vi.in.membrane, json_get(rel, "spec", "membrane", NULL));
    assert_string_equal(vi.in.contract.base_url, "http://api:8080");
    assert_null(vi.in.contract.token); /* no authSecretRef */
    assert_string_equal(vi.in.contract.release_id, "3f9c0a1b2c4d");
    assert_int_equal(vi.in.contract.now, 1795341600);
    assert_int_equal(vi.in.contract.timeout_ms, 7000);
    assert_null(vi.in.contract_error);
    assert_null(vi.in.published_index); /* unset: the runner reads the default, kfm-published-datasets */
    release_verify_input_clear(&vi);

    /* spec.verification.publishedIndex names the ConfigMap published-only reads */
    cJSON_AddStringToObject(cJSON_GetObjectItem(cJSON_GetObjectItem(rel, "spec"), "verification"), "publishedIndex",
                            "kfm-index");
    assert_int_equal(release_verify_input_build(&vi, NULL, rel, "3f9c0a1b2c4d", "sha256:aa", 1795341600), 0);
    assert_string_equal(vi.in.published_index, "kfm-index");
    release_verify_input_clear(&vi);

    /* no base URL can be formed: not an error, every contract check will fail saying why */
    cJSON *bare = cJSON_Parse("{\"metadata\":{\"name\":\"r\",\"namespace\":\"kfm\"},\"spec\":{}}");
    assert_int_equal(release_verify_input_build(&vi, NULL, bare, "3f9c0a1b2c4d", "sha256:aa", 0), 0);
    assert_non_null(vi.in.contract_error);
    assert_non_null(strstr(vi.in.contract_error, "the checks cannot run: the verification base URL cannot be formed"));
    assert_null(vi.in.membrane);
    release_verify_input_clear(&vi);
    cJSON_Delete(bare);
    cJSON_Delete(rel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_release),
        cmocka_unit_test(test_verify_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
