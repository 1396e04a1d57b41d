#!/usr/bin/env bash
# Observing on the local control plane: after the checks passed, they run again
# every recheckSeconds and once at the end of observationSeconds. A version
# that turns bad while it is observed (the governed API double is switched to
# uncited answers for the digest the Deployment runs) is caught by a recheck and
# rolled back with its trigger, and the rolled-back version passes; a version
# that stays good is Succeeded only after the final run, which started at the
# end of the window, with the rechecks counted on /metrics.
source "$(dirname "$0")/lib.sh"
: "${MEMBRANE_DOUBLE:?MEMBRANE_DOUBLE must name the governed-api-double binary}"

install_operator_rbac
operator_start

REPO=registry.kfm.local/kfm-api
GOOD=$(digest obs-good); TURNS=$(digest obs-turns-bad); STAYS=$(digest obs-stays-good)

ns=$(new_namespace observe)
deployment "$ns" kfm-api "$REPO@$GOOD"
double_start "$MEMBRANE_DOUBLE" "$E2E_DIR/double" --namespace "$ns" --deployment kfm-api --container api \
  --behaviour "$GOOD=good" --behaviour "$TURNS=good" --behaviour "$STAYS=good"
E2E_PIDS+=("$DOUBLE_PID")
url=$DOUBLE_URL

observed_release() { # digest observationSeconds recheckSeconds: a new change (its own change record)
  E2E_OBSERVATION_SECONDS=$2 E2E_RECHECK_SECONDS=$3 release "$ns" kfm-api kfm-api "$1" "  verification:
    baseURL: \"$url\"
    checks: [health, ready, focus-ask]
    focusQuestion: \"Which wells were sampled in March 2026?\"" >/dev/null
}
gen() { jp "$ns" gar/kfm-api '{.metadata.generation}'; }
settled() { # generation phase
  equals "$1 $2" jp "$ns" gar/kfm-api '{.status.observedGeneration} {.status.phase}'
}
epoch() { [ -n "$1" ] && date -u -d "$1" +%s; } # an RFC 3339 time as seconds; fails on none
# seconds_between A B LIMIT OP: (B - A) OP LIMIT, both times RFC 3339 and present
seconds_between() {
  local a b; a=$(epoch "$1") && b=$(epoch "$2") || { echo "a time is missing: \"$1\" \"$2\""; return 1; }
  [ $((b - a)) "$4" "$3" ] || { echo "$2 - $1 = $((b - a)) s, not $4 $3"; return 1; }
}
# started_after T: status.verification.startedAt is later than T (an RFC 3339 time)
started_after() {
  local s; s=$(jp "$ns" gar/kfm-api '{.status.verification.startedAt}')
  [ -n "$s" ] && [ "$(epoch "$s")" -gt "$(epoch "$1")" ] || { echo "startedAt $s, not after $1"; return 1; }
}
health_runs() { operator_metric main 'membrane_verification_check_duration_seconds_count{check="health"}' || echo 0; }

say "a version that turns bad while it is observed is caught by a recheck and rolled back"
observed_release "$TURNS" 60 3
check "Observing (the checks passed)" eventually 60 settled "$(gen)" Observing
since=$(jp "$ns" gar/kfm-api '{.status.verification.observingSince}')
first=$(jp "$ns" gar/kfm-api '{.status.verification.startedAt}')
check "status.verification.observingSince is set" test -n "$since"
recheck_ran() { # startedAt moved on, observingSince did not
  started_after "$first" && equals "$since" jp "$ns" gar/kfm-api '{.status.verification.observingSince}'
}
check "a recheck ran: status.verification.startedAt moved on, the window's start did not" eventually 20 recheck_ran
check "still Observing after it" settled "$(gen)" Observing
check "the double answers as the running digest: uncited from now on" \
  curl -fsS -X PUT --data uncited "$url/__double/behaviour/$TURNS"
check "RolledBack" eventually 60 settled "$(gen)" RolledBack
check "lastRollback.trigger UncitedAnswer" equals UncitedAnswer jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "lastRollback.message names the failed check" bash -c \
  "kubectl -n $ns get gar kfm-api -o jsonpath='{.status.lastRollback.message}' | grep -q 'check focus-ask failed'"
check "lastRollback says it went from the bad digest to the good one" equals "$TURNS $GOOD" \
  jp "$ns" gar/kfm-api '{.status.lastRollback.fromDigest} {.status.lastRollback.toDigest}'
rolled_at=$(jp "$ns" gar/kfm-api '{.status.lastRollback.time}')
check "the rollback came during the 60 s window, not at its end" seconds_between "$since" "$rolled_at" 60 -lt
check "the Deployment runs the good digest again" equals "$REPO@$GOOD" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
check "all 3 replicas available" eventually 30 equals 3 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
check "the rolled-back version passed focus-ask again" equals true \
  jp "$ns" gar/kfm-api '{.status.verification.results[?(@.name=="focus-ask")].passed}'
check "Verified=False UncitedAnswer, Stalled=True RolledBack" bash -c \
  "[ \"\$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.conditions[?(@.type==\"Verified\")].reason} {.status.conditions[?(@.type==\"Stalled\")].reason}')\" = 'UncitedAnswer RolledBack' ]"
check "the last receipt says RolledBack UncitedAnswer" equals "RolledBack UncitedAnswer" \
  jp "$ns" gar/kfm-api '{.status.history[-1:].outcome} {.status.history[-1:].trigger}'
kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/turned.json"
check "membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/turned.json"
check "Event RollbackTriggered" eventually 10 has_event "$ns" kfm-api RollbackTriggered

say "a version that stays good is Succeeded after the final run at the end of its window"
before=$(health_runs)
observed_release "$STAYS" 12 3
g=$(gen)
check "Observing" eventually 60 settled "$g" Observing
since=$(jp "$ns" gar/kfm-api '{.status.verification.observingSince}')
check "not Succeeded before the 12 s window ends" bash -c \
  "sleep 5; [ \"\$(kubectl -n $ns get gar kfm-api -o jsonpath='{.status.phase}')\" = Observing ]"
check "Succeeded" eventually 60 settled "$g" Succeeded
check "the last run started at or after the end of the window (the final run)" \
  seconds_between "$since" "$(jp "$ns" gar/kfm-api '{.status.verification.startedAt}')" 12 -ge
check "every check of the final run passed" equals "true true true" \
  jp "$ns" gar/kfm-api '{.status.verification.results[*].passed}'
after=$(health_runs)
echo "     health ran $((after - before)) times for this release"
# the Verifying run, rechecks about 3, 6 and 9 s into the window, the final run at 12 s
check "the checks ran at least 4 times (Verifying, rechecks, the final run)" test $((after - before)) -ge 4
check "the last receipt says Succeeded" equals Succeeded jp "$ns" gar/kfm-api '{.status.history[-1:].outcome}'
kubectl -n "$ns" get gar kfm-api -o json > "$E2E_DIR/stayed.json"
check "membrane receipt verify accepts the chain" "$MEMBRANE_BIN" receipt verify -f "$E2E_DIR/stayed.json"
check "the double saw the rechecks of this release" bash -c \
  "[ \$(grep -c 'GET /healthz x-request-id=$(jp "$ns" gar/kfm-api '{.status.releaseID}')-health' $E2E_DIR/double.log) -ge 4 ]"
check "SIGTERM: clean exit 0" operator_stop
