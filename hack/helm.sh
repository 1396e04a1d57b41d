#!/usr/bin/env bash
# Builds helm (v3, pinned) from the Go module proxy into a cache outside the
# repository, for the chart tests (helm lint, helm template), with
# hack/lib/go.sh. Nothing is rebuilt when the binary is already there. Prints
# the path of the helm binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

HELM_VERSION=v3.22.0   # its go.mod asks for go 1.26.0 and has no replace directives, so `go install` works
# helm reads its version from internal/version; without this `helm version` says v3.x-dev.
go_install_pinned helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm 1.26.0 \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
