#!/usr/bin/env bash
# Writes the seeds of fuzz_bundle into test/fuzz/corpus/bundle/ (see fuzz_bundle.c for the
# input's form: one flag byte, then a tar, or a .tar.gz with flag bit 0): a bundle as `opa build`
# lays it out ("/" names), also gzipped already (bit 0), the same with a .signatures.json payload for the target to sign
# (bit 1), one with "./" names, directories and data.yaml, and one with a symlink.
set -euo pipefail
cd "$(dirname "$0")"
out=corpus/bundle
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$tmp/a/kfm" "$tmp/b/kfm/sub"

manifest='{"revision":"r1","roots":["kfm"]}'
data='{"kfm":{"labels":["public","restricted"],"limit":1.5}}'
policy=$'package kfm\n\nallow if input.role == "admin"\n'
printf '%s' "$manifest" >"$tmp/a/.manifest"
printf '%s' "$data" >"$tmp/a/data.json"
printf '%s' "$policy" >"$tmp/a/kfm/policy.rego"

opa_tar() { # tar of dir $1 with OPA's "/" names
  tar -C "$1" -P --format=ustar -b 1 --owner=0 --group=0 --mtime=@0 --transform 's,^\./,/,' -cf - "${@:2}"
}
{ printf '\x00'; opa_tar "$tmp/a" ./data.json ./kfm/policy.rego ./.manifest; } >"$out/opa-layout"
{ printf '\x01'; opa_tar "$tmp/a" ./data.json ./kfm/policy.rego ./.manifest | gzip -n9; } >"$out/opa-layout.tar.gz"

h() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
printf '{"files":[{"name":"data.json","hash":"%s","algorithm":"SHA-256"},{"name":"kfm/policy.rego","hash":"%s","algorithm":"SHA-256"},{"name":".manifest","hash":"%s","algorithm":"SHA-256"}],"keyid":"fuzz"}' \
  "$(h "$data")" "$(h "$policy")" "$(h "$manifest")" >"$tmp/a/.signatures.json"
{ printf '\x02'; opa_tar "$tmp/a" ./data.json ./kfm/policy.rego ./.signatures.json ./.manifest; } >"$out/signed-payload"

printf '{}' >"$tmp/b/.manifest"
printf '%s' "$policy" >"$tmp/b/kfm/policy.rego"
printf 'labels:\n  - public\nlimits: {max: 10}\n' >"$tmp/b/kfm/sub/data.yaml"
{ printf '\x00'; tar -C "$tmp/b" --format=ustar -b 1 --owner=0 --group=0 --mtime=@0 -cf - .; } >"$out/dot-names-yaml"

ln -s /etc/passwd "$tmp/a/kfm/link.rego"
{ printf '\x00'; tar -C "$tmp/a" --format=ustar -b 1 --owner=0 --group=0 --mtime=@0 -cf - .manifest kfm; } >"$out/symlink"
ls -l "$out"
