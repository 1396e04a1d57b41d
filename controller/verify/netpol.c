/*
 * The NetworkPolicy evaluator: compiles every policy once (selectors, CIDRs,
 * ports, defaulted policyTypes) into a world indexed by namespace (uthash),
 * then answers connection questions by walking the policies of the source's
 * namespace (egress) and of the destination's namespace (ingress). Matching is
 * three-valued inside (match, no match, cannot tell): a rule that allows wins
 * over a sibling that cannot be evaluated, otherwise "cannot tell" surfaces as
 * an error. The semantic choices are listed in netpol.h.
 */
#include "verify/netpol.h"
#include "util/error.h"
#include "util/json.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* uthash reports a failed allocation by leaving the item's table pointer NULL (instead of exiting). */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#define NS_NAME_LABEL "kubernetes.io/metadata.name"

typedef enum { PROTO_TCP, PROTO_UDP, PROTO_SCTP } np_proto;
typedef enum { DIR_INGRESS, DIR_EGRESS } np_dir;

typedef struct {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    int prefix;
} np_cidr;

typedef struct {
    np_proto proto;
    int port;         /* 0: every port of the protocol */
    int end_port;     /* 0: a single port */
    const char *name; /* named port, borrowed from the policy JSON */
} np_port;

typedef struct {
    bool ipblock;
    labels_selector *pods; /* NULL: field absent */
    labels_selector *nss;  /* NULL: field absent */
    np_cidr cidr;
    np_cidr *except;
    size_t n_except;
} np_peer;

typedef struct {
    np_peer *peers; /* none: every peer */
    size_t n_peers;
    np_port *ports; /* none: every port */
    size_t n_ports;
} np_rule;

typedef struct {
    const char *name; /* borrowed */
    const char *ns;   /* borrowed */
    char *invalid;    /* why it cannot be evaluated, or NULL */
    labels_selector *select;
    bool types[2]; /* indexed by np_dir */
    np_rule *rules[2];
    size_t n_rules[2];
} np_policy;

typedef struct {
    char *name;
    cJSON *labels; /* owned; NULL when no Namespace object was given */
    np_policy **policies;
    size_t n_policies, cap_policies;
    UT_hash_handle hh;
} np_ns;

struct netpol_world {
    np_ns *nss;
    np_policy *policies;
    size_t n_policies;
    np_ns **given; /* the namespaces given as Namespace objects, sorted by name */
    size_t n_given;
};

/* The fields of a pod the evaluator looks at. */
typedef struct {
    const cJSON *pod;
    const char *ns;
    const char *name;
    const cJSON *labels;
    bool host_network;
    bool hypothetical; /* NETPOL_DST_HYPOTHETICAL: no containers to resolve named ports against */
} np_pod;

static const char *const peer_keys[2] = {"from", "to"};
static const char *const rule_keys[2] = {"ingress", "egress"};

/* ---- parsing ---------------------------------------------------------- */

/* Field paths for messages ("NetworkPolicy kfm/x spec.ingress[0].from[1]"); a long one is cut short. */
__attribute__((format(printf, 3, 4))) static void field_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

static int ip_parse(int *family, unsigned char addr[16], const char *text)
{
    static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, text, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, addr) == 1) {
        *family = AF_INET6;
        if (memcmp(addr, v4_mapped, sizeof(v4_mapped)) == 0) {
            /* ::ffff:a.b.c.d is the IPv4 address a.b.c.d, as Go's net package reads it */
            memmove(addr, addr + 12, 4);
            memset(addr + 4, 0, 12);
            *family = AF_INET;
        }
        return 0;
    }
    return -1;
}

/* "a.b.c.d/n" or "x::y/n"; host bits may be set (the API server accepts them). */
static int cidr_parse(np_cidr *out, const char *text)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    char *end = NULL;
    long prefix;
    size_t n;

    if (!slash || (n = (size_t)(slash - text)) == 0 || n >= sizeof(buf) || !slash[1])
        return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (ip_parse(&out->family, out->addr, buf) < 0)
        return -1;
    for (const char *p = slash + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    prefix = strtol(slash + 1, &end, 10);
    if (*end || prefix > (out->family == AF_INET ? 32 : 128))
        return -1;
    out->prefix = (int)prefix;
    return 0;
}

static bool cidr_contains(const np_cidr *c, int family, const unsigned char *addr)
{
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (family != c->family)
        return false;
    if (memcmp(c->addr, addr, (size_t)full) != 0)
        return false;
    if (rest) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));
        if ((c->addr[full] & mask) != (addr[full] & mask))
            return false;
    }
    return true;
}

static int proto_parse(np_proto *out, const char *text)
{
    if (strcmp(text, "TCP") == 0)
        *out = PROTO_TCP;
    else if (strcmp(text, "UDP") == 0)
        *out = PROTO_UDP;
    else if (strcmp(text, "SCTP") == 0)
        *out = PROTO_SCTP;
    else
        return -1;
    return 0;
}

/* IANA_SVC_NAME as the API validates named ports: 1-15 of [a-z0-9-], a letter, no "--", no edge hyphen. */
static bool port_name_valid(const char *s)
{
    size_t n = strlen(s);
    bool letter = false;
    if (n == 0 || n > 15 || s[0] == '-' || s[n - 1] == '-' || strstr(s, "--"))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            letter = true;
        else if (!(s[i] >= '0' && s[i] <= '9') && s[i] != '-')
            return false;
    }
    return letter;
}

static bool is_port_number(const cJSON *v, int *out)
{
    /* range first: converting an out-of-range double to int is undefined */
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 1 && v->valuedouble <= 65535) ||
        v->valuedouble != (double)(int)v->valuedouble)
        return false;
    *out = (int)v->valuedouble;
    return true;
}

static bool present(const cJSON *v)
{
    return v && !cJSON_IsNull(v);
}

static int port_compile(np_port *out, const cJSON *obj, const char *where)
{
    const cJSON *proto = cJSON_GetObjectItemCaseSensitive(obj, "protocol");
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(obj, "port");
    const cJSON *end = cJSON_GetObjectItemCaseSensitive(obj, "endPort");

    if (!cJSON_IsObject(obj))
        return mb_error_set(MB_EINVAL, "%s is not an object; write {protocol, port, endPort}", where);
    out->proto = PROTO_TCP;
    if (present(proto) && (!cJSON_IsString(proto) || proto_parse(&out->proto, proto->valuestring) < 0))
        return mb_error_set(MB_EINVAL, "%s.protocol %s%s%s is not TCP, UDP or SCTP", where,
                            cJSON_IsString(proto) ? "\"" : "",
                            cJSON_IsString(proto) ? proto->valuestring : "(not a string)",
                            cJSON_IsString(proto) ? "\"" : "");
    if (present(port)) {
        if (cJSON_IsString(port)) {
            if (!port_name_valid(port->valuestring))
                return mb_error_set(MB_EINVAL,
                                    "%s.port \"%s\" is neither a port number nor a valid port name (1-15 lowercase "
                                    "letters, digits and single hyphens)",
                                    where, port->valuestring);
            out->name = port->valuestring;
        } else if (!is_port_number(port, &out->port)) {
            return mb_error_set(MB_EINVAL, "%s.port must be a port number 1-65535 or a port name", where);
        }
    }
    if (present(end)) {
        if (!is_port_number(end, &out->end_port))
            return mb_error_set(MB_EINVAL, "%s.endPort must be a port number 1-65535", where);
        if (!out->port)
            return mb_error_set(MB_EINVAL, "%s.endPort needs a numeric port to start the range", where);
        if (out->end_port < out->port)
            return mb_error_set(MB_EINVAL, "%s.endPort %d is below port %d", where, out->end_port, out->port);
    }
    return 0;
}

static void peer_clear(np_peer *p)
{
    labels_selector_free(p->pods);
    labels_selector_free(p->nss);
    free(p->except);
}

static int peer_compile(np_peer *out, const cJSON *obj, const char *where)
{
    char sub[512];
    const cJSON *ipb = cJSON_GetObjectItemCaseSensitive(obj, "ipBlock");
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(obj, "podSelector");
    const cJSON *nss = cJSON_GetObjectItemCaseSensitive(obj, "namespaceSelector");
    const cJSON *cidr, *except, *e;
    int err, i = 0;

    if (!cJSON_IsObject(obj))
        return mb_error_set(MB_EINVAL, "%s is not an object; write {podSelector, namespaceSelector} or {ipBlock}",
                            where);
    if (present(ipb)) {
        if (present(pods) || present(nss))
            return mb_error_set(MB_EINVAL,
                                "%s combines ipBlock with a selector, which the API forbids; split it into two peers",
                                where);
        cidr = cJSON_GetObjectItemCaseSensitive(ipb, "cidr");
        if (!cJSON_IsString(cidr) || cidr_parse(&out->cidr, cidr->valuestring) < 0)
            return mb_error_set(MB_EINVAL, "%s.ipBlock.cidr %s%s%s is not a CIDR such as 10.0.0.0/16 or fd00::/64",
                                where, cJSON_IsString(cidr) ? "\"" : "",
                                cJSON_IsString(cidr) ? cidr->valuestring : "(missing)",
                                cJSON_IsString(cidr) ? "\"" : "");
        out->ipblock = true;
        except = cJSON_GetObjectItemCaseSensitive(ipb, "except");
        if (!present(except))
            return 0;
        if (!cJSON_IsArray(except))
            return mb_error_set(MB_EINVAL, "%s.ipBlock.except must be a list of CIDRs", where);
        if (cJSON_GetArraySize(except) == 0)
            return 0;
        if (!(out->except = calloc((size_t)cJSON_GetArraySize(except), sizeof(*out->except))))
            return mb_error_set(MB_ENOMEM, "out of memory");
        cJSON_ArrayForEach(e, except) {
            if (!cJSON_IsString(e) || cidr_parse(&out->except[out->n_except], e->valuestring) < 0)
                return mb_error_set(MB_EINVAL, "%s.ipBlock.except[%d] %s%s%s is not a CIDR", where, i,
                                    cJSON_IsString(e) ? "\"" : "",
                                    cJSON_IsString(e) ? e->valuestring : "(not a string)",
                                    cJSON_IsString(e) ? "\"" : "");
            out->n_except++;
            i++;
        }
        return 0;
    }
    if (!present(pods) && !present(nss))
        return mb_error_set(MB_EINVAL,
                            "%s names no peer; give a podSelector, a namespaceSelector or an ipBlock (or drop the "
                            "list to allow every peer)",
                            where);
    if (present(pods)) {
        field_path(sub, sizeof(sub), "%s.podSelector", where);
        if ((err = labels_selector_parse(&out->pods, pods, sub)) < 0)
            return err;
    }
    if (present(nss)) {
        field_path(sub, sizeof(sub), "%s.namespaceSelector", where);
        if ((err = labels_selector_parse(&out->nss, nss, sub)) < 0)
            return err;
    }
    return 0;
}

static void rule_clear(np_rule *r)
{
    for (size_t i = 0; i < r->n_peers; i++)
        peer_clear(&r->peers[i]);
    free(r->peers);
    free(r->ports);
}

static int rule_compile(np_rule *out, const cJSON *obj, np_dir dir, const char *where)
{
    char sub[512];
    const cJSON *peers = cJSON_GetObjectItemCaseSensitive(obj, peer_keys[dir]);
    const cJSON *ports = cJSON_GetObjectItemCaseSensitive(obj, "ports");
    const cJSON *item;
    int err, i;

    if (!cJSON_IsObject(obj))
        return mb_error_set(MB_EINVAL, "%s is not an object; write {%s, ports}", where, peer_keys[dir]);
    if (present(peers) && !cJSON_IsArray(peers))
        return mb_error_set(MB_EINVAL, "%s.%s must be a list of peers", where, peer_keys[dir]);
    if (present(ports) && !cJSON_IsArray(ports))
        return mb_error_set(MB_EINVAL, "%s.ports must be a list", where);
    if (cJSON_IsArray(peers) && cJSON_GetArraySize(peers) > 0) {
        if (!(out->peers = calloc((size_t)cJSON_GetArraySize(peers), sizeof(*out->peers))))
            return mb_error_set(MB_ENOMEM, "out of memory");
        i = 0;
        cJSON_ArrayForEach(item, peers) {
            field_path(sub, sizeof(sub), "%s.%s[%d]", where, peer_keys[dir], i++);
            err = peer_compile(&out->peers[out->n_peers++], item, sub);
            if (err < 0)
                return err;
        }
    }
    if (cJSON_IsArray(ports) && cJSON_GetArraySize(ports) > 0) {
        if (!(out->ports = calloc((size_t)cJSON_GetArraySize(ports), sizeof(*out->ports))))
            return mb_error_set(MB_ENOMEM, "out of memory");
        i = 0;
        cJSON_ArrayForEach(item, ports) {
            field_path(sub, sizeof(sub), "%s.ports[%d]", where, i++);
            if ((err = port_compile(&out->ports[out->n_ports++], item, sub)) < 0)
                return err;
        }
    }
    return 0;
}

static void policy_clear(np_policy *p)
{
    free(p->invalid);
    labels_selector_free(p->select);
    for (int d = 0; d < 2; d++) {
        for (size_t i = 0; i < p->n_rules[d]; i++)
            rule_clear(&p->rules[d][i]);
        free(p->rules[d]);
    }
}

/* Compiles spec; name and ns are already set. Errors leave p partly built (policy_clear frees it). */
static int policy_compile(np_policy *p, const cJSON *obj)
{
    char where[512], sub[512];
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const cJSON *sel, *types, *item;
    int err, i;

    field_path(where, sizeof(where), "NetworkPolicy %s/%s", p->ns, p->name);
    if (!cJSON_IsObject(spec))
        return mb_error_set(MB_EINVAL, "%s has no spec", where);
    sel = cJSON_GetObjectItemCaseSensitive(spec, "podSelector");
    field_path(sub, sizeof(sub), "%s spec.podSelector", where);
    if (present(sel)) {
        if ((err = labels_selector_parse(&p->select, sel, sub)) < 0)
            return err;
    } else {
        /* A missing podSelector decodes as {} in the API: every pod of the namespace. */
        cJSON *empty = cJSON_CreateObject();
        if (!empty)
            return mb_error_set(MB_ENOMEM, "out of memory");
        err = labels_selector_parse(&p->select, empty, sub);
        cJSON_Delete(empty);
        if (err < 0)
            return err;
    }
    for (int d = 0; d < 2; d++) {
        const cJSON *rules = cJSON_GetObjectItemCaseSensitive(spec, rule_keys[d]);
        if (present(rules) && !cJSON_IsArray(rules))
            return mb_error_set(MB_EINVAL, "%s spec.%s must be a list of rules", where, rule_keys[d]);
        if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) == 0)
            continue;
        if (!(p->rules[d] = calloc((size_t)cJSON_GetArraySize(rules), sizeof(*p->rules[d]))))
            return mb_error_set(MB_ENOMEM, "out of memory");
        i = 0;
        cJSON_ArrayForEach(item, rules) {
            field_path(sub, sizeof(sub), "%s spec.%s[%d]", where, rule_keys[d], i++);
            if ((err = rule_compile(&p->rules[d][p->n_rules[d]++], item, (np_dir)d, sub)) < 0)
                return err;
        }
    }
    types = cJSON_GetObjectItemCaseSensitive(spec, "policyTypes");
    if (present(types) && !cJSON_IsArray(types))
        return mb_error_set(MB_EINVAL, "%s spec.policyTypes must be a list of Ingress and/or Egress", where);
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) == 0) {
        /* The API server's defaulting: Ingress always, Egress when there are egress rules. */
        p->types[DIR_INGRESS] = true;
        p->types[DIR_EGRESS] = p->n_rules[DIR_EGRESS] > 0;
        return 0;
    }
    i = 0;
    cJSON_ArrayForEach(item, types) {
        if (cJSON_IsString(item) && strcmp(item->valuestring, "Ingress") == 0)
            p->types[DIR_INGRESS] = true;
        else if (cJSON_IsString(item) && strcmp(item->valuestring, "Egress") == 0)
            p->types[DIR_EGRESS] = true;
        else
            return mb_error_set(MB_EINVAL, "%s spec.policyTypes[%d] %s%s%s is not Ingress or Egress", where, i,
                                cJSON_IsString(item) ? "\"" : "",
                                cJSON_IsString(item) ? item->valuestring : "(not a string)",
                                cJSON_IsString(item) ? "\"" : "");
        i++;
    }
    return 0;
}

/* ---- the world -------------------------------------------------------- */

static const cJSON *list_items(const cJSON *list)
{
    if (cJSON_IsObject(list))
        return cJSON_GetObjectItemCaseSensitive(list, "items");
    return list;
}

static int ns_get(np_ns **out, netpol_world *w, const char *name)
{
    np_ns *ns = NULL;
    HASH_FIND_STR(w->nss, name, ns);
    if (!ns) {
        if (!(ns = calloc(1, sizeof(*ns))) || !(ns->name = strdup(name))) {
            free(ns);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
        HASH_ADD_KEYPTR(hh, w->nss, ns->name, strlen(ns->name), ns);
        if (!ns->hh.tbl) {
            free(ns->name);
            free(ns);
            return mb_error_set(MB_ENOMEM, "out of memory");
        }
    }
    *out = ns;
    return 0;
}

static int ns_add_policy(np_ns *ns, np_policy *p)
{
    if (ns->n_policies == ns->cap_policies) {
        size_t cap = ns->cap_policies ? ns->cap_policies * 2 : 8;
        np_policy **grown = realloc(ns->policies, cap * sizeof(*grown));
        if (!grown)
            return mb_error_set(MB_ENOMEM, "out of memory");
        ns->policies = grown;
        ns->cap_policies = cap;
    }
    ns->policies[ns->n_policies++] = p;
    return 0;
}

static int policy_cmp(const void *a, const void *b)
{
    const np_policy *pa = *(np_policy *const *)a, *pb = *(np_policy *const *)b;
    return strcmp(pa->name, pb->name);
}

static int ns_cmp(const void *a, const void *b)
{
    const np_ns *x = *(np_ns *const *)a, *y = *(np_ns *const *)b;
    return strcmp(x->name, y->name);
}

void netpol_world_free(netpol_world *w)
{
    np_ns *ns, *tmp;
    if (!w)
        return;
    HASH_ITER(hh, w->nss, ns, tmp) {
        HASH_DEL(w->nss, ns);
        free(ns->name);
        cJSON_Delete(ns->labels);
        free(ns->policies);
        free(ns);
    }
    for (size_t i = 0; i < w->n_policies; i++)
        policy_clear(&w->policies[i]);
    free(w->policies);
    free(w->given);
    free(w);
}

static int world_add_namespace(netpol_world *w, const cJSON *obj, int idx)
{
    const char *name = json_str(obj, "metadata", "name", NULL);
    const cJSON *labels = json_get(obj, "metadata", "labels", NULL);
    cJSON *copy = NULL, *label = NULL;
    np_ns *ns = NULL;
    int err;

    if (!name || !name[0])
        return mb_error_set(MB_EINVAL, "Namespace #%d has no metadata.name; pass Namespaces as the API lists them",
                            idx);
    if ((err = ns_get(&ns, w, name)) < 0)
        return err;
    copy = cJSON_IsObject(labels) ? cJSON_Duplicate(labels, 1) : cJSON_CreateObject();
    if (!copy || !(label = cJSON_CreateString(name))) {
        cJSON_Delete(copy);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    /* The API server keeps kubernetes.io/metadata.name equal to the name. */
    cJSON_DeleteItemFromObjectCaseSensitive(copy, NS_NAME_LABEL);
    if (!cJSON_AddItemToObject(copy, NS_NAME_LABEL, label)) {
        cJSON_Delete(label);
        cJSON_Delete(copy);
        return mb_error_set(MB_ENOMEM, "out of memory");
    }
    cJSON_Delete(ns->labels);
    ns->labels = copy;
    return 0;
}

int netpol_world_new(netpol_world **out, const cJSON *namespaces, const cJSON *policies)
{
    int err = 0, idx = 0;
    netpol_world *w = NULL;
    const cJSON *nss = list_items(namespaces), *pols = list_items(policies), *item;
    np_ns *ns, *tmp;

    *out = NULL;
    if ((namespaces && !cJSON_IsArray(nss)) || (policies && !cJSON_IsArray(pols))) {
        err = mb_error_set(MB_EINVAL, "Namespaces and NetworkPolicies must each be a list (or a *List with items)");
        goto done;
    }
    if (!(w = calloc(1, sizeof(*w)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    if (namespaces) {
        cJSON_ArrayForEach(item, nss) {
            if ((err = world_add_namespace(w, item, idx++)) < 0)
                goto done;
        }
    }
    if (policies && cJSON_GetArraySize(pols) > 0) {
        if (!(w->policies = calloc((size_t)cJSON_GetArraySize(pols), sizeof(*w->policies)))) {
            err = mb_error_set(MB_ENOMEM, "out of memory");
            goto done;
        }
        idx = 0;
        cJSON_ArrayForEach(item, pols) {
            np_policy *p = &w->policies[w->n_policies];
            p->name = json_str(item, "metadata", "name", NULL);
            p->ns = json_str(item, "metadata", "namespace", NULL);
            if (!p->name || !p->name[0] || !p->ns || !p->ns[0]) {
                err = mb_error_set(MB_EINVAL,
                                   "NetworkPolicy #%d has no metadata.name or metadata.namespace; pass them as the "
                                   "API lists them",
                                   idx);
                goto done;
            }
            w->n_policies++;
            idx++;
            if ((err = policy_compile(p, item)) < 0) {
                if (err != MB_EINVAL)
                    goto done;
                /* Kept: reported when a pod of its namespace is evaluated. */
                policy_clear(p);
                memset(p, 0, sizeof(*p));
                p->name = json_str(item, "metadata", "name", NULL);
                p->ns = json_str(item, "metadata", "namespace", NULL);
                if (!(p->invalid = strdup(mb_error_last()))) {
                    err = mb_error_set(MB_ENOMEM, "out of memory");
                    goto done;
                }
                err = 0;
            }
            if ((err = ns_get(&ns, w, p->ns)) < 0 || (err = ns_add_policy(ns, p)) < 0)
                goto done;
        }
    }
    HASH_ITER(hh, w->nss, ns, tmp) {
        if (ns->n_policies > 1)
            qsort(ns->policies, ns->n_policies, sizeof(*ns->policies), policy_cmp);
    }
    if (HASH_COUNT(w->nss) > 0 && !(w->given = calloc(HASH_COUNT(w->nss), sizeof(*w->given)))) {
        err = mb_error_set(MB_ENOMEM, "out of memory");
        goto done;
    }
    HASH_ITER(hh, w->nss, ns, tmp) {
        if (ns->labels) /* a Namespace object was given, not only policies in it */
            w->given[w->n_given++] = ns;
    }
    if (w->n_given > 1)
        qsort(w->given, w->n_given, sizeof(*w->given), ns_cmp);
done:
    if (err < 0)
        netpol_world_free(w);
    else
        *out = w;
    return err;
}

int netpol_namespace_selected(bool *out, const netpol_world *w, const labels_selector *sel, const char *ns_name)
{
    np_ns *ns = NULL;
    if (labels_selector_is_everything(sel) || labels_selector_is_nothing(sel)) {
        *out = labels_selector_is_everything(sel); /* no labels needed */
        return 0;
    }
    HASH_FIND_STR(w->nss, ns_name, ns);
    if (!ns || !ns->labels)
        return mb_error_set(MB_EINVAL,
                            "Namespace %s is not among the Namespaces given to the NetworkPolicy evaluator, so a "
                            "namespaceSelector cannot be checked against it; list Namespaces with Pods and policies",
                            ns_name);
    *out = labels_selector_matches(sel, ns->labels);
    return 0;
}

size_t netpol_namespace_count(const netpol_world *w)
{
    return w ? w->n_given : 0;
}

const char *netpol_namespace_name(const netpol_world *w, size_t i)
{
    return w && i < w->n_given ? w->given[i]->name : NULL;
}

/* ---- evaluation ------------------------------------------------------- */

static int pod_view(np_pod *out, const cJSON *pod, const char *role)
{
    if (!cJSON_IsObject(pod))
        return mb_error_set(MB_EINVAL, "the %s pod is not an object", role);
    out->pod = pod;
    out->ns = json_str(pod, "metadata", "namespace", NULL);
    out->name = json_str(pod, "metadata", "name", NULL);
    if (!out->ns || !out->name)
        return mb_error_set(MB_EINVAL, "the %s pod has no metadata.namespace or metadata.name", role);
    out->labels = json_get(pod, "metadata", "labels", NULL);
    out->host_network = json_bool(false, pod, "spec", "hostNetwork", NULL);
    out->hypothetical = false;
    return 0;
}

/* 1 when one of the pod's IPs is in the block, 0 when none (or it has none), MB_EINVAL for a bad IP. */
static int ipblock_matches(const np_peer *peer, const np_pod *pod)
{
    const cJSON *status = json_get(pod->pod, "status", NULL);
    const cJSON *ips = json_get(status, "podIPs", NULL);
    const cJSON *one = json_get(status, "podIP", NULL);
    const cJSON *item;
    const char *texts[64];
    size_t n = 0;

    if (cJSON_IsString(one) && one->valuestring[0])
        texts[n++] = one->valuestring;
    if (cJSON_IsArray(ips)) {
        cJSON_ArrayForEach(item, ips) {
            const char *ip = json_str(item, "ip", NULL);
            if (ip && ip[0] && n < sizeof(texts) / sizeof(texts[0]))
                texts[n++] = ip;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char addr[16];
        int family;
        bool excepted = false;
        if (ip_parse(&family, addr, texts[i]) < 0)
            return mb_error_set(MB_EINVAL, "pod %s/%s has status IP \"%s\", which is not an IP address", pod->ns,
                                pod->name, texts[i]);
        if (!cidr_contains(&peer->cidr, family, addr))
            continue;
        for (size_t e = 0; e < peer->n_except && !excepted; e++)
            excepted = cidr_contains(&peer->except[e], family, addr);
        if (!excepted)
            return 1;
    }
    return 0;
}

static int peer_matches(const netpol_world *w, const np_policy *p, const np_peer *peer, const np_pod *other)
{
    bool sel = false;
    int err;
    if (peer->ipblock)
        return ipblock_matches(peer, other);
    if (peer->pods && !labels_selector_matches(peer->pods, other->labels))
        return 0;
    if (!peer->nss)
        return strcmp(other->ns, p->ns) == 0; /* podSelector alone: the policy's namespace */
    if ((err = netpol_namespace_selected(&sel, w, peer->nss, other->ns)) < 0)
        return err;
    return sel;
}

static bool container_port_named(const cJSON *containers, bool sidecars_only, const char *name, int port,
                                 np_proto proto)
{
    const cJSON *c, *cp;
    cJSON_ArrayForEach(c, containers) {
        if (sidecars_only) {
            const char *restart = json_str(c, "restartPolicy", NULL);
            if (!restart || strcmp(restart, "Always") != 0)
                continue;
        }
        cJSON_ArrayForEach(cp, json_get(c, "ports", NULL)) {
            const char *n = json_str(cp, "name", NULL);
            const char *pr = json_str(cp, "protocol", NULL);
            np_proto cproto = PROTO_TCP;
            if (!n || strcmp(n, name) != 0 || json_int(0, cp, "containerPort", NULL) != port)
                continue;
            if (pr && proto_parse(&cproto, pr) < 0)
                continue;
            if (cproto == proto)
                return true;
        }
    }
    return false;
}

static bool port_matches(const np_port *pp, const np_pod *dst, int port, np_proto proto)
{
    if (pp->proto != proto)
        return false;
    if (pp->name && dst->hypothetical)
        return true; /* no containers to resolve it against: the fail-closed reading */
    if (pp->name)
        return container_port_named(json_get(dst->pod, "spec", "containers", NULL), false, pp->name, port, proto) ||
               container_port_named(json_get(dst->pod, "spec", "initContainers", NULL), true, pp->name, port, proto);
    if (!pp->port)
        return true;
    if (pp->end_port)
        return port >= pp->port && port <= pp->end_port;
    return port == pp->port;
}

static int rule_matches(const netpol_world *w, const np_policy *p, const np_rule *r, const np_pod *other,
                        const np_pod *dst, int port, np_proto proto)
{
    bool port_ok = r->n_ports == 0;
    int err = 0;
    for (size_t i = 0; i < r->n_ports && !port_ok; i++)
        port_ok = port_matches(&r->ports[i], dst, port, proto);
    if (!port_ok)
        return 0;
    if (r->n_peers == 0)
        return 1;
    for (size_t i = 0; i < r->n_peers; i++) {
        int m = peer_matches(w, p, &r->peers[i], other);
        if (m > 0)
            return 1;
        if (m < 0)
            err = m;
    }
    return err;
}

/*
 * One side: self is the pod whose isolation is looked at (the source for
 * egress, the destination for ingress), other the far end, dst the pod whose
 * named ports count.
 */
static int side_evaluate(netpol_side *out, const char **policy, const netpol_world *w, np_dir dir, const np_pod *self,
                         const np_pod *other, const np_pod *dst, int port, np_proto proto)
{
    np_ns *ns = NULL;
    bool isolated = false;
    int err = 0;

    *out = NETPOL_OPEN;
    *policy = NULL;
    HASH_FIND_STR(w->nss, self->ns, ns);
    if (!ns)
        return 0;
    for (size_t i = 0; i < ns->n_policies; i++) {
        const np_policy *p = ns->policies[i];
        if (p->invalid) {
            err = mb_error_set(MB_EINVAL, "%s; it decides whether %s/%s is isolated, so fix or delete it", p->invalid,
                               self->ns, self->name);
            continue;
        }
        if (!p->types[dir] || !labels_selector_matches(p->select, self->labels))
            continue;
        isolated = true;
        for (size_t r = 0; r < p->n_rules[dir]; r++) {
            int m = rule_matches(w, p, &p->rules[dir][r], other, dst, port, proto);
            if (m > 0) {
                *out = NETPOL_POLICY_ALLOWS;
                *policy = p->name;
                return 0;
            }
            if (m < 0)
                err = m;
        }
    }
    if (err < 0)
        return err;
    *out = isolated ? NETPOL_DENIED : NETPOL_OPEN;
    return 0;
}

int netpol_evaluate_flags(netpol_verdict *out, const netpol_world *w, const cJSON *src_pod, const cJSON *dst_pod,
                          int port, const char *protocol, unsigned flags)
{
    np_pod src, dst;
    np_proto proto = PROTO_TCP;
    int err, eerr = 0, ierr = 0;
    const char *src_node, *dst_node;
    char emsg[1024] = "";

    memset(out, 0, sizeof(*out));
    out->egress = out->ingress = NETPOL_UNKNOWN;
    if (!w)
        return mb_error_set(MB_EINVAL, "no NetworkPolicy world was given");
    if (protocol && proto_parse(&proto, protocol) < 0)
        return mb_error_set(MB_EINVAL, "protocol \"%s\" is not TCP, UDP or SCTP", protocol);
    if (port < 1 || port > 65535)
        return mb_error_set(MB_EINVAL, "port %d is not a port number 1-65535", port);
    if ((err = pod_view(&src, src_pod, "source")) < 0 || (err = pod_view(&dst, dst_pod, "destination")) < 0)
        return err;
    dst.hypothetical = (flags & NETPOL_DST_HYPOTHETICAL) != 0;

    if (strcmp(src.ns, dst.ns) == 0 && strcmp(src.name, dst.name) == 0) {
        out->egress = out->ingress = NETPOL_SAME_POD;
        out->allowed = true;
        return 0;
    }

    if (src.host_network)
        out->egress = NETPOL_HOST_NETWORK;
    else if ((eerr = side_evaluate(&out->egress, &out->egress_policy, w, DIR_EGRESS, &src, &dst, &dst, port, proto)) <
             0)
        out->egress = NETPOL_UNKNOWN;
    if (eerr == 0 && out->egress == NETPOL_DENIED)
        return 0;
    if (eerr < 0 && eerr != MB_EINVAL)
        return eerr;
    if (eerr < 0)
        snprintf(emsg, sizeof(emsg), "%s", mb_error_last());

    src_node = json_str(src.pod, "spec", "nodeName", NULL);
    dst_node = json_str(dst.pod, "spec", "nodeName", NULL);
    if (dst.host_network)
        out->ingress = NETPOL_HOST_NETWORK;
    else if (src.host_network && src_node && dst_node && src_node[0] && strcmp(src_node, dst_node) == 0)
        out->ingress = NETPOL_LOCAL_NODE;
    else if ((ierr = side_evaluate(&out->ingress, &out->ingress_policy, w, DIR_INGRESS, &dst, &src, &dst, port,
                                   proto)) < 0)
        out->ingress = NETPOL_UNKNOWN;
    if (ierr == 0 && out->ingress == NETPOL_DENIED)
        return 0; /* denied, whatever the egress side could not tell */
    if (ierr < 0)
        return ierr;
    if (eerr < 0)
        return mb_error_set(eerr, "%s", emsg);
    out->allowed = true;
    return 0;
}

int netpol_evaluate(netpol_verdict *out, const netpol_world *w, const cJSON *src_pod, const cJSON *dst_pod, int port,
                    const char *protocol)
{
    return netpol_evaluate_flags(out, w, src_pod, dst_pod, port, protocol, 0);
}

int netpol_allowed(bool *out, const netpol_world *w, const cJSON *src_pod, const cJSON *dst_pod, int port,
                   const char *protocol)
{
    netpol_verdict v;
    int err = netpol_evaluate(&v, w, src_pod, dst_pod, port, protocol);
    if (err < 0)
        return err;
    *out = v.allowed;
    return 0;
}
