#!/usr/bin/env bash
# Keeps the CRD reference (docs/crds/<kind>.md) in step with the CRDs
# (crds/*.yaml) against a real kube-apiserver:
#  - every property under spec and status of each CRD's openAPIV3Schema has a
#    row in its page: a table row whose first cell is the path in backticks,
#    e.g. | `spec.image.digest` |, list items written as [] (`status.history[].auditRef`);
#    maps (matchLabels) and free-form values (input, expect) are not descended into;
#  - every such row names a property the schema has (no stale rows);
#  - every printer column is named in its page, as kubectl prints it (`PHASE`);
#  - each page has an example of its kind, and every ```yaml block of the pages
#    is accepted by `kubectl apply --dry-run=server` (namespace kfm is mapped to
#    a namespace this test creates).
# The schemas are read with kubectl and Python's json module, not with text tools.
# Needs KUBECONFIG (admin), kubectl and python3 on PATH, as hack/test.sh provides.
source "$(dirname "$0")/lib.sh"

need_cluster test_docs_crds
command -v python3 >/dev/null || { echo "FAIL test_docs_crds: python3 is not on PATH (hack/setup.sh installs it)"; exit 1; }

ns="membrane-docs-$$"
namespaces+=("$ns")

echo "== schemas"
for f in crds/governance.kfm.dev_*.yaml; do
  if kubectl create --dry-run=client -o json -f "$f" >"$tmp/$(basename "$f" .yaml).json" 2>"$tmp/out"; then
    ok "read $f"
  else
    fail "read $f" "$(cat "$tmp/out")"
  fi
done

echo "== fields and printer columns"
# One line per check: ok|FAIL <TAB> what <TAB> detail
python3 - "$tmp" > "$tmp/checks" 2>&1 <<'PY' || true
import glob, json, os, re, sys

def paths(prefix, schema, out):
    for name, sub in schema.get("properties", {}).items():
        p = prefix + "." + name
        out.append(p)
        paths(p, sub, out)
    items = schema.get("items")
    if isinstance(items, dict) and items.get("properties"):
        paths(prefix + "[]", items, out)

row = re.compile(r"^\|\s*`((?:spec|status)(?:[.\[][^`]*)?)`\s*\|", re.M)
for f in sorted(glob.glob(os.path.join(sys.argv[1], "governance.kfm.dev_*.json"))):
    crd = json.load(open(f))
    kind = crd["spec"]["names"]["kind"]
    page = "docs/crds/%s.md" % kind.lower()
    if not os.path.exists(page):
        print("FAIL\t%s has a page\tmissing: %s" % (kind, page))
        continue
    text = open(page, encoding="utf-8").read()
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    want = []
    for top in ("spec", "status"):
        paths(top, schema["properties"][top], want)
    rows = set(row.findall(text))
    missing = [p for p in want if p not in rows]
    stale = sorted(rows - set(want))
    what = "%s documents every spec and status field of %s (%d)" % (page, kind, len(want))
    if missing:
        print("FAIL\t%s\tno row for: %s" % (what, ", ".join("`%s`" % p for p in missing)))
    else:
        print("ok\t%s\t" % what)
    what = "%s has no row for a field %s does not have" % (page, kind)
    if stale:
        print("FAIL\t%s\tnot in the schema: %s" % (what, ", ".join("`%s`" % p for p in stale)))
    else:
        print("ok\t%s\t" % what)
    cols = ["NAME"] + [c["name"].upper() for c in version.get("additionalPrinterColumns", [])]
    missing = [c for c in cols if "`%s`" % c not in text]
    what = "%s names every printer column of %s (%s)" % (page, kind, " ".join(cols))
    if missing:
        print("FAIL\t%s\tnot named: %s" % (what, ", ".join("`%s`" % c for c in missing)))
    else:
        print("ok\t%s\t" % what)
PY
if ! grep -q . "$tmp/checks"; then fail "the field checks ran" "they printed nothing"; fi
while IFS=$'\t' read -r status what detail; do
  case "$status" in
    ok) ok "$what" ;;
    FAIL) fail "$what" "$detail" ;;
    *) fail "the field checks ran" "$status $what $detail" ;;
  esac
done < "$tmp/checks"

echo "== examples"
install_crds
kubectl create namespace "$ns" >/dev/null

# Each ```yaml block of each page into its own file: <page>.<n>.yaml
python3 - "$tmp" docs/crds/*.md > "$tmp/blocks" 2>&1 <<'PY' || true
import os, re, sys
out = sys.argv[1]
for page in sys.argv[2:]:
    text = open(page, encoding="utf-8").read()
    blocks = re.findall(r"^```yaml[ \t]*\n(.*?)^```[ \t]*$", text, re.S | re.M)
    for n, b in enumerate(blocks, 1):
        name = os.path.join(out, "%s.%d.yaml" % (os.path.basename(page), n))
        open(name, "w", encoding="utf-8").write(b)
        print("%s\t%d\t%s" % (page, n, name))
PY
for page in docs/crds/*.md; do
  kind=$(sed -n '1s/^# //p' "$page")
  examples=$(awk -F'\t' -v p="$page" '$1 == p {print $3}' "$tmp/blocks" | xargs -r grep -l "^kind: $kind\$" 2>/dev/null || true)
  if [ -n "$kind" ] && [ -n "$examples" ]; then
    ok "$page has a yaml example of kind $kind"
  else
    fail "$page has a yaml example of kind $kind" "no \`\`\`yaml block with kind: $kind"
  fi
done
while IFS=$'\t' read -r page n file; do
  [ -f "${file:-}" ] || { fail "the yaml blocks were extracted" "$page $n $file"; continue; }
  if sed "s/^\([[:space:]]*\)namespace: kfm[[:space:]]*\$/\1namespace: $ns/" "$file" |
     kubectl apply --dry-run=server -f - >"$tmp/out" 2>&1; then
    ok "$page yaml block $n is accepted (kubectl apply --dry-run=server)"
  else
    fail "$page yaml block $n is accepted (kubectl apply --dry-run=server)" "$(cat "$tmp/out")"
  fi
done < "$tmp/blocks"

finish
