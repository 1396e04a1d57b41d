/*
 * release_verify_input_build and its parts (checks.h): the fields of the
 * release read once, here, into the struct verify/ runs from; the token read
 * through verify/contract.h from the Secret the release names; and the table
 * of the runs, kept by release key.
 */
#include "release/checks.h"
#include "kube/secretref.h"
#include "runtime/metrics_families.h"
#include "util/error.h"
#include "util/json.h"
#include "util/secret.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uthash reports a failed allocation by leaving the item's table pointer NULL. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

void release_contract_input(contract_input *out, const cJSON *release)
{
    const cJSON *v = json_get(release, "spec", "verification", NULL);
    long long secs = json_int(0, v, "timeoutSeconds", NULL);
    const cJSON *checks = cJSON_GetObjectItemCaseSensitive(v, "checks");
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(v, "evidenceRefs");

    memset(out, 0, sizeof(*out));
    out->checks = cJSON_IsArray(checks) ? checks : NULL;
    out->evidence_refs = cJSON_IsArray(refs) ? refs : NULL;
    out->focus_question = json_str(v, "focusQuestion", NULL);
    out->restricted_dataset_id = json_str(v, "restrictedDatasetID", NULL);
    out->timeout_ms = secs > 0 && secs <= 300 ? (long)secs * 1000 : CONTRACT_TIMEOUT_MS_DEFAULT;
}

int release_contract_base_url(char **out, const cJSON *release)
{
    const char *url = json_str(release, "spec", "verification", "baseURL", NULL);
    const char *dep = json_str(release, "spec", "target", "deployment", NULL);
    const char *ns = json_str(release, "metadata", "namespace", NULL);

    *out = NULL;
    if (url && url[0])
        *out = strdup(url);
    else if (dep && dep[0] && ns && ns[0] && asprintf(out, "http://%s.%s.svc", dep, ns) < 0)
        *out = NULL;
    else if (!(dep && dep[0] && ns && ns[0]))
        return mb_error_set(MB_EINVAL, "the verification base URL cannot be formed: set spec.verification.baseURL "
                                       "or spec.target.deployment (and the release's namespace)");
    if (!*out)
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

/* The slo check's part: spec.verification.slo, the digest and Prometheus's token (a token that cannot be read fails
 * the check, saying why). */
static int slo_input_build(release_verify_input *out, kube_client *client, const cJSON *release, const char *digest)
{
    char why[CONTRACT_MESSAGE_MAX];
    const cJSON *slo = json_get(release, "spec", "verification", "slo", NULL);
    const cJSON *ref = json_get(slo, "authSecretRef", NULL);
    const char *ns = json_str(release, "metadata", "namespace", NULL);
    int rc = 0;

    if (!slo || cJSON_IsNull(slo))
        return 0;
    out->in.slo = slo;
    out->in.slo_digest = digest;
    if (!ref)
        return 0;
    if (!client)
        snprintf(why, sizeof(why), "there is no Kubernetes client to read spec.verification.slo.authSecretRef with");
    else if ((rc = kube_secret_ref_read(&out->slo_token, &out->slo_token_len, client, ns, ref,
                                        "spec.verification.slo.authSecretRef", why, sizeof(why))) < 0)
        return rc;
    if (rc == 0 && out->slo_token) {
        size_t n = strlen(out->slo_token); /* trailing whitespace dropped; the whole buffer is wiped when cleared */
        while (n > 0 && (out->slo_token[n - 1] == '\n' || out->slo_token[n - 1] == '\r' ||
                         out->slo_token[n - 1] == ' ' || out->slo_token[n - 1] == '\t'))
            out->slo_token[--n] = '\0';
        out->in.slo_token = out->slo_token;
        return 0;
    }
    char msg[CONTRACT_MESSAGE_MAX]; /* the CRD's maxLength of a result's message */
    snprintf(msg, sizeof(msg), "Prometheus's bearer token cannot be read, so the SLO cannot be judged: %.900s", why);
    if (!(out->slo_error = strdup(msg)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    out->in.slo_error = out->slo_error;
    return 0;
}

int release_verify_input_build(release_verify_input *out, kube_client *client, const cJSON *release,
                               const char *release_id, const char *digest, time_t now)
{
    int err = 0;
    char why[CONTRACT_MESSAGE_MAX];
    const cJSON *ref = json_get(release, "spec", "verification", "authSecretRef", NULL);
    const char *ns = json_str(release, "metadata", "namespace", NULL);
    verify_input *in = &out->in;

    memset(out, 0, sizeof(*out));
    in->owner = (verify_owner){ns, json_str(release, "metadata", "name", NULL),
                               json_str(release, "metadata", "uid", NULL), json_str(release, "apiVersion", NULL)};
    in->release_id = release_id;
    in->target_deployment = json_str(release, "spec", "target", "deployment", NULL);
    in->membrane = json_get(release, "spec", "membrane", NULL);
    in->published_index = json_str(release, "spec", "verification", "publishedIndex", NULL);
    release_contract_input(&in->contract, release);
    in->contract.release_id = release_id;
    in->contract.now = now;
    if ((err = release_contract_base_url(&out->base_url, release)) < 0) {
        if (err == MB_ENOMEM)
            goto done;
        snprintf(why, sizeof(why), "the checks cannot run: %s", mb_error_last());
    } else if (ref && (err = contract_token_read(&out->token, client, ns, or_empty(json_str(ref, "name", NULL)),
                                                 or_empty(json_str(ref, "key", NULL)))) < 0) {
        if (err == MB_ENOMEM)
            goto done;
        snprintf(why, sizeof(why), "the bearer token cannot be read, so the authorized checks cannot run: %s",
                 mb_error_last());
    }
    if (err < 0) {
        err = 0;
        if (!(out->contract_error = strdup(why))) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        in->contract_error = out->contract_error;
    }
    in->contract.base_url = out->base_url;
    in->contract.token = out->token;
    if ((err = slo_input_build(out, client, release, digest)) < 0)
        goto done;
done:
    if (err < 0)
        release_verify_input_clear(out);
    return err;
}

void release_verify_input_clear(release_verify_input *in)
{
    free(in->base_url);
    contract_token_free(in->token);
    free(in->contract_error);
    mb_secret_free_len(in->slo_token, in->slo_token_len);
    free(in->slo_error);
    memset(in, 0, sizeof(*in));
}

/* ---- the runs, by release key ------------------------------------------------ */

typedef struct check_run check_run;

struct release_runs {
    kube_client *client;       /* borrowed */
    net_loop *net;             /* borrowed */
    verify_executor *executor; /* the membrane checks' thread */
    void (*enqueue)(void *ctx, const char *key);
    void *ctx;
    pthread_mutex_t mu;
    check_run *table; /* under mu */
};

/* A run of a release's checks, by release key, for one releaseID. */
struct check_run {
    UT_hash_handle hh;
    release_runs *runs;
    verify_run *run;
    char rid[13];
    char digest[72]; /* the digest the run judges */
    time_t started_at;
    char key[];
};

/* A run ended (on the loop's or the executor's thread, under the run's lock): the release is looked at again. */
static void check_run_done(void *ctx)
{
    check_run *e = ctx;
    e->runs->enqueue(e->runs->ctx, e->key);
}

static void check_run_free(check_run *e)
{
    if (e) {
        verify_run_free(e->run); /* after it returns, check_run_done is not called any more */
        free(e);
    }
}

/* Cancels and forgets the run of key, if any. */
void release_runs_drop(release_runs *rc, const char *key)
{
    check_run *e = NULL;
    pthread_mutex_lock(&rc->mu);
    HASH_FIND_STR(rc->table, key, e);
    if (e)
        HASH_DEL(rc->table, e);
    pthread_mutex_unlock(&rc->mu);
    check_run_free(e);
}

/* Starts a run of cur's checks for rid, judging digest, and keeps it under key. */
static int checks_start(release_runs *rc, const char *key, const cJSON *cur, const char *rid, const char *digest)
{
    release_verify_input vi;
    check_run *e = NULL;
    int err = 0;
    size_t klen = strlen(key);

    if ((err = release_verify_input_build(&vi, rc->client, cur, rid, digest, time(NULL))) < 0)
        return err;
    if (!(e = calloc(1, sizeof(*e) + klen + 1))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    e->runs = rc;
    memcpy(e->key, key, klen + 1);
    snprintf(e->rid, sizeof(e->rid), "%s", rid);
    snprintf(e->digest, sizeof(e->digest), "%s", digest);
    e->started_at = time(NULL);
    pthread_mutex_lock(&rc->mu);
    if ((err = verify_run_start(&e->run, &vi.in, rc->client, rc->net, rc->executor, check_run_done, e)) == 0) {
        HASH_ADD(hh, rc->table, key, klen, e);
        if (!e->hh.tbl) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
        } else {
            e = NULL;
        }
    }
    pthread_mutex_unlock(&rc->mu);
done:
    check_run_free(e);
    release_verify_input_clear(&vi);
    return err;
}

int release_runs_collect(release_runs *rc, const char *key, const cJSON *cur, const char *rid, const char *digest,
                         cJSON **results, time_t *started_at, time_t *finished_at)
{
    check_run *e = NULL;
    int err = 0;
    const cJSON *r;

    *results = NULL;
    pthread_mutex_lock(&rc->mu);
    HASH_FIND_STR(rc->table, key, e);
    bool same = e && strcmp(e->rid, rid) == 0 && strcmp(e->digest, digest) == 0;
    if (same && !verify_run_finished(e->run, finished_at)) {
        pthread_mutex_unlock(&rc->mu);
        return 0; /* going: never started twice */
    }
    if (e)
        HASH_DEL(rc->table, e); /* finished (taken now), or superseded */
    pthread_mutex_unlock(&rc->mu);
    if (!same) {
        check_run_free(e);
        return checks_start(rc, key, cur, rid, digest);
    }
    *started_at = e->started_at;
    if ((err = verify_run_results(results, e->run)) == 0) {
        err = 1;
        cJSON_ArrayForEach(r, *results)
            metrics_check_observe(json_str(r, "name", NULL), json_int(0, r, "latencyMs", NULL) / 1000.0,
                                  !json_bool(false, r, "passed", NULL));
    }
    check_run_free(e);
    return err;
}

int release_runs_new(release_runs **out, kube_client *client, net_loop *net,
                     void (*enqueue)(void *ctx, const char *key), void *ctx)
{
    release_runs *r = calloc(1, sizeof(*r));
    int err;
    *out = NULL;
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    if ((err = verify_executor_new(&r->executor)) < 0) {
        free(r);
        return err;
    }
    r->client = client;
    r->net = net;
    r->enqueue = enqueue;
    r->ctx = ctx;
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return 0;
}

void release_runs_free(release_runs *runs)
{
    if (!runs)
        return;
    check_run *e, *tmp;
    HASH_ITER(hh, runs->table, e, tmp) {
        HASH_DEL(runs->table, e);
        check_run_free(e);
    }
    verify_executor_free(runs->executor); /* it finishes what it was given */
    pthread_mutex_destroy(&runs->mu);
    free(runs);
}
