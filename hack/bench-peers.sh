# Sourced by hack/bench.sh (its helpers: cluster_up, good_api_start, op_start, rss_settled,
# percentiles, ...): two long benchmarks, run only when named.
#
#   hack/bench.sh peers   membrane and Argo Rollouts (hack/rollouts.sh) on one local control plane: each alone
#                         for memory, API requests and CPU at rest, one after the other; then both at once for
#                         the latencies, a sample of each in turn; each figure for both and their ratio on one line
#   hack/bench.sh shard   N releases over K shards (--watch-label-selector), then the same N on one operator
#
# Counts (environment): MEMBRANE_BENCH_PEERS_OBJECTS (1000; the RSS is also taken at 100),
# MEMBRANE_BENCH_PEERS_CHANGES (200), MEMBRANE_BENCH_PEERS_ABORTS (50), MEMBRANE_BENCH_PEERS_FAILS (20),
# MEMBRANE_BENCH_PEERS_REST_SECONDS (300), MEMBRANE_BENCH_PEERS_ONLY (membrane or argo: one of the two),
# MEMBRANE_BENCH_PEERS_SERIES (default "memory changes aborts fails": which of them run; memory first);
# MEMBRANE_BENCH_SHARD_RELEASES (10000), MEMBRANE_BENCH_SHARDS (4).

# --- small helpers -------------------------------------------------------------

# pdigest WORD: a digest of its own for WORD, starting "a1" (never one of the kwok stages' bad prefixes)
pdigest() { printf 'sha256:a1%s' "$(printf '%s' "$1" | sha256sum | cut -c1-62)"; }
# first FILE CONDITION [T0]: the stamp of the first line of a peer_watches FILE (at or after T0) whose payload,
# split on "|" into f[1], f[2], ..., meets the awk CONDITION
first() {
  awk -v t0="${3:-0}" '{split(substr($0, index($0, " ") + 1), f, "|")} $1 >= t0 && ('"$2"') {print $1; exit}' "$1"
}
# await SECONDS CMD...: runs CMD every 0.05 s until it prints something, and prints that; fails after SECONDS
await() {
  local end=$((SECONDS + $1)) out; shift
  while [ "$SECONDS" -lt "$end" ]; do
    out=$("$@") && [ -n "$out" ] && { echo "$out"; return 0; }
    sleep 0.05
  done
  return 1
}
since() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }
load_avg() { cut -d' ' -f1-3 /proc/loadavg; }
# rss_low "lowest A kB (anonymous B kB), ...": "A B" in kB
rss_low() { sed 's/lowest \([0-9]*\) kB (anonymous \([0-9]*\) kB).*/\1 \2/' <<<"$1"; }

# --- figures: one value per controller, printed side by side at the end ----------

declare -A fig_m=() fig_a=()
fig_names=()
# fig CONTROLLER NAME VALUE
fig() {
  local -n into=fig_$1
  [[ " ${fig_names[*]} " == *" $2 "* ]] || fig_names+=("$2")
  into[$2]=$3
}
fig_table() {
  local n
  echo "-- side by side (ratio: membrane / Argo Rollouts)"
  printf '%-58s %16s %16s %9s\n' "figure" "membrane" "argo-rollouts" "ratio"
  for n in "${fig_names[@]}"; do
    awk -v n="$n" -v m="${fig_m[$n]:-}" -v a="${fig_a[$n]:-}" 'BEGIN {
      r = (m != "" && a != "" && a + 0 != 0) ? sprintf("%.3f", m / a) : "-"
      printf "%-58s %16s %16s %9s\n", n, m == "" ? "-" : m, a == "" ? "-" : a, r }'
  done
}
# pcts FILE: "p50 p90 p99" in ms of the numbers in FILE (seconds), nearest rank as percentiles() does
pcts() {
  sort -n "$1" | awk 'function at(q,  i) { i = int(NR * q + 0.5); return a[i < 1 ? 1 : i] * 1000 }
    {a[NR] = $1} END {if (NR) printf "%.1f %.1f %.1f %d", at(0.5), at(0.9), at(0.99), NR}'
}
# fig_latency CONTROLLER NAME FILE: p50, p90 and p99 of FILE (seconds) as three figures in ms
fig_latency() {
  local p50 p90 p99 n
  read -r p50 p90 p99 n <<<"$(pcts "$3")"
  [ -n "${n:-}" ] || { echo "  $1 $2: none measured"; return 0; }
  fig "$1" "$2 p50 (ms)" "$p50"
  fig "$1" "$2 p90 (ms)" "$p90"
  fig "$1" "$2 p99 (ms)" "$p99"
  fig "$1" "$2 count" "$n"
  echo "  $1 $2: $(awk '{print $1 * 1000}' "$3" | percentiles ms samples)"
}

# --- the two controllers ----------------------------------------------------------

# API requests of one ServiceAccount, from the apiserver's own metrics: kube-apiserver's apiserver_request_total
# has no client or user-agent label, so each controller runs as its own ServiceAccount, matched by a FlowSchema of
# its own (API Priority and Fairness, exempt priority level: nothing queued), and
# apiserver_flowcontrol_dispatched_requests_total{flow_schema=...} counts every request it sends (a watch when it
# starts).
peers_identity() { # SA: a ServiceAccount with cluster-admin, its FlowSchema, its kubeconfig in $dir/SA.kubeconfig
  local sa=$1
  kubectl -n peers-system create serviceaccount "$sa" >/dev/null
  kubectl create clusterrolebinding "peers-$sa" --clusterrole cluster-admin --serviceaccount "peers-system:$sa" >/dev/null
  kubectl apply -f - >/dev/null <<EOF
apiVersion: flowcontrol.apiserver.k8s.io/v1
kind: FlowSchema
metadata: {name: peers-$sa}
spec:
  matchingPrecedence: 100
  priorityLevelConfiguration: {name: exempt}
  rules:
  - subjects: [{kind: ServiceAccount, serviceAccount: {name: $sa, namespace: peers-system}}]
    resourceRules: [{verbs: ["*"], apiGroups: ["*"], resources: ["*"], clusterScope: true, namespaces: ["*"]}]
    nonResourceRules: [{verbs: ["*"], nonResourceURLs: ["*"]}]
EOF
  bash hack/cluster.sh sa-kubeconfig peers-system "$sa" "$MEMBRANE_CLUSTER_DIR/$sa.kubeconfig" 12h
}
apf_requests() { # SA: the requests dispatched for its FlowSchema so far
  kubectl get --raw /metrics | awk -v f="flow_schema=\"peers-$1\"" \
    'index($0, "apiserver_flowcontrol_dispatched_requests_total{") == 1 && index($0, f) {s += $2} END {print s + 0}'
}

declare -A peer_pids=()
peer_starts=0
peer_start() { # membrane|argo: starts it, its log in logs/peer-NAME.N.log (N counts the starts)
  local log="$MEMBRANE_CLUSTER_DIR/logs/peer-$1.$((++peer_starts)).log"
  case $1 in
    membrane)
      "$membrane_bin" run --kubeconfig "$MEMBRANE_CLUSTER_DIR/membrane.kubeconfig" --log-format json --log-level info \
        --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 >"$log" 2>&1 &
      peer_pids[$1]=$!; helpers+=("$!")
      for _ in $(seq 1 100); do grep -q '"serving /metrics' "$log" 2>/dev/null && return 0; sleep 0.1; done ;;
    argo)
      # --leader-elect=false: without it (and without its namespace) it never starts its informers
      "$rollouts_dir/rollouts-controller" --kubeconfig "$MEMBRANE_CLUSTER_DIR/argo-rollouts.kubeconfig" \
        --leader-elect=false --metricsPort "$(free_port)" --healthzPort "$(free_port)" --loglevel info >"$log" 2>&1 &
      peer_pids[$1]=$!; helpers+=("$!")
      for _ in $(seq 1 200); do grep -q 'Started rollout workers' "$log" 2>/dev/null && return 0; sleep 0.1; done ;;
  esac
  echo "$1 did not start (its log: $log):"; tail -20 "$log"; return 1
}
peer_stop() { # membrane|argo
  local pid=${peer_pids[$1]:-}
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  unset "peer_pids[$1]"
}
# peer_quiet NAME...: waits (up to 120 s) until each has used under 0.05 CPU s in the last 2 s: done with
# the resync of what it found when it started
peer_quiet() {
  local who c0 c1 end=$((SECONDS + 120)) busy
  while [ "$SECONDS" -lt "$end" ]; do
    busy=""
    for who in "$@"; do
      c0=$(cpu_ticks "${peer_pids[$who]}"); sleep 2; c1=$(cpu_ticks "${peer_pids[$who]}")
      [ $((c1 - c0)) -lt 5 ] || busy+=" $who"
    done
    [ -n "$busy" ] || return 0
  done
  echo "  still busy after 120 s:$busy"
}

# NS COUNT FIRST: Rollouts (one replica, one ReplicaSet each), as releases() makes releases and Deployments
rollouts() {
  local ns=$1 count=$2 first=$3 i
  for ((i = first; i < first + count; i++)); do
    cat <<EOF
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api-$i, namespace: $ns}
spec:
  replicas: 1
  selector: {matchLabels: {app: api-$i}}
  template:
    metadata: {labels: {app: api-$i}}
    spec: {containers: [{name: api, image: "registry.kfm.local/api@sha256:$(printf 'b%.0s' {1..64})"}]}
  strategy: {canary: {}}
---
EOF
  done
}
healthy() { kubectl -n "$1" get rollouts -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Healthy$' || true; }

# peer_objects membrane|argo NS COUNT FIRST; peer_settled membrane|argo NS: how many are Succeeded / Healthy
peer_objects() { if [ "$1" = membrane ]; then releases "$2" "$3" "$4"; else rollouts "$2" "$3" "$4"; fi | kubectl apply -f - >/dev/null; }
peer_settled() { if [ "$1" = membrane ]; then succeeded "$2"; else healthy "$2"; fi; }

# RSS idle, with 100 and N objects settled, 60 s later; then requests and CPU at rest
peer_memory() {
  local who=$1 n=${MEMBRANE_BENCH_PEERS_OBJECTS:-1000} rest=${MEMBRANE_BENCH_PEERS_REST_SECONDS:-300}
  local ns="peers-$who" r all anon total=0 step t0 took
  kubectl create namespace "$ns" >/dev/null
  sleep 2
  r=$(rss_settled "${peer_pids[$who]}"); read -r all anon <<<"$(rss_low "$r")"
  echo "  $who idle: $r (load $(load_avg))"
  fig "${who:0:1}" "RSS idle, total (kB)" "$all"; fig "${who:0:1}" "RSS idle, anonymous (kB)" "$anon"
  for step in $([ "$n" -le 100 ] || echo 100) "$n"; do
    t0=$SECONDS
    peer_objects "$who" "$ns" $((step - total)) "$total"
    total=$step
    while [ "$(peer_settled "$who" "$ns")" -lt "$step" ]; do
      [ $((SECONDS - t0)) -lt 900 ] || { echo "  only $(peer_settled "$who" "$ns") of $step settled after 900 s"; break; }
      kill -0 "${peer_pids[$who]}" 2>/dev/null || { echo "  $who exited"; return 1; }
      sleep 2
    done
    took=$((SECONDS - t0))
    r=$(rss_settled "${peer_pids[$who]}"); read -r all anon <<<"$(rss_low "$r")"
    echo "  $who with $step objects settled (all $step after $took s from the apply): $r (load $(load_avg))"
    fig "${who:0:1}" "RSS $step objects, total (kB)" "$all"; fig "${who:0:1}" "RSS $step objects, anonymous (kB)" "$anon"
    fig "${who:0:1}" "apply -> all $step settled (s)" "$took"
  done
  sleep 60
  r=$(rss_settled "${peer_pids[$who]}"); read -r all anon <<<"$(rss_low "$r")"
  echo "  $who 60 s later: $r"
  fig "${who:0:1}" "RSS $n objects 60 s later, total (kB)" "$all"; fig "${who:0:1}" "RSS $n objects 60 s later, anonymous (kB)" "$anon"

  local q0 q1 c0 c1 hz sa
  sa=$([ "$who" = membrane ] && echo membrane || echo argo-rollouts)
  hz=$(getconf CLK_TCK)
  q0=$(apf_requests "$sa"); c0=$(cpu_ticks "${peer_pids[$who]}")
  sleep "$rest"
  q1=$(apf_requests "$sa"); c1=$(cpu_ticks "${peer_pids[$who]}")
  [ "$q1" -gt 0 ] || { echo "  $who: the apiserver counted no request of the FlowSchema peers-$sa at all: the request figures cannot be seen"; }
  echo "  $who at rest with $n objects over $rest s: $((q1 - q0)) API requests ($q1 since it started), $(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}') CPU s (load $(load_avg))"
  [ "$q1" -eq 0 ] || fig "${who:0:1}" "API requests/min at rest, $n objects" "$(awk -v d=$((q1 - q0)) -v s="$rest" 'BEGIN {printf "%.1f", d * 60 / s}')"
  fig "${who:0:1}" "CPU s at rest over $rest s, $n objects" "$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {printf "%.2f", (b - a) / hz}')"
}

# The workload of a latency series: namespace NS with the Deployment/Rollout "api" on image $p_old, REPLICAS,
# settled; for Argo, STRATEGY is the canary strategy (YAML flow); for membrane, the release "api" with SPEC_EXTRA
p_repo=registry.kfm.local/api
p_old=$p_repo@$(pdigest old)
peer_workload() { # membrane|argo NS REPLICAS [membrane: rollout/checks YAML | argo: strategy YAML]
  local who=$1 ns=$2 replicas=$3 extra=$4
  kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns" >/dev/null
  if [ "$who" = membrane ]; then
    kubectl -n "$ns" create deployment api --image="$p_old" --replicas="$replicas" >/dev/null
    kubectl -n "$ns" rollout status deploy/api --timeout=120s >/dev/null
    kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: api}
spec:
  environment: dev
  changeRecord: CHG-bench
  target: {deployment: api, container: api}
  image: {repository: $p_repo, digest: "${p_old#*@}"}
$extra
EOF
    # observing for a day (abort and failing-check series) or Succeeded at once
    await 120 first_phase "$ns" "Succeeded Observing" >/dev/null || { echo "  $ns: the release neither Succeeded nor Observing"; return 1; }
  else
    kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {name: api}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec: {containers: [{name: api, image: "$p_old"}]}
  strategy: $extra
EOF
    await 120 first_phase "$ns" Healthy >/dev/null || { echo "  $ns: the Rollout did not become Healthy"; return 1; }
  fi
}
first_phase() { # NS "PHASE...": prints the phase when the workload's controller reports one of them
  local p
  p=$(kubectl -n "$1" get gar,rollouts.argoproj.io -o jsonpath='{.items[0].status.phase}' 2>/dev/null || true)
  [ -z "$p" ] || [[ " $2 " != *" $p "* ]] || echo "$p"
}
# peer_watches membrane|argo NS: NS's watches into run/NS.cr (the release or Rollout) and run/NS.wl (the
# Deployment or its ReplicaSets), both in one hack/watchstamp process that stamps each event as it reads it (its
# errors in run/NS.watch.log), and empty run/NS.times and run/NS.first for the series' samples; fails, saying so,
# when the watches have not both started within 10 s
peer_watches() {
  local w="$MEMBRANE_CLUSTER_DIR/run/$2" ns=$2 kc="$MEMBRANE_CLUSTER_DIR/run/watchstamp.kubeconfig.json"
  : >"$w.times"; : >"$w.first"; : >"$w.cr"; : >"$w.wl"
  [ -s "$kc" ] || kubectl config view --raw --flatten --minify -o json >"$kc"
  if [ "$1" = membrane ]; then
    "$watchstamp" "$kc" \
      "$w.cr" "/apis/governance.kfm.dev/v1alpha1/namespaces/$ns/governedapireleases?fieldSelector=metadata.name%3Dapi" \
      /metadata/generation,/status/observedGeneration,/status/phase,/metadata/annotations/governance.kfm.dev~1rollback \
      "$w.wl" "/apis/apps/v1/namespaces/$ns/deployments?fieldSelector=metadata.name%3Dapi" \
      /spec/template/spec/containers/0/image,/spec/replicas 2>"$w.watch.log" &
  else
    "$watchstamp" "$kc" \
      "$w.cr" "/apis/argoproj.io/v1alpha1/namespaces/$ns/rollouts?fieldSelector=metadata.name%3Dapi" \
      /metadata/generation,/status/observedGeneration,/status/phase,/status/abort \
      "$w.wl" "/apis/apps/v1/namespaces/$ns/replicasets" \
      /spec/template/spec/containers/0/image,/spec/replicas,/metadata/name 2>"$w.watch.log" &
  fi
  watchers+=($!)
  await 10 bash -c "[ -s '$w.cr' ] && [ -s '$w.wl' ] && echo ok" >/dev/null ||
    { echo "  $ns: the watches of $1's objects did not start: $(tail -n 3 "$w.watch.log")"; return 1; }
}
# peer_set_image membrane|argo NS IMAGE: the spec change; prints the new metadata.generation
peer_set_image() {
  if [ "$1" = membrane ]; then
    kubectl -n "$2" patch gar api --type merge -p "{\"spec\":{\"image\":{\"digest\":\"${3#*@}\"}}}" -o jsonpath='{.metadata.generation}'
  else
    kubectl -n "$2" patch rollout api --type json -p "[{\"op\":\"replace\",\"path\":\"/spec/template/spec/containers/0/image\",\"value\":\"$3\"}]" -o jsonpath='{.metadata.generation}'
  fi
}

# The latency series run both controllers at once, each on its own workload, and take their samples in turn
# (the order swapped every sample): both see the machine as it is at that moment, rather than one of them a
# quieter or busier quarter of an hour. peers_on: the controllers measured, in_turn I: their order for sample I.
peers_on=()
in_turn() {
  if [ $(($1 % 2)) -eq 1 ] || [ ${#peers_on[@]} -eq 1 ]; then echo "${peers_on[*]}"; else echo "${peers_on[1]} ${peers_on[0]}"; fi
}
# take_turns SERIES COUNT NAME [FIRST-NAME]: each controller's workload for SERIES (peer_SERIES_workload
# CONTROLLER NS, in namespace peers-CONTROLLER-SERIES) and its watches; then peer_SERIES_one CONTROLLER I for I
# in 1..COUNT, the controllers in turn; then each controller's samples (run/NS.times) as the figure NAME, and
# those of run/NS.first as FIRST-NAME when given
take_turns() {
  local series=$1 n=$2 name=$3 first_name=${4:-} i who w
  for who in "${peers_on[@]}"; do
    "peer_${series}_workload" "$who" "peers-$who-$series" || return 1
    peer_watches "$who" "peers-$who-$series" || return 1
  done
  echo "  ${peers_on[*]}: $n $series each, in turn (load $(load_avg))"
  for ((i = 1; i <= n; i++)); do
    for who in $(in_turn "$i"); do "peer_${series}_one" "$who" "$i"; done
  done
  watch_stop
  for who in "${peers_on[@]}"; do
    w="$MEMBRANE_CLUSTER_DIR/run/peers-$who-$series"
    fig_latency "${who:0:1}" "$name" "$w.times"
    [ -z "$first_name" ] || fig_latency "${who:0:1}" "$first_name" "$w.first"
  done
}
# sample FILE T0 T1: appends T1 - T0 to FILE, in seconds to a tenth of a millisecond
sample() { echo "$(since "$2" "$3")" >>"$1"; }

# image change -> first write to the workload: membrane's Deployment patch, Argo's new ReplicaSet
peer_changes() { take_turns changes "${MEMBRANE_BENCH_PEERS_CHANGES:-200}" "image change -> first workload write"; }
peer_changes_workload() { # membrane|argo NS
  if [ "$1" = membrane ]; then
    peer_workload membrane "$2" 1 "  rollout: {observationSeconds: 0}
  verification: {checks: [health], baseURL: \"$api_url\"}"
  else
    peer_workload argo "$2" 1 "{canary: {}}"
  fi
}
peer_changes_one() { # membrane|argo I
  local who=$1 i=$2 ns="peers-$1-changes" w img g t0 t1 done_phase=Succeeded
  w="$MEMBRANE_CLUSTER_DIR/run/$ns"; [ "$who" = membrane ] || done_phase=Healthy
  img=$p_repo@$(pdigest "change-$who-$i")
  g=$(peer_set_image "$who" "$ns" "$img")
  t0=$(await 30 first "$w.cr" "f[1] == $g") || { echo "  $who change $i: no watch event of generation $g"; return 0; }
  t1=$(await 30 first "$w.wl" "f[1] == \"$img\"" "$t0") || { echo "  $who change $i: no workload write for $img within 30 s"; return 0; }
  sample "$w.times" "$t0" "$t1"
  await 60 first "$w.cr" "f[1] == $g && f[2] == \"$g\" && f[3] == \"$done_phase\"" "$t0" >/dev/null ||
    echo "  $who change $i: not $done_phase within 60 s"
  sleep 0.2
}

# abort -> back on the old version: membrane's break-glass annotation -> the Deployment patched back to it;
# Argo's abort (a merge patch {"status":{"abort":true}} on the status subresource, as kubectl-argo-rollouts abort
# sends) -> the stable ReplicaSet scaled back up
peer_aborts() {
  take_turns aborts "${MEMBRANE_BENCH_PEERS_ABORTS:-50}" "abort -> old version back (Argo: stable RS up)" \
    "abort -> first workload write"
}
peer_aborts_workload() { # membrane|argo NS
  if [ "$1" = membrane ]; then
    peer_workload membrane "$2" 2 "  rollout: {observationSeconds: 86400, recheckSeconds: 86400}
  verification: {checks: [health], baseURL: \"$api_url\"}"
  else
    peer_workload argo "$2" 2 "{canary: {maxSurge: 0, maxUnavailable: 1, steps: [{setWeight: 50}, {pause: {}}]}}"
  fi
}
peer_aborts_one() { # membrane|argo I
  local who=$1 i=$2 ns="peers-$1-aborts" w img g t0 t1 tf holding=Observing
  w="$MEMBRANE_CLUSTER_DIR/run/$ns"; [ "$who" = membrane ] || holding=Paused
  img=$p_repo@$(pdigest "abort-$who-$i")
  g=$(peer_set_image "$who" "$ns" "$img")
  t0=$(await 60 first "$w.cr" "f[1] == $g && f[2] == \"$g\" && f[3] == \"$holding\"") ||
    { echo "  $who abort $i: not $holding within 60 s"; return 0; }
  sleep 0.5
  if [ "$who" = membrane ]; then
    kubectl -n "$ns" annotate gar api governance.kfm.dev/rollback=true governance.kfm.dev/rollback-reason="bench abort $i" \
      governance.kfm.dev/rollback-approver=bench >/dev/null
    t0=$(await 30 first "$w.cr" 'f[4] == "true"' "$t0") || { echo "  $who abort $i: no watch event of the annotation"; return 0; }
    t1=$(await 60 first "$w.wl" "f[1] == \"$p_old\"" "$t0") || { echo "  $who abort $i: not back on the old image within 60 s"; return 0; }
    tf=$t1
    await 60 first "$w.cr" 'f[3] == "RolledBack" || f[3] == "Failed"' "$t1" >/dev/null || echo "  $who abort $i: not RolledBack within 60 s"
  else
    kubectl -n "$ns" patch rollout api --subresource status --type merge -p '{"status":{"abort":true}}' >/dev/null
    t0=$(await 30 first "$w.cr" 'f[4] == "true"' "$t0") || { echo "  $who abort $i: no watch event of status.abort"; return 0; }
    t1=$(await 60 first "$w.wl" "f[1] == \"$p_old\" && f[2] == 2" "$t0") || { echo "  $who abort $i: the stable ReplicaSet not back to 2 within 60 s"; return 0; }
    tf=$(first "$w.wl" "(f[1] == \"$p_old\" && f[2] == 2) || (f[1] == \"$img\" && f[2] == 0)" "$t0")
    await 60 first "$w.cr" 'f[3] == "Degraded"' "$t0" >/dev/null || echo "  $who abort $i: not Degraded within 60 s"
  fi
  sample "$w.times" "$t0" "$t1"
  sample "$w.first" "$t0" "$tf"
  sleep 1
}

# a failing check -> rollback: the double turns bad (public listing leaks the restricted dataset: membrane's
# public-restriction check, Argo's Web metric on the same endpoint, both every 5 s) -> the workload written back.
# The double is shared: each sample turns it good again before the next controller's sample starts.
peer_fails() { take_turns fails "${MEMBRANE_BENCH_PEERS_FAILS:-20}" "double turns bad -> workload written back"; }
peer_fails_workload() { # membrane|argo NS
  if [ "$1" = membrane ]; then
    peer_workload membrane "$2" 2 "  rollout: {observationSeconds: 86400, recheckSeconds: 5}
  verification: {checks: [public-restriction], restrictedDatasetID: kfm.sacred-sites, baseURL: \"$api_url\"}"
    return
  fi
  kubectl create namespace "$2" >/dev/null
  kubectl -n "$2" apply -f - >/dev/null <<EOF
apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {name: public-restriction}
spec:
  metrics:
  - name: public-restriction
    interval: 5s
    failureLimit: 0
    successCondition: "result <= 2"
    provider:
      web:
        url: "$api_url/api/v1/datasets"
        jsonPath: "{\$.total}"
        timeoutSeconds: 10
EOF
  peer_workload argo "$2" 2 "{canary: {maxSurge: 0, maxUnavailable: 1, analysis: {templates: [{templateName: public-restriction}]}, steps: [{setWeight: 50}, {pause: {}}]}}"
}
peer_fails_one() { # membrane|argo I
  local who=$1 i=$2 ns="peers-$1-fails" w img g t0 t1 holding=Observing fixed
  w="$MEMBRANE_CLUSTER_DIR/run/$ns"; [ "$who" = membrane ] || holding=Paused
  fixed="sha256:$(printf '0%.0s' {1..64})"   # the double's --fixed-digest (good_api_start)
  img=$p_repo@$(pdigest "fail-$who-$i")
  g=$(peer_set_image "$who" "$ns" "$img")
  t0=$(await 60 first "$w.cr" "f[1] == $g && f[2] == \"$g\" && f[3] == \"$holding\"") ||
    { echo "  $who fail $i: not $holding within 60 s"; return 0; }
  sleep "0.$((RANDOM % 10))"   # a random point of the 5 s check period
  sleep "$((RANDOM % 5))"
  curl -fsS -X PUT --data restricted-leak "$api_url/__double/behaviour/$fixed" >/dev/null
  t0=$EPOCHREALTIME
  if [ "$who" = membrane ]; then
    t1=$(await 60 first "$w.wl" "f[1] == \"$p_old\"" "$t0") || t1=""
    await 60 first "$w.cr" 'f[3] == "RolledBack" || f[3] == "Failed"' "$t0" >/dev/null || echo "  $who fail $i: not RolledBack/Failed within 60 s"
  else
    t1=$(await 60 first "$w.wl" "f[1] == \"$p_old\" && f[2] == 2" "$t0") || t1=""
    await 60 first "$w.cr" 'f[3] == "Degraded"' "$t0" >/dev/null || echo "  $who fail $i: not Degraded within 60 s"
  fi
  curl -fsS -X PUT --data good "$api_url/__double/behaviour/$fixed" >/dev/null
  if [ -n "$t1" ]; then sample "$w.times" "$t0" "$t1"; else echo "  $who fail $i: the workload not back on the old version within 60 s"; fi
  sleep 1
}

bench_peers() {
  echo "== membrane and Argo Rollouts on one control plane: each alone for memory and rest, both at once for the latency series (load $(load_avg))"
  local t0=$SECONDS who series memory=false latency=() r all anon
  for who in membrane argo; do
    [ -z "${MEMBRANE_BENCH_PEERS_ONLY:-}" ] || [ "$MEMBRANE_BENCH_PEERS_ONLY" = "$who" ] || continue
    peers_on+=("$who")
  done
  [ ${#peers_on[@]} -gt 0 ] || { echo "bench.sh peers: MEMBRANE_BENCH_PEERS_ONLY is membrane or argo, not $MEMBRANE_BENCH_PEERS_ONLY" >&2; return 2; }
  for series in ${MEMBRANE_BENCH_PEERS_SERIES:-memory changes aborts fails}; do
    case $series in
      memory) memory=true ;;
      changes | aborts | fails) latency+=("$series") ;;
      *) echo "bench.sh peers: unknown series $series (memory, changes, aborts, fails)" >&2; return 2 ;;
    esac
  done
  rollouts_dir=$(bash hack/rollouts.sh)
  watchstamp=$(bash hack/gotool.sh watchstamp)
  # both controllers' 1,000 objects stay on the control plane: room for their 2,000 pods and the latency
  # series' (twelve kwok nodes hold 1,320, which left Argo's Rollouts Degraded behind membrane's pods)
  MEMBRANE_CLUSTER_NODES=${MEMBRANE_CLUSTER_NODES:-24} cluster_up
  kubectl apply --server-side -f "$rollouts_dir/crds/" >/dev/null
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  kubectl create namespace peers-system >/dev/null
  peers_identity membrane
  peers_identity argo-rollouts
  good_api_start
  helpers+=("$double_pid")
  echo "  membrane: $("$membrane_bin" version 2>/dev/null | head -1); argo-rollouts: $("$rollouts_dir/rollouts-controller" --version 2>/dev/null | head -1)"
  if $memory; then
    for who in "${peers_on[@]}"; do
      echo "-- $who alone: memory, then API requests and CPU at rest"
      peer_start "$who" || return 1
      peer_memory "$who" || { peer_stop "$who"; return 1; }
      peer_stop "$who"
    done
  fi
  if [ ${#latency[@]} -gt 0 ]; then
    echo "-- ${peers_on[*]} at once: the latency series, a sample of each in turn"
    for who in "${peers_on[@]}"; do peer_start "$who" || return 1; done
    peer_quiet "${peers_on[@]}"
    for series in "${latency[@]}"; do "peer_$series" || break; done
    for who in "${peers_on[@]}"; do
      r=$(rss_settled "${peer_pids[$who]}"); read -r all anon <<<"$(rss_low "$r")"
      echo "  $who after the latency series: $r"
      fig "${who:0:1}" "RSS after the latency series, total (kB)" "$all"
      peer_stop "$who"
    done
  fi
  fig_table
  echo "(the whole peers bench: $((SECONDS - t0)) s; load at the end $(load_avg))"
  kill "$double_pid" 2>/dev/null || true
}

# --- sharding past one process ------------------------------------------------------

# shard_load NS N K: N Deployments (one replica, already on the release's digest, their status written here as a
# finished rollout, as kube-controller-manager would: it is stopped, so that its 20-requests-a-second client is not
# what is measured; no pod exists, so none of an old ReplicaSet remains; a Deployment of no replica is never a
# completed rollout)
# and N releases labelled shard=s0..s(K-1) in turn, sent by one curl process over kept-alive connections
shard_load() {
  local ns=$1 n=$2 k=$3 base tls cfg i d="sha256:$(printf 'b%.0s' {1..64})"
  base="https://127.0.0.1:$(cat "$MEMBRANE_CLUSTER_DIR/run/apiserver.port")"
  tls="cacert = \"$MEMBRANE_CLUSTER_DIR/pki/ca.crt\"
cert = \"$MEMBRANE_CLUSTER_DIR/pki/admin.crt\"
key = \"$MEMBRANE_CLUSTER_DIR/pki/admin.key\"
output = \"/dev/null\"
write-out = \"%{http_code}\\n\""
  cfg="$MEMBRANE_CLUSTER_DIR/run/shard-load"
  for ((i = 0; i < n; i++)); do
    printf '%s\nurl = "%s/apis/apps/v1/namespaces/%s/deployments"\nrequest = "POST"\nheader = "Content-Type: application/json"\ndata = "{\\"apiVersion\\":\\"apps/v1\\",\\"kind\\":\\"Deployment\\",\\"metadata\\":{\\"name\\":\\"api-%d\\"},\\"spec\\":{\\"replicas\\":1,\\"selector\\":{\\"matchLabels\\":{\\"app\\":\\"api-%d\\"}},\\"template\\":{\\"metadata\\":{\\"labels\\":{\\"app\\":\\"api-%d\\"}},\\"spec\\":{\\"containers\\":[{\\"name\\":\\"api\\",\\"image\\":\\"registry.kfm.local/api@%s\\"}]}}}}"\nnext\n' \
      "$tls" "$base" "$ns" "$i" "$i" "$i" "$d"
  done >"$cfg.1"
  for ((i = 0; i < n; i++)); do
    printf '%s\nurl = "%s/apis/apps/v1/namespaces/%s/deployments/api-%d/status"\nrequest = "PATCH"\nheader = "Content-Type: application/merge-patch+json"\ndata = "{\\"status\\":{\\"observedGeneration\\":1,\\"replicas\\":1,\\"updatedReplicas\\":1,\\"readyReplicas\\":1,\\"availableReplicas\\":1}}"\nnext\n' \
      "$tls" "$base" "$ns" "$i"
  done >"$cfg.2"
  for ((i = 0; i < n; i++)); do
    printf '%s\nurl = "%s/apis/governance.kfm.dev/v1alpha1/namespaces/%s/governedapireleases"\nrequest = "POST"\nheader = "Content-Type: application/json"\ndata = "{\\"apiVersion\\":\\"governance.kfm.dev/v1alpha1\\",\\"kind\\":\\"GovernedAPIRelease\\",\\"metadata\\":{\\"name\\":\\"api-%d\\",\\"labels\\":{\\"shard\\":\\"s%d\\"}},\\"spec\\":{\\"environment\\":\\"dev\\",\\"changeRecord\\":\\"CHG-bench\\",\\"target\\":{\\"deployment\\":\\"api-%d\\",\\"container\\":\\"api\\"},\\"image\\":{\\"repository\\":\\"registry.kfm.local/api\\",\\"digest\\":\\"%s\\"},\\"rollout\\":{\\"observationSeconds\\":0},\\"verification\\":{\\"checks\\":[\\"health\\",\\"ready\\"],\\"baseURL\\":\\"%s\\"}}}"\nnext\n' \
      "$tls" "$base" "$ns" "$i" $((i % k)) "$i" "$d" "$api_url"
  done >"$cfg.3"
  local pass codes
  for pass in 1 2 3; do
    sed -i '$d' "$cfg.$pass"   # no "next" after the last
    codes=$(curl -sS --no-progress-meter --parallel --parallel-max 4 -K "$cfg.$pass" | sort | uniq -c |
      awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')
    case $codes in
      "20"[01]" x$n") ;;
      *) echo "  loading pass $pass (Deployments, their status, releases): HTTP $codes"; return 1 ;;
    esac
  done
}
# shard_count FILE: "SUCCEEDED LAST-STAMP" from a watch of "name|phase" lines
shard_count() {
  awk '{split(substr($0, index($0, " ") + 1), f, "|")} f[2] == "Succeeded" && !seen[f[1]]++ {n++; last = $1}
    END {printf "%d %s\n", n, last}' "$1"
}
gar_reconciles() { op_metrics "$1" | awk '$1 ~ /^membrane_reconcile_total[{]kind="GovernedAPIRelease"/ {n += $2} END {print n + 0}'; }

# shard_run LABEL K: a fresh control plane, N releases loaded, K operators (K = 1: no selector) started together;
# the time until every release is Succeeded, reconciles a second, and each operator's RSS
shard_run() {
  local label=$1 k=$2 n=${MEMBRANE_BENCH_SHARD_RELEASES:-10000} ns=shard-bench s t0 t1 done_n last i
  cluster_up
  bash hack/cluster.sh stop kube-controller-manager >/dev/null
  kubectl create namespace "$ns" >/dev/null
  kubectl create namespace membrane-system >/dev/null
  good_api_start
  helpers+=("$double_pid")
  t0=$SECONDS
  shard_load "$ns" "$n" "$k" || return 1
  echo "  $label: $n releases and Deployments loaded in $((SECONDS - t0)) s (load $(load_avg))"
  # a raw watch of the releases (kubectl's printing of 10,000 objects is slower than the operators): the first
  # event of each release in phase Succeeded, stamped when it arrives
  local w="$MEMBRANE_CLUSTER_DIR/run/shard.watch"
  curl -sSN --cacert "$MEMBRANE_CLUSTER_DIR/pki/ca.crt" --cert "$MEMBRANE_CLUSTER_DIR/pki/admin.crt" \
    --key "$MEMBRANE_CLUSTER_DIR/pki/admin.key" \
    "https://127.0.0.1:$(cat "$MEMBRANE_CLUSTER_DIR/run/apiserver.port")/apis/governance.kfm.dev/v1alpha1/namespaces/$ns/governedapireleases?watch=1&timeoutSeconds=7200" |
    awk 'index($0, "\"phase\":\"Succeeded\"") && match($0, /"name":"[^"]*"/) {
      n = substr($0, RSTART + 8, RLENGTH - 9); if (!seen[n]++) { print n; fflush() } }' |
    while IFS= read -r name; do echo "$EPOCHREALTIME $name|Succeeded"; done >"$w" &
  watchers+=($!)
  sleep 1
  # the operators start together (not one after the other): their PIDs in ops[], their logs as op_start's
  local sel
  t0=$EPOCHREALTIME
  for ((s = 0; s < k; s++)); do
    sel=(); [ "$k" -eq 1 ] || sel=(--watch-label-selector "shard=s$s")
    "$membrane_bin" run --log-format json --log-level info --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 \
      --leader-elect --leader-election-namespace membrane-system "${sel[@]}" >"$MEMBRANE_CLUSTER_DIR/logs/shard-$s.log" 2>&1 &
    ops[shard-$s]=$!
  done
  for ((s = 0; s < k; s++)); do
    await 30 grep -m1 -o '"serving /metrics' "$MEMBRANE_CLUSTER_DIR/logs/shard-$s.log" >/dev/null ||
      { echo "  shard-$s did not start:"; tail -5 "$MEMBRANE_CLUSTER_DIR/logs/shard-$s.log"; return 1; }
  done
  local limit=${MEMBRANE_BENCH_SHARD_TIMEOUT:-1800}
  local was=-1 still=0
  while :; do
    read -r done_n last <<<"$(shard_count "$w")"
    [ "$done_n" -lt "$n" ] || break
    # the watch can miss an event: when its count has not moved for 10 s, a list decides
    if [ "$done_n" = "$was" ]; then still=$((still + 1)); else still=0; was=$done_n; fi
    if [ "$still" -ge 5 ] && [ "$(succeeded "$ns")" -ge "$n" ]; then
      echo "  (the watch saw $done_n of $n Succeeded; a list shows all $n: the time is that of the last one the watch saw)"
      done_n=$n; break
    fi
    [ "$(since "$t0" "$EPOCHREALTIME" | cut -d. -f1)" -lt "$limit" ] || { echo "  only $done_n of $n Succeeded after $limit s"; break; }
    for ((s = 0; s < k; s++)); do
      kill -0 "${ops[shard-$s]}" 2>/dev/null || { echo "  shard-$s exited:"; tail -5 "$MEMBRANE_CLUSTER_DIR/logs/shard-$s.log"; return 1; }
    done
    sleep 2
  done
  local took rec=0 r
  took=$(since "$t0" "${last:-$EPOCHREALTIME}")
  for ((s = 0; s < k; s++)); do rec=$((rec + $(gar_reconciles "shard-$s"))); done
  echo "  $label: $done_n of $n releases Succeeded $took s after the operators started (load $(load_avg));" \
    "$rec release reconciles by then, $(awk -v r="$rec" -v t="$took" 'BEGIN {printf "%.1f", r / t}') a second;" \
    "$(awk -v n="$done_n" -v t="$took" 'BEGIN {printf "%.1f", n / t}') releases Succeeded a second"
  watch_stop
  # each operator's memory, sampled side by side
  local samplers=()
  for ((s = 0; s < k; s++)); do
    { rss_settled "${ops[shard-$s]}"; awk '/^VmHWM/ {printf ", peak (VmHWM) %d kB", $2}' "/proc/${ops[shard-$s]}/status"; } \
      >"$MEMBRANE_CLUSTER_DIR/run/shard-$s.rss" &
    samplers+=($!)
  done
  wait "${samplers[@]}"
  for ((s = 0; s < k; s++)); do
    echo "  $label, operator shard-$s ($(gar_reconciles "shard-$s") release reconciles): $(cat "$MEMBRANE_CLUSTER_DIR/run/shard-$s.rss")"
  done
  for ((s = 0; s < k; s++)); do op_stop "shard-$s" TERM; done
  kill "$double_pid" 2>/dev/null || true
  bash hack/cluster.sh down >/dev/null 2>&1 || true
}

bench_shard() {
  local n=${MEMBRANE_BENCH_SHARD_RELEASES:-10000} k=${MEMBRANE_BENCH_SHARDS:-4}
  echo "== sharding: $n releases over $k operators with --watch-label-selector, then on one operator (load $(load_avg))"
  echo "  (every Deployment already runs its release's digest: gates, checks and status writes, no rollout;" \
    "kube-controller-manager stopped)"
  shard_run "$k shards" "$k" || return 1
  shard_run "one operator" 1 || return 1
}
