/*
 * Fixtures for the tests of release_decide: a release, its Deployment, pods,
 * PolicyBundle and check results as small JSON objects, and the observation
 * built from them.
 */
#ifndef TEST_RELEASE_FIXTURE_H
#define TEST_RELEASE_FIXTURE_H

#include "release/decide.h"

#include <stdbool.h>
#include <stddef.h>

#define A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define C "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define REPO "ghcr.io/kfm/kfm-api"
#define T0 1795000000L /* 2026-11-18 */

typedef struct {
    cJSON *release;
    cJSON *deployment;
    cJSON *pods[8];
    size_t n_pods;
    cJSON *bundle;
    cJSON *upstream[4]; /* spec.after's releases, in its order (NULL: not found) */
    size_t n_upstream;
    cJSON *results;
    release_observed obs;
    release_plan plan;
} fx;

/* JSON from a printf format; fails the test when it does not parse. */
cJSON *fx_parse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * kfm/kfm-api at generation gen, for REPO@digest, with more spec members when
 * extra_spec is set. Its spec.verification.checks are health and focus-ask:
 * a run's results must cover both.
 */
cJSON *fx_release_new(long gen, const char *digest, const char *extra_spec);

/* A Deployment running image on `replicas` replicas beside a sidecar, fully rolled out when done. */
cJSON *fx_deployment_new(const char *image, int replicas, bool done, const char *owner);

/* A running pod of image, crash-looping with `restarts` when waiting is set. */
cJSON *fx_pod_new(const char *name, const char *image, const char *waiting, int restarts);

/* Adds n pods of image, crash-looping when crash. */
void fx_pods(fx *f, const char *image, int n, bool crash);

/* The checks ran for release ID rid and gave results_json. */
void fx_checks(fx *f, const char *rid, const char *results_json);

/* Points f->obs at f's objects (the clock at T0 unless set). */
void fx_observe(fx *f);

void fx_free(fx *f);

#endif
