/*
 * The pure parts of the OCI distribution client (image/registry.h): the
 * repository reference as Kubernetes and docker read it (Docker Hub's short
 * forms, host:port, localhost, IPv6, what is refused and that the refusal
 * names spec.image.repository), the WWW-Authenticate challenge (quoted and
 * bare values, commas inside a quoted scope, escapes, malformed ones), and
 * the credentials a .dockerconfigjson has for a host (auth in base64,
 * username and password, the Docker Hub keys, a URL key, a host it has none
 * for, malformed entries named).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "image/registry.h"
#include "util/error.h"
#include "util/secret.h"

#include <stdio.h>
#include <string.h>

static void parses(const char *repo, const char *host, const char *name, bool hub)
{
    registry_ref r;
    char err[REGISTRY_MESSAGE_MAX];
    if (registry_ref_parse(&r, repo, err) != 0)
        fail_msg("%s: %s", repo, err);
    assert_string_equal(r.host, host);
    assert_string_equal(r.name, name);
    assert_int_equal(r.docker_hub, hub);
}

static void refused(const char *repo, const char *why)
{
    registry_ref r;
    char err[REGISTRY_MESSAGE_MAX];
    if (registry_ref_parse(&r, repo, err) != MB_EINVAL)
        fail_msg("\"%s\" was accepted", repo ? repo : "(null)");
    assert_non_null(strstr(err, "spec.image.repository"));
    if (why && !strstr(err, why))
        fail_msg("\"%s\": \"%s\" does not say \"%s\"", repo ? repo : "(null)", err, why);
}

static void test_reference(void **state)
{
    (void)state;
    parses("nginx", "registry-1.docker.io", "library/nginx", true);
    parses("kfm/kfm-api", "registry-1.docker.io", "kfm/kfm-api", true);
    parses("docker.io/nginx", "registry-1.docker.io", "library/nginx", true);
    parses("docker.io/kfm/api", "registry-1.docker.io", "kfm/api", true);
    parses("index.docker.io/library/nginx", "registry-1.docker.io", "library/nginx", true);
    parses("ghcr.io/kfm/kfm-api", "ghcr.io", "kfm/kfm-api", false);
    parses("localhost/app", "localhost", "app", false);
    parses("localhost:5000/a/b/c", "localhost:5000", "a/b/c", false);
    parses("127.0.0.1:38211/signed/app", "127.0.0.1:38211", "signed/app", false);
    parses("registry:5000/app", "registry:5000", "app", false);
    parses("[::1]:5000/app", "[::1]:5000", "app", false);
    parses("quay.io/a_b/c__d/e--f/g.h", "quay.io", "a_b/c__d/e--f/g.h", false);
    /* the first component is a path when it has no '.', ':' and is not localhost */
    parses("myhost/app", "registry-1.docker.io", "myhost/app", true);

    refused(NULL, "empty");
    refused("", "empty");
    refused("ghcr.io/kfm/api:v1", "tag");
    refused("nginx:latest", "tag");
    refused("ghcr.io/kfm/api@sha256:0000000000000000000000000000000000000000000000000000000000000000", "digest");
    refused("ghcr.io/Kfm/api", "path component");
    refused("ghcr.io/kfm//api", "path component");
    refused("ghcr.io/kfm/api/", "path component");
    refused("ghcr.io/-kfm/api", "path component");
    refused("ghcr.io/kfm/a...b", "path component");
    refused("ghcr.io/kfm/a___b", "path component");
    /* as docker reads it: a single component is a Docker Hub name, dots and all */
    parses("ghcr.io", "registry-1.docker.io", "library/ghcr.io", true);
    refused("ghcr.io/", "path component");
    refused("gh_cr.io/app", "host");
    refused("-ghcr.io/app", "host");
    refused("ghcr.io.:5000/app", "host");
    refused("ghcr.io:/app", "host");
    refused("ghcr.io:50a0/app", "host");
    refused("ghcr.io:123456/app", "host");
    refused("[::1/app", "host");
    refused("ghcr.io/kfm api", "spaces");
    refused("ghcr.io/kfm\napi", "control");
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memcpy(longname, "ghcr.io/", 8);
    refused(longname, "longer");
}

static void challenge(const char *header, const char *scheme, const char *realm, const char *service, const char *scope)
{
    registry_challenge c;
    if (registry_challenge_parse(&c, header) != 0)
        fail_msg("%s: %s", header, mb_error_last());
    assert_string_equal(c.scheme, scheme);
    assert_string_equal(c.realm, realm);
    assert_string_equal(c.service, service);
    assert_string_equal(c.scope, scope);
}

static void test_challenge(void **state)
{
    (void)state;
    registry_challenge c;
    challenge("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
              "scope=\"repository:library/nginx:pull\"",
              "Bearer", "https://auth.docker.io/token", "registry.docker.io", "repository:library/nginx:pull");
    /* a comma inside a quoted scope belongs to it */
    challenge("Bearer realm=\"https://ghcr.io/token\",service=\"ghcr.io\",scope=\"repository:kfm/api:pull,push\"",
              "Bearer", "https://ghcr.io/token", "ghcr.io", "repository:kfm/api:pull,push");
    /* bare values, spaces, upper-case names, unknown parameters and an escaped quote */
    challenge("  bearer  Realm=https://r.example/t , Service = reg , error=\"invalid_token\" , "
              "scope=\"a\\\"b\"",
              "bearer", "https://r.example/t", "reg", "a\"b");
    challenge("Basic realm=\"Registry Realm\"", "Basic", "Registry Realm", "", "");
    challenge("Basic", "Basic", "", "", "");

    assert_int_equal(registry_challenge_parse(&c, NULL), MB_EINVAL);
    assert_int_equal(registry_challenge_parse(&c, ""), MB_EINVAL);
    assert_int_equal(registry_challenge_parse(&c, "=x"), MB_EINVAL);
    assert_int_equal(registry_challenge_parse(&c, "Bearer realm=\"https://x"), MB_EINVAL);
    assert_int_equal(registry_challenge_parse(&c, "Bearer realm"), MB_EINVAL);
    assert_int_equal(registry_challenge_parse(&c, "Bearer ,=x"), MB_EINVAL);
    char big[2048];
    snprintf(big, sizeof(big), "Bearer realm=\"%01500d\"", 0);
    assert_int_equal(registry_challenge_parse(&c, big), MB_EINVAL);
}

static void creds(const char *config, const char *repo, const char *user, const char *password)
{
    registry_ref r;
    char err[REGISTRY_MESSAGE_MAX], *u = NULL, *p = NULL;
    assert_int_equal(registry_ref_parse(&r, repo, err), 0);
    int rc = registry_docker_auth(&u, &p, config, &r, err);
    if (rc != 0)
        fail_msg("%s in %s: %d %s", repo, config, rc, err);
    assert_string_equal(u, user);
    assert_string_equal(p, password);
    mb_secret_free(u);
    mb_secret_free(p);
}

static int auth_rc(const char *config, const char *repo, const char *want_in_err)
{
    registry_ref r;
    char err[REGISTRY_MESSAGE_MAX], *u = (char *)"x", *p = (char *)"x";
    assert_int_equal(registry_ref_parse(&r, repo, err), 0);
    int rc = registry_docker_auth(&u, &p, config, &r, err);
    assert_null(u);
    assert_null(p);
    if (want_in_err && !strstr(err, want_in_err))
        fail_msg("\"%s\" does not say \"%s\"", err, want_in_err);
    return rc;
}

static void test_docker_config(void **state)
{
    (void)state;
    /* "alice:s3cr:et" in base64: the password may hold ':' */
    const char *cfg = "{\"auths\":{"
                      "\"ghcr.io\":{\"auth\":\"YWxpY2U6czNjcjpldA==\"},"
                      "\"https://quay.io/v1/\":{\"username\":\"bob\",\"password\":\"pw\"},"
                      "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
                      "\"localhost:5000\":{\"auth\":\"\",\"username\":\"carol\",\"password\":\"c\"}}}";
    creds(cfg, "ghcr.io/kfm/api", "alice", "s3cr:et");
    creds(cfg, "quay.io/org/app", "bob", "pw");
    creds(cfg, "nginx", "hub", "hubpw");
    creds(cfg, "docker.io/kfm/api", "hub", "hubpw");
    creds(cfg, "localhost:5000/app", "carol", "c");
    creds("{\"auths\":{\"docker.io\":{\"username\":\"d\",\"password\":\"e\"}}}", "kfm/api", "d", "e");
    creds("{\"auths\":{\"http://registry.local:5000\":{\"username\":\"f\",\"password\":\"g\"}}}",
          "registry.local:5000/a", "f", "g");

    /* none for that host (a port is part of the host) */
    assert_int_equal(auth_rc(cfg, "gcr.io/x/y", NULL), MB_ENOTFOUND);
    assert_int_equal(auth_rc(cfg, "localhost:5001/app", NULL), MB_ENOTFOUND);
    assert_int_equal(auth_rc(cfg, "ghcr.io.evil.example/app", NULL), MB_ENOTFOUND);
    assert_int_equal(auth_rc(NULL, "ghcr.io/a", NULL), MB_ENOTFOUND);
    assert_int_equal(auth_rc("{\"auths\":{}}", "ghcr.io/a", NULL), MB_ENOTFOUND);

    /* malformed: named */
    assert_int_equal(auth_rc("not json", "ghcr.io/a", ".dockerconfigjson is not a JSON object"), MB_EINVAL);
    assert_int_equal(auth_rc("{\"ghcr.io\":{}}", "ghcr.io/a", "no \"auths\" object"), MB_EINVAL);
    assert_int_equal(auth_rc("{\"auths\":{\"ghcr.io\":{\"auth\":\"bm9jb2xvbg==\"}}}", "ghcr.io/a",
                             "auths[\"ghcr.io\"].auth is not base64 of \"username:password\""),
                     MB_EINVAL);
    assert_int_equal(auth_rc("{\"auths\":{\"ghcr.io\":{\"auth\":\"%%%\"}}}", "ghcr.io/a", "auths[\"ghcr.io\"].auth"),
                     MB_EINVAL);
    assert_int_equal(auth_rc("{\"auths\":{\"ghcr.io\":{\"username\":\"u\"}}}", "ghcr.io/a",
                             "auths[\"ghcr.io\"] has neither"),
                     MB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_challenge),
        cmocka_unit_test(test_docker_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
