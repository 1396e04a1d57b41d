/*
 * A NetworkPolicy (networking.k8s.io/v1) evaluator and the
 * membrane-networkpolicy check built on it. Pure: it reads Pods, Namespaces
 * and NetworkPolicies as the API returns them (cJSON, read-only) and answers
 * whether one pod may open a connection to another pod's port, with the
 * Kubernetes semantics: a pod is isolated in a direction only when a policy in
 * its own namespace selects it with that policy type; a connection needs both
 * the source's egress side and the destination's ingress side to allow it.
 *
 * Choices where Kubernetes leaves room (all "fail closed": when in doubt the
 * connection counts as allowed, because the caller is looking for breaches):
 * - ipBlock matches a pod when one of its IPs (status.podIPs, status.podIP)
 *   lies in the CIDR and outside every except block; a pod with no IP yet is
 *   never matched by an ipBlock (the check is a point-in-time reading).
 * - Host-network pods: the docs allow plugins either to police them like other
 *   pods or to ignore them. We take the union: a host-network pod is never
 *   isolated (egress as source, ingress as destination), it still matches peer
 *   selectors and, through its node IP, ipBlocks; and a host-network source on
 *   the destination's node is always allowed in (traffic from a pod's own node
 *   is never filtered).
 * - A pod connecting to itself is allowed (loopback is never filtered).
 * - Named ports are resolved against the destination pod's containers[].ports
 *   and its sidecars (initContainers with restartPolicy Always), for ingress
 *   and egress rules alike. A hypothetical destination (NETPOL_DST_HYPOTHETICAL:
 *   a pod that does not exist, only its labels do) has no containers to
 *   resolve them against, so every named port of the connection's protocol
 *   matches it.
 * - Pod phase is not looked at here: netpol_membrane_check leaves out pods in
 *   phase Succeeded or Failed (they hold no connections; their IPs may be
 *   reused) and keeps Pending pods (their selectors already decide) and pods
 *   being deleted (they run until they terminate).
 * - An IPv4-mapped IPv6 pod IP (::ffff:a.b.c.d) is the IPv4 address, as Go
 *   reads it.
 * - spec.podSelector missing is {} (all pods in the namespace), as the API's
 *   non-pointer field decodes; policyTypes missing or empty is defaulted as the
 *   API server does (Ingress, plus Egress when spec.egress is non-empty).
 * - The Namespace label kubernetes.io/metadata.name is always its name (the
 *   API server enforces this), also for Namespace objects that lack it.
 * Anything that cannot be evaluated (an invalid policy in a namespace whose
 * pods are asked about, an unknown protocol, a bad CIDR, a namespaceSelector
 * against a Namespace the world was not given, an unparsable pod IP) is an
 * error with a message, never a silent "denied"; an error on one side does
 * not hide a definite denial on the other.
 *
 * A built world is read-only: threads may share it (errors go to each
 * thread's own error channel).
 */
#ifndef MB_VERIFY_NETPOL_H
#define MB_VERIFY_NETPOL_H

#include "verify/labels.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

/* Namespaces and NetworkPolicies, indexed by namespace and compiled once. */
typedef struct netpol_world netpol_world;

/*
 * Builds the world from the Namespaces and the NetworkPolicies (each a JSON
 * array of objects, or a *List object with items, or NULL for none). The
 * world borrows policy names from `policies`: keep it alive as long as the
 * world. A policy the API server would reject is kept and reported when a pod
 * of its namespace is evaluated. 0, MB_EINVAL (an object without
 * metadata.name/namespace, input not a list) or MB_ENOMEM.
 */
int netpol_world_new(netpol_world **out, const cJSON *namespaces, const cJSON *policies);

void netpol_world_free(netpol_world *w);

/*
 * Whether namespace ns is selected by sel, by the labels of its Namespace
 * object. MB_EINVAL when the world has no Namespace called ns and sel needs
 * its labels ({} and nil do not).
 */
int netpol_namespace_selected(bool *out, const netpol_world *w, const labels_selector *sel, const char *ns);

/*
 * The Namespaces the world was given (not those it knows only from a
 * NetworkPolicy's metadata.namespace), sorted by name: how many, and the
 * name of the i-th (borrowed from the world; NULL past the end).
 */
size_t netpol_namespace_count(const netpol_world *w);
const char *netpol_namespace_name(const netpol_world *w, size_t i);

/* How one side (egress of the source, ingress of the destination) decided. */
typedef enum {
    NETPOL_OPEN,          /* no policy isolates the pod in this direction */
    NETPOL_POLICY_ALLOWS, /* isolated, and the named policy allows the connection */
    NETPOL_DENIED,        /* isolated, and no policy selecting the pod allows it */
    NETPOL_HOST_NETWORK,  /* the pod uses the host network: treated as not isolated */
    NETPOL_LOCAL_NODE,    /* ingress: a host-network source on the destination's node */
    NETPOL_SAME_POD,      /* source and destination are one pod */
    NETPOL_UNKNOWN,       /* not decided (or not decidable) here: the other side denies */
} netpol_side;

typedef struct {
    bool allowed;
    netpol_side egress;
    netpol_side ingress;
    /* With NETPOL_POLICY_ALLOWS: the first policy by name that allows it, in
     * the source's (egress) or destination's (ingress) namespace. Borrowed
     * from the world's input; NULL otherwise. */
    const char *egress_policy;
    const char *ingress_policy;
} netpol_verdict;

/*
 * Evaluates a connection from src_pod to dst_pod's port (1-65535) over
 * protocol ("TCP", "UDP" or "SCTP"; NULL means TCP). 0 with *out filled,
 * MB_EINVAL when it cannot be evaluated (see the file comment), MB_ENOMEM.
 */
int netpol_evaluate(netpol_verdict *out, const netpol_world *w, const cJSON *src_pod, const cJSON *dst_pod, int port,
                    const char *protocol);

/*
 * dst_pod stands for a pod that does not exist (netpol_membrane_check's
 * hypothetical pods): every named port in a rule of the connection's protocol
 * is taken to match it. Whether a pod is hypothetical is the caller's word,
 * never read from the pod's JSON. A hypothetical pod is otherwise an ordinary
 * pod object: without status IPs no ipBlock matches it, without
 * spec.hostNetwork and spec.nodeName it is isolated like any pod.
 */
#define NETPOL_DST_HYPOTHETICAL 0x1u

/* netpol_evaluate with flags (NETPOL_DST_HYPOTHETICAL or 0). */
int netpol_evaluate_flags(netpol_verdict *out, const netpol_world *w, const cJSON *src_pod, const cJSON *dst_pod,
                          int port, const char *protocol, unsigned flags);

/* netpol_evaluate, reduced to the verdict. */
int netpol_allowed(bool *out, const netpol_world *w, const cJSON *src_pod, const cJSON *dst_pod, int port,
                   const char *protocol);

/* The outcome of the membrane-networkpolicy check. */
typedef struct {
    bool passed;
    char *message;            /* one sentence a person can act on; owned, see netpol_result_dispose */
    size_t client_pods;       /* client pods evaluated: live ones, and hypothetical ones for entries without */
    size_t store_pods;        /* distinct store pods evaluated, live and hypothetical alike */
    size_t hypothetical_pods; /* how many of those (clients and stores, distinct) are hypothetical */
    size_t paths_checked;     /* client pod x store pod x port */
    size_t paths_allowed;
} netpol_result;

/*
 * The membrane-networkpolicy check (API.md): for every client pod, store pod
 * and store port, NetworkPolicy must deny the TCP connection.
 * membrane_spec is spec.membrane; pods all live pods (array or PodList).
 *  - clients[]: {namespaceSelector, podSelector}; without namespaceSelector
 *    the release namespace, without podSelector every pod of the selected
 *    namespaces; at least one of the two is required.
 *  - stores[]: {name, podSelector (required), namespaceSelector (optional:
 *    without it the release namespace), ports (required, numbers)}.
 * The pods of an entry are the live pods it matches (a client pod belongs to
 * the first clients entry it matches). In every namespace an entry selects
 * (its namespaceSelector among the world's Namespaces; the release namespace
 * without one) where it matches no live pod, a hypothetical pod stands in
 * (so a namespace that runs none of the entry's pods today is judged as if
 * one started there), carrying the labels labels_selector_example gives
 * its podSelector (none without one); such a pod has no IP, no node and no
 * host network, and as a store every named port matches it
 * (NETPOL_DST_HYPOTHETICAL). Hypothetical pods are named by their labels,
 * "<app=kfm-ui>"; a client and a store hypothetical pod with the same labels
 * in one namespace are one pod (so a path between them is allowed, as for a
 * live pod that is both).
 * Passed is false on any allowed path (the message names the first, live
 * pods before hypothetical ones, each in namespace/name order, and which side
 * let it through; a hypothetical pod is "hypothetical pod ns/<labels>"), and
 * when an entry matches no live pod and no pod could match it (no labels
 * satisfy its podSelector, or its namespaceSelector selects no Namespace: the
 * message names the entry and the field to fix; after a breach it is added
 * with "; also,"). Every message, passed or not, ends by listing the
 * hypothetical pods, if any (the first eight, then how many more).
 * Returns 0 with *out filled, or MB_EINVAL (invalid spec, or the world cannot
 * be evaluated) / MB_ENOMEM; on an error *out still says passed=false with the
 * error sentence as message, so the caller counts it as a breach.
 */
int netpol_membrane_check(netpol_result *out, const netpol_world *w, const cJSON *membrane_spec,
                          const char *release_namespace, const cJSON *pods);

/* Frees what *r owns and zeroes it; accepts NULL. */
void netpol_result_dispose(netpol_result *r);

#endif
