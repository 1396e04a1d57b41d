/*
 * The PolicyBundle reconciler: observe from the caches, call policy_decide,
 * and carry out its action: start the fetch or the decision tests (on the
 * transfer loop; their end requeues the bundle) or write the ConfigMap, then
 * decide again on what changed; then the status (with its receipt), Events
 * and the metric. The work of a bundle's generation is kept by key, with the
 * generation and pin it is for; a new generation, or the bundle's deletion,
 * cancels it (the ConfigMap goes with the bundle through its owner
 * reference).
 */
#include "policy/controller.h"
#include "api/informers.h"
#include "api/resources.h"
#include "policy/decide.h"
#include "policy/work.h"
#include "runtime/informer.h"
#include "runtime/loop.h"
#include "runtime/metrics_families.h"
#include "runtime/ryw.h"
#include "runtime/worktable.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PASSES 5
#define MAX_EVENTS 6

typedef struct {
    policy_controller_opts opts;
    informer *bundles, *configmaps; /* the factory's, borrowed */
    ryw *ryw;                       /* the factory's, borrowed */
    loop *loop;                     /* the manager's, borrowed */
    worktable *works;               /* policy_work_state by key */
} policy_controller;

/* ---- handlers ------------------------------------------------------------ */

/* The key ("ns/name") of a ConfigMap's owning PolicyBundle into key; false when it has none. */
static bool configmap_owner(char *key, size_t size, const cJSON *obj)
{
    const cJSON *ref;
    cJSON_ArrayForEach(ref, json_get(obj, "metadata", "ownerReferences", NULL)) {
        const char *kind = json_str(ref, "kind", NULL), *name = json_str(ref, "name", NULL);
        const char *api = json_str(ref, "apiVersion", NULL);
        if (!kind || !name || !api || strcmp(kind, POLICY_KIND) != 0 || strncmp(api, API_GROUP "/", 19) != 0)
            continue;
        snprintf(key, size, "%s/%s", json_str(obj, "metadata", "namespace", NULL), name);
        return true;
    }
    return false;
}

static void on_configmap(void *ctx, const cJSON *obj)
{
    policy_controller *c = ctx;
    char key[512];
    if (configmap_owner(key, sizeof(key), obj))
        loop_enqueue(c->loop, key);
}

static void on_configmap_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    on_configmap(ctx, old_obj); /* an owner removed by hand: the bundle it was published for looks again */
    on_configmap(ctx, new_obj);
}

/* ---- the work by key ------------------------------------------------------- */

/* The work of key for generation gen and pin digest, cleared when it was for another. NULL: no memory. */
static policy_work_state *work_get(policy_controller *c, const char *key, long long gen, const char *digest)
{
    policy_work_state *w = worktable_get(c->works, key);
    if (!w || (w->gen == gen && strcmp(w->digest, digest ? digest : "") == 0))
        return w;
    policy_work_clear(w); /* another generation's: cancelled */
    w->gen = gen;
    snprintf(w->digest, sizeof(w->digest), "%s", digest ? digest : "");
    return w;
}

static void work_drop(policy_controller *c, const char *key)
{
    worktable_drop(c->works, key);
}

static void work_clear(void *payload)
{
    policy_work_clear(payload);
}

/* Collects what ended since the last look: the fetch (and the checks on its bytes), the decision tests. */
static int work_collect(policy_controller *c, policy_work_state *w, const cJSON *b, time_t now)
{
    int err;
    if ((err = policy_fetch_collect(w, c->opts.client, b, now)) < 0)
        return err;
    if (w->run && policy_tests_finished(w->run)) {
        cJSON *results = NULL;
        char *error = NULL;
        if ((err = policy_tests_take(w->run, &results, &error)) < 0)
            return err;
        policy_tests_release(w->run);
        w->run = NULL;
        cJSON_Delete(w->results);
        free(w->tests_msg);
        w->results = results;
        w->tests_msg = error;
        w->tests_finished = now;
        if (error) {
            w->tests = POLICY_TESTS_ERROR;
            w->tests_attempts++;
        } else {
            w->tests = POLICY_TESTS_DONE;
            w->tests_attempts = 0;
        }
    }
    return 0;
}

static int tests_start(policy_controller *c, policy_work_state *w, const char *key, const cJSON *b, time_t now)
{
    policy_tests_opts o = {.net = c->opts.net,
                           .loop = c->loop,
                           .key = key,
                           .opa_url = json_str(b, "spec", "decisionTests", "opaURL", NULL),
                           .ns = json_str(b, "metadata", "namespace", NULL),
                           .name = json_str(b, "metadata", "name", NULL),
                           .b = w->chk.b,
                           .cases = json_get(b, "spec", "decisionTests", "cases", NULL)};
    int err;
    if (!w->chk.b)
        return mb_error_set(MB_EINVAL, "no verified bundle to test");
    policy_tests_release(w->run);
    w->run = NULL;
    if ((err = policy_tests_start(&w->run, &o)) == POLICY_TESTS_BUSY) {
        w->tests = POLICY_TESTS_WAITING;
        return 0;
    }
    if (err == 0) {
        w->tests = POLICY_TESTS_RUNNING;
        return 0;
    }
    if (err == MB_ENOMEM)
        return err;
    free(w->tests_msg);
    w->tests_msg = NULL;
    if (asprintf(&w->tests_msg, "the decision tests could not start: %s", mb_error_last()) < 0)
        w->tests_msg = NULL;
    w->tests = POLICY_TESTS_ERROR;
    w->tests_attempts++;
    w->tests_finished = now;
    return 0;
}

/* ---- status -------------------------------------------------------------- */

/* ---- reconcile ----------------------------------------------------------- */

static int reconcile(reconcile_result *out, void *ctx, const char *key)
{
    policy_controller *c = ctx;
    informer_obj *pb = NULL, *cmobj = NULL;
    cJSON *cur = NULL, *cm_view = NULL, *written = NULL;
    ryw_trail older = {0}, cm_older = {0};
    policy_plan plan = {0};
    event_planned events[MAX_EVENTS];
    size_t n_events = 0;
    const char *outcome = NULL;
    char cmname[254], cmkey[512], ns[254], name[254];
    unsigned acted = 0;
    int err = 0;

    cmkey[0] = '\0';
    if ((err = informer_get_key(&pb, c->bundles, key)) == MB_ENOTFOUND) {
        ryw_ahead_drop(c->ryw, API_POLICYBUNDLES.kind, key);
        work_drop(c, key); /* in-flight work is for nobody now */
        return 0;
    }
    if (err < 0)
        return err;
    if (!(cur = ryw_ahead_take(c->ryw, API_POLICYBUNDLES.kind, key, informer_obj_resource_version(pb), &older)) &&
        !(cur = cJSON_Duplicate(informer_obj_json(pb), true))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(ns, sizeof(ns), "%s", json_str(cur, "metadata", "namespace", NULL) ?: "");
    snprintf(name, sizeof(name), "%s", json_str(cur, "metadata", "name", NULL) ?: "");
    mb_log_fields lf = {.kind = POLICY_KIND, .namespace = ns, .name = name};
    if (json_get(cur, "metadata", "deletionTimestamp", NULL)) {
        work_drop(c, key);
        goto done;
    }
    if (!policy_configmap_name(cmname, cur))
        cmname[0] = '\0';
    snprintf(cmkey, sizeof(cmkey), "%s/%s", ns, cmname);
    if (cmname[0] && informer_get(&cmobj, c->configmaps, ns, cmname) < 0)
        cmobj = NULL;
    /* "" stands for "not in the cache" in the trail of a ConfigMap this process created */
    cm_view = ryw_ahead_take(c->ryw, KUBE_CONFIGMAPS.kind, cmkey, cmobj ? informer_obj_resource_version(cmobj) : "",
                             &cm_older);

    long long gen = json_int(0, cur, "metadata", "generation", NULL);
    policy_work_state *w = work_get(c, key, gen, json_str(cur, "spec", "source", "digest", NULL));
    if (!w) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    time_t now = time(NULL);
    if ((err = work_collect(c, w, cur, now)) < 0)
        goto done;

    for (int pass = 0; pass < MAX_PASSES; pass++) {
        policy_observed obs = {.bundle = cur,
                               .configmap = cm_view ? cm_view
                                            : cmobj ? informer_obj_json(cmobj)
                                                    : NULL,
                               .now = now};
        policy_work_view(&obs.work, w);
        policy_plan_clear(&plan);
        if ((err = policy_decide(&plan, &obs)) < 0)
            goto done;
        /* Events and the outcome of every pass go out with the status of the last */
        for (size_t i = 0; i < plan.n_events && n_events < MAX_EVENTS; i++) {
            events[n_events++] = plan.events[i];
            plan.events[i].message = NULL;
        }
        if (plan.outcome)
            outcome = plan.outcome;
        /* each action at most once a reconcile: a fetch or a test run that could not start is looked at later */
        if (plan.action == POLICY_ACT_NONE || pass + 1 == MAX_PASSES || (acted & (1u << plan.action)))
            break;
        acted |= 1u << plan.action;
        if (plan.action == POLICY_ACT_FETCH)
            err = policy_fetch_start(w, c->opts.client, c->opts.net, c->loop, key, cur, now);
        else if (plan.action == POLICY_ACT_TEST)
            err = tests_start(c, w, key, cur, now);
        else if (plan.action == POLICY_ACT_PUBLISH) {
            cJSON *res = NULL;
            err = policy_publish(w, c->opts.client, cur, plan.configmap, obs.configmap, &res);
            if (res) {
                /* read our write until the cache has it */
                ryw_trail_add(&cm_older, cmobj ? informer_obj_resource_version(cmobj) : "");
                ryw_trail_add_version(&cm_older, obs.configmap);
                cJSON_Delete(written);
                written = res;
                informer_trim(c->configmaps, written);
                cJSON_Delete(cm_view);
                cm_view = cJSON_Duplicate(written, true);
            }
        }
        if (err < 0)
            goto done;
    }

    if (plan.status) {
        ryw_trail_add_version(&older, cur);
        if ((err = ryw_status_write(&cur, c->ryw, c->opts.client, &API_POLICYBUNDLES, ns, key, plan.status)) < 0) {
            err = mb_error_wrap(err, "writing the status of PolicyBundle %s", key);
            goto done;
        }
        if (outcome)
            metrics_bundle_inc(outcome);
        if (plan.receipt) {
            mb_log_fields rf = lf;
            rf.audit_ref = json_str(plan.receipt, "auditRef", NULL);
            MB_LOG(MB_LOG_INFO, &rf, "receipt: bundle %s published in ConfigMap %s",
                   json_str(plan.receipt, "verifiedDigest", NULL), plan.configmap);
        }
    }
    event_object eo;
    if (n_events && event_object_from_json(&eo, cur, POLICY_KIND, POLICY_API_VERSION) == 0)
        event_record_planned(c->opts.events, &eo, events, n_events);
    if (plan.phase)
        MB_LOG(MB_LOG_DEBUG, &lf, "phase %s", plan.phase);
    if (plan.drop_work)
        work_drop(c, key); /* published or failed: the bytes go */
    out->requeue_ms = plan.requeue_ms;
done:
    for (size_t i = 0; i < n_events; i++)
        free(events[i].message);
    ryw_ahead_keep(c->ryw, API_POLICYBUNDLES.kind, key, &older, cur, c->bundles);
    if (cmkey[0])
        ryw_ahead_keep(c->ryw, KUBE_CONFIGMAPS.kind, cmkey, &cm_older, cm_view, NULL);
    else
        cJSON_Delete(cm_view);
    cJSON_Delete(written);
    policy_plan_clear(&plan);
    informer_obj_free(cmobj);
    informer_obj_free(pb);
    return err;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void policy_controller_free(void *ctx)
{
    policy_controller *c = ctx;
    if (!c)
        return;
    worktable_free(c->works);
    if (c->loop)
        policy_tests_forget_loop(c->loop);
    free(c);
}

static int subscribe(void *ctx, informer_factory *f, loop *l)
{
    policy_controller *c = ctx;
    manager_watch w[] = {
        {.resource = &API_POLICYBUNDLES, .out = &c->bundles},
        {.resource = &KUBE_CONFIGMAPS,
         .out = &c->configmaps,
         .handlers = {on_configmap, on_configmap_update, on_configmap, c}},
    };
    c->loop = l;
    c->ryw = informer_factory_ryw(f);
    return manager_watch_all(f, l, api_informer, w, sizeof(w) / sizeof(w[0]));
}

int policy_controller_register(manager *m, const policy_controller_opts *opts)
{
    if (!opts->net)
        return mb_error_set(MB_EINVAL, "the PolicyBundle controller needs the transfer loop for its fetches");
    policy_controller *c = calloc(1, sizeof(*c));
    if (!c)
        return mb_error_set(MB_ENOMEM, "out of memory");
    c->opts = *opts;
    manager_registration r = {.kind = POLICY_KIND,
                              .reconcile = reconcile,
                              .subscribe = subscribe,
                              .free = policy_controller_free,
                              .ctx = c};
    return manager_add_with_works(m, &r, &c->works, sizeof(policy_work_state), work_clear);
}
