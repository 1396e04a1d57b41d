#!/usr/bin/env bash
# The environment-order gate (spec.after) on the local control plane: a release
# proceeds only after the releases it names, of earlier environments, succeeded
# with its digest and their receipt chains verify (recomputed by the operator);
# else GatesPassed=False NotPromoted naming the release and what is missing. The
# upstream receipt is sealed in the downstream one. prod needs spec.after (CEL).
source "$(dirname "$0")/lib.sh"

install_operator_rbac
good_api_start
operator_start

A=$(digest order-a); B=$(digest order-b); C=$(digest order-c)
REPO=registry.kfm.local/kfm-api

# gar NS ENV DIGEST [extra spec YAML, indented 2 spaces]: release kfm-api of Deployment kfm-api
gar() {
  kubectl -n "$1" apply -f - <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: kfm-api}
spec:
  environment: $2
  changeRecord: "CHG-e2e-order-$RANDOM"
  target: {deployment: kfm-api, container: api}
  image: {repository: $REPO, digest: "$3"}
  rollout: {observationSeconds: 0}
  verification: {checks: [health, ready], baseURL: "$E2E_GOOD_URL"}
${4:-}
EOF
}
succeeded_gen() { # ns: Succeeded for the current generation
  equals "Succeeded $(jp "$1" gar/kfm-api '{.metadata.generation}')" jp "$1" gar/kfm-api '{.status.phase} {.status.observedGeneration}'
}
gate_says() { # ns text: GatesPassed=False NotPromoted whose message contains text
  condition_is "$1" kfm-api GatesPassed False NotPromoted &&
    jp "$1" gar/kfm-api '{.status.conditions[?(@.type=="GatesPassed")].message}' | grep -qF -- "$2"
}

dev=$(new_namespace order-dev); staging=$(new_namespace order-staging)
deployment "$dev" kfm-api "$REPO@$A" 1
deployment "$staging" kfm-api "$REPO@$A" 1

say "dev succeeds with B; staging after dev proceeds and seals dev's receipt in its own"
gar "$dev" dev "$B" >/dev/null
check "dev Succeeded with B" eventually 60 succeeded_gen "$dev"
gar "$staging" staging "$B" "  after: [{namespace: $dev, name: kfm-api}]" >/dev/null
check "staging Succeeded with B" eventually 60 succeeded_gen "$staging"
dev_ref=$(jp "$dev" gar/kfm-api '{.status.history[0].auditRef}')
check "status.promotedFrom names dev's Succeeded receipt" equals "$dev/kfm-api $dev_ref" \
  jp "$staging" gar/kfm-api '{.status.promotedFrom[0].namespace}/{.status.promotedFrom[0].name} {.status.promotedFrom[0].auditRef}'
check "staging's receipt seals it" equals "$dev_ref" jp "$staging" gar/kfm-api '{.status.history[-1:].promotedFrom[0].auditRef}'
kubectl -n "$staging" get gar kfm-api -o json >"$E2E_DIR/staging.json"
check "membrane receipt verify accepts staging's chain (promotedFrom survives the apiserver's pruning)" \
  "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/staging.json"

say "a digest dev never succeeded with: NotPromoted until dev succeeds with it, then staging proceeds by itself"
gar "$staging" staging "$C" "  after: [{namespace: $dev, name: kfm-api}]" >/dev/null
check "GatesPassed=False NotPromoted, naming dev's release and the digest" eventually 30 \
  gate_says "$staging" "GovernedAPIRelease $dev/kfm-api has no Succeeded entry for $C"
check "  still Reconciling (it waits), not Stalled" condition_is "$staging" kfm-api Reconciling True NotPromoted
check "  the Deployment still runs B" equals "$REPO@$B" jp "$staging" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
gar "$dev" dev "$C" >/dev/null
check "dev Succeeded with C" eventually 60 succeeded_gen "$dev"
check "staging then proceeds and succeeds with C" eventually 60 succeeded_gen "$staging"
check "  the Deployment runs C" equals "$REPO@$C" jp "$staging" deploy/kfm-api '{.spec.template.spec.containers[0].image}'

say "an upstream that does not exist, or is not of an earlier environment"
other=$(new_namespace order-other)
deployment "$other" kfm-api "$REPO@$A" 1
gar "$other" staging "$B" "  after: [{namespace: $other, name: missing}]" >/dev/null
check "not found: NotPromoted naming it" eventually 30 gate_says "$other" "GovernedAPIRelease $other/missing is not found"
gar "$other" dev "$B" "  after: [{namespace: $staging, name: kfm-api}]" >/dev/null
check "dev after staging: NotPromoted, wrong order, Stalled" eventually 30 gate_says "$other" "is environment staging, not earlier than dev"
check "  Stalled=True" condition_is "$other" kfm-api Stalled True NotPromoted

say "a tampered upstream receipt chain: NotPromoted, the chain recomputed, not trusted"
# as an admin who can write status: dev's first receipt now claims another change record
kubectl -n "$dev" patch gar kfm-api --subresource=status --type=json \
  -p '[{"op":"replace","path":"/status/history/0/changeRecord","value":"CHG-forged"}]' >/dev/null
kubectl -n "$dev" get gar kfm-api -o json >"$E2E_DIR/dev-tampered.json"
check "membrane receipt verify sees the break too" bash -c "! '$MEMBRANE_BIN' receipt verify -f '$E2E_DIR/dev-tampered.json'"
gar "$staging" staging "$B" "  after: [{namespace: $dev, name: kfm-api}]" >/dev/null
check "staging after the tampered dev: NotPromoted, the receipt chain does not verify" eventually 30 \
  gate_says "$staging" "the receipt chain of GovernedAPIRelease $dev/kfm-api does not verify"
check "  Stalled=True" condition_is "$staging" kfm-api Stalled True NotPromoted
check "  the Deployment still runs C" equals "$REPO@$C" jp "$staging" deploy/kfm-api '{.spec.template.spec.containers[0].image}'

say "prod: spec.after required at admission; with it, prod passes the gates on staging's receipt"
prod=$(new_namespace order-prod)
deployment "$prod" kfm-api "$REPO@$A" 1
MEMBRANE="  membrane:
    clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]
    stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]
    apiServiceAccount: default"
cat >"$E2E_DIR/prod-without-after.yaml" <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: kfm-api}
spec:
  environment: prod
  changeRecord: CHG-e2e
  target: {deployment: kfm-api, container: api}
  image: {repository: $REPO, digest: "$C"}
$MEMBRANE
EOF
refused() { # file text: the apiserver refuses the file, saying text
  if kubectl -n "$prod" apply -f "$1" >"$E2E_DIR/refused.out" 2>&1; then echo "accepted"; return 1; fi
  grep -qF -- "$2" "$E2E_DIR/refused.out" || { cat "$E2E_DIR/refused.out"; return 1; }
}
check "prod without spec.after is refused, naming the field" refused "$E2E_DIR/prod-without-after.yaml" \
  "spec.after is required when spec.environment is prod"
# staging succeeded with C (its own chain is intact; only dev's was forged)
gar "$prod" prod "$C" "  after: [{namespace: $staging, name: kfm-api}]
$MEMBRANE" >/dev/null
check "prod after staging (Succeeded with C): GatesPassed=True" eventually 30 condition_is "$prod" kfm-api GatesPassed True GatesPassed
staging_ref=$(kubectl -n "$staging" get gar kfm-api -o json | python3 -c '
import json, sys
h = json.load(sys.stdin)["status"]["history"]
print([e for e in h if e["digest"] == sys.argv[1] and e["outcome"] == "Succeeded"][-1]["auditRef"])' "$C")
check "  promotedFrom names staging's Succeeded receipt for C" equals "$staging_ref" jp "$prod" gar/kfm-api '{.status.promotedFrom[0].auditRef}'
check "  the rollout to C started (Event RolloutStarted)" eventually 30 has_event "$prod" kfm-api RolloutStarted
D=$(digest order-d)
gar "$prod" prod "$D" "  after: [{namespace: $staging, name: kfm-api}]
$MEMBRANE" >/dev/null
check "prod with a digest staging never succeeded with: NotPromoted naming staging's release" eventually 30 \
  gate_says "$prod" "GovernedAPIRelease $staging/kfm-api has no Succeeded entry for $D"
check "  the prod Deployment was not rolled to D" bash -c "[ \"\$(kubectl -n $prod get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}')\" != '$REPO@$D' ]"
kubectl delete namespace "$prod" --wait=false >/dev/null
check "SIGTERM: clean exit 0" operator_stop
