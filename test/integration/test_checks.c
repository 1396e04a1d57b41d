/*
 * The contract checks and the governed API double against the real
 * kube-apiserver of the local control plane: the bearer token is read from a
 * real Secret (and a missing Secret or key says so), and the double, told to
 * follow a real Deployment, changes behaviour when the Deployment's image
 * digest changes (good -> uncited -> a digest without a behaviour), so the
 * checks see a rollout; published-only judges against the published index
 * ConfigMap the double prints, stored in and read back from the apiserver.
 * Skipped without KUBECONFIG.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "kube/client.h"
#include "kube/config.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "release/checks.h"
#include "verify/contract.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NS "checks-test"
#define DIGEST_GOOD "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_UNCITED "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DIGEST_NONE "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define TOKEN "integration-smoke-token"

static kube_client *client;

/* contract_token_read with the release's namespace and authSecretRef, as release/checks.c calls it */
static int token_read(char **out, kube_client *c, const cJSON *rel)
{
    const cJSON *ref = json_get(rel, "spec", "verification", "authSecretRef", NULL);
    const char *name = json_str(ref, "name", NULL), *key = json_str(ref, "key", NULL);
    if (!ref)
        return contract_token_read(out, c, json_str(rel, "metadata", "namespace", NULL), NULL, NULL);
    return contract_token_read(out, c, json_str(rel, "metadata", "namespace", NULL), name ? name : "", key ? key : "");
}

static pid_t double_pid; /* a double still running after a failure: the teardown kills it */

static const char RELEASE[] =
    "{\"metadata\":{\"name\":\"kfm-api\",\"namespace\":\"" NS "\"},"
    "\"spec\":{\"target\":{\"deployment\":\"kfm-api\",\"container\":\"api\"},"
    "\"verification\":{\"authSecretRef\":{\"name\":\"smoke-token\",\"key\":\"token\"},"
    "\"evidenceRefs\":[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"}],"
    "\"focusQuestion\":\"Which wells were sampled in March 2026?\",\"restrictedDatasetID\":\"kfm.sacred-sites\"}}}";

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    return j;
}

static void create(const kube_resource *r, const char *json)
{
    cJSON *obj = parse(json);
    int err = kube_create(NULL, client, r, NS, obj);
    if (err < 0 && err != MB_EEXISTS)
        fail_msg("create %s: %s", r->kind, mb_error_last());
    cJSON_Delete(obj);
}

static void set_image(const char *digest)
{
    char patch[512];
    snprintf(patch, sizeof(patch),
             "{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"api\",\"image\":\"registry.kfm.local/"
             "kfm-api@%s\"}]}}}}",
             digest);
    if (kube_patch(NULL, client, &KUBE_DEPLOYMENTS, NS, "kfm-api", NULL, KUBE_PATCH_STRATEGIC, patch) < 0)
        fail_msg("patch: %s", mb_error_last());
}

static int setup(void **state)
{
    (void)state;
    kube_config *cfg = NULL;
    if (!getenv("KUBECONFIG"))
        return 0;
    kube_client_opts o = {.max_retries = 3};
    if (kube_config_load(&cfg, NULL, NULL) < 0 || kube_client_new(&client, cfg, &o) < 0) {
        fprintf(stderr, "%s\n", mb_error_last());
        return -1;
    }
    /* a namespace left terminating by an earlier run must be gone before it is made again */
    for (int i = 0; i < 120; i++) {
        cJSON *old = NULL;
        if (kube_get(&old, client, &KUBE_NAMESPACES, NULL, NS) < 0)
            break;
        bool terminating = json_get(old, "metadata", "deletionTimestamp", NULL) != NULL;
        cJSON_Delete(old);
        if (!terminating)
            break;
        usleep(500 * 1000);
    }
    cJSON *ns = parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" NS "\"}}");
    int err = kube_create(NULL, client, &KUBE_NAMESPACES, NULL, ns);
    cJSON_Delete(ns);
    if (err < 0 && err != MB_EEXISTS) {
        fprintf(stderr, "%s\n", mb_error_last());
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (double_pid > 0) {
        kill(double_pid, SIGKILL);
        waitpid(double_pid, NULL, 0);
    }
    if (client) {
        kube_delete(client, &KUBE_NAMESPACES, NULL, NS, NULL);
        kube_client_free(client);
    }
    return 0;
}

static void test_token_from_secret(void **state)
{
    (void)state;
    if (!client)
        skip();
    cJSON *rel = parse(RELEASE);
    char *token = NULL;

    kube_delete(client, &KUBE_SECRETS, NS, "smoke-token", NULL);
    assert_int_equal(token_read(&token, client, rel), MB_ENOTFOUND);
    assert_non_null(strstr(mb_error_last(), "Secret " NS "/smoke-token does not exist"));

    create(&KUBE_SECRETS, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"smoke-token\"},"
                          "\"stringData\":{\"other\":\"x\"}}");
    assert_int_equal(token_read(&token, client, rel), MB_ENOTFOUND);
    assert_non_null(strstr(mb_error_last(), "Secret " NS "/smoke-token has no key \"token\""));

    kube_delete(client, &KUBE_SECRETS, NS, "smoke-token", NULL);
    create(&KUBE_SECRETS, "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"smoke-token\"},"
                          "\"stringData\":{\"token\":\"" TOKEN "\\n\"}}");
    assert_int_equal(token_read(&token, client, rel), 0);
    assert_string_equal(token, TOKEN);
    contract_token_free(token);
    cJSON_Delete(rel);
}

static const char *double_binary(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
    assert_true(n > 0);
    path[n] = '\0';
    strcpy(strrchr(path, '/') + 1, "governed-api-double");
    return path;
}

/* The published index promoting what the double serves, as the double prints it, created in the apiserver. */
static void index_create(void)
{
    char cmd[PATH_MAX + 128], buf[8192];
    snprintf(cmd, sizeof(cmd), "'%s' --print-published-index " NS "/kfm-published-datasets", double_binary());
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    create(&KUBE_CONFIGMAPS, buf);
}

static cJSON *run(const char *url, const char *token)
{
    cJSON *rel = parse(RELEASE), *cm = NULL;
    contract_input in;
    cJSON *res = NULL;
    release_contract_input(&in, rel);
    in.base_url = url;
    in.token = token;
    in.release_id = "0a1b2c3d4e5f";
    in.now = time(NULL);
    if (kube_get(&cm, client, &KUBE_CONFIGMAPS, NS, "kfm-published-datasets") < 0)
        fail_msg("the published index: %s", mb_error_last());
    in.published = (contract_index){NS "/kfm-published-datasets", cJSON_GetObjectItem(cm, "data"), NULL};
    if (contract_checks_run(&res, &in) < 0)
        fail_msg("%s", mb_error_last());
    cJSON_Delete(cm);
    cJSON_Delete(rel);
    return res;
}

/* Names of the failed checks, "-" for none. */
static void failed_names(char *out, size_t size, const cJSON *res)
{
    const cJSON *r;
    out[0] = '\0';
    cJSON_ArrayForEach(r, res) {
        if (!json_bool(false, r, "passed", NULL))
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "", json_str(r, "name", NULL));
    }
    if (!out[0])
        snprintf(out, size, "-");
}

/* Runs the checks until the failed set is want (the double reads the Deployment at most every 200 ms). */
static void await_failed(const char *url, const char *token, const char *want)
{
    char got[512] = "";
    for (int i = 0; i < 50; i++) {
        cJSON *res = run(url, token);
        failed_names(got, sizeof(got), res);
        cJSON_Delete(res);
        if (strcmp(got, want) == 0)
            return;
        usleep(100 * 1000);
    }
    fail_msg("expected failed checks %s, still %s after 50 runs", want, got);
}

static void test_double_follows_deployment(void **state)
{
    (void)state;
    if (!client)
        skip();
    create(&KUBE_DEPLOYMENTS, "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"kfm-api\"},"
                              "\"spec\":{\"replicas\":1,\"selector\":{\"matchLabels\":{\"app\":\"kfm-api\"}},"
                              "\"template\":{\"metadata\":{\"labels\":{\"app\":\"kfm-api\"}},\"spec\":{\"containers\":["
                              "{\"name\":\"sidecar\",\"image\":\"registry.kfm.local/opa@" DIGEST_UNCITED "\"},"
                              "{\"name\":\"api\",\"image\":\"registry.kfm.local/kfm-api@" DIGEST_GOOD "\"}]}}}}");
    set_image(DIGEST_GOOD);

    const char *argv[] = {double_binary(),
                          "--listen",
                          "127.0.0.1:0",
                          "--namespace",
                          NS,
                          "--deployment",
                          "kfm-api",
                          "--container",
                          "api",
                          "--behaviour",
                          DIGEST_GOOD "=good",
                          "--behaviour",
                          DIGEST_UNCITED "=uncited",
                          "--token",
                          TOKEN,
                          NULL};
    int out[2];
    pid_t pid;
    posix_spawn_file_actions_t fa;
    assert_int_equal(pipe(out), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    double_pid = pid;
    close(out[1]);
    char line[256] = "", url[96];
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    assert_true(poll(&p, 1, 10000) > 0);
    assert_true(read(out[0], line, sizeof(line) - 1) > 0);
    close(out[0]);
    assert_int_equal(sscanf(line, "listening on %95s", url), 1);

    char *token = NULL;
    cJSON *rel = parse(RELEASE);
    assert_int_equal(token_read(&token, client, rel), 0);
    cJSON_Delete(rel);
    index_create();

    await_failed(url, token, "-");
    set_image(DIGEST_UNCITED); /* a rollout to a version that answers without citations */
    await_failed(url, token, "focus-ask");
    set_image(DIGEST_NONE); /* a version the double has no behaviour for: fails closed */
    await_failed(url, token,
                 "ready,datasets,stac-collections,stac-items,evidence-resolve,focus-ask,lineage,public-restriction,"
                 "published-only");
    set_image(DIGEST_GOOD); /* the rollback */
    await_failed(url, token, "-");
    contract_token_free(token);

    int status = 0;
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    double_pid = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_from_secret),
        cmocka_unit_test(test_double_follows_deployment),
    };
    mb_log_setup(MB_LOG_JSON, MB_LOG_WARN, NULL);
    return cmocka_run_group_tests(tests, setup, teardown);
}
