#!/usr/bin/env bash
# Line coverage per module of controller/: builds with gcov instrumentation
# (--coverage, with atomic counters: the operator is threaded) in its own
# build directory, runs the unit tests (with --integration also the
# integration tests, against the cluster $KUBECONFIG names), and prints a
# table of the lines each module's tests ran, from lcov.
# Every file of the library counts, also those no test loads (lcov's initial
# capture gives them zero), so a module no test touches reads 0%, not nothing.
#
#   hack/coverage.sh                        unit tests only
#   hack/coverage.sh --integration          unit and integration tests (needs KUBECONFIG)
#   hack/coverage.sh --integration REGEX    unit tests and the integration tests whose names match
#
# MEMBRANE_COVERAGE_DIR is the build directory (build-coverage), JOBS the
# parallelism (2). The lcov tracefile is left at $dir/coverage.info, and
# `genhtml -o DIR $dir/coverage.info` makes pages of it.
set -euo pipefail
cd "$(dirname "$0")/.."

integration=false
only=""
case "${1:-}" in
  "") ;;
  --integration) integration=true; only=${2:-} ;;
  *) echo "usage: hack/coverage.sh [--integration [REGEX]]" >&2; exit 2 ;;
esac
if $integration; then
  [ -n "${KUBECONFIG:-}" ] || {
    echo "coverage.sh: --integration needs a cluster: KUBECONFIG is not set (eval \"\$(hack/cluster.sh env)\")" >&2
    exit 2
  }
fi

bash hack/setup.sh
dir=${MEMBRANE_COVERAGE_DIR:-build-coverage}
jobs=${JOBS:-2}

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMEMBRANE_SANITIZE=OFF \
  -DCMAKE_C_FLAGS="--coverage -fprofile-update=atomic" -DCMAKE_EXE_LINKER_FLAGS="--coverage" >/dev/null
ninja -C "$dir" -j"$jobs" >/dev/null

lcov --quiet --zerocounters --directory "$dir"
lcov --quiet --capture --initial --directory "$dir" --output-file "$dir/base.info" 2>/dev/null
labels=unit
status=0
ctest --test-dir "$dir" -L unit -j"$jobs" --output-on-failure >"$dir/coverage-ctest.log" 2>&1 || status=$?
if $integration; then
  labels='unit and integration'
  # one at a time: they share the cluster
  ctest --test-dir "$dir" -L integration ${only:+-R "$only"} --output-on-failure >>"$dir/coverage-ctest.log" 2>&1 ||
    status=$?
fi
grep -E 'tests passed|tests failed' "$dir/coverage-ctest.log" || tail -n 5 "$dir/coverage-ctest.log"
lcov --quiet --capture --directory "$dir" --output-file "$dir/tests.info" 2>/dev/null
lcov --quiet --add-tracefile "$dir/base.info" --add-tracefile "$dir/tests.info" --output-file "$dir/all.info"
lcov --quiet --extract "$dir/all.info" "$PWD/controller/*" --output-file "$dir/coverage.info"

# SF: a source file, LF: its instrumented lines, LH: those that ran
awk -v root="$PWD/controller/" -v tests="$labels" '
  /^SF:/ { f = substr($0, 4); sub("^" root, "", f); m = (f ~ /\//) ? f : "main.c"; sub("/.*", "", m) }
  /^LF:/ { found[m] += substr($0, 4); tf += substr($0, 4) }
  /^LH:/ { hit[m] += substr($0, 4); th += substr($0, 4) }
  END {
    printf "\nline coverage of controller/ by the %s tests\n\n", tests
    printf "| %-16s | %7s | %7s | %6s |\n", "module", "lines", "run", "cover"
    printf "|%s|%s|%s|%s|\n", "------------------", "---------", "---------", "--------"
    n = 0
    for (m in found) names[++n] = m
    for (i = 2; i <= n; i++)  # insertion sort: awk has no portable sort
      for (j = i; j > 1 && names[j - 1] > names[j]; j--) { t = names[j]; names[j] = names[j - 1]; names[j - 1] = t }
    for (i = 1; i <= n; i++) {
      m = names[i]
      printf "| %-16s | %7d | %7d | %5.1f%% |\n", (m == "main.c" ? "main.c" : m "/"), found[m], hit[m],
             found[m] ? 100 * hit[m] / found[m] : 0
    }
    printf "| %-16s | %7d | %7d | %5.1f%% |\n", "all", tf, th, tf ? 100 * th / tf : 0
  }' "$dir/coverage.info"

if [ "$status" -ne 0 ]; then
  echo "coverage.sh: some tests failed (see $dir/coverage-ctest.log); the figures count what ran" >&2
fi
exit "$status"
