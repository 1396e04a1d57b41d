#!/usr/bin/env bash
# Benchmarks: they measure and print figures, and assert nothing. From a fresh
# machine, like the README's commands: builds (optimized), starts a private
# local control plane, runs the operator and the bench programs.
#
#   hack/bench.sh [release] [rollback] [checks] [netpol]     default: all
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
what=("$@"); [ ${#what[@]} -gt 0 ] || what=(netpol checks release rollback)

bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-bench >/dev/null || { ninja -C build-bench; exit 1; }

# resident memory: all of it, and the anonymous part (what is not shared library pages)
rss_kb() { awk '/^VmRSS/ {all=$2} /^RssAnon/ {anon=$2} END {printf "%d kB (anonymous %d kB)", all, anon}' "/proc/$1/status"; }

cluster_up() {
  export MEMBRANE_CLUSTER_DIR="$repo/.cache/bench-cluster"
  bash hack/cluster.sh down >/dev/null 2>&1 || true
  rm -rf "$MEMBRANE_CLUSTER_DIR"
  bash hack/cluster.sh up >/dev/null
  eval "$(bash hack/cluster.sh env)"
  kubectl apply -f crds/ >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
}

# a governed API double where every digest is good: api_url, double_pid
good_api_start() {
  ./build-bench/governed-api-double --listen 127.0.0.1:0 --fixed-digest "sha256:$(printf '0%.0s' {1..64})" \
    --default-behaviour good >"$MEMBRANE_CLUSTER_DIR/logs/double.out" 2>/dev/null &
  double_pid=$!
  sleep 0.5
  api_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$MEMBRANE_CLUSTER_DIR/logs/double.out")
}

op_pid=""
cleanup() {
  [ -z "$op_pid" ] || kill "$op_pid" 2>/dev/null || true
  [ -z "${MEMBRANE_CLUSTER_DIR:-}" ] || bash hack/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# NS COUNT FIRST: COUNT Deployments (no replicas) and releases numbered from FIRST
releases() {
  local ns=$1 count=$2 first=$3 i
  for ((i = first; i < first + count; i++)); do
    cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-$i, namespace: $ns}
spec:
  replicas: 0
  selector: {matchLabels: {app: api-$i}}
  template:
    metadata: {labels: {app: api-$i}}
    spec: {containers: [{name: api, image: "registry.kfm.local/api@sha256:$(printf 'a%.0s' {1..64})"}]}
---
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: api-$i, namespace: $ns}
spec:
  environment: dev
  changeRecord: CHG-bench
  target: {deployment: api-$i, container: api}
  image: {repository: registry.kfm.local/api, digest: "sha256:$(printf 'b%.0s' {1..64})"}
  rollout: {observationSeconds: 0}
  verification: {checks: [health, ready], baseURL: "$api_url"}
---
EOF
  done
}

succeeded() { kubectl -n "$1" get gar -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Succeeded$' || true; }

bench_release() {
  echo "== GovernedAPIRelease"
  cluster_up
  kubectl create namespace bench >/dev/null
  good_api_start
  ./build-bench/membrane run --log-format json >"$MEMBRANE_CLUSTER_DIR/logs/membrane.log" 2>&1 &
  op_pid=$!
  sleep 1
  echo "operator RSS at start, nothing to watch: $(rss_kb $op_pid)"

  local total=0
  for n in 1 100 1000; do
    releases bench $((n - total)) $total | kubectl apply -f - >/dev/null
    total=$n
    local t0=$SECONDS
    while [ "$(succeeded bench)" -lt "$n" ]; do
      [ $((SECONDS - t0)) -lt 600 ] || { echo "only $(succeeded bench) of $n releases Succeeded"; break; }
      sleep 1
    done
    sleep 2
    echo "operator RSS with $n releases (and their Deployments) reconciled to Succeeded: $(rss_kb $op_pid) (all $n Succeeded after $((SECONDS - t0)) s)"
  done

  # latency: spec change -> Deployment patch, on a release of its own
  kubectl create namespace bench-latency >/dev/null
  releases bench-latency 1 0 | kubectl apply -f - >/dev/null
  while [ "$(succeeded bench-latency)" -lt 1 ]; do sleep 0.5; done
  local logged
  logged=$(wc -l <"$MEMBRANE_CLUSTER_DIR/logs/membrane.log")
  ./build-bench/bench_release bench-latency api-0 api-0 ${MEMBRANE_BENCH_CHANGES:-200}
  tail -n +"$((logged + 1))" "$MEMBRANE_CLUSTER_DIR/logs/membrane.log" | grep -o 'rollout patch sent [0-9.]* ms' | awk '{print $4}' | sort -n |
    awk '{a[NR]=$1} END {printf "spec change reaching the operator -> Deployment patch sent (status write, then the patch), %d changes: p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", NR, a[int((NR+1)/2)], a[int(NR * 0.9 + 0.5)], a[(i = int(NR * 0.99 + 0.5)) < 1 ? 1 : i], a[NR]}'
  echo "operator RSS after the latency run: $(rss_kb $op_pid)"
  kill "$op_pid" "$double_pid"; wait "$op_pid" 2>/dev/null || true; op_pid=""
}

bench_rollback() {
  echo "== automatic rollback"
  cluster_up
  good_api_start
  ./build-bench/membrane run --log-format json >"$MEMBRANE_CLUSTER_DIR/logs/membrane.log" 2>&1 &
  op_pid=$!
  local runs=${MEMBRANE_BENCH_ROLLBACKS:-20} good="sha256:$(printf 'a%.0s' {1..64})" times=()
  for i in $(seq 1 "$runs"); do
    local ns="rb-$i" bad
    bad="sha256:dead$(printf '%s' "$i" | sha256sum | cut -c1-60)"
    kubectl create namespace "$ns" >/dev/null
    kubectl -n "$ns" create deployment api --image="registry.kfm.local/api@$good" --replicas=3 >/dev/null
    kubectl -n "$ns" rollout status deploy/api --timeout=60s >/dev/null
    kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: api}
spec:
  environment: dev
  changeRecord: CHG-bench
  target: {deployment: api, container: api}
  image: {repository: registry.kfm.local/api, digest: "$bad"}
  verification: {checks: [health], baseURL: "$api_url"}
EOF
    # from the first crash-looping pod to the Deployment back on the target with every replica available
    local t0="" t1=""
    for _ in $(seq 1 600); do
      now=$(date +%s.%N)
      if [ -z "$t0" ] && kubectl -n "$ns" get pods -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}' | grep -q CrashLoopBackOff; then t0=$now; fi
      state=$(kubectl -n "$ns" get deploy api -o jsonpath='{.spec.template.spec.containers[0].image} {.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}')
      if [ "$state" = "registry.kfm.local/api@$good 3 3 3" ] && [ "$(kubectl -n "$ns" get gar api -o jsonpath='{.status.phase}')" = RolledBack ]; then
        [ -n "$t0" ] && t1=$now   # else too quick to sample: the crash loop was never seen
        break
      fi
    done
    [ -n "$t1" ] && times+=("$(echo "$t1 - $t0" | bc)")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "crash-looping pods -> the rollback target running with all replicas available, %d rollbacks (sampled by kubectl every ~0.1 s): p50 %.2f s  p99 %.2f s  max %.2f s\n", NR, a[int((NR+1)/2)], a[(i = int(NR * 0.99 + 0.5)) < 1 ? 1 : i], a[NR]}'
  grep -o 'rollback patch sent [0-9.]* ms' "$MEMBRANE_CLUSTER_DIR/logs/membrane.log" | awk '{print $4}' | sort -n |
    awk '{a[NR]=$1} END {printf "trigger detected -> rollback patch sent (status write, then the patch), %d rollbacks: p50 %.1f ms  p99 %.1f ms  max %.1f ms\n", NR, a[int((NR+1)/2)], a[(i = int(NR * 0.99 + 0.5)) < 1 ? 1 : i], a[NR]}'
  kill "$op_pid" "$double_pid"; wait "$op_pid" 2>/dev/null || true; op_pid=""
}

bench_checks() {
  echo "== verification checks"
  ./build-bench/bench_checks ./build-bench/governed-api-double
}

bench_netpol() {
  echo "== NetworkPolicy evaluator"
  ./build-bench/bench_netpol
}

for w in "${what[@]}"; do
  case $w in
    release) bench_release ;;
    netpol) bench_netpol ;;
    checks) bench_checks ;;
    rollback) bench_rollback ;;
    *) echo "bench.sh: unknown benchmark $w (release, rollback, checks, netpol)" >&2; exit 2 ;;
  esac
done
