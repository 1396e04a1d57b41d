#!/usr/bin/env bash
# The main job, from a fresh machine: builds membrane and the local control
# plane, starts a private control plane, applies the CRDs, starts the operator
# against it and shows what kubectl sees.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "set-up and build"
bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build membrane >/dev/null
bash hack/controlplane.sh >/dev/null

say "local control plane"
export MEMBRANE_CLUSTER_DIR="$repo/.cache/demo-cluster"
bash hack/cluster.sh down >/dev/null 2>&1 || true
rm -rf "$MEMBRANE_CLUSTER_DIR"
op_pid=""
cleanup() {
  [ -z "$op_pid" ] || kill "$op_pid" 2>/dev/null || true
  [ -n "${MEMBRANE_DEMO_KEEP:-}" ] || bash hack/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash hack/cluster.sh up
eval "$(bash hack/cluster.sh env)"
kubectl version 2>/dev/null | sed 's/^/  /'
kubectl get nodes -o wide

if compgen -G "crds/*.yaml" >/dev/null; then
  say "CRDs"
  kubectl apply -f crds/
  kubectl wait --for=condition=Established crd --all --timeout=60s
fi

say "operator"
./build/membrane run --log-format text > "$MEMBRANE_CLUSTER_DIR/logs/membrane.log" 2>&1 &
op_pid=$!
sleep 2
if kill -0 "$op_pid" 2>/dev/null; then echo "membrane is running (pid $op_pid)"; fi
sed 's/^/  /' "$MEMBRANE_CLUSTER_DIR/logs/membrane.log"

say "kubectl get"
kubectl get nodes,deployments,pods -A
