#!/usr/bin/env bash
# The admission policies that confine membrane's own ServiceAccount
# (manifests/admission-*.yaml, manifests/probe/admission-pods.yaml), against the
# real apiserver: with the operator's own token (operator.kubeconfig), every
# write the contract does not need is denied with the policy's message (scale,
# command, env, serviceAccountName, an image by tag, another container, labels,
# other annotations, creating and deleting a Deployment; a pod mounting another
# ServiceAccount, a privileged pod, an unpinned image, no limits, a pod without
# the probe label, deleting a pod that is not a probe pod; writing a ConfigMap
# that is not membrane's), and the writes it needs pass (the image to a digest
# with the release annotations, a probe-shaped pod and its deletion, a published
# ConfigMap, adopting a user's index ConfigMap). The admin is unaffected. Then
# the operator under the policies: a release rolls out and a crash-looping one
# rolls back; without --enable-probe a release asking for the probe is Stalled
# at the gates saying how to enable it. (test_release.sh, test_rollback.sh and
# test_verify.sh run under the same policies: lib.sh installs them.)
source "$(dirname "$0")/lib.sh"

install_operator_rbac
good_api_start

A=$(digest adm-a); B=$(digest adm-b)
REPO=registry.kfm.local/kfm-api
ns=$(new_namespace admit)
as_operator() { kubectl --kubeconfig "$E2E_DIR/operator.kubeconfig" -n "$ns" "$@"; }
export -f as_operator   # denied runs its command in bash -c
export E2E_DIR ns

# denied DESCRIPTION POLICY SAYS command...: the command, run as the operator, fails with
# POLICY's denial and its message holds SAYS
denied() {
  local what=$1 policy=$2 says=$3 out; shift 3
  check "denied: $what" bash -c '
    policy=$1 says=$2; shift 2
    if out=$("$@" 2>&1); then echo "allowed: $out"; exit 1; fi
    grep -qF "ValidatingAdmissionPolicy '"'"'$policy'"'"'" <<<"$out" || { echo "not denied by $policy: $out"; exit 1; }
    grep -qF -- "$says" <<<"$out" || { echo "the message does not say \"$says\": $out"; exit 1; }' _ "$policy" "$says" "$@"
}

# the policies are in effect once the apiserver has loaded them: writes as the operator
# are denied (tried with --dry-run=server, which admission judges but nothing stores)
deployment "$ns" kfm-api "$REPO@$A" 2 "      - {name: sidecar, image: \"registry.kfm.local/sidecar@$A\"}"
policies_loaded() {
  ! as_operator patch deploy kfm-api -p '{"spec":{"replicas":5}}' --dry-run=server >/dev/null 2>&1 &&
    ! as_operator create configmap not-membranes --from-literal=a=b --dry-run=server >/dev/null 2>&1
}
check "the admission policies are loaded" eventually 30 policies_loaded

say "Deployments: only the image of one container, pinned by digest, and membrane's annotations"
P=membrane-deployment-writes
denied "scale the Deployment" $P "spec.replicas changed" as_operator patch deploy kfm-api -p '{"spec":{"replicas":5}}'
denied "change the container's command" $P "container api changed in more than its image" \
  as_operator patch deploy kfm-api -p '{"spec":{"template":{"spec":{"containers":[{"name":"api","command":["sh","-c","id"]}]}}}}'
denied "add an env var" $P "container api changed in more than its image" as_operator set env deploy/kfm-api -c api FOO=bar
kubectl -n "$ns" create serviceaccount other >/dev/null
denied "change serviceAccountName" $P "spec.template.spec.serviceAccountName" \
  as_operator patch deploy kfm-api -p '{"spec":{"template":{"spec":{"serviceAccountName":"other"}}}}'
denied "patch the image to a tag" $P "only pinned by digest" as_operator set image deploy/kfm-api api=$REPO:latest
denied "patch the image to a tag with a short digest" $P "only pinned by digest" as_operator set image deploy/kfm-api api=$REPO@sha256:abc
denied "change another container too" $P "per write, not of api, sidecar" \
  as_operator set image deploy/kfm-api api=$REPO@$B sidecar=registry.kfm.local/sidecar@$B
denied "add a volume" $P "spec.template.spec.volumes" \
  as_operator patch deploy kfm-api -p '{"spec":{"template":{"spec":{"volumes":[{"name":"h","hostPath":{"path":"/"}}]}}}}'
denied "set a pod securityContext" $P "spec.template.spec.securityContext" \
  as_operator patch deploy kfm-api -p '{"spec":{"template":{"spec":{"securityContext":{"runAsUser":0}}}}}'
denied "change the strategy" $P "spec.strategy changed" \
  as_operator patch deploy kfm-api -p '{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}'
denied "label the Deployment" $P "metadata.labels changed" as_operator label deploy kfm-api x=y
denied "label the pod template" $P "spec.template.metadata.labels changed" \
  as_operator patch deploy kfm-api -p '{"spec":{"template":{"metadata":{"labels":{"x":"y"}}}}}'
denied "annotate the Deployment with another annotation" $P "annotation example.com/x changed" \
  as_operator annotate deploy kfm-api example.com/x=y
denied "annotate the pod template with another annotation" $P "annotation example.com/x changed" \
  as_operator patch deploy kfm-api -p '{"spec":{"template":{"metadata":{"annotations":{"example.com/x":"y"}}}}}'
kubectl create clusterrole membrane-e2e-deploy-writes --verb=create,delete --resource=deployments.apps >/dev/null 2>&1 || true
kubectl create clusterrolebinding membrane-e2e-deploy-writes --clusterrole=membrane-e2e-deploy-writes \
  --serviceaccount=membrane-system:membrane >/dev/null 2>&1 || true
# with RBAC granting them, creating and deleting Deployments is still denied
check "  (RBAC grants it)" eventually 10 kubectl auth can-i delete deployments.apps -n "$ns" --as=system:serviceaccount:membrane-system:membrane
denied "create a Deployment (even with RBAC granting it)" $P "may not create Deployments" \
  as_operator create deployment other --image="$REPO@$A"
denied "delete a Deployment (even with RBAC granting it)" $P "may not delete Deployments" \
  as_operator delete deploy kfm-api --wait=false
kubectl delete clusterrolebinding,clusterrole membrane-e2e-deploy-writes >/dev/null
gen=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
check "after the denials the Deployment is unchanged (generation $gen, 2 replicas, image A)" equals "$gen 2 $REPO@$A" \
  jp "$ns" deploy/kfm-api '{.metadata.generation} {.spec.replicas} {.spec.template.spec.containers[0].image}'
release_patch='{"metadata":{"annotations":{"governance.kfm.dev/release-owner":"'$ns'/kfm-api","governance.kfm.dev/rollback-image":"'$REPO@$A'","governance.kfm.dev/rollback-for":"0123456789ab","governance.kfm.dev/rolled-back-from":null,"governance.kfm.dev/rollback-trigger":null}},"spec":{"template":{"metadata":{"annotations":{"governance.kfm.dev/release-id":"0123456789ab","governance.kfm.dev/policy-bundle-digest":"'$A'"}},"spec":{"containers":[{"name":"api","image":"'$REPO@$B'"}]}}}}'
check "allowed: the release patch (the image to a digest, the release annotations)" as_operator patch deploy kfm-api -p "$release_patch"
check "  the Deployment runs B" equals "$REPO@$B" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "allowed: the rollback patch (back to A, rolled-back-from and rollback-trigger)" as_operator patch deploy kfm-api -p \
  '{"metadata":{"annotations":{"governance.kfm.dev/release-owner":"'$ns'/kfm-api","governance.kfm.dev/rolled-back-from":"'$REPO@$B'","governance.kfm.dev/rollback-trigger":"Manual"}},"spec":{"template":{"spec":{"containers":[{"name":"api","image":"'$REPO@$A'"}]}}}}'
check "allowed: removing the owner annotation (a deleted release)" as_operator patch deploy kfm-api -p \
  '{"metadata":{"annotations":{"governance.kfm.dev/release-owner":null}}}'
check "the admin is unaffected: scales, sets env and labels the Deployment" bash -c \
  "kubectl -n $ns scale deploy kfm-api --replicas=1 && kubectl -n $ns set env deploy/kfm-api -c api FOO=bar && kubectl -n $ns label deploy kfm-api x=y"

say "Pods: only probe pods, deleted only by the probe label"
P=membrane-pod-writes
uid=0b7f0000-0000-4000-8000-000000000001
# probe_pod NAME [SPEC LINES] [CONTAINER LINES]: a Pod shaped as controller/verify/probe_plan.c makes it
probe_pod() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $1
  labels: {app: kfm-ui, governance.kfm.dev/probe: "$uid"}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  activeDeadlineSeconds: 20
${2:-}
  containers:
  - name: probe
    image: "registry.kfm.local/busybox@$A"
    command: [sh, -c, "exit 0"]
    env: [{name: TARGETS, value: "10.0.0.1:5432"}, {name: WAIT, value: "3"}]
    resources: {limits: {cpu: 100m, memory: 32Mi}, requests: {cpu: 100m, memory: 32Mi}}
${3:-$probe_sc}
EOF
}
probe_sc='    securityContext: {privileged: false, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}'
pod_denied() { # description says spec-lines container-lines [sed]
  local f="$E2E_DIR/pod.yaml"
  probe_pod "bad-$RANDOM" "$3" "${4:-}" | sed "${5:-}" > "$f"
  denied "$1" $P "$2" as_operator create -f "$f"
}
pod_denied "a pod mounting another ServiceAccount" "run as the default ServiceAccount" "  serviceAccountName: other"
pod_denied "a pod with the ServiceAccount token mounted" "automountServiceAccountToken: false" "" "" 's/automountServiceAccountToken: false/automountServiceAccountToken: true/'
pod_denied "a privileged pod" "privileged" "" "    securityContext: {privileged: true}"
pod_denied "a pod adding a capability" "adds no capabilities" "" "    securityContext: {allowPrivilegeEscalation: false, capabilities: {add: [NET_ADMIN]}}"
pod_denied "a pod on the host network" "host namespace" "  hostNetwork: true"
pod_denied "a pod mounting a hostPath" "with volumes (h)" "  volumes: [{name: h, hostPath: {path: /}}]"
pod_denied "a pod mounting a Secret" "with volumes (s)" "  volumes: [{name: s, secret: {secretName: x}}]"
pod_denied "a pod with an unpinned image" "pinned by digest" "" "" "s|registry.kfm.local/busybox@$A|busybox:latest|"
pod_denied "a pod without limits" "cpu and memory limits" "" "" "/resources:/d"
pod_denied "a pod without the probe label" "lacks the label governance.kfm.dev/probe" "" "" "s/, governance.kfm.dev\/probe: \"$uid\"//"
pod_denied "a pod with env from a Secret" "env taken from Secrets" "" \
  "    envFrom: [{secretRef: {name: x}}]
$probe_sc"
kubectl -n "$ns" run not-a-probe --image="registry.kfm.local/busybox@$A" --restart=Never >/dev/null
denied "delete a pod without the probe label" $P "may delete only its probe pods" as_operator delete pod not-a-probe --wait=false
probe_pod probe-ok > "$E2E_DIR/probe-ok.yaml"
check "allowed: a probe-shaped pod" as_operator create -f "$E2E_DIR/probe-ok.yaml"
check "allowed: deleting it (it carries the probe label)" as_operator delete pod probe-ok --wait=false
check "the admin is unaffected: a privileged pod" bash -c "kubectl -n $ns run priv --image=busybox --restart=Never --overrides='{\"spec\":{\"containers\":[{\"name\":\"priv\",\"image\":\"busybox\",\"securityContext\":{\"privileged\":true}}]}}'"

say "ConfigMaps: only the ones membrane publishes"
P=membrane-configmap-writes
kubectl -n "$ns" create configmap app-config --from-literal=mode=safe >/dev/null
denied "create a ConfigMap without membrane's label" $P "may create only the ConfigMaps it publishes" \
  as_operator create configmap evil --from-literal=a=b
denied "edit an unrelated ConfigMap" $P "label it app.kubernetes.io/managed-by=membrane" bash -c \
  "kubectl -n $ns get cm app-config -o json | sed 's/\"safe\"/\"open\"/' | kubectl --kubeconfig '$E2E_DIR/operator.kubeconfig' replace -f -"
denied "label an unrelated ConfigMap as membrane's while changing it" $P "is neither" bash -c \
  "kubectl -n $ns label cm app-config app.kubernetes.io/managed-by=membrane --dry-run=client -o json | sed 's/\"safe\"/\"open\"/' | kubectl --kubeconfig '$E2E_DIR/operator.kubeconfig' replace -f -"
check "the unrelated ConfigMap is unchanged" equals safe jp "$ns" cm/app-config '{.data.mode}'
check "allowed: creating a ConfigMap labelled as membrane's" bash -c \
  "kubectl -n $ns create configmap pub --from-literal=a=b --dry-run=client -o yaml | kubectl label --local -f - app.kubernetes.io/managed-by=membrane -o yaml | kubectl --kubeconfig '$E2E_DIR/operator.kubeconfig' -n $ns create -f -"
# the first promotion into an index ConfigMap a user made without the label: the update that
# adds the label and one index entry, nothing else
kubectl -n "$ns" create configmap kfm-published-datasets >/dev/null
entry='{"auditRef":"'$A'","catalog":{},"datasetID":"kfm.x","license":"CC-BY-4.0","policyLabel":"public","versionID":"1"}'
adopt() { # extra sed on the JSON
  kubectl -n "$ns" get cm kfm-published-datasets -o json | ENTRY="$entry" python3 -c '
import json, os, sys
o = json.load(sys.stdin)
o.setdefault("metadata", {}).setdefault("labels", {})["app.kubernetes.io/managed-by"] = "membrane"
o.setdefault("data", {})["kfm.x"] = os.environ["ENTRY"]
if len(sys.argv) > 1: o["data"]["other"] = "x"
print(json.dumps(o))' "$@" | as_operator replace -f -
}
export -f adopt
export entry
denied "adopting a user's ConfigMap while adding a key that is not an index entry" $P "is neither" adopt extra
check "allowed: adopting a user's index ConfigMap (adding the label and an index entry)" adopt
check "  now labelled as membrane's" equals membrane jp "$ns" cm/kfm-published-datasets '{.metadata.labels.app\.kubernetes\.io/managed-by}'

say "the operator under the policies: a release rolls out and a crash-looping one rolls back"
operator_start
kubectl -n "$ns" delete pod --all --wait=false >/dev/null
ns2=$(new_namespace admit-rel)
deployment "$ns2" kfm-api "$REPO@$A"
E2E_OBSERVATION_SECONDS=1 release "$ns2" kfm-api kfm-api "$B" >/dev/null
check "a release from A to B Succeeds" eventually 90 phase_is "$ns2" kfm-api Succeeded
check "  the Deployment runs B, with 3 replicas" equals "$REPO@$B 3" jp "$ns2" deploy/kfm-api '{.spec.template.spec.containers[0].image} {.spec.replicas}'
E2E_OBSERVATION_SECONDS=1 release "$ns2" kfm-api kfm-api "$(digest_crashloop adm)" >/dev/null
check "a crash-looping digest is rolled back: RolledBack" eventually 90 phase_is "$ns2" kfm-api RolledBack
check "  the Deployment runs B again" equals "$REPO@$B" jp "$ns2" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "  the operator met no admission denial" bash -c "! grep -q 'ValidatingAdmissionPolicy' '$(operator_log)'"
# a write an admission policy denies is retried with backoff, and the operator's log says which
# policy refused it and why (docs/operations.md); here a policy of this test refuses every
# Deployment patch of the operator in one namespace
ns4=$(new_namespace admit-deny)
kubectl label namespace "$ns4" membrane-e2e/deny-patches=true >/dev/null
kubectl apply -f - >/dev/null <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: membrane-e2e-deny-patches}
spec:
  failurePolicy: Fail
  matchConstraints:
    namespaceSelector: {matchLabels: {membrane-e2e/deny-patches: "true"}}
    resourceRules: [{apiGroups: [apps], apiVersions: ["*"], resources: [deployments], operations: [UPDATE]}]
  matchConditions: [{name: membrane, expression: "request.userInfo.username == 'system:serviceaccount:membrane-system:membrane'"}]
  validations: [{expression: "false", message: "this test refuses every Deployment patch here", reason: Forbidden}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: membrane-e2e-deny-patches}
spec: {policyName: membrane-e2e-deny-patches, validationActions: [Deny]}
EOF
deployment "$ns4" kfm-api "$REPO@$A" 1
check "(the test's policy is loaded)" eventually 30 bash -c \
  "! kubectl -n $ns4 patch deploy kfm-api -p '{\"metadata\":{\"annotations\":{\"governance.kfm.dev/release-owner\":\"x\"}}}' --dry-run=server --as=system:serviceaccount:membrane-system:membrane"
release "$ns4" kfm-api kfm-api "$B" >/dev/null
denial_logged() {
  grep -F '"level":"warn"' "$(operator_log)" | grep -F "patching Deployment $ns4/kfm-api" |
    grep -F "ValidatingAdmissionPolicy 'membrane-e2e-deny-patches'" | grep -qF 'this test refuses every Deployment patch here (403 Forbidden)'
}
check "a denied Deployment patch: the operator's log names the policy and its message" eventually 30 denial_logged
check "  a Warning Event WriteDenied on the release names the Deployment and the policy's message" eventually 30 bash -c \
  "kubectl -n $ns4 get events --field-selector involvedObject.name=kfm-api,reason=WriteDenied -o jsonpath='{.items[*].message}' | grep -F 'patching Deployment $ns4/kfm-api was refused' | grep -qF 'this test refuses every Deployment patch here'"
check "  the Deployment still runs A" equals "$REPO@$A" jp "$ns4" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
kubectl delete validatingadmissionpolicybinding,validatingadmissionpolicy membrane-e2e-deny-patches >/dev/null
kubectl -n "$ns4" delete gar kfm-api --wait=false >/dev/null
operator_stop

say "without --enable-probe a release asking for the probe is Stalled at the gates"
E2E_NO_PROBE=1 operator_start
ns3=$(new_namespace admit-probe)
deployment "$ns3" kfm-api "$REPO@$A" 1
release "$ns3" kfm-api kfm-api "$B" "  membrane:
    clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]
    stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]
    apiServiceAccount: kfm-api
    probe: {image: \"registry.kfm.local/busybox@$A\"}" >/dev/null
check "GatesPassed=False InvalidSpec" eventually 30 condition_is "$ns3" kfm-api GatesPassed False InvalidSpec
check "  Stalled=True" condition_is "$ns3" kfm-api Stalled True InvalidSpec
check "  the message says how to enable the probe" bash -c \
  "kubectl -n $ns3 get gar kfm-api -o jsonpath='{.status.conditions[?(@.type==\"GatesPassed\")].message}' | grep -F -- '--enable-probe' | grep -F 'probe.enabled=true' | grep -qF 'manifests/probe'"
check "  the Deployment was not touched" equals "$REPO@$A" jp "$ns3" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
kubectl -n "$ns3" delete gar kfm-api --timeout=30s >/dev/null
operator_stop
