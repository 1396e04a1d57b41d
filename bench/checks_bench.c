/*
 * Benchmark of the governed API contract checks: the wall time of one run of
 * the whole nine-check suite (eleven requests, all started at once on one
 * transfer loop made before the runs, as the operator's manager makes one)
 * against a local governed-api-double with the good behaviour, over 200 runs
 * after 5 warm-up runs, twice: with fresh connections each run (the double
 * closes every connection after its answer: the figure comparable with a
 * check run that made its own connections) and with the connections the loop
 * keeps between runs (what the release controller's runs against one base URL
 * get). Prints min, p50, p90, p99 and max of each, and asserts nothing (every
 * run's results are checked to have passed only so that a broken set-up is
 * not timed). Built by CMake as bench_checks next to the double; hack/bench.sh
 * runs it:
 *
 *   bench_checks [path/to/governed-api-double] [runs]
 */
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "net/transfer.h"
#include "verify/contract.h"

#include <fcntl.h>
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

#define DIGEST "sha256:1111111111111111111111111111111111111111111111111111111111111111"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, int n, double p)
{
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

/* Starts the double (extra flag: NULL or one more argument); its URL in url, its PID in *pid. */
static int double_start(pid_t *pid, char *url, size_t url_size, const char *binary, const char *extra)
{
    int out[2];
    char line[256] = "", fmt[32];
    posix_spawn_file_actions_t fa;
    const char *args[] = {binary,        "--listen",     "127.0.0.1:0", "--fixed-digest", DIGEST,
                          "--behaviour", DIGEST "=good", "--token",     "bench-token",    extra,
                          NULL};

    if (pipe(out) < 0)
        return -1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    int rc = posix_spawn(pid, binary, &fa, NULL, (char *const *)args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        fprintf(stderr, "bench: cannot start %s\n", binary);
        return -1;
    }
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    ssize_t n = poll(&p, 1, 10000) > 0 ? read(out[0], line, sizeof(line) - 1) : -1;
    close(out[0]);
    snprintf(fmt, sizeof(fmt), "listening on %%%zus", url_size - 1);
    if (n <= 0 || sscanf(line, fmt, url) != 1) {
        fprintf(stderr, "bench: the double did not start\n");
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
        return -1;
    }
    return 0;
}

/* runs timed runs (after 5 warm-up runs) of the checks against url on loop; prints the figures under title */
static int measure(net_loop *loop, const char *url, int runs, const char *title)
{
    cJSON *refs = cJSON_Parse("[{\"type\":\"stac_item\",\"id\":\"wells-2026-03\"}]");
    contract_input in = {
        .base_url = url,
        .token = "bench-token",
        .timeout_ms = 10000,
        .evidence_refs = refs,
        .focus_question = "Which wells were sampled in March 2026?",
        .restricted_dataset_id = "kfm.sacred-sites",
        .release_id = "0123456789ab",
        .now = time(NULL),
        .loop = loop,
    };
    double *t = calloc((size_t)runs, sizeof(double));
    int rc = t ? 0 : 1;
    for (int i = -5; i < runs && rc == 0; i++) {
        cJSON *res = NULL;
        int64_t t0 = mb_monotonic_ns();
        if (contract_checks_run(&res, &in) < 0) {
            fprintf(stderr, "bench: %s\n", mb_error_last());
            rc = 1;
        }
        double dt = mb_elapsed_ms(t0);
        const cJSON *r;
        cJSON_ArrayForEach(r, res) {
            if (!json_bool(false, r, "passed", NULL)) {
                fprintf(stderr, "bench: %s failed: %s\n", json_str(r, "name", NULL), json_str(r, "message", NULL));
                rc = 1;
            }
        }
        if (i >= 0)
            t[i] = dt;
        cJSON_Delete(res);
    }
    cJSON_Delete(refs);
    if (rc == 0) {
        qsort(t, (size_t)runs, sizeof(double), cmp);
        double sum = 0;
        for (int i = 0; i < runs; i++)
            sum += t[i];
        printf("%s, %d runs:\n", title, runs);
        printf("  min %.2f ms  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms\n", t[0],
               pct(t, runs, 50), pct(t, runs, 90), pct(t, runs, 99), t[runs - 1], sum / runs);
    }
    free(t);
    return rc;
}

int main(int argc, char **argv)
{
    const char *binary = argc > 1 ? argv[1] : "./governed-api-double";
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    char url[96];
    pid_t pid;
    net_loop *loop = NULL;
    int rc = 0;

    if (runs < 1)
        runs = 200;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_WARN, NULL);
    if (net_loop_new(&loop, NULL) < 0) {
        fprintf(stderr, "bench: %s\n", mb_error_last());
        return 1;
    }
    if (double_start(&pid, url, sizeof(url), binary, "--close-connections") < 0) {
        net_loop_free(loop);
        return 1;
    }
    rc = measure(loop, url, runs,
                 "nine contract checks (11 requests in parallel) against governed-api-double (good), one run on "
                 "the transfer loop, fresh connections each run");
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    if (rc == 0 && double_start(&pid, url, sizeof(url), binary, NULL) == 0) {
        rc = measure(loop, url, runs,
                     "the same, the connections kept by the loop between runs (as the release controller's runs "
                     "against one base URL)");
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    } else if (rc == 0) {
        rc = 1;
    }
    net_loop_free(loop);
    return rc;
}
