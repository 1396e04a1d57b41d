#!/usr/bin/env bash
# Check runs beside the workers: with one worker, a release whose health check
# waits 40 s for a slow governed API does not hold up another release, which
# rolls out, runs its checks and succeeds meanwhile; the slow release stays
# Verifying until its answer comes, then succeeds on it. A run is not started
# twice while it goes: the slow API is asked once.
source "$(dirname "$0")/lib.sh"
: "${MEMBRANE_DOUBLE:?MEMBRANE_DOUBLE must name the governed-api-double binary}"

install_operator_rbac
operator_start --workers 1
good_api_start

REPO=registry.kfm.local/kfm-api
SLOW=$(digest async-slow)

slow_ns=$(new_namespace async-slow)
deployment "$slow_ns" kfm-api "$REPO@$(digest async-slow-a)" 1
"$MEMBRANE_DOUBLE" --listen 127.0.0.1:0 --namespace "$slow_ns" --deployment kfm-api --container api --slow-ms 40000 \
  --behaviour "$SLOW=slow" >"$E2E_DIR/slow.out" 2>"$E2E_DIR/slow.log" &
E2E_PIDS+=($!)
eventually 10 grep -q listening "$E2E_DIR/slow.out"
slow_url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$E2E_DIR/slow.out")

say "a slow check run holds no worker"
E2E_OBSERVATION_SECONDS=0 release "$slow_ns" kfm-api kfm-api "$SLOW" \
  "  verification: {checks: [health], baseURL: \"$slow_url\", timeoutSeconds: 60}" >/dev/null
check "the slow release is Verifying" eventually 60 equals Verifying jp "$slow_ns" gar/kfm-api '{.status.phase}'
sleep 2 # its health request is on its way to the slow API

quick_ns=$(new_namespace async-quick)
deployment "$quick_ns" kfm-api "$REPO@$(digest async-quick-a)" 1
E2E_OBSERVATION_SECONDS=0 release "$quick_ns" kfm-api kfm-api "$(digest async-quick-b)" >/dev/null
check "meanwhile another release Succeeded, on the one worker" eventually 30 equals Succeeded \
  jp "$quick_ns" gar/kfm-api '{.status.phase}'
check "the slow release is still Verifying then" equals Verifying jp "$slow_ns" gar/kfm-api '{.status.phase}'
check "the slow API has not answered yet" bash -c "! grep -q 'GET /healthz .*status=' '$E2E_DIR/slow.log'"

say "the slow run's end requeues its release"
check "the slow release Succeeded once its answer came" eventually 90 equals Succeeded \
  jp "$slow_ns" gar/kfm-api '{.status.phase}'
check "its health result passed" equals "health true" jp "$slow_ns" gar/kfm-api \
  '{.status.verification.results[0].name} {.status.verification.results[0].passed}'
check "the slow API was asked once: the run was not started twice" equals 1 \
  bash -c "grep -c 'GET /healthz .*status=' '$E2E_DIR/slow.log'"
