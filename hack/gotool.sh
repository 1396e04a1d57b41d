#!/usr/bin/env bash
# Builds one of the Go test helpers under hack/ by name (a directory with its
# own go.mod and a main package): faultproxy (a TLS proxy in front of the API
# server that breaks the path on command, for the resilience e2e) and
# bundleserver (a loopback HTTPS file server with redirects and a bearer
# token, for the PolicyBundle e2e and the demo), gitserver (git's http-backend
# over HTTP on loopback, for the GitOps e2e) and luahealth (gopher-lua, for
# the Argo CD health scripts' test), registryauth (bcrypt htpasswd lines and
# the token server of the registry's token auth) and ociregistry
# (go-containerregistry's registry with the referrers API), both for the
# image.verify e2e and fixtures (e2e/registry.sh), and watchstamp (watches
# stamped as their events arrive, for hack/bench.sh peers). Built with the Go
# toolchain the control plane is built with, into a cache outside the
# repository, keyed by the source's hash: nothing is rebuilt while the source
# is unchanged.
# Prints the path of the binary.
#   hack/gotool.sh faultproxy
#   hack/gotool.sh bundleserver
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

here=$(cd "$(dirname "$0")" && pwd)
name=${1:-}
# a helper is a directory hack/NAME with its own go.mod and a main package;
# the control plane (hack/controlplane.sh) and Argo Rollouts (hack/rollouts.sh) are built and pinned apart
helpers=$(cd "$here" && for m in */go.mod; do d=${m%/go.mod}; [ "$d" = controlplane ] || [ "$d" = rollouts ] || printf '%s ' "$d"; done)
case " $helpers" in
  *" $name "*) [ -n "$name" ] ;;
  *) echo "usage: gotool.sh NAME, NAME one of the Go helpers under hack/: $helpers" >&2; exit 2 ;;
esac
src="$here/$name"
key=$(cat "$src/go.mod" "$src"/*.go | sha256sum | cut -c1-12)
bin="$GO_CACHE_BIN/$name-$key"

if [ ! -x "$bin/$name" ]; then
  go_find gotool.sh
  go_build_dir "$bin"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$GO_BUILD/$name" .)
  mv -f "$GO_BUILD/$name" "$bin/$name"
  # builds of an older source are of no more use
  find "$GO_CACHE_BIN" -maxdepth 1 -name "$name-*" ! -name "$name-$key" -exec rm -rf {} +
fi
echo "$bin/$name"
