#!/usr/bin/env bash
# Sharding with --watch-label-selector on the local control plane: two operators
# with --leader-elect and disjoint selectors (shard=a, shard=b), under the
# manifests' ServiceAccount plus a Role for their two Leases (as
# docs/operations.md says). Each holds its own Lease, membrane-leader-<first 8
# hex of sha256(SEL)>, and leads at once; each reconciles only the releases
# whose labels match its selector (its log and its membrane_reconcile_total say
# so, and the other's never name them); a release labelled for no shard is left
# alone by both. A selector that does not parse exits 2 naming the flag.
source "$(dirname "$0")/lib.sh"

LEASE_NS=membrane-system
REPO=registry.kfm.local/kfm-api
ELECT=(--leader-elect --leader-election-namespace "$LEASE_NS")
lease_of() { printf 'membrane-leader-%s' "$(printf '%s' "$1" | sha256sum | cut -c1-8)"; }
LEASE_A=$(lease_of shard=a); LEASE_B=$(lease_of shard=b)

say "a selector that does not parse is refused with exit 2"
bad_selector() {
  local rc=0
  "$MEMBRANE_BIN" run --watch-label-selector 'shard in (a' >"$E2E_DIR/bad.out" 2>&1 || rc=$?
  [ "$rc" = 2 ] && grep -q -- '--watch-label-selector "shard in (a"' "$E2E_DIR/bad.out" || { cat "$E2E_DIR/bad.out"; echo "exit $rc"; return 1; }
}
check "--watch-label-selector 'shard in (a': exit 2, naming the flag" bad_selector

install_operator_rbac
good_api_start
# the manifests' Role names the one Lease membrane-leader: a shard's Lease is granted beside it
kubectl -n "$LEASE_NS" apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: membrane-leader-election-shards}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    resourceNames: [$LEASE_A, $LEASE_B]
    verbs: [get, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: membrane-leader-election-shards}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: membrane-leader-election-shards}
subjects:
  - {kind: ServiceAccount, name: membrane, namespace: membrane-system}
EOF
kubectl -n "$LEASE_NS" delete lease "$LEASE_A" "$LEASE_B" --ignore-not-found >/dev/null

NS_A=$(new_namespace shard-a); NS_B=$(new_namespace shard-b); NS_C=$(new_namespace shard-none)
for ns in "$NS_A" "$NS_B" "$NS_C"; do deployment "$ns" api "$REPO@$(digest shard-v1)" 1; done

say "two operators with disjoint selectors, each with leader election"
operator_start_as a "${ELECT[@]}" --watch-label-selector shard=a
operator_start_as b "${ELECT[@]}" --watch-label-selector shard=b
holder() { jp "$LEASE_NS" "lease/$1" '{.spec.holderIdentity}'; }
check "operator a holds its own Lease $LEASE_A" eventually 30 equals "$(operator_identity a)" holder "$LEASE_A"
check "operator b holds its own Lease $LEASE_B" eventually 30 equals "$(operator_identity b)" holder "$LEASE_B"
check "  both lead: operator a's membrane_is_leader is 1" eventually 30 equals 1 operator_metric a membrane_is_leader
check "  and operator b's" eventually 30 equals 1 operator_metric b membrane_is_leader
# the unsharded Lease may exist (another file's operators): neither shard holds it
no_plain_lease() {
  local h
  h=$(kubectl -n "$LEASE_NS" get lease membrane-leader -o jsonpath='{.spec.holderIdentity}' 2>/dev/null || true)
  [ -z "$h" ] || { [ "$h" != "$(operator_identity a)" ] && [ "$h" != "$(operator_identity b)" ]; }
}
check "neither takes the unsharded Lease membrane-leader" no_plain_lease
check "operator a's log names its Lease" grep -q "waiting for the Lease $LEASE_NS/$LEASE_A" "${E2E_OP_LOG[a]}"

say "each reconciles only the releases of its shard"
labelled_release() { # NS SHARD
  release "$1" api api "$(digest "shard-$2")" >/dev/null
  kubectl -n "$1" label gar api "shard=$2" --overwrite >/dev/null
}
labelled_release "$NS_A" a
labelled_release "$NS_B" b
labelled_release "$NS_C" c
check "the shard=a release succeeds" eventually 120 phase_is "$NS_A" api Succeeded
check "the shard=b release succeeds" eventually 120 phase_is "$NS_B" api Succeeded
check "  its Deployment runs the new digest" \
  equals "$REPO@$(digest shard-b)" jp "$NS_B" deploy/api '{.spec.template.spec.containers[0].image}'
sleep 3 # time for a stray reconcile of the shard=c release to show
check "the shard=c release is reconciled by neither (no status)" equals "" jp "$NS_C" gar/api '{.status.phase}'
check "  its Deployment still runs v1" \
  equals "$REPO@$(digest shard-v1)" jp "$NS_C" deploy/api '{.spec.template.spec.containers[0].image}'
reconciled() { grep -q "\"namespace\":\"$2\"" "${E2E_OP_LOG[$1]}"; }
check "operator a's log shows reconciles of the shard=a release" reconciled a "$NS_A"
check "operator b's log shows reconciles of the shard=b release" reconciled b "$NS_B"
not_reconciled() { ! grep -q -e "\"namespace\":\"$2\"" -e "\"namespace\":\"$3\"" "${E2E_OP_LOG[$1]}"; }
check "operator a's log never names the shard=b or shard=c release" not_reconciled a "$NS_B" "$NS_C"
check "operator b's log never names the shard=a or shard=c release" not_reconciled b "$NS_A" "$NS_C"
reconciles() { operator_metrics "$1" | awk '$1 ~ /^membrane_reconcile_total[{]kind="GovernedAPIRelease"/ {n += $2} END {print n + 0}'; }
counted() { local n; n=$(reconciles "$1"); [ "$n" -gt 0 ] || { echo "membrane_reconcile_total of $1: $n"; return 1; }; }
check "operator a's membrane_reconcile_total counts its reconciles" counted a
check "operator b's membrane_reconcile_total counts its reconciles" counted b

say "SIGTERM: each exits 0 and releases its own Lease"
check "operator a exits 0" operator_stop_as a
check "  its Lease is released" equals "" holder "$LEASE_A"
check "operator b exits 0" operator_stop_as b
check "  its Lease is released" equals "" holder "$LEASE_B"
for ns in "$NS_A" "$NS_B" "$NS_C"; do kubectl delete namespace "$ns" --wait=false >/dev/null; done
