#!/usr/bin/env bash
# Builds one of the Go test helpers under hack/ by name (a directory with its
# own go.mod and a main package): faultproxy (a TLS proxy in front of the API
# server that breaks the path on command, for the resilience e2e) and
# bundleserver (a loopback HTTPS file server with redirects and a bearer
# token, for the PolicyBundle e2e and the demo). Built with the Go toolchain
# the control plane is built with, into a cache outside the repository, keyed
# by the source's hash: nothing is rebuilt while the source is unchanged.
# Prints the path of the binary.
#   hack/gotool.sh faultproxy
#   hack/gotool.sh bundleserver
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
name=${1:-}
# a helper is a directory hack/NAME with its own go.mod and a main package;
# the control plane (hack/controlplane.sh) and Argo Rollouts (hack/rollouts.sh) are built and pinned apart
helpers=$(cd "$here" && for m in */go.mod; do d=${m%/go.mod}; [ "$d" = controlplane ] || [ "$d" = rollouts ] || printf '%s ' "$d"; done)
case " $helpers" in
  *" $name "*) [ -n "$name" ] ;;
  *) echo "usage: gotool.sh NAME, NAME one of the Go helpers under hack/: $helpers" >&2; exit 2 ;;
esac
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
src="$here/$name"
key=$(cat "$src/go.mod" "$src"/*.go | sha256sum | cut -c1-12)
bin="$cache/bin/$name-$key"

if [ ! -x "$bin/$name" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "gotool.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/$name" .)
  mv -f "$tmp/$name" "$bin/$name"
  # builds of an older source are of no more use
  find "$cache/bin" -maxdepth 1 -name "$name-*" ! -name "$name-$key" -exec rm -rf {} +
fi
echo "$bin/$name"
