#!/usr/bin/env bash
# Builds OPA (pinned) from the Go module proxy into a cache outside the
# repository, for the PolicyBundle e2e (`opa build` makes and signs the test
# bundles; `opa run --server` answers the decision tests). It shares the Go
# module cache with the control-plane and helm builds (the go command's default
# GOMODCACHE). Nothing is rebuilt when the binary is already there. Prints the
# path of the opa binary.
set -euo pipefail

OPA_VERSION=v1.22.4   # its go.mod asks for go 1.26.0 and has no replace directives
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
bin="$cache/bin/opa-$OPA_VERSION"

if [ ! -x "$bin/opa" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "opa.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  # OPA's go.mod asks for go 1.26.0; an older local Go (GOTOOLCHAIN=local here)
  # would refuse it, so this build alone then uses a newer toolchain from the proxy
  have=$(go env GOVERSION); have=${have#go}
  if [ "$(printf '%s\n' 1.26.0 "$have" | sort -V | head -1)" != 1.26.0 ]; then
    export GOTOOLCHAIN=go1.27.3
  fi
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building opa $OPA_VERSION into $bin; the first time takes several minutes" >&2
  # OPA's version string is in its source (v1/version), so no -X is needed.
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
    "github.com/open-policy-agent/opa@$OPA_VERSION"
  mv -f "$tmp/opa" "$bin/opa"
fi
echo "$bin/opa"
