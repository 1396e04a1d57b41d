# Shared by the e2e scenarios: the operator installed as users install it (the
# CRDs and the manifests' least-privilege RBAC), run from the build with a
# ServiceAccount token bound to that ClusterRole, never as admin; kubectl as the
# user's client; and a small check/report vocabulary.
#
# E2E_KEEP=1 keeps the scratch directory (logs, kubeconfigs) for a look after the run.
# Needs: KUBECONFIG (the local control plane's admin), MEMBRANE_CLUSTER_DIR,
# MEMBRANE_BIN (the membrane binary), kubectl on PATH (hack/cluster.sh env).
set -euo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$E2E_ROOT/e2e/common.sh"
E2E_DIR=$(mktemp -d "${TMPDIR:-/tmp}/membrane-e2e.XXXXXX")
E2E_PASSED=0
E2E_FAILED=0
E2E_OPERATOR_PID=""    # the operator of operator_start ("main")
E2E_OPERATOR_LOGS=()
declare -A E2E_OP_PID=() E2E_OP_LOG=()   # every running operator by name: its PID and its log
E2E_PIDS=()      # helper processes (governed API doubles, watches) stopped at the end
E2E_SECRETS=()   # credentials that must never appear in a log (e2e_secret)

: "${KUBECONFIG:?run through hack/test.sh (KUBECONFIG of the local control plane)}"
: "${MEMBRANE_BIN:?MEMBRANE_BIN must name the membrane binary}"

# Digests: good ones (digest, e2e/common.sh), and the markers the local kwok stages act on.
digest_crashloop() { printf 'sha256:dead%s' "$(printf '%s' "$1" | sha256sum | cut -c1-60)"; }
digest_never_ready() { printf 'sha256:beef%s' "$(printf '%s' "$1" | sha256sum | cut -c1-60)"; }

say() { printf '\n-- %s\n' "$*"; }

check() { # description command...
  local what=$1; shift
  if "$@" >"$E2E_DIR/check.out" 2>&1; then
    E2E_PASSED=$((E2E_PASSED + 1)); echo "ok   $what"
  else
    E2E_FAILED=$((E2E_FAILED + 1)); echo "FAIL $what"; sed 's/^/     /' "$E2E_DIR/check.out" | tail -20
  fi
}

# eventually SECONDS command...: retries every 0.5 s
eventually() {
  local secs=$1 i; shift
  for i in $(seq 1 $((secs * 2))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  "$@"
}

jp() { # ns kind/name jsonpath
  kubectl -n "$1" get "$2" -o "jsonpath=$3"
}

equals() { # expected command...
  local want=$1 got; shift
  got=$("$@")
  [ "$got" = "$want" ] || { echo "want \"$want\", got \"$got\""; return 1; }
}

phase_is() { equals "$3" jp "$1" "gar/$2" '{.status.phase}'; }
condition_is() { # ns gar type status [reason]
  equals "$4" jp "$1" "gar/$2" "{.status.conditions[?(@.type==\"$3\")].status}" &&
    { [ -z "${5:-}" ] || equals "$5" jp "$1" "gar/$2" "{.status.conditions[?(@.type==\"$3\")].reason}"; }
}
# releases_settled: no GovernedAPIRelease in the cluster (an earlier file's included) is in
# the middle of a release, so none will count a rollout or rollback of its own; one held at
# a gate that says Stalled=True (no target, a claimed target) waits for a change of its own
releases_settled() {
  local busy
  busy=$(kubectl get gar -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}|{.status.phase}|{.status.observedGeneration}|{.metadata.generation}|{.status.conditions[?(@.type=="Stalled")].status}{"\n"}{end}' |
    awk -F'|' '($2 ~ /^(|Pending|Gating|RollingOut|Verifying|Observing|RollingBack)$/ && $5 != "True") || $3 != $4')
  [ -z "$busy" ] || { echo "in flight (name|phase|observedGeneration|generation|Stalled): $busy"; return 1; }
}
has_event() { # ns object reason
  kubectl -n "$1" get events --field-selector "involvedObject.name=$2,reason=$3" -o name | grep -q .
}

install_operator_rbac() {
  # another test may have just uninstalled membrane: let that finish first
  if [ "$(kubectl get namespace membrane-system -o 'jsonpath={.status.phase}' 2>/dev/null)" = Terminating ]; then
    kubectl wait --for=delete namespace/membrane-system --timeout=120s >/dev/null
  fi
  kubectl apply -f "$E2E_ROOT/crds/" >/dev/null 2>&1
  kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
  kubectl apply -f "$E2E_ROOT/manifests/namespace.yaml" >/dev/null
  kubectl apply -n membrane-system -f "$E2E_ROOT/manifests/serviceaccount.yaml" -f "$E2E_ROOT/manifests/rbac.yaml" >/dev/null
  # the admission policies confining the operator's writes, and the probe component
  # (its Pod grant and Pod policy; operator_start_as passes --enable-probe), as
  # installed with manifests/ and manifests/probe: every scenario runs under them
  kubectl apply -f "$E2E_ROOT/manifests/admission-deployments.yaml" -f "$E2E_ROOT/manifests/admission-configmaps.yaml" \
    -f "$E2E_ROOT/manifests/probe/rbac.yaml" -f "$E2E_ROOT/manifests/probe/admission-pods.yaml" >/dev/null
  bash "$E2E_ROOT/hack/cluster.sh" sa-kubeconfig membrane-system membrane "$E2E_DIR/operator.kubeconfig" 2h
  # the operator's bearer token: no log may ever show it
  local token
  token=$(kubectl --kubeconfig "$E2E_DIR/operator.kubeconfig" config view --raw -o 'jsonpath={.users[*].user.token}')
  [ -n "$token" ] || { echo "install_operator_rbac: no token in $E2E_DIR/operator.kubeconfig"; return 1; }
  e2e_secret "$token"
}

# e2e_secret VALUE: a credential the test hands out (a bearer token); e2e_finish
# fails the file when any log it wrote (the operator's, a double's: every *.log
# and *.out in E2E_DIR) contains it, or, for a JWT, its signature
e2e_secret() {
  [ -n "$1" ] || return 0
  E2E_SECRETS+=("$1")
  case $1 in *.*.*) E2E_SECRETS+=("${1##*.}") ;; esac
}

# The logs e2e_secret guards: every operator log, and every *.log and *.out in E2E_DIR.
e2e_logs() {
  local f
  for f in "${E2E_OPERATOR_LOGS[@]}" "$E2E_DIR"/*.log "$E2E_DIR"/*.out; do
    [ -f "$f" ] && echo "$f"
  done | sort -u
}

# secrets_absent: 0 when no log holds a secret; names each log that does, never the secret
secrets_absent() {
  local s f found=0 n=0
  for s in "${E2E_SECRETS[@]}"; do
    n=$((n + 1))
    while IFS= read -r f; do
      if grep -qF -- "$s" "$f"; then
        echo "credential #$n (${#s} characters) appears in $(basename "$f"), line $(grep -nF -- "$s" "$f" | head -1 | cut -d: -f1)"
        found=1
      fi
    done < <(e2e_logs)
  done
  return $found
}

# redact < text > text: the secrets replaced by [redacted], for printing logs
redact() {
  local s args=()
  for s in "${E2E_SECRETS[@]}"; do
    args+=(-e "s/$(printf '%s' "$s" | sed 's/[][\\.*^$/]/\\&/g')/[redacted]/g")
  done
  if [ ${#args[@]} -gt 0 ]; then sed "${args[@]}"; else cat; fi
}

# operator_start_as NAME [extra flags]: one more operator under the manifests'
# ServiceAccount (with --enable-probe, as the probe component installs it), with
# its own log (E2E_OP_LOG[NAME]), PID (E2E_OP_PID[NAME]) and free ports, so that
# several can run at once
# (E2E_OPERATOR_KUBECONFIG: another kubeconfig with that token, e.g. through a proxy)
operator_start_as() {
  local name=$1 log="$E2E_DIR/operator-${#E2E_OPERATOR_LOGS[@]}-$1.log"; shift
  E2E_OPERATOR_LOGS+=("$log")
  # E2E_NO_PROBE=1: without --enable-probe (as installed without the probe component)
  local probe=(--enable-probe)
  [ -z "${E2E_NO_PROBE:-}" ] || probe=()
  "$MEMBRANE_BIN" run --kubeconfig "${E2E_OPERATOR_KUBECONFIG:-$E2E_DIR/operator.kubeconfig}" --log-format json --log-level debug \
    --metrics-addr 127.0.0.1:0 --health-addr 127.0.0.1:0 "${probe[@]}" "$@" >"$log" 2>&1 &
  E2E_OP_PID[$name]=$!
  E2E_OP_LOG[$name]=$log
  # E2E_OPERATOR_WAIT_FOR: the log line (a grep pattern) that says it started; default: the controllers run
  local started='"membrane .* is running'
  [ -z "${E2E_OPERATOR_WAIT_FOR:-}" ] || started=$E2E_OPERATOR_WAIT_FOR
  eventually 30 grep -q "$started" "$log" || { cat "$log"; return 1; }
}

# operator_log [NAME]: the log of the operator NAME, by default of the last one started
operator_log() {
  if [ -n "${1:-}" ]; then echo "${E2E_OP_LOG[$1]}"; else echo "${E2E_OPERATOR_LOGS[${#E2E_OPERATOR_LOGS[@]}-1]}"; fi
}

operator_kill_as() { # NAME: kill -9
  local pid=${E2E_OP_PID[$1]:-}
  [ -z "$pid" ] || { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  unset "E2E_OP_PID[$1]"
}

operator_stop_as() { # NAME: SIGTERM; returns the exit code
  local pid=${E2E_OP_PID[$1]:-} rc=0
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || rc=$?
  unset "E2E_OP_PID[$1]"
  return $rc
}

# operator_start [extra flags], operator_kill, operator_stop: the one operator most scenarios need
operator_start() { local rc=0; operator_start_as main "$@" || rc=$?; E2E_OPERATOR_PID=${E2E_OP_PID[main]:-}; return $rc; }
operator_kill() { operator_kill_as main; E2E_OPERATOR_PID=""; }
operator_stop() { E2E_OPERATOR_PID=""; operator_stop_as main; }

# operator_identity NAME: the holderIdentity NAME uses (--leader-elect)
operator_identity() {
  sed -n 's/.*"trying to become the leader as \([^ ]*\) (Lease.*/\1/p' "${E2E_OP_LOG[$1]}" | head -1
}

# operator_port metrics|health [NAME]: the port the operator NAME (default: the last one
# started) bound for --metrics-addr or --health-addr (lib.sh passes 127.0.0.1:0), from its
# log line "serving ... (port N)"
operator_port() {
  local what='/metrics' log
  log=$(operator_log "${2:-}")
  [ "$1" = health ] && what='/healthz and /readyz'
  sed -n "s|.*\"serving [^\"]*$what[^\"]* on [^ ]* (port \([0-9]*\))\".*|\1|p" "$log" | tail -1
}

# metrics_scrape OUT: GET /metrics of the running operator into OUT; fails unless it
# answers 200 with the Prometheus text format's Content-Type
metrics_scrape() {
  local port type
  port=$(operator_port metrics)
  [ -n "$port" ] || { echo "metrics_scrape: the operator's log does not say which port serves /metrics"; return 1; }
  type=$(curl -fsS --max-time 10 -o "$1" -w '%{content_type}' "http://127.0.0.1:$port/metrics") || return 1
  [ "$type" = "text/plain; version=0.0.4; charset=utf-8" ] || { echo "/metrics Content-Type: $type"; return 1; }
}

# operator_metrics NAME: NAME's /metrics page
operator_metrics() {
  local port
  port=$(operator_port metrics "$1")
  [ -n "$port" ] || { echo "no metrics port in ${E2E_OP_LOG[$1]}"; return 1; }
  curl -fsS --max-time 10 "http://127.0.0.1:$port/metrics"
}

# operator_metric NAME METRIC: the value of one series on NAME's /metrics (METRIC with its labels, if any)
operator_metric() {
  local page
  page=$(operator_metrics "$1") || return 1
  awk -v m="$2" '$1 == m {print $2; found = 1} END {exit !found}' <<<"$page"
}

# metrics_check AFTER [--before BEFORE] [EXPECT...]: e2e/metrics_check.py, which parses the
# scrapes with prometheus_client (hack/python.sh installs it) and checks them against API.md
metrics_check() {
  [ -n "${E2E_PYTHON:-}" ] || E2E_PYTHON=$(bash "$E2E_ROOT/hack/python.sh") || return 1
  "$E2E_PYTHON" "$E2E_ROOT/e2e/metrics_check.py" "$@"
}

# A governed API double where every digest behaves well: E2E_GOOD_URL.
good_api_start() {
  : "${MEMBRANE_DOUBLE:?MEMBRANE_DOUBLE must name the governed-api-double binary}"
  local rc=0
  double_start "$MEMBRANE_DOUBLE" "$E2E_DIR/good-api" --fixed-digest "$(digest any)" --default-behaviour good || rc=$?
  E2E_GOOD_API_PID=$DOUBLE_PID
  E2E_PIDS+=("$E2E_GOOD_API_PID")
  E2E_GOOD_URL=$DOUBLE_URL
  return $rc
}

# published_index NS [NAME]: the published index ConfigMap NAME (default kfm-published-datasets)
# in NS, promoting exactly what the governed API double lists, written as the DatasetPromotion
# controller writes it (labelled app.kubernetes.io/managed-by=membrane, one key per datasetID
# holding its entry as canonical JSON; the double prints it: e2e/double/README.md). It stands in
# for promotions in scenarios that are not about promotion: a release verified with the default
# checks runs published-only, which fails closed without this index.
published_index() {
  : "${MEMBRANE_DOUBLE:?MEMBRANE_DOUBLE must name the governed-api-double binary}"
  "$MEMBRANE_DOUBLE" --print-published-index "$1/${2:-kfm-published-datasets}" >"$E2E_DIR/index-$1.json"
  kubectl create -f "$E2E_DIR/index-$1.json" >/dev/null 2>&1 || kubectl replace -f "$E2E_DIR/index-$1.json" >/dev/null
}

new_namespace() { # prefix
  local ns="$1-$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  kubectl create namespace "$ns" >/dev/null
  echo "$ns"
}

# deployment NS NAME IMAGE [REPLICAS] [SPEC]: a Deployment whose container "api" runs IMAGE
# (deployment_yaml), once rolled out
deployment() {
  deployment_yaml "$2" "$3" "${4:-3}" "${5:-}" | kubectl -n "$1" apply -f - >/dev/null
  kubectl -n "$1" rollout status "deploy/$2" --timeout=60s >/dev/null
}

# release NS NAME DEPLOYMENT DIGEST [extra spec YAML, indented 2 spaces]: every call is a
# new change (its own change record); without a verification block in the extra spec the
# checks are health and ready against the good double (good_api_start); E2E_OBSERVATION_SECONDS,
# E2E_RECHECK_SECONDS and E2E_PROGRESS_DEADLINE set the rollout's timings
release() {
  local verification="  verification: {checks: [health, ready], baseURL: \"${E2E_GOOD_URL:-http://127.0.0.1:1}\"}"
  case "${5:-}" in *verification:*) verification="" ;; esac
  release_yaml "$2" "$3" registry.kfm.local/kfm-api "$4" "CHG-e2e-$2-$RANDOM" \
    "observationSeconds: ${E2E_OBSERVATION_SECONDS:-2}, progressDeadlineSeconds: ${E2E_PROGRESS_DEADLINE:-120}${E2E_RECHECK_SECONDS:+, recheckSeconds: $E2E_RECHECK_SECONDS}" \
    "$verification
${5:-}" | kubectl -n "$1" apply -f -
}

e2e_finish() {
  local rc=$? p name
  for name in "${!E2E_OP_PID[@]}"; do operator_kill_as "$name"; done
  for p in "${E2E_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  echo
  check "no log of this file carries a bearer token (${#E2E_SECRETS[@]} strings looked for in $(e2e_logs | wc -l) logs)" secrets_absent
  if [ "$E2E_FAILED" -gt 0 ] || [ $rc -ne 0 ]; then
    for l in "${E2E_OPERATOR_LOGS[@]}"; do echo "== $l"; tail -40 "$l" | redact; done
  fi
  if [ -n "${E2E_KEEP:-}" ]; then echo "kept $E2E_DIR"; else rm -rf "$E2E_DIR"; fi
  echo
  echo "$E2E_PASSED passed, $E2E_FAILED failed"
  [ "$E2E_FAILED" -eq 0 ] && [ $rc -eq 0 ]
}
trap e2e_finish EXIT
