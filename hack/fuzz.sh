#!/usr/bin/env bash
# Builds the libFuzzer targets of test/fuzz with clang (build-fuzz/, MEMBRANE_FUZZ=ON) and runs
# each for SECONDS (default 60) from its committed seeds in test/fuzz/corpus/<name>/. Inputs
# the fuzzer finds go to build-fuzz/fuzz/<name>/corpus/ (kept between runs, so longer runs
# build on shorter ones), never to the committed corpus. Exits 1 if any target crashes, leaks,
# hangs or runs out of memory, naming the file that reproduces it:
#   build-fuzz/fuzz_<name> <that file>
#
#   hack/fuzz.sh [SECONDS] [NAME...]     e.g. hack/fuzz.sh 3600, hack/fuzz.sh 60 watch status
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
cd "$repo"

seconds=${1:-60}
shift || true
case $seconds in
  '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, not \"$seconds\"" >&2; exit 2 ;;
esac
jobs=${MEMBRANE_JOBS:-$(nproc)}
[ "$jobs" -gt 2 ] && jobs=2

names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for src in test/fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    names+=("${n#fuzz_}")
  done
fi
for n in "${names[@]}"; do
  if [ ! -f "test/fuzz/fuzz_$n.c" ]; then
    echo "fuzz: no target \"$n\" (test/fuzz/fuzz_$n.c does not exist)" >&2
    exit 2
  fi
done

if ! command -v clang >/dev/null; then
  echo "fuzz: clang is not installed; run hack/setup.sh" >&2
  exit 2
fi
CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEMBRANE_FUZZ=ON >/dev/null
ninja -C build-fuzz -j"$jobs" fuzz >/dev/null

export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for n in "${names[@]}"; do
  work="build-fuzz/fuzz/$n"
  mkdir -p "$work/corpus" "$work/artifacts" "$work/tmp"
  log="$work/last-run.log"
  seeds="test/fuzz/corpus/$n"
  [ -d "$seeds" ] || seeds=""
  # -timeout: one input taking longer is a hang; -rss_limit_mb: a leak or blow-up is an OOM
  rc=0
  TMPDIR="$repo/$work/tmp" "build-fuzz/fuzz_$n" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$work/artifacts/" \
    "$work/corpus" ${seeds:+"$seeds"} </dev/null >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  inputs=$(find "$work/corpus" -type f | wc -l)
  if [ "$rc" -eq 0 ]; then
    printf 'fuzz_%s: %s runs in %ss (%s exec/s), %s inputs in %s, no crash\n' \
      "$n" "${runs:-?}" "$seconds" "${speed:-?}" "$inputs" "$work/corpus"
    continue
  fi
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  echo "fuzz_$n: FAILED (exit $rc) after ${runs:-?} runs; the log is $log"
  grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 || true
  if [ -n "$crash" ]; then
    echo "fuzz_$n: reproduce with: build-fuzz/fuzz_$n $crash"
  else
    tail -20 "$log"
  fi
  failed+=("$n")
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${failed[*]} failed" >&2
  exit 1
fi
