# Sourced by the scripts that build Go tools into the cache outside the
# repository (hack/opa.sh, prometheus.sh, crane.sh, helm.sh, flux.sh,
# gotool.sh, rollouts.sh): finding go, choosing a newer toolchain for a module that needs
# one, and a build directory inside the cache entry, so that a build that
# fails or is interrupted leaves no half-made binary where a cached one is
# looked for. The builds share the go command's default GOMODCACHE.

GO_CACHE_BIN=${MEMBRANE_CACHE:-$HOME/.cache/membrane}/bin

# go_find SCRIPT: go on PATH (Debian's golang, or /usr/local/go as
# hack/setup.sh installs it); exits naming SCRIPT when there is none
go_find() {
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "$1: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
}

# go_toolchain_for VERSION: a go.mod that asks for a newer Go than the local
# one (GOTOOLCHAIN=local here) is built, in the calling script alone, with a
# newer toolchain from the proxy
go_toolchain_for() {
  local have
  have=$(go env GOVERSION); have=${have#go}
  if [ "$(printf '%s\n' "$1" "$have" | sort -V | head -1)" != "$1" ]; then
    export GOTOOLCHAIN=go1.27.3
  fi
}

# go_build_dir DIR: DIR made if need be and a fresh build directory in it,
# named in GO_BUILD, removed when the script exits
go_build_dir() {
  mkdir -p "$1"
  GO_BUILD=$(mktemp -d "$1/.build.XXXXXX")
  trap 'rm -rf "$GO_BUILD"' EXIT
}

# go_install_pinned NAME VERSION PACKAGE GO [go install flags...]: PACKAGE@VERSION
# (a module without replace directives, whose go.mod asks for GO) installed as
# $GO_CACHE_BIN/NAME-VERSION/NAME unless it is there already; prints its path
go_install_pinned() {
  local name=$1 version=$2 pkg=$3 need=$4
  local bin="$GO_CACHE_BIN/$name-$version"
  shift 4
  if [ ! -x "$bin/$name" ]; then
    go_find "$name.sh"
    go_toolchain_for "$need"
    go_build_dir "$bin"
    echo "building $name $version into $bin; the first time takes minutes" >&2
    CGO_ENABLED=0 GOBIN="$GO_BUILD" go install -trimpath "$@" "$pkg@$version"
    mv -f "$GO_BUILD/$name" "$bin/$name"
  fi
  echo "$bin/$name"
}
