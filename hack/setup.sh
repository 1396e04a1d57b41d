#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test membrane: the C
# toolchain and libraries from Debian's packages, and Go for hack/ (the local
# control plane). Idempotent, and quiet when everything is already there.
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev valgrind
      libcurl4-openssl-dev libcjson-dev libyaml-dev libssl-dev libwebsockets-dev
      libcmocka-dev libarchive-dev uthash-dev python3 python3-venv curl ca-certificates
      openssl iproute2 procps bc lua5.1 busybox lcov clang-format git jq
      libcap-dev zlib1g-dev debian-archive-keyring)  # the last three: hack/static.sh

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
if ! command -v go >/dev/null; then
  echo "setup: installing golang-go" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends golang-go >/dev/null
fi
