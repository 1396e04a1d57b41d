#!/usr/bin/env bash
# The slo check on the local control plane against a real Prometheus
# (hack/prometheus.sh), which scrapes the governed API double's /metrics every
# second while a load generator (curl, 20 requests a second, no X-Request-ID)
# sends it steady traffic. The objectives are the usual RED ones over the
# double's http_requests_total{code,digest} and http_request_duration_seconds
# histogram, for the digest the Deployment runs:
#  - a good digest meets them at every run (Verifying, the rechecks, the end of
#    Observing) and Succeeds;
#  - a digest that turns to 5 % errors while it is observed (the contract
#    checks still pass: the double fails only the user traffic) breaches
#    error-rate at a recheck and is rolled back with SLOBreach, and the
#    rolled-back version meets the SLO, asked with its own digest;
#  - a digest that turns slow breaches latency-p99 and is rolled back;
#  - with Prometheus down the check fails closed, reported as "cannot be
#    judged", not as a breach;
#  - a spec the check cannot run with is refused by the apiserver, naming the
#    field.
source "$(dirname "$0")/lib.sh"
: "${MEMBRANE_DOUBLE:?MEMBRANE_DOUBLE must name the governed-api-double binary}"
: "${MEMBRANE_PROMETHEUS:?MEMBRANE_PROMETHEUS must name the prometheus binary (bash hack/prometheus.sh builds it and prints its path)}"

install_operator_rbac
operator_start

REPO=registry.kfm.local/kfm-api
GOOD=$(digest slo-good); GOOD2=$(digest slo-good-2); ERRS=$(digest slo-errors); SLOW=$(digest slo-slow)
DOWN=$(digest slo-prometheus-down)

ns=$(new_namespace slo)
# minReadySeconds: the new pods serve (and are scraped) for a few seconds before the rollout counts as
# done, so the Verifying run finds samples of the new version, as a real rollout gives Prometheus
deployment "$ns" kfm-api "$REPO@$GOOD" 2 "  minReadySeconds: 4"
double_start "$MEMBRANE_DOUBLE" "$E2E_DIR/double" --namespace "$ns" --deployment kfm-api --container api \
  --cache-ms 200 --behaviour "$GOOD=good" --behaviour "$GOOD2=good" --behaviour "$ERRS=good" \
  --behaviour "$SLOW=good" --behaviour "$DOWN=good" --slow-p99-ms 1500
E2E_PIDS+=("$DOUBLE_PID")
url=$DOUBLE_URL

# the user traffic: one connection, at most 20 requests a second, as long as the file runs
load_start "$url" "$E2E_DIR/load.err"
E2E_PIDS+=("$LOAD_PID")

# Prometheus on loopback, scraping the double every second
prometheus_start "$MEMBRANE_PROMETHEUS" "$E2E_DIR" "${url#http://}"
prom=$PROM_URL prom_pid=$PROM_PID
E2E_PIDS+=("$prom_pid")
# promql QUERY: the value of the one sample QUERY returns now
promql() {
  curl -fsS -G --max-time 5 --data-urlencode "query=$1" "$prom/api/v1/query" |
    python3 -c 'import json, sys; r = json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if len(r) == 1 else "none")'
}
check "Prometheus is ready" eventually 60 curl -fsS --max-time 2 "$prom/-/ready"
check "  it scrapes the double's traffic for the running digest" eventually 30 prometheus_sees "$prom" "$GOOD"

slo_release() { # digest observationSeconds: a new change (its own change record)
  E2E_OBSERVATION_SECONDS=$2 E2E_RECHECK_SECONDS=2 release "$ns" kfm-api kfm-api "$1" "  verification:
    baseURL: \"$url\"
    timeoutSeconds: 5
    checks: [health, ready, datasets, stac-collections, stac-items, lineage]
$(slo_red_yaml "$prom")" >/dev/null
}
gen() { jp "$ns" gar/kfm-api '{.metadata.generation}'; }
settled() { # generation phase
  equals "$1 $2" jp "$ns" gar/kfm-api '{.status.observedGeneration} {.status.phase}'
}
result_of() { # check field: of the last run
  kubectl -n "$ns" get gar kfm-api -o json | python3 -c "
import json,sys
r=[x for x in json.load(sys.stdin)['status']['verification']['results'] if x['name']=='$1']
v=r[0].get('$2','') if r else 'absent'
print(json.dumps(v) if isinstance(v, bool) else v)"
}
contract_passed() { # every result but slo passed
  kubectl -n "$ns" get gar kfm-api -o json | python3 -c "
import json,sys
r=[x for x in json.load(sys.stdin)['status']['verification']['results'] if x['name']!='slo']
sys.exit(0 if len(r)==6 and all(x['passed'] for x in r) else 1)"
}
image() { jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'; }
behave() { # digest behaviour: the double's control request
  curl -fsS -X PUT --data "$2" "$url/__double/behaviour/$1" >/dev/null
}
message_has() { # text: the slo result's message contains it
  result_of slo message | grep -qF -- "$1" || { echo "slo message: $(result_of slo message)"; return 1; }
}
message_lacks() {
  ! result_of slo message | grep -qF -- "$1" || { echo "slo message: $(result_of slo message)"; return 1; }
}
slo_runs() { operator_metric main 'membrane_verification_check_duration_seconds_count{check="slo"}' || echo 0; }
at_least() { # want command...
  local want=$1 got; shift
  got=$("$@") || return 1
  [ "${got%.*}" -ge "$want" ] || { echo "want at least $want, got $got"; return 1; }
}

say "a spec the slo check cannot run with is refused, naming the field"
bad_spec() { # the slo block (indented 6 spaces) -> the apiserver's answer
  kubectl -n "$ns" apply --dry-run=server -f - 2>&1 <<EOF || true
apiVersion: governance.kfm.dev/v1alpha1
kind: GovernedAPIRelease
metadata: {name: kfm-api-bad}
spec:
  environment: staging
  changeRecord: "CHG-e2e-slo-bad"
  target: {deployment: kfm-api, container: api}
  image: {repository: $REPO, digest: "$GOOD2"}
  verification:
    checks: [health]
    slo:
$1
EOF
}
refused_naming() { # slo-block field: the apiserver refuses the spec, naming field
  local out
  out=$(bad_spec "$1")
  grep -qF -- "$2" <<<"$out" || { echo "$out"; return 1; }
}
check "no objectives: spec.verification.slo.objectives" refused_naming "      prometheusURL: \"$prom\"
      objectives: []" "spec.verification.slo.objectives"
check "max not a number: spec.verification.slo.objectives[0].max" refused_naming "      prometheusURL: \"$prom\"
      objectives: [{name: e, query: up, max: \"0.01\"}]" "spec.verification.slo.objectives[0].max"
check "prometheusURL not http(s): spec.verification.slo.prometheusURL" refused_naming "      prometheusURL: \"ftp://prometheus:9090\"
      objectives: [{name: e, query: up, max: 1}]" "spec.verification.slo.prometheusURL"
check "a placeholder other than {{digest}} and {{window}}: spec.verification.slo.objectives[0].query" \
  refused_naming "      prometheusURL: \"$prom\"
      objectives: [{name: e, query: 'rate(x[{{range}}])', max: 1}]" "spec.verification.slo.objectives[0].query"

say "a good digest meets its SLO at every run and Succeeds"
runs0=$(slo_runs)
slo_release "$GOOD2" 6
check "Succeeded" eventually 90 settled "$(gen)" Succeeded
check "slo passed" equals true result_of slo passed
check "  its message shows each objective met, with the query as sent for the new digest" \
  message_has "error-rate met: 0 <= max 0.01 (query: sum(rate(http_requests_total{code=~\"5..\",digest=\"$GOOD2\"}[30s]))"
check "  and latency-p99 met" message_has "latency-p99 met: "
check "slo ran at Verifying, at the rechecks and at the end (verification_check_duration_seconds{check=slo})" \
  at_least $((${runs0%.*} + 3)) slo_runs

say "a digest that turns to 5 % errors while observed breaches error-rate and is rolled back with SLOBreach"
slo_release "$ERRS" 45
check "Observing: the contract checks and the SLO passed at Verifying" eventually 60 settled "$(gen)" Observing
check "  slo passed" equals true result_of slo passed
check "the double now fails 1 in 20 of the user traffic for that digest" behave "$ERRS" error-5pct
check "RolledBack" eventually 90 settled "$(gen)" RolledBack
check "lastRollback.trigger SLOBreach" equals SLOBreach jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "lastRollback.message: check slo failed, error-rate breached, with the query for the bad digest" bash -c \
  "kubectl -n $ns get gar kfm-api -o jsonpath='{.status.lastRollback.message}' | grep 'check slo failed: error-rate breached: ' | grep -qF 'digest=\"$ERRS\"'"
check "the Deployment is back on the good digest" equals "$REPO@$GOOD2" image
check "the rolled-back version meets the SLO" equals true result_of slo passed
check "  asked with its own digest" message_has "error-rate met: 0 <= max 0.01 (query: sum(rate(http_requests_total{code=~\"5..\",digest=\"$GOOD2\"}"
check "  and the contract checks passed" contract_passed
check "a TriggerFired Event says SLOBreach" bash -c \
  "kubectl -n $ns get events --field-selector involvedObject.name=kfm-api,reason=TriggerFired -o jsonpath='{.items[*].message}' | grep -q 'SLOBreach: '"
check "Prometheus itself sees the bad digest's error ratio above 1 %" bash -c \
  "v=\$(curl -fsS -G --data-urlencode 'query=sum(rate(http_requests_total{code=\"500\",digest=\"$ERRS\"}[5m])) / sum(rate(http_requests_total{digest=\"$ERRS\"}[5m]))' $prom/api/v1/query | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"data\"][\"result\"][0][\"value\"][1])'); python3 -c \"import sys; sys.exit(0 if float('\$v') > 0.01 else 1)\""

say "a digest that turns slow while observed breaches latency-p99 and is rolled back"
slo_release "$SLOW" 45
check "Observing" eventually 60 settled "$(gen)" Observing
check "the double now holds 1 in 20 of the user traffic for 1.5 s" behave "$SLOW" slow-p99
check "RolledBack" eventually 90 settled "$(gen)" RolledBack
check "lastRollback.trigger SLOBreach" equals SLOBreach jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "lastRollback.message: latency-p99 breached" bash -c \
  "kubectl -n $ns get gar kfm-api -o jsonpath='{.status.lastRollback.message}' | grep -q 'check slo failed: latency-p99 breached: '"
check "the rolled-back version meets the SLO" equals true result_of slo passed
check "the Deployment is back on the good digest" equals "$REPO@$GOOD2" image

say "Prometheus down: the check fails closed, reported as cannot be judged, not as a breach"
kill "$prom_pid"
wait "$prom_pid" 2>/dev/null || true
slo_release "$DOWN" 2
check "Failed: rolled back, and the rolled-back version cannot be judged either" eventually 90 settled "$(gen)" Failed
check "Stalled=True RollbackVerificationFailed" condition_is "$ns" kfm-api Stalled True RollbackVerificationFailed
check "lastRollback.trigger SLOBreach" equals SLOBreach jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "slo failed" equals false result_of slo passed
check "  its message: error-rate cannot be judged, Prometheus cannot be queried" \
  message_has "error-rate cannot be judged: Prometheus at $prom cannot be queried"
check "  latency-p99 likewise" message_has "latency-p99 cannot be judged: "
check "  and no objective is said to be breached" message_lacks "breached"
check "  the contract checks passed" contract_passed
check "the Deployment is not left on the new digest" equals "$REPO@$GOOD2" image

say "metrics"
check "verification_failures_total{check=slo}: the error and slow versions, and Prometheus down twice" \
  at_least 4 operator_metric main 'membrane_verification_failures_total{check="slo"}'
check "rollbacks_total{trigger=SLOBreach}: three rollbacks" \
  equals 3 operator_metric main 'membrane_rollbacks_total{trigger="SLOBreach"}'
check "transfer_bytes_total{kind=prometheus}: the queries went through the transfer loop" \
  at_least 1 operator_metric main 'membrane_transfer_bytes_total{kind="prometheus"}'
