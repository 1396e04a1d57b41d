/*
 * The membrane-networkpolicy check: from spec.membrane it selects the live
 * client pods and the store pods, stands hypothetical pods (labels only) in
 * for an entry no live pod matches, asks the NetworkPolicy evaluator about
 * every client pod x store pod x store port (TCP), and turns the outcome into
 * a pass/fail with one sentence a person can act on. Pods are sorted (live
 * ones first, then by namespace/name), so the same cluster always yields the
 * same message.
 * The decisions about empty entries are in netpol.h.
 */
#include "verify/netpol.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A clients[] or stores[] entry. */
typedef struct {
    labels_selector *pods; /* NULL: every pod of the selected namespaces */
    labels_selector *nss;  /* NULL: the release namespace */
    const char *name;      /* stores: spec name, or NULL */
    int *ports;            /* stores */
    size_t n_ports;
} member_entry;

/*
 * A pod the check evaluates: a live pod, or a hypothetical one standing for an
 * entry that no live pod matches. A hypothetical pod is a pod object with
 * metadata only (namespace, labels, and for a name its labels between angle
 * brackets, "<app=kfm-ui>", which no real pod name can be).
 */
typedef struct {
    const cJSON *pod;
    const char *ns;
    const char *name;
    cJSON *own; /* a hypothetical pod: the object, owned; NULL for a live pod */
} check_pod;

/* A pod that matched an entry, or stands for it. */
typedef struct {
    size_t pod; /* index in check_state.pods */
    size_t entry;
    bool hypothetical;
    const char *ns, *name; /* the pod's, for sorting */
} member;

typedef struct {
    member *m;
    size_t n, cap;
} member_list;

typedef struct {
    member_entry *clients;
    size_t n_clients;
    member_entry *stores;
    size_t n_stores;
    check_pod *pods; /* the live pods (the first n_live), then the hypothetical ones */
    size_t n_pods, cap_pods, n_live;
    member_list cpods, spods;
    char *problem; /* the first entry that neither a live nor a hypothetical pod can stand for; owned */
} check_state;

static bool present(const cJSON *v)
{
    return v && !cJSON_IsNull(v);
}

static void entries_free(member_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        labels_selector_free(e[i].pods);
        labels_selector_free(e[i].nss);
        free(e[i].ports);
    }
    free(e);
}

static int entry_parse(member_entry *e, const cJSON *obj, const char *list, int idx, bool store)
{
    char where[128];
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(obj, "podSelector");
    const cJSON *nss = cJSON_GetObjectItemCaseSensitive(obj, "namespaceSelector");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    const cJSON *ports = cJSON_GetObjectItemCaseSensitive(obj, "ports");
    const cJSON *p;
    int err;

    if (!cJSON_IsObject(obj))
        return mb_error_set(MB_EINVAL, "spec.membrane.%s[%d] is not an object", list, idx);
    if (store) {
        if (present(name) && (!cJSON_IsString(name) || !name->valuestring[0]))
            return mb_error_set(MB_EINVAL, "spec.membrane.stores[%d].name must be a non-empty string", idx);
        e->name = present(name) ? name->valuestring : NULL;
        if (!present(pods))
            return mb_error_set(MB_EINVAL,
                                "spec.membrane.stores[%d] has no podSelector; give the labels of the store's pods",
                                idx);
        if (!cJSON_IsArray(ports) || cJSON_GetArraySize(ports) == 0)
            return mb_error_set(MB_EINVAL, "spec.membrane.stores[%d] has no ports; list the store's port numbers", idx);
        if (!(e->ports = calloc((size_t)cJSON_GetArraySize(ports), sizeof(*e->ports))))
            return mb_error_set(MB_ENOMEM, "out of memory");
        cJSON_ArrayForEach(p, ports) {
            if (!cJSON_IsNumber(p) || !(p->valuedouble >= 1 && p->valuedouble <= 65535) ||
                p->valuedouble != (double)(int)p->valuedouble)
                return mb_error_set(MB_EINVAL, "spec.membrane.stores[%d].ports[%zu] is not a port number 1-65535", idx,
                                    e->n_ports);
            e->ports[e->n_ports++] = p->valueint;
        }
    } else if (!present(pods) && !present(nss)) {
        return mb_error_set(MB_EINVAL,
                            "spec.membrane.clients[%d] has neither podSelector nor namespaceSelector; say which pods "
                            "must not reach the stores",
                            idx);
    }
    if (present(pods)) {
        snprintf(where, sizeof(where), "spec.membrane.%s[%d].podSelector", list, idx);
        if ((err = labels_selector_parse(&e->pods, pods, where)) < 0)
            return err;
    }
    if (present(nss)) {
        snprintf(where, sizeof(where), "spec.membrane.%s[%d].namespaceSelector", list, idx);
        if ((err = labels_selector_parse(&e->nss, nss, where)) < 0)
            return err;
    }
    return 0;
}

static int entries_parse(member_entry **out, size_t *n_out, const cJSON *membrane, const char *list, bool store)
{
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(membrane, list);
    const cJSON *item;
    member_entry *e = NULL;
    size_t n = 0;
    int err = 0;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return mb_error_set(MB_EINVAL, "spec.membrane.%s must list at least one entry; %s", list,
                            store ? "name the stores the clients must not reach"
                                  : "name the pods that must not reach the stores");
    if (!(e = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*e))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(item, arr) {
        if ((err = entry_parse(&e[n], item, list, (int)n, store)) < 0) {
            entries_free(e, n + 1);
            return err;
        }
        n++;
    }
    *out = e;
    *n_out = n;
    return 0;
}

/* The podSelector of an entry for messages: "app=kfm-ui", or "every pod" for none or {}. */
static const char *entry_pods(const member_entry *e)
{
    return e->pods && !labels_selector_is_everything(e->pods) ? labels_selector_string(e->pods) : "every pod";
}

/* "app=kfm-ui in namespace kfm", "every pod in namespaces env=prod". */
static void entry_describe(FILE *f, const member_entry *e, const char *release_ns)
{
    fputs(entry_pods(e), f);
    if (e->nss)
        fprintf(f, " in namespaces %s", labels_selector_string(e->nss));
    else
        fprintf(f, " in namespace %s", release_ns);
}

static int entry_matches(bool *out, const netpol_world *w, const member_entry *e, const check_pod *p,
                         const char *release_ns)
{
    const cJSON *labels = json_get(p->pod, "metadata", "labels", NULL);
    *out = false;
    if (e->pods && !labels_selector_matches(e->pods, labels))
        return 0;
    if (!e->nss) {
        *out = strcmp(p->ns, release_ns) == 0;
        return 0;
    }
    return netpol_namespace_selected(out, w, e->nss, p->ns);
}

static int pod_cmp(const void *a, const void *b)
{
    const check_pod *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int pod_ptr_cmp(const void *a, const void *b)
{
    return pod_cmp(*(const check_pod *const *)a, *(const check_pod *const *)b);
}

static bool pod_same(const member *x, const member *y)
{
    return strcmp(x->ns, y->ns) == 0 && strcmp(x->name, y->name) == 0;
}

/* Live pods first (a breach is named through a live pod when one is the first allowed), then by namespace/name. */
static int member_cmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    int c = (int)x->hypothetical - (int)y->hypothetical;
    if (c || (c = strcmp(x->ns, y->ns)) || (c = strcmp(x->name, y->name)))
        return c;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

static int member_push(member_list *ml, const check_state *st, size_t pod, size_t entry)
{
    if (ml->n == ml->cap) {
        size_t cap = ml->cap ? ml->cap * 2 : 16;
        member *grown = realloc(ml->m, cap * sizeof(*grown));
        if (!grown)
            return mb_error_set(MB_ENOMEM, "out of memory");
        ml->m = grown;
        ml->cap = cap;
    }
    ml->m[ml->n++] = (member){.pod = pod,
                              .entry = entry,
                              .hypothetical = st->pods[pod].own != NULL,
                              .ns = st->pods[pod].ns,
                              .name = st->pods[pod].name};
    return 0;
}

/* Live pods: every pod not in phase Succeeded or Failed, sorted by namespace/name. */
static int live_collect(check_state *st, const cJSON *pods)
{
    const cJSON *arr = cJSON_IsObject(pods) ? cJSON_GetObjectItemCaseSensitive(pods, "items") : pods;
    const cJSON *p;
    int idx = 0;

    if (!cJSON_IsArray(arr))
        return mb_error_set(MB_EINVAL, "the pods must be a list (or a PodList with items)");
    if (cJSON_GetArraySize(arr) == 0)
        return 0;
    if (!(st->pods = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*st->pods))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    st->cap_pods = (size_t)cJSON_GetArraySize(arr);
    cJSON_ArrayForEach(p, arr) {
        const char *phase = json_str(p, "status", "phase", NULL);
        check_pod *lp = &st->pods[st->n_pods];
        lp->pod = p;
        lp->ns = json_str(p, "metadata", "namespace", NULL);
        lp->name = json_str(p, "metadata", "name", NULL);
        if (!lp->ns || !lp->name)
            return mb_error_set(MB_EINVAL, "pod #%d has no metadata.namespace or metadata.name", idx);
        idx++;
        if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
            continue;
        st->n_pods++;
    }
    qsort(st->pods, st->n_pods, sizeof(*st->pods), pod_cmp);
    st->n_live = st->n_pods;
    return 0;
}

/* "<app=kfm-ui,tier=web>", or "<no labels>": a hypothetical pod's name is its labels. */
static int hypothetical_name(char **out, const cJSON *labels)
{
    const cJSON *l;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    *out = NULL;
    if (!f)
        return mb_error_set(MB_ENOMEM, "out of memory");
    fputc('<', f);
    cJSON_ArrayForEach(l, labels) {
        fprintf(f, "%s%s=%s", l == labels->child ? "" : ",", l->string, l->valuestring);
    }
    fputs(labels->child ? ">" : "no labels>", f);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    *out = buf;
    return 0;
}

/* Adds a hypothetical pod with these labels in namespace ns, standing for entry. */
static int hypothetical_add(check_state *st, member_list *ml, size_t entry, const char *ns, const cJSON *labels)
{
    cJSON *pod = NULL, *meta = NULL, *copy = NULL;
    char *name = NULL;
    int err = 0;

    if ((err = hypothetical_name(&name, labels)) < 0)
        goto done;
    if (!(pod = cJSON_CreateObject()) || !(meta = cJSON_AddObjectToObject(pod, "metadata")) ||
        !cJSON_AddStringToObject(meta, "name", name) || !cJSON_AddStringToObject(meta, "namespace", ns) ||
        !(copy = cJSON_Duplicate(labels, 1))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (!cJSON_AddItemToObject(meta, "labels", copy)) {
        cJSON_Delete(copy);
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (st->n_pods == st->cap_pods) {
        size_t cap = st->cap_pods ? st->cap_pods * 2 : 8;
        check_pod *grown = realloc(st->pods, cap * sizeof(*grown));
        if (!grown) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        st->pods = grown;
        st->cap_pods = cap;
    }
    st->pods[st->n_pods++] = (check_pod){.pod = pod,
                                         .ns = json_str(pod, "metadata", "namespace", NULL),
                                         .name = json_str(pod, "metadata", "name", NULL),
                                         .own = pod};
    pod = NULL;
    err = member_push(ml, st, st->n_pods - 1, entry);
done:
    cJSON_Delete(pod);
    free(name);
    return err;
}

/* "spec.membrane.clients[0]", "store cache (spec.membrane.stores[1]", without the closing parenthesis. */
static void entry_label(FILE *f, const member_entry *e, size_t idx, bool store)
{
    if (store && e->name)
        fprintf(f, "store %s (spec.membrane.stores[%zu]: ", e->name, idx);
    else
        fprintf(f, "spec.membrane.%s[%zu] (", store ? "stores" : "clients", idx);
}

/* Notes the first entry that no pod, live or hypothetical, can stand for. */
static int problem_note(check_state *st, const member_entry *e, size_t idx, bool store, const char *release_ns,
                        const char *why, const char *field, const char *fix)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    if (st->problem)
        return 0;
    if (!(f = open_memstream(&buf, &len)))
        return mb_error_set(MB_ENOMEM, "out of memory");
    fputs("no live pod matches ", f);
    entry_label(f, e, idx, store);
    entry_describe(f, e, release_ns);
    fprintf(f, "), and no pod could: %s, so the membrane cannot be checked for it; fix spec.membrane.%s[%zu].%s%s", why,
            store ? "stores" : "clients", idx, field, fix);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    st->problem = buf;
    return 0;
}

/* Whether a live pod in namespace ns already stands for entry idx. */
static bool entry_live_in(const member_list *ml, size_t idx, const char *ns)
{
    for (size_t i = 0; i < ml->n; i++)
        if (ml->m[i].entry == idx && !ml->m[i].hypothetical && strcmp(ml->m[i].ns, ns) == 0)
            return true;
    return false;
}

/*
 * A hypothetical pod with the labels an entry's podSelector requires (none
 * without one) in every namespace its namespaceSelector selects (the release
 * namespace without one) where no live pod matches the entry: a namespace
 * the entry selects but that runs none of its pods today is judged as if one
 * started there, so an entry with a live pod in one namespace still has the
 * others checked. When the entry matches no live pod and there can be no
 * hypothetical one either, a problem is noted.
 */
static int entry_hypothesize(check_state *st, member_list *ml, const netpol_world *w, size_t idx, bool store,
                             const char *release_ns, bool any_live)
{
    const member_entry *e = store ? &st->stores[idx] : &st->clients[idx];
    cJSON *labels = NULL;
    size_t made = 0;
    int err = 0;

    if (!e->pods) {
        if (!(labels = cJSON_CreateObject())) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
    } else if ((err = labels_selector_example(&labels, e->pods)) < 0) {
        if (err == MB_EINVAL)
            err = any_live ? 0
                           : problem_note(st, e, idx, store, release_ns, "no labels can satisfy its podSelector",
                                          "podSelector", "");
        goto done;
    }
    if (!e->nss) {
        if (!entry_live_in(ml, idx, release_ns))
            err = hypothetical_add(st, ml, idx, release_ns, labels);
        goto done;
    }
    for (size_t i = 0; i < netpol_namespace_count(w); i++) {
        const char *ns = netpol_namespace_name(w, i);
        bool selected = false;
        if ((err = netpol_namespace_selected(&selected, w, e->nss, ns)) < 0)
            goto done;
        if (!selected)
            continue;
        made++;
        if (!entry_live_in(ml, idx, ns) && (err = hypothetical_add(st, ml, idx, ns, labels)) < 0)
            goto done;
    }
    if (!made && !any_live)
        err = problem_note(st, e, idx, store, release_ns, "its namespaceSelector matches no Namespace",
                           "namespaceSelector", " or create a Namespace it selects");
done:
    cJSON_Delete(labels);
    return err;
}

/*
 * The pods of the clients (store false) or the stores: the live pods each
 * entry matches, and hypothetical pods in the namespaces where it matches none; sorted
 * as member_cmp says. A client pod joins the first entry it matches; a store
 * pod every one.
 */
static int members_collect(member_list *ml, check_state *st, const netpol_world *w, bool store, const char *release_ns)
{
    const member_entry *entries = store ? st->stores : st->clients;
    size_t n_entries = store ? st->n_stores : st->n_clients, kept = 0;
    int err = 0;

    for (size_t i = 0; i < n_entries; i++) {
        bool found = false;
        for (size_t l = 0; l < st->n_live; l++) {
            bool hit = false;
            if ((err = entry_matches(&hit, w, &entries[i], &st->pods[l], release_ns)) < 0)
                return err;
            if (!hit)
                continue;
            if ((err = member_push(ml, st, l, i)) < 0)
                return err;
            found = true;
        }
        if ((err = entry_hypothesize(st, ml, w, i, store, release_ns, found)) < 0)
            return err;
    }
    if (ml->n > 1)
        qsort(ml->m, ml->n, sizeof(*ml->m), member_cmp);
    if (store)
        return 0;
    for (size_t i = 0; i < ml->n; i++)
        if (kept == 0 || !pod_same(&ml->m[i], &ml->m[kept - 1]))
            ml->m[kept++] = ml->m[i];
    ml->n = kept;
    return 0;
}

/* "kfm/kfm-ui-7c9f", or "hypothetical pod kfm/<app=kfm-web>". */
static void pod_put(FILE *f, const check_pod *p)
{
    fprintf(f, "%s%s/%s", p->own ? "hypothetical pod " : "", p->ns, p->name);
}

static void store_label(FILE *f, const member_entry *e, size_t idx)
{
    if (e->name)
        fprintf(f, "store %s", e->name);
    else
        fprintf(f, "stores[%zu]", idx);
}

/* The breach sentence for the first allowed path. */
static void describe_breach(FILE *f, const check_state *st, const member *c, const member *s, int port,
                            const netpol_verdict *v, size_t paths_allowed)
{
    const check_pod *src = &st->pods[c->pod], *dst = &st->pods[s->pod];
    const member_entry *ce = &st->clients[c->entry], *se = &st->stores[s->entry];

    pod_put(f, src);
    fprintf(f, " (%s) \xe2\x86\x92 ", entry_pods(ce));
    pod_put(f, dst);
    fprintf(f, ":%d (", port);
    store_label(f, se, s->entry);
    fputs(") is allowed: ", f);
    if (v->ingress == NETPOL_SAME_POD) {
        pod_put(f, src);
        fputs(" is both a client and a store pod, and a pod's traffic to itself is never filtered", f);
    } else {
        switch (v->ingress) {
        case NETPOL_POLICY_ALLOWS:
            fprintf(f, "NetworkPolicy %s/%s admits it into ", dst->ns, v->ingress_policy);
            pod_put(f, dst);
            break;
        case NETPOL_HOST_NETWORK:
            pod_put(f, dst);
            fputs(" uses the host network, which NetworkPolicy does not reliably isolate", f);
            break;
        case NETPOL_LOCAL_NODE:
            pod_put(f, src);
            fputs(" is a host-network pod on ", f);
            pod_put(f, dst);
            fputs("'s node, and traffic from a pod's own node is always admitted", f);
            break;
        default:
            fputs("no NetworkPolicy isolates ", f);
            pod_put(f, dst);
            fputs(" for ingress", f);
            break;
        }
        fputs(" and ", f);
        switch (v->egress) {
        case NETPOL_POLICY_ALLOWS:
            fprintf(f, "NetworkPolicy %s/%s lets it out of ", src->ns, v->egress_policy);
            pod_put(f, src);
            break;
        case NETPOL_HOST_NETWORK:
            pod_put(f, src);
            fputs(" uses the host network, which NetworkPolicy does not reliably isolate", f);
            break;
        default:
            fprintf(f, "%s isolates ", v->ingress == NETPOL_OPEN ? "none" : "no NetworkPolicy");
            pod_put(f, src);
            fputs(" for egress", f);
            break;
        }
    }
    if (paths_allowed > 1)
        fprintf(f, " (the first of %zu allowed paths)", paths_allowed);
    switch (v->ingress) {
    case NETPOL_SAME_POD: fputs("; make the client and store selectors pick different pods", f); break;
    case NETPOL_POLICY_ALLOWS:
        fprintf(f, "; narrow NetworkPolicy %s/%s so that it does not admit ", dst->ns, v->ingress_policy);
        pod_put(f, src);
        break;
    case NETPOL_OPEN:
        fputs("; isolate ", f);
        pod_put(f, dst);
        fprintf(f, " with an Ingress NetworkPolicy in %s that admits only the API", dst->ns);
        break;
    default:
        fputs("; deny ", f);
        pod_put(f, src);
        fprintf(f, " egress to the store with an Egress NetworkPolicy in %s", src->ns);
        break;
    }
}

/* How many hypothetical pods a message lists by name before it only counts the rest. */
#define HYPOTHETICAL_LISTED 8

/*
 * The distinct hypothetical pods among the client and store pods, sorted:
 * *out (owned, NULL for none) and their number.
 */
static int hypothetical_collect(const check_pod ***out, size_t *n_out, const check_state *st)
{
    const check_pod **h = NULL;
    size_t n = 0, kept = 0;

    *out = NULL;
    *n_out = 0;
    if (st->cpods.n + st->spods.n == 0)
        return 0;
    if (!(h = calloc(st->cpods.n + st->spods.n, sizeof(*h))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    for (size_t i = 0; i < st->cpods.n; i++)
        if (st->pods[st->cpods.m[i].pod].own)
            h[n++] = &st->pods[st->cpods.m[i].pod];
    for (size_t i = 0; i < st->spods.n; i++)
        if (st->pods[st->spods.m[i].pod].own)
            h[n++] = &st->pods[st->spods.m[i].pod];
    if (n > 1)
        qsort(h, n, sizeof(*h), pod_ptr_cmp);
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || pod_cmp(h[i], h[kept - 1]) != 0)
            h[kept++] = h[i];
    if (kept == 0)
        free(h);
    else
        *out = h;
    *n_out = kept;
    return 0;
}

/* " (hypothetical pods, where no live pod matches their entries: kfm/<app=kfm-web>, ...)" */
static void hypothetical_describe(FILE *f, const check_pod *const *h, size_t n)
{
    if (n == 0)
        return;
    fprintf(f, " (hypothetical pod%s, where no live pod matches %s entr%s: ", n == 1 ? "" : "s",
            n == 1 ? "its" : "their", n == 1 ? "y" : "ies");
    for (size_t i = 0; i < n && i < HYPOTHETICAL_LISTED; i++)
        fprintf(f, "%s%s/%s", i ? ", " : "", h[i]->ns, h[i]->name);
    if (n > HYPOTHETICAL_LISTED)
        fprintf(f, " and %zu more", n - HYPOTHETICAL_LISTED);
    fputc(')', f);
}

static int result_set(netpol_result *out, FILE *f, char **buf)
{
    if (fclose(f) != 0 || !*buf) {
        free(*buf);
        *buf = NULL;
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    out->message = *buf;
    *buf = NULL;
    return 0;
}

static void state_clear(check_state *st)
{
    entries_free(st->clients, st->n_clients);
    entries_free(st->stores, st->n_stores);
    for (size_t i = 0; i < st->n_pods; i++)
        cJSON_Delete(st->pods[i].own);
    free(st->pods);
    free(st->cpods.m);
    free(st->spods.m);
    free(st->problem);
}

int netpol_membrane_check(netpol_result *out, const netpol_world *w, const cJSON *membrane_spec,
                          const char *release_namespace, const cJSON *pods)
{
    check_state st;
    int err = 0, first_err = 0;
    char first_msg[1024] = "";
    const member *bc = NULL, *bs = NULL;
    const check_pod **hypo = NULL;
    size_t n_hypo = 0;
    int bport = 0;
    netpol_verdict bv;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;

    memset(out, 0, sizeof(*out));
    memset(&st, 0, sizeof(st));
    memset(&bv, 0, sizeof(bv));
    if (!w || !release_namespace || !release_namespace[0]) {
        err = mb_error_set(MB_EINVAL, "the membrane check needs a NetworkPolicy world and the release namespace");
        goto done;
    }
    if (!cJSON_IsObject(membrane_spec)) {
        err = mb_error_set(MB_EINVAL, "spec.membrane must be an object with clients and stores");
        goto done;
    }
    if ((err = entries_parse(&st.clients, &st.n_clients, membrane_spec, "clients", false)) < 0 ||
        (err = entries_parse(&st.stores, &st.n_stores, membrane_spec, "stores", true)) < 0 ||
        (err = live_collect(&st, pods)) < 0)
        goto done;
    if ((err = members_collect(&st.cpods, &st, w, false, release_namespace)) < 0 ||
        (err = members_collect(&st.spods, &st, w, true, release_namespace)) < 0 ||
        (err = hypothetical_collect(&hypo, &n_hypo, &st)) < 0)
        goto done;
    out->client_pods = st.cpods.n;
    for (size_t i = 0; i < st.spods.n; i++)
        if (i == 0 || !pod_same(&st.spods.m[i], &st.spods.m[i - 1]))
            out->store_pods++;
    out->hypothetical_pods = n_hypo;

    for (size_t c = 0; c < st.cpods.n; c++) {
        for (size_t s = 0; s < st.spods.n; s++) {
            const member_entry *se = &st.stores[st.spods.m[s].entry];
            const check_pod *src = &st.pods[st.cpods.m[c].pod], *dst = &st.pods[st.spods.m[s].pod];
            for (size_t p = 0; p < se->n_ports; p++) {
                netpol_verdict v;
                int e = netpol_evaluate_flags(&v, w, src->pod, dst->pod, se->ports[p], "TCP",
                                              dst->own ? NETPOL_DST_HYPOTHETICAL : 0);
                out->paths_checked++;
                if (e < 0) {
                    if (e != MB_EINVAL) {
                        err = e;
                        goto done;
                    }
                    if (!first_err) {
                        first_err = e;
                        snprintf(first_msg, sizeof(first_msg), "%s", mb_error_last());
                    }
                    continue;
                }
                if (!v.allowed)
                    continue;
                if (out->paths_allowed++ == 0) {
                    bc = &st.cpods.m[c];
                    bs = &st.spods.m[s];
                    bport = se->ports[p];
                    bv = v;
                }
            }
        }
    }

    if (!(f = open_memstream(&buf, &len))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (out->paths_allowed) {
        describe_breach(f, &st, bc, bs, bport, &bv, out->paths_allowed);
        if (st.problem)
            fprintf(f, "; also, %s", st.problem);
    } else if (first_err) {
        err = mb_error_set(first_err, "%s", first_msg);
        goto done;
    } else if (st.problem) {
        fputs(st.problem, f);
    } else if (out->paths_checked == 0) {
        /* cannot happen: every entry has a live pod, a hypothetical one or a problem */
        fputs("no path from a client to a store pod was checked, so the membrane cannot be shown intact; check "
              "spec.membrane",
              f);
    } else {
        out->passed = true;
        if (out->paths_checked == 1)
            fputs("NetworkPolicy denies the one path", f);
        else
            fprintf(f, "NetworkPolicy denies all %zu paths", out->paths_checked);
        fprintf(f, " from %zu client pod%s to %zu store pod%s", out->client_pods, out->client_pods == 1 ? "" : "s",
                out->store_pods, out->store_pods == 1 ? "" : "s");
    }
    hypothetical_describe(f, hypo, n_hypo);
    err = result_set(out, f, &buf);
    f = NULL;
done:
    if (f) {
        fclose(f);
        free(buf);
    }
    if (err < 0) {
        size_t cp = out->client_pods, sp = out->store_pods, hp = out->hypothetical_pods, pc = out->paths_checked;
        free(out->message);
        memset(out, 0, sizeof(*out));
        out->client_pods = cp;
        out->store_pods = sp;
        out->hypothetical_pods = hp;
        out->paths_checked = pc;
        out->passed = false;
        if (asprintf(&out->message, "the membrane cannot be checked: %s", mb_error_last()) < 0)
            out->message = NULL;
    }
    free(hypo);
    state_clear(&st);
    return err;
}

void netpol_result_dispose(netpol_result *r)
{
    if (!r)
        return;
    free(r->message);
    memset(r, 0, sizeof(*r));
}
