#!/usr/bin/env bash
# Checks the three CustomResourceDefinitions against a real kube-apiserver: they
# install and become Established; every good sample is accepted (server dry run,
# then really created in a throw-away namespace) and comes back with the API's
# defaults; every sample under manifests/samples/invalid/ is rejected with a
# message containing its "# expect:" line; immutable fields stay immutable; the
# status subresource accepts the contract's status and refuses a phase outside it;
# the printer columns, short names, categories and `kubectl explain` work; and
# every schema field has a description and bounds (maxItems, maxLength, ...).
# Needs KUBECONFIG (admin) and kubectl on PATH, as hack/test.sh provides.
source "$(dirname "$0")/lib.sh"

need_cluster test_crds

ns="membrane-crds-$$"
namespaces+=("$ns")

# in_ns FILE: the sample with its namespace (kfm) replaced by the test namespace.
in_ns() { sed "s/^  namespace: kfm\$/  namespace: $ns/" "$1"; }

echo "== install"
install_crds
for crd in governedapireleases policybundles datasetpromotions; do
  name="$crd.governance.kfm.dev"
  nonstructural=$(kubectl get crd "$name" -o jsonpath='{.status.conditions[?(@.type=="NonStructuralSchema")].status}')
  if [ -z "$nonstructural" ]; then ok "$name has a structural schema"; else fail "$name has a structural schema" "NonStructuralSchema=$nonstructural"; fi
done
# Schema hygiene, as the apiserver stored it: every field has a description (so
# kubectl explain explains it), every list a maxItems, every string a maxLength
# or an enum, every map a maxProperties (CEL cost estimation relies on them).
kubectl get crd governedapireleases.governance.kfm.dev policybundles.governance.kfm.dev \
    datasetpromotions.governance.kfm.dev -o json > "$tmp/crds.json" 2>"$tmp/out" || true
python3 - "$tmp/crds.json" > "$tmp/hygiene" 2>&1 <<'PY' || true
import json, sys
def walk(kind, path, s, out):
    t = s.get("type")
    named = not path.endswith("[]") and not path.endswith("{}") and path not in ("", ".metadata")
    if named and not s.get("description"):
        out.append(kind + path + ": no description")
    if t == "array" and "maxItems" not in s:
        out.append(kind + path + ": a list without maxItems")
    if t == "string" and path not in (".apiVersion", ".kind") and not (
            "maxLength" in s or "enum" in s or s.get("format") == "date-time"):
        out.append(kind + path + ": a string without maxLength or enum")
    if t == "object" and isinstance(s.get("additionalProperties"), dict) and "maxProperties" not in s:
        out.append(kind + path + ": a map without maxProperties")
    for k, v in s.get("properties", {}).items():
        walk(kind, path + "." + k, v, out)
    if "items" in s:
        walk(kind, path + "[]", s["items"], out)
    if isinstance(s.get("additionalProperties"), dict):
        walk(kind, path + "{}", s["additionalProperties"], out)
items = json.load(open(sys.argv[1]))["items"]
if len(items) != 3:
    print("expected 3 CRDs, found %d" % len(items))
for c in items:
    out = []
    walk(c["spec"]["names"]["kind"], "", c["spec"]["versions"][0]["schema"]["openAPIV3Schema"], out)
    print("ok " + c["spec"]["names"]["kind"] if not out else "\n".join(out))
PY
if [ "$(grep -c '^ok ' "$tmp/hygiene")" -eq 3 ] && ! grep -qv '^ok ' "$tmp/hygiene"; then
  ok "every field has a description and bounds (maxItems, maxLength or enum, maxProperties)"
else
  fail "every field has a description and bounds (maxItems, maxLength or enum, maxProperties)" "$(grep -v '^ok ' "$tmp/hygiene")"
fi
# discovery may lag a moment behind Established
for _ in $(seq 1 30); do kubectl get gar,pb,dp -A >/dev/null 2>&1 && break; sleep 1; done
kubectl create namespace "$ns" >/dev/null

echo "== good samples"
for f in manifests/samples/*.yaml; do
  if in_ns "$f" | kubectl apply --dry-run=server -f - >"$tmp/out" 2>&1; then
    ok "accepted (dry run): $f"
  else
    fail "accepted (dry run): $f" "$(cat "$tmp/out")"
  fi
  if in_ns "$f" | kubectl create -f - >"$tmp/out" 2>&1; then
    ok "created: $f"
  else
    fail "created: $f" "$(cat "$tmp/out")"
  fi
done

echo "== invalid samples"
count=0
for f in manifests/samples/invalid/*.yaml; do
  count=$((count + 1))
  expect=$(sed -n '1s/^# expect: //p' "$f")
  if [ -z "$expect" ]; then fail "rejected: $f" "first line is not '# expect: <substring>'"; continue; fi
  if in_ns "$f" | kubectl create --dry-run=server -f - >"$tmp/out" 2>&1; then
    fail "rejected: $f" "the apiserver accepted it"
  elif grep -qF -- "$expect" "$tmp/out"; then
    ok "rejected: $f ($expect)"
  else
    fail "rejected: $f" "expected the message to contain: $expect; got: $(cat "$tmp/out")"
  fi
done
if [ "$count" -ge 12 ]; then ok "at least 12 invalid samples ($count)"; else fail "at least 12 invalid samples" "found $count"; fi

echo "== defaults"
field() { kubectl get "$1" -n "$ns" -o "jsonpath=$2"; }
expect_field() { # object jsonpath want
  local got
  got=$(field "$1" "$2" 2>&1) || true
  if [ "$got" = "$3" ]; then ok "$1 $2 = $3"; else fail "$1 $2 = $3" "got: $got"; fi
}
cat > "$tmp/minimal.yaml" <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: minimal, namespace: $ns}
spec:
  environment: dev
  changeRecord: CHG-1
  target: {deployment: kfm-api, container: api}
  image: {repository: ghcr.io/kfm/kfm-api, digest: "sha256:$(printf 'a%.0s' $(seq 1 64))"}
  verification:
    evidenceRefs: [{type: stac_item, id: wells-2026-03}]
    focusQuestion: "Which wells were sampled in March 2026?"
    restrictedDatasetID: kfm.sacred-sites
---
apiVersion: governance.kfm.dev/v1alpha1
kind: PolicyBundle
metadata: {name: minimal, namespace: $ns}
spec:
  source: {url: "https://bundles.kfm.example/p.tar.gz", digest: "sha256:$(printf 'b%.0s' $(seq 1 64))"}
---
apiVersion: governance.kfm.dev/v1alpha1
kind: DatasetPromotion
metadata: {name: minimal, namespace: $ns}
spec:
  datasetID: kfm.hydrology.wells
  versionID: "1"
  license: MIT
  policyLabel: restricted
  artifacts: [{name: a.csv, url: "https://store.kfm.example/a.csv", digest: "sha256:$(printf 'c%.0s' $(seq 1 64))"}]
  catalog:
    dcat: {url: "https://catalog.kfm.example/dcat.jsonld"}
    stac: {url: "https://catalog.kfm.example/collection.json"}
    prov: {url: "https://catalog.kfm.example/prov.json"}
EOF
if kubectl create -f "$tmp/minimal.yaml" >"$tmp/out" 2>&1; then ok "minimal objects created"; else fail "minimal objects created" "$(cat "$tmp/out")"; fi
expect_field gar/minimal '{.spec.rollout.progressDeadlineSeconds}' 600
expect_field gar/minimal '{.spec.rollout.crashLoopRestartThreshold}' 3
expect_field gar/minimal '{.spec.rollout.observationSeconds}' 60
expect_field gar/minimal '{.spec.rollout.recheckSeconds}' 15
expect_field gar/minimal '{.spec.verification.timeoutSeconds}' 10
expect_field gar/minimal '{.spec.verification.checks}' '["health","ready","datasets","stac-collections","stac-items","evidence-resolve","focus-ask","lineage","public-restriction","published-only"]'
expect_field gar/minimal '{.spec.verification.publishedIndex}' kfm-published-datasets
expect_field gar/minimal '{.spec.rollback.automatic}' true
expect_field gar/minimal '{.spec.rollback.triggers}' '["CrashLoop","ProgressDeadline","SmokeFailure","PolicyBypass","EvidenceFailure","UncitedAnswer","MembraneBreach","UnpublishedData","SLOBreach"]'
expect_field gar/minimal '{.spec.suspend}' false
expect_field pb/minimal '{.spec.publish}' '{}'
expect_field dp/minimal '{.spec.publish.indexConfigMap}' kfm-published-datasets
expect_field dp/minimal '{.spec.revoke}' false

long=$(printf 'p%.0s' $(seq 1 250))
expect_rejected() { # what expect command...
  local what=$1 want=$2; shift 2
  if "$@" >"$tmp/out" 2>&1; then
    fail "$what" "the apiserver accepted it"
  elif grep -qF -- "$want" "$tmp/out"; then
    ok "$what ($want)"
  else
    fail "$what" "expected the message to contain: $want; got: $(cat "$tmp/out")"
  fi
}
pb_named() { # name [configMapName]
  printf 'apiVersion: governance.kfm.dev/v1alpha1\nkind: PolicyBundle\nmetadata: {name: %s, namespace: %s}\nspec:\n  source: {url: "https://b.kfm.example/p.tar.gz", digest: "sha256:%s"}\n' \
    "$1" "$ns" "$(printf 'b%.0s' $(seq 1 64))"
  [ -z "${2:-}" ] || printf '  publish: {configMapName: %s}\n' "$2"
}
pb_named "$long" > "$tmp/pb-long.yaml"
expect_rejected "pb whose name leaves no room for <name>-bundle" "too long for the default ConfigMap name" \
  kubectl create --dry-run=server -f "$tmp/pb-long.yaml"
pb_named "$long" kfm-policy-bundle > "$tmp/pb-long-cm.yaml"
if kubectl create --dry-run=server -f "$tmp/pb-long-cm.yaml" >"$tmp/out" 2>&1; then
  ok "pb with a long name and its own configMapName is accepted"
else
  fail "pb with a long name and its own configMapName is accepted" "$(cat "$tmp/out")"
fi

expect_rejected "gar spec.rollout.recheckSeconds below 1" "spec.rollout.recheckSeconds" \
  kubectl patch gar/minimal -n "$ns" --dry-run=server --type=merge -p '{"spec":{"rollout":{"recheckSeconds":0}}}'
expect_rejected "gar spec.verification.publishedIndex that is no ConfigMap name" "spec.verification.publishedIndex" \
  kubectl patch gar/minimal -n "$ns" --dry-run=server --type=merge -p '{"spec":{"verification":{"publishedIndex":"Kfm_Index"}}}'

echo "== immutable fields"
expect_rejected "dp spec.datasetID cannot change" "spec.datasetID is immutable" \
  kubectl patch dp/minimal -n "$ns" --type=merge -p '{"spec":{"datasetID":"kfm.other"}}'
expect_rejected "dp spec.versionID cannot change" "spec.versionID is immutable" \
  kubectl patch dp/minimal -n "$ns" --type=merge -p '{"spec":{"versionID":"2"}}'
expect_rejected "gar spec.target cannot change" "spec.target is immutable" \
  kubectl patch gar/minimal -n "$ns" --type=merge -p '{"spec":{"target":{"deployment":"other"}}}'
if kubectl patch gar/minimal -n "$ns" --type=merge -p '{"spec":{"suspend":true}}' >"$tmp/out" 2>&1; then
  ok "gar spec.suspend can change"
else
  fail "gar spec.suspend can change" "$(cat "$tmp/out")"
fi

echo "== status subresource"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
gen=$(field gar/minimal '{.metadata.generation}')
status='{"status":{"observedGeneration":'"$gen"',"phase":"Succeeded","releaseID":"3f9c0a1b2c4d",
  "currentDigest":"sha256:'"$(printf 'a%.0s' $(seq 1 64))"'",
  "verification":{"startedAt":"'"$now"'","finishedAt":"'"$now"'","observingSince":"'"$now"'","results":[
    {"name":"focus-ask","passed":true,"httpStatus":200,"latencyMs":41,"trigger":"UncitedAnswer","message":"answer cites 2 sources"},
    {"name":"membrane-networkpolicy","passed":true,"trigger":"MembraneBreach","message":"every connection denied"}]},
  "history":[{"releaseID":"3f9c0a1b2c4d","generation":'"$gen"',"digest":"sha256:'"$(printf 'a%.0s' $(seq 1 64))"'",
    "outcome":"Succeeded","startedAt":"'"$now"'","finishedAt":"'"$now"'",
    "auditRef":"sha256:'"$(printf 'd%.0s' $(seq 1 64))"'","prevAuditRef":""}],
  "conditions":[
    {"type":"Ready","status":"True","reason":"Succeeded","message":"Release verified.","lastTransitionTime":"'"$now"'","observedGeneration":'"$gen"'},
    {"type":"Reconciling","status":"False","reason":"Succeeded","message":"","lastTransitionTime":"'"$now"'"},
    {"type":"Stalled","status":"False","reason":"Succeeded","message":"","lastTransitionTime":"'"$now"'"}]}}'
if kubectl patch gar/minimal -n "$ns" --subresource=status --type=merge -p "$status" >"$tmp/out" 2>&1; then
  ok "gar status accepts the contract's fields"
else
  fail "gar status accepts the contract's fields" "$(cat "$tmp/out")"
fi
expect_field gar/minimal '{.status.history[0].auditRef}' "sha256:$(printf 'd%.0s' $(seq 1 64))"
expect_field gar/minimal '{.status.verification.results[0].latencyMs}' 41
expect_field gar/minimal '{.status.verification.observingSince}' "$now"
expect_rejected "gar status phase outside the enum" 'status.phase: Unsupported value: "Done"' \
  kubectl patch gar/minimal -n "$ns" --subresource=status --type=merge -p '{"status":{"phase":"Done"}}'
expect_rejected "gar status history holds at most 20 entries" "status.history: Too many" \
  kubectl patch gar/minimal -n "$ns" --subresource=status --type=merge -p "{\"status\":{\"history\":[$(
    for i in $(seq 1 21); do printf '%s{"releaseID":"3f9c0a1b2c4d","generation":%d,"digest":"x","outcome":"Failed"}' "$([ "$i" -gt 1 ] && echo ,)" "$i"; done)]}}"
kubectl patch gar/minimal -n "$ns" --subresource=status --type=merge -p '{"spec":{"environment":"prod"}}' >/dev/null 2>&1 || true
expect_field gar/minimal '{.spec.environment}' dev
if kubectl patch pb/minimal -n "$ns" --subresource=status --type=merge -p '{"status":{"phase":"Published","revision":"2026.11.20-3",
    "verifiedDigest":"sha256:'"$(printf 'b%.0s' $(seq 1 64))"'","roots":["kfm"],"regoModules":12,"sizeBytes":48213,
    "receipt":{"auditRef":"sha256:'"$(printf 'e%.0s' $(seq 1 64))"'","prevAuditRef":"","publishedAt":"'"$now"'"},
    "conditions":[{"type":"Ready","status":"True","reason":"Published","message":"Bundle published.","lastTransitionTime":"'"$now"'"}]}}' >"$tmp/out" 2>&1; then
  ok "pb status accepts the contract's fields"
else
  fail "pb status accepts the contract's fields" "$(cat "$tmp/out")"
fi
if kubectl patch dp/minimal -n "$ns" --subresource=status --type=merge -p '{"status":{"phase":"Promoted",
    "gates":[{"name":"checksums","passed":true,"message":"1 artifact verified"},{"name":"license","passed":true}],
    "receipt":{"auditRef":"sha256:'"$(printf 'f%.0s' $(seq 1 64))"'","promotedAt":"'"$now"'","inputsDigest":"sha256:'"$(printf '1%.0s' $(seq 1 64))"'"},
    "conditions":[{"type":"Ready","status":"True","reason":"Promoted","message":"Version published.","lastTransitionTime":"'"$now"'"}]}}' >"$tmp/out" 2>&1; then
  ok "dp status accepts the contract's fields"
else
  fail "dp status accepts the contract's fields" "$(cat "$tmp/out")"
fi
expect_rejected "dp status gate outside the enum" 'status.gates[0].name: Unsupported value: "virus-scan"' \
  kubectl patch dp/minimal -n "$ns" --subresource=status --type=merge -p '{"status":{"gates":[{"name":"virus-scan","passed":true}]}}'

echo "== printer columns, short names, categories, explain"
header_is() { # resource want-regex
  local out
  out=$(kubectl get "$1" -n "$ns" 2>&1 | head -1) || true
  if echo "$out" | grep -Eq "$2"; then ok "kubectl get $1 columns: $out"; else fail "kubectl get $1 columns" "got: $out"; fi
}
header_is gar '^NAME +ENV +DIGEST +PHASE +READY +AGE$'
header_is pb '^NAME +DIGEST +REVISION +READY +AGE$'
header_is dp '^NAME +DATASET +VERSION +LABEL +PHASE +AGE$'
row=$(kubectl get gar minimal -n "$ns" --no-headers 2>&1) || true
if echo "$row" | grep -Eq "^minimal +dev +sha256:a{64} +Succeeded +True "; then
  ok "kubectl get gar row shows env, digest, phase and Ready: $row"
else
  fail "kubectl get gar row shows env, digest, phase and Ready" "got: $row"
fi
row=$(kubectl get pb minimal -n "$ns" --no-headers 2>&1) || true
if echo "$row" | grep -Eq "^minimal +sha256:b{64} +2026.11.20-3 +True "; then ok "kubectl get pb row: $row"; else fail "kubectl get pb row" "got: $row"; fi
row=$(kubectl get dp minimal -n "$ns" --no-headers 2>&1) || true
if echo "$row" | grep -Eq "^minimal +kfm.hydrology.wells +1 +restricted +Promoted "; then ok "kubectl get dp row: $row"; else fail "kubectl get dp row" "got: $row"; fi
all=$(kubectl get gar,pb,dp -n "$ns" 2>&1) || true
if [ "$(echo "$all" | grep -c '^NAME ')" -eq 3 ]; then ok "kubectl get gar,pb,dp prints three tables"; else fail "kubectl get gar,pb,dp prints three tables" "$all"; fi
for cat in kfm governance; do
  kinds=$(kubectl get "$cat" -n "$ns" -o jsonpath='{range .items[*]}{.kind}{"\n"}{end}' 2>&1 | sort -u | tr '\n' ' ') || true
  if [ "$kinds" = "DatasetPromotion GovernedAPIRelease PolicyBundle " ]; then ok "category $cat lists the three kinds"; else fail "category $cat lists the three kinds" "got: $kinds"; fi
done
explained=""
for _ in $(seq 1 10); do explained=$(kubectl explain gar.spec.image.digest 2>&1) && break; sleep 1; done
if echo "$explained" | grep -q 'DESCRIPTION' && echo "$explained" | grep -q 'sha256'; then
  ok "kubectl explain gar.spec.image.digest describes the field"
else
  fail "kubectl explain gar.spec.image.digest describes the field" "$explained"
fi
for path in pb.spec.decisionTests.opaURL dp.spec.license gar.status.history gar.spec.rollback.triggers; do
  out=$(kubectl explain "$path" 2>&1) || true
  if [ "$(echo "$out" | sed -n '/^DESCRIPTION:/,$p' | grep -c '[a-z]')" -ge 2 ]; then ok "kubectl explain $path"; else fail "kubectl explain $path" "$out"; fi
done

finish
