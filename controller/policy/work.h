/*
 * PolicyBundle: the work of one bundle's generation, kept by the controller
 * per key, and the I/O around it: the fetch on the transfer loop (its bearer
 * token and extra CA read from Secrets when asked, never cached, wiped after
 * use), the signing key, and the published ConfigMap's write. Private to
 * controller/policy.
 */
#ifndef MB_POLICY_WORK_H
#define MB_POLICY_WORK_H

#include "kube/client.h"
#include "net/transfer.h"
#include "policy/decide.h"
#include "policy/tests.h"
#include "policy/verify.h"
#include "runtime/keyed_transfer.h"
#include "runtime/loop.h"

#include <cjson/cJSON.h>
#include <time.h>

typedef struct {
    long long gen;
    char digest[80];
    keyed_transfer *fetch; /* while running (and until collected) */
    policy_fetch_state fetch_state;
    char *fetch_msg;
    unsigned fetch_attempts;
    time_t fetch_finished;
    char *body; /* the fetched bytes, until published or dropped */
    size_t len;
    char sha[65];
    bool checked;
    policy_checked chk;
    policy_test_run *run;
    policy_tests_state tests;
    cJSON *results;
    char *tests_msg;
    unsigned tests_attempts;
    time_t tests_finished;
    policy_publish_state publish;
    char *cm_uid, *cm_rv;
} policy_work_state;

/* Cancels what runs and frees everything; the struct is zeroed. */
void policy_work_clear(policy_work_state *w);

/* The view decide reads (pointers into w). */
void policy_work_view(policy_work *out, const policy_work_state *w);

/*
 * Starts the fetch of bundle's spec.source.url (kind "bundle", keep_body,
 * max_bytes spec.source.maxBytes, 3 redirects, the token of
 * spec.source.authSecretRef, the CA of spec.source.caSecretRef); its end
 * enqueues key on l. A Secret that cannot be read is a failed fetch (the
 * message names it): w->fetch_state FAILED, and 0 is returned.
 */
int policy_fetch_start(policy_work_state *w, kube_client *kc, net_loop *net, loop *l, const char *key,
                       const cJSON *bundle, time_t now);

/*
 * Collects an ended fetch into w: DONE (w->body, w->sha), FAILED or TOO_BIG
 * with the message; then the checks of policy/verify.h (the signing key read
 * from its Secret; one that cannot be read fails the fetch, transient). 0 or
 * MB_ENOMEM. Nothing happens while the fetch runs.
 */
int policy_fetch_collect(policy_work_state *w, kube_client *kc, const cJSON *bundle, time_t now);

/*
 * Writes the ConfigMap name with w's bytes for bundle: created, or (ours)
 * updated with the resourceVersion of the copy seen (cached: the cached or
 * written-ahead copy, NULL when none; on AlreadyExists the ConfigMap is read
 * directly, e.g. when its label was removed by hand). w->publish becomes DONE
 * (*written: the ConfigMap as the API answered) or NOT_OWNED. 0, or an error
 * to retry (a 409 included).
 */
int policy_publish(policy_work_state *w, kube_client *kc, const cJSON *bundle, const char *name, const cJSON *cached,
                   cJSON **written);

#endif
