#!/usr/bin/env bash
# Builds faultproxy (hack/faultproxy: a TLS proxy in front of the API server
# that cuts connections, answers 429 or stops listening on command, for the
# resilience e2e) with the Go toolchain the control plane is built with, into
# a cache outside the repository, keyed by the source's hash: nothing is
# rebuilt while the source is unchanged. Prints the path of the binary.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
src="$here/faultproxy"
key=$(cat "$src/go.mod" "$src"/*.go | sha256sum | cut -c1-12)
bin="$cache/bin/faultproxy-$key"

if [ ! -x "$bin/faultproxy" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "faultproxy.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/faultproxy" .)
  mv -f "$tmp/faultproxy" "$bin/faultproxy"
  # builds of an older source are of no more use
  find "$cache/bin" -maxdepth 1 -name 'faultproxy-*' ! -name "faultproxy-$key" -exec rm -rf {} +
fi
echo "$bin/faultproxy"
