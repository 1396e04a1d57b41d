/*
 * PolicyBundle decision tests (API.md "PolicyBundle", Details) against the
 * OPA of spec.decisionTests.opaURL, as one chain of transfers on the
 * transfer loop, never on a worker: PUT each .rego file as the policy
 * membrane/<ns>/<name>/<path> (text/plain), PUT each data.json under its
 * directory (/v1/data/<dir>; a root data.json: /v1/data), POST each case to
 * /v1/data/<path> with {"input": ...} and judge the answer with
 * bundle_decision_matches, then DELETE what was loaded (also after a load
 * error or a cancel). A load that does not answer 2xx, OPA unreachable, or a
 * 5xx to a case is an error (transient: the tests did not run), never a pass.
 *
 * One bundle at a time per opaURL, process-wide: a start that finds the OPA
 * busy registers the key as a waiter and returns POLICY_TESTS_BUSY; when the
 * chain holding it ends, every waiter's key is enqueued on its loop.
 */
#ifndef MB_POLICY_TESTS_H
#define MB_POLICY_TESTS_H

#include "net/transfer.h"
#include "policy/bundle.h"
#include "runtime/loop.h"

#include <cjson/cJSON.h>
#include <stdbool.h>

typedef struct policy_test_run policy_test_run;

#define POLICY_TESTS_BUSY 1

typedef struct {
    net_loop *net;
    loop *loop;          /* where key is enqueued when the run ends, or when the busy OPA becomes free */
    const char *key;     /* "ns/name" */
    const char *opa_url; /* spec.decisionTests.opaURL */
    const char *ns, *name;
    const bundle *b;    /* its files are copied into the requests as they start; kept until release */
    const cJSON *cases; /* spec.decisionTests.cases (copied) */
} policy_tests_opts;

/* 0 with *out running, POLICY_TESTS_BUSY (the OPA runs another bundle's tests; *out NULL), or an error. */
int policy_tests_start(policy_test_run **out, const policy_tests_opts *o);

/* Whether the chain has ended (its cleanup too). */
bool policy_tests_finished(policy_test_run *r);

/*
 * After policy_tests_finished: *results (the caller's: [{name, passed, got, message}]) when every case ran, or
 * *error (the caller's, one sentence) when the tests could not run. 0 or MB_ENOMEM.
 */
int policy_tests_take(policy_test_run *r, cJSON **results, char **error);

/* Cancels a chain still going (its cleanup still runs) and drops the caller's handle. Accepts NULL. */
void policy_tests_release(policy_test_run *r);

/* Forgets every waiter of l (the controller that owns it goes away). */
void policy_tests_forget_loop(loop *l);

#endif
