/*
 * membrane-probe: the probe's own script, run under real shells (/bin/sh, and
 * bash and busybox sh where installed) with a fake nc on PATH that refuses,
 * times out, connects or fails otherwise as busybox, OpenBSD and traditional
 * netcat report it, or is missing; reading reports (every verdict, missing,
 * stray and cut ones); planning (every clients entry in every namespace it
 * selects, with a hypothetical pod's labels; every live store pod and port;
 * targets shared out so that no report can outgrow a termination message);
 * the Pod object; and judging a plan whose pods ran.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "fixture.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/labels.h"
#include "verify/probe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- the script under real shells ------------------------------------------------ */

/*
 * A stand-in for nc: it insists on the arguments the script must give
 * (-v -z -w 1 host port) and answers by port as the nc implementations do.
 */
static const char fake_nc[] =
    "#!/bin/sh\n"
    "[ \"$1 $2 $3 $4\" = '-v -z -w 1' ] && [ $# -eq 6 ] || { echo \"fake nc: unexpected arguments: $*\" >&2; exit 2; "
    "}\n"
    "host=$5; port=$6\n"
    "case $port in\n"
    "1) echo \"nc: $host ($host:$port): Connection refused\" >&2; exit 1;;\n"   /* busybox */
    "2) echo \"nc: $host ($host:$port): Connection timed out\" >&2; exit 1;;\n" /* busybox, glibc */
    "3) echo 'stdout is not the report'; echo \"$host ($host:$port) open\" >&2; exit 0;;\n"
    "4) echo \"nc: bad address '$host'\" >&2; exit 1;;\n"                                           /* busybox DNS */
    "5) echo \"nc: connect to $host port $port (tcp) failed: Operation timed out\" >&2; exit 1;;\n" /* musl */
    "6) printf \"nc: invalid option -- 'z'\\nBusyBox v1.35.0 multi-call binary.\\n\\nUsage: nc [-iN] [-wN]\\n\" >&2;"
    " exit 1;;\n"
    "7) exit 1;;\n"
    "8) echo \"nc: $host ($host:$port): No route to host\" >&2; exit 1;;\n"
    "9) echo 'nc: 0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789'"
    " >&2; exit 1;;\n"
    "10) echo \"nc: connect to $host port $port (tcp) timed out: Operation now in progress\" >&2; exit 1;;\n"
    "11) echo \"(UNKNOWN) [$host] $port (?) : Connection refused\" >&2; exit 1;;\n" /* traditional */
    "12) [ \"$host\" = fd00::5 ] && exit 0; echo \"wrong host $host\" >&2; exit 1;;\n"
    "13) kill -9 $$;;\n"
    "14) echo 'nc: getaddrinfo: Connection refused by resolver' >&2; exit 0;;\n"
    "*) echo \"fake nc: no behaviour for port $port\" >&2; exit 2;;\n"
    "esac\n";

static const char all_targets[] = "10.0.0.1:1 10.0.0.1:2 10.0.0.1:3 10.0.0.1:4 10.0.0.1:5 10.0.0.1:6 10.0.0.1:7 "
                                  "10.0.0.1:8 10.0.0.1:9 10.0.0.1:10 10.0.0.1:11 fd00::5:12 10.0.0.1:13 10.0.0.1:14";

/* The verdicts all_targets must get, sorted as the test sorts them. */
static const char *const want_lines[] = {
    "closed 10.0.0.1:1",
    "closed 10.0.0.1:10",
    "closed 10.0.0.1:11",
    "closed 10.0.0.1:2",
    "closed 10.0.0.1:5",
    "error 10.0.0.1:13 nc exited 137: no message",
    "error 10.0.0.1:4 nc exited 1: nc: bad address '10.0.0.1'",
    "error 10.0.0.1:6 nc exited 1: nc: invalid option -- 'z'",
    "error 10.0.0.1:7 nc exited 1: no message",
    "error 10.0.0.1:8 nc exited 1: nc: 10.0.0.1 (10.0.0.1:8): No route to host",
    "error 10.0.0.1:9 nc exited 1: nc: 01234567890123456789012345678901234567890123456",
    "open 10.0.0.1:14",
    "open 10.0.0.1:3",
    "open fd00::5:12",
};

typedef struct {
    char dir[64];   /* scratch directory */
    char bin[96];   /* holds the fake nc */
    char empty[96]; /* holds nothing: nc missing */
    char report[96];
} script_env;

static int setup_script(void **state)
{
    static script_env e;
    char nc[128];
    FILE *f;
    snprintf(e.dir, sizeof(e.dir), "/tmp/membrane-probe-test.XXXXXX");
    assert_non_null(mkdtemp(e.dir));
    snprintf(e.bin, sizeof(e.bin), "%s/bin", e.dir);
    snprintf(e.empty, sizeof(e.empty), "%s/empty", e.dir);
    snprintf(e.report, sizeof(e.report), "%s/report", e.dir);
    assert_int_equal(mkdir(e.bin, 0755), 0);
    assert_int_equal(mkdir(e.empty, 0755), 0);
    snprintf(nc, sizeof(nc), "%s/nc", e.bin);
    assert_non_null(f = fopen(nc, "w"));
    fputs(fake_nc, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(nc, 0755), 0);
    *state = &e;
    return 0;
}

static int teardown_script(void **state)
{
    script_env *e = *state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int line_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Runs probe_script() with argv (the shell, ending in "-c") and PATH=path,
 * TARGETS=targets, WAIT=1, REPORT=<scratch>/report, nothing else in the
 * environment; asserts it exits 0 and returns the report (the caller frees).
 */
static char *script_run(const script_env *e, const char *const *argv, const char *path, const char *targets)
{
    char *args[8];
    size_t n = 0, len = 0;
    int status = 0;
    pid_t pid;
    unlink(e->report);
    while (argv[n])
        args[n] = (char *)argv[n], n++;
    args[n++] = (char *)probe_script();
    args[n] = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *env[] = {NULL, NULL, (char *)"WAIT=1", NULL, NULL};
        if (asprintf(&env[0], "PATH=%s", path) < 0 || asprintf(&env[1], "TARGETS=%s", targets) < 0 ||
            asprintf(&env[3], "REPORT=%s", e->report) < 0)
            _exit(120);
        char errpath[128];
        snprintf(errpath, sizeof(errpath), "%s/stderr", e->dir);
        if (!freopen(errpath, "w", stderr)) /* the shell's own words ("Killed") stay out of the test's output */
            _exit(121);
        execve(args[0], args, env);
        _exit(127);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char errpath[128], said[2048] = "";
        FILE *ef;
        snprintf(errpath, sizeof(errpath), "%s/stderr", e->dir);
        if ((ef = fopen(errpath, "r"))) {
            said[fread(said, 1, sizeof(said) - 1, ef)] = '\0';
            fclose(ef);
        }
        fail_msg("%s: the script did not exit 0 (status %d); it said:\n%s", argv[0], status, said);
    }
    FILE *f = fopen(e->report, "r");
    char *text = calloc(1, 65536);
    if (!f)
        fail_msg("%s: the script wrote no report", argv[0]);
    len = fread(text, 1, 65535, f);
    text[len] = '\0';
    fclose(f);
    return text;
}

/* Asserts that report holds exactly the lines want (in any order). */
static void assert_lines(const char *shell, const char *report, const char *const *want, size_t n_want)
{
    char *copy = strdup(report), *save = NULL, *lines[64];
    size_t n = 0;
    for (char *l = strtok_r(copy, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
        lines[n++] = l;
    qsort(lines, n, sizeof(*lines), line_cmp);
    for (size_t i = 0; i < n || i < n_want; i++)
        if (i >= n || i >= n_want || strcmp(lines[i], want[i]) != 0)
            fail_msg("%s: line %zu: want \"%s\", got \"%s\"\nthe report:\n%s", shell, i, i < n_want ? want[i] : "",
                     i < n ? lines[i] : "", report);
    assert_true(report[strlen(report) - 1] == '\n');
    free(copy);
}

/* The shells to run the script under: /bin/sh always, bash and busybox where installed. */
static size_t shells(const char *const *out[3])
{
    static const char *const sh[] = {"/bin/sh", "-c", NULL};
    static const char *const bash[] = {"/bin/bash", "--posix", "-c", NULL};
    static const char *const busybox[] = {"/bin/busybox", "sh", "-c", NULL};
    size_t n = 0;
    out[n++] = sh;
    if (access(bash[0], X_OK) == 0)
        out[n++] = bash;
    if (access(busybox[0], X_OK) == 0)
        out[n++] = busybox;
    else
        print_message("busybox is not installed: the script runs under /bin/sh and bash only\n");
    return n;
}

static void test_script_verdicts(void **state)
{
    script_env *e = *state;
    const char *const *sh[3];
    size_t n = shells(sh);
    for (size_t s = 0; s < n; s++) {
        char *report = script_run(e, sh[s], e->bin, all_targets);
        assert_lines(sh[s][0], report, want_lines, sizeof(want_lines) / sizeof(want_lines[0]));
        free(report);
    }
}

static void test_script_without_nc(void **state)
{
    script_env *e = *state;
    const char *const *sh[3];
    static const char *const want[] = {"error 10.0.0.1:1 nc not found", "error 10.0.0.1:3 nc not found",
                                       "error fd00::5:12 nc not found"};
    size_t n = shells(sh);
    for (size_t s = 0; s < n; s++) {
        char *report = script_run(e, sh[s], e->empty, "10.0.0.1:1 10.0.0.1:3 fd00::5:12");
        assert_lines(sh[s][0], report, want, 3);
        free(report);
    }
}

/* The script's report, read back by the operator's parser: every target gets its verdict. */
static void test_script_report_parses(void **state)
{
    script_env *e = *state;
    static const char *const sh[] = {"/bin/sh", "-c", NULL};
    const char *addrs[] = {"10.0.0.1:1",  "10.0.0.1:2", "10.0.0.1:3",  "10.0.0.1:4", "10.0.0.1:5",
                           "10.0.0.1:6",  "10.0.0.1:7", "10.0.0.1:8",  "10.0.0.1:9", "10.0.0.1:10",
                           "10.0.0.1:11", "fd00::5:12", "10.0.0.1:13", "10.0.0.1:14"};
    const probe_verdict want[] = {PROBE_CLOSED, PROBE_CLOSED, PROBE_OPEN,  PROBE_ERROR, PROBE_CLOSED,
                                  PROBE_ERROR,  PROBE_ERROR,  PROBE_ERROR, PROBE_ERROR, PROBE_CLOSED,
                                  PROBE_CLOSED, PROBE_OPEN,   PROBE_ERROR, PROBE_OPEN};
    char *report = script_run(e, sh, e->bin, all_targets);
    probe_report *r = NULL;
    assert_int_equal(probe_report_parse(&r, addrs, 14, report), 0);
    assert_null(r->stray);
    assert_false(r->truncated);
    for (size_t i = 0; i < 14; i++) {
        if (r->verdicts[i] != want[i])
            fail_msg("%s: verdict %d, want %d", addrs[i], r->verdicts[i], want[i]);
        assert_true((r->whys[i] != NULL) == (want[i] == PROBE_ERROR));
        if (r->whys[i])
            assert_true(strlen(r->whys[i]) <= PROBE_WHY_MAX);
    }
    assert_int_equal(strlen(r->whys[8]), PROBE_WHY_MAX);
    probe_report_free(r);
    free(report);
}

/* ---- reading reports ---------------------------------------------------------------- */

static probe_report *parse(const char *const *addrs, size_t n, const char *text)
{
    probe_report *r = NULL;
    assert_int_equal(probe_report_parse(&r, addrs, n, text), 0);
    assert_non_null(r);
    return r;
}

static void test_report_verdicts(void **state)
{
    (void)state;
    const char *addrs[] = {"10.0.0.1:5432", "10.0.0.2:5432", "10.0.0.3:5432", "10.0.0.4:5432"};
    probe_report *r = parse(addrs, 4,
                            "closed 10.0.0.1:5432\r\nopen 10.0.0.2:5432\n\n"
                            "error 10.0.0.3:5432 nc not found\n");
    assert_int_equal(r->verdicts[0], PROBE_CLOSED);
    assert_int_equal(r->verdicts[1], PROBE_OPEN);
    assert_int_equal(r->verdicts[2], PROBE_ERROR);
    assert_string_equal(r->whys[2], "nc not found");
    assert_int_equal(r->verdicts[3], PROBE_MISSING);
    assert_null(r->whys[0]);
    assert_null(r->stray);
    assert_false(r->truncated);
    probe_report_free(r);

    /* nothing at all, NULL and "": every target missing */
    r = parse(addrs, 4, NULL);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(r->verdicts[i], PROBE_MISSING);
    probe_report_free(r);

    /* an error without a why still is an error */
    r = parse(addrs, 1, "error 10.0.0.1:5432");
    assert_int_equal(r->verdicts[0], PROBE_ERROR);
    assert_string_equal(r->whys[0], "(no reason given)");
    probe_report_free(r);
}

static void test_report_strays(void **state)
{
    (void)state;
    const char *addrs[] = {"10.0.0.1:5432", "10.0.0.1:543"};
    probe_report *r;

    /* a target it was not given; a target named by a prefix of another is not that other */
    r = parse(addrs, 2, "closed 10.0.0.9:5432\nclosed 10.0.0.1:54\n");
    assert_string_equal(r->stray, "closed 10.0.0.9:5432");
    assert_int_equal(r->verdicts[0], PROBE_MISSING);
    assert_int_equal(r->verdicts[1], PROBE_MISSING);
    probe_report_free(r);

    /* words after an open or closed verdict, an unknown word, a bare word */
    r = parse(addrs, 2, "open 10.0.0.1:5432 maybe\n");
    assert_string_equal(r->stray, "open 10.0.0.1:5432 maybe");
    assert_int_equal(r->verdicts[0], PROBE_MISSING);
    probe_report_free(r);
    r = parse(addrs, 2, "closed 10.0.0.1:543\nfiltered 10.0.0.1:5432\n");
    assert_string_equal(r->stray, "filtered 10.0.0.1:5432");
    assert_int_equal(r->verdicts[1], PROBE_CLOSED);
    probe_report_free(r);
    r = parse(addrs, 2, "closed\n");
    assert_string_equal(r->stray, "closed");
    probe_report_free(r);

    /* two verdicts for one target: stray, and the worse stands */
    r = parse(addrs, 2, "open 10.0.0.1:5432\nclosed 10.0.0.1:5432\n");
    assert_string_equal(r->stray, "closed 10.0.0.1:5432");
    assert_int_equal(r->verdicts[0], PROBE_OPEN);
    probe_report_free(r);
    r = parse(addrs, 2, "closed 10.0.0.1:5432\nerror 10.0.0.1:5432 nc exited 2: x\nclosed 10.0.0.1:5432\n");
    assert_string_equal(r->stray, "error 10.0.0.1:5432 nc exited 2: x");
    assert_int_equal(r->verdicts[0], PROBE_ERROR);
    assert_string_equal(r->whys[0], "nc exited 2: x");
    probe_report_free(r);
}

static void test_report_truncated(void **state)
{
    (void)state;
    const char *addrs[] = {"10.0.0.1:5432"};
    char text[PROBE_REPORT_MAX + 1];
    probe_report *r;
    /* the kubelet keeps the last 4096 bytes: a full message may have lost its first lines */
    memset(text, 'x', sizeof(text));
    snprintf(text + PROBE_REPORT_MAX - 22, 23, "\nclosed 10.0.0.1:5432\n");
    assert_int_equal(strlen(text), PROBE_REPORT_MAX);
    r = parse(addrs, 1, text);
    assert_true(r->truncated);
    assert_int_equal(r->verdicts[0], PROBE_CLOSED);
    probe_report_free(r);
    text[1] = '\0';
    r = parse(addrs, 1, text + 2);
    assert_false(r->truncated);
    probe_report_free(r);
}

/* ---- planning ---------------------------------------------------------------------- */

static const char release_yaml[] =
    "apiVersion: governance.kfm.dev/v1alpha1\n"
    "kind: GovernedAPIRelease\n"
    "metadata: {name: kfm-api, namespace: kfm, uid: 0b7f-uid}\n"
    "spec:\n"
    "  membrane:\n"
    "    clients:\n"
    "    - podSelector: {matchLabels: {app: kfm-ui}}\n"
    "    - podSelector: {matchExpressions: [{key: tier, operator: In, values: [web, edge]},"
    " {key: team, operator: Exists}, {key: legacy, operator: DoesNotExist}]}\n"
    "      namespaceSelector: {matchLabels: {zone: public}}\n"
    "    stores:\n"
    "    - {name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432, 5433]}\n"
    "    - {name: minio, podSelector: {matchLabels: {app: minio}},"
    " namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: storage}}, ports: [9000]}\n"
    "    apiServiceAccount: kfm-api\n"
    "    probe: {image: \"busybox@sha256:0123\", timeoutSeconds: 20}\n";

static const char pods_yaml[] =
    "items:\n"
    "- {metadata: {namespace: kfm, name: kfm-ui-1, labels: {app: kfm-ui}}, status: {phase: Running, podIP: 10.0.0.2}}\n"
    "- {metadata: {namespace: kfm, name: postgis-0, labels: {app: postgis}}, status: {phase: Running, podIP: "
    "10.0.0.10}}\n"
    "- {metadata: {namespace: kfm, name: postgis-1, labels: {app: postgis}}, status: {phase: Running, podIP: "
    "10.0.0.11}}\n"
    "- {metadata: {namespace: kfm, name: postgis-old, labels: {app: postgis}},"
    " status: {phase: Succeeded, podIP: 10.0.0.9}}\n"
    "- {metadata: {namespace: kfm, name: old-probe, labels: {app: postgis, governance.kfm.dev/probe: x}},"
    " status: {phase: Running, podIP: 10.0.0.8}}\n"
    "- {metadata: {namespace: web-a, name: postgis-elsewhere, labels: {app: postgis}},"
    " status: {phase: Running, podIP: 10.0.2.1}}\n"
    "- {metadata: {namespace: storage, name: minio-0, labels: {app: minio}}, status: {phase: Running, podIP: "
    "10.0.1.5}}\n";

static const char namespaces_yaml[] = "items:\n"
                                      "- {metadata: {name: kfm, labels: {kubernetes.io/metadata.name: kfm}}}\n"
                                      "- {metadata: {name: storage, labels: {kubernetes.io/metadata.name: storage}}}\n"
                                      "- {metadata: {name: web-a, labels: {zone: public}}}\n"
                                      "- {metadata: {name: web-b, labels: {zone: public}}}\n"
                                      "- {metadata: {name: quiet, labels: {zone: private}}}\n";

typedef struct {
    cJSON *release, *pods, *namespaces;
} world;

static world world_load(void)
{
    world w = {fixture_yaml_text(release_yaml), fixture_yaml_text(pods_yaml), fixture_yaml_text(namespaces_yaml)};
    return w;
}

static void world_free(world *w)
{
    cJSON_Delete(w->release);
    cJSON_Delete(w->pods);
    cJSON_Delete(w->namespaces);
}

/* probe_plan_build with the owner and spec.membrane the release controller would hand it from release */
static int plan_build(probe_plan **out, const cJSON *release, const char *rid, const cJSON *pods,
                      const cJSON *namespaces)
{
    verify_owner owner = {json_str(release, "metadata", "namespace", NULL), json_str(release, "metadata", "name", NULL),
                          json_str(release, "metadata", "uid", NULL), json_str(release, "apiVersion", NULL)};
    return probe_plan_build(out, &owner, json_get(release, "spec", "membrane", NULL), rid, pods, namespaces);
}

static probe_plan *plan_of(const world *w)
{
    probe_plan *p = NULL;
    if (plan_build(&p, w->release, "3f9c0a1b2c4d", w->pods, w->namespaces) < 0)
        fail_msg("the plan failed: %s", mb_error_last());
    return p;
}

/* The pod's labels as compact JSON (the caller frees). */
static char *labels_text(const probe_pod *pp)
{
    return cJSON_PrintUnformatted(pp->labels);
}

static void test_plan_every_client_and_store(void **state)
{
    (void)state;
    world w = world_load();
    probe_plan *p = plan_of(&w);
    const char *want_targets[] = {"10.0.0.10:5432", "10.0.0.10:5433", "10.0.0.11:5432", "10.0.0.11:5433",
                                  "10.0.1.5:9000"};
    char *l;

    assert_int_equal(p->n_targets, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(p->targets[i].addr, want_targets[i]);
    assert_string_equal(p->targets[4].store, "minio");
    assert_string_equal(p->targets[4].pod, "storage/minio-0");
    assert_string_equal(p->targets[2].pod, "kfm/postgis-1");

    /* clients[0] in the release's namespace; clients[1] in each of the two namespaces it selects */
    assert_int_equal(p->n_pods, 3);
    assert_string_equal(p->pods[0].ns, "kfm");
    assert_string_equal(p->pods[1].ns, "web-a");
    assert_string_equal(p->pods[2].ns, "web-b");
    assert_int_equal(p->pods[1].client, 1);
    assert_string_equal(p->pods[0].name, "kfm-api-probe-3f9c0a1b2c4d-0-0");
    assert_string_equal(p->pods[2].name, "kfm-api-probe-3f9c0a1b2c4d-1-0");
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(p->pods[i].first, 0);
        assert_int_equal(p->pods[i].count, 5);
    }
    l = labels_text(&p->pods[0]);
    assert_string_equal(l, "{\"app\":\"kfm-ui\",\"governance.kfm.dev/probe\":\"0b7f-uid\"}");
    free(l);
    l = labels_text(&p->pods[2]);
    assert_string_equal(l, "{\"tier\":\"web\",\"team\":\"" LABELS_PLACEHOLDER
                           "\",\"governance.kfm.dev/probe\":\"0b7f-uid\"}");
    free(l);
    assert_string_equal(p->clients[1], "clients[1] (tier in (web,edge),team,!legacy in namespaces zone=public)");
    assert_int_equal(p->timeout_seconds, 20);
    probe_plan_free(p);
    world_free(&w);
}

/* Many store pods: the targets are shared out, every one covered once per client namespace, no report too long. */
static void test_plan_shares_targets(void **state)
{
    (void)state;
    world w = world_load();
    cJSON *items = cJSON_GetObjectItem(w.pods, "items");
    probe_plan *p;
    for (int i = 0; i < 300; i++) {
        char pod[256];
        snprintf(pod, sizeof(pod),
                 "{metadata: {namespace: kfm, name: pg-%03d, labels: {app: postgis}},"
                 " status: {phase: Running, podIP: 10.1.%d.%d}}",
                 i, i / 200, i % 200);
        cJSON_AddItemToArray(items, fixture_yaml_text(pod));
    }
    p = plan_of(&w);
    assert_int_equal(p->n_targets, 5 + 600);
    assert_true(p->n_pods > 3 * 2);
    assert_int_equal(p->n_pods % 3, 0);
    for (size_t i = 0; i < p->n_pods; i++) {
        size_t worst = 0;
        for (size_t t = 0; t < p->pods[i].count; t++)
            worst += strlen("error ") + strlen(p->targets[p->pods[i].first + t].addr) + 1 + PROBE_WHY_MAX + 1;
        assert_true(p->pods[i].count > 0);
        assert_true(worst <= PROBE_REPORT_BUDGET);
        assert_true(worst < PROBE_REPORT_MAX);
    }
    /* per client namespace, the shares follow each other and cover every target once */
    for (size_t ns = 0; ns < 3; ns++) {
        size_t next = 0, share = 0;
        const char *nsname = NULL;
        for (size_t i = 0; i < p->n_pods; i++) {
            if (p->pods[i].client != (ns ? 1u : 0u))
                continue;
            if (ns && strcmp(p->pods[i].ns, ns == 1 ? "web-a" : "web-b") != 0)
                continue;
            assert_int_equal(p->pods[i].first, next);
            next += p->pods[i].count;
            if (!nsname)
                nsname = p->pods[i].ns;
            char want[128];
            snprintf(want, sizeof(want), "kfm-api-probe-3f9c0a1b2c4d-%u-%zu", ns ? 1u : 0u, share++);
            assert_string_equal(p->pods[i].name, want);
        }
        assert_int_equal(next, p->n_targets);
    }
    probe_plan_free(p);
    world_free(&w);
}

/* Builds a plan from a changed world; asserts it fails with code and a message holding each of needles. */
static void assert_plan_fails(const world *w, int code, const char *needle1, const char *needle2)
{
    probe_plan *p = (probe_plan *)0x1;
    assert_int_equal(plan_build(&p, w->release, "3f9c0a1b2c4d", w->pods, w->namespaces), code);
    assert_null(p);
    if (!strstr(mb_error_last(), needle1) || (needle2 && !strstr(mb_error_last(), needle2)))
        fail_msg("\"%s\" does not say \"%s\"%s%s", mb_error_last(), needle1, needle2 ? " and " : "",
                 needle2 ? needle2 : "");
}

static cJSON *clients_of(world *w, int i)
{
    return cJSON_GetArrayItem(json_get(w->release, "spec", "membrane", "clients", NULL), i);
}

static void test_plan_fails_closed(void **state)
{
    (void)state;
    world w;

    /* an entry no labels can satisfy: named, never skipped */
    w = world_load();
    json_set_item(clients_of(&w, 1), "podSelector",
                  fixture_yaml_text(
                      "{matchLabels: {app: a}, matchExpressions: [{key: app, operator: In, values: [b]}]}"));
    assert_plan_fails(&w, MB_EINVAL, "spec.membrane.clients[1].podSelector", "no labels can satisfy");
    world_free(&w);

    /* a namespaceSelector that matches no namespace */
    w = world_load();
    json_set_item(clients_of(&w, 1), "namespaceSelector", fixture_yaml_text("{matchLabels: {zone: moon}}"));
    assert_plan_fails(&w, MB_EINVAL, "spec.membrane.clients[1].namespaceSelector", "matches no namespace");
    world_free(&w);

    /* an invalid selector */
    w = world_load();
    json_set_item(clients_of(&w, 0), "podSelector",
                  fixture_yaml_text("{matchExpressions: [{key: app, operator: Near, values: [b]}]}"));
    assert_plan_fails(&w, MB_EINVAL, "spec.membrane.clients[0].podSelector", NULL);
    world_free(&w);

    /* a store with no live pod */
    w = world_load();
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(w.pods, "items"), 6);
    assert_plan_fails(&w, MB_ENOTFOUND, "stores[1] (minio)", "matches no live pod");
    world_free(&w);

    /* a live store pod without an IP */
    w = world_load();
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(w.pods, "items"), 2),
                                                   "status"),
                               "podIP");
    assert_plan_fails(&w, MB_ENOTFOUND, "kfm/postgis-1", "no IP");
    world_free(&w);

    /* no image */
    w = world_load();
    cJSON_DeleteItemFromObject((cJSON *)json_get(w.release, "spec", "membrane", "probe", NULL), "image");
    assert_plan_fails(&w, MB_EINVAL, "spec.membrane.probe.image", NULL);
    world_free(&w);
}

/* ---- the Pod ----------------------------------------------------------------------- */

static void test_pod_manifest(void **state)
{
    (void)state;
    world w = world_load();
    probe_plan *p = plan_of(&w);
    cJSON *pod = NULL;
    const cJSON *ctr, *env;
    const char *want = "10.0.0.10:5432 10.0.0.10:5433 10.0.0.11:5432 10.0.0.11:5433 10.0.1.5:9000";

    assert_int_equal(probe_pod_manifest(&pod, p, 0), 0);
    assert_string_equal(json_str(pod, "metadata", "namespace", NULL), "kfm");
    assert_string_equal(json_str(pod, "metadata", "name", NULL), "kfm-api-probe-3f9c0a1b2c4d-0-0");
    assert_string_equal(json_str(pod, "metadata", "labels", "app", NULL), "kfm-ui");
    assert_string_equal(json_str(pod, "metadata", "labels", PROBE_LABEL, NULL), "0b7f-uid");
    assert_string_equal(json_str(pod, "metadata", "annotations", PROBE_TARGETS_ANNOTATION, NULL), want);
    assert_string_equal(json_str(cJSON_GetArrayItem(json_get(pod, "metadata", "ownerReferences", NULL), 0), "uid",
                                 NULL),
                        "0b7f-uid");
    assert_true(cJSON_IsTrue(
        json_get(cJSON_GetArrayItem(json_get(pod, "metadata", "ownerReferences", NULL), 0), "controller", NULL)));
    assert_int_equal(json_int(0, pod, "spec", "activeDeadlineSeconds", NULL), 20);
    assert_string_equal(json_str(pod, "spec", "restartPolicy", NULL), "Never");
    ctr = cJSON_GetArrayItem(json_get(pod, "spec", "containers", NULL), 0);
    assert_string_equal(json_str(ctr, "image", NULL), "busybox@sha256:0123");
    assert_string_equal(cJSON_GetArrayItem(json_get(ctr, "command", NULL), 2)->valuestring, probe_script());
    env = json_get(ctr, "env", NULL);
    assert_string_equal(json_str(cJSON_GetArrayItem(env, 0), "value", NULL), want);
    assert_string_equal(json_str(cJSON_GetArrayItem(env, 1), "name", NULL), "WAIT");
    assert_string_equal(json_str(cJSON_GetArrayItem(env, 2), "value", NULL), "/dev/termination-log");
    /* what the admission policy for membrane's pods admits (manifests/probe): no token, bounded, unprivileged */
    assert_true(cJSON_IsFalse(json_get(pod, "spec", "automountServiceAccountToken", NULL)));
    assert_null(json_get(pod, "spec", "serviceAccountName", NULL));
    assert_null(json_get(pod, "spec", "volumes", NULL));
    assert_string_equal(json_str(ctr, "resources", "limits", "cpu", NULL), PROBE_CPU);
    assert_string_equal(json_str(ctr, "resources", "limits", "memory", NULL), PROBE_MEMORY);
    assert_string_equal(json_str(ctr, "resources", "requests", "cpu", NULL), PROBE_CPU);
    assert_string_equal(json_str(ctr, "resources", "requests", "memory", NULL), PROBE_MEMORY);
    assert_true(cJSON_IsFalse(json_get(ctr, "securityContext", "privileged", NULL)));
    assert_true(cJSON_IsFalse(json_get(ctr, "securityContext", "allowPrivilegeEscalation", NULL)));
    assert_string_equal(cJSON_GetArrayItem(json_get(ctr, "securityContext", "capabilities", "drop", NULL), 0)
                            ->valuestring,
                        "ALL");
    assert_null(json_get(ctr, "securityContext", "capabilities", "add", NULL));
    cJSON_Delete(pod);

    /* in another namespace than the release: no owner (an owner must share the namespace) */
    assert_int_equal(probe_pod_manifest(&pod, p, 1), 0);
    assert_string_equal(json_str(pod, "metadata", "namespace", NULL), "web-a");
    assert_null(json_get(pod, "metadata", "ownerReferences", NULL));
    assert_string_equal(json_str(pod, "metadata", "labels", "tier", NULL), "web");
    cJSON_Delete(pod);
    probe_plan_free(p);
    world_free(&w);
}

/* ---- judging ----------------------------------------------------------------------- */

/* Every pod ended with every target closed. */
static void all_closed(probe_plan *p)
{
    for (size_t i = 0; i < p->n_pods; i++) {
        char *r = calloc(1, 4096);
        for (size_t t = 0; t < p->pods[i].count; t++)
            sprintf(r + strlen(r), "closed %s\n", p->targets[p->pods[i].first + t].addr);
        p->pods[i].state = PROBE_POD_ENDED;
        free(p->pods[i].report);
        p->pods[i].report = r;
    }
}

static void set_report(probe_pod *pp, const char *text)
{
    free(pp->report);
    pp->report = strdup(text);
}

/* Judges p; asserts the verdict and that the message holds needle; returns nothing. */
static void assert_judged(const probe_plan *p, bool want, const char *needle)
{
    bool passed = !want;
    char *msg = NULL;
    assert_int_equal(probe_plan_judge(&passed, &msg, p), 0);
    assert_non_null(msg);
    if (passed != want || !strstr(msg, needle))
        fail_msg("want passed=%d and \"%s\", got passed=%d: %s", want, needle, passed, msg);
    free(msg);
}

static void test_judge(void **state)
{
    (void)state;
    world w = world_load();
    probe_plan *p = plan_of(&w);

    all_closed(p);
    assert_judged(p, true,
                  "3 probe pods with the labels of clients[0] (app=kfm-ui in namespace kfm) and clients[1] "
                  "(tier in (web,edge),team,!legacy in namespaces zone=public) could not connect to any of 5 "
                  "store targets: every verdict closed");

    /* one open target among closed ones: a breach naming the target, its store and pod, and the client */
    set_report(&p->pods[2], "closed 10.0.0.10:5432\nclosed 10.0.0.10:5433\nclosed 10.0.0.11:5432\n"
                            "open 10.0.0.11:5433\nclosed 10.0.1.5:9000\n");
    assert_judged(p, false, "probe pod web-b/kfm-api-probe-3f9c0a1b2c4d-1-0 with the labels of clients[1]");
    assert_judged(p, false, "opened a TCP connection to 10.0.0.11:5433 (store postgis, pod kfm/postgis-1)");

    /* nc missing: an error, never closed */
    all_closed(p);
    set_report(&p->pods[0], "error 10.0.0.10:5432 nc not found\nerror 10.0.0.10:5433 nc not found\n"
                            "error 10.0.0.11:5432 nc not found\nerror 10.0.0.11:5433 nc not found\n"
                            "error 10.0.1.5:9000 nc not found\n");
    assert_judged(p, false,
                  "could not try 10.0.0.10:5432 (store postgis, pod kfm/postgis-0): nc not found (and 4 more");
    assert_judged(p, false, "needs a POSIX shell and an nc");

    /* a target without a verdict */
    all_closed(p);
    set_report(&p->pods[1], "closed 10.0.0.10:5432\nclosed 10.0.0.10:5433\nclosed 10.0.0.11:5432\n"
                            "closed 10.0.0.11:5433\n");
    assert_judged(p, false,
                  "web-a/kfm-api-probe-3f9c0a1b2c4d-1-0 (clients[1] (tier in (web,edge),team,!legacy in "
                  "namespaces zone=public)) gave no verdict for 1 of its 5 targets, the first 10.0.1.5:9000 "
                  "(store minio, pod storage/minio-0)");

    /* a stray line */
    all_closed(p);
    set_report(&p->pods[0], "closed 10.0.0.10:5432\nclosed 10.0.0.10:5433\nclosed 10.0.0.11:5432\n"
                            "closed 10.0.0.11:5433\nclosed 10.0.1.5:9000\nsh: nc: Permission denied\n");
    assert_judged(p, false, "a line that is not the one verdict of a target it was given: \"sh: nc: Permission");

    /* a report that fills the termination message is not judged as whole */
    all_closed(p);
    {
        char *big = calloc(1, PROBE_REPORT_MAX + 1);
        memset(big, '\n', PROBE_REPORT_MAX);
        memcpy(big, p->pods[0].report, strlen(p->pods[0].report));
        free(p->pods[0].report);
        p->pods[0].report = big;
    }
    assert_judged(p, false, "fills the termination message");

    /* every verdict closed, but the pod failed */
    all_closed(p);
    p->pods[1].detail = strdup("it ended Failed with exit code 1, Error");
    assert_judged(p, false, "did not succeed: it ended Failed with exit code 1, Error");
    free(p->pods[1].detail);
    p->pods[1].detail = NULL;

    /* pods that could not run, timed out or were never made */
    all_closed(p);
    p->pods[0].state = PROBE_POD_UNRUN;
    p->pods[0].detail = strdup("it cannot be created: pods is forbidden");
    p->pods[1].state = PROBE_POD_TIMEOUT;
    p->pods[2].state = PROBE_POD_PLANNED;
    assert_judged(p, false, "could not run: it cannot be created: pods is forbidden");
    assert_judged(p, false, "did not finish within 20s");
    assert_judged(p, false, "was never created");

    /* an open connection outweighs everything else, which is still said */
    all_closed(p);
    p->pods[0].state = PROBE_POD_TIMEOUT;
    set_report(&p->pods[1], "open 10.0.0.10:5432\nopen 10.0.0.10:5433\nclosed 10.0.0.11:5432\n"
                            "closed 10.0.0.11:5433\nclosed 10.0.1.5:9000\n");
    assert_judged(p, false, "opened a TCP connection to 10.0.0.10:5432 (store postgis, pod kfm/postgis-0), and 1 more");
    assert_judged(p, false, "(besides: probe pod kfm/kfm-api-probe-3f9c0a1b2c4d-0-0");

    probe_plan_free(p);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_script_verdicts, setup_script, teardown_script),
        cmocka_unit_test_setup_teardown(test_script_without_nc, setup_script, teardown_script),
        cmocka_unit_test_setup_teardown(test_script_report_parses, setup_script, teardown_script),
        cmocka_unit_test(test_report_verdicts),
        cmocka_unit_test(test_report_strays),
        cmocka_unit_test(test_report_truncated),
        cmocka_unit_test(test_plan_every_client_and_store),
        cmocka_unit_test(test_plan_shares_targets),
        cmocka_unit_test(test_plan_fails_closed),
        cmocka_unit_test(test_pod_manifest),
        cmocka_unit_test(test_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
