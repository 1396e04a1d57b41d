#!/usr/bin/env bash
# Checks the Argo CD health scripts in manifests/argocd/argocd-cm-patch.yaml with
# two Lua 5.1 interpreters: Lua 5.1 itself, and gopher-lua v1.1.2, the Lua Argo
# CD embeds (hack/luahealth, with the libraries Argo CD opens): each script is
# taken out of the ConfigMap patch exactly as Argo CD would read it, and run on
# the fixtures in test/fixtures/argocd/, which give the verdict (Healthy,
# Progressing, Degraded, Suspended) each status must produce (for a release:
# every phase with every combination of its kstatus conditions). Also checks
# that the patch is generated from manifests/argocd/health/*.lua (no drift).
# Needs lua5.1 (hack/setup.sh installs it) and Go for hack/gotool.sh luahealth
# (cached; MEMBRANE_LUAHEALTH names a built one); no cluster.
source "$(dirname "$0")/lib.sh"

lua=$(command -v lua5.1 || true)
[ -n "$lua" ] || { echo "FAIL test_argocd_health: lua5.1 is not installed (hack/setup.sh installs it)"; exit 1; }
luahealth=${MEMBRANE_LUAHEALTH:-$(bash hack/gotool.sh luahealth 2>"$tmp/gotool.out" || true)}
[ -x "$luahealth" ] || { echo "FAIL test_argocd_health: cannot run gopher-lua: hack/gotool.sh luahealth built nothing: $(cat "$tmp/gotool.out")"; exit 1; }
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
  for interp in lua5.1 gopher-lua; do
    if [ "$interp" = lua5.1 ]; then
      "$lua" test/integration/argocd_health_run.lua "$tmp/$lower.lua" "test/fixtures/argocd/$lower.lua" >"$tmp/run" 2>&1 || true
    else
      "$luahealth" test/integration/argocd_health_run.lua "$tmp/$lower.lua" "test/fixtures/argocd/$lower.lua" >"$tmp/run-gopher" 2>&1 || true
    fi
    cases=0
    while IFS= read -r line; do
      case $line in
        "ok "*) ok "$kind ($interp): ${line#ok }"; cases=$((cases + 1)) ;;
        "FAIL "*) fail "$kind ($interp): ${line#FAIL }"; cases=$((cases + 1)) ;;
        *) fail "$kind ($interp): the runner printed: $line" ;;
      esac
    done < <(if [ "$interp" = lua5.1 ]; then cat "$tmp/run"; else cat "$tmp/run-gopher"; fi)
    if [ "$cases" -ge 5 ]; then ok "$kind ($interp): $cases fixtures ran"; else fail "$kind ($interp): at least 5 fixtures ran" "ran $cases"; fi
  done
  if cmp -s "$tmp/run" "$tmp/run-gopher"; then
    ok "$kind: gopher-lua and Lua 5.1 give the same verdicts and messages"
  else
    fail "$kind: gopher-lua and Lua 5.1 give the same verdicts and messages" "$(diff "$tmp/run" "$tmp/run-gopher" | head -10)"
  fi
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
