#!/usr/bin/env bash
# The main job, from a fresh machine: membrane against a real local control
# plane. It builds membrane and the control plane, applies the CRDs and the
# operator's least-privilege RBAC, starts the operator under that
# ServiceAccount, and starts the governed API double (whose behaviour follows
# the digest the Deployment runs). Then, with kubectl as a user would:
#   1. a good release rolls the governed API to a new digest, passes every
#      check and succeeds;
#   2. a bad release (its Focus Mode answers carry no citations) is rolled out,
#      fails the focus-ask check and is rolled back on its own;
#   3. kubectl get / describe show the phases, conditions, Events and receipts.
# MEMBRANE_DEMO_KEEP=1 leaves the control plane running afterwards.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }

bold "set-up and build"
bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build membrane governed-api-double >/dev/null || { ninja -C build membrane governed-api-double; exit 1; }
bash hack/controlplane.sh >/dev/null

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

bold "the CRDs and the operator's least-privilege RBAC"
run kubectl apply -f crds/
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl apply -f manifests/namespace.yaml >/dev/null
kubectl apply -n membrane-system -f manifests/serviceaccount.yaml -f manifests/rbac.yaml >/dev/null
bash hack/cluster.sh sa-kubeconfig membrane-system membrane "$MEMBRANE_CLUSTER_DIR/membrane.kubeconfig" 2h

# Three digests of the governed API: v1 and v2 are good, v3 answers without citations.
digest() { printf 'sha256:%s' "$(printf '%s' "$1" | sha256sum | cut -c1-64)"; }
V1=$(digest kfm-api-v1); V2=$(digest kfm-api-v2); V3=$(digest kfm-api-v3)
REPO=ghcr.io/kfm/kfm-api

bold "the governed API: a Deployment on v1, and its local double"
kubectl create namespace kfm >/dev/null
kubectl -n kfm apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: kfm-api}
spec:
  replicas: 3
  selector: {matchLabels: {app: kfm-api}}
  template:
    metadata: {labels: {app: kfm-api}}
    spec:
      containers:
      - {name: api, image: "$REPO@$V1"}
EOF
kubectl -n kfm rollout status deploy/kfm-api --timeout=60s
./build/governed-api-double --print-published-index kfm/kfm-published-datasets | kubectl create -f - >/dev/null
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
kubectl -n kfm create secret generic smoke-token --from-literal=token="$token" >/dev/null
printf '%s' "$token" > "$MEMBRANE_CLUSTER_DIR/smoke-token"
./build/governed-api-double --listen 127.0.0.1:0 --namespace kfm --deployment kfm-api --container api \
  --behaviour "$V1=good" --behaviour "$V2=good" --behaviour "$V3=uncited" \
  --token-file "$MEMBRANE_CLUSTER_DIR/smoke-token" >"$logs/double.out" 2>"$logs/double.log" &
pids+=($!)
for _ in $(seq 1 50); do grep -q listening "$logs/double.out" 2>/dev/null && break; sleep 0.1; done
api_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$logs/double.out")
echo "governed API double at $api_url (v1, v2 good; v3 answers without citations)"

bold "the operator, as ServiceAccount membrane-system/membrane"
./build/membrane run --kubeconfig "$MEMBRANE_CLUSTER_DIR/membrane.kubeconfig" --log-format text >"$logs/membrane.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "is running" "$logs/membrane.log" && break; sleep 0.1; done
sed 's/^/  /' "$logs/membrane.log"

release() { # digest change-record
  kubectl -n kfm apply -f - <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: kfm-api}
spec:
  environment: staging
  changeRecord: "$2"
  target: {deployment: kfm-api, container: api}
  image: {repository: $REPO, digest: "$1"}
  rollout: {observationSeconds: 5, progressDeadlineSeconds: 120}
  verification:
    baseURL: "$api_url"
    authSecretRef: {name: smoke-token, key: token}
    timeoutSeconds: 2
    evidenceRefs: [{type: stac_item, id: wells-2026-03}]
    focusQuestion: "Which wells were sampled in March 2026?"
    restrictedDatasetID: kfm.sacred-sites
EOF
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

bold "1. a good release: v1 -> v2"
run release "$V2" CHG-2026-0142
run kubectl -n kfm wait --for=condition=Ready gar/kfm-api --timeout=120s
run kubectl -n kfm get gar kfm-api
run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'

bold "2. a bad release: v2 -> v3, whose answers carry no citations"
run release "$V3" CHG-2026-0143
wait_phase RolledBack Failed
run kubectl -n kfm get gar kfm-api
echo "the Deployment runs again:"
run kubectl -n kfm get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}{"\n"}'

bold "3. what a platform engineer sees"
run kubectl -n kfm describe gar kfm-api
kubectl -n kfm get gar kfm-api -o json > "$MEMBRANE_CLUSTER_DIR/kfm-api.json"
run ./build/membrane receipt verify -f "$MEMBRANE_CLUSTER_DIR/kfm-api.json"
