#!/usr/bin/env bash
# Runs every membrane test from a fresh machine: installs what is missing,
# builds, runs the unit tests, then, built with ASan+UBSan, the unit,
# integration and e2e tests against a private local control plane (a real
# kube-apiserver), and last the unit tests under valgrind memcheck. Exits
# non-zero on the first failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"
jobs=${MEMBRANE_JOBS:-$(nproc)}
start=$(date +%s)
step() { printf '\n== %s (%ds)\n' "$*" $(( $(date +%s) - start )); }

step "set-up"
bash hack/setup.sh
export PATH=/usr/local/go/bin:$PATH

step "build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C build -j"$jobs"

step "unit tests"
ctest --test-dir build -L unit --output-on-failure -j"$jobs"

step "build with ASan+UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEMBRANE_SANITIZE=ON >/dev/null
ninja -C build-asan -j"$jobs"

step "local control plane"
bash hack/controlplane.sh >/dev/null
bash hack/faultproxy.sh >/dev/null # for e2e/test_resilience.sh; cached
export MEMBRANE_CLUSTER_DIR="$repo/.cache/test-cluster"
bash hack/cluster.sh down >/dev/null 2>&1 || true
rm -rf "$MEMBRANE_CLUSTER_DIR"
trap 'bash hack/cluster.sh down >/dev/null 2>&1 || true' EXIT
bash hack/cluster.sh up
eval "$(bash hack/cluster.sh env)"

step "unit, integration and e2e tests under ASan+UBSan, against the local control plane"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan -L 'unit|integration|e2e' --output-on-failure | tee build-asan/ctest.log
total=$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9]*\).*/\1/p' build-asan/ctest.log | tail -1)

step "fuzz targets, ${MEMBRANE_FUZZ_SECONDS:-30}s each (longer: hack/fuzz.sh 3600)"
bash hack/fuzz.sh "${MEMBRANE_FUZZ_SECONDS:-30}"

step "unit tests under valgrind memcheck"
failed=0
for t in $(find build -maxdepth 1 -type f -executable -name "unit_*" | sort); do
  if ! valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
       "$t" > "build/$(basename "$t").valgrind.log" 2>&1; then
    echo "valgrind: $(basename "$t") failed:"; tail -50 "build/$(basename "$t").valgrind.log"; failed=1
  fi
done
[ "$failed" -eq 0 ]

step "all tests passed"
echo "tests: ${total:-0} passed, 0 failed"
