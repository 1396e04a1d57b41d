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

finish() {
  echo
  echo "$passed passed, $failed failed"
  if [ "$failed" -gt 0 ]; then
    printf 'failed: %s\n' "${failures[@]}"
    exit 1
  fi
}
