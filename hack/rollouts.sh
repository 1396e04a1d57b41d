#!/usr/bin/env bash
# Builds Argo Rollouts' controller (pinned) from the Go module proxy into a cache
# outside the repository, for the side-by-side benchmark (hack/bench.sh peers),
# with the CRDs of the same module version beside it (manifests/crds), with
# hack/lib/go.sh. The wrapper module hack/rollouts pins the version and carries
# the replace directives of its go.mod. Nothing is rebuilt when the binary is
# already there. Prints the directory: rollouts-controller and crds/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

ROLLOUTS_VERSION=v1.10.2   # hack/rollouts/go.mod pins it; its go.mod asks for go 1.26.10
here=$(cd "$(dirname "$0")" && pwd)
bin="$GO_CACHE_BIN/argo-rollouts-$ROLLOUTS_VERSION"

if [ ! -x "$bin/rollouts-controller" ] || [ ! -f "$bin/crds/rollout-crd.yaml" ]; then
  go_find rollouts.sh
  go_toolchain_for 1.26.10
  go_build_dir "$bin"
  echo "building argo-rollouts $ROLLOUTS_VERSION into $bin; the first time takes a long while" >&2
  v=github.com/argoproj/argo-rollouts/utils/version
  (cd "$here/rollouts" && CGO_ENABLED=0 go build -mod=readonly -trimpath \
    -ldflags "-s -w -X $v.version=${ROLLOUTS_VERSION#v} -X $v.gitTag=$ROLLOUTS_VERSION -X $v.gitTreeState=clean" \
    -o "$GO_BUILD/rollouts-controller" github.com/argoproj/argo-rollouts/cmd/rollouts-controller)
  src=$(cd "$here/rollouts" && go mod download -json "github.com/argoproj/argo-rollouts@$ROLLOUTS_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$GO_BUILD/crds"
  cp "$src"/manifests/crds/*-crd.yaml "$GO_BUILD/crds/"
  chmod u+w "$GO_BUILD"/crds/*
  rm -rf "$bin/crds"
  mv -f "$GO_BUILD/crds" "$bin/crds"
  mv -f "$GO_BUILD/rollouts-controller" "$bin/rollouts-controller"
fi
echo "$bin"
