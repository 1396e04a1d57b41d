/*
 * membrane-probe: an active check of the trust membrane. A short-lived pod
 * carrying the labels of the first spec.membrane.clients entry, in that
 * client's namespace, tries a TCP connection to every store pod's IP and port
 * and writes one line per target ("open 10.1.2.3:5432" or "closed ...") to its
 * termination message. Any open connection is a breach. The pod is owned by
 * the release when both live in one namespace, labelled with the release's
 * uid (governance.kfm.dev/probe), and
 * deleted when the check ends; a pod left by an earlier run (an operator that
 * died mid-probe) is deleted before a new one is made.
 */
#ifndef VERIFY_PROBE_H
#define VERIFY_PROBE_H

#include "kube/client.h"

#include <cjson/cJSON.h>

#define PROBE_LABEL "governance.kfm.dev/probe"
#define PROBE_TARGETS_ANNOTATION "governance.kfm.dev/probe-targets"

/*
 * Runs the probe of a release with spec.membrane.probe and returns one check
 * result {name: "membrane-probe", passed, latencyMs, message[, trigger]} in
 * *out. A probe that cannot be made, times out or reports nothing readable
 * fails the check (fail closed).
 */
int probe_membrane_check(cJSON **out, kube_client *client, const cJSON *release, const char *release_id);

#endif
