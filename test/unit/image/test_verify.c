/*
 * The image verifier (image/verify.h) against the loopback replay server
 * serving what a real registry (distribution v3.1.2) answered for images
 * signed and attested by real cosign v2.6.5 and v3.1.3
 * (test/fixtures/cosign/, regenerate.sh there says how): a v3 bundle
 * found through the tag-schema fallback and through the referrers API, a v2
 * .sig image only, attestations of both layouts, an attestation type missing
 * (named), a v2 signature re-tagged onto another digest refused, a blob whose
 * bytes do not hash to its digest refused, a wrong key and an unreadable key
 * refused, a registry answering 500 UNREACHABLE. Then the cached verifier:
 * PENDING, the key notified, the result cached (a second get runs nothing),
 * REFUSED kept for its time and then looked at again, UNREACHABLE answered
 * only until its retry interval, a changed input is another cache key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "image/verify.h"
#include "replay.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLSA "https://slsa.dev/provenance/v1"
#define FX "cosign/"
#define REPO "/v2/kfm/kfm-api/"

static net_loop *net;
static char *key_pem, *other_pem, da[80], db[80];
static size_t key_len, other_len;

static void chomp_read(char *out, size_t size, const char *rel)
{
    char *s = fixture_read(rel, NULL);
    assert_non_null(s);
    s[strcspn(s, "\r\n")] = '\0';
    snprintf(out, size, "%s", s);
    free(s);
}

static int setup(void **state)
{
    (void)state;
    key_pem = fixture_read(FX "keys/p256.pub", &key_len);
    other_pem = fixture_read(FX "keys/other.pub", &other_len);
    chomp_read(da, sizeof(da), FX "image/digest");
    chomp_read(db, sizeof(db), FX "image/other-digest");
    return key_pem && other_pem ? net_loop_new(&net, NULL) : -1;
}

static int teardown(void **state)
{
    (void)state;
    net_loop_free(net);
    free(key_pem);
    free(other_pem);
    return 0;
}

/* Answers GET REPO<path> with the fixture file rel, as the registry did. */
static void route_file(replay *srv, const char *path, const char *rel, const char *ctype)
{
    char target[512], file[256], hdr[160];
    size_t len = 0;
    snprintf(target, sizeof(target), REPO "%s", path);
    snprintf(file, sizeof(file), FX "%s", rel);
    snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n", ctype);
    char *body = fixture_read(file, &len);
    assert_non_null(body);
    replay_route(srv, "GET", target, &(replay_reply){.status = 200, .headers = hdr, .body = body, .len = len});
    free(body);
}

/* The manifest rel at manifests/<ref> (a tag, or NULL: the digest in the .digest file beside it), and its layer's
 * blob from blob_rel. */
static void route_manifest(replay *srv, const char *ref, const char *rel, const char *blob_rel)
{
    char path[256], file[256], digest[80];
    if (!ref) {
        snprintf(file, sizeof(file), FX "%.*s.digest", (int)(strlen(rel) - 5), rel);
        chomp_read(digest, sizeof(digest), file);
        ref = digest;
    }
    snprintf(path, sizeof(path), "manifests/%s", ref);
    route_file(srv, path, rel, "application/vnd.oci.image.manifest.v1+json");
    snprintf(file, sizeof(file), FX "%s", rel);
    char *body = fixture_read(file, NULL);
    cJSON *m = cJSON_Parse(body);
    free(body);
    const char *layer = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(m, "layers"), 0), "digest"));
    assert_non_null(layer);
    snprintf(path, sizeof(path), "blobs/%s", layer);
    route_file(srv, path, blob_rel, "application/octet-stream");
    cJSON_Delete(m);
}

/* cosign v2 on image A: the .sig image and the .att image. */
static void serve_v2(replay *srv)
{
    char tag[96];
    snprintf(tag, sizeof(tag), "sha256-%s.sig", da + 7);
    route_manifest(srv, tag, "v2/p256/sig.manifest.json", "v2/p256/sig.payload.json");
    snprintf(tag, sizeof(tag), "sha256-%s.att", da + 7);
    route_manifest(srv, tag, "v2/att/att.manifest.json", "v2/att/att.envelope.json");
}

/* cosign v3 on image A through the fallback tag (distribution has no referrers API): the signature, and the
 * attestation when with_att (the index as it was after each). */
static void serve_v3_tag(replay *srv, bool with_att)
{
    char tag[96];
    snprintf(tag, sizeof(tag), "manifests/sha256-%s", da + 7);
    route_file(srv, tag, with_att ? "v3/att/referrers-tag.index.json" : "v3/p256/referrers-tag.index.json",
               "application/vnd.oci.image.index.v1+json");
    route_manifest(srv, NULL, "v3/p256/bundle.manifest.json", "v3/p256/bundle.json");
    route_manifest(srv, NULL, "v3/att/bundle.manifest.json", "v3/att/bundle.json");
}

/* cosign v3 on image A on a registry with the referrers API (go-containerregistry's). */
static void serve_v3_api(replay *srv, bool with_att)
{
    char path[96];
    snprintf(path, sizeof(path), "referrers/%s", da);
    route_file(srv, path, with_att ? "v3-referrers/referrers-with-att.json" : "v3-referrers/referrers.json",
               "application/vnd.oci.image.index.v1+json");
    route_manifest(srv, NULL, "v3-referrers/bundle.manifest.json", "v3-referrers/bundle.json");
    route_manifest(srv, NULL, "v3-referrers/att.manifest.json", "v3-referrers/att.json");
}

/* Everything not routed: as distribution answers for the referrers API it lacks and for a missing tag. */
static void serve_rest(replay *srv, int status)
{
    replay_route(srv, NULL, "/*", &(replay_reply){.status = status, .body = "404 page not found\n"});
}

static image_verify_input input(const replay *srv, char *repo, size_t size, const char *digest)
{
    snprintf(repo, size, "%s/kfm/kfm-api", replay_url(srv) + strlen("http://"));
    return (image_verify_input){.repository = repo,
                                .digest = digest,
                                .public_key_pem = key_pem,
                                .public_key_len = key_len,
                                .insecure = true,
                                .timeout_ms = 20000};
}

static bool asked(replay *srv, const char *target)
{
    for (size_t i = 0; i < replay_count(srv); i++)
        if (strcmp(replay_get(srv, i)->target, target) == 0)
            return true;
    return false;
}

static void has(const char *msg, const char *part)
{
    if (!strstr(msg, part))
        fail_msg("\"%s\" does not say \"%s\"", msg, part);
}

static void run(image_verify_result *r, const image_verify_input *in)
{
    if (image_verify_run(r, net, in) < 0)
        fail_msg("image_verify_run: %s", mb_error_last());
}

static void test_v3_bundle_through_tag_fallback(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128], target[256];
    const char *atts[] = {SLSA};
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_v3_tag(srv, true);
    serve_rest(srv, 404);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    in.attestations = atts;
    in.n_attestations = 1;
    run(&r, &in);
    if (r.state != IMAGE_VERIFY_VERIFIED)
        fail_msg("%d: %s", r.state, r.message);
    assert_string_equal(r.layout, "v3");
    assert_int_equal(strlen(r.payload_sha256), 71);
    assert_memory_equal(r.key_id, "sha256:", 7);
    has(r.message, da);
    snprintf(target, sizeof(target), REPO "referrers/%s", da);
    assert_true(asked(srv, target));
    snprintf(target, sizeof(target), REPO "manifests/sha256-%s", da + 7);
    assert_true(asked(srv, target));
    /* what the signature fetched is not fetched again for the attestation: referrers (404), the fallback index,
     * at most two bundle manifests and two bundles */
    assert_true(replay_count(srv) <= 6);
    replay_free(srv);
}

static void test_v3_bundle_through_referrers_api(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128], target[256];
    const char *atts[] = {SLSA};
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    /* this registry's descriptors carry the empty config's artifactType, not the bundle's */
    serve_v3_api(srv, true);
    serve_rest(srv, 404);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    in.attestations = atts;
    in.n_attestations = 1;
    run(&r, &in);
    if (r.state != IMAGE_VERIFY_VERIFIED)
        fail_msg("%d: %s", r.state, r.message);
    assert_string_equal(r.layout, "v3");
    snprintf(target, sizeof(target), REPO "manifests/sha256-%s", da + 7);
    assert_false(asked(srv, target)); /* no fallback when the API answers */
    snprintf(target, sizeof(target), REPO "manifests/sha256-%s.sig", da + 7);
    assert_false(asked(srv, target)); /* nor a v2 look once v3 verified */
    replay_free(srv);
}

/* A registry with token auth: one token dance (the docker config's credentials to the realm), then the token on
 * every request of the verification. The replies come in the order the verification asks. */
static void test_token_auth(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128], challenge[256], cfg[256], path[160];
    image_verify_result r;
    size_t len = 0;
    assert_int_equal(replay_start(&srv, NULL), 0);
    snprintf(challenge, sizeof(challenge),
             "WWW-Authenticate: Bearer realm=\"%s/token\",service=\"membrane-test-registry\"\r\n", replay_url(srv));
    /* bWVtYnJhbmU6czNjcmV0: "membrane:s3cret" */
    snprintf(cfg, sizeof(cfg), "{\"auths\":{\"%s\":{\"auth\":\"bWVtYnJhbmU6czNjcmV0\"}}}",
             replay_url(srv) + strlen("http://"));
    replay_add(srv, &(replay_reply){.status = 401, .headers = challenge, .body = "{\"errors\":[]}"});
    replay_add(srv, &(replay_reply){.status = 200, .body = "{\"token\":\"reg-token-1\",\"expires_in\":300}"});
    const char *files[] = {"v3-referrers/referrers.json", "v3-referrers/bundle.manifest.json",
                           "v3-referrers/bundle.json"};
    for (size_t i = 0; i < 3; i++) {
        char file[128];
        snprintf(file, sizeof(file), FX "%s", files[i]);
        char *body = fixture_read(file, &len);
        assert_non_null(body);
        replay_add(srv, &(replay_reply){.status = 200, .body = body, .len = len});
        free(body);
    }
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    in.docker_config = cfg;
    run(&r, &in);
    if (r.state != IMAGE_VERIFY_VERIFIED)
        fail_msg("%d: %s", r.state, r.message);
    assert_int_equal(replay_count(srv), 5);
    snprintf(path, sizeof(path), REPO "referrers/%s", da);
    assert_string_equal(replay_get(srv, 0)->target, path);
    assert_null(replay_header(replay_get(srv, 0), "Authorization"));
    assert_string_equal(replay_get(srv, 1)->target,
                        "/token?service=membrane-test-registry&scope=repository%3Akfm%2Fkfm-api%3Apull");
    assert_string_equal(replay_header(replay_get(srv, 1), "Authorization"), "Basic bWVtYnJhbmU6czNjcmV0");
    for (size_t i = 2; i < 5; i++)
        assert_string_equal(replay_header(replay_get(srv, i), "Authorization"), "Bearer reg-token-1");
    assert_string_equal(replay_get(srv, 2)->target, path);
    replay_free(srv);
}

static void test_v2_sig_and_att(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128];
    const char *atts[] = {SLSA};
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_v2(srv);
    serve_rest(srv, 404);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    in.attestations = atts;
    in.n_attestations = 1;
    run(&r, &in);
    if (r.state != IMAGE_VERIFY_VERIFIED)
        fail_msg("%d: %s", r.state, r.message);
    assert_string_equal(r.layout, "v2");
    /* the payload of a v2 signature is its layer: the receipt names that blob */
    char *man = fixture_read(FX "v2/p256/sig.manifest.json", NULL);
    assert_non_null(strstr(man, r.payload_sha256));
    free(man);
    replay_free(srv);
}

static void test_attestation_missing(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128];
    const char *atts[] = {SLSA, "https://example.com/other/v1"};
    image_verify_result r;

    /* v2: signed and attested for SLSA, not for the other type */
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_v2(srv);
    serve_rest(srv, 404);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    in.attestations = atts;
    in.n_attestations = 2;
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, "no attestation of predicate type https://example.com/other/v1");
    has(r.message, da);
    replay_free(srv);

    /* v3, through the fallback tag and through the API: signed, not yet attested */
    for (int api = 0; api < 2; api++) {
        assert_int_equal(replay_start(&srv, NULL), 0);
        if (api)
            serve_v3_api(srv, false);
        else
            serve_v3_tag(srv, false);
        serve_rest(srv, 404);
        in = input(srv, repo, sizeof(repo), da);
        in.attestations = atts;
        in.n_attestations = 1;
        run(&r, &in);
        assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
        has(r.message, "no attestation of predicate type " SLSA);
        has(r.message, da);
        replay_free(srv);
    }
}

static void test_retagged_signature_refused(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128], tag[96];
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    /* A's genuine signature, copied onto B's .sig tag */
    snprintf(tag, sizeof(tag), "sha256-%s.sig", db + 7);
    route_manifest(srv, tag, "v2/retag/sig.manifest.json", "v2/retag/sig.payload.json");
    snprintf(tag, sizeof(tag), "sha256-%s.sig", da + 7);
    route_manifest(srv, tag, "v2/retag/sig.manifest.json", "v2/retag/sig.payload.json");
    serve_rest(srv, 404);
    image_verify_input in = input(srv, repo, sizeof(repo), db);
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, db);
    has(r.message, "does not verify");
    assert_string_equal(r.payload_sha256, "");
    /* the same signature, at A's tag, is good for A */
    in.digest = da;
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_VERIFIED);
    replay_free(srv);
}

static void test_tampered_blob_refused(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128], target[256], want[160];
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    /* the signature layer's blob answered with other bytes (routed first, so it wins) */
    char *man = fixture_read(FX "v2/p256/sig.manifest.json", NULL);
    cJSON *doc = cJSON_Parse(man);
    free(man);
    const char *layer = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "layers"), 0), "digest"));
    snprintf(target, sizeof(target), REPO "blobs/%s", layer);
    replay_route(srv, "GET", target,
                 &(replay_reply){.status = 200,
                                 .body = "{\"critical\":{\"image\":{\"docker-manifest-digest\":\"x\"}}}"});
    snprintf(want, sizeof(want), "for %s", layer);
    cJSON_Delete(doc);
    serve_v2(srv);
    serve_rest(srv, 404);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, "the registry answered sha256:");
    has(r.message, want);
    replay_free(srv);
}

static void test_keys(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128];
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_v3_tag(srv, true);
    serve_v2(srv);
    serve_rest(srv, 404);
    /* another key: refused, both layouts looked at */
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    in.public_key_pem = other_pem;
    in.public_key_len = other_len;
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, "has no cosign signature by key sha256:");
    has(r.message, "does not verify");
    assert_true(r.key_id[0] != '\0');
    /* a key that is no key: refused before the registry is asked */
    size_t n = replay_count(srv);
    in.public_key_pem = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    in.public_key_len = strlen(in.public_key_pem);
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, "spec.image.verify.publicKeySecretRef");
    assert_int_equal(replay_count(srv), n);
    /* nor is a bad repository or digest */
    in = input(srv, repo, sizeof(repo), da);
    in.repository = "ghcr.io/kfm/api:v1";
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, "spec.image.repository");
    in = input(srv, repo, sizeof(repo), "sha256:abc");
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_REFUSED);
    has(r.message, "spec.image.digest");
    assert_int_equal(replay_count(srv), n);
    replay_free(srv);
}

static void test_unreachable(void **state)
{
    (void)state;
    replay *srv = NULL;
    char repo[128];
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_rest(srv, 500);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    run(&r, &in);
    assert_int_equal(r.state, IMAGE_VERIFY_UNREACHABLE);
    has(r.message, da);
    has(r.message, "HTTP 500");
    replay_free(srv);
}

/* ---- the cached verifier ------------------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int notified;
static char last_key[64];
static long long fake_now;

static void on_done(void *ctx, const char *key)
{
    (void)ctx;
    pthread_mutex_lock(&mu);
    notified++;
    snprintf(last_key, sizeof(last_key), "%s", key);
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
}

static long long clock_fn(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

/* Waits (up to 30 s) until notified reaches n. */
static void wait_notified(int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&mu);
    while (notified < n && pthread_cond_timedwait(&cond, &mu, &until) == 0)
        ;
    int got = notified;
    pthread_mutex_unlock(&mu);
    assert_true(got >= n);
}

/* get that must answer at once with state */
static void get(image_verify_result *r, image_verifier *v, const image_verify_input *in, image_verify_state state)
{
    if (image_verifier_get(r, v, in, "kfm/api") < 0)
        fail_msg("image_verifier_get: %s", mb_error_last());
    if (r->state != state)
        fail_msg("state %d, not %d: %s", r->state, state, r->message);
}

static void test_verifier_caches(void **state)
{
    (void)state;
    replay *srv = NULL;
    image_verifier *v = NULL;
    char repo[128];
    image_verify_result r;
    const char *atts[] = {SLSA};
    notified = 0;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_v3_tag(srv, true);
    serve_rest(srv, 404);
    assert_int_equal(image_verifier_new(&v, net, on_done, NULL), 0);
    image_verify_input in = input(srv, repo, sizeof(repo), da);

    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    get(&r, v, &in, IMAGE_VERIFY_PENDING); /* still the one run, or done already: both fine */
    wait_notified(1);
    assert_string_equal(last_key, "kfm/api");
    get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
    assert_string_equal(r.layout, "v3");
    assert_int_equal(image_verifier_runs(v), 1);
    size_t asked_before = replay_count(srv);
    get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
    assert_int_equal(image_verifier_runs(v), 1);
    assert_int_equal(replay_count(srv), asked_before); /* a verified digest is not fetched again */

    /* another attestation list is another verification */
    in.attestations = atts;
    in.n_attestations = 1;
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(2);
    get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
    assert_int_equal(image_verifier_runs(v), 2);

    /* a key that cannot be read: REFUSED at once, nothing run */
    in.public_key_pem = "not a key";
    in.public_key_len = 9;
    get(&r, v, &in, IMAGE_VERIFY_REFUSED);
    has(r.message, "spec.image.verify.publicKeySecretRef");
    assert_int_equal(image_verifier_runs(v), 2);
    in.public_key_pem = NULL;
    in.public_key_len = 0;
    get(&r, v, &in, IMAGE_VERIFY_REFUSED);
    has(r.message, "the key is empty");
    assert_int_equal(image_verifier_runs(v), 2);

    image_verifier_free(v);
    replay_free(srv);
}

static void test_verifier_refused_expires(void **state)
{
    (void)state;
    replay *srv = NULL;
    image_verifier *v = NULL;
    char repo[128];
    image_verify_result r;
    notified = 0;
    fake_now = 1000000;
    assert_int_equal(replay_start(&srv, NULL), 0);
    /* nothing signed yet: the referrers API, the fallback tag and the .sig tag are not there */
    for (int i = 0; i < 3; i++)
        replay_add(srv, &(replay_reply){.status = 404});
    assert_int_equal(image_verifier_new(&v, net, on_done, NULL), 0);
    image_verifier_set_clock(v, clock_fn, NULL);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(1);
    get(&r, v, &in, IMAGE_VERIFY_REFUSED);
    has(r.message, "has no cosign signature");
    has(r.message, da);
    assert_int_equal(replay_count(srv), 3);
    /* the refusal is kept for its time: nothing is asked */
    __atomic_store_n(&fake_now, fake_now + IMAGE_VERIFY_REFUSED_TTL_MS - 1, __ATOMIC_SEQ_CST);
    get(&r, v, &in, IMAGE_VERIFY_REFUSED);
    assert_int_equal(image_verifier_runs(v), 1);
    assert_int_equal(replay_count(srv), 3);
    /* the signature is pushed meanwhile; once the refusal has expired it is seen */
    serve_v3_tag(srv, true);
    serve_rest(srv, 404);
    __atomic_store_n(&fake_now, fake_now + 1, __ATOMIC_SEQ_CST);
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(2);
    get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
    assert_int_equal(image_verifier_runs(v), 2);
    image_verifier_free(v);
    replay_free(srv);
}

static void test_verifier_unreachable_retry(void **state)
{
    (void)state;
    replay *srv = NULL;
    image_verifier *v = NULL;
    char repo[128];
    image_verify_result r;
    notified = 0;
    fake_now = 9000000;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_rest(srv, 503);
    assert_int_equal(image_verifier_new(&v, net, on_done, NULL), 0);
    image_verifier_set_clock(v, clock_fn, NULL);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(1);
    get(&r, v, &in, IMAGE_VERIFY_UNREACHABLE);
    size_t n = replay_count(srv);
    /* within the retry interval the registry is not asked again */
    __atomic_store_n(&fake_now, fake_now + IMAGE_VERIFY_RETRY_MS - 1, __ATOMIC_SEQ_CST);
    get(&r, v, &in, IMAGE_VERIFY_UNREACHABLE);
    assert_int_equal(image_verifier_runs(v), 1);
    assert_int_equal(replay_count(srv), n);
    /* after it, the next get starts again */
    __atomic_store_n(&fake_now, fake_now + 1, __ATOMIC_SEQ_CST);
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(2);
    get(&r, v, &in, IMAGE_VERIFY_UNREACHABLE);
    assert_int_equal(image_verifier_runs(v), 2);
    assert_true(replay_count(srv) > n);
    image_verifier_free(v);
    replay_free(srv);
}

/* The cache is bounded: past its capacity (IMAGE_VERIFY_CACHE_MAX, 8 here) the least recently used result goes
 * (and is verified again). */
#define CAP 8

static void test_verifier_bounded(void **state)
{
    (void)state;
    replay *srv = NULL;
    image_verifier *v = NULL;
    char repo[128], digests[CAP + 1][80];
    image_verify_result r;
    notified = 0;
    fake_now = 20000000;
    assert_int_equal(replay_start(&srv, NULL), 0);
    serve_v3_tag(srv, false);
    serve_rest(srv, 404);
    assert_int_equal(image_verifier_new(&v, net, on_done, NULL), 0);
    image_verifier_set_clock(v, clock_fn, NULL); /* the clock stands still: nothing expires */
    image_verifier_set_capacity(v, CAP);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(1);
    get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
    /* as many other (unsigned) digests as the cache holds, the verified one used again halfway */
    for (int i = 0; i < CAP; i++) {
        snprintf(digests[i], sizeof(digests[i]), "sha256:%064x", i + 1);
        in.digest = digests[i];
        get(&r, v, &in, IMAGE_VERIFY_PENDING);
        if (i == CAP / 2) {
            in.digest = da;
            get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
        }
    }
    wait_notified(1 + CAP);
    assert_int_equal(image_verifier_runs(v), 1 + CAP);
    /* the verified digest was used recently: still cached */
    in.digest = da;
    get(&r, v, &in, IMAGE_VERIFY_VERIFIED);
    assert_int_equal(image_verifier_runs(v), 1 + CAP);
    /* the first unsigned one was the least recently used: gone, so verified again */
    in.digest = digests[0];
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    wait_notified(2 + CAP);
    /* and the last is still there */
    in.digest = digests[CAP - 1];
    get(&r, v, &in, IMAGE_VERIFY_REFUSED);
    assert_int_equal(image_verifier_runs(v), 2 + CAP);
    image_verifier_free(v);
    replay_free(srv);
}

static void test_verifier_free_while_running(void **state)
{
    (void)state;
    replay *srv = NULL;
    image_verifier *v = NULL;
    char repo[128];
    image_verify_result r;
    assert_int_equal(replay_start(&srv, NULL), 0);
    replay_route(srv, NULL, "/*", &(replay_reply){.status = 404, .delay_ms = 2000});
    notified = 0;
    assert_int_equal(image_verifier_new(&v, net, on_done, NULL), 0);
    image_verify_input in = input(srv, repo, sizeof(repo), da);
    get(&r, v, &in, IMAGE_VERIFY_PENDING);
    in.digest = db;
    get(&r, v, &in, IMAGE_VERIFY_PENDING); /* queued behind the first */
    assert_true(replay_wait(srv, 1, 5000));
    image_verifier_free(v); /* cancels the transfer, drops the queue, joins */
    assert_int_equal(replay_count(srv), 1);
    assert_int_equal(notified, 0); /* the cut-short run notifies nobody */
    replay_free(srv);
    image_verifier_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v3_bundle_through_tag_fallback),
        cmocka_unit_test(test_v3_bundle_through_referrers_api),
        cmocka_unit_test(test_token_auth),
        cmocka_unit_test(test_v2_sig_and_att),
        cmocka_unit_test(test_attestation_missing),
        cmocka_unit_test(test_retagged_signature_refused),
        cmocka_unit_test(test_tampered_blob_refused),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_verifier_caches),
        cmocka_unit_test(test_verifier_refused_expires),
        cmocka_unit_test(test_verifier_unreachable_retry),
        cmocka_unit_test(test_verifier_bounded),
        cmocka_unit_test(test_verifier_free_while_running),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
