#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok and kwok's stage file) from the Go module proxy
# at pinned versions, into a cache outside the repository. Nothing is rebuilt
# when it is already there. Prints the directory that holds the binaries.
set -euo pipefail

K8S_VERSION=v1.37.2   # hack/controlplane/go.mod pins it, and etcd through it
KWOK_VERSION=v0.8.0
here=$(cd "$(dirname "$0")" && pwd)
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
bin="$cache/bin/k8s-$K8S_VERSION-kwok-$KWOK_VERSION"
want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)

have_all() { for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done; }

if ! have_all; then
  command -v go >/dev/null || { echo "controlplane.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  echo "building the control plane (Kubernetes $K8S_VERSION, kwok $KWOK_VERSION) into $bin; the first time takes a while" >&2
  (cd "$here/controlplane" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$tmp/" ./cmd/...)
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  for b in "${want[@]}"; do mv -f "$tmp/$b" "$bin/$b"; done
fi

# kwok runs the stages it is given: its own defaults for nodes and pods, taken
# from the pinned module's source, then membrane's (hack/kwok-stages.yaml).
stages="$bin/kwok-stages.yaml"
if [ ! -f "$stages" ] || [ "$here/kwok-stages.yaml" -nt "$stages" ]; then
  src=$(cd /tmp && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/kustomize/stage
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    cat "$src/$f"; echo "---"
  done > "$stages.tmp"
  cat "$here/kwok-stages.yaml" >> "$stages.tmp"
  mv -f "$stages.tmp" "$stages"
fi
echo "$bin"
