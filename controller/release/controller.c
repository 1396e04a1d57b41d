/*
 * The GovernedAPIRelease reconciler: observe from the informer caches, call
 * release_decide, and carry the plan out in the order that keeps the runbook
 * safe: finalizer, Deployment patch (with a resourceVersion precondition; a
 * rollout's carries the rollback record, so one write records the target
 * and rolls), status, Events, annotation and finalizer removal.
 * When the plan asks for the checks, a run starts (release/checks.h builds
 * its input; verify/runner.h runs it off the worker) and the reconcile
 * returns; the run's end requeues the release, and the next reconcile
 * decides again with its results (the runs are kept by release key in
 * release/checks.h's table). The image gate's verdicts come the same way:
 * looked up in the image verifier (release/images.h), whose end of a
 * verification requeues the release.
 */
#include "release/controller.h"
#include "api/informers.h"
#include "api/resources.h"
#include "audit/receipt.h"
#include "release/checks.h"
#include "release/decide.h"
#include "release/images.h"
#include "runtime/informer.h"
#include "runtime/loop.h"
#include "runtime/metrics_families.h"
#include "runtime/ryw.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "verify/probe.h"
#include "verify/runner.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* uthash reports a failed allocation by leaving the item's table pointer NULL. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define INDEX_DEPLOYMENT "deployment"
#define INDEX_BUNDLE "bundle"
#define INDEX_AFTER "after" /* a release by each "<namespace>/<name>" of its spec.after */
#define MAX_PASSES 4
#define CHECKS_RECHECK_MS 30000 /* while a check run goes, the release is looked at at least this often */

/* When a release's new generation reached the operator, until its rollout patch is sent. */
typedef struct spec_seen {
    UT_hash_handle hh;
    long long generation;
    double at_ms; /* monotonic */
    char key[];
} spec_seen;

typedef struct release_controller {
    release_controller_opts opts;
    /* Test hooks: MEMBRANE_FAILPOINT=crash-after-deployment-patch makes the
     * process die (as kill -9 would) between a Deployment patch and the
     * status write that follows it; crash-after-rollback-patch only when
     * that patch rolls back. */
    bool crash_after_patch, crash_after_rollback_patch;
    informer *releases, *deployments, *pods, *bundles; /* the factory's, borrowed */
    ryw *ryw;                                          /* the factory's, borrowed */
    loop *loop;                                        /* the manager's, borrowed */
    pthread_mutex_t seen_mu;
    spec_seen *seen;
    release_runs *runs;     /* the check runs, by release key */
    image_verifier *images; /* the image gate's signature verifications, cached per digest and key */
} release_controller;

/* ---- indexes and handlers ------------------------------------------------ */

static int index_key(informer_index_keys *out, const char *ns, const char *name)
{
    char key[512];
    if (!ns || !name || !*name)
        return 0;
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    return informer_index_keys_add(out, key);
}

static int index_release_deployment(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    (void)ctx;
    return index_key(out, json_str(obj, "metadata", "namespace", NULL),
                     json_str(obj, "spec", "target", "deployment", NULL));
}

static int index_release_bundle(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    (void)ctx;
    return index_key(out, json_str(obj, "metadata", "namespace", NULL),
                     json_str(obj, "spec", "policyBundleRef", "name", NULL));
}

static int index_release_after(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    const cJSON *a;
    int err = 0;
    (void)ctx;
    cJSON_ArrayForEach(a, json_get(obj, "spec", "after", NULL))
        if ((err = index_key(out, json_str(a, "namespace", NULL), json_str(a, "name", NULL))) < 0)
            return err;
    return 0;
}

/* A Deployment's pods belong to its ReplicaSets, named "<deployment>-<pod-template-hash>". */
static bool pod_deployment(char *out, size_t len, const cJSON *pod)
{
    const char *hash = json_str(pod, "metadata", "labels", "pod-template-hash", NULL);
    const cJSON *ref;
    if (!hash)
        return false;
    cJSON_ArrayForEach(ref, json_get(pod, "metadata", "ownerReferences", NULL)) {
        const char *kind = json_str(ref, "kind", NULL), *name = json_str(ref, "name", NULL);
        size_t n, h = strlen(hash);
        if (!kind || !name || strcmp(kind, "ReplicaSet") != 0)
            continue;
        n = strlen(name);
        if (n <= h + 1 || name[n - h - 1] != '-' || strcmp(name + n - h, hash) != 0)
            continue;
        snprintf(out, len, "%s/%.*s", json_str(pod, "metadata", "namespace", NULL), (int)(n - h - 1), name);
        return true;
    }
    return false;
}

static int index_pod_deployment(informer_index_keys *out, const cJSON *obj, void *ctx)
{
    char key[512];
    (void)ctx;
    return pod_deployment(key, sizeof(key), obj) ? informer_index_keys_add(out, key) : 0;
}

static void enqueue_by_index(release_controller *rc, const char *index, const char *key)
{
    informer_objs *l = NULL;
    if (informer_by_index(&l, rc->releases, index, key) < 0)
        return;
    for (size_t i = 0; i < l->len; i++)
        loop_enqueue(rc->loop, informer_obj_key(l->items[i]));
    informer_objs_free(l);
}

/* Forget when key's spec change was seen; returns how long before now_ms that was if it was generation, else -1. */
static double spec_seen_take(release_controller *rc, const char *key, long long generation, double now_ms)
{
    spec_seen *e = NULL;
    double ago = -1;
    pthread_mutex_lock(&rc->seen_mu);
    HASH_FIND_STR(rc->seen, key, e);
    if (e) {
        if (e->generation == generation || generation < 0)
            ago = now_ms - e->at_ms;
        HASH_DEL(rc->seen, e);
        free(e);
    }
    pthread_mutex_unlock(&rc->seen_mu);
    return ago;
}

static void spec_seen_record(release_controller *rc, const char *key, long long generation)
{
    size_t len = strlen(key) + 1;
    spec_seen *e = malloc(sizeof(*e) + len);
    spec_seen_take(rc, key, -1, 0);
    if (!e)
        return; /* only a measurement is lost */
    e->generation = generation;
    e->at_ms = mb_monotonic_ns() / 1e6;
    memcpy(e->key, key, len);
    pthread_mutex_lock(&rc->seen_mu);
    HASH_ADD_STR(rc->seen, key, e);
    if (!e->hh.tbl)
        free(e);
    pthread_mutex_unlock(&rc->seen_mu);
}

static void on_release(void *ctx, const cJSON *obj)
{
    release_controller *rc = ctx;
    char key[512];
    loop_enqueue_object(rc->loop, obj);
    /* the releases whose order gate waits on this one look again */
    snprintf(key, sizeof(key), "%s/%s", json_str(obj, "metadata", "namespace", NULL),
             json_str(obj, "metadata", "name", NULL));
    enqueue_by_index(rc, INDEX_AFTER, key);
}

/* An update of a release, a Deployment or a pod that left what the cache keeps as it was (a pod's
 * phase, conditions or IP, which the trim drops) decides nothing anew: no reconcile for it. */
static void on_release_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    release_controller *rc = ctx;
    if (informer_same_but_version(old_obj, new_obj))
        return;
    long long gen = json_int(-1, new_obj, "metadata", "generation", NULL);
    char *key = NULL;
    if (gen != json_int(-1, old_obj, "metadata", "generation", NULL) && informer_key(&key, new_obj) == 0)
        spec_seen_record(rc, key, gen);
    free(key);
    on_release(ctx, new_obj);
}

static void on_release_delete(void *ctx, const cJSON *obj)
{
    release_controller *rc = ctx;
    char *key = NULL;
    if (informer_key(&key, obj) == 0)
        spec_seen_take(rc, key, -1, 0); /* its read-your-writes entries are dropped by the factory */
    free(key);
    on_release(ctx, obj);
}

static void on_deployment(void *ctx, const cJSON *obj)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", json_str(obj, "metadata", "namespace", NULL),
             json_str(obj, "metadata", "name", NULL));
    enqueue_by_index(ctx, INDEX_DEPLOYMENT, key);
}

static void on_deployment_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    if (!informer_same_but_version(old_obj, new_obj))
        on_deployment(ctx, new_obj);
}

static void on_pod(void *ctx, const cJSON *obj)
{
    char key[512];
    if (pod_deployment(key, sizeof(key), obj))
        enqueue_by_index(ctx, INDEX_DEPLOYMENT, key);
}

static void on_pod_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    if (!informer_same_but_version(old_obj, new_obj))
        on_pod(ctx, new_obj);
}

static void on_bundle(void *ctx, const cJSON *obj)
{
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", json_str(obj, "metadata", "namespace", NULL),
             json_str(obj, "metadata", "name", NULL));
    enqueue_by_index(ctx, INDEX_BUNDLE, key);
}

static void on_bundle_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    (void)old_obj;
    on_bundle(ctx, new_obj);
}

/* ---- act ----------------------------------------------------------------- */

/*
 * The release as this reconcile knows it: the cache's copy, read in place
 * (not ours to change or free), until the written-ahead copy or a write's
 * answer replaces it (owned: ours).
 */
typedef struct {
    const cJSON *obj;
    cJSON *owned; /* obj when it is ours, else NULL */
} release_view;

/* obj (taken) becomes what the reconcile knows of the release */
static void view_set(release_view *v, cJSON *obj)
{
    cJSON_Delete(v->owned);
    v->obj = v->owned = obj;
}

static int patch_release_metadata(release_view *cur, release_controller *rc, const char *ns, const char *name,
                                  cJSON *meta_patch)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *res = NULL;
    char *body = NULL;
    int err = 0;
    const char *rv = json_str(cur->obj, "metadata", "resourceVersion", NULL);
    if (!p || (rv && json_set_str(meta_patch, "resourceVersion", rv) < 0)) {
        cJSON_Delete(p);
        cJSON_Delete(meta_patch);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    if ((err = json_set_item(p, "metadata", meta_patch)) < 0) /* takes meta_patch in every case */
        goto done;
    if (!(body = cJSON_PrintUnformatted(p))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if ((err = kube_patch(&res, rc->opts.client, &API_GOVERNEDAPIRELEASES, ns, name, NULL, KUBE_PATCH_MERGE, body)) < 0)
        goto done;
    view_set(cur, res);
done:
    free(body);
    cJSON_Delete(p);
    return err;
}

/* older: the version the patch replaces is added to it */
static int set_finalizer(release_view *cur, release_controller *rc, const char *ns, const char *name, bool present,
                         ryw_trail *older)
{
    cJSON *meta = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(meta, "finalizers");
    const cJSON *f;
    if (!list) {
        cJSON_Delete(meta);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    /* a list short of an entry would remove another controller's finalizer: all of them, or no patch */
    cJSON_ArrayForEach(f, json_get(cur->obj, "metadata", "finalizers", NULL))
        if (cJSON_IsString(f) && strcmp(f->valuestring, RELEASE_FINALIZER) != 0 &&
            !cJSON_AddItemToArray(list, cJSON_CreateString(f->valuestring)))
            goto nomem;
    if (present && !cJSON_AddItemToArray(list, cJSON_CreateString(RELEASE_FINALIZER)))
        goto nomem;
    ryw_trail_add_version(older, cur->obj);
    return patch_release_metadata(cur, rc, ns, name, meta);
nomem:
    cJSON_Delete(meta);
    return mb_error_set(MB_ENOMEM, "out of memory");
}

/*
 * The status write. A 409 may be the write's own first copy, applied although
 * its answer was lost (the connection broke after sending, and the copy sent
 * again met the resourceVersion the first one made): the release is read
 * back, and when ryw_status_landed() says so, the write is done and what
 * follows it (receipt log, Events, metrics, the Deployment patch) goes on,
 * instead of being lost to a decision the next reconcile finds recorded.
 * Otherwise cur becomes the release as read back (*fresh set), to decide again on.
 */
static int write_status(release_view *cur, bool *fresh, release_controller *rc, const char *ns, cJSON *status)
{
    cJSON *res = NULL, *back = NULL;
    char name[254], key[512], msg[512];
    int err;
    snprintf(name, sizeof(name), "%s", json_str(cur->obj, "metadata", "name", NULL));
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    /* a merge patch from the status as read, with its resourceVersion: what is unchanged (the receipts) is not sent */
    err = kube_patch_status(&res, rc->opts.client, &API_GOVERNEDAPIRELEASES, ns, cur->obj, status);
    if (err == MB_ECONFLICT) {
        snprintf(msg, sizeof(msg), "%s", mb_error_last());
        if (kube_get(&back, rc->opts.client, &API_GOVERNEDAPIRELEASES, ns, name) == 0 &&
            ryw_status_landed(rc->ryw, API_GOVERNEDAPIRELEASES.kind, key, status, back)) {
            mb_log_fields lf = {.kind = RELEASE_KIND, .namespace = ns, .name = name};
            MB_LOG(MB_LOG_INFO, &lf, "the status write was applied although its answer was lost");
            res = back;
            err = 0;
        } else {
            if (back) {
                view_set(cur, back);
                *fresh = true;
            }
            return mb_error_set(MB_ECONFLICT, "%s", msg);
        }
    }
    if (err < 0)
        return err;
    ryw_status_record(rc->ryw, API_GOVERNEDAPIRELEASES.kind, key, status);
    view_set(cur, res);
    return 0;
}

/*
 * What a 409 showed to be stale: the release as read from the cache, or the
 * Deployment; STALE_DEPLOYMENT_CACHED: the Deployment, and the cache already
 * has a newer one (it came after the plan was made on the cached one).
 */
typedef enum { STALE_NONE, STALE_RELEASE, STALE_RELEASE_REREAD, STALE_DEPLOYMENT, STALE_DEPLOYMENT_CACHED } stale_view;

/* The cached Deployment if the cache has moved on from the version cached_rv (NULL: not from the cache), else NULL. */
static informer_obj *deployment_moved_on(release_controller *rc, const char *ns, const char *name,
                                         const char *cached_rv)
{
    informer_obj *now = NULL;
    if (!cached_rv || informer_get(&now, rc->deployments, ns, name) < 0)
        return NULL;
    if (strcmp(informer_obj_resource_version(now), cached_rv) == 0) {
        informer_obj_free(now);
        return NULL;
    }
    return now;
}

/*
 * *patched_dep: the Deployment as the patch left it, when it went through;
 * *stale: what a 409 showed to be out of date. cached_dep_rv: the
 * resourceVersion of the cached Deployment the plan was made on (NULL if it
 * was not the cache's copy); when the cache has a newer one by the time of the
 * patch, or after a 409, it is handed back in *newer (STALE_DEPLOYMENT_CACHED)
 * to decide again on: no patch bound to meet a 409 is sent, and no GET made.
 * Each version of the release a write replaces is added to older.
 */
static int act(release_view *cur, release_controller *rc, const release_plan *plan, const char *deployment,
               const char *cached_dep_rv, cJSON **patched_dep, double *sent_ms, double *patched_ms, stale_view *stale,
               informer_obj **newer, ryw_trail *older)
{
    /* copies: cur is replaced by every write */
    char ns[254], name[254], owner[512];
    int err = 0;
    snprintf(ns, sizeof(ns), "%s", json_str(cur->obj, "metadata", "namespace", NULL));
    snprintf(name, sizeof(name), "%s", json_str(cur->obj, "metadata", "name", NULL));
    mb_log_fields lf = {.kind = RELEASE_KIND, .namespace = ns, .name = name};

    snprintf(owner, sizeof(owner), "%s/%s", ns, name);
    if (plan->add_finalizer && (err = set_finalizer(cur, rc, ns, name, true, older)) < 0) {
        *stale = err == MB_ECONFLICT ? STALE_RELEASE : STALE_NONE;
        return mb_error_wrap(err, "adding the finalizer to %s", owner);
    }
    /* the Deployment patch first: a rollout's carries the rollback record, a rollback's what it rolled back from */
    if (plan->deployment_patch && (*newer = deployment_moved_on(rc, ns, deployment, cached_dep_rv))) {
        *stale = STALE_DEPLOYMENT_CACHED;
        return mb_error_wrap(mb_error_set(MB_ECONFLICT, "it changed since it was read"),
                             "patching Deployment %s/%s for %s", ns, deployment, owner);
    }
    if (plan->deployment_patch) {
        *sent_ms = mb_monotonic_ns() / 1e6;
        err = kube_patch(patched_dep, rc->opts.client, &KUBE_DEPLOYMENTS, ns, deployment, NULL, KUBE_PATCH_STRATEGIC,
                         plan->deployment_patch);
        *patched_ms = mb_monotonic_ns() / 1e6; /* its answer came: the status write that follows is not counted */
        /* the write that made a 409 has most often reached the cache by now */
        if (err == MB_ECONFLICT && (*newer = deployment_moved_on(rc, ns, deployment, cached_dep_rv)))
            *stale = STALE_DEPLOYMENT_CACHED;
        else
            *stale = err == MB_ECONFLICT ? STALE_DEPLOYMENT : STALE_NONE;
        if (*patched_dep)
            informer_trim(rc->deployments, *patched_dep);
        /* not through: nothing was decided that the next look does not decide again */
        if (err == MB_EFORBIDDEN) {
            /* RBAC or an admission policy: a human must look, so the release says it where they look */
            event_object eo;
            if (event_object_from_json(&eo, cur->obj, RELEASE_KIND, RELEASE_API_VERSION) == 0)
                event_record(rc->opts.events, &eo, EVENT_WARNING, "WriteDenied",
                             "patching Deployment %s/%s was refused: %s; the operator retries with backoff (see "
                             "Admission denials in docs/operations.md)",
                             ns, deployment, mb_error_last());
        }
        if (err < 0)
            return mb_error_wrap(err, "patching Deployment %s/%s for %s", ns, deployment, owner);
        if (plan->status && (rc->crash_after_patch || (rc->crash_after_rollback_patch && plan->phase &&
                                                       strcmp(plan->phase, "RollingBack") == 0))) {
            MB_LOG(MB_LOG_WARN, &lf, "failpoint: exiting after the Deployment patch, before the status write");
            _exit(137);
        }
    }
    if (plan->status) {
        bool reread = false;
        ryw_trail_add_version(older, cur->obj);
        if ((err = write_status(cur, &reread, rc, ns, plan->status)) < 0) {
            *stale = err != MB_ECONFLICT ? STALE_NONE : reread ? STALE_RELEASE_REREAD : STALE_RELEASE;
            return mb_error_wrap(err, "writing the status of %s", owner);
        }
        /* the rollback is done and recorded: counted now */
        if (release_plan_rollback_trigger(plan))
            metrics_rollback_inc(release_plan_rollback_trigger(plan));
        if (plan->receipt) {
            mb_log_fields rf = lf;
            metrics_rollout_inc(json_str(plan->receipt, "outcome", NULL));
            rf.release_id = json_str(plan->receipt, "releaseID", NULL);
            rf.audit_ref = json_str(plan->receipt, "auditRef", NULL);
            MB_LOG(MB_LOG_INFO, &rf, "receipt: release %s %s", json_str(plan->receipt, "digest", NULL),
                   json_str(plan->receipt, "outcome", NULL));
        }
    }
    /* the decision is recorded: its Events go out */
    if (plan->n_events) {
        event_object eo;
        if (event_object_from_json(&eo, cur->obj, RELEASE_KIND, RELEASE_API_VERSION) == 0)
            for (size_t i = 0; i < plan->n_events; i++)
                event_record(rc->opts.events, &eo,
                             strcmp(plan->events[i].type, "Warning") == 0 ? EVENT_WARNING : EVENT_NORMAL,
                             plan->events[i].reason, "%s", plan->events[i].message);
    }
    if (plan->phase)
        MB_LOG(MB_LOG_DEBUG, &lf, "phase %s", plan->phase);
    if (plan->clear_rollback_annotation) {
        cJSON *meta = cJSON_CreateObject();
        cJSON *ann = cJSON_AddObjectToObject(meta, "annotations");
        /* the break-glass record goes with the request it documents (lastRollback and the receipt keep it) */
        if (!ann || !cJSON_AddNullToObject(ann, RELEASE_ROLLBACK_ANNOTATION) ||
            !cJSON_AddNullToObject(ann, RELEASE_ROLLBACK_REASON_ANNOTATION) ||
            !cJSON_AddNullToObject(ann, RELEASE_ROLLBACK_APPROVER_ANNOTATION)) {
            cJSON_Delete(meta);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        ryw_trail_add_version(older, cur->obj);
        if ((err = patch_release_metadata(cur, rc, ns, name, meta)) < 0)
            return mb_error_wrap(err, "removing the rollback annotation of %s", owner);
    }
    /* probe pods in other namespaces have no owner to be collected with: deleted before the release may go */
    const char *uid = json_str(cur->obj, "metadata", "uid", NULL);
    /* (only with the probe enabled: without it none were made, and the install may not delete pods) */
    if (plan->remove_finalizer && rc->opts.enable_probe && uid && *uid &&
        (err = probe_pods_sweep(rc->opts.client, uid)) < 0)
        return mb_error_wrap(err, "deleting the probe pods of %s before its finalizer", owner);
    if (plan->remove_finalizer && (err = set_finalizer(cur, rc, ns, name, false, older)) < 0 && err != MB_ENOTFOUND)
        return mb_error_wrap(err, "removing the finalizer of %s", owner);
    return 0;
}

/* ---- reconcile ----------------------------------------------------------- */

/*
 * The releases spec.after names, from the cache, in its order: (*json)[i] is
 * after[i]'s, NULL when the cache does not hold it (it does not exist, or
 * this operator does not watch its namespace: the order gate then blocks).
 */
static int upstream_get(release_controller *rc, const cJSON *release, informer_obj ***objs, const cJSON ***json,
                        size_t *n)
{
    const cJSON *after = json_get(release, "spec", "after", NULL), *a;
    size_t i = 0, len = cJSON_IsArray(after) ? (size_t)cJSON_GetArraySize(after) : 0;
    *objs = NULL;
    *json = NULL;
    *n = 0;
    if (!len)
        return 0;
    if (!(*objs = calloc(len, sizeof(**objs))) || !(*json = calloc(len, sizeof(**json))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    *n = len;
    cJSON_ArrayForEach(a, after) {
        const char *ns = json_str(a, "namespace", NULL), *name = json_str(a, "name", NULL);
        if (ns && name && informer_get(&(*objs)[i], rc->releases, ns, name) == 0)
            (*json)[i] = informer_obj_json((*objs)[i]);
        else
            (*objs)[i] = NULL;
        i++;
    }
    return 0;
}

static int reconcile(reconcile_result *out, void *ctx, const char *key)
{
    release_controller *rc = ctx;
    informer_obj *rel = NULL, *dep = NULL, *pb = NULL;
    informer_objs *pods = NULL;
    const cJSON **pod_json = NULL;
    informer_obj **ups = NULL; /* spec.after's releases */
    const cJSON **up_json = NULL;
    size_t n_ups = 0;
    release_view cur = {0};
    cJSON *results = NULL;
    release_plan plan = {0};
    release_observed obs = {0};
    cJSON *fresh = NULL;       /* the Deployment read again after a 409 */
    cJSON *dep_view = NULL;    /* the Deployment as this process's patch left it, ahead of the cache */
    ryw_trail dep_older = {0}; /* the versions older than dep_view that the cache may show */
    double trigger_ms = 0;     /* when a rollback trigger was decided (monotonic), until its patch is sent */
    char depkey[512];
    char rid[13]; /* the release the checks ran for; outlives each pass */
    release_image_lookup images;
    int err = 0;

    ryw_trail older = {0}; /* the versions older than cur that the cache may show */
    if ((err = informer_get_key(&rel, rc->releases, key)) == MB_ENOTFOUND) {
        ryw_ahead_drop(rc->ryw, API_GOVERNEDAPIRELEASES.kind, key);
        release_runs_drop(rc->runs, key); /* its run, if any, is for nobody now */
        return 0;                         /* gone: nothing to do */
    }
    if (err < 0)
        return err;
    const cJSON *r = informer_obj_json(rel);
    const char *cached_rv = informer_obj_resource_version(rel);
    const char *ns = json_str(r, "metadata", "namespace", NULL);
    const char *name = json_str(r, "metadata", "name", NULL);
    mb_log_fields lf = {.kind = RELEASE_KIND, .namespace = ns, .name = name};
    const char *depname = json_str(r, "spec", "target", "deployment", NULL);
    const char *pbname = json_str(r, "spec", "policyBundleRef", "name", NULL);

    if (depname && informer_get(&dep, rc->deployments, ns, depname) < 0)
        dep = NULL;
    snprintf(depkey, sizeof(depkey), "%s/%s", ns, depname ? depname : "");
    if (dep)
        dep_view = ryw_ahead_take(rc->ryw, KUBE_DEPLOYMENTS.kind, depkey, informer_obj_resource_version(dep),
                                  &dep_older);
    else
        ryw_ahead_drop(rc->ryw, KUBE_DEPLOYMENTS.kind, depkey);
    if ((err = informer_by_index(&pods, rc->pods, INDEX_DEPLOYMENT, depkey)) < 0)
        goto done;
    if (pods->len && !(pod_json = calloc(pods->len, sizeof(*pod_json)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < pods->len; i++)
        pod_json[i] = informer_obj_json(pods->items[i]);
    if (pbname && informer_get(&pb, rc->bundles, ns, pbname) < 0)
        pb = NULL;
    cur.owned = ryw_ahead_take(rc->ryw, API_GOVERNEDAPIRELEASES.kind, key, cached_rv, &older);
    cur.obj = cur.owned ? cur.owned : r;

    obs.deployment = dep_view ? dep_view : dep ? informer_obj_json(dep) : NULL;
    obs.pods = pod_json;
    obs.n_pods = pods->len;
    obs.policy_bundle = pb ? informer_obj_json(pb) : NULL;
    if ((err = upstream_get(rc, cur.obj, &ups, &up_json, &n_ups)) < 0)
        goto done;
    obs.upstream = up_json;
    obs.n_upstream = n_ups;
    obs.allow_after_namespaces = rc->opts.allow_after_namespaces;
    obs.probe_enabled = rc->opts.enable_probe;
    for (int pass = 0; pass < MAX_PASSES; pass++) {
        obs.release = cur.obj;
        obs.now = time(NULL);
        double decided = mb_monotonic_ns() / 1e6;
        cJSON *patched = NULL;
        stale_view stale = STALE_NONE;
        if ((err = release_decide(&plan, &obs)) < 0)
            goto done;
        if (plan.n_verify_digests && !obs.n_images) {
            /* the image gate's verdicts, and decide again with them; while one is being verified, its end requeues */
            if ((err = release_images_lookup(&images, rc->images, rc->opts.client, cur.obj, &plan, key)) != 0) {
                out->requeue_ms = err == 1 ? CHECKS_RECHECK_MS : 0;
                err = err == 1 ? 0 : err;
                goto done;
            }
            obs.images = images.verdicts;
            obs.n_images = images.n;
            release_plan_clear(&plan);
            continue;
        }
        if (release_plan_rollback_trigger(&plan))
            trigger_ms = decided;
        informer_obj *newer = NULL;
        double sent_ms = 0, patched_ms = 0;
        err = act(&cur, rc, &plan, depname, dep && !fresh && !dep_view ? informer_obj_resource_version(dep) : NULL,
                  &patched, &sent_ms, &patched_ms, &stale, &newer, &older);
        if (patched) {
            /* decide on the Deployment as the patch left it, and so does the next reconcile until the cache has it */
            ryw_trail_add(&dep_older, json_str(obs.deployment, "metadata", "resourceVersion", NULL));
            cJSON_Delete(dep_view);
            obs.deployment = dep_view = patched;
        }
        if (patched && trigger_ms > 0) {
            MB_LOG(MB_LOG_INFO, &lf,
                   "rollback patch answered %.1f ms after the trigger was detected (its request went out after "
                   "%.1f ms)",
                   patched_ms - trigger_ms, sent_ms - trigger_ms);
            trigger_ms = 0;
        } else if (patched) {
            double ago = spec_seen_take(rc, key, json_int(-1, cur.obj, "metadata", "generation", NULL), patched_ms);
            if (ago >= 0)
                MB_LOG(MB_LOG_INFO, &lf,
                       "rollout patch answered %.1f ms after the spec change reached the operator (its request went "
                       "out after %.1f ms)",
                       ago, ago - (patched_ms - sent_ms));
        }
        if (err == MB_ECONFLICT && stale == STALE_DEPLOYMENT_CACHED && pass + 1 < MAX_PASSES) {
            /* decide again on the Deployment the cache has now */
            informer_obj_free(dep);
            dep = newer;
            obs.deployment = informer_obj_json(dep);
            err = 0;
            release_plan_clear(&plan);
            continue;
        }
        informer_obj_free(newer);
        if (err == MB_ECONFLICT && stale == STALE_DEPLOYMENT && pass + 1 < MAX_PASSES) {
            /* a 409 the cache cannot answer re-observes: read the Deployment itself and decide again, now */
            cJSON_Delete(fresh);
            fresh = NULL;
            cJSON_Delete(dep_view);
            dep_view = NULL;
            ryw_trail_clear(&dep_older);
            if ((err = kube_get(&fresh, rc->opts.client, &KUBE_DEPLOYMENTS, ns, depname)) < 0 && err != MB_ENOTFOUND)
                goto done;
            err = 0;
            obs.deployment = fresh;
            release_plan_clear(&plan);
            continue;
        }
        if (err == MB_ECONFLICT && stale == STALE_RELEASE_REREAD && pass + 1 < MAX_PASSES) {
            /* the status write read the release back: decide again on it, now */
            err = 0;
            release_plan_clear(&plan);
            continue;
        }
        if (err == MB_ECONFLICT && stale == STALE_RELEASE && pass + 1 < MAX_PASSES) {
            /* the release changed under us (a new spec, most often): read it and decide again, now */
            cJSON *again = NULL;
            if ((err = kube_get(&again, rc->opts.client, &API_GOVERNEDAPIRELEASES, ns, name)) < 0) {
                if (err == MB_ENOTFOUND)
                    err = 0; /* gone: nothing to do */
                goto done;
            }
            view_set(&cur, again);
            release_plan_clear(&plan);
            continue;
        }
        if (err < 0)
            goto done;
        out->requeue_ms = plan.requeue_ms;
        if (!plan.run_checks) {
            release_runs_drop(rc->runs, key); /* a run still going is not what this decision waits for */
            break;
        }
        /* the checks' results, when their run has ended, and decide again with them; else the run's end requeues */
        memcpy(rid, plan.checks_release_id, sizeof(rid));
        cJSON_Delete(results);
        results = NULL;
        obs.checks.started_at = obs.checks.finished_at = time(NULL);
        if ((err = release_runs_collect(rc->runs, key, cur.obj, rid, plan.checks_digest, &results,
                                        &obs.checks.started_at, &obs.checks.finished_at)) == 0) {
            /* the run's end requeues; should that enqueue be lost, this look finds the run again */
            if (out->requeue_ms <= 0 || out->requeue_ms > CHECKS_RECHECK_MS)
                out->requeue_ms = CHECKS_RECHECK_MS;
            break;
        }
        if (err < 0 || !results)
            goto done;
        err = 0;
        obs.checks.ran = true;
        obs.checks.release_id = rid;
        obs.checks.results = results;
        release_plan_clear(&plan);
        out->requeue_ms = 1; /* if the passes run out, come back at once */
    }
done:
    /* what this reconcile wrote (or started from, ahead of the cache) is where the next one starts */
    ryw_ahead_keep(rc->ryw, API_GOVERNEDAPIRELEASES.kind, key, &older, cur.owned, rc->releases);
    ryw_ahead_keep(rc->ryw, KUBE_DEPLOYMENTS.kind, depkey, &dep_older, dep_view, NULL); /* patch answers are trimmed */
    release_plan_clear(&plan);
    cJSON_Delete(results);
    cJSON_Delete(fresh);
    for (size_t i = 0; i < n_ups; i++)
        informer_obj_free(ups[i]);
    free(ups);
    free(up_json);
    free(pod_json);
    informer_objs_free(pods);
    informer_obj_free(pb);
    informer_obj_free(dep);
    informer_obj_free(rel);
    return err;
}

/* ---- lifecycle ----------------------------------------------------------- */

/* A check run or a signature verification has ended: the release that waits for it decides again. */
static void release_enqueue(void *ctx, const char *key)
{
    release_controller *rc = ctx;
    if (rc->loop)
        loop_enqueue(rc->loop, key);
}

static void release_controller_free(void *ctx)
{
    release_controller *rc = ctx;
    if (!rc)
        return;
    /* the runs go before the loop their ends enqueue into */
    release_runs_free(rc->runs);
    image_verifier_free(rc->images);
    spec_seen *e, *tmp;
    HASH_ITER(hh, rc->seen, e, tmp) {
        HASH_DEL(rc->seen, e);
        free(e);
    }
    pthread_mutex_destroy(&rc->seen_mu);
    free(rc);
}

/* Its informers from the factory (Deployments, Pods and PolicyBundles before the releases that point at them). */
static int subscribe(void *ctx, informer_factory *f, loop *l)
{
    release_controller *rc = ctx;
    int err = 0;
    rc->loop = l;
    rc->ryw = informer_factory_ryw(f);
    if ((err = api_informer(&rc->deployments, f, &KUBE_DEPLOYMENTS)) < 0 ||
        (err = api_informer(&rc->pods, f, &KUBE_PODS)) < 0 ||
        (err = api_informer(&rc->bundles, f, &API_POLICYBUNDLES)) < 0 ||
        (err = api_informer(&rc->releases, f, &API_GOVERNEDAPIRELEASES)) < 0)
        return err;
    if ((err = informer_factory_add_index(f, &API_GOVERNEDAPIRELEASES, INDEX_DEPLOYMENT, index_release_deployment,
                                          NULL)) < 0 ||
        (err = informer_factory_add_index(f, &API_GOVERNEDAPIRELEASES, INDEX_BUNDLE, index_release_bundle, NULL)) < 0 ||
        (err = informer_factory_add_index(f, &API_GOVERNEDAPIRELEASES, INDEX_AFTER, index_release_after, NULL)) < 0 ||
        (err = informer_factory_add_index(f, &KUBE_PODS, INDEX_DEPLOYMENT, index_pod_deployment, NULL)) < 0)
        return err;
    informer_handlers hr = {on_release, on_release_update, on_release_delete, rc};
    informer_handlers hd = {on_deployment, on_deployment_update, on_deployment, rc};
    informer_handlers hp = {on_pod, on_pod_update, on_pod, rc};
    informer_handlers hb = {on_bundle, on_bundle_update, on_bundle, rc};
    if ((err = informer_factory_subscribe(f, &API_GOVERNEDAPIRELEASES, &hr)) < 0 ||
        (err = informer_factory_subscribe(f, &KUBE_DEPLOYMENTS, &hd)) < 0 ||
        (err = informer_factory_subscribe(f, &KUBE_PODS, &hp)) < 0 ||
        (err = informer_factory_subscribe(f, &API_POLICYBUNDLES, &hb)) < 0)
        return err;
    return 0;
}

int release_controller_register(manager *m, const release_controller_opts *opts)
{
    release_controller *rc = NULL;
    if (!(rc = calloc(1, sizeof(*rc))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    rc->opts = *opts;
    pthread_mutex_init(&rc->seen_mu, NULL);
    const char *fp = getenv("MEMBRANE_FAILPOINT");
    rc->crash_after_patch = fp && strcmp(fp, "crash-after-deployment-patch") == 0;
    rc->crash_after_rollback_patch = fp && strcmp(fp, "crash-after-rollback-patch") == 0;
    if (!opts->net || release_runs_new(&rc->runs, opts->client, opts->net, release_enqueue, rc) < 0 ||
        image_verifier_new(&rc->images, opts->net, release_enqueue, rc) < 0) {
        int err = opts->net ? mb_error_last_code()
                            : mb_error_set(MB_EINVAL, "the release controller needs the transfer loop for its checks");
        release_controller_free(rc);
        return err;
    }
    manager_registration r = {.kind = RELEASE_KIND,
                              .reconcile = reconcile,
                              .subscribe = subscribe,
                              .free = release_controller_free,
                              .ctx = rc};
    return manager_add(m, &r); /* owns rc from here, also on error */
}
