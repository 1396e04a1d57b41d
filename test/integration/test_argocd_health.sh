#!/usr/bin/env bash
# Checks the Argo CD health scripts in manifests/argocd/argocd-cm-patch.yaml with
# a real Lua 5.1 interpreter (Argo CD runs gopher-lua, a Lua 5.1): each script is
# taken out of the ConfigMap patch exactly as Argo CD would read it, and run on
# the fixtures in test/fixtures/argocd/, which give the verdict (Healthy,
# Progressing, Degraded, Suspended) each status must produce. Also checks that
# the patch is generated from manifests/argocd/health/*.lua (no drift).
# Needs lua5.1 (hack/setup.sh installs it); no cluster.
source "$(dirname "$0")/lib.sh"

lua=$(command -v lua5.1 || true)
[ -n "$lua" ] || { echo "FAIL test_argocd_health: lua5.1 is not installed (hack/setup.sh installs it)"; exit 1; }
patch=manifests/argocd/argocd-cm-patch.yaml

echo "== $patch"
if bash hack/generate.sh --check >"$tmp/out" 2>&1; then
  ok "the patch and the chart's CRDs are up to date with their sources (hack/generate.sh --check)"
else
  fail "the patch and the chart's CRDs are up to date with their sources (hack/generate.sh --check)" "$(cat "$tmp/out")"
fi
if grep -q '^kind: ConfigMap$' "$patch" && grep -q '^  name: argocd-cm$' "$patch"; then
  ok "the patch is for ConfigMap argocd-cm"
else
  fail "the patch is for ConfigMap argocd-cm"
fi

# extract KIND: the block scalar under data."resource.customizations.health.governance.kfm.dev_KIND"
extract() {
  awk -v key="  resource.customizations.health.governance.kfm.dev_$1: |" '
    $0 == key { on = 1; next }
    on && /^  [^ ]/ { on = 0 }
    on { sub(/^    /, ""); print }
  ' "$patch"
}

for kind in GovernedAPIRelease PolicyBundle DatasetPromotion; do
  lower=$(echo "$kind" | tr 'A-Z' 'a-z')
  echo "== $kind"
  extract "$kind" > "$tmp/$lower.lua"
  if [ -s "$tmp/$lower.lua" ] && luac5.1 -p "$tmp/$lower.lua" 2>"$tmp/out"; then
    ok "$kind: the health script is in the patch and parses as Lua 5.1"
  else
    fail "$kind: the health script is in the patch and parses as Lua 5.1" "$(cat "$tmp/out")"
    continue
  fi
  "$lua" test/integration/argocd_health_run.lua "$tmp/$lower.lua" "test/fixtures/argocd/$lower.lua" >"$tmp/run" 2>&1 || true
  cases=0
  while IFS= read -r line; do
    case $line in
      "ok "*) ok "$kind: ${line#ok }"; cases=$((cases + 1)) ;;
      "FAIL "*) fail "$kind: ${line#FAIL }"; cases=$((cases + 1)) ;;
      *) fail "$kind: the runner printed: $line" ;;
    esac
  done < "$tmp/run"
  if [ "$cases" -ge 5 ]; then ok "$kind: $cases fixtures ran"; else fail "$kind: at least 5 fixtures ran" "ran $cases"; fi
  for verdict in Healthy Progressing Degraded; do
    if grep -q "^ok .*: $verdict (" "$tmp/run"; then ok "$kind: fixtures cover $verdict"; else fail "$kind: fixtures cover $verdict"; fi
  done
done
if grep -q '^ok .*: Suspended (' <(extract GovernedAPIRelease > "$tmp/g.lua"; "$lua" test/integration/argocd_health_run.lua "$tmp/g.lua" test/fixtures/argocd/governedapirelease.lua); then
  ok "GovernedAPIRelease: fixtures cover Suspended"
else
  fail "GovernedAPIRelease: fixtures cover Suspended"
fi

finish
