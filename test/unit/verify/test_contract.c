/*
 * The governed API contract checks against the loopback replay server, which
 * answers by path: every check on canned answers (passing, and each way of
 * failing: status, malformed JSON, missing field, wrong type), timeouts and
 * refused connections, public-restriction's leaks, the headers and bodies
 * sent, that the requests are really in flight together, that results fit
 * the CRD's schema for status.verification.results, published-only's
 * verdicts from the listing and the published index, the bearer token from
 * its Secret (the inputs taken from a GovernedAPIRelease are release/checks.c's,
 * tested in test/unit/release/test_checks.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "kube/client.h"
#include "replay.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "util/yaml.h"
#include "verify/contract.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RID "3f9c0a1b2c4d"
#define TOKEN "s3cr3t-smoke-token"
#define NOW 1795341600 /* 2026-11-22T10:00:00Z */

static const char DATASETS[] =
    "{\"items\":[{\"dataset_id\":\"kfm.hydrology.wells\",\"dataset_version_id\":\"2026-03-01.1\",\"policy_label\":"
    "\"public\"},{\"dataset_id\":\"kfm.soils\",\"dataset_version_id\":\"2025-11-02.4\",\"policy_label\":\"public\"}]}";
static const char COLLECTIONS[] = "{\"collections\":[{\"id\":\"wells\",\"type\":\"Collection\"}]}";
static const char ITEMS[] =
    "{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"id\":\"wells-2026-03\"},"
    "{\"type\":\"Feature\",\"id\":\"wells-2026-04\"}]}";
static const char EVIDENCE[] = "{\"bundle\":{\"evidence\":[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"}]}}";
static const char FOCUS[] = "{\"answer\":\"Wells 12 and 14.\",\"citations\":[{\"ref\":\"stac_item:wells-2026-03\"}],"
                            "\"audit_ref\":\"sha256:9b1c\"}";
static const char LINEAGE[] = "{\"status\":\"ok\",\"edges\":12}";
/* The published index of DATASETS: DatasetPromotion's entries (canonical JSON) under each datasetID. */
#define ENTRY(id, version, label)                                                                                      \
    "{\\\"auditRef\\\":\\\"sha256:2222222222222222222222222222222222222222222222222222222222222222\\\","               \
    "\\\"catalog\\\":{\\\"dcat\\\":\\\"https://store.kfm.example/"                                                     \
    "dcat.jsonld\\\",\\\"prov\\\":\\\"\\\",\\\"stac\\\":\\\"\\\"},"                                                    \
    "\\\"datasetID\\\":\\\"" id "\\\",\\\"license\\\":\\\"CC-BY-4.0\\\",\\\"policyLabel\\\":\\\"" label                \
    "\\\",\\\"versionID\\\":\\\"" version "\\\"}"
static const char INDEX[] = "{\"kfm.hydrology.wells\":\"" ENTRY("kfm.hydrology.wells", "2026-03-01.1",
                                                                "public") "\","
                                                                          "\"kfm.soils\":\"" ENTRY("kfm.soils",
                                                                                                   "2025-11-02.4",
                                                                                                   "public") "\"}";
static const char NOT_FOUND[] = "{\"error\":{\"code\":\"not_found\",\"message\":\"dataset not found\"}}";

/* ---- helpers ------------------------------------------------------------- */

static void route(replay *r, const char *method, const char *target, int status, const char *body, int delay_ms)
{
    replay_route(r, method, target, &(replay_reply){.status = status, .body = body, .delay_ms = delay_ms});
}

/* A governed API where every check passes; routes added before win. */
static void routes_good(replay *r, int delay_ms)
{
    route(r, "GET", "/healthz", 200, "ok", delay_ms);
    route(r, "GET", "/readyz", 200, "ok", delay_ms);
    route(r, "GET", "/api/v1/datasets", 200, DATASETS, delay_ms);
    route(r, "GET", "/api/v1/stac/collections", 200, COLLECTIONS, delay_ms);
    route(r, "GET", "/api/v1/stac/items", 200, ITEMS, delay_ms);
    route(r, "POST", "/api/v1/evidence/resolve", 200, EVIDENCE, delay_ms);
    route(r, "POST", "/api/v1/focus/ask", 200, FOCUS, delay_ms);
    route(r, "GET", "/api/v1/lineage/status", 200, LINEAGE, delay_ms);
    route(r, "GET", "/api/v1/datasets/*", 404, NOT_FOUND, delay_ms);
}

typedef struct {
    cJSON *checks;
    cJSON *refs;
    cJSON *index;
    contract_input in;
} input;

/* Input for base_url running one check (or all ten with check NULL), with INDEX as the published index. */
static void input_init(input *t, const char *base_url, const char *check)
{
    memset(t, 0, sizeof(*t));
    t->refs = cJSON_Parse("[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"}]");
    t->index = cJSON_Parse(INDEX);
    assert_non_null(t->index);
    if (check) {
        t->checks = cJSON_CreateArray();
        cJSON_AddItemToArray(t->checks, cJSON_CreateString(check));
    }
    t->in = (contract_input){
        .base_url = base_url,
        .token = TOKEN,
        .timeout_ms = 5000,
        .checks = t->checks,
        .evidence_refs = t->refs,
        .focus_question = "Which wells were sampled in March 2026?",
        .restricted_dataset_id = "kfm.sacred-sites",
        .release_id = RID,
        .now = NOW,
        .published = {"kfm/kfm-published-datasets", t->index, NULL},
    };
}

static void input_clear(input *t)
{
    cJSON_Delete(t->checks);
    cJSON_Delete(t->refs);
    cJSON_Delete(t->index);
}

static cJSON *run_ok(const contract_input *in)
{
    cJSON *res = NULL;
    int err = contract_checks_run(&res, in);
    if (err < 0)
        fail_msg("contract_checks_run: %s", mb_error_last());
    assert_non_null(res);
    return res;
}

static const cJSON *result_named(const cJSON *results, const char *name)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, results) {
        if (strcmp(json_str(r, "name", NULL), name) == 0)
            return r;
    }
    fail_msg("no result for %s", name);
    return NULL;
}

static const char *trigger_of(const char *check)
{
    if (strcmp(check, "evidence-resolve") == 0)
        return "EvidenceFailure";
    if (strcmp(check, "focus-ask") == 0)
        return "UncitedAnswer";
    if (strcmp(check, "public-restriction") == 0)
        return "PolicyBypass";
    if (strcmp(check, "published-only") == 0)
        return "UnpublishedData";
    return "SmokeFailure";
}

/* Asserts one result: passed, httpStatus (0: absent), a message containing want. */
static void expect_result(const cJSON *r, const char *name, bool passed, long status, const char *want)
{
    const char *msg = json_str(r, "message", NULL);
    const cJSON *trig = cJSON_GetObjectItemCaseSensitive(r, "trigger");
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(r, "httpStatus");
    char *text = cJSON_PrintUnformatted(r);
    bool ok = strcmp(json_str(r, "name", NULL), name) == 0 && json_bool(!passed, r, "passed", NULL) == passed && msg &&
              (!want || strstr(msg, want)) &&
              (passed ? trig == NULL : (cJSON_IsString(trig) && strcmp(trig->valuestring, trigger_of(name)) == 0)) &&
              (status ? (cJSON_IsNumber(hs) && (long)hs->valuedouble == status) : hs == NULL);
    if (!ok)
        fail_msg("%s: expected passed=%d httpStatus=%ld message containing \"%s\", got %s", name, passed, status,
                 want ? want : "", text);
    free(text);
}

/* A loopback URL nobody listens on: a bound socket that never listens refuses connections. */
static int refusing_port(char *url, size_t size)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
    snprintf(url, size, "http://127.0.0.1:%u", (unsigned)ntohs(addr.sin_port));
    return fd;
}

/* ---- the CRD schema of a result ------------------------------------------- */

static cJSON *result_schema(void)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/crds/governance.kfm.dev_governedapireleases.yaml", SOURCE_DIR);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *text = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&text, &cap, '\0', f);
    fclose(f);
    assert_true(n > 0);
    cJSON *crd = NULL;
    if (mb_yaml_parse(&crd, text, (size_t)n, path) < 0)
        fail_msg("%s", mb_error_last());
    free(text);
    const cJSON *versions = json_get(crd, "spec", "versions", NULL);
    const cJSON *items = json_get(cJSON_GetArrayItem(versions, 0), "schema", "openAPIV3Schema", "properties", "status",
                                  "properties", "verification", "properties", "results", "items", NULL);
    assert_non_null(items);
    cJSON *copy = cJSON_Duplicate(items, true);
    cJSON_Delete(crd);
    return copy;
}

/* Validates one result object against the item schema (the subset it uses); fails the test with the reason. */
static void schema_validate(const cJSON *schema, const cJSON *obj)
{
    char *text = cJSON_PrintUnformatted(obj);
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(schema, "properties");
    const cJSON *req, *it;
    assert_true(cJSON_IsObject(obj));
    cJSON_ArrayForEach(req, cJSON_GetObjectItemCaseSensitive(schema, "required")) {
        if (!cJSON_GetObjectItemCaseSensitive(obj, req->valuestring))
            fail_msg("result lacks required %s: %s", req->valuestring, text);
    }
    cJSON_ArrayForEach(it, obj) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(props, it->string);
        const char *type = json_str(p, "type", NULL);
        if (!p)
            fail_msg("result has %s, which the CRD does not declare (it would be pruned): %s", it->string, text);
        if (cJSON_IsNull(it))
            fail_msg("result has %s: null: %s", it->string, text);
        if (strcmp(type, "string") == 0) {
            if (!cJSON_IsString(it))
                fail_msg("%s must be a string: %s", it->string, text);
            long long max = json_int(-1, p, "maxLength", NULL);
            if (max >= 0 && (long long)strlen(it->valuestring) > max)
                fail_msg("%s is longer than %lld: %s", it->string, max, text);
            const cJSON *en = cJSON_GetObjectItemCaseSensitive(p, "enum"), *e;
            bool found = en == NULL;
            cJSON_ArrayForEach(e, en)
                found = found || strcmp(e->valuestring, it->valuestring) == 0;
            if (!found)
                fail_msg("%s \"%s\" is not in the CRD's enum: %s", it->string, it->valuestring, text);
        } else if (strcmp(type, "boolean") == 0) {
            if (!cJSON_IsBool(it))
                fail_msg("%s must be a boolean: %s", it->string, text);
        } else if (strcmp(type, "integer") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble != (double)(long long)it->valuedouble)
                fail_msg("%s must be an integer: %s", it->string, text);
            if (cJSON_GetObjectItemCaseSensitive(p, "minimum") && it->valuedouble < json_int(0, p, "minimum", NULL))
                fail_msg("%s is below its minimum: %s", it->string, text);
            if (cJSON_GetObjectItemCaseSensitive(p, "maximum") && it->valuedouble > json_int(0, p, "maximum", NULL))
                fail_msg("%s is above its maximum: %s", it->string, text);
        } else {
            fail_msg("the test does not know schema type %s", type);
        }
    }
    free(text);
}

/* ---- tests ---------------------------------------------------------------- */

static void test_all_pass(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), NULL);
    cJSON *res = run_ok(&t.in);

    assert_int_equal(cJSON_GetArraySize(res), CONTRACT_N_CHECKS);
    for (int i = 0; i < CONTRACT_N_CHECKS; i++) /* the default order is the table's */
        assert_string_equal(json_str(cJSON_GetArrayItem(res, i), "name", NULL), contract_check_names[i]);
    expect_result(result_named(res, "health"), "health", true, 200, "answered 200");
    expect_result(result_named(res, "ready"), "ready", true, 200, "answered 200");
    expect_result(result_named(res, "datasets"), "datasets", true, 200, "200 with 2 datasets");
    expect_result(result_named(res, "stac-collections"), "stac-collections", true, 200, "200 with 1 collection");
    expect_result(result_named(res, "stac-items"), "stac-items", true, 200, "FeatureCollection with 2 features");
    expect_result(result_named(res, "evidence-resolve"), "evidence-resolve", true, 200, "1 evidence record");
    expect_result(result_named(res, "focus-ask"), "focus-ask", true, 200, "1 citation, audit_ref sha256:9b1c");
    expect_result(result_named(res, "lineage"), "lineage", true, 200, "lineage status");
    expect_result(result_named(res, "public-restriction"), "public-restriction", true, 404,
                  "both answer 404 with keys error");
    expect_result(result_named(res, "published-only"), "published-only", true, 200,
                  "200 with 2 dataset versions, every one published in ConfigMap kfm/kfm-published-datasets");
    assert_int_equal(replay_count(r), 12);

    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

static void test_order_follows_checks(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), NULL);
    t.checks = cJSON_Parse("[\"lineage\",\"health\",\"focus-ask\"]");
    t.in.checks = t.checks;
    cJSON *res = run_ok(&t.in);
    assert_int_equal(cJSON_GetArraySize(res), 3);
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 0), "name", NULL), "lineage");
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 1), "name", NULL), "health");
    assert_string_equal(json_str(cJSON_GetArrayItem(res, 2), "name", NULL), "focus-ask");
    assert_int_equal(replay_count(r), 3); /* nothing else was called */
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

static void test_headers_and_bodies(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), NULL);
    cJSON *res = run_ok(&t.in);
    size_t n = replay_count(r), public_calls = 0;
    char missing[256] = "";

    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++) {
        const replay_request *q = replay_get(r, i);
        const char *rid = replay_header(q, "X-Request-ID");
        const char *auth = replay_header(q, "Authorization");
        assert_non_null(rid);
        assert_true(strncmp(rid, RID "-", sizeof(RID)) == 0);
        const char *check = rid + sizeof(RID);
        bool authorized = strcmp(check, "health") != 0 && strcmp(check, "ready") != 0 &&
                          strcmp(check, "public-restriction") != 0;
        if (authorized) {
            assert_non_null(auth);
            assert_string_equal(auth, "Bearer " TOKEN);
        } else if (auth) {
            fail_msg("%s %s (%s) sent Authorization", q->method, q->target, check);
        }
        if (strcmp(check, "public-restriction") == 0) {
            public_calls++;
            if (strcmp(q->target, "/api/v1/datasets") != 0 &&
                strcmp(q->target, "/api/v1/datasets/kfm.sacred-sites") != 0)
                snprintf(missing, sizeof(missing), "%s", q->target);
        } else {
            static const char *const paths[][2] = {{"health", "GET /healthz"},
                                                   {"ready", "GET /readyz"},
                                                   {"datasets", "GET /api/v1/datasets"},
                                                   {"stac-collections", "GET /api/v1/stac/collections"},
                                                   {"stac-items", "GET /api/v1/stac/items"},
                                                   {"evidence-resolve", "POST /api/v1/evidence/resolve"},
                                                   {"focus-ask", "POST /api/v1/focus/ask"},
                                                   {"lineage", "GET /api/v1/lineage/status"},
                                                   {"published-only", "GET /api/v1/datasets"}};
            char got[256];
            snprintf(got, sizeof(got), "%s %s", q->method, q->target);
            bool found = false;
            for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++)
                if (strcmp(paths[k][0], check) == 0) {
                    assert_string_equal(got, paths[k][1]);
                    found = true;
                }
            assert_true(found);
        }
        if (strcmp(check, "evidence-resolve") == 0) {
            cJSON *b = cJSON_Parse(q->body);
            cJSON *want = cJSON_Parse("{\"refs\":[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"}]}");
            assert_true(cJSON_Compare(b, want, true));
            assert_string_equal(replay_header(q, "Content-Type"), "application/json");
            cJSON_Delete(b);
            cJSON_Delete(want);
        }
        if (strcmp(check, "focus-ask") == 0) {
            cJSON *b = cJSON_Parse(q->body);
            assert_string_equal(json_str(b, "question", NULL), "Which wells were sampled in March 2026?");
            assert_string_equal(json_str(b, "context", "time", NULL), "2026-11-22T10:00:00Z");
            cJSON_Delete(b);
        }
    }
    assert_int_equal(public_calls, 3);
    /* the dataset that cannot exist: the restricted id's prefix, "absent-" and 16 random hex digits */
    regex_t re;
    assert_int_equal(regcomp(&re, "^/api/v1/datasets/kfm\\.absent-[0-9a-f]{16}$", REG_EXTENDED | REG_NOSUB), 0);
    if (regexec(&re, missing, 0, NULL, 0) != 0)
        fail_msg("the missing-dataset call was %s", missing);
    regfree(&re);

    /* a second run asks for another missing id */
    cJSON *again = run_ok(&t.in);
    bool same = false;
    for (size_t i = n; i < replay_count(r); i++)
        same = same || strcmp(replay_get(r, i)->target, missing) == 0;
    assert_false(same);

    cJSON_Delete(again);
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

static void test_no_token_no_authorization(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), NULL);
    t.in.token = NULL;
    cJSON *res = run_ok(&t.in);
    for (size_t i = 0; i < replay_count(r); i++)
        assert_null(replay_header(replay_get(r, i), "Authorization"));
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

/*
 * Every reply is held back 300 ms after its request arrived. Run one after
 * another, the second request could only arrive after the first answer; run
 * together, every request arrives before the first answer goes out.
 */
static void test_concurrent(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 300);
    input_init(&t, replay_url(r), NULL);
    cJSON *res = run_ok(&t.in);
    const cJSON *it;
    cJSON_ArrayForEach(it, res)
        expect_result(it, json_str(it, "name", NULL), true,
                      strcmp(json_str(it, "name", NULL), "public-restriction") ? 200 : 404, NULL);
    size_t n = replay_count(r);
    assert_int_equal(n, 12);
    long last_arrival = 0, first_answer = -1;
    for (size_t i = 0; i < n; i++) {
        const replay_request *q = replay_get(r, i);
        assert_true(q->answered_ms > 0);
        if (q->received_ms > last_arrival)
            last_arrival = q->received_ms;
        if (first_answer < 0 || q->answered_ms < first_answer)
            first_answer = q->answered_ms;
    }
    if (last_arrival > first_answer)
        fail_msg("a request arrived %ld ms after the first answer: the checks did not run together",
                 last_arrival - first_answer);
    /* latencyMs covers the delay */
    cJSON_ArrayForEach(it, res)
        assert_true(json_int(0, it, "latencyMs", NULL) >= 300);
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

typedef struct {
    const char *check;
    const char *method, *target; /* the answer replaced */
    int status;
    const char *body;
    bool passed;
    long http_status;
    const char *message;
} judge_case;

static const judge_case cases[] = {
    {"health", "GET", "/healthz", 503, "", false, 503, "GET /healthz answered 503, expected 200"},
    {"health", "GET", "/healthz", 204, NULL, false, 204, "answered 204, expected 200"},
    {"health", "GET", "/healthz", 0, NULL, false, 0, "GET http://127.0.0.1:"}, /* closed without an answer */
    {"health", "GET", "/healthz", 0, NULL, false, 0, "/healthz failed: Empty reply from server"},
    {"ready", "GET", "/readyz", 503, "{\"reason\":\"warming up\"}", false, 503,
     "answered 503 (body: {\"reason\":\"warming up\"})"},
    {"ready", "GET", "/readyz", 200, "not json at all", true, 200, "answered 200"},

    {"datasets", "GET", "/api/v1/datasets", 401, "{\"error\":{\"code\":\"unauthorized\"}}", false, 401, "answered 401"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":[", false, 200,
     "malformed JSON (parse error near byte 10 of 10)"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":[]} x", false, 200,
     "malformed JSON (parse error near byte 14 of 14)"},
    {"datasets", "GET", "/api/v1/datasets", 200, "", false, 200, "with an empty body, expected a JSON object"},
    {"datasets", "GET", "/api/v1/datasets", 200, "[1,2]", false, 200, "with an array, expected a JSON object"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"data\":[]}", false, 200, "without the items array"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":\"none\"}", false, 200,
     "with items as a string, expected an array"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":[\"kfm.soils\"]}", false, 200,
     "items[0] is a string, expected a dataset object"},
    {"datasets", "GET", "/api/v1/datasets", 200,
     "{\"items\":[{\"dataset_id\":\"a\",\"dataset_version_id\":\"1\"},{\"dataset_id\":\"b\"}]}", false, 200,
     "items[1] has no dataset_version_id"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":[{\"dataset_id\":7,\"dataset_version_id\":\"1\"}]}", false,
     200, "items[0].dataset_id is a number, expected a non-empty string"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":[{\"dataset_id\":\"\",\"dataset_version_id\":\"1\"}]}",
     false, 200, "items[0].dataset_id is empty"},
    {"datasets", "GET", "/api/v1/datasets", 200, "{\"items\":[]}", false, 200,
     "GET /api/v1/datasets answered 200 with an empty items array: the API listed no datasets"},

    {"stac-collections", "GET", "/api/v1/stac/collections", 500, "oops", false, 500,
     "answered 500 (body: oops), expected 200"},
    {"stac-collections", "GET", "/api/v1/stac/collections", 200, "{\"collections\":{}}", false, 200,
     "collections as an object"},
    {"stac-collections", "GET", "/api/v1/stac/collections", 200, "{}", false, 200, "without the collections array"},
    {"stac-collections", "GET", "/api/v1/stac/collections", 200, "{\"collections\":[}", false, 200, "malformed JSON"},

    {"stac-items", "GET", "/api/v1/stac/items", 200, "{\"type\":\"Feature\",\"features\":[]}", false, 200,
     "type \"Feature\", expected \"FeatureCollection\""},
    {"stac-items", "GET", "/api/v1/stac/items", 200, "{\"features\":[]}", false, 200, "without type"},
    {"stac-items", "GET", "/api/v1/stac/items", 200, "{\"type\":1,\"features\":[]}", false, 200, "type as a number"},
    {"stac-items", "GET", "/api/v1/stac/items", 200, "{\"type\":\"FeatureCollection\"}", false, 200,
     "without the features array"},
    {"stac-items", "GET", "/api/v1/stac/items", 200, "{\"type\":\"FeatureCollection\",\"features\":null}", false, 200,
     "features as null"},

    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 403, "{\"error\":{\"code\":\"policy_denied\"}}", true, 403,
     "403 policy_denied"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 403, "{\"error\":{\"code\":\"forbidden\"}}", false, 403,
     "error.code \"forbidden\", expected \"policy_denied\""},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 403, "{\"message\":\"no\"}", false, 403,
     "without error.code"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 500, "{\"error\":\"db down\"}", false, 500,
     "answered 500 (body: {\"error\":\"db down\"}), expected 200 with bundle.evidence or 403"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 200, "{\"bundle\":{\"evidence\":[]}}", false, 200,
     "empty bundle.evidence"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 200, "{\"evidence\":[1]}", false, 200, "without bundle"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 200, "{\"bundle\":{}}", false, 200,
     "without bundle.evidence"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 200, "{\"bundle\":{\"evidence\":\"x\"}}", false, 200,
     "bundle.evidence as a string"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 200, "{\"bundle\":[]}", false, 200, "bundle as an array"},
    {"evidence-resolve", "POST", "/api/v1/evidence/resolve", 200, "{\"bundle\":", false, 200, "malformed JSON"},

    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"answer\":\"x\",\"audit_ref\":\"sha256:1\"}", false, 200,
     "answer has no citations and did not abstain"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200,
     "{\"answer\":\"x\",\"citations\":[],\"abstained\":false,\"audit_ref\":\"sha256:1\"}", false, 200,
     "answer has no citations and did not abstain"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200,
     "{\"citations\":[],\"abstained\":\"true\",\"audit_ref\":\"sha256:1\"}", false, 200, "did not abstain"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":\"[1]\",\"audit_ref\":\"sha256:1\"}", false, 200,
     "citations as a string, not an array"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"abstained\":true,\"audit_ref\":\"sha256:2\"}", true, 200,
     "abstained, audit_ref sha256:2"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[null],\"audit_ref\":\"sha256:1\"}", false, 200,
     "answer has citations[0] as null, expected a non-empty string or object naming a source, and did not abstain"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[\"\"],\"audit_ref\":\"sha256:1\"}", false, 200,
     "citations[0] as an empty string, expected"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[{}],\"audit_ref\":\"sha256:1\"}", false, 200,
     "citations[0] as an empty object, expected"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[1],\"audit_ref\":\"sha256:1\"}", false, 200,
     "citations[0] as a number, expected"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[[]],\"audit_ref\":\"sha256:1\"}", false, 200,
     "citations[0] as an array, expected"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200,
     "{\"citations\":[\"stac_item:a\",{\"ref\":\"b\"},true],\"abstained\":false,"
     "\"audit_ref\":\"sha256:1\"}",
     false, 200, "citations[2] as a boolean, expected"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[null],\"audit_ref\":5}", false, 200,
     "citations[0] as null, expected a non-empty string or object naming a source, and did not abstain, and it has "
     "audit_ref as a number"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200,
     "{\"citations\":[\"stac_item:a\",{\"ref\":\"b\"}],\"audit_ref\":\"sha256:3\"}", true, 200,
     "200 with 2 citations, audit_ref sha256:3"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200,
     "{\"citations\":[null,{}],\"abstained\":true,\"audit_ref\":\"sha256:4\"}", true, 200,
     "abstained, audit_ref sha256:4"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[{\"ref\":\"a\"}]}", false, 200,
     "answer has no audit_ref"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[{\"ref\":\"a\"}],\"audit_ref\":\"\"}", false, 200,
     "answer has an empty audit_ref"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"citations\":[{\"ref\":\"a\"}],\"audit_ref\":5}", false, 200,
     "audit_ref as a number"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{\"answer\":\"x\"}", false, 200,
     "no citations and did not abstain, and it has no audit_ref"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 502, "", false, 502, "answered 502, expected 200"},
    {"focus-ask", "POST", "/api/v1/focus/ask", 200, "{'citations':[]}", false, 200, "malformed JSON"},

    {"lineage", "GET", "/api/v1/lineage/status", 404, "{\"error\":\"no\"}", true, 404, "not implemented"},
    {"lineage", "GET", "/api/v1/lineage/status", 500, "", false, 500,
     "answered 500, expected 200 (or 404: not implemented)"},
    {"lineage", "GET", "/api/v1/lineage/status", 200, "[]", false, 200, "with an array, expected a JSON object"},
    {"lineage", "GET", "/api/v1/lineage/status", 200, "{\"status\":", false, 200, "malformed JSON"},

    {"public-restriction", "GET", "/api/v1/datasets", 401, "{\"error\":{\"code\":\"unauthorized\"}}", false, 401,
     "without credentials answered 401 (body: {\"error\":{\"code\":\"unauthorized\"}}), expected 200 with the public "
     "listing"},
    {"public-restriction", "GET", "/api/v1/datasets", 200,
     "{\"items\":[{\"dataset_id\":\"kfm.soils\",\"policy_label\":\"public\"},"
     "{\"dataset_id\":\"kfm.sacred-sites\",\"policy_label\":\"restricted\"}]}",
     false, 200, "shows kfm.sacred-sites with policy_label \"restricted\""},
    {"public-restriction", "GET", "/api/v1/datasets", 200, "{\"items\":[{\"dataset_id\":\"kfm.graves\"}]}", false, 200,
     "shows kfm.graves without a policy_label"},
    {"public-restriction", "GET", "/api/v1/datasets", 200, "{\"items\":[{\"policy_label\":\"sensitive\"}]}", false, 200,
     "shows items[0] with policy_label \"sensitive\""},
    {"public-restriction", "GET", "/api/v1/datasets", 200, "{\"items\":[{\"dataset_id\":\"x\",\"policy_label\":true}]}",
     false, 200, "policy_label as a boolean"},
    {"public-restriction", "GET", "/api/v1/datasets", 200, "{\"items\":", false, 200, "malformed JSON"},
    {"public-restriction", "GET", "/api/v1/datasets", 200, "{}", false, 200, "without the items array"},
    {"public-restriction", "GET", "/api/v1/datasets/kfm.sacred-sites", 403, "{\"error\":{\"code\":\"policy_denied\"}}",
     false, 403, "GET /api/v1/datasets/kfm.sacred-sites answered 403 but GET /api/v1/datasets/kfm.absent-"},
    {"public-restriction", "GET", "/api/v1/datasets/kfm.sacred-sites", 404,
     "{\"error\":{\"code\":\"not_found\"},\"hint\":\"ask\"}", false, 404,
     "both answered 404 but with different top-level keys (error, hint vs error)"},
    {"public-restriction", "GET", "/api/v1/datasets/kfm.sacred-sites", 200, "{\"dataset_id\":\"kfm.sacred-sites\"}",
     false, 200, "answered 200: the restricted dataset is served to the public"},
    {"public-restriction", "GET", "/api/v1/datasets/kfm.sacred-sites", 404, "not found", false, 404, "malformed JSON"},
};

static void test_judging(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const judge_case *c = &cases[i];
        replay *r = NULL;
        input t;
        assert_int_equal(replay_start(&r, NULL), 0);
        route(r, c->method, c->target, c->status, c->body, 0);
        routes_good(r, 0);
        input_init(&t, replay_url(r), c->check);
        cJSON *res = run_ok(&t.in);
        assert_int_equal(cJSON_GetArraySize(res), 1);
        print_message("case %zu: %s %s %d\n", i, c->check, c->target, c->status);
        expect_result(cJSON_GetArrayItem(res, 0), c->check, c->passed, c->http_status, c->message);
        cJSON_Delete(res);
        input_clear(&t);
        replay_free(r);
    }
}

/* published-only: the listing (status, body) and the index (data, or why there is none) in, one verdict out. */
typedef struct {
    int status;
    const char *body;  /* the authorized listing */
    const char *index; /* the ConfigMap's data as JSON; NULL: none */
    const char *error; /* non-NULL: the index could not be read */
    bool passed;
    const char *message;
} published_case;

#define LISTING(...) "{\"items\":[" __VA_ARGS__ "]}"
#define ITEM(id, version, label)                                                                                       \
    "{\"dataset_id\":\"" id "\",\"dataset_version_id\":\"" version "\",\"policy_label\":\"" label "\"}"
#define ONE(id, version, label) "{\"" id "\":\"" ENTRY(id, version, label) "\"}"

static const published_case published_cases[] = {
    /* every listed version promoted, labels equal */
    {200, DATASETS, INDEX, NULL, true, "200 with 2 dataset versions, every one published in ConfigMap kfm/"},
    /* a listing without policy_label is judged on the version alone; entries of datasets not listed do not matter */
    {200, LISTING("{\"dataset_id\":\"kfm.soils\",\"dataset_version_id\":\"2025-11-02.4\"}"), INDEX, NULL, true,
     "200 with 1 dataset version, every one published"},
    /* missing entry */
    {200, DATASETS, ONE("kfm.hydrology.wells", "2026-03-01.1", "public"), NULL, false,
     "1 of 2 listed dataset version is not published in ConfigMap kfm/kfm-published-datasets: "
     "kfm.soils@2025-11-02.4 (no entry); promote it with DatasetPromotion or stop serving it"},
    /* another version promoted */
    {200, LISTING(ITEM("kfm.hydrology.wells", "2026-03-01.1", "public")),
     ONE("kfm.hydrology.wells", "2026-02-01.1", "public"), NULL, false,
     "kfm.hydrology.wells@2026-03-01.1 (the index publishes 2026-02-01.1)"},
    /* label mismatch */
    {200, LISTING(ITEM("kfm.hydrology.wells", "2026-03-01.1", "public")),
     ONE("kfm.hydrology.wells", "2026-03-01.1", "restricted"), NULL, false,
     "kfm.hydrology.wells@2026-03-01.1 (listed as \"public\" but promoted as \"restricted\")"},
    {200,
     LISTING("{\"dataset_id\":\"kfm.hydrology.wells\",\"dataset_version_id\":\"2026-03-01.1\",\"policy_label\":7}"),
     ONE("kfm.hydrology.wells", "2026-03-01.1", "public"), NULL, false,
     "(listed as a number but promoted as \"public\")"},
    /* no index */
    {200, DATASETS, NULL, "ConfigMap kfm/kfm-published-datasets (spec.verification.publishedIndex) does not exist",
     false,
     "no published index: ConfigMap kfm/kfm-published-datasets (spec.verification.publishedIndex) does not exist; "
     "promote the datasets with DatasetPromotion, or remove published-only from spec.verification.checks"},
    /* no index is said first, whatever the API answered */
    {503, "{}", NULL, "ConfigMap kfm/x cannot be read: forbidden", false,
     "no published index: ConfigMap kfm/x cannot be read: forbidden"},
    /* an index without data: nothing is published */
    {200, DATASETS, "null", NULL, false,
     "2 of 2 listed dataset versions are not published in ConfigMap kfm/kfm-published-datasets: "
     "kfm.hydrology.wells@2026-03-01.1 (no entry), kfm.soils@2025-11-02.4 (no entry); promote them"},
    /* malformed entries */
    {200, DATASETS, "{\"kfm.hydrology.wells\":\"{\\\"versionID\\\":\"}", NULL, false,
     "ConfigMap kfm/kfm-published-datasets key \"kfm.hydrology.wells\" holds text that is not JSON, so whether "
     "kfm.hydrology.wells@2026-03-01.1 is published cannot be judged; repair the key or promote the dataset again"},
    {200, DATASETS, "{\"kfm.hydrology.wells\":\"[1]\"}", NULL, false,
     "holds JSON that is an array, not an entry object"},
    {200, DATASETS, "{\"kfm.hydrology.wells\":\"{\\\"datasetID\\\":\\\"kfm.hydrology.wells\\\"}\"}", NULL, false,
     "holds an entry without a versionID"},
    {200, DATASETS, ONE("kfm.soils", "2025-11-02.4", "public"), NULL, false,
     "kfm.hydrology.wells@2026-03-01.1 (no entry)"},
    {200, DATASETS,
     "{\"kfm.hydrology.wells\":\"{\\\"datasetID\\\":\\\"kfm.soils\\\",\\\"versionID\\\":\\\"2026-03-01.1\\\"}\"}", NULL,
     false, "key \"kfm.hydrology.wells\" holds an entry for datasetID \"kfm.soils\""},
    /* nothing listed is never a pass */
    {200, "{\"items\":[]}", INDEX, NULL, false,
     "GET /api/v1/datasets answered 200 with an empty items array: nothing is listed"},
    {200, LISTING("{\"dataset_id\":\"kfm.soils\"}"), INDEX, NULL, false,
     "items[0] has no non-empty dataset_id and dataset_version_id"},
    {200, "{\"items\":", INDEX, NULL, false, "malformed JSON"},
    {401, "{\"error\":{\"code\":\"unauthorized\"}}", INDEX, NULL, false, "GET /api/v1/datasets answered 401"},
    /* the message names the first five and counts the rest */
    {200,
     LISTING(ITEM("a", "1", "public") "," ITEM("b", "1", "public") "," ITEM("c", "1", "public") "," ITEM(
         "d", "1", "public") "," ITEM("e", "1", "public") "," ITEM("f", "1", "public") "," ITEM("g", "1", "public")),
     INDEX, NULL, false,
     "7 of 7 listed dataset versions are not published in ConfigMap kfm/kfm-published-datasets: "
     "a@1 (no entry), b@1 (no entry), c@1 (no entry), d@1 (no entry), e@1 (no entry) and 2 more"},
};

static void test_published_judging(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(published_cases) / sizeof(published_cases[0]); i++) {
        const published_case *c = &published_cases[i];
        replay *r = NULL;
        input t;
        cJSON *data = c->index ? cJSON_Parse(c->index) : NULL;
        assert_true(!c->index || data);
        assert_int_equal(replay_start(&r, NULL), 0);
        route(r, "GET", "/api/v1/datasets", c->status, c->body, 0);
        input_init(&t, replay_url(r), "published-only");
        t.in.published.data = cJSON_IsNull(data) ? NULL : data;
        t.in.published.error = c->error;
        cJSON *res = run_ok(&t.in);
        assert_int_equal(cJSON_GetArraySize(res), 1);
        print_message("case %zu: %s\n", i, c->message);
        expect_result(cJSON_GetArrayItem(res, 0), "published-only", c->passed, c->status, c->message);
        /* the listing is asked for with the token, and once */
        assert_int_equal(replay_count(r), 1);
        cJSON_Delete(res);
        cJSON_Delete(data);
        input_clear(&t);
        replay_free(r);
    }
}

/* Without an index given at all (the caller did not read one), published-only fails closed. */
static void test_published_index_not_read(void **state)
{
    (void)state;
    replay *r = NULL;
    contract_run *run = NULL;
    cJSON *res = NULL;
    input t;
    net_loop *loop = NULL;
    assert_int_equal(net_loop_new(&loop, NULL), 0);
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), "published-only");
    assert_int_equal(contract_checks_start(&run, loop, &t.in, NULL, NULL), 0);
    assert_int_equal(contract_run_results(&res, run, NULL), 0);
    expect_result(cJSON_GetArrayItem(res, 0), "published-only", false, 200, "no published index: it was not read");
    cJSON_Delete(res);
    contract_run_free(run);
    net_loop_free(loop);
    input_clear(&t);
    replay_free(r);
}

/* The missing dataset answers differently from the restricted one. */
static void test_public_missing_differs(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    route(r, "GET", "/api/v1/datasets/kfm.sacred-sites", 404, NOT_FOUND, 0);
    route(r, "GET", "/api/v1/datasets/kfm.absent-*", 404, "{\"error\":{\"code\":\"not_found\"},\"request\":\"r1\"}", 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), "public-restriction");
    cJSON *res = run_ok(&t.in);
    expect_result(cJSON_GetArrayItem(res, 0), "public-restriction", false, 404, "(error vs error, request)");
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

static void test_timeout(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 3000);
    input_init(&t, replay_url(r), NULL);
    t.in.timeout_ms = 250;
    cJSON *res = run_ok(&t.in);
    const cJSON *it;
    cJSON_ArrayForEach(it, res) {
        const char *name = json_str(it, "name", NULL);
        expect_result(it, name, false, 0, "did not answer within 250 ms (spec.verification.timeoutSeconds)");
        assert_non_null(strstr(json_str(it, "message", NULL), replay_url(r)));
    }
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

static void test_refused(void **state)
{
    (void)state;
    char url[64], want[128];
    input t;
    int fd = refusing_port(url, sizeof(url));
    input_init(&t, url, NULL);
    cJSON *res = run_ok(&t.in);
    const cJSON *it;
    assert_int_equal(cJSON_GetArraySize(res), CONTRACT_N_CHECKS);
    cJSON_ArrayForEach(it, res) {
        const char *name = json_str(it, "name", NULL);
        snprintf(want, sizeof(want), "could not connect to %s/", url);
        expect_result(it, name, false, 0, want);
        expect_result(it, name, false, 0, "Connection refused");
    }
    expect_result(result_named(res, "health"), "health", false, 0, "could not connect to http://127.0.0.1:");
    expect_result(result_named(res, "focus-ask"), "focus-ask", false, 0, "/api/v1/focus/ask: Connection refused");
    cJSON_Delete(res);
    input_clear(&t);
    close(fd);
}

static void test_body_too_large(void **state)
{
    (void)state;
    replay *r = NULL;
    input t;
    size_t len = (size_t)CONTRACT_BODY_MAX + 1024;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memset(big, ' ', len);
    big[len] = '\0';
    big[0] = '{';
    big[len - 1] = '}';
    assert_int_equal(replay_start(&r, NULL), 0);
    route(r, "GET", "/api/v1/lineage/status", 200, big, 0);
    free(big);
    input_init(&t, replay_url(r), "lineage");
    cJSON *res = run_ok(&t.in);
    expect_result(cJSON_GetArrayItem(res, 0), "lineage", false, 200, "answered more than 4 MiB");
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

/* Results of every kind fit the CRD: declared fields only, types, enums, bounds, no nulls. */
static void test_results_fit_crd(void **state)
{
    (void)state;
    cJSON *schema = result_schema();
    replay *r = NULL;
    input t;
    char url[64];
    const cJSON *it;

    /* passing */
    assert_int_equal(replay_start(&r, NULL), 0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), NULL);
    cJSON *res = run_ok(&t.in);
    cJSON_ArrayForEach(it, res)
        schema_validate(schema, it);
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);

    /* failing with an answer */
    static const char *const targets[][2] = {{"GET", "/healthz"},           {"GET", "/readyz"},
                                             {"GET", "/api/v1/datasets"},   {"GET", "/api/v1/stac/collections"},
                                             {"GET", "/api/v1/stac/items"}, {"POST", "/api/v1/evidence/resolve"},
                                             {"POST", "/api/v1/focus/ask"}, {"GET", "/api/v1/lineage/status"},
                                             {"GET", "/api/v1/datasets/*"}};
    assert_int_equal(replay_start(&r, NULL), 0);
    for (size_t i = 0; i < 9; i++)
        route(r, targets[i][0], targets[i][1], 500, "{\"error\":\"down\"}", 0);
    input_init(&t, replay_url(r), NULL);
    res = run_ok(&t.in);
    assert_int_equal(cJSON_GetArraySize(res), CONTRACT_N_CHECKS);
    cJSON_ArrayForEach(it, res) {
        schema_validate(schema, it);
        expect_result(it, json_str(it, "name", NULL), false, 500, "500");
    }
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);

    /* a message quoting a huge untrusted field stays within maxLength, cut between characters */
    char *huge = malloc(6000);
    assert_non_null(huge);
    strcpy(huge, "{\"items\":[{\"dataset_id\":\"");
    size_t off = strlen(huge);
    for (size_t i = 0; i < 5000; i += 2) { /* two-byte UTF-8 characters */
        huge[off++] = (char)0xc3;
        huge[off++] = (char)0xa9;
    }
    strcpy(huge + off, "\",\"policy_label\":\"restricted\"}]}");
    assert_int_equal(replay_start(&r, NULL), 0);
    route(r, "GET", "/api/v1/datasets", 200, huge, 0);
    free(huge);
    routes_good(r, 0);
    input_init(&t, replay_url(r), "public-restriction");
    res = run_ok(&t.in);
    it = cJSON_GetArrayItem(res, 0);
    schema_validate(schema, it);
    const char *msg = json_str(it, "message", NULL);
    assert_true(strlen(msg) <= CONTRACT_MESSAGE_MAX);
    assert_non_null(strstr(msg, "...")); /* the id was cut */
    assert_non_null(strstr(msg, "with policy_label \"restricted\""));
    for (const char *p = msg; *p; p++) /* still valid UTF-8: every 0xc3 is followed by its 0xa9 */
        if ((unsigned char)*p == 0xc3)
            assert_int_equal((unsigned char)p[1], 0xa9);
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);

    /* failing without an answer */
    int fd = refusing_port(url, sizeof(url));
    input_init(&t, url, NULL);
    res = run_ok(&t.in);
    cJSON_ArrayForEach(it, res) {
        schema_validate(schema, it);
        assert_null(cJSON_GetObjectItemCaseSensitive(it, "httpStatus"));
    }
    cJSON_Delete(res);
    input_clear(&t);
    close(fd);
    cJSON_Delete(schema);
}

static void test_token_never_logged(void **state)
{
    (void)state;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    replay *r = NULL;
    input t;
    assert_non_null(mem);
    mb_log_setup(MB_LOG_TEXT, MB_LOG_DEBUG, mem);
    assert_int_equal(replay_start(&r, NULL), 0);
    route(r, "POST", "/api/v1/focus/ask", 200, "{\"answer\":\"x\"}", 0); /* one failure: an info line too */
    /* answers that echo the Authorization header, whole and cut by the message's quote */
    route(r, "GET", "/healthz", 503, "unauthorized: got Authorization: Bearer " TOKEN " twice: " TOKEN, 0);
    route(r, "GET", "/readyz", 503,
          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
          "xxx" TOKEN,
          0);
    routes_good(r, 0);
    input_init(&t, replay_url(r), NULL);
    cJSON *res = run_ok(&t.in);
    char *text = cJSON_PrintUnformatted(res);
    mb_log_setup(MB_LOG_JSON, MB_LOG_WARN, NULL);
    fclose(mem);
    assert_non_null(strstr(logbuf, "contract check focus-ask failed")); /* the log did see the run */
    assert_non_null(strstr(logbuf, "contract check lineage passed"));
    assert_non_null(strstr(json_str(result_named(res, "health"), "message", NULL), "Bearer ****************** twice"));
    assert_non_null(strstr(json_str(result_named(res, "ready"), "message", NULL), "xxx*********..."));
    assert_null(strstr(logbuf, TOKEN));
    assert_null(strstr(text, TOKEN));
    assert_null(strstr(logbuf, "s3cr3t")); /* not even the part before a cut */
    assert_null(strstr(text, "s3cr3t"));
    free(text);
    free(logbuf);
    cJSON_Delete(res);
    input_clear(&t);
    replay_free(r);
}

static void test_invalid_input(void **state)
{
    (void)state;
    input t;
    cJSON *res = (cJSON *)1;
    input_init(&t, "http://127.0.0.1:9", NULL);

    t.checks = cJSON_Parse("[\"health\",\"smoke\"]");
    t.in.checks = t.checks;
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_null(res);
    assert_non_null(strstr(mb_error_last(), "\"smoke\", which is not a contract check"));
    cJSON_Delete(t.checks);

    t.checks = cJSON_Parse("[\"health\",\"health\"]");
    t.in.checks = t.checks;
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "lists health twice"));
    cJSON_Delete(t.checks);

    t.checks = cJSON_Parse("[]");
    t.in.checks = t.checks;
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    cJSON_Delete(t.checks);
    t.checks = NULL;
    t.in.checks = NULL;

    t.in.focus_question = NULL;
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "spec.verification.focusQuestion"));
    t.in.focus_question = "q";

    t.in.restricted_dataset_id = "";
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "restrictedDatasetID"));
    t.in.restricted_dataset_id = "kfm.x";

    t.in.evidence_refs = NULL;
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "evidenceRefs"));
    t.in.evidence_refs = t.refs;

    t.in.base_url = "ftp://127.0.0.1/";
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_non_null(strstr(mb_error_last(), "spec.verification.baseURL"));
    t.in.base_url = "http://127.0.0.1:9";

    t.in.token = "abc\r\nX-Evil: 1";
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    assert_null(strstr(mb_error_last(), "abc")); /* the token is not repeated */
    t.in.token = TOKEN;

    t.in.release_id = NULL;
    assert_int_equal(contract_checks_run(&res, &t.in), MB_EINVAL);
    input_clear(&t);
}

static const char RELEASE[] =
    "{\"metadata\":{\"name\":\"kfm-api\",\"namespace\":\"kfm\"},"
    "\"spec\":{\"target\":{\"deployment\":\"kfm-api\",\"container\":\"api\"},"
    "\"verification\":{\"authSecretRef\":{\"name\":\"smoke-token\",\"key\":\"token\"},\"timeoutSeconds\":3,"
    "\"checks\":[\"health\",\"focus-ask\"],\"evidenceRefs\":[{\"type\":\"stac_item\",\"id\":\"w\"}],"
    "\"focusQuestion\":\"Why?\",\"restrictedDatasetID\":\"kfm.sacred-sites\"}}}";

/* contract_token_read with the release's namespace and authSecretRef, as release/checks.c calls it */
static int token_read(char **out, kube_client *c, const cJSON *rel)
{
    const cJSON *ref = json_get(rel, "spec", "verification", "authSecretRef", NULL);
    const char *name = json_str(ref, "name", NULL), *key = json_str(ref, "key", NULL);
    if (!ref)
        return contract_token_read(out, c, json_str(rel, "metadata", "namespace", NULL), NULL, NULL);
    return contract_token_read(out, c, json_str(rel, "metadata", "namespace", NULL), name ? name : "", key ? key : "");
}

static void secret_route(replay *r, int status, const char *body)
{
    route(r, "GET", "/api/v1/namespaces/kfm/secrets/smoke-token", status, body, 0);
}

static void test_token_read(void **state)
{
    (void)state;
    cJSON *rel = cJSON_Parse(RELEASE);
    struct {
        int status;
        const char *body;
        int err;
        const char *token;   /* on success */
        const char *message; /* on error */
    } tc[] = {
        {200, "{\"kind\":\"Secret\",\"data\":{\"token\":\"czNjcjN0LXNtb2tlLXRva2VuCg==\"}}", 0, TOKEN, NULL},
        {200, "{\"kind\":\"Secret\",\"data\":{\"token\":\"czNjcjN0\"}}", 0, "s3cr3t", NULL},
        {200, "{\"kind\":\"Secret\",\"data\":{\"other\":\"eA==\"}}", MB_ENOTFOUND, NULL,
         "Secret kfm/smoke-token has no key \"token\""},
        {200, "{\"kind\":\"Secret\"}", MB_ENOTFOUND, NULL, "Secret kfm/smoke-token has no key \"token\""},
        {200, "{\"kind\":\"Secret\",\"data\":{\"token\":\"***\"}}", MB_EINVAL, NULL, "is not valid base64"},
        {200, "{\"kind\":\"Secret\",\"data\":{\"token\":\"Cg==\"}}", MB_EINVAL, NULL, "is empty"},
        {200, "{\"kind\":\"Secret\",\"data\":{\"token\":\"YQpi\"}}", MB_EINVAL, NULL, "control characters"},
        {404,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"secrets \\\"smoke-token\\\" "
         "not found\",\"reason\":\"NotFound\",\"code\":404}",
         MB_ENOTFOUND, NULL, "Secret kfm/smoke-token does not exist"},
        {403,
         "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"secrets is forbidden\","
         "\"reason\":\"Forbidden\",\"code\":403}",
         MB_EFORBIDDEN, NULL, "cannot read Secret kfm/smoke-token"},
    };
    for (size_t i = 0; i < sizeof(tc) / sizeof(tc[0]); i++) {
        replay *r = NULL;
        kube_client *c = NULL;
        char *token = (char *)1;
        assert_int_equal(replay_start(&r, NULL), 0);
        secret_route(r, tc[i].status, tc[i].body);
        kube_client_opts opts = {.max_retries = -1, .timeout_ms = 5000};
        assert_int_equal(kube_client_new(&c, replay_config(r, "kube-token"), &opts), 0);
        int err = token_read(&token, c, rel);
        print_message("token case %zu\n", i);
        assert_int_equal(err, tc[i].err);
        if (err == 0) {
            assert_string_equal(token, tc[i].token);
        } else {
            assert_null(token);
            if (!strstr(mb_error_last(), tc[i].message))
                fail_msg("message \"%s\" lacks \"%s\"", mb_error_last(), tc[i].message);
        }
        contract_token_free(token);
        kube_client_free(c);
        replay_free(r);
    }

    /* no authSecretRef: no token, no request */
    replay *r = NULL;
    kube_client *c = NULL;
    char *token = (char *)1;
    assert_int_equal(replay_start(&r, NULL), 0);
    assert_int_equal(kube_client_new(&c, replay_config(r, NULL), NULL), 0);
    cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetObjectItem(cJSON_GetObjectItem(rel, "spec"), "verification"),
                                            "authSecretRef");
    assert_int_equal(token_read(&token, c, rel), 0);
    assert_null(token);
    assert_int_equal(replay_count(r), 0);
    contract_token_free(NULL);
    kube_client_free(c);
    replay_free(r);
    cJSON_Delete(rel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_pass),
        cmocka_unit_test(test_order_follows_checks),
        cmocka_unit_test(test_headers_and_bodies),
        cmocka_unit_test(test_no_token_no_authorization),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_judging),
        cmocka_unit_test(test_public_missing_differs),
        cmocka_unit_test(test_published_judging),
        cmocka_unit_test(test_published_index_not_read),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_results_fit_crd),
        cmocka_unit_test(test_token_never_logged),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_token_read),
    };
    mb_log_setup(MB_LOG_JSON, MB_LOG_WARN, NULL); /* failed checks log at info; keep the output to the tests */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
