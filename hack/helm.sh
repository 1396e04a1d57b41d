#!/usr/bin/env bash
# Builds helm (v3, pinned) from the Go module proxy into a cache outside the
# repository, for the chart tests (helm lint, helm template). Nothing is rebuilt
# when the binary is already there. Prints the path of the helm binary.
set -euo pipefail

HELM_VERSION=v3.22.0   # helm's go.mod has no replace directives, so `go install` works
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
bin="$cache/bin/helm-$HELM_VERSION"

if [ ! -x "$bin/helm" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "helm.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building helm $HELM_VERSION into $bin; the first time takes a few minutes" >&2
  # helm reads its version from internal/version; without this `helm version` says v3.x-dev.
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv -f "$tmp/helm" "$bin/helm"
fi
echo "$bin/helm"
