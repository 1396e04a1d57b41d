#!/usr/bin/env bash
# The operator against a failing control plane, mid-rollout. Each scenario ends
# with the release in the right phase after one rollout (the Deployment's
# generation, revision and ReplicaSets), one receipt per outcome in a chain
# that `membrane receipt verify` accepts, and each Event recorded once:
#  1  kube-apiserver restarted while the release is RollingOut;
#  2a every connection cut (faultproxy, built by hack/gotool.sh) while
#     RollingOut: the watches resume from their resourceVersion, with no list;
#  2b the answers to the rollout's Deployment patch and to the status write
#     that records Succeeded are lost (each is done, the operator's connection
#     is cut before it hears so);
#  3a the rollback's Deployment patch answered 429 (Retry-After: 1) for 8 s,
#     longer than the client's own retries: RolledBack, one rollback;
#  3b every request answered 429 for 8 s, watches cut, while a manual
#     rollback rolls out: the operator waits between tries, never spins;
#  4  the operator cut off while the rollout finishes and a release is
#     deleted, etcd compacted past its resourceVersion: the watches answer 410,
#     the informers relist, and nothing the operator missed is lost;
#  5  the operator started while every request is answered 429: alive
#     (/healthz 200) but not ready (/readyz 503) until its caches have synced.
# RESILIENCE_SCENARIOS="2a 4" runs some of them (default: all, in order).
# Figures (how long each recovery took) are printed, never asserted.
source "$(dirname "$0")/lib.sh"

REPO=registry.kfm.local/kfm-api
A=$(digest res-a)
E2E_OBSERVATION_SECONDS=2
CLUSTER="$E2E_ROOT/hack/cluster.sh"

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc | xargs printf '%.1f'; }
figure() { echo "     figure: $*"; }

# --- the proxy -------------------------------------------------------------

# Its own CA and a certificate for 127.0.0.1, and a copy of the operator's
# kubeconfig (same ServiceAccount token) whose server is the proxy.
proxy_setup() {
  local pki="$E2E_DIR/proxy-pki" upstream
  test_ca "$pki" ca
  test_server_cert "$pki" proxy ca
  upstream=$(sed -n 's/^ *server: //p' "$E2E_DIR/operator.kubeconfig")
  "$FAULTPROXY" -upstream "$upstream" -upstream-ca "$MEMBRANE_CLUSTER_DIR/pki/ca.crt" \
    -cert "$pki/proxy.crt" -key "$pki/proxy.key" >"$E2E_DIR/proxy.out" 2>"$E2E_DIR/proxy.log" &
  PROXY_PID=$!
  eventually 10 grep -q listening "$E2E_DIR/proxy.out" || { cat "$E2E_DIR/proxy.log"; return 1; }
  PROXY_URL=$(sed -n 's/.*listening on \(https[^,]*\),.*/\1/p' "$E2E_DIR/proxy.out")
  PROXY_CONTROL=$(sed -n 's/.*control on \(http[^ ]*\).*/\1/p' "$E2E_DIR/proxy.out")
  sed -e "s|^\( *server:\).*|\1 $PROXY_URL|" -e "s|^\( *certificate-authority:\).*|\1 $pki/ca.crt|" \
    "$E2E_DIR/operator.kubeconfig" > "$E2E_DIR/proxied.kubeconfig"
}
proxy() { curl -fsS --max-time 10 -X POST "$PROXY_CONTROL/$1" >/dev/null; }
proxy_stat() { curl -fsS --max-time 5 "$PROXY_CONTROL/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
# proxy_mark: a line in the proxy's log to read what came after it
proxy_mark() { wc -l < "$E2E_DIR/proxy.log"; }
proxy_log_since() { tail -n +"$(($1 + 1))" "$E2E_DIR/proxy.log"; }

finish() {
  [ -z "${PROXY_PID:-}" ] || kill "$PROXY_PID" 2>/dev/null || true
  # a failed run must not leave the shared control plane without an API server
  bash "$CLUSTER" start kube-apiserver >/dev/null 2>&1 || true
  bash "$CLUSTER" start kube-controller-manager >/dev/null 2>&1 || true
}
trap 'rc=$?; finish; (exit $rc); e2e_finish' EXIT

# --- the release and what it must end with ----------------------------------

# slow_deployment NS NAME: 3 replicas from A, replaced one at a time, each new
# pod Ready for 3 s before the next: a rollout that lasts long enough to break
# something in its middle. Prints the Deployment's generation.
slow_deployment() {
  deployment "$1" "$2" "$REPO@$A"
  kubectl -n "$1" patch deploy "$2" --type merge -p \
    '{"spec":{"minReadySeconds":3,"strategy":{"rollingUpdate":{"maxSurge":1,"maxUnavailable":0}}}}' >/dev/null
  eventually 30 equals "$(jp "$1" "deploy/$2" '{.metadata.generation}')" jp "$1" "deploy/$2" '{.status.observedGeneration}' >/dev/null
  jp "$1" "deploy/$2" '{.metadata.generation}'
}

# event_count NS OBJECT REASON: how many times the Event was recorded (counts of every copy)
event_count() {
  kubectl -n "$1" get events --field-selector "involvedObject.name=$2,reason=$3" \
    -o jsonpath='{range .items[*]}{.count}{"\n"}{end}' | awk '{ s += ($1 == "" ? 1 : $1) } END { print s + 0 }'
}

# succeeded_once WHAT NS GEN_BEFORE DIGEST: Succeeded on DIGEST after exactly one rollout
succeeded_once() {
  local what=$1 ns=$2 gen=$3 d=$4 r
  check "$what: Deployment runs the new digest on 3 available replicas" equals "$REPO@$d 3" \
    jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image} {.status.availableReplicas}'
  check "$what: the Deployment's template changed once (generation $gen -> $((gen + 1)), revision 2)" \
    equals "$((gen + 1)) 2" jp "$ns" deploy/kfm-api '{.metadata.generation} {.metadata.annotations.deployment\.kubernetes\.io/revision}'
  check "$what: two ReplicaSets, the old one scaled to 0" equals "2 0" bash -c \
    "echo \$(kubectl -n $ns get rs -l app=kfm-api -o name | wc -l) \$(kubectl -n $ns get rs -l app=kfm-api -o jsonpath='{.items[?(@.spec.template.spec.containers[0].image==\"$REPO@$A\")].spec.replicas}')"
  check "$what: one receipt, Succeeded, for this generation" equals "Succeeded $(jp "$ns" gar/kfm-api '{.metadata.generation}')" \
    jp "$ns" gar/kfm-api '{.status.history[*].outcome} {.status.history[*].generation}'
  kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/$ns.json"
  check "$what: membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/$ns.json"
  for r in GatesPassed RolloutStarted RolloutComplete ReleaseSucceeded; do
    check "$what: Event $r recorded once" eventually 10 equals 1 event_count "$ns" kfm-api "$r"
  done
}

# The operator: straight to the API server (scenario 1) or through the proxy.
OPERATOR_VIA=""
operator_via() {
  [ "$OPERATOR_VIA" = "$1" ] && [ -n "$E2E_OPERATOR_PID" ] && return 0
  if [ -n "$E2E_OPERATOR_PID" ]; then check "SIGTERM: clean exit 0" operator_stop; fi
  if [ "$1" = proxy ]; then
    [ -n "${PROXY_PID:-}" ] || proxy_setup
    E2E_OPERATOR_KUBECONFIG="$E2E_DIR/proxied.kubeconfig" operator_start
    check "the operator runs through the proxy" grep -q "running against $PROXY_URL" "$(operator_log)"
  else
    operator_start
  fi
  OPERATOR_VIA=$1
}

# phase_and_image NS: "<release phase> <image of the Deployment>"
phase_and_image() {
  echo "$(jp "$1" gar/kfm-api '{.status.phase}') $(jp "$1" deploy/kfm-api '{.spec.template.spec.containers[0].image}')"
}
proxy_mode_is() { equals "$1" proxy_stat mode; }

# rolled_back_once WHAT NS GEN TRIGGER OUTCOMES: RolledBack on A, the template
# changed twice since GEN (out and back), one rollback in the receipts and Events
rolled_back_once() {
  local what=$1 ns=$2 gen=$3 trigger=$4 outcomes=$5 r
  check "$what: lastRollback.trigger $trigger, the Deployment back on A" equals "$trigger $REPO@$A" bash -c \
    "echo \$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.lastRollback.trigger}') \$(kubectl -n $ns get deploy kfm-api -o jsonpath='{.spec.template.spec.containers[0].image}')"
  check "$what: all 3 replicas available" eventually 30 equals 3 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
  check "$what: the template changed twice, out and back (generation $gen -> $((gen + 2)))" equals "$((gen + 2))" jp "$ns" deploy/kfm-api '{.metadata.generation}'
  check "$what: receipts $outcomes" equals "$outcomes" jp "$ns" gar/kfm-api '{.status.history[*].outcome}'
  kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/$ns.json"
  check "$what: membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/$ns.json"
  for r in RollbackTriggered RolledBack; do
    check "$what: Event $r recorded once" eventually 10 equals 1 event_count "$ns" kfm-api "$r"
  done
}

# scrape NAME: the running operator's /metrics into $E2E_DIR/NAME.prom; rose BEFORE AFTER EXPECT...:
# metrics_check of the increase from one scrape to the other
scrape() { metrics_scrape "$E2E_DIR/$1.prom"; }
rose() { local b=$1 a=$2; shift 2; metrics_check "$E2E_DIR/$a.prom" --before "$E2E_DIR/$b.prom" "$@"; }

# --- the scenarios -----------------------------------------------------------

scenario_1() {
  say "1. kube-apiserver restarted while the release is RollingOut"
  operator_via direct
  local ns gen B t0 t1
  ns=$(new_namespace res-apiserver)
  gen=$(slow_deployment "$ns" kfm-api)
  B=$(digest res-b1)
  release "$ns" kfm-api kfm-api "$B" >/dev/null
  check "RollingOut, the Deployment patched" eventually 30 equals "RollingOut $REPO@$B" phase_and_image "$ns"
  t0=$(now)
  bash "$CLUSTER" restart kube-apiserver
  figure "kube-apiserver down and up again in $(since "$t0") s"
  check "the rollout was still under way when the API server came back" bash -c \
    "[ \"\$(kubectl -n $ns get deploy kfm-api -o jsonpath='{.status.updatedReplicas}')\" != 3 ] || [ \"\$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.phase}')\" = RollingOut ]"
  t1=$(now)
  check "Succeeded" eventually 90 phase_is "$ns" kfm-api Succeeded
  figure "Succeeded $(since "$t1") s after the API server was ready again"
  check "the operator kept running" kill -0 "$E2E_OPERATOR_PID"
  check "its informers relisted (410 after the restart)" grep -q 'resourceVersion is too old; relisting' "$(operator_log)"
  succeeded_once "apiserver restart" "$ns" "$gen" "$B"
}

scenario_2a() {
  say "2a. every connection cut while RollingOut: the watches resume, nothing is listed again"
  operator_via proxy
  local ns gen B t0 mark res
  ns=$(new_namespace res-cut)
  gen=$(slow_deployment "$ns" kfm-api)
  B=$(digest res-b2)
  release "$ns" kfm-api kfm-api "$B" >/dev/null
  check "RollingOut" eventually 30 phase_is "$ns" kfm-api RollingOut
  scrape cut-before
  mark=$(proxy_mark)
  t0=$(now)
  proxy drop
  check "the proxy cut the open connections" test "$(proxy_stat dropped)" -ge 4
  sleep 1
  proxy drop # the watches that came back, once more
  check "Succeeded" eventually 90 phase_is "$ns" kfm-api Succeeded
  figure "Succeeded $(since "$t0") s after the first cut"
  scrape cut-after
  check "membrane_watch_restarts_total rose for every resource watched" rose cut-before cut-after \
    'membrane_watch_restarts_total{resource="deployments.apps"}>=1' 'membrane_watch_restarts_total{resource="pods"}>=1' \
    'membrane_watch_restarts_total{resource="governedapireleases.governance.kfm.dev"}>=1' \
    'membrane_watch_restarts_total{resource="policybundles.governance.kfm.dev"}>=1'
  proxy_log_since "$mark" > "$E2E_DIR/cut.log"
  for res in /apis/apps/v1/deployments /api/v1/pods /apis/governance.kfm.dev/v1alpha1/governedapireleases; do
    check "$res: watched again after the cut, from a resourceVersion" grep -q "GET $res?watch=1&.*resourceVersion=[0-9]" "$E2E_DIR/cut.log"
    check "$res: not listed again" bash -c "! grep 'GET $res?' $E2E_DIR/cut.log | grep -v 'watch=1' | grep -q ."
  done
  succeeded_once "connections cut" "$ns" "$gen" "$B"
}

scenario_2b() {
  say "2b. the answers to the rollout's Deployment patch and to the status write that records Succeeded are lost"
  operator_via proxy
  local ns gen B
  ns=$(new_namespace res-lost-reply)
  deployment "$ns" kfm-api "$REPO@$A"
  gen=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
  B=$(digest res-b2b)
  scrape lost-before
  proxy "cut-reply?on=PATCH:/apis/apps/v1/namespaces/$ns/deployments/kfm-api"
  E2E_OBSERVATION_SECONDS=6 release "$ns" kfm-api kfm-api "$B" >/dev/null
  check "Observing" eventually 60 phase_is "$ns" kfm-api Observing
  proxy "cut-reply?on=PATCH:/apis/governance.kfm.dev/v1alpha1/namespaces/$ns/governedapireleases/kfm-api/status"
  check "Succeeded" eventually 60 phase_is "$ns" kfm-api Succeeded
  check "the proxy cut the answer to the Deployment patch the API server had done" \
    grep -q "cut the reply (200) to PATCH /apis/apps/v1/namespaces/$ns/deployments/kfm-api" "$E2E_DIR/proxy.log"
  check "  and to a status write it had done" \
    grep -q "cut the reply (200) to PATCH /apis/governance.kfm.dev/v1alpha1/namespaces/$ns/governedapireleases/kfm-api/status" "$E2E_DIR/proxy.log"
  check "the operator saw that its status write was applied" grep -q '"the status write was applied although its answer was lost".*"namespace":"'"$ns"'"' "$(operator_log)"
  succeeded_once "lost answers" "$ns" "$gen" "$B"
  scrape lost-after
  check "membrane_rollouts_total rose by one Succeeded" rose lost-before lost-after \
    'membrane_rollouts_total{outcome="Succeeded"}==1' 'membrane_rollouts_total==1'
}

scenario_3a() {
  say "3a. the rollback's Deployment patch answered 429 for 8 s (longer than the client retries)"
  operator_via proxy
  local ns gen BAD logmark before answered t0
  ns=$(new_namespace res-429-patch)
  deployment "$ns" kfm-api "$REPO@$A"
  gen=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
  BAD=$(digest_crashloop res-bad)
  bash "$CLUSTER" stop kube-controller-manager # the rollout waits until the fault is armed
  release "$ns" kfm-api kfm-api "$BAD" >/dev/null
  check "RollingOut, the Deployment patched" eventually 30 equals "RollingOut $REPO@$BAD" phase_and_image "$ns"
  scrape 429-before
  logmark=$(wc -l < "$(operator_log)")
  before=$(proxy_stat answered429)
  proxy "429?seconds=8&on=PATCH:/apis/apps/v1/namespaces/$ns/deployments/"
  bash "$CLUSTER" start kube-controller-manager # the new pods crash; the rollback's patch meets the 429s
  check "the rollback's patch started the 429s" eventually 60 proxy_mode_is 429
  t0=$(now)
  check "  which ended" eventually 20 proxy_mode_is pass
  answered=$(( $(proxy_stat answered429) - before ))
  figure "the proxy answered 429 to $answered requests in 8 s"
  check "the operator waited between tries: $answered requests in 8 s (a spinning client sends thousands)" test "$answered" -le 40
  tail -n +"$logmark" "$(operator_log)" > "$E2E_DIR/429a.log"
  check "the operator log says the patch waited Retry-After's 1 s" grep -q '"PATCH /apis/apps/v1/namespaces/[^ ]* answered 429; retrying in 1000 ms' "$E2E_DIR/429a.log"
  check "RolledBack" eventually 90 phase_is "$ns" kfm-api RolledBack
  figure "RolledBack $(since "$t0") s after the 429s began"
  rolled_back_once "rollback patch under 429" "$ns" "$gen" CrashLoop RolledBack
  scrape 429-after
  check "membrane_rollbacks_total rose by one CrashLoop, api_requests_total counted the 429s" rose 429-before 429-after \
    'membrane_rollbacks_total{trigger="CrashLoop"}==1' 'membrane_rollbacks_total==1' \
    'membrane_api_requests_total{verb="PATCH",code="429"}>=6'
}

scenario_3b() {
  say "3b. every request answered 429 for 8 s, connections cut, while a manual rollback rolls out"
  operator_via proxy
  local ns gen logmark answered t0
  ns=$(new_namespace res-429-all)
  deployment "$ns" kfm-api "$REPO@$A"
  gen=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
  release "$ns" kfm-api kfm-api "$(digest res-b3)" >/dev/null
  check "the release succeeds first" eventually 60 phase_is "$ns" kfm-api Succeeded
  bash "$CLUSTER" stop kube-controller-manager # the rollback waits for the 429s
  kubectl -n "$ns" annotate gar kfm-api governance.kfm.dev/rollback=true >/dev/null
  check "RollingBack, the Deployment patched back" eventually 30 equals "RollingBack $REPO@$A" phase_and_image "$ns"
  logmark=$(wc -l < "$(operator_log)")
  t0=$(now)
  bash "$CLUSTER" start kube-controller-manager
  answered=$(too_many 8 drop=1) # the watches come back into the 429s
  figure "the proxy answered 429 to $answered requests in 8 s"
  check "the operator waited between tries: $answered requests in 8 s" test "$answered" -le 80
  tail -n +"$logmark" "$(operator_log)" > "$E2E_DIR/429b.log"
  check "the informers backed off (watch failed ... 429)" grep -q 'watch failed, retrying in [0-9]* ms.*429' "$E2E_DIR/429b.log"
  check "RolledBack" eventually 90 phase_is "$ns" kfm-api RolledBack
  figure "RolledBack $(since "$t0") s after the 429s began"
  rolled_back_once "manual rollback under 429" "$ns" "$gen" Manual "Succeeded RolledBack"
  check "the rollback annotation is removed" eventually 10 equals "" jp "$ns" gar/kfm-api '{.metadata.annotations.governance\.kfm\.dev/rollback}'
}

# too_many SECONDS [drop=1]: the proxy answers 429 for SECONDS; prints how many it answered
too_many() {
  local before
  before=$(proxy_stat answered429)
  proxy "429?seconds=$1${2:+&$2}"
  sleep "$1"
  echo $(( $(proxy_stat answered429) - before ))
}

scenario_4() {
  say "4. cut off while the rollout finishes and a release is deleted; etcd compacted: 410, relist"
  operator_via proxy
  local ns gen B rev logmark t0 t1
  ns=$(new_namespace res-compact)
  deployment "$ns" other "$REPO@$A" 1
  release "$ns" other other "$(digest res-other)" >/dev/null
  gen=$(slow_deployment "$ns" kfm-api)
  check "the other release Succeeded first" eventually 60 phase_is "$ns" other Succeeded
  B=$(digest res-b4)
  release "$ns" kfm-api kfm-api "$B" >/dev/null
  check "RollingOut" eventually 30 phase_is "$ns" kfm-api RollingOut
  proxy hold
  t0=$(now)
  kubectl -n "$ns" delete gar other --wait=false >/dev/null
  check "while the operator is cut off, the rollout finishes" eventually 60 equals "3 3" \
    jp "$ns" deploy/kfm-api '{.status.updatedReplicas} {.status.availableReplicas}'
  check "  and the release is still RollingOut, the other one waits on its finalizer" equals "RollingOut other" bash -c \
    "echo \$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.phase}') \$(kubectl -n $ns get gar other -o jsonpath='{.metadata.name}')"
  rev=$(bash "$CLUSTER" compact)
  figure "etcd compacted at revision $rev"
  # The API server's watch cache would still serve the operator's old
  # resourceVersions from memory: etcd's compaction alone does not reach a
  # watch. Restarted, the API server holds nothing older than the compacted
  # store it lists again, as another API server behind a load balancer would.
  bash "$CLUSTER" restart kube-apiserver
  logmark=$(wc -l < "$(operator_log)")
  t1=$(now)
  proxy pass
  check "Succeeded" eventually 90 phase_is "$ns" kfm-api Succeeded
  figure "Succeeded $(since "$t1") s after the operator could reach the API server again ($(since "$t0") s after the cut)"
  check "the watches were told their resourceVersion is too old, and relisted" bash -c \
    "tail -n +$logmark $(operator_log) | grep -q 'resourceVersion is too old; relisting'"
  check "the deleted release is finalized and gone" eventually 30 bash -c "! kubectl -n $ns get gar other 2>/dev/null"
  check "  its owner annotation removed from its Deployment" equals "" jp "$ns" deploy/other '{.metadata.annotations.governance\.kfm\.dev/release-owner}'
  succeeded_once "compacted" "$ns" "$gen" "$B"
}

answered429_above() { [ "$(proxy_stat answered429)" -gt "$1" ]; }
# http_answer PORT PATH: "<status> <body>" of GET PATH on the operator's PORT
http_answer() { curl -s --max-time 5 -w ' %{http_code}' "http://127.0.0.1:$1$2" | tr -d '\n' | sed 's/^\(.*\) \([0-9]*\)$/\2 \1/'; }

scenario_5() {
  say "5. started while every request is answered 429: alive, not ready until the caches sync"
  if [ -n "$E2E_OPERATOR_PID" ]; then check "SIGTERM: clean exit 0" operator_stop; fi
  [ -n "${PROXY_PID:-}" ] || proxy_setup
  local port t0 before
  before=$(proxy_stat answered429)
  proxy "429?seconds=600" # until /pass below
  E2E_OPERATOR_KUBECONFIG="$E2E_DIR/proxied.kubeconfig" E2E_OPERATOR_WAIT_FOR='"serving [^"]*/readyz' operator_start
  OPERATOR_VIA=proxy
  port=$(operator_port health)
  check "the proxy answers the operator's lists 429" eventually 10 answered429_above "$before"
  check "/readyz 503 while the caches cannot sync" equals "503 the informer caches have not synced yet" http_answer "$port" /readyz
  check "/healthz 200: alive while it waits" equals "200 ok" http_answer "$port" /healthz
  t0=$(now)
  proxy pass
  check "once the 429s end: /readyz 200" eventually 60 equals "200 ok" http_answer "$port" /readyz
  figure "ready $(since "$t0") s after the 429s ended"
  check "  and the controllers run" eventually 30 grep -q '"membrane .* is running' "$(operator_log)"
}

install_operator_rbac
good_api_start
FAULTPROXY=$(bash "$E2E_ROOT/hack/gotool.sh" faultproxy)
for s in ${RESILIENCE_SCENARIOS:-1 2a 2b 3a 3b 4 5}; do
  "scenario_$s"
done
check "SIGTERM: clean exit 0" operator_stop
