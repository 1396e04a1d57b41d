#!/usr/bin/env bash
# published-only on the local control plane: the governed API must serve only
# dataset versions promoted in the published index (the ConfigMap
# spec.verification.publishedIndex names, read from the apiserver when the
# check runs). A digest whose API serves a version never promoted fails
# published-only (UnpublishedData) and is rolled back, and the rolled-back
# version passes it; without an index the check fails closed: the release is
# rolled back, the rolled-back version fails the same checks too, and the
# release ends Failed; a checks list without published-only needs no index.
# The metrics count its runs, its failures and the rollbacks it fired.
source "$(dirname "$0")/lib.sh"
: "${MEMBRANE_DOUBLE:?MEMBRANE_DOUBLE must name the governed-api-double binary}"

install_operator_rbac
operator_start

REPO=registry.kfm.local/kfm-api
E2E_OBSERVATION_SECONDS=1
GOOD=$(digest pub-good); GOOD2=$(digest pub-good-2); GOOD3=$(digest pub-good-3); GOOD4=$(digest pub-good-4)
UNPUB=$(digest pub-unpublished)

ns=$(new_namespace published)
deployment "$ns" kfm-api "$REPO@$GOOD"
published_index "$ns" kfm-index
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
e2e_secret "$token"
kubectl -n "$ns" create secret generic smoke-token --from-literal=token="$token" >/dev/null
printf '%s' "$token" > "$E2E_DIR/token"
"$MEMBRANE_DOUBLE" --listen 127.0.0.1:0 --namespace "$ns" --deployment kfm-api --container api \
  --token-file "$E2E_DIR/token" --behaviour "$GOOD=good" --behaviour "$GOOD2=good" --behaviour "$GOOD3=good" \
  --behaviour "$GOOD4=good" --behaviour "$UNPUB=unpublished" >"$E2E_DIR/double.out" 2>"$E2E_DIR/double.log" &
E2E_PIDS+=($!)
eventually 10 grep -q listening "$E2E_DIR/double.out"
url=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$E2E_DIR/double.out")

verified_release() { # digest [extra verification fields, indented 4 spaces]
  release "$ns" kfm-api kfm-api "$1" "  verification:
    baseURL: \"$url\"
    authSecretRef: {name: smoke-token, key: token}
    timeoutSeconds: 2
    evidenceRefs: [{type: stac_item, id: wells-2026-03}]
    focusQuestion: \"Which wells were sampled in March 2026?\"
    restrictedDatasetID: kfm.sacred-sites
    publishedIndex: kfm-index
${2:-}" | grep -v '^$' >/dev/null
}
gen() { jp "$ns" gar/kfm-api '{.metadata.generation}'; }
settled() { # generation phase...
  local got; got=$(jp "$ns" gar/kfm-api '{.status.observedGeneration} {.status.phase}')
  for p in "${@:2}"; do [ "$got" = "$1 $p" ] && return 0; done
  echo "got $got"; return 1
}
result_of() { # check field
  kubectl -n "$ns" get gar kfm-api -o json | python3 -c "
import json,sys
r=[x for x in json.load(sys.stdin)['status']['verification']['results'] if x['name']=='$1']
print(r[0].get('$2','') if r else 'absent')"
}
image() { jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'; }

say "the default checks include published-only: a good digest whose every version is promoted passes"
verified_release "$GOOD2"
check "Succeeded" eventually 90 settled "$(gen)" Succeeded
check "published-only passed" equals True result_of published-only passed
check "  its message names the index it read" bash -c "kubectl -n $ns get gar kfm-api -o json | grep -q 'every one published in ConfigMap $ns/kfm-index'"
check "the index ConfigMap carries the label DatasetPromotion writes" equals membrane \
  jp "$ns" configmap/kfm-index '{.metadata.labels.app\.kubernetes\.io/managed-by}'

say "a digest that serves a version never promoted fails published-only (UnpublishedData) and is rolled back"
verified_release "$UNPUB"
check "RolledBack" eventually 120 settled "$(gen)" RolledBack
check "lastRollback.trigger UnpublishedData" equals UnpublishedData jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "lastRollback.message names published-only and the unpublished version" bash -c \
  "kubectl -n $ns get gar kfm-api -o jsonpath='{.status.lastRollback.message}' | grep 'check published-only failed' | grep -q 'kfm.hydrology.wells@2026-04-01.1 (the index publishes 2026-03-01.1)'"
check "the Deployment is back on the good digest" equals "$REPO@$GOOD2" image
check "the rolled-back version passed published-only again" equals True result_of published-only passed
check "a TriggerFired Event" eventually 10 has_event "$ns" kfm-api TriggerFired
check "  the TriggerFired Event says UnpublishedData" bash -c \
  "kubectl -n $ns get events --field-selector involvedObject.name=kfm-api,reason=TriggerFired -o jsonpath='{.items[*].message}' | grep -q 'UnpublishedData: '"

say "without a published index, published-only fails closed: rolled back, and the rolled-back version fails it too"
kubectl -n "$ns" delete configmap kfm-index >/dev/null
verified_release "$GOOD3"
check "Failed" eventually 150 settled "$(gen)" Failed
check "Stalled=True RollbackVerificationFailed" condition_is "$ns" kfm-api Stalled True RollbackVerificationFailed
check "lastRollback.trigger UnpublishedData" equals UnpublishedData jp "$ns" gar/kfm-api '{.status.lastRollback.trigger}'
check "published-only failed" equals False result_of published-only passed
check "  saying there is no published index, and what to do" bash -c "kubectl -n $ns get gar kfm-api -o json | python3 -c '
import json,sys
r=[x for x in json.load(sys.stdin)[\"status\"][\"verification\"][\"results\"] if x[\"name\"]==\"published-only\"][0]
sys.exit(0 if r[\"message\"].startswith(\"no published index: ConfigMap $ns/kfm-index (spec.verification.publishedIndex) does not exist; promote the datasets with DatasetPromotion, or remove published-only\") and r[\"trigger\"]==\"UnpublishedData\" else 1)'"
check "  the other checks passed" equals "9" bash -c "kubectl -n $ns get gar kfm-api -o json | python3 -c '
import json,sys; print(sum(1 for x in json.load(sys.stdin)[\"status\"][\"verification\"][\"results\"] if x[\"passed\"]))'"
check "the Deployment is not left on the new digest" equals "$REPO@$GOOD2" image

say "a checks list without published-only needs no index"
verified_release "$GOOD4" "    checks: [health, ready, datasets, stac-collections, stac-items, evidence-resolve, focus-ask, lineage, public-restriction]"
check "Succeeded" eventually 90 settled "$(gen)" Succeeded
check "published-only did not run" equals absent result_of published-only passed
check "the Deployment runs the new digest" equals "$REPO@$GOOD4" image

say "the index back: the default checks pass again"
published_index "$ns" kfm-index
verified_release "$GOOD2"
check "Succeeded" eventually 90 settled "$(gen)" Succeeded
check "published-only passed" equals True result_of published-only passed

say "metrics"
check "verification_failures_total{check=published-only}: the unpublished version, and the release and its rollback without an index" \
  equals 3 operator_metric main 'membrane_verification_failures_total{check="published-only"}'
check "rollbacks_total{trigger=UnpublishedData}: two rollbacks" \
  equals 2 operator_metric main 'membrane_rollbacks_total{trigger="UnpublishedData"}'
at_least() { # want command...
  local want=$1 got; shift
  got=$("$@") || return 1
  [ "${got%.*}" -ge "$want" ] || { echo "want at least $want, got $got"; return 1; }
}
check "verification_check_duration_seconds{check=published-only} observed each of the six runs at least" \
  at_least 6 operator_metric main 'membrane_verification_check_duration_seconds_count{check="published-only"}'
