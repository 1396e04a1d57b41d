#!/usr/bin/env bash
# The main job, from a fresh machine: membrane against a real local control
# plane. It builds membrane and the control plane, applies the CRDs and the
# operator's least-privilege RBAC, starts the operator under that
# ServiceAccount, and starts the governed API double (whose behaviour follows
# the digest the Deployment runs), a loopback HTTPS bundle server
# (hack/bundleserver) and an OPA for decision tests (hack/opa.sh). Then, with
# kubectl as a user would:
#   0. a PolicyBundle, built by `opa build` and served over HTTPS, is fetched,
#      verified (digest, structure, roots, decision tests) and published;
#   1. the datasets the governed API serves are promoted by DatasetPromotions:
#      their catalog documents written by test/fixtures/dataset/generate.py
#      (pystac, prov, rdflib), their artifacts and documents served by the same
#      bundle server over its plain HTTP port (DatasetPromotion has no CA field),
#      each gated and published into the index the release's published-only
#      check reads;
#   2. a good release, gated on that bundle and on the image's cosign
#      signature (the images are pushed to a real registry on loopback,
#      hack/registry.sh, over HTTPS with a test CA, and signed with cosign,
#      hack/cosign.sh), rolls the governed API to a new digest, passes every
#      check and succeeds, the bundle's digest stamped on its pods; an unsigned
#      digest is refused at the gate;
#   3. a bad release (its Focus Mode answers carry no citations) is rolled out,
#      fails the focus-ask check and is rolled back on its own;
#   3b. prod, after the staging release (spec.after): the digest staging
#      rolled back is refused at the gate (NotPromoted, Stalled); the one it
#      succeeded with is promoted and succeeds, naming staging's receipt in
#      status.promotedFrom;
#   4. kubectl get / describe show the phases, conditions, Events and receipts;
#      membrane receipt verify checks both chains and the link between them.
# `hack/demo.sh slo` shows the slo check instead, against a real Prometheus
# (hack/prometheus.sh) scraping the double while curl sends it steady traffic:
# a release meets its objectives and is observed; its version then fails 5 %
# of the traffic (the double is switched to error-5pct), a recheck breaches
# error-rate, and the release is rolled back with SLOBreach, the rolled-back
# version meeting the same objectives.
# MEMBRANE_DEMO_KEEP=1 leaves the control plane running afterwards.
set -euo pipefail

mode=${1:-main}
case $mode in
  main | slo) ;;
  *) echo "usage: hack/demo.sh [slo]" >&2; exit 2 ;;
esac

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
source e2e/common.sh
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

bold "set-up and build"
bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build membrane governed-api-double >/dev/null || { ninja -C build membrane governed-api-double; exit 1; }
bash hack/controlplane.sh >/dev/null
if [ "$mode" = slo ]; then
  prometheus=$(bash hack/prometheus.sh)
else
  opa=$(bash hack/opa.sh)
  bundleserver=$(bash hack/gotool.sh bundleserver)
  py=$(bash hack/python.sh)
  source e2e/registry.sh
  REGISTRY_BIN=$(bash hack/registry.sh)
  CRANE=$(bash hack/crane.sh)
  COSIGN_V2=$(bash hack/cosign.sh v2)
fi

bold "a local control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok"
export MEMBRANE_CLUSTER_DIR="$repo/.cache/demo-cluster"
bash hack/cluster.sh down >/dev/null 2>&1 || true
rm -rf "$MEMBRANE_CLUSTER_DIR"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${MEMBRANE_DEMO_KEEP:-}" ] || bash hack/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash hack/cluster.sh up
eval "$(bash hack/cluster.sh env)"
logs="$MEMBRANE_CLUSTER_DIR/logs"
run kubectl get nodes

bold "the CRDs, the operator's least-privilege RBAC and the admission policies that confine its writes"
run kubectl apply -f crds/
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply -f manifests/namespace.yaml >/dev/null
kubectl apply -n membrane-system -f manifests/serviceaccount.yaml -f manifests/rbac.yaml \
  -f manifests/admission-deployments.yaml -f manifests/admission-configmaps.yaml >/dev/null
bash hack/cluster.sh sa-kubeconfig membrane-system membrane "$MEMBRANE_CLUSTER_DIR/membrane.kubeconfig" 2h

# Three digests of the governed API: v1 and v2 are good, v3 answers without citations.
V1=$(digest kfm-api-v1); V2=$(digest kfm-api-v2); V3=$(digest kfm-api-v3)
REPO=ghcr.io/kfm/kfm-api

if [ "$mode" = main ]; then
  bold "a registry on loopback (HTTPS, a test CA) holding the governed API's images, signed with cosign"
  registry_pki "$MEMBRANE_CLUSTER_DIR/registry/pki"
  registry_start "$MEMBRANE_CLUSTER_DIR/registry" https none
  pids+=("$REG_PID")
  REPO=$REG_HOST/kfm/kfm-api
  V1=$(image_push kfm/kfm-api v1); V2=$(image_push kfm/kfm-api v2); V3=$(image_push kfm/kfm-api v3)
  V4=$(image_push kfm/kfm-api v4-unsigned)
  echo "pushed with crane: v1 $V1, v2 $V2, v3 $V3, v4 $V4"
  (cd "$MEMBRANE_CLUSTER_DIR/registry" && run reg_cosign v2 generate-key-pair --output-key-prefix cosign)
  # offline, key-based: no transparency log
  for d in "$V1" "$V2" "$V3"; do
    run reg_cosign v2 sign --key "$MEMBRANE_CLUSTER_DIR/registry/cosign.key" --tlog-upload=false -y "$REPO@$d"
  done
  run reg_crane ls "$REPO"
fi

bold "the governed API: a Deployment on v1, and its local double"
kubectl create namespace kfm >/dev/null
deployment_yaml kfm-api "$REPO@$V1" | kubectl -n kfm apply -f - >/dev/null
kubectl -n kfm rollout status deploy/kfm-api --timeout=60s
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
kubectl -n kfm create secret generic smoke-token --from-literal=token="$token" >/dev/null
printf '%s' "$token" > "$MEMBRANE_CLUSTER_DIR/smoke-token"
double_flags=()
[ "$mode" = main ] || double_flags=(--cache-ms 200) # the steady traffic need not read the Deployment each time
double_start ./build/governed-api-double "$logs/double" --namespace kfm --deployment kfm-api --container api \
  --behaviour "$V1=good" --behaviour "$V2=good" --behaviour "$V3=uncited" "${double_flags[@]}" \
  --token-file "$MEMBRANE_CLUSTER_DIR/smoke-token" || { pids+=("$DOUBLE_PID"); exit 1; }
pids+=("$DOUBLE_PID")
api_url=$DOUBLE_URL
echo "governed API double at $api_url (v1, v2 good; v3 answers without citations)"

bold "the operator, as ServiceAccount membrane-system/membrane"
# any free ports for /metrics and /healthz: the defaults (:8080, :8081) may be taken on this machine
./build/membrane run --kubeconfig "$MEMBRANE_CLUSTER_DIR/membrane.kubeconfig" --log-format text \
  --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 >"$logs/membrane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "is running" "$logs/membrane.log" && break; sleep 0.1; done
sed 's/^/  /' "$logs/membrane.log"

release() { # digest change-record [extra spec lines]
  release_yaml kfm-api kfm-api "$REPO" "$1" "$2" "observationSeconds: 5, progressDeadlineSeconds: 120" "  verification:
    baseURL: \"$api_url\"
    authSecretRef: {name: smoke-token, key: token}
    timeoutSeconds: 2
    evidenceRefs: [{type: stac_item, id: wells-2026-03}]
    focusQuestion: \"Which wells were sampled in March 2026?\"
    restrictedDatasetID: kfm.sacred-sites
${3:-}" | kubectl -n kfm apply -f -
}
wait_phase() { # phase...
  local p
  for _ in $(seq 1 240); do
    p=$(kubectl -n kfm get gar kfm-api -o jsonpath='{.status.phase}' 2>/dev/null || true)
    for want in "$@"; do [ "$p" = "$want" ] && return 0; done
    sleep 0.5
  done
  echo "the release did not reach $* (phase $p)"; return 1
}

if [ "$mode" = slo ]; then
  bold "Prometheus, scraping the double every second, and steady traffic to the API"
  prometheus_start "$prometheus" "$logs" "${api_url#http://}"
  prom=$PROM_URL
  pids+=("$PROM_PID")
  for _ in $(seq 1 120); do curl -fsS --max-time 2 "$prom/-/ready" >/dev/null 2>&1 && break; sleep 0.5; done
  load_start "$api_url" /dev/null -H "Authorization: Bearer $token"
  pids+=("$LOAD_PID")
  echo "Prometheus at $prom; curl sends 20 requests a second to the API"
  # Prometheus starts scraping a few seconds after it is ready: wait until it has seen the traffic
  for _ in $(seq 1 60); do prometheus_sees "$prom" "$V1" 2>/dev/null && break; sleep 0.5; done
  # the new pods serve (and are scraped) a few seconds before a rollout counts as done, so that the
  # first run of the checks finds samples of the new version
  run kubectl -n kfm patch deploy kfm-api --type merge -p '{"spec":{"minReadySeconds":4}}'
  run curl -sS -G --data-urlencode "query=sum by (code) (rate(http_requests_total{digest=\"$V1\"}[5s]))" "$prom/api/v1/query"
  echo

  bold "1. a release v1 -> v2 with two objectives, observed for 60 s with a recheck every 3 s"
  release_yaml kfm-api kfm-api "$REPO" "$V2" CHG-2026-0150 \
    "observationSeconds: 60, recheckSeconds: 3, progressDeadlineSeconds: 120" "  verification:
    baseURL: \"$api_url\"
    authSecretRef: {name: smoke-token, key: token}
    timeoutSeconds: 2
    checks: [health, ready, datasets, stac-items]
$(slo_red_yaml "$prom")" | kubectl -n kfm apply -f -
  wait_phase Observing
  run kubectl -n kfm get gar kfm-api
  echo "the slo check's result at Verifying:"
  run kubectl -n kfm get gar kfm-api -o jsonpath='{.status.verification.results[?(@.name=="slo")].message}{"\n"}'

  bold "2. v2 now fails 1 request in 20 of the user traffic (the contract checks still pass)"
  run curl -fsS -X PUT --data error-5pct "$api_url/__double/behaviour/$V2"
  echo
  wait_phase RolledBack Failed
  run kubectl -n kfm get gar kfm-api
  echo "why:"
  run kubectl -n kfm get gar kfm-api -o jsonpath='{.status.lastRollback.trigger}: {.status.lastRollback.message}{"\n"}'
  echo "the rolled-back version, asked with its own digest:"
  run kubectl -n kfm get gar kfm-api -o jsonpath='{.status.verification.results[?(@.name=="slo")].message}{"\n"}'
  run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'
  run kubectl -n kfm get events --field-selector involvedObject.name=kfm-api --sort-by=.lastTimestamp
  exit 0
fi

bold "0. a policy bundle: built by opa build, served over HTTPS, verified and published"
# The policy: public users read only data whose label is not restricted.
pol="$MEMBRANE_CLUSTER_DIR/policy"
mkdir -p "$pol/src/kfm/config" "$pol/srv" "$pol/pki"
cat > "$pol/src/kfm/authz.rego" <<'EOF'
package kfm

default allow := false

allow if input.role == "admin"

allow if {
	input.role == "public"
	not input.dataset.policy_label in data.kfm.config.restricted_labels
}
EOF
echo '{"restricted_labels": ["restricted", "sensitive"]}' > "$pol/src/kfm/config/data.json"
echo '{"revision": "2026.12.06-1", "roots": ["kfm"]}' > "$pol/src/.manifest"
(cd "$pol/src" && run "$opa" build -b . -o "$pol/srv/kfm-policy.tar.gz")
bundle_digest="sha256:$(sha256sum < "$pol/srv/kfm-policy.tar.gz" | cut -c1-64)"
# a test CA and the bundle server's certificate for 127.0.0.1
test_ca "$pol/pki" ca
test_server_cert "$pol/pki" server ca
# its plain HTTP port serves the datasets (step 1): the documents name it, so it is chosen first
store_port=$(free_port)
store="http://127.0.0.1:$store_port"
"$bundleserver" -dir "$pol/srv" -cert "$pol/pki/server.crt" -key "$pol/pki/server.key" -http "127.0.0.1:$store_port" \
  >"$logs/bundleserver.out" 2>"$logs/bundleserver.log" &
pids+=($!)
for _ in $(seq 1 50); do grep -q listening "$logs/bundleserver.out" 2>/dev/null && break; sleep 0.1; done
bundle_url=$(sed -n 's/.*listening on \(https[^ ,]*\).*/\1/p' "$logs/bundleserver.out")
echo "bundle server at $bundle_url (a test CA); the bundle's digest is $bundle_digest"
# the OPA that membrane runs the bundle's decision tests against
opa_port=$(free_port)
"$opa" run --server --addr "127.0.0.1:$opa_port" --log-level error >"$logs/opa.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do curl -fsS "http://127.0.0.1:$opa_port/health" >/dev/null 2>&1 && break; sleep 0.1; done
echo "decision-test OPA at http://127.0.0.1:$opa_port"
run kubectl -n kfm create secret generic bundle-ca --from-file=ca.crt="$pol/pki/ca.crt"
kubectl -n kfm apply -f - <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: PolicyBundle
metadata: {name: kfm-policy}
spec:
  source:
    url: "$bundle_url/kfm-policy.tar.gz"
    digest: "$bundle_digest"
    caSecretRef: {name: bundle-ca, key: ca.crt}
  requiredRoots: [kfm]
  decisionTests:
    opaURL: "http://127.0.0.1:$opa_port"
    cases:
      - {name: public-cannot-read-restricted, path: kfm/allow, input: {role: public, dataset: {policy_label: restricted}}, expect: false}
      - {name: public-reads-public, path: kfm/allow, input: {role: public, dataset: {policy_label: public}}, expect: true}
EOF
run kubectl -n kfm wait --for=condition=Ready pb/kfm-policy --timeout=120s
run kubectl -n kfm get pb kfm-policy
run kubectl -n kfm get configmap kfm-policy-bundle -o jsonpath='{.data.digest} {.data.revision}{"\n"}'

bold "1. the datasets the governed API serves, promoted by DatasetPromotions"
# ID VERSION LICENSE LABEL: each version's artifact, and its DCAT, STAC and PROV documents written by generate.py;
# served by the bundle server's plain HTTP port at $store
srv="$pol/srv"
mkdir -p "$srv/licenses"
datasets=("kfm.hydrology.wells 2026-03-01.1 CC-BY-4.0 public" "kfm.soils.survey 2025-11-02.4 CC0-1.0 public"
  "kfm.sacred-sites 2026-01-15.2 LicenseRef-kfm-restricted restricted")
for d in "${datasets[@]}"; do
  read -r id ver lic label <<<"$d"
  printf '<html>%s</html>\n' "$lic" >"$srv/licenses/$lic.html"
  mkdir -p "$srv/store/$id/$ver" "$srv/catalog/$id"
  printf 'site,value\n%s,%s\n' "$id" "$ver" >"$srv/store/$id/$ver/data.csv"
  art_digest="sha256:$(sha256sum <"$srv/store/$id/$ver/data.csv" | cut -c1-64)"
  printf '{"store":"%s","datasetID":"%s","versionID":"%s","license":"%s","licenseLink":"%s/licenses/%s.html","artifacts":[{"name":"data.csv","url":"%s/store/%s/%s/data.csv","digest":"%s","mediaType":"text/csv"}]}\n' \
    "$store" "$id" "$ver" "$lic" "$store" "$lic" "$store" "$id" "$ver" "$art_digest" >"$srv/catalog/$id/config.json"
  "$py" test/fixtures/dataset/generate.py --version "$srv/catalog/$id/config.json" "$srv/catalog/$id"
  kubectl -n kfm apply -f - <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: DatasetPromotion
metadata: {name: $id}
spec:
  datasetID: "$id"
  versionID: "$ver"
  license: "$lic"
  policyLabel: $label
  artifacts:
  - {name: data.csv, url: "$store/store/$id/$ver/data.csv", digest: "$art_digest", mediaType: text/csv}
  catalog:
    dcat: {url: "$store/catalog/$id/dcat.jsonld"}
    stac: {url: "$store/catalog/$id/collection.json"}
    prov: {url: "$store/catalog/$id/prov.json"}
EOF
done
echo "their documents and artifacts at $store/catalog/ and $store/store/ (plain HTTP on loopback)"
run kubectl -n kfm wait --for=jsonpath='{.status.phase}'=Promoted dp --all --timeout=120s
run kubectl -n kfm get dp
echo "the published index the release's published-only check reads:"
run kubectl -n kfm get configmap kfm-published-datasets -o jsonpath='{range .data.*}{@}{"\n"}{end}'

bold "2. a good release, gated on the bundle and on the image's cosign signature: v1 -> v2"
run kubectl -n kfm create secret generic cosign-pub --from-file=cosign.pub="$MEMBRANE_CLUSTER_DIR/registry/cosign.pub"
run kubectl -n kfm create secret generic registry-ca --from-file=ca.crt="$MEMBRANE_CLUSTER_DIR/registry/pki/ca.crt"
export IMAGE_VERIFY="publicKeySecretRef: {name: cosign-pub, key: cosign.pub}, caSecretRef: {name: registry-ca, key: ca.crt}"
echo "an unsigned digest first: refused at the gate, the Deployment untouched"
run release "$V4" CHG-2026-0141 "  policyBundleRef: {name: kfm-policy}"
for _ in $(seq 1 120); do
  [ "$(kubectl -n kfm get gar kfm-api -o jsonpath='{.status.conditions[?(@.type=="GatesPassed")].reason}')" = ImageNotVerified ] && break
  sleep 0.5
done
run kubectl -n kfm get gar kfm-api -o jsonpath='{.status.conditions[?(@.type=="GatesPassed")].reason}: {.status.conditions[?(@.type=="GatesPassed")].message}{"\n"}'
run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'
echo "then v2, signed:"
run release "$V2" CHG-2026-0142 "  policyBundleRef: {name: kfm-policy}"
run kubectl -n kfm wait --for=condition=Ready gar/kfm-api --timeout=120s
run kubectl -n kfm get gar kfm-api
run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'
echo "its pods carry the bundle's digest:"
run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.metadata.annotations.governance\.kfm\.dev/policy-bundle-digest}{"\n"}'

bold "3. a bad release: v2 -> v3, whose answers carry no citations"
run release "$V3" CHG-2026-0143
wait_phase RolledBack Failed
run kubectl -n kfm get gar kfm-api
echo "the Deployment runs again:"
run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'

bold "3b. prod, after staging: only a digest staging succeeded with is promoted"
kubectl create namespace kfm-prod >/dev/null
deployment_yaml kfm-api "$REPO@$V1" | kubectl -n kfm-prod apply -f - >/dev/null
kubectl -n kfm-prod rollout status deploy/kfm-api --timeout=60s >/dev/null
kubectl -n kfm-prod create secret generic smoke-token --from-literal=token="$token" >/dev/null
# prod's trust membrane: no pod reaches the stores but through the API
default_deny kfm-prod
double_start ./build/governed-api-double "$logs/double-prod" --namespace kfm-prod --deployment kfm-api --container api \
  --behaviour "$V1=good" --behaviour "$V2=good" --behaviour "$V3=uncited" \
  --token-file "$MEMBRANE_CLUSTER_DIR/smoke-token" || { pids+=("$DOUBLE_PID"); exit 1; }
pids+=("$DOUBLE_PID")
prod_url=$DOUBLE_URL
prod_release() { # digest change-record
  kubectl -n kfm-prod apply -f - <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: kfm-api}
spec:
  environment: prod
  changeRecord: "$2"
  target: {deployment: kfm-api, container: api}
  image: {repository: $REPO, digest: "$1"}
  after: [{namespace: kfm, name: kfm-api}]
  rollout: {observationSeconds: 0, progressDeadlineSeconds: 120}
  verification:
    baseURL: "$prod_url"
    authSecretRef: {name: smoke-token, key: token}
    timeoutSeconds: 2
    checks: [health, ready, datasets, stac-collections]
  membrane:
    clients: [{podSelector: {matchLabels: {app: kfm-ui}}}]
    stores: [{name: postgis, podSelector: {matchLabels: {app: postgis}}, ports: [5432]}]
    apiServiceAccount: default
EOF
}
echo "v3, which staging rolled back: refused at the gate (NotPromoted, Stalled), the prod Deployment untouched"
run prod_release "$V3" CHG-2026-0144
for _ in $(seq 1 60); do
  [ "$(kubectl -n kfm-prod get gar kfm-api -o jsonpath='{.status.conditions[?(@.type=="Stalled")].reason}')" = NotPromoted ] && break
  sleep 0.5
done
run kubectl -n kfm-prod get gar kfm-api -o jsonpath='{.status.conditions[?(@.type=="Stalled")].reason}: {.status.conditions[?(@.type=="Stalled")].message}{"\n"}'
run kubectl -n kfm-prod get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'
echo "v2, which staging succeeded with: promoted, rolled out, verified"
run prod_release "$V2" CHG-2026-0145
run kubectl -n kfm-prod wait --for=condition=Ready gar/kfm-api --timeout=120s
run kubectl get gar -A
echo "the staging receipt prod was promoted on (staging's status.history entry for v2):"
run kubectl -n kfm-prod get gar kfm-api -o jsonpath='{.status.promotedFrom}{"\n"}'
run kubectl -n kfm get gar kfm-api -o jsonpath="{.status.history[?(@.digest==\"$V2\")].auditRef}{\"\\n\"}"

bold "4. what a platform engineer sees"
run kubectl -n kfm describe gar kfm-api
kubectl -n kfm get gar kfm-api -o json > "$MEMBRANE_CLUSTER_DIR/kfm-api.json"
kubectl -n kfm-prod get gar kfm-api -o json > "$MEMBRANE_CLUSTER_DIR/kfm-api-prod.json"
echo "both receipt chains, and prod's promotedFrom checked against staging's history:"
run ./build/membrane receipt verify -f "$MEMBRANE_CLUSTER_DIR/kfm-api.json" -f "$MEMBRANE_CLUSTER_DIR/kfm-api-prod.json"
kubectl -n kfm get pb kfm-policy -o json > "$MEMBRANE_CLUSTER_DIR/kfm-policy.json"
run ./build/membrane receipt verify -f "$MEMBRANE_CLUSTER_DIR/kfm-policy.json"
