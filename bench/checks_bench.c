/*
 * Benchmark of the governed API contract checks: the wall time of the whole
 * nine-check suite (eleven requests on one curl multi handle, fresh
 * connections each run) against a local governed-api-double with the good
 * behaviour, over 200 runs after 5 warm-up runs; prints min, p50, p90, p99
 * and max, and asserts nothing (every run's results are checked to have
 * passed only so that a broken set-up is not timed). Built by CMake as
 * bench_checks next to the double; hack/bench.sh runs it:
 *
 *   bench_checks [path/to/governed-api-double] [runs]
 */
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
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

int main(int argc, char **argv)
{
    const char *binary = argc > 1 ? argv[1] : "./governed-api-double";
    int runs = argc > 2 ? atoi(argv[2]) : 200;
    int out[2];
    pid_t pid;
    char line[256] = "", url[96];
    posix_spawn_file_actions_t fa;
    const char *args[] = {binary,        "--listen",     "127.0.0.1:0", "--fixed-digest", DIGEST,
                          "--behaviour", DIGEST "=good", "--token",     "bench-token",    NULL};

    if (runs < 1)
        runs = 200;
    mb_log_setup(MB_LOG_TEXT, MB_LOG_WARN, NULL);
    if (pipe(out) < 0)
        return 1;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&pid, binary, &fa, NULL, (char *const *)args, environ) != 0) {
        fprintf(stderr, "bench: cannot start %s\n", binary);
        return 1;
    }
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    ssize_t n = poll(&p, 1, 10000) > 0 ? read(out[0], line, sizeof(line) - 1) : -1;
    close(out[0]);
    if (n <= 0 || sscanf(line, "listening on %95s", url) != 1) {
        fprintf(stderr, "bench: the double did not start\n");
        kill(pid, SIGTERM);
        return 1;
    }

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
    };
    double *t = calloc((size_t)runs, sizeof(double));
    int rc = 0;
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
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    cJSON_Delete(refs);
    if (rc == 0) {
        qsort(t, (size_t)runs, sizeof(double), cmp);
        double sum = 0;
        for (int i = 0; i < runs; i++)
            sum += t[i];
        printf("nine contract checks (11 requests in parallel) against governed-api-double (good), %d runs:\n", runs);
        printf("  min %.2f ms  p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  mean %.2f ms\n", t[0],
               pct(t, runs, 50), pct(t, runs, 90), pct(t, runs, 99), t[runs - 1], sum / runs);
    }
    free(t);
    return rc;
}
