# Shared by the integration test scripts (test_*.sh), which source it first:
# they run from the repository's root, count their checks with ok and fail,
# and end with finish, which prints the summary and fails the script when a
# check failed. need_cluster NAME stops NAME at once without an admin
# KUBECONFIG and kubectl. $tmp is a scratch directory, and the namespaces a
# script adds to "namespaces" are deleted on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

passed=0
failed=0
failures=()
tmp=$(mktemp -d)
namespaces=()
on_exit() {
  [ ${#namespaces[@]} -eq 0 ] || kubectl delete namespace "${namespaces[@]}" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap on_exit EXIT
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1"; [ -z "${2:-}" ] || printf '     %s\n' "$2"; }

need_cluster() {
  [ -n "${KUBECONFIG:-}" ] || { echo "FAIL $1: KUBECONFIG is not set (run under hack/test.sh or eval \"\$(hack/cluster.sh env)\")"; exit 1; }
  command -v kubectl >/dev/null || { echo "FAIL $1: kubectl is not on PATH"; exit 1; }
}

# install_crds: the CRDs applied server-side, each Established and served
install_crds() {
  local crd
  if kubectl apply --server-side --force-conflicts -f crds/ >"$tmp/out" 2>&1; then
    ok "kubectl apply --server-side -f crds/"
  else
    fail "kubectl apply --server-side -f crds/" "$(cat "$tmp/out")"
  fi
  for crd in governedapireleases policybundles datasetpromotions; do
    if kubectl wait --for=condition=Established "crd/$crd.governance.kfm.dev" --timeout=60s >/dev/null 2>&1; then
      ok "$crd.governance.kfm.dev is Established"
    else
      fail "$crd.governance.kfm.dev is Established"
    fi
  done
  # discovery may lag a moment behind Established
  for _ in $(seq 1 30); do kubectl get gar,pb,dp -A >/dev/null 2>&1 && break; sleep 1; done
}

finish() {
  echo
  echo "$passed passed, $failed failed"
  if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
    exit 1
  fi
}
