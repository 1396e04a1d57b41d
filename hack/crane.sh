#!/usr/bin/env bash
# Builds go-containerregistry's crane (pinned) from the Go module proxy into a
# cache outside the repository, for hack/image.sh, which assembles membrane's
# image (and the decision-test OPA's) as OCI layouts without a container engine,
# with hack/lib/go.sh. Nothing is rebuilt when the binary is already there.
# Prints the path of the crane binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

CRANE_VERSION=v0.22.1   # its go.mod asks for go 1.25.0: the local Go builds it
go_install_pinned crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane 1.25.0 \
  -ldflags "-s -w"
