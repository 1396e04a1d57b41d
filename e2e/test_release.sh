#!/usr/bin/env bash
# GovernedAPIRelease on the local control plane, as a user drives it with
# kubectl: a rollout from digest A to B, the crash-loop and progress-deadline
# triggers, every gate failure, the restart between the Deployment patch that
# records the rollback target and the status write, a GitOps revert, suspend
# and deletion.
source "$(dirname "$0")/lib.sh"

install_operator_rbac
good_api_start
operator_start

A=$(digest good-a); B=$(digest good-b)
REPO=registry.kfm.local/kfm-api

say "a release rolls a 3-replica Deployment from A to B"
ns=$(new_namespace rel)
deployment "$ns" kfm-api "$REPO@$A"
release "$ns" kfm-api kfm-api "$B" >/dev/null
check "kubectl wait --for=condition=Ready returns" kubectl -n "$ns" wait --for=condition=Ready gar/kfm-api --timeout=90s
check "phase Succeeded" phase_is "$ns" kfm-api Succeeded
check "the Deployment runs B" equals "$REPO@$B" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "all 3 replicas available" equals 3 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
check "rollback target A recorded" equals "$A" jp "$ns" gar/kfm-api '{.status.rollbackTarget}'
check "the owner annotation names the release" equals "$ns/kfm-api" jp "$ns" deploy/kfm-api '{.metadata.annotations.governance\.kfm\.dev/release-owner}'
check "the pod template carries the release ID" equals "$(jp "$ns" gar/kfm-api '{.status.releaseID}')" \
  jp "$ns" deploy/kfm-api '{.spec.template.metadata.annotations.governance\.kfm\.dev/release-id}'
check "Reconciling and Stalled absent" equals "" jp "$ns" gar/kfm-api '{.status.conditions[?(@.type=="Stalled")].status}{.status.conditions[?(@.type=="Reconciling")].status}'
check "observedGeneration is the generation" equals "$(jp "$ns" gar/kfm-api '{.metadata.generation}')" jp "$ns" gar/kfm-api '{.status.observedGeneration}'
for r in GatesPassed RolloutStarted RolloutComplete ReleaseSucceeded; do
  check "Event $r" eventually 10 has_event "$ns" kfm-api "$r"
done
kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/gar.json"
check "membrane receipt verify accepts the receipt chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/gar.json"
check "kubectl get gar shows the printer columns" bash -c "kubectl -n $ns get gar | head -1 | grep -q 'ENV.*DIGEST.*PHASE.*READY.*AGE'"

say "releases in quick succession: each reconcile starts from the operator's own last writes"
# Gates, rollout, checks and Succeeded follow each other within milliseconds (no observation
# time), so reconciles start before the cache has the operator's last status write. They start
# from that write: no write meets a 409, as nobody else writes between the changes.
burst=$(new_namespace burst)
deployment "$burst" kfm-api "$REPO@$A" 1
metrics_scrape "$E2E_DIR/metrics-burst-start.txt"
for i in 1 2 3 4 5; do
  E2E_OBSERVATION_SECONDS=0 release "$burst" kfm-api kfm-api "$(digest "burst-$i")" >/dev/null
  check "change $i Succeeded" eventually 60 equals "Succeeded $(jp "$burst" gar/kfm-api '{.metadata.generation}')" \
    jp "$burst" gar/kfm-api '{.status.phase} {.status.observedGeneration}'
done
check "the Deployment runs the last digest" equals "$REPO@$(digest burst-5)" jp "$burst" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
# every status write keeps every receipt whole: its results and their digest
kubectl -n "$burst" get gar kfm-api -o json > "$E2E_DIR/burst.json"
check "five receipts, each sealing its image, its results and their digest" equals "5 5 5 5" python3 -c '
import json, sys
h = json.load(open(sys.argv[1]))["status"]["history"]
print(len(h), sum(e.get("image", "").endswith(e["digest"]) for e in h),
      sum(len(e.get("verification", [])) == 2 for e in h), sum(e.get("verificationDigest", "").startswith("sha256:") for e in h))' "$E2E_DIR/burst.json"
check "membrane receipt verify recomputes all five, results digests included" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/burst.json"
metrics_scrape "$E2E_DIR/metrics-burst.txt"
check "no status write met a 409" metrics_check "$E2E_DIR/metrics-burst.txt" \
  --before "$E2E_DIR/metrics-burst-start.txt" 'membrane_api_requests_total{verb="PATCH",code="409"}==0'

say "a GitOps revert to the digest already running succeeds without a rollout"
gen_before=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
release "$ns" kfm-api kfm-api "$B" "  rollbackTarget: {digest: \"$A\"}" >/dev/null
check "Succeeded for the new generation" eventually 60 equals "Succeeded $(jp "$ns" gar/kfm-api '{.metadata.generation}')" \
  jp "$ns" gar/kfm-api '{.status.phase} {.status.observedGeneration}'
check "the Deployment was not rolled again" equals "$gen_before" jp "$ns" deploy/kfm-api '{.metadata.generation}'
check "two receipts in the history" equals 2 bash -c "kubectl -n $ns get gar kfm-api -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)[\"status\"][\"history\"]))'"

say "deleting the release leaves the Deployment running and unclaimed, and deletes its probe pods in other namespaces"
# a probe pod an operator that died mid-probe left in another namespace: no ownerReference can collect it
probe_ns=$(new_namespace probe-left)
kubectl -n "$probe_ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: kfm-api-probe-left
  labels: {governance.kfm.dev/probe: "$(jp "$ns" gar/kfm-api '{.metadata.uid}')"}
spec: {containers: [{name: probe, image: "busybox@$(digest probe)"}]}
EOF
kubectl -n "$ns" delete gar kfm-api --timeout=30s >/dev/null
check "the probe pod left in another namespace is deleted with the release" eventually 30 \
  bash -c "! kubectl -n $probe_ns get pod kfm-api-probe-left -o name 2>/dev/null | grep -q ."
check "the release is gone" eventually 20 bash -c "! kubectl -n $ns get gar kfm-api 2>/dev/null"
check "the Deployment still runs B" equals "$REPO@$B" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "the owner annotation is removed" equals "" jp "$ns" deploy/kfm-api '{.metadata.annotations.governance\.kfm\.dev/release-owner}'

say "a digest that crash-loops fires the CrashLoop trigger"
ns=$(new_namespace crash)
deployment "$ns" kfm-api "$REPO@$A"
release "$ns" kfm-api kfm-api "$(digest_crashloop bad)" >/dev/null
check "lastRollback.trigger is CrashLoop" eventually 60 equals CrashLoop jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "Event TriggerFired" eventually 10 has_event "$ns" kfm-api TriggerFired

say "a rollout that never becomes ready hits its progress deadline"
ns=$(new_namespace deadline)
deployment "$ns" kfm-api "$REPO@$A"
E2E_PROGRESS_DEADLINE=5 release "$ns" kfm-api kfm-api "$(digest_never_ready slow)" >/dev/null
check "lastRollback.trigger is ProgressDeadline" eventually 60 equals ProgressDeadline jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'

say "every gate failure ends with its reason"
ns=$(new_namespace gates)
release "$ns" no-deploy missing "$B" >/dev/null
check "missing Deployment: TargetNotFound, Stalled" eventually 30 condition_is "$ns" no-deploy GatesPassed False TargetNotFound
check "  Stalled=True" condition_is "$ns" no-deploy Stalled True TargetNotFound
deployment "$ns" web "$REPO@$A" 1
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: no-container}
spec:
  environment: dev
  changeRecord: CHG-e2e
  target: {deployment: web, container: sidecar}
  image: {repository: $REPO, digest: "$B"}
  verification: {checks: [health], baseURL: "$E2E_GOOD_URL"}
EOF
check "missing container: ContainerNotFound" eventually 30 condition_is "$ns" no-container GatesPassed False ContainerNotFound
release "$ns" bundle web "$B" "  policyBundleRef: {name: not-ready-yet}" >/dev/null
check "unready PolicyBundle: PolicyBundleNotReady, still Reconciling" eventually 30 condition_is "$ns" bundle Reconciling True PolicyBundleNotReady
check "  GatesPassed=False" condition_is "$ns" bundle GatesPassed False PolicyBundleNotReady
check "  the Deployment is untouched" equals "$REPO@$A" jp "$ns" deploy/web '{.spec.template.spec.containers[0].image}'
# The bundle gate with a real bundle (waits while it verifies, proceeds once it is
# Published with the pinned digest, stamps the pod template) is e2e/test_policy.sh's;
# a Ready bundle without the pinned verifiedDigest is test_decide.c's (the
# PolicyBundle controller never writes one).
kubectl -n "$ns" delete gar bundle no-container --wait=true >/dev/null
deployment "$ns" tagged "$REPO:v1.2.3" 1
release "$ns" no-target tagged "$B" >/dev/null
check "no rollback target: NoRollbackTarget" eventually 30 condition_is "$ns" no-target GatesPassed False NoRollbackTarget
release "$ns" first web "$B" >/dev/null
check "the first release owns web" eventually 60 phase_is "$ns" first Succeeded
release "$ns" second web "$(digest good-c)" >/dev/null
check "a second release claiming the Deployment: TargetClaimed" eventually 30 condition_is "$ns" second GatesPassed False TargetClaimed
check "Warning Event GateBlocked names what to fix" eventually 10 bash -c \
  "kubectl -n $ns get events --field-selector involvedObject.name=second,reason=GateBlocked -o jsonpath='{.items[0].message}' | grep -q 'claimed by GovernedAPIRelease $ns/first'"

say "suspend leaves the Deployment alone"
ns=$(new_namespace suspend)
deployment "$ns" kfm-api "$REPO@$A" 1
release "$ns" kfm-api kfm-api "$B" "  suspend: true" >/dev/null
check "phase Suspended" eventually 30 phase_is "$ns" kfm-api Suspended
check "the Deployment still runs A" equals "$REPO@$A" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
kubectl -n "$ns" patch gar kfm-api --type merge -p '{"spec":{"suspend":false}}' >/dev/null
check "resumed, it rolls out" eventually 60 phase_is "$ns" kfm-api Succeeded

say "the operator killed between the Deployment patch (which records the target) and the status write"
operator_stop
ns=$(new_namespace crash-window)
deployment "$ns" kfm-api "$REPO@$A"
MEMBRANE_FAILPOINT=crash-after-deployment-patch operator_start
release "$ns" kfm-api kfm-api "$B" >/dev/null
check "the operator died right after the Deployment patch" eventually 30 bash -c "! kill -0 $E2E_OPERATOR_PID 2>/dev/null"
operator_kill
rid=$(printf '%s' "$ns/kfm-api/$(jp "$ns" gar/kfm-api '{.metadata.generation}')/$B" | sha256sum | cut -c1-12)
check "the Deployment runs B and records A for this release in the same write" equals "$REPO@$B $REPO@$A $rid" \
  jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image} {.metadata.annotations.governance\.kfm\.dev/rollback-image} {.metadata.annotations.governance\.kfm\.dev/rollback-for}'
check "the status write did not follow: no rollback target in the status" equals "" jp "$ns" gar/kfm-api '{.status.rollbackTarget}'
operator_start
check "the restarted operator finishes the release" eventually 90 phase_is "$ns" kfm-api Succeeded
check "the target is A (the annotation's record), never B (what runs now)" equals "$A $REPO@$A" jp "$ns" gar/kfm-api '{.status.rollbackTarget} {.status.rollbackImage}'
check "the receipt names A as the previous digest" equals "$A" jp "$ns" gar/kfm-api '{.status.history[0].previousDigest}'
check "SIGTERM: clean exit 0" operator_stop
