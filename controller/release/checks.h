/*
 * The verification input of a GovernedAPIRelease: what verify/ needs to run
 * its checks, read from the release (spec.verification, spec.target,
 * spec.membrane, its identity) and the Secret holding the bearer token, into
 * the plain verify_input struct. verify/ never reads the release itself.
 */
#ifndef RELEASE_CHECKS_H
#define RELEASE_CHECKS_H

#include "kube/client.h"
#include "verify/runner.h"

#include <cjson/cJSON.h>
#include <time.h>

/*
 * Fills the spec-derived part of in from a GovernedAPIRelease: checks,
 * evidenceRefs, focusQuestion, restrictedDatasetID and timeoutSeconds of
 * spec.verification (borrowed from release). base_url, token, release_id,
 * now and loop are zeroed for the caller to set.
 */
void release_contract_input(contract_input *out, const cJSON *release);

/*
 * The base URL the checks call: spec.verification.baseURL, else
 * http://<spec.target.deployment>.<metadata.namespace>.svc. Caller frees.
 * MB_EINVAL (naming the field) when neither can be formed.
 */
int release_contract_base_url(char **out, const cJSON *release);

/* A verify_input and what it owns. */
typedef struct {
    verify_input in; /* borrows from the release and from the fields below */
    char *base_url;
    char *token; /* wiped when cleared */
    char *contract_error;
    char *slo_token; /* Prometheus's, from spec.verification.slo.authSecretRef; wiped when cleared */
    size_t slo_token_len;
    char *slo_error;
} release_verify_input;

/*
 * Builds the input of a run of release's checks for release_id, against the
 * version whose image digest is digest (what {{digest}} in the slo check's
 * queries stands for): the contract
 * input (base URL, the bearer token read from spec.verification.authSecretRef
 * through client), the owner, the target Deployment, spec.membrane and
 * spec.verification.publishedIndex (NULL when unset: the runner's default),
 * spec.verification.slo with Prometheus's token read from its authSecretRef.
 * A base URL that cannot be formed or a token that cannot be read is not an
 * error: contract_error (slo_error for Prometheus's token) says why, and
 * every check concerned fails with it (fail closed). Borrows from release
 * and digest, which must outlive *out. 0 or MB_ENOMEM.
 */
int release_verify_input_build(release_verify_input *out, kube_client *client, const cJSON *release,
                               const char *release_id, const char *digest, time_t now);

/* Frees what *in owns (the token wiped). */
void release_verify_input_clear(release_verify_input *in);

/*
 * The check runs of the releases, kept by release key, one for one releaseID
 * and digest at a time, in memory only (a restart runs the checks again):
 * started on the shared transfer loop and the table's executor thread, and
 * enqueue(ctx, key) called when one ends.
 */
typedef struct release_runs release_runs;

/* 0, MB_ENOMEM or MB_ERROR (the executor thread could not be made). */
int release_runs_new(release_runs **out, kube_client *client, net_loop *net,
                     void (*enqueue)(void *ctx, const char *key), void *ctx);

/* Cancels every run and frees the table once its executor has finished what it was given; accepts NULL. */
void release_runs_free(release_runs *runs);

/* Cancels and forgets the run of key, if any. */
void release_runs_drop(release_runs *runs, const char *key);

/*
 * The results of cur's checks for rid and digest: 1 with *results (the
 * caller's) and the run's times when a run for them has finished (it is
 * forgotten then); 0 when one is still going, or was started now (its end
 * enqueues the release). A run for another releaseID or digest is
 * superseded: cancelled, and a new one starts.
 */
int release_runs_collect(release_runs *runs, const char *key, const cJSON *cur, const char *rid, const char *digest,
                         cJSON **results, time_t *started_at, time_t *finished_at);

#endif
