/*
 * The probe pod's lifecycle through the API: find the targets (store pods,
 * by the same selectors as membrane-networkpolicy), sweep an old probe,
 * create the pod, poll it until it terminates or the timeout passes, read
 * and judge its termination message, delete it.
 */
#include "verify/probe.h"
#include "util/error.h"
#include "util/json.h"
#include "util/log.h"
#include "verify/labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS 250
#define MSG_MAX 1024

/* The probe's script: one line per target to the termination message, exit 0. */
static const char probe_script[] =
    "for t in $TARGETS; do h=${t%:*}; p=${t##*:}; "
    "if nc -z -w 2 \"$h\" \"$p\" 2>/dev/null; then echo \"open $t\"; else echo \"closed $t\"; fi; "
    "done > /dev/termination-log";

typedef struct {
    char ns[254];
    char name[254];
    char targets[4096]; /* "ip:port ip:port ..." */
    size_t n_targets;
    char first_store[254];
} probe_plan;

static long long ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (t1.tv_sec - t0->tv_sec) * 1000LL + (t1.tv_nsec - t0->tv_nsec) / 1000000LL;
}

static bool namespace_matches(const cJSON *namespaces, const cJSON *ns_selector, const char *ns_name, bool *err)
{
    const cJSON *n;
    *err = false;
    cJSON_ArrayForEach(n, namespaces) {
        const char *name = json_str(n, "metadata", "name", NULL);
        if (!name || strcmp(name, ns_name) != 0)
            continue;
        bool m = false;
        if (labels_selector_match(&m, ns_selector, json_get(n, "metadata", "labels", NULL)) < 0)
            *err = true;
        return m;
    }
    return false;
}

/* Targets: every running store pod's IP and every store port. */
static int find_targets(probe_plan *p, const cJSON *membrane, const char *release_ns, const cJSON *pods,
                        const cJSON *namespaces)
{
    const cJSON *store, *pod;
    cJSON_ArrayForEach(store, json_get(membrane, "stores", NULL)) {
        const cJSON *pod_sel = json_get(store, "podSelector", NULL);
        const cJSON *ns_sel = json_get(store, "namespaceSelector", NULL);
        cJSON_ArrayForEach(pod, pods) {
            const char *ns = json_str(pod, "metadata", "namespace", NULL);
            const char *ip = json_str(pod, "status", "podIP", NULL);
            const char *phase = json_str(pod, "status", "phase", NULL);
            bool m = false, bad = false;
            if (!ns || !ip || !*ip || (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)))
                continue;
            if (ns_sel ? !namespace_matches(namespaces, ns_sel, ns, &bad) : strcmp(ns, release_ns) != 0) {
                if (bad)
                    return mb_error_set(MB_EINVAL, "spec.membrane.stores[].namespaceSelector is not a valid selector");
                continue;
            }
            if (labels_selector_match(&m, pod_sel, json_get(pod, "metadata", "labels", NULL)) < 0)
                return mb_error_set(MB_EINVAL, "spec.membrane.stores[].podSelector is not a valid selector");
            if (!m)
                continue;
            const cJSON *port;
            cJSON_ArrayForEach(port, json_get(store, "ports", NULL)) {
                size_t len = strlen(p->targets);
                if (!cJSON_IsNumber(port) || len + 64 >= sizeof(p->targets))
                    continue;
                snprintf(p->targets + len, sizeof(p->targets) - len, "%s%s:%d", len ? " " : "", ip, port->valueint);
                p->n_targets++;
                if (!p->first_store[0])
                    snprintf(p->first_store, sizeof(p->first_store), "%s", json_str(store, "name", NULL) ? json_str(store, "name", NULL) : "");
            }
        }
    }
    return 0;
}

/* The client's namespace: the release's, or the first (by name) its namespaceSelector matches. */
static int client_namespace(char *out, size_t len, const cJSON *client, const char *release_ns, const cJSON *namespaces)
{
    const cJSON *ns_sel = json_get(client, "namespaceSelector", NULL);
    const cJSON *n;
    const char *best = NULL;
    if (!ns_sel) {
        snprintf(out, len, "%s", release_ns);
        return 0;
    }
    cJSON_ArrayForEach(n, namespaces) {
        const char *name = json_str(n, "metadata", "name", NULL);
        bool m = false;
        if (!name || labels_selector_match(&m, ns_sel, json_get(n, "metadata", "labels", NULL)) < 0)
            return mb_error_set(MB_EINVAL, "spec.membrane.clients[0].namespaceSelector is not a valid selector");
        if (m && (!best || strcmp(name, best) < 0))
            best = name;
    }
    if (!best)
        return mb_error_set(MB_ENOTFOUND, "no namespace matches spec.membrane.clients[0].namespaceSelector");
    snprintf(out, len, "%s", best);
    return 0;
}

/* Appends item to arr (a NULL item, a failed create, is a failure); false when either is NULL. */
static bool array_add(cJSON *arr, cJSON *item)
{
    if (!arr || !item) {
        cJSON_Delete(item);
        return false;
    }
    return cJSON_AddItemToArray(arr, item);
}

/* The probe Pod, or NULL when out of memory: every member is there, or no Pod at all. */
static cJSON *pod_body(const cJSON *release, const probe_plan *p, const cJSON *labels, const cJSON *probe)
{
    const char *rns = json_str(release, "metadata", "namespace", NULL);
    const char *rname = json_str(release, "metadata", "name", NULL);
    const char *uid = json_str(release, "metadata", "uid", NULL);
    const char *api_version = json_str(release, "apiVersion", NULL);
    char owner_label[300];
    cJSON *pod = cJSON_CreateObject();
    cJSON *meta = json_ensure_object(pod, "metadata", NULL);
    cJSON *ann = json_ensure_object(meta, "annotations", NULL);
    cJSON *spec = json_ensure_object(pod, "spec", NULL);
    cJSON *containers = cJSON_AddArrayToObject(spec, "containers");
    cJSON *ctr = cJSON_CreateObject();
    cJSON *cmd = NULL, *env = NULL, *e = NULL, *ref = NULL;
    bool ok;

    snprintf(owner_label, sizeof(owner_label), "%s", uid ? uid : rname);
    ok = array_add(containers, ctr) && (cmd = cJSON_AddArrayToObject(ctr, "command")) != NULL &&
         (env = cJSON_AddArrayToObject(ctr, "env")) != NULL && array_add(env, e = cJSON_CreateObject());
    ok = ok && meta && ann && json_set_str(pod, "apiVersion", "v1") == 0 && json_set_str(pod, "kind", "Pod") == 0 &&
         json_set_str(meta, "name", p->name) == 0 && json_set_str(meta, "namespace", p->ns) == 0 &&
         json_set_item(meta, "labels", cJSON_Duplicate(labels, true)) == 0 &&
         json_set_str(cJSON_GetObjectItemCaseSensitive(meta, "labels"), PROBE_LABEL, owner_label) == 0 &&
         json_set_str(ann, PROBE_TARGETS_ANNOTATION, p->targets) == 0;
    if (ok && strcmp(p->ns, rns) == 0)
        ok = array_add(cJSON_AddArrayToObject(meta, "ownerReferences"), ref = cJSON_CreateObject()) &&
             json_set_str(ref, "apiVersion", api_version ? api_version : "governance.kfm.dev/v1alpha1") == 0 &&
             json_set_str(ref, "kind", "GovernedAPIRelease") == 0 && json_set_str(ref, "name", rname) == 0 &&
             json_set_str(ref, "uid", uid ? uid : "") == 0;
    ok = ok && json_set_str(spec, "restartPolicy", "Never") == 0 &&
         cJSON_AddBoolToObject(spec, "automountServiceAccountToken", false) &&
         cJSON_AddNumberToObject(spec, "activeDeadlineSeconds", (double)json_int(30, probe, "timeoutSeconds", NULL)) &&
         json_set_str(ctr, "name", "probe") == 0 && json_set_str(ctr, "image", json_str(probe, "image", NULL)) == 0 &&
         array_add(cmd, cJSON_CreateString("sh")) && array_add(cmd, cJSON_CreateString("-c")) &&
         array_add(cmd, cJSON_CreateString(probe_script)) && json_set_str(e, "name", "TARGETS") == 0 &&
         json_set_str(e, "value", p->targets) == 0;
    if (!ok) {
        cJSON_Delete(pod);
        return NULL;
    }
    return pod;
}

/* Deletes probe pods this release left in ns (an earlier run that never finished). */
static void sweep(kube_client *c, const char *ns, const char *owner_label)
{
    cJSON *list = NULL;
    char sel[400];
    const cJSON *pod;
    snprintf(sel, sizeof(sel), "%s=%s", PROBE_LABEL, owner_label);
    kube_list_opts lo = {.label_selector = sel};
    if (kube_list(&list, c, &KUBE_PODS, ns, &lo) < 0)
        return;
    cJSON_ArrayForEach(pod, cJSON_GetObjectItem(list, "items")) {
        kube_delete_opts d = {.propagation_policy = "Background"};
        kube_delete(c, &KUBE_PODS, ns, json_str(pod, "metadata", "name", NULL), &d);
    }
    cJSON_Delete(list);
}

/* Judges the termination message: every target closed passes. */
static bool judge(char *msg, size_t len, const probe_plan *p, const char *report, const char *client_desc)
{
    size_t closed = 0;
    char *copy = strdup(report ? report : ""), *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "open ", 5) == 0) {
            snprintf(msg, len, "probe pod %s/%s with the client's labels (%s) opened a TCP connection to %s (store %s): "
                     "the stores are reachable around the governed API; deny that path with a NetworkPolicy",
                     p->ns, p->name, client_desc, line + 5, p->first_store);
            free(copy);
            return false;
        }
        if (strncmp(line, "closed ", 7) == 0)
            closed++;
    }
    free(copy);
    if (closed < p->n_targets) {
        snprintf(msg, len, "probe pod %s/%s reported %zu of %zu targets; the membrane cannot be shown intact",
                 p->ns, p->name, closed, p->n_targets);
        return false;
    }
    snprintf(msg, len, "probe pod %s/%s with the client's labels (%s) could not connect to any of %zu store targets",
             p->ns, p->name, client_desc, p->n_targets);
    return true;
}

int probe_membrane_check(cJSON **out, kube_client *client, const cJSON *release, const char *release_id)
{
    const cJSON *membrane = json_get(release, "spec", "membrane", NULL);
    const cJSON *probe = json_get(membrane, "probe", NULL);
    const cJSON *first_client = cJSON_GetArrayItem(json_get(membrane, "clients", NULL), 0);
    const cJSON *labels = json_get(first_client, "podSelector", "matchLabels", NULL);
    const char *rns = json_str(release, "metadata", "namespace", NULL);
    const char *rname = json_str(release, "metadata", "name", NULL);
    cJSON *pods = NULL, *namespaces = NULL, *body = NULL, *created = NULL, *r = NULL;
    probe_plan p = {0};
    char msg[MSG_MAX] = "", owner_label[300], client_desc[256] = "";
    bool passed = false, made = false;
    struct timespec t0;
    int err = 0;

    *out = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the probe label's value: the release's uid (a label value holds at most 63 characters) */
    snprintf(owner_label, sizeof(owner_label), "%s", json_str(release, "metadata", "uid", NULL) ? json_str(release, "metadata", "uid", NULL) : rname);
    if (!cJSON_IsObject(labels) || !labels->child) {
        snprintf(msg, sizeof(msg), "spec.membrane.clients[0].podSelector has no matchLabels for the probe pod to carry; add them");
        goto result;
    }
    const cJSON *l;
    cJSON_ArrayForEach(l, labels) {
        size_t n = strlen(client_desc);
        snprintf(client_desc + n, sizeof(client_desc) - n, "%s%s=%s", n ? "," : "", l->string, cJSON_IsString(l) ? l->valuestring : "");
    }
    if (kube_list(&pods, client, &KUBE_PODS, NULL, NULL) < 0 || kube_list(&namespaces, client, &KUBE_NAMESPACES, NULL, NULL) < 0) {
        snprintf(msg, sizeof(msg), "the Pods and Namespaces cannot be read for the probe: %s", mb_error_last());
        goto result;
    }
    if (find_targets(&p, membrane, rns, cJSON_GetObjectItem(pods, "items"), cJSON_GetObjectItem(namespaces, "items")) < 0 ||
        client_namespace(p.ns, sizeof(p.ns), first_client, rns, cJSON_GetObjectItem(namespaces, "items")) < 0) {
        snprintf(msg, sizeof(msg), "the probe cannot be planned: %s", mb_error_last());
        goto result;
    }
    if (p.n_targets == 0) {
        snprintf(msg, sizeof(msg), "no running store pod matches spec.membrane.stores, so there is nothing the probe can show closed");
        goto result;
    }
    snprintf(p.name, sizeof(p.name), "%.40s-probe-%s", rname, release_id);
    sweep(client, p.ns, owner_label);
    if (!(body = pod_body(release, &p, labels, probe))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    /* a pod of the same name may still be terminating after the sweep */
    for (int i = 0; i < 40; i++) {
        cJSON_Delete(created);
        created = NULL;
        err = kube_create(&created, client, &KUBE_PODS, p.ns, body);
        if (err != MB_EEXISTS)
            break;
        usleep(POLL_MS * 1000);
    }
    if (err < 0) {
        snprintf(msg, sizeof(msg), "the probe pod %s/%s cannot be created: %s", p.ns, p.name, mb_error_last());
        err = 0;
        goto result;
    }
    made = true;
    long long deadline_ms = (json_int(30, probe, "timeoutSeconds", NULL) + 5) * 1000LL;
    for (;;) {
        cJSON *pod = NULL;
        if (kube_get(&pod, client, &KUBE_PODS, p.ns, p.name) == 0) {
            const char *phase = json_str(pod, "status", "phase", NULL);
            if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0)) {
                const cJSON *cs = cJSON_GetArrayItem(json_get(pod, "status", "containerStatuses", NULL), 0);
                passed = judge(msg, sizeof(msg), &p, json_str(cs, "state", "terminated", "message", NULL), client_desc);
                cJSON_Delete(pod);
                break;
            }
        }
        cJSON_Delete(pod);
        if (ms_since(&t0) > deadline_ms) {
            snprintf(msg, sizeof(msg), "the probe pod %s/%s did not finish within %llds; the membrane cannot be shown intact",
                     p.ns, p.name, deadline_ms / 1000);
            break;
        }
        usleep(POLL_MS * 1000);
    }

result:
    r = cJSON_CreateObject();
    if (!r || !cJSON_AddStringToObject(r, "name", "membrane-probe") || !cJSON_AddBoolToObject(r, "passed", passed) ||
        !cJSON_AddNumberToObject(r, "latencyMs", (double)ms_since(&t0)) || !cJSON_AddStringToObject(r, "message", msg) ||
        (!passed && !cJSON_AddStringToObject(r, "trigger", "MembraneBreach"))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    *out = r;
    r = NULL;
done:
    if (made) {
        kube_delete_opts d = {.propagation_policy = "Background"};
        kube_delete(client, &KUBE_PODS, p.ns, p.name, &d);
    }
    cJSON_Delete(r);
    cJSON_Delete(created);
    cJSON_Delete(body);
    cJSON_Delete(pods);
    cJSON_Delete(namespaces);
    return err;
}
