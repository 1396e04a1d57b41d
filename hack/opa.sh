#!/usr/bin/env bash
# Builds OPA (pinned) from the Go module proxy into a cache outside the
# repository, for the PolicyBundle e2e (`opa build` makes and signs the test
# bundles; `opa run --server` answers the decision tests), with hack/lib/go.sh.
# Nothing is rebuilt when the binary is already there. Prints the path of the
# opa binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

OPA_VERSION=v1.22.4   # its go.mod asks for go 1.26.0 and has no replace directives
# OPA's version string is in its source (v1/version), so no -X is needed.
go_install_pinned opa "$OPA_VERSION" github.com/open-policy-agent/opa 1.26.0 -ldflags "-s -w"
