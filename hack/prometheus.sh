#!/usr/bin/env bash
# Builds Prometheus (pinned) from the Go module proxy into a cache outside the
# repository, for the slo check's e2e and the demo's slo mode: a real
# Prometheus scrapes the governed API double and answers the check's queries
# on its HTTP API. Only cmd/prometheus is built, without the web UI's assets
# (the HTTP API needs none) and without the service-discovery plugins
# (-tags remove_all_sd: the tests scrape a static target). It shares the Go
# module cache with the other builds (the go command's default GOMODCACHE).
# Nothing is rebuilt when the binary is already there. Prints the path of the
# prometheus binary.
set -euo pipefail

# v0.316.0 is Prometheus 3.16.0; its go.mod asks for go 1.26.7 and has no
# replace directives, so `go install pkg@version` builds it as released.
PROMETHEUS_VERSION=v0.316.0
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
bin="$cache/bin/prometheus-$PROMETHEUS_VERSION"

if [ ! -x "$bin/prometheus" ]; then
  if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
    export PATH=/usr/local/go/bin:$PATH
  fi
  command -v go >/dev/null || { echo "prometheus.sh: go is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  # an older local Go (GOTOOLCHAIN=local here) would refuse the go.mod, so this
  # build alone then uses a newer toolchain from the proxy
  have=$(go env GOVERSION); have=${have#go}
  if [ "$(printf '%s\n' 1.26.7 "$have" | sort -V | head -1)" != 1.26.7 ]; then
    export GOTOOLCHAIN=go1.27.3
  fi
  mkdir -p "$bin"
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building prometheus $PROMETHEUS_VERSION into $bin; the first time takes several minutes" >&2
  CGO_ENABLED=0 GOBIN="$tmp" go install -trimpath -ldflags "-s -w" -tags remove_all_sd \
    "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION"
  mv -f "$tmp/prometheus" "$bin/prometheus"
fi
echo "$bin/prometheus"
