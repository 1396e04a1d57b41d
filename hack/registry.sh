#!/usr/bin/env bash
# Builds the CNCF distribution registry (pinned) from the Go module proxy into a
# cache outside the repository, for the image.verify gate's e2e and fixtures: a
# real OCI registry on loopback (plain HTTP, or HTTPS with a test CA, htpasswd
# or token auth) that crane pushes to, cosign signs into, and membrane reads
# from (e2e/registry.sh starts it). hack/lib/go.sh finds go and makes the build
# directory. Nothing is rebuilt when the binary is already there. Prints the
# path of the registry binary.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

# v3.1.2 is the newest the proxy serves; its go.mod asks for go 1.26.0 and has
# no replace directives
REGISTRY_VERSION=v3.1.2
go_install_pinned registry "$REGISTRY_VERSION" github.com/distribution/distribution/v3/cmd/registry 1.26.0 \
  -ldflags "-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION"
