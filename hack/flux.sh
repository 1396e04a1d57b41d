#!/usr/bin/env bash
# Builds Flux's source-controller and kustomize-controller (pinned) from the Go
# module proxy into a cache outside the repository, with their CRDs taken from
# the same module versions (config/crd/bases), for the GitOps e2e
# (e2e/test_gitops.sh runs them as processes against the local control plane).
# Each controller is built in a wrapper module of its own that requires it as a
# tool and carries over its go.mod's replace directives (those that point into
# its own repository, ./api, are served as modules of their own and are
# dropped). hack/lib/go.sh finds go and the toolchain and makes the build
# directory. Nothing is rebuilt when the binaries are already there. Prints the directory that holds
# source-controller, kustomize-controller and crds/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

# v1.10.x are on the module proxy, but not all that they require is served
# (github.com/fluxcd/pkg/spiffe v0.2.0, pkg/artifact v0.27.x, pkg/apis/crypto
# v0.5.0, pkg/masktoken v0.10.0, sigstore/cosign/v3 v3.1.4 answer 403 "not
# available"): v1.9.6 is the newest release of both that builds here. Their
# go.mod files ask for go 1.26.0 (a newer one is built with GOTOOLCHAIN below).
SOURCE_CONTROLLER_VERSION=v1.9.6
KUSTOMIZE_CONTROLLER_VERSION=v1.9.6
# Versions their go.mod files require that the module proxy does not serve,
# replaced by the nearest one it does: source-controller asks for
# github.com/fluxcd/pkg/artifact v0.18.3, of which v0.18.0 is served.
extra_replaces() {
  case $1 in
    source-controller) echo "github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0" ;;
    kustomize-controller) ;;
  esac
}
bin="$GO_CACHE_BIN/flux-sc-$SOURCE_CONTROLLER_VERSION-kc-$KUSTOMIZE_CONTROLLER_VERSION"
want=(source-controller kustomize-controller)

have_all() {
  for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done
  ls "$bin"/crds/*.yaml >/dev/null 2>&1
}

if ! have_all; then
  go_find flux.sh
  command -v jq >/dev/null || { echo "flux.sh: jq is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  export CGO_ENABLED=0
  go_build_dir "$bin"
  tmp=$GO_BUILD
  echo "building Flux source-controller $SOURCE_CONTROLLER_VERSION and kustomize-controller $KUSTOMIZE_CONTROLLER_VERSION into $bin; the first time takes a long while" >&2
  mkdir -p "$tmp/crds"
  for b in "${want[@]}"; do
    case $b in
      source-controller) v=$SOURCE_CONTROLLER_VERSION ;;
      kustomize-controller) v=$KUSTOMIZE_CONTROLLER_VERSION ;;
    esac
    mod="github.com/fluxcd/$b"
    w="$tmp/wrap-$b"
    mkdir -p "$w"
    t0=$(date +%s)
    info=$(cd "$w" && go mod download -json "$mod@$v")
    dir=$(jq -r .Dir <<<"$info"); gomod=$(jq -r .GoMod <<<"$info")
    need=$(go mod edit -json "$gomod" | jq -r .Go)
    go_toolchain_for "$need"
    cat >"$w/go.mod" <<EOF
module membrane.invalid/fluxbuild/$b

go $need

tool $mod

require $mod $v
EOF
    # the module's own replace directives, except those into its repository
    go mod edit -json "$gomod" |
      jq -r '.Replace // [] | .[] | select(.New.Version != null) |
             "-replace=\(.Old.Path)\(if .Old.Version then "@"+.Old.Version else "" end)=\(.New.Path)@\(.New.Version)"' |
      while read -r r; do (cd "$w" && go mod edit "$r"); done
    for r in $(extra_replaces "$b"); do (cd "$w" && go mod edit -replace="$r"); done
    # -e: the tests of its packages import test servers the proxy may not serve; the build
    # below fails, naming the module, if a package it compiles lacks one
    (cd "$w" && go mod tidy -e >/dev/null 2>"$tmp/tidy-$b.log")
    if grep -q 'not available' "$tmp/tidy-$b.log"; then
      echo "flux.sh: $b: $(grep -c 'not available' "$tmp/tidy-$b.log") imports of its tests are not served; the controller does not need them" >&2
    fi
    t1=$(date +%s)
    (cd "$w" && go build -trimpath -ldflags "-s -w" -o "$tmp/$b" "$mod")
    t2=$(date +%s)
    cp "$dir"/config/crd/bases/*.yaml "$tmp/crds/"
    chmod u+w "$tmp/crds/"*.yaml
    echo "flux.sh: $b $v: download $((t1 - t0))s, compile $((t2 - t1))s" >&2
  done
  rm -rf "$bin/crds"
  mv -f "$tmp/crds" "$bin/crds"
  for b in "${want[@]}"; do mv -f "$tmp/$b" "$bin/$b"; done
fi
echo "$bin"
