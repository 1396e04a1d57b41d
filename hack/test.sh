#!/usr/bin/env bash
# Runs every membrane test from a fresh machine: installs what is missing,
# builds, runs the unit tests, then, built with ASan+UBSan, the unit,
# integration and e2e tests against a private local control plane (a real
# kube-apiserver), and last the unit tests and the integration test programs
# under valgrind memcheck (the control plane is still up then: the EXIT trap
# stops it). Exits non-zero on the first failure.
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

step "the C sources are formatted as .clang-format says (hack/format.sh fixes them)"
bash hack/format.sh --check

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
bash hack/gotool.sh faultproxy >/dev/null   # for e2e/test_resilience.sh; cached
bash hack/gotool.sh bundleserver >/dev/null # for e2e/test_policy.sh and the demo; cached
# opa build makes the bundles of e2e/test_policy.sh and integration_opa_bundle; opa run is the decision-test OPA
MEMBRANE_OPA=$(bash hack/opa.sh)
export MEMBRANE_OPA
# a real Prometheus scrapes the governed API double and answers the slo check of e2e/test_slo.sh
MEMBRANE_PROMETHEUS=$(bash hack/prometheus.sh)
export MEMBRANE_PROMETHEUS
# the static membrane (e2e_static runs e2e/test_release.sh with it) and the images
# as OCI layouts (integration_image checks them); both cached after the first build
bash hack/static.sh >/dev/null
bash hack/image.sh
bash hack/gotool.sh gitserver >/dev/null    # the Git server of e2e/test_gitops.sh; cached
bash hack/gotool.sh luahealth >/dev/null    # gopher-lua for test_argocd_health.sh; cached
# the image.verify e2e (e2e/test_supply.sh, through e2e/registry.sh): a real registry, cosign
# v2 and v3, and the token server and referrers-API registry helpers; all cached
MEMBRANE_REGISTRY=$(bash hack/registry.sh)
MEMBRANE_COSIGN_V2=$(bash hack/cosign.sh v2)
MEMBRANE_COSIGN_V3=$(bash hack/cosign.sh v3)
export MEMBRANE_REGISTRY MEMBRANE_COSIGN_V2 MEMBRANE_COSIGN_V3
bash hack/gotool.sh registryauth >/dev/null
bash hack/gotool.sh ociregistry >/dev/null
# Flux's source-controller and kustomize-controller and their CRDs, run by e2e/test_gitops.sh
MEMBRANE_FLUX_DIR=$(bash hack/flux.sh)
export MEMBRANE_FLUX_DIR
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
# the torture tests are built only without sanitizers: they passed in the unit step
torture=$(ctest --test-dir build -N -R '^unit_.*_torture' | grep -c 'Test *#' || true)
total=$(( ${total:-0} + torture ))

step "fuzz targets, ${MEMBRANE_FUZZ_SECONDS:-30}s each (longer: hack/fuzz.sh 3600)"
bash hack/fuzz.sh "${MEMBRANE_FUZZ_SECONDS:-30}"

# Runs each program under valgrind memcheck (definite and indirect leaks and
# memory errors fail it; the log is kept next to it in build/). The torture
# tests define malloc themselves (test/support/torture.c): nouserintercepts
# keeps valgrind from replacing theirs, it still sees every block through
# glibc's.
memcheck() {
  local failed=0 t
  for t in "$@"; do
    if ! valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
         --soname-synonyms=somalloc=nouserintercepts --num-callers=30 \
         "$t" > "build/$(basename "$t").valgrind.log" 2>&1; then
      echo "valgrind: $(basename "$t") failed:"; tail -50 "build/$(basename "$t").valgrind.log"; failed=1
    fi
  done
  [ "$failed" -eq 0 ]
}

step "unit tests under valgrind memcheck"
memcheck $(find build -maxdepth 1 -type f -executable -name "unit_*" | sort)

step "integration test programs under valgrind memcheck, against the local control plane"
memcheck $(find build -maxdepth 1 -type f -executable -name "integration_*" | sort)

step "all tests passed"
echo "tests: ${total:-0} passed, 0 failed"
