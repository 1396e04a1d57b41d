#!/usr/bin/env bash
# The environment-order gate (spec.after) on the local control plane: a release
# proceeds only after the releases it names, of earlier environments, succeeded
# with its digest and their receipt chains verify (recomputed by the operator);
# else GatesPassed=False NotPromoted naming the release and what is missing. The
# upstream receipt is sealed in the downstream one. prod needs spec.after, dev
# may not have it (CEL). staging -> prod: a prod release waits (Reconciling)
# while staging still releases its digest and proceeds by itself when staging
# succeeds; a digest staging rolled back is Stalled in prod until staging
# succeeds with it; a tampered staging chain holds prod; a GitOps revert of
# prod to a digest staging succeeded with earlier succeeds; membrane receipt
# verify checks prod's promotedFrom against staging's file; and
# --allow-after-namespaces refuses an entry outside its list.
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
  rollout: {observationSeconds: ${GAR_OBSERVATION:-0}}
  verification: {checks: [health, ready], baseURL: "${GAR_URL:-$E2E_GOOD_URL}"}
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
gar "$other" staging "$B" "  after: [{namespace: $staging, name: kfm-api}]" >/dev/null
check "staging after staging: NotPromoted, wrong order, Stalled" eventually 30 gate_says "$other" "is environment staging, not earlier than staging"
check "  Stalled=True" condition_is "$other" kfm-api Stalled True NotPromoted
# refused_in NS FILE TEXT: the apiserver refuses the file, saying TEXT
refused_in() {
  if kubectl -n "$1" apply -f "$2" >"$E2E_DIR/refused.out" 2>&1; then echo "accepted"; return 1; fi
  grep -qF -- "$3" "$E2E_DIR/refused.out" || { cat "$E2E_DIR/refused.out"; return 1; }
}
cat >"$E2E_DIR/dev-with-after.yaml" <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: dev-with-after}
spec:
  environment: dev
  changeRecord: CHG-e2e
  target: {deployment: kfm-api, container: api}
  image: {repository: $REPO, digest: "$B"}
  after: [{namespace: $staging, name: kfm-api}]
EOF
check "dev with spec.after is refused at admission, naming the field and what to fix" refused_in "$other" \
  "$E2E_DIR/dev-with-after.yaml" "spec.after must be empty when spec.environment is dev: dev is the first environment"

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

say "staging -> prod: prod waits while staging still releases the digest, and proceeds by itself when staging succeeds"
stg=$(new_namespace order-stg); prd=$(new_namespace order-prd)
deployment "$stg" kfm-api "$REPO@$A" 1
deployment "$prd" kfm-api "$REPO@$A" 1
# prod's trust membrane holds: no pod may reach the (hypothetical) stores
default_deny "$prd"
E=$(digest order-e)
# staging's own governed API double: E is not ready (its checks fail), every other digest is good
double_start "$MEMBRANE_DOUBLE" "$E2E_DIR/stg-api" --namespace "$stg" --deployment kfm-api --container api \
  --default-behaviour good --behaviour "$E=unknown"
E2E_PIDS+=("$DOUBLE_PID")
STG_URL=$DOUBLE_URL
stg_gar() { GAR_URL=$STG_URL gar "$stg" staging "$@" >/dev/null; }
prd_gar() { gar "$prd" prod "$1" "  after: [{namespace: $stg, name: kfm-api}]
$MEMBRANE" >/dev/null; }
GAR_OBSERVATION=6 stg_gar "$B"   # observed for 6 s: prod comes while staging is still at it
prd_gar "$B"
prd_gen=$(jp "$prd" gar/kfm-api '{.metadata.generation}')
check "prod: GatesPassed=False NotPromoted, staging is still releasing B" eventually 30 \
  gate_says "$prd" "GovernedAPIRelease $stg/kfm-api is still releasing $B"
check "  Reconciling=True NotPromoted (it waits), not Stalled" condition_is "$prd" kfm-api Reconciling True NotPromoted
check "  the prod Deployment still runs A" equals "$REPO@$A" jp "$prd" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "staging Succeeded with B" eventually 60 succeeded_gen "$stg"
check "prod then proceeds by itself and Succeeds with B" eventually 90 succeeded_gen "$prd"
check "  untouched: still the generation it was applied as" equals "$prd_gen" jp "$prd" gar/kfm-api '{.metadata.generation}'
check "  the prod Deployment runs B" equals "$REPO@$B" jp "$prd" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
stg_ref_b=$(jp "$stg" gar/kfm-api '{.status.history[0].auditRef}')
check "  its receipt seals staging's Succeeded receipt for B" equals "$stg/kfm-api $stg_ref_b" \
  jp "$prd" gar/kfm-api '{.status.history[-1:].promotedFrom[0].namespace}/{.status.history[-1:].promotedFrom[0].name} {.status.history[-1:].promotedFrom[0].auditRef}'

say "membrane receipt verify -f staging.json -f prod.json: prod's promotedFrom checked against staging's history"
kubectl -n "$stg" get gar kfm-api -o json >"$E2E_DIR/stg.json"
kubectl -n "$prd" get gar kfm-api -o json >"$E2E_DIR/prd.json"
check "both chains and the link hold (exit 0)" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/stg.json" -f "$E2E_DIR/prd.json"
"$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/stg.json" -f "$E2E_DIR/prd.json" >"$E2E_DIR/verify-both.out" 2>&1 || true
check "  it names the upstream entry it checked" grep -qF \
  "GovernedAPIRelease $prd/kfm-api status.history[0].promotedFrom[0]: promotedFrom $stg/kfm-api status.history[0] ($B) Succeeded, same digest: ok" \
  "$E2E_DIR/verify-both.out"
check "prod's file alone: the link is a note, the chain holds (exit 0)" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/prd.json"
# staging's file as if its entry for B said RolledBack: its own chain and prod's link break
python3 - "$E2E_DIR/stg.json" "$E2E_DIR/stg-rolledback.json" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
o["status"]["history"][0]["outcome"] = "RolledBack"
json.dump(o, open(sys.argv[2], "w"))
PY
verify_breaks_link() {
  local rc=0
  "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/stg-rolledback.json" -f "$E2E_DIR/prd.json" >"$E2E_DIR/verify-broken.out" 2>&1 || rc=$?
  [ "$rc" = 1 ] || { echo "exit $rc"; cat "$E2E_DIR/verify-broken.out"; return 1; }
  grep -qF "broken GovernedAPIRelease $prd/kfm-api status.history[0].promotedFrom[0]: promotedFrom $stg/kfm-api status.history[0] ($B) RolledBack (not Succeeded)" "$E2E_DIR/verify-broken.out" ||
    { cat "$E2E_DIR/verify-broken.out"; return 1; }
}
check "with a staging entry that is not Succeeded: the link is broken (exit 1)" verify_breaks_link

say "a digest staging rolled back is refused in prod (Stalled) until staging succeeds with it"
stg_gar "$E"
stg_rolled_back() { equals "RolledBack $(jp "$stg" gar/kfm-api '{.metadata.generation}')" jp "$stg" gar/kfm-api '{.status.phase} {.status.observedGeneration}'; }
check "staging rolls E back (its checks fail)" eventually 90 stg_rolled_back
prd_gar "$E"
check "prod at E: GatesPassed=False NotPromoted, naming staging, E and RolledBack" eventually 30 \
  gate_says "$prd" "GovernedAPIRelease $stg/kfm-api: its last entry for $E (status.history[1]) has outcome RolledBack"
check "  the message says what to do" gate_says "$prd" "release a fixed digest there"
check "  Stalled=True NotPromoted" condition_is "$prd" kfm-api Stalled True NotPromoted
check "  the prod Deployment still runs B" equals "$REPO@$B" jp "$prd" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
# staging's checks fixed for E (the double says good now), and staging releases E again
curl -fsS -X PUT --data good "$STG_URL/__double/behaviour/$E" >/dev/null
prd_gen=$(jp "$prd" gar/kfm-api '{.metadata.generation}')
stg_gar "$E"
check "staging Succeeded with E" eventually 60 succeeded_gen "$stg"
check "prod, Stalled, proceeds by itself and Succeeds with E" eventually 90 succeeded_gen "$prd"
check "  untouched: still the generation it was applied as" equals "$prd_gen" jp "$prd" gar/kfm-api '{.metadata.generation}'

say "a GitOps revert of prod to B, which staging succeeded with before E"
prd_gar "$B"
check "prod Succeeded with B" eventually 90 succeeded_gen "$prd"
check "  the prod Deployment runs B" equals "$REPO@$B" jp "$prd" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "  promotedFrom names staging's receipt for B (status.history[0])" equals "$stg_ref_b" jp "$prd" gar/kfm-api '{.status.promotedFrom[0].auditRef}'

say "a staging history edited by hand does not open prod's gate"
kubectl -n "$stg" patch gar kfm-api --subresource=status --type=json \
  -p '[{"op":"replace","path":"/status/history/0/changeRecord","value":"CHG-forged"}]' >/dev/null
prd_gar "$E"
check "prod at E: NotPromoted, staging's receipt chain does not verify" eventually 30 \
  gate_says "$prd" "the receipt chain of GovernedAPIRelease $stg/kfm-api does not verify"
check "  Stalled=True" condition_is "$prd" kfm-api Stalled True NotPromoted
check "  the prod Deployment still runs B" equals "$REPO@$B" jp "$prd" deploy/kfm-api '{.spec.template.spec.containers[0].image}'

say "--allow-after-namespaces: an entry naming a namespace outside the list is refused"
check "SIGTERM: clean exit 0" operator_stop
operator_start --allow-after-namespaces "$dev,$staging"
prd_gar "$E"
check "prod after $stg: NotPromoted naming the entry, the namespace and the flag" eventually 30 gate_says "$prd" \
  "spec.after[0] names GovernedAPIRelease $stg/kfm-api, but namespace $stg is not one the operator trusts for spec.after (--allow-after-namespaces $dev,$staging)"
check "  Stalled=True" condition_is "$prd" kfm-api Stalled True NotPromoted
kubectl delete namespace "$prd" "$stg" --wait=false >/dev/null
check "SIGTERM: clean exit 0" operator_stop
