/*
 * The DatasetPromotion reconciler: observe from the caches, call
 * dataset_decide, and carry out its action (the finalizer, starting
 * transfers on the loop, sealing the receipt into the status before the
 * index is written, the index writes), deciding again after each; then the
 * status, Events and the metric. The transfers of a promotion's generation
 * are kept by key; a new generation, or the promotion's deletion, cancels
 * them.
 */
#include "dataset/controller.h"
#include "api/informers.h"
#include "api/resources.h"
#include "dataset/decide.h"
#include "dataset/work.h"
#include "runtime/informer.h"
#include "runtime/loop.h"
#include "runtime/metrics_families.h"
#include "runtime/ryw.h"
#include "runtime/store.h"
#include "runtime/worktable.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_PASSES 8
#define MAX_EVENTS 6

typedef struct {
    dataset_controller_opts opts;
    informer *promotions, *configmaps; /* the factory's, borrowed */
    ryw *ryw;
    loop *loop;
    worktable *works; /* dataset_work_state by key */
} dataset_controller;

/* ---- handlers ------------------------------------------------------------ */

/* An index ConfigMap changed: every promotion of its namespace that publishes into it looks again. */
static void on_configmap(void *ctx, const cJSON *obj)
{
    dataset_controller *c = ctx;
    const char *ns = json_str(obj, "metadata", "namespace", NULL), *name = json_str(obj, "metadata", "name", NULL);
    informer_objs *l = NULL;
    char index[254];
    if (!ns || !name || informer_by_index(&l, c->promotions, "namespace", ns) < 0)
        return;
    for (size_t i = 0; i < l->len; i++) {
        const cJSON *p = informer_obj_json(l->items[i]);
        if (dataset_index_name(index, p) && strcmp(index, name) == 0)
            loop_enqueue_object(c->loop, p);
    }
    informer_objs_free(l);
}

static void on_configmap_update(void *ctx, const cJSON *old_obj, const cJSON *new_obj)
{
    (void)old_obj;
    on_configmap(ctx, new_obj);
}

/* ---- the work by key ------------------------------------------------------- */

/* The transfers of key for generation gen, cleared when they were for another. NULL: no memory. */
static dataset_work_state *work_get(dataset_controller *c, const char *key, long long gen)
{
    dataset_work_state *w = worktable_get(c->works, key);
    if (!w || w->gen == gen)
        return w;
    dataset_work_clear(w); /* another generation's: cancelled */
    w->gen = gen;
    return w;
}

static void work_drop(dataset_controller *c, const char *key)
{
    worktable_drop(c->works, key);
}

static void work_clear(void *payload)
{
    dataset_work_clear(payload);
}

/* ---- writes -------------------------------------------------------------- */

/* Adds or removes the finalizer with the object's resourceVersion; *cur becomes the API's answer. */
static int set_finalizer(cJSON **cur, dataset_controller *c, const char *ns, bool add)
{
    cJSON *body = cJSON_Duplicate(*cur, true), *res = NULL, *meta, *list, *f, *next;
    int err;
    if (!body || !(meta = json_ensure_object(body, "metadata", NULL))) {
        cJSON_Delete(body);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "managedFields");
    cJSON_DeleteItemFromObject(body, "status");
    if (!(list = cJSON_GetObjectItemCaseSensitive(meta, "finalizers"))) {
        if (!(list = cJSON_AddArrayToObject(meta, "finalizers"))) {
            cJSON_Delete(body);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    for (f = list->child; f; f = next) {
        next = f->next;
        if (cJSON_IsString(f) && strcmp(f->valuestring, DATASET_FINALIZER) == 0)
            cJSON_Delete(cJSON_DetachItemViaPointer(list, f));
    }
    if (add && !cJSON_AddItemToArray(list, cJSON_CreateString(DATASET_FINALIZER))) {
        cJSON_Delete(body);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    err = kube_update(&res, c->opts.client, &API_DATASETPROMOTIONS, ns, body, NULL);
    cJSON_Delete(body);
    if (err < 0)
        return mb_error_wrap(err, "%s the finalizer %s", add ? "adding" : "removing", DATASET_FINALIZER);
    cJSON_Delete(*cur);
    *cur = res;
    return 0;
}

/* ---- reconcile ----------------------------------------------------------- */

static int reconcile(reconcile_result *out, void *ctx, const char *key)
{
    dataset_controller *c = ctx;
    informer_obj *po = NULL, *cmobj = NULL;
    cJSON *cur = NULL, *index_view = NULL;
    ryw_trail older = {0};
    dataset_plan plan = {0};
    event_planned events[MAX_EVENTS];
    size_t n_events = 0;
    const char *outcome = NULL;
    char index[254], ns[254], name[254], version[129];
    bool status_written = false, gone = false;
    int err = 0;

    if ((err = informer_get_key(&po, c->promotions, key)) == MB_ENOTFOUND) {
        ryw_ahead_drop(c->ryw, API_DATASETPROMOTIONS.kind, key);
        work_drop(c, key);
        return 0;
    }
    if (err < 0)
        return err;
    if (!(cur = ryw_ahead_take(c->ryw, API_DATASETPROMOTIONS.kind, key, informer_obj_resource_version(po), &older)) &&
        !(cur = cJSON_Duplicate(informer_obj_json(po), true))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(ns, sizeof(ns), "%s", json_str(cur, "metadata", "namespace", NULL) ?: "");
    snprintf(name, sizeof(name), "%s", json_str(cur, "metadata", "name", NULL) ?: "");
    snprintf(version, sizeof(version), "%s", json_str(cur, "spec", "versionID", NULL) ?: "");
    mb_log_fields lf = {.kind = DATASET_KIND, .namespace = ns, .name = name, .dataset_version_id = version};
    if (!dataset_index_name(index, cur))
        index[0] = '\0';
    if (index[0] && informer_get(&cmobj, c->configmaps, ns, index) < 0)
        cmobj = NULL;

    dataset_work_state *w = work_get(c, key, json_int(0, cur, "metadata", "generation", NULL));
    if (!w) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    time_t now = time(NULL);
    if ((err = dataset_work_collect(w, now)) < 0)
        goto done;

    unsigned acted = 0;
    for (int pass = 0; pass < MAX_PASSES; pass++) {
        dataset_observed obs = {.promotion = cur,
                                .index = index_view ? index_view
                                         : cmobj    ? informer_obj_json(cmobj)
                                                    : NULL,
                                .now = now};
        dataset_work_view(&obs.work, w);
        dataset_plan_clear(&plan);
        if ((err = dataset_decide(&plan, &obs)) < 0)
            goto done;
        for (size_t i = 0; i < plan.n_events && n_events < MAX_EVENTS; i++) {
            events[n_events++] = plan.events[i];
            plan.events[i].message = NULL;
        }
        if (plan.outcome)
            outcome = plan.outcome;
        if (plan.action == DATASET_ACT_NONE || (acted & (1u << plan.action)))
            break;
        acted |= 1u << plan.action;
        cJSON *written = NULL;
        switch (plan.action) {
        case DATASET_ACT_ADD_FINALIZER:
        case DATASET_ACT_REMOVE_FINALIZER:
            ryw_trail_add_version(&older, cur);
            err = set_finalizer(&cur, c, ns, plan.action == DATASET_ACT_ADD_FINALIZER);
            if (err == 0 && plan.action == DATASET_ACT_REMOVE_FINALIZER) {
                gone = true;
                goto finish;
            }
            break;
        case DATASET_ACT_FETCH:
            err = dataset_work_fetch(w, c->opts.client, c->opts.net, c->loop, key, cur, plan.retry, now);
            break;
        case DATASET_ACT_SEAL:
            /* the receipt is durable before the entry that names it is written */
            if (plan.status) {
                ryw_trail_add_version(&older, cur);
                if ((err = ryw_status_write(&cur, c->ryw, c->opts.client, &API_DATASETPROMOTIONS, ns, key,
                                            plan.status)) == 0)
                    status_written = true;
            }
            if (err == 0 && plan.receipt) {
                mb_log_fields rf = lf;
                rf.audit_ref = json_str(plan.receipt, "auditRef", NULL);
                MB_LOG(MB_LOG_INFO, &rf, "receipt: %s of %s version %s sealed, to be written into ConfigMap %s",
                       json_str(plan.receipt, "outcome", NULL) ?: "", json_str(plan.receipt, "datasetID", NULL) ?: "",
                       version, index);
            }
            break;
        case DATASET_ACT_PUBLISH:
            err = dataset_index_publish(&written, c->opts.client, cur, index, plan.entry, plan.expect_replaced,
                                        obs.index);
            break;
        case DATASET_ACT_UNPUBLISH: {
            bool removed = false;
            err = dataset_index_unpublish(&written, &removed, c->opts.client, cur, index, plan.unpublish_ref,
                                          obs.index);
            if (removed)
                w->removed = true;
            if (err == 0 && !removed && !written) {
                /* not ours or gone already: decide on the index as the API has it */
                cJSON *fresh = NULL;
                if ((err = kube_get(&fresh, c->opts.client, &KUBE_CONFIGMAPS, ns, index)) == 0)
                    written = fresh;
                else if (err == MB_ENOTFOUND && (written = cJSON_CreateObject()))
                    err = 0; /* no index: no entry */
                else if (err == MB_ENOTFOUND)
                    err = mb_error_set(MB_ENOMEM, "out of memory");
            }
            break;
        }
        default: break;
        }
        if (written) {
            cJSON_Delete(index_view);
            index_view = written;
        }
        if (err < 0)
            goto done;
    }
finish:
    if (!gone && plan.status && !(status_written && plan.action == DATASET_ACT_SEAL)) {
        ryw_trail_add_version(&older, cur);
        if ((err = ryw_status_write(&cur, c->ryw, c->opts.client, &API_DATASETPROMOTIONS, ns, key, plan.status)) < 0) {
            err = mb_error_wrap(err, "writing the status of DatasetPromotion %s", key);
            goto done;
        }
        status_written = true;
    }
    if (status_written && outcome)
        metrics_promotion_inc(outcome);
    if (status_written && plan.receipt) {
        mb_log_fields rf = lf;
        rf.audit_ref = json_str(plan.receipt, "auditRef", NULL);
        MB_LOG(MB_LOG_INFO, &rf, "receipt: %s of %s sealed", json_str(plan.receipt, "outcome", NULL) ?: "",
               json_str(cur, "spec", "datasetID", NULL) ?: "");
    }
    event_object eo;
    if (n_events && event_object_from_json(&eo, cur, DATASET_KIND, DATASET_API_VERSION) == 0)
        event_record_planned(c->opts.events, &eo, events, n_events);
    if (plan.phase)
        MB_LOG(MB_LOG_DEBUG, &lf, "phase %s", plan.phase);
    if (plan.drop_work || gone)
        work_drop(c, key);
    out->requeue_ms = gone ? 0 : plan.requeue_ms;
done:
    for (size_t i = 0; i < n_events; i++)
        free(events[i].message);
    ryw_ahead_keep(c->ryw, API_DATASETPROMOTIONS.kind, key, &older, cur, c->promotions);
    cJSON_Delete(index_view);
    dataset_plan_clear(&plan);
    informer_obj_free(cmobj);
    informer_obj_free(po);
    return err;
}

/* ---- lifecycle ----------------------------------------------------------- */

static void dataset_controller_free(void *ctx)
{
    dataset_controller *c = ctx;
    if (!c)
        return;
    worktable_free(c->works);
    free(c);
}

static int subscribe(void *ctx, informer_factory *f, loop *l)
{
    dataset_controller *c = ctx;
    manager_watch w[] = {
        {.resource = &API_DATASETPROMOTIONS,
         .out = &c->promotions,
         .index = "namespace",
         .index_fn = informer_index_namespace},
        {.resource = &KUBE_CONFIGMAPS,
         .out = &c->configmaps,
         .handlers = {on_configmap, on_configmap_update, on_configmap, c}},
    };
    c->loop = l;
    c->ryw = informer_factory_ryw(f);
    return manager_watch_all(f, l, api_informer, w, sizeof(w) / sizeof(w[0]));
}

int dataset_controller_register(manager *m, const dataset_controller_opts *opts)
{
    if (!opts->net)
        return mb_error_set(MB_EINVAL, "the DatasetPromotion controller needs the transfer loop for its downloads");
    dataset_controller *c = calloc(1, sizeof(*c));
    if (!c)
        return mb_error_set(MB_ENOMEM, "out of memory");
    c->opts = *opts;
    manager_registration r = {.kind = DATASET_KIND,
                              .reconcile = reconcile,
                              .subscribe = subscribe,
                              .free = dataset_controller_free,
                              .ctx = c};
    return manager_add_with_works(m, &r, &c->works, sizeof(dataset_work_state), work_clear);
}
