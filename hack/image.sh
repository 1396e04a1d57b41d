#!/usr/bin/env bash
# Assembles membrane's images as OCI image layouts, without a container engine,
# with go-containerregistry's crane (hack/crane.sh) and a registry crane serves
# in memory on loopback for the length of this script:
#
#   build-image/membrane  ghcr.io/kfm/membrane:<version>: one layer with the
#       static binary /membrane (hack/static.sh) and the CA bundle
#       /etc/ssl/certs/ca-certificates.crt (Debian's ca-certificates); the same
#       image the Dockerfile builds on distroless/static
#   build-image/opa       ghcr.io/kfm/membrane-opa:1.22.4: the decision-test OPA,
#       one layer with /opa, the static (CGO_ENABLED=0) OPA hack/opa.sh builds
#
# Both: entrypoint the binary (membrane's command "run", as the Dockerfile's), user 65532:65532, org.opencontainers.image.*
# labels, linux/amd64, and no timestamps (files dated 1970-01-01, no created
# time), so the same inputs give the same digest on every run and machine. The
# digest of the OPA image is what charts/membrane/values.yaml and
# manifests/opa/kustomization.yaml pin (test/integration/test_image.sh checks it).
#
#   hack/image.sh [membrane|opa ...]   default both; prints "<name> <digest>" lines
# MEMBRANE_STATIC_BIN=PATH uses that static binary instead of running hack/static.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out=${MEMBRANE_IMAGE_DIR:-$repo/build-image}
which=("$@")
[ ${#which[@]} -gt 0 ] || which=(membrane opa)
for w in "${which[@]}"; do
  case $w in membrane | opa) ;; *) echo "usage: image.sh [membrane|opa ...]" >&2; exit 2 ;; esac
done

crane=$(bash "$here/crane.sh")
version=$(sed -n 's/^project(membrane VERSION \([0-9.]*\).*/\1/p' "$repo/CMakeLists.txt")
[ -n "$version" ] || { echo "image.sh: no project version in CMakeLists.txt" >&2; exit 1; }
cacert=/etc/ssl/certs/ca-certificates.crt
source_url=https://github.com/kfm/membrane
OPA_VERSION=1.22.4 # what hack/opa.sh builds (v1.22.4)

tmp=$(mktemp -d)
reg_pid=""
cleanup() {
  [ -z "$reg_pid" ] || kill "$reg_pid" 2>/dev/null || true
  [ -z "$reg_pid" ] || wait "$reg_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# crane's in-memory registry on a free loopback port; it only lives as long as this script
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$crane" registry serve --address "127.0.0.1:$port" >"$tmp/registry.log" 2>&1 &
reg_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$reg_pid" 2>/dev/null || { echo "image.sh: crane's registry did not start: $(cat "$tmp/registry.log")" >&2; exit 1; }
  sleep 0.1
done
reg=127.0.0.1:$port

# layer TAR ROOT: a tar of ROOT's tree with no owner, times or modes of this machine
layer() {
  find "$2" -mindepth 1 -exec touch -h -d @0 {} +
  tar --sort=name --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@0 \
    -C "$2" -cf "$1" .
}

# image NAME REF LAYER ENTRYPOINT TITLE DESCRIPTION VERSION [CMD]: the OCI layout $out/NAME
image() {
  local name=$1 ref=$2 tar=$3 entry=$4 title=$5 desc=$6 ver=$7 cmd=() digest
  [ -z "${8:-}" ] || cmd=(--cmd "$8")
  "$crane" append --oci-empty-base -f "$tar" -t "$reg/$name:build" >/dev/null 2>"$tmp/err" ||
    { echo "image.sh: crane append ($name): $(cat "$tmp/err")" >&2; exit 1; }
  "$crane" mutate "$reg/$name:build" -t "$reg/$name:$ver" --set-platform linux/amd64 \
    --entrypoint "$entry" "${cmd[@]}" --user 65532:65532 \
    -l "org.opencontainers.image.title=$title" \
    -l "org.opencontainers.image.description=$desc" \
    -l "org.opencontainers.image.version=$ver" \
    -l "org.opencontainers.image.source=$source_url" \
    -l "org.opencontainers.image.ref.name=$ref" >/dev/null 2>"$tmp/err" ||
    { echo "image.sh: crane mutate ($name): $(cat "$tmp/err")" >&2; exit 1; }
  rm -rf "${out:?}/$name"
  mkdir -p "$out"
  "$crane" pull --format=oci "$reg/$name:$ver" "$out/$name" 2>"$tmp/err" ||
    { echo "image.sh: crane pull ($name): $(cat "$tmp/err")" >&2; exit 1; }
  digest=$("$crane" digest "$reg/$name:$ver")
  printf '%s\n' "$ref" > "$out/$name.ref"
  printf '%s\n' "$digest" > "$out/$name.digest"
  echo "$name $digest"
}

for w in "${which[@]}"; do
  case $w in
    membrane)
      bin=${MEMBRANE_STATIC_BIN:-$(bash "$here/static.sh")}
      [ -x "$bin" ] || { echo "image.sh: no static membrane binary at $bin" >&2; exit 1; }
      [ -s "$cacert" ] || { echo "image.sh: no CA bundle at $cacert (the ca-certificates package)" >&2; exit 1; }
      root="$tmp/membrane-root"
      mkdir -p "$root/etc/ssl/certs"
      install -m 0755 "$bin" "$root/membrane"
      install -m 0644 "$cacert" "$root/etc/ssl/certs/ca-certificates.crt"
      chmod 0755 "$root/etc" "$root/etc/ssl" "$root/etc/ssl/certs"
      layer "$tmp/membrane.tar" "$root"
      image membrane "ghcr.io/kfm/membrane:$version" "$tmp/membrane.tar" /membrane membrane \
        "KFM governance operator: governed API releases, policy bundles, dataset promotions" "$version" run
      ;;
    opa)
      opa=$(bash "$here/opa.sh")
      root="$tmp/opa-root"
      mkdir -p "$root"
      install -m 0755 "$opa" "$root/opa"
      layer "$tmp/opa.tar" "$root"
      image opa "ghcr.io/kfm/membrane-opa:$OPA_VERSION" "$tmp/opa.tar" /opa membrane-opa \
        "Open Policy Agent $OPA_VERSION (static), the decision-test OPA of membrane's PolicyBundles" "$OPA_VERSION"
      ;;
  esac
done
