#!/usr/bin/env bash
# GitOps for real: Flux's source-controller and kustomize-controller (built
# pinned by hack/flux.sh) run as processes against the local control plane and
# sync a Git repository served over HTTP on loopback (hack/gitserver, git's own
# http-backend) holding the kfm-api Deployment and its GovernedAPIRelease. A
# Kustomization with wait: true health-checks them with kstatus on our
# conditions.
#
# Each setup runs the same story: a commit with a good digest (the release
# succeeds, and only then is the Kustomization Ready); a commit with a
# crash-looping digest (rolled back; the Kustomization's health check fails
# naming the release; the Deployment stays on the good digest through at least
# three Flux intervals, its generation unchanged); a `git revert` (a GitOps
# revert: Succeeded without a rollout, the Kustomization Ready again). Setups:
#   - the Deployment carries kustomize.toolkit.fluxcd.io/ssa: IfNotPresent,
#     written here;
#   - the Deployment and Kustomization blocks of docs/install.md ("Flux"),
#     extracted from the page, so the page is this test's input.
# And the setup that fights: the Deployment applied by Flux with its image,
# nothing ignored. Flux takes the image back on its next interval; membrane
# says so (Stalled=True reason ConflictingManager naming kustomize-controller,
# a Warning Event) and stops rolling, instead of patching again and again.
#
# E2E_GITOPS_OBSERVE=1 adds, to the setup that fights, a crash-looping digest
# with its timeline printed (what happens, not asserted).
#
# Timings are printed, never asserted: commit -> release Ready, commit ->
# Kustomization Ready.
#
# Needs MEMBRANE_FLUX_DIR (hack/flux.sh prints it) and git; the Git server is
# built by hack/gotool.sh gitserver (cached).
source "$(dirname "$0")/lib.sh"

INTERVAL=5 # seconds: the GitRepository's and the Kustomization's interval
REPO=registry.kfm.local/kfm-api
BASE=$(digest gitops-base) # the image the Deployment is created with from Git
GOOD=$(digest gitops-good)
BAD=$(digest_crashloop gitops)

flux_dir=${MEMBRANE_FLUX_DIR:-}
if [ -z "$flux_dir" ] || [ ! -x "$flux_dir/source-controller" ] || [ ! -x "$flux_dir/kustomize-controller" ] ||
  ! ls "$flux_dir"/crds/*.yaml >/dev/null 2>&1; then
  echo "test_gitops: cannot see Flux: MEMBRANE_FLUX_DIR='$flux_dir' must be the directory hack/flux.sh prints" \
    "(source-controller, kustomize-controller and crds/); run MEMBRANE_FLUX_DIR=\$(bash hack/flux.sh)"
  E2E_FAILED=$((E2E_FAILED + 1))
  exit 1
fi
command -v git >/dev/null || { echo "test_gitops: git is not installed (hack/setup.sh installs it)"; exit 1; }
GITSERVER=${MEMBRANE_GITSERVER:-$(bash "$E2E_ROOT/hack/gotool.sh" gitserver)}

now_ms() { date +%s%3N; }

install_operator_rbac
good_api_start
operator_start

say "Flux: source-controller and kustomize-controller against the local control plane, a Git server on loopback"
kubectl apply --server-side -f "$flux_dir/crds/" >/dev/null
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null
kubectl create namespace flux-system >/dev/null 2>&1 || true
mkdir -p "$E2E_DIR/git" "$E2E_DIR/flux-storage"
"$GITSERVER" -root "$E2E_DIR/git" >"$E2E_DIR/gitserver.out" 2>"$E2E_DIR/gitserver.log" &
E2E_PIDS+=("$!")
eventually 10 grep -q listening "$E2E_DIR/gitserver.out"
GIT_URL=$(sed -n 's/.*listening on \(http[^ ]*\).*/\1/p' "$E2E_DIR/gitserver.out")
storage_port=$(free_port)
RUNTIME_NAMESPACE=flux-system "$flux_dir/source-controller" \
  --storage-path "$E2E_DIR/flux-storage" --storage-addr "127.0.0.1:$storage_port" \
  --storage-adv-addr "127.0.0.1:$storage_port" --enable-leader-election=false \
  --metrics-addr "127.0.0.1:$(free_port)" --health-addr "127.0.0.1:$(free_port)" --events-addr "" \
  >"$E2E_DIR/source-controller.log" 2>&1 &
E2E_PIDS+=("$!")
RUNTIME_NAMESPACE=flux-system "$flux_dir/kustomize-controller" \
  --enable-leader-election=false --metrics-addr "127.0.0.1:$(free_port)" \
  --health-addr "127.0.0.1:$(free_port)" --events-addr "" \
  >"$E2E_DIR/kustomize-controller.log" 2>&1 &
E2E_PIDS+=("$!")
E2E_OPERATOR_LOGS+=("$E2E_DIR/source-controller.log" "$E2E_DIR/kustomize-controller.log")

# git_commit REPO MESSAGE: commits everything in the repository; prints the commit's SHA
git_commit() {
  git -C "$1" add -A >/dev/null
  git -C "$1" -c user.name=e2e -c user.email=e2e@kfm.local commit -q -m "$2" >/dev/null
  git -C "$1" rev-parse HEAD
}

# write_release REPO DIGEST: the release, as a platform team keeps it in Git
write_release() {
  release_yaml kfm-api kfm-api "$REPO" "$2" "CHG-gitops-$2" "observationSeconds: 2, progressDeadlineSeconds: 120" \
    "  verification: {checks: [health, ready], baseURL: \"$E2E_GOOD_URL\"}" >"$1/release.yaml"
}

# deployment_plain: the kfm-api Deployment with its image, nothing ignored
deployment_plain() { deployment_yaml kfm-api "$REPO@$BASE" 2; }

# deployment_ifnotpresent: the same, created by Flux and then left to membrane
deployment_ifnotpresent() {
  deployment_plain | sed 's|^metadata: {name: kfm-api}|metadata:\n  name: kfm-api\n  annotations: {kustomize.toolkit.fluxcd.io/ssa: IfNotPresent}|'
}

# docs_block NAME: the YAML block of docs/install.md that follows <!-- gitops-e2e: NAME -->
docs_block() {
  awk -v m="<!-- gitops-e2e: $1 -->" '
    $0 == m {found = 1; next}
    found && /^```yaml/ {inside = 1; next}
    inside && /^```/ {exit}
    inside {print}' "$E2E_ROOT/docs/install.md"
}

# deployment_docs: the page's Deployment, with this test's image and without its namespace
deployment_docs() {
  docs_block deployment | sed -e "s|image: .*|image: \"$REPO@$BASE\"|" -e '/^  namespace: /d'
}

# kustomization_docs NS: the page's Kustomization in NS, with this test's interval, path and source
kustomization_docs() {
  docs_block kustomization | sed -e "s|^  namespace: .*|  namespace: $1|" -e "s|^  interval: .*|  interval: ${INTERVAL}s|" \
    -e "s|^  retryInterval: .*|  retryInterval: ${INTERVAL}s|" -e "s|^  timeout: .*|  timeout: 3m|" \
    -e "s|^  path: .*|  path: ./|" -e "s|^  targetNamespace: .*|  targetNamespace: $1|" \
    -e "s|^  name: .*|  name: kfm|" -e "s|^    name: kfm-gitops|    name: kfm|"
}

# kustomization_plain NS: the Kustomization this test writes itself
kustomization_plain() {
  cat <<EOF
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {name: kfm, namespace: $1}
spec:
  interval: ${INTERVAL}s
  retryInterval: ${INTERVAL}s
  timeout: 3m
  path: ./
  prune: true
  wait: true
  targetNamespace: $1
  sourceRef: {kind: GitRepository, name: kfm}
EOF
}

# gitops_setup NAME DEPLOYMENT_FN KUSTOMIZATION_FN: a repository NAME holding the Deployment and
# the release at BASE, synced into a new namespace (printed in $ns) by a GitRepository and the
# Kustomization; waits for the first sync
gitops_setup() {
  local name=$1
  ns=$(new_namespace "gitops-$name")
  repo="$E2E_DIR/git/$name"
  git init -q -b main "$repo"
  "$2" >"$repo/deployment.yaml"
  write_release "$repo" "$BASE"
  first_sha=$(git_commit "$repo" "kfm-api at the base digest")
  kubectl apply -f - >/dev/null <<EOF
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: kfm, namespace: $ns}
spec:
  interval: ${INTERVAL}s
  url: $GIT_URL/$name
  ref: {branch: main}
EOF
  "$3" "$ns" >"$E2E_DIR/kustomization-$name.yaml"
  check "$name: the Kustomization is accepted" kubectl apply -f "$E2E_DIR/kustomization-$name.yaml"
  check "$name: Flux applies the first commit and it becomes Ready (the release at the base digest succeeded)" \
    eventually 180 kustomization_ready_at "$ns" "$first_sha"
  check "$name: the release Succeeded" phase_is "$ns" kfm-api Succeeded
}

kustomization_ready_at() { # ns sha: Ready=True with that revision applied
  local got
  got=$(kubectl -n "$1" get kustomization kfm -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.lastAppliedRevision}')
  [[ "$got" == "True "*"$2" ]] || { echo "Ready and lastAppliedRevision: $got (want True, $2)"; return 1; }
}
release_ready_for() { # ns digest: Ready=True for the current generation, which is for digest
  local got s o g d
  got=$(kubectl -n "$1" get gar kfm-api -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.observedGeneration} {.metadata.generation} {.spec.image.digest}')
  read -r s o g d <<<"$got"
  [ "$s" = True ] && [ "$o" = "$g" ] && [ "$d" = "$2" ]
}
deploy_image_gen() { jp "$1" deploy/kfm-api '{.spec.template.spec.containers[0].image} {.metadata.generation}'; }

# kustomize_reconciles NS: how many times kustomize-controller has reconciled the Kustomization NS/kfm
kustomize_reconciles() {
  grep -c "\"Kustomization\":{\"name\":\"kfm\",\"namespace\":\"$1\"}" "$E2E_DIR/kustomize-controller.log" || true
}

# race NS SHA DIGEST: polls until the release (at DIGEST) and the Kustomization (at SHA) are both
# Ready; records the first time each was seen (ms since COMMIT_MS) in RELEASE_MS / KUST_MS, and
# fails if the Kustomization was seen Ready at SHA while the release was not Ready at DIGEST
race() {
  local ns=$1 sha=$2 want=$3 i
  RELEASE_MS="" KUST_MS="" EARLY=""
  for i in $(seq 1 400); do
    local r=0 k=0
    release_ready_for "$ns" "$want" && r=1
    kustomization_ready_at "$ns" "$sha" >/dev/null 2>&1 && k=1
    # read again: the release may have become Ready between the two reads
    [ $k = 1 ] && [ $r = 0 ] && ! release_ready_for "$ns" "$want" && EARLY="Kustomization Ready at $sha while the release was not"
    [ $r = 1 ] && [ -z "$RELEASE_MS" ] && RELEASE_MS=$(($(now_ms) - COMMIT_MS))
    [ $k = 1 ] && [ -z "$KUST_MS" ] && KUST_MS=$(($(now_ms) - COMMIT_MS))
    [ -n "$RELEASE_MS" ] && [ -n "$KUST_MS" ] && break
    sleep 0.5
  done
  [ -z "$EARLY" ] || { echo "$EARLY"; return 1; }
  [ -n "$RELEASE_MS" ] && [ -n "$KUST_MS" ] || { echo "release Ready after ${RELEASE_MS:-never} ms, Kustomization after ${KUST_MS:-never} ms"; return 1; }
}

# steady NS WANT N: the Deployment's image and generation stay WANT while kustomize-controller
# reconciles the Kustomization N more times (polled every 0.5 s; at most 120 s)
steady() {
  local ns=$1 want=$2 n=$3 start i got
  start=$(kustomize_reconciles "$ns")
  for i in $(seq 1 240); do
    got=$(deploy_image_gen "$ns")
    [ "$got" = "$want" ] || { echo "the Deployment changed: $got (was $want)"; return 1; }
    [ $(($(kustomize_reconciles "$ns") - start)) -ge "$n" ] && return 0
    sleep 0.5
  done
  echo "kustomize-controller reconciled the Kustomization only $(($(kustomize_reconciles "$ns") - start)) times in 120 s"
  return 1
}

# timeline NS SECONDS: prints each change of the Deployment's image, generation and the
# release's phase and Stalled reason (ms since COMMIT_MS), polling every 0.5 s for SECONDS
timeline() {
  local ns=$1 end=$(($(date +%s) + $2)) last="" cur
  echo "     timeline (ms after the commit: Deployment image, generation | release phase, Stalled reason):"
  while [ "$(date +%s)" -lt "$end" ]; do
    cur="$(jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}' | sed 's/.*@sha256:\(.\{8\}\).*/\1/'), gen $(jp "$ns" deploy/kfm-api '{.metadata.generation}') | $(jp "$ns" gar/kfm-api '{.status.phase}') $(jp "$ns" gar/kfm-api '{.status.conditions[?(@.type=="Stalled")].reason}')"
    [ "$cur" = "$last" ] || { echo "       +$(($(now_ms) - COMMIT_MS)) ms: $cur"; last=$cur; }
    sleep 0.5
  done
  echo "     (base ${BASE:7:8}, good ${GOOD:7:8})"
}

# held NS KEY...: for each Deployment annotation KEY, "<value>@<the field managers holding it>"
held() {
  kubectl -n "$1" get deploy kfm-api --show-managed-fields -o json | python3 -c 'import json, sys
m = json.load(sys.stdin)["metadata"]
print(" ".join(m.get("annotations", {}).get(k, "") + "@" + ",".join(sorted(e["manager"] for e in m.get("managedFields", [])
    if "f:" + k in e.get("fieldsV1", {}).get("f:metadata", {}).get("f:annotations", {}))) for k in sys.argv[1:]))' "${@:2}"
}

# the story every working setup must tell
gitops_story() {
  local name=$1
  say "$name: a commit with a good digest"
  write_release "$repo" "$GOOD"
  COMMIT_MS=$(now_ms)
  good_sha=$(git_commit "$repo" "kfm-api: roll to the good digest")
  check "$name: the release succeeds, and the Kustomization is Ready at the commit only after it" race "$ns" "$good_sha" "$GOOD"
  echo "     timings: commit -> release Ready ${RELEASE_MS} ms, commit -> Kustomization Ready ${KUST_MS} ms"
  check "$name: the Deployment runs the good digest" equals "$REPO@$GOOD" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
  check "$name: ... on every replica" eventually 30 equals 2 jp "$ns" deploy/kfm-api '{.status.availableReplicas}'
  check "$name: the Deployment still runs it after three more Flux intervals" steady "$ns" "$(deploy_image_gen "$ns")" 3
  check "$name: the rollback record of the rollout patch stays, held by membrane's field manager alone" \
    equals "$(jp "$ns" gar/kfm-api '{.status.rollbackImage}')@membrane $(jp "$ns" gar/kfm-api '{.status.releaseID}')@membrane" \
    held "$ns" governance.kfm.dev/rollback-image governance.kfm.dev/rollback-for

  say "$name: a commit with a crash-looping digest"
  write_release "$repo" "$BAD"
  COMMIT_MS=$(now_ms)
  bad_sha=$(git_commit "$repo" "kfm-api: roll to a digest that crash-loops")
  check "$name: the release is rolled back" eventually 120 phase_is "$ns" kfm-api RolledBack
  echo "     timing: commit -> release RolledBack $(($(now_ms) - COMMIT_MS)) ms"
  check "$name: the Kustomization's health check fails, naming the release" eventually 120 bash -c \
    "kubectl -n $ns get kustomization kfm -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].message}' | tee /dev/stderr | grep -q '^False .*GovernedAPIRelease/$ns/kfm-api'"
  check "$name: the Deployment is back on the good digest" equals "$REPO@$GOOD" jp "$ns" deploy/kfm-api '{.spec.template.spec.containers[0].image}'
  check "$name: image and generation stay as they are through three Flux intervals (no fight, no flapping)" \
    steady "$ns" "$(deploy_image_gen "$ns")" 3
  check "$name: the rollback patch's record stays, held by membrane's field manager alone" \
    equals "$REPO@$BAD@membrane CrashLoop@membrane" \
    held "$ns" governance.kfm.dev/rolled-back-from governance.kfm.dev/rollback-trigger
  check "$name: no ConflictingManager Event" bash -c "! kubectl -n $ns get events --field-selector reason=ConflictingManager -o name | grep -q ."

  say "$name: git revert"
  local gen
  gen=$(jp "$ns" deploy/kfm-api '{.metadata.generation}')
  git -C "$repo" -c user.name=e2e -c user.email=e2e@kfm.local revert --no-edit HEAD >/dev/null
  revert_sha=$(git -C "$repo" rev-parse HEAD)
  COMMIT_MS=$(now_ms)
  check "$name: the release succeeds and the Kustomization is Ready at the revert, only after it" race "$ns" "$revert_sha" "$GOOD"
  echo "     timings: revert -> release Ready ${RELEASE_MS} ms, revert -> Kustomization Ready ${KUST_MS} ms"
  check "$name: a GitOps revert: the last two receipts RolledBack, Succeeded" equals "RolledBack Succeeded" \
    jp "$ns" gar/kfm-api '{.status.history[-2:].outcome}'
  check "$name: without a new rollout (the Deployment's generation is unchanged)" equals "$gen" \
    jp "$ns" deploy/kfm-api '{.metadata.generation}'
  check "$name: no RolloutStarted Event for the revert" equals 2 bash -c \
    "kubectl -n $ns get events --field-selector involvedObject.name=kfm-api,reason=RolloutStarted -o name | wc -l"
}

start_ms=$(now_ms)
say "the setup that fights: Flux applies the Deployment with its image, nothing ignored"
gitops_setup fight deployment_plain kustomization_plain
write_release "$repo" "$GOOD"
good_sha=$(git_commit "$repo" "kfm-api: roll to the good digest")
COMMIT_MS=$(now_ms)
check "fight: membrane starts the rollout (Event RolloutStarted)" eventually 60 has_event "$ns" kfm-api RolloutStarted
# what happens, printed: every change of the Deployment's image and generation and of the release's phase
timeline "$ns" 45
check "fight: Flux takes the image back and membrane says so: Stalled=True ConflictingManager naming kustomize-controller" \
  eventually 120 bash -c "kubectl -n $ns get gar kfm-api -o 'jsonpath={.status.conditions[?(@.type==\"Stalled\")].status} {.status.conditions[?(@.type==\"Stalled\")].reason} {.status.conditions[?(@.type==\"Stalled\")].message}' | grep -q '^True ConflictingManager .*kustomize-controller'"
check "fight: a Warning Event ConflictingManager" eventually 10 has_event "$ns" kfm-api ConflictingManager
kubectl -n "$ns" get gar kfm-api -o 'jsonpath={.status.conditions[?(@.type=="Stalled")].message}' | sed 's/^/     /'
echo
check "fight: membrane no longer patches: the Deployment stays as Flux left it through three Flux intervals" \
  steady "$ns" "$(deploy_image_gen "$ns")" 3
check "fight: the Kustomization's health check fails, naming the release" eventually 120 bash -c \
  "kubectl -n $ns get kustomization kfm -o 'jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].message}' | grep -q '^False .*GovernedAPIRelease/$ns/kfm-api'"
if [ -n "${E2E_GITOPS_OBSERVE:-}" ]; then
  # E2E_GITOPS_OBSERVE=1: also a crash-looping digest in the setup that fights, printed only
  say "fight (observed, not asserted): a commit with a crash-looping digest"
  write_release "$repo" "$BAD"
  COMMIT_MS=$(now_ms)
  git_commit "$repo" "kfm-api: roll to a digest that crash-loops" >/dev/null
  timeline "$ns" 60
  kubectl -n "$ns" get events --sort-by=.lastTimestamp | tail -30 | sed 's/^/     /'
fi
kubectl delete namespace "$ns" --wait=false >/dev/null

say "the setup of this test: the Deployment with kustomize.toolkit.fluxcd.io/ssa: IfNotPresent"
gitops_setup ifnotpresent deployment_ifnotpresent kustomization_plain
gitops_story ifnotpresent

say "the setup docs/install.md recommends, taken from the page"
check "docs/install.md has the Deployment and Kustomization blocks" bash -c \
  "[ -n \"\$(sed -n '/<!-- gitops-e2e: deployment -->/p' '$E2E_ROOT/docs/install.md')\" ] && [ -n \"\$(sed -n '/<!-- gitops-e2e: kustomization -->/p' '$E2E_ROOT/docs/install.md')\" ]"
gitops_setup docs deployment_docs kustomization_docs
gitops_story docs
echo "     the whole file: $(($(now_ms) - start_ms)) ms"
