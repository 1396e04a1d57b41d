/*
 * A run of runner.h: the contract checks run in parallel on the transfer loop
 * (verify/contract.c); the membrane checks, on the executor's thread, read
 * the cluster through the API at check time (a check run is rare: once per
 * verification, and again while Observing), evaluate, and keep their
 * results; before them, on the same thread, the published index is read for
 * published-only. With spec.verification.slo the slo check's queries run on
 * the transfer loop too (verify/slo.c). The run counts its parts; the one that ends last calls done,
 * and the run is freed when its caller has let go and every part has ended.
 */
#include "verify/runner.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "verify/contract.h"
#include "verify/netpol.h"
#include "verify/probe.h"
#include "verify/rbac.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The membrane checks' rows (API.md, "Membrane checks"); the contract checks' rows are contract.c's. */
static const struct {
    const char *name;
    const char *trigger;
} membrane_rows[] = {
    {"membrane-networkpolicy", "MembraneBreach"},
    {"membrane-rbac", "MembraneBreach"},
    {"membrane-probe", "MembraneBreach"},
};

const char *verify_check_trigger(const char *name)
{
    if (name && strcmp(name, SLO_CHECK_NAME) == 0)
        return SLO_TRIGGER;
    for (size_t i = 0; name && i < sizeof(membrane_rows) / sizeof(*membrane_rows); i++)
        if (strcmp(membrane_rows[i].name, name) == 0)
            return membrane_rows[i].trigger;
    return contract_check_trigger(name);
}

size_t verify_checks_requested(const char **out, size_t max, const cJSON *checks, const cJSON *slo,
                               const cJSON *membrane)
{
    const cJSON *c;
    size_t n = 0;
    if (cJSON_IsArray(checks)) {
        cJSON_ArrayForEach(c, checks)
            if (cJSON_IsString(c) && n < max)
                out[n++] = c->valuestring;
    } else {
        /* API.md's default: the nine contract checks and published-only */
        for (size_t i = 0; i < CONTRACT_N_CHECKS && n < max; i++)
            out[n++] = contract_check_names[i];
    }
    /* slo runs whenever verification.slo is set */
    if (slo && !cJSON_IsNull(slo) && n < max)
        out[n++] = SLO_CHECK_NAME;
    if (cJSON_IsObject(membrane)) {
        for (size_t i = 0; i < 2 && n < max; i++)
            out[n++] = membrane_rows[i].name;
        if (json_get(membrane, "probe", NULL) && n < max)
            out[n++] = membrane_rows[2].name;
    }
    return n;
}

static cJSON *result(const char *name, bool passed, long long ms, const char *trigger, const char *message)
{
    cJSON *r = cJSON_CreateObject();
    if (!r || !cJSON_AddStringToObject(r, "name", name) || !cJSON_AddBoolToObject(r, "passed", passed) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)ms) ||
        (!passed && !cJSON_AddStringToObject(r, "trigger", trigger)) ||
        !cJSON_AddStringToObject(r, "message", message)) {
        cJSON_Delete(r);
        return NULL;
    }
    return r;
}

static long long elapsed_ms(int64_t t0)
{
    return (long long)mb_elapsed_ms(t0);
}

/* Every contract check failed for one reason (the run could not be made as asked). */
static int contract_all_failed(cJSON *results, const cJSON *checks, const char *why)
{
    const cJSON *c;
    char msg[CONTRACT_MESSAGE_MAX];
    snprintf(msg, sizeof(msg), "%s", why);
    if (cJSON_IsArray(checks)) {
        cJSON_ArrayForEach(c, checks) {
            cJSON *r = cJSON_IsString(c) ? result(c->valuestring, false, 0, contract_check_trigger(c->valuestring), msg)
                                         : NULL;
            if (r)
                cJSON_AddItemToArray(results, r);
        }
    } else {
        for (size_t i = 0; i < CONTRACT_N_CHECKS; i++) {
            cJSON *r = result(contract_check_names[i], false, 0, contract_check_trigger(contract_check_names[i]), msg);
            if (r)
                cJSON_AddItemToArray(results, r);
        }
    }
    return 0;
}

static int run_networkpolicy(cJSON *results, kube_client *client, const cJSON *membrane, const char *ns)
{
    cJSON *namespaces = NULL, *policies = NULL, *pods = NULL, *r = NULL;
    netpol_world *world = NULL;
    netpol_result res = {0};
    int64_t t0 = mb_monotonic_ns();
    char msg[CONTRACT_MESSAGE_MAX];
    int err = 0;

    if ((err = kube_list(&namespaces, client, &KUBE_NAMESPACES, NULL, NULL)) < 0 ||
        (err = kube_list(&policies, client, &KUBE_NETWORKPOLICIES, NULL, NULL)) < 0 ||
        (err = kube_list(&pods, client, &KUBE_PODS, NULL, NULL)) < 0) {
        snprintf(msg, sizeof(msg),
                 "the NetworkPolicies, Pods and Namespaces cannot be read, so the membrane cannot be shown intact: %s",
                 mb_error_last());
        r = result("membrane-networkpolicy", false, elapsed_ms(t0), "MembraneBreach", msg);
        err = 0;
        goto done;
    }
    if (netpol_world_new(&world, cJSON_GetObjectItem(namespaces, "items"), cJSON_GetObjectItem(policies, "items")) <
            0 ||
        netpol_membrane_check(&res, world, membrane, ns, cJSON_GetObjectItem(pods, "items")) < 0) {
        snprintf(msg, sizeof(msg),
                 "the NetworkPolicies cannot be evaluated, so the membrane cannot be shown intact: %s",
                 mb_error_last());
        r = result("membrane-networkpolicy", false, elapsed_ms(t0), "MembraneBreach", msg);
        goto done;
    }
    snprintf(msg, sizeof(msg), "%s", res.message ? res.message : "");
    r = result("membrane-networkpolicy", res.passed, elapsed_ms(t0), "MembraneBreach", msg);
done:
    netpol_result_dispose(&res);
    netpol_world_free(world);
    cJSON_Delete(namespaces);
    cJSON_Delete(policies);
    cJSON_Delete(pods);
    if (!r)
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_AddItemToArray(results, r);
    return err;
}

/*
 * membrane-rbac, about the identity the API really has: the target
 * Deployment must run as spec.membrane.apiServiceAccount, or the reviews
 * would judge another account.
 */
static int run_rbac(cJSON *results, kube_client *client, const char *name, const char *ns, const char *sa)
{
    cJSON *deployment = NULL, *r = NULL;
    char msg[CONTRACT_MESSAGE_MAX];
    int64_t t0 = mb_monotonic_ns();
    int err = 0;

    if (!sa || !*sa) {
        r = result("membrane-rbac", false, 0, "MembraneBreach",
                   "spec.membrane.apiServiceAccount is empty, so there is no ServiceAccount to review; name the one "
                   "the "
                   "API runs as");
    } else if (!name || kube_get(&deployment, client, &KUBE_DEPLOYMENTS, ns, name) < 0) {
        snprintf(msg, sizeof(msg),
                 "Deployment %s/%s cannot be read, so which ServiceAccount the API runs as cannot be "
                 "seen: %s",
                 ns ? ns : "", name ? name : "", name ? mb_error_last() : "spec.target.deployment is empty");
        r = result("membrane-rbac", false, elapsed_ms(t0), "MembraneBreach", msg);
    } else if (!rbac_identity_matches(msg, sizeof(msg), deployment, sa)) {
        r = result("membrane-rbac", false, elapsed_ms(t0), "MembraneBreach", msg);
    } else if ((err = rbac_membrane_check(&r, client, ns, sa)) < 0) {
        goto done;
    }
    if (!r) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    cJSON_AddItemToArray(results, r);
done:
    cJSON_Delete(deployment);
    return err;
}

/* ---- the executor -------------------------------------------------------- */

typedef struct job {
    struct job *next;
    void (*fn)(void *arg);
    void *arg;
} job;

struct verify_executor {
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    job *head, *tail; /* under mu */
    bool stopping;    /* under mu */
};

static void *executor_main(void *arg)
{
    verify_executor *ex = arg;
    for (;;) {
        pthread_mutex_lock(&ex->mu);
        while (!ex->head && !ex->stopping)
            pthread_cond_wait(&ex->cond, &ex->mu);
        job *j = ex->head;
        if (j && !(ex->head = j->next))
            ex->tail = NULL;
        pthread_mutex_unlock(&ex->mu);
        if (!j)
            return NULL; /* stopping, and nothing is left */
        j->fn(j->arg);
        free(j);
    }
}

int verify_executor_new(verify_executor **out)
{
    verify_executor *ex = calloc(1, sizeof(*ex));
    *out = NULL;
    if (!ex)
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&ex->mu, NULL);
    pthread_cond_init(&ex->cond, NULL);
    if (pthread_create(&ex->thread, NULL, executor_main, ex) != 0) {
        verify_executor_free(ex);
        return mb_error_set(MB_ERROR, "cannot start the verification executor's thread");
    }
    ex->started = true;
    *out = ex;
    return 0;
}

void verify_executor_free(verify_executor *ex)
{
    if (!ex)
        return;
    pthread_mutex_lock(&ex->mu);
    ex->stopping = true;
    pthread_cond_broadcast(&ex->cond);
    pthread_mutex_unlock(&ex->mu);
    if (ex->started)
        pthread_join(ex->thread, NULL);
    pthread_mutex_destroy(&ex->mu);
    pthread_cond_destroy(&ex->cond);
    free(ex);
}

static int executor_queue(verify_executor *ex, void (*fn)(void *), void *arg)
{
    job *j = calloc(1, sizeof(*j));
    if (!j)
        return mb_error_set(MB_ENOMEM, "out of memory");
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&ex->mu);
    if (ex->stopping) {
        pthread_mutex_unlock(&ex->mu);
        free(j);
        return mb_error_set(MB_ERROR, "the verification executor has stopped");
    }
    if (ex->tail)
        ex->tail->next = j;
    else
        ex->head = j;
    ex->tail = j;
    pthread_cond_signal(&ex->cond);
    pthread_mutex_unlock(&ex->mu);
    return 0;
}

/* ---- a run --------------------------------------------------------------- */

struct verify_run {
    pthread_mutex_t mu;
    int parts;          /* parts not ended yet; under mu */
    bool released;      /* the caller let go (verify_run_free); under mu */
    bool cancelled;     /* read by the membrane part between its checks; under mu */
    time_t finished_at; /* 0 until both parts have ended; under mu */
    verify_done_fn done;
    void *ctx;
    kube_client *client;
    contract_run *contract;
    slo_run *slo;           /* the slo check's queries, NULL: none started */
    bool slo_asked;         /* spec.verification.slo is set: the run reports slo */
    char *slo_error;        /* the slo check cannot run, for this reason */
    cJSON *contract_checks; /* copy of in->contract.checks: the names a failed contract part reports */
    char *contract_error;   /* the contract checks cannot run, for this reason */
    cJSON *membrane;        /* copy of spec.membrane, NULL: no membrane checks */
    char *ns, *name, *uid, *api_version, *release_id, *deployment;
    cJSON *membrane_results; /* the membrane part's, set when it ends */
    int membrane_err;
    char membrane_why[CONTRACT_MESSAGE_MAX];
    bool index_asked;                     /* published-only runs: the index part reads the ConfigMap */
    char *index_name;                     /* its name, in ns */
    char index_where[320];                /* "<ns>/<name>", for messages */
    cJSON *index_data;                    /* its data as read (NULL: none), set when the index part ends */
    bool index_failed;                    /* there is no index to judge against: index_why says why */
    char index_why[CONTRACT_MESSAGE_MAX]; /* set when the index part ends */
};

static void run_destroy(verify_run *run)
{
    contract_run_free(run->contract);
    slo_run_free(run->slo);
    free(run->slo_error);
    cJSON_Delete(run->contract_checks);
    free(run->contract_error);
    cJSON_Delete(run->membrane);
    free(run->ns);
    free(run->name);
    free(run->uid);
    free(run->api_version);
    free(run->release_id);
    free(run->deployment);
    free(run->index_name);
    cJSON_Delete(run->index_data);
    cJSON_Delete(run->membrane_results);
    pthread_mutex_destroy(&run->mu);
    free(run);
}

/* One part has ended: the last calls done (unless the caller let go) and, once let go, frees the run. */
static void part_done(verify_run *run)
{
    pthread_mutex_lock(&run->mu);
    bool last = --run->parts == 0;
    if (last) {
        run->finished_at = time(NULL);
        if (!run->released && run->done)
            run->done(run->ctx);
    }
    bool destroy = last && run->released;
    pthread_mutex_unlock(&run->mu);
    if (destroy)
        run_destroy(run);
}

static void contract_ended(void *ctx)
{
    part_done(ctx);
}

static void slo_ended(void *ctx)
{
    part_done(ctx);
}

static bool run_cancelled(verify_run *run)
{
    pthread_mutex_lock(&run->mu);
    bool c = run->cancelled;
    pthread_mutex_unlock(&run->mu);
    return c;
}

/* The membrane checks, on the executor's thread. */
static void membrane_part(void *arg)
{
    verify_run *run = arg;
    verify_owner owner = {run->ns, run->name, run->uid, run->api_version};
    cJSON *results = cJSON_CreateArray(), *r = NULL;
    int err = 0;

    if (!results) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (run_cancelled(run))
        goto done;
    if ((err = run_networkpolicy(results, run->client, run->membrane, run->ns)) < 0 || run_cancelled(run))
        goto done;
    if ((err = run_rbac(results, run->client, run->deployment, run->ns,
                        json_str(run->membrane, "apiServiceAccount", NULL))) < 0 ||
        run_cancelled(run))
        goto done;
    if (json_get(run->membrane, "probe", NULL)) {
        if ((err = probe_membrane_check(&r, run->client, &owner, run->membrane, run->release_id)) < 0)
            goto done;
        cJSON_AddItemToArray(results, r);
    }
done:
    if (err < 0)
        snprintf(run->membrane_why, sizeof(run->membrane_why), "%s", mb_error_last());
    run->membrane_err = err;
    run->membrane_results = results;
    part_done(run);
}

/*
 * The published index, on the executor's thread: the ConfigMap read fresh
 * from the API (never from a cache, which holds only membrane's own
 * ConfigMaps and may lag a promotion). Whatever keeps it from being read is
 * kept as the reason published-only fails.
 */
static void index_part(void *arg)
{
    verify_run *run = arg;
    cJSON *cm = NULL;
    int err = 0;

    run->index_failed = true;
    if (run_cancelled(run)) {
        snprintf(run->index_why, sizeof(run->index_why), "the check run was cancelled before it was read");
    } else if (!run->client || !run->ns || !run->ns[0]) {
        snprintf(run->index_why, sizeof(run->index_why),
                 "ConfigMap %s cannot be read: there is no Kubernetes client or release namespace to read it with",
                 run->index_where);
    } else if ((err = kube_get(&cm, run->client, &KUBE_CONFIGMAPS, run->ns, run->index_name)) == MB_ENOTFOUND) {
        snprintf(run->index_why, sizeof(run->index_why),
                 "ConfigMap %s (spec.verification.publishedIndex) does not exist", run->index_where);
    } else if (err < 0) {
        snprintf(run->index_why, sizeof(run->index_why),
                 "ConfigMap %s (spec.verification.publishedIndex) cannot be read: %s", run->index_where,
                 mb_error_last());
    } else {
        cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(cm, "data");
        if (data && !cJSON_IsObject(data))
            snprintf(run->index_why, sizeof(run->index_why), "ConfigMap %s has data as %s, not a map of entries",
                     run->index_where, cJSON_IsArray(data) ? "an array" : "a scalar");
        else
            run->index_failed = false;
        if (run->index_failed)
            cJSON_Delete(data);
        else
            run->index_data = data;
    }
    cJSON_Delete(cm);
    part_done(run);
}

/* Whether checks (spec.verification.checks; not an array: the default list) asks for published-only. */
static bool published_asked(const cJSON *checks)
{
    const cJSON *c;
    if (!cJSON_IsArray(checks))
        return true;
    cJSON_ArrayForEach(c, checks)
        if (cJSON_IsString(c) && strcmp(c->valuestring, "published-only") == 0)
            return true;
    return false;
}

static int dup_or_null(char **out, const char *s)
{
    *out = NULL;
    if (s && !(*out = strdup(s)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

int verify_run_start(verify_run **out, const verify_input *in, kube_client *client, net_loop *loop, verify_executor *ex,
                     verify_done_fn done, void *ctx)
{
    int err = 0;
    verify_run *run = NULL;
    char why[CONTRACT_MESSAGE_MAX];

    *out = NULL;
    if (!(run = calloc(1, sizeof(*run))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    pthread_mutex_init(&run->mu, NULL);
    run->client = client;
    run->parts = 1; /* held while the parts start, so that none ends the run early */
    if ((err = dup_or_null(&run->ns, in->owner.namespace)) < 0 || (err = dup_or_null(&run->name, in->owner.name)) < 0 ||
        (err = dup_or_null(&run->uid, in->owner.uid)) < 0 ||
        (err = dup_or_null(&run->api_version, in->owner.api_version)) < 0 ||
        (err = dup_or_null(&run->release_id, in->release_id)) < 0 ||
        (err = dup_or_null(&run->deployment, in->target_deployment)) < 0 ||
        (err = dup_or_null(&run->contract_error, in->contract_error)) < 0)
        goto done;
    if ((in->contract.checks && !(run->contract_checks = cJSON_Duplicate(in->contract.checks, true))) ||
        (in->membrane && !(run->membrane = cJSON_Duplicate(in->membrane, true)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (!run->contract_error) {
        contract_input ci = in->contract;
        ci.checks = run->contract_checks;
        run->parts++;
        err = contract_checks_start(&run->contract, loop, &ci, contract_ended, run);
        if (err < 0) {
            run->parts--;
            if (err != MB_EINVAL)
                goto done;
            /* input the checks cannot run with: each fails saying why */
            snprintf(why, sizeof(why), "the checks cannot run: %s", mb_error_last());
            if ((err = dup_or_null(&run->contract_error, why)) < 0)
                goto done;
        }
    }
    if (in->slo && !cJSON_IsNull(in->slo)) {
        run->slo_asked = true;
        if (in->slo_error) {
            if ((err = dup_or_null(&run->slo_error, in->slo_error)) < 0)
                goto done;
        } else {
            slo_input si = {in->slo, in->slo_digest, in->slo_token, in->release_id, in->contract.timeout_ms};
            run->parts++;
            if ((err = slo_check_start(&run->slo, loop, &si, slo_ended, run)) < 0) {
                run->parts--;
                if (err != MB_EINVAL)
                    goto done;
                /* a spec the check cannot run with: it fails saying why */
                snprintf(why, sizeof(why), "the slo check cannot run: %s", mb_error_last());
                if ((err = dup_or_null(&run->slo_error, why)) < 0)
                    goto done;
            }
        }
    }
    if (!run->contract_error && published_asked(run->contract_checks)) {
        const char *name = in->published_index && in->published_index[0] ? in->published_index
                                                                         : CONTRACT_PUBLISHED_INDEX_DEFAULT;
        if ((err = dup_or_null(&run->index_name, name)) < 0)
            goto done;
        snprintf(run->index_where, sizeof(run->index_where), "%.63s/%.253s", run->ns ? run->ns : "", name);
        run->index_asked = true;
        run->parts++;
        if ((err = executor_queue(ex, index_part, run)) < 0) {
            run->parts--;
            goto done;
        }
    }
    if (run->membrane) {
        run->parts++;
        if ((err = executor_queue(ex, membrane_part, run)) < 0) {
            run->parts--;
            goto done;
        }
    }
    run->done = done;
    run->ctx = ctx;
done:
    if (err < 0) {
        /* the parts that started end on their own; the last frees the run */
        pthread_mutex_lock(&run->mu);
        run->released = true;
        run->cancelled = true;
        pthread_mutex_unlock(&run->mu);
        contract_run_cancel(run->contract);
        slo_run_cancel(run->slo);
        part_done(run);
        return err;
    }
    *out = run;
    part_done(run);
    return 0;
}

bool verify_run_finished(verify_run *run, time_t *finished_at)
{
    pthread_mutex_lock(&run->mu);
    bool f = run->parts == 0;
    if (finished_at)
        *finished_at = run->finished_at;
    pthread_mutex_unlock(&run->mu);
    return f;
}

int verify_run_results(cJSON **out, verify_run *run)
{
    int err = 0;
    cJSON *results = NULL, *part = NULL, *r;

    *out = NULL;
    if (!verify_run_finished(run, NULL))
        return mb_error_set(MB_EINVAL, "the verification run has not finished");
    if (!(results = cJSON_CreateArray()))
        return mb_error_set(MB_ENOMEM, "out of memory");
    if (run->contract_error) {
        if ((err = contract_all_failed(results, run->contract_checks, run->contract_error)) < 0)
            goto done;
    } else if (run->contract) {
        contract_index index = {run->index_where, run->index_data, run->index_failed ? run->index_why : NULL};
        if ((err = contract_run_results(&part, run->contract, run->index_asked ? &index : NULL)) < 0)
            goto done;
        while ((r = cJSON_DetachItemFromArray(part, 0)) != NULL)
            cJSON_AddItemToArray(results, r);
    }
    if (run->slo_asked) {
        r = NULL;
        if (run->slo_error)
            r = slo_result_failed(run->slo_error);
        else if (run->slo && (err = slo_run_result(&r, run->slo)) < 0)
            goto done;
        if (!r) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        cJSON_AddItemToArray(results, r);
    }
    if (run->membrane_err < 0) {
        err = mb_error_set(run->membrane_err, "%s", run->membrane_why);
        goto done;
    }
    if (run->membrane_results) {
        cJSON *copy = cJSON_Duplicate(run->membrane_results, true);
        if (!copy) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        while ((r = cJSON_DetachItemFromArray(copy, 0)) != NULL)
            cJSON_AddItemToArray(results, r);
        cJSON_Delete(copy);
    }
    *out = results;
    results = NULL;
done:
    cJSON_Delete(part);
    cJSON_Delete(results);
    return err;
}

void verify_run_free(verify_run *run)
{
    if (!run)
        return;
    pthread_mutex_lock(&run->mu);
    run->released = true;
    run->cancelled = true;
    bool destroy = run->parts == 0;
    if (!destroy) {
        contract_run_cancel(run->contract); /* under the lock: the run cannot end and go meanwhile */
        slo_run_cancel(run->slo);
    }
    pthread_mutex_unlock(&run->mu);
    if (destroy)
        run_destroy(run);
}
