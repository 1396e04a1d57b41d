#!/usr/bin/env bash
# Automatic rollback on the local control plane: the triggers not covered by
# test_verify.sh (CrashLoop, ProgressDeadline, Manual, a crash loop during
# Observing), each ending RolledBack on the good digest with all replicas
# available and a receipt chain that `membrane receipt verify` accepts, then a GitOps
# revert that succeeds; automatic: false; a rollback target that is itself
# bad (Failed, Stalled, the Deployment left alone); and the operator killed in
# each part of RollingBack, finishing the rollback after its restart; a spec
# change mid-rollout, rolled back to the target recorded before it; a change of
# repository, rolled back to the full image reference that ran. /metrics,
# scraped before and after the scenarios of one operator process and parsed with
# prometheus_client, has API.md's metrics and counted exactly what they did.
source "$(dirname "$0")/lib.sh"

install_operator_rbac
good_api_start
operator_start

say "/metrics before the scenarios"
check "no release of an earlier run is still in flight" eventually 120 releases_settled
check "/metrics answers 200 in the Prometheus text format" metrics_scrape "$E2E_DIR/metrics-before.txt"
check "it parses, with every metric of API.md, its type, labels and millisecond-to-minute buckets; is_leader 1, build_info 1" \
  metrics_check "$E2E_DIR/metrics-before.txt" 'membrane_is_leader==1' 'membrane_build_info==1'
# the check itself fails on what a Prometheus server would refuse
refuses() { # file pattern: metrics_check fails on file, saying pattern
  if metrics_check "$1" > "$E2E_DIR/refused.txt"; then echo "metrics_check accepted $1"; return 1; fi
  grep -q "$2" "$E2E_DIR/refused.txt" || { cat "$E2E_DIR/refused.txt"; return 1; }
}
sed 's/^membrane_is_leader .*/membrane_is_leader{ 1/' "$E2E_DIR/metrics-before.txt" > "$E2E_DIR/metrics-broken.txt"
check "a malformed sample line fails the check" refuses "$E2E_DIR/metrics-broken.txt" 'the exposition is malformed'
{ cat "$E2E_DIR/metrics-before.txt"; grep -A2 '^# HELP membrane_is_leader ' "$E2E_DIR/metrics-before.txt"; } > "$E2E_DIR/metrics-twice.txt"
check "a family exposed twice fails the check" refuses "$E2E_DIR/metrics-twice.txt" 'appears more than once'

REPO=registry.kfm.local/kfm-api
GOOD=$(digest rb-good)
E2E_OBSERVATION_SECONDS=1

# rolled_back NS TRIGGER: the end state every automatic rollback must reach
rolled_back() {
  local ns=$1 trigger=$2
  check "$trigger: phase RolledBack" eventually 90 phase_is "$ns" kfm-api RolledBack
  check "$trigger: lastRollback.trigger $trigger" equals "$trigger" jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
  check "$trigger: the Deployment runs the good digest again" equals "$REPO@$GOOD" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
  check "$trigger: all 3 replicas available" eventually 30 equals 3 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
  check "$trigger: Ready=False RolledBack, Stalled=True RolledBack, RolledBack=True" bash -c \
    "[ \"\$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason} {.status.conditions[?(@.type==\"Stalled\")].status} {.status.conditions[?(@.type==\"RolledBack\")].status}')\" = 'RolledBack True True' ]"
  check "$trigger: Event RolledBack" eventually 10 has_event "$ns" kfm-api RolledBack
  kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/$trigger.json"
  check "$trigger: membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/$trigger.json"
  check "$trigger: the last receipt says RolledBack" equals "RolledBack $trigger" jp "$ns" gar/kfm-api '{.status.history[-1:].outcome} {.status.history[-1:].trigger}'
  check "$trigger: it seals the trigger's message, the images and the rolled-back version's results" python3 -c '
import json, sys
e = json.load(open(sys.argv[1]))["status"]["history"][-1]
lr = json.load(open(sys.argv[1]))["status"]["lastRollback"]
assert e.get("message") == lr["message"], (e.get("message"), lr["message"])
assert e.get("image", "").endswith("@" + e["digest"]) and e.get("rollbackImage", "").endswith("@" + e["previousDigest"]), e
assert e.get("verification") and all(r["passed"] for r in e["verification"]) and e.get("verificationDigest"), e' "$E2E_DIR/$trigger.json"
}

# reverted NS TRIGGER: a GitOps revert of the spec to the good digest ends Succeeded, its receipt chained after the rollback's
reverted() {
  local ns=$1 trigger=$2
  release "$ns" kfm-api kfm-api "$GOOD" >/dev/null
  check "$trigger: the revert ends Succeeded" eventually 60 bash -c "[ \"\$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.phase} {.status.observedGeneration}')\" = \"Succeeded \$(kubectl -n $ns get gar kfm-api -o jsonpath='{.metadata.generation}')\" ]"
  check "$trigger: the last two receipts RolledBack, Succeeded, chained" bash -c "kubectl -n $ns get gar kfm-api -o json > $E2E_DIR/revert-$trigger.json && $MEMBRANE_BIN receipt verify -f $E2E_DIR/revert-$trigger.json >/dev/null && [ \"\$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.history[-2:].outcome}')\" = 'RolledBack Succeeded' ]"
}

say "CrashLoop: rolled back, then a GitOps revert of the spec to the good digest succeeds"
ns=$(new_namespace rb-crash)
deployment "$ns" kfm-api "$REPO@$GOOD"
release "$ns" kfm-api kfm-api "$(digest_crashloop rb)" >/dev/null
rolled_back "$ns" CrashLoop
check "Warning Event RollbackTriggered" has_event "$ns" kfm-api RollbackTriggered
reverted "$ns" CrashLoop
check "two receipts in all" bash -c "$MEMBRANE_BIN receipt verify -f $E2E_DIR/revert-CrashLoop.json | grep -q '2 receipts'"

say "ProgressDeadline: rolled back, then a GitOps revert succeeds"
ns=$(new_namespace rb-deadline)
deployment "$ns" kfm-api "$REPO@$GOOD"
E2E_PROGRESS_DEADLINE=5 release "$ns" kfm-api kfm-api "$(digest_never_ready rb)" >/dev/null
rolled_back "$ns" ProgressDeadline
reverted "$ns" ProgressDeadline

say "Manual: the break-glass annotation rolls a succeeded release back and is removed"
ns=$(new_namespace rb-manual)
deployment "$ns" kfm-api "$REPO@$GOOD"
release "$ns" kfm-api kfm-api "$(digest rb-manual)" >/dev/null
check "the release succeeds first" eventually 60 phase_is "$ns" kfm-api Succeeded
kubectl -n "$ns" annotate gar kfm-api governance.kfm.dev/rollback=true \
  governance.kfm.dev/rollback-reason="INC-42: uncited answers in prod" governance.kfm.dev/rollback-approver=jane@kfm.example >/dev/null
rolled_back "$ns" Manual
check "the annotation is removed once acted on, with its reason and approver" eventually 10 equals "||" jp "$ns" gar/kfm-api \
  '{.metadata.annotations.governance\.kfm\.dev/rollback}|{.metadata.annotations.governance\.kfm\.dev/rollback-reason}|{.metadata.annotations.governance\.kfm\.dev/rollback-approver}'
check "lastRollback carries the reason and the approver" equals "INC-42: uncited answers in prod|jane@kfm.example" \
  jp "$ns" gar/kfm-api '{.status.lastRollback.reason}|{.status.lastRollback.approver}'
check "the receipt carries them too (receipt verify accepted it above)" equals "INC-42: uncited answers in prod|jane@kfm.example" \
  jp "$ns" gar/kfm-api '{.status.history[-1:].reason}|{.status.history[-1:].approver}'
check "no BreakGlassUndocumented Event for a documented request" bash -c "! kubectl -n $ns get events --field-selector involvedObject.name=kfm-api,reason=BreakGlassUndocumented -o name | grep -q ."
reverted "$ns" Manual

say "a crash loop that starts during Observing rolls back too"
ns=$(new_namespace rb-observe)
deployment "$ns" kfm-api "$REPO@$GOOD"
E2E_OBSERVATION_SECONDS=60 release "$ns" kfm-api kfm-api "$(digest rb-observe)" >/dev/null
check "Observing" eventually 60 phase_is "$ns" kfm-api Observing
pod=$(kubectl -n "$ns" get pods -l app=kfm-api -o jsonpath="{.items[?(@.spec.containers[0].image==\"$REPO@$(digest rb-observe)\")].metadata.name}" | cut -d' ' -f1)
kubectl -n "$ns" patch pod "$pod" --subresource=status --type=merge -p \
  '{"status":{"containerStatuses":[{"name":"api","image":"x","imageID":"","ready":false,"restartCount":4,"state":{"waiting":{"reason":"CrashLoopBackOff"}},"lastState":{}}]}}' >/dev/null
rolled_back "$ns" CrashLoop

say "automatic: false leaves the Deployment alone and says what to do"
ns=$(new_namespace rb-manual-only)
deployment "$ns" kfm-api "$REPO@$GOOD"
bad=$(digest_crashloop rb-off)
release "$ns" kfm-api kfm-api "$bad" "  rollback: {automatic: false}" >/dev/null
check "phase Failed" eventually 60 phase_is "$ns" kfm-api Failed
check "Stalled=True CrashLoop" condition_is "$ns" kfm-api Stalled True CrashLoop
check "the Deployment still runs the bad digest" equals "$REPO@$bad" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "the Event says to roll back by hand or revert in Git" eventually 10 bash -c \
  "kubectl -n $ns get events --field-selector involvedObject.name=kfm-api,reason=ReleaseFailed -o jsonpath='{.items[*].message}' | grep -q 'roll back by hand or revert spec.image.digest'"

say "a rollback target that is itself bad: Failed, Stalled, and the Deployment is left alone"
ns=$(new_namespace rb-bad-target)
deployment "$ns" kfm-api "$REPO@$GOOD"
release "$ns" kfm-api kfm-api "$(digest_crashloop rb-bad)" "  rollbackTarget: {digest: \"$(digest_crashloop rb-bad-target)\"}" >/dev/null
check "phase Failed" eventually 90 phase_is "$ns" kfm-api Failed
check "Stalled=True RollbackFailed" condition_is "$ns" kfm-api Stalled True RollbackFailed
check "Event RollbackFailed" eventually 10 has_event "$ns" kfm-api RollbackFailed
gen=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
sleep 3
check "the operator stops touching the Deployment" equals "$gen" jp "$ns" deploy/kfm-api '{.metadata.generation}'

say "/metrics after the scenarios: what this operator process did, counted"
# rollbacks: CrashLoop (first, during Observing, to the bad target), ProgressDeadline,
# Manual; receipts: RolledBack 4, Succeeded 4 (three reverts, Manual's first release),
# Failed 2 (automatic off, the bad target); checks health and ready ran, against the
# good double, at least for each Succeeded and RolledBack and before Observing (7), and
# also for a crash-looping digest whose rollout completed before its crash loop showed
check "/metrics answers 200 after the scenarios" metrics_scrape "$E2E_DIR/metrics-after.txt"
check "rollbacks_total rose by exactly CrashLoop 3, ProgressDeadline 1, Manual 1" metrics_check "$E2E_DIR/metrics-after.txt" \
  --before "$E2E_DIR/metrics-before.txt" 'membrane_rollbacks_total{trigger="CrashLoop"}==3' \
  'membrane_rollbacks_total{trigger="ProgressDeadline"}==1' 'membrane_rollbacks_total{trigger="Manual"}==1' \
  'membrane_rollbacks_total==5'
check "rollouts_total rose by exactly RolledBack 4, Succeeded 4, Failed 2" metrics_check "$E2E_DIR/metrics-after.txt" \
  --before "$E2E_DIR/metrics-before.txt" 'membrane_rollouts_total{outcome="RolledBack"}==4' \
  'membrane_rollouts_total{outcome="Succeeded"}==4' 'membrane_rollouts_total{outcome="Failed"}==2' \
  'membrane_rollouts_total==10'
check "reconciles, API requests, check durations and the checks' transfers counted; no check failed" metrics_check "$E2E_DIR/metrics-after.txt" \
  --before "$E2E_DIR/metrics-before.txt" \
  'membrane_reconcile_total{kind="GovernedAPIRelease",result="success"}>0' \
  'membrane_reconcile_duration_seconds_count{kind="GovernedAPIRelease"}>0' \
  'membrane_api_requests_total{verb="PATCH",code="200"}>=13' \
  'membrane_verification_check_duration_seconds_count{check="health"}>=7' \
  'membrane_verification_check_duration_seconds_count{check="ready"}>=7' \
  'membrane_transfer_duration_seconds_count{kind="check"}>=14' 'membrane_transfer_bytes_total{kind="check"}>0' \
  'membrane_verification_failures_total==0'

say "the operator killed in each part of RollingBack finishes the rollback after its restart"
# 1: after the patch back (which records what it rolled back from), before the status write that says RollingBack
operator_stop
ns=$(new_namespace rb-kill1)
deployment "$ns" kfm-api "$REPO@$GOOD"
MEMBRANE_FAILPOINT=crash-after-rollback-patch operator_start
bad=$(digest_crashloop rb-kill1)
release "$ns" kfm-api kfm-api "$bad" >/dev/null
check "killed right after the patch back" eventually 60 bash -c "! kill -0 $E2E_OPERATOR_PID 2>/dev/null"
operator_kill
check "the Deployment runs the good digest again, naming what it rolled back from and why" \
  equals "$REPO@$GOOD $REPO@$bad CrashLoop" jp "$ns" deploy/kfm-api \
  '{.spec.template.spec.containers[0].image} {.metadata.annotations.governance\.kfm\.dev/rolled-back-from} {.metadata.annotations.governance\.kfm\.dev/rollback-trigger}'
check "the status write did not follow: no lastRollback yet" equals "" jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
operator_start
check "the restarted operator never rolls forward to the bad digest again" bash -c \
  "for i in \$(seq 1 10); do [ \"\$(kubectl -n $ns get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}')\" = '$REPO@$GOOD' ] || exit 1; sleep 0.3; done"
rolled_back "$ns" CrashLoop
# 2: killed while the rollback rolls out (the controller manager is held, so it cannot finish by itself)
ns=$(new_namespace rb-kill2)
deployment "$ns" kfm-api "$REPO@$GOOD"
release "$ns" kfm-api kfm-api "$(digest rb-kill2)" >/dev/null
check "the release succeeds first" eventually 60 phase_is "$ns" kfm-api Succeeded
bash "$E2E_ROOT/hack/cluster.sh" stop kube-controller-manager
kubectl -n "$ns" annotate gar kfm-api governance.kfm.dev/rollback=true >/dev/null
check "RollingBack, the Deployment patched back" eventually 30 equals "RollingBack $REPO@$GOOD" \
  bash -c "echo \$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.phase}') \$(kubectl -n $ns get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}')"
check "a break-glass request without reason and approver: Warning Event BreakGlassUndocumented naming both annotations" eventually 10 bash -c \
  "kubectl -n $ns get events --field-selector involvedObject.name=kfm-api,reason=BreakGlassUndocumented -o jsonpath='{.items[*].message}' | grep 'governance.kfm.dev/rollback-reason' | grep -q 'governance.kfm.dev/rollback-approver'"
operator_kill
bash "$E2E_ROOT/hack/cluster.sh" start kube-controller-manager
operator_start
rolled_back "$ns" Manual
check "nothing repeated: receipts Succeeded then RolledBack" equals "Succeeded RolledBack" jp "$ns" gar/kfm-api '{.status.history[*].outcome}'
check "  lastRollback has no reason or approver" equals "|" jp "$ns" gar/kfm-api '{.status.lastRollback.reason}|{.status.lastRollback.approver}'

say "a spec change mid-rollout keeps the target recorded before the rollout: a crash loop rolls back to the good digest, not the half-rolled one"
# phase_image_target NS: "<release phase> <image of the Deployment> <status.rollbackTarget>"
phase_image_target() {
  echo "$(jp "$1" gar/kfm-api '{.status.phase}') $(jp "$1" deploy/kfm-api '{.spec.template.spec.containers[0].image}') $(jp "$1" gar/kfm-api '{.status.rollbackTarget}')"
}
ns=$(new_namespace rb-midway)
deployment "$ns" kfm-api "$REPO@$GOOD"
first=$(digest rb-midway) bad=$(digest_crashloop rb-midway)
bash "$E2E_ROOT/hack/cluster.sh" stop kube-controller-manager # the rollout of the first digest cannot finish
release "$ns" kfm-api kfm-api "$first" >/dev/null
check "RollingOut the first digest, the good one recorded as the target" eventually 30 equals "RollingOut $REPO@$first $GOOD" phase_image_target "$ns"
release "$ns" kfm-api kfm-api "$bad" >/dev/null
check "the new generation rolls out with the good digest still the target" eventually 30 equals "RollingOut $REPO@$bad $GOOD" phase_image_target "$ns"
bash "$E2E_ROOT/hack/cluster.sh" start kube-controller-manager
rolled_back "$ns" CrashLoop

say "a release that changes the repository rolls back to the full reference that ran, not to the new repository with the old digest"
ns=$(new_namespace rb-repo)
OLD_REPO=registry.kfm.local/kfm-api-before
deployment "$ns" kfm-api "$OLD_REPO@$GOOD"
release "$ns" kfm-api kfm-api "$(digest_crashloop rb-repo)" >/dev/null   # spec.image.repository is $REPO
check "status.rollbackImage is the old repository's full reference, recorded with the target" eventually 30 \
  equals "$GOOD $OLD_REPO@$GOOD" jp "$ns" gar/kfm-api '{.status.rollbackTarget} {.status.rollbackImage}'
check "the rollback ends RolledBack" eventually 90 phase_is "$ns" kfm-api RolledBack
check "the Deployment runs the old repository's reference again" equals "$OLD_REPO@$GOOD" \
  jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "all 3 replicas available" eventually 30 equals 3 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/repo.json"
check "membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/repo.json"
check "SIGTERM: clean exit 0" operator_stop
