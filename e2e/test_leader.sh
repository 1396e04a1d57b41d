#!/usr/bin/env bash
# Leader election on the local control plane: operators run with --leader-elect
# under the manifests' ServiceAccount, on the Lease membrane-system/membrane-leader.
# Of two, exactly one leads (the Lease names it, its membrane_is_leader gauge is 1,
# only its log shows reconciles). Killed with kill -9 in the middle of a rollout,
# the leader leaves the Lease held: the standby takes it over once it has expired
# and finishes the release with exactly one rollout (one new ReplicaSet revision,
# one receipt for the change, a chain `membrane receipt verify` accepts). Stopped
# with SIGTERM, the new leader exits 0 having released the Lease, and a third
# operator, waiting as standby, takes it over without waiting for it to expire.
# Hand-over times are printed, never asserted (hack/bench.sh leader measures them).
source "$(dirname "$0")/lib.sh"

LEASE_NS=membrane-system
REPO=registry.kfm.local/kfm-api
A=$(digest leader-a); B=$(digest leader-b); C=$(digest leader-c)
ELECT=(--leader-elect --leader-election-namespace "$LEASE_NS")

install_operator_rbac
good_api_start
# a Lease left held by an earlier run would only delay the first election
kubectl -n "$LEASE_NS" delete lease membrane-leader --ignore-not-found >/dev/null

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f s", b - a}'; }
lease() { jp "$LEASE_NS" lease/membrane-leader "$1"; }
holder() { lease '{.spec.holderIdentity}'; }
# leads NAME: the Lease names NAME and NAME's gauge says so
leads() { [ "$(holder)" = "$(operator_identity "$1")" ] && [ "$(operator_metric "$1" membrane_is_leader)" = 1 ]; }
leader_of() { local n; for n in "$@"; do if leads "$n"; then echo "$n"; return 0; fi; done; return 1; }
# health_ok NAME: NAME's /healthz and /readyz answer 200
health_ok() {
  local port
  port=$(operator_port health "$1")
  curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$port/healthz" && curl -fsS --max-time 10 -o /dev/null "http://127.0.0.1:$port/readyz"
}
# reconciles NAME: how many reconciles NAME's membrane_reconcile_total counts, all kinds and results
reconciles() { operator_metrics "$1" | awk '$1 ~ /^membrane_reconcile_total[{]/ {n += $2} END {print n + 0}'; }
# reconciled NAME NS: NAME's log shows a reconcile of a release in NS
reconciled() { grep -q "\"namespace\":\"$2\"" "${E2E_OP_LOG[$1]}"; }
# reconciled_only_as_leader NAME: no release reconcile in NAME's log before it became the leader
reconciled_only_as_leader() {
  awk '/is now the leader/ {leading = 1} /"kind":"GovernedAPIRelease"/ && /"namespace":"/ && !leading {bad = 1} END {exit bad}' \
    "${E2E_OP_LOG[$1]}"
}
history_entries() { # NS NAME RELEASE_ID: how many history entries the release has for RELEASE_ID
  kubectl -n "$1" get gar "$2" -o json |
    python3 -c 'import json,sys; print(sum(1 for h in json.load(sys.stdin)["status"].get("history", []) if h.get("releaseID") == sys.argv[1]))' "$3"
}

# Every version of the Lease as "holder|leaseDurationSeconds", in order: shows whether it was released.
lease_watch() {
  kubectl -n "$LEASE_NS" get lease membrane-leader -w -o jsonpath='{.spec.holderIdentity}|{.spec.leaseDurationSeconds}{"\n"}' \
    >"$E2E_DIR/lease.watch" 2>"$E2E_DIR/lease.watch.err" &
  E2E_PIDS+=($!)
}
# holders_since LINE: the holders of the Lease's versions from LINE of the watch on, repeats removed
holders_since() { tail -n +"$1" "$E2E_DIR/lease.watch" | cut -d'|' -f1 | uniq | sed 's/^$/(released)/' | paste -sd' '; }

say "two operators with --leader-elect: exactly one leads"
operator_start_as a "${ELECT[@]}"
operator_start_as b "${ELECT[@]}"
t0=$(now)
check "one of the two holds the Lease" eventually 60 leader_of a b
echo "     (a leader after $(since "$t0"))"
L=$(leader_of a b) || L=a
S=b; [ "$L" = a ] || S=a
check "the Lease names the leader ($L)" equals "$(operator_identity "$L")" holder
check "membrane_is_leader is 1 on the leader" equals 1 operator_metric "$L" membrane_is_leader
check "membrane_is_leader is 0 on the standby" equals 0 operator_metric "$S" membrane_is_leader
check "the standby is alive and ready: /healthz and /readyz answer 200" health_ok "$S"
check "the two identities differ" bash -c "[ '$(operator_identity a)' != '$(operator_identity b)' ]"

ns=$(new_namespace leader)
deployment "$ns" kfm-api "$REPO@$A"
release "$ns" kfm-api kfm-api "$B" >/dev/null
check "a release succeeds" eventually 90 phase_is "$ns" kfm-api Succeeded
check "the leader's log shows its reconciles" reconciled "$L" "$ns"
check "the standby's log shows none" bash -c "! grep -q '\"kind\":\"GovernedAPIRelease\"' '${E2E_OP_LOG[$S]}'"
check "the leader's membrane_reconcile_total counts them" bash -c "[ $(reconciles "$L") -gt 0 ]"
check "the standby's counts none" equals 0 reconciles "$S"
check "the standby is still standing by" equals 0 operator_metric "$S" membrane_is_leader

say "the leader killed with kill -9 in the middle of a rollout: the standby takes over and finishes it"
ns=$(new_namespace leader-kill)
# 3 replicas, one at a time, each available 6 s after it is ready: the rollout takes a while
kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: kfm-api}
spec:
  replicas: 3
  minReadySeconds: 6
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  selector: {matchLabels: {app: kfm-api}}
  template:
    metadata: {labels: {app: kfm-api}}
    spec:
      containers:
      - {name: api, image: "$REPO@$A"}
EOF
kubectl -n "$ns" rollout status deploy/kfm-api --timeout=90s >/dev/null
lease_watch
eventually 10 test -s "$E2E_DIR/lease.watch"
transitions=$(lease '{.spec.leaseTransitions}')
E2E_OBSERVATION_SECONDS=5 release "$ns" kfm-api kfm-api "$C" >/dev/null
mid_rollout() {
  [ "$(jp "$ns" gar/kfm-api '{.status.phase}')" = RollingOut ] &&
    [ "$(jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}')" = "$REPO@$C" ]
}
check "the leader is rolling the Deployment out to the new digest" eventually 60 mid_rollout
watch_line=$(wc -l <"$E2E_DIR/lease.watch")
t_kill=$(now)
operator_kill_as "$L"
echo "     (killed with the Deployment at $(jp "$ns" deploy/kfm-api '{.status.updatedReplicas}') of 3 replicas updated, $(jp "$ns" deploy/kfm-api '{.status.availableReplicas}') available)"
check "the release is still in progress when its leader dies" condition_is "$ns" kfm-api Reconciling True
check "the standby takes the Lease over" eventually 90 leads "$S"
echo "     (the standby led $(since "$t_kill") after kill -9)"
check "the Lease was not released: it went from the dead leader to the standby" \
  equals "$(operator_identity "$L") $(operator_identity "$S")" holders_since "$watch_line"
check "leaseTransitions went up by one" equals $((transitions + 1)) lease '{.spec.leaseTransitions}'
check "the standby finishes the release: Succeeded" eventually 120 phase_is "$ns" kfm-api Succeeded
echo "     (Succeeded $(since "$t_kill") after kill -9)"
check "the Deployment runs the new digest" equals "$REPO@$C" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "all 3 replicas available" eventually 30 equals 3 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
check "one rollout: the Deployment is at revision 2" equals 2 jp "$ns" deploy/kfm-api '{.metadata.annotations.deployment\.kubernetes\.io/revision}'
check "one rollout: two ReplicaSets, the old and the new" equals 2 bash -c "kubectl -n $ns get rs -l app=kfm-api -o name | wc -l"
check "one receipt for the change" equals 1 history_entries "$ns" kfm-api "$(jp "$ns" gar/kfm-api '{.status.releaseID}')"
check "the receipt: A -> C, Succeeded" equals "$A $C Succeeded" jp "$ns" gar/kfm-api '{.status.history[0].previousDigest} {.status.history[0].digest} {.status.history[0].outcome}'
check "Event RolloutStarted once" equals 1 bash -c \
  "kubectl -n $ns get events --field-selector involvedObject.kind=GovernedAPIRelease,reason=RolloutStarted -o jsonpath='{range .items[*]}{.count}{\"\\n\"}{end}' | awk '{n += (\$1 == \"\" ? 1 : \$1)} END {print n}'"
kubectl -n "$ns" get gar kfm-api -o json >"$E2E_DIR/gar.json"
check "membrane receipt verify accepts the receipt chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/gar.json"
check "the new leader's log shows the release's reconciles" reconciled "$S" "$ns"
check "the new leader reconciled nothing before it led" reconciled_only_as_leader "$S"

say "SIGTERM: the leader releases the Lease and exits 0; a standby takes over at once"
operator_start_as c "${ELECT[@]}"
check "a third operator stands by" eventually 30 equals 0 operator_metric c membrane_is_leader
check "  and the Lease stays with the leader" equals "$(operator_identity "$S")" holder
watch_line=$(wc -l <"$E2E_DIR/lease.watch")
transitions=$(lease '{.spec.leaseTransitions}')
t_term=$(now)
check "SIGTERM: the leader exits 0" operator_stop_as "$S"
echo "     (exited $(since "$t_term") after SIGTERM)"
check "the third operator takes the Lease over" eventually 60 leads c
echo "     (the standby led $(since "$t_term") after SIGTERM)"
check "the leader's log says it released the Lease" grep -q '"released Lease membrane-system/membrane-leader"' "${E2E_OP_LOG[$S]}"
check "the Lease went from the leader, released, to the standby" \
  equals "$(operator_identity "$S") (released) $(operator_identity c)" holders_since "$watch_line"
check "leaseTransitions went up by one" equals $((transitions + 1)) lease '{.spec.leaseTransitions}'
check "the third operator reconciled nothing before it led" reconciled_only_as_leader c
check "SIGTERM: the last one exits 0 too" operator_stop_as c
check "and leaves the Lease released" equals "" holder
