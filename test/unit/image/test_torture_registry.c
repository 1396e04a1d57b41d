/*
 * Allocation-failure torture of the pure parts of the registry client
 * (test/support/torture.h): the credentials of a .dockerconfigjson (auth in
 * base64, username and password, none for the host, a malformed entry), and
 * the reference and challenge parsers, which must not allocate at all. Every
 * run that succeeds finds the same credentials as the unhindered one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "image/registry.h"
#include "torture.h"
#include "util/error.h"
#include "util/secret.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *config, *repository;
    char *user, *password;
    transcript t;
} auth_ctx;

static int auth_run(void *arg)
{
    auth_ctx *c = arg;
    registry_ref ref;
    char err[REGISTRY_MESSAGE_MAX];
    int rc;
    if ((rc = registry_ref_parse(&ref, c->repository, err)) < 0)
        return rc;
    rc = registry_docker_auth(&c->user, &c->password, c->config, &ref, err);
    if (rc == 0)
        tprintf(&c->t, "%s %s\n", c->user, c->password);
    return rc;
}

static void auth_check(void *arg)
{
    transcript_check(&((auth_ctx *)arg)->t);
}

static void auth_clear(void *arg)
{
    auth_ctx *c = arg;
    mb_secret_free(c->user);
    mb_secret_free(c->password);
    c->user = c->password = NULL;
    transcript_reset(&c->t);
}

static void torture_auth(const char *config, const char *repository, int expect)
{
    static auth_ctx c;
    c = (auth_ctx){.config = config, .repository = repository};
    /* cJSON cannot tell a failed allocation from malformed text: MB_EINVAL (not a JSON object) may come of one */
    torture_case tc = {.name = "registry_docker_auth",
                       .run = auth_run,
                       .check = auth_check,
                       .clear = auth_clear,
                       .ctx = &c,
                       .expect = expect,
                       .errors = {MB_EINVAL, MB_ENOTFOUND, 0}};
    torture_check(&tc);
    transcript_free(&c.t);
}

static void test_docker_auth(void **state)
{
    (void)state;
    const char *cfg = "{\"auths\":{\"quay.io\":{\"username\":\"bob\",\"password\":\"pw\"},"
                      "\"https://ghcr.io/v1/\":{\"auth\":\"YWxpY2U6czNjcjpldA==\"},"
                      "\"docker.io\":{\"auth\":\"aHViOmh1YnB3\"},\"bad.io\":{\"auth\":\"bm9jb2xvbg==\"}}}";
    torture_auth(cfg, "ghcr.io/kfm/api", 0);
    torture_auth(cfg, "quay.io/kfm/api", 0);
    torture_auth(cfg, "nginx", 0);
    torture_auth(cfg, "gcr.io/x/y", MB_ENOTFOUND);
    torture_auth(cfg, "bad.io/x", MB_EINVAL);
}

static int parse_run(void *arg)
{
    (void)arg;
    registry_ref ref;
    registry_challenge ch;
    char err[REGISTRY_MESSAGE_MAX];
    int rc;
    if ((rc = registry_ref_parse(&ref, "localhost:5000/a/b", err)) < 0)
        return rc;
    if ((rc = registry_ref_parse(&ref, "nginx", err)) < 0)
        return rc;
    return registry_challenge_parse(&ch, "Bearer realm=\"https://r/t\",service=\"s\",scope=\"repository:a:pull,push\"");
}

static void test_parsers_do_not_allocate(void **state)
{
    (void)state;
    torture_case tc = {.name = "registry_ref_parse and registry_challenge_parse", .run = parse_run};
    assert_int_equal(torture_check(&tc), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_docker_auth),
        cmocka_unit_test(test_parsers_do_not_allocate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
