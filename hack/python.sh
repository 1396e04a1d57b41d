#!/usr/bin/env bash
# A Python virtual environment with the pinned packages of
# hack/python-requirements.txt (from PyPI, hashes checked), in a cache outside
# the repository, for the tests that need a real third-party parser. Made once
# per version of the requirements and reused; made again when it no longer
# works (its base python went away). Prints the path of its python.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
req="$here/python-requirements.txt"
cache=${MEMBRANE_CACHE:-$HOME/.cache/membrane}
venv="$cache/venv-$(sha256sum "$req" | cut -c1-12)"

# complete (the marker is written last) and its python still runs
works() { [ -f "$venv/.complete" ] && "$venv/bin/python" -c '' >/dev/null 2>&1; }

if ! works; then
  command -v python3 >/dev/null || { echo "python.sh: python3 is not installed (hack/setup.sh installs it)" >&2; exit 1; }
  mkdir -p "$cache"
  exec 9>"$venv.lock"
  flock 9 # another test may be making the same one
  if ! works; then
    echo "python.sh: making $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv" >&2 ||
      { echo "python.sh: python3 -m venv failed (Debian: apt-get install python3-venv; hack/setup.sh does)" >&2; exit 1; }
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      --require-hashes --only-binary :all: -r "$req" >&2
    touch "$venv/.complete"
  fi
fi
echo "$venv/bin/python"
