#!/usr/bin/env bash
# Runs an e2e scenario with the static membrane hack/static.sh builds, so the
# binary the image ships is proven against the local control plane, not only
# built (ctest e2e_static runs e2e/test_release.sh through this).
#   MEMBRANE_STATIC_BIN=build-static/membrane bash e2e/static.sh e2e/test_release.sh
set -euo pipefail

scenario=${1:?usage: static.sh e2e/test_<topic>.sh}
bin=${MEMBRANE_STATIC_BIN:-}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
  echo "FAIL e2e_static: no static membrane at '${bin}' (MEMBRANE_STATIC_BIN): build it with hack/static.sh" >&2
  exit 1
fi
# a static executable asks for no program interpreter and no shared library
if ! command -v readelf >/dev/null; then
  echo "FAIL e2e_static: readelf (binutils) is not installed, so $bin cannot be seen to be static" >&2
  exit 1
fi
if readelf -lW "$bin" | grep -q 'program interpreter' || readelf -dW "$bin" | grep -q NEEDED; then
  echo "FAIL e2e_static: $bin is not statically linked: $(readelf -dW "$bin" | grep NEEDED | tr -s ' ')" >&2
  exit 1
fi
grep -qx 'linked: static' < <("$bin" version) || {
  echo "FAIL e2e_static: \`$bin version\` does not say \"linked: static\"" >&2
  exit 1
}
echo "e2e_static: $scenario with the static $bin"
MEMBRANE_BIN=$bin exec bash "$scenario"
