/*
 * The membrane-networkpolicy check: from spec.membrane it selects the live
 * client pods and the store pods, asks the NetworkPolicy evaluator about
 * every client pod x store pod x store port (TCP), and turns the outcome into
 * a pass/fail with one sentence a person can act on. Pods are sorted by
 * namespace/name first, so the same cluster always yields the same message.
 * The decisions about empty sets are in netpol.h.
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

/* A live pod that matched an entry. */
typedef struct {
    size_t live; /* index in the sorted live pods */
    size_t entry;
} member;

typedef struct {
    const cJSON *pod;
    const char *ns;
    const char *name;
} live_pod;

typedef struct {
    member_entry *clients;
    size_t n_clients;
    member_entry *stores;
    size_t n_stores;
    live_pod *live;
    size_t n_live;
    member *cpods, *spods;
    size_t n_cpods, n_spods;
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
            return mb_error_set(MB_EINVAL, "spec.membrane.stores[%d] has no ports; list the store's port numbers",
                                idx);
        if (!(e->ports = calloc((size_t)cJSON_GetArraySize(ports), sizeof(*e->ports))))
            return mb_error_set(MB_ENOMEM, "out of memory");
        cJSON_ArrayForEach(p, ports) {
            if (!cJSON_IsNumber(p) || !(p->valuedouble >= 1 && p->valuedouble <= 65535) ||
                p->valuedouble != (double)(int)p->valuedouble)
                return mb_error_set(MB_EINVAL, "spec.membrane.stores[%d].ports[%zu] is not a port number 1-65535",
                                    idx, e->n_ports);
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

static int entry_matches(bool *out, const netpol_world *w, const member_entry *e, const live_pod *p,
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

static int live_cmp(const void *a, const void *b)
{
    const live_pod *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

static int member_cmp(const void *a, const void *b)
{
    const member *x = a, *y = b;
    if (x->live != y->live)
        return x->live < y->live ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
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
    if (!(st->live = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*st->live))))
        return mb_error_set(MB_ENOMEM, "out of memory");
    cJSON_ArrayForEach(p, arr) {
        const char *phase = json_str(p, "status", "phase", NULL);
        live_pod *lp = &st->live[st->n_live];
        lp->pod = p;
        lp->ns = json_str(p, "metadata", "namespace", NULL);
        lp->name = json_str(p, "metadata", "name", NULL);
        if (!lp->ns || !lp->name)
            return mb_error_set(MB_EINVAL, "pod #%d has no metadata.namespace or metadata.name", idx);
        idx++;
        if (phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0))
            continue;
        st->n_live++;
    }
    qsort(st->live, st->n_live, sizeof(*st->live), live_cmp);
    return 0;
}

/* Matches live pods to entries. first_only: a pod joins the first entry it matches (clients). */
static int members_collect(member **out, size_t *n_out, size_t *empty_entry, const check_state *st,
                           const netpol_world *w, const member_entry *e, size_t n_entries, bool first_only,
                           const char *release_ns)
{
    member *m = NULL;
    bool *taken = NULL;
    size_t n = 0, cap = 0;
    int err = 0;

    *empty_entry = (size_t)-1;
    if (first_only && st->n_live && !(taken = calloc(st->n_live, sizeof(*taken)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_entries; i++) {
        size_t found = 0;
        for (size_t l = 0; l < st->n_live; l++) {
            bool hit = false;
            if (taken && taken[l])
                continue;
            if ((err = entry_matches(&hit, w, &e[i], &st->live[l], release_ns)) < 0)
                goto done;
            if (!hit)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 16;
                member *g = realloc(m, nc * sizeof(*g));
                if (!g) {
                    err = mb_error_set(MB_ENOMEM, "out of memory");
                    goto done;
                }
                m = g;
                cap = nc;
            }
            m[n].live = l;
            m[n].entry = i;
            n++;
            found++;
            if (taken)
                taken[l] = true;
        }
        if (!found && *empty_entry == (size_t)-1)
            *empty_entry = i;
    }
    if (n > 1)
        qsort(m, n, sizeof(*m), member_cmp);
done:
    free(taken);
    if (err < 0) {
        free(m);
        return err;
    }
    *out = m;
    *n_out = n;
    return 0;
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
    const live_pod *src = &st->live[c->live], *dst = &st->live[s->live];
    const member_entry *ce = &st->clients[c->entry], *se = &st->stores[s->entry];

    fprintf(f, "%s/%s (%s) \xe2\x86\x92 %s/%s:%d (", src->ns, src->name,
            entry_pods(ce), dst->ns, dst->name, port);
    store_label(f, se, s->entry);
    fputs(") is allowed: ", f);
    if (v->ingress == NETPOL_SAME_POD) {
        fprintf(f, "%s/%s is both a client and a store pod, and a pod's traffic to itself is never filtered", src->ns,
                src->name);
    } else {
        switch (v->ingress) {
        case NETPOL_POLICY_ALLOWS:
            fprintf(f, "NetworkPolicy %s/%s admits it into %s/%s", dst->ns, v->ingress_policy, dst->ns, dst->name);
            break;
        case NETPOL_HOST_NETWORK:
            fprintf(f, "%s/%s uses the host network, which NetworkPolicy does not reliably isolate", dst->ns,
                    dst->name);
            break;
        case NETPOL_LOCAL_NODE:
            fprintf(f, "%s/%s is a host-network pod on %s/%s's node, and traffic from a pod's own node is always "
                       "admitted",
                    src->ns, src->name, dst->ns, dst->name);
            break;
        default:
            fprintf(f, "no NetworkPolicy isolates %s/%s for ingress", dst->ns, dst->name);
            break;
        }
        fputs(" and ", f);
        switch (v->egress) {
        case NETPOL_POLICY_ALLOWS:
            fprintf(f, "NetworkPolicy %s/%s lets it out of %s/%s", src->ns, v->egress_policy, src->ns, src->name);
            break;
        case NETPOL_HOST_NETWORK:
            fprintf(f, "%s/%s uses the host network, which NetworkPolicy does not reliably isolate", src->ns,
                    src->name);
            break;
        default:
            fprintf(f, "%s isolates %s/%s for egress", v->ingress == NETPOL_OPEN ? "none" : "no NetworkPolicy",
                    src->ns, src->name);
            break;
        }
    }
    if (paths_allowed > 1)
        fprintf(f, " (the first of %zu allowed paths)", paths_allowed);
    switch (v->ingress) {
    case NETPOL_SAME_POD:
        fputs("; make the client and store selectors pick different pods", f);
        break;
    case NETPOL_POLICY_ALLOWS:
        fprintf(f, "; narrow NetworkPolicy %s/%s so that it does not admit %s/%s", dst->ns, v->ingress_policy,
                src->ns, src->name);
        break;
    case NETPOL_OPEN:
        fprintf(f, "; isolate %s/%s with an Ingress NetworkPolicy in %s that admits only the API", dst->ns, dst->name,
                dst->ns);
        break;
    default:
        fprintf(f, "; deny %s/%s egress to the store with an Egress NetworkPolicy in %s", src->ns, src->name,
                src->ns);
        break;
    }
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

int netpol_membrane_check(netpol_result *out, const netpol_world *w, const cJSON *membrane_spec,
                          const char *release_namespace, const cJSON *pods)
{
    check_state st;
    int err = 0, first_err = 0;
    char first_msg[1024] = "";
    size_t empty_store = (size_t)-1, empty_client = (size_t)-1;
    const member *bc = NULL, *bs = NULL;
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
    if ((err = members_collect(&st.cpods, &st.n_cpods, &empty_client, &st, w, st.clients, st.n_clients, true,
                               release_namespace)) < 0 ||
        (err = members_collect(&st.spods, &st.n_spods, &empty_store, &st, w, st.stores, st.n_stores, false,
                               release_namespace)) < 0)
        goto done;
    out->client_pods = st.n_cpods;
    for (size_t i = 0; i < st.n_spods; i++)
        if (i == 0 || st.spods[i].live != st.spods[i - 1].live)
            out->store_pods++;

    for (size_t c = 0; c < st.n_cpods; c++) {
        for (size_t s = 0; s < st.n_spods; s++) {
            const member_entry *se = &st.stores[st.spods[s].entry];
            for (size_t p = 0; p < se->n_ports; p++) {
                netpol_verdict v;
                int e = netpol_evaluate(&v, w, st.live[st.cpods[c].live].pod, st.live[st.spods[s].live].pod,
                                        se->ports[p], "TCP");
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
                    bc = &st.cpods[c];
                    bs = &st.spods[s];
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
    } else if (first_err) {
        err = mb_error_set(first_err, "%s", first_msg);
        goto done;
    } else if (empty_store != (size_t)-1) {
        fputs("no live pod matches ", f);
        store_label(f, &st.stores[empty_store], empty_store);
        fputs(" (", f);
        entry_describe(f, &st.stores[empty_store], release_namespace);
        fprintf(f, "), so the membrane around it cannot be checked; fix spec.membrane.stores[%zu] or start the store",
                empty_store);
    } else if (st.n_cpods == 0) {
        out->passed = true;
        fputs("no live pod matches spec.membrane.clients (", f);
        for (size_t i = 0; i < st.n_clients; i++) {
            if (i)
                fputs(" or ", f);
            entry_describe(f, &st.clients[i], release_namespace);
        }
        fputs("); nothing to check", f);
    } else {
        out->passed = true;
        fprintf(f, "NetworkPolicy denies all %zu paths from %zu client pod%s to %zu store pod%s", out->paths_checked,
                out->client_pods, out->client_pods == 1 ? "" : "s", out->store_pods, out->store_pods == 1 ? "" : "s");
    }
    if (out->paths_allowed && empty_store != (size_t)-1) {
        fputs("; also, no live pod matches ", f);
        store_label(f, &st.stores[empty_store], empty_store);
    }
    err = result_set(out, f, &buf);
    f = NULL;
done:
    if (f) {
        fclose(f);
        free(buf);
    }
    if (err < 0) {
        size_t cp = out->client_pods, sp = out->store_pods, pc = out->paths_checked;
        free(out->message);
        memset(out, 0, sizeof(*out));
        out->client_pods = cp;
        out->store_pods = sp;
        out->paths_checked = pc;
        out->passed = false;
        if (asprintf(&out->message, "the membrane cannot be checked: %s", mb_error_last()) < 0)
            out->message = NULL;
    }
    entries_free(st.clients, st.n_clients);
    entries_free(st.stores, st.n_stores);
    free(st.live);
    free(st.cpods);
    free(st.spods);
    return err;
}

void netpol_result_dispose(netpol_result *r)
{
    if (!r)
        return;
    free(r->message);
    memset(r, 0, sizeof(*r));
}
