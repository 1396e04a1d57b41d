/*
 * The contract checks against the real governed-api-double binary, started
 * by the test on loopback with --fixed-digest (no Kubernetes lookup): each
 * behaviour makes exactly the expected checks fail, with the expected
 * triggers; a digest without a behaviour fails closed; the bearer token is
 * enforced and never logged; every request is logged once with its
 * X-Request-ID; SIGTERM ends the double with status 0, also while it is
 * holding a slow answer; a control request changes a digest's behaviour.
 * published-only judges the double's listing against the published index the
 * double prints (--print-published-index, which e2e/lib.sh's published_index
 * applies), so the index the e2e scenarios use promotes what the double serves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "verify/contract.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define RID "5e1d2c3b4a59"
#define TOKEN "double-smoke-token-42"
#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* Doubles still running: a failed test leaves its double to the teardown, which kills it. */
static pid_t live[8];

static void live_set(pid_t pid, bool on)
{
    for (size_t i = 0; i < 8; i++) {
        if (on ? live[i] == 0 : live[i] == pid) {
            live[i] = on ? pid : 0;
            return;
        }
    }
}

static int kill_leftovers(void **state)
{
    (void)state;
    for (size_t i = 0; i < 8; i++) {
        if (live[i]) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    }
    return 0;
}

typedef struct {
    pid_t pid;
    int log_fd; /* the double's stderr, in an unlinked temporary file */
    char url[96];
} dbl;

static const char *double_binary(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
    assert_true(n > 0);
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    assert_non_null(slash);
    strcpy(slash + 1, "governed-api-double");
    if (access(path, X_OK) != 0)
        fail_msg("%s is missing: build the governed-api-double target", path);
    return path;
}

/* Starts the double with args (NULL-terminated, after the program name) and waits for its address. */
static void dbl_start(dbl *d, const char *const *args)
{
    const char *argv[32] = {double_binary()};
    size_t n = 1;
    int out[2];
    char tmpl[] = "/tmp/membrane-double-log-XXXXXX";
    posix_spawn_file_actions_t fa;

    while (*args && n < 31)
        argv[n++] = *args++;
    argv[n] = NULL;
    assert_int_equal(pipe(out), 0);
    d->log_fd = mkstemp(tmpl);
    assert_true(d->log_fd >= 0);
    unlink(tmpl);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, d->log_fd, 2);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    assert_int_equal(posix_spawn(&d->pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    live_set(d->pid, true);
    close(out[1]);

    char line[256];
    size_t len = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (len < sizeof(line) - 1 && !memchr(line, '\n', len)) {
        if (poll(&p, 1, 10000) <= 0)
            fail_msg("the double did not say where it listens within 10 s");
        ssize_t k = read(out[0], line + len, sizeof(line) - 1 - len);
        if (k <= 0)
            fail_msg("the double exited before listening");
        len += (size_t)k;
    }
    line[len] = '\0';
    close(out[0]);
    assert_int_equal(sscanf(line, "listening on %95s", d->url), 1);
}

/* SIGTERM, wait, and return the exit status; *log gets the double's stderr (caller frees). */
static int dbl_stop(dbl *d, char **log)
{
    int status = 0;
    assert_int_equal(kill(d->pid, SIGTERM), 0);
    assert_int_equal(waitpid(d->pid, &status, 0), d->pid);
    live_set(d->pid, false);
    off_t size = lseek(d->log_fd, 0, SEEK_END);
    char *text = malloc((size_t)size + 1);
    assert_non_null(text);
    assert_int_equal(pread(d->log_fd, text, (size_t)size, 0), size);
    text[size] = '\0';
    close(d->log_fd);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) /* show why */
        fprintf(stderr, "the double ended with status 0x%x; its log:\n%s\n", status, text);
    if (log)
        *log = text;
    else
        free(text);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/*
 * The published index that promotes the double's catalog, as the double
 * prints it (--print-published-index, which e2e/lib.sh's published_index
 * applies): the ConfigMap, checked for what DatasetPromotion writes.
 */
static cJSON *printed_index(const char *restricted)
{
    char cmd[PATH_MAX + 128], buf[8192];
    snprintf(cmd, sizeof(cmd), "'%s' --print-published-index kfm/kfm-published-datasets%s%s", double_binary(),
             restricted ? " --restricted-dataset " : "", restricted ? restricted : "");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    assert_int_equal(pclose(p), 0);
    cJSON *cm = cJSON_Parse(buf);
    assert_non_null(cm);
    assert_string_equal(json_str(cm, "kind", NULL), "ConfigMap");
    assert_string_equal(json_str(cm, "metadata", "namespace", NULL), "kfm");
    assert_string_equal(json_str(cm, "metadata", "name", NULL), "kfm-published-datasets");
    assert_string_equal(json_str(cm, "metadata", "labels", "app.kubernetes.io/managed-by", NULL), "membrane");
    cJSON *data = cJSON_DetachItemFromObject(cm, "data");
    cJSON_Delete(cm);
    assert_int_equal(cJSON_GetArraySize(data), 3);
    return data;
}

static cJSON *run_checks(const char *url, const char *token, long timeout_ms)
{
    cJSON *index = printed_index(NULL);
    cJSON *refs = cJSON_Parse(
        "[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"},{\"type\":\"dataset\",\"id\":\"kfm.soils.survey\"}]");
    contract_input in = {
        .base_url = url,
        .token = token,
        .timeout_ms = timeout_ms,
        .evidence_refs = refs,
        .focus_question = "Which wells were sampled in March 2026?",
        .restricted_dataset_id = "kfm.sacred-sites",
        .release_id = RID,
        .now = 1795341600,
        .published = {"kfm/kfm-published-datasets", index, NULL},
    };
    cJSON *res = NULL;
    if (contract_checks_run(&res, &in) < 0)
        fail_msg("contract_checks_run: %s", mb_error_last());
    cJSON_Delete(refs);
    cJSON_Delete(index);
    assert_int_equal(cJSON_GetArraySize(res), CONTRACT_N_CHECKS);
    return res;
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

/* Expected failures: "check:message-part" entries; every other check must pass. */
static void expect_failures(const cJSON *res, const char *const *fails, const char *what)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, res) {
        const char *name = json_str(r, "name", NULL);
        const char *want = NULL;
        for (const char *const *f = fails; *f; f++) {
            size_t n = strlen(name);
            if (strncmp(*f, name, n) == 0 && (*f)[n] == ':')
                want = *f + n + 1;
        }
        bool passed = json_bool(false, r, "passed", NULL);
        const char *msg = json_str(r, "message", NULL);
        const char *trig = json_str(r, "trigger", NULL);
        char *text = cJSON_PrintUnformatted(r);
        if (want ? passed || !trig || strcmp(trig, trigger_of(name)) != 0 || !strstr(msg, want) : !passed || trig)
            fail_msg("%s: %s should %s%s%s, got %s", what, name, want ? "fail with \"" : "pass", want ? want : "",
                     want ? "\"" : "", text);
        free(text);
    }
}

typedef struct {
    const char *behaviour;
    long timeout_ms;
    const char *fails[12];
} behaviour_case;

static const behaviour_case behaviours[] = {
    {"good", 5000, {NULL}},
    {"uncited", 5000, {"focus-ask:answer has no citations and did not abstain", NULL}},
    {"restricted-leak", 5000, {"public-restriction:shows kfm.sacred-sites with policy_label \"restricted\"", NULL}},
    {"existence-leak",
     5000,
     {"public-restriction:403 vs 404 tells the public that the restricted dataset exists", NULL}},
    {"evidence-500", 5000, {"evidence-resolve:POST /api/v1/evidence/resolve answered 500", NULL}},
    {"slow",
     500,
     {"health:did not answer within 500 ms", "ready:did not answer within 500 ms",
      "datasets:did not answer within 500 ms", "stac-collections:did not answer within 500 ms",
      "stac-items:did not answer within 500 ms", "evidence-resolve:did not answer within 500 ms",
      "focus-ask:did not answer within 500 ms", "lineage:did not answer within 500 ms",
      "public-restriction:did not answer within 500 ms", "published-only:did not answer within 500 ms", NULL}},
    {"malformed",
     5000,
     {"datasets:malformed JSON", "stac-collections:malformed JSON", "stac-items:malformed JSON",
      "evidence-resolve:malformed JSON", "focus-ask:malformed JSON", "lineage:malformed JSON",
      "public-restriction:malformed JSON", "published-only:malformed JSON", NULL}},
    {"lineage-404", 5000, {NULL}},
    {"unpublished",
     5000,
     {"published-only:1 of 3 listed dataset version is not published in ConfigMap kfm/kfm-published-datasets: "
      "kfm.hydrology.wells@2026-04-01.1 (the index publishes 2026-03-01.1)",
      NULL}},
};

static void test_behaviours(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(behaviours) / sizeof(behaviours[0]); i++) {
        const behaviour_case *c = &behaviours[i];
        char table[128];
        dbl d;
        snprintf(table, sizeof(table), "%s=%s", DIGEST_A, c->behaviour);
        const char *args[] = {"--listen",    "127.0.0.1:0",       "--fixed-digest", DIGEST_A, "--behaviour", table,
                              "--behaviour", DIGEST_B "=uncited", "--token",        TOKEN,    "--slow-ms",   "3000",
                              NULL};
        dbl_start(&d, args);
        cJSON *res = run_checks(d.url, TOKEN, c->timeout_ms);
        expect_failures(res, c->fails, c->behaviour);
        if (strcmp(c->behaviour, "lineage-404") == 0) {
            const cJSON *l = cJSON_GetArrayItem(res, 7);
            assert_string_equal(json_str(l, "message", NULL), "not implemented");
            assert_int_equal(json_int(0, l, "httpStatus", NULL), 404);
        }
        cJSON_Delete(res);
        assert_int_equal(dbl_stop(&d, NULL), 0);
    }
}

/* A digest the table does not name: the double fails closed. */
static void test_unknown_digest(void **state)
{
    (void)state;
    dbl d;
    const char *args[] = {"--listen", "127.0.0.1:0", "--fixed-digest",
                          DIGEST_B,   "--behaviour", DIGEST_A "=good",
                          "--token",  TOKEN,         NULL};
    static const char *const fails[] = {"ready:GET /readyz answered 503",
                                        "datasets:503",
                                        "stac-collections:503",
                                        "stac-items:503",
                                        "evidence-resolve:503",
                                        "focus-ask:503",
                                        "lineage:503",
                                        "public-restriction:503",
                                        "published-only:503",
                                        NULL};
    dbl_start(&d, args);
    cJSON *res = run_checks(d.url, TOKEN, 5000);
    expect_failures(res, fails, "unknown digest");
    assert_non_null(strstr(json_str(cJSON_GetArrayItem(res, 1), "message", NULL), "unknown_version"));
    cJSON_Delete(res);
    assert_int_equal(dbl_stop(&d, NULL), 0);

    /* --default-behaviour names what unlisted digests do; "DIGEST" alone means good */
    const char *args2[] = {"--listen", "127.0.0.1:0",         "--fixed-digest", DIGEST_B, "--behaviour",
                           DIGEST_A,   "--default-behaviour", "evidence-500",   NULL};
    static const char *const fails2[] = {"evidence-resolve:answered 500", NULL};
    dbl_start(&d, args2);
    res = run_checks(d.url, NULL, 5000);
    expect_failures(res, fails2, "default behaviour");
    cJSON_Delete(res);
    assert_int_equal(dbl_stop(&d, NULL), 0);
}

/* The token is required on authorized endpoints, never logged; one log line per request. */
static void test_token_and_log(void **state)
{
    (void)state;
    dbl d;
    char *log = NULL;
    const char *args[] = {"--listen", "127.0.0.1:0", "--fixed-digest",
                          DIGEST_A,   "--behaviour", DIGEST_A "=good",
                          "--token",  TOKEN,         NULL};
    static const char *const fails[] = {/* datasets and published-only first: see "no token" */
                                        "datasets:answered 401",         "published-only:answered 401",
                                        "stac-collections:answered 401", "stac-items:answered 401",
                                        "evidence-resolve:answered 401", "focus-ask:answered 401",
                                        "lineage:answered 401",          NULL};
    dbl_start(&d, args);

    cJSON *res = run_checks(d.url, "not-the-token", 5000); /* health, ready, public-restriction need none */
    expect_failures(res, fails, "wrong token");
    cJSON_Delete(res);
    res = run_checks(d.url, NULL, 5000);         /* no token at all: the datasets listing answers the public */
    expect_failures(res, fails + 2, "no token"); /* published-only judges the public listing: published too */
    cJSON_Delete(res);
    res = run_checks(d.url, TOKEN, 5000);
    static const char *const none[] = {NULL};
    expect_failures(res, none, "right token");
    cJSON_Delete(res);
    assert_int_equal(dbl_stop(&d, &log), 0);

    assert_null(strstr(log, TOKEN));
    assert_null(strstr(log, "not-the-token"));
    /* 3 runs x 12 requests, each logged once with its X-Request-ID and status */
    size_t lines = 0;
    for (const char *p = log; (p = strstr(p, " x-request-id=" RID "-")); p++)
        lines++;
    assert_int_equal(lines, 36);
    assert_non_null(strstr(log, "POST /api/v1/focus/ask x-request-id=" RID "-focus-ask status=401"));
    assert_non_null(strstr(log, "POST /api/v1/focus/ask x-request-id=" RID "-focus-ask status=200"));
    assert_non_null(
        strstr(log, "GET /api/v1/datasets/kfm.sacred-sites x-request-id=" RID "-public-restriction status=404"));
    free(log);
}

/* SIGTERM while an answer is held back: the double closes the connection and exits 0. */
static void test_sigterm_while_slow(void **state)
{
    (void)state;
    dbl d;
    const char *args[] = {"--listen",       "127.0.0.1:0", "--fixed-digest", DIGEST_A, "--behaviour",
                          DIGEST_A "=slow", "--slow-ms",   "600000",         NULL};
    unsigned port = 0;
    dbl_start(&d, args);
    assert_int_equal(sscanf(d.url, "http://127.0.0.1:%u", &port), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: held\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 300), 0); /* held back */
    char *log = NULL;
    assert_int_equal(dbl_stop(&d, &log), 0);
    char buf[64];
    assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0); /* closed without an answer */
    close(fd);
    assert_non_null(
        strstr(log, "GET /healthz x-request-id=held status=0 behaviour=slow (shutting down, not answered)"));
    assert_non_null(strstr(log, "stopped"));
    free(log);
}

/* One request to the double on a fresh connection; returns the status, the answer's body in body. */
static int http_once(const dbl *d, const char *method, const char *path, const char *payload, char *body, size_t size)
{
    unsigned port = 0;
    char req[1024], ans[2048];
    size_t len = 0;
    int status = 0;
    assert_int_equal(sscanf(d->url, "http://127.0.0.1:%u", &port), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", method, path,
                     strlen(payload), payload);
    assert_int_equal(send(fd, req, (size_t)n, 0), n);
    for (ssize_t k; len < sizeof(ans) - 1 && (k = recv(fd, ans + len, sizeof(ans) - 1 - len, 0)) > 0;)
        len += (size_t)k;
    ans[len] = '\0';
    close(fd);
    assert_int_equal(sscanf(ans, "HTTP/1.1 %d", &status), 1);
    const char *b = strstr(ans, "\r\n\r\n");
    snprintf(body, size, "%s", b ? b + 4 : "");
    return status;
}

/* PUT /__double/behaviour/<digest> changes what a digest does while the double runs. */
static void test_control_behaviour(void **state)
{
    (void)state;
    dbl d;
    char body[1024], *log = NULL;
    const char *args[] = {"--listen", "127.0.0.1:0", "--fixed-digest",
                          DIGEST_A,   "--behaviour", DIGEST_A "=good",
                          "--token",  TOKEN,         NULL};
    static const char *const none[] = {NULL};
    static const char *const uncited[] = {"focus-ask:answer has no citations and did not abstain", NULL};
    static const char *const unknown[] = {"ready:GET /readyz answered 503",
                                          "datasets:503",
                                          "stac-collections:503",
                                          "stac-items:503",
                                          "evidence-resolve:503",
                                          "focus-ask:503",
                                          "lineage:503",
                                          "public-restriction:503",
                                          "published-only:503",
                                          NULL};
    dbl_start(&d, args);
    cJSON *res = run_checks(d.url, TOKEN, 5000);
    expect_failures(res, none, "good before the control request");
    cJSON_Delete(res);

    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/" DIGEST_A, "uncited\n", body, sizeof(body)), 200);
    assert_string_equal(body, "{\"digest\":\"" DIGEST_A "\",\"behaviour\":\"uncited\"}");
    res = run_checks(d.url, TOKEN, 5000);
    expect_failures(res, uncited, "uncited after the control request");
    cJSON_Delete(res);

    /* bad control requests change nothing and say what is wrong */
    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/" DIGEST_A, "fast", body, sizeof(body)), 400);
    assert_non_null(strstr(body, "unknown behaviour"));
    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/latest", "good", body, sizeof(body)), 400);
    assert_non_null(strstr(body, "sha256:<64 lowercase hex>"));
    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/" DIGEST_A, "", body, sizeof(body)), 400);
    assert_int_equal(http_once(&d, "GET", "/__double/behaviour/" DIGEST_A, "", body, sizeof(body)), 405);
    assert_int_equal(http_once(&d, "PUT", "/__double/other", "good", body, sizeof(body)), 404);
    res = run_checks(d.url, TOKEN, 5000);
    expect_failures(res, uncited, "still uncited");
    cJSON_Delete(res);

    /* back to good; and a digest the table did not name can be given a behaviour (here: made to fail closed) */
    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/" DIGEST_A, "good", body, sizeof(body)), 200);
    res = run_checks(d.url, TOKEN, 5000);
    expect_failures(res, none, "good again");
    cJSON_Delete(res);
    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/" DIGEST_A, "unknown", body, sizeof(body)), 200);
    assert_int_equal(http_once(&d, "PUT", "/__double/behaviour/" DIGEST_B, "slow", body, sizeof(body)), 200);
    res = run_checks(d.url, TOKEN, 5000);
    expect_failures(res, unknown, "unknown");
    cJSON_Delete(res);
    assert_int_equal(dbl_stop(&d, &log), 0);
    assert_non_null(strstr(log, "control: " DIGEST_A " now behaves as uncited"));
    assert_non_null(strstr(log, "PUT /__double/behaviour/latest status=400 (control)"));
    free(log);
}

static int run_exit(const char *const *args)
{
    const char *argv[16] = {double_binary()};
    size_t n = 1;
    pid_t pid;
    int status = 0;
    posix_spawn_file_actions_t fa;
    while (*args)
        argv[n++] = *args++;
    argv[n] = NULL;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The printed index: each entry canonical JSON, as DatasetPromotion writes it; --restricted-dataset renames one key. */
static void test_printed_index(void **state)
{
    (void)state;
    cJSON *data = printed_index("kfm.graves");
    const char *wells = json_str(data, "kfm.hydrology.wells", NULL);
    assert_non_null(wells);
    assert_non_null(strstr(wells, "{\"auditRef\":\"sha256:"));
    assert_non_null(strstr(wells, "\"datasetID\":\"kfm.hydrology.wells\",\"license\":\"CC-BY-4.0\",\"policyLabel\":"
                                  "\"public\",\"versionID\":\"2026-03-01.1\"}"));
    assert_non_null(strstr(json_str(data, "kfm.graves", NULL), "\"policyLabel\":\"restricted\""));
    assert_null(json_str(data, "kfm.sacred-sites", NULL));
    cJSON_Delete(data);
    const char *bad[] = {"--print-published-index", "kfm", NULL};
    assert_int_equal(run_exit(bad), 2);
}

static void test_bad_flags(void **state)
{
    (void)state;
    const char *a1[] = {"--fixed-digest", "sha256:abc", NULL};
    const char *a2[] = {"--fixed-digest", DIGEST_A, "--behaviour", DIGEST_A "=fast", NULL};
    const char *a3[] = {"--fixed-digest", DIGEST_A, "--behaviour", "latest=good", NULL};
    const char *a4[] = {"--behaviour", DIGEST_A, NULL}; /* no digest source */
    const char *a5[] = {"--fixed-digest", DIGEST_A, "--listen", "127.0.0.1:99999", NULL};
    assert_int_equal(run_exit(a1), 2);
    assert_int_equal(run_exit(a2), 2);
    assert_int_equal(run_exit(a3), 2);
    assert_int_equal(run_exit(a4), 2);
    assert_int_equal(run_exit(a5), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_behaviours, kill_leftovers),
        cmocka_unit_test_teardown(test_unknown_digest, kill_leftovers),
        cmocka_unit_test_teardown(test_token_and_log, kill_leftovers),
        cmocka_unit_test_teardown(test_sigterm_while_slow, kill_leftovers),
        cmocka_unit_test_teardown(test_control_behaviour, kill_leftovers),
        cmocka_unit_test(test_printed_index),
        cmocka_unit_test(test_bad_flags),
    };
    signal(SIGPIPE, SIG_IGN);
    mb_log_setup(MB_LOG_JSON, MB_LOG_WARN, NULL);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
