/*
 * The pure parts of the membrane probe (probe.h): its script, reading a
 * report against the targets a pod was given, planning the pods from the
 * release and the live pods and namespaces (every clients entry, in every
 * namespace its selector matches, not a sample, times the pods it takes to
 * share out the targets), the Pod object, and judging a plan whose pods ran.
 * No I/O: probe.c runs the pods through the API.
 */
#include "verify/probe_private.h"
#include "util/error.h"
#include "util/json.h"
#include "verify/labels.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WAIT_MAX_SECONDS 3
#define ERRORS_LISTED 3
#define API_VERSION "governance.kfm.dev/v1alpha1"

/*
 * busybox's nc (and OpenBSD's) print why a connection failed only with -v;
 * without it a refusal and a bad option look alike (exit 1, or silence). A
 * connection counts as closed only when nc failed and said it was refused or
 * timed out (glibc's and musl's words, and OpenBSD nc's "timed out:
 * Operation now in progress"); anything else is an error with the first line
 * of what nc said, cut to PROBE_WHY_MAX characters (the 64 '?' below). Every
 * target is tried at once, so a pod takes about $WAIT seconds however many
 * targets it has; each verdict is one short write to a file opened for
 * appending, so lines never mix.
 */
static const char probe_script_text[] =
    "set -f\n"
    "exec >>\"${REPORT:-/dev/termination-log}\" || exit 1\n"
    "nl='\n'\n"
    "if ! command -v nc >/dev/null 2>&1; then\n"
    "    for t in $TARGETS; do printf 'error %s nc not found\\n' \"$t\"; done\n"
    "    exit 0\n"
    "fi\n"
    "for t in $TARGETS; do\n"
    "    (\n"
    "        out=$(nc -v -z -w \"${WAIT:-3}\" \"${t%:*}\" \"${t##*:}\" 2>&1 >/dev/null)\n"
    "        rc=$?\n"
    "        if [ \"$rc\" -eq 0 ]; then printf 'open %s\\n' \"$t\"; exit 0; fi\n"
    "        case $out in\n"
    "        *'Connection refused'*|*'Connection timed out'*|*'Operation timed out'*|"
    "*' timed out: Operation now in progress'*)\n"
    "            printf 'closed %s\\n' \"$t\"; exit 0;;\n"
    "        esac\n"
    "        why=${out%%\"$nl\"*}\n"
    "        [ -n \"$why\" ] || why='no message'\n"
    "        why=\"nc exited $rc: $why\"\n"
    "        rest=${why#????????????????????????????????????????????????????????????????}\n"
    "        [ \"$rest\" = \"$why\" ] || why=${why%\"$rest\"}\n"
    "        printf 'error %s %s\\n' \"$t\" \"$why\"\n"
    "    ) &\n"
    "done\n"
    "wait\n"
    "exit 0\n";

const char *probe_script(void)
{
    return probe_script_text;
}

/* ---- reports ---------------------------------------------------------------------- */

void probe_report_free(probe_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; r->whys && i < r->n; i++)
        free(r->whys[i]);
    free(r->whys);
    free(r->verdicts);
    free(r->stray);
    free(r);
}

static int report_stray(probe_report *r, const char *line, size_t len)
{
    if (r->stray)
        return 0;
    if (!(r->stray = strndup(line, len)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

/* One line (without its newline) of a report. */
static int report_line(probe_report *r, const char *const *addrs, const char *line, size_t len)
{
    static const struct {
        const char *word;
        probe_verdict v;
    } kinds[] = {{"open ", PROBE_OPEN}, {"closed ", PROBE_CLOSED}, {"error ", PROBE_ERROR}};
    const char *addr = NULL, *why = NULL;
    size_t addr_len = 0;
    probe_verdict v = PROBE_MISSING;

    if (len && line[len - 1] == '\r')
        len--;
    if (!len)
        return 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t wl = strlen(kinds[k].word);
        if (len > wl && strncmp(line, kinds[k].word, wl) == 0) {
            v = kinds[k].v;
            addr = line + wl;
            break;
        }
    }
    if (!addr)
        return report_stray(r, line, len);
    while (addr + addr_len < line + len && addr[addr_len] != ' ')
        addr_len++;
    if (addr + addr_len < line + len) {
        if (v != PROBE_ERROR)
            return report_stray(r, line, len);
        why = addr + addr_len + 1;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (strlen(addrs[i]) != addr_len || strncmp(addrs[i], addr, addr_len) != 0)
            continue;
        if (r->verdicts[i] != PROBE_MISSING) {
            int err = report_stray(r, line, len);
            if (err < 0 || v <= r->verdicts[i])
                return err;
        }
        r->verdicts[i] = v;
        free(r->whys[i]);
        r->whys[i] = NULL;
        if (v == PROBE_ERROR && !(r->whys[i] = why && why < line + len ? strndup(why, (size_t)(line + len - why))
                                                                       : strdup("(no reason given)")))
            return mb_error_set(MB_ENOMEM, "out of memory");
        return 0;
    }
    return report_stray(r, line, len);
}

int probe_report_parse(probe_report **out, const char *const *addrs, size_t n, const char *text)
{
    probe_report *r = NULL;
    const char *p = text ? text : "";
    int err = 0;

    *out = NULL;
    if (!(r = calloc(1, sizeof(*r))) ||
        (n && (!(r->verdicts = calloc(n, sizeof(*r->verdicts))) || !(r->whys = calloc(n, sizeof(*r->whys)))))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    r->n = n;
    r->truncated = strlen(p) >= PROBE_REPORT_MAX;
    while (*p) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if ((err = report_line(r, addrs, p, len)) < 0)
            goto done;
        p += len + (end ? 1 : 0);
    }
    *out = r;
    r = NULL;
done:
    probe_report_free(r);
    return err;
}

/* ---- the plan --------------------------------------------------------------------- */

void probe_plan_free(probe_plan *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_targets; i++) {
        free(p->targets[i].addr);
        free(p->targets[i].store);
        free(p->targets[i].pod);
    }
    free(p->targets);
    for (size_t i = 0; i < p->n_pods; i++) {
        free(p->pods[i].ns);
        free(p->pods[i].name);
        cJSON_Delete(p->pods[i].labels);
        free(p->pods[i].uid);
        free(p->pods[i].report);
        free(p->pods[i].detail);
    }
    free(p->pods);
    for (size_t i = 0; i < p->n_clients; i++)
        free(p->clients[i]);
    free(p->clients);
    free(p->ns);
    free(p->name);
    free(p->uid);
    free(p->api_version);
    free(p->image);
    free(p);
}

static const cJSON *items_of(const cJSON *list)
{
    return cJSON_IsObject(list) ? cJSON_GetObjectItemCaseSensitive(list, "items") : list;
}

static bool present(const cJSON *v)
{
    return v && !cJSON_IsNull(v);
}

int probe_dup_str(char **out, const char *s)
{
    if (!(*out = strdup(s ? s : "")))
        return mb_error_set(MB_ENOMEM, "out of memory");
    return 0;
}

/* A printf into a new string. */
int probe_dup_printf(char **out, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vasprintf(out, fmt, ap);
    va_end(ap);
    if (n < 0) {
        *out = NULL;
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    return 0;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    void *g = realloc(*arr, nc * size);
    if (!g)
        return mb_error_set(MB_ENOMEM, "out of memory");
    memset((char *)g + *cap * size, 0, (nc - *cap) * size);
    *arr = g;
    *cap = nc;
    return 0;
}

/* The labels of namespace name in the list: *found false when the list does not hold it. */
static const cJSON *namespace_labels(const cJSON *namespaces, const char *name, bool *found)
{
    const cJSON *n;
    *found = false;
    cJSON_ArrayForEach(n, items_of(namespaces)) {
        const char *nn = json_str(n, "metadata", "name", NULL);
        if (nn && strcmp(nn, name) == 0) {
            *found = true;
            return json_get(n, "metadata", "labels", NULL);
        }
    }
    return NULL;
}

static bool pod_is_live(const cJSON *pod)
{
    const char *phase = json_str(pod, "status", "phase", NULL);
    return !phase || (strcmp(phase, "Succeeded") != 0 && strcmp(phase, "Failed") != 0);
}

/* Adds every port of one store pod as a target, once per address. */
static int targets_add_pod(probe_plan *p, size_t *cap, const cJSON *ports, const char *store, const char *ns,
                           const char *name, const char *ip)
{
    const cJSON *port;
    int err = 0;
    cJSON_ArrayForEach(port, ports) {
        char addr[128];
        bool seen = false;
        snprintf(addr, sizeof(addr), "%s:%d", ip, port->valueint);
        for (size_t i = 0; i < p->n_targets && !seen; i++)
            seen = strcmp(p->targets[i].addr, addr) == 0;
        if (seen)
            continue;
        if ((err = grow((void **)&p->targets, cap, p->n_targets, sizeof(*p->targets))) < 0)
            return err;
        probe_target *t = &p->targets[p->n_targets++];
        if ((err = probe_dup_str(&t->addr, addr)) < 0 || (err = probe_dup_str(&t->store, store)) < 0 ||
            (err = probe_dup_printf(&t->pod, "%s/%s", ns, name)) < 0)
            return err;
    }
    return 0;
}

/* Targets: every live store pod's IP and every port of its store. */
static int targets_find(probe_plan *p, const cJSON *membrane, const cJSON *pods, const cJSON *namespaces)
{
    const cJSON *store, *pod, *port;
    labels_selector *psel = NULL, *nsel = NULL;
    size_t cap = 0;
    int idx = 0, err = 0;
    char where[96];

    if (!cJSON_IsArray(json_get(membrane, "stores", NULL)) || !cJSON_GetArraySize(json_get(membrane, "stores", NULL)))
        return mb_error_set(MB_EINVAL, "spec.membrane.stores must list at least one store for the probe to try");
    cJSON_ArrayForEach(store, json_get(membrane, "stores", NULL)) {
        const char *name = json_str(store, "name", NULL);
        const cJSON *ports = json_get(store, "ports", NULL);
        size_t hits = 0;
        if (!name || !*name) {
            err = mb_error_set(MB_EINVAL, "spec.membrane.stores[%d].name must be a non-empty string", idx);
            goto done;
        }
        if (!present(json_get(store, "podSelector", NULL))) {
            err = mb_error_set(MB_EINVAL,
                               "spec.membrane.stores[%d] (%s) has no podSelector; give the labels of the "
                               "store's pods",
                               idx, name);
            goto done;
        }
        if (!cJSON_IsArray(ports) || !cJSON_GetArraySize(ports)) {
            err = mb_error_set(MB_EINVAL, "spec.membrane.stores[%d] (%s) has no ports; list the store's port numbers",
                               idx, name);
            goto done;
        }
        cJSON_ArrayForEach(port, ports) {
            if (!cJSON_IsNumber(port) || !(port->valuedouble >= 1 && port->valuedouble <= 65535) ||
                port->valuedouble != (double)port->valueint) {
                err = mb_error_set(MB_EINVAL,
                                   "spec.membrane.stores[%d].ports holds something that is not a port "
                                   "number 1-65535; list the store's TCP ports",
                                   idx);
                goto done;
            }
        }
        snprintf(where, sizeof(where), "spec.membrane.stores[%d].podSelector", idx);
        if ((err = labels_selector_parse(&psel, json_get(store, "podSelector", NULL), where)) < 0)
            goto done;
        snprintf(where, sizeof(where), "spec.membrane.stores[%d].namespaceSelector", idx);
        if (present(json_get(store, "namespaceSelector", NULL)) &&
            (err = labels_selector_parse(&nsel, json_get(store, "namespaceSelector", NULL), where)) < 0)
            goto done;
        cJSON_ArrayForEach(pod, items_of(pods)) {
            const char *ns = json_str(pod, "metadata", "namespace", NULL);
            const char *pname = json_str(pod, "metadata", "name", NULL);
            const char *ip = json_str(pod, "status", "podIP", NULL);
            const cJSON *labels = json_get(pod, "metadata", "labels", NULL);
            bool found = true;
            if (!ns || !pname || !pod_is_live(pod) || cJSON_GetObjectItemCaseSensitive(labels, PROBE_LABEL) ||
                !labels_selector_matches(psel, labels))
                continue;
            if (nsel ? !labels_selector_matches(nsel, namespace_labels(namespaces, ns, &found))
                     : strcmp(ns, p->ns) != 0) {
                if (!found) {
                    err = mb_error_set(MB_ENOTFOUND,
                                       "the namespace %s of pod %s/%s is not among the namespaces read, "
                                       "so whether it is a store pod is unknown; the check runs again",
                                       ns, ns, pname);
                    goto done;
                }
                continue;
            }
            hits++;
            if (!ip || !*ip) {
                err = mb_error_set(MB_ENOTFOUND,
                                   "store pod %s/%s (store %s) has no IP yet, so the probe cannot try "
                                   "it; the check passes only once every store pod is running",
                                   ns, pname, name);
                goto done;
            }
            if ((err = targets_add_pod(p, &cap, ports, name, ns, pname, ip)) < 0)
                goto done;
        }
        if (!hits) {
            err = mb_error_set(MB_ENOTFOUND,
                               "spec.membrane.stores[%d] (%s) matches no live pod, so the probe has "
                               "nothing of it to try; run the store, or correct its selectors",
                               idx, name);
            goto done;
        }
        labels_selector_free(psel);
        labels_selector_free(nsel);
        psel = nsel = NULL;
        idx++;
    }
done:
    labels_selector_free(psel);
    labels_selector_free(nsel);
    return err;
}

/* The worst-case report line of a target: "error <addr> <why>\n". */
static size_t line_max(const probe_target *t)
{
    return strlen("error ") + strlen(t->addr) + 1 + PROBE_WHY_MAX + 1;
}

/* Adds the pods of clients[ci] in namespace ns: one per share of the targets. */
static int pods_add(probe_plan *p, size_t *cap, size_t ci, const cJSON *labels, const char *ns, const char *release_id)
{
    size_t first = 0, share = 0;
    int err = 0;
    while (first < p->n_targets) {
        size_t count = 0, bytes = 0;
        while (first + count < p->n_targets &&
               (count == 0 || bytes + line_max(&p->targets[first + count]) <= PROBE_REPORT_BUDGET))
            bytes += line_max(&p->targets[first + count++]);
        if ((err = grow((void **)&p->pods, cap, p->n_pods, sizeof(*p->pods))) < 0)
            return err;
        probe_pod *pod = &p->pods[p->n_pods++];
        pod->client = ci;
        pod->first = first;
        pod->count = count;
        if ((err = probe_dup_str(&pod->ns, ns)) < 0 ||
            (err = probe_dup_printf(&pod->name, "%.40s-probe-%s-%zu-%zu", p->name, release_id, ci, share)) < 0)
            return err;
        if (!(pod->labels = cJSON_Duplicate(labels, true)) ||
            json_set_str(pod->labels, PROBE_LABEL, p->uid[0] ? p->uid : p->name) < 0)
            return mb_error_set(MB_ENOMEM, "out of memory");
        first += count;
        share++;
    }
    return 0;
}

/* The pods of every clients entry, in every namespace it selects. */
static int clients_plan(probe_plan *p, const cJSON *membrane, const cJSON *namespaces, const char *release_id)
{
    const cJSON *clients = json_get(membrane, "clients", NULL), *entry, *n;
    const cJSON every = {.type = cJSON_Object};
    labels_selector *psel = NULL, *nsel = NULL;
    cJSON *labels = NULL;
    size_t cap = 0, ci = 0;
    int err = 0;
    char where[96], why[512];

    if (!cJSON_IsArray(clients) || !cJSON_GetArraySize(clients))
        return mb_error_set(MB_EINVAL,
                            "spec.membrane.clients must list at least one entry for the probe to stand in for");
    if (!(p->clients = calloc((size_t)cJSON_GetArraySize(clients), sizeof(*p->clients))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(entry, clients) {
        const cJSON *ps = json_get(entry, "podSelector", NULL), *ns = json_get(entry, "namespaceSelector", NULL);
        size_t placed = 0;
        snprintf(where, sizeof(where), "spec.membrane.clients[%zu].podSelector", ci);
        /* no podSelector: every pod of the namespaces, as the NetworkPolicy check reads it */
        if ((err = labels_selector_parse(&psel, present(ps) ? ps : &every, where)) < 0)
            goto done;
        snprintf(where, sizeof(where), "spec.membrane.clients[%zu].namespaceSelector", ci);
        if (present(ns) && (err = labels_selector_parse(&nsel, ns, where)) < 0)
            goto done;
        err = probe_dup_printf(&p->clients[ci], "clients[%zu] (%s in %s %s)", ci,
                               labels_selector_is_everything(psel) ? "every pod" : labels_selector_string(psel),
                               nsel ? "namespaces" : "namespace", nsel ? labels_selector_string(nsel) : p->ns);
        p->n_clients++;
        if (err < 0)
            goto done;
        if ((err = labels_selector_example(&labels, psel)) < 0) {
            if (err == MB_EINVAL) {
                snprintf(why, sizeof(why), "%s", mb_error_last());
                err = mb_error_set(MB_EINVAL,
                                   "spec.membrane.clients[%zu].podSelector: %s, so no probe pod can carry "
                                   "the labels of that entry; correct the selector",
                                   ci, why);
            }
            goto done;
        }
        if (!nsel) {
            if ((err = pods_add(p, &cap, ci, labels, p->ns, release_id)) < 0)
                goto done;
            placed++;
        }
        const cJSON *nss = nsel ? items_of(namespaces) : NULL;
        cJSON_ArrayForEach(n, nss) {
            const char *name = json_str(n, "metadata", "name", NULL);
            if (!name || !labels_selector_matches(nsel, json_get(n, "metadata", "labels", NULL)))
                continue;
            if ((err = pods_add(p, &cap, ci, labels, name, release_id)) < 0)
                goto done;
            placed++;
        }
        if (!placed) {
            err = mb_error_set(MB_EINVAL,
                               "spec.membrane.clients[%zu].namespaceSelector (%s) matches no namespace, so there is "
                               "nowhere to probe from; correct the selector",
                               ci, labels_selector_string(nsel));
            goto done;
        }
        cJSON_Delete(labels);
        labels_selector_free(psel);
        labels_selector_free(nsel);
        labels = NULL;
        psel = nsel = NULL;
        ci++;
    }
done:
    cJSON_Delete(labels);
    labels_selector_free(psel);
    labels_selector_free(nsel);
    return err;
}

int probe_plan_build(probe_plan **out, const verify_owner *owner, const cJSON *membrane, const char *release_id,
                     const cJSON *pods, const cJSON *namespaces)
{
    const cJSON *probe = json_get(membrane, "probe", NULL);
    const char *image = json_str(probe, "image", NULL);
    probe_plan *p = NULL;
    int err = 0;

    *out = NULL;
    if (!image || !*image)
        return mb_error_set(MB_EINVAL, "spec.membrane.probe.image must name the probe image, pinned by digest");
    if (!(p = calloc(1, sizeof(*p)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    p->timeout_seconds = json_int(30, probe, "timeoutSeconds", NULL);
    if (p->timeout_seconds < 1)
        p->timeout_seconds = 1;
    p->wait_seconds = p->timeout_seconds / 2 > WAIT_MAX_SECONDS ? WAIT_MAX_SECONDS : p->timeout_seconds / 2;
    if (p->wait_seconds < 1)
        p->wait_seconds = 1;
    if ((err = probe_dup_str(&p->ns, owner->namespace)) < 0 || (err = probe_dup_str(&p->name, owner->name)) < 0 ||
        (err = probe_dup_str(&p->uid, owner->uid)) < 0 ||
        (err = probe_dup_str(&p->api_version, owner->api_version)) < 0 || (err = probe_dup_str(&p->image, image)) < 0)
        goto done;
    if ((err = targets_find(p, membrane, pods, namespaces)) < 0 ||
        (err = clients_plan(p, membrane, namespaces, release_id ? release_id : "")) < 0)
        goto done;
    *out = p;
    p = NULL;
done:
    probe_plan_free(p);
    return err;
}

/* ---- the Pod ---------------------------------------------------------------------- */

/* Appends item to arr (a NULL item, a failed create, is a failure); false when either is NULL. */
static bool array_add(cJSON *arr, cJSON *item)
{
    if (!arr || !item) {
        cJSON_Delete(item);
        return false;
    }
    return cJSON_AddItemToArray(arr, item);
}

static bool env_add(cJSON *env, const char *name, const char *value)
{
    cJSON *e = cJSON_CreateObject();
    return array_add(env, e) && json_set_str(e, "name", name) == 0 && json_set_str(e, "value", value) == 0;
}

/*
 * The container's bounds and privileges, as the admission policy for
 * membrane's pods (manifests/probe) asks of every pod membrane creates:
 * requests and limits set, not privileged, no privilege escalation, every
 * capability dropped (a TCP connect needs none).
 */
static bool container_harden(cJSON *ctr)
{
    cJSON *lim = json_ensure_object(ctr, "resources", "limits", NULL);
    cJSON *req = json_ensure_object(ctr, "resources", "requests", NULL);
    cJSON *sc = json_ensure_object(ctr, "securityContext", NULL);
    cJSON *caps = sc ? json_ensure_object(sc, "capabilities", NULL) : NULL;
    cJSON *drop = caps ? cJSON_AddArrayToObject(caps, "drop") : NULL;
    return lim && req && drop && json_set_str(lim, "cpu", PROBE_CPU) == 0 &&
           json_set_str(lim, "memory", PROBE_MEMORY) == 0 && json_set_str(req, "cpu", PROBE_CPU) == 0 &&
           json_set_str(req, "memory", PROBE_MEMORY) == 0 && cJSON_AddBoolToObject(sc, "privileged", false) &&
           cJSON_AddBoolToObject(sc, "allowPrivilegeEscalation", false) && array_add(drop, cJSON_CreateString("ALL"));
}

int probe_pod_manifest(cJSON **out, const probe_plan *plan, size_t i)
{
    const probe_pod *pp = &plan->pods[i];
    cJSON *pod = cJSON_CreateObject();
    cJSON *meta = json_ensure_object(pod, "metadata", NULL);
    cJSON *ann = json_ensure_object(meta, "annotations", NULL);
    cJSON *spec = json_ensure_object(pod, "spec", NULL);
    cJSON *containers = cJSON_AddArrayToObject(spec, "containers");
    cJSON *ctr = NULL, *cmd = NULL, *env = NULL, *ref = NULL;
    char *targets = NULL, wait[24];
    size_t len = 0;
    bool ok = array_add(containers, ctr = cJSON_CreateObject()); /* ctr is the pod's, or freed */

    *out = NULL;
    for (size_t t = 0; t < pp->count; t++)
        len += strlen(plan->targets[pp->first + t].addr) + 1;
    if ((targets = calloc(1, len + 1)))
        for (size_t t = 0; t < pp->count; t++)
            strcat(strcat(targets, t ? " " : ""), plan->targets[pp->first + t].addr);
    snprintf(wait, sizeof(wait), "%ld", plan->wait_seconds);
    ok = ok && targets && (cmd = cJSON_AddArrayToObject(ctr, "command")) != NULL &&
         (env = cJSON_AddArrayToObject(ctr, "env")) != NULL;
    ok = ok && meta && ann && json_set_str(pod, "apiVersion", "v1") == 0 && json_set_str(pod, "kind", "Pod") == 0 &&
         json_set_str(meta, "name", pp->name) == 0 && json_set_str(meta, "namespace", pp->ns) == 0 &&
         json_set_item(meta, "labels", cJSON_Duplicate(pp->labels, true)) == 0 &&
         json_set_str(ann, PROBE_TARGETS_ANNOTATION, targets) == 0;
    if (ok && strcmp(pp->ns, plan->ns) == 0)
        ok = array_add(cJSON_AddArrayToObject(meta, "ownerReferences"), ref = cJSON_CreateObject()) &&
             json_set_str(ref, "apiVersion", plan->api_version[0] ? plan->api_version : API_VERSION) == 0 &&
             json_set_str(ref, "kind", "GovernedAPIRelease") == 0 && json_set_str(ref, "name", plan->name) == 0 &&
             json_set_str(ref, "uid", plan->uid) == 0 &&
             /* the release controls it: no ReplicaSet whose selector its client labels satisfy adopts it */
             cJSON_AddBoolToObject(ref, "controller", true);
    ok = ok && json_set_str(spec, "restartPolicy", "Never") == 0 &&
         cJSON_AddBoolToObject(spec, "automountServiceAccountToken", false) &&
         cJSON_AddNumberToObject(spec, "activeDeadlineSeconds", (double)plan->timeout_seconds) &&
         json_set_str(ctr, "name", "probe") == 0 && json_set_str(ctr, "image", plan->image) == 0 &&
         json_set_str(ctr, "terminationMessagePath", "/dev/termination-log") == 0 &&
         json_set_str(ctr, "terminationMessagePolicy", "File") == 0 && array_add(cmd, cJSON_CreateString("sh")) &&
         array_add(cmd, cJSON_CreateString("-c")) && array_add(cmd, cJSON_CreateString(probe_script())) &&
         env_add(env, "TARGETS", targets) && env_add(env, "WAIT", wait) &&
         env_add(env, "REPORT", "/dev/termination-log") && container_harden(ctr);
    free(targets);
    if (!ok) {
        cJSON_Delete(pod);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    *out = pod;
    return 0;
}

/* ---- judging ---------------------------------------------------------------------- */

typedef struct {
    FILE *f;
    size_t problems; /* clauses found */
    bool tool;       /* an error verdict: the image's nc is the likely fix */
} judge_state;

/* Starts the next problem clause (only the first ERRORS_LISTED are written); false when it is not written. */
static bool problem(judge_state *js, const probe_plan *plan, const probe_pod *pp)
{
    if (js->problems++ >= ERRORS_LISTED)
        return false;
    fprintf(js->f, "%sprobe pod %s/%s (%s) ", js->problems > 1 ? "; " : "", pp->ns, pp->name,
            plan->clients[pp->client]);
    return true;
}

/* The problems of one ended pod: errors, missing verdicts, a cut report, stray lines, no success. */
static void judge_report(judge_state *js, const probe_plan *plan, const probe_pod *pp, const probe_report *r,
                         size_t *opens, size_t *open_pod, size_t *open_target)
{
    size_t errors = 0, missing = 0, first_error = 0, first_missing = 0;
    for (size_t t = 0; t < r->n; t++) {
        if (r->verdicts[t] == PROBE_OPEN && !(*opens)++) {
            *open_pod = (size_t)(pp - plan->pods);
            *open_target = pp->first + t;
        }
        if (r->verdicts[t] == PROBE_ERROR && !errors++)
            first_error = t;
        if (r->verdicts[t] == PROBE_MISSING && !missing++)
            first_missing = t;
    }
    if (errors) {
        const probe_target *t = &plan->targets[pp->first + first_error];
        js->tool = true;
        if (problem(js, plan, pp)) {
            fprintf(js->f, "could not try %s (store %s, pod %s): %s", t->addr, t->store, t->pod, r->whys[first_error]);
            if (errors > 1)
                fprintf(js->f, " (and %zu more of its targets)", errors - 1);
        }
    }
    if (missing && problem(js, plan, pp)) {
        const probe_target *t = &plan->targets[pp->first + first_missing];
        fprintf(js->f, "gave no verdict for %zu of its %zu targets, the first %s (store %s, pod %s)", missing, r->n,
                t->addr, t->store, t->pod);
    }
    if (r->truncated && problem(js, plan, pp))
        fprintf(js->f, "wrote a report that fills the termination message (%d bytes), so it may be cut",
                PROBE_REPORT_MAX);
    if (r->stray && problem(js, plan, pp))
        fprintf(js->f, "wrote a line that is not the one verdict of a target it was given: \"%.80s\"", r->stray);
    if (pp->detail && problem(js, plan, pp))
        fprintf(js->f, "did not succeed: %s", pp->detail);
}

int probe_plan_judge(bool *passed, char **message, const probe_plan *plan)
{
    judge_state js = {0};
    char *buf = NULL, *problems_buf = NULL;
    size_t len = 0, plen = 0, opens = 0, open_pod = 0, open_target = 0;
    probe_report *r = NULL;
    const char **addrs = NULL;
    FILE *f = NULL;
    int err = 0;

    *passed = false;
    *message = NULL;
    if (!(js.f = open_memstream(&problems_buf, &plen))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < plan->n_pods; i++) {
        const probe_pod *pp = &plan->pods[i];
        switch (pp->state) {
        case PROBE_POD_PLANNED:
            if (problem(&js, plan, pp))
                fputs("was never created", js.f);
            continue;
        case PROBE_POD_UNRUN:
            if (problem(&js, plan, pp))
                fprintf(js.f, "could not run: %s", pp->detail ? pp->detail : "no reason known");
            continue;
        case PROBE_POD_RUNNING:
        case PROBE_POD_TIMEOUT:
            if (problem(&js, plan, pp)) {
                fprintf(js.f, "did not finish within %lds", plan->timeout_seconds);
                if (pp->detail)
                    fprintf(js.f, " (%s)", pp->detail);
            }
            continue;
        case PROBE_POD_ENDED: break;
        }
        free(addrs);
        if (!(addrs = calloc(pp->count ? pp->count : 1, sizeof(*addrs)))) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t t = 0; t < pp->count; t++)
            addrs[t] = plan->targets[pp->first + t].addr;
        probe_report_free(r);
        r = NULL;
        if ((err = probe_report_parse(&r, addrs, pp->count, pp->report)) < 0)
            goto done;
        judge_report(&js, plan, pp, r, &opens, &open_pod, &open_target);
    }
    if (js.problems > ERRORS_LISTED)
        fprintf(js.f, "; and %zu more", js.problems - ERRORS_LISTED);
    if (fclose(js.f) != 0 || !problems_buf) {
        js.f = NULL;
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    js.f = NULL;
    if (!(f = open_memstream(&buf, &len))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (opens) {
        const probe_pod *pp = &plan->pods[open_pod];
        const probe_target *t = &plan->targets[open_target];
        fprintf(f, "probe pod %s/%s with the labels of %s opened a TCP connection to %s (store %s, pod %s)", pp->ns,
                pp->name, plan->clients[pp->client], t->addr, t->store, t->pod);
        if (opens > 1)
            fprintf(f, ", and %zu more connections opened", opens - 1);
        fputs(": the stores are reachable around the governed API; deny that path with a NetworkPolicy", f);
        if (js.problems)
            fprintf(f, " (besides: %s)", problems_buf);
    } else if (js.problems) {
        fprintf(f, "the membrane cannot be shown intact: %s", problems_buf);
        if (js.tool)
            fputs(". The probe image (spec.membrane.probe.image) needs a POSIX shell and an nc that takes -v -z -w, "
                  "as busybox's does; an error is anything but a refused or timed-out connection",
                  f);
    } else {
        fprintf(f, "%zu probe pod%s with the labels of", plan->n_pods, plan->n_pods == 1 ? "" : "s");
        for (size_t c = 0; c < plan->n_clients; c++)
            fprintf(f, "%s %s", c ? (c + 1 == plan->n_clients ? " and" : ",") : "", plan->clients[c]);
        fprintf(f, " could not connect to any of %zu store targets: every verdict closed", plan->n_targets);
        *passed = true;
    }
    if (fclose(f) != 0 || !buf) {
        f = NULL;
        *passed = false;
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    f = NULL;
    *message = buf;
    buf = NULL;
done:
    if (js.f)
        fclose(js.f);
    if (f)
        fclose(f);
    free(buf);
    free(problems_buf);
    free(addrs);
    probe_report_free(r);
    if (err < 0)
        *passed = false;
    return err;
}
