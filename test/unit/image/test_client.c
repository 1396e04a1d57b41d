/*
 * The OCI distribution client (image/registry.h) against the loopback replay
 * server: the token dance (401 Bearer, the realm asked with the docker
 * config's Basic credentials, the request sent again with the token, the
 * token reused by the next request), a Basic challenge, credentials refused
 * (named, with the Secret to fix), a manifest or blob whose bytes do not hash
 * to the digest asked for refused, a blob followed through a redirect to its
 * storage, the referrers API and its tag-schema fallback on 404, 5xx and a
 * closed port as UNREACHABLE, an answer past the size limit refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "image/registry.h"
#include "replay.h"
#include "testpki.h"
#include "util/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static net_loop *net;

static int setup(void **state)
{
    (void)state;
    return net_loop_new(&net, NULL);
}

static int teardown(void **state)
{
    (void)state;
    net_loop_free(net);
    return 0;
}

static void sha256_of(char out[72], const char *s, size_t n)
{
    unsigned char h[32];
    unsigned int hl = 0;
    EVP_Digest(s, n, h, &hl, EVP_sha256(), NULL);
    strcpy(out, "sha256:");
    for (unsigned i = 0; i < hl; i++)
        sprintf(out + 7 + 2 * i, "%02x", h[i]);
}

/* "127.0.0.1:<port>/<name>" of the replay server. */
static void repo_of(char *buf, size_t size, const replay *srv, const char *name)
{
    snprintf(buf, size, "%s/%s", replay_url(srv) + strlen("http://"), name);
}

typedef struct {
    replay *srv;
    registry_ref ref;
    registry *reg;
    registry_answer a;
} fx;

/* The server and a client of it; cfg_fmt: a docker config with one %s for the server's host:port, or NULL. */
static void fx_open(fx *f, const char *cfg_fmt)
{
    char repo[128], err[REGISTRY_MESSAGE_MAX], cfg[512];
    memset(f, 0, sizeof(*f));
    assert_int_equal(replay_start(&f->srv, NULL), 0);
    repo_of(repo, sizeof(repo), f->srv, "team/app");
    assert_int_equal(registry_ref_parse(&f->ref, repo, err), 0);
    if (cfg_fmt)
        snprintf(cfg, sizeof(cfg), cfg_fmt, replay_url(f->srv) + strlen("http://"));
    registry_opts o = {.net = net,
                       .ref = &f->ref,
                       .docker_config = cfg_fmt ? cfg : NULL,
                       .insecure = true,
                       .timeout_ms = 20000};
    if (registry_new(&f->reg, &o) < 0)
        fail_msg("registry_new: %s", mb_error_last());
}

static void fx_close(fx *f)
{
    registry_answer_clear(&f->a);
    registry_free(f->reg);
    replay_free(f->srv);
}

static const char *target(fx *f, size_t i)
{
    const replay_request *q = replay_get(f->srv, i);
    assert_non_null(q);
    return q->target;
}

static const char *header(fx *f, size_t i, const char *name)
{
    const replay_request *q = replay_get(f->srv, i);
    assert_non_null(q);
    return replay_header(q, name);
}

static const char MANIFEST[] = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                               "\"config\":{},\"layers\":[]}";

static void test_token_dance(void **state)
{
    (void)state;
    fx f;
    char digest[72], challenge[512], path[160], blob_path[160];
    sha256_of(digest, MANIFEST, strlen(MANIFEST));
    /* dXNlcjpwYXNz: "user:pass" */
    fx_open(&f, "{\"auths\":{\"%s\":{\"auth\":\"dXNlcjpwYXNz\"}}}");
    snprintf(challenge, sizeof(challenge),
             "WWW-Authenticate: Bearer realm=\"%s/token\",service=\"reg.local\",scope=\"repository:team/app:pull\"\r\n",
             replay_url(f.srv));
    replay_add(f.srv, &(replay_reply){.status = 401, .headers = challenge, .body = "{\"errors\":[]}"});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "{\"token\":\"tok-ABC.def\",\"expires_in\":300}"});
    replay_add(f.srv, &(replay_reply){.status = 200,
                                      .headers = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                                      .body = MANIFEST});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "blob"});

    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    assert_string_equal(f.a.body, MANIFEST);
    assert_string_equal(f.a.content_type, "application/vnd.oci.image.manifest.v1+json");
    snprintf(path, sizeof(path), "/v2/team/app/manifests/%s", digest);
    assert_string_equal(target(&f, 0), path);
    assert_null(header(&f, 0, "Authorization")); /* anonymous first */
    assert_non_null(strstr(header(&f, 0, "Accept"), "application/vnd.oci.image.index.v1+json"));
    assert_string_equal(target(&f, 1), "/token?service=reg.local&scope=repository%3Ateam%2Fapp%3Apull");
    assert_string_equal(header(&f, 1, "Authorization"), "Basic dXNlcjpwYXNz");
    assert_string_equal(target(&f, 2), path);
    assert_string_equal(header(&f, 2, "Authorization"), "Bearer tok-ABC.def");

    /* the token is reused: the next request carries it at once */
    char bd[72];
    sha256_of(bd, "blob", 4);
    registry_answer_clear(&f.a);
    assert_int_equal(registry_blob(&f.a, f.reg, bd), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    snprintf(blob_path, sizeof(blob_path), "/v2/team/app/blobs/%s", bd);
    assert_string_equal(target(&f, 3), blob_path);
    assert_string_equal(header(&f, 3, "Authorization"), "Bearer tok-ABC.def");
    assert_int_equal(replay_count(f.srv), 4);
    assert_int_equal(registry_requests(f.reg), 4);
    fx_close(&f);
}

static void test_basic_and_refused_credentials(void **state)
{
    (void)state;
    fx f;
    char digest[72];
    sha256_of(digest, MANIFEST, strlen(MANIFEST));

    /* anonymous, a Basic challenge: refused, naming the Secret to set */
    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 401, .headers = "WWW-Authenticate: Basic realm=\"reg\"\r\n"});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_true(f.a.denied);
    assert_non_null(strstr(f.a.message, "spec.image.verify.registrySecretRef"));
    assert_int_equal(replay_count(f.srv), 1);
    fx_close(&f);

    /* with credentials: Basic is sent again, then kept */
    fx_open(&f, "{\"auths\":{\"http://%s\":{\"username\":\"u\",\"password\":\"p\"}}}");
    replay_add(f.srv, &(replay_reply){.status = 401, .headers = "WWW-Authenticate: Basic realm=\"reg\"\r\n"});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = MANIFEST});
    replay_add(f.srv, &(replay_reply){.status = 404});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    assert_string_equal(header(&f, 1, "Authorization"), "Basic dTpw"); /* "u:p" */
    registry_answer_clear(&f.a);
    assert_int_equal(registry_manifest(&f.a, f.reg, "sha256-abc.sig"), 0);
    assert_int_equal(f.a.outcome, REGISTRY_NOT_FOUND);
    assert_string_equal(header(&f, 2, "Authorization"), "Basic dTpw");
    fx_close(&f);

    /* a token that does not open the repository: refused after the dance, not retried forever */
    fx_open(&f, NULL);
    char challenge[256];
    snprintf(challenge, sizeof(challenge), "WWW-Authenticate: Bearer realm=\"%s/token\"\r\n", replay_url(f.srv));
    replay_add(f.srv, &(replay_reply){.status = 401, .headers = challenge});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "{\"access_token\":\"t2\"}"});
    replay_add(f.srv, &(replay_reply){.status = 403, .body = "{\"errors\":[{\"code\":\"DENIED\"}]}"});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_true(f.a.denied);
    assert_non_null(strstr(f.a.message, "HTTP 403"));
    assert_non_null(strstr(f.a.message, "anonymously"));
    assert_string_equal(target(&f, 1), "/token?scope=repository%3Ateam%2Fapp%3Apull");
    assert_string_equal(header(&f, 2, "Authorization"), "Bearer t2");
    assert_int_equal(replay_count(f.srv), 3);
    fx_close(&f);

    /* the token service refuses the credentials */
    fx_open(&f, NULL);
    snprintf(challenge, sizeof(challenge), "WWW-Authenticate: Bearer realm=\"%s/token\"\r\n", replay_url(f.srv));
    replay_add(f.srv, &(replay_reply){.status = 401, .headers = challenge});
    replay_add(f.srv, &(replay_reply){.status = 401});
    assert_int_equal(registry_blob(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_true(f.a.denied);
    assert_non_null(strstr(f.a.message, "token service"));
    fx_close(&f);

    /* a token service that answers no token */
    fx_open(&f, NULL);
    snprintf(challenge, sizeof(challenge), "WWW-Authenticate: Bearer realm=\"%s/token\"\r\n", replay_url(f.srv));
    replay_add(f.srv, &(replay_reply){.status = 401, .headers = challenge});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "{\"token\":\"\"}"});
    assert_int_equal(registry_blob(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_non_null(strstr(f.a.message, "no usable token"));
    fx_close(&f);

    /* a 401 without a challenge */
    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 401});
    assert_int_equal(registry_blob(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_non_null(strstr(f.a.message, "without a WWW-Authenticate challenge"));
    fx_close(&f);
}

static void test_digests_checked(void **state)
{
    (void)state;
    fx f;
    char digest[72], other[72], path[160];
    sha256_of(digest, MANIFEST, strlen(MANIFEST));
    sha256_of(other, "tampered", 8);

    fx_open(&f, NULL);
    /* a manifest asked for by digest must hash to it */
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "tampered"});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_null(f.a.body);
    char want[200];
    snprintf(want, sizeof(want), "the registry answered %s for %s", other, digest);
    if (!strstr(f.a.message, want))
        fail_msg("\"%s\" does not say \"%s\"", f.a.message, want);
    /* so must a blob */
    registry_answer_clear(&f.a);
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "tampered"});
    assert_int_equal(registry_blob(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_non_null(strstr(f.a.message, want));
    /* a blob redirected to its storage is followed, and its bytes checked there */
    registry_answer_clear(&f.a);
    char loc[256];
    snprintf(loc, sizeof(loc), "Location: %s/storage/blob-1?sig=x\r\n", replay_url(f.srv));
    replay_add(f.srv, &(replay_reply){.status = 307, .headers = loc});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = MANIFEST});
    assert_int_equal(registry_blob(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    assert_int_equal(f.a.len, strlen(MANIFEST));
    assert_string_equal(target(&f, 3), "/storage/blob-1?sig=x");
    /* a tag is not a digest: not checked */
    registry_answer_clear(&f.a);
    replay_add(f.srv, &(replay_reply){.status = 200, .body = "tampered"});
    snprintf(path, sizeof(path), "sha256-%s.sig", digest + 7);
    assert_int_equal(registry_manifest(&f.a, f.reg, path), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    /* neither a digest nor a tag: refused before anything is sent */
    registry_answer_clear(&f.a);
    size_t n = replay_count(f.srv);
    assert_int_equal(registry_manifest(&f.a, f.reg, "../../x"), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    registry_answer_clear(&f.a);
    assert_int_equal(registry_blob(&f.a, f.reg, "sha256:ABC"), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_int_equal(replay_count(f.srv), n);
    fx_close(&f);
}

static void test_referrers(void **state)
{
    (void)state;
    fx f;
    char digest[72], api[200], tag[200];
    bool fallback = true;
    static const char INDEX[] = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
                                "\"manifests\":[]}";
    sha256_of(digest, MANIFEST, strlen(MANIFEST));
    snprintf(api, sizeof(api), "/v2/team/app/referrers/%s", digest);
    snprintf(tag, sizeof(tag), "/v2/team/app/manifests/sha256-%s", digest + 7);

    /* the API answers */
    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 200, .body = INDEX});
    assert_int_equal(registry_referrers(&f.a, f.reg, digest, &fallback), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    assert_false(fallback);
    assert_string_equal(target(&f, 0), api);
    assert_string_equal(header(&f, 0, "Accept"), "application/vnd.oci.image.index.v1+json");
    assert_int_equal(replay_count(f.srv), 1);
    fx_close(&f);

    /* no API (404): the index at the tag sha256-<hex> */
    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 404, .body = "404 page not found"});
    replay_add(f.srv, &(replay_reply){.status = 200, .body = INDEX});
    assert_int_equal(registry_referrers(&f.a, f.reg, digest, &fallback), 0);
    assert_int_equal(f.a.outcome, REGISTRY_FOUND);
    assert_true(fallback);
    assert_string_equal(f.a.body, INDEX);
    assert_string_equal(target(&f, 1), tag);
    fx_close(&f);

    /* neither: not found (data, not an error) */
    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 404});
    replay_add(f.srv, &(replay_reply){.status = 404});
    assert_int_equal(registry_referrers(&f.a, f.reg, digest, &fallback), 0);
    assert_int_equal(f.a.outcome, REGISTRY_NOT_FOUND);
    fx_close(&f);

    /* the API failing is not a missing API: no fallback, transient */
    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 503});
    assert_int_equal(registry_referrers(&f.a, f.reg, digest, &fallback), 0);
    assert_int_equal(f.a.outcome, REGISTRY_UNREACHABLE);
    assert_false(fallback);
    assert_non_null(strstr(f.a.message, "HTTP 503"));
    assert_int_equal(replay_count(f.srv), 1);
    fx_close(&f);
}

static void test_unreachable_and_limits(void **state)
{
    (void)state;
    fx f;
    char digest[72];
    sha256_of(digest, MANIFEST, strlen(MANIFEST));

    fx_open(&f, NULL);
    replay_add(f.srv, &(replay_reply){.status = 500});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_UNREACHABLE);
    registry_answer_clear(&f.a);
    replay_add(f.srv, &(replay_reply){.status = 429});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_UNREACHABLE);
    registry_answer_clear(&f.a);
    replay_add(f.srv, &(replay_reply){.status = 400});
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_non_null(strstr(f.a.message, "HTTP 400"));
    /* more than 4 MiB: refused, not kept */
    registry_answer_clear(&f.a);
    size_t big = (size_t)REGISTRY_MAX_BYTES + 10;
    char *body = malloc(big);
    memset(body, 'x', big);
    replay_add(f.srv, &(replay_reply){.status = 200, .body = body, .len = big});
    free(body);
    assert_int_equal(registry_blob(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_REFUSED);
    assert_non_null(strstr(f.a.message, "larger than"));
    fx_close(&f);

    /* a port nobody listens on */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    char repo[64], err[REGISTRY_MESSAGE_MAX];
    registry_ref ref;
    registry *reg = NULL;
    registry_answer a = {0};
    snprintf(repo, sizeof(repo), "127.0.0.1:%d/team/app", ntohs(sa.sin_port));
    assert_int_equal(registry_ref_parse(&ref, repo, err), 0);
    registry_opts o = {.net = net, .ref = &ref, .insecure = true, .timeout_ms = 3000};
    assert_int_equal(registry_new(&reg, &o), 0);
    assert_int_equal(registry_manifest(&a, reg, digest), 0);
    assert_int_equal(a.outcome, REGISTRY_UNREACHABLE);
    registry_answer_clear(&a);
    registry_free(reg);
}

/* https: a certificate the client cannot verify is refused with the CA to set; with that CA it is fetched. */
static void test_tls(void **state)
{
    (void)state;
    testpki pki;
    replay *srv = NULL;
    registry_ref ref;
    registry *reg = NULL;
    registry_answer a = {0};
    char repo[128], err[REGISTRY_MESSAGE_MAX], digest[72];
    sha256_of(digest, MANIFEST, strlen(MANIFEST));
    assert_int_equal(testpki_make(&pki, "IP:127.0.0.1"), 0);
    replay_opts opts = {.tls_cert = pki.server_cert, .tls_key = pki.server_key};
    assert_int_equal(replay_start(&srv, &opts), 0);
    replay_route(srv, "GET", "/*", &(replay_reply){.status = 200, .body = MANIFEST});
    snprintf(repo, sizeof(repo), "%s/team/app", replay_url(srv) + strlen("https://"));
    assert_int_equal(registry_ref_parse(&ref, repo, err), 0);

    registry_opts o = {.net = net, .ref = &ref, .timeout_ms = 30000};
    assert_int_equal(registry_new(&reg, &o), 0);
    assert_int_equal(registry_manifest(&a, reg, digest), 0);
    if (a.outcome != REGISTRY_REFUSED)
        fail_msg("%d: %s", a.outcome, a.message);
    assert_non_null(strstr(a.message, "spec.image.verify.caSecretRef"));
    registry_answer_clear(&a);
    registry_free(reg);

    o.ca_pem = pki.ca_cert;
    assert_int_equal(registry_new(&reg, &o), 0);
    assert_int_equal(registry_manifest(&a, reg, digest), 0);
    assert_int_equal(a.outcome, REGISTRY_FOUND);
    registry_answer_clear(&a);
    registry_free(reg);

    /* another CA does not make it trusted */
    o.ca_pem = pki.other_ca_cert;
    assert_int_equal(registry_new(&reg, &o), 0);
    assert_int_equal(registry_manifest(&a, reg, digest), 0);
    assert_int_equal(a.outcome, REGISTRY_REFUSED);
    registry_answer_clear(&a);
    registry_free(reg);
    replay_free(srv);
    testpki_clear(&pki);
}

static void test_bad_docker_config(void **state)
{
    (void)state;
    registry_ref ref;
    registry *reg = NULL;
    char err[REGISTRY_MESSAGE_MAX];
    assert_int_equal(registry_ref_parse(&ref, "ghcr.io/a/b", err), 0);
    registry_opts o = {.net = net, .ref = &ref, .docker_config = "{\"auths\":{\"ghcr.io\":{\"auth\":\"eA==\"}}}"};
    assert_int_equal(registry_new(&reg, &o), MB_EINVAL);
    assert_null(reg);
    assert_non_null(strstr(mb_error_last(), "auths[\"ghcr.io\"].auth"));
}

static void test_cancel(void **state)
{
    (void)state;
    fx f;
    char digest[72], repo[128], err[REGISTRY_MESSAGE_MAX];
    registry_cancel c;
    sha256_of(digest, MANIFEST, strlen(MANIFEST));
    registry_cancel_init(&c);
    fx_open(&f, NULL);
    registry_free(f.reg);
    repo_of(repo, sizeof(repo), f.srv, "team/app");
    assert_int_equal(registry_ref_parse(&f.ref, repo, err), 0);
    registry_opts o = {.net = net, .ref = &f.ref, .insecure = true, .timeout_ms = 5000, .cancel = &c};
    assert_int_equal(registry_new(&f.reg, &o), 0);
    registry_cancel_fire(&c);
    assert_int_equal(registry_manifest(&f.a, f.reg, digest), 0);
    assert_int_equal(f.a.outcome, REGISTRY_UNREACHABLE);
    assert_non_null(strstr(f.a.message, "cancelled"));
    assert_int_equal(replay_count(f.srv), 0);
    fx_close(&f);
    registry_cancel_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_dance),
        cmocka_unit_test(test_basic_and_refused_credentials),
        cmocka_unit_test(test_digests_checked),
        cmocka_unit_test(test_referrers),
        cmocka_unit_test(test_unreachable_and_limits),
        cmocka_unit_test(test_tls),
        cmocka_unit_test(test_bad_docker_config),
        cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
