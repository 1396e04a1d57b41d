/*
 * membrane-probe: an active check of the trust membrane. For every
 * spec.membrane.clients entry, in every namespace its namespaceSelector
 * matches (the release's namespace without one), short-lived pods carrying the
 * labels a hypothetical pod of that entry would have (labels_selector_example)
 * try a TCP connection to every store pod's IP and every store port. The
 * probe's script (probe_script) prints exactly one verdict per target to the
 * termination message: "open <ip>:<port>", "closed <ip>:<port>" (refused or
 * timed out, nothing else) or "error <ip>:<port> <why>" (nc missing, bad
 * usage, DNS, any other failure). The kubelet keeps at most the last 4096
 * bytes of a termination message, so the targets are shared out among as
 * many pods per client and namespace as it takes for every worst-case report
 * to fit; a report that fills the message is taken as cut, never judged.
 * Any open target is a breach; a target without a verdict, an error, a stray
 * line, or a pod that cannot be created, cannot run or does not finish in
 * time fails the check. The pods are owned by the release when they share its
 * namespace, labelled with the release's uid (governance.kfm.dev/probe) and
 * deleted when the check ends; pods left by an earlier run (an operator that
 * died mid-probe) are deleted, in every namespace, before new ones are made,
 * and the release controller deletes them all before it lets a deleted
 * release go (probe_pods_sweep).
 */
#ifndef MB_VERIFY_PROBE_H
#define MB_VERIFY_PROBE_H

#include "kube/client.h"
#include "verify/owner.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#define PROBE_LABEL "governance.kfm.dev/probe"
#define PROBE_TARGETS_ANNOTATION "governance.kfm.dev/probe-targets"
/* A probe pod's container: its requests and limits (a shell and nc trying a few connections). */
#define PROBE_CPU "100m"
#define PROBE_MEMORY "32Mi"

/* The kubelet keeps at most this many bytes of a termination message (the last ones). */
#define PROBE_REPORT_MAX 4096
/* A probe pod's targets are chosen so that its longest possible report stays within this. */
#define PROBE_REPORT_BUDGET 4000
/* The script cuts an error's why to this many characters. */
#define PROBE_WHY_MAX 64

/*
 * The probe's script, for `sh -c`: reads the targets ("ip:port", space
 * separated) from $TARGETS, the connect timeout in seconds from $WAIT, and
 * writes its verdicts to the file $REPORT (default /dev/termination-log),
 * one line per target, in no particular order; exits 0. It needs nothing but
 * a POSIX shell's builtins and nc (busybox, OpenBSD or traditional netcat).
 * Borrowed, static.
 */
const char *probe_script(void);

typedef enum {
    PROBE_MISSING = 0, /* no line names the target */
    PROBE_CLOSED,
    PROBE_ERROR,
    PROBE_OPEN,
} probe_verdict;

/* One probe's report read against the targets it was given. */
typedef struct {
    size_t n;
    probe_verdict *verdicts; /* one per target, in the order given */
    char **whys;             /* one per target: an error's why, else NULL */
    bool truncated;          /* the report fills the termination message: lines may be lost */
    char *stray;             /* the first line that is not the one verdict of a given target, or NULL */
} probe_report;

/*
 * Reads text (a termination message; NULL is empty) against the n targets
 * addrs[i] ("ip:port"). A second verdict for a target is stray, and the
 * worse of the two stands (open over error over closed). *out is the
 * caller's. 0 or MB_ENOMEM.
 */
int probe_report_parse(probe_report **out, const char *const *addrs, size_t n, const char *text);
void probe_report_free(probe_report *r);

typedef struct {
    char *addr;  /* "ip:port" */
    char *store; /* spec.membrane.stores[].name */
    char *pod;   /* "<namespace>/<name>" of the store pod */
} probe_target;

typedef enum {
    PROBE_POD_PLANNED = 0, /* not created (yet) */
    PROBE_POD_RUNNING,     /* created, not finished */
    PROBE_POD_UNRUN,       /* could not be created, or cannot run (detail says why) */
    PROBE_POD_TIMEOUT,     /* did not finish in time (detail may say what it was doing) */
    PROBE_POD_ENDED,       /* terminated: report holds its message; detail is set when it did not succeed */
} probe_pod_state;

typedef struct {
    char *ns, *name;
    size_t client;         /* index in spec.membrane.clients */
    cJSON *labels;         /* the labels it carries, the probe label included */
    size_t first, count;   /* its targets: plan->targets[first, first + count) */
    probe_pod_state state; /* the rest is set by whoever runs the pod */
    char *uid;
    char *report;
    char *detail;
} probe_pod;

typedef struct {
    probe_target *targets;
    size_t n_targets;
    probe_pod *pods;
    size_t n_pods;
    char **clients; /* one per clients entry: "clients[0] (app=kfm-ui)" */
    size_t n_clients;
    char *ns, *name, *uid, *api_version; /* the release's */
    char *image;
    long timeout_seconds; /* spec.membrane.probe.timeoutSeconds */
    long wait_seconds;    /* nc's connect timeout */
} probe_plan;

/*
 * Plans the probe of the release owner (whose spec.membrane, with a probe,
 * is membrane) from the live pods
 * and namespaces (lists, or List objects with items): every live store pod
 * (not Succeeded or Failed, not a probe pod) and port is a target, and every
 * clients entry gets, in every namespace it selects, pods that share out the
 * targets. release_id names the pods. MB_EINVAL (the message names the field
 * and what to fix) for a selector that cannot be read or that no labels can
 * satisfy, a namespaceSelector that matches no namespace; MB_ENOTFOUND for a
 * store with no live pod, or a live store pod without an IP (nothing the probe
 * could try); MB_ENOMEM. *out is the caller's.
 */
int probe_plan_build(probe_plan **out, const verify_owner *owner, const cJSON *membrane, const char *release_id,
                     const cJSON *pods, const cJSON *namespaces);
void probe_plan_free(probe_plan *p);

/* The Pod object of plan->pods[i]. *out is the caller's. 0 or MB_ENOMEM. */
int probe_pod_manifest(cJSON **out, const probe_plan *plan, size_t i);

/*
 * Judges a plan whose pods have run (their state, report and detail set):
 * *passed only when every pod ended with success and every target of every
 * pod is closed; *message (the caller's) is one sentence saying what was
 * tried or what failed and what to do. 0 or MB_ENOMEM.
 */
int probe_plan_judge(bool *passed, char **message, const probe_plan *plan);

/*
 * Deletes every probe pod labelled governance.kfm.dev/probe=owner_label (the
 * release's uid), in every namespace: what an earlier run left, and, on the
 * release's deletion, what no ownerReference can collect (a pod in another
 * namespace than the release's cannot be owned by it). 0, or the first error
 * (the list failing: nothing could be seen, so nothing is known deleted).
 */
int probe_pods_sweep(kube_client *c, const char *owner_label);

/*
 * Runs the probe of the release owner (membrane: its spec.membrane, with a
 * probe) and returns one check
 * result {name: "membrane-probe", passed, latencyMs, message[, trigger]} in
 * *out. A probe that cannot be planned, made, run, or that times out or
 * reports anything but closed for every target fails the check (fail
 * closed). An error return is MB_ENOMEM only.
 */
int probe_membrane_check(cJSON **out, kube_client *client, const verify_owner *owner, const cJSON *membrane,
                         const char *release_id);

#endif
