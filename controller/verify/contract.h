/*
 * The governed API contract checks of a GovernedAPIRelease (API.md,
 * "Verification checks (the governed API contract)"): health, ready,
 * datasets, stac-collections, stac-items, evidence-resolve, focus-ask,
 * lineage, public-restriction and published-only, run concurrently on the
 * shared transfer loop (net/transfer.h) against spec.verification.baseURL and
 * judged exactly as the table says. Every request carries X-Request-ID: <releaseID>-<check>; the
 * authorized ones carry the bearer token (never logged, wiped after use);
 * health, ready and public-restriction's three calls carry none. HTTP and
 * HTTPS only, to the base URL only: no redirects are followed and no proxy
 * from the environment is used.
 *
 * The results are a cJSON array shaped for status.verification.results: one
 * object per check in the order asked, with name, passed, httpStatus (only
 * when a response came), latencyMs, trigger (only on failure, always the
 * check's row) and message (at most 1024 bytes; on failure a sentence naming
 * what was wrong: the status, the malformed body, the missing or mistyped
 * field, the timeout, the URL that refused).
 *
 * public-restriction compares the restricted dataset with one that cannot
 * exist. Its id is fresh for every run, from OpenSSL's RAND_bytes, so an API
 * cannot learn it: the restricted id's prefix up to its last '.' followed by
 * "absent-" and 16 hex digits ("kfm.sacred-sites" gives
 * "kfm.absent-9c1f0e5ab27d4c83"), which keeps the id's shape in case the API
 * validates it. Three readings beyond the table, all failing closed: the
 * public listing must answer 200 with an items array (a listing that cannot
 * be read cannot be judged), an item without policy_label counts as not
 * public, and a 2xx for the restricted dataset without credentials fails (the
 * restricted data itself is served to the public).
 *
 * published-only judges the authorized listing against the published index
 * (DatasetPromotion's ConfigMap, spec.verification.publishedIndex), which
 * the caller reads from the Kubernetes API at check time and hands in as a
 * contract_index: every listed (dataset_id, dataset_version_id) must have an
 * entry under the key dataset_id whose versionID is that version, and a
 * listed policy_label must equal the entry's policyLabel. It fails closed:
 * an index that is missing or could not be read, an entry that is not a JSON
 * object with a string versionID (and a datasetID equal to its key), a
 * listing that cannot be read or lists nothing. The message names the
 * unpublished pairs (the first few, then how many more).
 */
#ifndef MB_VERIFY_CONTRACT_H
#define MB_VERIFY_CONTRACT_H

#include "kube/client.h"
#include "net/transfer.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <time.h>

#define CONTRACT_N_CHECKS 10
#define CONTRACT_TIMEOUT_MS_DEFAULT 10000L
#define CONTRACT_BODY_MAX (4L * 1024 * 1024)                      /* a larger answer fails its check */
#define CONTRACT_MESSAGE_MAX 1024                                 /* bytes, as the CRD allows */
#define CONTRACT_PUBLISHED_INDEX_DEFAULT "kfm-published-datasets" /* spec.verification.publishedIndex's default */

/*
 * The published index as published-only judges it, read by the caller: the
 * ConfigMap's data (one key per datasetID whose value is the entry as JSON:
 * {auditRef, catalog, datasetID, license, policyLabel, versionID}), or why it
 * could not be read. Borrowed.
 */
typedef struct {
    const char *name;  /* "<namespace>/<name>" of the ConfigMap, for messages */
    const cJSON *data; /* its data; NULL: it has none (every listed version is unpublished) */
    const char *error; /* non-NULL: there is no index to judge against, for this reason (the check fails) */
} contract_index;

/* The ten check names in the table's order (also the default list): the nine of the governed API, published-only. */
extern const char *const contract_check_names[CONTRACT_N_CHECKS];

/* The trigger of a check's row ("SmokeFailure" for a name not in the table). */
const char *contract_check_trigger(const char *name);

/* What one run needs; every pointer is borrowed for the call. */
typedef struct {
    const char *base_url;              /* http(s)://host[:port][/prefix]; trailing '/' ignored */
    const char *token;                 /* bearer token for authorized calls, NULL: none; never logged */
    long timeout_ms;                   /* per request (CURLOPT_TIMEOUT_MS); 0: 10000 */
    const cJSON *checks;               /* array of check names, run and reported in this order; NULL: all ten */
    const cJSON *evidence_refs;        /* array sent as {"refs": ...}; required with evidence-resolve */
    const char *focus_question;        /* required with focus-ask */
    const char *restricted_dataset_id; /* required with public-restriction */
    const char *release_id;            /* required: X-Request-ID is <release_id>-<check> */
    time_t now;                        /* focus-ask's context.time */
    net_loop *loop;                    /* contract_checks_run: the transfer loop to use; NULL: a private one */
    contract_index published;          /* contract_checks_run: the index published-only judges against */
} contract_input;

/*
 * Runs the checks in parallel (on in->loop, or a loop of its own) and judges
 * them, waiting for the answers; *out is the results array. A
 * check that fails is a result, not an error: the return is 0 then. Errors
 * are for input that cannot be run (MB_EINVAL: an unknown or repeated check
 * name, a required input missing, a base URL that is not http(s), a token or
 * release ID with control characters) and for libcurl or memory failures.
 */
int contract_checks_run(cJSON **out, const contract_input *in);

/*
 * A run of the checks on the shared transfer loop, for a caller that must not
 * wait (a reconcile): contract_checks_start validates in as
 * contract_checks_run does (the same errors), starts every request and
 * returns; done(ctx) is called once, on the loop thread, when the last
 * request has ended (it must be short: enqueue a key), after the run is
 * finished, so it may free the run; when every request ended before the
 * start returned, contract_checks_start calls it itself. Everything in `in`
 * is copied but in->published: contract_run_results judges the answers
 * (waiting for the end if need be), published-only against index (NULL: the
 * index was not read, and published-only fails saying so); contract_run_cancel ends the requests still running (their
 * checks fail as cancelled), from any thread; contract_run_free cancels,
 * waits for the callbacks and frees (on the loop thread only once
 * finished, as in done).
 */
typedef struct contract_run contract_run;
typedef void (*contract_done_fn)(void *ctx);

int contract_checks_start(contract_run **out, net_loop *loop, const contract_input *in, contract_done_fn done,
                          void *ctx);
bool contract_run_finished(contract_run *run);
void contract_run_cancel(contract_run *run);
int contract_run_results(cJSON **out, contract_run *run, const contract_index *index);
void contract_run_free(contract_run *run);

/*
 * The bearer token from the Secret spec.verification.authSecretRef names
 * (name and key, in the release's namespace ns): data[key] base64-decoded,
 * trailing whitespace and newlines dropped. *out is NULL and 0 is returned
 * when there is no authSecretRef (name and key both NULL); MB_EINVAL when one
 * of them is missing or empty. MB_ENOTFOUND when the Secret or the key is missing
 * ("Secret kfm/smoke-token has no key \"token\"; ..."), MB_EINVAL when the
 * value is not base64, is empty or holds control characters, and the kube
 * client's code when the Secret cannot be read. Free with contract_token_free.
 */
int contract_token_read(char **out, kube_client *c, const char *ns, const char *name, const char *key);

/* Wipes and frees a token; accepts NULL. */
void contract_token_free(char *token);

#endif
