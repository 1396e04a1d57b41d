#!/usr/bin/env bash
# Builds sigstore's cosign (pinned), both major versions, from the Go module
# proxy into a cache outside the repository, for the image.verify gate's e2e
# and fixtures: cosign v2 writes the tag layout (sha256-<hex>.sig / .att),
# cosign v3 the sigstore bundle through the OCI referrers API, and membrane
# reads both. hack/lib/go.sh finds go and makes the build directory. Nothing is
# rebuilt when a binary is already there.
#   hack/cosign.sh       prints both paths, v2's then v3's, one a line
#   hack/cosign.sh v2    builds and prints the v2 path only (v3 likewise)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/go.sh"

# the newest releases the proxy serves (v3.1.4's own version is 403 "not
# available"); no replace directives in either go.mod; v2's asks for go
# 1.25.0, v3's for go 1.26.0
COSIGN_V2_VERSION=v2.6.5
COSIGN_V3_VERSION=v3.1.3
ver=sigs.k8s.io/release-utils/version

build() {
  case $1 in
    v2) go_install_pinned cosign "$COSIGN_V2_VERSION" github.com/sigstore/cosign/v2/cmd/cosign 1.25.0 \
          -ldflags "-s -w -X $ver.gitVersion=$COSIGN_V2_VERSION -X $ver.gitTreeState=clean" ;;
    v3) go_install_pinned cosign "$COSIGN_V3_VERSION" github.com/sigstore/cosign/v3/cmd/cosign 1.26.0 \
          -ldflags "-s -w -X $ver.gitVersion=$COSIGN_V3_VERSION -X $ver.gitTreeState=clean" ;;
    *) echo "cosign.sh: unknown version '$1' (v2 or v3)" >&2; exit 2 ;;
  esac
}

if [ $# -gt 0 ]; then
  build "$1"
else
  # one build at a time (a subshell each, so each has its own build directory)
  (build v2)
  (build v3)
fi
