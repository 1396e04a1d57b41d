#!/usr/bin/env bash
# Builds Argo Rollouts' controller (pinned) from the Go module proxy into a cache
# outside the repository, for the side-by-side benchmark (hack/bench.sh peers),
# with the CRDs of the same module version beside it (manifests/crds). The
# wrapper module hack/rollouts pins the version and carries the replace
# directives of its go.mod. It shares the Go module cache with the other builds
# (the go command's default GOMODCACHE). Nothing is rebuilt when the binary is
# already there. Prints the directory: rollouts-controller and crds/.
set -euo pipefail

ROLLOUTS_VERSION=v1.10.2   # hack/rollouts/go.mod pins it; its go.mod asks for go 1.26.10
here=$(cd "$(dirname "$0")" && pwd)
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
bin="$cache/bin/argo-rollouts-$ROLLOUTS_VERSION"

if [ ! -x "$bin/rollouts-controller" ] || [ ! -f "$bin/crds/rollout-crd.yaml" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "rollouts.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  # an older local Go (GOTOOLCHAIN=local here) would refuse the module, so this
  # build alone then uses a newer toolchain from the proxy
  have=$(go env GOVERSION); have=${have#go}
  if [ "$(printf '%s\n' 1.26.10 "$have" | sort -V | head -1)" != 1.26.10 ]; then
    export GOTOOLCHAIN=go1.27.3
  fi
  # one package at a time: the machine is shared and the build is large
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-p=1"
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building argo-rollouts $ROLLOUTS_VERSION into $bin; the first time takes a long while" >&2
  v=github.com/argoproj/argo-rollouts/utils/version
  (cd "$here/rollouts" && CGO_ENABLED=0 go build -mod=readonly -trimpath \
    -ldflags "-s -w -X $v.version=${ROLLOUTS_VERSION#v} -X $v.gitTag=$ROLLOUTS_VERSION -X $v.gitTreeState=clean" \
    -o "$tmp/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller)
  src=$(cd "$here/rollouts" && go mod download -json "github.com/argoproj/argo-rollouts@$ROLLOUTS_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$tmp/crds"
  cp "$src"/manifests/crds/*-crd.yaml "$tmp/crds/"
  chmod u+w "$tmp"/crds/*
  rm -rf "$bin/crds"
  mv -f "$tmp/crds" "$bin/crds"
  mv -f "$tmp/rollouts-controller" "$bin/rollouts-controller"
fi
echo "$bin"
