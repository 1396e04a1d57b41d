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

#endif
