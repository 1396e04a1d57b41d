#!/usr/bin/env bash
# Formats the C sources with clang-format and the house style in .clang-format:
# every .c and .h that git tracks under controller/, test/, bench/ and
# e2e/double/.
#
#   hack/format.sh           rewrites the files in place
#   hack/format.sh --check   changes nothing; lists the files clang-format would
#                            change with how many lines of each, and fails if any
set -euo pipefail
cd "$(dirname "$0")/.."

check=false
case "${1:-}" in
  "") ;;
  --check) check=true ;;
  *) echo "usage: hack/format.sh [--check]" >&2; exit 2 ;;
esac
command -v clang-format >/dev/null || { echo "format.sh: clang-format is not installed (hack/setup.sh installs it)" >&2; exit 2; }
[ -f .clang-format ] || { echo "format.sh: .clang-format is missing at the repository's root" >&2; exit 2; }

mapfile -t files < <(git ls-files -- 'controller/*.[ch]' 'test/*.[ch]' 'bench/*.[ch]' 'e2e/double/*.[ch]')
[ ${#files[@]} -gt 0 ] || { echo "format.sh: no C files found under controller/, test/, bench/, e2e/double/" >&2; exit 2; }

if ! $check; then
  clang-format -i --style=file -- "${files[@]}"
  echo "format.sh: formatted ${#files[@]} files"
  exit 0
fi

total=0
nfiles=0
for f in "${files[@]}"; do
  # lines of f that clang-format would rewrite or remove
  n=$(clang-format --style=file -- "$f" | diff -- "$f" - | grep -c '^<' || true)
  if [ "$n" -gt 0 ]; then
    printf '%6d  %s\n' "$n" "$f"
    total=$((total + n))
    nfiles=$((nfiles + 1))
  fi
done
if [ "$total" -gt 0 ]; then
  echo "format.sh: $total lines in $nfiles of ${#files[@]} files are not formatted; run hack/format.sh" >&2
  exit 1
fi
echo "format.sh: ${#files[@]} files formatted"
