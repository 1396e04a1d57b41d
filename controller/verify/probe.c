/*
 * The membrane probe run through the API (probe.h): sweep the probe pods an
 * earlier run left, list the live pods and namespaces, plan (probe_plan.c),
 * create every pod, poll them until they terminate or the timeout passes,
 * judge, delete, and return the one check result.
 */
#include "verify/probe_private.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define POLL_MS 250

/* ---- running it ------------------------------------------------------------------- */

int probe_pods_sweep(kube_client *c, const char *owner_label)
{
    cJSON *list = NULL;
    char sel[400];
    const cJSON *pod;
    int err = 0;
    snprintf(sel, sizeof(sel), "%s=%s", PROBE_LABEL, owner_label);
    kube_list_opts lo = {.label_selector = sel};
    if ((err = kube_list(&list, c, &KUBE_PODS, NULL, &lo)) < 0)
        return mb_error_wrap(err, "listing the probe pods labelled %s", sel);
    cJSON_ArrayForEach(pod, cJSON_GetObjectItem(list, "items")) {
        kube_delete_opts d = {.propagation_policy = "Background"};
        int e = kube_delete(c, &KUBE_PODS, json_str(pod, "metadata", "namespace", NULL),
                            json_str(pod, "metadata", "name", NULL), &d);
        if (e < 0 && e != MB_ENOTFOUND && err == 0)
            err = mb_error_wrap(e, "deleting probe pod %s/%s", json_str(pod, "metadata", "namespace", NULL),
                                json_str(pod, "metadata", "name", NULL));
    }
    cJSON_Delete(list);
    return err;
}

static bool reason_is_fatal(const char *reason)
{
    static const char *const fatal[] = {"ErrImagePull",         "ImagePullBackOff",
                                        "InvalidImageName",     "CreateContainerConfigError",
                                        "CreateContainerError", "RunContainerError",
                                        "ErrImageNeverPull",    NULL};
    for (size_t i = 0; reason && fatal[i]; i++)
        if (strcmp(reason, fatal[i]) == 0)
            return true;
    return false;
}

/* Reads one probe pod's status into pp: ended, cannot run, or still running (detail: what it waits for). */
static int pod_observe(probe_pod *pp, const cJSON *pod)
{
    const char *phase = json_str(pod, "status", "phase", NULL);
    const cJSON *cs = cJSON_GetArrayItem(json_get(pod, "status", "containerStatuses", NULL), 0);
    const cJSON *term = json_get(cs, "state", "terminated", NULL);
    const char *wreason = json_str(cs, "state", "waiting", "reason", NULL);
    const char *wmsg = json_str(cs, "state", "waiting", "message", NULL);
    int err = 0;

    free(pp->detail);
    pp->detail = NULL;
    if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) {
        long long code = json_int(-1, term, "exitCode", NULL);
        pp->state = PROBE_POD_ENDED;
        if ((err = probe_dup_str(&pp->report, json_str(term, "message", NULL))) < 0)
            return err;
        if (strcmp(phase, "Failed") == 0 || code != 0)
            err = probe_dup_printf(&pp->detail, "it ended %s%s%s with exit code %lld%s%s", phase,
                                   json_str(pod, "status", "reason", NULL) ? " " : "",
                                   json_str(pod, "status", "reason", NULL) ? json_str(pod, "status", "reason", NULL)
                                                                           : "",
                                   code, json_str(term, "reason", NULL) ? ", " : "",
                                   json_str(term, "reason", NULL) ? json_str(term, "reason", NULL) : "");
        return err;
    }
    if (reason_is_fatal(wreason)) {
        pp->state = PROBE_POD_UNRUN;
        return probe_dup_printf(&pp->detail, "its container is waiting with %s%s%s; check spec.membrane.probe.image",
                                wreason, wmsg ? ": " : "", wmsg ? wmsg : "");
    }
    if (wreason)
        return probe_dup_printf(&pp->detail, "its container is waiting with %s", wreason);
    return probe_dup_printf(&pp->detail, "phase %s", phase ? phase : "unknown");
}

/* Creates every pod of the plan; a pod that cannot be created is marked so. */
static int pods_create(kube_client *client, probe_plan *plan)
{
    cJSON *body = NULL, *created = NULL;
    int err = 0;
    for (size_t i = 0; i < plan->n_pods; i++) {
        probe_pod *pp = &plan->pods[i];
        if ((err = probe_pod_manifest(&body, plan, i)) < 0)
            goto done;
        /* a pod of the same name may still be terminating after the sweep */
        for (int tries = 0; tries < 40; tries++) {
            cJSON_Delete(created);
            created = NULL;
            err = kube_create(&created, client, &KUBE_PODS, pp->ns, body);
            if (err != MB_EEXISTS)
                break;
            usleep(POLL_MS * 1000);
        }
        if (err == MB_ENOMEM)
            goto done;
        if (err < 0) {
            pp->state = PROBE_POD_UNRUN;
            if ((err = probe_dup_printf(&pp->detail, "it cannot be created: %s", mb_error_last())) < 0)
                goto done;
        } else {
            pp->state = PROBE_POD_RUNNING;
            if ((err = probe_dup_str(&pp->uid, json_str(created, "metadata", "uid", NULL))) < 0)
                goto done;
        }
        cJSON_Delete(body);
        body = NULL;
    }
done:
    cJSON_Delete(body);
    cJSON_Delete(created);
    return err;
}

/* Polls the running pods until each has ended or cannot run, or the deadline passes. */
static int pods_wait(kube_client *client, probe_plan *plan, const char *owner_label)
{
    int64_t t0 = 0;
    long long deadline_ms = (plan->timeout_seconds + 5) * 1000LL;
    char sel[400];
    int err = 0;

    t0 = mb_monotonic_ns();
    snprintf(sel, sizeof(sel), "%s=%s", PROBE_LABEL, owner_label);
    for (;;) {
        cJSON *list = NULL;
        size_t running = 0;
        kube_list_opts lo = {.label_selector = sel};
        bool listed = kube_list(&list, client, &KUBE_PODS, NULL, &lo) == 0;
        for (size_t i = 0; i < plan->n_pods; i++) {
            probe_pod *pp = &plan->pods[i];
            const cJSON *pod, *found = NULL;
            if (pp->state != PROBE_POD_RUNNING)
                continue;
            const cJSON *items = listed ? cJSON_GetObjectItem(list, "items") : NULL;
            cJSON_ArrayForEach(pod, items) {
                const char *uid = json_str(pod, "metadata", "uid", NULL);
                if (uid && pp->uid && strcmp(uid, pp->uid) == 0)
                    found = pod;
            }
            if (listed && !found) {
                pp->state = PROBE_POD_UNRUN;
                free(pp->detail);
                err = probe_dup_str(&pp->detail, "it was deleted before it reported");
            } else if (found) {
                err = pod_observe(pp, found);
            }
            if (err < 0) {
                cJSON_Delete(list);
                return err;
            }
            running += pp->state == PROBE_POD_RUNNING;
        }
        cJSON_Delete(list);
        if (!running)
            return 0;
        if (mb_elapsed_ms(t0) > (double)deadline_ms) {
            for (size_t i = 0; i < plan->n_pods; i++)
                if (plan->pods[i].state == PROBE_POD_RUNNING)
                    plan->pods[i].state = PROBE_POD_TIMEOUT;
            return 0;
        }
        usleep(POLL_MS * 1000);
    }
}

int probe_membrane_check(cJSON **out, kube_client *client, const verify_owner *owner, const cJSON *membrane,
                         const char *release_id)
{
    const char *uid = owner->uid;
    const char *rname = owner->name;
    cJSON *pods = NULL, *namespaces = NULL, *r = NULL;
    probe_plan *plan = NULL;
    char *msg = NULL, owner_label[300];
    bool passed = false;
    int64_t t0 = 0;
    int err = 0;

    *out = NULL;
    t0 = mb_monotonic_ns();
    /* the probe label's value: the release's uid (a label value holds at most 63 characters) */
    snprintf(owner_label, sizeof(owner_label), "%s", uid && *uid ? uid : rname ? rname : "");
    probe_pods_sweep(client, owner_label); /* an earlier run's, that never finished */
    if (kube_list(&pods, client, &KUBE_PODS, NULL, NULL) < 0 ||
        kube_list(&namespaces, client, &KUBE_NAMESPACES, NULL, NULL) < 0) {
        err = probe_dup_printf(&msg, "the Pods and Namespaces cannot be read for the probe: %s", mb_error_last());
        goto result;
    }
    if ((err = probe_plan_build(&plan, owner, membrane, release_id, pods, namespaces)) < 0) {
        if (err != MB_ENOMEM)
            err = probe_dup_printf(&msg, "the probe cannot be planned: %s", mb_error_last());
        goto result;
    }
    if ((err = pods_create(client, plan)) < 0 || (err = pods_wait(client, plan, owner_label)) < 0 ||
        (err = probe_plan_judge(&passed, &msg, plan)) < 0)
        goto result;

result:
    if (err < 0)
        goto done;
    r = cJSON_CreateObject();
    if (!r || !msg || !cJSON_AddStringToObject(r, "name", "membrane-probe") ||
        !cJSON_AddBoolToObject(r, "passed", passed) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)(long long)mb_elapsed_ms(t0)) ||
        !cJSON_AddStringToObject(r, "message", msg) ||
        (!passed && !cJSON_AddStringToObject(r, "trigger", "MembraneBreach"))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    *out = r;
    r = NULL;
done:
    for (size_t i = 0; plan && i < plan->n_pods; i++) {
        if (plan->pods[i].state == PROBE_POD_PLANNED || (plan->pods[i].state == PROBE_POD_UNRUN && !plan->pods[i].uid))
            continue;
        kube_delete_opts d = {.propagation_policy = "Background"};
        kube_delete(client, &KUBE_PODS, plan->pods[i].ns, plan->pods[i].name, &d);
    }
    probe_plan_free(plan);
    free(msg);
    cJSON_Delete(r);
    cJSON_Delete(pods);
    cJSON_Delete(namespaces);
    return err;
}
