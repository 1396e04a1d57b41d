/*
 * Every verification check of one GovernedAPIRelease, against what its
 * Deployment runs now, from a plain input the release controller builds
 * (verify/ never reads the release): the governed API contract checks, and
 * with spec.membrane the membrane checks (membrane-networkpolicy from the
 * live NetworkPolicies, Pods and Namespaces; membrane-rbac from
 * SubjectAccessReviews; membrane-probe, a pod with the client's labels). The
 * results are one array shaped for status.verification.results.
 *
 * A run never holds its caller: verify_run_start starts the contract checks'
 * requests on the shared transfer loop (net/transfer.h) and queues the
 * membrane checks, which call the Kubernetes API and may wait for the probe
 * pod, on a small executor thread (verify_executor); so does the read of
 * the published index that published-only judges against (a ConfigMap GET,
 * fresh from the API at check time). When every part has ended, done(ctx)
 * is called.
 */
#ifndef MB_VERIFY_RUNNER_H
#define MB_VERIFY_RUNNER_H

#include "kube/client.h"
#include "net/transfer.h"
#include "verify/contract.h"
#include "verify/owner.h"
#include "verify/slo.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* At most this many checks are requested by one release (the ten contract checks, slo, the three membrane ones, room
 * to grow). */
#define VERIFY_CHECKS_MAX 32

/*
 * The trigger of a check's row in API.md's tables: the contract checks'
 * (verify/contract.h), SLOBreach for slo, MembraneBreach for membrane-networkpolicy,
 * membrane-rbac and membrane-probe. SmokeFailure for a name in no table.
 */
const char *verify_check_trigger(const char *name);

/*
 * The checks a release asks for, whose every one must return a result (a
 * check without one fails, "no result"): checks (spec.verification.checks),
 * or when it is not an array the ten contract checks (published-only
 * included); with slo (spec.verification.slo) also slo; with membrane
 * (spec.membrane) also membrane-networkpolicy and membrane-rbac, and with
 * membrane.probe membrane-probe. out[] gets borrowed names (from checks or
 * static), at most max; returns how many. Pure: no I/O, no allocation.
 */
size_t verify_checks_requested(const char **out, size_t max, const cJSON *checks, const cJSON *slo,
                               const cJSON *membrane);

/*
 * What one run needs, all borrowed for verify_run_start (which copies it).
 * The contract part is contract_input with its base URL and token set; when
 * contract_error is set instead, the contract checks cannot run and every one
 * asked for fails with that message (fail closed). membrane is
 * spec.membrane as the CRD documents it (clients, stores,
 * apiServiceAccount, probe): its selectors are read by the checks that judge
 * them (netpol_check.c, probe.c, labels.c), with the messages that name their
 * fields.
 */
typedef struct {
    verify_owner owner;            /* the release: probe pods' owner and label */
    const char *release_id;        /* X-Request-ID, probe pod names */
    const char *target_deployment; /* spec.target.deployment: membrane-rbac reads which account it runs as */
    contract_input contract;       /* loop is ignored (verify_run_start's is used) */
    const char *contract_error;    /* non-NULL: the contract checks cannot run, for this reason */
    const char *published_index;   /* spec.verification.publishedIndex: the ConfigMap in owner.namespace that
                                      published-only reads; NULL or empty: CONTRACT_PUBLISHED_INDEX_DEFAULT */
    const cJSON *membrane;         /* spec.membrane; NULL: no membrane checks */
    const cJSON *slo;              /* spec.verification.slo; NULL: no slo check */
    const char *slo_digest;        /* what {{digest}} stands for: the digest the Deployment runs now */
    const char *slo_token;         /* Prometheus's bearer token (slo.authSecretRef), NULL: none; never logged */
    const char *slo_error;         /* non-NULL: the slo check cannot run, for this reason (it fails with it) */
} verify_input;

/* One thread that runs queued jobs in turn (the membrane checks); never a reconcile worker. */
typedef struct verify_executor verify_executor;

int verify_executor_new(verify_executor **out);

/* Runs the jobs already queued (a cancelled run's skip their checks), stops the thread and frees. Accepts NULL. */
void verify_executor_free(verify_executor *ex);

typedef struct verify_run verify_run;
typedef void (*verify_done_fn)(void *ctx);

/*
 * Starts a run: the contract checks' requests and (with in->slo) the slo
 * check's queries to Prometheus on loop; on ex, the read of
 * the published index (when published-only is asked for) and the membrane
 * checks (with in->membrane), through client for the Kubernetes API. done(ctx) is called
 * once both have ended, on the thread that ended the last (the loop's, the
 * executor's, or the caller's when nothing was left to wait for), under the
 * run's lock: it must be short (enqueue a key) and must not call verify_run_*.
 * It is never called once verify_run_free has returned. 0, MB_ENOMEM, or
 * MB_ERROR when the loop or the executor has stopped.
 */
int verify_run_start(verify_run **out, const verify_input *in, kube_client *client, net_loop *loop, verify_executor *ex,
                     verify_done_fn done, void *ctx);

/* True once both parts have ended; *finished_at (may be NULL) is when. */
bool verify_run_finished(verify_run *run, time_t *finished_at);

/*
 * The results of a finished run: the contract checks' in the order asked
 * (published-only judged against the index as it was read), then slo, then
 * membrane-networkpolicy, membrane-rbac and membrane-probe. Checks that
 * fail, or cannot be evaluated, are failed results (fail closed). MB_EINVAL
 * when the run has not finished; an error return otherwise means the run
 * itself could not happen (memory, a failure to run at all).
 */
int verify_run_results(cJSON **out, verify_run *run);

/*
 * Cancels what still runs (the requests at once; the membrane checks at their
 * next step) and lets go of the run: it is freed when its parts have ended,
 * and done is not called any more. Never waits. Accepts NULL.
 */
void verify_run_free(verify_run *run);

#endif
