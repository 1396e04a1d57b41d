#!/usr/bin/env bash
# Benchmarks: they measure and print figures, and assert nothing. From a fresh
# machine, like the README's commands: builds (optimized), starts a private
# local control plane, runs the operator and the bench programs.
#
#   hack/bench.sh [release] [rollback] [checks] [netpol] [store] [leader] [idle] [bundle] [dataset] [peers] [shard] [supply]
#   default: all but peers, shard and supply (hack/bench-peers.sh: Argo Rollouts side by side, and sharding;
#   supply: the image.verify gate's share of a release, against a real registry and cosign)
#
# MEMBRANE_BIN runs another operator binary (the static build) in place of build-bench/membrane;
# MEMBRANE_BENCH_CLUSTER_DIR puts the bench's control plane elsewhere than .cache/bench-cluster.
# release: MEMBRANE_BENCH_RELEASE_SIZES ("1 100 1000": the release counts whose RSS is taken), MEMBRANE_BENCH_CHANGES (200).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
what=("$@"); [ ${#what[@]} -gt 0 ] || what=(netpol store checks release rollback leader idle bundle dataset)

bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build-bench -j2 >/dev/null || { ninja -C build-bench -j2; exit 1; }   # 2 cores, shared
membrane_bin=${MEMBRANE_BIN:-./build-bench/membrane}
[ -x "$membrane_bin" ] || { echo "bench.sh: MEMBRANE_BIN=$membrane_bin is not an executable" >&2; exit 2; }

# resident memory: all of it, and the anonymous part (what is not shared library pages)
rss_kb() { awk '/^VmRSS/ {all=$2} /^RssAnon/ {anon=$2} END {printf "%d kB (anonymous %d kB)", all, anon}' "/proc/$1/status"; }
# rss_settled PID: resident memory sampled every second for MEMBRANE_BENCH_RSS_SECONDS (default 32 s: longer than
# the operator's 30 s malloc_trim period, so at least one trim falls inside): the sample with the least anonymous
# memory (the heap after a trim, what the operator keeps) and the one with the most (freed heap not yet returned).
# One sample at a random point of the trim period is off by whatever the last burst freed.
rss_settled() {
  local pid=$1 secs=${MEMBRANE_BENCH_RSS_SECONDS:-32} i
  for ((i = 0; i < secs; i++)); do
    awk '/^VmRSS/ {all=$2} /^RssAnon/ {anon=$2} END {print anon, all}' "/proc/$pid/status"
    sleep 1
  done | sort -n | awk -v s="$secs" 'NR == 1 {lo = $0} {hi = $0}
    END {split(lo, l); split(hi, h); printf "lowest %d kB (anonymous %d kB), highest %d kB (anonymous %d kB) over %d s", l[2], l[1], h[2], h[1], s}'
}

cluster_up() {
  export MEMBRANE_CLUSTER_DIR="${MEMBRANE_BENCH_CLUSTER_DIR:-$repo/.cache/bench-cluster}"
  # a kwok node holds 110 pods: the 1,000 objects' pods need ten nodes, three would stop them at 330
  export MEMBRANE_CLUSTER_NODES=${MEMBRANE_CLUSTER_NODES:-12}
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
declare -A ops=()   # operators started by op_start, by name: their PIDs
watchers=()         # the processes of watch_stamped
helpers=()          # other processes a section started (bundle server, OPA)
cleanup() {
  [ -z "$op_pid" ] || kill "$op_pid" 2>/dev/null || true
  [ ${#helpers[@]} -eq 0 ] || kill "${helpers[@]}" 2>/dev/null || true
  local n
  for n in "${!ops[@]}"; do kill -9 "${ops[$n]}" 2>/dev/null || true; done
  watch_stop
  [ -z "${MEMBRANE_CLUSTER_DIR:-}" ] || bash hack/cluster.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT

# percentiles UNIT WHAT: the numbers on stdin as "p50 … p90 … p99 … max …  (N WHAT)" in UNIT (ms or s)
percentiles() {
  sort -n | awk -v u="$1" -v what="$2" 'function at(q,  i) { i = int(NR * q + 0.5); return a[i < 1 ? 1 : i] }
    {a[NR] = $1}
    END {
      if (!NR) { printf "none measured"; exit }
      f = u == "s" ? "%.2f" : "%.1f"
      printf "p50 " f " %s  p90 " f " %s  p99 " f " %s  max " f " %s  (%d %s)", at(0.5), u, at(0.9), u, at(0.99), u, a[NR], u, NR, what
    }'
}

# watch_stamped OUT KUBECTL-ARGS...: runs kubectl (a watch) in the background and writes each line
# it prints to OUT as "<epoch seconds> <line>", stamped when it arrives; watch_stop ends them all
watch_stamped() {
  local out=$1 fifo; shift
  fifo=$(mktemp -u "$MEMBRANE_CLUSTER_DIR/run/watch.XXXXXX")
  mkfifo "$fifo"
  while IFS= read -r line; do echo "$EPOCHREALTIME $line"; done <"$fifo" >"$out" &
  watchers+=($!)
  kubectl "$@" >"$fifo" 2>/dev/null &
  watchers+=($!)
}
watch_stop() {
  [ ${#watchers[@]} -eq 0 ] || kill "${watchers[@]}" 2>/dev/null || true
  watchers=()
}

# NS COUNT FIRST: COUNT Deployments (one replica each, on kwok's fake nodes: a rollout to no replica
# never completes, as nothing would be verified) and releases numbered from FIRST
releases() {
  local ns=$1 count=$2 first=$3 i
  for ((i = first; i < first + count; i++)); do
    cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: api-$i, namespace: $ns}
spec:
  replicas: 1
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
  "$membrane_bin" run --log-format json >"$MEMBRANE_CLUSTER_DIR/logs/membrane.log" 2>&1 &
  op_pid=$!
  sleep 1
  echo "operator RSS at start, nothing to watch: $(rss_kb $op_pid)"

  local total=0
  for n in ${MEMBRANE_BENCH_RELEASE_SIZES:-1 100 1000}; do
    releases bench $((n - total)) $total | kubectl apply -f - >/dev/null
    total=$n
    local t0=$SECONDS
    while [ "$(succeeded bench)" -lt "$n" ]; do
      [ $((SECONDS - t0)) -lt 600 ] || { echo "only $(succeeded bench) of $n releases Succeeded"; break; }
      sleep 1
    done
    local took=$((SECONDS - t0))
    echo "operator RSS with $n releases (and their Deployments) reconciled to Succeeded: $(rss_settled $op_pid) (all $n Succeeded after $took s)"
  done

  # latency: spec change -> Deployment patch, on a release of its own
  kubectl create namespace bench-latency >/dev/null
  releases bench-latency 1 0 | kubectl apply -f - >/dev/null
  while [ "$(succeeded bench-latency)" -lt 1 ]; do sleep 0.5; done
  local logged
  logged=$(wc -l <"$MEMBRANE_CLUSTER_DIR/logs/membrane.log")
  local changes=${MEMBRANE_BENCH_CHANGES:-200} w0 w1 c0 c1
  w0=$(apiserver_writes); c0=$(cpu_ticks "$op_pid")
  ./build-bench/bench_release bench-latency api-0 api-0 "$changes"
  c1=$(cpu_ticks "$op_pid")
  echo "spec change reaching the operator -> Deployment patch answered (one patch: the image and the rollback record):" \
    "$(patch_ms "$logged" rollout | percentiles ms changes)"
  echo "  of which before its request went out (the operator's own share): $(patch_ms "$logged" rollout out | percentiles ms changes)"
  # every change is verified to Succeeded before the next one (bench_release waits for it)
  w1=$(apiserver_writes)
  echo "API writes per release (each of the $changes changes to Succeeded, from the API server's apiserver_request_total): $(awk -v a="$w0" -v b="$w1" -v n="$changes" 'BEGIN {
    split(a, x); split(b, y); printf "%.2f status, %.2f Deployment", (y[1] - x[1]) / n, (y[2] - x[2]) / n }')"
  # all the operator did for a change: the rollout, the checks, the status writes and Events, the other watch events
  echo "operator CPU per change (user + system, over the whole latency run): $(awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" \
    -v n="$changes" 'BEGIN { printf "%.1f ms", c * 1000 / hz / n }')"
  echo "operator RSS after the latency run: $(rss_kb $op_pid)"
  kill "$op_pid" "$double_pid"; wait "$op_pid" 2>/dev/null || true; op_pid=""
}

bench_rollback() {
  echo "== automatic rollback"
  cluster_up
  good_api_start
  "$membrane_bin" run --log-format json >"$MEMBRANE_CLUSTER_DIR/logs/membrane.log" 2>&1 &
  op_pid=$!
  local runs=${MEMBRANE_BENCH_ROLLBACKS:-50} good="sha256:$(printf 'a%.0s' {1..64})" times=()
  for i in $(seq 1 "$runs"); do
    local ns="rb-$i" bad
    bad="sha256:dead$(printf '%s' "$i" | sha256sum | cut -c1-60)"
    kubectl create namespace "$ns" >/dev/null
    kubectl -n "$ns" create deployment api --image="registry.kfm.local/api@$good" --replicas=3 >/dev/null
    kubectl -n "$ns" rollout status deploy/api --timeout=60s >/dev/null
    # from the first crash-looping pod to the Deployment back on the target with every replica available,
    # and the release RolledBack: every change stamped as its watch event arrives, the watches started first
    local w="$MEMBRANE_CLUSTER_DIR/run/$ns" t0="" td="" tg=""
    watch_stamped "$w.pods" -n "$ns" get pods -w -o jsonpath='{.status.containerStatuses[*].state.waiting.reason}{"\n"}'
    watch_stamped "$w.deploy" -n "$ns" get deploy -w \
      -o jsonpath='{.spec.template.spec.containers[0].image} {.status.updatedReplicas} {.status.availableReplicas} {.status.replicas}{"\n"}'
    watch_stamped "$w.gar" -n "$ns" get gar -w -o jsonpath='{.status.phase}{"\n"}'
    for _ in $(seq 1 100); do [ -s "$w.pods" ] && [ -s "$w.deploy" ] && break; sleep 0.1; done
    sleep 0.5
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
    for _ in $(seq 1 600); do
      sleep 0.1
      t0=$(awk '/CrashLoopBackOff/ {print $1; exit}' "$w.pods")
      [ -n "$t0" ] || continue
      td=$(awk -v t0="$t0" -v want="registry.kfm.local/api@$good 3 3 3" '$1 >= t0 && substr($0, index($0, " ") + 1) == want {print $1; exit}' "$w.deploy")
      tg=$(awk -v t0="$t0" '$1 >= t0 && $2 == "RolledBack" {print $1; exit}' "$w.gar")
      [ -z "$td" ] || [ -z "$tg" ] || break
    done
    watch_stop
    [ -z "$td" ] || [ -z "$tg" ] || times+=("$(awk -v a="$t0" -v b="$td" -v c="$tg" 'BEGIN {printf "%.3f", (b > c ? b : c) - a}')")
  done
  echo "crash-looping pods -> the rollback target running with all replicas available (from watch events):" \
    "$(printf '%s\n' "${times[@]}" | percentiles s rollbacks)"
  echo "trigger detected -> rollback patch answered (one patch: the image back and what it rolled back from):" \
    "$(patch_ms 0 rollback | percentiles ms rollbacks)"
  echo "  of which before its request went out (the operator's own share): $(patch_ms 0 rollback out | percentiles ms rollbacks)"
  kill "$op_pid" "$double_pid"; wait "$op_pid" 2>/dev/null || true; op_pid=""
}

# op_start NAME [flags]: an operator (admin credentials), its log in logs/NAME.log, its PID in ops[NAME]
op_start() {
  local name=$1 log="$MEMBRANE_CLUSTER_DIR/logs/$1.log"; shift
  "$membrane_bin" run --log-format json --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 "$@" >"$log" 2>&1 &
  ops[$name]=$!
  for _ in $(seq 1 100); do grep -q '"serving /metrics' "$log" && return 0; sleep 0.1; done
  cat "$log"; return 1
}
op_stop() { # NAME SIGNAL: signals NAME and waits for it to exit
  kill "-$2" "${ops[$1]}" 2>/dev/null || true
  wait "${ops[$1]}" 2>/dev/null || true
  unset "ops[$1]"
}
op_metrics() { # NAME: its /metrics
  local port
  port=$(sed -n 's/.*"serving \/metrics[^"]*(port \([0-9]*\)).*/\1/p' "$MEMBRANE_CLUSTER_DIR/logs/$1.log" | head -1)
  curl -sf "http://127.0.0.1:$port/metrics"
}
op_is_leader() { [ "$(op_metrics "$1" | awk '$1 == "membrane_is_leader" {print $2}')" = 1 ]; }
op_identity() { sed -n 's/.*"trying to become the leader as \([^ ]*\) (Lease.*/\1/p' "$MEMBRANE_CLUSTER_DIR/logs/$1.log" | head -1; }
# prints "p50 X s  max Y s (N)" of the numbers on stdin

bench_leader() {
  echo "== leader election hand-over"
  cluster_up
  kubectl create namespace membrane-system >/dev/null
  local elect=(--leader-elect --leader-election-namespace membrane-system --log-level info)
  op_start x "${elect[@]}"
  for _ in $(seq 1 100); do op_is_leader x && break; sleep 0.1; done
  # every version of the Lease, stamped when it arrives: "<epoch seconds> <holder>" (no holder: released)
  watch_stamped "$MEMBRANE_CLUSTER_DIR/logs/lease.watch" -n membrane-system get lease membrane-leader -w -o jsonpath='{.spec.holderIdentity}{"\n"}'
  op_start y "${elect[@]}"
  sleep 3
  local leader=x standby=y sig term=() kill9=()
  for sig in $(printf 'TERM %.0s' $(seq 1 "${MEMBRANE_BENCH_TERMS:-5}")) $(printf 'KILL %.0s' $(seq 1 "${MEMBRANE_BENCH_KILLS:-3}")); do
    local id t0 t_lease="" t_gauge="" t_rel dl dg
    id=$(op_identity "$standby")
    kill -0 "${ops[$leader]}" 2>/dev/null && kill -0 "${ops[$standby]}" 2>/dev/null ||
      { echo "an operator exited before its signal (its log: $MEMBRANE_CLUSTER_DIR/logs/$leader.log, $standby.log)"; return 1; }
    t0=$EPOCHREALTIME
    kill "-$sig" "${ops[$leader]}"
    [ "$sig" = TERM ] || wait "${ops[$leader]}" 2>/dev/null || true   # reaped now: no job notice later
    for _ in $(seq 1 1500); do   # up to ~60 s
      op_is_leader "$standby" && { t_gauge=$EPOCHREALTIME; break; }
      sleep 0.02
    done
    wait "${ops[$leader]}" 2>/dev/null || true
    unset "ops[$leader]"
    sleep 0.5
    t_lease=$(awk -v t0="$t0" -v id="$id" '$1 > t0 && $2 == id {print $1; exit}' "$MEMBRANE_CLUSTER_DIR/logs/lease.watch")
    t_rel=$(awk -v t0="$t0" '$1 > t0 && NF == 1 {print $1; exit}' "$MEMBRANE_CLUSTER_DIR/logs/lease.watch")
    if [ -n "$t_gauge" ] && [ -n "$t_lease" ]; then
      dl=$(awk -v a="$t0" -v b="$t_lease" 'BEGIN {printf "%.2f", b - a}')
      dg=$(awk -v a="$t0" -v b="$t_gauge" 'BEGIN {printf "%.2f", b - a}')
      echo "SIG$sig to the leader:$([ -z "$t_rel" ] || awk -v a="$t0" -v b="$t_rel" 'BEGIN {printf " the Lease released after %.2f s,", b - a}')" \
        "the Lease names the standby after $dl s, its membrane_is_leader is 1 after $dg s"
      if [ "$sig" = TERM ]; then term+=("$dl $dg"); else kill9+=("$dl $dg"); fi
    else
      echo "SIG$sig to the leader: no hand-over seen within 60 s"
    fi
    # the old leader comes back as the standby; the next signal comes at a random point of its retry period
    op_start "$leader" "${elect[@]}"
    sleep "$((3 + RANDOM % 5)).$((RANDOM % 10))"
    local t=$leader; leader=$standby; standby=$t
  done
  echo "hand-over after SIGTERM (Lease released), signal -> the Lease names the standby: $(printf '%s\n' "${term[@]}" | cut -d' ' -f1 | percentiles s hand-overs)"
  echo "                                            signal -> its membrane_is_leader is 1:  $(printf '%s\n' "${term[@]}" | cut -d' ' -f2 | percentiles s hand-overs)"
  echo "hand-over after kill -9 (Lease expires, 15 s), signal -> the Lease names the standby: $(printf '%s\n' "${kill9[@]}" | cut -d' ' -f1 | percentiles s hand-overs)"
  echo "                                            signal -> its membrane_is_leader is 1:  $(printf '%s\n' "${kill9[@]}" | cut -d' ' -f2 | percentiles s hand-overs)"
  local before after
  before=$(api_requests "$standby")
  sleep 60
  after=$(api_requests "$standby")
  echo "API requests of a standby, per minute, by verb and code (GET: reading the Lease):"
  requests_per_minute "$before" "$after" 60
  local k
  for k in "${!ops[@]}"; do op_stop "$k" TERM; done
  watch_stop
}

# apiserver_writes: "STATUS DEPLOYMENT", the write requests (PATCH, PUT, APPLY) the API server has served so far
# on GovernedAPIRelease status and on Deployments' spec or metadata (in bench_release only the operator writes them)
apiserver_writes() {
  kubectl get --raw /metrics | awk '/^apiserver_request_total[{]/ && /verb="(PATCH|PUT|APPLY)"/ {
      if (/resource="governedapireleases"/ && /subresource="status"/) s += $NF
      else if (/resource="deployments"/ && /subresource=""/) d += $NF }
    END {print s + 0, d + 0}'
}

# api_requests NAME: "verb code count" for every membrane_api_requests_total series of NAME
api_requests() {
  op_metrics "$1" | sed -n 's/^membrane_api_requests_total{verb="\([^"]*\)",code="\([^"]*\)"} \([0-9.e+]*\)$/\1 \2 \3/p' | sort
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# patch_ms FROM-LINE rollout|rollback [out]: the operator's "rollout/rollback patch answered N ms (its request went
# out after M ms)" figures logged after line FROM-LINE of its log, N each; with out, M each
patch_ms() {
  tail -n +"$(($1 + 1))" "$MEMBRANE_CLUSTER_DIR/logs/membrane.log" | grep -o "$2 patch answered .* went out after [0-9.]* ms" |
    awk -v out="${3:+1}" '{print out ? $(NF - 1) : $4}'
}
metric_sum() { op_metrics "$1" | awk -v m="$2" 'index($1, m "{") == 1 || $1 == m {s += $2} END {print s + 0}'; } # NAME FAMILY
# requests_per_minute BEFORE AFTER SECONDS: the api_requests difference, per minute, by verb and code
requests_per_minute() {
  awk -v s="$3" 'NR == FNR {was[$1 " " $2] = $3; next}
    {d = $3 - was[$1 " " $2]; total += d; if (d > 0) printf "  %-6s %-8s %8.1f/min\n", $1, $2, d * 60 / s}
    END {printf "  all             %8.1f/min\n", total * 60 / s}' <(echo "$1") <(echo "$2")
}

bench_idle() {
  local n=${MEMBRANE_BENCH_IDLE_RELEASES:-1000} secs=${MEMBRANE_BENCH_IDLE_SECONDS:-120}
  echo "== the operator at rest: $n releases watched, nothing changing"
  cluster_up
  kubectl create namespace bench >/dev/null
  kubectl create namespace membrane-system >/dev/null
  good_api_start
  op_start idle --leader-elect --leader-election-namespace membrane-system --log-level info
  for _ in $(seq 1 100); do op_is_leader idle && break; sleep 0.1; done
  local t0=$SECONDS
  releases bench "$n" 0 | kubectl apply -f - >/dev/null
  while [ "$(succeeded bench)" -lt "$n" ]; do
    [ $((SECONDS - t0)) -lt 1200 ] || { echo "only $(succeeded bench) of $n releases Succeeded"; break; }
    kill -0 "${ops[idle]}" 2>/dev/null || { echo "the operator exited:"; tail -5 "$MEMBRANE_CLUSTER_DIR/logs/idle.log"; return 1; }
    sleep 2
  done
  echo "all $n releases Succeeded after $((SECONDS - t0)) s; letting it settle for ${MEMBRANE_BENCH_SETTLE:-30} s"
  sleep "${MEMBRANE_BENCH_SETTLE:-30}"

  local pid=${ops[idle]} hz before after c0 c1 r0 r1 w0 w1
  hz=$(getconf CLK_TCK)
  before=$(api_requests idle); r0=$(metric_sum idle membrane_reconcile_total); w0=$(metric_sum idle membrane_watch_restarts_total)
  c0=$(cpu_ticks "$pid")
  sleep "$secs"
  c1=$(cpu_ticks "$pid")
  after=$(api_requests idle); r1=$(metric_sum idle membrane_reconcile_total); w1=$(metric_sum idle membrane_watch_restarts_total)
  echo "operator RSS at rest with $n releases: $(rss_kb "$pid")"
  awk -v a="$c0" -v b="$c1" -v hz="$hz" -v s="$secs" \
    'BEGIN {printf "operator CPU at rest (utime+stime over %d s): %.2f s, %.3f %% of one core\n", s, (b - a) / hz, 100 * (b - a) / hz / s}'
  echo "reconciles at rest: $((r1 - r0)) in $secs s; watches that ended and were renewed: $((w1 - w0))"
  echo "API requests of the leader at rest, per minute, by verb and code (a watch counts as a GET when it ends; PUT: Lease renewals):"
  requests_per_minute "$before" "$after" "$secs"
  op_stop idle TERM
  kill "$double_pid" 2>/dev/null || true
}

# --- PolicyBundle -------------------------------------------------------------

# bundle_src DIR REVISION: a bundle source tree: kfm/authz.rego, kfm/config/data.json, and kfm/blobs/data.json of
# random hex (946 strings of 1,024 hex digits, 4 bits of entropy a byte: `opa build` makes a ~500 KiB .tar.gz of it)
bundle_src() {
  mkdir -p "$1/kfm/config" "$1/kfm/blobs"
  cat >"$1/kfm/authz.rego" <<'EOF'
package kfm

default allow := false

allow if input.role == "admin"

allow if {
	input.role == "public"
	not input.dataset.policy_label in data.kfm.config.restricted_labels
}
EOF
  printf '{"restricted_labels": ["restricted", "sensitive"]}\n' >"$1/kfm/config/data.json"
  python3 -c 'import json, os, sys; json.dump({"blobs": [os.urandom(512).hex() for _ in range(946)]}, open(sys.argv[1], "w"))' \
    "$1/kfm/blobs/data.json"
  printf '{"revision": "%s", "roots": ["kfm"]}\n' "$2" >"$1/.manifest"
}
bundle_digest() { printf 'sha256:%s' "$(sha256sum <"$1" | cut -c1-64)"; }

# pb_apply NS NAME FILE [spec lines, 2 spaces]: the PolicyBundle NAME serving FILE of the bundle server's
# directory, pinned to its digest; prints its metadata.generation
pb_apply() {
  kubectl -n "$1" apply -o jsonpath='{.metadata.generation}' -f - <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: PolicyBundle
metadata: {name: $2}
spec:
  source: {url: "$bs_url/$3", digest: "$(bundle_digest "$bundle_dir/$3")"}
  requiredRoots: [kfm]
${4:-}
EOF
}
pb_published() { kubectl -n "$1" get pb -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Published$' || true; }

# bundle_series NS NAME COUNT OUT [spec lines]: COUNT spec changes of the PolicyBundle NAME, alternating between the
# bundles a.tar.gz and b.tar.gz (a new digest each time: fetched, verified and published again). Writes to OUT,
# one a line, the seconds from the watch event of the spec change (its new generation) to the first watch event with
# that observedGeneration, phase Published and the new verifiedDigest; both stamped by the same watch.
bundle_series() {
  local ns=$1 name=$2 count=$3 out=$4 spec=${5:-} w="$MEMBRANE_CLUSTER_DIR/run/pb-$2.watch" i f g want t
  pb_apply "$ns" "$name" b.tar.gz "$spec" >/dev/null
  kubectl -n "$ns" wait --for=jsonpath='{.status.phase}'=Published "pb/$name" --timeout=180s >/dev/null ||
    { echo "the PolicyBundle $ns/$name was not Published within 180 s" >&2; return 1; }
  watch_stamped "$w" -n "$ns" get pb "$name" -w \
    -o jsonpath='{.metadata.generation}|{.status.observedGeneration}|{.status.phase}|{.status.verifiedDigest}{"\n"}'
  for _ in $(seq 1 100); do [ -s "$w" ] && break; sleep 0.1; done
  : >"$out"
  for ((i = 1; i <= count; i++)); do
    f=$([ $((i % 2)) -eq 1 ] && echo a.tar.gz || echo b.tar.gz)
    want=$(bundle_digest "$bundle_dir/$f")
    g=$(pb_apply "$ns" "$name" "$f" "$spec")
    t=""
    for _ in $(seq 1 1200); do   # up to ~120 s
      t=$(awk -v g="$g" -v d="$want" '{split($2, f, "|")}
        f[1] == g && t0 == "" {t0 = $1}
        t0 != "" && f[2] == g && f[3] == "Published" && f[4] == d {printf "%.3f", $1 - t0; exit}' "$w")
      [ -z "$t" ] || break
      sleep 0.1
    done
    if [ -n "$t" ]; then echo "$t" >>"$out"; else echo "change $i of $ns/$name (generation $g) not Published with $want within 120 s"; fi
  done
  watch_stop
}

# rss_parts "lowest … highest …" (rss_settled's): "LOW_ALL LOW_ANON HIGH_ALL HIGH_ANON" in kB
rss_parts() { sed 's/lowest \([0-9]*\) kB (anonymous \([0-9]*\) kB), highest \([0-9]*\) kB (anonymous \([0-9]*\) kB).*/\1 \2 \3 \4/' <<<"$1"; }

bench_bundle() {
  local changes=${MEMBRANE_BENCH_BUNDLE_CHANGES:-50} tested=${MEMBRANE_BENCH_BUNDLE_TESTED:-20}
  local n=${MEMBRANE_BENCH_BUNDLES:-100} opa bundleserver i
  echo "== PolicyBundle"
  opa=$(bash hack/opa.sh)
  bundleserver=$(bash hack/gotool.sh bundleserver)
  cluster_up
  # the bundles, each built by `opa build`: a and b for the spec changes, 1..n for the memory
  bundle_dir="$MEMBRANE_CLUSTER_DIR/bundles"
  local src="$MEMBRANE_CLUSTER_DIR/bundle-src"
  mkdir -p "$bundle_dir"
  for i in a b $(seq 1 "$n"); do
    bundle_src "$src/$i" "bench-$i"
    (cd "$src/$i" && "$opa" build -b . -o "$bundle_dir/$i.tar.gz")
    rm -rf "${src:?}/$i"
  done
  local size
  size=$(wc -c <"$bundle_dir/a.tar.gz")
  # the bundle server: plain HTTP on loopback (it also needs a certificate for its HTTPS port, unused here)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=bundleserver -days 1 \
    -keyout "$MEMBRANE_CLUSTER_DIR/bs.key" -out "$MEMBRANE_CLUSTER_DIR/bs.crt" 2>/dev/null
  "$bundleserver" -dir "$bundle_dir" -cert "$MEMBRANE_CLUSTER_DIR/bs.crt" -key "$MEMBRANE_CLUSTER_DIR/bs.key" -http 127.0.0.1:0 \
    >"$MEMBRANE_CLUSTER_DIR/logs/bundleserver.out" 2>"$MEMBRANE_CLUSTER_DIR/logs/bundleserver.log" &
  helpers+=($!)
  for _ in $(seq 1 100); do grep -q listening "$MEMBRANE_CLUSTER_DIR/logs/bundleserver.out" && break; sleep 0.1; done
  bs_url=$(sed -n 's/.*http on \(http:[^ ]*\).*/\1/p' "$MEMBRANE_CLUSTER_DIR/logs/bundleserver.out")
  [ -n "$bs_url" ] || { echo "the bundle server did not say where it listens:"; cat "$MEMBRANE_CLUSTER_DIR/logs/bundleserver.log"; return 1; }
  # the decision-test OPA
  local opa_port
  opa_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  "$opa" run --server --addr "127.0.0.1:$opa_port" --log-level error >"$MEMBRANE_CLUSTER_DIR/logs/opa.log" 2>&1 &
  helpers+=($!)
  for _ in $(seq 1 200); do curl -fsS --max-time 2 "http://127.0.0.1:$opa_port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS --max-time 2 "http://127.0.0.1:$opa_port/health" >/dev/null || { echo "opa run --server did not answer /health:"; cat "$MEMBRANE_CLUSTER_DIR/logs/opa.log"; return 1; }

  # latency: spec change -> Published with the new digest
  op_start bundle --log-level info
  kubectl create namespace bench-pb >/dev/null
  local times="$MEMBRANE_CLUSTER_DIR/run/pb-times"
  bundle_series bench-pb fetch "$changes" "$times"
  echo "spec change -> Published with the new verifiedDigest, a $((size / 1024)) KiB bundle over plain HTTP on loopback," \
    "fetched, verified and published (no decision tests; from watch events): $(percentiles s changes <"$times")"
  bundle_series bench-pb tested "$tested" "$times" "  decisionTests:
    opaURL: \"http://127.0.0.1:$opa_port\"
    cases:
    - {name: public-cannot-read-restricted, path: kfm/allow, input: {role: public, dataset: {policy_label: restricted}}, expect: false}
    - {name: admin-reads-restricted, path: kfm/allow, input: {role: admin, dataset: {policy_label: restricted}}, expect: true}"
  echo "the same with 2 decision tests against opa run --server on loopback (the bundle's modules and data loaded," \
    "2 queries, unloaded): $(percentiles s changes <"$times");" \
    "the last change's results, passed: $(kubectl -n bench-pb get pb tested -o jsonpath='{.status.decisionTests[*].passed}')"
  kubectl delete namespace bench-pb --wait=true --timeout=120s >/dev/null || echo "the namespace bench-pb was not gone after 120 s"
  op_stop bundle TERM

  # memory: a fresh operator, idle, then n PolicyBundles Published, each its own bundle and ConfigMap
  op_start bundle-rss --log-level info
  sleep 2
  local pid=${ops[bundle-rss]} before after t0 b_all b_anon b_hall b_hanon a_all a_anon a_hall a_hanon
  before=$(rss_settled "$pid")
  echo "operator RSS idle, no PolicyBundle: $before"
  kubectl create namespace bench-pb-rss >/dev/null
  t0=$SECONDS
  for i in $(seq 1 "$n"); do pb_apply bench-pb-rss "pb-$i" "$i.tar.gz" >/dev/null; done
  while [ "$(pb_published bench-pb-rss)" -lt "$n" ]; do
    [ $((SECONDS - t0)) -lt 600 ] || { echo "only $(pb_published bench-pb-rss) of $n PolicyBundles Published"; break; }
    sleep 1
  done
  local took=$((SECONDS - t0))
  after=$(rss_settled "$pid")
  echo "operator RSS with $n PolicyBundles Published ($(pb_published bench-pb-rss) Published $took s after the first" \
    "apply, the applies one at a time; each its own ~$((size / 1024)) KiB bundle and ConfigMap): $after"
  read -r b_all b_anon b_hall b_hanon <<<"$(rss_parts "$before")"
  read -r a_all a_anon a_hall a_hanon <<<"$(rss_parts "$after")"
  echo "RSS added by $n published bundles: lowest +$((a_all - b_all)) kB (anonymous +$((a_anon - b_anon)) kB)," \
    "highest +$((a_hall - b_hall)) kB (anonymous +$((a_hanon - b_hanon)) kB); the operator's only: what etcd and" \
    "the apiserver hold for the ConfigMaps is not counted"
  op_stop bundle-rss TERM
  kill "${helpers[@]}" 2>/dev/null || true
  helpers=()
}

# --- DatasetPromotion ---------------------------------------------------------

# ds_version ROOT ID VERSION SIZE_NAME...: small distinct artifacts under ROOT/store/ID/VERSION/ and the version's
# config under ROOT/catalog/ID/config.json (generate.py's input; its documents written later, all in one process)
ds_version() {
  local root=$1 id=$2 ver=$3 arts="" n; shift 3
  mkdir -p "$root/store/$id/$ver" "$root/catalog/$id"
  for n in "$@"; do
    [ -f "$root/store/$id/$ver/$n" ] || printf 'id,value\n%s,%s,%s\n' "$id" "$ver" "$n" >"$root/store/$id/$ver/$n"
    arts+="${arts:+,}{\"name\":\"$n\",\"url\":\"$bs_url/store/$id/$ver/$n\",\"digest\":\"$(bundle_digest "$root/store/$id/$ver/$n")\",\"mediaType\":\"text/csv\"}"
  done
  printf '{"store":"%s","datasetID":"%s","versionID":"%s","license":"CC-BY-4.0","licenseLink":"%s/licenses/CC-BY-4.0.html","artifacts":[%s]}\n' \
    "$bs_url" "$id" "$ver" "$bs_url" "$arts" >"$root/catalog/$id/config.json"
}
# ds_generate ROOT ID...: the documents of each version, written by generate.py (pystac, prov, rdflib) in one process
ds_generate() {
  local root=$1; shift
  "$py" - "$repo/test/fixtures/dataset" "$root/catalog" "$@" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
import generate
for i in sys.argv[3:]:
    d = f"{sys.argv[2]}/{i}"
    generate.version_documents(f"{d}/config.json", d)
PY
}
# ds_yaml NS NAME ID: the DatasetPromotion of the version whose config is under $ds_root/catalog/ID
ds_yaml() {
  "$py" - "$ds_root/catalog/$3/config.json" "$1" "$2" "$bs_url" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); ns, name, base = sys.argv[2:]
print(f"apiVersion: governance.kfm.dev/v1alpha1\nkind: DatasetPromotion\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:")
print(f'  datasetID: "{c["datasetID"]}"\n  versionID: "{c["versionID"]}"\n  license: "{c["license"]}"\n  policyLabel: public\n  artifacts:')
for a in c["artifacts"]:
    print(f'  - {{name: {a["name"]}, url: "{a["url"]}", digest: "{a["digest"]}", mediaType: {a["mediaType"]}}}')
i = c["datasetID"]
print(f'  catalog:\n    dcat: {{url: "{base}/catalog/{i}/dcat.jsonld"}}\n    stac: {{url: "{base}/catalog/{i}/collection.json"}}\n    prov: {{url: "{base}/catalog/{i}/prov.json"}}\n---')
PY
}
dp_promoted() { kubectl -n "$1" get dp -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Promoted$' || true; }

bench_dataset() {
  local big_mib=${MEMBRANE_BENCH_DS_MIB:-1024} runs=${MEMBRANE_BENCH_DS_RUNS:-50} n=${MEMBRANE_BENCH_DS_PROMOTIONS:-1000}
  local bundleserver i
  echo "== DatasetPromotion"
  bundleserver=$(bash hack/gotool.sh bundleserver)
  py=$(bash hack/python.sh)
  cluster_up
  ds_root="$MEMBRANE_CLUSTER_DIR/datasets"
  mkdir -p "$ds_root/licenses"
  printf '<html>CC-BY-4.0</html>\n' >"$ds_root/licenses/CC-BY-4.0.html"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=bundleserver -days 1 \
    -keyout "$MEMBRANE_CLUSTER_DIR/bs.key" -out "$MEMBRANE_CLUSTER_DIR/bs.crt" 2>/dev/null
  # the port first: the documents name the server's URLs
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  bs_url="http://127.0.0.1:$port"
  # the large artifact: random bytes written to disk (not sparse: hashing what a disk holds), and its sha256sum
  ds_version "$ds_root" kfm.bench.big 1 small.csv
  head -c "$((big_mib * 1048576))" /dev/urandom >"$ds_root/store/kfm.bench.big/1/big.bin"
  local t0 t1 big_digest
  sync
  cat "$ds_root/store/kfm.bench.big/1/big.bin" >/dev/null   # in the page cache, as the server will read it
  t0=$EPOCHREALTIME
  big_digest="sha256:$(sha256sum <"$ds_root/store/kfm.bench.big/1/big.bin" | cut -c1-64)"
  t1=$EPOCHREALTIME
  local sum_mbs
  sum_mbs=$(awk -v a="$t0" -v b="$t1" -v m="$big_mib" 'BEGIN {printf "%.0f", m * 1.048576 / (b - a)}')
  "$py" - "$ds_root/catalog/kfm.bench.big/config.json" "$bs_url" "$big_digest" <<'PY'
import json, sys
path, base, digest = sys.argv[1:]
c = json.load(open(path))
c["artifacts"].append({"name": "big.bin", "url": f"{base}/store/kfm.bench.big/1/big.bin", "digest": digest,
                       "mediaType": "application/octet-stream"})
json.dump(c, open(path, "w"))
PY
  local ids=(kfm.bench.big)
  for ((i = 1; i <= runs; i++)); do ds_version "$ds_root" "kfm.bench.lat$i" 1 a.csv b.csv c.csv; ids+=("kfm.bench.lat$i"); done
  for ((i = 1; i <= n; i++)); do ds_version "$ds_root" "kfm.bench.rss$i" 1 data.csv; ids+=("kfm.bench.rss$i"); done
  ds_generate "$ds_root" "${ids[@]}"
  "$bundleserver" -dir "$ds_root" -cert "$MEMBRANE_CLUSTER_DIR/bs.crt" -key "$MEMBRANE_CLUSTER_DIR/bs.key" -http "127.0.0.1:$port" \
    >"$MEMBRANE_CLUSTER_DIR/logs/bundleserver.out" 2>"$MEMBRANE_CLUSTER_DIR/logs/bundleserver.log" &
  helpers+=($!)
  for _ in $(seq 1 100); do grep -q listening "$MEMBRANE_CLUSTER_DIR/logs/bundleserver.out" && break; sleep 0.1; done
  grep -q listening "$MEMBRANE_CLUSTER_DIR/logs/bundleserver.out" || { echo "the bundle server did not start:"; cat "$MEMBRANE_CLUSTER_DIR/logs/bundleserver.log"; return 1; }

  op_start dataset --log-level info
  # (a) one promotion of the large artifact: create -> the checksums gate passed (or Promoted), stamped from a watch
  kubectl create namespace bench-dp-big >/dev/null
  local w="$MEMBRANE_CLUSTER_DIR/run/dp-big.watch" tc="" tg=""
  watch_stamped "$w" -n bench-dp-big get dp -w -o jsonpath='{.metadata.name}|{.status.phase}|{.status.gates[0].name}:{.status.gates[0].passed}{"\n"}'
  sleep 1
  ds_yaml bench-dp-big big kfm.bench.big | kubectl apply -f - >/dev/null
  for _ in $(seq 1 3000); do   # up to ~300 s
    tc=$(awk '{split($2, f, "|")} f[1] == "big" {print $1; exit}' "$w")
    tg=$(awk '{split($2, f, "|")} f[1] == "big" && (f[3] == "checksums:true" || f[2] == "Promoted") {print $1, f[2]; exit}' "$w")
    [ -z "$tg" ] || break
    sleep 0.1
  done
  watch_stop
  if [ -n "$tc" ] && [ -n "$tg" ]; then
    read -r tg ph <<<"$tg"
    awk -v a="$tc" -v b="$tg" -v m="$big_mib" -v s="$sum_mbs" -v ph="$ph" 'BEGIN {
      printf "one %d MiB artifact (random bytes, in the page cache) over plain HTTP on loopback, create -> %s: %.2f s, %.0f MB/s;" \
        " sha256sum of the same file: %d MB/s\n", m, ph == "Promoted" ? "Promoted (the checksums gate passed, the rest small)" : "the checksums gate passed", b - a, m * 1.048576 / (b - a), s }'
  else
    echo "the $big_mib MiB promotion: not past the checksums gate within 300 s ($(kubectl -n bench-dp-big get dp big -o jsonpath='{.status.phase}'))"
  fi
  # (b) create -> Promoted, 3 small artifacts, one promotion at a time
  kubectl create namespace bench-dp-lat >/dev/null
  w="$MEMBRANE_CLUSTER_DIR/run/dp-lat.watch"
  watch_stamped "$w" -n bench-dp-lat get dp -w -o jsonpath='{.metadata.name}|{.status.phase}{"\n"}'
  sleep 1
  local times="$MEMBRANE_CLUSTER_DIR/run/dp-times" t
  : >"$times"
  for ((i = 1; i <= runs; i++)); do
    ds_yaml bench-dp-lat "lat$i" "kfm.bench.lat$i" | kubectl apply -f - >/dev/null
    t=""
    for _ in $(seq 1 600); do   # up to ~60 s
      t=$(awk -v n="lat$i" '{split($2, f, "|")} f[1] == n && t0 == "" {t0 = $1}
        f[1] == n && f[2] == "Promoted" {printf "%.3f", $1 - t0; exit}' "$w")
      [ -z "$t" ] || break
      sleep 0.05
    done
    if [ -n "$t" ]; then echo "$t" >>"$times"; else echo "lat$i not Promoted within 60 s"; fi
  done
  watch_stop
  echo "create -> Promoted, 3 small artifacts and the 3 documents over plain HTTP on loopback, one promotion at a time" \
    "(from watch events): $(percentiles s promotions <"$times")"
  op_stop dataset TERM

  # (c) memory: a fresh operator, idle, then n promotions Promoted
  op_start dataset-rss --log-level info
  sleep 2
  local pid=${ops[dataset-rss]} before after b_all b_anon b_hall b_hanon a_all a_anon a_hall a_hanon
  before=$(rss_settled "$pid")
  echo "operator RSS idle, no DatasetPromotion: $before"
  kubectl create namespace bench-dp-rss >/dev/null
  t0=$SECONDS
  for ((i = 1; i <= n; i++)); do ds_yaml bench-dp-rss "rss$i" "kfm.bench.rss$i"; done | kubectl apply -f - >/dev/null
  while [ "$(dp_promoted bench-dp-rss)" -lt "$n" ]; do
    [ $((SECONDS - t0)) -lt 900 ] || { echo "only $(dp_promoted bench-dp-rss) of $n promotions Promoted"; break; }
    sleep 2
  done
  local took=$((SECONDS - t0))
  after=$(rss_settled "$pid")
  echo "operator RSS with $n DatasetPromotions Promoted ($(dp_promoted bench-dp-rss) Promoted $took s after the apply;" \
    "each its own dataset, 1 artifact, 3 documents, one entry in one index ConfigMap): $after"
  read -r b_all b_anon b_hall b_hanon <<<"$(rss_parts "$before")"
  read -r a_all a_anon a_hall a_hanon <<<"$(rss_parts "$after")"
  echo "RSS added by $n promotions: lowest +$((a_all - b_all)) kB (anonymous +$((a_anon - b_anon)) kB)," \
    "highest +$((a_hall - b_hall)) kB (anonymous +$((a_hanon - b_hanon)) kB)"
  op_stop dataset-rss TERM
  kill "${helpers[@]}" 2>/dev/null || true
  helpers=()
}

# supply_release NS DIGEST [VERIFY]: GovernedAPIRelease api to $supply_repo@DIGEST, with
# spec.image.verify's fields VERIFY (flow style) when given; waits until it Succeeded for that generation
supply_release() {
  local verify=""
  [ -z "${3:-}" ] || verify=", verify: {$3}"
  kubectl -n "$1" apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: api}
spec:
  environment: dev
  changeRecord: CHG-bench
  target: {deployment: api, container: api}
  image: {repository: "$supply_repo", digest: "$2"$verify}
  rollout: {observationSeconds: 0}
  verification: {checks: [health], baseURL: "$api_url"}
EOF
  local gen
  gen=$(kubectl -n "$1" get gar api -o jsonpath='{.metadata.generation}')
  for _ in $(seq 1 600); do
    [ "$(kubectl -n "$1" get gar api -o jsonpath='{.status.observedGeneration} {.status.phase}')" = "$gen Succeeded" ] && return 0
    sleep 0.1
  done
  echo "the release to $2 did not succeed: $(kubectl -n "$1" get gar api -o jsonpath='{.status.conditions}')" >&2
  return 1
}

# The image.verify gate's share of a release: the operator's own figure for a spec change -> the
# Deployment patch, without the gate, with it on digests never verified before (cold: the
# signature and the rollback target's fetched from the registry and verified) and on digests
# verified before (cached: a re-release of a digest). A real registry (distribution, HTTPS with a
# test CA) on loopback, the images signed with cosign v2 (e2e/registry.sh).
bench_supply() {
  echo "== image.verify gate (cosign v2 signatures in a real registry on loopback, over HTTPS)"
  cluster_up
  good_api_start
  source e2e/registry.sh
  REGISTRY_BIN=$(bash hack/registry.sh)
  CRANE=$(bash hack/crane.sh)
  COSIGN_V2=$(bash hack/cosign.sh v2)
  local dir="$MEMBRANE_CLUSTER_DIR/registry" runs=${MEMBRANE_BENCH_SUPPLY:-50} i from cold=() d a b
  registry_pki "$dir/pki"
  registry_start "$dir" https none
  helpers+=("$REG_PID")
  supply_repo=$REG_HOST/kfm/kfm-api
  (cd "$dir" && reg_cosign v2 generate-key-pair --output-key-prefix cosign >/dev/null 2>&1)
  for i in $(seq 0 "$runs"); do
    d=$(image_push kfm/kfm-api "c$i")
    reg_cosign v2 sign --key "$dir/cosign.key" --tlog-upload=false -y "$supply_repo@$d" >/dev/null 2>&1
    cold+=("$d")
  done
  a=${cold[0]}
  b=$(image_push kfm/kfm-api b)
  reg_cosign v2 sign --key "$dir/cosign.key" --tlog-upload=false -y "$supply_repo@$b" >/dev/null 2>&1
  echo "$((runs + 2)) images pushed with crane and signed with cosign v2 (--tlog-upload=false) at $REG_URL"

  kubectl create namespace supply >/dev/null
  kubectl -n supply create secret generic cosign-pub --from-file=cosign.pub="$dir/cosign.pub" >/dev/null
  kubectl -n supply create secret generic registry-ca --from-file=ca.crt="$dir/pki/ca.crt" >/dev/null
  deployment_yaml api "$supply_repo@$a" 1 | kubectl -n supply apply -f - >/dev/null
  kubectl -n supply rollout status deploy/api --timeout=60s >/dev/null
  "$membrane_bin" run --log-format json --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 \
    >"$MEMBRANE_CLUSTER_DIR/logs/membrane.log" 2>&1 &
  op_pid=$!
  sleep 1
  local verify="publicKeySecretRef: {name: cosign-pub, key: cosign.pub}, caSecretRef: {name: registry-ca, key: ca.crt}"

  # without the gate: fresh digests (the registry is not asked)
  from=$(wc -l <"$MEMBRANE_CLUSTER_DIR/logs/membrane.log")
  for i in $(seq 1 "$runs"); do supply_release supply "sha256:$(printf 'supply-%s' "$i" | sha256sum | cut -c1-64)" || break; done
  echo "spec change -> Deployment patch answered, no image.verify: $(patch_ms "$from" rollout | percentiles ms releases)"
  supply_release supply "$a" || true   # back on a signed digest: the next release's rollback target

  # cold: each release to a signed digest never verified before
  from=$(wc -l <"$MEMBRANE_CLUSTER_DIR/logs/membrane.log")
  for i in $(seq 1 "$runs"); do supply_release supply "${cold[$i]}" "$verify" || break; done
  echo "  with image.verify, a digest never verified (cold): $(patch_ms "$from" rollout | percentiles ms releases)"

  # cached: back and forth between two digests verified before
  supply_release supply "$b" "$verify" || true
  supply_release supply "$a" "$verify" || true
  from=$(wc -l <"$MEMBRANE_CLUSTER_DIR/logs/membrane.log")
  for i in $(seq 1 "$runs"); do
    if [ $((i % 2)) -eq 1 ]; then d=$b; else d=$a; fi
    supply_release supply "$d" "$verify" || break
  done
  echo "  with image.verify, a digest verified before (cached): $(patch_ms "$from" rollout | percentiles ms releases)"
  kill "$op_pid" "$double_pid"; wait "$op_pid" 2>/dev/null || true; op_pid=""
  registry_stop
}

bench_checks() {
  echo "== verification checks"
  ./build-bench/bench_checks ./build-bench/governed-api-double
}

bench_netpol() {
  echo "== NetworkPolicy evaluator"
  ./build-bench/bench_netpol
}

bench_store() {
  echo "== the informer cache's indexes"
  ./build-bench/bench_store
}

source "$repo/e2e/common.sh" # free_port, release_yaml, ...
source "$here/bench-peers.sh"

for w in "${what[@]}"; do
  case $w in
    release) bench_release ;;
    netpol) bench_netpol ;;
    store) bench_store ;;
    checks) bench_checks ;;
    rollback) bench_rollback ;;
    leader) bench_leader ;;
    idle) bench_idle ;;
    bundle) bench_bundle ;;
    dataset) bench_dataset ;;
    peers) bench_peers ;;
    shard) bench_shard ;;
    supply) bench_supply ;;
    *) echo "bench.sh: unknown benchmark $w (release, rollback, checks, netpol, store, leader, idle, bundle, dataset, peers, shard, supply)" >&2; exit 2 ;;
  esac
done
