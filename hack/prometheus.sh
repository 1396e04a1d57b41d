#!/usr/bin/env bash
# Builds Prometheus (pinned) from the Go module proxy into a cache outside the
# repository, for the slo check's e2e and the demo's slo mode: a real
# Prometheus scrapes the governed API double and answers the check's queries
# on its HTTP API. Only cmd/prometheus is built, without the web UI's assets
# (the HTTP API needs none) and without the service-discovery plugins
# (-tags remove_all_sd: the tests scrape a static target), with
# hack/lib/go.sh. Nothing is rebuilt when the binary is already there. Prints
# the path of the prometheus binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

# v0.316.0 is Prometheus 3.16.0; its go.mod asks for go 1.26.7 and has no
# replace directives, so `go install pkg@version` builds it as released.
PROMETHEUS_VERSION=v0.316.0
go_install_pinned prometheus "$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/prometheus 1.26.7 \
  -ldflags "-s -w" -tags remove_all_sd
