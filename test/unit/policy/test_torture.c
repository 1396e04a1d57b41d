/*
 * Allocation-failure torture of the pure bundle module (test/support/torture.h):
 * the checks of an unpacked bundle (the manifest, data.json and data.yaml,
 * duplicates) on good and refused bundles, verifying signatures (OpenSSL's
 * allocations sampled), judging a decision, and the roots (which allocate
 * nothing).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "jwstest.h"
#include "policy/bundle.h"
#include "policy/bundle_private.h"
#include "tarball.h"
#include "torture.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define F(n, d)                                                                                                        \
    {                                                                                                                  \
        .name = (n), .data = (d)                                                                                       \
    }
#define D(n)                                                                                                           \
    {                                                                                                                  \
        .name = (n), .type = TAR_DIR                                                                                   \
    }
#define N(a) (sizeof(a) / sizeof((a)[0]))

#define MANIFEST "{\"revision\":\"2026.11.20-3\",\"roots\":[\"kfm\",\"shared/labels\"]}"
#define POLICY "package kfm\n\nallow if input.role == \"admin\"\n"
#define DATA "{\"kfm\":{\"labels\":[\"public\",\"restricted\"],\"limit\":1.50}}"
#define YAML "labels:\n  - public\nlimits: {max: 10}\n"

/* ---- bundle_check_structure (bundle_read but libarchive) ---------------------------- */

/*
 * libarchive 3.6 cannot be tortured: on some failed allocations of its own
 * (archive_string) it prints "Fatal Internal Error in libarchive: Out of
 * memory" and exits the process. bundle_read's own handling of libarchive's
 * failures is in test_bundle.c; here the checks of what it unpacked run under
 * the torture, from files as bundle_read leaves them.
 */
typedef struct {
    const tar_entry *files; /* names already normalized */
    size_t n;
    bundle *b;
    char err[BUNDLE_ERROR_MAX];
    transcript t;
} check_ctx;

static int check_run(void *arg)
{
    check_ctx *c = arg;
    if (!(c->b = calloc(1, sizeof(*c->b))) || !(c->b->files = calloc(c->n, sizeof(bundle_file))))
        return MB_ENOMEM;
    for (size_t i = 0; i < c->n; i++) {
        bundle_file *f = &c->b->files[c->b->nfiles++];
        size_t len = strlen(c->files[i].data);
        if (!(f->name = strdup(c->files[i].name)) || !(f->data = malloc(len + 1)))
            return MB_ENOMEM;
        memcpy(f->data, c->files[i].data, len + 1);
        f->len = len;
        c->b->unpacked_bytes += (long long)len;
    }
    int rc = bundle_check_structure(c->b, c->err);
    if (rc < 0) {
        if (rc != MB_ENOMEM)
            tprintf(&c->t, "%d %s\n", rc, c->err);
        return rc;
    }
    tprintf(&c->t, "rev %s rego %zu bytes %lld sig %d manifest %s\n", c->b->revision, c->b->rego_modules,
            c->b->unpacked_bytes, c->b->signatures != NULL, c->b->manifest ? c->b->manifest->name : "-");
    const cJSON *r;
    cJSON_ArrayForEach(r, c->b->roots) {
        tprintf(&c->t, "root %s\n", r->valuestring);
    }
    /* the roots allocate nothing */
    cJSON *req = cJSON_CreateArray(), *one = cJSON_CreateString("shared/labels/public");
    if (!req || !one) {
        cJSON_Delete(req);
        cJSON_Delete(one);
        return MB_ENOMEM;
    }
    cJSON_AddItemToArray(req, one);
    long before = torture_live();
    const char *missing = bundle_missing_root(c->b, req);
    assert_int_equal(torture_live(), before);
    tprintf(&c->t, "missing %s\n", missing ? missing : "-");
    cJSON_Delete(req);
    return 0;
}

static void check_check(void *arg)
{
    check_ctx *c = arg;
    transcript_check(&c->t);
}

static void check_clear(void *arg)
{
    check_ctx *c = arg;
    bundle_free(c->b);
    c->b = NULL;
    transcript_reset(&c->t);
}

static void check_torture(const tar_entry *files, size_t n, int expect, const char *needle)
{
    check_ctx c = {.files = files, .n = n};
    torture_case tc = {.name = "bundle_check_structure",
                       .run = check_run,
                       .check = check_check,
                       .clear = check_clear,
                       .ctx = &c,
                       .expect = expect};
    assert_true(torture_check(&tc) > 0);
    if (!strstr(c.t.first, needle))
        fail_msg("\"%s\" does not contain \"%s\"", c.t.first, needle);
    transcript_free(&c.t);
}

static void test_structure(void **state)
{
    (void)state;
    const tar_entry e[] = {F("data.json", DATA),
                           F("kfm/policy.rego", POLICY),
                           F("kfm/data.yaml", YAML),
                           F("shared/labels/labels.rego", "package shared.labels\n"),
                           F(".signatures.json", "{\"signatures\":[]}"),
                           F(".manifest", MANIFEST)};
    check_torture(e, N(e), 0, "root shared/labels\nmissing -\n");
}

static void test_structure_refused(void **state)
{
    (void)state;
    const tar_entry manifest[] = {F("data.json", DATA), F("kfm/policy.rego", POLICY),
                                  F(".manifest", "{\"revision\":\"r\",\"roots\":[\"kfm\",7]}")};
    check_torture(manifest, N(manifest), MB_EINVAL, ".manifest: roots[1] must be a string");
    const tar_entry dup[] = {F("kfm/policy.rego", POLICY), F(".manifest", MANIFEST), F("kfm/policy.rego", POLICY)};
    check_torture(dup, N(dup), MB_EINVAL, "entry kfm/policy.rego: the bundle holds it more than once");
    const tar_entry yaml[] = {F("kfm/policy.rego", POLICY), F(".manifest", MANIFEST), F("kfm/data.yaml", "[1]")};
    check_torture(yaml, N(yaml), MB_EINVAL, "kfm/data.yaml must hold a JSON object");
    const tar_entry json[] = {F("kfm/policy.rego", POLICY), F(".manifest", MANIFEST), F("data.json", "{\"a\":[1,}")};
    check_torture(json, N(json), MB_EINVAL, "data.json is not valid JSON");
    const tar_entry none[] = {F("kfm/policy.rego", POLICY)};
    check_torture(none, N(none), MB_EINVAL, ".manifest is missing");
}

/* ---- bundle_verify_signatures ------------------------------------------------------ */

typedef struct {
    const bundle *b;
    bundle_signing s;
    char err[BUNDLE_ERROR_MAX];
    transcript t;
} verify_ctx;

static int verify_run(void *arg)
{
    verify_ctx *c = arg;
    int rc = bundle_verify_signatures(c->b, &c->s, c->err);
    if (rc != MB_ENOMEM)
        tprintf(&c->t, "%d %s\n", rc, rc ? c->err : "");
    return rc;
}

static void verify_check(void *arg)
{
    verify_ctx *c = arg;
    if (torture_refused() && strstr(c->t.text, "does not hold a PEM public key"))
        return; /* key_misread */
    transcript_check(&c->t);
}

static void verify_clear(void *arg)
{
    verify_ctx *c = arg;
    transcript_reset(&c->t);
}

/*
 * OpenSSL's PEM decoder does not report every failed allocation of its own:
 * some leave it without a decoder for the block, which then reads as no key.
 */
static bool key_misread(void *ctx, int rc)
{
    (void)ctx;
    return rc == MB_EINVAL && strstr(mb_error_last(), "does not hold a PEM public key");
}

static bundle *signed_bundle(EVP_PKEY *key, const char *alg, const char *policy)
{
    char payload[4096], h1[65], h2[65], h3[65], h4[65], header[128];
    jwstest_sha256_hex(h1, POLICY, strlen(POLICY));
    jwstest_sha256_hex(h2, "{\"kfm\":{\"labels\":[\"public\",\"restricted\"],\"limit\":1.50}}", strlen(DATA));
    jwstest_sha256_hex(h3, "{\"revision\":\"2026.11.20-3\",\"roots\":[\"kfm\",\"shared/labels\"]}", strlen(MANIFEST));
    jwstest_sha256_hex(h4, "{\"labels\":[\"public\"],\"limits\":{\"max\":10}}",
                       strlen("{\"labels\":[\"public\"],\"limits\":{\"max\":10}}"));
    snprintf(payload, sizeof(payload),
             "{\"files\":[{\"name\":\"kfm/policy.rego\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"},"
             "{\"name\":\"data.json\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"},"
             "{\"name\":\".manifest\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"},"
             "{\"name\":\"kfm/data.yaml\",\"hash\":\"%s\",\"algorithm\":\"SHA-256\"}],"
             "\"keyid\":\"kfm-2026\",\"scope\":\"write\"}",
             h1, h2, h3, h4);
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"kfm-2026\",\"typ\":\"JWT\"}", alg);
    char *tok = jwstest_token(key, alg, header, payload);
    char sigs[8192];
    snprintf(sigs, sizeof(sigs), "{\"signatures\":[\"%s\"],\"plugin\":\"_default\"}", tok);
    free(tok);
    const tar_entry e[] = {F("/data.json", DATA), F("/kfm/policy.rego", policy), F("/kfm/data.yaml", YAML),
                           F("/.signatures.json", sigs), F("/.manifest", MANIFEST)};
    unsigned char *gz = NULL;
    size_t len = 0;
    bundle *b = NULL;
    char err[BUNDLE_ERROR_MAX];
    tarball_make(&gz, &len, e, N(e), TARBALL_GZIP_PAX);
    if (bundle_read(&b, gz, len, 1 << 20, err) != 0)
        fail_msg("bundle_read: %s", err);
    free(gz);
    return b;
}

static void verify_torture(EVP_PKEY *key, const char *alg, const char *policy, int expect, const char *needle)
{
    bundle *b = signed_bundle(key, alg, policy);
    char *pem = jwstest_public_pem(key);
    verify_ctx c = {.b = b, .s = {.public_key_pem = pem, .key_id = "kfm-2026", .scope = "write"}};
    torture_case tc = {.name = alg,
                       .run = verify_run,
                       .check = verify_check,
                       .clear = verify_clear,
                       .ctx = &c,
                       .expect = expect,
                       /* OpenSSL recovers from some of its own failed allocations */
                       .may_succeed = true,
                       /* nor does fetching the digest or signature method when the verification is set up */
                       .errors = {MB_ERROR},
                       .allowed = key_misread};
    assert_true(torture_check(&tc) > 0);
    if (needle && !strstr(c.t.first, needle))
        fail_msg("\"%s\" does not contain \"%s\"", c.t.first, needle);
    transcript_free(&c.t);
    free(pem);
    bundle_free(b);
}

static void test_verify(void **state)
{
    (void)state;
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    assert_non_null(ec);
    assert_non_null(ed);
    assert_non_null(rsa);
    verify_torture(ec, "ES256", POLICY, 0, "0");
    verify_torture(ed, "EdDSA", POLICY, 0, "0");
    verify_torture(rsa, "PS256", POLICY, 0, "0");
    verify_torture(ec, "ES256", "package kfm\n", MB_EINVAL, "file kfm/policy.rego changed after signing");
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

/* ---- bundle_decision_matches -------------------------------------------------------- */

typedef struct {
    const char *body;
    cJSON *expect;
    bool match;
    char *got;
    transcript t;
} decide_ctx;

static int decide_run(void *arg)
{
    decide_ctx *c = arg;
    bool m = bundle_decision_matches(c->body, strlen(c->body), c->expect, &c->got);
    if (!c->got)
        return MB_ENOMEM; /* the body is an object: no answer means memory ran out, and then never a pass */
    tprintf(&c->t, "%d %s\n", m, c->got);
    return 0;
}

static void decide_check(void *arg)
{
    decide_ctx *c = arg;
    transcript_check(&c->t);
}

static void decide_clear(void *arg)
{
    decide_ctx *c = arg;
    free(c->got);
    c->got = NULL;
    transcript_reset(&c->t);
}

static void test_decision(void **state)
{
    (void)state;
    struct {
        const char *body, *expect, *first;
    } cases[] = {
        {"{\"result\":{\"allow\":true,\"reasons\":[\"a\",\"b\"]},\"decision_id\":\"x\"}",
         "{\"reasons\":[\"a\",\"b\"],\"allow\":true}", "1 {\"allow\":true,\"reasons\":[\"a\",\"b\"]}\n"},
        {"{\"result\":false}", "true", "0 false\n"},
        {"{}", "null", "0 undefined\n"},
    };
    for (size_t i = 0; i < N(cases); i++) {
        decide_ctx c = {.body = cases[i].body, .expect = cJSON_Parse(cases[i].expect)};
        assert_non_null(c.expect);
        torture_case tc = {.name = "bundle_decision_matches",
                           .run = decide_run,
                           .check = decide_check,
                           .clear = decide_clear,
                           .ctx = &c};
        assert_true(torture_check(&tc) > 0);
        assert_string_equal(c.t.first, cases[i].first);
        transcript_free(&c.t);
        cJSON_Delete(c.expect);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_structure_refused),
        cmocka_unit_test(test_verify),
        cmocka_unit_test(test_decision),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
