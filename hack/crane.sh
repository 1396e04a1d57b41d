#!/usr/bin/env bash
# Builds go-containerregistry's crane (pinned) from the Go module proxy into a
# cache outside the repository, for hack/image.sh, which assembles membrane's
# image (and the decision-test OPA's) as OCI layouts without a container engine.
# It shares the Go module cache with the other Go builds (the go command's
# default GOMODCACHE). Nothing is rebuilt when the binary is already there.
# Prints the path of the crane binary.
set -euo pipefail

CRANE_VERSION=v0.22.1   # its go.mod asks for go 1.25.0: the local Go builds it
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
bin="$cache/bin/crane-$CRANE_VERSION"

if [ ! -x "$bin/crane" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "crane.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building crane $CRANE_VERSION into $bin; the first time takes a few minutes" >&2
  # one package at a time: the machine is shared with other builds
  CGO_ENABLED=0 GOFLAGS=-p=1 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" \
    "github.com/google/go-containerregistry/cmd/crane@$CRANE_VERSION"
  mv -f "$tmp/crane" "$bin/crane"
fi
echo "$bin/crane"
